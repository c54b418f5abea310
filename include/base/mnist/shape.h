/* shape: one sample's shape (height, width, channels), shared by the data
 * files that declare it and the models built for it. Stored channels-last
 * (HWC); a feature vector is 1 x 1 x n. */
#ifndef MNIST_SHAPE_H
#define MNIST_SHAPE_H

#include <stddef.h>

typedef struct Shape {
    int h, w, c;
} Shape;

static inline size_t shape_size(Shape s) { return (size_t)s.h * (size_t)s.w * (size_t)s.c; }

#endif

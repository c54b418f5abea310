/* data: in-memory image sets, shard ranges and batch assembly (the file
 * formats are data_csv, data_idx and h5data).
 * Must not call MPI or HDF5: ranks arrive as plain ints (HDF5 is h5data.h). */
#ifndef MNIST_DATA_H
#define MNIST_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "mnist/shape.h"
#include "mnist/util.h"

/* The text formats' images (CSV, IDX): 28 x 28 grey bytes. */
#define MNIST_SIDE 28
#define MNIST_PIXELS (MNIST_SIDE * MNIST_SIDE)
#define DATA_DEFAULT_CLASSES 10 /* what a file declares unless told otherwise: digits */
#define DATA_MAX_CLASSES 256    /* labels are bytes */

/* A set of images, owned. images is rows x shape_size(shape) bytes,
 * row-major, each image channels-last; labels is rows bytes below classes,
 * or NULL when the source carried no labels. */
typedef struct Dataset {
    uint8_t *images;
    uint8_t *labels;
    size_t rows;
    Shape shape; /* one image */
    int classes; /* the class count the file declares (0: not declared) */
} Dataset;

/* Bytes of one image. */
static inline size_t dataset_pixels(const Dataset *d) { return shape_size(d->shape); }

/* Frees the arrays and zeroes d. Safe on a zeroed Dataset. */
void dataset_free(Dataset *d);

/* Rows [*first, *first + *count) of n rows that part `part` of `nparts` owns:
 * contiguous, in part order, sizes differing by at most one (the first
 * n % nparts parts get one extra). */
void data_shard_range(size_t n, int nparts, int part, size_t *first, size_t *count);

/* Converts rows idx[0..b) of d into x (b x dataset_pixels floats in [0, 1],
 * overwritten) and y (b labels, overwritten; ignored when NULL). */
void data_gather_batch(float *x, uint8_t *y, const Dataset *d, const size_t *idx, int b);

#endif

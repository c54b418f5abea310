/* tensor: a named span of the flat parameter vector, as the model lays it
 * out and the optimizer and checkpoints see it. A plain description: no
 * storage, no behaviour. */
#ifndef MNIST_TENSOR_H
#define MNIST_TENSOR_H

#include <stddef.h>

#define TENSOR_MAX_DIMS 4

typedef struct Tensor {
    char name[32];        /* "dense0/W": the layer's name, then the tensor's */
    size_t offset, count; /* in floats, within params (and grads, moments: same layout) */
    int ndim;
    int dims[TENSOR_MAX_DIMS]; /* row-major; dense W is [in, out] */
    int decay;            /* decoupled weight decay applies (weights, not biases) */
    int max_norm;         /* the max-norm constraint applies to each column of [dims[0], dims[1]] */
} Tensor;

#endif

/* mlp: a multilayer perceptron (dense + ReLU + inverted dropout, softmax
 * cross-entropy) over one arena: parameters, gradients, Adam moments and
 * activations live in a single allocation; W/b/dW/db are pointers into it.
 * Must not call MPI or HDF5, and must not allocate after mlp_create. */
#ifndef MNIST_MLP_H
#define MNIST_MLP_H

#include <stddef.h>
#include <stdint.h>

#include "mnist/util.h"

#define MLP_MAX_LAYERS 16 /* dense layers, hidden + output */
#define MLP_CTRL_FLOATS 16 /* control slots summed with the gradients (see ctrl) */

typedef struct Mlp {
    int num_layers;                /* L dense layers */
    int sizes[MLP_MAX_LAYERS + 1]; /* sizes[0] inputs ... sizes[L] classes */
    float dropout;                 /* drop probability on hidden layers */
    int max_batch;                 /* rows the activation buffers hold */
    float fwd_scale;               /* dropout scale of the last forward (1 when eval) */
    float label_smoothing;         /* training targets (1-s) onehot + s/C (0: off) */
    float in_mean, in_scale;       /* inputs become (x - in_mean) * in_scale (0, 1: as is) */
    float weight_decay;            /* decoupled decay of the weights per step (0: off) */
    float clip_norm;               /* cap on the summed gradient's L2 norm (0: off) */
    float max_norm;                /* cap on hidden units' incoming weight norms (0: off) */
    size_t num_params;             /* true parameter count */
    size_t param_floats;           /* length of each flat vector below (tensors padded to 64 B) */
    float *arena;                  /* the one allocation */
    float *params, *grads, *adam_m, *adam_v; /* same layout: W0 b0 W1 b1 ... */
    float *W[MLP_MAX_LAYERS], *b[MLP_MAX_LAYERS];   /* W[l] is [sizes[l], sizes[l+1]] */
    float *dW[MLP_MAX_LAYERS], *db[MLP_MAX_LAYERS]; /* same shapes, in grads */
    float *act[MLP_MAX_LAYERS]; /* act[l]: layer l's output [max_batch, sizes[l+1]] */
    float *delta[2];            /* ping-pong gradient buffers [max_batch, widest] */
    float *ctrl; /* MLP_CTRL_FLOATS floats right after grads: flags that ride along
                    with the gradient allreduce, so they cost no extra message */
} Mlp;

/* Builds the layout for layer widths sizes[0..num_layers] and allocates the
 * arena (zeroed). -1 with e filled on bad sizes or out of memory. */
int mlp_create(Mlp *m, const int *sizes, int num_layers, float dropout, int max_batch, Error *e);

/* Frees the arena and zeroes m. Safe on a zeroed Mlp. */
void mlp_free(Mlp *m);

/* He-normal weights (std sqrt(2 / fan_in)) from stream (seed, layer), zero
 * biases; independent of thread count. Overwrites params only. */
void mlp_init_params(Mlp *m, uint64_t seed);

/* Forward pass for B <= max_batch rows of x[B, sizes[0]]. With train set,
 * hidden layers apply dropout with masks keyed by (dropout_key, layer,
 * sample_ids[i]). Returns the logits [B, sizes[L]] (inside the arena, valid
 * until the next forward). */
const float *mlp_forward(Mlp *m, const float *x, int B, int train, uint64_t dropout_key,
                         const uint64_t *sample_ids);

/* Loss and backward after mlp_forward(m, x, B, ...) on the same x: softmax
 * cross-entropy against labels, gradients scaled by grad_scale (1 / global
 * batch) and ADDED to m->grads. Returns the summed (unscaled) loss; pred
 * (optional) receives each row's argmax. */
double mlp_backward(Mlp *m, const float *x, const uint8_t *labels, int B, float grad_scale,
                    int *pred);

/* A 64-bit checksum of the parameters' bytes (FNV-1a over 64-bit words):
 * equal on two replicas exactly when their parameters are, for all practical
 * purposes. Reads only. */
uint64_t mlp_checksum(const Mlp *m);

/* In place on x[B, sizes[0]]: x = (x - in_mean) * in_scale (the input
 * standardisation the model was trained with). */
void mlp_normalize_input(const Mlp *m, float *x, int B);

/* Max-norm constraint (Srivastava et al. 2014): rescales each hidden unit's
 * incoming weight vector (a column of W[l], l < L-1) to L2 norm at most c. */
void mlp_max_norm(Mlp *m, float c);

/* Points the model at other storage: params (and W, b) at params, and the
 * gradients (dW, db, ctrl) at grads (param_floats + MLP_CTRL_FLOATS floats).
 * NULL points either back into the model's own arena, which stays allocated
 * (mlp_free frees it). */
void mlp_use_buffers(Mlp *m, float *params, float *grads);

/* Sets every gradient to zero. */
void mlp_zero_grads(Mlp *m);

/* Offset (in floats) of layer l's W (which = 0) or b (which = 1) in the flat
 * vectors; the same for params, grads and both moments. */
size_t mlp_tensor_offset(const Mlp *m, int l, int which);

/* Element count of layer l's W (which = 0: sizes[l] * sizes[l+1]) or b
 * (which = 1: sizes[l+1]). */
size_t mlp_tensor_size(const Mlp *m, int l, int which);

/* Parses "512,512" into hidden widths; fills sizes with 784, the widths, 10.
 * Returns the number of dense layers or -1 with e filled. */
int mlp_parse_layers(const char *spec, int inputs, int classes, int *sizes, Error *e);

#endif

/* ops: the numerical kernels of the layers on flat row-major float arrays.
 * Matrix products go to CBLAS; element-wise loops are OpenMP-parallel over an
 * outer index that each thread owns, so results do not depend on the thread
 * count. Must not allocate, print, or know about ranks. */
#ifndef MNIST_OPS_H
#define MNIST_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "mnist/bf16.h"

/* The BLAS the build chose (CMake's BLA_VENDOR: OpenBLAS, BLIS as FLAME, or
 * a generic CBLAS): ops_blas_threads sets the threads its products use (a
 * generic BLAS follows OpenMP's setting); ops_blas_config names it and its
 * build, as --version prints it. */
void ops_blas_threads(int threads);
const char *ops_blas_config(void);

/* Denormal (subnormal) floats read as zero and results that would be one
 * are written as zero (x86: MXCSR's DAZ and FTZ; aarch64: FPCR.FZ), on the
 * calling thread and on every thread of the OpenMP pool; threads created
 * later inherit it. Training makes denormals as it goes (Adam's second
 * moments of tiny gradients, decaying activations) and each one costs an
 * x86 core a microcode assist: without this, ref-mlp's epoch 4 ran 35-40%
 * slower than its epoch 1. Same bits for any rank and thread count, like
 * everything else; a no-op on other CPUs. bf16 products flush anyway. */
void ops_flush_denormals(void);

/* y[B,out] = x[B,in] · W[in,out]. Overwrites y; bias and activation are
 * applied by the fused pass below. */
void dense_forward(float *y, const float *x, const float *W, int B, int in, int out);

/* In place on y[B,out]: y = y + b, then (relu) y = max(y, 0), then inverted
 * dropout: y = keep ? y / (1 - drop_p) : 0, with keep drawn from the stream
 * rng_mix64(key ^ sample_ids[i]) so a sample's mask depends only on (key,
 * sample id), never on its position, rank or thread. drop_p = 0 disables
 * dropout (sample_ids may then be NULL). yb (optional): also receives the
 * result as bf16 (the next bf16 layer's input), written while it is in cache. */
void bias_act_dropout_forward(float *y, const float *b, int B, int out, int relu, float drop_p,
                              uint64_t key, const uint64_t *sample_ids, bf16 *yb);

/* Backward of y = x · W + b (differentiates dense_forward + the bias add):
 *   dW[in,out] += x^T · dy,  db[out] += sum over rows of dy   (accumulate),
 *   dx[B,in]    = dy · W^T                                     (overwrite;
 *   skipped when dx is NULL, e.g. for the first layer). */
void dense_backward(float *dx, float *dW, float *db, const float *dy, const float *x,
                    const float *W, int B, int in, int out);

/* Backward of relu + inverted dropout given the forward output h[B,n]:
 * dy *= (h > 0) ? scale : 0, with scale = 1 / (1 - drop_p). h > 0 exactly
 * when the unit was both active and kept, so no mask needs to be stored.
 * dyb (optional): also receives the result as bf16 (for bf16 products). */
void relu_dropout_backward(float *dy, const float *h, int B, int n, float scale, bf16 *dyb);

/* db[j] += sum_i dy[i, j] over B rows (threads own column blocks; rows are
 * summed in order, so the result does not depend on the thread count). */
void bias_backward(float *db, const float *dy, int B, int out);

/* Standalone element-wise layers (when not fused into a dense layer's output
 * pass), in place on n = B x width floats. relu_backward: dy = y > 0 ? dy : 0
 * given the forward output y. dropout_forward draws the same masks as
 * bias_act_dropout_forward (from (key, sample_ids[i]), two 32-bit decisions
 * per 64-bit draw) and dropout_backward draws them again, so no mask is
 * stored: dy = keep ? dy / (1 - drop_p) : 0. */
void relu_forward(float *y, size_t n);
void relu_backward(float *dy, const float *y, size_t n);
void dropout_forward(float *y, int B, int width, float drop_p, uint64_t key,
                     const uint64_t *sample_ids);
void dropout_backward(float *dy, int B, int width, float drop_p, uint64_t key,
                      const uint64_t *sample_ids);

/* In place on x[n]: x = (x - mean) * scale (input standardisation). */
void standardize(float *x, size_t n, float mean, float scale);

/* Softmax cross-entropy over logits[B,C] with labels[B], computed stably via
 * log-sum-exp, against targets smoothed as (1 - smoothing) onehot +
 * smoothing / C (smoothing = 0: plain one-hot). Returns the SUM of per-sample
 * losses (not the mean). If dlogits is non-NULL it is overwritten with
 * (softmax - target) * grad_scale (it may alias logits). If pred is non-NULL
 * it receives each row's argmax. labels may be NULL only when dlogits is
 * NULL; the return is then 0. */
double softmax_xent(float *dlogits, int *pred, const float *logits, const uint8_t *labels, int B,
                    int C, float grad_scale, float smoothing);

/* probs[B,C] = softmax(logits) row by row (may alias logits). */
void softmax_rows(float *probs, const float *logits, int B, int C);

#endif

/* conv: 2-D convolution (im2col + CBLAS sgemm) and max pooling kernels on
 * NHWC (channels-last) activations: a sample is [H, W, C] row-major, the
 * layout of the datasets. Convolution weights are [KH, KW, C, F] (HWIO), so
 * one im2col row (ky, kx, c) is a contiguous run of C input floats. Work is
 * split over samples (OpenMP), each thread owning what it writes, and
 * weight gradients are summed per fixed chunk of CONV_CHUNK samples in chunk
 * order, so results do not depend on the thread count. Must not allocate,
 * print, or know about ranks: the caller hands in the workspace. */
#ifndef MNIST_CONV_H
#define MNIST_CONV_H

#include <stddef.h>

#define CONV_CHUNK 4 /* samples per weight-gradient partial sum */

/* One convolution's geometry: input h x w x c, f filters of kh x kw, the
 * same stride and zero padding on both axes; output oh x ow x f with
 * oh = (h + 2 pad - kh) / stride + 1 (floor), likewise ow. */
typedef struct ConvGeom {
    int h, w, c, f, kh, kw, stride, pad, oh, ow;
} ConvGeom;

/* Workspace the kernels need for B rows with `slots` threads at most:
 * per-thread im2col buffers, then the gradient partial sums. In floats. */
size_t conv_work_floats(const ConvGeom *g, int B, int slots);

/* y[B, oh, ow, f] = im2col(x[B, h, w, c]) · W[kh*kw*c, f] + b, then
 * (relu) y = max(y, 0) in the same pass. Overwrites y; work as
 * conv_work_floats(g, B, slots). Uses at most slots threads. */
void conv_forward(float *y, const float *x, const float *W, const float *b, int B,
                  const ConvGeom *g, int relu, float *work, int slots);

/* Backward of conv_forward given dy[B, oh, ow, f] (overwritten: with y,
 * the forward output of a fused ReLU, first dy *= (y > 0)):
 *   dW += im2col(x)^T · dy, db += sum of dy over rows (accumulate),
 *   dx  = col2im(dy · W^T)                              (overwrite; skipped
 *   when dx is NULL). y is NULL without a fused ReLU. */
void conv_backward(float *dx, float *dW, float *db, float *dy, const float *x, const float *y,
                   const float *W, int B, const ConvGeom *g, float *work, int slots);

/* Max pooling of size x size windows every stride (no padding): input
 * h x w x c, output oh x ow x c with oh = (h - size) / stride + 1. */
typedef struct PoolGeom {
    int h, w, c, size, stride, oh, ow;
} PoolGeom;

/* y[B, oh, ow, c] = max over each window of x. */
void maxpool_forward(float *y, const float *x, int B, const PoolGeom *g);

/* dx = 0, then each dy goes to the FIRST position of its window (row-major
 * scan: ky, then kx) that holds the window's max of x, so ties send the
 * whole gradient to one input, the same one every time. The max is found
 * again from x (the forward output may have been changed in place since).
 * Overwrites dx. Overlapping windows (stride < size) add up. */
void maxpool_backward(float *dx, const float *dy, const float *x, int B, const PoolGeom *g);

#endif

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

#include "mnist/bf16.h"
#include "mnist/gemm.h"

#define CONV_CHUNK 4 /* samples per weight-gradient partial sum */
/* Below this many columns of im2col (kh * kw * c: 9 for a 3x3 kernel on grey
 * images) a GEMM call costs more than it computes: plain fp32 loops,
 * vectorised over the filters, instead (in bf16 mode too). */
#define CONV_SMALL_K 16

/* One convolution's geometry: input h x w x c, f filters of kh x kw, the
 * same stride and zero padding on both axes; output oh x ow x f with
 * oh = (h + 2 pad - kh) / stride + 1 (floor), likewise ow. */
typedef struct ConvGeom {
    int h, w, c, f, kh, kw, stride, pad, oh, ow;
} ConvGeom;

/* Workspace the kernels need for B rows with `slots` threads at most:
 * per-thread im2col buffers, then the gradient partial sums. In floats. */
size_t conv_work_floats(const ConvGeom *g, int B, int slots);

/* bf16 products for one convolution (the kernels take NULL for fp32): each
 * thread's three per-sample products (planned by the model: forward,
 * weight gradient, input gradient), the bf16 copy of W that conv_forward
 * writes and conv_backward reads, and per-thread bf16 buffers for one
 * sample's im2col rows and output gradient (conv_bf16_floats of them). */
enum { CONV_FWD, CONV_DW, CONV_DX, CONV_PRODUCTS };
typedef struct ConvBf16 {
    GemmPlan *plans; /* [slots][CONV_PRODUCTS] */
    bf16 *W;         /* [kh*kw*c, f] */
    bf16 *work;      /* [slots][conv_bf16_floats / slots as bf16] */
} ConvBf16;

/* 1 when the convolution's products run in bf16 under --precision bf16
 * (im2col rows of CONV_SMALL_K or more). */
int conv_uses_bf16(const ConvGeom *g);

/* Floats of bf16 workspace (W, then per-thread buffers) for `slots` threads. */
size_t conv_bf16_floats(const ConvGeom *g, int slots);

/* The shapes of the three per-sample products, for planning. */
void conv_bf16_shapes(const ConvGeom *g, GemmShape shapes[CONV_PRODUCTS]);

/* y[B, oh, ow, f] = im2col(x[B, h, w, c]) · W[kh*kw*c, f] + b, then
 * (relu) y = max(y, 0) in the same pass. Overwrites y; work as
 * conv_work_floats(g, B, slots). Uses at most slots threads. */
void conv_forward(float *y, const float *x, const float *W, const float *b, int B,
                  const ConvGeom *g, int relu, float *work, int slots, const ConvBf16 *h);

/* Backward of conv_forward given dy[B, oh, ow, f] (overwritten: with y,
 * the forward output of a fused ReLU, first dy *= (y > 0)):
 *   dW += im2col(x)^T · dy, db += sum of dy over rows (accumulate),
 *   dx  = col2im(dy · W^T)                              (overwrite; skipped
 *   when dx is NULL). y is NULL without a fused ReLU. */
void conv_backward(float *dx, float *dW, float *db, float *dy, const float *x, const float *y,
                   const float *W, int B, const ConvGeom *g, float *work, int slots,
                   const ConvBf16 *h);

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

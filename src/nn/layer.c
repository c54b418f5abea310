/* layer: the kinds a model's stack is built from (dense, ReLU, dropout,
 * conv, maxpool, flatten), one table entry each: setup (output shape, tensors), init, forward,
 * backward. Kernels come from ops; no allocation, no printing. */
#include "mnist/layer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "mnist/conv.h"
#include "mnist/ops.h"
#include "mnist/rng.h"

/* Dropout masks of ordinal k come from this stream of the step's key. */
static uint64_t mask_key(uint64_t key, int k) { return rng_mix64(key + (uint64_t)(k + 1)); }

/* ---- dense: y[B,out] = x[B,in] W[in,out] + b, then its fused epilogue ---- */

/* Declares a tensor of l; its offset comes from the model. */
static void declare(Layer *l, const char *what, int ndim, const int *dims, int decay, int max_norm)
{
    LayerTensor *t = &l->tensors[l->num_tensors++];
    *t = (LayerTensor){.what = what, .ndim = ndim, .decay = decay, .max_norm = max_norm};
    for (int d = 0; d < ndim; d++)
        t->dims[d] = dims[d];
}

static float *W_of(const Layer *l, const float *base) { return (float *)base + l->tensors[0].offset; }
static float *b_of(const Layer *l, const float *base) { return (float *)base + l->tensors[1].offset; }

static int dense_setup(Layer *l, Error *e)
{
    const int in = (int)shape_size(l->in), out = l->spec.units;
    if (out < 1 || out > 1 << 20)
        return err_set(e, "dense layer width %d is outside 1..%d", out, 1 << 20);
    l->out = (Shape){1, 1, out};
    declare(l, "W", 2, (const int[]){in, out}, 1, 1);
    declare(l, "b", 1, (const int[]){out}, 0, 0);
    return 0;
}

static void dense_init(const Layer *l, float *params, uint64_t seed)
{
    const double std = sqrt(2.0 / l->tensors[0].dims[0]); /* He normal: fan-in */
    const uint64_t key = rng_key(seed, RNG_INIT, (uint64_t)l->ordinal, 0);
    float *W = W_of(l, params);
    const size_t n = (size_t)l->tensors[0].dims[0] * (size_t)l->tensors[0].dims[1];
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < n; k++)
        W[k] = (float)(std * rng_normal(key, k));
    memset(b_of(l, params), 0, sizeof(float) * (size_t)l->spec.units);
}

/* A bf16 dense layer's copies in its scratch: its input x [max_rows, in]
 * (kept for the weight gradient), then dy [max_rows, out], each on a 64-byte
 * line. Its W's copy is the pass's bf16 copy of params (LayerCtx). */
#define BF16_LINE 32
static size_t bf16_pad(size_t n) { return (n + BF16_LINE - 1) / BF16_LINE * BF16_LINE; }
static bf16 *bf16_x(const Layer *l) { return (bf16 *)l->scratch; }
static bf16 *bf16_dy(const Layer *l)
{
    return bf16_x(l) + bf16_pad(shape_size(l->in) * (size_t)l->max_rows);
}

bf16 *layer_bf16_input(const Layer *l) { return bf16_x(l); }

/* W's bf16 copy in the pass's copy of params (same offsets). */
static bf16 *bf16_W(const Layer *l, const LayerCtx *c)
{
    return c->params_bf16 + (W_of(l, c->params) - c->params);
}

static size_t dense_scratch(const Layer *l, int max_batch)
{
    if (l->precision != PRECISION_BF16)
        return 0;
    const size_t in = shape_size(l->in), out = (size_t)l->spec.units, rows = (size_t)max_batch;
    return (bf16_pad(rows * in) + bf16_pad(rows * out)) / 2;
}

static void dense_forward_layer(const Layer *l, const LayerCtx *c, const float *x, float *y, int B)
{
    const int in = (int)shape_size(l->in), out = l->spec.units;
    const float p = c->train ? l->drop : 0.0f;
    const float *W = W_of(l, c->params);
    if (l->precision == PRECISION_BF16) {
        bf16 *Wb = bf16_W(l, c);
        if (c->convert_bf16)
            bf16_convert(Wb, W, (size_t)in * out);
        if (!l->x_given)
            bf16_convert(bf16_x(l), x, (size_t)B * in);
        gemm_run(&l->mm[DENSE_FWD], B, bf16_x(l), Wb, y);
    } else {
        gemm_run(&l->mm[DENSE_FWD], B, x, W, y);
    }
    bias_act_dropout_forward(y, b_of(l, c->params), B, out, l->relu, p,
                             mask_key(c->dropout_key, l->drop_ordinal), c->sample_ids, l->next_x);
}

static void dense_backward_layer(const Layer *l, const LayerCtx *c, const float *x,
                                 const float *y, float *dy, float *dx, int B)
{
    const int out = l->spec.units;
    if (l->relu) {
        /* the fused ReLU (and dropout): y > 0 exactly where the unit was both
         * active and kept, so no mask is stored */
        const float scale = c->train && l->drop > 0.0f ? 1.0f / (1.0f - l->drop) : 1.0f;
        relu_dropout_backward(dy, y, B, out, scale,
                              l->precision == PRECISION_BF16 ? bf16_dy(l) : NULL);
    } else if (l->precision == PRECISION_BF16) {
        bf16_convert(bf16_dy(l), dy, (size_t)B * out);
    }
    bias_backward(b_of(l, c->grads), dy, B, out);
    float *dW = W_of(l, c->grads);
    if (l->precision == PRECISION_BF16) {
        /* the forward pass's copies of W and x still hold */
        gemm_run(&l->mm[DENSE_DW], B, bf16_x(l), bf16_dy(l), dW);
        if (dx)
            gemm_run(&l->mm[DENSE_DX], B, bf16_dy(l), bf16_W(l, c), dx);
        return;
    }
    gemm_run(&l->mm[DENSE_DW], B, x, dy, dW);
    if (dx)
        gemm_run(&l->mm[DENSE_DX], B, dy, W_of(l, c->params), dx);
}

/* ---- relu: y = max(x, 0), in place ----------------------------------------- */

static int same_shape_setup(Layer *l, Error *e)
{
    (void)e;
    l->out = l->in;
    l->in_place = 1;
    return 0;
}

static void relu_forward_layer(const Layer *l, const LayerCtx *c, const float *x, float *y, int B)
{
    (void)c, (void)x;
    relu_forward(y, (size_t)B * shape_size(l->out));
}

static void relu_backward_layer(const Layer *l, const LayerCtx *c, const float *x, const float *y,
                                float *dy, float *dx, int B)
{
    (void)c, (void)x, (void)dx;
    relu_backward(dy, y, (size_t)B * shape_size(l->out));
}

/* ---- dropout: inverted dropout in training, identity otherwise -------------- */

static int dropout_setup(Layer *l, Error *e)
{
    if (!(l->spec.rate >= 0.0f && l->spec.rate < 1.0f))
        return err_set(e, "dropout rate %g is outside [0, 1)", (double)l->spec.rate);
    return same_shape_setup(l, e);
}

static void dropout_forward_layer(const Layer *l, const LayerCtx *c, const float *x, float *y,
                                  int B)
{
    (void)x;
    if (c->train)
        dropout_forward(y, B, (int)shape_size(l->out), l->spec.rate,
                        mask_key(c->dropout_key, l->ordinal), c->sample_ids);
}

static void dropout_backward_layer(const Layer *l, const LayerCtx *c, const float *x,
                                   const float *y, float *dy, float *dx, int B)
{
    (void)x, (void)y, (void)dx;
    if (c->train)
        dropout_backward(dy, B, (int)shape_size(l->out), l->spec.rate,
                         mask_key(c->dropout_key, l->ordinal), c->sample_ids);
}

/* ---- conv: y[B,oh,ow,f] = im2col(x) W[kh,kw,c,f] + b (NHWC) --------------- */

static ConvGeom conv_geom(const Layer *l)
{
    return (ConvGeom){.h = l->in.h, .w = l->in.w, .c = l->in.c, .f = l->spec.units,
                      .kh = l->spec.kh, .kw = l->spec.kw, .stride = l->spec.stride,
                      .pad = l->spec.pad, .oh = l->out.h, .ow = l->out.w};
}

static int conv_setup(Layer *l, Error *e)
{
    const LayerSpec *s = &l->spec;
    if (s->units < 1 || s->units > 65536 || s->kh < 1 || s->kw < 1 || s->kh > 64 || s->kw > 64 ||
        s->stride < 1 || s->stride > 64 || s->pad < 0 || s->pad >= s->kh || s->pad >= s->kw)
        return err_set(e, "conv %dx%dx%d/s%d/p%d: filters 1..65536, kernel 1..64, stride 1..64 "
                          "and padding below the kernel", s->units, s->kh, s->kw, s->stride,
                       s->pad);
    const int oh = (l->in.h + 2 * s->pad - s->kh) / s->stride + 1;
    const int ow = (l->in.w + 2 * s->pad - s->kw) / s->stride + 1;
    if (l->in.h + 2 * s->pad < s->kh || l->in.w + 2 * s->pad < s->kw)
        return err_set(e, "a %dx%d kernel does not fit the %dx%dx%d input (padding %d)", s->kh,
                       s->kw, l->in.h, l->in.w, l->in.c, s->pad);
    if ((size_t)oh * (size_t)ow * (size_t)s->units > (size_t)1 << 24 ||
        (size_t)s->kh * s->kw * (size_t)l->in.c * (size_t)s->units > (size_t)1 << 26)
        return err_set(e, "conv output %dx%dx%d is too large", oh, ow, s->units);
    l->out = (Shape){oh, ow, s->units};
    /* max-norm is defined on [in, out] columns: not used for kernels */
    declare(l, "W", 4, (const int[]){s->kh, s->kw, l->in.c, s->units}, 1, 0);
    declare(l, "b", 1, (const int[]){s->units}, 0, 0);
#ifdef _OPENMP
    l->slots = omp_get_max_threads();
#else
    l->slots = 1;
#endif
    return 0;
}

static int conv_bf16(const Layer *l)
{
    const ConvGeom g = conv_geom(l);
    return l->precision == PRECISION_BF16 && conv_uses_bf16(&g);
}

static size_t conv_scratch(const Layer *l, int max_batch)
{
    const ConvGeom g = conv_geom(l);
    return conv_work_floats(&g, max_batch, l->slots) +
           (conv_bf16(l) ? conv_bf16_floats(&g, l->slots) : 0);
}

/* A bf16 convolution's products and buffers (after its fp32 workspace). */
static ConvBf16 conv_bf16_of(const Layer *l)
{
    const ConvGeom g = conv_geom(l);
    bf16 *w = (bf16 *)(l->scratch + conv_work_floats(&g, l->max_rows, l->slots));
    const size_t nw = (size_t)g.kh * g.kw * g.c * g.f;
    return (ConvBf16){.plans = l->mm, .W = w, .work = w + (nw + 31) / 32 * 32};
}

int layer_products(const Layer *l, GemmShape *shapes)
{
    if (l->spec.kind == LAYER_DENSE) {
        const int in = (int)shape_size(l->in), out = l->spec.units, B = l->max_rows;
        const GemmType type = l->precision == PRECISION_BF16 ? GEMM_BF16 : GEMM_F32;
        if (!shapes)
            return DENSE_PRODUCTS;
        /* y[B,out] = x[B,in] W[in,out]; dW[in,out] += x^T dy[B,out]; dx[B,in] = dy W^T */
        shapes[DENSE_FWD] = (GemmShape){.m = B, .n = out, .k = in, .type = type};
        shapes[DENSE_DW] = (GemmShape){.m = in, .n = out, .k = B, .ta = 1, .batch_is_k = 1,
                                       .accumulate = 1, .type = type};
        shapes[DENSE_DX] = (GemmShape){.m = B, .n = in, .k = out, .tb = 1, .type = type};
        return DENSE_PRODUCTS;
    }
    if (l->spec.kind == LAYER_CONV && conv_bf16(l)) {
        const ConvGeom g = conv_geom(l);
        for (int t = 0; shapes && t < l->slots; t++)
            conv_bf16_shapes(&g, shapes + t * CONV_PRODUCTS);
        return l->slots * CONV_PRODUCTS;
    }
    return 0;
}

static void conv_init(const Layer *l, float *params, uint64_t seed)
{
    const int *d = l->tensors[0].dims;
    const double std = sqrt(2.0 / ((double)d[0] * d[1] * d[2])); /* He normal: fan-in */
    const uint64_t key = rng_key(seed, RNG_INIT, (uint64_t)l->ordinal, 0);
    float *W = W_of(l, params);
    const size_t n = (size_t)d[0] * d[1] * d[2] * d[3];
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < n; k++)
        W[k] = (float)(std * rng_normal(key, k));
    memset(b_of(l, params), 0, sizeof(float) * (size_t)l->spec.units);
}

static void conv_forward_layer(const Layer *l, const LayerCtx *c, const float *x, float *y, int B)
{
    const ConvGeom g = conv_geom(l);
    const ConvBf16 h = conv_bf16(l) ? conv_bf16_of(l) : (ConvBf16){0};
    conv_forward(y, x, W_of(l, c->params), b_of(l, c->params), B, &g, l->relu, l->scratch,
                 l->slots, h.plans ? &h : NULL);
}

static void conv_backward_layer(const Layer *l, const LayerCtx *c, const float *x, const float *y,
                                float *dy, float *dx, int B)
{
    const ConvGeom g = conv_geom(l);
    const ConvBf16 h = conv_bf16(l) ? conv_bf16_of(l) : (ConvBf16){0};
    conv_backward(dx, W_of(l, c->grads), b_of(l, c->grads), dy, x, l->relu ? y : NULL,
                  W_of(l, c->params), B, &g, l->scratch, l->slots, h.plans ? &h : NULL);
}

/* ---- maxpool: y = max over each window (first max wins in backward) ---------- */

static PoolGeom pool_geom(const Layer *l)
{
    return (PoolGeom){.h = l->in.h, .w = l->in.w, .c = l->in.c, .size = l->spec.kh,
                      .stride = l->spec.stride, .oh = l->out.h, .ow = l->out.w};
}

static int maxpool_setup(Layer *l, Error *e)
{
    const int k = l->spec.kh, s = l->spec.stride;
    if (k < 1 || k > 64 || s < 1 || s > 64)
        return err_set(e, "maxpool %d/s%d: size and stride 1..64", k, s);
    if (l->in.h < k || l->in.w < k)
        return err_set(e, "a %dx%d window does not fit the %dx%dx%d input", k, k, l->in.h,
                       l->in.w, l->in.c);
    l->out = (Shape){(l->in.h - k) / s + 1, (l->in.w - k) / s + 1, l->in.c};
    return 0;
}

static void maxpool_forward_layer(const Layer *l, const LayerCtx *c, const float *x, float *y,
                                  int B)
{
    (void)c;
    const PoolGeom g = pool_geom(l);
    maxpool_forward(y, x, B, &g);
}

static void maxpool_backward_layer(const Layer *l, const LayerCtx *c, const float *x,
                                   const float *y, float *dy, float *dx, int B)
{
    (void)c, (void)y;
    const PoolGeom g = pool_geom(l);
    if (dx)
        maxpool_backward(dx, dy, x, B, &g);
}

/* ---- flatten: the same floats seen as 1 x 1 x hwc ----------------------------- */

static int flatten_setup(Layer *l, Error *e)
{
    (void)e;
    l->out = (Shape){1, 1, (int)shape_size(l->in)};
    l->in_place = 1;
    return 0;
}

static void flatten_forward_layer(const Layer *l, const LayerCtx *c, const float *x, float *y,
                                  int B)
{
    (void)l, (void)c, (void)x, (void)y, (void)B;
}

static void flatten_backward_layer(const Layer *l, const LayerCtx *c, const float *x,
                                   const float *y, float *dy, float *dx, int B)
{
    (void)l, (void)c, (void)x, (void)y, (void)dy, (void)dx, (void)B;
}

static const LayerOps OPS[LAYER_KINDS] = {
    [LAYER_DENSE] = {.name = "dense", .has_params = 1, .setup = dense_setup, .scratch = dense_scratch,
                     .init = dense_init,
                     .forward = dense_forward_layer, .backward = dense_backward_layer},
    [LAYER_RELU] = {.name = "relu", .setup = same_shape_setup, .forward = relu_forward_layer,
                    .backward = relu_backward_layer},
    [LAYER_DROPOUT] = {.name = "dropout", .setup = dropout_setup,
                       .forward = dropout_forward_layer, .backward = dropout_backward_layer},
    [LAYER_CONV] = {.name = "conv", .has_params = 1, .setup = conv_setup, .scratch = conv_scratch,
                    .init = conv_init, .forward = conv_forward_layer,
                    .backward = conv_backward_layer},
    [LAYER_MAXPOOL] = {.name = "maxpool", .setup = maxpool_setup,
                       .forward = maxpool_forward_layer, .backward = maxpool_backward_layer},
    [LAYER_FLATTEN] = {.name = "flatten", .setup = flatten_setup,
                       .forward = flatten_forward_layer, .backward = flatten_backward_layer},
};

const LayerOps *layer_ops(LayerKind k) { return &OPS[k]; }

int layer_kind_named(const char *name)
{
    for (int k = 0; k < LAYER_KINDS; k++)
        if (strcmp(OPS[k].name, name) == 0)
            return k;
    return -1;
}

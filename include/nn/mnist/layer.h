/* layer: one layer of a model's stack, and the table of what each kind
 * does. A kind declares its output shape, its tensors (spans of the model's
 * flat parameter vector) and its scratch, initialises its parameters, and
 * runs forward and backward on flat row-major arrays [B, size of a sample].
 * A sample is NHWC (channels-last, [h, w, c] row-major) throughout, like the
 * datasets; flattening keeps that order. Kernels come from ops and conv.
 * Must not allocate, print, or know about ranks. */
#ifndef MNIST_LAYER_H
#define MNIST_LAYER_H

#include <stddef.h>
#include <stdint.h>

#include "mnist/bf16.h"
#include "mnist/gemm.h"
#include "mnist/shape.h"
#include "mnist/tensor.h"
#include "mnist/util.h"

typedef enum {
    LAYER_DENSE,   /* y = x W + b over the flattened sample: dense:UNITS */
    LAYER_RELU,    /* y = max(x, 0), in place */
    LAYER_DROPOUT, /* inverted dropout, in place, training only: dropout:RATE */
    LAYER_CONV,    /* 2-D convolution, zero padding: conv:FxKHxKW[/sSTRIDE][/pPAD] */
    LAYER_MAXPOOL, /* max pooling, no padding: maxpool:SIZE[/sSTRIDE] (stride: SIZE) */
    LAYER_FLATTEN, /* h x w x c -> 1 x 1 x hwc, in place (dense flattens by itself) */
    LAYER_KINDS
} LayerKind;

/* The precision of a model's products: fp32, or bf16 copies of the weights
 * and activations into products that sum in fp32 (the parameters, their
 * gradients, the loss and every element-wise step stay fp32). */
typedef enum { PRECISION_FP32, PRECISION_BF16 } Precision;

/* A dense layer's products, planned by the model. */
enum { DENSE_FWD, DENSE_DW, DENSE_DX, DENSE_PRODUCTS };

/* A layer as the user asked for it (the fields its kind uses). */
typedef struct LayerSpec {
    LayerKind kind;
    int units;  /* dense: output width; conv: filters */
    int kh, kw; /* conv: kernel height, width; maxpool: window (kh = kw) */
    int stride; /* conv, maxpool */
    int pad;    /* conv: zeros added on every side */
    float rate; /* dropout: drop probability in [0, 1) */
} LayerSpec;

#define LAYER_MAX_TENSORS 2

/* A tensor a layer declares: its shape and rules; the model places it in
 * the flat parameter vector and fills in offset. */
typedef struct LayerTensor {
    const char *what;     /* "W", "b" */
    int ndim;
    int dims[TENSOR_MAX_DIMS];
    int decay, max_norm;  /* as in Tensor */
    size_t offset;        /* in params (and grads), set by the model */
} LayerTensor;

/* A layer built inside a model. */
typedef struct Layer {
    LayerSpec spec;
    Shape in, out;
    int ordinal;     /* among the layers with parameters (init streams) or, for dropout, among
                        the dropout layers (mask streams) */
    int in_place;    /* the output overwrites the input's buffer */
    int fused;       /* a ReLU, or a dropout after a fused ReLU, applied inside the previous
                        dense (or conv: ReLU only) layer's output pass (one sweep instead of
                        three): skipped here */
    int relu;        /* dense, conv: ReLU fused into its output pass */
    float drop;      /* dense: dropout rate fused into its output pass (0: none) */
    int drop_ordinal; /* dense: that fused dropout's ordinal */
    int num_tensors;
    LayerTensor tensors[LAYER_MAX_TENSORS];
    size_t scratch_floats;
    int slots;       /* conv: threads its scratch serves (the team size at setup) */
    Precision precision; /* dense: of its products */
    int max_rows;    /* the rows its buffers hold (the model's max_batch) */
    bf16 *next_x;    /* bf16 dense: the next dense layer's bf16 input, which its output pass
                        writes (NULL: none) */
    int x_given;     /* bf16 dense: the previous layer writes its bf16 input */
    int num_mm;      /* plans at mm */
    GemmPlan *mm;    /* dense: its DENSE_PRODUCTS products; bf16 conv: per slot (owned by the model; NULL in a
                        layout without buffers) */
    float *act;      /* its output [max_batch, shape_size(out)] in the arena (in place: the
                        input's) */
    float *scratch;
} Layer;

/* What a pass hands every layer: the flat vectors and the pass's keys. */
typedef struct LayerCtx {
    const float *params;
    float *grads;
    int train;               /* dropout on */
    uint64_t dropout_key;    /* the step's mask stream */
    const uint64_t *sample_ids;
    /* --precision bf16: the copy of params (same offsets) bf16 dense layers
     * multiply with; with convert_bf16 the forward pass first writes its
     * W's part, else the optimizer already did (model_forward decides) */
    bf16 *params_bf16;
    int convert_bf16;
} LayerCtx;

/* What a kind does. x is the layer's input [B, in], y its output [B, out]
 * (y == x for in-place kinds); backward gets dy (overwritable) and writes
 * dx, the input's gradient (NULL: not needed, e.g. for the first layer),
 * and ADDS the parameters' gradients into c->grads. */
typedef struct LayerOps {
    const char *name;
    int has_params;
    /* sets out and declares the tensors and scratch; -1 with e */
    int (*setup)(Layer *l, Error *e);
    /* scratch floats for passes of up to max_batch rows (NULL: scratch_floats) */
    size_t (*scratch)(const Layer *l, int max_batch);
    void (*init)(const Layer *l, float *params, uint64_t seed);
    void (*forward)(const Layer *l, const LayerCtx *c, const float *x, float *y, int B);
    void (*backward)(const Layer *l, const LayerCtx *c, const float *x, const float *y, float *dy,
                     float *dx, int B);
} LayerOps;

/* The table entry of kind k. */
const LayerOps *layer_ops(LayerKind k);

/* The matrix products layer l runs through the gemm module (dense: its
 * DENSE_PRODUCTS; a bf16 conv: CONV_PRODUCTS per thread slot), written into
 * shapes unless it is NULL; returns how many. */
int layer_products(const Layer *l, GemmShape *shapes);

/* A bf16 dense layer's copy of its input (in its scratch). */
bf16 *layer_bf16_input(const Layer *l);

/* The kind named name ("dense"), or -1. */
int layer_kind_named(const char *name);

#endif

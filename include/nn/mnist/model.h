/* model: a network as a stack of layers (layer.h) over one arena. The
 * parameters and the gradients are two flat vectors with one layout (every
 * tensor 64-byte aligned), followed by control slots that ride along with
 * the gradient exchange; activations and backward scratch live in the same
 * allocation, sized once for max_batch rows. The output layer feeds a
 * softmax cross-entropy. Must not call MPI or HDF5, and must not allocate
 * after model_create. */
#ifndef MNIST_MODEL_H
#define MNIST_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "mnist/layer.h"
#include "mnist/tensor.h"
#include "mnist/util.h"

#define MODEL_MAX_LAYERS 64
#define MODEL_MAX_TENSORS (2 * MODEL_MAX_LAYERS)
#define MODEL_CTRL_FLOATS 16 /* control slots summed with the gradients (see ctrl) */

/* What a network is made of, as the user wrote it (see model_spec_parse). */
typedef struct ModelSpec {
    Precision precision; /* of the products (not part of the layer list's text) */
    int count;
    LayerSpec layers[MODEL_MAX_LAYERS];
} ModelSpec;

typedef struct Model {
    ModelSpec spec;        /* every layer, the output layer included */
    Shape input;           /* one sample's shape, from the data */
    int classes;           /* the output layer's width, from the data */
    int num_layers;
    Layer layers[MODEL_MAX_LAYERS];
    int num_tensors;
    Tensor tensors[MODEL_MAX_TENSORS];
    int max_batch;         /* rows the activation buffers hold */
    float label_smoothing; /* training targets (1-s) onehot + s/C (0: off) */
    float in_mean, in_scale; /* inputs become (x - in_mean) * in_scale (0, 1: as they are) */
    size_t num_params;     /* true parameter count */
    size_t param_floats;   /* length of params and grads (tensors padded to 64 bytes) */
    float *arena;          /* the one allocation of numbers */
    GemmPlan *plans;       /* every dense layer's products (Layer.mm points here) */
    float *params, *grads; /* the flat vectors (may point into shared memory) */
    float *ctrl;           /* MODEL_CTRL_FLOATS floats right after grads: flags summed with the
                              gradients, so they cost no extra message */
    float *delta[2];       /* backward ping-pong buffers [max_batch, widest activation] */
    /* --precision bf16 (NULL without bf16 dense layers): params_bf16 is the
     * bf16 copy of params (same offsets) the optimizer writes as it updates
     * the weights (optim_step's mirror), in the arena (own_bf16) or in the
     * node's shared window. A training pass multiplies with it while
     * bf16_fresh says it holds exactly params; any other pass converts its
     * dense layers' W into own_bf16 (private to this rank) first. */
    bf16 *params_bf16;
    bf16 *own_bf16;
    int bf16_fresh;
    bf16 *pass_bf16;       /* the last forward pass's optimizer copy (NULL: it converted) */
    /* the last forward pass, for backward and the layers' masks */
    int train;
    uint64_t dropout_key;
    const uint64_t *sample_ids;
} Model;

/* Parses a layer list: comma-separated tokens dense:N, relu, dropout:P,
 * conv:FxKHxKW[/sS][/pP], maxpool:K[/sS], flatten (see layer.h), e.g.
 * "conv:32x3x3,relu,maxpool:2,flatten,dense:128,relu,dropout:0.5". An
 * empty string is no layers. -1 with e naming the bad token and its
 * position. */
int model_spec_parse(ModelSpec *s, const char *text, Error *e);

/* The layer list of preset name ("ref-cnn", "ref-mlp"), without the
 * output layer, or NULL. */
const char *model_preset(const char *name);

/* --model TEXT: a preset name or a layer list; when it does not end with a
 * dense layer, dense:classes is appended as the output. -1 with e naming the
 * bad token. */
int model_spec_model(ModelSpec *s, const char *text, int classes, Error *e);

/* Appends one layer. -1 with e filled when the spec is full. */
int model_spec_append(ModelSpec *s, LayerSpec l, Error *e);

/* The MLP of --layers W1,W2,... --dropout P: each hidden width becomes
 * dense:W,relu (then dropout:P when P > 0). -1 with e naming the option. */
int model_spec_from_widths(ModelSpec *s, const char *widths, float dropout, Error *e);

/* Writes s in the syntax model_spec_parse reads (round numbers), into buf.
 * 0 or -1 if it does not fit. */
int model_spec_format(char *buf, size_t size, const ModelSpec *s);

/* Builds the layers of spec for input samples of shape `input` and lays out
 * the arena (zeroed). spec must end with a dense layer of `classes` units:
 * the output. -1 with e naming the layer at fault on a bad spec or shape, or
 * when out of memory. */
int model_create(Model *m, const ModelSpec *spec, Shape input, int classes, int max_batch,
                 Error *e);

/* The layers and tensors model_create would build, without the arena (no
 * allocation): for checking a file's tensors before anything is allocated.
 * Same errors as model_create. */
int model_layout(Model *m, const ModelSpec *spec, Shape input, int classes, Error *e);

/* The MLP of widths sizes[0..L]: sizes[0] inputs (a flat 1 x 1 x n sample),
 * L - 1 hidden dense+ReLU(+dropout) blocks, sizes[L] classes. For tools and
 * tests that think in widths. Same errors as model_create. */
int model_create_mlp(Model *m, const int *sizes, int L, float dropout, int max_batch, Error *e);

/* The l-th dense layer (0-based), or NULL. */
Layer *model_dense(Model *m, int l);

/* Layer l's k-th tensor (0: W, 1: b for dense) within base (params or grads). */
float *model_layer_tensor(const Model *m, const Layer *l, int k, float *base);

/* Frees the arena and zeroes m. Safe on a zeroed Model. */
void model_free(Model *m);

/* Parameters from stream (seed, RNG_INIT, parameterised layer ordinal): He
 * normal weights for dense layers, zero biases; independent of thread count.
 * Overwrites params only. */
void model_init_params(Model *m, uint64_t seed);

/* Forward pass for B <= max_batch rows of x[B, input]. With train set,
 * dropout layers drop units with masks keyed by (dropout_key, dropout
 * ordinal, sample_ids[i]). Returns the logits [B, classes] (inside the
 * arena, valid until the next forward). */
const float *model_forward(Model *m, const float *x, int B, int train, uint64_t dropout_key,
                           const uint64_t *sample_ids);

/* Loss and backward after model_forward(m, x, B, ...) on the same x: softmax
 * cross-entropy against labels, gradients scaled by grad_scale (1 / global
 * batch) and ADDED to m->grads. Returns the summed (unscaled) loss; pred
 * (optional) receives each row's argmax. */
double model_backward(Model *m, const float *x, const uint8_t *labels, int B, float grad_scale,
                      int *pred);

/* Sets every gradient (and the control slots) to zero. */
void model_zero_grads(Model *m);

/* Points the model at other storage: params at params (param_floats) and
 * the gradients and control slots at grads (param_floats +
 * MODEL_CTRL_FLOATS). NULL points either back into the model's own arena,
 * which stays allocated (model_free frees it). */
void model_use_buffers(Model *m, float *params, float *grads);

/* Points params_bf16 at mirror (param_floats bf16 values; NULL: back into
 * the arena) and marks it stale. No-op for a model without one. */
void model_use_bf16_mirror(Model *m, bf16 *mirror);

/* The floats the bf16 copy of params takes (param_floats / 2), 0 for a
 * model without one. */
static inline size_t model_bf16_floats(const Model *m)
{
    return m->own_bf16 ? m->param_floats / 2 : 0;
}

/* Call after changing params by any means but optim_step's mirror: the bf16
 * copy is stale and the next pass converts the weights itself. */
static inline void model_params_changed(Model *m) { m->bf16_fresh = 0; }

/* In place on x[B, input]: x = (x - in_mean) * in_scale (the input
 * standardisation the model was trained with). */
void model_normalize_input(const Model *m, float *x, int B);

/* A 64-bit checksum of the parameters' bytes (FNV-1a over 64-bit words):
 * equal on two replicas exactly when their parameters are, for all
 * practical purposes. Reads only. */
uint64_t model_checksum(const Model *m);

/* The tensor named name ("dense0/W"), or NULL. */
const Tensor *model_tensor(const Model *m, const char *name);

/* "784-512-512-10" for a plain MLP, else the layer list, into buf. */
void model_describe(char *buf, size_t size, const Model *m);

#endif

/* export_onnx: builds an ONNX ModelProto from a model's torchnet modules
 * with protobuf-c (onnx.pb-c.h, generated at build time from Debian's
 * onnx.proto), packs it and writes it atomically. Every allocation of the
 * message tree is recorded in one list and freed at the end. No printing. */
#include "mnist/export_onnx.h"
#include "mnist/torchnet.h"

#include <onnx.pb-c.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NODES (TORCHNET_MAX_MODULES + 4)
#define MAX_INITS (2 * TORCHNET_MAX_MODULES + 4)
#define NAME_MAX_LEN 64

/* The message tree under construction and every block it points to. */
typedef struct Builder {
    void **owned;
    size_t n_owned, cap_owned;
    int failed; /* an allocation failed: the tree is incomplete */
    Onnx__NodeProto *nodes[MAX_NODES];
    size_t n_nodes;
    Onnx__TensorProto *inits[MAX_INITS];
    size_t n_inits;
    char value[NAME_MAX_LEN]; /* the graph value the next node reads */
} Builder;

static void *own(Builder *b, void *p)
{
    if (!p) {
        b->failed = 1;
        return NULL;
    }
    if (b->n_owned == b->cap_owned) {
        size_t cap = b->cap_owned ? 2 * b->cap_owned : 256;
        void **grown = realloc(b->owned, sizeof *grown * cap);
        if (!grown) {
            free(p);
            b->failed = 1;
            return NULL;
        }
        b->owned = grown, b->cap_owned = cap;
    }
    return b->owned[b->n_owned++] = p;
}

static void *zalloc(Builder *b, size_t bytes) { return own(b, calloc(1, bytes ? bytes : 1)); }

static char *str(Builder *b, const char *s)
{
    char *p = zalloc(b, strlen(s) + 1);
    if (p)
        memcpy(p, s, strlen(s) + 1);
    return p;
}

static void builder_free(Builder *b)
{
    for (size_t i = 0; i < b->n_owned; i++)
        free(b->owned[i]);
    free(b->owned);
}

/* ---- graph pieces ---------------------------------------------------------- */

static Onnx__AttributeProto *attr_ints(Builder *b, Onnx__NodeProto *n, const char *name,
                                       const int64_t *v, size_t count)
{
    Onnx__AttributeProto *a = zalloc(b, sizeof *a);
    int64_t *ints = zalloc(b, sizeof(int64_t) * count);
    Onnx__AttributeProto **list = zalloc(b, sizeof *list * (n->n_attribute + 1));
    if (!a || !ints || !list)
        return NULL;
    onnx__attribute_proto__init(a);
    a->name = str(b, name);
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    memcpy(ints, v, sizeof(int64_t) * count);
    a->n_ints = count, a->ints = ints;
    if (n->n_attribute)
        memcpy(list, n->attribute, sizeof *list * n->n_attribute);
    list[n->n_attribute++] = a;
    n->attribute = list; /* the old list stays owned, freed at the end */
    return a;
}

static void attr_int(Builder *b, Onnx__NodeProto *n, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = attr_ints(b, n, name, &v, 1);
    if (a) {
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
        a->n_ints = 0, a->ints = NULL;
        a->has_i = 1, a->i = v;
    }
}

/* A node reading b->value (then extra, e.g. weights) and writing out, which
 * becomes b->value. */
static Onnx__NodeProto *node(Builder *b, const char *op, const char *name, const char *extra1,
                             const char *extra2, const char *out)
{
    if (b->n_nodes >= MAX_NODES) {
        b->failed = 1;
        return NULL;
    }
    Onnx__NodeProto *n = zalloc(b, sizeof *n);
    char **in = zalloc(b, sizeof *in * 3), **outs = zalloc(b, sizeof *outs);
    if (!n || !in || !outs)
        return NULL;
    onnx__node_proto__init(n);
    n->op_type = str(b, op);
    n->name = str(b, name);
    in[n->n_input++] = str(b, b->value);
    if (extra1)
        in[n->n_input++] = str(b, extra1);
    if (extra2)
        in[n->n_input++] = str(b, extra2);
    n->input = in;
    outs[0] = str(b, out);
    n->n_output = 1, n->output = outs;
    snprintf(b->value, sizeof b->value, "%s", out);
    return b->nodes[b->n_nodes++] = n;
}

/* An initializer: float32 (f32) or int64 (i64) data, little-endian raw bytes. */
static void initializer(Builder *b, const char *name, int ndim, const int *dims, const float *f32,
                        const int64_t *i64, size_t count)
{
    if (b->n_inits >= MAX_INITS) {
        b->failed = 1;
        return;
    }
    Onnx__TensorProto *t = zalloc(b, sizeof *t);
    int64_t *d = zalloc(b, sizeof(int64_t) * (size_t)(ndim ? ndim : 1));
    uint8_t *raw = zalloc(b, count * (f32 ? 4 : 8));
    if (!t || !d || !raw)
        return;
    onnx__tensor_proto__init(t);
    t->name = str(b, name);
    for (int k = 0; k < ndim; k++)
        d[k] = dims[k];
    t->n_dims = (size_t)ndim, t->dims = d;
    t->has_data_type = 1;
    t->data_type = f32 ? ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT : ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    for (size_t i = 0; i < count; i++) { /* little-endian, whatever the host */
        uint64_t v;
        uint32_t w;
        if (f32)
            memcpy(&w, &f32[i], 4), v = w;
        else
            memcpy(&v, &i64[i], 8);
        for (int k = 0; k < (f32 ? 4 : 8); k++)
            raw[i * (f32 ? 4 : 8) + (size_t)k] = (uint8_t)(v >> (8 * k));
    }
    t->has_raw_data = 1;
    t->raw_data.len = count * (f32 ? 4 : 8), t->raw_data.data = raw;
    b->inits[b->n_inits++] = t;
}

/* A float32 tensor's type and shape; dims[k] < 0 is the dynamic batch "N". */
static Onnx__ValueInfoProto *value_info(Builder *b, const char *name, int ndim, const int *dims)
{
    Onnx__ValueInfoProto *v = zalloc(b, sizeof *v);
    Onnx__TypeProto *type = zalloc(b, sizeof *type);
    Onnx__TypeProto__Tensor *tensor = zalloc(b, sizeof *tensor);
    Onnx__TensorShapeProto *shape = zalloc(b, sizeof *shape);
    Onnx__TensorShapeProto__Dimension **dim = zalloc(b, sizeof *dim * (size_t)ndim);
    if (!v || !type || !tensor || !shape || !dim)
        return NULL;
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(type);
    onnx__type_proto__tensor__init(tensor);
    onnx__tensor_shape_proto__init(shape);
    for (int k = 0; k < ndim; k++) {
        Onnx__TensorShapeProto__Dimension *d = zalloc(b, sizeof *d);
        if (!d)
            return NULL;
        onnx__tensor_shape_proto__dimension__init(d);
        if (dims[k] < 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = str(b, "N");
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = dims[k];
        }
        dim[k] = d;
    }
    shape->n_dim = (size_t)ndim, shape->dim = dim;
    tensor->has_elem_type = 1;
    tensor->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tensor->shape = shape;
    type->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    type->tensor_type = tensor;
    v->name = str(b, name);
    v->type = type;
    return v;
}

/* ---- the modules as nodes ------------------------------------------------------ */

static void pair_attr(Builder *b, Onnx__NodeProto *n, const char *name, int a, int c)
{
    attr_ints(b, n, name, (const int64_t[]){a, c}, 2);
}

/* Module i as its node (dropout: none; identity at inference). */
static void module_node(Builder *b, const TorchModule *mod, int i)
{
    char name[NAME_MAX_LEN], out[NAME_MAX_LEN], w[NAME_MAX_LEN], bias[NAME_MAX_LEN];
    snprintf(name, sizeof name, "layers.%d", i);
    snprintf(out, sizeof out, "layers.%d.output", i);
    snprintf(w, sizeof w, "layers.%d.weight", i);
    snprintf(bias, sizeof bias, "layers.%d.bias", i);
    Onnx__NodeProto *n = NULL;
    switch (mod->kind) {
    case TORCH_CONV2D:
        initializer(b, w, mod->wndim, mod->wdims, mod->weight, NULL, mod->wcount);
        initializer(b, bias, 1, (const int[]){(int)mod->bcount}, mod->bias, NULL, mod->bcount);
        if ((n = node(b, "Conv", name, w, bias, out))) {
            pair_attr(b, n, "kernel_shape", mod->kh, mod->kw);
            pair_attr(b, n, "strides", mod->stride, mod->stride);
            attr_ints(b, n, "pads", (const int64_t[]){mod->pad, mod->pad, mod->pad, mod->pad}, 4);
        }
        return;
    case TORCH_MAXPOOL2D:
        if ((n = node(b, "MaxPool", name, NULL, NULL, out))) {
            pair_attr(b, n, "kernel_shape", mod->kh, mod->kw);
            pair_attr(b, n, "strides", mod->stride, mod->stride);
        }
        return;
    case TORCH_RELU:
        node(b, "Relu", name, NULL, NULL, out);
        return;
    case TORCH_DROPOUT:
        return;
    case TORCH_FLATTEN:
        if ((n = node(b, "Flatten", name, NULL, NULL, out)))
            attr_int(b, n, "axis", 1);
        return;
    case TORCH_UNFLATTEN: {
        char shape[NAME_MAX_LEN];
        snprintf(shape, sizeof shape, "layers.%d.shape", i);
        initializer(b, shape, 1, (const int[]){4}, NULL, (const int64_t[]){0, mod->in.c, 1, 1}, 4);
        node(b, "Reshape", name, shape, NULL, out);
        return;
    }
    case TORCH_LINEAR:
        initializer(b, w, mod->wndim, mod->wdims, mod->weight, NULL, mod->wcount);
        initializer(b, bias, 1, (const int[]){(int)mod->bcount}, mod->bias, NULL, mod->bcount);
        if ((n = node(b, "Gemm", name, w, bias, out)))
            attr_int(b, n, "transB", 1);
        return;
    case TORCH_SOFTMAX:
        if ((n = node(b, "Softmax", name, NULL, NULL, "probabilities")))
            attr_int(b, n, "axis", 1);
        return;
    }
}

/* The graph: input, standardisation (when the checkpoint has one), modules. */
static Onnx__GraphProto *graph(Builder *b, const TorchNet *t)
{
    Onnx__GraphProto *g = zalloc(b, sizeof *g);
    Onnx__ValueInfoProto **in = zalloc(b, sizeof *in), **out = zalloc(b, sizeof *out);
    if (!g || !in || !out)
        return NULL;
    onnx__graph_proto__init(g);
    g->name = str(b, "mnist-dist");
    snprintf(b->value, sizeof b->value, "input");
    if (t->in_mean != 0.0f || t->in_scale != 1.0f) {
        /* the same two float operations as training: (x - mean) * scale */
        initializer(b, "input_mean", 0, NULL, &t->in_mean, NULL, 1);
        initializer(b, "input_scale", 0, NULL, &t->in_scale, NULL, 1);
        node(b, "Sub", "standardize.sub", "input_mean", NULL, "centred");
        node(b, "Mul", "standardize.mul", "input_scale", NULL, "standardized");
    }
    for (int i = 0; i < t->count; i++)
        module_node(b, &t->mods[i], i);
    in[0] = value_info(b, "input", 4, (const int[]){-1, t->input.c, t->input.h, t->input.w});
    out[0] = value_info(b, "probabilities", 2, (const int[]){-1, t->classes});
    g->n_input = 1, g->input = in;
    g->n_output = 1, g->output = out;
    g->n_node = b->n_nodes, g->node = b->nodes;
    g->n_initializer = b->n_inits, g->initializer = b->inits;
    return g;
}

static void metadata(Builder *b, Onnx__ModelProto *mp, const char *const *kv, size_t pairs)
{
    Onnx__StringStringEntryProto **list = zalloc(b, sizeof *list * pairs);
    if (!list)
        return;
    for (size_t i = 0; i < pairs; i++) {
        Onnx__StringStringEntryProto *p = zalloc(b, sizeof *p);
        if (!p)
            return;
        onnx__string_string_entry_proto__init(p);
        p->key = str(b, kv[2 * i]), p->value = str(b, kv[2 * i + 1]);
        list[i] = p;
    }
    mp->n_metadata_props = pairs, mp->metadata_props = list;
}

/* The whole model message (its blocks owned by b). */
static Onnx__ModelProto *model_proto(Builder *b, const TorchNet *t, const char *source)
{
    Onnx__ModelProto *mp = zalloc(b, sizeof *mp);
    Onnx__OperatorSetIdProto *opset = zalloc(b, sizeof *opset);
    Onnx__OperatorSetIdProto **opsets = zalloc(b, sizeof *opsets);
    if (!mp || !opset || !opsets)
        return NULL;
    onnx__model_proto__init(mp);
    onnx__operator_set_id_proto__init(opset);
    opset->domain = str(b, "");
    opset->has_version = 1, opset->version = EXPORT_ONNX_OPSET;
    opsets[0] = opset;
    mp->has_ir_version = 1, mp->ir_version = EXPORT_ONNX_IR_VERSION;
    mp->n_opset_import = 1, mp->opset_import = opsets;
    mp->producer_name = str(b, "mnist-dist");
    mp->producer_version = str(b, MNIST_VERSION);
    char doc[1400], classes[16], shape[64], mean[32], scale[32];
    snprintf(doc, sizeof doc,
             "mnist-dist export%s%.1024s: input [N, %d, %d, %d] float32 pixels / 255 in [0, 1] "
             "(NCHW); output probabilities [N, %d] (softmax)",
             source ? " of " : "", source ? source : "", t->input.c, t->input.h, t->input.w,
             t->classes);
    mp->doc_string = str(b, doc);
    snprintf(classes, sizeof classes, "%d", t->classes);
    snprintf(shape, sizeof shape, "[%d, %d, %d]", t->input.c, t->input.h, t->input.w);
    torchnet_float_text(mean, sizeof mean, t->in_mean);
    torchnet_float_text(scale, sizeof scale, t->in_scale);
    const char *kv[] = {"model", t->spec, "classes", classes, "input_shape", shape,
                        "input_mean", mean, "input_scale", scale,
                        "pixels", "x / 255 in [0, 1], then (x - input_mean) * input_scale"};
    metadata(b, mp, kv, sizeof kv / sizeof kv[0] / 2);
    mp->graph = graph(b, t);
    return mp;
}

int export_onnx_write(const char *path, const Model *m, const char *source, Error *e)
{
    TorchNet *t = malloc(sizeof *t);
    if (!t)
        return err_set(e, "%s: out of memory", path);
    if (torchnet_build(t, m, e)) {
        free(t);
        return err_prefix(e, "%s", path);
    }
    Builder b = {0};
    Onnx__ModelProto *mp = model_proto(&b, t, source);
    int rc = 0;
    if (!mp || b.failed) {
        rc = err_set(e, "%s: out of memory building the ONNX graph", path);
    } else {
        const size_t bytes = onnx__model_proto__get_packed_size(mp);
        uint8_t *buf = malloc(bytes ? bytes : 1);
        if (!buf)
            rc = err_set(e, "%s: out of memory for %zu bytes", path, bytes);
        else if (onnx__model_proto__pack(mp, buf) != bytes)
            rc = err_set(e, "%s: protobuf-c packed an unexpected size", path);
        else
            rc = file_write_atomic(path, buf, bytes, e);
        free(buf);
    }
    builder_free(&b);
    torchnet_free(t);
    free(t);
    return rc;
}

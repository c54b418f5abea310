/* torchnet: our layer stack as PyTorch modules over NCHW tensors, with the
 * parameters copied into PyTorch's layouts (bit for bit, only reordered).
 * No files, no formats. */
#include "mnist/torchnet.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const KIND_NAMES[] = {
    [TORCH_CONV2D] = "Conv2d",       [TORCH_RELU] = "ReLU",       [TORCH_DROPOUT] = "Dropout",
    [TORCH_MAXPOOL2D] = "MaxPool2d", [TORCH_FLATTEN] = "Flatten", [TORCH_UNFLATTEN] = "Unflatten",
    [TORCH_LINEAR] = "Linear",       [TORCH_SOFTMAX] = "Softmax",
};

const char *torchnet_kind_name(TorchKind k) { return KIND_NAMES[k]; }

void torchnet_float_text(char *buf, size_t size, float v)
{
    for (int digits = 6; digits < 10; digits++) {
        snprintf(buf, size, "%.*g", digits, (double)v);
        if (strtof(buf, NULL) == v)
            return;
    }
}

static TorchModule *push(TorchNet *t, TorchKind kind, Shape in, Shape out, Error *e)
{
    if (t->count >= TORCHNET_MAX_MODULES) {
        err_set(e, "the model has more than %d modules", TORCHNET_MAX_MODULES);
        return NULL;
    }
    TorchModule *mod = &t->mods[t->count++];
    *mod = (TorchModule){.kind = kind, .in = in, .out = out};
    return mod;
}

/* Allocates mod's weight (dims in PyTorch's layout) and bias of n floats. */
static int alloc_params(TorchModule *mod, int ndim, const int *dims, int n, Error *e)
{
    mod->wndim = ndim;
    mod->wcount = 1;
    for (int d = 0; d < ndim; d++)
        mod->wdims[d] = dims[d], mod->wcount *= (size_t)dims[d];
    mod->bcount = (size_t)n;
    mod->weight = malloc(sizeof(float) * mod->wcount);
    mod->bias = malloc(sizeof(float) * mod->bcount);
    if (!mod->weight || !mod->bias)
        return err_set(e, "out of memory for a %zu-float tensor", mod->wcount);
    return 0;
}

/* Conv2d weight[f][c][u][v] = ours W[u][v][c][f] (HWIO -> OIHW). */
static int add_conv(TorchNet *t, const Model *m, const Layer *l, Error *e)
{
    TorchModule *mod = push(t, TORCH_CONV2D, l->in, l->out, e);
    if (!mod)
        return -1;
    mod->kh = l->spec.kh, mod->kw = l->spec.kw, mod->stride = l->spec.stride, mod->pad = l->spec.pad;
    const int F = l->spec.units, C = l->in.c, KH = l->spec.kh, KW = l->spec.kw;
    if (alloc_params(mod, 4, (const int[]){F, C, KH, KW}, F, e))
        return -1;
    const float *W = model_layer_tensor(m, l, 0, m->params), *b = model_layer_tensor(m, l, 1, m->params);
    for (int f = 0; f < F; f++)
        for (int c = 0; c < C; c++)
            for (int u = 0; u < KH; u++)
                for (int v = 0; v < KW; v++)
                    mod->weight[(((size_t)f * C + c) * KH + u) * KW + v] =
                        W[(((size_t)u * KW + v) * C + c) * F + f];
    memcpy(mod->bias, b, sizeof(float) * (size_t)F);
    return 0;
}

/* Linear weight[o][k] with k = c*h*w + y*w + x (NCHW flatten of `from`) =
 * ours W[(y*w + x)*c + ch][o] (NHWC flatten). */
static int add_linear(TorchNet *t, const Model *m, const Layer *l, Shape from, Error *e)
{
    TorchModule *mod = push(t, TORCH_LINEAR, l->in, l->out, e);
    if (!mod)
        return -1;
    const int out = l->spec.units, in = (int)shape_size(l->in);
    if (alloc_params(mod, 2, (const int[]){out, in}, out, e))
        return -1;
    const float *W = model_layer_tensor(m, l, 0, m->params), *b = model_layer_tensor(m, l, 1, m->params);
    const size_t hw = (size_t)from.h * (size_t)from.w;
    for (int c = 0; c < from.c; c++)
        for (size_t p = 0; p < hw; p++) {
            const size_t k = (size_t)c * hw + p, ours = p * (size_t)from.c + (size_t)c;
            for (int o = 0; o < out; o++)
                mod->weight[(size_t)o * (size_t)in + k] = W[ours * (size_t)out + (size_t)o];
        }
    memcpy(mod->bias, b, sizeof(float) * (size_t)out);
    return 0;
}

/* Flattens the 4-D tensor of shape s: an inserted Flatten module. */
static int flatten(TorchNet *t, Shape s, int *flat, Shape *from, Error *e)
{
    if (*flat)
        return 0;
    if (!push(t, TORCH_FLATTEN, s, (Shape){1, 1, (int)shape_size(s)}, e))
        return -1;
    *flat = 1;
    *from = s;
    return 0;
}

/* One of our layers as its module(s). flat: the tensor is [N, n]; from:
 * the shape whose NHWC flattening it is (what a Linear's rows follow). */
static int add_layer(TorchNet *t, const Model *m, const Layer *l, int *flat, Shape *from, Error *e)
{
    const int spatial = l->spec.kind == LAYER_CONV || l->spec.kind == LAYER_MAXPOOL;
    if (spatial && *flat) { /* after a dense or flatten layer: 1 x 1 x c */
        if (!push(t, TORCH_UNFLATTEN, l->in, l->in, e))
            return -1;
        *flat = 0;
    }
    TorchModule *mod;
    switch (l->spec.kind) {
    case LAYER_CONV:
        return add_conv(t, m, l, e);
    case LAYER_MAXPOOL:
        if (!(mod = push(t, TORCH_MAXPOOL2D, l->in, l->out, e)))
            return -1;
        mod->kh = mod->kw = l->spec.kh, mod->stride = l->spec.stride;
        return 0;
    case LAYER_RELU:
        return push(t, TORCH_RELU, l->in, l->out, e) ? 0 : -1;
    case LAYER_DROPOUT:
        if (!(mod = push(t, TORCH_DROPOUT, l->in, l->out, e)))
            return -1;
        mod->rate = l->spec.rate;
        return 0;
    case LAYER_FLATTEN:
        return flatten(t, l->in, flat, from, e);
    case LAYER_DENSE:
        if (flatten(t, l->in, flat, from, e) || add_linear(t, m, l, *from, e))
            return -1;
        *from = l->out;
        return 0;
    default:
        return err_set(e, "layer kind %d cannot be exported", (int)l->spec.kind);
    }
}

int torchnet_build(TorchNet *t, const Model *m, Error *e)
{
    memset(t, 0, sizeof *t);
    t->input = m->input, t->classes = m->classes;
    t->in_mean = m->in_mean, t->in_scale = m->in_scale;
    if (model_spec_format(t->spec, sizeof t->spec, &m->spec))
        return err_set(e, "the layer list is too long to export");
    int flat = 0;
    Shape from = m->input;
    for (int i = 0; i < m->num_layers; i++)
        if (add_layer(t, m, &m->layers[i], &flat, &from, e)) {
            torchnet_free(t);
            return err_prefix(e, "layer %d (%s)", i + 1, layer_ops(m->layers[i].spec.kind)->name);
        }
    const Shape out = {1, 1, m->classes};
    if (!push(t, TORCH_SOFTMAX, out, out, e)) {
        torchnet_free(t);
        return -1;
    }
    return 0;
}

void torchnet_free(TorchNet *t)
{
    for (int i = 0; i < t->count; i++)
        free(t->mods[i].weight), free(t->mods[i].bias);
    memset(t, 0, sizeof *t);
}

static void add_pair(cJSON *o, const char *key, int a, int b)
{
    cJSON_AddItemToObject(o, key, cJSON_CreateIntArray((const int[]){a, b}, 2));
}

/* One module's keyword arguments. */
static void module_json(cJSON *o, const TorchModule *mod)
{
    char num[32];
    cJSON_AddStringToObject(o, "type", KIND_NAMES[mod->kind]);
    switch (mod->kind) {
    case TORCH_CONV2D:
        cJSON_AddNumberToObject(o, "in_channels", mod->in.c);
        cJSON_AddNumberToObject(o, "out_channels", mod->out.c);
        add_pair(o, "kernel_size", mod->kh, mod->kw);
        cJSON_AddNumberToObject(o, "stride", mod->stride);
        cJSON_AddNumberToObject(o, "padding", mod->pad);
        break;
    case TORCH_MAXPOOL2D:
        cJSON_AddNumberToObject(o, "kernel_size", mod->kh);
        cJSON_AddNumberToObject(o, "stride", mod->stride);
        break;
    case TORCH_DROPOUT:
        torchnet_float_text(num, sizeof num, mod->rate);
        cJSON_AddNumberToObject(o, "p", strtod(num, NULL));
        break;
    case TORCH_UNFLATTEN:
        cJSON_AddNumberToObject(o, "dim", 1);
        cJSON_AddItemToObject(o, "unflattened_size",
                              cJSON_CreateIntArray((const int[]){mod->in.c, 1, 1}, 3));
        break;
    case TORCH_LINEAR:
        cJSON_AddNumberToObject(o, "in_features", (double)shape_size(mod->in));
        cJSON_AddNumberToObject(o, "out_features", mod->out.c);
        break;
    case TORCH_SOFTMAX:
        cJSON_AddNumberToObject(o, "dim", 1);
        break;
    case TORCH_RELU:
    case TORCH_FLATTEN:
        break;
    }
}

char *torchnet_json(const TorchNet *t)
{
    cJSON *list = cJSON_CreateArray();
    if (!list)
        return NULL;
    for (int i = 0; i < t->count; i++) {
        cJSON *o = cJSON_CreateObject();
        if (!o)
            break;
        module_json(o, &t->mods[i]);
        cJSON_AddItemToArray(list, o);
    }
    char *text = cJSON_GetArraySize(list) == t->count ? cJSON_PrintUnformatted(list) : NULL;
    cJSON_Delete(list);
    return text;
}

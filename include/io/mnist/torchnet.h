/* torchnet: a model as the modules of an equivalent PyTorch
 * torch.nn.Sequential over NCHW tensors, each parameter in PyTorch's layout:
 * what both exporters (ONNX, safetensors) write, so an exported graph and a
 * state_dict describe the same network. Conv2d weights are [F, C, KH, KW]
 * (ours are HWIO); Linear weights are [out, in] with the inputs in
 * PyTorch's NCHW flatten order (ours flatten NHWC: the rows are permuted).
 * Flatten and Unflatten modules are inserted where our layers flatten or
 * unflatten by themselves; dropout stays (identity at inference); a Softmax
 * ends the list. Must not write files or know the file formats. */
#ifndef MNIST_TORCHNET_H
#define MNIST_TORCHNET_H

#include <stddef.h>

#include "mnist/model.h"
#include "mnist/util.h"

typedef enum {
    TORCH_CONV2D,    /* Conv2d(in_c, out_c, (kh, kw), stride, padding) */
    TORCH_RELU,      /* ReLU() */
    TORCH_DROPOUT,   /* Dropout(p): identity at inference */
    TORCH_MAXPOOL2D, /* MaxPool2d(k, stride): no padding, floor */
    TORCH_FLATTEN,   /* Flatten(): [N, C, H, W] -> [N, C*H*W] */
    TORCH_UNFLATTEN, /* Unflatten(1, (C, 1, 1)): [N, C] -> [N, C, 1, 1] */
    TORCH_LINEAR,    /* Linear(in, out) */
    TORCH_SOFTMAX,   /* Softmax(dim=1) */
} TorchKind;

#define TORCHNET_MAX_MODULES (2 * MODEL_MAX_LAYERS + 1)

typedef struct TorchModule {
    TorchKind kind;
    Shape in, out;     /* per sample, as our h x w x c (a flat [N, n] is 1 x 1 x n) */
    int kh, kw, stride, pad; /* conv, maxpool (kh = kw) */
    float rate;        /* dropout */
    int wndim;         /* parameters (conv, linear): weight dims in PyTorch's layout */
    int wdims[4];
    size_t wcount, bcount;
    float *weight, *bias; /* owned: PyTorch's layouts, the checkpoint's bits */
} TorchModule;

typedef struct TorchNet {
    int count;
    TorchModule mods[TORCHNET_MAX_MODULES];
    Shape input;             /* one sample, h x w x c (PyTorch: [c, h, w]) */
    int classes;
    float in_mean, in_scale; /* inputs (pixels / 255) become (x - mean) * scale first */
    char spec[4096];         /* the model's layer list, as checkpoints write it */
} TorchNet;

/* Builds the module list of m (whose parameters it copies into PyTorch's
 * layouts). -1 with e filled when out of memory or the spec does not fit. */
int torchnet_build(TorchNet *t, const Model *m, Error *e);

/* Frees the tensors and zeroes t. Safe on a zeroed TorchNet. */
void torchnet_free(TorchNet *t);

/* "Conv2d", "ReLU", ...: the torch.nn class of kind k. */
const char *torchnet_kind_name(TorchKind k);

/* The module list as JSON (a malloc'ed string the caller frees): an array
 * of {"type": "Conv2d", "in_channels": 1, ...}, each object the keyword
 * arguments of its torch.nn class, so that
 * Sequential(*(getattr(nn, d.pop("type"))(**d) for d in json.loads(s)))
 * builds the network. NULL when out of memory. */
char *torchnet_json(const TorchNet *t);

/* Writes a float in its shortest decimal form that reads back as the same
 * float ("0.2", not "0.20000000298"), into buf. */
void torchnet_float_text(char *buf, size_t size, float v);

#endif

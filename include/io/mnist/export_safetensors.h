/* export_safetensors: a model's parameters as a safetensors file: an
 * 8-byte little-endian header length, a JSON header (built with cJSON)
 * padded with spaces so the data starts 8-byte aligned, then the raw
 * little-endian float32 tensors in offset order without gaps. Tensors are
 * named and shaped for a torch.nn.Sequential of torchnet.h's modules:
 * layers.{i}.weight / layers.{i}.bias, Conv2d [F, C, KH, KW], Linear
 * [out, in] (inputs in NCHW flatten order). __metadata__ holds strings:
 * format ("pt"), producer, model (the layer list), classes, input_shape
 * ([C, H, W] as JSON), input_mean, input_scale, pixels, torch_layers (the
 * modules as JSON, see torchnet_json). Must not read checkpoints or print. */
#ifndef MNIST_EXPORT_SAFETENSORS_H
#define MNIST_EXPORT_SAFETENSORS_H

#include "mnist/model.h"
#include "mnist/util.h"

/* Writes m's parameters to path as safetensors (temp name, fsync, rename).
 * -1 with e naming path on failure, nothing left at path. */
int export_safetensors_write(const char *path, const Model *m, Error *e);

#endif

/* export_onnx: a model as an ONNX file (opset 13), written with protobuf-c
 * from the onnx.proto Debian's libonnx-dev ships (the C code is generated
 * at build time). One float32 input `input` [N, C, H, W] (NCHW, dynamic N,
 * pixels / 255 in [0, 1] as training scaled them), the checkpoint's
 * standardisation as Sub and Mul when it has one, then the modules of
 * torchnet.h (Conv, Relu, MaxPool, Flatten, Reshape, Gemm; dropout left
 * out: identity at inference), and one output `probabilities` [N, classes]
 * (Softmax). Initializers are named like the safetensors export
 * (layers.{i}.weight, layers.{i}.bias) and hold PyTorch's layouts.
 * Must not read checkpoints or print. */
#ifndef MNIST_EXPORT_ONNX_H
#define MNIST_EXPORT_ONNX_H

#include "mnist/model.h"
#include "mnist/util.h"

#define EXPORT_ONNX_OPSET 13
#define EXPORT_ONNX_IR_VERSION 8 /* what onnx.proto 1.12 writes; opset 13 needs >= 7 */

/* Writes m (parameters and standardisation as loaded) to path as ONNX
 * (temp name, fsync, rename); source (may be NULL) is named in the file's
 * doc string. -1 with e naming path on failure, nothing left at path. */
int export_onnx_write(const char *path, const Model *m, const char *source, Error *e);

#endif

/* export: `mnist-dist export`: a checkpoint as an ONNX model or a
 * safetensors file of PyTorch-shaped tensors (export_onnx.h,
 * export_safetensors.h), for other frameworks. */
#ifndef MNIST_EXPORT_H
#define MNIST_EXPORT_H

#include "mnist/comm.h"
#include "mnist/config.h"

/* Rank 0 reads the checkpoint and writes the file, the others wait for its
 * status; the same on every rank. */
int export_run(const Config *cfg, const Comm *comm);

#endif

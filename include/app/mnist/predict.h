/* predict: `mnist-dist predict`: ImageId,Label[,p0..] for every input image
 * (CSV, IDX or HDF5), sharded across ranks, written by rank 0. */
#ifndef MNIST_PREDICT_H
#define MNIST_PREDICT_H

#include "mnist/comm.h"
#include "mnist/config.h"

/* Runs on every rank; returns the exit status, the same on every rank. */
int predict_run(const Config *cfg, const Comm *comm);

#endif

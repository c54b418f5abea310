/* evaluate: `mnist-dist evaluate`: a checkpoint's metrics and report on
 * labelled data, sharded across ranks; rank 0 writes the report. */
#ifndef MNIST_EVALUATE_H
#define MNIST_EVALUATE_H

#include "mnist/comm.h"
#include "mnist/config.h"

/* Runs on every rank; returns the exit status, the same on every rank. */
int evaluate_run(const Config *cfg, const Comm *comm);

#endif

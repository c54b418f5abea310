/* convert: `mnist-dist convert`: CSV or IDX in, validated, HDF5 or CSV out
 * (by the output's ending) through temp + rename. */
#ifndef MNIST_CONVERT_H
#define MNIST_CONVERT_H

#include "mnist/comm.h"
#include "mnist/config.h"

/* Rank 0 works, the others wait for its status; the same on every rank. */
int convert_run(const Config *cfg, const Comm *comm);

#endif

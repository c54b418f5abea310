/* train: `mnist-dist train`, the run as a sequence of collective phases on
 * one Trainer: init (data, model, optimizer, loader, run directory), start
 * (fresh or resumed), per epoch the steps and the end of the epoch
 * (validation, history, early stopping, checkpoint), finish (test, report),
 * free. The only place that sequences a run's communication besides the
 * exchange; no kernel math. */
#ifndef MNIST_TRAIN_H
#define MNIST_TRAIN_H

#include "mnist/comm.h"
#include "mnist/config.h"

/* Runs `mnist-dist train` on every rank. Returns the exit status, the same
 * on every rank (EXIT_STOPPED after a stop by signal, with a checkpoint to
 * resume from); errors are printed once, by the lowest failing rank.
 * Test hook, for the fault and trainer tests only: MNIST_DIST_FAULT="nan@S"
 * makes the last rank's input NaN at global step S, "diverge@S" perturbs one
 * of the last rank's parameters after step S, "stop@S" acts as a stop signal
 * received by rank 0 during step S. */
int train_run(const Config *cfg, const Comm *comm);

#endif

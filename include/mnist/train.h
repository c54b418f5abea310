/* train: the subcommands' drivers. train_run is the epoch/step loop;
 * evaluate_run and predict_run apply a checkpoint; convert_run turns CSV/IDX
 * into HDF5 or CSV. They (and runtime) are the only places that sequence
 * communication. Must not contain kernel math. */
#ifndef MNIST_TRAIN_H
#define MNIST_TRAIN_H

#include <stdint.h>

#include "mnist/comm.h"
#include "mnist/config.h"
#include "mnist/mlp.h"
#include "mnist/optim.h"

/* Runs `mnist-dist train` on every rank. Returns the exit status, the same
 * on every rank; errors are printed once, by the lowest failing rank. */
int train_run(const Config *cfg, const Comm *comm);

/* Runs `mnist-dist evaluate`: a checkpoint's metrics and report on labelled
 * data, sharded across ranks. Same status contract as train_run. */
int evaluate_run(const Config *cfg, const Comm *comm);

/* Runs `mnist-dist predict`: ImageId,Label[,p0..p9] for every input image,
 * sharded across ranks, written by rank 0. */
int predict_run(const Config *cfg, const Comm *comm);

/* Runs `mnist-dist convert` (rank 0 works, the others wait for its status). */
int convert_run(const Config *cfg, const Comm *comm);

/* The update after the gradients are summed: clip the gradient norm (when
 * m->clip_norm), decay the weights (m->weight_decay, AdamW), one Adam step
 * at opt->lr, max-norm (m->max_norm). Returns the count of non-finite
 * gradient elements. Deterministic and thread-count independent. */
size_t train_update(Mlp *m, Adam *opt);

/* Collective: after sharded steps, makes every rank's Adam moments whole
 * again (an allgather of each). */
void train_sync_moments(const Comm *comm, Mlp *m, const CommSegments *shard);

/* Collective: the sharded optimizer's segments of m's parameter vector, one
 * per rank of comm, each a multiple of 16 floats (64 bytes). 0, or -1 when
 * out of memory. */
int train_segments_init(const Comm *comm, const Mlp *m, CommSegments *s);

/* Collective: when every rank shares one node, allocates sh and moves m into
 * it: the parameters become the node's one shared copy (rank 0's values),
 * the gradients this rank's shared buffer; returns 0. Returns 1 (nothing
 * allocated, m untouched) across nodes, -1 on failure. */
int train_shared_enter(const Comm *comm, Mlp *m, CommShared *sh);

/* Collective: copies the shared parameters back into m's own arena and
 * points m there again. Nothing to do when m already uses its arena. */
void train_shared_leave(Mlp *m, const CommShared *sh);

/* What a step's allreduce told every rank (the same bits on all ranks). */
enum {
    STEP_STOP = 1,      /* some rank was asked to stop (SIGUSR1/SIGTERM) */
    STEP_BAD_LOSS = 2,  /* some rank's loss was NaN or infinite */
    STEP_BAD_GRAD = 4,  /* the summed gradient holds NaN or infinity */
};

/* Seconds spent per phase, accumulated over steps (TICK/TOCK style). */
typedef struct StepTimes {
    double data, forward, backward, allreduce, update;
} StepTimes;
#define STEP_PHASES 5
#define STEP_PHASE_NAMES {"data", "forward", "backward", "allreduce", "update"}

/* How a step combines gradients across ranks. NULL or both members NULL:
 * one allreduce of the whole gradient, every rank updates everything.
 * shard: the sharded optimizer (segments of the parameter vector, one per
 * rank). shared (all ranks on one node; needs shard too): gradients and
 * parameters in node-shared memory, so each rank sums its segment straight
 * from the others' buffers and updates the one shared parameter copy: no
 * message at all for the gradients. */
typedef struct StepComm {
    const CommSegments *shard;
    const CommShared *shared;
} StepComm;

/* One data-parallel step: zero gradients, forward and backward on this rank's
 * b_local rows (x, y, global sample ids), gradients scaled by 1 / global_batch
 * and summed over comm together with the control flags (stop_local: this rank
 * received a stop signal), then the model's rules and one Adam step: clip the
 * gradient norm, decay the weights (AdamW), Adam at opt->lr, max-norm. Adds this rank's summed loss
 * to *loss_sum and its correct predictions to *correct, and the time of each
 * phase to *times (may be NULL). With sc->shard the optimizer is sharded: a
 * reduce-scatter (or, with sc->shared, a sum read from node-shared memory)
 * gives each rank the summed gradient of its segment, each rank updates only
 * that segment (Adam moments outside it go stale: gather them with
 * train_sync_moments before saving), and an allgather (or the shared copy)
 * shares the parameters. Returns STEP_* bits, identical on every rank.
 * Allocation-free. */
int train_step(Mlp *m, Adam *opt, const Comm *comm, const float *x, const uint8_t *y,
               const uint64_t *sample_ids, int b_local, int global_batch, uint64_t dropout_key,
               int stop_local, int *pred, double *loss_sum, int64_t *correct, StepTimes *times,
               const StepComm *sc);

#endif

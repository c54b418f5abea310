/* exchange: one data-parallel step, the same interface for every way
 * gradients are combined across ranks. A step computes this rank's gradient
 * of its rows (the model's forward and backward; the exact kind does it
 * logical shard by logical shard), combines the gradients, applies the
 * optimizer so every replica ends with the same parameters, and shares the
 * stop and NaN flags: every kind takes them in as bits and gives back their
 * OR over ranks. The kinds:
 *   allreduce  one MPI_Allreduce of the gradient (with the flags in control
 *              slots behind it); every rank updates everything;
 *   sharded    reduce-scatter, each rank updates its 1/P segment of the
 *              parameters (the sharded optimizer), allgather;
 *   shared     all ranks on one node: gradients and the parameters in an MPI
 *              shared-memory window; each rank sums its segment straight out
 *              of the others' buffers and updates it in the one shared copy;
 *   exact      --deterministic: logical shards summed in 64-bit fixed point
 *              (integer sums do not depend on order), the same bits for any
 *              rank or thread count.
 * Sequences comm with the model and the optimizer; no kernel math here. */
#ifndef MNIST_EXCHANGE_H
#define MNIST_EXCHANGE_H

#include <stddef.h>
#include <stdint.h>

#include "mnist/comm.h"
#include "mnist/loader.h"
#include "mnist/model.h"
#include "mnist/optim.h"
#include "mnist/util.h"

typedef enum { EXCHANGE_ALLREDUCE, EXCHANGE_SHARDED, EXCHANGE_SHARED, EXCHANGE_EXACT } ExchangeKind;

/* What a step's combination told every rank (the same bits on all ranks). */
enum {
    STEP_STOP = 1,     /* some rank was asked to stop (a signal) */
    STEP_BAD_LOSS = 2, /* some rank's loss was NaN or infinite */
    STEP_BAD_GRAD = 4, /* the summed gradient holds NaN or infinity */
};

/* Seconds spent per phase, accumulated over steps (TICK/TOCK style). */
typedef struct StepTimes {
    double data, forward, backward, allreduce, update;
} StepTimes;
#define STEP_PHASES 5
#define STEP_PHASE_NAMES {"data", "forward", "backward", "allreduce", "update"}

/* The kind a run uses, chosen here and nowhere else: exact for
 * --deterministic; one rank, or --shard-optimizer 0: allreduce;
 * --shard-optimizer 2: sharded; 1: shared (exchange_create falls back to
 * sharded when the ranks span several nodes). */
ExchangeKind exchange_choose(int deterministic, int shard_optimizer, int nranks);

/* "allreduce", "sharded", "shared" or "exact". */
const char *exchange_kind_name(ExchangeKind k);

typedef struct ExchangeConfig {
    ExchangeKind kind;
    int global_batch;      /* gradients are scaled by 1 / global_batch */
    const ShardPlan *plan; /* the rows each step computes (exact: its logical shards) */
    int threads;           /* exact: shards computed in parallel */
} ExchangeConfig;

/* This rank's rows of one step. */
typedef struct StepIn {
    const float *x;     /* [rows, input] */
    const uint8_t *y;
    const uint64_t *ids; /* global row indices: key the dropout masks */
    int rows;           /* plan->local_batch */
    uint64_t dropout_key;
    int stop_local;     /* this rank was asked to stop */
} StepIn;

/* What one step gives back: this rank's sums and the agreed flags. */
typedef struct StepOut {
    int flags;          /* STEP_* bits, identical on every rank */
    double loss_sum;    /* this rank's summed (unscaled) loss */
    int64_t correct;    /* this rank's correct predictions */
    StepTimes times;    /* this step's phases (data left 0) */
} StepOut;

typedef struct Exchange Exchange;

/* Collective: builds the exchange for model and opt (which it updates in
 * every step and does not own). The shared kind moves the model's
 * parameters and gradients into node-shared memory (rank 0's values), or
 * falls back to sharded across nodes. NULL with e filled on failure (the
 * caller agrees on it). */
Exchange *exchange_create(const ExchangeConfig *c, Model *m, Optimizer *opt, const Comm *comm,
                          Error *e);

/* The kind in use (after any fall-back). */
ExchangeKind exchange_kind(const Exchange *x);

/* Collective: one step (see the top of this file). Allocation-free. */
void exchange_step(Exchange *x, const StepIn *in, StepOut *out);

/* Collective: makes every rank's optimizer moments whole again (the sharded
 * kinds keep only their own segment current); before a checkpoint. */
void exchange_gather_state(Exchange *x);

/* Collective: copies the parameters back into the model's own arena (from
 * shared memory), frees the window and everything else. NULL is a no-op. */
void exchange_free(Exchange *x);

#endif

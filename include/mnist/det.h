/* det: bitwise-reproducible data-parallel training (--deterministic).
 * The training rows are split into M logical shards that do not depend on
 * the rank count; every global batch takes the same rows from each logical
 * shard; each shard's gradient is computed by one thread (single-threaded
 * BLAS inside the OpenMP loop), and shard gradients are summed exactly in
 * 64-bit fixed point (integer addition is associative) with a per-tensor
 * scale agreed by an allreduce of exponents. The result is the same bits for
 * any rank count <= M and any thread count. Sequences comm; no kernel math
 * of its own beyond the fixed-point conversion. */
#ifndef MNIST_DET_H
#define MNIST_DET_H

#include <stddef.h>
#include <stdint.h>

#include "mnist/comm.h"
#include "mnist/mlp.h"
#include "mnist/optim.h"
#include "mnist/train.h"
#include "mnist/util.h"

#define DET_MAX_SHARDS 256

/* How the training rows and every global batch divide into logical shards,
 * and which shards this rank owns. */
typedef struct DetPlan {
    int shards;              /* M */
    int first, count;        /* this rank's logical shards [first, first + count) */
    size_t row_first[DET_MAX_SHARDS], rows[DET_MAX_SHARDS]; /* each shard's training rows */
    int batch[DET_MAX_SHARDS]; /* rows each shard gives to one global batch */
    size_t steps;            /* steps per epoch: the smallest shard decides */
    size_t local_first, local_rows; /* this rank's contiguous training rows */
    int local_batch;         /* rows this rank computes per step */
} DetPlan;

/* Plans n_train rows and a global batch over `shards` logical shards for
 * rank of nranks. -1 with e filled when nranks > shards, shards >
 * DET_MAX_SHARDS, or the batch or data are too small to give every shard a
 * row per step. */
int det_plan(DetPlan *p, size_t n_train, int global_batch, int shards, int rank, int nranks,
             Error *e);

/* Per-rank workspace: one activation set per thread, one gradient buffer per
 * local shard, and the fixed-point accumulator. Allocated once. */
typedef struct DetWork {
    int threads, count;
    Mlp *ws;          /* threads workspaces sharing the model's parameters */
    float *shard_grads; /* count x param_floats */
    int64_t *q;       /* param_floats + MLP_CTRL_FLOATS fixed-point sums */
    double *loss;     /* per local shard */
    int64_t *correct; /* per local shard */
    uint32_t *top;    /* per local shard and tensor: the largest |g| as float bits */
} DetWork;

/* Builds the workspace for model (whose parameters the workspaces read) and
 * the plan's local shards, with `threads` OpenMP threads. -1 on no memory. */
int det_work_create(DetWork *w, const Mlp *model, const DetPlan *p, int threads, Error *e);
void det_work_free(DetWork *w);

/* One deterministic step. x, y, ids hold plan->local_batch rows: the local
 * shards' rows one shard after another (p->batch[first + k] rows each).
 * Computes every local shard's gradient (scaled by 1 / global_batch), sums
 * them exactly over shards and ranks into model->grads, then applies the
 * same rules and Adam step as train_step. Same return bits (STEP_*) and
 * accumulation contract as train_step. Allocation-free. */
int det_step(DetWork *w, const DetPlan *p, Mlp *model, Adam *opt, const Comm *comm,
             const float *x, const uint8_t *y, const uint64_t *ids, int global_batch,
             uint64_t dropout_key, int stop_local, int *pred, double *loss_sum,
             int64_t *correct, StepTimes *times);

/* The exact-sum primitive, exposed for tests: converts n floats of each of
 * `parts` vectors (stride apart) to fixed point at scale 2^k, sums them in
 * int64 into q (overwritten), and returns k. Every vector must be finite;
 * max_exp is the agreed exponent bound (frexp of the largest magnitude over
 * every rank's parts). */
int det_to_fixed(int64_t *q, const float *parts, size_t stride, int count, size_t n, int max_exp,
                 int total_parts);

#endif

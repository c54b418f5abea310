/* loader: which training rows each rank holds and which of them every step
 * trains on. The rows and every global batch are split into logical shards
 * (one per rank by default, a fixed count for the exact mode, so there the
 * split does not depend on the rank count); each rank owns whole shards and
 * reads only their rows. Every epoch each shard is shuffled on its own
 * stream; a step takes each local shard's next rows, augments or converts
 * them to floats and standardises them. Must not call MPI: ranks arrive as
 * plain ints, so a test can play every rank in one process. */
#ifndef MNIST_LOADER_H
#define MNIST_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "mnist/augment.h"
#include "mnist/data.h"
#include "mnist/util.h"

#define SHARD_MAX 256

/* How the training rows and every global batch divide into logical shards,
 * and which shards this rank owns. */
typedef struct ShardPlan {
    int shards;             /* M */
    int per_rank;           /* 1: one shard per rank (the default mode); 0: M fixed */
    int first, count;       /* this rank's shards [first, first + count) */
    size_t row_first[SHARD_MAX], rows[SHARD_MAX]; /* each shard's training rows */
    int batch[SHARD_MAX];   /* rows each shard gives to one global batch */
    size_t steps;           /* steps per epoch: the smallest shard decides */
    size_t local_first, local_rows; /* this rank's contiguous training rows */
    int local_batch;        /* rows this rank computes per step */
    size_t dropped;         /* training rows no step of an epoch reaches */
} ShardPlan;

/* Plans n_train rows and a global batch for rank of nranks: logical_shards
 * = 0 gives one shard per rank; otherwise that many shards, whatever the
 * rank count (at most logical_shards ranks). -1 with e filled when the batch
 * or the data are too small for every shard to give a row to every step. */
int shard_plan(ShardPlan *p, size_t n_train, int global_batch, int logical_shards, int rank,
               int nranks, Error *e);

/* The rows of one step: this rank's part of the global batch. */
typedef struct Batch {
    float *x;     /* [local_batch, pixels], standardised */
    uint8_t *y;   /* labels */
    uint64_t *ids; /* global row indices (key the dropout masks and augmentation) */
    size_t *rows; /* rows of the dataset */
    int n;        /* rows filled */
} Batch;

typedef struct Loader {
    ShardPlan plan;
    const Dataset *data; /* this rank's rows: plan.local_first.. of the file */
    uint64_t seed;
    AugmentParams aug;
    int augment;         /* aug changes images */
    float in_mean, in_scale; /* standardisation applied to every batch */
    size_t *order;       /* this epoch's order of the local rows, shard after shard */
    uint64_t aug_key;    /* this epoch's augmentation stream */
    const uint8_t **aug_src;
    float *aug_scratch;
    int aug_slots;
    Batch batch;
} Loader;

/* Builds the loader for plan over this rank's rows d (which it reads, not
 * owns), with augmentation aug (NULL: none) on up to `threads` threads. -1
 * with e filled when out of memory, or when aug is on for images it cannot
 * warp (augment_supports). */
int loader_create(Loader *l, const ShardPlan *plan, const Dataset *d, uint64_t seed,
                  const AugmentParams *aug, int threads, Error *e);
void loader_free(Loader *l);

/* Shuffles every local shard for epoch (1-based): shard j on the stream
 * (seed, RNG_SHUFFLE, epoch, j) (default mode: keyed by the shard's first
 * row), so a row's position does not depend on the rank holding it. */
void loader_epoch(Loader *l, int epoch);

/* Fills l->batch with step's rows (0-based step of the epoch): each local
 * shard's next batch[j] rows in shard order, augmented (keyed by seed, epoch
 * and global row) or scaled to [0, 1], then standardised. Allocation-free. */
void loader_batch(Loader *l, size_t step);

#endif

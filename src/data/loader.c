/* loader: shard plans, per-epoch shuffles and step batches (see loader.h).
 * Pure functions of (seed, epoch, plan, rows): no MPI, and no allocation
 * after loader_create. */
#include "mnist/loader.h"

#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "mnist/ops.h"
#include "mnist/rng.h"

int shard_plan(ShardPlan *p, size_t n_train, int global_batch, int logical_shards, int rank,
               int nranks, Error *e)
{
    memset(p, 0, sizeof *p);
    const int M = logical_shards > 0 ? logical_shards : nranks;
    p->per_rank = logical_shards <= 0;
    if (M < 1 || M > SHARD_MAX)
        return err_set(e, "--logical-shards %d is outside 1..%d", M, SHARD_MAX);
    if (nranks > M)
        return err_set(e,
                       "--deterministic with %d logical shards runs on at most %d ranks, not %d "
                       "(raise --logical-shards; every run to compare must use the same value)",
                       M, M, nranks);
    if (global_batch < M)
        return p->per_rank ? err_set(e, "--batch-size %d is smaller than the %d ranks: every "
                                        "rank needs rows", global_batch, M)
                           : err_set(e, "--batch-size %d is smaller than --logical-shards %d",
                                     global_batch, M);
    p->shards = M;
    p->steps = SIZE_MAX;
    for (int j = 0; j < M; j++) {
        size_t bf, bn;
        data_shard_range(n_train, M, j, &p->row_first[j], &p->rows[j]);
        data_shard_range((size_t)global_batch, M, j, &bf, &bn);
        p->batch[j] = (int)bn;
        if (p->rows[j] / bn < p->steps)
            p->steps = p->rows[j] / bn;
    }
    if (p->steps == 0)
        return p->per_rank
                   ? err_set(e, "%zu training rows over %d rank%s are too few for --batch-size %d",
                             n_train, M, M > 1 ? "s" : "", global_batch)
                   : err_set(e, "%zu training rows are too few for --batch-size %d over %d "
                                "logical shards", n_train, global_batch, M);
    for (int j = 0; j < M; j++)
        p->dropped += p->rows[j] - p->steps * (size_t)p->batch[j];
    size_t f, n;
    data_shard_range((size_t)M, nranks, rank, &f, &n);
    p->first = (int)f, p->count = (int)n;
    p->local_first = p->row_first[p->first];
    for (int k = 0; k < p->count; k++) {
        p->local_rows += p->rows[p->first + k];
        p->local_batch += p->batch[p->first + k];
    }
    return 0;
}

int loader_create(Loader *l, const ShardPlan *plan, const Dataset *d, uint64_t seed,
                  const AugmentParams *aug, int threads, Error *e)
{
    memset(l, 0, sizeof *l);
    l->plan = *plan;
    l->data = d;
    l->seed = seed;
    l->in_scale = 1.0f;
    l->augment = aug && augment_enabled(aug);
    if (l->augment) {
        l->aug = *aug;
        if (!augment_supports(d->shape)) {
            memset(l, 0, sizeof *l);
            return err_set(e, "--augment warps %dx%d single-channel images; these are %dx%dx%d",
                           AUGMENT_SIDE, AUGMENT_SIDE, d->shape.h, d->shape.w, d->shape.c);
        }
    }
    const size_t b = (size_t)plan->local_batch;
    l->order = malloc(sizeof(size_t) * (d->rows ? d->rows : 1));
    l->batch.x = alloc_aligned(sizeof(float) * b * dataset_pixels(d));
    l->batch.y = malloc(b);
    l->batch.ids = malloc(sizeof(uint64_t) * b);
    l->batch.rows = malloc(sizeof(size_t) * b);
    l->aug_slots = threads > 0 ? threads : 1;
    if (l->augment) {
        l->aug_scratch = malloc(sizeof(float) * augment_scratch_floats() * (size_t)l->aug_slots);
        l->aug_src = malloc(sizeof(*l->aug_src) * b);
    }
    if (!l->order || !l->batch.x || !l->batch.y || !l->batch.ids || !l->batch.rows ||
        (l->augment && (!l->aug_scratch || !l->aug_src))) {
        loader_free(l);
        return err_set(e, "out of memory for the batch buffers");
    }
    return 0;
}

void loader_free(Loader *l)
{
    free(l->order);
    free(l->batch.x), free(l->batch.y), free(l->batch.ids), free(l->batch.rows);
    free(l->aug_scratch);
    free(l->aug_src);
    memset(l, 0, sizeof *l);
}

/* Fisher-Yates over idx[0..n) from a counter-based stream, then shifted by
 * base (the shard's first local row). */
static void shuffle(size_t *idx, size_t n, uint64_t key, size_t base)
{
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)rng_below(key, i, (uint32_t)i);
        size_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
    for (size_t i = 0; i < n; i++)
        idx[i] += base;
}

void loader_epoch(Loader *l, int epoch)
{
    const ShardPlan *p = &l->plan;
    for (int k = 0; k < p->count; k++) {
        const int j = p->first + k;
        const size_t base = p->row_first[j] - p->local_first;
        /* the default mode keys a shard by its first row, the exact mode by
         * its index (both as the first releases did, so runs resume alike) */
        const uint64_t which = p->per_rank ? p->row_first[j] : (uint64_t)j;
        shuffle(l->order + base, p->rows[j],
                rng_key(l->seed, RNG_SHUFFLE, (uint64_t)epoch, which), base);
    }
    l->aug_key = rng_key(l->seed, RNG_AUGMENT, (uint64_t)epoch, 0);
}

void loader_batch(Loader *l, size_t step)
{
    const ShardPlan *p = &l->plan;
    Batch *b = &l->batch;
    const Dataset *d = l->data;
    int n = 0;
    for (int k = 0; k < p->count; k++) {
        const int j = p->first + k;
        const size_t *o = l->order + (p->row_first[j] - p->local_first) + step * (size_t)p->batch[j];
        for (int i = 0; i < p->batch[j]; i++)
            b->rows[n++] = o[i];
    }
    b->n = n;
    for (int i = 0; i < n; i++)
        b->ids[i] = p->local_first + b->rows[i];
    if (l->augment) {
        /* keyed by (seed, epoch, global row): the same image on any rank */
        for (int i = 0; i < n; i++) {
            l->aug_src[i] = d->images + b->rows[i] * dataset_pixels(d);
            b->y[i] = d->labels[b->rows[i]];
        }
        augment_batch(b->x, l->aug_src, n, &l->aug, l->aug_key, b->ids, l->aug_scratch,
                      l->aug_slots);
    } else {
        data_gather_batch(b->x, b->y, d, b->rows, n);
    }
    if (l->in_mean != 0.0f || l->in_scale != 1.0f)
        standardize(b->x, (size_t)n * dataset_pixels(d), l->in_mean, l->in_scale);
}

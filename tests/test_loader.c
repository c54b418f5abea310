/* Unit tests for the loader, every rank played in one process: shard plans
 * for P = 1..8 cover every training row exactly once and every global batch
 * exactly; each rank's loader, given only its own rows, produces the rows a
 * real rank would; in the exact mode the global batch of every step (the
 * ranks' batches in rank order) is the same for every rank count; the rows
 * an epoch never reaches are counted; augmentation keys by global row. */
#include <CUnit/CUnit.h>
#include <stdlib.h>
#include <string.h>

#include "mnist/loader.h"
#include "test_util.h"

enum { ROWS = 1003, BATCH = 64, EPOCHS = 2 };

static void test_plans_cover_rows_and_batches(void)
{
    Error e;
    for (int exact = 0; exact < 2; exact++)
        for (int P = 1; P <= 8; P++) {
            char *seen = calloc(ROWS, 1);
            int batch = 0;
            size_t steps = 0;
            for (int r = 0; r < P; r++) {
                ShardPlan p;
                CU_ASSERT_FATAL(shard_plan(&p, ROWS, BATCH, exact ? 8 : 0, r, P, &e) == 0);
                for (size_t i = 0; i < p.local_rows; i++)
                    seen[p.local_first + i]++;
                batch += p.local_batch;
                if (r == 0)
                    steps = p.steps;
                CU_ASSERT_EQUAL(p.steps, steps); /* every rank takes the same steps */
                CU_ASSERT_EQUAL(p.shards, exact ? 8 : P);
                CU_ASSERT_EQUAL(p.dropped, ROWS - p.steps * BATCH);
            }
            int once = 1;
            for (int i = 0; i < ROWS; i++)
                once &= seen[i] == 1;
            CU_ASSERT(once);
            CU_ASSERT_EQUAL(batch, BATCH);
            free(seen);
        }
    ShardPlan p;
    CU_ASSERT_EQUAL(shard_plan(&p, ROWS, BATCH, 2, 0, 3, &e), -1);
    CU_ASSERT(strstr(e.msg, "runs on at most 2 ranks, not 3") != NULL);
    CU_ASSERT_EQUAL(shard_plan(&p, ROWS, 2, 0, 0, 3, &e), -1);
    CU_ASSERT(strstr(e.msg, "smaller than the 3 ranks") != NULL);
    CU_ASSERT_EQUAL(shard_plan(&p, 10, 8, 0, 0, 1, &e), 0);
    CU_ASSERT_EQUAL(p.dropped, 2);
    CU_ASSERT_EQUAL(shard_plan(&p, 5, 8, 0, 0, 1, &e), -1);
    CU_ASSERT(strstr(e.msg, "too few for --batch-size 8") != NULL);
}

/* Every step's global rows (ranks in order, each from its own loader over
 * its own slice of d) for P ranks, into ids[EPOCHS][steps][BATCH]; checks
 * the labels and pixels follow the rows. Returns the steps per epoch. */
static size_t global_batches(const Dataset *d, int P, int exact, uint64_t *ids)
{
    Error e;
    size_t steps = 0;
    for (int r = 0; r < P; r++) {
        ShardPlan p;
        CU_ASSERT_FATAL(shard_plan(&p, d->rows, BATCH, exact ? 8 : 0, r, P, &e) == 0);
        Dataset mine = *d;
        mine.images = d->images + p.local_first * MNIST_PIXELS;
        mine.labels = d->labels + p.local_first;
        mine.rows = p.local_rows;
        Loader l;
        CU_ASSERT_FATAL(loader_create(&l, &p, &mine, 42, NULL, 1, &e) == 0);
        steps = p.steps;
        int off = 0; /* this rank's place in the global batch */
        for (int q = 0; q < r; q++) {
            ShardPlan pq;
            shard_plan(&pq, d->rows, BATCH, exact ? 8 : 0, q, P, &e);
            off += pq.local_batch;
        }
        for (int epoch = 1; epoch <= EPOCHS; epoch++) {
            loader_epoch(&l, epoch);
            for (size_t s = 0; s < steps; s++) {
                loader_batch(&l, s);
                CU_ASSERT_EQUAL(l.batch.n, p.local_batch);
                for (int i = 0; i < l.batch.n; i++) {
                    const uint64_t id = l.batch.ids[i];
                    ids[((size_t)(epoch - 1) * steps + s) * BATCH + (size_t)(off + i)] = id;
                    CU_ASSERT_EQUAL(l.batch.y[i], d->labels[id]);
                    const float want = (float)d->images[id * MNIST_PIXELS + 100] * (1.0f / 255.0f);
                    CU_ASSERT_EQUAL(l.batch.x[(size_t)i * MNIST_PIXELS + 100], want);
                }
            }
        }
        loader_free(&l);
    }
    return steps;
}

static void test_batches_as_real_ranks_see_them(void)
{
    Dataset d = {0};
    tu_synthetic(&d, ROWS, 5);
    const size_t max_steps = ROWS / BATCH + 1;
    uint64_t *ref = calloc(EPOCHS * max_steps * BATCH, sizeof *ref);
    uint64_t *got = calloc(EPOCHS * max_steps * BATCH, sizeof *got);
    for (int exact = 0; exact < 2; exact++) {
        const size_t steps = global_batches(&d, 1, exact, ref);
        for (int P = 1; P <= 8; P++) {
            const size_t s = global_batches(&d, P, exact, got);
            /* the default mode's smallest shard decides, so the step count
             * may differ by rank count; the exact mode's may not */
            if (exact)
                CU_ASSERT_EQUAL(s, steps);
            /* within an epoch no row is used twice */
            for (int epoch = 0; epoch < EPOCHS; epoch++) {
                char *used = calloc(ROWS, 1);
                int twice = 0;
                for (size_t k = 0; k < s * BATCH; k++)
                    twice += used[got[(size_t)epoch * s * BATCH + k]]++ > 0;
                CU_ASSERT_EQUAL(twice, 0);
                free(used);
            }
            /* the exact mode's global batches do not depend on the rank count */
            if (exact)
                CU_ASSERT(memcmp(got, ref, sizeof *got * EPOCHS * s * BATCH) == 0);
        }
        /* epochs shuffle differently */
        CU_ASSERT(memcmp(ref, ref + steps * BATCH, sizeof *ref * BATCH) != 0);
    }
    free(ref), free(got);
    dataset_free(&d);
}

/* With augmentation, a row's image depends on (seed, epoch, global row)
 * only: the same on a rank holding all rows and on one holding half. */
static void test_augmentation_keyed_by_global_row(void)
{
    Dataset d = {0};
    tu_synthetic(&d, 200, 6);
    Error e;
    AugmentParams aug = augment_defaults();
    ShardPlan whole, half;
    CU_ASSERT_FATAL(shard_plan(&whole, 200, 16, 0, 0, 1, &e) == 0);
    CU_ASSERT_FATAL(shard_plan(&half, 200, 16, 0, 1, 2, &e) == 0);
    Dataset second = d;
    second.images = d.images + half.local_first * MNIST_PIXELS;
    second.labels = d.labels + half.local_first;
    second.rows = half.local_rows;
    Loader a, b;
    CU_ASSERT_FATAL(loader_create(&a, &whole, &d, 9, &aug, 2, &e) == 0);
    CU_ASSERT_FATAL(loader_create(&b, &half, &second, 9, &aug, 1, &e) == 0);
    loader_epoch(&a, 3);
    loader_epoch(&b, 3);
    /* every image a rank-1-of-2 loader makes, the whole-data loader made too */
    float *by_id = calloc(200 * MNIST_PIXELS, sizeof(float));
    char *have = calloc(200, 1);
    for (size_t s = 0; s < whole.steps; s++) {
        loader_batch(&a, s);
        for (int i = 0; i < a.batch.n; i++) {
            memcpy(by_id + a.batch.ids[i] * MNIST_PIXELS, a.batch.x + (size_t)i * MNIST_PIXELS,
                   sizeof(float) * MNIST_PIXELS);
            have[a.batch.ids[i]] = 1;
        }
    }
    int compared = 0, same = 0;
    for (size_t s = 0; s < half.steps; s++) {
        loader_batch(&b, s);
        for (int i = 0; i < b.batch.n; i++)
            if (have[b.batch.ids[i]]) {
                compared++;
                same += memcmp(by_id + b.batch.ids[i] * MNIST_PIXELS,
                               b.batch.x + (size_t)i * MNIST_PIXELS,
                               sizeof(float) * MNIST_PIXELS) == 0;
            }
    }
    CU_ASSERT(compared > 50);
    CU_ASSERT_EQUAL(same, compared);
    free(by_id), free(have);
    loader_free(&a), loader_free(&b);
    /* augmentation refuses images it cannot warp */
    Dataset wide = d;
    wide.shape = (Shape){14, 56, 1};
    CU_ASSERT_EQUAL(loader_create(&a, &whole, &wide, 9, &aug, 1, &e), -1);
    CU_ASSERT(strstr(e.msg, "--augment warps 28x28") != NULL);
    dataset_free(&d);
}

int test_loader_register(void)
{
    CU_pSuite s = CU_add_suite("loader", NULL, NULL);
    if (!s)
        return -1;
    return (CU_add_test(s, "plans cover every row and batch once", test_plans_cover_rows_and_batches) &&
            CU_add_test(s, "batches as the real ranks see them", test_batches_as_real_ranks_see_them) &&
            CU_add_test(s, "augmentation keyed by global row", test_augmentation_keyed_by_global_row))
               ? 0
               : -1;
}

/* MPI tests, run under mpiexec with 1, 2 and 3 ranks by CTest:
 *  - the allreduced gradient of a global batch split over the ranks equals
 *    the single-process gradient of the whole batch (relative 1e-5);
 *  - after many steps on rank-specific data, every rank holds bit-identical
 *    parameters and Adam moments.
 * Every rank returns the same exit status: the agreed number of failures. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mnist/comm.h"
#include "mnist/data.h"
#include "mnist/mlp.h"
#include "mnist/rng.h"
#include "mnist/train.h"
#include "test_util.h"


static const int SIZES[] = {MNIST_PIXELS, 48, 24, 10};

static void make_model(Mlp *m, int max_batch)
{
    Error e;
    if (mlp_create(m, SIZES, 3, 0.2f, max_batch, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        exit(2);
    }
    mlp_init_params(m, 11);
}

/* Relative max-norm difference of two vectors. */
static double rel_diff(const float *a, const float *b, size_t n)
{
    double diff = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        diff = fmax(diff, fabs((double)a[i] - b[i]));
        scale = fmax(scale, fabs((double)b[i]));
    }
    return scale > 0 ? diff / scale : diff;
}

static void test_split_batch_gradient(const Comm *world, const Dataset *d)
{
    enum { B = 36 };
    const Comm self = {0, 1, 0};
    size_t idx[B];
    uint64_t ids[B];
    for (int i = 0; i < B; i++)
        idx[i] = (size_t)i, ids[i] = 1000 + (uint64_t)i;
    float *x = malloc(sizeof(float) * B * MNIST_PIXELS);
    uint8_t y[B];
    int pred[B];
    data_gather_batch(x, y, d, idx, B);

    Mlp ref, dist;
    make_model(&ref, B);
    make_model(&dist, B);
    Adam oref = {1e-3f, 0.9f, 0.999f, 1e-8f, 0}, odist = oref;
    double loss_ref = 0, loss_dist = 0;
    int64_t c_ref = 0, c_dist = 0;
    train_step(&ref, &oref, &self, x, y, ids, B, B, 77, 0, pred, &loss_ref, &c_ref, NULL, NULL);

    size_t first, count;
    data_shard_range(B, world->size, world->rank, &first, &count);
    int flags = train_step(&dist, &odist, world, x + first * MNIST_PIXELS, y + first, ids + first,
                           (int)count, B, 77, world->rank == world->size - 1, pred, &loss_dist,
                           &c_dist, NULL, NULL);
    /* One rank's stop request reaches every rank through the same allreduce. */
    TU_CHECK(flags == STEP_STOP, "rank %d: step flags %d, expected STEP_STOP", world->rank, flags);
    double sums[2] = {loss_dist, (double)c_dist};
    comm_allreduce_sum_f64(world, sums, 2);

    double g = rel_diff(dist.grads, ref.grads, ref.param_floats);
    TU_CHECK(g < 1e-5, "rank %d: split-batch gradient differs from the whole batch's by %g (rel)",
          world->rank, g);
    double nonzero = 0;
    for (size_t i = 0; i < ref.param_floats; i++)
        nonzero += ref.grads[i] != 0.0f;
    TU_CHECK(nonzero > (double)ref.num_params / 4, "reference gradient is mostly zero");
    TU_CHECK(fabs(sums[0] - loss_ref) < 1e-4 * fabs(loss_ref), "loss sum %g vs %g", sums[0], loss_ref);
    TU_CHECK((int64_t)sums[1] == c_ref, "correct count %g vs %lld", sums[1], (long long)c_ref);
    mlp_free(&ref);
    mlp_free(&dist);
    free(x);
}

static void test_replicas_stay_identical(const Comm *world, const Dataset *d)
{
    enum { B = 16, STEPS = 60 };
    Mlp m;
    make_model(&m, B);
    Adam opt = {2e-3f, 0.9f, 0.999f, 1e-8f, 0};
    float *x = malloc(sizeof(float) * B * MNIST_PIXELS);
    uint8_t y[B];
    int pred[B];
    size_t idx[B];
    uint64_t ids[B];
    size_t first, count;
    data_shard_range(d->rows, world->size, world->rank, &first, &count);
    size_t bfirst, bcount;
    data_shard_range(B * (size_t)world->size, world->size, world->rank, &bfirst, &bcount);
    double loss = 0, first_loss = 0;
    int64_t correct = 0;
    for (int s = 0; s < STEPS; s++) {
        for (int i = 0; i < B; i++)
            idx[i] = first + ((size_t)s * B + (size_t)i) % count, ids[i] = idx[i];
        data_gather_batch(x, y, d, idx, B);
        loss = 0;
        int flags = train_step(&m, &opt, world, x, y, ids, B, B * world->size, 5 + (uint64_t)s, 0,
                               pred, &loss, &correct, NULL, NULL);
        TU_CHECK(flags == 0, "step %d: flags %d", s, flags);
        comm_allreduce_sum_f64(world, &loss, 1);
        if (s == 0)
            first_loss = loss;
    }
    TU_CHECK(loss < 0.5 * first_loss, "training did not reduce the loss: %g -> %g", first_loss, loss);
    /* Rank 0's state, broadcast, must equal every rank's bit for bit. */
    const float *mine[3] = {m.params, m.adam_m, m.adam_v};
    const char *names[3] = {"parameters", "Adam first moments", "Adam second moments"};
    float *theirs = malloc(sizeof(float) * m.param_floats);
    for (int k = 0; k < 3; k++) {
        memcpy(theirs, mine[k], sizeof(float) * m.param_floats);
        comm_bcast(world, theirs, sizeof(float) * m.param_floats, 0);
        TU_CHECK(memcmp(theirs, mine[k], sizeof(float) * m.param_floats) == 0,
              "rank %d: %s differ from rank 0's after %d steps", world->rank, names[k], STEPS);
    }
    free(theirs);
    free(x);
    mlp_free(&m);
}

/* The sharded optimizer (reduce-scatter, 1/P of the update per rank,
 * allgather) against the allreduce path on the same batches: the same
 * parameters within float rounding (bitwise on 2 ranks, where a + b is the
 * only order), and after train_sync_moments every rank holds the same
 * parameters and moments. */
static void test_sharded_optimizer(const Comm *world, const Dataset *d)
{
    enum { B = 16, STEPS = 25 };
    Mlp a, b;
    make_model(&a, B);
    make_model(&b, B);
    a.weight_decay = b.weight_decay = 1e-3f;
    a.clip_norm = b.clip_norm = 1.0f;
    a.max_norm = b.max_norm = 2.0f;
    Adam oa = {2e-3f, 0.9f, 0.999f, 1e-8f, 0}, ob = oa;
    CommSegments seg;
    TU_CHECK(train_segments_init(world, &b, &seg) == 0, "segments");
    float *x = malloc(sizeof(float) * B * MNIST_PIXELS);
    uint8_t y[B];
    int pred[B];
    size_t idx[B];
    uint64_t ids[B];
    double la = 0, lb = 0;
    int64_t ca = 0, cb = 0;
    for (int s = 0; s < STEPS; s++) {
        for (int i = 0; i < B; i++)
            idx[i] = ((size_t)(world->rank * 97 + s * B + i)) % d->rows, ids[i] = idx[i];
        data_gather_batch(x, y, d, idx, B);
        int fa = train_step(&a, &oa, world, x, y, ids, B, B * world->size, 3 + (uint64_t)s, 0,
                            pred, &la, &ca, NULL, NULL);
        const StepComm sc = {&seg, NULL};
        int fb = train_step(&b, &ob, world, x, y, ids, B, B * world->size, 3 + (uint64_t)s, 0,
                            pred, &lb, &cb, NULL, &sc);
        TU_CHECK(fa == 0 && fb == 0, "step %d flags %d %d", s, fa, fb);
    }
    train_sync_moments(world, &b, &seg);
    const double dp = rel_diff(b.params, a.params, a.param_floats);
    const double dm = rel_diff(b.adam_m, a.adam_m, a.param_floats);
    if (world->size <= 2)
        TU_CHECK(dp == 0 && dm == 0, "2 ranks: sharded update differs (params %g, moments %g)", dp, dm);
    else
        TU_CHECK(dp < 1e-5 && dm < 1e-5, "sharded update differs (params %g, moments %g)", dp, dm);
    /* replicas agree bit for bit after the allgathers */
    float *theirs = malloc(sizeof(float) * b.param_floats);
    const float *mine[3] = {b.params, b.adam_m, b.adam_v};
    for (int k = 0; k < 3; k++) {
        memcpy(theirs, mine[k], sizeof(float) * b.param_floats);
        comm_bcast(world, theirs, sizeof(float) * b.param_floats, 0);
        TU_CHECK(memcmp(theirs, mine[k], sizeof(float) * b.param_floats) == 0,
              "rank %d: sharded state %d differs from rank 0's", world->rank, k);
    }
    free(theirs);
    free(x);
    comm_segments_free(&seg);
    mlp_free(&a);
    mlp_free(&b);
}

int main(int argc, char **argv)
{
    Comm world;
    if (comm_init(&argc, &argv, &world)) {
        fprintf(stderr, "MPI init failed\n");
        return 1;
    }
    Dataset d = {0};
    tu_synthetic(&d, 600, 21); /* the same rows on every rank */
    test_split_batch_gradient(&world, &d);
    test_replicas_stay_identical(&world, &d);
    test_sharded_optimizer(&world, &d);
    dataset_free(&d);
    int total = tu_failures;
    comm_allreduce_sum_i64(&world, &(int64_t){0}, 0);
    int64_t f = tu_failures;
    comm_allreduce_sum_i64(&world, &f, 1);
    total = (int)f;
    if (world.rank == 0)
        printf("mpi_test: %d ranks: %s (%d failed checks)\n", world.size, total ? "FAIL" : "PASS",
               total);
    comm_finalize();
    return total > 255 ? 255 : total;
}

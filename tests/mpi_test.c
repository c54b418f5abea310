/* MPI tests of the exchange, run under mpiexec with 1, 2 and 3 ranks by CTest:
 *  - the allreduced gradient of a global batch split over the ranks equals
 *    the single-process gradient of the whole batch (relative 1e-5), and
 *    one rank's stop request reaches every rank;
 *  - after many steps on rank-specific data, every rank holds bit-identical
 *    parameters and Adam moments;
 *  - the sharded and node-shared kinds give the allreduce kind's parameters
 *    and moments (bitwise on 2 ranks, where a + b is the only order);
 *  - the exact kind gives the same bits on any rank count (compared with a
 *    one-rank run of the same logical shards).
 * All of it for an MLP and for a small CNN.
 * Every rank returns the same exit status: the agreed number of failures. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mnist/comm.h"
#include "mnist/data.h"
#include "mnist/exchange.h"
#include "mnist/loader.h"
#include "mnist/model.h"
#include "mnist/optim.h"
#include "mnist/rng.h"
#include "test_util.h"

static const int SIZES[] = {MNIST_PIXELS, 48, 24, 10};

/* The network under test: the MLP of SIZES, or (g_spec set) that layer list
 * on 28 x 28 x 1 images. */
static const char *g_spec;

static void make_model(Model *m, int max_batch)
{
    Error e;
    ModelSpec spec;
    if (g_spec ? model_spec_model(&spec, g_spec, 10, &e) ||
                     model_create(m, &spec, (Shape){MNIST_SIDE, MNIST_SIDE, 1}, 10, max_batch, &e)
               : model_create_mlp(m, SIZES, 3, 0.2f, max_batch, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        exit(2);
    }
    model_init_params(m, 11);
}

static void make_optimizer(Optimizer *o, const Model *m, float lr, float wd, float clip,
                           float max_norm)
{
    Error e;
    const OptimConfig c = {.lr = lr, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                           .weight_decay = wd, .clip_norm = clip, .max_norm = max_norm};
    if (optim_create(o, &c, m->param_floats, m->tensors, m->num_tensors, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        exit(2);
    }
}

/* An exchange of kind for a global batch B split over comm's ranks as the
 * trainer splits it (one logical shard per rank, or `shards` for exact). */
static Exchange *make_exchange(ExchangeKind kind, int B, int shards, size_t rows, Model *m,
                               Optimizer *o, const Comm *comm, ShardPlan *plan)
{
    Error e;
    if (shard_plan(plan, rows, B, shards, comm->rank, comm->size, &e)) {
        fprintf(stderr, "shard_plan: %s\n", e.msg);
        exit(2);
    }
    const ExchangeConfig c = {.kind = kind, .global_batch = B, .plan = plan, .threads = 1};
    Exchange *x = exchange_create(&c, m, o, comm, &e);
    if (!x) {
        fprintf(stderr, "exchange_create: %s\n", e.msg);
        exit(2);
    }
    return x;
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

/* 1 when every rank holds rank 0's n floats bit for bit. */
static int same_on_every_rank(const Comm *world, const float *mine, size_t n)
{
    float *theirs = malloc(sizeof(float) * n);
    memcpy(theirs, mine, sizeof(float) * n);
    comm_bcast(world, theirs, sizeof(float) * n, 0);
    int same = memcmp(theirs, mine, sizeof(float) * n) == 0;
    free(theirs);
    int64_t bad = !same;
    comm_allreduce_sum_i64(world, &bad, 1);
    return bad == 0;
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
    data_gather_batch(x, y, d, idx, B);

    Model ref, dist;
    Optimizer oref, odist;
    make_model(&ref, B);
    make_model(&dist, B);
    make_optimizer(&oref, &ref, 1e-3f, 0, 0, 0);
    make_optimizer(&odist, &dist, 1e-3f, 0, 0, 0);
    ShardPlan pref, pdist;
    Exchange *xref = make_exchange(EXCHANGE_ALLREDUCE, B, 0, B, &ref, &oref, &self, &pref);
    Exchange *xdist = make_exchange(EXCHANGE_ALLREDUCE, B, 0, B, &dist, &odist, world, &pdist);
    StepOut out_ref, out_dist;
    exchange_step(xref, &(StepIn){.x = x, .y = y, .ids = ids, .rows = B, .dropout_key = 77},
                  &out_ref);
    const size_t first = pdist.local_first, count = (size_t)pdist.local_batch;
    exchange_step(xdist,
                  &(StepIn){.x = x + first * MNIST_PIXELS, .y = y + first, .ids = ids + first,
                            .rows = (int)count, .dropout_key = 77,
                            .stop_local = world->rank == world->size - 1},
                  &out_dist);
    /* One rank's stop request reaches every rank through the same exchange. */
    TU_CHECK(out_dist.flags == STEP_STOP, "rank %d: step flags %d, expected STEP_STOP",
             world->rank, out_dist.flags);
    double sums[2] = {out_dist.loss_sum, (double)out_dist.correct};
    comm_allreduce_sum_f64(world, sums, 2);

    double g = rel_diff(dist.grads, ref.grads, ref.param_floats);
    TU_CHECK(g < 1e-5, "rank %d: split-batch gradient differs from the whole batch's by %g (rel)",
             world->rank, g);
    double nonzero = 0;
    for (size_t i = 0; i < ref.param_floats; i++)
        nonzero += ref.grads[i] != 0.0f;
    TU_CHECK(nonzero > (double)ref.num_params / 4, "reference gradient is mostly zero");
    TU_CHECK(fabs(sums[0] - out_ref.loss_sum) < 1e-4 * fabs(out_ref.loss_sum), "loss sum %g vs %g",
             sums[0], out_ref.loss_sum);
    TU_CHECK((int64_t)sums[1] == out_ref.correct, "correct count %g vs %lld", sums[1],
             (long long)out_ref.correct);
    exchange_free(xref);
    exchange_free(xdist);
    optim_free(&oref), optim_free(&odist);
    model_free(&ref), model_free(&dist);
    free(x);
}

/* `steps` steps of kind on rank-specific rows of d: B per rank. */
static void run_steps(Exchange *x, Model *m, const Comm *world, const Dataset *d, int B,
                      int steps, double *first_loss, double *last_loss)
{
    float *xs = malloc(sizeof(float) * (size_t)B * MNIST_PIXELS);
    uint8_t *y = malloc((size_t)B);
    size_t *idx = malloc(sizeof(size_t) * (size_t)B);
    uint64_t *ids = malloc(sizeof(uint64_t) * (size_t)B);
    (void)m;
    for (int s = 0; s < steps; s++) {
        for (int i = 0; i < B; i++)
            idx[i] = ((size_t)(world->rank * 97 + s * B + i)) % d->rows, ids[i] = idx[i];
        data_gather_batch(xs, y, d, idx, B);
        StepOut out;
        exchange_step(x, &(StepIn){.x = xs, .y = y, .ids = ids, .rows = B,
                                   .dropout_key = 3 + (uint64_t)s},
                      &out);
        TU_CHECK(out.flags == 0, "step %d: flags %d", s, out.flags);
        double loss = out.loss_sum;
        comm_allreduce_sum_f64(world, &loss, 1);
        if (s == 0 && first_loss)
            *first_loss = loss;
        if (last_loss)
            *last_loss = loss;
    }
    free(xs), free(y), free(idx), free(ids);
}

static void test_replicas_stay_identical(const Comm *world, const Dataset *d)
{
    enum { B = 16, STEPS = 60 };
    Model m;
    Optimizer o;
    ShardPlan p;
    make_model(&m, B);
    make_optimizer(&o, &m, g_spec ? 5e-3f : 2e-3f, 0, 0, 0); /* the CNN learns slower at first */
    Exchange *x = make_exchange(EXCHANGE_ALLREDUCE, B * world->size, 0, d->rows, &m, &o, world, &p);
    double first = 0, last = 0;
    run_steps(x, &m, world, d, B, STEPS, &first, &last);
    TU_CHECK(last < 0.5 * first, "training did not reduce the loss: %g -> %g", first, last);
    /* Rank 0's state, broadcast, must equal every rank's bit for bit. */
    TU_CHECK(same_on_every_rank(world, m.params, m.param_floats), "parameters differ from rank 0's");
    TU_CHECK(same_on_every_rank(world, o.m, m.param_floats), "Adam first moments differ");
    TU_CHECK(same_on_every_rank(world, o.v, m.param_floats), "Adam second moments differ");
    exchange_free(x);
    optim_free(&o);
    model_free(&m);
}

/* The sharded optimizer (reduce-scatter, 1/P of the update per rank,
 * allgather) and the node-shared window against the allreduce kind on the
 * same batches, with every update rule on: the same parameters within float
 * rounding (bitwise on 2 ranks), and after exchange_gather_state every rank
 * holds the same parameters and moments. */
static void test_segmented_kinds(const Comm *world, const Dataset *d, ExchangeKind kind)
{
    enum { B = 16, STEPS = 25 };
    const char *name = exchange_kind_name(kind);
    Model a, b;
    Optimizer oa, ob;
    ShardPlan pa, pb;
    make_model(&a, B);
    make_model(&b, B);
    make_optimizer(&oa, &a, 2e-3f, 1e-3f, 1.0f, 2.0f);
    make_optimizer(&ob, &b, 2e-3f, 1e-3f, 1.0f, 2.0f);
    Exchange *xa = make_exchange(EXCHANGE_ALLREDUCE, B * world->size, 0, d->rows, &a, &oa, world, &pa);
    Exchange *xb = make_exchange(kind, B * world->size, 0, d->rows, &b, &ob, world, &pb);
    run_steps(xa, &a, world, d, B, STEPS, NULL, NULL);
    run_steps(xb, &b, world, d, B, STEPS, NULL, NULL);
    exchange_gather_state(xb);
    exchange_free(xb); /* the shared kind copies the parameters back into b's arena */
    const double dp = rel_diff(b.params, a.params, a.param_floats);
    const double dm = rel_diff(ob.m, oa.m, a.param_floats);
    if (world->size <= 2)
        TU_CHECK(dp == 0 && dm == 0, "%s, 2 ranks: differs (params %g, moments %g)", name, dp, dm);
    else
        TU_CHECK(dp < 1e-5 && dm < 1e-5, "%s differs (params %g, moments %g)", name, dp, dm);
    /* replicas agree bit for bit after the gathers */
    TU_CHECK(same_on_every_rank(world, b.params, b.param_floats), "%s: parameters differ", name);
    TU_CHECK(same_on_every_rank(world, ob.m, b.param_floats), "%s: first moments differ", name);
    TU_CHECK(same_on_every_rank(world, ob.v, b.param_floats), "%s: second moments differ", name);
    exchange_free(xa);
    optim_free(&oa), optim_free(&ob);
    model_free(&a), model_free(&b);
}

/* The exact kind over 6 logical shards: P ranks end with the bits of one
 * rank computing every shard itself. */
static void test_exact_any_rank_count(const Comm *world, const Dataset *d)
{
    enum { B = 24, STEPS = 12, SHARDS = 6 };
    const Comm self = {0, 1, 0};
    Model a, b;
    Optimizer oa, ob;
    ShardPlan pa, pb;
    make_model(&a, B);
    make_model(&b, B);
    make_optimizer(&oa, &a, 2e-3f, 1e-3f, 1.0f, 2.0f);
    make_optimizer(&ob, &b, 2e-3f, 1e-3f, 1.0f, 2.0f);
    Exchange *xa = make_exchange(EXCHANGE_EXACT, B, SHARDS, d->rows, &a, &oa, &self, &pa);
    Exchange *xb = make_exchange(EXCHANGE_EXACT, B, SHARDS, d->rows, &b, &ob, world, &pb);
    float *xs = malloc(sizeof(float) * B * MNIST_PIXELS);
    uint8_t y[B];
    size_t idx[B];
    uint64_t ids[B];
    for (int s = 0; s < STEPS; s++) {
        /* the global batch: every shard's next rows, shard after shard */
        for (int j = 0, n = 0; j < SHARDS; j++)
            for (int i = 0; i < pa.batch[j]; i++, n++)
                idx[n] = pa.row_first[j] + (size_t)s * (size_t)pa.batch[j] + (size_t)i,
                ids[n] = idx[n];
        data_gather_batch(xs, y, d, idx, B);
        StepOut oo;
        exchange_step(xa, &(StepIn){.x = xs, .y = y, .ids = ids, .rows = B, .dropout_key = 9},
                      &oo);
        /* this rank's shards are a contiguous slice of the global batch */
        size_t off = 0;
        for (int j = 0; j < pb.first; j++)
            off += (size_t)pb.batch[j];
        exchange_step(xb, &(StepIn){.x = xs + off * MNIST_PIXELS, .y = y + off, .ids = ids + off,
                                    .rows = pb.local_batch, .dropout_key = 9},
                      &oo);
        TU_CHECK(oo.flags == 0, "exact step %d: flags %d", s, oo.flags);
    }
    TU_CHECK(memcmp(a.params, b.params, sizeof(float) * a.param_floats) == 0,
             "rank %d: exact kind on %d ranks differs from 1 rank", world->rank, world->size);
    TU_CHECK(memcmp(oa.v, ob.v, sizeof(float) * a.param_floats) == 0,
             "rank %d: exact kind's moments differ from 1 rank", world->rank);
    free(xs);
    exchange_free(xa), exchange_free(xb);
    optim_free(&oa), optim_free(&ob);
    model_free(&a), model_free(&b);
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
    test_segmented_kinds(&world, &d, EXCHANGE_SHARDED);
    test_segmented_kinds(&world, &d, EXCHANGE_SHARED);
    test_exact_any_rank_count(&world, &d);
    /* the same with a CNN: conv with stride and padding, pooling, dropout */
    g_spec = "conv:4x3x3/s2/p1,relu,conv:6x3x3,relu,maxpool:2,dropout:0.25,flatten,dense:16,relu,"
             "dropout:0.2";
    test_split_batch_gradient(&world, &d);
    test_replicas_stay_identical(&world, &d);
    test_segmented_kinds(&world, &d, EXCHANGE_SHARDED);
    test_segmented_kinds(&world, &d, EXCHANGE_SHARED);
    test_exact_any_rank_count(&world, &d);
    dataset_free(&d);
    int64_t f = tu_failures;
    comm_allreduce_sum_i64(&world, &f, 1);
    if (world.rank == 0)
        printf("mpi_test: %d ranks: %s (%d failed checks)\n", world.size, f ? "FAIL" : "PASS",
               (int)f);
    comm_finalize();
    return f > 255 ? 255 : (int)f;
}

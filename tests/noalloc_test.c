/* No heap allocation inside the training step, shown with a counting
 * allocator: this executable replaces malloc, calloc, realloc, aligned_alloc,
 * posix_memalign and memalign for the whole process (every shared library
 * resolves them here first) and forwards to glibc's __libc_* entry points.
 * While counting is on, each call is recorded with its caller's address, and
 * dladdr names the object that made it.
 *
 * Run under mpiexec with 1, 2 and 3 ranks (2 OpenMP threads on 1 rank). After a few
 * warm-up steps (the OpenMP pool, OpenBLAS's buffers and MPI's lazily
 * created state may allocate once), it counts over STEPS whole steps of
 * each path the trainer uses, with the kinds chosen by exchange_choose as
 * the trainer chooses them: loader_batch (gather + standardisation) +
 * exchange_step (one rank or the node-shared window, the default on one
 * node); the same with on-the-fly augmentation; the sharded optimizer over
 * messages (reduce-scatter + allgather, across nodes); one allreduce
 * (--shard-optimizer 0); and the exact kind (--deterministic).
 * Zero allocations are required from the trainer's own code (this
 * executable, which links it statically) on every path. What the libraries
 * allocate inside the calls we make is printed with the function that did
 * it: OpenBLAS 0.3.21's threaded GEMM driver mallocs its job table on every
 * multi-threaded sgemm call, Open MPI's tuned collectives take temporary
 * buffers per call, and libgomp mallocs a team for every nested parallel
 * region (the exact kind's per-shard kernels run inside its shard loop).
 *
 * All of it for an MLP and for a small CNN.
 * Not built under the sanitizers: their runtime owns malloc. */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "mnist/augment.h"
#include "mnist/comm.h"
#include "mnist/data.h"
#include "mnist/exchange.h"
#include "mnist/gemm.h"
#include "mnist/loader.h"
#include "mnist/model.h"
#include "mnist/optim.h"
#include "test_util.h"

/* ---- the counting allocator ------------------------------------------ */

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

enum { MAX_CALLERS = 64 };
static volatile int counting;
static struct {
    void *where;
    long calls;
} callers[MAX_CALLERS];
static long total_calls;

static void note(void *where)
{
    if (!counting)
        return;
    __atomic_add_fetch(&total_calls, 1, __ATOMIC_RELAXED);
    /* a small open table; a lost race only merges two callers' counts */
    for (int i = 0; i < MAX_CALLERS; i++) {
        void *seen = __atomic_load_n(&callers[i].where, __ATOMIC_RELAXED);
        if (seen == NULL) {
            void *expected = NULL;
            if (!__atomic_compare_exchange_n(&callers[i].where, &expected, where, 0,
                                             __ATOMIC_RELAXED, __ATOMIC_RELAXED))
                seen = expected;
            else
                seen = where;
        }
        if (seen == where) {
            __atomic_add_fetch(&callers[i].calls, 1, __ATOMIC_RELAXED);
            return;
        }
    }
}

void *malloc(size_t n)
{
    note(__builtin_return_address(0));
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
    note(__builtin_return_address(0));
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
    note(__builtin_return_address(0));
    return __libc_realloc(p, n);
}

void *aligned_alloc(size_t align, size_t n)
{
    note(__builtin_return_address(0));
    return __libc_memalign(align, n);
}

void *memalign(size_t align, size_t n)
{
    note(__builtin_return_address(0));
    return __libc_memalign(align, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    note(__builtin_return_address(0));
    if (align < sizeof(void *) || (align & (align - 1)))
        return EINVAL;
    void *p = __libc_memalign(align, n);
    if (p == NULL)
        return ENOMEM;
    *out = p;
    return 0;
}

/* Allocations recorded since the last reset, per calling object: those
 * from this executable (which holds the trainer's code, linked statically)
 * are returned, the libraries' are summed into `lib_calls` and, with
 * `print`, listed by object and function. */
static void *self_base; /* this executable's load address */

static long count_ours(long *lib_calls, int print, const char *label, int rank)
{
    long ours = 0;
    *lib_calls = 0;
    for (int i = 0; i < MAX_CALLERS && callers[i].where; i++) {
        Dl_info info;
        const int ok = dladdr(callers[i].where, &info) != 0;
        const char *obj = ok && info.dli_fname ? info.dli_fname : "?";
        const char *fn = ok && info.dli_sname ? info.dli_sname : "?";
        if (ok && info.dli_fbase == self_base)
            ours += callers[i].calls;
        else
            *lib_calls += callers[i].calls;
        if (print)
            printf("  rank %d, %s: %ld from %s (%s)\n", rank, label, callers[i].calls, obj, fn);
    }
    return ours;
}

static void reset(void)
{
    memset(callers, 0, sizeof callers);
    total_calls = 0;
}

/* ---- the steps --------------------------------------------------------- */


enum { B = 32, WARMUP = 3, STEPS = 40, ROWS = 640 };
static const int SIZES[] = {MNIST_PIXELS, 64, 32, 10};
static const char *const MLP = "dense:64,relu,dropout:0.2,dense:32,relu,dropout:0.2";

typedef enum { PATH_DEFAULT, PATH_AUGMENT, PATH_SHARDED, PATH_ALLREDUCE, PATH_DET } Path;
static const char *const PATH_NAMES[] = {"default (one rank / node-shared window)",
                                         "default + augmentation",
                                         "sharded optimizer over messages",
                                         "one allreduce (--shard-optimizer 0)",
                                         "deterministic"};

/* The exchange kind of each path, chosen as the trainer chooses it. */
static ExchangeKind path_kind(Path path, int P)
{
    switch (path) {
    case PATH_SHARDED: return exchange_choose(0, 2, P);
    case PATH_ALLREDUCE: return exchange_choose(0, 0, P);
    case PATH_DET: return exchange_choose(1, 1, P);
    default: return exchange_choose(0, 1, P);
    }
}

/* Runs WARMUP + STEPS steps of `path` (the loader's batch, then the
 * exchange's step, as the trainer does); the trainer's code must not
 * allocate in the last STEPS. */
static void run_path(const Comm *world, const Dataset *d, Path path, int threads, const char *cnn,
                     Precision precision)
{
    Model m;
    Optimizer opt;
    Error e;
    ModelSpec spec;
    if (cnn || precision != PRECISION_FP32) {
        /* the MLP's layer list is the one model_create_mlp builds from SIZES */
        TU_CHECK(model_spec_model(&spec, cnn ? cnn : MLP, 10, &e) == 0, "spec: %s", e.msg);
        spec.precision = precision;
        TU_CHECK(model_create(&m, &spec, (Shape){MNIST_SIDE, MNIST_SIDE, 1}, 10, B, &e) == 0,
                 "model: %s", e.msg);
    } else {
        TU_CHECK(model_create_mlp(&m, SIZES, 3, 0.2f, B, &e) == 0, "model: %s", e.msg);
    }
    model_init_params(&m, 5);
    /* every rule of the update on */
    const OptimConfig oc = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                            .weight_decay = 1e-4f, .clip_norm = 5.0f, .max_norm = 3.0f};
    TU_CHECK(optim_create(&opt, &oc, m.param_floats, m.tensors, m.num_tensors, &e) == 0,
             "optimizer: %s", e.msg);
    ShardPlan plan;
    TU_CHECK(shard_plan(&plan, d->rows, B, path == PATH_DET ? 8 : 0, world->rank, world->size,
                        &e) == 0, "plan: %s", e.msg);
    /* this rank's rows, as the trainer reads them */
    Dataset mine = *d;
    mine.images = d->images + plan.local_first * MNIST_PIXELS;
    mine.labels = d->labels + plan.local_first;
    mine.rows = plan.local_rows;
    const AugmentParams aug = augment_defaults();
    Loader loader;
    TU_CHECK(loader_create(&loader, &plan, &mine, 7, path == PATH_AUGMENT ? &aug : NULL, threads,
                           &e) == 0, "loader: %s", e.msg);
    loader.in_mean = 0.1f, loader.in_scale = 3.0f; /* standardisation on */
    const ExchangeConfig xc = {.kind = path_kind(path, world->size), .global_batch = B,
                               .plan = &plan, .threads = threads};
    Exchange *x = exchange_create(&xc, &m, &opt, world, &e);
    TU_CHECK(x != NULL, "exchange: %s", e.msg);

    loader_epoch(&loader, 1);
    for (int s = 0; s < WARMUP + STEPS && x; s++) {
        if (s == WARMUP) {
            comm_barrier(world);
            reset();
            counting = 1;
        }
        loader_batch(&loader, (size_t)s % plan.steps);
        const Batch *b = &loader.batch;
        StepOut out;
        exchange_step(x, &(StepIn){.x = b->x, .y = b->y, .ids = b->ids, .rows = b->n,
                                   .dropout_key = 3 + (uint64_t)s},
                      &out);
        TU_CHECK(out.flags == 0, "%s: step %d flags %d", PATH_NAMES[path], s, out.flags);
    }
    counting = 0;

    long lib_calls;
    const long ours = count_ours(&lib_calls, 0, PATH_NAMES[path], world->rank);
    TU_CHECK(ours == 0, "rank %d: %s: the trainer's code allocated %ld time(s) in %d steps",
          world->rank, PATH_NAMES[path], ours, STEPS);
    if (ours || world->rank == 0) {
        printf("%-40s%s%s ours: %ld, libraries: %ld in %d steps (%.1f per step)%s\n",
               PATH_NAMES[path], cnn ? " (CNN)" : "",
               precision == PRECISION_BF16 ? " (bf16)" : "", ours, lib_calls, STEPS, (double)lib_calls / STEPS,
               lib_calls ? ":" : "");
        count_ours(&lib_calls, 1, PATH_NAMES[path], world->rank);
    }

    exchange_free(x);
    loader_free(&loader);
    optim_free(&opt);
    model_free(&m);
}

int main(int argc, char **argv)
{
    Comm world;
    if (comm_init(&argc, &argv, &world)) {
        fprintf(stderr, "MPI init failed\n");
        return 1;
    }
    /* 2 threads where the cores allow it (one rank here); more ranks with 2
     * threads each would only oversubscribe 2 cores and spin */
    int threads = 1;
#ifdef _OPENMP
    threads = world.size == 1 ? 2 : 1;
    omp_set_num_threads(threads);
#endif
    Dl_info info;
    if (!dladdr((void *)main, &info) || !info.dli_fbase) {
        fprintf(stderr, "noalloc_test: dladdr cannot name this executable\n");
        return 1;
    }
    self_base = info.dli_fbase;
    /* the counter itself: an allocation made here while counting is seen
     * and attributed to this executable (so the checks below can fail) */
    reset();
    counting = 1;
    void *volatile probe = malloc(24);
    counting = 0;
    free(probe);
    long lib_calls;
    const long probed = count_ours(&lib_calls, 0, "probe", world.rank);
    TU_CHECK(probed == 1, "the counting allocator saw %ld of this program's one malloc", probed);
    if (probed != 1)
        count_ours(&lib_calls, 1, "probe", world.rank);

    Dataset d = {0};
    tu_synthetic(&d, ROWS, 17);
    static const char *const CNN =
        "conv:4x3x3/p1,relu,conv:8x3x3/s2,relu,maxpool:2,dropout:0.25,flatten,"
        "dense:16,relu,dropout:0.2";
    for (Path p = PATH_DEFAULT; p <= PATH_DET; p++)
        run_path(&world, &d, p, threads, NULL, PRECISION_FP32);
    /* a CNN: convolutions (im2col workspace), pooling, dropout after it */
    for (Path p = PATH_DEFAULT; p <= PATH_DET; p++)
        run_path(&world, &d, p, threads, CNN, PRECISION_FP32);
    /* --precision bf16 where this CPU runs it: the bf16 copies live in the
     * arena (or the node's window) and oneDNN's primitives are made before
     * the step */
    if (gemm_bf16_native(NULL)) {
        static const Path BF16_PATHS[] = {PATH_DEFAULT, PATH_DET};
        for (int k = 0; k < 2; k++) {
            run_path(&world, &d, BF16_PATHS[k], threads, NULL, PRECISION_BF16);
            run_path(&world, &d, BF16_PATHS[k], threads, CNN, PRECISION_BF16);
        }
    } else if (world.rank == 0) {
        printf("bf16: not run (%s)\n", gemm_have_dnnl() ? "no AVX512_BF16/AMX on this CPU"
                                                          : "built without oneDNN");
    }
    dataset_free(&d);
    int64_t f = tu_failures;
    comm_allreduce_sum_i64(&world, &f, 1);
    if (world.rank == 0)
        printf("noalloc_test: %d ranks: %s (%d failed checks)\n", world.size, f ? "FAIL" : "PASS",
               (int)f);
    comm_finalize();
    return f > 255 ? 255 : (int)f;
}

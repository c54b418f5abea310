/* gemm-bench: OpenBLAS's own speed on exactly the matrix products of one
 * training step. First validates the project's kernels (dense_forward,
 * dense_backward, a whole model_forward + model_backward step with dropout)
 * against naive double-precision references and exits non-zero on any
 * mismatch; then times the step's cblas_sgemm calls (forward x·W per layer,
 * dW = xᵀ·dy per layer, dx = dy·Wᵀ for layers 2..L, the transposes of
 * src/ops.c) at one per-rank batch and thread count, median of many repeats,
 * and, for comparison, the trainer's own step pieces at that batch (batch
 * gather, zeroing the gradients, model_forward, model_backward, adam_step), so
 * the time outside the GEMMs is visible per phase.
 * Uses the trainer's kernels for validation, never a second copy of them;
 * needs no MPI (under mpirun each process measures its own core(s)).
 * --core-latency instead measures the round trip of a cache line between
 * CPUs 0 and 1: on a VM whose vCPUs the host moves between dies it changes
 * over time, and with it every multi-core timing. */
#define _GNU_SOURCE /* pthread_setaffinity_np, for --core-latency */
#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "mnist/data.h"
#include "mnist/gemm.h"
#include "mnist/model.h"
#include "mnist/ops.h"
#include "mnist/optim.h"
#include "mnist/rng.h"
#include "mnist/util.h"

#define MAX_PRODUCTS (3 * MODEL_MAX_LAYERS)
#define MAX_REPS 20000

static int failures;

static void fail(const char *what, double err, double tol)
{
    fprintf(stderr, "gemm-bench: error: validation failed: %s (error %.3g > tolerance %.3g)\n",
            what, err, tol);
    failures++;
}

/* Fills a[n] with uniform values in [lo, hi) from stream (seed, tag). */
static void fill(float *a, size_t n, uint64_t tag, float lo, float hi)
{
    const uint64_t key = rng_key(7, 99, tag, 0);
    for (size_t i = 0; i < n; i++)
        a[i] = lo + (hi - lo) * rng_uniform(key, i);
}

/* Largest |got - ref| over n entries, relative to the largest |ref| (so one
 * tolerance serves tensors of any scale); 0 when both are all zero. */
static double rel_err(const float *got, const double *ref, size_t n)
{
    double diff = 0, mag = 0;
    for (size_t i = 0; i < n; i++) {
        diff = fmax(diff, fabs((double)got[i] - ref[i]));
        mag = fmax(mag, fabs(ref[i]));
    }
    return mag > 0 ? diff / mag : diff;
}

/* ref[M,N] = op(A)·op(B) in double, row-major, op = transpose when tA/tB. */
static void ref_gemm(double *C, const float *A, const float *B, int M, int N, int K, int tA,
                     int tB)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) {
                const double a = tA ? A[(size_t)k * M + i] : A[(size_t)i * K + k];
                const double b = tB ? B[(size_t)j * K + k] : B[(size_t)k * N + j];
                s += a * b;
            }
            C[(size_t)i * N + j] = s;
        }
}

/* dense_forward and dense_backward against ref_gemm on one small shape:
 * overwrite of y and dx, accumulation into dW and db, dx = NULL skipped. */
static double check_dense(int B, int in, int out, double tol)
{
    const size_t nx = (size_t)B * in, nw = (size_t)in * out, ny = (size_t)B * out;
    float *x = malloc(sizeof(float) * nx), *W = malloc(sizeof(float) * nw);
    float *y = malloc(sizeof(float) * ny), *dy = malloc(sizeof(float) * ny);
    float *dW = malloc(sizeof(float) * nw), *db = malloc(sizeof(float) * out);
    float *dx = malloc(sizeof(float) * nx), *dW0 = malloc(sizeof(float) * nw);
    float *db0 = malloc(sizeof(float) * out);
    double *r = malloc(sizeof(double) * (nx > nw ? (nx > ny ? nx : ny) : (nw > ny ? nw : ny)));
    double worst = 0;
    char what[128];
    if (!x || !W || !y || !dy || !dW || !db || !dx || !dW0 || !db0 || !r) {
        fprintf(stderr, "gemm-bench: error: out of memory in validation\n");
        failures++;
        goto cleanup;
    }
    fill(x, nx, 1, -1, 1), fill(W, nw, 2, -1, 1), fill(dy, ny, 3, -1, 1);
    fill(y, ny, 4, 50, 60); /* garbage that must be overwritten */
    fill(dW0, nw, 5, -1, 1), fill(db0, (size_t)out, 6, -1, 1);

    dense_forward(y, x, W, B, in, out);
    ref_gemm(r, x, W, B, out, in, 0, 0);
    double err = rel_err(y, r, ny);
    snprintf(what, sizeof what, "dense_forward y = x·W at B=%d in=%d out=%d", B, in, out);
    if (!(err <= tol))
        fail(what, err, tol);
    worst = fmax(worst, err);

    for (int with_dx = 0; with_dx < 2; with_dx++) {
        memcpy(dW, dW0, sizeof(float) * nw);
        memcpy(db, db0, sizeof(float) * out);
        fill(dx, nx, 7, 50, 60);
        dense_backward(with_dx ? dx : NULL, dW, db, dy, x, W, B, in, out);
        ref_gemm(r, x, dy, in, out, B, 1, 0); /* xᵀ·dy, plus what was there */
        for (size_t k = 0; k < nw; k++)
            r[k] += dW0[k];
        err = rel_err(dW, r, nw);
        snprintf(what, sizeof what, "dense_backward dW += xᵀ·dy at B=%d in=%d out=%d", B, in, out);
        if (!(err <= tol))
            fail(what, err, tol);
        worst = fmax(worst, err);
        for (int j = 0; j < out; j++) {
            double s = db0[j];
            for (int i = 0; i < B; i++)
                s += dy[(size_t)i * out + j];
            r[j] = s;
        }
        err = rel_err(db, r, (size_t)out);
        snprintf(what, sizeof what, "dense_backward db += Σ dy at B=%d out=%d", B, out);
        if (!(err <= tol))
            fail(what, err, tol);
        worst = fmax(worst, err);
        if (with_dx) {
            ref_gemm(r, dy, W, B, in, out, 0, 1); /* dy·Wᵀ */
            err = rel_err(dx, r, nx);
            snprintf(what, sizeof what, "dense_backward dx = dy·Wᵀ at B=%d in=%d out=%d", B, in,
                     out);
            if (!(err <= tol))
                fail(what, err, tol);
            worst = fmax(worst, err);
        } else if (dx[0] < 50.0f) {
            fail("dense_backward wrote dx although dx was NULL", 1, 0);
        }
    }
cleanup:
    free(x), free(W), free(y), free(dy), free(dW), free(db), free(dx), free(dW0), free(db0);
    free(r);
    return worst;
}

/* One whole training step of a small MLP with dropout (model_forward train=1,
 * model_backward) against a double-precision forward and backward. The dropout
 * masks are the trainer's (a unit is kept iff its output is non-zero); the
 * reference checks every kept unit equals relu(z)/(1-p), recomputes
 * everything else, and checks the gradients are not all zero. Also checks on
 * a large layer that about p of the positive units are dropped. */
/* The l-th dense layer's tensors and output in a model. */
static float *W_of(Model *m, int l) { return model_layer_tensor(m, model_dense(m, l), 0, m->params); }
static float *b_of(Model *m, int l) { return model_layer_tensor(m, model_dense(m, l), 1, m->params); }
static float *dW_of(Model *m, int l) { return model_layer_tensor(m, model_dense(m, l), 0, m->grads); }
static float *db_of(Model *m, int l) { return model_layer_tensor(m, model_dense(m, l), 1, m->grads); }
static float *act_of(Model *m, int l) { return model_dense(m, l)->act; }

static double check_mlp(double tol)
{
    enum { L = 3, B = 9 };
    const int sizes[L + 1] = {23, 17, 13, 10};
    const float p = 0.25f, scale = 1.0f / (1.0f - p), grad_scale = 1.0f / 32;
    Model m;
    Error e;
    double worst = 0;
    if (model_create_mlp(&m, sizes, L, p, B, &e)) {
        fprintf(stderr, "gemm-bench: error: model_create_mlp: %s\n", e.msg);
        failures++;
        return 1;
    }
    model_init_params(&m, 5);
    for (int l = 0; l < L; l++)
        fill(b_of(&m, l), (size_t)sizes[l + 1], 20 + (uint64_t)l, -0.2f, 0.2f);
    float x[B * 23];
    uint8_t labels[B];
    uint64_t ids[B];
    fill(x, sizeof x / sizeof x[0], 30, 0, 1);
    for (int i = 0; i < B; i++)
        labels[i] = (uint8_t)((i * 7) % 10), ids[i] = 1000 + (uint64_t)i * 13;

    /* the reference: h[l] holds layer l's output, z its pre-activation */
    double h[L][B * 23], g[B * 23], gin[B * 23];
    const double *in = NULL;
    double dx_in[B * 23];
    for (int k = 0; k < B * 23; k++)
        dx_in[k] = x[k];
    model_zero_grads(&m);
    model_forward(&m, x, B, 1, 0x1234, ids);
    int kept = 0, positive = 0;
    in = dx_in;
    for (int l = 0; l < L; l++) {
        const int ni = sizes[l], no = sizes[l + 1];
        for (int i = 0; i < B; i++)
            for (int j = 0; j < no; j++) {
                double s = b_of(&m, l)[j];
                for (int k = 0; k < ni; k++)
                    s += in[i * ni + k] * (double)W_of(&m, l)[(size_t)k * no + j];
                const float got = act_of(&m, l)[i * no + j];
                if (l == L - 1) {
                    h[l][i * no + j] = s;
                } else if (s > 0 && got != 0.0f) {
                    h[l][i * no + j] = s * scale;
                    kept++, positive++;
                } else {
                    h[l][i * no + j] = 0;
                    positive += s > 0;
                }
            }
        const double err = rel_err(act_of(&m, l), h[l], (size_t)B * no);
        if (!(err <= tol))
            fail(l == L - 1 ? "model_forward logits" : "model_forward hidden activations", err, tol);
        worst = fmax(worst, err);
        in = h[l];
    }
    if (kept == 0 || kept == positive)
        fail("model_forward dropout kept none or all of the active units", 1, 0);

    /* softmax cross-entropy, summed loss, gradient scaled by grad_scale */
    const int C = sizes[L];
    double ref_loss = 0;
    for (int i = 0; i < B; i++) {
        double mx = h[L - 1][i * C], s = 0;
        for (int c = 1; c < C; c++)
            mx = fmax(mx, h[L - 1][i * C + c]);
        for (int c = 0; c < C; c++)
            s += exp(h[L - 1][i * C + c] - mx);
        const double lse = mx + log(s);
        ref_loss += lse - h[L - 1][i * C + labels[i]];
        for (int c = 0; c < C; c++)
            g[i * C + c] = (exp(h[L - 1][i * C + c] - lse) - (c == labels[i])) * grad_scale;
    }
    int pred[B];
    const double loss = model_backward(&m, x, labels, B, grad_scale, pred);
    const double lerr = fabs(loss - ref_loss) / fabs(ref_loss);
    if (!(lerr <= tol))
        fail("model_backward loss", lerr, tol);
    worst = fmax(worst, lerr);

    double ref_dW[23 * 17], ref_db[23];
    for (int l = L - 1; l >= 0; l--) {
        const int ni = sizes[l], no = sizes[l + 1];
        const double *a = l ? h[l - 1] : dx_in;
        double nonzero = 0;
        for (int k = 0; k < ni; k++)
            for (int j = 0; j < no; j++) {
                double s = 0;
                for (int i = 0; i < B; i++)
                    s += a[i * ni + k] * g[i * no + j];
                ref_dW[k * no + j] = s;
                nonzero += fabs(s);
            }
        for (int j = 0; j < no; j++) {
            double s = 0;
            for (int i = 0; i < B; i++)
                s += g[i * no + j];
            ref_db[j] = s;
        }
        char what[64];
        double err = rel_err(dW_of(&m, l), ref_dW, (size_t)ni * no);
        snprintf(what, sizeof what, "model_backward dW of layer %d", l);
        if (!(err <= tol))
            fail(what, err, tol);
        worst = fmax(worst, err);
        err = rel_err(db_of(&m, l), ref_db, (size_t)no);
        snprintf(what, sizeof what, "model_backward db of layer %d", l);
        if (!(err <= tol))
            fail(what, err, tol);
        worst = fmax(worst, err);
        if (nonzero == 0) {
            snprintf(what, sizeof what, "model_backward: reference dW of layer %d is all zero", l);
            fail(what, 1, 0);
        }
        if (l > 0) {
            /* dx = g·Wᵀ, then through dropout + ReLU: h > 0 ? scale : 0 */
            for (int i = 0; i < B; i++)
                for (int k = 0; k < ni; k++) {
                    double s = 0;
                    for (int j = 0; j < no; j++)
                        s += g[i * no + j] * (double)W_of(&m, l)[(size_t)k * no + j];
                    gin[i * ni + k] = h[l - 1][i * ni + k] > 0 ? s * scale : 0;
                }
            memcpy(g, gin, sizeof(double) * (size_t)B * ni);
        }
    }
    model_free(&m);

    /* The drop rate on a wide layer: 64 x 512 units, all positive. */
    enum { WB = 64, WN = 512 };
    float *y = malloc(sizeof(float) * WB * WN), *b = calloc(WN, sizeof(float));
    uint64_t wid[WB];
    if (!y || !b) {
        free(y), free(b);
        fprintf(stderr, "gemm-bench: error: out of memory in validation\n");
        failures++;
        return worst;
    }
    fill(y, (size_t)WB * WN, 40, 0.5f, 1.0f);
    for (int i = 0; i < WB; i++)
        wid[i] = (uint64_t)i;
    bias_act_dropout_forward(y, b, WB, WN, 1, 0.2f, 0xabcdef, wid, NULL);
    int dropped = 0;
    for (int k = 0; k < WB * WN; k++)
        dropped += y[k] == 0.0f;
    const double rate = (double)dropped / (WB * WN); /* sd of the estimate ~0.0022 */
    if (fabs(rate - 0.2) > 0.015)
        fail("bias_act_dropout_forward drop rate is not 0.2", fabs(rate - 0.2), 0.015);
    free(y), free(b);
    return worst;
}

/* One cblas_sgemm call of the step, with the arguments src/ops.c passes. */
typedef struct Product {
    char name[32];
    enum CBLAS_TRANSPOSE ta, tb;
    int M, N, K, lda, ldb, ldc;
    const float *A, *B;
    float *C;
    float beta;
    double flop, median_s;
} Product;

static void run_product(const Product *p)
{
    cblas_sgemm(CblasRowMajor, p->ta, p->tb, p->M, p->N, p->K, 1.0f, p->A, p->lda, p->B, p->ldb,
                p->beta, p->C, p->ldc);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median seconds of fn over repetitions filling about min_s seconds
 * (at least 21 and at most MAX_REPS), after a short warm-up. */
static double time_median(void (*fn)(const void *), const void *arg, double min_s, double *t)
{
    const double w0 = time_now_s();
    int warm = 0;
    while (warm < 3 || (time_now_s() - w0 < 0.05 && warm < 1000)) {
        fn(arg);
        warm++;
    }
    const double each = (time_now_s() - w0) / warm;
    int reps = (int)(min_s / (each > 1e-9 ? each : 1e-9));
    reps = reps < 21 ? 21 : reps > MAX_REPS ? MAX_REPS : reps;
    for (int r = 0; r < reps; r++) {
        const double t0 = time_now_s();
        fn(arg);
        t[r] = time_now_s() - t0;
    }
    qsort(t, (size_t)reps, sizeof t[0], cmp_double);
    return t[reps / 2];
}

typedef struct Step {
    Product *p;
    int n;
} Step;

static void one_product(const void *arg) { run_product(arg); }

static void whole_step(const void *arg)
{
    const Step *s = arg;
    for (int i = 0; i < s->n; i++)
        run_product(&s->p[i]);
}

/* Samples 64 entries of a timed product against double dot products: each
 * within 1e-4 of its sum of |terms| (float32 rounding of a length-K sum is
 * at most K * 6e-8 of it; a wrong transpose or stride is off by O(1)). */
static void check_product(const Product *p)
{
    const uint64_t key = rng_key(11, 12, (uint64_t)p->M, (uint64_t)p->N);
    for (int s = 0; s < 64; s++) {
        const int i = (int)rng_below(key, 2 * (uint64_t)s, (uint32_t)p->M);
        const int j = (int)rng_below(key, 2 * (uint64_t)s + 1, (uint32_t)p->N);
        double dot = 0, mag = 0;
        for (int k = 0; k < p->K; k++) {
            const double a = p->ta == CblasTrans ? p->A[(size_t)k * p->lda + i]
                                                 : p->A[(size_t)i * p->lda + k];
            const double b = p->tb == CblasTrans ? p->B[(size_t)j * p->ldb + k]
                                                 : p->B[(size_t)k * p->ldb + j];
            dot += a * b, mag += fabs(a * b);
        }
        const double err = fabs(p->C[(size_t)i * p->ldc + j] - dot);
        if (err > 1e-4 * mag + 1e-30) {
            char what[96];
            snprintf(what, sizeof what, "%.31s entry (%d, %d)", p->name, i, j);
            fail(what, err, 1e-4 * mag);
            return;
        }
    }
}

/* The trainer's step pieces at the timed batch, on a real Model (no MPI). */
typedef struct ModelStep {
    Model m;
    Adam opt;
    float *moments; /* Adam's m and v, 2 x param_floats */
    Dataset d;
    float *x;
    uint8_t *y;
    uint64_t *ids;
    size_t *idx;
    int batch;
} ModelStep;

static void ms_gather(const void *arg)
{
    const ModelStep *s = arg;
    data_gather_batch(s->x, s->y, &s->d, s->idx, s->batch);
}

static void ms_zero(const void *arg) { model_zero_grads(&((ModelStep *)arg)->m); }

static void ms_forward(const void *arg)
{
    ModelStep *s = (ModelStep *)arg;
    model_forward(&s->m, s->x, s->batch, 1, 0x5eed, s->ids);
}

static void ms_backward(const void *arg)
{
    ModelStep *s = (ModelStep *)arg;
    static int pred[65536];
    model_backward(&s->m, s->x, s->y, s->batch, 1.0f / (float)s->batch, pred);
}

static void ms_adam(const void *arg)
{
    ModelStep *s = (ModelStep *)arg;
    adam_step(&s->opt, s->m.params, s->moments, s->moments + s->m.param_floats, s->m.grads,
              s->m.param_floats);
}

static void ms_whole(const void *arg)
{
    ms_gather(arg), ms_zero(arg), ms_forward(arg), ms_backward(arg), ms_adam(arg);
}

/* A cache line bounced between a thread on CPU 0 and one on CPU 1. */
static _Atomic int pingpong_flag;

static int pin_cpu(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

enum { PINGPONG_TRIPS = 100000 };

static void *pong(void *arg)
{
    (void)arg;
    pin_cpu(1);
    for (int i = 0; i < PINGPONG_TRIPS; i++) {
        while (atomic_load_explicit(&pingpong_flag, memory_order_acquire) != 1)
            ;
        atomic_store_explicit(&pingpong_flag, 0, memory_order_release);
    }
    return NULL;
}

/* Median over 5 runs of the mean round trip, ns; -1 without two CPUs. */
static double core_latency_ns(void)
{
    double runs[5];
    for (int r = 0; r < 5; r++) {
        pthread_t t;
        if (pin_cpu(0) || pthread_create(&t, NULL, pong, NULL))
            return -1;
        const double t0 = time_now_s();
        for (int i = 0; i < PINGPONG_TRIPS; i++) {
            atomic_store_explicit(&pingpong_flag, 1, memory_order_release);
            while (atomic_load_explicit(&pingpong_flag, memory_order_acquire) != 0)
                ;
        }
        runs[r] = (time_now_s() - t0) / PINGPONG_TRIPS * 1e9;
        pthread_join(t, NULL);
    }
    qsort(runs, 5, sizeof runs[0], cmp_double);
    return runs[2];
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: gemm-bench [--layers 512,512] [--batch 128] [--threads N] [--min-time S]\n"
            "                  [--json] [--validate-only] | --core-latency\n"
            "Validates dense_forward, dense_backward and an MLP step against double-precision\n"
            "references, then times the step's cblas_sgemm calls at the per-rank --batch.\n"
            "  --layers W1,W2,..  hidden widths (784 inputs, 10 classes) [512,512]\n"
            "  --batch B          rows per rank [128]\n"
            "  --threads N        OpenBLAS/OpenMP threads [OMP_NUM_THREADS or all]\n"
            "  --min-time S       seconds of timing per measurement [1]\n"
            "  --json             print one JSON line instead of the table\n"
            "  --validate-only    stop after the validation\n"
            "  --core-latency     only print the CPU 0 <-> CPU 1 cache-line round trip (ns)\n"
            "Exit status: 0, 1 on a validation failure, 2 on a bad command line.\n");
}

int main(int argc, char **argv)
{
    const char *layers = "512,512";
    Precision precision = PRECISION_FP32;
    int batch = 128, threads = 0, json = 0, validate_only = 0;
    double min_s = 1.0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (strcmp(a, "--validate-only") == 0) {
            validate_only = 1;
        } else if (strcmp(a, "--core-latency") == 0) {
            const double ns = core_latency_ns();
            if (ns < 0) {
                fprintf(stderr, "gemm-bench: error: --core-latency needs CPUs 0 and 1\n");
                return 1;
            }
            printf("%.1f\n", ns);
            return 0;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (v && strcmp(a, "--layers") == 0) {
            layers = v, i++;
        } else if (v && strcmp(a, "--batch") == 0) {
            batch = (int)strtol(v, &end, 10), i++;
        } else if (v && strcmp(a, "--threads") == 0) {
            threads = (int)strtol(v, &end, 10), i++;
        } else if (v && strcmp(a, "--precision") == 0) {
            precision = strcmp(v, "bf16") == 0 ? PRECISION_BF16 : PRECISION_FP32, i++;
        } else if (v && strcmp(a, "--fp32-gemm") == 0) {
            gemm_set_f32_backend(strcmp(v, "onednn") == 0 ? GEMM_BACKEND_DNNL : GEMM_BACKEND_BLAS);
            i++;
        } else if (v && strcmp(a, "--min-time") == 0) {
            min_s = strtod(v, &end), i++;
        } else {
            fprintf(stderr, "gemm-bench: error: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (end && *end) {
            fprintf(stderr, "gemm-bench: error: %s '%s' is not a number\n", a, v);
            return 2;
        }
    }
    int sizes[MODEL_MAX_LAYERS + 1] = {MNIST_PIXELS};
    Error e;
    ModelSpec spec;
    int L = model_spec_from_widths(&spec, layers, 0.0f, &e) ? -1 : 1;
    for (int i = 0; L > 0 && i < spec.count; i++)
        if (spec.layers[i].kind == LAYER_DENSE)
            sizes[L++] = spec.layers[i].units;
    if (L > 0)
        sizes[L] = 10;
    if (L < 0 || batch < 1 || batch > 65536 || threads < 0 || !(min_s > 0 && min_s < 100)) {
        fprintf(stderr, "gemm-bench: error: %s\n",
                L < 0 ? e.msg : "need --batch 1..65536, --threads >= 0, --min-time in (0, 100)");
        return 2;
    }
#ifdef _OPENMP
    if (threads == 0)
        threads = omp_get_max_threads();
    omp_set_num_threads(threads);
#else
    threads = 1;
#endif
    ops_blas_threads(threads);

    /* Validation, at a thread count that splits the work. */
    double worst = 0;
    worst = fmax(worst, check_dense(1, 1, 1, 1e-5));
    worst = fmax(worst, check_dense(5, 7, 3, 1e-5));
    worst = fmax(worst, check_dense(33, 65, 17, 1e-5));
    worst = fmax(worst, check_dense(130, 300, 70, 1e-5));
    worst = fmax(worst, check_mlp(1e-4));

    /* Buffers of the step at the timed shapes; tensors 64-byte aligned as
     * in the trainer's arena. x[l] is layer l's input, dy[l] its output
     * gradient, dx[l] its input gradient. */
    float *x[MODEL_MAX_LAYERS] = {0}, *W[MODEL_MAX_LAYERS] = {0}, *y[MODEL_MAX_LAYERS] = {0};
    float *dy[MODEL_MAX_LAYERS] = {0}, *dW[MODEL_MAX_LAYERS] = {0}, *dx[MODEL_MAX_LAYERS] = {0};
    Product prod[MAX_PRODUCTS];
    int n = 0, status = 0;
    double *t = malloc(sizeof(double) * MAX_REPS);
    for (int l = 0; l < L; l++) {
        const size_t in = (size_t)sizes[l], out = (size_t)sizes[l + 1], b = (size_t)batch;
        x[l] = alloc_aligned(sizeof(float) * b * in), W[l] = alloc_aligned(sizeof(float) * in * out);
        y[l] = alloc_aligned(sizeof(float) * b * out), dy[l] = alloc_aligned(sizeof(float) * b * out);
        dW[l] = alloc_aligned(sizeof(float) * in * out), dx[l] = alloc_aligned(sizeof(float) * b * in);
        if (!x[l] || !W[l] || !y[l] || !dy[l] || !dW[l] || !dx[l] || !t) {
            fprintf(stderr, "gemm-bench: error: out of memory for batch %d\n", batch);
            status = 1;
            goto cleanup;
        }
        fill(x[l], b * in, 100 + (uint64_t)l, 0, 1);
        fill(W[l], in * out, 200 + (uint64_t)l, -0.05f, 0.05f);
        fill(dy[l], b * out, 300 + (uint64_t)l, -0.01f, 0.01f);
    }
    /* The step's order: forward 0..L-1, then per layer from the top its
     * weight gradient and (above the first layer) its input gradient. */
    for (int l = 0; l < L; l++) {
        const int in = sizes[l], out = sizes[l + 1];
        Product p = {"", CblasNoTrans, CblasNoTrans, batch, out, in, in, out, out,
                     x[l], W[l], y[l], 0.0f, 2.0 * batch * in * out, 0};
        snprintf(p.name, sizeof p.name, "fwd%d y=x·W", l);
        prod[n++] = p;
    }
    for (int l = L - 1; l >= 0; l--) {
        const int in = sizes[l], out = sizes[l + 1];
        Product pw = {"", CblasTrans, CblasNoTrans, in, out, batch, in, out, out,
                      x[l], dy[l], dW[l], 1.0f, 2.0 * batch * in * out, 0};
        snprintf(pw.name, sizeof pw.name, "bwd%d dW+=xT·dy", l);
        prod[n++] = pw;
        if (l > 0) {
            Product px = {"", CblasNoTrans, CblasTrans, batch, in, out, out, out, in,
                          dy[l], W[l], dx[l], 0.0f, 2.0 * batch * in * out, 0};
            snprintf(px.name, sizeof px.name, "bwd%d dx=dy·WT", l);
            prod[n++] = px;
        }
    }
    /* The timed shapes themselves: one pass through the project's kernels,
     * sampled entries against double dot products (dW starts at zero). */
    for (int l = 0; l < L; l++)
        dense_forward(y[l], x[l], W[l], batch, sizes[l], sizes[l + 1]);
    {
        float *db = alloc_aligned(sizeof(float) * 1024 * 1024);
        for (int l = L - 1; l >= 0 && db; l--)
            dense_backward(l ? dx[l] : NULL, dW[l], db, dy[l], x[l], W[l], batch, sizes[l],
                           sizes[l + 1]);
        free(db);
    }
    for (int i = 0; i < n; i++)
        check_product(&prod[i]);
    if (failures) {
        fprintf(stderr, "gemm-bench: %d validation check%s failed\n", failures,
                failures > 1 ? "s" : "");
        status = 1;
        goto cleanup;
    }
    if (!json)
        printf("validation: dense_forward, dense_backward, MLP step with dropout and the timed "
               "shapes match double precision (worst relative error %.2g)\n",
               worst);
    if (validate_only)
        goto cleanup;

    double flop = 0;
    for (int i = 0; i < n; i++) {
        prod[i].median_s = time_median(one_product, &prod[i], min_s / n, t);
        flop += prod[i].flop;
    }
    Step step = {prod, n};
    const double step_s = time_median(whole_step, &step, min_s, t);
    const double gflops = flop / step_s * 1e-9;
    double sum_s = 0, fwd_gemm_s = 0;
    for (int i = 0; i < n; i++) {
        sum_s += prod[i].median_s;
        if (i < L)
            fwd_gemm_s += prod[i].median_s;
    }

    /* The trainer's own step pieces at this batch. */
    enum { DATA_ROWS = 4096 };
    ModelStep ms = {.opt = {1e-3f, 0.9f, 0.999f, 1e-8f, 0}, .batch = batch};
    double piece_s[6] = {0};
    ModelSpec mspec;
    if (model_spec_from_widths(&mspec, layers, 0.2f, &e) ||
        model_spec_append(&mspec, (LayerSpec){.kind = LAYER_DENSE, .units = sizes[L]}, &e) ||
        (mspec.precision = precision,
         model_create(&ms.m, &mspec, (Shape){1, 1, sizes[0]}, sizes[L], batch, &e))) {
        fprintf(stderr, "gemm-bench: error: %s\n", e.msg);
        status = 1;
        goto cleanup;
    }
    ms.d.rows = DATA_ROWS;
    ms.d.shape = (Shape){MNIST_SIDE, MNIST_SIDE, 1};
    ms.d.images = malloc((size_t)DATA_ROWS * MNIST_PIXELS);
    ms.d.labels = malloc(DATA_ROWS);
    ms.x = alloc_aligned(sizeof(float) * (size_t)batch * MNIST_PIXELS);
    ms.y = malloc((size_t)batch);
    ms.moments = alloc_aligned(sizeof(float) * 2 * ms.m.param_floats);
    ms.ids = malloc(sizeof(uint64_t) * (size_t)batch);
    ms.idx = malloc(sizeof(size_t) * (size_t)batch);
    if (!ms.d.images || !ms.d.labels || !ms.x || !ms.y || !ms.ids || !ms.idx || !ms.moments) {
        fprintf(stderr, "gemm-bench: error: out of memory for the model step\n");
        status = 1;
    } else {
        const uint64_t key = rng_key(3, 4, 5, 6);
        for (size_t k = 0; k < (size_t)DATA_ROWS * MNIST_PIXELS; k++)
            ms.d.images[k] = (uint8_t)(rng_u64(key, k) >> 56);
        for (int k = 0; k < DATA_ROWS; k++)
            ms.d.labels[k] = (uint8_t)rng_below(key, (uint64_t)k + (1u << 30), 10);
        for (int i = 0; i < batch; i++)
            ms.idx[i] = rng_below(key, (uint64_t)i + (1u << 31), DATA_ROWS), ms.ids[i] = (uint64_t)i;
        model_init_params(&ms.m, 1);
        ms_gather(&ms);
        ms_forward(&ms);
        void (*pieces[6])(const void *) = {ms_gather, ms_zero, ms_forward, ms_backward, ms_adam,
                                          ms_whole};
        for (int k = 0; k < 6; k++)
            piece_s[k] = time_median(pieces[k], &ms, k == 5 ? min_s : min_s / 5, t);
    }
    free(ms.d.images), free(ms.d.labels), free(ms.x), free(ms.y), free(ms.ids), free(ms.idx);
    free(ms.moments);
    model_free(&ms.m);
    if (status)
        goto cleanup;
    const char *rank = getenv("OMPI_COMM_WORLD_RANK");

    char arch[64];
    snprintf(arch, sizeof arch, "%d", sizes[0]);
    for (int l = 1; l <= L; l++)
        snprintf(arch + strlen(arch), sizeof arch - strlen(arch), "-%d", sizes[l]);
    if (json) {
        printf("{\"tool\": \"gemm-bench\", \"rank\": %s, \"layers\": \"%s\", \"batch\": %d, "
               "\"threads\": %d, \"openblas\": \"%s\", \"validated\": true, "
               "\"validation_max_rel_err\": %.3g, \"flop_per_step\": %.0f, "
               "\"flop_per_sample\": %.1f, \"step_median_s\": %.6e, \"gflops\": %.3f, "
               "\"sum_of_products_median_s\": %.6e, \"model_step\": {\"gather_s\": %.6e, "
               "\"zero_grads_s\": %.6e, \"forward_s\": %.6e, \"backward_s\": %.6e, "
               "\"adam_s\": %.6e, \"whole_s\": %.6e, \"forward_gemm_s\": %.6e, "
               "\"backward_gemm_s\": %.6e, \"samples_per_s\": %.1f}, \"products\": [",
               rank ? rank : "0", arch, batch, threads, ops_blas_config(), worst, flop,
               flop / batch, step_s, gflops, sum_s, piece_s[0], piece_s[1], piece_s[2],
               piece_s[3], piece_s[4], piece_s[5], fwd_gemm_s, sum_s - fwd_gemm_s,
               batch / piece_s[5]);
        for (int i = 0; i < n; i++)
            printf("%s{\"name\": \"%s\", \"M\": %d, \"N\": %d, \"K\": %d, \"trans_a\": %s, "
                   "\"trans_b\": %s, \"median_s\": %.6e, \"gflops\": %.3f}",
                   i ? ", " : "", prod[i].name, prod[i].M, prod[i].N, prod[i].K,
                   prod[i].ta == CblasTrans ? "true" : "false",
                   prod[i].tb == CblasTrans ? "true" : "false", prod[i].median_s,
                   prod[i].flop / prod[i].median_s * 1e-9);
        printf("]}\n");
    } else {
        printf("layers %s, batch %d, %d thread%s, %s\n", arch, batch, threads,
               threads > 1 ? "s" : "", ops_blas_config());
        printf("%-16s %6s %6s %6s %5s %12s %9s\n", "product", "M", "N", "K", "op", "median us",
               "GFLOP/s");
        for (int i = 0; i < n; i++)
            printf("%-16s %6d %6d %6d %c%c    %12.1f %9.1f\n", prod[i].name, prod[i].M, prod[i].N,
                   prod[i].K, prod[i].ta == CblasTrans ? 'T' : 'N',
                   prod[i].tb == CblasTrans ? 'T' : 'N', prod[i].median_s * 1e6,
                   prod[i].flop / prod[i].median_s * 1e-9);
        printf("step (%d products back to back): %.1f us median, %.1f GFLOP/s\n", n, step_s * 1e6,
               gflops);
        printf("FLOP per sample %.3f MFLOP; OpenBLAS-bound ceiling %.0f samples/s at %d "
               "thread%s\n",
               flop / batch * 1e-6, batch / step_s, threads, threads > 1 ? "s" : "");
        printf("the trainer's step pieces at this batch (median us; GEMM share in brackets):\n"
               "  gather %.1f, zero grads %.1f, model_forward %.1f [%.1f], model_backward %.1f "
               "[%.1f], adam_step %.1f\n"
               "  whole step %.1f us = %.0f samples/s (%.0f%% of it in the GEMMs)\n",
               piece_s[0] * 1e6, piece_s[1] * 1e6, piece_s[2] * 1e6, fwd_gemm_s * 1e6,
               piece_s[3] * 1e6, (sum_s - fwd_gemm_s) * 1e6, piece_s[4] * 1e6, piece_s[5] * 1e6,
               batch / piece_s[5], 100 * sum_s / piece_s[5]);
    }
cleanup:
    for (int l = 0; l < L; l++)
        free(x[l]), free(W[l]), free(y[l]), free(dy[l]), free(dW[l]), free(dx[l]);
    free(t);
    return status;
}

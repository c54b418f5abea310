/* conv-bench: ref-cnn's convolutions (28x28x1 -> 32 filters, 26x26x32 -> 64
 * filters, 3x3, stride 1, no padding) timed through mnist-dist's kernels
 * (im2col + OpenBLAS sgemm, src/nn/conv.c) and through oneDNN 2.6, forward
 * and both backward passes (data, weights), at the threads OMP_NUM_THREADS
 * gives. oneDNN runs twice: on our layouts (NHWC activations, HWIO
 * weights: what the trainer would hand it) and on the layouts it prefers
 * (format "any": blocked, reorders not counted), with the algorithm
 * "auto" and, where implemented, "winograd". Every oneDNN result on our
 * layouts is first checked against ours (relative 1e-4). Prints one line
 * per kernel and a JSON line. Built only when libdnnl-dev is installed.
 * usage: conv-bench [--batch N] [--reps N] */
#include <dnnl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "mnist/conv.h"
#include "mnist/rng.h"
#include "mnist/util.h"

#define CHECK(call)                                                                              \
    do {                                                                                         \
        dnnl_status_t s_ = (call);                                                               \
        if (s_ != dnnl_success) {                                                                \
            fprintf(stderr, "conv-bench: %s:%d: %s failed (status %d)\n", __FILE__, __LINE__,    \
                    #call, (int)s_);                                                             \
            return -1;                                                                           \
        }                                                                                        \
    } while (0)

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct Bufs {
    float *x, *W, *b, *y, *dy, *dx, *dW, *db;
} Bufs;

typedef struct Dnnl {
    dnnl_engine_t eng;
    dnnl_stream_t st;
} Dnnl;

/* The median of reps timings of one call (seconds). */
typedef void (*Fn)(void *ctx);
static double median_time(Fn fn, void *ctx, int reps)
{
    double t[64];
    reps = reps > 64 ? 64 : reps;
    fn(ctx); /* warm-up */
    for (int r = 0; r < reps; r++) {
        const double t0 = now_s();
        fn(ctx);
        t[r] = now_s() - t0;
    }
    for (int i = 1; i < reps; i++)
        for (int j = i; j > 0 && t[j] < t[j - 1]; j--) {
            double s = t[j];
            t[j] = t[j - 1], t[j - 1] = s;
        }
    return t[reps / 2];
}

typedef struct Ours {
    const ConvGeom *g;
    Bufs *m;
    float *work;
    int B, slots, which, need_dx; /* the first layer needs no input gradient */
} Ours;

static void ours_run(void *p)
{
    Ours *o = p;
    if (o->which == 0)
        conv_forward(o->m->y, o->m->x, o->m->W, o->m->b, o->B, o->g, 0, o->work, o->slots, NULL);
    else /* backward: data and weights in one pass (the trainer's call) */
        conv_backward(o->need_dx ? o->m->dx : NULL, o->m->dW, o->m->db, o->m->dy, o->m->x, NULL, o->m->W, o->B, o->g,
                      o->work, o->slots, NULL);
}

typedef struct Prim {
    dnnl_primitive_t p;
    dnnl_stream_t st;
    int nargs;
    dnnl_exec_arg_t args[4];
} Prim;

static void prim_run(void *q)
{
    Prim *p = q;
    dnnl_primitive_execute(p->p, p->st, p->nargs, p->args);
    dnnl_stream_wait(p->st);
}

static double rel_err(const float *a, const float *b, size_t n)
{
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        s = fmax(s, fabs((double)b[i]));
    }
    return s > 0 ? d / s : d;
}

/* A memory object over ptr (NULL: its own buffer) for md. */
static int mem(dnnl_memory_t *out, const dnnl_memory_desc_t *md, const Dnnl *d, void *ptr)
{
    CHECK(dnnl_memory_create(out, md, d->eng, ptr ? ptr : DNNL_MEMORY_ALLOCATE));
    return 0;
}

/* oneDNN's three passes for g at batch B with algorithm alg; layouts ours
 * (nhwc/hwio) or any. Fills ms[3] (fwd, bwd data, bwd weights, seconds)
 * and impl names; checks results against ours on our layouts. -1: not
 * implemented. */
static int dnnl_case(const Dnnl *d, const ConvGeom *g, int B, dnnl_alg_kind_t alg, int any,
                     const Bufs *ref, Bufs *m, int reps, double *sec, char impl[3][96],
                     double *worst)
{
    const dnnl_dims_t sd = {B, g->c, g->h, g->w}, wd = {g->f, g->c, g->kh, g->kw}, bd = {g->f},
                      dd = {B, g->f, g->oh, g->ow}, strides = {g->stride, g->stride},
                      pad = {g->pad, g->pad};
    dnnl_memory_desc_t s_md, w_md, b_md, d_md;
    const dnnl_format_tag_t at = any ? dnnl_format_tag_any : dnnl_nhwc;
    const dnnl_format_tag_t wt = any ? dnnl_format_tag_any : dnnl_hwio;
    CHECK(dnnl_memory_desc_init_by_tag(&s_md, 4, sd, dnnl_f32, at));
    CHECK(dnnl_memory_desc_init_by_tag(&w_md, 4, wd, dnnl_f32, wt));
    CHECK(dnnl_memory_desc_init_by_tag(&b_md, 1, bd, dnnl_f32, dnnl_x));
    CHECK(dnnl_memory_desc_init_by_tag(&d_md, 4, dd, dnnl_f32, at));
    dnnl_convolution_desc_t fd, bdd, bwd;
    dnnl_primitive_desc_t fpd, dpd, wpd;
    CHECK(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, alg, &s_md, &w_md, &b_md,
                                             &d_md, strides, pad, pad));
    if (dnnl_primitive_desc_create(&fpd, &fd, NULL, d->eng, NULL) != dnnl_success)
        return -1;
    CHECK(dnnl_convolution_backward_data_desc_init(&bdd, alg, &s_md, &w_md, &d_md, strides, pad,
                                                   pad));
    if (dnnl_primitive_desc_create(&dpd, &bdd, NULL, d->eng, fpd) != dnnl_success)
        return -1;
    CHECK(dnnl_convolution_backward_weights_desc_init(&bwd, alg, &s_md, &w_md, &b_md, &d_md,
                                                      strides, pad, pad));
    if (dnnl_primitive_desc_create(&wpd, &bwd, NULL, d->eng, fpd) != dnnl_success)
        return -1;
    const dnnl_primitive_desc_t pds[3] = {fpd, dpd, wpd};
    for (int k = 0; k < 3; k++) {
        const char *s = NULL;
        dnnl_primitive_desc_query(pds[k], dnnl_query_impl_info_str, 0, &s);
        snprintf(impl[k], 96, "%s", s ? s : "?");
    }
    /* the memory each primitive wants (== ours when !any; with "any" each pass may
     * choose its own blocked layouts, so each gets its own buffers) */
#define MD(pd, what) dnnl_primitive_desc_query_md(pd, what, 0)
#define OURS(ptr) (any ? NULL : (ptr))
    dnnl_memory_t mem_f[4], mem_d[3], mem_w[4];
    if (mem(&mem_f[0], MD(fpd, dnnl_query_src_md), d, OURS(m->x)) ||
        mem(&mem_f[1], MD(fpd, dnnl_query_weights_md), d, OURS(m->W)) ||
        mem(&mem_f[2], &b_md, d, m->b) ||
        mem(&mem_f[3], MD(fpd, dnnl_query_dst_md), d, OURS(m->y)) ||
        mem(&mem_d[0], MD(dpd, dnnl_query_diff_dst_md), d, OURS(m->dy)) ||
        mem(&mem_d[1], MD(dpd, dnnl_query_weights_md), d, OURS(m->W)) ||
        mem(&mem_d[2], MD(dpd, dnnl_query_diff_src_md), d, OURS(m->dx)) ||
        mem(&mem_w[0], MD(wpd, dnnl_query_src_md), d, OURS(m->x)) ||
        mem(&mem_w[1], MD(wpd, dnnl_query_diff_dst_md), d, OURS(m->dy)) ||
        mem(&mem_w[2], MD(wpd, dnnl_query_diff_weights_md), d, OURS(m->dW)) ||
        mem(&mem_w[3], &b_md, d, m->db))
        return -1;
#undef MD
#undef OURS
    Prim p[3] = {{.nargs = 4, .args = {{DNNL_ARG_SRC, mem_f[0]}, {DNNL_ARG_WEIGHTS, mem_f[1]},
                                       {DNNL_ARG_BIAS, mem_f[2]}, {DNNL_ARG_DST, mem_f[3]}}},
                 {.nargs = 3, .args = {{DNNL_ARG_DIFF_DST, mem_d[0]}, {DNNL_ARG_WEIGHTS, mem_d[1]},
                                       {DNNL_ARG_DIFF_SRC, mem_d[2]}}},
                 {.nargs = 4, .args = {{DNNL_ARG_SRC, mem_w[0]}, {DNNL_ARG_DIFF_DST, mem_w[1]},
                                       {DNNL_ARG_DIFF_WEIGHTS, mem_w[2]},
                                       {DNNL_ARG_DIFF_BIAS, mem_w[3]}}}};
    for (int k = 0; k < 3; k++) {
        CHECK(dnnl_primitive_create(&p[k].p, pds[k]));
        p[k].st = d->st;
        sec[k] = median_time(prim_run, &p[k], reps);
    }
    if (!any) { /* one more of each from clean outputs, against ours */
        const size_t ny = (size_t)B * g->oh * g->ow * g->f, nx = (size_t)B * g->h * g->w * g->c;
        const size_t nw = (size_t)g->kh * g->kw * g->c * g->f;
        for (int k = 0; k < 3; k++)
            prim_run(&p[k]);
        worst[0] = fmax(worst[0], rel_err(m->y, ref->y, ny));
        if (g->c > 1) /* ours computes no dx for the grey first layer */
            worst[0] = fmax(worst[0], rel_err(m->dx, ref->dx, nx));
        worst[0] = fmax(worst[0], rel_err(m->dW, ref->dW, nw)); /* oneDNN overwrites dW */
        worst[0] = fmax(worst[0], rel_err(m->db, ref->db, (size_t)g->f));
    }
    for (int k = 0; k < 3; k++) {
        dnnl_primitive_destroy(p[k].p);
        dnnl_primitive_desc_destroy(pds[k]);
    }
    for (int k = 0; k < 4; k++)
        dnnl_memory_destroy(mem_f[k]), dnnl_memory_destroy(mem_w[k]);
    for (int k = 0; k < 3; k++)
        dnnl_memory_destroy(mem_d[k]);
    return 0;
}

static float *fill(size_t n, uint64_t key, float scale)
{
    float *p = alloc_aligned(sizeof(float) * (n ? n : 1));
    if (!p) {
        fprintf(stderr, "conv-bench: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = scale * (rng_uniform(key, i) - 0.5f);
    return p;
}

int main(int argc, char **argv)
{
    int B = 64, reps = 9;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--batch") == 0)
            B = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--reps") == 0)
            reps = atoi(argv[i + 1]);
    }
    if (B < 1 || reps < 1) {
        fprintf(stderr, "usage: conv-bench [--batch N] [--reps N]\n");
        return 2;
    }
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    Dnnl d;
    if (dnnl_engine_create(&d.eng, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&d.st, d.eng, dnnl_stream_default_flags) != dnnl_success) {
        fprintf(stderr, "conv-bench: oneDNN: no CPU engine\n");
        return 1;
    }
    const ConvGeom geoms[2] = {{28, 28, 1, 32, 3, 3, 1, 0, 26, 26},
                               {26, 26, 32, 64, 3, 3, 1, 0, 24, 24}};
    printf("{\"batch\": %d, \"threads\": %d, \"convs\": [", B, threads);
    for (int gi = 0; gi < 2; gi++) {
        const ConvGeom *g = &geoms[gi];
        const size_t nx = (size_t)B * g->h * g->w * g->c, ny = (size_t)B * g->oh * g->ow * g->f;
        const size_t nw = (size_t)g->kh * g->kw * g->c * g->f;
        const double flop = 2.0 * (double)ny * g->kh * g->kw * g->c; /* one pass */
        Bufs ref = {fill(nx, 1, 2), fill(nw, 2, 0.5f), fill(g->f, 3, 0.2f), fill(ny, 0, 0),
                    fill(ny, 4, 2), fill(nx, 0, 0), fill(nw, 0, 0), fill(g->f, 0, 0)};
        Bufs m = {ref.x, ref.W, ref.b, fill(ny, 0, 0), ref.dy, fill(nx, 0, 0), fill(nw, 0, 0),
                  fill(g->f, 0, 0)};
        float *work = alloc_aligned(sizeof(float) * conv_work_floats(g, B, threads));
        Ours of = {g, &ref, work, B, threads, 0, 1}, ob = of;
        ob.need_dx = gi > 0;
        ob.which = 1;
        const double t_of = median_time(ours_run, &of, reps);
        memset(ref.dW, 0, sizeof(float) * nw), memset(ref.db, 0, sizeof(float) * g->f);
        ours_run(&ob); /* once from zero: the reference gradients */
        float *dW_once = fill(nw, 0, 0);
        memcpy(dW_once, ref.dW, sizeof(float) * nw);
        const double t_ob = median_time(ours_run, &ob, reps);
        memcpy(ref.dW, dW_once, sizeof(float) * nw);
        memset(ref.db, 0, sizeof(float) * g->f);
        ours_run(&ob);
        fprintf(stderr, "%dx%dx%d -> %d filters %dx%d, batch %d, %d thread(s):\n", g->h, g->w,
                g->c, g->f, g->kh, g->kw, B, threads);
        fprintf(stderr, "  mnist-dist im2col+sgemm   fwd %7.2f ms (%5.1f GFLOP/s)  bwd data+weights "
                        "%7.2f ms (%5.1f GFLOP/s)\n", 1e3 * t_of, flop / t_of / 1e9, 1e3 * t_ob,
                (gi ? 2 : 1) * flop / t_ob / 1e9);
        printf("%s{\"shape\": \"%dx%dx%d->%d\", \"ours_fwd_ms\": %.3f, \"ours_bwd_ms\": %.3f, "
               "\"flop_per_pass\": %.0f, \"dnnl\": [", gi ? ", " : "", g->h, g->w, g->c, g->f,
               1e3 * t_of, 1e3 * t_ob, flop);
        /* ours accumulated dW once from zero; the reference for oneDNN (which overwrites) */
        memcpy(ref.dW, dW_once, sizeof(float) * nw);
        ours_run(&of);
        int first = 1;
        static const struct {
            dnnl_alg_kind_t alg;
            const char *name;
        } algs[] = {{dnnl_convolution_auto, "auto"}, {dnnl_convolution_winograd, "winograd"}};
        for (int a = 0; a < 2; a++)
            for (int any = 0; any < 2; any++) {
                double sec[3] = {0}, worst = 0;
                char impl[3][96];
                if (dnnl_case(&d, g, B, algs[a].alg, any, &ref, &m, reps, sec, impl, &worst)) {
                    fprintf(stderr, "  oneDNN %-8s %-9s not implemented for this shape\n",
                            algs[a].name, any ? "own" : "NHWC/HWIO");
                    continue;
                }
                const double bwd = gi ? sec[1] + sec[2] : sec[2]; /* conv1 needs no dx */
                fprintf(stderr, "  oneDNN %-8s %-9s fwd %7.2f ms (%5.1f GFLOP/s)  bwd data+weights "
                                "%7.2f ms (%5.1f GFLOP/s)  [%s | %s | %s]%s\n", algs[a].name,
                        any ? "own" : "NHWC/HWIO", 1e3 * sec[0], flop / sec[0] / 1e9, 1e3 * bwd,
                        (gi ? 2 : 1) * flop / bwd / 1e9, impl[0], impl[1], impl[2],
                        any ? "" : (worst < 1e-4 ? " (checked)" : " (DIFFERS FROM OURS)"));
                printf("%s{\"alg\": \"%s\", \"layouts\": \"%s\", \"fwd_ms\": %.3f, \"bwd_data_ms\": "
                       "%.3f, \"bwd_weights_ms\": %.3f, \"impl\": [\"%s\", \"%s\", \"%s\"]%s}",
                       first ? "" : ", ", algs[a].name, any ? "own" : "nhwc", 1e3 * sec[0],
                       1e3 * sec[1], 1e3 * sec[2], impl[0], impl[1], impl[2],
                       any ? "" : (worst < 1e-4 ? ", \"checked\": true" : ", \"checked\": false"));
                first = 0;
            }
        printf("]}");
        free(ref.x), free(ref.W), free(ref.b), free(ref.y), free(ref.dy), free(ref.dx);
        free(ref.dW), free(ref.db), free(m.y), free(m.dx), free(m.dW), free(m.db), free(work);
        free(dW_once);
    }
    printf("]}\n");
    dnnl_stream_destroy(d.st);
    dnnl_engine_destroy(d.eng);
    return 0;
}

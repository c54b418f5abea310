/* gemm: matrix products through oneDNN's matmul or CBLAS (see gemm.h). */
#include "mnist/gemm.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef MNIST_WITH_DNNL
#include <dnnl.h>
#endif

static GemmBackend f32_backend = GEMM_BACKEND_BLAS;

void gemm_set_f32_backend(GemmBackend b) { f32_backend = b; }
GemmBackend gemm_f32_backend(void) { return f32_backend; }

static void blas_run(const GemmShape *s, int m, int k, const void *a, const void *b, float *c)
{
    cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans, s->tb ? CblasTrans : CblasNoTrans,
                m, s->n, k, 1.0f, a, s->ta ? m : k, b, s->tb ? k : s->n,
                s->accumulate ? 1.0f : 0.0f, c, s->n);
}

#ifdef MNIST_WITH_DNNL

int gemm_have_dnnl(void) { return 1; }

static const char *isa_name(dnnl_cpu_isa_t isa)
{
    switch (isa) {
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_sse41: return "sse41";
    default: return "unknown";
    }
}

int gemm_bf16_native(const char **isa)
{
    const dnnl_cpu_isa_t got = dnnl_get_effective_cpu_isa();
    if (isa)
        *isa = isa_name(got);
    return ((unsigned)got & (unsigned)dnnl_cpu_isa_avx512_core_bf16) ==
           (unsigned)dnnl_cpu_isa_avx512_core_bf16;
}

const char *gemm_dnnl_version(void)
{
    static char buf[96];
    const dnnl_version_t *v = dnnl_version();
    snprintf(buf, sizeof buf, "oneDNN %d.%d.%d (%s)", v->major, v->minor, v->patch,
             isa_name(dnnl_get_effective_cpu_isa()));
    return buf;
}

/* One engine for the process (CPU engines are stateless handles). */
static dnnl_engine_t engine(void)
{
    static dnnl_engine_t eng;
    if (!eng && dnnl_engine_create(&eng, dnnl_cpu, 0) != dnnl_success)
        eng = NULL;
    return eng;
}

/* The descriptors of a product at batch `batch`: A, B, C. */
static int descs(const GemmShape *s, int batch, dnnl_memory_desc_t d[3])
{
    const dnnl_dim_t m = s->batch_is_k ? s->m : batch, k = s->batch_is_k ? batch : s->k, n = s->n;
    const dnnl_data_type_t t = s->type == GEMM_BF16 ? dnnl_bf16 : dnnl_f32;
    const dnnl_dims_t da = {m, k}, db = {k, n}, dc = {m, n};
    const dnnl_dims_t sa = {s->ta ? 1 : k, s->ta ? m : 1}, sb = {s->tb ? 1 : n, s->tb ? k : 1},
                      sc = {n, 1};
    return dnnl_memory_desc_init_by_strides(&d[0], 2, da, t, sa) != dnnl_success ||
           dnnl_memory_desc_init_by_strides(&d[1], 2, db, t, sb) != dnnl_success ||
           dnnl_memory_desc_init_by_strides(&d[2], 2, dc, dnnl_f32, sc) != dnnl_success;
}

static void entry_free(GemmEntry *en)
{
    for (int i = 0; i < 3; i++)
        if (en->mem[i])
            dnnl_memory_destroy(en->mem[i]);
    if (en->prim)
        dnnl_primitive_destroy(en->prim);
    memset(en, 0, sizeof *en);
}

/* Makes the primitive (and its memory objects) for one batch size. */
static int entry_make(GemmEntry *en, const GemmShape *s, int batch)
{
    dnnl_memory_desc_t d[3];
    dnnl_matmul_desc_t md;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_engine_t eng = engine();
    int bad = !eng || descs(s, batch, d) ||
              dnnl_matmul_desc_init(&md, &d[0], &d[1], NULL, &d[2]) != dnnl_success ||
              dnnl_primitive_attr_create(&attr) != dnnl_success;
    if (!bad && s->accumulate)
        bad = dnnl_post_ops_create(&po) != dnnl_success ||
              dnnl_post_ops_append_sum(po, 1.0f) != dnnl_success ||
              dnnl_primitive_attr_set_post_ops(attr, po) != dnnl_success;
    bad = bad || dnnl_primitive_desc_create(&pd, &md, attr, eng, NULL) != dnnl_success ||
          dnnl_primitive_create((dnnl_primitive_t *)&en->prim, pd) != dnnl_success;
    for (int i = 0; i < 3 && !bad; i++)
        bad = dnnl_memory_create((dnnl_memory_t *)&en->mem[i], &d[i], eng, DNNL_MEMORY_NONE) !=
              dnnl_success;
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (po)
        dnnl_post_ops_destroy(po);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    if (bad) {
        entry_free(en);
        return -1;
    }
    en->batch = batch;
    return 0;
}

static GemmEntry *entry_for(GemmPlan *p, int batch)
{
    for (int i = 0; i < GEMM_CACHE; i++)
        if (p->cache[i].batch == batch)
            return &p->cache[i];
    GemmEntry *en = &p->cache[p->next];
    p->next = (p->next + 1) % GEMM_CACHE;
    entry_free(en);
    return entry_make(en, &p->s, batch) ? NULL : en;
}

static void dnnl_run(GemmPlan *p, int batch, const void *a, const void *b, float *c)
{
    GemmEntry *en = entry_for(p, batch);
    dnnl_stream_t st = p->stream;
    int bad = !en;
    if (!bad) {
        dnnl_memory_set_data_handle(en->mem[0], (void *)a);
        dnnl_memory_set_data_handle(en->mem[1], (void *)b);
        dnnl_memory_set_data_handle(en->mem[2], c);
        const dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, en->mem[0]},
                                         {DNNL_ARG_WEIGHTS, en->mem[1]},
                                         {DNNL_ARG_DST, en->mem[2]}};
        bad = dnnl_primitive_execute(en->prim, st, 3, args) != dnnl_success ||
              dnnl_stream_wait(st) != dnnl_success;
    }
    if (bad) { /* out of memory inside the step: nothing sensible to return to */
        fprintf(stderr, "mnist-dist: error: oneDNN matmul %dx%dx%d (batch %d) failed\n", p->s.m,
                p->s.n, p->s.k, batch);
        abort();
    }
}

#else /* no oneDNN */

int gemm_have_dnnl(void) { return 0; }

int gemm_bf16_native(const char **isa)
{
    if (isa)
        *isa = "none (built without oneDNN)";
    return 0;
}

const char *gemm_dnnl_version(void) { return "none"; }

#endif

int gemm_plan(GemmPlan *p, GemmShape s, Error *e)
{
    memset(p, 0, sizeof *p);
    p->s = s;
    p->backend = s.type == GEMM_BF16 ? GEMM_BACKEND_DNNL : f32_backend;
    if (p->backend == GEMM_BACKEND_BLAS)
        return 0;
#ifdef MNIST_WITH_DNNL
    const int batch = s.batch_is_k ? s.k : s.m;
    if (!engine() || dnnl_stream_create((dnnl_stream_t *)&p->stream, engine(),
                                        dnnl_stream_default_flags) != dnnl_success ||
        entry_make(&p->cache[0], &p->s, batch))
        return err_set(e, "oneDNN cannot make a %s matmul of %dx%dx%d", s.type == GEMM_BF16 ? "bf16" : "f32",
                       s.m, s.n, s.k);
    p->next = 1;
    return 0;
#else
    return err_set(e, "this build has no oneDNN: %s products need it",
                   s.type == GEMM_BF16 ? "bf16" : "oneDNN f32");
#endif
}

void gemm_run(GemmPlan *p, int batch, const void *a, const void *b, float *c)
{
    if (batch < 1)
        return;
    const int m = p->s.batch_is_k ? p->s.m : batch, k = p->s.batch_is_k ? batch : p->s.k;
#ifdef MNIST_WITH_DNNL
    if (p->backend == GEMM_BACKEND_DNNL) {
        dnnl_run(p, batch, a, b, c);
        return;
    }
#endif
    blas_run(&p->s, m, k, a, b, c);
}

void gemm_plan_free(GemmPlan *p)
{
#ifdef MNIST_WITH_DNNL
    for (int i = 0; i < GEMM_CACHE; i++)
        entry_free(&p->cache[i]);
    if (p->stream)
        dnnl_stream_destroy(p->stream);
#endif
    memset(p, 0, sizeof *p);
}

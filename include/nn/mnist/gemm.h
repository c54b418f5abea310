/* gemm: the one place that decides how a matrix product runs. A GemmPlan is
 * one product site of a layer, C[m,n] (+)= op(A)[m,k] · op(B)[k,n], all
 * row-major and packed (A is [m,k], or [k,m] with ta; B is [k,n], or [n,k]
 * with tb; C is [m,n]); A and B are float32 or bf16, C and the sums float32.
 * The batch is m (a forward product, an input gradient) or k (a weight
 * gradient) and is given at each run, up to the planned maximum.
 *
 * Backends: oneDNN's matmul (JIT kernels for the CPU it runs on: AVX-512,
 * AVX512_BF16, AMX), when the build has it, for bf16 always and for float32
 * when gemm_set_f32_backend says so; CBLAS sgemm otherwise. oneDNN needs a
 * primitive per batch size: a plan keeps GEMM_CACHE of them, the first made
 * when the plan is, the others when a batch size first runs (the trainer
 * runs a few warm-up sizes before it counts on the step allocating nothing).
 * A primitive's result depends only on its shape, not on the thread count
 * (checked by the tests), so the exact mode keeps its guarantee. */
#ifndef MNIST_GEMM_H
#define MNIST_GEMM_H

#include "mnist/util.h"

#define GEMM_CACHE 8

typedef enum { GEMM_F32, GEMM_BF16 } GemmType;
typedef enum { GEMM_BACKEND_BLAS, GEMM_BACKEND_DNNL } GemmBackend;

typedef struct GemmShape {
    int m, n, k;    /* the batch dimension holds its maximum */
    int ta, tb;     /* A stored [k,m], B stored [n,k] */
    int batch_is_k; /* the batch is k (else m) */
    int accumulate; /* C += A·B (else C = A·B) */
    GemmType type;
} GemmShape;

typedef struct GemmEntry {
    int batch;    /* 0: empty */
    void *prim;   /* dnnl_primitive_t */
    void *mem[3]; /* dnnl_memory_t for A, B, C (data handles set per run) */
} GemmEntry;

typedef struct GemmPlan {
    GemmShape s;
    GemmBackend backend;
    int next;     /* the entry replaced on the next miss */
    void *stream; /* dnnl_stream_t: one per plan, so threads running their own plans never share */
    GemmEntry cache[GEMM_CACHE];
} GemmPlan;

/* 1 when this build has oneDNN. */
int gemm_have_dnnl(void);

/* 1 when oneDNN runs bf16 products natively on this CPU (AVX512_BF16 or
 * AMX; honours oneDNN's DNNL_MAX_CPU_ISA); 0 when not or without oneDNN.
 * isa (optional) receives the instruction set oneDNN will use. */
int gemm_bf16_native(const char **isa);

/* Which library runs float32 products from now on (plans made later). */
void gemm_set_f32_backend(GemmBackend b);
GemmBackend gemm_f32_backend(void);

/* Plans a product site of shape s (creating oneDNN's first primitive, for
 * the maximum batch). -1 with e filled (bf16 without oneDNN, a oneDNN
 * failure). */
int gemm_plan(GemmPlan *p, GemmShape s, Error *e);

/* Runs the product for a batch of `batch` <= the maximum (0: nothing). */
void gemm_run(GemmPlan *p, int batch, const void *a, const void *b, float *c);

/* Frees p's primitives; safe on a zeroed plan. */
void gemm_plan_free(GemmPlan *p);

/* "oneDNN 2.6.3 (avx512_core_amx)" or "none", for --version and reports. */
const char *gemm_dnnl_version(void);

#endif

/* ops: dense layer, fused bias+ReLU+dropout, standalone ReLU and dropout,
 * softmax cross-entropy.
 * CBLAS for products; OpenMP loops where each thread owns the rows or columns
 * it writes (no atomics, thread-count-independent results). No allocation. */
#include "mnist/ops.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__SSE2__)
#include <pmmintrin.h>
#include <xmmintrin.h>
#endif

#include "mnist/rng.h"

#if defined(MNIST_BLAS_BLIS)
#include <blis.h>
#endif

void ops_blas_threads(int threads)
{
#if defined(MNIST_BLAS_OPENBLAS)
    openblas_set_num_threads(threads);
#elif defined(MNIST_BLAS_BLIS)
    bli_thread_set_num_threads(threads);
#else
    (void)threads; /* a generic BLAS threads (if at all) through OpenMP */
#endif
}

static void flush_denormals_here(void)
{
#if defined(__SSE2__)
    _MM_SET_FLUSH_ZERO_MODE(_MM_FLUSH_ZERO_ON);
    _MM_SET_DENORMALS_ZERO_MODE(_MM_DENORMALS_ZERO_ON);
#elif defined(__aarch64__)
    unsigned long fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    __asm__ volatile("msr fpcr, %0" : : "r"(fpcr | (1ul << 24)));
#endif
}

void ops_flush_denormals(void)
{
    flush_denormals_here();
#pragma omp parallel
    flush_denormals_here();
}

const char *ops_blas_config(void)
{
#if defined(MNIST_BLAS_OPENBLAS)
    return openblas_get_config();
#elif defined(MNIST_BLAS_BLIS)
    static char name[96];
    snprintf(name, sizeof name, "BLIS %s (%s, %s threading)", bli_info_get_version_str(),
             bli_arch_string(bli_arch_query_id()),
             bli_info_get_enable_openmp() ? "OpenMP" : bli_info_get_enable_pthreads() ? "pthread" : "no");
    return name;
#else
    return "CBLAS (" MNIST_BLAS_NAME ")";
#endif
}

static void dropout_row(float *v, int n, uint64_t threshold, float scale, uint64_t sk);

void dense_forward(float *y, const float *x, const float *W, int B, int in, int out)
{
    /* y[B,out] = x[B,in] · W[in,out] */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, out, in, 1.0f, x, in, W, out, 0.0f,
                y, out);
}

void bias_act_dropout_forward(float *y, const float *b, int B, int out, int relu, float drop_p,
                              uint64_t key, const uint64_t *sample_ids, bf16 *yb)
{
    /* A unit is kept when its 32-bit draw is >= drop_p * 2^32. */
    const uint64_t threshold = (uint64_t)((double)drop_p * 4294967296.0);
    const float scale = drop_p > 0.0f ? 1.0f / (1.0f - drop_p) : 1.0f;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < B; i++) {
        float *row = y + (size_t)i * out;
        for (int j = 0; j < out; j++) {
            float v = row[j] + b[j];
            row[j] = relu ? (v > 0.0f ? v : 0.0f) : v;
        }
        if (drop_p > 0.0f) /* two 32-bit decisions per 64-bit draw */
            dropout_row(row, out, threshold, scale, rng_mix64(key ^ sample_ids[i]));
        if (yb) /* while the row is in cache */
            for (int j = 0; j < out; j++)
                yb[(size_t)i * out + j] = bf16_from_float(row[j]);
    }
}

void dense_backward(float *dx, float *dW, float *db, const float *dy, const float *x,
                    const float *W, int B, int in, int out)
{
    /* dW[in,out] += x^T[in,B] · dy[B,out] */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, in, out, B, 1.0f, x, in, dy, out, 1.0f,
                dW, out);
    bias_backward(db, dy, B, out);
    /* dx[B,in] = dy[B,out] · W^T[out,in] */
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, in, out, 1.0f, dy, out, W, out,
                    0.0f, dx, in);
}

void bias_backward(float *db, const float *dy, int B, int out)
{
    /* db[j] += sum_i dy[i,j]: threads own column blocks, rows summed in order. */
#pragma omp parallel
    {
#ifdef _OPENMP
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
#else
        int nt = 1, t = 0;
#endif
        int per = (out + nt - 1) / nt;
        int j0 = t * per, j1 = j0 + per < out ? j0 + per : out;
        for (int i = 0; i < B; i++) {
            const float *row = dy + (size_t)i * out;
            for (int j = j0; j < j1; j++)
                db[j] += row[j];
        }
    }
}

void relu_forward(float *y, size_t n)
{
#pragma omp parallel for simd schedule(static)
    for (size_t k = 0; k < n; k++)
        y[k] = y[k] > 0.0f ? y[k] : 0.0f;
}

void relu_backward(float *dy, const float *y, size_t n)
{
#pragma omp parallel for simd schedule(static)
    for (size_t k = 0; k < n; k++)
        dy[k] = y[k] > 0.0f ? dy[k] : 0.0f;
}

/* Row i's keep decisions, in the order bias_act_dropout_forward draws them:
 * v[j] = keep ? v[j] * scale : 0. */
static void dropout_row(float *v, int n, uint64_t threshold, float scale, uint64_t sk)
{
    /* branch-free over pairs so the draws vectorise (64-bit lanes) */
    const int pairs = n / 2;
#pragma omp simd
    for (int h = 0; h < pairs; h++) {
        const uint64_t r = rng_u64(sk, (uint64_t)h);
        const float a = v[2 * h], b = v[2 * h + 1];
        v[2 * h] = (r & 0xffffffffu) >= threshold ? a * scale : 0.0f;
        v[2 * h + 1] = (r >> 32) >= threshold ? b * scale : 0.0f;
    }
    if (n & 1) {
        const uint64_t r = rng_u64(sk, (uint64_t)pairs);
        v[n - 1] = (r & 0xffffffffu) >= threshold ? v[n - 1] * scale : 0.0f;
    }
}

void dropout_forward(float *y, int B, int width, float drop_p, uint64_t key,
                     const uint64_t *sample_ids)
{
    if (drop_p <= 0.0f)
        return;
    const uint64_t threshold = (uint64_t)((double)drop_p * 4294967296.0);
    const float scale = 1.0f / (1.0f - drop_p);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < B; i++)
        dropout_row(y + (size_t)i * width, width, threshold, scale,
                    rng_mix64(key ^ sample_ids[i]));
}

void dropout_backward(float *dy, int B, int width, float drop_p, uint64_t key,
                      const uint64_t *sample_ids)
{
    /* the gradient of v * scale is scale where kept, 0 where dropped: the
     * forward's own masks applied to dy */
    dropout_forward(dy, B, width, drop_p, key, sample_ids);
}

void standardize(float *x, size_t n, float mean, float scale)
{
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++)
        x[i] = (x[i] - mean) * scale;
}

void relu_dropout_backward(float *dy, const float *h, int B, int n, float scale, bf16 *dyb)
{
    const size_t total = (size_t)B * n;
    if (!dyb) {
#pragma omp parallel for simd schedule(static)
        for (size_t k = 0; k < total; k++)
            dy[k] = h[k] > 0.0f ? dy[k] * scale : 0.0f;
        return;
    }
#pragma omp parallel for simd schedule(static)
    for (size_t k = 0; k < total; k++) {
        const float v = h[k] > 0.0f ? dy[k] * scale : 0.0f;
        dy[k] = v;
        dyb[k] = bf16_from_float(v);
    }
}

double softmax_xent(float *dlogits, int *pred, const float *logits, const uint8_t *labels, int B,
                    int C, float grad_scale, float smoothing)
{
    const float off = smoothing / (float)C, on = 1.0f - smoothing + off;
    double loss = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : loss)
    for (int i = 0; i < B; i++) {
        const float *z = logits + (size_t)i * C;
        int arg = 0;
        float zmax = z[0];
        for (int c = 1; c < C; c++)
            if (z[c] > zmax) {
                zmax = z[c];
                arg = c;
            }
        /* log-sum-exp around the max: no overflow for any finite logits. */
        double sum = 0.0;
        for (int c = 0; c < C; c++)
            sum += exp((double)z[c] - zmax);
        const double lse = zmax + log(sum);
        if (pred)
            pred[i] = arg;
        if (labels) {
            /* -sum_c t_c log p_c with log p_c = z_c - lse and sum_c t_c = 1 */
            double zt = (1.0 - smoothing) * z[labels[i]];
            if (smoothing > 0.0f) {
                double zsum = 0;
                for (int c = 0; c < C; c++)
                    zsum += z[c];
                zt += smoothing * zsum / C;
            }
            loss += lse - zt;
        }
        if (dlogits) {
            float *d = dlogits + (size_t)i * C;
            const int y = labels[i];
            for (int c = 0; c < C; c++) {
                float p = (float)exp((double)z[c] - lse);
                d[c] = (p - (c == y ? on : off)) * grad_scale;
            }
        }
    }
    return loss;
}

void softmax_rows(float *probs, const float *logits, int B, int C)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < B; i++) {
        const float *z = logits + (size_t)i * C;
        float *p = probs + (size_t)i * C;
        float zmax = z[0];
        for (int c = 1; c < C; c++)
            zmax = z[c] > zmax ? z[c] : zmax;
        double sum = 0.0;
        for (int c = 0; c < C; c++)
            sum += exp((double)z[c] - zmax);
        const double lse = zmax + log(sum);
        for (int c = 0; c < C; c++)
            p[c] = (float)exp((double)z[c] - lse);
    }
}

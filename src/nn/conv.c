/* conv: NHWC convolution through im2col + sgemm (plain loops when the
 * im2col rows are short), one sample at a time per thread (the sample's
 * im2col buffer stays in cache), and max pooling.
 * No allocation: buffers come from the caller's workspace. */
#include "mnist/conv.h"

#include <cblas.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define FLOATS_PER_LINE 16

static size_t pad16(size_t n) { return (n + FLOATS_PER_LINE - 1) / FLOATS_PER_LINE * FLOATS_PER_LINE; }

static size_t col_floats(const ConvGeom *g)
{
    return pad16((size_t)g->oh * g->ow * g->kh * g->kw * g->c);
}

static size_t partial_floats(const ConvGeom *g)
{
    return pad16((size_t)g->kh * g->kw * g->c * g->f + (size_t)g->f);
}

size_t conv_work_floats(const ConvGeom *g, int B, int slots)
{
    const size_t chunks = ((size_t)B + CONV_CHUNK - 1) / CONV_CHUNK;
    return (size_t)slots * col_floats(g) + chunks * partial_floats(g);
}

/* ---- bf16 ---------------------------------------------------------------- */

#define BF16_PER_LINE 32
static size_t pad32(size_t n) { return (n + BF16_PER_LINE - 1) / BF16_PER_LINE * BF16_PER_LINE; }

int conv_uses_bf16(const ConvGeom *g) { return g->kh * g->kw * g->c >= CONV_SMALL_K; }

/* bf16 elements per thread: one sample's im2col rows, then its dy. */
static size_t bf16_slot(const ConvGeom *g)
{
    const size_t M = (size_t)g->oh * g->ow;
    return pad32(M * g->kh * g->kw * g->c) + pad32(M * g->f);
}

size_t conv_bf16_floats(const ConvGeom *g, int slots)
{
    const size_t w = pad32((size_t)g->kh * g->kw * g->c * g->f);
    return (w + (size_t)slots * bf16_slot(g)) / 2;
}

void conv_bf16_shapes(const ConvGeom *g, GemmShape shapes[CONV_PRODUCTS])
{
    const int M = g->oh * g->ow, K = g->kh * g->kw * g->c, F = g->f;
    /* y[M,F] += col[M,K] W[K,F]; pW[K,F] += col^T dy[M,F]; dcol[M,K] = dy W^T */
    shapes[CONV_FWD] = (GemmShape){.m = M, .n = F, .k = K, .accumulate = 1, .type = GEMM_BF16};
    shapes[CONV_DW] = (GemmShape){.m = K, .n = F, .k = M, .ta = 1, .batch_is_k = 1,
                                  .accumulate = 1, .type = GEMM_BF16};
    shapes[CONV_DX] = (GemmShape){.m = M, .n = K, .k = F, .tb = 1, .type = GEMM_BF16};
}

/* dst[i] = bf16(src[i]) on this thread alone (inside the sample loop). */
static void to_bf16(bf16 *dst, const float *src, size_t n)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++)
        dst[i] = bf16_from_float(src[i]);
}

/* A 1x1 kernel at stride 1 without padding reads the sample as it is. */
static int is_pointwise(const ConvGeom *g)
{
    return g->kh == 1 && g->kw == 1 && g->stride == 1 && g->pad == 0;
}

/* Threads for a pass: the team size asked for now, at most slots (the
 * workspace's im2col buffers). */
static int team(int slots)
{
#ifdef _OPENMP
    const int n = omp_get_max_threads();
    return n < slots ? n : slots;
#else
    (void)slots;
    return 1;
#endif
}

static int thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* col[oh*ow, kh*kw*c] of one sample x[h, w, c]; zeros where the window
 * hangs over the padding. */
static void im2col(float *col, const float *x, const ConvGeom *g)
{
    const size_t run = (size_t)g->c, K = (size_t)g->kh * g->kw * g->c;
    for (int oy = 0; oy < g->oh; oy++)
        for (int ox = 0; ox < g->ow; ox++) {
            float *row = col + ((size_t)oy * g->ow + ox) * K;
            for (int ky = 0; ky < g->kh; ky++) {
                const int iy = oy * g->stride - g->pad + ky;
                for (int kx = 0; kx < g->kw; kx++) {
                    const int ix = ox * g->stride - g->pad + kx;
                    float *dst = row + ((size_t)ky * g->kw + kx) * run;
                    const int inside = iy >= 0 && iy < g->h && ix >= 0 && ix < g->w;
                    if (run == 1) /* grey input: one float, not a library call */
                        *dst = inside ? x[(size_t)iy * g->w + ix] : 0.0f;
                    else if (!inside)
                        memset(dst, 0, sizeof(float) * run);
                    else
                        memcpy(dst, x + ((size_t)iy * g->w + ix) * run, sizeof(float) * run);
                }
            }
        }
}

/* dx[h, w, c] = the sum, over every window position, of col's entries that
 * came from each input (the adjoint of im2col). Overwrites dx. */
static void col2im(float *dx, const float *col, const ConvGeom *g)
{
    const size_t run = (size_t)g->c, K = (size_t)g->kh * g->kw * g->c;
    memset(dx, 0, sizeof(float) * (size_t)g->h * g->w * g->c);
    for (int oy = 0; oy < g->oh; oy++)
        for (int ox = 0; ox < g->ow; ox++) {
            const float *row = col + ((size_t)oy * g->ow + ox) * K;
            for (int ky = 0; ky < g->kh; ky++) {
                const int iy = oy * g->stride - g->pad + ky;
                if (iy < 0 || iy >= g->h)
                    continue;
                for (int kx = 0; kx < g->kw; kx++) {
                    const int ix = ox * g->stride - g->pad + kx;
                    if (ix < 0 || ix >= g->w)
                        continue;
                    float *dst = dx + ((size_t)iy * g->w + ix) * run;
                    const float *src = row + ((size_t)ky * g->kw + kx) * run;
                    for (size_t k = 0; k < run; k++)
                        dst[k] += src[k];
                }
            }
        }
}

/* C[M, N] += A[M, K] · B[K, N] (row-major, small K). */
static void small_nn(float *C, const float *A, const float *B, int M, int N, int K)
{
    for (int r = 0; r < M; r++) {
        float *c = C + (size_t)r * N;
        for (int k = 0; k < K; k++) {
            const float a = A[(size_t)r * K + k];
            const float *b = B + (size_t)k * N;
#pragma omp simd
            for (int j = 0; j < N; j++)
                c[j] += a * b[j];
        }
    }
}

/* C[K, N] += A[M, K]^T · B[M, N] (small K: C stays in cache). */
static void small_tn(float *C, const float *A, const float *B, int M, int N, int K)
{
    for (int r = 0; r < M; r++)
        for (int k = 0; k < K; k++) {
            const float a = A[(size_t)r * K + k];
            const float *b = B + (size_t)r * N;
            float *c = C + (size_t)k * N;
#pragma omp simd
            for (int j = 0; j < N; j++)
                c[j] += a * b[j];
        }
}

/* C[M, K] = A[M, N] · B[K, N]^T (small K). */
static void small_nt(float *C, const float *A, const float *B, int M, int N, int K)
{
    for (int r = 0; r < M; r++)
        for (int k = 0; k < K; k++) {
            const float *a = A + (size_t)r * N, *b = B + (size_t)k * N;
            float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
            for (int j = 0; j < N; j++)
                sum += a[j] * b[j];
            C[(size_t)r * K + k] = sum;
        }
}

void conv_forward(float *y, const float *x, const float *W, const float *b, int B,
                  const ConvGeom *g, int relu, float *work, int slots, const ConvBf16 *h)
{
    const int M = g->oh * g->ow, K = g->kh * g->kw * g->c, F = g->f;
    const size_t in = (size_t)g->h * g->w * g->c, out = (size_t)M * F;
    if (h)
        bf16_convert(h->W, W, (size_t)K * F);
#pragma omp parallel for schedule(static) num_threads(team(slots))
    for (int i = 0; i < B; i++) {
        float *col = work + (size_t)thread_id() * col_floats(g);
        const float *xi = x + (size_t)i * in;
        float *yi = y + (size_t)i * out;
        if (is_pointwise(g))
            col = (float *)xi;
        else
            im2col(col, xi, g);
        for (int r = 0; r < M; r++) /* y = b, then y += col · W */
            memcpy(yi + (size_t)r * F, b, sizeof(float) * (size_t)F);
        if (K < CONV_SMALL_K) {
            small_nn(yi, col, W, M, F, K);
        } else if (h) {
            bf16 *cb = h->work + (size_t)thread_id() * bf16_slot(g);
            to_bf16(cb, col, (size_t)M * K);
            gemm_run(&h->plans[thread_id() * CONV_PRODUCTS + CONV_FWD], M, cb, h->W, yi);
        } else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, F, K, 1.0f, col, K, W, F,
                        1.0f, yi, F);
        }
        if (relu) /* while the sample's output is in cache */
            for (size_t k = 0; k < out; k++)
                yi[k] = yi[k] > 0.0f ? yi[k] : 0.0f;
    }
}

/* One chunk's samples [i0, i1): their dW, db into partial (overwritten) and,
 * when dx is set, their input gradients. */
static void backward_chunk(float *dx, float *partial, float *dy, const float *x, const float *y,
                           const float *W, int i0, int i1, const ConvGeom *g, float *col,
                           const ConvBf16 *h)
{
    bf16 *cb = h ? h->work + (size_t)thread_id() * bf16_slot(g) : NULL;
    bf16 *dyb = cb ? cb + pad32((size_t)g->oh * g->ow * g->kh * g->kw * g->c) : NULL;
    GemmPlan *plan = h ? &h->plans[thread_id() * CONV_PRODUCTS] : NULL;
    const int M = g->oh * g->ow, K = g->kh * g->kw * g->c, F = g->f;
    const size_t in = (size_t)g->h * g->w * g->c, out = (size_t)M * F;
    float *pW = partial, *pb = partial + (size_t)K * F;
    memset(partial, 0, sizeof(float) * ((size_t)K * F + (size_t)F));
    for (int i = i0; i < i1; i++) {
        const float *xi = x + (size_t)i * in;
        float *dyi = dy + (size_t)i * out;
        if (y) { /* the fused ReLU: y > 0 exactly where it passed */
            const float *yi = y + (size_t)i * out;
            for (size_t k = 0; k < out; k++)
                dyi[k] = yi[k] > 0.0f ? dyi[k] : 0.0f;
        }
        const float *cx = xi;
        if (!is_pointwise(g)) {
            im2col(col, xi, g);
            cx = col;
        }
        /* pW[K, F] += col^T[K, M] · dy[M, F] */
        const int use_bf16 = h && K >= CONV_SMALL_K;
        if (K < CONV_SMALL_K) {
            small_tn(pW, cx, dyi, M, F, K);
        } else if (use_bf16) {
            to_bf16(cb, cx, (size_t)M * K);
            to_bf16(dyb, dyi, (size_t)M * F);
            gemm_run(&plan[CONV_DW], M, cb, dyb, pW);
        } else {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, F, M, 1.0f, cx, K, dyi, F,
                        1.0f, pW, F);
        }
        for (int r = 0; r < M; r++)
            for (int j = 0; j < F; j++)
                pb[j] += dyi[(size_t)r * F + j];
        if (!dx)
            continue;
        float *dxi = dx + (size_t)i * in;
        /* dcol[M, K] = dy[M, F] · W^T[F, K]: straight into dx for a 1x1 kernel, else in
         * col (no longer needed), then col2im */
        float *dcol = is_pointwise(g) ? dxi : col;
        if (K < CONV_SMALL_K)
            small_nt(dcol, dyi, W, M, F, K);
        else if (use_bf16)
            gemm_run(&plan[CONV_DX], M, dyb, h->W, dcol);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, K, F, 1.0f, dyi, F, W, F, 0.0f,
                        dcol, K);
        if (!is_pointwise(g))
            col2im(dxi, col, g);
    }
}

void conv_backward(float *dx, float *dW, float *db, float *dy, const float *x, const float *y,
                   const float *W, int B, const ConvGeom *g, float *work, int slots,
                   const ConvBf16 *h)
{
    const int K = g->kh * g->kw * g->c, F = g->f;
    const int chunks = (B + CONV_CHUNK - 1) / CONV_CHUNK;
    float *partials = work + (size_t)slots * col_floats(g);
    const size_t pf = partial_floats(g), nw = (size_t)K * F;
#pragma omp parallel num_threads(team(slots))
    {
#pragma omp for schedule(static)
        for (int q = 0; q < chunks; q++) {
            const int i0 = q * CONV_CHUNK, i1 = i0 + CONV_CHUNK < B ? i0 + CONV_CHUNK : B;
            backward_chunk(dx, partials + (size_t)q * pf, dy, x, y, W, i0, i1, g,
                           work + (size_t)thread_id() * col_floats(g), h);
        }
        /* the chunks' sums in chunk order; threads own element ranges */
#pragma omp for schedule(static)
        for (size_t k = 0; k < nw + (size_t)F; k++) {
            float s = 0.0f;
            for (int q = 0; q < chunks; q++)
                s += partials[(size_t)q * pf + k];
            if (k < nw)
                dW[k] += s;
            else
                db[k - nw] += s;
        }
    }
}

void maxpool_forward(float *y, const float *x, int B, const PoolGeom *g)
{
    const size_t in = (size_t)g->h * g->w * g->c, out = (size_t)g->oh * g->ow * g->c;
    const int C = g->c;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < B; i++) {
        const float *xi = x + (size_t)i * in;
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++) {
                float *yo = y + (size_t)i * out + ((size_t)oy * g->ow + ox) * C;
                const float *first = xi + ((size_t)oy * g->stride * g->w + (size_t)ox * g->stride) * C;
                memcpy(yo, first, sizeof(float) * (size_t)C);
                for (int ky = 0; ky < g->size; ky++)
                    for (int kx = 0; kx < g->size; kx++) {
                        const float *xv = first + ((size_t)ky * g->w + kx) * C;
                        for (int c = 0; c < C; c++)
                            yo[c] = xv[c] > yo[c] ? xv[c] : yo[c];
                    }
            }
    }
}

void maxpool_backward(float *dx, const float *dy, const float *x, int B, const PoolGeom *g)
{
    const size_t in = (size_t)g->h * g->w * g->c, out = (size_t)g->oh * g->ow * g->c;
    const int C = g->c, S = g->size;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < B; i++) {
        const float *xi = x + (size_t)i * in;
        float *dxi = dx + (size_t)i * in;
        memset(dxi, 0, sizeof(float) * in);
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++) {
                const size_t o = (size_t)i * out + ((size_t)oy * g->ow + ox) * C;
                const size_t base = ((size_t)oy * g->stride * g->w + (size_t)ox * g->stride) * C;
                /* the max again (the output may since have been changed in place, e.g.
                 * by dropout), 16 channels at a time, then its first position */
                for (int c0 = 0; c0 < C; c0 += 16) {
                    const int n = C - c0 < 16 ? C - c0 : 16;
                    float best[16];
                    int at[16];
                    for (int c = 0; c < n; c++)
                        best[c] = xi[base + (size_t)(c0 + c)], at[c] = 0;
                    for (int k = 1; k < S * S; k++) {
                        const float *v = xi + base + ((size_t)(k / S) * g->w + (size_t)(k % S)) * C +
                                         c0;
                        for (int c = 0; c < n; c++)
                            if (v[c] > best[c])
                                best[c] = v[c], at[c] = k;
                    }
                    for (int c = 0; c < n; c++)
                        dxi[base + ((size_t)(at[c] / S) * g->w + (size_t)(at[c] % S)) * C +
                            (size_t)(c0 + c)] += dy[o + (size_t)(c0 + c)];
                }
            }
    }
}

/* Unit tests for ops: each kernel against a naive double-precision
 * reference or finite differences, plus the dropout mask's invariants. */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mnist/ops.h"
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__SSE2__)
#include <xmmintrin.h>
#endif
#include "mnist/rng.h"
#include "test_util.h"

static void fill(float *a, size_t n, uint64_t seed, float scale)
{
    uint64_t key = rng_key(seed, 7, 0, 0);
    for (size_t i = 0; i < n; i++)
        a[i] = scale * (2.0f * rng_uniform(key, i) - 1.0f);
}

static void test_dense_forward_matches_naive(void)
{
    enum { B = 5, IN = 7, OUT = 3 };
    float x[B * IN], W[IN * OUT], y[B * OUT];
    double ref[B * OUT];
    fill(x, B * IN, 1, 1), fill(W, IN * OUT, 2, 1);
    dense_forward(y, x, W, B, IN, OUT);
    tu_naive_matmul(ref, x, W, B, IN, OUT);
    for (int i = 0; i < B * OUT; i++)
        CU_ASSERT_DOUBLE_EQUAL(y[i], ref[i], 1e-5);
}

static void test_dense_backward_matches_naive_and_accumulates(void)
{
    enum { B = 4, IN = 6, OUT = 5 };
    float x[B * IN], W[IN * OUT], dy[B * OUT], dx[B * IN], dW[IN * OUT] = {0}, db[OUT] = {0};
    fill(x, B * IN, 3, 1), fill(W, IN * OUT, 4, 1), fill(dy, B * OUT, 5, 1);
    dense_backward(dx, dW, db, dy, x, W, B, IN, OUT);
    for (int i = 0; i < IN; i++)
        for (int j = 0; j < OUT; j++) {
            double s = 0;
            for (int b = 0; b < B; b++)
                s += (double)x[b * IN + i] * dy[b * OUT + j];
            CU_ASSERT_DOUBLE_EQUAL(dW[i * OUT + j], s, 1e-5);
        }
    for (int j = 0; j < OUT; j++) {
        double s = 0;
        for (int b = 0; b < B; b++)
            s += dy[b * OUT + j];
        CU_ASSERT_DOUBLE_EQUAL(db[j], s, 1e-5);
    }
    for (int b = 0; b < B; b++)
        for (int i = 0; i < IN; i++) {
            double s = 0;
            for (int j = 0; j < OUT; j++)
                s += (double)dy[b * OUT + j] * W[i * OUT + j];
            CU_ASSERT_DOUBLE_EQUAL(dx[b * IN + i], s, 1e-5);
        }
    /* A second call adds: dW and db double, dx is overwritten (unchanged). */
    float dW1[IN * OUT], db1[OUT], dx1[B * IN];
    memcpy(dW1, dW, sizeof dW), memcpy(db1, db, sizeof db), memcpy(dx1, dx, sizeof dx);
    dense_backward(dx, dW, db, dy, x, W, B, IN, OUT);
    for (int k = 0; k < IN * OUT; k++)
        CU_ASSERT_DOUBLE_EQUAL(dW[k], 2 * dW1[k], 1e-5);
    for (int k = 0; k < OUT; k++)
        CU_ASSERT_DOUBLE_EQUAL(db[k], 2 * db1[k], 1e-5);
    CU_ASSERT(memcmp(dx, dx1, sizeof dx) == 0);
}

static void test_bias_relu_without_dropout(void)
{
    float y[6] = {-1, 0.5f, 2, -3, 0, 1}, b[3] = {0.5f, -1, 0};
    bias_act_dropout_forward(y, b, 2, 3, 1, 0.0f, 0, NULL, NULL);
    const float want[6] = {0, 0, 2, 0, 0, 1};
    for (int i = 0; i < 6; i++)
        CU_ASSERT_EQUAL(y[i], want[i]);
    float z[3] = {-1, 0.5f, 2};
    bias_act_dropout_forward(z, b, 1, 3, 0, 0.0f, 0, NULL, NULL);
    CU_ASSERT_EQUAL(z[0], -0.5f);
    CU_ASSERT_EQUAL(z[1], -0.5f);
}

static void test_dropout_rate_scale_and_keying(void)
{
    enum { B = 64, N = 1000 };
    static float y[B * N], y2[B * N], zero_b[N];
    uint64_t ids[B], ids_rev[B];
    for (int i = 0; i < B; i++)
        ids[i] = 1000 + (uint64_t)i;
    for (int i = 0; i < B; i++)
        ids_rev[i] = ids[B - 1 - i];
    for (int k = 0; k < B * N; k++)
        y[k] = y2[k] = 1.0f;
    const float p = 0.3f;
    bias_act_dropout_forward(y, zero_b, B, N, 1, p, 12345, ids, NULL);
    bias_act_dropout_forward(y2, zero_b, B, N, 1, p, 12345, ids_rev, NULL);
    size_t kept = 0;
    for (int k = 0; k < B * N; k++) {
        CU_ASSERT(y[k] == 0.0f || fabsf(y[k] - 1.0f / (1.0f - p)) < 1e-6f);
        kept += y[k] != 0.0f;
    }
    double rate = (double)kept / (B * N);
    CU_ASSERT(fabs(rate - (1.0 - p)) < 0.01);
    /* The mask follows the sample id, not the row position. */
    for (int i = 0; i < B; i++)
        CU_ASSERT(memcmp(y + (size_t)i * N, y2 + (size_t)(B - 1 - i) * N, N * sizeof(float)) == 0);
    /* Another key gives another mask. */
    for (int k = 0; k < B * N; k++)
        y2[k] = 1.0f;
    bias_act_dropout_forward(y2, zero_b, B, N, 1, p, 54321, ids, NULL);
    CU_ASSERT(memcmp(y, y2, sizeof y) != 0);
}

static void test_relu_dropout_backward(void)
{
    float h[4] = {0, 2, 0, 0.5f}, dy[4] = {1, 1, 1, 2};
    relu_dropout_backward(dy, h, 2, 2, 1.25f, NULL);
    CU_ASSERT_EQUAL(dy[0], 0.0f);
    CU_ASSERT_EQUAL(dy[1], 1.25f);
    CU_ASSERT_EQUAL(dy[2], 0.0f);
    CU_ASSERT_EQUAL(dy[3], 2.5f);
}

static double naive_xent(const float *z, int y, int C)
{
    double s = 0;
    for (int c = 0; c < C; c++)
        s += exp((double)z[c]);
    return log(s) - z[y];
}

static void test_softmax_xent_matches_naive_and_fd(void)
{
    enum { B = 3, C = 10 };
    float z[B * C], d[B * C];
    uint8_t labels[B] = {3, 0, 9};
    int pred[B];
    fill(z, B * C, 9, 3);
    double loss = softmax_xent(d, pred, z, labels, B, C, 0.5f, 0.0f);
    double ref = 0;
    for (int i = 0; i < B; i++)
        ref += naive_xent(z + i * C, labels[i], C);
    CU_ASSERT_DOUBLE_EQUAL(loss, ref, 1e-9 * fabs(ref) + 1e-9);
    for (int i = 0; i < B; i++) {
        int arg = 0;
        for (int c = 1; c < C; c++)
            if (z[i * C + c] > z[i * C + arg])
                arg = c;
        CU_ASSERT_EQUAL(pred[i], arg);
    }
    /* d = 0.5 * dL/dz, checked by central differences in double. */
    for (int i = 0; i < B; i++)
        for (int c = 0; c < C; c++) {
            float zp[C], zm[C];
            memcpy(zp, z + i * C, sizeof zp), memcpy(zm, z + i * C, sizeof zm);
            zp[c] += 1e-3f, zm[c] -= 1e-3f;
            double fd = (naive_xent(zp, labels[i], C) - naive_xent(zm, labels[i], C)) /
                        ((double)zp[c] - zm[c]);
            CU_ASSERT_DOUBLE_EQUAL(d[i * C + c], 0.5 * fd, 1e-4);
        }
}

static void test_label_smoothing_loss_and_gradient(void)
{
    const float z[3] = {2.0f, -1.0f, 0.5f};
    const uint8_t y[1] = {0};
    float d[3];
    const float eps = 0.3f;
    double loss = softmax_xent(d, NULL, z, y, 1, 3, 1.0f, eps);
    double lse = log(exp(2.0) + exp(-1.0) + exp(0.5)), ref = 0;
    const double t[3] = {1 - eps + eps / 3, eps / 3, eps / 3};
    for (int c = 0; c < 3; c++) {
        ref -= t[c] * (z[c] - lse);
        CU_ASSERT_DOUBLE_EQUAL(d[c], exp(z[c] - lse) - t[c], 1e-6);
    }
    CU_ASSERT_DOUBLE_EQUAL(loss, ref, 1e-6); /* targets built from a float eps */
}

static void test_softmax_xent_extreme_logits(void)
{
    float z[2 * 4] = {1e4f, -1e4f, 0, 3e4f, -3e4f, -3e4f, -3e4f, -3e4f};
    uint8_t labels[2] = {3, 1};
    float d[8];
    double loss = softmax_xent(d, NULL, z, labels, 2, 4, 1.0f, 0.0f);
    CU_ASSERT(isfinite(loss));
    /* Row 0: label is the max by 2e4, loss ~ 0. Row 1: all equal, loss = log 4. */
    CU_ASSERT_DOUBLE_EQUAL(loss, log(4.0), 1e-6);
    for (int k = 0; k < 8; k++)
        CU_ASSERT(isfinite(d[k]));
    CU_ASSERT_DOUBLE_EQUAL(d[3], 0.0, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(d[4], 0.25, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(d[5], -0.75, 1e-6);
    /* A wrong label at a large margin: finite loss equal to the margin. */
    float w[2] = {500, -500};
    uint8_t wl[1] = {1};
    CU_ASSERT_DOUBLE_EQUAL(softmax_xent(NULL, NULL, w, wl, 1, 2, 1.0f, 0.0f), 1000.0, 1e-3);
}

static void test_softmax_rows_sum_to_one(void)
{
    float z[2 * 5] = {1, 2, 3, 4, 5, 100, -100, 0, 0, 0}, p[10];
    softmax_rows(p, z, 2, 5);
    for (int i = 0; i < 2; i++) {
        double s = 0;
        for (int c = 0; c < 5; c++) {
            CU_ASSERT(p[i * 5 + c] >= 0.0f);
            s += p[i * 5 + c];
        }
        CU_ASSERT_DOUBLE_EQUAL(s, 1.0, 1e-6);
    }
    CU_ASSERT(p[4] > p[3]);
}

/* ops_flush_denormals: on every thread of the pool a product that would be
 * denormal is zero, and a denormal operand reads as zero (the floating-
 * point state is restored after). */
static void test_flush_denormals(void)
{
#if defined(__SSE2__)
    const unsigned saved = _mm_getcsr();
    volatile float tiny = 1e-39f; /* denormal */
    volatile float half = 0.5f, small = 1e-30f;
    CU_ASSERT(tiny * 1.0f != 0.0f); /* not flushed before */
    ops_flush_denormals();
    int flushed = 0, threads = 1;
#pragma omp parallel reduction(+ : flushed)
    {
#ifdef _OPENMP
#pragma omp single
        threads = omp_get_num_threads();
#endif
        flushed += small * 1e-9f * half == 0.0f && tiny * 1.0f == 0.0f;
    }
    CU_ASSERT_EQUAL(flushed, threads);
#pragma omp parallel
    _mm_setcsr(saved);
    _mm_setcsr(saved);
#else
    printf("\n  (not x86: flushing is a no-op here)");
#endif
}

int test_ops_register(void)
{
    CU_pSuite s = CU_add_suite("ops", NULL, NULL);
    if (!s)
        return -1;
    return (CU_add_test(s, "dense_forward matches naive", test_dense_forward_matches_naive) &&
            CU_add_test(s, "denormals flushed on every thread", test_flush_denormals) &&
            CU_add_test(s, "dense_backward matches naive, accumulates",
                        test_dense_backward_matches_naive_and_accumulates) &&
            CU_add_test(s, "bias+relu without dropout", test_bias_relu_without_dropout) &&
            CU_add_test(s, "dropout rate, scale, keyed by sample id",
                        test_dropout_rate_scale_and_keying) &&
            CU_add_test(s, "relu/dropout backward", test_relu_dropout_backward) &&
            CU_add_test(s, "softmax-CE vs naive and finite differences",
                        test_softmax_xent_matches_naive_and_fd) &&
            CU_add_test(s, "softmax-CE at extreme logits", test_softmax_xent_extreme_logits) &&
            CU_add_test(s, "label smoothing: loss and gradient",
                        test_label_smoothing_loss_and_gradient) &&
            CU_add_test(s, "softmax rows sum to one", test_softmax_rows_sum_to_one))
               ? 0
               : -1;
}

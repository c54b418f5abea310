/* Unit tests for bf16 conversion (hand values: rounding to nearest even,
 * Inf, NaN, denormals, overflow) and for the gemm module's plans (every
 * backend against a double-precision reference on the same bf16-rounded
 * inputs, the batch-size cache past its capacity, accumulation, thread-count
 * independence), and for a bf16 model's gradients against fp32's. */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "mnist/bf16.h"
#include "mnist/gemm.h"
#include "mnist/model.h"
#include "mnist/rng.h"
#include "test_util.h"

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static void test_bf16_hand_values(void)
{
    static const struct {
        uint32_t in;
        uint16_t out;
    } cases[] = {
        {0x3f800000u, 0x3f80}, /* 1.0 */
        {0xbf800000u, 0xbf80}, /* -1.0 */
        {0x3f808000u, 0x3f80}, /* 1 + 2^-8: a tie, to the even 1.0 */
        {0x3f818000u, 0x3f82}, /* a tie above an odd mantissa: up to even */
        {0x3f808001u, 0x3f81}, /* just above the tie: up */
        {0x3f807fffu, 0x3f80}, /* just below: down */
        {0x40490fdbu, 0x4049}, /* pi */
        {0x00000000u, 0x0000}, /* +0 */
        {0x80000000u, 0x8000}, /* -0 */
        {0x7f800000u, 0x7f80}, /* +Inf */
        {0xff800000u, 0xff80}, /* -Inf */
        {0x7f7fffffu, 0x7f80}, /* the largest float rounds past the largest bf16: +Inf */
        {0x7f7f7fffu, 0x7f7f}, /* the largest bf16 stays */
        {0xff7fffffu, 0xff80}, /* and negative: -Inf */
        {0x7fc00000u, 0x7fc0}, /* quiet NaN */
        {0x7f800001u, 0x7fc0}, /* signalling NaN with a low payload: quiet, not Inf */
        {0xff800001u, 0xffc0}, /* negative signalling NaN keeps its sign */
        {0x7fffffffu, 0x7fff}, /* NaN with every payload bit: not rounded into the sign */
        {0x00000001u, 0x0000}, /* the smallest denormal rounds to +0 */
        {0x00008000u, 0x0000}, /* a denormal tie to even (0) */
        {0x00018000u, 0x0002}, /* a denormal tie to even (2) */
        {0x0000ffffu, 0x0001}, /* denormals are rounded, not flushed */
        {0x00400000u, 0x0040}, /* a large denormal is exact */
        {0x807fffffu, 0x8080}, /* the largest negative denormal rounds up to the smallest normal */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const uint16_t got = bf16_from_float(from_bits(cases[i].in));
        if (got != cases[i].out)
            printf("\n  0x%08x -> 0x%04x, expected 0x%04x", cases[i].in, got, cases[i].out);
        CU_ASSERT_EQUAL(got, cases[i].out);
    }
    /* expansion is exact: every bf16 back to float and again gives itself */
    for (uint32_t h = 0; h < 0x10000u; h++) {
        const float f = bf16_to_float((bf16)h);
        uint32_t u;
        memcpy(&u, &f, sizeof u);
        CU_ASSERT_EQUAL_FATAL(u, h << 16);
        if ((h & 0x7f80u) != 0x7f80u || (h & 0x7fu) == 0) /* not a NaN: round trip */
            CU_ASSERT_EQUAL_FATAL(bf16_from_float(f), h);
    }
}

static void test_bf16_arrays_match_scalar(void)
{
    enum { N = 200003 }; /* above the threaded size, odd */
    float *src = malloc(sizeof(float) * N), *back = malloc(sizeof(float) * N);
    bf16 *dst = malloc(sizeof(bf16) * N);
    CU_ASSERT_FATAL(src && dst && back);
    const uint64_t key = rng_key(11, 12, 13, 14);
    for (size_t i = 0; i < N; i++) {
        const uint32_t u = (uint32_t)(rng_u64(key, i) >> 32);
        src[i] = from_bits(u); /* every kind of float, NaNs included */
    }
    bf16_convert(dst, src, N);
    bf16_expand(back, dst, N);
    size_t bad = 0;
    for (size_t i = 0; i < N; i++) {
        uint32_t u;
        memcpy(&u, &back[i], sizeof u);
        bad += dst[i] != bf16_from_float(src[i]) || u != (uint32_t)dst[i] << 16;
    }
    CU_ASSERT_EQUAL(bad, 0);
    free(src), free(dst), free(back);
}

/* C = op(A) op(B) (+ C0) in double on bf16-rounded inputs when bf16. */
static void reference(double *C, const float *A, const float *B, const float *C0, int m, int n,
                      int k, int ta, int tb, int rnd)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = C0 ? C0[(size_t)i * n + j] : 0.0;
            for (int p = 0; p < k; p++) {
                float a = ta ? A[(size_t)p * m + i] : A[(size_t)i * k + p];
                float b = tb ? B[(size_t)j * k + p] : B[(size_t)p * n + j];
                if (rnd)
                    a = bf16_to_float(bf16_from_float(a)), b = bf16_to_float(bf16_from_float(b));
                s += (double)a * b;
            }
            C[(size_t)i * n + j] = s;
        }
}

static void fill(float *a, size_t n, uint64_t tag)
{
    const uint64_t key = rng_key(5, 6, tag, 7);
    for (size_t i = 0; i < n; i++)
        a[i] = 2.0f * rng_uniform(key, i) - 1.0f;
}

/* One plan of shape (m, n, k) with batch kb given at run, every layout. */
static void check_plan(GemmType type, GemmBackend f32, int ta, int tb, int batch_is_k, int acc)
{
    enum { M = 37, N = 29, K = 45, MAXB = 24 };
    const int m = batch_is_k ? M : MAXB, k = batch_is_k ? MAXB : K;
    GemmPlan p;
    Error e;
    gemm_set_f32_backend(f32);
    CU_ASSERT_FATAL(gemm_plan(&p, (GemmShape){.m = m, .n = N, .k = k, .ta = ta, .tb = tb,
                                              .batch_is_k = batch_is_k, .accumulate = acc,
                                              .type = type},
                              &e) == 0);
    float *A = malloc(sizeof(float) * M * K * 2), *B = malloc(sizeof(float) * K * N * 2);
    float *C = malloc(sizeof(float) * M * N * 2), *C0 = malloc(sizeof(float) * M * N * 2);
    bf16 *Ah = malloc(sizeof(bf16) * M * K * 2), *Bh = malloc(sizeof(bf16) * K * N * 2);
    double *R = malloc(sizeof(double) * M * N * 2);
    CU_ASSERT_FATAL(A && B && C && C0 && Ah && Bh && R);
    /* more batch sizes than the cache holds, some twice (hits and evictions) */
    const int batches[] = {MAXB, 1, 7, MAXB - 1, 3, 5, 9, 11, 13, 2, 7, MAXB, 4, 1};
    double worst = 0;
    for (size_t r = 0; r < sizeof batches / sizeof batches[0]; r++) {
        const int b = batches[r], mm = batch_is_k ? m : b, kk = batch_is_k ? b : k;
        fill(A, (size_t)mm * kk, 1 + r), fill(B, (size_t)kk * N, 100 + r);
        fill(C0, (size_t)mm * N, 200 + r);
        memcpy(C, C0, sizeof(float) * (size_t)mm * N);
        reference(R, A, B, acc ? C0 : NULL, mm, N, kk, ta, tb, type == GEMM_BF16);
        if (type == GEMM_BF16) {
            bf16_convert(Ah, A, (size_t)mm * kk), bf16_convert(Bh, B, (size_t)kk * N);
            gemm_run(&p, b, Ah, Bh, C);
        } else {
            gemm_run(&p, b, A, B, C);
        }
        for (size_t i = 0; i < (size_t)mm * N; i++) {
            const double d = fabs(C[i] - R[i]) / (1.0 + fabs(R[i]));
            worst = d > worst ? d : worst;
        }
    }
    if (worst > 1e-5)
        printf("\n  %s/%s ta=%d tb=%d batch_is_k=%d acc=%d: error %g", type == GEMM_BF16 ? "bf16" : "f32",
               f32 == GEMM_BACKEND_DNNL ? "onednn" : "blas", ta, tb, batch_is_k, acc, worst);
    CU_ASSERT(worst <= 1e-5);
    gemm_plan_free(&p);
    gemm_set_f32_backend(GEMM_BACKEND_BLAS);
    free(A), free(B), free(C), free(C0), free(Ah), free(Bh), free(R);
}

static void test_gemm_plans_match_reference(void)
{
    /* the dense layer's three products: forward, dW (batch is k), dx */
    const int layouts[][4] = {{0, 0, 0, 0}, {1, 0, 1, 1}, {0, 1, 0, 0}, {0, 0, 0, 1}, {1, 1, 0, 0}};
    for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++) {
        const int *l = layouts[i];
        check_plan(GEMM_F32, GEMM_BACKEND_BLAS, l[0], l[1], l[2], l[3]);
        if (!gemm_have_dnnl())
            continue;
        check_plan(GEMM_F32, GEMM_BACKEND_DNNL, l[0], l[1], l[2], l[3]);
        if (gemm_bf16_native(NULL))
            check_plan(GEMM_BF16, GEMM_BACKEND_BLAS, l[0], l[1], l[2], l[3]);
    }
    if (!gemm_bf16_native(NULL)) {
        GemmPlan p;
        Error e;
        /* without oneDNN a bf16 plan is refused; with it, it still plans (oneDNN
         * emulates), but the trainer refuses --precision bf16 up front */
        if (!gemm_have_dnnl())
            CU_ASSERT(gemm_plan(&p, (GemmShape){.m = 4, .n = 4, .k = 4, .type = GEMM_BF16}, &e) == -1);
        printf("\n  (no native bf16 here: bf16 plans not run)");
    }
}

/* Gradients of a small MLP in bf16 next to fp32's (close, not equal), and
 * the same bits at 1 and 2 threads. */
enum { MIRROR_NONE, MIRROR_FRESH, MIRROR_STALE };
static void grads_of_mirror(Precision prec, int threads, float *out, size_t *n, int mirror)
{
    ModelSpec s;
    Error e;
    Model m;
    enum { B = 16, IN = 64 };
    CU_ASSERT_FATAL(model_spec_parse(&s, "dense:48,relu,dropout:0.25,dense:32,relu,dense:10", &e) == 0);
    s.precision = prec;
    CU_ASSERT_FATAL(model_create(&m, &s, (Shape){8, 8, 1}, 10, B, &e) == 0);
    model_init_params(&m, 3);
    float x[B * IN];
    uint8_t y[B];
    uint64_t ids[B];
    fill(x, B * IN, 42);
    for (int i = 0; i < B; i++)
        y[i] = (uint8_t)(i % 10), ids[i] = (uint64_t)i;
#ifdef _OPENMP
    const int was = omp_get_max_threads();
    omp_set_num_threads(threads);
#else
    (void)threads;
#endif
    if (mirror == MIRROR_FRESH) { /* the optimizer's copy, as adam_step_bf16 makes it */
        CU_ASSERT_FATAL(m.params_bf16 != NULL);
        bf16_convert(m.params_bf16, m.params, m.param_floats);
        m.bf16_fresh = 1;
    } else if (mirror == MIRROR_STALE) { /* garbage that must not be read */
        CU_ASSERT_FATAL(m.params_bf16 != NULL);
        memset(m.params_bf16, 0x7f, sizeof(bf16) * m.param_floats);
        m.bf16_fresh = 1;
        model_params_changed(&m);
    }
    model_zero_grads(&m);
    model_forward(&m, x, B, 1, 99, ids);
    CU_ASSERT((m.pass_bf16 != NULL) == (mirror == MIRROR_FRESH));
    model_backward(&m, x, y, B, 1.0f / B, NULL);
#ifdef _OPENMP
    omp_set_num_threads(was);
#endif
    *n = m.param_floats;
    memcpy(out, m.grads, sizeof(float) * m.param_floats);
    if (mirror == MIRROR_FRESH) {
        /* an evaluation pass converts its own copy even when one is fresh */
        memset(m.params_bf16, 0x7f, sizeof(bf16) * m.param_floats);
        const float *logits = model_forward(&m, x, B, 0, 0, ids);
        CU_ASSERT(m.pass_bf16 == NULL);
        for (int i = 0; i < B * 10; i++)
            CU_ASSERT_FATAL(isfinite(logits[i]) && fabsf(logits[i]) < 1e3f);
    }
    model_free(&m);
}

static void grads_of(Precision prec, int threads, float *out, size_t *n)
{
    grads_of_mirror(prec, threads, out, n, MIRROR_NONE);
}

static void test_bf16_model_gradients(void)
{
    if (!gemm_bf16_native(NULL)) {
        printf("\n  (no native bf16 here: skipped)");
        return;
    }
    enum { MAXP = 1 << 14 };
    static float g32[MAXP], g16[MAXP], g16b[MAXP];
    size_t n;
    grads_of(PRECISION_FP32, 1, g32, &n);
    CU_ASSERT_FATAL(n <= MAXP);
    grads_of(PRECISION_BF16, 1, g16, &n);
    grads_of(PRECISION_BF16, 2, g16b, &n);
    CU_ASSERT(memcmp(g16, g16b, sizeof(float) * n) == 0);
    double num = 0, den = 0, diff = 0;
    for (size_t i = 0; i < n; i++) {
        num += (g16[i] - g32[i]) * (double)(g16[i] - g32[i]);
        den += (double)g32[i] * g32[i];
        diff += g16[i] != g32[i];
    }
    /* bf16 keeps 8 significant bits: relative error of the gradient ~1e-2 */
    CU_ASSERT(sqrt(num / den) < 3e-2);
    CU_ASSERT(diff > n / 4); /* and the products really ran in bf16 */
    /* the optimizer's bf16 copy of the weights gives the same bits as the
     * pass's own conversion; a stale one is never read */
    grads_of_mirror(PRECISION_BF16, 2, g16b, &n, MIRROR_FRESH);
    CU_ASSERT(memcmp(g16, g16b, sizeof(float) * n) == 0);
    grads_of_mirror(PRECISION_BF16, 1, g16b, &n, MIRROR_STALE);
    CU_ASSERT(memcmp(g16, g16b, sizeof(float) * n) == 0);
}

int test_gemm_register(void)
{
    CU_pSuite s = CU_add_suite("gemm", NULL, NULL);
    if (!s)
        return -1;
    return (CU_add_test(s, "bf16 conversion: hand values, NaN, Inf, denormals",
                        test_bf16_hand_values) &&
            CU_add_test(s, "bf16 arrays equal the scalar rule", test_bf16_arrays_match_scalar) &&
            CU_add_test(s, "plans match a double reference, every backend, cache evictions",
                        test_gemm_plans_match_reference) &&
            CU_add_test(s, "bf16 model gradients near fp32, thread-independent, mirror",
                        test_bf16_model_gradients))
               ? 0
               : -1;
}

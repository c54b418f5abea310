/* Unit tests for Adam: two steps against values worked out by hand. */
#include <CUnit/CUnit.h>
#include <math.h>
#include <string.h>

#include "mnist/optim.h"

static void test_adam_two_steps_by_hand(void)
{
    float w[3] = {1.0f, -2.0f, 0.5f}, m[3] = {0}, v[3] = {0};
    const float g1[3] = {0.5f, -0.1f, 0.0f}, g2[3] = {-1.0f, 0.2f, 0.3f};
    Adam opt = {0.1f, 0.9f, 0.999f, 1e-8f, 0};
    adam_step(&opt, w, m, v, g1, 3);
    CU_ASSERT_EQUAL(opt.t, 1);
    /* Step 1: m = 0.1 g, v = 0.001 g^2, bias-corrected to g and g^2, so the
     * update is lr * g / (|g| + eps) = lr * sign(g); zero gradient: no move. */
    CU_ASSERT_DOUBLE_EQUAL(w[0], 0.9, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(w[1], -1.9, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(w[2], 0.5, 1e-7);
    CU_ASSERT_DOUBLE_EQUAL(m[0], 0.05, 1e-7);
    /* 1 - 0.999f is 0.00099998713 in float: moments match to ~1e-5 relative. */
    CU_ASSERT_DOUBLE_EQUAL(v[0], 0.00025, 1e-8);
    adam_step(&opt, w, m, v, g2, 3);
    CU_ASSERT_EQUAL(opt.t, 2);
    /* Step 2 for element 0: m = 0.9*0.05 - 0.1 = -0.055, v = 0.999*0.00025 +
     * 0.001 = 0.00124975; mhat = -0.055/0.19, vhat = 0.00124975/0.001999. */
    const double mhat = -0.055 / 0.19, vhat = 0.00124975 / (1 - 0.999 * 0.999);
    CU_ASSERT_DOUBLE_EQUAL(w[0], 0.9 - 0.1 * mhat / (sqrt(vhat) + 1e-8), 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(m[0], -0.055, 1e-7);
    const double a2 = (double)(1.0f - 0.999f); /* as the float code computes it */
    CU_ASSERT_DOUBLE_EQUAL(v[0], 0.999 * a2 * 0.25 + a2 * 1.0, 1e-9);
    /* Element 2 saw g = 0 then 0.3: m = 0.03, v = 0.00009. */
    const double mh2 = 0.03 / 0.19, vh2 = 0.00009 / (1 - 0.999 * 0.999);
    CU_ASSERT_DOUBLE_EQUAL(w[2], 0.5 - 0.1 * mh2 / (sqrt(vh2) + 1e-8), 1e-6);
}

static void test_adam_long_vector_is_elementwise(void)
{
    /* Odd length exercises the vector remainder; every element identical. */
    enum { N = 1037 };
    static float w[N], m[N], v[N], g[N];
    for (int i = 0; i < N; i++)
        w[i] = 1.0f, g[i] = 0.25f;
    Adam opt = {1e-3f, 0.9f, 0.999f, 1e-8f, 0};
    for (int s = 0; s < 5; s++)
        adam_step(&opt, w, m, v, g, N);
    for (int i = 0; i < N; i++)
        CU_ASSERT_EQUAL(w[i], w[0]);
    CU_ASSERT_DOUBLE_EQUAL(w[0], 1.0 - 5e-3, 1e-5);
}

static void test_adam_bf16_mirror(void)
{
    /* adam_step_bf16: the same weights and moments as adam_step, bit for
     * bit, and wb the round-to-nearest-even bf16 of every new weight */
    enum { N = 1001 };
    static float w1[N], m1[N], v1[N], w2[N], m2[N], v2[N], g[N];
    static bf16 wb[N];
    for (int i = 0; i < N; i++) {
        w1[i] = w2[i] = 0.01f * (float)(i % 97) - 0.4f;
        g[i] = 0.001f * (float)((i * 37) % 101) - 0.05f;
        m1[i] = m2[i] = v1[i] = v2[i] = 0.0f;
    }
    Adam a = {1e-2f, 0.9f, 0.999f, 1e-8f, 0}, b = a;
    for (int s = 0; s < 3; s++) {
        CU_ASSERT_EQUAL(adam_step(&a, w1, m1, v1, g, N), 0);
        CU_ASSERT_EQUAL(adam_step_bf16(&b, w2, m2, v2, g, N, wb), 0);
    }
    CU_ASSERT_EQUAL(a.t, b.t);
    CU_ASSERT(memcmp(w1, w2, sizeof w1) == 0 && memcmp(m1, m2, sizeof m1) == 0 &&
              memcmp(v1, v2, sizeof v1) == 0);
    int same = 1;
    for (int i = 0; i < N; i++)
        same &= wb[i] == bf16_from_float(w2[i]);
    CU_ASSERT(same);
}

static void test_schedules(void)
{
    Schedule c = {SCHED_CONSTANT, 0.1, 0, 1000, 0, 0, 0};
    CU_ASSERT_DOUBLE_EQUAL(schedule_lr(&c, 1), 0.1, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(schedule_lr(&c, 999), 0.1, 1e-15);
    /* warmup: linear from lr/W to lr over W steps */
    Schedule w = {SCHED_CONSTANT, 0.1, 10, 1000, 0, 0, 0};
    CU_ASSERT_DOUBLE_EQUAL(schedule_lr(&w, 1), 0.01, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(schedule_lr(&w, 5), 0.05, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(schedule_lr(&w, 10), 0.1, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(schedule_lr(&w, 11), 0.1, 1e-15);
    /* cosine after 10 warmup steps over 100 more: half-way is the midpoint */
    Schedule cs = {SCHED_COSINE, 0.1, 10, 110, 0, 0, 0.001};
    CU_ASSERT_DOUBLE_EQUAL(schedule_lr(&cs, 10), 0.1, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(schedule_lr(&cs, 60), 0.0505, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(schedule_lr(&cs, 110), 0.001, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(schedule_lr(&cs, 500), 0.001, 1e-15);
    CU_ASSERT(schedule_lr(&cs, 30) > schedule_lr(&cs, 31));
    /* step decay: x0.5 every 100 steps */
    Schedule st = {SCHED_STEP, 0.1, 0, 0, 100, 0.5, 0};
    CU_ASSERT_DOUBLE_EQUAL(schedule_lr(&st, 100), 0.1, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(schedule_lr(&st, 101), 0.05, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(schedule_lr(&st, 250), 0.025, 1e-15);
}

static void test_decay_and_clip(void)
{
    float w[3] = {1, -2, 4};
    optim_decay(w, 3, 0.1f, 0.5f);
    CU_ASSERT_DOUBLE_EQUAL(w[0], 0.95, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(w[2], 3.8, 1e-6);
    float g[2] = {3, 4};
    CU_ASSERT_DOUBLE_EQUAL(optim_clip_norm(g, 2, 10.0), 5.0, 1e-12);
    CU_ASSERT_EQUAL(g[0], 3.0f); /* under the limit: untouched */
    CU_ASSERT_DOUBLE_EQUAL(optim_clip_norm(g, 2, 1.0), 5.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(g[0], 0.6, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(g[1], 0.8, 1e-6);
}

int test_optim_register(void)
{
    CU_pSuite s = CU_add_suite("optim", NULL, NULL);
    if (!s)
        return -1;
    return (CU_add_test(s, "Adam: two steps by hand", test_adam_two_steps_by_hand) &&
            CU_add_test(s, "Adam: long vector, element-wise",
                        test_adam_long_vector_is_elementwise) &&
            CU_add_test(s, "Adam with the bf16 copy of the weights", test_adam_bf16_mirror) &&
            CU_add_test(s, "learning-rate schedules", test_schedules) &&
            CU_add_test(s, "weight decay and gradient clipping", test_decay_and_clip))
               ? 0
               : -1;
}

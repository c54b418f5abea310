/* Unit tests for the MLP: every parameter's gradient against central finite
 * differences (with dropout on, masks fixed by their keys), He init
 * statistics, layer parsing, and overfitting one batch with Adam. */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mnist/mlp.h"
#include "mnist/ops.h"
#include "mnist/optim.h"
#include "mnist/rng.h"
#include "test_util.h"

/* Loss the gradient is of: grad_scale * summed cross-entropy. */
static double loss_of(Mlp *m, const float *x, const uint8_t *y, int B, uint64_t key,
                      const uint64_t *ids, float scale)
{
    const float *logits = mlp_forward(m, x, B, 1, key, ids);
    return scale * softmax_xent(NULL, NULL, logits, y, B, m->sizes[m->num_layers], 0.0f,
                                m->label_smoothing);
}

static void check_gradients(float dropout, float smoothing)
{
    enum { B = 4 };
    const int sizes[] = {6, 5, 4, 3};
    Mlp m;
    Error e;
    CU_ASSERT_FATAL(mlp_create(&m, sizes, 3, dropout, B, &e) == 0);
    mlp_init_params(&m, 7);
    m.label_smoothing = smoothing;
    /* non-zero biases so they matter */
    for (int l = 0; l < m.num_layers; l++)
        for (int j = 0; j < m.sizes[l + 1]; j++)
            m.b[l][j] = 0.1f * (float)(j % 3) - 0.05f;
    float x[B * 6];
    uint64_t key = rng_key(3, 1, 0, 0);
    for (int k = 0; k < B * 6; k++)
        x[k] = rng_uniform(key, k);
    const uint8_t y[B] = {0, 2, 1, 2};
    const uint64_t ids[B] = {11, 12, 13, 14};
    const uint64_t dkey = 99;
    const float scale = 1.0f / B;
    int pred[B];
    mlp_zero_grads(&m);
    mlp_forward(&m, x, B, 1, dkey, ids);
    mlp_backward(&m, x, y, B, scale, pred);
    size_t checked = 0, nonzero = 0, bad = 0;
    for (int l = 0; l < m.num_layers; l++) {
        for (int which = 0; which < 2; which++) {
            float *p = which ? m.b[l] : m.W[l];
            const float *g = which ? m.db[l] : m.dW[l];
            size_t n = which ? (size_t)m.sizes[l + 1] : (size_t)m.sizes[l] * m.sizes[l + 1];
            for (size_t k = 0; k < n; k++) {
                const float saved = p[k], h = 1e-3f;
                p[k] = saved + h;
                double lp = loss_of(&m, x, y, B, dkey, ids, scale);
                p[k] = saved - h;
                double lm = loss_of(&m, x, y, B, dkey, ids, scale);
                p[k] = saved;
                double fd = (lp - lm) / (2.0 * h);
                checked++;
                nonzero += fabs(g[k]) > 1e-6;
                if (fabs(fd - g[k]) > 2e-3 + 2e-2 * fabs(g[k])) {
                    bad++;
                    printf("\n  layer %d %s[%zu]: analytic %g, finite difference %g", l,
                           which ? "b" : "W", k, (double)g[k], fd);
                }
            }
        }
    }
    CU_ASSERT_EQUAL(checked, m.num_params);
    CU_ASSERT_EQUAL(bad, 0);
    /* An all-zero gradient would pass the comparison trivially. */
    CU_ASSERT(nonzero > checked / 3);
    mlp_free(&m);
}

static void test_gradients_no_dropout(void) { check_gradients(0.0f, 0.0f); }
static void test_gradients_with_dropout(void) { check_gradients(0.3f, 0.0f); }
static void test_gradients_label_smoothing(void) { check_gradients(0.2f, 0.1f); }

static void test_max_norm_and_normalize(void)
{
    const int sizes[] = {4, 3, 2};
    Mlp m;
    Error e;
    CU_ASSERT_FATAL(mlp_create(&m, sizes, 2, 0.0f, 2, &e) == 0);
    for (int k = 0; k < 12; k++)
        m.W[0][k] = (float)(k + 1); /* column j holds j+1, j+4, j+7, j+10 */
    for (int k = 0; k < 6; k++)
        m.W[1][k] = 100.0f;         /* the output layer is never constrained */
    mlp_max_norm(&m, 10.0f);
    for (int j = 0; j < 3; j++) {
        double s = 0;
        for (int i = 0; i < 4; i++)
            s += (double)m.W[0][i * 3 + j] * m.W[0][i * 3 + j];
        CU_ASSERT_DOUBLE_EQUAL(sqrt(s), 10.0, 1e-4);
    }
    /* direction kept: column 0 was (1,4,7,10) */
    CU_ASSERT_DOUBLE_EQUAL(m.W[0][3] / m.W[0][0], 4.0, 1e-5);
    CU_ASSERT_EQUAL(m.W[1][0], 100.0f);
    float x[8] = {0, 0.5f, 1, 0.25f, 0, 0, 0, 0};
    m.in_mean = 0.25f, m.in_scale = 4.0f;
    mlp_normalize_input(&m, x, 2);
    CU_ASSERT_EQUAL(x[0], -1.0f);
    CU_ASSERT_EQUAL(x[2], 3.0f);
    CU_ASSERT_EQUAL(x[3], 0.0f);
    mlp_free(&m);
}

static void test_he_init_statistics_and_seeding(void)
{
    const int sizes[] = {784, 256, 10};
    Mlp a, b;
    Error e;
    CU_ASSERT_FATAL(mlp_create(&a, sizes, 2, 0, 1, &e) == 0);
    CU_ASSERT_FATAL(mlp_create(&b, sizes, 2, 0, 1, &e) == 0);
    mlp_init_params(&a, 5);
    mlp_init_params(&b, 5);
    CU_ASSERT(memcmp(a.params, b.params, sizeof(float) * a.param_floats) == 0);
    const size_t n = 784 * 256;
    double s = 0, s2 = 0;
    for (size_t k = 0; k < n; k++)
        s += a.W[0][k], s2 += (double)a.W[0][k] * a.W[0][k];
    const double mean = s / n, sd = sqrt(s2 / n - mean * mean);
    CU_ASSERT(fabs(mean) < 0.002);
    CU_ASSERT(fabs(sd / sqrt(2.0 / 784) - 1.0) < 0.01);
    for (int j = 0; j < 256; j++)
        CU_ASSERT_EQUAL(a.b[0][j], 0.0f);
    mlp_init_params(&b, 6);
    CU_ASSERT(memcmp(a.params, b.params, sizeof(float) * a.param_floats) != 0);
    CU_ASSERT_EQUAL(a.num_params, 784 * 256 + 256 + 256 * 10 + 10);
    mlp_free(&a);
    mlp_free(&b);
}

static void test_parse_layers(void)
{
    int sizes[MLP_MAX_LAYERS + 1];
    Error e;
    CU_ASSERT_EQUAL(mlp_parse_layers("512,256", 784, 10, sizes, &e), 3);
    CU_ASSERT(sizes[0] == 784 && sizes[1] == 512 && sizes[2] == 256 && sizes[3] == 10);
    CU_ASSERT_EQUAL(mlp_parse_layers("", 784, 10, sizes, &e), 1);
    CU_ASSERT_EQUAL(mlp_parse_layers("512,", 784, 10, sizes, &e), -1);
    CU_ASSERT_EQUAL(mlp_parse_layers("0", 784, 10, sizes, &e), -1);
    CU_ASSERT_EQUAL(mlp_parse_layers("12x", 784, 10, sizes, &e), -1);
    CU_ASSERT(strstr(e.msg, "--layers") != NULL);
    CU_ASSERT_EQUAL(mlp_parse_layers("1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1", 784, 10, sizes, &e), -1);
}

static void test_overfits_one_batch(void)
{
    enum { B = 32 };
    Dataset d = {0};
    tu_synthetic(&d, B, 4);
    const int sizes[] = {MNIST_PIXELS, 64, 10};
    Mlp m;
    Error e;
    CU_ASSERT_FATAL(mlp_create(&m, sizes, 2, 0.0f, B, &e) == 0);
    mlp_init_params(&m, 1);
    float *x = malloc(sizeof(float) * B * MNIST_PIXELS);
    uint8_t y[B];
    size_t idx[B];
    int pred[B];
    for (int i = 0; i < B; i++)
        idx[i] = (size_t)i;
    data_gather_batch(x, y, &d, idx, B);
    Adam opt = {1e-2f, 0.9f, 0.999f, 1e-8f, 0};
    double loss = 0, first = 0;
    for (int step = 0; step < 150; step++) {
        mlp_zero_grads(&m);
        mlp_forward(&m, x, B, 1, 0, NULL);
        loss = mlp_backward(&m, x, y, B, 1.0f / B, pred) / B;
        if (step == 0)
            first = loss;
        adam_step(&opt, m.params, m.adam_m, m.adam_v, m.grads, m.param_floats);
    }
    CU_ASSERT(first > 1.0);
    CU_ASSERT(loss < 0.01);
    int correct = 0;
    for (int i = 0; i < B; i++)
        correct += pred[i] == y[i];
    CU_ASSERT_EQUAL(correct, B);
    free(x);
    dataset_free(&d);
    mlp_free(&m);
}

static void test_create_rejects_bad_shapes(void)
{
    Mlp m;
    Error e;
    const int bad[] = {784, 0, 10};
    CU_ASSERT_EQUAL(mlp_create(&m, bad, 2, 0.2f, 8, &e), -1);
    const int ok[] = {784, 10};
    CU_ASSERT_EQUAL(mlp_create(&m, ok, 1, 1.0f, 8, &e), -1);
    CU_ASSERT(strstr(e.msg, "dropout") != NULL);
    CU_ASSERT_EQUAL(mlp_create(&m, ok, 1, 0.0f, 0, &e), -1);
}

int test_mlp_register(void)
{
    CU_pSuite s = CU_add_suite("mlp", NULL, NULL);
    if (!s)
        return -1;
    return (CU_add_test(s, "gradient check, every parameter", test_gradients_no_dropout) &&
            CU_add_test(s, "gradient check with dropout", test_gradients_with_dropout) &&
            CU_add_test(s, "gradient check with label smoothing", test_gradients_label_smoothing) &&
            CU_add_test(s, "max-norm and input standardisation", test_max_norm_and_normalize) &&
            CU_add_test(s, "He init statistics and seeding", test_he_init_statistics_and_seeding) &&
            CU_add_test(s, "--layers parsing", test_parse_layers) &&
            CU_add_test(s, "overfits one batch", test_overfits_one_batch) &&
            CU_add_test(s, "rejects bad shapes", test_create_rejects_bad_shapes))
               ? 0
               : -1;
}

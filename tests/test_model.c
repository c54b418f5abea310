/* Unit tests for the model's layer stack: every parameter's gradient against
 * central finite differences (dense with its fused ReLU and dropout, and
 * standalone ReLU and dropout layers; masks fixed by their keys), He init
 * statistics, max-norm and input standardisation, layer-list parsing, and
 * overfitting one batch with Adam. */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mnist/model.h"
#include "mnist/ops.h"
#include "mnist/optim.h"
#include "mnist/rng.h"
#include "test_util.h"

static float *W_of(Model *m, int l) { return model_layer_tensor(m, model_dense(m, l), 0, m->params); }
static float *b_of(Model *m, int l) { return model_layer_tensor(m, model_dense(m, l), 1, m->params); }

/* Loss the gradient is of: grad_scale * summed cross-entropy. */
static double loss_of(Model *m, const float *x, const uint8_t *y, int B, uint64_t key,
                      const uint64_t *ids, float scale)
{
    const float *logits = model_forward(m, x, B, 1, key, ids);
    return scale * softmax_xent(NULL, NULL, logits, y, B, m->classes, 0.0f, m->label_smoothing);
}

/* Every parameter of m against central differences on a batch of 4 rows of
 * 6 inputs and 3 classes; the gradient must not be mostly zero. */
static void check_model_gradients(Model *m, float smoothing)
{
    enum { B = 4 };
    m->label_smoothing = smoothing;
    /* non-zero biases so they matter */
    for (int t = 0; t < m->num_tensors; t++)
        if (!m->tensors[t].decay)
            for (size_t j = 0; j < m->tensors[t].count; j++)
                m->params[m->tensors[t].offset + j] = 0.1f * (float)(j % 3) - 0.05f;
    float x[B * 6];
    uint64_t key = rng_key(3, 1, 0, 0);
    for (int k = 0; k < B * 6; k++)
        x[k] = rng_uniform(key, k);
    const uint8_t y[B] = {0, 2, 1, 2};
    const uint64_t ids[B] = {11, 12, 13, 14};
    const uint64_t dkey = 99;
    const float scale = 1.0f / B;
    int pred[B];
    model_zero_grads(m);
    model_forward(m, x, B, 1, dkey, ids);
    model_backward(m, x, y, B, scale, pred);
    size_t checked = 0, nonzero = 0, bad = 0;
    for (int t = 0; t < m->num_tensors; t++) {
        float *p = m->params + m->tensors[t].offset;
        const float *g = m->grads + m->tensors[t].offset;
        for (size_t k = 0; k < m->tensors[t].count; k++) {
            const float saved = p[k], h = 1e-3f;
            p[k] = saved + h;
            double lp = loss_of(m, x, y, B, dkey, ids, scale);
            p[k] = saved - h;
            double lm = loss_of(m, x, y, B, dkey, ids, scale);
            p[k] = saved;
            double fd = (lp - lm) / (2.0 * h);
            checked++;
            nonzero += fabs(g[k]) > 1e-6;
            if (fabs(fd - g[k]) > 2e-3 + 2e-2 * fabs(g[k])) {
                bad++;
                printf("\n  %s[%zu]: analytic %g, finite difference %g", m->tensors[t].name, k,
                       (double)g[k], fd);
            }
        }
    }
    CU_ASSERT_EQUAL(checked, m->num_params);
    CU_ASSERT_EQUAL(bad, 0);
    /* An all-zero gradient would pass the comparison trivially. */
    CU_ASSERT(nonzero > checked / 3);
}

static void check_gradients(float dropout, float smoothing)
{
    const int sizes[] = {6, 5, 4, 3};
    Model m;
    Error e;
    CU_ASSERT_FATAL(model_create_mlp(&m, sizes, 3, dropout, 4, &e) == 0);
    model_init_params(&m, 7);
    check_model_gradients(&m, smoothing);
    model_free(&m);
}

static void test_gradients_no_dropout(void) { check_gradients(0.0f, 0.0f); }
static void test_gradients_with_dropout(void) { check_gradients(0.3f, 0.0f); }
static void test_gradients_label_smoothing(void) { check_gradients(0.2f, 0.1f); }

/* Layers that are not fused into a dense layer: a ReLU first (on a copy of
 * the input), a dropout straight after a dense layer (negative values kept:
 * its backward must redraw the masks) and the ReLU after it; the ReLU and
 * dropout after dense:4 are fused. */
static void test_gradients_standalone_layers(void)
{
    ModelSpec spec;
    Model m;
    Error e;
    CU_ASSERT_FATAL(model_spec_parse(&spec, "relu,dense:5,dropout:0.3,relu,dense:4,relu,"
                                            "dropout:0.25,dense:3", &e) == 0);
    CU_ASSERT_FATAL(model_create(&m, &spec, (Shape){1, 2, 3}, 3, 4, &e) == 0);
    int fused = 0;
    for (int i = 0; i < m.num_layers; i++)
        fused += m.layers[i].fused;
    CU_ASSERT_EQUAL(fused, 2);
    model_init_params(&m, 8);
    float x[4 * 6];
    for (int k = 0; k < 24; k++)
        x[k] = (float)k / 24 - 0.4f; /* negative inputs: the first ReLU matters */
    const float copy0 = x[0];
    model_forward(&m, x, 4, 1, 5, (const uint64_t[]){1, 2, 3, 4});
    CU_ASSERT_EQUAL(x[0], copy0); /* the caller's input is never written */
    check_model_gradients(&m, 0.0f);
    model_free(&m);
}

static void test_max_norm_and_normalize(void)
{
    const int sizes[] = {4, 3, 2};
    Model m;
    Error e;
    CU_ASSERT_FATAL(model_create_mlp(&m, sizes, 2, 0.0f, 2, &e) == 0);
    float *W0 = W_of(&m, 0), *W1 = W_of(&m, 1);
    for (int k = 0; k < 12; k++)
        W0[k] = (float)(k + 1); /* column j holds j+1, j+4, j+7, j+10 */
    for (int k = 0; k < 6; k++)
        W1[k] = 100.0f;         /* the output layer is never constrained */
    Optimizer o;
    const OptimConfig oc = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                            .max_norm = 10.0f};
    CU_ASSERT_FATAL(optim_create(&o, &oc, m.param_floats, m.tensors, m.num_tensors, &e) == 0);
    optim_apply_max_norm(&o, m.params);
    for (int j = 0; j < 3; j++) {
        double s = 0;
        for (int i = 0; i < 4; i++)
            s += (double)W0[i * 3 + j] * W0[i * 3 + j];
        CU_ASSERT_DOUBLE_EQUAL(sqrt(s), 10.0, 1e-4);
    }
    /* direction kept: column 0 was (1,4,7,10) */
    CU_ASSERT_DOUBLE_EQUAL(W0[3] / W0[0], 4.0, 1e-5);
    CU_ASSERT_EQUAL(W1[0], 100.0f);
    optim_free(&o);
    float x[8] = {0, 0.5f, 1, 0.25f, 0, 0, 0, 0};
    m.in_mean = 0.25f, m.in_scale = 4.0f;
    model_normalize_input(&m, x, 2);
    CU_ASSERT_EQUAL(x[0], -1.0f);
    CU_ASSERT_EQUAL(x[2], 3.0f);
    CU_ASSERT_EQUAL(x[3], 0.0f);
    model_free(&m);
}

static void test_he_init_statistics_and_seeding(void)
{
    const int sizes[] = {784, 256, 10};
    Model a, b;
    Error e;
    CU_ASSERT_FATAL(model_create_mlp(&a, sizes, 2, 0, 1, &e) == 0);
    CU_ASSERT_FATAL(model_create_mlp(&b, sizes, 2, 0, 1, &e) == 0);
    model_init_params(&a, 5);
    model_init_params(&b, 5);
    CU_ASSERT(memcmp(a.params, b.params, sizeof(float) * a.param_floats) == 0);
    const size_t n = 784 * 256;
    const float *W = W_of(&a, 0);
    double s = 0, s2 = 0;
    for (size_t k = 0; k < n; k++)
        s += W[k], s2 += (double)W[k] * W[k];
    const double mean = s / n, sd = sqrt(s2 / n - mean * mean);
    CU_ASSERT(fabs(mean) < 0.002);
    CU_ASSERT(fabs(sd / sqrt(2.0 / 784) - 1.0) < 0.01);
    for (int j = 0; j < 256; j++)
        CU_ASSERT_EQUAL(b_of(&a, 0)[j], 0.0f);
    model_init_params(&b, 6);
    CU_ASSERT(memcmp(a.params, b.params, sizeof(float) * a.param_floats) != 0);
    CU_ASSERT_EQUAL(a.num_params, 784 * 256 + 256 + 256 * 10 + 10);
    model_free(&a);
    model_free(&b);
}

static void test_parse_layers(void)
{
    ModelSpec s;
    Error e;
    CU_ASSERT_EQUAL(model_spec_from_widths(&s, "512,256", 0.2f, &e), 0);
    CU_ASSERT_EQUAL(s.count, 6);
    CU_ASSERT(s.layers[0].kind == LAYER_DENSE && s.layers[0].units == 512);
    CU_ASSERT(s.layers[1].kind == LAYER_RELU && s.layers[2].kind == LAYER_DROPOUT);
    CU_ASSERT(s.layers[3].kind == LAYER_DENSE && s.layers[3].units == 256);
    CU_ASSERT_EQUAL(model_spec_from_widths(&s, "", 0.2f, &e), 0);
    CU_ASSERT_EQUAL(s.count, 0);
    CU_ASSERT_EQUAL(model_spec_from_widths(&s, "512,", 0.2f, &e), -1);
    CU_ASSERT_EQUAL(model_spec_from_widths(&s, "0", 0.2f, &e), -1);
    CU_ASSERT_EQUAL(model_spec_from_widths(&s, "12x", 0.2f, &e), -1);
    CU_ASSERT(strstr(e.msg, "--layers") != NULL);
    CU_ASSERT_EQUAL(model_spec_from_widths(&s, "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1", 0.2f, &e), -1);
    /* no dropout layers without dropout */
    CU_ASSERT_EQUAL(model_spec_from_widths(&s, "8", 0.0f, &e), 0);
    CU_ASSERT_EQUAL(s.count, 2);
}

static void test_spec_parse_and_format(void)
{
    ModelSpec s, back;
    Error e;
    char text[256];
    CU_ASSERT_EQUAL(model_spec_parse(&s, "dense:512,relu,dropout:0.2,dense:10", &e), 0);
    CU_ASSERT_EQUAL(s.count, 4);
    CU_ASSERT_EQUAL(model_spec_format(text, sizeof text, &s), 0);
    CU_ASSERT_STRING_EQUAL(text, "dense:512,relu,dropout:0.2,dense:10");
    CU_ASSERT_EQUAL(model_spec_parse(&back, text, &e), 0);
    CU_ASSERT(memcmp(&s, &back, sizeof s) == 0);
    /* each bad token is named, with its position */
    CU_ASSERT_EQUAL(model_spec_parse(&s, "dense:512,dens:10", &e), -1);
    CU_ASSERT(strstr(e.msg, "token 2 'dens:10': unknown layer kind 'dens'") != NULL);
    CU_ASSERT_EQUAL(model_spec_parse(&s, "dense", &e), -1);
    CU_ASSERT(strstr(e.msg, "token 1 'dense': dense takes a width") != NULL);
    CU_ASSERT_EQUAL(model_spec_parse(&s, "relu,dropout:1.5", &e), -1);
    CU_ASSERT(strstr(e.msg, "token 2 'dropout:1.5'") != NULL);
    CU_ASSERT_EQUAL(model_spec_parse(&s, "relu:3", &e), -1);
    CU_ASSERT(strstr(e.msg, "relu takes no arguments") != NULL);
    CU_ASSERT_EQUAL(model_spec_parse(&s, "dense:8,", &e), -1);
    CU_ASSERT(strstr(e.msg, "token 2: empty") != NULL);
    /* the output layer must match the classes */
    Model m;
    CU_ASSERT_EQUAL(model_spec_parse(&s, "dense:8,relu", &e), 0);
    CU_ASSERT_EQUAL(model_create(&m, &s, (Shape){28, 28, 1}, 10, 4, &e), -1);
    CU_ASSERT(strstr(e.msg, "the last layer must be dense:10") != NULL);
}

static void test_overfits_one_batch(void)
{
    enum { B = 32 };
    Dataset d = {0};
    tu_synthetic(&d, B, 4);
    const int sizes[] = {MNIST_PIXELS, 64, 10};
    Model m;
    Error e;
    CU_ASSERT_FATAL(model_create_mlp(&m, sizes, 2, 0.0f, B, &e) == 0);
    model_init_params(&m, 1);
    float *x = malloc(sizeof(float) * B * MNIST_PIXELS);
    float *moments = calloc(2 * m.param_floats, sizeof(float));
    uint8_t y[B];
    size_t idx[B];
    int pred[B];
    for (int i = 0; i < B; i++)
        idx[i] = (size_t)i;
    data_gather_batch(x, y, &d, idx, B);
    Adam opt = {1e-2f, 0.9f, 0.999f, 1e-8f, 0};
    double loss = 0, first = 0;
    for (int step = 0; step < 150; step++) {
        model_zero_grads(&m);
        model_forward(&m, x, B, 1, 0, NULL);
        loss = model_backward(&m, x, y, B, 1.0f / B, pred) / B;
        if (step == 0)
            first = loss;
        adam_step(&opt, m.params, moments, moments + m.param_floats, m.grads, m.param_floats);
    }
    CU_ASSERT(first > 1.0);
    CU_ASSERT(loss < 0.01);
    int correct = 0;
    for (int i = 0; i < B; i++)
        correct += pred[i] == y[i];
    CU_ASSERT_EQUAL(correct, B);
    free(x);
    free(moments);
    dataset_free(&d);
    model_free(&m);
}

static void test_create_rejects_bad_shapes(void)
{
    Model m;
    Error e;
    const int bad[] = {784, 0, 10};
    CU_ASSERT_EQUAL(model_create_mlp(&m, bad, 2, 0.2f, 8, &e), -1);
    const int ok[] = {784, 10};
    CU_ASSERT_EQUAL(model_create_mlp(&m, ok, 1, 1.0f, 8, &e), -1);
    CU_ASSERT(strstr(e.msg, "dropout") != NULL);
    CU_ASSERT_EQUAL(model_create_mlp(&m, ok, 1, 0.0f, 0, &e), -1);
    const int one_class[] = {784, 1};
    CU_ASSERT_EQUAL(model_create_mlp(&m, one_class, 1, 0.0f, 8, &e), -1);
}

int test_model_register(void)
{
    CU_pSuite s = CU_add_suite("model", NULL, NULL);
    if (!s)
        return -1;
    return (CU_add_test(s, "gradient check, every parameter", test_gradients_no_dropout) &&
            CU_add_test(s, "gradient check with dropout", test_gradients_with_dropout) &&
            CU_add_test(s, "gradient check with label smoothing", test_gradients_label_smoothing) &&
            CU_add_test(s, "gradient check, standalone ReLU and dropout",
                        test_gradients_standalone_layers) &&
            CU_add_test(s, "max-norm and input standardisation", test_max_norm_and_normalize) &&
            CU_add_test(s, "He init statistics and seeding", test_he_init_statistics_and_seeding) &&
            CU_add_test(s, "--layers parsing", test_parse_layers) &&
            CU_add_test(s, "layer lists: parse, format, errors", test_spec_parse_and_format) &&
            CU_add_test(s, "overfits one batch", test_overfits_one_batch) &&
            CU_add_test(s, "rejects bad shapes", test_create_rejects_bad_shapes))
               ? 0
               : -1;
}

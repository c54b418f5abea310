/* Unit tests for the model's layer stack: every parameter's gradient against
 * central finite differences (dense with its fused ReLU and dropout, and
 * standalone ReLU and dropout layers; masks fixed by their keys), He init
 * statistics, max-norm and input standardisation, layer-list parsing, and
 * overfitting one batch with Adam. */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "mnist/conv.h"
#include "mnist/model.h"
#include "mnist/ops.h"
#include "mnist/optim.h"
#include "mnist/rng.h"
#include "test_util.h"

/* The OpenMP team size for the next parallel region (1 without OpenMP). */
static void omp_set_threads_for_test(int n)
{
#ifdef _OPENMP
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}

static float *W_of(Model *m, int l) { return model_layer_tensor(m, model_dense(m, l), 0, m->params); }
static float *b_of(Model *m, int l) { return model_layer_tensor(m, model_dense(m, l), 1, m->params); }

/* Loss the gradient is of: grad_scale * summed cross-entropy. */
static double loss_of(Model *m, const float *x, const uint8_t *y, int B, uint64_t key,
                      const uint64_t *ids, float scale)
{
    const float *logits = model_forward(m, x, B, 1, key, ids);
    return scale * softmax_xent(NULL, NULL, logits, y, B, m->classes, 0.0f, m->label_smoothing);
}

/* Every parameter of m against central differences on a batch of 4 rows
 * (inputs of m's shape, at least 3 classes); the gradient must not be
 * mostly zero. */
static void check_model_gradients(Model *m, float smoothing)
{
    enum { B = 4, MAX_IN = 1024 };
    const size_t n_in = shape_size(m->input);
    CU_ASSERT_FATAL(n_in <= MAX_IN);
    m->label_smoothing = smoothing;
    /* non-zero biases so they matter */
    for (int t = 0; t < m->num_tensors; t++)
        if (!m->tensors[t].decay)
            for (size_t j = 0; j < m->tensors[t].count; j++)
                m->params[m->tensors[t].offset + j] = 0.1f * (float)(j % 3) - 0.05f;
    static float x[B * MAX_IN];
    uint64_t key = rng_key(3, 1, 0, 0);
    for (size_t k = 0; k < B * n_in; k++)
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
            /* a second, smaller step when the first straddles a kink (a ReLU
             * or a max switching inside +-h); a wrong gradient fails both */
            const float saved = p[k];
            double fd = 0.0;
            for (float h = 1e-3f; h > 1e-4f; h /= 4) {
                p[k] = saved + h;
                double lp = loss_of(m, x, y, B, dkey, ids, scale);
                p[k] = saved - h;
                double lm = loss_of(m, x, y, B, dkey, ids, scale);
                p[k] = saved;
                fd = (lp - lm) / (2.0 * h);
                if (fabs(fd - g[k]) <= 2e-3 + 2e-2 * fabs(g[k]))
                    break;
            }
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


/* Convolutions at stride 1 and 2, padding 0 and 1, odd sizes and several
 * input channels; a 1x1 convolution first, so the next one's input gradient
 * (col2im) is checked through it; max pooling (overlapping windows too),
 * flatten, ReLU and dropout after convolutions and pooling. */
static void check_spec_gradients(const char *text, Shape in)
{
    ModelSpec spec;
    Model m;
    Error e;
    CU_ASSERT_FATAL(model_spec_parse(&spec, text, &e) == 0);
    if (model_create(&m, &spec, in, 3, 4, &e) != 0) {
        printf("\n  %s: %s", text, e.msg);
        CU_FAIL_FATAL("model_create");
    }
    model_init_params(&m, 9);
    const unsigned before = CU_get_number_of_failures();
    check_model_gradients(&m, 0.0f);
    if (CU_get_number_of_failures() != before)
        printf("\n  (in %s on %dx%dx%d)", text, in.h, in.w, in.c);
    model_free(&m);
}

static void test_gradients_conv(void)
{
    check_spec_gradients("conv:3x3x3,relu,conv:2x3x2/s2/p1,flatten,dense:3", (Shape){7, 6, 2});
    check_spec_gradients("conv:2x1x1,conv:3x2x3/s2,maxpool:2,dense:3", (Shape){9, 8, 3});
    check_spec_gradients("conv:2x1x1,conv:4x3x3/p1,relu,dense:3", (Shape){5, 5, 1});
    check_spec_gradients("conv:2x3x3/p1,relu,maxpool:3/s2,dropout:0.3,flatten,dense:6,relu,"
                         "dense:3", (Shape){7, 7, 1});
    check_spec_gradients("conv:1x1x1,maxpool:2/s1,conv:3x3x3/s2/p1,relu,dropout:0.25,dense:3",
                         (Shape){6, 7, 2});
}

/* A small CNN stack like ref-cnn (two convolutions, pooling, dropout,
 * dense layers with their fused ReLU and dropout). */
static void test_gradients_small_cnn(void)
{
    check_spec_gradients("conv:4x3x3,relu,conv:6x3x3,relu,maxpool:2,dropout:0.25,flatten,"
                         "dense:8,relu,dropout:0.5,dense:3", (Shape){10, 10, 1});
}

/* The kernels against a direct convolution, and the same bits at 1 and 2
 * threads (the weight gradient is summed per fixed chunk of samples). */
static void test_conv_reference_and_threads(void)
{
    enum { B = 9 };
    const ConvGeom geoms[] = {{.h = 7, .w = 5, .c = 3, .f = 4, .kh = 3, .kw = 2, .stride = 2, .pad = 1},
                              {.h = 6, .w = 6, .c = 2, .f = 3, .kh = 3, .kw = 3, .stride = 1, .pad = 0},
                              {.h = 4, .w = 3, .c = 5, .f = 2, .kh = 1, .kw = 1, .stride = 1, .pad = 0}};
    for (size_t gi = 0; gi < sizeof geoms / sizeof geoms[0]; gi++) {
        ConvGeom g = geoms[gi];
        g.oh = (g.h + 2 * g.pad - g.kh) / g.stride + 1;
        g.ow = (g.w + 2 * g.pad - g.kw) / g.stride + 1;
        const size_t in = (size_t)g.h * g.w * g.c, out = (size_t)g.oh * g.ow * g.f;
        const size_t nw = (size_t)g.kh * g.kw * g.c * g.f;
        float *x = calloc(B * in, 4), *W = calloc(nw, 4), *b = calloc(g.f, 4);
        float *y = calloc(B * out, 4), *dy = calloc(B * out, 4);
        float *dx1 = calloc(B * in, 4), *dx2 = calloc(B * in, 4);
        float *dW1 = calloc(nw + g.f, 4), *dW2 = calloc(nw + g.f, 4);
        float *work = calloc(conv_work_floats(&g, B, 2), 4);
        CU_ASSERT_FATAL(x && W && b && y && dy && dx1 && dx2 && dW1 && dW2 && work);
        for (size_t k = 0; k < B * in; k++)
            x[k] = rng_uniform(5, k) - 0.5f;
        for (size_t k = 0; k < nw; k++)
            W[k] = rng_uniform(6, k) - 0.5f;
        for (int k = 0; k < g.f; k++)
            b[k] = 0.1f * (float)k;
        for (size_t k = 0; k < B * out; k++)
            dy[k] = rng_uniform(7, k) - 0.5f;
        conv_forward(y, x, W, b, B, &g, 0, work, 2, NULL);
        double worst = 0.0;
        for (int i = 0; i < B; i++)
            for (int oy = 0; oy < g.oh; oy++)
                for (int ox = 0; ox < g.ow; ox++)
                    for (int f = 0; f < g.f; f++) {
                        double r = b[f];
                        for (int ky = 0; ky < g.kh; ky++)
                            for (int kx = 0; kx < g.kw; kx++)
                                for (int c = 0; c < g.c; c++) {
                                    const int iy = oy * g.stride - g.pad + ky;
                                    const int ix = ox * g.stride - g.pad + kx;
                                    if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w)
                                        continue;
                                    r += (double)x[i * in + ((size_t)iy * g.w + ix) * g.c + c] *
                                         W[(((size_t)ky * g.kw + kx) * g.c + c) * g.f + f];
                                }
                        const double d =
                            fabs(r - y[i * out + ((size_t)oy * g.ow + ox) * g.f + f]);
                        worst = d > worst ? d : worst;
                    }
        CU_ASSERT(worst < 1e-5);
        omp_set_threads_for_test(1);
        conv_backward(dx1, dW1, dW1 + nw, dy, x, NULL, W, B, &g, work, 2, NULL);
        omp_set_threads_for_test(2);
        conv_backward(dx2, dW2, dW2 + nw, dy, x, NULL, W, B, &g, work, 2, NULL);
        CU_ASSERT(memcmp(dx1, dx2, B * in * 4) == 0);
        CU_ASSERT(memcmp(dW1, dW2, (nw + g.f) * 4) == 0);
        /* <dy, conv(x)> is linear in x: its gradient dx must satisfy
         * <dx, x> = <dy, y - b> */
        double lhs = 0, rhs = 0;
        for (size_t k = 0; k < B * in; k++)
            lhs += (double)dx1[k] * x[k];
        for (size_t k = 0; k < B * out; k++)
            rhs += (double)dy[k] * (y[k] - b[k % g.f]);
        CU_ASSERT(fabs(lhs - rhs) < 1e-4 * (1 + fabs(rhs)));
        CU_ASSERT(fabs(rhs) > 1e-3);
        free(x), free(W), free(b), free(y), free(dy), free(dx1), free(dx2), free(dW1), free(dW2);
        free(work);
    }
}

/* Ties: the gradient goes to the first maximal position of each window
 * (row-major), whole; overlapping windows add up. */
static void test_maxpool_ties(void)
{
    /* 4x4x2: channel 0 all equal, channel 1 a tie between (0,1) and (1,0) */
    float x[32], y[8], dx[32], dy[8];
    for (int k = 0; k < 16; k++) {
        x[2 * k] = 1.0f;
        x[2 * k + 1] = 0.0f;
    }
    x[(0 * 4 + 1) * 2 + 1] = x[(1 * 4 + 0) * 2 + 1] = 5.0f;
    PoolGeom g = {.h = 4, .w = 4, .c = 2, .size = 2, .stride = 2, .oh = 2, .ow = 2};
    maxpool_forward(y, x, 1, &g);
    CU_ASSERT_EQUAL(y[0], 1.0f);
    CU_ASSERT_EQUAL(y[1], 5.0f);
    for (int k = 0; k < 8; k++)
        dy[k] = (float)(k + 1);
    maxpool_backward(dx, dy, x, 1, &g);
    /* channel 0: each window's top-left; channel 1 of window 0: (0,1) */
    CU_ASSERT_EQUAL(dx[0], 1.0f);
    CU_ASSERT_EQUAL(dx[(0 * 4 + 2) * 2], 3.0f);
    CU_ASSERT_EQUAL(dx[(2 * 4 + 0) * 2], 5.0f);
    CU_ASSERT_EQUAL(dx[(2 * 4 + 2) * 2], 7.0f);
    CU_ASSERT_EQUAL(dx[(0 * 4 + 1) * 2 + 1], 2.0f);
    CU_ASSERT_EQUAL(dx[(1 * 4 + 0) * 2 + 1], 0.0f);
    double sum = 0;
    for (int k = 0; k < 32; k++)
        sum += dx[k];
    CU_ASSERT_EQUAL(sum, 36.0); /* every dy lands exactly once */
    /* overlapping 3x3 windows every 1 on a constant: each goes to its top-left */
    PoolGeom o = {.h = 4, .w = 4, .c = 2, .size = 3, .stride = 1, .oh = 2, .ow = 2};
    for (int k = 0; k < 32; k++)
        x[k] = 2.0f;
    maxpool_forward(y, x, 1, &o);
    maxpool_backward(dx, dy, x, 1, &o);
    CU_ASSERT_EQUAL(dx[0], 1.0f);
    CU_ASSERT_EQUAL(dx[2], 3.0f);
    CU_ASSERT_EQUAL(dx[8], 5.0f);
    CU_ASSERT_EQUAL(dx[10], 7.0f);
    CU_ASSERT_EQUAL(y[0], 2.0f);
}

/* Layer lists with conv, maxpool, flatten; presets; bad tokens named;
 * shapes that do not fit refused naming the layer. */
static void test_conv_specs(void)
{
    ModelSpec s, back;
    Error e;
    char text[512];
    CU_ASSERT_EQUAL(model_spec_model(&s, "ref-cnn", 10, &e), 0);
    CU_ASSERT_EQUAL(s.count, 11);
    CU_ASSERT_EQUAL(s.layers[0].kind, LAYER_CONV);
    CU_ASSERT_EQUAL(s.layers[0].units, 32);
    CU_ASSERT_EQUAL(s.layers[2].units, 64);
    CU_ASSERT_EQUAL(s.layers[4].kind, LAYER_MAXPOOL);
    CU_ASSERT_EQUAL(s.layers[4].stride, 2);
    CU_ASSERT_EQUAL(s.layers[10].kind, LAYER_DENSE);
    CU_ASSERT_EQUAL(s.layers[10].units, 10);
    CU_ASSERT_EQUAL(model_spec_format(text, sizeof text, &s), 0);
    CU_ASSERT_EQUAL(model_spec_parse(&back, text, &e), 0);
    CU_ASSERT(memcmp(&s, &back, sizeof s) == 0);
    Model m;
    CU_ASSERT_FATAL(model_layout(&m, &s, (Shape){28, 28, 1}, 10, &e) == 0);
    CU_ASSERT_EQUAL(m.num_params, 1199882); /* Keras mnist_cnn's count */
    CU_ASSERT_EQUAL(m.layers[4].out.h, 12);
    CU_ASSERT_EQUAL(m.layers[6].out.c, 9216);
    /* each conv's ReLU runs in its output pass */
    CU_ASSERT(m.layers[0].relu && m.layers[1].fused && m.layers[2].relu && m.layers[3].fused);
    CU_ASSERT(!m.layers[5].fused); /* the dropout after pooling stays a layer */
    CU_ASSERT_EQUAL(model_spec_model(&s, "ref-mlp", 47, &e), 0);
    CU_ASSERT_EQUAL(s.layers[s.count - 1].units, 47);
    CU_ASSERT_EQUAL(model_spec_model(&s, "conv:8x5x5/s2/p2,maxpool:3/s2,dense:10", 10, &e), 0);
    CU_ASSERT_EQUAL(s.count, 3); /* ends with a dense layer: that is the output */
    CU_ASSERT_EQUAL(s.layers[0].stride, 2);
    CU_ASSERT_EQUAL(s.layers[0].pad, 2);
    CU_ASSERT_EQUAL(s.layers[1].kh, 3);
    static const struct {
        const char *text, *names;
    } bad[] = {{"conv:32x3", "'conv:32x3'"},        {"conv:0x3x3", "'conv:0x3x3'"},
               {"conv:32x3x3/q1", "'conv:32x3x3/q1'"}, {"conv:32x3x3/s0", "/s0"},
               {"relu,conv", "token 2"},             {"maxpool:0", "'maxpool:0'"},
               {"maxpool:2/p1", "'maxpool:2/p1'"},   {"flatten:3", "'flatten:3'"},
               {"conv:8x3x3,pool:2", "'pool'"},      {"ref-cnm", "'ref-cnm'"},
               {"conv:32x3x3x", "'conv:32x3x3x'"},   {"conv:-1x3x3", "conv:-1x3x3"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CU_ASSERT_EQUAL(model_spec_model(&s, bad[i].text, 10, &e), -1);
        if (!strstr(e.msg, bad[i].names))
            printf("\n  '%s': message '%s' does not name %s", bad[i].text, e.msg, bad[i].names);
        CU_ASSERT(strstr(e.msg, bad[i].names) != NULL);
    }
    static const struct {
        const char *text, *names;
    } shape[] = {{"conv:4x5x5,dense:10", "layer 1 (conv)"},
                 {"conv:4x3x3,maxpool:4,dense:10", "layer 2 (maxpool)"},
                 {"conv:4x3x3/p3,dense:10", "layer 1 (conv)"},
                 {"conv:4x3x3,dense:7", "dense:10"}};
    for (size_t i = 0; i < sizeof shape / sizeof shape[0]; i++) {
        CU_ASSERT_EQUAL(model_spec_parse(&s, shape[i].text, &e), 0);
        CU_ASSERT_EQUAL(model_create(&m, &s, (Shape){4, 4, 1}, 10, 2, &e), -1);
        if (!strstr(e.msg, shape[i].names))
            printf("\n  '%s': message '%s' does not name %s", shape[i].text, e.msg,
                   shape[i].names);
        CU_ASSERT(strstr(e.msg, shape[i].names) != NULL);
    }
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
            CU_add_test(s, "gradient check, conv, maxpool, flatten", test_gradients_conv) &&
            CU_add_test(s, "gradient check, a small CNN", test_gradients_small_cnn) &&
            CU_add_test(s, "conv kernels: reference, thread count", test_conv_reference_and_threads) &&
            CU_add_test(s, "maxpool ties: first max wins", test_maxpool_ties) &&
            CU_add_test(s, "conv layer lists, presets, shape errors", test_conv_specs) &&
            CU_add_test(s, "max-norm and input standardisation", test_max_norm_and_normalize) &&
            CU_add_test(s, "He init statistics and seeding", test_he_init_statistics_and_seeding) &&
            CU_add_test(s, "--layers parsing", test_parse_layers) &&
            CU_add_test(s, "layer lists: parse, format, errors", test_spec_parse_and_format) &&
            CU_add_test(s, "overfits one batch", test_overfits_one_batch) &&
            CU_add_test(s, "rejects bad shapes", test_create_rejects_bad_shapes))
               ? 0
               : -1;
}

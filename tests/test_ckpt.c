/* Unit tests for checkpoints: save -> load is bit-exact, and truncated,
 * corrupted, foreign and mismatched files are refused with a message. */
#include <CUnit/CUnit.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mnist/ckpt.h"
#include "mnist/model.h"
#include "mnist/optim.h"
#include "mnist/h5data.h"
#include "mnist/rng.h"
#include "test_util.h"

static const int SIZES[] = {784, 32, 16, 10};

/* A model with every flat vector filled with distinct values, a history,
 * and Adam at step 17. */
static void make_state(Model *m, Optimizer *opt, History *h)
{
    Error e;
    CU_ASSERT_FATAL(model_create_mlp(m, SIZES, 3, 0.25f, 8, &e) == 0);
    const OptimConfig oc = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
    CU_ASSERT_FATAL(optim_create(opt, &oc, m->param_floats, m->tensors, m->num_tensors, &e) == 0);
    uint64_t key = rng_key(1, 2, 3, 4);
    for (size_t k = 0; k < m->param_floats; k++) {
        m->params[k] = (float)rng_normal(key, k);
        opt->m[k] = (float)rng_normal(key, k + m->param_floats);
        opt->v[k] = rng_uniform(key, k);
    }
    opt->adam.t = 17;
    memset(h, 0, sizeof *h);
    for (int i = 1; i <= 3; i++) {
        EpochStats s = {i, 1.0 / i, 0.9, i == 2 ? NAN : 0.5, 0.95, 2.5, 20000};
        history_push(h, &s, &e);
    }
}

static void free_state(Model *m, Optimizer *opt, History *h)
{
    model_free(m);
    optim_free(opt);
    history_free(h);
}

/* An empty optimizer for reading into. */
static void blank_optimizer(Optimizer *o, const Model *m)
{
    Error e;
    const OptimConfig oc = {.lr = 1.0f};
    CU_ASSERT_FATAL(optim_create(o, &oc, m->param_floats, m->tensors, m->num_tensors, &e) == 0);
}

/* Compares only the real tensor elements (padding is never written). */
static int same_tensors(const Model *a, const float *fa, const Model *b, const float *fb)
{
    for (int t = 0; t < a->num_tensors; t++)
        if (memcmp(fa + a->tensors[t].offset, fb + b->tensors[t].offset,
                   a->tensors[t].count * sizeof(float)) != 0)
            return 0;
    return 1;
}

static void test_roundtrip_bit_exact(void)
{
    char dir[256], path[512];
    tu_tmpdir(dir, sizeof dir);
    CU_ASSERT(ckpt_path(path, sizeof path, dir, 3, 0) == 0);
    CU_ASSERT(strstr(path, "/checkpoints/epoch-0003.h5") != NULL);
    CU_ASSERT(ckpt_path(path, sizeof path, dir, 3, 42) == 0);
    CU_ASSERT(strstr(path, "/checkpoints/epoch-0003-step-0000042.h5") != NULL);
    snprintf(path, sizeof path, "%s/c.h5", dir);
    Model m, r;
    Optimizer opt, ropt;
    History h, rh = {0};
    make_state(&m, &opt, &h);
    CkptMeta meta = {.epoch = 3, .seed = 1234567, .step = 17, .partial = {1.5, 100, 128, 2.25},
                     .run_id = 99, .wall_s = 12.5, .segments = "[{\"a\":1}]"},
             rmeta = {0};
    Error e;
    CU_ASSERT_FATAL(ckpt_write(path, &m, &opt, &meta, &h, "{\"a\":1}", &e) == 0);
    CU_ASSERT_EQUAL(tu_count_entries(dir), 1);
    CkptModel desc;
    CU_ASSERT_EQUAL_FATAL(ckpt_read_model(path, &desc, &e), 0);
    CU_ASSERT_EQUAL(desc.format_version, CKPT_FORMAT_VERSION);
    CU_ASSERT(memcmp(&desc.spec, &m.spec, sizeof desc.spec) == 0);
    CU_ASSERT(desc.input.h == 1 && desc.input.w == 1 && desc.input.c == 784);
    CU_ASSERT_EQUAL(desc.classes, 10);
    /* the model is rebuilt from the file alone */
    CU_ASSERT_FATAL(model_create(&r, &desc.spec, desc.input, desc.classes, 8, &e) == 0);
    blank_optimizer(&ropt, &r);
    CU_ASSERT_FATAL(ckpt_read(path, &r, &ropt, &rmeta, &rh, &e) == 0);
    CU_ASSERT(same_tensors(&m, m.params, &r, r.params));
    CU_ASSERT(same_tensors(&m, opt.m, &r, ropt.m));
    CU_ASSERT(same_tensors(&m, opt.v, &r, ropt.v));
    CU_ASSERT_EQUAL(ropt.adam.t, 17);
    CU_ASSERT_EQUAL(ropt.adam.lr, opt.adam.lr);
    CU_ASSERT_EQUAL(ropt.adam.beta2, opt.adam.beta2);
    CU_ASSERT_EQUAL(rmeta.epoch, 3);
    CU_ASSERT_EQUAL(rmeta.seed, 1234567);
    CU_ASSERT_EQUAL(rmeta.step, 17);
    CU_ASSERT_EQUAL(rmeta.partial[0], 1.5);
    CU_ASSERT_EQUAL(rmeta.partial[3], 2.25);
    CU_ASSERT_EQUAL(rmeta.run_id, 99);
    CU_ASSERT_EQUAL(rmeta.wall_s, 12.5);
    CU_ASSERT_STRING_EQUAL(rmeta.segments, "[{\"a\":1}]");
    CU_ASSERT_EQUAL_FATAL(rh.count, 3);
    CU_ASSERT_EQUAL(rh.items[2].epoch, 3);
    CU_ASSERT_EQUAL(rh.items[2].train_loss, 1.0 / 3);
    CU_ASSERT(isnan(rh.items[1].val_loss));
    free_state(&r, &ropt, &rh);
    free_state(&m, &opt, &h);
    tu_rmrf(dir);
}

/* A model of another shape and class count (an EMNIST-like 47 classes on
 * 32 x 32 x 3 images) keeps both through a checkpoint, and an
 * inference-only file (no optimizer) holds zero moments. */
static void test_shapes_and_classes_roundtrip(void)
{
    char dir[256], path[512];
    tu_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/c47.h5", dir);
    ModelSpec spec;
    Model m, r;
    Error e;
    CU_ASSERT_FATAL(model_spec_parse(&spec, "dense:20,relu,dense:47", &e) == 0);
    CU_ASSERT_FATAL(model_create(&m, &spec, (Shape){32, 32, 3}, 47, 4, &e) == 0);
    model_init_params(&m, 3);
    m.in_mean = 0.125f, m.in_scale = 3.0f;
    History h = {0};
    CkptMeta meta = {.seed = 5};
    CU_ASSERT_FATAL(ckpt_write(path, &m, NULL, &meta, &h, "{}", &e) == 0);
    CkptModel desc;
    CU_ASSERT_FATAL(ckpt_read_model(path, &desc, &e) == 0);
    CU_ASSERT(desc.input.h == 32 && desc.input.w == 32 && desc.input.c == 3);
    CU_ASSERT_EQUAL(desc.classes, 47);
    CU_ASSERT_EQUAL(desc.in_mean, 0.125f);
    CU_ASSERT_FATAL(model_create(&r, &desc.spec, desc.input, desc.classes, 4, &e) == 0);
    Optimizer o;
    blank_optimizer(&o, &r);
    o.m[0] = 1.0f;
    CU_ASSERT_FATAL(ckpt_read(path, &r, &o, &meta, &h, &e) == 0);
    CU_ASSERT(same_tensors(&m, m.params, &r, r.params));
    CU_ASSERT_EQUAL(o.m[0], 0.0f);
    CU_ASSERT_EQUAL(r.in_scale, 3.0f);
    optim_free(&o);
    model_free(&r);
    model_free(&m);
    tu_rmrf(dir);
}

/* A CNN (conv with stride and padding, maxpool, flatten, dropout) keeps
 * its layer list, input shape and every tensor (4-D kernels included)
 * through a checkpoint, and the rebuilt model gives the same logits. */
static void test_cnn_roundtrip(void)
{
    char dir[256], path[512];
    tu_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/cnn.h5", dir);
    ModelSpec spec;
    Model m, r;
    Error e;
    CU_ASSERT_FATAL(model_spec_model(&spec, "conv:4x3x3/p1,relu,conv:6x3x3/s2,relu,maxpool:2,"
                                            "dropout:0.25,flatten,dense:16,relu,dropout:0.5", 10,
                                     &e) == 0);
    CU_ASSERT_FATAL(model_create(&m, &spec, (Shape){12, 12, 1}, 10, 4, &e) == 0);
    model_init_params(&m, 4);
    History h = {0};
    CkptMeta meta = {.seed = 6};
    CU_ASSERT_FATAL(ckpt_write(path, &m, NULL, &meta, &h, "{}", &e) == 0);
    CkptModel desc;
    CU_ASSERT_FATAL(ckpt_read_model(path, &desc, &e) == 0);
    CU_ASSERT_EQUAL(desc.format_version, 2);
    CU_ASSERT(memcmp(&desc.spec, &m.spec, sizeof m.spec) == 0);
    CU_ASSERT(desc.input.h == 12 && desc.input.w == 12 && desc.input.c == 1);
    CU_ASSERT_FATAL(model_create(&r, &desc.spec, desc.input, desc.classes, 4, &e) == 0);
    CU_ASSERT_EQUAL(r.num_params, m.num_params);
    const Tensor *k = model_tensor(&r, "conv0/W");
    CU_ASSERT_FATAL(k != NULL);
    CU_ASSERT(k->ndim == 4 && k->dims[0] == 3 && k->dims[1] == 3 && k->dims[2] == 1 &&
              k->dims[3] == 4);
    Optimizer o;
    blank_optimizer(&o, &r);
    CU_ASSERT_FATAL(ckpt_read(path, &r, &o, &meta, &h, &e) == 0);
    CU_ASSERT_EQUAL(meta.seed, 6);
    CU_ASSERT(same_tensors(&m, m.params, &r, r.params));
    float x[4 * 144];
    for (int i = 0; i < 4 * 144; i++)
        x[i] = (float)(i % 13) / 13.0f;
    const float *a = model_forward(&m, x, 4, 0, 0, NULL);
    const float *b = model_forward(&r, x, 4, 0, 0, NULL);
    CU_ASSERT(memcmp(a, b, sizeof(float) * 40) == 0);
    /* a file whose kernel has another shape is refused before loading */
    ModelSpec other;
    Model w;
    CU_ASSERT_FATAL(model_spec_model(&other, "conv:4x5x5/p1,relu,conv:6x3x3/s2,relu,maxpool:2,"
                                             "dropout:0.25,flatten,dense:16,relu,dropout:0.5",
                                     10, &e) == 0);
    CU_ASSERT_FATAL(model_create(&w, &other, (Shape){12, 12, 1}, 10, 4, &e) == 0);
    CU_ASSERT_EQUAL(ckpt_read(path, &w, NULL, &meta, &h, &e), -1);
    model_free(&w);
    optim_free(&o);
    model_free(&r);
    model_free(&m);
    history_free(&h);
    tu_rmrf(dir);
}

/* A checkpoint of the first release (format 1: layer_sizes, dropout) still
 * loads as the MLP it describes on 28 x 28 images and 10 classes. */
static void test_format_1_loads(void)
{
    const char *path = MNIST_TEST_DATA "/ckpt-v1-0.1.0.h5";
    CkptModel desc;
    Error e;
    CU_ASSERT_FATAL(ckpt_read_model(path, &desc, &e) == 0);
    CU_ASSERT_EQUAL(desc.format_version, 1);
    CU_ASSERT(desc.input.h == 28 && desc.input.w == 28 && desc.input.c == 1);
    CU_ASSERT_EQUAL(desc.classes, 10);
    char text[128];
    CU_ASSERT(model_spec_format(text, sizeof text, &desc.spec) == 0);
    CU_ASSERT_STRING_EQUAL(text, "dense:8,relu,dropout:0.2,dense:10");
    Model m;
    Optimizer o;
    CkptMeta meta;
    History h = {0};
    CU_ASSERT_FATAL(model_create(&m, &desc.spec, desc.input, desc.classes, 4, &e) == 0);
    blank_optimizer(&o, &m);
    CU_ASSERT_EQUAL(ckpt_read(path, &m, &o, &meta, &h, &e), 0);
    CU_ASSERT_EQUAL(meta.epoch, 2);
    CU_ASSERT_EQUAL(meta.seed, 42);
    CU_ASSERT_EQUAL(h.count, 2);
    double sum = 0;
    for (size_t k = 0; k < m.param_floats; k++)
        sum += fabs(m.params[k]);
    CU_ASSERT(sum > 0);
    free_state(&m, &o, &h);
}

static void expect_read_error(const char *path, const int *sizes, int L, const char *words)
{
    Model r;
    Optimizer o;
    CkptMeta meta;
    History h = {0};
    Error e = {{0}};
    CU_ASSERT_FATAL(model_create_mlp(&r, sizes, L, 0.25f, 8, &e) == 0);
    blank_optimizer(&o, &r);
    CU_ASSERT_EQUAL(ckpt_read(path, &r, &o, &meta, &h, &e), -1);
    CU_ASSERT(strstr(e.msg, path) != NULL);
    CU_ASSERT(strstr(e.msg, words) != NULL);
    if (!strstr(e.msg, words))
        printf("\n  message was: %s", e.msg);
    free_state(&r, &o, &h);
}

static void test_bad_checkpoints(void)
{
    char dir[256], path[512], bad[600];
    tu_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/good.h5", dir);
    Model m;
    Optimizer opt;
    History h;
    make_state(&m, &opt, &h);
    CkptMeta meta = {.epoch = 3, .seed = 1};
    Error e;
    CU_ASSERT_FATAL(ckpt_write(path, &m, &opt, &meta, &h, "{}", &e) == 0);

    /* other widths than the run's */
    const int other[] = {784, 64, 10};
    expect_read_error(path, other, 2, "checkpoint has layers 784-32-16-10 but this run uses 784-64-10");

    /* one flipped byte inside the first weight matrix: the checksum catches it */
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "model/dense0/W", H5P_DEFAULT);
    haddr_t addr = 0;
    hsize_t chunk_size = 0, offset[2] = {0, 0};
    unsigned mask = 0;
    CU_ASSERT_FATAL(H5Dget_chunk_info_by_coord(d, offset, &mask, &addr, &chunk_size) >= 0);
    H5Dclose(d);
    H5Fclose(f);
    FILE *fp = fopen(path, "rb");
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    static unsigned char bytes[1 << 20];
    CU_ASSERT_FATAL(size < (long)sizeof bytes && fread(bytes, 1, (size_t)size, fp) == (size_t)size);
    fclose(fp);
    bytes[addr + chunk_size / 2] ^= 0x10;
    tu_write(bad, sizeof bad, dir, "flipped.h5", bytes, (size_t)size);
    expect_read_error(bad, SIZES, 3, "checksum");
    bytes[addr + chunk_size / 2] ^= 0x10;

    /* truncated to half */
    tu_write(bad, sizeof bad, dir, "truncated.h5", bytes, (size_t)size / 2);
    expect_read_error(bad, SIZES, 3, "");
    /* not HDF5 at all */
    tu_write(bad, sizeof bad, dir, "text.h5", "not a checkpoint", 16);
    expect_read_error(bad, SIZES, 3, "not an HDF5 file");
    /* HDF5 but an image set, not a checkpoint */
    snprintf(bad, sizeof bad, "%s/images.h5", dir);
    Dataset ds = {0};
    tu_synthetic(&ds, 4, 1);
    CU_ASSERT_FATAL(h5data_write(bad, &ds, "x", &e) == 0);
    expect_read_error(bad, SIZES, 3, "not a mnist-dist checkpoint");
    dataset_free(&ds);
    /* another format version */
    snprintf(bad, sizeof bad, "%s/version.h5", dir);
    CU_ASSERT_FATAL(ckpt_write(bad, &m, &opt, &meta, &h, "{}", &e) == 0);
    f = H5Fopen(bad, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t a = H5Aopen(f, "format_version", H5P_DEFAULT);
    int64_t v = 99;
    H5Awrite(a, H5T_NATIVE_INT64, &v);
    H5Aclose(a);
    H5Fclose(f);
    expect_read_error(bad, SIZES, 3, "format version 99");
    /* a tensor whose shape contradicts the layer list */
    snprintf(bad, sizeof bad, "%s/shape.h5", dir);
    CU_ASSERT_FATAL(ckpt_write(bad, &m, &opt, &meta, &h, "{}", &e) == 0);
    f = H5Fopen(bad, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Ldelete(f, "model/dense1/b", H5P_DEFAULT);
    hsize_t n = 3;
    hid_t s = H5Screate_simple(1, &n, NULL);
    H5Dclose(H5Dcreate2(f, "model/dense1/b", H5T_IEEE_F32LE, s, H5P_DEFAULT, H5P_DEFAULT,
                        H5P_DEFAULT));
    H5Sclose(s);
    H5Fclose(f);
    expect_read_error(bad, SIZES, 3, "model/dense1/b has shape [3,0] but the model says [16,0]");

    free_state(&m, &opt, &h);
    tu_rmrf(dir);
}

static void test_find_latest(void)
{
    char dir[256], path[512];
    tu_tmpdir(dir, sizeof dir);
    CU_ASSERT_EQUAL(ckpt_find_latest(dir, path, sizeof path, NULL, NULL), 0);
    char sub[300];
    snprintf(sub, sizeof sub, "%s/checkpoints", dir);
    Error e;
    CU_ASSERT_FATAL(path_mkdirs(sub, &e) == 0);
    Model m;
    Optimizer opt;
    History h;
    make_state(&m, &opt, &h);
    for (int epoch = 2; epoch <= 10; epoch += 4) {
        CkptMeta meta = {.epoch = epoch, .seed = 1};
        ckpt_path(path, sizeof path, dir, epoch, 0);
        CU_ASSERT(ckpt_write(path, &m, &opt, &meta, &h, "{}", &e) == 0);
    }
    /* a stop in mid-epoch 11 is later than the end of epoch 10 */
    CkptMeta mid = {.epoch = 10, .seed = 1, .step = 5};
    ckpt_path(path, sizeof path, dir, 10, 5);
    CU_ASSERT(ckpt_write(path, &m, &opt, &mid, &h, "{}", &e) == 0);
    /* a newer but broken file is skipped, as is a stray temp file */
    tu_write(path, sizeof path, sub, "epoch-0012.h5", "garbage", 7);
    tu_write(path, sizeof path, sub, "epoch-0013.h5.tmp.123", "garbage", 7);
    CU_ASSERT_EQUAL(ckpt_find_latest(dir, path, sizeof path, NULL, NULL), 1);
    CU_ASSERT(strstr(path, "epoch-0010-step-0000005.h5") != NULL);
    free_state(&m, &opt, &h);
    tu_rmrf(dir);
}

int test_ckpt_register(void)
{
    CU_pSuite s = CU_add_suite("ckpt", NULL, NULL);
    if (!s)
        return -1;
    h5_quiet();
    return (CU_add_test(s, "CNN round trip: layer list, 4-D kernels, logits", test_cnn_roundtrip) &&
            CU_add_test(s, "save -> load is bit-exact", test_roundtrip_bit_exact) &&
            CU_add_test(s, "image shape and class count kept", test_shapes_and_classes_roundtrip) &&
            CU_add_test(s, "format-1 checkpoints still load", test_format_1_loads) &&
            CU_add_test(s, "bad checkpoints are refused", test_bad_checkpoints) &&
            CU_add_test(s, "find latest valid checkpoint", test_find_latest))
               ? 0
               : -1;
}

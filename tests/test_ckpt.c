/* Unit tests for checkpoints: save -> load is bit-exact, and truncated,
 * corrupted, foreign and mismatched files are refused with a message. */
#include <CUnit/CUnit.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mnist/ckpt.h"
#include "mnist/h5data.h"
#include "mnist/rng.h"
#include "test_util.h"

static const int SIZES[] = {784, 32, 16, 10};

/* A model with every flat vector filled with distinct values, a history,
 * and Adam at step 17. */
static void make_state(Mlp *m, Adam *opt, History *h)
{
    Error e;
    CU_ASSERT_FATAL(mlp_create(m, SIZES, 3, 0.25f, 8, &e) == 0);
    uint64_t key = rng_key(1, 2, 3, 4);
    for (size_t k = 0; k < m->param_floats; k++) {
        m->params[k] = (float)rng_normal(key, k);
        m->adam_m[k] = (float)rng_normal(key, k + m->param_floats);
        m->adam_v[k] = rng_uniform(key, k);
    }
    *opt = (Adam){1e-3f, 0.9f, 0.999f, 1e-8f, 17};
    memset(h, 0, sizeof *h);
    for (int i = 1; i <= 3; i++) {
        EpochStats s = {i, 1.0 / i, 0.9, i == 2 ? NAN : 0.5, 0.95, 2.5, 20000};
        history_push(h, &s, &e);
    }
}

/* Compares only the real tensor elements (padding is never written). */
static int same_tensors(const Mlp *a, const float *fa, const Mlp *b, const float *fb)
{
    for (int l = 0; l < a->num_layers; l++)
        for (int which = 0; which < 2; which++) {
            size_t n = which ? (size_t)a->sizes[l + 1] : (size_t)a->sizes[l] * a->sizes[l + 1];
            if (memcmp(fa + mlp_tensor_offset(a, l, which), fb + mlp_tensor_offset(b, l, which),
                       n * sizeof(float)) != 0)
                return 0;
        }
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
    Mlp m, r;
    Adam opt, ropt = {0};
    History h, rh = {0};
    make_state(&m, &opt, &h);
    CkptMeta meta = {3, 1234567, 17, {1.5, 100, 128, 2.25}}, rmeta = {0, 0, 0, {0, 0, 0, 0}};
    Error e;
    CU_ASSERT_FATAL(ckpt_write(path, &m, &opt, &meta, &h, "{\"a\":1}", &e) == 0);
    CU_ASSERT_EQUAL(tu_count_entries(dir), 1);
    int sizes[MLP_MAX_LAYERS + 1];
    CU_ASSERT_EQUAL(ckpt_read_layers(path, sizes, &e), 3);
    CU_ASSERT(memcmp(sizes, SIZES, sizeof SIZES) == 0);
    CU_ASSERT_FATAL(mlp_create(&r, SIZES, 3, 0.25f, 8, &e) == 0);
    CU_ASSERT_FATAL(ckpt_read(path, &r, &ropt, &rmeta, &rh, &e) == 0);
    CU_ASSERT(same_tensors(&m, m.params, &r, r.params));
    CU_ASSERT(same_tensors(&m, m.adam_m, &r, r.adam_m));
    CU_ASSERT(same_tensors(&m, m.adam_v, &r, r.adam_v));
    CU_ASSERT_EQUAL(ropt.t, 17);
    CU_ASSERT_EQUAL(ropt.lr, opt.lr);
    CU_ASSERT_EQUAL(ropt.beta2, opt.beta2);
    CU_ASSERT_EQUAL(rmeta.epoch, 3);
    CU_ASSERT_EQUAL(rmeta.seed, 1234567);
    CU_ASSERT_EQUAL(rmeta.step, 17);
    CU_ASSERT_EQUAL(rmeta.partial[0], 1.5);
    CU_ASSERT_EQUAL(rmeta.partial[3], 2.25);
    CU_ASSERT_EQUAL_FATAL(rh.count, 3);
    CU_ASSERT_EQUAL(rh.items[2].epoch, 3);
    CU_ASSERT_EQUAL(rh.items[2].train_loss, 1.0 / 3);
    CU_ASSERT(isnan(rh.items[1].val_loss));
    mlp_free(&r);
    mlp_free(&m);
    history_free(&h);
    history_free(&rh);
    tu_rmrf(dir);
}

static void expect_read_error(const char *path, const int *sizes, int L, const char *words)
{
    Mlp r;
    Adam o;
    CkptMeta meta;
    History h = {0};
    Error e = {{0}};
    CU_ASSERT_FATAL(mlp_create(&r, sizes, L, 0.25f, 8, &e) == 0);
    CU_ASSERT_EQUAL(ckpt_read(path, &r, &o, &meta, &h, &e), -1);
    CU_ASSERT(strstr(e.msg, path) != NULL);
    CU_ASSERT(strstr(e.msg, words) != NULL);
    if (!strstr(e.msg, words))
        printf("\n  message was: %s", e.msg);
    mlp_free(&r);
    history_free(&h);
}

static void test_bad_checkpoints(void)
{
    char dir[256], path[512], bad[600];
    tu_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/good.h5", dir);
    Mlp m;
    Adam opt;
    History h;
    make_state(&m, &opt, &h);
    CkptMeta meta = {3, 1, 0, {0, 0, 0, 0}};
    Error e;
    CU_ASSERT_FATAL(ckpt_write(path, &m, &opt, &meta, &h, "{}", &e) == 0);

    /* other widths than the run's */
    const int other[] = {784, 64, 10};
    expect_read_error(path, other, 2, "layer sizes 784,32,16,10 but this run uses 784,64,10");

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
    /* a tensor whose shape contradicts layer_sizes */
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
    expect_read_error(bad, SIZES, 3, "model/dense1/b has shape [3,0] but the layer sizes say [16,0]");

    mlp_free(&m);
    history_free(&h);
    tu_rmrf(dir);
}

static void test_find_latest(void)
{
    char dir[256], path[512];
    tu_tmpdir(dir, sizeof dir);
    CU_ASSERT_EQUAL(ckpt_find_latest(dir, path, sizeof path), 0);
    char sub[300];
    snprintf(sub, sizeof sub, "%s/checkpoints", dir);
    Error e;
    CU_ASSERT_FATAL(path_mkdirs(sub, &e) == 0);
    Mlp m;
    Adam opt;
    History h;
    make_state(&m, &opt, &h);
    for (int epoch = 2; epoch <= 10; epoch += 4) {
        CkptMeta meta = {epoch, 1, 0, {0, 0, 0, 0}};
        ckpt_path(path, sizeof path, dir, epoch, 0);
        CU_ASSERT(ckpt_write(path, &m, &opt, &meta, &h, "{}", &e) == 0);
    }
    /* a stop in mid-epoch 11 is later than the end of epoch 10 */
    CkptMeta mid = {10, 1, 5, {0, 0, 0, 0}};
    ckpt_path(path, sizeof path, dir, 10, 5);
    CU_ASSERT(ckpt_write(path, &m, &opt, &mid, &h, "{}", &e) == 0);
    /* a newer but broken file is skipped, as is a stray temp file */
    tu_write(path, sizeof path, sub, "epoch-0012.h5", "garbage", 7);
    tu_write(path, sizeof path, sub, "epoch-0013.h5.tmp.123", "garbage", 7);
    CU_ASSERT_EQUAL(ckpt_find_latest(dir, path, sizeof path), 1);
    CU_ASSERT(strstr(path, "epoch-0010-step-0000005.h5") != NULL);
    mlp_free(&m);
    history_free(&h);
    tu_rmrf(dir);
}

int test_ckpt_register(void)
{
    CU_pSuite s = CU_add_suite("ckpt", NULL, NULL);
    if (!s)
        return -1;
    h5_quiet();
    return (CU_add_test(s, "save -> load is bit-exact", test_roundtrip_bit_exact) &&
            CU_add_test(s, "bad checkpoints are refused", test_bad_checkpoints) &&
            CU_add_test(s, "find latest valid checkpoint", test_find_latest))
               ? 0
               : -1;
}

/* Unit tests for HDF5 image files: round trip, shard reads, and each
 * malformed file's message. Single process (default file driver). */
#include <CUnit/CUnit.h>
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>

#include "mnist/h5data.h"
#include "test_util.h"

static void test_roundtrip_and_shards(void)
{
    char dir[256], path[512];
    tu_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/set.h5", dir);
    Dataset d = {0};
    tu_synthetic(&d, 2500, 3); /* more than one chunk of rows */
    Error e;
    CU_ASSERT_FATAL(h5data_write(path, &d, "synthetic", &e) == 0);
    CU_ASSERT_EQUAL(tu_count_entries(dir), 1); /* no temp file left */
    H5Data h;
    CU_ASSERT_FATAL(h5data_open(&h, path, H5P_DEFAULT, &e) == 0);
    CU_ASSERT_EQUAL(h.rows, 2500);
    CU_ASSERT(h.has_labels);
    for (int P = 1; P <= 3; P++)
        for (int p = 0; p < P; p++) {
            size_t first, count;
            data_shard_range(h.rows, P, p, &first, &count);
            Dataset s = {0};
            CU_ASSERT_FATAL(h5data_read(&h, first, count, &s, &e) == 0);
            CU_ASSERT_EQUAL(s.rows, count);
            CU_ASSERT(memcmp(s.images, d.images + first * MNIST_PIXELS, count * MNIST_PIXELS) == 0);
            CU_ASSERT(memcmp(s.labels, d.labels + first, count) == 0);
            dataset_free(&s);
        }
    Dataset s = {0};
    CU_ASSERT_EQUAL(h5data_read(&h, 2000, 501, &s, &e), -1);
    h5data_close(&h);
    dataset_free(&d);
    tu_rmrf(dir);
}

static void test_unlabelled_file(void)
{
    char dir[256], path[512];
    tu_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/nolabels.h5", dir);
    Dataset d = {0};
    tu_synthetic(&d, 10, 1);
    free(d.labels);
    d.labels = NULL;
    Error e;
    CU_ASSERT_FATAL(h5data_write(path, &d, "x", &e) == 0);
    H5Data h;
    CU_ASSERT_FATAL(h5data_open(&h, path, H5P_DEFAULT, &e) == 0);
    CU_ASSERT_EQUAL(h.has_labels, 0);
    Dataset s = {0};
    CU_ASSERT(h5data_read(&h, 0, 10, &s, &e) == 0);
    CU_ASSERT_PTR_NULL(s.labels);
    CU_ASSERT(memcmp(s.images, d.images, 10 * MNIST_PIXELS) == 0);
    dataset_free(&s);
    h5data_close(&h);
    dataset_free(&d);
    tu_rmrf(dir);
}

/* Writes a file with one dataset of the given name, type and shape. */
static void write_odd(const char *path, const char *name, hid_t type, int nd, hsize_t d0,
                      hsize_t d1)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[2] = {d0, d1};
    hid_t s = H5Screate_simple(nd, dims, NULL);
    hid_t ds = H5Dcreate2(f, name, type, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(ds);
    H5Sclose(s);
    H5Fclose(f);
}

static void expect_open_error(const char *path, const char *words)
{
    H5Data h;
    Error e = {{0}};
    CU_ASSERT_EQUAL(h5data_open(&h, path, H5P_DEFAULT, &e), -1);
    CU_ASSERT(strncmp(e.msg, path, strlen(path)) == 0);
    CU_ASSERT(strstr(e.msg, words) != NULL);
    if (!strstr(e.msg, words))
        printf("\n  message was: %s", e.msg);
}

static void test_bad_files(void)
{
    char dir[256], path[512];
    tu_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/missing.h5", dir);
    expect_open_error(path, "cannot open");
    tu_write(path, sizeof path, dir, "text.h5", "hello\n", 6);
    expect_open_error(path, "not an HDF5 file");
    tu_write(path, sizeof path, dir, "text.csv", "1,2\n", 4);
    expect_open_error(path, "convert");
    snprintf(path, sizeof path, "%s/noimages.h5", dir);
    write_odd(path, "pixels", H5T_STD_U8LE, 2, 4, 784);
    expect_open_error(path, "no /images");
    snprintf(path, sizeof path, "%s/shape.h5", dir);
    write_odd(path, "images", H5T_STD_U8LE, 2, 4, 28);
    expect_open_error(path, "[N,784]");
    snprintf(path, sizeof path, "%s/dtype.h5", dir);
    write_odd(path, "images", H5T_IEEE_F32LE, 2, 4, 784);
    expect_open_error(path, "unsigned 8-bit");
    /* rows of labels disagree with images */
    snprintf(path, sizeof path, "%s/rows.h5", dir);
    Dataset d = {0};
    tu_synthetic(&d, 5, 1);
    Error e;
    CU_ASSERT_FATAL(h5data_write(path, &d, "x", &e) == 0);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Ldelete(f, "labels", H5P_DEFAULT);
    hsize_t n = 4;
    hid_t s = H5Screate_simple(1, &n, NULL);
    H5Dclose(H5Dcreate2(f, "labels", H5T_STD_U8LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    H5Sclose(s);
    H5Fclose(f);
    expect_open_error(path, "/labels has 4 rows but /images has 5");
    /* a label outside 0..9 is caught on read, naming the row */
    snprintf(path, sizeof path, "%s/label.h5", dir);
    d.labels[3] = 12;
    CU_ASSERT_FATAL(h5data_write(path, &d, "x", &e) == 0);
    H5Data h;
    CU_ASSERT_FATAL(h5data_open(&h, path, H5P_DEFAULT, &e) == 0);
    Dataset r = {0};
    CU_ASSERT_EQUAL(h5data_read(&h, 0, 5, &r, &e), -1);
    CU_ASSERT(strstr(e.msg, "/labels[3] = 12") != NULL);
    CU_ASSERT_PTR_NULL(r.images);
    h5data_close(&h);
    dataset_free(&d);
    tu_rmrf(dir);
}

static void test_write_failure_leaves_nothing(void)
{
    Dataset d = {0};
    tu_synthetic(&d, 3, 1);
    Error e = {{0}};
    CU_ASSERT_EQUAL(h5data_write("/nonexistent-dir/x.h5", &d, "x", &e), -1);
    CU_ASSERT(strstr(e.msg, "/nonexistent-dir/x.h5") != NULL);
    dataset_free(&d);
}

int test_h5_register(void)
{
    CU_pSuite s = CU_add_suite("h5", NULL, NULL);
    if (!s)
        return -1;
    h5_quiet();
    return (CU_add_test(s, "round trip and shard reads", test_roundtrip_and_shards) &&
            CU_add_test(s, "unlabelled file", test_unlabelled_file) &&
            CU_add_test(s, "each malformed file's message", test_bad_files) &&
            CU_add_test(s, "write failure leaves nothing", test_write_failure_leaves_nothing))
               ? 0
               : -1;
}

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
    expect_open_error(path, "[N,P] with P a square number of pixels");
    snprintf(path, sizeof path, "%s/dtype.h5", dir);
    write_odd(path, "images", H5T_IEEE_F64LE, 2, 4, 784);
    expect_open_error(path, "/images must hold uint8 (0..255) or float32 (0..1) values, found "
                            "shape [4,784] of float64");
    snprintf(path, sizeof path, "%s/ltype.h5", dir);
    Dataset four_rows = {0};
    tu_synthetic(&four_rows, 4, 1);
    Error we;
    CU_ASSERT_FATAL(h5data_write(path, &four_rows, "x", &we) == 0);
    dataset_free(&four_rows);
    hid_t lf = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Ldelete(lf, "labels", H5P_DEFAULT);
    hsize_t four = 4;
    hid_t ls = H5Screate_simple(1, &four, NULL);
    H5Dclose(H5Dcreate2(lf, "labels", H5T_IEEE_F32LE, ls, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    H5Sclose(ls);
    H5Fclose(lf);
    expect_open_error(path, "/labels must be a 1-D dataset of uint8, int32 or int64 labels, "
                            "found shape [4] of float32");
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

/* An uncompressed uint8 dataset of nd dims (dims[0] rows) holding byte
 * i % 251 at index i, as h5py writes it by default (contiguous). */
static void write_images(hid_t f, const char *name, int nd, const hsize_t *dims)
{
    size_t n = 1;
    for (int i = 0; i < nd; i++)
        n *= dims[i];
    uint8_t *buf = malloc(n);
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)(i % 251);
    hid_t sp = H5Screate_simple(nd, dims, NULL);
    hid_t ds = H5Dcreate2(f, name, H5T_STD_U8LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    H5Dclose(ds);
    H5Sclose(sp);
    free(buf);
}

/* The image shape comes from the file: [N,H,W], [N,H,W,C], or [N,P] with
 * height/width/channels attributes; the class count from a classes
 * attribute (else 10), and a label at or above it names its row. */
static void test_shapes_and_classes_from_the_file(void)
{
    char dir[256], path[512];
    tu_tmpdir(dir, sizeof dir);
    Error e;
    H5Data h;
    Dataset s = {0};
    struct { int nd; hsize_t dims[4]; Shape want; } cases[] = {
        {3, {6, 28, 28}, {28, 28, 1}}, {4, {6, 28, 28, 1}, {28, 28, 1}},
        {4, {6, 32, 32, 3}, {32, 32, 3}}, {2, {6, 784}, {28, 28, 1}}, {3, {6, 20, 12}, {20, 12, 1}}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        snprintf(path, sizeof path, "%s/shape%zu.h5", dir, k);
        hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        write_images(f, "images", cases[k].nd, cases[k].dims);
        H5Fclose(f);
        CU_ASSERT_FATAL(h5data_open(&h, path, H5P_DEFAULT, &e) == 0);
        CU_ASSERT(h.shape.h == cases[k].want.h && h.shape.w == cases[k].want.w &&
                  h.shape.c == cases[k].want.c);
        CU_ASSERT_FATAL(h5data_read(&h, 2, 3, &s, &e) == 0);
        const size_t px = shape_size(cases[k].want);
        CU_ASSERT(s.shape.h == cases[k].want.h && s.classes == 10);
        CU_ASSERT_EQUAL(s.images[0], (uint8_t)((2 * px) % 251));
        CU_ASSERT_EQUAL(s.images[3 * px - 1], (uint8_t)((5 * px - 1) % 251));
        dataset_free(&s);
        h5data_close(&h);
    }
    /* [N,P] with attributes: 4 x 5 x 3 */
    snprintf(path, sizeof path, "%s/attrs.h5", dir);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    write_images(f, "images", 2, (const hsize_t[]){6, 60});
    const int hwc[3] = {4, 5, 3}, classes = 47;
    h5_attr_write(f, "height", H5T_STD_I32LE, H5T_NATIVE_INT, 0, &hwc[0]);
    h5_attr_write(f, "width", H5T_STD_I32LE, H5T_NATIVE_INT, 0, &hwc[1]);
    h5_attr_write(f, "channels", H5T_STD_I32LE, H5T_NATIVE_INT, 0, &hwc[2]);
    h5_attr_write(f, "classes", H5T_STD_I32LE, H5T_NATIVE_INT, 0, &classes);
    uint8_t labels[6] = {0, 9, 10, 46, 3, 47};
    hsize_t n = 6;
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t ds = H5Dcreate2(f, "labels", H5T_STD_U8LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, labels);
    H5Dclose(ds);
    H5Sclose(sp);
    H5Fclose(f);
    CU_ASSERT_FATAL(h5data_open(&h, path, H5P_DEFAULT, &e) == 0);
    CU_ASSERT(h.shape.h == 4 && h.shape.w == 5 && h.shape.c == 3 && h.classes == 47);
    CU_ASSERT_FATAL(h5data_read(&h, 0, 5, &s, &e) == 0);
    CU_ASSERT_EQUAL(s.labels[3], 46);
    dataset_free(&s);
    CU_ASSERT_EQUAL(h5data_read(&h, 0, 6, &s, &e), -1);
    CU_ASSERT(strstr(e.msg, "/labels[5] = 47 is outside 0..46") != NULL);
    h5data_close(&h);
    /* attributes that contradict the rows */
    snprintf(path, sizeof path, "%s/liar.h5", dir);
    f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    write_images(f, "images", 2, (const hsize_t[]){6, 61});
    h5_attr_write(f, "height", H5T_STD_I32LE, H5T_NATIVE_INT, 0, &hwc[0]);
    h5_attr_write(f, "width", H5T_STD_I32LE, H5T_NATIVE_INT, 0, &hwc[1]);
    H5Fclose(f);
    expect_open_error(path, "rows hold 61 values but its height, width and channels attributes say 4x5x1");
    /* a written set keeps its shape and classes */
    snprintf(path, sizeof path, "%s/written.h5", dir);
    Dataset d = {0};
    tu_synthetic(&d, 7, 2);
    d.classes = 12;
    CU_ASSERT_FATAL(h5data_write(path, &d, "t", &e) == 0);
    CU_ASSERT_FATAL(h5data_open(&h, path, H5P_DEFAULT, &e) == 0);
    CU_ASSERT(h.shape.h == 28 && h.shape.w == 28 && h.shape.c == 1 && h.classes == 12);
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

/* Writes dataset name of type file_type (from mem_type values in buf) with
 * nd dims into the open file f. */
static void put(hid_t f, const char *name, hid_t file_type, hid_t mem_type, int nd,
                const hsize_t *dims, const void *buf)
{
    hid_t s = H5Screate_simple(nd, dims, NULL);
    hid_t ds = H5Dcreate2(f, name, file_type, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CU_ASSERT(H5Dwrite(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
    H5Dclose(ds);
    H5Sclose(s);
}

/* h5py users' layouts: float32 [N,28,28,1] images in 0..1 and int64 labels
 * under their own names read as the uint8 set they came from, shard by
 * shard; a float outside 0..1 and a negative label are refused naming the
 * row; the default names are refused with a hint. */
static void test_h5py_layouts_and_names(void)
{
    char dir[256], path[512];
    tu_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/keras.h5", dir);
    Dataset d = {0};
    tu_synthetic(&d, 300, 5);
    float *xf = malloc(sizeof(float) * 300 * MNIST_PIXELS);
    int64_t *yl = malloc(sizeof(int64_t) * 300);
    for (size_t i = 0; i < 300 * MNIST_PIXELS; i++)
        xf[i] = (float)d.images[i] / 255.0f;
    for (size_t i = 0; i < 300; i++)
        yl[i] = d.labels[i];
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(H5Gcreate2(f, "train", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    const hsize_t idims[4] = {300, 28, 28, 1}, ldims[1] = {300};
    put(f, "train/x", H5T_IEEE_F32BE, H5T_NATIVE_FLOAT, 4, idims, xf); /* big-endian: HDF5 converts */
    put(f, "train/y", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, ldims, yl);
    xf[123 * MNIST_PIXELS + 7] = 1.25f;
    yl[77] = -1;
    put(f, "bad_x", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 4, idims, xf);
    put(f, "bad_y", H5T_STD_I32LE, H5T_NATIVE_INT64, 1, ldims, yl);
    H5Fclose(f);
    H5Data h;
    Error e = {{0}};
    const H5Names names = {"/train/x", "train/y"};
    CU_ASSERT_FATAL(h5data_open_named(&h, path, &names, H5P_DEFAULT, &e) == 0);
    CU_ASSERT(h.images_f32 && !h.labels_u8 && h.has_labels && h.rows == 300);
    CU_ASSERT(h.shape.h == 28 && h.shape.w == 28 && h.shape.c == 1);
    for (int p = 0; p < 3; p++) {
        size_t first, count;
        data_shard_range(h.rows, 3, p, &first, &count);
        Dataset r = {0};
        CU_ASSERT_FATAL(h5data_read(&h, first, count, &r, &e) == 0);
        CU_ASSERT(memcmp(r.images, d.images + first * MNIST_PIXELS, count * MNIST_PIXELS) == 0);
        CU_ASSERT(memcmp(r.labels, d.labels + first, count) == 0);
        dataset_free(&r);
    }
    h5data_close(&h);
    const H5Names bad = {"bad_x", "train/y"}, badl = {"train/x", "bad_y"};
    Dataset r = {0};
    CU_ASSERT_FATAL(h5data_open_named(&h, path, &bad, H5P_DEFAULT, &e) == 0);
    CU_ASSERT(h5data_read(&h, 0, 300, &r, &e) == -1);
    CU_ASSERT(strstr(e.msg, "/bad_x[123] holds 1.25 at pixel 7 (y 0, x 7): float32 images must lie in 0..1") != NULL);
    h5data_close(&h);
    CU_ASSERT_FATAL(h5data_open_named(&h, path, &badl, H5P_DEFAULT, &e) == 0);
    CU_ASSERT(h5data_read(&h, 0, 300, &r, &e) == -1);
    CU_ASSERT(strstr(e.msg, "/bad_y[77] = -1 is outside 0..9") != NULL);
    h5data_close(&h);
    expect_open_error(path, "no /images dataset");
    expect_open_error(path, "--images-dataset");
    free(xf), free(yl);
    dataset_free(&d);
    tu_rmrf(dir);
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
            CU_add_test(s, "shapes and classes from the file", test_shapes_and_classes_from_the_file) &&
            CU_add_test(s, "write failure leaves nothing", test_write_failure_leaves_nothing) &&
            CU_add_test(s, "h5py layouts and dataset names", test_h5py_layouts_and_names))
               ? 0
               : -1;
}

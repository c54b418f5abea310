/* make_bad_h5: writes the malformed HDF5 inputs that bad_input_test.sh feeds
 * to the real binary (and tools/fuzz uses as seeds): image sets with missing
 * datasets, wrong types, wrong shapes or disagreeing row counts, and
 * checkpoints derived from a valid one (wrong version, lying layer sizes,
 * wrong tensor shapes, flipped bytes, widths MNIST cannot use). Also writes
 * valid files as well, so the test can show the bases are accepted:
 * h5-good.h5 (an image set made here), ok-images.h5 (one as convert writes
 * it) and ok-ckpt-784-1-10.h5 (a checkpoint of the smallest model).
 * usage: make_bad_h5 OUT_DIR GOOD_CKPT.h5   (exit 0, or 1 with a message) */
#define _POSIX_C_SOURCE 200809L
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mnist/ckpt.h"
#include "mnist/model.h"
#include "mnist/optim.h"
#include "mnist/data.h"
#include "mnist/h5data.h"
#include "mnist/h5util.h"

enum { ROWS = 64 };

static const char *g_dir;

static _Noreturn void die(const char *what, const char *name)
{
    fprintf(stderr, "make_bad_h5: %s: %s\n", name, what);
    exit(1);
}

static void path_of(char *buf, size_t size, const char *name)
{
    if (snprintf(buf, size, "%s/%s", g_dir, name) >= (int)size)
        die("path too long", name);
}

static hid_t file_new(const char *name)
{
    char path[4096];
    path_of(path, sizeof path, name);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0)
        die("cannot create", name);
    return f;
}

/* A dataset of the given type and shape (chunked by rows when chunk_rows >
 * 0), filled with small values (i % 10) so labels and pixels are in range
 * unless the caller says otherwise. */
static void dset(hid_t f, const char *name, hid_t type, int nd, const hsize_t *dims, int chunk_rows)
{
    size_t n = 1;
    for (int i = 0; i < nd; i++)
        n *= dims[i];
    size_t item = H5Tget_size(type);
    unsigned char *buf = calloc(n ? n * item : 1, 1);
    if (!buf)
        die("out of memory", name);
    for (size_t i = 0; i < n; i++) {
        if (H5Tget_class(type) == H5T_FLOAT)
            ((float *)buf)[i] = (float)(i % 10); /* only float32 is used */
        else
            buf[i * item] = (unsigned char)(i % 10); /* little-endian low byte */
    }
    hid_t space = H5Screate_simple(nd, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (chunk_rows > 0) {
        hsize_t chunk[3] = {(hsize_t)chunk_rows, nd > 1 ? dims[1] : 1, nd > 2 ? dims[2] : 1};
        H5Pset_chunk(dcpl, nd, chunk);
        H5Pset_deflate(dcpl, 1);
    }
    hid_t d = H5Dcreate2(f, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (d < 0 || (n && H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0))
        die("cannot write dataset", name);
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(space);
    free(buf);
}

/* A chunked uint8 dataset of the given shape whose chunks are never written:
 * HDF5 would read it back as zeros. */
static void unwritten(hid_t f, const char *name, int nd, const hsize_t *dims, hsize_t chunk_rows)
{
    hsize_t chunk[2] = {chunk_rows, nd > 1 ? dims[1] : 1};
    hid_t space = H5Screate_simple(nd, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, nd, chunk);
    H5Pset_deflate(dcpl, 1);
    hid_t d = H5Dcreate2(f, name, H5T_STD_U8LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (d < 0)
        die("cannot create dataset", name);
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(space);
}

/* An image set: /images of itype [irows, icols] (icols 0: 1-D; a third
 * dim when idepth > 0) and, when ltype >= 0, /labels of ltype [lrows]. */
static void image_set(const char *name, hid_t itype, hsize_t irows, hsize_t icols, hsize_t idepth,
                      hid_t ltype, hsize_t lrows)
{
    hid_t f = file_new(name);
    hsize_t idims[3] = {irows, icols, idepth};
    int ind = icols == 0 ? 1 : idepth == 0 ? 2 : 3;
    if (itype >= 0)
        dset(f, "images", itype, ind, idims, irows ? 16 : 0);
    if (ltype >= 0) {
        hsize_t ldims[1] = {lrows};
        dset(f, "labels", ltype, 1, ldims, 0);
    }
    h5_attr_write_str(f, "format", "mnist-dist images");
    H5Fclose(f);
}

static void image_sets(void)
{
    const hid_t u8 = H5T_STD_U8LE;
    image_set("h5-good.h5", u8, ROWS, MNIST_PIXELS, 0, u8, ROWS);
    /* As `mnist-dist convert` writes it (checksummed metadata). */
    {
        Dataset d = {.images = calloc(ROWS, MNIST_PIXELS), .labels = calloc(ROWS, 1), .rows = ROWS,
                     .shape = {MNIST_SIDE, MNIST_SIDE, 1}, .classes = 10};
        Error e;
        char path[4096];
        path_of(path, sizeof path, "ok-images.h5");
        for (size_t i = 0; d.images && d.labels && i < ROWS; i++)
            d.labels[i] = (uint8_t)(i % 10), d.images[i * MNIST_PIXELS + i] = 255;
        if (!d.images || !d.labels || h5data_write(path, &d, "make_bad_h5", &e) != 0)
            die("cannot write", path);
        dataset_free(&d);
    }
    image_set("h5-no-images.h5", -1, 0, 0, 0, u8, ROWS);
    image_set("h5-no-datasets.h5", -1, 0, 0, 0, -1, 0);
    image_set("h5-images-float32.h5", H5T_IEEE_F32LE, ROWS, MNIST_PIXELS, 0, u8, ROWS);
    image_set("h5-images-int8.h5", H5T_STD_I8LE, ROWS, MNIST_PIXELS, 0, u8, ROWS);
    image_set("h5-images-u16.h5", H5T_STD_U16LE, ROWS, MNIST_PIXELS, 0, u8, ROWS);
    image_set("h5-labels-int32.h5", u8, ROWS, MNIST_PIXELS, 0, H5T_STD_I32LE, ROWS);
    image_set("h5-images-783-cols.h5", u8, ROWS, MNIST_PIXELS - 1, 0, u8, ROWS);
    image_set("h5-images-3d.h5", u8, ROWS, MNIST_SIDE, MNIST_SIDE, u8, ROWS);
    image_set("h5-images-1d.h5", u8, ROWS * MNIST_PIXELS, 0, 0, u8, ROWS);
    image_set("h5-rows-mismatch.h5", u8, ROWS, MNIST_PIXELS, 0, u8, ROWS - 1);
    image_set("h5-zero-rows.h5", u8, 0, MNIST_PIXELS, 0, u8, 0);

    /* Labels 2-D [ROWS, 1]. */
    hid_t f = file_new("h5-labels-2d.h5");
    hsize_t idims[2] = {ROWS, MNIST_PIXELS}, ldims[2] = {ROWS, 1};
    dset(f, "images", u8, 2, idims, 16);
    dset(f, "labels", u8, 2, ldims, 0);
    H5Fclose(f);

    /* /images is a group, not a dataset. */
    f = file_new("h5-images-is-group.h5");
    hid_t g = H5Gcreate2(f, "images", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(g);
    hsize_t l1[1] = {ROWS};
    dset(f, "labels", u8, 1, l1, 0);
    H5Fclose(f);

    /* Right shapes and types, but the images were never written. */
    f = file_new("h5-unwritten-images.h5");
    unwritten(f, "images", 2, idims, 16);
    dset(f, "labels", u8, 1, l1, 0);
    H5Fclose(f);

    /* 2^40 rows claimed by a 2 KB file: nothing may be allocated for them. */
    f = file_new("h5-huge-rows.h5");
    const hsize_t huge[2] = {(hsize_t)1 << 40, MNIST_PIXELS};
    unwritten(f, "images", 2, huge, 1024);
    unwritten(f, "labels", 1, huge, 65536);
    H5Fclose(f);

    /* A label of 12 in row 40 (right type and shape: only the values are bad). */
    f = file_new("h5-label-12.h5");
    dset(f, "images", u8, 2, idims, 16);
    uint8_t labels[ROWS];
    for (int i = 0; i < ROWS; i++)
        labels[i] = (uint8_t)(i % 10);
    labels[40] = 12;
    hid_t space = H5Screate_simple(1, l1, NULL);
    hid_t d = H5Dcreate2(f, "labels", u8, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d < 0 || H5Dwrite(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, labels) < 0)
        die("cannot write labels", "h5-label-12.h5");
    H5Dclose(d);
    H5Sclose(space);
    H5Fclose(f);
}

/* ---- checkpoints ------------------------------------------------------ */

static unsigned char *g_ckpt; /* the valid checkpoint's bytes */
static size_t g_ckpt_bytes;

static void load_good(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("cannot open", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    g_ckpt = malloc((size_t)n);
    if (n <= 0 || !g_ckpt || fread(g_ckpt, 1, (size_t)n, f) != (size_t)n)
        die("cannot read", path);
    g_ckpt_bytes = (size_t)n;
    fclose(f);
}

/* Copies the valid checkpoint to name and opens the copy read-write. */
static hid_t ckpt_copy(const char *name)
{
    char path[4096];
    path_of(path, sizeof path, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(g_ckpt, 1, g_ckpt_bytes, f) != g_ckpt_bytes || fclose(f) != 0)
        die("cannot write", name);
    hid_t h = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (h < 0)
        die("cannot reopen", name);
    return h;
}

static void attr_replace(hid_t obj, const char *name, hid_t ftype, hid_t mtype, int n,
                         const void *v)
{
    if (H5Aexists(obj, name) > 0)
        H5Adelete(obj, name);
    if (h5_attr_write(obj, name, ftype, mtype, n, v) != 0)
        die("cannot write attribute", name);
}

static void ckpt_with_i64(const char *name, const char *attr, int64_t v)
{
    hid_t f = ckpt_copy(name);
    attr_replace(f, attr, H5T_STD_I64LE, H5T_NATIVE_INT64, 0, &v);
    H5Fclose(f);
}

static void ckpt_with_layers(const char *name, int n, const int *sizes)
{
    hid_t f = ckpt_copy(name);
    attr_replace(f, "layer_sizes", H5T_STD_I32LE, H5T_NATIVE_INT, n, sizes);
    H5Fclose(f);
}

/* Replaces dataset path (under the file) with a float32 one of shape dims. */
static void ckpt_with_tensor(const char *name, const char *path, int nd, const hsize_t *dims)
{
    hid_t f = ckpt_copy(name);
    if (H5Ldelete(f, path, H5P_DEFAULT) < 0)
        die("cannot delete", path);
    dset(f, path, H5T_IEEE_F32LE, nd, dims, 0);
    H5Fclose(f);
}

/* Copies the valid checkpoint to name and replaces each of the n dataset
 * paths with a float32 one of dims[i] that is chunked and checksummed like the
 * real ones but never written: its shape is right, its data absent. With
 * sizes, layer_sizes becomes sizes[0..nsizes). */
static void ckpt_with_unwritten(const char *name, int n, const char *const *paths,
                                const hsize_t (*dims)[2], const int *nd, int nsizes,
                                const int *sizes)
{
    hid_t f = ckpt_copy(name);
    if (sizes)
        attr_replace(f, "layer_sizes", H5T_STD_I32LE, H5T_NATIVE_INT, nsizes, sizes);
    for (int i = 0; i < n; i++) {
        if (H5Ldelete(f, paths[i], H5P_DEFAULT) < 0)
            die("cannot delete", paths[i]);
        hsize_t chunk[2] = {dims[i][0] < 64 ? dims[i][0] : 64, nd[i] == 2 ? dims[i][1] : 1};
        if (nd[i] == 2 && chunk[1] > 1024)
            chunk[1] = 1024;
        hid_t space = H5Screate_simple(nd[i], dims[i], NULL);
        hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_chunk(dcpl, nd[i], chunk);
        H5Pset_fletcher32(dcpl);
        hid_t d = H5Dcreate2(f, paths[i], H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        if (d < 0)
            die("cannot create", paths[i]);
        H5Dclose(d);
        H5Pclose(dcpl);
        H5Sclose(space);
    }
    H5Fclose(f);
}

static void ckpt_without(const char *name, const char *path)
{
    hid_t f = ckpt_copy(name);
    if (H5Ldelete(f, path, H5P_DEFAULT) < 0)
        die("cannot delete", path);
    H5Fclose(f);
}

/* Flips one byte in the middle of dataset path's (first) chunk: the
 * Fletcher-32 checksum must catch it. */
static void ckpt_flipped(const char *name, const char *path)
{
    hid_t f = ckpt_copy(name);
    hid_t d = H5Dopen2(f, path, H5P_DEFAULT);
    hid_t s = d >= 0 ? H5Dget_space(d) : H5I_INVALID_HID;
    hsize_t off[2] = {0, 0};
    unsigned mask = 0;
    haddr_t addr = HADDR_UNDEF;
    hsize_t size = 0;
    if (s < 0 || H5Dget_chunk_info(d, s, 0, off, &mask, &addr, &size) < 0 || size < 8)
        die("cannot locate the chunk of", path);
    H5Sclose(s);
    H5Dclose(d);
    H5Fclose(f);
    char file[4096];
    path_of(file, sizeof file, name);
    FILE *fp = fopen(file, "r+b");
    long at = (long)(addr + size / 2);
    int c;
    if (!fp || fseek(fp, at, SEEK_SET) != 0 || (c = fgetc(fp)) == EOF ||
        fseek(fp, at, SEEK_SET) != 0 || fputc(c ^ 0x5a, fp) == EOF || fclose(fp) != 0)
        die("cannot flip a byte in", file);
}

/* A self-consistent checkpoint (written as the trainer writes them now) of
 * the MLP of widths sizes; with 784 inputs, of 28 x 28 images. */
static void ckpt_fresh(const char *name, const int *sizes, int L)
{
    Model m;
    Error e;
    if (model_create_mlp(&m, sizes, L, 0.0f, 1, &e) != 0)
        die(e.msg, name);
    for (size_t k = 0; k < m.param_floats; k++)
        m.params[k] = 0.01f * (float)(k % 7);
    if (sizes[0] == MNIST_PIXELS) /* an image model, as the trainer builds it */
        m.input = (Shape){MNIST_SIDE, MNIST_SIDE, 1};
    Optimizer opt;
    const OptimConfig oc = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
    if (optim_create(&opt, &oc, m.param_floats, m.tensors, m.num_tensors, &e) != 0)
        die(e.msg, name);
    opt.adam.t = 10;
    History h = {0};
    EpochStats st = {1, 1.0, 0.5, 1.0, 0.5, 1.0, 1000.0};
    CkptMeta meta = {.epoch = 1, .seed = 42};
    char path[4096];
    path_of(path, sizeof path, name);
    if (history_push(&h, &st, &e) != 0 || ckpt_write(path, &m, &opt, &meta, &h, "{}", &e) != 0)
        die(e.msg, name);
    history_free(&h);
    optim_free(&opt);
    model_free(&m);
}

static void checkpoints(const char *good)
{
    load_good(good);
    ckpt_with_i64("ckpt-version-3.h5", "format_version", 3);
    ckpt_with_i64("ckpt-version-0.h5", "format_version", 0);
    ckpt_with_i64("ckpt-epoch-negative.h5", "epoch", -1);
    ckpt_with_i64("ckpt-epoch-3.h5", "epoch", 3); /* the history holds 2 */
    hid_t f = ckpt_copy("ckpt-no-format.h5");
    H5Adelete(f, "format");
    H5Fclose(f);

    /* The valid file is 784-8-10. */
    ckpt_with_layers("ckpt-layers-lie.h5", 3, (const int[]){784, 9, 10});
    ckpt_with_layers("ckpt-layers-extra.h5", 4, (const int[]){784, 8, 10, 10});
    ckpt_with_layers("ckpt-layers-one.h5", 1, (const int[]){784});
    ckpt_with_layers("ckpt-layers-zero.h5", 3, (const int[]){784, 0, 10});
    /* Claims a 784-1048576-10 model (about 17 GB of arena) in a 136 KB file. */
    ckpt_with_layers("ckpt-layers-huge.h5", 3, (const int[]){784, 1 << 20, 10});
    ckpt_with_tensor("ckpt-bias-shape.h5", "model/dense1/b", 1, (const hsize_t[]){11});
    ckpt_with_tensor("ckpt-weight-transposed.h5", "model/dense0/W", 2, (const hsize_t[]){8, 784});
    ckpt_with_tensor("ckpt-adam-shape.h5", "adam/v/dense0/W", 2, (const hsize_t[]){784, 9});
    /* Right shape, but contiguous: no checksum to verify. */
    ckpt_with_tensor("ckpt-no-checksum.h5", "model/dense1/b", 1, (const hsize_t[]){10});
    /* Right shape and checksum filter, but the chunk was never written. */
    ckpt_with_unwritten("ckpt-unwritten-bias.h5", 1, (const char *const[]){"model/dense1/b"},
                        (const hsize_t[][2]){{10, 0}}, (const int[]){1}, 0, NULL);
    /* A 784-200000-10 model whose /model tensors have consistent shapes but no
     * data: the 136 KB file is far too small for the 2.5 GB layer_sizes claim. */
    ckpt_with_unwritten("ckpt-unwritten-huge.h5", 3,
                        (const char *const[]){"model/dense0/W", "model/dense0/b", "model/dense1/W"},
                        (const hsize_t[][2]){{784, 200000}, {200000, 0}, {200000, 10}},
                        (const int[]){2, 1, 2}, 3, (const int[]){784, 200000, 10});
    ckpt_without("ckpt-missing-weight.h5", "model/dense1/W");
    ckpt_without("ckpt-missing-adam.h5", "adam/m");
    ckpt_without("ckpt-missing-history.h5", "history/val_acc");
    ckpt_flipped("ckpt-flipped-weight.h5", "model/dense0/W");
    ckpt_flipped("ckpt-flipped-bias.h5", "model/dense0/b");
    ckpt_flipped("ckpt-flipped-adam.h5", "adam/v/dense1/W");
    ckpt_flipped("ckpt-flipped-history.h5", "history/train_loss");

    /* A valid checkpoint of the smallest model (a small fuzzing seed). */
    ckpt_fresh("ok-ckpt-784-1-10.h5", (const int[]){784, 1, 10}, 2);
    /* Internally consistent, but not for 28 x 28, 10-class data. */
    ckpt_fresh("ckpt-input-800.h5", (const int[]){800, 8, 10}, 2);
    ckpt_fresh("ckpt-output-12.h5", (const int[]){784, 8, 12}, 2);
    free(g_ckpt);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: make_bad_h5 OUT_DIR GOOD_CKPT.h5\n");
        return 2;
    }
    g_dir = argv[1];
    h5_quiet();
    image_sets();
    checkpoints(argv[2]);
    return 0;
}

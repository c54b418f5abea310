/* h5data: reading and writing image sets in HDF5. Every HDF5 return is
 * checked and turned into one message naming the file; HDF5's own error
 * stack is silenced. No MPI calls: parallel access comes in through fapl. */
#define _GNU_SOURCE
#include "mnist/h5data.h"
#include "mnist/h5util.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FORMAT_NAME "mnist-dist images"
#define FORMAT_VERSION 1
#define CHUNK_ROWS 1024

/* 1 if dataset id holds unsigned 8-bit integers. */
static int is_u8(hid_t dset)
{
    hid_t t = H5Dget_type(dset);
    if (t < 0)
        return 0;
    int ok = H5Tget_class(t) == H5T_INTEGER && H5Tget_size(t) == 1 && H5Tget_sign(t) == H5T_SGN_NONE;
    H5Tclose(t);
    return ok;
}

/* Rank and dims of a dataset; -1 on failure. */
static int dims_of(hid_t dset, hsize_t dims[2])
{
    hid_t s = H5Dget_space(dset);
    if (s < 0)
        return -1;
    int nd = H5Sget_simple_extent_ndims(s);
    if (nd >= 1 && nd <= 2)
        H5Sget_simple_extent_dims(s, dims, NULL);
    H5Sclose(s);
    return nd;
}

int h5data_open(H5Data *h, const char *path, hid_t fapl, Error *e)
{
    memset(h, 0, sizeof *h);
    h->file = h->images = h->labels = H5I_INVALID_HID;
    snprintf(h->path, sizeof h->path, "%s", path);
    if (access(path, R_OK) != 0) {
        err_set(e, "%s: cannot open: %s%s", path, strerror(errno),
                errno == ENOENT ? " (run tools/fetch-mnist, or `mnist-dist convert IN.csv OUT.h5`)" : "");
        return -1;
    }
    h->file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    if (h->file < 0) {
        size_t n = strlen(path);
        int csv = n > 4 && strcmp(path + n - 4, ".csv") == 0;
        err_set(e, "%s: not an HDF5 file%s", path,
                csv ? " (convert it first: mnist-dist convert IN.csv OUT.h5)" : " (or unreadable)");
        goto fail;
    }
    if (H5Lexists(h->file, "images", H5P_DEFAULT) <= 0) {
        err_set(e, "%s: no /images dataset (expected uint8 [N,784]; make one with `mnist-dist convert`)", path);
        goto fail;
    }
    h->images = H5Dopen2(h->file, "images", H5P_DEFAULT);
    hsize_t dims[2] = {0, 0};
    if (h->images < 0 || dims_of(h->images, dims) != 2 || dims[1] != MNIST_PIXELS) {
        err_set(e, "%s: /images must be a 2-D [N,%d] dataset, found shape [%llu,%llu]", path,
                MNIST_PIXELS, (unsigned long long)dims[0], (unsigned long long)dims[1]);
        goto fail;
    }
    if (!is_u8(h->images)) {
        err_set(e, "%s: /images must hold unsigned 8-bit integers", path);
        goto fail;
    }
    h->rows = dims[0];
    if (h->rows == 0) {
        err_set(e, "%s: /images has no rows", path);
        goto fail;
    }
    htri_t has = H5Lexists(h->file, "labels", H5P_DEFAULT);
    if (has > 0) {
        h->labels = H5Dopen2(h->file, "labels", H5P_DEFAULT);
        hsize_t ld[2] = {0, 0};
        if (h->labels < 0 || dims_of(h->labels, ld) != 1 || !is_u8(h->labels)) {
            err_set(e, "%s: /labels must be a 1-D uint8 dataset", path);
            goto fail;
        }
        if (ld[0] != h->rows) {
            err_set(e, "%s: /labels has %llu rows but /images has %zu", path,
                    (unsigned long long)ld[0], h->rows);
            goto fail;
        }
        h->has_labels = 1;
    }
    return 0;
fail:
    h5data_close(h);
    return -1;
}

static int read_rows(hid_t dset, size_t first, size_t count, size_t width, void *buf)
{
    hsize_t start[2] = {first, 0}, cnt[2] = {count, width};
    int nd = width ? 2 : 1;
    if (!width)
        cnt[0] = count;
    hid_t fs = H5Dget_space(dset);
    hid_t ms = H5Screate_simple(nd, cnt, NULL);
    int rc = -1;
    if (fs >= 0 && ms >= 0 &&
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL) >= 0 &&
        H5Dread(dset, H5T_NATIVE_UINT8, ms, fs, H5P_DEFAULT, buf) >= 0)
        rc = 0;
    if (ms >= 0)
        H5Sclose(ms);
    if (fs >= 0)
        H5Sclose(fs);
    return rc;
}

int h5data_read(H5Data *h, size_t first, size_t count, Dataset *out, Error *e)
{
    memset(out, 0, sizeof *out);
    if (first > h->rows || count > h->rows - first)
        return err_set(e, "%s: rows %zu..%zu requested but the file has %zu", h->path, first,
                       first + count, h->rows);
    out->rows = count;
    out->images = malloc(count * MNIST_PIXELS + 1);
    if (h->has_labels)
        out->labels = malloc(count + 1);
    if (!out->images || (h->has_labels && !out->labels)) {
        dataset_free(out);
        return err_set(e, "%s: out of memory reading %zu rows", h->path, count);
    }
    if (count == 0)
        return 0;
    if (read_rows(h->images, first, count, MNIST_PIXELS, out->images) != 0 ||
        (h->has_labels && read_rows(h->labels, first, count, 0, out->labels) != 0)) {
        dataset_free(out);
        return err_set(e, "%s: cannot read rows %zu..%zu", h->path, first, first + count);
    }
    if (h->has_labels)
        for (size_t i = 0; i < count; i++)
            if (out->labels[i] >= MNIST_CLASSES) {
                int bad = out->labels[i];
                dataset_free(out);
                return err_set(e, "%s: /labels[%zu] = %d is outside 0..9", h->path, first + i, bad);
            }
    return 0;
}

void h5data_close(H5Data *h)
{
    if (h->labels >= 0)
        H5Dclose(h->labels);
    if (h->images >= 0)
        H5Dclose(h->images);
    if (h->file >= 0)
        H5Fclose(h->file);
    h->file = h->images = h->labels = H5I_INVALID_HID;
}

/* Creates a chunked, deflated uint8 dataset of the given shape and writes buf. */
static int write_u8(hid_t file, const char *name, int nd, const hsize_t *dims, const void *buf)
{
    hsize_t chunk[2] = {dims[0] < CHUNK_ROWS ? dims[0] : CHUNK_ROWS, nd == 2 ? dims[1] : 0};
    if (nd == 1)
        chunk[0] = dims[0] < 64 * CHUNK_ROWS ? dims[0] : 64 * CHUNK_ROWS;
    if (chunk[0] == 0)
        chunk[0] = 1;
    hid_t space = H5Screate_simple(nd, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t dset = H5I_INVALID_HID;
    int rc = -1;
    if (space < 0 || dcpl < 0 || H5Pset_chunk(dcpl, nd, chunk) < 0 || H5Pset_deflate(dcpl, 1) < 0)
        goto out;
    dset = H5Dcreate2(file, name, H5T_STD_U8LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (dset < 0)
        goto out;
    if (dims[0] > 0 && H5Dwrite(dset, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        goto out;
    rc = 0;
out:
    if (dset >= 0)
        H5Dclose(dset);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (space >= 0)
        H5Sclose(space);
    return rc;
}

int h5data_write(const char *path, const Dataset *d, const char *source, Error *e)
{
    char tmp[4096];
    if (path_tmp_name(tmp, sizeof tmp, path, e))
        return -1;
    hid_t file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (file < 0)
        return err_set(e, "%s: cannot create HDF5 file (is the directory writable?)", path);
    hsize_t idims[2] = {d->rows, MNIST_PIXELS}, ldims[1] = {d->rows};
    const uint64_t version = FORMAT_VERSION, rows = d->rows;
    int ok = write_u8(file, "images", 2, idims, d->images) == 0 &&
             (!d->labels || write_u8(file, "labels", 1, ldims, d->labels) == 0) &&
             h5_attr_write_str(file, "format", FORMAT_NAME) == 0 &&
             h5_attr_write(file, "format_version", H5T_STD_U64LE, H5T_NATIVE_UINT64, 0, &version) == 0 &&
             h5_attr_write(file, "rows", H5T_STD_U64LE, H5T_NATIVE_UINT64, 0, &rows) == 0 &&
             h5_attr_write_str(file, "source", source ? source : "") == 0;
    if (H5Fclose(file) < 0)
        ok = 0;
    if (!ok) {
        unlink(tmp);
        return err_set(e, "%s: cannot write HDF5 data (disk full?)", path);
    }
    return path_commit(tmp, path, e);
}

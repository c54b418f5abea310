/* h5data: reading and writing image sets in HDF5 (layout: README,
 * "Data files"). Every HDF5 return is
 * checked and turned into one message naming the file; HDF5's own error
 * stack is silenced. No MPI calls: parallel access comes in through fapl. */
#define _GNU_SOURCE
#include "mnist/h5data.h"
#include "mnist/h5safe.h"
#include "mnist/h5util.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FORMAT_NAME "mnist-dist images"
#define FORMAT_VERSION 1
#define CHUNK_ROWS 1024

/* What dataset dset holds, as this reader sees it. */
enum { T_OTHER, T_U8, T_F32, T_I32, T_I64 };
static int elem_kind(hid_t dset)
{
    hid_t t = H5Dget_type(dset);
    if (t < 0)
        return T_OTHER;
    const H5T_class_t cls = H5Tget_class(t);
    const size_t size = H5Tget_size(t);
    const H5T_sign_t sign = cls == H5T_INTEGER ? H5Tget_sign(t) : H5T_SGN_ERROR;
    H5Tclose(t);
    if (cls == H5T_INTEGER && size == 1 && sign == H5T_SGN_NONE)
        return T_U8;
    if (cls == H5T_INTEGER && size == 4 && sign == H5T_SGN_2)
        return T_I32;
    if (cls == H5T_INTEGER && size == 8 && sign == H5T_SGN_2)
        return T_I64;
    if (cls == H5T_FLOAT && size == 4)
        return T_F32;
    return T_OTHER;
}

/* NumPy's name of dset's element type ("uint8", "float64", "int32
 * big-endian", "a string"), for messages. */
static void type_str(hid_t dset, char *buf, size_t size)
{
    hid_t t = H5Dget_type(dset);
    const H5T_class_t cls = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
    const size_t bytes = t >= 0 ? H5Tget_size(t) : 0;
    const int big = t >= 0 && bytes > 1 && H5Tget_order(t) == H5T_ORDER_BE;
    if (cls == H5T_INTEGER)
        snprintf(buf, size, "%sint%zu%s", H5Tget_sign(t) == H5T_SGN_NONE ? "u" : "", 8 * bytes,
                 big ? " big-endian" : "");
    else if (cls == H5T_FLOAT)
        snprintf(buf, size, "float%zu%s", 8 * bytes, big ? " big-endian" : "");
    else
        snprintf(buf, size, "%s", cls == H5T_STRING     ? "strings"
                                  : cls == H5T_ENUM     ? "an enum (h5py's bool?)"
                                  : cls == H5T_COMPOUND ? "a compound type"
                                  : cls == H5T_ARRAY    ? "an array type"
                                  : cls == H5T_BITFIELD ? "a bitfield"
                                  : cls == H5T_OPAQUE   ? "an opaque type"
                                  : cls == H5T_REFERENCE ? "references"
                                  : cls == H5T_VLEN     ? "variable-length sequences"
                                                        : "an unreadable type");
    if (t >= 0)
        H5Tclose(t);
}

static void shape_str(hid_t dset, char *buf, size_t size);

/* Rank and dims of a dataset (dims gets up to the first four); -1 on failure. */
static int dims_of(hid_t dset, hsize_t dims[4])
{
    hid_t s = H5Dget_space(dset);
    if (s < 0)
        return -1;
    int nd = H5Sget_simple_extent_ndims(s);
    hsize_t all[H5S_MAX_RANK];
    if (nd >= 1 && nd <= H5S_MAX_RANK && H5Sget_simple_extent_dims(s, all, NULL) == nd)
        for (int i = 0; i < 4; i++)
            dims[i] = i < nd ? all[i] : 0;
    H5Sclose(s);
    return nd;
}

/* The image shape of /images with dims[0..nd): [N,H,W], [N,H,W,C], or [N,P]
 * with P pixels of a square grey image, or the shape its height, width and
 * channels attributes declare. 0, or -1 with e saying what is accepted. */
static int image_shape(hid_t file, hid_t images, int nd, const hsize_t *dims, const char *path,
                       const char *name, Shape *out, Error *e)
{
    char shape[128], type[64];
    const hsize_t limit = 1 << 14;
    if (nd == 3 || nd == 4) {
        if (dims[1] >= 1 && dims[1] <= limit && dims[2] >= 1 && dims[2] <= limit &&
            (nd == 3 || (dims[3] >= 1 && dims[3] <= 4))) {
            *out = (Shape){(int)dims[1], (int)dims[2], nd == 4 ? (int)dims[3] : 1};
            return 0;
        }
    } else if (nd == 2 && dims[1] >= 1 && dims[1] <= limit * limit) {
        int hwc[3] = {0, 0, 0};
        if (h5_attr_read(images, "height", H5T_NATIVE_INT, 1, &hwc[0], NULL) == 0 ||
            h5_attr_read(file, "height", H5T_NATIVE_INT, 1, &hwc[0], NULL) == 0) {
            hid_t at = H5Aexists(images, "width") > 0 ? images : file;
            hwc[2] = 1;
            if (h5_attr_read(at, "width", H5T_NATIVE_INT, 1, &hwc[1], NULL) != 0 ||
                (H5Aexists(at, "channels") > 0 &&
                 h5_attr_read(at, "channels", H5T_NATIVE_INT, 1, &hwc[2], NULL) != 0) ||
                hwc[0] < 1 || hwc[1] < 1 || hwc[2] < 1 || hwc[2] > 4 ||
                (hsize_t)hwc[0] * (hsize_t)hwc[1] * (hsize_t)hwc[2] != dims[1])
                return err_set(e, "%s: /%s rows hold %llu values but its height, width and "
                                  "channels attributes say %dx%dx%d", path, name,
                               (unsigned long long)dims[1], hwc[0], hwc[1], hwc[2]);
            *out = (Shape){hwc[0], hwc[1], hwc[2]};
            return 0;
        }
        hsize_t side = 1;
        while (side * side < dims[1])
            side++;
        if (side * side == dims[1]) {
            *out = (Shape){(int)side, (int)side, 1};
            return 0;
        }
    }
    shape_str(images, shape, sizeof shape);
    type_str(images, type, sizeof type);
    return err_set(e, "%s: /%s must be [N,H,W], [N,H,W,C] (C <= 4) or [N,P] with P a square "
                      "number of pixels (or height/width attributes), found %s of %s (accepted: "
                      "uint8 0..255 or float32 0..1, e.g. [N,784], [N,28,28], [N,28,28,1])", path,
                   name, shape, type);
}

/* "[d0,d1,...]", "a scalar" or "no dataspace" for messages. */
static void shape_str(hid_t dset, char *buf, size_t size)
{
    hid_t s = H5Dget_space(dset);
    int nd = s >= 0 ? H5Sget_simple_extent_ndims(s) : -1;
    hsize_t all[H5S_MAX_RANK];
    if (nd == 0) {
        snprintf(buf, size, "a scalar");
    } else if (nd < 0 || nd > H5S_MAX_RANK || H5Sget_simple_extent_dims(s, all, NULL) != nd) {
        snprintf(buf, size, "an unreadable shape");
    } else {
        size_t o = 0;
        buf[0] = '\0';
        for (int i = 0; i < nd && o < size; i++)
            o += (size_t)snprintf(buf + o, size - o, "%s%llu", i ? "," : "shape [",
                                  (unsigned long long)all[i]);
        if (o < size)
            snprintf(buf + o, size - o, "]");
    }
    if (s >= 0)
        H5Sclose(s);
}

/* Checks that all of dataset name's rows x cols bytes are stored: every
 * chunk written (HDF5 would silently return zeros for a missing one), or the
 * contiguous block complete. Runs before anything is allocated for the rows,
 * so a damaged or hostile header cannot ask for more memory than the file
 * backs. */
static int check_stored(hid_t dset, const char *path, const char *name, int nd,
                        const hsize_t *shape, Error *e)
{
    hid_t dcpl = H5Dget_create_plist(dset);
    if (dcpl < 0)
        return err_set(e, "%s: cannot read the storage layout of /%s", path, name);
    hid_t type = H5Dget_type(dset);
    const hsize_t elem = type >= 0 && H5Tget_size(type) > 0 ? H5Tget_size(type) : 1;
    if (type >= 0)
        H5Tclose(type);
    hsize_t total = elem; /* bytes */
    for (int i = 0; i < nd; i++)
        total *= shape[i];
    const hsize_t rows = shape[0];
    int rc = 0;
    H5D_layout_t layout = H5Pget_layout(dcpl);
    if (layout == H5D_CHUNKED) {
        hsize_t chunk[4] = {0, 0, 0, 0}, have = 0, maxdims[4] = {0, 0, 0, 0};
        hsize_t dims[4] = {0, 0, 0, 0};
        hid_t space = H5Dget_space(dset);
        herr_t got = space < 0 ? -1 : H5Dget_num_chunks(dset, space, &have);
        if (got >= 0 && H5Sget_simple_extent_dims(space, dims, maxdims) != nd)
            got = -1;
        const int nd_chunk = H5Pget_chunk(dcpl, nd, chunk);
        /* libhdf5 does not check that a chunk fits the dataset's maximum
         * shape, and over-reads when a damaged layout says it does not
         * (found by tools/fuzz). 64 MiB is far above any chunk worth using
         * for image rows. */
        int fits = nd_chunk == nd;
        hsize_t chunk_bytes = elem;
        for (int i = 0; fits && i < nd; i++) {
            fits = chunk[i] >= 1 && (maxdims[i] == H5S_UNLIMITED || chunk[i] <= maxdims[i]) &&
                   chunk[i] <= ((hsize_t)64 << 20) / chunk_bytes;
            chunk_bytes *= fits ? chunk[i] : 1;
        }
        if (got < 0 || nd_chunk != nd) {
            rc = err_set(e, "%s: cannot read the chunk layout of /%s", path, name);
        } else if (!fits) {
            rc = err_set(e, "%s: /%s has chunks of [%llu,%llu] that do not fit its shape "
                            "[%llu,%llu] (damaged file)", path, name,
                         (unsigned long long)chunk[0], (unsigned long long)chunk[1],
                         (unsigned long long)maxdims[0], (unsigned long long)maxdims[1]);
        } else {
            hsize_t want = 1;
            for (int i = 0; i < nd; i++)
                want *= (shape[i] + chunk[i] - 1) / chunk[i];
            if (have < want)
                rc = err_set(e, "%s: /%s has %llu rows but only %llu of its %llu chunks are stored "
                                "(damaged or unfinished file)", path, name,
                             (unsigned long long)rows, (unsigned long long)have,
                             (unsigned long long)want);
            /* libhdf5 copies a whole chunk's worth out of a chunk stored
             * unfiltered (no filters, or all skipped by its filter mask)
             * whatever its recorded size (found by tools/fuzz), so such a
             * chunk must be exactly raw-sized; a filtered one cannot be much
             * larger than raw (deflate's worst case). Up to 1024 chunks are
             * checked: each lookup walks the chunk index. */
            const hsize_t raw = chunk_bytes;
            const int nf = H5Pget_nfilters(dcpl);
            const unsigned all = nf > 0 && nf < 32 ? (1u << nf) - 1 : 0;
            for (hsize_t k = 0; rc == 0 && k < have && k < 1024; k++) {
                hsize_t offset[2] = {0, 0}, bytes = 0;
                haddr_t addr = HADDR_UNDEF;
                unsigned mask = 0;
                if (H5Dget_chunk_info(dset, space, k, offset, &mask, &addr, &bytes) < 0) {
                    rc = err_set(e, "%s: damaged chunk index in /%s", path, name);
                } else if (nf <= 0 || (mask & all) == all ? bytes != raw
                                                           : bytes > raw + raw / 64 + 1024) {
                    rc = err_set(e, "%s: /%s: chunk %llu stores %llu bytes for %llu bytes of data "
                                    "(damaged file)", path, name, (unsigned long long)k,
                                 (unsigned long long)bytes, (unsigned long long)raw);
                }
            }
        }
        if (space >= 0)
            H5Sclose(space);
    } else if (layout == H5D_CONTIGUOUS) {
        hsize_t stored = H5Dget_storage_size(dset);
        if (stored < total)
            rc = err_set(e, "%s: /%s has %llu rows but stores only %llu of their %llu bytes "
                            "(damaged or unfinished file)", path, name, (unsigned long long)rows,
                         (unsigned long long)stored, (unsigned long long)total);
    } else if (layout == H5D_COMPACT) {
        /* libhdf5 copies the dataspace's worth out of the compact buffer
         * without checking the buffer holds that much. */
        hsize_t stored = H5Dget_storage_size(dset);
        if (stored != total)
            rc = err_set(e, "%s: /%s has %llu rows but its compact storage holds %llu bytes "
                            "(damaged file)", path, name, (unsigned long long)rows,
                         (unsigned long long)stored);
    } else {
        rc = err_set(e, "%s: /%s has an unsupported storage layout (virtual or unknown)", path,
                     name);
    }
    H5Pclose(dcpl);
    return rc;
}

/* The dataset names of h, from names (NULL or "": the defaults), without a
 * leading '/'. */
static void set_names(H5Data *h, const H5Names *names)
{
    const char *img = names && names->images && names->images[0] ? names->images : "images";
    const char *lab = names && names->labels && names->labels[0] ? names->labels : "labels";
    while (*img == '/')
        img++;
    while (*lab == '/')
        lab++;
    snprintf(h->images_name, sizeof h->images_name, "%s", img);
    snprintf(h->labels_name, sizeof h->labels_name, "%s", lab);
}

/* 1 if the link name (a path of groups, maybe) exists in file: every
 * intermediate group first, since H5Lexists fails on a missing one. */
static int link_exists(hid_t file, const char *name)
{
    char part[sizeof ((H5Data *)0)->images_name];
    for (const char *p = name;; p++) {
        if (*p == '/' || *p == '\0') {
            const size_t n = (size_t)(p - name);
            if (n == 0 || n >= sizeof part)
                return 0;
            memcpy(part, name, n);
            part[n] = '\0';
            if (H5Lexists(file, part, H5P_DEFAULT) <= 0)
                return 0;
            if (*p == '\0')
                return 1;
        }
    }
}

/* Opens and checks the images dataset of h->file: rank, shape, type, rows,
 * stored bytes. */
static int open_images(H5Data *h, const char *path, Error *e)
{
    const char *name = h->images_name;
    if (!link_exists(h->file, name))
        return err_set(e, "%s: no /%s dataset (expected uint8 [N,784]; make one with `mnist-dist "
                          "convert`%s)", path, name,
                       strcmp(name, "images") == 0 ? ", or name yours with --images-dataset" : "");
    h->images = H5Dopen2(h->file, name, H5P_DEFAULT);
    if (h->images < 0)
        return err_set(e, "%s: /%s is not a dataset (expected uint8 [N,H,W] or [N,P])", path, name);
    hsize_t dims[4] = {0, 0, 0, 0};
    char type[64], shape[128];
    type_str(h->images, type, sizeof type);
    h->nd = dims_of(h->images, dims);
    if (h->nd < 1 || h->nd > 4) /* a scalar or null dataspace, or one HDF5 cannot read */
        return err_set(e, "%s: /%s must be [N,H,W], [N,H,W,C] or [N,P], found %d dimensions of %s%s",
                       path, name, h->nd < 0 ? 0 : h->nd, type,
                       h->nd < 0 ? " (damaged dataspace)" : "");
    if (image_shape(h->file, h->images, h->nd, dims, path, name, &h->shape, e))
        return -1;
    const int kind = elem_kind(h->images);
    if (kind != T_U8 && kind != T_F32) {
        shape_str(h->images, shape, sizeof shape);
        return err_set(e, "%s: /%s must hold uint8 (0..255) or float32 (0..1) values, found %s "
                          "of %s", path, name, shape, type);
    }
    h->images_f32 = kind == T_F32;
    if (dims[0] > SIZE_MAX / shape_size(h->shape) / 8)
        return err_set(e, "%s: /%s claims %llu rows, more than this machine can address", path,
                       name, (unsigned long long)dims[0]);
    h->rows = dims[0];
    if (h->rows == 0)
        return err_set(e, "%s: /%s has no rows", path, name);
    return check_stored(h->images, path, name, h->nd, dims, e);
}

/* The class count: a classes attribute on the file, else on the labels
 * dataset (h5py users may put it there), else 10. */
static int read_classes(H5Data *h, const char *path, Error *e)
{
    h->classes = DATA_DEFAULT_CLASSES;
    hid_t cat = H5Aexists(h->file, "classes") > 0 ? h->file : H5I_INVALID_HID;
    int on_labels = 0;
    if (cat < 0 && link_exists(h->file, h->labels_name)) {
        hid_t l = H5Dopen2(h->file, h->labels_name, H5P_DEFAULT);
        if (l >= 0 && H5Aexists(l, "classes") > 0) {
            on_labels = 1;
            if (h5_attr_read(l, "classes", H5T_NATIVE_INT, 1, &h->classes, NULL) != 0)
                h->classes = -1;
        }
        if (l >= 0)
            H5Dclose(l);
    } else if (cat >= 0 && h5_attr_read(cat, "classes", H5T_NATIVE_INT, 1, &h->classes, NULL) != 0) {
        h->classes = -1;
    }
    h->declared = cat >= 0 || on_labels;
    if (h->classes < 2 || h->classes > DATA_MAX_CLASSES)
        return err_set(e, "%s: its classes attribute must be a count 2..%d", path, DATA_MAX_CLASSES);
    return 0;
}

/* Opens and checks the labels dataset, when there is one. */
static int open_labels(H5Data *h, const char *path, Error *e)
{
    const char *name = h->labels_name;
    if (!link_exists(h->file, name))
        return 0;
    h->labels = H5Dopen2(h->file, name, H5P_DEFAULT);
    if (h->labels < 0)
        return err_set(e, "%s: /%s is not a dataset (expected uint8, int32 or int64 [N])", path,
                       name);
    hsize_t ld[4] = {0, 0, 0, 0};
    const int kind = elem_kind(h->labels);
    if (dims_of(h->labels, ld) != 1 || (kind != T_U8 && kind != T_I32 && kind != T_I64)) {
        char shape[128], type[64];
        shape_str(h->labels, shape, sizeof shape);
        type_str(h->labels, type, sizeof type);
        return err_set(e, "%s: /%s must be a 1-D dataset of uint8, int32 or int64 labels, found %s "
                          "of %s", path, name, shape, type);
    }
    h->labels_u8 = kind == T_U8;
    if (ld[0] != h->rows)
        return err_set(e, "%s: /%s has %llu rows but /%s has %zu", path, name,
                       (unsigned long long)ld[0], h->images_name, h->rows);
    if (check_stored(h->labels, path, name, 1, ld, e))
        return -1;
    h->has_labels = 1;
    return 0;
}

int h5data_names_arg(char *buf, size_t size, const H5Names *names)
{
    H5Data h;
    set_names(&h, names);
    if (strchr(h.images_name, '\n') || strchr(h.labels_name, '\n'))
        return -1;
    return str_fmt(buf, size, "%s\n%s", h.images_name, h.labels_name);
}

int h5data_open_named(H5Data *h, const char *path, const H5Names *names, hid_t fapl, Error *e)
{
    memset(h, 0, sizeof *h);
    h->file = h->images = h->labels = H5I_INVALID_HID;
    snprintf(h->path, sizeof h->path, "%s", path);
    set_names(h, names);
    if (access(path, R_OK) != 0) {
        err_set(e, "%s: cannot open: %s%s", path, strerror(errno),
                errno == ENOENT ? " (run tools/fetch-mnist, or `mnist-dist convert IN.csv OUT.h5`)" : "");
        return -1;
    }
    const size_t n = strlen(path);
    const int csv = n > 4 && strcmp(path + n - 4, ".csv") == 0;
    if (h5_check_file(path, e) != 0) {
        if (csv)
            err_set(e, "%s: not an HDF5 file (convert it first: mnist-dist convert IN.csv OUT.h5)",
                    path);
        return -1;
    }
    char arg[2 * sizeof h->images_name + 2];
    if (h5data_names_arg(arg, sizeof arg, names) != 0)
        return err_set(e, "%s: dataset names may not contain a newline", path);
    if (h5safe_check_arg(path, "images", arg, e) != 0)
        return -1;
    h->file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    if (h->file < 0) {
        err_set(e, "%s: damaged HDF5 file (HDF5 cannot open it)", path);
        goto fail;
    }
    if (open_images(h, path, e) || read_classes(h, path, e) || open_labels(h, path, e))
        goto fail;
    return 0;
fail:
    h5data_close(h);
    return -1;
}

int h5data_open(H5Data *h, const char *path, hid_t fapl, Error *e)
{
    return h5data_open_named(h, path, NULL, fapl, e);
}

/* Rows [first, first + count) of an nd-dimensional dataset, as mem_type. */
static int read_rows(hid_t dset, int nd, size_t first, size_t count, hid_t mem_type, void *buf)
{
    hsize_t start[4] = {first, 0, 0, 0}, cnt[4] = {count, 0, 0, 0};
    hsize_t dims[4] = {0, 0, 0, 0};
    if (dims_of(dset, dims) != nd)
        return -1;
    for (int i = 1; i < nd; i++)
        cnt[i] = dims[i];
    hid_t fs = H5Dget_space(dset);
    hid_t ms = H5Screate_simple(nd, cnt, NULL);
    int rc = -1;
    if (fs >= 0 && ms >= 0 &&
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL) >= 0 &&
        H5Dread(dset, mem_type, ms, fs, H5P_DEFAULT, buf) >= 0)
        rc = 0;
    if (ms >= 0)
        H5Sclose(ms);
    if (fs >= 0)
        H5Sclose(fs);
    return rc;
}

/* Rows of float32 images read per block: at most 16 MiB of floats, so the
 * memory a rank needs stays its own rows as bytes plus one block. */
static size_t f32_block_rows(size_t px)
{
    const size_t rows = ((size_t)16 << 20) / (4 * px);
    return rows ? rows : 1;
}

/* Float32 rows [first, first + count) into out as round(255 v), each value
 * checked to lie in [0, 1]; 1 when a value does not (*bad_row, *bad_px,
 * *bad_value), -1 when HDF5 cannot read. */
static int read_f32_rows(const H5Data *h, size_t first, size_t count, uint8_t *out,
                         size_t *bad_row, size_t *bad_px, float *bad_value)
{
    const size_t px = shape_size(h->shape), block = f32_block_rows(px);
    float *buf = malloc(sizeof(float) * px * (count < block ? count : block) + 1);
    int rc = buf ? 0 : -1;
    for (size_t r = 0; rc == 0 && r < count; r += block) {
        const size_t n = count - r < block ? count - r : block;
        if (read_rows(h->images, h->nd, first + r, n, H5T_NATIVE_FLOAT, buf) != 0) {
            rc = -1;
            break;
        }
        for (size_t k = 0; k < n * px; k++) {
            const float v = buf[k];
            if (!(v >= 0.0f && v <= 1.0f)) {
                *bad_row = first + r + k / px, *bad_px = k % px, *bad_value = v;
                rc = 1;
                break;
            }
            out[r * px + k] = (uint8_t)(v * 255.0f + 0.5f);
        }
    }
    free(buf);
    return rc;
}

/* Labels rows [first, first + count) into out (bytes), each checked to lie
 * below the class count; 1 when one does not (*bad_row, *bad_value). */
static int read_labels(const H5Data *h, size_t first, size_t count, uint8_t *out,
                       size_t *bad_row, long long *bad_value)
{
    int64_t *wide = h->labels_u8 ? NULL : malloc(sizeof(int64_t) * count + 1);
    if (!h->labels_u8 && !wide)
        return -1;
    int rc = h->labels_u8 ? read_rows(h->labels, 1, first, count, H5T_NATIVE_UINT8, out)
                          : read_rows(h->labels, 1, first, count, H5T_NATIVE_INT64, wide);
    for (size_t i = 0; rc == 0 && i < count; i++) {
        const long long v = wide ? (long long)wide[i] : (long long)out[i];
        if (v < 0 || v >= h->classes) {
            *bad_row = first + i, *bad_value = v;
            rc = 1;
        } else {
            out[i] = (uint8_t)v;
        }
    }
    free(wide);
    return rc;
}

int h5data_read(H5Data *h, size_t first, size_t count, Dataset *out, Error *e)
{
    memset(out, 0, sizeof *out);
    if (first > h->rows || count > h->rows - first)
        return err_set(e, "%s: rows %zu..%zu requested but the file has %zu", h->path, first,
                       first + count, h->rows);
    out->rows = count;
    out->shape = h->shape;
    out->classes = h->classes;
    out->images = malloc(count * shape_size(h->shape) + 1);
    if (h->has_labels)
        out->labels = malloc(count + 1);
    if (!out->images || (h->has_labels && !out->labels)) {
        dataset_free(out);
        return err_set(e, "%s: out of memory reading %zu rows", h->path, count);
    }
    if (count == 0)
        return 0;
    size_t bad_row = 0, bad_px = 0;
    float bad_f = 0;
    long long bad_label = 0;
    const int img = h->images_f32 ? read_f32_rows(h, first, count, out->images, &bad_row, &bad_px,
                                                  &bad_f)
                                  : read_rows(h->images, h->nd, first, count, H5T_NATIVE_UINT8,
                                              out->images);
    const int lab = img == 0 && h->has_labels
                        ? read_labels(h, first, count, out->labels, &bad_row, &bad_label)
                        : 0;
    if (img == 0 && lab == 0)
        return 0;
    dataset_free(out);
    if (img == 1)
        return err_set(e, "%s: /%s[%zu] holds %g at pixel %zu (y %zu, x %zu): float32 images "
                          "must lie in 0..1 (store 0..255 values as uint8)", h->path,
                       h->images_name, bad_row, (double)bad_f, bad_px,
                       bad_px / ((size_t)h->shape.w * (size_t)h->shape.c),
                       bad_px / (size_t)h->shape.c % (size_t)h->shape.w);
    if (lab == 1)
        return err_set(e, "%s: /%s[%zu] = %lld is outside 0..%d%s", h->path, h->labels_name,
                       bad_row, bad_label, h->classes - 1,
                       h->declared ? ""
                                   : " (the file declares no class count, so 10 is assumed: set "
                                     "a classes attribute, or convert with --classes N)");
    return err_set(e, "%s: cannot read rows %zu..%zu", h->path, first, first + count);
}

/* Splits h5data_names_arg's "IMAGES\nLABELS" (NULL or "": the defaults). */
static void names_from_arg(const char *arg, char *img, char *lab, size_t size, H5Names *out)
{
    *out = (H5Names){NULL, NULL};
    const char *nl = arg ? strchr(arg, '\n') : NULL;
    if (!nl)
        return;
    snprintf(img, size, "%.*s", (int)(nl - arg), arg);
    snprintf(lab, size, "%s", nl + 1);
    *out = (H5Names){img, lab};
}

int h5data_walk(const char *path, const char *arg, Error *e)
{
    H5Data h;
    char img[sizeof h.images_name], lab[sizeof h.labels_name];
    H5Names names;
    names_from_arg(arg, img, lab, sizeof img, &names);
    if (h5data_open_named(&h, path, &names, H5P_DEFAULT, e))
        return -1;
    /* in blocks of at most 64 MiB, read with the reader's memory types, so a
     * valid set of any size is read in bounded memory */
    const size_t px = shape_size(h.shape), esize = h.images_f32 ? 4 : 1;
    const size_t block = px * esize < ((size_t)64 << 20) ? ((size_t)64 << 20) / (px * esize) : 1;
    uint8_t *buf = malloc(block * px * esize + 8 * block + 1);
    int rc = buf ? 0 : err_set(e, "%s: out of memory", path);
    for (size_t first = 0; rc == 0 && first < h.rows; first += block) {
        const size_t n = h.rows - first < block ? h.rows - first : block;
        if (read_rows(h.images, h.nd, first, n, h.images_f32 ? H5T_NATIVE_FLOAT : H5T_NATIVE_UINT8,
                      buf) != 0 ||
            (h.has_labels && read_rows(h.labels, 1, first, n,
                                       h.labels_u8 ? H5T_NATIVE_UINT8 : H5T_NATIVE_INT64, buf) != 0))
            rc = err_set(e, "%s: cannot read rows %zu..%zu", path, first, first + n);
    }
    free(buf);
    h5data_close(&h);
    return rc;
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
    /* Built in memory and written with write(): a full disk is a plain error. */
    hid_t file = h5_mem_file_create(path);
    if (file < 0)
        return err_set(e, "%s: cannot create the HDF5 file in memory", path);
    hsize_t idims[2] = {d->rows, dataset_pixels(d)}, ldims[1] = {d->rows};
    const uint64_t version = FORMAT_VERSION, rows = d->rows;
    const int classes = d->classes ? d->classes : DATA_DEFAULT_CLASSES;
    const int hwc[3] = {d->shape.h, d->shape.w, d->shape.c};
    int ok = write_u8(file, "images", 2, idims, d->images) == 0 &&
             (!d->labels || write_u8(file, "labels", 1, ldims, d->labels) == 0) &&
             h5_attr_write_str(file, "format", FORMAT_NAME) == 0 &&
             h5_attr_write(file, "format_version", H5T_STD_U64LE, H5T_NATIVE_UINT64, 0, &version) == 0 &&
             h5_attr_write(file, "rows", H5T_STD_U64LE, H5T_NATIVE_UINT64, 0, &rows) == 0 &&
             h5_attr_write(file, "height", H5T_STD_I32LE, H5T_NATIVE_INT, 0, &hwc[0]) == 0 &&
             h5_attr_write(file, "width", H5T_STD_I32LE, H5T_NATIVE_INT, 0, &hwc[1]) == 0 &&
             h5_attr_write(file, "channels", H5T_STD_I32LE, H5T_NATIVE_INT, 0, &hwc[2]) == 0 &&
             (!d->labels ||
              h5_attr_write(file, "classes", H5T_STD_I32LE, H5T_NATIVE_INT, 0, &classes) == 0) &&
             h5_attr_write_str(file, "source", source ? source : "") == 0;
    if (!ok) {
        H5Fclose(file);
        return err_set(e, "%s: cannot build the HDF5 data (out of memory?)", path);
    }
    return h5_mem_file_save(file, path, e);
}

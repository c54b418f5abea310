/* ckpt: HDF5 checkpoint writer and validating reader. One process writes
 * (the default sec2 driver); tensors are Fletcher-32-checksummed chunked
 * datasets. Never decides which rank writes, never prints. */
#define _GNU_SOURCE
#include "mnist/ckpt.h"
#include "mnist/data.h"
#include "mnist/h5util.h"

#include <dirent.h>
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- writing ---------------------------------------------------------- */

/* A chunked (one chunk), checksummed, 1-D or 2-D dataset. */
static int dset_write(hid_t loc, const char *name, int nd, const hsize_t *dims, hid_t file_type,
                      hid_t mem_type, const void *buf)
{
    hsize_t chunk[2] = {dims[0] ? dims[0] : 1, nd == 2 ? (dims[1] ? dims[1] : 1) : 1};
    hid_t space = H5Screate_simple(nd, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t d = H5I_INVALID_HID;
    int rc = -1;
    if (space < 0 || dcpl < 0 || H5Pset_chunk(dcpl, nd, chunk) < 0 || H5Pset_fletcher32(dcpl) < 0 ||
        H5Pset_obj_track_times(dcpl, 0) < 0)
        goto out;
    d = H5Dcreate2(loc, name, file_type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (d >= 0 && H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0)
        rc = 0;
out:
    if (d >= 0)
        H5Dclose(d);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (space >= 0)
        H5Sclose(space);
    return rc;
}

static hid_t group_create(hid_t loc, const char *name)
{
    return H5Gcreate2(loc, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
}

/* Writes one flat vector (params or a moment) as per-layer W and b datasets
 * under group name. */
static int tensors_write(hid_t file, const char *name, const Mlp *m, const float *flat)
{
    hid_t g = group_create(file, name);
    if (g < 0)
        return -1;
    int rc = 0;
    for (int l = 0; l < m->num_layers && rc == 0; l++) {
        char lname[32];
        snprintf(lname, sizeof lname, "dense%d", l);
        hid_t lg = group_create(g, lname);
        hsize_t wd[2] = {(hsize_t)m->sizes[l], (hsize_t)m->sizes[l + 1]}, bd[1] = {wd[1]};
        rc = (lg >= 0 &&
              dset_write(lg, "W", 2, wd, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT,
                         flat + mlp_tensor_offset(m, l, 0)) == 0 &&
              dset_write(lg, "b", 1, bd, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT,
                         flat + mlp_tensor_offset(m, l, 1)) == 0)
                 ? 0
                 : -1;
        if (lg >= 0)
            H5Gclose(lg);
    }
    H5Gclose(g);
    return rc;
}

static int history_write(hid_t file, const History *h)
{
    hid_t g = group_create(file, "history");
    if (g < 0)
        return -1;
    const int n = h->count;
    double *col = malloc(sizeof(double) * (size_t)(n ? n : 1));
    int rc = col ? 0 : -1;
    static const char *names[] = {"epoch", "train_loss", "train_acc", "val_loss",
                                  "val_acc", "seconds", "samples_per_s"};
    for (int k = 0; k < 7 && rc == 0; k++) {
        for (int i = 0; i < n; i++) {
            const EpochStats *s = &h->items[i];
            const double v[7] = {s->epoch,   s->train_loss, s->train_acc,    s->val_loss,
                                 s->val_acc, s->seconds,    s->samples_per_s};
            col[i] = v[k];
        }
        hsize_t d[1] = {(hsize_t)n};
        rc = dset_write(g, names[k], 1, d, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, col);
    }
    free(col);
    H5Gclose(g);
    return rc;
}

int ckpt_write(const char *path, const Mlp *m, const Adam *opt, const CkptMeta *meta,
               const History *h, const char *config_json, Error *e)
{
    /* Built in memory, then written with plain write(): a full disk is an
     * ordinary error here, never a failure inside HDF5. */
    hid_t file = h5_mem_file_create(path);
    if (file < 0)
        return err_set(e, "%s: cannot create checkpoint in memory", path);
    int sizes[MLP_MAX_LAYERS + 1];
    for (int l = 0; l <= m->num_layers; l++)
        sizes[l] = m->sizes[l];
    const int64_t version = CKPT_FORMAT_VERSION, epoch = meta->epoch, t = opt->t;
    const int64_t step = meta->step;
    const uint64_t num_params = m->num_params;
    const double hyper[4] = {opt->lr, opt->beta1, opt->beta2, opt->eps};
    int ok = h5_attr_write_str(file, "format", CKPT_FORMAT) == 0 &&
             h5_attr_write(file, "format_version", H5T_STD_I64LE, H5T_NATIVE_INT64, 0, &version) == 0 &&
             h5_attr_write(file, "epoch", H5T_STD_I64LE, H5T_NATIVE_INT64, 0, &epoch) == 0 &&
             h5_attr_write(file, "step_in_epoch", H5T_STD_I64LE, H5T_NATIVE_INT64, 0, &step) == 0 &&
             h5_attr_write(file, "partial_epoch", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 4,
                           meta->partial) == 0 &&
             h5_attr_write(file, "seed", H5T_STD_I64LE, H5T_NATIVE_INT64, 0, &meta->seed) == 0 &&
             h5_attr_write(file, "layer_sizes", H5T_STD_I32LE, H5T_NATIVE_INT, m->num_layers + 1,
                        sizes) == 0 &&
             h5_attr_write(file, "num_params", H5T_STD_U64LE, H5T_NATIVE_UINT64, 0, &num_params) == 0 &&
             h5_attr_write(file, "dropout", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 0, &m->dropout) == 0 &&
             h5_attr_write(file, "input_mean", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 0, &m->in_mean) == 0 &&
             h5_attr_write(file, "input_scale", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 0, &m->in_scale) == 0 &&
             h5_attr_write_str(file, "rng", "splitmix64 counter streams keyed by (seed, purpose, epoch, sample)") == 0 &&
             h5_attr_write_str(file, "created_by", "mnist-dist " MNIST_VERSION) == 0 &&
             h5_attr_write_str(file, "config", config_json ? config_json : "{}") == 0 &&
             tensors_write(file, "model", m, m->params) == 0;
    if (ok) {
        hid_t g = group_create(file, "adam");
        ok = g >= 0 && h5_attr_write(g, "step", H5T_STD_I64LE, H5T_NATIVE_INT64, 0, &t) == 0 &&
             h5_attr_write(g, "lr_beta1_beta2_eps", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 4, hyper) == 0 &&
             tensors_write(g, "m", m, m->adam_m) == 0 && tensors_write(g, "v", m, m->adam_v) == 0;
        if (g >= 0)
            H5Gclose(g);
    }
    ok = ok && history_write(file, h) == 0;
    if (!ok) {
        H5Fclose(file);
        return err_set(e, "%s: cannot build checkpoint (out of memory?)", path);
    }
    return h5_mem_file_save(file, path, e);
}

/* ---- reading ---------------------------------------------------------- */

/* Opens path and checks the format marker and version. */
static hid_t open_checked(const char *path, Error *e)
{
    if (access(path, R_OK) != 0) {
        err_set(e, "%s: cannot open checkpoint: %s", path, strerror(errno));
        return H5I_INVALID_HID;
    }
    if (h5_check_file(path, e) != 0)
        return H5I_INVALID_HID;
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0) {
        err_set(e, "%s: damaged HDF5 file (HDF5 cannot open it)", path);
        return H5I_INVALID_HID;
    }
    char format[64];
    int64_t version = 0;
    if (H5Aexists(file, "format") < 0) {
        err_set(e, "%s: damaged HDF5 metadata in the root group (checksum mismatch?)", path);
        goto fail;
    }
    if (h5_attr_read_str(file, "format", format, sizeof format) != 0 || strcmp(format, CKPT_FORMAT) != 0) {
        err_set(e, "%s: not a mnist-dist checkpoint (no format attribute '%s')", path, CKPT_FORMAT);
        goto fail;
    }
    if (h5_attr_read(file, "format_version", H5T_NATIVE_INT64, 1, &version, NULL) != 0 ||
        version != CKPT_FORMAT_VERSION) {
        err_set(e, "%s: checkpoint format version %lld, this build reads version %d", path,
                (long long)version, CKPT_FORMAT_VERSION);
        goto fail;
    }
    return file;
fail:
    H5Fclose(file);
    return H5I_INVALID_HID;
}

/* 0 when link name exists under loc; otherwise -1 with "missing KIND
 * SHOWN", or "damaged" when HDF5 cannot tell (a metadata checksum mismatch
 * in files written with checksums, say). shown is name as messages show it. */
static int need_link(hid_t loc, const char *name, const char *shown, const char *kind,
                     const char *path, Error *e)
{
    const htri_t x = H5Lexists(loc, name, H5P_DEFAULT);
    if (x > 0)
        return 0;
    if (x == 0)
        return err_set(e, "%s: missing %s %s", path, kind, shown);
    return err_set(e, "%s: damaged HDF5 metadata where %s should be (checksum mismatch?)", path,
                   shown);
}

/* Checks that dataset name under loc exists with exactly the shape want
 * (nd = 1 or 2), without reading it. where names its group in messages. */
static int dset_check_shape(hid_t loc, const char *name, int nd, const hsize_t *want,
                            const char *path, const char *where, Error *e)
{
    char shown[128];
    snprintf(shown, sizeof shown, "%s/%s", where, name);
    if (need_link(loc, name, shown, "dataset", path, e) != 0)
        return -1;
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0)
        return err_set(e, "%s: cannot open %s/%s (not a dataset?)", path, where, name);
    hid_t s = H5Dget_space(d);
    hsize_t dims[2] = {0, 0};
    int got = s >= 0 ? H5Sget_simple_extent_ndims(s) : -1;
    if (got == nd)
        H5Sget_simple_extent_dims(s, dims, NULL);
    if (s >= 0)
        H5Sclose(s);
    H5Dclose(d);
    if (got != nd || dims[0] != want[0] || (nd == 2 && dims[1] != want[1]))
        return err_set(e, "%s: %s/%s has shape [%llu,%llu] but the layer sizes say [%llu,%llu]",
                       path, where, name, (unsigned long long)dims[0],
                       (unsigned long long)(nd == 2 ? dims[1] : 0), (unsigned long long)want[0],
                       (unsigned long long)(nd == 2 ? want[1] : 0));
    return 0;
}

/* Reads layer_sizes into sizes and checks, before anyone allocates a model
 * of that size, that the model is one MNIST data can use (784 inputs, 10
 * classes), that every /model tensor has the shape the sizes imply, and that
 * the file is large enough to hold the parameters and both Adam moments
 * (stored uncompressed), so a damaged or hostile attribute cannot make the
 * caller allocate gigabytes. Returns the number of dense layers or -1. */
static int layers_read(hid_t file, const char *path, int *sizes, Error *e)
{
    size_t n = 0;
    if (h5_attr_read(file, "layer_sizes", H5T_NATIVE_INT, MLP_MAX_LAYERS + 1, sizes, &n) != 0 || n < 2)
        return err_set(e, "%s: missing or malformed layer_sizes attribute", path);
    for (size_t i = 0; i < n; i++)
        if (sizes[i] < 1 || sizes[i] > (1 << 20))
            return err_set(e, "%s: layer width %d is out of range", path, sizes[i]);
    const int L = (int)n - 1;
    if (sizes[0] != MNIST_PIXELS || sizes[L] != MNIST_CLASSES)
        return err_set(e, "%s: layer sizes start at %d and end at %d, but a model for MNIST takes "
                          "%d inputs and gives %d classes", path, sizes[0], sizes[L],
                       MNIST_PIXELS, MNIST_CLASSES);
    if (need_link(file, "model", "model", "group", path, e) != 0)
        return -1;
    hid_t g = H5Gopen2(file, "model", H5P_DEFAULT);
    if (g < 0)
        return err_set(e, "%s: cannot open group model", path);
    int rc = 0;
    unsigned long long params = 0;
    for (int l = 0; l < L && rc == 0; l++) {
        char lname[32], where[64];
        snprintf(lname, sizeof lname, "dense%d", l);
        snprintf(where, sizeof where, "model/%s", lname);
        hsize_t wd[2] = {(hsize_t)sizes[l], (hsize_t)sizes[l + 1]}, bd[1] = {wd[1]};
        params += (unsigned long long)wd[0] * wd[1] + wd[1];
        if (need_link(g, lname, where, "group", path, e) != 0) {
            rc = -1;
            break;
        }
        hid_t lg = H5Gopen2(g, lname, H5P_DEFAULT);
        if (lg < 0) {
            rc = err_set(e, "%s: cannot open group %s (damaged HDF5 metadata?)", path, where);
            break;
        }
        if (dset_check_shape(lg, "W", 2, wd, path, where, e) != 0 ||
            dset_check_shape(lg, "b", 1, bd, path, where, e) != 0)
            rc = -1;
        H5Gclose(lg);
    }
    H5Gclose(g);
    hsize_t file_bytes = 0;
    if (rc == 0 && H5Fget_filesize(file, &file_bytes) >= 0 &&
        3 * sizeof(float) * params > file_bytes)
        rc = err_set(e, "%s: layer sizes need %llu bytes of tensors but the file has only %llu "
                        "(truncated?)", path, 3 * (unsigned long long)sizeof(float) * params,
                     (unsigned long long)file_bytes);
    return rc ? -1 : L;
}

int ckpt_read_layers(const char *path, int *sizes, Error *e)
{
    hid_t file = open_checked(path, e);
    if (file < 0)
        return -1;
    int L = layers_read(file, path, sizes, e);
    H5Fclose(file);
    return L;
}

/* libhdf5 1.10 trusts a stored chunk's recorded size when it unfilters and
 * copies the chunk, and over-reads its own buffer when a damaged file lies
 * about it (found by tools/fuzz: tests/data/bad/fuzz-crashes). Checkpoints
 * hold every dataset as exactly one Fletcher-32 chunk of little-endian
 * floats, so check all of that before HDF5 reads a byte of data: the type,
 * the one filter, chunk = dataset, one chunk of exactly the raw size plus 4
 * checksum bytes, nothing filtered out, and inside the file. Also refuses a
 * dataset without its checksum or without stored data (HDF5 would silently
 * return fill values). */
static int check_storage(hid_t d, int nd, const hsize_t *want, hid_t file_type, const char *path,
                         const char *where, const char *name, Error *e)
{
    hid_t t = H5Dget_type(d);
    const int type_ok = t >= 0 && H5Tequal(t, file_type) > 0;
    if (t >= 0)
        H5Tclose(t);
    const size_t item = H5Tget_size(file_type);
    if (!type_ok)
        return err_set(e, "%s: %s/%s is not stored as little-endian float%zu", path, where, name,
                       8 * item);
    hid_t dcpl = H5Dget_create_plist(d);
    if (dcpl < 0)
        return err_set(e, "%s: cannot read the storage layout of %s/%s", path, where, name);
    unsigned flags = 0;
    size_t nvals = 0;
    hsize_t chunk[2] = {0, 0};
    const int checksummed = H5Pget_filter_by_id2(dcpl, H5Z_FILTER_FLETCHER32, &flags, &nvals,
                                                 NULL, 0, NULL, NULL) >= 0;
    const int one_chunk = H5Pget_layout(dcpl) == H5D_CHUNKED && H5Pget_nfilters(dcpl) == 1 &&
                          H5Pget_chunk(dcpl, 2, chunk) == nd && chunk[0] == want[0] &&
                          (nd == 1 || chunk[1] == want[1]);
    H5Pclose(dcpl);
    if (!checksummed)
        return err_set(e, "%s: %s/%s has no Fletcher-32 checksum (not written by mnist-dist)", path,
                       where, name);
    if (!one_chunk)
        return err_set(e, "%s: %s/%s is not stored as mnist-dist writes it (one checksummed "
                          "chunk)", path, where, name);
    hid_t s = H5Dget_space(d);
    hsize_t nchunks = 0, offset[2] = {0, 0}, bytes = 0, file_bytes = 0;
    haddr_t addr = HADDR_UNDEF;
    unsigned mask = 0;
    int rc = 0;
    if (s < 0 || H5Dget_num_chunks(d, s, &nchunks) < 0)
        rc = err_set(e, "%s: cannot read the chunk index of %s/%s", path, where, name);
    else if (nchunks == 0)
        rc = err_set(e, "%s: %s/%s has no data stored", path, where, name);
    else if (nchunks != 1 || H5Dget_chunk_info(d, s, 0, offset, &mask, &addr, &bytes) < 0)
        rc = err_set(e, "%s: damaged chunk index in %s/%s", path, where, name);
    if (s >= 0)
        H5Sclose(s);
    if (rc)
        return rc;
    const hsize_t raw = want[0] * (nd == 2 ? want[1] : 1) * item + 4;
    if (mask != 0 || bytes != raw)
        return err_set(e, "%s: %s/%s: its stored chunk has %llu bytes, expected %llu (damaged "
                          "file)", path, where, name, (unsigned long long)bytes,
                       (unsigned long long)raw);
    hid_t f = H5Iget_file_id(d);
    if (f < 0 || H5Fget_filesize(f, &file_bytes) < 0 || addr == HADDR_UNDEF ||
        addr > file_bytes || bytes > file_bytes - addr)
        rc = err_set(e, "%s: %s/%s: its data lies beyond the end of the file (truncated?)", path,
                     where, name);
    if (f >= 0)
        H5Fclose(f);
    return rc;
}

/* Reads dataset name (under loc) of exactly the given shape into buf as
 * mem_type (native float or double; stored as the little-endian same). */
static int dset_read(hid_t loc, const char *name, int nd, const hsize_t *want, hid_t mem_type,
                     void *buf, const char *path, const char *where, Error *e)
{
    if (dset_check_shape(loc, name, nd, want, path, where, e) != 0)
        return -1;
    if (want[0] == 0)
        return 0;
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0)
        return err_set(e, "%s: cannot open %s/%s", path, where, name);
    const hid_t file_type = H5Tget_size(mem_type) == 4 ? H5T_IEEE_F32LE : H5T_IEEE_F64LE;
    int rc = check_storage(d, nd, want, file_type, path, where, name, e);
    if (rc == 0 && H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        rc = err_set(e, "%s: cannot read %s/%s: checksum mismatch or truncated file", path, where,
                     name);
    H5Dclose(d);
    return rc;
}

/* Reads group prefix/name's per-layer W and b into flat (prefix: "" or
 * "adam/", for messages). */
static int tensors_read(hid_t loc, const char *prefix, const char *name, Mlp *m, float *flat,
                        const char *path, Error *e)
{
    char shown[64];
    snprintf(shown, sizeof shown, "%s%s", prefix, name);
    if (need_link(loc, name, shown, "group", path, e) != 0)
        return -1;
    hid_t g = H5Gopen2(loc, name, H5P_DEFAULT);
    if (g < 0)
        return err_set(e, "%s: cannot open group %s%s", path, prefix, name);
    int rc = 0;
    for (int l = 0; l < m->num_layers && rc == 0; l++) {
        char lname[32], where[96];
        snprintf(lname, sizeof lname, "dense%d", l);
        snprintf(where, sizeof where, "%s%s/%s", prefix, name, lname);
        if (need_link(g, lname, where, "group", path, e) != 0) {
            rc = -1;
            break;
        }
        hid_t lg = H5Gopen2(g, lname, H5P_DEFAULT);
        if (lg < 0) {
            rc = err_set(e, "%s: cannot open group %s (damaged HDF5 metadata?)", path, where);
            break;
        }
        hsize_t wd[2] = {(hsize_t)m->sizes[l], (hsize_t)m->sizes[l + 1]}, bd[1] = {wd[1]};
        rc = dset_read(lg, "W", 2, wd, H5T_NATIVE_FLOAT, flat + mlp_tensor_offset(m, l, 0), path,
                       where, e);
        if (rc == 0)
            rc = dset_read(lg, "b", 1, bd, H5T_NATIVE_FLOAT, flat + mlp_tensor_offset(m, l, 1),
                           path, where, e);
        H5Gclose(lg);
    }
    H5Gclose(g);
    return rc;
}

/* Reads the history, which must hold exactly `epochs` entries: checked
 * before allocating, so a damaged length cannot ask for gigabytes. */
static int history_read(hid_t file, const char *path, int64_t epochs, History *h, Error *e)
{
    history_truncate(h, 0);
    if (need_link(file, "history", "history", "group", path, e) != 0)
        return -1;
    hid_t g = H5Gopen2(file, "history", H5P_DEFAULT);
    if (g < 0)
        return err_set(e, "%s: cannot open group history", path);
    hid_t d = H5Lexists(g, "epoch", H5P_DEFAULT) > 0 ? H5Dopen2(g, "epoch", H5P_DEFAULT)
                                                      : H5I_INVALID_HID;
    hsize_t n = 0;
    int nd = -1;
    if (d >= 0) {
        hid_t s = H5Dget_space(d);
        nd = s >= 0 ? H5Sget_simple_extent_ndims(s) : -1;
        if (nd == 1)
            H5Sget_simple_extent_dims(s, &n, NULL);
        if (s >= 0)
            H5Sclose(s);
        H5Dclose(d);
    }
    int rc = 0;
    if (d < 0 || nd != 1)
        rc = err_set(e, "%s: missing or malformed dataset history/epoch", path);
    else if (n != (hsize_t)epochs)
        rc = err_set(e, "%s: history has %llu epochs but the checkpoint says %lld", path,
                     (unsigned long long)n, (long long)epochs);
    static const char *names[] = {"epoch", "train_loss", "train_acc", "val_loss",
                                  "val_acc", "seconds", "samples_per_s"};
    double *cols = rc ? NULL : malloc(sizeof(double) * 7 * (size_t)(n ? n : 1));
    if (rc == 0 && !cols)
        rc = err_set(e, "%s: out of memory for a history of %llu epochs", path,
                     (unsigned long long)n);
    for (int k = 0; k < 7 && rc == 0; k++)
        rc = dset_read(g, names[k], 1, &n, H5T_NATIVE_DOUBLE, cols + (size_t)k * n, path,
                       "history", e);
    for (hsize_t i = 0; i < n && rc == 0; i++) {
        EpochStats s = {(int)cols[i],         cols[n + i],     cols[2 * n + i], cols[3 * n + i],
                        cols[4 * n + i],      cols[5 * n + i], cols[6 * n + i]};
        rc = history_push(h, &s, e);
    }
    free(cols);
    H5Gclose(g);
    return rc;
}

int ckpt_read(const char *path, Mlp *m, Adam *opt, CkptMeta *meta, History *h, Error *e)
{
    hid_t file = open_checked(path, e);
    if (file < 0)
        return -1;
    int sizes[MLP_MAX_LAYERS + 1];
    int rc = 0;
    int L = layers_read(file, path, sizes, e);
    if (L < 0) {
        rc = -1;
        goto out;
    }
    int same = L == m->num_layers;
    for (int l = 0; same && l <= L; l++)
        same = sizes[l] == m->sizes[l];
    if (!same) {
        char have[256] = "", want[256] = "";
        for (int l = 0; l <= L; l++)
            snprintf(have + strlen(have), sizeof have - strlen(have), "%s%d", l ? "," : "", sizes[l]);
        for (int l = 0; l <= m->num_layers; l++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%d", l ? "," : "",
                     m->sizes[l]);
        rc = err_set(e, "%s: checkpoint has layer sizes %s but this run uses %s (check --layers)",
                     path, have, want);
        goto out;
    }
    int64_t epoch = 0, seed = 0, t = 0;
    double hyper[4];
    if (h5_attr_read(file, "epoch", H5T_NATIVE_INT64, 1, &epoch, NULL) != 0 ||
        h5_attr_read(file, "seed", H5T_NATIVE_INT64, 1, &seed, NULL) != 0) {
        rc = err_set(e, "%s: missing epoch or seed attribute", path);
        goto out;
    }
    if (epoch < 0 || epoch > INT32_MAX) {
        rc = err_set(e, "%s: epoch attribute %lld is out of range", path, (long long)epoch);
        goto out;
    }
    if (tensors_read(file, "", "model", m, m->params, path, e) != 0) {
        rc = -1;
        goto out;
    }
    hid_t g = H5Lexists(file, "adam", H5P_DEFAULT) > 0 ? H5Gopen2(file, "adam", H5P_DEFAULT)
                                                       : H5I_INVALID_HID;
    if (g < 0 || h5_attr_read(g, "step", H5T_NATIVE_INT64, 1, &t, NULL) != 0 || t < 0 ||
        h5_attr_read(g, "lr_beta1_beta2_eps", H5T_NATIVE_DOUBLE, 4, hyper, NULL) != 0) {
        rc = err_set(e, "%s: missing or malformed adam group", path);
    } else if (tensors_read(g, "adam/", "m", m, m->adam_m, path, e) != 0 ||
               tensors_read(g, "adam/", "v", m, m->adam_v, path, e) != 0) {
        rc = -1;
    }
    if (g >= 0)
        H5Gclose(g);
    if (rc == 0)
        rc = history_read(file, path, epoch, h, e);
    if (rc == 0) {
        opt->t = t;
        opt->lr = (float)hyper[0], opt->beta1 = (float)hyper[1];
        opt->beta2 = (float)hyper[2], opt->eps = (float)hyper[3];
        meta->epoch = (int)epoch;
        meta->seed = seed;
        /* Absent in checkpoints from before standardisation: inputs as they are. */
        float mean = 0.0f, scale = 1.0f;
        if (H5Aexists(file, "input_mean") > 0 &&
            (h5_attr_read(file, "input_mean", H5T_NATIVE_FLOAT, 1, &mean, NULL) != 0 ||
             h5_attr_read(file, "input_scale", H5T_NATIVE_FLOAT, 1, &scale, NULL) != 0 ||
             !isfinite(mean) || !isfinite(scale) || scale <= 0.0f))
            rc = err_set(e, "%s: malformed input_mean or input_scale attribute", path);
        m->in_mean = mean, m->in_scale = scale;
        /* Absent in checkpoints from before mid-epoch stops: a boundary. */
        int64_t step = 0;
        memset(meta->partial, 0, sizeof meta->partial);
        if (H5Aexists(file, "step_in_epoch") > 0 &&
            (h5_attr_read(file, "step_in_epoch", H5T_NATIVE_INT64, 1, &step, NULL) != 0 ||
             step < 0 || step > INT32_MAX ||
             h5_attr_read(file, "partial_epoch", H5T_NATIVE_DOUBLE, 4, meta->partial, NULL) != 0))
            rc = err_set(e, "%s: malformed step_in_epoch or partial_epoch attribute", path);
        meta->step = (int)step;
        if (h->count != meta->epoch)
            rc = err_set(e, "%s: history has %d epochs but the checkpoint says %d", path, h->count,
                         meta->epoch);
    }
out:
    H5Fclose(file);
    return rc;
}

int ckpt_path(char *buf, size_t size, const char *run_dir, int epoch, int step)
{
    if (step > 0)
        return str_fmt(buf, size, "%s/checkpoints/epoch-%04d-step-%07d.h5", run_dir, epoch, step);
    return str_fmt(buf, size, "%s/checkpoints/epoch-%04d.h5", run_dir, epoch);
}

/* Parses "epoch-NNNN.h5" or "epoch-NNNN-step-SSSSSSS.h5"; 0 on a match. */
static int parse_name(const char *name, int *epoch, int *step)
{
    int consumed = 0;
    *step = 0;
    if (sscanf(name, "epoch-%d.h5%n", epoch, &consumed) == 1 && name[consumed] == '\0')
        return 0;
    consumed = 0;
    if (sscanf(name, "epoch-%d-step-%d.h5%n", epoch, step, &consumed) == 2 &&
        name[consumed] == '\0' && *step > 0)
        return 0;
    return -1;
}

int ckpt_find_latest(const char *run_dir, char *path, size_t size)
{
    char dir[4096];
    if (str_fmt(dir, sizeof dir, "%s/checkpoints", run_dir))
        return 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int best_epoch = -1, best_step = -1;
    struct dirent *ent;
    while ((ent = readdir(d))) {
        int epoch, step;
        if (parse_name(ent->d_name, &epoch, &step) != 0 || epoch < 0 ||
            epoch < best_epoch || (epoch == best_epoch && step <= best_step))
            continue;
        char candidate[4096];
        int sizes[MLP_MAX_LAYERS + 1];
        if (ckpt_path(candidate, sizeof candidate, run_dir, epoch, step) == 0 &&
            ckpt_read_layers(candidate, sizes, NULL) > 0 && str_fmt(path, size, "%s", candidate) == 0)
            best_epoch = epoch, best_step = step;
    }
    closedir(d);
    return best_epoch >= 0;
}

/* ckpt: HDF5 checkpoint writer and validating reader. One process writes
 * (the default sec2 driver); tensors are Fletcher-32-checksummed chunked
 * datasets. Never decides which rank writes, never prints. */
#define _GNU_SOURCE
#include "mnist/ckpt.h"
#include "mnist/h5safe.h"
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
    hsize_t chunk[TENSOR_MAX_DIMS];
    for (int d = 0; d < nd; d++)
        chunk[d] = dims[d] ? dims[d] : 1;
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

/* Splits a tensor name "dense0/W" into its layer group and dataset. */
static void split_name(const char *name, char *group, size_t gsize, const char **leaf)
{
    const char *slash = strchr(name, '/');
    const size_t n = slash ? (size_t)(slash - name) : 0;
    snprintf(group, gsize, "%.*s", (int)n, name);
    *leaf = slash ? slash + 1 : name;
}

/* Writes one flat vector (params or a moment) as a group holding one group
 * per layer and one dataset per tensor, in the tensors' own shapes. */
static int tensors_write(hid_t file, const char *name, const Model *m, const float *flat)
{
    hid_t g = group_create(file, name);
    if (g < 0)
        return -1;
    int rc = 0;
    for (int t = 0; t < m->num_tensors && rc == 0; t++) {
        const Tensor *ts = &m->tensors[t];
        char lname[32];
        const char *leaf;
        split_name(ts->name, lname, sizeof lname, &leaf);
        hid_t lg = H5Lexists(g, lname, H5P_DEFAULT) > 0 ? H5Gopen2(g, lname, H5P_DEFAULT)
                                                         : group_create(g, lname);
        hsize_t dims[TENSOR_MAX_DIMS];
        for (int d = 0; d < ts->ndim; d++)
            dims[d] = (hsize_t)ts->dims[d];
        rc = lg >= 0 && dset_write(lg, leaf, ts->ndim, dims, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT,
                                   flat + ts->offset) == 0
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

int ckpt_write(const char *path, const Model *m, const Optimizer *o, const CkptMeta *meta,
               const History *h, const char *config_json, Error *e)
{
    /* Built in memory, then written with plain write(): a full disk is an
     * ordinary error here, never a failure inside HDF5. */
    char spec[4096];
    if (model_spec_format(spec, sizeof spec, &m->spec))
        return err_set(e, "%s: the layer list is too long to record", path);
    float *zeros = o ? NULL : alloc_aligned(sizeof(float) * m->param_floats);
    if (!o && !zeros)
        return err_set(e, "%s: out of memory", path);
    hid_t file = h5_mem_file_create(path);
    if (file < 0) {
        free(zeros);
        return err_set(e, "%s: cannot create checkpoint in memory", path);
    }
    const int64_t version = CKPT_FORMAT_VERSION, epoch = meta->epoch, t = o ? o->adam.t : 0;
    const int64_t step = meta->step;
    const uint64_t num_params = m->num_params;
    const int input[3] = {m->input.h, m->input.w, m->input.c};
    const double hyper[4] = {o ? o->adam.lr : 0, o ? o->adam.beta1 : 0, o ? o->adam.beta2 : 0,
                             o ? o->adam.eps : 0};
    int ok = h5_attr_write_str(file, "format", CKPT_FORMAT) == 0 &&
             h5_attr_write(file, "format_version", H5T_STD_I64LE, H5T_NATIVE_INT64, 0, &version) == 0 &&
             h5_attr_write_str(file, "model", spec) == 0 &&
             h5_attr_write(file, "input_shape", H5T_STD_I32LE, H5T_NATIVE_INT, 3, input) == 0 &&
             h5_attr_write(file, "classes", H5T_STD_I32LE, H5T_NATIVE_INT, 0, &m->classes) == 0 &&
             h5_attr_write(file, "epoch", H5T_STD_I64LE, H5T_NATIVE_INT64, 0, &epoch) == 0 &&
             h5_attr_write(file, "step_in_epoch", H5T_STD_I64LE, H5T_NATIVE_INT64, 0, &step) == 0 &&
             h5_attr_write(file, "partial_epoch", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 4,
                           meta->partial) == 0 &&
             h5_attr_write(file, "seed", H5T_STD_I64LE, H5T_NATIVE_INT64, 0, &meta->seed) == 0 &&
             h5_attr_write(file, "run_id", H5T_STD_U64LE, H5T_NATIVE_UINT64, 0, &meta->run_id) == 0 &&
             h5_attr_write(file, "wall_seconds", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 0,
                           &meta->wall_s) == 0 &&
             h5_attr_write_str(file, "segments", meta->segments[0] ? meta->segments : "[]") == 0 &&
             h5_attr_write(file, "num_params", H5T_STD_U64LE, H5T_NATIVE_UINT64, 0, &num_params) == 0 &&
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
             tensors_write(g, "m", m, o ? o->m : zeros) == 0 &&
             tensors_write(g, "v", m, o ? o->v : zeros) == 0;
        if (g >= 0)
            H5Gclose(g);
    }
    ok = ok && history_write(file, h) == 0;
    free(zeros);
    if (!ok) {
        H5Fclose(file);
        return err_set(e, "%s: cannot build checkpoint (out of memory?)", path);
    }
    return h5_mem_file_save(file, path, e);
}

/* ---- reading ---------------------------------------------------------- */

/* Opens path and checks the format marker and version (1 or 2); the version
 * goes to *version. */
static hid_t open_checked(const char *path, int *version_out, Error *e)
{
    if (access(path, R_OK) != 0) {
        err_set(e, "%s: cannot open checkpoint: %s", path, strerror(errno));
        return H5I_INVALID_HID;
    }
    if (h5_check_file(path, e) != 0 || h5safe_check(path, "ckpt", e) != 0)
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
        version < 1 || version > CKPT_FORMAT_VERSION) {
        err_set(e, "%s: checkpoint format version %lld, this build reads versions 1 to %d", path,
                (long long)version, CKPT_FORMAT_VERSION);
        goto fail;
    }
    *version_out = (int)version;
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

/* "[a,b]" of n dims (2-D at least, as the messages always showed). */
static void dims_text(char *buf, size_t size, int nd, const hsize_t *d)
{
    size_t o = 0;
    for (int i = 0; i < (nd < 2 ? 2 : nd) && o < size; i++)
        o += (size_t)snprintf(buf + o, size - o, "%s%llu", i ? "," : "[",
                              (unsigned long long)(i < nd ? d[i] : 0));
    if (o < size)
        snprintf(buf + o, size - o, "]");
}

/* What the checkpoint's layer description is called in messages. */
static const char *says(int version) { return version == 1 ? "the layer sizes say" : "the model says"; }

/* Checks that dataset name under loc exists with exactly the shape want
 * (nd = 1..4), without reading it. where names its group in messages. */
static int dset_check_shape(hid_t loc, const char *name, int nd, const hsize_t *want,
                            const char *path, const char *where, int version, Error *e)
{
    char shown[128];
    snprintf(shown, sizeof shown, "%s/%s", where, name);
    if (need_link(loc, name, shown, "dataset", path, e) != 0)
        return -1;
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0)
        return err_set(e, "%s: cannot open %s/%s (not a dataset?)", path, where, name);
    hid_t s = H5Dget_space(d);
    hsize_t dims[H5S_MAX_RANK] = {0};
    int got = s >= 0 ? H5Sget_simple_extent_ndims(s) : -1;
    if (got >= 1 && got <= H5S_MAX_RANK)
        H5Sget_simple_extent_dims(s, dims, NULL);
    if (s >= 0)
        H5Sclose(s);
    H5Dclose(d);
    int same = got == nd;
    for (int i = 0; same && i < nd; i++)
        same = dims[i] == want[i];
    if (!same) {
        char have[96], expect[96];
        dims_text(have, sizeof have, got > 0 ? got : 0, dims);
        dims_text(expect, sizeof expect, nd, want);
        return err_set(e, "%s: %s/%s has shape %s but %s %s", path, where, name, have,
                       says(version), expect);
    }
    return 0;
}

/* A format-1 file's model: the MLP of its layer_sizes and dropout, which
 * must be one MNIST data can use (784 inputs, 10 classes). */
static int model_v1(hid_t file, const char *path, CkptModel *out, Error *e)
{
    int sizes[17];
    size_t n = 0;
    if (h5_attr_read(file, "layer_sizes", H5T_NATIVE_INT, 17, sizes, &n) != 0 || n < 2)
        return err_set(e, "%s: missing or malformed layer_sizes attribute", path);
    for (size_t i = 0; i < n; i++)
        if (sizes[i] < 1 || sizes[i] > (1 << 20))
            return err_set(e, "%s: layer width %d is out of range", path, sizes[i]);
    const int L = (int)n - 1;
    if (sizes[0] != 784 || sizes[L] != 10)
        return err_set(e, "%s: layer sizes start at %d and end at %d, but a model for MNIST takes "
                          "784 inputs and gives 10 classes", path, sizes[0], sizes[L]);
    float dropout = 0.0f;
    if (H5Aexists(file, "dropout") > 0 &&
        (h5_attr_read(file, "dropout", H5T_NATIVE_FLOAT, 1, &dropout, NULL) != 0 ||
         !(dropout >= 0.0f && dropout < 1.0f)))
        return err_set(e, "%s: malformed dropout attribute", path);
    char widths[256] = "";
    for (int l = 1; l < L; l++)
        snprintf(widths + strlen(widths), sizeof widths - strlen(widths), "%s%d", l > 1 ? "," : "",
                 sizes[l]);
    if (model_spec_from_widths(&out->spec, widths, dropout, e) ||
        model_spec_append(&out->spec, (LayerSpec){.kind = LAYER_DENSE, .units = 10}, e))
        return err_prefix(e, "%s", path);
    out->input = (Shape){28, 28, 1};
    out->classes = 10;
    return 0;
}

/* A format-2 file's model: its layer list, input shape and class count. */
static int model_v2(hid_t file, const char *path, CkptModel *out, Error *e)
{
    char spec[4096];
    int input[3] = {0, 0, 0};
    size_t n = 0;
    if (h5_attr_read_str(file, "model", spec, sizeof spec) != 0)
        return err_set(e, "%s: missing or malformed model attribute (the layer list)", path);
    if (model_spec_parse(&out->spec, spec, e))
        return err_prefix(e, "%s: model attribute", path);
    if (h5_attr_read(file, "input_shape", H5T_NATIVE_INT, 3, input, &n) != 0 || n != 3 ||
        input[0] < 1 || input[1] < 1 || input[2] < 1 ||
        /* in two steps: three ints can overflow 64 bits (found by fuzz_ckpt) */
        (int64_t)input[0] * input[1] > 1 << 24 || (int64_t)input[0] * input[1] * input[2] > 1 << 24)
        return err_set(e, "%s: missing or malformed input_shape attribute", path);
    if (h5_attr_read(file, "classes", H5T_NATIVE_INT, 1, &out->classes, NULL) != 0 ||
        out->classes < 2 || out->classes > 256)
        return err_set(e, "%s: missing or malformed classes attribute", path);
    out->input = (Shape){input[0], input[1], input[2]};
    return 0;
}

/* Reads the model description and checks, before anyone allocates a model
 * of that size, that every /model tensor has the shape the layers imply and
 * that the file is large enough to hold the parameters and both moments
 * (stored uncompressed), so a damaged or hostile attribute cannot make the
 * caller allocate gigabytes. layout receives the layers and tensors. */
static int model_read(hid_t file, const char *path, int version, CkptModel *out, Model *layout,
                      Error *e)
{
    memset(out, 0, sizeof *out);
    out->format_version = version;
    out->in_scale = 1.0f;
    if ((version == 1 ? model_v1 : model_v2)(file, path, out, e))
        return -1;
    if (model_layout(layout, &out->spec, out->input, out->classes, e))
        return err_prefix(e, "%s", path);
    if (need_link(file, "model", "model", "group", path, e) != 0)
        return -1;
    hid_t g = H5Gopen2(file, "model", H5P_DEFAULT);
    if (g < 0)
        return err_set(e, "%s: cannot open group model", path);
    int rc = 0;
    for (int t = 0; t < layout->num_tensors && rc == 0; t++) {
        const Tensor *ts = &layout->tensors[t];
        char lname[32], where[64];
        const char *leaf;
        split_name(ts->name, lname, sizeof lname, &leaf);
        snprintf(where, sizeof where, "model/%s", lname);
        if (need_link(g, lname, where, "group", path, e) != 0) {
            rc = -1;
            break;
        }
        hid_t lg = H5Gopen2(g, lname, H5P_DEFAULT);
        if (lg < 0) {
            rc = err_set(e, "%s: cannot open group %s (damaged HDF5 metadata?)", path, where);
            break;
        }
        hsize_t want[TENSOR_MAX_DIMS];
        for (int d = 0; d < ts->ndim; d++)
            want[d] = (hsize_t)ts->dims[d];
        rc = dset_check_shape(lg, leaf, ts->ndim, want, path, where, version, e);
        H5Gclose(lg);
    }
    H5Gclose(g);
    hsize_t file_bytes = 0;
    if (rc == 0 && H5Fget_filesize(file, &file_bytes) >= 0 &&
        3 * sizeof(float) * (unsigned long long)layout->num_params > file_bytes)
        rc = err_set(e, "%s: layer sizes need %llu bytes of tensors but the file has only %llu "
                        "(truncated?)", path,
                     3 * (unsigned long long)sizeof(float) * layout->num_params,
                     (unsigned long long)file_bytes);
    if (rc == 0) {
        float mean = 0.0f, scale = 1.0f;
        /* Absent in checkpoints from before standardisation: inputs as they are. */
        if (H5Aexists(file, "input_mean") > 0 &&
            (h5_attr_read(file, "input_mean", H5T_NATIVE_FLOAT, 1, &mean, NULL) != 0 ||
             h5_attr_read(file, "input_scale", H5T_NATIVE_FLOAT, 1, &scale, NULL) != 0 ||
             !isfinite(mean) || !isfinite(scale) || scale <= 0.0f))
            rc = err_set(e, "%s: malformed input_mean or input_scale attribute", path);
        out->in_mean = mean, out->in_scale = scale;
    }
    return rc;
}

int ckpt_read_model(const char *path, CkptModel *out, Error *e)
{
    int version = 0;
    hid_t file = open_checked(path, &version, e);
    if (file < 0)
        return -1;
    Model *layout = malloc(sizeof *layout);
    int rc = layout ? model_read(file, path, version, out, layout, e)
                    : err_set(e, "%s: out of memory", path);
    free(layout);
    H5Fclose(file);
    return rc;
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
    hsize_t chunk[TENSOR_MAX_DIMS] = {0};
    const int checksummed = H5Pget_filter_by_id2(dcpl, H5Z_FILTER_FLETCHER32, &flags, &nvals,
                                                 NULL, 0, NULL, NULL) >= 0;
    int one_chunk = H5Pget_layout(dcpl) == H5D_CHUNKED && H5Pget_nfilters(dcpl) == 1 &&
                    H5Pget_chunk(dcpl, TENSOR_MAX_DIMS, chunk) == nd;
    for (int i = 0; one_chunk && i < nd; i++)
        one_chunk = chunk[i] == want[i];
    H5Pclose(dcpl);
    if (!checksummed)
        return err_set(e, "%s: %s/%s has no Fletcher-32 checksum (not written by mnist-dist)", path,
                       where, name);
    if (!one_chunk)
        return err_set(e, "%s: %s/%s is not stored as mnist-dist writes it (one checksummed "
                          "chunk)", path, where, name);
    hid_t s = H5Dget_space(d);
    hsize_t nchunks = 0, offset[TENSOR_MAX_DIMS] = {0}, bytes = 0, file_bytes = 0;
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
    hsize_t raw = item;
    for (int i = 0; i < nd; i++)
        raw *= want[i];
    raw += 4;
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
                     void *buf, const char *path, const char *where, int version, Error *e)
{
    if (dset_check_shape(loc, name, nd, want, path, where, version, e) != 0)
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

/* Reads group prefix/name's tensors (one group per layer) into flat
 * (prefix: "" or "adam/", for messages). */
static int tensors_read(hid_t loc, const char *prefix, const char *name, const Model *m,
                        float *flat, const char *path, int version, Error *e)
{
    char shown[64];
    snprintf(shown, sizeof shown, "%s%s", prefix, name);
    if (need_link(loc, name, shown, "group", path, e) != 0)
        return -1;
    hid_t g = H5Gopen2(loc, name, H5P_DEFAULT);
    if (g < 0)
        return err_set(e, "%s: cannot open group %s%s", path, prefix, name);
    int rc = 0;
    for (int t = 0; t < m->num_tensors && rc == 0; t++) {
        const Tensor *ts = &m->tensors[t];
        char lname[32], where[96];
        const char *leaf;
        split_name(ts->name, lname, sizeof lname, &leaf);
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
        hsize_t want[TENSOR_MAX_DIMS];
        for (int d = 0; d < ts->ndim; d++)
            want[d] = (hsize_t)ts->dims[d];
        rc = dset_read(lg, leaf, ts->ndim, want, H5T_NATIVE_FLOAT, flat + ts->offset, path, where,
                       version, e);
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
                       "history", 1, e);
    for (hsize_t i = 0; i < n && rc == 0; i++) {
        EpochStats s = {.epoch = (int)cols[i], .train_loss = cols[n + i],
                        .train_acc = cols[2 * n + i], .val_loss = cols[3 * n + i],
                        .val_acc = cols[4 * n + i], .seconds = cols[5 * n + i],
                        .samples_per_s = cols[6 * n + i]};
        rc = history_push(h, &s, e);
    }
    free(cols);
    H5Gclose(g);
    return rc;
}

/* 1 when two models have the same tensors (names and shapes), input and
 * classes: one's parameters fit the other. */
static int same_layout(const Model *a, const Model *b)
{
    if (a->num_tensors != b->num_tensors || a->classes != b->classes ||
        shape_size(a->input) != shape_size(b->input) || a->input.c != b->input.c)
        return 0;
    for (int t = 0; t < a->num_tensors; t++) {
        const Tensor *x = &a->tensors[t], *y = &b->tensors[t];
        if (strcmp(x->name, y->name) != 0 || x->ndim != y->ndim || x->offset != y->offset)
            return 0;
        for (int d = 0; d < x->ndim; d++)
            if (x->dims[d] != y->dims[d])
                return 0;
    }
    return 1;
}

/* The scalar attributes of a checkpoint into meta (and opt's step and
 * hyper-parameters), after the tensors. */
static int meta_read(hid_t file, const char *path, CkptMeta *meta, Error *e)
{
    int64_t epoch = 0, seed = 0, step = 0;
    if (h5_attr_read(file, "epoch", H5T_NATIVE_INT64, 1, &epoch, NULL) != 0 ||
        h5_attr_read(file, "seed", H5T_NATIVE_INT64, 1, &seed, NULL) != 0)
        return err_set(e, "%s: missing epoch or seed attribute", path);
    if (epoch < 0 || epoch > INT32_MAX)
        return err_set(e, "%s: epoch attribute %lld is out of range", path, (long long)epoch);
    meta->epoch = (int)epoch;
    meta->seed = seed;
    /* Absent in checkpoints from before mid-epoch stops: a boundary. */
    memset(meta->partial, 0, sizeof meta->partial);
    if (H5Aexists(file, "step_in_epoch") > 0 &&
        (h5_attr_read(file, "step_in_epoch", H5T_NATIVE_INT64, 1, &step, NULL) != 0 ||
         step < 0 || step > INT32_MAX ||
         h5_attr_read(file, "partial_epoch", H5T_NATIVE_DOUBLE, 4, meta->partial, NULL) != 0))
        return err_set(e, "%s: malformed step_in_epoch or partial_epoch attribute", path);
    meta->step = (int)step;
    /* Absent in checkpoints of earlier releases: unknown. */
    meta->run_id = 0, meta->wall_s = 0, meta->segments[0] = '\0';
    if ((H5Aexists(file, "run_id") > 0 &&
         h5_attr_read(file, "run_id", H5T_NATIVE_UINT64, 1, &meta->run_id, NULL) != 0) ||
        (H5Aexists(file, "wall_seconds") > 0 &&
         (h5_attr_read(file, "wall_seconds", H5T_NATIVE_DOUBLE, 1, &meta->wall_s, NULL) != 0 ||
          !(meta->wall_s >= 0))) ||
        (H5Aexists(file, "segments") > 0 &&
         h5_attr_read_str(file, "segments", meta->segments, sizeof meta->segments) != 0))
        return err_set(e, "%s: malformed run_id, wall_seconds or segments attribute", path);
    return 0;
}

int ckpt_read_meta(const char *path, CkptMeta *meta, Error *e)
{
    int version = 0;
    hid_t file = open_checked(path, &version, e);
    if (file < 0)
        return -1;
    const int rc = meta_read(file, path, meta, e);
    H5Fclose(file);
    return rc;
}

/* The optimizer's state: /adam's step, hyper-parameters and moments. */
static int adam_read(hid_t file, const char *path, int version, const Model *m, Optimizer *o,
                     Error *e)
{
    int64_t t = 0;
    double hyper[4];
    hid_t g = H5Lexists(file, "adam", H5P_DEFAULT) > 0 ? H5Gopen2(file, "adam", H5P_DEFAULT)
                                                       : H5I_INVALID_HID;
    int rc = 0;
    if (g < 0 || h5_attr_read(g, "step", H5T_NATIVE_INT64, 1, &t, NULL) != 0 || t < 0 ||
        h5_attr_read(g, "lr_beta1_beta2_eps", H5T_NATIVE_DOUBLE, 4, hyper, NULL) != 0)
        rc = err_set(e, "%s: missing or malformed adam group", path);
    else if (tensors_read(g, "adam/", "m", m, o->m, path, version, e) != 0 ||
             tensors_read(g, "adam/", "v", m, o->v, path, version, e) != 0)
        rc = -1;
    if (g >= 0)
        H5Gclose(g);
    if (rc == 0) {
        o->adam.t = t;
        o->adam.lr = (float)hyper[0], o->adam.beta1 = (float)hyper[1];
        o->adam.beta2 = (float)hyper[2], o->adam.eps = (float)hyper[3];
    }
    return rc;
}

int ckpt_read(const char *path, Model *m, Optimizer *o, CkptMeta *meta, History *h, Error *e)
{
    int version = 0;
    hid_t file = open_checked(path, &version, e);
    if (file < 0)
        return -1;
    CkptModel desc;
    Model *layout = malloc(sizeof *layout);
    int rc = layout ? model_read(file, path, version, &desc, layout, e)
                    : err_set(e, "%s: out of memory", path);
    if (rc == 0 && !same_layout(layout, m)) {
        char have[512], want[512];
        model_describe(have, sizeof have, layout);
        model_describe(want, sizeof want, m);
        rc = err_set(e, "%s: checkpoint has layers %s but this run uses %s (check --layers)",
                     path, have, want);
    }
    /* a damaged file can ask the reader to overwrite nothing it did not check */
    CkptMeta *got = calloc(1, sizeof *got);
    if (!got)
        rc = err_set(e, "%s: out of memory", path);
    if (rc == 0)
        rc = meta_read(file, path, got, e);
    if (rc == 0)
        rc = tensors_read(file, "", "model", m, m->params, path, version, e);
    /* the optimizer's state is checked even when the caller only wants the
     * model: a file damaged anywhere is refused */
    Optimizer scratch = {0};
    const OptimConfig none = {.lr = 1.0f};
    if (rc == 0 && !o &&
        optim_create(&scratch, &none, m->param_floats, m->tensors, m->num_tensors, e))
        rc = -1;
    if (rc == 0)
        rc = adam_read(file, path, version, m, o ? o : &scratch, e);
    optim_free(&scratch);
    if (rc == 0)
        rc = history_read(file, path, got->epoch, h, e);
    if (rc == 0 && h->count != got->epoch)
        rc = err_set(e, "%s: history has %d epochs but the checkpoint says %d", path, h->count,
                     got->epoch);
    if (rc == 0) {
        *meta = *got;
        m->in_mean = desc.in_mean, m->in_scale = desc.in_scale;
    }
    free(got);
    free(layout);
    H5Fclose(file);
    return rc;
}

int ckpt_walk(const char *path, Error *e)
{
    CkptModel desc;
    if (ckpt_read_model(path, &desc, e) != 0)
        return -1;
    Model m;
    if (model_create(&m, &desc.spec, desc.input, desc.classes, 1, e) != 0)
        return -1;
    CkptMeta *meta = malloc(sizeof *meta);
    History h = {0};
    const int rc = meta ? ckpt_read(path, &m, NULL, meta, &h, e) : err_set(e, "out of memory");
    free(meta);
    history_free(&h);
    model_free(&m);
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

int ckpt_each(const char *run_dir, void (*fn)(const char *path, int epoch, int step, void *arg),
              void *arg)
{
    char dir[4096], path[4608];
    if (str_fmt(dir, sizeof dir, "%s/checkpoints", run_dir))
        return 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *ent;
    while ((ent = readdir(d))) {
        int epoch, step;
        const int best = strcmp(ent->d_name, "best.h5") == 0;
        if (!best && parse_name(ent->d_name, &epoch, &step) != 0)
            continue;
        if (best)
            epoch = -1, step = 0;
        snprintf(path, sizeof path, "%s/%s", dir, ent->d_name);
        fn(path, epoch, step, arg);
        n++;
    }
    closedir(d);
    return n;
}

typedef struct Candidate {
    int epoch, step;
} Candidate;

static int later_first(const void *a, const void *b)
{
    const Candidate *x = a, *y = b;
    if (x->epoch != y->epoch)
        return x->epoch < y->epoch ? 1 : -1;
    return (x->step < y->step) - (x->step > y->step);
}

int ckpt_find_latest(const char *run_dir, char *path, size_t size,
                     void (*skipped)(const char *path, const Error *why, void *arg), void *arg)
{
    char dir[4096];
    if (str_fmt(dir, sizeof dir, "%s/checkpoints", run_dir))
        return 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    Candidate *c = NULL;
    size_t n = 0, cap = 0;
    struct dirent *ent;
    while ((ent = readdir(d))) {
        int epoch, step;
        if (parse_name(ent->d_name, &epoch, &step) != 0 || epoch < 0)
            continue;
        if (n == cap) {
            Candidate *grown = realloc(c, sizeof *c * (cap = cap ? 2 * cap : 16));
            if (!grown)
                break;
            c = grown;
        }
        c[n++] = (Candidate){epoch, step};
    }
    closedir(d);
    if (n > 1)
        qsort(c, n, sizeof *c, later_first);
    int found = 0;
    for (size_t i = 0; i < n && !found; i++) {
        char candidate[4096];
        CkptModel desc;
        Error why = {{0}};
        if (ckpt_path(candidate, sizeof candidate, run_dir, c[i].epoch, c[i].step) != 0)
            continue;
        if (ckpt_read_model(candidate, &desc, &why) == 0)
            found = str_fmt(path, size, "%s", candidate) == 0;
        else if (skipped)
            skipped(candidate, &why, arg);
    }
    free(c);
    return found;
}

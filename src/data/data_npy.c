/* data_npy: .npy arrays and .npz archives (zipread) as image sets: a strict
 * parser of the .npy header (the Python dict literal NumPy writes), then
 * checks of dtype, byte order, memory order, shape, sizes, float range and
 * labels, each refusal naming the file or member, its shape and dtype and
 * what would be accepted. Must not call MPI or HDF5, print or exit. */
#define _POSIX_C_SOURCE 200809L
#include "mnist/data_npy.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mnist/zipread.h"

#define NPY_MAX_BYTES ((size_t)1 << 40)
#define SIDE_LIMIT 16384

static const uint8_t NPY_MAGIC[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

int data_is_npy(const char *path)
{
    uint8_t b[6];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    const long got = file_read_full(fd, b, sizeof b);
    close(fd);
    return got == 6 && memcmp(b, NPY_MAGIC, 6) == 0;
}

/* --- the header: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } ----- */

typedef struct Lexer {
    const char *p, *end;
} Lexer;

static void skip_ws(Lexer *l)
{
    while (l->p < l->end && (*l->p == ' ' || *l->p == '\t' || *l->p == '\n' || *l->p == '\r'))
        l->p++;
}

static int eat(Lexer *l, char c)
{
    skip_ws(l);
    if (l->p < l->end && *l->p == c) {
        l->p++;
        return 1;
    }
    return 0;
}

/* A quoted Python string without escapes into out (size bytes). */
static int lex_string(Lexer *l, char *out, size_t size)
{
    skip_ws(l);
    if (l->p >= l->end || (*l->p != '\'' && *l->p != '"'))
        return -1;
    const char q = *l->p++;
    size_t n = 0;
    while (l->p < l->end && *l->p != q) {
        if (*l->p == '\\' || n + 1 >= size)
            return -1;
        out[n++] = *l->p++;
    }
    if (l->p >= l->end)
        return -1;
    l->p++;
    out[n] = '\0';
    return 0;
}

/* A tuple of non-negative integers: (), (5,), (2, 3). */
static int lex_shape(Lexer *l, NpyArray *a)
{
    if (!eat(l, '('))
        return -1;
    a->ndim = 0;
    while (!eat(l, ')')) {
        skip_ws(l);
        if (a->ndim == 8 || l->p >= l->end || !isdigit((unsigned char)*l->p))
            return -1;
        uint64_t v = 0;
        while (l->p < l->end && isdigit((unsigned char)*l->p)) {
            if (v > (UINT64_C(1) << 56))
                return -1;
            v = v * 10 + (uint64_t)(*l->p++ - '0');
        }
        if (l->p < l->end && *l->p == 'L') /* Python 2's long */
            l->p++;
        a->shape[a->ndim++] = v;
        if (!eat(l, ',')) {
            if (!eat(l, ')'))
                return -1;
            break;
        }
    }
    return 0;
}

static int lex_bool(Lexer *l, int *out)
{
    skip_ws(l);
    const size_t left = (size_t)(l->end - l->p);
    if (left >= 4 && memcmp(l->p, "True", 4) == 0)
        return *out = 1, l->p += 4, 0;
    if (left >= 5 && memcmp(l->p, "False", 5) == 0)
        return *out = 0, l->p += 5, 0;
    return -1;
}

static int parse_dict(NpyArray *a, const char *text, size_t len, const char *what, Error *e)
{
    Lexer l = {text, text + len};
    int seen[3] = {0, 0, 0};
    if (!eat(&l, '{'))
        return err_set(e, "%s: malformed .npy header (no dictionary)", what);
    while (!eat(&l, '}')) {
        char key[32];
        int ok = lex_string(&l, key, sizeof key) == 0 && eat(&l, ':');
        int k = !ok ? -1 : strcmp(key, "descr") == 0 ? 0 : strcmp(key, "fortran_order") == 0 ? 1
                                                     : strcmp(key, "shape") == 0       ? 2 : -1;
        if (ok && k < 0)
            return err_set(e, "%s: malformed .npy header (unexpected key '%s')", what, key);
        if (ok && k == 0 && lex_string(&l, a->descr, sizeof a->descr) != 0)
            return err_set(e, "%s: its dtype is not a simple one (a structured or unusual "
                              "dtype); accepted are uint8 and float32 images, uint8, int32 and "
                              "int64 labels", what);
        if (ok && k == 1)
            ok = lex_bool(&l, &a->fortran_order) == 0;
        if (ok && k == 2)
            ok = lex_shape(&l, a) == 0;
        if (!ok || seen[k]++)
            return err_set(e, "%s: malformed .npy header near byte %ld of it", what,
                           (long)(l.p - text));
        if (!eat(&l, ',')) {
            if (!eat(&l, '}'))
                return err_set(e, "%s: malformed .npy header near byte %ld of it", what,
                               (long)(l.p - text));
            break;
        }
    }
    if (!seen[0] || !seen[1] || !seen[2])
        return err_set(e, "%s: malformed .npy header (it lacks '%s')", what,
                       !seen[0] ? "descr" : !seen[1] ? "fortran_order" : "shape");
    return 0;
}

int npy_parse(NpyArray *a, const uint8_t *buf, size_t n, const char *what, Error *e)
{
    memset(a, 0, sizeof *a);
    if (n < 10 || memcmp(buf, NPY_MAGIC, 6) != 0)
        return err_set(e, "%s: not a .npy array (no \\x93NUMPY magic)", what);
    const int major = buf[6];
    if (major < 1 || major > 3)
        return err_set(e, "%s: .npy format version %d.%d; this build reads versions 1 to 3",
                       what, major, buf[7]);
    const size_t prefix = major == 1 ? 10 : 12;
    if (n < prefix)
        return err_set(e, "%s: truncated .npy header (%zu bytes)", what, n);
    const size_t hlen = major == 1 ? (size_t)(buf[8] | buf[9] << 8)
                                   : (size_t)buf[8] | (size_t)buf[9] << 8 |
                                         (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
    if (hlen > n - prefix)
        return err_set(e, "%s: truncated .npy header: it says %zu bytes, %zu are there", what,
                       hlen, n - prefix);
    if (parse_dict(a, (const char *)buf + prefix, hlen, what, e))
        return -1;
    a->count = 1;
    for (int i = 0; i < a->ndim; i++) {
        if (a->shape[i] && a->count > UINT64_MAX / 16 / a->shape[i])
            return err_set(e, "%s: its shape is too large", what);
        a->count *= a->shape[i];
    }
    const char *d = a->descr;
    const size_t dl = strlen(d);
    size_t item = 0;
    if (dl >= 3 && strchr("<>|=", d[0]) && isalpha((unsigned char)d[1]))
        item = (size_t)strtoul(d + 2, NULL, 10);
    a->itemsize = item;
    a->data = buf + prefix + hlen;
    const uint64_t have = n - prefix - hlen;
    if (item && (a->count > UINT64_MAX / item || have != a->count * item)) {
        char shape[128];
        npy_shape_str(a, shape, sizeof shape);
        return err_set(e, "%s: holds %llu bytes of data but its header (shape %s, dtype '%s') "
                          "says %llu (%s)", what, (unsigned long long)have, shape, d,
                       (unsigned long long)(a->count * item),
                       have < a->count * item ? "truncated" : "trailing bytes");
    }
    return 0;
}

void npy_shape_str(const NpyArray *a, char *buf, size_t size)
{
    size_t o = (size_t)snprintf(buf, size, "(");
    for (int i = 0; i < a->ndim && o < size; i++)
        o += (size_t)snprintf(buf + o, size - o, "%s%llu", i ? ", " : "",
                              (unsigned long long)a->shape[i]);
    if (o < size)
        snprintf(buf + o, size - o, "%s)", a->ndim == 1 ? "," : "");
}

/* --- the arrays as images and labels ------------------------------------------------ */

/* NumPy's name for a descr, for messages. */
static const char *dtype_name(const char *d)
{
    static const struct {
        const char *code, *name;
    } names[] = {{"u1", "uint8"},   {"i1", "int8"},    {"u2", "uint16"},  {"i2", "int16"},
                 {"u4", "uint32"},  {"i4", "int32"},   {"u8", "uint64"},  {"i8", "int64"},
                 {"f2", "float16"}, {"f4", "float32"}, {"f8", "float64"}, {"b1", "bool"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(d) == 3 && strcmp(d + 1, names[i].code) == 0)
            return names[i].name;
    return "another type";
}

static int dtype_is(const NpyArray *a, const char *code)
{
    /* one-byte types carry no byte order: '|' (or '<', '>' from some writers) */
    if (strlen(a->descr) != 3 || strcmp(a->descr + 1, code) != 0)
        return 0;
    return code[1] == '1' ? a->descr[0] != '=' : a->descr[0] == '<';
}

static int refuse_dtype(const NpyArray *a, const char *what, const char *role,
                        const char *accepted, Error *e)
{
    char shape[128];
    npy_shape_str(a, shape, sizeof shape);
    const int big = a->descr[0] == '>' && a->descr[2] != '1';
    return err_set(e, "%s: %s of dtype '%s' (%s%s) and shape %s: accepted are %s%s", what, role,
                   a->descr, dtype_name(a->descr), big ? ", big-endian" : "", shape, accepted,
                   big ? " (save it little-endian: x.astype(x.dtype.newbyteorder('<')))" : "");
}

static const char IMAGES_ACCEPTED[] =
    "uint8 (0..255) or float32 (0..1) images, little-endian, shaped (N, H, W), (N, H, W, C) with "
    "C <= 4, or (N, P) with P a square number, e.g. (N, 28, 28) or (N, 784)";

/* The image shape of an accepted images array (dims after N). */
static int images_shape(const NpyArray *a, const char *what, Shape *out, Error *e)
{
    const uint64_t *s = a->shape;
    int ok = 0;
    if (a->ndim == 3 || a->ndim == 4) {
        ok = s[1] >= 1 && s[1] <= SIDE_LIMIT && s[2] >= 1 && s[2] <= SIDE_LIMIT &&
             (a->ndim == 3 || (s[3] >= 1 && s[3] <= 4));
        *out = (Shape){(int)s[1], (int)s[2], a->ndim == 4 ? (int)s[3] : 1};
    } else if (a->ndim == 2 && s[1] >= 1 && s[1] <= (uint64_t)SIDE_LIMIT * SIDE_LIMIT) {
        uint64_t side = 1;
        while (side * side < s[1])
            side++;
        ok = side * side == s[1];
        *out = (Shape){(int)side, (int)side, 1};
    }
    if (!ok) {
        char shape[128];
        npy_shape_str(a, shape, sizeof shape);
        return err_set(e, "%s: images of dtype '%s' (%s) and shape %s: accepted are %s", what,
                       a->descr, dtype_name(a->descr), shape, IMAGES_ACCEPTED);
    }
    if (s[0] == 0)
        return err_set(e, "%s: holds no images (shape (0, ...))", what);
    return 0;
}

/* Multi-index of flat element k of a, as "[i, j, k]". */
static void unravel(const NpyArray *a, uint64_t k, char *buf, size_t size)
{
    uint64_t idx[8];
    for (int i = a->ndim - 1; i >= 0; i--) {
        idx[i] = a->shape[i] ? k % a->shape[i] : 0;
        k = a->shape[i] ? k / a->shape[i] : 0;
    }
    size_t o = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < a->ndim && o < size; i++)
        o += (size_t)snprintf(buf + o, size - o, "%s%llu", i ? ", " : "",
                              (unsigned long long)idx[i]);
    if (o < size)
        snprintf(buf + o, size - o, "]");
}

/* Checks an images array and converts it into d->images (d->rows, d->shape).
 * A uint8 array's own buffer *owned is taken over (set to NULL). */
static int take_images(Dataset *d, const NpyArray *a, uint8_t **owned, const char *what, Error *e)
{
    const int u8 = dtype_is(a, "u1"), f32 = dtype_is(a, "f4");
    if (!u8 && !f32)
        return refuse_dtype(a, what, "images", IMAGES_ACCEPTED, e);
    if (a->fortran_order) {
        char shape[128];
        npy_shape_str(a, shape, sizeof shape);
        return err_set(e, "%s: images of dtype '%s' (%s) and shape %s are stored in Fortran order "
                          "(fortran_order: True): accepted is C order (save "
                          "np.ascontiguousarray(x))", what, a->descr, dtype_name(a->descr), shape);
    }
    if (images_shape(a, what, &d->shape, e))
        return -1;
    const size_t n = (size_t)a->count;
    if (u8 && owned && *owned) {
        memmove(*owned, a->data, n);
        d->images = *owned;
        *owned = NULL;
    } else {
        d->images = malloc(n + 1);
        if (!d->images)
            return err_set(e, "%s: out of memory for %zu pixels", what, n);
        if (u8)
            memcpy(d->images, a->data, n);
    }
    for (size_t k = 0; f32 && k < n; k++) {
        float v;
        memcpy(&v, a->data + 4 * k, 4); /* little-endian host (x86-64, arm64) */
        if (!(v >= 0.0f && v <= 1.0f)) {
            char at[96];
            unravel(a, k, at, sizeof at);
            free(d->images);
            d->images = NULL;
            return err_set(e, "%s: float32 images must lie in 0..1, but element %s is %g (for "
                              "0..255 values save uint8: x.astype(np.uint8))", what, at,
                           (double)v);
        }
        d->images[k] = (uint8_t)(v * 255.0f + 0.5f);
    }
    d->rows = (size_t)a->shape[0];
    return 0;
}

static int take_labels(Dataset *d, const NpyArray *a, int classes, const char *what, Error *e)
{
    const size_t item = dtype_is(a, "u1") ? 1 : dtype_is(a, "i4") ? 4 : dtype_is(a, "i8") ? 8 : 0;
    static const char accepted[] = "uint8, int32 or int64 labels, little-endian, of shape (N,)";
    if (!item)
        return refuse_dtype(a, what, "labels", accepted, e);
    if (a->ndim != 1) {
        char shape[128];
        npy_shape_str(a, shape, sizeof shape);
        return err_set(e, "%s: labels of dtype '%s' (%s) and shape %s: accepted are %s", what,
                       a->descr, dtype_name(a->descr), shape, accepted);
    }
    const size_t n = (size_t)a->shape[0];
    d->labels = malloc(n + 1);
    if (!d->labels)
        return err_set(e, "%s: out of memory for %zu labels", what, n);
    for (size_t i = 0; i < n; i++) {
        int64_t v = 0;
        const uint8_t *p = a->data + i * item;
        if (item == 1) {
            v = p[0];
        } else {
            uint64_t u = 0;
            for (size_t b = item; b-- > 0;)
                u = u << 8 | p[b];
            v = item == 4 ? (int64_t)(int32_t)(uint32_t)u : (int64_t)u;
        }
        if (v < 0 || v >= classes) {
            free(d->labels);
            d->labels = NULL;
            return err_set(e, "%s: label %lld at index %zu is outside 0..%d (another class "
                              "count: convert --classes N)", what, (long long)v, i, classes - 1);
        }
        d->labels[i] = (uint8_t)v;
    }
    return 0;
}

/* Both arrays parsed: checks and converts them into out. */
static int build_set(Dataset *out, const NpyArray *img, uint8_t **img_buf, const char *img_what,
                     const NpyArray *lab, const char *lab_what, int classes, Error *e)
{
    Dataset d = {0};
    d.classes = classes;
    if (take_images(&d, img, img_buf, img_what, e))
        return -1;
    if (lab && take_labels(&d, lab, classes, lab_what, e)) {
        dataset_free(&d);
        return -1;
    }
    if (lab && lab->shape[0] != d.rows) {
        char ls[128], is[128];
        npy_shape_str(lab, ls, sizeof ls);
        npy_shape_str(img, is, sizeof is);
        err_set(e, "%s: has %llu labels (dtype '%s', shape %s) but %s has %zu images (dtype '%s', "
                   "shape %s): accepted is one label per image", lab_what,
                (unsigned long long)lab->shape[0], lab->descr, ls, img_what, d.rows, img->descr, is);
        dataset_free(&d);
        return -1;
    }
    *out = d;
    return 0;
}

int data_npy_read(const char *images_path, const char *labels_path, int classes, Dataset *out,
                  Error *e)
{
    memset(out, 0, sizeof *out);
    if (classes < 2 || classes > DATA_MAX_CLASSES)
        return err_set(e, "%s: %d classes: a file holds 2..%d", images_path, classes,
                       DATA_MAX_CLASSES);
    uint8_t *ib = NULL, *lb = NULL;
    size_t in = 0, ln = 0;
    NpyArray img, lab;
    int rc = -1;
    if (file_read_all(images_path, NPY_MAX_BYTES, &ib, &in, e) ||
        npy_parse(&img, ib, in, images_path, e))
        goto done;
    if (labels_path && (file_read_all(labels_path, NPY_MAX_BYTES, &lb, &ln, e) ||
                        npy_parse(&lab, lb, ln, labels_path, e)))
        goto done;
    rc = build_set(out, &img, &ib, images_path, labels_path ? &lab : NULL, labels_path, classes, e);
done:
    free(ib);
    free(lb);
    return rc;
}

/* Extracts and parses member name (or name.npy) of z into a and *buf. */
static int npz_member(const ZipArchive *z, const char *name, NpyArray *a, uint8_t **buf,
                      char *what, size_t what_size, Error *e)
{
    char with_ext[512];
    snprintf(with_ext, sizeof with_ext, "%s.npy", name);
    const ZipMember *m = zipread_find(z, with_ext);
    if (!m)
        m = zipread_find(z, name);
    if (!m) {
        char names[512];
        zipread_names(z, names, sizeof names);
        return err_set(e, "%s: no member %s (it holds: %s)", z->path, with_ext, names);
    }
    snprintf(what, what_size, "%s: member %.*s", z->path, (int)(m->name_len > 200 ? 200 : m->name_len),
             m->name);
    size_t n = 0;
    if (zipread_extract(z, m, buf, &n, e))
        return -1;
    return npy_parse(a, *buf, n, what, e);
}

int data_npz_read(const char *path, const char *images_name, const char *labels_name,
                  int classes, Dataset *out, Error *e)
{
    memset(out, 0, sizeof *out);
    if (classes < 2 || classes > DATA_MAX_CLASSES)
        return err_set(e, "%s: %d classes: a file holds 2..%d", path, classes, DATA_MAX_CLASSES);
    ZipArchive z;
    if (zipread_open(&z, path, e))
        return -1;
    uint8_t *ib = NULL, *lb = NULL;
    NpyArray img, lab;
    char img_what[1400], lab_what[1400];
    int rc = -1;
    if (npz_member(&z, images_name, &img, &ib, img_what, sizeof img_what, e))
        goto done;
    if (labels_name && npz_member(&z, labels_name, &lab, &lb, lab_what, sizeof lab_what, e))
        goto done;
    rc = build_set(out, &img, &ib, img_what, labels_name ? &lab : NULL, lab_what, classes, e);
done:
    free(ib);
    free(lb);
    zipread_close(&z);
    return rc;
}

/* data_idx: reader for the original MNIST IDX files (big-endian header, raw
 * uint8 payload), checking magic, dims, exact file sizes, counts and labels.
 * Must not print, exit, call MPI, or accept a file whose size disagrees with
 * its header (truncated downloads are the common failure). */
#define _POSIX_C_SOURCE 200809L
#include "mnist/data_idx.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
    IDX_MAGIC_IMAGES = 0x00000803, /* unsigned byte, 3 dims */
    IDX_MAGIC_LABELS = 0x00000801, /* unsigned byte, 1 dim */
    IDX_TYPE_UBYTE = 0x08,
};

static uint32_t idx_be32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

/* Counts the bytes left in fd; only used to make a size error precise for
 * files fstat cannot size (pipes). */
static size_t idx_count_rest(int fd)
{
    uint8_t scratch[65536];
    size_t total = 0;
    ssize_t r;
    while ((r = file_read_full(fd, scratch, sizeof scratch)) > 0)
        total += (size_t)r;
    return total;
}

static int idx_size_error(const char *path, unsigned long long actual, unsigned long long expected,
                          uint32_t count, const char *what, Error *e)
{
    return err_set(e, "%s: file is %llu bytes but its header (%u %s) needs exactly %llu bytes (%s)",
                   path, actual, count, what, expected,
                   actual < expected ? "truncated" : "trailing bytes");
}

/* Loads one IDX file whose magic must be want; *data gets count × item_bytes
 * bytes (owned by the caller). */
static int idx_load(const char *path, uint32_t want, uint8_t **data, size_t *count, Error *e)
{
    int rc = -1;
    int fd = -1;
    uint8_t *payload = NULL;
    uint8_t head[16];
    const int images = want == IDX_MAGIC_IMAGES;
    const char *kind = images ? "images" : "labels";
    const size_t header_bytes = images ? 16 : 8;
    const size_t item_bytes = images ? MNIST_PIXELS : 1;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err_set(e, "%s: cannot open: %s", path, strerror(errno));
        goto cleanup;
    }
    ssize_t got = file_read_full(fd, head, 4);
    if (got < 0) {
        err_set(e, "%s: read failed: %s", path, strerror(errno));
        goto cleanup;
    }
    if (got < 4) {
        err_set(e, "%s: file is %zd bytes, too short for an IDX header", path, got);
        goto cleanup;
    }
    uint32_t magic = idx_be32(head);
    if (magic != want) {
        if (head[0] == 0x1f && head[1] == 0x8b)
            err_set(e, "%s: gzip-compressed, not an IDX file; gunzip it first", path);
        else if (magic == IDX_MAGIC_IMAGES || magic == IDX_MAGIC_LABELS)
            err_set(e, "%s: this is an IDX %s file (magic 0x%08x), expected %s (magic 0x%08x)",
                    path, images ? "labels" : "images", magic, kind, want);
        else
            err_set(e, "%s: not an IDX %s file: magic 0x%08x, expected 0x%08x", path, kind, magic,
                    want);
        goto cleanup;
    }
    got = file_read_full(fd, head + 4, header_bytes - 4);
    if (got < 0) {
        err_set(e, "%s: read failed: %s", path, strerror(errno));
        goto cleanup;
    }
    if ((size_t)got < header_bytes - 4) {
        err_set(e, "%s: file is %zu bytes, too short for an IDX %s header (%zu bytes)", path,
                (size_t)got + 4, kind, header_bytes);
        goto cleanup;
    }
    uint32_t n = idx_be32(head + 4);
    if (images) {
        uint32_t rows = idx_be32(head + 8), cols = idx_be32(head + 12);
        if (rows != MNIST_SIDE || cols != MNIST_SIDE) {
            err_set(e, "%s: images have dims [%u,%u,%u], expected [N,%d,%d]", path, n, rows, cols,
                    MNIST_SIDE, MNIST_SIDE);
            goto cleanup;
        }
    }
    if (n == 0) {
        err_set(e, "%s: header says 0 %s; nothing to read", path, kind);
        goto cleanup;
    }
    if ((size_t)n > (SIZE_MAX - header_bytes) / item_bytes) {
        err_set(e, "%s: %u %s do not fit in memory on this machine", path, n, kind);
        goto cleanup;
    }
    size_t payload_bytes = (size_t)n * item_bytes;
    unsigned long long expected = (unsigned long long)header_bytes + payload_bytes;

    /* Check the size before allocating, so a truncated download fails fast. */
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
        (unsigned long long)st.st_size != expected) {
        idx_size_error(path, (unsigned long long)st.st_size, expected, n, kind, e);
        goto cleanup;
    }
    payload = malloc(payload_bytes);
    if (!payload) {
        err_set(e, "%s: out of memory for %u %s (%zu bytes)", path, n, kind, payload_bytes);
        goto cleanup;
    }
    got = file_read_full(fd, payload, payload_bytes);
    if (got < 0) {
        err_set(e, "%s: read failed: %s", path, strerror(errno));
        goto cleanup;
    }
    if ((size_t)got < payload_bytes) {
        idx_size_error(path, header_bytes + (unsigned long long)got, expected, n, kind, e);
        goto cleanup;
    }
    size_t extra = idx_count_rest(fd);
    if (extra > 0) {
        idx_size_error(path, expected + extra, expected, n, kind, e);
        goto cleanup;
    }
    *data = payload;
    *count = n;
    payload = NULL;
    rc = 0;

cleanup:
    free(payload);
    if (fd >= 0)
        close(fd);
    return rc;
}

int data_idx_read(const char *images_path, const char *labels_path, int classes, Dataset *out,
                  Error *e)
{
    Dataset d = {0};
    size_t n_images = 0, n_labels = 0;
    memset(out, 0, sizeof *out);
    if (classes < 2 || classes > DATA_MAX_CLASSES)
        return err_set(e, "%s: %d classes: a file holds 2..%d", images_path, classes,
                       DATA_MAX_CLASSES);

    if (idx_load(images_path, IDX_MAGIC_IMAGES, &d.images, &n_images, e))
        goto fail;
    if (labels_path) {
        if (idx_load(labels_path, IDX_MAGIC_LABELS, &d.labels, &n_labels, e))
            goto fail;
        if (n_labels != n_images) {
            err_set(e, "%s: has %zu labels but %s has %zu images", labels_path, n_labels,
                    images_path, n_images);
            goto fail;
        }
        for (size_t i = 0; i < n_labels; i++) {
            if (d.labels[i] >= classes) {
                err_set(e, "%s: label %u at item %zu (0-based) is outside 0..%d", labels_path,
                        d.labels[i], i, classes - 1);
                goto fail;
            }
        }
    }
    d.rows = n_images;
    d.shape = (Shape){MNIST_SIDE, MNIST_SIDE, 1};
    d.classes = classes;
    *out = d;
    return 0;

fail:
    free(d.images);
    free(d.labels);
    return -1;
}

int data_is_idx(const char *path)
{
    uint8_t b[4];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t got = file_read_full(fd, b, sizeof b);
    close(fd);
    return got == 4 && b[0] == 0 && b[1] == 0 && b[2] == IDX_TYPE_UBYTE && b[3] >= 1 && b[3] <= 3;
}

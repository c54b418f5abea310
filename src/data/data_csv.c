/* data_csv: MNIST CSV reader (streaming, 1 MiB blocks, one byte-level state
 * machine) and writer (hand-formatted integers, temp file + rename).
 * Errors name PATH:LINE:COLUMN with a sanitized excerpt of the bad field.
 * Must not print, exit, read line by line into fixed buffers, or call MPI. */
#define _POSIX_C_SOURCE 200809L
#include "mnist/data_csv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bytes the reader takes per read(). tools/fuzz also builds it with a tiny
 * block (>= 8, so the first block still holds any file signature) and checks
 * both builds agree, which puts block boundaries inside fields, line ends
 * and the BOM. */
#ifndef MNIST_CSV_READ_BLOCK
#define MNIST_CSV_READ_BLOCK (1 << 20)
#endif

enum {
    CSV_BLOCK_BYTES = 1 << 20, /* the writer's buffer */
    CSV_READ_BLOCK = MNIST_CSV_READ_BLOCK,
    CSV_MAX_FIELDS = MNIST_PIXELS + 1, /* label + pixels */
    CSV_EXCERPT_BYTES = 20,            /* raw bytes of a bad field shown in a message */
    /* The accumulator saturates here: anything above 255 is already an
     * error, and saturating keeps a 10-million-digit field from overflowing. */
    CSV_VAL_CAP = 1000,
    /* Shortest possible data row: one digit per field, commas, newline.
     * Dividing the file size by it bounds the row count from above. */
    CSV_MIN_ROW_BYTES = 2 * MNIST_PIXELS,
    CSV_INITIAL_ROWS_MAX = 1 << 16,
};

enum { MODE_START, MODE_HEADER, MODE_DATA, MODE_AFTER_BLANK };

typedef struct CsvParser {
    const char *path;
    Error *e;
    int mode;
    unsigned max_label; /* the declared class count - 1 */
    unsigned ncols;     /* 784 or 785 once the header or first data line decides; 0 before */
    int had_header;
    size_t line;        /* 1-based physical line of the byte being parsed */
    size_t blank_line;  /* first blank line, 0 if none yet */
    size_t header_fields;
    int cr_pending;     /* the previous block ended on '\r' */
    unsigned cr_col;

    /* The field being parsed. Its bytes in earlier blocks are summarized by
     * carry (first bytes, for the excerpt) and field_bytes_before. */
    unsigned fld; /* 0-based index */
    uint32_t val;
    int has_digit;
    int bad;          /* saw a byte that is not a digit */
    unsigned char bad_first;
    int bad_first_at_start;
    size_t bad_count;
    const uint8_t *fstart; /* start of the field's bytes in the current block */
    unsigned char carry[CSV_EXCERPT_BYTES + 1];
    size_t carry_len;
    size_t field_bytes_before;

    uint8_t row[CSV_MAX_FIELDS];
    uint8_t *images, *labels;
    size_t rows, cap;
    size_t size_hint; /* file size in bytes, 0 if unknown */
} CsvParser;

/* Writes at most CSV_EXCERPT_BYTES of the field, escaping anything that is
 * not printable ASCII so a binary file cannot garble the message. */
static void csv_excerpt(const CsvParser *ps, const uint8_t *end, char *out, size_t out_size)
{
    unsigned char raw[CSV_EXCERPT_BYTES];
    size_t n = 0;
    for (size_t i = 0; i < ps->carry_len && n < CSV_EXCERPT_BYTES; i++)
        raw[n++] = ps->carry[i];
    for (const uint8_t *q = ps->fstart; q && q < end && n < CSV_EXCERPT_BYTES; q++)
        raw[n++] = *q;
    size_t total = ps->field_bytes_before + (ps->fstart && end ? (size_t)(end - ps->fstart) : 0);

    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < out_size; i++) {
        unsigned char c = raw[i];
        if (c >= 0x20 && c < 0x7f) {
            out[o++] = (char)c;
        } else {
            static const char hex[] = "0123456789abcdef";
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    if (total > n && o + 4 < out_size) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

static int csv_at(CsvParser *ps, size_t line, unsigned col, const char *what)
{
    return err_set(ps->e, "%s:%zu:%u: %s", ps->path, line, col, what);
}

static void csv_reset_field(CsvParser *ps, const uint8_t *p)
{
    ps->val = 0;
    ps->has_digit = 0;
    ps->bad = 0;
    ps->bad_count = 0;
    ps->carry_len = 0;
    ps->field_bytes_before = 0;
    ps->fstart = p;
}

static int csv_is_label_field(const CsvParser *ps)
{
    return ps->fld == 0 && ps->ncols == CSV_MAX_FIELDS;
}

/* Validates the field ending at end (exclusive) and stores it in row. */
static int csv_finish_field(CsvParser *ps, const uint8_t *end)
{
    char ex[CSV_EXCERPT_BYTES * 4 + 8], msg[256];
    unsigned col = ps->fld + 1;
    const char *range = csv_is_label_field(ps)             ? "labels must be 0..9"
                        : (ps->fld == 0 && ps->ncols == 0) ? "labels are 0..9, pixels 0..255"
                                                           : "pixel values must be 0..255";
    if (ps->bad) {
        csv_excerpt(ps, end, ex, sizeof ex);
        unsigned char c = ps->bad_first;
        if (c == '\0')
            snprintf(msg, sizeof msg, "NUL byte in field '%s' (is this a binary file?)", ex);
        else if (c == '"' || c == '\'')
            snprintf(msg, sizeof msg, "'%s' is quoted; quotes are not supported", ex);
        else if (c == ' ' || c == '\t' || c == '\v' || c == '\f')
            snprintf(msg, sizeof msg, "'%s' contains whitespace; fields must be bare integers", ex);
        else if (c == '-' && ps->bad_first_at_start && ps->bad_count == 1 && ps->has_digit)
            snprintf(msg, sizeof msg, "'%s' is negative; %s", ex, range);
        else
            snprintf(msg, sizeof msg, "'%s' is not an integer (%s)", ex, range);
        return csv_at(ps, ps->line, col, msg);
    }
    if (!ps->has_digit)
        return csv_at(ps, ps->line, col, "empty field (expected an integer)");
    if (csv_is_label_field(ps) && ps->val > ps->max_label) {
        csv_excerpt(ps, end, ex, sizeof ex);
        snprintf(msg, sizeof msg, "label %s is outside 0..%u", ex, ps->max_label);
        return csv_at(ps, ps->line, col, msg);
    }
    if (ps->val > 255) {
        csv_excerpt(ps, end, ex, sizeof ex);
        snprintf(msg, sizeof msg, "pixel value %s is outside 0..255", ex);
        return csv_at(ps, ps->line, col, msg);
    }
    ps->row[ps->fld++] = (uint8_t)ps->val;
    return 0;
}

static int csv_grow(CsvParser *ps)
{
    size_t cap = ps->cap;
    if (cap == 0) {
        cap = ps->size_hint ? ps->size_hint / CSV_MIN_ROW_BYTES + 1 : 1024;
        if (cap > CSV_INITIAL_ROWS_MAX)
            cap = CSV_INITIAL_ROWS_MAX;
    } else {
        if (cap > SIZE_MAX / 2 / MNIST_PIXELS)
            goto oom;
        cap *= 2;
    }
    uint8_t *images = realloc(ps->images, cap * MNIST_PIXELS);
    if (!images)
        goto oom;
    ps->images = images;
    if (ps->ncols == CSV_MAX_FIELDS) {
        uint8_t *labels = realloc(ps->labels, cap);
        if (!labels)
            goto oom;
        ps->labels = labels;
    }
    ps->cap = cap;
    return 0;
oom:
    return err_set(ps->e, "%s:%zu: out of memory after %zu rows (the images need %zu bytes each)",
                   ps->path, ps->line, ps->rows, (size_t)MNIST_PIXELS);
}

/* Called after the last field of a data line was stored. */
static int csv_end_data_line(CsvParser *ps)
{
    char msg[128];
    unsigned n = ps->fld;
    if (ps->ncols == 0) {
        if (n != MNIST_PIXELS && n != CSV_MAX_FIELDS) {
            snprintf(msg, sizeof msg, "expected %u or %u fields, found %u", (unsigned)MNIST_PIXELS,
                     (unsigned)CSV_MAX_FIELDS, n);
            return csv_at(ps, ps->line, n, msg);
        }
        ps->ncols = n;
        /* The label range could not be checked while the column count was
         * still open, so check it now. */
        if (n == CSV_MAX_FIELDS && ps->row[0] > ps->max_label) {
            snprintf(msg, sizeof msg, "label %u is outside 0..%u", ps->row[0], ps->max_label);
            return csv_at(ps, ps->line, 1, msg);
        }
    } else if (n != ps->ncols) {
        snprintf(msg, sizeof msg, "expected %u fields, found %u", ps->ncols, n);
        return csv_at(ps, ps->line, n, msg);
    }
    if (ps->rows == ps->cap && csv_grow(ps))
        return -1;
    int has_label = ps->ncols == CSV_MAX_FIELDS;
    memcpy(ps->images + ps->rows * MNIST_PIXELS, ps->row + has_label, MNIST_PIXELS);
    if (has_label)
        ps->labels[ps->rows] = ps->row[0];
    ps->rows++;
    ps->fld = 0;
    return 0;
}

/* Consumes the line end at *pp ("\n", "\r\n", or "\r" at a block end) and
 * advances the line count. */
static int csv_eol(CsvParser *ps, const uint8_t **pp, const uint8_t *end, unsigned col)
{
    const uint8_t *p = *pp;
    if (*p == '\r') {
        if (p + 1 == end) {
            ps->cr_pending = 1;
            ps->cr_col = col;
            p++;
        } else if (p[1] == '\n') {
            p += 2;
        } else {
            return csv_at(ps, ps->line, col, "carriage return not followed by a line feed");
        }
    } else {
        p++;
    }
    ps->line++;
    *pp = p;
    return 0;
}

static int csv_header_start(unsigned char c)
{
    /* Deliberately narrower than "not a digit": a first line like "-3,..."
     * or " 5,..." is a broken data row and must be reported, not skipped. */
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '"' || c == '\'';
}

/* The hot loop: digits and commas of well-formed fields stay here; anything
 * else returns the position of the byte for csv_data_special. State lives in
 * locals because stores through uint8_t * may alias the parser struct. */
static const uint8_t *csv_scan_data(CsvParser *ps, const uint8_t *p, const uint8_t *end)
{
    uint32_t val = ps->val;
    int has_digit = ps->has_digit;
    unsigned fld = ps->fld;
    const int bad = ps->bad;
    const unsigned last = (ps->ncols ? ps->ncols : CSV_MAX_FIELDS) - 1;
    uint32_t lim = (fld == 0 && ps->ncols == CSV_MAX_FIELDS) ? ps->max_label : 255;
    uint8_t *row = ps->row;
    const uint8_t *fstart = ps->fstart;

    while (p < end) {
        unsigned c = *p;
        unsigned d = c - '0';
        if (d < 10) {
            val = val * 10 + d;
            val = val > CSV_VAL_CAP ? CSV_VAL_CAP : val;
            has_digit = 1;
            p++;
            continue;
        }
        if (c != ',' || bad || !has_digit || val > lim || fld >= last)
            break;
        row[fld++] = (uint8_t)val;
        val = 0;
        has_digit = 0;
        lim = 255;
        fstart = ++p;
    }
    ps->val = val;
    ps->has_digit = has_digit;
    ps->fld = fld;
    if (fstart != ps->fstart) {
        /* A field ended here; bytes carried from the previous block were
         * its, not the next field's (they would corrupt its message). */
        ps->carry_len = 0;
        ps->field_bytes_before = 0;
    }
    ps->fstart = fstart;
    return p;
}

static int csv_data_special(CsvParser *ps, const uint8_t **pp, const uint8_t *end)
{
    const uint8_t *p = *pp;
    unsigned char c = *p;
    if (c == ',') {
        if (csv_finish_field(ps, p))
            return -1;
        unsigned last = (ps->ncols ? ps->ncols : CSV_MAX_FIELDS) - 1;
        if (ps->fld > last) {
            char msg[96];
            if (ps->ncols)
                snprintf(msg, sizeof msg, "expected %u fields, found more", ps->ncols);
            else
                snprintf(msg, sizeof msg, "expected %u or %u fields, found more",
                         (unsigned)MNIST_PIXELS, (unsigned)CSV_MAX_FIELDS);
            return csv_at(ps, ps->line, ps->fld + 1, msg);
        }
        csv_reset_field(ps, p + 1);
        *pp = p + 1;
        return 0;
    }
    if (c == '\n' || c == '\r') {
        unsigned last_col = ps->fld + 1;
        int blank = ps->fld == 0 && !ps->has_digit && !ps->bad && ps->fstart == p &&
                    ps->field_bytes_before == 0;
        if (blank) {
            ps->blank_line = ps->line;
            ps->mode = MODE_AFTER_BLANK;
        } else if (csv_finish_field(ps, p) || csv_end_data_line(ps)) {
            return -1;
        }
        if (csv_eol(ps, &p, end, last_col))
            return -1;
        csv_reset_field(ps, p);
        *pp = p;
        return 0;
    }
    if (!ps->bad) {
        ps->bad = 1;
        ps->bad_first = c;
        ps->bad_first_at_start = !ps->has_digit && p == ps->fstart && ps->field_bytes_before == 0;
    }
    ps->bad_count++;
    *pp = p + 1;
    return 0;
}

static int csv_end_header(CsvParser *ps)
{
    size_t n = ps->header_fields;
    if (n != MNIST_PIXELS && n != CSV_MAX_FIELDS) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "header has %zu fields, expected %u (pixels) or %u (label + pixels)", n,
                 (unsigned)MNIST_PIXELS, (unsigned)CSV_MAX_FIELDS);
        return csv_at(ps, ps->line, n < MNIST_PIXELS ? (unsigned)n : CSV_MAX_FIELDS + 1, msg);
    }
    ps->ncols = (unsigned)n;
    return 0;
}

static int csv_feed(CsvParser *ps, const uint8_t *p, const uint8_t *end)
{
    if (ps->cr_pending) {
        ps->cr_pending = 0;
        if (*p != '\n')
            return csv_at(ps, ps->line - 1, ps->cr_col, "carriage return not followed by a line feed");
        p++;
    }
    ps->fstart = p; /* a field continuing from the last block is in carry */
    while (p < end) {
        switch (ps->mode) {
        case MODE_START:
            if (*p == '\n' || *p == '\r') {
                ps->blank_line = ps->line;
                ps->mode = MODE_AFTER_BLANK;
                if (csv_eol(ps, &p, end, 1))
                    return -1;
            } else if (csv_header_start(*p)) {
                ps->mode = MODE_HEADER;
                ps->had_header = 1;
                ps->header_fields = 1;
            } else {
                ps->mode = MODE_DATA;
                csv_reset_field(ps, p);
            }
            break;
        case MODE_HEADER: {
            /* Header names are free text; only the separators matter. */
            const uint8_t *q = p;
            while (q < end && *q != '\n' && *q != '\r') {
                ps->header_fields += *q == ',';
                q++;
            }
            p = q;
            if (p < end) {
                if (csv_end_header(ps))
                    return -1;
                if (csv_eol(ps, &p, end, (unsigned)ps->header_fields))
                    return -1;
                ps->mode = MODE_DATA;
                csv_reset_field(ps, p);
            }
            break;
        }
        case MODE_DATA:
            p = csv_scan_data(ps, p, end);
            if (p < end && csv_data_special(ps, &p, end))
                return -1;
            break;
        case MODE_AFTER_BLANK:
            if (*p != '\n' && *p != '\r')
                return csv_at(ps, ps->blank_line, 1,
                              "blank line in the middle of the file (only allowed at the end)");
            if (csv_eol(ps, &p, end, 1))
                return -1;
            break;
        }
    }
    if (ps->mode == MODE_DATA && ps->fstart < end) {
        size_t n = (size_t)(end - ps->fstart);
        size_t room = sizeof ps->carry - ps->carry_len;
        memcpy(ps->carry + ps->carry_len, ps->fstart, n < room ? n : room);
        ps->carry_len += n < room ? n : room;
        ps->field_bytes_before += n;
    }
    ps->fstart = NULL;
    return 0;
}

static int csv_finish(CsvParser *ps, size_t content_bytes)
{
    if (content_bytes == 0)
        return err_set(ps->e, "%s: file is empty", ps->path);
    if (ps->mode == MODE_HEADER && csv_end_header(ps))
        return -1;
    if (ps->mode == MODE_DATA && (ps->fld > 0 || ps->has_digit || ps->bad || ps->field_bytes_before > 0)) {
        /* Missing final newline: the field's bytes are all in carry now. */
        ps->fstart = NULL;
        if (csv_finish_field(ps, NULL) || csv_end_data_line(ps))
            return -1;
    }
    if (ps->rows == 0) {
        if (ps->had_header)
            return err_set(ps->e, "%s: no data rows (header only)", ps->path);
        return err_set(ps->e, "%s: no data rows (only blank lines)", ps->path);
    }
    return 0;
}

int data_csv_read(const char *path, int classes, Dataset *out, Error *e)
{
    int rc = -1;
    int fd = -1;
    uint8_t *buf = NULL;
    CsvParser *ps = NULL;
    memset(out, 0, sizeof *out);

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err_set(e, "%s: cannot open: %s", path, strerror(errno));
        goto cleanup;
    }
    buf = malloc(CSV_READ_BLOCK);
    ps = calloc(1, sizeof *ps);
    if (!buf || !ps) {
        err_set(e, "%s: out of memory for the read buffer", path);
        goto cleanup;
    }
    if (classes < 2 || classes > DATA_MAX_CLASSES) {
        err_set(e, "%s: %d classes: a file holds 2..%d", path, classes, DATA_MAX_CLASSES);
        goto cleanup;
    }
    ps->path = path;
    ps->e = e;
    ps->max_label = (unsigned)classes - 1;
    ps->line = 1;
    ps->mode = MODE_START;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
        ps->size_hint = (size_t)st.st_size;

    size_t content_bytes = 0;
    int first = 1;
    for (;;) {
        ssize_t n = file_read_full(fd, buf, CSV_READ_BLOCK);
        if (n < 0) {
            err_set(e, "%s: read failed: %s", path, strerror(errno));
            goto cleanup;
        }
        const uint8_t *p = buf, *end = buf + n;
        if (first && n >= 3 && buf[0] == 0xEF && buf[1] == 0xBB && buf[2] == 0xBF)
            p += 3;
        /* Common mix-ups get a hint instead of a byte-level complaint. */
        if (first && n >= 2 && buf[0] == 0x1f && buf[1] == 0x8b) {
            err_set(e, "%s: gzip-compressed, not CSV; gunzip it first", path);
            goto cleanup;
        }
        if (first && n >= 4 && buf[0] == 0 && buf[1] == 0 && buf[2] == 0x08 && buf[3] >= 1 && buf[3] <= 3) {
            err_set(e, "%s: this is an IDX file, not CSV", path);
            goto cleanup;
        }
        if (first && n >= 4 && buf[0] == 0 && buf[1] == 0 && buf[2] >= 0x09 && buf[2] <= 0x0e &&
            buf[3] >= 1 && buf[3] <= 3) {
            err_set(e, "%s: an IDX file of element type 0x%02x, not CSV; only unsigned bytes "
                       "(0x08) are supported", path, buf[2]);
            goto cleanup;
        }
        if (first && n >= 8 && memcmp(buf, "\x89HDF\r\n\x1a\n", 8) == 0) {
            err_set(e, "%s: this is an HDF5 file, not CSV (train, evaluate and predict read it "
                       "directly)", path);
            goto cleanup;
        }
        first = 0;
        content_bytes += (size_t)(end - p);
        if (p < end && csv_feed(ps, p, end))
            goto cleanup;
        if ((size_t)n < CSV_READ_BLOCK)
            break;
    }
    if (csv_finish(ps, content_bytes))
        goto cleanup;

    /* Give back the slack of the geometric growth. */
    uint8_t *images = realloc(ps->images, ps->rows * MNIST_PIXELS);
    if (images)
        ps->images = images;
    if (ps->labels) {
        uint8_t *labels = realloc(ps->labels, ps->rows);
        if (labels)
            ps->labels = labels;
    }
    out->images = ps->images;
    out->labels = ps->labels;
    out->rows = ps->rows;
    out->shape = (Shape){MNIST_SIDE, MNIST_SIDE, 1};
    out->classes = classes;
    ps->images = ps->labels = NULL;
    rc = 0;

cleanup:
    if (ps) {
        free(ps->images);
        free(ps->labels);
    }
    free(ps);
    free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* "v," for every byte value, so a pixel is one 4-byte copy plus a length. */
typedef struct CsvNum {
    char s[4];
    uint8_t len;
} CsvNum;

static void csv_num_table(CsvNum *t)
{
    for (int v = 0; v < 256; v++) {
        char tmp[4];
        int n = 0;
        if (v >= 100)
            tmp[n++] = (char)('0' + v / 100);
        if (v >= 10)
            tmp[n++] = (char)('0' + v / 10 % 10);
        tmp[n++] = (char)('0' + v % 10);
        tmp[n++] = ',';
        memset(t[v].s, 0, sizeof t[v].s);
        memcpy(t[v].s, tmp, (size_t)n);
        t[v].len = (uint8_t)n;
    }
}

static int csv_write_all(int fd, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

int data_csv_write(const char *path, const Dataset *d, Error *e)
{
    enum { ROW_MAX_BYTES = 4 * CSV_MAX_FIELDS + 1 };
    int rc = -1;
    int fd = -1;
    int tmp_exists = 0;
    char *buf = NULL;
    char tmp[4096];
    CsvNum tab[256];

    if (!d || d->rows == 0 || !d->images)
        return err_set(e, "%s: refusing to write an empty dataset (the CSV reader rejects empty files)",
                       path);
    if (dataset_pixels(d) != MNIST_PIXELS || d->shape.c != 1)
        return err_set(e, "%s: CSV holds 28x28 grey images, not %dx%dx%d; nothing written", path,
                       d->shape.h, d->shape.w, d->shape.c);
    const int classes = d->classes ? d->classes : DATA_DEFAULT_CLASSES;
    if (d->labels) {
        for (size_t r = 0; r < d->rows; r++)
            if (d->labels[r] >= classes)
                return err_set(e, "%s: row %zu has label %u, outside 0..%d; nothing written", path,
                               r, d->labels[r], classes - 1);
    }
    if (path_tmp_name(tmp, sizeof tmp, path, e))
        return -1;
    buf = malloc(CSV_BLOCK_BYTES);
    if (!buf) {
        err_set(e, "%s: out of memory for the write buffer", path);
        goto cleanup;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        err_set(e, "%s: cannot create %s: %s", path, tmp, strerror(errno));
        goto cleanup;
    }
    tmp_exists = 1;
    csv_num_table(tab);

    size_t used = 0;
    for (size_t r = 0; r < d->rows; r++) {
        if (CSV_BLOCK_BYTES - used < ROW_MAX_BYTES) {
            if (csv_write_all(fd, buf, used)) {
                err_set(e, "%s: cannot write %s: %s", path, tmp, strerror(errno));
                goto cleanup;
            }
            used = 0;
        }
        char *o = buf + used;
        if (d->labels) {
            const CsvNum *n = &tab[d->labels[r]];
            memcpy(o, n->s, 4);
            o += n->len;
        }
        const uint8_t *img = d->images + r * MNIST_PIXELS;
        for (int i = 0; i < MNIST_PIXELS; i++) {
            const CsvNum *n = &tab[img[i]];
            memcpy(o, n->s, 4);
            o += n->len;
        }
        o[-1] = '\n'; /* the last pixel's comma becomes the line end */
        used = (size_t)(o - buf);
    }
    if (used && csv_write_all(fd, buf, used)) {
        err_set(e, "%s: cannot write %s: %s", path, tmp, strerror(errno));
        goto cleanup;
    }
    int cfd = fd;
    fd = -1;
    if (close(cfd) != 0) {
        err_set(e, "%s: cannot close %s: %s", path, tmp, strerror(errno));
        goto cleanup;
    }
    tmp_exists = 0; /* path_commit renames it or removes it */
    if (path_commit(tmp, path, e))
        goto cleanup;
    rc = 0;

cleanup:
    if (fd >= 0)
        close(fd);
    if (tmp_exists)
        unlink(tmp);
    free(buf);
    return rc;
}

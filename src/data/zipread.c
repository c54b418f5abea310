/* zipread: a ZIP reader for .npz files: the end-of-central-directory record
 * (and its zip64 form), the central directory, and one member at a time,
 * inflated with zlib and checked against its CRC-32. Every offset and length
 * read from the file is checked against the file's size before use, so a
 * damaged or hostile archive is refused, never read out of bounds. Must not
 * call MPI or HDF5, print or exit. */
#define _POSIX_C_SOURCE 200809L
#include "mnist/zipread.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

enum {
    EOCD_BYTES = 22,
    EOCD64_BYTES = 56,
    LOCATOR_BYTES = 20,
    CENTRAL_BYTES = 46,
    LOCAL_BYTES = 30,
    MAX_COMMENT = 65535,
};
#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOCATOR 0x07064b50u
#define ZIP_MAX_BYTES ((size_t)1 << 40)
/* deflate cannot expand data by more than about 1032:1, so a member whose
 * sizes say otherwise is damaged (or a bomb): refused before allocating */
#define DEFLATE_MAX_RATIO 1100u

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

/* 1 if [off, off + len) lies inside n bytes. */
static int inside(uint64_t off, uint64_t len, uint64_t n) { return off <= n && len <= n - off; }

void zipread_close(ZipArchive *z)
{
    free(z->bytes);
    free(z->members);
    memset(z, 0, sizeof *z);
}

int zipread_is_zip(const char *path)
{
    uint8_t b[4];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    const long got = file_read_full(fd, b, sizeof b);
    close(fd);
    return got == 4 && (rd32(b) == SIG_LOCAL || rd32(b) == SIG_EOCD);
}

/* The end-of-central-directory record: the last "PK\5\6" whose comment fits
 * in the file. Fills the directory's entry count, size and offset, from the
 * zip64 record when the classic one says so. */
static int find_directory(const ZipArchive *z, uint64_t *entries, uint64_t *cd_size,
                          uint64_t *cd_offset, Error *e)
{
    const uint8_t *b = z->bytes;
    const size_t n = z->size;
    if (n < EOCD_BYTES)
        return err_set(e, "%s: not a ZIP archive (%zu bytes, too short for one; truncated?)",
                       z->path, n);
    size_t at = n - EOCD_BYTES, lowest = n > EOCD_BYTES + MAX_COMMENT ? n - EOCD_BYTES - MAX_COMMENT : 0;
    int found = 0;
    for (;; at--) {
        if (rd32(b + at) == SIG_EOCD && rd16(b + at + 20) <= n - at - EOCD_BYTES) {
            found = 1;
            break;
        }
        if (at == lowest)
            break;
    }
    if (!found)
        return err_set(e, "%s: not a complete ZIP archive: no end-of-central-directory record "
                          "(truncated, or not a .npz file)", z->path);
    const uint8_t *r = b + at;
    if (rd16(r + 4) != 0 || rd16(r + 6) != 0 || rd16(r + 8) != rd16(r + 10))
        return err_set(e, "%s: a ZIP archive spanning several disks is not supported", z->path);
    *entries = rd16(r + 10), *cd_size = rd32(r + 12), *cd_offset = rd32(r + 16);
    const int wants64 = *entries == 0xffff || *cd_size == 0xffffffffu || *cd_offset == 0xffffffffu;
    const int has_locator = at >= LOCATOR_BYTES && rd32(b + at - LOCATOR_BYTES) == SIG_LOCATOR;
    if (wants64 && !has_locator)
        return err_set(e, "%s: damaged ZIP archive: its directory needs a zip64 record that is "
                          "missing", z->path);
    if (has_locator) {
        const uint8_t *loc = b + at - LOCATOR_BYTES;
        const uint64_t off = rd64(loc + 8);
        if (rd32(loc + 4) != 0 || rd32(loc + 16) > 1)
            return err_set(e, "%s: a ZIP archive spanning several disks is not supported", z->path);
        if (!inside(off, EOCD64_BYTES, at - LOCATOR_BYTES) || rd32(b + off) != SIG_EOCD64)
            return err_set(e, "%s: damaged ZIP archive: its zip64 end record is not where its "
                              "locator says (offset %llu)", z->path, (unsigned long long)off);
        const uint8_t *r64 = b + off;
        if (rd32(r64 + 16) != 0 || rd32(r64 + 20) != 0 || rd64(r64 + 24) != rd64(r64 + 32))
            return err_set(e, "%s: a ZIP archive spanning several disks is not supported", z->path);
        *entries = rd64(r64 + 32), *cd_size = rd64(r64 + 40), *cd_offset = rd64(r64 + 48);
        at = off;
    }
    if (!inside(*cd_offset, *cd_size, at))
        return err_set(e, "%s: damaged ZIP archive: its central directory (%llu bytes at offset "
                          "%llu) lies outside the file's %zu bytes (truncated?)", z->path,
                       (unsigned long long)*cd_size, (unsigned long long)*cd_offset, n);
    if (*entries > *cd_size / CENTRAL_BYTES)
        return err_set(e, "%s: damaged ZIP archive: %llu entries cannot fit a central directory "
                          "of %llu bytes", z->path, (unsigned long long)*entries,
                       (unsigned long long)*cd_size);
    return 0;
}

/* The zip64 extended-information extra field (id 1) replaces, in this order,
 * the sizes and the offset whose 32-bit fields are all ones. */
static int zip64_extra(const uint8_t *x, size_t len, ZipMember *m, int need_u, int need_c,
                       int need_o)
{
    for (size_t i = 0; i + 4 <= len;) {
        const uint16_t id = rd16(x + i), sz = rd16(x + i + 2);
        if (sz > len - i - 4)
            return -1;
        if (id == 1) {
            const uint8_t *d = x + i + 4;
            size_t k = 0;
            if (need_u && (k += 8) <= sz)
                m->usize = rd64(d + k - 8);
            if (need_c && (k += 8) <= sz)
                m->csize = rd64(d + k - 8);
            if (need_o && (k += 8) <= sz)
                m->local_offset = rd64(d + k - 8);
            return k <= sz ? 0 : -1;
        }
        i += 4 + (size_t)sz;
    }
    return need_u || need_c || need_o ? -1 : 0;
}

/* Parses central directory entry k at b[*at], advancing *at. */
static int read_entry(ZipArchive *z, uint64_t *at, uint64_t end, size_t k, Error *e)
{
    const uint8_t *b = z->bytes;
    if (!inside(*at, CENTRAL_BYTES, end) || rd32(b + *at) != SIG_CENTRAL)
        return err_set(e, "%s: damaged ZIP archive: central directory entry %zu is not where "
                          "expected", z->path, k + 1);
    const uint8_t *c = b + *at;
    const size_t name_len = rd16(c + 28), extra_len = rd16(c + 30), comment_len = rd16(c + 32);
    if (!inside(*at + CENTRAL_BYTES, name_len + extra_len + comment_len, end))
        return err_set(e, "%s: damaged ZIP archive: central directory entry %zu runs past the "
                          "directory", z->path, k + 1);
    ZipMember *m = &z->members[k];
    m->name = (const char *)c + CENTRAL_BYTES, m->name_len = name_len;
    m->flags = rd16(c + 8), m->method = rd16(c + 10), m->crc = rd32(c + 16);
    m->csize = rd32(c + 20), m->usize = rd32(c + 24), m->local_offset = rd32(c + 42);
    if (zip64_extra(c + CENTRAL_BYTES + name_len, extra_len, m, m->usize == 0xffffffffu,
                    m->csize == 0xffffffffu, m->local_offset == 0xffffffffu) != 0)
        return err_set(e, "%s: damaged ZIP archive: member %.*s has a malformed zip64 extra "
                          "field", z->path, (int)(name_len > 200 ? 200 : name_len), m->name);
    *at += CENTRAL_BYTES + name_len + extra_len + comment_len;
    return 0;
}

int zipread_open(ZipArchive *z, const char *path, Error *e)
{
    memset(z, 0, sizeof *z);
    snprintf(z->path, sizeof z->path, "%s", path);
    if (file_read_all(path, ZIP_MAX_BYTES, &z->bytes, &z->size, e))
        return -1;
    uint64_t entries = 0, cd_size = 0, cd_offset = 0;
    if (find_directory(z, &entries, &cd_size, &cd_offset, e))
        goto fail;
    z->members = calloc(entries ? (size_t)entries : 1, sizeof *z->members);
    if (!z->members) {
        err_set(e, "%s: out of memory for %llu ZIP entries", path, (unsigned long long)entries);
        goto fail;
    }
    uint64_t at = cd_offset;
    for (size_t k = 0; k < entries; k++)
        if (read_entry(z, &at, cd_offset + cd_size, k, e))
            goto fail;
    z->count = (size_t)entries;
    return 0;
fail:
    zipread_close(z);
    return -1;
}

const ZipMember *zipread_find(const ZipArchive *z, const char *name)
{
    const size_t n = strlen(name);
    for (size_t i = 0; i < z->count; i++)
        if (z->members[i].name_len == n && memcmp(z->members[i].name, name, n) == 0)
            return &z->members[i];
    return NULL;
}

void zipread_names(const ZipArchive *z, char *buf, size_t size)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < z->count && o + 1 < size; i++) {
        const ZipMember *m = &z->members[i];
        const int len = (int)(m->name_len > 100 ? 100 : m->name_len);
        if (o + (size_t)len + 8 >= size) {
            snprintf(buf + o, size - o, "%s...", i ? ", " : "");
            return;
        }
        o += (size_t)snprintf(buf + o, size - o, "%s%.*s", i ? ", " : "", len, m->name);
    }
    if (z->count == 0)
        snprintf(buf, size, "none");
}

/* Inflates len compressed bytes from in into out (exactly usize bytes). */
static int inflate_member(const uint8_t *in, uint64_t len, uint8_t *out, uint64_t usize,
                          const char *path, const char *name, Error *e)
{
    z_stream s;
    memset(&s, 0, sizeof s);
    if (inflateInit2(&s, -15) != Z_OK)
        return err_set(e, "%s: member %s: cannot start zlib's inflate", path, name);
    uint64_t in_left = len, out_left = usize;
    int rc = Z_OK;
    s.next_in = (Bytef *)in, s.next_out = out;
    while (rc == Z_OK) {
        /* zlib counts in uInt: feed it at most 1 GiB at a time */
        const uInt in_step = in_left > (1u << 30) ? (1u << 30) : (uInt)in_left;
        const uInt out_step = out_left > (1u << 30) ? (1u << 30) : (uInt)out_left;
        s.avail_in = in_step, s.avail_out = out_step;
        rc = inflate(&s, Z_NO_FLUSH);
        in_left -= in_step - s.avail_in, out_left -= out_step - s.avail_out;
        if (rc == Z_BUF_ERROR && (in_left == 0 || out_left == 0))
            break;
        if (rc == Z_BUF_ERROR)
            rc = Z_OK;
    }
    const char *zmsg = s.msg ? s.msg : "invalid data";
    int status = 0;
    if (rc == Z_DATA_ERROR || rc == Z_NEED_DICT)
        status = err_set(e, "%s: member %s: corrupt deflate data (zlib: %s)", path, name, zmsg);
    else if (rc == Z_MEM_ERROR)
        status = err_set(e, "%s: member %s: out of memory inflating it", path, name);
    else if (rc != Z_STREAM_END && out_left == 0)
        status = err_set(e, "%s: member %s: inflates to more than the %llu bytes its header says "
                            "(damaged archive)", path, name, (unsigned long long)usize);
    else if (rc != Z_STREAM_END)
        status = err_set(e, "%s: member %s: its deflate data ends early, after %llu of %llu "
                            "bytes (truncated or damaged archive)", path, name,
                         (unsigned long long)(usize - out_left), (unsigned long long)usize);
    else if (out_left != 0)
        status = err_set(e, "%s: member %s: inflates to %llu bytes but its header says %llu "
                            "(damaged archive)", path, name,
                         (unsigned long long)(usize - out_left), (unsigned long long)usize);
    inflateEnd(&s);
    return status;
}

static uint32_t crc_of(const uint8_t *p, uint64_t n)
{
    uLong c = crc32(0L, Z_NULL, 0);
    while (n > 0) {
        const uInt step = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = crc32(c, p, step);
        p += step, n -= step;
    }
    return (uint32_t)c;
}

/* Where member m's data starts, after checking its local header agrees
 * with the directory. */
static int locate_data(const ZipArchive *z, const ZipMember *m, const char *name, uint64_t *data,
                       Error *e)
{
    const uint8_t *b = z->bytes;
    if (!inside(m->local_offset, LOCAL_BYTES, z->size) || rd32(b + m->local_offset) != SIG_LOCAL)
        return err_set(e, "%s: member %s: no local header at offset %llu (damaged or truncated "
                          "archive)", z->path, name, (unsigned long long)m->local_offset);
    const uint8_t *l = b + m->local_offset;
    const size_t name_len = rd16(l + 26), extra_len = rd16(l + 28);
    if (!inside(m->local_offset + LOCAL_BYTES, name_len + extra_len, z->size) ||
        name_len != m->name_len || memcmp(l + LOCAL_BYTES, m->name, name_len) != 0 ||
        rd16(l + 8) != m->method)
        return err_set(e, "%s: member %s: its local header disagrees with the central directory "
                          "(damaged archive)", z->path, name);
    *data = m->local_offset + LOCAL_BYTES + name_len + extra_len;
    if (!inside(*data, m->csize, z->size))
        return err_set(e, "%s: member %s: its %llu bytes of data run past the end of the "
                          "%zu-byte file (truncated archive)", z->path, name,
                       (unsigned long long)m->csize, z->size);
    return 0;
}

int zipread_extract(const ZipArchive *z, const ZipMember *m, uint8_t **out, size_t *n, Error *e)
{
    *out = NULL, *n = 0;
    char name[128];
    snprintf(name, sizeof name, "%.*s", (int)(m->name_len > 100 ? 100 : m->name_len), m->name);
    if (m->flags & 1)
        return err_set(e, "%s: member %s is encrypted", z->path, name);
    if (m->method != 0 && m->method != 8)
        return err_set(e, "%s: member %s uses compression method %d; only stored (0) and "
                          "deflated (8) members are read", z->path, name, m->method);
    uint64_t data = 0;
    if (locate_data(z, m, name, &data, e))
        return -1;
    if (m->method == 0 && m->csize != m->usize)
        return err_set(e, "%s: member %s is stored but its sizes differ (%llu and %llu bytes: "
                          "damaged archive)", z->path, name, (unsigned long long)m->csize,
                       (unsigned long long)m->usize);
    if (m->method == 8 && m->usize / DEFLATE_MAX_RATIO > m->csize + 64)
        return err_set(e, "%s: member %s claims to inflate %llu bytes to %llu, more than deflate "
                          "can (damaged archive)", z->path, name, (unsigned long long)m->csize,
                       (unsigned long long)m->usize);
    if (m->usize > SIZE_MAX - 1)
        return err_set(e, "%s: member %s is too large for this machine", z->path, name);
    uint8_t *buf = malloc((size_t)m->usize + 1);
    if (!buf)
        return err_set(e, "%s: member %s: out of memory for %llu bytes", z->path, name,
                       (unsigned long long)m->usize);
    if (m->method == 0)
        memcpy(buf, z->bytes + data, (size_t)m->usize);
    else if (inflate_member(z->bytes + data, m->csize, buf, m->usize, z->path, name, e)) {
        free(buf);
        return -1;
    }
    const uint32_t crc = crc_of(buf, m->usize);
    if (crc != m->crc) {
        free(buf);
        return err_set(e, "%s: member %s: CRC-32 mismatch (the archive says 0x%08x, its data "
                          "gives 0x%08x): damaged archive", z->path, name, m->crc, crc);
    }
    *out = buf, *n = (size_t)m->usize;
    return 0;
}

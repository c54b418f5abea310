/* h5util: small HDF5 helpers shared by the image-set and checkpoint files:
 * typed attributes (write and bounded read), silencing HDF5's own error
 * printing, a plain-read check of the superblock before HDF5 opens a file,
 * and the checksummed format we write. None prints. */
#define _POSIX_C_SOURCE 200809L
#include "mnist/h5util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

hid_t h5_fapl_create(void)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl >= 0 && H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_V110) < 0) {
        H5Pclose(fapl);
        return H5I_INVALID_HID;
    }
    return fapl;
}

static uint64_t le64(const unsigned char *b)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | b[i];
    return v;
}

int h5_check_file(const char *path, Error *e)
{
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set(e, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return 0; /* not a regular file: leave it to HDF5 */
    }
    const uint64_t size = (uint64_t)st.st_size;
    if (size == 0) {
        close(fd);
        return err_set(e, "%s: file is empty", path);
    }
    /* HDF5 looks for its signature at 0, 512, 1024, 2048, ... (after a user block). */
    unsigned char sb[64];
    ssize_t got = 0;
    uint64_t at = 0;
    int found = 0;
    for (uint64_t off = 0; off + sizeof sig <= size; off = off ? off * 2 : 512) {
        got = pread(fd, sb, sizeof sb, (off_t)off);
        if (got >= (ssize_t)sizeof sig && memcmp(sb, sig, sizeof sig) == 0) {
            at = off;
            found = 1;
            break;
        }
    }
    close(fd);
    if (!found)
        return err_set(e, "%s: not an HDF5 file (no HDF5 signature)", path);
    memset(sb + got, 0, sizeof sb - (size_t)got); /* past the end of the file */
    /* Where the superblock keeps the base and end-of-file addresses (8-byte
     * offsets only; other sizes are left to HDF5). */
    const int version = sb[8];
    const int offsets = got > 13 ? (version <= 1 ? sb[13] : sb[9]) : 0;
    const int base_at = version == 0 ? 24 : version == 1 ? 28 : 12;
    if (version <= 3 && (offsets == 8 || got < 14)) {
        if (got < base_at + 24)
            return err_set(e, "%s: truncated: the file ends inside its HDF5 superblock (%llu bytes)",
                           path, (unsigned long long)size);
        const uint64_t base = le64(sb + base_at), eof = le64(sb + base_at + 16);
        /* HDF5 always records both; without them libhdf5 1.10 goes on to
         * allocate gigabytes (found by tools/fuzz). */
        if (base > at || eof == UINT64_MAX)
            rc = err_set(e, "%s: damaged HDF5 superblock (base address %llu, end of file %llu)",
                         path, (unsigned long long)base, (unsigned long long)eof);
        else if (eof > size - base)
            rc = err_set(e, "%s: truncated: the file has %llu bytes but its HDF5 superblock says "
                            "%llu (an interrupted copy or download?)", path,
                         (unsigned long long)size, (unsigned long long)(base + eof));
    }
    return rc;
}

int h5_attr_write(hid_t obj, const char *name, hid_t file_type, hid_t mem_type, int n,
                      const void *value)
{
    hsize_t dims[1] = {(hsize_t)n};
    hid_t s = n == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, dims, NULL);
    hid_t a = H5Acreate2(obj, name, file_type, s, H5P_DEFAULT, H5P_DEFAULT);
    int rc = (a >= 0 && H5Awrite(a, mem_type, value) >= 0) ? 0 : -1;
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(s);
    return rc;
}

int h5_attr_write_str(hid_t obj, const char *name, const char *value)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(value) + 1);
    int rc = h5_attr_write(obj, name, t, t, 0, value);
    H5Tclose(t);
    return rc;
}

int h5_attr_read(hid_t obj, const char *name, hid_t mem_type, size_t max_n, void *out,
                     size_t *n_out)
{
    if (H5Aexists(obj, name) <= 0)
        return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0)
        return -1;
    hid_t s = H5Aget_space(a);
    hssize_t n = H5Sget_simple_extent_npoints(s);
    int rc = (n >= 1 && (size_t)n <= max_n && H5Aread(a, mem_type, out) >= 0) ? 0 : -1;
    if (n_out)
        *n_out = (size_t)n;
    H5Sclose(s);
    H5Aclose(a);
    return rc;
}

int h5_attr_read_str(hid_t obj, const char *name, char *buf, size_t size)
{
    if (H5Aexists(obj, name) <= 0)
        return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t ft = a >= 0 ? H5Aget_type(a) : H5I_INVALID_HID;
    int rc = -1;
    if (ft >= 0 && H5Tget_class(ft) == H5T_STRING && !H5Tis_variable_str(ft) &&
        H5Tget_size(ft) <= size) {
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, H5Tget_size(ft));
        memset(buf, 0, size);
        rc = H5Aread(a, t, buf) >= 0 ? 0 : -1;
        buf[size - 1] = '\0';
        H5Tclose(t);
    }
    if (ft >= 0)
        H5Tclose(ft);
    if (a >= 0)
        H5Aclose(a);
    return rc;
}


/* Bob Jenkins' lookup3 hashlittle(), byte-wise: the checksum HDF5 puts on
 * version 2+ superblocks (H5_checksum_lookup3, initial value 0). */
#define rot(x, k) (((x) << (k)) | ((x) >> (32 - (k))))
static uint32_t h5_lookup3(const uint8_t *k, size_t length, uint32_t initval)
{
    uint32_t a, b, c;
    a = b = c = 0xdeadbeef + (uint32_t)length + initval;
    while (length > 12) {
        a += k[0] + ((uint32_t)k[1] << 8) + ((uint32_t)k[2] << 16) + ((uint32_t)k[3] << 24);
        b += k[4] + ((uint32_t)k[5] << 8) + ((uint32_t)k[6] << 16) + ((uint32_t)k[7] << 24);
        c += k[8] + ((uint32_t)k[9] << 8) + ((uint32_t)k[10] << 16) + ((uint32_t)k[11] << 24);
        a -= c; a ^= rot(c, 4); c += b;
        b -= a; b ^= rot(a, 6); a += c;
        c -= b; c ^= rot(b, 8); b += a;
        a -= c; a ^= rot(c, 16); c += b;
        b -= a; b ^= rot(a, 19); a += c;
        c -= b; c ^= rot(b, 4); b += a;
        length -= 12, k += 12;
    }
    switch (length) {
    case 12: c += (uint32_t)k[11] << 24; /* fall through */
    case 11: c += (uint32_t)k[10] << 16; /* fall through */
    case 10: c += (uint32_t)k[9] << 8; /* fall through */
    case 9: c += k[8]; /* fall through */
    case 8: b += (uint32_t)k[7] << 24; /* fall through */
    case 7: b += (uint32_t)k[6] << 16; /* fall through */
    case 6: b += (uint32_t)k[5] << 8; /* fall through */
    case 5: b += k[4]; /* fall through */
    case 4: a += (uint32_t)k[3] << 24; /* fall through */
    case 3: a += (uint32_t)k[2] << 16; /* fall through */
    case 2: a += (uint32_t)k[1] << 8; /* fall through */
    case 1: a += k[0]; break;
    case 0: return c;
    }
    c ^= b; c -= rot(b, 14);
    a ^= c; a -= rot(c, 11);
    b ^= a; b -= rot(a, 25);
    c ^= b; c -= rot(b, 16);
    a ^= c; a -= rot(c, 4);
    b ^= a; b -= rot(a, 14);
    c ^= b; c -= rot(b, 24);
    return c;
}

/* libhdf5 1.10.8's H5Fget_file_image clears the superblock's "open for
 * writing" flags in the copy but keeps the old checksum, so the image would
 * not open. Recomputes it (version 2+ superblock at offset 0). */
static void fix_superblock_checksum(uint8_t *image, size_t n)
{
    static const uint8_t signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    if (n < 16 || memcmp(image, signature, 8) != 0 || image[8] < 2)
        return;
    const size_t len = 12 + 4 * (size_t)image[9]; /* fields before the checksum */
    if (len + 4 > n)
        return;
    const uint32_t sum = h5_lookup3(image, len, 0);
    for (int i = 0; i < 4; i++)
        image[len + (size_t)i] = (uint8_t)(sum >> (8 * i));
}

hid_t h5_mem_file_create(const char *name)
{
    hid_t fapl = h5_fapl_create();
    if (fapl < 0)
        return H5I_INVALID_HID;
    hid_t file = H5I_INVALID_HID;
    if (H5Pset_fapl_core(fapl, (size_t)1 << 20, 0) >= 0)
        file = H5Fcreate(name, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    return file;
}

int h5_mem_file_save(hid_t file, const char *path, Error *e)
{
    ssize_t size = H5Fflush(file, H5F_SCOPE_GLOBAL) < 0 ? -1 : H5Fget_file_image(file, NULL, 0);
    void *image = size > 0 ? malloc((size_t)size) : NULL;
    int ok = image && H5Fget_file_image(file, image, (size_t)size) == size;
    if (ok)
        fix_superblock_checksum(image, (size_t)size);
    if (H5Fclose(file) < 0)
        ok = 0;
    int rc = ok ? file_write_atomic(path, image, (size_t)size, e)
                : err_set(e, "%s: cannot build the HDF5 file in memory (out of memory?)", path);
    free(image);
    return rc;
}

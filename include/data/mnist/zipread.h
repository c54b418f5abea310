/* zipread: the members of a ZIP archive (what NumPy's .npz files are), read
 * into memory whole: the central directory (zip64 records and extra fields
 * too), members stored (method 0) or deflated (method 8, inflated by zlib),
 * each checked against its sizes and CRC-32. Anything else (encryption,
 * spanned archives, other methods, inconsistent headers) is refused.
 * Must not call MPI or HDF5. */
#ifndef MNIST_ZIPREAD_H
#define MNIST_ZIPREAD_H

#include <stddef.h>
#include <stdint.h>

#include "mnist/util.h"

typedef struct ZipMember {
    const char *name; /* into the archive's bytes, name_len long, not terminated */
    size_t name_len;
    uint64_t local_offset, csize, usize;
    uint32_t crc;
    int method, flags;
} ZipMember;

typedef struct ZipArchive {
    uint8_t *bytes; /* the whole file */
    size_t size;
    ZipMember *members;
    size_t count;
    char path[1024];
} ZipArchive;

/* Reads the file at path and its central directory. -1 with e = "PATH:
 * what is wrong" (not a ZIP archive, truncated, damaged directory); z is
 * then empty. */
int zipread_open(ZipArchive *z, const char *path, Error *e);

/* The member called name, or NULL. */
const ZipMember *zipread_find(const ZipArchive *z, const char *name);

/* Writes "a, b, c" (the member names, truncated with "..." to fit) to buf. */
void zipread_names(const ZipArchive *z, char *buf, size_t size);

/* Extracts member m into *out (malloc'ed, *n bytes; free it), after checking
 * its local header against the directory, its size and its CRC-32. -1 with
 * e = "PATH: member NAME: what is wrong" (*out NULL). */
int zipread_extract(const ZipArchive *z, const ZipMember *m, uint8_t **out, size_t *n, Error *e);

/* Frees what z holds and zeroes it. Safe on a zeroed or failed archive. */
void zipread_close(ZipArchive *z);

/* 1 if the file at path starts like a ZIP archive ("PK\3\4", or "PK\5\6" for
 * an empty one), else 0. */
int zipread_is_zip(const char *path);

#endif

/* h5util: HDF5 helpers shared by h5data and ckpt: typed attributes,
 * error-stack silencing, a sanity check of a file before HDF5 parses it, and
 * the format files are written in. Must not know about models or image sets. */
#ifndef MNIST_H5UTIL_H
#define MNIST_H5UTIL_H

#include <hdf5.h>
#include <stddef.h>

#include "mnist/util.h"

/* Silences HDF5's own error printing: we print our own messages. */
void h5_quiet(void);

/* Checks, with plain reads and before HDF5 parses anything, that path is a
 * non-empty file with an HDF5 signature whose superblock's end-of-file
 * address lies within the file. -1 with e = "PATH: what is wrong" (empty,
 * not HDF5, truncated to N of M bytes). */
int h5_check_file(const char *path, Error *e);

/* The file-access property list to create this project's files with: the
 * HDF5 1.10 format, whose metadata (superblock, object headers, chunk
 * indexes) all carry checksums, so damaged metadata is refused by HDF5 rather
 * than parsed. H5I_INVALID_HID on failure; close with H5Pclose. */
hid_t h5_fapl_create(void);

/* Writes attribute name on obj: n values (n = 0: one scalar) stored as
 * file_type, read from value as mem_type. 0 or -1. */
int h5_attr_write(hid_t obj, const char *name, hid_t file_type, hid_t mem_type, int n,
                  const void *value);

/* Writes a fixed-length, NUL-terminated string attribute. 0 or -1. */
int h5_attr_write_str(hid_t obj, const char *name, const char *value);

/* Reads attribute name (1..max_n values) into out as mem_type; the count goes
 * to *n_out when non-NULL. -1 if missing, too long or unreadable. */
int h5_attr_read(hid_t obj, const char *name, hid_t mem_type, size_t max_n, void *out,
                 size_t *n_out);

/* Reads a fixed-length string attribute into buf (always terminated). -1 if
 * missing, not a string, or longer than size. */
int h5_attr_read_str(hid_t obj, const char *name, char *buf, size_t size);

/* Creates an HDF5 file that lives only in memory (core driver, no backing
 * store) under the given name, with h5_fapl_create's format settings. Write
 * into it, then h5_mem_file_save: HDF5 itself then never meets a full disk
 * (libhdf5 1.10 crashes at exit after a close that failed with ENOSPC). */
hid_t h5_mem_file_create(const char *name);

/* Closes the in-memory file and writes its bytes to path atomically
 * (file_write_atomic). Closes the file on every path. -1 with e =
 * "PATH: what failed" (e.g. "No space left on device"); nothing is left. */
int h5_mem_file_save(hid_t file, const char *path, Error *e);

#endif

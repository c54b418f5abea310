/* h5util: HDF5 helpers shared by h5data and ckpt: typed attributes and
 * error-stack silencing. Must not know about models or image sets. */
#ifndef MNIST_H5UTIL_H
#define MNIST_H5UTIL_H

#include <hdf5.h>
#include <stddef.h>

/* Silences HDF5's own error printing: we print our own messages. */
void h5_quiet(void);

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

#endif

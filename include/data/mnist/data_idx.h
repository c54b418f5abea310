/* data_idx: LeCun's IDX files (images [N,28,28], labels [N]), validated
 * against their headers. Must not call MPI or HDF5. */
#ifndef MNIST_DATA_IDX_H
#define MNIST_DATA_IDX_H

#include "mnist/data.h"
#include "mnist/util.h"

/* Reads IDX files (big-endian magic 0x00000803 images [N,28,28] and 0x00000801
 * labels [N], N >= 1, sizes exactly as the headers say); labels_path may be
 * NULL for images only. Counts must agree and labels must be below classes
 * (2..256). out must be empty on entry. -1 with e = "PATH: what is wrong" on
 * error. */
int data_idx_read(const char *images_path, const char *labels_path, int classes, Dataset *out,
                  Error *e);

/* 1 if the file at path starts with an IDX magic number for unsigned bytes
 * (0x00 0x00 0x08, then a dimension count 1..3), 0 otherwise (including
 * unreadable files). */
int data_is_idx(const char *path);

#endif

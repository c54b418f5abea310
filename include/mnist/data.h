/* data: in-memory image sets, shard ranges, batches, and the text/IDX formats
 * (CSV `label,pixel0..pixel783`, IDX images + labels).
 * Must not call MPI or HDF5: ranks arrive as plain ints (HDF5 is h5data.h). */
#ifndef MNIST_DATA_H
#define MNIST_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "mnist/util.h"

#define MNIST_PIXELS 784
#define MNIST_SIDE 28
#define MNIST_CLASSES 10

/* A set of images, owned. images is rows × MNIST_PIXELS bytes, row-major;
 * labels is rows bytes in 0..9, or NULL when the source carried no labels. */
typedef struct Dataset {
    uint8_t *images;
    uint8_t *labels;
    size_t rows;
} Dataset;

/* Frees the arrays and zeroes d. Safe on a zeroed Dataset. */
void dataset_free(Dataset *d);

/* Rows [*first, *first + *count) of n rows that part `part` of `nparts` owns:
 * contiguous, in part order, sizes differing by at most one (the first
 * n % nparts parts get one extra). */
void data_shard_range(size_t n, int nparts, int part, size_t *first, size_t *count);

/* Converts rows idx[0..b) of d into x (b × MNIST_PIXELS floats in [0, 1],
 * overwritten) and y (b labels, overwritten; ignored when NULL). */
void data_gather_batch(float *x, uint8_t *y, const Dataset *d, const size_t *idx, int b);

/* Reads a CSV file: one image per line, `label,pixel0,...,pixel783` (785
 * fields) or `pixel0,...,pixel783` (784 fields, no labels; out->labels is NULL).
 * Accepts an optional header line (one starting with a letter, '_' or a quote,
 * like Kaggle's `label,pixel0,...`; its field count must be 784 or 785), an
 * optional UTF-8 BOM, LF or CRLF line ends, a missing final newline and blank
 * lines at the very end. Every line must have the same number of fields;
 * pixels are integers 0..255, labels 0..9. out must be empty on entry.
 * On error returns -1 with e = "PATH:LINE:COLUMN: what is wrong" (COLUMN is
 * the 1-based field number), or "PATH: what is wrong" when no line is at
 * fault (cannot open, empty, header only), and out left empty. */
int data_csv_read(const char *path, Dataset *out, Error *e);

/* Reads IDX files (big-endian magic 0x00000803 images [N,28,28] and 0x00000801
 * labels [N], N >= 1, sizes exactly as the headers say); labels_path may be
 * NULL for images only. Counts must agree and labels must be 0..9. out must
 * be empty on entry. -1 with e = "PATH: what is wrong" on error. */
int data_idx_read(const char *images_path, const char *labels_path, Dataset *out, Error *e);

/* 1 if the file at path starts with an IDX magic number for unsigned bytes
 * (0x00 0x00 0x08, then a dimension count 1..3), 0 otherwise (including
 * unreadable files). */
int data_is_idx(const char *path);

/* Writes d as CSV (no header; 785 fields when d has labels, else 784) to a
 * temp name, then renames it to path. Refuses an empty set or a label above 9
 * (it never writes what data_csv_read would refuse). -1 with e filled on
 * error, nothing left. */
int data_csv_write(const char *path, const Dataset *d, Error *e);

#endif

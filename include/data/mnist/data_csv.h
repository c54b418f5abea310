/* data_csv: the CSV format of image sets (`label,pixel0..pixel783`, header
 * optional), a streaming validating reader and an atomic writer. Must not
 * call MPI or HDF5. */
#ifndef MNIST_DATA_CSV_H
#define MNIST_DATA_CSV_H

#include "mnist/data.h"
#include "mnist/util.h"

/* Reads a CSV file: one image per line, `label,pixel0,...,pixel783` (785
 * fields) or `pixel0,...,pixel783` (784 fields, no labels; out->labels is NULL).
 * Accepts an optional header line (one starting with a letter, '_' or a quote,
 * like Kaggle's `label,pixel0,...`; its field count must be 784 or 785), an
 * optional UTF-8 BOM, LF or CRLF line ends, a missing final newline and blank
 * lines at the very end. Every line must have the same number of fields;
 * pixels are integers 0..255, labels 0..classes-1 (classes: the count the
 * file is declared to hold, 2..256; out->classes records it). out must be
 * empty on entry.
 * On error returns -1 with e = "PATH:LINE:COLUMN: what is wrong" (COLUMN is
 * the 1-based field number), or "PATH: what is wrong" when no line is at
 * fault (cannot open, empty, header only), and out left empty. */
int data_csv_read(const char *path, int classes, Dataset *out, Error *e);

/* Writes d as CSV (no header; 785 fields when d has labels, else 784) to a
 * temp name, then renames it to path. Refuses an empty set, images that are
 * not 28 x 28 grey, or a label at or above d's classes (it never writes what
 * data_csv_read would refuse). -1 with e filled on error, nothing left. */
int data_csv_write(const char *path, const Dataset *d, Error *e);

#endif

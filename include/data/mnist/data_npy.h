/* data_npy: NumPy's .npy arrays (format versions 1, 2 and 3) and .npz
 * archives of them (Keras's mnist.npz: x_train, y_train, x_test, y_test) as
 * image sets. Images are uint8 (0..255) or float32 (0..1, stored as
 * round(255 x)) of shape [N,H,W], [N,H,W,C] (C <= 4) or [N,P] (P a square
 * number: a square grey image), little-endian, C order; labels uint8, int32
 * or int64 [N], below the class count. Must not call MPI or HDF5. */
#ifndef MNIST_DATA_NPY_H
#define MNIST_DATA_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "mnist/data.h"
#include "mnist/util.h"

/* The parts of a .npy header this reader uses. */
typedef struct NpyArray {
    char descr[32];   /* e.g. "|u1", "<f4" */
    int fortran_order;
    int ndim;         /* 0..8 */
    uint64_t shape[8];
    uint64_t count;   /* product of shape */
    size_t itemsize;
    const uint8_t *data; /* into the buffer parsed; count * itemsize bytes */
} NpyArray;

/* Parses the .npy bytes buf[0..n) (magic, version, header dict with 'descr',
 * 'fortran_order' and 'shape', then exactly the data). what names the array
 * in messages ("PATH" or "PATH: member x_train.npy"). -1 with e = "WHAT:
 * what is wrong" on a malformed header or a size that disagrees with it. */
int npy_parse(NpyArray *a, const uint8_t *buf, size_t n, const char *what, Error *e);

/* "(60000, 28, 28)" */
void npy_shape_str(const NpyArray *a, char *buf, size_t size);

/* Reads images_path (and labels_path, which may be NULL: no labels) as .npy
 * files. classes: 2..256. out must be empty. -1 with e naming the file, its
 * shape and dtype and what would be accepted. */
int data_npy_read(const char *images_path, const char *labels_path, int classes, Dataset *out,
                  Error *e);

/* Reads members images_name and labels_name (each without or with ".npy";
 * labels_name NULL: none) of the .npz archive at path. */
int data_npz_read(const char *path, const char *images_name, const char *labels_name,
                  int classes, Dataset *out, Error *e);

/* 1 if the file at path starts with the .npy magic "\x93NUMPY", else 0. */
int data_is_npy(const char *path);

#endif

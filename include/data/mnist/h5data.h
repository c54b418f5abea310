/* h5data: image sets as HDF5 files: /images uint8 [N,H,W], [N,H,W,C] or
 * [N,P] (P = H*W*C, the shape from height/width/channels attributes, else a
 * square grey image) and optional /labels uint8 [N] below the declared
 * class count (a classes attribute, else 10). Each rank opens the
 * file (collectively, when given an MPI-IO access list) and reads only its
 * own rows with independent I/O. Must not call MPI itself. */
#ifndef MNIST_H5DATA_H
#define MNIST_H5DATA_H

#include <hdf5.h>
#include <stddef.h>

#include "mnist/data.h"
#include "mnist/h5util.h"
#include "mnist/util.h"

typedef struct H5Data {
    hid_t file, images, labels; /* labels is H5I_INVALID_HID when absent */
    size_t rows;
    int nd;      /* rank of /images */
    Shape shape; /* one image */
    int classes; /* declared (the classes attribute) or 10 */
    int declared;
    int has_labels;
    char path[1024];
} H5Data;

/* Opens and validates an image file (fapl: H5P_DEFAULT for one process, or
 * an MPI-IO list from comm_h5_fapl, which makes this collective). -1 with
 * e = "PATH: what is wrong" if the file or its datasets are missing or have
 * the wrong type or shape. */
int h5data_open(H5Data *h, const char *path, hid_t fapl, Error *e);

/* Reads rows [first, first + count) into out (allocated; labels NULL when the
 * file has none; shape and classes as the file declares) with independent
 * I/O, and checks every label is below the class count, naming the row. */
int h5data_read(H5Data *h, size_t first, size_t count, Dataset *out, Error *e);

/* h5safe's walk for image sets: h5data_open (one process) and a read of
 * every row of /images and /labels, in blocks (label values are left to
 * h5data_read, which names the rank's row). 0, or -1 with e. */
int h5data_walk(const char *path, Error *e);

/* Closes what h holds (collective under MPI-IO). Safe on a failed open. */
void h5data_close(H5Data *h);

/* Writes d to path from one process as /images [N, P] with height, width
 * and channels attributes, /labels and a classes attribute (d->classes, 0:
 * 10): a temp file renamed into place, so a failure leaves nothing. source
 * is recorded as an attribute. */
int h5data_write(const char *path, const Dataset *d, const char *source, Error *e);

#endif

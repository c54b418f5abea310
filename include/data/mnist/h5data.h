/* h5data: image sets as HDF5 files: images uint8 (0..255) or float32 (0..1,
 * read as round(255 v)) [N,H,W], [N,H,W,C] or [N,P] (P = H*W*C, the shape
 * from height/width/channels attributes, else a square grey image) and
 * optional labels uint8, int32 or int64 [N] below the declared class count
 * (a classes attribute, else 10), in datasets named /images and /labels or
 * as the caller says (h5py users' own names). Each rank opens the file
 * (collectively, when given an MPI-IO access list) and reads only its own
 * rows with independent I/O. Must not call MPI itself. */
#ifndef MNIST_H5DATA_H
#define MNIST_H5DATA_H

#include <hdf5.h>
#include <stddef.h>

#include "mnist/data.h"
#include "mnist/h5util.h"
#include "mnist/util.h"

/* The datasets to read (NULL or "": "images", "labels"). */
typedef struct H5Names {
    const char *images, *labels;
} H5Names;

typedef struct H5Data {
    hid_t file, images, labels; /* labels is H5I_INVALID_HID when absent */
    char images_name[256], labels_name[256]; /* without a leading '/' */
    int images_f32;              /* float32 images (else uint8) */
    int labels_u8;               /* uint8 labels (else int32 or int64) */
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

/* h5data_open of the datasets names says (NULL: the defaults); messages name
 * them. */
int h5data_open_named(H5Data *h, const char *path, const H5Names *names, hid_t fapl, Error *e);

/* The h5safe argument that carries names to the helper ("IMAGES\nLABELS"),
 * so it reads the datasets the reader will. -1 if it does not fit or a name
 * holds a newline. */
int h5data_names_arg(char *buf, size_t size, const H5Names *names);

/* Reads rows [first, first + count) into out (allocated; labels NULL when the
 * file has none; shape and classes as the file declares) with independent
 * I/O, float32 images in blocks of at most 16 MiB, and checks every label
 * is below the class count and every float32 value in [0, 1], naming the
 * row. */
int h5data_read(H5Data *h, size_t first, size_t count, Dataset *out, Error *e);

/* h5safe's walk for image sets: h5data_open_named (one process; arg is
 * h5data_names_arg's, or "" for the defaults) and a read of every row of
 * the images and labels with the reader's memory types, in blocks (values
 * are left to h5data_read, which names the rank's row). 0, or -1 with e. */
int h5data_walk(const char *path, const char *arg, Error *e);

/* Closes what h holds (collective under MPI-IO). Safe on a failed open. */
void h5data_close(H5Data *h);

/* Writes d to path from one process as /images [N, P] with height, width
 * and channels attributes, /labels and a classes attribute (d->classes, 0:
 * 10): a temp file renamed into place, so a failure leaves nothing. source
 * is recorded as an attribute. */
int h5data_write(const char *path, const Dataset *d, const char *source, Error *e);

#endif

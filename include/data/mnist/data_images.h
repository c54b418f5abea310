/* data_images: image files (PNG, JPEG) as an unlabelled image set: one file,
 * or every .png/.jpg/.jpeg file of a directory in name order, each decoded
 * (image) and preprocessed as MNIST's digits (digit) into 28 x 28 grey.
 * Must not call MPI or HDF5. */
#ifndef MNIST_DATA_IMAGES_H
#define MNIST_DATA_IMAGES_H

#include <stddef.h>

#include "mnist/data.h"
#include "mnist/util.h"

/* The files of an image set: names[i] is row i's file as written in
 * predictions (a directory's entries by their names, a lone file as given),
 * paths[i] where it was read. */
typedef struct ImageNames {
    char **names, **paths;
    size_t count;
    size_t skipped; /* a directory's entries that are not image files (or hidden) */
} ImageNames;

/* 1 if path is a directory, is named .png/.jpg/.jpeg, or starts with a PNG
 * or JPEG signature: predict's image input. */
int data_images_is_input(const char *path);

/* Reads the image file or directory at path into out (rows x 28 x 28 x 1, no
 * labels) and names. A directory's hidden entries, subdirectories and files
 * not named .png/.jpg/.jpeg are skipped (counted); one with none left, a file
 * that is not a readable image, or a blank image is an error naming the
 * file. out and names must be empty; both stay empty on error. */
int data_images_read(const char *path, Dataset *out, ImageNames *names, Error *e);

void data_images_free_names(ImageNames *names);

#endif

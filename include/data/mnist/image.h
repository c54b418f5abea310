/* image: PNG (libpng) and JPEG (libjpeg-turbo) files decoded to one grey
 * channel, and 8-bit grey PNGs written. Any PNG bit depth, palette,
 * transparency (composited on white), colour (to luminance); JPEG grey or
 * colour (not CMYK). A damaged or truncated file is an error, never a
 * partly grey image. Must not call MPI or HDF5. */
#ifndef MNIST_IMAGE_H
#define MNIST_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "mnist/util.h"

#define IMAGE_MAX_PIXELS ((size_t)1 << 28) /* 268 megapixels: a photo is far below */

/* One grey image, owned: w x h bytes, row-major, 0 black .. 255 white. */
typedef struct GreyImage {
    uint8_t *px;
    int w, h;
    int colour; /* the file held colour (or a palette of colours) */
} GreyImage;

/* 1 if buf starts with a PNG or JPEG signature. */
int image_is_encoded(const uint8_t *buf, size_t n);

/* 1 if name ends in .png, .jpg or .jpeg (any case). */
int image_has_image_name(const char *name);

/* Decodes the PNG or JPEG in buf[0..n); name is used in messages. -1 with
 * e = "NAME: what is wrong" (not an image, damaged, truncated, too large). */
int image_decode(GreyImage *out, const uint8_t *buf, size_t n, const char *name, Error *e);

/* image_decode of the file at path. */
int image_read(GreyImage *out, const char *path, Error *e);

/* Writes w x h grey bytes as an 8-bit grey PNG at path (temp + rename). */
int image_write_png(const char *path, const uint8_t *px, int w, int h, Error *e);

void image_free(GreyImage *img);

#endif

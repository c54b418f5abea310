/* digit: MNIST's own preprocessing of a grey image of one digit, as LeCun
 * et al. made the data set: the ink made light on dark (a light background
 * is detected from the image's border and inverted), the digit's bounding
 * box fitted into 20 x 20 keeping its aspect ratio (area-averaging, so a
 * large image is antialiased, not sampled), and placed in 28 x 28 so that
 * its centre of mass lies at pixel (14, 14). Pure math on arrays: no I/O. */
#ifndef MNIST_DIGIT_H
#define MNIST_DIGIT_H

#include <stdint.h>

#include "mnist/util.h"

#define DIGIT_SIDE 28 /* the output, as MNIST */
#define DIGIT_BOX 20  /* the box the digit's larger side is fitted to */

/* What digit_preprocess found and did. */
typedef struct DigitInfo {
    int inverted;    /* the background was light: ink = 255 - grey */
    int passthrough; /* a 28x28 image on a dark background, taken as it is */
    float background, peak; /* the background's and the strongest ink's levels, 0..1 */
    int box_x, box_y, box_w, box_h; /* the digit's bounding box in the input */
    int out_w, out_h;               /* the box's size once fitted into 20x20 */
    float com_x, com_y;             /* the output's centre of mass (column, row), ~14 */
} DigitInfo;

/* Ink level at which a pixel counts towards the bounding box (of 1, after
 * the background is subtracted and the contrast stretched). */
#define DIGIT_INK_THRESHOLD 0.2f
/* Contrast below which an image holds no digit (of 1: about 25 grey levels). */
#define DIGIT_MIN_CONTRAST 0.1f

/* Preprocesses the w x h grey image px (0 black .. 255 white) into out, 28 x
 * 28 bytes of ink (0 background .. 255 full ink), as MNIST's. The
 * background level is the median of the border pixels: above mid-grey it
 * is light and the image is inverted. The background level is subtracted
 * and the strongest ink stretched to 255, so grey paper or a faint pen give
 * MNIST's contrast. A 28 x 28 image with a dark background is copied as it
 * is (MNIST's own digits and those already preprocessed come out
 * unchanged). info (may be NULL) says what was done. -1 with e = "blank
 * image ..." when the image holds no digit (no contrast), out untouched. */
int digit_preprocess(uint8_t *out, const uint8_t *px, int w, int h, DigitInfo *info, Error *e);

/* The centre of mass (column, row) of a w x h ink image, pixel (x, y) at
 * coordinates (x, y); (w-1)/2, (h-1)/2 for a blank one. */
void digit_center_of_mass(const uint8_t *ink, int w, int h, float *cx, float *cy);

#endif

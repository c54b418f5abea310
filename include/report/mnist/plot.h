/* plot: the report's charts as PNG files, drawn with cairo (vector drawing,
 * anti-aliased text with the system's sans font). Each function writes a
 * complete PNG to a temp name and renames it into place.
 * Must not know where the numbers come from, and must not touch MPI. */
#ifndef MNIST_PLOT_H
#define MNIST_PLOT_H

#include <stdint.h>

#include "mnist/augment.h"
#include "mnist/history.h"
#include "mnist/metrics.h"
#include "mnist/util.h"

/* Loss and accuracy per epoch, train vs validation, as two labelled panels
 * side by side (x: epoch, y: loss / accuracy). Validation values that are NaN
 * (no validation split) are left out. 0 or -1 with e filled. */
int plot_curves(const char *path, const History *h, Error *e);

/* The classes x classes confusion matrix (confusion[true * classes +
 * predicted]) as a heatmap (rows: true label, columns: predicted) with each
 * cell's count written in it (up to 20 classes) and a colour bar; colour
 * follows log(1 + count), so errors of 1..20 show beside diagonals of ~1000. */
int plot_confusion(const char *path, const int64_t *confusion, int classes, Error *e);

/* Per-class precision, recall and F1 as grouped bars with a legend. The y
 * axis runs from a nice number below the lowest score to 1 (from 0 when
 * scores are low), and the chart says where it starts. */
int plot_class_scores(const char *path, const Scores *s, Error *e);

/* A grid of n images (each its own h x w grey thumbnail, 0 = black
 * background drawn as white paper, 255 = ink) in the order given, each captioned "true T -> pred P" and
 * "p = 0.98" (prob). n may be 0 (the image then says there were no mistakes);
 * items may be NULL only when n is 0. */
int plot_mistakes(const char *path, const Mistake *items, int n, Error *e);

/* A grid of augmentation examples: row r shows original image r
 * (AUGMENT_SIDE^2 bytes) and then `per` augmented versions of it (floats in [0, 1],
 * row-major, `per` images per original). */
int plot_augmented(const char *path, const uint8_t *originals, const float *augmented, int rows,
                   int per, Error *e);

/* A line chart of up to PLOT_MAX_SERIES series over shared x values (log2
 * x axis with log2x; x > 0 then), y from 0, each point labelled with its
 * value, a legend where no line passes. NaN in y leaves a point out. */
#define PLOT_MAX_SERIES 4
typedef struct PlotLines {
    const char *title, *note, *xlabel, *ylabel; /* note: a muted line under the title */
    int log2x;
    int n, n_series;                   /* points; series (1..PLOT_MAX_SERIES) */
    const double *x;                   /* n values */
    const double *y[PLOT_MAX_SERIES];  /* n values each */
    const char *names[PLOT_MAX_SERIES]; /* legend entries; the first NULL ends them */
} PlotLines;

int plot_lines(const char *path, const PlotLines *p, Error *e);

#endif

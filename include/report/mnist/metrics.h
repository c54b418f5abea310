/* metrics: evaluation metrics from a confusion matrix (per-class precision,
 * recall, F1, macro and weighted averages) and the most confident mistakes.
 * Must not touch MPI: callers reduce the counts first. */
#ifndef MNIST_METRICS_H
#define MNIST_METRICS_H

#include <stdint.h>

#include "mnist/util.h"

#define REPORT_MAX_CLASSES 256
#define MISTAKE_MAX_PIXELS 4096 /* the thumbnail of a mistake: up to 64 x 64 grey */

/* Sums over evaluated samples; plain integers and a double so ranks can add
 * them with one allreduce each (classes^2 int64, 1 double). */
typedef struct Metrics {
    int classes;
    int64_t *confusion; /* [true * classes + predicted], owned */
    double loss_sum;    /* summed cross-entropy */
} Metrics;

/* Zeroed counts for `classes` classes (2..REPORT_MAX_CLASSES). -1 with e. */
int metrics_init(Metrics *m, int classes, Error *e);
void metrics_free(Metrics *m);

typedef struct Scores {
    int classes;
    int64_t count, correct;
    double accuracy, loss; /* loss: mean cross-entropy */
    double precision[REPORT_MAX_CLASSES], recall[REPORT_MAX_CLASSES], f1[REPORT_MAX_CLASSES];
    int64_t support[REPORT_MAX_CLASSES]; /* true samples per class */
    double macro_precision, macro_recall, macro_f1;
    double weighted_precision, weighted_recall, weighted_f1;
} Scores;

/* A wrongly classified image, kept for the report's grid of the most
 * confidently misclassified images. */
typedef struct Mistake {
    float prob;        /* the model's probability for pred (its confidence) */
    int32_t label;     /* true class */
    int32_t pred;      /* predicted class */
    int64_t index;     /* row in the evaluated file */
    uint8_t pixels[MISTAKE_MAX_PIXELS]; /* grey, h x w (0 x 0: too large to show) */
    int16_t h, w;
} Mistake;

#define REPORT_MISTAKES 24 /* how many the report shows */

/* Keeps the n_max most confident mistakes in list (sorted by prob, highest
 * first; *n is the current count): inserts m if it ranks. */
void mistakes_insert(Mistake *list, int *n, int n_max, const Mistake *m);

/* The thumbnail of an h x w x c image (bytes, channels-last) into m: grey
 * (channels averaged); left empty when it exceeds MISTAKE_MAX_PIXELS. */
void mistake_set_pixels(Mistake *m, const uint8_t *image, int h, int w, int c);

/* Counts B predictions against labels into m (accumulates). */
void metrics_add(Metrics *m, const uint8_t *labels, const int *pred, int B);

/* Derives scores from m. A class never predicted has precision 0, one with no
 * samples recall 0 (scikit-learn's zero_division=0 convention). Macro
 * averages run over every class of the model. */
void metrics_scores(const Metrics *m, Scores *s);

#endif

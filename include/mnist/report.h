/* report: evaluation metrics (confusion matrix, per-class precision, recall,
 * F1, averages) and the run report: RUN/report/metrics.json and report.md.
 * Must not decide which rank writes, and must not touch MPI: callers reduce
 * the confusion matrix and loss first. */
#ifndef MNIST_REPORT_H
#define MNIST_REPORT_H

#include <stdint.h>

#include "mnist/data.h"
#include "mnist/history.h"
#include "mnist/util.h"

/* Sums over evaluated samples; plain integers and a double so ranks can add
 * them with one allreduce (the struct is MNIST_CLASSES^2 int64 + 1 double). */
typedef struct Metrics {
    int64_t confusion[MNIST_CLASSES][MNIST_CLASSES]; /* [true][predicted] */
    double loss_sum;                                 /* summed cross-entropy */
} Metrics;

typedef struct Scores {
    int64_t count, correct;
    double accuracy, loss; /* loss: mean cross-entropy */
    double precision[MNIST_CLASSES], recall[MNIST_CLASSES], f1[MNIST_CLASSES];
    int64_t support[MNIST_CLASSES]; /* true samples per class */
    double macro_precision, macro_recall, macro_f1;
    double weighted_precision, weighted_recall, weighted_f1;
} Scores;

/* A wrongly classified image, kept for the report's grid of the most
 * confidently misclassified digits. */
typedef struct Mistake {
    float prob;        /* the model's probability for pred (its confidence) */
    int32_t label;     /* true class */
    int32_t pred;      /* predicted class */
    int64_t index;     /* row in the evaluated file */
    uint8_t pixels[MNIST_PIXELS];
} Mistake;

#define REPORT_MISTAKES 24 /* how many the report shows */

/* Keeps the n_max most confident mistakes in list (sorted by prob, highest
 * first; *n is the current count): inserts m if it ranks. */
void mistakes_insert(Mistake *list, int *n, int n_max, const Mistake *m);

/* Counts B predictions against labels into m (accumulates). */
void metrics_add(Metrics *m, const uint8_t *labels, const int *pred, int B);

/* Derives scores from m. A class never predicted has precision 0, one with no
 * samples recall 0 (scikit-learn's zero_division=0 convention). */
void metrics_scores(const Metrics *m, Scores *s);

/* What the report says about the run besides the metrics. Strings may be
 * empty but not NULL. */
typedef struct RunInfo {
    const char *command;     /* "train" or "evaluate" */
    const char *train_path, *test_path, *checkpoint, *layers;
    const char *optimizer;   /* human-readable optimizer/batch/dropout/seed settings */
    const char *versions;    /* software versions, one line */
    int ranks, threads, epochs_run;
    int64_t train_rows, val_rows, test_rows, num_params;
    double wall_s;           /* whole run, start to report */
    double train_s;          /* sum of epoch training times */
    double samples_per_s;    /* median training throughput over epochs (0: none) */
    const char *config_json; /* the full configuration, a JSON object */
    const Mistake *mistakes; /* the most confident mistakes, most confident first */
    int n_mistakes;
    const double *phase_ms;  /* [5][3]: ms per step of data, forward, backward, allreduce,
                                update: min, mean, max over ranks (NULL: none) */
    const double *rss_mb;    /* [3]: peak resident memory per rank, MB: min, mean, max
                                (NULL: not measured) */
    int best_epoch;          /* early stopping: the epoch whose weights were tested (0: the
                                last epoch's) */
    const char *augment;     /* the augmentation spec ("" or "off": none) */
    const uint8_t *aug_originals; /* augmentation examples for the report (NULL: none): */
    const float *aug_images;      /* aug_rows originals, aug_per versions of each */
    int aug_rows, aug_per;
} RunInfo;

/* Writes DIR/metrics.json, the charts (curves.png, confusion.png,
 * class_scores.png, mistakes.png), DIR/report.md and a self-contained
 * DIR/report.html (charts embedded), creating DIR; each file goes to a temp
 * name then is renamed. -1 with e filled; nothing half-written is left. */
int report_write(const char *dir, const Metrics *test, const History *h, const RunInfo *run,
                 Error *e);

#endif

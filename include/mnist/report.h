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

/* Counts B predictions against labels into m (accumulates). */
void metrics_add(Metrics *m, const uint8_t *labels, const int *pred, int B);

/* Derives scores from m. A class never predicted has precision 0, one with no
 * samples recall 0 (scikit-learn's zero_division=0 convention). */
void metrics_scores(const Metrics *m, Scores *s);

/* What the report says about the run besides the metrics. */
typedef struct RunInfo {
    const char *train_path, *test_path, *checkpoint, *layers;
    int ranks, threads, epochs_run;
    int64_t train_rows, val_rows, test_rows, num_params;
    double wall_s;       /* whole run, start to report */
    double train_s;      /* sum of epoch training times */
    const char *config_json; /* the full configuration, a JSON object */
} RunInfo;

/* Writes DIR/metrics.json and DIR/report.md (creating DIR), each to a temp
 * name then renamed. -1 with e filled; nothing half-written is left. */
int report_write(const char *dir, const Metrics *test, const History *h, const RunInfo *run,
                 Error *e);

#endif

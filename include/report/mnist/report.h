/* report: the run report: RUN/report/metrics.json, report.md, report.html
 * and the charts, from the metrics (metrics.h), the history and the run.
 * Must not decide which rank writes, and must not touch MPI: callers reduce
 * the confusion matrix and loss first. */
#ifndef MNIST_REPORT_H
#define MNIST_REPORT_H

#include <stdint.h>

#include "mnist/history.h"
#include "mnist/metrics.h"
#include "mnist/model.h"
#include "mnist/util.h"

/* What the report says about the run besides the metrics. Strings may be
 * empty but not NULL. */
typedef struct RunInfo {
    const char *command;     /* "train" or "evaluate" */
    const char *train_path, *test_path, *layers;
    const char *checkpoint;  /* the checkpoint whose weights were tested */
    const char *checkpoint_last; /* the last epoch's, when another one was tested ("" : none) */
    const char *optimizer;   /* human-readable optimizer/batch/dropout/seed settings */
    const char *schedule;    /* the learning-rate schedule and warmup ("" : none) */
    const char *regularization; /* weight decay, max-norm, clipping, smoothing ("" : none) */
    const char *standardization; /* the input standardisation in force ("" : none) */
    const char *segments_json; /* the settings history: a JSON array of the run's invocations,
                                  {first_epoch, last_epoch, from_step, command, settings}
                                  (NULL: none) */
    const char *versions;    /* software versions, one line */
    int ranks, threads, epochs_run;
    int64_t train_rows, val_rows, test_rows, num_params;
    int64_t rows_not_reached; /* training rows no step of an epoch reaches */
    double wall_s;           /* this invocation, start to report */
    double wall_total_s;     /* the run over all its invocations (0: as wall_s) */
    int invocations;         /* how many invocations trained the run (0: one) */
    double train_s;          /* sum of epoch training times, over all invocations */
    double samples_per_s;    /* median training throughput over epochs 2.. (0: none) */
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
    const Model *model;      /* the network: the table of layers (NULL: none) */
} RunInfo;

/* Writes DIR/metrics.json, the charts (curves.png, confusion.png,
 * class_scores.png, mistakes.png), DIR/report.md and a self-contained
 * DIR/report.html (charts embedded), creating DIR; each file goes to a temp
 * name then is renamed. -1 with e filled; nothing half-written is left. */
int report_write(const char *dir, const Metrics *test, const History *h, const RunInfo *run,
                 Error *e);

#endif

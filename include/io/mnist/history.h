/* history: the per-epoch record of a run (losses, accuracies, timing), kept
 * by train, saved in checkpoints and written into the report.
 * Must not know where the numbers come from. */
#ifndef MNIST_HISTORY_H
#define MNIST_HISTORY_H

#include "mnist/util.h"

typedef struct EpochStats {
    int epoch;                   /* 1-based */
    double train_loss, train_acc; /* over the epoch's training batches, dropout on */
    double val_loss, val_acc;     /* NaN when there is no validation split */
    double seconds;               /* wall time of the epoch's training steps */
    double samples_per_s;         /* training samples / seconds */
} EpochStats;

typedef struct History {
    EpochStats *items;
    int count, cap;
} History;

/* Appends a copy of s (grows the array). 0 or -1 on out of memory. */
int history_push(History *h, const EpochStats *s, Error *e);

/* Keeps only the first count entries. */
void history_truncate(History *h, int count);

/* Frees the array and zeroes h. */
void history_free(History *h);

#endif

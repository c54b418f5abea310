/* progress: rank 0's view of training within an epoch: a bar redrawn in
 * place on a terminal (at most 10 times a second), plain lines every
 * log_every steps otherwise, nothing when quiet. It shows rank 0's own
 * running loss, so drawing needs no communication. Must not touch MPI. */
#ifndef MNIST_PROGRESS_H
#define MNIST_PROGRESS_H

#include <stddef.h>

typedef struct Progress {
    int on_tty, quiet, log_every, epoch, epochs;
    size_t steps, samples_per_step;
    double t0, last_draw, loss, count; /* running sums since the epoch start */
    int drawn;
} Progress;

/* 1 when stdout reaches a person's terminal. Under mpirun a rank's stdout is
 * a pseudo-terminal that Open MPI forwards even into a log file, so there
 * the launcher's own stdout (our parent's fd 1) decides. */
int progress_stdout_is_terminal(void);

/* Starts epoch's display (t0: its start time). */
void progress_begin(Progress *p, int epoch, double t0);

/* After step (1-based) of the epoch, with this step's summed loss over rows. */
void progress_step(Progress *p, size_t step, double loss_sum, double rows);

/* Clears the bar so the next line replaces it. */
void progress_end(Progress *p);

#endif

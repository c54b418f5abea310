/* runtime: what the command drivers (train, evaluate, predict) share:
 * agreeing on errors, choosing threads, reading this rank's rows, loading a
 * model from a checkpoint on every rank, sharded evaluation reduced to rank
 * 0, and the run directory. Sequences comm with data and model; no kernel
 * math of its own. */
#ifndef MNIST_RUNTIME_H
#define MNIST_RUNTIME_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "mnist/ckpt.h"
#include "mnist/comm.h"
#include "mnist/config.h"
#include "mnist/data.h"
#include "mnist/history.h"
#include "mnist/mlp.h"
#include "mnist/report.h"

#define RT_EVAL_BATCH 1000 /* rows per forward pass when evaluating */

/* Collective: shares a status across ranks; on failure the lowest failing
 * rank prints e's message (prefixed with its rank when there are several),
 * so a failure common to all ranks is printed once. Returns the agreed
 * status (0 = all fine, else EXIT_FAIL). */
int rt_agree(const Comm *c, int status, const Error *e);

/* Collective: threads per rank (--threads, else OMP_NUM_THREADS, else the
 * CPUs this rank may use shared by the ranks on its node), applied to OpenMP
 * and OpenBLAS. Rank 0 warns about oversubscription or a too-narrow binding
 * unless quiet. */
int rt_threads(const Config *cfg, const Comm *comm);

/* Collective: opens path (MPI-IO access list fapl) and reads this rank's
 * share of rows [skip, skip + rows) into out (rows = SIZE_MAX: to the end).
 * need_labels makes an unlabelled file an error. *file_rows gets the file's
 * row count and *first_row the file row of out's first row. */
int rt_load_shard(const char *path, hid_t fapl, const Comm *comm, size_t skip, size_t rows,
                  int need_labels, size_t *file_rows, size_t *first_row, Dataset *out, Error *e);

/* Collective: opens path and reads rows [first, first + count) into out
 * (this rank's own range; ranges may differ between ranks). */
int rt_load_rows(const char *path, hid_t fapl, size_t first, size_t count, int need_labels,
                 size_t *file_rows, Dataset *out, Error *e);

/* Collective: rank 0 picks runs/<date>-<time><suffix> when cfg->out_dir is
 * empty and creates it (and DIR/subdir when subdir is non-NULL); every rank
 * receives the name. Returns the agreed status. */
int rt_run_dir(Config *cfg, const Comm *comm, const char *suffix, const char *subdir, Error *e);

/* Collective: rank 0 reads the checkpoint at path; every rank builds m
 * (dropout 0, max_batch rows) and receives its parameters. Rank 0 also keeps
 * the checkpoint's history in h and meta (others get meta only). Returns the
 * agreed status. */
int rt_load_model(const char *path, const Comm *comm, int max_batch, Mlp *m, CkptMeta *meta,
                  History *h, Error *e);

/* Per-rank batch buffers, sized once. */
typedef struct Batch {
    float *x;      /* cap x MNIST_PIXELS */
    uint8_t *y;
    int *pred;
    uint64_t *ids;
    size_t *rows;  /* row indices into the dataset */
    float *probs;  /* cap x MNIST_CLASSES */
    int cap;
} Batch;

int batch_alloc(Batch *b, int cap, Error *e);
void batch_free(Batch *b);

/* Forward passes (no dropout) over all of d, whose row 0 is file row
 * first_row: adds to out and, when mistakes is non-NULL, keeps this rank's
 * REPORT_MISTAKES most confident mistakes. d must have labels. */
void rt_evaluate(Mlp *m, const Dataset *d, size_t first_row, Batch *b, Metrics *out,
                 Mistake *mistakes, int *n_mistakes);

/* Collective: sums out over ranks (every rank gets the total) and, when
 * mistakes is non-NULL, merges every rank's list into rank 0's. */
void rt_reduce_eval(const Comm *comm, Metrics *out, Mistake *mistakes, int *n_mistakes);

/* "784-512-512-10" into buf. */
void rt_format_layers(char *buf, size_t size, const Mlp *m);

/* One line of library versions: mnist-dist, HDF5, Open MPI, OpenBLAS. */
void rt_versions(char *buf, size_t size);

#endif

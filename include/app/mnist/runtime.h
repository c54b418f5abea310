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
#include "mnist/h5data.h"
#include "mnist/history.h"
#include "mnist/metrics.h"
#include "mnist/model.h"

#define RT_EVAL_BATCH 1000 /* rows per forward pass when evaluating */

/* Collective: shares a status across ranks; on failure the lowest failing
 * rank prints e's message (prefixed with its rank when there are several),
 * so a failure common to all ranks is printed once. Returns the agreed
 * status (0 = all fine, else EXIT_FAIL). */
int rt_agree(const Comm *c, int status, const Error *e);

/* rt_agree for a failure that has its own exit status: code (EXIT_USAGE for
 * a bad combination of options found once the ranks are known). */
int rt_agree_code(const Comm *c, int status, int code, const Error *e);

/* Collective: threads per rank (--threads, else OMP_NUM_THREADS, else the
 * CPUs this rank may use shared by the ranks on its node), applied to OpenMP
 * and OpenBLAS, and denormals flushed to zero on every thread
 * (ops_flush_denormals). Rank 0 warns about oversubscription or a too-narrow binding
 * unless quiet. */
int rt_threads(const Config *cfg, const Comm *comm);

/* The dataset names --images-dataset and --labels-dataset give ("": the
 * defaults); points into cfg. */
H5Names rt_names(const Config *cfg);

/* Collective: h5safe's check of the image set at path (its datasets as
 * names says) on every rank (each
 * rank's libhdf5 parses the file, maybe another host's copy of it), agreed
 * before any rank enters HDF5's collective open: -1 on every rank, with the
 * lowest failing rank's message in e, when any rank's check refused it.
 * Prints nothing; agree on the result. */
int rt_check_h5(const Comm *comm, const char *path, const H5Names *names, Error *e);

/* Collective: opens path's datasets names (MPI-IO access list fapl) and reads this rank's
 * share of rows [skip, skip + rows) into out (rows = SIZE_MAX: to the end).
 * need_labels makes an unlabelled file an error. *file_rows gets the file's
 * row count and *first_row the file row of out's first row. */
int rt_load_shard(const char *path, const H5Names *names, hid_t fapl, const Comm *comm,
                  size_t skip, size_t rows, int need_labels, size_t *file_rows,
                  size_t *first_row, Dataset *out, Error *e);

/* Collective: opens path and reads rows [first, first + count) into out
 * (this rank's own range; ranges may differ between ranks). The caller
 * has checked path with rt_check_h5. */
int rt_load_rows(const char *path, const H5Names *names, hid_t fapl, size_t first, size_t count,
                 int need_labels, size_t *file_rows, Dataset *out, Error *e);

/* This rank's check that d (from path, its row 0 being file row first_row)
 * fits m (read from model_path; NULL or "": being trained): the same image
 * shape and, for labelled data, the same declared
 * class count and every label below it (naming the first row that is not).
 * 0 or -1 with e; agree on it. */
int rt_check_fits(const Model *m, const char *model_path, const Dataset *d, const char *path,
                  size_t first_row, Error *e);

/* Collective: rank 0 picks runs/<date>-<time><suffix> when cfg->out_dir is
 * empty and creates it (and DIR/subdir when subdir is non-NULL); every rank
 * receives the name. Returns the agreed status. */
int rt_run_dir(Config *cfg, const Comm *comm, const char *suffix, const char *subdir, Error *e);

/* Collective: rank 0 reads the checkpoint at path; every rank builds m
 * (max_batch rows) from it alone and receives its parameters and input
 * standardisation. Rank 0 also keeps the checkpoint's history in h (others
 * get meta only). Returns the agreed status. */
int rt_load_model(const char *path, const Comm *comm, int max_batch, Model *m, CkptMeta *meta,
                  History *h, Error *e);

/* Evaluation buffers, sized once for cap rows of a model. */
typedef struct EvalBuf {
    float *x;      /* cap x input */
    uint8_t *y;
    int *pred;
    size_t *rows;  /* row indices into the dataset */
    float *probs;  /* cap x classes */
    int cap;
} EvalBuf;

int evalbuf_alloc(EvalBuf *b, int cap, const Model *m, Error *e);
void evalbuf_free(EvalBuf *b);

/* Forward passes (no dropout) over all of d, whose row 0 is file row
 * first_row: adds to out (initialised for m's classes) and, when mistakes
 * is non-NULL, keeps this rank's REPORT_MISTAKES most confident mistakes.
 * d must have labels. */
void rt_evaluate(Model *m, const Dataset *d, size_t first_row, EvalBuf *b, Metrics *out,
                 Mistake *mistakes, int *n_mistakes);

/* Collective: sums out over ranks (every rank gets the total) and, when
 * mistakes is non-NULL, merges every rank's list into rank 0's. */
void rt_reduce_eval(const Comm *comm, Metrics *out, Mistake *mistakes, int *n_mistakes);

/* One line of library versions: mnist-dist, HDF5, MPI, OpenBLAS. */
void rt_versions(char *buf, size_t size);

#endif

/* ckpt: training checkpoints in HDF5 (layout in README.md, "Checkpoint
 * format"): weights, biases, Adam moments and step, completed epochs, the
 * history, the configuration as JSON and a format version; every dataset
 * carries a Fletcher-32 checksum. Written to a temp name and renamed.
 * Must not decide which rank writes: callers do. */
#ifndef MNIST_CKPT_H
#define MNIST_CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "mnist/history.h"
#include "mnist/mlp.h"
#include "mnist/optim.h"
#include "mnist/util.h"

#define CKPT_FORMAT "mnist-dist checkpoint"
#define CKPT_FORMAT_VERSION 1

/* What a checkpoint holds besides the tensors. */
typedef struct CkptMeta {
    int epoch;    /* completed epochs */
    int64_t seed; /* the run's seed (random streams are keyed by seed and epoch) */
    int step;     /* steps already taken in epoch + 1 (0: an epoch boundary) */
    double partial[4]; /* that partial epoch's summed loss, correct, samples, seconds
                          over all ranks (zeros at a boundary) */
} CkptMeta;

/* Writes m's parameters, opt and m's Adam moments, meta, the history and
 * config_json to path (temp + fsync + rename). -1 with e filled; the previous
 * file at path, if any, is untouched on failure. */
int ckpt_write(const char *path, const Mlp *m, const Adam *opt, const CkptMeta *meta,
               const History *h, const char *config_json, Error *e);

/* Reads the layer widths stored in path into sizes (MLP_MAX_LAYERS + 1 ints)
 * and returns the number of dense layers, or -1 with e filled when path is
 * not a readable checkpoint of this format version. */
int ckpt_read_layers(const char *path, int *sizes, Error *e);

/* Loads path into m (created with the same widths; a mismatch is an error
 * naming both; also its input standardisation), opt (t and hyper-parameters),
 * meta and h (replaced). Every
 * dataset's shape is checked against the widths, and checksums are verified. */
int ckpt_read(const char *path, Mlp *m, Adam *opt, CkptMeta *meta, History *h, Error *e);

/* Path of the checkpoint after `epoch` completed epochs and `step` more steps
 * in run dir: DIR/checkpoints/epoch-NNNN.h5, or epoch-NNNN-step-SSSSSSS.h5
 * when step > 0 (a stop in mid-epoch). 0 or -1 if too long. */
int ckpt_path(char *buf, size_t size, const char *run_dir, int epoch, int step);

/* Finds the latest checkpoint (highest epoch, then step) in
 * run_dir/checkpoints that passes ckpt_read_layers and fills path. Returns 1
 * if one was found, 0 if there is none. */
int ckpt_find_latest(const char *run_dir, char *path, size_t size);

#endif

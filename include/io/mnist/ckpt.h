/* ckpt: training checkpoints in HDF5 (layout in README.md, "Checkpoint
 * format"): the model's layer list, input shape and class count, every
 * parameter tensor, the optimizer's moments and step, completed epochs, the
 * history, the configuration as JSON and a format version; every dataset
 * carries a Fletcher-32 checksum. Written to a temp name and renamed.
 * Format 1 files (MLPs of earlier releases) still load.
 * Must not decide which rank writes: callers do. */
#ifndef MNIST_CKPT_H
#define MNIST_CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "mnist/history.h"
#include "mnist/model.h"
#include "mnist/optim.h"
#include "mnist/util.h"

#define CKPT_FORMAT "mnist-dist checkpoint"
#define CKPT_FORMAT_VERSION 2

#define CKPT_SEGMENTS_MAX 65536 /* bytes of the settings history */

/* What a checkpoint holds besides the tensors. */
typedef struct CkptMeta {
    int epoch;    /* completed epochs */
    int64_t seed; /* the run's seed (random streams are keyed by seed and epoch) */
    int step;     /* steps already taken in epoch + 1 (0: an epoch boundary) */
    double partial[4]; /* that partial epoch's summed loss, correct, samples, seconds
                          over all ranks (zeros at a boundary) */
    uint64_t run_id;   /* drawn when the run started; kept by every resume (0: unknown) */
    double wall_s;     /* wall time of the run's invocations up to this checkpoint (0: unknown) */
    char segments[CKPT_SEGMENTS_MAX]; /* the settings history, a JSON array ("" : none) */
} CkptMeta;

/* The model a checkpoint describes: enough to build it (model_create). */
typedef struct CkptModel {
    int format_version;
    ModelSpec spec;  /* every layer, the output layer included */
    Shape input;
    int classes;
    float in_mean, in_scale; /* the input standardisation it was trained with */
} CkptModel;

/* Writes m's parameters, o's moments and step (o may be NULL: an
 * inference-only file, with zero moments), meta, the history and
 * config_json to path (temp + fsync + rename). -1 with e filled; the
 * previous file at path, if any, is untouched on failure. */
int ckpt_write(const char *path, const Model *m, const Optimizer *o, const CkptMeta *meta,
               const History *h, const char *config_json, Error *e);

/* Reads what model path holds and checks, before anyone allocates a model
 * of that size, that every tensor has the shape the layer list implies and
 * that the file is large enough to hold them. -1 with e filled when path is
 * not a readable checkpoint of a known format version. */
int ckpt_read_model(const char *path, CkptModel *out, Error *e);

/* Loads path into m (built from the same layer list and shapes: a mismatch
 * is an error naming both; also its input standardisation), o (moments, t
 * and hyper-parameters; NULL: read and checked, then dropped), meta and h
 * (replaced). Every dataset's shape is checked and checksums are verified. */
int ckpt_read(const char *path, Model *m, Optimizer *o, CkptMeta *meta, History *h, Error *e);

/* h5safe's walk for checkpoints: what evaluate, predict and --resume read
 * (ckpt_read_model, then ckpt_read of every tensor, the optimizer's state,
 * the metadata and the history). 0, or -1 with e as those give it. */
int ckpt_walk(const char *path, Error *e);

/* Path of the checkpoint after `epoch` completed epochs and `step` more steps
 * in run dir: DIR/checkpoints/epoch-NNNN.h5, or epoch-NNNN-step-SSSSSSS.h5
 * when step > 0 (a stop in mid-epoch). 0 or -1 if too long. */
int ckpt_path(char *buf, size_t size, const char *run_dir, int epoch, int step);

/* Reads only path's scalar attributes into meta (no tensors): for telling
 * runs apart. -1 with e when path is not a readable checkpoint. */
int ckpt_read_meta(const char *path, CkptMeta *meta, Error *e);

/* Finds the latest checkpoint (highest epoch, then step) in
 * run_dir/checkpoints that passes ckpt_read_model (with h5safe on: that the
 * whole file reads) and fills path; every later one that does not is given
 * to skipped (when non-NULL) with the reason. Returns 1 if one was found, 0
 * if there is none. */
int ckpt_find_latest(const char *run_dir, char *path, size_t size,
                     void (*skipped)(const char *path, const Error *why, void *arg), void *arg);

/* Calls fn(path, epoch, step, arg) for every file of run_dir/checkpoints
 * named like a checkpoint (epoch-NNNN[-step-SSSSSSS].h5; best.h5 with epoch
 * -1), in no particular order; returns how many there were. */
int ckpt_each(const char *run_dir, void (*fn)(const char *path, int epoch, int step, void *arg),
              void *arg);

#endif

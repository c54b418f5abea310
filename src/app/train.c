/* train: `mnist-dist train` as a few collective phases on one Trainer (see
 * train.h). Every decision all ranks must share goes through rt_agree(); a
 * step is loader_batch + exchange_step; kernel math lives in nn. */
#define _GNU_SOURCE
#include "mnist/train.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "mnist/augment.h"
#include "mnist/ckpt.h"
#include "mnist/exchange.h"
#include "mnist/gemm.h"
#include "mnist/h5data.h"
#include "mnist/history.h"
#include "mnist/loader.h"
#include "mnist/model.h"
#include "mnist/optim.h"
#include "mnist/progress.h"
#include "mnist/report.h"
#include "mnist/rng.h"
#include "mnist/runtime.h"

/* ---- signals and test hooks ------------------------------------------------ */

/* Set by SIGUSR1/SIGTERM (what SLURM sends before a time limit or on
 * preemption) and SIGINT (Ctrl-C on a run started without a launcher;
 * mpirun turns its own Ctrl-C into SIGTERM): finish the step, checkpoint,
 * exit EXIT_STOPPED. A second signal terminates at once. */
static volatile sig_atomic_t stop_signal;

static const char *signal_name(int sig)
{
    return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : sig == SIGUSR1 ? "SIGUSR1"
                                                                                 : "a signal";
}

static int announce_stop; /* rank 0 says it heard the first signal */

static void on_stop_signal(int sig)
{
    if (stop_signal) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    stop_signal = sig;
    if (announce_stop) { /* write(2) is async-signal-safe; printf is not */
        static const char msg[] = "mnist-dist: stopping after this step, with a checkpoint (a "
                                  "second signal stops at once)\n";
        ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)ignored;
    }
}

static void install_stop_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

/* MNIST_DIST_FAULT (see train.h); -1: off. Read once, at init. */
typedef struct Fault {
    int64_t nan_step, diverge_step, stop_step;
} Fault;

static Fault fault_from_env(void)
{
    Fault f = {-1, -1, -1};
    const char *v = getenv("MNIST_DIST_FAULT");
    long long step;
    if (v && sscanf(v, "nan@%lld", &step) == 1)
        f.nan_step = step;
    if (v && sscanf(v, "diverge@%lld", &step) == 1)
        f.diverge_step = step;
    if (v && sscanf(v, "stop@%lld", &step) == 1)
        f.stop_step = step;
    return f;
}

/* ---- the run's state ----------------------------------------------------------- */

typedef enum { CKPT_EPOCH, CKPT_MID_EPOCH, CKPT_BEST } CkptKind;

typedef struct Trainer {
    Config cfg;
    const Comm *comm;
    int rank, P, threads;
    double t_start;
    Error e;
    Fault fault;
    hid_t fapl;
    int run_dir_is_new;
    /* data: this rank's rows of each split */
    Dataset train, val, test;
    size_t n_train, n_val, test_rows, val_first, test_first;
    Shape shape;
    int classes;
    AugmentParams aug;
    ShardPlan plan;
    Loader loader;
    EvalBuf eval; /* validation and test batches, allocated once */
    Model model;
    Optimizer opt;
    Exchange *ex;
    History hist;
    char *cfg_json;
    cJSON *segments;      /* the settings history (see write_segments) */
    uint64_t run_id;
    int nothing_to_do;    /* --resume auto of a finished run */
    char layers[512];
    CkptMeta from;                       /* where a resumed run stopped (zeros: fresh) */
    char resumed_from[CONFIG_PATH_MAX];
    char last_ckpt[CONFIG_PATH_MAX + 64];
    /* early stopping */
    float *best_params;
    double best_val;
    int best_epoch, early_stop;
    /* the epoch in progress */
    int epoch;
    double sums[3]; /* loss, correct, samples */
    int64_t correct;
    double seconds_before, t0;
    size_t stopped_after; /* a stop was agreed after this many steps (0: none) */
    Progress prog;
    StepTimes phase;
    int64_t phase_steps;
    double train_s;
} Trainer;

/* ---- init: options, data, model, optimizer, loader, run directory ----------------- */

/* Collective: this rank's rows of the training, validation and test data,
 * after the shape and row count of the training file are known. */
static int load_data(Trainer *t)
{
    Config *c = &t->cfg;
    H5Data h;
    size_t file_rows = 0, dummy;
    const H5Names names = rt_names(c);
    int status = rt_check_h5(t->comm, c->train_path, &names, &t->e);
    if (status == 0)
        status = h5data_open_named(&h, c->train_path, &names, t->fapl, &t->e);
    if (status == 0) {
        file_rows = h.rows, t->shape = h.shape, t->classes = h.classes;
        if (!h.has_labels)
            status = err_set(&t->e, "%s: has no /%s; training and evaluation need labelled "
                                    "data", c->train_path, h.labels_name);
        h5data_close(&h);
    }
    if ((status = rt_agree(t->comm, status, &t->e)))
        return status;
    if ((size_t)c->val_split >= file_rows)
        status = err_set(&t->e, "--val-split %d leaves no training rows (%s has %zu)",
                         c->val_split, c->train_path, file_rows);
    if ((status = rt_agree(t->comm, status, &t->e)))
        return status;
    t->n_train = file_rows - (size_t)c->val_split, t->n_val = (size_t)c->val_split;
    /* the default mode: one logical shard per rank; --deterministic: a
     * fixed count, whatever the rank count */
    status = shard_plan(&t->plan, t->n_train, c->batch_size,
                        c->deterministic ? c->logical_shards : 0, t->rank, t->P, &t->e);
    if ((status = rt_agree(t->comm, status, &t->e)))
        return status;
    status = rt_load_rows(c->train_path, &names, t->fapl, t->plan.local_first,
                          t->plan.local_rows, 1, &dummy, &t->train, &t->e);
    if ((status = rt_agree(t->comm, status, &t->e)))
        return status;
    status = rt_load_shard(c->train_path, &names, t->fapl, t->comm, t->n_train, t->n_val, 1,
                           &dummy, &t->val_first, &t->val, &t->e);
    if ((status = rt_agree(t->comm, status, &t->e)))
        return status;
    status = rt_load_shard(c->test_path, &names, t->fapl, t->comm, 0, SIZE_MAX, 1,
                           &t->test_rows, &t->test_first, &t->test, &t->e);
    return rt_agree(t->comm, status, &t->e);
}

/* The learning-rate schedule over optimizer steps. */
static Schedule schedule_of(const Config *c, size_t steps)
{
    const double base = c->lr * (c->lr_scale_with_batch ? c->batch_size / 128.0 : 1.0);
    return (Schedule){
        .kind = strcmp(c->lr_schedule, "cosine") == 0 ? SCHED_COSINE
                : strcmp(c->lr_schedule, "step") == 0 ? SCHED_STEP
                                                       : SCHED_CONSTANT,
        .base_lr = base,
        .warmup_steps = (int64_t)llround(c->warmup_epochs * (double)steps),
        .total_steps = (int64_t)c->epochs * (int64_t)steps,
        .step_every = (int64_t)c->lr_step_epochs * (int64_t)steps,
        .gamma = c->lr_gamma,
        .min_lr = c->lr_min};
}

/* This rank's model, optimizer and loader (no communication). */
static int build(Trainer *t)
{
    const Config *c = &t->cfg;
    ModelSpec spec;
    Error *e = &t->e;
    if (c->model_spec[0] ? model_spec_model(&spec, c->model_spec, t->classes, e)
                         : model_spec_from_widths(&spec, c->layers, c->dropout, e) ||
                               model_spec_append(&spec, (LayerSpec){.kind = LAYER_DENSE,
                                                                    .units = t->classes}, e))
        return -1;
    if (strcmp(c->precision, "bf16") == 0) {
        const char *isa;
        if (!gemm_have_dnnl())
            return err_set(e, "--precision bf16: this build has no oneDNN (rebuild with "
                              "libdnnl-dev installed)");
        if (!gemm_bf16_native(&isa))
            return err_set(e, "--precision bf16 needs a CPU with AVX512_BF16 or AMX; oneDNN "
                              "finds %s here (rank %d)", isa, t->rank);
        spec.precision = PRECISION_BF16;
    }
    const int b_local = t->plan.local_batch;
    if (model_create(&t->model, &spec, t->shape, t->classes,
                     b_local > RT_EVAL_BATCH ? b_local : RT_EVAL_BATCH, e))
        return -1;
    t->model.label_smoothing = c->label_smoothing;
    const OptimConfig oc = {.lr = c->lr, .beta1 = c->beta1, .beta2 = c->beta2, .eps = c->eps,
                            .weight_decay = c->weight_decay, .clip_norm = c->clip_grad_norm,
                            .max_norm = c->max_norm, .sched = schedule_of(c, t->plan.steps)};
    if (optim_create(&t->opt, &oc, t->model.param_floats, t->model.tensors,
                     t->model.num_tensors, e))
        return -1;
    if (loader_create(&t->loader, &t->plan, &t->train, (uint64_t)c->seed, &t->aug, t->threads, e) ||
        evalbuf_alloc(&t->eval, RT_EVAL_BATCH, &t->model, e))
        return -1;
    if (c->patience > 0 &&
        !(t->best_params = malloc(sizeof(float) * t->model.param_floats)))
        return err_set(e, "out of memory");
    model_describe(t->layers, sizeof t->layers, &t->model);
    return 0;
}

/* ---- the run directory belongs to one run ------------------------------------ */

typedef struct DirScan {
    int count, latest_epoch, latest_step;
    char latest[CONFIG_PATH_MAX + 64];
    /* two checkpoints of different runs, when found */
    char first[CONFIG_PATH_MAX + 64], other[CONFIG_PATH_MAX + 64];
    uint64_t first_id;
    int64_t first_seed;
    int mixed;
    CkptMeta *meta; /* scratch */
} DirScan;

static void scan_one(const char *path, int epoch, int step, void *arg)
{
    DirScan *d = arg;
    d->count++;
    if (epoch > d->latest_epoch || (epoch == d->latest_epoch && step > d->latest_step)) {
        d->latest_epoch = epoch, d->latest_step = step;
        snprintf(d->latest, sizeof d->latest, "%s", path);
    }
    if (d->mixed || !d->meta || ckpt_read_meta(path, d->meta, NULL) != 0)
        return; /* unreadable: --resume auto skips it anyway */
    if (!d->first[0]) {
        snprintf(d->first, sizeof d->first, "%s", path);
        d->first_id = d->meta->run_id, d->first_seed = d->meta->seed;
        return;
    }
    /* checkpoints of earlier releases carry no run id: their seed decides */
    const int differ = d->first_id && d->meta->run_id ? d->first_id != d->meta->run_id
                                                       : d->first_seed != d->meta->seed;
    if (differ) {
        d->mixed = 1;
        snprintf(d->other, sizeof d->other, "%s", path);
    }
}

/* Rank 0's verdict on cfg.out_dir: a fresh run refuses a directory that
 * holds another run's checkpoints or report (unless --overwrite), and
 * --resume auto refuses one whose checkpoints come from different runs. */
static int run_dir_verdict(Trainer *t)
{
    const Config *c = &t->cfg;
    if (!c->out_dir[0] || (c->resume[0] && strcmp(c->resume, "auto") != 0) || c->overwrite)
        return 0;
    DirScan d = {.latest_epoch = -2, .latest_step = -1};
    const int fresh = !c->resume[0];
    d.meta = fresh ? NULL : malloc(sizeof *d.meta);
    ckpt_each(c->out_dir, scan_one, &d);
    free(d.meta);
    char report[CONFIG_PATH_MAX + 32];
    snprintf(report, sizeof report, "%s/report/metrics.json", c->out_dir);
    const int has_report = path_exists(report);
    if (fresh && (d.count > 0 || has_report)) {
        char what[CONFIG_PATH_MAX + 160];
        if (d.count > 0)
            snprintf(what, sizeof what, "%d checkpoint%s, the latest %s%s", d.count,
                     d.count > 1 ? "s" : "", d.latest + strlen(c->out_dir) + 1,
                     has_report ? ", and a report" : "");
        else
            snprintf(what, sizeof what, "the report of an earlier run");
        return err_set(&t->e, "%s holds another run (%s); continue it with --resume auto --out "
                              "%s, choose another --out, or start afresh there with --overwrite",
                       c->out_dir, what, c->out_dir);
    }
    if (d.mixed)
        return err_set(&t->e, "%s/checkpoints holds checkpoints of different runs (%s and %s: "
                              "other seeds or run ids); resume one with --resume FILE, or move "
                              "the other run's files away",
                       c->out_dir, d.first + strlen(c->out_dir) + 1,
                       d.other + strlen(c->out_dir) + 1);
    return 0;
}

static int run_dir_check(Trainer *t)
{
    return rt_agree(t->comm, t->rank == 0 ? run_dir_verdict(t) : 0, &t->e);
}

static void unlink_checkpoint(const char *path, int epoch, int step, void *arg)
{
    (void)epoch, (void)step;
    *(int *)arg += unlink(path) == 0;
}

/* Rank 0, --overwrite, once the new run has started: the old run's
 * checkpoints and report go. */
static void run_dir_clear(const Trainer *t)
{
    static const char *const report_files[] = {"metrics.json", "report.md", "report.html",
                                               "curves.png", "confusion.png", "class_scores.png",
                                               "mistakes.png", "augmented.png"};
    int removed = 0, report = 0;
    ckpt_each(t->cfg.out_dir, unlink_checkpoint, &removed);
    char path[CONFIG_PATH_MAX + 64];
    for (size_t k = 0; k < sizeof report_files / sizeof report_files[0]; k++) {
        snprintf(path, sizeof path, "%s/report/%s", t->cfg.out_dir, report_files[k]);
        report |= unlink(path) == 0;
    }
    if ((removed || report) && !t->cfg.quiet)
        printf("--overwrite: removed %d checkpoint%s%s of the run that was in %s\n", removed,
               removed == 1 ? "" : "s", report ? " and its report" : "", t->cfg.out_dir);
}

/* Rank 0, after the checkpoint of `epoch` completed epochs: the mid-epoch
 * checkpoints before it are superseded (--checkpoint-every's stay). */
typedef struct Superseded {
    int epoch, removed;
} Superseded;

static void unlink_superseded(const char *path, int epoch, int step, void *arg)
{
    Superseded *s = arg;
    if (step > 0 && epoch < s->epoch)
        s->removed += unlink(path) == 0;
}

static int trainer_init(Trainer *t, const Config *cfg, const Comm *comm)
{
    *t = (Trainer){.cfg = *cfg, .comm = comm, .rank = comm->rank, .P = comm->size,
                   .t_start = time_now_s(), .fapl = H5I_INVALID_HID, .best_val = INFINITY};
    stop_signal = 0; /* a run in the same process (the tests) starts afresh */
    announce_stop = comm->rank == 0;
    install_stop_handlers(); /* before loading: a signal must never kill us silently */
    t->fault = fault_from_env();
    t->threads = rt_threads(&t->cfg, comm);
    ModelSpec probe; /* checked by config_parse already: for callers that did not */
    int status = t->cfg.model_spec[0]
                     ? model_spec_model(&probe, t->cfg.model_spec, 10, &t->e)
                     : model_spec_from_widths(&probe, t->cfg.layers, t->cfg.dropout, &t->e);
    if (status == 0 && augment_parse(&t->aug, t->cfg.augment, &t->e))
        status = err_prefix(&t->e, "--augment");
    if ((status = rt_agree_code(comm, status, EXIT_USAGE, &t->e)))
        return status;
    /* combinations of options and the launch: bad command lines too */
    if (t->cfg.batch_size < t->P)
        status = err_set(&t->e,
                         "--batch-size %d is smaller than the %d ranks: every rank needs rows",
                         t->cfg.batch_size, t->P);
    else if (t->cfg.deterministic && t->P > t->cfg.logical_shards)
        status = err_set(&t->e, "--deterministic with %d logical shards runs on at most %d ranks, "
                                "not %d (raise --logical-shards; every run to compare must use "
                                "the same value)",
                         t->cfg.logical_shards, t->cfg.logical_shards, t->P);
    if ((status = rt_agree_code(comm, status, EXIT_USAGE, &t->e)))
        return status;
    if ((status = run_dir_check(t)))
        return status;
    t->fapl = comm_h5_fapl(comm);
    if ((status = rt_agree(comm, t->fapl < 0 ? err_set(&t->e, "cannot create an MPI-IO file "
                                                               "access list for HDF5")
                                             : 0,
                           &t->e)))
        return status;
    if ((status = load_data(t)))
        return status;
    if ((status = rt_agree(comm, build(t), &t->e)))
        return status;
    status = rt_check_fits(&t->model, NULL, &t->val, t->cfg.train_path, t->val_first, &t->e);
    if (status == 0)
        status = rt_check_fits(&t->model, NULL, &t->test, t->cfg.test_path, t->test_first, &t->e);
    if ((status = rt_agree(comm, status, &t->e)))
        return status;
    /* Only now, with data and model in hand, does the run directory appear. */
    t->run_dir_is_new = t->cfg.out_dir[0] == '\0' || !path_exists(t->cfg.out_dir);
    return rt_run_dir(&t->cfg, comm, "", "checkpoints", &t->e);
}

/* ---- start: fresh or resumed --------------------------------------------------- */

/* A process killed while writing a checkpoint leaves NAME.tmp.PID behind;
 * the rename never happened, so it is garbage. Removes those in the run's
 * checkpoints directory whose writer is gone. */
static void remove_stale_temps(const char *run_dir)
{
    char dir[CONFIG_PATH_MAX + 32], path[2 * CONFIG_PATH_MAX];
    snprintf(dir, sizeof dir, "%s/checkpoints", run_dir);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *ent;
    while ((ent = readdir(d))) {
        const char *tmp = strstr(ent->d_name, ".tmp.");
        long pid = tmp ? strtol(tmp + 5, NULL, 10) : 0;
        if (pid > 0 && kill((pid_t)pid, 0) != 0) {
            snprintf(path, sizeof path, "%s/%s", dir, ent->d_name);
            unlink(path);
        }
    }
    closedir(d);
}

/* --resume auto passes over a latest checkpoint that does not read (a
 * damaged disk, a file copied in half): resuming is what checkpoints are
 * for, so it takes the next-latest one that does, and says so. */
static void warn_skipped(const char *path, const Error *why, void *arg)
{
    (void)arg;
    const size_t n = strlen(path);
    const char *reason = strncmp(why->msg, path, n) == 0 && strncmp(why->msg + n, ": ", 2) == 0
                             ? why->msg + n + 2
                             : why->msg;
    fprintf(stderr, "mnist-dist: warning: --resume auto: skipping %s, which cannot be read (%s)\n",
            path, reason);
}

/* Rank 0: which checkpoint to resume from (none: from[0] = 0) and its
 * contents, checked against this run. */
static int resume_read(Trainer *t, char *from, size_t size)
{
    const Config *c = &t->cfg;
    if (strcmp(c->resume, "auto") == 0) {
        remove_stale_temps(c->out_dir);
        if (!ckpt_find_latest(c->out_dir, from, size, warn_skipped, NULL) && !c->quiet)
            printf("resume auto: no checkpoint in %s/checkpoints, starting fresh\n", c->out_dir);
    } else {
        snprintf(from, size, "%s", c->resume);
    }
    if (!from[0])
        return 0;
    int rc = ckpt_read(from, &t->model, &t->opt, &t->from, &t->hist, &t->e);
    if (rc == 0 && t->from.seed != c->seed)
        rc = err_set(&t->e, "%s: was trained with --seed %lld; pass the same seed to resume",
                     from, (long long)t->from.seed);
    if (rc == 0 && t->from.epoch >= c->epochs && strcmp(c->resume, "auto") == 0) {
        /* a requeued job that had finished: done, not failed */
        t->nothing_to_do = 1;
        printf("%s has trained all %d epochs (%s): nothing to do; ask for more with --epochs\n",
               c->out_dir, t->from.epoch, from);
    } else if (rc == 0 && t->from.epoch >= c->epochs) {
        rc = err_set(&t->e, "%s: already has %d epochs; ask for more with --epochs", from,
                     t->from.epoch);
        t->nothing_to_do = -1; /* a bad combination of options */
    }
    return rc;
}

/* Collective: rank 0 resolves and reads the checkpoint to resume from, then
 * every rank receives its contents. Returns the agreed status. */
static int resume(Trainer *t)
{
    const Comm *comm = t->comm;
    char *from = t->resumed_from;
    from[0] = '\0';
    int status = comm->rank == 0 ? resume_read(t, from, sizeof t->resumed_from) : 0;
    comm_bcast(comm, &t->nothing_to_do, sizeof t->nothing_to_do, 0);
    if ((status = rt_agree_code(comm, status, t->nothing_to_do < 0 ? EXIT_USAGE : EXIT_FAIL,
                                &t->e)))
        return status;
    if (t->nothing_to_do)
        return 0;
    comm_bcast(comm, from, sizeof t->resumed_from, 0);
    comm_bcast(comm, &t->from, sizeof t->from, 0);
    if (!from[0])
        return 0;
    Model *m = &t->model;
    comm_bcast(comm, m->params, sizeof(float) * m->param_floats, 0);
    comm_bcast(comm, &m->in_mean, sizeof m->in_mean, 0);
    comm_bcast(comm, &m->in_scale, sizeof m->in_scale, 0);
    comm_bcast(comm, t->opt.m, sizeof(float) * 2 * t->opt.n, 0); /* m and v are consecutive */
    comm_bcast(comm, &t->opt.adam.t, sizeof t->opt.adam.t, 0);
    int count = t->hist.count;
    comm_bcast(comm, &count, sizeof count, 0);
    if (comm->rank != 0) {
        history_truncate(&t->hist, 0);
        EpochStats blank = {0};
        for (int i = 0; i < count; i++)
            if (history_push(&t->hist, &blank, &t->e))
                comm_abort(comm, EXIT_FAIL);
    }
    comm_bcast(comm, t->hist.items, sizeof(EpochStats) * (size_t)count, 0);
    /* Hyper-parameters come from this command line; state from the file. */
    t->opt.adam.lr = t->cfg.lr, t->opt.adam.beta1 = t->cfg.beta1;
    t->opt.adam.beta2 = t->cfg.beta2, t->opt.adam.eps = t->cfg.eps;
    return 0;
}

/* Collective: mean and std of the training pixels (in [0,1]) over every
 * shard, summed exactly in integers: the same bits for any rank count. */
static void standardize_inputs(Trainer *t)
{
    const size_t n = t->train.rows * dataset_pixels(&t->train);
    int64_t sums[3] = {0, 0, (int64_t)n};
    for (size_t k = 0; k < n; k++)
        sums[0] += t->train.images[k], sums[1] += (int64_t)t->train.images[k] * t->train.images[k];
    comm_allreduce_sum_i64(t->comm, sums, 3);
    const double mean = (double)sums[0] / (double)sums[2] / 255.0;
    const double var = (double)sums[1] / (double)sums[2] / (255.0 * 255.0) - mean * mean;
    t->model.in_mean = (float)mean;
    t->model.in_scale = (float)(1.0 / sqrt(var > 1e-12 ? var : 1e-12));
}

/* Collective: early stopping's state, rebuilt from the history when
 * resuming; the best weights so far live in checkpoints/best.h5. */
static void early_stop_restore(Trainer *t)
{
    for (int i = 0; i < t->hist.count; i++)
        if (t->hist.items[i].val_loss < t->best_val)
            t->best_val = t->hist.items[i].val_loss, t->best_epoch = t->hist.items[i].epoch;
    if (!t->best_params)
        return;
    const Model *m = &t->model;
    memcpy(t->best_params, m->params, sizeof(float) * m->param_floats);
    if (t->best_epoch > 0 && t->rank == 0) {
        char bp[CONFIG_PATH_MAX + 32];
        snprintf(bp, sizeof bp, "%s/checkpoints/best.h5", t->cfg.out_dir);
        Model tmp;
        CkptMeta tm;
        History th = {0};
        if (model_create(&tmp, &m->spec, m->input, m->classes, 1, &t->e) == 0) {
            if (ckpt_read(bp, &tmp, NULL, &tm, &th, &t->e) == 0)
                memcpy(t->best_params, tmp.params, sizeof(float) * m->param_floats);
            model_free(&tmp);
        }
        history_free(&th);
    }
    comm_bcast(t->comm, t->best_params, sizeof(float) * m->param_floats, 0);
}

/* The configuration as a JSON string (caller frees), with the run facts. */
static char *config_json(const Config *cfg, const Comm *comm, int threads)
{
    cJSON *o = cJSON_CreateObject();
    config_to_json(cfg, o);
    cJSON_AddNumberToObject(o, "ranks", comm->size);
    cJSON_AddNumberToObject(o, "threads_per_rank", threads);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static void print_header(const Trainer *t)
{
    const Config *c = &t->cfg;
    if (t->rank != 0 || c->quiet)
        return;
    printf("mnist-dist %s: %d rank%s x %d thread%s, layers %s (%zu parameters)\n", MNIST_VERSION,
           t->P, t->P > 1 ? "s" : "", t->threads, t->threads > 1 ? "s" : "", t->layers,
           t->model.num_params);
    printf("run directory: %s\n", c->out_dir);
    printf("data: %s (%zu train + %zu validation rows), test %s (%zu rows)\n", c->train_path,
           t->n_train, t->n_val, c->test_path, t->test_rows);
    printf("batch %d global (%d on rank 0), %zu steps/epoch, Adam lr %g", c->batch_size,
           t->plan.local_batch, t->plan.steps, (double)c->lr);
    if (c->model_spec[0])
        printf("\n");
    else
        printf(", dropout %g\n", (double)c->dropout);
    if (t->plan.dropped > 0)
        printf("%zu training rows an epoch are not reached: the global batch of %d takes %zu steps "
               "of each shard's rows, and the rest waits for the next shuffle\n",
               t->plan.dropped, c->batch_size, t->plan.steps);
    if (t->resumed_from[0] && t->from.step > 0)
        printf("resumed from %s after epoch %d and %d steps of epoch %d\n", t->resumed_from,
               t->from.epoch, t->from.step, t->from.epoch + 1);
    else if (t->resumed_from[0])
        printf("resumed from %s after epoch %d\n", t->resumed_from, t->from.epoch);
    fflush(stdout);
}

/* The settings this invocation trains with that change the result, as a
 * JSON object (the options' own names); standardisation as in force. */
static cJSON *settings_json(const Trainer *t)
{
    static const char *const keys[] = {
        "train", "test", "val-split", "batch-size", "lr", "beta1", "beta2", "eps", "dropout",
        "augment", "lr-schedule", "warmup-epochs", "lr-min", "lr-step-epochs", "lr-gamma",
        "lr-scale-with-batch", "weight-decay", "max-norm", "label-smoothing", "clip-grad-norm",
        "patience", "deterministic", "logical-shards", "shard-optimizer"};
    cJSON *all = cJSON_CreateObject(), *set = cJSON_CreateObject();
    config_to_json(&t->cfg, all);
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        cJSON *v = cJSON_DetachItemFromObject(all, keys[k]);
        if (v)
            cJSON_AddItemToObject(set, keys[k], v);
    }
    cJSON_Delete(all);
    char std[96] = "off";
    if (t->model.in_mean != 0.0f || t->model.in_scale != 1.0f)
        snprintf(std, sizeof std, "mean %.6g, scale %.6g", (double)t->model.in_mean,
                 (double)t->model.in_scale);
    cJSON_AddStringToObject(set, "standardize", std);
    cJSON_AddNumberToObject(set, "ranks", t->P);
    cJSON_AddNumberToObject(set, "threads", t->threads);
    return set;
}

/* "lr 0.001 -> 0.05, batch-size 128 -> 32" for what differs from was. */
static void settings_changes(char *buf, size_t size, const cJSON *was, const cJSON *now)
{
    size_t o = 0;
    buf[0] = '\0';
    for (const cJSON *it = now->child; it && o < size; it = it->next) {
        const cJSON *old = cJSON_GetObjectItem(was, it->string);
        if (old && cJSON_Compare(old, it, 1))
            continue;
        char *a = old ? cJSON_PrintUnformatted(old) : NULL, *b = cJSON_PrintUnformatted(it);
        o += (size_t)snprintf(buf + o, size - o, "%s%s %s -> %s", o ? ", " : "", it->string,
                              a ? a : "(unset)", b ? b : "?");
        free(a), free(b);
    }
}

/* The settings history: the resumed run's invocations, then this one; one
 * line on rank 0 says what this one changed. */
static void segments_begin(Trainer *t)
{
    cJSON *prev = t->from.segments[0] ? cJSON_Parse(t->from.segments) : NULL;
    t->segments = cJSON_IsArray(prev) ? prev : cJSON_CreateArray();
    if (!cJSON_IsArray(prev))
        cJSON_Delete(prev);
    if (t->resumed_from[0] && cJSON_GetArraySize(t->segments) == 0 && t->from.epoch > 0) {
        /* a checkpoint of an earlier release: its settings were not recorded */
        cJSON *old = cJSON_CreateObject();
        cJSON_AddNumberToObject(old, "first_epoch", 1);
        cJSON_AddNumberToObject(old, "last_epoch", t->from.epoch);
        cJSON_AddStringToObject(old, "command", "(not recorded)");
        cJSON_AddItemToArray(t->segments, old);
    }
    cJSON *set = settings_json(t);
    const cJSON *last = cJSON_GetArrayItem(t->segments, cJSON_GetArraySize(t->segments) - 1);
    const cJSON *was = last ? cJSON_GetObjectItem(last, "settings") : NULL;
    if (t->resumed_from[0] && t->rank == 0 && !t->cfg.quiet && was) {
        char changes[2048];
        settings_changes(changes, sizeof changes, was, set);
        if (changes[0])
            printf("resumed with other settings: %s\n", changes);
    }
    cJSON *seg = cJSON_CreateObject();
    cJSON_AddNumberToObject(seg, "first_epoch", t->from.epoch + 1);
    cJSON_AddNumberToObject(seg, "from_step", t->from.step);
    cJSON_AddNumberToObject(seg, "last_epoch", t->from.epoch);
    cJSON_AddStringToObject(seg, "command", t->cfg.command_line);
    cJSON_AddItemToObject(seg, "settings", set);
    cJSON_AddItemToArray(t->segments, seg);
}

/* The history as a checkpoint records it, with this invocation trained up
 * to `epochs` completed epochs. 0, or -1 if it does not fit. */
static int segments_text(const Trainer *t, int epochs, char *buf, size_t size)
{
    cJSON *cur = cJSON_GetArrayItem(t->segments, cJSON_GetArraySize(t->segments) - 1);
    if (cur)
        cJSON_ReplaceItemInObject(cur, "last_epoch", cJSON_CreateNumber(epochs));
    char *text = cJSON_PrintUnformatted(t->segments);
    const int fits = text && strlen(text) < size;
    snprintf(buf, size, "%s", fits ? text : "[]");
    free(text);
    return fits ? 0 : -1;
}

static int trainer_start(Trainer *t)
{
    const Config *c = &t->cfg;
    if (t->rank == 0)
        model_init_params(&t->model, (uint64_t)c->seed);
    comm_bcast(t->comm, t->model.params, sizeof(float) * t->model.param_floats, 0);
    t->from.seed = c->seed;
    int status;
    if (c->resume[0] && (status = resume(t)))
        return status;
    if (t->nothing_to_do)
        return 0;
    /* a run's id: drawn once, kept by every resume (tells runs apart) */
    t->run_id = t->from.run_id;
    if (!t->run_id && t->rank == 0)
        t->run_id = rng_mix64((uint64_t)(time_now_s() * 1e9) ^ ((uint64_t)getpid() << 32) ^
                              (uint64_t)c->seed) | 1;
    comm_bcast(t->comm, &t->run_id, sizeof t->run_id, 0);
    if (c->standardize && !t->resumed_from[0])
        standardize_inputs(t);
    t->loader.in_mean = t->model.in_mean, t->loader.in_scale = t->model.in_scale;
    early_stop_restore(t);
    t->cfg_json = config_json(c, t->comm, t->threads);
    const ExchangeConfig xc = {
        .kind = exchange_choose(c->deterministic, c->shard_optimizer, t->P),
        .global_batch = c->batch_size, .plan = &t->plan, .threads = t->threads};
    t->ex = exchange_create(&xc, &t->model, &t->opt, t->comm, &t->e);
    if ((status = rt_agree(t->comm, t->ex ? 0 : -1, &t->e)))
        return status;
    segments_begin(t);
    print_header(t);
    if (c->overwrite && t->rank == 0) /* the new run has started: the old one's files go */
        run_dir_clear(t);
    t->prog = (Progress){.on_tty = t->rank == 0 && progress_stdout_is_terminal(),
                         .quiet = t->rank != 0 || c->quiet, .log_every = c->log_every,
                         .epochs = c->epochs, .steps = t->plan.steps,
                         .samples_per_step = (size_t)c->batch_size};
    for (int i = 0; i < t->hist.count; i++)
        t->train_s += t->hist.items[i].seconds;
    return 0;
}

/* ---- checkpoints ------------------------------------------------------------------ */

/* Collective: compares every rank's parameter checksum with rank 0's. On a
 * mismatch (the same verdict on every rank) rank 0 prints which ranks
 * diverged and -1 is returned. */
static int check_replicas(const Trainer *t, size_t step)
{
    const Comm *comm = t->comm;
    uint64_t mine = model_checksum(&t->model);
    uint64_t *all = malloc(sizeof(uint64_t) * (size_t)comm->size);
    if (!all)
        comm_abort(comm, EXIT_FAIL);
    comm_allgather(comm, &mine, all, sizeof mine);
    char ranks[256] = "";
    int bad = 0;
    for (int r = 1; r < comm->size; r++)
        if (all[r] != all[0]) {
            bad++;
            if (strlen(ranks) < sizeof ranks - 16)
                snprintf(ranks + strlen(ranks), sizeof ranks - strlen(ranks), "%s%d",
                         bad > 1 ? ", " : "", r);
        }
    free(all);
    if (bad && comm->rank == 0)
        fprintf(stderr,
                "mnist-dist: error: replicas diverged at epoch %d, step %zu: the parameters of "
                "rank%s %s differ from rank 0's (checksums compared; no checkpoint written)\n",
                t->epoch, step, bad > 1 ? "s" : "", ranks);
    return bad ? -1 : 0;
}

/* Collective: one checkpoint of the current state. An epoch's (after
 * t->epoch epochs) or a mid-epoch stop's (after `step` more steps, with
 * the partial epoch's sums) is named in t->last_ckpt; the best weights go
 * to checkpoints/best.h5. Replicas are compared first (not for best, which
 * follows an epoch's own check), moments gathered, rank 0 writes. */
static int trainer_checkpoint(Trainer *t, CkptKind kind, size_t step)
{
    if (kind != CKPT_BEST && check_replicas(t, step))
        return EXIT_FAIL;
    exchange_gather_state(t->ex);
    int status = 0;
    if (t->rank == 0) {
        CkptMeta meta = {.epoch = t->epoch, .seed = t->cfg.seed};
        char best[CONFIG_PATH_MAX + 32], *path = t->last_ckpt;
        if (kind == CKPT_MID_EPOCH) {
            meta.epoch = t->epoch - 1, meta.step = (int)step;
            memcpy(meta.partial, t->sums, sizeof t->sums);
            meta.partial[3] = t->seconds_before + time_now_s() - t->t0;
        }
        if (kind == CKPT_BEST) {
            snprintf(best, sizeof best, "%s/checkpoints/best.h5", t->cfg.out_dir);
            path = best;
        } else if (ckpt_path(t->last_ckpt, sizeof t->last_ckpt, t->cfg.out_dir, meta.epoch,
                             meta.step)) {
            status = err_set(&t->e, "%s: path too long", t->cfg.out_dir);
        }
        meta.run_id = t->run_id;
        meta.wall_s = t->from.wall_s + time_now_s() - t->t_start;
        if (status == 0 && segments_text(t, meta.epoch, meta.segments, sizeof meta.segments))
            status = err_set(&t->e, "%s: the settings history no longer fits a checkpoint",
                             t->cfg.out_dir);
        if (status == 0)
            status = ckpt_write(path, &t->model, &t->opt, &meta, &t->hist, t->cfg_json, &t->e);
        if (status == 0 && kind == CKPT_EPOCH) {
            Superseded sup = {.epoch = t->epoch};
            ckpt_each(t->cfg.out_dir, unlink_superseded, &sup);
        }
    }
    return rt_agree(t->comm, status, &t->e);
}

/* ---- one epoch's steps ------------------------------------------------------------------ */

/* Names the first tensor holding a non-finite gradient, for the message. */
static void find_bad_gradient(const Model *m, char *buf, size_t size)
{
    for (int t = 0; t < m->num_tensors; t++) {
        const float *g = m->grads + m->tensors[t].offset;
        for (size_t k = 0; k < m->tensors[t].count; k++)
            if (!isfinite(g[k])) {
                snprintf(buf, size, "the gradient of %s", m->tensors[t].name);
                return;
            }
    }
    snprintf(buf, size, "the gradient");
}

/* Where this epoch starts: a resumed mid-epoch run takes the same shuffle
 * and skips the steps already taken; rank 0 carries the partial sums. */
static size_t epoch_begin(Trainer *t)
{
    t->sums[0] = t->sums[1] = t->sums[2] = 0;
    t->correct = 0;
    t->seconds_before = 0;
    t->stopped_after = 0;
    size_t first = 0;
    if (t->epoch == t->from.epoch + 1 && t->from.step > 0) {
        first = (size_t)t->from.step;
        if (t->rank == 0) {
            t->sums[0] = t->from.partial[0], t->correct = (int64_t)t->from.partial[1];
            t->sums[2] = t->from.partial[2];
        }
        t->seconds_before = t->from.partial[3];
    }
    loader_epoch(&t->loader, t->epoch);
    t->t0 = time_now_s();
    progress_begin(&t->prog, t->epoch, t->t0);
    return first;
}

/* The handling of a step's flags: NaN is an error for every rank. */
static int step_failed(Trainer *t, int flags, size_t s)
{
    if (!(flags & (STEP_BAD_LOSS | STEP_BAD_GRAD)))
        return 0;
    /* The flags are combined over ranks: all stop here together. */
    progress_end(&t->prog);
    char what[64];
    if (flags & STEP_BAD_LOSS)
        snprintf(what, sizeof what, "the training loss");
    else
        find_bad_gradient(&t->model, what, sizeof what);
    if (t->rank == 0)
        fprintf(stderr,
                "mnist-dist: error: %s became NaN or infinite at epoch %d, step %zu; lower --lr "
                "(the last checkpoint is intact)\n",
                what, t->epoch, s + 1);
    return EXIT_FAIL;
}

static int trainer_run_epoch(Trainer *t)
{
    const uint64_t dkey = rng_key((uint64_t)t->cfg.seed, RNG_DROPOUT, (uint64_t)t->epoch, 0);
    const size_t steps = t->plan.steps;
    Batch *b = &t->loader.batch;
    for (size_t s = epoch_begin(t); s < steps; s++) {
        const double td = time_now_s();
        loader_batch(&t->loader, s);
        t->phase.data += time_now_s() - td;
        const int64_t step = t->opt.adam.t + 1; /* the global step about to be taken */
        if (step == t->fault.nan_step && t->rank == t->P - 1)
            b->x[0] = NAN; /* test hook: poisons this rank's loss */
        if (step == t->fault.stop_step && t->rank == 0 && !stop_signal)
            stop_signal = SIGUSR1; /* test hook: as if the signal came now */
        const StepIn in = {.x = b->x, .y = b->y, .ids = b->ids, .rows = b->n,
                           .dropout_key = dkey, .stop_local = stop_signal != 0};
        StepOut out;
        exchange_step(t->ex, &in, &out);
        t->phase.forward += out.times.forward, t->phase.backward += out.times.backward;
        t->phase.allreduce += out.times.allreduce, t->phase.update += out.times.update;
        t->phase_steps++;
        t->sums[0] += out.loss_sum, t->sums[2] += b->n;
        t->correct += out.correct;
        if (step_failed(t, out.flags, s))
            return EXIT_FAIL;
        if (t->opt.adam.t == t->fault.diverge_step && t->rank == t->P - 1) {
            t->model.params[0] += 1e-3f; /* test hook: breaks replica agreement */
            model_params_changed(&t->model);
        }
        if (t->cfg.check_every > 0 && t->opt.adam.t % t->cfg.check_every == 0 &&
            check_replicas(t, s + 1)) {
            progress_end(&t->prog);
            return EXIT_FAIL;
        }
        progress_step(&t->prog, s + 1, out.loss_sum, b->n);
        if (out.flags & STEP_STOP) {
            t->stopped_after = s + 1;
            break;
        }
    }
    return 0;
}

/* ---- the end of an epoch ----------------------------------------------------------------- */

/* Collective: validation loss and accuracy of the current weights. */
static int validate(Trainer *t, EpochStats *st)
{
    Metrics vm;
    int status = metrics_init(&vm, t->model.classes, &t->e);
    if ((status = rt_agree(t->comm, status, &t->e)))
        return status;
    rt_evaluate(&t->model, &t->val, t->val_first, &t->eval, &vm, NULL, NULL);
    rt_reduce_eval(t->comm, &vm, NULL, NULL);
    Scores vs;
    metrics_scores(&vm, &vs);
    st->val_loss = t->n_val ? vs.loss : NAN;
    st->val_acc = t->n_val ? vs.accuracy : NAN;
    metrics_free(&vm);
    return 0;
}

/* Collective: early stopping after this epoch's validation. */
static int early_stop_update(Trainer *t, const EpochStats *st)
{
    if (!t->best_params || !t->n_val)
        return 0;
    /* Validation numbers are reduced, so every rank decides alike. */
    if (st->val_loss < t->best_val) {
        t->best_val = st->val_loss, t->best_epoch = t->epoch;
        memcpy(t->best_params, t->model.params, sizeof(float) * t->model.param_floats);
        return trainer_checkpoint(t, CKPT_BEST, 0);
    }
    if (t->epoch - t->best_epoch >= t->cfg.patience && t->epoch < t->cfg.epochs) {
        t->early_stop = 1;
        if (t->rank == 0 && !t->cfg.quiet)
            printf("early stop: no better validation loss for %d epochs; best epoch %d (val loss "
                   "%.4f)\n",
                   t->cfg.patience, t->best_epoch, t->best_val);
    }
    return 0;
}

/* Collective: a stop request in mid-epoch: save exactly where we are, so a
 * resumed run continues as if never interrupted. */
static int stop_mid_epoch(Trainer *t)
{
    progress_end(&t->prog);
    t->sums[1] = (double)t->correct;
    comm_allreduce_sum_f64(t->comm, t->sums, 3);
    int status = trainer_checkpoint(t, CKPT_MID_EPOCH, t->stopped_after);
    if (status)
        return status;
    /* the numbering of the file's name: epochs completed, then steps */
    if (t->rank == 0)
        printf("stopped by %s after %d epoch%s and %zu of the %zu steps of epoch %d; checkpoint "
               "%s; continue with --resume auto --out %s\n",
               signal_name(stop_signal), t->epoch - 1, t->epoch - 1 == 1 ? "" : "s",
               t->stopped_after, t->plan.steps, t->epoch, t->last_ckpt, t->cfg.out_dir);
    return EXIT_STOPPED;
}

/* Collective: after the epoch's steps: a mid-epoch stop, or the epoch's
 * statistics, validation, history, early stopping and checkpoint. *done is
 * set when the run ends here (early stop). */
static int trainer_end_epoch(Trainer *t, int *done)
{
    const Config *c = &t->cfg;
    const size_t steps = t->plan.steps;
    if (t->stopped_after && t->stopped_after < steps)
        return stop_mid_epoch(t);
    /* A stop on an epoch's last step: finish the epoch, checkpoint, stop. */
    const int stop_at_boundary = t->stopped_after == steps && t->epoch < c->epochs;
    const double seconds = t->seconds_before + time_now_s() - t->t0;
    progress_end(&t->prog);
    t->train_s += seconds;
    t->sums[1] = (double)t->correct;
    comm_allreduce_sum_f64(t->comm, t->sums, 3);
    EpochStats st = {.epoch = t->epoch, .train_loss = t->sums[0] / t->sums[2],
                     .train_acc = t->sums[1] / t->sums[2], .seconds = seconds,
                     .samples_per_s = t->sums[2] / seconds};
    int status = validate(t, &st);
    if (status == 0)
        status = rt_agree(t->comm, history_push(&t->hist, &st, &t->e), &t->e);
    if (status)
        return status;
    if (t->rank == 0 && !c->quiet) {
        printf("epoch %3d/%d  train loss %.4f acc %.4f", t->epoch, c->epochs, st.train_loss,
               st.train_acc);
        if (t->n_val)
            printf("  val loss %.4f acc %.4f", st.val_loss, st.val_acc);
        printf("  %.2f s  %.0f samples/s\n", st.seconds, st.samples_per_s);
        fflush(stdout);
    }
    if ((status = early_stop_update(t, &st)))
        return status;
    if ((c->checkpoint_every > 0 && t->epoch % c->checkpoint_every == 0) ||
        t->epoch == c->epochs || stop_at_boundary || t->early_stop)
        if ((status = trainer_checkpoint(t, CKPT_EPOCH, steps)))
            return status;
    *done = t->early_stop;
    if (stop_at_boundary) {
        if (t->rank == 0)
            printf("stopped by %s after epoch %d; checkpoint %s; continue with --resume auto "
                   "--out %s\n",
                   signal_name(stop_signal), t->epoch, t->last_ckpt, c->out_dir);
        return EXIT_STOPPED;
    }
    return 0;
}

/* ---- finish: statistics, test, report -------------------------------------------------------- */

/* Collective: min, mean and max over ranks of n values per rank into out[n][3]. */
static void over_ranks(const Comm *comm, const double *mine, int n, double (*out)[3])
{
    double *all = malloc(sizeof(double) * (size_t)n * (size_t)comm->size);
    if (!all)
        comm_abort(comm, EXIT_FAIL);
    comm_allgather(comm, mine, all, sizeof(double) * (size_t)n);
    for (int k = 0; k < n; k++) {
        double lo = INFINITY, hi = 0, sum = 0;
        for (int r = 0; r < comm->size; r++) {
            const double v = all[(size_t)r * (size_t)n + (size_t)k];
            lo = fmin(lo, v), hi = fmax(hi, v), sum += v;
        }
        out[k][0] = lo, out[k][1] = sum / comm->size, out[k][2] = hi;
    }
    free(all);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median training throughput over the history's epochs (epoch 1 included
 * only when it is the only one: it pays for warm-up). */
static double median_throughput(const History *h)
{
    double *v = h->count ? malloc(sizeof(double) * (size_t)h->count) : NULL;
    if (!v)
        return 0;
    int n = 0;
    for (int i = h->count > 1 ? 1 : 0; i < h->count; i++)
        v[n++] = h->items[i].samples_per_s;
    qsort(v, (size_t)n, sizeof v[0], cmp_double);
    const double median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    free(v);
    return median;
}

/* Rank 0: the report's augmentation examples: 6 of its rows as epochs 1..5
 * see them (NULL when augmentation is off). */
enum { AUG_ROWS = 6, AUG_PER = 5 };
static float *augment_examples(const Trainer *t, int *rows)
{
    *rows = 0;
    if (!t->loader.augment)
        return NULL;
    float *images = malloc(sizeof(float) * AUGMENT_SIDE * AUGMENT_SIDE * AUG_ROWS * AUG_PER);
    if (!images)
        return NULL;
    *rows = t->train.rows < AUG_ROWS ? (int)t->train.rows : AUG_ROWS;
    const size_t px = AUGMENT_SIDE * AUGMENT_SIDE;
    for (int r = 0; r < *rows; r++)
        for (int k = 0; k < AUG_PER; k++)
            augment_image(images + ((size_t)r * AUG_PER + (size_t)k) * px,
                          t->train.images + (size_t)r * px, &t->aug,
                          rng_key((uint64_t)t->cfg.seed, RNG_AUGMENT, (uint64_t)k + 1, 0),
                          t->plan.local_first + (size_t)r, t->loader.aug_scratch);
    return images;
}

/* The run's settings as the report words them. */
typedef struct SettingsText {
    char optimizer[256], schedule[256], regularization[256], standardization[128];
} SettingsText;

static void settings_text(const Trainer *t, SettingsText *x)
{
    const Config *c = &t->cfg;
    snprintf(x->optimizer, sizeof x->optimizer,
             "Adam lr %g, beta1 %g, beta2 %g, eps %g; global batch %d; dropout %g; seed %lld",
             (double)c->lr, (double)c->beta1, (double)c->beta2, (double)c->eps, c->batch_size,
             c->model_spec[0] ? 0.0 : (double)c->dropout, (long long)c->seed);
    const double base = c->lr * (c->lr_scale_with_batch ? c->batch_size / 128.0 : 1.0);
    size_t o = (size_t)snprintf(x->schedule, sizeof x->schedule, "%s from %g", c->lr_schedule,
                                base);
    if (strcmp(c->lr_schedule, "cosine") == 0)
        o += (size_t)snprintf(x->schedule + o, sizeof x->schedule - o, " to %g at the last step",
                              (double)c->lr_min);
    else if (strcmp(c->lr_schedule, "step") == 0)
        o += (size_t)snprintf(x->schedule + o, sizeof x->schedule - o, ", x%g every %d epochs",
                              (double)c->lr_gamma, c->lr_step_epochs);
    if (c->lr_scale_with_batch)
        o += (size_t)snprintf(x->schedule + o, sizeof x->schedule - o,
                              " (--lr scaled by batch/128)");
    if (c->warmup_epochs > 0)
        snprintf(x->schedule + o, sizeof x->schedule - o, "; linear warm-up over %g epochs",
                 (double)c->warmup_epochs);
    snprintf(x->regularization, sizeof x->regularization,
             "weight decay %g, max-norm %g, gradient clipping %g, label smoothing %g (0: off)",
             (double)c->weight_decay, (double)c->max_norm, (double)c->clip_grad_norm,
             (double)c->label_smoothing);
    if (t->model.in_mean != 0.0f || t->model.in_scale != 1.0f)
        snprintf(x->standardization, sizeof x->standardization,
                 "(x - %.6g) * %.6g%s", (double)t->model.in_mean, (double)t->model.in_scale,
                 c->standardize || !t->resumed_from[0] ? "" : " (from the checkpoint)");
    else
        snprintf(x->standardization, sizeof x->standardization, "off");
}

/* Rank 0: the report and the closing lines. */
static int write_report(Trainer *t, const Metrics *tm, const Mistake *mistakes, int n_mistakes,
                        const double (*phase_ms)[3], const double *rss_mb)
{
    const Config *c = &t->cfg;
    char report_dir[CONFIG_PATH_MAX + 16], versions[512], aug_text[256] = "";
    char tested[CONFIG_PATH_MAX + 64], last[CONFIG_PATH_MAX + 64] = "";
    snprintf(report_dir, sizeof report_dir, "%s/report", c->out_dir);
    SettingsText st;
    settings_text(t, &st);
    rt_versions(versions, sizeof versions);
    if (!t->last_ckpt[0])
        ckpt_path(t->last_ckpt, sizeof t->last_ckpt, c->out_dir, c->epochs, 0);
    /* early stopping tests the best epoch's weights: name that file */
    const int best = t->best_params && t->best_epoch > 0 && t->best_epoch != t->hist.count;
    snprintf(tested, sizeof tested, "%s", t->last_ckpt);
    if (best) {
        snprintf(tested, sizeof tested, "%s/checkpoints/best.h5", c->out_dir);
        snprintf(last, sizeof last, "%s", t->last_ckpt);
    }
    int aug_rows = 0;
    float *aug_images = augment_examples(t, &aug_rows);
    if (t->loader.augment)
        augment_format(aug_text, sizeof aug_text, &t->aug);
    char *segments = cJSON_PrintUnformatted(t->segments);
    const double wall = time_now_s() - t->t_start;
    const RunInfo run = {
        .command = "train", .train_path = c->train_path, .test_path = c->test_path,
        .checkpoint = tested, .checkpoint_last = last, .layers = t->layers, .model = &t->model,
        .optimizer = st.optimizer, .schedule = st.schedule, .regularization = st.regularization,
        .standardization = st.standardization, .segments_json = segments, .versions = versions,
        .ranks = t->P, .threads = t->threads, .epochs_run = t->hist.count,
        .train_rows = (int64_t)t->n_train, .val_rows = (int64_t)t->n_val,
        .test_rows = (int64_t)t->test_rows, .num_params = (int64_t)t->model.num_params,
        .rows_not_reached = (int64_t)t->plan.dropped, .wall_s = wall,
        .wall_total_s = t->from.wall_s + wall,
        .invocations = cJSON_GetArraySize(t->segments), .train_s = t->train_s,
        .samples_per_s = median_throughput(&t->hist), .config_json = t->cfg_json,
        .mistakes = mistakes, .n_mistakes = n_mistakes,
        .phase_ms = t->phase_steps ? &phase_ms[0][0] : NULL, .rss_mb = rss_mb,
        .best_epoch = t->best_params ? t->best_epoch : 0, .augment = aug_text,
        .aug_originals = t->train.images, .aug_images = aug_images, .aug_rows = aug_rows,
        .aug_per = AUG_PER};
    int status = report_write(report_dir, tm, &t->hist, &run, &t->e);
    free(aug_images);
    free(segments);
    if (status == 0) {
        Scores ts;
        metrics_scores(tm, &ts);
        printf("test accuracy %.2f%% (%lld/%lld), loss %.4f\n", 100 * ts.accuracy,
               (long long)ts.correct, (long long)ts.count, ts.loss);
        printf("report: %s/report.html (also report.md, metrics.json)\n", report_dir);
        if (best)
            printf("checkpoint: %s (epoch %d, the weights tested; the last epoch's: %s)\n",
                   tested, t->best_epoch, last);
        else
            printf("checkpoint: %s\n", tested);
        fflush(stdout);
    }
    return status;
}

static int trainer_finish(Trainer *t)
{
    /* Back from node-shared memory to this rank's own arena. */
    exchange_free(t->ex);
    t->ex = NULL;
    /* Per-phase milliseconds per step and peak resident memory per rank. */
    double phase_ms[STEP_PHASES][3], rss[1][3];
    const double steps = (double)(t->phase_steps ? t->phase_steps : 1);
    const double mine[STEP_PHASES] = {1e3 * t->phase.data / steps, 1e3 * t->phase.forward / steps,
                                      1e3 * t->phase.backward / steps,
                                      1e3 * t->phase.allreduce / steps,
                                      1e3 * t->phase.update / steps};
    over_ranks(t->comm, mine, STEP_PHASES, phase_ms);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    over_ranks(t->comm, &(double){(double)ru.ru_maxrss / 1024.0}, 1, rss);
    /* Final evaluation on the test set, sharded, reduced to rank 0. */
    if (t->best_params && t->best_epoch > 0) {
        memcpy(t->model.params, t->best_params, sizeof(float) * t->model.param_floats);
        model_params_changed(&t->model);
        if (t->rank == 0 && !t->cfg.quiet)
            printf("evaluating the best epoch's weights (epoch %d, val loss %.4f)\n",
                   t->best_epoch, t->best_val);
    }
    Metrics tm;
    Mistake *mistakes = malloc(sizeof(Mistake) * REPORT_MISTAKES);
    int n_mistakes = 0, status = mistakes ? metrics_init(&tm, t->model.classes, &t->e)
                                          : err_set(&t->e, "out of memory");
    if ((status = rt_agree(t->comm, status, &t->e))) {
        free(mistakes);
        return status;
    }
    rt_evaluate(&t->model, &t->test, t->test_first, &t->eval, &tm, mistakes, &n_mistakes);
    rt_reduce_eval(t->comm, &tm, mistakes, &n_mistakes);
    if (t->rank == 0)
        status = write_report(t, &tm, mistakes, n_mistakes, phase_ms, rss[0]);
    metrics_free(&tm);
    free(mistakes);
    return rt_agree(t->comm, status, &t->e);
}

/* ---- free ------------------------------------------------------------------------------------ */

static int trainer_free(Trainer *t, int status)
{
    /* From here a signal (mpirun ending the other ranks of a failed job)
     * has no step to stop after: do not promise one. */
    announce_stop = 0;
    /* A run refused before it wrote anything (e.g. a bad --resume file)
     * leaves no empty directories behind. */
    if (status && status != EXIT_STOPPED && t->rank == 0 && t->run_dir_is_new &&
        t->cfg.out_dir[0]) {
        char ck[CONFIG_PATH_MAX + 32];
        snprintf(ck, sizeof ck, "%s/checkpoints", t->cfg.out_dir);
        rmdir(ck); /* both fail harmlessly when not empty */
        rmdir(t->cfg.out_dir);
    }
    exchange_free(t->ex); /* collective: every rank arrives here with the same status */
    if (t->fapl >= 0)
        H5Pclose(t->fapl);
    free(t->cfg_json);
    cJSON_Delete(t->segments);
    free(t->best_params);
    history_free(&t->hist);
    loader_free(&t->loader);
    evalbuf_free(&t->eval);
    optim_free(&t->opt);
    model_free(&t->model);
    dataset_free(&t->train);
    dataset_free(&t->val);
    dataset_free(&t->test);
    return status;
}

int train_run(const Config *cfg, const Comm *comm)
{
    Trainer *t = malloc(sizeof *t);
    if (!t) {
        fprintf(stderr, "mnist-dist: error: out of memory\n");
        return comm_agree(comm, EXIT_FAIL);
    }
    int status = trainer_init(t, cfg, comm);
    if (status == 0)
        status = trainer_start(t);
    int done = t->nothing_to_do; /* --resume auto of a finished run */
    for (t->epoch = t->from.epoch + 1; status == 0 && !done && t->epoch <= t->cfg.epochs;
         t->epoch++) {
        status = trainer_run_epoch(t);
        if (status == 0)
            status = trainer_end_epoch(t, &done);
    }
    if (status == 0 && !t->nothing_to_do)
        status = trainer_finish(t);
    status = trainer_free(t, status);
    free(t);
    return status;
}

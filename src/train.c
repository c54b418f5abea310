/* train: `mnist-dist train`, the epoch/step loop. Sequences data loading,
 * the data-parallel step (local gradient, one allreduce, identical Adam step
 * on every rank), evaluation, checkpoints, progress and the report. Every
 * decision all ranks must share goes through rt_agree(); kernel math lives
 * in ops/mlp. */
#define _GNU_SOURCE
#include "mnist/train.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "mnist/augment.h"
#include "mnist/ckpt.h"
#include "mnist/data.h"
#include "mnist/det.h"
#include "mnist/h5data.h"
#include "mnist/history.h"
#include "mnist/report.h"
#include "mnist/rng.h"
#include "mnist/runtime.h"

size_t train_update(Mlp *m, Adam *opt)
{
    /* Every rank holds the same summed gradient, so each rule below makes the
     * same decision everywhere. */
    if (m->clip_norm > 0.0f)
        optim_clip_norm(m->grads, m->param_floats, m->clip_norm);
    if (m->weight_decay > 0.0f)
        for (int l = 0; l < m->num_layers; l++)
            optim_decay(m->W[l], (size_t)m->sizes[l] * m->sizes[l + 1], opt->lr, m->weight_decay);
    const size_t bad = adam_step(opt, m->params, m->adam_m, m->adam_v, m->grads, m->param_floats);
    if (m->max_norm > 0.0f)
        mlp_max_norm(m, m->max_norm);
    return bad;
}

/* The update rules on this rank's segment [lo, lo + n) of the summed
 * gradient m->grads: clip the global gradient norm (the squares summed over
 * ranks), decay the part of each W inside the segment (AdamW), one Adam
 * step. Returns the count of non-finite gradient elements. */
static size_t segment_update(Mlp *m, Adam *opt, const Comm *comm, size_t lo, size_t n)
{
    float *g = m->grads;
    if (m->clip_norm > 0.0f) {
        double sq = 0;
        for (size_t i = lo; i < lo + n; i++)
            sq += (double)g[i] * g[i];
        comm_allreduce_sum_f64(comm, &sq, 1);
        const double norm = sqrt(sq);
        if (norm > m->clip_norm) {
            const float f = (float)(m->clip_norm / norm);
            for (size_t i = lo; i < lo + n; i++)
                g[i] *= f;
        }
    }
    if (m->weight_decay > 0.0f)
        for (int l = 0; l < m->num_layers; l++) {
            const size_t a = mlp_tensor_offset(m, l, 0), b = a + mlp_tensor_size(m, l, 0);
            const size_t from = a > lo ? a : lo, to = b < lo + n ? b : lo + n;
            if (from < to)
                optim_decay(m->params + from, to - from, opt->lr, m->weight_decay);
        }
    return adam_step(opt, m->params + lo, m->adam_m + lo, m->adam_v + lo, g + lo, n);
}

/* Adds one sharded step's phases to *times (may be NULL): t0..t2 forward and
 * backward, t2..t3 and t4..now the exchange, t3..t4 the update. */
static void add_times(StepTimes *times, double t0, double t1, double t2, double t3, double t4)
{
    if (times) {
        times->forward += t1 - t0, times->backward += t2 - t1;
        times->allreduce += (t3 - t2) + (time_now_s() - t4), times->update += t4 - t3;
    }
}

/* The sharded tail of train_step (see train.h): reduce-scatter, the rules
 * and Adam on this rank's segment, flags by a small allreduce, allgather. */
static int sharded_update(Mlp *m, Adam *opt, const Comm *comm, const CommSegments *shard,
                          int stop_local, double loss, StepTimes *times, double t0, double t1,
                          double t2)
{
    const size_t lo = (size_t)shard->displs[comm->rank], n = (size_t)shard->counts[comm->rank];
    comm_reduce_scatter_f32(comm, m->grads, shard);
    const double t3 = time_now_s();
    const size_t bad = segment_update(m, opt, comm, lo, n);
    int flags[3] = {stop_local != 0, !isfinite(loss), bad > 0};
    comm_allreduce_max_int(comm, flags, 3);
    const double t4 = time_now_s();
    comm_allgather_f32(comm, m->params, shard);
    if (m->max_norm > 0.0f)
        mlp_max_norm(m, m->max_norm);
    add_times(times, t0, t1, t2, t3, t4);
    return (flags[0] ? STEP_STOP : 0) | (flags[1] ? STEP_BAD_LOSS : 0) |
           (flags[2] ? STEP_BAD_GRAD : 0);
}

/* The node-shared tail of train_step: gradients summed segment by segment
 * straight out of every rank's shared buffer, Adam on this rank's segment of
 * the one shared parameter copy, flags through the shared control slots. */
static int shared_update(Mlp *m, Adam *opt, const Comm *comm, const CommShared *sh,
                         const CommSegments *shard, int stop_local, double loss,
                         StepTimes *times, double t0, double t1, double t2)
{
    const int me = sh->local_rank, P = sh->local_size;
    const size_t lo = (size_t)shard->displs[me], n = (size_t)shard->counts[me];
    m->ctrl[0] = stop_local ? 1.0f : 0.0f;
    m->ctrl[1] = isfinite(loss) ? 0.0f : 1.0f;
    m->ctrl[2] = 0.0f;
    comm_shared_sync(sh); /* every rank's gradient is written */
    float *own = sh->grads[me];
    /* ranks 0..P-1 in that order: the same sum whichever rank computes it;
     * in blocks, so each rank's contribution is one vectorised sweep */
    enum { BLOCK = 2048 };
    for (size_t b0 = lo; b0 < lo + n; b0 += BLOCK) {
        const size_t len = lo + n - b0 < BLOCK ? lo + n - b0 : BLOCK;
        float acc[BLOCK];
        memcpy(acc, sh->grads[0] + b0, sizeof(float) * len);
        for (int k = 1; k < P; k++) {
            const float *g = sh->grads[k] + b0;
            for (size_t j = 0; j < len; j++)
                acc[j] += g[j];
        }
        memcpy(own + b0, acc, sizeof(float) * len);
    }
    int flags = 0;
    for (int k = 0; k < P; k++) {
        const float *ctrl = sh->grads[k] + m->param_floats;
        flags |= (ctrl[0] > 0.0f ? STEP_STOP : 0) | (ctrl[1] > 0.0f ? STEP_BAD_LOSS : 0);
    }
    const double t3 = time_now_s();
    const size_t bad = segment_update(m, opt, comm, lo, n); /* m->grads is own */
    m->ctrl[2] = bad ? 1.0f : 0.0f;
    const double t4 = time_now_s();
    comm_shared_sync(sh); /* every segment of the parameters is updated */
    for (int k = 0; k < P; k++)
        if (sh->grads[k][m->param_floats + 2] > 0.0f)
            flags |= STEP_BAD_GRAD;
    if (m->max_norm > 0.0f) {
        /* one writer for the shared copy, then everyone reads it */
        if (me == 0)
            mlp_max_norm(m, m->max_norm);
        comm_shared_sync(sh);
    }
    add_times(times, t0, t1, t2, t3, t4);
    return flags;
}

int train_segments_init(const Comm *comm, const Mlp *m, CommSegments *s)
{
    const int P = comm->size;
    size_t *counts = malloc(sizeof(size_t) * (size_t)P);
    if (!counts)
        return -1;
    for (int r = 0; r < P; r++) {
        size_t first, blocks;
        data_shard_range(m->param_floats / 16, P, r, &first, &blocks);
        counts[r] = blocks * 16;
    }
    const int rc = comm_segments_init(comm, s, counts);
    free(counts);
    return rc;
}

int train_shared_enter(const Comm *comm, Mlp *m, CommShared *sh)
{
    const int rc = comm_shared_init(comm, sh, m->param_floats + MLP_CTRL_FLOATS, m->param_floats);
    if (rc != 0)
        return rc;
    if (sh->local_rank == 0)
        memcpy(sh->params, m->params, sizeof(float) * m->param_floats);
    comm_shared_sync(sh);
    mlp_use_buffers(m, sh->params, sh->grads[sh->local_rank]);
    return 0;
}

void train_shared_leave(Mlp *m, const CommShared *sh)
{
    if (m->params == m->arena)
        return;
    memcpy(m->arena, m->params, sizeof(float) * m->param_floats);
    comm_shared_sync(sh); /* nobody frees the window while another rank copies */
    mlp_use_buffers(m, NULL, NULL);
}

void train_sync_moments(const Comm *comm, Mlp *m, const CommSegments *shard)
{
    if (!shard || comm->size == 1)
        return;
    comm_allgather_f32(comm, m->adam_m, shard);
    comm_allgather_f32(comm, m->adam_v, shard);
}

int train_step(Mlp *m, Adam *opt, const Comm *comm, const float *x, const uint8_t *y,
               const uint64_t *sample_ids, int b_local, int global_batch, uint64_t dropout_key,
               int stop_local, int *pred, double *loss_sum, int64_t *correct, StepTimes *times,
               const StepComm *sc)
{
    const double t0 = time_now_s();
    mlp_zero_grads(m);
    mlp_forward(m, x, b_local, 1, dropout_key, sample_ids);
    const double t1 = time_now_s();
    const double loss = mlp_backward(m, x, y, b_local, 1.0f / (float)global_batch, pred);
    const double t2 = time_now_s();
    *loss_sum += loss;
    for (int i = 0; i < b_local; i++)
        *correct += pred[i] == y[i];
    if (sc && sc->shared && comm->size > 1)
        return shared_update(m, opt, comm, sc->shared, sc->shard, stop_local, loss, times, t0, t1,
                             t2);
    if (sc && sc->shard && comm->size > 1)
        return sharded_update(m, opt, comm, sc->shard, stop_local, loss, times, t0, t1, t2);
    /* The flags ride in the control slots behind the gradients: one message. */
    memset(m->ctrl, 0, sizeof(float) * MLP_CTRL_FLOATS);
    m->ctrl[0] = stop_local ? 1.0f : 0.0f;
    m->ctrl[1] = isfinite(loss) ? 0.0f : 1.0f;
    /* Scaled by the global batch, so the sum over ranks is the true mean. */
    comm_allreduce_sum_f32(comm, m->grads, m->param_floats + MLP_CTRL_FLOATS);
    const double t3 = time_now_s();
    const size_t bad = train_update(m, opt);
    if (times) {
        times->forward += t1 - t0, times->backward += t2 - t1, times->allreduce += t3 - t2;
        times->update += time_now_s() - t3;
    }
    return (m->ctrl[0] > 0.0f ? STEP_STOP : 0) | (m->ctrl[1] > 0.0f ? STEP_BAD_LOSS : 0) |
           (bad ? STEP_BAD_GRAD : 0);
}

/* Set by SIGUSR1/SIGTERM (what SLURM sends before a time limit or on
 * preemption): finish the step, checkpoint, exit EXIT_STOPPED. A second
 * signal terminates at once. */
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
    if (stop_signal) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    stop_signal = sig;
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
}

/* Test hook, for the fault tests only: MNIST_DIST_FAULT="nan@S" makes the
 * last rank's logits NaN at global step S; "diverge@S" perturbs one of the
 * last rank's parameters after step S. Unset in normal use. */
typedef struct Fault {
    int64_t nan_step, diverge_step;
} Fault;

static Fault fault_from_env(void)
{
    Fault f = {-1, -1};
    const char *v = getenv("MNIST_DIST_FAULT");
    long long step;
    if (v && sscanf(v, "nan@%lld", &step) == 1)
        f.nan_step = step;
    if (v && sscanf(v, "diverge@%lld", &step) == 1)
        f.diverge_step = step;
    return f;
}

/* Collective: compares every rank's parameter checksum with rank 0's. On a
 * mismatch (the same verdict on every rank) rank 0 prints which ranks
 * diverged and -1 is returned. */
static int check_replicas(const Comm *comm, const Mlp *m, int epoch, size_t step)
{
    uint64_t mine = mlp_checksum(m);
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
                epoch, step, bad > 1 ? "s" : "", ranks);
    return bad ? -1 : 0;
}

/* Names the first tensor holding a non-finite gradient, for the message. */
static void find_bad_gradient(const Mlp *m, char *buf, size_t size)
{
    for (int l = 0; l < m->num_layers; l++)
        for (int which = 0; which < 2; which++) {
            const float *g = which ? m->db[l] : m->dW[l];
            size_t n = mlp_tensor_size(m, l, which);
            for (size_t k = 0; k < n; k++)
                if (!isfinite(g[k])) {
                    snprintf(buf, size, "the gradient of dense%d/%s", l, which ? "b" : "W");
                    return;
                }
        }
    snprintf(buf, size, "the gradient");
}

/* Fisher-Yates over idx[0..n) from a counter-based stream. */
static void shuffle(size_t *idx, size_t n, uint64_t key)
{
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)rng_below(key, i, (uint32_t)i);
        size_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}

/* Rank 0's view of progress within an epoch: a bar redrawn in place on a
 * terminal (at most 10 times a second), plain lines every log_every steps
 * otherwise, nothing when quiet. Uses rank 0's own running loss: showing it
 * needs no communication. */
typedef struct Progress {
    int on_tty, quiet, log_every, epoch, epochs;
    size_t steps, samples_per_step;
    double t0, last_draw, loss, count; /* running sums since the epoch start */
    int drawn;
} Progress;

static void progress_step(Progress *p, size_t step, double loss_sum, double rows)
{
    if (p->quiet)
        return;
    p->loss += loss_sum, p->count += rows;
    const double now = time_now_s(), elapsed = now - p->t0;
    const double rate = elapsed > 0 ? (double)(step * p->samples_per_step) / elapsed : 0;
    const double eta = rate > 0 ? (double)((p->steps - step) * p->samples_per_step) / rate : 0;
    if (p->log_every > 0 && step % (size_t)p->log_every == 0) {
        if (p->drawn)
            fputs("\r\033[K", stdout);
        printf("epoch %d step %zu/%zu  loss %.4f  %.0f samples/s  eta %.1f s\n", p->epoch, step,
               p->steps, p->loss / p->count, rate, eta);
        p->drawn = 0;
        fflush(stdout);
    }
    if (p->on_tty && (now - p->last_draw > 0.1 || step == p->steps)) {
        const int width = 30, filled = (int)((double)width * (double)step / (double)p->steps);
        char bar[64];
        for (int i = 0; i < width; i++)
            bar[i] = i < filled ? '#' : '.';
        bar[width] = '\0';
        printf("\r\033[Kepoch %d/%d [%s] %zu/%zu  loss %.4f  %.0f samples/s  eta %.0f s",
               p->epoch, p->epochs, bar, step, p->steps, p->loss / p->count, rate, eta);
        fflush(stdout);
        p->last_draw = now;
        p->drawn = 1;
    }
}

/* 1 when stdout reaches a person's terminal. Under mpirun a rank's stdout is
 * a pseudo-terminal that Open MPI forwards even into a log file, so there
 * the launcher's own stdout (our parent's fd 1) decides. */
static int stdout_is_terminal(void)
{
    if (!isatty(STDOUT_FILENO))
        return 0;
    const char *term = getenv("TERM");
    if (term && strcmp(term, "dumb") == 0)
        return 0;
    if (!getenv("OMPI_COMM_WORLD_SIZE"))
        return 1;
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/fd/1", (long)getppid());
    int fd = open(path, O_WRONLY | O_NOCTTY);
    if (fd < 0)
        return 0;
    int tty = isatty(fd);
    close(fd);
    return tty;
}

/* Clears the bar so the epoch line replaces it. */
static void progress_end(Progress *p)
{
    if (p->drawn)
        fputs("\r\033[K", stdout);
    p->drawn = 0;
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

/* Rank 0 resolves and reads the checkpoint to resume from, then every rank
 * receives its contents; meta says where training stopped (epoch 0, step 0:
 * start fresh). Returns the agreed status. */
static int resume(const Config *cfg, const Comm *comm, Mlp *m, Adam *opt, History *hist,
                  char *from, size_t from_size, CkptMeta *meta, Error *e)
{
    int rc = 0;
    from[0] = '\0';
    memset(meta, 0, sizeof *meta);
    if (comm->rank == 0) {
        if (strcmp(cfg->resume, "auto") == 0) {
            remove_stale_temps(cfg->out_dir);
            if (!ckpt_find_latest(cfg->out_dir, from, from_size) && !cfg->quiet)
                printf("resume auto: no checkpoint in %s/checkpoints, starting fresh\n",
                       cfg->out_dir);
        } else {
            snprintf(from, from_size, "%s", cfg->resume);
        }
        if (from[0]) {
            rc = ckpt_read(from, m, opt, meta, hist, e);
            if (rc == 0 && meta->seed != cfg->seed)
                rc = err_set(e, "%s: was trained with --seed %lld; pass the same seed to resume",
                             from, (long long)meta->seed);
            if (rc == 0 && meta->epoch >= cfg->epochs)
                rc = err_set(e, "%s: already has %d epochs; ask for more with --epochs", from,
                             meta->epoch);
        }
    }
    int status = rt_agree(comm, rc, e);
    if (status)
        return status;
    comm_bcast(comm, from, from_size, 0);
    comm_bcast(comm, meta, sizeof *meta, 0);
    if (!from[0])
        return 0;
    /* params | grads | ctrl | adam_m | adam_v: the moments are consecutive. */
    comm_bcast(comm, m->params, sizeof(float) * m->param_floats, 0);
    comm_bcast(comm, &m->in_mean, sizeof m->in_mean, 0);
    comm_bcast(comm, &m->in_scale, sizeof m->in_scale, 0);
    comm_bcast(comm, m->adam_m, sizeof(float) * m->param_floats, 0);
    comm_bcast(comm, m->adam_v, sizeof(float) * m->param_floats, 0);
    comm_bcast(comm, &opt->t, sizeof opt->t, 0);
    int count = hist->count;
    comm_bcast(comm, &count, sizeof count, 0);
    if (comm->rank != 0) {
        history_truncate(hist, 0);
        EpochStats blank = {0};
        for (int i = 0; i < count; i++)
            if (history_push(hist, &blank, e))
                comm_abort(comm, EXIT_FAIL);
    }
    comm_bcast(comm, hist->items, sizeof(EpochStats) * (size_t)count, 0);
    return 0;
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

int train_run(const Config *cfg_in, const Comm *comm)
{
    const double t_start = time_now_s();
    Config cfg = *cfg_in;
    const int rank = comm->rank, P = comm->size;
    Error e = {{0}};
    int status, run_dir_is_new = 0;
    Dataset train = {0}, val = {0}, test = {0};
    Mlp model = {0};
    Batch buf = {0};
    size_t *order = NULL, *step_rows = NULL;
    DetWork det = {0, 0, NULL, NULL, NULL, NULL, NULL, NULL};
    CommSegments segments = {NULL, NULL};
    const CommSegments *shard = NULL;
    CommShared shared = {NULL, NULL, 0, 0, NULL, NULL};
    StepComm step_comm = {NULL, NULL};
    float *aug_scratch = NULL, *best_params = NULL;
    const uint8_t **aug_src = NULL;
    History hist = {0};
    char *cfg_json = NULL;
    char resumed_from[CONFIG_PATH_MAX] = "", last_ckpt[CONFIG_PATH_MAX + 64] = "";
    Mistake mistakes[REPORT_MISTAKES];
    int n_mistakes = 0;

    install_stop_handlers(); /* before loading: a signal must never kill us silently */
    const Fault fault = fault_from_env();
    const int threads = rt_threads(&cfg, comm);
    int sizes[MLP_MAX_LAYERS + 1];
    int L = mlp_parse_layers(cfg.layers, MNIST_PIXELS, MNIST_CLASSES, sizes, &e);
    status = L < 0 ? -1 : 0;
    AugmentParams aug;
    if (status == 0 && augment_parse(&aug, cfg.augment, &e))
        status = err_prefix(&e, "--augment");
    if (status == 0 && cfg.batch_size < P)
        status = err_set(&e, "--batch-size %d is smaller than the %d ranks: every rank needs rows",
                         cfg.batch_size, P);
    if ((status = rt_agree(comm, status, &e)))
        return status;

    /* Data: each rank reads only its own rows of each file. */
    size_t train_file_rows = 0, test_rows = 0, dummy, shard_first = 0, val_first = 0, test_first = 0;
    hid_t fapl = comm_h5_fapl(comm);
    if (fapl < 0)
        status = err_set(&e, "cannot create an MPI-IO file access list for HDF5");
    if ((status = rt_agree(comm, status, &e)))
        return status;
    {
        H5Data h;
        status = h5data_open(&h, cfg.train_path, fapl, &e);
        if (status == 0) {
            train_file_rows = h.rows;
            h5data_close(&h);
        }
    }
    if ((status = rt_agree(comm, status, &e)))
        goto done;
    if ((size_t)cfg.val_split >= train_file_rows)
        status = err_set(&e, "--val-split %d leaves no training rows (%s has %zu)", cfg.val_split,
                         cfg.train_path, train_file_rows);
    if ((status = rt_agree(comm, status, &e)))
        goto done;
    const size_t n_train = train_file_rows - (size_t)cfg.val_split, n_val = (size_t)cfg.val_split;
    /* --deterministic: rows follow logical shards, whatever the rank count */
    DetPlan plan;
    memset(&plan, 0, sizeof plan);
    if (cfg.deterministic) {
        status = det_plan(&plan, n_train, cfg.batch_size, cfg.logical_shards, rank, P, &e);
        if ((status = rt_agree(comm, status, &e)))
            goto done;
        shard_first = plan.local_first;
        status = rt_load_rows(cfg.train_path, fapl, plan.local_first, plan.local_rows, 1, &dummy,
                              &train, &e);
    } else {
        status = rt_load_shard(cfg.train_path, fapl, comm, 0, n_train, 1, &dummy, &shard_first,
                               &train, &e);
    }
    if ((status = rt_agree(comm, status, &e)))
        goto done;
    status = rt_load_shard(cfg.train_path, fapl, comm, n_train, n_val, 1, &dummy, &val_first, &val, &e);
    if ((status = rt_agree(comm, status, &e)))
        goto done;
    status = rt_load_shard(cfg.test_path, fapl, comm, 0, SIZE_MAX, 1, &test_rows, &test_first, &test, &e);
    if ((status = rt_agree(comm, status, &e)))
        goto done;

    /* Every rank computes every shard's size, so all agree on the step count
     * without communicating: the smallest shard decides. */
    const size_t shard_rows = train.rows;
    size_t b_first, b_size;
    data_shard_range((size_t)cfg.batch_size, P, rank, &b_first, &b_size);
    const int b_local = cfg.deterministic ? plan.local_batch : (int)b_size;
    size_t steps = cfg.deterministic ? plan.steps : SIZE_MAX;
    for (int r = 0; r < P && !cfg.deterministic; r++) {
        size_t f, n, bf, bn;
        data_shard_range(n_train, P, r, &f, &n);
        data_shard_range((size_t)cfg.batch_size, P, r, &bf, &bn);
        if (n / bn < steps)
            steps = n / bn;
    }
    if (steps == 0)
        status = err_set(&e, "%zu training rows over %d rank%s are too few for --batch-size %d",
                         n_train, P, P > 1 ? "s" : "", cfg.batch_size);
    const int max_batch = b_local > RT_EVAL_BATCH ? b_local : RT_EVAL_BATCH;
    if (status == 0)
        status = mlp_create(&model, sizes, L, cfg.dropout, max_batch, &e);
    if (status == 0)
        status = batch_alloc(&buf, max_batch, &e);
    if (status == 0 && (!(order = malloc(sizeof(size_t) * (shard_rows ? shard_rows : 1))) ||
                        !(step_rows = malloc(sizeof(size_t) * (size_t)b_local))))
        status = err_set(&e, "out of memory");
#ifdef _OPENMP
    const int aug_slots = omp_get_max_threads();
#else
    const int aug_slots = 1;
#endif
    if (status == 0 && augment_enabled(&aug) &&
        (!(aug_scratch = malloc(sizeof(float) * augment_scratch_floats() * (size_t)aug_slots)) ||
         !(aug_src = malloc(sizeof(*aug_src) * (size_t)b_local))))
        status = err_set(&e, "out of memory for augmentation buffers");
    if (status == 0 && cfg.patience > 0 &&
        !(best_params = malloc(sizeof(float) * model.param_floats)))
        status = err_set(&e, "out of memory");
    if ((status = rt_agree(comm, status, &e)))
        goto done;

    /* Only now, with data and model in hand, does the run directory appear. */
    run_dir_is_new = cfg.out_dir[0] == '\0' || !path_exists(cfg.out_dir);
    if ((status = rt_run_dir(&cfg, comm, "", "checkpoints", &e)))
        goto done;

    Adam opt = {cfg.lr, cfg.beta1, cfg.beta2, cfg.eps, 0};
    if (rank == 0)
        mlp_init_params(&model, (uint64_t)cfg.seed);
    comm_bcast(comm, model.params, sizeof(float) * model.param_floats, 0);
    CkptMeta from = {0, cfg.seed, 0, {0, 0, 0, 0}};
    if (cfg.resume[0]) {
        if ((status = resume(&cfg, comm, &model, &opt, &hist, resumed_from, sizeof resumed_from,
                             &from, &e)))
            goto done;
        /* Hyper-parameters come from this command line; state from the file. */
        opt.lr = cfg.lr, opt.beta1 = cfg.beta1, opt.beta2 = cfg.beta2, opt.eps = cfg.eps;
    }
    model.label_smoothing = cfg.label_smoothing;
    model.weight_decay = cfg.weight_decay;
    model.clip_norm = cfg.clip_grad_norm;
    model.max_norm = cfg.max_norm;
    if (cfg.standardize && !resumed_from[0]) {
        /* mean and std of the training pixels (in [0,1]) over every shard,
         * summed exactly in integers: the same bits for any rank count */
        int64_t sums[3] = {0, 0, (int64_t)train.rows * MNIST_PIXELS};
        for (size_t k = 0; k < train.rows * MNIST_PIXELS; k++)
            sums[0] += train.images[k], sums[1] += (int64_t)train.images[k] * train.images[k];
        comm_allreduce_sum_i64(comm, sums, 3);
        const double mean = (double)sums[0] / (double)sums[2] / 255.0;
        const double var = (double)sums[1] / (double)sums[2] / (255.0 * 255.0) - mean * mean;
        model.in_mean = (float)mean;
        model.in_scale = (float)(1.0 / sqrt(var > 1e-12 ? var : 1e-12));
    }
    const double base_lr = cfg.lr * (cfg.lr_scale_with_batch ? cfg.batch_size / 128.0 : 1.0);
    const Schedule sched = {
        strcmp(cfg.lr_schedule, "cosine") == 0 ? SCHED_COSINE
        : strcmp(cfg.lr_schedule, "step") == 0 ? SCHED_STEP
                                                : SCHED_CONSTANT,
        base_lr,
        (int64_t)llround(cfg.warmup_epochs * (double)steps),
        (int64_t)cfg.epochs * (int64_t)steps,
        (int64_t)cfg.lr_step_epochs * (int64_t)steps,
        cfg.lr_gamma,
        cfg.lr_min};
    /* Early stopping state, rebuilt from the history when resuming. */
    double best_val = INFINITY;
    int best_epoch = 0;
    for (int i = 0; i < hist.count; i++)
        if (hist.items[i].val_loss < best_val)
            best_val = hist.items[i].val_loss, best_epoch = hist.items[i].epoch;
    if (best_params) {
        memcpy(best_params, model.params, sizeof(float) * model.param_floats);
        if (best_epoch > 0 && rank == 0) {
            /* the best weights so far live in checkpoints/best.h5 */
            char bp[CONFIG_PATH_MAX + 32];
            snprintf(bp, sizeof bp, "%s/checkpoints/best.h5", cfg.out_dir);
            Mlp tmp;
            Adam ta;
            CkptMeta tm_;
            History th = {0};
            if (mlp_create(&tmp, model.sizes, model.num_layers, 0, 1, &e) == 0) {
                if (ckpt_read(bp, &tmp, &ta, &tm_, &th, &e) == 0)
                    memcpy(best_params, tmp.params, sizeof(float) * model.param_floats);
                mlp_free(&tmp);
            }
            history_free(&th);
        }
        comm_bcast(comm, best_params, sizeof(float) * model.param_floats, 0);
    }
    cfg_json = config_json(&cfg, comm, threads);
    if (cfg.deterministic) {
        status = det_work_create(&det, &model, &plan, threads, &e);
        if ((status = rt_agree(comm, status, &e)))
            goto done;
    } else if (P > 1 && cfg.shard_optimizer) {
        /* one 64-byte-aligned segment of the parameter vector per rank */
        status = train_segments_init(comm, &model, &segments)
                     ? err_set(&e, "cannot set up the optimizer segments")
                     : 0;
        if ((status = rt_agree(comm, status, &e)))
            goto done;
        shard = &segments;
        /* one node: gradients and parameters in node-shared memory */
        const int rc = cfg.shard_optimizer == 2 ? 1 : train_shared_enter(comm, &model, &shared);
        if ((status = rt_agree(comm, rc < 0 ? err_set(&e, "cannot allocate node-shared memory") : 0, &e)))
            goto done;
        if (rc == 0)
            step_comm.shared = &shared;
    }
    step_comm.shard = shard;

    char layers[256];
    rt_format_layers(layers, sizeof layers, &model);
    if (rank == 0 && !cfg.quiet) {
        printf("mnist-dist %s: %d rank%s x %d thread%s, layers %s (%zu parameters)\n",
               MNIST_VERSION, P, P > 1 ? "s" : "", threads, threads > 1 ? "s" : "", layers,
               model.num_params);
        printf("run directory: %s\n", cfg.out_dir);
        printf("data: %s (%zu train + %zu validation rows), test %s (%zu rows)\n", cfg.train_path,
               n_train, n_val, cfg.test_path, test_rows);
        printf("batch %d global (%d on rank 0), %zu steps/epoch, Adam lr %g, dropout %g\n",
               cfg.batch_size, b_local, steps, (double)cfg.lr, (double)cfg.dropout);
        if (resumed_from[0] && from.step > 0)
            printf("resumed from %s after epoch %d and %d steps of epoch %d\n", resumed_from,
                   from.epoch, from.step, from.epoch + 1);
        else if (resumed_from[0])
            printf("resumed from %s after epoch %d\n", resumed_from, from.epoch);
        fflush(stdout);
    }

    Progress prog = {rank == 0 && stdout_is_terminal(), rank != 0 || cfg.quiet, cfg.log_every,
                     0, cfg.epochs, steps, (size_t)cfg.batch_size, 0, 0, 0, 0, 0};
    StepTimes phase = {0, 0, 0, 0, 0};
    int64_t phase_steps = 0;
    double train_s = 0;
    for (int i = 0; i < hist.count; i++)
        train_s += hist.items[i].seconds;
    for (int epoch = from.epoch + 1; epoch <= cfg.epochs; epoch++) {
        /* Streams keyed by (seed, epoch, global row): a row's shuffle position
         * within its shard and its dropout masks do not depend on the rank. */
        if (cfg.deterministic) {
            /* each logical shard shuffled on its own, keyed by its index */
            for (int k = 0; k < plan.count; k++) {
                const int j = plan.first + k;
                size_t *o = order + (plan.row_first[j] - plan.local_first);
                shuffle(o, plan.rows[j],
                        rng_key((uint64_t)cfg.seed, RNG_SHUFFLE, (uint64_t)epoch, (uint64_t)j));
                for (size_t i = 0; i < plan.rows[j]; i++)
                    o[i] += plan.row_first[j] - plan.local_first;
            }
        } else {
            shuffle(order, shard_rows, rng_key((uint64_t)cfg.seed, RNG_SHUFFLE, (uint64_t)epoch,
                                               shard_first));
        }
        const uint64_t dkey = rng_key((uint64_t)cfg.seed, RNG_DROPOUT, (uint64_t)epoch, 0);
        const uint64_t akey = rng_key((uint64_t)cfg.seed, RNG_AUGMENT, (uint64_t)epoch, 0);
        double sums[3] = {0, 0, 0}; /* loss, correct, samples */
        int64_t correct = 0;
        double seconds_before = 0;
        size_t first_step = 0;
        if (epoch == from.epoch + 1 && from.step > 0) {
            /* Resuming mid-epoch: the same shuffle, skip the steps already
             * taken; rank 0 carries the global sums of the partial epoch. */
            first_step = (size_t)from.step;
            if (rank == 0) {
                sums[0] = from.partial[0], correct = (int64_t)from.partial[1];
                sums[2] = from.partial[2];
            }
            seconds_before = from.partial[3];
        }
        const double t0 = time_now_s();
        prog.epoch = epoch, prog.t0 = t0, prog.loss = prog.count = 0, prog.last_draw = 0;
        size_t stopped_after = 0;
        for (size_t s = first_step; s < steps; s++) {
            const double td = time_now_s();
            const size_t *rows = order + s * (size_t)b_local;
            if (cfg.deterministic) {
                /* the step's rows: each local shard's next batch[j] rows */
                for (int k = 0, n = 0; k < plan.count; k++) {
                    const int j = plan.first + k;
                    const size_t *o = order + (plan.row_first[j] - plan.local_first);
                    for (int i = 0; i < plan.batch[j]; i++)
                        step_rows[n++] = o[s * (size_t)plan.batch[j] + (size_t)i];
                }
                rows = step_rows;
            }
            for (int i = 0; i < b_local; i++)
                buf.ids[i] = shard_first + rows[i];
            if (aug_src) {
                /* keyed by (seed, epoch, global row): the same image on any rank */
                for (int i = 0; i < b_local; i++) {
                    aug_src[i] = train.images + rows[i] * MNIST_PIXELS;
                    buf.y[i] = train.labels[rows[i]];
                }
                augment_batch(buf.x, aug_src, b_local, &aug, akey, buf.ids, aug_scratch,
                              aug_slots);
            } else {
                data_gather_batch(buf.x, buf.y, &train, rows, b_local);
            }
            mlp_normalize_input(&model, buf.x, b_local);
            opt.lr = (float)schedule_lr(&sched, opt.t + 1);
            phase.data += time_now_s() - td;
            const double before = sums[0];
            if (opt.t + 1 == fault.nan_step && rank == P - 1)
                buf.x[0] = NAN; /* test hook: poisons this rank's loss */
            const int flags =
                cfg.deterministic
                    ? det_step(&det, &plan, &model, &opt, comm, buf.x, buf.y, buf.ids,
                               cfg.batch_size, dkey, stop_signal != 0, buf.pred, &sums[0],
                               &correct, &phase)
                    : train_step(&model, &opt, comm, buf.x, buf.y, buf.ids, b_local,
                                 cfg.batch_size, dkey, stop_signal != 0, buf.pred, &sums[0],
                                 &correct, &phase, &step_comm);
            phase_steps++;
            sums[2] += b_local;
            if (flags & (STEP_BAD_LOSS | STEP_BAD_GRAD)) {
                /* The flags are summed over ranks: all stop here together. */
                progress_end(&prog);
                char what[64];
                if (flags & STEP_BAD_LOSS)
                    snprintf(what, sizeof what, "the training loss");
                else
                    find_bad_gradient(&model, what, sizeof what);
                if (rank == 0)
                    fprintf(stderr,
                            "mnist-dist: error: %s became NaN or infinite at epoch %d, step %zu; "
                            "lower --lr (the last checkpoint is intact)\n",
                            what, epoch, s + 1);
                status = EXIT_FAIL;
                goto done;
            }
            if (opt.t == fault.diverge_step && rank == P - 1)
                model.params[0] += 1e-3f; /* test hook: breaks replica agreement */
            if (cfg.check_every > 0 && opt.t % cfg.check_every == 0 &&
                check_replicas(comm, &model, epoch, s + 1)) {
                progress_end(&prog);
                status = EXIT_FAIL;
                goto done;
            }
            progress_step(&prog, s + 1, sums[0] - before, b_local);
            if (flags & STEP_STOP) {
                stopped_after = s + 1;
                break;
            }
        }
        /* A stop on an epoch's last step: finish the epoch, checkpoint, stop. */
        const int stop_at_boundary = stopped_after == steps && epoch < cfg.epochs;
        if (stopped_after && stopped_after < steps) {
            /* Asked to stop mid-epoch: save exactly where we are, so a
             * resumed run continues as if never interrupted. */
            progress_end(&prog);
            if (check_replicas(comm, &model, epoch, stopped_after)) {
                status = EXIT_FAIL;
                goto done;
            }
            train_sync_moments(comm, &model, shard);
            sums[1] = (double)correct;
            comm_allreduce_sum_f64(comm, sums, 3);
            if (rank == 0) {
                CkptMeta meta = {epoch - 1, cfg.seed, (int)stopped_after,
                                 {sums[0], sums[1], sums[2], seconds_before + time_now_s() - t0}};
                status = ckpt_path(last_ckpt, sizeof last_ckpt, cfg.out_dir, epoch - 1,
                                   (int)stopped_after)
                             ? err_set(&e, "%s: path too long", cfg.out_dir)
                             : ckpt_write(last_ckpt, &model, &opt, &meta, &hist, cfg_json, &e);
            }
            if ((status = rt_agree(comm, status, &e)))
                goto done;
            if (rank == 0)
                printf("stopped by signal %d at epoch %d, step %zu of %zu; checkpoint %s; "
                       "continue with --resume auto --out %s\n",
                       (int)stop_signal, epoch, stopped_after, steps, last_ckpt, cfg.out_dir);
            status = EXIT_STOPPED;
            goto done;
        }
        const double seconds = seconds_before + time_now_s() - t0;
        progress_end(&prog);
        train_s += seconds;
        sums[1] = (double)correct;
        comm_allreduce_sum_f64(comm, sums, 3);
        Metrics vm = {{{0}}, 0};
        rt_evaluate(&model, &val, val_first, &buf, &vm, NULL, NULL);
        rt_reduce_eval(comm, &vm, NULL, NULL);
        Scores vs;
        metrics_scores(&vm, &vs);
        EpochStats st = {epoch,
                         sums[0] / sums[2],
                         sums[1] / sums[2],
                         n_val ? vs.loss : NAN,
                         n_val ? vs.accuracy : NAN,
                         seconds,
                         sums[2] / seconds};
        status = history_push(&hist, &st, &e);
        if ((status = rt_agree(comm, status, &e)))
            goto done;
        if (rank == 0 && !cfg.quiet) {
            printf("epoch %3d/%d  train loss %.4f acc %.4f", epoch, cfg.epochs, st.train_loss,
                   st.train_acc);
            if (n_val)
                printf("  val loss %.4f acc %.4f", st.val_loss, st.val_acc);
            printf("  %.2f s  %.0f samples/s\n", st.seconds, st.samples_per_s);
            fflush(stdout);
        }
        int early_stop = 0;
        if (best_params && n_val) {
            /* Validation numbers are reduced, so every rank decides alike. */
            if (st.val_loss < best_val) {
                best_val = st.val_loss, best_epoch = epoch;
                memcpy(best_params, model.params, sizeof(float) * model.param_floats);
                train_sync_moments(comm, &model, shard);
                if (rank == 0) {
                    char bp[CONFIG_PATH_MAX + 32];
                    CkptMeta bm = {epoch, cfg.seed, 0, {0, 0, 0, 0}};
                    snprintf(bp, sizeof bp, "%s/checkpoints/best.h5", cfg.out_dir);
                    status = ckpt_write(bp, &model, &opt, &bm, &hist, cfg_json, &e);
                }
                if ((status = rt_agree(comm, status, &e)))
                    goto done;
            } else if (epoch - best_epoch >= cfg.patience && epoch < cfg.epochs) {
                early_stop = 1;
                if (rank == 0 && !cfg.quiet)
                    printf("early stop: no better validation loss for %d epochs; best epoch %d "
                           "(val loss %.4f)\n",
                           cfg.patience, best_epoch, best_val);
            }
        }
        if ((cfg.checkpoint_every > 0 && epoch % cfg.checkpoint_every == 0) ||
            epoch == cfg.epochs || stop_at_boundary || early_stop) {
            if (check_replicas(comm, &model, epoch, steps)) {
                status = EXIT_FAIL;
                goto done;
            }
            train_sync_moments(comm, &model, shard);
            if (rank == 0) {
                CkptMeta meta = {epoch, cfg.seed, 0, {0, 0, 0, 0}};
                status = ckpt_path(last_ckpt, sizeof last_ckpt, cfg.out_dir, epoch, 0)
                             ? err_set(&e, "%s: path too long", cfg.out_dir)
                             : ckpt_write(last_ckpt, &model, &opt, &meta, &hist, cfg_json, &e);
            }
            if ((status = rt_agree(comm, status, &e)))
                goto done;
        }
        if (early_stop)
            break;
        if (stop_at_boundary) {
            if (rank == 0)
                printf("stopped by signal %d after epoch %d; checkpoint %s; continue with "
                       "--resume auto --out %s\n",
                       (int)stop_signal, epoch, last_ckpt, cfg.out_dir);
            status = EXIT_STOPPED;
            goto done;
        }
    }

    /* Back from node-shared memory to this rank's own arena. */
    if (step_comm.shared)
        train_shared_leave(&model, &shared);

    /* Per-phase milliseconds per step: min, mean, max over ranks. */
    double phase_ms[STEP_PHASES][3];
    {
        const double mine[STEP_PHASES] = {phase.data, phase.forward, phase.backward,
                                          phase.allreduce, phase.update};
        double *all = malloc(sizeof(double) * STEP_PHASES * (size_t)P);
        if (!all)
            comm_abort(comm, EXIT_FAIL);
        comm_allgather(comm, mine, all, sizeof mine);
        for (int k = 0; k < STEP_PHASES; k++) {
            double lo = INFINITY, hi = 0, sum = 0;
            for (int r = 0; r < P; r++) {
                const double v = 1e3 * all[(size_t)r * STEP_PHASES + k] /
                                 (double)(phase_steps ? phase_steps : 1);
                lo = fmin(lo, v), hi = fmax(hi, v), sum += v;
            }
            phase_ms[k][0] = lo, phase_ms[k][1] = sum / P, phase_ms[k][2] = hi;
        }
        free(all);
    }
    /* Peak resident memory per rank, MB: min, mean, max. */
    double rss_mb[3];
    {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        const double mine = (double)ru.ru_maxrss / 1024.0;
        double *all = malloc(sizeof(double) * (size_t)P);
        if (!all)
            comm_abort(comm, EXIT_FAIL);
        comm_allgather(comm, &mine, all, sizeof mine);
        rss_mb[0] = INFINITY, rss_mb[1] = 0, rss_mb[2] = 0;
        for (int r = 0; r < P; r++)
            rss_mb[0] = fmin(rss_mb[0], all[r]), rss_mb[1] += all[r] / P, rss_mb[2] = fmax(rss_mb[2], all[r]);
        free(all);
    }

    /* Final evaluation on the test set, sharded, reduced to rank 0. */
    Metrics tm = {{{0}}, 0};
    if (best_params && best_epoch > 0) {
        memcpy(model.params, best_params, sizeof(float) * model.param_floats);
        if (rank == 0 && !cfg.quiet)
            printf("evaluating the best epoch's weights (epoch %d, val loss %.4f)\n", best_epoch,
                   best_val);
    }
    rt_evaluate(&model, &test, test_first, &buf, &tm, mistakes, &n_mistakes);
    rt_reduce_eval(comm, &tm, mistakes, &n_mistakes);
    if (rank == 0) {
        char report_dir[CONFIG_PATH_MAX + 16], optimizer[256], versions[512];
        snprintf(report_dir, sizeof report_dir, "%s/report", cfg.out_dir);
        snprintf(optimizer, sizeof optimizer,
                 "Adam lr %g, beta1 %g, beta2 %g, eps %g; global batch %d; dropout %g; seed %lld",
                 (double)cfg.lr, (double)cfg.beta1, (double)cfg.beta2, (double)cfg.eps,
                 cfg.batch_size, (double)cfg.dropout, (long long)cfg.seed);
        rt_versions(versions, sizeof versions);
        if (!last_ckpt[0])
            ckpt_path(last_ckpt, sizeof last_ckpt, cfg.out_dir, cfg.epochs, 0);
        char aug_text[256] = "";
        /* examples for the report: 6 of rank 0's rows as epochs 1..5 see them */
        enum { AUG_ROWS = 6, AUG_PER = 5 };
        float *aug_images = NULL;
        int aug_rows = 0;
        if (augment_enabled(&aug) && aug_scratch) {
            augment_format(aug_text, sizeof aug_text, &aug);
            aug_rows = train.rows < AUG_ROWS ? (int)train.rows : AUG_ROWS;
            aug_images = malloc(sizeof(float) * MNIST_PIXELS * AUG_ROWS * AUG_PER);
            for (int r = 0; aug_images && r < aug_rows; r++)
                for (int k = 0; k < AUG_PER; k++)
                    augment_image(aug_images + ((size_t)r * AUG_PER + (size_t)k) * MNIST_PIXELS,
                                  train.images + (size_t)r * MNIST_PIXELS, &aug,
                                  rng_key((uint64_t)cfg.seed, RNG_AUGMENT, (uint64_t)k + 1, 0),
                                  shard_first + (size_t)r, aug_scratch);
            if (!aug_images)
                aug_rows = 0;
        }
        RunInfo run = {"train", cfg.train_path, cfg.test_path, last_ckpt, layers, optimizer,
                       versions, P, threads, hist.count, (int64_t)n_train, (int64_t)n_val,
                       (int64_t)test_rows, (int64_t)model.num_params, time_now_s() - t_start,
                       train_s, median_throughput(&hist), cfg_json, mistakes, n_mistakes,
                       phase_steps ? &phase_ms[0][0] : NULL, rss_mb,
                       best_params ? best_epoch : 0, aug_text, train.images, aug_images,
                       aug_rows, AUG_PER};
        status = report_write(report_dir, &tm, &hist, &run, &e);
        free(aug_images);
        if (status == 0) {
            Scores ts;
            metrics_scores(&tm, &ts);
            printf("test accuracy %.2f%% (%lld/%lld), loss %.4f\n", 100 * ts.accuracy,
                   (long long)ts.correct, (long long)ts.count, ts.loss);
            printf("report: %s/report.html (also report.md, metrics.json)\n", report_dir);
            printf("checkpoint: %s\n", last_ckpt);
            fflush(stdout);
        }
    }
    status = rt_agree(comm, status, &e);

done:
    /* A run refused before it wrote anything (e.g. a bad --resume file)
     * leaves no empty directories behind. */
    if (status && status != EXIT_STOPPED && rank == 0 && run_dir_is_new && cfg.out_dir[0]) {
        char ck[CONFIG_PATH_MAX + 32];
        snprintf(ck, sizeof ck, "%s/checkpoints", cfg.out_dir);
        rmdir(ck); /* both fail harmlessly when not empty */
        rmdir(cfg.out_dir);
    }
    H5Pclose(fapl);
    free(cfg_json);
    free(order);
    free(step_rows);
    det_work_free(&det);
    if (model.arena)
        mlp_use_buffers(&model, NULL, NULL); /* the window goes next */
    comm_shared_free(&shared);
    comm_segments_free(&segments);
    free(aug_scratch);
    free(aug_src);
    free(best_params);
    history_free(&hist);
    batch_free(&buf);
    mlp_free(&model);
    dataset_free(&train);
    dataset_free(&val);
    dataset_free(&test);
    return status;
}

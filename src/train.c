/* train: `mnist-dist train`, the epoch/step loop. Sequences data loading,
 * the data-parallel step (local gradient, one allreduce, identical Adam step
 * on every rank), evaluation, checkpoints and the report. Every decision that
 * all ranks must share goes through agree(); kernel math lives in ops/mlp. */
#define _GNU_SOURCE
#include "mnist/train.h"

#include <cblas.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "mnist/ckpt.h"
#include "mnist/data.h"
#include "mnist/h5data.h"
#include "mnist/history.h"
#include "mnist/ops.h"
#include "mnist/report.h"
#include "mnist/rng.h"

#define EVAL_BATCH 1000 /* rows per forward pass when evaluating */

/* Shares a status across ranks; on failure the lowest failing rank prints
 * its message, so a failure common to all ranks is printed once. Returns the
 * agreed status (0 = all fine). */
static int agree(const Comm *c, int status, const Error *e)
{
    int worst = comm_agree(c, status ? EXIT_FAIL : EXIT_OK);
    if (worst == EXIT_OK)
        return EXIT_OK;
    /* agree on the lowest failing rank: max over (size - rank) of failures */
    int first = c->size - comm_agree(c, status ? c->size - c->rank : 0);
    if (c->rank == first) {
        if (c->size > 1)
            fprintf(stderr, "mnist-dist: error: rank %d: %s\n", c->rank, e->msg);
        else
            fprintf(stderr, "mnist-dist: error: %s\n", e->msg);
    }
    return worst;
}

void train_step(Mlp *m, Adam *opt, const Comm *comm, const float *x, const uint8_t *y,
                const uint64_t *sample_ids, int b_local, int global_batch, uint64_t dropout_key,
                int *pred, double *loss_sum, int64_t *correct)
{
    mlp_zero_grads(m);
    mlp_forward(m, x, b_local, 1, dropout_key, sample_ids);
    *loss_sum += mlp_backward(m, x, y, b_local, 1.0f / (float)global_batch, pred);
    for (int i = 0; i < b_local; i++)
        *correct += pred[i] == y[i];
    /* Scaled by the global batch, so the sum over ranks is the true mean. */
    comm_allreduce_sum_f32(comm, m->grads, m->param_floats);
    adam_step(opt, m->params, m->adam_m, m->adam_v, m->grads, m->param_floats);
}

/* Buffers for one rank, sized once before the loop. */
typedef struct Buffers {
    float *x;
    uint8_t *y;
    int *pred;
    uint64_t *ids;
    size_t *idx;   /* the shard's row order for this epoch */
    size_t *eval_idx;
} Buffers;

static void buffers_free(Buffers *b)
{
    free(b->x), free(b->y), free(b->pred), free(b->ids), free(b->idx), free(b->eval_idx);
    memset(b, 0, sizeof *b);
}

static int buffers_alloc(Buffers *b, int rows, size_t shard_rows, Error *e)
{
    memset(b, 0, sizeof *b);
    b->x = alloc_aligned(sizeof(float) * (size_t)rows * MNIST_PIXELS);
    b->y = malloc((size_t)rows);
    b->pred = malloc(sizeof(int) * (size_t)rows);
    b->ids = malloc(sizeof(uint64_t) * (size_t)rows);
    b->idx = malloc(sizeof(size_t) * (shard_rows ? shard_rows : 1));
    b->eval_idx = malloc(sizeof(size_t) * (size_t)rows);
    if (!b->x || !b->y || !b->pred || !b->ids || !b->idx || !b->eval_idx) {
        buffers_free(b);
        return err_set(e, "out of memory allocating batch buffers");
    }
    return 0;
}

/* Forward passes over all of d (no dropout), accumulating into out. */
static void evaluate(Mlp *m, const Dataset *d, Buffers *buf, int chunk, Metrics *out)
{
    for (size_t start = 0; start < d->rows; start += (size_t)chunk) {
        int b = (int)(d->rows - start < (size_t)chunk ? d->rows - start : (size_t)chunk);
        for (int i = 0; i < b; i++)
            buf->eval_idx[i] = start + (size_t)i;
        data_gather_batch(buf->x, buf->y, d, buf->eval_idx, b);
        const float *logits = mlp_forward(m, buf->x, b, 0, 0, NULL);
        out->loss_sum +=
            softmax_xent(NULL, buf->pred, logits, buf->y, b, m->sizes[m->num_layers], 0.0f);
        metrics_add(out, buf->y, buf->pred, b);
    }
}

/* Sums a Metrics over ranks. */
static void metrics_allreduce(const Comm *c, Metrics *m)
{
    comm_allreduce_sum_i64(c, &m->confusion[0][0], MNIST_CLASSES * MNIST_CLASSES);
    comm_allreduce_sum_f64(c, &m->loss_sum, 1);
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

/* Threads per rank: --threads, else OMP_NUM_THREADS, else the CPUs this rank
 * may run on shared by the ranks on its node. Warns (rank 0) when the threads
 * oversubscribe the node or a multi-threaded rank is bound to one core.
 * Collective. */
static int cpus_allowed(void)
{
#ifdef _OPENMP
    /* With OMP_PROC_BIND, libgomp has already pinned this (master) thread to
     * one place, so its own mask says 1; the places list still spans every
     * CPU the process was given. */
    if (omp_get_proc_bind() != omp_proc_bind_false && omp_get_num_places() > 0) {
        int n = 0;
        for (int p = 0; p < omp_get_num_places(); p++)
            n += omp_get_place_num_procs(p);
        return n;
    }
#endif
    cpu_set_t set;
    return sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
}

static int choose_threads(const Config *cfg, const Comm *comm)
{
    const int allowed = cpus_allowed();
    const int local = comm_local_size(comm);
    const long online = sysconf(_SC_NPROCESSORS_ONLN);
    int threads;
    if (cfg->threads > 0)
        threads = cfg->threads;
#ifdef _OPENMP
    else if (getenv("OMP_NUM_THREADS"))
        threads = omp_get_max_threads();
#endif
    else if (allowed < online) /* bound by the launcher: use what we were given */
        threads = allowed;
    else
        threads = allowed / local > 0 ? allowed / local : 1;
    if (comm->rank == 0 && !cfg->quiet) {
        if (local > online)
            fprintf(stderr,
                    "mnist-dist: warning: %d ranks share this node's %ld CPUs (oversubscribed); "
                    "steps will be slower than with %ld ranks\n",
                    local, online, online);
        else if ((long)threads * local > online)
            fprintf(stderr,
                    "mnist-dist: warning: %d ranks x %d threads on this node exceed its %ld CPUs; "
                    "expect a large slowdown (use --threads %ld or fewer ranks)\n",
                    local, threads, online, online / local > 0 ? online / local : 1);
        else if (threads > allowed)
            fprintf(stderr,
                    "mnist-dist: warning: %d threads but this rank may only run on %d CPU%s; "
                    "launch with `mpirun --bind-to none` or `--map-by slot:PE=%d`\n",
                    threads, allowed, allowed > 1 ? "s" : "", threads);
    }
    return threads;
}

/* Rank 0 picks runs/<date>-<time>[-k]; everyone receives it. */
static int choose_run_dir(Config *cfg, const Comm *comm, Error *e)
{
    int status = 0;
    if (comm->rank == 0) {
        if (cfg->out_dir[0] == '\0') {
            char stamp[32];
            time_t now = time(NULL);
            strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", localtime(&now));
            snprintf(cfg->out_dir, sizeof cfg->out_dir, "runs/%s", stamp);
            for (int k = 2; path_exists(cfg->out_dir) && k < 1000; k++)
                snprintf(cfg->out_dir, sizeof cfg->out_dir, "runs/%s-%d", stamp, k);
        }
        char ck[CONFIG_PATH_MAX + 32];
        snprintf(ck, sizeof ck, "%s/checkpoints", cfg->out_dir);
        status = path_mkdirs(ck, e);
    }
    comm_bcast(comm, cfg->out_dir, sizeof cfg->out_dir, 0);
    return status;
}

/* Opens path on every rank and reads this rank's share of rows
 * [first_row, first_row + rows) into out; *file_rows receives the file's
 * total. A file without labels is an error here. */
static int load_shard(const char *path, hid_t fapl, const Comm *comm, size_t skip, size_t rows,
                      size_t *file_rows, Dataset *out, Error *e)
{
    H5Data h;
    if (h5data_open(&h, path, fapl, e))
        return -1;
    int rc = 0;
    *file_rows = h.rows;
    if (!h.has_labels)
        rc = err_set(e, "%s: has no /labels; training and evaluation need labelled data", path);
    if (rc == 0 && rows == (size_t)-1)
        rows = h.rows - skip;
    if (rc == 0 && skip + rows > h.rows)
        rc = err_set(e, "%s: has %zu rows, fewer than the %zu needed", path, h.rows, skip + rows);
    if (rc == 0) {
        size_t first, count;
        data_shard_range(rows, comm->size, comm->rank, &first, &count);
        rc = h5data_read(&h, skip + first, count, out, e);
    }
    h5data_close(&h);
    return rc;
}

static void format_layers(char *buf, size_t size, const Mlp *m)
{
    buf[0] = '\0';
    for (int l = 0; l <= m->num_layers; l++)
        snprintf(buf + strlen(buf), size - strlen(buf), "%s%d", l ? "-" : "", m->sizes[l]);
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

/* Rank 0 resolves and reads the checkpoint to resume from, then every rank
 * receives its contents. Returns the completed epoch count (0 = fresh). */
static int resume(const Config *cfg, const Comm *comm, Mlp *m, Adam *opt, History *hist,
                  char *from, size_t from_size, int *status, Error *e)
{
    int epoch = 0, rc = 0;
    from[0] = '\0';
    if (comm->rank == 0) {
        if (strcmp(cfg->resume, "auto") == 0) {
            if (ckpt_find_latest(cfg->out_dir, from, from_size) == 0 && !cfg->quiet)
                printf("resume auto: no checkpoint in %s/checkpoints, starting fresh\n",
                       cfg->out_dir);
        } else {
            snprintf(from, from_size, "%s", cfg->resume);
        }
        if (from[0]) {
            CkptMeta meta;
            rc = ckpt_read(from, m, opt, &meta, hist, e);
            if (rc == 0 && meta.seed != cfg->seed)
                rc = err_set(e, "%s: was trained with --seed %lld; pass the same seed to resume",
                             from, (long long)meta.seed);
            if (rc == 0 && meta.epoch >= cfg->epochs)
                rc = err_set(e, "%s: already has %d epochs; ask for more with --epochs", from,
                             meta.epoch);
            epoch = meta.epoch;
        }
    }
    if ((*status = agree(comm, rc, e)))
        return 0;
    comm_bcast(comm, from, from_size, 0);
    comm_bcast(comm, &epoch, sizeof epoch, 0);
    if (epoch == 0)
        return 0;
    /* params | grads | adam_m | adam_v are consecutive in the arena. */
    comm_bcast(comm, m->params, sizeof(float) * m->param_floats, 0);
    comm_bcast(comm, m->adam_m, 2 * sizeof(float) * m->param_floats, 0);
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
    return epoch;
}

int train_run(const Config *cfg_in, const Comm *comm)
{
    const double t_start = time_now_s();
    Config cfg = *cfg_in;
    const int rank = comm->rank, P = comm->size;
    Error e = {{0}};
    int status;
    Dataset train = {0}, val = {0}, test = {0};
    Mlp model = {0};
    Buffers buf = {0};
    History hist = {0};
    char *cfg_json = NULL;
    char resumed_from[CONFIG_PATH_MAX] = "", last_ckpt[CONFIG_PATH_MAX + 64] = "";

    const int threads = choose_threads(&cfg, comm);
#ifdef _OPENMP
    omp_set_num_threads(threads);
#endif
    openblas_set_num_threads(threads);

    int sizes[MLP_MAX_LAYERS + 1];
    int L = mlp_parse_layers(cfg.layers, MNIST_PIXELS, MNIST_CLASSES, sizes, &e);
    status = L < 0 ? -1 : 0;
    if (status == 0 && cfg.batch_size < P)
        status = err_set(&e, "--batch-size %d is smaller than the %d ranks: every rank needs rows",
                         cfg.batch_size, P);
    if ((status = agree(comm, status, &e)))
        return status;

    /* Data: each rank reads only its own rows. */
    size_t train_file_rows = 0, test_rows = 0, dummy;
    hid_t fapl = comm_h5_fapl(comm);
    if (fapl < 0)
        status = err_set(&e, "cannot create an MPI-IO file access list for HDF5");
    if ((status = agree(comm, status, &e)))
        return status;
    {
        H5Data h;
        status = h5data_open(&h, cfg.train_path, fapl, &e);
        if (status == 0) {
            train_file_rows = h.rows;
            h5data_close(&h);
        }
    }
    if ((status = agree(comm, status, &e)))
        goto done;
    if ((size_t)cfg.val_split >= train_file_rows)
        status = err_set(&e, "--val-split %d leaves no training rows (%s has %zu)", cfg.val_split,
                         cfg.train_path, train_file_rows);
    if ((status = agree(comm, status, &e)))
        goto done;
    const size_t n_train = train_file_rows - (size_t)cfg.val_split, n_val = (size_t)cfg.val_split;
    status = load_shard(cfg.train_path, fapl, comm, 0, n_train, &dummy, &train, &e);
    if ((status = agree(comm, status, &e)))
        goto done;
    status = load_shard(cfg.train_path, fapl, comm, n_train, n_val, &dummy, &val, &e);
    if ((status = agree(comm, status, &e)))
        goto done;
    status = load_shard(cfg.test_path, fapl, comm, 0, (size_t)-1, &test_rows, &test, &e);
    if ((status = agree(comm, status, &e)))
        goto done;

    /* Every rank computes every shard's size, so all agree on the step count
     * without communicating: the smallest shard decides. */
    size_t shard_first, shard_rows, b_first, b_size;
    data_shard_range(n_train, P, rank, &shard_first, &shard_rows);
    data_shard_range((size_t)cfg.batch_size, P, rank, &b_first, &b_size);
    const int b_local = (int)b_size;
    size_t steps = SIZE_MAX;
    for (int r = 0; r < P; r++) {
        size_t f, n, bf, bn;
        data_shard_range(n_train, P, r, &f, &n);
        data_shard_range((size_t)cfg.batch_size, P, r, &bf, &bn);
        if (n / bn < steps)
            steps = n / bn;
    }
    if (steps == 0)
        status = err_set(&e, "%zu training rows over %d rank%s are too few for --batch-size %d",
                         n_train, P, P > 1 ? "s" : "", cfg.batch_size);
    const int max_batch = b_local > EVAL_BATCH ? b_local : EVAL_BATCH;
    if (status == 0)
        status = mlp_create(&model, sizes, L, cfg.dropout, max_batch, &e);
    if (status == 0)
        status = buffers_alloc(&buf, max_batch, shard_rows, &e);
    if ((status = agree(comm, status, &e)))
        goto done;

    /* Only now, with data and model in hand, does the run directory appear. */
    if ((status = agree(comm, choose_run_dir(&cfg, comm, &e), &e)))
        goto done;

    Adam opt = {cfg.lr, cfg.beta1, cfg.beta2, cfg.eps, 0};
    if (rank == 0)
        mlp_init_params(&model, (uint64_t)cfg.seed);
    comm_bcast(comm, model.params, sizeof(float) * model.param_floats, 0);
    int start_epoch = 0;
    if (cfg.resume[0]) {
        start_epoch = resume(&cfg, comm, &model, &opt, &hist, resumed_from, sizeof resumed_from,
                             &status, &e);
        if (status)
            goto done;
        /* Hyper-parameters come from this command line; state from the file. */
        opt.lr = cfg.lr, opt.beta1 = cfg.beta1, opt.beta2 = cfg.beta2, opt.eps = cfg.eps;
    }
    cfg_json = config_json(&cfg, comm, threads);

    char layers[256];
    format_layers(layers, sizeof layers, &model);
    if (rank == 0 && !cfg.quiet) {
        printf("mnist-dist %s: %d rank%s x %d thread%s, layers %s (%zu parameters)\n",
               MNIST_VERSION, P, P > 1 ? "s" : "", threads, threads > 1 ? "s" : "", layers,
               model.num_params);
        printf("run directory: %s\n", cfg.out_dir);
        printf("data: %s (%zu train + %zu validation rows), test %s (%zu rows)\n", cfg.train_path,
               n_train, n_val, cfg.test_path, test_rows);
        printf("batch %d global (%d on rank 0), %zu steps/epoch, Adam lr %g, dropout %g\n",
               cfg.batch_size, b_local, steps, (double)cfg.lr, (double)cfg.dropout);
        if (resumed_from[0])
            printf("resumed from %s after epoch %d\n", resumed_from, start_epoch);
        fflush(stdout);
    }

    double train_s = 0;
    for (int i = 0; i < hist.count; i++)
        train_s += hist.items[i].seconds;
    for (int epoch = start_epoch + 1; epoch <= cfg.epochs; epoch++) {
        /* Streams keyed by (seed, epoch, global row): a row's shuffle position
         * within its shard and its dropout masks do not depend on the rank. */
        shuffle(buf.idx, shard_rows, rng_key((uint64_t)cfg.seed, RNG_SHUFFLE, (uint64_t)epoch,
                                             shard_first));
        const uint64_t dkey = rng_key((uint64_t)cfg.seed, RNG_DROPOUT, (uint64_t)epoch, 0);
        double sums[3] = {0, 0, 0}; /* loss, correct, samples */
        int64_t correct = 0;
        const double t0 = time_now_s();
        for (size_t s = 0; s < steps; s++) {
            const size_t *rows = buf.idx + s * (size_t)b_local;
            data_gather_batch(buf.x, buf.y, &train, rows, b_local);
            for (int i = 0; i < b_local; i++)
                buf.ids[i] = shard_first + rows[i];
            train_step(&model, &opt, comm, buf.x, buf.y, buf.ids, b_local, cfg.batch_size, dkey,
                       buf.pred, &sums[0], &correct);
        }
        const double seconds = time_now_s() - t0;
        train_s += seconds;
        sums[1] = (double)correct;
        sums[2] = (double)(steps * (size_t)b_local);
        comm_allreduce_sum_f64(comm, sums, 3);
        Metrics vm = {{{0}}, 0};
        evaluate(&model, &val, &buf, max_batch, &vm);
        metrics_allreduce(comm, &vm);
        Scores vs;
        metrics_scores(&vm, &vs);
        EpochStats st = {epoch,
                         sums[0] / sums[2],
                         sums[1] / sums[2],
                         n_val ? vs.loss : NAN,
                         n_val ? vs.accuracy : NAN,
                         seconds,
                         sums[2] / seconds};
        if (!isfinite(st.train_loss)) {
            /* Reduced values: every rank takes this branch together. */
            if (rank == 0)
                fprintf(stderr,
                        "mnist-dist: error: training loss became %g in epoch %d; lower --lr "
                        "(the last checkpoint is intact)\n",
                        st.train_loss, epoch);
            status = EXIT_FAIL;
            goto done;
        }
        status = history_push(&hist, &st, &e);
        if ((status = agree(comm, status, &e)))
            goto done;
        if (rank == 0 && !cfg.quiet) {
            printf("epoch %3d/%d  train loss %.4f acc %.4f", epoch, cfg.epochs, st.train_loss,
                   st.train_acc);
            if (n_val)
                printf("  val loss %.4f acc %.4f", st.val_loss, st.val_acc);
            printf("  %.2f s  %.0f samples/s\n", st.seconds, st.samples_per_s);
            fflush(stdout);
        }
        if ((cfg.checkpoint_every > 0 && epoch % cfg.checkpoint_every == 0) ||
            epoch == cfg.epochs) {
            if (rank == 0) {
                CkptMeta meta = {epoch, cfg.seed};
                status = ckpt_path(last_ckpt, sizeof last_ckpt, cfg.out_dir, epoch)
                             ? err_set(&e, "%s: path too long", cfg.out_dir)
                             : ckpt_write(last_ckpt, &model, &opt, &meta, &hist, cfg_json, &e);
            }
            if ((status = agree(comm, status, &e)))
                goto done;
        }
    }

    /* Final evaluation on the test set, sharded, reduced to every rank. */
    Metrics tm = {{{0}}, 0};
    evaluate(&model, &test, &buf, max_batch, &tm);
    metrics_allreduce(comm, &tm);
    if (rank == 0) {
        char report_dir[CONFIG_PATH_MAX + 16];
        snprintf(report_dir, sizeof report_dir, "%s/report", cfg.out_dir);
        if (!last_ckpt[0])
            ckpt_path(last_ckpt, sizeof last_ckpt, cfg.out_dir, cfg.epochs);
        RunInfo run = {cfg.train_path, cfg.test_path, last_ckpt, cfg.layers, P, threads,
                       hist.count, (int64_t)n_train, (int64_t)n_val, (int64_t)test_rows,
                       (int64_t)model.num_params, time_now_s() - t_start, train_s, cfg_json};
        status = report_write(report_dir, &tm, &hist, &run, &e);
        if (status == 0) {
            Scores ts;
            metrics_scores(&tm, &ts);
            printf("test accuracy %.2f%% (%lld/%lld), loss %.4f\n", 100 * ts.accuracy,
                   (long long)ts.correct, (long long)ts.count, ts.loss);
            printf("report: %s/report.md and metrics.json\n", report_dir);
            printf("checkpoint: %s\n", last_ckpt);
            fflush(stdout);
        }
    }
    status = agree(comm, status, &e);

done:
    H5Pclose(fapl);
    free(cfg_json);
    history_free(&hist);
    buffers_free(&buf);
    mlp_free(&model);
    dataset_free(&train);
    dataset_free(&val);
    dataset_free(&test);
    return status;
}

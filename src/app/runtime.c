/* runtime: the collective pieces shared by train, evaluate and predict:
 * status agreement, thread choice, sharded loading, model loading, sharded
 * evaluation with mistakes gathered to rank 0, and the run directory.
 * Calls comm for every exchange; no kernel math here. */
#define _GNU_SOURCE
#include "mnist/runtime.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "mnist/gemm.h"
#include "mnist/h5data.h"
#include "mnist/h5safe.h"
#include "mnist/ops.h"

int rt_agree(const Comm *c, int status, const Error *e)
{
    return rt_agree_code(c, status, EXIT_FAIL, e);
}

int rt_agree_code(const Comm *c, int status, int code, const Error *e)
{
    int worst = comm_agree(c, status ? code : EXIT_OK);
    if (worst == EXIT_OK)
        return EXIT_OK;
    /* The lowest failing rank: maximise size - rank over the failures. */
    int first = c->size - comm_agree(c, status ? c->size - c->rank : 0);
    if (c->rank == first) {
        if (c->size > 1)
            fprintf(stderr, "mnist-dist: error: rank %d: %s\n", c->rank, e->msg);
        else
            fprintf(stderr, "mnist-dist: error: %s\n", e->msg);
        fflush(stderr);
    }
    return worst;
}

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

int rt_threads(const Config *cfg, const Comm *comm)
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
#ifdef _OPENMP
    omp_set_num_threads(threads);
#endif
    ops_blas_threads(threads);
    ops_flush_denormals();
    return threads;
}

H5Names rt_names(const Config *cfg)
{
    return (H5Names){cfg->images_dataset, cfg->labels_dataset};
}

int rt_check_h5(const Comm *comm, const char *path, const H5Names *names, Error *e)
{
    char arg[1024];
    const int status = h5data_names_arg(arg, sizeof arg, names) != 0
                           ? err_set(e, "%s: dataset names may not contain a newline", path)
                           : h5safe_check_arg(path, "images", arg, e);
    if (comm_agree(comm, status ? EXIT_FAIL : EXIT_OK) == EXIT_OK)
        return 0;
    /* every rank gives the lowest failing rank's reason */
    const int first = comm->size - comm_agree(comm, status ? comm->size - comm->rank : 0);
    comm_bcast(comm, e->msg, sizeof e->msg, first);
    return -1;
}

int rt_load_shard(const char *path, const H5Names *names, hid_t fapl, const Comm *comm,
                  size_t skip, size_t rows, int need_labels, size_t *file_rows,
                  size_t *first_row, Dataset *out, Error *e)
{
    H5Data h;
    if (rt_check_h5(comm, path, names, e) || h5data_open_named(&h, path, names, fapl, e))
        return -1;
    int rc = 0;
    *file_rows = h.rows;
    if (need_labels && !h.has_labels)
        rc = err_set(e, "%s: has no /%s; training and evaluation need labelled data%s", path,
                     h.labels_name, names && names->labels && names->labels[0] ? ""
                     : " (name yours with --labels-dataset)");
    if (rc == 0 && rows == SIZE_MAX)
        rows = skip <= h.rows ? h.rows - skip : 0;
    if (rc == 0 && skip + rows > h.rows)
        rc = err_set(e, "%s: has %zu rows, fewer than the %zu needed", path, h.rows, skip + rows);
    if (rc == 0) {
        size_t first, count;
        data_shard_range(rows, comm->size, comm->rank, &first, &count);
        *first_row = skip + first;
        rc = h5data_read(&h, skip + first, count, out, e);
    }
    h5data_close(&h);
    return rc;
}

int rt_load_rows(const char *path, const H5Names *names, hid_t fapl, size_t first, size_t count,
                 int need_labels, size_t *file_rows, Dataset *out, Error *e)
{
    H5Data h; /* path was checked (rt_check_h5) by the caller: h5safe remembers */
    if (h5data_open_named(&h, path, names, fapl, e))
        return -1;
    int rc = 0;
    *file_rows = h.rows;
    if (need_labels && !h.has_labels)
        rc = err_set(e, "%s: has no /%s; training and evaluation need labelled data", path,
                     h.labels_name);
    if (rc == 0)
        rc = h5data_read(&h, first, count, out, e);
    h5data_close(&h);
    return rc;
}

int rt_run_dir(Config *cfg, const Comm *comm, const char *suffix, const char *subdir, Error *e)
{
    int status = 0;
    if (comm->rank == 0) {
        if (cfg->out_dir[0] == '\0') {
            char stamp[32];
            time_t now = time(NULL);
            strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", localtime(&now));
            snprintf(cfg->out_dir, sizeof cfg->out_dir, "runs/%s%s", stamp, suffix);
            for (int k = 2; path_exists(cfg->out_dir) && k < 1000; k++)
                snprintf(cfg->out_dir, sizeof cfg->out_dir, "runs/%s%s-%d", stamp, suffix, k);
        }
        char dir[CONFIG_PATH_MAX + 64];
        snprintf(dir, sizeof dir, "%s%s%s", cfg->out_dir, subdir ? "/" : "", subdir ? subdir : "");
        status = path_mkdirs(dir, e);
    }
    comm_bcast(comm, cfg->out_dir, sizeof cfg->out_dir, 0);
    return rt_agree(comm, status, e);
}

int rt_check_fits(const Model *m, const char *model_path, const Dataset *d, const char *path,
                  size_t first_row, Error *e)
{
    char model[CONFIG_PATH_MAX + 16] = "the model";
    if (model_path && model_path[0])
        snprintf(model, sizeof model, "the model %s", model_path);
    if (d->shape.h != m->input.h || d->shape.w != m->input.w || d->shape.c != m->input.c)
        return err_set(e, "%s: images are %dx%dx%d but %s takes %dx%dx%d", path, d->shape.h,
                       d->shape.w, d->shape.c, model, m->input.h, m->input.w, m->input.c);
    if (d->labels && d->classes != m->classes)
        return err_set(e, "%s: the data declares %d classes but %s has %d", path, d->classes,
                       model, m->classes);
    if (d->labels)
        for (size_t i = 0; i < d->rows; i++)
            if (d->labels[i] >= m->classes)
                return err_set(e, "%s: row %zu has label %d but %s has %d classes (0..%d)", path,
                               first_row + i, d->labels[i], model, m->classes, m->classes - 1);
    return 0;
}

int rt_load_model(const char *path, const Comm *comm, int max_batch, Model *m, CkptMeta *meta,
                  History *h, Error *e)
{
    CkptModel desc;
    memset(&desc, 0, sizeof desc);
    memset(m, 0, sizeof *m);
    int status = comm->rank == 0 ? ckpt_read_model(path, &desc, e) : 0;
    if ((status = rt_agree(comm, status, e)))
        return status;
    comm_bcast(comm, &desc, sizeof desc, 0);
    status = model_create(m, &desc.spec, desc.input, desc.classes, max_batch, e) ? -1 : 0;
    if ((status = rt_agree(comm, status, e)))
        return status;
    if (comm->rank == 0)
        status = ckpt_read(path, m, NULL, meta, h, e);
    if ((status = rt_agree(comm, status, e))) {
        model_free(m);
        return status;
    }
    comm_bcast(comm, meta, sizeof *meta, 0);
    comm_bcast(comm, m->params, sizeof(float) * m->param_floats, 0);
    comm_bcast(comm, &m->in_mean, sizeof m->in_mean, 0);
    comm_bcast(comm, &m->in_scale, sizeof m->in_scale, 0);
    return 0;
}

int evalbuf_alloc(EvalBuf *b, int cap, const Model *m, Error *e)
{
    memset(b, 0, sizeof *b);
    b->cap = cap;
    b->x = alloc_aligned(sizeof(float) * (size_t)cap * shape_size(m->input));
    b->y = malloc((size_t)cap);
    b->pred = malloc(sizeof(int) * (size_t)cap);
    b->rows = malloc(sizeof(size_t) * (size_t)cap);
    b->probs = malloc(sizeof(float) * (size_t)cap * (size_t)m->classes);
    if (!b->x || !b->y || !b->pred || !b->rows || !b->probs) {
        evalbuf_free(b);
        return err_set(e, "out of memory allocating evaluation buffers");
    }
    return 0;
}

void evalbuf_free(EvalBuf *b)
{
    free(b->x), free(b->y), free(b->pred), free(b->rows), free(b->probs);
    memset(b, 0, sizeof *b);
}

void rt_evaluate(Model *m, const Dataset *d, size_t first_row, EvalBuf *b, Metrics *out,
                 Mistake *mistakes, int *n_mistakes)
{
    const int C = m->classes;
    const size_t pixels = dataset_pixels(d);
    for (size_t start = 0; start < d->rows; start += (size_t)b->cap) {
        const int n = (int)(d->rows - start < (size_t)b->cap ? d->rows - start : (size_t)b->cap);
        for (int i = 0; i < n; i++)
            b->rows[i] = start + (size_t)i;
        data_gather_batch(b->x, b->y, d, b->rows, n);
        model_normalize_input(m, b->x, n);
        const float *logits = model_forward(m, b->x, n, 0, 0, NULL);
        out->loss_sum += softmax_xent(NULL, b->pred, logits, b->y, n, C, 0.0f, 0.0f);
        metrics_add(out, b->y, b->pred, n);
        if (!mistakes)
            continue;
        softmax_rows(b->probs, logits, n, C);
        for (int i = 0; i < n; i++) {
            if (b->pred[i] == b->y[i])
                continue;
            const float p = b->probs[(size_t)i * C + b->pred[i]];
            if (*n_mistakes == REPORT_MISTAKES && p <= mistakes[REPORT_MISTAKES - 1].prob)
                continue; /* would not rank: skip copying the pixels */
            Mistake mk = {.prob = p, .label = b->y[i], .pred = b->pred[i],
                          .index = (int64_t)(first_row + start + (size_t)i)};
            mistake_set_pixels(&mk, d->images + (start + (size_t)i) * pixels, d->shape.h,
                               d->shape.w, d->shape.c);
            mistakes_insert(mistakes, n_mistakes, REPORT_MISTAKES, &mk);
        }
    }
}

void rt_reduce_eval(const Comm *comm, Metrics *out, Mistake *mistakes, int *n_mistakes)
{
    comm_allreduce_sum_i64(comm, out->confusion, (size_t)out->classes * (size_t)out->classes);
    comm_allreduce_sum_f64(comm, &out->loss_sum, 1);
    if (!mistakes || comm->size == 1)
        return;
    /* Every rank sends a full list, unused slots marked with prob -1. */
    for (int i = *n_mistakes; i < REPORT_MISTAKES; i++)
        mistakes[i].prob = -1.0f;
    const size_t bytes = sizeof(Mistake) * REPORT_MISTAKES;
    Mistake *all = comm->rank == 0 ? malloc(bytes * (size_t)comm->size) : NULL;
    if (comm->rank == 0 && !all) {
        fprintf(stderr, "mnist-dist: error: out of memory gathering mistakes\n");
        comm_abort(comm, EXIT_FAIL);
    }
    comm_gatherv(comm, mistakes, bytes, all, 0);
    if (comm->rank == 0) {
        *n_mistakes = 0;
        for (int k = 0; k < comm->size * REPORT_MISTAKES; k++)
            if (all[k].prob >= 0.0f)
                mistakes_insert(mistakes, n_mistakes, REPORT_MISTAKES, &all[k]);
        free(all);
    }
}

void rt_versions(char *buf, size_t size)
{
    unsigned maj, min, rel;
    H5get_libversion(&maj, &min, &rel);
    char mpi[128];
    comm_library_version(mpi, sizeof mpi);
    snprintf(buf, size, "mnist-dist %s; HDF5 %u.%u.%u; %s; %s; %s", MNIST_VERSION, maj, min, rel,
             mpi, ops_blas_config(), gemm_dnnl_version());
}

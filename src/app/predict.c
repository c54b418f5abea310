/* predict: `mnist-dist predict`: Kaggle's ImageId,Label submission
 * (optionally with class probabilities) for CSV, IDX or HDF5 images, each
 * rank predicting its own rows. Rank 0 writes the file. */
#define _GNU_SOURCE
#include "mnist/predict.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mnist/data.h"
#include "mnist/data_csv.h"
#include "mnist/data_idx.h"
#include "mnist/ops.h"
#include "mnist/runtime.h"

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Rank 0 reads a CSV or IDX file and hands each rank its contiguous share
 * (the same split as an HDF5 shard). *first_row receives the share's start. */
static int scatter_text_input(const char *path, int classes, const Comm *comm, Dataset *out,
                              size_t *first_row, size_t *total_rows, Error *e)
{
    Dataset all = {0};
    int status = 0;
    if (comm->rank == 0)
        status = data_is_idx(path) ? data_idx_read(path, NULL, classes, &all, e)
                                    : data_csv_read(path, classes, &all, e);
    if ((status = rt_agree(comm, status, e)))
        return status;
    uint64_t shape[2] = {all.rows, all.labels != NULL};
    comm_bcast(comm, shape, sizeof shape, 0);
    *total_rows = (size_t)shape[0];
    size_t count;
    data_shard_range(*total_rows, comm->size, comm->rank, first_row, &count);
    out->rows = count;
    out->shape = (Shape){MNIST_SIDE, MNIST_SIDE, 1};
    out->classes = classes;
    out->images = malloc(count * MNIST_PIXELS + 1);
    out->labels = shape[1] ? malloc(count + 1) : NULL;
    size_t *bytes = malloc(sizeof(size_t) * (size_t)comm->size);
    status = (!out->images || (shape[1] && !out->labels) || !bytes)
                 ? err_set(e, "out of memory for %zu images", count)
                 : 0;
    if ((status = rt_agree(comm, status, e))) {
        free(bytes);
        dataset_free(&all);
        dataset_free(out);
        return status;
    }
    for (int r = 0; r < comm->size; r++) {
        size_t f, n;
        data_shard_range(*total_rows, comm->size, r, &f, &n);
        bytes[r] = n * MNIST_PIXELS;
    }
    comm_scatterv(comm, all.images, bytes, out->images, count * MNIST_PIXELS, 0);
    if (shape[1]) {
        for (int r = 0; r < comm->size; r++)
            bytes[r] /= MNIST_PIXELS;
        comm_scatterv(comm, all.labels, bytes, out->labels, count, 0);
    }
    free(bytes);
    dataset_free(&all);
    return 0;
}

/* Rank 0: writes the submission CSV (temp + rename). */
static int write_predictions(const char *path, const int32_t *pred, const float *probs,
                             int classes, size_t rows, Error *e)
{
    char tmp[CONFIG_PATH_MAX + 64];
    if (path_tmp_name(tmp, sizeof tmp, path, e))
        return -1;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return err_set(e, "%s: cannot create: %s", path, strerror(errno));
    fputs("ImageId,Label", f);
    if (probs)
        for (int c = 0; c < classes; c++)
            fprintf(f, ",p%d", c);
    fputc('\n', f);
    for (size_t i = 0; i < rows; i++) {
        fprintf(f, "%zu,%d", i + 1, pred[i]);
        if (probs)
            for (int c = 0; c < classes; c++)
                fprintf(f, ",%.6f", (double)probs[i * (size_t)classes + (size_t)c]);
        fputc('\n', f);
    }
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        unlink(tmp);
        return err_set(e, "%s: write failed (disk full?)", path);
    }
    return path_commit(tmp, path, e);
}

int predict_run(const Config *cfg_in, const Comm *comm)
{
    Config cfg = *cfg_in;
    Error e = {{0}};
    Model m = {0};
    CkptMeta meta = {0};
    History hist = {0};
    Dataset d = {0};
    EvalBuf buf = {0};
    int32_t *pred = NULL, *all_pred = NULL;
    float *probs = NULL, *all_probs = NULL;
    size_t total = 0, first = 0;
    rt_threads(&cfg, comm);
    hid_t fapl = comm_h5_fapl(comm);
    int status = fapl < 0 ? err_set(&e, "cannot create an MPI-IO file access list") : 0;
    if ((status = rt_agree(comm, status, &e)))
        return status;
    if ((status = rt_load_model(cfg.model_path, comm, RT_EVAL_BATCH, &m, &meta, &hist, &e)))
        goto done;
    if (ends_with(cfg.input_path, ".h5") || ends_with(cfg.input_path, ".hdf5"))
        status = rt_agree(comm,
                          rt_load_shard(cfg.input_path, fapl, comm, 0, SIZE_MAX, 0, &total,
                                        &first, &d, &e),
                          &e);
    else
        status = scatter_text_input(cfg.input_path, m.classes, comm, &d, &first, &total, &e);
    if (status)
        goto done;

    status = evalbuf_alloc(&buf, RT_EVAL_BATCH, &m, &e);
    if (status == 0)
        status = rt_check_fits(&m, cfg.model_path, &d, cfg.input_path, first, &e);
    pred = malloc(sizeof(int32_t) * (d.rows + 1));
    probs = malloc(sizeof(float) * (size_t)m.classes * (d.rows + 1));
    if (comm->rank == 0) {
        all_pred = malloc(sizeof(int32_t) * (total + 1));
        all_probs = malloc(sizeof(float) * (size_t)m.classes * (total + 1));
    }
    if (status == 0 && (!pred || !probs || (comm->rank == 0 && (!all_pred || !all_probs))))
        status = err_set(&e, "out of memory for %zu predictions", total);
    if ((status = rt_agree(comm, status, &e)))
        goto done;

    /* Each rank labels its own rows; correct counts only when labels exist. */
    int64_t counts[2] = {0, 0}; /* correct, labelled */
    const int C = m.classes;
    for (size_t start = 0; start < d.rows; start += (size_t)buf.cap) {
        const int n = (int)(d.rows - start < (size_t)buf.cap ? d.rows - start : (size_t)buf.cap);
        for (int i = 0; i < n; i++)
            buf.rows[i] = start + (size_t)i;
        data_gather_batch(buf.x, d.labels ? buf.y : NULL, &d, buf.rows, n);
        model_normalize_input(&m, buf.x, n);
        const float *logits = model_forward(&m, buf.x, n, 0, 0, NULL);
        softmax_rows(probs + start * (size_t)C, logits, n, C);
        for (int i = 0; i < n; i++) {
            const float *p = probs + (start + (size_t)i) * (size_t)C;
            int arg = 0;
            for (int c = 1; c < C; c++)
                if (p[c] > p[arg])
                    arg = c;
            pred[start + (size_t)i] = arg;
            if (d.labels)
                counts[0] += arg == buf.y[i], counts[1]++;
        }
    }
    comm_gatherv(comm, pred, sizeof(int32_t) * d.rows, all_pred, 0);
    comm_gatherv(comm, probs, sizeof(float) * (size_t)C * d.rows, all_probs, 0);
    comm_allreduce_sum_i64(comm, counts, 2);
    if (comm->rank == 0) {
        status = write_predictions(cfg.output_path, all_pred, cfg.probs ? all_probs : NULL, C,
                                   total, &e);
        if (status == 0 && !cfg.quiet) {
            printf("predict: %zu images from %s -> %s", total, cfg.input_path, cfg.output_path);
            if (counts[1])
                printf(" (accuracy against the file's labels: %.2f%%)",
                       100.0 * (double)counts[0] / (double)counts[1]);
            printf("\n");
            fflush(stdout);
        }
    }
    status = rt_agree(comm, status, &e);
done:
    if (fapl >= 0)
        H5Pclose(fapl);
    free(pred), free(probs), free(all_pred), free(all_probs);
    evalbuf_free(&buf);
    dataset_free(&d);
    history_free(&hist);
    model_free(&m);
    return status;
}

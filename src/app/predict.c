/* predict: `mnist-dist predict`: Kaggle's ImageId,Label submission
 * (optionally with class probabilities) for CSV, IDX or HDF5 images, or
 * file,Label for image files (PNG, JPEG: one, or a directory of them) after
 * MNIST's preprocessing, each rank predicting its own rows. Rank 0 reads
 * text and image inputs and writes the file (and --save-preprocessed). */
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
#include "mnist/data_images.h"
#include "mnist/image.h"
#include "mnist/ops.h"
#include "mnist/runtime.h"

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Collective: rank 0's set all (read with the agreed status) is handed out,
 * each rank receiving its contiguous share (the same split as an HDF5 shard)
 * in out. *first_row receives the share's start. Frees all. */
static int scatter_set(Dataset *all, int status, int classes, const Comm *comm, Dataset *out,
                       size_t *first_row, size_t *total_rows, Error *e)
{
    if ((status = rt_agree(comm, status, e))) {
        dataset_free(all);
        return status;
    }
    uint64_t shape[5] = {all->rows, all->labels != NULL, (uint64_t)all->shape.h,
                         (uint64_t)all->shape.w, (uint64_t)all->shape.c};
    comm_bcast(comm, shape, sizeof shape, 0);
    *total_rows = (size_t)shape[0];
    size_t count;
    data_shard_range(*total_rows, comm->size, comm->rank, first_row, &count);
    out->rows = count;
    out->shape = (Shape){(int)shape[2], (int)shape[3], (int)shape[4]};
    out->classes = classes;
    const size_t px = shape_size(out->shape);
    out->images = malloc(count * px + 1);
    out->labels = shape[1] ? malloc(count + 1) : NULL;
    size_t *bytes = malloc(sizeof(size_t) * (size_t)comm->size);
    status = (!out->images || (shape[1] && !out->labels) || !bytes)
                 ? err_set(e, "out of memory for %zu images", count)
                 : 0;
    if ((status = rt_agree(comm, status, e))) {
        free(bytes);
        dataset_free(all);
        dataset_free(out);
        return status;
    }
    for (int r = 0; r < comm->size; r++) {
        size_t f, n;
        data_shard_range(*total_rows, comm->size, r, &f, &n);
        bytes[r] = n * px;
    }
    comm_scatterv(comm, all->images, bytes, out->images, count * px, 0);
    if (shape[1]) {
        for (int r = 0; r < comm->size; r++)
            bytes[r] /= px;
        comm_scatterv(comm, all->labels, bytes, out->labels, count, 0);
    }
    free(bytes);
    dataset_free(all);
    return 0;
}

/* Writes s as one CSV field: quoted (quotes doubled) when it holds a comma,
 * a quote or a line break. */
static void put_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* Rank 0: writes the submission CSV (temp + rename): ImageId from 1, or the
 * file names when names is non-NULL. */
static int write_predictions(const char *path, const int32_t *pred, const float *probs,
                             int classes, size_t rows, const ImageNames *names, Error *e)
{
    char tmp[CONFIG_PATH_MAX + 64];
    if (path_tmp_name(tmp, sizeof tmp, path, e))
        return -1;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return err_set(e, "%s: cannot create: %s", path, strerror(errno));
    fputs(names ? "file,Label" : "ImageId,Label", f);
    if (probs)
        for (int c = 0; c < classes; c++)
            fprintf(f, ",p%d", c);
    fputc('\n', f);
    for (size_t i = 0; i < rows; i++) {
        if (names)
            put_field(f, names->names[i]);
        else
            fprintf(f, "%zu", i + 1);
        fprintf(f, ",%d", pred[i]);
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

/* DIR/<name without its extension>.png for image i. */
static int preprocessed_path(char *out, size_t size, const char *dir, const char *name)
{
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    const char *dot = strrchr(base, '.');
    const int stem = dot && dot != base ? (int)(dot - base) : (int)strlen(base);
    return str_fmt(out, size, "%s/%.*s.png", dir, stem, base);
}

/* Rank 0: the 28x28 images the network saw, as DIR/<name>.png (each temp +
 * rename). Two inputs that would share a name are refused before any is
 * written. */
static int save_preprocessed(const char *dir, const Dataset *d, const ImageNames *names,
                             Error *e)
{
    char a[CONFIG_PATH_MAX + 300], b[CONFIG_PATH_MAX + 300];
    for (size_t i = 1; i < names->count; i++)
        for (size_t j = 0; j < i; j++)
            if (preprocessed_path(a, sizeof a, dir, names->names[i]) == 0 &&
                preprocessed_path(b, sizeof b, dir, names->names[j]) == 0 && strcmp(a, b) == 0)
                return err_set(e, "--save-preprocessed: %s and %s would both be saved as %s",
                               names->paths[j], names->paths[i], a);
    if (path_mkdirs(dir, e))
        return -1;
    const size_t px = dataset_pixels(d);
    for (size_t i = 0; i < names->count; i++) {
        if (preprocessed_path(a, sizeof a, dir, names->names[i]))
            return err_set(e, "%s/%s: path too long", dir, names->names[i]);
        if (image_write_png(a, d->images + i * px, d->shape.w, d->shape.h, e))
            return -1;
    }
    return 0;
}

/* Collective: rank 0 reads a CSV, IDX or image input (images: their names
 * and, with --save-preprocessed, everything as read in *all_images) and
 * each rank receives its share. */
static int load_rank0_input(const Config *cfg, int classes, int images, const Comm *comm,
                            Dataset *out, size_t *first_row, size_t *total_rows,
                            ImageNames *names, Dataset *all_images, Error *e)
{
    Dataset all = {0};
    int status = 0;
    const char *path = cfg->input_path;
    if (comm->rank == 0 && images) {
        status = data_images_read(path, &all, names, e);
        if (status == 0 && cfg->save_preprocessed[0]) {
            *all_images = all;
            all_images->images = malloc(all.rows * dataset_pixels(&all) + 1);
            if (!all_images->images)
                status = err_set(e, "out of memory");
            else
                memcpy(all_images->images, all.images, all.rows * dataset_pixels(&all));
        }
    } else if (comm->rank == 0) {
        status = data_is_idx(path) ? data_idx_read(path, NULL, classes, &all, e)
                                   : data_csv_read(path, classes, &all, e);
    }
    return scatter_set(&all, status, classes, comm, out, first_row, total_rows, e);
}

int predict_run(const Config *cfg_in, const Comm *comm)
{
    Config cfg = *cfg_in;
    Error e = {{0}};
    Model m = {0};
    CkptMeta meta = {0};
    History hist = {0};
    Dataset d = {0}, seen = {0}; /* seen: image inputs as the network saw them (rank 0) */
    ImageNames names = {0};
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
    /* rank 0 decides what the input is; every rank follows */
    int images = comm->rank == 0 && data_images_is_input(cfg.input_path);
    comm_bcast(comm, &images, sizeof images, 0);
    status = cfg.save_preprocessed[0] && !images
                 ? err_set(&e, "--save-preprocessed: %s is not an image input: only images (a "
                               ".png, .jpg or .jpeg file, or a directory of them) are "
                               "preprocessed", cfg.input_path)
                 : 0;
    if ((status = rt_agree_code(comm, status, EXIT_USAGE, &e)))
        goto done;
    const H5Names h5names = rt_names(&cfg);
    if (!images && (ends_with(cfg.input_path, ".h5") || ends_with(cfg.input_path, ".hdf5")))
        status = rt_agree(comm,
                          rt_load_shard(cfg.input_path, &h5names, fapl, comm, 0, SIZE_MAX, 0,
                                        &total, &first, &d, &e),
                          &e);
    else
        status = load_rank0_input(&cfg, m.classes, images, comm, &d, &first, &total, &names,
                                  &seen, &e);
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
                                   total, images ? &names : NULL, &e);
        if (status == 0 && cfg.save_preprocessed[0])
            status = save_preprocessed(cfg.save_preprocessed, &seen, &names, &e);
        if (status == 0 && !cfg.quiet) {
            printf("predict: %zu images from %s -> %s", total, cfg.input_path, cfg.output_path);
            if (counts[1])
                printf(" (accuracy against the file's labels: %.2f%%)",
                       100.0 * (double)counts[0] / (double)counts[1]);
            if (names.skipped)
                printf(" (%zu directory entr%s that are not .png/.jpg/.jpeg files skipped)",
                       names.skipped, names.skipped == 1 ? "y" : "ies");
            if (cfg.save_preprocessed[0])
                printf("; the 28x28 images in %s/", cfg.save_preprocessed);
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
    dataset_free(&seen);
    data_images_free_names(&names);
    history_free(&hist);
    model_free(&m);
    return status;
}

/* report: metrics from a confusion matrix, and the run's metrics.json
 * (via cJSON, so strings are escaped correctly) and report.md.
 * Writes only where it is told, through temp + rename; no MPI. */
#include "mnist/report.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void metrics_add(Metrics *m, const uint8_t *labels, const int *pred, int B)
{
    for (int i = 0; i < B; i++)
        m->confusion[labels[i]][pred[i]]++;
}

static double ratio(double a, double b) { return b > 0 ? a / b : 0.0; }

void metrics_scores(const Metrics *m, Scores *s)
{
    memset(s, 0, sizeof *s);
    int64_t predicted[MNIST_CLASSES] = {0};
    for (int t = 0; t < MNIST_CLASSES; t++)
        for (int p = 0; p < MNIST_CLASSES; p++) {
            s->count += m->confusion[t][p];
            s->support[t] += m->confusion[t][p];
            predicted[p] += m->confusion[t][p];
        }
    for (int c = 0; c < MNIST_CLASSES; c++) {
        const double tp = (double)m->confusion[c][c];
        s->correct += m->confusion[c][c];
        s->precision[c] = ratio(tp, (double)predicted[c]);
        s->recall[c] = ratio(tp, (double)s->support[c]);
        s->f1[c] = ratio(2 * s->precision[c] * s->recall[c], s->precision[c] + s->recall[c]);
        s->macro_precision += s->precision[c] / MNIST_CLASSES;
        s->macro_recall += s->recall[c] / MNIST_CLASSES;
        s->macro_f1 += s->f1[c] / MNIST_CLASSES;
        const double w = ratio((double)s->support[c], (double)s->count);
        s->weighted_precision += w * s->precision[c];
        s->weighted_recall += w * s->recall[c];
        s->weighted_f1 += w * s->f1[c];
    }
    s->accuracy = ratio((double)s->correct, (double)s->count);
    s->loss = ratio(m->loss_sum, (double)s->count);
}

/* JSON has no NaN: missing values (no validation split) become null. */
static void add_num(cJSON *o, const char *name, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, name, v);
    else
        cJSON_AddNullToObject(o, name);
}

static cJSON *metrics_json(const Metrics *test, const Scores *s, const History *h,
                           const RunInfo *run)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "mnist_dist_version", MNIST_VERSION);
    cJSON *t = cJSON_AddObjectToObject(root, "test");
    cJSON_AddStringToObject(t, "data", run->test_path);
    cJSON_AddNumberToObject(t, "samples", (double)s->count);
    cJSON_AddNumberToObject(t, "correct", (double)s->correct);
    add_num(t, "accuracy", s->accuracy);
    add_num(t, "loss", s->loss);
    cJSON *per = cJSON_AddArrayToObject(t, "per_class");
    for (int c = 0; c < MNIST_CLASSES; c++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "class", c);
        add_num(o, "precision", s->precision[c]);
        add_num(o, "recall", s->recall[c]);
        add_num(o, "f1", s->f1[c]);
        cJSON_AddNumberToObject(o, "support", (double)s->support[c]);
        cJSON_AddItemToArray(per, o);
    }
    cJSON *macro = cJSON_AddObjectToObject(t, "macro_avg");
    add_num(macro, "precision", s->macro_precision);
    add_num(macro, "recall", s->macro_recall);
    add_num(macro, "f1", s->macro_f1);
    cJSON *weighted = cJSON_AddObjectToObject(t, "weighted_avg");
    add_num(weighted, "precision", s->weighted_precision);
    add_num(weighted, "recall", s->weighted_recall);
    add_num(weighted, "f1", s->weighted_f1);
    cJSON *cm = cJSON_AddArrayToObject(t, "confusion_matrix");
    for (int r = 0; r < MNIST_CLASSES; r++) {
        double row[MNIST_CLASSES];
        for (int c = 0; c < MNIST_CLASSES; c++)
            row[c] = (double)test->confusion[r][c];
        cJSON_AddItemToArray(cm, cJSON_CreateDoubleArray(row, MNIST_CLASSES));
    }
    cJSON_AddStringToObject(t, "confusion_matrix_layout", "rows = true label, columns = predicted");

    cJSON *hist = cJSON_AddArrayToObject(root, "history");
    for (int i = 0; i < h->count; i++) {
        const EpochStats *e = &h->items[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "epoch", e->epoch);
        add_num(o, "train_loss", e->train_loss);
        add_num(o, "train_accuracy", e->train_acc);
        add_num(o, "val_loss", e->val_loss);
        add_num(o, "val_accuracy", e->val_acc);
        add_num(o, "seconds", e->seconds);
        add_num(o, "samples_per_s", e->samples_per_s);
        cJSON_AddItemToArray(hist, o);
    }

    cJSON *r = cJSON_AddObjectToObject(root, "run");
    cJSON_AddNumberToObject(r, "ranks", run->ranks);
    cJSON_AddNumberToObject(r, "threads_per_rank", run->threads);
    cJSON_AddStringToObject(r, "layers", run->layers);
    cJSON_AddNumberToObject(r, "num_params", (double)run->num_params);
    cJSON_AddStringToObject(r, "train_data", run->train_path);
    cJSON_AddNumberToObject(r, "train_rows", (double)run->train_rows);
    cJSON_AddNumberToObject(r, "val_rows", (double)run->val_rows);
    cJSON_AddNumberToObject(r, "test_rows", (double)run->test_rows);
    cJSON_AddNumberToObject(r, "epochs", run->epochs_run);
    add_num(r, "wall_seconds", run->wall_s);
    add_num(r, "train_seconds", run->train_s);
    cJSON_AddStringToObject(r, "checkpoint", run->checkpoint ? run->checkpoint : "");
    cJSON *cfg = cJSON_Parse(run->config_json ? run->config_json : "{}");
    cJSON_AddItemToObject(root, "config", cfg ? cfg : cJSON_CreateObject());
    return root;
}

static void write_markdown(FILE *f, const Metrics *test, const Scores *s, const History *h,
                           const RunInfo *run)
{
    fprintf(f, "# mnist-dist report\n\n");
    fprintf(f, "**Test accuracy: %.2f%%** (%lld of %lld), mean loss %.4f, on `%s`.\n\n",
            100 * s->accuracy, (long long)s->correct, (long long)s->count, s->loss,
            run->test_path);
    fprintf(f, "## Run\n\n| | |\n|---|---|\n");
    fprintf(f, "| ranks × threads | %d × %d |\n", run->ranks, run->threads);
    fprintf(f, "| layers | 784 → %s → 10 (%lld parameters) |\n", run->layers,
            (long long)run->num_params);
    fprintf(f, "| training data | `%s`: %lld rows for training, %lld held out for validation |\n",
            run->train_path, (long long)run->train_rows, (long long)run->val_rows);
    fprintf(f, "| epochs | %d |\n", run->epochs_run);
    fprintf(f, "| wall time | %.1f s (%.1f s in training steps) |\n", run->wall_s, run->train_s);
    fprintf(f, "| checkpoint | `%s` |\n\n", run->checkpoint ? run->checkpoint : "");

    fprintf(f, "## Per-class scores (test)\n\n| class | precision | recall | F1 | support |\n"
               "|---:|---:|---:|---:|---:|\n");
    for (int c = 0; c < MNIST_CLASSES; c++)
        fprintf(f, "| %d | %.4f | %.4f | %.4f | %lld |\n", c, s->precision[c], s->recall[c],
                s->f1[c], (long long)s->support[c]);
    fprintf(f, "| macro avg | %.4f | %.4f | %.4f | %lld |\n", s->macro_precision,
            s->macro_recall, s->macro_f1, (long long)s->count);
    fprintf(f, "| weighted avg | %.4f | %.4f | %.4f | %lld |\n\n", s->weighted_precision,
            s->weighted_recall, s->weighted_f1, (long long)s->count);

    fprintf(f, "## Confusion matrix (rows: true label, columns: predicted)\n\n| |");
    for (int c = 0; c < MNIST_CLASSES; c++)
        fprintf(f, " %d |", c);
    fprintf(f, "\n|---|");
    for (int c = 0; c < MNIST_CLASSES; c++)
        fprintf(f, "---:|");
    fputc('\n', f);
    for (int r = 0; r < MNIST_CLASSES; r++) {
        fprintf(f, "| **%d** |", r);
        for (int c = 0; c < MNIST_CLASSES; c++)
            fprintf(f, r == c ? " **%lld** |" : " %lld |", (long long)test->confusion[r][c]);
        fputc('\n', f);
    }

    fprintf(f, "\n## Training history\n\n| epoch | train loss | train acc | val loss | val acc "
               "| seconds | samples/s |\n|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < h->count; i++) {
        const EpochStats *e = &h->items[i];
        fprintf(f, "| %d | %.4f | %.4f | ", e->epoch, e->train_loss, e->train_acc);
        if (isfinite(e->val_loss))
            fprintf(f, "%.4f | %.4f | ", e->val_loss, e->val_acc);
        else
            fprintf(f, "– | – | ");
        fprintf(f, "%.2f | %.0f |\n", e->seconds, e->samples_per_s);
    }
}

/* Opens a temp file for path; returns the FILE and fills tmp. */
static FILE *open_tmp(const char *path, char *tmp, size_t size, Error *e)
{
    if (path_tmp_name(tmp, size, path, e))
        return NULL;
    FILE *f = fopen(tmp, "w");
    if (!f)
        err_set(e, "%s: cannot create: %s", tmp, strerror(errno));
    return f;
}

/* Closes f and renames tmp to path, or removes tmp when anything failed. */
static int close_commit(FILE *f, const char *tmp, const char *path, Error *e)
{
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        unlink(tmp);
        return err_set(e, "%s: write failed (disk full?)", path);
    }
    return path_commit(tmp, path, e);
}

int report_write(const char *dir, const Metrics *test, const History *h, const RunInfo *run,
                 Error *e)
{
    if (path_mkdirs(dir, e))
        return -1;
    Scores s;
    metrics_scores(test, &s);
    char path[4096], tmp[4200];
    cJSON *root = metrics_json(test, &s, h, run);
    char *text = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!text)
        return err_set(e, "out of memory formatting metrics.json");
    int rc = str_fmt(path, sizeof path, "%s/metrics.json", dir) ? err_set(e, "%s: path too long", dir) : 0;
    FILE *f = rc ? NULL : open_tmp(path, tmp, sizeof tmp, e);
    if (!f)
        rc = -1;
    if (rc == 0) {
        fputs(text, f);
        fputc('\n', f);
        rc = close_commit(f, tmp, path, e);
    }
    free(text);
    if (rc)
        return rc;
    if (str_fmt(path, sizeof path, "%s/report.md", dir))
        return err_set(e, "%s: path too long", dir);
    if (!(f = open_tmp(path, tmp, sizeof tmp, e)))
        return -1;
    write_markdown(f, test, &s, h, run);
    return close_commit(f, tmp, path, e);
}

/* report: metrics from a confusion matrix, and the run's metrics.json
 * (via cJSON, so strings are escaped correctly) and report.md.
 * Writes only where it is told, through temp + rename; no MPI. */
#include "mnist/report.h"

#include <stdarg.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mnist/plot.h"

void metrics_add(Metrics *m, const uint8_t *labels, const int *pred, int B)
{
    for (int i = 0; i < B; i++)
        m->confusion[labels[i]][pred[i]]++;
}

void mistakes_insert(Mistake *list, int *n, int n_max, const Mistake *m)
{
    int pos = *n;
    /* Most confident first; on equal confidence the lower row comes first, so
     * the list does not depend on the order ranks arrive in. */
    while (pos > 0 && (list[pos - 1].prob < m->prob ||
                       (list[pos - 1].prob == m->prob && list[pos - 1].index > m->index)))
        pos--;
    if (pos >= n_max)
        return;
    int last = *n < n_max ? *n : n_max - 1;
    memmove(list + pos + 1, list + pos, sizeof *list * (size_t)(last - pos));
    list[pos] = *m;
    if (*n < n_max)
        (*n)++;
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
    if (run->best_epoch > 0)
        cJSON_AddNumberToObject(r, "best_epoch", run->best_epoch);
    add_num(r, "wall_seconds", run->wall_s);
    add_num(r, "train_seconds", run->train_s);
    cJSON_AddStringToObject(r, "checkpoint", run->checkpoint ? run->checkpoint : "");
    cJSON_AddStringToObject(r, "command", run->command);
    cJSON_AddStringToObject(r, "optimizer", run->optimizer);
    cJSON_AddStringToObject(r, "software", run->versions);
    add_num(r, "samples_per_s_median", run->samples_per_s);
    if (run->rss_mb) {
        cJSON *o = cJSON_AddObjectToObject(r, "peak_rss_mb_per_rank");
        add_num(o, "min", run->rss_mb[0]);
        add_num(o, "mean", run->rss_mb[1]);
        add_num(o, "max", run->rss_mb[2]);
    }
    if (run->phase_ms) {
        static const char *names[] = {"data", "forward", "backward", "allreduce", "update"};
        cJSON *ph = cJSON_AddObjectToObject(r, "ms_per_step");
        for (int k = 0; k < 5; k++) {
            cJSON *o = cJSON_AddObjectToObject(ph, names[k]);
            add_num(o, "min", run->phase_ms[3 * k]);
            add_num(o, "mean", run->phase_ms[3 * k + 1]);
            add_num(o, "max", run->phase_ms[3 * k + 2]);
        }
    }
    cJSON *mk = cJSON_AddArrayToObject(t, "most_confident_mistakes");
    for (int i = 0; i < run->n_mistakes; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "row", (double)run->mistakes[i].index);
        cJSON_AddNumberToObject(o, "label", run->mistakes[i].label);
        cJSON_AddNumberToObject(o, "predicted", run->mistakes[i].pred);
        add_num(o, "probability", run->mistakes[i].prob);
        cJSON_AddItemToArray(mk, o);
    }
    cJSON *cfg = cJSON_Parse(run->config_json ? run->config_json : "{}");
    cJSON_AddItemToObject(root, "config", cfg ? cfg : cJSON_CreateObject());
    return root;
}

/* ---- human-readable report: tables rendered as Markdown or HTML -------- */

#define TABLE_MAX_ROWS 64
#define TABLE_MAX_COLS 12

typedef struct Table {
    int rows, cols;   /* row 0 is the header */
    int bold_diag;    /* confusion matrix: emphasise cells where row == column */
    int first_col_th; /* first column is a row header */
    char cell[TABLE_MAX_ROWS][TABLE_MAX_COLS][160];
} Table;

static void cell_set(Table *t, int r, int c, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void cell_set(Table *t, int r, int c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->cell[r][c], sizeof t->cell[r][c], fmt, ap);
    va_end(ap);
    if (r >= t->rows)
        t->rows = r + 1;
    if (c >= t->cols)
        t->cols = c + 1;
}

static void html_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

static void table_md(FILE *f, const Table *t)
{
    for (int r = 0; r < t->rows; r++) {
        fputc('|', f);
        for (int c = 0; c < t->cols; c++) {
            const int bold = (t->bold_diag && r > 0 && c == r) || (t->first_col_th && c == 0 && r > 0);
            fprintf(f, bold ? " **%s** |" : " %s |", t->cell[r][c]);
        }
        fputc('\n', f);
        if (r == 0) {
            fputc('|', f);
            for (int c = 0; c < t->cols; c++)
                fputs(c == 0 ? "---|" : "---:|", f);
            fputc('\n', f);
        }
    }
    fputc('\n', f);
}

static void table_html(FILE *f, const Table *t)
{
    fputs("<table>\n", f);
    for (int r = 0; r < t->rows; r++) {
        fputs("<tr>", f);
        for (int c = 0; c < t->cols; c++) {
            const int th = r == 0 || (t->first_col_th && c == 0);
            const int diag = t->bold_diag && r > 0 && c == r;
            fputs(th ? "<th>" : diag ? "<td class=\"diag\">" : "<td>", f);
            html_text(f, t->cell[r][c]);
            fputs(th ? "</th>" : "</td>", f);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
}

static void table_scores(Table *t, const Scores *s)
{
    memset(t, 0, sizeof *t);
    const char *head[] = {"class", "precision", "recall", "F1", "support"};
    for (int c = 0; c < 5; c++)
        cell_set(t, 0, c, "%s", head[c]);
    for (int k = 0; k < MNIST_CLASSES; k++) {
        cell_set(t, k + 1, 0, "%d", k);
        cell_set(t, k + 1, 1, "%.4f", s->precision[k]);
        cell_set(t, k + 1, 2, "%.4f", s->recall[k]);
        cell_set(t, k + 1, 3, "%.4f", s->f1[k]);
        cell_set(t, k + 1, 4, "%lld", (long long)s->support[k]);
    }
    const double avg[2][3] = {{s->macro_precision, s->macro_recall, s->macro_f1},
                              {s->weighted_precision, s->weighted_recall, s->weighted_f1}};
    for (int a = 0; a < 2; a++) {
        int r = MNIST_CLASSES + 1 + a;
        cell_set(t, r, 0, "%s", a ? "weighted avg" : "macro avg");
        for (int k = 0; k < 3; k++)
            cell_set(t, r, k + 1, "%.4f", avg[a][k]);
        cell_set(t, r, 4, "%lld", (long long)s->count);
    }
    t->first_col_th = 1;
}

static void table_confusion(Table *t, const Metrics *m)
{
    memset(t, 0, sizeof *t);
    cell_set(t, 0, 0, "true \\ predicted");
    for (int c = 0; c < MNIST_CLASSES; c++)
        cell_set(t, 0, c + 1, "%d", c);
    for (int r = 0; r < MNIST_CLASSES; r++) {
        cell_set(t, r + 1, 0, "%d", r);
        for (int c = 0; c < MNIST_CLASSES; c++)
            cell_set(t, r + 1, c + 1, "%lld", (long long)m->confusion[r][c]);
    }
    /* the diagonal of the counts sits at column r + 1 of row r + 1 */
    t->bold_diag = 1;
    t->first_col_th = 1;
}

/* The last TABLE_MAX_ROWS - 1 epochs of the history. */
static void table_history(Table *t, const History *h)
{
    memset(t, 0, sizeof *t);
    const char *head[] = {"epoch", "train loss", "train acc", "val loss", "val acc", "seconds", "samples/s"};
    for (int c = 0; c < 7; c++)
        cell_set(t, 0, c, "%s", head[c]);
    int from = h->count > TABLE_MAX_ROWS - 1 ? h->count - (TABLE_MAX_ROWS - 1) : 0;
    for (int i = from, r = 1; i < h->count; i++, r++) {
        const EpochStats *e = &h->items[i];
        cell_set(t, r, 0, "%d", e->epoch);
        cell_set(t, r, 1, "%.4f", e->train_loss);
        cell_set(t, r, 2, "%.4f", e->train_acc);
        if (isfinite(e->val_loss)) {
            cell_set(t, r, 3, "%.4f", e->val_loss);
            cell_set(t, r, 4, "%.4f", e->val_acc);
        } else {
            cell_set(t, r, 3, "–");
            cell_set(t, r, 4, "–");
        }
        cell_set(t, r, 5, "%.2f", e->seconds);
        cell_set(t, r, 6, "%.0f", e->samples_per_s);
    }
}

static void table_run(Table *t, const RunInfo *run)
{
    memset(t, 0, sizeof *t);
    int r = 0;
    cell_set(t, r, 0, "%s", "");
    cell_set(t, r++, 1, "%s", "");
    const int trained = strcmp(run->command, "train") == 0;
    cell_set(t, r, 0, "command");
    cell_set(t, r++, 1, "mnist-dist %s", run->command);
    cell_set(t, r, 0, "ranks × threads");
    cell_set(t, r++, 1, "%d × %d", run->ranks, run->threads);
    cell_set(t, r, 0, "layers");
    cell_set(t, r++, 1, "%s (%lld parameters)", run->layers, (long long)run->num_params);
    if (trained) {
        cell_set(t, r, 0, "training data");
        cell_set(t, r++, 1, "%s: %lld rows for training, %lld held out for validation",
                 run->train_path, (long long)run->train_rows, (long long)run->val_rows);
        cell_set(t, r, 0, "optimizer");
        cell_set(t, r++, 1, "%s", run->optimizer);
    }
    cell_set(t, r, 0, "test data");
    cell_set(t, r++, 1, "%s: %lld rows", run->test_path, (long long)run->test_rows);
    cell_set(t, r, 0, "epochs");
    if (run->best_epoch > 0)
        cell_set(t, r++, 1, "%d (early stopping: tested the best epoch, %d, by validation loss)",
                 run->epochs_run, run->best_epoch);
    else
        cell_set(t, r++, 1, "%d", run->epochs_run);
    if (run->augment && run->augment[0] && strcmp(run->augment, "off") != 0) {
        cell_set(t, r, 0, "augmentation");
        cell_set(t, r++, 1, "%s", run->augment);
    }
    cell_set(t, r, 0, "wall time");
    if (trained)
        cell_set(t, r++, 1, "%.1f s (%.1f s in training steps)", run->wall_s, run->train_s);
    else
        cell_set(t, r++, 1, "%.1f s", run->wall_s);
    if (run->samples_per_s > 0) {
        cell_set(t, r, 0, "throughput");
        cell_set(t, r++, 1, "%.0f training samples/s (median over epochs)", run->samples_per_s);
    }
    if (run->phase_ms) {
        const double *p = run->phase_ms;
        cell_set(t, r, 0, "ms per step");
        cell_set(t, r++, 1,
                 "data %.3f, forward %.3f, backward %.3f, allreduce %.3f, update %.3f "
                 "(mean over ranks; slowest rank %.3f in allreduce)",
                 p[1], p[4], p[7], p[10], p[13], p[11]);
    }
    cell_set(t, r, 0, "checkpoint");
    cell_set(t, r++, 1, "%s", run->checkpoint);
    cell_set(t, r, 0, "software");
    cell_set(t, r++, 1, "%s", run->versions);
    t->first_col_th = 1;
}

typedef struct Chart {
    const char *file, *title, *alt;
    int present;
} Chart;

static const char BASE64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Writes the PNG at path into f as a base64 data URI; -1 if unreadable. */
static int embed_png(FILE *f, const char *path)
{
    FILE *in = fopen(path, "rb");
    if (!in)
        return -1;
    fputs("data:image/png;base64,", f);
    unsigned char b[3];
    size_t n;
    while ((n = fread(b, 1, 3, in)) > 0) {
        unsigned v = (unsigned)b[0] << 16 | (n > 1 ? (unsigned)b[1] << 8 : 0) | (n > 2 ? b[2] : 0);
        fputc(BASE64[v >> 18 & 63], f);
        fputc(BASE64[v >> 12 & 63], f);
        fputc(n > 1 ? BASE64[v >> 6 & 63] : '=', f);
        fputc(n > 2 ? BASE64[v & 63] : '=', f);
    }
    int bad = ferror(in);
    fclose(in);
    return bad ? -1 : 0;
}

static const char CSS[] =
    "body{font-family:system-ui,'DejaVu Sans',sans-serif;max-width:1240px;margin:24px auto;"
    "padding:0 16px;color:#1a1a1a;line-height:1.45}"
    "h1{margin-bottom:4px}h2{margin-top:36px;border-bottom:1px solid #ddd;padding-bottom:4px}"
    ".headline{font-size:1.3em}.headline b{color:#0b5394}"
    "img{max-width:100%;height:auto;border:1px solid #eee}"
    "table{border-collapse:collapse;margin:12px 0;font-size:0.92em}"
    "th,td{border:1px solid #d0d0d0;padding:4px 10px;text-align:right}"
    "th{background:#f3f5f8}td.diag{font-weight:bold;background:#e8f0fb}"
    ".run td{text-align:left}.run th{text-align:left}"
    ".cols{display:flex;gap:24px;flex-wrap:wrap;align-items:flex-start}";

static void write_html(FILE *f, const Metrics *test, const Scores *s, const History *h,
                       const RunInfo *run, const char *dir, const Chart *charts, int n_charts)
{
    Table *t = malloc(sizeof *t);
    if (!t) {
        fputs("out of memory", f);
        return;
    }
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
               "<title>mnist-dist report: %.2f%%</title>\n<style>%s</style></head><body>\n",
            100 * s->accuracy, CSS);
    fputs("<h1>mnist-dist report</h1>\n<p class=\"headline\">Test accuracy <b>", f);
    fprintf(f, "%.2f%%</b> (%lld of %lld), mean loss %.4f, on <code>", 100 * s->accuracy,
            (long long)s->correct, (long long)s->count, s->loss);
    html_text(f, run->test_path);
    fputs("</code></p>\n", f);
    char path[4200];
    for (int i = 0; i < n_charts; i++) {
        if (!charts[i].present)
            continue;
        fprintf(f, "<h2>%s</h2>\n<img alt=\"%s\" src=\"", charts[i].title, charts[i].alt);
        snprintf(path, sizeof path, "%s/%s", dir, charts[i].file);
        embed_png(f, path);
        fputs("\">\n", f);
        if (strcmp(charts[i].file, "class_scores.png") == 0) {
            table_scores(t, s);
            table_html(f, t);
        } else if (strcmp(charts[i].file, "confusion.png") == 0) {
            fputs("<details><summary>counts as a table</summary>\n", f);
            table_confusion(t, test);
            table_html(f, t);
            fputs("</details>\n", f);
        }
    }
    fputs("<h2>Run</h2>\n<div class=\"run\">", f);
    table_run(t, run);
    table_html(f, t);
    fputs("</div>\n", f);
    if (h->count > 0) {
        fputs("<h2>Training history</h2>\n", f);
        table_history(t, h);
        table_html(f, t);
    }
    fputs("</body></html>\n", f);
    free(t);
}

static void write_markdown(FILE *f, const Metrics *test, const Scores *s, const History *h,
                           const RunInfo *run, const Chart *charts, int n_charts)
{
    Table *t = malloc(sizeof *t);
    if (!t)
        return;
    fprintf(f, "# mnist-dist report\n\n");
    fprintf(f, "**Test accuracy: %.2f%%** (%lld of %lld), mean loss %.4f, on `%s`.\n\n",
            100 * s->accuracy, (long long)s->correct, (long long)s->count, s->loss,
            run->test_path);
    for (int i = 0; i < n_charts; i++)
        if (charts[i].present)
            fprintf(f, "![%s](%s)\n\n", charts[i].alt, charts[i].file);
    fprintf(f, "## Run\n\n");
    table_run(t, run);
    table_md(f, t);
    fprintf(f, "## Per-class scores (test)\n\n");
    table_scores(t, s);
    table_md(f, t);
    fprintf(f, "## Confusion matrix (rows: true label, columns: predicted)\n\n");
    table_confusion(t, test);
    table_md(f, t);
    if (h->count > 0) {
        fprintf(f, "## Training history\n\n");
        table_history(t, h);
        table_md(f, t);
    }
    free(t);
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

    Chart charts[] = {
        {"curves.png", "Loss and accuracy per epoch", "loss and accuracy per epoch, train and validation", h->count > 0},
        {"confusion.png", "Confusion matrix", "confusion matrix heatmap, rows true label, columns predicted", 1},
        {"class_scores.png", "Per-class precision, recall and F1", "per-class precision, recall and F1 bars", 1},
        {"mistakes.png", "Most confident mistakes", "grid of the most confidently misclassified test digits", 1},
        {"augmented.png", "Augmented training samples", "original digits and augmented versions", run->aug_rows > 0},
    };
    const int n_charts = (int)(sizeof charts / sizeof charts[0]);
    for (int i = 0; i < n_charts && rc == 0; i++) {
        if (!charts[i].present)
            continue;
        if (str_fmt(path, sizeof path, "%s/%s", dir, charts[i].file))
            return err_set(e, "%s: path too long", dir);
        switch (i) {
        case 0: rc = plot_curves(path, h, e); break;
        case 1: rc = plot_confusion(path, test->confusion, e); break;
        case 2: rc = plot_class_scores(path, &s, e); break;
        case 3: rc = plot_mistakes(path, run->mistakes, run->n_mistakes, e); break;
        default:
            rc = plot_augmented(path, run->aug_originals, run->aug_images, run->aug_rows,
                                run->aug_per, e);
            break;
        }
    }
    if (rc)
        return rc;

    if (str_fmt(path, sizeof path, "%s/report.md", dir))
        return err_set(e, "%s: path too long", dir);
    if (!(f = open_tmp(path, tmp, sizeof tmp, e)))
        return -1;
    write_markdown(f, test, &s, h, run, charts, n_charts);
    if (close_commit(f, tmp, path, e))
        return -1;
    if (str_fmt(path, sizeof path, "%s/report.html", dir))
        return err_set(e, "%s: path too long", dir);
    if (!(f = open_tmp(path, tmp, sizeof tmp, e)))
        return -1;
    write_html(f, test, &s, h, run, dir, charts, n_charts);
    return close_commit(f, tmp, path, e);
}

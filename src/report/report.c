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

/* JSON has no NaN: missing values (no validation split) become null. */
static void add_num(cJSON *o, const char *name, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, name, v);
    else
        cJSON_AddNullToObject(o, name);
}

/* One layer's description as written in a layer list ("conv:32x3x3/s1/p0"). */
static void layer_text(char *buf, size_t size, const Layer *l)
{
    ModelSpec one = {.count = 1};
    one.layers[0] = l->spec;
    if (model_spec_format(buf, size, &one))
        snprintf(buf, size, "%s", layer_ops(l->spec.kind)->name);
}

/* A layer's parameter count (its tensors' sizes, without the padding). */
static size_t layer_params(const Layer *l)
{
    size_t params = 0;
    for (int k = 0; k < l->num_tensors; k++) {
        size_t n = 1;
        for (int d = 0; d < l->tensors[k].ndim; d++)
            n *= (size_t)l->tensors[k].dims[d];
        params += n;
    }
    return params;
}

/* Each layer: its spec, output shape [h, w, c] and parameter count. */
static void layers_json(cJSON *arr, const Model *m)
{
    for (int i = 0; i < m->num_layers; i++) {
        const Layer *l = &m->layers[i];
        char text[96];
        layer_text(text, sizeof text, l);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "layer", text);
        const int shape[3] = {l->out.h, l->out.w, l->out.c};
        cJSON_AddItemToObject(o, "output_shape", cJSON_CreateIntArray(shape, 3));
        cJSON_AddNumberToObject(o, "parameters", (double)layer_params(l));
        cJSON_AddItemToArray(arr, o);
    }
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
    for (int c = 0; c < s->classes; c++) {
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
    const int C = test->classes;
    for (int r = 0; r < C; r++) {
        double row[REPORT_MAX_CLASSES];
        for (int c = 0; c < C; c++)
            row[c] = (double)test->confusion[(size_t)r * C + c];
        cJSON_AddItemToArray(cm, cJSON_CreateDoubleArray(row, C));
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
    if (run->model)
        layers_json(cJSON_AddArrayToObject(r, "layer_table"), run->model);
    cJSON_AddStringToObject(r, "train_data", run->train_path);
    cJSON_AddNumberToObject(r, "train_rows", (double)run->train_rows);
    cJSON_AddNumberToObject(r, "val_rows", (double)run->val_rows);
    cJSON_AddNumberToObject(r, "test_rows", (double)run->test_rows);
    cJSON_AddNumberToObject(r, "epochs", run->epochs_run);
    if (run->best_epoch > 0)
        cJSON_AddNumberToObject(r, "best_epoch", run->best_epoch);
    add_num(r, "wall_seconds", run->wall_total_s > 0 ? run->wall_total_s : run->wall_s);
    add_num(r, "wall_seconds_this_invocation", run->wall_s);
    cJSON_AddNumberToObject(r, "invocations", run->invocations > 0 ? run->invocations : 1);
    add_num(r, "train_seconds", run->train_s);
    cJSON_AddStringToObject(r, "checkpoint", run->checkpoint ? run->checkpoint : "");
    if (run->checkpoint_last && run->checkpoint_last[0])
        cJSON_AddStringToObject(r, "checkpoint_last_epoch", run->checkpoint_last);
    cJSON_AddNumberToObject(r, "rows_not_reached_per_epoch", (double)run->rows_not_reached);
    if (run->schedule)
        cJSON_AddStringToObject(r, "schedule", run->schedule);
    if (run->regularization)
        cJSON_AddStringToObject(r, "regularization", run->regularization);
    if (run->standardization)
        cJSON_AddStringToObject(r, "standardization", run->standardization);
    if (run->augment && run->augment[0])
        cJSON_AddStringToObject(r, "augmentation", run->augment);
    cJSON *segs = run->segments_json ? cJSON_Parse(run->segments_json) : NULL;
    if (segs)
        cJSON_AddItemToObject(r, "segments", segs);
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

#define TABLE_MAX_ROWS 64 /* the history shows its last 63 epochs */
#define CELL_BYTES 160 /* a cell's text, unless its table asks for more */

typedef struct Table {
    int rows, cols;         /* row 0 is the header */
    int cap_rows, cap_cols; /* what cells holds */
    size_t cell_bytes;
    int bold_diag;          /* confusion matrix: emphasise cells where row == column */
    int first_col_th;       /* first column is a row header */
    char *cells;            /* cap_rows x cap_cols cells of CELL_BYTES */
} Table;

/* An empty table of up to rows x cols cells of cell_bytes (0: CELL_BYTES);
 * 0 or -1 when out of memory. */
static int table_init_cells(Table *t, int rows, int cols, size_t cell_bytes)
{
    memset(t, 0, sizeof *t);
    t->cell_bytes = cell_bytes ? cell_bytes : CELL_BYTES;
    t->cells = calloc((size_t)rows * (size_t)cols, t->cell_bytes);
    t->cap_rows = rows, t->cap_cols = cols;
    return t->cells ? 0 : -1;
}

static int table_init(Table *t, int rows, int cols) { return table_init_cells(t, rows, cols, 0); }

static const char *cell(const Table *t, int r, int c)
{
    return t->cells + ((size_t)r * (size_t)t->cap_cols + (size_t)c) * t->cell_bytes;
}

static void cell_set(Table *t, int r, int c, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void cell_set(Table *t, int r, int c, const char *fmt, ...)
{
    if (r >= t->cap_rows || c >= t->cap_cols)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf((char *)cell(t, r, c), t->cell_bytes, fmt, ap);
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
            fprintf(f, bold ? " **%s** |" : " %s |", cell(t, r, c));
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
            html_text(f, cell(t, r, c));
            fputs(th ? "</th>" : "</td>", f);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
}

static int table_scores(Table *t, const Scores *s)
{
    if (table_init(t, s->classes + 3, 5))
        return -1;
    const char *head[] = {"class", "precision", "recall", "F1", "support"};
    for (int c = 0; c < 5; c++)
        cell_set(t, 0, c, "%s", head[c]);
    for (int k = 0; k < s->classes; k++) {
        cell_set(t, k + 1, 0, "%d", k);
        cell_set(t, k + 1, 1, "%.4f", s->precision[k]);
        cell_set(t, k + 1, 2, "%.4f", s->recall[k]);
        cell_set(t, k + 1, 3, "%.4f", s->f1[k]);
        cell_set(t, k + 1, 4, "%lld", (long long)s->support[k]);
    }
    const double avg[2][3] = {{s->macro_precision, s->macro_recall, s->macro_f1},
                              {s->weighted_precision, s->weighted_recall, s->weighted_f1}};
    for (int a = 0; a < 2; a++) {
        int r = s->classes + 1 + a;
        cell_set(t, r, 0, "%s", a ? "weighted avg" : "macro avg");
        for (int k = 0; k < 3; k++)
            cell_set(t, r, k + 1, "%.4f", avg[a][k]);
        cell_set(t, r, 4, "%lld", (long long)s->count);
    }
    t->first_col_th = 1;
    return 0;
}

static int table_confusion(Table *t, const Metrics *m)
{
    const int C = m->classes;
    if (table_init(t, C + 1, C + 1))
        return -1;
    cell_set(t, 0, 0, "true \\ predicted");
    for (int c = 0; c < C; c++)
        cell_set(t, 0, c + 1, "%d", c);
    for (int r = 0; r < C; r++) {
        cell_set(t, r + 1, 0, "%d", r);
        for (int c = 0; c < C; c++)
            cell_set(t, r + 1, c + 1, "%lld", (long long)m->confusion[(size_t)r * C + c]);
    }
    /* the diagonal of the counts sits at column r + 1 of row r + 1 */
    t->bold_diag = 1;
    t->first_col_th = 1;
    return 0;
}

/* The last TABLE_MAX_ROWS - 1 epochs of the history. */
/* One setting's value as text ("0.001", "true", "cosine"). */
static void json_value_text(char *buf, size_t size, const cJSON *v)
{
    if (cJSON_IsString(v))
        snprintf(buf, size, "%s", v->valuestring);
    else if (cJSON_IsBool(v))
        snprintf(buf, size, "%s", cJSON_IsTrue(v) ? "on" : "off");
    else if (cJSON_IsNumber(v))
        snprintf(buf, size, "%.9g", v->valuedouble);
    else
        snprintf(buf, size, "?");
}

/* The settings history: one row per invocation that trained the run, its
 * epochs, its settings (the first in full, then what changed) and command. */
static int table_segments(Table *t, const cJSON *segs)
{
    const int n = cJSON_GetArraySize(segs);
    if (table_init_cells(t, n + 1, 3, 2048))
        return -1;
    cell_set(t, 0, 0, "epochs");
    cell_set(t, 0, 1, "settings (then: what changed)");
    cell_set(t, 0, 2, "command");
    const cJSON *prev = NULL;
    for (int i = 0; i < n; i++) {
        const cJSON *g = cJSON_GetArrayItem(segs, i);
        const cJSON *set = cJSON_GetObjectItem(g, "settings");
        const int a = cJSON_GetObjectItem(g, "first_epoch") ? cJSON_GetObjectItem(g, "first_epoch")->valueint : 0;
        const int b = cJSON_GetObjectItem(g, "last_epoch") ? cJSON_GetObjectItem(g, "last_epoch")->valueint : 0;
        const cJSON *step = cJSON_GetObjectItem(g, "from_step");
        if (step && step->valueint > 0)
            cell_set(t, i + 1, 0, "%d (from step %d)-%d", a, step->valueint + 1, b);
        else
            cell_set(t, i + 1, 0, "%d-%d", a, b);
        char text[2048] = "", v[64];
        size_t o = 0;
        for (const cJSON *it = set ? set->child : NULL; it; it = it->next) {
            const cJSON *was = prev ? cJSON_GetObjectItem(prev, it->string) : NULL;
            if (was && cJSON_Compare(was, it, 1))
                continue;
            json_value_text(v, sizeof v, it);
            if (o < sizeof text)
                o += (size_t)snprintf(text + o, sizeof text - o, "%s%s %s", o ? ", " : "",
                                      it->string, v);
        }
        cell_set(t, i + 1, 1, "%s", o ? text : "(no change)");
        const cJSON *cmd = cJSON_GetObjectItem(g, "command");
        cell_set(t, i + 1, 2, "%s", cJSON_IsString(cmd) ? cmd->valuestring : "");
        prev = set;
    }
    return 0;
}

static int table_history(Table *t, const History *h)
{
    if (table_init(t, TABLE_MAX_ROWS, 7))
        return -1;
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
    return 0;
}

/* The layers with their output shapes and parameter counts; ReLU and
 * dropout folded into the previous layer's output pass are marked. */
static int table_layers(Table *t, const Model *m)
{
    if (table_init(t, m->num_layers + 3, 4))
        return -1;
    int r = 0;
    cell_set(t, r, 0, "#");
    cell_set(t, r, 1, "layer");
    cell_set(t, r, 2, "output (h x w x c)");
    cell_set(t, r++, 3, "parameters");
    cell_set(t, r, 0, "0");
    cell_set(t, r, 1, "input");
    cell_set(t, r, 2, "%d x %d x %d", m->input.h, m->input.w, m->input.c);
    cell_set(t, r++, 3, "0");
    for (int i = 0; i < m->num_layers; i++) {
        const Layer *l = &m->layers[i];
        char text[96];
        layer_text(text, sizeof text, l);
        cell_set(t, r, 0, "%d", i + 1);
        cell_set(t, r, 1, "%s%s", text, l->fused ? " (fused into the layer before)" : "");
        cell_set(t, r, 2, "%d x %d x %d", l->out.h, l->out.w, l->out.c);
        cell_set(t, r++, 3, "%zu", layer_params(l));
    }
    cell_set(t, r, 1, "total");
    cell_set(t, r++, 3, "%zu", m->num_params);
    t->rows = r;
    return 0;
}

static int table_run(Table *t, const RunInfo *run)
{
    if (table_init_cells(t, 40, 2, 1024))
        return -1;
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
        const char *rows[3][2] = {{"learning rate", run->schedule},
                                  {"regularisation", run->regularization},
                                  {"input standardisation", run->standardization}};
        for (int k = 0; k < 3; k++)
            if (rows[k][1] && rows[k][1][0]) {
                cell_set(t, r, 0, "%s", rows[k][0]);
                cell_set(t, r++, 1, "%s", rows[k][1]);
            }
        if (run->rows_not_reached > 0) {
            cell_set(t, r, 0, "rows not reached");
            cell_set(t, r++, 1, "%lld training rows per epoch (the global batch does not divide "
                                "the shards' rows)", (long long)run->rows_not_reached);
        }
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
    if (trained && run->invocations > 1)
        cell_set(t, r++, 1, "%.1f s over %d invocations (this one %.1f s); %.1f s in training "
                            "steps", run->wall_total_s, run->invocations, run->wall_s,
                 run->train_s);
    else if (trained)
        cell_set(t, r++, 1, "%.1f s (%.1f s in training steps)", run->wall_s, run->train_s);
    else
        cell_set(t, r++, 1, "%.1f s", run->wall_s);
    if (run->samples_per_s > 0) {
        cell_set(t, r, 0, "throughput");
        if (run->epochs_run > 2)
            cell_set(t, r++, 1, "%.0f training samples/s (median over epochs 2-%d; epoch 1 "
                                "pays for warm-up)", run->samples_per_s, run->epochs_run);
        else if (run->epochs_run == 2)
            cell_set(t, r++, 1, "%.0f training samples/s (epoch 2; epoch 1 pays for warm-up)",
                     run->samples_per_s);
        else
            cell_set(t, r++, 1, "%.0f training samples/s (epoch 1)", run->samples_per_s);
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
    if (run->checkpoint_last && run->checkpoint_last[0])
        cell_set(t, r++, 1, "%s (tested; the last epoch's: %s)", run->checkpoint,
                 run->checkpoint_last);
    else
        cell_set(t, r++, 1, "%s", run->checkpoint);
    cell_set(t, r, 0, "software");
    cell_set(t, r++, 1, "%s", run->versions);
    t->first_col_th = 1;
    return 0;
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

/* Prints t (as HTML or Markdown) unless building it failed (built != 0),
 * then frees its cells. */
static void table_out(FILE *f, Table *t, int built, int html)
{
    if (built == 0)
        (html ? table_html : table_md)(f, t);
    else
        fputs(html ? "<p>(out of memory for this table)</p>\n" : "(out of memory for this table)\n\n", f);
    free(t->cells);
    t->cells = NULL;
}

static void write_html(FILE *f, const Metrics *test, const Scores *s, const History *h,
                       const RunInfo *run, const char *dir, const Chart *charts, int n_charts)
{
    Table t;
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
            table_out(f, &t, table_scores(&t, s), 1);
        } else if (strcmp(charts[i].file, "confusion.png") == 0) {
            fputs("<details><summary>counts as a table</summary>\n", f);
            table_out(f, &t, table_confusion(&t, test), 1);
            fputs("</details>\n", f);
        }
    }
    fputs("<h2>Run</h2>\n<div class=\"run\">", f);
    table_out(f, &t, table_run(&t, run), 1);
    fputs("</div>\n", f);
    if (run->model) {
        fputs("<h2>Layers</h2>\n", f);
        table_out(f, &t, table_layers(&t, run->model), 1);
    }
    cJSON *segs = run->segments_json ? cJSON_Parse(run->segments_json) : NULL;
    if (cJSON_GetArraySize(segs) > 0) {
        fputs("<h2>Settings history</h2>\n<div class=\"run\">", f);
        table_out(f, &t, table_segments(&t, segs), 1);
        fputs("</div>\n", f);
    }
    cJSON_Delete(segs);
    if (h->count > 0) {
        fputs("<h2>Training history</h2>\n", f);
        table_out(f, &t, table_history(&t, h), 1);
    }
    fputs("</body></html>\n", f);
}

static void write_markdown(FILE *f, const Metrics *test, const Scores *s, const History *h,
                           const RunInfo *run, const Chart *charts, int n_charts)
{
    Table t;
    fprintf(f, "# mnist-dist report\n\n");
    fprintf(f, "**Test accuracy: %.2f%%** (%lld of %lld), mean loss %.4f, on `%s`.\n\n",
            100 * s->accuracy, (long long)s->correct, (long long)s->count, s->loss,
            run->test_path);
    for (int i = 0; i < n_charts; i++)
        if (charts[i].present)
            fprintf(f, "![%s](%s)\n\n", charts[i].alt, charts[i].file);
    fprintf(f, "## Run\n\n");
    table_out(f, &t, table_run(&t, run), 0);
    if (run->model) {
        fprintf(f, "## Layers\n\n");
        table_out(f, &t, table_layers(&t, run->model), 0);
    }
    cJSON *segs = run->segments_json ? cJSON_Parse(run->segments_json) : NULL;
    if (cJSON_GetArraySize(segs) > 0) {
        fprintf(f, "## Settings history\n\n");
        table_out(f, &t, table_segments(&t, segs), 0);
    }
    cJSON_Delete(segs);
    fprintf(f, "## Per-class scores (test)\n\n");
    table_out(f, &t, table_scores(&t, s), 0);
    fprintf(f, "## Confusion matrix (rows: true label, columns: predicted)\n\n");
    table_out(f, &t, table_confusion(&t, test), 0);
    if (h->count > 0) {
        fprintf(f, "## Training history\n\n");
        table_out(f, &t, table_history(&t, h), 0);
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
        case 1: rc = plot_confusion(path, test->confusion, test->classes, e); break;
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

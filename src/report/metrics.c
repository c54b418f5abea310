/* metrics: confusion counts, scores and the mistakes list (see metrics.h).
 * Pure functions of their arguments; no MPI, no files. */
#include "mnist/metrics.h"

#include <stdlib.h>
#include <string.h>

int metrics_init(Metrics *m, int classes, Error *e)
{
    memset(m, 0, sizeof *m);
    if (classes < 2 || classes > REPORT_MAX_CLASSES)
        return err_set(e, "%d classes: reports cover 2..%d", classes, REPORT_MAX_CLASSES);
    m->confusion = calloc((size_t)classes * (size_t)classes, sizeof *m->confusion);
    if (!m->confusion)
        return err_set(e, "out of memory for a %dx%d confusion matrix", classes, classes);
    m->classes = classes;
    return 0;
}

void metrics_free(Metrics *m)
{
    free(m->confusion);
    memset(m, 0, sizeof *m);
}

void metrics_add(Metrics *m, const uint8_t *labels, const int *pred, int B)
{
    for (int i = 0; i < B; i++)
        m->confusion[(size_t)labels[i] * (size_t)m->classes + (size_t)pred[i]]++;
}

void mistake_set_pixels(Mistake *m, const uint8_t *image, int h, int w, int c)
{
    if ((size_t)h * (size_t)w > MISTAKE_MAX_PIXELS || c < 1) {
        m->h = m->w = 0;
        return;
    }
    m->h = (int16_t)h, m->w = (int16_t)w;
    for (int i = 0; i < h * w; i++) {
        int sum = 0;
        for (int k = 0; k < c; k++)
            sum += image[(size_t)i * (size_t)c + (size_t)k];
        m->pixels[i] = (uint8_t)(sum / c);
    }
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
    const int C = m->classes;
    s->classes = C;
    int64_t predicted[REPORT_MAX_CLASSES] = {0};
    for (int t = 0; t < C; t++)
        for (int p = 0; p < C; p++) {
            const int64_t v = m->confusion[(size_t)t * C + p];
            s->count += v;
            s->support[t] += v;
            predicted[p] += v;
        }
    for (int c = 0; c < C; c++) {
        const int64_t diag = m->confusion[(size_t)c * C + c];
        const double tp = (double)diag;
        s->correct += diag;
        s->precision[c] = ratio(tp, (double)predicted[c]);
        s->recall[c] = ratio(tp, (double)s->support[c]);
        s->f1[c] = ratio(2 * s->precision[c] * s->recall[c], s->precision[c] + s->recall[c]);
        s->macro_precision += s->precision[c] / C;
        s->macro_recall += s->recall[c] / C;
        s->macro_f1 += s->f1[c] / C;
        const double w = ratio((double)s->support[c], (double)s->count);
        s->weighted_precision += w * s->precision[c];
        s->weighted_recall += w * s->recall[c];
        s->weighted_f1 += w * s->f1[c];
    }
    s->accuracy = ratio((double)s->correct, (double)s->count);
    s->loss = ratio(m->loss_sum, (double)s->count);
}


/* optim: the Adam update, one fused OpenMP+SIMD loop over the flat vectors.
 * Built with -fno-math-errno so GCC vectorises the sqrtf. No layer knowledge. */
#include "mnist/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A step's constants: t advanced, the bias corrections folded in (in
 * double: 1 - b2^t underflows slowly and matters at small t; folding them
 * into a step size and an epsilon keeps one divide). */
typedef struct {
    float b1, b2, a1, a2, inv_c1, inv_c2, lr, eps;
} AdamStep;

static AdamStep adam_begin(Adam *opt)
{
    opt->t += 1;
    const double c1 = 1.0 - pow(opt->beta1, (double)opt->t);
    const double c2 = 1.0 - pow(opt->beta2, (double)opt->t);
    return (AdamStep){.b1 = opt->beta1, .b2 = opt->beta2, .a1 = 1.0f - opt->beta1,
                      .a2 = 1.0f - opt->beta2, .inv_c1 = (float)(1.0 / c1),
                      .inv_c2 = (float)(1.0 / c2), .lr = opt->lr, .eps = opt->eps};
}

/* One element: m and v updated in place, the new weight returned. */
static inline float adam_element(const AdamStep *k, float w, float *restrict m,
                                 float *restrict v, float g)
{
    const float mi = k->b1 * *m + k->a1 * g;
    const float vi = k->b2 * *v + k->a2 * g * g;
    *m = mi;
    *v = vi;
    return w - k->lr * (mi * k->inv_c1) / (sqrtf(vi * k->inv_c2) + k->eps);
}

/* Two loops, not one with a test: OpenMP outlines a loop before inlining,
 * so a shared body would keep the test and lose the vectorisation. */
size_t adam_step(Adam *opt, float *restrict w, float *restrict m, float *restrict v,
                 const float *restrict g, size_t n)
{
    const AdamStep k = adam_begin(opt);
    size_t bad = 0;
#pragma omp parallel for simd schedule(static) reduction(+ : bad)
    for (size_t i = 0; i < n; i++) {
        bad += (g[i] - g[i]) != 0.0f; /* 0 for finite g, NaN otherwise: branch-free */
        w[i] = adam_element(&k, w[i], m + i, v + i, g[i]);
    }
    return bad;
}

size_t adam_step_bf16(Adam *opt, float *restrict w, float *restrict m, float *restrict v,
                      const float *restrict g, size_t n, bf16 *restrict wb)
{
    const AdamStep k = adam_begin(opt);
    size_t bad = 0;
#pragma omp parallel for simd schedule(static) reduction(+ : bad)
    for (size_t i = 0; i < n; i++) {
        bad += (g[i] - g[i]) != 0.0f;
        const float wi = adam_element(&k, w[i], m + i, v + i, g[i]);
        w[i] = wi;
        wb[i] = bf16_from_float(wi);
    }
    return bad;
}

double schedule_lr(const Schedule *s, int64_t t)
{
    if (s->warmup_steps > 0 && t <= s->warmup_steps)
        return s->base_lr * (double)t / (double)s->warmup_steps;
    const int64_t after = t - (s->warmup_steps > 0 ? s->warmup_steps : 0);
    switch (s->kind) {
    case SCHED_COSINE: {
        const int64_t span = s->total_steps - (s->warmup_steps > 0 ? s->warmup_steps : 0);
        if (span <= 0 || after >= span)
            return s->min_lr;
        const double progress = (double)after / (double)span;
        return s->min_lr + 0.5 * (s->base_lr - s->min_lr) * (1.0 + cos(3.14159265358979323846 * progress));
    }
    case SCHED_STEP:
        if (s->step_every <= 0)
            return s->base_lr;
        return s->base_lr * pow(s->gamma, (double)((after - 1) / s->step_every));
    case SCHED_CONSTANT:
    default:
        return s->base_lr;
    }
}

void optim_decay(float *restrict w, size_t n, float lr, float wd)
{
    const float f = 1.0f - lr * wd;
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++)
        w[i] *= f;
}

double optim_clip_norm(float *restrict g, size_t n, double max_norm)
{
    /* Sequential on purpose: a fixed summation order, so the norm (and the
     * decision to clip) cannot depend on the thread count. */
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)g[i] * g[i];
    const double norm = sqrt(sum);
    if (norm > max_norm) {
        const float scale = (float)(max_norm / norm);
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++)
            g[i] *= scale;
    }
    return norm;
}

int optim_create(Optimizer *o, const OptimConfig *c, size_t n, const Tensor *tensors, int count,
                 Error *e)
{
    memset(o, 0, sizeof *o);
    const int max = (int)(sizeof o->tensors / sizeof o->tensors[0]);
    if (count > max)
        return err_set(e, "the optimizer takes at most %d tensors, not %d", max, count);
    o->adam = (Adam){.lr = c->lr, .beta1 = c->beta1, .beta2 = c->beta2, .eps = c->eps, .t = 0};
    o->sched = c->sched;
    if (o->sched.base_lr <= 0.0)
        o->sched = (Schedule){.kind = SCHED_CONSTANT, .base_lr = c->lr};
    o->weight_decay = c->weight_decay;
    o->clip_norm = c->clip_norm;
    o->max_norm = c->max_norm;
    o->n = n;
    o->num_tensors = count;
    memcpy(o->tensors, tensors, sizeof *tensors * (size_t)count);
    o->m = alloc_aligned(sizeof(float) * 2 * (n ? n : 1));
    if (!o->m)
        return err_set(e, "out of memory for the optimizer's moments (%zu MB)",
                       2 * n * sizeof(float) >> 20);
    o->v = o->m + n;
    return 0;
}

void optim_free(Optimizer *o)
{
    free(o->m);
    memset(o, 0, sizeof *o);
}

double optim_sq_sum(const float *g, size_t lo, size_t n)
{
    /* sequential on purpose: a fixed summation order */
    double sq = 0;
    for (size_t i = lo; i < lo + n; i++)
        sq += (double)g[i] * g[i];
    return sq;
}

size_t optim_step(Optimizer *o, float *params, float *g, size_t lo, size_t n, double grad_sq,
                  bf16 *mirror)
{
    o->adam.lr = (float)schedule_lr(&o->sched, o->adam.t + 1);
    if (o->clip_norm > 0.0f) {
        const double norm = sqrt(grad_sq);
        if (norm > o->clip_norm) {
            const float f = (float)(o->clip_norm / norm);
#pragma omp parallel for simd schedule(static)
            for (size_t i = lo; i < lo + n; i++)
                g[i] *= f;
        }
    }
    if (o->weight_decay > 0.0f)
        for (int t = 0; t < o->num_tensors; t++) {
            if (!o->tensors[t].decay)
                continue;
            const size_t a = o->tensors[t].offset, b = a + o->tensors[t].count;
            const size_t from = a > lo ? a : lo, to = b < lo + n ? b : lo + n;
            if (from < to)
                optim_decay(params + from, to - from, o->adam.lr, o->weight_decay);
        }
    if (mirror)
        return adam_step_bf16(&o->adam, params + lo, o->m + lo, o->v + lo, g + lo, n, mirror + lo);
    return adam_step(&o->adam, params + lo, o->m + lo, o->v + lo, g + lo, n);
}

void optim_apply_max_norm(const Optimizer *o, float *params)
{
    if (o->max_norm <= 0.0f)
        return;
    const float c = o->max_norm;
    for (int t = 0; t < o->num_tensors; t++) {
        if (!o->tensors[t].max_norm)
            continue;
        const int in = o->tensors[t].dims[0], out = o->tensors[t].dims[1];
        float *W = params + o->tensors[t].offset;
        /* Column norms of W[in,out]: threads own columns, rows summed in order. */
#pragma omp parallel for schedule(static)
        for (int j = 0; j < out; j++) {
            double s = 0;
            for (int i = 0; i < in; i++)
                s += (double)W[(size_t)i * out + j] * W[(size_t)i * out + j];
            if (s > (double)c * c) {
                const float f = (float)(c / sqrt(s));
                for (int i = 0; i < in; i++)
                    W[(size_t)i * out + j] *= f;
            }
        }
    }
}

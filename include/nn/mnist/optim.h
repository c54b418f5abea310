/* optim: the optimizer. Adam with bias correction over flat float vectors,
 * learning-rate schedules, and the update rules around it (gradient-norm
 * clipping, decoupled weight decay, the max-norm constraint), all owned by
 * one Optimizer with its moments. Must not know about layers or ranks: it
 * sees one contiguous vector and a list of tensors (spans of it). */
#ifndef MNIST_OPTIM_H
#define MNIST_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "mnist/bf16.h"
#include "mnist/tensor.h"
#include "mnist/util.h"

typedef struct Adam {
    float lr, beta1, beta2, eps;
    int64_t t; /* steps taken so far; the next step is t + 1 */
} Adam;

/* One Adam step over n elements: t += 1, then
 *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
 *   w -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
 * Updates w, m, v in place; g is read only. Element-wise, so the result does
 * not depend on the thread count. Returns how many g were NaN or infinite
 * (counted in the same sweep; the update is applied regardless). */
size_t adam_step(Adam *opt, float *w, float *m, float *v, const float *g, size_t n);

/* adam_step that also writes wb[i] = bf16_from_float(new w[i]) in the same
 * sweep: the bf16 copy of the weights --precision bf16 multiplies with,
 * made where the weights are written anyway instead of read again by the
 * next forward pass. */
size_t adam_step_bf16(Adam *opt, float *w, float *m, float *v, const float *g, size_t n,
                      bf16 *wb);

/* Learning-rate schedule over optimizer steps (1-based step t). */
typedef enum { SCHED_CONSTANT, SCHED_COSINE, SCHED_STEP } SchedKind;

typedef struct Schedule {
    SchedKind kind;
    double base_lr;       /* after warmup, before decay */
    int64_t warmup_steps; /* linear ramp from base_lr / warmup_steps to base_lr */
    int64_t total_steps;  /* cosine: reaches min_lr here */
    int64_t step_every;   /* step decay: multiply by gamma every step_every steps */
    double gamma;         /* step decay factor */
    double min_lr;        /* cosine floor */
} Schedule;

/* The learning rate for step t (1-based): linear warmup over warmup_steps,
 * then constant, cosine from base_lr to min_lr at total_steps, or step decay
 * by gamma every step_every steps (counted after warmup). Pure. */
double schedule_lr(const Schedule *s, int64_t t);

/* Decoupled weight decay (AdamW): w *= 1 - lr * wd over n elements. */
void optim_decay(float *w, size_t n, float lr, float wd);

/* Scales g so its L2 norm is at most max_norm (> 0); returns the norm before
 * clipping. The sum runs in a fixed order in double, so every rank holding
 * the same g computes the same result. */
double optim_clip_norm(float *g, size_t n, double max_norm);

/* What the optimizer is asked to do (a run's settings). */
typedef struct OptimConfig {
    float lr, beta1, beta2, eps;
    float weight_decay; /* decoupled, on tensors marked decay (0: off) */
    float clip_norm;    /* cap on the summed gradient's L2 norm (0: off) */
    float max_norm;     /* cap on each column norm of tensors marked max_norm (0: off) */
    Schedule sched;     /* the learning rate per step (base_lr 0: lr throughout) */
} OptimConfig;

/* Adam's state and hyper-parameters plus the rules applied with it. */
typedef struct Optimizer {
    Adam adam;          /* adam.lr is the rate of the step last taken */
    Schedule sched;
    float weight_decay, clip_norm, max_norm;
    size_t n;           /* floats in each vector */
    float *m, *v;       /* the moments: one allocation, n floats each */
    int num_tensors;
    Tensor tensors[64]; /* where decay and max-norm apply */
} Optimizer;

/* Creates the optimizer for an n-float parameter vector laid out as
 * tensors[0..count); moments zeroed, step 0. -1 with e filled. */
int optim_create(Optimizer *o, const OptimConfig *c, size_t n, const Tensor *tensors, int count,
                 Error *e);
void optim_free(Optimizer *o);

/* Sum of g[lo..lo+n)^2 in double, in index order (the same on every rank
 * holding the same g): the clipping rule's input. */
double optim_sq_sum(const float *g, size_t lo, size_t n);

/* One step on the segment [lo, lo + n) of params and the summed gradient
 * g (the same segment of the moments): the learning rate for this step from
 * the schedule; g scaled so the whole gradient's norm, sqrt(grad_sq), is at
 * most clip_norm; weights decayed (the part of each decay tensor inside the
 * segment); one Adam step. grad_sq is the sum of squares over the WHOLE
 * gradient (optim_sq_sum over every segment, added across ranks); unused
 * when clip_norm is 0. mirror (optional, param-sized): receives the bf16
 * copy of the segment's updated params (adam_step_bf16). Returns the count
 * of non-finite gradient elements. */
size_t optim_step(Optimizer *o, float *params, float *g, size_t lo, size_t n, double grad_sq,
                  bf16 *mirror);

/* The max-norm constraint on the whole (updated) params: each column of a
 * max-norm tensor rescaled to L2 norm at most max_norm. No-op when 0. */
void optim_apply_max_norm(const Optimizer *o, float *params);

#endif

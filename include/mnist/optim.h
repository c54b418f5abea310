/* optim: Adam with bias correction over flat float vectors.
 * Must not know about layers or ranks: it sees one contiguous vector. */
#ifndef MNIST_OPTIM_H
#define MNIST_OPTIM_H

#include <stddef.h>
#include <stdint.h>

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

#endif

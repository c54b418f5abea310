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

#endif

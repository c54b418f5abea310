/* rng: the parts of the counter-based generator that are not inline.
 * Pure functions only. */
#include "mnist/rng.h"

#include <math.h>

double rng_normal(uint64_t key, uint64_t counter)
{
    /* Two independent 53-bit uniforms from two counters; u1 in (0, 1] so the
     * log is finite. */
    uint64_t a = rng_u64(key, 2 * counter), b = rng_u64(key, 2 * counter + 1);
    double u1 = ((double)(a >> 11) + 1.0) * (1.0 / 9007199254740992.0);
    double u2 = (double)(b >> 11) * (1.0 / 9007199254740992.0);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * 3.14159265358979323846 * u2);
}

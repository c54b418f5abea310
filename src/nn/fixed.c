/* fixed: 64-bit fixed-point conversion and exact summation (see fixed.h).
 * OpenMP over elements; each element's sum runs in vector order, and the
 * result does not depend on it anyway. */
#include "mnist/fixed.h"

#include <math.h>
#include <string.h>

uint32_t fixed_max_bits(const float *v, size_t n)
{
    uint32_t top = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t a;
        memcpy(&a, &v[i], sizeof a);
        a &= 0x7fffffffu;
        top = a > top ? a : top;
    }
    return top;
}

int fixed_exponent(uint32_t max_bits)
{
    float mx;
    memcpy(&mx, &max_bits, sizeof mx);
    int e;
    frexp(mx, &e);
    return e;
}

static int ceil_log2(int n)
{
    int k = 0;
    while ((1 << k) < n)
        k++;
    return k;
}

int fixed_from_floats(int64_t *q, const float *parts, size_t stride, int count, size_t n,
                      int max_exp, int total_parts)
{
    /* |x| < 2^max_exp for every part, so a sum of total_parts of them stays
     * below 2^62 at scale 2^k: no int64 overflow whatever the grouping. */
    const int k = 62 - max_exp - ceil_log2(total_parts);
    const double scale = ldexp(1.0, k);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        int64_t s = 0;
        for (int c = 0; c < count; c++) /* exact scaling, then truncation */
            s += (int64_t)((double)parts[(size_t)c * stride + i] * scale);
        q[i] = s;
    }
    return k;
}

void fixed_to_floats(float *g, const int64_t *q, size_t n, int k)
{
    const double inv = ldexp(1.0, -k);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++)
        g[i] = (float)((double)q[i] * inv);
}

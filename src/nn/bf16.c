/* bf16: the array conversions (the scalar rules are in bf16.h). */
#include "mnist/bf16.h"

/* Above this many elements the conversion is split over OpenMP threads. */
#define BF16_PARALLEL_MIN 65536

void bf16_convert(bf16 *dst, const float *src, size_t n)
{
#pragma omp parallel for simd schedule(static) if (n >= BF16_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++)
        dst[i] = bf16_from_float(src[i]);
}

void bf16_expand(float *dst, const bf16 *src, size_t n)
{
#pragma omp parallel for simd schedule(static) if (n >= BF16_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++)
        dst[i] = bf16_to_float(src[i]);
}

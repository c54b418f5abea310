/* bf16: bfloat16 (the top 16 bits of an IEEE float32) and its conversions.
 * float -> bf16 rounds to nearest, ties to even, on the bits: a NaN stays a
 * NaN (quiet, same sign), +-Inf stays +-Inf, a finite value that rounds past
 * the largest bf16 becomes +-Inf, and denormals round like every other value
 * (nothing is flushed to zero). bf16 -> float is exact. Plain C that the
 * compiler vectorises, so every CPU and build gives the same bits. */
#ifndef MNIST_BF16_H
#define MNIST_BF16_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef uint16_t bf16;

static inline bf16 bf16_from_float(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep sign and top payload, make it quiet */
        return (bf16)((u >> 16) | 0x0040u);
    return (bf16)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static inline float bf16_to_float(bf16 h)
{
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* dst[i] = bf16_from_float(src[i]), i < n (OpenMP threads over the range). */
void bf16_convert(bf16 *dst, const float *src, size_t n);

/* dst[i] = bf16_to_float(src[i]), i < n. */
void bf16_expand(float *dst, const bf16 *src, size_t n);

#endif

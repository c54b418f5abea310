/* fixed: exact sums of float vectors in 64-bit fixed point, for the
 * bitwise-reproducible exchange: integer addition is associative, so the
 * sum of many vectors does not depend on their order or grouping. Pure
 * functions on flat arrays; no MPI. */
#ifndef MNIST_FIXED_H
#define MNIST_FIXED_H

#include <stddef.h>
#include <stdint.h>

/* The largest |v[i]| of v[0..n) as float bits (for non-negative floats the
 * bit pattern orders like the value; NaN and Inf sit at or above
 * 0x7f800000). An integer maximum that vectorises. */
uint32_t fixed_max_bits(const float *v, size_t n);

/* The exponent e with |x| < 2^e for every x below the bound max_bits
 * (frexp's), 0 for a zero bound. */
int fixed_exponent(uint32_t max_bits);

/* Converts n floats of each of `count` vectors (stride floats apart) to
 * fixed point at scale 2^k, sums them in int64 into q (overwritten), and
 * returns k. Every value must be finite and below 2^max_exp (the agreed
 * bound over every rank's vectors); total_parts is the number of vectors
 * summed over all ranks, so no sum of them can overflow. */
int fixed_from_floats(int64_t *q, const float *parts, size_t stride, int count, size_t n,
                      int max_exp, int total_parts);

/* g[i] = q[i] * 2^-k, rounded once to float. */
void fixed_to_floats(float *g, const int64_t *q, size_t n, int k);

#endif

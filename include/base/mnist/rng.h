/* rng: counter-based random numbers. A stream is a 64-bit key (seed mixed
 * with purpose, epoch, sample index...) and every draw is a pure function of
 * (key, counter), so results never depend on thread count, rank or order.
 * Must not keep hidden global state. */
#ifndef MNIST_RNG_H
#define MNIST_RNG_H

#include <stdint.h>

/* Purposes, mixed into keys so streams for different uses never overlap. */
enum {
    RNG_INIT = 1,    /* weight initialisation: (layer) */
    RNG_SHUFFLE = 2, /* epoch order: (epoch, shard) */
    RNG_DROPOUT = 3, /* dropout masks: (epoch, sample, layer) */
    RNG_AUGMENT = 4, /* augmentation: (epoch), then per sample inside augment */
};

/* SplitMix64's finaliser: a bijective 64-bit mix with full avalanche. */
static inline uint64_t rng_mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Key for a stream: seed and up to three integers, each mixed in turn. */
static inline uint64_t rng_key(uint64_t seed, uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t k = rng_mix64(seed);
    k = rng_mix64(k ^ a);
    k = rng_mix64(k ^ (b + 0x632be59bd9b4e019ULL));
    return rng_mix64(k ^ (c + 0x8cb92ba72f3d8dd7ULL));
}

/* The counter-th 64-bit draw of stream key. */
static inline uint64_t rng_u64(uint64_t key, uint64_t counter)
{
    return rng_mix64(key ^ rng_mix64(counter));
}

/* Uniform float in [0, 1) from the top 24 bits of a draw. */
static inline float rng_uniform(uint64_t key, uint64_t counter)
{
    return (float)(rng_u64(key, counter) >> 40) * (1.0f / 16777216.0f);
}

/* Uniform integer in [0, n) for n > 0, without modulo bias worth noting
 * (Lemire's multiply-shift on 32 bits; n must be < 2^32). */
static inline uint32_t rng_below(uint64_t key, uint64_t counter, uint32_t n)
{
    return (uint32_t)(((rng_u64(key, counter) >> 32) * (uint64_t)n) >> 32);
}

/* Standard normal draw number `counter` of stream key (Box-Muller, double
 * precision internally). */
double rng_normal(uint64_t key, uint64_t counter);

#endif

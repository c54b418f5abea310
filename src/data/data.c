/* data: shard ranges and batch assembly over in-memory image sets.
 * Pure functions of their arguments: ranks are plain ints, no MPI, no HDF5. */
#include "mnist/data.h"

#include <stdlib.h>
#include <string.h>

void dataset_free(Dataset *d)
{
    free(d->images);
    free(d->labels);
    memset(d, 0, sizeof *d);
}

void data_shard_range(size_t n, int nparts, int part, size_t *first, size_t *count)
{
    const size_t base = n / (size_t)nparts, extra = n % (size_t)nparts, p = (size_t)part;
    *count = base + (p < extra ? 1 : 0);
    *first = p * base + (p < extra ? p : extra);
}

void data_gather_batch(float *x, uint8_t *y, const Dataset *d, const size_t *idx, int b)
{
    const float inv255 = 1.0f / 255.0f;
    const size_t n = dataset_pixels(d);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < b; i++) {
        const uint8_t *src = d->images + idx[i] * n;
        float *dst = x + (size_t)i * n;
        for (size_t k = 0; k < n; k++)
            dst[k] = (float)src[k] * inv255;
    }
    if (y)
        for (int i = 0; i < b; i++)
            y[i] = d->labels[idx[i]];
}

/* Helpers for the unit suites (see test_util.h). */
#define _GNU_SOURCE
#include "test_util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mnist/rng.h"

int tu_failures;

void tu_tmpdir(char *dir, size_t size)
{
    snprintf(dir, size, "/tmp/mnist-test-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        abort();
    }
}

void tu_rmrf(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *ent;
    char path[4096];
    while ((ent = readdir(d))) {
        if (!strcmp(ent->d_name, ".") || !strcmp(ent->d_name, ".."))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, ent->d_name);
        if (ent->d_type == DT_DIR)
            tu_rmrf(path);
        else
            unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

void tu_write(char *path, size_t size, const char *dir, const char *name, const void *bytes,
              size_t n)
{
    snprintf(path, size, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(bytes, 1, n, f) != n) {
        perror(path);
        abort();
    }
    fclose(f);
}

int tu_count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *ent;
    while ((ent = readdir(d)))
        n += strcmp(ent->d_name, ".") && strcmp(ent->d_name, "..");
    closedir(d);
    return n;
}

void tu_synthetic(Dataset *d, size_t rows, uint64_t seed)
{
    d->rows = rows;
    d->shape = (Shape){MNIST_SIDE, MNIST_SIDE, 1};
    d->classes = DATA_DEFAULT_CLASSES;
    d->images = calloc(rows * MNIST_PIXELS, 1);
    d->labels = calloc(rows, 1);
    uint64_t key = rng_key(seed, 99, 0, 0);
    for (size_t i = 0; i < rows; i++) {
        int c = (int)rng_below(key, 3 * i, DATA_DEFAULT_CLASSES);
        d->labels[i] = (uint8_t)c;
        uint8_t *img = d->images + i * MNIST_PIXELS;
        for (int k = 0; k < MNIST_PIXELS; k++)
            img[k] = (uint8_t)rng_below(key, (uint64_t)(i * MNIST_PIXELS + k) * 7 + 1, 60);
        /* a horizontal bar on rows 2c+3 .. 2c+4, jittered sideways */
        int shift = (int)rng_below(key, 3 * i + 1, 5);
        for (int r = 2 * c + 3; r < 2 * c + 5; r++)
            for (int x = 4 + shift; x < 20 + shift; x++)
                img[r * MNIST_SIDE + x] = 230;
    }
}

void tu_naive_matmul(double *C, const float *A, const float *B, int M, int K, int N)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++)
                s += (double)A[i * K + k] * B[k * N + j];
            C[i * N + j] = s;
        }
}

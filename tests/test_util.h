/* Shared helpers for the unit suites: suite registration prototypes, temp
 * directories, small files, and a learnable synthetic image set. */
#ifndef MNIST_TEST_UTIL_H
#define MNIST_TEST_UTIL_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "mnist/data.h"

int test_ops_register(void);
int test_model_register(void);
int test_loader_register(void);
int test_optim_register(void);
int test_data_register(void);
int test_data_csv_register(void);
int test_h5_register(void);
int test_ckpt_register(void);
int test_plot_register(void);
int test_report_register(void);
int test_augment_register(void);
int test_config_register(void);
int test_gemm_register(void);
int test_image_register(void);
int test_npy_register(void);

/* Creates a fresh directory under /tmp and writes its path into dir. */
void tu_tmpdir(char *dir, size_t size);

/* Removes dir and everything in it. */
void tu_rmrf(const char *dir);

/* Writes bytes to dir/name, returning the full path in path. */
void tu_write(char *path, size_t size, const char *dir, const char *name, const void *bytes,
              size_t n);

/* Number of entries in dir other than . and .. */
int tu_count_entries(const char *dir);

/* A synthetic labelled set: class c is a bright bar at a class-specific
 * place plus seeded noise, so a small model can learn it. */
void tu_synthetic(Dataset *d, size_t rows, uint64_t seed);

/* Naive triple-loop C[M,N] = A[M,K] · B[K,N] in double, the reference the
 * BLAS path is checked against. */
void tu_naive_matmul(double *C, const float *A, const float *B, int M, int K, int N);

/* For the MPI test programs (plain C, not CUnit): a failed check adds one
 * to tu_failures and prints where, with a printf-style message. */
extern int tu_failures;
#define TU_CHECK(cond, ...)                                                                       \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            tu_failures++;                                                                        \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                  \
            fprintf(stderr, __VA_ARGS__);                                                         \
            fputc('\n', stderr);                                                                  \
        }                                                                                         \
    } while (0)

#endif

/* Unit tests for shard ranges and batch assembly. */
#include <CUnit/CUnit.h>
#include <stdlib.h>
#include <string.h>

#include "mnist/data.h"
#include "test_util.h"

static void check_partition(size_t n, int P)
{
    size_t next = 0, min = (size_t)-1, max = 0;
    for (int p = 0; p < P; p++) {
        size_t first, count;
        data_shard_range(n, P, p, &first, &count);
        /* contiguous and in order: every row exactly once */
        CU_ASSERT_EQUAL(first, next);
        next = first + count;
        min = count < min ? count : min;
        max = count > max ? count : max;
    }
    CU_ASSERT_EQUAL(next, n);
    CU_ASSERT(max - min <= 1);
}

static void test_shards_cover_every_row_once(void)
{
    for (int P = 1; P <= 8; P++) {
        for (size_t n = 0; n <= 200; n++)
            check_partition(n, P);
        check_partition(60000, P);
        check_partition(55000, P);
        check_partition(59999, P);
    }
    check_partition(1000003, 7);
    check_partition(5, 8); /* more parts than rows: some are empty */
}

static void test_gather_scales_and_follows_indices(void)
{
    Dataset d = {.shape = {MNIST_SIDE, MNIST_SIDE, 1}};
    d.rows = 3;
    d.images = calloc(3 * MNIST_PIXELS, 1);
    d.labels = calloc(3, 1);
    for (int r = 0; r < 3; r++) {
        d.labels[r] = (uint8_t)(r + 4);
        d.images[r * MNIST_PIXELS + 0] = (uint8_t)(r * 100);
        d.images[r * MNIST_PIXELS + 783] = 255;
    }
    float x[2 * MNIST_PIXELS];
    uint8_t y[2];
    const size_t idx[2] = {2, 0};
    data_gather_batch(x, y, &d, idx, 2);
    CU_ASSERT_EQUAL(y[0], 6);
    CU_ASSERT_EQUAL(y[1], 4);
    CU_ASSERT_DOUBLE_EQUAL(x[0], 200.0 / 255.0, 1e-7);
    CU_ASSERT_EQUAL(x[MNIST_PIXELS], 0.0f);
    CU_ASSERT_EQUAL(x[783], 1.0f);
    CU_ASSERT_EQUAL(x[MNIST_PIXELS + 783], 1.0f);
    dataset_free(&d);
    CU_ASSERT_PTR_NULL(d.images);
    CU_ASSERT_EQUAL(d.rows, 0);
}

int test_data_register(void)
{
    CU_pSuite s = CU_add_suite("data", NULL, NULL);
    if (!s)
        return -1;
    return (CU_add_test(s, "shards cover every row once, P = 1..8",
                        test_shards_cover_every_row_once) &&
            CU_add_test(s, "gather scales to [0,1] and follows indices",
                        test_gather_scales_and_follows_indices))
               ? 0
               : -1;
}

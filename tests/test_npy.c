/* Unit tests for the .npy reader: headers of versions 1, 2 and 3 as NumPy
 * writes them, and each malformed or unaccepted header's message, on
 * arrays built here in memory. (The .npz container and files NumPy itself
 * writes are tests/npz_test.sh's.) */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mnist/data_npy.h"
#include "test_util.h"

/* A .npy of version v with header text dict (padded with spaces and a
 * newline to a multiple of 64, as NumPy does) and data_bytes zero bytes of
 * data; returns its size, the bytes in *out (malloc'ed). */
static size_t make_npy(uint8_t **out, int v, const char *dict, size_t data_bytes)
{
    const size_t prefix = v == 1 ? 10 : 12;
    size_t hlen = strlen(dict) + 1;
    hlen += (64 - (prefix + hlen) % 64) % 64;
    uint8_t *b = calloc(prefix + hlen + data_bytes + 1, 1);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (uint8_t)v, b[7] = 0;
    for (size_t i = 0; i < prefix - 8; i++)
        b[8 + i] = (uint8_t)(hlen >> (8 * i));
    memset(b + prefix, ' ', hlen);
    memcpy(b + prefix, dict, strlen(dict));
    b[prefix + hlen - 1] = '\n';
    *out = b;
    return prefix + hlen + data_bytes;
}

static void expect_parse(int v, const char *dict, size_t data, const char *words)
{
    uint8_t *b;
    const size_t n = make_npy(&b, v, dict, data);
    NpyArray a;
    Error e = {{0}};
    const int rc = npy_parse(&a, b, n, "x.npy", &e);
    if (words) {
        CU_ASSERT(rc == -1 && strstr(e.msg, words) != NULL);
        if (rc != -1 || !strstr(e.msg, words))
            printf("\n  %s: message was: %s", dict, e.msg);
    } else {
        CU_ASSERT(rc == 0);
        if (rc)
            printf("\n  %s: refused: %s", dict, e.msg);
    }
    free(b);
}

static void test_headers(void)
{
    uint8_t *b;
    size_t n = make_npy(&b, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                        24);
    NpyArray a;
    Error e = {{0}};
    CU_ASSERT_FATAL(npy_parse(&a, b, n, "x.npy", &e) == 0);
    CU_ASSERT(strcmp(a.descr, "<f4") == 0 && !a.fortran_order && a.ndim == 2);
    CU_ASSERT(a.shape[0] == 2 && a.shape[1] == 3 && a.count == 6 && a.itemsize == 4);
    CU_ASSERT(a.data == b + n - 24);
    char s[64];
    npy_shape_str(&a, s, sizeof s);
    CU_ASSERT_STRING_EQUAL(s, "(2, 3)");
    free(b);
    expect_parse(2, "{'descr': '|u1', 'fortran_order': True, 'shape': (5,), }", 5, NULL);
    expect_parse(3, "{\"descr\": \"<i8\", \"shape\": (4,), \"fortran_order\": False}", 32, NULL);
    expect_parse(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (), }", 8, NULL);
    expect_parse(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }", 2,
                 "holds 2 bytes of data but its header (shape (3,), dtype '|u1') says 3 (truncated)");
    expect_parse(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }", 4, "trailing bytes");
    expect_parse(1, "{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (3,), }", 12,
                 "not a simple one");
    expect_parse(1, "{'descr': '|u1', 'shape': (3,), }", 3, "lacks 'fortran_order'");
    expect_parse(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), 'x': 1}", 3,
                 "unexpected key 'x'");
    expect_parse(1, "{'descr': '|u1', 'fortran_order': Maybe, 'shape': (3,), }", 3, "malformed");
    expect_parse(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (3, -1), }", 3, "malformed");
    expect_parse(1, "['descr']", 0, "no dictionary");
    n = make_npy(&b, 4, "{}", 0);
    CU_ASSERT(npy_parse(&a, b, n, "x.npy", &e) == -1 && strstr(e.msg, "version 4.0") != NULL);
    CU_ASSERT(npy_parse(&a, b, 9, "x.npy", &e) == -1);
    b[0] = 'X';
    CU_ASSERT(npy_parse(&a, b, n, "x.npy", &e) == -1 && strstr(e.msg, "not a .npy") != NULL);
    free(b);
    /* a header that says more bytes than the file has */
    n = make_npy(&b, 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }", 3);
    CU_ASSERT(npy_parse(&a, b, 40, "x.npy", &e) == -1 && strstr(e.msg, "truncated .npy header") != NULL);
    free(b);
}

/* images + labels files through data_npy_read: accepted shapes and types,
 * and each refusal naming file, shape and dtype. */
static void test_images_and_labels(void)
{
    char dir[256], ip[512], lp[512];
    tu_tmpdir(dir, sizeof dir);
    uint8_t *b;
    size_t n = make_npy(&b, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 784), }",
                        2 * 784 * 4);
    float *f = (float *)(void *)(b + n - 2 * 784 * 4); /* 64-byte aligned header: aligned */
    for (int i = 0; i < 2 * 784; i++)
        f[i] = (float)(i % 256) / 255.0f;
    tu_write(ip, sizeof ip, dir, "x.npy", b, n);
    free(b);
    n = make_npy(&b, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", 16);
    b[n - 16] = 7, b[n - 8] = 9;
    tu_write(lp, sizeof lp, dir, "y.npy", b, n);
    free(b);
    Dataset d;
    Error e = {{0}};
    CU_ASSERT_FATAL(data_npy_read(ip, lp, 10, &d, &e) == 0);
    CU_ASSERT(d.rows == 2 && d.shape.h == 28 && d.shape.w == 28 && d.shape.c == 1);
    CU_ASSERT(d.labels[0] == 7 && d.labels[1] == 9);
    int same = 1;
    for (int i = 0; i < 2 * 784; i++)
        same &= d.images[i] == i % 256;
    CU_ASSERT(same);
    dataset_free(&d);
    CU_ASSERT(data_npy_read(ip, lp, 9, &d, &e) == -1);
    CU_ASSERT(strstr(e.msg, "y.npy: label 9 at index 1 is outside 0..8") != NULL);
    n = make_npy(&b, 1, "{'descr': '<i2', 'fortran_order': False, 'shape': (2,), }", 4);
    tu_write(lp, sizeof lp, dir, "y16.npy", b, n);
    free(b);
    CU_ASSERT(data_npy_read(ip, lp, 10, &d, &e) == -1);
    CU_ASSERT(strstr(e.msg, "y16.npy: labels of dtype '<i2' (int16) and shape (2,): accepted are "
                            "uint8, int32 or int64") != NULL);
    n = make_npy(&b, 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }", 3);
    tu_write(lp, sizeof lp, dir, "y3.npy", b, n);
    free(b);
    CU_ASSERT(data_npy_read(ip, lp, 10, &d, &e) == -1);
    CU_ASSERT(strstr(e.msg, "y3.npy: has 3 labels") != NULL && strstr(e.msg, "has 2 images") != NULL);
    n = make_npy(&b, 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 783), }", 2 * 783);
    tu_write(ip, sizeof ip, dir, "x783.npy", b, n);
    free(b);
    CU_ASSERT(data_npy_read(ip, NULL, 10, &d, &e) == -1);
    CU_ASSERT(strstr(e.msg, "x783.npy: images of dtype '|u1' (uint8) and shape (2, 783): accepted") != NULL);
    CU_ASSERT(d.images == NULL && d.labels == NULL);
    tu_rmrf(dir);
}

int test_npy_register(void)
{
    CU_pSuite s = CU_add_suite("npy", NULL, NULL);
    if (!s)
        return -1;
    return (CU_add_test(s, "headers of versions 1-3, malformed ones", test_headers) &&
            CU_add_test(s, "images and labels: accepted, refused", test_images_and_labels))
               ? 0
               : -1;
}

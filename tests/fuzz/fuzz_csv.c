/* libFuzzer harness for data_csv_read: the input is written to a file and
 * read twice, by the normal reader (1 MiB blocks) and by a copy built with
 * 13-byte blocks (tools/fuzz compiles data_csv.c again with
 * -DMNIST_CSV_READ_BLOCK=13 and the functions renamed *_b13). Both must give
 * the same verdict, message and data; a refusal must leave the set empty and
 * name the file; an accepted set must hold labels 0..9 and survive
 * data_csv_write -> data_csv_read unchanged. */
#include "fuzz_common.h"
#include "mnist/data.h"
#include "mnist/data_csv.h"
#include "mnist/data_idx.h"

int data_csv_read_b13(const char *path, int classes, Dataset *out, Error *e);

static void check_same(const Dataset *a, const Dataset *b, const char *what)
{
    FUZZ_CHECK(a->rows == b->rows, "%s: %zu vs %zu rows", what, a->rows, b->rows);
    FUZZ_CHECK((a->labels == NULL) == (b->labels == NULL), "%s: labels present differ", what);
    FUZZ_CHECK(memcmp(a->images, b->images, a->rows * MNIST_PIXELS) == 0, "%s: images differ", what);
    FUZZ_CHECK(!a->labels || memcmp(a->labels, b->labels, a->rows) == 0, "%s: labels differ", what);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_path("in.csv");
    fuzz_write(path, data, size);
    Dataset d, small;
    Error e = {{0}}, es = {{0}};
    int rc = data_csv_read(path, 10, &d, &e);
    int rcs = data_csv_read_b13(path, 10, &small, &es);
    FUZZ_CHECK(rc == rcs, "1 MiB blocks say %d (%s), 13-byte blocks say %d (%s)", rc,
               rc ? e.msg : "ok", rcs, rcs ? es.msg : "ok");
    if (rc != 0) {
        FUZZ_CHECK(d.images == NULL && d.labels == NULL && d.rows == 0, "refused but not empty");
        fuzz_check_message(e.msg, sizeof e.msg, path);
        FUZZ_CHECK(strcmp(e.msg, es.msg) == 0, "messages differ:\n  %s\n  %s", e.msg, es.msg);
        return 0;
    }
    FUZZ_CHECK(d.rows >= 1 && d.images != NULL, "accepted an empty set");
    for (size_t i = 0; d.labels && i < d.rows; i++)
        FUZZ_CHECK(d.labels[i] <= 9, "label %u at row %zu", d.labels[i], i);
    check_same(&d, &small, "block sizes");

    const char *copy = fuzz_path("copy.csv");
    Dataset back;
    FUZZ_CHECK(data_csv_write(copy, &d, &e) == 0, "write failed: %s", e.msg);
    FUZZ_CHECK(data_csv_read(copy, 10, &back, &e) == 0, "re-read failed: %s", e.msg);
    check_same(&d, &back, "round trip");
    dataset_free(&back);
    dataset_free(&small);
    dataset_free(&d);
    return 0;
}

/* libFuzzer harness for data_idx_read: the first two input bytes give the
 * length of the images file (big-endian, times 8), the rest goes to the
 * labels file. Reads images + labels, images alone, and asks data_is_idx.
 * A refusal must leave the set empty and name a file; an accepted set must
 * hold labels 0..9 and one image per label. */
#include "fuzz_common.h"
#include "mnist/data.h"
#include "mnist/data_csv.h"
#include "mnist/data_idx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t split = ((size_t)data[0] << 8 | data[1]) * 8;
    data += 2, size -= 2;
    if (split > size)
        split = size;
    const char *images = fuzz_path("images.idx"), *labels = fuzz_path("labels.idx");
    fuzz_write(images, data, split);
    fuzz_write(labels, data + split, size - split);

    Dataset d;
    Error e = {{0}};
    if (data_idx_read(images, labels, 10, &d, &e) != 0) {
        FUZZ_CHECK(d.images == NULL && d.labels == NULL && d.rows == 0, "refused but not empty");
        FUZZ_CHECK(memchr(e.msg, '\0', sizeof e.msg) != NULL, "message not terminated");
        FUZZ_CHECK(strstr(e.msg, images) || strstr(e.msg, labels), "message names no file: %s",
                   e.msg);
    } else {
        FUZZ_CHECK(d.rows >= 1 && d.images && d.labels, "accepted an empty set");
        FUZZ_CHECK(split == 16 + d.rows * MNIST_PIXELS && size - split == 8 + d.rows,
                   "accepted %zu rows from %zu + %zu bytes", d.rows, split, size - split);
        for (size_t i = 0; i < d.rows; i++)
            FUZZ_CHECK(d.labels[i] <= 9, "label %u at row %zu", d.labels[i], i);
        dataset_free(&d);
    }
    if (data_idx_read(images, NULL, 10, &d, &e) != 0) {
        FUZZ_CHECK(d.images == NULL && d.rows == 0, "refused but not empty");
        fuzz_check_message(e.msg, sizeof e.msg, images);
    } else {
        FUZZ_CHECK(d.rows >= 1 && d.images && !d.labels, "images only: bad set");
        FUZZ_CHECK(data_is_idx(images), "read as IDX but data_is_idx says no");
        dataset_free(&d);
    }
    return 0;
}

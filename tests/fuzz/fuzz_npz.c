/* libFuzzer harness for NumPy inputs: the input is written to a file and
 * read as a .npz (members x_train, y_train) and, when it starts with the
 * .npy magic, as a .npy images file. Refusals must name the file and leave
 * nothing allocated; accepted sets must have rows, and labels below 10. */
#include "fuzz_common.h"
#include "mnist/data_npy.h"
#include "mnist/zipread.h"

static void check(int rc, const Dataset *d, const char *path, const Error *e)
{
    if (rc != 0) {
        FUZZ_CHECK(d->images == NULL && d->labels == NULL, "refused but not empty");
        fuzz_check_message((char *)e->msg, sizeof e->msg, path);
        return;
    }
    FUZZ_CHECK(d->rows >= 1 && d->images, "accepted %zu rows", d->rows);
    for (size_t i = 0; d->labels && i < d->rows; i++)
        FUZZ_CHECK(d->labels[i] <= 9, "label %u at %zu", d->labels[i], i);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_path("in.npz");
    fuzz_write(path, data, size);
    Dataset d;
    Error e = {{0}};
    int rc = data_npz_read(path, "x_train", "y_train", 10, &d, &e);
    check(rc, &d, path, &e);
    if (rc == 0)
        dataset_free(&d);
    ZipArchive z;
    if (zipread_open(&z, path, &e) == 0) { /* every member, as far as it goes */
        for (size_t i = 0; i < z.count; i++) {
            uint8_t *out;
            size_t n;
            if (zipread_extract(&z, &z.members[i], &out, &n, &e) == 0) {
                FUZZ_CHECK(n == z.members[i].usize, "extracted %zu bytes", n);
                free(out);
            } else {
                FUZZ_CHECK(out == NULL, "refused but returned bytes");
                fuzz_check_message(e.msg, sizeof e.msg, path);
            }
        }
        zipread_close(&z);
    }
    if (size >= 6 && memcmp(data, "\x93NUMPY", 6) == 0) {
        rc = data_npy_read(path, NULL, 10, &d, &e);
        check(rc, &d, path, &e);
        if (rc == 0)
            dataset_free(&d);
    }
    return 0;
}

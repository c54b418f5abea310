/* libFuzzer harness for HDF5 image sets (the trainer's input): the input is
 * written to a file, opened with h5data_open (one process, no MPI-IO) and,
 * when accepted, up to 1024 rows are read with h5data_read. Refusals must
 * name the file and leave nothing allocated; accepted rows must carry labels
 * 0..9. */
#include <hdf5.h>

#include "fuzz_common.h"
#include "mnist/h5data.h"
#include "mnist/h5util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    h5_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_path("in.h5");
    fuzz_write(path, data, size);
    H5Data h;
    Error e = {{0}};
    if (h5data_open(&h, path, H5P_DEFAULT, &e) != 0) {
        fuzz_check_message(e.msg, sizeof e.msg, path);
        return 0;
    }
    FUZZ_CHECK(h.rows >= 1, "opened a set of %zu rows", h.rows);
    const size_t count = h.rows < 1024 ? h.rows : 1024;
    const size_t first = h.rows - count; /* the last rows: the end of the file */
    Dataset d;
    if (h5data_read(&h, first, count, &d, &e) != 0) {
        FUZZ_CHECK(d.images == NULL && d.labels == NULL, "refused but not empty");
        fuzz_check_message(e.msg, sizeof e.msg, path);
    } else {
        FUZZ_CHECK(d.rows == count && d.images, "read %zu rows, asked %zu", d.rows, count);
        FUZZ_CHECK((d.labels != NULL) == h.has_labels, "labels present differ");
        for (size_t i = 0; d.labels && i < count; i++)
            FUZZ_CHECK(d.labels[i] <= 9, "label %u at row %zu", d.labels[i], first + i);
        dataset_free(&d);
    }
    h5data_close(&h);
    return 0;
}

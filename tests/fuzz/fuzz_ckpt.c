/* libFuzzer harness for checkpoints: the input is written to a file; if
 * ckpt_read_model accepts it, the model it describes is built (it has
 * checked that the file can hold its tensors, so the size is bounded by
 * -max_len) and ckpt_read loads the file into it, as h5safe's walk and
 * evaluate, predict and --resume do. Refusals must name the file; an
 * accepted checkpoint's history length must equal its epoch. h5safe is off
 * here: libhdf5 runs in this process, so its crashes are found. */
#include <hdf5.h>
#include "fuzz_common.h"
#include "mnist/ckpt.h"
#include "mnist/data.h"
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
    CkptModel desc;
    Error e = {{0}};
    if (ckpt_read_model(path, &desc, &e) != 0) {
        fuzz_check_message(e.msg, sizeof e.msg, path);
        return 0;
    }
    FUZZ_CHECK(desc.classes >= 2 && desc.spec.count >= 1, "classes %d, %d layers",
               desc.classes, desc.spec.count);
    Model m;
    if (model_create(&m, &desc.spec, desc.input, desc.classes, 1, &e) != 0)
        return 0; /* a layer list model_create refuses: its message is not a file's */
    CkptMeta *meta = malloc(sizeof *meta);
    FUZZ_CHECK(meta != NULL, "out of memory");
    History h = {0};
    if (ckpt_read(path, &m, NULL, meta, &h, &e) != 0)
        fuzz_check_message(e.msg, sizeof e.msg, path);
    else
        FUZZ_CHECK(meta->epoch >= 0 && h.count == meta->epoch, "history %d, epoch %d", h.count,
                   meta->epoch);
    free(meta);
    history_free(&h);
    model_free(&m);
    return 0;
}

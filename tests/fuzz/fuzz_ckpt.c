/* libFuzzer harness for checkpoints: the input is written to a file; if
 * ckpt_read_layers accepts it, an Mlp of the widths it reports is created
 * (skipped above FUZZ_MAX_PARAMS parameters, to stay inside libFuzzer's
 * memory limit) and ckpt_read loads the file into it. Refusals must name the
 * file; an accepted checkpoint must describe a 784-...-10 model whose history
 * length equals its epoch. */
#include <hdf5.h>
#include "fuzz_common.h"
#include "mnist/ckpt.h"
#include "mnist/data.h"
#include "mnist/h5util.h"

enum { FUZZ_MAX_PARAMS = 1 << 22 };

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
    int sizes[MLP_MAX_LAYERS + 1];
    Error e = {{0}};
    int L = ckpt_read_layers(path, sizes, &e);
    if (L < 0) {
        fuzz_check_message(e.msg, sizeof e.msg, path);
        return 0;
    }
    FUZZ_CHECK(L >= 1 && L <= MLP_MAX_LAYERS, "%d layers", L);
    FUZZ_CHECK(sizes[0] == MNIST_PIXELS && sizes[L] == MNIST_CLASSES, "widths %d..%d", sizes[0],
               sizes[L]);
    size_t params = 0;
    for (int l = 0; l < L; l++)
        params += (size_t)sizes[l] * sizes[l + 1] + sizes[l + 1];
    if (params > FUZZ_MAX_PARAMS)
        return 0;
    Mlp m;
    FUZZ_CHECK(mlp_create(&m, sizes, L, 0.0f, 1, &e) == 0, "mlp_create: %s", e.msg);
    Adam opt = {0};
    CkptMeta meta;
    History h = {0};
    if (ckpt_read(path, &m, &opt, &meta, &h, &e) != 0) {
        fuzz_check_message(e.msg, sizeof e.msg, path);
    } else {
        FUZZ_CHECK(meta.epoch >= 0 && h.count == meta.epoch, "history %d, epoch %d", h.count,
                   meta.epoch);
        FUZZ_CHECK(opt.t >= 0, "adam step %lld", (long long)opt.t);
    }
    history_free(&h);
    mlp_free(&m);
    return 0;
}

/* main: starts MPI, parses the command line, and dispatches to train,
 * evaluate, predict, convert or export; every rank returns the same exit status.
 * No logic of its own. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "mnist/ckpt.h"
#include "mnist/comm.h"
#include "mnist/config.h"
#include "mnist/convert.h"
#include "mnist/evaluate.h"
#include "mnist/export.h"
#include "mnist/gemm.h"
#include "mnist/h5data.h"
#include "mnist/h5safe.h"
#include "mnist/h5util.h"
#include "mnist/ops.h"
#include "mnist/predict.h"
#include "mnist/train.h"

static void print_version(void)
{
    unsigned maj, min, rel;
    H5get_libversion(&maj, &min, &rel);
    char mpi[256];
    comm_library_version(mpi, sizeof mpi);
    printf("mnist-dist %s\n", MNIST_VERSION);
    printf("MPI:      %s\n", mpi);
    printf("BLAS:     %s\n", ops_blas_config());
    const char *isa;
    const int native = gemm_bf16_native(&isa);
    printf("oneDNN:   %s%s\n", gemm_dnnl_version(),
           !gemm_have_dnnl() ? "" : native ? ", bf16 native" : ", no bf16 on this CPU");
    printf("HDF5:     %u.%u.%u (parallel)\n", maj, min, rel);
#ifdef __clang__
    printf("target:   %s, built with clang %s\n", MNIST_TARGET, __clang_version__);
#else
    printf("target:   %s, built with GCC %s\n", MNIST_TARGET, __VERSION__);
#endif
}

/* A checkpoint's walk takes no argument. */
static int ckpt_walk_arg(const char *path, const char *arg, Error *e)
{
    (void)arg;
    return ckpt_walk(path, e);
}

/* What the --h5-check helper can read, as the commands read it. */
static const H5SafeKind h5_kinds[] = {{"images", h5data_walk}, {"ckpt", ckpt_walk_arg}};

int main(int argc, char **argv)
{
    /* The helper that reads an HDF5 file for us before we trust libhdf5
     * with it (h5safe): before MPI, before anything else. */
    if (argc >= 2 && strcmp(argv[1], H5SAFE_ARG) == 0)
        return h5safe_child_main(argc, argv, h5_kinds, 2);
    h5safe_enable();
    Config cfg;
    config_defaults(&cfg);
    Error e = {{0}};
    const int parsed = config_parse(&cfg, argc, argv, &e);
    /* Started alone (no mpirun/srun), commands that need no other rank skip
     * MPI's start-up (about 0.3 s): convert, export, --help, --version, usage errors. */
    const int launched = comm_launched();
    const int serial = !launched && (parsed != 0 || cfg.help || cfg.version ||
                                     strcmp(cfg.command, "convert") == 0 ||
                                     strcmp(cfg.command, "export") == 0);
    Comm comm;
    if (serial) {
        comm_init_serial(&comm);
    } else if (comm_init(&argc, &argv, &comm) != 0) {
        fprintf(stderr, "mnist-dist: error: MPI initialisation failed\n");
        return EXIT_FAIL;
    }
    h5_quiet();
    int status;
    /* Every rank parses the same argv, so all reach the same verdict without
     * talking; only rank 0 prints it. */
    if (parsed != 0) {
        if (comm.rank == 0)
            fprintf(stderr, "mnist-dist: error: %s\n", e.msg);
        status = EXIT_USAGE;
    } else if (cfg.help) {
        if (comm.rank == 0)
            config_usage(&cfg, stdout);
        status = EXIT_OK;
    } else if (cfg.version) {
        if (comm.rank == 0)
            print_version();
        status = EXIT_OK;
    } else if (strcmp(cfg.command, "convert") == 0) {
        status = convert_run(&cfg, &comm);
    } else if (strcmp(cfg.command, "evaluate") == 0) {
        status = evaluate_run(&cfg, &comm);
    } else if (strcmp(cfg.command, "predict") == 0) {
        status = predict_run(&cfg, &comm);
    } else if (strcmp(cfg.command, "export") == 0) {
        status = export_run(&cfg, &comm);
    } else {
        status = train_run(&cfg, &comm);
    }
    fflush(stdout);
    comm_finalize();
    return status;
}

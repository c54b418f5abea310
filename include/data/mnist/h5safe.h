/* h5safe: libhdf5 1.10 can crash (SIGSEGV, SIGFPE) or read out of bounds on
 * a damaged file, above all in the unchecksummed superblock-0 format h5py
 * writes. Before a reader lets libhdf5 parse a file, a helper process - this
 * binary re-executed as `PROG --h5-check FILE KIND`, under rlimits - reads
 * it as the reader will and answers over fd 3: "ok", or "refused" with the
 * reader's message, which this process then gives without ever letting
 * libhdf5 parse the file. A helper that dies, runs out of time or gives no
 * answer refuses the file too. Each file is checked
 * once per process. Never forks (posix_spawn) and calls no MPI, so it is
 * safe in an MPI rank. Off unless h5safe_enable was called (tests and tools
 * that call the readers directly run them in-process, as before). */
#ifndef MNIST_H5SAFE_H
#define MNIST_H5SAFE_H

#include "mnist/util.h"

#define H5SAFE_ARG "--h5-check" /* the hidden sub-command: PROG --h5-check FILE KIND [ARG] */
#define H5SAFE_TIMEOUT_S 60     /* wall and CPU seconds a check may take (MNIST_H5CHECK_TIMEOUT),
                                   plus 1 s per 32 MiB of file */

/* A KIND's walk, run in the helper: opens path and reads everything the
 * real reader of that kind reads (arg: what the reader was told, e.g. the
 * dataset names; "" when nothing) (every object, attribute and dataset, with
 * their data). 0 when it reads, -1 with e when it refuses the file cleanly;
 * e becomes the caller's message, so it must be what the real reader says.
 * Checks of values that the real reader makes per rank (labels of a row
 * range) are left to the real reader. */
typedef int (*H5SafeWalk)(const char *path, const char *arg, Error *e);

typedef struct H5SafeKind {
    const char *name; /* "images", "ckpt" */
    H5SafeWalk walk;
} H5SafeKind;

/* Turns checking on for this process: every later h5safe_check spawns
 * /proc/self/exe, which must handle H5SAFE_ARG with h5safe_child_main. */
void h5safe_enable(void);

/* 0 when path may be given to libhdf5 for a reader of kind (or checking is
 * off); -1 with e = "PATH: not a readable HDF5 file (the HDF5 library
 * crashed reading it: SIGSEGV)" or similar. Remembers each answer for the
 * same file (path, inode, size and mtime), so a file is checked once. */
int h5safe_check(const char *path, const char *kind, Error *e);

/* h5safe_check for a reader told arg (passed to the walk; part of what is
 * remembered, so each (file, arg) is checked once). */
int h5safe_check_arg(const char *path, const char *kind, const char *arg, Error *e);

/* main() of the helper: argv = PROG --h5-check FILE KIND [ARG]. Limits its own
 * address space (not under ASan), CPU time, core and output file size, runs
 * the walk of KIND from kinds[0..n) and writes "ok\n" or "refused\nMESSAGE"
 * to fd 3 (MNIST_H5CHECK_STDERR=1: also to stderr).
 * Returns 2 on a bad command line; otherwise does not return. */
int h5safe_child_main(int argc, char **argv, const H5SafeKind *kinds, int n);

#endif

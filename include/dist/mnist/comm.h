/* comm: the communication layer: the only module that calls MPI. Init and
 * finalize, sums over ranks, broadcasts, agreement on a status, abort, and the
 * HDF5 file-access property list that binds HDF5 to the world communicator.
 * Must not hold training logic. */
#ifndef MNIST_COMM_H
#define MNIST_COMM_H

#include <stddef.h>
#include <stdint.h>

#include <hdf5.h>

typedef struct Comm {
    int rank, size;
    int thread_level; /* what MPI_Init_thread provided */
} Comm;

/* Initialises MPI (thread level FUNNELED: only the master thread calls MPI)
 * for the whole world; works as a singleton without mpirun. 0 or -1. */
int comm_init(int *argc, char ***argv, Comm *c);

/* 1 when a launcher (mpirun, mpiexec, srun) started this process as a rank,
 * 0 when it runs alone. Needs no MPI_Init. */
int comm_launched(void);

/* A one-rank Comm without MPI, for commands that never talk (convert run
 * alone): every collective is then a no-op. */
void comm_init_serial(Comm *c);

/* Finalises MPI if it was started; call on every rank on the way out. */
void comm_finalize(void);

/* Collective: returns the largest status any rank passed, so every rank
 * takes the same branch (0 = all fine). */
int comm_agree(const Comm *c, int status);

/* Collective in-place sums over ranks of n elements. */
void comm_allreduce_sum_f32(const Comm *c, float *buf, size_t n);
void comm_allreduce_sum_f64(const Comm *c, double *buf, size_t n);
void comm_allreduce_sum_i64(const Comm *c, int64_t *buf, size_t n);

/* A float vector split into consecutive per-rank segments (MPI's int counts
 * and offsets), built once so the collectives below allocate nothing. */
typedef struct CommSegments {
    int *counts, *displs;
} CommSegments;

/* counts[r] floats for rank r. -1 when out of memory or a segment exceeds
 * MPI's int range. */
int comm_segments_init(const Comm *c, CommSegments *s, const size_t *counts);
void comm_segments_free(CommSegments *s);

/* Collective in-place reduce-scatter: afterwards this rank's segment of buf
 * (at its own offset) holds the sum over ranks; the rest of buf is garbage. */
void comm_reduce_scatter_f32(const Comm *c, float *buf, const CommSegments *s);

/* Collective in-place allgather: every rank's segment of buf is copied to
 * every other rank. */
void comm_allgather_f32(const Comm *c, float *buf, const CommSegments *s);

/* Node-shared memory for the gradient exchange on one node: each rank's
 * gradient buffer lives in a shared window every rank of the node can read,
 * and the parameters are a single node-wide copy. Only when all ranks share
 * one node (see comm_shared_init). */
typedef struct CommShared {
    void *win;           /* the MPI window (opaque here) */
    void *node;          /* the node communicator */
    int local_rank, local_size;
    float **grads;       /* grads[k]: rank k's buffer of grad_floats */
    float *params;       /* param_floats shared by the node */
} CommShared;

/* Collective: when every rank is on this node, allocates the shared window
 * (grad_floats per rank, param_floats once) and returns 0; returns 1 (and
 * allocates nothing) when the ranks span several nodes; -1 on failure. */
int comm_shared_init(const Comm *c, CommShared *s, size_t grad_floats, size_t param_floats);

/* Collective: frees the window. Safe on a zeroed CommShared. */
void comm_shared_free(CommShared *s);

/* Collective over the node: makes this rank's writes to the shared memory
 * visible to the others and waits for all of them. */
void comm_shared_sync(const CommShared *s);

/* Collective in-place maximum over ranks of n ints. */
void comm_allreduce_max_int(const Comm *c, int *buf, size_t n);

/* Collective: copies bytes of buf from root to every rank. */
void comm_bcast(const Comm *c, void *buf, size_t bytes, int root);

/* Collective: every rank receives into all[size * bytes] each rank's bytes
 * from mine, in rank order. */
void comm_allgather(const Comm *c, const void *mine, void *all, size_t bytes);

/* Collective: root receives every rank's `bytes` (which may differ by rank)
 * concatenated in rank order into all (used on root only; it must hold the
 * sum over ranks). */
void comm_gatherv(const Comm *c, const void *mine, size_t bytes, void *all, int root);

/* Collective: root sends bytes_per_rank[r] bytes of all (concatenated in rank
 * order; read on root only) to each rank r, which receives my_bytes. */
void comm_scatterv(const Comm *c, const void *all, const size_t *bytes_per_rank, void *mine,
                   size_t my_bytes, int root);

/* Collective barrier. */
void comm_barrier(const Comm *c);

/* Ends the whole job from any one rank with exit status code (never hangs the
 * others). Print the reason first. */
_Noreturn void comm_abort(const Comm *c, int code);

/* A new file-access property list using the MPI-IO driver on the world
 * communicator (close with H5Pclose), or H5I_INVALID_HID on failure. */
hid_t comm_h5_fapl(const Comm *c);

/* Collective: how many ranks share this rank's node (shared memory). */
int comm_local_size(const Comm *c);

/* The MPI library's version string, first line only, into buf. */
void comm_library_version(char *buf, size_t size);

/* Processor name of this rank (host name), into buf. */
void comm_host(char *buf, size_t size);

#endif

/* comm (MPI implementation): thin wrappers over MPI_COMM_WORLD. Errors in
 * MPI calls abort the job (MPI_ERRORS_ARE_FATAL), which is what a dying rank
 * should cause. No training logic here. */
#include "mnist/comm.h"

#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Open MPI singletons (no launcher) share one session directory per host and
 * user, <tmp>/ompi.<host>.<uid>, which each creates at start and removes when
 * it is empty at exit: one process's removal between another's mkdir and
 * stat fails the second one's MPI_Init ("orte_session_dir failed", seen when
 * several start at once on a fresh machine). A singleton here gets a session
 * base of its own, removed at finalize; launched ranks keep the launcher's. */
static char private_tmp[512];

int comm_launched(void)
{
    /* Open MPI's mpirun, PMIx (srun --mpi=pmix, prterun), PMI-1/2 (MPICH's
     * hydra, srun --mpi=pmi2) */
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_FD"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i]))
            return 1;
    return 0;
}

static void remove_private_base(void)
{
    if (private_tmp[0]) {
        rmdir(private_tmp); /* Open MPI has emptied it; harmless if not */
        private_tmp[0] = '\0';
    }
}

static void private_session_base(void)
{
#ifdef OPEN_MPI
    if (comm_launched() || getenv("OMPI_MCA_orte_tmpdir_base"))
        return;
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !tmp[0])
        tmp = "/tmp";
    int n = snprintf(private_tmp, sizeof private_tmp, "%s/mnist-dist-mpi.XXXXXX", tmp);
    if (n < 0 || (size_t)n >= sizeof private_tmp || !mkdtemp(private_tmp)) {
        private_tmp[0] = '\0'; /* fall back to Open MPI's shared one */
        return;
    }
    setenv("OMPI_MCA_orte_tmpdir_base", private_tmp, 1);
    /* no supporting daemon (a singleton never spawns): the process removes
     * its own session directory at finalize, so the base can go too */
    setenv("OMPI_MCA_ess_singleton_isolated", "1", 0);
    atexit(remove_private_base); /* exits that skip comm_finalize */
#endif
}

int comm_init(int *argc, char ***argv, Comm *c)
{
    memset(c, 0, sizeof *c);
    int flag = 0;
    MPI_Initialized(&flag);
    if (!flag)
        private_session_base();
    if (!flag && MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &c->thread_level) != MPI_SUCCESS)
        return -1;
    if (flag)
        MPI_Query_thread(&c->thread_level);
    MPI_Comm_rank(MPI_COMM_WORLD, &c->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &c->size);
    return 0;
}

void comm_init_serial(Comm *c)
{
    memset(c, 0, sizeof *c);
    c->size = 1;
}

void comm_finalize(void)
{
    int started = 0, done = 0;
    MPI_Initialized(&started);
    MPI_Finalized(&done);
    if (started && !done)
        MPI_Finalize();
    remove_private_base();
}

int comm_agree(const Comm *c, int status)
{
    if (c->size == 1)
        return status;
    int worst = status;
    MPI_Allreduce(&status, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return worst;
}

/* MPI counts are int: split very long vectors into INT_MAX-sized pieces. */
static void allreduce_sum(void *buf, size_t n, MPI_Datatype type, size_t elem_bytes)
{
    char *p = buf;
    while (n > 0) {
        int chunk = n > (size_t)INT_MAX ? INT_MAX : (int)n;
        MPI_Allreduce(MPI_IN_PLACE, p, chunk, type, MPI_SUM, MPI_COMM_WORLD);
        p += (size_t)chunk * elem_bytes;
        n -= (size_t)chunk;
    }
}

void comm_allreduce_sum_f32(const Comm *c, float *buf, size_t n)
{
    if (c->size > 1)
        allreduce_sum(buf, n, MPI_FLOAT, sizeof(float));
}

void comm_allreduce_sum_f64(const Comm *c, double *buf, size_t n)
{
    if (c->size > 1)
        allreduce_sum(buf, n, MPI_DOUBLE, sizeof(double));
}

void comm_allreduce_sum_i64(const Comm *c, int64_t *buf, size_t n)
{
    if (c->size > 1)
        allreduce_sum(buf, n, MPI_INT64_T, sizeof(int64_t));
}

int comm_segments_init(const Comm *c, CommSegments *s, const size_t *counts)
{
    s->counts = malloc(sizeof(int) * (size_t)c->size);
    s->displs = malloc(sizeof(int) * (size_t)c->size);
    if (!s->counts || !s->displs) {
        comm_segments_free(s);
        return -1;
    }
    size_t off = 0;
    for (int r = 0; r < c->size; r++) {
        if (counts[r] > (size_t)INT_MAX || off > (size_t)INT_MAX) {
            comm_segments_free(s);
            return -1;
        }
        s->counts[r] = (int)counts[r];
        s->displs[r] = (int)off;
        off += counts[r];
    }
    return 0;
}

void comm_segments_free(CommSegments *s)
{
    free(s->counts);
    free(s->displs);
    s->counts = s->displs = NULL;
}

void comm_reduce_scatter_f32(const Comm *c, float *buf, const CommSegments *s)
{
    if (c->size == 1)
        return;
    MPI_Reduce_scatter(MPI_IN_PLACE, buf, s->counts, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    /* in place, MPI leaves this rank's result at the start of the buffer */
    memmove(buf + s->displs[c->rank], buf, sizeof(float) * (size_t)s->counts[c->rank]);
}

void comm_allgather_f32(const Comm *c, float *buf, const CommSegments *s)
{
    if (c->size == 1)
        return;
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, s->counts, s->displs, MPI_FLOAT,
                   MPI_COMM_WORLD);
}

void comm_allreduce_max_int(const Comm *c, int *buf, size_t n)
{
    /* size 1: nothing to combine */
    if (c->size > 1)
        MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
}

void comm_bcast(const Comm *c, void *buf, size_t bytes, int root)
{
    if (c->size == 1)
        return;
    char *p = buf;
    while (bytes > 0) {
        int chunk = bytes > (size_t)INT_MAX ? INT_MAX : (int)bytes;
        MPI_Bcast(p, chunk, MPI_BYTE, root, MPI_COMM_WORLD);
        p += chunk;
        bytes -= (size_t)chunk;
    }
}

void comm_allgather(const Comm *c, const void *mine, void *all, size_t bytes)
{
    if (c->size == 1) {
        memmove(all, mine, bytes);
        return;
    }
    MPI_Allgather(mine, (int)bytes, MPI_BYTE, all, (int)bytes, MPI_BYTE, MPI_COMM_WORLD);
}

/* comm_gatherv exchanges sizes as MPI_UNSIGNED_LONG_LONG into size_t. */
_Static_assert(sizeof(size_t) == sizeof(unsigned long long), "size_t must be 64-bit");

/* Byte counts and displacements for the v-collectives; MPI counts are int,
 * so anything past 2 GiB per call is refused loudly rather than truncated. */
static void byte_layout(const Comm *c, const size_t *bytes, int *counts, int *displs)
{
    size_t off = 0;
    for (int r = 0; r < c->size; r++) {
        if (bytes[r] > (size_t)INT_MAX || off > (size_t)INT_MAX) {
            fprintf(stderr, "mnist-dist: error: rank %d: more than 2 GiB in one gather/scatter\n",
                    c->rank);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        counts[r] = (int)bytes[r];
        displs[r] = (int)off;
        off += bytes[r];
    }
}

void comm_gatherv(const Comm *c, const void *mine, size_t bytes, void *all, int root)
{
    if (c->size == 1) {
        memmove(all, mine, bytes);
        return;
    }
    size_t *sizes = malloc(sizeof(size_t) * (size_t)c->size);
    int *counts = malloc(sizeof(int) * (size_t)c->size), *displs = malloc(sizeof(int) * (size_t)c->size);
    if (!sizes || !counts || !displs) {
        fprintf(stderr, "mnist-dist: error: rank %d: out of memory in gather\n", c->rank);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    unsigned long long mine_n = bytes;
    MPI_Allgather(&mine_n, 1, MPI_UNSIGNED_LONG_LONG, sizes, 1, MPI_UNSIGNED_LONG_LONG,
                  MPI_COMM_WORLD);
    byte_layout(c, sizes, counts, displs);
    MPI_Gatherv(mine, (int)bytes, MPI_BYTE, all, counts, displs, MPI_BYTE, root, MPI_COMM_WORLD);
    free(sizes), free(counts), free(displs);
}

void comm_scatterv(const Comm *c, const void *all, const size_t *bytes_per_rank, void *mine,
                   size_t my_bytes, int root)
{
    if (c->size == 1) {
        memmove(mine, all, my_bytes);
        return;
    }
    int *counts = malloc(sizeof(int) * (size_t)c->size), *displs = malloc(sizeof(int) * (size_t)c->size);
    if (!counts || !displs) {
        fprintf(stderr, "mnist-dist: error: rank %d: out of memory in scatter\n", c->rank);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    if (c->rank == root)
        byte_layout(c, bytes_per_rank, counts, displs);
    MPI_Scatterv(all, counts, displs, MPI_BYTE, mine, (int)my_bytes, MPI_BYTE, root,
                 MPI_COMM_WORLD);
    free(counts), free(displs);
}

void comm_barrier(const Comm *c)
{
    if (c->size == 1)
        return;
    MPI_Barrier(MPI_COMM_WORLD);
}

_Noreturn void comm_abort(const Comm *c, int code)
{
    (void)c;
    MPI_Abort(MPI_COMM_WORLD, code);
    exit(code); /* MPI_Abort does not return; this satisfies _Noreturn. */
}

hid_t comm_h5_fapl(const Comm *c)
{
    (void)c;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0)
        return H5I_INVALID_HID;
    if (H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL) < 0) {
        H5Pclose(fapl);
        return H5I_INVALID_HID;
    }
    return fapl;
}

void comm_host(char *buf, size_t size)
{
    char name[MPI_MAX_PROCESSOR_NAME];
    int len = 0;
    MPI_Get_processor_name(name, &len);
    snprintf(buf, size, "%s", name);
}

int comm_local_size(const Comm *c)
{
    if (c->size == 1)
        return 1;
    MPI_Comm node;
    int n = 1;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) ==
        MPI_SUCCESS) {
        MPI_Comm_size(node, &n);
        MPI_Comm_free(&node);
    }
    return n;
}

void comm_library_version(char *buf, size_t size)
{
    char v[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(v, &len); /* may be called before MPI_Init */
    v[len < (int)sizeof v ? len : (int)sizeof v - 1] = '\0';
    v[strcspn(v, "\n,")] = '\0';
    snprintf(buf, size, "%s", v);
}

int comm_shared_init(const Comm *c, CommShared *s, size_t grad_floats, size_t param_floats)
{
    memset(s, 0, sizeof *s);
    if (comm_local_size(c) != c->size)
        return 1; /* several nodes: the caller uses the message-passing path */
    MPI_Comm *node = malloc(sizeof *node);
    MPI_Win *win = malloc(sizeof *win);
    s->grads = calloc((size_t)c->size, sizeof *s->grads);
    if (!node || !win || !s->grads) {
        free(node), free(win), free(s->grads);
        memset(s, 0, sizeof *s);
        return -1;
    }
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, node);
    MPI_Comm_rank(*node, &s->local_rank);
    MPI_Comm_size(*node, &s->local_size);
    /* rank 0 of the node also holds the shared parameters after its grads */
    const size_t floats = grad_floats + (s->local_rank == 0 ? param_floats : 0);
    float *mine = NULL;
    if (MPI_Win_allocate_shared((MPI_Aint)(floats * sizeof(float)), sizeof(float), MPI_INFO_NULL,
                                *node, &mine, win) != MPI_SUCCESS) {
        MPI_Comm_free(node);
        free(node), free(win), free(s->grads);
        memset(s, 0, sizeof *s);
        return -1;
    }
    for (int k = 0; k < s->local_size; k++) {
        MPI_Aint size;
        int disp;
        float *base;
        MPI_Win_shared_query(*win, k, &size, &disp, &base);
        s->grads[k] = base;
        if (k == 0)
            s->params = base + grad_floats;
    }
    /* passive-target epoch for the whole run: loads and stores plus
     * MPI_Win_sync and barriers order the accesses */
    MPI_Win_lock_all(MPI_MODE_NOCHECK, *win);
    s->win = win;
    s->node = node;
    return 0;
}

void comm_shared_free(CommShared *s)
{
    if (s->win) {
        MPI_Win *win = s->win;
        MPI_Win_unlock_all(*win);
        MPI_Win_free(win);
        free(win);
    }
    if (s->node) {
        MPI_Comm *node = s->node;
        MPI_Comm_free(node);
        free(node);
    }
    free(s->grads);
    memset(s, 0, sizeof *s);
}

void comm_shared_sync(const CommShared *s)
{
    MPI_Win_sync(*(MPI_Win *)s->win);
    MPI_Barrier(*(MPI_Comm *)s->node);
    MPI_Win_sync(*(MPI_Win *)s->win);
}

/* comm (MPI implementation): thin wrappers over MPI_COMM_WORLD. Errors in
 * MPI calls abort the job (MPI_ERRORS_ARE_FATAL), which is what a dying rank
 * should cause. No training logic here. */
#include "mnist/comm.h"

#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int comm_init(int *argc, char ***argv, Comm *c)
{
    memset(c, 0, sizeof *c);
    int flag = 0;
    MPI_Initialized(&flag);
    if (!flag && MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &c->thread_level) != MPI_SUCCESS)
        return -1;
    if (flag)
        MPI_Query_thread(&c->thread_level);
    MPI_Comm_rank(MPI_COMM_WORLD, &c->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &c->size);
    return 0;
}

void comm_finalize(void)
{
    int flag = 0;
    MPI_Finalized(&flag);
    if (!flag)
        MPI_Finalize();
}

int comm_agree(const Comm *c, int status)
{
    (void)c;
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
    (void)c;
    MPI_Allgather(mine, (int)bytes, MPI_BYTE, all, (int)bytes, MPI_BYTE, MPI_COMM_WORLD);
}

void comm_barrier(const Comm *c)
{
    (void)c;
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
    (void)c;
    MPI_Comm node;
    int n = 1;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) ==
        MPI_SUCCESS) {
        MPI_Comm_size(node, &n);
        MPI_Comm_free(&node);
    }
    return n;
}

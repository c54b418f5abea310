/* allreduce-bench: times the trainer's gradient allreduce (comm_allreduce_
 * sum_f32) for message sizes from 4 B to 16 MiB and fits the alpha-beta
 * model t(n) = a + b n, reported as the ring model's per-message latency
 * alpha = a / (2 (P-1)) and per-byte time beta = b P / (2 (P-1)).
 * Run under mpirun with the transport to measure; prints a table and one
 * JSON line (rank 0). Uses the project's comm layer, not raw MPI. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mnist/comm.h"
#include "mnist/util.h"

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    Comm c;
    if (comm_init(&argc, &argv, &c))
        return 1;
    const size_t max_floats = (size_t)4 << 20; /* 16 MiB */
    float *buf = malloc(sizeof(float) * max_floats);
    double xs[16], ts[16];
    int n = 0;
    if (c.rank == 0)
        printf("%d ranks\n%12s %12s %10s\n", c.size, "bytes", "median us", "GB/s");
    for (size_t floats = 1; floats <= max_floats; floats *= 4) {
        for (size_t i = 0; i < floats; i++)
            buf[i] = 1.0f;
        /* Enough repetitions for ~0.2 s per size, decided on rank 0. */
        int reps = floats < 4096 ? 400 : floats < 262144 ? 60 : 12;
        double t[400];
        for (int r = -3; r < reps; r++) {
            comm_barrier(&c);
            const double t0 = time_now_s();
            comm_allreduce_sum_f32(&c, buf, floats);
            if (r >= 0)
                t[r] = time_now_s() - t0;
        }
        /* the slowest rank decides: reduce the times by max */
        double local_median;
        qsort(t, (size_t)reps, sizeof t[0], cmp);
        local_median = t[reps / 2];
        double all[64] = {0};
        comm_allgather(&c, &local_median, all, sizeof(double));
        double med = 0;
        for (int k = 0; k < c.size && k < 64; k++)
            med = fmax(med, all[k]);
        if (c.rank == 0)
            printf("%12zu %12.1f %10.3f\n", floats * 4, med * 1e6, floats * 4 / med / 1e9);
        xs[n] = (double)(floats * 4);
        ts[n++] = med;
    }
    if (c.rank == 0 && c.size > 1) {
        /* least squares t = a + b x, weighting each size by 1/t so small and
         * large messages count alike */
        double sw = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
        for (int i = 0; i < n; i++) {
            double w = 1.0 / (ts[i] * ts[i]);
            sw += w, sx += w * xs[i], sy += w * ts[i], sxx += w * xs[i] * xs[i], sxy += w * xs[i] * ts[i];
        }
        const double b = (sw * sxy - sx * sy) / (sw * sxx - sx * sx), a = (sy - b * sx) / sw;
        const double steps = 2.0 * (c.size - 1);
        const double alpha = a / steps, beta = b * c.size / steps;
        printf("fit: t(n) = %.2f us + n / %.3f GB/s; ring model alpha = %.2f us, "
               "1/beta = %.3f GB/s\n",
               a * 1e6, 1e-9 / b, alpha * 1e6, 1e-9 / beta);
        printf("{\"ranks\": %d, \"alpha_s\": %.3e, \"beta_s_per_byte\": %.3e}\n", c.size, alpha,
               beta);
    }
    free(buf);
    comm_finalize();
    return 0;
}

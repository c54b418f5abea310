/* convert: `mnist-dist convert`: reads CSV or IDX, validates every value,
 * and writes HDF5 or CSV (by the output's ending) through temp + rename.
 * Rank 0 does the work; other ranks only wait for the shared status. */
#include <stdio.h>
#include <string.h>

#include "mnist/convert.h"
#include "mnist/data.h"
#include "mnist/data_csv.h"
#include "mnist/data_idx.h"
#include "mnist/h5data.h"

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static int convert_files(const Config *cfg, Error *e)
{
    const int n = cfg->num_positional;
    const char *out = cfg->positional[n - 1];
    const int to_h5 = ends_with(out, ".h5") || ends_with(out, ".hdf5");
    if (!to_h5 && !ends_with(out, ".csv"))
        return err_set(e, "%s: output must end in .h5, .hdf5 or .csv", out);
    const char *in = cfg->positional[0];
    Dataset d = {0};
    const double t0 = time_now_s();
    int rc;
    if (n == 3) {
        rc = data_idx_read(in, cfg->positional[1], cfg->classes, &d, e);
    } else if (data_is_idx(in)) {
        rc = data_idx_read(in, NULL, cfg->classes, &d, e);
    } else {
        rc = data_csv_read(in, cfg->classes, &d, e);
    }
    if (rc)
        return -1;
    const double t_read = time_now_s() - t0;
    char source[2 * CONFIG_PATH_MAX + 8];
    snprintf(source, sizeof source, "%s%s%s", in, n == 3 ? " + " : "", n == 3 ? cfg->positional[1] : "");
    rc = to_h5 ? h5data_write(out, &d, source, e) : data_csv_write(out, &d, e);
    if (rc == 0 && !cfg->quiet)
        printf("%s: %zu rows%s -> %s (read %.2f s, total %.2f s)\n", source, d.rows,
               d.labels ? " with labels" : ", no labels", out, t_read, time_now_s() - t0);
    dataset_free(&d);
    return rc;
}

int convert_run(const Config *cfg, const Comm *comm)
{
    Error e = {{0}};
    int status = 0;
    if (comm->rank == 0) {
        status = convert_files(cfg, &e) ? EXIT_FAIL : EXIT_OK;
        if (status)
            fprintf(stderr, "mnist-dist: error: %s\n", e.msg);
        fflush(stdout);
    }
    comm_bcast(comm, &status, sizeof status, 0);
    return status;
}

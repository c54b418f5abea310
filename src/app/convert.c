/* convert: `mnist-dist convert`: reads CSV, IDX, NumPy (.npy, .npz) or HDF5
 * (h5py's layouts and dataset names too), validates every value, and writes
 * HDF5 or CSV (by the output's ending) through temp + rename. Rank 0 does
 * the work; other ranks only wait for the shared status. */
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mnist/convert.h"
#include "mnist/data.h"
#include "mnist/data_csv.h"
#include "mnist/data_idx.h"
#include "mnist/data_npy.h"
#include "mnist/h5data.h"
#include "mnist/zipread.h"

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* 1 if path starts with the HDF5 signature (or is named .h5/.hdf5). */
static int is_hdf5(const char *path)
{
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    unsigned char b[8];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    long got = fd >= 0 ? file_read_full(fd, b, sizeof b) : 0;
    if (fd >= 0)
        close(fd);
    return (got == 8 && memcmp(b, sig, 8) == 0) || ends_with(path, ".h5") ||
           ends_with(path, ".hdf5");
}

/* All rows of an HDF5 image set, its datasets named as the options say. */
static int read_h5(const Config *cfg, const char *in, Dataset *d, Error *e)
{
    const H5Names names = {cfg->images_dataset, cfg->labels_dataset};
    H5Data h;
    if (h5data_open_named(&h, in, &names, H5P_DEFAULT, e))
        return -1;
    const int rc = h5data_read(&h, 0, h.rows, d, e);
    h5data_close(&h);
    return rc;
}

/* Reads the input(s) by what they hold; source names them for the output. */
static int read_input(const Config *cfg, Dataset *d, char *source, size_t size, Error *e)
{
    const int n = cfg->num_positional;
    const char *in = cfg->positional[0], *second = n == 3 ? cfg->positional[1] : NULL;
    snprintf(source, size, "%s%s%s", in, second ? " + " : "", second ? second : "");
    if (data_is_npy(in))
        return data_npy_read(in, second, cfg->classes, d, e);
    const int zip = zipread_is_zip(in), h5 = !zip && is_hdf5(in);
    if ((zip || h5) && second)
        return err_set(e, "%s: a %s holds images and labels both: convert %s OUT", second,
                       zip ? ".npz" : "HDF5 file", zip ? "IN.npz" : "IN.h5");
    if (zip) {
        char img[300], lab[300];
        snprintf(img, sizeof img, "%s", cfg->images_dataset);
        snprintf(lab, sizeof lab, "%s", cfg->labels_dataset);
        if (!img[0])
            snprintf(img, sizeof img, "x_%s", cfg->split);
        if (!lab[0])
            snprintf(lab, sizeof lab, "y_%s", cfg->split);
        snprintf(source, size, "%s (%s, %s)", in, img, lab);
        return data_npz_read(in, img, lab, cfg->classes, d, e);
    }
    if (h5)
        return read_h5(cfg, in, d, e);
    if (second)
        return data_idx_read(in, second, cfg->classes, d, e);
    if (data_is_idx(in))
        return data_idx_read(in, NULL, cfg->classes, d, e);
    return data_csv_read(in, cfg->classes, d, e);
}

static int convert_files(const Config *cfg, Error *e)
{
    const int n = cfg->num_positional;
    const char *out = cfg->positional[n - 1];
    const int to_h5 = ends_with(out, ".h5") || ends_with(out, ".hdf5");
    if (!to_h5 && !ends_with(out, ".csv"))
        return err_set(e, "%s: output must end in .h5, .hdf5 or .csv", out);
    Dataset d = {0};
    const double t0 = time_now_s();
    char source[2 * CONFIG_PATH_MAX + 8];
    if (read_input(cfg, &d, source, sizeof source, e))
        return -1;
    const double t_read = time_now_s() - t0;
    int rc = to_h5 ? h5data_write(out, &d, source, e) : data_csv_write(out, &d, e);
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

/* data_images: predict's image inputs: lists a directory (regular files
 * named .png/.jpg/.jpeg, not hidden, sorted by name with strcmp), reads each
 * through image and digit, and stops at the first file that fails, naming
 * it. Must not call MPI or HDF5, print or exit. */
#define _POSIX_C_SOURCE 200809L
#include "mnist/data_images.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mnist/digit.h"
#include "mnist/image.h"

int data_images_is_input(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return 1;
    if (image_has_image_name(path))
        return 1;
    uint8_t b[8];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    const long got = fd >= 0 ? file_read_full(fd, b, sizeof b) : 0;
    if (fd >= 0)
        close(fd);
    return got > 0 && image_is_encoded(b, (size_t)got);
}

void data_images_free_names(ImageNames *names)
{
    for (size_t i = 0; i < names->count; i++) {
        free(names->names ? names->names[i] : NULL);
        free(names->paths ? names->paths[i] : NULL);
    }
    free(names->names);
    free(names->paths);
    memset(names, 0, sizeof *names);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends name (and dir/name as its path) to names; -1 out of memory. */
static int add_name(ImageNames *names, size_t *cap, const char *dir, const char *name)
{
    if (names->count == *cap) {
        const size_t n = *cap ? 2 * *cap : 64;
        char **nn = realloc(names->names, n * sizeof *nn);
        if (nn)
            names->names = nn;
        char **np = nn ? realloc(names->paths, n * sizeof *np) : NULL;
        if (!np)
            return -1;
        names->paths = np, *cap = n;
    }
    const size_t len = (dir ? strlen(dir) + 1 : 0) + strlen(name) + 1;
    char *path = malloc(len), *copy = strdup(name);
    if (!path || !copy) {
        free(path), free(copy);
        return -1;
    }
    snprintf(path, len, "%s%s%s", dir ? dir : "", dir ? "/" : "", name);
    names->names[names->count] = copy, names->paths[names->count] = path;
    names->count++;
    return 0;
}

/* The image files of directory dir, sorted by name. */
static int list_dir(const char *dir, ImageNames *names, Error *e)
{
    DIR *d = opendir(dir);
    if (!d)
        return err_set(e, "%s: cannot open the directory: %s", dir, strerror(errno));
    size_t cap = 0;
    int rc = 0;
    struct dirent *ent;
    while (rc == 0 && (ent = readdir(d)) != NULL) {
        const char *n = ent->d_name;
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
            continue;
        char path[4096];
        struct stat st;
        if (n[0] == '.' || !image_has_image_name(n) ||
            str_fmt(path, sizeof path, "%s/%s", dir, n) != 0 || stat(path, &st) != 0 ||
            !S_ISREG(st.st_mode)) {
            names->skipped++;
            continue;
        }
        if (add_name(names, &cap, dir, n))
            rc = err_set(e, "%s: out of memory listing the directory", dir);
    }
    closedir(d);
    if (rc == 0 && names->count == 0)
        rc = err_set(e, "%s: no .png, .jpg or .jpeg images in the directory (%zu other entr%s "
                        "skipped)", dir, names->skipped, names->skipped == 1 ? "y" : "ies");
    if (rc == 0) {
        /* sort names and paths together: the path is dir/name, so sorting
         * each by itself keeps them in step */
        qsort(names->names, names->count, sizeof *names->names, by_name);
        qsort(names->paths, names->count, sizeof *names->paths, by_name);
    }
    return rc;
}

int data_images_read(const char *path, Dataset *out, ImageNames *names, Error *e)
{
    memset(out, 0, sizeof *out);
    memset(names, 0, sizeof *names);
    struct stat st;
    if (stat(path, &st) != 0)
        return err_set(e, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 0;
    int rc = S_ISDIR(st.st_mode) ? list_dir(path, names, e)
             : add_name(names, &cap, NULL, path) ? err_set(e, "%s: out of memory", path)
                                                 : 0;
    if (rc == 0) {
        out->rows = names->count;
        out->shape = (Shape){DIGIT_SIDE, DIGIT_SIDE, 1};
        out->images = malloc(names->count * DIGIT_SIDE * DIGIT_SIDE + 1);
        if (!out->images)
            rc = err_set(e, "%s: out of memory for %zu images", path, names->count);
    }
    for (size_t i = 0; rc == 0 && i < names->count; i++) {
        GreyImage img;
        if (image_read(&img, names->paths[i], e)) {
            rc = -1;
            break;
        }
        if (digit_preprocess(out->images + i * DIGIT_SIDE * DIGIT_SIDE, img.px, img.w, img.h,
                             NULL, e))
            rc = err_prefix(e, "%s", names->paths[i]);
        image_free(&img);
    }
    if (rc) {
        dataset_free(out);
        data_images_free_names(names);
    }
    return rc;
}

/* Shared by the libFuzzer harnesses: a per-process scratch directory on
 * tmpfs (the readers take paths, not buffers), writing an input to a file
 * there, and a check that traps so libFuzzer records the input. */
#ifndef MNIST_FUZZ_COMMON_H
#define MNIST_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Fails the run (libFuzzer saves the input) when cond is false. */
#define FUZZ_CHECK(cond, ...)                                                                     \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            fprintf(stderr, "fuzz check failed: %s: ", #cond);                                    \
            fprintf(stderr, __VA_ARGS__);                                                         \
            fprintf(stderr, "\n");                                                                \
            abort();                                                                              \
        }                                                                                         \
    } while (0)

/* dir/name for this process: under $MNIST_FUZZ_DIR (tools/fuzz points it at
 * tmpfs and removes it afterwards), else /dev/shm or /tmp; one subdirectory
 * per process, since libFuzzer may run several. */
static inline const char *fuzz_path(const char *name)
{
    static char dir[512];
    static char paths[4][640];
    static int next;
    if (!dir[0]) {
        const char *base = getenv("MNIST_FUZZ_DIR");
        if (!base || !*base)
            base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(dir, sizeof dir, "%s/mnist-fuzz-%d", base, (int)getpid());
        mkdir(dir, 0700);
    }
    char *p = paths[next++ % 4];
    snprintf(p, sizeof paths[0], "%s/%s", dir, name);
    return p;
}

static inline void fuzz_write(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    FUZZ_CHECK(f != NULL, "cannot create %s", path);
    FUZZ_CHECK(size == 0 || fwrite(data, 1, size, f) == size, "cannot write %s", path);
    FUZZ_CHECK(fclose(f) == 0, "cannot close %s", path);
}

/* An error message must be terminated and name the file. */
static inline void fuzz_check_message(const char *msg, size_t cap, const char *path)
{
    FUZZ_CHECK(memchr(msg, '\0', cap) != NULL, "message not terminated");
    FUZZ_CHECK(strstr(msg, path) != NULL, "message '%s' does not name %s", msg, path);
}

#endif

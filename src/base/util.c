/* util: error formatting, aligned allocation, atomic file commit, clock.
 * No printing, no exiting: every failure is returned as an Error. */
#define _GNU_SOURCE
#include "mnist/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int err_set(Error *e, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int err_prefix(Error *e, const char *fmt, ...)
{
    if (!e)
        return -1;
    char head[256], old[sizeof e->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof old);
    /* Truncating an over-long message is acceptable: it stays terminated. */
    if (str_fmt(e->msg, sizeof e->msg, "%s: %s", head, old))
        e->msg[sizeof e->msg - 1] = '\0';
    return -1;
}

void *alloc_aligned(size_t bytes)
{
    size_t rounded = (bytes + 63) / 64 * 64;
    if (rounded == 0)
        rounded = 64;
    void *p = aligned_alloc(64, rounded);
    if (p)
        memset(p, 0, rounded);
    return p;
}

int path_mkdirs(const char *dir, Error *e)
{
    char buf[4096];
    if (str_fmt(buf, sizeof buf, "%s", dir))
        return err_set(e, "%s: path too long", dir);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return err_set(e, "%s: cannot create directory: %s", buf, strerror(errno));
            struct stat st;
            if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
                return err_set(e, "%s: exists and is not a directory", buf);
            *p = saved;
            if (saved == '\0')
                break;
        }
    }
    return 0;
}

int path_tmp_name(char *tmp, size_t tmp_size, const char *path, Error *e)
{
    if (str_fmt(tmp, tmp_size, "%s.tmp.%ld", path, (long)getpid()))
        return err_set(e, "%s: path too long", path);
    return 0;
}

static int fsync_path(const char *path, int flags)
{
    int fd = open(path, flags);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int path_commit(const char *tmp, const char *path, Error *e)
{
    if (fsync_path(tmp, O_RDONLY) != 0) {
        int saved = errno;
        unlink(tmp);
        return err_set(e, "%s: cannot sync to disk: %s", path, strerror(saved));
    }
    if (rename(tmp, path) != 0) {
        int saved = errno;
        unlink(tmp);
        return err_set(e, "%s: cannot rename %s into place: %s", path, tmp, strerror(saved));
    }
    /* The rename itself is durable only once the directory is synced. */
    char dir[4096];
    if (str_fmt(dir, sizeof dir, "%s", path) == 0) {
        char *slash = strrchr(dir, '/');
        if (slash == dir)
            slash[1] = '\0';
        else if (slash)
            *slash = '\0';
        else
            strcpy(dir, ".");
        fsync_path(dir, O_RDONLY | O_DIRECTORY);
    }
    return 0;
}

long file_read_full(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (long)got;
}

int file_read_all(const char *path, size_t max_bytes, unsigned char **out, size_t *n, Error *e)
{
    *out = NULL, *n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set(e, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(e, "%s: not a regular file", path);
    }
    const size_t size = (size_t)st.st_size;
    if ((unsigned long long)st.st_size > (unsigned long long)max_bytes) {
        close(fd);
        return err_set(e, "%s: file is %llu bytes, more than the %zu accepted", path,
                       (unsigned long long)st.st_size, max_bytes);
    }
    unsigned char *buf = malloc(size + 1);
    if (!buf) {
        close(fd);
        return err_set(e, "%s: out of memory for %zu bytes", path, size);
    }
    const long got = file_read_full(fd, buf, size);
    const int saved = errno;
    close(fd);
    if (got < 0 || (size_t)got != size) {
        free(buf);
        return err_set(e, "%s: read failed: %s", path,
                       got < 0 ? strerror(saved) : "the file shrank while being read");
    }
    buf[size] = '\0';
    *out = buf, *n = size;
    return 0;
}

int file_write_atomic(const char *path, const void *buf, size_t n, Error *e)
{
    char tmp[4096];
    if (path_tmp_name(tmp, sizeof tmp, path, e))
        return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0)
        return err_set(e, "%s: cannot create: %s", path, strerror(errno));
    const char *p = buf;
    size_t left = n;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int saved = w < 0 ? errno : ENOSPC;
            close(fd);
            unlink(tmp);
            return err_set(e, "%s: write failed: %s", path, strerror(saved));
        }
        p += w, left -= (size_t)w;
    }
    if (close(fd) != 0) {
        int saved = errno;
        unlink(tmp);
        return err_set(e, "%s: write failed: %s", path, strerror(saved));
    }
    return path_commit(tmp, path, e);
}

int path_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

double time_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int str_fmt(char *dst, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dst, size, fmt, ap);
    va_end(ap);
    return (n < 0 || (size_t)n >= size) ? -1 : 0;
}

/* util: the error type every module returns through, aligned allocation, file
 * helpers (temp name + rename, mkdir -p) and a monotonic clock.
 * Must not print or exit: callers decide what to do with an error. */
#ifndef MNIST_UTIL_H
#define MNIST_UTIL_H

#include <stddef.h>
#include <stdio.h>

#define MNIST_VERSION "0.1.0"

/* Exit statuses shared by every subcommand and every rank. */
enum {
    EXIT_OK = 0,
    EXIT_FAIL = 1,  /* runtime error: bad data, I/O, numerics */
    EXIT_USAGE = 2, /* bad command line */
    EXIT_STOPPED = 75, /* stopped by SIGUSR1/SIGTERM after writing a checkpoint:
                          rerun with --resume auto (EX_TEMPFAIL: "try again") */
};

/* A filled-in error message. Functions that can fail take an Error * and
 * return 0 on success or -1 after writing the message into it. */
typedef struct Error {
    char msg[1024];
} Error;

/* Formats the message into e (if non-NULL) and returns -1, so callers can
 * write `return err_set(e, "...")`. */
int err_set(Error *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefixes e's message with the formatted text plus ": ". Returns -1. */
int err_prefix(Error *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* 64-byte aligned, zeroed allocation of bytes (rounded up); NULL on failure.
 * Free with free(). */
void *alloc_aligned(size_t bytes);

/* Creates dir and its parents (like mkdir -p). 0 or -1 with e filled. */
int path_mkdirs(const char *dir, Error *e);

/* Writes "<path>.tmp.<pid>" into tmp (size tmp_size): the temporary name for
 * an output that is renamed into place once complete. 0 or -1 if too long. */
int path_tmp_name(char *tmp, size_t tmp_size, const char *path, Error *e);

/* fsyncs the file at tmp, renames it to path, and fsyncs the directory, so a
 * crash leaves either the old file or the complete new one. On failure the
 * temp file is removed. */
int path_commit(const char *tmp, const char *path, Error *e);

/* Reads up to n bytes from fd, retrying short reads and EINTR; returns the
 * bytes read (< n only at end of file) or -1 with errno set. */
long file_read_full(int fd, void *buf, size_t n);

/* Reads the whole regular file at path into *out (malloc'ed, *n bytes, one
 * NUL byte beyond them; free it). Refuses a file larger than max_bytes or not
 * a regular file. -1 with e = "PATH: what failed" (*out NULL). */
int file_read_all(const char *path, size_t max_bytes, unsigned char **out, size_t *n, Error *e);

/* Writes n bytes to path atomically: a temp name, write, fsync, rename. On
 * failure (e.g. "No space left on device") -1 with e naming path, the temp
 * file removed and any previous file at path untouched. */
int file_write_atomic(const char *path, const void *buf, size_t n, Error *e);

/* 1 if path names an existing file or directory. */
int path_exists(const char *path);

/* Seconds from an arbitrary fixed point (CLOCK_MONOTONIC). */
double time_now_s(void);

/* printf-style snprintf that reports truncation: 0 or -1 when it did not fit. */
int str_fmt(char *dst, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif

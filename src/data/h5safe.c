/* h5safe: checks an HDF5 file in a helper process before libhdf5 parses it
 * in this one (why: include/data/mnist/h5safe.h). The parent spawns
 * /proc/self/exe --h5-check FILE KIND with its stdio on /dev/null and a pipe
 * on fd 3, waits for the answer with a deadline and remembers it. Must not
 * fork (an MPI rank may call it), call MPI, or parse the file itself. */
#define _GNU_SOURCE
#include "mnist/h5safe.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mnist/h5util.h"

extern char **environ;

#if defined(__SANITIZE_ADDRESS__)
#define H5SAFE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define H5SAFE_ASAN 1
#endif
#endif

enum { CACHE_MAX = 64 };

typedef struct Answer {
    char path[1024];
    char kind[16];
    char arg[520];
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    int status;      /* 0 safe, -1 refused */
    char msg[1024];  /* the refusal */
} Answer;

static int enabled;
static Answer cache[CACHE_MAX];
static int cached, next_slot;

void h5safe_enable(void) { enabled = 1; }

/* The helper's deadline (wall and CPU): the base, or MNIST_H5CHECK_TIMEOUT,
 * plus 1 s per 32 MiB of file, since it reads (and inflates) all of it. */
static int timeout_s(off_t file_bytes)
{
    const char *s = getenv("MNIST_H5CHECK_TIMEOUT");
    const long v = s ? strtol(s, NULL, 10) : 0;
    const long base = v > 0 && v < 86400 ? v : H5SAFE_TIMEOUT_S;
    return (int)(base + (file_bytes > 0 ? (long)(file_bytes >> 25) : 0));
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static Answer *lookup(const char *path, const char *kind, const char *arg, const struct stat *st)
{
    for (int i = 0; i < cached; i++) {
        Answer *a = &cache[i];
        if (strcmp(a->path, path) == 0 && strcmp(a->kind, kind) == 0 &&
            strcmp(a->arg, arg) == 0 && a->dev == st->st_dev &&
            a->ino == st->st_ino && a->size == st->st_size &&
            a->mtime.tv_sec == st->st_mtim.tv_sec && a->mtime.tv_nsec == st->st_mtim.tv_nsec)
            return a;
    }
    return NULL;
}

static void remember(const char *path, const char *kind, const char *arg, const struct stat *st,
                     int status, const Error *e)
{
    if (strlen(path) >= sizeof cache[0].path || strlen(arg) >= sizeof cache[0].arg)
        return;
    Answer *a = &cache[next_slot];
    next_slot = (next_slot + 1) % CACHE_MAX;
    if (cached < CACHE_MAX)
        cached++;
    snprintf(a->path, sizeof a->path, "%s", path);
    snprintf(a->kind, sizeof a->kind, "%s", kind);
    snprintf(a->arg, sizeof a->arg, "%s", arg);
    a->dev = st->st_dev, a->ino = st->st_ino, a->size = st->st_size, a->mtime = st->st_mtim;
    a->status = status;
    snprintf(a->msg, sizeof a->msg, "%s", status ? e->msg : "");
}

/* Starts the helper with its answer pipe on fd 3; its pid, or -1 with e. */
static pid_t spawn_helper(const char *path, const char *kind, const char *arg, int answer_fd,
                          Error *e)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    const int keep_stderr = getenv("MNIST_H5CHECK_STDERR") != NULL;
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    if (!keep_stderr) /* a sanitizer's report of a damaged file is not ours to print */
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, answer_fd, 3);
    posix_spawn_file_actions_addclosefrom_np(&fa, 4);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    char *argv[] = {"mnist-dist", H5SAFE_ARG, (char *)path, (char *)kind, (char *)arg, NULL};
    if (!arg[0])
        argv[4] = NULL;
    pid_t pid = -1;
    const int rc = posix_spawn(&pid, "/proc/self/exe", &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
        err_set(e, "%s: cannot check it: cannot start a helper process: %s", path, strerror(rc));
        return -1;
    }
    return pid;
}

/* Reads the helper's answer until EOF or the deadline; 1 when it timed out. */
static int read_answer(int fd, char *buf, size_t size, int limit_s)
{
    size_t n = 0;
    buf[0] = '\0';
    const double deadline = now_s() + limit_s;
    for (;;) {
        const double left = deadline - now_s();
        if (left <= 0)
            return 1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        const int r = poll(&p, 1, (int)(left * 1000) + 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            return 1;
        if (r < 0)
            break;
        const ssize_t got = read(fd, buf + n, size - 1 - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0 || (n += (size_t)got) >= size - 1)
            break;
    }
    buf[n] = '\0';
    return 0;
}

static int run_helper(const char *path, const char *kind, const char *arg, off_t bytes,
                      Error *e)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return err_set(e, "%s: cannot check it: pipe: %s", path, strerror(errno));
    if (fds[1] < 4) { /* clear of closed stdio, and of 3 (dup2 onto itself keeps CLOEXEC) */
        const int high = fcntl(fds[1], F_DUPFD_CLOEXEC, 4);
        close(fds[1]);
        if (high < 0) {
            close(fds[0]);
            return err_set(e, "%s: cannot check it: %s", path, strerror(errno));
        }
        fds[1] = high;
    }
    const pid_t pid = spawn_helper(path, kind, arg, fds[1], e);
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        return -1;
    }
    char answer[sizeof e->msg + 16] = "";
    const int limit = timeout_s(bytes);
    const int timed_out = read_answer(fds[0], answer, sizeof answer, limit);
    close(fds[0]);
    if (timed_out)
        kill(pid, SIGKILL);
    int st = 0;
    pid_t w;
    while ((w = waitpid(pid, &st, 0)) < 0 && errno == EINTR) {
    }
    /* ECHILD: someone else reaped it (a library's SIGCHLD handler); the
     * answer, written last before _exit, is then the evidence. */
    const int exited_ok = w < 0 ? errno == ECHILD : WIFEXITED(st) && WEXITSTATUS(st) == 0;
    if (!timed_out && exited_ok && strcmp(answer, "ok\n") == 0)
        return 0;
    /* The reader refused the file in the helper: this process will not
     * let libhdf5 parse it either (a damaged file that happened not to crash
     * the helper may still crash here, its heap laid out differently), and
     * the helper's message is the reader's own. */
    if (!timed_out && exited_ok && strncmp(answer, "refused\n", 8) == 0)
        return answer[8] ? err_set(e, "%s", answer + 8)
                         : err_set(e, "%s: not a readable HDF5 file", path);
    if (timed_out || (w == pid && WIFSIGNALED(st) && WTERMSIG(st) == SIGXCPU))
        return err_set(e, "%s: not a readable HDF5 file (the HDF5 library did not finish "
                          "reading it within %d s)", path, limit);
    if (w == pid && WIFSIGNALED(st)) {
        const char *abbrev = sigabbrev_np(WTERMSIG(st));
        return err_set(e, "%s: not a readable HDF5 file (the HDF5 library crashed reading it: "
                          "SIG%s)", path, abbrev ? abbrev : "?");
    }
    if (w == pid && WIFEXITED(st) && WEXITSTATUS(st) != 0)
        return err_set(e, "%s: not a readable HDF5 file (the HDF5 library failed reading it: "
                          "the checking process exited with status %d)", path, WEXITSTATUS(st));
    return err_set(e, "%s: not a readable HDF5 file (the checking process gave no answer)", path);
}

int h5safe_check(const char *path, const char *kind, Error *e)
{
    return h5safe_check_arg(path, kind, "", e);
}

int h5safe_check_arg(const char *path, const char *kind, const char *arg, Error *e)
{
    if (!enabled)
        return 0;
    if (!arg)
        arg = "";
    struct stat st;
    if (stat(path, &st) != 0)
        return err_set(e, "%s: cannot open: %s", path, strerror(errno));
    const Answer *a = lookup(path, kind, arg, &st);
    if (a)
        return a->status ? err_set(e, "%s", a->msg) : 0;
    Error mine = {{0}}; /* e may be NULL; the answer is kept either way */
    const int status = run_helper(path, kind, arg, st.st_size, &mine) ? -1 : 0;
    remember(path, kind, arg, &st, status, &mine);
    return status ? err_set(e, "%s", mine.msg) : 0;
}

static void limit(int resource, rlim_t value)
{
    struct rlimit r;
    if (getrlimit(resource, &r) != 0)
        return;
    if (r.rlim_max != RLIM_INFINITY && r.rlim_max < value)
        value = r.rlim_max;
    r.rlim_cur = value;
    if (resource == RLIMIT_CPU && (r.rlim_max == RLIM_INFINITY || r.rlim_max > value + 1))
        r.rlim_max = value + 1; /* SIGXCPU, then SIGKILL a second later */
    setrlimit(resource, &r);
}

/* The helper's own limits: what it maps now plus 4 GiB of address space
 * (not under ASan, whose shadow memory needs terabytes), the deadline as CPU
 * time, and no core files. */
static void limit_self(const char *path)
{
#ifndef H5SAFE_ASAN
    unsigned long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%lu", &pages) != 1)
            pages = 0;
        fclose(f);
    }
    limit(RLIMIT_AS, (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)4 << 30));
#endif
    struct stat st;
    limit(RLIMIT_CPU, (rlim_t)timeout_s(stat(path, &st) == 0 ? st.st_size : 0));
    limit(RLIMIT_CORE, 0);
}

int h5safe_child_main(int argc, char **argv, const H5SafeKind *kinds, int n)
{
    const H5SafeKind *k = NULL;
    for (int i = 0; (argc == 4 || argc == 5) && i < n; i++)
        if (strcmp(argv[3], kinds[i].name) == 0)
            k = &kinds[i];
    if (!k) {
        fprintf(stderr, "mnist-dist: error: usage: mnist-dist %s FILE KIND [ARG] (an internal helper)\n",
                H5SAFE_ARG);
        return EXIT_USAGE;
    }
    limit_self(argv[2]);
    h5_quiet();
    Error e = {{0}};
    char answer[sizeof e.msg + 16];
    if (k->walk(argv[2], argc == 5 ? argv[4] : "", &e) == 0)
        snprintf(answer, sizeof answer, "ok\n");
    else
        snprintf(answer, sizeof answer, "refused\n%s", e.msg);
    if (getenv("MNIST_H5CHECK_STDERR"))
        fprintf(stderr, "%s\n", answer);
    fflush(stderr);
    /* the answer is the last thing done: nothing after it (no exit
     * handlers, no leak report) can turn an answered check into a failure */
    const size_t len = strlen(answer);
    const ssize_t wrote = write(3, answer, len);
    _exit(wrote == (ssize_t)len ? 0 : 1);
}

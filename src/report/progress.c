/* progress: the in-epoch progress bar and log lines (see progress.h).
 * Writes to stdout only; the caller decides that only rank 0 draws. */
#define _GNU_SOURCE
#include "mnist/progress.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mnist/util.h"

int progress_stdout_is_terminal(void)
{
    if (!isatty(STDOUT_FILENO))
        return 0;
    const char *term = getenv("TERM");
    if (term && strcmp(term, "dumb") == 0)
        return 0;
    if (!getenv("OMPI_COMM_WORLD_SIZE"))
        return 1;
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/fd/1", (long)getppid());
    int fd = open(path, O_WRONLY | O_NOCTTY);
    if (fd < 0)
        return 0;
    int tty = isatty(fd);
    close(fd);
    return tty;
}

void progress_begin(Progress *p, int epoch, double t0)
{
    p->epoch = epoch, p->t0 = t0, p->loss = p->count = 0, p->last_draw = 0;
}

void progress_step(Progress *p, size_t step, double loss_sum, double rows)
{
    if (p->quiet)
        return;
    p->loss += loss_sum, p->count += rows;
    const double now = time_now_s(), elapsed = now - p->t0;
    const double rate = elapsed > 0 ? (double)(step * p->samples_per_step) / elapsed : 0;
    const double eta = rate > 0 ? (double)((p->steps - step) * p->samples_per_step) / rate : 0;
    if (p->log_every > 0 && step % (size_t)p->log_every == 0) {
        if (p->drawn)
            fputs("\r\033[K", stdout);
        printf("epoch %d step %zu/%zu  loss %.4f  %.0f samples/s  eta %.1f s\n", p->epoch, step,
               p->steps, p->loss / p->count, rate, eta);
        p->drawn = 0;
        fflush(stdout);
    }
    if (p->on_tty && (now - p->last_draw > 0.1 || step == p->steps)) {
        const int width = 30, filled = (int)((double)width * (double)step / (double)p->steps);
        char bar[64];
        for (int i = 0; i < width; i++)
            bar[i] = i < filled ? '#' : '.';
        bar[width] = '\0';
        printf("\r\033[Kepoch %d/%d [%s] %zu/%zu  loss %.4f  %.0f samples/s  eta %.0f s",
               p->epoch, p->epochs, bar, step, p->steps, p->loss / p->count, rate, eta);
        fflush(stdout);
        p->last_draw = now;
        p->drawn = 1;
    }
}

void progress_end(Progress *p)
{
    if (p->drawn)
        fputs("\r\033[K", stdout);
    p->drawn = 0;
}

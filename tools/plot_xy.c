/* plot-xy: a line chart of one or more y series against x, read from stdin
 * as lines "x y1 [y2 ...]" ('#' starts a comment, "nan" or "-" leaves a point
 * out), drawn by plot_lines (src/plot.c, the report's charts) and written
 * atomically. Used by tools/bench for throughput-vs-batch.
 * Must not know where the numbers come from. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mnist/plot.h"
#include "mnist/util.h"

#define MAX_POINTS 256

static void usage(FILE *f)
{
    fprintf(f, "usage: plot-xy OUT.png [--title T] [--xlabel X] [--ylabel Y] [--log2x]\n"
               "               [--series NAME1,NAME2,...] [--note TEXT] < data\n"
               "data: lines \"x y1 [y2 ...]\"; '#' comments; nan or - for a missing point\n");
}

int main(int argc, char **argv)
{
    const char *out = NULL, *title = "", *xlabel = "x", *ylabel = "y", *note = "";
    char series_buf[512] = "";
    int log2x = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--log2x") == 0)
            log2x = 1;
        else if (v && strcmp(a, "--title") == 0)
            title = v, i++;
        else if (v && strcmp(a, "--xlabel") == 0)
            xlabel = v, i++;
        else if (v && strcmp(a, "--ylabel") == 0)
            ylabel = v, i++;
        else if (v && strcmp(a, "--note") == 0)
            note = v, i++;
        else if (v && strcmp(a, "--series") == 0)
            snprintf(series_buf, sizeof series_buf, "%s", v), i++;
        else if (strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (a[0] != '-' && !out)
            out = a;
        else {
            fprintf(stderr, "plot-xy: error: unknown or incomplete argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!out) {
        usage(stderr);
        return 2;
    }
    char *names[PLOT_MAX_SERIES] = {0};
    int n_names = 0;
    for (char *tok = strtok(series_buf, ","); tok && n_names < PLOT_MAX_SERIES; tok = strtok(NULL, ","))
        names[n_names++] = tok;

    /* Read the points. */
    static double xs[MAX_POINTS], ys[PLOT_MAX_SERIES][MAX_POINTS];
    int n = 0, n_series = 0;
    char line[1024];
    int lineno = 0;
    while (fgets(line, sizeof line, stdin)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *tok = strtok(line, " \t\r\n");
        if (!tok)
            continue;
        if (n == MAX_POINTS) {
            fprintf(stderr, "plot-xy: error: stdin:%d: more than %d points\n", lineno, MAX_POINTS);
            return 1;
        }
        char *end;
        xs[n] = strtod(tok, &end);
        if (*end || !isfinite(xs[n]) || (log2x && xs[n] <= 0)) {
            fprintf(stderr, "plot-xy: error: stdin:%d: x '%s' is not a %snumber\n", lineno, tok,
                    log2x ? "positive " : "");
            return 1;
        }
        int k = 0;
        while ((tok = strtok(NULL, " \t\r\n")) && k < PLOT_MAX_SERIES) {
            ys[k][n] = strcmp(tok, "-") == 0 ? NAN : strtod(tok, &end);
            if (strcmp(tok, "-") != 0 && *end) {
                fprintf(stderr, "plot-xy: error: stdin:%d: y '%s' is not a number\n", lineno, tok);
                return 1;
            }
            k++;
        }
        for (int j = k; j < PLOT_MAX_SERIES; j++)
            ys[j][n] = NAN;
        if (k > n_series)
            n_series = k;
        n++;
    }
    if (n == 0 || n_series == 0) {
        fprintf(stderr, "plot-xy: error: no points on stdin (lines \"x y1 [y2 ...]\")\n");
        return 1;
    }

    PlotLines p = {title, note, xlabel, ylabel, log2x, n, n_series, xs, {NULL}, {NULL}};
    for (int k = 0; k < PLOT_MAX_SERIES; k++)
        p.y[k] = ys[k], p.names[k] = k < n_names ? names[k] : NULL;
    Error e = {{0}};
    if (plot_lines(out, &p, &e)) {
        fprintf(stderr, "plot-xy: error: %s\n", e.msg);
        return 1;
    }
    return 0;
}

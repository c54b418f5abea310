/* plot-xy: a line chart of one or more y series against x, read from stdin
 * as lines "x y1 [y2 ...]" ('#' starts a comment, "nan" or "-" leaves a point
 * out), drawn with cairo in the report's style and written as PNG through a
 * temp name + rename. Used by tools/bench for throughput-vs-batch.
 * Must not know where the numbers come from. */
#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mnist/util.h"

#define FONT "DejaVu Sans"
#define MAX_POINTS 256
#define MAX_SERIES 4
#define W_PX 960
#define H_PX 600

static const unsigned colours[MAX_SERIES] = {0x1f77b4u, 0xff7f0eu, 0x2ca02cu, 0xd62728u};

static void set_hex(cairo_t *cr, unsigned hex)
{
    cairo_set_source_rgb(cr, ((hex >> 16) & 0xff) / 255.0, ((hex >> 8) & 0xff) / 255.0,
                         (hex & 0xff) / 255.0);
}

static void set_font(cairo_t *cr, double px, int bold)
{
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, px);
}

static double text_width(cairo_t *cr, const char *s)
{
    cairo_text_extents_t te;
    cairo_text_extents(cr, s, &te);
    return te.x_advance;
}

/* s anchored at (x, y): ax, ay are fractions of its width / line box. */
static void text_at(cairo_t *cr, double x, double y, double ax, double ay, const char *s)
{
    cairo_font_extents_t fe;
    cairo_font_extents(cr, &fe);
    cairo_move_to(cr, x - ax * text_width(cr, s), y + fe.ascent - ay * (fe.ascent + fe.descent));
    cairo_show_text(cr, s);
}

/* 1, 2 or 5 x 10^k nearest raw. */
static double nice_step(double raw)
{
    const double mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

/* Thousands as "12k" when the axis is in thousands, else plain. */
static void fmt_num(char *buf, size_t n, double v, double step)
{
    if (v == 0)
        snprintf(buf, n, "0");
    else if (step >= 1000 && fmod(v, 1000) == 0)
        snprintf(buf, n, "%.0fk", v / 1000);
    else
        snprintf(buf, n, "%.*f", step >= 1 ? 0 : (int)ceil(-log10(step)), v);
}

static cairo_status_t png_to_file(void *closure, const unsigned char *bytes, unsigned int n)
{
    return fwrite(bytes, 1, n, closure) == n ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

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
    char *names[MAX_SERIES] = {0};
    int n_names = 0;
    for (char *tok = strtok(series_buf, ","); tok && n_names < MAX_SERIES; tok = strtok(NULL, ","))
        names[n_names++] = tok;

    /* Read the points. */
    static double xs[MAX_POINTS], ys[MAX_SERIES][MAX_POINTS];
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
        while ((tok = strtok(NULL, " \t\r\n")) && k < MAX_SERIES) {
            ys[k][n] = strcmp(tok, "-") == 0 ? NAN : strtod(tok, &end);
            if (strcmp(tok, "-") != 0 && *end) {
                fprintf(stderr, "plot-xy: error: stdin:%d: y '%s' is not a number\n", lineno, tok);
                return 1;
            }
            k++;
        }
        for (int j = k; j < MAX_SERIES; j++)
            ys[j][n] = NAN;
        if (k > n_series)
            n_series = k;
        n++;
    }
    if (n == 0 || n_series == 0) {
        fprintf(stderr, "plot-xy: error: no points on stdin (lines \"x y1 [y2 ...]\")\n");
        return 1;
    }

    /* Axes: x linear or log2 over the data, y from 0 to a nice maximum. */
    double xmin = INFINITY, xmax = -INFINITY, ymax = 0;
    for (int i = 0; i < n; i++) {
        const double x = log2x ? log2(xs[i]) : xs[i];
        xmin = fmin(xmin, x), xmax = fmax(xmax, x);
        for (int k = 0; k < n_series; k++)
            if (isfinite(ys[k][i]))
                ymax = fmax(ymax, ys[k][i]);
    }
    if (xmax == xmin)
        xmin -= 1, xmax += 1;
    const double xpad = 0.04 * (xmax - xmin);
    xmin -= xpad, xmax += xpad;
    if (ymax <= 0)
        ymax = 1;
    const double ystep = nice_step(ymax * 1.08 / 6);
    ymax = ceil(ymax * 1.08 / ystep) * ystep;

    cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W_PX, H_PX);
    cairo_t *cr = cairo_create(surf);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_set_antialias(cr, CAIRO_ANTIALIAS_GRAY);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    const double fx = 110, fy = 70, fw = W_PX - fx - 40, fh = H_PX - fy - 90;
#define PX(v) (fx + ((log2x ? log2(v) : (v)) - xmin) / (xmax - xmin) * fw)
#define PY(v) (fy + fh - (v) / ymax * fh)

    set_hex(cr, 0x222222u);
    double title_px = 18;
    set_font(cr, title_px, 1);
    while (title_px > 11 && text_width(cr, title) > W_PX - fx - 20)
        set_font(cr, title_px -= 0.5, 1); /* long titles shrink to fit */
    text_at(cr, fx, 20, 0, 0.5, title);
    if (note[0]) {
        set_font(cr, 13, 0);
        set_hex(cr, 0x666666u);
        text_at(cr, fx, 44, 0, 0.5, note);
    }
    /* y grid and labels */
    char buf[64];
    cairo_set_line_width(cr, 1);
    set_font(cr, 14, 0);
    for (double v = 0; v <= ymax + 1e-9 * ymax; v += ystep) {
        const double y = floor(PY(v)) + 0.5;
        set_hex(cr, 0xe4e4e4u);
        cairo_move_to(cr, fx, y), cairo_line_to(cr, fx + fw, y), cairo_stroke(cr);
        set_hex(cr, 0x222222u);
        fmt_num(buf, sizeof buf, v, ystep);
        text_at(cr, fx - 8, y, 1, 0.5, buf);
    }
    /* x ticks at the data's x values (log2: 32, 64, ...) */
    for (int i = 0; i < n; i++) {
        const double x = floor(PX(xs[i])) + 0.5;
        set_hex(cr, 0xe4e4e4u);
        cairo_move_to(cr, x, fy), cairo_line_to(cr, x, fy + fh), cairo_stroke(cr);
        set_hex(cr, 0x222222u);
        snprintf(buf, sizeof buf, "%g", xs[i]);
        text_at(cr, x, fy + fh + 8, 0.5, 0, buf);
    }
    set_font(cr, 15, 0);
    text_at(cr, fx + fw / 2, fy + fh + 36, 0.5, 0, xlabel);
    cairo_save(cr);
    cairo_translate(cr, 28, fy + fh / 2);
    cairo_rotate(cr, -3.14159265358979323846 / 2);
    text_at(cr, 0, 0, 0.5, 0.5, ylabel);
    cairo_restore(cr);
    /* frame edges */
    set_hex(cr, 0x888888u);
    cairo_move_to(cr, fx + 0.5, fy), cairo_line_to(cr, fx + 0.5, fy + fh + 0.5);
    cairo_line_to(cr, fx + fw, fy + fh + 0.5), cairo_stroke(cr);

    /* series: lines, markers, and the value above each point */
    for (int k = 0; k < n_series; k++) {
        set_hex(cr, colours[k]);
        cairo_set_line_width(cr, 2.5);
        int pen = 0;
        for (int i = 0; i < n; i++) {
            if (!isfinite(ys[k][i])) {
                pen = 0;
                continue;
            }
            if (pen)
                cairo_line_to(cr, PX(xs[i]), PY(ys[k][i]));
            else
                cairo_move_to(cr, PX(xs[i]), PY(ys[k][i]));
            pen = 1;
        }
        if (k % 2)
            cairo_set_dash(cr, (const double[]){8, 5}, 2, 0);
        cairo_stroke(cr);
        cairo_set_dash(cr, NULL, 0, 0);
        set_font(cr, 12, 0);
        for (int i = 0; i < n; i++) {
            if (!isfinite(ys[k][i]))
                continue;
            set_hex(cr, colours[k]);
            cairo_arc(cr, PX(xs[i]), PY(ys[k][i]), 4.5, 0, 2 * 3.14159265358979323846);
            cairo_fill(cr);
            fmt_num(buf, sizeof buf, ys[k][i], 1);
            if (ys[k][i] >= 1000)
                snprintf(buf, sizeof buf, "%.1fk", ys[k][i] / 1000);
            set_hex(cr, 0x222222u);
            text_at(cr, PX(xs[i]), PY(ys[k][i]) + (k % 2 ? 8 : -8), 0.5, k % 2 ? 0 : 1, buf);
        }
    }
    /* legend inside the frame, in the first corner (top right, top left,
     * bottom right, bottom left) whose box no line passes through */
    set_font(cr, 14, 0);
    const int n_leg = n_series < n_names ? n_series : n_names;
    double leg_w = 0;
    for (int k = 0; k < n_leg; k++)
        leg_w = fmax(leg_w, text_width(cr, names[k]));
    leg_w += 40 + 24, leg_w = fmin(leg_w, fw);
    const double leg_h = 22.0 * n_leg + 8;
    double lx = fx + fw - leg_w - 4, ly0 = fy + 4;
    for (int corner = 0; corner < 4 && n_leg > 0; corner++) {
        const double cx = corner % 2 ? fx + 4 : fx + fw - leg_w - 4;
        const double cy = corner < 2 ? fy + 4 : fy + fh - leg_h - 4;
        int hit = 0;
        for (int k = 0; k < n_series && !hit; k++)
            for (int i = 0; i + 1 < n && !hit; i++) {
                if (!isfinite(ys[k][i]) || !isfinite(ys[k][i + 1]))
                    continue;
                /* sample the segment and its value labels (a band of 24 px) */
                for (int t = 0; t <= 20 && !hit; t++) {
                    const double u = t / 20.0;
                    const double px = PX(xs[i]) + u * (PX(xs[i + 1]) - PX(xs[i]));
                    const double py = PY(ys[k][i]) + u * (PY(ys[k][i + 1]) - PY(ys[k][i]));
                    hit = px > cx - 30 && px < cx + leg_w + 30 && py > cy - 24 &&
                          py < cy + leg_h + 24;
                }
            }
        if (!hit) {
            lx = cx, ly0 = cy;
            break;
        }
    }
    if (n_leg > 0) {
        cairo_set_source_rgba(cr, 1, 1, 1, 0.85);
        cairo_rectangle(cr, lx, ly0, leg_w, leg_h);
        cairo_fill(cr);
    }
    double ly = ly0 + 15;
    for (int k = 0; k < n_leg; k++) {
        const double x0 = lx + 52;
        set_hex(cr, colours[k]);
        cairo_set_line_width(cr, 2.5);
        if (k % 2)
            cairo_set_dash(cr, (const double[]){8, 5}, 2, 0);
        cairo_move_to(cr, lx + 10, ly), cairo_line_to(cr, lx + 42, ly), cairo_stroke(cr);
        cairo_set_dash(cr, NULL, 0, 0);
        set_hex(cr, 0x222222u);
        text_at(cr, x0, ly, 0, 0.5, names[k]);
        ly += 22;
    }

    /* PNG to a temp name, renamed into place when complete. */
    int rc = 1;
    Error e = {{0}};
    char tmp[4096];
    cairo_status_t st = cairo_status(cr);
    cairo_destroy(cr);
    if (st == CAIRO_STATUS_SUCCESS && path_tmp_name(tmp, sizeof tmp, out, &e) == 0) {
        FILE *f = fopen(tmp, "wb");
        if (f) {
            st = cairo_surface_write_to_png_stream(surf, png_to_file, f);
            if (fclose(f) == 0 && st == CAIRO_STATUS_SUCCESS && path_commit(tmp, out, &e) == 0)
                rc = 0;
            else
                remove(tmp);
        } else {
            err_set(&e, "%s: cannot create", tmp);
        }
    }
    cairo_surface_destroy(surf);
    if (rc)
        fprintf(stderr, "plot-xy: error: %s\n",
                e.msg[0] ? e.msg : cairo_status_to_string(st));
    return rc;
}

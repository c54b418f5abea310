/* plot: the report's four charts (loss/accuracy curves, confusion heatmap,
 * per-class scores, most confident mistakes) drawn with cairo onto white
 * RGB24 surfaces and written as PNG to a temp name, then renamed into place.
 * Must not print, exit or know where the numbers come from; every cairo
 * object made here is destroyed here, on success and on every error path. */
#define _POSIX_C_SOURCE 200809L
#include "mnist/plot.h"

#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FONT "DejaVu Sans"
#define PLOT_PI 3.14159265358979323846 /* M_PI is not in strict C11 */

/* Sizes in pixels. Tick labels stay >= 13 px so the charts read at a glance
 * when the browser shows them at their natural size. */
#define FS_TICK 14.0
#define FS_LABEL 15.0
#define FS_TITLE 18.0
#define FS_NOTE 13.0

/* Colours, 0xRRGGBB. The series colours are matplotlib's tab10 blue, orange
 * and green: distinct from each other, also for most colour-blind readers. */
#define C_TEXT 0x222222u
#define C_MUTED 0x666666u
#define C_AXIS 0x888888u
#define C_GRID 0xe4e4e4u
#define C_SERIES_1 0x1f77b4u
#define C_SERIES_2 0xff7f0eu
#define C_SERIES_3 0x2ca02cu

/* ---------------------------------------------------------------------------
 * Drawing helpers */

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

/* Draws s anchored at (x, y): ax is the horizontal anchor as a fraction of
 * the advance width (0 left, 0.5 centre, 1 right), ay the vertical one as a
 * fraction of the font's line box (0 top, 0.5 middle, 1 bottom). The line box
 * comes from the font, not the string, so labels in a row share a baseline. */
static void text_at(cairo_t *cr, double x, double y, double ax, double ay, const char *s)
{
    cairo_font_extents_t fe;
    cairo_font_extents(cr, &fe);
    double base = y + fe.ascent - ay * (fe.ascent + fe.descent);
    cairo_move_to(cr, x - ax * text_width(cr, s), base);
    cairo_show_text(cr, s);
}

/* Text rotated a quarter turn anticlockwise, centred on (x, y): y-axis labels. */
static void text_vertical(cairo_t *cr, double x, double y, const char *s)
{
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_rotate(cr, -PLOT_PI / 2);
    text_at(cr, 0, 0, 0.5, 0.5, s);
    cairo_restore(cr);
}

/* Lines of odd width land on pixel centres, so a 1 px gridline is one crisp
 * pixel instead of two half-grey ones. */
static double crisp(double v)
{
    return floor(v) + 0.5;
}

static void hline(cairo_t *cr, double x0, double x1, double y)
{
    cairo_move_to(cr, x0, crisp(y));
    cairo_line_to(cr, x1, crisp(y));
    cairo_stroke(cr);
}

static void vline(cairo_t *cr, double x, double y0, double y1)
{
    cairo_move_to(cr, crisp(x), y0);
    cairo_line_to(cr, crisp(x), y1);
    cairo_stroke(cr);
}

/* marker 0: filled circle, 1: filled square (so the two series differ in
 * shape as well as colour). */
static void marker(cairo_t *cr, double x, double y, int shape, double r)
{
    if (shape == 0)
        cairo_arc(cr, x, y, r, 0, 2 * PLOT_PI);
    else
        cairo_rectangle(cr, x - 0.9 * r, y - 0.9 * r, 1.8 * r, 1.8 * r);
    cairo_fill(cr);
}

/* ---------------------------------------------------------------------------
 * Axes */

/* The nice step nearest raw among 1, 2, 5 x 10^k (raw > 0). */
static double nice_step(double raw)
{
    double mag = pow(10, floor(log10(raw)));
    double f = raw / mag;
    double m = f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10;
    return m * mag;
}

/* A linear axis from lo to hi with ticks every step; lo and hi are multiples
 * of step, so the first and last ticks sit on the frame. */
typedef struct Axis {
    double lo, hi, step;
    int decimals; /* for tick labels: enough to tell neighbouring ticks apart */
} Axis;

static int step_decimals(double step)
{
    int d = (int)-floor(log10(step) + 1e-9);
    return d < 0 ? 0 : d;
}

static void axis_fit_step(Axis *a, double step)
{
    a->step = step;
    a->lo = floor(a->lo / step + 1e-9) * step;
    a->hi = ceil(a->hi / step - 1e-9) * step;
    a->decimals = step_decimals(step);
}

/* An axis covering [min, max] with some headroom and about `ticks` ticks. The
 * range never crosses floor_lim / ceil_lim when the data does not (a loss
 * axis does not go below 0, an accuracy axis not above 1). All-equal data
 * gets a small range around the value rather than a zero-height one. */
static Axis axis_nice(double min, double max, int ticks, double floor_lim, double ceil_lim)
{
    if (!isfinite(min) || !isfinite(max)) {
        min = 0;
        max = 1;
    }
    double span = max - min;
    Axis a = {.lo = min - 0.05 * span, .hi = max + 0.05 * span};
    if (span <= 0) {
        span = fabs(max) > 0 ? 0.1 * fabs(max) : 1;
        a.lo = min - span / 2;
        a.hi = max + span / 2;
    }
    if (min >= floor_lim && a.lo < floor_lim)
        a.lo = floor_lim;
    if (max <= ceil_lim && a.hi > ceil_lim)
        a.hi = ceil_lim;
    axis_fit_step(&a, nice_step((a.hi - a.lo) / ticks));
    return a;
}

static int axis_ticks(const Axis *a)
{
    return (int)floor((a->hi - a->lo) / a->step + 1e-6) + 1;
}

static double axis_tick(const Axis *a, int i)
{
    double v = a->lo + i * a->step;
    return fabs(v) < 1e-9 * a->step ? 0 : v; /* no "-0.00" */
}

/* A plot area in pixels and the axes it maps. */
typedef struct Frame {
    double x, y, w, h;
    Axis xa, ya;
} Frame;

static double frame_x(const Frame *f, double v)
{
    return f->x + (v - f->xa.lo) / (f->xa.hi - f->xa.lo) * f->w;
}

static double frame_y(const Frame *f, double v)
{
    return f->y + f->h - (v - f->ya.lo) / (f->ya.hi - f->ya.lo) * f->h;
}

/* Horizontal gridlines, y tick labels and the rotated y-axis label. */
static void draw_y_axis(cairo_t *cr, const Frame *f, const char *label)
{
    char buf[32];
    double widest = 0;
    set_font(cr, FS_TICK, 0);
    cairo_set_line_width(cr, 1);
    for (int i = 0; i < axis_ticks(&f->ya); i++) {
        double v = axis_tick(&f->ya, i), y = frame_y(f, v);
        snprintf(buf, sizeof buf, "%.*f", f->ya.decimals, v);
        set_hex(cr, C_GRID);
        hline(cr, f->x, f->x + f->w, y);
        set_hex(cr, C_TEXT);
        text_at(cr, f->x - 8, y, 1, 0.5, buf);
        double w = text_width(cr, buf);
        widest = w > widest ? w : widest;
    }
    set_font(cr, FS_LABEL, 0);
    set_hex(cr, C_TEXT);
    text_vertical(cr, f->x - 8 - widest - 16, f->y + f->h / 2, label);
}

/* The frame's left and bottom edges, drawn last so they sit over the data. */
static void draw_frame_edges(cairo_t *cr, const Frame *f)
{
    set_hex(cr, C_AXIS);
    cairo_set_line_width(cr, 1);
    vline(cr, f->x, f->y, f->y + f->h + 0.5);
    hline(cr, f->x - 0.5, f->x + f->w, f->y + f->h);
}

/* One legend entry per series, drawn right to left so the block ends at
 * right; y is the entries' vertical middle. */
typedef struct LegendItem {
    const char *name;
    unsigned colour;
    int shape; /* marker shape, or -1 for a plain swatch */
} LegendItem;

static void draw_legend(cairo_t *cr, double right, double y, const LegendItem *items, int n)
{
    set_font(cr, FS_TICK, 0);
    double x = right;
    for (int i = n - 1; i >= 0; i--) {
        double w = text_width(cr, items[i].name);
        set_hex(cr, C_TEXT);
        text_at(cr, x, y, 1, 0.5, items[i].name);
        x -= w + 8;
        set_hex(cr, items[i].colour);
        if (items[i].shape < 0) {
            cairo_rectangle(cr, x - 14, y - 7, 14, 14);
            cairo_fill(cr);
            x -= 14;
        } else {
            cairo_set_line_width(cr, 2.5);
            cairo_move_to(cr, x - 28, y);
            cairo_line_to(cr, x, y);
            cairo_stroke(cr);
            marker(cr, x - 14, y, items[i].shape, 4.5);
            x -= 28;
        }
        x -= 22;
    }
}

/* ---------------------------------------------------------------------------
 * Surface lifetime */

/* A white w x h RGB24 canvas. cairo never returns NULL here: failures are an
 * error status on the objects, checked in chart_write. */
static cairo_t *chart_begin(cairo_surface_t **surf, int w, int h)
{
    *surf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
    cairo_t *cr = cairo_create(*surf);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_set_antialias(cr, CAIRO_ANTIALIAS_GRAY);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
    return cr;
}

/* Destroys cr and surf, and writes surf to path through a temp file if
 * drawing succeeded. A cairo error (drawing, or the PNG write) leaves no file:
 * the partial temp is removed. 0 or -1 with e filled. */
/* A growable byte buffer for cairo's PNG stream writer. */
typedef struct PngBuffer {
    unsigned char *data;
    size_t size, cap;
} PngBuffer;

static cairo_status_t png_append(void *closure, const unsigned char *bytes, unsigned int n)
{
    PngBuffer *b = closure;
    if (b->size + n > b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 65536;
        while (cap < b->size + n)
            cap *= 2;
        unsigned char *grown = realloc(b->data, cap);
        if (!grown)
            return CAIRO_STATUS_NO_MEMORY;
        b->data = grown, b->cap = cap;
    }
    memcpy(b->data + b->size, bytes, n);
    b->size += n;
    return CAIRO_STATUS_SUCCESS;
}

static int chart_write(cairo_surface_t *surf, cairo_t *cr, const char *path, Error *e)
{
    int rc = -1;
    cairo_status_t st = cairo_status(cr);
    cairo_destroy(cr);
    if (st == CAIRO_STATUS_SUCCESS) {
        cairo_surface_flush(surf);
        st = cairo_surface_status(surf);
    }
    if (st != CAIRO_STATUS_SUCCESS) {
        err_set(e, "%s: cannot draw/write chart: %s", path, cairo_status_to_string(st));
        goto out;
    }
    /* Encoded in memory, written with file_write_atomic: a full disk gives
     * the system's own message ("No space left on device"). */
    PngBuffer png = {NULL, 0, 0};
    st = cairo_surface_write_to_png_stream(surf, png_append, &png);
    if (st != CAIRO_STATUS_SUCCESS) {
        free(png.data);
        err_set(e, "%s: cannot draw/write chart: %s", path, cairo_status_to_string(st));
        goto out;
    }
    rc = file_write_atomic(path, png.data, png.size, e);
    free(png.data);
out:
    cairo_surface_destroy(surf);
    return rc;
}

/* ---------------------------------------------------------------------------
 * plot_curves */

#define CURVES_W 1200
#define CURVES_H 450

/* Which number of an epoch a panel shows. */
typedef enum { CURVE_LOSS, CURVE_ACC } CurveKind;

static double curve_value(const EpochStats *s, CurveKind kind, int val)
{
    if (kind == CURVE_LOSS)
        return val ? s->val_loss : s->train_loss;
    return val ? s->val_acc : s->train_acc;
}

/* One series as a polyline broken at non-finite values, with markers when
 * the points are far enough apart to tell them apart; an isolated point
 * (1 epoch, or a gap on both sides) always gets its marker so it shows. */
static void draw_series(cairo_t *cr, const Frame *f, const History *h, CurveKind kind, int val,
                        unsigned colour, int shape)
{
    double spacing = h->count > 1 ? f->w / (f->xa.hi - f->xa.lo) : f->w;
    int markers = spacing >= 12; /* ~40 epochs or fewer: markers do not touch */
    set_hex(cr, colour);
    cairo_set_line_width(cr, h->count > 100 ? 1.8 : 2.5);
    int open = 0;
    for (int i = 0; i < h->count; i++) {
        double v = curve_value(&h->items[i], kind, val);
        if (!isfinite(v)) {
            open = 0;
            continue;
        }
        double x = frame_x(f, h->items[i].epoch), y = frame_y(f, v);
        if (open)
            cairo_line_to(cr, x, y);
        else
            cairo_move_to(cr, x, y);
        open = 1;
    }
    cairo_stroke(cr);
    for (int i = 0; i < h->count; i++) {
        double v = curve_value(&h->items[i], kind, val);
        if (!isfinite(v))
            continue;
        int before = i > 0 && isfinite(curve_value(&h->items[i - 1], kind, val));
        int after = i + 1 < h->count && isfinite(curve_value(&h->items[i + 1], kind, val));
        if (markers || (!before && !after))
            marker(cr, frame_x(f, h->items[i].epoch), frame_y(f, v), shape, 4.5);
    }
}

static int series_present(const History *h, CurveKind kind, int val)
{
    for (int i = 0; i < h->count; i++)
        if (isfinite(curve_value(&h->items[i], kind, val)))
            return 1;
    return 0;
}

/* One panel: frame at (x, y, w, hgt) in pixels. */
static void draw_curve_panel(cairo_t *cr, const History *h, CurveKind kind, double x, double y,
                             double w, double hgt)
{
    Frame f = {.x = x, .y = y, .w = w, .h = hgt};

    /* x: epochs, integer ticks on a 1/2/5 step so 200 epochs get ~10 labels */
    int e_lo = h->count ? h->items[0].epoch : 1, e_hi = e_lo;
    for (int i = 0; i < h->count; i++) {
        e_lo = h->items[i].epoch < e_lo ? h->items[i].epoch : e_lo;
        e_hi = h->items[i].epoch > e_hi ? h->items[i].epoch : e_hi;
    }
    double step = nice_step((e_hi - e_lo) / 8.0 > 1 ? (e_hi - e_lo) / 8.0 : 1);
    double pad = 0.03 * (e_hi - e_lo) > 0.5 ? 0.03 * (e_hi - e_lo) : 0.5;
    f.xa = (Axis){.lo = e_lo - pad, .hi = e_hi + pad, .step = step, .decimals = 0};

    /* y: every finite value of both series */
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < h->count; i++)
        for (int val = 0; val < 2; val++) {
            double v = curve_value(&h->items[i], kind, val);
            if (isfinite(v)) {
                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
            }
        }
    f.ya = kind == CURVE_LOSS ? axis_nice(lo, hi, 6, 0, INFINITY) : axis_nice(lo, hi, 6, 0, 1);

    draw_y_axis(cr, &f, kind == CURVE_LOSS ? "loss (cross-entropy)" : "accuracy");

    char buf[32];
    set_font(cr, FS_TICK, 0);
    cairo_set_line_width(cr, 1);
    /* ticks only at epochs that exist: no "0" (or "-0") left of epoch 1 */
    for (double t = ceil(e_lo / step - 1e-9) * step; t <= e_hi + 1e-9; t += step) {
        double px = frame_x(&f, t);
        set_hex(cr, C_GRID);
        vline(cr, px, f.y, f.y + f.h);
        set_hex(cr, C_AXIS);
        vline(cr, px, f.y + f.h, f.y + f.h + 5);
        set_hex(cr, C_TEXT);
        snprintf(buf, sizeof buf, "%.0f", t);
        text_at(cr, px, f.y + f.h + 8, 0.5, 0, buf);
    }
    set_font(cr, FS_LABEL, 0);
    text_at(cr, f.x + f.w / 2, f.y + f.h + 30, 0.5, 0, "epoch");

    set_font(cr, FS_TITLE, 1);
    set_hex(cr, C_TEXT);
    text_at(cr, f.x, f.y - 14, 0, 1, kind == CURVE_LOSS ? "Loss" : "Accuracy");

    if (h->count == 0) {
        set_font(cr, FS_LABEL, 0);
        set_hex(cr, C_MUTED);
        text_at(cr, f.x + f.w / 2, f.y + f.h / 2, 0.5, 0.5, "no epochs recorded");
    }

    /* the data, clipped to the frame plus room for a marker on its edge */
    cairo_save(cr);
    cairo_rectangle(cr, f.x - 6, f.y - 6, f.w + 12, f.h + 12);
    cairo_clip(cr);
    draw_series(cr, &f, h, kind, 0, C_SERIES_1, 0);
    draw_series(cr, &f, h, kind, 1, C_SERIES_2, 1);
    cairo_restore(cr);
    draw_frame_edges(cr, &f);

    /* the legend lists only the series that have points */
    LegendItem items[2];
    int n = 0;
    if (series_present(h, kind, 0))
        items[n++] = (LegendItem){"train", C_SERIES_1, 0};
    if (series_present(h, kind, 1))
        items[n++] = (LegendItem){"validation", C_SERIES_2, 1};
    draw_legend(cr, f.x + f.w, f.y - 22, items, n);
}

int plot_curves(const char *path, const History *h, Error *e)
{
    cairo_surface_t *surf;
    cairo_t *cr = chart_begin(&surf, CURVES_W, CURVES_H);
    const double top = 58, bottom = 62, left = 92, right = 24;
    const double panel_w = CURVES_W / 2.0;
    draw_curve_panel(cr, h, CURVE_LOSS, left, top, panel_w - left - right,
                     CURVES_H - top - bottom);
    draw_curve_panel(cr, h, CURVE_ACC, panel_w + left, top, panel_w - left - right,
                     CURVES_H - top - bottom);
    return chart_write(surf, cr, path, e);
}

/* ---------------------------------------------------------------------------
 * plot_confusion */

#define CONF_W 700
#define CONF_H 640
#define CONF_X 82.0   /* heatmap's left edge */
#define CONF_Y 78.0   /* heatmap's top edge */
#define CONF_CELL 47.0

/* matplotlib's "Blues": near-white to dark navy, perceptually ordered. */
static const unsigned BLUES[] = {0xf7fbffu, 0xdeebf7u, 0xc6dbefu, 0x9ecae1u, 0x6baed6u,
                                 0x4292c6u, 0x2171b5u, 0x08519cu, 0x08306bu};
#define N_BLUES ((int)(sizeof BLUES / sizeof BLUES[0]))

static void blues(double t, double rgb[3])
{
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    double p = t * (N_BLUES - 1);
    int i = (int)p;
    if (i >= N_BLUES - 1)
        i = N_BLUES - 2;
    double u = p - i;
    for (int c = 0; c < 3; c++) {
        double a = ((BLUES[i] >> (16 - 8 * c)) & 0xff) / 255.0;
        double b = ((BLUES[i + 1] >> (16 - 8 * c)) & 0xff) / 255.0;
        rgb[c] = a + u * (b - a);
    }
}

/* Colour position of a count. A log scale, because diagonal cells hold ~1000
 * and the errors worth seeing hold 1..20: on a linear scale they would all be
 * white. */
static double count_scale(int64_t count, int64_t max)
{
    if (count <= 0 || max <= 0)
        return 0;
    return log1p((double)count) / log1p((double)max);
}

/* The confusion heatmap's colour bar at x = bx beside a square of `side`:
 * the same log mapping, ticks at 0, 1, 10, 100, ... and max. */
static void draw_colour_bar(cairo_t *cr, double bx, double side, int64_t max)
{
    char buf[64];
    const double bw = 18;
    cairo_pattern_t *grad = cairo_pattern_create_linear(0, CONF_Y + side, 0, CONF_Y);
    for (int i = 0; i < N_BLUES; i++) {
        double rgb[3];
        blues((double)i / (N_BLUES - 1), rgb);
        cairo_pattern_add_color_stop_rgb(grad, (double)i / (N_BLUES - 1), rgb[0], rgb[1],
                                         rgb[2]);
    }
    cairo_set_source(cr, grad);
    cairo_rectangle(cr, bx, CONF_Y, bw, side);
    cairo_fill(cr);
    cairo_pattern_destroy(grad);
    set_hex(cr, C_AXIS);
    cairo_rectangle(cr, crisp(bx) - 1, crisp(CONF_Y) - 1, bw + 1, side + 1);
    cairo_stroke(cr);
    set_font(cr, FS_NOTE, 0);
    double last_y = INFINITY;
    for (int64_t v = 0; v <= max; v = v ? v * 10 : 1) {
        double y = CONF_Y + side - count_scale(v, max) * side;
        /* max gets its own label unless a power of ten is nearly on it */
        double y_max = CONF_Y;
        if (v != max && fabs(y - y_max) < 16)
            break;
        snprintf(buf, sizeof buf, "%lld", (long long)v);
        set_hex(cr, C_AXIS);
        hline(cr, bx + bw, bx + bw + 4, y);
        set_hex(cr, C_TEXT);
        text_at(cr, bx + bw + 7, y, 0, 0.5, buf);
        last_y = y;
        if (v > INT64_MAX / 10)
            break;
    }
    if (max > 0 && last_y > CONF_Y + 0.5) {
        snprintf(buf, sizeof buf, "%lld", (long long)max);
        set_hex(cr, C_AXIS);
        hline(cr, bx + bw, bx + bw + 4, CONF_Y);
        set_hex(cr, C_TEXT);
        text_at(cr, bx + bw + 7, CONF_Y, 0, 0.5, buf);
    }
}

int plot_confusion(const char *path, const int64_t *confusion, int classes, Error *e)
{
    if (classes < 1)
        return err_set(e, "%s: cannot draw chart: %d classes", path, classes);
    cairo_surface_t *surf;
    cairo_t *cr = chart_begin(&surf, CONF_W, CONF_H);
    const int C = classes;
    /* ten classes fill the square at CONF_CELL; more share it */
    const double side = CONF_CELL * 10, cell_px = side / C;
    const int show_counts = cell_px >= 24, label_every = C <= 20 ? 1 : (C + 19) / 20;
    char buf[64];

    int64_t max = 0, total = 0, diag = 0;
    for (int r = 0; r < C; r++)
        for (int c = 0; c < C; c++) {
            int64_t v = confusion[(size_t)r * C + c];
            max = v > max ? v : max;
            total += v;
            diag += r == c ? v : 0;
        }

    set_hex(cr, C_TEXT);
    set_font(cr, FS_TITLE, 1);
    text_at(cr, CONF_X, 14, 0, 0, "Confusion matrix");
    set_font(cr, FS_NOTE, 0);
    set_hex(cr, C_MUTED);
    if (total > 0)
        snprintf(buf, sizeof buf, "%lld images, %lld on the diagonal (%.2f%%)", (long long)total,
                 (long long)diag, 100.0 * (double)diag / (double)total);
    else
        snprintf(buf, sizeof buf, "no images");
    text_at(cr, CONF_X, 40, 0, 0, buf);

    for (int r = 0; r < C; r++)
        for (int c = 0; c < C; c++) {
            double rgb[3], x = CONF_X + c * cell_px, y = CONF_Y + r * cell_px;
            int64_t v = confusion[(size_t)r * C + c];
            blues(count_scale(v, max), rgb);
            if (v == 0)
                rgb[0] = rgb[1] = rgb[2] = 1; /* empty is plain white, unlike a count of 1 */
            cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
            cairo_rectangle(cr, x, y, cell_px, cell_px);
            cairo_fill(cr);
            if (!show_counts) /* too many classes to write counts in the cells */
                continue;

            /* text colour by the cell's luminance, so it reads on both ends
             * of the scale; zeros are grey to let the real errors stand out */
            double lum = 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2];
            snprintf(buf, sizeof buf, "%lld", (long long)v);
            set_font(cr, FS_TICK, v > 0 && r != c);
            double w = text_width(cr, buf);
            if (w > cell_px - 6) /* a 5+ digit count: shrink to fit the cell */
                set_font(cr, FS_TICK * (cell_px - 6) / w, v > 0 && r != c);
            if (v == 0)
                set_hex(cr, 0xb8b8b8u);
            else if (lum < 0.5)
                cairo_set_source_rgb(cr, 1, 1, 1);
            else
                set_hex(cr, C_TEXT);
            text_at(cr, x + cell_px / 2, y + cell_px / 2, 0.5, 0.5, buf);
        }

    /* faint cell borders: white-on-white empty cells still read as a grid */
    set_hex(cr, 0xe8e8e8u);
    cairo_set_line_width(cr, 1);
    for (int i = 1; i < C && show_counts; i++) {
        hline(cr, CONF_X, CONF_X + side, CONF_Y + i * cell_px);
        vline(cr, CONF_X + i * cell_px, CONF_Y, CONF_Y + side);
    }
    set_hex(cr, C_AXIS);
    cairo_rectangle(cr, crisp(CONF_X) - 1, crisp(CONF_Y) - 1, side + 1, side + 1);
    cairo_stroke(cr);

    /* class labels on both axes */
    set_font(cr, FS_TICK, 0);
    set_hex(cr, C_TEXT);
    for (int k = 0; k < C; k += label_every) {
        snprintf(buf, sizeof buf, "%d", k);
        text_at(cr, CONF_X - 10, CONF_Y + (k + 0.5) * cell_px, 1, 0.5, buf);
        text_at(cr, CONF_X + (k + 0.5) * cell_px, CONF_Y + side + 8, 0.5, 0, buf);
    }
    set_font(cr, FS_LABEL, 0);
    text_vertical(cr, CONF_X - 46, CONF_Y + side / 2, "true label");
    text_at(cr, CONF_X + side / 2, CONF_Y + side + 32, 0.5, 0, "predicted label");

    draw_colour_bar(cr, CONF_X + side + 24, side, max);
    set_font(cr, FS_NOTE, 0);
    set_hex(cr, C_MUTED);
    text_vertical(cr, CONF_W - 16, CONF_Y + side / 2, "count (log scale)");

    return chart_write(surf, cr, path, e);
}

/* ---------------------------------------------------------------------------
 * plot_class_scores */

#define SCORES_W 1000
#define SCORES_H 450

/* The y axis runs from a nice number below the lowest score to 1: scores of a
 * good model all sit in 0.95..1, and from 0 the bars would look identical.
 * Low scores (the axis would start near 0 anyway) get the honest 0..1. */
static Axis scores_axis(const Scores *s)
{
    double min = 1;
    for (int k = 0; k < s->classes; k++) {
        const double v[3] = {s->precision[k], s->recall[k], s->f1[k]};
        for (int j = 0; j < 3; j++)
            if (isfinite(v[j]) && v[j] < min)
                min = v[j];
    }
    min = min < 0 ? 0 : min;
    double pad = 0.25 * (1 - min) > 0.01 ? 0.25 * (1 - min) : 0.01;
    Axis a = {.lo = min - pad, .hi = 1};
    if (a.lo < 0.25)
        a.lo = 0;
    axis_fit_step(&a, nice_step((a.hi - a.lo) / 7));
    return a;
}

int plot_class_scores(const char *path, const Scores *s, Error *e)
{
    cairo_surface_t *surf;
    cairo_t *cr = chart_begin(&surf, SCORES_W, SCORES_H);
    Frame f = {.x = 84, .y = 78, .w = SCORES_W - 84 - 24, .h = SCORES_H - 78 - 64};
    const int C = s->classes > 0 ? s->classes : 1, label_every = C <= 20 ? 1 : (C + 19) / 20;
    f.xa = (Axis){.lo = 0, .hi = C, .step = 1};
    f.ya = scores_axis(s);
    char buf[96];

    set_font(cr, FS_TITLE, 1);
    set_hex(cr, C_TEXT);
    text_at(cr, f.x, 14, 0, 0, "Per-class precision, recall and F1");
    set_font(cr, FS_NOTE, 0);
    set_hex(cr, C_MUTED);
    if (f.ya.lo > 0)
        snprintf(buf, sizeof buf, "note: the y axis starts at %.*f, not 0, to show differences",
                 f.ya.decimals, f.ya.lo);
    else
        snprintf(buf, sizeof buf, "y axis from 0 to 1");
    text_at(cr, f.x, 40, 0, 0, buf);

    draw_y_axis(cr, &f, "score");

    const unsigned colour[3] = {C_SERIES_1, C_SERIES_2, C_SERIES_3};
    const double group = f.w / C, bar = group * 0.25;
    for (int k = 0; k < C; k++) {
        const double v[3] = {s->precision[k], s->recall[k], s->f1[k]};
        double gx = f.x + k * group + (group - 3 * bar) / 2;
        for (int j = 0; j < 3; j++) {
            if (!isfinite(v[j]) || v[j] <= f.ya.lo)
                continue;
            double top = frame_y(&f, v[j] > f.ya.hi ? f.ya.hi : v[j]);
            set_hex(cr, colour[j]);
            /* 1 px white between neighbours keeps the three bars distinct */
            cairo_rectangle(cr, gx + j * bar + 0.5, top, bar - 1, f.y + f.h - top);
            cairo_fill(cr);
        }
        if (k % label_every)
            continue;
        snprintf(buf, sizeof buf, "%d", k);
        set_font(cr, FS_TICK, 0);
        set_hex(cr, C_TEXT);
        text_at(cr, f.x + (k + 0.5) * group, f.y + f.h + 8, 0.5, 0, buf);
    }
    set_font(cr, FS_LABEL, 0);
    set_hex(cr, C_TEXT);
    text_at(cr, f.x + f.w / 2, f.y + f.h + 32, 0.5, 0, "class");
    draw_frame_edges(cr, &f);

    const LegendItem items[3] = {
        {"precision", C_SERIES_1, -1}, {"recall", C_SERIES_2, -1}, {"F1", C_SERIES_3, -1}};
    draw_legend(cr, f.x + f.w, 26, items, 3);

    return chart_write(surf, cr, path, e);
}

/* ---------------------------------------------------------------------------
 * plot_mistakes */

#define MK_COLS 6
#define MK_SIDE 112.0                 /* images drawn 112 px on their longer side */
#define MK_CELL_W 160.0
#define MK_CELL_H 182.0
#define MK_MARGIN 24.0
#define MK_TOP 62.0

/* Paints one h x w grey image at (x, y), scaled to MK_SIDE on its longer
 * side with square pixels (nearest-neighbour: smoothing would blur the
 * strokes that explain the mistake). The bytes become an A8 mask (alpha =
 * ink), so 0 stays white paper and 255 is dark ink. Returns cairo's status
 * for the mask surface. */
static cairo_status_t draw_digit(cairo_t *cr, double x, double y, const uint8_t *pixels, int h,
                                 int w)
{
    if (h < 1 || w < 1)
        return CAIRO_STATUS_SUCCESS; /* nothing to show */
    const double scale = MK_SIDE / (h > w ? h : w);
    cairo_surface_t *img = cairo_image_surface_create(CAIRO_FORMAT_A8, w, h);
    cairo_status_t st = cairo_surface_status(img);
    if (st == CAIRO_STATUS_SUCCESS) {
        cairo_surface_flush(img);
        unsigned char *data = cairo_image_surface_get_data(img);
        int stride = cairo_image_surface_get_stride(img);
        for (int r = 0; r < h; r++)
            memcpy(data + (size_t)r * (size_t)stride, pixels + (size_t)r * (size_t)w, (size_t)w);
        cairo_surface_mark_dirty(img);

        cairo_pattern_t *pat = cairo_pattern_create_for_surface(img);
        cairo_pattern_set_filter(pat, CAIRO_FILTER_NEAREST);
        cairo_save(cr);
        cairo_translate(cr, x, y);
        cairo_scale(cr, scale, scale);
        set_hex(cr, 0x111111u);
        cairo_mask(cr, pat);
        cairo_restore(cr);
        st = cairo_pattern_status(pat);
        cairo_pattern_destroy(pat);
    }
    cairo_surface_destroy(img);
    return st;
}

int plot_mistakes(const char *path, const Mistake *items, int n, Error *e)
{
    if (n < 0 || (n > 0 && !items))
        return err_set(e, "%s: cannot draw chart: %d mistakes given", path, n);
    char buf[96];
    cairo_surface_t *surf;
    cairo_t *cr;

    if (n == 0) {
        cr = chart_begin(&surf, 420, 130);
        set_font(cr, FS_TITLE, 1);
        set_hex(cr, C_TEXT);
        text_at(cr, 210, 30, 0.5, 0.5, "Most confident mistakes");
        set_font(cr, FS_LABEL, 0);
        set_hex(cr, C_MUTED);
        text_at(cr, 210, 82, 0.5, 0.5, "no misclassified images");
        return chart_write(surf, cr, path, e);
    }

    int cols = n < MK_COLS ? n : MK_COLS, rows = (n + MK_COLS - 1) / MK_COLS;
    int w = (int)(2 * MK_MARGIN + cols * MK_CELL_W), h = (int)(MK_TOP + rows * MK_CELL_H + 8);
    w = w < 420 ? 420 : w; /* room for the title when there are only a few */
    cr = chart_begin(&surf, w, h);

    set_font(cr, FS_TITLE, 1);
    set_hex(cr, C_TEXT);
    text_at(cr, MK_MARGIN, 14, 0, 0, "Most confident mistakes");
    set_font(cr, FS_NOTE, 0);
    set_hex(cr, C_MUTED);
    text_at(cr, MK_MARGIN, 38, 0, 0, "p = the model's probability for its (wrong) prediction");

    const double side = MK_SIDE;
    cairo_status_t st = CAIRO_STATUS_SUCCESS;
    for (int i = 0; i < n && st == CAIRO_STATUS_SUCCESS; i++) {
        double cx = MK_MARGIN + (i % MK_COLS) * MK_CELL_W;
        double cy = MK_TOP + (i / MK_COLS) * MK_CELL_H;
        double x = cx + (MK_CELL_W - side) / 2, y = cy + 6;
        st = draw_digit(cr, x, y, items[i].pixels, items[i].h, items[i].w);
        /* a hairline frame shows where the white paper ends */
        set_hex(cr, 0xccccccu);
        cairo_set_line_width(cr, 1);
        cairo_rectangle(cr, x - 0.5, y - 0.5, side + 1, side + 1);
        cairo_stroke(cr);

        /* "→" is U+2192, present in DejaVu Sans */
        snprintf(buf, sizeof buf, "true %d \xe2\x86\x92 pred %d", (int)items[i].label,
                 (int)items[i].pred);
        set_font(cr, FS_TICK, 0);
        set_hex(cr, C_TEXT);
        text_at(cr, cx + MK_CELL_W / 2, y + side + 6, 0.5, 0, buf);
        /* confident mistakes are mostly 0.99x: a third decimal, truncated so
         * 0.9996 does not print as a certain "1.000" */
        double p = items[i].prob;
        if (p >= 0.99 && p < 1)
            snprintf(buf, sizeof buf, "p = %.3f", floor(p * 1000) / 1000);
        else
            snprintf(buf, sizeof buf, "p = %.2f", p);
        set_font(cr, FS_NOTE, 0);
        set_hex(cr, C_MUTED);
        text_at(cr, cx + MK_CELL_W / 2, y + side + 26, 0.5, 0, buf);
    }
    if (st != CAIRO_STATUS_SUCCESS) {
        cairo_destroy(cr);
        cairo_surface_destroy(surf);
        return err_set(e, "%s: cannot draw/write chart: %s", path, cairo_status_to_string(st));
    }
    return chart_write(surf, cr, path, e);
}

int plot_augmented(const char *path, const uint8_t *originals, const float *augmented, int rows,
                   int per, Error *e)
{
    if (rows <= 0 || per <= 0 || !originals || !augmented)
        return err_set(e, "%s: cannot draw chart: no augmented samples", path);
    const int cols = 1 + per;
    const double side = MK_SIDE, cell = side + 16;
    const int w = (int)(2 * MK_MARGIN + cols * cell + 12), h = (int)(MK_TOP + rows * cell + 8);
    cairo_surface_t *surf;
    cairo_t *cr = chart_begin(&surf, w < 420 ? 420 : w, h);
    set_font(cr, FS_TITLE, 1);
    set_hex(cr, C_TEXT);
    text_at(cr, MK_MARGIN, 14, 0, 0, "Augmented training samples");
    set_font(cr, FS_NOTE, 0);
    set_hex(cr, C_MUTED);
    text_at(cr, MK_MARGIN, 38, 0, 0, "left: the original; right: what training sees in different epochs");
    cairo_status_t st = CAIRO_STATUS_SUCCESS;
    enum { PIXELS = AUGMENT_SIDE * AUGMENT_SIDE };
    uint8_t px[PIXELS];
    for (int r = 0; r < rows && st == CAIRO_STATUS_SUCCESS; r++)
        for (int c = 0; c < cols && st == CAIRO_STATUS_SUCCESS; c++) {
            const uint8_t *img = originals + (size_t)r * PIXELS;
            if (c > 0) {
                const float *f = augmented + ((size_t)r * per + (size_t)(c - 1)) * PIXELS;
                for (int k = 0; k < PIXELS; k++)
                    px[k] = (uint8_t)lrintf(255.0f * (f[k] < 0 ? 0 : f[k] > 1 ? 1 : f[k]));
                img = px;
            }
            /* a gap after the original column */
            const double x = MK_MARGIN + c * cell + (c > 0 ? 12 : 0), y = MK_TOP + r * cell;
            st = draw_digit(cr, x, y, img, AUGMENT_SIDE, AUGMENT_SIDE);
            set_hex(cr, c == 0 ? 0x888888u : 0xccccccu);
            cairo_set_line_width(cr, 1);
            cairo_rectangle(cr, x - 0.5, y - 0.5, side + 1, side + 1);
            cairo_stroke(cr);
        }
    if (st != CAIRO_STATUS_SUCCESS) {
        cairo_destroy(cr);
        cairo_surface_destroy(surf);
        return err_set(e, "%s: cannot draw/write chart: %s", path, cairo_status_to_string(st));
    }
    return chart_write(surf, cr, path, e);
}
/* ---------------------------------------------------------------------------
 * plot_lines */

#define LINES_W 960
#define LINES_H 600
static const unsigned LINE_COLOURS[PLOT_MAX_SERIES] = {C_SERIES_1, C_SERIES_2, C_SERIES_3,
                                                       0xd62728u};

/* Thousands as "12k" when the axis is in thousands, else plain. */
static void fmt_thousands(char *buf, size_t n, double v, double step)
{
    if (v == 0)
        snprintf(buf, n, "0");
    else if (step >= 1000 && fmod(v, 1000) == 0)
        snprintf(buf, n, "%.0fk", v / 1000);
    else
        snprintf(buf, n, "%.*f", step >= 1 ? 0 : (int)ceil(-log10(step)), v);
}

/* Where plot_lines draws: the frame and the data ranges. */
typedef struct LinesFrame {
    double fx, fy, fw, fh, xmin, xmax, ymax, ystep;
    int log2x;
} LinesFrame;

static double lines_px(const LinesFrame *f, double v)
{
    return f->fx + ((f->log2x ? log2(v) : v) - f->xmin) / (f->xmax - f->xmin) * f->fw;
}

static double lines_py(const LinesFrame *f, double v) { return f->fy + f->fh - v / f->ymax * f->fh; }

/* Axes: x linear or log2 over the data, y from 0 to a nice maximum. */
static LinesFrame lines_frame(const PlotLines *p)
{
    LinesFrame f = {.fx = 110, .fy = 70, .log2x = p->log2x};
    f.fw = LINES_W - f.fx - 40, f.fh = LINES_H - f.fy - 90;
    double xmin = INFINITY, xmax = -INFINITY, ymax = 0;
    for (int i = 0; i < p->n; i++) {
        const double x = p->log2x ? log2(p->x[i]) : p->x[i];
        xmin = fmin(xmin, x), xmax = fmax(xmax, x);
        for (int k = 0; k < p->n_series; k++)
            if (isfinite(p->y[k][i]))
                ymax = fmax(ymax, p->y[k][i]);
    }
    if (xmax == xmin)
        xmin -= 1, xmax += 1;
    const double xpad = 0.04 * (xmax - xmin);
    f.xmin = xmin - xpad, f.xmax = xmax + xpad;
    if (ymax <= 0)
        ymax = 1;
    f.ystep = nice_step(ymax * 1.08 / 6);
    f.ymax = ceil(ymax * 1.08 / f.ystep) * f.ystep;
    return f;
}

/* Title, note, grid, tick labels, axis labels and frame edges. */
static void lines_axes(cairo_t *cr, const PlotLines *p, const LinesFrame *f)
{
    set_hex(cr, C_TEXT);
    double title_px = 18;
    set_font(cr, title_px, 1);
    while (title_px > 11 && text_width(cr, p->title) > LINES_W - f->fx - 20)
        set_font(cr, title_px -= 0.5, 1); /* long titles shrink to fit */
    text_at(cr, f->fx, 20, 0, 0.5, p->title);
    if (p->note[0]) {
        set_font(cr, 13, 0);
        set_hex(cr, C_MUTED);
        text_at(cr, f->fx, 44, 0, 0.5, p->note);
    }
    /* y grid and labels */
    char buf[64];
    cairo_set_line_width(cr, 1);
    set_font(cr, 14, 0);
    for (double v = 0; v <= f->ymax + 1e-9 * f->ymax; v += f->ystep) {
        const double y = floor(lines_py(f, v)) + 0.5;
        set_hex(cr, C_GRID);
        cairo_move_to(cr, f->fx, y), cairo_line_to(cr, f->fx + f->fw, y), cairo_stroke(cr);
        set_hex(cr, C_TEXT);
        fmt_thousands(buf, sizeof buf, v, f->ystep);
        text_at(cr, f->fx - 8, y, 1, 0.5, buf);
    }
    /* x ticks at the data's x values (log2: 32, 64, ...) */
    for (int i = 0; i < p->n; i++) {
        const double x = floor(lines_px(f, p->x[i])) + 0.5;
        set_hex(cr, C_GRID);
        cairo_move_to(cr, x, f->fy), cairo_line_to(cr, x, f->fy + f->fh), cairo_stroke(cr);
        set_hex(cr, C_TEXT);
        snprintf(buf, sizeof buf, "%g", p->x[i]);
        text_at(cr, x, f->fy + f->fh + 8, 0.5, 0, buf);
    }
    set_font(cr, 15, 0);
    text_at(cr, f->fx + f->fw / 2, f->fy + f->fh + 36, 0.5, 0, p->xlabel);
    cairo_save(cr);
    cairo_translate(cr, 28, f->fy + f->fh / 2);
    cairo_rotate(cr, -PLOT_PI / 2);
    text_at(cr, 0, 0, 0.5, 0.5, p->ylabel);
    cairo_restore(cr);
    set_hex(cr, C_AXIS);
    cairo_move_to(cr, f->fx + 0.5, f->fy), cairo_line_to(cr, f->fx + 0.5, f->fy + f->fh + 0.5);
    cairo_line_to(cr, f->fx + f->fw, f->fy + f->fh + 0.5), cairo_stroke(cr);
}

/* Series: lines, markers, and the value above each point. */
static void lines_series(cairo_t *cr, const PlotLines *p, const LinesFrame *f)
{
    char buf[64];
    for (int k = 0; k < p->n_series; k++) {
        set_hex(cr, LINE_COLOURS[k]);
        cairo_set_line_width(cr, 2.5);
        int pen = 0;
        for (int i = 0; i < p->n; i++) {
            if (!isfinite(p->y[k][i])) {
                pen = 0;
                continue;
            }
            if (pen)
                cairo_line_to(cr, lines_px(f, p->x[i]), lines_py(f, p->y[k][i]));
            else
                cairo_move_to(cr, lines_px(f, p->x[i]), lines_py(f, p->y[k][i]));
            pen = 1;
        }
        if (k % 2)
            cairo_set_dash(cr, (const double[]){8, 5}, 2, 0);
        cairo_stroke(cr);
        cairo_set_dash(cr, NULL, 0, 0);
        set_font(cr, 12, 0);
        for (int i = 0; i < p->n; i++) {
            if (!isfinite(p->y[k][i]))
                continue;
            const double x = lines_px(f, p->x[i]), y = lines_py(f, p->y[k][i]);
            set_hex(cr, LINE_COLOURS[k]);
            cairo_arc(cr, x, y, 4.5, 0, 2 * PLOT_PI);
            cairo_fill(cr);
            fmt_thousands(buf, sizeof buf, p->y[k][i], 1);
            if (p->y[k][i] >= 1000)
                snprintf(buf, sizeof buf, "%.1fk", p->y[k][i] / 1000);
            set_hex(cr, C_TEXT);
            text_at(cr, x, y + (k % 2 ? 8 : -8), 0.5, k % 2 ? 0 : 1, buf);
        }
    }
}

/* 1 when a line of p (or its value labels, a band of 24 px) passes through
 * the box at (cx, cy) of w x h. */
static int lines_hit(const PlotLines *p, const LinesFrame *f, double cx, double cy, double w,
                     double h)
{
    for (int k = 0; k < p->n_series; k++)
        for (int i = 0; i + 1 < p->n; i++) {
            if (!isfinite(p->y[k][i]) || !isfinite(p->y[k][i + 1]))
                continue;
            const double x0 = lines_px(f, p->x[i]), x1 = lines_px(f, p->x[i + 1]);
            const double y0 = lines_py(f, p->y[k][i]), y1 = lines_py(f, p->y[k][i + 1]);
            for (int t = 0; t <= 20; t++) { /* sample the segment */
                const double u = t / 20.0, px = x0 + u * (x1 - x0), py = y0 + u * (y1 - y0);
                if (px > cx - 30 && px < cx + w + 30 && py > cy - 24 && py < cy + h + 24)
                    return 1;
            }
        }
    return 0;
}

/* The legend inside the frame, in the first corner (top right, top left,
 * bottom right, bottom left) whose box no line passes through. */
static void lines_legend(cairo_t *cr, const PlotLines *p, const LinesFrame *f)
{
    set_font(cr, 14, 0);
    int n_leg = 0;
    while (n_leg < p->n_series && p->names[n_leg])
        n_leg++;
    if (n_leg == 0)
        return;
    double leg_w = 0;
    for (int k = 0; k < n_leg; k++)
        leg_w = fmax(leg_w, text_width(cr, p->names[k]));
    leg_w += 40 + 24, leg_w = fmin(leg_w, f->fw);
    const double leg_h = 22.0 * n_leg + 8;
    double lx = f->fx + f->fw - leg_w - 4, ly0 = f->fy + 4;
    for (int corner = 0; corner < 4; corner++) {
        const double cx = corner % 2 ? f->fx + 4 : f->fx + f->fw - leg_w - 4;
        const double cy = corner < 2 ? f->fy + 4 : f->fy + f->fh - leg_h - 4;
        if (!lines_hit(p, f, cx, cy, leg_w, leg_h)) {
            lx = cx, ly0 = cy;
            break;
        }
    }
    cairo_set_source_rgba(cr, 1, 1, 1, 0.85);
    cairo_rectangle(cr, lx, ly0, leg_w, leg_h);
    cairo_fill(cr);
    double ly = ly0 + 15;
    for (int k = 0; k < n_leg; k++) {
        set_hex(cr, LINE_COLOURS[k]);
        cairo_set_line_width(cr, 2.5);
        if (k % 2)
            cairo_set_dash(cr, (const double[]){8, 5}, 2, 0);
        cairo_move_to(cr, lx + 10, ly), cairo_line_to(cr, lx + 42, ly), cairo_stroke(cr);
        cairo_set_dash(cr, NULL, 0, 0);
        set_hex(cr, C_TEXT);
        text_at(cr, lx + 52, ly, 0, 0.5, p->names[k]);
        ly += 22;
    }
}

int plot_lines(const char *path, const PlotLines *p, Error *e)
{
    if (p->n < 1 || p->n_series < 1 || p->n_series > PLOT_MAX_SERIES)
        return err_set(e, "%s: a line chart needs points and 1..%d series", path, PLOT_MAX_SERIES);
    const LinesFrame f = lines_frame(p);
    cairo_surface_t *surf;
    cairo_t *cr = chart_begin(&surf, LINES_W, LINES_H);
    lines_axes(cr, p, &f);
    lines_series(cr, p, &f);
    lines_legend(cr, p, &f);
    return chart_write(surf, cr, path, e);
}

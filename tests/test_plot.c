/* Unit tests for the report's charts: each PNG is read back with cairo and
 * checked for its size, for being neither blank nor a dark smear, and for
 * pixels that follow the data; plus edge cases and unwritable paths. */
#include <CUnit/CUnit.h>
#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mnist/plot.h"
#include "test_util.h"

int test_plot_register(void);

/* The series colours plot.c draws with (tab10 blue, orange, green). */
#define COL_TRAIN 0x1f77b4u
#define COL_VAL 0xff7f0eu
#define COL_RECALL 0xff7f0eu

typedef struct Png {
    cairo_surface_t *s;
    int w, h, stride;
    const unsigned char *data;
} Png;

/* 0, or -1 if path is not a readable PNG. */
static int png_load(Png *p, const char *path)
{
    p->s = cairo_image_surface_create_from_png(path);
    if (cairo_surface_status(p->s) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(p->s);
        p->s = NULL;
        return -1;
    }
    cairo_surface_flush(p->s);
    p->w = cairo_image_surface_get_width(p->s);
    p->h = cairo_image_surface_get_height(p->s);
    p->stride = cairo_image_surface_get_stride(p->s);
    p->data = cairo_image_surface_get_data(p->s);
    return 0;
}

static void png_free(Png *p)
{
    if (p->s)
        cairo_surface_destroy(p->s);
    p->s = NULL;
}

/* 0xRRGGBB at (x, y): the charts are opaque, so premultiplication is moot. */
static unsigned px(const Png *p, int x, int y)
{
    uint32_t v;
    memcpy(&v, p->data + (size_t)y * (size_t)p->stride + 4 * (size_t)x, 4);
    return v & 0xffffffu;
}

static double lum(unsigned c)
{
    return 0.2126 * ((c >> 16) & 0xff) + 0.7152 * ((c >> 8) & 0xff) + 0.0722 * (c & 0xff);
}

static int near(unsigned a, unsigned b, int tol)
{
    for (int sh = 0; sh < 24; sh += 8)
        if (abs((int)((a >> sh) & 0xff) - (int)((b >> sh) & 0xff)) > tol)
            return 0;
    return 1;
}

/* Fractions of pixels that are not white and that are dark. */
static void png_ink(const Png *p, double *nonwhite, double *dark)
{
    long nw = 0, dk = 0;
    for (int y = 0; y < p->h; y++)
        for (int x = 0; x < p->w; x++) {
            double l = lum(px(p, x, y));
            nw += l < 245;
            dk += l < 80;
        }
    *nonwhite = (double)nw / ((double)p->w * p->h);
    *dark = (double)dk / ((double)p->w * p->h);
}

/* Pixels of colour c in rows [y0, y1). */
static long count_colour(const Png *p, unsigned c, int y0, int y1)
{
    long n = 0;
    for (int y = y0; y < y1; y++)
        for (int x = 0; x < p->w; x++)
            n += near(px(p, x, y), c, 8);
    return n;
}

/* Loads path and checks its size and that it is a drawing, not blank or
 * smeared dark. Returns 0 with p loaded, or -1 (after failing assertions). */
static int check_png(Png *p, const char *path, int w, int h)
{
    int ok = png_load(p, path) == 0;
    CU_ASSERT(ok);
    if (!ok)
        return -1;
    if (w > 0) {
        CU_ASSERT_EQUAL(p->w, w);
        CU_ASSERT_EQUAL(p->h, h);
    }
    double nonwhite, dark;
    png_ink(p, &nonwhite, &dark);
    CU_ASSERT(nonwhite > 0.01);
    CU_ASSERT(nonwhite < 0.6);
    CU_ASSERT(dark < 0.25);
    return 0;
}

static void history_make(History *h, int n, int with_val)
{
    memset(h, 0, sizeof *h);
    for (int i = 0; i < n; i++) {
        EpochStats s = {.epoch = i + 1,
                        .train_loss = 0.5 / (1 + i) + 0.02,
                        .train_acc = 0.9 + 0.09 * (1 - exp(-0.3 * i)),
                        .val_loss = with_val ? 0.45 / (1 + i) + 0.05 : NAN,
                        .val_acc = with_val ? 0.91 + 0.07 * (1 - exp(-0.3 * i)) : NAN,
                        .seconds = 1,
                        .samples_per_s = 1000};
        Error e;
        CU_ASSERT_FATAL(history_push(h, &s, &e) == 0);
    }
}

static void test_curves(void)
{
    char dir[256], path[512];
    tu_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/curves.png", dir);
    History h;
    history_make(&h, 20, 1);
    Error e;
    CU_ASSERT_FATAL(plot_curves(path, &h, &e) == 0);
    Png p;
    if (check_png(&p, path, 1200, 450) == 0) {
        /* both lines cross the middle band, below the header with the legend */
        CU_ASSERT(count_colour(&p, COL_TRAIN, p.h / 5, 4 * p.h / 5) > 200);
        CU_ASSERT(count_colour(&p, COL_VAL, p.h / 5, 4 * p.h / 5) > 200);
        png_free(&p);
    }
    CU_ASSERT_EQUAL(tu_count_entries(dir), 1); /* no temp file left */
    history_free(&h);
    tu_rmrf(dir);
}

static void test_curves_edge_cases(void)
{
    char dir[256], path[512];
    tu_tmpdir(dir, sizeof dir);
    History h;
    Error e;
    Png p;

    /* no validation split: no orange anywhere, not even in the legend */
    snprintf(path, sizeof path, "%s/noval.png", dir);
    history_make(&h, 5, 0);
    CU_ASSERT(plot_curves(path, &h, &e) == 0);
    if (check_png(&p, path, 1200, 450) == 0) {
        CU_ASSERT_EQUAL(count_colour(&p, COL_VAL, 0, p.h), 0);
        CU_ASSERT(count_colour(&p, COL_TRAIN, p.h / 5, 4 * p.h / 5) > 100);
        png_free(&p);
    }
    history_free(&h);

    /* one epoch: each series is a single point, which must still show */
    snprintf(path, sizeof path, "%s/one.png", dir);
    history_make(&h, 1, 1);
    CU_ASSERT(plot_curves(path, &h, &e) == 0);
    if (check_png(&p, path, 1200, 450) == 0) {
        CU_ASSERT(count_colour(&p, COL_TRAIN, p.h / 5, 4 * p.h / 5) > 20);
        CU_ASSERT(count_colour(&p, COL_VAL, p.h / 5, 4 * p.h / 5) > 20);
        png_free(&p);
    }
    history_free(&h);

    /* all-equal values: a real y range around them, the line in view */
    snprintf(path, sizeof path, "%s/flat.png", dir);
    history_make(&h, 10, 1);
    for (int i = 0; i < h.count; i++) {
        h.items[i].train_loss = h.items[i].val_loss = 0.25;
        h.items[i].train_acc = h.items[i].val_acc = 1.0;
    }
    CU_ASSERT(plot_curves(path, &h, &e) == 0);
    if (check_png(&p, path, 1200, 450) == 0) {
        CU_ASSERT(count_colour(&p, COL_VAL, p.h / 5, 4 * p.h / 5) > 100);
        png_free(&p);
    }
    history_free(&h);

    /* many epochs */
    snprintf(path, sizeof path, "%s/long.png", dir);
    history_make(&h, 200, 1);
    CU_ASSERT(plot_curves(path, &h, &e) == 0);
    if (check_png(&p, path, 1200, 450) == 0)
        png_free(&p);
    history_free(&h);

    /* no epochs at all (an evaluate-only run) */
    snprintf(path, sizeof path, "%s/empty.png", dir);
    CU_ASSERT(plot_curves(path, &h, &e) == 0);
    if (check_png(&p, path, 1200, 450) == 0)
        png_free(&p);

    CU_ASSERT_EQUAL(tu_count_entries(dir), 5);
    tu_rmrf(dir);
}

enum { C = 10 };

static void confusion_base(int64_t m[C][C])
{
    memset(m, 0, sizeof(int64_t) * C * C);
    for (int k = 0; k < C; k++)
        m[k][k] = 1000 + 3 * k;
}

static void test_confusion(void)
{
    char dir[256], path[3][512];
    tu_tmpdir(dir, sizeof dir);
    int64_t m[3][C][C];
    /* the same matrix with cell (3, 5) empty, holding 950, holding 3; the
     * title's totals differ, but only cell (3, 5) turns blue */
    for (int i = 0; i < 3; i++)
        confusion_base(m[i]);
    m[1][3][5] = 950;
    m[2][3][5] = 3;
    Error e;
    Png p[3];
    int loaded = 1;
    for (int i = 0; i < 3; i++) {
        snprintf(path[i], sizeof path[i], "%s/confusion%d.png", dir, i);
        CU_ASSERT_FATAL(plot_confusion(path[i], &m[i][0][0], C, &e) == 0);
        loaded &= check_png(&p[i], path[i], 700, 640) == 0;
    }
    CU_ASSERT_FATAL(loaded);

    /* cell (3, 5): the pixels white in the empty version and dark blue with 950 */
    int x0 = p[0].w, y0 = p[0].h, x1 = -1, y1 = -1;
    for (int y = 0; y < p[0].h; y++)
        for (int x = 0; x < p[0].w; x++) {
            unsigned a = px(&p[0], x, y), b = px(&p[1], x, y);
            if (lum(a) > 240 && lum(b) < 150 && (b & 0xff) > ((b >> 16) & 0xff) + 40) {
                x0 = x < x0 ? x : x0;
                x1 = x > x1 ? x : x1;
                y0 = y < y0 ? y : y0;
                y1 = y > y1 ? y : y1;
            }
        }
    int cw = x1 - x0 + 1, ch = y1 - y0 + 1;
    CU_ASSERT(cw >= 25 && cw <= 90);
    CU_ASSERT(abs(cw - ch) <= 4); /* a square cell, not some scattered pixels */
    if (cw >= 25 && cw <= 90 && abs(cw - ch) <= 4) {
        /* a corner inside the cell, clear of the centred count */
        int sx = x0 + 4, sy = y0 + 4;
        double empty = lum(px(&p[0], sx, sy)), big = lum(px(&p[1], sx, sy));
        unsigned small = px(&p[2], sx, sy);
        CU_ASSERT(empty > 240);
        CU_ASSERT(big < 150);
        /* 3 errors beside ~1000 on the diagonal are still visibly blue */
        CU_ASSERT(lum(small) < 240);
        CU_ASSERT(lum(small) > big);
        CU_ASSERT((small & 0xff) > ((small >> 16) & 0xff));
        /* the diagonal cell (5, 5), two rows down, is dark in every version */
        int dy = sy + 2 * (ch + 1);
        CU_ASSERT(lum(px(&p[0], sx, dy)) < 150);
    }
    for (int i = 0; i < 3; i++)
        png_free(&p[i]);

    /* all zeros (nothing evaluated) still draws */
    int64_t zero[C][C] = {{0}};
    char zpath[512];
    snprintf(zpath, sizeof zpath, "%s/zero.png", dir);
    CU_ASSERT(plot_confusion(zpath, &zero[0][0], C, &e) == 0);
    Png z;
    if (check_png(&z, zpath, 700, 640) == 0)
        png_free(&z);
    CU_ASSERT_EQUAL(tu_count_entries(dir), 4);
    tu_rmrf(dir);
}

static void scores_fill(Scores *s, double v)
{
    memset(s, 0, sizeof *s);
    s->classes = C;
    for (int k = 0; k < C; k++)
        s->precision[k] = s->recall[k] = s->f1[k] = v;
}

/* Heights of the recall bars, left to right: columns whose longest vertical
 * run of the recall colour is >= 20 px (taller than the legend swatch),
 * grouped into runs of neighbouring columns. Returns the number of bars. */
static int recall_bars(const Png *p, int *height, int max_bars)
{
    int bars = 0, in_bar = 0;
    for (int x = 0; x < p->w; x++) {
        int best = 0, run = 0;
        for (int y = 0; y < p->h; y++) {
            run = near(px(p, x, y), COL_RECALL, 8) ? run + 1 : 0;
            best = run > best ? run : best;
        }
        if (best >= 20) {
            if (!in_bar && bars < max_bars)
                height[bars++] = 0;
            if (bars > 0 && best > height[bars - 1])
                height[bars - 1] = best;
            in_bar = 1;
        } else {
            in_bar = 0;
        }
    }
    return bars;
}

static void test_class_scores(void)
{
    char dir[256], path[512];
    tu_tmpdir(dir, sizeof dir);
    Scores s;
    scores_fill(&s, 0.99);
    s.recall[7] = 0.90;
    snprintf(path, sizeof path, "%s/scores.png", dir);
    Error e;
    CU_ASSERT_FATAL(plot_class_scores(path, &s, &e) == 0);
    Png p;
    if (check_png(&p, path, 1000, 450) == 0) {
        int height[16];
        int n = recall_bars(&p, height, 16);
        CU_ASSERT_EQUAL(n, C);
        if (n == C) {
            /* the axis does not start at 0: 0.99 is a tall bar and 0.90
             * visibly shorter, rather than ten bars of nearly equal height */
            CU_ASSERT(height[0] > 150);
            CU_ASSERT(height[7] < 0.6 * height[0]);
            CU_ASSERT(abs(height[0] - height[9]) <= 1);
        }
        png_free(&p);
    }

    /* perfect scores, and a class never predicted (scores of 0) */
    scores_fill(&s, 1.0);
    snprintf(path, sizeof path, "%s/perfect.png", dir);
    CU_ASSERT(plot_class_scores(path, &s, &e) == 0);
    if (check_png(&p, path, 1000, 450) == 0)
        png_free(&p);
    s.precision[3] = s.recall[3] = s.f1[3] = 0;
    snprintf(path, sizeof path, "%s/zero.png", dir);
    CU_ASSERT(plot_class_scores(path, &s, &e) == 0);
    if (check_png(&p, path, 1000, 450) == 0)
        png_free(&p);
    CU_ASSERT_EQUAL(tu_count_entries(dir), 3);
    tu_rmrf(dir);
}

static long dark_pixels(const Png *p)
{
    long n = 0;
    for (int y = 0; y < p->h; y++)
        for (int x = 0; x < p->w; x++)
            n += lum(px(p, x, y)) < 60;
    return n;
}

static void test_mistakes(void)
{
    char dir[256], path[512];
    tu_tmpdir(dir, sizeof dir);
    Error e;
    Png p;
    static Mistake items[REPORT_MISTAKES];
    for (int i = 0; i < REPORT_MISTAKES; i++) {
        Mistake *m = &items[i];
        memset(m, 0, sizeof *m);
        m->prob = 0.99f - 0.01f * (float)i;
        m->label = i % C;
        m->pred = (i + 3) % C;
        m->index = 100 + i;
        m->h = m->w = MNIST_SIDE;
        /* a stroke whose place varies by item, with soft edges */
        for (int r = 4; r < 24; r++)
            for (int c = 0; c < 4; c++)
                m->pixels[r * MNIST_SIDE + 6 + i % 12 + c] = (uint8_t)(c == 0 ? 128 : 255);
    }
    snprintf(path, sizeof path, "%s/mistakes.png", dir);
    CU_ASSERT_FATAL(plot_mistakes(path, items, REPORT_MISTAKES, &e) == 0);
    if (check_png(&p, path, 0, 0) == 0) {
        CU_ASSERT(p.w >= 6 * 3 * MNIST_SIDE); /* 6 columns, at least x3 */
        CU_ASSERT(p.h >= 4 * 3 * MNIST_SIDE); /* 4 rows */
        png_free(&p);
    }

    /* the ink follows the pixels: an all-ink digit adds >= 28x28x9 dark pixels */
    Mistake blank = items[0], full = items[0];
    memset(blank.pixels, 0, sizeof blank.pixels);
    memset(full.pixels, 255, MNIST_PIXELS);
    long dark[2] = {0, 0};
    const Mistake *one[2] = {&blank, &full};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/one%d.png", dir, i);
        CU_ASSERT(plot_mistakes(path, one[i], 1, &e) == 0);
        CU_ASSERT(png_load(&p, path) == 0);
        if (p.s) {
            dark[i] = dark_pixels(&p);
            png_free(&p);
        }
    }
    CU_ASSERT(dark[1] - dark[0] >= 9L * MNIST_PIXELS);

    /* no mistakes: a small image that says so */
    snprintf(path, sizeof path, "%s/none.png", dir);
    CU_ASSERT(plot_mistakes(path, NULL, 0, &e) == 0);
    if (check_png(&p, path, 0, 0) == 0) {
        CU_ASSERT(p.w >= 200 && p.w <= 800);
        CU_ASSERT(p.h >= 50 && p.h <= 300);
        png_free(&p);
    }
    CU_ASSERT_EQUAL(plot_mistakes(path, NULL, -1, &e), -1);
    CU_ASSERT_EQUAL(tu_count_entries(dir), 4);
    tu_rmrf(dir);
}

/* Every chart refuses an unwritable path with -1, a message naming the path,
 * and no file (final or temp) left behind. */
/* plot_lines (plot-xy's chart): both series drawn in their colours, a gap
 * for a missing point, no temp file left; no series is refused. */
static void test_lines(void)
{
    char dir[256], path[512];
    tu_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/lines.png", dir);
    const double x[] = {32, 64, 128, 256, 512};
    const double a[] = {47000, 57000, 62000, 65000, 56000};
    const double b[] = {65000, 72000, NAN, 67500, 69000};
    PlotLines pl = {"throughput", "a note", "batch", "samples/s", 1, 5, 2, x,
                    {a, b}, {"measured", "ceiling"}};
    Error e;
    CU_ASSERT_FATAL(plot_lines(path, &pl, &e) == 0);
    Png p;
    if (check_png(&p, path, 960, 600) == 0) {
        CU_ASSERT(count_colour(&p, COL_TRAIN, p.h / 5, 4 * p.h / 5) > 200);
        CU_ASSERT(count_colour(&p, COL_VAL, p.h / 5, 4 * p.h / 5) > 200);
        png_free(&p);
    }
    CU_ASSERT_EQUAL(tu_count_entries(dir), 1);
    pl.n_series = 0;
    snprintf(path, sizeof path, "%s/none.png", dir);
    CU_ASSERT(plot_lines(path, &pl, &e) == -1);
    CU_ASSERT(strstr(e.msg, "none.png") != NULL);
    CU_ASSERT_EQUAL(tu_count_entries(dir), 1);
    tu_rmrf(dir);
}

static void test_unwritable(void)
{
    History h;
    history_make(&h, 3, 1);
    int64_t m[C][C];
    confusion_base(m);
    Scores s;
    scores_fill(&s, 0.97);
    Mistake mk;
    memset(&mk, 0, sizeof mk);

    char dir[256], missing[512];
    tu_tmpdir(dir, sizeof dir);
    snprintf(missing, sizeof missing, "%s/no/such/dir/chart.png", dir);
    const char *paths[2] = {"/proc/x.png", missing};
    for (int i = 0; i < 2; i++) {
        for (int chart = 0; chart < 4; chart++) {
            Error e = {{0}};
            int rc = chart == 0   ? plot_curves(paths[i], &h, &e)
                     : chart == 1 ? plot_confusion(paths[i], &m[0][0], C, &e)
                     : chart == 2 ? plot_class_scores(paths[i], &s, &e)
                                  : plot_mistakes(paths[i], &mk, 1, &e);
            CU_ASSERT_EQUAL(rc, -1);
            CU_ASSERT(strstr(e.msg, paths[i]) == e.msg);
            /* the system's reason, e.g. "No such file or directory" */
            CU_ASSERT(strstr(e.msg, "cannot create: ") != NULL);
            CU_ASSERT(!path_exists(paths[i]));
        }
    }
    CU_ASSERT_EQUAL(tu_count_entries(dir), 0);
    tu_rmrf(dir);
    history_free(&h);
}

int test_plot_register(void)
{
    CU_pSuite s = CU_add_suite("plot", NULL, NULL);
    if (!s)
        return -1;
    return (CU_add_test(s, "loss and accuracy curves", test_curves) &&
            CU_add_test(s, "curves: no validation, 1, flat, 200 and 0 epochs",
                        test_curves_edge_cases) &&
            CU_add_test(s, "confusion heatmap follows the counts", test_confusion) &&
            CU_add_test(s, "class scores: bars scaled to the data", test_class_scores) &&
            CU_add_test(s, "mistakes grid, one digit, none", test_mistakes) &&
            CU_add_test(s, "line chart (plot-xy)", test_lines) &&
            CU_add_test(s, "unwritable paths leave nothing", test_unwritable))
               ? 0
               : -1;
}

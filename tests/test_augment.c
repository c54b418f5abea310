/* Unit tests for augmentation: identity is exact, images are a pure function
 * of (key, sample id) whatever the batch position or thread count, integer
 * shifts are exact, rotations land where the forward map says, ink and
 * values stay bounded, the elastic field has the intended size and
 * smoothness, and every bad spec gets its message. */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "mnist/augment.h"
#include "mnist/data.h"
#include "mnist/rng.h"
#include "test_util.h"


#define N MNIST_PIXELS
#define S MNIST_SIDE

static float *scratch_new(int slots)
{
    float *s = alloc_aligned((size_t)slots * augment_scratch_floats() * sizeof(float));
    if (!s)
        abort();
    return s;
}

static void random_image(uint8_t *img, uint64_t seed)
{
    for (int k = 0; k < N; k++)
        img[k] = (uint8_t)rng_below(seed, (uint64_t)k, 256);
}

/* A digit-like blob: an anti-aliased ellipse ring (a "0", strokes ~3 px)
 * plus a slanted bar, ink well inside the frame like MNIST's 20×20 box. */
static void digit_blob(uint8_t *img)
{
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            double u = (x - 13.5) / 5.5, v = (y - 13.5) / 8.0;
            double ring = fabs(sqrt(u * u + v * v) - 1.0) * 6.5; /* ~pixels from the stroke */
            double bar = fabs((x - 13.5) - 0.4 * (y - 13.5)) + (fabs(y - 13.5) > 6 ? 9 : 0);
            double d = ring < bar ? ring : bar;
            double a = 1.6 - d; /* 1 inside the stroke, fading over a pixel */
            a = a < 0 ? 0 : a > 1 ? 1 : a;
            img[y * S + x] = (uint8_t)lround(255.0 * a);
        }
}

static AugmentDraw identity_draw(void)
{
    AugmentDraw d = {.scale = 1.0f};
    return d;
}

static double ink(const float *x)
{
    double s = 0;
    for (int k = 0; k < N; k++)
        s += x[k];
    return s;
}

static void test_identity_is_exact(void)
{
    uint8_t src[N];
    float out[N], ref[N], *scr = scratch_new(1);
    random_image(src, 11);
    src[0] = 255;
    src[N - 1] = 255; /* corners: the zero border must not leak in */
    const uint8_t *rows[1] = {src};
    Dataset d = {.images = src, .rows = 1, .shape = {AUGMENT_SIDE, AUGMENT_SIDE, 1}};
    const size_t idx = 0;
    data_gather_batch(ref, NULL, &d, &idx, 1);

    AugmentParams off = {0};
    CU_ASSERT_FALSE(augment_enabled(&off));
    augment_image(out, src, &off, 42, 7, scr);
    CU_ASSERT_EQUAL(memcmp(out, ref, sizeof out), 0);

    /* The general warp path with an identity draw, elastic off by alpha = 0
     * even with a sigma: also exact. */
    AugmentDraw id = identity_draw();
    id.elastic_sigma = 5.0f;
    id.field_key = 123;
    for (int k = 0; k < N; k++)
        out[k] = -1.0f;
    augment_warp(out, src, &id, scr);
    int mismatches = 0;
    for (int k = 0; k < N; k++)
        mismatches += out[k] != (float)src[k] * (1.0f / 255.0f);
    CU_ASSERT_EQUAL(mismatches, 0);
    CU_ASSERT_EQUAL(memcmp(out, ref, sizeof out), 0);

    /* Parameters "on" but drawing the identity: rotate = 0·u is 0 etc. */
    AugmentParams zero_draw = {.elastic_sigma = 3.0f};
    CU_ASSERT_FALSE(augment_enabled(&zero_draw));
    const uint64_t id7 = 7;
    augment_batch(out, rows, 1, &zero_draw, 42, &id7, scr, 1);
    CU_ASSERT_EQUAL(memcmp(out, ref, sizeof out), 0);
    free(scr);
}

static void test_deterministic_in_key_and_id(void)
{
    uint8_t src[N];
    float a[N], b[N], c[N], k2[N], *scr = scratch_new(1);
    digit_blob(src);
    AugmentParams p = augment_defaults();
    CU_ASSERT_TRUE(augment_enabled(&p));
    augment_image(a, src, &p, 1234, 99, scr);
    memset(scr, 0xff, augment_scratch_floats() * sizeof(float)); /* stale scratch is harmless */
    augment_image(b, src, &p, 1234, 99, scr);
    CU_ASSERT_EQUAL(memcmp(a, b, sizeof a), 0);
    augment_image(c, src, &p, 1234, 100, scr);
    augment_image(k2, src, &p, 1235, 99, scr);
    int diff_id = 0, diff_key = 0;
    for (int k = 0; k < N; k++) {
        diff_id += fabsf(a[k] - c[k]) > 1e-3f;
        diff_key += fabsf(a[k] - k2[k]) > 1e-3f;
    }
    CU_ASSERT(diff_id > 50);
    CU_ASSERT(diff_key > 50);
    /* Elastic alone also depends on the id, and is not the identity. */
    AugmentParams el = {.elastic_alpha = 34.0f, .elastic_sigma = 5.0f};
    augment_image(a, src, &el, 5, 1, scr);
    augment_image(b, src, &el, 5, 2, scr);
    int diff_el = 0, moved = 0;
    for (int k = 0; k < N; k++) {
        diff_el += fabsf(a[k] - b[k]) > 1e-3f;
        moved += fabsf(a[k] - (float)src[k] / 255.0f) > 1e-3f;
    }
    CU_ASSERT(diff_el > 50);
    CU_ASSERT(moved > 50);
    free(scr);
}

static void test_batch_independent_of_position_and_threads(void)
{
    enum { B = 9 };
    static uint8_t imgs[B][N];
    static float ref[B][N], got[B][N];
    const uint8_t *rows[B], *rev_rows[B];
    uint64_t ids[B], rev_ids[B];
    float *scr = scratch_new(4);
    AugmentParams p = augment_defaults();
    for (int i = 0; i < B; i++) {
        if (i % 2)
            random_image(imgs[i], 100 + (uint64_t)i);
        else
            digit_blob(imgs[i]);
        ids[i] = 1000003ULL * (uint64_t)i + 17;
        rows[i] = imgs[i];
        rev_rows[B - 1 - i] = imgs[i];
        rev_ids[B - 1 - i] = ids[i];
        augment_image(ref[i], imgs[i], &p, 77, ids[i], scr);
    }
#ifdef _OPENMP
    const int saved = omp_get_max_threads();
#endif
    for (int threads = 1; threads <= 3; threads++) {
#ifdef _OPENMP
        omp_set_num_threads(threads);
#endif
        for (int slots = 1; slots <= 4; slots += 3) {
            memset(got, 0, sizeof got);
            augment_batch(&got[0][0], rows, B, &p, 77, ids, scr, slots);
            CU_ASSERT_EQUAL(memcmp(got, ref, sizeof got), 0);
            /* Reversed batch: each sample's image follows it. */
            augment_batch(&got[0][0], rev_rows, B, &p, 77, rev_ids, scr, slots);
            int same = 1;
            for (int i = 0; i < B; i++)
                same &= memcmp(got[B - 1 - i], ref[i], sizeof ref[i]) == 0;
            CU_ASSERT_TRUE(same);
        }
    }
#ifdef _OPENMP
    omp_set_num_threads(saved);
#endif
    free(scr);
}

static void test_integer_translation_is_exact(void)
{
    uint8_t src[N];
    float out[N], *scr = scratch_new(1);
    random_image(src, 5);
    const int shifts[][2] = {{2, 0}, {0, 2}, {2, -1}, {-3, 2}};
    for (size_t s = 0; s < sizeof shifts / sizeof shifts[0]; s++) {
        const int tx = shifts[s][0], ty = shifts[s][1];
        AugmentDraw d = identity_draw();
        d.tx_px = (float)tx;
        d.ty_px = (float)ty;
        augment_warp(out, src, &d, scr);
        int bad = 0;
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                const int sx = x - tx, sy = y - ty;
                const float want = (sx >= 0 && sx < S && sy >= 0 && sy < S)
                                       ? (float)src[sy * S + sx] * (1.0f / 255.0f)
                                       : 0.0f;
                bad += out[y * S + x] != want;
            }
        CU_ASSERT_EQUAL(bad, 0);
    }
    free(scr);
}

static void test_rotation_maps_pixels(void)
{
    /* One bright pixel at (x 20, y 13): relative to the centre (6.5, -0.5).
     * Clockwise on screen (x right, y down): +90° sends it to (0.5, 6.5),
     * pixel (14, 20); -90° to (13, 7); 180° to (7, 14). */
    const struct {
        float deg;
        int x, y;
    } cases[] = {{90.0f, 14, 20}, {-90.0f, 13, 7}, {180.0f, 7, 14}, {0.0f, 20, 13}};
    uint8_t src[N] = {0};
    src[13 * S + 20] = 255;
    float out[N], *scr = scratch_new(1);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        AugmentDraw d = identity_draw();
        d.rotate_deg = cases[c].deg;
        augment_warp(out, src, &d, scr);
        CU_ASSERT_DOUBLE_EQUAL(out[cases[c].y * S + cases[c].x], 1.0, 1e-4);
        CU_ASSERT_DOUBLE_EQUAL(ink(out), 1.0, 1e-3);
    }
    /* 45° is no grid symmetry: the pixel lands between pixels, at
     * (13.5 + 6.5c + 0.5s, 13.5 + 6.5s - 0.5c), c = s = √½, spread by
     * bilinear weights whose centroid is that point. */
    AugmentDraw d = identity_draw();
    d.rotate_deg = 45.0f;
    augment_warp(out, src, &d, scr);
    double sx = 0, sy = 0, m = 0;
    for (int k = 0; k < N; k++) {
        m += out[k];
        sx += out[k] * (k % S);
        sy += out[k] * (k / S);
    }
    const double r = sqrt(0.5);
    CU_ASSERT(m > 0.5);
    CU_ASSERT_DOUBLE_EQUAL(sx / m, 13.5 + 6.5 * r + 0.5 * r, 0.35);
    CU_ASSERT_DOUBLE_EQUAL(sy / m, 13.5 + 6.5 * r - 0.5 * r, 0.35);
    free(scr);
}

static void test_scale_and_shear_follow_the_forward_map(void)
{
    /* A pixel at (17, 15) is (3.5, 1.5) from the centre. Scale 2 sends it to
     * (7, 3) from the centre, (20.5, 16.5), as a 4×4 bilinear footprint of
     * mass 4 centred there; shear 1 (x += y) to (5, 1.5), i.e. (18.5, 15):
     * half on pixel 18, half on 19. */
    uint8_t src[N] = {0};
    src[15 * S + 17] = 255;
    float out[N], *scr = scratch_new(1);
    AugmentDraw d = identity_draw();
    d.scale = 2.0f;
    augment_warp(out, src, &d, scr);
    double sx = 0, sy = 0, m = 0;
    for (int k = 0; k < N; k++) {
        m += out[k];
        sx += out[k] * (k % S);
        sy += out[k] * (k / S);
    }
    CU_ASSERT_DOUBLE_EQUAL(m, 4.0, 1e-3);
    CU_ASSERT_DOUBLE_EQUAL(sx / m, 20.5, 1e-3);
    CU_ASSERT_DOUBLE_EQUAL(sy / m, 16.5, 1e-3);
    d = identity_draw();
    d.shear = 1.0f;
    augment_warp(out, src, &d, scr);
    CU_ASSERT_DOUBLE_EQUAL(out[15 * S + 18], 0.5, 1e-5);
    CU_ASSERT_DOUBLE_EQUAL(out[15 * S + 19], 0.5, 1e-5);
    CU_ASSERT_DOUBLE_EQUAL(ink(out), 1.0, 1e-4);
    free(scr);
}

static void test_draws_cover_their_ranges(void)
{
    const AugmentParams p = {.rotate_deg = 12, .scale = 0.1f, .shear = 0.2f, .translate_px = 2};
    float lo[5] = {1e9f, 1e9f, 1e9f, 1e9f, 1e9f}, hi[5] = {-1e9f, -1e9f, -1e9f, -1e9f, -1e9f};
    double mean[5] = {0}, prod[5][5] = {{0}};
    const int n = 4000;
    uint64_t last_key = 0;
    int keys_differ = 1;
    for (int i = 0; i < n; i++) {
        AugmentDraw d;
        augment_draw(&d, &p, 9, (uint64_t)i);
        const float v[5] = {d.rotate_deg, d.scale - 1.0f, d.shear, d.tx_px, d.ty_px};
        for (int j = 0; j < 5; j++) {
            lo[j] = v[j] < lo[j] ? v[j] : lo[j];
            hi[j] = v[j] > hi[j] ? v[j] : hi[j];
            mean[j] += v[j] / n;
            for (int k = 0; k < j; k++)
                prod[j][k] += (double)v[j] * v[k] / n;
        }
        keys_differ &= d.field_key != last_key;
        last_key = d.field_key;
    }
    const float max[5] = {12, 0.1f, 0.2f, 2, 2};
    for (int j = 0; j < 5; j++) {
        CU_ASSERT(lo[j] >= -max[j] && hi[j] <= max[j]);
        CU_ASSERT(lo[j] < -0.98f * max[j] && hi[j] > 0.98f * max[j]);
        CU_ASSERT(fabs(mean[j]) < 0.05 * max[j]);
        /* independent: the correlation of uniforms is E[uv] / (max² / 3) */
        for (int k = 0; k < j; k++)
            CU_ASSERT(fabs(prod[j][k] / (max[j] * max[k] / 3.0)) < 0.1);
    }
    CU_ASSERT_TRUE(keys_differ);
}

/* Scaling alone changes ink by s² (0.77..1.25 at ±12%), and the elastic
 * field locally stretches or squeezes strokes; together they compound, so
 * the hard bound is loose and the typical range is checked as a quantile. */
static void test_ink_and_values_stay_bounded(void)
{
    uint8_t src[N];
    float out[N], *scr = scratch_new(1);
    digit_blob(src);
    double ink0 = 0;
    for (int k = 0; k < N; k++)
        ink0 += src[k] / 255.0;
    CU_ASSERT(ink0 > 80 && ink0 < 160); /* digit-like: MNIST averages ~100 px of ink */
    const AugmentParams p = augment_defaults();
    double lo = 1e9, hi = 0, mean = 0, change = 0;
    int out_of_range = 0, typical = 0;
    const int n = 500;
    for (int i = 0; i < n; i++) {
        augment_image(out, src, &p, 2024, (uint64_t)i, scr);
        const double r = ink(out) / ink0;
        lo = r < lo ? r : lo;
        hi = r > hi ? r : hi;
        mean += r / n;
        typical += r > 0.7 && r < 1.4;
        for (int k = 0; k < N; k++) {
            out_of_range += !(out[k] >= 0.0f && out[k] <= 1.0f);
            change += fabs(out[k] - src[k] / 255.0) / n;
        }
    }
    CU_ASSERT_EQUAL(out_of_range, 0);
    CU_ASSERT(lo > 0.5 && hi < 1.7);
    CU_ASSERT(typical >= n * 97 / 100);
    CU_ASSERT(mean > 0.95 && mean < 1.05);
    CU_ASSERT(change > 0.3 * ink0); /* it really distorts */
    free(scr);
}

/* Elastic alone on a horizontal ramp src = 8x: bilinear sampling of a linear
 * ramp is exact, so out·255/8 - x is the field's x-displacement. Its rms must
 * match alpha · rms(smoothed uniform) ≈ alpha · (1/√3) / (2√π σ) (a little
 * less near the border, where the zero-padded field is weaker), and it must
 * be smooth: neighbours differ by far less than the field itself; and the
 * x and y fields must be independent. */
static void test_elastic_field_size_and_smoothness(void)
{
    uint8_t ramp_x[N], ramp_y[N];
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            ramp_x[y * S + x] = (uint8_t)(8 * x);
            ramp_y[y * S + x] = (uint8_t)(8 * y);
        }
    float ox[N], oy[N], *scr = scratch_new(1);
    const float alpha = 34.0f, sigma = 5.0f;
    const double expect = alpha / sqrt(3.0) / (2.0 * sqrt(3.14159265358979) * sigma);
    double sum2[2] = {0}, dsum2[2] = {0}, cross = 0;
    int cnt = 0, dcnt = 0;
    for (int i = 0; i < 40; i++) {
        AugmentDraw d = identity_draw();
        d.elastic_alpha = alpha;
        d.elastic_sigma = sigma;
        d.field_key = rng_key(3, 4, (uint64_t)i, 0);
        augment_warp(ox, ramp_x, &d, scr);
        augment_warp(oy, ramp_y, &d, scr);
        for (int y = 6; y < 22; y++)
            for (int x = 6; x < 22; x++) {
                const double dx = ox[y * S + x] * 255.0 / 8.0 - x;
                const double dy = oy[y * S + x] * 255.0 / 8.0 - y;
                sum2[0] += dx * dx;
                sum2[1] += dy * dy;
                cross += dx * dy;
                cnt++;
                if (x > 6) {
                    const double px = ox[y * S + x - 1] * 255.0 / 8.0 - (x - 1);
                    const double py = oy[(y - 1) * S + x] * 255.0 / 8.0 - (y - 1);
                    dsum2[0] += (dx - px) * (dx - px);
                    dsum2[1] += (dy - py) * (dy - py);
                    dcnt++;
                }
            }
    }
    for (int c = 0; c < 2; c++) {
        const double rms = sqrt(sum2[c] / cnt), drms = sqrt(dsum2[c] / dcnt);
        CU_ASSERT(rms > 0.7 * expect && rms < 1.15 * expect);
        CU_ASSERT(drms < 0.25 * rms);
    }
    /* The two components are independent fields. */
    CU_ASSERT(fabs(cross) / sqrt(sum2[0] * sum2[1]) < 0.3);
    free(scr);
}

static void expect_parse_error(const char *spec, const char *needle1, const char *needle2)
{
    AugmentParams p = {.rotate_deg = -7}, before = p;
    Error e = {{0}};
    CU_ASSERT_EQUAL(augment_parse(&p, spec, &e), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, needle1));
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, needle2));
    CU_ASSERT_EQUAL(memcmp(&p, &before, sizeof p), 0);
}

static void test_parse_specs(void)
{
    AugmentParams p, d = augment_defaults();
    Error e = {{0}};
    CU_ASSERT_EQUAL(augment_parse(&p, "rotate=12,scale=0.1,shear=0.2,translate=2,elastic=34:4", &e),
                    0);
    CU_ASSERT_EQUAL(p.rotate_deg, 12.0f);
    CU_ASSERT_EQUAL(p.scale, 0.1f);
    CU_ASSERT_EQUAL(p.shear, 0.2f);
    CU_ASSERT_EQUAL(p.translate_px, 2.0f);
    CU_ASSERT_EQUAL(p.elastic_alpha, 34.0f);
    CU_ASSERT_EQUAL(p.elastic_sigma, 4.0f);

    CU_ASSERT_EQUAL(augment_parse(&p, "default", &e), 0);
    CU_ASSERT_EQUAL(memcmp(&p, &d, sizeof p), 0);
    CU_ASSERT_TRUE(augment_enabled(&p));
    CU_ASSERT_EQUAL(augment_parse(&p, "off", &e), 0);
    CU_ASSERT_FALSE(augment_enabled(&p));
    CU_ASSERT_EQUAL(augment_parse(&p, "default,elastic=0", &e), 0);
    CU_ASSERT_EQUAL(p.elastic_alpha, 0.0f);
    CU_ASSERT_EQUAL(p.rotate_deg, d.rotate_deg);
    CU_ASSERT_EQUAL(augment_parse(&p, "translate=3", &e), 0); /* unnamed keys are 0 */
    CU_ASSERT_EQUAL(p.translate_px, 3.0f);
    CU_ASSERT_EQUAL(p.rotate_deg, 0.0f);
    CU_ASSERT_EQUAL(p.elastic_alpha, 0.0f);
    CU_ASSERT_TRUE(augment_enabled(&p));

    /* format → parse gives the same values bit for bit. */
    char buf[256];
    const AugmentParams odd = {.rotate_deg = 0.1f, .scale = 1.0f / 3, .shear = 0.3f,
                               .translate_px = 2.5f, .elastic_alpha = 33.3f,
                               .elastic_sigma = 4.7f};
    const AugmentParams *all[] = {&d, &odd};
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL(augment_format(buf, sizeof buf, all[i]), 0);
        CU_ASSERT_EQUAL(augment_parse(&p, buf, &e), 0);
        CU_ASSERT_EQUAL(memcmp(&p, all[i], sizeof p), 0);
    }
    const AugmentParams none = {0};
    CU_ASSERT_EQUAL(augment_format(buf, sizeof buf, &none), 0);
    CU_ASSERT_STRING_EQUAL(buf, "off");
    CU_ASSERT_EQUAL(augment_format(buf, 8, &d), -1);

    expect_parse_error("rotate=12,foo=3", "unknown key 'foo'", "rotate, scale");
    expect_parse_error("Rotate=3", "unknown key 'Rotate'", "default, off");
    expect_parse_error("rotate=-3", "rotate=-3", "outside 0..180");
    expect_parse_error("translate=-1", "translate=-1", "outside 0..14");
    expect_parse_error("scale=1", "scale=1", "outside 0..0.9");
    expect_parse_error("shear=-0.1", "shear=-0.1", "outside");
    expect_parse_error("elastic=-34:4", "elastic=-34", "outside");
    expect_parse_error("elastic=34:-4", "SIGMA -4", "outside (0, 14]");
    expect_parse_error("elastic=34:0", "SIGMA 0", "outside (0, 14]");
    expect_parse_error("elastic=0:20", "SIGMA 20", "outside [0, 14]");
    expect_parse_error("scale=", "scale needs a value", "scale=N");
    expect_parse_error("default,scale", "scale needs a value", "scale=N");
    expect_parse_error("elastic", "elastic needs a value", "ALPHA:SIGMA");
    expect_parse_error("elastic=34", "elastic=34 needs ALPHA:SIGMA", "0 for off");
    expect_parse_error("elastic=34:", "SIGMA '' is not a number", "elastic");
    expect_parse_error("rotate=abc", "rotate: 'abc' is not a number", "rotate");
    expect_parse_error("rotate=12deg", "'12deg' is not a number", "rotate");
    expect_parse_error("rotate=nan", "'nan' is not a number", "rotate");
    expect_parse_error("rotate= 5", "not a number", "rotate");
    expect_parse_error("rotate=5,,scale=0.1", "empty item", "rotate=5,,scale=0.1");
    expect_parse_error("rotate=5,", "empty item", "rotate=5,");
    expect_parse_error("", "empty augmentation spec", "rotate");
}

int test_augment_register(void)
{
    CU_pSuite s = CU_add_suite("augment", NULL, NULL);
    if (!s)
        return -1;
    return (CU_add_test(s, "all-zero parameters give exactly src/255", test_identity_is_exact) &&
            CU_add_test(s, "same (key, id) same image; other id or key, other image",
                        test_deterministic_in_key_and_id) &&
            CU_add_test(s, "batch: independent of position and thread count",
                        test_batch_independent_of_position_and_threads) &&
            CU_add_test(s, "integer translation is an exact shift",
                        test_integer_translation_is_exact) &&
            CU_add_test(s, "rotation about the centre maps pixels as the forward map says",
                        test_rotation_maps_pixels) &&
            CU_add_test(s, "scale and shear follow the forward map",
                        test_scale_and_shear_follow_the_forward_map) &&
            CU_add_test(s, "draws are uniform over their ranges", test_draws_cover_their_ranges) &&
            CU_add_test(s, "default strengths: ink stays bounded, values in [0,1]",
                        test_ink_and_values_stay_bounded) &&
            CU_add_test(s, "elastic field: expected size, smooth",
                        test_elastic_field_size_and_smoothness) &&
            CU_add_test(s, "parse: good specs, round trip, each bad spec's message",
                        test_parse_specs))
               ? 0
               : -1;
}

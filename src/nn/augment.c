/* augment: random affine + elastic distortion of 28×28 images, sampled
 * bilinearly from a zero-bordered copy of the source. All randomness comes
 * from counter-based streams keyed by (key, sample id); all workspace is the
 * caller's scratch. Must not allocate, print, or keep mutable global state. */
#include "mnist/augment.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "mnist/rng.h"

#define SIDE AUGMENT_SIDE
#define PAD_SIDE (SIDE + 2)       /* source with a 1-pixel zero border */
#define CENTRE 13.5               /* (SIDE - 1) / 2: pixel centres are integers */
#define MAX_RADIUS (SIDE - 1)     /* a wider kernel cannot reach another pixel */
#define FIELD_ROW (2 * SIDE)      /* field row y: SIDE x-displacements, then SIDE y */

/* Scratch layout, in floats (each part a multiple of 16). */
enum {
    SCR_IMG = 0,                                   /* PAD_SIDE² source, /255 */
    SCR_FIELD = SCR_IMG + 912,                     /* SIDE × FIELD_ROW displacement */
    SCR_KERNEL = SCR_FIELD + SIDE * FIELD_ROW,     /* 2 × (MAX_RADIUS + 1) taps */
    SCR_RAW = SCR_KERNEL + 64,                     /* 2·SIDE rows × (SIDE + 2R) */
    SCR_HPASS = SCR_RAW + 2 * SIDE * (SIDE + 2 * MAX_RADIUS), /* 2·SIDE × SIDE */
    SCR_TOTAL = SCR_HPASS + 2 * SIDE * SIDE,
};
_Static_assert(PAD_SIDE * PAD_SIDE <= SCR_FIELD - SCR_IMG, "padded image fits");
_Static_assert(SCR_TOTAL % 16 == 0, "scratch slices stay 64-byte apart");

/* Parse limits: beyond these a digit stops being a digit (or the map breaks:
 * a scale factor must stay positive). */
#define MAX_ROTATE_DEG 180.0f
#define MAX_SCALE 0.9f
#define MAX_SHEAR 2.0f
#define MAX_TRANSLATE_PX 14.0f
#define MAX_ALPHA 200.0f
#define MAX_SIGMA 14.0f

AugmentParams augment_defaults(void)
{
    /* Chosen by rendering grids of real training digits: each is readable,
     * with visible variety. Elastic 36 at sigma 6 (Ciresan et al. 2010 used
     * 36-38 at 5-6 for their MLPs; Simard's 34 at 4 is rougher) moves pixels
     * by ~1 px rms per axis, correlated over ~8 px (sigma·√2): wavy strokes,
     * no broken digits. Affine at about Ciresan's rotation, a little less scaling
     * (extremes compound with the elastic stretch): over 60000 draws on real
     * digits the ink ratio stays within 0.69..1.40 for 98% of images. */
    AugmentParams p = {
        .rotate_deg = 12.0f,
        .scale = 0.12f,
        .shear = 0.2f,
        .translate_px = 2.0f,
        .elastic_alpha = 36.0f,
        .elastic_sigma = 6.0f,
    };
    return p;
}

int augment_supports(Shape s) { return s.h == SIDE && s.w == SIDE && s.c == 1; }

int augment_enabled(const AugmentParams *p)
{
    return p->rotate_deg != 0.0f || p->scale != 0.0f || p->shear != 0.0f ||
           p->translate_px != 0.0f || p->elastic_alpha != 0.0f;
}

size_t augment_scratch_floats(void)
{
    return SCR_TOTAL;
}

/* ---- spec parsing ---------------------------------------------------- */

static const struct {
    const char *name;
    const char *unit;
    float max;
    size_t offset;
} KEYS[] = {
    {"rotate", "max degrees", MAX_ROTATE_DEG, offsetof(AugmentParams, rotate_deg)},
    {"scale", "max relative size change", MAX_SCALE, offsetof(AugmentParams, scale)},
    {"shear", "max tan of the shear angle", MAX_SHEAR, offsetof(AugmentParams, shear)},
    {"translate", "max pixels per axis", MAX_TRANSLATE_PX, offsetof(AugmentParams, translate_px)},
};

#define KEY_LIST "rotate, scale, shear, translate, elastic=ALPHA:SIGMA; or default, off"

/* Reads a whole number from text into *v: 0, or -1 if text is not one. */
static int parse_float(const char *text, float *v)
{
    char *end;
    if (!*text || *text == ' ' || *text == '\t')
        return -1;
    *v = strtof(text, &end);
    return *end == '\0' && isfinite(*v) ? 0 : -1;
}

static int parse_range(float *v, const char *key, const char *text, float max, const char *unit,
                       Error *e)
{
    if (parse_float(text, v) != 0)
        return err_set(e, "%s: '%s' is not a number", key, text);
    if (!(*v >= 0.0f && *v <= max))
        return err_set(e, "%s=%s is outside 0..%g (%s)", key, text, (double)max, unit);
    return 0;
}

static int parse_elastic(AugmentParams *q, const char *val, Error *e)
{
    char alpha_text[64];
    const char *colon = strchr(val, ':');
    size_t n = colon ? (size_t)(colon - val) : strlen(val);
    if (n >= sizeof alpha_text)
        return err_set(e, "elastic: value too long");
    memcpy(alpha_text, val, n);
    alpha_text[n] = '\0';
    float alpha, sigma = 0.0f;
    if (parse_range(&alpha, "elastic", alpha_text, MAX_ALPHA, "ALPHA: displacement in pixels", e))
        return -1;
    if (!colon) {
        if (alpha != 0.0f)
            return err_set(e, "elastic=%s needs ALPHA:SIGMA (e.g. elastic=36:6), or 0 for off",
                           val);
    } else {
        if (parse_float(colon + 1, &sigma) != 0)
            return err_set(e, "elastic: SIGMA '%s' is not a number", colon + 1);
        if (!(sigma >= 0.0f && sigma <= MAX_SIGMA) || (alpha > 0.0f && sigma == 0.0f))
            return err_set(e, "elastic: SIGMA %s is outside %s, %g] (Gaussian smoothing, pixels)",
                           colon + 1, alpha > 0.0f ? "(0" : "[0", (double)MAX_SIGMA);
    }
    q->elastic_alpha = alpha;
    q->elastic_sigma = sigma;
    return 0;
}

static int parse_item(AugmentParams *q, char *item, Error *e)
{
    if (!strcmp(item, "off")) {
        memset(q, 0, sizeof *q);
        return 0;
    }
    if (!strcmp(item, "default")) {
        *q = augment_defaults();
        return 0;
    }
    char *eq = strchr(item, '=');
    const char *val = eq ? eq + 1 : "";
    if (eq)
        *eq = '\0';
    if (!strcmp(item, "elastic")) {
        if (!*val)
            return err_set(e, "elastic needs a value (elastic=ALPHA:SIGMA, e.g. elastic=36:6)");
        return parse_elastic(q, val, e);
    }
    for (size_t i = 0; i < sizeof KEYS / sizeof KEYS[0]; i++) {
        if (strcmp(item, KEYS[i].name) != 0)
            continue;
        if (!*val)
            return err_set(e, "%s needs a value (%s=N, %s)", item, item, KEYS[i].unit);
        return parse_range((float *)((char *)q + KEYS[i].offset), item, val, KEYS[i].max,
                           KEYS[i].unit, e);
    }
    return err_set(e, "unknown key '%s' (keys: " KEY_LIST ")", item);
}

int augment_parse(AugmentParams *p, const char *spec, Error *e)
{
    if (!spec || !*spec)
        return err_set(e, "empty augmentation spec (keys: " KEY_LIST ")");
    AugmentParams q = {0};
    const char *s = spec;
    for (;;) {
        const char *comma = strchr(s, ',');
        size_t n = comma ? (size_t)(comma - s) : strlen(s);
        char item[96];
        if (n == 0)
            return err_set(e, "empty item in '%s'", spec);
        if (n >= sizeof item)
            return err_set(e, "item '%.40s...' is too long", s);
        memcpy(item, s, n);
        item[n] = '\0';
        if (parse_item(&q, item, e) != 0)
            return -1;
        if (!comma)
            break;
        s = comma + 1;
    }
    *p = q;
    return 0;
}

int augment_format(char *buf, size_t size, const AugmentParams *p)
{
    if (!augment_enabled(p))
        return str_fmt(buf, size, "off");
    const float v[6] = {p->rotate_deg, p->scale, p->shear, p->translate_px, p->elastic_alpha,
                        p->elastic_sigma};
    char t[6][24];
    for (int k = 0; k < 6; k++) /* the shortest text that reads back as the same float */
        for (int digits = 6; digits <= 9; digits++) {
            snprintf(t[k], sizeof t[k], "%.*g", digits, (double)v[k]);
            if (strtof(t[k], NULL) == v[k])
                break;
        }
    return str_fmt(buf, size, "rotate=%s,scale=%s,shear=%s,translate=%s,elastic=%s:%s", t[0], t[1],
                   t[2], t[3], t[4], t[5]);
}

/* ---- drawing and warping --------------------------------------------- */

/* Counters of a sample's stream. */
enum { CTR_ROTATE, CTR_SCALE, CTR_SHEAR, CTR_TX, CTR_TY, CTR_FIELD_KEY };

/* Uniform in [-1, 1). */
static inline float sym_uniform(uint64_t key, uint64_t counter)
{
    return 2.0f * rng_uniform(key, counter) - 1.0f;
}

/* Uniform in [-1, 1) from 24 bits of a 32-bit half draw (exact conversion). */
static inline float half_to_sym(uint32_t bits)
{
    return (float)((int32_t)(bits >> 8) - 8388608) * (1.0f / 8388608.0f);
}

void augment_draw(AugmentDraw *d, const AugmentParams *p, uint64_t key, uint64_t sample_id)
{
    const uint64_t sk = rng_u64(key, sample_id);
    d->rotate_deg = p->rotate_deg * sym_uniform(sk, CTR_ROTATE);
    d->scale = 1.0f + p->scale * sym_uniform(sk, CTR_SCALE);
    d->shear = p->shear * sym_uniform(sk, CTR_SHEAR);
    d->tx_px = p->translate_px * sym_uniform(sk, CTR_TX);
    d->ty_px = p->translate_px * sym_uniform(sk, CTR_TY);
    d->elastic_alpha = p->elastic_alpha;
    d->elastic_sigma = p->elastic_sigma;
    d->field_key = rng_u64(sk, CTR_FIELD_KEY);
}

/* out[0..SIDE) = k[0]·row[x] + Σ_{j=1..r} k[j]·(row[x+j] + row[x-j]), where row
 * has r readable (zero) floats before and after its SIDE values. Tap-outer:
 * each tap is one vectorised sweep (faster here than register-blocked sums). */
static void smooth_row(float *restrict out, const float *restrict row, const float *restrict k,
                       int r)
{
#pragma omp simd
    for (int x = 0; x < SIDE; x++)
        out[x] = k[0] * row[x];
    for (int j = 1; j <= r; j++) {
        const float kj = k[j];
#pragma omp simd
        for (int x = 0; x < SIDE; x++)
            out[x] += kj * (row[x + j] + row[x - j]);
    }
}

/* The displacement field: field[y·FIELD_ROW + x] (x) and [... + SIDE + x] (y),
 * alpha × Gaussian(sigma) * uniform[-1, 1) noise, zero beyond the image
 * (like scipy's mode="constant"), kernel truncated at min(3σ, 27) and
 * normalised over its taps. Separable: rows, then columns. */
static void elastic_field(float *field, const AugmentDraw *d, float *scratch)
{
    const float sigma = d->elastic_sigma;
    int r = (int)ceilf(3.0f * sigma);
    r = r < 0 ? 0 : r > MAX_RADIUS ? MAX_RADIUS : r;
    float *kh = scratch + SCR_KERNEL, *kv = kh + (MAX_RADIUS + 1);
    float sum = 1.0f;
    kh[0] = 1.0f;
    for (int j = 1; j <= r; j++) {
        kh[j] = expf(-0.5f * (float)(j * j) / (sigma * sigma));
        sum += 2.0f * kh[j];
    }
    for (int j = 0; j <= r; j++) {
        kh[j] /= sum;
        kv[j] = d->elastic_alpha * kh[j];
    }

    /* Raw noise, 2·SIDE rows (y's x-field, then y's y-field) with r zeros
     * either side; one 64-bit draw gives a pixel's two components. */
    const int stride = SIDE + 2 * r;
    float *raw = scratch + SCR_RAW, *hpass = scratch + SCR_HPASS;
    for (int y = 0; y < SIDE; y++) {
        float *rx = raw + (size_t)(2 * y * stride), *ry = rx + stride;
        memset(rx, 0, (size_t)r * sizeof *rx);
        memset(rx + r + SIDE, 0, (size_t)(2 * r) * sizeof *rx); /* also ry's left margin */
        memset(ry + r + SIDE, 0, (size_t)r * sizeof *ry);
        for (int x = 0; x < SIDE; x++) {
            uint64_t u = rng_u64(d->field_key, (uint64_t)(y * SIDE + x));
            rx[r + x] = half_to_sym((uint32_t)(u >> 32));
            ry[r + x] = half_to_sym((uint32_t)u);
        }
    }
    for (int row = 0; row < 2 * SIDE; row++)
        smooth_row(hpass + row * SIDE, raw + (size_t)(row * stride + r), kh, r);

    /* Columns: field row y = Σ_d kv[|d|] · hpass row y+d over rows inside
     * the image: taps on both sides up to `both` share a multiply, then the
     * longer side alone. */
    for (int y = 0; y < SIDE; y++) {
        const int up = y < r ? y : r, down = SIDE - 1 - y < r ? SIDE - 1 - y : r;
        const int both = up < down ? up : down;
        float *restrict out = field + y * FIELD_ROW;
        const float *restrict h0 = hpass + y * FIELD_ROW;
        const float k0 = kv[0];
#pragma omp simd
        for (int i = 0; i < FIELD_ROW; i++)
            out[i] = k0 * h0[i];
        for (int j = 1; j <= both; j++) {
            const float kj = kv[j];
            const float *restrict hu = h0 - j * FIELD_ROW, *restrict hd = h0 + j * FIELD_ROW;
#pragma omp simd
            for (int i = 0; i < FIELD_ROW; i++)
                out[i] += kj * (hu[i] + hd[i]);
        }
        /* At most one of these two loops runs. */
        for (int j = both + 1; j <= up; j++) {
            const float kj = kv[j];
            const float *restrict hu = h0 - j * FIELD_ROW;
#pragma omp simd
            for (int i = 0; i < FIELD_ROW; i++)
                out[i] += kj * hu[i];
        }
        for (int j = both + 1; j <= down; j++) {
            const float kj = kv[j];
            const float *restrict hd = h0 + j * FIELD_ROW;
#pragma omp simd
            for (int i = 0; i < FIELD_ROW; i++)
                out[i] += kj * hd[i];
        }
    }
}

void augment_warp(float *out, const uint8_t *src, const AugmentDraw *d, float *scratch)
{
    /* Inverse of dest = C + t + R·Sh·S·(src - C):
     * src = C + S⁻¹·Sh⁻¹·R⁻¹·(dest - C - t), with
     * S⁻¹·Sh⁻¹·R⁻¹ = (1/s)·[c + h·sn, sn - h·c; -sn, c]. In double, so the
     * identity and integer shifts come out exact. */
    const double th = (double)d->rotate_deg * (3.14159265358979323846 / 180.0);
    const double c = cos(th), sn = sin(th), h = (double)d->shear, is = 1.0 / (double)d->scale;
    const double m00 = is * (c + h * sn), m01 = is * (sn - h * c), m10 = is * -sn, m11 = is * c;
    const double cx = CENTRE + (double)d->tx_px, cy = CENTRE + (double)d->ty_px;
    /* +1: coordinates in the zero-bordered copy. */
    const float a0 = (float)m00, a1 = (float)m01, a2 = (float)(CENTRE + 1.0 - m00 * cx - m01 * cy);
    const float a3 = (float)m10, a4 = (float)m11, a5 = (float)(CENTRE + 1.0 - m10 * cx - m11 * cy);

    float *img = scratch + SCR_IMG, *field = scratch + SCR_FIELD;
    memset(img, 0, PAD_SIDE * sizeof *img);
    memset(img + (PAD_SIDE - 1) * PAD_SIDE, 0, PAD_SIDE * sizeof *img);
    const float inv255 = 1.0f / 255.0f; /* as data_gather_batch, so identity matches it */
    for (int y = 0; y < SIDE; y++) {
        float *row = img + (y + 1) * PAD_SIDE;
        row[0] = row[PAD_SIDE - 1] = 0.0f;
        for (int x = 0; x < SIDE; x++)
            row[x + 1] = (float)src[y * SIDE + x] * inv255;
    }
    if (d->elastic_alpha != 0.0f && d->elastic_sigma > 0.0f)
        elastic_field(field, d, scratch);
    else
        memset(field, 0, SIDE * FIELD_ROW * sizeof *field);

    for (int y = 0; y < SIDE; y++) {
        const float fy = (float)y, bx = a1 * fy + a2, by = a4 * fy + a5;
        const float *dx = field + y * FIELD_ROW, *dy = dx + SIDE;
        float *o = out + y * SIDE;
        for (int x = 0; x < SIDE; x++) {
            const float xs = a0 * (float)x + bx + dx[x], ys = a3 * (float)x + by + dy[x];
            /* Outside (or NaN): at least one corner beyond the zero border. */
            if (!(xs >= 0.0f && xs < (float)(PAD_SIDE - 1) && ys >= 0.0f &&
                  ys < (float)(PAD_SIDE - 1))) {
                o[x] = 0.0f;
                continue;
            }
            const int ix = (int)xs, iy = (int)ys; /* floor: both are >= 0 */
            const float wx = xs - (float)ix, wy = ys - (float)iy;
            const float *p = img + iy * PAD_SIDE + ix;
            /* a + w·(b - a): exactly a when w = 0 (identity, integer shifts). */
            const float top = p[0] + wx * (p[1] - p[0]);
            const float bot = p[PAD_SIDE] + wx * (p[PAD_SIDE + 1] - p[PAD_SIDE]);
            float v = top + wy * (bot - top);
            v = v < 0.0f ? 0.0f : v; /* rounding can step an ulp outside [0, 1] */
            o[x] = v > 1.0f ? 1.0f : v;
        }
    }
}

void augment_image(float *out, const uint8_t *src, const AugmentParams *p, uint64_t key,
                   uint64_t sample_id, float *scratch)
{
    if (!augment_enabled(p)) {
        const float inv255 = 1.0f / 255.0f;
        for (int k = 0; k < (SIDE * SIDE); k++)
            out[k] = (float)src[k] * inv255;
        return;
    }
    AugmentDraw d;
    augment_draw(&d, p, key, sample_id);
    augment_warp(out, src, &d, scratch);
}

void augment_batch(float *x, const uint8_t *const *src_rows, int b, const AugmentParams *p,
                   uint64_t key, const uint64_t *sample_ids, float *scratch, int scratch_slots)
{
    const size_t stride = augment_scratch_floats();
    int nt = scratch_slots < 1 ? 1 : scratch_slots;
#ifdef _OPENMP
    if (nt > omp_get_max_threads())
        nt = omp_get_max_threads();
#else
    (void)nt;
#endif
    /* Each image is independent and owns its output row and the slice of its
     * thread: the result cannot depend on nt or on the schedule. */
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int i = 0; i < b; i++) {
        int t = 0;
#ifdef _OPENMP
        t = omp_get_thread_num();
#endif
        augment_image(x + (size_t)i * (SIDE * SIDE), src_rows[i], p, key, sample_ids[i],
                      scratch + (size_t)t * stride);
    }
}

/* digit: MNIST's preprocessing of one grey digit image (see digit.h): the
 * background from the border's median, ink = (inverted) grey minus the
 * background, stretched to full contrast; the bounding box of the ink;
 * separable area-averaging into at most 20 x 20 (aspect kept); an integer
 * shift that puts the centre of mass nearest (14, 14) in 28 x 28. Works
 * through a 256-entry table on the bytes, so the only buffer is the box's
 * rows at the output width. Pure: no I/O, no allocation beyond that. */
#include "mnist/digit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DIGIT_CENTER 14.0f /* where the mass centre goes, in pixel indices */

void digit_center_of_mass(const uint8_t *ink, int w, int h, float *cx, float *cy)
{
    double sum = 0, sx = 0, sy = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const double v = ink[(size_t)y * (size_t)w + (size_t)x];
            sum += v, sx += v * x, sy += v * y;
        }
    *cx = sum > 0 ? (float)(sx / sum) : (float)(w - 1) / 2;
    *cy = sum > 0 ? (float)(sy / sum) : (float)(h - 1) / 2;
}

/* The median grey level of the image's border (all of it when it is less
 * than 3 pixels across). */
static int border_median(const uint8_t *px, int w, int h)
{
    size_t hist[256] = {0}, n = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if (w < 3 || h < 3 || y == 0 || y == h - 1 || x == 0 || x == w - 1)
                hist[px[(size_t)y * (size_t)w + (size_t)x]]++, n++;
    size_t seen = 0;
    for (int v = 0; v < 256; v++)
        if ((seen += hist[v]) * 2 >= n)
            return v;
    return 255;
}

/* Area-averaging of n samples src[0], src[stride], ... into m samples (the
 * mean of the source over each output sample's footprint). */
static void resample(float *dst, int m, size_t dst_stride, const float *src, int n,
                     size_t src_stride)
{
    const double scale = (double)n / m;
    for (int k = 0; k < m; k++) {
        const double lo = k * scale, hi = (k + 1) * scale;
        double acc = 0;
        for (int i = (int)lo; i < n && i < hi; i++) {
            const double overlap = fmin(hi, i + 1.0) - fmax(lo, (double)i);
            if (overlap > 0)
                acc += overlap * src[(size_t)i * src_stride];
        }
        dst[(size_t)k * dst_stride] = (float)(acc / scale);
    }
}

/* The box [x0, x1) x [y0, y1) of pixels whose ink (by lut) exceeds the
 * threshold; 0 when there is none. */
static int ink_box(const uint8_t *px, int w, int h, const float *lut, int box[4])
{
    int x0 = w, y0 = h, x1 = 0, y1 = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if (lut[px[(size_t)y * (size_t)w + (size_t)x]] > DIGIT_INK_THRESHOLD) {
                x0 = x < x0 ? x : x0, x1 = x + 1 > x1 ? x + 1 : x1;
                y0 = y < y0 ? y : y0, y1 = y + 1 > y1 ? y + 1 : y1;
            }
    box[0] = x0, box[1] = y0, box[2] = x1 - x0, box[3] = y1 - y0;
    return x1 > x0 && y1 > y0;
}

/* Fits the box of px (ink by lut) into fit (ow x oh floats, stretched so
 * its maximum is 1). 0, or -1 out of memory. */
static int fit_box(float *fit, int ow, int oh, const uint8_t *px, int w, const float *lut,
                   const int box[4])
{
    const int bw = box[2], bh = box[3];
    float *row = malloc(sizeof(float) * (size_t)bw + 1);
    float *rows = malloc(sizeof(float) * (size_t)bh * (size_t)ow + 1); /* bh x ow */
    if (!row || !rows) {
        free(row), free(rows);
        return -1;
    }
    for (int y = 0; y < bh; y++) {
        const uint8_t *src = px + (size_t)(box[1] + y) * (size_t)w + (size_t)box[0];
        for (int x = 0; x < bw; x++)
            row[x] = lut[src[x]];
        resample(rows + (size_t)y * (size_t)ow, ow, 1, row, bw, 1);
    }
    for (int x = 0; x < ow; x++)
        resample(fit + x, oh, (size_t)ow, rows + x, bh, (size_t)ow);
    free(row), free(rows);
    /* thin strokes of a large image average out faint: MNIST's ink is full */
    float top = 0;
    for (int i = 0; i < ow * oh; i++)
        top = fit[i] > top ? fit[i] : top;
    for (int i = 0; top > 0 && i < ow * oh; i++)
        fit[i] /= top;
    return 0;
}

/* Places the ow x oh fitted digit in the 28 x 28 output, shifted by whole
 * pixels so that its centre of mass lands nearest (14, 14); what falls
 * outside is cut. */
static void place(uint8_t *out, const float *fit, int ow, int oh)
{
    double sum = 0, sx = 0, sy = 0;
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            const double v = fit[y * ow + x];
            sum += v, sx += v * x, sy += v * y;
        }
    const int dx = (int)lround(DIGIT_CENTER - sx / sum), dy = (int)lround(DIGIT_CENTER - sy / sum);
    memset(out, 0, DIGIT_SIDE * DIGIT_SIDE);
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            const int tx = x + dx, ty = y + dy;
            if (tx >= 0 && tx < DIGIT_SIDE && ty >= 0 && ty < DIGIT_SIDE)
                out[ty * DIGIT_SIDE + tx] = (uint8_t)lrintf(fit[y * ow + x] * 255.0f);
        }
}

int digit_preprocess(uint8_t *out, const uint8_t *px, int w, int h, DigitInfo *info, Error *e)
{
    DigitInfo mine;
    DigitInfo *in = info ? info : &mine;
    memset(in, 0, sizeof *in);
    const int bg = border_median(px, w, h);
    in->inverted = bg > 127;
    int hi = 0; /* the strongest ink, inverted if need be */
    for (size_t i = 0; i < (size_t)w * (size_t)h; i++) {
        const int v = in->inverted ? 255 - px[i] : px[i];
        hi = v > hi ? v : hi;
    }
    const int bg_ink = in->inverted ? 255 - bg : bg;
    in->background = (float)bg_ink / 255.0f, in->peak = (float)hi / 255.0f;
    if (in->peak - in->background < DIGIT_MIN_CONTRAST)
        return err_set(e, "blank image: no digit found (its pixels lie within %d grey levels of "
                          "the background, %d)", hi - bg_ink, bg);
    if (w == DIGIT_SIDE && h == DIGIT_SIDE && !in->inverted) {
        in->passthrough = 1;
        memcpy(out, px, DIGIT_SIDE * DIGIT_SIDE);
    } else {
        float lut[256];
        for (int v = 0; v < 256; v++) {
            const int ink = in->inverted ? 255 - v : v;
            const float t = (float)(ink - bg_ink) / (float)(hi - bg_ink);
            lut[v] = t < 0 ? 0 : t > 1 ? 1 : t;
        }
        int box[4];
        if (!ink_box(px, w, h, lut, box))
            return err_set(e, "blank image: no digit found");
        const double s = (double)DIGIT_BOX / (box[2] > box[3] ? box[2] : box[3]);
        const int ow = (int)fmax(1, lround(box[2] * s)), oh = (int)fmax(1, lround(box[3] * s));
        float fit[DIGIT_BOX * DIGIT_BOX];
        if (fit_box(fit, ow, oh, px, w, lut, box))
            return err_set(e, "out of memory preprocessing a %dx%d image", w, h);
        place(out, fit, ow, oh);
        in->box_x = box[0], in->box_y = box[1], in->box_w = box[2], in->box_h = box[3];
        in->out_w = ow, in->out_h = oh;
    }
    digit_center_of_mass(out, DIGIT_SIDE, DIGIT_SIDE, &in->com_x, &in->com_y);
    return 0;
}

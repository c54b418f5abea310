/* png_stats: prints "WIDTH HEIGHT INK BANDS COLOURS" for a PNG, used by the
 * browser rendering test to check a screenshot is a real page:
 *   INK     fraction of pixels that are not near-white,
 *   BANDS   fraction of 100-pixel horizontal bands holding any ink (down to
 *           the last inked band: a page cut short has few),
 *   COLOURS distinct colours after 4-bit quantisation (charts are colourful).
 * Exit status 1 if the file cannot be read as PNG. */
#include <cairo.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: png_stats FILE.png\n");
        return 2;
    }
    cairo_surface_t *s = cairo_image_surface_create_from_png(argv[1]);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
        fprintf(stderr, "png_stats: %s: %s\n", argv[1],
                cairo_status_to_string(cairo_surface_status(s)));
        cairo_surface_destroy(s);
        return 1;
    }
    cairo_surface_flush(s);
    const int w = cairo_image_surface_get_width(s), h = cairo_image_surface_get_height(s);
    const int stride = cairo_image_surface_get_stride(s);
    const unsigned char *data = cairo_image_surface_get_data(s);
    const int bands = (h + 99) / 100;
    char *inked = calloc((size_t)bands, 1), *seen = calloc(4096, 1);
    long ink = 0, colours = 0;
    for (int y = 0; y < h; y++) {
        const uint32_t *row = (const uint32_t *)(data + (size_t)y * stride);
        for (int x = 0; x < w; x++) {
            const uint32_t p = row[x];
            const int r = p >> 16 & 255, g = p >> 8 & 255, b = p & 255;
            if (r < 235 || g < 235 || b < 235) {
                ink++;
                inked[y / 100] = 1;
            }
            const int q = (r >> 4) << 8 | (g >> 4) << 4 | (b >> 4);
            if (!seen[q]) {
                seen[q] = 1;
                colours++;
            }
        }
    }
    int last = -1, with_ink = 0;
    for (int b = 0; b < bands; b++)
        if (inked[b])
            last = b, with_ink++;
    printf("%d %d %.4f %.3f %ld\n", w, h, (double)ink / ((double)w * h),
           last >= 0 ? (double)with_ink / (last + 1) : 0.0, colours);
    free(inked);
    free(seen);
    cairo_surface_destroy(s);
    return 0;
}

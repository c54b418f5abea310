/* Unit tests for predict's image inputs: MNIST's preprocessing (digit) on
 * hand-made images - inversion detected, centre of mass at 14 +- 0.5, aspect
 * kept, background and contrast normalised, 28x28 dark images unchanged,
 * blank images refused - and the decoders (image) on PNGs written here by
 * libpng (palette, grey + alpha, 16-bit, colour) and JPEGs by libjpeg, each
 * giving the same digit, plus damaged files and the PNG writer. */
#include <CUnit/CUnit.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "mnist/data_images.h"
#include "mnist/digit.h"
#include "mnist/image.h"
#include "test_util.h"

enum { W = 120, H = 90 };

/* The hand-made digit: an "L" of black ink in the box x 30..60, y 10..70
 * (30 x 60) on white paper; ink[] is 1 where the ink is. */
static void make_l(uint8_t *px, uint8_t *ink)
{
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            const int on = x >= 30 && x < 60 && y >= 10 && y < 70 && (x < 40 || y >= 60);
            ink[y * W + x] = (uint8_t)on;
            px[y * W + x] = on ? 0 : 255;
        }
}

/* Bounding box of the non-zero pixels of a 28 x 28 image. */
static void box28(const uint8_t *out, int *w, int *h)
{
    int x0 = 28, y0 = 28, x1 = -1, y1 = -1;
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++)
            if (out[y * 28 + x]) {
                x0 = x < x0 ? x : x0, x1 = x > x1 ? x : x1;
                y0 = y < y0 ? y : y0, y1 = y > y1 ? y : y1;
            }
    *w = x1 - x0 + 1, *h = y1 - y0 + 1;
}

static void test_light_background_inverted_centred_aspect_kept(void)
{
    static uint8_t px[W * H], ink[W * H], out[784];
    make_l(px, ink);
    DigitInfo info;
    Error e = {{0}};
    CU_ASSERT_FATAL(digit_preprocess(out, px, W, H, &info, &e) == 0);
    CU_ASSERT(info.inverted);
    CU_ASSERT(!info.passthrough);
    CU_ASSERT(info.box_x == 30 && info.box_y == 10 && info.box_w == 30 && info.box_h == 60);
    CU_ASSERT(info.out_w == 10 && info.out_h == 20); /* 1:2 kept, the long side 20 */
    float cx, cy;
    digit_center_of_mass(out, 28, 28, &cx, &cy);
    CU_ASSERT(cx >= 13.5f && cx <= 14.5f);
    CU_ASSERT(cy >= 13.5f && cy <= 14.5f);
    CU_ASSERT(info.com_x == cx && info.com_y == cy);
    int bw, bh;
    box28(out, &bw, &bh);
    CU_ASSERT(bw == 10 && bh == 20);
    /* full ink where the strokes are, nothing on the background */
    int full = 0;
    for (int i = 0; i < 784; i++)
        full += out[i] == 255;
    CU_ASSERT(full > 50);
    CU_ASSERT(out[0] == 0 && out[783] == 0);
    /* the same digit larger, elsewhere, on grey paper in grey ink: the same
     * box and mass centre within half a pixel */
    static uint8_t big[2 * W * 2 * H], out2[784];
    for (int y = 0; y < 2 * H; y++)
        for (int x = 0; x < 2 * W; x++) {
            const int sx = x - 50, sy = y - 20; /* shifted, doubled */
            const int on = sx >= 0 && sy >= 0 && sx / 2 < W && sy / 2 < H && ink[sy / 2 * W + sx / 2];
            big[y * 2 * W + x] = on ? 90 : 200;
        }
    CU_ASSERT_FATAL(digit_preprocess(out2, big, 2 * W, 2 * H, &info, &e) == 0);
    CU_ASSERT(info.inverted);
    CU_ASSERT(info.out_w == 10 && info.out_h == 20);
    CU_ASSERT(info.com_x >= 13.5f && info.com_x <= 14.5f && info.com_y >= 13.5f && info.com_y <= 14.5f);
    CU_ASSERT(memcmp(out, out2, 784) == 0);
}

static void test_dark_background_and_wide_digit(void)
{
    /* a light horizontal bar 80 x 10 on black, off-centre: not inverted,
     * fitted to 20 x 3 (or 2..3), centred by mass */
    static uint8_t px[W * H], out[784];
    for (int i = 0; i < W * H; i++)
        px[i] = (i % W) >= 5 && (i % W) < 85 && i / W >= 70 && i / W < 80 ? 230 : 10;
    DigitInfo info;
    Error e = {{0}};
    CU_ASSERT_FATAL(digit_preprocess(out, px, W, H, &info, &e) == 0);
    CU_ASSERT(!info.inverted && !info.passthrough);
    CU_ASSERT(info.out_w == 20 && info.out_h == 3); /* 80:10 -> 20:2.5, rounded */
    CU_ASSERT(info.com_x >= 13.5f && info.com_x <= 14.5f && info.com_y >= 13.5f && info.com_y <= 14.5f);
    CU_ASSERT(out[14 * 28 + 14] == 255 || out[13 * 28 + 14] == 255);
}

static void test_28x28_dark_passes_unchanged(void)
{
    uint8_t px[784], out[784];
    for (int i = 0; i < 784; i++)
        px[i] = (uint8_t)((i % 28) > 20 && (i / 28) < 9 ? 37 + i % 200 : 0); /* off-centre */
    DigitInfo info;
    Error e = {{0}};
    CU_ASSERT_FATAL(digit_preprocess(out, px, 28, 28, &info, &e) == 0);
    CU_ASSERT(info.passthrough && !info.inverted);
    CU_ASSERT(memcmp(out, px, 784) == 0);
    /* inverted, the same image is processed: centred */
    for (int i = 0; i < 784; i++)
        px[i] = (uint8_t)(255 - px[i]);
    CU_ASSERT_FATAL(digit_preprocess(out, px, 28, 28, &info, &e) == 0);
    CU_ASSERT(!info.passthrough && info.inverted);
    CU_ASSERT(info.com_x >= 13.5f && info.com_x <= 14.5f && info.com_y >= 13.5f && info.com_y <= 14.5f);
}

static void test_blank_images_refused(void)
{
    static uint8_t px[W * H], out[784];
    memset(out, 7, sizeof out);
    Error e = {{0}};
    memset(px, 255, sizeof px);
    CU_ASSERT(digit_preprocess(out, px, W, H, NULL, &e) == -1);
    CU_ASSERT(strstr(e.msg, "blank image") != NULL);
    for (int i = 0; i < W * H; i++)
        px[i] = (uint8_t)(120 + i % 7); /* noise, no digit */
    CU_ASSERT(digit_preprocess(out, px, W, H, NULL, &e) == -1);
    memset(px, 0, 784);
    CU_ASSERT(digit_preprocess(out, px, 28, 28, NULL, &e) == -1);
    CU_ASSERT(out[0] == 7); /* untouched */
}

/* Encodes with libpng's simplified writer; the bytes are malloc'ed. */
static uint8_t *png_encode(png_image *img, const void *buf, const void *colormap, size_t *n)
{
    png_alloc_size_t bytes = 0;
    CU_ASSERT_FATAL(png_image_write_get_memory_size(*img, bytes, 0, buf, 0, colormap));
    uint8_t *mem = malloc(bytes);
    CU_ASSERT_FATAL(png_image_write_to_memory(img, mem, &bytes, 0, buf, 0, colormap));
    *n = bytes;
    return mem;
}

/* Decodes mem and preprocesses it; 0, or -1 with e. */
static int decode_digit(const uint8_t *mem, size_t n, uint8_t *out, GreyImage *g, Error *e)
{
    if (image_decode(g, mem, n, "mem.png", e))
        return -1;
    int rc = digit_preprocess(out, g->px, g->w, g->h, NULL, e);
    image_free(g);
    return rc;
}

static void test_png_kinds_give_the_same_digit(void)
{
    static uint8_t px[W * H], ink[W * H], want[784], got[784];
    make_l(px, ink);
    Error e = {{0}};
    CU_ASSERT_FATAL(digit_preprocess(want, px, W, H, NULL, &e) == 0);
    png_image img;
    GreyImage g;
    size_t n;
    /* palette of two colours */
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION, img.width = W, img.height = H;
    img.format = PNG_FORMAT_RGB_COLORMAP, img.colormap_entries = 2;
    const uint8_t cmap[6] = {255, 255, 255, 0, 0, 0};
    uint8_t *mem = png_encode(&img, ink, cmap, &n);
    CU_ASSERT(decode_digit(mem, n, got, &g, &e) == 0 && memcmp(got, want, 784) == 0);
    CU_ASSERT(image_decode(&g, mem, n, "p.png", &e) == 0 && g.w == W && g.h == H);
    image_free(&g);
    free(mem);
    /* grey + alpha: black ink, transparent paper (composited on white) */
    static uint8_t ga[2 * W * H];
    for (int i = 0; i < W * H; i++)
        ga[2 * i] = 0, ga[2 * i + 1] = ink[i] ? 255 : 0;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION, img.width = W, img.height = H, img.format = PNG_FORMAT_GA;
    mem = png_encode(&img, ga, NULL, &n);
    CU_ASSERT(decode_digit(mem, n, got, &g, &e) == 0 && memcmp(got, want, 784) == 0);
    free(mem);
    /* 16-bit grey */
    static uint16_t y16[W * H];
    for (int i = 0; i < W * H; i++)
        y16[i] = ink[i] ? 0 : 65535;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION, img.width = W, img.height = H;
    img.format = PNG_FORMAT_LINEAR_Y;
    mem = png_encode(&img, y16, NULL, &n);
    CU_ASSERT(mem[24] == 16); /* IHDR bit depth: it is a 16-bit file */
    CU_ASSERT(decode_digit(mem, n, got, &g, &e) == 0 && memcmp(got, want, 784) == 0);
    free(mem);
    /* colour: dark blue ink on yellowish paper */
    static uint8_t rgb[3 * W * H];
    for (int i = 0; i < W * H; i++) {
        rgb[3 * i] = ink[i] ? 20 : 250, rgb[3 * i + 1] = ink[i] ? 30 : 245;
        rgb[3 * i + 2] = ink[i] ? 140 : 200;
    }
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION, img.width = W, img.height = H, img.format = PNG_FORMAT_RGB;
    mem = png_encode(&img, rgb, NULL, &n);
    CU_ASSERT(image_decode(&g, mem, n, "c.png", &e) == 0 && g.colour);
    image_free(&g);
    CU_ASSERT(decode_digit(mem, n, got, &g, &e) == 0 && memcmp(got, want, 784) == 0);
    /* truncated: refused, naming the file */
    CU_ASSERT(image_decode(&g, mem, n / 2, "half.png", &e) == -1);
    CU_ASSERT(strstr(e.msg, "half.png: damaged or truncated PNG") != NULL);
    CU_ASSERT_PTR_NULL(g.px);
    free(mem);
    CU_ASSERT(image_decode(&g, (const uint8_t *)"GIF89a....", 10, "x.gif", &e) == -1);
    CU_ASSERT(strstr(e.msg, "x.gif: not a PNG or JPEG image") != NULL);
}

static void test_jpeg_and_png_writer(void)
{
    static uint8_t px[W * H], ink[W * H], want[784], got[784];
    make_l(px, ink);
    Error e = {{0}};
    CU_ASSERT_FATAL(digit_preprocess(want, px, W, H, NULL, &e) == 0);
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    unsigned char *mem = NULL;
    unsigned long n = 0;
    jpeg_mem_dest(&c, &mem, &n);
    c.image_width = W, c.image_height = H, c.input_components = 1, c.in_color_space = JCS_GRAYSCALE;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 95, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < H) {
        JSAMPROW row = px + c.next_scanline * W;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    GreyImage g;
    DigitInfo info;
    CU_ASSERT_FATAL(image_decode(&g, mem, n, "d.jpg", &e) == 0);
    CU_ASSERT(g.w == W && g.h == H && !g.colour);
    CU_ASSERT(digit_preprocess(got, g.px, g.w, g.h, &info, &e) == 0);
    image_free(&g);
    CU_ASSERT(info.inverted && info.out_w == 10 && info.out_h == 20);
    int worst = 0;
    for (int i = 0; i < 784; i++)
        worst = abs(got[i] - want[i]) > worst ? abs(got[i] - want[i]) : worst;
    CU_ASSERT(worst < 64); /* JPEG ringing, nothing more */
    CU_ASSERT(image_decode(&g, mem, n - n / 3, "cut.jpg", &e) == -1);
    CU_ASSERT(strstr(e.msg, "cut.jpg: damaged or truncated JPEG") != NULL);
    CU_ASSERT_PTR_NULL(g.px);
    free(mem);
    /* the writer: what it writes reads back the same */
    char dir[256], path[512];
    tu_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/w.png", dir);
    CU_ASSERT_FATAL(image_write_png(path, want, 28, 28, &e) == 0);
    CU_ASSERT(tu_count_entries(dir) == 1);
    CU_ASSERT_FATAL(image_read(&g, path, &e) == 0);
    CU_ASSERT(g.w == 28 && g.h == 28 && memcmp(g.px, want, 784) == 0);
    image_free(&g);
    tu_rmrf(dir);
}

static void test_directory_sorted_others_skipped(void)
{
    char dir[256], path[512];
    tu_tmpdir(dir, sizeof dir);
    Error e = {{0}};
    Dataset d;
    ImageNames names;
    CU_ASSERT(data_images_read(dir, &d, &names, &e) == -1);
    CU_ASSERT(strstr(e.msg, "no .png, .jpg or .jpeg images") != NULL);
    uint8_t a[784] = {0}, b[784] = {0};
    a[14 * 28 + 14] = 255, b[3 * 28 + 3] = 200, b[3 * 28 + 4] = 200;
    snprintf(path, sizeof path, "%s/b.PNG", dir);
    CU_ASSERT_FATAL(image_write_png(path, b, 28, 28, &e) == 0);
    snprintf(path, sizeof path, "%s/a.png", dir);
    CU_ASSERT_FATAL(image_write_png(path, a, 28, 28, &e) == 0);
    tu_write(path, sizeof path, dir, "notes.txt", "hi\n", 3);
    tu_write(path, sizeof path, dir, ".hidden.png", "x", 1);
    CU_ASSERT_FATAL(data_images_read(dir, &d, &names, &e) == 0);
    CU_ASSERT(d.rows == 2 && names.count == 2 && names.skipped == 2 && !d.labels);
    CU_ASSERT(strcmp(names.names[0], "a.png") == 0 && strcmp(names.names[1], "b.PNG") == 0);
    CU_ASSERT(memcmp(d.images, a, 784) == 0 && memcmp(d.images + 784, b, 784) == 0);
    dataset_free(&d);
    data_images_free_names(&names);
    tu_write(path, sizeof path, dir, "c.jpg", "not a jpeg", 10);
    CU_ASSERT(data_images_read(dir, &d, &names, &e) == -1);
    CU_ASSERT(strstr(e.msg, "/c.jpg: not a PNG or JPEG image") != NULL);
    CU_ASSERT(d.images == NULL && names.count == 0);
    tu_rmrf(dir);
}

int test_image_register(void)
{
    CU_pSuite s = CU_add_suite("image", NULL, NULL);
    if (!s)
        return -1;
    return (CU_add_test(s, "light background: inverted, centred, aspect kept",
                        test_light_background_inverted_centred_aspect_kept) &&
            CU_add_test(s, "dark background, wide digit", test_dark_background_and_wide_digit) &&
            CU_add_test(s, "28x28 dark passes unchanged", test_28x28_dark_passes_unchanged) &&
            CU_add_test(s, "blank images refused", test_blank_images_refused) &&
            CU_add_test(s, "palette, alpha, 16-bit, colour PNGs", test_png_kinds_give_the_same_digit) &&
            CU_add_test(s, "JPEG, PNG writer", test_jpeg_and_png_writer) &&
            CU_add_test(s, "directory: sorted, others skipped", test_directory_sorted_others_skipped))
               ? 0
               : -1;
}

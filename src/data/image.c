/* image: PNG through libpng's simplified API (every bit depth, palette,
 * transparency and colour type, composited on white and reduced to grey by
 * libpng) and JPEG through libjpeg-turbo (grey out of YCbCr, RGB or grey; a
 * warning such as "Premature end of JPEG file" refuses the file rather than
 * handing back an image padded with grey). Writes grey PNGs from memory
 * with file_write_atomic. Must not call MPI or HDF5, print or exit. */
#include "mnist/image.h"

#include <ctype.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#define IMAGE_MAX_FILE_BYTES ((size_t)1 << 30)

void image_free(GreyImage *img)
{
    free(img->px);
    memset(img, 0, sizeof *img);
}

static int is_png(const uint8_t *b, size_t n)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    return n >= 8 && memcmp(b, sig, 8) == 0;
}

static int is_jpeg(const uint8_t *b, size_t n) { return n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff; }

int image_is_encoded(const uint8_t *buf, size_t n) { return is_png(buf, n) || is_jpeg(buf, n); }

int image_has_image_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name)
        return 0;
    char ext[8];
    size_t k = 0;
    for (const char *p = dot + 1; *p && k + 1 < sizeof ext; p++)
        ext[k++] = (char)tolower((unsigned char)*p);
    ext[k] = '\0';
    return strlen(dot + 1) < sizeof ext &&
           (strcmp(ext, "png") == 0 || strcmp(ext, "jpg") == 0 || strcmp(ext, "jpeg") == 0);
}

static int decode_png(GreyImage *out, const uint8_t *buf, size_t n, const char *name, Error *e)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&img, buf, n)) {
        err_set(e, "%s: damaged or truncated PNG (libpng: %s)", name, img.message);
        png_image_free(&img);
        return -1;
    }
    if (img.width == 0 || img.height == 0 ||
        (size_t)img.width * (size_t)img.height > IMAGE_MAX_PIXELS) {
        err_set(e, "%s: a %ux%u PNG: images of 1 to %zu pixels are read", name, img.width,
                img.height, IMAGE_MAX_PIXELS);
        png_image_free(&img);
        return -1;
    }
    out->colour = (img.format & PNG_FORMAT_FLAG_COLOR) != 0;
    /* 16-bit samples without gamma information scale like 8-bit ones
     * (libpng would otherwise take them as linear light) */
    img.flags |= PNG_IMAGE_FLAG_16BIT_sRGB;
    img.format = PNG_FORMAT_GRAY;
    out->w = (int)img.width, out->h = (int)img.height;
    out->px = malloc(PNG_IMAGE_SIZE(img));
    if (!out->px) {
        png_image_free(&img);
        return err_set(e, "%s: out of memory for a %dx%d image", name, out->w, out->h);
    }
    const png_color white = {255, 255, 255}; /* transparency is composited on white paper */
    if (!png_image_finish_read(&img, &white, out->px, 0, NULL)) {
        err_set(e, "%s: damaged or truncated PNG (libpng: %s)", name, img.message);
        png_image_free(&img);
        image_free(out);
        return -1;
    }
    png_image_free(&img);
    return 0;
}

typedef struct JpegErr {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
    int warnings;
} JpegErr;

static void jpeg_fail(j_common_ptr c)
{
    JpegErr *err = (JpegErr *)c->err;
    c->err->format_message(c, err->msg);
    longjmp(err->jump, 1);
}

static void jpeg_note(j_common_ptr c, int level)
{
    JpegErr *err = (JpegErr *)c->err;
    if (level < 0 && err->warnings++ == 0) /* a warning: corrupt or truncated data */
        c->err->format_message(c, err->msg);
}

/* The decode between setjmp's two returns: everything it allocates lives in
 * *out or cinfo, which the caller frees on either path. */
static int jpeg_decode_rows(struct jpeg_decompress_struct *cinfo, GreyImage *out, const char *name,
                            Error *e)
{
    if (cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK)
        return err_set(e, "%s: a CMYK JPEG: grey and colour (YCbCr, RGB) JPEGs are read", name);
    if (cinfo->image_width == 0 || cinfo->image_height == 0 ||
        (size_t)cinfo->image_width * cinfo->image_height > IMAGE_MAX_PIXELS)
        return err_set(e, "%s: a %ux%u JPEG: images of 1 to %zu pixels are read", name,
                       cinfo->image_width, cinfo->image_height, IMAGE_MAX_PIXELS);
    out->colour = cinfo->num_components > 1;
    cinfo->out_color_space = JCS_GRAYSCALE;
    jpeg_start_decompress(cinfo);
    out->w = (int)cinfo->output_width, out->h = (int)cinfo->output_height;
    out->px = malloc((size_t)out->w * (size_t)out->h + 1);
    if (!out->px)
        return err_set(e, "%s: out of memory for a %dx%d image", name, out->w, out->h);
    while (cinfo->output_scanline < cinfo->output_height) {
        JSAMPROW row = out->px + (size_t)cinfo->output_scanline * (size_t)out->w;
        jpeg_read_scanlines(cinfo, &row, 1);
    }
    jpeg_finish_decompress(cinfo);
    return 0;
}

static int decode_jpeg(GreyImage *out, const uint8_t *buf, size_t n, const char *name, Error *e)
{
    struct jpeg_decompress_struct cinfo;
    JpegErr err;
    memset(&err, 0, sizeof err);
    cinfo.err = jpeg_std_error(&err.mgr);
    err.mgr.error_exit = jpeg_fail;
    err.mgr.emit_message = jpeg_note;
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        image_free(out);
        return err_set(e, "%s: damaged or truncated JPEG (libjpeg: %s)", name, err.msg);
    }
    jpeg_create_decompress(&cinfo);
    cinfo.mem->max_memory_to_use = (long)1 << 30;
    jpeg_mem_src(&cinfo, buf, (unsigned long)n);
    jpeg_read_header(&cinfo, TRUE);
    int rc = jpeg_decode_rows(&cinfo, out, name, e);
    jpeg_destroy_decompress(&cinfo);
    if (rc == 0 && err.warnings) {
        image_free(out);
        return err_set(e, "%s: damaged or truncated JPEG (libjpeg: %s)", name, err.msg);
    }
    if (rc)
        image_free(out);
    return rc;
}

int image_decode(GreyImage *out, const uint8_t *buf, size_t n, const char *name, Error *e)
{
    memset(out, 0, sizeof *out);
    if (n == 0)
        return err_set(e, "%s: file is empty", name);
    if (is_png(buf, n))
        return decode_png(out, buf, n, name, e);
    if (is_jpeg(buf, n))
        return decode_jpeg(out, buf, n, name, e);
    return err_set(e, "%s: not a PNG or JPEG image (its first bytes are neither signature)",
                   name);
}

int image_read(GreyImage *out, const char *path, Error *e)
{
    memset(out, 0, sizeof *out);
    unsigned char *buf = NULL;
    size_t n = 0;
    if (file_read_all(path, IMAGE_MAX_FILE_BYTES, &buf, &n, e))
        return -1;
    const int rc = image_decode(out, buf, n, path, e);
    free(buf);
    return rc;
}

int image_write_png(const char *path, const uint8_t *px, int w, int h, Error *e)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)w, img.height = (png_uint_32)h;
    img.format = PNG_FORMAT_GRAY;
    png_alloc_size_t bytes = 0;
    if (!png_image_write_get_memory_size(img, bytes, 0, px, 0, NULL))
        return err_set(e, "%s: cannot encode a PNG (libpng: %s)", path, img.message);
    void *mem = malloc(bytes);
    if (!mem)
        return err_set(e, "%s: out of memory encoding a PNG", path);
    int rc = 0;
    if (!png_image_write_to_memory(&img, mem, &bytes, 0, px, 0, NULL))
        rc = err_set(e, "%s: cannot encode a PNG (libpng: %s)", path, img.message);
    else
        rc = file_write_atomic(path, mem, (size_t)bytes, e);
    free(mem);
    return rc;
}

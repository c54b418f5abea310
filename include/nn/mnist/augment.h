/* augment: on-the-fly training-image distortion (random affine + Simard-style
 * elastic warp, bilinear sampling, zero outside the image). Every image is a
 * pure function of (params, key, sample id), so it does not depend on thread,
 * rank or batch position. Must not allocate, print or keep global state: it
 * runs inside the training step on caller-provided scratch. */
#ifndef MNIST_AUGMENT_H
#define MNIST_AUGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "mnist/shape.h"
#include "mnist/util.h"

#define AUGMENT_SIDE 28 /* the images it warps: 28 x 28, one channel */

/* Maximum strengths; each sample draws its own values uniformly within them.
 * All zero = identity. */
typedef struct AugmentParams {
    float rotate_deg;    /* max |rotation|, degrees: angle uniform in [-r, r] */
    float scale;         /* max relative size change: factor uniform in [1-s, 1+s] */
    float shear;         /* max |horizontal shear| (tan of the angle), uniform in [-h, h] */
    float translate_px;  /* max |shift| per axis, pixels, uniform in [-t, t] */
    float elastic_alpha; /* elastic strength, pixels (0 = off); rms shift/axis ~ 0.16*alpha/sigma */
    float elastic_sigma; /* Gaussian smoothing of the random field, pixels (> 0 when alpha > 0) */
} AugmentParams;

/* One sample's concrete transform (what augment_image draws, then applies).
 * Forward map, in pixel coordinates (x right, y down, centre 13.5, 13.5):
 * dest = centre + (tx, ty) + R(rotate) · [1 shear; 0 1] · scale · (src - centre),
 * then each destination pixel's source point moves by alpha × the smoothed
 * random field. Positive rotate turns clockwise on screen. scale is the
 * factor (1 = unchanged, > 0). */
typedef struct AugmentDraw {
    float rotate_deg, scale, shear, tx_px, ty_px;
    float elastic_alpha, elastic_sigma;
    uint64_t field_key; /* stream of the elastic field's raw uniforms */
} AugmentDraw;

/* The strengths "default" stands for (see augment.c for why). */
AugmentParams augment_defaults(void);

/* Parses a comma-separated spec into p: "off", "default", or keys
 * rotate=DEG, scale=S, shear=H, translate=PX, elastic=ALPHA:SIGMA (or
 * elastic=0); "default" / "off" reset every key, later keys override, unnamed
 * keys start at 0 (e.g. "default,elastic=0"). 0, or -1 with e naming the bad
 * key or value (the caller prefixes the option name) and p untouched. */
int augment_parse(AugmentParams *p, const char *spec, Error *e);

/* Writes the canonical spec of p ("off" or "rotate=...,elastic=A:S") into
 * buf; augment_parse reads it back to the same values. 0, or -1 if too long. */
int augment_format(char *buf, size_t size, const AugmentParams *p);

/* 1 if p changes images at all, 0 if it is the identity. */
int augment_enabled(const AugmentParams *p);

/* 1 if images of shape s can be augmented (AUGMENT_SIDE square, one channel). */
int augment_supports(Shape s);

/* Floats of workspace one augment_image call needs (a multiple of 16, so
 * per-thread slices stay 64-byte apart when the base is aligned). */
size_t augment_scratch_floats(void);

/* Draws sample sample_id's transform from stream key (p's strengths). key is
 * the run's augmentation stream for the epoch (rng_key(seed, purpose, epoch,
 * 0) with a purpose of its own); sample_id the global row index, so a sample
 * gets the same image on whichever rank holds it. */
void augment_draw(AugmentDraw *d, const AugmentParams *p, uint64_t key, uint64_t sample_id);

/* out[784] (overwritten, values in [0, 1]) = src[784 bytes] warped by d,
 * sampled bilinearly, zero outside. scratch: augment_scratch_floats() floats,
 * clobbered. The identity draw gives exactly (float)src * (1/255.f). */
void augment_warp(float *out, const uint8_t *src, const AugmentDraw *d, float *scratch);

/* out[784] = src augmented with p for (key, sample_id): augment_draw then
 * augment_warp. Same inputs give a bit-identical image on any thread or rank. */
void augment_image(float *out, const uint8_t *src, const AugmentParams *p, uint64_t key,
                   uint64_t sample_id, float *scratch);

/* x[b × 784] (overwritten) = augment_image of src_rows[i] for sample_ids[i],
 * OpenMP-parallel over images on at most scratch_slots threads, thread t
 * using scratch + t × augment_scratch_floats(); scratch_slots >= 1 (size it
 * with omp_get_max_threads()). Results do not depend on the thread count. */
void augment_batch(float *x, const uint8_t *const *src_rows, int b, const AugmentParams *p,
                   uint64_t key, const uint64_t *sample_ids, float *scratch, int scratch_slots);

#endif

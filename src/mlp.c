/* mlp: arena layout, initialisation, forward and backward of the MLP.
 * Kernels come from ops; this file only sequences them over the layers.
 * No MPI, no HDF5, no allocation outside mlp_create. */
#include "mnist/mlp.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mnist/ops.h"
#include "mnist/rng.h"

#define FLOATS_PER_LINE 16 /* 64-byte alignment of every tensor */

static size_t pad(size_t n) { return (n + FLOATS_PER_LINE - 1) / FLOATS_PER_LINE * FLOATS_PER_LINE; }

size_t mlp_tensor_offset(const Mlp *m, int l, int which)
{
    size_t off = 0;
    for (int k = 0; k < l; k++)
        off += pad((size_t)m->sizes[k] * m->sizes[k + 1]) + pad((size_t)m->sizes[k + 1]);
    if (which)
        off += pad((size_t)m->sizes[l] * m->sizes[l + 1]);
    return off;
}

size_t mlp_tensor_size(const Mlp *m, int l, int which)
{
    return which ? (size_t)m->sizes[l + 1] : (size_t)m->sizes[l] * m->sizes[l + 1];
}

int mlp_create(Mlp *m, const int *sizes, int num_layers, float dropout, int max_batch, Error *e)
{
    memset(m, 0, sizeof *m);
    if (num_layers < 1 || num_layers > MLP_MAX_LAYERS)
        return err_set(e, "a model needs 1 to %d dense layers, got %d", MLP_MAX_LAYERS,
                       num_layers);
    if (max_batch < 1)
        return err_set(e, "batch size must be at least 1, got %d", max_batch);
    if (!(dropout >= 0.0f && dropout < 1.0f))
        return err_set(e, "dropout must be in [0, 1), got %g", (double)dropout);
    m->num_layers = num_layers;
    m->dropout = dropout;
    m->in_scale = 1.0f;
    m->max_batch = max_batch;
    size_t widest = 0, act_floats = 0;
    for (int l = 0; l <= num_layers; l++) {
        if (sizes[l] < 1 || sizes[l] > 1 << 20)
            return err_set(e, "layer width %d is outside 1..%d", sizes[l], 1 << 20);
        m->sizes[l] = sizes[l];
        if ((size_t)sizes[l] > widest)
            widest = (size_t)sizes[l];
        if (l > 0) {
            m->num_params += (size_t)sizes[l - 1] * sizes[l] + sizes[l];
            act_floats += pad((size_t)max_batch * sizes[l]);
        }
    }
    m->param_floats = mlp_tensor_offset(m, num_layers, 0);
    const size_t delta_floats = pad((size_t)max_batch * widest);
    const size_t total = 4 * m->param_floats + MLP_CTRL_FLOATS + act_floats + 2 * delta_floats;
    if (total > SIZE_MAX / sizeof(float))
        return err_set(e, "model too large");
    m->arena = alloc_aligned(total * sizeof(float));
    if (!m->arena)
        return err_set(e, "out of memory allocating %zu MB for the model",
                       total * sizeof(float) >> 20);
    float *p = m->arena;
    m->params = p, p += m->param_floats;
    m->grads = p, p += m->param_floats;
    m->ctrl = p, p += MLP_CTRL_FLOATS;
    m->adam_m = p, p += m->param_floats;
    m->adam_v = p, p += m->param_floats;
    for (int l = 0; l < num_layers; l++) {
        m->W[l] = m->params + mlp_tensor_offset(m, l, 0);
        m->b[l] = m->params + mlp_tensor_offset(m, l, 1);
        m->dW[l] = m->grads + mlp_tensor_offset(m, l, 0);
        m->db[l] = m->grads + mlp_tensor_offset(m, l, 1);
        m->act[l] = p, p += pad((size_t)max_batch * sizes[l + 1]);
    }
    m->delta[0] = p, p += delta_floats;
    m->delta[1] = p;
    return 0;
}

void mlp_use_buffers(Mlp *m, float *params, float *grads)
{
    m->params = params ? params : m->arena;
    m->grads = grads ? grads : m->arena + m->param_floats;
    m->ctrl = m->grads + m->param_floats;
    for (int l = 0; l < m->num_layers; l++) {
        m->W[l] = m->params + mlp_tensor_offset(m, l, 0);
        m->b[l] = m->params + mlp_tensor_offset(m, l, 1);
        m->dW[l] = m->grads + mlp_tensor_offset(m, l, 0);
        m->db[l] = m->grads + mlp_tensor_offset(m, l, 1);
    }
}

void mlp_free(Mlp *m)
{
    free(m->arena);
    memset(m, 0, sizeof *m);
}

void mlp_init_params(Mlp *m, uint64_t seed)
{
    for (int l = 0; l < m->num_layers; l++) {
        const size_t n = (size_t)m->sizes[l] * m->sizes[l + 1];
        const double std = sqrt(2.0 / m->sizes[l]);
        const uint64_t key = rng_key(seed, RNG_INIT, (uint64_t)l, 0);
        float *W = m->W[l];
#pragma omp parallel for schedule(static)
        for (size_t k = 0; k < n; k++)
            W[k] = (float)(std * rng_normal(key, k));
        memset(m->b[l], 0, sizeof(float) * (size_t)m->sizes[l + 1]);
    }
}

static uint64_t layer_key(uint64_t key, int l) { return rng_mix64(key + (uint64_t)(l + 1)); }

const float *mlp_forward(Mlp *m, const float *x, int B, int train, uint64_t dropout_key,
                         const uint64_t *sample_ids)
{
    const int L = m->num_layers;
    const float *in = x;
    m->fwd_scale = (train && m->dropout > 0.0f) ? 1.0f / (1.0f - m->dropout) : 1.0f;
    for (int l = 0; l < L; l++) {
        const int hidden = l < L - 1;
        const float p = (train && hidden) ? m->dropout : 0.0f;
        dense_forward(m->act[l], in, m->W[l], B, m->sizes[l], m->sizes[l + 1]);
        bias_act_dropout_forward(m->act[l], m->b[l], B, m->sizes[l + 1], hidden, p,
                                 layer_key(dropout_key, l), sample_ids);
        in = m->act[l];
    }
    return m->act[L - 1];
}

double mlp_backward(Mlp *m, const float *x, const uint8_t *labels, int B, float grad_scale,
                    int *pred)
{
    const int L = m->num_layers;
    float *d = m->delta[0], *other = m->delta[1];
    double loss = softmax_xent(d, pred, m->act[L - 1], labels, B, m->sizes[L], grad_scale,
                               m->label_smoothing);
    const float scale = m->fwd_scale;
    for (int l = L - 1; l >= 0; l--) {
        const float *in = l == 0 ? x : m->act[l - 1];
        dense_backward(l > 0 ? other : NULL, m->dW[l], m->db[l], d, in, m->W[l], B, m->sizes[l],
                       m->sizes[l + 1]);
        if (l > 0) {
            relu_dropout_backward(other, m->act[l - 1], B, m->sizes[l], scale);
            float *t = d;
            d = other;
            other = t;
        }
    }
    return loss;
}

void mlp_normalize_input(const Mlp *m, float *x, int B)
{
    if (m->in_mean == 0.0f && m->in_scale == 1.0f)
        return;
    const size_t n = (size_t)B * m->sizes[0];
    const float mu = m->in_mean, k = m->in_scale;
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++)
        x[i] = (x[i] - mu) * k;
}

void mlp_max_norm(Mlp *m, float c)
{
    for (int l = 0; l < m->num_layers - 1; l++) {
        const int in = m->sizes[l], out = m->sizes[l + 1];
        float *W = m->W[l];
        /* Column norms of W[in,out]: threads own columns, rows summed in order. */
#pragma omp parallel for schedule(static)
        for (int j = 0; j < out; j++) {
            double s = 0;
            for (int i = 0; i < in; i++)
                s += (double)W[(size_t)i * out + j] * W[(size_t)i * out + j];
            if (s > (double)c * c) {
                const float f = (float)(c / sqrt(s));
                for (int i = 0; i < in; i++)
                    W[(size_t)i * out + j] *= f;
            }
        }
    }
}

uint64_t mlp_checksum(const Mlp *m)
{
    /* param_floats is a multiple of 16, so the vector is whole 64-bit words;
     * memcpy reads them without breaking aliasing rules */
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < m->param_floats; i += 2) {
        uint64_t w;
        memcpy(&w, m->params + i, sizeof w);
        h = (h ^ w) * 0x100000001b3ULL;
    }
    return h;
}

void mlp_zero_grads(Mlp *m) { memset(m->grads, 0, sizeof(float) * m->param_floats); }

int mlp_parse_layers(const char *spec, int inputs, int classes, int *sizes, Error *e)
{
    int n = 0;
    sizes[n++] = inputs;
    const char *s = spec;
    while (*s) {
        if (n >= MLP_MAX_LAYERS)
            return err_set(e, "--layers '%s': at most %d hidden layers", spec, MLP_MAX_LAYERS - 1);
        char *end;
        errno = 0;
        long w = strtol(s, &end, 10);
        if (end == s || errno || w < 1 || w > (1 << 20) || (*end != ',' && *end != '\0'))
            return err_set(e,
                           "--layers '%s': expected comma-separated widths 1..%d, e.g. 512,512",
                           spec, 1 << 20);
        sizes[n++] = (int)w;
        s = *end == ',' ? end + 1 : end;
        if (*end == ',' && *s == '\0')
            return err_set(e, "--layers '%s': trailing comma", spec);
    }
    sizes[n] = classes;
    return n;
}

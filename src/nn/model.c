/* model: the layer stack's specs, its arena layout, and the forward and
 * backward passes that walk the stack (each layer's work is in layers.c).
 * No MPI, no HDF5, no allocation outside model_create. */
#include "mnist/model.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mnist/ops.h"

#define FLOATS_PER_LINE 16 /* 64-byte alignment of every tensor and buffer */
#define MLP_MAX_HIDDEN 15  /* --layers: hidden widths */

static size_t pad(size_t n) { return (n + FLOATS_PER_LINE - 1) / FLOATS_PER_LINE * FLOATS_PER_LINE; }

/* ---- specs ---------------------------------------------------------------- */

int model_spec_append(ModelSpec *s, LayerSpec l, Error *e)
{
    if (s->count >= MODEL_MAX_LAYERS)
        return err_set(e, "a model has at most %d layers", MODEL_MAX_LAYERS);
    s->layers[s->count++] = l;
    return 0;
}

/* A whole number 1..max (0..max with zero_ok) at *p, which moves past it. */
static int whole(const char **p, int zero_ok, int max, int *out)
{
    char *end;
    errno = 0;
    if (**p < '0' || **p > '9')
        return -1;
    long v = strtol(*p, &end, 10);
    if (errno || v < (zero_ok ? 0 : 1) || v > max)
        return -1;
    *out = (int)v;
    *p = end;
    return 0;
}

/* "/sN" and "/pN" options after a conv or maxpool's sizes (pad only when pad). */
static int geom_options(LayerSpec *l, const char *p, int *pad)
{
    while (*p) {
        if (p[0] != '/' || (p[1] != 's' && !(pad && p[1] == 'p')))
            return -1;
        const char opt = p[1];
        p += 2;
        if (whole(&p, opt == 'p', 64, opt == 's' ? &l->stride : pad))
            return -1;
    }
    return 0;
}

/* conv:FxKHxKW[/sS][/pP] (stride 1, padding 0 unless given). */
static int conv_args(LayerSpec *l, const char *p)
{
    l->stride = 1;
    l->pad = 0;
    if (whole(&p, 0, 65536, &l->units) || *p++ != 'x' || whole(&p, 0, 64, &l->kh) ||
        *p++ != 'x' || whole(&p, 0, 64, &l->kw))
        return -1;
    return geom_options(l, p, &l->pad);
}

/* maxpool:K[/sS] (stride K unless given). */
static int pool_args(LayerSpec *l, const char *p)
{
    if (whole(&p, 0, 64, &l->kh))
        return -1;
    l->kw = l->stride = l->kh;
    return geom_options(l, p, NULL);
}

/* Parses the arguments of one token (after "kind:"): the fields its kind takes. */
static int token_args(LayerSpec *l, const char *args, const char *token, int pos, Error *e)
{
    char *end = NULL;
    errno = 0;
    switch (l->kind) {
    case LAYER_DENSE: {
        long v = args ? strtol(args, &end, 10) : 0;
        if (!args || end == args || *end || errno || v < 1 || v > 1 << 20)
            return err_set(e, "token %d '%s': dense takes a width 1..%d, e.g. dense:128", pos,
                           token, 1 << 20);
        l->units = (int)v;
        return 0;
    }
    case LAYER_DROPOUT: {
        double v = args ? strtod(args, &end) : -1;
        if (!args || end == args || *end || errno || !(v >= 0 && v < 1))
            return err_set(e, "token %d '%s': dropout takes a rate in [0, 1), e.g. dropout:0.5",
                           pos, token);
        l->rate = (float)v;
        return 0;
    }
    case LAYER_CONV:
        if (!args || conv_args(l, args))
            return err_set(e, "token %d '%s': conv takes FILTERSxKHxKW[/sSTRIDE][/pPAD], e.g. "
                              "conv:32x3x3 or conv:64x3x3/s2/p1", pos, token);
        return 0;
    case LAYER_MAXPOOL:
        if (!args || pool_args(l, args))
            return err_set(e, "token %d '%s': maxpool takes SIZE[/sSTRIDE], e.g. maxpool:2 or "
                              "maxpool:3/s2", pos, token);
        return 0;
    default:
        if (args)
            return err_set(e, "token %d '%s': %s takes no arguments", pos, token,
                           layer_ops(l->kind)->name);
        return 0;
    }
}

int model_spec_parse(ModelSpec *s, const char *text, Error *e)
{
    memset(s, 0, sizeof *s);
    char buf[4096];
    if (strlen(text) >= sizeof buf)
        return err_set(e, "layer list longer than %zu characters", sizeof buf - 1);
    strcpy(buf, text);
    int pos = 0;
    for (char *tok = buf, *next; tok && *tok; tok = next) {
        next = strchr(tok, ',');
        if (next)
            *next++ = '\0';
        pos++;
        char token[128];
        snprintf(token, sizeof token, "%.120s", tok);
        char *args = strchr(tok, ':');
        if (args)
            *args++ = '\0';
        const int kind = layer_kind_named(tok);
        if (kind < 0) {
            char known[128] = "";
            for (int k = 0; k < LAYER_KINDS; k++)
                snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s",
                         k ? ", " : "", layer_ops((LayerKind)k)->name);
            return err_set(e, "token %d '%s': unknown layer kind '%s' (known: %s)", pos, token,
                           tok, known);
        }
        LayerSpec l = {.kind = (LayerKind)kind};
        if (token_args(&l, args, token, pos, e) || model_spec_append(s, l, e))
            return -1;
        if (next && *next == '\0')
            return err_set(e, "token %d: empty (a trailing comma?)", pos + 1);
    }
    return 0;
}

/* --model presets: the layers before the output (dense:CLASSES is added). */
static const struct {
    const char *name, *spec;
} PRESETS[] = {
    /* the Keras mnist_cnn example */
    {"ref-cnn", "conv:32x3x3,relu,conv:64x3x3,relu,maxpool:2,dropout:0.25,flatten,dense:128,relu,"
                "dropout:0.5"},
    /* the default MLP (--layers 512,512 --dropout 0.2) */
    {"ref-mlp", "dense:512,relu,dropout:0.2,dense:512,relu,dropout:0.2"},
};

const char *model_preset(const char *name)
{
    for (size_t i = 0; i < sizeof PRESETS / sizeof PRESETS[0]; i++)
        if (strcmp(PRESETS[i].name, name) == 0)
            return PRESETS[i].spec;
    return NULL;
}

int model_spec_model(ModelSpec *s, const char *text, int classes, Error *e)
{
    const char *preset = model_preset(text);
    if (model_spec_parse(s, preset ? preset : text, e))
        return err_prefix(e, "--model");
    if (s->count == 0)
        return err_set(e, "--model: no layers (give a layer list or ref-cnn, ref-mlp)");
    if (s->layers[s->count - 1].kind != LAYER_DENSE &&
        model_spec_append(s, (LayerSpec){.kind = LAYER_DENSE, .units = classes}, e))
        return err_prefix(e, "--model");
    return 0;
}

int model_spec_from_widths(ModelSpec *s, const char *widths, float dropout, Error *e)
{
    memset(s, 0, sizeof *s);
    int n = 0;
    for (const char *p = widths; *p;) {
        if (n >= MLP_MAX_HIDDEN)
            return err_set(e, "--layers '%s': at most %d hidden layers", widths, MLP_MAX_HIDDEN);
        char *end;
        errno = 0;
        long w = strtol(p, &end, 10);
        if (end == p || errno || w < 1 || w > (1 << 20) || (*end != ',' && *end != '\0'))
            return err_set(e, "--layers '%s': expected comma-separated widths 1..%d, e.g. 512,512",
                           widths, 1 << 20);
        n++;
        if (model_spec_append(s, (LayerSpec){.kind = LAYER_DENSE, .units = (int)w}, e) ||
            model_spec_append(s, (LayerSpec){.kind = LAYER_RELU}, e) ||
            (dropout > 0.0f &&
             model_spec_append(s, (LayerSpec){.kind = LAYER_DROPOUT, .rate = dropout}, e)))
            return -1;
        p = *end == ',' ? end + 1 : end;
        if (*end == ',' && *p == '\0')
            return err_set(e, "--layers '%s': trailing comma", widths);
    }
    return 0;
}

int model_spec_format(char *buf, size_t size, const ModelSpec *s)
{
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; i < s->count; i++) {
        const LayerSpec *l = &s->layers[i];
        const char *sep = i ? "," : "", *name = layer_ops(l->kind)->name;
        int n;
        if (l->kind == LAYER_DENSE)
            n = snprintf(buf + o, size - o, "%s%s:%d", sep, name, l->units);
        else if (l->kind == LAYER_DROPOUT)
            n = snprintf(buf + o, size - o, "%s%s:%g", sep, name, (double)l->rate);
        else if (l->kind == LAYER_CONV)
            n = snprintf(buf + o, size - o, "%s%s:%dx%dx%d/s%d/p%d", sep, name, l->units, l->kh,
                         l->kw, l->stride, l->pad);
        else if (l->kind == LAYER_MAXPOOL)
            n = snprintf(buf + o, size - o, "%s%s:%d/s%d", sep, name, l->kh, l->stride);
        else
            n = snprintf(buf + o, size - o, "%s%s", sep, name);
        if (n < 0 || (size_t)n >= size - o)
            return -1;
        o += (size_t)n;
    }
    return 0;
}

/* ---- building ------------------------------------------------------------- */

/* Places layer l's declared tensors in the flat vectors and lists them. */
static int add_tensors(Model *m, Layer *l, Error *e)
{
    for (int k = 0; k < l->num_tensors; k++) {
        if (m->num_tensors >= MODEL_MAX_TENSORS)
            return err_set(e, "a model has at most %d tensors", MODEL_MAX_TENSORS);
        LayerTensor *lt = &l->tensors[k];
        Tensor *t = &m->tensors[m->num_tensors++];
        memset(t, 0, sizeof *t);
        snprintf(t->name, sizeof t->name, "%s%d/%s", layer_ops(l->spec.kind)->name, l->ordinal,
                 lt->what);
        t->ndim = lt->ndim;
        t->count = 1;
        for (int d = 0; d < lt->ndim; d++)
            t->dims[d] = lt->dims[d], t->count *= (size_t)lt->dims[d];
        t->offset = lt->offset = m->param_floats;
        t->decay = lt->decay, t->max_norm = lt->max_norm;
        m->param_floats += pad(t->count);
        m->num_params += t->count;
    }
    return 0;
}

float *model_layer_tensor(const Model *m, const Layer *l, int k, float *base)
{
    (void)m;
    return base + l->tensors[k].offset;
}

/* Folds a ReLU (and, after a dense layer, a dropout right after it) into the
 * dense or conv layer before them: the same arithmetic in one sweep over the
 * activations (for conv, per sample while it is in cache). */
static void fuse_epilogues(Model *m)
{
    for (int i = 0; i + 1 < m->num_layers; i++) {
        Layer *d = &m->layers[i];
        const int conv = d->spec.kind == LAYER_CONV;
        if ((d->spec.kind != LAYER_DENSE && !conv) || m->layers[i + 1].spec.kind != LAYER_RELU)
            continue;
        d->relu = 1;
        m->layers[i + 1].fused = 1;
        if (conv)
            continue;
        if (i + 2 < m->num_layers && m->layers[i + 2].spec.kind == LAYER_DROPOUT) {
            d->drop = m->layers[i + 2].spec.rate;
            d->drop_ordinal = m->layers[i + 2].ordinal;
            m->layers[i + 2].fused = 1;
        }
    }
}

/* The layers of spec, their shapes and tensors; -1 with e naming the layer. */
static int build_layers(Model *m, const ModelSpec *spec, Error *e)
{
    int ordinals[LAYER_KINDS] = {0}, with_params = 0;
    Shape shape = m->input;
    for (int i = 0; i < spec->count; i++) {
        Layer *l = &m->layers[m->num_layers++];
        const LayerOps *ops = layer_ops(spec->layers[i].kind);
        *l = (Layer){.spec = spec->layers[i], .in = shape, .precision = spec->precision};
        l->ordinal = ops->has_params ? with_params++ : ordinals[l->spec.kind]++;
        if (ops->setup(l, e) || add_tensors(m, l, e))
            return err_prefix(e, "layer %d (%s)", i + 1, ops->name);
        shape = l->out;
    }
    const Layer *last = m->num_layers ? &m->layers[m->num_layers - 1] : NULL;
    if (!last || last->spec.kind != LAYER_DENSE || last->spec.units != m->classes)
        return err_set(e, "the last layer must be dense:%d (one output per class)", m->classes);
    /* max-norm constrains hidden units only: not the output layer's weights */
    for (int t = 0; t < m->num_tensors; t++)
        if (m->tensors[t].offset == last->tensors[0].offset)
            m->tensors[t].max_norm = 0;
    fuse_epilogues(m);
    return 0;
}

/* Points every layer's buffers into the arena after params, grads, ctrl. */
static size_t place_buffers(Model *m, float *base)
{
    size_t used = 0, widest = shape_size(m->input);
    for (int i = 0; i < m->num_layers; i++) {
        Layer *l = &m->layers[i];
        const size_t n = shape_size(l->out);
        l->max_rows = m->max_batch;
        widest = n > widest ? n : widest;
        if (l->fused || (l->in_place && i > 0)) {
            l->act = NULL; /* resolved below: the input's buffer */
        } else {
            l->act = base ? base + used : NULL;
            used += pad((size_t)m->max_batch * n);
        }
        const LayerOps *ops = layer_ops(l->spec.kind);
        const size_t scratch = ops->scratch ? ops->scratch(l, m->max_batch) : l->scratch_floats;
        l->scratch = base && scratch ? base + used : NULL;
        used += pad(scratch);
        if (base && !l->act)
            l->act = m->layers[i - 1].act;
    }
    const size_t delta = pad((size_t)m->max_batch * widest);
    if (base) {
        m->delta[0] = base + used;
        m->delta[1] = base + used + delta;
    }
    return used + 2 * delta;
}

int model_layout(Model *m, const ModelSpec *spec, Shape input, int classes, Error *e)
{
    memset(m, 0, sizeof *m);
    if (input.h < 1 || input.w < 1 || input.c < 1 || shape_size(input) > (size_t)1 << 24)
        return err_set(e, "input shape %dx%dx%d is not usable", input.h, input.w, input.c);
    if (classes < 2 || classes > 256)
        return err_set(e, "%d classes: a model needs 2..256", classes);
    m->spec = *spec;
    m->input = input;
    m->classes = classes;
    m->in_scale = 1.0f;
    if (build_layers(m, spec, e)) {
        memset(m, 0, sizeof *m);
        return -1;
    }
    return 0;
}

/* A bf16 dense layer whose output (after its fused epilogue) is the next
 * dense layer's input writes that layer's bf16 copy in its output pass. */
static void link_bf16_inputs(Model *m)
{
    for (int i = 0; i < m->num_layers; i++) {
        Layer *l = &m->layers[i];
        if (l->spec.kind != LAYER_DENSE || l->precision != PRECISION_BF16)
            continue;
        int j = i + 1;
        while (j < m->num_layers && m->layers[j].fused)
            j++;
        if (j < m->num_layers && m->layers[j].spec.kind == LAYER_DENSE) {
            l->next_x = layer_bf16_input(&m->layers[j]);
            m->layers[j].x_given = 1;
        }
    }
}

/* Plans every layer's products (layer_products) for batches up to max_batch. */
static int plan_products(Model *m, Error *e)
{
    size_t total = 0, most = 1;
    for (int i = 0; i < m->num_layers; i++) {
        const size_t n = (size_t)layer_products(&m->layers[i], NULL);
        total += n;
        most = n > most ? n : most;
    }
    m->plans = calloc(total + 1, sizeof *m->plans);
    GemmShape *shapes = malloc(most * sizeof *shapes);
    if (!m->plans || !shapes) {
        free(shapes);
        return err_set(e, "out of memory planning the model's products");
    }
    GemmPlan *p = m->plans;
    for (int i = 0; i < m->num_layers; i++) {
        Layer *l = &m->layers[i];
        const int n = layer_products(l, shapes);
        l->mm = n ? p : NULL;
        for (int k = 0; k < n; k++, l->num_mm++)
            if (gemm_plan(p++, shapes[k], e)) {
                free(shapes);
                return err_prefix(e, "layer %d (%s)", i + 1, layer_ops(l->spec.kind)->name);
            }
    }
    free(shapes);
    return 0;
}

int model_create(Model *m, const ModelSpec *spec, Shape input, int classes, int max_batch,
                 Error *e)
{
    if (max_batch < 1) {
        memset(m, 0, sizeof *m);
        return err_set(e, "batch size must be at least 1, got %d", max_batch);
    }
    if (model_layout(m, spec, input, classes, e))
        return -1;
    m->max_batch = max_batch;
    const size_t act = place_buffers(m, NULL);
    int bf16_dense = 0;
    for (int i = 0; i < m->num_layers; i++)
        bf16_dense |= m->layers[i].spec.kind == LAYER_DENSE &&
                      m->layers[i].precision == PRECISION_BF16;
    const size_t mirror = bf16_dense ? m->param_floats / 2 : 0; /* param_floats: lines of 16 */
    const size_t total = 2 * m->param_floats + MODEL_CTRL_FLOATS + act + mirror;
    if (total > SIZE_MAX / sizeof(float) / 2)
        return err_set(e, "model too large");
    m->arena = alloc_aligned(total * sizeof(float));
    if (!m->arena)
        return err_set(e, "out of memory allocating %zu MB for the model",
                       total * sizeof(float) >> 20);
    model_use_buffers(m, NULL, NULL);
    place_buffers(m, m->arena + 2 * m->param_floats + MODEL_CTRL_FLOATS);
    if (mirror) {
        m->own_bf16 = (bf16 *)(m->arena + total - mirror);
        model_use_bf16_mirror(m, NULL);
    }
    link_bf16_inputs(m);
    if (plan_products(m, e)) {
        model_free(m);
        return -1;
    }
    return 0;
}

int model_create_mlp(Model *m, const int *sizes, int L, float dropout, int max_batch, Error *e)
{
    ModelSpec spec = {0};
    memset(m, 0, sizeof *m);
    if (L < 1 || L > MLP_MAX_HIDDEN + 1)
        return err_set(e, "a model needs 1 to %d dense layers, got %d", MLP_MAX_HIDDEN + 1, L);
    if (!(dropout >= 0.0f && dropout < 1.0f))
        return err_set(e, "dropout must be in [0, 1), got %g", (double)dropout);
    for (int l = 1; l <= L; l++) {
        if (sizes[l] < 1 || sizes[l] > 1 << 20)
            return err_set(e, "layer width %d is outside 1..%d", sizes[l], 1 << 20);
        const int hidden = l < L;
        if (model_spec_append(&spec, (LayerSpec){.kind = LAYER_DENSE, .units = sizes[l]}, e) ||
            (hidden && model_spec_append(&spec, (LayerSpec){.kind = LAYER_RELU}, e)) ||
            (hidden && dropout > 0.0f &&
             model_spec_append(&spec, (LayerSpec){.kind = LAYER_DROPOUT, .rate = dropout}, e)))
            return -1;
    }
    if (sizes[0] < 1 || sizes[0] > 1 << 20)
        return err_set(e, "layer width %d is outside 1..%d", sizes[0], 1 << 20);
    return model_create(m, &spec, (Shape){1, 1, sizes[0]}, sizes[L], max_batch, e);
}

Layer *model_dense(Model *m, int l)
{
    for (int i = 0, k = 0; i < m->num_layers; i++)
        if (m->layers[i].spec.kind == LAYER_DENSE && k++ == l)
            return &m->layers[i];
    return NULL;
}

void model_use_buffers(Model *m, float *params, float *grads)
{
    m->params = params ? params : m->arena;
    m->grads = grads ? grads : m->arena + m->param_floats;
    m->ctrl = m->grads + m->param_floats;
}

void model_use_bf16_mirror(Model *m, bf16 *mirror)
{
    if (!m->own_bf16)
        return;
    m->params_bf16 = mirror ? mirror : m->own_bf16;
    m->bf16_fresh = 0;
}

void model_free(Model *m)
{
    if (m->plans)
        for (int i = 0; i < m->num_layers; i++)
            for (int k = 0; k < m->layers[i].num_mm; k++)
                gemm_plan_free(&m->layers[i].mm[k]);
    free(m->plans);
    free(m->arena);
    memset(m, 0, sizeof *m);
}

void model_init_params(Model *m, uint64_t seed)
{
    model_params_changed(m);
    for (int i = 0; i < m->num_layers; i++) {
        const LayerOps *ops = layer_ops(m->layers[i].spec.kind);
        if (ops->init)
            ops->init(&m->layers[i], m->params, seed);
    }
}

/* ---- passes ----------------------------------------------------------------- */

/* The input of layer i during a pass whose model input is x. */
static const float *layer_input(const Model *m, int i, const float *x)
{
    for (int k = i - 1; k >= 0; k--)
        if (!m->layers[k].fused)
            return m->layers[k].act;
    return x;
}

const float *model_forward(Model *m, const float *x, int B, int train, uint64_t dropout_key,
                           const uint64_t *sample_ids)
{
    m->train = train;
    m->dropout_key = dropout_key;
    m->sample_ids = sample_ids;
    /* evaluation passes convert into the private copy: they run between
     * steps, where anything (a restored best epoch, a loaded file) may have
     * written params */
    m->pass_bf16 = train && m->bf16_fresh ? m->params_bf16 : NULL;
    const LayerCtx c = {.params = m->params, .grads = m->grads, .train = train,
                        .dropout_key = dropout_key, .sample_ids = sample_ids,
                        .params_bf16 = m->pass_bf16 ? m->pass_bf16 : m->own_bf16,
                        .convert_bf16 = !m->pass_bf16};
    const float *in = x;
    for (int i = 0; i < m->num_layers; i++) {
        const Layer *l = &m->layers[i];
        if (l->fused)
            continue;
        if (l->in_place && in == x) /* never write into the caller's input */
            memcpy(l->act, x, sizeof(float) * (size_t)B * shape_size(l->in));
        layer_ops(l->spec.kind)->forward(l, &c, in, l->act, B);
        in = l->act;
    }
    return in;
}

double model_backward(Model *m, const float *x, const uint8_t *labels, int B, float grad_scale,
                      int *pred)
{
    int first = 0; /* layers before the first with parameters need no backward */
    while (first < m->num_layers && !layer_ops(m->layers[first].spec.kind)->has_params)
        first++;
    float *d = m->delta[0], *other = m->delta[1];
    const LayerCtx c = {.params = m->params, .grads = m->grads, .train = m->train,
                        .dropout_key = m->dropout_key, .sample_ids = m->sample_ids,
                        .params_bf16 = m->pass_bf16 ? m->pass_bf16 : m->own_bf16};
    const double loss = softmax_xent(d, pred, layer_input(m, m->num_layers, x), labels, B,
                                     m->classes, grad_scale, m->label_smoothing);
    for (int i = m->num_layers - 1; i >= first; i--) {
        const Layer *l = &m->layers[i];
        if (l->fused)
            continue;
        const float *in = layer_input(m, i, x);
        if (l->in_place) {
            layer_ops(l->spec.kind)->backward(l, &c, in, l->act, d, d, B);
            continue;
        }
        float *dx = i > first ? other : NULL;
        layer_ops(l->spec.kind)->backward(l, &c, in, l->act, d, dx, B);
        if (dx) {
            other = d;
            d = dx;
        }
    }
    return loss;
}

void model_zero_grads(Model *m)
{
    memset(m->grads, 0, sizeof(float) * (m->param_floats + MODEL_CTRL_FLOATS));
}

void model_normalize_input(const Model *m, float *x, int B)
{
    if (m->in_mean == 0.0f && m->in_scale == 1.0f)
        return;
    standardize(x, (size_t)B * shape_size(m->input), m->in_mean, m->in_scale);
}

uint64_t model_checksum(const Model *m)
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

const Tensor *model_tensor(const Model *m, const char *name)
{
    for (int t = 0; t < m->num_tensors; t++)
        if (strcmp(m->tensors[t].name, name) == 0)
            return &m->tensors[t];
    return NULL;
}

/* 1 when the stack is dense(+relu(+dropout)) blocks and a dense output. */
static int is_plain_mlp(const Model *m)
{
    for (int i = 0; i < m->num_layers; i++)
        if (m->layers[i].spec.kind != LAYER_DENSE && !m->layers[i].fused)
            return 0;
    return 1;
}

void model_describe(char *buf, size_t size, const Model *m)
{
    if (!is_plain_mlp(m)) {
        if (model_spec_format(buf, size, &m->spec))
            snprintf(buf, size, "(%d layers)", m->num_layers);
        return;
    }
    snprintf(buf, size, "%zu", shape_size(m->input));
    for (int i = 0; i < m->num_layers; i++)
        if (m->layers[i].spec.kind == LAYER_DENSE)
            snprintf(buf + strlen(buf), size - strlen(buf), "-%d", m->layers[i].spec.units);
}

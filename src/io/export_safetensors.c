/* export_safetensors: the safetensors file of a model's torchnet modules:
 * the header as JSON through cJSON, then the tensors' bytes in the order
 * of their offsets. Built in memory and written atomically. No printing. */
#include "mnist/export_safetensors.h"
#include "mnist/torchnet.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Adds name: {"dtype": "F32", "shape": dims, "data_offsets": [begin, end]}
 * and moves *offset past the tensor. */
static int tensor_entry(cJSON *h, const char *name, int ndim, const int *dims, size_t count,
                        size_t *offset)
{
    cJSON *t = cJSON_AddObjectToObject(h, name);
    const double range[2] = {(double)*offset, (double)(*offset + 4 * count)};
    *offset += 4 * count;
    if (!t || !cJSON_AddStringToObject(t, "dtype", "F32"))
        return -1;
    cJSON *shape = cJSON_CreateIntArray(dims, ndim);
    if (!shape || !cJSON_AddItemToObject(t, "shape", shape)) {
        cJSON_Delete(shape);
        return -1;
    }
    cJSON *offsets = cJSON_CreateDoubleArray(range, 2);
    if (!offsets || !cJSON_AddItemToObject(t, "data_offsets", offsets)) {
        cJSON_Delete(offsets);
        return -1;
    }
    return 0;
}

/* 0, or -1 when out of memory. */
static int metadata(cJSON *h, const TorchNet *t)
{
    cJSON *md = cJSON_AddObjectToObject(h, "__metadata__");
    char classes[16], shape[64], mean[32], scale[32];
    snprintf(classes, sizeof classes, "%d", t->classes);
    snprintf(shape, sizeof shape, "[%d, %d, %d]", t->input.c, t->input.h, t->input.w);
    torchnet_float_text(mean, sizeof mean, t->in_mean);
    torchnet_float_text(scale, sizeof scale, t->in_scale);
    char *layers = torchnet_json(t);
    const char *kv[] = {"format", "pt", "producer", "mnist-dist " MNIST_VERSION,
                        "model", t->spec, "classes", classes, "input_shape", shape,
                        "input_mean", mean, "input_scale", scale,
                        "pixels", "x / 255 in [0, 1], then (x - input_mean) * input_scale",
                        "torch_layers", layers ? layers : ""};
    int rc = md && layers ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < sizeof kv / sizeof kv[0]; i += 2)
        rc = cJSON_AddStringToObject(md, kv[i], kv[i + 1]) ? 0 : -1;
    free(layers);
    return rc;
}

/* The JSON header; *data_bytes receives the size of the data section. */
static char *header_json(const TorchNet *t, size_t *data_bytes)
{
    cJSON *h = cJSON_CreateObject();
    if (!h)
        return NULL;
    int rc = metadata(h, t);
    size_t offset = 0;
    for (int i = 0; i < t->count; i++) {
        const TorchModule *mod = &t->mods[i];
        if (!mod->weight)
            continue;
        char name[64];
        snprintf(name, sizeof name, "layers.%d.weight", i);
        rc |= tensor_entry(h, name, mod->wndim, mod->wdims, mod->wcount, &offset);
        snprintf(name, sizeof name, "layers.%d.bias", i);
        rc |= tensor_entry(h, name, 1, (const int[]){(int)mod->bcount}, mod->bcount, &offset);
    }
    *data_bytes = offset;
    char *text = rc == 0 ? cJSON_PrintUnformatted(h) : NULL;
    cJSON_Delete(h);
    return text;
}

static void put_f32le(uint8_t *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t w;
        memcpy(&w, &src[i], 4);
        for (int k = 0; k < 4; k++)
            dst[4 * i + (size_t)k] = (uint8_t)(w >> (8 * k));
    }
}

/* The whole file in memory: length, padded header, tensors. */
static uint8_t *file_image(const TorchNet *t, size_t *bytes)
{
    size_t data = 0;
    char *json = header_json(t, &data);
    if (!json)
        return NULL;
    const size_t hlen = (strlen(json) + 7) / 8 * 8; /* the data starts 8-byte aligned */
    *bytes = 8 + hlen + data;
    uint8_t *buf = malloc(*bytes);
    if (buf) {
        for (int k = 0; k < 8; k++)
            buf[k] = (uint8_t)((uint64_t)hlen >> (8 * k));
        memset(buf + 8, ' ', hlen);
        memcpy(buf + 8, json, strlen(json));
        uint8_t *p = buf + 8 + hlen;
        for (int i = 0; i < t->count; i++) {
            const TorchModule *mod = &t->mods[i];
            if (!mod->weight)
                continue;
            put_f32le(p, mod->weight, mod->wcount), p += 4 * mod->wcount;
            put_f32le(p, mod->bias, mod->bcount), p += 4 * mod->bcount;
        }
    }
    free(json);
    return buf;
}

int export_safetensors_write(const char *path, const Model *m, Error *e)
{
    TorchNet *t = malloc(sizeof *t);
    if (!t)
        return err_set(e, "%s: out of memory", path);
    if (torchnet_build(t, m, e)) {
        free(t);
        return err_prefix(e, "%s", path);
    }
    size_t bytes = 0;
    uint8_t *buf = file_image(t, &bytes);
    const int rc = buf ? file_write_atomic(path, buf, bytes, e)
                       : err_set(e, "%s: out of memory building the safetensors header", path);
    free(buf);
    torchnet_free(t);
    free(t);
    return rc;
}

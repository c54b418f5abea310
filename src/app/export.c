/* export: `mnist-dist export`: reads a checkpoint (validated, as evaluate
 * and predict read it) and writes it as ONNX or safetensors through temp +
 * rename. Rank 0 does the work; other ranks only wait for the status. */
#include "mnist/export.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mnist/ckpt.h"
#include "mnist/export_onnx.h"
#include "mnist/export_safetensors.h"

static int export_file(const Config *cfg, Error *e)
{
    CkptModel desc;
    if (ckpt_read_model(cfg->model_path, &desc, e))
        return -1;
    Model m;
    if (model_create(&m, &desc.spec, desc.input, desc.classes, 1, e))
        return err_prefix(e, "%s", cfg->model_path);
    CkptMeta *meta = malloc(sizeof *meta);
    History h = {0};
    int rc = meta ? ckpt_read(cfg->model_path, &m, NULL, meta, &h, e)
                  : err_set(e, "out of memory");
    const int onnx = strcmp(cfg->export_format, "onnx") == 0;
    if (rc == 0)
        rc = onnx ? export_onnx_write(cfg->export_path, &m, cfg->model_path, e)
                  : export_safetensors_write(cfg->export_path, &m, e);
    if (rc == 0 && !cfg->quiet) {
        char layers[512];
        model_describe(layers, sizeof layers, &m);
        printf("export: %s (%s, %zu parameters, input %dx%dx%d, %d classes) -> %s (%s)\n",
               cfg->model_path, layers, m.num_params, m.input.h, m.input.w, m.input.c, m.classes,
               cfg->export_path, onnx ? "ONNX opset 13" : "safetensors");
    }
    free(meta);
    history_free(&h);
    model_free(&m);
    return rc;
}

int export_run(const Config *cfg, const Comm *comm)
{
    Error e = {{0}};
    int status = 0;
    if (comm->rank == 0) {
        status = export_file(cfg, &e) ? EXIT_FAIL : EXIT_OK;
        if (status)
            fprintf(stderr, "mnist-dist: error: %s\n", e.msg);
        fflush(stdout);
    }
    comm_bcast(comm, &status, sizeof status, 0);
    return status;
}

/* evaluate: `mnist-dist evaluate`: a checkpoint's metrics and the same
 * report as after training, on labelled data sharded across ranks. Rank 0
 * writes files. */
#include "mnist/evaluate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mnist/report.h"
#include "mnist/runtime.h"

int evaluate_run(const Config *cfg_in, const Comm *comm)
{
    const double t_start = time_now_s();
    Config cfg = *cfg_in;
    Error e = {{0}};
    Model m = {0};
    CkptMeta meta = {0};
    History hist = {0};
    Dataset d = {0};
    EvalBuf buf = {0};
    Metrics tm = {0};
    Mistake *mistakes = malloc(sizeof(Mistake) * REPORT_MISTAKES);
    int n_mistakes = 0;
    size_t rows = 0, first = 0;
    const int threads = rt_threads(&cfg, comm);
    hid_t fapl = comm_h5_fapl(comm);
    int status = fapl < 0       ? err_set(&e, "cannot create an MPI-IO file access list")
                 : !mistakes    ? err_set(&e, "out of memory")
                                : 0;
    if ((status = rt_agree(comm, status, &e)))
        goto done;
    if ((status = rt_load_model(cfg.model_path, comm, RT_EVAL_BATCH, &m, &meta, &hist, &e)))
        goto done;
    const H5Names names = rt_names(&cfg);
    status = rt_load_shard(cfg.test_path, &names, fapl, comm, 0, SIZE_MAX, 1, &rows, &first, &d,
                           &e);
    if (status == 0)
        status = rt_check_fits(&m, cfg.model_path, &d, cfg.test_path, first, &e);
    if (status == 0)
        status = evalbuf_alloc(&buf, RT_EVAL_BATCH, &m, &e);
    if (status == 0)
        status = metrics_init(&tm, m.classes, &e);
    if ((status = rt_agree(comm, status, &e)))
        goto done;
    if ((status = rt_run_dir(&cfg, comm, "-eval", NULL, &e)))
        goto done;

    rt_evaluate(&m, &d, first, &buf, &tm, mistakes, &n_mistakes);
    rt_reduce_eval(comm, &tm, mistakes, &n_mistakes);
    if (comm->rank == 0) {
        char report_dir[CONFIG_PATH_MAX + 16], layers[512], versions[512];
        snprintf(report_dir, sizeof report_dir, "%s/report", cfg.out_dir);
        model_describe(layers, sizeof layers, &m);
        rt_versions(versions, sizeof versions);
        const RunInfo run = {
            .command = "evaluate", .train_path = "", .test_path = cfg.test_path,
            .checkpoint = cfg.model_path, .layers = layers, .model = &m, .optimizer = "",
            .versions = versions, .ranks = comm->size, .threads = threads,
            .epochs_run = meta.epoch, .test_rows = (int64_t)rows,
            .num_params = (int64_t)m.num_params, .wall_s = time_now_s() - t_start,
            .config_json = "{}", .mistakes = mistakes, .n_mistakes = n_mistakes, .augment = ""};
        status = report_write(report_dir, &tm, &hist, &run, &e);
        if (status == 0) {
            Scores s;
            metrics_scores(&tm, &s);
            printf("%s on %s: accuracy %.2f%% (%lld/%lld), loss %.4f\n", cfg.model_path,
                   cfg.test_path, 100 * s.accuracy, (long long)s.correct, (long long)s.count,
                   s.loss);
            if (!cfg.quiet)
                printf("report: %s/report.html (also report.md, metrics.json)\n", report_dir);
            fflush(stdout);
        }
    }
    status = rt_agree(comm, status, &e);
done:
    if (fapl >= 0)
        H5Pclose(fapl);
    free(mistakes);
    metrics_free(&tm);
    evalbuf_free(&buf);
    dataset_free(&d);
    history_free(&hist);
    model_free(&m);
    return status;
}

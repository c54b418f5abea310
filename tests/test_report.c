/* Unit tests for metrics and the report files: scores from a known
 * confusion matrix, and metrics.json / report.md written atomically. */
#include <CUnit/CUnit.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mnist/report.h"
#include "test_util.h"

/* Class 0: 8 right, 2 called 1. Class 1: 5 right. Class 2: 3 right, 1
 * called 0. Classes 3..9: no samples, never predicted. */
static void known_metrics(Metrics *m)
{
    Error e;
    CU_ASSERT_FATAL(metrics_init(m, 10, &e) == 0);
    uint8_t labels[19];
    int pred[19], n = 0;
    for (int i = 0; i < 8; i++)
        labels[n] = 0, pred[n++] = 0;
    for (int i = 0; i < 2; i++)
        labels[n] = 0, pred[n++] = 1;
    for (int i = 0; i < 5; i++)
        labels[n] = 1, pred[n++] = 1;
    for (int i = 0; i < 3; i++)
        labels[n] = 2, pred[n++] = 2;
    labels[n] = 2, pred[n++] = 0;
    metrics_add(m, labels, pred, n);
    m->loss_sum = 3.8;
}

static void test_scores_by_hand(void)
{
    Metrics m;
    known_metrics(&m);
    CU_ASSERT_EQUAL(m.confusion[0 * 10 + 1], 2);
    CU_ASSERT_EQUAL(m.confusion[2 * 10 + 0], 1);
    Scores s;
    metrics_scores(&m, &s);
    CU_ASSERT_EQUAL(s.count, 19);
    CU_ASSERT_EQUAL(s.correct, 16);
    CU_ASSERT_DOUBLE_EQUAL(s.accuracy, 16.0 / 19, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(s.loss, 0.2, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(s.precision[0], 8.0 / 9, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(s.recall[0], 0.8, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(s.f1[0], 2 * (8.0 / 9) * 0.8 / (8.0 / 9 + 0.8), 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(s.precision[1], 5.0 / 7, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(s.recall[1], 1.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(s.precision[2], 1.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(s.recall[2], 0.75, 1e-12);
    CU_ASSERT_EQUAL(s.support[0], 10);
    CU_ASSERT_EQUAL(s.support[5], 0);
    CU_ASSERT_EQUAL(s.precision[5], 0.0);
    CU_ASSERT_EQUAL(s.f1[5], 0.0);
    double f1sum = s.f1[0] + s.f1[1] + s.f1[2];
    CU_ASSERT_DOUBLE_EQUAL(s.macro_f1, f1sum / 10, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(s.weighted_recall, s.accuracy, 1e-12); /* always true */
    CU_ASSERT_DOUBLE_EQUAL(s.weighted_f1, (10 * s.f1[0] + 5 * s.f1[1] + 4 * s.f1[2]) / 19, 1e-12);
    metrics_free(&m);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = calloc((size_t)n + 1, 1);
    if (fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    fclose(f);
    return s;
}

static void test_report_files(void)
{
    char dir[256], rdir[300], path[400];
    tu_tmpdir(dir, sizeof dir);
    snprintf(rdir, sizeof rdir, "%s/report", dir);
    Metrics m;
    known_metrics(&m);
    History h = {0};
    Error e;
    EpochStats s1 = {1, 0.5, 0.8, NAN, NAN, 2.0, 1000}, s2 = {2, 0.25, 0.9, 0.3, 0.91, 2.0, 1100};
    history_push(&h, &s1, &e);
    history_push(&h, &s2, &e);
    Mistake mk[2] = {{.prob = 0.99f, .label = 4, .pred = 9, .index = 17, .h = 28, .w = 28},
                     {.prob = 0.75f, .label = 3, .pred = 5, .index = 2, .h = 28, .w = 28}};
    mk[0].pixels[300] = 255;
    RunInfo run = {.command = "train", .train_path = "train.h5", .test_path = "test \"quoted\".h5",
                   .checkpoint = "ck.h5", .layers = "784-512-512-10", .optimizer = "Adam lr 0.001",
                   .versions = "v", .ranks = 2, .threads = 3, .epochs_run = 2, .train_rows = 100,
                   .val_rows = 10, .test_rows = 19, .num_params = 12345, .wall_s = 10.5,
                   .train_s = 4.0, .samples_per_s = 1050,
                   .config_json = "{\"lr\":0.001,\"layers\":\"512,512\"}", .mistakes = mk,
                   .n_mistakes = 2};
    /* the layer table: a small CNN (its layout only: the report reads no weights) */
    static Model net;
    ModelSpec spec;
    CU_ASSERT_FATAL(model_spec_model(&spec, "conv:4x3x3/p1,relu,maxpool:2,flatten,dense:6,relu", 10,
                                     &e) == 0);
    CU_ASSERT_FATAL(model_layout(&net, &spec, (Shape){8, 8, 1}, 10, &e) == 0);
    run.model = &net;
    CU_ASSERT_FATAL(report_write(rdir, &m, &h, &run, &e) == 0);
    /* metrics.json, report.md, report.html and four charts; no temp files */
    CU_ASSERT_EQUAL(tu_count_entries(rdir), 7);
    snprintf(path, sizeof path, "%s/metrics.json", rdir);
    char *text = slurp(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    cJSON *root = cJSON_Parse(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    cJSON *test = cJSON_GetObjectItem(root, "test");
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(test, "accuracy")->valuedouble, 16.0 / 19, 1e-12);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(test, "data")->valuestring, "test \"quoted\".h5");
    cJSON *per = cJSON_GetObjectItem(test, "per_class");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(per), 10);
    cJSON *c0 = cJSON_GetArrayItem(per, 0);
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(c0, "recall")->valuedouble, 0.8, 1e-12);
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(c0, "support")->valueint, 10);
    CU_ASSERT_PTR_NOT_NULL(cJSON_GetObjectItem(test, "macro_avg"));
    CU_ASSERT_PTR_NOT_NULL(cJSON_GetObjectItem(test, "weighted_avg"));
    cJSON *cm = cJSON_GetObjectItem(test, "confusion_matrix");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cm), 10);
    CU_ASSERT_EQUAL(cJSON_GetArrayItem(cJSON_GetArrayItem(cm, 0), 1)->valueint, 2);
    CU_ASSERT_EQUAL(cJSON_GetArrayItem(cJSON_GetArrayItem(cm, 2), 0)->valueint, 1);
    cJSON *hist = cJSON_GetObjectItem(root, "history");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(hist), 2);
    CU_ASSERT(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(hist, 0), "val_loss")));
    CU_ASSERT_DOUBLE_EQUAL(
        cJSON_GetObjectItem(cJSON_GetArrayItem(hist, 1), "val_accuracy")->valuedouble, 0.91, 1e-12);
    cJSON *mk_json = cJSON_GetObjectItem(test, "most_confident_mistakes");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(mk_json), 2);
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(cJSON_GetArrayItem(mk_json, 0), "row")->valueint, 17);
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(cJSON_GetArrayItem(mk_json, 0), "predicted")->valueint, 9);
    cJSON *r = cJSON_GetObjectItem(root, "run");
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(r, "ranks")->valueint, 2);
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(r, "threads_per_rank")->valueint, 3);
    cJSON *lt = cJSON_GetObjectItem(r, "layer_table");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(lt), 7);
    cJSON *l0 = cJSON_GetArrayItem(lt, 0), *l2 = cJSON_GetArrayItem(lt, 2);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(l0, "layer")->valuestring, "conv:4x3x3/s1/p1");
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(l0, "parameters")->valueint, 40);
    CU_ASSERT_EQUAL(cJSON_GetArrayItem(cJSON_GetObjectItem(l2, "output_shape"), 0)->valueint, 4);
    CU_ASSERT_EQUAL(cJSON_GetArrayItem(cJSON_GetObjectItem(l2, "output_shape"), 2)->valueint, 4);
    cJSON *cfg = cJSON_GetObjectItem(root, "config");
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(cfg, "lr")->valuedouble, 0.001, 1e-15);
    cJSON_Delete(root);
    free(text);
    snprintf(path, sizeof path, "%s/report.md", rdir);
    text = slurp(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT(strstr(text, "Test accuracy: 84.21%") != NULL);
    CU_ASSERT(strstr(text, "| **0** | 0.8889 | 0.8000 |") != NULL);
    CU_ASSERT(strstr(text, "| **0** | **8** | 2 |") != NULL);
    CU_ASSERT(strstr(text, "![confusion matrix") != NULL);
    CU_ASSERT(strstr(text, "## Layers") != NULL);
    CU_ASSERT(strstr(text, "| 1 | conv:4x3x3/s1/p1 | 8 x 8 x 4 | 40 |") != NULL);
    CU_ASSERT(strstr(text, "| 2 | relu (fused into the layer before) | 8 x 8 x 4 | 0 |") != NULL);
    CU_ASSERT(strstr(text, "| 4 | flatten | 1 x 1 x 64 | 0 |") != NULL);
    CU_ASSERT(strstr(text, "| 7 | dense:10 | 1 x 1 x 10 | 70 |") != NULL);
    CU_ASSERT(strstr(text, "|  | total |  | 500 |") != NULL);
    free(text);
    snprintf(path, sizeof path, "%s/report.html", rdir);
    text = slurp(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    int images = 0;
    for (const char *p = text; (p = strstr(p, "src=\"data:image/png;base64,iVBORw0KGgo")); p++)
        images++;
    CU_ASSERT_EQUAL(images, 4); /* every chart embedded as a PNG (base64 of its signature) */
    CU_ASSERT(strstr(text, "Test accuracy <b>84.21%</b>") != NULL);
    CU_ASSERT(strstr(text, "test &quot;quoted&quot;.h5") != NULL); /* escaped */
    CU_ASSERT(strstr(text, "<td class=\"diag\">8</td>") != NULL);
    CU_ASSERT(strstr(text, "Adam lr 0.001") != NULL);
    CU_ASSERT(strstr(text, "<script") == NULL);
    free(text);
    history_free(&h);
    metrics_free(&m);
    tu_rmrf(dir);
}

/* 47 classes (EMNIST balanced): per-class rows, a 47 x 47 matrix in
 * metrics.json and in report.md, charts drawn. */
static void test_report_many_classes(void)
{
    char dir[256], rdir[300], path[400];
    tu_tmpdir(dir, sizeof dir);
    snprintf(rdir, sizeof rdir, "%s/report", dir);
    Metrics m;
    Error e;
    CU_ASSERT_FATAL(metrics_init(&m, 47, &e) == 0);
    uint8_t labels[94];
    int pred[94];
    for (int i = 0; i < 94; i++)
        labels[i] = (uint8_t)(i % 47), pred[i] = i % 5 ? i % 47 : (i + 1) % 47;
    metrics_add(&m, labels, pred, 94);
    History h = {0};
    RunInfo run = {.command = "evaluate", .train_path = "", .test_path = "emnist.h5",
                   .checkpoint = "c", .layers = "784-47", .optimizer = "", .versions = "",
                   .ranks = 1, .threads = 1, .config_json = "{}"};
    CU_ASSERT_FATAL(report_write(rdir, &m, &h, &run, &e) == 0);
    snprintf(path, sizeof path, "%s/metrics.json", rdir);
    char *text = slurp(path);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    cJSON *test = cJSON_GetObjectItem(root, "test");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItem(test, "per_class")), 47);
    cJSON *cm = cJSON_GetObjectItem(test, "confusion_matrix");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cm), 47);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetArrayItem(cm, 46)), 47);
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(test, "samples")->valueint, 94);
    cJSON_Delete(root);
    free(text);
    snprintf(path, sizeof path, "%s/report.md", rdir);
    text = slurp(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT(strstr(text, "| **46** |") != NULL); /* the last class's row */
    free(text);
    metrics_free(&m);
    tu_rmrf(dir);
}

static void test_mistakes_keep_the_most_confident(void)
{
    Mistake list[3];
    int n = 0;
    const float probs[] = {0.5f, 0.9f, 0.7f, 0.95f, 0.6f, 0.9f};
    for (int i = 0; i < 6; i++) {
        Mistake m = {.prob = probs[i], .label = 1, .pred = 2, .index = 100 - i};
        mistakes_insert(list, &n, 3, &m);
    }
    CU_ASSERT_EQUAL(n, 3);
    CU_ASSERT_EQUAL(list[0].prob, 0.95f);
    /* equal confidence: the lower row first, whatever the arrival order */
    CU_ASSERT_EQUAL(list[1].index, 95);
    CU_ASSERT_EQUAL(list[2].index, 99);
}

static void test_report_unwritable_dir(void)
{
    Metrics m;
    known_metrics(&m);
    History h = {0};
    RunInfo run = {.command = "evaluate", .train_path = "", .test_path = "b", .checkpoint = "c",
                   .layers = "784-10", .optimizer = "", .versions = "", .ranks = 1, .threads = 1,
                   .config_json = "{}"};
    Error e = {{0}};
    CU_ASSERT_EQUAL(report_write("/proc/mnist-report", &m, &h, &run, &e), -1);
    CU_ASSERT(strstr(e.msg, "/proc/mnist-report") != NULL);
    metrics_free(&m);
}

int test_report_register(void)
{
    CU_pSuite s = CU_add_suite("report", NULL, NULL);
    if (!s)
        return -1;
    return (CU_add_test(s, "scores from a known confusion matrix", test_scores_by_hand) &&
            CU_add_test(s, "metrics.json and report.md", test_report_files) &&
            CU_add_test(s, "47 classes", test_report_many_classes) &&
            CU_add_test(s, "mistakes keep the most confident",
                        test_mistakes_keep_the_most_confident) &&
            CU_add_test(s, "unwritable directory", test_report_unwritable_dir))
               ? 0
               : -1;
}

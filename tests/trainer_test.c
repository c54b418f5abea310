/* The trainer in-process, under mpiexec with 1, 2 and 3 ranks (no shelling
 * out): on synthetic data, for the default and the exact exchange,
 *  - (MLPs and a small CNN) a run stopped in mid-epoch (the stop@S hook, as a signal would) exits
 *    with EXIT_STOPPED and a checkpoint, and resuming it ends with the same
 *    bits (parameters and Adam moments) as the run that never stopped;
 *  - the trained model beats chance by far on the test set;
 *  - a 47-class data set (the class count from the file) trains a 47-way
 *    model.
 * Every rank returns the same exit status: the agreed number of failures. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mnist/ckpt.h"
#include "mnist/comm.h"
#include "mnist/config.h"
#include "mnist/h5data.h"
#include "mnist/h5util.h"
#include "mnist/model.h"
#include "mnist/optim.h"
#include "mnist/train.h"
#include "test_util.h"

static char g_dir[256];

/* Parses a command line of train options into cfg (the same for every rank). */
static void config_of(Config *cfg, const char *args)
{
    char buf[2048], *argv[64];
    int argc = 0;
    snprintf(buf, sizeof buf, "%s", args);
    argv[argc++] = "mnist-dist";
    for (char *t = strtok(buf, " "); t && argc < 63; t = strtok(NULL, " "))
        argv[argc++] = t;
    config_defaults(cfg);
    Error e;
    if (config_parse(cfg, argc, argv, &e)) {
        fprintf(stderr, "config: %s\n", e.msg);
        exit(2);
    }
}

/* Runs train with the given options and MNIST_DIST_FAULT (NULL: none). */
static int train(const Comm *world, const char *fault, const char *fmt, const char *out,
                 const char *extra)
{
    char args[2048];
    snprintf(args, sizeof args, fmt, g_dir, g_dir, out, extra);
    Config cfg;
    config_of(&cfg, args);
    if (fault)
        setenv("MNIST_DIST_FAULT", fault, 1);
    const int status = train_run(&cfg, world);
    unsetenv("MNIST_DIST_FAULT");
    return status;
}

/* Rank 0: the parameters and moments of checkpoint path. */
static int load(const char *path, Model *m, Optimizer *o)
{
    Error e;
    CkptModel desc;
    CkptMeta meta;
    History h = {0};
    const OptimConfig oc = {.lr = 1.0f};
    int rc = ckpt_read_model(path, &desc, &e) == 0 &&
                     model_create(m, &desc.spec, desc.input, desc.classes, 1, &e) == 0 &&
                     optim_create(o, &oc, m->param_floats, m->tensors, m->num_tensors, &e) == 0 &&
                     ckpt_read(path, m, o, &meta, &h, &e) == 0
                 ? 0
                 : -1;
    if (rc)
        fprintf(stderr, "load %s: %s\n", path, e.msg);
    history_free(&h);
    return rc;
}

/* Rank 0: 1 when both checkpoints hold the same parameters and moments. */
static int same_checkpoints(const char *a, const char *b)
{
    Model ma = {0}, mb = {0};
    Optimizer oa = {0}, ob = {0};
    int same = load(a, &ma, &oa) == 0 && load(b, &mb, &ob) == 0 &&
               ma.param_floats == mb.param_floats &&
               memcmp(ma.params, mb.params, sizeof(float) * ma.param_floats) == 0 &&
               memcmp(oa.m, ob.m, sizeof(float) * 2 * oa.n) == 0;
    model_free(&ma), model_free(&mb);
    optim_free(&oa), optim_free(&ob);
    return same;
}

/* Rank 0: the test accuracy recorded in a run's metrics.json. */
static double accuracy_of(const char *run)
{
    char path[512], buf[1 << 16];
    snprintf(path, sizeof path, "%s/%s/report/metrics.json", g_dir, run);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    const char *p = strstr(buf, "\"accuracy\":");
    return p ? atof(p + 11) : -1;
}

#define CNN "conv:4x3x3/s2/p1,relu,conv:6x3x3,relu,maxpool:2,dropout:0.2,flatten,dense:16,relu"

static const char *ARGS = "--train %s/train.h5 --test %s/test.h5 --out %s --val-split 100 "
                          "--layers 32 --batch-size 24 --epochs 2 --checkpoint-every 0 --quiet "
                          "--seed 3 %s";

/* Straight through vs stopped at global step 40 (epoch 2 of 2) and resumed. */
static void test_stop_and_resume(const Comm *world, const char *name, const char *mode)
{
    char straight[400], stopped[400];
    snprintf(straight, sizeof straight, "%s/straight%s", g_dir, name);
    snprintf(stopped, sizeof stopped, "%s/stopped%s", g_dir, name);
    int rc = train(world, NULL, ARGS, straight, mode);
    TU_CHECK(rc == 0, "%s: straight run exited %d", mode, rc);
    rc = train(world, "stop@40", ARGS, stopped, mode);
    TU_CHECK(rc == EXIT_STOPPED, "%s: the stop@40 run exited %d, not %d", mode, rc, EXIT_STOPPED);
    char dir[480], mid[512];
    snprintf(dir, sizeof dir, "%s/checkpoints", stopped);
    /* 37 steps an epoch: step 40 is step 3 of epoch 2 */
    snprintf(mid, sizeof mid, "%s/epoch-0001-step-0000003.h5", dir);
    if (world->rank == 0)
        TU_CHECK(access(mid, R_OK) == 0 && tu_count_entries(dir) == 1,
                 "%s: the stop left no mid-epoch checkpoint %s (alone)", mode, mid);
    char resume[480];
    snprintf(resume, sizeof resume, "%s --resume auto", mode);
    rc = train(world, NULL, ARGS, stopped, resume);
    TU_CHECK(rc == 0, "%s: the resumed run exited %d", mode, rc);
    if (world->rank == 0) {
        char a[512], b[512];
        snprintf(a, sizeof a, "%s/checkpoints/epoch-0002.h5", straight);
        snprintf(b, sizeof b, "%s/checkpoints/epoch-0002.h5", stopped);
        /* the mid-epoch checkpoint is superseded by epoch 2's */
        TU_CHECK(access(mid, R_OK) != 0 && tu_count_entries(dir) == 1,
                 "%s: the mid-epoch checkpoint outlived the epoch-2 checkpoint", mode);
        TU_CHECK(same_checkpoints(a, b), "%s: stopped and resumed differs from straight through",
                 mode);
        char run[64];
        snprintf(run, sizeof run, "straight%s", name);
        const double acc = accuracy_of(run);
        TU_CHECK(acc > 0.6, "%s: test accuracy %g, not above 0.6 (chance is 0.1)", mode, acc);
    }
}

/* 47 classes, declared by the file, give a 47-way output layer. */
static void test_more_classes(const Comm *world)
{
    char out[400];
    snprintf(out, sizeof out, "%s/c47", g_dir);
    char args[400];
    snprintf(args, sizeof args, "--train %%s/train47.h5 --test %%s/test47.h5 --out %%s "
                                "--val-split 0 --layers 16 --batch-size 24 --epochs 1 --quiet %%s");
    const int rc = train(world, NULL, args, out, "");
    TU_CHECK(rc == 0, "47 classes: exited %d", rc);
    if (world->rank == 0) {
        char path[512];
        snprintf(path, sizeof path, "%s/checkpoints/epoch-0001.h5", out);
        CkptModel desc;
        Error e;
        TU_CHECK(ckpt_read_model(path, &desc, &e) == 0 && desc.classes == 47 &&
                     desc.input.h == 28 && desc.spec.layers[desc.spec.count - 1].units == 47,
                 "47 classes: the checkpoint does not describe a 47-way model");
    }
}

/* Rank 0 writes the data sets; labels of the 47-class set reach 46. */
static void write_data(const Comm *world)
{
    if (world->rank == 0) {
        Dataset d = {0};
        Error e;
        tu_synthetic(&d, 1000, 7);
        char path[512];
        snprintf(path, sizeof path, "%s/train.h5", g_dir);
        TU_CHECK(h5data_write(path, &d, "synthetic", &e) == 0, "%s", e.msg);
        for (size_t i = 0; i < d.rows; i++)
            d.labels[i] = (uint8_t)((d.labels[i] * 5 + i) % 47);
        d.classes = 47;
        snprintf(path, sizeof path, "%s/train47.h5", g_dir);
        TU_CHECK(h5data_write(path, &d, "synthetic", &e) == 0, "%s", e.msg);
        snprintf(path, sizeof path, "%s/test47.h5", g_dir);
        TU_CHECK(h5data_write(path, &d, "synthetic", &e) == 0, "%s", e.msg);
        dataset_free(&d);
        tu_synthetic(&d, 300, 8);
        snprintf(path, sizeof path, "%s/test.h5", g_dir);
        TU_CHECK(h5data_write(path, &d, "synthetic", &e) == 0, "%s", e.msg);
        dataset_free(&d);
    }
    comm_barrier(world);
}

int main(int argc, char **argv)
{
    Comm world;
    if (comm_init(&argc, &argv, &world)) {
        fprintf(stderr, "MPI init failed\n");
        return 1;
    }
    h5_quiet();
    if (world.rank == 0)
        tu_tmpdir(g_dir, sizeof g_dir);
    comm_bcast(&world, g_dir, sizeof g_dir, 0);
    write_data(&world);
    test_stop_and_resume(&world, "", "");
    test_stop_and_resume(&world, "-exact", "--deterministic --logical-shards 6");
    /* a CNN (stride, padding, pooling, dropout after pooling) both ways */
    test_stop_and_resume(&world, "-cnn", "--model " CNN);
    test_stop_and_resume(&world, "-cnn-exact", "--model " CNN " --deterministic --logical-shards 6");
    test_more_classes(&world);
    comm_barrier(&world);
    if (world.rank == 0)
        tu_rmrf(g_dir);
    int64_t f = tu_failures;
    comm_allreduce_sum_i64(&world, &f, 1);
    if (world.rank == 0)
        printf("trainer_test: %d ranks: %s (%d failed checks)\n", world.size, f ? "FAIL" : "PASS",
               (int)f);
    comm_finalize();
    return f > 255 ? 255 : (int)f;
}

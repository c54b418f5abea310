/* Unit tests for the command line: defaults, good and bad values, unknown
 * options, subcommands, and usage text generated from the table. */
#include <CUnit/CUnit.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mnist/config.h"

static int parse(Config *c, Error *e, const char *line)
{
    char buf[1024], *argv[32];
    int argc = 0;
    snprintf(buf, sizeof buf, "%s", line);
    argv[argc++] = "mnist-dist";
    for (char *t = strtok(buf, " "); t && argc < 31; t = strtok(NULL, " "))
        argv[argc++] = t;
    argv[argc] = NULL;
    config_defaults(c);
    return config_parse(c, argc, argv, e);
}

static void test_defaults(void)
{
    Config c;
    Error e;
    CU_ASSERT_EQUAL(parse(&c, &e, ""), 0);
    CU_ASSERT_STRING_EQUAL(c.command, "train");
    CU_ASSERT_STRING_EQUAL(c.train_path, "data/mnist_train.h5");
    CU_ASSERT_STRING_EQUAL(c.test_path, "data/mnist_test.h5");
    CU_ASSERT_STRING_EQUAL(c.layers, "512,512");
    CU_ASSERT_EQUAL(c.batch_size, 128);
    CU_ASSERT_EQUAL(c.val_split, 5000);
    CU_ASSERT_DOUBLE_EQUAL(c.lr, 1e-3, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(c.dropout, 0.2, 1e-7);
    CU_ASSERT_EQUAL(c.seed, 42);
    CU_ASSERT_EQUAL(c.out_dir[0], '\0');
}

static void test_good_values(void)
{
    Config c;
    Error e;
    CU_ASSERT_EQUAL(parse(&c, &e, "train --epochs 3 --lr=0.01 --layers 64 --batch-size 32 "
                                  "--out runs/x --quiet --seed 7 --dropout 0"),
                    0);
    CU_ASSERT_EQUAL(c.epochs, 3);
    CU_ASSERT_DOUBLE_EQUAL(c.lr, 0.01, 1e-9);
    CU_ASSERT_STRING_EQUAL(c.layers, "64");
    CU_ASSERT_EQUAL(c.batch_size, 32);
    CU_ASSERT_STRING_EQUAL(c.out_dir, "runs/x");
    CU_ASSERT_EQUAL(c.quiet, 1);
    CU_ASSERT_EQUAL(c.seed, 7);
    CU_ASSERT_EQUAL(c.dropout, 0.0f);
    CU_ASSERT_EQUAL(parse(&c, &e, "--help"), 0);
    CU_ASSERT(c.help);
    CU_ASSERT_EQUAL(parse(&c, &e, "--version"), 0);
    CU_ASSERT(c.version);
    CU_ASSERT_EQUAL(parse(&c, &e, "convert a.csv b.h5"), 0);
    CU_ASSERT_STRING_EQUAL(c.command, "convert");
    CU_ASSERT_EQUAL(c.num_positional, 2);
    CU_ASSERT_STRING_EQUAL(c.positional[1], "b.h5");
    CU_ASSERT_EQUAL(parse(&c, &e, "convert img lab out.h5"), 0);
    CU_ASSERT_EQUAL(c.num_positional, 3);
    CU_ASSERT_EQUAL(parse(&c, &e, "--resume auto --out runs/a"), 0);
}

static void expect_error(const char *line, const char *words)
{
    Config c;
    Error e = {{0}};
    CU_ASSERT_EQUAL(parse(&c, &e, line), -1);
    CU_ASSERT(strstr(e.msg, words) != NULL);
    if (!strstr(e.msg, words))
        printf("\n  '%s' gave: %s", line, e.msg);
}

static void test_bad_values(void)
{
    expect_error("--epochs 0", "--epochs: 0 is outside 1..");
    expect_error("--epochs ten", "--epochs: 'ten' is not an integer");
    expect_error("--lr -1", "--lr: -1 is outside");
    expect_error("--lr nan", "--lr: 'nan' is not a number");
    expect_error("--dropout 1", "--dropout: 1 is outside");
    expect_error("--batch-size", "--batch-size needs a value");
    expect_error("--bogus 3", "unknown option '--bogus'");
    expect_error("--quiet=1", "--quiet takes no value");
    expect_error("frobnicate", "unknown command 'frobnicate'");
    expect_error("train extra", "unexpected argument 'extra'");
    expect_error("--resume auto", "--resume auto needs --out");
    expect_error("convert only.csv", "convert needs");
    expect_error("convert --epochs 3 a b", "unknown option '--epochs' for convert");
    expect_error("--seed 99999999999999999999", "--seed");
}

static void test_usage_lists_every_default(void)
{
    Config c;
    config_defaults(&c);
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    config_usage(&c, f);
    fclose(f);
    CU_ASSERT(strstr(text, "--batch-size N") != NULL);
    CU_ASSERT(strstr(text, "[128]") != NULL);
    CU_ASSERT(strstr(text, "[data/mnist_train.h5]") != NULL);
    CU_ASSERT(strstr(text, "--resume FILE|auto") != NULL);
    free(text);
}

static void test_json_has_every_option(void)
{
    Config c;
    config_defaults(&c);
    cJSON *o = cJSON_CreateObject();
    config_to_json(&c, o);
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(o, "lr")->valuedouble, 0.001, 0);
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(o, "dropout")->valuedouble, 0.2, 0);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(o, "layers")->valuestring, "512,512");
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(o, "batch-size")->valueint, 128);
    CU_ASSERT(cJSON_IsFalse(cJSON_GetObjectItem(o, "quiet")));
    cJSON_Delete(o);
}

int test_config_register(void)
{
    CU_pSuite s = CU_add_suite("config", NULL, NULL);
    if (!s)
        return -1;
    return (CU_add_test(s, "defaults", test_defaults) &&
            CU_add_test(s, "good values", test_good_values) &&
            CU_add_test(s, "bad values and their messages", test_bad_values) &&
            CU_add_test(s, "usage lists every default", test_usage_lists_every_default) &&
            CU_add_test(s, "JSON record has every option", test_json_has_every_option))
               ? 0
               : -1;
}

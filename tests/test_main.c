/* The CUnit runner for every unit suite. `test_unit` runs all suites;
 * `test_unit NAME` runs one. Exit status = number of failed assertions
 * (read before CU_cleanup_registry, which resets it) — CUnit's own return
 * code is 0 even when tests fail. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <string.h>

#include "test_util.h"

typedef int (*RegisterFn)(void);

static const struct {
    const char *name;
    RegisterFn fn;
} SUITES[] = {
    {"ops", test_ops_register},       {"model", test_model_register},
    {"loader", test_loader_register},
    {"optim", test_optim_register},   {"data", test_data_register},
    {"data_csv", test_data_csv_register}, {"h5", test_h5_register},
    {"ckpt", test_ckpt_register},     {"plot", test_plot_register},
    {"report", test_report_register}, {"augment", test_augment_register},
    {"config", test_config_register}, {"gemm", test_gemm_register},
    {"config", test_config_register}, {"image", test_image_register},
    {"npy", test_npy_register},
};

int main(int argc, char **argv)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    int found = 0;
    for (size_t i = 0; i < sizeof SUITES / sizeof SUITES[0]; i++) {
        if (argc > 1 && strcmp(argv[1], SUITES[i].name) != 0)
            continue;
        found = 1;
        if (SUITES[i].fn() != 0) {
            fprintf(stderr, "test_unit: cannot register suite %s\n", SUITES[i].name);
            CU_cleanup_registry();
            return 1;
        }
    }
    if (!found) {
        fprintf(stderr, "test_unit: no suite named '%s'\n", argv[1]);
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures();
    unsigned framework = CU_get_error() != CUE_SUCCESS;
    CU_cleanup_registry();
    return (int)(failures + framework > 255 ? 255 : failures + framework);
}

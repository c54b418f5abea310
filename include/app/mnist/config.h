/* config: the command line. One table holds every option's name, type,
 * default, range and help; parsing, validation, the usage text and the JSON
 * record of a run are all generated from it. Must not print or exit: it
 * returns a status and the caller reports. */
#ifndef MNIST_CONFIG_H
#define MNIST_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "mnist/util.h"

#define CONFIG_PATH_MAX 1024
#define CONFIG_MAX_POSITIONAL 4

typedef struct Config {
    char command[16]; /* "train", "evaluate", "predict", "convert" or "export" */
    char train_path[CONFIG_PATH_MAX], test_path[CONFIG_PATH_MAX], out_dir[CONFIG_PATH_MAX];
    char layers[256];
    char model_spec[1024]; /* train: --model, a preset or a layer list ("": --layers) */
    char resume[CONFIG_PATH_MAX]; /* "" = fresh, "auto" = latest in out_dir, or a file */
    char model_path[CONFIG_PATH_MAX];  /* evaluate, predict: the checkpoint */
    char input_path[CONFIG_PATH_MAX];  /* predict: images to label */
    char output_path[CONFIG_PATH_MAX]; /* predict: the CSV written */
    int probs;                         /* predict: add class probabilities */
    char export_format[16];            /* export: "onnx" or "safetensors" */
    char export_path[CONFIG_PATH_MAX]; /* export: the file written */
    char save_preprocessed[CONFIG_PATH_MAX]; /* predict: where image inputs' 28x28 go ("": not) */
    char images_dataset[256], labels_dataset[256]; /* HDF5 datasets / .npz members ("": default) */
    char split[32];                    /* convert: a .npz's x_SPLIT, y_SPLIT */
    int log_every;                     /* train: progress line every N steps */
    int check_every;                   /* train: replica checksum every N steps */
    char augment[256];                 /* train: augmentation spec (augment.h) */
    char lr_schedule[16];              /* constant, cosine, step */
    char precision[8];                 /* train: fp32 or bf16 (of the products) */
    float warmup_epochs, lr_min, lr_gamma, weight_decay, max_norm, label_smoothing;
    float clip_grad_norm;
    int lr_step_epochs, lr_scale_with_batch, patience, standardize;
    int deterministic, logical_shards, shard_optimizer;
    float dropout, lr, beta1, beta2, eps;
    int batch_size, epochs, threads, val_split, checkpoint_every;
    int64_t seed;
    int quiet;
    int help, version;
    int classes;        /* convert: the class count the data declares */
    int overwrite;      /* train: start afresh in a run directory that holds another run */
    char command_line[2048]; /* argv as given (truncated), for the run record */
    int num_positional; /* convert's inputs and output */
    char positional[CONFIG_MAX_POSITIONAL][CONFIG_PATH_MAX];
} Config;

/* Fills c with every default (command "train"). */
void config_defaults(Config *c);

/* Parses argv[1..argc) (an optional leading subcommand, then options) into c,
 * which config_defaults has filled. 0 on success (check c->help and
 * c->version), -1 with e = the message to print (exit status EXIT_USAGE). */
int config_parse(Config *c, int argc, char **argv, Error *e);

/* Writes the usage text for c->command, with every default, to f. */
void config_usage(const Config *c, FILE *f);

/* Appends every option of c->command to a JSON object (a cJSON *), name: value. */
void config_to_json(const Config *c, void *cjson_object);

#endif

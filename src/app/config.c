/* config: table-driven command-line parsing and validation. The table is the
 * single source of defaults, ranges and help text. Returns statuses; never
 * prints to stdout/stderr on its own and never exits. */
#include "mnist/config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "mnist/augment.h"
#include "mnist/model.h"

typedef enum { OPT_INT, OPT_I64, OPT_FLOAT, OPT_STR, OPT_FLAG } OptType;

typedef struct Option {
    const char *name;    /* without the leading "--" */
    OptType type;
    size_t offset;       /* into Config */
    size_t size;         /* string capacity */
    const char *def;     /* default, parsed by the same code as user input */
    double min, max;     /* inclusive range for numbers */
    const char *metavar;
    const char *help;
} Option;

#define F(field) offsetof(Config, field), sizeof(((Config *)0)->field)

#define OPT_THREADS                                                                               \
    {"threads", OPT_INT, F(threads), "0", 0, 4096, "N",                                          \
     "OpenMP threads per rank (0: OMP_NUM_THREADS or the CPUs per rank on the node)"}
#define OPT_QUIET(help) {"quiet", OPT_FLAG, F(quiet), "0", 0, 1, NULL, help}
#define OPT_DATASETS(where)                                                                       \
    {"images-dataset", OPT_STR, F(images_dataset), "", 0, 0, "NAME",                             \
     "the images' dataset in " where " (default: images; uint8 0..255 or float32 0..1, "        \
     "[N,784], [N,28,28] or [N,28,28,1])"},                                                     \
    {"labels-dataset", OPT_STR, F(labels_dataset), "", 0, 0, "NAME",                             \
     "the labels' dataset in " where " (default: labels; uint8, int32 or int64 [N])"}

static const Option TRAIN_OPTIONS[] = {
    {"train", OPT_STR, F(train_path), "data/mnist_train.h5", 0, 0, "FILE",
     "training images (HDF5 from `mnist-dist convert`)"},
    {"test", OPT_STR, F(test_path), "data/mnist_test.h5", 0, 0, "FILE",
     "test images for the final evaluation"},
    OPT_DATASETS("--train and --test"),
    {"out", OPT_STR, F(out_dir), "", 0, 0, "DIR",
     "run directory (default: runs/<date>-<time>)"},
    {"model", OPT_STR, F(model_spec), "", 0, 0, "SPEC",
     "the network: ref-cnn, ref-mlp or a layer list such as "
     "conv:32x3x3,relu,maxpool:2,flatten,dense:128,relu,dropout:0.5 (see README; "
     "dense:CLASSES is added unless it ends with a dense layer; overrides --layers, --dropout)"},
    {"layers", OPT_STR, F(layers), "512,512", 0, 0, "W1,W2,...", "hidden layer widths"},
    {"dropout", OPT_FLOAT, F(dropout), "0.2", 0, 0.95, "P", "drop probability of hidden units"},
    {"batch-size", OPT_INT, F(batch_size), "128", 1, 1 << 20, "N",
     "GLOBAL batch size, split across ranks"},
    {"epochs", OPT_INT, F(epochs), "20", 1, 1000000, "N", "passes over the training rows"},
    {"lr", OPT_FLOAT, F(lr), "0.001", 1e-12, 10, "RATE", "Adam learning rate"},
    {"beta1", OPT_FLOAT, F(beta1), "0.9", 0, 0.999999, "B", "Adam first-moment decay"},
    {"beta2", OPT_FLOAT, F(beta2), "0.999", 0, 0.999999, "B", "Adam second-moment decay"},
    {"eps", OPT_FLOAT, F(eps), "1e-08", 1e-30, 1, "EPS", "Adam epsilon"},
    {"seed", OPT_I64, F(seed), "42", 0, 9007199254740991.0, "N",
     "seed for initialisation, shuffling and dropout"},
    OPT_THREADS,
    {"val-split", OPT_INT, F(val_split), "5000", 0, 100000000, "N",
     "training rows held out for per-epoch validation (the last N)"},
    {"checkpoint-every", OPT_INT, F(checkpoint_every), "5", 0, 1000000, "K",
     "write a checkpoint every K epochs (0: only at the end)"},
    {"resume", OPT_STR, F(resume), "", 0, 0, "FILE|auto",
     "continue from a checkpoint; auto = the latest one in --out DIR (a finished run: "
     "nothing to do, exit 0)"},
    {"overwrite", OPT_FLAG, F(overwrite), "0", 0, 1, NULL,
     "start afresh in an --out DIR that holds another run: its checkpoints and report are "
     "removed once the new run has started"},
    {"augment", OPT_STR, F(augment), "off", 0, 0, "SPEC",
     "on-the-fly augmentation: off, default, or e.g. rotate=12,scale=0.12,shear=0.2,"
     "translate=2,elastic=36:6"},
    {"standardize", OPT_FLAG, F(standardize), "0", 0, 1, NULL,
     "standardise inputs with the training rows' mean and std (an allreduce)"},
    {"lr-schedule", OPT_STR, F(lr_schedule), "constant", 0, 0, "KIND",
     "constant, cosine (to --lr-min at the last step) or step (x --lr-gamma every "
     "--lr-step-epochs)"},
    {"warmup-epochs", OPT_FLOAT, F(warmup_epochs), "0", 0, 1000, "E",
     "linear learning-rate warmup over the first E epochs"},
    {"lr-min", OPT_FLOAT, F(lr_min), "0", 0, 10, "RATE", "cosine schedule's final rate"},
    {"lr-step-epochs", OPT_INT, F(lr_step_epochs), "10", 1, 1000000, "N",
     "step schedule: decay every N epochs"},
    {"lr-gamma", OPT_FLOAT, F(lr_gamma), "0.5", 1e-6, 1, "G", "step schedule: decay factor"},
    {"lr-scale-with-batch", OPT_FLAG, F(lr_scale_with_batch), "0", 0, 1, NULL,
     "linear scaling rule: multiply --lr by batch-size / 128"},
    {"weight-decay", OPT_FLOAT, F(weight_decay), "0", 0, 1, "WD",
     "decoupled (AdamW) weight decay on the weights, not the biases"},
    {"max-norm", OPT_FLOAT, F(max_norm), "0", 0, 1000, "C",
     "cap each hidden unit's incoming weight norm at C (0: off)"},
    {"label-smoothing", OPT_FLOAT, F(label_smoothing), "0", 0, 0.5, "S",
     "train against (1-S) one-hot + S/C targets (C classes)"},
    {"clip-grad-norm", OPT_FLOAT, F(clip_grad_norm), "0", 0, 1e6, "N",
     "scale the summed gradient to L2 norm at most N (0: off)"},
    {"patience", OPT_INT, F(patience), "0", 0, 1000000, "N",
     "stop after N epochs without a better validation loss; keeps checkpoints/best.h5 "
     "and reports the best epoch (0: off)"},
    {"deterministic", OPT_FLAG, F(deterministic), "0", 0, 1, NULL,
     "bit-identical weights for any rank count <= --logical-shards and any thread count "
     "(exact fixed-point gradient sums). Rows a shard cannot fill a step with are not "
     "reached that epoch: the header and the report say how many"},
    {"logical-shards", OPT_INT, F(logical_shards), "8", 1, 256, "M",
     "--deterministic: training rows and each batch split into M rank-independent shards"},
    {"shard-optimizer", OPT_INT, F(shard_optimizer), "1", 0, 2, "0|1|2",
     "with several ranks, each updates 1/P of the parameters: 1 = on one node through "
     "node-shared memory, else reduce-scatter + allgather; 2 = always reduce-scatter + "
     "allgather; 0 = allreduce and every rank updates everything"},
    {"precision", OPT_STR, F(precision), "fp32", 0, 0, "fp32|bf16",
     "bf16: the matrix products take bf16 copies of the weights and activations and sum in "
     "fp32 (AVX512_BF16 or AMX through oneDNN; weights, gradients, Adam and the loss stay "
     "fp32; checkpoints are fp32)"},
    {"check-every", OPT_INT, F(check_every), "200", 0, 100000000, "N",
     "compare a checksum of every rank's parameters every N steps and at checkpoints (0: "
     "only at checkpoints)"},
    {"log-every", OPT_INT, F(log_every), "0", 0, 100000000, "N",
     "also print a progress line every N steps (0: once per epoch)"},
    OPT_QUIET("print only errors and the final summary"),
};

static const Option EVALUATE_OPTIONS[] = {
    {"model", OPT_STR, F(model_path), "", 0, 0, "CKPT.h5", "checkpoint to evaluate (required)"},
    {"data", OPT_STR, F(test_path), "data/mnist_test.h5", 0, 0, "FILE",
     "labelled images (HDF5)"},
    OPT_DATASETS("--data"),
    {"out", OPT_STR, F(out_dir), "", 0, 0, "DIR",
     "where the report goes (default: runs/<date>-<time>-eval)"},
    OPT_THREADS,
    OPT_QUIET("print only errors and the final summary"),
};

static const Option PREDICT_OPTIONS[] = {
    {"model", OPT_STR, F(model_path), "", 0, 0, "CKPT.h5", "checkpoint to predict with (required)"},
    {"input", OPT_STR, F(input_path), "", 0, 0, "FILE|DIR",
     "images: .csv (784 or 785 columns, header optional), an IDX images file, .h5, a .png or "
     ".jpg image, or a directory of .png/.jpg/.jpeg images (required)"},
    {"output", OPT_STR, F(output_path), "predictions.csv", 0, 0, "FILE",
     "where the ImageId,Label CSV goes (file,Label for images)"},
    {"probs", OPT_FLAG, F(probs), "0", 0, 1, NULL, "add the class probabilities p0..p(C-1)"},
    OPT_DATASETS("an .h5 --input"),
    {"save-preprocessed", OPT_STR, F(save_preprocessed), "", 0, 0, "DIR",
     "image inputs: also write the 28x28 images the network saw, as DIR/<name without its "
     "extension>.png"},
    OPT_THREADS,
    OPT_QUIET("print only errors"),
};

static const Option EXPORT_OPTIONS[] = {
    {"model", OPT_STR, F(model_path), "", 0, 0, "CKPT.h5", "checkpoint to export (required)"},
    {"format", OPT_STR, F(export_format), "", 0, 0, "onnx|safetensors",
     "onnx: the network with softmax (input [N,C,H,W] pixels / 255, opset 13); safetensors: "
     "its tensors in PyTorch's layouts (required)"},
    {"output", OPT_STR, F(export_path), "", 0, 0, "FILE", "the file written (required)"},
    OPT_QUIET("print only errors"),
};

static const Option CONVERT_OPTIONS[] = {
    {"classes", OPT_INT, F(classes), "10", 2, 256, "N",
     "the class count the data holds: labels must be 0..N-1 (recorded in the HDF5 file)"},
    {"split", OPT_STR, F(split), "train", 0, 0, "NAME",
     "which arrays of a .npz (Keras's mnist.npz): x_NAME and y_NAME, e.g. train or test"},
    {"images-dataset", OPT_STR, F(images_dataset), "", 0, 0, "NAME",
     "the images' dataset of an HDF5 input, or member of a .npz (default: images; in a .npz "
     "x_SPLIT)"},
    {"labels-dataset", OPT_STR, F(labels_dataset), "", 0, 0, "NAME",
     "the labels' dataset of an HDF5 input, or member of a .npz (default: labels; in a .npz "
     "y_SPLIT)"},
    OPT_QUIET("print only errors"),
};

#define TABLE(t) t, sizeof t / sizeof t[0]
static const struct Command {
    const char *name;
    const Option *options;
    size_t count;
    const char *synopsis;
} COMMANDS[] = {
    {"train", TABLE(TRAIN_OPTIONS),
     "usage: mnist-dist [train] [options]\n\n"
     "Trains a network on MNIST-like images, data-parallel over MPI ranks and\n"
     "OpenMP threads; run it alone, or under mpirun/srun. A run directory (--out)\n"
     "belongs to one run: a fresh run refuses one that holds another run's\n"
     "checkpoints (use --resume auto, another --out, or --overwrite). SIGINT\n"
     "(Ctrl-C), SIGTERM and SIGUSR1 finish the step, write a checkpoint and exit 75;\n"
     "a second signal stops at once. Exit status: 0 done, 1 bad data or a runtime\n"
     "failure, 2 a bad command line, 75 stopped. Other commands:\n"
     "  mnist-dist convert IN OUT                     CSV/IDX/NPY/NPZ/HDF5 -> HDF5 (or CSV)\n"
     "  mnist-dist evaluate --model CKPT [--data F]   metrics and report of a checkpoint\n"
     "  mnist-dist predict --model CKPT --input F     ImageId,Label predictions (Kaggle)\n"
     "  mnist-dist export --model CKPT --format F --output OUT   ONNX or safetensors\n"},
    {"evaluate", TABLE(EVALUATE_OPTIONS),
     "usage: mnist-dist evaluate --model CKPT.h5 [--data TEST.h5] [--out DIR]\n\n"
     "Evaluates a checkpoint on labelled images, sharded across ranks, and writes\n"
     "DIR/report/ (metrics.json, report.html, report.md, charts) as after training.\n"},
    {"predict", TABLE(PREDICT_OPTIONS),
     "usage: mnist-dist predict --model CKPT.h5 --input FILE|DIR [--output PRED.csv] [--probs]\n\n"
     "Predicts a label for every image of FILE and writes Kaggle's digit-recognizer\n"
     "submission format: a header, then ImageId (from 1),Label per image. Image files\n"
     "(PNG, JPEG; any size, colour or grey, light or dark background), alone or a\n"
     "directory of them (taken sorted by name; other entries are skipped), get MNIST's\n"
     "own preprocessing (grey, ink light on dark, the digit's box fitted into 20x20\n"
     "keeping its aspect, centred by its centre of mass in 28x28; a 28x28 image on a\n"
     "dark background is taken as it is) and a file,Label CSV.\n"},
    {"export", TABLE(EXPORT_OPTIONS),
     "usage: mnist-dist export --model CKPT.h5 --format onnx|safetensors --output FILE\n\n"
     "Writes a checkpoint's network for other frameworks: an ONNX model (input\n"
     "[N,C,H,W] float32 pixels / 255 in [0,1], the checkpoint's standardisation\n"
     "inside the graph, output probabilities [N,classes]), or its tensors as\n"
     "safetensors named and shaped for a torch.nn.Sequential (layers.{i}.weight,\n"
     "layers.{i}.bias; the modules are listed in its metadata). See README,\n"
     "Interoperability. Nothing is left at FILE on failure.\n"},
    {"convert", TABLE(CONVERT_OPTIONS),
     "usage: mnist-dist convert [options] IN.csv OUT.h5\n"
     "       mnist-dist convert [options] IMAGES.idx LABELS.idx OUT.h5\n"
     "       mnist-dist convert [options] IMAGES.idx OUT.h5      (images only)\n"
     "       mnist-dist convert [options] IMAGES.npy LABELS.npy OUT.h5\n"
     "       mnist-dist convert [options] [--split test] mnist.npz OUT.h5   (Keras)\n"
     "       mnist-dist convert [options] IN.h5 OUT.h5|OUT.csv  (e.g. h5py's, renamed datasets)\n"
     "       mnist-dist convert [options] IN.csv|IN.idx OUT.csv\n\n"
     "Validates the images and writes them as HDF5 (/images uint8 [N,784],\n"
     "/labels uint8 [N], with height/width/channels/classes attributes) or CSV\n"
     "(label,pixel0..pixel783, 28x28 grey only), chosen by OUT's ending. CSV input\n"
     "may have a header line and 785 (labelled) or 784 columns. NumPy arrays (.npy,\n"
     "or the members of a .npz) are uint8 0..255 or float32 0..1 images\n"
     "[N,28,28], [N,784] or [N,28,28,1] and uint8/int32/int64 labels [N],\n"
     "little-endian, C order. The trainer reads HDF5 input as it is; convert\n"
     "rewrites it in the canonical form. Nothing is left at OUT when the input is bad.\n"},
};
#define NUM_COMMANDS (sizeof COMMANDS / sizeof COMMANDS[0])

static const struct Command *command_named(const char *name)
{
    for (size_t i = 0; i < NUM_COMMANDS; i++)
        if (strcmp(COMMANDS[i].name, name) == 0)
            return &COMMANDS[i];
    return NULL;
}

/* Parses text into the field of o; -1 with e naming the option. */
static int set_option(Config *c, const Option *o, const char *text, Error *e)
{
    char *field = (char *)c + o->offset;
    char *end = NULL;
    errno = 0;
    switch (o->type) {
    case OPT_STR:
        if (strlen(text) >= o->size)
            return err_set(e, "--%s: value longer than %zu characters", o->name, o->size - 1);
        memcpy(field, text, strlen(text) + 1);
        return 0;
    case OPT_FLAG:
        *(int *)field = strcmp(text, "1") == 0;
        return 0;
    case OPT_INT:
    case OPT_I64: {
        long long v = strtoll(text, &end, 10);
        if (end == text || *end != '\0' || errno)
            return err_set(e, "--%s: '%s' is not an integer", o->name, text);
        if ((double)v < o->min || (double)v > o->max)
            return err_set(e, "--%s: %lld is outside %.0f..%.0f", o->name, v, o->min, o->max);
        if (o->type == OPT_INT)
            *(int *)field = (int)v;
        else
            *(int64_t *)field = (int64_t)v;
        return 0;
    }
    case OPT_FLOAT: {
        double v = strtod(text, &end);
        if (end == text || *end != '\0' || errno || !isfinite(v))
            return err_set(e, "--%s: '%s' is not a number", o->name, text);
        if (v < o->min || v > o->max)
            return err_set(e, "--%s: %g is outside %g..%g", o->name, v, o->min, o->max);
        *(float *)field = (float)v;
        return 0;
    }
    }
    return err_set(e, "--%s: internal error: unknown option type", o->name);
}

void config_defaults(Config *c)
{
    memset(c, 0, sizeof *c);
    strcpy(c->command, "train");
    /* Defaults go through the parser, so a bad default fails loudly in tests. */
    for (size_t t = 0; t < NUM_COMMANDS; t++)
        for (size_t i = 0; i < COMMANDS[t].count; i++)
            set_option(c, &COMMANDS[t].options[i], COMMANDS[t].options[i].def, NULL);
}

/* export's required options and its format. */
static int check_export(const Config *c, Error *e)
{
    if (c->model_path[0] == '\0')
        return err_set(e, "export needs --model CKPT.h5 (see --help)");
    if (c->export_format[0] == '\0')
        return err_set(e, "export needs --format onnx or --format safetensors (see --help)");
    if (strcmp(c->export_format, "onnx") != 0 && strcmp(c->export_format, "safetensors") != 0)
        return err_set(e, "--format: '%s' is not one of onnx, safetensors", c->export_format);
    if (c->export_path[0] == '\0')
        return err_set(e, "export needs --output FILE (see --help)");
    return 0;
}

int config_parse(Config *c, int argc, char **argv, Error *e)
{
    int i = 1;
    /* the command as given, for the run record */
    size_t used = 0;
    for (int k = 0; k < argc && used + 1 < sizeof c->command_line; k++)
        used += (size_t)snprintf(c->command_line + used, sizeof c->command_line - used, "%s%s",
                                 k ? " " : "", argv[k]);
    if (i < argc && argv[i][0] != '-') {
        if (!command_named(argv[i]))
            return err_set(e,
                           "unknown command '%s' (commands: train, evaluate, predict, convert, export; "
                           "see --help)",
                           argv[i]);
        snprintf(c->command, sizeof c->command, "%s", argv[i]);
        i++;
    }
    const struct Command *cmd = command_named(c->command);
    const size_t n = cmd->count;
    const Option *opts = cmd->options;
    for (; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            c->help = 1;
            return 0;
        }
        if (strcmp(arg, "--version") == 0) {
            c->version = 1;
            return 0;
        }
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
            if (strcmp(c->command, "convert") != 0 || arg[0] == '-')
                return err_set(e, "unexpected argument '%s' (options start with --; see --help)",
                               arg);
            if (c->num_positional >= CONFIG_MAX_POSITIONAL)
                return err_set(e, "convert: too many file arguments (see --help)");
            if (strlen(arg) >= CONFIG_PATH_MAX)
                return err_set(e, "convert: path too long: %.60s...", arg);
            strcpy(c->positional[c->num_positional++], arg);
            continue;
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        const Option *o = NULL;
        for (size_t k = 0; k < n; k++)
            if (strlen(opts[k].name) == name_len && strncmp(opts[k].name, name, name_len) == 0)
                o = &opts[k];
        if (!o)
            return err_set(e, "unknown option '--%.*s' for %s (see --help)", (int)name_len, name,
                           c->command);
        const char *value;
        if (o->type == OPT_FLAG) {
            if (eq)
                return err_set(e, "--%s takes no value", o->name);
            value = "1";
        } else if (eq) {
            value = eq + 1;
        } else {
            if (i + 1 >= argc)
                return err_set(e, "--%s needs a value (%s)", o->name, o->metavar);
            value = argv[++i];
        }
        if (set_option(c, o, value, e))
            return -1;
    }
    if (strcmp(c->command, "convert") == 0) {
        if (c->num_positional < 2 || c->num_positional > 3)
            return err_set(e, "convert needs IN.csv OUT or IMAGES.idx LABELS.idx OUT (see --help)");
        const char *out = c->positional[c->num_positional - 1];
        const size_t len = strlen(out);
        const int h5 = (len > 3 && strcmp(out + len - 3, ".h5") == 0) ||
                       (len > 5 && strcmp(out + len - 5, ".hdf5") == 0);
        if (!h5 && !(len > 4 && strcmp(out + len - 4, ".csv") == 0))
            return err_set(e, "%s: output must end in .h5, .hdf5 or .csv", out);
    }
    if (strcmp(c->command, "train") == 0) {
        ModelSpec spec;
        AugmentParams aug;
        if (c->model_spec[0] ? model_spec_model(&spec, c->model_spec, 10, e)
                             : model_spec_from_widths(&spec, c->layers, c->dropout, e))
            return -1;
        if (augment_parse(&aug, c->augment, e))
            return err_prefix(e, "--augment");
        if (c->deterministic && c->batch_size < c->logical_shards)
            return err_set(e, "--batch-size %d is smaller than --logical-shards %d",
                           c->batch_size, c->logical_shards);
        if (c->overwrite && c->resume[0])
            return err_set(e, "--overwrite starts afresh; it cannot be combined with --resume");
        if (c->dropout >= 1.0f)
            return err_set(e, "--dropout must be below 1");
        if (strcmp(c->resume, "auto") == 0 && c->out_dir[0] == '\0')
            return err_set(e, "--resume auto needs --out DIR: the run directory to resume");
        if (strcmp(c->lr_schedule, "constant") != 0 && strcmp(c->lr_schedule, "cosine") != 0 &&
            strcmp(c->lr_schedule, "step") != 0)
            return err_set(e, "--lr-schedule: '%s' is not one of constant, cosine, step",
                           c->lr_schedule);
        if (strcmp(c->precision, "fp32") != 0 && strcmp(c->precision, "bf16") != 0)
            return err_set(e, "--precision: '%s' is not one of fp32, bf16", c->precision);
        if (c->patience > 0 && c->val_split == 0)
            return err_set(e, "--patience needs validation rows (--val-split > 0)");
    }
    if (strchr(c->images_dataset, '\n') || strchr(c->labels_dataset, '\n'))
        return err_set(e, "--images-dataset, --labels-dataset: a name may not hold a newline");
    for (const char *p = c->split; *p; p++)
        if (!(*p == '_' || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
              (*p >= 'A' && *p <= 'Z')))
            return err_set(e, "--split: '%s' is not a name such as train or test", c->split);
    if (!c->split[0])
        return err_set(e, "--split: needs a name such as train or test");
    if ((strcmp(c->command, "evaluate") == 0 || strcmp(c->command, "predict") == 0) &&
        c->model_path[0] == '\0')
        return err_set(e, "%s needs --model CKPT.h5 (see --help)", c->command);
    if (strcmp(c->command, "export") == 0 && check_export(c, e))
        return -1;
    if (strcmp(c->command, "predict") == 0 && c->input_path[0] == '\0')
        return err_set(e, "predict needs --input FILE|DIR (.csv, .h5, images; see --help)");
    return 0;
}

void config_usage(const Config *c, FILE *f)
{
    const struct Command *cmd = command_named(c->command);
    fputs(cmd->synopsis, f);
    fputs("\noptions:\n", f);
    for (size_t i = 0; i < cmd->count; i++) {
        const Option *o = &cmd->options[i];
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", o->name, o->metavar ? " " : "",
                 o->metavar ? o->metavar : "");
        fprintf(f, "  %-28s %s", left, o->help);
        if (o->type != OPT_FLAG && o->def[0])
            fprintf(f, " [%s]", o->def);
        fputc('\n', f);
    }
    fprintf(f, "  %-28s %s\n  %-28s %s\n", "--help", "show this text", "--version",
            "show the version");
}

/* The shortest decimal that reads back as the same float: 0.001, not
 * 0.0010000000474974513. */
static double float_for_json(float v)
{
    char buf[32];
    for (int digits = 6; digits < 10; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, (double)v);
        if (strtof(buf, NULL) == v)
            break;
    }
    return strtod(buf, NULL);
}

void config_to_json(const Config *c, void *cjson_object)
{
    cJSON *obj = cjson_object;
    const struct Command *cmd = command_named(c->command);
    for (size_t i = 0; i < cmd->count; i++) {
        const Option *o = &cmd->options[i];
        const char *field = (const char *)c + o->offset;
        switch (o->type) {
        case OPT_STR:
            cJSON_AddStringToObject(obj, o->name, field);
            break;
        case OPT_FLAG:
            cJSON_AddBoolToObject(obj, o->name, *(const int *)field);
            break;
        case OPT_INT:
            cJSON_AddNumberToObject(obj, o->name, *(const int *)field);
            break;
        case OPT_I64:
            cJSON_AddNumberToObject(obj, o->name, (double)*(const int64_t *)field);
            break;
        case OPT_FLOAT:
            cJSON_AddNumberToObject(obj, o->name, float_for_json(*(const float *)field));
            break;
        }
    }
}

/* tools/joule/cmd_compress.c: `joule compress IN -o OUT [options]`: builds a recipe from the flags
 * (or reads one with --recipe), runs the pipeline on the model, writes OUT atomically and,
 * with --report, a JSON report (before/after totals and one row per layer change) atomically too.
 * IN is never modified. Exit status: 0 done, 1 failed (nothing written), 2 usage error. Uses the
 * public API only (plus cJSON to assemble the report document). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "joule/pipeline.h"
#include "joule/prune.h"
#include "joule/quantize.h"
#include "joule/report.h"

#define CMD "compress"
#define MAX_LIST 256

static const char usage_text[] =
    "usage: joule compress IN -o OUT [options]\n"
    "Runs compression passes on IN and writes OUT (IN is never modified). Without --recipe the\n"
    "passes run in this order: cleanup, prune_channels, prune, quantization, sparse_storage.\n"
    "  -o, --output OUT             model to write (atomically)\n"
    "  --prune S                    magnitude pruning: fraction S in [0,1) of each layer's\n"
    "                               weights set to zero (Conv, ConvTranspose, Gemm, MatMul)\n"
    "  --prune-scope layer|global   S per layer (default), or one threshold over all layers\n"
    "  --prune-pattern N:M          keep N of every M weights along the reduction axis (2:4);\n"
    "                               layers where M does not divide it fall back to --prune\n"
    "  --prune-override GLOB=S      sparsity S for layers whose node or weight name matches\n"
    "                               GLOB (op:TYPE=S matches an op type); repeatable, first wins\n"
    "  --prune-skip GLOB            never prune these layers (repeatable; also for channels)\n"
    "  --prune-min-params N         leave weights with fewer than N elements alone\n"
    "  --prune-correct-bias         after pruning, rescale each pruned output channel's kept\n"
    "                               weights and shift its bias so its mean and spread on the\n"
    "                               --calib data match the unpruned model's (zeros stay zero);\n"
    "                               with --prune-channels: the kept channels and the readers\n"
    "                               of removed ones (their bias takes the removed inputs' mean)\n"
    "  --prune-channels R           remove the fraction R in [0,1) of output channels of each\n"
    "                               Conv/Gemm/MatMul group, shrinking tensors and their readers\n"
    "  --channel-norm l1|l2         channel importance (default l1)\n"
    "  --channel-multiple N         keep a multiple of N channels in each group (the nearest,\n"
    "                               at least N): 8 or 16 keeps ONNX Runtime's blocked (NCHWc)\n"
    "                               convolutions on their fast path\n"
    "  --sparse-storage             store weights with >= 50% zeros sparse (Constant nodes with\n"
    "                               a sparse_value) when that is smaller\n"
    "  --quant fp16|int8-dynamic|int8\n"
    "                               fp16: float16 weights and compute; int8-dynamic: int8\n"
    "                               weights, activations quantized at run time; int8: int8\n"
    "                               weights and activations calibrated on --calib data\n"
    "  --calib DATA                 calibration data for int8 and --prune-correct-bias (IDX,\n"
    "                               .npy/.npz, raw, .pb dir)\n"
    "  --calib-limit N              calibrate on the first N items only (default: all)\n"
    "  --calib-method M             minmax, percentile (default), entropy or mse\n"
    "  --percentile P               for --calib-method percentile (default 99.999)\n"
    "  --per-tensor                 one weight scale per tensor (default: per output channel)\n"
    "  --activations u8|s8          int8 activations: asymmetric uint8 (default) or symmetric\n"
    "  --format qdq|qoperator       int8 as Q/DQ pairs (default) or QLinearConv/QLinearMatMul\n"
    "  --quant-exclude NAME|OP      leave nodes of that name (glob) or op type in float\n"
    "                               (repeatable)\n"
    "  --keep-io-types, --no-keep-io-types\n"
    "                               fp16: float32 model inputs/outputs (default) or float16\n"
    "  --fp16-block-op OP           fp16: keep this op type float32 (repeatable; adds to the\n"
    "                               default list: Range, TopK, NonMaxSuppression, ...)\n"
    "  --fp16-block-node NAME       fp16: keep nodes matching this glob float32 (repeatable)\n"
    "  --no-cleanup                 skip cleanup (BN folding, constant folding, Identity and\n"
    "                               Dropout removal, dedup, dead code)\n"
    "  --recipe R.json              passes from a JSON recipe instead of the flags above\n"
    "  --report R.json              write a JSON report of what changed\n"
    "  --report DIR/                (a folder, or a name ending in /) the full report instead:\n"
    "                               DIR/report.json, report.md and report.html with charts\n"
    "  --external-data              write weights to OUT.data beside OUT\n";

typedef struct args {
    const char *in, *out, *recipe, *report;
    bool have_prune, have_channels, no_cleanup, sparse, external, have_scope, have_norm;
    bool have_pattern, have_min, correct_bias, have_multiple;
    double prune, channels;
    joule_prune_scope scope;
    joule_channel_norm norm;
    int pat_n, pat_m;
    uint64_t min_params;
    int64_t multiple;
    size_t n_skip, n_over;
    const char *skip[MAX_LIST];
    joule_prune_override over[MAX_LIST];
    char over_glob[MAX_LIST][256];
    /* quantization */
    const char *quant, *calib;
    size_t calib_limit; /* 0: all */
    bool have_method, have_percentile, per_tensor, have_acts, have_format, have_keep_io;
    bool keep_io, acts_s8;
    joule_calib_method method;
    double percentile;
    joule_quant_format format;
    size_t n_qex, n_block_op, n_block_node;
    const char *qex[MAX_LIST], *block_op[MAX_LIST], *block_node[MAX_LIST];
} args;

static const char *opt_value(int argc, char **argv, int *i, const char *opt, bool *missing)
{
    size_t n = strlen(opt);
    if (strncmp(argv[*i], opt, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] != 0)
        return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

/* A fraction in [0, 1). */
static bool parse_fraction(const char *s, double *out)
{
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (end == s || *end || errno || isnan(d) || d < 0 || d >= 1)
        return false;
    *out = d;
    return true;
}

static int parse_args(int argc, char **argv, args *a)
{
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        const char *v;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage_text, stdout);
            return 0;
        } else if ((v = opt_value(argc, argv, &i, "-o", &missing)) ||
                   (v = opt_value(argc, argv, &i, "--output", &missing))) {
            if (a->out)
                return cli_usage(CMD, "one output only");
            a->out = v;
        } else if ((v = opt_value(argc, argv, &i, "--prune-scope", &missing))) {
            if (!strcmp(v, "layer"))
                a->scope = JOULE_PRUNE_SCOPE_LAYER;
            else if (!strcmp(v, "global"))
                a->scope = JOULE_PRUNE_SCOPE_GLOBAL;
            else
                return cli_usage(CMD, "--prune-scope is layer or global, not '%s'", v);
            a->have_scope = true;
        } else if ((v = opt_value(argc, argv, &i, "--prune-pattern", &missing))) {
            joule_error e;
            if (joule_parse_pattern(v, &a->pat_n, &a->pat_m, &e))
                return cli_usage(CMD, "--prune-pattern: %s", e.msg);
            a->have_pattern = true;
        } else if ((v = opt_value(argc, argv, &i, "--prune-override", &missing))) {
            const char *eq = strrchr(v, '=');
            if (a->n_over == MAX_LIST)
                return cli_usage(CMD, "too many --prune-override options");
            joule_prune_override *o = &a->over[a->n_over];
            char *glob = a->over_glob[a->n_over];
            if (!eq || eq == v || (size_t)(eq - v) >= sizeof a->over_glob[0] ||
                !parse_fraction(eq + 1, &o->sparsity))
                return cli_usage(CMD, "--prune-override wants GLOB=S with S in [0,1), got '%s'",
                                 v);
            memcpy(glob, v, (size_t)(eq - v));
            glob[eq - v] = 0;
            if (!strncmp(glob, "op:", 3)) {
                if (!glob[3])
                    return cli_usage(CMD, "--prune-override: op: needs an op type");
                o->op_type = glob + 3;
            } else {
                o->match = glob;
            }
            a->n_over++;
        } else if ((v = opt_value(argc, argv, &i, "--prune-skip", &missing))) {
            if (a->n_skip == MAX_LIST)
                return cli_usage(CMD, "too many --prune-skip options");
            a->skip[a->n_skip++] = v;
        } else if ((v = opt_value(argc, argv, &i, "--prune-min-params", &missing))) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(v, &end, 10);
            if (end == v || *end || errno || v[0] == '-')
                return cli_usage(CMD, "--prune-min-params wants a count, got '%s'", v);
            a->min_params = n;
            a->have_min = true;
        } else if ((v = opt_value(argc, argv, &i, "--prune-channels", &missing))) {
            if (!parse_fraction(v, &a->channels))
                return cli_usage(CMD, "--prune-channels wants a ratio in [0,1), got '%s'", v);
            a->have_channels = true;
        } else if ((v = opt_value(argc, argv, &i, "--channel-multiple", &missing))) {
            char *end;
            errno = 0;
            long long n = strtoll(v, &end, 10);
            if (end == v || *end || errno || n < 1 || n > 4096)
                return cli_usage(CMD, "--channel-multiple wants a count in [1, 4096], got '%s'", v);
            a->multiple = n;
            a->have_multiple = true;
        } else if ((v = opt_value(argc, argv, &i, "--channel-norm", &missing))) {
            if (!strcmp(v, "l1"))
                a->norm = JOULE_CHANNEL_L1;
            else if (!strcmp(v, "l2"))
                a->norm = JOULE_CHANNEL_L2;
            else
                return cli_usage(CMD, "--channel-norm is l1 or l2, not '%s'", v);
            a->have_norm = true;
        } else if ((v = opt_value(argc, argv, &i, "--prune", &missing))) {
            if (!parse_fraction(v, &a->prune))
                return cli_usage(CMD, "--prune wants a sparsity in [0,1), got '%s'", v);
            a->have_prune = true;
        } else if ((v = opt_value(argc, argv, &i, "--recipe", &missing))) {
            a->recipe = v;
        } else if ((v = opt_value(argc, argv, &i, "--report", &missing))) {
            a->report = v;
        } else if ((v = opt_value(argc, argv, &i, "--quant-exclude", &missing))) {
            if (a->n_qex == MAX_LIST)
                return cli_usage(CMD, "too many --quant-exclude options");
            a->qex[a->n_qex++] = v;
        } else if ((v = opt_value(argc, argv, &i, "--quant", &missing))) {
            if (strcmp(v, "fp16") && strcmp(v, "int8-dynamic") && strcmp(v, "int8"))
                return cli_usage(CMD, "--quant is fp16, int8-dynamic or int8, not '%s'", v);
            a->quant = v;
        } else if ((v = opt_value(argc, argv, &i, "--calib-limit", &missing))) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(v, &end, 10);
            if (end == v || *end || errno || v[0] == '-' || n == 0 || n > SIZE_MAX)
                return cli_usage(CMD, "--calib-limit wants a count >= 1, got '%s'", v);
            a->calib_limit = (size_t)n;
        } else if ((v = opt_value(argc, argv, &i, "--calib-method", &missing))) {
            joule_error e;
            if (joule_parse_calib_method(v, &a->method, &e))
                return cli_usage(CMD, "--calib-method: %s", e.msg);
            a->have_method = true;
        } else if ((v = opt_value(argc, argv, &i, "--calib", &missing))) {
            a->calib = v;
        } else if ((v = opt_value(argc, argv, &i, "--percentile", &missing))) {
            char *end;
            errno = 0;
            a->percentile = strtod(v, &end);
            if (end == v || *end || errno || !(a->percentile > 50 && a->percentile <= 100))
                return cli_usage(CMD, "--percentile wants a number in (50, 100], got '%s'", v);
            a->have_percentile = true;
        } else if ((v = opt_value(argc, argv, &i, "--activations", &missing))) {
            if (strcmp(v, "u8") && strcmp(v, "s8"))
                return cli_usage(CMD, "--activations is u8 or s8, not '%s'", v);
            a->acts_s8 = !strcmp(v, "s8");
            a->have_acts = true;
        } else if ((v = opt_value(argc, argv, &i, "--format", &missing))) {
            if (strcmp(v, "qdq") && strcmp(v, "qoperator"))
                return cli_usage(CMD, "--format is qdq or qoperator, not '%s'", v);
            a->format = strcmp(v, "qdq") ? JOULE_QUANT_QOPERATOR : JOULE_QUANT_QDQ;
            a->have_format = true;
        } else if ((v = opt_value(argc, argv, &i, "--fp16-block-op", &missing))) {
            if (a->n_block_op == MAX_LIST)
                return cli_usage(CMD, "too many --fp16-block-op options");
            a->block_op[a->n_block_op++] = v;
        } else if ((v = opt_value(argc, argv, &i, "--fp16-block-node", &missing))) {
            if (a->n_block_node == MAX_LIST)
                return cli_usage(CMD, "too many --fp16-block-node options");
            a->block_node[a->n_block_node++] = v;
        } else if (!strcmp(argv[i], "--per-tensor")) {
            a->per_tensor = true;
        } else if (!strcmp(argv[i], "--keep-io-types") || !strcmp(argv[i], "--no-keep-io-types")) {
            a->keep_io = !strcmp(argv[i], "--keep-io-types");
            a->have_keep_io = true;
        } else if (!strcmp(argv[i], "--prune-correct-bias")) {
            a->correct_bias = true;
        } else if (!strcmp(argv[i], "--sparse-storage")) {
            a->sparse = true;
        } else if (!strcmp(argv[i], "--no-cleanup")) {
            a->no_cleanup = true;
        } else if (!strcmp(argv[i], "--external-data")) {
            a->external = true;
        } else if (missing) {
            return cli_usage(CMD, "%s needs a value", argv[i]);
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage(CMD, "unknown option '%s'", argv[i]);
        } else if (a->in) {
            return cli_usage(CMD, "one input model only ('%s' and '%s')", a->in, argv[i]);
        } else {
            a->in = argv[i];
        }
    }
    if (!a->in)
        return cli_usage(CMD, "no input model given");
    if (!a->out)
        return cli_usage(CMD, "no output given (-o OUT)");
    bool pass_flags = a->have_prune || a->have_pattern || a->n_over || a->have_channels ||
                      a->sparse || a->no_cleanup || a->n_skip || a->have_scope || a->have_norm ||
                      a->have_multiple ||
                      a->have_min || a->quant || a->calib || a->calib_limit || a->have_method ||
                      a->have_percentile || a->per_tensor || a->have_acts || a->have_format ||
                      a->n_qex || a->have_keep_io || a->n_block_op || a->n_block_node ||
                      a->correct_bias;
    if (a->recipe && pass_flags)
        return cli_usage(CMD, "--recipe replaces the pass options; give one or the other");
    if (a->have_scope && !a->have_prune)
        return cli_usage(CMD, "--prune-scope needs --prune");
    if ((a->have_min || (a->n_skip && !a->have_channels)) &&
        !(a->have_prune || a->have_pattern || a->n_over))
        return cli_usage(CMD, "--prune-skip/--prune-min-params need --prune, --prune-pattern or "
                              "--prune-override");
    if ((a->have_norm || a->have_multiple) && !a->have_channels)
        return cli_usage(CMD, "--channel-norm and --channel-multiple need --prune-channels");
    bool fp16 = a->quant && !strcmp(a->quant, "fp16"), int8 = a->quant && !strcmp(a->quant, "int8");
    if ((a->have_keep_io || a->n_block_op || a->n_block_node) && !fp16)
        return cli_usage(CMD, "--keep-io-types/--fp16-block-op/--fp16-block-node need --quant fp16");
    bool pruning = a->have_prune || a->have_pattern || a->n_over;
    if (a->correct_bias && !pruning && !a->have_channels)
        return cli_usage(CMD, "--prune-correct-bias needs --prune, --prune-pattern, "
                              "--prune-override or --prune-channels");
    if (a->correct_bias && !a->calib)
        return cli_usage(CMD, "--prune-correct-bias needs calibration data: --calib DATA");
    if ((a->calib || a->calib_limit) && !int8 && !a->correct_bias)
        return cli_usage(CMD, "--calib and --calib-limit need --quant int8 or --prune-correct-bias");
    if ((a->have_method || a->have_percentile || a->have_acts || a->have_format) && !int8)
        return cli_usage(CMD, "--calib-method, --percentile, --activations and --format need "
                              "--quant int8");
    if ((a->per_tensor || a->n_qex) && (!a->quant || fp16))
        return cli_usage(CMD, "--per-tensor/--quant-exclude need --quant int8 or int8-dynamic");
    if (int8 && !a->calib)
        return cli_usage(CMD, "--quant int8 needs calibration data: --calib DATA");
    if (a->have_percentile && a->have_method && a->method != JOULE_CALIB_PERCENTILE)
        return cli_usage(CMD, "--percentile goes with --calib-method percentile");
    if (a->report && !strcmp(a->report, a->out))
        return cli_usage(CMD, "--report and -o name the same file");
    struct stat si, so;
    if (stat(a->in, &si) == 0 && stat(a->out, &so) == 0 && si.st_dev == so.st_dev &&
        si.st_ino == so.st_ino)
        return cli_usage(CMD, "-o names the input model; write somewhere else");
    return -1;
}

static int build_recipe(const args *a, joule_recipe *r, joule_error *err)
{
    if (a->recipe)
        return joule_recipe_load(r, a->recipe, err) ? 1 : 0;
    void *o;
    if (!a->no_cleanup && joule_recipe_add(r, "cleanup", NULL, err))
        return 1;
    if (a->have_channels) {
        if (joule_recipe_add(r, "prune_channels", &o, err))
            return 1;
        joule_channel_options *c = o;
        c->ratio = a->channels;
        if (a->have_norm)
            c->norm = a->norm;
        c->multiple = a->multiple;
        c->skip = a->skip;
        c->n_skip = a->n_skip;
        c->correct_bias.enabled = a->correct_bias;
        c->correct_bias.calib_path = a->correct_bias ? a->calib : NULL;
        c->correct_bias.calib_limit = a->calib_limit;
    }
    if (a->have_prune || a->have_pattern || a->n_over) {
        if (joule_recipe_add(r, "prune", &o, err))
            return 1;
        joule_prune_options *p = o;
        p->sparsity = a->have_prune ? a->prune : -1;
        p->scope = a->scope;
        p->pattern_n = a->pat_n;
        p->pattern_m = a->pat_m;
        p->overrides = a->over;
        p->n_overrides = a->n_over;
        p->skip = a->skip;
        p->n_skip = a->n_skip;
        p->min_params = a->min_params;
        p->correct_bias.enabled = a->correct_bias;
        p->correct_bias.calib_path = a->correct_bias ? a->calib : NULL;
        p->correct_bias.calib_limit = a->calib_limit;
    }
    if (a->quant && !strcmp(a->quant, "fp16")) {
        if (joule_recipe_add(r, "fp16", &o, err))
            return 1;
        joule_fp16_options *f = o;
        if (a->have_keep_io)
            f->keep_io_types = a->keep_io;
        f->block_ops = a->block_op;
        f->n_block_ops = a->n_block_op;
        f->block_nodes = a->block_node;
        f->n_block_nodes = a->n_block_node;
    } else if (a->quant && !strcmp(a->quant, "int8-dynamic")) {
        if (joule_recipe_add(r, "int8_dynamic", &o, err))
            return 1;
        joule_dynamic_options *d = o;
        d->per_tensor = a->per_tensor;
        d->exclude.items = a->qex;
        d->exclude.n = a->n_qex;
    } else if (a->quant) {
        if (joule_recipe_add(r, "int8", &o, err))
            return 1;
        joule_static_options *q = o;
        q->calib_path = a->calib;
        q->calib_limit = a->calib_limit;
        if (a->have_method)
            q->method = a->method;
        if (a->have_percentile)
            q->percentile = a->percentile;
        q->per_tensor = a->per_tensor;
        q->symmetric_activations = a->acts_s8;
        if (a->have_format)
            q->format = a->format;
        q->exclude.items = a->qex;
        q->exclude.n = a->n_qex;
    }
    if (a->sparse && joule_recipe_add(r, "sparse_storage", NULL, err))
        return 1;
    return 0;
}

/* ---- report ---- */

/* Bytes of the model file plus its side file PATH.data when there is one (joule's default name
 * for external data, and the usual one). */
static uint64_t file_bytes(const char *path)
{
    struct stat sb;
    uint64_t n = stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
    {
        char data[4096];
        snprintf(data, sizeof data, "%s.data", path);
        if (stat(data, &sb) == 0)
            n += (uint64_t)sb.st_size;
    }
    return n;
}

typedef struct totals {
    uint64_t file, params, bytes, macs, nodes, weights, zeros;
} totals;

static joule_status measure(const char *path, totals *t, joule_error *err)
{
    memset(t, 0, sizeof *t);
    joule_model *m;
    joule_status st = joule_model_load(path, &m, err);
    if (st)
        return st;
    joule_info *info;
    st = joule_model_info(m, NULL, 0, &info, err);
    if (!st) {
        t->file = file_bytes(path);
        t->params = info->total_params;
        t->bytes = info->total_bytes;
        t->macs = info->total_macs;
        t->nodes = info->total_nodes;
        for (size_t i = 0; i < info->n_layers; i++) {
            const joule_info_layer *l = &info->layers[i];
            uint64_t w = 1;
            for (int d = 0; d < l->weight_shape.rank; d++)
                w *= l->weight_shape.dims[d].size > 0 ? (uint64_t)l->weight_shape.dims[d].size : 1;
            t->weights += w;
            t->zeros += l->zeros;
        }
        joule_info_free(info);
    }
    joule_model_free(m);
    return st;
}

static cJSON *totals_json(const char *path, const totals *t)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "path", path);
    cJSON_AddNumberToObject(o, "file_bytes", (double)t->file);
    cJSON_AddNumberToObject(o, "params", (double)t->params);
    cJSON_AddNumberToObject(o, "param_bytes", (double)t->bytes);
    cJSON_AddNumberToObject(o, "macs", (double)t->macs);
    cJSON_AddNumberToObject(o, "nodes", (double)t->nodes);
    cJSON_AddNumberToObject(o, "weight_sparsity", t->weights ? (double)t->zeros / (double)t->weights : 0);
    return o;
}

/* The report document, as text. */
static char *report_text(const args *a, const joule_recipe *r, const joule_report *rep,
                         const totals *before, const totals *after, joule_error *err)
{
    char *rows = NULL;
    if (joule_report_json(rep, &rows, err))
        return NULL;
    cJSON *doc = cJSON_CreateObject(), *steps = cJSON_CreateArray();
    cJSON *changes = cJSON_Parse(rows);
    free(rows);
    char *out = NULL;
    if (doc && steps && changes) {
        for (size_t i = 0; i < r->n_steps; i++)
            cJSON_AddItemToArray(steps, cJSON_CreateString(r->steps[i].pass));
        cJSON_AddStringToObject(doc, "tool", "joule compress");
        cJSON_AddStringToObject(doc, "recipe", a->recipe ? a->recipe : "command line");
        cJSON_AddItemToObject(doc, "steps", steps);
        steps = NULL;
        cJSON_AddItemToObject(doc, "input", totals_json(a->in, before));
        cJSON_AddItemToObject(doc, "output", totals_json(a->out, after));
        cJSON_AddItemToObject(doc, "changes", changes);
        changes = NULL;
        out = cJSON_Print(doc);
    }
    cJSON_Delete(doc);
    cJSON_Delete(steps);
    cJSON_Delete(changes);
    if (!out)
        joule_fail(err, JOULE_ERR_NOMEM, "report: out of memory");
    return out;
}

/* Opens a temporary file beside path (for an atomic rename later). */
static int open_temp(const char *path, char *tmp, size_t size, joule_error *err)
{
    if ((size_t)snprintf(tmp, size, "%s.tmp.XXXXXX", path) >= size) {
        joule_fail(err, JOULE_ERR_INVALID, "%s: path too long", path);
        return -1;
    }
    int fd = mkstemp(tmp);
    if (fd < 0)
        joule_fail(err, JOULE_ERR_IO, "%s: cannot create a file there: %s", path, strerror(errno));
    return fd;
}

static joule_status finish_report(int fd, const char *tmp, const char *path, const char *text,
                                  joule_error *err)
{
    size_t n = strlen(text), off = 0;
    while (off < n) {
        ssize_t w = write(fd, text + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    bool ok = off == n && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
    ok = (close(fd) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return joule_fail(err, JOULE_ERR_IO, "%s: cannot write the report: %s", path, strerror(e));
    }
    return JOULE_OK;
}

static void print_change(const char *what, uint64_t a, uint64_t b)
{
    double pct = a ? 100.0 * ((double)b - (double)a) / (double)a : 0;
    printf("  %-8s %14llu -> %-14llu (%+.1f%%)\n", what, (unsigned long long)a,
           (unsigned long long)b, pct);
}

/* ---- --report DIR: the full report of joule/report.h ---- */

static bool report_is_dir(const char *path)
{
    struct stat sb;
    size_t n = strlen(path);
    return (n && path[n - 1] == '/') || (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode));
}

/* Measures IN against OUT (sizes, per-layer sparsity and precision, latency; no accuracy
 * without data) and writes DIR/report.{json,md,html}. */
static joule_status write_report_dir(const args *a, const char *dir, const joule_recipe *r,
                                     const joule_report *rep, joule_error *err)
{
    joule_report_options o;
    joule_report_defaults(&o);
    o.changes = rep;
    joule_report_doc *d;
    joule_status st = joule_report_measure(a->in, a->out, &o, &d, err);
    if (st)
        return st;
    char steps[1024] = "";
    for (size_t i = 0; i < r->n_steps; i++)
        snprintf(steps + strlen(steps), sizeof steps - strlen(steps), "%s%s", i ? ", " : "",
                 r->steps[i].pass);
    char title[600];
    snprintf(title, sizeof title, "%s: compression report", a->out);
    if (!(st = joule_report_doc_set(&d->title, title, err)) &&
        !(st = joule_report_doc_set(&d->tool, "joule compress", err)) &&
        !(st = joule_report_doc_set(&d->recipe, a->recipe ? a->recipe : steps, err)) &&
        !(st = joule_report_doc_note(d, err, "Accuracy not measured: `joule report %s %s "
                                             "--data D -o DIR` adds it.", a->in, a->out)))
        st = joule_report_write_dir(d, dir, err);
    joule_report_doc_free(d);
    return st;
}

int joule_cmd_compress(int argc, char **argv)
{
    args *a = calloc(1, sizeof *a);
    if (!a) {
        fprintf(stderr, "joule %s: out of memory\n", CMD);
        return 1;
    }
    int rc = parse_args(argc, argv, a);
    if (rc >= 0) {
        free(a);
        return rc;
    }
    joule_error err = {{0}};
    joule_recipe recipe;
    joule_report rep;
    joule_report_init(&rep);
    joule_model *m = NULL;
    int report_fd = -1;
    char report_tmp[4096];
    totals before, after;
    char *text = NULL;
    rc = 1;
    const char *report_dir = NULL; /* --report DIR/: the full report instead of one JSON file */
    if (a->report && report_is_dir(a->report)) {
        report_dir = a->report;
        a->report = NULL;
    }
    if (joule_recipe_init(&recipe, a->recipe ? a->recipe : "command line", &err)) {
        free(a);
        return cli_error(CMD, &err);
    }
    if (build_recipe(a, &recipe, &err))
        goto out;
    if (recipe.n_steps == 0) {
        rc = cli_usage(CMD, "nothing to do: no passes (give --prune, --prune-channels, ... or "
                            "drop --no-cleanup)");
        goto out;
    }
    if (joule_model_load(a->in, &m, &err) || measure(a->in, &before, &err))
        goto out;
    if (a->report && (report_fd = open_temp(a->report, report_tmp, sizeof report_tmp, &err)) < 0)
        goto out;
    if (joule_pipeline_run(m, &recipe, &rep, &err))
        goto out;
    joule_save_options so = {.external_data = a->external};
    if (joule_model_save(m, a->out, &so, &err))
        goto out;
    if (measure(a->out, &after, &err))
        goto out;
    if (a->report) {
        joule_status st = JOULE_ERR_NOMEM;
        if ((text = report_text(a, &recipe, &rep, &before, &after, &err))) {
            st = finish_report(report_fd, report_tmp, a->report, text, &err);
            report_fd = -1;
        }
        if (st) { /* all or nothing: take the model back */
            unlink(a->out);
            if (a->external) {
                char data[4096];
                snprintf(data, sizeof data, "%s.data", a->out);
                unlink(data);
            }
            goto out;
        }
    }
    if (report_dir && write_report_dir(a, report_dir, &recipe, &rep, &err)) {
        unlink(a->out); /* all or nothing, as with the JSON report */
        if (a->external) {
            char data[4096];
            snprintf(data, sizeof data, "%s.data", a->out);
            unlink(data);
        }
        goto out;
    }
    printf("joule compress: %s -> %s (", a->in, a->out);
    for (size_t i = 0; i < recipe.n_steps; i++)
        printf("%s%s", i ? ", " : "", recipe.steps[i].pass);
    printf("; %zu report rows)\n", rep.n);
    print_change("params", before.params, after.params);
    print_change("MACs", before.macs, after.macs);
    print_change("nodes", before.nodes, after.nodes);
    print_change("file", before.file, after.file);
    printf("  %-8s %13.2f%% -> %.2f%% of layer weights are zero\n", "sparsity",
           before.weights ? 100.0 * (double)before.zeros / (double)before.weights : 0,
           after.weights ? 100.0 * (double)after.zeros / (double)after.weights : 0);
    if (report_dir)
        printf("  report   %s%sreport.html (and report.md, report.json)\n", report_dir,
               report_dir[strlen(report_dir) - 1] == '/' ? "" : "/");
    for (size_t i = 0; i < rep.n; i++)
        if (rep.rows[i].warning)
            fprintf(stderr, "joule %s: warning: %s: %s\n", CMD, rep.rows[i].pass,
                    rep.rows[i].note ? rep.rows[i].note : "");
    rc = 0;
out:
    if (rc == 1)
        cli_error(CMD, &err);
    if (report_fd >= 0) {
        close(report_fd);
        unlink(report_tmp);
    }
    free(text);
    joule_model_free(m);
    joule_report_free(&rep);
    joule_recipe_free(&recipe);
    free(a);
    return rc;
}

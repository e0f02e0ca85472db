/* tools/joule/cmd_eval.c: `joule eval MODEL [--data D] [--baseline BASE.onnx] ...`: accuracy of a
 * classifier on a dataset (Fashion-MNIST's test set by default) with 95% intervals, and against a
 * baseline model its agreement, output errors, McNemar test and (--layers) per-layer errors.
 * Exit status: 0 ok, 1 error, 2 usage, 3 top-1 below --min-accuracy. Uses the public API only. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "commands.h"
#include "joule/accuracy.h"
#include "joule/dataset.h"
#include "joule/joule.h"
#include "joule/npy.h"
#include "progress.h"

static const char CMD[] = "eval";

static void usage(FILE *f)
{
    fprintf(f,
        "usage: joule eval MODEL [--data D] [--labels L] [--baseline BASE.onnx] [--layers]\n"
        "                  [--backend cpu|cuda] [--batch N] [--threads N] [--limit N]\n"
        "                  [--scale S] [--mean a,b,c] [--std a,b,c] [--layout nchw|nhwc]\n"
        "                  [--raw-shape DIMS] [--json] [--min-accuracy A]\n"
        "                  [--predictions FILE.npy]\n"
        "  --data D            IDX (.gz or raw), .npy, .npz, raw float32 (with --raw-shape) or an\n"
        "                      ONNX test_data_set folder (default: Fashion-MNIST's test set,\n"
        "                      %s)\n"
        "  --labels L          labels (IDX, .npy, .npz); default: found beside or inside the data\n"
        "  --baseline BASE     compare with this model: agreement, output errors, McNemar test\n"
        "  --layers            with --baseline: errors of every intermediate tensor both share\n"
        "  --backend B         cpu (default) or cuda\n"
        "  --batch N           items per run (default 64)\n"
        "  --threads N         engine threads (0 = all cores, default)\n"
        "  --limit N           use the first N items only\n"
        "  --scale S           multiply raw values by S (default 1/255 for uint8 data, else 1)\n"
        "  --mean, --std       per-channel normalisation after scaling: (x*S - mean) / std\n"
        "  --layout L          nchw (default) or nhwc items\n"
        "  --raw-shape DIMS    the data is raw float32 with items of this shape, e.g. 1x28x28\n"
        "  --json              print one JSON document instead of text\n"
        "  --min-accuracy A    exit 3 when top-1 accuracy is below A (0.85 or 85%%)\n"
        "  --predictions F     write the top-1 class of every item to F (.npy, int64, data order)\n",
        JOULE_FASHION_MNIST_TEST);
}

typedef struct eval_args {
    const char *model, *data, *labels, *baseline, *predictions;
    joule_backend backend;
    size_t batch, limit;
    int threads;
    bool json, layers, help;
    double min_accuracy; /* < 0: none */
    joule_dataset_options dopt;
    int n_mean, n_std;
} eval_args;

/* Value of option `opt` at argv[*i]: "--opt VALUE" or "--opt=VALUE"; NULL when argv[*i] is not it. */
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

static bool parse_size(const char *v, size_t lo, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || end == v || *end || v[0] == '-' || n < lo || n > (unsigned long long)SIZE_MAX / 2)
        return false;
    *out = (size_t)n;
    return true;
}

static bool parse_float(const char *v, float *out)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(d))
        return false;
    *out = (float)d;
    return true;
}

/* "a,b,c" into up to 4 floats. */
static bool parse_list(const char *v, float *out, int *n)
{
    *n = 0;
    const char *p = v;
    for (;;) {
        char *end;
        errno = 0;
        double d = strtod(p, &end);
        if (errno || end == p || !isfinite(d) || *n == 4)
            return false;
        out[(*n)++] = (float)d;
        if (*end == 0)
            return true;
        if (*end != ',')
            return false;
        p = end + 1;
    }
}

/* "1x28x28" or "1,28,28" into dims. */
static bool parse_dims(const char *v, int *rank, int64_t *dims)
{
    *rank = 0;
    const char *p = v;
    for (;;) {
        char *end;
        errno = 0;
        long long d = strtoll(p, &end, 10);
        if (errno || end == p || d <= 0 || *rank == JOULE_MAX_RANK - 1)
            return false;
        dims[(*rank)++] = d;
        if (*end == 0)
            return true;
        if (*end != 'x' && *end != ',')
            return false;
        p = end + 1;
    }
}

static int parse_args(int argc, char **argv, eval_args *a)
{
    a->min_accuracy = -1;
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        const char *v;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            a->help = true;
            return 0;
        } else if (strcmp(argv[i], "--json") == 0) {
            a->json = true;
        } else if (strcmp(argv[i], "--layers") == 0) {
            a->layers = true;
        } else if ((v = opt_value(argc, argv, &i, "--predictions", &missing))) {
            a->predictions = v;
        } else if ((v = opt_value(argc, argv, &i, "--data", &missing))) {
            a->data = v;
        } else if ((v = opt_value(argc, argv, &i, "--labels", &missing))) {
            a->labels = v;
        } else if ((v = opt_value(argc, argv, &i, "--baseline", &missing))) {
            a->baseline = v;
        } else if ((v = opt_value(argc, argv, &i, "--backend", &missing))) {
            if (strcmp(v, "cpu") == 0)
                a->backend = JOULE_BACKEND_CPU;
            else if (strcmp(v, "cuda") == 0)
                a->backend = JOULE_BACKEND_CUDA;
            else
                return cli_usage(CMD, "--backend wants cpu or cuda, got '%s'", v);
        } else if ((v = opt_value(argc, argv, &i, "--batch", &missing))) {
            if (!parse_size(v, 1, &a->batch) || a->batch > 1u << 20)
                return cli_usage(CMD, "--batch wants a count from 1 to 1048576, got '%s'", v);
        } else if ((v = opt_value(argc, argv, &i, "--threads", &missing))) {
            size_t n;
            if (!parse_size(v, 0, &n) || n > 4096)
                return cli_usage(CMD, "--threads wants a count >= 0, got '%s'", v);
            a->threads = (int)n;
        } else if ((v = opt_value(argc, argv, &i, "--limit", &missing))) {
            if (!parse_size(v, 1, &a->limit))
                return cli_usage(CMD, "--limit wants a count >= 1, got '%s'", v);
        } else if ((v = opt_value(argc, argv, &i, "--scale", &missing))) {
            if (!parse_float(v, &a->dopt.scale) || a->dopt.scale == 0)
                return cli_usage(CMD, "--scale wants a non-zero number, got '%s'", v);
        } else if ((v = opt_value(argc, argv, &i, "--mean", &missing))) {
            if (!parse_list(v, a->dopt.mean, &a->n_mean))
                return cli_usage(CMD, "--mean wants 1 to 4 numbers like 0.485,0.456,0.406, got "
                                 "'%s'", v);
        } else if ((v = opt_value(argc, argv, &i, "--std", &missing))) {
            if (!parse_list(v, a->dopt.std, &a->n_std))
                return cli_usage(CMD, "--std wants 1 to 4 numbers like 0.229,0.224,0.225, got "
                                 "'%s'", v);
            for (int k = 0; k < a->n_std; k++)
                if (a->dopt.std[k] == 0)
                    return cli_usage(CMD, "--std entries must be non-zero");
        } else if ((v = opt_value(argc, argv, &i, "--layout", &missing))) {
            if (strcmp(v, "nchw") == 0 || strcmp(v, "NCHW") == 0)
                a->dopt.layout = JOULE_LAYOUT_NCHW;
            else if (strcmp(v, "nhwc") == 0 || strcmp(v, "NHWC") == 0)
                a->dopt.layout = JOULE_LAYOUT_NHWC;
            else
                return cli_usage(CMD, "--layout wants nchw or nhwc, got '%s'", v);
        } else if ((v = opt_value(argc, argv, &i, "--raw-shape", &missing))) {
            if (!parse_dims(v, &a->dopt.raw_rank, a->dopt.raw_dims))
                return cli_usage(CMD, "--raw-shape wants positive dims like 1x28x28, got '%s'", v);
        } else if ((v = opt_value(argc, argv, &i, "--min-accuracy", &missing))) {
            char *end;
            errno = 0;
            double d = strtod(v, &end);
            bool pct = *end == '%' && end[1] == 0;
            if (pct)
                d /= 100;
            if (errno || end == v || (*end && !pct) || !(d >= 0 && d <= 1))
                return cli_usage(CMD, "--min-accuracy wants a fraction from 0 to 1 or a "
                                 "percentage like 85%%, got '%s'", v);
            a->min_accuracy = d;
        } else if (missing) {
            return cli_usage(CMD, "%s needs a value", argv[i]);
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage(CMD, "unknown option '%s'", argv[i]);
        } else if (a->model) {
            return cli_usage(CMD, "one model only ('%s' and '%s')", a->model, argv[i]);
        } else {
            a->model = argv[i];
        }
    }
    if (!a->model)
        return cli_usage(CMD, "no MODEL given");
    if (a->n_mean && a->n_std && a->n_mean != a->n_std)
        return cli_usage(CMD, "--mean has %d entries, --std %d", a->n_mean, a->n_std);
    if (a->layers && !a->baseline)
        return cli_usage(CMD, "--layers needs --baseline");
    int nc = a->n_mean ? a->n_mean : a->n_std;
    for (int k = 0; k < nc; k++) {
        if (!a->n_mean)
            a->dopt.mean[k] = 0;
        if (!a->n_std)
            a->dopt.std[k] = 1;
    }
    a->dopt.n_channels = nc;
    a->dopt.limit = a->limit;
    a->dopt.labels = a->labels;
    if (!a->data)
        a->data = JOULE_FASHION_MNIST_TEST;
    return -1;
}

static void print_rate(const char *what, const joule_rate *r)
{
    printf("%-12s %7.3f%%  95%% CI [%.3f%%, %.3f%%]  (%zu/%zu)\n", what, 100 * r->rate,
           100 * r->lo, 100 * r->hi, r->hits, r->n);
}

static void print_error(const char *indent, const joule_tensor_error *te)
{
    if (!te->compared) {
        printf("%s%-28s not compared (sizes differ from '%s')\n", indent, te->name,
               te->baseline_name);
        return;
    }
    const joule_error_stats *e = &te->e;
    char sqnr[32];
    if (isinf(e->sqnr_db) && e->sqnr_db > 0)
        snprintf(sqnr, sizeof sqnr, "inf (identical)");
    else
        snprintf(sqnr, sizeof sqnr, "%.2f dB", e->sqnr_db);
    printf("%s%-28s max|err| %-10.4g mean|err| %-10.4g cosine %.6f  SQNR %s", indent, te->name,
           e->max_abs, e->mean_abs, e->cosine, sqnr);
    if (strcmp(te->name, te->baseline_name) != 0)
        printf("  (vs '%s')", te->baseline_name);
    if (e->nonfinite)
        printf("  %zu non-finite", e->nonfinite);
    printf("\n");
}

static void print_text(const joule_eval_result *r)
{
    printf("model        %s\n", r->model ? r->model : "?");
    printf("data         %s (%zu items, %zu classes", r->data ? r->data : "?", r->images,
           r->classes);
    if (r->labels)
        printf(", labels %s", r->labels);
    printf(")\n");
    if (r->has_labels) {
        print_rate("top-1", &r->top1);
        char k[16];
        snprintf(k, sizeof k, "top-%zu", r->topk);
        print_rate(k, &r->top5);
    } else {
        printf("(no labels: accuracy not measured)\n");
    }
    if (r->has_baseline) {
        printf("baseline     %s\n", r->baseline ? r->baseline : "?");
        if (r->has_labels) {
            print_rate("  top-1", &r->base_top1);
            printf("  top-1 delta  %+.3f points\n", 100 * (r->top1.rate - r->base_top1.rate));
        }
        print_rate("  agreement", &r->agreement);
        if (r->has_labels) {
            printf("  McNemar      b=%zu (baseline right, model wrong) c=%zu (model right, "
                   "baseline wrong) exact p", r->mcnemar_b, r->mcnemar_c);
            if (r->mcnemar_p < 1e-300)
                printf("<1e-300\n");
            else
                printf("=%.4g\n", r->mcnemar_p);
        }
        for (size_t i = 0; i < r->n_outputs; i++)
            print_error("  output ", &r->outputs[i]);
        if (r->layers) {
            printf("  layers (%zu shared tensors, graph order):\n", r->n_layers);
            for (size_t i = 0; i < r->n_layers; i++)
                print_error("    ", &r->layers[i]);
        }
    }
    printf("time         %.2f s (model %.2f s, %.0f images/s, batch %zu)\n", r->seconds,
           r->model_seconds, r->images_per_second, r->batch);
}

/* The library's JSON plus the --min-accuracy verdict. */
static int print_json(const joule_eval_result *r, double min_acc, bool below)
{
    joule_error err = {{0}};
    char *text = NULL;
    if (joule_eval_result_json(r, &text, &err))
        return cli_error(CMD, &err);
    if (min_acc >= 0) {
        cJSON *root = cJSON_Parse(text);
        free(text);
        text = NULL;
        if (root && cJSON_AddNumberToObject(root, "min_accuracy", min_acc) &&
            cJSON_AddBoolToObject(root, "passed", !below))
            text = cJSON_Print(root);
        cJSON_Delete(root);
        if (!text) {
            fprintf(stderr, "joule eval: out of memory\n");
            return 1;
        }
        printf("%s\n", text);
        cJSON_free(text);
        return 0;
    }
    printf("%s\n", text);
    free(text);
    return 0;
}

/* The model's top-1 classes as a 1-D int64 .npy (written atomically by joule_npy_write). */
static joule_status write_predictions(const char *path, const joule_eval_result *r,
                                      joule_error *err)
{
    int64_t dims[1] = {(int64_t)r->images};
    joule_tensor *t;
    joule_status st = joule_tensor_new(JOULE_I64, 1, dims, &t, err);
    if (st)
        return st;
    if (r->images)
        memcpy(joule_tensor_mutable_data(t), r->predictions, r->images * sizeof(int64_t));
    st = joule_npy_write(path, t, err);
    joule_tensor_free(t);
    return st;
}

static int run(const eval_args *a)
{
    joule_error err = {{0}};
    joule_model *m = NULL, *base = NULL;
    joule_dataset *ds = NULL;
    joule_eval_result r = {0};
    int rc = 1;
    if (joule_model_load(a->model, &m, &err) ||
        (a->baseline && joule_model_load(a->baseline, &base, &err)) ||
        joule_dataset_open(a->data, &a->dopt, &ds, &err)) {
        rc = cli_error(CMD, &err);
        goto done;
    }
    if (a->min_accuracy >= 0 && !joule_dataset_has_labels(ds)) {
        fprintf(stderr, "joule eval: %s: --min-accuracy needs labels (none found; give "
                "--labels)\n", a->data);
        goto done;
    }
    progress_bar pb;
    progress_start(&pb, "eval", joule_dataset_count(ds), "img");
    joule_eval_options eo = {
        .backend = a->backend,
        .threads = a->threads,
        .batch = a->batch,
        .layers = a->layers,
        .progress = progress_callback,
        .progress_user = &pb,
    };
    joule_status st = joule_eval_run(m, base, ds, &eo, &r, &err);
    progress_finish(&pb);
    if (st) {
        rc = cli_error(CMD, &err);
        goto done;
    }
    if (a->predictions && write_predictions(a->predictions, &r, &err)) {
        rc = cli_error(CMD, &err);
        goto done;
    }
    bool below = a->min_accuracy >= 0 && r.top1.rate < a->min_accuracy;
    if (a->json) {
        if ((rc = print_json(&r, a->min_accuracy, below)))
            goto done;
    } else {
        print_text(&r);
        if (a->min_accuracy >= 0)
            printf("min-accuracy %.3f%%: %s\n", 100 * a->min_accuracy, below ? "FAILED" : "passed");
    }
    fflush(stdout);
    if (below)
        fprintf(stderr, "joule eval: top-1 accuracy %.3f%% is below --min-accuracy %.3f%%\n",
                100 * r.top1.rate, 100 * a->min_accuracy);
    rc = below ? 3 : 0;
done:
    joule_eval_result_free(&r);
    joule_dataset_free(ds);
    joule_model_free(base);
    joule_model_free(m);
    return rc;
}

int joule_cmd_eval(int argc, char **argv)
{
    eval_args a;
    memset(&a, 0, sizeof a);
    int rc = parse_args(argc, argv, &a);
    if (a.help) {
        usage(stdout);
        return 0;
    }
    if (rc >= 0)
        return rc;
    return run(&a);
}

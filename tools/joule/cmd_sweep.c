/* tools/joule/cmd_sweep.c: `joule sweep MODEL --prune 0.3,0.5,0.7,0.9 [--quant Q]`: compresses
 * the model at each level and evaluates it (library calls, one process), then prints the
 * accuracy/size frontier; `--sensitivity` prunes one layer at a time and ranks layers by the
 * accuracy they cost. Exit status: 0 done, 1 failed, 2 usage error, 3 no compressed point reaches
 * --min-accuracy. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "joule/prune.h"
#include "joule/report.h"
#include "report_cli.h"

static const char CMD[] = "sweep";
#define FASHION_MNIST_TRAIN "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
#define MAX_LEVELS 64

static void usage(FILE *f)
{
    fprintf(f,
        "usage: joule sweep MODEL [--data D] --prune 0.3,0.5,0.7,0.9 [options]\n"
        "Compresses MODEL at every pruning level (cleanup, magnitude pruning, sparse storage,\n"
        "then --quant) and evaluates each; prints size, top-1 with its 95%% interval and the\n"
        "frontier (points no other point beats on both size and accuracy).\n"
        "  --data D             evaluation data (default: Fashion-MNIST's test set)\n"
        "  --prune LIST         sparsities in [0,1), comma-separated (default 0.3,0.5,0.7,0.9)\n"
        "  --prune-scope S      layer (default) or global\n"
        "  --quant Q            none (default), fp16, int8-dynamic or int8 (static, calibrated)\n"
        "  --calib D            calibration data for int8 (default with Fashion-MNIST: its\n"
        "                       training images)\n"
        "  --calib-limit N      calibration items (default 256)\n"
        "  --sensitivity        prune one layer at a time (at the first --prune level) and rank\n"
        "                       layers by accuracy drop\n"
        "  --limit N            evaluate the first N items only (faster)\n"
        "  --latency            also time every point (one item per run)\n"
        "  --threads N          engine threads (0 = all cores, default)\n"
        "  -o, --output DIR     also write DIR/report.{json,md,html} with the frontier chart\n"
        "  --json               print the sweep as a report document (JSON); `joule report\n"
        "                       --sweep FILE` takes it\n"
        "  --min-accuracy A     exit 3 when no compressed point reaches top-1 A (0.85 or 85%%)\n");
}

typedef struct sweep_args {
    const char *model, *data, *calib, *out;
    double levels[MAX_LEVELS];
    size_t n_levels, limit, calib_limit;
    joule_sweep_quant quant;
    int scope, threads;
    bool sensitivity, latency, json;
    double min_accuracy;
} sweep_args;

static int parse_args(int argc, char **argv, sweep_args *a)
{
    a->min_accuracy = -1;
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        const char *v;
        size_t n;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--json")) {
            a->json = true;
        } else if (!strcmp(argv[i], "--sensitivity")) {
            a->sensitivity = true;
        } else if (!strcmp(argv[i], "--latency")) {
            a->latency = true;
        } else if ((v = rc_opt(argc, argv, &i, "-o", &missing)) ||
                   (v = rc_opt(argc, argv, &i, "--output", &missing))) {
            a->out = v;
        } else if ((v = rc_opt(argc, argv, &i, "--data", &missing))) {
            a->data = strcmp(v, "fashion-mnist") ? v : JOULE_FASHION_MNIST_TEST;
        } else if ((v = rc_opt(argc, argv, &i, "--calib", &missing))) {
            a->calib = v;
        } else if ((v = rc_opt(argc, argv, &i, "--prune-scope", &missing))) {
            if (!strcmp(v, "layer"))
                a->scope = JOULE_PRUNE_SCOPE_LAYER;
            else if (!strcmp(v, "global"))
                a->scope = JOULE_PRUNE_SCOPE_GLOBAL;
            else
                return cli_usage(CMD, "--prune-scope is layer or global, not '%s'", v);
        } else if ((v = rc_opt(argc, argv, &i, "--prune", &missing))) {
            if (!rc_parse_fractions(v, a->levels, MAX_LEVELS, &a->n_levels))
                return cli_usage(CMD, "--prune wants up to %d sparsities in [0,1) like "
                                      "0.3,0.5,0.7, got '%s'", MAX_LEVELS, v);
        } else if ((v = rc_opt(argc, argv, &i, "--quant", &missing))) {
            joule_error e;
            if (joule_parse_sweep_quant(v, &a->quant, &e))
                return cli_usage(CMD, "--quant: %s", e.msg);
        } else if ((v = rc_opt(argc, argv, &i, "--limit", &missing))) {
            if (!rc_parse_size(v, 1, &a->limit))
                return cli_usage(CMD, "--limit wants a count >= 1, got '%s'", v);
        } else if ((v = rc_opt(argc, argv, &i, "--calib-limit", &missing))) {
            if (!rc_parse_size(v, 1, &a->calib_limit))
                return cli_usage(CMD, "--calib-limit wants a count >= 1, got '%s'", v);
        } else if ((v = rc_opt(argc, argv, &i, "--threads", &missing))) {
            if (!rc_parse_size(v, 0, &n) || n > 4096)
                return cli_usage(CMD, "--threads wants a count >= 0, got '%s'", v);
            a->threads = (int)n;
        } else if ((v = rc_opt(argc, argv, &i, "--min-accuracy", &missing))) {
            if (!rc_parse_accuracy(v, &a->min_accuracy))
                return cli_usage(CMD, "--min-accuracy wants a fraction from 0 to 1 or a "
                                      "percentage like 85%%, got '%s'", v);
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
    if (!a->data)
        a->data = JOULE_FASHION_MNIST_TEST;
    if (!a->n_levels) {
        static const double dflt[] = {0.3, 0.5, 0.7, 0.9};
        memcpy(a->levels, dflt, sizeof dflt);
        a->n_levels = 4;
    }
    if (a->quant == JOULE_SWEEP_QUANT_INT8_STATIC && !a->sensitivity && !a->calib) {
        if (strcmp(a->data, JOULE_FASHION_MNIST_TEST))
            return cli_usage(CMD, "--quant int8 needs --calib DATA (calibration images)");
        a->calib = FASHION_MNIST_TRAIN;
    }
    if (a->sensitivity && a->quant != JOULE_SWEEP_QUANT_NONE)
        return cli_usage(CMD, "--sensitivity prunes only; leave out --quant");
    return -1;
}

static void print_text(const joule_report_doc *d, const sweep_args *a)
{
    printf("model     %s\n", a->model);
    printf("data      %s (%zu items)\n", a->data, d->images);
    if (d->sweep_sensitivity)
        printf("%-4s %-32s %8s  %-26s %9s\n", "rank", "layer", "sparsity", "top-1 [95% CI]",
               "drop");
    else
        printf("%-26s %10s %12s  %-26s %-22s %s\n", "setting", "size", "nonzero", "top-1 [95% CI]",
               a->latency ? "latency" : "", "frontier");
    size_t rank = 0;
    for (size_t i = 0; i < d->n_sweep; i++) {
        const joule_sweep_point *p = &d->sweep[i];
        char t1[80] = "", lat[80] = "";
        if (p->top1.measured)
            snprintf(t1, sizeof t1, "%.2f%% [%.2f, %.2f]", 100 * p->top1.value, 100 * p->top1.lo,
                     100 * p->top1.hi);
        if (p->latency_ms.measured)
            snprintf(lat, sizeof lat, "%.3g ms [%.3g, %.3g]", p->latency_ms.value,
                     p->latency_ms.lo, p->latency_ms.hi);
        if (d->sweep_sensitivity) {
            if (!p->layer) {
                printf("%-4s %-32s %8s  %-26s\n", "-", "(baseline)", "", t1);
                continue;
            }
            if (p->error)
                printf("%-4zu %-32s failed: %s\n", ++rank, p->layer, p->error);
            else
                printf("%-4zu %-32s %7.0f%%  %-26s %+8.2f pt\n", ++rank, p->layer,
                       100 * p->sparsity, t1, 100 * p->accuracy_drop);
            continue;
        }
        if (p->error) {
            printf("%-26s failed: %s\n", p->label, p->error);
            continue;
        }
        printf("%-26s %8.1f kB %12llu  %-26s %-22s %s\n", p->label, (double)p->file_bytes / 1e3,
               (unsigned long long)p->nonzero_params, t1, lat, p->on_frontier ? "*" : "");
    }
}

int joule_cmd_sweep(int argc, char **argv)
{
    sweep_args a;
    memset(&a, 0, sizeof a);
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0)
        return rc;
    joule_error err = {{0}};
    joule_report_doc *d;
    char title[512];
    snprintf(title, sizeof title, "%s: %s", a.model,
             a.sensitivity ? "layer sensitivity" : "compression sweep");
    if (joule_report_doc_new(title, "joule sweep", &d, &err))
        return cli_error(CMD, &err);
    joule_sweep_options o;
    joule_sweep_defaults(&o);
    o.data = a.data;
    o.limit = a.limit;
    o.sparsities = a.levels;
    o.n_sparsities = a.sensitivity ? 1 : a.n_levels;
    o.scope = a.scope;
    o.quant = a.quant;
    o.calib = a.calib;
    o.calib_limit = a.calib_limit;
    o.sensitivity = a.sensitivity;
    o.latency = a.latency;
    o.threads = a.threads;
    progress_bar pb;
    progress_start(&pb, a.sensitivity ? "layers" : "sweep", 0, "pt");
    o.progress = progress_callback;
    o.progress_user = &pb;
    joule_status st = joule_sweep_run(a.model, &o, d, &err);
    progress_finish(&pb);
    if (!st) {
        char recipe[256];
        snprintf(recipe, sizeof recipe, "%s pruning%s%s%s", a.scope ? "global" : "per-layer",
                 a.quant ? " + " : "", a.quant ? joule_sweep_quant_name(a.quant) : "",
                 a.sensitivity ? ", one layer at a time" : "");
        st = joule_report_doc_set(&d->recipe, recipe, &err);
    }
    if (!st && a.out)
        st = joule_report_write_dir(d, a.out, &err);
    if (st) {
        joule_report_doc_free(d);
        return cli_error(CMD, &err);
    }
    if (a.json) {
        char *text;
        if (joule_report_doc_json(d, &text, &err)) {
            joule_report_doc_free(d);
            return cli_error(CMD, &err);
        }
        fputs(text, stdout);
        free(text);
    } else {
        print_text(d, &a);
        if (a.out)
            printf("report    %s/report.html\n", a.out);
    }
    fflush(stdout);
    rc = 0;
    if (a.min_accuracy >= 0) {
        bool any = false;
        for (size_t i = 0; i < d->n_sweep; i++) {
            const joule_sweep_point *p = &d->sweep[i];
            if (p->sparsity >= 0 && p->top1.measured && p->top1.value >= a.min_accuracy)
                any = true;
        }
        if (!any) {
            fprintf(stderr, "joule sweep: no compressed point reaches --min-accuracy %.3f%%\n",
                    100 * a.min_accuracy);
            rc = 3;
        }
    }
    joule_report_doc_free(d);
    return rc;
}

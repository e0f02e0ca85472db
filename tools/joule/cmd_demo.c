/* tools/joule/cmd_demo.c: `joule demo`: the whole story on the bundled CNN fixture in one command.
 * Prunes it to 50% (one global magnitude threshold), quantizes it to int8 (static QDQ,
 * calibrated on a few hundred Fashion-MNIST training images), evaluates original and
 * compressed on the 10,000 test images, times them, meters energy when a meter exists, writes
 * ./joule-demo/report.{json,md,html} and prints a five-line summary. Exit status: 0 done,
 * 1 failed, 2 usage error, 3 compressed top-1 below --min-accuracy. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "joule/onnx.h"
#include "joule/pipeline.h"
#include "joule/prune.h"
#include "joule/quantize.h"
#include "joule/report.h"
#include "report_cli.h"

static const char CMD[] = "demo";
#define FASHION_MNIST_TRAIN "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: joule demo [-o DIR] [--limit N] [--calib-limit N] [--threads N] [--json]\n"
        "Compresses joule's bundled Fashion-MNIST CNN (tests/data/cnn.onnx): 50%% magnitude\n"
        "pruning (one global threshold) and int8 static quantization calibrated on Fashion-MNIST\n"
        "training images; evaluates both models on the test images; writes DIR/report.html,\n"
        "report.md, report.json and the compressed model; prints a five-line summary.\n"
        "  -o, --output DIR   where to write (default ./joule-demo)\n"
        "  --limit N          evaluate the first N test images only (default: all 10,000)\n"
        "  --calib-limit N    calibration images (default 300)\n"
        "  --threads N        engine threads (0 = all cores, default)\n"
        "  --model M          compress M instead of the bundled CNN\n"
        "  --no-energy        do not meter energy\n"
        "  --json             print report.json instead of the summary\n"
        "  --min-accuracy A   exit 3 when the compressed top-1 is below A (0.85 or 85%%)\n");
}

typedef struct demo_args {
    const char *out, *model;
    size_t limit, calib_limit;
    int threads;
    bool json, no_energy;
    double min_accuracy;
} demo_args;

static int parse_args(int argc, char **argv, demo_args *a)
{
    a->out = "joule-demo";
    a->calib_limit = 300;
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
        } else if (!strcmp(argv[i], "--no-energy")) {
            a->no_energy = true;
        } else if ((v = rc_opt(argc, argv, &i, "-o", &missing)) ||
                   (v = rc_opt(argc, argv, &i, "--output", &missing))) {
            a->out = v;
        } else if ((v = rc_opt(argc, argv, &i, "--model", &missing))) {
            a->model = v;
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
        } else {
            return cli_usage(CMD, "unexpected argument '%s'", argv[i]);
        }
    }
    return -1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Cleanup, 50% global magnitude pruning, then int8 static quantization; saves to out. */
static joule_status compress(const char *in, const char *out, const demo_args *a,
                             joule_report *changes, joule_error *err)
{
    joule_model *m;
    joule_status st = joule_model_load(in, &m, err);
    if (st)
        return st;
    joule_recipe r;
    if ((st = joule_recipe_init(&r, "joule demo", err))) {
        joule_model_free(m);
        return st;
    }
    void *o;
    st = joule_recipe_add(&r, "cleanup", NULL, err);
    if (!st && !(st = joule_recipe_add(&r, "prune", &o, err))) {
        joule_prune_options *p = o;
        p->sparsity = 0.5;
        p->scope = JOULE_PRUNE_SCOPE_GLOBAL;
    }
    if (!st)
        st = joule_pipeline_run(m, &r, changes, err);
    joule_recipe_free(&r);
    if (!st) {
        joule_dataset_options copt;
        memset(&copt, 0, sizeof copt);
        copt.limit = a->calib_limit;
        joule_static_options so;
        joule_static_defaults(&so);
        so.calib_path = FASHION_MNIST_TRAIN;
        so.calib_dataset = &copt;
        so.calib_limit = a->calib_limit;
        so.threads = a->threads;
        st = joule_quantize_static(m, &so, changes, err);
    }
    if (!st)
        st = joule_model_save(m, out, NULL, err);
    joule_model_free(m);
    return st;
}

int joule_cmd_demo(int argc, char **argv)
{
    demo_args a;
    memset(&a, 0, sizeof a);
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0)
        return rc;
    double t0 = now_s();
    bool chatty = !a.json && isatty(STDERR_FILENO); /* stage lines only on a terminal */
    joule_error err = {{0}};
    char model[4096], out_model[4096];
    if (a.model)
        snprintf(model, sizeof model, "%s", a.model);
    else if (joule_find_data_file("cnn.onnx", model, sizeof model, &err))
        return cli_error(CMD, &err);
    if ((size_t)snprintf(out_model, sizeof out_model, "%s/cnn-pruned50-int8.onnx", a.out) >=
        sizeof out_model)
        return cli_usage(CMD, "-o: path too long");
    joule_report changes;
    joule_report_init(&changes);
    joule_report_doc *d = NULL;
    rc_progress prog = {0};
    joule_status st = JOULE_OK;
    if (rc_mkdirs(a.out) != 0) {
        joule_report_free(&changes);
        fprintf(stderr, "joule %s: %s: cannot create the folder: %s\n", CMD, a.out,
                strerror(errno));
        return 1;
    }
    if (!st) {
        if (chatty)
            fprintf(stderr, "joule demo: compressing %s (50%% pruning + int8, %zu calibration "
                            "images)\n", model, a.calib_limit);
        st = compress(model, out_model, &a, &changes, &err);
    }
    if (!st) {
        joule_report_options o;
        joule_report_defaults(&o);
        o.data = JOULE_FASHION_MNIST_TEST;
        o.limit = a.limit;
        o.threads = a.threads;
        o.changes = &changes;
        o.skip_energy = a.no_energy;
        o.progress = rc_progress_stage;
        o.progress_user = &prog;
        if (chatty)
            fprintf(stderr, "joule demo: evaluating both models on %s test images, timing them%s\n",
                    a.limit ? "the first" : "10,000", a.no_energy ? "" : ", metering energy");
        st = joule_report_measure(model, out_model, &o, &d, &err);
        rc_progress_done(&prog);
    }
    if (!st)
        st = joule_report_doc_set(&d->title, "joule demo: Fashion-MNIST CNN, pruned 50% and "
                                             "quantized to int8", &err);
    if (!st)
        st = joule_report_doc_set(&d->tool, "joule demo", &err);
    if (!st)
        st = joule_report_doc_set(&d->recipe, "cleanup; prune 50% (global magnitude threshold); "
                                              "int8 static QDQ, per-channel weights, calibrated "
                                              "on Fashion-MNIST training images", &err);
    if (!st)
        st = joule_report_write_dir(d, a.out, &err);
    joule_report_free(&changes);
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
        rc_print_summary(stdout, d, a.out);
        if (chatty)
            fprintf(stderr, "joule demo: done in %.1f s\n", now_s() - t0);
    }
    fflush(stdout);
    rc = 0;
    if (a.min_accuracy >= 0 && d->cand.top1.measured && d->cand.top1.value < a.min_accuracy) {
        fprintf(stderr, "joule demo: compressed top-1 %.3f%% is below --min-accuracy %.3f%%\n",
                100 * d->cand.top1.value, 100 * a.min_accuracy);
        rc = 3;
    }
    joule_report_doc_free(d);
    return rc;
}

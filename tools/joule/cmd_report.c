/* tools/joule/cmd_report.c: `joule report BASE.onnx CAND.onnx [--data D] -o DIR`: measures an
 * original model against its compressed candidate (size, sparsity, accuracy with intervals,
 * agreement, latency, energy when a meter exists) and writes DIR/report.json, report.md and
 * report.html (one self-contained page with inline SVG charts). Exit status: 0 done, 1 failed,
 * 2 usage error, 3 candidate top-1 below --min-accuracy (the report is still written). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "joule/report.h"
#include "report_cli.h"

static const char CMD[] = "report";

static void usage(FILE *f)
{
    fprintf(f,
        "usage: joule report BASE.onnx CAND.onnx -o DIR [options]\n"
        "Measures BASE (the original) against CAND (compressed) and writes DIR/report.json,\n"
        "DIR/report.md and DIR/report.html.\n"
        "  -o, --output DIR     report folder (created when missing)\n"
        "  --data D             evaluation data for accuracy (IDX, .npy, .npz, test_data_set);\n"
        "                       without it accuracy is not measured. 'fashion-mnist' names\n"
        "                       %s\n"
        "  --limit N            evaluate the first N items only\n"
        "  --batch N            items per run (default 64)\n"
        "  --threads N          engine threads (0 = all cores, default)\n"
        "  --trials N           timed latency blocks per model (default 21)\n"
        "  --no-latency         do not time the models\n"
        "  --no-energy          do not meter energy\n"
        "  --energy-window S    energy: seconds per trial window (default 0.5)\n"
        "  --energy-trials N    energy: windows per model (default 10)\n"
        "  --sweep S.json       include the points of `joule sweep --json` (the frontier chart)\n"
        "  --title T            report title\n"
        "  --json               print report.json on stdout instead of the summary\n"
        "  --min-accuracy A     exit 3 when the candidate's top-1 is below A (0.85 or 85%%)\n",
        JOULE_FASHION_MNIST_TEST);
}

typedef struct report_args {
    const char *base, *cand, *out, *data, *sweep, *title;
    size_t limit, batch, trials;
    int threads;
    bool json, no_latency, no_energy;
    double energy_window;
    size_t energy_trials;
    double min_accuracy;
} report_args;

static int parse_args(int argc, char **argv, report_args *a)
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
        } else if (!strcmp(argv[i], "--no-latency")) {
            a->no_latency = true;
        } else if (!strcmp(argv[i], "--no-energy")) {
            a->no_energy = true;
        } else if ((v = rc_opt(argc, argv, &i, "--energy-window", &missing))) {
            char *end;
            a->energy_window = strtod(v, &end);
            if (end == v || *end || !(a->energy_window > 0 && a->energy_window <= 3600))
                return cli_usage(CMD, "--energy-window wants seconds in (0, 3600], got '%s'", v);
        } else if ((v = rc_opt(argc, argv, &i, "--energy-trials", &missing))) {
            if (!rc_parse_size(v, 2, &a->energy_trials) || a->energy_trials > 100000)
                return cli_usage(CMD, "--energy-trials wants a count from 2, got '%s'", v);
        } else if ((v = rc_opt(argc, argv, &i, "-o", &missing)) ||
                   (v = rc_opt(argc, argv, &i, "--output", &missing))) {
            a->out = v;
        } else if ((v = rc_opt(argc, argv, &i, "--data", &missing))) {
            a->data = strcmp(v, "fashion-mnist") ? v : JOULE_FASHION_MNIST_TEST;
        } else if ((v = rc_opt(argc, argv, &i, "--sweep", &missing))) {
            a->sweep = v;
        } else if ((v = rc_opt(argc, argv, &i, "--title", &missing))) {
            a->title = v;
        } else if ((v = rc_opt(argc, argv, &i, "--limit", &missing))) {
            if (!rc_parse_size(v, 1, &a->limit))
                return cli_usage(CMD, "--limit wants a count >= 1, got '%s'", v);
        } else if ((v = rc_opt(argc, argv, &i, "--batch", &missing))) {
            if (!rc_parse_size(v, 1, &a->batch) || a->batch > 1u << 20)
                return cli_usage(CMD, "--batch wants a count from 1 to 1048576, got '%s'", v);
        } else if ((v = rc_opt(argc, argv, &i, "--trials", &missing))) {
            if (!rc_parse_size(v, 1, &a->trials) || a->trials > 100000)
                return cli_usage(CMD, "--trials wants a count from 1 to 100000, got '%s'", v);
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
        } else if (!a->base) {
            a->base = argv[i];
        } else if (!a->cand) {
            a->cand = argv[i];
        } else {
            return cli_usage(CMD, "two models only (BASE and CAND), got '%s' too", argv[i]);
        }
    }
    if (!a->base || !a->cand)
        return cli_usage(CMD, "give the original and the compressed model (BASE.onnx CAND.onnx)");
    if (!a->out)
        return cli_usage(CMD, "no report folder given (-o DIR)");
    if (a->min_accuracy >= 0 && !a->data)
        return cli_usage(CMD, "--min-accuracy needs --data");
    return -1;
}

/* Copies the sweep points of another report (what `joule sweep --json` prints) into d. */
static joule_status add_sweep(joule_report_doc *d, const char *path, joule_error *err)
{
    joule_report_doc *s;
    joule_status st = joule_report_doc_load(path, &s, err);
    if (st)
        return st;
    if (s->n_sweep == 0)
        st = joule_fail(err, JOULE_ERR_INVALID, "%s: no sweep points in this report", path);
    for (size_t i = 0; i < s->n_sweep && !st; i++)
        st = joule_report_doc_add_point(d, &s->sweep[i], err);
    d->sweep_sensitivity = s->sweep_sensitivity;
    joule_report_doc_free(s);
    return st;
}

int joule_cmd_report(int argc, char **argv)
{
    report_args a;
    memset(&a, 0, sizeof a);
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0)
        return rc;
    joule_error err = {{0}};
    joule_report_options o;
    joule_report_defaults(&o);
    o.data = a.data;
    o.limit = a.limit;
    o.batch = a.batch;
    o.threads = a.threads;
    o.latency_trials = a.trials;
    o.skip_latency = a.no_latency;
    o.skip_energy = a.no_energy;
    o.energy_window_s = a.energy_window;
    o.energy_trials = a.energy_trials;
    rc_progress prog = {0};
    o.progress = rc_progress_stage;
    o.progress_user = &prog;
    joule_report_doc *d = NULL;
    joule_status st = joule_report_measure(a.base, a.cand, &o, &d, &err);
    rc_progress_done(&prog);
    if (!st && a.sweep)
        st = add_sweep(d, a.sweep, &err);
    if (!st) {
        char title[512];
        snprintf(title, sizeof title, "%s: compression report", a.cand);
        st = joule_report_doc_set(&d->title, a.title ? a.title : title, &err);
    }
    if (!st && !a.data)
        st = joule_report_doc_note(d, &err, "Accuracy not measured: give --data to evaluate "
                                            "both models.");
    if (!st)
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
        rc_print_summary(stdout, d, a.out);
    }
    fflush(stdout);
    rc = 0;
    if (a.min_accuracy >= 0 && d->cand.top1.measured && d->cand.top1.value < a.min_accuracy) {
        fprintf(stderr, "joule report: candidate top-1 %.3f%% is below --min-accuracy %.3f%%\n",
                100 * d->cand.top1.value, 100 * a.min_accuracy);
        rc = 3;
    }
    joule_report_doc_free(d);
    return rc;
}

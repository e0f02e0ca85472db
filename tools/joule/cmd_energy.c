/* tools/joule/cmd_energy.c: `joule energy BASE.onnx CAND.onnx [options]`: measures inference
 * energy of a base model against a candidate with joule_energy_compare and prints the table (or
 * JSON with --json; Markdown/HTML sections with --markdown/--html). Where no energy counter
 * exists the figures are the labelled estimate, and the output says so. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "joule/energy.h"

static const char usage[] =
    "usage: joule energy BASE.onnx CAND.onnx [--data D] [--backend cpu|cuda] [--threads N]\n"
    "                    [--window 2s] [--trials 10] [--json] [options]\n"
    "Measures energy per inference of BASE (A) and CAND (B): warm-up, idle power before and after,\n"
    "A and B interleaved in pairs (order per pair from --seed), each window at least --window and\n"
    "100 counter update periods long. Sources, tried in order and all listed: powercap sysfs, PAPI,\n"
    "the perf_event RAPL PMU, NVML; without any counter, a labelled estimate (cpu time x W/core).\n"
    "  --data D             evaluation data (IDX, .npy/.npz, raw, test_data_set); default: seeded\n"
    "                       random inputs of each model's input shape\n"
    "  --backend cpu|cuda   engine backend (cuda meters GPUs through NVML)\n"
    "  --threads N          worker threads (0 = all cores, default)\n"
    "  --batch N            items per inference when the batch dim is symbolic (default 1)\n"
    "  --window T           minimum window per trial: 2s, 500ms, 0.05s (default 2s)\n"
    "  --trials N           windows per model (default 10)\n"
    "  --warmup T           warm-up per model (default 1s)\n"
    "  --seed N             seed of the A/B order, the bootstrap and random inputs (default 1)\n"
    "  --resamples N        bootstrap resamples for the B/A interval (default 10000)\n"
    "  --grid-intensity G   grams CO2e per kWh (default 475, CodeCarbon's world average)\n"
    "  --pue P              data-centre power usage effectiveness (default 1.0)\n"
    "  --cpu-watts W        estimate: active watts per busy core (default: table by CPU model)\n"
    "  --estimate           use the estimate even where counters exist (they are still listed)\n"
    "  --powercap-root DIR  powercap tree (default $JOULE_POWERCAP_ROOT, else /sys/class/powercap)\n"
    "  --nvml-lib PATH      NVML library to load (default libnvidia-ml.so.1)\n"
    "  --no-papi            skip PAPI;  --no-perf-event  skip the direct perf_event RAPL PMU\n"
    "  --json               print JSON (schema: docs/energy-schema.md) instead of the table\n"
    "  --markdown FILE      also write the energy section as Markdown\n"
    "  --html FILE          also write the energy section as HTML\n";

/* "2s", "500ms", "250us", "1m", "0.05" (seconds). */
static bool parse_time(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !isfinite(v) || v < 0)
        return false;
    double k = 1;
    if (strcmp(end, "") == 0 || strcmp(end, "s") == 0)
        k = 1;
    else if (strcmp(end, "ms") == 0)
        k = 1e-3;
    else if (strcmp(end, "us") == 0)
        k = 1e-6;
    else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
        k = 60;
    else
        return false;
    *out = v * k;
    return true;
}

static bool parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v))
        return false;
    *out = v;
    return true;
}

static bool parse_count(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end;
    errno = 0;
    if (*s == '-')
        return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || v > max)
        return false;
    *out = v;
    return true;
}

/* Writes text to path through a temporary file renamed over it. */
static int write_file(const char *path, const char *text)
{
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    if (!tmp)
        return ENOMEM;
    snprintf(tmp, n, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return e;
    }
    FILE *f = fdopen(fd, "w");
    int e = 0;
    if (!f) {
        e = errno;
        close(fd);
    } else {
        if (fputs(text, f) < 0)
            e = errno ? errno : EIO;
        if (fclose(f) != 0 && !e)
            e = errno ? errno : EIO;
    }
    if (!e && rename(tmp, path) != 0)
        e = errno;
    if (e)
        unlink(tmp);
    free(tmp);
    return e;
}

int joule_cmd_energy(int argc, char **argv)
{
    joule_energy_options opt;
    memset(&opt, 0, sizeof opt);
    opt.trial.window_s = 2.0;
    opt.trial.trials = 10;
    opt.trial.warmup_s = 1.0;
    opt.trial.seed = 1;
    const char *paths[2] = {NULL, NULL};
    const char *md_path = NULL, *html_path = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = NULL;
        static const char *with_value[] = {"--data", "--backend", "--threads", "--batch", "--window",
                                           "--trials", "--warmup", "--seed", "--resamples",
                                           "--grid-intensity", "--pue", "--cpu-watts", "--powercap-root",
                                           "--nvml-lib", "--markdown", "--html"};
        const char *opt_name = NULL;
        for (size_t k = 0; k < sizeof with_value / sizeof *with_value && !opt_name; k++) {
            size_t l = strlen(with_value[k]);
            if (strncmp(a, with_value[k], l) == 0 && (a[l] == 0 || a[l] == '=')) {
                opt_name = with_value[k];
                if (a[l] == '=')
                    v = a + l + 1;
                else if (i + 1 < argc)
                    v = argv[++i];
                else
                    return cli_usage("energy", "%s needs a value", a);
            }
        }
        unsigned long long n;
        double d;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (strcmp(a, "--estimate") == 0) {
            opt.meter.force_estimate = true;
        } else if (strcmp(a, "--no-papi") == 0) {
            opt.meter.no_papi = true;
        } else if (strcmp(a, "--no-perf-event") == 0) {
            opt.meter.no_perf_event = true;
        } else if (!opt_name && a[0] == '-' && a[1]) {
            return cli_usage("energy", "unknown option '%s'", a);
        } else if (!opt_name) {
            if (paths[1])
                return cli_usage("energy", "two models only (BASE and CAND), got a third: '%s'", a);
            paths[paths[0] ? 1 : 0] = a;
        } else if (strcmp(opt_name, "--data") == 0) {
            opt.data = v;
        } else if (strcmp(opt_name, "--backend") == 0) {
            if (strcmp(v, "cpu") == 0)
                opt.backend = JOULE_BACKEND_CPU;
            else if (strcmp(v, "cuda") == 0)
                opt.backend = JOULE_BACKEND_CUDA;
            else
                return cli_usage("energy", "--backend is cpu or cuda, got '%s'", v);
        } else if (strcmp(opt_name, "--threads") == 0) {
            if (!parse_count(v, 4096, &n))
                return cli_usage("energy", "--threads wants a count >= 0, got '%s'", v);
            opt.threads = (int)n;
        } else if (strcmp(opt_name, "--batch") == 0) {
            if (!parse_count(v, 1 << 20, &n) || n == 0)
                return cli_usage("energy", "--batch wants a count >= 1, got '%s'", v);
            opt.batch = (int)n;
        } else if (strcmp(opt_name, "--window") == 0) {
            if (!parse_time(v, &d) || d <= 0)
                return cli_usage("energy", "--window wants a time such as 2s or 500ms, got '%s'", v);
            opt.trial.window_s = d;
        } else if (strcmp(opt_name, "--warmup") == 0) {
            if (!parse_time(v, &d))
                return cli_usage("energy", "--warmup wants a time such as 1s, got '%s'", v);
            opt.trial.warmup_s = d;
        } else if (strcmp(opt_name, "--trials") == 0) {
            if (!parse_count(v, 100000, &n) || n == 0)
                return cli_usage("energy", "--trials wants a count from 1 to 100000, got '%s'", v);
            opt.trial.trials = (size_t)n;
        } else if (strcmp(opt_name, "--seed") == 0) {
            if (!parse_count(v, ~0ull, &n))
                return cli_usage("energy", "--seed wants an unsigned integer, got '%s'", v);
            opt.trial.seed = n;
        } else if (strcmp(opt_name, "--resamples") == 0) {
            if (!parse_count(v, 10000000, &n) || n < 100)
                return cli_usage("energy", "--resamples wants 100 to 10000000, got '%s'", v);
            opt.trial.resamples = (size_t)n;
        } else if (strcmp(opt_name, "--grid-intensity") == 0) {
            if (!parse_double(v, &d) || d <= 0)
                return cli_usage("energy", "--grid-intensity wants g CO2e per kWh > 0, got '%s'", v);
            opt.trial.grid_g_per_kwh = d;
        } else if (strcmp(opt_name, "--pue") == 0) {
            if (!parse_double(v, &d) || d < 1)
                return cli_usage("energy", "--pue wants a ratio >= 1, got '%s'", v);
            opt.trial.pue = d;
        } else if (strcmp(opt_name, "--cpu-watts") == 0) {
            if (!parse_double(v, &d) || d <= 0 || d > 10000)
                return cli_usage("energy", "--cpu-watts wants watts per busy core, got '%s'", v);
            opt.meter.cpu_watts = d;
        } else if (strcmp(opt_name, "--powercap-root") == 0) {
            opt.meter.powercap_root = v;
        } else if (strcmp(opt_name, "--nvml-lib") == 0) {
            opt.meter.nvml_lib = v;
        } else if (strcmp(opt_name, "--markdown") == 0) {
            md_path = v;
        } else if (strcmp(opt_name, "--html") == 0) {
            html_path = v;
        }
    }
    if (!paths[1])
        return cli_usage("energy", "two models are needed: BASE.onnx CAND.onnx");
    opt.base = paths[0];
    opt.candidate = paths[1];
    if (isatty(STDERR_FILENO))
        fprintf(stderr, "joule energy: measuring for about %.0f s (%zu windows of >= %.3g s per model, "
                        "two idle windows, warm-up)...\n",
                (2.0 * (double)opt.trial.trials + 2) * opt.trial.window_s + 2 * opt.trial.warmup_s,
                opt.trial.trials, opt.trial.window_s);
    joule_error err = {{0}};
    joule_energy_result *r = NULL;
    if (joule_energy_compare(&opt, &r, &err))
        return cli_error("energy", &err);
    int rc = 0;
    char *text = NULL;
    if ((json ? joule_energy_json(r, &text, &err) : joule_energy_text(r, &text, &err)) != JOULE_OK) {
        rc = cli_error("energy", &err);
    } else {
        fputs(text, stdout);
        if (json)
            fputs("\n", stdout);
    }
    free(text);
    const char *outs[2] = {md_path, html_path};
    for (int k = 0; k < 2 && rc == 0; k++) {
        if (!outs[k])
            continue;
        text = NULL;
        if ((k ? joule_energy_html(r, &text, &err) : joule_energy_markdown(r, &text, &err)) != JOULE_OK) {
            rc = cli_error("energy", &err);
            break;
        }
        int e = write_file(outs[k], text);
        free(text);
        if (e) {
            fprintf(stderr, "joule energy: %s: cannot write: %s\n", outs[k], strerror(e));
            rc = 1;
        }
    }
    joule_energy_result_free(r);
    return rc;
}

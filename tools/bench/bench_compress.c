/* tools/bench/bench_compress.c: speed of compression (GitHub issue 4), one step per process so
 * that peak RSS belongs to that step alone. Driven by tools/bench-compress.
 *   bench_compress gen DIR PARAMS                write DIR/big.onnx (+ .data): a chain of MatMuls
 *                                                over 4096x4096 float32 weights, PARAMS in all,
 *                                                every layer different (see gen below)
 *   bench_compress loadsave MODEL OUT            load, then save with external data
 *   bench_compress compress MODEL OUT [SPARSITY] load, the pipeline's "prune" (unstructured,
 *                                                per layer, default 0.5) and "int8_dynamic"
 *                                                steps, then save with external data
 *   bench_compress calib MODEL DATA ITEMS METHOD joule_quantize_static on ITEMS items of DATA
 *                                                with one engine thread; prints the
 *                                                calibration stats
 * Each step prints one line of key=value pairs, starting with the step's name. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench_common.h"
#include "joule/joule.h"
#include "joule/pipeline.h"
#include "joule/prune.h"
#include "joule/quantize.h"

static int fail(const joule_error *err)
{
    fprintf(stderr, "bench_compress: %s\n", err->msg);
    return 1;
}

/* Bytes of OUT plus its external data file (when there is one). */
static long long file_bytes(const char *path)
{
    struct stat sb;
    long long n = stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
    char data[4200];
    snprintf(data, sizeof data, "%s.data", path);
    if (n >= 0 && stat(data, &sb) == 0)
        n += (long long)sb.st_size;
    return n;
}

static int loadsave(const char *in, const char *out)
{
    joule_error err;
    joule_model *m;
    double t0 = bench_now();
    if (joule_model_load(in, &m, &err))
        return fail(&err);
    double t1 = bench_now();
    joule_save_options o = {.external_data = true};
    if (joule_model_save(m, out, &o, &err)) {
        joule_model_free(m);
        return fail(&err);
    }
    double t2 = bench_now();
    printf("loadsave seconds=%.3f load=%.3f save=%.3f peak_rss_bytes=%lld out_bytes=%lld\n",
           t2 - t0, t1 - t0, t2 - t1, bench_peak_rss(), file_bytes(out));
    joule_model_free(m);
    return 0;
}

/* Runs a one-step recipe (pass, its default options; prune gets the sparsity, per layer)
 * through the pipeline, which validates the graph afterwards as it does for the CLI. */
static int run_step(joule_model *m, const char *pass, double sparsity, joule_report *rep)
{
    joule_error err;
    joule_recipe r;
    if (joule_recipe_init(&r, "bench_compress", &err))
        return fail(&err);
    void *opts;
    if (joule_recipe_add(&r, pass, &opts, &err)) {
        joule_recipe_free(&r);
        return fail(&err);
    }
    if (strcmp(pass, "prune") == 0) {
        joule_prune_options *p = opts;
        p->sparsity = sparsity;
        p->scope = JOULE_PRUNE_SCOPE_LAYER;
    }
    joule_status st = joule_pipeline_run(m, &r, rep, &err);
    joule_recipe_free(&r);
    return st ? fail(&err) : 0;
}

static int compress(const char *in, const char *out, double sparsity)
{
    joule_error err;
    joule_model *m;
    joule_report rep;
    joule_report_init(&rep);
    double t0 = bench_now();
    if (joule_model_load(in, &m, &err))
        return fail(&err);
    double t1 = bench_now();
    long long rss_load = bench_peak_rss();
    int rc = run_step(m, "prune", sparsity, &rep);
    double t2 = bench_now();
    long long rss_prune = bench_peak_rss();
    if (!rc)
        rc = run_step(m, "int8_dynamic", 0, &rep);
    double t3 = bench_now();
    long long rss_quant = bench_peak_rss();
    joule_save_options o = {.external_data = true};
    if (!rc && joule_model_save(m, out, &o, &err))
        rc = fail(&err);
    double t4 = bench_now();
    if (!rc) {
        /* what the passes did, from their report rows: weights pruned, layers quantized */
        unsigned long long pruned = 0, params = 0;
        int quantized = 0;
        for (size_t i = 0; i < rep.n; i++) {
            const joule_layer_change *c = &rep.rows[i];
            if (strcmp(c->pass, "prune") == 0 && c->params_before) {
                params += c->params_before;
                pruned += (unsigned long long)(c->sparsity_after * (double)c->params_before + 0.5);
            }
            if (strcmp(c->pass, "int8_dynamic") == 0 && c->dtype_after == JOULE_I8)
                quantized++;
        }
        printf("compress seconds=%.3f load=%.3f prune=%.3f quant=%.3f save=%.3f "
               "peak_rss_bytes=%lld rss_after_load=%lld rss_after_prune=%lld "
               "rss_after_quant=%lld out_bytes=%lld sparsity=%.4f layers_int8=%d\n",
               t4 - t0, t1 - t0, t2 - t1, t3 - t2, t4 - t3, bench_peak_rss(), rss_load, rss_prune,
               rss_quant, file_bytes(out), params ? (double)pruned / (double)params : 0,
               quantized);
    }
    joule_report_free(&rep);
    joule_model_free(m);
    return rc;
}

static int calib(const char *model, const char *data, long long items, const char *method)
{
    joule_error err;
    joule_static_options o;
    joule_static_defaults(&o);
    if (items < 0) {
        fprintf(stderr, "bench_compress: ITEMS must be >= 0, not %lld\n", items);
        return 2;
    }
    if (joule_parse_calib_method(method, &o.method, &err))
        return fail(&err);
    joule_model *m;
    if (joule_model_load(model, &m, &err))
        return fail(&err);
    joule_calib_stats stats = {0};
    o.calib_path = data;
    o.calib_limit = (size_t)items;
    o.threads = 1;
    o.stats = &stats;
    double t0 = bench_now();
    joule_status st = joule_quantize_static(m, &o, NULL, &err);
    double t1 = bench_now();
    joule_model_free(m);
    if (st)
        return fail(&err);
    printf("calib items=%zu passes=%d tensors=%zu seconds=%.4f items_per_s=%.1f "
           "images_per_s=%.1f quantize_seconds=%.4f peak_rss_bytes=%lld\n",
           stats.items, stats.passes, stats.tensors, stats.seconds, stats.items_per_s,
           stats.seconds > 0 ? (double)stats.items / stats.seconds : 0, t1 - t0, bench_peak_rss());
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "gen") == 0)
        return bench_gen_matmul_chain("bench_compress", argv[2], atoll(argv[3]));
    if (argc == 4 && strcmp(argv[1], "loadsave") == 0)
        return loadsave(argv[2], argv[3]);
    if ((argc == 4 || argc == 5) && strcmp(argv[1], "compress") == 0) {
        double s = 0.5;
        if (argc == 5) {
            char *end;
            s = strtod(argv[4], &end);
            if (end == argv[4] || *end || !(s >= 0 && s < 1)) {
                fprintf(stderr, "bench_compress: SPARSITY '%s' is not in [0, 1)\n", argv[4]);
                return 2;
            }
        }
        return compress(argv[2], argv[3], s);
    }
    if (argc == 6 && strcmp(argv[1], "calib") == 0)
        return calib(argv[2], argv[3], atoll(argv[4]), argv[5]);
    fprintf(stderr, "usage: bench_compress gen DIR PARAMS | loadsave MODEL OUT | "
                    "compress MODEL OUT [SPARSITY] | "
                    "calib MODEL DATA ITEMS minmax|percentile|entropy|mse\n");
    return 2;
}

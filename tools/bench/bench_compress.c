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
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "joule/joule.h"
#include "joule/pipeline.h"
#include "joule/prune.h"
#include "joule/quantize.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static long long peak_rss(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (long long)ru.ru_maxrss * 1024;
}

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

/* A chain of MatMuls over 4096-wide float32 weights, PARAMS weights in all. Unlike
 * bench_formats' generator (16-bit values from an LCG's low bits, whose period 2^24 makes every
 * 4096x4096 layer the same, so cleanup's dedup folds the model into one layer), each weight is a
 * continuous, roughly normal value (sum of four uniforms from xorshift64*, std 1/64 as for a
 * 4096-input layer), so layers differ and magnitudes rarely tie, as in trained models. */
static int gen(const char *dir, long long params)
{
    joule_error err;
    joule_model *m;
    if (joule_model_new(17, &m, &err))
        return fail(&err);
    joule_graph *g = m->graph;
    const int64_t width = 4096;
    long long layers = params / (width * width);
    if (layers < 1)
        layers = 1;
    joule_value *x;
    if (joule_graph_value(g, "x", &x, &err) || joule_graph_add_input(g, x, &err)) {
        joule_model_free(m);
        return fail(&err);
    }
    x->dtype = JOULE_F32;
    x->shape.rank = 2;
    x->shape.dims[0].size = 1;
    x->shape.dims[1].size = width;
    char prev[64] = "x";
    uint64_t state = 0x9e3779b97f4a7c15ull;
    for (long long l = 0; l < layers; l++) {
        char wname[64], yname[64];
        snprintf(wname, sizeof wname, "w%lld", l);
        snprintf(yname, sizeof yname, "y%lld", l);
        joule_tensor *t;
        int64_t dims[2] = {width, width};
        if (joule_tensor_new(JOULE_F32, 2, dims, &t, &err)) {
            joule_model_free(m);
            return fail(&err);
        }
        float *p = joule_tensor_mutable_data(t);
        if (!p) {
            joule_tensor_free(t);
            joule_model_free(m);
            fprintf(stderr, "bench_compress: out of memory for layer %lld\n", l);
            return 1;
        }
        for (size_t i = 0; i < t->count; i++) {
            double sum = 0;
            for (int k = 0; k < 4; k++) {
                state ^= state >> 12;
                state ^= state << 25;
                state ^= state >> 27;
                sum += (double)((state * 0x2545f4914f6cdd1dull) >> 11) * 0x1p-53;
            }
            /* Irwin-Hall(4): mean 2, variance 1/3 */
            p[i] = (float)((sum - 2.0) * 1.7320508075688772 / 64.0);
        }
        joule_value *w;
        if (joule_graph_value(g, wname, &w, &err) || joule_graph_set_initializer(g, w, t, &err)) {
            joule_model_free(m);
            return fail(&err);
        }
        const char *in[2] = {prev, wname};
        const char *out[1] = {yname};
        joule_node *n;
        if (joule_node_create(g, "MatMul", "", yname, 2, in, 1, out, &n, &err) ||
            joule_graph_insert_before(g, n, NULL, &err)) {
            joule_model_free(m);
            return fail(&err);
        }
        snprintf(prev, sizeof prev, "%s", yname);
    }
    joule_value *y = joule_graph_find_value(g, prev);
    if (!y || joule_graph_add_output(g, y, &err)) {
        joule_model_free(m);
        return y ? fail(&err) : 1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/big.onnx", dir);
    joule_save_options o = {.external_data = true};
    double t0 = now();
    if (joule_model_save(m, path, &o, &err)) {
        joule_model_free(m);
        return fail(&err);
    }
    printf("gen seconds=%.3f params=%lld path=%s\n", now() - t0, layers * width * width, path);
    joule_model_free(m);
    return 0;
}

static int loadsave(const char *in, const char *out)
{
    joule_error err;
    joule_model *m;
    double t0 = now();
    if (joule_model_load(in, &m, &err))
        return fail(&err);
    double t1 = now();
    joule_save_options o = {.external_data = true};
    if (joule_model_save(m, out, &o, &err)) {
        joule_model_free(m);
        return fail(&err);
    }
    double t2 = now();
    printf("loadsave seconds=%.3f load=%.3f save=%.3f peak_rss_bytes=%lld out_bytes=%lld\n",
           t2 - t0, t1 - t0, t2 - t1, peak_rss(), file_bytes(out));
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
    double t0 = now();
    if (joule_model_load(in, &m, &err))
        return fail(&err);
    double t1 = now();
    long long rss_load = peak_rss();
    int rc = run_step(m, "prune", sparsity, &rep);
    double t2 = now();
    long long rss_prune = peak_rss();
    if (!rc)
        rc = run_step(m, "int8_dynamic", 0, &rep);
    double t3 = now();
    long long rss_quant = peak_rss();
    joule_save_options o = {.external_data = true};
    if (!rc && joule_model_save(m, out, &o, &err))
        rc = fail(&err);
    double t4 = now();
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
               t4 - t0, t1 - t0, t2 - t1, t3 - t2, t4 - t3, peak_rss(), rss_load, rss_prune,
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
    double t0 = now();
    joule_status st = joule_quantize_static(m, &o, NULL, &err);
    double t1 = now();
    joule_model_free(m);
    if (st)
        return fail(&err);
    printf("calib items=%zu passes=%d tensors=%zu seconds=%.4f items_per_s=%.1f "
           "images_per_s=%.1f quantize_seconds=%.4f peak_rss_bytes=%lld\n",
           stats.items, stats.passes, stats.tensors, stats.seconds, stats.items_per_s,
           stats.seconds > 0 ? (double)stats.items / stats.seconds : 0, t1 - t0, peak_rss());
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "gen") == 0)
        return gen(argv[2], atoll(argv[3]));
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

/* tests/interop/quant_tool.c: a small driver for the quantization passes, used by the interop
 * test (which hands its outputs to ONNX Runtime and onnx.checker) and to measure accuracy:
 *
 *   quant_tool fp16    IN OUT [--no-keep-io]
 *   quant_tool dynamic IN OUT [--per-tensor]
 *   quant_tool static  IN OUT CALIB [--method M] [--percentile P] [--per-tensor] [--s8]
 *                      [--qoperator] [--limit N]
 *   quant_tool cleanup IN OUT
 *   quant_tool eval    MODEL DATA [--limit N]      top-1 accuracy (labels found beside DATA)
 *   quant_tool logits  MODEL IMAGES.npy OUT.npy    logits of every item, for comparisons
 *
 * Every command prints one line of results (JSON) on stdout; errors go to stderr, exit 1.
 * QUANT_TOOL_THREADS sets the engine's threads (default 0: all cores). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "joule/compress.h"
#include "joule/dataset.h"
#include "joule/engine.h"
#include "joule/npy.h"
#include "joule/onnx.h"
#include "joule/quantize.h"

static int fail(const char *what, const joule_error *err)
{
    fprintf(stderr, "quant_tool: %s: %s\n", what, err->msg);
    return 1;
}

static const char *flag_value(int argc, char **argv, const char *flag)
{
    for (int i = 0; i + 1 < argc; i++)
        if (strcmp(argv[i], flag) == 0)
            return argv[i + 1];
    return NULL;
}

static int has_flag(int argc, char **argv, const char *flag)
{
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], flag) == 0)
            return 1;
    return 0;
}

static int threads(void)
{
    const char *t = getenv("QUANT_TOOL_THREADS");
    return t ? atoi(t) : 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int save(joule_model *m, const char *out, joule_report *rep)
{
    joule_error err = {{0}};
    if (joule_model_save(m, out, NULL, &err))
        return fail(out, &err);
    (void)rep;
    return 0;
}

static int cmd_quantize(int argc, char **argv)
{
    const char *mode = argv[1], *in = argv[2], *out = argv[3];
    joule_error err = {{0}};
    joule_model *m = NULL;
    if (joule_model_load(in, &m, &err))
        return fail(in, &err);
    joule_report rep;
    joule_report_init(&rep);
    joule_status st = JOULE_OK;
    joule_calib_stats stats = {0};
    double t0 = now_s();
    if (strcmp(mode, "cleanup") == 0) {
        joule_cleanup_options co;
        joule_cleanup_defaults(&co);
        st = joule_cleanup(m, &co, &rep, &err);
    } else if (strcmp(mode, "fp16") == 0) {
        joule_fp16_options o;
        joule_fp16_defaults(&o);
        o.keep_io_types = !has_flag(argc, argv, "--no-keep-io");
        st = joule_quantize_fp16(m, &o, &rep, &err);
    } else if (strcmp(mode, "dynamic") == 0) {
        joule_dynamic_options o;
        joule_dynamic_defaults(&o);
        o.per_tensor = has_flag(argc, argv, "--per-tensor");
        st = joule_quantize_dynamic(m, &o, &rep, &err);
    } else if (strcmp(mode, "static") == 0 && argc >= 5) {
        joule_static_options o;
        joule_static_defaults(&o);
        o.calib_path = argv[4];
        const char *v;
        if ((v = flag_value(argc, argv, "--method")) &&
            joule_parse_calib_method(v, &o.method, &err)) {
            joule_model_free(m);
            return fail("--method", &err);
        }
        if ((v = flag_value(argc, argv, "--percentile")))
            o.percentile = atof(v);
        if ((v = flag_value(argc, argv, "--limit")))
            o.calib_limit = (size_t)atol(v);
        o.per_tensor = has_flag(argc, argv, "--per-tensor");
        o.symmetric_activations = has_flag(argc, argv, "--s8");
        o.format = has_flag(argc, argv, "--qoperator") ? JOULE_QUANT_QOPERATOR : JOULE_QUANT_QDQ;
        o.stats = &stats;
        o.threads = threads();
        st = joule_quantize_static(m, &o, &rep, &err);
    } else {
        joule_model_free(m);
        fprintf(stderr, "quant_tool: unknown mode %s\n", mode);
        return 2;
    }
    double t1 = now_s();
    int rc = st ? fail(mode, &err) : save(m, out, &rep);
    if (!rc) {
        if (getenv("QUANT_TOOL_REPORT")) {
            char *json = NULL;
            if (!joule_report_json(&rep, &json, &err)) {
                fprintf(stderr, "%s\n", json);
                free(json);
            }
        }
        printf("{\"mode\":\"%s\",\"seconds\":%.3f,\"calib_items\":%zu,\"calib_passes\":%d,"
               "\"calib_tensors\":%zu,\"calib_items_per_s\":%.1f}\n",
               mode, t1 - t0, stats.items, stats.passes, stats.tensors, stats.items_per_s);
    }
    joule_report_free(&rep);
    joule_model_free(m);
    return rc;
}

/* Runs model on every batch of ds; calls back with logits. */
static int run_all(const char *model_path, joule_dataset *ds, size_t batch, FILE *logits_npy_unused,
                   size_t *correct, size_t *total, float **all_logits, size_t *n_classes)
{
    (void)logits_npy_unused;
    joule_error err = {{0}};
    joule_model *m = NULL;
    if (joule_model_load(model_path, &m, &err))
        return fail(model_path, &err);
    const joule_value *in = NULL;
    for (size_t i = 0; i < m->graph->n_inputs; i++)
        if (!m->graph->inputs[i]->data)
            in = m->graph->inputs[i];
    if (!in) {
        joule_model_free(m);
        fprintf(stderr, "quant_tool: %s has no fed input\n", model_path);
        return 1;
    }
    int rank;
    int64_t dims[JOULE_MAX_RANK];
    joule_dataset_item_shape(ds, &rank, dims);
    joule_input_shape shape = {.name = in->name};
    shape.shape.rank = rank + 1;
    shape.shape.dims[0].size = (int64_t)batch;
    for (int d = 0; d < rank; d++)
        shape.shape.dims[d + 1].size = dims[d];
    joule_session_options so = {.backend = JOULE_BACKEND_CPU, .threads = threads(),
                                .input_shapes = &shape, .n_input_shapes = 1};
    joule_session *s = NULL;
    if (joule_session_create(m, &so, &s, &err)) {
        joule_model_free(m);
        return fail("session", &err);
    }
    size_t cap = 0, have = 0;
    *correct = *total = 0;
    int rc = 0;
    for (;;) {
        joule_tensor *x = NULL, *y = NULL;
        size_t n = 0;
        if (joule_dataset_next(ds, batch, &x, &y, &n, &err)) {
            rc = fail("data", &err);
            break;
        }
        if (n == 0)
            break;
        if (in->dtype == JOULE_F16) { /* a model converted without keep_io_types */
            joule_tensor *h = NULL;
            if (joule_tensor_new(JOULE_F16, x->rank, x->dims, &h, &err) ||
                !joule_tensor_mutable_data(h)) {
                joule_tensor_free(x);
                joule_tensor_free(y);
                rc = fail("float16 input", &err);
                break;
            }
            uint16_t *hp = joule_tensor_mutable_data(h);
            for (size_t i = 0; i < x->count; i++)
                hp[i] = joule_f32_to_f16(((const float *)x->data)[i]);
            joule_tensor_free(x);
            x = h;
        }
        const joule_tensor *ins[1] = {x};
        if (joule_session_run(s, ins, 1, &err)) {
            joule_tensor_free(x);
            joule_tensor_free(y);
            rc = fail("run", &err);
            break;
        }
        const joule_tensor *o = joule_session_output(s, 0);
        size_t k = o->count / n;
        *n_classes = k;
        float *conv = NULL;
        const float *p = o->data;
        if (o->dtype == JOULE_F16) {
            conv = malloc(o->count * sizeof *conv);
            if (!conv) {
                rc = 1;
                joule_tensor_free(x);
                joule_tensor_free(y);
                break;
            }
            for (size_t i = 0; i < o->count; i++)
                conv[i] = joule_f16_to_f32(((const uint16_t *)o->data)[i]);
            p = conv;
        }
        for (size_t i = 0; i < n; i++) {
            size_t best = 0;
            for (size_t j = 1; j < k; j++)
                if (p[i * k + j] > p[i * k + best])
                    best = j;
            if (y && ((const int64_t *)y->data)[i] == (int64_t)best)
                (*correct)++;
        }
        if (all_logits) {
            if (have + n * k > cap) {
                cap = (have + n * k) * 2;
                float *nl = realloc(*all_logits, cap * sizeof **all_logits);
                if (!nl) {
                    rc = 1;
                    free(conv);
                    joule_tensor_free(x);
                    joule_tensor_free(y);
                    break;
                }
                *all_logits = nl;
            }
            memcpy(*all_logits + have, p, n * k * sizeof *p);
            have += n * k;
        }
        *total += n;
        free(conv);
        joule_tensor_free(x);
        joule_tensor_free(y);
    }
    joule_session_free(s);
    joule_model_free(m);
    return rc;
}

static int cmd_eval(int argc, char **argv)
{
    joule_error err = {{0}};
    joule_dataset_options o = {0};
    const char *v = flag_value(argc, argv, "--limit");
    o.limit = v ? (size_t)atol(v) : 0;
    o.labels = flag_value(argc, argv, "--labels");
    joule_dataset *ds = NULL;
    if (joule_dataset_open(argv[3], &o, &ds, &err))
        return fail(argv[3], &err);
    size_t correct, total, k = 0;
    double t0 = now_s();
    int rc = run_all(argv[2], ds, 256, NULL, &correct, &total, NULL, &k);
    double t1 = now_s();
    if (!rc)
        printf("{\"model\":\"%s\",\"items\":%zu,\"correct\":%zu,\"top1\":%.4f,\"seconds\":%.3f}\n",
               argv[2], total, correct, total ? 100.0 * (double)correct / (double)total : 0.0,
               t1 - t0);
    joule_dataset_free(ds);
    return rc;
}

static int cmd_logits(int argc, char **argv)
{
    (void)argc;
    joule_error err = {{0}};
    joule_dataset *ds = NULL;
    if (joule_dataset_open(argv[3], NULL, &ds, &err))
        return fail(argv[3], &err);
    size_t correct, total, k = 0;
    float *logits = NULL;
    int rc = run_all(argv[2], ds, 64, NULL, &correct, &total, &logits, &k);
    if (!rc) {
        int64_t dims[2] = {(int64_t)total, (int64_t)k};
        joule_tensor *t = NULL;
        if (joule_tensor_new(JOULE_F32, 2, dims, &t, &err) ||
            (memcpy(joule_tensor_mutable_data(t), logits, total * k * sizeof(float)), 0) ||
            joule_npy_write(argv[4], t, &err))
            rc = fail(argv[4], &err);
        joule_tensor_free(t);
        if (!rc)
            printf("{\"items\":%zu,\"classes\":%zu}\n", total, k);
    }
    free(logits);
    joule_dataset_free(ds);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "eval") == 0)
        return cmd_eval(argc, argv);
    if (argc >= 5 && strcmp(argv[1], "logits") == 0)
        return cmd_logits(argc, argv);
    if (argc >= 4)
        return cmd_quantize(argc, argv);
    fprintf(stderr, "usage: quant_tool fp16|dynamic|static|cleanup IN OUT [CALIB] [options]\n"
                    "       quant_tool eval MODEL DATA [--limit N]\n"
                    "       quant_tool logits MODEL IMAGES.npy OUT.npy\n");
    return 2;
}

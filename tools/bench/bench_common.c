/* tools/bench/bench_common.c: see bench_common.h. */
#include "bench_common.h"

#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>

#include "joule/joule.h"

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

long long bench_peak_rss(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return -1;
    return (long long)ru.ru_maxrss * 1024; /* Linux reports KiB */
}

static int fail(const char *prog, const joule_error *err)
{
    fprintf(stderr, "%s: %s\n", prog, err->msg);
    return 1;
}

/* A chain of MatMuls over 4096-wide float32 weights, PARAMS weights in all. Each weight
 * is a continuous, roughly normal value (sum of four uniforms from xorshift64*, std 1/64 as for a
 * 4096-input layer), so layers differ and magnitudes rarely tie, as in trained models. */
int bench_gen_matmul_chain(const char *prog, const char *dir, long long params)
{
    joule_error err;
    joule_model *m;
    if (joule_model_new(17, &m, &err))
        return fail(prog, &err);
    joule_graph *g = m->graph;
    const int64_t width = 4096;
    long long layers = params / (width * width);
    if (layers < 1)
        layers = 1;
    joule_value *x;
    if (joule_graph_value(g, "x", &x, &err) || joule_graph_add_input(g, x, &err)) {
        joule_model_free(m);
        return fail(prog, &err);
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
            return fail(prog, &err);
        }
        float *p = joule_tensor_mutable_data(t);
        if (!p) {
            joule_tensor_free(t);
            joule_model_free(m);
            fprintf(stderr, "%s: out of memory for layer %lld\n", prog, l);
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
            return fail(prog, &err);
        }
        const char *in[2] = {prev, wname};
        const char *out[1] = {yname};
        joule_node *n;
        if (joule_node_create(g, "MatMul", "", yname, 2, in, 1, out, &n, &err) ||
            joule_graph_insert_before(g, n, NULL, &err)) {
            joule_model_free(m);
            return fail(prog, &err);
        }
        snprintf(prev, sizeof prev, "%s", yname);
    }
    joule_value *y = joule_graph_find_value(g, prev);
    if (!y || joule_graph_add_output(g, y, &err)) {
        joule_model_free(m);
        return y ? fail(prog, &err) : 1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/big.onnx", dir);
    joule_save_options o = {.external_data = true};
    double t0 = bench_now();
    if (joule_model_save(m, path, &o, &err)) {
        joule_model_free(m);
        return fail(prog, &err);
    }
    printf("gen seconds=%.3f params=%lld path=%s\n", bench_now() - t0, layers * width * width, path);
    joule_model_free(m);
    return 0;
}

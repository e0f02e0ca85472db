/* tools/bench/bench_formats.c: timing of joule's ONNX codec on a large model, one step per
 * process so that peak RSS belongs to that step alone. Driven by tools/bench-formats.
 *   bench_formats gen DIR PARAMS   write DIR/big.onnx (+ .data): PARAMS float32 weights
 *   bench_formats load MODEL       load, then read every weight byte (checksum)
 *   bench_formats save MODEL OUT   load, then save with external data
 * Each step prints one line: "<step> seconds=<s> peak_rss_bytes=<n>". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "joule/joule.h"

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
    fprintf(stderr, "bench_formats: %s\n", err->msg);
    return 1;
}

/* A chain of MatMuls over 4096-wide float32 weights, PARAMS weights in all. */
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
    if (joule_graph_value(g, "x", &x, &err) || joule_graph_add_input(g, x, &err))
        return fail(&err);
    x->dtype = JOULE_F32;
    x->shape.rank = 2;
    x->shape.dims[0].size = 1;
    x->shape.dims[1].size = width;
    char prev[64] = "x";
    unsigned seed = 1;
    for (long long l = 0; l < layers; l++) {
        char wname[64], yname[64];
        snprintf(wname, sizeof wname, "w%lld", l);
        snprintf(yname, sizeof yname, "y%lld", l);
        joule_tensor *t;
        int64_t dims[2] = {width, width};
        if (joule_tensor_new(JOULE_F32, 2, dims, &t, &err))
            return fail(&err);
        float *p = joule_tensor_mutable_data(t);
        for (size_t i = 0; i < t->count; i++) {
            seed = seed * 1103515245u + 12345u;
            p[i] = (float)((seed >> 8) & 0xffff) / 65536.0f - 0.5f;
        }
        joule_value *w;
        if (joule_graph_value(g, wname, &w, &err) || joule_graph_set_initializer(g, w, t, &err))
            return fail(&err);
        const char *in[2] = {prev, wname};
        const char *out[1] = {yname};
        joule_node *n;
        if (joule_node_create(g, "MatMul", "", yname, 2, in, 1, out, &n, &err) ||
            joule_graph_insert_before(g, n, NULL, &err))
            return fail(&err);
        snprintf(prev, sizeof prev, "%s", yname);
    }
    joule_value *y = joule_graph_find_value(g, prev);
    if (joule_graph_add_output(g, y, &err))
        return fail(&err);
    char path[4096];
    snprintf(path, sizeof path, "%s/big.onnx", dir);
    joule_save_options o = {.external_data = true};
    double t0 = now();
    if (joule_model_save(m, path, &o, &err))
        return fail(&err);
    printf("gen seconds=%.3f params=%lld path=%s\n", now() - t0, layers * width * width, path);
    joule_model_free(m);
    return 0;
}

static int load(const char *path)
{
    joule_error err;
    joule_model *m;
    double t0 = now();
    if (joule_model_load(path, &m, &err))
        return fail(&err);
    double t_load = now() - t0;
    unsigned long long sum = 0;
    for (size_t i = 0; i < m->graph->n_initializers; i++) {
        const joule_tensor *t = m->graph->initializers[i]->data;
        const unsigned long long *p = t->data;
        for (size_t k = 0; k < t->nbytes / 8; k++)
            sum += p[k];
    }
    double t_all = now() - t0;
    printf("load seconds=%.3f load_and_read_seconds=%.3f peak_rss_bytes=%lld checksum=%llx\n",
           t_load, t_all, peak_rss(), sum);
    joule_model_free(m);
    return 0;
}

static int save(const char *in, const char *out)
{
    joule_error err;
    joule_model *m;
    if (joule_model_load(in, &m, &err))
        return fail(&err);
    joule_save_options o = {.external_data = true};
    double t0 = now();
    if (joule_model_save(m, out, &o, &err))
        return fail(&err);
    printf("save seconds=%.3f peak_rss_bytes=%lld\n", now() - t0, peak_rss());
    joule_model_free(m);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "gen") == 0)
        return gen(argv[2], atoll(argv[3]));
    if (argc == 3 && strcmp(argv[1], "load") == 0)
        return load(argv[2]);
    if (argc == 4 && strcmp(argv[1], "save") == 0)
        return save(argv[2], argv[3]);
    fprintf(stderr, "usage: bench_formats gen DIR PARAMS | load MODEL | save MODEL OUT\n");
    return 2;
}

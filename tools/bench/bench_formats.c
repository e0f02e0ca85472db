/* tools/bench/bench_formats.c: timing of joule's ONNX codec on a large model, one step per
 * process so that peak RSS belongs to that step alone. Driven by tools/bench-formats.
 *   bench_formats gen DIR PARAMS   write DIR/big.onnx (+ .data): PARAMS float32 weights, the
 *                                  model bench_compress times (bench_common.h)
 *   bench_formats load MODEL       load, then read every weight byte (checksum)
 *   bench_formats save MODEL OUT   load, then save with external data
 * Each step prints one line: "<step> seconds=<s> peak_rss_bytes=<n>". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "joule/joule.h"

static int fail(const joule_error *err)
{
    fprintf(stderr, "bench_formats: %s\n", err->msg);
    return 1;
}

static int load(const char *path)
{
    joule_error err;
    joule_model *m;
    double t0 = bench_now();
    if (joule_model_load(path, &m, &err))
        return fail(&err);
    double t_load = bench_now() - t0;
    unsigned long long sum = 0;
    for (size_t i = 0; i < m->graph->n_initializers; i++) {
        const joule_tensor *t = m->graph->initializers[i]->data;
        const unsigned long long *p = t->data;
        for (size_t k = 0; k < t->nbytes / 8; k++)
            sum += p[k];
    }
    double t_all = bench_now() - t0;
    printf("load seconds=%.3f load_and_read_seconds=%.3f peak_rss_bytes=%lld checksum=%llx\n",
           t_load, t_all, bench_peak_rss(), sum);
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
    double t0 = bench_now();
    if (joule_model_save(m, out, &o, &err))
        return fail(&err);
    printf("save seconds=%.3f peak_rss_bytes=%lld\n", bench_now() - t0, bench_peak_rss());
    joule_model_free(m);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "gen") == 0)
        return bench_gen_matmul_chain("bench_formats", argv[2], atoll(argv[3]));
    if (argc == 3 && strcmp(argv[1], "load") == 0)
        return load(argv[2]);
    if (argc == 4 && strcmp(argv[1], "save") == 0)
        return save(argv[2], argv[3]);
    fprintf(stderr, "usage: bench_formats gen DIR PARAMS | load MODEL | save MODEL OUT\n");
    return 2;
}

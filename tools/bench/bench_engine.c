/* tools/bench/bench_engine.c: the joule side of tools/bench-engine (engine speed against ONNX
 * Runtime, whose side is tools/node/ort_bench.js; both print the same key=value lines).
 *
 *   bench_engine info
 *       OpenBLAS core, CPU model, quantized-GEMM path: one key=value per line.
 *   bench_engine run MODEL IMAGES.npy --batch B --threads T [--runs N] [--warmup W]
 *                    [--warmup-ms MS] [--labels LABELS.npy]
 *       Creates a session for [B, ...] inputs, runs untimed warm-up batches (at least W, and for
 *       at least MS milliseconds, default 250), then N timed ones
 *       (batch i takes images (i*B .. i*B+B-1) mod count, so batch 1 cycles through the images)
 *       and prints the median, minimum and mean seconds per run, the process CPU seconds per
 *       timed run (all threads; less sensitive to other load), the session's activation arena
 *       (joule_session_peak_bytes), the process's peak RSS and its peak RSS before the model was
 *       loaded (the images already read), and with --labels the top-1 accuracy of the first
 *       batch.
 *   bench_engine identity OUT.onnx
 *       writes an Identity model with the images' [batch,1,28,28] input: timing it gives each
 *       engine's fixed cost per call.
 *   bench_engine quantize IN OUT CALIB.npy
 *       cleanup + static int8 quantization (QDQ, per-channel weights, percentile calibration on
 *       CALIB) through the library (joule/quantize.h); used when `joule compress` has no
 *       --quant flag yet.
 *
 * Re-executes itself with OPENBLAS_CORETYPE set when OpenBLAS misdetects the CPU (joule/cpu.h),
 * like the joule program, and reports the core it ends up with. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "joule/compress.h"
#include "joule/joule.h"
#include "joule/npy.h"
#include "joule/quantize.h"

static void choose_blas_core(char **argv)
{
    const char *better = joule_cpu_blas_better_core();
    if (!better || getenv("JOULE_NO_BLAS_REEXEC") || getenv("JOULE_BLAS_REEXECED"))
        return;
    setenv("OPENBLAS_CORETYPE", better, 1);
    setenv("JOULE_BLAS_REEXECED", "1", 1);
    execv("/proc/self/exe", argv);
    unsetenv("OPENBLAS_CORETYPE");
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static long long peak_rss_bytes(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return -1;
    return (long long)ru.ru_maxrss * 1024; /* Linux reports KiB */
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The "model name" line of /proc/cpuinfo, or "unknown". */
static void cpu_model(char *buf, size_t size)
{
    snprintf(buf, size, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *p = strchr(line, ':');
            if (p) {
                p++;
                while (*p == ' ' || *p == '\t')
                    p++;
                p[strcspn(p, "\n")] = 0;
                snprintf(buf, size, "%s", p);
            }
            break;
        }
    }
    fclose(f);
}

static int cmd_info(void)
{
    char model[256];
    cpu_model(model, sizeof model);
    printf("cpu=%s\nlogical_cpus=%ld\nopenblas_core=%s\n", model, sysconf(_SC_NPROCESSORS_ONLN),
           joule_cpu_blas_core());
    return 0;
}

static long parse_count(const char *flag, const char *v, long lo, long hi)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < lo || n > hi) {
        fprintf(stderr, "bench_engine: %s wants an integer in [%ld, %ld], got '%s'\n", flag, lo,
                hi, v);
        exit(2);
    }
    return n;
}

typedef struct run_opts {
    const char *model, *images, *labels;
    long batch, threads, runs, warmup;
    double warmup_s;
} run_opts;

/* Copies `batch` items starting at item `first` (wrapping) of images into x. */
static void fill_batch(const joule_tensor *images, size_t first, size_t batch, joule_tensor *x)
{
    size_t n = (size_t)images->dims[0];
    size_t item = images->nbytes / n;
    unsigned char *dst = joule_tensor_mutable_data(x);
    for (size_t i = 0; i < batch; i++)
        memcpy(dst + i * item, (const unsigned char *)images->data + ((first + i) % n) * item,
               item);
}

static int cmd_run(const run_opts *o)
{
    joule_error err = {{0}};
    joule_tensor *images = NULL, *labels = NULL;
    joule_model *m = NULL;
    joule_session *s = NULL;
    joule_tensor **xs = NULL;
    double *times = NULL;
    int rc = 1;
    size_t n_x = 0;

    if (joule_npy_read(o->images, &images, &err) ||
        (o->labels && joule_npy_read(o->labels, &labels, &err))) {
        fprintf(stderr, "bench_engine: %s\n", err.msg);
        goto done;
    }
    if (images->rank < 1 || images->dims[0] < 1 || images->rank > JOULE_MAX_RANK) {
        fprintf(stderr, "bench_engine: %s: want at least one item\n", o->images);
        goto done;
    }
    /* The distinct batches the timed loop cycles through, built before timing. */
    int64_t dims[JOULE_MAX_RANK];
    memcpy(dims, images->dims, sizeof dims);
    dims[0] = o->batch;
    size_t n_items = (size_t)images->dims[0];
    n_x = n_items % (size_t)o->batch == 0 ? n_items / (size_t)o->batch : n_items;
    if (n_x == 0)
        n_x = 1;
    xs = calloc(n_x, sizeof *xs);
    times = calloc((size_t)o->runs, sizeof *times);
    if (!xs || !times) {
        fprintf(stderr, "bench_engine: out of memory\n");
        goto done;
    }
    for (size_t i = 0; i < n_x; i++) {
        if (joule_tensor_new(images->dtype, images->rank, dims, &xs[i], &err)) {
            fprintf(stderr, "bench_engine: %s\n", err.msg);
            goto done;
        }
        fill_batch(images, i * (size_t)o->batch, (size_t)o->batch, xs[i]);
    }
    long long rss_before = peak_rss_bytes();

    double t0 = now_s();
    if (joule_model_load(o->model, &m, &err)) {
        fprintf(stderr, "bench_engine: %s\n", err.msg);
        goto done;
    }
    const joule_value *in = NULL;
    for (size_t i = 0; i < m->graph->n_inputs && !in; i++)
        if (!(m->graph->inputs[i]->flags & JOULE_VALUE_INITIALIZER))
            in = m->graph->inputs[i];
    if (!in) {
        fprintf(stderr, "bench_engine: %s: no graph input to feed\n", o->model);
        goto done;
    }
    joule_input_shape shape = {.name = in->name};
    shape.shape.rank = images->rank;
    for (int d = 0; d < images->rank; d++)
        shape.shape.dims[d].size = dims[d];
    joule_session_options so = {.backend = JOULE_BACKEND_CPU, .threads = (int)o->threads,
                                .input_shapes = &shape, .n_input_shapes = 1};
    if (joule_session_create(m, &so, &s, &err)) {
        fprintf(stderr, "bench_engine: %s: %s\n", o->model, err.msg);
        goto done;
    }
    double t_create = now_s() - t0;

    /* warm-up: at least o->warmup runs and o->warmup_s seconds; OpenBLAS's idle worker threads
     * spin (sched_yield) for ~0.1 s after the library starts, which the timed runs should not
     * share a core with */
    long warm = 0;
    double w0 = now_s();
    while (warm < o->warmup || now_s() - w0 < o->warmup_s) {
        const joule_tensor *ins[] = {xs[(size_t)warm % n_x]};
        if (joule_session_run(s, ins, 1, &err)) {
            fprintf(stderr, "bench_engine: %s: run: %s\n", o->model, err.msg);
            goto done;
        }
        warm++;
    }
    long total = o->runs;
    double cpu0 = cpu_s();
    for (long r = 0; r < total; r++) {
        const joule_tensor *ins[] = {xs[(size_t)(warm + r) % n_x]};
        double a = now_s();
        if (joule_session_run(s, ins, 1, &err)) {
            fprintf(stderr, "bench_engine: %s: run: %s\n", o->model, err.msg);
            goto done;
        }
        times[r] = now_s() - a;
    }
    double cpu_per_run = (cpu_s() - cpu0) / (double)o->runs;
    double sum = 0;
    for (long r = 0; r < o->runs; r++)
        sum += times[r];
    qsort(times, (size_t)o->runs, sizeof *times, cmp_double);
    double median = o->runs % 2 ? times[o->runs / 2]
                                : 0.5 * (times[o->runs / 2 - 1] + times[o->runs / 2]);

    printf("engine=joule\nopenblas_core=%s\nbatch=%ld\nthreads=%ld\nruns=%ld\nwarmup=%ld\n",
           joule_cpu_blas_core(), o->batch, o->threads, o->runs, warm);
    printf("median_s=%.9f\nmin_s=%.9f\nmean_s=%.9f\ncpu_s=%.9f\ncreate_s=%.6f\n", median,
           times[0], sum / (double)o->runs, cpu_per_run, t_create);
    printf("arena_bytes=%zu\npeak_rss_bytes=%lld\nbase_rss_bytes=%lld\n",
           joule_session_peak_bytes(s), peak_rss_bytes(), rss_before);

    if (labels) {
        /* Top-1 of the batch that starts at item 0. */
        const joule_tensor *ins[] = {xs[0]};
        if (joule_session_run(s, ins, 1, &err)) {
            fprintf(stderr, "bench_engine: %s: run: %s\n", o->model, err.msg);
            goto done;
        }
        const joule_tensor *y = joule_session_output(s, 0);
        size_t k = y->count / (size_t)o->batch, correct = 0;
        size_t nl = labels->count < (size_t)o->batch ? labels->count : (size_t)o->batch;
        if (y->dtype == JOULE_F32 && labels->dtype == JOULE_I64 && k > 0) {
            const float *p = y->data;
            for (size_t i = 0; i < nl; i++) {
                size_t best = 0;
                for (size_t j = 1; j < k; j++)
                    if (p[i * k + j] > p[i * k + best])
                        best = j;
                correct += ((const int64_t *)labels->data)[i] == (int64_t)best;
            }
            printf("top1=%zu/%zu\n", correct, nl);
        }
    }
    rc = 0;
done:
    for (size_t i = 0; xs && i < n_x; i++)
        joule_tensor_free(xs[i]);
    free(xs);
    free(times);
    joule_session_free(s);
    joule_model_free(m);
    joule_tensor_free(labels);
    joule_tensor_free(images);
    return rc;
}

static int cmd_quantize(const char *in, const char *out, const char *calib)
{
    joule_error err = {{0}};
    joule_model *m = NULL;
    joule_tensor *x = NULL;
    joule_report rep;
    joule_report_init(&rep);
    int rc = 1;
    if (joule_model_load(in, &m, &err) || joule_npy_read(calib, &x, &err)) {
        fprintf(stderr, "bench_engine: %s\n", err.msg);
        goto done;
    }
    joule_cleanup_options co;
    joule_cleanup_defaults(&co);
    joule_static_options so;
    joule_static_defaults(&so);
    so.calib_tensor = x;
    so.format = JOULE_QUANT_QDQ;
    if (joule_cleanup(m, &co, &rep, &err) || joule_quantize_static(m, &so, &rep, &err) ||
        joule_model_save(m, out, NULL, &err)) {
        fprintf(stderr, "bench_engine: quantize %s: %s\n", in, err.msg);
        goto done;
    }
    rc = 0;
done:
    joule_report_free(&rep);
    joule_tensor_free(x);
    joule_model_free(m);
    return rc;
}

/* An Identity model with the images' input [batch,1,28,28] -> output: timing it gives each
 * engine's fixed cost per call (for ORT, mostly the Node.js binding's tensor wrapping). */
static int cmd_identity(const char *out)
{
    joule_error err = {{0}};
    joule_model *m = NULL;
    joule_value *x = NULL, *y = NULL;
    joule_node *n = NULL;
    const char *ins[] = {"input"}, *outs[] = {"logits"};
    int rc = 1;
    if (joule_model_new(13, &m, &err) || joule_graph_value(m->graph, "input", &x, &err) ||
        joule_node_create(m->graph, "Identity", "", "identity", 1, ins, 1, outs, &n, &err) ||
        joule_graph_insert_after(m->graph, n, NULL, &err) ||
        joule_graph_add_input(m->graph, x, &err) ||
        !(y = joule_graph_find_value(m->graph, "logits")) ||
        joule_graph_add_output(m->graph, y, &err))
        goto done;
    m->graph->name = joule_graph_intern(m->graph, "identity");
    const int64_t dims[] = {-1, 1, 28, 28};
    for (int pass = 0; pass < 2; pass++) {
        joule_value *v = pass ? y : x;
        v->dtype = JOULE_F32;
        v->shape.rank = 4;
        for (int d = 0; d < 4; d++) {
            v->shape.dims[d].size = dims[d];
            v->shape.dims[d].sym = d == 0 ? joule_graph_intern(m->graph, "batch") : NULL;
        }
    }
    if (joule_model_save(m, out, NULL, &err))
        goto done;
    rc = 0;
done:
    if (rc)
        fprintf(stderr, "bench_engine: identity %s: %s\n", out, err.msg[0] ? err.msg : "failed");
    joule_model_free(m);
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bench_engine info\n"
               "       bench_engine run MODEL IMAGES.npy --batch B --threads T [--runs N] "
               "[--warmup W] [--warmup-ms MS] [--labels L.npy]\n"
               "       bench_engine quantize IN OUT CALIB.npy\n"
               "       bench_engine identity OUT.onnx\n");
}

int main(int argc, char **argv)
{
    choose_blas_core(argv);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "info") == 0)
        return cmd_info();
    if (strcmp(argv[1], "identity") == 0) {
        if (argc != 3) {
            usage(stderr);
            return 2;
        }
        return cmd_identity(argv[2]);
    }
    if (strcmp(argv[1], "quantize") == 0) {
        if (argc != 5) {
            usage(stderr);
            return 2;
        }
        return cmd_quantize(argv[2], argv[3], argv[4]);
    }
    if (strcmp(argv[1], "run") != 0 || argc < 4) {
        usage(stderr);
        return 2;
    }
    run_opts o = {.model = argv[2], .images = argv[3], .batch = 1, .threads = 1, .runs = 200,
                  .warmup = 20, .warmup_s = 0.25};
    for (int i = 4; i < argc; i++) {
        if (i + 1 >= argc) {
            fprintf(stderr, "bench_engine: %s needs a value\n", argv[i]);
            return 2;
        }
        const char *v = argv[++i];
        if (strcmp(argv[i - 1], "--batch") == 0)
            o.batch = parse_count("--batch", v, 1, 1 << 20);
        else if (strcmp(argv[i - 1], "--threads") == 0)
            o.threads = parse_count("--threads", v, 0, 4096);
        else if (strcmp(argv[i - 1], "--runs") == 0)
            o.runs = parse_count("--runs", v, 1, 10000000);
        else if (strcmp(argv[i - 1], "--warmup") == 0)
            o.warmup = parse_count("--warmup", v, 0, 10000000);
        else if (strcmp(argv[i - 1], "--warmup-ms") == 0)
            o.warmup_s = (double)parse_count("--warmup-ms", v, 0, 600000) / 1000.0;
        else if (strcmp(argv[i - 1], "--labels") == 0)
            o.labels = v;
        else {
            fprintf(stderr, "bench_engine: unknown option '%s'\n", argv[i - 1]);
            usage(stderr);
            return 2;
        }
    }
    return cmd_run(&o);
}

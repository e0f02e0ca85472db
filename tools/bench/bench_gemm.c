/* tools/bench/bench_gemm.c: op-level microbenchmark of the two matrix-multiply cores the engine
 * runs on: float32 sgemm (OpenBLAS, the core joule_cpu_blas_core() names) in GFLOP/s and the
 * int8 GEMM of the quantized kernels (eval/cpu/quant/qgemm.h) on every instruction-set path this
 * CPU runs, in GOP/s (2 ops per multiply-add), with 1 and 2 threads, next to this CPU's
 * theoretical peak. Each figure is the median of repeated calls after a warm-up; every int8 path
 * is checked against joule_qgemm_ref on the first shape before it is timed.
 *
 *   bench_gemm [--markdown] [--threads "1 2"] [--min-seconds S]
 *
 * Re-executes itself with OPENBLAS_CORETYPE set when OpenBLAS misdetects the CPU (joule/cpu.h). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "eval/cpu/quant/qgemm.h"
#include "joule/cpu.h"

void openblas_set_num_threads(int);

typedef struct shape {
    int64_t M, N, K;
    const char *what;
} shape;

/* Square sizes and the GEMMs of the fixture models (batch 64): the MLP's first layer, the CNN's
 * second conv as im2col (per image: 32 x 196 x 144) and its first Gemm. */
static const shape shapes[] = {
    {256, 256, 256, "square"},
    {512, 512, 512, "square"},
    {1024, 1024, 1024, "square"},
    {64, 256, 784, "mlp Gemm 1, batch 64"},
    {32, 196, 144, "cnn conv 2 as im2col, one image"},
    {64, 64, 1568, "cnn Gemm 1, batch 64"},
};
#define N_SHAPES (sizeof shapes / sizeof *shapes)

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

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Deterministic pseudo-random bytes (xorshift). */
static uint32_t rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

#define MAX_SAMPLES 101

/* Median seconds of one call of fn(arg) (and in *best the fastest batch's): batches of calls
 * sized to ~min_s/30 each, 31 batches after a warm-up call. */
static double time_median(void (*fn)(void *), void *arg, double min_s, double *best)
{
    fn(arg);
    double t0 = now_s();
    fn(arg);
    double one = now_s() - t0;
    long reps = one > 0 ? (long)(min_s / 31 / one) : 1000;
    if (reps < 1)
        reps = 1;
    int samples = 31;
    double s[MAX_SAMPLES];
    for (int i = 0; i < samples; i++) {
        double a = now_s();
        for (long r = 0; r < reps; r++)
            fn(arg);
        s[i] = (now_s() - a) / (double)reps;
    }
    qsort(s, (size_t)samples, sizeof *s, cmp_double);
    if (best)
        *best = s[0];
    return s[samples / 2];
}

typedef struct sgemm_arg {
    const shape *sh;
    const float *a, *b;
    float *c;
} sgemm_arg;

static void run_sgemm(void *p)
{
    sgemm_arg *g = p;
    const shape *sh = g->sh;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)sh->M, (blasint)sh->N,
                (blasint)sh->K, 1.0f, g->a, (blasint)sh->K, g->b, (blasint)sh->N, 0.0f, g->c,
                (blasint)sh->N);
}

typedef struct qgemm_arg {
    joule_qgemm_args args;
    const joule_qgemm_packed *b;
    bool failed;
} qgemm_arg;

static void run_qgemm(void *p)
{
    qgemm_arg *g = p;
    joule_error err = {{0}};
    if (joule_qgemm(&g->args, g->b, &err)) {
        fprintf(stderr, "bench_gemm: %s\n", err.msg);
        g->failed = true;
    }
}

/* The clock this core actually runs at, in GHz: a chain of dependent register-register adds
 * retires one add per cycle (an add of an immediate would not do: newer Intel cores fold those
 * at rename and run chains of them faster than the clock), so adds per second is cycles per
 * second. Many short samples, the fastest kept: being descheduled only ever slows a sample.
 * Under a hypervisor /proc/cpuinfo shows the nominal clock, not turbo. */
static double measured_ghz(void)
{
    double best = 0;
    uint64_t x = 1, one = 1;
    for (int t = 0; t < 400; t++) {
        const long iters = 1000; /* x 64 adds: ~25 us */
        double a = now_s();
        for (long i = 0; i < iters; i++) {
#if defined(__x86_64__)
            __asm__ volatile(".rept 64\n\tadd %1, %0\n\t.endr" : "+r"(x) : "r"(one));
#else
            x += one;
            __asm__ volatile("" : "+r"(x));
#endif
        }
        double r = (double)iters * 64 / (now_s() - a) / 1e9;
        if (r > best)
            best = r;
    }
    return x ? best : 0; /* x is never 0; using it keeps the chain live */
}

/* "cpu MHz" of /proc/cpuinfo (the first), or 0. */
static double cpu_mhz(void)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return 0;
    char line[512];
    double mhz = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "cpu MHz", 7) == 0) {
            char *c = strchr(line, ':');
            if (c)
                mhz = atof(c + 1);
            break;
        }
    fclose(f);
    return mhz;
}

int main(int argc, char **argv)
{
    choose_blas_core(argv);
    bool md = false;
    const char *threads_arg = "1 2";
    double min_s = 0.3;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--markdown") == 0)
            md = true;
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads_arg = argv[++i];
        else if (strcmp(argv[i], "--min-seconds") == 0 && i + 1 < argc)
            min_s = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_gemm [--markdown] [--threads \"1 2\"] "
                            "[--min-seconds S]\n");
            return 2;
        }
    }
    int threads[8], n_threads = 0;
    for (const char *p = threads_arg; *p && n_threads < 8;) {
        char *end;
        long t = strtol(p, &end, 10);
        if (end == p)
            break;
        if (t >= 1 && t <= 4096)
            threads[n_threads++] = (int)t;
        p = end;
    }
    if (n_threads == 0) {
        fprintf(stderr, "bench_gemm: --threads wants counts >= 1\n");
        return 2;
    }

    /* ---- theoretical peak */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    double nominal_ghz = cpu_mhz() / 1000.0, clock_ghz = measured_ghz();
    /* the peak uses the measured clock when it is above the nominal one (turbo) */
    double ghz = clock_ghz > nominal_ghz ? clock_ghz : nominal_ghz;
    __builtin_cpu_init();
    bool avx512 = __builtin_cpu_supports("avx512f");
    bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    int lanes = avx512 ? 16 : avx2 ? 8 : 4; /* fp32 lanes per vector */
    const int fma_units = 2;                /* assumption: Xeon cores issue 2 FMAs per cycle */
    double peak_f32 = (double)cores * ghz * fma_units * lanes * 2;
    /* int8: vpdpbusd does 4 u8 x s8 MACs per 32-bit lane; assume 2 per cycle like the FMA */
    bool vnni512 = joule_qgemm_isa_available(JOULE_QGEMM_AVX512VNNI);
    double peak_i8 = vnni512 ? (double)cores * ghz * fma_units * 16 * 4 * 2 : 0;

    if (md) {
        printf("## GEMM microbenchmark (tools/bench/bench_gemm.c)\n\n");
        printf("OpenBLAS core %s. Theoretical peak of this CPU: cores x GHz x FLOPs/cycle = "
               "%ld x %.2f x (%d FMA units x %d fp32 lanes x 2 FLOPs per FMA) = **%.0f GFLOP/s "
               "fp32** (%.0f per core)",
               joule_cpu_blas_core(), cores, ghz, fma_units, lanes, peak_f32,
               peak_f32 / (double)cores);
        if (vnni512)
            printf("; int8 with AVX512-VNNI: %ld x %.2f x (2 x 16 lanes x 4 MACs x 2 ops) = "
                   "**%.0f GOP/s** (AMX tiles, which joule does not use, would give 8x more)",
                   cores, ghz, peak_i8);
        printf(". GHz: /proc/cpuinfo's \"cpu MHz\" says %.2f (the nominal clock the hypervisor "
               "reports); a chain of dependent register adds (one per cycle, fastest of 400 "
               "short samples) runs at %.2f GHz, and the larger of the two is used (AVX-512 "
               "code may run at a lower clock). 2 FMA units per core is an assumption for this Xeon "
               "(1-FMA-unit SKUs halve it).\n\n",
               nominal_ghz, clock_ghz);
        printf("Time and rate: medians; best: the fastest batch of calls, and \"of peak\" uses "
               "it (other load on this shared machine only slows calls down).\n\n");
        printf("| kernel | shape (M x N x K) | threads | time | rate | best | of peak |\n");
        printf("| --- | --- | --- | --- | --- | --- | --- |\n");
    } else {
        printf("openblas_core=%s cores=%ld nominal_ghz=%.3f measured_ghz=%.3f "
               "peak_f32_gflops=%.1f peak_i8_gops=%.1f\n",
               joule_cpu_blas_core(), cores, nominal_ghz, clock_ghz, peak_f32, peak_i8);
    }

    int rc = 0;
    uint32_t seed = 12345;
    for (size_t si = 0; si < N_SHAPES; si++) {
        const shape *sh = &shapes[si];
        size_t mk = (size_t)(sh->M * sh->K), kn = (size_t)(sh->K * sh->N),
               mn = (size_t)(sh->M * sh->N);
        float *a = malloc(mk * sizeof *a), *b = malloc(kn * sizeof *b), *c = malloc(mn * sizeof *c);
        uint8_t *qa = malloc(mk);
        int8_t *qb = malloc(kn);
        int32_t *qc = malloc(mn * sizeof *qc), *qref = malloc(mn * sizeof *qref);
        if (!a || !b || !c || !qa || !qb || !qc || !qref) {
            fprintf(stderr, "bench_gemm: out of memory\n");
            return 1;
        }
        for (size_t i = 0; i < mk; i++) {
            a[i] = (float)(rnd(&seed) % 2001) / 1000.0f - 1.0f;
            qa[i] = (uint8_t)rnd(&seed);
        }
        for (size_t i = 0; i < kn; i++) {
            b[i] = (float)(rnd(&seed) % 2001) / 1000.0f - 1.0f;
            qb[i] = (int8_t)rnd(&seed);
        }
        const int32_t a_zp = 128;
        joule_qgemm_ref(sh->M, sh->N, sh->K, qa, false, sh->K, &a_zp, false, qb, true, sh->N,
                        NULL, false, qref, sh->N);
        double ops = 2.0 * (double)sh->M * (double)sh->N * (double)sh->K;
        char dims[64];
        snprintf(dims, sizeof dims, "%lld x %lld x %lld", (long long)sh->M, (long long)sh->N,
                 (long long)sh->K);

        for (int ti = 0; ti < n_threads; ti++) {
            int t = threads[ti];
            openblas_set_num_threads(t);
            sgemm_arg sg = {sh, a, b, c};
            double sbest;
            double s = time_median(run_sgemm, &sg, min_s, &sbest);
            double rate = ops / s / 1e9, brate = ops / sbest / 1e9;
            double peak_t = peak_f32 / (double)cores * (double)(t < cores ? t : cores);
            if (md)
                printf("| sgemm fp32 (OpenBLAS %s) | %s (%s) | %d | %.1f us | %.1f GFLOP/s | "
                       "%.1f GFLOP/s | %.0f%% |\n",
                       joule_cpu_blas_core(), dims, sh->what, t, s * 1e6, rate, brate,
                       100 * brate / peak_t);
            else
                printf("kernel=sgemm shape=%s threads=%d seconds=%.9f gflops=%.2f\n", dims, t, s,
                       rate);

            for (int isa = JOULE_QGEMM_C; isa < JOULE_QGEMM_ISA_COUNT; isa++) {
                if (!joule_qgemm_isa_available((joule_qgemm_isa)isa))
                    continue;
                /* the portable C path is only worth timing on the smaller shapes */
                if (isa == JOULE_QGEMM_C && ops > 1e9)
                    continue;
                joule_error err = {{0}};
                joule_qgemm_packed *pk = NULL;
                if (joule_qgemm_pack(qb, true, sh->K, sh->N, sh->N, false, NULL, 0,
                                     (joule_qgemm_isa)isa, &pk, &err)) {
                    fprintf(stderr, "bench_gemm: pack %s: %s\n",
                            joule_qgemm_isa_name((joule_qgemm_isa)isa), err.msg);
                    rc = 1;
                    continue;
                }
                size_t sb = joule_qgemm_scratch_bytes(pk, sh->M, t);
                void *scratch = sb ? malloc(sb) : NULL;
                qgemm_arg qg = {.args = {.M = sh->M, .a = qa, .a_signed = false, .lda = sh->K,
                                         .a_zp = &a_zp, .c = qc, .ldc = sh->N, .threads = t,
                                         .scratch = scratch, .scratch_bytes = sb},
                                .b = pk};
                run_qgemm(&qg);
                if (!qg.failed && memcmp(qc, qref, mn * sizeof *qc) != 0) {
                    fprintf(stderr, "bench_gemm: %s path differs from joule_qgemm_ref on %s\n",
                            joule_qgemm_isa_name((joule_qgemm_isa)isa), dims);
                    rc = 1;
                    qg.failed = true;
                }
                if (!qg.failed) {
                    double qbest;
                    double qs = time_median(run_qgemm, &qg, min_s, &qbest);
                    double qrate = ops / qs / 1e9, qbrate = ops / qbest / 1e9;
                    double qpeak = peak_i8 / (double)cores * (double)(t < cores ? t : cores);
                    if (md) {
                        printf("| qgemm int8 %s | %s (%s) | %d | %.1f us | %.1f GOP/s | "
                               "%.1f GOP/s | ",
                               joule_qgemm_isa_name((joule_qgemm_isa)isa), dims, sh->what, t,
                               qs * 1e6, qrate, qbrate);
                        if (qpeak > 0)
                            printf("%.0f%% |\n", 100 * qbrate / qpeak);
                        else
                            printf("- |\n");
                    } else {
                        printf("kernel=qgemm_%s shape=%s threads=%d seconds=%.9f gops=%.2f\n",
                               joule_qgemm_isa_name((joule_qgemm_isa)isa), dims, t, qs, qrate);
                    }
                } else {
                    rc = 1;
                }
                free(scratch);
                joule_qgemm_packed_free(pk);
            }
        }
        free(a);
        free(b);
        free(c);
        free(qa);
        free(qb);
        free(qc);
        free(qref);
    }
    openblas_set_num_threads(1);
    if (md)
        printf("\nint8 \"of peak\" is against the AVX512-VNNI figure for every path (the AVX2 "
               "path's vpmaddwd does a quarter of vpdpbusd's work per instruction).\n");
    return rc;
}

/* joule/energy.h: inference energy of a base model (A) against a candidate (B), and the pieces it
 * is made of: the graph energy model, the statistics and the interleaving.
 *
 * Method (joule_energy_compare): load both models, warm each up, measure idle power for a window,
 * run A and B interleaved in pairs (the order within each pair drawn from a seeded generator),
 * measure idle power again. Every window lasts at least opt->window_s and at least 100 update
 * periods of the slowest counter, and holds as many inferences as fit. Per trial: energy,
 * inferences, wall and CPU time. Reported: total and dynamic (total - idle power x time) energy
 * per inference as mean with a 95% t interval over trials, inferences per joule, latency p50/p90,
 * the B/A energy ratio with a paired bootstrap 95% interval, and CO2e from a grid intensity and
 * PUE. Figures from the estimate are marked estimated everywhere, never blended with measured.
 *
 * The graph model (joule_graph_energy) prices one inference from the graph alone with the
 * per-operation energies of Horowitz, "Computing's energy problem (and what we can do about it)",
 * ISSCC 2014, 45 nm, 0.9 V: an estimate by construction, reported beside the trials. */
#ifndef JOULE_ENERGY_H
#define JOULE_ENERGY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "joule/engine.h"
#include "joule/graph.h"
#include "joule/infer.h"
#include "joule/meter.h"
#include "joule/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- graph energy model (Horowitz, ISSCC 2014, 45 nm), picojoules ---- */
#define JOULE_PJ_INT8_ADD 0.03
#define JOULE_PJ_INT8_MULT 0.2
#define JOULE_PJ_FP16_ADD 0.4
#define JOULE_PJ_FP16_MULT 1.1
#define JOULE_PJ_FP32_ADD 0.9
#define JOULE_PJ_FP32_MULT 3.7
#define JOULE_PJ_SRAM_64BIT 10.0      /* 8 KB SRAM read, per 64 bits */
#define JOULE_PJ_DRAM_64BIT_LO 1300.0 /* DRAM read, per 64 bits: 1.3-2.6 nJ */
#define JOULE_PJ_DRAM_64BIT_HI 2600.0

typedef enum joule_num_class { JOULE_NUM_INT8 = 0, JOULE_NUM_FP16 = 1, JOULE_NUM_FP32 = 2 } joule_num_class;

typedef struct joule_graph_energy {
    uint64_t macs[3];          /* multiply-accumulates by joule_num_class */
    uint64_t other_ops[3];     /* other arithmetic: one add per output element */
    uint64_t weight_bytes;     /* constant bytes read once per inference */
    uint64_t activation_bytes; /* bytes of non-constant node inputs read plus outputs written */
    bool weights_in_cache;     /* weight_bytes <= llc_bytes: weights read at SRAM cost */
    bool dram_from_llc_misses; /* DRAM traffic from measured LLC misses x 64 B */
    double dram_bytes;         /* bytes priced at DRAM cost */
    double compute_pj, sram_pj, dram_lo_pj, dram_hi_pj;
    double joules_lo, joules_hi; /* per inference, DRAM at 1.3 / 2.6 nJ per 64 bits */
} joule_graph_energy;

/* Prices one run of m at the given input shapes (symbolic dims left over count as 1). MACs are
 * classed int8 (integer and QDQ-fed Conv/MatMul/Gemm), fp16 (f16/bf16 inputs) or fp32. Weights
 * cost SRAM reads when they fit in llc_bytes (0: never), else DRAM reads; llc_misses >= 0
 * replaces that with measured misses x 64 bytes. Runs shape inference on m. */
joule_status joule_graph_energy_estimate(joule_model *m, const joule_input_shape *shapes, size_t n,
                                         uint64_t llc_bytes, double llc_misses,
                                         joule_graph_energy *out, joule_error *err);

/* ---- statistics ---- */
/* A mean and its 95% interval; lo and hi are NaN when undefined (fewer than 2 values). */
typedef struct joule_interval {
    double mean, lo, hi;
} joule_interval;

/* splitmix64: the one generator behind interleaving, bootstrap and random inputs. */
uint64_t joule_rng_next(uint64_t *state);
/* Two-sided 95% Student t quantile for df degrees of freedom (t_{0.975,df}). */
double joule_t975(size_t df);
/* Mean of x[0..n) with the t interval mean +- t975(n-1) s / sqrt(n). */
joule_interval joule_mean_ci95(const double *x, size_t n);
/* Quantile p (0..1) of sorted[0..n) with linear interpolation between order statistics
 * (Hyndman-Fan type 7, numpy's default). NaN for n == 0. */
double joule_quantile(const double *sorted, size_t n, double p);
/* Ratio of means sum(b)/sum(a) over pairs (a[i], b[i]) with a paired bootstrap 95% interval:
 * `resamples` draws of n pair indices with replacement (from seed), percentiles 2.5 and 97.5
 * (type 7) of the resampled ratios. */
joule_interval joule_bootstrap_ratio(const double *a, const double *b, size_t n, size_t resamples,
                                     uint64_t seed);
/* Order of each pair: b_first[i] = 1 when B runs first in pair i (top bit of joule_rng_next). */
void joule_interleave(uint64_t seed, size_t n_pairs, unsigned char *b_first);

/* ---- machine ---- */
typedef struct joule_machine {
    char cpu_model[128];
    int cores;            /* online logical CPUs */
    char governor[32];    /* cpufreq governor of cpu0, or "unknown" */
    char kernel[128];     /* "Linux 6.1.0-18-amd64" */
    uint64_t llc_bytes;   /* last-level cache of cpu0 (0 when unknown) */
} joule_machine;
joule_status joule_machine_describe(const joule_file_reader *reader, joule_machine *out,
                                    joule_error *err);

/* ---- the comparison ---- */
/* A workload the trials run: one call = one inference. */
typedef struct joule_workload {
    void *ctx;
    joule_status (*run)(void *ctx, joule_error *err);
} joule_workload;

typedef struct joule_trial_options {
    double window_s;       /* minimum window (raised to 100 counter update periods) */
    size_t trials;         /* windows per model */
    uint64_t seed;
    double warmup_s;       /* per model, before the first idle window (at least 3 runs) */
    size_t resamples;      /* bootstrap draws (0: 10000) */
    double grid_g_per_kwh; /* 0: 475, CodeCarbon's world average */
    double pue;            /* 0: 1.0 */
} joule_trial_options;

typedef struct joule_energy_trial {
    int model;             /* 0 = A (base), 1 = B (candidate) */
    size_t pair;
    int position;          /* 0: ran first in its pair, 1: second */
    double joules, wall_s, cpu_s;
    uint64_t inferences;
    double instructions, cycles, llc_misses; /* -1 when not counted */
} joule_energy_trial;

typedef struct joule_energy_model {
    char path[512];
    joule_interval energy_j;     /* total energy per inference */
    joule_interval dynamic_j;    /* (energy - idle W x wall time) per inference */
    joule_interval per_joule;    /* inferences per joule (1 / energy_j, bounds swapped) */
    joule_interval co2e_g;       /* grams CO2e per inference (energy_j x PUE x grid) */
    double latency_p50_s, latency_p90_s;
    uint64_t inferences;
    double wall_s, cpu_s, joules;
    double instructions, cycles, llc_misses; /* per inference; -1 when not counted */
    bool has_graph;
    joule_graph_energy graph;    /* the graph model: always an estimate */
} joule_energy_model;

#define JOULE_ENERGY_MAX_NOTES 8

typedef struct joule_energy_result {
    joule_machine machine;
    char backend[8];
    int threads;
    int batch;
    char method[160];       /* joule_meter_method() */
    bool estimated;         /* energy figures come from the estimate, not counters */
    double cpu_watts;       /* the estimate's W per core (0 when measured) */
    size_t n_probes, n_domains;
    joule_probe *probes;
    joule_domain *domains;
    double window_s;        /* window actually used */
    double requested_window_s;
    size_t trials;
    uint64_t seed;
    size_t resamples;
    double warmup_s;
    double grid_g_per_kwh, pue;
    double idle_before_w, idle_after_w, idle_w;
    joule_energy_model models[2];
    joule_interval ratio;          /* B/A total energy per inference */
    joule_interval dynamic_ratio;  /* B/A dynamic energy per inference */
    double graph_ratio;            /* B/A of the graph model (joules_lo), NaN without it */
    size_t n_trials;
    joule_energy_trial *trial;     /* in the order run */
    size_t n_notes;
    char notes[JOULE_ENERGY_MAX_NOTES][256];
} joule_energy_result;

/* Runs the method above on two workloads with an open meter (the layer the tests drive with a
 * scripted clock and counters). *out is the caller's (joule_energy_result_free); models[].path
 * and has_graph are left for the caller. */
joule_status joule_energy_trials(joule_meter *meter, const joule_clock *clock,
                                 const joule_workload *a, const joule_workload *b,
                                 const joule_trial_options *opt, joule_energy_result **out,
                                 joule_error *err);

typedef struct joule_energy_options {
    const char *base, *candidate; /* ONNX paths */
    const char *data;        /* dataset (see dataset.h) or NULL: random inputs (seeded) */
    joule_backend backend;
    int threads;             /* 0: all cores */
    int batch;               /* items per inference for a symbolic batch dim (0: 1) */
    joule_trial_options trial;
    joule_meter_options meter;
} joule_energy_options;

/* Loads both models, opens a meter and runs the trials; also prices both graphs. */
joule_status joule_energy_compare(const joule_energy_options *opt, joule_energy_result **out,
                                  joule_error *err);
void joule_energy_result_free(joule_energy_result *r);

/* Renderings (malloc'd strings). JSON follows docs/energy-schema.md; Markdown and HTML are
 * sections the report writer embeds; text is what `joule energy` prints. */
joule_status joule_energy_json(const joule_energy_result *r, char **out, joule_error *err);
joule_status joule_energy_markdown(const joule_energy_result *r, char **out, joule_error *err);
joule_status joule_energy_html(const joule_energy_result *r, char **out, joule_error *err);
joule_status joule_energy_text(const joule_energy_result *r, char **out, joule_error *err);

#ifdef __cplusplus
}
#endif
#endif

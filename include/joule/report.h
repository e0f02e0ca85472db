/* joule/report.h: what compression saved and what it cost, in one document, and the tools that
 * make many of them. Four parts:
 *
 *  - The report document (joule_report_doc): an original model and its compressed candidate
 *    side by side (file size, parameters, MACs, weight sparsity, top-1/top-5 accuracy, latency
 *    and energy per inference, each with a 95% interval where one exists), a per-layer table
 *    (sparsity and precision before and after), pass rows from the compression pipeline, and
 *    optionally the points of a sweep with their accuracy/size frontier. joule_report_measure
 *    fills one by measuring two model files; the writers turn it into JSON, Markdown and one
 *    self-contained HTML page with inline SVG charts (no scripts, nothing fetched, no fonts),
 *    and joule_report_write_dir writes report.json, report.md and report.html into a folder.
 *    Numbers that were not measured stay absent ("not measured"), never guessed.
 *  - Sweeps: compress one model at several settings and evaluate each (joule_sweep_run), or
 *    prune one layer at a time and rank layers by accuracy drop (sensitivity).
 *  - Batches: a JSON manifest of models, each with a recipe, an output path and data; shard
 *    selection, resume checks, one job run through library calls, and summary.csv/json.
 *
 * Strings in the document are owned by it (malloc'd copies). Every string that came from a model
 * (node names, op types, paths) is escaped by the writers for the format they write. */
#ifndef JOULE_REPORT_H
#define JOULE_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "joule/compress.h"
#include "joule/dataset.h"
#include "joule/dtype.h"
#include "joule/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A measured number with its 95% interval. measured is false when nothing was measured (the
 * writers then say "not measured"); lo == hi == value when there is no interval. */
typedef struct joule_estimate {
    bool measured;
    double value, lo, hi;
} joule_estimate;

/* One model of the comparison. */
typedef struct joule_report_model {
    char *path;
    uint64_t file_bytes;        /* the .onnx file plus its external data */
    uint64_t params, param_bytes, macs, nodes;
    double weight_sparsity;     /* zeros / elements over the layers' weights, 0..1 */
    joule_estimate top1, top5;  /* fractions 0..1 */
    joule_estimate latency_ms;  /* one inference of one item (median with its interval) */
    joule_estimate energy_j;    /* joules per inference */
    bool energy_estimated;      /* energy comes from a model of the machine, not a counter */
    char *energy_source;        /* "rapl", "nvml", "estimate", ... or NULL */
} joule_report_model;

/* One layer: a node with a constant weight in the original, and what became of it. */
typedef struct joule_report_layer {
    char *name, *op_type;
    joule_dtype dtype_before, dtype_after;
    double sparsity_before, sparsity_after; /* 0..1 */
    uint64_t params_before, params_after;
    uint64_t bytes_before, bytes_after;
    double scale_min, scale_max;            /* quantization scales (0 when not quantized) */
    bool removed;                           /* gone from the candidate (folded, dead) */
} joule_report_layer;

/* One compressed variant of a sweep, or one layer pruned alone (sensitivity). */
typedef struct joule_sweep_point {
    char *label;            /* "prune 0.50 + int8", "baseline", or the layer name */
    double sparsity;        /* requested sparsity; negative: none */
    char *quant;            /* "fp16", "int8-dynamic", "int8", or NULL */
    char *layer;            /* sensitivity: the one layer pruned; NULL otherwise */
    uint64_t file_bytes;
    uint64_t nonzero_params;/* parameters left nonzero */
    joule_estimate top1;
    joule_estimate latency_ms;
    double accuracy_drop;   /* baseline top-1 minus this point's (sensitivity ranking) */
    bool on_frontier;       /* no other point is at least as small and at least as accurate,
                               and strictly better in one */
    char *error;            /* this point failed (and why); its numbers are not measured */
} joule_sweep_point;

typedef struct joule_report_doc {
    char *title;
    char *created;          /* UTC, ISO 8601 */
    char *tool;             /* "joule report", "joule compress", "joule demo", ... */
    char *recipe;           /* the compression, in words or as recipe JSON; NULL when unknown */
    char *recipe_hash;      /* batches: the recipe's fingerprint (joule_batch_recipe_hash) */
    char *data;             /* evaluation data (path) or NULL */
    size_t images;          /* items evaluated */
    joule_report_model base, cand;
    bool has_cand;          /* a sweep-only document has just the base */
    /* candidate against the base, on the same items */
    joule_estimate agreement;      /* same top-1 class */
    size_t mcnemar_b, mcnemar_c;   /* base right and candidate wrong / the other way round */
    double mcnemar_p;              /* exact two-sided p (1 when not measured) */
    joule_estimate energy_ratio;   /* candidate / base energy per inference */
    size_t n_layers;
    joule_report_layer *layers;
    size_t n_sweep;
    joule_sweep_point *sweep;
    bool sweep_sensitivity;        /* the sweep points are one layer each */
    char *changes_json;            /* pass report rows (a JSON array) or NULL */
    /* the energy comparison as joule/energy.h renders it (JSON document, Markdown and HTML
     * sections), or NULL when energy was not measured */
    char *energy_json, *energy_md, *energy_html;
    size_t n_notes;
    char **notes;                  /* free-text remarks shown with the report */
} joule_report_doc;

/* ---- the document ---- */

/* A zeroed document with title and tool copied (either may be NULL) and created set to now. */
joule_status joule_report_doc_new(const char *title, const char *tool, joule_report_doc **out,
                                  joule_error *err);
void joule_report_doc_free(joule_report_doc *d);
/* Replaces *field (a string of d or of one of its parts) with a copy of s (NULL clears it). */
joule_status joule_report_doc_set(char **field, const char *s, joule_error *err);
/* Appends a note (printf-style). */
joule_status joule_report_doc_note(joule_report_doc *d, joule_error *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Appends a copy of row / point (its strings duplicated). */
joule_status joule_report_doc_add_layer(joule_report_doc *d, const joule_report_layer *row,
                                        joule_error *err);
joule_status joule_report_doc_add_point(joule_report_doc *d, const joule_sweep_point *pt,
                                        joule_error *err);
/* Sets on_frontier of every sweep point (points with an error or no accuracy are never on it). */
void joule_report_doc_mark_frontier(joule_report_doc *d);

/* ---- writers ---- */

/* The document as JSON (schema "joule-report/1"), Markdown, or one HTML page with inline SVG.
 * *out is malloc'd text. */
joule_status joule_report_doc_json(const joule_report_doc *d, char **out, joule_error *err);
joule_status joule_report_doc_markdown(const joule_report_doc *d, char **out, joule_error *err);
joule_status joule_report_doc_html(const joule_report_doc *d, char **out, joule_error *err);
/* Creates dir when missing and writes report.json, report.md and report.html there: each to a
 * temporary file first, and only when all three are written are they renamed into place, so a
 * failure leaves the previous report (or none) rather than a mix. */
joule_status joule_report_write_dir(const joule_report_doc *d, const char *dir, joule_error *err);
/* Reads a document back from its JSON (what joule_report_doc_json wrote); unknown keys are
 * ignored, so later versions stay readable. */
joule_status joule_report_doc_parse(const char *json, size_t len, const char *label,
                                    joule_report_doc **out, joule_error *err);
joule_status joule_report_doc_load(const char *path, joule_report_doc **out, joule_error *err);

/* ---- measuring ---- */

typedef struct joule_report_options {
    const char *data;            /* evaluation data; NULL: no accuracy */
    const joule_dataset_options *dataset; /* NULL: defaults */
    size_t limit;                /* evaluate at most this many items (0: all) */
    size_t batch;                /* items per engine run (0: 64) */
    int threads;                 /* engine threads (0: all cores; latency then uses one thread,
                                    the steadiest measure of one item) */
    size_t latency_trials;       /* timed blocks per model (0: 21) */
    bool skip_latency;           /* leave latency not measured */
    bool skip_energy;            /* leave energy not measured */
    double energy_window_s;      /* energy: minimum window per trial (0: 0.5 s) */
    size_t energy_trials;        /* energy: windows per model (0: 10) */
    const joule_report *changes; /* the compression's pass rows (per-layer detail), or NULL */
    /* called as work advances (may be NULL): stage is "accuracy", "latency", "energy" */
    void (*progress)(void *user, const char *stage, size_t done, size_t total);
    void *progress_user;
} joule_report_options;

void joule_report_defaults(joule_report_options *o);

/* Measures base_path against cand_path and fills a new document: sizes, parameters, MACs and
 * sparsity (joule_model_info), per-layer sparsity and precision (from opt->changes when given,
 * else by matching layers by node and weight name), accuracy of both on opt->data with the
 * candidate's agreement and McNemar test against the base, latency of one item per run
 * (interleaved timed blocks, median with a distribution-free 95% interval), and energy per
 * inference through joule_energy_compare (interleaved windows with an idle baseline; figures
 * from the estimate are marked estimated; when the comparison fails, energy stays not measured
 * with a note saying why). The caller sets title, tool and recipe. */
joule_status joule_report_measure(const char *base_path, const char *cand_path,
                                  const joule_report_options *opt, joule_report_doc **out,
                                  joule_error *err);

/* The distribution-free 95% interval of the median of n sorted samples: order statistics
 * [lo, hi] (0-based indices) with P(X_(lo) <= median <= X_(hi)) >= 0.95 under a binomial(n, 1/2)
 * count. For n < 6 no such pair exists and lo = 0, hi = n - 1. */
void joule_median_interval(size_t n, size_t *lo, size_t *hi);

/* Finds a data file joule ships (the demo's model): $JOULE_DATA_DIR/name, then
 * <source tree>/tests/data/name (the tree joule was built from, compiled in), then
 * <folder of the running program>/../share/joule/name (an installed joule). */
joule_status joule_find_data_file(const char *name, char *out, size_t size, joule_error *err);

/* ---- sweeps ---- */

typedef enum joule_sweep_quant {
    JOULE_SWEEP_QUANT_NONE = 0,
    JOULE_SWEEP_QUANT_FP16,
    JOULE_SWEEP_QUANT_INT8_DYNAMIC,
    JOULE_SWEEP_QUANT_INT8_STATIC
} joule_sweep_quant;

/* Parses "none", "fp16", "int8-dynamic" or "int8" (static, calibrated). */
joule_status joule_parse_sweep_quant(const char *s, joule_sweep_quant *out, joule_error *err);
const char *joule_sweep_quant_name(joule_sweep_quant q);

typedef struct joule_sweep_options {
    const char *data;                    /* evaluation data (required) */
    const joule_dataset_options *dataset;/* NULL: defaults */
    size_t limit;                        /* items evaluated (0: all) */
    const double *sparsities;            /* pruning levels, each in [0, 1) */
    size_t n_sparsities;
    int scope;                           /* a joule_prune_scope (joule/prune.h): per layer (0,
                                            the default) or one global threshold (1) */
    joule_sweep_quant quant;             /* applied after pruning at every level */
    const char *calib;                   /* calibration data for int8 static */
    size_t calib_limit;                  /* calibration items (0: 256) */
    bool sensitivity;                    /* one layer at a time at sparsities[0] */
    bool latency;                        /* time every point (slower) */
    int threads;                         /* engine threads (0: all cores) */
    /* called after each point (may be NULL) */
    void (*progress)(void *user, size_t done, size_t total);
    void *progress_user;
} joule_sweep_options;

void joule_sweep_defaults(joule_sweep_options *o);

/* Adds a "baseline" point (the model as it is, after cleanup) and one point per sparsity (or,
 * with sensitivity, per prunable layer, ranked by accuracy drop, largest first) to d, measuring
 * file size, nonzero parameters and top-1 accuracy; marks the frontier. Pruned points also get
 * sparse storage (weights with more than 2/3 zeros are saved as sparse_initializer), so that
 * pruning shows in the file size; quantization (not in sensitivity runs) comes last. d->base is filled from
 * the model. A point whose compression or evaluation fails records its error and the sweep goes
 * on; the call fails only when the model or the data cannot be read. */
joule_status joule_sweep_run(const char *model_path, const joule_sweep_options *opt,
                             joule_report_doc *d, joule_error *err);

/* ---- batches ---- */

/* One model of a manifest. Relative paths in a manifest are taken relative to the manifest's
 * folder; the strings here are the resolved paths. */
typedef struct joule_batch_job {
    size_t index;          /* position in the manifest (0-based), what --shard selects on */
    char *name;            /* "name", default: the output's file name without .onnx */
    char *model;           /* "model" (required) */
    char *output;          /* "output" (required): the compressed model */
    char *report_dir;      /* "report", default: the output path without .onnx, plus ".report" */
    char *recipe_path;     /* "recipe" as a file name, or NULL */
    char *recipe_json;     /* "recipe" inline (as compact JSON), or NULL */
    char *data;            /* "data": evaluation data, or NULL (no accuracy) */
    size_t limit;          /* "limit": items evaluated (0: all) */
    double min_accuracy;   /* "min_accuracy": candidate top-1 below it fails the job (<0: none) */
} joule_batch_job;

typedef struct joule_batch_manifest {
    char *path;
    char *summary_dir;     /* "summary_dir", default: the manifest's folder */
    size_t n_jobs;
    joule_batch_job *jobs;
} joule_batch_manifest;

/* Reads a manifest:
 *   {"summary_dir": "out",
 *    "defaults": {"data": "...", "limit": 1000, "recipe": {...} | "r.json", "min_accuracy": 0.8},
 *    "models": [{"name": "cnn-p50", "model": "cnn.onnx", "output": "out/cnn-p50.onnx",
 *                "recipe": {"passes": [...]} | "recipe.json", "data": "...", "limit": 500,
 *                "report": "out/cnn-p50.report", "min_accuracy": 0.85}, ...]}
 * Keys of "defaults" apply to every model that lacks them. Unknown keys and duplicate names or
 * outputs are errors naming the manifest and the model. */
joule_status joule_batch_manifest_load(const char *path, joule_batch_manifest **out,
                                       joule_error *err);
joule_status joule_batch_manifest_parse(const char *json, size_t len, const char *path,
                                        joule_batch_manifest **out, joule_error *err);
void joule_batch_manifest_free(joule_batch_manifest *m);

/* Parses "K/N" (0 <= K < N). Shard K of N takes the jobs whose index i has i % N == K:
 * every N-th model starting at the K-th, counting from 0. */
joule_status joule_parse_shard(const char *s, size_t *k, size_t *n, joule_error *err);
static inline bool joule_shard_selects(size_t index, size_t k, size_t n)
{
    return n == 0 || index % n == k;
}

/* A fingerprint of the job's recipe (FNV-1a 64 of the recipe file's bytes or the inline JSON),
 * as 16 hex digits in out[17]. Fails when the recipe file cannot be read. */
joule_status joule_batch_recipe_hash(const joule_batch_job *j, char out[17], joule_error *err);

/* True when the job's outputs are up to date: the output model and report_dir/report.json exist,
 * both are newer than the model, the recipe file and the data (when those are files), and the
 * report records the same recipe fingerprint. Any doubt (a missing file, an unreadable report)
 * answers false, so the job runs again. */
bool joule_batch_up_to_date(const joule_batch_job *j);

typedef enum joule_batch_state {
    JOULE_BATCH_PENDING = 0,
    JOULE_BATCH_DONE,          /* compressed, measured, report written */
    JOULE_BATCH_SKIPPED,       /* --resume: outputs were up to date */
    JOULE_BATCH_BELOW_MIN,     /* done, but top-1 below min_accuracy */
    JOULE_BATCH_FAILED         /* error holds why */
} joule_batch_state;

const char *joule_batch_state_name(joule_batch_state s);

/* What became of one job (numbers are 0 / NaN-free when unknown: see the measured flags). */
typedef struct joule_batch_result {
    joule_batch_state state;
    char error[512];
    double seconds;
    uint64_t bytes_before, bytes_after;
    joule_estimate top1_before, top1_after, latency_before_ms, latency_after_ms;
    joule_estimate energy_ratio;
} joule_batch_result;

typedef struct joule_batch_run_options {
    int threads;            /* engine threads for this job (0: all cores) */
    bool skip_latency;
    bool skip_energy;
    bool concurrent;        /* other jobs run at the same time (the report says so) */
} joule_batch_run_options;

/* Runs one job through library calls: loads the model and recipe, runs the pipeline, saves the
 * output atomically, measures the original against it (joule_report_measure) and writes the
 * report folder (recording the recipe fingerprint). Fills *res either way; returns its status. */
joule_status joule_batch_run_job(const joule_batch_job *j, const joule_batch_run_options *opt,
                                 joule_batch_result *res, joule_error *err);
/* Fills *res from a job's existing report (for jobs skipped by resume). */
joule_status joule_batch_result_from_report(const joule_batch_job *j, joule_batch_result *res,
                                            joule_error *err);

/* One result as a JSON object / back (what child processes send their parent). */
joule_status joule_batch_result_json(const joule_batch_result *r, char **out, joule_error *err);
joule_status joule_batch_result_parse(const char *json, joule_batch_result *r, joule_error *err);

/* Writes STEM.csv and STEM.json into dir (created when missing), each atomically; stem NULL:
 * "summary". results[i] belongs to m->jobs[i]; only jobs whose result is not
 * JOULE_BATCH_PENDING are listed (another shard's jobs stay out). */
joule_status joule_batch_write_summary(const joule_batch_manifest *m,
                                       const joule_batch_result *results, const char *dir,
                                       const char *stem, joule_error *err);

#ifdef __cplusplus
}
#endif
#endif

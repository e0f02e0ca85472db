/* joule/accuracy.h: measuring a classifier on a dataset. Top-1 and top-5 accuracy with 95% Wilson
 * score intervals; against a baseline model (the uncompressed original): top-1 agreement, per
 * output max/mean absolute error, cosine similarity and SQNR, an exact McNemar test on the images
 * one model gets right and the other wrong, and optionally the same errors for every intermediate
 * tensor the two graphs share by name (followed through QuantizeLinear/DequantizeLinear and Cast).
 *
 * The model takes one input (a batch of dataset items) and its first output holds the class
 * scores, [batch, classes] (any trailing shape is flattened). Items go through the engine in
 * batches; the last, smaller batch re-plans the session (or is padded when the model's batch dim
 * is fixed). Ties in the scores go to the lower class index, as numpy's argmax does. */
#ifndef JOULE_ACCURACY_H
#define JOULE_ACCURACY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "joule/dataset.h"
#include "joule/engine.h"
#include "joule/graph.h"
#include "joule/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* z for a two-sided 95% interval. */
#define JOULE_Z95 1.959963984540054

/* A proportion with its 95% Wilson score interval. */
typedef struct joule_rate {
    size_t hits, n;
    double rate, lo, hi; /* rate = hits / n; [lo, hi] the interval (0, 0, 1 when n is 0) */
} joule_rate;

/* Wilson score interval for hits successes out of n at normal quantile z. */
void joule_wilson_interval(size_t hits, size_t n, double z, double *lo, double *hi);
/* hits/n with its 95% Wilson interval. */
joule_rate joule_rate_make(size_t hits, size_t n);

/* Exact McNemar test: two-sided binomial p-value of b against c (b + c discordant pairs,
 * p = 0.5 under the null): min(1, 2 * P(X <= min(b, c))), X ~ Binomial(b + c, 1/2); 1 when
 * b + c is 0. */
double joule_mcnemar_exact_p(size_t b, size_t c);

/* How far x is from the reference ref, element by element. */
typedef struct joule_error_stats {
    size_t count;      /* elements compared */
    double max_abs;    /* max |ref - x| */
    double mean_abs;   /* mean |ref - x| */
    double cosine;     /* <ref,x> / (|ref| |x|); 1 when both are zero, 0 when one is */
    double sqnr_db;    /* 10 log10(sum ref^2 / sum (ref - x)^2); +inf when x equals ref */
    size_t nonfinite;  /* elements where either side is NaN or infinite (left out above) */
} joule_error_stats;

/* Running sums for joule_error_stats, so batches can be added one at a time. Zero-initialise. */
typedef struct joule_error_accum {
    size_t count, nonfinite;
    double max_abs, sum_abs, sum_rr, sum_xx, sum_rx, sum_dd;
} joule_error_accum;

void joule_error_accum_add(joule_error_accum *a, const float *ref, const float *x, size_t n);
void joule_error_accum_finish(const joule_error_accum *a, joule_error_stats *out);

/* The error of one tensor of the model against its counterpart in the baseline. */
typedef struct joule_tensor_error {
    char *name;           /* in the model */
    char *baseline_name;  /* in the baseline */
    bool compared;        /* false when the two differ in element count (e.g. pruned channels) */
    joule_error_stats e;
} joule_tensor_error;

typedef struct joule_eval_options {
    joule_backend backend;
    int threads;          /* engine threads; 0: all cores */
    size_t batch;         /* items per run; 0: 64 (a model with a fixed batch dim uses that) */
    bool layers;          /* with a baseline: errors of the intermediate tensors the two share */
    /* called after each batch (may be NULL) */
    void (*progress)(void *user, size_t done, size_t total);
    void *progress_user;
} joule_eval_options;

typedef struct joule_eval_result {
    char *model, *baseline, *data, *labels; /* what was measured (paths; NULL when unknown) */
    joule_backend backend;
    int threads;
    size_t batch;          /* items per run */
    size_t images;
    size_t classes;        /* scores per item in the first output */
    size_t topk;           /* 5, or fewer with fewer classes */
    bool has_labels;
    joule_rate top1, top5; /* the model (when has_labels) */
    bool has_baseline;
    joule_rate base_top1, base_top5;
    joule_rate agreement;  /* same top-1 class as the baseline */
    size_t mcnemar_b;      /* baseline right, model wrong */
    size_t mcnemar_c;      /* baseline wrong, model right */
    double mcnemar_p;
    size_t n_outputs;      /* model outputs against the baseline's (by name, else position) */
    joule_tensor_error *outputs;
    size_t n_layers;       /* with opt->layers */
    joule_tensor_error *layers;
    double seconds;        /* wall time of the whole evaluation */
    double model_seconds;  /* time inside the model's runs */
    double images_per_second; /* images / model_seconds */
    int64_t *predictions;  /* top-1 class of every item, in data order (images entries) */
    int64_t *base_predictions; /* the baseline's, with has_baseline; else NULL */
} joule_eval_result;

/* Evaluates m (and baseline, may be NULL) on all of ds (rewound first). Sessions are made and
 * freed inside; with opt->layers, private copies of both models are loaded (from m->path, or
 * serialized) and the shared tensors declared as extra outputs there, so m and baseline are not
 * changed. A model input whose item shape disagrees with the dataset's fails naming both
 * shapes. *out is filled on success (free it with joule_eval_result_free), zeroed on failure. */
joule_status joule_eval_run(const joule_model *m, const joule_model *baseline, joule_dataset *ds,
                            const joule_eval_options *opt, joule_eval_result *out,
                            joule_error *err);
void joule_eval_result_free(joule_eval_result *r);

/* One JSON document describing r; *json is malloc'd (free it). Non-finite numbers (an infinite
 * SQNR of identical outputs) are written as null. */
joule_status joule_eval_result_json(const joule_eval_result *r, char **json, joule_error *err);

#ifdef __cplusplus
}
#endif
#endif

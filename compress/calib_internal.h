/* compress/calib_internal.h: calibration for int8 static quantization. Histograms with a fixed
 * range (known from a first pass over the data), the four ways of turning observations into a
 * range (minmax, percentile, entropy, MSE), and the streaming driver that runs the float model
 * through joule's engine batch by batch. Not installed; the unit tests check the range methods
 * against hand-computed cases. */
#ifndef JOULE_CALIB_INTERNAL_H
#define JOULE_CALIB_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "joule/graph.h"
#include "joule/quantize.h"
#include "joule/status.h"

#define JQ_HIST_BINS 2048

/* Counts of x (or |x| with abs) in nbins equal bins over [lo, hi]; values outside go to the end
 * bins. Also the observed minimum and maximum of x itself (not |x|), finite values only. */
typedef struct jq_hist {
    double lo, hi;
    bool abs;
    size_t nbins;
    uint64_t *bins;
    uint64_t total;
    double min, max;
} jq_hist;

/* Sets up an empty histogram (bins allocated, zeroed). */
joule_status jq_hist_init(jq_hist *h, double lo, double hi, bool abs, size_t nbins,
                          joule_error *err);
void jq_hist_free(jq_hist *h);
void jq_hist_add(jq_hist *h, const float *x, size_t n);

/* Ranges [*lo, *hi] from a histogram. With abs histograms the result is the threshold t as
 * [-t, t] intersected with the observed [min, max]; with signed ones a sub-range of [min, max].
 *
 * percentile: abs: the smallest bin edge below which pct% of the counts lie; signed: (100 -
 *   pct) / 2 percent cut from each tail.
 * entropy: TensorRT's KL-divergence search over abs histograms: for each candidate i >= qbins
 *   bins, the reference P (bins below i, the rest folded into the last) against Q (the same
 *   bins merged into qbins levels and spread back over P's nonzero bins); the i with the least
 *   KL(P || Q) gives t = i * bin width. With asym (uint8 activations) the levels on [0, t] are
 *   the share of uint8's 255 steps that [0, t] gets when the range is [-min(|min|, t), t]: 255
 *   for non-negative data, about 128 for symmetric data; candidates start at qbins.
 * mse: the range minimising the expected squared error, counting (step^2 / 12) per value inside
 *   and the squared distance to the clip bound per value outside, with step = width / levels
 *   (levels = 255 for uint8 or 254 for symmetric int8; width 2t for symmetric abs histograms,
 *   t for non-negative ones). Bounds are bin edges; signed ranges search both ends (prefix sums
 *   make each candidate O(1)). */
void jq_range_percentile(const jq_hist *h, double pct, double *lo, double *hi);
void jq_range_entropy(const jq_hist *h, int qbins, bool asym, double *lo, double *hi);
void jq_range_mse(const jq_hist *h, int levels, bool symmetric, double *lo, double *hi);

/* One tensor to observe, by name in the model; calibration fills in its range. */
typedef struct jq_calib_tensor {
    const char *name;
    bool minmax;         /* keep the observed range whatever the method (graph outputs) */
    double lo, hi;       /* result */
    double min, max;     /* observed */
} jq_calib_tensor;

/* Runs the float model m (not changed: a private copy gets the tensors as extra outputs) over
 * the calibration data of o and fills every tensor's range by o->method. With methods other than
 * minmax the data is read twice: minima/maxima first, then fixed-range histograms. Errors: no
 * data source, data whose item shape differs from the model's input, an empty data set, a model
 * with other than one fed float32 input. stats may be NULL. */
joule_status jq_calibrate(const joule_model *m, const joule_static_options *o,
                          jq_calib_tensor *t, size_t n, joule_calib_stats *stats,
                          joule_error *err);

/* Called once per batch with outs[i] the batch's value of names[i] (valid during the call). */
typedef joule_status (*jq_visit_fn)(void *ctx, const joule_tensor *const *outs, size_t n,
                                    joule_error *err);

/* The streaming driver on its own: runs a private copy of m (names as extra graph outputs) over
 * the calibration data of o (source, limit, batch, threads; the method fields are not read) and
 * calls visit after every batch. *items: items seen. Same refusals as jq_calibrate, all before
 * the first visit: no data source, item shape, empty set, other than one fed float32 input. */
joule_status jq_stream(const joule_model *m, const joule_static_options *o,
                       const char *const *names, size_t n, jq_visit_fn visit, void *ctx,
                       size_t *items, joule_error *err);

#endif

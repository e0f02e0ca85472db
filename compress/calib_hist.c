/* compress/calib_hist.c: fixed-range histograms and the range methods that calibration uses
 * (percentile, entropy, MSE); see calib_internal.h for the definitions. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compress/calib_internal.h"

joule_status jq_hist_init(jq_hist *h, double lo, double hi, bool abs, size_t nbins,
                          joule_error *err)
{
    memset(h, 0, sizeof *h);
    if (nbins == 0)
        return joule_fail(err, JOULE_ERR_INVALID, "histogram: no bins");
    h->bins = calloc(nbins, sizeof *h->bins);
    if (!h->bins)
        return joule_fail(err, JOULE_ERR_NOMEM, "histogram: out of memory");
    h->lo = lo;
    h->hi = hi > lo ? hi : lo;
    h->abs = abs;
    h->nbins = nbins;
    h->min = INFINITY;
    h->max = -INFINITY;
    return JOULE_OK;
}

void jq_hist_free(jq_hist *h)
{
    free(h->bins);
    h->bins = NULL;
}

void jq_hist_add(jq_hist *h, const float *x, size_t n)
{
    const double width = (h->hi - h->lo) / (double)h->nbins;
    const double inv = width > 0 ? 1.0 / width : 0.0;
    const size_t last = h->nbins - 1;
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        if (!isfinite(v))
            continue;
        if (v < h->min)
            h->min = v;
        if (v > h->max)
            h->max = v;
        double a = h->abs ? fabs((double)v) : (double)v;
        double pos = (a - h->lo) * inv;
        size_t b = pos <= 0 ? 0 : (pos >= (double)last ? last : (size_t)pos);
        h->bins[b]++;
        h->total++;
    }
}

static double bin_width(const jq_hist *h)
{
    return (h->hi - h->lo) / (double)h->nbins;
}

/* [-t, t] (abs) intersected with what was observed. */
static void abs_result(const jq_hist *h, double t, double *lo, double *hi)
{
    *lo = h->min < -t ? -t : h->min;
    *hi = h->max > t ? t : h->max;
    if (*lo > 0)
        *lo = 0 < h->min ? h->min : 0;
}

static void clamp_observed(const jq_hist *h, double *lo, double *hi)
{
    if (*lo < h->min)
        *lo = h->min;
    if (*hi > h->max)
        *hi = h->max;
    if (*lo > *hi)
        *lo = *hi;
}

void jq_range_percentile(const jq_hist *h, double pct, double *lo, double *hi)
{
    const double w = bin_width(h);
    if (h->total == 0) {
        *lo = *hi = 0;
        return;
    }
    if (h->abs) {
        double need = pct / 100.0 * (double)h->total * (1.0 - 1e-12); /* 99.9% of 1000 is 999 */
        uint64_t cum = 0;
        size_t i = 0;
        for (; i < h->nbins; i++) {
            cum += h->bins[i];
            if ((double)cum >= need)
                break;
        }
        if (i == h->nbins)
            i = h->nbins - 1;
        abs_result(h, h->lo + (double)(i + 1) * w, lo, hi);
        return;
    }
    double cut = (100.0 - pct) / 200.0 * (double)h->total * (1.0 + 1e-12);
    uint64_t cum = 0;
    size_t i = 0;
    for (; i < h->nbins; i++) { /* first bin whose counts pass the lower cut */
        if ((double)(cum + h->bins[i]) > cut)
            break;
        cum += h->bins[i];
    }
    *lo = h->lo + (double)i * w;
    cum = 0;
    size_t j = h->nbins;
    while (j > 0) { /* last bin whose counts pass the upper cut */
        if ((double)(cum + h->bins[j - 1]) > cut)
            break;
        cum += h->bins[j - 1];
        j--;
    }
    *hi = h->lo + (double)j * w;
    clamp_observed(h, lo, hi);
}

/* MXNet's smoothing: move eps of mass onto each zero entry, taken evenly from the others.
 * Returns false when every entry is zero. */
static bool smooth(double *p, size_t n, double eps)
{
    size_t zeros = 0;
    for (size_t i = 0; i < n; i++)
        zeros += p[i] == 0;
    if (zeros == n)
        return false;
    double eps1 = eps * (double)zeros / (double)(n - zeros);
    for (size_t i = 0; i < n; i++) {
        p[i] += p[i] == 0 ? eps : -eps1;
        if (p[i] <= 0)
            p[i] = eps * 1e-3;
    }
    return true;
}

static double kl(const double *p, const double *q, size_t n)
{
    double sp = 0, sq = 0;
    for (size_t i = 0; i < n; i++) {
        sp += p[i];
        sq += q[i];
    }
    double d = 0;
    for (size_t i = 0; i < n; i++)
        if (p[i] > 0)
            d += p[i] / sp * log((p[i] / sp) / (q[i] / sq));
    return d;
}

void jq_range_entropy(const jq_hist *h, int qbins, bool asym, double *lo, double *hi)
{
    const size_t nb = h->nbins, nq0 = (size_t)(qbins > 0 ? qbins : 128);
    const double w = bin_width(h), neg = h->min < 0 ? -h->min : 0;
    if (h->total == 0) {
        *lo = *hi = 0;
        return;
    }
    if (nb <= nq0) { /* too few bins to search: keep everything */
        abs_result(h, h->hi, lo, hi);
        return;
    }
    double *p = malloc(nb * sizeof *p), *q = malloc(nb * sizeof *q);
    if (!p || !q) { /* no memory for the search: fall back to the full range */
        free(p);
        free(q);
        abs_result(h, h->hi, lo, hi);
        return;
    }
    double best = INFINITY;
    size_t best_i = nb;
    /* outliers above candidate i: total minus the counts below i */
    uint64_t below = 0;
    for (size_t k = 0; k < nq0; k++)
        below += h->bins[k];
    for (size_t i = nq0; i <= nb; i++) {
        if (i > nq0)
            below += h->bins[i - 1];
        /* levels over [0, t]: qbins, or for uint8 over [-min(neg, t), t] the share of 255
         * steps that falls on [0, t] (255 for non-negative data, ~128 for symmetric) */
        size_t nq = nq0;
        if (asym) {
            double t = (double)i * w, ng = neg < t ? neg : t;
            nq = (size_t)llround(255.0 * t / (t + ng));
            if (nq < 2)
                nq = 2;
        }
        if (nq > i)
            continue;
        uint64_t outliers = h->total - below;
        for (size_t k = 0; k < i; k++)
            p[k] = (double)h->bins[k];
        p[i - 1] += (double)outliers;
        /* merge the sliced bins (without outliers) into nq levels, spread over nonzero bins */
        size_t merged = i / nq;
        for (size_t j = 0; j < nq; j++) {
            size_t s = j * merged, e = j == nq - 1 ? i : s + merged;
            double sum = 0;
            size_t nz = 0;
            for (size_t k = s; k < e; k++) {
                sum += (double)h->bins[k];
                nz += p[k] != 0;
            }
            for (size_t k = s; k < e; k++)
                q[k] = (p[k] != 0 && nz) ? sum / (double)nz : 0;
        }
        if (!smooth(p, i, 1e-4) || !smooth(q, i, 1e-4))
            continue;
        double d = kl(p, q, i);
        if (d < best) {
            best = d;
            best_i = i;
        }
    }
    free(p);
    free(q);
    abs_result(h, h->lo + (double)best_i * w, lo, hi);
}

void jq_range_mse(const jq_hist *h, int levels, bool symmetric, double *lo, double *hi)
{
    const size_t nb = h->nbins;
    const double w = bin_width(h);
    if (h->total == 0) {
        *lo = *hi = 0;
        return;
    }
    /* prefix sums of count, count*c and count*c^2 over bin centres c */
    double *s0 = calloc(nb + 1, sizeof *s0), *s1 = calloc(nb + 1, sizeof *s1),
           *s2 = calloc(nb + 1, sizeof *s2);
    if (!s0 || !s1 || !s2) {
        free(s0);
        free(s1);
        free(s2);
        if (h->abs)
            abs_result(h, h->hi, lo, hi);
        else {
            *lo = h->min;
            *hi = h->max;
        }
        return;
    }
    for (size_t i = 0; i < nb; i++) {
        double c = h->lo + ((double)i + 0.5) * w, n = (double)h->bins[i];
        s0[i + 1] = s0[i] + n;
        s1[i + 1] = s1[i] + n * c;
        s2[i + 1] = s2[i] + n * c * c;
    }
    const double L = (double)(levels > 0 ? levels : 255);
    /* sum over bins [a, b) of n * (c - t)^2 */
#define TAIL(a, b, t) ((s2[b] - s2[a]) - 2.0 * (t) * (s1[b] - s1[a]) + (t) * (t) * (s0[b] - s0[a]))
    double best = INFINITY;
    if (h->abs) {
        /* |x| below t at edge j: step 2t / L for symmetric int8 ([-t, t]), t / L for uint8 on
         * non-negative data ([0, t]) */
        double span = symmetric ? 2.0 : 1.0;
        size_t best_j = nb;
        for (size_t j = 1; j <= nb; j++) {
            double t = h->lo + (double)j * w, step = span * t / L;
            double e = s0[j] * step * step / 12.0 + TAIL(j, nb, t);
            if (e < best) {
                best = e;
                best_j = j;
            }
        }
        free(s0);
        free(s1);
        free(s2);
        abs_result(h, h->lo + (double)best_j * w, lo, hi);
        return;
    }
    /* signed: lo at edge i <= zero edge, hi at edge j >= zero edge */
    size_t z = 0;
    while (z < nb && h->lo + (double)z * w < 0)
        z++;
    size_t bi = 0, bj = nb;
    for (size_t i = 0; i <= z; i++) {
        double a = h->lo + (double)i * w;
        double lo_err = TAIL(0, i, a);
        for (size_t j = z > i ? z : i + 1; j <= nb; j++) {
            double b = h->lo + (double)j * w, step = (b - a) / L;
            double e = (s0[j] - s0[i]) * step * step / 12.0 + lo_err + TAIL(j, nb, b);
            if (e < best) {
                best = e;
                bi = i;
                bj = j;
            }
        }
    }
#undef TAIL
    free(s0);
    free(s1);
    free(s2);
    *lo = h->lo + (double)bi * w;
    *hi = h->lo + (double)bj * w;
    clamp_observed(h, lo, hi);
}

/* eval/accuracy_stats.c: the statistics behind joule/accuracy.h: Wilson score intervals, the exact
 * McNemar test, and error sums (max/mean absolute error, cosine similarity, SQNR) accumulated in
 * double precision one batch at a time. */
#include <math.h>
#include <stddef.h>

#include "joule/accuracy.h"

void joule_wilson_interval(size_t hits, size_t n, double z, double *lo, double *hi)
{
    if (n == 0) {
        *lo = 0;
        *hi = 1;
        return;
    }
    double nn = (double)n, p = (double)hits / nn, z2 = z * z;
    double denom = 1 + z2 / nn;
    double center = (p + z2 / (2 * nn)) / denom;
    double half = z / denom * sqrt(p * (1 - p) / nn + z2 / (4 * nn * nn));
    *lo = center - half;
    *hi = center + half;
    /* exact at the ends (rounding may leave -1e-17 or 1 + 1e-16) */
    if (hits == 0 || *lo < 0)
        *lo = 0;
    if (hits == n || *hi > 1)
        *hi = 1;
}

joule_rate joule_rate_make(size_t hits, size_t n)
{
    joule_rate r = {.hits = hits, .n = n, .rate = n ? (double)hits / (double)n : 0};
    joule_wilson_interval(hits, n, JOULE_Z95, &r.lo, &r.hi);
    return r;
}

double joule_mcnemar_exact_p(size_t b, size_t c)
{
    size_t n = b + c, k = b < c ? b : c;
    if (n == 0)
        return 1.0;
    /* P(X <= k) for X ~ Binomial(n, 1/2): terms C(n,i) 2^-n in log space, summed from the
     * largest (i = k) down so that small terms are added to a sum they cannot disturb */
    double ln2n = (double)n * log(2.0);
    double lgn = lgamma((double)n + 1);
    double top = lgn - lgamma((double)k + 1) - lgamma((double)(n - k) + 1) - ln2n;
    double sum = 0;
    for (size_t i = k + 1; i-- > 0;) {
        double t = lgn - lgamma((double)i + 1) - lgamma((double)(n - i) + 1) - ln2n;
        double r = exp(t - top);
        sum += r;
        if (r < 1e-17 * sum)
            break; /* the rest cannot change the sum */
    }
    double p = 2 * exp(top) * sum;
    return p > 1 ? 1 : p;
}

void joule_error_accum_add(joule_error_accum *a, const float *ref, const float *x, size_t n)
{
    double max_abs = a->max_abs, sum_abs = 0, rr = 0, xx = 0, rx = 0, dd = 0;
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        double r = ref[i], v = x[i];
        if (!isfinite(r) || !isfinite(v)) {
            bad++;
            continue;
        }
        double d = r - v, ad = fabs(d);
        if (ad > max_abs)
            max_abs = ad;
        sum_abs += ad;
        rr += r * r;
        xx += v * v;
        rx += r * v;
        dd += d * d;
    }
    a->max_abs = max_abs;
    a->sum_abs += sum_abs;
    a->sum_rr += rr;
    a->sum_xx += xx;
    a->sum_rx += rx;
    a->sum_dd += dd;
    a->count += n - bad;
    a->nonfinite += bad;
}

void joule_error_accum_finish(const joule_error_accum *a, joule_error_stats *out)
{
    out->count = a->count;
    out->nonfinite = a->nonfinite;
    out->max_abs = a->max_abs;
    out->mean_abs = a->count ? a->sum_abs / (double)a->count : 0;
    if (a->sum_rr == 0 && a->sum_xx == 0)
        out->cosine = 1;
    else if (a->sum_rr == 0 || a->sum_xx == 0)
        out->cosine = 0;
    else
        out->cosine = a->sum_rx / sqrt(a->sum_rr * a->sum_xx);
    if (out->cosine > 1)
        out->cosine = 1;
    else if (out->cosine < -1)
        out->cosine = -1;
    if (a->sum_dd == 0)
        out->sqnr_db = INFINITY;
    else
        out->sqnr_db = 10 * log10(a->sum_rr / a->sum_dd);
}

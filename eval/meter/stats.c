/* eval/meter/stats.c: the statistics behind every energy interval: one seeded generator
 * (splitmix64), Student t intervals for means, type-7 quantiles, the paired bootstrap for the
 * B/A ratio, and the A/B order of each interleaved pair. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "joule/energy.h"

uint64_t joule_rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* t_{0.975,df} for df 1..30 (standard tables); above, the Cornish-Fisher expansion in 1/df,
 * which matches the tables to 6 digits from df = 30 on. */
static const double t975_table[30] = {
    12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004, 2.262157,
    2.228139, 2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905, 2.109816, 2.100922,
    2.093024, 2.085963, 2.079614, 2.073873, 2.068658, 2.063899, 2.059539, 2.055529, 2.051831,
    2.048407, 2.045230, 2.042272,
};

double joule_t975(size_t df)
{
    if (df == 0)
        return NAN;
    if (df <= 30)
        return t975_table[df - 1];
    const double z = 1.959963984540054;
    double d = (double)df, z2 = z * z, z3 = z2 * z, z5 = z3 * z2, z7 = z5 * z2, z9 = z7 * z2;
    return z + (z3 + z) / (4 * d) + (5 * z5 + 16 * z3 + 3 * z) / (96 * d * d) +
           (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * d * d * d) +
           (79 * z9 + 776 * z7 + 1482 * z5 - 1920 * z3 - 945 * z) / (92160 * d * d * d * d);
}

joule_interval joule_mean_ci95(const double *x, size_t n)
{
    joule_interval r = {NAN, NAN, NAN};
    if (n == 0)
        return r;
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += x[i];
    r.mean = sum / (double)n;
    if (n < 2)
        return r;
    double ss = 0;
    for (size_t i = 0; i < n; i++)
        ss += (x[i] - r.mean) * (x[i] - r.mean);
    double half = joule_t975(n - 1) * sqrt(ss / (double)(n - 1)) / sqrt((double)n);
    r.lo = r.mean - half;
    r.hi = r.mean + half;
    return r;
}

double joule_quantile(const double *sorted, size_t n, double p)
{
    if (n == 0 || !(p >= 0 && p <= 1))
        return NAN;
    double h = p * (double)(n - 1);
    size_t i = (size_t)floor(h);
    if (i + 1 >= n)
        return sorted[n - 1];
    return sorted[i] + (h - (double)i) * (sorted[i + 1] - sorted[i]);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* An index in [0, n) from one draw (multiply-shift: no modulo bias worth the name). */
static size_t draw_index(uint64_t *state, size_t n)
{
    return (size_t)(((unsigned __int128)joule_rng_next(state) * n) >> 64);
}

joule_interval joule_bootstrap_ratio(const double *a, const double *b, size_t n, size_t resamples,
                                     uint64_t seed)
{
    joule_interval r = {NAN, NAN, NAN};
    if (n == 0)
        return r;
    double sa = 0, sb = 0;
    for (size_t i = 0; i < n; i++) {
        sa += a[i];
        sb += b[i];
    }
    r.mean = sa != 0 ? sb / sa : NAN;
    if (n < 2 || resamples < 2 || !isfinite(r.mean))
        return r;
    double *ratios = malloc(resamples * sizeof *ratios);
    if (!ratios)
        return r;
    uint64_t state = seed;
    size_t kept = 0;
    for (size_t k = 0; k < resamples; k++) {
        double ra = 0, rb = 0;
        for (size_t i = 0; i < n; i++) {
            size_t j = draw_index(&state, n);
            ra += a[j];
            rb += b[j];
        }
        if (ra != 0)
            ratios[kept++] = rb / ra;
    }
    qsort(ratios, kept, sizeof *ratios, cmp_double);
    r.lo = joule_quantile(ratios, kept, 0.025);
    r.hi = joule_quantile(ratios, kept, 0.975);
    free(ratios);
    return r;
}

void joule_interleave(uint64_t seed, size_t n_pairs, unsigned char *b_first)
{
    uint64_t state = seed;
    for (size_t i = 0; i < n_pairs; i++)
        b_first[i] = (unsigned char)(joule_rng_next(&state) >> 63);
}

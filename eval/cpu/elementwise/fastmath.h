/* eval/cpu/elementwise/fastmath.h: float32 exp, tanh, sigmoid and erf written without branches or
 * library calls, so that loops over them vectorise (libm's expf/tanhf/erff do not). Accuracy is
 * within a few ulp over the whole range, nan propagates, overflow gives inf and underflow gives
 * (gradual) zero; tests/unit/test_kernels_elementwise.c checks them against libm in double.
 * Internal to the elementwise family (also usable by softmax-like kernels). */
#ifndef JOULE_EW_FASTMATH_H
#define JOULE_EW_FASTMATH_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t ew_fm_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float ew_fm_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline float ew_fm_abs(float x) { return ew_fm_float(ew_fm_bits(x) & 0x7fffffffu); }

/* |m| with the sign of s */
static inline float ew_fm_copysign(float m, float s)
{
    return ew_fm_float((ew_fm_bits(m) & 0x7fffffffu) | (ew_fm_bits(s) & 0x80000000u));
}

/* e^x: Cody-Waite reduction x = k ln2 + r, |r| <= ln2/2, a degree-6 polynomial (Cephes) for
 * e^r, and 2^k applied in two halves so that results near the overflow and subnormal limits are
 * scaled exactly once. */
static inline float ew_expf(float x)
{
    const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    x = x > 88.8f ? 88.8f : x;
    x = x < -104.0f ? -104.0f : x;
    float t = x * 1.44269504088896341f + magic;
    float k = t - magic;
    int32_t ki = (int32_t)(ew_fm_bits(t) - ew_fm_bits(magic));
    float r = x - k * 0.693359375f;
    r = r - k * -2.12194440e-4f;
    float y = 1.9875691500e-4f;
    y = y * r + 1.3981999507e-3f;
    y = y * r + 8.3334519073e-3f;
    y = y * r + 4.1665795894e-2f;
    y = y * r + 1.6666665459e-1f;
    y = y * r + 5.0000001201e-1f;
    y = y * (r * r) + r + 1.0f;
    int32_t k1 = ki / 2, k2 = ki - k1;
    float s1 = ew_fm_float((uint32_t)(k1 + 127) << 23);
    float s2 = ew_fm_float((uint32_t)(k2 + 127) << 23);
    return y * s1 * s2;
}

/* e^x - 1 without cancellation near 0: a degree-9 Taylor polynomial below |x| = 0.5. */
static inline float ew_expm1f(float x)
{
    float t = 1.0f / 40320.0f;
    t = t * x + 1.0f / 5040.0f;
    t = t * x + 1.0f / 720.0f;
    t = t * x + 1.0f / 120.0f;
    t = t * x + 1.0f / 24.0f;
    t = t * x + 1.0f / 6.0f;
    t = t * x + 0.5f;
    t = t * x * x + x;
    return ew_fm_abs(x) < 0.5f ? t : ew_expf(x) - 1.0f;
}

/* tanh: odd polynomial below 0.625 (Cephes tanhf), 1 - 2 / (e^2|x| + 1) above. */
static inline float ew_tanhf(float x)
{
    float ax = ew_fm_abs(x);
    float z = x * x;
    float s = -5.70498872745e-3f;
    s = s * z + 2.06390887954e-2f;
    s = s * z - 5.37397155531e-2f;
    s = s * z + 1.33314422036e-1f;
    s = s * z - 3.33332819422e-1f;
    s = s * z * x + x;
    float c = ax > 9.1f ? 9.1f : ax; /* from 9.02 on, tanh rounds to 1 */
    float e = ew_expf(2.0f * c);
    float l = ew_fm_copysign(1.0f - 2.0f / (e + 1.0f), x);
    return ax < 0.625f ? s : l;
}

static inline float ew_sigmoidf(float x) { return 1.0f / (1.0f + ew_expf(-x)); }

/* erf below EW_ERF_SPLIT: x P(x^2); above: 1 - e^Q(|x|) where Q fits log erfc on
 * [EW_ERF_SPLIT, EW_ERF_ONE]; from EW_ERF_ONE on, erf rounds to +-1. Coefficients are
 * least-squares minimax fits (about 3 ulp below the split, 1.5 ulp of 1 above). */
#define EW_ERF_SPLIT 0.921875f
#define EW_ERF_ONE 3.9375f

static inline float ew_erf_small(float x) /* |x| < EW_ERF_SPLIT */
{
    float z = x * x;
    float p = -6.013693637214601e-4f;
    p = p * z + 4.998070187866688e-3f;
    p = p * z - 2.677028998732567e-2f;
    p = p * z + 1.1281929165124893e-1f;
    p = p * z - 3.761250674724579e-1f;
    p = p * z + 1.1283791065216064f;
    return x * p;
}

/* Q(ax) = log erfc(ax) for EW_ERF_SPLIT <= ax <= EW_ERF_ONE */
static inline float ew_log_erfc_mid(float ax)
{
    float q = 1.6259830317721935e-6f;
    q = q * ax - 4.580452150548808e-5f;
    q = q * ax + 5.943867727182806e-4f;
    q = q * ax - 4.746919963508844e-3f;
    q = q * ax + 2.63812392950058e-2f;
    q = q * ax - 1.1000293493270874e-1f;
    q = q * ax - 6.319154500961304e-1f;
    q = q * ax - 1.1301766633987427f;
    q = q * ax + 3.0506376060657203e-4f;
    return q;
}

static inline float ew_erff(float x)
{
    float ax = ew_fm_abs(x);
    float small = ew_erf_small(x);
    float c = ax > EW_ERF_ONE ? EW_ERF_ONE : ax;
    float big = ax >= EW_ERF_ONE ? 1.0f : 1.0f - ew_expf(ew_log_erfc_mid(c));
    float r = ax < EW_ERF_SPLIT ? small : ew_fm_copysign(big, x);
    return x != x ? x : r;
}

/* 1 + erf(x) without cancellation for negative x (for Gelu): beyond EW_ERF_ONE the tail uses the
 * asymptotic series erfc(z) ~ e^-z^2 / (z sqrt(pi)) (1 - 1/2z^2 + 3/4z^4 - 15/8z^6). */
static inline float ew_one_plus_erf(float x)
{
    float ax = ew_fm_abs(x);
    float small = 1.0f + ew_erf_small(x);
    float c = ax > EW_ERF_ONE ? EW_ERF_ONE : ax;
    float w = ax < 13.0f ? ax : 13.0f; /* erfc(13) underflows */
    bool mid = ax < EW_ERF_ONE;
    /* one exp serves both ranges: e^Q(|x|) in the middle, e^-x^2 in the tail */
    float e = ew_expf(mid ? ew_log_erfc_mid(c) : -w * w);
    float iz2 = 1.0f / (w * w);
    float series = 1.0f + iz2 * (-0.5f + iz2 * (0.75f + iz2 * -1.875f));
    float erfc_ax = mid ? e : e * (0.56418958354775628f / w) * series;
    float big = x < 0 ? erfc_ax : 2.0f - erfc_ax;
    float r = ax < EW_ERF_SPLIT ? small : big;
    return x != x ? x : r;
}

#endif

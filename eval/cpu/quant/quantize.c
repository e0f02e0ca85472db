/* eval/cpu/quant/quantize.c: QuantizeLinear, DequantizeLinear and DynamicQuantizeLinear, per
 * tensor or per axis. The reference kernels loop element by element with index arithmetic; the
 * fast ones walk contiguous runs that share one scale and zero point, with AVX2 loops (chosen at
 * run time) for float32. Both round through the same inline formulas in quant.h, so they agree
 * bit for bit: round half to even, saturate, NaN to the lowest value. */
#include "eval/cpu/quant/quant.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define Q_X86 1
#else
#define Q_X86 0
#endif

static bool have_avx2(void)
{
#if Q_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
#else
    return false;
#endif
}

static float load_float(joule_dtype t, const void *p, size_t i)
{
    switch (t) {
    case JOULE_F16:
        return joule_f16_to_f32(((const uint16_t *)p)[i]);
    case JOULE_BF16:
        return joule_bf16_to_f32(((const uint16_t *)p)[i]);
    default:
        return ((const float *)p)[i];
    }
}

static void store_float(joule_dtype t, void *p, size_t i, float v)
{
    switch (t) {
    case JOULE_F16:
        ((uint16_t *)p)[i] = joule_f32_to_f16(v);
        break;
    case JOULE_BF16:
        ((uint16_t *)p)[i] = joule_f32_to_bf16(v);
        break;
    default:
        ((float *)p)[i] = v;
        break;
    }
}

/* The (outer, channel, inner) split of x around the quantization axis; per tensor: channel 1. */
typedef struct axis_split {
    size_t outer, channels, inner;
} axis_split;

static bool split_for(const joule_view *x, const joule_view *scale, int64_t axis, axis_split *s)
{
    bool per_axis;
    if (!joule_q_param_shape(scale, x, axis, &per_axis))
        return false;
    s->outer = 1;
    s->channels = 1;
    s->inner = x->count;
    if (per_axis) {
        int ax;
        joule_q_axis(axis, x->rank, &ax);
        s->channels = (size_t)x->dims[ax];
        s->inner = 1;
        for (int i = 0; i < ax; i++)
            s->outer *= (size_t)x->dims[i];
        for (int i = ax + 1; i < x->rank; i++)
            s->inner *= (size_t)x->dims[i];
    }
    return true;
}

/* Shared checks for the scale / zero point pair of Quantize and Dequantize. */
static bool params_ok(const joule_node *node, const joule_view *x, const joule_view *scale,
                      const joule_view *zp)
{
    if (!x || !scale || !joule_q_is_scale_type(scale->dtype))
        return false;
    if (joule_attr_int(node, "block_size", 0) != 0)
        return false;
    int64_t axis = joule_attr_int(node, "axis", 1);
    bool per_axis, zp_axis;
    if (!joule_q_param_shape(scale, x, axis, &per_axis))
        return false;
    if (zp && (!joule_q_param_shape(zp, x, axis, &zp_axis) || zp_axis != per_axis ||
               zp->count != scale->count))
        return false;
    return true;
}

/* ---- QuantizeLinear ---- */

bool joule_q_quantize_supports(const joule_node *node, int64_t opset, int n_in,
                               const joule_view *const *in)
{
    (void)opset;
    if (n_in < 2 || n_in > 3 || !in[0] || !in[1])
        return false;
    const joule_view *zp = n_in > 2 ? in[2] : NULL;
    if (in[0]->dtype != JOULE_F32 && in[0]->dtype != JOULE_F16 && in[0]->dtype != JOULE_BF16)
        return false;
    if (zp && !joule_q_is_int8(zp->dtype))
        return false;
    int64_t od = joule_attr_int(node, "output_dtype", 0);
    if (od != 0 && od != JOULE_U8 && od != JOULE_I8)
        return false;
    if (od != 0 && zp && od != zp->dtype)
        return false;
    return params_ok(node, in[0], in[1], zp);
}

static joule_status quantize_check(const joule_kernel_ctx *ctx, axis_split *s)
{
    const joule_view *x = ctx->in[0], *y = ctx->out[0];
    if (!joule_q_is_int8(y->dtype) || y->count != x->count ||
        !split_for(x, ctx->in[1], joule_attr_int(ctx->node, "axis", 1), s))
        return joule_fail(ctx->err, JOULE_ERR_INVALID,
                          "node '%s' (QuantizeLinear): output or scale does not fit the input",
                          joule_q_name(ctx->node));
    return JOULE_OK;
}

joule_status joule_q_quantize_run_ref(const joule_kernel_ctx *ctx)
{
    axis_split s;
    joule_status st = quantize_check(ctx, &s);
    if (st)
        return st;
    const joule_view *x = ctx->in[0], *scale = ctx->in[1];
    const joule_view *zp = ctx->n_in > 2 ? ctx->in[2] : NULL;
    joule_view *y = ctx->out[0];
    int32_t lo, hi;
    joule_q_range(y->dtype, &lo, &hi);
    for (size_t i = 0; i < x->count; i++) {
        size_t c = (i / s.inner) % s.channels;
        float v = load_float(x->dtype, x->data, i);
        joule_q_store(y->dtype, y->data, i,
                      joule_q_quantize(v, joule_q_scale_at(scale, c), joule_q_int_at(zp, c), lo,
                                       hi));
    }
    return JOULE_OK;
}

#if Q_X86
/* Eight clamped, integer-valued int32 lanes to eight bytes. */
__attribute__((target("avx2"))) static inline void store8(__m256i v, bool u8, void *dst)
{
    __m256i w = _mm256_packs_epi32(v, v); /* values fit int16 */
    w = u8 ? _mm256_packus_epi16(w, w) : _mm256_packs_epi16(w, w);
    uint32_t lo = (uint32_t)_mm_cvtsi128_si32(_mm256_castsi256_si128(w));
    uint32_t hi = (uint32_t)_mm_cvtsi128_si32(_mm256_extracti128_si256(w, 1));
    memcpy(dst, &lo, 4);
    memcpy((char *)dst + 4, &hi, 4);
}

__attribute__((target("avx2"))) static size_t quantize_run_avx2(const float *x, size_t n,
                                                                float scale, int32_t zp,
                                                                int32_t lo, int32_t hi, bool u8,
                                                                void *y)
{
    const __m256 vs = _mm256_set1_ps(scale), vz = _mm256_set1_ps((float)zp);
    const __m256 vlo = _mm256_set1_ps((float)lo), vhi = _mm256_set1_ps((float)hi);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_div_ps(_mm256_loadu_ps(x + i), vs);
        v = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        v = _mm256_add_ps(v, vz);
        v = _mm256_max_ps(v, vlo); /* a NaN in v gives vlo, like fmaxf */
        v = _mm256_min_ps(v, vhi);
        store8(_mm256_cvtps_epi32(v), u8, (char *)y + i);
    }
    return i;
}
#endif

/* One contiguous run sharing a scale and zero point. */
static void quantize_run(joule_dtype xt, const void *x, size_t off, size_t n, float scale,
                         int32_t zp, joule_dtype yt, void *y, bool avx2)
{
    int32_t lo, hi;
    joule_q_range(yt, &lo, &hi);
    size_t i = 0;
#if Q_X86
    if (avx2 && xt == JOULE_F32)
        i = quantize_run_avx2((const float *)x + off, n, scale, zp, lo, hi, yt == JOULE_U8,
                              (char *)y + off);
#else
    (void)avx2;
#endif
    if (xt == JOULE_F32) {
        const float *xf = (const float *)x + off;
        for (; i < n; i++)
            joule_q_store(yt, y, off + i, joule_q_quantize(xf[i], scale, zp, lo, hi));
    } else {
        for (; i < n; i++)
            joule_q_store(yt, y, off + i,
                          joule_q_quantize(load_float(xt, x, off + i), scale, zp, lo, hi));
    }
}

joule_status joule_q_quantize_run(const joule_kernel_ctx *ctx)
{
    axis_split s;
    joule_status st = quantize_check(ctx, &s);
    if (st)
        return st;
    const joule_view *x = ctx->in[0], *scale = ctx->in[1];
    const joule_view *zp = ctx->n_in > 2 ? ctx->in[2] : NULL;
    joule_view *y = ctx->out[0];
    const bool avx2 = have_avx2();
    for (size_t o = 0; o < s.outer; o++)
        for (size_t c = 0; c < s.channels; c++)
            quantize_run(x->dtype, x->data, (o * s.channels + c) * s.inner, s.inner,
                         joule_q_scale_at(scale, c), joule_q_int_at(zp, c), y->dtype, y->data,
                         avx2);
    return JOULE_OK;
}

/* ---- DequantizeLinear ---- */

bool joule_q_dequantize_supports(const joule_node *node, int64_t opset, int n_in,
                                 const joule_view *const *in)
{
    (void)opset;
    if (n_in < 2 || n_in > 3 || !in[0] || !in[1])
        return false;
    const joule_view *zp = n_in > 2 ? in[2] : NULL;
    joule_dtype t = in[0]->dtype;
    if (!joule_q_is_int8(t) && t != JOULE_I32)
        return false;
    if (zp && zp->dtype != t)
        return false;
    return params_ok(node, in[0], in[1], zp);
}

static joule_status dequantize_check(const joule_kernel_ctx *ctx, axis_split *s)
{
    const joule_view *x = ctx->in[0], *y = ctx->out[0];
    if (!joule_q_is_scale_type(y->dtype) || y->count != x->count ||
        !split_for(x, ctx->in[1], joule_attr_int(ctx->node, "axis", 1), s))
        return joule_fail(ctx->err, JOULE_ERR_INVALID,
                          "node '%s' (DequantizeLinear): output or scale does not fit the input",
                          joule_q_name(ctx->node));
    return JOULE_OK;
}

/* (x - zp) * scale; the difference in int64 so an int32 input cannot overflow. */
static inline float dequantize_one(int32_t x, int32_t zp, float scale)
{
    return (float)((int64_t)x - zp) * scale;
}

joule_status joule_q_dequantize_run_ref(const joule_kernel_ctx *ctx)
{
    axis_split s;
    joule_status st = dequantize_check(ctx, &s);
    if (st)
        return st;
    const joule_view *x = ctx->in[0], *scale = ctx->in[1];
    const joule_view *zp = ctx->n_in > 2 ? ctx->in[2] : NULL;
    joule_view *y = ctx->out[0];
    for (size_t i = 0; i < x->count; i++) {
        size_t c = (i / s.inner) % s.channels;
        store_float(y->dtype, y->data, i,
                    dequantize_one(joule_q_int_at(x, i), joule_q_int_at(zp, c),
                                   joule_q_scale_at(scale, c)));
    }
    return JOULE_OK;
}

#if Q_X86
__attribute__((target("avx2"))) static size_t dequantize_run_avx2(const void *x, bool is_signed,
                                                                  size_t n, float scale,
                                                                  int32_t zp, float *y)
{
    const __m256 vs = _mm256_set1_ps(scale);
    const __m256i vz = _mm256_set1_epi32(zp);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i b = _mm_loadl_epi64((const __m128i *)((const char *)x + i));
        __m256i v = is_signed ? _mm256_cvtepi8_epi32(b) : _mm256_cvtepu8_epi32(b);
        __m256 f = _mm256_cvtepi32_ps(_mm256_sub_epi32(v, vz));
        _mm256_storeu_ps(y + i, _mm256_mul_ps(f, vs));
    }
    return i;
}
#endif

joule_status joule_q_dequantize_run(const joule_kernel_ctx *ctx)
{
    axis_split s;
    joule_status st = dequantize_check(ctx, &s);
    if (st)
        return st;
    const joule_view *x = ctx->in[0], *scale = ctx->in[1];
    const joule_view *zp = ctx->n_in > 2 ? ctx->in[2] : NULL;
    joule_view *y = ctx->out[0];
    const bool avx2 = have_avx2() && joule_q_is_int8(x->dtype) && y->dtype == JOULE_F32;
    for (size_t o = 0; o < s.outer; o++) {
        for (size_t c = 0; c < s.channels; c++) {
            const size_t off = (o * s.channels + c) * s.inner;
            const float sc = joule_q_scale_at(scale, c);
            const int32_t z = joule_q_int_at(zp, c);
            size_t i = 0;
#if Q_X86
            if (avx2)
                i = dequantize_run_avx2((const char *)x->data + off, x->dtype == JOULE_I8,
                                        s.inner, sc, z, (float *)y->data + off);
#else
            (void)avx2;
#endif
            if (y->dtype == JOULE_F32) {
                float *yf = (float *)y->data + off;
                for (; i < s.inner; i++)
                    yf[i] = dequantize_one(joule_q_int_at(x, off + i), z, sc);
            } else {
                for (; i < s.inner; i++)
                    store_float(y->dtype, y->data, off + i,
                                dequantize_one(joule_q_int_at(x, off + i), z, sc));
            }
        }
    }
    return JOULE_OK;
}

/* ---- DynamicQuantizeLinear ---- */

bool joule_q_dynamic_quantize_supports(const joule_node *node, int64_t opset, int n_in,
                                       const joule_view *const *in)
{
    (void)node;
    (void)opset;
    return n_in == 1 && in[0] && in[0]->dtype == JOULE_F32;
}

/* ONNX's formula (as its reference and ONNX Runtime compute it): the range is widened to include
 * 0; scale = (max - min) / 255, or 1 / 255 when max == min; zp = round(clamp(0 - min / scale)). */
static void dynamic_params(float mn, float mx, float *scale, int32_t *zp)
{
    mx = fmaxf(mx, 0.0f);
    mn = fminf(mn, 0.0f);
    float s = (mx == mn ? 1.0f : mx - mn) / 255.0f;
    float z = 0.0f - mn / s;
    z = fmaxf(z, 0.0f);
    z = fminf(z, 255.0f);
    *scale = s;
    *zp = (int32_t)rintf(z);
}

static joule_status dynamic_outputs(const joule_kernel_ctx *ctx, joule_view **y,
                                    joule_view **ys, joule_view **yz)
{
    *y = ctx->out[0];
    *ys = ctx->n_out > 1 ? ctx->out[1] : NULL;
    *yz = ctx->n_out > 2 ? ctx->out[2] : NULL;
    if (!*y || (*y)->dtype != JOULE_U8 || (*y)->count != ctx->in[0]->count ||
        (*ys && ((*ys)->dtype != JOULE_F32 || (*ys)->count != 1)) ||
        (*yz && ((*yz)->dtype != JOULE_U8 || (*yz)->count != 1)))
        return joule_fail(ctx->err, JOULE_ERR_INVALID,
                          "node '%s' (DynamicQuantizeLinear): unexpected output types or shapes",
                          joule_q_name(ctx->node));
    return JOULE_OK;
}

joule_status joule_q_dynamic_quantize_run_ref(const joule_kernel_ctx *ctx)
{
    joule_view *y, *ys, *yz;
    joule_status st = dynamic_outputs(ctx, &y, &ys, &yz);
    if (st)
        return st;
    const float *x = ctx->in[0]->data;
    const size_t n = ctx->in[0]->count;
    float mn = 0.0f, mx = 0.0f;
    for (size_t i = 0; i < n; i++) {
        mn = fminf(mn, x[i]);
        mx = fmaxf(mx, x[i]);
    }
    float scale;
    int32_t zp;
    dynamic_params(mn, mx, &scale, &zp);
    for (size_t i = 0; i < n; i++)
        ((uint8_t *)y->data)[i] = (uint8_t)joule_q_quantize(x[i], scale, zp, 0, 255);
    if (ys)
        *(float *)ys->data = scale;
    if (yz)
        *(uint8_t *)yz->data = (uint8_t)zp;
    return JOULE_OK;
}

#if Q_X86
__attribute__((target("avx2"))) static size_t minmax_avx2(const float *x, size_t n, float *mn,
                                                          float *mx)
{
    __m256 vmn = _mm256_setzero_ps(), vmx = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        vmn = _mm256_min_ps(v, vmn); /* NaN in v keeps vmn, like fminf */
        vmx = _mm256_max_ps(v, vmx);
    }
    float a[8], b[8];
    _mm256_storeu_ps(a, vmn);
    _mm256_storeu_ps(b, vmx);
    for (int j = 0; j < 8; j++) {
        *mn = fminf(*mn, a[j]);
        *mx = fmaxf(*mx, b[j]);
    }
    return i;
}
#endif

joule_status joule_q_dynamic_quantize_run(const joule_kernel_ctx *ctx)
{
    joule_view *y, *ys, *yz;
    joule_status st = dynamic_outputs(ctx, &y, &ys, &yz);
    if (st)
        return st;
    const float *x = ctx->in[0]->data;
    const size_t n = ctx->in[0]->count;
    const bool avx2 = have_avx2();
    float mn = 0.0f, mx = 0.0f;
    size_t i = 0;
#if Q_X86
    if (avx2)
        i = minmax_avx2(x, n, &mn, &mx);
#endif
    for (; i < n; i++) {
        mn = fminf(mn, x[i]);
        mx = fmaxf(mx, x[i]);
    }
    float scale;
    int32_t zp;
    dynamic_params(mn, mx, &scale, &zp);
    quantize_run(JOULE_F32, x, 0, n, scale, zp, JOULE_U8, y->data, avx2);
    if (ys)
        *(float *)ys->data = scale;
    if (yz)
        *(uint8_t *)yz->data = (uint8_t)zp;
    return JOULE_OK;
}

/* eval/cpu/elementwise/unary.c: math ops of one input: Sqrt Exp Log Neg Abs Reciprocal Floor Ceil
 * Round Sign Erf Tanh Sigmoid, the trigonometric and hyperbolic functions (Sin Cos Tan Asin Acos
 * Atan Sinh Cosh Asinh Acosh Atanh) and IsNaN/IsInf. float32 uses the vectorisable fastmath.h functions for
 * exp, tanh, sigmoid and erf and branch-free rounding; double uses libm; float16 and bfloat16 go
 * through float32 (ew.h); integer types where ONNX allows them (Neg, Abs, Sign, Erf). */
#include "ew.h"

#include <math.h>

#include "fastmath.h"

/* ---- branch-free rounding: adding 2^23 (2^52) rounds to an integer, half to even ---- */
static inline float round_even_f32(float x)
{
    float ax = ew_fm_abs(x);
    float r = ew_fm_copysign((ax + 8388608.0f) - 8388608.0f, x);
    return ax < 8388608.0f ? r : x; /* large values, inf and nan are already integral */
}

static inline double round_even_f64(double x)
{
    double ax = fabs(x);
    double r = copysign((ax + 4503599627370496.0) - 4503599627370496.0, x);
    return ax < 4503599627370496.0 ? r : x;
}

static inline float floorf_fast(float x)
{
    float r = round_even_f32(x);
    return r > x ? r - 1.0f : r;
}

static inline float ceilf_fast(float x)
{
    float r = round_even_f32(x);
    return r < x ? r + 1.0f : r;
}

/* ---- Sqrt, Exp, Log, Reciprocal ---- */
EW_ROW sqrt_f32(EW_UN_ARGS) { (void)p; EW_MAP(float, float, sqrtf(x)); }
EW_ROW sqrt_f64(EW_UN_ARGS) { (void)p; EW_MAP(double, double, sqrt(x)); }
EW_ROW exp_f32(EW_UN_ARGS) { (void)p; EW_MAP(float, float, ew_expf(x)); }
EW_ROW exp_f64(EW_UN_ARGS) { (void)p; EW_MAP(double, double, exp(x)); }
EW_ROW log_f32(EW_UN_ARGS) { (void)p; EW_MAP(float, float, logf(x)); }
EW_ROW log_f64(EW_UN_ARGS) { (void)p; EW_MAP(double, double, log(x)); }
EW_ROW reciprocal_f32(EW_UN_ARGS) { (void)p; EW_MAP(float, float, 1.0f / x); }
EW_ROW reciprocal_f64(EW_UN_ARGS) { (void)p; EW_MAP(double, double, 1.0 / x); }

static const ew_spec sqrt_spec = {
    .name = "Sqrt", .un = {[JOULE_F32] = sqrt_f32, [JOULE_F64] = sqrt_f64},
    .half_via_f32 = true, .grain = EW_GRAIN_COSTLY};
static const ew_spec exp_spec = {
    .name = "Exp", .un = {[JOULE_F32] = exp_f32, [JOULE_F64] = exp_f64},
    .half_via_f32 = true, .grain = EW_GRAIN_COSTLY};
static const ew_spec log_spec = {
    .name = "Log", .un = {[JOULE_F32] = log_f32, [JOULE_F64] = log_f64},
    .half_via_f32 = true, .grain = EW_GRAIN_COSTLY};
static const ew_spec reciprocal_spec = {
    .name = "Reciprocal", .un = {[JOULE_F32] = reciprocal_f32, [JOULE_F64] = reciprocal_f64},
    .half_via_f32 = true};
EW_UNARY_KERNEL(sqrt, sqrt_spec)
EW_UNARY_KERNEL(exp, exp_spec)
EW_UNARY_KERNEL(log, log_spec)
EW_UNARY_KERNEL(reciprocal, reciprocal_spec)

/* ---- Floor, Ceil, Round (half to even) ---- */
EW_ROW floor_f32(EW_UN_ARGS) { (void)p; EW_MAP(float, float, floorf_fast(x)); }
EW_ROW floor_f64(EW_UN_ARGS) { (void)p; EW_MAP(double, double, floor(x)); }
EW_ROW ceil_f32(EW_UN_ARGS) { (void)p; EW_MAP(float, float, ceilf_fast(x)); }
EW_ROW ceil_f64(EW_UN_ARGS) { (void)p; EW_MAP(double, double, ceil(x)); }
EW_ROW round_f32(EW_UN_ARGS) { (void)p; EW_MAP(float, float, round_even_f32(x)); }
EW_ROW round_f64(EW_UN_ARGS) { (void)p; EW_MAP(double, double, round_even_f64(x)); }

static const ew_spec floor_spec = {
    .name = "Floor", .un = {[JOULE_F32] = floor_f32, [JOULE_F64] = floor_f64},
    .half_via_f32 = true};
static const ew_spec ceil_spec = {
    .name = "Ceil", .un = {[JOULE_F32] = ceil_f32, [JOULE_F64] = ceil_f64}, .half_via_f32 = true};
static const ew_spec round_spec = {
    .name = "Round", .un = {[JOULE_F32] = round_f32, [JOULE_F64] = round_f64},
    .half_via_f32 = true};
EW_UNARY_KERNEL(floor, floor_spec)
EW_UNARY_KERNEL(ceil, ceil_spec)
EW_UNARY_KERNEL(round, round_spec)

/* ---- Neg, Abs, Sign (integers wrap like two's complement: -INT_MIN == INT_MIN) ---- */
#define NEG_INT(P, dt, sfx, T, U)                                                                  \
    EW_ROW P##_##sfx(EW_UN_ARGS)                                                              \
    {                                                                                              \
        (void)p;                                                                                   \
        EW_MAP(T, T, (T)((U)0 - (U)x));                                                            \
    }
#define ABS_SINT(P, dt, sfx, T, U)                                                                 \
    EW_ROW P##_##sfx(EW_UN_ARGS)                                                              \
    {                                                                                              \
        (void)p;                                                                                   \
        EW_MAP(T, T, (T)(x < 0 ? (U)0 - (U)x : (U)x));                                             \
    }
#define COPY_UINT(P, dt, sfx, T, U)                                                                \
    EW_ROW P##_##sfx(EW_UN_ARGS)                                                              \
    {                                                                                              \
        (void)p;                                                                                   \
        EW_MAP(T, T, x);                                                                           \
    }
#define SIGN_INT(P, dt, sfx, T, U)                                                                 \
    EW_ROW P##_##sfx(EW_UN_ARGS)                                                              \
    {                                                                                              \
        (void)p;                                                                                   \
        EW_MAP(T, T, (T)((x > 0) - (x < 0)));                                                      \
    }
#define SIGN_UINT(P, dt, sfx, T, U)                                                                \
    EW_ROW P##_##sfx(EW_UN_ARGS)                                                              \
    {                                                                                              \
        (void)p;                                                                                   \
        EW_MAP(T, T, (T)(x != 0));                                                                 \
    }
#define ERF_INT(P, dt, sfx, T, U)                                                                  \
    EW_ROW P##_##sfx(EW_UN_ARGS)                                                              \
    {                                                                                              \
        (void)p;                                                                                   \
        EW_MAP(T, T, (T)erf((double)x)); /* -1, 0 or 1, truncated like a Cast */                   \
    }

EW_SINTS(NEG_INT, neg)
EW_SINTS(ABS_SINT, abs)
EW_UINTS(COPY_UINT, abs)
EW_SINTS(SIGN_INT, sign)
EW_UINTS(SIGN_UINT, sign)
EW_INTS(ERF_INT, erf)

EW_ROW neg_f32(EW_UN_ARGS) { (void)p; EW_MAP(float, float, -x); }
EW_ROW neg_f64(EW_UN_ARGS) { (void)p; EW_MAP(double, double, -x); }
EW_ROW abs_f32(EW_UN_ARGS) { (void)p; EW_MAP(float, float, ew_fm_abs(x)); }
EW_ROW abs_f64(EW_UN_ARGS) { (void)p; EW_MAP(double, double, fabs(x)); }
EW_ROW sign_f32(EW_UN_ARGS) { (void)p; EW_MAP(float, float, x > 0 ? 1.0f : x < 0 ? -1.0f : x); }
EW_ROW sign_f64(EW_UN_ARGS) { (void)p; EW_MAP(double, double, x > 0 ? 1.0 : x < 0 ? -1.0 : x); }

static const ew_spec neg_spec = {
    .name = "Neg",
    .un = {EW_SINTS(EW_ENTRY, neg) EW_FLOATS(EW_ENTRY, neg)},
    .half_via_f32 = true};
static const ew_spec abs_spec = {
    .name = "Abs",
    .un = {EW_INTS(EW_ENTRY, abs) EW_FLOATS(EW_ENTRY, abs)},
    .half_via_f32 = true};
static const ew_spec sign_spec = {
    .name = "Sign",
    .un = {EW_INTS(EW_ENTRY, sign) EW_FLOATS(EW_ENTRY, sign)},
    .half_via_f32 = true};
EW_UNARY_KERNEL(neg, neg_spec)
EW_UNARY_KERNEL(abs, abs_spec)
EW_UNARY_KERNEL(sign, sign_spec)

/* ---- Erf, Tanh, Sigmoid, Sin, Cos ---- */
EW_ROW erf_f32(EW_UN_ARGS) { (void)p; EW_MAP(float, float, ew_erff(x)); }
EW_ROW erf_f64(EW_UN_ARGS) { (void)p; EW_MAP(double, double, erf(x)); }
EW_ROW tanh_f32(EW_UN_ARGS) { (void)p; EW_MAP(float, float, ew_tanhf(x)); }
EW_ROW tanh_f64(EW_UN_ARGS) { (void)p; EW_MAP(double, double, tanh(x)); }
EW_ROW sigmoid_f32(EW_UN_ARGS) { (void)p; EW_MAP(float, float, ew_sigmoidf(x)); }
EW_ROW sigmoid_f64(EW_UN_ARGS) { (void)p; EW_MAP(double, double, 1.0 / (1.0 + exp(-x))); }
EW_ROW sin_f32(EW_UN_ARGS) { (void)p; EW_MAP(float, float, sinf(x)); }
EW_ROW sin_f64(EW_UN_ARGS) { (void)p; EW_MAP(double, double, sin(x)); }
EW_ROW cos_f32(EW_UN_ARGS) { (void)p; EW_MAP(float, float, cosf(x)); }
EW_ROW cos_f64(EW_UN_ARGS) { (void)p; EW_MAP(double, double, cos(x)); }

static const ew_spec erf_spec = {
    .name = "Erf",
    .un = {EW_INTS(EW_ENTRY, erf) EW_FLOATS(EW_ENTRY, erf)},
    .half_via_f32 = true, .grain = EW_GRAIN_COSTLY};
static const ew_spec tanh_spec = {
    .name = "Tanh", .un = {EW_FLOATS(EW_ENTRY, tanh)}, .half_via_f32 = true,
    .grain = EW_GRAIN_COSTLY};
static const ew_spec sigmoid_spec = {
    .name = "Sigmoid", .un = {EW_FLOATS(EW_ENTRY, sigmoid)}, .half_via_f32 = true,
    .grain = EW_GRAIN_COSTLY};
static const ew_spec sin_spec = {
    .name = "Sin", .un = {EW_FLOATS(EW_ENTRY, sin)}, .half_via_f32 = true,
    .grain = EW_GRAIN_COSTLY};
static const ew_spec cos_spec = {
    .name = "Cos", .un = {EW_FLOATS(EW_ENTRY, cos)}, .half_via_f32 = true,
    .grain = EW_GRAIN_COSTLY};
EW_UNARY_KERNEL(erf, erf_spec)
EW_UNARY_KERNEL(tanh, tanh_spec)
EW_UNARY_KERNEL(sigmoid, sigmoid_spec)
EW_UNARY_KERNEL(sin, sin_spec)
EW_UNARY_KERNEL(cos, cos_spec)

/* ---- Tan, Asin, Acos, Atan, Sinh, Cosh, Asinh, Acosh, Atanh (libm) ---- */
#define LIBM_OP(op, Name, ff, fd)                                                                      \
    EW_ROW op##_f32(EW_UN_ARGS)                                                                  \
    {                                                                                              \
        (void)p;                                                                                   \
        EW_MAP(float, float, ff(x));                                                               \
    }                                                                                              \
    EW_ROW op##_f64(EW_UN_ARGS)                                                                  \
    {                                                                                              \
        (void)p;                                                                                   \
        EW_MAP(double, double, fd(x));                                                             \
    }                                                                                              \
    static const ew_spec op##_spec = {.name = #Name, .un = {EW_FLOATS(EW_ENTRY, op)},          \
                                        .half_via_f32 = true, .grain = EW_GRAIN_COSTLY};           \
    EW_UNARY_KERNEL(op, op##_spec)
LIBM_OP(tan, Tan, tanf, tan)
LIBM_OP(asin, Asin, asinf, asin)
LIBM_OP(acos, Acos, acosf, acos)
LIBM_OP(atan, Atan, atanf, atan)
LIBM_OP(sinh, Sinh, sinhf, sinh)
LIBM_OP(cosh, Cosh, coshf, cosh)
LIBM_OP(asinh, Asinh, asinhf, asinh)
LIBM_OP(acosh, Acosh, acoshf, acosh)
LIBM_OP(atanh, Atanh, atanhf, atanh)

/* ---- IsNaN, IsInf (bool results) ---- */
EW_ROW is_nan_f32(EW_UN_ARGS) { (void)p; EW_MAP(uint8_t, float, (uint8_t)(x != x)); }
EW_ROW is_nan_f64(EW_UN_ARGS) { (void)p; EW_MAP(uint8_t, double, (uint8_t)(x != x)); }
static const ew_spec is_nan_spec = {
    .name = "IsNaN", .un = {EW_FLOATS(EW_ENTRY, is_nan)}, .half_via_f32 = true, .bool_out = true};
EW_UNARY_KERNEL(is_nan, is_nan_spec)

/* flag bit 0: detect +inf, bit 1: detect -inf */
EW_ROW is_inf_f32(EW_UN_ARGS)
{
    const float pos = (p->flag & 1) ? INFINITY : NAN, neg = (p->flag & 2) ? -INFINITY : NAN;
    EW_MAP(uint8_t, float, (uint8_t)((x == pos) | (x == neg)));
}
EW_ROW is_inf_f64(EW_UN_ARGS)
{
    const double pos = (p->flag & 1) ? INFINITY : NAN, neg = (p->flag & 2) ? -INFINITY : NAN;
    EW_MAP(uint8_t, double, (uint8_t)((x == pos) | (x == neg)));
}
static const ew_spec is_inf_spec = {
    .name = "IsInf", .un = {EW_FLOATS(EW_ENTRY, is_inf)}, .half_via_f32 = true, .bool_out = true};

bool ew_is_inf_supports(const joule_node *node, int64_t opset, int n_in,
                        const joule_view *const *in)
{
    (void)node;
    (void)opset;
    return ew_unary_supports(&is_inf_spec, n_in, in);
}

joule_status ew_is_inf_run(const joule_kernel_ctx *c)
{
    ew_par par = {0};
    bool pos = !c->node || joule_attr_int(c->node, "detect_positive", 1) != 0;
    bool neg = !c->node || joule_attr_int(c->node, "detect_negative", 1) != 0;
    par.flag = (pos ? 1 : 0) | (neg ? 2 : 0);
    return ew_unary_run(&is_inf_spec, &par, c);
}

/* eval/cpu/elementwise/binary.c: arithmetic with broadcasting: Add Sub Mul Div Pow Mod BitShift.
 * Integers wrap (two's complement) as in ONNX Runtime; integer division truncates toward zero,
 * and since a model may divide by zero, x / 0 gives 0 instead of trapping. Pow takes a base of
 * float16/bfloat16/float/double/int32/int64 and an exponent of any numeric type. */
#include "ew.h"

#include <math.h>


/* ---- Add, Sub, Mul ---- */
#define ADD_INT(P, dt, sfx, T, U)                                                                  \
    EW_ROW P##_##sfx(EW_BIN_ARGS)                                                             \
    {                                                                                              \
        (void)p;                                                                                   \
        EW_ZIP(T, T, T, (T)((U)a + (U)b));                                                         \
    }
#define SUB_INT(P, dt, sfx, T, U)                                                                  \
    EW_ROW P##_##sfx(EW_BIN_ARGS)                                                             \
    {                                                                                              \
        (void)p;                                                                                   \
        EW_ZIP(T, T, T, (T)((U)a - (U)b));                                                         \
    }
#define MUL_INT(P, dt, sfx, T, U)                                                                  \
    EW_ROW P##_##sfx(EW_BIN_ARGS)                                                             \
    {                                                                                              \
        (void)p;                                                                                   \
        EW_ZIP(T, T, T, (T)((U)a * (U)b));                                                         \
    }
#define DIV_SINT(P, dt, sfx, T, U)                                                                 \
    EW_ROW P##_##sfx(EW_BIN_ARGS)                                                             \
    {                                                                                              \
        (void)p;                                                                                   \
        EW_ZIP(T, T, T, b == 0 ? (T)0 : b == -1 ? (T)((U)0 - (U)a) : (T)(a / b));                  \
    }
#define DIV_UINT(P, dt, sfx, T, U)                                                                 \
    EW_ROW P##_##sfx(EW_BIN_ARGS)                                                             \
    {                                                                                              \
        (void)p;                                                                                   \
        EW_ZIP(T, T, T, b == 0 ? (T)0 : (T)(a / b));                                               \
    }
#define FLOAT_OP(P, dt, sfx, T, U, OP)                                                             \
    EW_ROW P##_##sfx(EW_BIN_ARGS)                                                             \
    {                                                                                              \
        (void)p;                                                                                   \
        EW_ZIP(T, T, T, a OP b);                                                                   \
    }
#define ADD_FLOAT(P, dt, sfx, T, U) FLOAT_OP(P, dt, sfx, T, U, +)
#define SUB_FLOAT(P, dt, sfx, T, U) FLOAT_OP(P, dt, sfx, T, U, -)
#define MUL_FLOAT(P, dt, sfx, T, U) FLOAT_OP(P, dt, sfx, T, U, *)
#define DIV_FLOAT(P, dt, sfx, T, U) FLOAT_OP(P, dt, sfx, T, U, /)

EW_INTS(ADD_INT, add)
EW_FLOATS(ADD_FLOAT, add)
EW_INTS(SUB_INT, sub)
EW_FLOATS(SUB_FLOAT, sub)
EW_INTS(MUL_INT, mul)
EW_FLOATS(MUL_FLOAT, mul)
EW_SINTS(DIV_SINT, div)
EW_UINTS(DIV_UINT, div)
EW_FLOATS(DIV_FLOAT, div)

static const ew_spec add_spec = {
    .name = "Add", .bin = {EW_NUMS(EW_ENTRY, add)}, .half_via_f32 = true};
static const ew_spec sub_spec = {
    .name = "Sub", .bin = {EW_NUMS(EW_ENTRY, sub)}, .half_via_f32 = true};
static const ew_spec mul_spec = {
    .name = "Mul", .bin = {EW_NUMS(EW_ENTRY, mul)}, .half_via_f32 = true};
static const ew_spec div_spec = {
    .name = "Div", .bin = {EW_NUMS(EW_ENTRY, div)}, .half_via_f32 = true};
EW_BINARY_KERNEL(add, add_spec)
EW_BINARY_KERNEL(sub, sub_spec)
EW_BINARY_KERNEL(mul, mul_spec)
EW_BINARY_KERNEL(div, div_spec)

/* ---- Pow ---- */

/* Element i of an exponent of dtype t as an integer: sign and magnitude. False for float types. */
static bool int_exponent(joule_dtype t, const void *b, size_t i, bool *neg, uint64_t *mag)
{
    int64_t v;
    switch (t) {
    case JOULE_I8: v = ((const int8_t *)b)[i]; break;
    case JOULE_I16: v = ((const int16_t *)b)[i]; break;
    case JOULE_I32: v = ((const int32_t *)b)[i]; break;
    case JOULE_I64: v = ((const int64_t *)b)[i]; break;
    case JOULE_U8: v = ((const uint8_t *)b)[i]; break;
    case JOULE_U16: v = ((const uint16_t *)b)[i]; break;
    case JOULE_U32: v = ((const uint32_t *)b)[i]; break;
    case JOULE_U64:
        *neg = false;
        *mag = ((const uint64_t *)b)[i];
        return true;
    default: return false;
    }
    *neg = v < 0;
    *mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    return true;
}

/* base^e modulo 2^64 by squaring */
static uint64_t ipow_u64(uint64_t base, uint64_t e)
{
    uint64_t r = 1;
    while (e) {
        if (e & 1)
            r *= base;
        base *= base;
        e >>= 1;
    }
    return r;
}

/* An integer base to an integer power, wrapping; negative powers truncate toward zero (only
 * 1 and -1 give non-zero results; 0 to a negative power gives 0 rather than a trap). */
static int64_t ipow_signed(int64_t a, bool neg, uint64_t mag)
{
    if (neg) {
        if (a == 1)
            return 1;
        if (a == -1)
            return (mag & 1) ? -1 : 1;
        return 0;
    }
    return (int64_t)ipow_u64((uint64_t)a, mag);
}

/* double to an integer type, truncating toward zero; nan gives 0, out of range saturates */
static int64_t trunc_sat(double v, double lo, double hi_excl, int64_t tmin, int64_t tmax)
{
    if (v != v)
        return 0;
    if (v <= lo)
        return tmin;
    if (v >= hi_excl)
        return tmax;
    return (int64_t)v;
}

EW_ROW pow_f32(EW_BIN_ARGS)
{
    float *o = o_;
    const float *as = a_;
    if (p->bdt == JOULE_F32) {
        if (mode == EW_VS) { /* common exponents exactly as powf would round them */
            float e = *(const float *)b_;
            if (e == 2.0f) {
                EW_SIMD for (size_t i = 0; i < n; i++) o[i] = as[i] * as[i];
                return;
            }
            if (e == 1.0f) {
                EW_SIMD for (size_t i = 0; i < n; i++) o[i] = as[i];
                return;
            }
            if (e == 0.5f) { /* pow(-0, .5) = +0 and pow(-inf, .5) = +inf, unlike sqrt */
                EW_SIMD for (size_t i = 0; i < n; i++)
                    o[i] = as[i] == -INFINITY ? INFINITY : sqrtf(as[i]) + 0.0f;
                return;
            }
        }
        EW_ZIP(float, float, float, powf(a, b));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        float a = as[mode == EW_SV ? 0 : i];
        double e = ew_get_f64(p->bdt, b_, mode == EW_VS ? 0 : i);
        o[i] = (float)pow((double)a, e);
    }
}

EW_ROW pow_f64(EW_BIN_ARGS)
{
    double *o = o_;
    const double *as = a_;
    if (p->bdt == JOULE_F64) {
        if (mode == EW_VS && *(const double *)b_ == 2.0) {
            EW_SIMD for (size_t i = 0; i < n; i++) o[i] = as[i] * as[i];
            return;
        }
        EW_ZIP(double, double, double, pow(a, b));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        double a = as[mode == EW_SV ? 0 : i];
        o[i] = pow(a, ew_get_f64(p->bdt, b_, mode == EW_VS ? 0 : i));
    }
}

#define POW_INT(P, dt, sfx, T, U, LO, HI, TMIN, TMAX)                                                          \
    EW_ROW P##_##sfx(EW_BIN_ARGS)                                                             \
    {                                                                                              \
        T *o = o_;                                                                                 \
        const T *as = a_;                                                                          \
        for (size_t i = 0; i < n; i++) {                                                           \
            T a = as[mode == EW_SV ? 0 : i];                                                       \
            size_t bi = mode == EW_VS ? 0 : i;                                                     \
            bool neg;                                                                              \
            uint64_t mag;                                                                          \
            if (int_exponent(p->bdt, b_, bi, &neg, &mag))                                          \
                o[i] = (T)(U)(uint64_t)ipow_signed(a, neg, mag);                                   \
            else                                                                                   \
                o[i] = (T)trunc_sat(pow((double)a, ew_get_f64(p->bdt, b_, bi)), LO, HI, \
                                     TMIN, TMAX);           \
        }                                                                                          \
    }
POW_INT(pow, JOULE_I32, i32, int32_t, uint32_t, -2147483648.0, 2147483648.0, INT32_MIN, INT32_MAX)
POW_INT(pow, JOULE_I64, i64, int64_t, uint64_t, -9223372036854775808.0, 9223372036854775808.0,
        INT64_MIN, INT64_MAX)

static const ew_spec pow_spec = {
    .name = "Pow",
    .bin = {[JOULE_F32] = pow_f32, [JOULE_F64] = pow_f64, [JOULE_I32] = pow_i32,
            [JOULE_I64] = pow_i64},
    .half_via_f32 = true, .grain = EW_GRAIN_COSTLY};

static bool numeric(joule_dtype t)
{
    switch (t) {
    case JOULE_F32: case JOULE_F64: case JOULE_F16: case JOULE_BF16:
    case JOULE_I8: case JOULE_I16: case JOULE_I32: case JOULE_I64:
    case JOULE_U8: case JOULE_U16: case JOULE_U32: case JOULE_U64:
        return true;
    default:
        return false;
    }
}

bool ew_pow_supports(const joule_node *node, int64_t opset, int n_in, const joule_view *const *in)
{
    (void)node;
    (void)opset;
    return n_in == 2 && in[0] && in[1] && ew_spec_has(&pow_spec, in[0]->dtype) &&
           numeric(in[1]->dtype);
}

joule_status ew_pow_run(const joule_kernel_ctx *c) { return ew_binary_run(&pow_spec, NULL, c); }

/* ---- Mod: fmod = 0 takes the divisor's sign (Python's %), fmod = 1 the dividend's (C's fmod);
 * an integer x mod 0 gives 0, and INT_MIN mod -1 gives 0 ---- */
#define MOD_SINT(P, dt, sfx, T, U)                                                                 \
    EW_ROW P##_##sfx(EW_BIN_ARGS)                                                                  \
    {                                                                                              \
        if (p->flag) {                                                                             \
            EW_ZIP(T, T, T, b == 0 || b == -1 ? (T)0 : (T)(a % b));                                \
        } else {                                                                                   \
            EW_ZIP(T, T, T,                                                                        \
                   b == 0 || b == -1 ? (T)0                                                        \
                   : (a % b != 0 && ((a % b < 0) != (b < 0))) ? (T)(a % b + b)                     \
                                                              : (T)(a % b));                       \
        }                                                                                          \
    }
#define MOD_UINT(P, dt, sfx, T, U)                                                                 \
    EW_ROW P##_##sfx(EW_BIN_ARGS)                                                                  \
    {                                                                                              \
        (void)p;                                                                                   \
        EW_ZIP(T, T, T, b == 0 ? (T)0 : (T)(a % b));                                               \
    }
EW_SINTS(MOD_SINT, mod)
EW_UINTS(MOD_UINT, mod)
EW_ROW mod_f32(EW_BIN_ARGS)
{
    if (p->flag) {
        EW_ZIP(float, float, float, fmodf(a, b));
    } else { /* NumPy's mod: the remainder takes the divisor's sign */
        EW_ZIP(float, float, float,
               fmodf(a, b) != 0 && ((fmodf(a, b) < 0) != (b < 0)) ? fmodf(a, b) + b : fmodf(a, b));
    }
}
EW_ROW mod_f64(EW_BIN_ARGS)
{
    if (p->flag) {
        EW_ZIP(double, double, double, fmod(a, b));
    } else {
        EW_ZIP(double, double, double,
               fmod(a, b) != 0 && ((fmod(a, b) < 0) != (b < 0)) ? fmod(a, b) + b : fmod(a, b));
    }
}
static const ew_spec mod_spec = {
    .name = "Mod", .bin = {EW_NUMS(EW_ENTRY, mod)}, .half_via_f32 = true};

bool ew_mod_supports(const joule_node *node, int64_t opset, int n_in, const joule_view *const *in)
{
    (void)node;
    (void)opset;
    return ew_binary_supports(&mod_spec, n_in, in);
}

joule_status ew_mod_run(const joule_kernel_ctx *c)
{
    ew_par par = {.flag = c->node && joule_attr_int(c->node, "fmod", 0) != 0};
    return ew_binary_run(&mod_spec, &par, c);
}

/* ---- BitShift (unsigned types); shifting by the width or more gives 0 ---- */
#define SHIFT_UINT(P, dt, sfx, T, U)                                                               \
    EW_ROW P##_##sfx(EW_BIN_ARGS)                                                                  \
    {                                                                                              \
        const unsigned bits = 8 * sizeof(T);                                                       \
        if (p->flag) {                                                                             \
            EW_ZIP(T, T, T, b >= bits ? (T)0 : (T)((U)a << b));                                    \
        } else {                                                                                   \
            EW_ZIP(T, T, T, b >= bits ? (T)0 : (T)(a >> b));                                       \
        }                                                                                          \
    }
EW_UINTS(SHIFT_UINT, bit_shift)
static const ew_spec bit_shift_spec = {.name = "BitShift", .bin = {EW_UINTS(EW_ENTRY, bit_shift)}};

/* direction: 1 "LEFT", 0 "RIGHT", -1 missing or other */
static int shift_direction(const joule_node *node)
{
    joule_string s = node ? joule_attr_string(node, "direction", "") : (joule_string){0, ""};
    if (s.len == 4 && memcmp(s.ptr, "LEFT", 4) == 0)
        return 1;
    if (s.len == 5 && memcmp(s.ptr, "RIGHT", 5) == 0)
        return 0;
    return -1;
}

bool ew_bit_shift_supports(const joule_node *node, int64_t opset, int n_in,
                           const joule_view *const *in)
{
    (void)opset;
    return shift_direction(node) >= 0 && ew_binary_supports(&bit_shift_spec, n_in, in);
}

joule_status ew_bit_shift_run(const joule_kernel_ctx *c)
{
    int dir = shift_direction(c->node);
    if (dir < 0)
        return joule_fail(c->err, JOULE_ERR_INVALID,
                          "%s (BitShift): direction must be \"LEFT\" or \"RIGHT\"", ew_who(c->node));
    ew_par par = {.flag = dir};
    return ew_binary_run(&bit_shift_spec, &par, c);
}

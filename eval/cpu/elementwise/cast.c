/* eval/cpu/elementwise/cast.c: Cast and CastLike between bool, the eight integer types, float16,
 * bfloat16, float and double (one generated loop per pair; strings are not handled).
 * Rules, as NumPy and ONNX Runtime give them on x86-64:
 * - float to integer truncates toward zero; a nan or a value outside the target range gives what
 *   the hardware conversion gives: through int64 (INT64_MIN when out of range) then wrapped to
 *   8/16 bits and uint32, INT32_MIN for int32;
 * - integer to narrower integer wraps; to bool is "non-zero", bool to number is 0 or 1;
 * - to float16/bfloat16 rounds to nearest even once, also from double (round-to-odd to float
 *   first, so no double rounding). Cast-1's string `to` ("FLOAT", ...) is accepted. */
#include "ew.h"

#include <math.h>


/* ---- conversions from a value of C type float/double/integer to each target ---- */
static inline int64_t f2i64(double v)
{
    return v >= -9223372036854775808.0 && v < 9223372036854775808.0 ? (int64_t)v : INT64_MIN;
}
static inline int64_t f2i64f(float v)
{
    return v >= -9223372036854775808.0f && v < 9223372036854775808.0f ? (int64_t)v : INT64_MIN;
}
static inline int32_t f2i32(double v)
{
    return v > -2147483649.0 && v < 2147483648.0 ? (int32_t)v : INT32_MIN;
}
static inline int32_t f2i32f(float v)
{
    return v >= -2147483648.0f && v < 2147483648.0f ? (int32_t)v : INT32_MIN;
}
static inline uint64_t f2u64(double v)
{
    if (v >= 0 && v < 18446744073709551616.0)
        return (uint64_t)v;
    return (uint64_t)f2i64(v); /* negative: wraps; nan and too large: 2^63 */
}

/* double to float rounding to odd: the float nearest toward zero, with its last bit set when
 * inexact; rounding that to 11 or 8 significant bits then equals rounding d directly */
static inline float d2f_odd(double d)
{
    float f = (float)d;
    uint32_t u = ew_f2u(f);
    if ((double)f != d) {
        if (fabs((double)f) > fabs(d))
            u -= 1;
        u |= 1;
    }
    return ew_u2f(u);
}

#define TO_F32(v) ((float)(v))
#define TO_F64(v) ((double)(v))
#define TO_BOOL(v) ((uint8_t)((v) != 0))
#define TO_F16(v) _Generic((v), double: ew_f2h(d2f_odd((double)(v))), default: ew_f2h((float)(v)))
#define TO_BF16(v) _Generic((v), double: ew_f2b(d2f_odd((double)(v))), default: ew_f2b((float)(v)))
#define TO_NARROW(T, v)                                                                            \
    _Generic((v), float: (T)f2i64f((float)(v)), double: (T)f2i64((double)(v)), default: (T)(v))
#define TO_I8(v) TO_NARROW(int8_t, v)
#define TO_U8(v) TO_NARROW(uint8_t, v)
#define TO_I16(v) TO_NARROW(int16_t, v)
#define TO_U16(v) TO_NARROW(uint16_t, v)
#define TO_U32(v) TO_NARROW(uint32_t, v)
#define TO_I64(v) TO_NARROW(int64_t, v)
#define TO_I32(v)                                                                                  \
    _Generic((v), float: f2i32f((float)(v)), double: f2i32((double)(v)), default: (int32_t)(v))
#define TO_U64(v) _Generic((v), float: f2u64((double)(v)), double: f2u64((double)(v)), default: (uint64_t)(v))

/* reading a source element: halves widen to float, bool reads as 0/1 */
#define LD_b8(x) ((x) != 0)
#define LD_u8(x) (x)
#define LD_i8(x) (x)
#define LD_u16(x) (x)
#define LD_i16(x) (x)
#define LD_u32(x) (x)
#define LD_i32(x) (x)
#define LD_u64(x) (x)
#define LD_i64(x) (x)
#define LD_f16(x) ew_h2f(x)
#define LD_bf16(x) ew_b2f(x)
#define LD_f32(x) (x)
#define LD_f64(x) (x)

/* every castable type: X(P, dtype, suffix, ctype, TO_ macro) */
#define CAST_TYPES(X, P)                                                                           \
    X(P, JOULE_BOOL, b8, uint8_t, TO_BOOL)                                                       \
    X(P, JOULE_U8, u8, uint8_t, TO_U8)                                                             \
    X(P, JOULE_I8, i8, int8_t, TO_I8)                                                              \
    X(P, JOULE_U16, u16, uint16_t, TO_U16)                                                         \
    X(P, JOULE_I16, i16, int16_t, TO_I16)                                                          \
    X(P, JOULE_U32, u32, uint32_t, TO_U32)                                                         \
    X(P, JOULE_I32, i32, int32_t, TO_I32)                                                          \
    X(P, JOULE_U64, u64, uint64_t, TO_U64)                                                         \
    X(P, JOULE_I64, i64, int64_t, TO_I64)                                                          \
    X(P, JOULE_F16, f16, uint16_t, TO_F16)                                                         \
    X(P, JOULE_BF16, bf16, uint16_t, TO_BF16)                                                      \
    X(P, JOULE_F32, f32, float, TO_F32)                                                            \
    X(P, JOULE_F64, f64, double, TO_F64)
/* the same list again, for the inner level of the nested expansion */
#define CAST_TYPES2(X, P)                                                                          \
    X(P, JOULE_BOOL, b8, uint8_t, TO_BOOL)                                                       \
    X(P, JOULE_U8, u8, uint8_t, TO_U8)                                                             \
    X(P, JOULE_I8, i8, int8_t, TO_I8)                                                              \
    X(P, JOULE_U16, u16, uint16_t, TO_U16)                                                         \
    X(P, JOULE_I16, i16, int16_t, TO_I16)                                                          \
    X(P, JOULE_U32, u32, uint32_t, TO_U32)                                                         \
    X(P, JOULE_I32, i32, int32_t, TO_I32)                                                          \
    X(P, JOULE_U64, u64, uint64_t, TO_U64)                                                         \
    X(P, JOULE_I64, i64, int64_t, TO_I64)                                                          \
    X(P, JOULE_F16, f16, uint16_t, TO_F16)                                                         \
    X(P, JOULE_BF16, bf16, uint16_t, TO_BF16)                                                      \
    X(P, JOULE_F32, f32, float, TO_F32)                                                            \
    X(P, JOULE_F64, f64, double, TO_F64)

#define CT_b8 uint8_t
#define CT_u8 uint8_t
#define CT_i8 int8_t
#define CT_u16 uint16_t
#define CT_i16 int16_t
#define CT_u32 uint32_t
#define CT_i32 int32_t
#define CT_u64 uint64_t
#define CT_i64 int64_t
#define CT_f16 uint16_t
#define CT_bf16 uint16_t
#define CT_f32 float
#define CT_f64 double

typedef void (*cast_fn)(void *dst, const void *src, size_t n);

/* cast_<src>_<dst> */
#define CAST_PAIR(S, dt, D, DT, TO)                                                                \
    EW_ROW cast_##S##_##D(void *dst, const void *src, size_t n)                               \
    {                                                                                              \
        const CT_##S *s = src;                                                                     \
        DT *d = dst;                                                                               \
        EW_SIMD for (size_t i = 0; i < n; i++) d[i] = TO(LD_##S(s[i]));                            \
    }
#define CAST_FROM(P, dt, S, ST, TO) CAST_TYPES2(CAST_PAIR, S)
CAST_TYPES(CAST_FROM, _)

#define CAST_CELL(S, dt, D, DT, TO) [dt] = cast_##S##_##D,
#define CAST_ROW(P, dt, S, ST, TO) [dt] = {CAST_TYPES2(CAST_CELL, S)},
static const cast_fn cast_table[JOULE_DTYPE_COUNT][JOULE_DTYPE_COUNT] = {CAST_TYPES(CAST_ROW, _)};

static bool castable(joule_dtype t)
{
    return (unsigned)t < JOULE_DTYPE_COUNT && cast_table[t][JOULE_F32] != NULL;
}

/* Cast's target: the `to` attribute (an int, or before opset 6 a name like "FLOAT"). */
static joule_dtype cast_to(const joule_node *node)
{
    const joule_attr *a = node ? joule_node_attr(node, "to") : NULL;
    if (!a)
        return JOULE_UNDEFINED;
    if (a->type == JOULE_ATTR_INT)
        return joule_dtype_valid((int)a->i) && a->i == (int)a->i ? (joule_dtype)a->i
                                                                  : JOULE_UNDEFINED;
    if (a->type == JOULE_ATTR_STRING) {
        static const struct {
            const char *name;
            joule_dtype t;
        } names[] = {{"FLOAT", JOULE_F32}, {"UINT8", JOULE_U8},     {"INT8", JOULE_I8},
                     {"UINT16", JOULE_U16}, {"INT16", JOULE_I16},   {"INT32", JOULE_I32},
                     {"INT64", JOULE_I64},  {"BOOL", JOULE_BOOL},   {"FLOAT16", JOULE_F16},
                     {"DOUBLE", JOULE_F64}, {"UINT32", JOULE_U32},  {"UINT64", JOULE_U64},
                     {"BFLOAT16", JOULE_BF16}};
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
            if (strlen(names[i].name) == a->s.len && memcmp(names[i].name, a->s.ptr, a->s.len) == 0)
                return names[i].t;
    }
    return JOULE_UNDEFINED;
}

typedef struct cast_job {
    cast_fn fn;
    const char *src;
    char *dst;
    size_t ssz, dsz;
} cast_job;

static void cast_range(void *arg, size_t lo, size_t hi)
{
    const cast_job *j = arg;
    j->fn(j->dst + lo * j->dsz, j->src + lo * j->ssz, hi - lo);
}

/* Casts x into o (o's dtype is the target). */
static joule_status cast_apply(const joule_kernel_ctx *c, const char *op, joule_dtype to)
{
    if (c->n_in < 1 || !c->in[0])
        return joule_fail(c->err, JOULE_ERR_INVALID, "%s (%s): missing input", ew_who(c->node), op);
    const joule_view *x = c->in[0];
    if (!castable(x->dtype) || !castable(to))
        return joule_fail(c->err, JOULE_ERR_UNSUPPORTED, "%s (%s): cannot cast %s to %s",
                          ew_who(c->node), op, joule_dtype_name(x->dtype), joule_dtype_name(to));
    joule_status st = ew_check_out(c, 0, to, x->count);
    if (st != JOULE_OK || x->count == 0)
        return st;
    if (!x->data)
        return joule_fail(c->err, JOULE_ERR_INVALID, "%s (%s): missing data", ew_who(c->node), op);
    cast_job j = {.fn = cast_table[x->dtype][to], .src = x->data, .dst = c->out[0]->data,
                  .ssz = joule_dtype_bytes(x->dtype, 1), .dsz = joule_dtype_bytes(to, 1)};
    if (x->dtype == to && x->dtype != JOULE_BOOL) {
        if (j.dst != j.src)
            memcpy(j.dst, j.src, j.ssz * x->count);
        return JOULE_OK;
    }
    ew_parallel(c->threads, x->count, 0, cast_range, &j);
    return JOULE_OK;
}

bool ew_cast_supports(const joule_node *node, int64_t opset, int n_in, const joule_view *const *in)
{
    (void)opset;
    return n_in >= 1 && in[0] && castable(in[0]->dtype) && castable(cast_to(node));
}

joule_status ew_cast_run(const joule_kernel_ctx *c)
{
    joule_dtype to = cast_to(c->node);
    if (to == JOULE_UNDEFINED)
        return joule_fail(c->err, JOULE_ERR_INVALID, "%s (Cast): missing or bad 'to' attribute",
                          ew_who(c->node));
    return cast_apply(c, "Cast", to);
}

bool ew_cast_like_supports(const joule_node *node, int64_t opset, int n_in,
                           const joule_view *const *in)
{
    (void)node;
    (void)opset;
    return n_in == 2 && in[0] && in[1] && castable(in[0]->dtype) && castable(in[1]->dtype);
}

joule_status ew_cast_like_run(const joule_kernel_ctx *c)
{
    if (c->n_in < 2 || !c->in[1])
        return joule_fail(c->err, JOULE_ERR_INVALID, "%s (CastLike): needs two inputs",
                          ew_who(c->node));
    return cast_apply(c, "CastLike", c->in[1]->dtype);
}

/* formats/dtype.c: the dtype traits table (name, size, float32 conversions), indexed by
 * joule_dtype and pinned by static_assert, plus IEEE half and bfloat16 conversions. */
#include <assert.h>
#include <math.h>
#include <string.h>

#include "joule/dtype.h"

uint16_t joule_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t exp = (x >> 23) & 0xffu;
    uint32_t man = x & 0x7fffffu;
    if (exp == 0xff) /* inf or nan (keep nan quiet) */
        return (uint16_t)(sign | 0x7c00u | (man ? 0x200u | (man >> 13) : 0));
    int32_t e = (int32_t)exp - 127 + 15;
    if (e >= 31)
        return (uint16_t)(sign | 0x7c00u);
    if (e <= 0) { /* subnormal or zero */
        if (e < -10)
            return (uint16_t)sign;
        man |= 0x800000u;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t half = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1)))
            half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = sign | ((uint32_t)e << 10) | (man >> 13);
    uint32_t rem = man & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (half & 1)))
        half++; /* may carry into the exponent, which is the correct rounding to inf */
    return (uint16_t)half;
}

float joule_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t x;
    if (exp == 0) {
        if (man == 0) {
            x = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400u));
            x = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        x = sign | 0x7f800000u | (man << 13);
    } else {
        x = sign | ((exp - 15 + 127) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &x, 4);
    return f;
}

uint16_t joule_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 0x40u); /* quiet nan */
    uint32_t rounding = 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)((x + rounding) >> 16);
}

float joule_bf16_to_f32(uint16_t b)
{
    uint32_t x = (uint32_t)b << 16;
    float f;
    memcpy(&f, &x, 4);
    return f;
}

/* Float to integer: round half to even, saturate, NaN to 0. */
static double round_sat(float v, double lo, double hi)
{
    if (isnan(v))
        return 0;
    double r = nearbyint((double)v);
    return r < lo ? lo : r > hi ? hi : r;
}

#define INT_CONV(T, ctype, lo, hi)                                                                \
    static float T##_to(const void *s, size_t i) { return (float)((const ctype *)s)[i]; }         \
    static void T##_from(void *d, size_t i, float v) { ((ctype *)d)[i] = (ctype)round_sat(v, lo, hi); }

INT_CONV(u8, uint8_t, 0, 255)
INT_CONV(i8, int8_t, -128, 127)
INT_CONV(u16, uint16_t, 0, 65535)
INT_CONV(i16, int16_t, -32768, 32767)
INT_CONV(i32, int32_t, -2147483648.0, 2147483647.0)
INT_CONV(u32, uint32_t, 0, 4294967295.0)
/* 64-bit limits are not exactly representable in double; clamp just inside them */
INT_CONV(i64, int64_t, -9223372036854774784.0, 9223372036854774784.0)
INT_CONV(u64, uint64_t, 0, 18446744073709549568.0)

static float f32_to(const void *s, size_t i) { return ((const float *)s)[i]; }
static void f32_from(void *d, size_t i, float v) { ((float *)d)[i] = v; }
static float f64_to(const void *s, size_t i) { return (float)((const double *)s)[i]; }
static void f64_from(void *d, size_t i, float v) { ((double *)d)[i] = v; }
static float f16_to(const void *s, size_t i) { return joule_f16_to_f32(((const uint16_t *)s)[i]); }
static void f16_from(void *d, size_t i, float v) { ((uint16_t *)d)[i] = joule_f32_to_f16(v); }
static float bf16_to(const void *s, size_t i) { return joule_bf16_to_f32(((const uint16_t *)s)[i]); }
static void bf16_from(void *d, size_t i, float v) { ((uint16_t *)d)[i] = joule_f32_to_bf16(v); }
static float bool_to(const void *s, size_t i) { return ((const uint8_t *)s)[i] ? 1.0f : 0.0f; }
static void bool_from(void *d, size_t i, float v) { ((uint8_t *)d)[i] = v != 0.0f; }

#define FLOAT_T .is_float = true, .is_signed = true
#define SINT_T .is_integer = true, .is_signed = true
#define UINT_T .is_integer = true

static const joule_dtype_traits traits[JOULE_DTYPE_COUNT] = {
    [JOULE_UNDEFINED] = {.name = "undefined"},
    [JOULE_F32] = {.name = "float", .bits = 32, FLOAT_T, .to_f32 = f32_to, .from_f32 = f32_from},
    [JOULE_U8] = {.name = "uint8", .bits = 8, UINT_T, .to_f32 = u8_to, .from_f32 = u8_from},
    [JOULE_I8] = {.name = "int8", .bits = 8, SINT_T, .to_f32 = i8_to, .from_f32 = i8_from},
    [JOULE_U16] = {.name = "uint16", .bits = 16, UINT_T, .to_f32 = u16_to, .from_f32 = u16_from},
    [JOULE_I16] = {.name = "int16", .bits = 16, SINT_T, .to_f32 = i16_to, .from_f32 = i16_from},
    [JOULE_I32] = {.name = "int32", .bits = 32, SINT_T, .to_f32 = i32_to, .from_f32 = i32_from},
    [JOULE_I64] = {.name = "int64", .bits = 64, SINT_T, .to_f32 = i64_to, .from_f32 = i64_from},
    [JOULE_STRING] = {.name = "string", .bits = 8 * sizeof(joule_string)},
    [JOULE_BOOL] = {.name = "bool", .bits = 8, .to_f32 = bool_to, .from_f32 = bool_from},
    [JOULE_F16] = {.name = "float16", .bits = 16, FLOAT_T, .to_f32 = f16_to, .from_f32 = f16_from},
    [JOULE_F64] = {.name = "double", .bits = 64, FLOAT_T, .to_f32 = f64_to, .from_f32 = f64_from},
    [JOULE_U32] = {.name = "uint32", .bits = 32, UINT_T, .to_f32 = u32_to, .from_f32 = u32_from},
    [JOULE_U64] = {.name = "uint64", .bits = 64, UINT_T, .to_f32 = u64_to, .from_f32 = u64_from},
    [JOULE_C64] = {.name = "complex64", .bits = 64, .is_signed = true},
    [JOULE_C128] = {.name = "complex128", .bits = 128, .is_signed = true},
    [JOULE_BF16] = {.name = "bfloat16", .bits = 16, FLOAT_T, .to_f32 = bf16_to, .from_f32 = bf16_from},
    [JOULE_F8E4M3FN] = {.name = "float8e4m3fn", .bits = 8, FLOAT_T},
    [JOULE_F8E4M3FNUZ] = {.name = "float8e4m3fnuz", .bits = 8, FLOAT_T},
    [JOULE_F8E5M2] = {.name = "float8e5m2", .bits = 8, FLOAT_T},
    [JOULE_F8E5M2FNUZ] = {.name = "float8e5m2fnuz", .bits = 8, FLOAT_T},
    [JOULE_U4] = {.name = "uint4", .bits = 4, UINT_T},
    [JOULE_I4] = {.name = "int4", .bits = 4, SINT_T},
};

/* The table is indexed by the enum, whose values are ONNX's: pin both. */
static_assert(sizeof traits / sizeof traits[0] == JOULE_DTYPE_COUNT, "one trait entry per dtype");
static_assert(JOULE_F32 == 1 && JOULE_F16 == 10 && JOULE_BF16 == 16 && JOULE_I4 == 22,
              "joule_dtype values follow onnx.TensorProto.DataType");
static_assert(sizeof(uint16_t) == 2 && sizeof(float) == 4 && sizeof(double) == 8,
              "storage sizes the traits assume");

bool joule_dtype_valid(int t)
{
    return t > JOULE_UNDEFINED && t < JOULE_DTYPE_COUNT;
}

const joule_dtype_traits *joule_dtype_info(joule_dtype t)
{
    return joule_dtype_valid((int)t) ? &traits[t] : &traits[JOULE_UNDEFINED];
}

const char *joule_dtype_name(joule_dtype t)
{
    return joule_dtype_info(t)->name;
}

size_t joule_dtype_bytes(joule_dtype t, size_t n)
{
    unsigned bits = joule_dtype_info(t)->bits;
    if (bits == 4)
        return (n + 1) / 2;
    return n * (bits / 8);
}

/* joule/dtype.h: element types. The enum values are ONNX's TensorProto.DataType numbers so they can
 * be stored and compared without translation. One traits table (formats/dtype.c) gives each type's
 * name, size and float32 conversions; it is indexed by this enum and pinned by static_assert. */
#ifndef JOULE_DTYPE_H
#define JOULE_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum joule_dtype {
    JOULE_UNDEFINED = 0,
    JOULE_F32 = 1,
    JOULE_U8 = 2,
    JOULE_I8 = 3,
    JOULE_U16 = 4,
    JOULE_I16 = 5,
    JOULE_I32 = 6,
    JOULE_I64 = 7,
    JOULE_STRING = 8,
    JOULE_BOOL = 9,
    JOULE_F16 = 10,
    JOULE_F64 = 11,
    JOULE_U32 = 12,
    JOULE_U64 = 13,
    JOULE_C64 = 14,
    JOULE_C128 = 15,
    JOULE_BF16 = 16,
    JOULE_F8E4M3FN = 17,
    JOULE_F8E4M3FNUZ = 18,
    JOULE_F8E5M2 = 19,
    JOULE_F8E5M2FNUZ = 20,
    JOULE_U4 = 21,
    JOULE_I4 = 22,
    JOULE_DTYPE_COUNT
} joule_dtype;

/* A string element (dtype JOULE_STRING): bytes, not necessarily NUL-terminated. */
typedef struct joule_string {
    size_t len;
    const char *ptr;
} joule_string;

typedef struct joule_dtype_traits {
    const char *name;      /* ONNX spelling: "float", "int8", "float16", ... */
    unsigned bits;         /* storage bits per element (4 for int4, 0 if not storable) */
    bool is_float;         /* floating-point (f16, bf16, f32, f64, fp8) */
    bool is_signed;        /* signed integer or float */
    bool is_integer;       /* integer type (bool excluded) */
    /* Read element i of src as float32 / write float32 v into element i of dst (NULL when the
     * type has no numeric value: string, complex, undefined). Float to integer rounds to
     * nearest-even and saturates; NaN becomes 0. */
    float (*to_f32)(const void *src, size_t i);
    void (*from_f32)(void *dst, size_t i, float v);
} joule_dtype_traits;

/* Traits of t; for an out-of-range value, the JOULE_UNDEFINED entry (bits 0, no converters). */
const joule_dtype_traits *joule_dtype_info(joule_dtype t);
/* Bytes for n elements of t (4-bit types round up); 0 for unstorable types. */
size_t joule_dtype_bytes(joule_dtype t, size_t n);
bool joule_dtype_valid(int t);
const char *joule_dtype_name(joule_dtype t);

/* IEEE half and bfloat16 conversions (round to nearest even). */
uint16_t joule_f32_to_f16(float f);
float joule_f16_to_f32(uint16_t h);
uint16_t joule_f32_to_bf16(float f);
float joule_bf16_to_f32(uint16_t b);

#ifdef __cplusplus
}
#endif
#endif

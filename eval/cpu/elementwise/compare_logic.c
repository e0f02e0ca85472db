/* eval/cpu/elementwise/compare_logic.c: comparisons to bool (Equal Less Greater LessOrEqual
 * GreaterOrEqual, every numeric type; Equal also bool) and boolean logic (Not And Or Xor), with
 * broadcasting. float16/bfloat16 compare as float32 (so -0 == +0 and nan != nan). Bool elements
 * are read as "non-zero" and written as 0 or 1. */
#include "ew.h"

#define CMP_FN(P, dt, sfx, T, U, OP)                                                               \
    EW_ROW P##_##sfx(EW_BIN_ARGS)                                                             \
    {                                                                                              \
        (void)p;                                                                                   \
        EW_ZIP(uint8_t, T, T, (uint8_t)(a OP b));                                                  \
    }
#define EQ_FN(P, dt, sfx, T, U) CMP_FN(P, dt, sfx, T, U, ==)
#define LT_FN(P, dt, sfx, T, U) CMP_FN(P, dt, sfx, T, U, <)
#define GT_FN(P, dt, sfx, T, U) CMP_FN(P, dt, sfx, T, U, >)
#define LE_FN(P, dt, sfx, T, U) CMP_FN(P, dt, sfx, T, U, <=)
#define GE_FN(P, dt, sfx, T, U) CMP_FN(P, dt, sfx, T, U, >=)

EW_NUMS(EQ_FN, equal)
EW_NUMS(LT_FN, less)
EW_NUMS(GT_FN, greater)
EW_NUMS(LE_FN, less_or_equal)
EW_NUMS(GE_FN, greater_or_equal)

EW_ROW equal_bool(EW_BIN_ARGS)
{
    (void)p;
    EW_ZIP(uint8_t, uint8_t, uint8_t, (uint8_t)((a != 0) == (b != 0)));
}

static const ew_spec equal_spec = {
    .name = "Equal", .bin = {EW_NUMS(EW_ENTRY, equal)[JOULE_BOOL] = equal_bool},
    .half_via_f32 = true, .bool_out = true};
static const ew_spec less_spec = {
    .name = "Less", .bin = {EW_NUMS(EW_ENTRY, less)}, .half_via_f32 = true, .bool_out = true};
static const ew_spec greater_spec = {
    .name = "Greater", .bin = {EW_NUMS(EW_ENTRY, greater)}, .half_via_f32 = true,
    .bool_out = true};
static const ew_spec less_or_equal_spec = {
    .name = "LessOrEqual", .bin = {EW_NUMS(EW_ENTRY, less_or_equal)}, .half_via_f32 = true,
    .bool_out = true};
static const ew_spec greater_or_equal_spec = {
    .name = "GreaterOrEqual", .bin = {EW_NUMS(EW_ENTRY, greater_or_equal)},
    .half_via_f32 = true, .bool_out = true};
EW_BINARY_KERNEL(equal, equal_spec)
EW_BINARY_KERNEL(less, less_spec)
EW_BINARY_KERNEL(greater, greater_spec)
EW_BINARY_KERNEL(less_or_equal, less_or_equal_spec)
EW_BINARY_KERNEL(greater_or_equal, greater_or_equal_spec)

/* ---- logic ---- */
EW_ROW not_bool(EW_UN_ARGS) { (void)p; EW_MAP(uint8_t, uint8_t, (uint8_t)(x == 0)); }
EW_ROW and_bool(EW_BIN_ARGS)
{
    (void)p;
    EW_ZIP(uint8_t, uint8_t, uint8_t, (uint8_t)((a != 0) & (b != 0)));
}
EW_ROW or_bool(EW_BIN_ARGS)
{
    (void)p;
    EW_ZIP(uint8_t, uint8_t, uint8_t, (uint8_t)((a != 0) | (b != 0)));
}
EW_ROW xor_bool(EW_BIN_ARGS)
{
    (void)p;
    EW_ZIP(uint8_t, uint8_t, uint8_t, (uint8_t)((a != 0) ^ (b != 0)));
}

static const ew_spec not_spec = {.name = "Not", .un = {[JOULE_BOOL] = not_bool}, .bool_out = true};
static const ew_spec and_spec = {.name = "And", .bin = {[JOULE_BOOL] = and_bool}, .bool_out = true};
static const ew_spec or_spec = {.name = "Or", .bin = {[JOULE_BOOL] = or_bool}, .bool_out = true};
static const ew_spec xor_spec = {.name = "Xor", .bin = {[JOULE_BOOL] = xor_bool}, .bool_out = true};
EW_UNARY_KERNEL(not, not_spec)
EW_BINARY_KERNEL(and, and_spec)
EW_BINARY_KERNEL(or, or_spec)
EW_BINARY_KERNEL(xor, xor_spec)

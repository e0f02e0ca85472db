/* eval/cpu/elementwise/ew.h: shared machinery of the elementwise kernel family (internal).
 *
 * Every op is a table of row functions indexed by dtype plus one of two runners:
 * - unary: out[i] = f(x[i]) over equal shapes, split across threads;
 * - binary: out = f(a, b) with NumPy broadcasting (eval/cpu/broadcast.h); a row function gets a
 *   run of n elements in one of three modes (both vectors, a scalar, b scalar);
 * float16 and bfloat16 run through the float32 row function in blocks of EW_BLOCK elements,
 * converted with the branch-free (vectorisable) converters below. Loops are marked EW_SIMD so
 * that -O2 builds vectorise them; they never assume that outputs and inputs do not overlap
 * elementwise (o == a is allowed), which lets Sum/Max/... accumulate in place. */
#ifndef JOULE_EW_H
#define JOULE_EW_H

/* GCC will not if-convert `c ? a : b` on floats followed by arithmetic while it must preserve FP
 * exception flags, so clamps and selects would keep loops scalar. Kernels never read the flags;
 * clang assumes this by default. Comes before any function so that all share the option. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "config.h"
#include "eval/cpu/broadcast.h"
#include "eval/kernel.h"
#include "joule/dtype.h"
#include "joule/graph.h"

/* GCC at -O2 vectorises only loops marked `omp simd` (needs -fopenmp or -fopenmp-simd). clang
 * vectorises at -O2 on its own, with alias checks, and warns (-Wpass-failed) on marked loops it
 * cannot vectorise (libm calls), so it gets no mark. */
#if HAVE_OPENMP && !defined(__clang__)
#define EW_SIMD _Pragma("omp simd")
#else
#define EW_SIMD
#endif

/* Row functions are compiled for baseline x86-64, AVX2+FMA (x86-64-v3) and AVX-512 (x86-64-v4);
 * the dynamic loader picks the best for the running CPU once (GCC target_clones through ifunc).
 * ISO C mode keeps FP contraction off, so every version gives bit-identical results. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12 && defined(__x86_64__) &&           \
    defined(__linux__)
#define EW_CLONES __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define EW_CLONES
#endif
#define EW_ROW static EW_CLONES void

/* Elements per float32 conversion block (stack buffers of this many floats). */
#define EW_BLOCK 512

/* Elements below which a kernel runs on one thread, for cheap ops (a few cycles per element);
 * costly ops (exp, erf, pow, ...) pass a smaller grain. */
#define EW_GRAIN_CHEAP 32768
#define EW_GRAIN_COSTLY 4096

/* ---- parameters a row function may read ---- */
typedef union ew_scalar {
    float f;
    double d;
    int64_t i;
    uint64_t u;
} ew_scalar;

typedef struct ew_par {
    float alpha, beta, gamma; /* LeakyRelu, Elu, Selu, HardSigmoid, Gelu(approximate) */
    ew_scalar lo, hi;         /* Clip bounds, in the row function's dtype family */
    int flag;                 /* op specific (Gelu: 1 = tanh approximation) */
    joule_dtype bdt;          /* Pow: dtype of the exponent as the row function sees it */
} ew_par;

/* ---- row functions ---- */
enum { EW_VV = 0, EW_SV = 1, EW_VS = 2 }; /* binary modes: SV = a is one scalar, VS = b is */

typedef void (*ew_un_fn)(void *o, const void *x, size_t n, const ew_par *p);
typedef void (*ew_bin_fn)(void *o, const void *a, const void *b, size_t n, int mode,
                          const ew_par *p);

#define EW_UN_ARGS void *o_, const void *x_, size_t n, const ew_par *p
#define EW_BIN_ARGS void *o_, const void *a_, const void *b_, size_t n, int mode, const ew_par *p

/* o[i] = EXPR(x) for i < n, x the input element (type TI) */
#define EW_MAP(TO, TI, EXPR)                                                                       \
    do {                                                                                           \
        TO *o = (TO *)o_;                                                                          \
        const TI *xs = (const TI *)x_;                                                             \
        EW_SIMD for (size_t i = 0; i < n; i++)                                                     \
        {                                                                                          \
            const TI x = xs[i];                                                                    \
            o[i] = (EXPR);                                                                         \
        }                                                                                          \
    } while (0)

/* o[i] = EXPR(a, b) in the three broadcast modes */
#define EW_ZIP(TO, TI, TB, EXPR)                                                                   \
    do {                                                                                           \
        TO *o = (TO *)o_;                                                                          \
        const TI *as = (const TI *)a_;                                                             \
        const TB *bs = (const TB *)b_;                                                             \
        if (mode == EW_SV) {                                                                       \
            const TI a = as[0];                                                                    \
            EW_SIMD for (size_t i = 0; i < n; i++)                                                 \
            {                                                                                      \
                const TB b = bs[i];                                                                \
                o[i] = (EXPR);                                                                     \
            }                                                                                      \
        } else if (mode == EW_VS) {                                                                \
            const TB b = bs[0];                                                                    \
            EW_SIMD for (size_t i = 0; i < n; i++)                                                 \
            {                                                                                      \
                const TI a = as[i];                                                                \
                o[i] = (EXPR);                                                                     \
            }                                                                                      \
        } else {                                                                                   \
            EW_SIMD for (size_t i = 0; i < n; i++)                                                 \
            {                                                                                      \
                const TI a = as[i];                                                                \
                const TB b = bs[i];                                                                \
                o[i] = (EXPR);                                                                     \
            }                                                                                      \
        }                                                                                          \
    } while (0)

/* X-macros over integer types: X(P, dtype, suffix, ctype, modular unsigned type), P passed
 * through (a function name prefix). Arithmetic that may overflow goes through the unsigned type,
 * which wraps like ONNX Runtime does, without undefined behaviour. */
#define EW_SINTS(X, P)                                                                             \
    X(P, JOULE_I8, i8, int8_t, unsigned)                                                           \
    X(P, JOULE_I16, i16, int16_t, unsigned)                                                        \
    X(P, JOULE_I32, i32, int32_t, uint32_t)                                                        \
    X(P, JOULE_I64, i64, int64_t, uint64_t)
#define EW_UINTS(X, P)                                                                             \
    X(P, JOULE_U8, u8, uint8_t, unsigned)                                                          \
    X(P, JOULE_U16, u16, uint16_t, unsigned)                                                       \
    X(P, JOULE_U32, u32, uint32_t, uint32_t)                                                       \
    X(P, JOULE_U64, u64, uint64_t, uint64_t)
#define EW_INTS(X, P) EW_SINTS(X, P) EW_UINTS(X, P)
/* float types with a C type */
#define EW_FLOATS(X, P) X(P, JOULE_F32, f32, float, float) X(P, JOULE_F64, f64, double, double)
#define EW_NUMS(X, P) EW_INTS(X, P) EW_FLOATS(X, P)

/* table entry [dtype] = P_suffix, for the types an X-macro lists */
#define EW_ENTRY(P, dt, sfx, T, U) [dt] = P##_##sfx,

/* ---- op descriptions ---- */
typedef struct ew_spec {
    const char *name;            /* "Add", for messages */
    ew_un_fn un[JOULE_DTYPE_COUNT];  /* unary ops: row function by input dtype */
    ew_bin_fn bin[JOULE_DTYPE_COUNT]; /* binary ops: row function by first input dtype */
    bool half_via_f32;           /* float16/bfloat16 run through the JOULE_F32 entry */
    bool bool_out;               /* output is bool whatever the input type (comparisons) */
    size_t grain;                /* elements per thread at least (0: EW_GRAIN_CHEAP) */
} ew_spec;

/* Whether the spec handles dtype t. */
bool ew_spec_has(const ew_spec *s, joule_dtype t);

/* Runs a unary spec over x into o (equal counts). */
joule_status ew_unary_apply(const ew_spec *s, const ew_par *p, const joule_view *x,
                            const joule_view *o, int threads, const joule_node *node,
                            joule_error *err);
/* Runs a binary spec over a, b into o with broadcasting (o may be a itself). */
joule_status ew_binary_apply(const ew_spec *s, const ew_par *p, const joule_view *a,
                             const joule_view *b, const joule_view *o, int threads,
                             const joule_node *node, joule_error *err);

/* The common kernel shapes: checks arity and dtypes, then applies. */
bool ew_unary_supports(const ew_spec *s, int n_in, const joule_view *const *in);
bool ew_binary_supports(const ew_spec *s, int n_in, const joule_view *const *in);
joule_status ew_unary_run(const ew_spec *s, const ew_par *p, const joule_kernel_ctx *c);
/* Binary with the opset < 7 `broadcast`/`axis` attributes honoured. */
joule_status ew_binary_run(const ew_spec *s, const ew_par *p, const joule_kernel_ctx *c);

/* Checks an output view: dtype and element count (and a buffer when not empty). */
joule_status ew_check_out(const joule_kernel_ctx *c, int i, joule_dtype dt, size_t count);
/* Same, and the output's dims must be exactly rank/dims. */
joule_status ew_check_out_shape(const joule_kernel_ctx *c, int i, joule_dtype dt, int rank,
                                const int64_t *dims);

/* Splits [0, n) into at most `threads` ranges of at least `grain` elements and calls fn on each
 * (in parallel with OpenMP). */
typedef void (*ew_range_fn)(void *arg, size_t lo, size_t hi);
void ew_parallel(int threads, size_t n, size_t grain, ew_range_fn fn, void *arg);

/* Whether dtype is float16 or bfloat16. */
static inline bool ew_is_half(joule_dtype t) { return t == JOULE_F16 || t == JOULE_BF16; }

/* Converts n elements of a float16/bfloat16 array to float32 and back (vectorised). */
void ew_half_to_f32(joule_dtype t, float *dst, const void *src, size_t n);
void ew_f32_to_half(joule_dtype t, void *dst, const float *src, size_t n);

/* Element i of a numeric view as double / int64 (for scalar attributes given as tensors). */
double ew_get_f64(joule_dtype t, const void *data, size_t i);

/* ---- bit-exact, branch-free float16 / bfloat16 conversions (round to nearest even) ---- */
static inline uint32_t ew_f2u(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static inline float ew_u2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline float ew_h2f(uint16_t h)
{
    uint32_t o = (uint32_t)(h & 0x7fffu) << 13;
    uint32_t exp = o & 0x0f800000u;
    o += (uint32_t)(127 - 15) << 23;
    float sub = ew_u2f(o + (1u << 23)) - ew_u2f(113u << 23); /* exact subnormal value */
    o = exp == 0x0f800000u ? o + ((uint32_t)(128 - 16) << 23) : o; /* inf / nan */
    o = exp == 0 ? ew_f2u(sub) : o;
    return ew_u2f(o | ((uint32_t)(h & 0x8000u) << 16));
}

static inline uint16_t ew_f2h(float f)
{
    uint32_t u = ew_f2u(f);
    uint32_t sign = (u >> 16) & 0x8000u;
    u &= 0x7fffffffu;
    /* subnormal results: let the FPU round by adding a magic number */
    const float magic = ew_u2f((uint32_t)((127 - 15) + (23 - 10) + 1) << 23);
    uint32_t sub = ew_f2u(ew_u2f(u) + magic) - ew_f2u(magic);
    /* normal results: rebias, round half to even */
    uint32_t norm = (u + ((uint32_t)(15 - 127) << 23) + 0xfffu + ((u >> 13) & 1u)) >> 13;
    uint32_t big = u > 0x7f800000u ? 0x7e00u : 0x7c00u; /* nan stays nan, else inf */
    uint32_t h = u >= ((uint32_t)(127 + 16) << 23) ? big : u < (113u << 23) ? sub : norm;
    return (uint16_t)(h | sign);
}

static inline float ew_b2f(uint16_t b) { return ew_u2f((uint32_t)b << 16); }

static inline uint16_t ew_f2b(float f)
{
    uint32_t u = ew_f2u(f);
    uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? (u >> 16) | 0x40u : r);
}

/* ---- the kernels of the family: X(OpType, name, prepare or NULL) ---- */
#define EW_KERNELS(X)                                                                              \
    X(Add, add, NULL)                                                                              \
    X(Sub, sub, NULL)                                                                              \
    X(Mul, mul, NULL)                                                                              \
    X(Div, div, NULL)                                                                              \
    X(Pow, pow, NULL)                                                                              \
    X(Sqrt, sqrt, NULL)                                                                            \
    X(Exp, exp, NULL)                                                                              \
    X(Log, log, NULL)                                                                              \
    X(Neg, neg, NULL)                                                                              \
    X(Abs, abs, NULL)                                                                              \
    X(Reciprocal, reciprocal, NULL)                                                                \
    X(Floor, floor, NULL)                                                                          \
    X(Ceil, ceil, NULL)                                                                            \
    X(Round, round, NULL)                                                                          \
    X(Sign, sign, NULL)                                                                            \
    X(Erf, erf, NULL)                                                                              \
    X(Tanh, tanh, NULL)                                                                            \
    X(Sigmoid, sigmoid, NULL)                                                                      \
    X(Sin, sin, NULL)                                                                              \
    X(Cos, cos, NULL)                                                                              \
    X(Relu, relu, NULL)                                                                            \
    X(LeakyRelu, leaky_relu, NULL)                                                                 \
    X(PRelu, prelu, NULL)                                                                          \
    X(Elu, elu, NULL)                                                                              \
    X(Selu, selu, NULL)                                                                            \
    X(Softplus, softplus, NULL)                                                                    \
    X(HardSigmoid, hard_sigmoid, NULL)                                                             \
    X(HardSwish, hard_swish, NULL)                                                                 \
    X(Gelu, gelu, NULL)                                                                            \
    X(Clip, clip, NULL)                                                                            \
    X(Min, min, NULL)                                                                              \
    X(Max, max, NULL)                                                                              \
    X(Sum, sum, ew_sum_prepare)                                                                    \
    X(Mean, mean, ew_mean_prepare)                                                                 \
    X(Where, where, NULL)                                                                          \
    X(Equal, equal, NULL)                                                                          \
    X(Less, less, NULL)                                                                            \
    X(Greater, greater, NULL)                                                                      \
    X(LessOrEqual, less_or_equal, NULL)                                                            \
    X(GreaterOrEqual, greater_or_equal, NULL)                                                      \
    X(Not, not, NULL)                                                                              \
    X(And, and, NULL)                                                                              \
    X(Or, or, NULL)                                                                                \
    X(Xor, xor, NULL)                                                                              \
    X(Cast, cast, NULL)                                                                            \
    X(CastLike, cast_like, NULL)                                                                   \
    X(Mod, mod, NULL)                                                                              \
    X(BitShift, bit_shift, NULL)                                                                   \
    X(Tan, tan, NULL)                                                                              \
    X(Asin, asin, NULL)                                                                            \
    X(Acos, acos, NULL)                                                                            \
    X(Atan, atan, NULL)                                                                            \
    X(Sinh, sinh, NULL)                                                                            \
    X(Cosh, cosh, NULL)                                                                            \
    X(Asinh, asinh, NULL)                                                                          \
    X(Acosh, acosh, NULL)                                                                          \
    X(Atanh, atanh, NULL)                                                                          \
    X(IsNaN, is_nan, NULL)                                                                         \
    X(IsInf, is_inf, NULL)                                                                         \
    X(Softsign, softsign, NULL)                                                                    \
    X(ThresholdedRelu, thresholded_relu, NULL)                                                     \
    X(Shrink, shrink, NULL)                                                                        \
    X(Celu, celu, NULL)

#define EW_DECLARE(Op, op, prep)                                                                   \
    bool ew_##op##_supports(const joule_node *node, int64_t opset, int n_in,                       \
                            const joule_view *const *in);                                          \
    joule_status ew_##op##_run(const joule_kernel_ctx *c);
EW_KERNELS(EW_DECLARE)
joule_status ew_sum_prepare(const joule_kernel_ctx *c, void **state, size_t *scratch_bytes);
joule_status ew_mean_prepare(const joule_kernel_ctx *c, void **state, size_t *scratch_bytes);

/* Defines ew_<op>_supports/_run for an op that is one unary or binary spec without attributes. */
#define EW_UNARY_KERNEL(op, spec)                                                                  \
    bool ew_##op##_supports(const joule_node *node, int64_t opset, int n_in,                       \
                            const joule_view *const *in)                                           \
    {                                                                                              \
        (void)node;                                                                                \
        (void)opset;                                                                               \
        return ew_unary_supports(&(spec), n_in, in);                                               \
    }                                                                                              \
    joule_status ew_##op##_run(const joule_kernel_ctx *c) { return ew_unary_run(&(spec), NULL, c); }
#define EW_BINARY_KERNEL(op, spec)                                                                 \
    bool ew_##op##_supports(const joule_node *node, int64_t opset, int n_in,                       \
                            const joule_view *const *in)                                           \
    {                                                                                              \
        (void)node;                                                                                \
        (void)opset;                                                                               \
        return ew_binary_supports(&(spec), n_in, in);                                              \
    }                                                                                              \
    joule_status ew_##op##_run(const joule_kernel_ctx *c) { return ew_binary_run(&(spec), NULL, c); }

/* Name of a node for messages: its name, else its op type. */
const char *ew_who(const joule_node *node);

#endif

/* eval/cpu/pool_norm/pool_norm.h: helpers shared by the pooling, normalization, softmax and
 * reduction kernels. Kernels compute natively in float and double (and int32/int64 where the op
 * allows it); float16, bfloat16, int8 and uint8 tensors go through "shadow" float32 copies kept
 * in the per-run scratch: inputs are widened before the native kernel runs, outputs narrowed
 * after. Internal to this folder. */
#ifndef JOULE_CPU_POOL_NORM_H
#define JOULE_CPU_POOL_NORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "eval/kernel.h"

/* Most inputs/outputs any kernel of this family has (BatchNormalization: 5 in, 5 out). */
#define PN_MAX_IO 8

/* Work (elements touched) below which a kernel stays on one thread. */
#define PN_PAR_MIN_WORK 32768

/* Node name for error messages (never NULL). */
const char *pn_name(const joule_node *node);

/* dtypes computed through a float32 shadow copy. */
bool pn_shadowed(joule_dtype t);
/* float, double, or one of the shadowed ones. */
bool pn_floatlike(joule_dtype t);

/* Bytes of scratch the float32 shadows of ctx's inputs and outputs take (64-byte aligned
 * pieces); JOULE_ERR_NOMEM when the size overflows. Inputs whose index bit is set in
 * skip_inputs are not shadowed (e.g. an int64 axes input). */
joule_status pn_shadow_bytes(const joule_kernel_ctx *ctx, unsigned skip_inputs, size_t *bytes);

/* prepare() for kernels that need only the shadows plus extra bytes of their own scratch. */
joule_status pn_prepare_shadows(const joule_kernel_ctx *ctx, size_t extra, size_t *scratch_bytes);

/* Native kernel run on a ctx whose shadowed tensors have become float32. Its scratch is what
 * follows the shadows. */
typedef joule_status (*pn_native_fn)(const joule_kernel_ctx *ctx);

/* Runs native directly when no input or output needs a shadow; otherwise widens the inputs
 * into scratch, runs native on float32 views, and narrows the outputs back. */
joule_status pn_run_shadowed(const joule_kernel_ctx *ctx, unsigned skip_inputs,
                             pn_native_fn native);

/* Axis in [-rank, rank) made non-negative; false when out of range. */
bool pn_axis(int64_t axis, int rank, int *out);

/* Product of dims[from..to), no overflow check (dims come from an allocated tensor). */
size_t pn_prod(const int64_t *dims, int from, int to);

/* Element i of a numeric tensor as double (float types, integers; 0 for others). */
double pn_load(joule_dtype t, const void *data, size_t i);

/* JOULE_OK when v has exactly rank and dims, else an error naming node. */
joule_status pn_check_out(const joule_kernel_ctx *ctx, int index, int rank, const int64_t *dims);

/* Integer list attribute: fills v (up to max) and *n; false when present but not INTS or too
 * long. Absent: *n = 0. */
bool pn_attr_ints(const joule_node *node, const char *name, int64_t *v, int max, int *n);

/* Parallel for over the loop that follows, on `nt` threads (a variable in scope) when nt > 1. */
#if HAVE_OPENMP
#define PN_OMP_FOR _Pragma("omp parallel for num_threads(nt) schedule(static) if (nt > 1)")
#else
#define PN_OMP_FOR
#endif

/* Vectorization hints for the loop that follows (OpenMP simd; nothing without OpenMP). The
 * reduction forms fix a summation order that depends only on the loop, never on threads. */
#define PN_PRAGMA(x) _Pragma(#x)
#if HAVE_OPENMP
#define PN_SIMD PN_PRAGMA(omp simd)
#define PN_SIMD_SUM(v) PN_PRAGMA(omp simd reduction(+ : v))
#define PN_SIMD_SUM2(v, w) PN_PRAGMA(omp simd reduction(+ : v, w))
#define PN_SIMD_MAX(v) PN_PRAGMA(omp simd reduction(max : v))
#define PN_SIMD_MIN(v) PN_PRAGMA(omp simd reduction(min : v))
#else
#define PN_SIMD
#define PN_SIMD_SUM(v)
#define PN_SIMD_SUM2(v, w)
#define PN_SIMD_MAX(v)
#define PN_SIMD_MIN(v)
#endif

/* exp for float that vectorizes: Cody-Waite reduction and the Cephes polynomial (about 1 ulp
 * from expf over [-87, 88]); below -87.3 it returns 0 (no subnormals), above 88 it saturates at
 * exp(88) instead of going to inf; NaN stays NaN. The clamps compare and select on the bits:
 * float compares and selects would keep GCC (with -ftrapping-math) from vectorizing the loop. */
static inline float pn_expf(float x)
{
    union { float f; uint32_t u; } v, c, t, sc;
    v.f = x;
    /* an integer key ordered like the floats (NaN aside) */
    const int32_t key = (int32_t)(v.u ^ ((0u - (v.u >> 31)) & 0x7fffffffu));
    const int32_t klo = (int32_t)(0xC2AEAC50u ^ 0x7fffffffu); /* -87.3365479f */
    const int32_t khi = 0x42B00000;                          /* 88.0f */
    const int nan = (v.u & 0x7fffffffu) > 0x7f800000u;
    const uint32_t mu = 0u - (uint32_t)(key < klo && !nan), mo = 0u - (uint32_t)(key > khi && !nan);
    c.u = (v.u & ~(mu | mo)) | (0xC2AEAC50u & mu) | (0x42B00000u & mo);
    const float xc = c.f;
    /* n = round(x / ln2) with the 1.5 * 2^23 trick: no float-to-int conversion */
    t.f = xc * 1.44269504f + 12582912.0f;
    const float n = t.f - 12582912.0f;
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    sc.u = ((t.u - 0x4B400000u + 127u) << 23) & ~mu; /* 2^n, or 0 below the range */
    return p * sc.f;
}

/* Whether HAVE_OPENMP is set and work is large enough to split across ctx->threads. */
static inline int pn_threads(const joule_kernel_ctx *ctx, size_t work)
{
#if HAVE_OPENMP
    return (ctx->threads > 1 && work >= PN_PAR_MIN_WORK) ? ctx->threads : 1;
#else
    (void)ctx;
    (void)work;
    return 1;
#endif
}

/* Entry points of each file, listed in joule_cpu_kernels_pool_norm (registry.c). */
typedef bool pn_supports_fn(const joule_node *node, int64_t opset, int n_in,
                            const joule_view *const *in);
typedef joule_status pn_prepare_fn(const joule_kernel_ctx *ctx, void **state, size_t *scratch);
typedef joule_status pn_run_fn(const joule_kernel_ctx *ctx);
typedef void pn_destroy_fn(void *state);

/* pool.c */
pn_supports_fn pn_maxpool_supports, pn_avgpool_supports;
pn_prepare_fn pn_pool_prepare;
pn_run_fn pn_maxpool_run, pn_avgpool_run;
/* global_pool.c */
pn_supports_fn pn_global_pool_supports;
pn_prepare_fn pn_global_pool_prepare;
pn_run_fn pn_global_avgpool_run, pn_global_maxpool_run;
/* batchnorm.c */
pn_supports_fn pn_batchnorm_supports;
pn_prepare_fn pn_batchnorm_prepare;
pn_run_fn pn_batchnorm_run;
pn_destroy_fn pn_batchnorm_destroy;
/* layernorm.c */
pn_supports_fn pn_layernorm_supports, pn_instancenorm_supports;
pn_prepare_fn pn_layernorm_prepare, pn_instancenorm_prepare;
pn_run_fn pn_layernorm_run, pn_instancenorm_run;
pn_destroy_fn pn_norm_destroy;
/* softmax.c */
pn_supports_fn pn_softmax_supports;
pn_prepare_fn pn_softmax_prepare;
pn_run_fn pn_softmax_run, pn_logsoftmax_run;
/* reduce.c */
pn_supports_fn pn_reduce_supports;
pn_prepare_fn pn_reduce_prepare;
pn_run_fn pn_reduce_run;
/* argmax.c */
pn_supports_fn pn_argmax_supports;
pn_prepare_fn pn_argmax_prepare;
pn_run_fn pn_argmax_run;

#endif

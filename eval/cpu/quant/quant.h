/* eval/cpu/quant/quant.h: what the quantized kernels share: reading scales and zero points,
 * the rounding/saturation formulas (one inline definition, so fast and reference kernels round
 * identically), MatMul/Conv shape parsing, the output stage that turns int32 sums into int32 or
 * requantized uint8/int8, and the kernel functions the two tables (tables.c) list. Internal. */
#ifndef JOULE_CPU_QUANT_H
#define JOULE_CPU_QUANT_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "eval/cpu/quant/qgemm.h"
#include "eval/kernel.h"
#include "joule/dtype.h"
#include "joule/graph.h"
#include "joule/status.h"

/* Dims and attribute values beyond this are refused, so products of two fit in int64. */
#define JOULE_Q_LIMIT ((int64_t)INT32_MAX)

const char *joule_q_name(const joule_node *node);

static inline bool joule_q_is_int8(joule_dtype t)
{
    return t == JOULE_U8 || t == JOULE_I8;
}

static inline bool joule_q_is_scale_type(joule_dtype t)
{
    return t == JOULE_F32 || t == JOULE_F16 || t == JOULE_BF16;
}

/* Element i of a scale tensor (float32, float16 or bfloat16) as float32. */
static inline float joule_q_scale_at(const joule_view *v, size_t i)
{
    switch (v->dtype) {
    case JOULE_F16:
        return joule_f16_to_f32(((const uint16_t *)v->data)[i]);
    case JOULE_BF16:
        return joule_bf16_to_f32(((const uint16_t *)v->data)[i]);
    default:
        return ((const float *)v->data)[i];
    }
}

/* Element i of a uint8, int8 or int32 tensor (NULL view: 0). */
static inline int32_t joule_q_int_at(const joule_view *v, size_t i)
{
    if (!v)
        return 0;
    switch (v->dtype) {
    case JOULE_U8:
        return ((const uint8_t *)v->data)[i];
    case JOULE_I8:
        return ((const int8_t *)v->data)[i];
    case JOULE_I32:
        return ((const int32_t *)v->data)[i];
    default:
        return 0;
    }
}

/* Saturation bounds of an 8-bit type. */
static inline void joule_q_range(joule_dtype t, int32_t *lo, int32_t *hi)
{
    *lo = t == JOULE_I8 ? -128 : 0;
    *hi = t == JOULE_I8 ? 127 : 255;
}

/* saturate(round_half_even(v) + zp) as ONNX writes it, computed in float: rintf rounds half to
 * even in the default rounding mode; a NaN lands on lo, so no NaN or out-of-range float ever
 * reaches the integer conversion. (Comparisons, not fmaxf/fminf, which gcc leaves as calls.) */
static inline int32_t joule_q_round_sat(float v, int32_t zp, int32_t lo, int32_t hi)
{
    float r = rintf(v) + (float)zp;
    r = r >= (float)lo ? r : (float)lo; /* false for NaN: lo */
    r = r <= (float)hi ? r : (float)hi;
    return (int32_t)r;
}

/* QuantizeLinear of one value: saturate(round(x / scale) + zp). Division, not a reciprocal
 * multiply, as the spec and ONNX Runtime do. */
static inline int32_t joule_q_quantize(float x, float scale, int32_t zp, int32_t lo, int32_t hi)
{
    return joule_q_round_sat(x / scale, zp, lo, hi);
}

/* Requantization multiplier of an integer product: a_scale * b_scale / y_scale. */
static inline float joule_q_mult(float a_scale, float b_scale, float y_scale)
{
    return a_scale * b_scale / y_scale;
}

/* int32 accumulator (+ int32 bias, wrapping) to the output type. */
static inline int32_t joule_q_requant(int32_t acc, float mult, float fbias, int32_t zp,
                                      int32_t lo, int32_t hi)
{
    float v = (float)acc * mult;
    v = v + fbias;
    return joule_q_round_sat(v, zp, lo, hi);
}

static inline int32_t joule_q_wrap_add(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

static inline void joule_q_store(joule_dtype t, void *y, size_t i, int32_t v)
{
    switch (t) {
    case JOULE_U8:
        ((uint8_t *)y)[i] = (uint8_t)v;
        break;
    case JOULE_I8:
        ((int8_t *)y)[i] = (int8_t)v;
        break;
    default:
        ((int32_t *)y)[i] = v;
        break;
    }
}

/* Per-tensor or per-axis parameters: a scalar or 1-element tensor is per tensor; a 1-D tensor of
 * dims[axis] elements is per axis. *per_axis tells which; false return = neither. */
bool joule_q_param_shape(const joule_view *param, const joule_view *x, int64_t axis,
                         bool *per_axis);
/* Normalizes an axis attribute against rank; false when out of range. */
bool joule_q_axis(int64_t axis, int rank, int *out);

/* ---- output stage ---- */

/* What to do with int32 sums of one product, per output column n (column = output channel):
 * int32 out: y = acc (+ ibias[n], wrapping); 8-bit out: y = requant(acc + ibias[n], mult[n],
 * fbias[n]). Arrays are indexed from col0 + column and may be NULL (no bias). */
typedef struct joule_q_emit {
    joule_dtype dtype;    /* JOULE_I32, JOULE_U8 or JOULE_I8 */
    const int32_t *ibias;
    const float *mult;    /* 8-bit outputs only */
    const float *fbias;
    int32_t zp, lo, hi;   /* 8-bit outputs only */
} joule_q_emit;

/* Writes rows x cols sums acc (row stride acc_ld) to y: element (r, c) goes to
 * y[r * y_row + c * y_col] (in elements of e->dtype). Columns map to parameters col0 + c. */
void joule_q_emit_block(const joule_q_emit *e, const int32_t *acc, int64_t acc_ld, int64_t rows,
                        int64_t cols, int64_t col0, void *y, int64_t y_row, int64_t y_col);

/* ---- MatMul shapes (numpy semantics, batch dims broadcast) ---- */

typedef struct joule_q_matmul {
    int64_t m, n, k;
    int64_t batches;
    int batch_rank;
    int64_t batch_dims[JOULE_MAX_RANK];
    int64_t a_bstride[JOULE_MAX_RANK], b_bstride[JOULE_MAX_RANK]; /* in matrices; 0 = broadcast */
    int64_t a_batches, b_batches;
} joule_q_matmul;

joule_status joule_q_matmul_init(const joule_node *node, const joule_view *a,
                                 const joule_view *b, joule_q_matmul *p, joule_error *err);
void joule_q_matmul_batch(const joule_q_matmul *p, int64_t i, int64_t *a_mat, int64_t *b_mat);

/* ---- Conv shapes: 1D and 2D, normalized to 2D (a 1D conv has height 1) ---- */

typedef struct joule_q_conv {
    int nsp;               /* 1 or 2 */
    int64_t batch, c_in, c_out, group;
    int64_t in_h, in_w, out_h, out_w, k_h, k_w;
    int64_t stride_h, stride_w, dil_h, dil_w, pad_t, pad_l;
    int64_t cg, mg;        /* input and output channels per group */
    int64_t kdim;          /* cg * k_h * k_w: the reduction length */
    int64_t out_size;      /* out_h * out_w */
} joule_q_conv;

/* Parses Conv attributes (auto_pad, dilations, group, kernel_shape, pads, strides) against x and
 * w. JOULE_ERR_UNSUPPORTED for ranks other than 3 and 4. */
joule_status joule_q_conv_init(const joule_node *node, const joule_view *x, const joule_view *w,
                               joule_q_conv *p, joule_error *err);
/* Whether the node's conv attributes are ones joule_q_conv_init accepts for these ranks. */
bool joule_q_conv_supported(const joule_node *node, const joule_view *x, const joule_view *w);
void joule_q_conv_out_dims(const joule_q_conv *p, int64_t *dims);

/* Carves 64-byte aligned pieces from one scratch block; base NULL measures. */
typedef struct joule_q_carver {
    unsigned char *base;
    size_t used;
    bool overflow;
} joule_q_carver;

void *joule_q_take(joule_q_carver *c, size_t count, size_t elem);

/* a * b into *out; false on overflow. */
static inline bool joule_q_mul(size_t a, size_t b, size_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

/* ---- integer conv engine shared by ConvInteger, QLinearConv and the QDQ conv ---- */

typedef struct joule_q_conv_state {
    joule_q_conv p;
    bool x_signed, w_signed;
    joule_qgemm_packed **wpack; /* per group; NULL entries when W is not constant at prepare */
    bool depthwise;             /* cg == 1 && mg == 1: direct loops instead of a GEMM */
    int64_t ptile;              /* output pixels per im2col chunk */
    int threads;                /* what the scratch was sized for */
    size_t scratch_bytes;
} joule_q_conv_state;

/* Plans (and packs W when w->data is set; w_zp per tensor or per output channel, may be NULL).
 * The run needs state->scratch_bytes of scratch. */
joule_status joule_q_conv_plan(const joule_node *node, const joule_view *x, const joule_view *w,
                               const joule_view *w_zp, int threads, joule_q_conv_state **out,
                               joule_error *err);
void joule_q_conv_free(void *state);
/* Runs the conv into y (x_zp per tensor; w_zp as at plan time) with the output stage e. */
joule_status joule_q_conv_run(const joule_q_conv_state *s, const joule_node *node,
                              const joule_view *x, const joule_view *x_zp, const joule_view *w,
                              const joule_view *w_zp, const joule_q_emit *e, void *y,
                              void *scratch, joule_error *err);

/* Reference conv: int32 sums straight from the definition (padding contributes nothing). */
void joule_q_conv_ref_acc(const joule_q_conv *p, const joule_view *x, int32_t x_zp,
                          const joule_view *w, const joule_view *w_zp, int64_t n, int64_t oc,
                          int32_t *acc);

/* ---- kernel functions (quantize.c, qmatmul.c, qconv.c) ---- */
#define JOULE_Q_KERNEL_FNS(name)                                                                   \
    bool joule_q_##name##_supports(const joule_node *node, int64_t opset, int n_in,                \
                                   const joule_view *const *in);                                   \
    joule_status joule_q_##name##_run(const joule_kernel_ctx *ctx);                                \
    joule_status joule_q_##name##_run_ref(const joule_kernel_ctx *ctx);

JOULE_Q_KERNEL_FNS(quantize)
JOULE_Q_KERNEL_FNS(dequantize)
JOULE_Q_KERNEL_FNS(dynamic_quantize)
JOULE_Q_KERNEL_FNS(matmul_integer)
JOULE_Q_KERNEL_FNS(qlinear_matmul)
JOULE_Q_KERNEL_FNS(conv_integer)
JOULE_Q_KERNEL_FNS(qlinear_conv)

joule_status joule_q_matmul_integer_prepare(const joule_kernel_ctx *ctx, void **state,
                                            size_t *scratch_bytes);
joule_status joule_q_qlinear_matmul_prepare(const joule_kernel_ctx *ctx, void **state,
                                            size_t *scratch_bytes);
void joule_q_matmul_destroy(void *state);
joule_status joule_q_conv_integer_prepare(const joule_kernel_ctx *ctx, void **state,
                                          size_t *scratch_bytes);
joule_status joule_q_qlinear_conv_prepare(const joule_kernel_ctx *ctx, void **state,
                                          size_t *scratch_bytes);

#endif

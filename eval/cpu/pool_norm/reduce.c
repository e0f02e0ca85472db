/* eval/cpu/pool_norm/reduce.c: ReduceSum, ReduceMean, ReduceMax, ReduceMin. Axes come from the
 * attribute (older opsets) or the optional second input (ReduceSum from opset 13, the others
 * from 18); keepdims; noop_with_empty_axes; no axes means all axes. Reduced and kept axes are
 * merged into runs; one reduced run is the fast [outer][n][inner] case, anything else takes a
 * general walk. float and double natively (sums in double), int32/int64 for Sum/Max/Min (sums
 * wrap), float16/bfloat16 (and int8/uint8 for Max/Min) through float32. */
#include <math.h>
#include <string.h>

#include "eval/cpu/pool_norm/pool_norm.h"

#define PN_RED_BLOCK 64

enum { PN_RED_SUM, PN_RED_MEAN, PN_RED_MAX, PN_RED_MIN };

#define T float
#define SUF f32
#define ACC double
#define ADD(a, v) ((a) + (double)(v))
#define FROM_ACC(a) ((float)(a))
#define T_LOWEST (-INFINITY)
#define T_HIGHEST INFINITY
#define T_EMPTY_MEAN ((float)NAN)
#include "eval/cpu/pool_norm/reduce_tmpl.h"
#undef T
#undef SUF
#undef FROM_ACC
#undef T_EMPTY_MEAN
#define T double
#define SUF f64
#define FROM_ACC(a) (a)
#define T_EMPTY_MEAN ((double)NAN)
#include "eval/cpu/pool_norm/reduce_tmpl.h"
#undef T
#undef SUF
#undef ACC
#undef ADD
#undef FROM_ACC
#undef T_LOWEST
#undef T_HIGHEST
#undef T_EMPTY_MEAN
/* integers: sums wrap around in two's complement (unsigned arithmetic, no overflow UB) */
#define ACC uint64_t
#define ADD(a, v) ((a) + (uint64_t)(int64_t)(v))
#define T_EMPTY_MEAN 0
#define T int32_t
#define SUF i32
#define FROM_ACC(a) ((int32_t)(uint32_t)(a))
#define T_LOWEST INT32_MIN
#define T_HIGHEST INT32_MAX
#include "eval/cpu/pool_norm/reduce_tmpl.h"
#undef T
#undef SUF
#undef FROM_ACC
#undef T_LOWEST
#undef T_HIGHEST
#define T int64_t
#define SUF i64
#define FROM_ACC(a) ((int64_t)(a))
#define T_LOWEST INT64_MIN
#define T_HIGHEST INT64_MAX
#include "eval/cpu/pool_norm/reduce_tmpl.h"
#undef T
#undef SUF
#undef FROM_ACC
#undef T_LOWEST
#undef T_HIGHEST
#undef ACC
#undef ADD
#undef T_EMPTY_MEAN

static int red_op(const char *op_type)
{
    if (strcmp(op_type, "ReduceSum") == 0)
        return PN_RED_SUM;
    if (strcmp(op_type, "ReduceMean") == 0)
        return PN_RED_MEAN;
    if (strcmp(op_type, "ReduceMax") == 0)
        return PN_RED_MAX;
    if (strcmp(op_type, "ReduceMin") == 0)
        return PN_RED_MIN;
    return -1;
}

/* Which axes of x are reduced. *noop when the op is the identity (empty axes with
 * noop_with_empty_axes). Returns false with *why when axes are malformed. axes_in may be NULL
 * or lack data (then *known is false and red is unset). */
static bool red_axes(const joule_node *node, const joule_view *x, const joule_view *axes_in,
                     bool red[JOULE_MAX_RANK], bool *noop, bool *known, const char **why)
{
    *noop = false;
    *known = true;
    int64_t ax[JOULE_MAX_RANK];
    int n = 0;
    if (axes_in) {
        if (axes_in->dtype != JOULE_I64 || axes_in->rank > 1) {
            *why = "axes input must be a 1-D int64 tensor";
            return false;
        }
        if (axes_in->count > JOULE_MAX_RANK) {
            *why = "too many axes";
            return false;
        }
        if (!axes_in->data) {
            *known = false;
            return true;
        }
        n = (int)axes_in->count;
        if (n)
            memcpy(ax, axes_in->data, (size_t)n * sizeof *ax);
    } else if (!pn_attr_ints(node, "axes", ax, JOULE_MAX_RANK, &n)) {
        *why = "axes attribute is not a short list of ints";
        return false;
    }
    for (int i = 0; i < x->rank; i++)
        red[i] = n == 0;
    if (n == 0 && joule_attr_int(node, "noop_with_empty_axes", 0)) {
        *noop = true;
        for (int i = 0; i < x->rank; i++)
            red[i] = false;
        return true;
    }
    for (int i = 0; i < n; i++) {
        int a;
        if (!pn_axis(ax[i], x->rank, &a) || red[a]) {
            *why = "axis out of range or repeated";
            return false;
        }
        red[a] = true;
    }
    return true;
}

bool pn_reduce_supports(const joule_node *node, int64_t opset, int n_in,
                        const joule_view *const *in)
{
    (void)opset;
    const int op = red_op(node->op_type);
    if (op < 0 || n_in < 1 || n_in > 2 || !in[0] || node->n_outputs != 1)
        return false;
    const joule_dtype t = in[0]->dtype;
    bool ok = t == JOULE_F32 || t == JOULE_F64 || t == JOULE_F16 || t == JOULE_BF16;
    if (op != PN_RED_MEAN)
        ok = ok || t == JOULE_I32 || t == JOULE_I64;
    if (op == PN_RED_MAX || op == PN_RED_MIN)
        ok = ok || t == JOULE_I8 || t == JOULE_U8;
    if (!ok)
        return false;
    const int64_t kd = joule_attr_int(node, "keepdims", 1);
    const int64_t noop = joule_attr_int(node, "noop_with_empty_axes", 0);
    if ((kd != 0 && kd != 1) || (noop != 0 && noop != 1))
        return false;
    bool red[JOULE_MAX_RANK], is_noop, known;
    const char *why;
    return red_axes(node, in[0], n_in > 1 ? in[1] : NULL, red, &is_noop, &known, &why);
}

joule_status pn_reduce_prepare(const joule_kernel_ctx *ctx, void **state, size_t *scratch_bytes)
{
    *state = NULL;
    /* accumulators for the general walk: one 8-byte value per output element */
    const size_t n = ctx->out[0]->count;
    if (n > SIZE_MAX / 8)
        return joule_fail(ctx->err, JOULE_ERR_NOMEM, "%s (%s): output too large",
                          pn_name(ctx->node), ctx->node->op_type);
    return pn_prepare_shadows(ctx, n * 8, scratch_bytes);
}

#define DISPATCH(call)                                                                            \
    do {                                                                                          \
        switch (x->dtype) {                                                                       \
        case JOULE_F32: call(f32); break;                                  \
        case JOULE_F64: call(f64); break;                                 \
        case JOULE_I32: call(i32); break;                                \
        case JOULE_I64: call(i64); break;                                \
        default:                                                                                  \
            return joule_fail(ctx->err, JOULE_ERR_UNSUPPORTED, "%s (%s): dtype %s not supported", \
                              pn_name(ctx->node), ctx->node->op_type,                             \
                              joule_dtype_name(x->dtype));                                        \
        }                                                                                         \
    } while (0)

static joule_status reduce_native(const joule_kernel_ctx *ctx)
{
    const joule_view *x = ctx->in[0];
    const int op = red_op(ctx->node->op_type);
    bool red[JOULE_MAX_RANK], noop = false, known = true;
    const char *why = "";
    if (op < 0 || !red_axes(ctx->node, x, ctx->n_in > 1 ? ctx->in[1] : NULL, red, &noop, &known,
                            &why) || !known)
        return joule_fail(ctx->err, JOULE_ERR_INVALID, "%s (%s): %s", pn_name(ctx->node),
                          ctx->node->op_type, known ? why : "axes input has no data");
    const bool keep = joule_attr_int(ctx->node, "keepdims", 1) != 0;
    int64_t od[JOULE_MAX_RANK];
    int orank = 0;
    for (int i = 0; i < x->rank; i++) {
        if (!red[i])
            od[orank++] = x->dims[i];
        else if (keep)
            od[orank++] = 1;
    }
    joule_status st = pn_check_out(ctx, 0, orank, od);
    if (st)
        return st;
    joule_view *y = ctx->out[0];
    if (noop) {
        if (x->data != y->data)
            memcpy(y->data, x->data, joule_dtype_bytes(x->dtype, x->count));
        return JOULE_OK;
    }
    if (x->count == 0) {
#define CALL_EMPTY(s) reduce_empty_##s(y->data, y->count, op)
        DISPATCH(CALL_EMPTY);
        return JOULE_OK;
    }
    /* merge runs of reduced / kept axes, dropping axes of size 1 */
    size_t gs[JOULE_MAX_RANK];
    bool gr[JOULE_MAX_RANK];
    int g = 0, n_red = 0;
    size_t n = 1;
    for (int i = 0; i < x->rank; i++) {
        if (x->dims[i] == 1)
            continue;
        if (red[i])
            n *= (size_t)x->dims[i];
        if (g > 0 && gr[g - 1] == red[i]) {
            gs[g - 1] *= (size_t)x->dims[i];
        } else {
            gs[g] = (size_t)x->dims[i];
            gr[g] = red[i];
            n_red += red[i];
            g++;
        }
    }
    const int nt = pn_threads(ctx, x->count);
    if (n_red <= 1) {
        size_t outer = 1, inner = 1;
        bool after = false;
        for (int i = 0; i < g; i++) {
            if (gr[i])
                after = true;
            else if (after)
                inner *= gs[i];
            else
                outer *= gs[i];
        }
#define CALL_FAST(s) reduce3_##s(x->data, y->data, outer, n, inner, op, nt)
        DISPATCH(CALL_FAST);
        return JOULE_OK;
    }
    if (!ctx->scratch)
        return joule_fail(ctx->err, JOULE_ERR_INVALID, "%s (%s): run without prepared scratch",
                          pn_name(ctx->node), ctx->node->op_type);
#define CALL_GENERAL(s)                                                                           \
    reduce_general_##s(x->data, y->data, y->count, g, gs, gr, n, op, ctx->scratch)
    DISPATCH(CALL_GENERAL);
    return JOULE_OK;
}

joule_status pn_reduce_run(const joule_kernel_ctx *ctx)
{
    return pn_run_shadowed(ctx, 0, reduce_native);
}

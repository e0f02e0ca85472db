/* eval/cpu/pool_norm/softmax.c: Softmax and LogSoftmax. Before opset 13 the input is coerced to
 * 2D at axis (default 1) and normalized over everything from axis on; from opset 13 along one
 * axis (default -1). float and double natively, float16/bfloat16 through float32. Float rows
 * use pn_expf so the exp loop vectorizes. */
#include <math.h>
#include <string.h>

#include "eval/cpu/pool_norm/pool_norm.h"

#define PN_SM_BLOCK 64

#define T float
#define SUF f32
#define EXP pn_expf
#define EXP_SIMD PN_SIMD
#define EXP_SIMD_SUM(v) PN_SIMD_SUM(v)
#include "eval/cpu/pool_norm/softmax_tmpl.h"
#undef T
#undef SUF
#undef EXP
#undef EXP_SIMD
#undef EXP_SIMD_SUM
#define T double
#define SUF f64
#define EXP exp
#define EXP_SIMD
#define EXP_SIMD_SUM(v)
#include "eval/cpu/pool_norm/softmax_tmpl.h"
#undef T
#undef SUF
#undef EXP
#undef EXP_SIMD
#undef EXP_SIMD_SUM

/* outer, n, inner of the op's view of x; false when axis is out of range. */
static bool sm_layout(const joule_node *node, int64_t opset, const joule_view *x, size_t *outer,
                      size_t *n, size_t *inner)
{
    int axis;
    if (!pn_axis(joule_attr_int(node, "axis", opset >= 13 ? -1 : 1), x->rank, &axis))
        return false;
    *outer = pn_prod(x->dims, 0, axis);
    if (opset >= 13) {
        *n = (size_t)x->dims[axis];
        *inner = pn_prod(x->dims, axis + 1, x->rank);
    } else {
        *n = pn_prod(x->dims, axis, x->rank);
        *inner = 1;
    }
    return true;
}

bool pn_softmax_supports(const joule_node *node, int64_t opset, int n_in,
                         const joule_view *const *in)
{
    if (n_in != 1 || !in[0] || node->n_outputs != 1 || in[0]->rank < 1)
        return false;
    joule_dtype t = in[0]->dtype;
    if (t != JOULE_F32 && t != JOULE_F64 && t != JOULE_F16 && t != JOULE_BF16)
        return false;
    size_t outer, n, inner;
    return sm_layout(node, opset, in[0], &outer, &n, &inner);
}

joule_status pn_softmax_prepare(const joule_kernel_ctx *ctx, void **state, size_t *scratch_bytes)
{
    *state = NULL;
    return pn_prepare_shadows(ctx, 0, scratch_bytes);
}

static joule_status sm_native(const joule_kernel_ctx *ctx, bool logsm)
{
    const joule_view *x = ctx->in[0];
    size_t outer, n, inner;
    if (!sm_layout(ctx->node, ctx->opset, x, &outer, &n, &inner))
        return joule_fail(ctx->err, JOULE_ERR_INVALID, "%s (%s): axis out of range",
                          pn_name(ctx->node), ctx->node->op_type);
    joule_status st = pn_check_out(ctx, 0, x->rank, x->dims);
    if (st)
        return st;
    if (x->count == 0)
        return JOULE_OK;
    const int nt = pn_threads(ctx, x->count);
    if (x->dtype == JOULE_F32)
        softmax_f32(x->data, ctx->out[0]->data, outer, n, inner, logsm, nt);
    else if (x->dtype == JOULE_F64)
        softmax_f64(x->data, ctx->out[0]->data, outer, n, inner, logsm, nt);
    else
        return joule_fail(ctx->err, JOULE_ERR_UNSUPPORTED, "%s (%s): dtype %s not supported",
                          pn_name(ctx->node), ctx->node->op_type, joule_dtype_name(x->dtype));
    return JOULE_OK;
}

static joule_status softmax_native(const joule_kernel_ctx *ctx)
{
    return sm_native(ctx, false);
}

static joule_status logsoftmax_native(const joule_kernel_ctx *ctx)
{
    return sm_native(ctx, true);
}

joule_status pn_softmax_run(const joule_kernel_ctx *ctx)
{
    return pn_run_shadowed(ctx, 0, softmax_native);
}

joule_status pn_logsoftmax_run(const joule_kernel_ctx *ctx)
{
    return pn_run_shadowed(ctx, 0, logsoftmax_native);
}

/* eval/cpu/pool_norm/argmax.c: ArgMax and ArgMin along one axis (axis, keepdims,
 * select_last_index), int64 output. float, double, int32 and int64 natively; float16, bfloat16,
 * int8 and uint8 through float32 (exact for all of them, so ties are kept). */
#include <string.h>

#include "eval/cpu/pool_norm/pool_norm.h"

#define PN_ARG_BLOCK 64

/* Index along n of the max (is_max) or min of each column; ties to the first or, with last, the
 * last index. [outer][n][inner] layout, inner > 1 in blocks of PN_ARG_BLOCK columns. */
#define DEFINE_ARG(T, SUF)                                                                        \
    static void arg_##SUF(const T *x, int64_t *y, size_t outer, size_t n, size_t inner,           \
                          bool is_max, bool last, int nt)                                         \
    {                                                                                             \
        (void)nt;                                                                                 \
        const size_t n_chunks = (inner + PN_ARG_BLOCK - 1) / PN_ARG_BLOCK;                        \
        const long long tasks = (long long)(outer * n_chunks);                                    \
        PN_OMP_FOR                                                                                \
        for (long long t = 0; t < tasks; t++) {                                                   \
            const size_t b = (size_t)t / n_chunks, i0 = (size_t)t % n_chunks * PN_ARG_BLOCK;      \
            const size_t w = inner - i0 < PN_ARG_BLOCK ? inner - i0 : PN_ARG_BLOCK;              \
            const T *xb = x + b * n * inner + i0;                                                 \
            T best[PN_ARG_BLOCK];                                                                 \
            int64_t at[PN_ARG_BLOCK];                                                             \
            for (size_t i = 0; i < w; i++) {                                                      \
                best[i] = xb[i];                                                                  \
                at[i] = 0;                                                                        \
            }                                                                                     \
            for (size_t j = 1; j < n; j++) {                                                      \
                const T *row = xb + j * inner;                                                    \
                for (size_t i = 0; i < w; i++) {                                                  \
                    const T v = row[i];                                                           \
                    const bool take = is_max ? (last ? v >= best[i] : v > best[i])               \
                                             : (last ? v <= best[i] : v < best[i]);              \
                    if (take) {                                                                   \
                        best[i] = v;                                                              \
                        at[i] = (int64_t)j;                                                       \
                    }                                                                             \
                }                                                                                 \
            }                                                                                     \
            memcpy(y + b * inner + i0, at, w * sizeof *at);                                       \
        }                                                                                         \
    }

DEFINE_ARG(float, f32)
DEFINE_ARG(double, f64)
DEFINE_ARG(int32_t, i32)
DEFINE_ARG(int64_t, i64)

static bool arg_axis(const joule_node *node, int rank, int *axis)
{
    return pn_axis(joule_attr_int(node, "axis", 0), rank, axis);
}

bool pn_argmax_supports(const joule_node *node, int64_t opset, int n_in,
                        const joule_view *const *in)
{
    (void)opset;
    if (n_in != 1 || !in[0] || node->n_outputs != 1 || in[0]->rank < 1)
        return false;
    const joule_dtype t = in[0]->dtype;
    if (t != JOULE_F32 && t != JOULE_F64 && t != JOULE_I32 && t != JOULE_I64 && !pn_shadowed(t))
        return false;
    const int64_t kd = joule_attr_int(node, "keepdims", 1);
    const int64_t sl = joule_attr_int(node, "select_last_index", 0);
    int axis;
    return (kd == 0 || kd == 1) && (sl == 0 || sl == 1) && arg_axis(node, in[0]->rank, &axis);
}

joule_status pn_argmax_prepare(const joule_kernel_ctx *ctx, void **state, size_t *scratch_bytes)
{
    *state = NULL;
    return pn_prepare_shadows(ctx, 0, scratch_bytes);
}

static joule_status arg_native(const joule_kernel_ctx *ctx)
{
    const joule_view *x = ctx->in[0];
    int axis;
    if (!arg_axis(ctx->node, x->rank, &axis))
        return joule_fail(ctx->err, JOULE_ERR_INVALID, "%s (%s): axis out of range",
                          pn_name(ctx->node), ctx->node->op_type);
    const bool keep = joule_attr_int(ctx->node, "keepdims", 1) != 0;
    const bool last = joule_attr_int(ctx->node, "select_last_index", 0) != 0;
    const bool is_max = strcmp(ctx->node->op_type, "ArgMin") != 0;
    int64_t od[JOULE_MAX_RANK];
    int orank = 0;
    for (int i = 0; i < x->rank; i++)
        if (i != axis)
            od[orank++] = x->dims[i];
        else if (keep)
            od[orank++] = 1;
    joule_status st = pn_check_out(ctx, 0, orank, od);
    if (st)
        return st;
    joule_view *y = ctx->out[0];
    if (y->dtype != JOULE_I64)
        return joule_fail(ctx->err, JOULE_ERR_UNSUPPORTED, "%s (%s): output must be int64",
                          pn_name(ctx->node), ctx->node->op_type);
    if (y->count == 0)
        return JOULE_OK;
    const size_t n = (size_t)x->dims[axis];
    if (n == 0)
        return joule_fail(ctx->err, JOULE_ERR_INVALID, "%s (%s): reducing an empty axis",
                          pn_name(ctx->node), ctx->node->op_type);
    const size_t outer = pn_prod(x->dims, 0, axis), inner = pn_prod(x->dims, axis + 1, x->rank);
    const int nt = pn_threads(ctx, x->count);
    switch (x->dtype) {
    case JOULE_F32:
        arg_f32(x->data, y->data, outer, n, inner, is_max, last, nt);
        break;
    case JOULE_F64:
        arg_f64(x->data, y->data, outer, n, inner, is_max, last, nt);
        break;
    case JOULE_I32:
        arg_i32(x->data, y->data, outer, n, inner, is_max, last, nt);
        break;
    case JOULE_I64:
        arg_i64(x->data, y->data, outer, n, inner, is_max, last, nt);
        break;
    default:
        return joule_fail(ctx->err, JOULE_ERR_UNSUPPORTED, "%s (%s): dtype %s not supported",
                          pn_name(ctx->node), ctx->node->op_type, joule_dtype_name(x->dtype));
    }
    return JOULE_OK;
}

joule_status pn_argmax_run(const joule_kernel_ctx *ctx)
{
    return pn_run_shadowed(ctx, 0, arg_native);
}

/* eval/cpu/pool_norm/global_pool.c: GlobalAveragePool and GlobalMaxPool: one value per
 * (batch, channel) plane over all spatial axes. float and double natively, float16/bfloat16
 * through float32. Sums run in double so long planes keep their precision. */
#include <math.h>

#include "eval/cpu/pool_norm/pool_norm.h"

bool pn_global_pool_supports(const joule_node *node, int64_t opset, int n_in,
                             const joule_view *const *in)
{
    (void)opset;
    if (n_in != 1 || !in[0] || in[0]->rank < 2 || node->n_outputs != 1)
        return false;
    joule_dtype t = in[0]->dtype;
    return t == JOULE_F32 || t == JOULE_F64 || t == JOULE_F16 || t == JOULE_BF16;
}

joule_status pn_global_pool_prepare(const joule_kernel_ctx *ctx, void **state,
                                    size_t *scratch_bytes)
{
    *state = NULL;
    return pn_prepare_shadows(ctx, 0, scratch_bytes);
}

#define GLOBAL_POOL(T, IS_MAX)                                                                    \
    do {                                                                                          \
        const T *xs = x->data;                                                                    \
        T *ys = ctx->out[0]->data;                                                                \
        PN_OMP_FOR                                                                                \
        for (long long c = 0; c < n_planes; c++) {                                                \
            const T *p = xs + (size_t)c * plane;                                                  \
            if (IS_MAX) {                                                                         \
                T m = plane ? p[0] : (T)-INFINITY;                                                \
                for (size_t i = 1; i < plane; i++)                                                \
                    m = p[i] > m ? p[i] : m;                                                      \
                ys[c] = m;                                                                        \
            } else {                                                                              \
                double acc = 0;                                                                   \
                PN_SIMD_SUM(acc)                                                                  \
                for (size_t i = 0; i < plane; i++)                                                \
                    acc += p[i];                                                                  \
                ys[c] = plane ? (T)(acc / (double)plane) : (T)NAN;                                \
            }                                                                                     \
        }                                                                                         \
    } while (0)

static joule_status global_native(const joule_kernel_ctx *ctx, bool is_max)
{
    const joule_view *x = ctx->in[0];
    int64_t od[JOULE_MAX_RANK];
    for (int i = 0; i < x->rank; i++)
        od[i] = i < 2 ? x->dims[i] : 1;
    joule_status st = pn_check_out(ctx, 0, x->rank, od);
    if (st)
        return st;
    const size_t plane = pn_prod(x->dims, 2, x->rank);
    const long long n_planes = (long long)pn_prod(x->dims, 0, 2);
    const int nt = pn_threads(ctx, x->count);
    (void)nt;
    if (x->dtype == JOULE_F32) {
        if (is_max)
            GLOBAL_POOL(float, 1);
        else
            GLOBAL_POOL(float, 0);
    } else if (x->dtype == JOULE_F64) {
        if (is_max)
            GLOBAL_POOL(double, 1);
        else
            GLOBAL_POOL(double, 0);
    } else {
        return joule_fail(ctx->err, JOULE_ERR_UNSUPPORTED, "%s (%s): dtype %s not supported",
                          pn_name(ctx->node), ctx->node->op_type, joule_dtype_name(x->dtype));
    }
    return JOULE_OK;
}

static joule_status global_avg_native(const joule_kernel_ctx *ctx)
{
    return global_native(ctx, false);
}

static joule_status global_max_native(const joule_kernel_ctx *ctx)
{
    return global_native(ctx, true);
}

joule_status pn_global_avgpool_run(const joule_kernel_ctx *ctx)
{
    return pn_run_shadowed(ctx, 0, global_avg_native);
}

joule_status pn_global_maxpool_run(const joule_kernel_ctx *ctx)
{
    return pn_run_shadowed(ctx, 0, global_max_native);
}

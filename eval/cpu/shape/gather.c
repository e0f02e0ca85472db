/* eval/cpu/shape/gather.c: Gather along one axis with int32 or int64 indices. Negative indices
 * count from the end. Every index is checked before anything is written: an index a model
 * supplies outside [-n, n) is an error naming the node, never an out-of-bounds read. Also
 * GatherElements, which indexes one element per index along the axis. */
#include <string.h>

#include "eval/cpu/shape/shape_internal.h"

bool jsk_gather_supports(const joule_node *node, int64_t opset, int n_in,
                         const joule_view *const *in)
{
    (void)node;
    (void)opset;
    return n_in >= 2 && in[0] && in[1] && jsk_elem_size(in[0]->dtype) > 0 &&
           in[0]->rank >= 1 && jsk_is_index_type(in[1]->dtype);
}

joule_status jsk_gather_run(const joule_kernel_ctx *ctx)
{
    const joule_view *data = ctx->in[0], *ind = ctx->in[1];
    int r = data->rank, q = ind->rank;
    int axis;
    joule_status st = jsk_axis(ctx, joule_attr_int(ctx->node, "axis", 0), r, "axis", &axis);
    if (st)
        return st;
    if (r - 1 + q > JOULE_MAX_RANK)
        return jsk_fail(ctx, JOULE_ERR_UNSUPPORTED, "output rank %d exceeds %d", r - 1 + q,
                        JOULE_MAX_RANK);
    int64_t dims[JOULE_MAX_RANK];
    int n = 0;
    for (int k = 0; k < axis; k++)
        dims[n++] = data->dims[k];
    for (int k = 0; k < q; k++)
        dims[n++] = ind->dims[k];
    for (int k = axis + 1; k < r; k++)
        dims[n++] = data->dims[k];
    if ((st = jsk_check_out(ctx, 0, data->dtype, n, dims)))
        return st;
    if (ind->count && !ind->data)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "indices have no data");
    const int64_t len = data->dims[axis];
    for (size_t i = 0; i < ind->count; i++) {
        int64_t x = jsk_index_at(ind, i);
        if (x < -len || x >= len)
            return jsk_fail(ctx, JOULE_ERR_INVALID,
                            "index %lld (element %zu) is out of range for axis %d of length %lld",
                            (long long)x, i, axis, (long long)len);
    }
    if (ctx->out[0]->count == 0)
        return JOULE_OK;
    size_t es = jsk_elem_size(data->dtype);
    size_t outer = 1, inner = es;
    for (int k = 0; k < axis; k++)
        outer *= (size_t)data->dims[k];
    for (int k = axis + 1; k < r; k++)
        inner *= (size_t)data->dims[k];
    const char *src = data->data;
    char *dst = ctx->out[0]->data;
    for (size_t o = 0; o < outer; o++) {
        const char *block = src + o * (size_t)len * inner;
        for (size_t i = 0; i < ind->count; i++) {
            int64_t x = jsk_index_at(ind, i);
            if (x < 0)
                x += len;
            memcpy(dst, block + (size_t)x * inner, inner);
            dst += inner;
        }
    }
    return JOULE_OK;
}

/* ---- GatherElements: out[i] = data[i with the axis coordinate replaced by indices[i]] ---- */

bool jsk_gather_elements_supports(const joule_node *node, int64_t opset, int n_in,
                                  const joule_view *const *in)
{
    (void)node;
    (void)opset;
    return n_in >= 2 && in[0] && in[1] && jsk_elem_size(in[0]->dtype) > 0 && in[0]->rank >= 1 &&
           in[1]->rank == in[0]->rank && jsk_is_index_type(in[1]->dtype);
}

joule_status jsk_gather_elements_run(const joule_kernel_ctx *ctx)
{
    const joule_view *data = ctx->in[0], *ind = ctx->in[1];
    int r = data->rank;
    int axis;
    joule_status st = jsk_axis(ctx, joule_attr_int(ctx->node, "axis", 0), r, "axis", &axis);
    if (st)
        return st;
    if (ind->rank != r)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "indices have rank %d, data rank %d", ind->rank, r);
    for (int k = 0; k < r; k++)
        if (k != axis && ind->dims[k] > data->dims[k])
            return jsk_fail(ctx, JOULE_ERR_INVALID,
                            "indices dim %d (%lld) exceeds the data's (%lld)", k,
                            (long long)ind->dims[k], (long long)data->dims[k]);
    if ((st = jsk_check_out(ctx, 0, data->dtype, r, ind->dims)))
        return st;
    if (ind->count == 0)
        return JOULE_OK;
    if (!ind->data)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "indices have no data");
    const int64_t len = data->dims[axis];
    for (size_t i = 0; i < ind->count; i++) {
        int64_t x = jsk_index_at(ind, i);
        if (x < -len || x >= len)
            return jsk_fail(ctx, JOULE_ERR_INVALID,
                            "index %lld (element %zu) is out of range for axis %d of length %lld",
                            (long long)x, i, axis, (long long)len);
    }
    size_t es = jsk_elem_size(data->dtype);
    int64_t strides[JOULE_MAX_RANK], idx[JOULE_MAX_RANK] = {0};
    jsk_strides(r, data->dims, strides);
    const char *src = data->data;
    char *dst = ctx->out[0]->data;
    for (size_t i = 0; i < ind->count; i++) {
        int64_t x = jsk_index_at(ind, i);
        if (x < 0)
            x += len;
        size_t off = 0;
        for (int k = 0; k < r; k++)
            off += (size_t)((k == axis ? x : idx[k]) * strides[k]);
        memcpy(dst + i * es, src + off * es, es);
        for (int k = r - 1; k >= 0; k--) {
            if (++idx[k] < ind->dims[k])
                break;
            idx[k] = 0;
        }
    }
    return JOULE_OK;
}

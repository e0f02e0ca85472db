/* eval/cpu/shape/expand_tile.c: Expand (numpy broadcast of the input to a shape input) and Tile
 * (repeat each axis `repeats` times). Expand is a strided copy with stride 0 on broadcast dims.
 * Tile views the rank-r output as 2r dims (repeat_k, dim_k) with stride 0 on each repeat dim,
 * so it is a strided copy too, and the innermost run of each repetition stays a memcpy. */
#include <string.h>

#include "eval/cpu/shape/shape_internal.h"

bool jsk_expand_supports(const joule_node *node, int64_t opset, int n_in,
                         const joule_view *const *in)
{
    (void)node;
    (void)opset;
    return n_in >= 2 && in[0] && in[1] && jsk_elem_size(in[0]->dtype) > 0 &&
           in[1]->dtype == JOULE_I64;
}

joule_status jsk_expand_run(const joule_kernel_ctx *ctx)
{
    const joule_view *in = ctx->in[0];
    int64_t shape[JOULE_MAX_RANK];
    size_t ns;
    joule_status st = jsk_read_ints(ctx, ctx->in[1], "shape", shape, JOULE_MAX_RANK, &ns);
    if (st)
        return st;
    int r = in->rank > (int)ns ? in->rank : (int)ns;
    int64_t dims[JOULE_MAX_RANK], strides[JOULE_MAX_RANK], in_strides[JOULE_MAX_RANK];
    jsk_strides(in->rank, in->dims, in_strides);
    for (int k = 0; k < r; k++) {
        int ki = k - (r - in->rank), ks = k - (r - (int)ns); /* right-aligned */
        int64_t a = ki >= 0 ? in->dims[ki] : 1, b = ks >= 0 ? shape[ks] : 1;
        if (b < 0)
            return jsk_fail(ctx, JOULE_ERR_INVALID, "shape has a negative dim %lld", (long long)b);
        if (a != b && a != 1 && b != 1)
            return jsk_fail(ctx, JOULE_ERR_INVALID,
                            "input dim %lld cannot broadcast to %lld (axis %d)", (long long)a,
                            (long long)b, k);
        dims[k] = a == 1 ? b : a;
        strides[k] = (ki >= 0 && a != 1) ? in_strides[ki] : 0;
    }
    if ((st = jsk_check_out(ctx, 0, in->dtype, r, dims)))
        return st;
    if (ctx->out[0]->count == 0)
        return JOULE_OK;
    jsk_strided_copy(ctx->out[0]->data, in->data, jsk_elem_size(in->dtype), r, dims, strides,
                     ctx->threads);
    return JOULE_OK;
}

bool jsk_tile_supports(const joule_node *node, int64_t opset, int n_in,
                       const joule_view *const *in)
{
    (void)node;
    /* Tile-1 took (tiles, axis) inputs; from opset 6 one `repeats` input */
    return opset >= 6 && n_in >= 2 && in[0] && in[1] && jsk_elem_size(in[0]->dtype) > 0 &&
           in[1]->dtype == JOULE_I64;
}

joule_status jsk_tile_run(const joule_kernel_ctx *ctx)
{
    const joule_view *in = ctx->in[0];
    int r = in->rank;
    int64_t rep[JOULE_MAX_RANK];
    size_t n;
    joule_status st = jsk_read_ints(ctx, ctx->in[1], "repeats", rep, JOULE_MAX_RANK, &n);
    if (st)
        return st;
    if (n != (size_t)r)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "repeats has %zu values for rank %d", n, r);
    int64_t dims[JOULE_MAX_RANK], in_strides[JOULE_MAX_RANK];
    int64_t vdims[JSK_MAX_RANK], vstrides[JSK_MAX_RANK];
    jsk_strides(r, in->dims, in_strides);
    for (int k = 0; k < r; k++) {
        if (rep[k] < 0)
            return jsk_fail(ctx, JOULE_ERR_INVALID, "repeats[%d] is negative (%lld)", k,
                            (long long)rep[k]);
        if (in->dims[k] && rep[k] > INT64_MAX / in->dims[k])
            return jsk_fail(ctx, JOULE_ERR_INVALID, "repeats[%d] overflows the output dim", k);
        dims[k] = in->dims[k] * rep[k];
        vdims[2 * k] = rep[k];
        vstrides[2 * k] = 0;
        vdims[2 * k + 1] = in->dims[k];
        vstrides[2 * k + 1] = in_strides[k];
    }
    if ((st = jsk_check_out(ctx, 0, in->dtype, r, dims)))
        return st;
    if (ctx->out[0]->count == 0)
        return JOULE_OK;
    jsk_strided_copy(ctx->out[0]->data, in->data, jsk_elem_size(in->dtype), 2 * r, vdims, vstrides,
                     ctx->threads);
    return JOULE_OK;
}

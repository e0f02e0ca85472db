/* eval/cpu/shape/transpose.c: Transpose. Output dim k reads input dim perm[k], which is a
 * strided copy with permuted strides; the copy engine merges dims that stay adjacent, so a 2-D
 * transpose and NCHW<->NHWC (batched 2-D transposes after merging H and W) take its tiled
 * path, and a permutation that only moves size-1 dims becomes a memcpy. */
#include "eval/cpu/shape/shape_internal.h"

bool jsk_transpose_supports(const joule_node *node, int64_t opset, int n_in,
                            const joule_view *const *in)
{
    (void)node;
    (void)opset;
    return n_in >= 1 && in[0] && jsk_elem_size(in[0]->dtype) > 0 && in[0]->rank <= JOULE_MAX_RANK;
}

joule_status jsk_transpose_run(const joule_kernel_ctx *ctx)
{
    const joule_view *in = ctx->in[0];
    int r = in->rank;
    int64_t perm[JOULE_MAX_RANK];
    size_t n = 0;
    bool found;
    joule_status st = jsk_attr_ints(ctx, "perm", perm, JOULE_MAX_RANK, &n, &found);
    if (st)
        return st;
    if (!found) { /* default: reverse the dims */
        for (int k = 0; k < r; k++)
            perm[k] = r - 1 - k;
        n = (size_t)r;
    }
    if (n != (size_t)r)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "perm has %zu entries for rank %d", n, r);
    bool seen[JOULE_MAX_RANK] = {false};
    for (int k = 0; k < r; k++) {
        if (perm[k] < 0 || perm[k] >= r || seen[perm[k]])
            return jsk_fail(ctx, JOULE_ERR_INVALID, "perm is not a permutation of 0..%d", r - 1);
        seen[perm[k]] = true;
    }
    int64_t dims[JOULE_MAX_RANK], in_strides[JOULE_MAX_RANK], strides[JOULE_MAX_RANK];
    jsk_strides(r, in->dims, in_strides);
    for (int k = 0; k < r; k++) {
        dims[k] = in->dims[perm[k]];
        strides[k] = in_strides[perm[k]];
    }
    st = jsk_check_out(ctx, 0, in->dtype, r, dims);
    if (st || in->count == 0)
        return st;
    jsk_strided_copy(ctx->out[0]->data, in->data, jsk_elem_size(in->dtype), r, dims, strides,
                     ctx->threads);
    return JOULE_OK;
}

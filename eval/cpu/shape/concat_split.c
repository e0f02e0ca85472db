/* eval/cpu/shape/concat_split.c: Concat and Split. Both see the tensor as [outer, axis, inner]:
 * for each outer index, Concat appends each input's block of axis*inner elements and Split
 * hands consecutive blocks to its outputs. Split sizes come from the `split` attribute (before
 * opset 13), the `split` input (13+), `num_outputs` (18+, last chunk smaller) or an equal split. */
#include <stdlib.h>
#include <string.h>

#include "eval/cpu/shape/shape_internal.h"

bool jsk_concat_supports(const joule_node *node, int64_t opset, int n_in,
                         const joule_view *const *in)
{
    (void)node;
    (void)opset;
    if (n_in < 1)
        return false;
    for (int i = 0; i < n_in; i++)
        if (!in[i] || jsk_elem_size(in[i]->dtype) == 0 || in[i]->dtype != in[0]->dtype)
            return false;
    return true;
}

joule_status jsk_concat_run(const joule_kernel_ctx *ctx)
{
    const joule_view *in0 = ctx->in[0];
    int r = in0->rank;
    if (r < 1)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "inputs must have rank >= 1");
    const joule_attr *a = joule_node_attr(ctx->node, "axis");
    if (!a && ctx->opset >= 4)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "attribute 'axis' is required");
    int axis;
    joule_status st = jsk_axis(ctx, a ? a->i : 1, r, "axis", &axis);
    if (st)
        return st;
    int64_t dims[JOULE_MAX_RANK];
    memcpy(dims, in0->dims, sizeof dims);
    dims[axis] = 0;
    for (int i = 0; i < ctx->n_in; i++) {
        const joule_view *v = ctx->in[i];
        if (!v || v->dtype != in0->dtype || v->rank != r)
            return jsk_fail(ctx, JOULE_ERR_INVALID, "input %d differs in dtype or rank", i);
        for (int k = 0; k < r; k++)
            if (k != axis && v->dims[k] != in0->dims[k])
                return jsk_fail(ctx, JOULE_ERR_INVALID,
                                "input %d has dim %d = %lld, input 0 has %lld", i, k,
                                (long long)v->dims[k], (long long)in0->dims[k]);
        dims[axis] += v->dims[axis];
    }
    if ((st = jsk_check_out(ctx, 0, in0->dtype, r, dims)))
        return st;
    if (ctx->out[0]->count == 0)
        return JOULE_OK;
    size_t es = jsk_elem_size(in0->dtype);
    size_t outer = 1, inner = es;
    for (int k = 0; k < axis; k++)
        outer *= (size_t)dims[k];
    for (int k = axis + 1; k < r; k++)
        inner *= (size_t)dims[k];
    char *dst = ctx->out[0]->data;
    for (size_t o = 0; o < outer; o++) {
        for (int i = 0; i < ctx->n_in; i++) {
            size_t block = (size_t)ctx->in[i]->dims[axis] * inner;
            if (block) {
                memcpy(dst, (const char *)ctx->in[i]->data + o * block, block);
                dst += block;
            }
        }
    }
    return JOULE_OK;
}

bool jsk_split_supports(const joule_node *node, int64_t opset, int n_in,
                        const joule_view *const *in)
{
    (void)node;
    (void)opset;
    return n_in >= 1 && in[0] && jsk_elem_size(in[0]->dtype) > 0 && in[0]->rank >= 1;
}

/* Sizes of the n chunks along an axis of length dim. */
static joule_status split_sizes(const joule_kernel_ctx *ctx, int64_t dim, int n, int64_t *sizes)
{
    size_t cnt = 0;
    bool found = false;
    joule_status st;
    if (ctx->opset >= 13) {
        if (ctx->n_in >= 2 && ctx->in[1]) {
            found = true;
            if ((st = jsk_read_ints(ctx, ctx->in[1], "split", sizes, (size_t)n, &cnt)))
                return st;
            if (cnt == 0) /* an empty split tensor means "not given" */
                found = false;
        }
    } else if ((st = jsk_attr_ints(ctx, "split", sizes, (size_t)n, &cnt, &found))) {
        return st;
    }
    if (found) {
        if (cnt != (size_t)n)
            return jsk_fail(ctx, JOULE_ERR_INVALID, "split has %zu sizes for %d outputs", cnt, n);
        int64_t sum = 0;
        for (int j = 0; j < n; j++) {
            if (sizes[j] < 0 || sizes[j] > dim - sum)
                return jsk_fail(ctx, JOULE_ERR_INVALID,
                                "split sizes do not add up to the axis length %lld",
                                (long long)dim);
            sum += sizes[j];
        }
        if (sum != dim)
            return jsk_fail(ctx, JOULE_ERR_INVALID,
                            "split sizes add up to %lld, the axis length is %lld", (long long)sum,
                            (long long)dim);
        return JOULE_OK;
    }
    const joule_attr *num = ctx->opset >= 18 ? joule_node_attr(ctx->node, "num_outputs") : NULL;
    if (num) {
        if (num->i != n)
            return jsk_fail(ctx, JOULE_ERR_INVALID, "num_outputs is %lld but the node has %d outputs",
                            (long long)num->i, n);
        int64_t chunk = (dim + n - 1) / n;
        int64_t left = dim;
        for (int j = 0; j < n; j++) {
            sizes[j] = chunk < left ? chunk : left;
            left -= sizes[j];
        }
        return JOULE_OK;
    }
    if (dim % n != 0)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "axis length %lld does not split into %d equal parts",
                        (long long)dim, n);
    for (int j = 0; j < n; j++)
        sizes[j] = dim / n;
    return JOULE_OK;
}

joule_status jsk_split_run(const joule_kernel_ctx *ctx)
{
    const joule_view *in = ctx->in[0];
    int r = in->rank, n = ctx->n_out;
    if (n < 1)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "no outputs");
    int axis;
    joule_status st = jsk_axis(ctx, joule_attr_int(ctx->node, "axis", 0), r, "axis", &axis);
    if (st)
        return st;
    int64_t *sizes = malloc((size_t)n * sizeof *sizes);
    if (!sizes)
        return jsk_fail(ctx, JOULE_ERR_NOMEM, "out of memory");
    st = split_sizes(ctx, in->dims[axis], n, sizes);
    for (int j = 0; j < n && !st; j++) {
        if (!ctx->out[j]) /* an omitted output: its chunk is skipped */
            continue;
        int64_t dims[JOULE_MAX_RANK];
        memcpy(dims, in->dims, sizeof dims);
        dims[axis] = sizes[j];
        st = jsk_check_out(ctx, j, in->dtype, r, dims);
    }
    if (!st && in->count) {
        size_t es = jsk_elem_size(in->dtype);
        size_t outer = 1, inner = es;
        for (int k = 0; k < axis; k++)
            outer *= (size_t)in->dims[k];
        for (int k = axis + 1; k < r; k++)
            inner *= (size_t)in->dims[k];
        const char *src = in->data;
        for (size_t o = 0; o < outer; o++) {
            for (int j = 0; j < n; j++) {
                size_t block = (size_t)sizes[j] * inner;
                if (block && ctx->out[j])
                    memcpy((char *)ctx->out[j]->data + o * block, src, block);
                src += block;
            }
        }
    }
    free(sizes);
    return st;
}

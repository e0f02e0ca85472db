/* eval/cpu/shape/concat_split.c: Concat and Split. Both see the tensor as [outer, axis, inner]:
 * for each outer index, Concat appends each input's block of axis*inner elements and Split
 * hands consecutive blocks to its outputs. Split sizes come from the `split` attribute (before
 * opset 13), the `split` input (13+), `num_outputs` (18+, last chunk smaller) or an equal split. */
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

/* Where the chunk sizes come from; size_at() gives chunk j. */
typedef struct split_plan {
    const int64_t *list;   /* the `split` attribute (before opset 13) */
    const joule_view *in;  /* the `split` input (13+) */
    int64_t dim, chunk;    /* equal split / num_outputs: chunks of `chunk`, the last smaller */
} split_plan;

static int64_t size_at(const split_plan *p, int j)
{
    if (p->list)
        return p->list[j];
    if (p->in) {
        if (p->in->dtype == JOULE_I64) {
            int64_t v;
            memcpy(&v, (const char *)p->in->data + (size_t)j * 8, 8);
            return v;
        }
        int32_t v;
        memcpy(&v, (const char *)p->in->data + (size_t)j * 4, 4);
        return v;
    }
    int64_t left = p->dim - p->chunk * j;
    return left < 0 ? 0 : left < p->chunk ? left : p->chunk;
}

/* Finds the sizes of the n chunks along an axis of length dim and checks they add up. */
static joule_status split_plan_make(const joule_kernel_ctx *ctx, int64_t dim, int n, split_plan *p)
{
    *p = (split_plan){.dim = dim};
    size_t cnt = 0;
    bool found = false;
    if (ctx->opset >= 13) {
        const joule_view *v = ctx->n_in >= 2 ? ctx->in[1] : NULL;
        if (v && v->count > 0) { /* an empty split tensor means "not given" */
            if (!v->data || !jsk_is_index_type(v->dtype) || v->rank != 1)
                return jsk_fail(ctx, JOULE_ERR_INVALID, "split must be a 1-D int64 tensor");
            p->in = v;
            cnt = v->count;
            found = true;
        }
    } else {
        const joule_attr *a = joule_node_attr(ctx->node, "split");
        if (a) {
            if (a->type != JOULE_ATTR_INTS)
                return jsk_fail(ctx, JOULE_ERR_INVALID, "attribute 'split' must be ints");
            p->list = a->ints;
            cnt = a->count;
            found = true;
        }
    }
    if (found) {
        if (cnt != (size_t)n)
            return jsk_fail(ctx, JOULE_ERR_INVALID, "split has %zu sizes for %d outputs", cnt, n);
        int64_t sum = 0;
        for (int j = 0; j < n; j++) {
            int64_t s = size_at(p, j);
            if (s < 0 || s > dim - sum)
                return jsk_fail(ctx, JOULE_ERR_INVALID,
                                "split sizes do not add up to the axis length %lld",
                                (long long)dim);
            sum += s;
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
        p->chunk = (dim + n - 1) / n;
        return JOULE_OK;
    }
    if (dim % n != 0)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "axis length %lld does not split into %d equal parts",
                        (long long)dim, n);
    p->chunk = dim / n;
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
    split_plan plan;
    if ((st = split_plan_make(ctx, in->dims[axis], n, &plan)))
        return st;
    for (int j = 0; j < n; j++) {
        if (!ctx->out[j]) /* an omitted output: its chunk is skipped */
            continue;
        int64_t dims[JOULE_MAX_RANK];
        memcpy(dims, in->dims, sizeof dims);
        dims[axis] = size_at(&plan, j);
        if ((st = jsk_check_out(ctx, j, in->dtype, r, dims)))
            return st;
    }
    if (in->count == 0)
        return JOULE_OK;
    size_t es = jsk_elem_size(in->dtype);
    size_t outer = 1, inner = es;
    for (int k = 0; k < axis; k++)
        outer *= (size_t)in->dims[k];
    for (int k = axis + 1; k < r; k++)
        inner *= (size_t)in->dims[k];
    const char *src = in->data;
    for (size_t o = 0; o < outer; o++) {
        for (int j = 0; j < n; j++) {
            size_t block = (size_t)size_at(&plan, j) * inner;
            if (block && ctx->out[j])
                memcpy((char *)ctx->out[j]->data + o * block, src, block);
            src += block;
        }
    }
    return JOULE_OK;
}

/* eval/cpu/shape/slice.c: Slice. starts/ends/axes are attributes before opset 10 and inputs
 * (int32 or int64, with optional axes and steps) from 10. Each sliced axis becomes a start
 * offset and a stride of step * the input stride, so the copy is one strided copy; negative
 * steps give negative strides. Bounds are clamped as the spec says, including the huge
 * sentinels exporters use for "to the end" (INT64_MAX, INT64_MIN). ReverseSequence, which
 * reverses a prefix of each batch entry along the time axis, lives here too. */
#include <string.h>

#include "eval/cpu/shape/shape_internal.h"

bool jsk_slice_supports(const joule_node *node, int64_t opset, int n_in,
                        const joule_view *const *in)
{
    (void)node;
    if (n_in < 1 || !in[0] || jsk_elem_size(in[0]->dtype) == 0)
        return false;
    if (opset >= 10) {
        if (n_in < 3 || !in[1] || !in[2])
            return false;
        for (int i = 1; i < n_in && i < 5; i++)
            if (in[i] && !jsk_is_index_type(in[i]->dtype))
                return false;
    }
    return true;
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Start and element count of one sliced axis of length dim (spec of Slice-13). */
static void slice_axis(int64_t dim, int64_t start, int64_t end, int64_t step, int64_t *first,
                       int64_t *count)
{
    if (start < 0)
        start += dim; /* no overflow: start < 0 <= dim */
    if (end < 0)
        end += dim;
    *first = 0;
    *count = 0;
    if (dim == 0)
        return;
    if (step > 0) {
        start = clamp64(start, 0, dim);
        end = clamp64(end, 0, dim);
        if (end > start)
            *count = (end - start - 1) / step + 1;
    } else {
        start = clamp64(start, 0, dim - 1);
        end = clamp64(end, -1, dim - 1);
        if (start > end) {
            /* |step| without overflowing on INT64_MIN */
            uint64_t mag = (uint64_t)(-(step + 1)) + 1u;
            *count = (int64_t)((uint64_t)(start - end - 1) / mag) + 1;
        }
    }
    *first = start;
}

joule_status jsk_slice_run(const joule_kernel_ctx *ctx)
{
    const joule_view *in = ctx->in[0];
    int r = in->rank;
    int64_t starts[JOULE_MAX_RANK], ends[JOULE_MAX_RANK], axes[JOULE_MAX_RANK],
        steps[JOULE_MAX_RANK];
    size_t ns = 0, ne = 0, na = 0, nst = 0;
    bool has_axes = false, has_steps = false, found;
    joule_status st;
    if (ctx->opset < 10) {
        if ((st = jsk_attr_ints(ctx, "starts", starts, JOULE_MAX_RANK, &ns, &found)))
            return st;
        if (!found)
            return jsk_fail(ctx, JOULE_ERR_INVALID, "attribute 'starts' is required");
        if ((st = jsk_attr_ints(ctx, "ends", ends, JOULE_MAX_RANK, &ne, &found)))
            return st;
        if (!found)
            return jsk_fail(ctx, JOULE_ERR_INVALID, "attribute 'ends' is required");
        if ((st = jsk_attr_ints(ctx, "axes", axes, JOULE_MAX_RANK, &na, &has_axes)))
            return st;
    } else {
        if (ctx->n_in < 3)
            return jsk_fail(ctx, JOULE_ERR_INVALID, "inputs 'starts' and 'ends' are required");
        if ((st = jsk_read_ints(ctx, ctx->in[1], "starts", starts, JOULE_MAX_RANK, &ns)) ||
            (st = jsk_read_ints(ctx, ctx->in[2], "ends", ends, JOULE_MAX_RANK, &ne)))
            return st;
        if (ctx->n_in >= 4 && ctx->in[3]) {
            if ((st = jsk_read_ints(ctx, ctx->in[3], "axes", axes, JOULE_MAX_RANK, &na)))
                return st;
            has_axes = true;
        }
        if (ctx->n_in >= 5 && ctx->in[4]) {
            if ((st = jsk_read_ints(ctx, ctx->in[4], "steps", steps, JOULE_MAX_RANK, &nst)))
                return st;
            has_steps = true;
        }
    }
    if (ns != ne)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "starts has %zu values but ends has %zu", ns, ne);
    if (has_axes && na != ns)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "axes has %zu values but starts has %zu", na, ns);
    if (has_steps && nst != ns)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "steps has %zu values but starts has %zu", nst, ns);
    if (ns > (size_t)r)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "%zu axes sliced on a rank-%d input", ns, r);

    int64_t first[JOULE_MAX_RANK], dims[JOULE_MAX_RANK], step_of[JOULE_MAX_RANK];
    bool sliced[JOULE_MAX_RANK] = {false};
    for (int k = 0; k < r; k++) {
        first[k] = 0;
        dims[k] = in->dims[k];
        step_of[k] = 1;
    }
    for (size_t i = 0; i < ns; i++) {
        int ax = (int)i;
        if (has_axes && (st = jsk_axis(ctx, axes[i], r, "axis", &ax)))
            return st;
        if (sliced[ax])
            return jsk_fail(ctx, JOULE_ERR_INVALID, "axis %d is sliced twice", ax);
        sliced[ax] = true;
        int64_t step = has_steps ? steps[i] : 1;
        if (step == 0)
            return jsk_fail(ctx, JOULE_ERR_INVALID, "step of axis %d is 0", ax);
        slice_axis(in->dims[ax], starts[i], ends[i], step, &first[ax], &dims[ax]);
        step_of[ax] = step;
    }
    if ((st = jsk_check_out(ctx, 0, in->dtype, r, dims)))
        return st;
    if (ctx->out[0]->count == 0)
        return JOULE_OK;
    int64_t in_strides[JOULE_MAX_RANK], strides[JOULE_MAX_RANK];
    jsk_strides(r, in->dims, in_strides);
    ptrdiff_t off = 0;
    for (int k = 0; k < r; k++) {
        off += (ptrdiff_t)(first[k] * in_strides[k]);
        /* with one element the stride is never applied (and step may be huge) */
        strides[k] = dims[k] > 1 ? step_of[k] * in_strides[k] : 0;
    }
    size_t es = jsk_elem_size(in->dtype);
    jsk_strided_copy(ctx->out[0]->data, (const char *)in->data + off * (ptrdiff_t)es, es, r, dims,
                     strides, ctx->threads);
    return JOULE_OK;
}

/* ---- ReverseSequence: reverse the first seq_lens[b] steps along the time axis of batch b ---- */

bool jsk_reverse_sequence_supports(const joule_node *node, int64_t opset, int n_in,
                                   const joule_view *const *in)
{
    (void)node;
    (void)opset;
    return n_in >= 2 && in[0] && in[1] && in[0]->rank >= 2 && jsk_elem_size(in[0]->dtype) > 0 &&
           jsk_is_index_type(in[1]->dtype);
}

joule_status jsk_reverse_sequence_run(const joule_kernel_ctx *ctx)
{
    const joule_view *x = ctx->in[0], *lens = ctx->in[1];
    int64_t ta = joule_attr_int(ctx->node, "time_axis", 0);
    int64_t ba = joule_attr_int(ctx->node, "batch_axis", 1);
    if (!((ta == 0 && ba == 1) || (ta == 1 && ba == 0)))
        return jsk_fail(ctx, JOULE_ERR_INVALID, "time_axis and batch_axis must be 0 and 1");
    joule_status st = jsk_check_out(ctx, 0, x->dtype, x->rank, x->dims);
    if (st)
        return st;
    int64_t time = x->dims[ta], batch = x->dims[ba];
    if (lens->rank != 1 || lens->dims[0] != batch || (batch && !lens->data))
        return jsk_fail(ctx, JOULE_ERR_INVALID, "sequence_lens must hold %lld lengths",
                        (long long)batch);
    for (int64_t b = 0; b < batch; b++) {
        int64_t l = jsk_index_at(lens, (size_t)b);
        if (l < 0 || l > time)
            return jsk_fail(ctx, JOULE_ERR_INVALID,
                            "sequence length %lld of batch %lld is outside [0, %lld]",
                            (long long)l, (long long)b, (long long)time);
    }
    if (x->count == 0)
        return JOULE_OK;
    size_t es = jsk_elem_size(x->dtype);
    size_t block = es;
    for (int k = 2; k < x->rank; k++)
        block *= (size_t)x->dims[k];
    const char *src = x->data;
    char *dst = ctx->out[0]->data;
    for (int64_t i0 = 0; i0 < x->dims[0]; i0++) {
        for (int64_t i1 = 0; i1 < x->dims[1]; i1++) {
            int64_t t = ta == 0 ? i0 : i1, b = ta == 0 ? i1 : i0;
            int64_t l = jsk_index_at(lens, (size_t)b);
            int64_t st_t = t < l ? l - 1 - t : t;
            int64_t s0 = ta == 0 ? st_t : i0, s1 = ta == 0 ? i1 : st_t;
            memcpy(dst + ((size_t)i0 * (size_t)x->dims[1] + (size_t)i1) * block,
                   src + ((size_t)s0 * (size_t)x->dims[1] + (size_t)s1) * block, block);
        }
    }
    return JOULE_OK;
}

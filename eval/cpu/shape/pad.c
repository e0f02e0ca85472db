/* eval/cpu/shape/pad.c: Pad in modes constant, reflect, edge and wrap (opset 19). Pads and the
 * constant come from attributes before opset 11 (`paddings` in opset 1, `pads` and a float
 * `value` in 2..10) and from inputs from 11 (int64 pads, a constant of the data's type, and the
 * optional axes of opset 18). Each output axis gets a table mapping output index to input index
 * (-1 for the constant), and one mapped copy gathers through the tables (kept in scratch the
 * engine plans at prepare, so a run does not allocate). Negative pads crop:
 * the kept range is cut first, then the other modes pad relative to it. */
#include <stdlib.h>
#include <string.h>

#include "eval/cpu/shape/shape_internal.h"

enum pad_mode { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP, PAD_UNKNOWN };

static enum pad_mode pad_mode_of(const joule_node *node, int64_t opset)
{
    if (jsk_attr_is(node, "mode", "constant", "constant"))
        return PAD_CONSTANT;
    if (jsk_attr_is(node, "mode", "constant", "reflect"))
        return PAD_REFLECT;
    if (jsk_attr_is(node, "mode", "constant", "edge"))
        return PAD_EDGE;
    if (opset >= 19 && jsk_attr_is(node, "mode", "constant", "wrap"))
        return PAD_WRAP;
    return PAD_UNKNOWN;
}

bool jsk_pad_supports(const joule_node *node, int64_t opset, int n_in,
                      const joule_view *const *in)
{
    if (n_in < 1 || !in[0] || jsk_elem_size(in[0]->dtype) == 0 ||
        pad_mode_of(node, opset) == PAD_UNKNOWN)
        return false;
    if (opset >= 11) {
        if (n_in < 2 || !in[1] || in[1]->dtype != JOULE_I64)
            return false;
        if (n_in >= 3 && in[2] && in[2]->dtype != in[0]->dtype)
            return false;
        if (n_in >= 4 && in[3] && !jsk_is_index_type(in[3]->dtype))
            return false;
    }
    return true;
}

/* Index into [0, len) for a position p relative to the kept range (len >= 1). */
static int64_t map_outside(enum pad_mode mode, int64_t p, int64_t len)
{
    switch (mode) {
    case PAD_EDGE:
        return p < 0 ? 0 : len - 1;
    case PAD_WRAP: {
        int64_t m = p % len;
        return m < 0 ? m + len : m;
    }
    case PAD_REFLECT: {
        if (len == 1)
            return 0;
        int64_t period = 2 * (len - 1);
        int64_t m = p % period;
        if (m < 0)
            m += period;
        return m < len ? m : period - m;
    }
    default:
        return -1;
    }
}

/* Reads pads (2r values, begins then ends) and the constant for this opset. */
static joule_status read_params(const joule_kernel_ctx *ctx, int r, int64_t *begin, int64_t *end,
                                unsigned char *fill, size_t es)
{
    const joule_view *in = ctx->in[0];
    int64_t raw[2 * JOULE_MAX_RANK];
    size_t n = 0;
    joule_status st;
    memset(fill, 0, JSK_MAX_ELEM);
    for (int k = 0; k < r; k++)
        begin[k] = end[k] = 0;
    if (ctx->opset < 11) {
        bool found;
        const char *name = ctx->opset < 2 ? "paddings" : "pads";
        if ((st = jsk_attr_ints(ctx, name, raw, 2 * JOULE_MAX_RANK, &n, &found)))
            return st;
        if (!found)
            return jsk_fail(ctx, JOULE_ERR_INVALID, "attribute '%s' is required", name);
        if (n != 2 * (size_t)r)
            return jsk_fail(ctx, JOULE_ERR_INVALID, "%s has %zu values for rank %d", name, n, r);
        for (int k = 0; k < r; k++) {
            begin[k] = raw[k];
            end[k] = raw[r + k];
        }
        float v = joule_attr_float(ctx->node, "value", 0.0f);
        const joule_dtype_traits *t = joule_dtype_info(in->dtype);
        if (v != 0.0f && t->from_f32)
            t->from_f32(fill, 0, v);
        return JOULE_OK;
    }
    if ((st = jsk_read_ints(ctx, ctx->in[1], "pads", raw, 2 * JOULE_MAX_RANK, &n)))
        return st;
    int64_t axes[JOULE_MAX_RANK];
    size_t na = (size_t)r;
    bool has_axes = ctx->n_in >= 4 && ctx->in[3];
    if (has_axes && (st = jsk_read_ints(ctx, ctx->in[3], "axes", axes, JOULE_MAX_RANK, &na)))
        return st;
    if (n != 2 * na)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "pads has %zu values for %zu axes", n, na);
    bool seen[JOULE_MAX_RANK] = {false};
    for (size_t i = 0; i < na; i++) {
        int ax = (int)i;
        if (has_axes && (st = jsk_axis(ctx, axes[i], r, "axis", &ax)))
            return st;
        if (seen[ax])
            return jsk_fail(ctx, JOULE_ERR_INVALID, "axis %d is padded twice", ax);
        seen[ax] = true;
        begin[ax] = raw[i];
        end[ax] = raw[na + i];
    }
    const joule_view *cv = ctx->n_in >= 3 ? ctx->in[2] : NULL;
    if (cv && cv->count > 0) {
        if (cv->dtype != in->dtype || !cv->data)
            return jsk_fail(ctx, JOULE_ERR_INVALID, "constant_value must be a %s scalar",
                            joule_dtype_name(in->dtype));
        memcpy(fill, cv->data, es);
    }
    return JOULE_OK;
}

joule_status jsk_pad_prepare(const joule_kernel_ctx *ctx, void **state, size_t *scratch_bytes)
{
    const joule_view *out = ctx->n_out >= 1 ? ctx->out[0] : NULL;
    size_t bytes;
    if (!out || !jsk_table_bytes(out->rank, out->dims, sizeof(int64_t), &bytes))
        return jsk_fail(ctx, JOULE_ERR_INVALID, "output dims are not planned");
    return jsk_prepare_scratch(ctx, bytes, state, scratch_bytes);
}

joule_status jsk_pad_run(const joule_kernel_ctx *ctx)
{
    const joule_view *in = ctx->in[0];
    int r = in->rank;
    size_t es = jsk_elem_size(in->dtype);
    enum pad_mode mode = pad_mode_of(ctx->node, ctx->opset);
    if (mode == PAD_UNKNOWN)
        return jsk_fail(ctx, JOULE_ERR_UNSUPPORTED, "unknown mode");
    int64_t begin[JOULE_MAX_RANK], end[JOULE_MAX_RANK], dims[JOULE_MAX_RANK];
    int64_t lo[JOULE_MAX_RANK], keep[JOULE_MAX_RANK];
    unsigned char fill[JSK_MAX_ELEM];
    joule_status st = read_params(ctx, r, begin, end, fill, es);
    if (st)
        return st;
    for (int k = 0; k < r; k++) {
        int64_t d = in->dims[k], b = begin[k], e = end[k];
        /* |pad| beyond 2^40 is nonsense for any tensor and keeps the sums below from overflowing */
        const int64_t lim = (int64_t)1 << 40;
        if (b > lim || b < -lim || e > lim || e < -lim)
            return jsk_fail(ctx, JOULE_ERR_INVALID, "pad of axis %d is out of range", k);
        dims[k] = d + b + e;
        if (dims[k] < 0)
            return jsk_fail(ctx, JOULE_ERR_INVALID, "pads shrink axis %d below 0", k);
        lo[k] = b < 0 ? -b : 0;
        keep[k] = d - lo[k] - (e < 0 ? -e : 0);
        if (keep[k] < 0)
            keep[k] = 0;
        if (mode != PAD_CONSTANT && keep[k] == 0 && dims[k] > 0)
            return jsk_fail(ctx, JOULE_ERR_INVALID, "axis %d is empty and cannot be %s-padded", k,
                            mode == PAD_EDGE ? "edge" : mode == PAD_WRAP ? "wrap" : "reflect");
    }
    if ((st = jsk_check_out(ctx, 0, in->dtype, r, dims)))
        return st;
    if (ctx->out[0]->count == 0)
        return JOULE_OK;
    size_t bytes;
    void *owned;
    if (!jsk_table_bytes(r, dims, sizeof(int64_t), &bytes))
        return jsk_fail(ctx, JOULE_ERR_INVALID, "output dims overflow");
    int64_t *maps_mem = jsk_scratch(ctx, bytes, &owned);
    if (!maps_mem)
        return jsk_fail(ctx, JOULE_ERR_NOMEM, "out of memory for index tables");
    const int64_t *maps[JOULE_MAX_RANK];
    int64_t *m = maps_mem;
    for (int k = 0; k < r; k++) {
        int64_t pre = begin[k] > 0 ? begin[k] : 0;
        for (int64_t o = 0; o < dims[k]; o++) {
            int64_t p = o - pre; /* position relative to the kept range */
            int64_t idx = (p >= 0 && p < keep[k]) ? p : map_outside(mode, p, keep[k]);
            m[o] = idx < 0 ? -1 : lo[k] + idx;
        }
        maps[k] = m;
        m += dims[k];
    }
    int64_t strides[JOULE_MAX_RANK];
    jsk_strides(r, in->dims, strides);
    jsk_mapped_copy(ctx->out[0]->data, in->data, es, r, dims, strides, maps, fill, m,
                    ctx->threads);
    free(owned);
    return JOULE_OK;
}

/* eval/cpu/shape/fill.c: ops that write a fixed pattern by position: Trilu (zero above or
 * below diagonal k of the last two dims), EyeLike (ones on diagonal k of a 2-D output of the
 * `dtype` attribute's type) and OneHot (the `on` value at each index along a new axis, `off`
 * elsewhere; indices and depth of any numeric type, truncated to integers as the spec says). */
#include <math.h>
#include <string.h>

#include "eval/cpu/shape/shape_internal.h"

/* Scalar element 0 of a numeric view as double (int64 exactly where it fits), or NAN. */
static double number_at(const joule_view *v, size_t i)
{
    switch (v->dtype) {
    case JOULE_I64: {
        int64_t x;
        memcpy(&x, (const char *)v->data + i * 8, 8);
        return (double)x;
    }
    case JOULE_U64: {
        uint64_t x;
        memcpy(&x, (const char *)v->data + i * 8, 8);
        return (double)x;
    }
    case JOULE_F64: {
        double x;
        memcpy(&x, (const char *)v->data + i * 8, 8);
        return x;
    }
    default: {
        const joule_dtype_traits *t = joule_dtype_info(v->dtype);
        return t->to_f32 ? (double)t->to_f32(v->data, i) : NAN;
    }
    }
}

static bool numeric(joule_dtype t)
{
    return t != JOULE_STRING && t != JOULE_BOOL && joule_dtype_valid((int)t) &&
           joule_dtype_info(t)->to_f32 != NULL;
}

/* ---- Trilu ---- */

bool jsk_trilu_supports(const joule_node *node, int64_t opset, int n_in,
                        const joule_view *const *in)
{
    (void)node;
    (void)opset;
    return n_in >= 1 && in[0] && in[0]->rank >= 2 && jsk_elem_size(in[0]->dtype) > 0 &&
           (n_in < 2 || !in[1] || jsk_is_index_type(in[1]->dtype));
}

joule_status jsk_trilu_run(const joule_kernel_ctx *ctx)
{
    const joule_view *x = ctx->in[0];
    int r = x->rank;
    joule_status st = jsk_check_out(ctx, 0, x->dtype, r, x->dims);
    if (st)
        return st;
    int64_t k = 0;
    if (ctx->n_in >= 2 && ctx->in[1]) {
        if (ctx->in[1]->count != 1 || !ctx->in[1]->data)
            return jsk_fail(ctx, JOULE_ERR_INVALID, "k must be a single integer");
        k = jsk_index_at(ctx->in[1], 0);
    }
    bool upper = joule_attr_int(ctx->node, "upper", 1) != 0;
    if (x->count == 0)
        return JOULE_OK;
    int64_t rows = x->dims[r - 2], cols = x->dims[r - 1];
    /* beyond +-(rows + cols) every k means the same; clamping keeps i + k from overflowing */
    int64_t lim = rows + cols;
    k = k > lim ? lim : k < -lim ? -lim : k;
    size_t es = jsk_elem_size(x->dtype);
    size_t mats = x->count / (size_t)(rows * cols), row_bytes = (size_t)cols * es;
    char *dst = ctx->out[0]->data;
    if (dst != x->data)
        memmove(dst, x->data, x->count * es);
    for (size_t m = 0; m < mats; m++) {
        for (int64_t i = 0; i < rows; i++) {
            char *row = dst + (m * (size_t)rows + (size_t)i) * row_bytes;
            int64_t edge = i + k; /* upper keeps j >= edge, lower keeps j <= edge */
            int64_t z0 = upper ? 0 : edge + 1, z1 = upper ? edge : cols;
            z0 = z0 < 0 ? 0 : z0 > cols ? cols : z0;
            z1 = z1 < 0 ? 0 : z1 > cols ? cols : z1;
            if (z1 > z0)
                memset(row + (size_t)z0 * es, 0, (size_t)(z1 - z0) * es);
        }
    }
    return JOULE_OK;
}

/* ---- EyeLike ---- */

/* The element "1" of dtype t; false when t has no numeric value. */
static bool one_of(joule_dtype t, unsigned char *elem)
{
    memset(elem, 0, JSK_MAX_ELEM);
    if (t == JOULE_BOOL) {
        elem[0] = 1;
        return true;
    }
    if (t == JOULE_F64) {
        double d = 1.0;
        memcpy(elem, &d, sizeof d);
        return true;
    }
    if (jsk_elem_size(t) == 0 || !joule_dtype_info(t)->from_f32)
        return false;
    joule_dtype_info(t)->from_f32(elem, 0, 1.0f);
    return true;
}

static joule_dtype eye_dtype(const joule_node *node, const joule_view *x)
{
    int64_t t = joule_attr_int(node, "dtype", (int64_t)x->dtype);
    return joule_dtype_valid((int)t) ? (joule_dtype)t : JOULE_UNDEFINED;
}

bool jsk_eye_like_supports(const joule_node *node, int64_t opset, int n_in,
                           const joule_view *const *in)
{
    (void)opset;
    unsigned char one[JSK_MAX_ELEM];
    return n_in >= 1 && in[0] && in[0]->rank == 2 && one_of(eye_dtype(node, in[0]), one);
}

joule_status jsk_eye_like_run(const joule_kernel_ctx *ctx)
{
    const joule_view *x = ctx->in[0];
    joule_dtype t = eye_dtype(ctx->node, x);
    unsigned char one[JSK_MAX_ELEM];
    if (!one_of(t, one))
        return jsk_fail(ctx, JOULE_ERR_UNSUPPORTED, "dtype %d", (int)t);
    joule_status st = jsk_check_out(ctx, 0, t, 2, x->dims);
    if (st || x->count == 0)
        return st;
    int64_t rows = x->dims[0], cols = x->dims[1];
    int64_t k = joule_attr_int(ctx->node, "k", 0);
    size_t es = jsk_elem_size(t);
    char *dst = ctx->out[0]->data;
    memset(dst, 0, x->count * es);
    for (int64_t i = 0; i < rows; i++) {
        if (k >= cols || k <= -rows) /* no diagonal inside the matrix (and no overflow below) */
            break;
        int64_t j = i + k;
        if (j >= 0 && j < cols)
            memcpy(dst + ((size_t)i * (size_t)cols + (size_t)j) * es, one, es);
    }
    return JOULE_OK;
}

/* ---- OneHot ---- */

bool jsk_one_hot_supports(const joule_node *node, int64_t opset, int n_in,
                          const joule_view *const *in)
{
    (void)node;
    (void)opset;
    return n_in >= 3 && in[0] && in[1] && in[2] && numeric(in[0]->dtype) &&
           numeric(in[1]->dtype) && jsk_elem_size(in[2]->dtype) > 0;
}

joule_status jsk_one_hot_run(const joule_kernel_ctx *ctx)
{
    const joule_view *ind = ctx->in[0], *dv = ctx->in[1], *vals = ctx->in[2];
    if (dv->count != 1 || !dv->data)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "depth must hold one value");
    if (vals->count != 2 || !vals->data)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "values must hold [off, on]");
    double dd = number_at(dv, 0);
    if (!(dd >= 1.0 && dd < 9.0e18))
        return jsk_fail(ctx, JOULE_ERR_INVALID, "depth %g must be at least 1", dd);
    int64_t depth = (int64_t)dd;
    int r = ind->rank + 1;
    if (r > JOULE_MAX_RANK)
        return jsk_fail(ctx, JOULE_ERR_UNSUPPORTED, "output rank %d exceeds %d", r, JOULE_MAX_RANK);
    int axis;
    joule_status st = jsk_axis(ctx, joule_attr_int(ctx->node, "axis", -1), r, "axis", &axis);
    if (st)
        return st;
    int64_t dims[JOULE_MAX_RANK];
    for (int i = 0, j = 0; i < r; i++)
        dims[i] = i == axis ? depth : ind->dims[j++];
    if ((st = jsk_check_out(ctx, 0, vals->dtype, r, dims)))
        return st;
    if (ctx->out[0]->count == 0)
        return JOULE_OK;
    if (!ind->data)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "indices have no data");
    size_t es = jsk_elem_size(vals->dtype);
    const char *off = vals->data, *on = (const char *)vals->data + es;
    char *dst = ctx->out[0]->data;
    jsk_fill(dst, off, es, ctx->out[0]->count);
    size_t inner = 1;
    for (int i = axis; i < ind->rank; i++)
        inner *= (size_t)ind->dims[i];
    for (size_t i = 0; i < ind->count; i++) {
        double v = number_at(ind, i);
        if (!(v > -9.0e18 && v < 9.0e18))
            continue; /* NaN or far out of range: all off */
        int64_t x = (int64_t)v;
        if (x < 0 && ctx->opset >= 11)
            x += depth;
        if (x < 0 || x >= depth)
            continue;
        size_t o = i / inner, in = i % inner;
        memcpy(dst + ((o * (size_t)depth + (size_t)x) * inner + in) * es, on, es);
    }
    return JOULE_OK;
}

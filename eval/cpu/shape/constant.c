/* eval/cpu/shape/constant.c: ops that make tensors from attributes and scalars: Constant
 * (value, sparse_value, value_float(s), value_int(s)), ConstantOfShape (the one-element `value` tensor,
 * float 0 by default, repeated over a shape input) and Range (float, double, int16/32/64; the
 * count is max(ceil((limit - start) / delta), 0) and element i is start + i * delta). */
#include <math.h>
#include <string.h>

#include "eval/cpu/shape/shape_internal.h"

/* What a Constant node holds: dtype, dims and the bytes to copy. */
typedef struct const_src {
    joule_dtype dtype;
    int rank;
    int64_t dims[JOULE_MAX_RANK];
    const void *data;
    size_t bytes;
} const_src;

static bool constant_source(const joule_node *node, const_src *c)
{
    memset(c, 0, sizeof *c);
    const joule_attr *a;
    if ((a = joule_node_attr(node, "value")) || (a = joule_node_attr(node, "sparse_value"))) {
        const joule_tensor *t = a->t; /* sparse_value: densified by the loader */
        if ((a->type != JOULE_ATTR_TENSOR && a->type != JOULE_ATTR_SPARSE_TENSOR) || !t ||
            !jsk_bytes_copyable(t->dtype) ||
            t->rank > JOULE_MAX_RANK || (t->count && !t->data))
            return false;
        c->dtype = t->dtype;
        c->rank = t->rank;
        memcpy(c->dims, t->dims, (size_t)t->rank * sizeof *t->dims);
        c->data = t->data;
        c->bytes = joule_dtype_bytes(t->dtype, t->count);
        return true;
    }
    if ((a = joule_node_attr(node, "value_float"))) {
        if (a->type != JOULE_ATTR_FLOAT)
            return false;
        *c = (const_src){.dtype = JOULE_F32, .rank = 0, .data = &a->f, .bytes = sizeof a->f};
        return true;
    }
    if ((a = joule_node_attr(node, "value_int"))) {
        if (a->type != JOULE_ATTR_INT)
            return false;
        *c = (const_src){.dtype = JOULE_I64, .rank = 0, .data = &a->i, .bytes = sizeof a->i};
        return true;
    }
    if ((a = joule_node_attr(node, "value_floats"))) {
        if (a->type != JOULE_ATTR_FLOATS)
            return false;
        *c = (const_src){.dtype = JOULE_F32, .rank = 1, .dims = {(int64_t)a->count},
                         .data = a->floats, .bytes = a->count * sizeof *a->floats};
        return true;
    }
    if ((a = joule_node_attr(node, "value_ints"))) {
        if (a->type != JOULE_ATTR_INTS)
            return false;
        *c = (const_src){.dtype = JOULE_I64, .rank = 1, .dims = {(int64_t)a->count},
                         .data = a->ints, .bytes = a->count * sizeof *a->ints};
        return true;
    }
    return false; /* value_string(s), or nothing */
}

bool jsk_constant_supports(const joule_node *node, int64_t opset, int n_in,
                           const joule_view *const *in)
{
    (void)opset;
    (void)n_in;
    (void)in;
    const_src c;
    return constant_source(node, &c);
}

joule_status jsk_constant_run(const joule_kernel_ctx *ctx)
{
    const_src c;
    if (!constant_source(ctx->node, &c))
        return jsk_fail(ctx, JOULE_ERR_UNSUPPORTED,
                        "needs one of value, value_float(s), value_int(s) of a numeric type");
    joule_status st = jsk_check_out(ctx, 0, c.dtype, c.rank, c.dims);
    if (st)
        return st;
    if (joule_dtype_bytes(c.dtype, ctx->out[0]->count) != c.bytes)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "value holds %zu bytes, the output %zu", c.bytes,
                        joule_dtype_bytes(c.dtype, ctx->out[0]->count));
    if (c.bytes)
        memcpy(ctx->out[0]->data, c.data, c.bytes);
    return JOULE_OK;
}

/* The fill element of ConstantOfShape: the value tensor's one element, or float 0. */
static bool fill_value(const joule_node *node, joule_dtype *dtype, const void **elem)
{
    static const float zero = 0.0f;
    const joule_attr *a = joule_node_attr(node, "value");
    if (!a) {
        *dtype = JOULE_F32;
        *elem = &zero;
        return true;
    }
    if (a->type != JOULE_ATTR_TENSOR || !a->t || a->t->count != 1 || !a->t->data ||
        jsk_elem_size(a->t->dtype) == 0)
        return false;
    *dtype = a->t->dtype;
    *elem = a->t->data;
    return true;
}

bool jsk_constant_of_shape_supports(const joule_node *node, int64_t opset, int n_in,
                                    const joule_view *const *in)
{
    (void)opset;
    joule_dtype t;
    const void *e;
    return n_in >= 1 && in[0] && jsk_is_index_type(in[0]->dtype) && fill_value(node, &t, &e);
}

joule_status jsk_constant_of_shape_run(const joule_kernel_ctx *ctx)
{
    joule_dtype t;
    const void *elem;
    if (!fill_value(ctx->node, &t, &elem))
        return jsk_fail(ctx, JOULE_ERR_INVALID, "value must be a one-element numeric tensor");
    int64_t dims[JOULE_MAX_RANK];
    size_t n;
    joule_status st = jsk_read_ints(ctx, ctx->in[0], "shape", dims, JOULE_MAX_RANK, &n);
    if (st)
        return st;
    for (size_t k = 0; k < n; k++)
        if (dims[k] < 0)
            return jsk_fail(ctx, JOULE_ERR_INVALID, "shape has a negative dim %lld",
                            (long long)dims[k]);
    if ((st = jsk_check_out(ctx, 0, t, (int)n, dims)))
        return st;
    jsk_fill(ctx->out[0]->data, elem, jsk_elem_size(t), ctx->out[0]->count);
    return JOULE_OK;
}

static bool range_dtype(joule_dtype t)
{
    return t == JOULE_F32 || t == JOULE_F64 || t == JOULE_I16 || t == JOULE_I32 || t == JOULE_I64;
}

bool jsk_range_supports(const joule_node *node, int64_t opset, int n_in,
                        const joule_view *const *in)
{
    (void)node;
    (void)opset;
    if (n_in < 3 || !in[0] || !in[1] || !in[2] || !range_dtype(in[0]->dtype))
        return false;
    return in[1]->dtype == in[0]->dtype && in[2]->dtype == in[0]->dtype;
}

static bool scalar_int(const joule_view *v, int64_t *out)
{
    switch (v->dtype) {
    case JOULE_I16: {
        int16_t x;
        memcpy(&x, v->data, 2);
        *out = x;
        return true;
    }
    case JOULE_I32: {
        int32_t x;
        memcpy(&x, v->data, 4);
        *out = x;
        return true;
    }
    case JOULE_I64:
        memcpy(out, v->data, 8);
        return true;
    default:
        return false;
    }
}

static double scalar_float(const joule_view *v)
{
    if (v->dtype == JOULE_F64) {
        double d;
        memcpy(&d, v->data, 8);
        return d;
    }
    float f;
    memcpy(&f, v->data, 4);
    return f;
}

joule_status jsk_range_run(const joule_kernel_ctx *ctx)
{
    const joule_view *const *in = ctx->in;
    joule_dtype t = in[0]->dtype;
    for (int i = 0; i < 3; i++)
        if (!in[i] || in[i]->dtype != t || in[i]->count != 1 || !in[i]->data)
            return jsk_fail(ctx, JOULE_ERR_INVALID, "start, limit and delta must be %s scalars",
                            joule_dtype_name(t));
    int64_t n = 0;
    void *dst;
    joule_status st;
    if (t == JOULE_F32 || t == JOULE_F64) {
        double start = scalar_float(in[0]), limit = scalar_float(in[1]),
               delta = scalar_float(in[2]);
        if (delta == 0.0 || !isfinite(start) || !isfinite(limit) || !isfinite(delta))
            return jsk_fail(ctx, JOULE_ERR_INVALID, "start, limit and delta must be finite, delta non-zero");
        /* the difference is taken in the element type, as the reference kernels do */
        double diff = t == JOULE_F32 ? (double)((float)limit - (float)start) : limit - start;
        double q = ceil(diff / delta);
        if (q > (double)((int64_t)1 << 52))
            return jsk_fail(ctx, JOULE_ERR_INVALID, "range has too many elements");
        n = q > 0 ? (int64_t)q : 0;
        if ((st = jsk_check_out(ctx, 0, t, 1, &n)))
            return st;
        dst = ctx->out[0]->data;
        for (int64_t i = 0; i < n; i++) {
            double v = start + (double)i * delta;
            if (t == JOULE_F32) {
                float f = (float)v;
                memcpy((char *)dst + i * 4, &f, 4);
            } else {
                memcpy((char *)dst + i * 8, &v, 8);
            }
        }
        return JOULE_OK;
    }
    int64_t start, limit, delta, diff;
    if (!scalar_int(in[0], &start) || !scalar_int(in[1], &limit) || !scalar_int(in[2], &delta))
        return jsk_fail(ctx, JOULE_ERR_UNSUPPORTED, "dtype %s", joule_dtype_name(t));
    if (delta == 0)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "delta is 0");
    if (__builtin_sub_overflow(limit, start, &diff))
        return jsk_fail(ctx, JOULE_ERR_INVALID, "limit - start overflows");
    /* ceil(diff / delta) in exact integer arithmetic */
    if ((diff > 0) == (delta > 0) && diff != 0) {
        int64_t q = diff / delta, rem = diff % delta;
        n = rem != 0 ? q + 1 : q;
    }
    if ((st = jsk_check_out(ctx, 0, t, 1, &n)))
        return st;
    dst = ctx->out[0]->data;
    /* every value lies between start and limit, so it fits the element type */
    for (int64_t i = 0; i < n; i++) {
        int64_t v = start + i * delta;
        if (t == JOULE_I16) {
            int16_t x = (int16_t)v;
            memcpy((char *)dst + i * 2, &x, 2);
        } else if (t == JOULE_I32) {
            int32_t x = (int32_t)v;
            memcpy((char *)dst + i * 4, &x, 4);
        } else {
            memcpy((char *)dst + i * 8, &v, 8);
        }
    }
    return JOULE_OK;
}

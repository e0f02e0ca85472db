/* eval/cpu/shape/scatter.c: ScatterElements (and Scatter, its opset 9-10 name) and ScatterND.
 * The output starts as a copy of data; updates are then written at the indexed elements
 * (ScatterElements) or slices (ScatterND), replaced or combined by `reduction` (opset 16: add,
 * mul; 18: max, min; on float, double, int32 and int64). Every index is checked before anything
 * is written, so a hostile index is an error naming the node and the output stays untouched. */
#include <string.h>

#include "eval/cpu/shape/shape_internal.h"

enum red { RED_NONE, RED_ADD, RED_MUL, RED_MAX, RED_MIN, RED_BAD };

static enum red reduction_of(const joule_node *node, int64_t opset)
{
    if (opset < 16) /* no reduction attribute before opset 16 */
        return RED_NONE;
    if (jsk_attr_is(node, "reduction", "none", "none"))
        return RED_NONE;
    if (jsk_attr_is(node, "reduction", "none", "add"))
        return RED_ADD;
    if (jsk_attr_is(node, "reduction", "none", "mul"))
        return RED_MUL;
    if (opset >= 18 && jsk_attr_is(node, "reduction", "none", "max"))
        return RED_MAX;
    if (opset >= 18 && jsk_attr_is(node, "reduction", "none", "min"))
        return RED_MIN;
    return RED_BAD;
}

static bool reducible(joule_dtype t)
{
    return t == JOULE_F32 || t == JOULE_F64 || t == JOULE_I32 || t == JOULE_I64;
}

#define COMBINE(T)                                                                                 \
    do {                                                                                           \
        T a, b;                                                                                    \
        memcpy(&a, dst, sizeof a);                                                                 \
        memcpy(&b, src, sizeof b);                                                                 \
        switch (r) {                                                                               \
        case RED_ADD: a = (T)(a + b); break;                                                       \
        case RED_MUL: a = (T)(a * b); break;                                                       \
        case RED_MAX: a = a > b ? a : b; break;                                                    \
        default: a = a < b ? a : b; break;                                                         \
        }                                                                                          \
        memcpy(dst, &a, sizeof a);                                                                 \
    } while (0)

/* dst[0..n) (op)= src[0..n), elements of type t. Integer add/mul wrap like the hardware does. */
static void combine(joule_dtype t, enum red r, char *dst, const char *src, size_t n, size_t es)
{
    if (r == RED_NONE) {
        memcpy(dst, src, n * es);
        return;
    }
    for (size_t i = 0; i < n; i++, dst += es, src += es) {
        switch (t) {
        case JOULE_F32: COMBINE(float); break;
        case JOULE_F64: COMBINE(double); break;
        case JOULE_I32: {
            if (r == RED_ADD || r == RED_MUL) { /* in uint32 so overflow wraps, not UB */
                uint32_t a, b;
                memcpy(&a, dst, 4);
                memcpy(&b, src, 4);
                a = r == RED_ADD ? a + b : a * b;
                memcpy(dst, &a, 4);
            } else {
                COMBINE(int32_t);
            }
            break;
        }
        default: {
            if (r == RED_ADD || r == RED_MUL) {
                uint64_t a, b;
                memcpy(&a, dst, 8);
                memcpy(&b, src, 8);
                a = r == RED_ADD ? a + b : a * b;
                memcpy(dst, &a, 8);
            } else {
                COMBINE(int64_t);
            }
            break;
        }
        }
    }
}

static bool scatter_common_supports(const joule_node *node, int64_t opset, int n_in,
                                    const joule_view *const *in)
{
    if (n_in < 3 || !in[0] || !in[1] || !in[2] || jsk_elem_size(in[0]->dtype) == 0 ||
        in[2]->dtype != in[0]->dtype || !jsk_is_index_type(in[1]->dtype))
        return false;
    enum red r = reduction_of(node, opset);
    return r == RED_NONE || (r != RED_BAD && reducible(in[0]->dtype));
}

/* Output 0 = data (checked to be planned with data's dtype and dims). */
static joule_status copy_data(const joule_kernel_ctx *ctx)
{
    const joule_view *data = ctx->in[0];
    joule_status st = jsk_check_out(ctx, 0, data->dtype, data->rank, data->dims);
    if (st)
        return st;
    size_t bytes = jsk_elem_size(data->dtype) * data->count;
    if (bytes && ctx->out[0]->data != data->data)
        memmove(ctx->out[0]->data, data->data, bytes);
    return JOULE_OK;
}

bool jsk_scatter_elements_supports(const joule_node *node, int64_t opset, int n_in,
                                   const joule_view *const *in)
{
    return scatter_common_supports(node, opset, n_in, in) && in[0]->rank >= 1 &&
           in[1]->rank == in[0]->rank && in[2]->rank == in[0]->rank;
}

joule_status jsk_scatter_elements_run(const joule_kernel_ctx *ctx)
{
    const joule_view *data = ctx->in[0], *ind = ctx->in[1], *upd = ctx->in[2];
    int r = data->rank;
    int axis;
    joule_status st = jsk_axis(ctx, joule_attr_int(ctx->node, "axis", 0), r, "axis", &axis);
    if (st)
        return st;
    enum red red = reduction_of(ctx->node, ctx->opset);
    if (red == RED_BAD || (red != RED_NONE && !reducible(data->dtype)))
        return jsk_fail(ctx, JOULE_ERR_UNSUPPORTED, "reduction on %s",
                        joule_dtype_name(data->dtype));
    if (ind->rank != r || upd->rank != r)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "data, indices and updates must share a rank");
    for (int k = 0; k < r; k++) {
        if (upd->dims[k] != ind->dims[k])
            return jsk_fail(ctx, JOULE_ERR_INVALID, "updates and indices differ in dim %d", k);
        if (k != axis && ind->dims[k] > data->dims[k])
            return jsk_fail(ctx, JOULE_ERR_INVALID,
                            "indices dim %d (%lld) exceeds the data's (%lld)", k,
                            (long long)ind->dims[k], (long long)data->dims[k]);
    }
    if (ind->count && (!ind->data || !upd->data))
        return jsk_fail(ctx, JOULE_ERR_INVALID, "indices or updates have no data");
    const int64_t len = data->dims[axis];
    for (size_t i = 0; i < ind->count; i++) {
        int64_t x = jsk_index_at(ind, i);
        if (x < -len || x >= len)
            return jsk_fail(ctx, JOULE_ERR_INVALID,
                            "index %lld (element %zu) is out of range for axis %d of length %lld",
                            (long long)x, i, axis, (long long)len);
    }
    if ((st = copy_data(ctx)))
        return st;
    size_t es = jsk_elem_size(data->dtype);
    int64_t strides[JOULE_MAX_RANK], idx[JOULE_MAX_RANK] = {0};
    jsk_strides(r, data->dims, strides);
    char *dst = ctx->out[0]->data;
    const char *src = upd->data;
    for (size_t i = 0; i < ind->count; i++) {
        int64_t x = jsk_index_at(ind, i);
        if (x < 0)
            x += len;
        size_t off = 0;
        for (int k = 0; k < r; k++)
            off += (size_t)((k == axis ? x : idx[k]) * strides[k]);
        combine(data->dtype, red, dst + off * es, src + i * es, 1, es);
        for (int k = r - 1; k >= 0; k--) {
            if (++idx[k] < ind->dims[k])
                break;
            idx[k] = 0;
        }
    }
    return JOULE_OK;
}

bool jsk_scatter_nd_supports(const joule_node *node, int64_t opset, int n_in,
                             const joule_view *const *in)
{
    return scatter_common_supports(node, opset, n_in, in) && in[1]->rank >= 1;
}

joule_status jsk_scatter_nd_run(const joule_kernel_ctx *ctx)
{
    const joule_view *data = ctx->in[0], *ind = ctx->in[1], *upd = ctx->in[2];
    int r = data->rank, q = ind->rank;
    enum red red = reduction_of(ctx->node, ctx->opset);
    if (red == RED_BAD || (red != RED_NONE && !reducible(data->dtype)))
        return jsk_fail(ctx, JOULE_ERR_UNSUPPORTED, "reduction on %s",
                        joule_dtype_name(data->dtype));
    if (q < 1)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "indices must have rank >= 1");
    int64_t kd = ind->dims[q - 1];
    if (kd < 1 || kd > r)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "index tuples of length %lld for data rank %d",
                        (long long)kd, r);
    int k = (int)kd;
    /* updates = indices.dims[:-1] + data.dims[k:] */
    bool ok = upd->rank == q - 1 + r - k;
    for (int i = 0; ok && i < q - 1; i++)
        ok = upd->dims[i] == ind->dims[i];
    for (int i = k; ok && i < r; i++)
        ok = upd->dims[q - 1 + i - k] == data->dims[i];
    if (!ok)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "updates do not have the shape "
                                                "indices.shape[:-1] + data.shape[k:]");
    size_t tuples = ind->count / (size_t)k, slice = 1;
    for (int i = k; i < r; i++)
        slice *= (size_t)data->dims[i];
    if (ind->count && (!ind->data || !upd->data))
        return jsk_fail(ctx, JOULE_ERR_INVALID, "indices or updates have no data");
    for (size_t i = 0; i < ind->count; i++) {
        int64_t x = jsk_index_at(ind, i), len = data->dims[i % (size_t)k];
        if (x < -len || x >= len)
            return jsk_fail(ctx, JOULE_ERR_INVALID,
                            "index %lld (element %zu) is out of range for axis %zu of length %lld",
                            (long long)x, i, i % (size_t)k, (long long)len);
    }
    joule_status st = copy_data(ctx);
    if (st)
        return st;
    size_t es = jsk_elem_size(data->dtype);
    int64_t strides[JOULE_MAX_RANK];
    jsk_strides(r, data->dims, strides);
    char *dst = ctx->out[0]->data;
    const char *src = upd->data;
    for (size_t t = 0; t < tuples; t++) {
        size_t off = 0;
        for (int j = 0; j < k; j++) {
            int64_t x = jsk_index_at(ind, t * (size_t)k + (size_t)j);
            if (x < 0)
                x += data->dims[j];
            off += (size_t)(x * strides[j]);
        }
        combine(data->dtype, red, dst + off * es, src + t * slice * es, slice, es);
    }
    return JOULE_OK;
}

/* eval/cpu/shape/topk.c: TopK along one axis: the k largest (or smallest, opset 11) values and
 * their int64 indices, in sorted order (also when sorted=0, which allows any order). Equal
 * values keep the lower index first, as the spec asks; NaN ranks above every number. k is an
 * attribute in opset 1 and a one-element input from 10. Each slice along the axis is sorted
 * in scratch planned at prepare. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/cpu/shape/shape_internal.h"

typedef struct tk_item {
    double key;   /* the value, for float types */
    int64_t ikey; /* the value, for integer types (exact) */
    int64_t idx;
} tk_item;

static bool topk_dtype(joule_dtype t)
{
    switch (t) {
    case JOULE_F32: case JOULE_F64: case JOULE_F16: case JOULE_BF16: case JOULE_I8:
    case JOULE_U8: case JOULE_I16: case JOULE_U16: case JOULE_I32: case JOULE_U32:
    case JOULE_I64:
        return true;
    default:
        return false;
    }
}

/* -1 when a ranks before b among the largest. */
static int cmp_double(double a, double b)
{
    bool na = isnan(a), nb = isnan(b);
    if (na || nb)
        return na && nb ? 0 : na ? 1 : -1;
    return a < b ? -1 : a > b ? 1 : 0;
}

static int by_idx(const tk_item *a, const tk_item *b)
{
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static int largest_f(const void *pa, const void *pb)
{
    const tk_item *a = pa, *b = pb;
    int c = cmp_double(b->key, a->key);
    return c ? c : by_idx(a, b);
}
static int smallest_f(const void *pa, const void *pb)
{
    const tk_item *a = pa, *b = pb;
    int c = cmp_double(a->key, b->key);
    return c ? c : by_idx(a, b);
}
static int largest_i(const void *pa, const void *pb)
{
    const tk_item *a = pa, *b = pb;
    int c = a->ikey > b->ikey ? -1 : a->ikey < b->ikey;
    return c ? c : by_idx(a, b);
}
static int smallest_i(const void *pa, const void *pb)
{
    const tk_item *a = pa, *b = pb;
    int c = a->ikey < b->ikey ? -1 : a->ikey > b->ikey;
    return c ? c : by_idx(a, b);
}

/* Element e of src as a sort key: integers exactly in ikey, floats in key. */
static void load_key(joule_dtype t, const joule_dtype_traits *tr, const char *src, size_t e,
                     tk_item *it)
{
    switch (t) {
    case JOULE_I64: memcpy(&it->ikey, src + e * 8, 8); break;
    case JOULE_I32: { int32_t v; memcpy(&v, src + e * 4, 4); it->ikey = v; break; }
    case JOULE_U32: { uint32_t v; memcpy(&v, src + e * 4, 4); it->ikey = v; break; }
    case JOULE_I16: { int16_t v; memcpy(&v, src + e * 2, 2); it->ikey = v; break; }
    case JOULE_U16: { uint16_t v; memcpy(&v, src + e * 2, 2); it->ikey = v; break; }
    case JOULE_I8: it->ikey = (int8_t)src[e]; break;
    case JOULE_U8: it->ikey = (unsigned char)src[e]; break;
    case JOULE_F64: memcpy(&it->key, src + e * 8, 8); break;
    default: it->key = tr->to_f32(src, e); break;
    }
}

bool jsk_topk_supports(const joule_node *node, int64_t opset, int n_in,
                       const joule_view *const *in)
{
    (void)node;
    if (n_in < 1 || !in[0] || in[0]->rank < 1 || !topk_dtype(in[0]->dtype))
        return false;
    return opset < 10 || (n_in >= 2 && in[1] && jsk_is_index_type(in[1]->dtype));
}

static joule_status topk_axis(const joule_kernel_ctx *ctx, int *axis)
{
    return jsk_axis(ctx, joule_attr_int(ctx->node, "axis", -1), ctx->in[0]->rank, "axis", axis);
}

joule_status jsk_topk_prepare(const joule_kernel_ctx *ctx, void **state, size_t *scratch_bytes)
{
    int axis;
    joule_status st = topk_axis(ctx, &axis);
    if (st)
        return st;
    int64_t n = ctx->in[0]->dims[axis];
    if (n < 0 || (uint64_t)n > SIZE_MAX / sizeof(tk_item))
        return jsk_fail(ctx, JOULE_ERR_INVALID, "axis too long");
    return jsk_prepare_scratch(ctx, (size_t)n * sizeof(tk_item), state, scratch_bytes);
}

joule_status jsk_topk_run(const joule_kernel_ctx *ctx)
{
    const joule_view *x = ctx->in[0];
    int r = x->rank, axis;
    joule_status st = topk_axis(ctx, &axis);
    if (st)
        return st;
    int64_t k;
    if (ctx->opset < 10) {
        k = joule_attr_int(ctx->node, "k", -1);
    } else {
        const joule_view *kv = ctx->n_in >= 2 ? ctx->in[1] : NULL;
        if (!kv || kv->count != 1 || !kv->data || !jsk_is_index_type(kv->dtype))
            return jsk_fail(ctx, JOULE_ERR_INVALID, "K must be a one-element integer tensor");
        k = jsk_index_at(kv, 0);
    }
    int64_t n = x->dims[axis];
    if (k < 0 || k > n)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "k = %lld is outside [0, %lld]", (long long)k,
                        (long long)n);
    int64_t dims[JOULE_MAX_RANK];
    memcpy(dims, x->dims, sizeof dims);
    dims[axis] = k;
    if ((st = jsk_check_out(ctx, 0, x->dtype, r, dims)))
        return st;
    bool want_idx = ctx->n_out >= 2 && ctx->out[1];
    if (want_idx && (st = jsk_check_out(ctx, 1, JOULE_I64, r, dims)))
        return st;
    if (k == 0 || x->count == 0)
        return JOULE_OK;
    bool largest = ctx->opset < 11 || joule_attr_int(ctx->node, "largest", 1) != 0;
    bool exact = joule_dtype_info(x->dtype)->is_integer;
    int (*cmp)(const void *, const void *) = exact ? (largest ? largest_i : smallest_i)
                                                   : (largest ? largest_f : smallest_f);
    void *owned;
    tk_item *items = jsk_scratch(ctx, (size_t)n * sizeof *items, &owned);
    if (!items)
        return jsk_fail(ctx, JOULE_ERR_NOMEM, "out of memory");
    size_t es = jsk_elem_size(x->dtype), outer = 1, inner = 1;
    for (int i = 0; i < axis; i++)
        outer *= (size_t)x->dims[i];
    for (int i = axis + 1; i < r; i++)
        inner *= (size_t)x->dims[i];
    const joule_dtype_traits *tr = joule_dtype_info(x->dtype);
    const char *src = x->data;
    char *vals = ctx->out[0]->data;
    int64_t *idx = want_idx ? ctx->out[1]->data : NULL;
    for (size_t o = 0; o < outer; o++) {
        for (size_t in = 0; in < inner; in++) {
            size_t base = o * (size_t)n * inner + in;
            for (int64_t j = 0; j < n; j++) {
                size_t e = base + (size_t)j * inner;
                items[j].idx = j;
                load_key(x->dtype, tr, src, e, &items[j]);
            }
            qsort(items, (size_t)n, sizeof *items, cmp);
            size_t obase = o * (size_t)k * inner + in;
            for (int64_t j = 0; j < k; j++) {
                size_t d = obase + (size_t)j * inner;
                memcpy(vals + d * es, src + (base + (size_t)items[j].idx * inner) * es, es);
                if (idx)
                    memcpy(&idx[d], &items[j].idx, sizeof(int64_t));
            }
        }
    }
    free(owned);
    return JOULE_OK;
}

/* formats/ops/infer_reduce.c: shape/dtype inference for reductions: Reduce* (axes as attribute,
 * or as input from ReduceSum-13 / others-18; keepdims; noop_with_empty_axes), ArgMax/ArgMin
 * (keepdims, select_last_index), and CumSum. ReduceSum/Prod/Min/Max compute small known integer
 * values. */
#include <stdlib.h>
#include <string.h>

#include "formats/ops/infer_util.h"

/* Opset from which op_type takes axes as an input instead of an attribute. */
static int64_t axes_input_opset(const char *op)
{
    return strcmp(op, "ReduceSum") == 0 ? 13 : 18;
}

static joule_dim combine(const char *op, joule_dim acc, joule_dim v, bool first)
{
    if (first)
        return ji_pv_known(v) ? v : ji_pv_unknown(NULL);
    if (!ji_pv_known(acc) || !ji_pv_known(v))
        return ji_pv_unknown(NULL);
    int64_t a = acc.size, b = v.size, r;
    if (!strcmp(op, "ReduceSum")) {
        if (__builtin_add_overflow(a, b, &r))
            return ji_pv_unknown(NULL);
    } else if (!strcmp(op, "ReduceProd")) {
        if (__builtin_mul_overflow(a, b, &r))
            return ji_pv_unknown(NULL);
    } else if (!strcmp(op, "ReduceMin")) {
        r = a < b ? a : b;
    } else if (!strcmp(op, "ReduceMax")) {
        r = a > b ? a : b;
    } else {
        return ji_pv_unknown(NULL);
    }
    return r == JOULE_INFER_UNKNOWN ? ji_pv_unknown(NULL) : ji_pv_c(r);
}

static joule_status reduce_values(joule_infer_ctx *c, const bool *red, const joule_shape *y)
{
    const char *op = c->node->op_type;
    if (strcmp(op, "ReduceSum") && strcmp(op, "ReduceProd") && strcmp(op, "ReduceMin") &&
        strcmp(op, "ReduceMax"))
        return JOULE_OK;
    if (!ji_out_present(c, 0) || !joule_shape_is_concrete(y))
        return JOULE_OK;
    ji_pv p, o;
    if (!ji_pv_load(c, 0, &p))
        return JOULE_OK;
    if (p.n == 0 || !ji_pv_matches(&p, ji_in_shape(c, 0))) { /* empty: not worth it */
        ji_pv_free(&p);
        return JOULE_OK;
    }
    int64_t dims[JOULE_MAX_RANK];
    for (int i = 0; i < y->rank; i++)
        dims[i] = y->dims[i].size;
    joule_status st = JOULE_OK;
    if (ji_pv_init(&o, p.dtype, y->rank, dims)) {
        bool *seen = calloc(o.n ? o.n : 1, sizeof *seen);
        if (!seen) {
            ji_pv_free(&o);
            ji_pv_free(&p);
            return ji_infer_nomem(c);
        }
        for (size_t k = 0; k < p.n; k++) {
            /* output index: the input's coordinates with the reduced ones dropped */
            size_t rem = k, out = 0, stride = 1;
            for (int a = p.rank - 1; a >= 0; a--) {
                size_t coord = rem % (size_t)p.dims[a];
                rem /= (size_t)p.dims[a];
                if (!red[a]) {
                    out += coord * stride;
                    stride *= (size_t)p.dims[a];
                }
            }
            o.e[out] = combine(op, o.e[out], p.e[k], !seen[out]);
            seen[out] = true;
        }
        free(seen);
        st = ji_pv_store(c, 0, &o);
    }
    ji_pv_free(&p);
    return st;
}

joule_status ji_reduce(joule_infer_ctx *c)
{
    const joule_shape *x = ji_in_shape(c, 0);
    joule_dtype dt = ji_in_dtype(c, 0);
    if (!x) {
        ji_out_set(c, 0, dt, NULL);
        return JOULE_OK;
    }
    bool keep = joule_attr_int(c->node, "keepdims", 1) != 0;
    int64_t axes[2 * JOULE_MAX_RANK];
    size_t n = 0;
    bool known = true;
    if (c->opset < axes_input_opset(c->node->op_type)) {
        const int64_t *v;
        if (ji_attr_ints(c->node, "axes", &v, &n)) {
            if (n > 2 * JOULE_MAX_RANK)
                return ji_infer_fail(c, "axes has %zu entries", n);
            if (n)
                memcpy(axes, v, n * sizeof *v);
        }
    } else if (ji_in_io(c, 1)) {
        known = ji_in_ints(c, 1, axes, 2 * JOULE_MAX_RANK, &n);
        if (!known) {
            int64_t len = ji_in_len(c, 1);
            joule_shape y;
            if (keep)
                ji_shape_set_rank(&y, x->rank);
            else if (len > 0 && len <= x->rank)
                ji_shape_set_rank(&y, x->rank - (int)len);
            ji_out_set(c, 0, dt, keep || (len > 0 && len <= x->rank) ? &y : NULL);
            return JOULE_OK;
        }
    }
    bool red[JOULE_MAX_RANK] = {false};
    if (n == 0) {
        if (joule_attr_int(c->node, "noop_with_empty_axes", 0)) {
            ji_out_like_input(c, 0, 0);
            return JOULE_OK;
        }
        for (int i = 0; i < x->rank; i++)
            red[i] = true;
    }
    for (size_t k = 0; k < n; k++) {
        int a;
        joule_status st = ji_norm_axis(c, axes[k], x->rank, "axis", &a);
        if (st)
            return st;
        red[a] = true;
    }
    joule_shape y = {.rank = 0};
    for (int i = 0; i < x->rank; i++) {
        if (!red[i])
            y.dims[y.rank++] = x->dims[i];
        else if (keep)
            y.dims[y.rank++] = ji_dim_c(1);
    }
    ji_out_set(c, 0, dt, &y);
    return reduce_values(c, red, &y);
}

joule_status ji_argmax(joule_infer_ctx *c)
{
    const joule_shape *x = ji_in_shape(c, 0);
    if (!x) {
        ji_out_set(c, 0, JOULE_I64, NULL);
        return JOULE_OK;
    }
    int axis;
    joule_status st = ji_norm_axis(c, joule_attr_int(c->node, "axis", 0), x->rank, "axis", &axis);
    if (st)
        return st;
    bool keep = joule_attr_int(c->node, "keepdims", 1) != 0;
    joule_shape y = {.rank = 0};
    for (int i = 0; i < x->rank; i++) {
        if (i != axis)
            y.dims[y.rank++] = x->dims[i];
        else if (keep)
            y.dims[y.rank++] = ji_dim_c(1);
    }
    ji_out_set(c, 0, JOULE_I64, &y);
    return JOULE_OK;
}

joule_status ji_cumsum(joule_infer_ctx *c)
{
    ji_out_like_input(c, 0, 0);
    return JOULE_OK;
}

/* formats/ops/infer_elementwise.c: shape/dtype inference for elementwise operators (unary,
 * broadcasting binary, comparisons, variadic Min/Max/Sum/Mean, Where, PRelu, Clip), with data
 * propagation of small integer tensors through Add/Sub/Mul/Div, comparisons and Where. */
#include <string.h>

#include "formats/ops/infer_util.h"

/* Flat index into an input of shape (rank, dims) broadcast to (orank, odims) at output flat
 * index k. */
static size_t bcast_index(int orank, const int64_t *odims, int rank, const int64_t *dims, size_t k)
{
    size_t idx = 0, stride = 1;
    for (int a = orank - 1; a >= 0; a--) {
        size_t coord = (size_t)(k % (size_t)odims[a]);
        k /= (size_t)odims[a];
        int ia = a - (orank - rank);
        if (ia >= 0) {
            if (dims[ia] != 1)
                idx += coord * stride;
            stride *= (size_t)dims[ia];
        }
    }
    return idx;
}

typedef joule_dim (*pv_fn)(const char *op, joule_dim a, joule_dim b);

/* Output shape of broadcasting two pvs; false when they do not broadcast. */
static bool pv_bcast_dims(const ji_pv *a, const ji_pv *b, int *rank, int64_t *dims)
{
    int r = a->rank > b->rank ? a->rank : b->rank;
    for (int i = 0; i < r; i++) {
        int ia = i - (r - a->rank), ib = i - (r - b->rank);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return false;
        dims[i] = da == 1 ? db : da;
    }
    *rank = r;
    return true;
}

static joule_dim arith(const char *op, joule_dim a, joule_dim b)
{
    bool ka = ji_pv_known(a), kb = ji_pv_known(b);
    if (!ka || !kb) { /* identities that keep a symbol */
        if (!strcmp(op, "Add") && ka && a.size == 0)
            return b;
        if ((!strcmp(op, "Add") || !strcmp(op, "Sub")) && kb && b.size == 0)
            return a;
        if (!strcmp(op, "Mul") && ka && a.size == 1)
            return b;
        if ((!strcmp(op, "Mul") || !strcmp(op, "Div")) && kb && b.size == 1)
            return a;
        if (!strcmp(op, "Mul") && ((ka && a.size == 0) || (kb && b.size == 0)))
            return ji_pv_c(0);
        if (!strcmp(op, "Sub") && !ka && !kb && a.sym && b.sym && !strcmp(a.sym, b.sym))
            return ji_pv_c(0);
        if (!strcmp(op, "Div") && !ka && !kb && a.sym && b.sym && !strcmp(a.sym, b.sym))
            return ji_pv_c(1);
        return ji_pv_unknown(NULL);
    }
    int64_t x = a.size, y = b.size, r;
    if (!strcmp(op, "Add")) {
        if (__builtin_add_overflow(x, y, &r))
            return ji_pv_unknown(NULL);
    } else if (!strcmp(op, "Sub")) {
        if (__builtin_sub_overflow(x, y, &r))
            return ji_pv_unknown(NULL);
    } else if (!strcmp(op, "Mul")) {
        if (__builtin_mul_overflow(x, y, &r))
            return ji_pv_unknown(NULL);
    } else if (!strcmp(op, "Div")) {
        if (y == 0 || (x == INT64_MIN && y == -1))
            return ji_pv_unknown(NULL);
        r = x / y; /* integer Div truncates toward zero */
    } else if (!strcmp(op, "Max")) {
        r = x > y ? x : y;
    } else if (!strcmp(op, "Min")) {
        r = x < y ? x : y;
    } else {
        return ji_pv_unknown(NULL);
    }
    return r == JOULE_INFER_UNKNOWN ? ji_pv_unknown(NULL) : ji_pv_c(r);
}

static joule_dim compare(const char *op, joule_dim a, joule_dim b)
{
    bool ka = ji_pv_known(a), kb = ji_pv_known(b);
    if (!ka || !kb) {
        if (!ka && !kb && a.sym && b.sym && !strcmp(a.sym, b.sym)) {
            if (!strcmp(op, "Equal") || !strcmp(op, "LessOrEqual") ||
                !strcmp(op, "GreaterOrEqual"))
                return ji_pv_c(1);
            if (!strcmp(op, "Less") || !strcmp(op, "Greater"))
                return ji_pv_c(0);
        }
        return ji_pv_unknown(NULL);
    }
    int64_t x = a.size, y = b.size;
    int r;
    if (!strcmp(op, "Equal")) r = x == y;
    else if (!strcmp(op, "Less")) r = x < y;
    else if (!strcmp(op, "Greater")) r = x > y;
    else if (!strcmp(op, "LessOrEqual")) r = x <= y;
    else if (!strcmp(op, "GreaterOrEqual")) r = x >= y;
    else if (!strcmp(op, "And")) r = x && y;
    else if (!strcmp(op, "Or")) r = x || y;
    else if (!strcmp(op, "Xor")) r = !x != !y;
    else return ji_pv_unknown(NULL);
    return ji_pv_c(r);
}

/* Propagates the values of a two-input elementwise op when both inputs are known. */
static joule_status propagate2(joule_infer_ctx *c, pv_fn fn, joule_dtype out_dtype)
{
    if (!ji_out_present(c, 0))
        return JOULE_OK;
    ji_pv a, b, o;
    if (!ji_pv_load(c, 0, &a))
        return JOULE_OK;
    if (!ji_pv_load(c, 1, &b)) {
        ji_pv_free(&a);
        return JOULE_OK;
    }
    int rank;
    int64_t dims[JOULE_MAX_RANK];
    if (pv_bcast_dims(&a, &b, &rank, dims) && ji_pv_init(&o, out_dtype, rank, dims)) {
        for (size_t k = 0; k < o.n; k++) {
            size_t ia = bcast_index(rank, dims, a.rank, a.dims, k);
            size_t ib = bcast_index(rank, dims, b.rank, b.dims, k);
            o.e[k] = fn(c->node->op_type, a.e[ia], b.e[ib]);
        }
        ji_pv_free(&a);
        ji_pv_free(&b);
        return ji_pv_store(c, 0, &o);
    }
    ji_pv_free(&a);
    ji_pv_free(&b);
    return JOULE_OK;
}

static joule_dim unary_value(const char *op, joule_dim a)
{
    if (!ji_pv_known(a))
        return ji_pv_unknown(NULL);
    if (!strcmp(op, "Neg") && a.size != INT64_MIN)
        return ji_pv_c(-a.size);
    if (!strcmp(op, "Abs") && a.size != INT64_MIN)
        return ji_pv_c(a.size < 0 ? -a.size : a.size);
    if (!strcmp(op, "Sign"))
        return ji_pv_c(a.size > 0 ? 1 : a.size < 0 ? -1 : 0);
    return ji_pv_unknown(NULL);
}

joule_status ji_unary(joule_infer_ctx *c)
{
    ji_out_like_input(c, 0, 0);
    const char *op = c->node->op_type;
    if (strcmp(op, "Neg") && strcmp(op, "Abs") && strcmp(op, "Sign"))
        return JOULE_OK;
    ji_pv a;
    if (!ji_pv_load(c, 0, &a))
        return JOULE_OK;
    for (size_t k = 0; k < a.n; k++)
        a.e[k] = unary_value(op, a.e[k]);
    return ji_pv_store(c, 0, &a);
}

/* Output shape of a broadcasting two-input op; opset < 7 broadcast attr semantics give A's shape. */
static joule_status binary_shape(joule_infer_ctx *c, joule_shape *out, bool *known)
{
    const joule_shape *a = ji_in_shape(c, 0), *b = ji_in_shape(c, 1);
    *known = false;
    if (c->opset < 7 && strcmp(c->node->op_type, "PRelu")) {
        if (a) {
            *out = *a;
            *known = true;
        }
        return JOULE_OK;
    }
    if (!a || !b)
        return JOULE_OK;
    joule_status st = ji_shape_broadcast(c, a, b, out);
    *known = st == JOULE_OK;
    return st;
}

joule_status ji_binary(joule_infer_ctx *c)
{
    joule_shape s;
    bool known;
    joule_status st = binary_shape(c, &s, &known);
    if (st)
        return st;
    joule_dtype dt = ji_in_dtype(c, 0);
    ji_out_set(c, 0, dt, known ? &s : NULL);
    if (known && c->opset >= 7)
        return propagate2(c, arith, dt);
    return JOULE_OK;
}

joule_status ji_bitshift(joule_infer_ctx *c)
{
    return ji_binary(c);
}

joule_status ji_compare(joule_infer_ctx *c)
{
    joule_shape s;
    bool known;
    joule_status st = binary_shape(c, &s, &known);
    if (st)
        return st;
    ji_out_set(c, 0, JOULE_BOOL, known ? &s : NULL);
    if (known && c->opset >= 7)
        return propagate2(c, compare, JOULE_BOOL);
    return JOULE_OK;
}

joule_status ji_variadic(joule_infer_ctx *c)
{
    joule_dtype dt = JOULE_UNDEFINED;
    joule_shape s;
    bool known = true, any = false;
    for (int i = 0; i < c->n_in; i++) {
        const joule_infer_io *io = ji_in_io(c, i);
        if (!io)
            continue;
        if (dt == JOULE_UNDEFINED)
            dt = io->dtype;
        if (io->shape.rank < 0) {
            known = false;
            continue;
        }
        if (!any) {
            s = io->shape;
            any = true;
        } else if (known) {
            joule_shape t;
            joule_status st = ji_shape_broadcast(c, &s, &io->shape, &t);
            if (st)
                return st;
            s = t;
        }
    }
    ji_out_set(c, 0, dt, known && any ? &s : NULL);
    /* Max/Min of two small integer tensors (clamping computed sizes) */
    const char *op = c->node->op_type;
    if (known && any && c->n_in == 2 && ji_in_io(c, 0) && ji_in_io(c, 1) &&
        (!strcmp(op, "Max") || !strcmp(op, "Min")))
        return propagate2(c, arith, dt);
    return JOULE_OK;
}

joule_status ji_where(joule_infer_ctx *c)
{
    const joule_shape *sc = ji_in_shape(c, 0), *sx = ji_in_shape(c, 1), *sy = ji_in_shape(c, 2);
    joule_dtype dt = ji_in_dtype(c, 1);
    if (dt == JOULE_UNDEFINED)
        dt = ji_in_dtype(c, 2);
    if (!sc || !sx || !sy) {
        ji_out_set(c, 0, dt, NULL);
        return JOULE_OK;
    }
    joule_shape t, s;
    joule_status st = ji_shape_broadcast(c, sx, sy, &t);
    if (st == JOULE_OK)
        st = ji_shape_broadcast(c, sc, &t, &s);
    if (st)
        return st;
    ji_out_set(c, 0, dt, &s);
    if (!ji_out_present(c, 0))
        return JOULE_OK;
    ji_pv pc, px, py, o;
    if (!ji_pv_load(c, 0, &pc))
        return JOULE_OK;
    if (!ji_pv_load(c, 1, &px)) {
        ji_pv_free(&pc);
        return JOULE_OK;
    }
    if (!ji_pv_load(c, 2, &py)) {
        ji_pv_free(&pc);
        ji_pv_free(&px);
        return JOULE_OK;
    }
    int r1 = 0, rank;
    int64_t d1[JOULE_MAX_RANK] = {0}, dims[JOULE_MAX_RANK];
    bool ok = pv_bcast_dims(&px, &py, &r1, d1);
    ji_pv tmp = {.rank = r1};
    memcpy(tmp.dims, d1, sizeof d1);
    if (ok && pv_bcast_dims(&pc, &tmp, &rank, dims) && ji_pv_init(&o, px.dtype, rank, dims)) {
        for (size_t k = 0; k < o.n; k++) {
            joule_dim cd = pc.e[bcast_index(rank, dims, pc.rank, pc.dims, k)];
            joule_dim xd = px.e[bcast_index(rank, dims, px.rank, px.dims, k)];
            joule_dim yd = py.e[bcast_index(rank, dims, py.rank, py.dims, k)];
            o.e[k] = !ji_pv_known(cd) ? ji_pv_unknown(NULL) : cd.size ? xd : yd;
        }
        st = ji_pv_store(c, 0, &o);
    }
    ji_pv_free(&pc);
    ji_pv_free(&px);
    ji_pv_free(&py);
    return st;
}

joule_status ji_not(joule_infer_ctx *c)
{
    const joule_shape *s = ji_in_shape(c, 0);
    ji_out_set(c, 0, JOULE_BOOL, s);
    ji_pv a;
    if (!ji_pv_load(c, 0, &a))
        return JOULE_OK;
    for (size_t k = 0; k < a.n; k++)
        a.e[k] = ji_pv_known(a.e[k]) ? ji_pv_c(!a.e[k].size) : ji_pv_unknown(NULL);
    a.dtype = JOULE_BOOL;
    return ji_pv_store(c, 0, &a);
}

joule_status ji_isnan(joule_infer_ctx *c)
{
    ji_out_set(c, 0, JOULE_BOOL, ji_in_shape(c, 0));
    return JOULE_OK;
}

joule_status ji_prelu(joule_infer_ctx *c)
{
    const joule_shape *x = ji_in_shape(c, 0), *slope = ji_in_shape(c, 1);
    if (x && slope && c->opset >= 7) { /* slope broadcasts to X (unidirectionally) */
        joule_shape t;
        joule_status st = ji_shape_broadcast(c, x, slope, &t);
        if (st)
            return st;
        if (t.rank != x->rank)
            return ji_infer_fail(c, "slope has higher rank (%d) than X (%d)", slope->rank,
                                 x->rank);
    }
    ji_out_like_input(c, 0, 0);
    return JOULE_OK;
}

joule_status ji_clip(joule_infer_ctx *c)
{
    ji_out_like_input(c, 0, 0);
    return JOULE_OK;
}

/* formats/ops/infer_data.c: inference for operators that make or pass data rather than compute
 * on it: Shape (start/end from 15), Size, Constant (value, value_float(s), value_int(s)),
 * ConstantOfShape, Range, Cast, CastLike, Identity, Dropout (mask output), EyeLike, OneHot,
 * NonZero. These are where propagated values start: Shape of [batch,3,224,224] holds
 * {batch,3,224,224} for the Gather/Concat/Reshape chains that follow. */
#include <math.h>
#include <string.h>
#include <strings.h>

#include "formats/ops/infer_util.h"

static joule_shape shape1(int64_t n)
{
    joule_shape s = {.rank = 1};
    s.dims[0] = n >= 0 ? ji_dim_c(n) : ji_dim_unknown();
    return s;
}

joule_status ji_shape_op(joule_infer_ctx *c)
{
    const joule_shape *x = ji_in_shape(c, 0);
    if (!x) {
        joule_shape y = shape1(-1);
        ji_out_set(c, 0, JOULE_I64, &y);
        return JOULE_OK;
    }
    int64_t r = x->rank, start = 0, end = r;
    if (c->opset >= 15) {
        start = joule_attr_int(c->node, "start", 0);
        end = joule_attr_int(c->node, "end", r);
    }
    if (start < 0)
        start += r;
    if (end < 0)
        end += r;
    start = start < 0 ? 0 : start > r ? r : start;
    end = end < 0 ? 0 : end > r ? r : end;
    int64_t len = end > start ? end - start : 0;
    joule_shape y = shape1(len);
    ji_out_set(c, 0, JOULE_I64, &y);
    ji_pv p;
    if (!ji_pv_init(&p, JOULE_I64, 1, &len))
        return ji_infer_nomem(c);
    for (int64_t k = 0; k < len; k++) {
        joule_dim d = x->dims[start + k];
        p.e[k] = ji_dim_known(d) ? ji_pv_c(d.size) : ji_pv_unknown(d.sym);
    }
    return ji_pv_store(c, 0, &p);
}

joule_status ji_size(joule_infer_ctx *c)
{
    joule_shape y = {.rank = 0};
    ji_out_set(c, 0, JOULE_I64, &y);
    const joule_shape *x = ji_in_shape(c, 0);
    if (!x)
        return JOULE_OK;
    bool ovf;
    joule_dim n = ji_dims_product(x, 0, x->rank, &ovf);
    ji_pv p;
    if (!ji_pv_init(&p, JOULE_I64, 0, NULL))
        return ji_infer_nomem(c);
    p.e[0] = ji_dim_known(n) ? ji_pv_c(n.size) : ji_pv_unknown(n.sym);
    return ji_pv_store(c, 0, &p);
}

/* Gives output i a copy of t when it is small enough to be worth propagating. */
static joule_status give_copy(joule_infer_ctx *c, int i, const joule_tensor *t)
{
    if (!c->out_values || !ji_out_present(c, i) || t->count > JOULE_INFER_MAX_PROPAGATE ||
        t->dtype == JOULE_STRING || (t->count && !t->data))
        return JOULE_OK;
    joule_tensor *copy;
    joule_status st = joule_tensor_clone(t, &copy, c->err);
    if (st)
        return st;
    joule_tensor_free(c->out_values[i]);
    c->out_values[i] = copy;
    return JOULE_OK;
}

joule_status ji_constant(joule_infer_ctx *c)
{
    const joule_node *n = c->node;
    const joule_attr *a = NULL;
    for (int i = 0; i < n->n_attrs && !a; i++)
        if (strncmp(n->attrs[i].name, "value", 5) == 0 || !strcmp(n->attrs[i].name, "sparse_value"))
            a = &n->attrs[i];
    if (!a)
        return ji_infer_fail(c, "has no value attribute");
    joule_shape y = {.rank = 0};
    joule_tensor *t = NULL;
    joule_dtype dt = JOULE_UNDEFINED;
    joule_status st = JOULE_OK;
    if (!strcmp(a->name, "value") || !strcmp(a->name, "sparse_value")) {
        if ((a->type != JOULE_ATTR_TENSOR && a->type != JOULE_ATTR_SPARSE_TENSOR) || !a->t)
            return ji_infer_fail(c, "attribute %s is not a tensor", a->name);
        y.rank = a->t->rank;
        for (int i = 0; i < y.rank; i++)
            y.dims[i] = ji_dim_c(a->t->dims[i]);
        ji_out_set(c, 0, a->t->dtype, &y);
        return give_copy(c, 0, a->t);
    } else if (!strcmp(a->name, "value_float") || !strcmp(a->name, "value_floats")) {
        bool list = a->type == JOULE_ATTR_FLOATS;
        int64_t len = list ? (int64_t)a->count : 1;
        dt = JOULE_F32;
        st = joule_tensor_new(dt, list ? 1 : 0, &len, &t, c->err);
        if (st)
            return st;
        float *d = joule_tensor_mutable_data(t);
        for (int64_t i = 0; i < len; i++)
            d[i] = list ? a->floats[i] : a->f;
    } else if (!strcmp(a->name, "value_int") || !strcmp(a->name, "value_ints")) {
        bool list = a->type == JOULE_ATTR_INTS;
        int64_t len = list ? (int64_t)a->count : 1;
        dt = JOULE_I64;
        st = joule_tensor_new(dt, list ? 1 : 0, &len, &t, c->err);
        if (st)
            return st;
        int64_t *d = joule_tensor_mutable_data(t);
        for (int64_t i = 0; i < len; i++)
            d[i] = list ? a->ints[i] : a->i;
    } else if (!strcmp(a->name, "value_string")) {
        ji_out_set(c, 0, JOULE_STRING, &y);
        return JOULE_OK;
    } else if (!strcmp(a->name, "value_strings")) {
        y = shape1((int64_t)a->count);
        ji_out_set(c, 0, JOULE_STRING, &y);
        return JOULE_OK;
    } else {
        return ji_infer_fail(c, "attribute %s is not a Constant value", a->name);
    }
    y.rank = t->rank;
    for (int i = 0; i < y.rank; i++)
        y.dims[i] = ji_dim_c(t->dims[i]);
    ji_out_set(c, 0, dt, &y);
    if (c->out_values && ji_out_present(c, 0) && t->count <= JOULE_INFER_MAX_PROPAGATE) {
        joule_tensor_free(c->out_values[0]);
        c->out_values[0] = t;
    } else {
        joule_tensor_free(t);
    }
    return JOULE_OK;
}

joule_status ji_constant_of_shape(joule_infer_ctx *c)
{
    const joule_attr *a = joule_node_attr(c->node, "value");
    joule_dtype dt = JOULE_F32;
    int64_t fill = 0;
    bool fill_int = true;
    if (a) {
        if (a->type != JOULE_ATTR_TENSOR || !a->t || a->t->count != 1)
            return ji_infer_fail(c, "attribute value must be a one-element tensor");
        dt = a->t->dtype;
        size_t n;
        fill_int = ji_tensor_ints(a->t, &fill, 1, &n);
    }
    ji_pv p;
    if (!ji_pv_load(c, 0, &p)) {
        int64_t len = ji_in_len(c, 0);
        if (len >= 0 && len <= JOULE_MAX_RANK) {
            joule_shape y;
            ji_shape_set_rank(&y, (int)len);
            ji_out_set(c, 0, dt, &y);
        } else {
            ji_out_set(c, 0, dt, NULL);
        }
        return JOULE_OK;
    }
    if (p.rank > 1 || p.n > JOULE_MAX_RANK) {
        ji_pv_free(&p);
        return ji_infer_fail(c, "shape input must be 1-D with at most %d dims", JOULE_MAX_RANK);
    }
    joule_shape y = {.rank = (int)p.n};
    for (size_t i = 0; i < p.n; i++) {
        if (ji_pv_known(p.e[i]) && p.e[i].size < 0) {
            ji_pv_free(&p);
            return ji_infer_fail(c, "shape[%zu] is negative", i);
        }
        y.dims[i] = ji_pv_as_dim(p.e[i]);
    }
    ji_pv_free(&p);
    ji_out_set(c, 0, dt, &y);
    if (!fill_int || !joule_shape_is_concrete(&y))
        return JOULE_OK;
    int64_t dims[JOULE_MAX_RANK];
    for (int i = 0; i < y.rank; i++)
        dims[i] = y.dims[i].size;
    ji_pv o;
    if (!ji_pv_init(&o, dt, y.rank, dims))
        return JOULE_OK; /* too large to propagate */
    for (size_t k = 0; k < o.n; k++)
        o.e[k] = ji_pv_c(fill);
    return ji_pv_store(c, 0, &o);
}

joule_status ji_range(joule_infer_ctx *c)
{
    joule_dtype dt = ji_in_dtype(c, 0);
    for (int i = 0; i < 3; i++) {
        const joule_shape *s = ji_in_shape(c, i);
        if (s && s->rank > 1)
            return ji_infer_fail(c, "input %d must be a scalar", i);
    }
    joule_shape y = shape1(-1);
    const joule_infer_io *io[3] = {ji_in_io(c, 0), ji_in_io(c, 1), ji_in_io(c, 2)};
    double v[3];
    size_t n;
    bool known = true;
    for (int i = 0; i < 3; i++) {
        int64_t iv;
        if (io[i] && io[i]->value && ji_tensor_doubles(io[i]->value, &v[i], 1, &n) && n == 1)
            continue;
        if (ji_in_ints(c, i, &iv, 1, &n) && n == 1) {
            v[i] = (double)iv;
            continue;
        }
        known = false;
    }
    if (!known) {
        /* Range(0, n, 1) has n elements, whatever symbol n stands for */
        ji_pv lim;
        int64_t s0, d1;
        if (ji_in_ints(c, 0, &s0, 1, &n) && s0 == 0 && ji_in_ints(c, 2, &d1, 1, &n) && d1 == 1 &&
            ji_pv_load(c, 1, &lim)) {
            if (lim.n == 1)
                y.dims[0] = ji_pv_as_dim(lim.e[0]);
            ji_pv_free(&lim);
        }
        ji_out_set(c, 0, dt, &y);
        return JOULE_OK;
    }
    if (v[2] == 0)
        return ji_infer_fail(c, "delta is 0");
    double len = ceil((v[1] - v[0]) / v[2]);
    if (!(len < 9.0e18))
        return ji_infer_fail(c, "output length is out of range");
    int64_t count = len > 0 ? (int64_t)len : 0;
    y = shape1(count);
    ji_out_set(c, 0, dt, &y);
    ji_pv p;
    int64_t iv[3];
    for (int i = 0; i < 3; i++)
        if (!ji_in_ints(c, i, &iv[i], 1, &n) || n != 1)
            return JOULE_OK; /* values only for integer ranges */
    if ((dt == JOULE_I64 || dt == JOULE_I32 || dt == JOULE_I16) &&
        ji_pv_init(&p, dt, 1, &count)) {
        int64_t cur = iv[0];
        for (int64_t k = 0; k < count; k++) {
            p.e[k] = ji_pv_c(cur);
            if (!ji_add(cur, iv[2], &cur))
                cur = JOULE_INFER_UNKNOWN; /* past the end; not stored */
        }
        return ji_pv_store(c, 0, &p);
    }
    return JOULE_OK;
}

/* Cast's target from the `to` attribute (a dtype number; opset 1 spelled it as a string). */
static joule_status cast_target(const joule_infer_ctx *c, joule_dtype *out)
{
    const joule_attr *a = joule_node_attr(c->node, "to");
    if (!a)
        return ji_infer_fail(c, "attribute to is missing");
    if (a->type == JOULE_ATTR_INT) {
        if (!joule_dtype_valid((int)a->i) || a->i == JOULE_UNDEFINED)
            return ji_infer_fail(c, "to = %lld is not a dtype", (long long)a->i);
        *out = (joule_dtype)a->i;
        return JOULE_OK;
    }
    if (a->type == JOULE_ATTR_STRING) {
        for (int d = 1; d < JOULE_DTYPE_COUNT; d++) {
            const char *name = joule_dtype_name((joule_dtype)d);
            if (name && strlen(name) == a->s.len && !strncasecmp(name, a->s.ptr, a->s.len)) {
                *out = (joule_dtype)d;
                return JOULE_OK;
            }
        }
    }
    return ji_infer_fail(c, "attribute to is not a dtype");
}

static bool is_intlike(joule_dtype d)
{
    return d == JOULE_I64 || d == JOULE_I32 || d == JOULE_I16 || d == JOULE_I8 || d == JOULE_U8 ||
           d == JOULE_U16 || d == JOULE_U32 || d == JOULE_U64 || d == JOULE_BOOL;
}

joule_status ji_cast(joule_infer_ctx *c)
{
    joule_dtype to = JOULE_UNDEFINED;
    joule_status st = cast_target(c, &to);
    if (st)
        return st;
    ji_out_set(c, 0, to, ji_in_shape(c, 0));
    if (!is_intlike(to))
        return JOULE_OK;
    ji_pv p;
    if (ji_pv_load(c, 0, &p)) {
        p.dtype = to;
        if (to == JOULE_BOOL)
            for (size_t k = 0; k < p.n; k++)
                if (ji_pv_known(p.e[k]))
                    p.e[k].size = p.e[k].size != 0;
        return ji_pv_store(c, 0, &p);
    }
    /* a small float tensor cast to an integer type: truncate toward zero */
    const joule_infer_io *io = ji_in_io(c, 0);
    if (!io || !io->value || io->value->count > JOULE_INFER_MAX_PROPAGATE ||
        !joule_dtype_info(io->value->dtype)->is_float)
        return JOULE_OK;
    const joule_tensor *t = io->value;
    if (!ji_pv_init(&p, to, t->rank, t->dims))
        return JOULE_OK;
    const joule_dtype_traits *tr = joule_dtype_info(t->dtype);
    for (size_t k = 0; k < p.n; k++) {
        double v = t->dtype == JOULE_F64 ? 0 : (double)tr->to_f32(t->data, k);
        if (t->dtype == JOULE_F64)
            memcpy(&v, (const char *)t->data + k * 8, 8);
        p.e[k] = fabs(v) < 9.0e18 ? ji_pv_c(to == JOULE_BOOL ? v != 0 : (int64_t)v)
                                  : ji_pv_unknown(NULL);
    }
    return ji_pv_store(c, 0, &p);
}

joule_status ji_cast_like(joule_infer_ctx *c)
{
    ji_out_set(c, 0, ji_in_dtype(c, 1), ji_in_shape(c, 0));
    return JOULE_OK;
}

joule_status ji_identity(joule_infer_ctx *c)
{
    ji_out_like_input(c, 0, 0);
    const joule_infer_io *io = ji_in_io(c, 0);
    if (!io)
        return JOULE_OK;
    if (io->value)
        return give_copy(c, 0, io->value);
    ji_pv p;
    if (ji_pv_load(c, 0, &p))
        return ji_pv_store(c, 0, &p);
    return JOULE_OK;
}

joule_status ji_dropout(joule_infer_ctx *c)
{
    ji_out_like_input(c, 0, 0);
    joule_dtype mask = c->opset >= 10 ? JOULE_BOOL : ji_in_dtype(c, 0);
    ji_out_set(c, 1, mask, ji_in_shape(c, 0));
    return JOULE_OK;
}

joule_status ji_eye_like(joule_infer_ctx *c)
{
    const joule_shape *x = ji_in_shape(c, 0);
    if (x && x->rank != 2)
        return ji_infer_fail(c, "input must be 2-D (rank %d)", x->rank);
    joule_dtype dt = (joule_dtype)joule_attr_int(c->node, "dtype", ji_in_dtype(c, 0));
    if (!joule_dtype_valid((int)dt))
        return ji_infer_fail(c, "dtype %d is not a dtype", (int)dt);
    ji_out_set(c, 0, dt, x);
    return JOULE_OK;
}

joule_status ji_onehot(joule_infer_ctx *c)
{
    const joule_shape *ind = ji_in_shape(c, 0);
    joule_dtype dt = ji_in_dtype(c, 2);
    if (!ind) {
        ji_out_set(c, 0, dt, NULL);
        return JOULE_OK;
    }
    int rank = ind->rank + 1;
    if (rank > JOULE_MAX_RANK)
        return ji_infer_fail(c, "output rank %d exceeds joule's limit %d", rank, JOULE_MAX_RANK);
    int axis;
    joule_status st = ji_norm_axis(c, joule_attr_int(c->node, "axis", -1), rank, "axis", &axis);
    if (st)
        return st;
    const joule_infer_io *dio = ji_in_io(c, 1);
    double depth;
    size_t n;
    joule_dim dd = ji_dim_unknown();
    if (dio && dio->value && ji_tensor_doubles(dio->value, &depth, 1, &n) && n == 1) {
        if (!(depth >= 1 && depth < 9.0e18))
            return ji_infer_fail(c, "depth %g must be positive", depth);
        dd = ji_dim_c((int64_t)depth);
    }
    joule_shape y = {.rank = rank};
    for (int i = 0, j = 0; i < rank; i++)
        y.dims[i] = i == axis ? dd : ind->dims[j++];
    ji_out_set(c, 0, dt, &y);
    return JOULE_OK;
}

joule_status ji_nonzero(joule_infer_ctx *c)
{
    const joule_shape *x = ji_in_shape(c, 0);
    joule_shape y = {.rank = 2, .dims = {ji_dim_unknown(), ji_dim_unknown()}};
    if (x)
        y.dims[0] = ji_dim_c(x->rank);
    ji_out_set(c, 0, JOULE_I64, &y);
    return JOULE_OK;
}

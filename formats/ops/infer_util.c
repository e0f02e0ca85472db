/* formats/ops/infer_util.c: the helpers every inference family uses: input/output access, errors
 * naming the node, dims with symbols, broadcasting, axes, integer lists from attributes and known
 * tensors, and propagated values (small integer tensors known element by element). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/ops/infer_util.h"

/* ---- inputs, outputs, errors ---- */

const joule_infer_io *ji_in_io(const joule_infer_ctx *c, int i)
{
    if (i < 0 || i >= c->n_in || !c->in[i].present)
        return NULL;
    return &c->in[i];
}

const joule_shape *ji_in_shape(const joule_infer_ctx *c, int i)
{
    const joule_infer_io *io = ji_in_io(c, i);
    return io && io->shape.rank >= 0 ? &io->shape : NULL;
}

joule_dtype ji_in_dtype(const joule_infer_ctx *c, int i)
{
    const joule_infer_io *io = ji_in_io(c, i);
    return io ? io->dtype : JOULE_UNDEFINED;
}

bool ji_out_present(const joule_infer_ctx *c, int i)
{
    return i >= 0 && i < c->n_out && c->out[i].present;
}

void ji_out_set(joule_infer_ctx *c, int i, joule_dtype dtype, const joule_shape *shape)
{
    if (!ji_out_present(c, i))
        return;
    c->out[i].dtype = dtype;
    if (shape)
        c->out[i].shape = *shape;
    else
        c->out[i].shape.rank = -1;
}

void ji_out_like_input(joule_infer_ctx *c, int out, int in)
{
    const joule_infer_io *io = ji_in_io(c, in);
    if (io)
        ji_out_set(c, out, io->dtype, io->shape.rank >= 0 ? &io->shape : NULL);
}

joule_status ji_infer_fail(const joule_infer_ctx *c, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const joule_node *n = c->node;
    const char *name = n && n->name && n->name[0] ? n->name : NULL;
    const char *out0 = n && n->n_outputs > 0 && n->outputs[0] ? n->outputs[0]->name : "?";
    if (name)
        return joule_fail(c->err, JOULE_ERR_INVALID, "%s node '%s': %s", n->op_type, name, msg);
    return joule_fail(c->err, JOULE_ERR_INVALID, "%s node (output '%s'): %s",
                      n ? n->op_type : "?", out0, msg);
}

joule_status ji_infer_nomem(const joule_infer_ctx *c)
{
    const joule_node *n = c->node;
    return joule_fail(c->err, JOULE_ERR_NOMEM, "%s node '%s': out of memory",
                      n ? n->op_type : "?", n && n->name ? n->name : "");
}

/* ---- dims and shapes ---- */

joule_dim ji_dim_c(int64_t size)
{
    joule_dim d = {size, NULL};
    return d;
}

joule_dim ji_dim_unknown(void)
{
    joule_dim d = {-1, NULL};
    return d;
}

bool ji_dim_same(joule_dim a, joule_dim b)
{
    if (ji_dim_known(a) || ji_dim_known(b))
        return a.size == b.size;
    return a.sym && b.sym && strcmp(a.sym, b.sym) == 0;
}

bool ji_dim_compatible(joule_dim a, joule_dim b)
{
    return !ji_dim_known(a) || !ji_dim_known(b) || a.size == b.size;
}

void ji_shape_set_rank(joule_shape *s, int rank)
{
    s->rank = rank;
    for (int i = 0; i < rank && i < JOULE_MAX_RANK; i++)
        s->dims[i] = ji_dim_unknown();
}

const char *ji_shape_str(const joule_shape *s, char *buf, size_t size)
{
    joule_shape_format(s, buf, size);
    return buf;
}

joule_dim ji_dims_product(const joule_shape *s, int from, int to, bool *overflow)
{
    int64_t p = 1;
    const char *sym = NULL;
    int n_unknown = 0;
    if (overflow)
        *overflow = false;
    for (int i = from; i < to; i++) {
        joule_dim d = s->dims[i];
        if (ji_dim_known(d)) {
            if (d.size != 0 && p > INT64_MAX / d.size) {
                if (overflow)
                    *overflow = true;
                return ji_dim_unknown();
            }
            p *= d.size;
        } else {
            n_unknown++;
            sym = d.sym;
        }
    }
    if (n_unknown == 0)
        return ji_dim_c(p);
    if (p == 0)
        return ji_dim_c(0);
    if (n_unknown == 1 && p == 1 && sym) {
        joule_dim d = {-1, sym};
        return d;
    }
    return ji_dim_unknown();
}

joule_status ji_shape_broadcast(const joule_infer_ctx *c, const joule_shape *a, const joule_shape *b,
                                joule_shape *out)
{
    int r = a->rank > b->rank ? a->rank : b->rank;
    out->rank = r;
    for (int i = 0; i < r; i++) {
        int ia = i - (r - a->rank), ib = i - (r - b->rank);
        joule_dim da = ia >= 0 ? a->dims[ia] : ji_dim_c(1);
        joule_dim db = ib >= 0 ? b->dims[ib] : ji_dim_c(1);
        joule_dim o;
        if (ji_dim_known(da) && ji_dim_known(db)) {
            if (da.size != db.size && da.size != 1 && db.size != 1) {
                char sa[160], sb[160];
                return ji_infer_fail(c, "shapes %s and %s do not broadcast (axis %d: %lld vs %lld)",
                                     ji_shape_str(a, sa, sizeof sa), ji_shape_str(b, sb, sizeof sb),
                                     i, (long long)da.size, (long long)db.size);
            }
            o = da.size == 1 ? db : da;
        } else if (ji_dim_known(da)) {
            o = da.size == 1 ? db : da; /* the unknown one must be 1 or da */
        } else if (ji_dim_known(db)) {
            o = db.size == 1 ? da : db;
        } else {
            o = ji_dim_same(da, db) ? da : ji_dim_unknown();
        }
        out->dims[i] = o;
    }
    return JOULE_OK;
}

joule_status ji_norm_axis(const joule_infer_ctx *c, int64_t axis, int rank, const char *what,
                          int *out)
{
    int64_t a = axis < 0 ? axis + rank : axis;
    if (a < 0 || a >= rank)
        return ji_infer_fail(c, "%s %lld is out of range for rank %d", what, (long long)axis,
                             rank);
    *out = (int)a;
    return JOULE_OK;
}

/* ---- integer lists ---- */

bool ji_attr_ints(const joule_node *n, const char *name, const int64_t **v, size_t *count)
{
    const joule_attr *a = joule_node_attr(n, name);
    if (!a)
        return false;
    if (a->type == JOULE_ATTR_INTS) {
        *v = a->ints;
        *count = a->count;
        return true;
    }
    if (a->type == JOULE_ATTR_INT) { /* tolerated: a single int where a list is expected */
        *v = &a->i;
        *count = 1;
        return true;
    }
    return false;
}

/* Element i of an integer/bool tensor as int64; false for other dtypes. */
static bool read_int(const joule_tensor *t, size_t i, int64_t *v)
{
    const unsigned char *p = t->data;
    switch (t->dtype) {
    case JOULE_I64: { int64_t x; memcpy(&x, p + i * 8, 8); *v = x; return true; }
    case JOULE_I32: { int32_t x; memcpy(&x, p + i * 4, 4); *v = x; return true; }
    case JOULE_I16: { int16_t x; memcpy(&x, p + i * 2, 2); *v = x; return true; }
    case JOULE_U16: { uint16_t x; memcpy(&x, p + i * 2, 2); *v = x; return true; }
    case JOULE_U32: { uint32_t x; memcpy(&x, p + i * 4, 4); *v = x; return true; }
    case JOULE_U64: {
        uint64_t x;
        memcpy(&x, p + i * 8, 8);
        *v = x > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)x;
        return true;
    }
    case JOULE_I8: *v = (int8_t)p[i]; return true;
    case JOULE_U8: *v = p[i]; return true;
    case JOULE_BOOL: *v = p[i] != 0; return true;
    default: return false;
    }
}

static bool is_int_dtype(joule_dtype d)
{
    switch (d) {
    case JOULE_I64: case JOULE_I32: case JOULE_I16: case JOULE_U16: case JOULE_U32:
    case JOULE_U64: case JOULE_I8: case JOULE_U8: case JOULE_BOOL:
        return true;
    default:
        return false;
    }
}

/* Writes v into element i of an integer/bool tensor (wrapping like a C cast). */
static void write_int(void *data, joule_dtype dt, size_t i, int64_t v)
{
    unsigned char *p = data;
    switch (dt) {
    case JOULE_I64: memcpy(p + i * 8, &v, 8); break;
    case JOULE_U64: { uint64_t x = (uint64_t)v; memcpy(p + i * 8, &x, 8); break; }
    case JOULE_I32: { int32_t x = (int32_t)v; memcpy(p + i * 4, &x, 4); break; }
    case JOULE_U32: { uint32_t x = (uint32_t)v; memcpy(p + i * 4, &x, 4); break; }
    case JOULE_I16: { int16_t x = (int16_t)v; memcpy(p + i * 2, &x, 2); break; }
    case JOULE_U16: { uint16_t x = (uint16_t)v; memcpy(p + i * 2, &x, 2); break; }
    case JOULE_I8: case JOULE_U8: p[i] = (unsigned char)v; break;
    case JOULE_BOOL: p[i] = v != 0; break;
    default: break;
    }
}

bool ji_tensor_ints(const joule_tensor *t, int64_t *out, size_t max, size_t *count)
{
    if (!t || !is_int_dtype(t->dtype) || t->count > max || (t->count && !t->data))
        return false;
    for (size_t i = 0; i < t->count; i++)
        read_int(t, i, &out[i]);
    *count = t->count;
    return true;
}

bool ji_tensor_doubles(const joule_tensor *t, double *out, size_t max, size_t *count)
{
    if (!t || t->count > max || (t->count && !t->data))
        return false;
    if (is_int_dtype(t->dtype)) {
        for (size_t i = 0; i < t->count; i++) {
            int64_t v = 0;
            read_int(t, i, &v);
            out[i] = (double)v;
        }
    } else if (t->dtype == JOULE_F64) {
        for (size_t i = 0; i < t->count; i++)
            memcpy(&out[i], (const char *)t->data + i * 8, 8);
    } else {
        const joule_dtype_traits *tr = joule_dtype_info(t->dtype);
        if (!tr->to_f32 || !tr->is_float)
            return false;
        for (size_t i = 0; i < t->count; i++)
            out[i] = tr->to_f32(t->data, i);
    }
    *count = t->count;
    return true;
}

bool ji_in_ints(const joule_infer_ctx *c, int i, int64_t *out, size_t max, size_t *count)
{
    const joule_infer_io *io = ji_in_io(c, i);
    if (!io)
        return false;
    if (io->value)
        return ji_tensor_ints(io->value, out, max, count);
    if (io->dims_value && io->dims_value->rank >= 0 && (size_t)io->dims_value->rank <= max) {
        for (int k = 0; k < io->dims_value->rank; k++) {
            if (!ji_pv_known(io->dims_value->dims[k]))
                return false;
            out[k] = io->dims_value->dims[k].size;
        }
        *count = (size_t)io->dims_value->rank;
        return true;
    }
    return false;
}

int64_t ji_in_len(const joule_infer_ctx *c, int i)
{
    const joule_infer_io *io = ji_in_io(c, i);
    if (!io)
        return -1;
    if (io->value)
        return (int64_t)io->value->count;
    if (io->dims_value)
        return io->dims_value->rank;
    if (!joule_shape_is_concrete(&io->shape))
        return -1;
    bool ovf;
    joule_dim d = ji_dims_product(&io->shape, 0, io->shape.rank, &ovf);
    return ji_dim_known(d) ? d.size : -1;
}

/* ---- propagated values ---- */

bool ji_pv_init(ji_pv *p, joule_dtype dtype, int rank, const int64_t *dims)
{
    memset(p, 0, sizeof *p);
    size_t n;
    if (rank < 0 || rank > JOULE_MAX_RANK || !joule_dims_count(rank, dims, &n) ||
        n > JOULE_INFER_MAX_PROPAGATE)
        return false;
    p->dtype = dtype;
    p->rank = rank;
    if (rank)
        memcpy(p->dims, dims, (size_t)rank * sizeof *dims);
    p->n = n;
    if (n <= JOULE_MAX_RANK) {
        p->e = p->small;
    } else {
        p->e = malloc(n * sizeof *p->e);
        if (!p->e)
            return false;
    }
    for (size_t k = 0; k < n; k++)
        p->e[k] = ji_pv_unknown(NULL);
    return true;
}

void ji_pv_free(ji_pv *p)
{
    if (p->e && p->e != p->small)
        free(p->e);
    p->e = NULL;
    p->n = 0;
}

bool ji_pv_load(const joule_infer_ctx *c, int i, ji_pv *p)
{
    const joule_infer_io *io = ji_in_io(c, i);
    memset(p, 0, sizeof *p);
    if (!io)
        return false;
    if (io->value) {
        const joule_tensor *t = io->value;
        if (!is_int_dtype(t->dtype) || (t->count && !t->data) ||
            !ji_pv_init(p, t->dtype, t->rank, t->dims))
            return false;
        for (size_t k = 0; k < p->n; k++) {
            int64_t v = 0;
            read_int(t, k, &v);
            p->e[k] = ji_pv_c(v);
        }
        return true;
    }
    const joule_shape *dv = io->dims_value;
    if (!dv || dv->rank < 0 || dv->rank > JOULE_MAX_RANK)
        return false;
    int64_t n = dv->rank;
    joule_dtype dt = io->dtype != JOULE_UNDEFINED ? io->dtype : JOULE_I64;
    bool scalar = io->shape.rank == 0 && n == 1;
    if (!ji_pv_init(p, dt, scalar ? 0 : 1, &n))
        return false;
    for (int k = 0; k < dv->rank; k++)
        p->e[k] = dv->dims[k];
    return true;
}

joule_status ji_pv_store(joule_infer_ctx *c, int i, ji_pv *p)
{
    bool concrete = true;
    for (size_t k = 0; k < p->n; k++)
        if (!ji_pv_known(p->e[k]))
            concrete = false;
    joule_status st = JOULE_OK;
    if (!ji_out_present(c, i) || !is_int_dtype(p->dtype)) {
        /* nothing to give */
    } else if (concrete && c->out_values) {
        joule_tensor *t;
        st = joule_tensor_new(p->dtype, p->rank, p->dims, &t, c->err);
        if (st == JOULE_OK) {
            void *d = joule_tensor_mutable_data(t);
            for (size_t k = 0; k < p->n; k++)
                write_int(d, p->dtype, k, p->e[k].size);
            joule_tensor_free(c->out_values[i]);
            c->out_values[i] = t;
        }
    } else if (!concrete && c->out_dims_values && p->rank <= 1 && p->n <= JOULE_MAX_RANK) {
        joule_shape *s = &c->out_dims_values[i];
        s->rank = (int)p->n;
        for (size_t k = 0; k < p->n; k++)
            s->dims[k] = p->e[k];
    }
    ji_pv_free(p);
    return st;
}

bool ji_pv_matches(const ji_pv *p, const joule_shape *s)
{
    if (!s || p->rank != s->rank)
        return false;
    for (int i = 0; i < p->rank; i++)
        if (s->dims[i].size != p->dims[i])
            return false;
    return true;
}

void ji_pv_shape(const ji_pv *p, joule_shape *s)
{
    s->rank = p->rank;
    for (int k = 0; k < p->rank; k++)
        s->dims[k] = ji_dim_c(p->dims[k]);
}

joule_dim ji_pv_as_dim(joule_dim e)
{
    if (ji_pv_known(e))
        return e.size >= 0 ? ji_dim_c(e.size) : ji_dim_unknown();
    joule_dim d = {-1, e.sym};
    return d;
}

/* compress/compress_util.c: helpers the passes share (see compress_internal.h): constants behind
 * values, private copies before edits, reader counts, slicing, report notes. */
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/compress_internal.h"
#include "formats/ops/ops.h"

const char *cz_label(const joule_graph *g, const joule_node *n, char *buf, size_t size)
{
    if (n->name && n->name[0])
        return n->name;
    snprintf(buf, size, "%s_%ld", n->op_type, joule_graph_node_index(g, n));
    return buf;
}

static const joule_node *constant_node(const joule_graph *g, const joule_value *v)
{
    const joule_node *p = joule_graph_producer(g, v);
    if (joule_node_is_op(p, "Constant"))
        return p;
    return NULL;
}

const joule_tensor *cz_const(const joule_graph *g, const joule_value *v)
{
    if (!v)
        return NULL;
    if (v->data)
        return (v->flags & JOULE_VALUE_INPUT) ? NULL : v->data;
    const joule_node *p = constant_node(g, v);
    if (p) {
        const joule_attr *a = joule_node_attr(p, "value");
        if (a && a->type == JOULE_ATTR_TENSOR && a->t)
            return a->t;
    }
    return NULL;
}

size_t cz_uses(const joule_graph *g, const joule_value *v)
{
    size_t n = 0;
    for (size_t i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i]->n_inputs; k++)
            if (g->nodes[i]->inputs[k] == v)
                n++;
    for (size_t i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == v)
            n++;
    return n;
}

joule_status cz_materialize(joule_graph *g, joule_value *v, joule_error *err)
{
    if (v->data)
        return JOULE_OK;
    joule_node *p = (joule_node *)constant_node(g, v);
    if (!p)
        return joule_fail(err, JOULE_ERR_INVALID, "'%s' is not a constant", v->name);
    if (v->flags & JOULE_VALUE_OUTPUT)
        return joule_fail(err, JOULE_ERR_UNSUPPORTED, "Constant '%s': its value is a graph output",
                          p->name);
    joule_tensor *t = NULL;
    joule_status st;
    const joule_attr *a;
    bool sparse = false;
    if ((a = joule_node_attr(p, "value")) && a->type == JOULE_ATTR_TENSOR && a->t) {
        st = joule_tensor_clone(a->t, &t, err);
    } else if ((a = joule_node_attr(p, "sparse_value")) && a->type == JOULE_ATTR_SPARSE_TENSOR &&
               a->t) {
        st = joule_tensor_clone(a->t, &t, err); /* densified at load; saved sparse again */
        sparse = true;
    } else if ((a = joule_node_attr(p, "value_float")) && a->type == JOULE_ATTR_FLOAT) {
        if (!(st = joule_tensor_new(JOULE_F32, 0, NULL, &t, err)))
            *(float *)joule_tensor_mutable_data(t) = a->f;
    } else if ((a = joule_node_attr(p, "value_int")) && a->type == JOULE_ATTR_INT) {
        if (!(st = joule_tensor_new(JOULE_I64, 0, NULL, &t, err)))
            *(int64_t *)joule_tensor_mutable_data(t) = a->i;
    } else if ((a = joule_node_attr(p, "value_floats")) && a->type == JOULE_ATTR_FLOATS) {
        int64_t d = (int64_t)a->count;
        if (!(st = joule_tensor_new(JOULE_F32, 1, &d, &t, err)) && a->count)
            memcpy(joule_tensor_mutable_data(t), a->floats, a->count * sizeof(float));
    } else if ((a = joule_node_attr(p, "value_ints")) && a->type == JOULE_ATTR_INTS) {
        int64_t d = (int64_t)a->count;
        if (!(st = joule_tensor_new(JOULE_I64, 1, &d, &t, err)) && a->count)
            memcpy(joule_tensor_mutable_data(t), a->ints, a->count * sizeof(int64_t));
    } else {
        return joule_fail(err, JOULE_ERR_UNSUPPORTED,
                          "Constant '%s': only value, sparse_value, value_float(s) and "
                          "value_int(s) are handled",
                          p->name);
    }
    if (st)
        return st;
    if (!joule_tensor_mutable_data(t)) { /* the owned buffer must exist before it is kept */
        joule_tensor_free(t);
        return joule_fail(err, JOULE_ERR_NOMEM, "Constant '%s': out of memory", p->name);
    }
    if ((st = joule_graph_set_initializer(g, v, t, err))) {
        joule_tensor_free(t);
        return st;
    }
    if (sparse)
        v->flags |= JOULE_VALUE_SPARSE | JOULE_VALUE_SPARSE_CONSTANT;
    return joule_graph_remove_node(g, p, NULL, err);
}

joule_status cz_private_const(joule_graph *g, joule_node *n, int k, joule_tensor **out,
                              joule_error *err)
{
    *out = NULL;
    joule_value *v = k < n->n_inputs ? n->inputs[k] : NULL;
    char lb[160];
    if (!v || !cz_const(g, v))
        return joule_fail(err, JOULE_ERR_INVALID, "%s (%s): input %d is not a constant",
                          cz_label(g, n, lb, sizeof lb), n->op_type, k);
    joule_status st = cz_materialize(g, v, err);
    if (st)
        return st;
    if (cz_uses(g, v) > 1) {
        joule_tensor *t;
        joule_value *nv;
        if ((st = joule_tensor_clone(v->data, &t, err)))
            return st;
        if ((st = joule_graph_new_value(g, v->name, &nv, err)) ||
            (st = joule_graph_set_initializer(g, nv, t, err))) {
            joule_tensor_free(t);
            return st;
        }
        n->inputs[k] = nv;
        v = nv;
    }
    *out = v->data;
    return JOULE_OK;
}

bool cz_has_subgraphs(const joule_graph *g)
{
    for (size_t i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i]->n_attrs; k++) {
            joule_attr_type t = g->nodes[i]->attrs[k].type;
            if (t == JOULE_ATTR_GRAPH || t == JOULE_ATTR_GRAPHS)
                return true;
        }
    return false;
}

int cz_weight_input(const joule_node *n)
{
    const joule_op_def *d = joule_op_find(n->domain, n->op_type);
    if (!d || !(d->flags & JOULE_OP_WEIGHTED) || d->weight_input < 0 || d->weight_input >= n->n_inputs)
        return -1;
    return d->weight_input;
}

bool cz_glob(const char *pat, const char *s)
{
    return pat && s && fnmatch(pat, s, 0) == 0;
}

bool cz_float_dtype(joule_dtype t)
{
    const joule_dtype_traits *tr = joule_dtype_info(t);
    return tr->is_float && tr->to_f32 && tr->from_f32 &&
           (t == JOULE_F32 || t == JOULE_F16 || t == JOULE_BF16 || t == JOULE_F64);
}

uint64_t cz_zeros(const joule_tensor *t)
{
    uint64_t z = 0;
    if (!t || !t->data)
        return 0;
    if (t->dtype == JOULE_F32) {
        const float *p = t->data;
        for (size_t i = 0; i < t->count; i++)
            z += p[i] == 0.0f;
        return z;
    }
    if (t->dtype == JOULE_F64) {
        const double *p = t->data;
        for (size_t i = 0; i < t->count; i++)
            z += p[i] == 0.0;
        return z;
    }
    const joule_dtype_traits *tr = joule_dtype_info(t->dtype);
    if (!tr->to_f32)
        return 0;
    for (size_t i = 0; i < t->count; i++)
        z += tr->to_f32(t->data, i) == 0.0f;
    return z;
}

joule_status cz_slice(const joule_tensor *t, int axis, const bool *drop, int64_t n_drop,
                      int64_t block, joule_tensor **out, joule_error *err)
{
    *out = NULL;
    unsigned bits = joule_dtype_info(t->dtype)->bits;
    if (t->dtype == JOULE_STRING || bits == 0 || bits % 8)
        return joule_fail(err, JOULE_ERR_UNSUPPORTED, "slice: dtype %s",
                          joule_dtype_name(t->dtype));
    if (axis < 0 || axis >= t->rank || block < 1 || n_drop < 0 ||
        t->dims[axis] != n_drop * block)
        return joule_fail(err, JOULE_ERR_INVALID, "slice: axis %d of %lld does not hold %lld x %lld",
                          axis, axis >= 0 && axis < t->rank ? (long long)t->dims[axis] : -1LL,
                          (long long)n_drop, (long long)block);
    size_t es = bits / 8, outer = 1, inner = 1;
    for (int d = 0; d < axis; d++)
        outer *= (size_t)t->dims[d];
    for (int d = axis + 1; d < t->rank; d++)
        inner *= (size_t)t->dims[d];
    int64_t kept = 0;
    for (int64_t c = 0; c < n_drop; c++)
        kept += !drop[c];
    int64_t dims[JOULE_MAX_RANK];
    memcpy(dims, t->dims, sizeof dims);
    dims[axis] = kept * block;
    joule_tensor *o;
    joule_status st = joule_tensor_new(t->dtype, t->rank, dims, &o, err);
    if (st)
        return st;
    uint8_t *dst = joule_tensor_mutable_data(o);
    const uint8_t *src = t->data;
    if (!dst && o->nbytes) {
        joule_tensor_free(o);
        return joule_fail(err, JOULE_ERR_NOMEM, "slice: out of memory");
    }
    size_t row = inner * es, len = (size_t)t->dims[axis];
    for (size_t a = 0; a < outer; a++)
        for (size_t i = 0; i < len; i++) {
            if (drop[i / (size_t)block])
                continue;
            memcpy(dst, src + (a * len + i) * row, row);
            dst += row;
        }
    *out = o;
    return JOULE_OK;
}

joule_status cz_warn(joule_report *r, const char *pass, joule_error *err, const char *fmt, ...)
{
    if (!r)
        return JOULE_OK;
    char note[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(note, sizeof note, fmt, ap);
    va_end(ap);
    joule_layer_change row = {.pass = pass, .note = note, .warning = true};
    return joule_report_add(r, &row, err);
}

bool cz_pattern_used(const joule_graph *g, const char *pat, bool ops, bool weighted)
{
    for (size_t i = 0; i < g->n_nodes; i++) {
        const joule_node *n = g->nodes[i];
        int wi = weighted ? cz_weight_input(n) : -1;
        if (weighted && wi < 0)
            continue;
        char lb[160];
        if (cz_glob(pat, cz_label(g, n, lb, sizeof lb)) || (ops && strcmp(pat, n->op_type) == 0))
            return true;
        if (wi >= 0 && n->inputs[wi] && cz_glob(pat, n->inputs[wi]->name))
            return true;
    }
    return false;
}

joule_status cz_warn_unused(joule_report *r, const char *pass, const joule_graph *g,
                            const char *const *pats, size_t n, const char *what, bool ops,
                            bool weighted, joule_error *err)
{
    joule_status st = JOULE_OK;
    for (size_t i = 0; i < n && !st && r; i++)
        if (pats[i] && !cz_pattern_used(g, pats[i], ops, weighted))
            st = cz_warn(r, pass, err, "%s '%s' matches no %s%s in this model", what, pats[i],
                         weighted ? "prunable layer (node or weight name)" : "node name",
                         ops ? " or op type" : "");
    return st;
}

joule_status cz_note(joule_report *r, const char *pass, const joule_graph *g, const joule_node *n,
                     const char *tensor, joule_error *err, const char *fmt, ...)
{
    if (!r)
        return JOULE_OK;
    char note[512], lb[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(note, sizeof note, fmt, ap);
    va_end(ap);
    joule_layer_change row = {
        .pass = pass,
        .node = n ? cz_label(g, n, lb, sizeof lb) : NULL,
        .op_type = n ? n->op_type : NULL,
        .tensor = tensor,
        .note = note,
    };
    return joule_report_add(r, &row, err);
}

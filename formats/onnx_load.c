/* formats/onnx_load.c: ModelProto -> joule_model. The file is mapped and decoded with protobuf-c;
 * initializers, sparse initializers, Constant nodes, value infos and attributes become IR objects
 * that remember the protobuf they came from, so saving loses nothing. The graph is put in
 * topological order and validated (cycles, dangling inputs, duplicate outputs). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "formats/onnx_internal.h"
#include "joule/onnx.h"

void joule_model_free(joule_model *m)
{
    if (!m)
        return;
    joule_graph_destroy(m->graph);
    joule_model_priv *p = m->priv;
    if (p) {
        if (p->proto)
            protobuf_c_message_free_unpacked(p->proto, NULL);
        joule_mapping *mp = p->maps;
        while (mp) {
            joule_mapping *next = mp->next;
            munmap(mp->addr, mp->len);
            free(mp->path);
            free(mp);
            mp = next;
        }
        free(p);
    }
    free(m);
}

/* dtype and shape from a TypeProto (tensor types only; others stay unknown). */
static joule_status read_type(joule_graph *g, const Onnx__ValueInfoProto *vi, const char *label,
                              joule_value *v, joule_error *err)
{
    const Onnx__TypeProto *tp = vi->type;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
        return JOULE_OK;
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    if (tt->has_elem_type && tt->elem_type != 0) {
        if (!joule_dtype_valid(tt->elem_type))
            return joule_fail(err, JOULE_ERR_UNSUPPORTED, "%s: value '%s' has unknown data type %d",
                              label, v->name, tt->elem_type);
        v->dtype = (joule_dtype)tt->elem_type;
    }
    if (!tt->shape)
        return JOULE_OK;
    if (tt->shape->n_dim > JOULE_MAX_RANK)
        return JOULE_OK; /* beyond joule's rank limit: leave unknown, the proto keeps it */
    v->shape.rank = (int)tt->shape->n_dim;
    for (size_t i = 0; i < tt->shape->n_dim; i++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
        v->shape.dims[i].size = -1;
        v->shape.dims[i].sym = NULL;
        if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
            if (d->dim_value < 0)
                return joule_fail(err, JOULE_ERR_INVALID, "%s: value '%s' has negative dimension %lld",
                                  label, v->name, (long long)d->dim_value);
            v->shape.dims[i].size = d->dim_value;
        } else if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM &&
                   d->dim_param && *d->dim_param) {
            v->shape.dims[i].sym = joule_graph_intern(g, d->dim_param);
        }
    }
    return JOULE_OK;
}

static joule_status declare(joule_graph *g, const Onnx__ValueInfoProto *vi, char list,
                            const char *label, joule_error *err)
{
    if (!vi->name || !*vi->name)
        return joule_fail(err, JOULE_ERR_INVALID, "%s: a graph %s has no name", label,
                          list == 'i' ? "input" : list == 'o' ? "output" : "value_info");
    joule_value *v;
    joule_status st = joule_graph_value(g, vi->name, &v, err);
    if (st)
        return st;
    unsigned flag = list == 'i' ? JOULE_VALUE_INPUT : list == 'o' ? JOULE_VALUE_OUTPUT : JOULE_VALUE_INFO;
    if (v->flags & flag)
        return joule_fail(err, JOULE_ERR_INVALID, "%s: '%s' is declared twice", label, vi->name);
    if (!v->origin || list == 'i') { /* the first declaration describes the type */
        joule_shape keep = v->shape;
        joule_dtype keep_dt = v->dtype;
        st = read_type(g, vi, label, v, err);
        if (st)
            return st;
        if (v->data) { /* an initializer's own dims win over a declaration */
            v->shape = keep;
            v->dtype = keep_dt;
        }
    }
    if (list == 'i' || !v->origin) {
        v->origin = vi;
        v->origin_dtype = v->dtype;
        v->origin_shape = v->shape;
    }
    return joule_graph_list_add(g, list, v, err);
}

static joule_status read_attr(joule_graph *g, const Onnx__AttributeProto *ap, const joule_load_ctx *lc,
                              const joule_node *n, joule_attr *a, joule_error *err)
{
    a->origin = ap;
    a->name = joule_graph_intern(g, ap->name ? ap->name : "");
    a->type = ap->has_type ? (joule_attr_type)ap->type : JOULE_ATTR_UNDEFINED;
    a->f = ap->f;
    a->i = ap->i;
    if (ap->has_s) {
        a->s.ptr = (const char *)ap->s.data;
        a->s.len = ap->s.len;
    }
    switch (a->type) {
    case JOULE_ATTR_FLOATS: a->floats = ap->floats; a->count = ap->n_floats; break;
    case JOULE_ATTR_INTS: a->ints = ap->ints; a->count = ap->n_ints; break;
    case JOULE_ATTR_STRINGS: {
        joule_string *s = joule_graph_alloc(g, (ap->n_strings ? ap->n_strings : 1) * sizeof *s);
        if (!s)
            return joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", lc->label);
        for (size_t i = 0; i < ap->n_strings; i++) {
            s[i].ptr = (const char *)ap->strings[i].data;
            s[i].len = ap->strings[i].len;
        }
        a->strings = s;
        a->count = ap->n_strings;
        break;
    }
    case JOULE_ATTR_TENSOR:
        if (ap->t) {
            char what[300];
            snprintf(what, sizeof what, "attribute '%s' of node '%s' (%s)", a->name, n->name,
                     n->op_type);
            return joule_tensor_from_proto(ap->t, lc, what, &a->t, err);
        }
        break;
    case JOULE_ATTR_SPARSE_TENSOR:
        /* densified into a->t (Constant's sparse_value); the protobuf stays the saved form */
        if (ap->sparse_tensor) {
            char what[300];
            snprintf(what, sizeof what, "attribute '%s' of node '%s' (%s)", a->name, n->name,
                     n->op_type);
            return joule_tensor_from_sparse_proto(ap->sparse_tensor, lc, what, &a->t, err);
        }
        break;
    default: break;
    }
    return a->name ? JOULE_OK : joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", lc->label);
}

static joule_status read_node(joule_graph *g, const Onnx__NodeProto *np, const joule_load_ctx *lc,
                              joule_error *err)
{
    if (!np->op_type || !*np->op_type)
        return joule_fail(err, JOULE_ERR_INVALID, "%s: node '%s' has no op_type", lc->label,
                          np->name ? np->name : "");
    if (np->n_input > INT_MAX / 2 || np->n_output > INT_MAX / 2 || np->n_attribute > INT_MAX / 2)
        return joule_fail(err, JOULE_ERR_INVALID, "%s: node '%s' has too many inputs or outputs",
                          lc->label, np->name ? np->name : "");
    joule_node *n;
    joule_status st = joule_node_create(g, np->op_type, np->domain, np->name, (int)np->n_input,
                                        (const char *const *)np->input, (int)np->n_output,
                                        (const char *const *)np->output, &n, err);
    if (st)
        return st;
    n->origin = np;
    if (np->n_attribute) {
        n->attrs = calloc(np->n_attribute, sizeof *n->attrs);
        if (!n->attrs) {
            joule_node_destroy(n);
            return joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", lc->label);
        }
        for (size_t i = 0; i < np->n_attribute && !st; i++) {
            st = read_attr(g, np->attribute[i], lc, n, &n->attrs[i], err);
            n->n_attrs = (int)i + 1;
        }
    }
    if (!st)
        st = joule_graph_append_node(g, n, err);
    if (st)
        joule_node_destroy(n);
    return st;
}

static joule_status read_initializer(joule_graph *g, const Onnx__TensorProto *tp, bool sparse_dense,
                                     const Onnx__SparseTensorProto *sp, const joule_load_ctx *lc,
                                     joule_error *err)
{
    const char *name = sparse_dense ? (sp->values ? sp->values->name : NULL) : tp->name;
    if (!name || !*name)
        return joule_fail(err, JOULE_ERR_INVALID, "%s: an initializer has no name", lc->label);
    char what[300];
    snprintf(what, sizeof what, "initializer '%s'", name);
    joule_value *v;
    joule_status st = joule_graph_value(g, name, &v, err);
    if (st)
        return st;
    if (v->data)
        return joule_fail(err, JOULE_ERR_INVALID, "%s: initializer '%s' is defined twice", lc->label,
                          name);
    joule_tensor *t;
    st = sparse_dense ? joule_tensor_from_sparse_proto(sp, lc, what, &t, err)
                      : joule_tensor_from_proto(tp, lc, what, &t, err);
    if (st)
        return st;
    st = joule_graph_set_initializer(g, v, t, err);
    if (st) {
        joule_tensor_free(t);
        return st;
    }
    if (sparse_dense)
        v->flags |= JOULE_VALUE_SPARSE;
    return JOULE_OK;
}

static joule_status build_graph(joule_model *m, const Onnx__GraphProto *gp, const joule_load_ctx *lc,
                                joule_error *err)
{
    joule_graph *g = m->graph;
    g->priv->origin = gp;
    g->name = joule_graph_intern(g, gp->name ? gp->name : "");
    joule_status st = JOULE_OK;
    for (size_t i = 0; i < gp->n_initializer && !st; i++)
        st = read_initializer(g, gp->initializer[i], false, NULL, lc, err);
    for (size_t i = 0; i < gp->n_sparse_initializer && !st; i++)
        st = read_initializer(g, NULL, true, gp->sparse_initializer[i], lc, err);
    for (size_t i = 0; i < gp->n_input && !st; i++)
        st = declare(g, gp->input[i], 'i', lc->label, err);
    for (size_t i = 0; i < gp->n_output && !st; i++)
        st = declare(g, gp->output[i], 'o', lc->label, err);
    for (size_t i = 0; i < gp->n_value_info && !st; i++)
        st = declare(g, gp->value_info[i], 'v', lc->label, err);
    for (size_t i = 0; i < gp->n_node && !st; i++)
        st = read_node(g, gp->node[i], lc, err);
    if (st)
        return st;
    joule_error inner;
    if (joule_graph_toposort(g, &inner) || joule_graph_validate(g, &inner))
        return joule_fail(err, JOULE_ERR_INVALID, "%s: %s", lc->label, inner.msg);
    return JOULE_OK;
}

static joule_status build_model(joule_model *m, Onnx__ModelProto *mp, const joule_load_ctx *lc,
                                joule_error *err)
{
    joule_graph *g = m->graph;
    m->ir_version = mp->has_ir_version ? mp->ir_version : 0;
    m->producer_name = joule_graph_intern(g, mp->producer_name);
    m->producer_version = joule_graph_intern(g, mp->producer_version);
    m->domain = joule_graph_intern(g, mp->domain);
    m->model_version = mp->has_model_version ? mp->model_version : 0;
    m->n_opsets = mp->n_opset_import;
    m->opsets = joule_graph_alloc(g, (mp->n_opset_import + 1) * sizeof *m->opsets);
    if (!m->opsets)
        return joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", lc->label);
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        m->opsets[i].domain = joule_graph_intern(g, mp->opset_import[i]->domain);
        m->opsets[i].version = mp->opset_import[i]->version;
    }
    if (!mp->graph)
        return joule_fail(err, JOULE_ERR_INVALID, "%s: model has no graph", lc->label);
    return build_graph(m, mp->graph, lc, err);
}

/* Decodes bytes into a fresh model that takes ownership of nothing but the decoded proto. */
static joule_status decode(const void *buf, size_t len, const joule_load_ctx *lc_in,
                           joule_model *m, joule_error *err)
{
    if (len == 0)
        return joule_fail(err, JOULE_ERR_PARSE, "%s: empty file, not an ONNX model", lc_in->label);
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, buf);
    if (!mp)
        return joule_fail(err, JOULE_ERR_PARSE,
                          "%s: not a valid ONNX model (truncated or not a protobuf)", lc_in->label);
    joule_model_priv *p = m->priv;
    p->proto = mp;
    joule_load_ctx lc = *lc_in;
    lc.mp = p;
    return build_model(m, mp, &lc, err);
}

static joule_status empty_model(joule_model **out, joule_error *err)
{
    joule_status st = joule_model_new(0, out, err);
    if (!st)
        (*out)->n_opsets = 0;
    return st;
}

joule_status joule_model_load_buffer(const void *buf, size_t len, const char *label,
                                     const char *base_dir, joule_model **out, joule_error *err)
{
    *out = NULL;
    joule_model *m;
    joule_status st = empty_model(&m, err);
    if (st)
        return st;
    joule_load_ctx lc = {.label = label ? label : "<buffer>", .base_dir = base_dir};
    st = decode(buf, len, &lc, m, err);
    if (st) {
        joule_model_free(m);
        return st;
    }
    *out = m;
    return JOULE_OK;
}

joule_status joule_model_load(const char *path, joule_model **out, joule_error *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return joule_fail(err, JOULE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    joule_model *m;
    joule_status st = empty_model(&m, err);
    if (st) {
        close(fd);
        return st;
    }
    const void *addr;
    size_t len;
    st = joule_map_file(path, fd, m->priv, &addr, &len, err);
    close(fd);
    if (st) {
        joule_model_free(m);
        return st;
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    joule_load_ctx lc = {.label = path, .base_dir = dirname(dir)};
    st = decode(addr, len, &lc, m, err);
    if (st) {
        joule_model_free(m);
        return st;
    }
    /* protobuf-c copied what it decoded: give the model file's pages back */
    joule_model_priv *p = m->priv;
    for (joule_mapping **pp = &p->maps; *pp; pp = &(*pp)->next)
        if ((*pp)->addr == addr) {
            joule_mapping *dead = *pp;
            *pp = dead->next;
            munmap(dead->addr, dead->len);
            free(dead->path);
            free(dead);
            break;
        }
    m->path = joule_graph_intern(m->graph, path);
    *out = m;
    return JOULE_OK;
}

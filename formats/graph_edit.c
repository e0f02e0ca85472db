/* formats/graph_edit.c: editing a graph (create, insert, remove and rewire nodes, replace
 * initializers), validation and topological sorting, node attributes, and shape helpers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/graph_internal.h"

/* ---- nodes ---- */

joule_status joule_node_create(joule_graph *g, const char *op_type, const char *domain,
                               const char *name, int n_in, const char *const *inputs, int n_out,
                               const char *const *outputs, joule_node **out, joule_error *err)
{
    *out = NULL;
    joule_node *n = calloc(1, sizeof *n);
    if (!n)
        return joule_fail(err, JOULE_ERR_NOMEM, "node: out of memory");
    n->op_type = joule_graph_intern(g, op_type);
    n->domain = joule_graph_intern(g, domain ? domain : "");
    n->name = joule_graph_intern(g, name ? name : "");
    n->inputs = calloc((size_t)(n_in > 0 ? n_in : 1), sizeof *n->inputs);
    n->outputs = calloc((size_t)(n_out > 0 ? n_out : 1), sizeof *n->outputs);
    if (!n->op_type || !n->domain || !n->name || !n->inputs || !n->outputs) {
        joule_node_destroy(n);
        return joule_fail(err, JOULE_ERR_NOMEM, "node: out of memory");
    }
    n->n_inputs = n_in;
    n->n_outputs = n_out;
    joule_status st = JOULE_OK;
    for (int i = 0; i < n_in && !st; i++)
        if (inputs[i] && *inputs[i])
            st = joule_graph_value(g, inputs[i], &n->inputs[i], err);
    for (int i = 0; i < n_out && !st; i++)
        if (outputs[i] && *outputs[i])
            st = joule_graph_value(g, outputs[i], &n->outputs[i], err);
    if (st) {
        joule_node_destroy(n);
        return st;
    }
    *out = n;
    return JOULE_OK;
}

static joule_status insert_at(joule_graph *g, joule_node *node, size_t pos, joule_error *err)
{
    joule_status st = joule_graph_append_node(g, node, err);
    if (st)
        return st;
    memmove(g->nodes + pos + 1, g->nodes + pos, (g->n_nodes - 1 - pos) * sizeof *g->nodes);
    g->nodes[pos] = node;
    return JOULE_OK;
}

joule_status joule_graph_insert_before(joule_graph *g, joule_node *node, const joule_node *anchor,
                                       joule_error *err)
{
    if (!anchor)
        return joule_graph_append_node(g, node, err);
    long i = joule_graph_node_index(g, anchor);
    if (i < 0)
        return joule_fail(err, JOULE_ERR_NOT_FOUND, "insert: node '%s' is not in the graph",
                          anchor->name);
    return insert_at(g, node, (size_t)i, err);
}

joule_status joule_graph_insert_after(joule_graph *g, joule_node *node, const joule_node *anchor,
                                      joule_error *err)
{
    if (!anchor)
        return insert_at(g, node, 0, err);
    long i = joule_graph_node_index(g, anchor);
    if (i < 0)
        return joule_fail(err, JOULE_ERR_NOT_FOUND, "insert: node '%s' is not in the graph",
                          anchor->name);
    return insert_at(g, node, (size_t)i + 1, err);
}

void joule_graph_replace_uses(joule_graph *g, joule_value *from, joule_value *to)
{
    for (size_t i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i]->n_inputs; k++)
            if (g->nodes[i]->inputs[k] == from)
                g->nodes[i]->inputs[k] = to;
    for (size_t i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == from) {
            /* a graph output keeps its name: give the new producer's value that name's role */
            g->outputs[i] = to;
            to->flags |= JOULE_VALUE_OUTPUT;
            from->flags &= ~(unsigned)JOULE_VALUE_OUTPUT;
        }
}

joule_status joule_graph_remove_node(joule_graph *g, joule_node *node, joule_value *replace_with,
                                     joule_error *err)
{
    long i = joule_graph_node_index(g, node);
    if (i < 0)
        return joule_fail(err, JOULE_ERR_NOT_FOUND, "remove: node '%s' is not in the graph",
                          node->name);
    if (replace_with && node->n_outputs > 0 && node->outputs[0])
        joule_graph_replace_uses(g, node->outputs[0], replace_with);
    memmove(g->nodes + i, g->nodes + i + 1, (g->n_nodes - (size_t)i - 1) * sizeof *g->nodes);
    g->n_nodes--;
    joule_node_destroy(node);
    return JOULE_OK;
}

joule_status joule_graph_set_initializer(joule_graph *g, joule_value *v, joule_tensor *t,
                                         joule_error *err)
{
    if (!(v->flags & JOULE_VALUE_INITIALIZER)) {
        joule_status st = joule_graph_list_add(g, 'n', v, err);
        if (st)
            return st;
    }
    if (v->data != t)
        joule_tensor_free(v->data);
    v->data = t;
    v->flags &= ~(unsigned)(JOULE_VALUE_SPARSE | JOULE_VALUE_SPARSE_CONSTANT);
    v->dtype = t->dtype;
    v->shape.rank = t->rank;
    for (int i = 0; i < t->rank; i++) {
        v->shape.dims[i].size = t->dims[i];
        v->shape.dims[i].sym = NULL;
    }
    return JOULE_OK;
}

/* ---- validation and order ---- */

static const char *node_label(const joule_node *n, char *buf, size_t size)
{
    if (n->name && *n->name)
        snprintf(buf, size, "node '%s' (%s)", n->name, n->op_type);
    else
        snprintf(buf, size, "unnamed %s node", n->op_type);
    return buf;
}

/* Values defined before any node runs: graph inputs and initializers. */
static bool is_source(const joule_value *v)
{
    return (v->flags & (JOULE_VALUE_INPUT | JOULE_VALUE_INITIALIZER)) != 0;
}

joule_status joule_graph_validate(const joule_graph *g, joule_error *err)
{
    char lbl[300];
    const unsigned defined = 1u << 30;
    joule_status st = JOULE_OK;
    for (size_t i = 0; i < g->n_values; i++)
        g->values[i]->flags &= ~defined;
    for (size_t i = 0; i < g->n_nodes && !st; i++) {
        const joule_node *n = g->nodes[i];
        for (int k = 0; k < n->n_inputs && !st; k++) {
            const joule_value *v = n->inputs[k];
            if (!v || is_source(v) || (v->flags & defined))
                continue;
            if (joule_graph_producer(g, v))
                st = joule_fail(err, JOULE_ERR_INVALID,
                                "%s reads '%s' before it is produced (cycle or bad order)",
                                node_label(n, lbl, sizeof lbl), v->name);
            else
                st = joule_fail(err, JOULE_ERR_INVALID, "%s reads '%s', which nothing produces",
                                node_label(n, lbl, sizeof lbl), v->name);
        }
        for (int k = 0; k < n->n_outputs && !st; k++) {
            joule_value *v = n->outputs[k];
            if (!v)
                continue;
            if ((v->flags & defined) || is_source(v))
                st = joule_fail(err, JOULE_ERR_INVALID, "%s writes '%s', which is already defined",
                                node_label(n, lbl, sizeof lbl), v->name);
            v->flags |= defined;
        }
    }
    for (size_t i = 0; i < g->n_outputs && !st; i++) {
        const joule_value *v = g->outputs[i];
        if (!is_source(v) && !(v->flags & defined))
            st = joule_fail(err, JOULE_ERR_INVALID, "graph output '%s' is produced by no node",
                            v->name);
    }
    for (size_t i = 0; i < g->n_values; i++)
        g->values[i]->flags &= ~defined;
    return st;
}

joule_status joule_graph_toposort(joule_graph *g, joule_error *err)
{
    size_t n = g->n_nodes;
    const unsigned defined = 1u << 30;
    joule_node **order = malloc((n ? n : 1) * sizeof *order);
    bool *placed = calloc(n ? n : 1, sizeof *placed);
    if (!order || !placed) {
        free(order);
        free(placed);
        return joule_fail(err, JOULE_ERR_NOMEM, "toposort: out of memory");
    }
    for (size_t i = 0; i < g->n_values; i++)
        g->values[i]->flags &= ~defined;
    size_t done = 0;
    bool progress = true;
    /* repeated stable passes: fine for graphs of thousands of nodes already nearly in order */
    while (done < n && progress) {
        progress = false;
        for (size_t i = 0; i < n; i++) {
            if (placed[i])
                continue;
            joule_node *nd = g->nodes[i];
            bool ready = true;
            for (int k = 0; k < nd->n_inputs && ready; k++) {
                joule_value *v = nd->inputs[k];
                if (v && !is_source(v) && !(v->flags & defined) && joule_graph_producer(g, v))
                    ready = false;
            }
            if (!ready)
                continue;
            for (int k = 0; k < nd->n_outputs; k++)
                if (nd->outputs[k])
                    nd->outputs[k]->flags |= defined;
            placed[i] = true;
            order[done++] = nd;
            progress = true;
        }
    }
    joule_status st = JOULE_OK;
    if (done < n) {
        char lbl[300];
        for (size_t i = 0; i < n; i++)
            if (!placed[i]) {
                st = joule_fail(err, JOULE_ERR_INVALID, "graph has a cycle through %s",
                                node_label(g->nodes[i], lbl, sizeof lbl));
                break;
            }
    } else {
        if (n)
            memcpy(g->nodes, order, n * sizeof *order);
    }
    for (size_t i = 0; i < g->n_values; i++)
        g->values[i]->flags &= ~defined;
    free(order);
    free(placed);
    return st;
}

bool joule_node_is_op(const joule_node *n, const char *op_type)
{
    return n && n->op_type && strcmp(n->op_type, op_type) == 0 &&
           (!n->domain || !n->domain[0] || strcmp(n->domain, "ai.onnx") == 0);
}

/* ---- attributes ---- */

const joule_attr *joule_node_attr(const joule_node *n, const char *name)
{
    for (int i = 0; i < n->n_attrs; i++)
        if (strcmp(n->attrs[i].name, name) == 0)
            return &n->attrs[i];
    return NULL;
}

int64_t joule_attr_int(const joule_node *n, const char *name, int64_t dflt)
{
    const joule_attr *a = joule_node_attr(n, name);
    return a && a->type == JOULE_ATTR_INT ? a->i : dflt;
}

float joule_attr_float(const joule_node *n, const char *name, float dflt)
{
    const joule_attr *a = joule_node_attr(n, name);
    if (a && a->type == JOULE_ATTR_FLOAT)
        return a->f;
    if (a && a->type == JOULE_ATTR_INT)
        return (float)a->i;
    return dflt;
}

joule_string joule_attr_string(const joule_node *n, const char *name, const char *dflt)
{
    const joule_attr *a = joule_node_attr(n, name);
    if (a && a->type == JOULE_ATTR_STRING)
        return a->s;
    joule_string s = {dflt ? strlen(dflt) : 0, dflt};
    return s;
}

/* The attribute slot for name, appended (zeroed) when absent; old contents released. */
static joule_attr *attr_slot(joule_graph *g, joule_node *n, const char *name, joule_error *err)
{
    for (int i = 0; i < n->n_attrs; i++)
        if (strcmp(n->attrs[i].name, name) == 0) {
            joule_tensor_free(n->attrs[i].t);
            const char *nm = n->attrs[i].name;
            memset(&n->attrs[i], 0, sizeof n->attrs[i]);
            n->attrs[i].name = nm;
            return &n->attrs[i];
        }
    joule_attr *a = realloc(n->attrs, (size_t)(n->n_attrs + 1) * sizeof *a);
    const char *nm = joule_graph_intern(g, name);
    if (!a || !nm) {
        if (a)
            n->attrs = a;
        joule_fail(err, JOULE_ERR_NOMEM, "attribute '%s': out of memory", name);
        return NULL;
    }
    n->attrs = a;
    a = &n->attrs[n->n_attrs++];
    memset(a, 0, sizeof *a);
    a->name = nm;
    return a;
}

joule_status joule_node_set_attr_int(joule_graph *g, joule_node *n, const char *name, int64_t v,
                                     joule_error *err)
{
    joule_attr *a = attr_slot(g, n, name, err);
    if (!a)
        return JOULE_ERR_NOMEM;
    a->type = JOULE_ATTR_INT;
    a->i = v;
    return JOULE_OK;
}

joule_status joule_node_set_attr_float(joule_graph *g, joule_node *n, const char *name, float v,
                                       joule_error *err)
{
    joule_attr *a = attr_slot(g, n, name, err);
    if (!a)
        return JOULE_ERR_NOMEM;
    a->type = JOULE_ATTR_FLOAT;
    a->f = v;
    return JOULE_OK;
}

joule_status joule_node_set_attr_ints(joule_graph *g, joule_node *n, const char *name,
                                      const int64_t *v, size_t count, joule_error *err)
{
    joule_attr *a = attr_slot(g, n, name, err);
    if (!a)
        return JOULE_ERR_NOMEM;
    int64_t *copy = joule_graph_alloc(g, (count ? count : 1) * sizeof *copy);
    if (!copy)
        return joule_fail(err, JOULE_ERR_NOMEM, "attribute '%s': out of memory", name);
    if (count)
        memcpy(copy, v, count * sizeof *copy);
    a->type = JOULE_ATTR_INTS;
    a->ints = copy;
    a->count = count;
    return JOULE_OK;
}

joule_status joule_node_set_attr_string(joule_graph *g, joule_node *n, const char *name,
                                        const char *v, joule_error *err)
{
    joule_attr *a = attr_slot(g, n, name, err);
    if (!a)
        return JOULE_ERR_NOMEM;
    const char *copy = joule_graph_intern(g, v);
    if (!copy)
        return joule_fail(err, JOULE_ERR_NOMEM, "attribute '%s': out of memory", name);
    a->type = JOULE_ATTR_STRING;
    a->s.ptr = copy;
    a->s.len = strlen(copy);
    return JOULE_OK;
}

joule_status joule_node_set_attr_tensor(joule_graph *g, joule_node *n, const char *name,
                                        joule_tensor *t, joule_error *err)
{
    joule_attr *a = attr_slot(g, n, name, err);
    if (!a) {
        joule_tensor_free(t);
        return JOULE_ERR_NOMEM;
    }
    a->type = JOULE_ATTR_TENSOR;
    a->t = t;
    return JOULE_OK;
}

void joule_node_remove_attr(joule_node *n, const char *name)
{
    for (int i = 0; i < n->n_attrs; i++)
        if (strcmp(n->attrs[i].name, name) == 0) {
            joule_tensor_free(n->attrs[i].t);
            memmove(&n->attrs[i], &n->attrs[i + 1], (size_t)(n->n_attrs - i - 1) * sizeof *n->attrs);
            n->n_attrs--;
            return;
        }
}

/* ---- shapes ---- */

bool joule_shape_is_concrete(const joule_shape *s)
{
    if (s->rank < 0)
        return false;
    for (int i = 0; i < s->rank; i++)
        if (s->dims[i].size < 0)
            return false;
    return true;
}

void joule_shape_format(const joule_shape *s, char *buf, size_t size)
{
    if (s->rank < 0) {
        snprintf(buf, size, "?");
        return;
    }
    size_t off = 0;
    off += (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < s->rank && off < size; i++) {
        const joule_dim *d = &s->dims[i];
        const char *sep = i ? "," : "";
        if (d->size >= 0)
            off += (size_t)snprintf(buf + off, size - off, "%s%lld", sep, (long long)d->size);
        else
            off += (size_t)snprintf(buf + off, size - off, "%s%s", sep, d->sym ? d->sym : "?");
    }
    if (off < size)
        snprintf(buf + off, size - off, "]");
}

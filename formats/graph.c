/* formats/graph.c: the graph's storage: its arena, the name index of values, the declared lists,
 * creation and destruction of graphs and models, and lookups (value by name, producer,
 * consumers). Editing, validation and attributes are in graph_edit.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "formats/graph_internal.h"

struct arena_block {
    arena_block *next;
    size_t used, size;
    max_align_t data[];
};

int joule_grow(void *arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 8;
    while (n < need) {
        if (n > SIZE_MAX / 2 / elem)
            return -1;
        n *= 2;
    }
    void *p = realloc(*(void **)arr, n * elem);
    if (!p)
        return -1;
    *(void **)arr = p;
    *cap = n;
    return 0;
}

void *joule_graph_alloc(joule_graph *g, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    arena_block *b = g->priv->arena;
    if (!b || b->size - b->used < size) {
        size_t bsize = size > 65536 ? size : 65536;
        b = malloc(sizeof *b + bsize);
        if (!b)
            return NULL;
        b->size = bsize;
        b->used = 0;
        b->next = g->priv->arena;
        g->priv->arena = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += size;
    memset(p, 0, size);
    return p;
}

const char *joule_graph_intern_n(joule_graph *g, const char *s, size_t len)
{
    char *p = joule_graph_alloc(g, len + 1);
    if (!p)
        return NULL;
    if (len)
        memcpy(p, s, len);
    p[len] = 0;
    return p;
}

const char *joule_graph_intern(joule_graph *g, const char *s)
{
    return joule_graph_intern_n(g, s ? s : "", s ? strlen(s) : 0);
}

joule_status joule_graph_create(joule_graph **out, joule_error *err)
{
    joule_graph *g = calloc(1, sizeof *g);
    joule_graph_priv *p = calloc(1, sizeof *p);
    if (!g || !p) {
        free(g);
        free(p);
        return joule_fail(err, JOULE_ERR_NOMEM, "graph: out of memory");
    }
    g->priv = p;
    g->name = "";
    *out = g;
    return JOULE_OK;
}

void joule_node_destroy(joule_node *n)
{
    if (!n)
        return;
    for (int i = 0; i < n->n_attrs; i++)
        joule_tensor_free(n->attrs[i].t);
    free(n->attrs);
    free(n->inputs);
    free(n->outputs);
    free(n);
}

void joule_graph_destroy(joule_graph *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n_nodes; i++)
        joule_node_destroy(g->nodes[i]);
    for (size_t i = 0; i < g->n_values; i++) {
        joule_tensor_free(g->values[i]->data);
        free(g->values[i]);
    }
    free(g->nodes);
    free(g->values);
    free(g->inputs);
    free(g->outputs);
    free(g->initializers);
    free(g->value_info);
    arena_block *b = g->priv->arena;
    while (b) {
        arena_block *next = b->next;
        free(b);
        b = next;
    }
    free(g->priv->slots);
    free(g->priv);
    free(g);
}

/* ---- name index ---- */

static size_t hash_name(const char *s)
{
    size_t h = 1469598103934665603u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

static int index_rebuild(joule_graph *g, size_t n_slots)
{
    joule_value **slots = calloc(n_slots, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < g->n_values; i++) {
        size_t h = hash_name(g->values[i]->name) & (n_slots - 1);
        while (slots[h])
            h = (h + 1) & (n_slots - 1);
        slots[h] = g->values[i];
    }
    free(g->priv->slots);
    g->priv->slots = slots;
    g->priv->n_slots = n_slots;
    return 0;
}

/* Re-indexes after a value was added, removed or renamed. */
static int index_refresh(joule_graph *g)
{
    size_t n = g->priv->n_slots ? g->priv->n_slots : 64;
    while (n < g->n_values * 2 + 2)
        n *= 2;
    return index_rebuild(g, n);
}

joule_value *joule_graph_find_value(const joule_graph *g, const char *name)
{
    if (!name || !g->priv->n_slots)
        return NULL;
    size_t mask = g->priv->n_slots - 1;
    for (size_t h = hash_name(name) & mask;; h = (h + 1) & mask) {
        joule_value *v = g->priv->slots[h];
        if (!v)
            return NULL;
        if (strcmp(v->name, name) == 0)
            return v;
    }
}

static joule_status add_value(joule_graph *g, const char *name, joule_value **out, joule_error *err)
{
    joule_value *v = calloc(1, sizeof *v);
    const char *nm = joule_graph_intern(g, name);
    if (!v || !nm || joule_grow(&g->values, &g->priv->cap_values, g->n_values + 1, sizeof *g->values)) {
        free(v);
        return joule_fail(err, JOULE_ERR_NOMEM, "graph: out of memory adding value '%s'", name);
    }
    v->name = nm;
    v->shape.rank = -1;
    v->origin_shape.rank = -1;
    g->values[g->n_values++] = v;
    if (g->priv->n_slots < g->n_values * 2 + 2) {
        if (index_refresh(g)) {
            g->n_values--;
            free(v);
            return joule_fail(err, JOULE_ERR_NOMEM, "graph: out of memory indexing values");
        }
    } else {
        size_t mask = g->priv->n_slots - 1, h = hash_name(nm) & mask;
        while (g->priv->slots[h])
            h = (h + 1) & mask;
        g->priv->slots[h] = v;
    }
    *out = v;
    return JOULE_OK;
}

joule_status joule_graph_value(joule_graph *g, const char *name, joule_value **out, joule_error *err)
{
    joule_value *v = joule_graph_find_value(g, name);
    if (v) {
        *out = v;
        return JOULE_OK;
    }
    return add_value(g, name, out, err);
}

joule_status joule_graph_new_value(joule_graph *g, const char *hint, joule_value **out,
                                   joule_error *err)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", hint && *hint ? hint : "v");
    for (unsigned long i = 1; joule_graph_find_value(g, buf); i++)
        snprintf(buf, sizeof buf, "%.480s_%lu", hint && *hint ? hint : "v", i);
    return add_value(g, buf, out, err);
}

joule_status joule_graph_rename_value(joule_graph *g, joule_value *v, const char *new_name,
                                      joule_error *err)
{
    if (joule_graph_find_value(g, new_name))
        return joule_fail(err, JOULE_ERR_INVALID, "rename '%s': the name '%s' is already taken",
                          v->name, new_name);
    const char *nm = joule_graph_intern(g, new_name);
    if (!nm)
        return joule_fail(err, JOULE_ERR_NOMEM, "rename: out of memory");
    v->name = nm;
    v->origin = NULL; /* its ValueInfoProto carries the old name */
    if (index_refresh(g))
        return joule_fail(err, JOULE_ERR_NOMEM, "rename: out of memory indexing values");
    return JOULE_OK;
}

/* Frees values that nothing uses; keeps the index consistent. */
void joule_graph_prune_values(joule_graph *g)
{
    size_t n = g->n_values;
    /* mark what nodes touch with a temporary tag in flags' high bit */
    const unsigned tag = 1u << 31;
    for (size_t i = 0; i < g->n_nodes; i++) {
        joule_node *nd = g->nodes[i];
        for (int k = 0; k < nd->n_inputs; k++)
            if (nd->inputs[k])
                nd->inputs[k]->flags |= tag;
        for (int k = 0; k < nd->n_outputs; k++)
            if (nd->outputs[k])
                nd->outputs[k]->flags |= tag;
    }
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        joule_value *v = g->values[i];
        bool keep = (v->flags & tag) || (v->flags & (JOULE_VALUE_INPUT | JOULE_VALUE_OUTPUT |
                                                      JOULE_VALUE_INFO));
        v->flags &= ~tag;
        if (keep) {
            g->values[w++] = v;
            continue;
        }
        /* drop it from the initializer list */
        size_t k2 = 0;
        for (size_t k = 0; k < g->n_initializers; k++)
            if (g->initializers[k] != v)
                g->initializers[k2++] = g->initializers[k];
        g->n_initializers = k2;
        joule_tensor_free(v->data);
        free(v);
    }
    g->n_values = w;
    index_refresh(g);
}

joule_status joule_graph_list_add(joule_graph *g, char which, joule_value *v, joule_error *err)
{
    joule_value ***arr;
    size_t *n, *cap;
    unsigned flag;
    switch (which) {
    case 'i': arr = &g->inputs; n = &g->n_inputs; cap = &g->priv->cap_inputs; flag = JOULE_VALUE_INPUT; break;
    case 'o': arr = &g->outputs; n = &g->n_outputs; cap = &g->priv->cap_outputs; flag = JOULE_VALUE_OUTPUT; break;
    case 'n': arr = &g->initializers; n = &g->n_initializers; cap = &g->priv->cap_inits; flag = JOULE_VALUE_INITIALIZER; break;
    default: arr = &g->value_info; n = &g->n_value_info; cap = &g->priv->cap_vinfo; flag = JOULE_VALUE_INFO; break;
    }
    if (joule_grow(arr, cap, *n + 1, sizeof **arr))
        return joule_fail(err, JOULE_ERR_NOMEM, "graph: out of memory");
    (*arr)[(*n)++] = v;
    v->flags |= flag;
    return JOULE_OK;
}

joule_status joule_graph_add_input(joule_graph *g, joule_value *v, joule_error *err)
{
    return (v->flags & JOULE_VALUE_INPUT) ? JOULE_OK : joule_graph_list_add(g, 'i', v, err);
}

joule_status joule_graph_add_output(joule_graph *g, joule_value *v, joule_error *err)
{
    return (v->flags & JOULE_VALUE_OUTPUT) ? JOULE_OK : joule_graph_list_add(g, 'o', v, err);
}

joule_status joule_graph_append_node(joule_graph *g, joule_node *node, joule_error *err)
{
    if (joule_grow(&g->nodes, &g->priv->cap_nodes, g->n_nodes + 1, sizeof *g->nodes))
        return joule_fail(err, JOULE_ERR_NOMEM, "graph: out of memory adding node '%s'", node->name);
    g->nodes[g->n_nodes++] = node;
    return JOULE_OK;
}

/* ---- lookups ---- */

joule_node *joule_graph_producer(const joule_graph *g, const joule_value *v)
{
    for (size_t i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i]->n_outputs; k++)
            if (g->nodes[i]->outputs[k] == v)
                return g->nodes[i];
    return NULL;
}

joule_status joule_graph_consumers(const joule_graph *g, const joule_value *v, joule_node ***out,
                                   size_t *n, joule_error *err)
{
    *out = NULL;
    *n = 0;
    size_t cap = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        joule_node *nd = g->nodes[i];
        for (int k = 0; k < nd->n_inputs; k++) {
            if (nd->inputs[k] != v)
                continue;
            if (joule_grow(out, &cap, *n + 1, sizeof **out)) {
                free(*out);
                *out = NULL;
                *n = 0;
                return joule_fail(err, JOULE_ERR_NOMEM, "graph: out of memory");
            }
            (*out)[(*n)++] = nd;
            break;
        }
    }
    return JOULE_OK;
}

long joule_graph_node_index(const joule_graph *g, const joule_node *node)
{
    for (size_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i] == node)
            return (long)i;
    return -1;
}

/* ---- models ---- */

joule_status joule_model_new(int64_t opset, joule_model **out, joule_error *err)
{
    *out = NULL;
    joule_model *m = calloc(1, sizeof *m);
    joule_model_priv *p = calloc(1, sizeof *p);
    if (!m || !p) {
        free(m);
        free(p);
        return joule_fail(err, JOULE_ERR_NOMEM, "model: out of memory");
    }
    m->priv = p;
    joule_status st = joule_graph_create(&m->graph, err);
    if (st) {
        free(p);
        free(m);
        return st;
    }
    m->ir_version = 8;
    m->producer_name = "joule";
    m->producer_version = JOULE_VERSION;
    m->domain = "";
    m->opsets = joule_graph_alloc(m->graph, sizeof *m->opsets);
    if (!m->opsets) {
        joule_model_free(m);
        return joule_fail(err, JOULE_ERR_NOMEM, "model: out of memory");
    }
    m->opsets[0].domain = "";
    m->opsets[0].version = opset;
    m->n_opsets = 1;
    *out = m;
    return JOULE_OK;
}

int64_t joule_model_opset(const joule_model *m, const char *domain)
{
    if (!domain || strcmp(domain, "ai.onnx") == 0)
        domain = "";
    for (size_t i = 0; i < m->n_opsets; i++) {
        const char *d = m->opsets[i].domain ? m->opsets[i].domain : "";
        if (strcmp(d, "ai.onnx") == 0)
            d = "";
        if (strcmp(d, domain) == 0)
            return m->opsets[i].version;
    }
    return 0;
}

/* formats/infer.c: graph-level shape and dtype inference. Walks the nodes in topological order,
 * asks each op's entry in the op table (formats/ops/) for its outputs' dtypes and shapes, and
 * carries small integer tensors computed along the way (Shape -> Gather -> Concat chains) so that
 * Reshape, Expand and friends get concrete shapes. Also parses "NAME=1x3x224x224" arguments. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/ops/ops.h"
#include "joule/infer.h"

/* ---- NAME=DIMS ---- */

joule_status joule_parse_input_shape(const char *arg, char *name_buf, size_t name_size,
                                     joule_input_shape *out, joule_error *err)
{
    memset(out, 0, sizeof *out);
    if (!arg)
        return joule_fail(err, JOULE_ERR_INVALID, "input shape: missing argument");
    const char *eq = strrchr(arg, '=');
    if (!eq)
        return joule_fail(err, JOULE_ERR_INVALID,
                          "input shape '%s': expected NAME=DIMS, e.g. input=1x3x224x224", arg);
    size_t name_len = (size_t)(eq - arg);
    if (name_len == 0)
        return joule_fail(err, JOULE_ERR_INVALID, "input shape '%s': the input name is empty",
                          arg);
    if (!name_buf || name_len + 1 > name_size)
        return joule_fail(err, JOULE_ERR_INVALID, "input shape '%s': the name is too long", arg);
    memcpy(name_buf, arg, name_len);
    name_buf[name_len] = '\0';
    size_t used = name_len + 1; /* symbols are stored in name_buf after the name */
    const char *p = eq + 1;
    char sep = strchr(p, ',') ? ',' : 'x';
    joule_shape s = {.rank = 0};
    while (*p) {
        const char *end = strchr(p, sep);
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (s.rank == JOULE_MAX_RANK)
            return joule_fail(err, JOULE_ERR_INVALID,
                              "input shape '%s': more than %d dims (joule's limit)", arg,
                              JOULE_MAX_RANK);
        joule_dim d = {-1, NULL};
        if (len == 0)
            return joule_fail(err, JOULE_ERR_INVALID, "input shape '%s': dim %d is empty", arg,
                              s.rank);
        if (p[0] == '-' && len > 1 && isdigit((unsigned char)p[1])) {
            return joule_fail(err, JOULE_ERR_INVALID, "input shape '%s': dim %d (%.*s) is negative",
                              arg, s.rank, (int)len, p);
        } else if (isdigit((unsigned char)p[0])) {
            int64_t v = 0;
            for (size_t i = 0; i < len; i++) {
                if (!isdigit((unsigned char)p[i]))
                    return joule_fail(err, JOULE_ERR_INVALID,
                                      "input shape '%s': dim %d (%.*s) is not a number or a name",
                                      arg, s.rank, (int)len, p);
                int digit = p[i] - '0';
                if (v > (INT64_MAX - digit) / 10)
                    return joule_fail(err, JOULE_ERR_INVALID,
                                      "input shape '%s': dim %d (%.*s) is too large", arg, s.rank,
                                      (int)len, p);
                v = v * 10 + digit;
            }
            d.size = v;
        } else if (len == 1 && p[0] == '?') {
            /* unknown, unnamed */
        } else {
            for (size_t i = 0; i < len; i++)
                if (!(isalnum((unsigned char)p[i]) || p[i] == '_' || p[i] == '.' ||
                      (i > 0 && p[i] == '-')))
                    return joule_fail(err, JOULE_ERR_INVALID,
                                      "input shape '%s': dim %d (%.*s) is not a number or a name",
                                      arg, s.rank, (int)len, p);
            if (used + len + 1 > name_size)
                return joule_fail(err, JOULE_ERR_INVALID,
                                  "input shape '%s': too long for the name buffer", arg);
            memcpy(name_buf + used, p, len);
            name_buf[used + len] = '\0';
            d.sym = name_buf + used;
            used += len + 1;
        }
        s.dims[s.rank++] = d;
        if (!end)
            break;
        p = end + 1;
        if (!*p)
            return joule_fail(err, JOULE_ERR_INVALID, "input shape '%s': dim %d is empty", arg,
                              s.rank);
    }
    out->name = name_buf;
    out->shape = s;
    return JOULE_OK;
}

/* ---- propagated values, by value ---- */

typedef struct prop_entry {
    const joule_value *key;
    joule_tensor *t;   /* owned */
    joule_shape *dv;   /* owned */
} prop_entry;

typedef struct prop_map {
    prop_entry *slots;
    size_t n_slots; /* power of two */
} prop_map;

static size_t ptr_hash(const void *p)
{
    uintptr_t x = (uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t)x;
}

static prop_entry *prop_slot(prop_map *m, const joule_value *v, bool insert)
{
    size_t mask = m->n_slots - 1;
    for (size_t i = ptr_hash(v) & mask;; i = (i + 1) & mask) {
        if (m->slots[i].key == v)
            return &m->slots[i];
        if (!m->slots[i].key) {
            if (!insert)
                return NULL;
            m->slots[i].key = v;
            return &m->slots[i];
        }
    }
}

static void prop_free(prop_map *m)
{
    for (size_t i = 0; i < m->n_slots; i++) {
        joule_tensor_free(m->slots[i].t);
        free(m->slots[i].dv);
    }
    free(m->slots);
}

/* ---- merging an inferred shape into a value ---- */

static void merge_shape(joule_value *v, const joule_shape *inf)
{
    if (inf->rank < 0)
        return;
    if (v->shape.rank != inf->rank) {
        v->shape = *inf;
        return;
    }
    for (int i = 0; i < inf->rank; i++) {
        joule_dim *d = &v->shape.dims[i];
        joule_dim n = inf->dims[i];
        if (n.size >= 0)
            *d = n; /* concrete wins */
        else if (n.sym && d->size < 0)
            *d = n; /* a propagated symbol over an unknown (or other symbol) */
    }
}

/* ---- the walk ---- */

static joule_status apply_overrides(joule_graph *g, const joule_input_shape *inputs, size_t n,
                                    joule_error *err)
{
    for (size_t k = 0; k < n; k++) {
        const joule_input_shape *in = &inputs[k];
        joule_value *v = in->name ? joule_graph_find_value(g, in->name) : NULL;
        if (!v || !(v->flags & JOULE_VALUE_INPUT))
            return joule_fail(err, JOULE_ERR_NOT_FOUND, "input shape for '%s': no graph input "
                              "of that name", in->name ? in->name : "(null)");
        if (v->data)
            return joule_fail(err, JOULE_ERR_INVALID, "input shape for '%s': it is an "
                              "initializer (a weight), not a data input", in->name);
        char decl[256], given[256];
        if (in->shape.rank < 0 || in->shape.rank > JOULE_MAX_RANK)
            return joule_fail(err, JOULE_ERR_INVALID, "input shape for '%s': rank %d is invalid",
                              in->name, in->shape.rank);
        if (v->shape.rank >= 0 && v->shape.rank != in->shape.rank) {
            joule_shape_format(&v->shape, decl, sizeof decl);
            joule_shape_format(&in->shape, given, sizeof given);
            return joule_fail(err, JOULE_ERR_INVALID, "input shape for '%s': %s has rank %d but "
                              "the model declares %s (rank %d)", in->name, given, in->shape.rank,
                              decl, v->shape.rank);
        }
        joule_shape s = in->shape;
        for (int i = 0; i < s.rank; i++) {
            if (s.dims[i].size < 0 && s.dims[i].sym) {
                s.dims[i].sym = joule_graph_intern(g, s.dims[i].sym);
                if (!s.dims[i].sym)
                    return joule_fail(err, JOULE_ERR_NOMEM, "input shape for '%s': out of memory",
                                      in->name);
            } else if (s.dims[i].size >= 0) {
                s.dims[i].sym = NULL;
            }
        }
        v->shape = s;
    }
    return JOULE_OK;
}

/* Per-node scratch, grown to the largest node. */
typedef struct scratch {
    joule_infer_io *in, *out;
    joule_tensor **vals;
    joule_shape *dvs;
    int cap_in, cap_out;
} scratch;

static bool scratch_fit(scratch *s, int n_in, int n_out)
{
    if (n_in > s->cap_in) {
        joule_infer_io *p = realloc(s->in, (size_t)n_in * sizeof *p);
        if (!p)
            return false;
        s->in = p;
        s->cap_in = n_in;
    }
    if (n_out > s->cap_out) {
        joule_infer_io *p = realloc(s->out, (size_t)n_out * sizeof *p);
        joule_tensor **v = p ? realloc(s->vals, (size_t)n_out * sizeof *v) : NULL;
        joule_shape *d = v ? realloc(s->dvs, (size_t)n_out * sizeof *d) : NULL;
        if (p)
            s->out = p;
        if (v)
            s->vals = v;
        if (!d)
            return false;
        s->dvs = d;
        s->cap_out = n_out;
    }
    return true;
}

static joule_status infer_node(joule_model *m, joule_node *node, prop_map *pm, scratch *sc,
                               joule_error *err)
{
    const char *domain = node->domain ? node->domain : "";
    const joule_op_def *def = joule_op_find(domain, node->op_type);
    if (!def || !def->infer)
        return JOULE_OK;
    int64_t opset = joule_model_opset(m, domain);
    if (opset <= 0)
        opset = 17; /* no import for the default domain: assume the newest we know */
    if (opset < def->since_version)
        return JOULE_OK;
    int n_in = node->n_inputs, n_out = node->n_outputs;
    if (!scratch_fit(sc, n_in > 0 ? n_in : 1, n_out > 0 ? n_out : 1))
        return joule_fail(err, JOULE_ERR_NOMEM, "%s node '%s': out of memory", node->op_type,
                          node->name ? node->name : "");
    for (int i = 0; i < n_in; i++) {
        joule_infer_io *io = &sc->in[i];
        const joule_value *v = node->inputs[i];
        memset(io, 0, sizeof *io);
        io->shape.rank = -1;
        if (!v)
            continue;
        io->present = true;
        io->dtype = v->dtype;
        io->shape = v->shape;
        if (v->data) {
            io->value = v->data;
            if (io->dtype == JOULE_UNDEFINED)
                io->dtype = v->data->dtype;
            io->shape.rank = v->data->rank;
            for (int k = 0; k < v->data->rank; k++) {
                io->shape.dims[k].size = v->data->dims[k];
                io->shape.dims[k].sym = NULL;
            }
        } else {
            prop_entry *e = prop_slot(pm, v, false);
            if (e && e->t) { /* the computed contents define the shape */
                io->value = e->t;
                io->shape.rank = e->t->rank;
                for (int k = 0; k < e->t->rank; k++) {
                    io->shape.dims[k].size = e->t->dims[k];
                    io->shape.dims[k].sym = NULL;
                }
            } else if (e && e->dv && io->shape.rank >= 0 && io->shape.rank <= 1) {
                io->dims_value = e->dv;
            }
        }
    }
    for (int i = 0; i < n_out; i++) {
        memset(&sc->out[i], 0, sizeof sc->out[i]);
        sc->out[i].present = node->outputs[i] != NULL;
        sc->out[i].shape.rank = -1;
        sc->vals[i] = NULL;
        sc->dvs[i].rank = -1;
    }
    joule_infer_ctx c = {
        .node = node,
        .opset = opset,
        .n_in = n_in,
        .in = sc->in,
        .n_out = n_out,
        .out = sc->out,
        .out_values = sc->vals,
        .graph = m->graph,
        .err = err,
        .out_dims_values = sc->dvs,
    };
    joule_status st = def->infer(&c);
    for (int i = 0; i < n_out; i++) {
        joule_value *v = node->outputs[i];
        if (st == JOULE_OK && v && !v->data) {
            if (sc->out[i].dtype != JOULE_UNDEFINED)
                v->dtype = sc->out[i].dtype;
            merge_shape(v, &sc->out[i].shape);
            if (sc->vals[i] || sc->dvs[i].rank >= 0) {
                prop_entry *e = prop_slot(pm, v, true);
                joule_tensor_free(e->t);
                e->t = sc->vals[i];
                sc->vals[i] = NULL;
                if (sc->dvs[i].rank >= 0 && !e->t) {
                    if (!e->dv)
                        e->dv = malloc(sizeof *e->dv);
                    if (e->dv)
                        *e->dv = sc->dvs[i];
                }
            }
        }
        joule_tensor_free(sc->vals[i]);
        sc->vals[i] = NULL;
    }
    return st;
}

joule_status joule_infer_shapes(joule_model *m, const joule_input_shape *inputs, size_t n_inputs,
                                joule_error *err)
{
    if (!m || !m->graph)
        return joule_fail(err, JOULE_ERR_INVALID, "infer: no model");
    joule_graph *g = m->graph;
    joule_status st = apply_overrides(g, inputs, n_inputs, err);
    if (st)
        return st;
    prop_map pm = {0};
    pm.n_slots = 64;
    while (pm.n_slots < 2 * g->n_values + 2)
        pm.n_slots *= 2;
    pm.slots = calloc(pm.n_slots, sizeof *pm.slots);
    if (!pm.slots)
        return joule_fail(err, JOULE_ERR_NOMEM, "infer: out of memory");
    scratch sc = {0};
    for (size_t i = 0; i < g->n_nodes && st == JOULE_OK; i++)
        st = infer_node(m, g->nodes[i], &pm, &sc, err);
    free(sc.in);
    free(sc.out);
    free(sc.vals);
    free(sc.dvs);
    prop_free(&pm);
    return st;
}

/* formats/model_info.c: the model summary behind `joule info`: node counts by op, parameters and
 * bytes by dtype, a per-layer table with sparsity and MACs, and its JSON form (cJSON). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/graph_internal.h"
#include "joule/info.h"

/* The tensor a Constant node holds in `value` or `sparse_value` (densified at load), or NULL. */
static const joule_tensor *constant_value(const joule_node *n)
{
    const joule_attr *a = joule_node_attr(n, "value");
    if (!a)
        a = joule_node_attr(n, "sparse_value");
    return a ? a->t : NULL;
}

/* The constant tensor behind v: its initializer, or the value of the Constant node making it. */
static const joule_tensor *constant_of(const joule_graph *g, const joule_value *v)
{
    if (!v)
        return NULL;
    if (v->data)
        return v->data;
    const joule_node *p = joule_graph_producer(g, v);
    if (p && strcmp(p->op_type, "Constant") == 0 && p->domain[0] == 0)
        return constant_value(p);
    return NULL;
}

static uint64_t dim_or_1(const joule_value *v, int i, int *assumed)
{
    if (!v || v->shape.rank <= i || i < 0)
        return 1;
    int64_t d = v->shape.dims[i].size;
    if (d < 0) {
        *assumed = 1;
        return 1;
    }
    return (uint64_t)d;
}

static uint64_t elems(const joule_value *v, int from, int to, int *assumed)
{
    uint64_t n = 1;
    for (int i = from; i < to; i++)
        n *= dim_or_1(v, i, assumed);
    return n;
}

/* Multiply-accumulates of one node at its inferred shapes (0 for ops without products). */
static uint64_t node_macs(const joule_node *n, int *assumed)
{
    const char *op = n->op_type;
    const joule_value *x = n->n_inputs > 0 ? n->inputs[0] : NULL;
    const joule_value *w = n->n_inputs > 1 ? n->inputs[1] : NULL;
    const joule_value *y = n->n_outputs > 0 ? n->outputs[0] : NULL;
    if (!x || !y || y->shape.rank < 0)
        return 0;
    bool qlinear = strcmp(op, "QLinearConv") == 0 || strcmp(op, "QLinearMatMul") == 0;
    if (qlinear)
        w = n->n_inputs > 3 ? n->inputs[3] : NULL;
    if (!w || w->shape.rank < 0)
        return 0;
    if (strcmp(op, "Conv") == 0 || strcmp(op, "ConvInteger") == 0 || strcmp(op, "QLinearConv") == 0) {
        /* out elements x (C_in / group) x kernel elements = out elements x prod(w dims 1..) */
        return elems(y, 0, y->shape.rank, assumed) * elems(w, 1, w->shape.rank, assumed);
    }
    if (strcmp(op, "ConvTranspose") == 0) /* every input element meets every kernel tap */
        return elems(x, 0, x->shape.rank, assumed) * elems(w, 1, w->shape.rank, assumed);
    if (strcmp(op, "Gemm") == 0) {
        int64_t ta = joule_attr_int(n, "transA", 0);
        uint64_t k = dim_or_1(x, ta ? 0 : 1, assumed);
        return elems(y, 0, y->shape.rank, assumed) * k;
    }
    if (strcmp(op, "MatMul") == 0 || strcmp(op, "MatMulInteger") == 0 || strcmp(op, "QLinearMatMul") == 0) {
        uint64_t k = dim_or_1(x, x->shape.rank - 1, assumed);
        return elems(y, 0, y->shape.rank, assumed) * k;
    }
    return 0;
}

static joule_info_count *count_slot(joule_info_count **arr, size_t *n, const char *key)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*arr)[i].key, key) == 0)
            return &(*arr)[i];
    joule_info_count *p = realloc(*arr, (*n + 1) * sizeof *p);
    if (!p)
        return NULL;
    *arr = p;
    p[*n] = (joule_info_count){.key = key};
    return &p[(*n)++];
}

static uint64_t count_zeros(const joule_tensor *t)
{
    const joule_dtype_traits *tr = joule_dtype_info(t->dtype);
    if (!tr->to_f32)
        return 0;
    uint64_t z = 0;
    if (t->dtype == JOULE_F32) {
        const float *p = t->data;
        for (size_t i = 0; i < t->count; i++)
            z += p[i] == 0.0f;
        return z;
    }
    for (size_t i = 0; i < t->count; i++)
        z += tr->to_f32(t->data, i) == 0.0f;
    return z;
}

static void add_params(joule_info *info, const joule_tensor *t, bool *oom)
{
    if (t->dtype == JOULE_STRING)
        return;
    joule_info_count *c = count_slot(&info->dtypes, &info->n_dtypes, joule_dtype_name(t->dtype));
    if (!c) {
        *oom = true;
        return;
    }
    c->count += t->count;
    c->bytes += t->nbytes;
    info->total_params += t->count;
    info->total_bytes += t->nbytes;
}

/* Shapes for inference: the caller's, else declared ones with unknown dims as 1. */
static joule_status infer_for_info(joule_model *m, const joule_input_shape *shapes, size_t n,
                                   joule_info *info, joule_error *err)
{
    const joule_graph *g = m->graph;
    joule_input_shape *all = calloc(g->n_inputs + n + 1, sizeof *all);
    if (!all)
        return joule_fail(err, JOULE_ERR_NOMEM, "info: out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        all[k++] = shapes[i];
    for (size_t i = 0; i < g->n_inputs; i++) {
        const joule_value *v = g->inputs[i];
        bool given = false;
        for (size_t j = 0; j < n; j++)
            given |= strcmp(shapes[j].name, v->name) == 0;
        if (given || v->data || v->shape.rank < 0 || joule_shape_is_concrete(&v->shape))
            continue;
        all[k].name = v->name;
        all[k].shape = v->shape;
        for (int d = 0; d < v->shape.rank; d++)
            if (all[k].shape.dims[d].size < 0) {
                all[k].shape.dims[d].size = 1;
                all[k].shape.dims[d].sym = NULL;
                info->macs_assumed_batch1 = 1;
            }
        k++;
    }
    joule_status st = joule_infer_shapes(m, all, k, err);
    free(all);
    return st;
}

/* Snapshot of declared inputs (weights excluded) or outputs after the symbolic pass. */
static joule_info_io *snapshot(joule_value *const *vals, size_t n, bool skip_weights, size_t *count)
{
    joule_info_io *io = calloc(n + 1, sizeof *io);
    *count = 0;
    for (size_t i = 0; io && i < n; i++) {
        if (skip_weights && vals[i]->data)
            continue;
        io[*count].name = vals[i]->name;
        io[*count].dtype = vals[i]->dtype;
        io[(*count)++].shape = vals[i]->shape;
    }
    return io;
}

joule_status joule_model_info(joule_model *m, const joule_input_shape *shapes, size_t n_shapes,
                              joule_info **out, joule_error *err)
{
    *out = NULL;
    joule_info *info = calloc(1, sizeof *info);
    if (!info)
        return joule_fail(err, JOULE_ERR_NOMEM, "info: out of memory");
    const joule_graph *g0 = m->graph;
    joule_status st = joule_infer_shapes(m, shapes, n_shapes, err);
    if (!st) {
        info->inputs = snapshot(g0->inputs, g0->n_inputs, true, &info->n_inputs);
        info->outputs = snapshot(g0->outputs, g0->n_outputs, false, &info->n_outputs);
        if (!info->inputs || !info->outputs)
            st = joule_fail(err, JOULE_ERR_NOMEM, "info: out of memory");
    }
    if (!st)
        st = infer_for_info(m, shapes, n_shapes, info, err);
    if (st) {
        joule_info_free(info);
        return st;
    }
    joule_graph *g = m->graph;
    bool oom = false;
    info->layers = calloc(g->n_nodes + 1, sizeof *info->layers);
    oom = !info->layers;
    for (size_t i = 0; i < g->n_initializers && !oom; i++)
        if (g->initializers[i]->data)
            add_params(info, g->initializers[i]->data, &oom);
    info->total_nodes = g->n_nodes;
    for (size_t i = 0; i < g->n_nodes && !oom; i++) {
        const joule_node *n = g->nodes[i];
        joule_info_count *c = count_slot(&info->ops, &info->n_ops, n->op_type);
        if (!c) {
            oom = true;
            break;
        }
        c->count++;
        if (strcmp(n->op_type, "Constant") == 0 && constant_value(n))
            add_params(info, constant_value(n), &oom);
        int assumed = 0;
        uint64_t macs = node_macs(n, &assumed);
        info->total_macs += macs;
        /* the layer's weight: its largest constant input with more than one element */
        const joule_tensor *wt = NULL;
        const joule_value *wv = NULL;
        uint64_t params = 0;
        for (int k = 0; k < n->n_inputs; k++) {
            const joule_tensor *t = constant_of(g, n->inputs[k]);
            if (!t || t->dtype == JOULE_STRING || t->dtype == JOULE_I64)
                continue; /* int64 constants are shapes and axes, not weights */
            params += t->count;
            if (t->count > 1 && (!wt || t->count > wt->count)) {
                wt = t;
                wv = n->inputs[k];
            }
        }
        if (!wt)
            continue;
        info->macs_assumed_batch1 |= assumed;
        joule_info_layer *l = &info->layers[info->n_layers++];
        if (n->name[0]) {
            l->name = n->name;
        } else {
            char buf[128];
            snprintf(buf, sizeof buf, "%s_%zu", n->op_type, i);
            l->name = joule_graph_intern(g, buf);
        }
        l->op_type = n->op_type;
        l->weight = wv->name;
        l->weight_shape.rank = wt->rank;
        for (int d = 0; d < wt->rank; d++)
            l->weight_shape.dims[d].size = wt->dims[d];
        l->dtype = wt->dtype;
        l->params = params;
        l->zeros = count_zeros(wt);
        l->sparsity = wt->count ? (double)l->zeros / (double)wt->count : 0.0;
        l->macs = macs;
    }
    if (oom) {
        joule_info_free(info);
        return joule_fail(err, JOULE_ERR_NOMEM, "info: out of memory");
    }
    *out = info;
    return JOULE_OK;
}

void joule_info_free(joule_info *info)
{
    if (!info)
        return;
    free(info->inputs);
    free(info->outputs);
    free(info->ops);
    free(info->dtypes);
    free(info->layers);
    free(info);
}

static cJSON *shape_json(const joule_shape *s)
{
    if (s->rank < 0)
        return cJSON_CreateNull();
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < s->rank; i++) {
        const joule_dim *d = &s->dims[i];
        cJSON_AddItemToArray(a, d->size >= 0 ? cJSON_CreateNumber((double)d->size)
                                             : d->sym ? cJSON_CreateString(d->sym) : cJSON_CreateNull());
    }
    return a;
}

static cJSON *values_json(const joule_info_io *io, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", io[i].name);
        cJSON_AddStringToObject(o, "dtype", joule_dtype_name(io[i].dtype));
        cJSON_AddItemToObject(o, "shape", shape_json(&io[i].shape));
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

joule_status joule_info_json(const joule_model *m, const joule_info *info, char **out,
                             joule_error *err)
{
    *out = NULL;
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return joule_fail(err, JOULE_ERR_NOMEM, "info: out of memory");
    cJSON_AddStringToObject(root, "path", m->path ? m->path : "");
    cJSON_AddNumberToObject(root, "ir_version", (double)m->ir_version);
    cJSON *ops = cJSON_AddArrayToObject(root, "opsets");
    for (size_t i = 0; i < m->n_opsets; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "domain", m->opsets[i].domain ? m->opsets[i].domain : "");
        cJSON_AddNumberToObject(o, "version", (double)m->opsets[i].version);
        cJSON_AddItemToArray(ops, o);
    }
    cJSON_AddStringToObject(root, "producer_name", m->producer_name ? m->producer_name : "");
    cJSON_AddStringToObject(root, "producer_version", m->producer_version ? m->producer_version : "");
    cJSON_AddItemToObject(root, "inputs", values_json(info->inputs, info->n_inputs));
    cJSON_AddItemToObject(root, "outputs", values_json(info->outputs, info->n_outputs));
    cJSON *nodes = cJSON_AddObjectToObject(root, "nodes_by_op");
    for (size_t i = 0; i < info->n_ops; i++)
        cJSON_AddNumberToObject(nodes, info->ops[i].key, (double)info->ops[i].count);
    cJSON *dts = cJSON_AddObjectToObject(root, "params_by_dtype");
    for (size_t i = 0; i < info->n_dtypes; i++) {
        cJSON *o = cJSON_AddObjectToObject(dts, info->dtypes[i].key);
        cJSON_AddNumberToObject(o, "params", (double)info->dtypes[i].count);
        cJSON_AddNumberToObject(o, "bytes", (double)info->dtypes[i].bytes);
    }
    cJSON *layers = cJSON_AddArrayToObject(root, "layers");
    for (size_t i = 0; i < info->n_layers; i++) {
        const joule_info_layer *l = &info->layers[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", l->name);
        cJSON_AddStringToObject(o, "op", l->op_type);
        cJSON_AddStringToObject(o, "weight", l->weight);
        cJSON_AddItemToObject(o, "weight_shape", shape_json(&l->weight_shape));
        cJSON_AddNumberToObject(o, "params", (double)l->params);
        cJSON_AddNumberToObject(o, "sparsity", l->sparsity);
        cJSON_AddStringToObject(o, "dtype", joule_dtype_name(l->dtype));
        cJSON_AddNumberToObject(o, "macs", (double)l->macs);
        cJSON_AddItemToArray(layers, o);
    }
    cJSON *tot = cJSON_AddObjectToObject(root, "totals");
    cJSON_AddNumberToObject(tot, "nodes", (double)info->total_nodes);
    cJSON_AddNumberToObject(tot, "params", (double)info->total_params);
    cJSON_AddNumberToObject(tot, "bytes", (double)info->total_bytes);
    cJSON_AddNumberToObject(tot, "macs", (double)info->total_macs);
    cJSON_AddBoolToObject(tot, "macs_assume_unknown_dims_are_1", info->macs_assumed_batch1);
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    if (!s)
        return joule_fail(err, JOULE_ERR_NOMEM, "info: out of memory");
    *out = s;
    return JOULE_OK;
}

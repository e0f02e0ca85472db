/* compress/quant_static.c: int8 static quantization with calibration (joule/quantize.h).
 *
 * Plan, then calibrate, then rewrite, so that every refusal (bad options, unsupported opset,
 * calibration data that does not fit, an empty set) comes before the model changes:
 *  1. anchors: Conv, MatMul and Gemm with constant float32 weights that are not excluded; their
 *     inputs and outputs are quantized tensors (the output after a Relu that alone reads it, so
 *     the chain DQ -> op -> Relu -> Q is the one joule's engine fuses into an integer kernel);
 *  2. neighbours whose float inputs are all quantized: MaxPool, Reshape, Flatten, Transpose,
 *     Squeeze, Unsqueeze share their input's parameters; Add, Concat, Relu, Clip, AveragePool,
 *     GlobalAveragePool get their own;
 *  3. calibration observes every tensor with its own parameters;
 *  4. QuantizeLinear/DequantizeLinear pairs go on every quantized tensor (all readers read the
 *     dequantized value; graph outputs keep their names), weights become int8 initializers
 *     behind a DequantizeLinear (per channel with axis), biases int32 with scale x_scale *
 *     w_scale; with the QOperator format the anchors then become QLinearConv / QLinearMatMul
 *     and the sharing neighbours run on the integer tensors directly. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/calib_internal.h"
#include "compress/compress_internal.h"
#include "compress/quant_internal.h"
#include "joule/infer.h"

void joule_static_defaults(joule_static_options *o)
{
    memset(o, 0, sizeof *o);
    o->method = JOULE_CALIB_PERCENTILE;
    o->percentile = 99.999;
    o->format = JOULE_QUANT_QDQ;
}

static const char *const method_names[] = {"minmax", "percentile", "entropy", "mse"};

const char *joule_calib_method_name(joule_calib_method m)
{
    return (unsigned)m < 4 ? method_names[m] : "?";
}

joule_status joule_parse_calib_method(const char *s, joule_calib_method *out, joule_error *err)
{
    for (int i = 0; i < 4; i++)
        if (s && strcmp(s, method_names[i]) == 0) {
            *out = (joule_calib_method)i;
            return JOULE_OK;
        }
    return joule_fail(err, JOULE_ERR_INVALID,
                      "calibration method '%s': expected minmax, percentile, entropy or mse",
                      s ? s : "");
}

/* One quantized activation tensor. */
typedef struct qt {
    joule_value *v;
    long src;   /* tensor whose parameters this one shares, or -1 */
    long calib; /* its entry in the calibration list, or -1 */
    double lo, hi, min, max;
    float scale;
    int32_t zp;
    joule_value *sv, *zv;  /* scale and zero point */
    joule_value *q, *dq;   /* quantized and dequantized values */
    joule_node *qn, *dqn;  /* the pair of nodes (NULL once removed) */
} qt;

enum { K_CONV, K_MATMUL, K_GEMM };

typedef struct anchor {
    joule_node *n;
    joule_node *relu; /* the Relu between the op and its QuantizeLinear, or NULL */
    long x, y;
    int kind;
    bool transposed; /* Gemm transB */
    bool bias_q;     /* the bias becomes int32 */
    int axis;        /* weight channel axis, -1 per tensor */
    joule_value *wq, *ws, *wz, *bq, *bs;
    joule_node *wdq, *bdq;
    float smin, smax;
    uint64_t w_count, w_bytes;
    uint64_t bias_clamped;
    joule_value *wv;      /* the float weight */
    joule_value *wdq_out; /* its dequantized value */
    const char *w_label;  /* its name (interned: the value itself may be pruned) */
    const char *label;    /* node label (interned) */
    bool had_relu;
} anchor;

typedef struct neigh {
    joule_node *n;
    long in, out;
    bool shared;
} neigh;

typedef struct st_ctx {
    joule_model *m;
    joule_graph *g;
    const joule_static_options *o;
    joule_report *r;
    joule_error *err;
    int64_t opset;
    bool per_channel;
    int qmin, qmax;
    joule_dtype qtype;
    qt *t;
    size_t nt, cap_t;
    anchor *a;
    size_t na;
    neigh *nb;
    size_t nnb;
} st_ctx;

static long qt_find(const st_ctx *c, const joule_value *v)
{
    for (size_t i = 0; i < c->nt; i++)
        if (c->t[i].v == v)
            return (long)i;
    return -1;
}

static joule_status qt_get(st_ctx *c, joule_value *v, long *out)
{
    long i = qt_find(c, v);
    if (i >= 0) {
        *out = i;
        return JOULE_OK;
    }
    if (c->nt == c->cap_t) {
        size_t cap = c->cap_t ? c->cap_t * 2 : 32;
        qt *nt = realloc(c->t, cap * sizeof *nt);
        if (!nt)
            return joule_fail(c->err, JOULE_ERR_NOMEM, "int8: out of memory");
        c->t = nt;
        c->cap_t = cap;
    }
    qt *e = &c->t[c->nt];
    memset(e, 0, sizeof *e);
    e->v = v;
    e->src = -1;
    e->calib = -1;
    *out = (long)c->nt++;
    return JOULE_OK;
}

static long root_of(const st_ctx *c, long i)
{
    for (size_t guard = 0; c->t[i].src >= 0 && guard <= c->nt; guard++)
        i = c->t[i].src;
    return i;
}

/* The single node reading v (v not a graph output), or NULL. */
static joule_node *sole_reader(const joule_graph *g, const joule_value *v)
{
    if (v->flags & JOULE_VALUE_OUTPUT)
        return NULL;
    joule_node *one = NULL;
    for (size_t i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i]->n_inputs; k++)
            if (g->nodes[i]->inputs[k] == v) {
                if (one)
                    return NULL;
                one = g->nodes[i];
            }
    return one;
}

/* ---- planning ---- */

static const char *anchor_unsuited(const st_ctx *c, const joule_node *n, int kind)
{
    const joule_graph *g = c->g;
    if (n->n_inputs < 2 || !n->inputs[0] || !n->inputs[1] || n->n_outputs < 1 || !n->outputs[0])
        return "missing input or output";
    if (n->inputs[0]->dtype != JOULE_F32)
        return "activation is not float32";
    if (n->outputs[0]->dtype != JOULE_F32 && n->outputs[0]->dtype != JOULE_UNDEFINED)
        return "output is not float32";
    const joule_tensor *w = cz_const(g, n->inputs[1]);
    if (!w)
        return kind == K_MATMUL ? "both inputs are activations" : "weight is not a constant";
    if (w->dtype != JOULE_F32)
        return "weight is not float32";
    if (kind == K_CONV && w->rank < 3)
        return "Conv weight of rank < 3";
    if (kind != K_CONV && w->rank != 2)
        return "weight is not 2-D";
    if (kind == K_GEMM && joule_attr_int(n, "transA", 0) != 0)
        return "Gemm with transA";
    if (n->n_inputs > 2 && n->inputs[2]) {
        const joule_tensor *b = cz_const(g, n->inputs[2]);
        if (kind == K_CONV && (!b || b->dtype != JOULE_F32 || b->count != (size_t)w->dims[0]))
            return "bias is not a float32 constant with one entry per output channel";
    }
    return NULL;
}

static bool is_shared_op(const joule_node *n)
{
    return joule_node_is_op(n, "MaxPool") || joule_node_is_op(n, "Reshape") ||
           joule_node_is_op(n, "Flatten") || joule_node_is_op(n, "Transpose") ||
           joule_node_is_op(n, "Squeeze") || joule_node_is_op(n, "Unsqueeze");
}

static bool is_own_op(const joule_node *n)
{
    return joule_node_is_op(n, "AveragePool") || joule_node_is_op(n, "GlobalAveragePool") ||
           joule_node_is_op(n, "Relu") || joule_node_is_op(n, "Clip") ||
           joule_node_is_op(n, "Add") || joule_node_is_op(n, "Concat");
}

static bool is_anchor(const st_ctx *c, const joule_node *n)
{
    for (size_t i = 0; i < c->na; i++)
        if (c->a[i].n == n || c->a[i].relu == n)
            return true;
    return false;
}

static joule_status plan_neighbours(st_ctx *c)
{
    joule_graph *g = c->g;
    for (size_t i = 0; i < g->n_nodes; i++) {
        joule_node *n = g->nodes[i];
        bool shared = is_shared_op(n);
        if ((!shared && !is_own_op(n)) || is_anchor(c, n) || jq_excluded(&c->o->exclude, n))
            continue;
        if (n->n_outputs < 1 || !n->outputs[0] || n->outputs[0]->dtype != JOULE_F32)
            continue;
        if (n->n_outputs > 1 && n->outputs[1]) /* MaxPool Indices */
            continue;
        bool ok = n->n_inputs >= 1 && n->inputs[0] && qt_find(c, n->inputs[0]) >= 0;
        if (joule_node_is_op(n, "Add") || joule_node_is_op(n, "Concat")) {
            for (int k = 0; ok && k < n->n_inputs; k++)
                ok = n->inputs[k] && qt_find(c, n->inputs[k]) >= 0;
        } else if (joule_node_is_op(n, "Clip")) {
            for (int k = 1; ok && k < n->n_inputs; k++)
                ok = !n->inputs[k] || cz_const(g, n->inputs[k]);
        }
        if (!ok)
            continue;
        neigh *nn = realloc(c->nb, (c->nnb + 1) * sizeof *nn);
        if (!nn)
            return joule_fail(c->err, JOULE_ERR_NOMEM, "int8: out of memory");
        c->nb = nn;
        neigh *e = &c->nb[c->nnb++];
        e->n = n;
        e->shared = shared;
        e->in = qt_find(c, n->inputs[0]);
        joule_status st = qt_get(c, n->outputs[0], &e->out);
        if (st)
            return st;
        if (shared && e->out != e->in)
            c->t[e->out].src = e->in;
    }
    return JOULE_OK;
}

static joule_status plan(st_ctx *c)
{
    joule_graph *g = c->g;
    joule_status st;
    c->a = calloc(g->n_nodes ? g->n_nodes : 1, sizeof *c->a);
    if (!c->a)
        return joule_fail(c->err, JOULE_ERR_NOMEM, "int8: out of memory");
    for (size_t i = 0; i < g->n_nodes; i++) {
        joule_node *n = g->nodes[i];
        int kind = joule_node_is_op(n, "Conv") ? K_CONV : joule_node_is_op(n, "MatMul") ? K_MATMUL
                                                : joule_node_is_op(n, "Gemm")   ? K_GEMM
                                                                        : -1;
        if (kind < 0)
            continue;
        const char *why = jq_excluded(&c->o->exclude, n) ? "excluded" : anchor_unsuited(c, n, kind);
        if (why) {
            if ((st = cz_note(c->r, "int8", g, n, NULL, c->err, "left in float: %s", why)))
                return st;
            continue;
        }
        anchor *e = &c->a[c->na++];
        char lb[160];
        e->n = n;
        e->label = joule_graph_intern(g, cz_label(g, n, lb, sizeof lb));
        e->kind = kind;
        e->transposed = kind == K_GEMM && joule_attr_int(n, "transB", 0) != 0;
        if ((st = qt_get(c, n->inputs[0], &e->x)))
            return st;
        joule_node *rd = sole_reader(g, n->outputs[0]);
        if (rd && joule_node_is_op(rd, "Relu") && rd->n_outputs >= 1 && rd->outputs[0] &&
            !jq_excluded(&c->o->exclude, rd) &&
            (c->o->format == JOULE_QUANT_QDQ || !c->o->symmetric_activations))
            e->relu = rd;
        e->had_relu = e->relu != NULL;
        if ((st = qt_get(c, e->relu ? e->relu->outputs[0] : n->outputs[0], &e->y)))
            return st;
    }
    return plan_neighbours(c);
}

/* ---- parameters ---- */

static joule_status calibrate(st_ctx *c, joule_calib_stats *stats)
{
    size_t n = 0;
    for (size_t i = 0; i < c->nt; i++)
        if (c->t[i].src < 0)
            n++;
    jq_calib_tensor *ct = calloc(n ? n : 1, sizeof *ct);
    if (!ct)
        return joule_fail(c->err, JOULE_ERR_NOMEM, "int8: out of memory");
    size_t k = 0;
    for (size_t i = 0; i < c->nt; i++)
        if (c->t[i].src < 0) {
            c->t[i].calib = (long)k;
            /* the model's outputs (logits) are what callers read: never clipped */
            ct[k].minmax = (c->t[i].v->flags & JOULE_VALUE_OUTPUT) != 0;
            ct[k++].name = c->t[i].v->name;
        }
    joule_status st = jq_calibrate(c->m, c->o, ct, n, stats, c->err);
    if (!st) {
        bool sym = c->o->symmetric_activations;
        for (size_t i = 0; i < c->nt; i++) {
            qt *e = &c->t[i];
            if (e->src >= 0)
                continue;
            const jq_calib_tensor *r = &ct[e->calib];
            e->lo = r->lo;
            e->hi = r->hi;
            e->min = r->min;
            e->max = r->max;
            jq_params(r->lo, r->hi, c->qmin, c->qmax, sym, &e->scale, &e->zp);
        }
        for (size_t i = 0; i < c->nt; i++) {
            qt *e = &c->t[i];
            if (e->src < 0)
                continue;
            const qt *root = &c->t[root_of(c, (long)i)];
            e->lo = root->lo;
            e->hi = root->hi;
            e->scale = root->scale;
            e->zp = root->zp;
        }
    }
    free(ct);
    return st;
}

/* ---- rewriting ---- */

static joule_status make_params(st_ctx *c)
{
    joule_status st;
    char hint[600];
    for (size_t i = 0; i < c->nt; i++) {
        qt *e = &c->t[i];
        if (e->src >= 0)
            continue;
        double s = e->scale, z = e->zp;
        joule_tensor *ts, *tz;
        if ((st = jq_tensor_from(JOULE_F32, &s, 0, false, &ts, c->err)))
            return st;
        snprintf(hint, sizeof hint, "%s_s", e->v->name);
        if ((st = jq_add_init(c->g, hint, ts, &e->sv, c->err)))
            return st;
        if ((st = jq_tensor_from(c->qtype, &z, 0, false, &tz, c->err)))
            return st;
        snprintf(hint, sizeof hint, "%s_zp", e->v->name);
        if ((st = jq_add_init(c->g, hint, tz, &e->zv, c->err)))
            return st;
    }
    for (size_t i = 0; i < c->nt; i++) {
        qt *e = &c->t[i];
        if (e->src >= 0) {
            const qt *root = &c->t[root_of(c, (long)i)];
            e->sv = root->sv;
            e->zv = root->zv;
        }
    }
    return JOULE_OK;
}

static joule_status insert_qdq(st_ctx *c, qt *e)
{
    joule_graph *g = c->g;
    joule_value *v = e->v;
    joule_node *prod = joule_graph_producer(g, v);
    char h0[600], h1[600], name[640];
    snprintf(h0, sizeof h0, "%s_q", v->name);
    snprintf(h1, sizeof h1, "%s_dq", v->name);
    joule_status st;
    if ((st = joule_graph_new_value(g, h0, &e->q, c->err)) ||
        (st = joule_graph_new_value(g, h1, &e->dq, c->err)))
        return st;
    e->q->dtype = c->qtype;
    jq_copy_shape(e->q, v);
    e->dq->dtype = JOULE_F32;
    jq_copy_shape(e->dq, v);
    bool was_output = (v->flags & JOULE_VALUE_OUTPUT) != 0;
    joule_graph_replace_uses(g, v, e->dq); /* before the pair exists, so Q keeps reading v */
    if (was_output && (st = jq_take_name(g, v, e->dq, "float", c->err)))
        return st;
    joule_value *qin[3] = {v, e->sv, e->zv}, *dqin[3] = {e->q, e->sv, e->zv};
    /* producer, Q, DQ; a graph input's pair goes first */
    const joule_node *first = g->n_nodes ? g->nodes[0] : NULL;
    snprintf(name, sizeof name, "%s_DQ", v->name);
    if ((st = jq_add_node(g, "DequantizeLinear", name, 3, dqin, 1, &e->dq, NULL,
                          prod ? NULL : first, prod, &e->dqn, c->err)))
        return st;
    snprintf(name, sizeof name, "%s_Q", v->name);
    if ((st = jq_add_node(g, "QuantizeLinear", name, 3, qin, 1, &e->q, NULL, e->dqn, NULL,
                          &e->qn, c->err)))
        return st;
    return JOULE_OK;
}

/* Weight (and bias) of anchor e become int8 (int32) initializers behind DequantizeLinear. */
static joule_status quantize_weights(st_ctx *c, anchor *e)
{
    joule_graph *g = c->g;
    joule_node *n = e->n;
    joule_status st;
    char hint[600], name[640];
    if ((st = cz_materialize(g, n->inputs[1], c->err)))
        return st;
    joule_value *wv = n->inputs[1];
    const joule_tensor *w = wv->data;
    e->wv = wv;
    e->w_label = joule_graph_intern(g, wv->name);
    e->w_count = w->count;
    e->w_bytes = w->nbytes;
    e->axis = !c->per_channel ? -1 : e->kind == K_CONV ? 0 : (e->transposed ? 0 : 1);
    /* a weight several anchors read is quantized once */
    anchor *same = NULL;
    for (anchor *p = c->a; p < e; p++)
        if (p->wv == wv && p->wdq_out && p->axis == e->axis)
            same = p;
    if (same) {
        e->wq = same->wq;
        e->ws = same->ws;
        e->wz = same->wz;
        e->smin = same->smin;
        e->smax = same->smax;
        e->wdq_out = same->wdq_out;
        n->inputs[1] = same->wdq_out;
        e->wdq = NULL;
    } else {
        joule_tensor *q, *s;
        if ((st = jq_quantize_weight(w, e->axis, &q, &s, c->err)))
            return st;
        const float *sp = s->data;
        e->smin = e->smax = sp[0];
        for (size_t i = 1; i < s->count; i++) {
            e->smin = sp[i] < e->smin ? sp[i] : e->smin;
            e->smax = sp[i] > e->smax ? sp[i] : e->smax;
        }
        joule_tensor *z;
        if ((st = joule_tensor_new(JOULE_I8, s->rank, s->dims, &z, c->err))) {
            joule_tensor_free(q);
            joule_tensor_free(s);
            return st;
        }
        if (!joule_tensor_mutable_data(z)) {
            joule_tensor_free(q);
            joule_tensor_free(s);
            joule_tensor_free(z);
            return joule_fail(c->err, JOULE_ERR_NOMEM, "int8: out of memory");
        }
        snprintf(hint, sizeof hint, "%s_q", wv->name);
        if ((st = jq_add_init(g, hint, q, &e->wq, c->err))) {
            joule_tensor_free(s);
            joule_tensor_free(z);
            return st;
        }
        snprintf(hint, sizeof hint, "%s_s", wv->name);
        if ((st = jq_add_init(g, hint, s, &e->ws, c->err))) {
            joule_tensor_free(z);
            return st;
        }
        snprintf(hint, sizeof hint, "%s_zp", wv->name);
        if ((st = jq_add_init(g, hint, z, &e->wz, c->err)))
            return st;
        joule_value *ins[3] = {e->wq, e->ws, e->wz}, *out = NULL;
        snprintf(hint, sizeof hint, "%s_dq", wv->name);
        const char *hints[1] = {hint};
        snprintf(name, sizeof name, "%s_DQ", wv->name);
        if ((st = jq_add_node(g, "DequantizeLinear", name, 3, ins, 1, &out, hints, n, NULL,
                              &e->wdq, c->err)))
            return st;
        if (e->axis >= 0 && (st = joule_node_set_attr_int(g, e->wdq, "axis", e->axis, c->err)))
            return st;
        out->dtype = JOULE_F32;
        out->shape.rank = w->rank;
        for (int d = 0; d < w->rank; d++) {
            out->shape.dims[d].size = w->dims[d];
            out->shape.dims[d].sym = NULL;
        }
        n->inputs[1] = out;
        e->wdq_out = out;
    }
    /* bias */
    joule_value *bv = n->n_inputs > 2 ? n->inputs[2] : NULL;
    if (!bv)
        return JOULE_OK;
    const joule_tensor *b = cz_const(g, bv);
    size_t channels = (size_t)e->wq->data->dims[e->kind == K_CONV || e->transposed ? 0 : 1];
    if (!b || b->dtype != JOULE_F32 || (b->count != channels && b->count != 1) ||
        (e->kind == K_GEMM && (joule_attr_float(n, "alpha", 1.0f) != 1.0f ||
                               joule_attr_float(n, "beta", 1.0f) != 1.0f)) ||
        (b->rank > 1 && !(b->rank == 2 && b->dims[0] == 1)))
        return JOULE_OK; /* stays float */
    if ((st = cz_materialize(g, bv, c->err)))
        return st;
    b = bv->data;
    const qt *x = &c->t[e->x];
    float *bs = malloc(channels * sizeof *bs);
    if (!bs)
        return joule_fail(c->err, JOULE_ERR_NOMEM, "int8: out of memory");
    const float *ws = e->ws->data->data;
    for (size_t i = 0; i < channels; i++)
        bs[i] = x->scale * ws[e->ws->data->count == 1 ? 0 : i];
    joule_tensor *bq, *bst;
    st = jq_quantize_bias(b, bs, channels, &bq, &e->bias_clamped, c->err);
    if (st) {
        free(bs);
        return st;
    }
    int64_t cd = (int64_t)channels;
    bool per_ch = e->ws->data->count != 1;
    if ((st = joule_tensor_new(JOULE_F32, per_ch ? 1 : 0, &cd, &bst, c->err))) {
        free(bs);
        joule_tensor_free(bq);
        return st;
    }
    float *bsp = joule_tensor_mutable_data(bst);
    if (!bsp) {
        free(bs);
        joule_tensor_free(bq);
        joule_tensor_free(bst);
        return joule_fail(c->err, JOULE_ERR_NOMEM, "int8: out of memory");
    }
    memcpy(bsp, bs, (per_ch ? channels : 1) * sizeof *bs);
    free(bs);
    snprintf(hint, sizeof hint, "%s_q", bv->name);
    if ((st = jq_add_init(g, hint, bq, &e->bq, c->err))) {
        joule_tensor_free(bst);
        return st;
    }
    snprintf(hint, sizeof hint, "%s_s", bv->name);
    if ((st = jq_add_init(g, hint, bst, &e->bs, c->err)))
        return st;
    joule_value *ins[2] = {e->bq, e->bs}, *out = NULL;
    snprintf(hint, sizeof hint, "%s_dq", bv->name);
    const char *hints[1] = {hint};
    snprintf(name, sizeof name, "%s_DQ", bv->name);
    if ((st = jq_add_node(g, "DequantizeLinear", name, 2, ins, 1, &out, hints, n, NULL, &e->bdq,
                          c->err)))
        return st;
    if (per_ch && (st = joule_node_set_attr_int(g, e->bdq, "axis", 0, c->err)))
        return st;
    out->dtype = JOULE_F32;
    out->shape.rank = 1;
    out->shape.dims[0].size = cd;
    out->shape.dims[0].sym = NULL;
    n->inputs[2] = out;
    e->bias_q = true;
    return JOULE_OK;
}

/* ---- QOperator ---- */

static joule_status remove_if_dead(st_ctx *c, joule_node **n)
{
    if (!*n || (*n)->n_outputs < 1 || !(*n)->outputs[0] || cz_uses(c->g, (*n)->outputs[0]) > 0)
        return JOULE_OK;
    joule_status st = joule_graph_remove_node(c->g, *n, NULL, c->err);
    *n = NULL;
    return st;
}

/* int8 matrix transposed, optionally with two trailing 1s ([N, K, 1, 1] for a 1x1 conv). */
static joule_status transpose_i8(const joule_tensor *w, bool conv4, joule_tensor **out,
                                 joule_error *err)
{
    int64_t d[4] = {w->dims[1], w->dims[0], 1, 1};
    joule_status st = joule_tensor_new(JOULE_I8, conv4 ? 4 : 2, d, out, err);
    if (st)
        return st;
    int8_t *dst = joule_tensor_mutable_data(*out);
    if (!dst && w->count) {
        joule_tensor_free(*out);
        *out = NULL;
        return joule_fail(err, JOULE_ERR_NOMEM, "int8: out of memory");
    }
    const int8_t *src = w->data;
    size_t rows = (size_t)w->dims[0], cols = (size_t)w->dims[1];
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++)
            dst[j * rows + i] = src[i * cols + j];
    return JOULE_OK;
}

static joule_status shape_const(st_ctx *c, const char *hint, const double *v, size_t n,
                                joule_value **out)
{
    joule_tensor *t;
    joule_status st = jq_tensor_from(JOULE_I64, v, n, true, &t, c->err);
    return st ? st : jq_add_init(c->g, hint, t, out, c->err);
}

static joule_status to_qoperator_anchor(st_ctx *c, anchor *e, bool *done)
{
    joule_graph *g = c->g;
    joule_node *n = e->n;
    qt *x = &c->t[e->x], *y = &c->t[e->y];
    joule_status st;
    char lb[160], name[400], hint[600];
    const char *label = cz_label(g, n, lb, sizeof lb);
    *done = false;
    bool has_bias = n->n_inputs > 2 && n->inputs[2];
    if (!x->q || !y->q || !y->qn || (has_bias && !e->bias_q))
        return JOULE_OK;
    if (e->kind == K_GEMM && (joule_attr_float(n, "alpha", 1.0f) != 1.0f ||
                              (has_bias && joule_attr_float(n, "beta", 1.0f) != 1.0f)))
        return JOULE_OK;
    joule_value *w = e->wq;
    joule_node *qn = NULL;
    if (e->kind == K_CONV) {
        joule_value *ins[9] = {x->q, x->sv, x->zv, w, e->ws, e->wz, y->sv, y->zv, e->bq};
        snprintf(name, sizeof name, "%s_QLinearConv", label);
        if ((st = jq_add_node(g, "QLinearConv", name, has_bias ? 9 : 8, ins, 1, &y->q, NULL, n,
                              NULL, &qn, c->err)) ||
            (st = jq_copy_conv_attrs(g, n, qn, c->err)))
            return st;
    } else if (e->kind == K_MATMUL || !has_bias) {
        if (e->transposed) {
            joule_tensor *t;
            if ((st = transpose_i8(w->data, false, &t, c->err)))
                return st;
            snprintf(hint, sizeof hint, "%s_kn", w->name);
            if ((st = jq_add_init(g, hint, t, &w, c->err)))
                return st;
        }
        joule_value *ins[8] = {x->q, x->sv, x->zv, w, e->ws, e->wz, y->sv, y->zv};
        snprintf(name, sizeof name, "%s_QLinearMatMul", label);
        if ((st = jq_add_node(g, "QLinearMatMul", name, 8, ins, 1, &y->q, NULL, n, NULL, &qn,
                              c->err)))
            return st;
    } else {
        /* Gemm with a bias: a 1x1 QLinearConv on [M, K, 1, 1], which carries the int32 bias */
        joule_tensor *t;
        if (e->transposed) {
            int64_t d[4] = {w->data->dims[0], w->data->dims[1], 1, 1};
            if ((st = joule_tensor_new(JOULE_I8, 4, d, &t, c->err)))
                return st;
            if (!joule_tensor_mutable_data(t)) {
                joule_tensor_free(t);
                return joule_fail(c->err, JOULE_ERR_NOMEM, "int8: out of memory");
            }
            memcpy(joule_tensor_mutable_data(t), w->data->data, w->data->nbytes);
        } else if ((st = transpose_i8(w->data, true, &t, c->err))) {
            return st;
        }
        snprintf(hint, sizeof hint, "%s_conv", w->name);
        if ((st = jq_add_init(g, hint, t, &w, c->err)))
            return st;
        const double s4[4] = {0, -1, 1, 1}, s2[2] = {0, -1};
        joule_value *shp4, *shp2, *x4 = NULL, *y4 = NULL;
        snprintf(hint, sizeof hint, "%s_shape4", label);
        if ((st = shape_const(c, hint, s4, 4, &shp4)))
            return st;
        snprintf(hint, sizeof hint, "%s_shape2", label);
        if ((st = shape_const(c, hint, s2, 2, &shp2)))
            return st;
        joule_value *rin[2] = {x->q, shp4};
        snprintf(hint, sizeof hint, "%s_4d", x->q->name);
        const char *h1[1] = {hint};
        snprintf(name, sizeof name, "%s_to_4d", label);
        if ((st = jq_add_node(g, "Reshape", name, 2, rin, 1, &x4, h1, n, NULL, NULL, c->err)))
            return st;
        x4->dtype = c->qtype;
        joule_value *ins[9] = {x4, x->sv, x->zv, w, e->ws, e->wz, y->sv, y->zv, e->bq};
        snprintf(hint, sizeof hint, "%s_4d", y->q->name);
        snprintf(name, sizeof name, "%s_QLinearConv", label);
        if ((st = jq_add_node(g, "QLinearConv", name, 9, ins, 1, &y4, h1, n, NULL, &qn, c->err)))
            return st;
        y4->dtype = c->qtype;
        joule_value *rin2[2] = {y4, shp2};
        snprintf(name, sizeof name, "%s_to_2d", label);
        if ((st = jq_add_node(g, "Reshape", name, 2, rin2, 1, &y->q, NULL, n, NULL, NULL,
                              c->err)))
            return st;
    }
    /* the float chain goes: Q of y, the Relu, the op, and DQs nothing reads any more */
    if ((st = joule_graph_remove_node(g, y->qn, NULL, c->err)))
        return st;
    y->qn = NULL;
    if (e->relu && (st = joule_graph_remove_node(g, e->relu, NULL, c->err)))
        return st;
    e->relu = NULL;
    if ((st = joule_graph_remove_node(g, n, NULL, c->err)))
        return st;
    e->n = NULL;
    if ((st = remove_if_dead(c, &e->wdq)) || (st = remove_if_dead(c, &e->bdq)))
        return st;
    *done = true;
    return JOULE_OK;
}

static joule_status to_qoperator(st_ctx *c, size_t *n_converted)
{
    joule_status st;
    *n_converted = 0;
    /* anchors and sharing neighbours in graph order (a neighbour reads a converted anchor's
     * integer output) */
    for (size_t i = 0; i < c->g->n_nodes; i++) {
        joule_node *n = c->g->nodes[i];
        for (size_t k = 0; k < c->na; k++) {
            anchor *e = &c->a[k];
            if (e->n != n)
                continue;
            bool done;
            if ((st = to_qoperator_anchor(c, e, &done)))
                return st;
            if (done) {
                (*n_converted)++;
                i = (size_t)-1; /* the order changed: start again */
            }
            break;
        }
    }
    for (size_t k = 0; k < c->nnb; k++) {
        neigh *e = &c->nb[k];
        qt *in = &c->t[e->in], *out = &c->t[e->out];
        if (!e->shared || !out->qn || !in->q)
            continue;
        if (joule_node_is_op(e->n, "MaxPool") && c->opset < 12)
            continue;
        if (e->n->inputs[0] != in->dq)
            continue;
        e->n->inputs[0] = in->q;
        if ((st = joule_graph_remove_node(c->g, out->qn, NULL, c->err)))
            return st;
        out->qn = NULL;
        e->n->outputs[0] = out->q;
    }
    /* pairs nothing reads any more */
    bool again = true;
    while (again) {
        again = false;
        for (size_t i = 0; i < c->nt; i++) {
            qt *e = &c->t[i];
            joule_node *before_dq = e->dqn, *before_q = e->qn;
            if ((st = remove_if_dead(c, &e->dqn)))
                return st;
            if (!e->dqn && (st = remove_if_dead(c, &e->qn)))
                return st;
            again |= before_dq != e->dqn || before_q != e->qn;
        }
    }
    return joule_graph_toposort(c->g, c->err);
}

/* ---- report ---- */

static joule_status report(st_ctx *c, const joule_calib_stats *stats, size_t n_qop)
{
    joule_status st;
    char note[400];
    const char *fmt = c->o->format == JOULE_QUANT_QOPERATOR ? "QOperator" : "QDQ";
    for (size_t i = 0; i < c->na; i++) {
        const anchor *e = &c->a[i];
        const qt *x = &c->t[e->x], *y = &c->t[e->y];
        snprintf(note, sizeof note,
                 "%s int8 weights, %s activations (x scale %.6g zp %d, y scale %.6g zp %d)%s%s; "
                 "%s",
                 e->axis >= 0 ? "per-channel" : "per-tensor",
                 c->o->symmetric_activations ? "int8 symmetric" : "uint8", x->scale, x->zp,
                 y->scale, y->zp, e->bias_q ? ", int32 bias" : "",
                 e->had_relu ? ", Relu before Q" : "", fmt);
        if (e->bias_clamped) {
            size_t len = strlen(note);
            snprintf(note + len, sizeof note - len, "; %llu bias entries saturated",
                     (unsigned long long)e->bias_clamped);
        }
        joule_layer_change row = {
            .pass = "int8",
            .node = e->label,
            .op_type = e->kind == K_CONV ? "Conv" : e->kind == K_MATMUL ? "MatMul" : "Gemm",
            .tensor = e->w_label,
            .dtype_before = JOULE_F32,
            .dtype_after = JOULE_I8,
            .params_before = e->w_count,
            .params_after = e->w_count,
            .bytes_before = e->w_bytes,
            .bytes_after = e->wq->data->nbytes + e->ws->data->nbytes + e->wz->data->nbytes,
            .scale_min = e->smin,
            .scale_max = e->smax,
            .zp_min = 0,
            .zp_max = 0,
            .note = note,
        };
        if ((st = jq_row(c->r, &row, c->err)))
            return st;
    }
    for (size_t i = 0; i < c->nt; i++) {
        const qt *e = &c->t[i];
        if (e->src >= 0)
            continue;
        bool out = e->lo == e->min && e->hi == e->max && (e->dq && (e->dq->flags & JOULE_VALUE_OUTPUT));
        snprintf(note, sizeof note, "activation %s: range [%.6g, %.6g] (%s) of observed [%.6g, %.6g]",
                 c->o->symmetric_activations ? "int8" : "uint8", e->lo, e->hi,
                 out ? "minmax: a graph output" : joule_calib_method_name(c->o->method), e->min,
                 e->max);
        joule_layer_change row = {
            .pass = "int8",
            .tensor = e->dq ? e->dq->name : e->v->name,
            .dtype_before = JOULE_F32,
            .dtype_after = c->qtype,
            .scale_min = e->scale,
            .scale_max = e->scale,
            .zp_min = e->zp,
            .zp_max = e->zp,
            .note = note,
        };
        if ((st = jq_row(c->r, &row, c->err)))
            return st;
    }
    return cz_note(c->r, "int8", c->g, NULL, NULL, c->err,
                   "%zu layers quantized (%zu as QLinear ops), %zu activation tensors; "
                   "calibration: %zu items x %d passes in %.2f s (%.0f items/s, %s)",
                   c->na, n_qop, c->nt, stats->items, stats->passes, stats->seconds,
                   stats->items_per_s, joule_calib_method_name(c->o->method));
}

joule_status joule_quantize_static(joule_model *m, const joule_static_options *opt,
                                   joule_report *r, joule_error *err)
{
    joule_static_options dflt;
    if (!opt) {
        joule_static_defaults(&dflt);
        opt = &dflt;
    }
    if (!m || !m->graph)
        return joule_fail(err, JOULE_ERR_INVALID, "int8: no model");
    if ((unsigned)opt->method > JOULE_CALIB_MSE)
        return joule_fail(err, JOULE_ERR_INVALID, "int8: unknown calibration method %d",
                          (int)opt->method);
    if (opt->method == JOULE_CALIB_PERCENTILE && !(opt->percentile > 50 && opt->percentile <= 100))
        return joule_fail(err, JOULE_ERR_INVALID, "int8: percentile %g outside (50, 100]",
                          opt->percentile);
    if (opt->format != JOULE_QUANT_QDQ && opt->format != JOULE_QUANT_QOPERATOR)
        return joule_fail(err, JOULE_ERR_INVALID, "int8: unknown format %d", (int)opt->format);
    if (!opt->calib && !opt->calib_path && !opt->calib_tensor)
        return joule_fail(err, JOULE_ERR_INVALID,
                          "int8: static quantization needs calibration data");
    int64_t opset = joule_model_opset(m, "");
    if (opset < 10)
        return joule_fail(err, JOULE_ERR_UNSUPPORTED,
                          "int8: the model imports opset %lld; QuantizeLinear needs >= 10",
                          (long long)opset);
    joule_graph *g = m->graph;
    if (cz_has_subgraphs(g))
        return joule_fail(err, JOULE_ERR_UNSUPPORTED,
                          "int8: models with If/Loop/Scan subgraphs are not quantized");
    joule_status st = joule_infer_shapes(m, NULL, 0, err);
    if (!st)
        st = cz_warn_unused(r, "int8", g, opt->exclude.items, opt->exclude.n, "exclude entry",
                            true, false, err);
    if (st)
        return st;
    st_ctx c = {.m = m, .g = g, .o = opt, .r = r, .err = err, .opset = opset};
    c.per_channel = !opt->per_tensor && opset >= 13;
    c.qtype = opt->symmetric_activations ? JOULE_I8 : JOULE_U8;
    c.qmin = opt->symmetric_activations ? -127 : 0;
    c.qmax = opt->symmetric_activations ? 127 : 255;
    joule_calib_stats stats = {0};
    size_t n_qop = 0;
    /* 1-3: nothing in the model changes until calibration has succeeded */
    if ((st = plan(&c)))
        goto done;
    if (c.na == 0) {
        st = cz_note(r, "int8", g, NULL, NULL, err, "no Conv, MatMul or Gemm to quantize");
        goto done;
    }
    if ((st = calibrate(&c, &stats)))
        goto done;
    if (opset < 13 && !opt->per_tensor &&
        (st = cz_note(r, "int8", g, NULL, NULL, err,
                      "opset %lld has no per-channel DequantizeLinear: per-tensor weights",
                      (long long)opset)))
        goto done;
    /* 4: rewrite */
    if ((st = make_params(&c)))
        goto done;
    for (size_t i = 0; i < c.nt && !st; i++)
        st = insert_qdq(&c, &c.t[i]);
    for (size_t i = 0; i < c.na && !st; i++)
        st = quantize_weights(&c, &c.a[i]);
    if (st)
        goto done;
    if (opt->format == JOULE_QUANT_QOPERATOR && (st = to_qoperator(&c, &n_qop)))
        goto done;
    /* rows first: they read values the pruning frees */
    if ((st = report(&c, &stats, n_qop)))
        goto done;
    joule_graph_prune_values(g);
    if ((st = joule_graph_validate(g, err)) || (st = joule_infer_shapes(m, NULL, 0, err)))
        goto done;
    if (opt->stats)
        *opt->stats = stats;
done:
    free(c.t);
    free(c.a);
    free(c.nb);
    return st;
}

/* compress/quant_dynamic.c: int8 dynamic quantization (joule/quantize.h). Weights of MatMul,
 * Gemm and Conv become symmetric int8 (per output channel by default); activations are
 * quantized at run time:
 *
 *   x ─DynamicQuantizeLinear─▶ x_q, x_scale, x_zp
 *   MatMulInteger(x_q, W_q, x_zp, 0) | ConvInteger(...) ─Cast(float)─Mul(x_scale * w_scale)─[Add(bias)]─▶ y
 *
 * One DynamicQuantizeLinear serves every quantized reader of a tensor, and a weight read by
 * several layers is quantized once. Weight zero points are a scalar 0 (ONNX Runtime's
 * ConvInteger takes only per-tensor zero points; the per-channel scales live in the Mul). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/compress_internal.h"
#include "compress/quant_internal.h"
#include "joule/infer.h"

void joule_dynamic_defaults(joule_dynamic_options *o)
{
    memset(o, 0, sizeof *o);
}

typedef struct dq_cache {
    joule_value *x, *xq, *xs, *xz; /* per activation tensor */
} dq_cache;

typedef struct w_cache {
    const joule_value *w;
    bool transposed;
    joule_value *wq, *ws, *wz; /* ws: scales shaped for the Mul */
    float smin, smax;
} w_cache;

typedef struct dyn_ctx {
    joule_model *m;
    joule_graph *g;
    const joule_dynamic_options *o;
    joule_report *r;
    joule_error *err;
    dq_cache *xs;
    size_t n_xs;
    w_cache *ws;
    size_t n_ws;
} dyn_ctx;

/* Why node n cannot be quantized dynamically (NULL when it can). */
static const char *unsuited(const joule_graph *g, const joule_node *n)
{
    const bool conv = joule_node_is_op(n, "Conv"), gemm = joule_node_is_op(n, "Gemm");
    if (n->n_inputs < 2 || !n->inputs[0] || !n->inputs[1] || n->n_outputs < 1 || !n->outputs[0])
        return "missing input or output";
    const joule_value *x = n->inputs[0];
    if (x->dtype != JOULE_F32)
        return "activation is not float32";
    const joule_tensor *w = cz_const(g, n->inputs[1]);
    if (!w)
        return "weight is not a constant";
    if (w->dtype != JOULE_F32)
        return "weight is not float32";
    if (conv) {
        if (w->rank < 3)
            return "Conv weight of rank < 3";
        if (n->n_inputs > 2 && n->inputs[2] && !cz_const(g, n->inputs[2]))
            return "bias is not a constant";
        if (n->n_inputs > 2 && n->inputs[2] &&
            (cz_const(g, n->inputs[2])->dtype != JOULE_F32 ||
             cz_const(g, n->inputs[2])->count != (size_t)w->dims[0]))
            return "bias is not float32 with one entry per output channel";
        return NULL;
    }
    if (w->rank != 2)
        return "weight is not 2-D";
    if (gemm) {
        if (joule_attr_int(n, "transA", 0) != 0)
            return "Gemm with transA";
        if (n->n_inputs > 2 && n->inputs[2]) {
            const joule_tensor *c = cz_const(g, n->inputs[2]);
            if (c && c->dtype != JOULE_F32)
                return "C is not float32";
            if (!c && joule_attr_float(n, "beta", 1.0f) != 1.0f)
                return "C is not a constant and beta != 1";
        }
    }
    return NULL;
}

static joule_status quantize_input(dyn_ctx *c, joule_value *x, const joule_node *before,
                                   dq_cache **out)
{
    for (size_t i = 0; i < c->n_xs; i++)
        if (c->xs[i].x == x) {
            *out = &c->xs[i];
            return JOULE_OK;
        }
    dq_cache *nx = realloc(c->xs, (c->n_xs + 1) * sizeof *nx);
    if (!nx)
        return joule_fail(c->err, JOULE_ERR_NOMEM, "int8 dynamic: out of memory");
    c->xs = nx;
    dq_cache *e = &c->xs[c->n_xs];
    memset(e, 0, sizeof *e);
    e->x = x;
    char h0[600], h1[600], h2[600], name[640];
    snprintf(h0, sizeof h0, "%s_q", x->name);
    snprintf(h1, sizeof h1, "%s_s", x->name);
    snprintf(h2, sizeof h2, "%s_zp", x->name);
    snprintf(name, sizeof name, "%s_DQL", x->name);
    const char *hints[3] = {h0, h1, h2};
    joule_value *outs[3] = {NULL, NULL, NULL};
    joule_status st = jq_add_node(c->g, "DynamicQuantizeLinear", name, 1, &x, 3, outs, hints,
                                  before, NULL, NULL, c->err);
    if (st)
        return st;
    e->xq = outs[0];
    e->xs = outs[1];
    e->xz = outs[2];
    e->xq->dtype = JOULE_U8;
    jq_copy_shape(e->xq, x);
    e->xs->dtype = JOULE_F32;
    e->xs->shape.rank = 0;
    e->xz->dtype = JOULE_U8;
    e->xz->shape.rank = 0;
    c->n_xs++;
    *out = e;
    return JOULE_OK;
}

/* [K, N] copy of a [N, K] float matrix. */
static joule_status transpose2(const joule_tensor *w, joule_tensor **out, joule_error *err)
{
    int64_t d[2] = {w->dims[1], w->dims[0]};
    joule_status st = joule_tensor_new(JOULE_F32, 2, d, out, err);
    if (st)
        return st;
    float *dst = joule_tensor_mutable_data(*out);
    if (!dst && w->count) {
        joule_tensor_free(*out);
        *out = NULL;
        return joule_fail(err, JOULE_ERR_NOMEM, "int8 dynamic: out of memory");
    }
    const float *src = w->data;
    size_t rows = (size_t)w->dims[0], cols = (size_t)w->dims[1];
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++)
            dst[j * rows + i] = src[i * cols + j];
    return JOULE_OK;
}

/* Quantized weight (and its scales shaped for the output: [M,1..] for Conv, [N] for MatMul). */
static joule_status quantize_weight(dyn_ctx *c, joule_node *n, bool conv, bool transposed,
                                    w_cache **out)
{
    joule_value *wv = n->inputs[1];
    for (size_t i = 0; i < c->n_ws; i++)
        if (c->ws[i].w == wv && c->ws[i].transposed == transposed) {
            *out = &c->ws[i];
            return JOULE_OK;
        }
    w_cache *nw = realloc(c->ws, (c->n_ws + 1) * sizeof *nw);
    if (!nw)
        return joule_fail(c->err, JOULE_ERR_NOMEM, "int8 dynamic: out of memory");
    c->ws = nw;
    w_cache *e = &c->ws[c->n_ws];
    memset(e, 0, sizeof *e);
    e->w = wv;
    e->transposed = transposed;
    const joule_tensor *w = cz_const(c->g, wv);
    joule_tensor *wt = NULL, *q = NULL, *s = NULL;
    joule_status st = JOULE_OK;
    if (transposed && (st = transpose2(w, &wt, c->err)))
        return st;
    int axis = c->o->per_tensor ? -1 : (conv ? 0 : 1);
    st = jq_quantize_weight(wt ? wt : w, axis, &q, &s, c->err);
    joule_tensor_free(wt);
    if (st)
        return st;
    const float *sp = s->data;
    e->smin = e->smax = sp[0];
    for (size_t i = 1; i < s->count; i++) {
        if (sp[i] < e->smin)
            e->smin = sp[i];
        if (sp[i] > e->smax)
            e->smax = sp[i];
    }
    if (conv && axis == 0) { /* [M] -> [M, 1, ...] to broadcast over the output's spatial dims */
        s->rank = w->rank - 1;
        for (int d = 1; d < s->rank; d++)
            s->dims[d] = 1;
    }
    char hint[600];
    snprintf(hint, sizeof hint, "%s_q", wv->name);
    if ((st = jq_add_init(c->g, hint, q, &e->wq, c->err))) {
        joule_tensor_free(s);
        return st;
    }
    snprintf(hint, sizeof hint, "%s_s", wv->name);
    if ((st = jq_add_init(c->g, hint, s, &e->ws, c->err)))
        return st;
    double zero = 0;
    joule_tensor *z;
    if ((st = jq_tensor_from(JOULE_I8, &zero, 0, false, &z, c->err)))
        return st;
    snprintf(hint, sizeof hint, "%s_zp", wv->name);
    if ((st = jq_add_init(c->g, hint, z, &e->wz, c->err)))
        return st;
    c->n_ws++;
    *out = e;
    return JOULE_OK;
}

/* A float32 constant for the bias add: Conv's B as [M, 1, ...], Gemm's C times beta. */
static joule_status bias_const(dyn_ctx *c, joule_node *n, bool conv, int out_rank,
                               joule_value **out)
{
    *out = NULL;
    joule_value *bv = n->n_inputs > 2 ? n->inputs[2] : NULL;
    if (!bv)
        return JOULE_OK;
    const joule_tensor *b = cz_const(c->g, bv);
    float beta = conv ? 1.0f : joule_attr_float(n, "beta", 1.0f);
    if (!b) { /* Gemm's C from a computed tensor, beta == 1 (checked): add it as it is */
        *out = bv;
        return JOULE_OK;
    }
    if (!conv && beta == 1.0f) {
        *out = bv;
        return JOULE_OK;
    }
    joule_tensor *t;
    joule_status st = joule_tensor_clone(b, &t, c->err);
    if (st)
        return st;
    float *p = joule_tensor_mutable_data(t);
    if (!p && t->count) {
        joule_tensor_free(t);
        return joule_fail(c->err, JOULE_ERR_NOMEM, "int8 dynamic: out of memory");
    }
    for (size_t i = 0; i < t->count; i++)
        p[i] *= beta;
    if (conv) {
        t->rank = out_rank - 1;
        t->dims[0] = (int64_t)t->count;
        for (int d = 1; d < t->rank; d++)
            t->dims[d] = 1;
    }
    char hint[600];
    snprintf(hint, sizeof hint, "%s_%s", bv->name, conv ? "reshaped" : "scaled");
    return jq_add_init(c->g, hint, t, out, c->err);
}

static joule_status quantize_node(dyn_ctx *c, joule_node *n)
{
    joule_graph *g = c->g;
    const bool conv = joule_node_is_op(n, "Conv"), gemm = joule_node_is_op(n, "Gemm");
    const bool transposed = gemm && joule_attr_int(n, "transB", 0) != 0;
    joule_status st;
    char lb[160], name[400];
    const char *label = cz_label(g, n, lb, sizeof lb);
    if ((st = cz_materialize(g, n->inputs[1], c->err)))
        return st;
    const joule_tensor *w = cz_const(g, n->inputs[1]);
    const uint64_t w_bytes = w->nbytes, w_count = w->count;
    const int w_rank = w->rank;
    dq_cache *x = NULL;
    w_cache *wq = NULL;
    if ((st = quantize_input(c, n->inputs[0], n, &x)) ||
        (st = quantize_weight(c, n, conv, transposed, &wq)))
        return st;
    joule_value *y = n->outputs[0];
    /* integer product */
    joule_value *yi = NULL, *yf = NULL, *sc = NULL, *ys = NULL;
    joule_value *ins[4] = {x->xq, wq->wq, x->xz, wq->wz};
    char hint[600];
    snprintf(hint, sizeof hint, "%s_int32", y->name);
    const char *h1[1] = {hint};
    joule_node *mm;
    snprintf(name, sizeof name, "%s_%s", label, conv ? "ConvInteger" : "MatMulInteger");
    if ((st = jq_add_node(g, conv ? "ConvInteger" : "MatMulInteger", name, 4, ins, 1, &yi, h1, n,
                          NULL, &mm, c->err)))
        return st;
    if (conv && (st = jq_copy_conv_attrs(g, n, mm, c->err)))
        return st;
    yi->dtype = JOULE_I32;
    /* to float */
    snprintf(hint, sizeof hint, "%s_int32_float", y->name);
    snprintf(name, sizeof name, "%s_cast", label);
    joule_node *cast;
    if ((st = jq_add_node(g, "Cast", name, 1, &yi, 1, &yf, h1, n, NULL, &cast, c->err)) ||
        (st = joule_node_set_attr_int(g, cast, "to", JOULE_F32, c->err)))
        return st;
    yf->dtype = JOULE_F32;
    /* x_scale * w_scale (alpha folded in) */
    joule_value *wscale = wq->ws;
    float alpha = gemm ? joule_attr_float(n, "alpha", 1.0f) : 1.0f;
    if (alpha != 1.0f) {
        joule_tensor *t;
        if ((st = joule_tensor_clone(wq->ws->data, &t, c->err)))
            return st;
        float *p = joule_tensor_mutable_data(t);
        for (size_t i = 0; p && i < t->count; i++)
            p[i] *= alpha;
        snprintf(hint, sizeof hint, "%s_alpha", wq->ws->name);
        if ((st = jq_add_init(g, hint, t, &wscale, c->err)))
            return st;
    }
    joule_value *sins[2] = {x->xs, wscale};
    snprintf(hint, sizeof hint, "%s_s", y->name);
    snprintf(name, sizeof name, "%s_s", label);
    if ((st = jq_add_node(g, "Mul", name, 2, sins, 1, &sc, h1, n, NULL, NULL, c->err)))
        return st;
    sc->dtype = JOULE_F32;
    joule_value *bias;
    if ((st = bias_const(c, n, conv, w_rank, &bias)))
        return st;
    /* y = float(y_int) * scale [+ bias] */
    joule_value *min[2] = {yf, sc};
    joule_value *mul_out = bias ? NULL : y;
    snprintf(hint, sizeof hint, "%s_unbiased", y->name);
    snprintf(name, sizeof name, "%s_rescale", label);
    if ((st = jq_add_node(g, "Mul", name, 2, min, 1, &mul_out, h1, n, NULL, NULL, c->err)))
        return st;
    mul_out->dtype = JOULE_F32;
    ys = mul_out;
    if (bias) {
        joule_value *ain[2] = {ys, bias}, *aout = y;
        snprintf(name, sizeof name, "%s_bias", label);
        if ((st = jq_add_node(g, "Add", name, 2, ain, 1, &aout, h1, n, NULL, NULL, c->err)))
            return st;
    }
    /* the row, then the float node goes */
    char note[200];
    snprintf(note, sizeof note, "%s int8 weights (zero point 0), uint8 activations by "
             "DynamicQuantizeLinear, %s", c->o->per_tensor ? "per-tensor" : "per-channel",
             conv ? "ConvInteger" : "MatMulInteger");
    joule_layer_change row = {
        .pass = "int8_dynamic",
        .node = label,
        .op_type = n->op_type,
        .tensor = n->inputs[1]->name,
        .dtype_before = JOULE_F32,
        .dtype_after = JOULE_I8,
        .params_before = w_count,
        .params_after = w_count,
        .bytes_before = w_bytes,
        .bytes_after = wq->wq->data->nbytes + wq->ws->data->nbytes,
        .scale_min = wq->smin,
        .scale_max = wq->smax,
        .note = note,
    };
    if ((st = jq_row(c->r, &row, c->err)))
        return st;
    return joule_graph_remove_node(g, n, NULL, c->err);
}

joule_status joule_quantize_dynamic(joule_model *m, const joule_dynamic_options *opt,
                                    joule_report *r, joule_error *err)
{
    joule_dynamic_options dflt;
    if (!opt) {
        joule_dynamic_defaults(&dflt);
        opt = &dflt;
    }
    if (!m || !m->graph)
        return joule_fail(err, JOULE_ERR_INVALID, "int8 dynamic: no model");
    int64_t opset = joule_model_opset(m, "");
    if (opset < 11)
        return joule_fail(err, JOULE_ERR_UNSUPPORTED,
                          "int8 dynamic: the model imports opset %lld; DynamicQuantizeLinear needs "
                          ">= 11",
                          (long long)opset);
    joule_graph *g = m->graph;
    joule_status st = joule_infer_shapes(m, NULL, 0, err);
    if (!st)
        st = cz_warn_unused(r, "int8_dynamic", g, opt->exclude.items, opt->exclude.n,
                            "exclude entry", true, false, err);
    if (st)
        return st;
    /* decide first, so that a refusal leaves the model as it was */
    size_t n0 = g->n_nodes, n_sel = 0;
    joule_node **sel = malloc((n0 ? n0 : 1) * sizeof *sel);
    if (!sel)
        return joule_fail(err, JOULE_ERR_NOMEM, "int8 dynamic: out of memory");
    for (size_t i = 0; i < n0 && !st; i++) {
        joule_node *n = g->nodes[i];
        if (!joule_node_is_op(n, "Conv") && !joule_node_is_op(n, "MatMul") &&
            !joule_node_is_op(n, "Gemm"))
            continue;
        const char *why = jq_excluded(&opt->exclude, n) ? "excluded" : unsuited(g, n);
        if (why)
            st = cz_note(r, "int8_dynamic", g, n, NULL, err, "left in float: %s", why);
        else
            sel[n_sel++] = n;
    }
    dyn_ctx c = {.m = m, .g = g, .o = opt, .r = r, .err = err};
    for (size_t i = 0; i < n_sel && !st; i++)
        st = quantize_node(&c, sel[i]);
    free(sel);
    free(c.xs);
    free(c.ws);
    if (st)
        return st;
    joule_graph_prune_values(g);
    if ((st = joule_graph_validate(g, err)))
        return st;
    return joule_infer_shapes(m, NULL, 0, err);
}

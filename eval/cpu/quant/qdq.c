/* eval/cpu/quant/qdq.c: recognising DequantizeLinear -> Conv/MatMul/Gemm [-> Relu] ->
 * QuantizeLinear chains (joule_qdq_match) and the fused integer kernels that run them (see
 * qdq.h for the contract). The conv kernel reuses the integer conv engine of qconv.c, the
 * matmul/gemm kernels the integer GEMM with weights packed at prepare time; the float scales
 * become one multiplier and one bias per output channel, computed once at prepare. */
#include "eval/cpu/quant/qdq.h"

#include <stdlib.h>
#include <string.h>

#include "eval/cpu/quant/quant.h"

/* ---- matching ---- */

static const joule_value *input_at(const joule_node *n, int i)
{
    return i < n->n_inputs ? n->inputs[i] : NULL;
}

static bool is_const(const joule_value *v)
{
    return v && v->data && v->data->data;
}

static size_t const_count(const joule_value *v)
{
    return v->data->count;
}

/* A constant scalar (or one-element) tensor of a scale type. */
static bool const_scale_scalar(const joule_value *v)
{
    return is_const(v) && joule_q_is_scale_type(v->data->dtype) && const_count(v) == 1;
}

/* dtype known to be t, or not known yet (the kernel's supports() checks it later). */
static bool maybe_int8(const joule_value *v)
{
    return v->dtype == JOULE_UNDEFINED || joule_q_is_int8(v->dtype);
}

/* Whether reader is the only node that reads v and v is not a graph output. */
static bool sole_reader(const joule_graph *g, const joule_value *v, const joule_node *reader)
{
    if (v->flags & JOULE_VALUE_OUTPUT)
        return false;
    joule_node **cons = NULL;
    size_t n = 0;
    if (joule_graph_consumers(g, v, &cons, &n, NULL) != JOULE_OK)
        return false;
    bool only = n == 1 && cons[0] == reader;
    free(cons);
    return only;
}

/* The single node reading v (v not a graph output), or NULL. */
static const joule_node *single_consumer(const joule_graph *g, const joule_value *v)
{
    if (!v || (v->flags & JOULE_VALUE_OUTPUT))
        return NULL;
    joule_node **cons = NULL;
    size_t n = 0;
    if (joule_graph_consumers(g, v, &cons, &n, NULL) != JOULE_OK)
        return NULL;
    const joule_node *one = n == 1 ? cons[0] : NULL;
    free(cons);
    return one;
}

/* The DequantizeLinear axis of a per-channel parameter, normalized for a tensor of rank. */
static bool dq_axis(const joule_node *dq, int rank, int *axis)
{
    return joule_q_axis(joule_attr_int(dq, "axis", 1), rank, axis);
}

/* Scale and zero point of dq: constant, per tensor, or per channel along want_axis with
 * channels entries. */
static bool dq_params_ok(const joule_node *dq, const joule_value *q, int want_axis,
                         int64_t channels)
{
    const joule_value *s = input_at(dq, 1), *z = input_at(dq, 2);
    if (!is_const(s) || !joule_q_is_scale_type(s->data->dtype))
        return false;
    if (joule_attr_int(dq, "block_size", 0) != 0)
        return false;
    size_t count = const_count(s);
    if (count != 1) {
        int axis;
        if (want_axis < 0 || s->data->rank != 1 || (int64_t)count != channels ||
            !dq_axis(dq, q->data->rank, &axis) || axis != want_axis)
            return false;
    }
    if (z && (!is_const(z) || const_count(z) != count || z->data->dtype != q->data->dtype))
        return false;
    return true;
}

static void add_covered(joule_qdq_pattern *p, const joule_node *n)
{
    if (n && p->n_covered < JOULE_QDQ_MAX_COVERED)
        p->covered[p->n_covered++] = n;
}

/* Sorts covered into graph order. */
static void order_covered(const joule_graph *g, joule_qdq_pattern *p)
{
    for (size_t i = 1; i < p->n_covered; i++) {
        const joule_node *n = p->covered[i];
        long at = joule_graph_node_index(g, n);
        size_t j = i;
        while (j > 0 && joule_graph_node_index(g, p->covered[j - 1]) > at) {
            p->covered[j] = p->covered[j - 1];
            j--;
        }
        p->covered[j] = n;
    }
}

bool joule_qdq_match(const joule_graph *g, const joule_node *anchor, joule_qdq_pattern *out)
{
    memset(out, 0, sizeof *out);
    if (!g || !anchor)
        return false;
    const bool conv = joule_node_is_op(anchor, "Conv"), matmul = joule_node_is_op(anchor, "MatMul"),
               gemm = joule_node_is_op(anchor, "Gemm");
    if (!conv && !matmul && !gemm)
        return false;
    if (anchor->n_outputs < 1 || !anchor->outputs[0])
        return false;
    if (gemm && joule_attr_int(anchor, "transA", 0) != 0)
        return false;

    /* activation: DequantizeLinear(x, scale, zp) per tensor */
    const joule_value *xf = input_at(anchor, 0), *wf = input_at(anchor, 1);
    if (!xf || !wf)
        return false;
    const joule_node *dq_x = joule_graph_producer(g, xf);
    if (!joule_node_is_op(dq_x, "DequantizeLinear") || dq_x->n_inputs < 2)
        return false;
    const joule_value *xq = input_at(dq_x, 0), *xs = input_at(dq_x, 1), *xz = input_at(dq_x, 2);
    if (!xq || !maybe_int8(xq) || !const_scale_scalar(xs) ||
        (xz && (!is_const(xz) || const_count(xz) != 1 || !joule_q_is_int8(xz->data->dtype))))
        return false;

    /* weights: DequantizeLinear(w const, scale, zp), per tensor or per output channel */
    const joule_node *dq_w = joule_graph_producer(g, wf);
    if (!joule_node_is_op(dq_w, "DequantizeLinear") || dq_w->n_inputs < 2)
        return false;
    const joule_value *wq = input_at(dq_w, 0);
    if (!is_const(wq) || !joule_q_is_int8(wq->data->dtype))
        return false;
    const joule_tensor *wt = wq->data;
    int ch_axis;
    int64_t channels;
    if (conv) {
        if (wt->rank < 3)
            return false;
        ch_axis = 0;
    } else {
        if (wt->rank != 2)
            return false;
        ch_axis = (gemm && joule_attr_int(anchor, "transB", 0) != 0) ? 0 : 1;
    }
    channels = wt->dims[ch_axis];
    if (!dq_params_ok(dq_w, wq, ch_axis, channels))
        return false;

    /* bias: Conv's B or Gemm's C, from DequantizeLinear(int32 const) or a float constant */
    const joule_node *dq_b = NULL;
    const joule_value *bias = NULL, *bias_scale = NULL, *bias_zp = NULL;
    const joule_value *bf = (conv || gemm) ? input_at(anchor, 2) : NULL;
    if (bf) {
        const joule_node *prod = joule_graph_producer(g, bf);
        if (prod) {
            if (!joule_node_is_op(prod, "DequantizeLinear") || prod->n_inputs < 2)
                return false;
            const joule_value *bq = input_at(prod, 0);
            if (!is_const(bq) || bq->data->dtype != JOULE_I32 || bq->data->rank > 1 ||
                (const_count(bq) != 1 && (int64_t)const_count(bq) != channels))
                return false;
            if (!dq_params_ok(prod, bq, bq->data->rank == 1 ? 0 : -1, channels))
                return false;
            dq_b = prod;
            bias = bq;
            bias_scale = input_at(prod, 1);
            bias_zp = input_at(prod, 2);
        } else {
            if (!is_const(bf) || bf->data->dtype != JOULE_F32)
                return false;
            size_t c = const_count(bf);
            if (c != 1 && (int64_t)c != channels)
                return false;
            if (bf->data->rank > 1 && !(bf->data->rank == 2 && bf->data->dims[0] == 1))
                return false;
            bias = bf;
        }
    }

    /* [Relu ->] QuantizeLinear(y_scale, y_zp) per tensor */
    const joule_value *yf = anchor->outputs[0];
    const joule_node *next = single_consumer(g, yf), *relu = NULL;
    if (joule_node_is_op(next, "Relu")) {
        relu = next;
        if (relu->n_outputs < 1 || input_at(relu, 0) != yf)
            return false;
        yf = relu->outputs[0];
        next = single_consumer(g, yf);
    }
    if (!joule_node_is_op(next, "QuantizeLinear") || next->n_inputs < 2 ||
        input_at(next, 0) != yf || next->n_outputs < 1 || !next->outputs[0])
        return false;
    const joule_node *q = next;
    const joule_value *ys = input_at(q, 1), *yz = input_at(q, 2);
    if (!const_scale_scalar(ys) ||
        (yz && (!is_const(yz) || const_count(yz) != 1 || !joule_q_is_int8(yz->data->dtype))))
        return false;
    if (joule_attr_int(q, "block_size", 0) != 0)
        return false;
    int64_t od = joule_attr_int(q, "output_dtype", 0);
    if (od != 0 && od != (yz ? (int64_t)yz->data->dtype : (int64_t)JOULE_U8))
        return false;
    if (!maybe_int8(q->outputs[0]))
        return false;

    out->anchor = anchor;
    out->dq_x = dq_x;
    out->dq_w = dq_w;
    out->dq_bias = dq_b;
    out->relu = relu;
    out->q = q;
    if (sole_reader(g, xf, anchor))
        add_covered(out, dq_x);
    if (sole_reader(g, wf, anchor))
        add_covered(out, dq_w);
    if (dq_b && sole_reader(g, bf, anchor))
        add_covered(out, dq_b);
    add_covered(out, anchor);
    add_covered(out, relu);
    add_covered(out, q);
    order_covered(g, out);
    out->inputs[JOULE_QDQ_X] = xq;
    out->inputs[JOULE_QDQ_X_SCALE] = xs;
    out->inputs[JOULE_QDQ_X_ZP] = xz;
    out->inputs[JOULE_QDQ_W] = wq;
    out->inputs[JOULE_QDQ_W_SCALE] = input_at(dq_w, 1);
    out->inputs[JOULE_QDQ_W_ZP] = input_at(dq_w, 2);
    out->inputs[JOULE_QDQ_Y_SCALE] = ys;
    out->inputs[JOULE_QDQ_Y_ZP] = yz;
    out->inputs[JOULE_QDQ_BIAS] = bias;
    out->inputs[JOULE_QDQ_BIAS_SCALE] = bias_scale;
    out->inputs[JOULE_QDQ_BIAS_ZP] = bias_zp;
    out->output = q->outputs[0];
    if (conv)
        out->kernel = relu ? &joule_cpu_kernel_qdq_conv_relu : &joule_cpu_kernel_qdq_conv;
    else if (matmul)
        out->kernel = relu ? &joule_cpu_kernel_qdq_matmul_relu : &joule_cpu_kernel_qdq_matmul;
    else
        out->kernel = relu ? &joule_cpu_kernel_qdq_gemm_relu : &joule_cpu_kernel_qdq_gemm;
    return true;
}

/* ---- the fused kernels ---- */

enum { KIND_CONV, KIND_MATMUL, KIND_GEMM };

static int kind_of(const joule_node *node)
{
    return strcmp(node->op_type, "Conv") == 0     ? KIND_CONV
           : strcmp(node->op_type, "MatMul") == 0 ? KIND_MATMUL
                                                  : KIND_GEMM;
}

/* Output channels (N) and, for MatMul/Gemm, the reduction length K of the weights. */
static bool weight_dims(const joule_node *node, const joule_view *w, int64_t *n, int64_t *k)
{
    int kind = kind_of(node);
    if (kind == KIND_CONV) {
        if (w->rank < 3)
            return false;
        *n = w->dims[0];
        *k = 0;
        return true;
    }
    if (w->rank != 2)
        return false;
    bool tb = kind == KIND_GEMM && joule_attr_int(node, "transB", 0) != 0;
    *n = tb ? w->dims[0] : w->dims[1];
    *k = tb ? w->dims[1] : w->dims[0];
    return true;
}

static bool per_channel_ok(const joule_view *v, int64_t n)
{
    return v->data && v->rank <= 2 && (v->count == 1 || (int64_t)v->count == n);
}

static bool qdq_supports(const joule_node *node, int64_t opset, int n_in,
                         const joule_view *const *in)
{
    (void)opset;
    if (n_in != JOULE_QDQ_N_INPUTS)
        return false;
    const joule_view *x = in[JOULE_QDQ_X], *w = in[JOULE_QDQ_W];
    const joule_view *xs = in[JOULE_QDQ_X_SCALE], *xz = in[JOULE_QDQ_X_ZP];
    const joule_view *ws = in[JOULE_QDQ_W_SCALE], *wz = in[JOULE_QDQ_W_ZP];
    const joule_view *ys = in[JOULE_QDQ_Y_SCALE], *yz = in[JOULE_QDQ_Y_ZP];
    const joule_view *b = in[JOULE_QDQ_BIAS], *bs = in[JOULE_QDQ_BIAS_SCALE],
                     *bz = in[JOULE_QDQ_BIAS_ZP];
    if (!x || !w || !xs || !ws || !ys || !joule_q_is_int8(x->dtype) || !joule_q_is_int8(w->dtype) ||
        !w->data)
        return false;
    if (!xs->data || xs->count != 1 || !joule_q_is_scale_type(xs->dtype) || !ys->data ||
        ys->count != 1 || !joule_q_is_scale_type(ys->dtype))
        return false;
    if (xz && (!xz->data || xz->count != 1 || xz->dtype != x->dtype))
        return false;
    if (yz && (!yz->data || yz->count != 1 || !joule_q_is_int8(yz->dtype)))
        return false;
    int64_t n, k;
    if (!weight_dims(node, w, &n, &k))
        return false;
    if (!per_channel_ok(ws, n) || !joule_q_is_scale_type(ws->dtype))
        return false;
    if (wz && (!per_channel_ok(wz, n) || wz->dtype != w->dtype || wz->count != ws->count))
        return false;
    if (b) {
        if (!per_channel_ok(b, n))
            return false;
        if (b->dtype == JOULE_I32) {
            if (!bs || !per_channel_ok(bs, n) || !joule_q_is_scale_type(bs->dtype))
                return false;
            if (bz && (!per_channel_ok(bz, n) || bz->dtype != JOULE_I32 || bz->count != bs->count))
                return false;
        } else if (b->dtype != JOULE_F32 || bs || bz) {
            return false;
        }
    }
    switch (kind_of(node)) {
    case KIND_CONV:
        return joule_q_conv_supported(node, x, w);
    case KIND_MATMUL:
        return x->rank >= 1 && x->dims[x->rank - 1] == k;
    default:
        return x->rank == 2 && x->dims[1] == k && joule_attr_int(node, "transA", 0) == 0;
    }
}

typedef struct qdq_state {
    int kind;
    bool relu;
    joule_q_conv_state *conv;   /* Conv */
    joule_qgemm_packed *wpack;  /* MatMul, Gemm */
    int64_t n, k, m, mtile;
    float *mult, *fbias;        /* fbias NULL when the bias is integer or absent */
    int32_t *ibias;             /* NULL unless the bias is int32 at scale x_scale * w_scale */
    joule_dtype out_type;
    int32_t zp, lo, hi;
    size_t gemm_scratch, scratch_bytes;
} qdq_state;

static void qdq_destroy(void *state)
{
    qdq_state *s = state;
    if (!s)
        return;
    joule_q_conv_free(s->conv);
    joule_qgemm_packed_free(s->wpack);
    free(s->mult);
    free(s->fbias);
    free(s->ibias);
    free(s);
}

static size_t at_or_0(const joule_view *v, int64_t i)
{
    return v->count == 1 ? 0 : (size_t)i;
}

/* Multipliers and bias per output channel, from the constant scales. */
static bool qdq_params(const joule_kernel_ctx *ctx, qdq_state *s)
{
    const joule_view *const *in = ctx->in;
    const joule_view *ws = in[JOULE_QDQ_W_SCALE], *b = in[JOULE_QDQ_BIAS];
    const joule_view *bs = in[JOULE_QDQ_BIAS_SCALE], *bz = in[JOULE_QDQ_BIAS_ZP];
    const float xs = joule_q_scale_at(in[JOULE_QDQ_X_SCALE], 0);
    const float ys = joule_q_scale_at(in[JOULE_QDQ_Y_SCALE], 0);
    float alpha = 1.0f, beta = 1.0f;
    if (s->kind == KIND_GEMM) {
        alpha = joule_attr_float(ctx->node, "alpha", 1.0f);
        beta = joule_attr_float(ctx->node, "beta", 1.0f);
    }
    const size_t n = (size_t)s->n + 1;
    s->mult = malloc(n * sizeof *s->mult);
    if (!s->mult)
        return false;
    for (int64_t c = 0; c < s->n; c++)
        s->mult[c] = joule_q_mult(alpha * xs, joule_q_scale_at(ws, at_or_0(ws, c)), ys);
    if (!b)
        return true;
    /* an int32 bias already at scale x_scale * w_scale adds to the sums exactly */
    bool exact = b->dtype == JOULE_I32 && alpha == 1.0f && beta == 1.0f;
    for (int64_t c = 0; exact && c < s->n; c++)
        exact = joule_q_int_at(bz, bz ? at_or_0(bz, c) : 0) == 0 &&
                joule_q_scale_at(bs, at_or_0(bs, c)) ==
                    xs * joule_q_scale_at(ws, at_or_0(ws, c));
    if (exact) {
        s->ibias = malloc(n * sizeof *s->ibias);
        if (!s->ibias)
            return false;
        for (int64_t c = 0; c < s->n; c++)
            s->ibias[c] = joule_q_int_at(b, at_or_0(b, c));
        return true;
    }
    s->fbias = malloc(n * sizeof *s->fbias);
    if (!s->fbias)
        return false;
    for (int64_t c = 0; c < s->n; c++) {
        float bf;
        if (b->dtype == JOULE_I32)
            bf = (float)((int64_t)joule_q_int_at(b, at_or_0(b, c)) -
                         joule_q_int_at(bz, bz ? at_or_0(bz, c) : 0)) *
                 joule_q_scale_at(bs, at_or_0(bs, c));
        else
            bf = ((const float *)b->data)[at_or_0(b, c)];
        s->fbias[c] = beta * bf / ys;
    }
    return true;
}

static joule_status qdq_prepare_impl(const joule_kernel_ctx *ctx, bool relu, void **state,
                                     size_t *scratch_bytes)
{
    const joule_view *const *in = ctx->in;
    const char *nm = joule_q_name(ctx->node), *op = ctx->node->op_type;
    qdq_state *s = calloc(1, sizeof *s);
    if (!s)
        return joule_fail(ctx->err, JOULE_ERR_NOMEM, "node '%s' (%s): out of memory", nm, op);
    s->kind = kind_of(ctx->node);
    s->relu = relu;
    const joule_view *x = in[JOULE_QDQ_X], *w = in[JOULE_QDQ_W], *wz = in[JOULE_QDQ_W_ZP];
    const joule_view *yz = in[JOULE_QDQ_Y_ZP];
    if (!weight_dims(ctx->node, w, &s->n, &s->k)) {
        qdq_destroy(s);
        return joule_fail(ctx->err, JOULE_ERR_INVALID, "node '%s' (%s): bad weight shape", nm, op);
    }
    s->out_type = yz ? yz->dtype : JOULE_U8;
    s->zp = joule_q_int_at(yz, 0);
    joule_q_range(s->out_type, &s->lo, &s->hi);
    if (relu && s->zp > s->lo)
        s->lo = s->zp; /* Relu before quantizing == clamping at the zero point after */
    if (!qdq_params(ctx, s)) {
        qdq_destroy(s);
        return joule_fail(ctx->err, JOULE_ERR_NOMEM, "node '%s' (%s): out of memory", nm, op);
    }
    joule_status st;
    if (s->kind == KIND_CONV) {
        st = joule_q_conv_plan(ctx->node, x, w, wz, ctx->threads, &s->conv, ctx->err);
        if (st) {
            qdq_destroy(s);
            return st;
        }
        s->scratch_bytes = s->conv->scratch_bytes;
    } else {
        int32_t *zp = malloc(((size_t)s->n + 1) * sizeof *zp);
        if (!zp) {
            qdq_destroy(s);
            return joule_fail(ctx->err, JOULE_ERR_NOMEM, "node '%s' (%s): out of memory", nm, op);
        }
        int64_t nzp = wz ? (wz->count == 1 ? 1 : s->n) : 0;
        for (int64_t i = 0; i < nzp; i++)
            zp[i] = joule_q_int_at(wz, (size_t)i);
        bool tb = s->kind == KIND_GEMM && joule_attr_int(ctx->node, "transB", 0) != 0;
        st = joule_qgemm_pack(w->data, w->dtype == JOULE_I8, s->k, s->n, tb ? s->k : s->n, tb,
                              wz ? zp : NULL, nzp, JOULE_QGEMM_AUTO, &s->wpack, ctx->err);
        free(zp);
        if (st) {
            qdq_destroy(s);
            return st;
        }
        s->m = s->k > 0 ? (int64_t)(x->count / (size_t)s->k) : 0;
        int64_t tile = (int64_t)((1u << 20) / ((size_t)(s->n > 0 ? s->n : 1) * 4));
        if (tile < 1)
            tile = 1;
        if (tile > s->m)
            tile = s->m > 0 ? s->m : 1;
        s->mtile = tile;
        s->gemm_scratch = joule_qgemm_scratch_bytes(s->wpack, tile, ctx->threads);
        joule_q_carver c = {0};
        joule_q_take(&c, s->gemm_scratch, 1);
        size_t accn;
        if (!joule_q_mul((size_t)tile, (size_t)s->n, &accn))
            c.overflow = true;
        joule_q_take(&c, accn, sizeof(int32_t));
        if (!s->gemm_scratch || c.overflow) {
            qdq_destroy(s);
            return joule_fail(ctx->err, JOULE_ERR_NOMEM, "node '%s' (%s): scratch overflows", nm,
                              op);
        }
        s->scratch_bytes = c.used;
    }
    *state = s;
    *scratch_bytes = s->scratch_bytes;
    return JOULE_OK;
}

static joule_status qdq_prepare(const joule_kernel_ctx *ctx, void **state, size_t *scratch_bytes)
{
    return qdq_prepare_impl(ctx, false, state, scratch_bytes);
}

static joule_status qdq_prepare_relu(const joule_kernel_ctx *ctx, void **state,
                                     size_t *scratch_bytes)
{
    return qdq_prepare_impl(ctx, true, state, scratch_bytes);
}

static joule_status qdq_run(const joule_kernel_ctx *ctx)
{
    const qdq_state *s = ctx->state;
    const joule_view *const *in = ctx->in;
    const joule_view *x = in[JOULE_QDQ_X];
    joule_view *y = ctx->out[0];
    const char *nm = joule_q_name(ctx->node), *op = ctx->node->op_type;
    if (y->dtype != s->out_type)
        return joule_fail(ctx->err, JOULE_ERR_INVALID, "node '%s' (%s): output is %s, expected %s",
                          nm, op, joule_dtype_name(y->dtype), joule_dtype_name(s->out_type));
    joule_q_emit e = {.dtype = s->out_type, .ibias = s->ibias, .mult = s->mult,
                      .fbias = s->fbias, .zp = s->zp, .lo = s->lo, .hi = s->hi};
    if (s->kind == KIND_CONV) {
        int64_t dims[4];
        joule_q_conv_out_dims(&s->conv->p, dims);
        size_t want = 1;
        for (int i = 0; i < s->conv->p.nsp + 2; i++)
            want *= (size_t)dims[i];
        if (y->count != want)
            return joule_fail(ctx->err, JOULE_ERR_INVALID,
                              "node '%s' (%s): output has %zu elements, expected %zu", nm, op,
                              y->count, want);
        return joule_q_conv_run(s->conv, ctx->node, x, in[JOULE_QDQ_X_ZP], in[JOULE_QDQ_W],
                                in[JOULE_QDQ_W_ZP], &e, y->data, ctx->scratch, ctx->err);
    }
    if (x->count != (size_t)(s->m * s->k) || y->count != (size_t)(s->m * s->n) ||
        !joule_q_is_int8(x->dtype))
        return joule_fail(ctx->err, JOULE_ERR_INVALID,
                          "node '%s' (%s): input or output size changed since prepare", nm, op);
    joule_q_carver c = {.base = ctx->scratch};
    void *gemm = joule_q_take(&c, s->gemm_scratch, 1);
    int32_t *acc = joule_q_take(&c, (size_t)(s->mtile * s->n), sizeof(int32_t));
    const int32_t xz = joule_q_int_at(in[JOULE_QDQ_X_ZP], 0);
    for (int64_t m0 = 0; m0 < s->m; m0 += s->mtile) {
        int64_t mt = s->m - m0 < s->mtile ? s->m - m0 : s->mtile;
        joule_qgemm_args args = {
            .M = mt,
            .a = (const char *)x->data + (size_t)(m0 * s->k),
            .a_signed = x->dtype == JOULE_I8,
            .lda = s->k,
            .a_zp = &xz,
            .c = acc,
            .ldc = s->n,
            .threads = ctx->threads,
            .scratch = gemm,
            .scratch_bytes = s->gemm_scratch,
        };
        joule_status st = joule_qgemm(&args, s->wpack, ctx->err);
        if (st)
            return st;
        joule_q_emit_block(&e, acc, s->n, mt, s->n, 0, (char *)y->data + (size_t)(m0 * s->n),
                           s->n, 1);
    }
    return JOULE_OK;
}

const joule_kernel joule_cpu_kernel_qdq_conv = {
    "Conv", "", "cpu.quant.qdq_conv", qdq_supports, qdq_prepare, qdq_run, qdq_destroy};
const joule_kernel joule_cpu_kernel_qdq_conv_relu = {
    "Conv", "", "cpu.quant.qdq_conv_relu", qdq_supports, qdq_prepare_relu, qdq_run, qdq_destroy};
const joule_kernel joule_cpu_kernel_qdq_matmul = {
    "MatMul", "", "cpu.quant.qdq_matmul", qdq_supports, qdq_prepare, qdq_run, qdq_destroy};
const joule_kernel joule_cpu_kernel_qdq_matmul_relu = {
    "MatMul", "", "cpu.quant.qdq_matmul_relu", qdq_supports, qdq_prepare_relu, qdq_run,
    qdq_destroy};
const joule_kernel joule_cpu_kernel_qdq_gemm = {
    "Gemm", "", "cpu.quant.qdq_gemm", qdq_supports, qdq_prepare, qdq_run, qdq_destroy};
const joule_kernel joule_cpu_kernel_qdq_gemm_relu = {
    "Gemm", "", "cpu.quant.qdq_gemm_relu", qdq_supports, qdq_prepare_relu, qdq_run, qdq_destroy};

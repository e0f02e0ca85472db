/* compress/cleanup_fold.c: the folding steps of cleanup. Constant folding evaluates a node whose
 * inputs are all constant once, with the op table's inference for the output types and the cpu
 * backend's reference kernels for the values, and keeps the results as initializers.
 * BatchNormalization folding rescales the preceding Conv/Gemm's weight per output channel by
 * scale/sqrt(var+eps) and moves the shift into its bias. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/cleanup_internal.h"
#include "eval/kernel.h"
#include "formats/ops/ops.h"

#define PASS "cleanup"
#define SMALL_BYTES 4096

/* ---- constant folding ---- */

typedef struct fold_tmp {
    joule_infer_io *in, *out;
    joule_tensor **outv;
    joule_view *inv, *outvw;
    const joule_view **inp;
    joule_view **outp;
} fold_tmp;

static void fold_tmp_free(fold_tmp *t, int n_out)
{
    if (t->outv)
        for (int j = 0; j < n_out; j++)
            joule_tensor_free(t->outv[j]);
    free(t->in);
    free(t->out);
    free(t->outv);
    free(t->inv);
    free(t->outvw);
    free(t->inp);
    free(t->outp);
}

/* Evaluates n (all inputs constant) into outs[0..n_outputs). Returns JOULE_ERR_UNSUPPORTED with
 * why filled when it cannot or should not be folded; other errors are real. */
static joule_status eval_node(const joule_model *m, const joule_node *n, joule_tensor **outs,
                              char *why, size_t why_size, joule_error *err)
{
    const joule_graph *g = m->graph;
    const joule_op_def *def = joule_op_find(n->domain, n->op_type);
    if (!def || !def->infer) {
        snprintf(why, why_size, "joule has no shape rule for %s", n->op_type);
        return JOULE_ERR_UNSUPPORTED;
    }
    int ni = n->n_inputs, no = n->n_outputs;
    fold_tmp t = {0};
    size_t ai = (size_t)(ni > 0 ? ni : 1), ao = (size_t)(no > 0 ? no : 1);
    t.in = calloc(ai, sizeof *t.in);
    t.out = calloc(ao, sizeof *t.out);
    t.outv = calloc(ao, sizeof *t.outv);
    t.inv = calloc(ai, sizeof *t.inv);
    t.outvw = calloc(ao, sizeof *t.outvw);
    t.inp = calloc(ai, sizeof *t.inp);
    t.outp = calloc(ao, sizeof *t.outp);
    if (!t.in || !t.out || !t.outv || !t.inv || !t.outvw || !t.inp || !t.outp) {
        fold_tmp_free(&t, no);
        return joule_fail(err, JOULE_ERR_NOMEM, "cleanup: out of memory");
    }
    size_t in_bytes = 0;
    for (int k = 0; k < ni; k++) {
        t.in[k].shape.rank = -1;
        if (!n->inputs[k])
            continue;
        const joule_tensor *c = cz_const(g, n->inputs[k]);
        t.in[k].present = true;
        t.in[k].dtype = c->dtype;
        t.in[k].shape.rank = c->rank;
        for (int d = 0; d < c->rank; d++)
            t.in[k].shape.dims[d].size = c->dims[d];
        t.in[k].value = c;
        joule_view *v = &t.inv[k];
        v->dtype = c->dtype;
        v->rank = c->rank;
        memcpy(v->dims, c->dims, sizeof v->dims);
        v->count = c->count;
        v->data = (void *)c->data;
        t.inp[k] = v;
        in_bytes += c->nbytes;
    }
    for (int j = 0; j < no; j++) {
        t.out[j].present = n->outputs[j] != NULL;
        t.out[j].shape.rank = -1;
    }
    joule_error e2 = {{0}};
    joule_infer_ctx c = {
        .node = n,
        .opset = joule_model_opset(m, n->domain),
        .n_in = ni,
        .in = t.in,
        .n_out = no,
        .out = t.out,
        .out_values = t.outv,
        .graph = NULL,
        .err = &e2,
    };
    joule_status st = def->infer(&c);
    if (st) {
        snprintf(why, why_size, "shape inference failed: %.200s", e2.msg);
        fold_tmp_free(&t, no);
        return st == JOULE_ERR_NOMEM ? joule_fail(err, st, "%s", e2.msg) : JOULE_ERR_UNSUPPORTED;
    }
    size_t out_bytes = 0;
    bool all_propagated = true;
    for (int j = 0; j < no; j++) {
        if (!n->outputs[j])
            continue;
        joule_infer_io *io = &t.out[j];
        if (!joule_shape_is_concrete(&io->shape) || io->dtype == JOULE_UNDEFINED ||
            io->shape.rank > JOULE_MAX_RANK) {
            snprintf(why, why_size, "output '%s' has no concrete type", n->outputs[j]->name);
            fold_tmp_free(&t, no);
            return JOULE_ERR_UNSUPPORTED;
        }
        joule_view *v = &t.outvw[j];
        v->dtype = io->dtype;
        v->rank = io->shape.rank;
        for (int d = 0; d < v->rank; d++)
            v->dims[d] = io->shape.dims[d].size;
        if (!joule_dims_count(v->rank, v->dims, &v->count)) {
            snprintf(why, why_size, "output '%s' is too large", n->outputs[j]->name);
            fold_tmp_free(&t, no);
            return JOULE_ERR_UNSUPPORTED;
        }
        out_bytes += joule_dtype_bytes(v->dtype, v->count);
        t.outp[j] = v;
        joule_tensor *pv = t.outv[j];
        if (!(pv && pv->dtype == v->dtype && pv->count == v->count && pv->data))
            all_propagated = false;
    }
    if (out_bytes > SMALL_BYTES && out_bytes > in_bytes) {
        snprintf(why, why_size, "its result (%zu bytes) would be larger than its inputs (%zu)",
                 out_bytes, in_bytes);
        fold_tmp_free(&t, no);
        return JOULE_ERR_UNSUPPORTED;
    }
    if (all_propagated) { /* inference computed the contents (shape arithmetic) */
        for (int j = 0; j < no; j++) {
            outs[j] = t.outv[j];
            t.outv[j] = NULL;
        }
        fold_tmp_free(&t, no);
        return JOULE_OK;
    }
    const joule_kernel *k = joule_cpu_find_kernel(n, c.opset, ni, t.inp, true);
    if (!k) {
        snprintf(why, why_size, "no reference kernel for it");
        fold_tmp_free(&t, no);
        return JOULE_ERR_UNSUPPORTED;
    }
    for (int j = 0; j < no && !st; j++) {
        if (!t.outp[j])
            continue;
        st = joule_tensor_new(t.outvw[j].dtype, t.outvw[j].rank, t.outvw[j].dims, &outs[j], err);
        if (!st) {
            t.outvw[j].data = joule_tensor_mutable_data(outs[j]);
            if (!t.outvw[j].data && outs[j]->nbytes)
                st = joule_fail(err, JOULE_ERR_NOMEM, "cleanup: out of memory");
        }
    }
    joule_kernel_ctx kc = {
        .node = n,
        .opset = c.opset,
        .n_in = ni,
        .in = t.inp,
        .n_out = no,
        .out = t.outp,
        .threads = 1,
        .err = &e2,
    };
    void *state = NULL, *scratch = NULL;
    size_t scratch_bytes = 0;
    joule_status ks = JOULE_OK;
    if (!st && k->prepare)
        ks = k->prepare(&kc, &state, &scratch_bytes);
    if (!st && !ks && scratch_bytes && !(scratch = malloc(scratch_bytes)))
        st = joule_fail(err, JOULE_ERR_NOMEM, "cleanup: out of memory for %zu bytes of scratch",
                        scratch_bytes);
    if (!st && !ks) {
        kc.state = state;
        kc.scratch = scratch;
        ks = k->run(&kc);
    }
    free(scratch);
    if (state && k->destroy)
        k->destroy(state);
    fold_tmp_free(&t, no);
    if (!st && ks) {
        snprintf(why, why_size, "the kernel failed: %.200s", e2.msg);
        st = ks == JOULE_ERR_NOMEM ? joule_fail(err, ks, "%s", e2.msg) : JOULE_ERR_UNSUPPORTED;
    }
    if (st)
        for (int j = 0; j < no; j++) {
            joule_tensor_free(outs[j]);
            outs[j] = NULL;
        }
    return st;
}

static bool is_random(const char *op)
{
    return strncmp(op, "Random", 6) == 0 || strcmp(op, "Multinomial") == 0 ||
           strcmp(op, "Bernoulli") == 0;
}

/* Why n should not be folded even though its inputs are constant, or NULL. */
static const char *fold_blocker(const joule_graph *g, const joule_node *n)
{
    if (is_random(n->op_type))
        return "it draws random numbers";
    if (joule_node_is_op(n, "DequantizeLinear"))
        return "it dequantizes a quantized weight (folding would undo quantization)";
    for (int j = 0; j < n->n_outputs; j++)
        if (n->outputs[j] && (n->outputs[j]->flags & JOULE_VALUE_OUTPUT))
            return "it makes a graph output";
    (void)g;
    return NULL;
}

static bool all_inputs_constant(const joule_graph *g, const joule_node *n)
{
    int present = 0;
    for (int k = 0; k < n->n_inputs; k++) {
        if (!n->inputs[k])
            continue;
        if (!cz_const(g, n->inputs[k]))
            return false;
        present++;
    }
    return present > 0;
}

joule_status cz_fold_constants(joule_model *m, joule_report *r, joule_error *err)
{
    joule_graph *g = m->graph;
    for (size_t i = 0; i < g->n_nodes;) {
        joule_node *n = g->nodes[i];
        joule_status st = JOULE_OK;
        if (joule_node_is_op(n, "Constant") && n->n_outputs == 1 && n->outputs[0]) {
            joule_value *v = n->outputs[0];
            if (v->flags & JOULE_VALUE_OUTPUT) {
                i++;
                continue;
            }
            joule_error e2 = {{0}};
            st = cz_materialize(g, v, &e2);
            if (st == JOULE_ERR_NOMEM)
                return joule_fail(err, st, "%s", e2.msg);
            if (st) {
                st = cz_note(r, PASS, g, n, v->name, err, "left alone: %s", e2.msg);
                i++;
            } else {
                st = cz_note(r, PASS, g, NULL, v->name, err, "Constant node became an initializer");
            }
            if (st)
                return st;
            continue;
        }
        if (joule_node_is_op(n, "Constant") || !all_inputs_constant(g, n)) {
            i++;
            continue;
        }
        char why[256] = "";
        const char *b = fold_blocker(g, n);
        joule_tensor *outs[16] = {0};
        if (!b && n->n_outputs > 16)
            b = "it has more than 16 outputs";
        if (b) {
            st = cz_note(r, PASS, g, n, NULL, err, "not folded: %s", b);
            i++;
        } else if ((st = eval_node(m, n, outs, why, sizeof why, err)) == JOULE_ERR_UNSUPPORTED) {
            st = cz_note(r, PASS, g, n, NULL, err, "not folded: %s", why);
            i++;
        } else if (!st) {
            for (int j = 0; j < n->n_outputs && !st; j++) {
                if (!n->outputs[j] || !outs[j])
                    continue;
                st = joule_graph_set_initializer(g, n->outputs[j], outs[j], err);
                if (!st)
                    outs[j] = NULL;
            }
            for (int j = 0; j < n->n_outputs && j < 16; j++)
                joule_tensor_free(outs[j]);
            if (!st)
                st = cz_note(r, PASS, g, n, n->outputs[0] ? n->outputs[0]->name : NULL, err,
                             "evaluated once: its output is now an initializer");
            if (!st)
                st = joule_graph_remove_node(g, n, NULL, err);
        }
        if (st)
            return st;
    }
    return JOULE_OK;
}

/* ---- BatchNormalization folding ---- */

/* f32 constant with count elements behind v, or NULL. */
static const float *f32_const(const joule_graph *g, const joule_value *v, size_t count)
{
    const joule_tensor *t = v ? cz_const(g, v) : NULL;
    if (!t || t->dtype != JOULE_F32 || t->count != count)
        return NULL;
    return t->data;
}

/* Why BN node bn cannot fold into p, or NULL; *C gets the channel count. */
static const char *bn_blocker(const joule_graph *g, const joule_node *bn, const joule_node *p,
                              int64_t *C)
{
    if (!p)
        return "its input is not a node's output";
    bool conv = joule_node_is_op(p, "Conv"), gemm = joule_node_is_op(p, "Gemm");
    if (!conv && !gemm)
        return "it does not follow a Conv or Gemm";
    if (cz_uses(g, bn->inputs[0]) != 1)
        return "the layer's output is read by others too";
    for (int k = 1; k < bn->n_outputs; k++)
        if (bn->outputs[k] && cz_uses(g, bn->outputs[k]))
            return "its running statistics outputs are read (training mode)";
    if (joule_attr_int(bn, "training_mode", 0) != 0)
        return "training_mode is set";
    if (joule_attr_int(bn, "spatial", 1) == 0)
        return "spatial=0 (per-activation statistics)";
    if (bn->n_inputs < 5 || p->n_inputs < 2)
        return "inputs are missing";
    const joule_tensor *w = cz_const(g, p->inputs[1]);
    if (!w || w->dtype != JOULE_F32)
        return "the layer's weight is not a float32 constant";
    if (conv) {
        if (w->rank < 3)
            return "the Conv weight's rank is below 3";
        *C = w->dims[0];
    } else {
        if (w->rank != 2 || joule_attr_int(p, "transA", 0) != 0 || (p->outputs[0] && p->outputs[0]->shape.rank > 2))
            return "the Gemm's weight is not 2-D";
        *C = w->dims[joule_attr_int(p, "transB", 0) ? 0 : 1];
    }
    for (int k = 1; k <= 4; k++)
        if (!f32_const(g, bn->inputs[k], (size_t)*C))
            return "its scale/B/mean/var are not float32 constants of the layer's channel count";
    if (p->n_inputs > 2 && p->inputs[2]) {
        const joule_tensor *b = cz_const(g, p->inputs[2]);
        if (!b || b->dtype != JOULE_F32)
            return "the layer's bias is not a float32 constant";
        bool ok = b->count == (size_t)*C || b->count == 1;
        if (gemm && b->rank == 2 && b->dims[0] != 1)
            ok = false;
        if (!ok)
            return "the layer's bias does not broadcast per channel";
    }
    return NULL;
}

/* Gives p a bias input (index 2) of C zeros when it has none. */
static joule_status ensure_bias(joule_graph *g, joule_node *p, int64_t C, joule_error *err)
{
    if (p->n_inputs > 2 && p->inputs[2])
        return JOULE_OK;
    if (p->n_inputs < 3) {
        joule_value **in = realloc(p->inputs, 3 * sizeof *in);
        if (!in)
            return joule_fail(err, JOULE_ERR_NOMEM, "cleanup: out of memory");
        for (int k = p->n_inputs; k < 3; k++)
            in[k] = NULL;
        p->inputs = in;
        p->n_inputs = 3;
    }
    char hint[256];
    snprintf(hint, sizeof hint, "%s_bias", p->name && p->name[0] ? p->name : p->inputs[1]->name);
    joule_value *v;
    joule_tensor *t;
    joule_status st = joule_graph_new_value(g, hint, &v, err);
    if (!st)
        st = joule_tensor_new(JOULE_F32, 1, &C, &t, err);
    if (st)
        return st;
    if (!joule_tensor_mutable_data(t) || (st = joule_graph_set_initializer(g, v, t, err))) {
        joule_tensor_free(t);
        return st ? st : joule_fail(err, JOULE_ERR_NOMEM, "cleanup: out of memory");
    }
    p->inputs[2] = v;
    return JOULE_OK;
}

static joule_status fold_one(joule_graph *g, joule_node *bn, joule_node *p, int64_t C,
                             joule_error *err)
{
    size_t nc = (size_t)C;
    const float *gamma = f32_const(g, bn->inputs[1], nc), *beta = f32_const(g, bn->inputs[2], nc);
    const float *mean = f32_const(g, bn->inputs[3], nc), *var = f32_const(g, bn->inputs[4], nc);
    double eps = joule_attr_float(bn, "epsilon", 1e-5f);
    double *s = malloc(nc * sizeof *s), *shift = malloc(nc * sizeof *shift);
    if (!s || !shift) {
        free(s);
        free(shift);
        return joule_fail(err, JOULE_ERR_NOMEM, "cleanup: out of memory");
    }
    for (size_t c = 0; c < nc; c++) {
        s[c] = (double)gamma[c] / sqrt((double)var[c] + eps);
        shift[c] = (double)beta[c] - (double)mean[c] * s[c];
    }
    /* the BN's parameters are read above; copies made below may move nothing they point to */
    bool gemm = joule_node_is_op(p, "Gemm");
    bool old_bias = p->n_inputs > 2 && p->inputs[2];
    joule_tensor *w, *b;
    joule_status st = cz_private_const(g, p, 1, &w, err);
    if (!st)
        st = ensure_bias(g, p, C, err);
    if (!st)
        st = cz_private_const(g, p, 2, &b, err);
    float *wd = st ? NULL : joule_tensor_mutable_data(w);
    if (!st && !wd)
        st = joule_fail(err, JOULE_ERR_NOMEM, "cleanup: out of memory");
    if (!st) {
        if (!gemm) {
            size_t per = w->count / nc;
            for (size_t c = 0; c < nc; c++)
                for (size_t i = 0; i < per; i++)
                    wd[c * per + i] = (float)(wd[c * per + i] * s[c]);
        } else if (joule_attr_int(p, "transB", 0)) { /* B is [N, K] */
            size_t K = (size_t)w->dims[1];
            for (size_t c = 0; c < nc; c++)
                for (size_t k = 0; k < K; k++)
                    wd[c * K + k] = (float)(wd[c * K + k] * s[c]);
        } else { /* B is [K, N] */
            size_t K = (size_t)w->dims[0];
            for (size_t k = 0; k < K; k++)
                for (size_t c = 0; c < nc; c++)
                    wd[k * nc + c] = (float)(wd[k * nc + c] * s[c]);
        }
    }
    if (!st) {
        /* new bias: (beta_gemm * b - mean) * s + B over C channels */
        double bscale = gemm && old_bias ? joule_attr_float(p, "beta", 1.0f) : 1.0;
        const float *bd = b->data;
        float *nb = NULL;
        joule_tensor *nt = NULL;
        st = joule_tensor_new(JOULE_F32, 1, &C, &nt, err);
        if (!st && !(nb = joule_tensor_mutable_data(nt)))
            st = joule_fail(err, JOULE_ERR_NOMEM, "cleanup: out of memory");
        if (!st) {
            for (size_t c = 0; c < nc; c++) {
                double old = bd[b->count == 1 ? 0 : c] * bscale;
                nb[c] = (float)(old * s[c] + shift[c]);
            }
            st = joule_graph_set_initializer(g, p->inputs[2], nt, err);
        }
        if (st)
            joule_tensor_free(nt);
        if (!st && gemm)
            st = joule_node_set_attr_float(g, p, "beta", 1.0f, err);
    }
    free(s);
    free(shift);
    if (st)
        return st;
    /* the layer now writes the BN's output under its name */
    joule_value *x = bn->inputs[0], *y = bn->outputs[0];
    p->outputs[0] = y;
    if (x->flags & JOULE_VALUE_INFO)
        cz_drop_value_info(g, x);
    return joule_graph_remove_node(g, bn, NULL, err);
}

joule_status cz_fold_batchnorm(joule_model *m, joule_report *r, joule_error *err)
{
    joule_graph *g = m->graph;
    for (size_t i = 0; i < g->n_nodes;) {
        joule_node *bn = g->nodes[i];
        if (!joule_node_is_op(bn, "BatchNormalization") || bn->n_inputs < 1 || !bn->inputs[0] ||
            bn->n_outputs < 1 || !bn->outputs[0]) {
            i++;
            continue;
        }
        joule_node *p = joule_graph_producer(g, bn->inputs[0]);
        int64_t C = 0;
        const char *why = bn_blocker(g, bn, p, &C);
        joule_status st;
        if (why) {
            st = cz_note(r, PASS, g, bn, NULL, err, "not folded: %s", why);
            i++;
        } else {
            char lb[160], lp[160], note[400];
            const char *bl = cz_label(g, bn, lb, sizeof lb);
            snprintf(note, sizeof note, "folded into %s (%s)", cz_label(g, p, lp, sizeof lp),
                     p->op_type);
            joule_layer_change row = {.pass = PASS, .node = bl, .op_type = bn->op_type,
                                      .note = note};
            st = joule_report_add(r, &row, err);
            if (!st)
                st = fold_one(g, bn, p, C, err);
        }
        if (st)
            return st;
    }
    return JOULE_OK;
}

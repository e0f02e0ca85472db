/* eval/plan.c: making a session's plan. Walks the nodes in order: infers each output's concrete
 * dtype and dims with the op table (keeping small integer tensors that inference propagates), picks
 * the first cpu kernel that supports the node, lets it prepare (pre-pack weights, ask for scratch),
 * and evaluates nodes whose inputs are all constant right here. Then it gives every remaining
 * activation an offset in one arena: values whose lifetimes do not overlap share bytes (greedy
 * best-fit, largest first), so peak memory is the arena's size, not the sum of activations. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval/engine_internal.h"
#include "formats/ops/ops.h"

#define ARENA_ALIGN 64

/* "node 'name' (Op, opset N)" or "node #i (dom.Op, opset N)" for messages. */
static const char *node_desc(const eng_node *en, size_t idx, char *buf, size_t size)
{
    const joule_node *n = en->knode ? en->knode : en->node;
    const char *dom = n->domain && *n->domain ? n->domain : "";
    const char *dot = *dom ? "." : "";
    const char *op = n->op_type ? n->op_type : "?";
    if (n->name && *n->name)
        snprintf(buf, size, "node '%s' (%s%s%s, opset %lld)", n->name, dom, dot, op,
                 (long long)en->opset);
    else
        snprintf(buf, size, "node #%zu (%s%s%s, opset %lld)", idx, dom, dot, op,
                 (long long)en->opset);
    return buf;
}

static const char *value_name(const eng_value *ev)
{
    return ev->v && ev->v->name ? ev->v->name : "?";
}

/* Bytes no plan may ask for: more than the machine has. Refusing early keeps hostile dims from
 * reaching the allocator (which under ASan aborts instead of returning NULL). */
static bool too_big(size_t bytes)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0)
        return bytes > ((size_t)1 << 40);
    if ((size_t)pages > SIZE_MAX / (size_t)page)
        return false;
    return bytes > (size_t)pages * (size_t)page;
}

/* Sets a view's dtype and dims and checks that its byte size is representable. */
static joule_status set_view(joule_view *vw, joule_dtype dt, int rank, const int64_t *dims,
                             const char *what, const char *name, joule_error *err)
{
    if (!joule_dtype_valid((int)dt) || dt == JOULE_UNDEFINED || joule_dtype_info(dt)->bits == 0)
        return joule_fail(err, JOULE_ERR_UNSUPPORTED, "%s '%s': element type %s cannot be stored",
                          what, name, joule_dtype_name(dt));
    if (rank < 0 || rank > JOULE_MAX_RANK)
        return joule_fail(err, JOULE_ERR_UNSUPPORTED, "%s '%s': rank %d exceeds joule's limit %d",
                          what, name, rank, JOULE_MAX_RANK);
    size_t count;
    if (!joule_dims_count(rank, dims, &count) || count > SIZE_MAX / 16)
        return joule_fail(err, JOULE_ERR_INVALID, "%s '%s': negative or overflowing dims", what,
                          name);
    memset(vw, 0, sizeof *vw);
    vw->dtype = dt;
    vw->rank = rank;
    if (rank)
        memcpy(vw->dims, dims, (size_t)rank * sizeof *dims);
    vw->count = count;
    return JOULE_OK;
}

/* Alignment a kernel may assume for elements of t. */
static size_t elem_align(joule_dtype t)
{
    if (t == JOULE_STRING)
        return _Alignof(joule_string);
    unsigned bits = joule_dtype_info(t)->bits;
    size_t a = bits >= 8 ? bits / 8 : 1;
    return a > 8 ? 8 : a;
}

/* Makes ev a constant holding t (the model's or a fed tensor). Data the model stores at an
 * unaligned address is copied once, so kernels may load elements directly. */
static joule_status adopt_const(eng_value *ev, const joule_tensor *t, joule_error *err)
{
    const char *name = value_name(ev);
    joule_status st = set_view(&ev->view, t->dtype, t->rank, t->dims, "value", name, err);
    if (st)
        return st;
    if (ev->view.count != t->count || joule_dtype_bytes(t->dtype, t->count) != t->nbytes ||
        (t->nbytes && !t->data))
        return joule_fail(err, JOULE_ERR_INVALID, "value '%s': tensor size does not match its dims",
                          name);
    if ((uintptr_t)t->data % elem_align(t->dtype)) {
        joule_tensor *copy;
        st = joule_tensor_clone(t, &copy, err);
        if (st)
            return st;
        ev->owned = copy;
        t = copy;
    }
    ev->data = t;
    ev->view.data = (void *)t->data;
    ev->known = ev->is_const = true;
    return JOULE_OK;
}

void eng_plan_clear(joule_session *s)
{
    if (s->nodes) {
        for (size_t i = 0; i < s->g->n_nodes; i++) {
            eng_node *en = &s->nodes[i];
            if (en->state && en->kernel && en->kernel->destroy)
                en->kernel->destroy(en->state);
        }
    }
    free(s->nodes);
    free(s->in_ptrs);
    free(s->out_ptrs);
    free(s->in_idx);
    free(s->out_idx);
    free(s->copies);
    s->nodes = NULL;
    s->in_ptrs = NULL;
    s->out_ptrs = NULL;
    s->in_idx = NULL;
    s->out_idx = NULL;
    s->copies = NULL;
    s->n_copies = 0;
    for (size_t i = 0; i < s->n_values; i++) {
        eng_value *ev = &s->vals[i];
        const joule_value *v = ev->v;
        joule_tensor_free(ev->owned);
        memset(ev, 0, sizeof *ev);
        ev->v = v;
    }
    s->planned = false;
    s->have_outputs = false;
    s->peak = 0;
    s->scratch_need = 0;
}

/* Ops that draw random numbers: never evaluated once at plan time. */
static bool is_random(const char *op)
{
    return strncmp(op, "Random", 6) == 0 || strcmp(op, "Multinomial") == 0 ||
           strcmp(op, "Bernoulli") == 0;
}

static void list_dtypes(const eng_node *en, char *buf, size_t size)
{
    size_t off = 0;
    buf[0] = 0;
    for (int k = 0; k < en->n_in && off < size; k++) {
        const char *sep = k ? ", " : "";
        const char *t = en->in[k] ? joule_dtype_name(en->in[k]->dtype) : "-";
        int w = snprintf(buf + off, size - off, "%s%s", sep, t);
        if (w < 0)
            break;
        off += (size_t)w;
    }
}

/* Everything a node pass needs between nodes. */
typedef struct plan_tmp {
    joule_infer_io *in, *out;
    joule_tensor **outv;
} plan_tmp;

/* The op table's entry for en's node, checked against the opset the model imports. */
static joule_status find_op(const eng_node *en, size_t i, const joule_op_def **out,
                            joule_error *err)
{
    const joule_node *n = en->node;
    char desc[256];
    const joule_op_def *op = joule_op_find(n->domain ? n->domain : "", n->op_type);
    *out = op;
    if (!op || !op->infer)
        return joule_fail(err, JOULE_ERR_UNSUPPORTED, "%s: operator not supported by joule",
                          node_desc(en, i, desc, sizeof desc));
    if (en->opset <= 0)
        return joule_fail(err, JOULE_ERR_INVALID, "%s: the model imports no opset for domain '%s'",
                          node_desc(en, i, desc, sizeof desc), n->domain ? n->domain : "");
    if (en->opset < op->since_version)
        return joule_fail(err, JOULE_ERR_UNSUPPORTED,
                          "%s: joule implements this operator from opset %lld on",
                          node_desc(en, i, desc, sizeof desc), (long long)op->since_version);
    return JOULE_OK;
}

joule_status eng_check_ops(const joule_session *s, joule_error *err)
{
    for (size_t i = 0; i < s->g->n_nodes; i++) {
        eng_node en = {.node = s->g->nodes[i]};
        en.opset = joule_model_opset(s->model, en.node->domain);
        const joule_op_def *op;
        joule_status st = find_op(&en, i, &op, err);
        if (st)
            return st;
    }
    return JOULE_OK;
}

/* Infers node i's outputs and fills their views (propagated contents become the values' data). */
static joule_status infer_node(joule_session *s, size_t i, const joule_tensor *const *fed,
                               plan_tmp *t, joule_error *err)
{
    eng_node *en = &s->nodes[i];
    const joule_node *n = en->node;
    char desc[256];
    const joule_op_def *op;
    joule_status st = find_op(en, i, &op, err);
    if (st)
        return st;
    for (int k = 0; k < n->n_inputs; k++) {
        joule_infer_io *io = &t->in[k];
        memset(io, 0, sizeof *io);
        io->shape.rank = -1;
        if (!en->in[k])
            continue;
        const eng_value *ev = &s->vals[eng_value_index(s, n->inputs[k])];
        io->present = true;
        io->dtype = ev->view.dtype;
        io->shape.rank = ev->view.rank;
        for (int d = 0; d < ev->view.rank; d++)
            io->shape.dims[d].size = ev->view.dims[d];
        io->value = ev->data;
    }
    for (int j = 0; j < n->n_outputs; j++) {
        memset(&t->out[j], 0, sizeof t->out[j]);
        t->out[j].present = n->outputs[j] != NULL;
        t->out[j].shape.rank = -1;
        t->outv[j] = NULL;
    }
    joule_infer_ctx c = {
        .node = n,
        .opset = en->opset,
        .n_in = n->n_inputs,
        .in = t->in,
        .n_out = n->n_outputs,
        .out = t->out,
        .out_values = t->outv,
        .graph = NULL,
        .err = err,
    };
    st = op->infer(&c);
    for (int j = 0; j < n->n_outputs && !st; j++) {
        if (!n->outputs[j])
            continue;
        joule_infer_io *io = &t->out[j];
        eng_value *ev = &s->vals[eng_value_index(s, n->outputs[j])];
        if (!joule_shape_is_concrete(&io->shape) || io->dtype == JOULE_UNDEFINED) {
            if (!fed && s->n_inputs > 0)
                s->need_data = true;
            char shape[160];
            joule_shape_format(&io->shape, shape, sizeof shape);
            st = joule_fail(err, JOULE_ERR_UNSUPPORTED,
                            "%s: cannot infer a concrete type for output '%s' (%s %s)%s",
                            node_desc(en, i, desc, sizeof desc), value_name(ev),
                            joule_dtype_name(io->dtype), shape,
                            fed ? "" : "; it may depend on input contents");
            break;
        }
        int64_t dims[JOULE_MAX_RANK];
        int rank = io->shape.rank;
        if (rank > JOULE_MAX_RANK) {
            st = joule_fail(err, JOULE_ERR_UNSUPPORTED, "%s: output '%s' has rank %d (limit %d)",
                            node_desc(en, i, desc, sizeof desc), value_name(ev), rank,
                            JOULE_MAX_RANK);
            break;
        }
        for (int d = 0; d < rank; d++)
            dims[d] = io->shape.dims[d].size;
        st = set_view(&ev->view, io->dtype, rank, dims, "value", value_name(ev), err);
        if (st)
            break;
        ev->known = true;
        joule_tensor *pv = t->outv[j];
        if (pv && pv->dtype == ev->view.dtype && pv->rank == rank && pv->count == ev->view.count &&
            pv->nbytes == joule_dtype_bytes(pv->dtype, pv->count) && pv->data &&
            (rank == 0 || memcmp(pv->dims, dims, (size_t)rank * sizeof *dims) == 0)) {
            ev->owned = pv;
            ev->data = pv;
            t->outv[j] = NULL;
        }
    }
    for (int j = 0; j < n->n_outputs; j++) {
        joule_tensor_free(t->outv[j]);
        t->outv[j] = NULL;
    }
    return st;
}

/* Picks a kernel for position i (k, or the first that supports it), prepares it and, when every
 * input is constant, evaluates it now. Works on what the kernel sees: en->knode, en->in, en->out. */
static joule_status kernel_node(joule_session *s, size_t i, const joule_tensor *const *fed,
                                const joule_kernel *k, joule_error *err)
{
    eng_node *en = &s->nodes[i];
    const joule_node *n = en->knode;
    char desc[256];

    bool any_out = false, all_known = true;
    for (int j = 0; j < en->n_out; j++) {
        if (!en->out[j])
            continue;
        any_out = true;
        if (!s->vals[en->out_v[j]].data)
            all_known = false;
    }
    if (!any_out)
        return JOULE_OK;
    if (all_known) { /* inference computed every output: nothing to run */
        for (int j = 0; j < en->n_out; j++) {
            if (!en->out[j])
                continue;
            eng_value *ev = &s->vals[en->out_v[j]];
            ev->is_const = true;
            ev->view.data = (void *)ev->data->data;
        }
        return JOULE_OK;
    }

    bool fold = true;
    int present = 0;
    for (int q = 0; q < en->n_in; q++) {
        if (!en->in[q])
            continue;
        present++;
        if (!s->vals[en->in_v[q]].is_const)
            fold = false;
    }
    if (!fed && (is_random(n->op_type) || (present == 0 && strcmp(n->op_type, "Constant") != 0)))
        fold = false;

    if (!k)
        k = joule_cpu_find_kernel(n, en->opset, en->n_in, en->in, false);
    if (!k) {
        char types[256];
        list_dtypes(en, types, sizeof types);
        return joule_fail(err, JOULE_ERR_UNSUPPORTED, "%s: no cpu kernel for input dtypes (%s)",
                          node_desc(en, i, desc, sizeof desc), types);
    }
    en->kernel = k;

    if (fold) { /* outputs get tensors of their own before prepare, so they have data */
        for (int j = 0; j < en->n_out; j++) {
            if (!en->out[j])
                continue;
            eng_value *ev = &s->vals[en->out_v[j]];
            size_t bytes = joule_dtype_bytes(ev->view.dtype, ev->view.count);
            if (too_big(bytes))
                return joule_fail(err, JOULE_ERR_NOMEM,
                                  "%s: output '%s' needs %zu bytes, more than this machine has",
                                  node_desc(en, i, desc, sizeof desc), value_name(ev), bytes);
            joule_tensor *tt;
            joule_status st = joule_tensor_new(ev->view.dtype, ev->view.rank, ev->view.dims, &tt,
                                               err);
            if (st)
                return st;
            joule_tensor_free(ev->owned);
            ev->owned = tt;
            ev->data = tt;
            ev->view.data = tt->owned;
        }
    } else {
        for (int j = 0; j < en->n_out; j++)
            if (en->out[j])
                en->out[j]->data = NULL;
    }

    joule_kernel_ctx ctx = {
        .node = n,
        .opset = en->opset,
        .n_in = en->n_in,
        .in = en->in,
        .n_out = en->n_out,
        .out = en->out,
        .threads = s->threads,
        .err = err,
    };
    joule_status st = JOULE_OK;
    en->scratch_bytes = 0;
    if (k->prepare) {
        st = k->prepare(&ctx, &en->state, &en->scratch_bytes);
        if (st)
            return st;
    }
    if (!fold) {
        en->run = true;
        if (en->scratch_bytes > s->scratch_need)
            s->scratch_need = en->scratch_bytes;
        return JOULE_OK;
    }

    void *scratch = NULL;
    if (en->scratch_bytes) {
        if (too_big(en->scratch_bytes))
            st = joule_fail(err, JOULE_ERR_NOMEM, "%s: scratch of %zu bytes is more than this "
                            "machine has", node_desc(en, i, desc, sizeof desc), en->scratch_bytes);
        else if (!(scratch = malloc(en->scratch_bytes)))
            st = joule_fail(err, JOULE_ERR_NOMEM, "%s: cannot allocate %zu bytes of scratch",
                            node_desc(en, i, desc, sizeof desc), en->scratch_bytes);
    }
    if (!st) {
        ctx.state = en->state;
        ctx.scratch = scratch;
        st = k->run(&ctx);
        if (!st && en->act_kernel)
            st = eng_run_act(s, en, scratch, err);
    }
    free(scratch);
    if (en->state && k->destroy)
        k->destroy(en->state);
    en->state = NULL;
    if (st)
        return st;
    for (int j = 0; j < en->n_out; j++)
        if (en->out[j])
            s->vals[en->out_v[j]].is_const = true;
    return JOULE_OK;
}

/* ---- QDQ fusion ---- */

joule_status eng_find_fusions(joule_session *s, joule_error *err)
{
    const joule_graph *g = s->g;
    size_t n_anchor = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        const char *op = g->nodes[i]->op_type;
        if (op && (!strcmp(op, "Conv") || !strcmp(op, "MatMul") || !strcmp(op, "Gemm")))
            n_anchor++;
    }
    s->node_fusion = calloc(g->n_nodes ? g->n_nodes : 1, sizeof *s->node_fusion);
    if (!s->node_fusion)
        return joule_fail(err, JOULE_ERR_NOMEM, "session: out of memory");
    if (!n_anchor)
        return JOULE_OK;
    s->fusions = calloc(n_anchor, sizeof *s->fusions);
    /* readers of each value, to check that a chain's inner values are read by it alone */
    unsigned *readers = calloc(s->n_values ? s->n_values : 1, sizeof *readers);
    if (!s->fusions || !readers) {
        free(readers);
        return joule_fail(err, JOULE_ERR_NOMEM, "session: out of memory");
    }
    for (size_t i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i]->n_inputs; k++) {
            size_t vi = eng_value_index(s, g->nodes[i]->inputs[k]);
            if (vi != SIZE_MAX)
                readers[vi]++;
        }
    for (size_t o = 0; o < g->n_outputs; o++) {
        size_t vi = eng_value_index(s, g->outputs[o]);
        if (vi != SIZE_MAX)
            readers[vi] += 1u << 16; /* a graph output is never inner */
    }
    for (size_t i = 0; i < g->n_nodes; i++) {
        const joule_node *n = g->nodes[i];
        const char *op = n->op_type;
        if (!op || (strcmp(op, "Conv") && strcmp(op, "MatMul") && strcmp(op, "Gemm")))
            continue;
        eng_fusion *f = &s->fusions[s->n_fusions];
        if (!joule_qdq_match(g, n, &f->pat) || !f->pat.kernel || !f->pat.q || !f->pat.output ||
            f->pat.n_covered == 0 || f->pat.n_covered > JOULE_QDQ_MAX_COVERED)
            continue;
        bool ok = true;
        size_t last = 0;
        for (size_t c = 0; c < f->pat.n_covered && ok; c++) {
            long at = joule_graph_node_index(g, f->pat.covered[c]);
            ok = at >= 0 && !s->node_fusion[at] && (c == 0 || (size_t)at > f->idx[c - 1]);
            f->idx[c] = (size_t)at;
            last = (size_t)at;
        }
        /* the chain ends at its QuantizeLinear, whose output is the fused kernel's */
        ok = ok && g->nodes[last] == f->pat.q && f->pat.q->n_outputs >= 1 &&
             f->pat.q->outputs[0] == f->pat.output;
        for (size_t c = 0; c < f->pat.n_covered && ok; c++) {
            const joule_node *cn = f->pat.covered[c];
            for (int j = 0; j < cn->n_outputs && ok; j++) {
                if (!cn->outputs[j] || cn == f->pat.q)
                    continue;
                size_t vi = eng_value_index(s, cn->outputs[j]);
                unsigned inner = 0;
                for (size_t d = 0; d < f->pat.n_covered; d++)
                    for (int k = 0; k < f->pat.covered[d]->n_inputs; k++)
                        inner += f->pat.covered[d]->inputs[k] == cn->outputs[j];
                ok = vi != SIZE_MAX && readers[vi] == inner;
            }
        }
        if (!ok)
            continue;
        for (size_t c = 0; c < f->pat.n_covered; c++)
            s->node_fusion[f->idx[c]] = s->n_fusions + 1;
        s->n_fusions++;
    }
    free(readers);
    return JOULE_OK;
}

/* At a chain's last node: runs the whole chain as one fused kernel when it supports the plan's
 * shapes, else plans the chain's nodes one by one. */
static joule_status fuse_or_expand(joule_session *s, size_t i, eng_fusion *f,
                                   const joule_tensor *const *fed, joule_error *err)
{
    eng_node *en = &s->nodes[i];
    bool ok = true;
    for (int k = 0; k < JOULE_QDQ_N_INPUTS; k++) {
        f->in[k] = NULL;
        f->in_v[k] = SIZE_MAX;
        if (!f->pat.inputs[k])
            continue;
        size_t vi = eng_value_index(s, f->pat.inputs[k]);
        if (vi == SIZE_MAX || !s->vals[vi].known) {
            ok = false;
            continue;
        }
        f->in[k] = &s->vals[vi].view;
        f->in_v[k] = vi;
    }
    int64_t opset = joule_model_opset(s->model, f->pat.anchor->domain);
    if (ok && en->out[0] && f->pat.kernel->supports &&
        f->pat.kernel->supports(f->pat.anchor, opset, JOULE_QDQ_N_INPUTS, f->in)) {
        en->knode = f->pat.anchor;
        en->opset = opset;
        en->n_in = JOULE_QDQ_N_INPUTS;
        en->in = f->in;
        en->in_v = f->in_v;
        en->n_out = 1;
        en->deferred = false;
        return kernel_node(s, i, fed, f->pat.kernel, err);
    }
    for (size_t c = 0; c < f->pat.n_covered; c++) {
        s->nodes[f->idx[c]].deferred = false;
        joule_status st = kernel_node(s, f->idx[c], fed, NULL, err);
        if (st)
            return st;
    }
    return JOULE_OK;
}

joule_status eng_run_act(const joule_session *s, const eng_node *en, void *scratch,
                         joule_error *err)
{
    joule_kernel_ctx ctx = {
        .node = en->act_node,
        .opset = en->act_opset,
        .n_in = en->act_n_in,
        .in = en->act_in,
        .n_out = 1,
        .out = en->out,
        .scratch = scratch,
        .threads = s->threads,
        .err = err,
    };
    return en->act_kernel->run(&ctx);
}

/* At a float Conv chain's last node (eval/fuse.c): runs the Conv with the folded weights and
 * the activation's kernel in place after it, writing the chain's output; when X is not float32
 * (or the activation has no kernel that runs without a state), plans the chain's nodes one by
 * one. */
static joule_status conv_fuse_or_expand(joule_session *s, size_t i, eng_cfusion *f,
                                        const joule_tensor *const *fed, joule_error *err)
{
    eng_node *en = &s->nodes[i];
    const eng_node *cn = &s->nodes[f->conv];
    const joule_view *x = cn->in[0];
    const joule_kernel *ak = NULL;
    const joule_node *an = f->act != SIZE_MAX ? s->g->nodes[f->act] : NULL;
    int64_t aopset = an ? joule_model_opset(s->model, an->domain) : 0;
    bool ok = x && x->dtype == JOULE_F32 && en->out[0] && en->out[0]->dtype == JOULE_F32;
    if (ok && an) { /* the activation's own kernel, on the chain's output in place */
        f->act_in[0] = en->out[0];
        for (int k = 1; k < 3; k++)
            f->act_in[k] = k < an->n_inputs ? en->in[k] : NULL;
        ak = joule_cpu_find_kernel(an, aopset, an->n_inputs, f->act_in, false);
        ok = ak && !ak->prepare;
    }
    if (ok) {
        f->in[0] = x;
        f->in_v[0] = cn->in_v[0];
        for (int k = 1; k < 3; k++) {
            bool have = k < cn->n_in && cn->in[k];
            f->in[k] = f->w ? (k == 1 ? &f->wv : &f->bv) : (have ? cn->in[k] : NULL);
            /* folded tensors are no graph values: name the Conv's own (constant) input there */
            f->in_v[k] = have ? cn->in_v[k] : (f->w ? cn->in_v[1] : SIZE_MAX);
        }
        en->knode = cn->node;
        en->opset = cn->opset;
        en->n_in = 3;
        en->in = f->in;
        en->in_v = f->in_v;
        en->n_out = 1;
        en->act_kernel = ak;
        en->act_node = an;
        en->act_opset = aopset;
        en->act_n_in = an ? an->n_inputs : 0;
        en->act_in = f->act_in;
        en->deferred = false;
        return kernel_node(s, i, fed, NULL, err);
    }
    const size_t idx[3] = {f->conv, f->bn, f->act};
    for (int c = 0; c < 3; c++) {
        if (idx[c] == SIZE_MAX)
            continue;
        s->nodes[idx[c]].deferred = false;
        joule_status st = kernel_node(s, idx[c], fed, NULL, err);
        if (st)
            return st;
    }
    return JOULE_OK;
}

/* ---- memory layout ---- */

typedef struct arena_item {
    int first, last;
    size_t bytes;
    size_t *offset;
} arena_item;

static int by_size_desc(const void *a, const void *b)
{
    const arena_item *x = a, *y = b;
    if (x->bytes != y->bytes)
        return x->bytes < y->bytes ? 1 : -1;
    return (x->first > y->first) - (x->first < y->first);
}

static int by_offset(const void *a, const void *b)
{
    const arena_item *x = *(const arena_item *const *)a, *y = *(const arena_item *const *)b;
    return (*x->offset > *y->offset) - (*x->offset < *y->offset);
}

/* Greedy best-fit: largest item first, each into the smallest gap left between the items already
 * placed whose lifetimes overlap its own (or above them all). */
static joule_status layout(arena_item *items, size_t n, size_t *peak, joule_error *err)
{
    *peak = 0;
    if (!n)
        return JOULE_OK;
    qsort(items, n, sizeof *items, by_size_desc);
    arena_item **live = malloc(n * sizeof *live);
    if (!live)
        return joule_fail(err, JOULE_ERR_NOMEM, "plan: out of memory");
    for (size_t a = 0; a < n; a++) {
        size_t nl = 0;
        for (size_t b = 0; b < a; b++)
            if (items[b].first <= items[a].last && items[a].first <= items[b].last)
                live[nl++] = &items[b];
        qsort(live, nl, sizeof *live, by_offset);
        size_t end = 0, best = SIZE_MAX, best_gap = SIZE_MAX;
        for (size_t b = 0; b < nl; b++) {
            size_t off = *live[b]->offset;
            if (off > end && off - end >= items[a].bytes && off - end < best_gap) {
                best = end;
                best_gap = off - end;
            }
            if (off + live[b]->bytes > end)
                end = off + live[b]->bytes;
        }
        if (best == SIZE_MAX)
            best = end;
        if (best > SIZE_MAX - items[a].bytes) {
            free(live);
            return joule_fail(err, JOULE_ERR_NOMEM, "plan: activation memory overflows");
        }
        *items[a].offset = best;
        if (best + items[a].bytes > *peak)
            *peak = best + items[a].bytes;
    }
    free(live);
    return JOULE_OK;
}

static void *aligned_buffer(size_t bytes)
{
    void *p = NULL;
    size_t n = (bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    if (posix_memalign(&p, ARENA_ALIGN, n ? n : ARENA_ALIGN))
        return NULL;
    return p;
}

/* Liveness of the activations the run writes, their offsets, and the arena and scratch buffers. */
static joule_status plan_memory(joule_session *s, joule_error *err)
{
    const joule_graph *g = s->g;
    int end = (int)g->n_nodes;
    size_t n_items = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        eng_node *en = &s->nodes[i];
        if (!en->run)
            continue;
        for (int k = 0; k < en->n_in; k++) {
            if (!en->in[k])
                continue;
            eng_value *ev = &s->vals[en->in_v[k]];
            if (ev->in_arena)
                ev->last = (int)i;
        }
        for (int j = 0; j < en->n_out; j++) {
            if (!en->out[j])
                continue;
            eng_value *ev = &s->vals[en->out_v[j]];
            ev->in_arena = true;
            ev->first = ev->last = (int)i;
            size_t bytes = joule_dtype_bytes(ev->view.dtype, ev->view.count);
            if (bytes > SIZE_MAX - ARENA_ALIGN)
                return joule_fail(err, JOULE_ERR_NOMEM, "value '%s': too large", value_name(ev));
            ev->bytes = (bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
            n_items++;
        }
    }
    /* graph outputs live to the end of the run; fed inputs that are outputs get a copy there */
    s->n_copies = 0;
    s->copies = calloc(s->n_outputs ? s->n_outputs : 1, sizeof *s->copies);
    if (!s->copies)
        return joule_fail(err, JOULE_ERR_NOMEM, "plan: out of memory");
    for (size_t o = 0; o < s->n_outputs; o++) {
        eng_value *ev = &s->vals[s->output_idx[o]];
        s->out_copy[o] = 0;
        if (!ev->known)
            return joule_fail(err, JOULE_ERR_INVALID, "graph output '%s' is not produced by any node",
                              value_name(ev));
        if (ev->is_fed) {
            size_t c;
            for (c = 0; c < s->n_copies; c++)
                if (s->copies[c].value == s->output_idx[o])
                    break;
            if (c == s->n_copies)
                s->copies[s->n_copies++].value = s->output_idx[o];
            s->out_copy[o] = c + 1;
        } else if (ev->in_arena) {
            ev->last = end;
        }
    }
    n_items += s->n_copies;
    arena_item *items = calloc(n_items ? n_items : 1, sizeof *items);
    if (!items)
        return joule_fail(err, JOULE_ERR_NOMEM, "plan: out of memory");
    size_t at = 0;
    for (size_t v = 0; v < s->n_values; v++) {
        eng_value *ev = &s->vals[v];
        if (!ev->in_arena)
            continue;
        items[at++] = (arena_item){ev->first, ev->last, ev->bytes, &ev->offset};
    }
    for (size_t c = 0; c < s->n_copies; c++) {
        const eng_value *ev = &s->vals[s->copies[c].value];
        size_t bytes = joule_dtype_bytes(ev->view.dtype, ev->view.count);
        bytes = (bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
        items[at++] = (arena_item){end, end, bytes, &s->copies[c].offset};
    }
    joule_status st = layout(items, at, &s->peak, err);
    free(items);
    if (st)
        return st;
    if (too_big(s->peak))
        return joule_fail(err, JOULE_ERR_NOMEM,
                          "plan: activations need %zu bytes, more than this machine has", s->peak);
    if (s->peak > s->arena_cap || !s->arena) {
        free(s->arena);
        s->arena_cap = 0;
        s->arena = aligned_buffer(s->peak);
        if (!s->arena)
            return joule_fail(err, JOULE_ERR_NOMEM, "plan: cannot allocate %zu bytes of activations",
                              s->peak);
        s->arena_cap = s->peak;
    }
    if (s->scratch_need > s->scratch_cap || !s->scratch) {
        if (too_big(s->scratch_need))
            return joule_fail(err, JOULE_ERR_NOMEM,
                              "plan: scratch of %zu bytes is more than this machine has",
                              s->scratch_need);
        free(s->scratch);
        s->scratch_cap = 0;
        s->scratch = aligned_buffer(s->scratch_need);
        if (!s->scratch)
            return joule_fail(err, JOULE_ERR_NOMEM, "plan: cannot allocate %zu bytes of scratch",
                              s->scratch_need);
        s->scratch_cap = s->scratch_need;
    }
    for (size_t v = 0; v < s->n_values; v++)
        if (s->vals[v].in_arena)
            s->vals[v].view.data = s->arena + s->vals[v].offset;
    for (size_t o = 0; o < s->n_outputs; o++) {
        const eng_value *ev = &s->vals[s->output_idx[o]];
        joule_tensor *t = &s->out_t[o];
        memset(t, 0, sizeof *t);
        t->dtype = ev->view.dtype;
        t->rank = ev->view.rank;
        if (t->rank)
            memcpy(t->dims, ev->view.dims, (size_t)t->rank * sizeof *t->dims);
        t->count = ev->view.count;
        t->nbytes = joule_dtype_bytes(t->dtype, t->count);
        if (s->out_copy[o])
            t->data = s->arena + s->copies[s->out_copy[o] - 1].offset;
        else
            t->data = ev->view.data;
    }
    return JOULE_OK;
}

joule_status eng_plan(joule_session *s, const joule_tensor *const *fed, joule_error *err)
{
    const joule_graph *g = s->g;
    eng_plan_clear(s);
    s->need_data = false;
    joule_status st = JOULE_OK;

    /* seed: initializers and fed inputs */
    for (size_t v = 0; v < s->n_values && !st; v++) {
        eng_value *ev = &s->vals[v];
        if (ev->v->data)
            st = adopt_const(ev, ev->v->data, err);
    }
    for (size_t i = 0; i < s->n_inputs && !st; i++) {
        eng_value *ev = &s->vals[s->input_idx[i]];
        ev->is_fed = true;
        if (fed) {
            st = adopt_const(ev, fed[i], err);
        } else {
            st = set_view(&ev->view, ev->v->dtype, s->in_rank[i], s->in_dims[i], "input",
                          value_name(ev), err);
            ev->known = true;
        }
    }
    if (st)
        return st;

    /* per node pointer arrays */
    size_t n_in = 0, n_out = 0;
    int max_in = 1, max_out = 1;
    for (size_t i = 0; i < g->n_nodes; i++) {
        const joule_node *n = g->nodes[i];
        if (n->n_inputs < 0 || n->n_outputs < 0)
            return joule_fail(err, JOULE_ERR_INVALID, "node '%s': negative input count",
                              n->name ? n->name : "");
        n_in += (size_t)n->n_inputs;
        n_out += (size_t)n->n_outputs;
        if (n->n_inputs > max_in)
            max_in = n->n_inputs;
        if (n->n_outputs > max_out)
            max_out = n->n_outputs;
    }
    s->nodes = calloc(g->n_nodes ? g->n_nodes : 1, sizeof *s->nodes);
    s->in_ptrs = calloc(n_in ? n_in : 1, sizeof *s->in_ptrs);
    s->out_ptrs = calloc(n_out ? n_out : 1, sizeof *s->out_ptrs);
    s->in_idx = malloc((n_in ? n_in : 1) * sizeof *s->in_idx);
    s->out_idx = malloc((n_out ? n_out : 1) * sizeof *s->out_idx);
    plan_tmp t = {
        .in = calloc((size_t)max_in, sizeof *t.in),
        .out = calloc((size_t)max_out, sizeof *t.out),
        .outv = calloc((size_t)max_out, sizeof *t.outv),
    };
    if (!s->nodes || !s->in_ptrs || !s->out_ptrs || !s->in_idx || !s->out_idx || !t.in || !t.out ||
        !t.outv) {
        st = joule_fail(err, JOULE_ERR_NOMEM, "plan: out of memory");
        goto done;
    }

    size_t pin = 0, pout = 0;
    for (size_t i = 0; i < g->n_nodes && !st; i++) {
        eng_node *en = &s->nodes[i];
        const joule_node *n = g->nodes[i];
        char desc[256];
        en->node = en->knode = n;
        en->opset = joule_model_opset(s->model, n->domain);
        en->n_in = n->n_inputs;
        en->n_out = n->n_outputs;
        en->in = s->in_ptrs + pin;
        en->out = s->out_ptrs + pout;
        en->in_v = s->in_idx + pin;
        en->out_v = s->out_idx + pout;
        for (int k = 0; k < n->n_inputs; k++)
            en->in_v[k] = SIZE_MAX;
        for (int j = 0; j < n->n_outputs; j++)
            en->out_v[j] = SIZE_MAX;
        pin += (size_t)n->n_inputs;
        pout += (size_t)n->n_outputs;
        for (int k = 0; k < n->n_inputs && !st; k++) {
            if (!n->inputs[k])
                continue;
            size_t vi = eng_value_index(s, n->inputs[k]);
            if (vi == SIZE_MAX || !s->vals[vi].known)
                st = joule_fail(err, JOULE_ERR_INVALID,
                                "%s: input '%s' is not computed by any earlier node",
                                node_desc(en, i, desc, sizeof desc),
                                n->inputs[k]->name ? n->inputs[k]->name : "?");
            else
                en->in[k] = &s->vals[(en->in_v[k] = vi)].view;
        }
        for (int j = 0; j < n->n_outputs && !st; j++) {
            if (!n->outputs[j])
                continue;
            size_t vi = eng_value_index(s, n->outputs[j]);
            if (vi == SIZE_MAX || s->vals[vi].known)
                st = joule_fail(err, JOULE_ERR_INVALID, "%s: output '%s' is already defined",
                                node_desc(en, i, desc, sizeof desc),
                                n->outputs[j]->name ? n->outputs[j]->name : "?");
            else
                en->out[j] = &s->vals[(en->out_v[j] = vi)].view;
        }
        if (!st)
            st = infer_node(s, i, fed, &t, err);
        if (st)
            break;
        size_t f = s->node_fusion ? s->node_fusion[i] : 0;
        size_t cf = s->node_cfusion ? s->node_cfusion[i] : 0;
        if (!f && cf && s->cfusions[cf - 1].last != i)
            en->deferred = true; /* planned with the rest of its Conv chain */
        else if (!f && cf)
            st = conv_fuse_or_expand(s, i, &s->cfusions[cf - 1], fed, err);
        else if (!f)
            st = kernel_node(s, i, fed, NULL, err);
        else if (s->fusions[f - 1].pat.q != n)
            en->deferred = true; /* planned with the rest of its chain */
        else
            st = fuse_or_expand(s, i, &s->fusions[f - 1], fed, err);
    }
    if (!st)
        st = plan_memory(s, err);
done:
    free(t.in);
    free(t.out);
    free(t.outv);
    if (st) {
        bool need = s->need_data;
        eng_plan_clear(s);
        s->need_data = need;
        return st;
    }
    s->planned = true;
    return JOULE_OK;
}

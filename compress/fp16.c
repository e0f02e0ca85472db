/* compress/fp16.c: the float16 pass (joule/quantize.h). Decides for every node whether it
 * computes in float16 or stays float32 (block lists, shape-computing paths, unknown ops), gives
 * every float32 value its new type, patches the nodes whose attributes name a float type (Cast
 * `to`, Constant and ConstantOfShape values, `dtype` attributes), and inserts one Cast wherever a
 * value's new type differs from what a reader expects, so the result type-checks in ONNX
 * Runtime. The check at the end (jq_check_float_types) guards against the classic converter
 * bug of a leftover Cast(to=float) feeding float16 computation. */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/quant_internal.h"
#include "formats/ops/ops.h"
#include "joule/infer.h"

static const char *const default_block_ops[] = {
    "Range", "TopK", "NonMaxSuppression", "RoiAlign", "MaxRoiPool", "CumSum",
    "ReduceProd", "ReduceLogSumExp", "ReduceSumSquare", "RandomNormal", "RandomUniform",
    "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli", "QuantizeLinear",
    "DequantizeLinear", "DynamicQuantizeLinear", "STFT", "DFT", NULL,
};

const char *const *joule_fp16_default_block_ops(void)
{
    return default_block_ops;
}

void joule_fp16_defaults(joule_fp16_options *o)
{
    memset(o, 0, sizeof *o);
    o->keep_io_types = true;
}

/* Input slots that are float32 by the operator's definition whatever T is. */
static bool f32_slot(const joule_node *n, int k)
{
    if (joule_node_is_op(n, "Resize"))
        return k == 1 || k == 2;
    if (joule_node_is_op(n, "Upsample"))
        return k == 1;
    return false;
}

/* Output slots that are float32 (LayerNormalization's Mean and InvStdDev). */
static bool f32_out_slot(const joule_node *n, int k)
{
    return joule_node_is_op(n, "LayerNormalization") && k > 0;
}

/* Input slots whose float type may legitimately differ from the node's other float inputs. */
static bool free_slot(const joule_node *n, int k)
{
    if (f32_slot(n, k) || joule_node_is_op(n, "Cast") || joule_node_is_op(n, "CastLike"))
        return true;
    if (joule_node_is_op(n, "Pow") || joule_node_is_op(n, "Dropout") ||
        joule_node_is_op(n, "GridSample"))
        return k == 1;
    if (joule_node_is_op(n, "BatchNormalization"))
        return k >= 1;
    return false;
}

/* value pointer -> index in g->values, by open addressing */
typedef struct vindex {
    size_t cap;
    const joule_value **keys;
    size_t *idx;
} vindex;

static size_t vhash(const void *p, size_t cap)
{
    uintptr_t x = (uintptr_t)p;
    x ^= x >> 17;
    x *= 0x9E3779B97F4A7C15ull;
    return (size_t)(x >> 7) & (cap - 1);
}

static bool vindex_build(vindex *ix, const joule_graph *g)
{
    size_t cap = 16;
    while (cap < g->n_values * 2 + 2)
        cap *= 2;
    ix->cap = cap;
    ix->keys = calloc(cap, sizeof *ix->keys);
    ix->idx = calloc(cap, sizeof *ix->idx);
    if (!ix->keys || !ix->idx)
        return false;
    for (size_t i = 0; i < g->n_values; i++) {
        size_t h = vhash(g->values[i], cap);
        while (ix->keys[h])
            h = (h + 1) & (cap - 1);
        ix->keys[h] = g->values[i];
        ix->idx[h] = i;
    }
    return true;
}

static size_t vindex_get(const vindex *ix, const joule_value *v)
{
    if (!v)
        return SIZE_MAX;
    for (size_t h = vhash(v, ix->cap); ix->keys[h]; h = (h + 1) & (ix->cap - 1))
        if (ix->keys[h] == v)
            return ix->idx[h];
    return SIZE_MAX;
}

static void vindex_free(vindex *ix)
{
    free(ix->keys);
    free(ix->idx);
}

typedef struct fp_ctx {
    joule_model *m;
    joule_graph *g;
    const joule_fp16_options *o;
    joule_report *r;
    joule_error *err;
    vindex ix;
    size_t nv, nn;
    joule_node **nodes;  /* the original nodes, in order */
    joule_dtype *orig;   /* per value: dtype before the pass */
    joule_dtype *now;    /* per value: dtype after it (for produced values and inputs) */
    unsigned char *meta; /* per value: 1 data, 2 shape-derived */
    bool *convert;       /* per original node */
    const char **why;    /* per original node: why it stays float32 */
    joule_value **cast16, **cast32; /* per value: its Cast to f16 / f32, once made */
    size_t n_casts, n_converted, n_kept;
    uint64_t over, under;
} fp_ctx;

static bool is_f32(const fp_ctx *c, const joule_value *v)
{
    size_t i = vindex_get(&c->ix, v);
    return i != SIZE_MAX && c->orig[i] == JOULE_F32;
}

static bool in_list(const char *const *list, size_t n, const char *s, bool glob)
{
    for (size_t i = 0; list && (n ? i < n : list[i] != NULL); i++) {
        if (!list[i] || !s)
            continue;
        if (glob ? fnmatch(list[i], s, 0) == 0 : strcmp(list[i], s) == 0)
            return true;
    }
    return false;
}

/* A Constant node's value attribute as a float32 tensor it holds, or whether it has floats. */
static bool constant_is_f32(const joule_node *n)
{
    const joule_attr *a = joule_node_attr(n, "value");
    if (a && a->type == JOULE_ATTR_TENSOR && a->t)
        return a->t->dtype == JOULE_F32;
    return joule_node_attr(n, "value_float") || joule_node_attr(n, "value_floats");
}

static bool constant_of_shape_is_f32(const joule_node *n)
{
    const joule_attr *a = joule_node_attr(n, "value");
    if (a && a->type == JOULE_ATTR_TENSOR && a->t)
        return a->t->dtype == JOULE_F32;
    return true; /* default value: float32 zero */
}

static bool touches_f32(const fp_ctx *c, const joule_node *n)
{
    if (joule_node_is_op(n, "Constant"))
        return constant_is_f32(n);
    if (joule_node_is_op(n, "ConstantOfShape"))
        return constant_of_shape_is_f32(n);
    for (int k = 0; k < n->n_inputs; k++)
        if (is_f32(c, n->inputs[k]))
            return true;
    for (int k = 0; k < n->n_outputs; k++)
        if (is_f32(c, n->outputs[k]))
            return true;
    if (joule_node_is_op(n, "Cast") && joule_attr_int(n, "to", 0) == JOULE_F32)
        return true;
    return false;
}

/* Data flow classes: 1 = depends on a fed input, 2 = computed from shapes (Shape, Size) and
 * constants only, 0 = constant. */
static void classify_values(fp_ctx *c)
{
    joule_graph *g = c->g;
    for (size_t i = 0; i < g->n_inputs; i++) {
        size_t k = vindex_get(&c->ix, g->inputs[i]);
        if (k != SIZE_MAX && !g->inputs[i]->data)
            c->meta[k] = 1;
    }
    for (size_t i = 0; i < c->nn; i++) {
        const joule_node *n = c->nodes[i];
        unsigned char cls = 0;
        if (joule_node_is_op(n, "Shape") || joule_node_is_op(n, "Size")) {
            cls = 2;
        } else {
            for (int k = 0; k < n->n_inputs; k++) {
                size_t v = vindex_get(&c->ix, n->inputs[k]);
                if (v == SIZE_MAX)
                    continue;
                if (c->meta[v] == 1)
                    cls = 1;
                else if (c->meta[v] == 2 && cls == 0)
                    cls = 2;
            }
        }
        for (int k = 0; k < n->n_outputs; k++) {
            size_t v = vindex_get(&c->ix, n->outputs[k]);
            if (v != SIZE_MAX)
                c->meta[v] = cls;
        }
    }
}

/* Whether node n stays float32, and why (for the report). */
static const char *blocked(const fp_ctx *c, const joule_node *n)
{
    if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx") != 0)
        return "not an ai.onnx operator";
    if (in_list(c->o->block_nodes, c->o->n_block_nodes, n->name, true))
        return "node block list";
    if (in_list(c->o->block_ops, c->o->n_block_ops, n->op_type, false))
        return "op block list";
    if (!c->o->no_default_block_ops && in_list(default_block_ops, 0, n->op_type, false))
        return "default op block list";
    if (!joule_op_find(n->domain, n->op_type))
        return "op unknown to joule";
    if (joule_node_is_op(n, "Constant") || joule_node_is_op(n, "ConstantOfShape"))
        return NULL;
    bool data = false, shape = false;
    for (int k = 0; k < n->n_inputs; k++) {
        size_t v = vindex_get(&c->ix, n->inputs[k]);
        if (v == SIZE_MAX)
            continue;
        data |= c->meta[v] == 1;
        shape |= c->meta[v] == 2;
    }
    if (shape && !data)
        return "computes shapes";
    return NULL;
}

/* The dtype reader slot (n, k) wants for a value that was float32. */
static joule_dtype want(const fp_ctx *c, const joule_node *n, long ni, int k)
{
    return (ni >= 0 && c->convert[ni] && !f32_slot(n, k)) ? JOULE_F16 : JOULE_F32;
}

/* Constant and ConstantOfShape follow their readers: float16 when any reader wants it. */
static void decide_constants(fp_ctx *c)
{
    joule_graph *g = c->g;
    for (size_t i = 0; i < c->nn; i++) {
        joule_node *n = c->nodes[i];
        if (!c->convert[i] ||
            !(joule_node_is_op(n, "Constant") || joule_node_is_op(n, "ConstantOfShape")))
            continue;
        joule_value *out = n->n_outputs > 0 ? n->outputs[0] : NULL;
        bool any16 = false;
        for (size_t j = i + 1; out && j < c->nn && !any16; j++) {
            const joule_node *rd = c->nodes[j];
            for (int k = 0; k < rd->n_inputs; k++)
                if (rd->inputs[k] == out && want(c, rd, (long)j, k) == JOULE_F16)
                    any16 = true;
        }
        if (out && (out->flags & JOULE_VALUE_OUTPUT) && !c->o->keep_io_types)
            any16 = true;
        (void)g;
        if (!any16) {
            c->convert[i] = false;
            c->why[i] = "read only by float32 nodes";
        }
    }
}

static joule_status to_f16_tensor(fp_ctx *c, const joule_tensor *t, joule_tensor **out,
                                  uint64_t *over, uint64_t *under)
{
    joule_status st = joule_tensor_new(JOULE_F16, t->rank, t->dims, out, c->err);
    if (st)
        return st;
    uint16_t *d = joule_tensor_mutable_data(*out);
    if (!d && t->count) {
        joule_tensor_free(*out);
        *out = NULL;
        return joule_fail(c->err, JOULE_ERR_NOMEM, "fp16: out of memory");
    }
    const float *s = t->data;
    for (size_t i = 0; i < t->count; i++)
        d[i] = jq_f32_to_f16_clamped(s[i], over, under);
    return JOULE_OK;
}

/* Rewrites the attributes of a node that now computes in float16. */
static joule_status patch_attrs(fp_ctx *c, joule_node *n)
{
    joule_graph *g = c->g;
    joule_status st = JOULE_OK;
    char lb[160];
    if (joule_node_is_op(n, "Cast")) {
        if (joule_attr_int(n, "to", 0) == JOULE_F32)
            st = joule_node_set_attr_int(g, n, "to", JOULE_F16, c->err);
        return st;
    }
    if (joule_node_is_op(n, "Constant") || joule_node_is_op(n, "ConstantOfShape")) {
        const joule_attr *a = joule_node_attr(n, "value");
        joule_tensor *t = NULL;
        uint64_t over = 0, under = 0;
        if (a && a->type == JOULE_ATTR_TENSOR && a->t) {
            if (a->t->dtype != JOULE_F32)
                return JOULE_OK;
            if ((st = to_f16_tensor(c, a->t, &t, &over, &under)))
                return st;
        } else if ((a = joule_node_attr(n, "value_float")) && a->type == JOULE_ATTR_FLOAT) {
            double v = a->f;
            if ((st = jq_tensor_from(JOULE_F16, &v, 0, false, &t, c->err)))
                return st;
            joule_node_remove_attr(n, "value_float");
        } else if ((a = joule_node_attr(n, "value_floats")) && a->type == JOULE_ATTR_FLOATS) {
            int64_t d = (int64_t)a->count;
            if ((st = joule_tensor_new(JOULE_F16, 1, &d, &t, c->err)))
                return st;
            uint16_t *p = joule_tensor_mutable_data(t);
            if (!p && a->count) {
                joule_tensor_free(t);
                return joule_fail(c->err, JOULE_ERR_NOMEM, "fp16: out of memory");
            }
            for (size_t i = 0; i < a->count; i++)
                p[i] = jq_f32_to_f16_clamped(a->floats[i], &over, &under);
            joule_node_remove_attr(n, "value_floats");
        } else if (joule_node_is_op(n, "ConstantOfShape")) {
            int64_t one = 1;
            if ((st = joule_tensor_new(JOULE_F16, 1, &one, &t, c->err)))
                return st;
            if (!joule_tensor_mutable_data(t)) {
                joule_tensor_free(t);
                return joule_fail(c->err, JOULE_ERR_NOMEM, "fp16: out of memory");
            }
        } else {
            return JOULE_OK;
        }
        if ((st = joule_node_set_attr_tensor(g, n, "value", t, c->err)))
            return st;
        c->over += over;
        c->under += under;
        if (over || under)
            st = cz_note(c->r, "fp16", g, n, NULL, c->err,
                         "value: %llu entries clamped to +-65504, %llu tiny ones to +-2^-24",
                         (unsigned long long)over, (unsigned long long)under);
        (void)lb;
        return st;
    }
    const joule_attr *d = joule_node_attr(n, "dtype");
    if (d && d->type == JOULE_ATTR_INT && d->i == JOULE_F32)
        st = joule_node_set_attr_int(g, n, "dtype", JOULE_F16, c->err);
    return st;
}

/* The Cast of v to dtype, made once and placed before `reader` (the first reader that needs
 * it, so every later reader comes after it). */
static joule_status cast_of(fp_ctx *c, joule_value *v, size_t vi, joule_dtype to,
                            const joule_node *reader, joule_value **out)
{
    joule_value **slot = to == JOULE_F16 ? &c->cast16[vi] : &c->cast32[vi];
    if (*slot) {
        *out = *slot;
        return JOULE_OK;
    }
    char hint[600], name[640];
    snprintf(hint, sizeof hint, "%s_%s", v->name, to == JOULE_F16 ? "fp16" : "fp32");
    snprintf(name, sizeof name, "%s_cast", hint);
    joule_value *res = NULL;
    joule_node *n;
    const char *hints[1] = {hint};
    joule_status st = jq_add_node(c->g, "Cast", name, 1, &v, 1, &res, hints, reader, NULL, &n,
                                  c->err);
    if (!st)
        st = joule_node_set_attr_int(c->g, n, "to", to, c->err);
    if (st)
        return st;
    res->dtype = to;
    jq_copy_shape(res, v);
    c->n_casts++;
    *slot = res;
    *out = res;
    return JOULE_OK;
}

/* Converts initializer v for its float16 readers: in place when no reader needs float32, else
 * as a float16 copy those readers switch to. */
static joule_status convert_initializer(fp_ctx *c, joule_value *v, bool need32,
                                        joule_value **as16)
{
    joule_tensor *t = NULL;
    uint64_t over = 0, under = 0;
    const joule_tensor *src = v->data;
    const size_t before = src->nbytes, count = src->count; /* src goes when v gets t */
    joule_status st = to_f16_tensor(c, src, &t, &over, &under);
    if (st)
        return st;
    joule_value *dst = v;
    if (need32) {
        char hint[600];
        snprintf(hint, sizeof hint, "%s_fp16", v->name);
        if ((st = jq_add_init(c->g, hint, t, &dst, c->err)))
            return st;
    } else if ((st = joule_graph_set_initializer(c->g, v, t, c->err))) {
        joule_tensor_free(t);
        return st;
    }
    *as16 = dst;
    c->over += over;
    c->under += under;
    char note[200] = "";
    if (over || under)
        snprintf(note, sizeof note, "%llu entries clamped to +-65504, %llu tiny ones to +-2^-24",
                 (unsigned long long)over, (unsigned long long)under);
    joule_layer_change row = {
        .pass = "fp16",
        .tensor = dst->name,
        .dtype_before = JOULE_F32,
        .dtype_after = JOULE_F16,
        .params_before = count,
        .params_after = count,
        .bytes_before = before,
        .bytes_after = dst->data->nbytes,
        .note = note[0] ? note : (need32 ? "float16 copy; float32 kept for float32 readers" : NULL),
    };
    return jq_row(c->r, &row, c->err);
}

static joule_status rewrite(fp_ctx *c)
{
    joule_graph *g = c->g;
    joule_status st;
    /* attributes and output types of converted nodes */
    for (size_t i = 0; i < c->nn; i++) {
        joule_node *n = c->nodes[i];
        if (!c->convert[i])
            continue;
        if ((st = patch_attrs(c, n)))
            return st;
        for (int k = 0; k < n->n_outputs; k++) {
            size_t v = vindex_get(&c->ix, n->outputs[k]);
            if (v == SIZE_MAX || f32_out_slot(n, k))
                continue;
            bool constant = joule_node_is_op(n, "Constant") ||
                            joule_node_is_op(n, "ConstantOfShape");
            bool to_f16 = joule_node_is_op(n, "Cast") && joule_attr_int(n, "to", 0) == JOULE_F16;
            bool becomes = c->orig[v] == JOULE_F32 || to_f16 || (constant && c->orig[v] == JOULE_F32);
            if (becomes) {
                c->now[v] = JOULE_F16;
                n->outputs[k]->dtype = JOULE_F16;
            }
        }
    }
    /* fed graph inputs */
    for (size_t i = 0; i < g->n_inputs; i++) {
        joule_value *v = g->inputs[i];
        size_t vi = vindex_get(&c->ix, v);
        if (vi == SIZE_MAX || c->orig[vi] != JOULE_F32 || c->o->keep_io_types)
            continue;
        c->now[vi] = JOULE_F16;
        v->dtype = JOULE_F16;
        if (v->data) { /* an initializer that callers may override: convert its default */
            joule_value *as16;
            if ((st = convert_initializer(c, v, false, &as16)))
                return st;
        }
    }
    /* initializers: decide by their readers */
    size_t n_vals = c->nv;
    for (size_t vi = 0; vi < n_vals; vi++) {
        joule_value *v = g->values[vi];
        if (!v->data || (v->flags & JOULE_VALUE_INPUT) || c->orig[vi] != JOULE_F32)
            continue;
        bool need16 = false, need32 = (v->flags & JOULE_VALUE_OUTPUT) && c->o->keep_io_types;
        for (size_t i = 0; i < c->nn; i++)
            for (int k = 0; k < c->nodes[i]->n_inputs; k++)
                if (c->nodes[i]->inputs[k] == v) {
                    if (want(c, c->nodes[i], (long)i, k) == JOULE_F16)
                        need16 = true;
                    else
                        need32 = true;
                }
        if ((v->flags & JOULE_VALUE_OUTPUT) && !c->o->keep_io_types)
            need16 = true;
        if (!need16)
            continue;
        joule_value *as16;
        if ((st = convert_initializer(c, v, need32, &as16)))
            return st;
        if (as16 == v) {
            c->now[vi] = JOULE_F16;
            continue;
        }
        for (size_t i = 0; i < c->nn; i++)
            for (int k = 0; k < c->nodes[i]->n_inputs; k++)
                if (c->nodes[i]->inputs[k] == v && want(c, c->nodes[i], (long)i, k) == JOULE_F16)
                    c->nodes[i]->inputs[k] = as16;
        c->cast16[vi] = as16; /* a graph output of the value reads its float16 copy */
    }
    /* readers whose expected type differs from the value's new one */
    for (size_t i = 0; i < c->nn; i++) {
        joule_node *n = c->nodes[i];
        for (int k = 0; k < n->n_inputs; k++) {
            joule_value *v = n->inputs[k];
            size_t vi = vindex_get(&c->ix, v);
            if (vi == SIZE_MAX || c->orig[vi] != JOULE_F32)
                continue;
            joule_dtype w = want(c, n, (long)i, k), have = c->now[vi];
            if (w == have)
                continue;
            joule_value *cv;
            if ((st = cast_of(c, v, vi, w, n, &cv)))
                return st;
            n->inputs[k] = cv;
        }
    }
    /* graph outputs keep float32 (under their names) with keep_io_types */
    for (size_t i = 0; i < g->n_outputs; i++) {
        joule_value *v = g->outputs[i];
        size_t vi = vindex_get(&c->ix, v);
        if (vi == SIZE_MAX || c->orig[vi] != JOULE_F32)
            continue;
        if (!c->o->keep_io_types) {
            if (c->now[vi] != JOULE_F16 && !(v->flags & JOULE_VALUE_INPUT)) {
                joule_value *cv;
                if ((st = cast_of(c, v, vi, JOULE_F16, NULL, &cv)) ||
                    (st = jq_take_name(g, v, cv, "fp32", c->err)))
                    return st;
                g->outputs[i] = cv;
                cv->flags |= JOULE_VALUE_OUTPUT;
                v->flags &= ~(unsigned)JOULE_VALUE_OUTPUT;
            }
            continue;
        }
        if (c->now[vi] == JOULE_F32)
            continue;
        joule_value *cv;
        if ((st = cast_of(c, v, vi, JOULE_F32, NULL, &cv)) ||
            (st = jq_take_name(g, v, cv, "fp16", c->err)))
            return st;
        g->outputs[i] = cv;
        cv->flags |= JOULE_VALUE_OUTPUT;
        v->flags &= ~(unsigned)JOULE_VALUE_OUTPUT;
    }
    return JOULE_OK;
}

joule_status joule_quantize_fp16(joule_model *m, const joule_fp16_options *opt, joule_report *r,
                                 joule_error *err)
{
    joule_fp16_options dflt;
    if (!opt) {
        joule_fp16_defaults(&dflt);
        opt = &dflt;
    }
    if (!m || !m->graph)
        return joule_fail(err, JOULE_ERR_INVALID, "fp16: no model");
    joule_graph *g = m->graph;
    for (size_t i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i]->n_attrs; k++)
            if (g->nodes[i]->attrs[k].type == JOULE_ATTR_GRAPH ||
                g->nodes[i]->attrs[k].type == JOULE_ATTR_GRAPHS) {
                char lb[160];
                return joule_fail(err, JOULE_ERR_UNSUPPORTED,
                                  "fp16: node '%s' (%s) has a subgraph; models with If/Loop/Scan "
                                  "are not converted",
                                  cz_label(g, g->nodes[i], lb, sizeof lb), g->nodes[i]->op_type);
            }
    joule_status st = joule_infer_shapes(m, NULL, 0, err);
    if (!st)
        st = cz_warn_unused(r, "fp16", g, opt->block_nodes, opt->n_block_nodes,
                            "block node pattern", false, false, err);
    for (size_t i = 0; i < opt->n_block_ops && !st && r; i++) {
        bool present = false;
        for (size_t k = 0; k < g->n_nodes && !present; k++)
            present = opt->block_ops[i] && strcmp(opt->block_ops[i], g->nodes[k]->op_type) == 0;
        if (!present && opt->block_ops[i])
            st = cz_warn(r, "fp16", err, "block op '%s' is not an op of this model",
                         opt->block_ops[i]);
    }
    if (st)
        return st;

    fp_ctx c = {.m = m, .g = g, .o = opt, .r = r, .err = err};
    c.nv = g->n_values;
    c.nn = g->n_nodes;
    size_t nv = c.nv ? c.nv : 1, nn = c.nn ? c.nn : 1;
    c.nodes = malloc(nn * sizeof *c.nodes);
    c.orig = calloc(nv, sizeof *c.orig);
    c.now = calloc(nv, sizeof *c.now);
    c.meta = calloc(nv, 1);
    c.convert = calloc(nn, sizeof *c.convert);
    c.why = calloc(nn, sizeof *c.why);
    c.cast16 = calloc(nv, sizeof *c.cast16);
    c.cast32 = calloc(nv, sizeof *c.cast32);
    if (!c.nodes || !c.orig || !c.now || !c.meta || !c.convert || !c.why || !c.cast16 ||
        !c.cast32 || !vindex_build(&c.ix, g)) {
        st = joule_fail(err, JOULE_ERR_NOMEM, "fp16: out of memory");
        goto done;
    }
    if (c.nn)
        memcpy(c.nodes, g->nodes, c.nn * sizeof *c.nodes);
    for (size_t i = 0; i < c.nv; i++) {
        const joule_value *v = g->values[i];
        c.orig[i] = v->data ? v->data->dtype : v->dtype;
        c.now[i] = c.orig[i];
    }
    classify_values(&c);
    for (size_t i = 0; i < c.nn; i++) {
        if (!touches_f32(&c, c.nodes[i]))
            continue;
        c.why[i] = blocked(&c, c.nodes[i]);
        c.convert[i] = c.why[i] == NULL;
    }
    decide_constants(&c);
    if ((st = rewrite(&c)))
        goto done;
    for (size_t i = 0; i < c.nn; i++) {
        if (c.convert[i]) {
            c.n_converted++;
        } else if (c.why[i]) {
            c.n_kept++;
            if ((st = cz_note(r, "fp16", g, c.nodes[i], NULL, err, "left in float32: %s",
                              c.why[i])))
                goto done;
        }
    }
    joule_graph_prune_values(g);
    if ((st = joule_graph_validate(g, err)) || (st = joule_infer_shapes(m, NULL, 0, err)) ||
        (st = jq_check_float_types(m, err)))
        goto done;
    st = cz_note(r, "fp16", g, NULL, NULL, err,
                 "%zu nodes compute in float16, %zu stay float32, %zu Casts added; %llu weights "
                 "clamped to +-65504, %llu to +-2^-24; inputs/outputs %s",
                 c.n_converted, c.n_kept, c.n_casts, (unsigned long long)c.over,
                 (unsigned long long)c.under, opt->keep_io_types ? "kept float32" : "float16");
done:
    vindex_free(&c.ix);
    free(c.nodes);
    free(c.orig);
    free(c.now);
    free(c.meta);
    free(c.convert);
    free(c.why);
    free(c.cast16);
    free(c.cast32);
    return st;
}

/* ---- the type check ---- */

joule_status jq_check_float_types(const joule_model *m, joule_error *err)
{
    const joule_graph *g = m->graph;
    char lb[160];
    for (size_t i = 0; i < g->n_nodes; i++) {
        const joule_node *n = g->nodes[i];
        if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx") != 0)
            continue;
        joule_dtype seen = JOULE_UNDEFINED;
        int seen_k = -1;
        for (int k = 0; k < n->n_inputs; k++) {
            const joule_value *v = n->inputs[k];
            if (!v || free_slot(n, k))
                continue;
            joule_dtype t = v->data ? v->data->dtype : v->dtype;
            if (t != JOULE_F32 && t != JOULE_F16 && t != JOULE_BF16 && t != JOULE_F64)
                continue;
            if (f32_slot(n, k))
                continue;
            if (seen == JOULE_UNDEFINED) {
                seen = t;
                seen_k = k;
            } else if (t != seen) {
                return joule_fail(err, JOULE_ERR_INVALID,
                                  "node '%s' (%s): input %d ('%s') is %s but input %d ('%s') is %s",
                                  cz_label(g, n, lb, sizeof lb), n->op_type, seen_k,
                                  n->inputs[seen_k]->name, joule_dtype_name(seen), k, v->name,
                                  joule_dtype_name(t));
            }
        }
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] && f32_slot(n, k)) {
                const joule_value *v = n->inputs[k];
                joule_dtype t = v->data ? v->data->dtype : v->dtype;
                if (t == JOULE_F16 && !(joule_node_is_op(n, "Resize") && k == 1))
                    return joule_fail(err, JOULE_ERR_INVALID,
                                      "node '%s' (%s): input %d ('%s') must be float32, is %s",
                                      cz_label(g, n, lb, sizeof lb), n->op_type, k, v->name,
                                      joule_dtype_name(t));
            }
        if (joule_node_is_op(n, "Cast") && n->n_outputs > 0 && n->outputs[0]) {
            int64_t to = joule_attr_int(n, "to", 0);
            joule_dtype t = n->outputs[0]->dtype;
            if (t != JOULE_UNDEFINED && to != (int64_t)t)
                return joule_fail(err, JOULE_ERR_INVALID,
                                  "node '%s' (Cast): to=%lld but its output '%s' is %s",
                                  cz_label(g, n, lb, sizeof lb), (long long)to,
                                  n->outputs[0]->name, joule_dtype_name(t));
        }
    }
    return JOULE_OK;
}

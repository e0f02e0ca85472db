/* eval/fuse.c: float Conv fusions made once at session creation. A Conv whose output only a
 * BatchNormalization (inference mode, constant parameters) reads gets the BN folded into a
 * private copy of its weights and bias: W'[o] = W[o] * a[o], B'[o] = B[o] * a[o] + b[o] with
 * a = scale / sqrt(var + eps), b = bias - mean * a (computed in double, rounded once to float).
 * A following Relu, LeakyRelu, Clip or HardSwish that is the only reader runs in place on the
 * Conv's output right after the Conv's kernel, with its own elementwise kernel (plan.c), so the
 * activation's numbers are the unfused ones. The model is never modified; values that are graph
 * outputs or that anyone else reads keep their nodes. plan.c decides per plan whether the fused
 * chain runs (float X) or expands. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/engine_internal.h"

/* A float32 initializer the caller cannot feed: rank -1 and count 0 accept any. */
static const joule_tensor *const_f32(const joule_session *s, const joule_value *v, int rank,
                                     size_t count)
{
    if (!v || !v->data)
        return NULL;
    size_t vi = eng_value_index(s, v);
    if (vi == SIZE_MAX)
        return NULL;
    for (size_t i = 0; i < s->n_inputs; i++)
        if (s->input_idx[i] == vi)
            return NULL;
    const joule_tensor *t = v->data;
    if (t->dtype != JOULE_F32 || (t->count && !t->data) ||
        t->nbytes != t->count * sizeof(float) || (rank >= 0 && t->rank != rank) ||
        (count && t->count != count))
        return NULL;
    return t;
}

static bool has_subgraph(const joule_graph *g)
{
    for (size_t i = 0; i < g->n_nodes; i++)
        for (int a = 0; a < g->nodes[i]->n_attrs; a++)
            if (g->nodes[i]->attrs[a].type == JOULE_ATTR_GRAPH ||
                g->nodes[i]->attrs[a].type == JOULE_ATTR_GRAPHS)
                return true;
    return false;
}

/* The node that alone reads v (once, as input 0), when v is no graph output; else SIZE_MAX. */
static size_t sole_reader(const joule_session *s, const unsigned *readers, const size_t *reader,
                          const joule_value *v)
{
    size_t vi = eng_value_index(s, v);
    if (vi == SIZE_MAX || readers[vi] != 1)
        return SIZE_MAX;
    const joule_node *n = s->g->nodes[reader[vi]];
    return n->n_inputs >= 1 && n->inputs[0] == v ? reader[vi] : SIZE_MAX;
}

/* Whether n is an activation the chain may take: Relu, LeakyRelu, HardSwish, or Clip whose bounds
 * are attributes (opset < 11) or constant float scalars. */
static bool fusable_act(const joule_session *s, const joule_node *n)
{
    if (n->n_outputs != 1 || !n->outputs[0])
        return false;
    if ((joule_node_is_op(n, "Relu") || joule_node_is_op(n, "HardSwish") ||
         joule_node_is_op(n, "LeakyRelu")) &&
        n->n_inputs == 1)
        return true;
    if (!joule_node_is_op(n, "Clip") || n->n_inputs < 1 || n->n_inputs > 3)
        return false;
    for (int k = 1; k < n->n_inputs; k++)
        if (n->inputs[k] && !const_f32(s, n->inputs[k], -1, 1))
            return false;
    return true;
}

/* Folds BN node bn into conv's weights w ([C_out, ...]) and bias b (may be NULL). */
static joule_status fold_bn(const joule_session *s, eng_cfusion *f, const joule_tensor *w,
                            const joule_tensor *b, const joule_node *bn, joule_error *err)
{
    const size_t co = (size_t)w->dims[0];
    const joule_tensor *sc = const_f32(s, bn->inputs[1], 1, co);
    const joule_tensor *bi = const_f32(s, bn->inputs[2], 1, co);
    const joule_tensor *mu = const_f32(s, bn->inputs[3], 1, co);
    const joule_tensor *va = const_f32(s, bn->inputs[4], 1, co);
    if (!sc || !bi || !mu || !va)
        return JOULE_OK;
    joule_status st = joule_tensor_new(JOULE_F32, w->rank, w->dims, &f->w, err);
    if (!st)
        st = joule_tensor_new(JOULE_F32, 1, w->dims, &f->b, err);
    if (st) {
        joule_tensor_free(f->w);
        joule_tensor_free(f->b);
        f->w = f->b = NULL;
        return st;
    }
    const double eps = joule_attr_float(bn, "epsilon", 1e-5f);
    const size_t per = co ? w->count / co : 0;
    const float *ws = w->data;
    float *wd = f->w->owned, *bd = f->b->owned;
    for (size_t c = 0; c < co; c++) {
        double a = (double)((const float *)sc->data)[c] /
                   sqrt((double)((const float *)va->data)[c] + eps);
        double off = (double)((const float *)bi->data)[c] -
                     (double)((const float *)mu->data)[c] * a;
        for (size_t k = 0; k < per; k++)
            wd[c * per + k] = (float)((double)ws[c * per + k] * a);
        double b0 = b ? (double)((const float *)b->data)[c] : 0.0;
        bd[c] = (float)(b0 * a + off);
    }
    return JOULE_OK;
}

static void set_tensor_view(joule_view *vw, const joule_tensor *t)
{
    memset(vw, 0, sizeof *vw);
    vw->dtype = t->dtype;
    vw->rank = t->rank;
    memcpy(vw->dims, t->dims, (size_t)t->rank * sizeof *t->dims);
    vw->count = t->count;
    vw->data = (void *)t->data;
}

joule_status eng_find_conv_fusions(joule_session *s, joule_error *err)
{
    const joule_graph *g = s->g;
    size_t n_conv = 0;
    for (size_t i = 0; i < g->n_nodes; i++)
        n_conv += joule_node_is_op(g->nodes[i], "Conv");
    if (!n_conv || has_subgraph(g))
        return JOULE_OK;
    s->node_cfusion = calloc(g->n_nodes, sizeof *s->node_cfusion);
    s->cfusions = calloc(n_conv, sizeof *s->cfusions);
    unsigned *readers = calloc(s->n_values ? s->n_values : 1, sizeof *readers);
    size_t *reader = calloc(s->n_values ? s->n_values : 1, sizeof *reader);
    joule_status st = JOULE_OK;
    if (!s->node_cfusion || !s->cfusions || !readers || !reader) {
        st = joule_fail(err, JOULE_ERR_NOMEM, "session: out of memory");
        goto done;
    }
    for (size_t i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i]->n_inputs; k++) {
            size_t vi = eng_value_index(s, g->nodes[i]->inputs[k]);
            if (vi != SIZE_MAX) {
                readers[vi]++;
                reader[vi] = i;
            }
        }
    for (size_t o = 0; o < g->n_outputs; o++) {
        size_t vi = eng_value_index(s, g->outputs[o]);
        if (vi != SIZE_MAX)
            readers[vi] += 1u << 16; /* a graph output is never inner */
    }
    for (size_t i = 0; i < g->n_nodes && !st; i++) {
        const joule_node *n = g->nodes[i];
        if (!joule_node_is_op(n, "Conv") || (s->node_fusion && s->node_fusion[i]) ||
            n->n_outputs != 1 || !n->outputs[0] || n->n_inputs < 2 || n->n_inputs > 3)
            continue;
        const joule_tensor *w = const_f32(s, n->inputs[1], -1, 0);
        if (!w || w->rank < 3 || w->dims[0] <= 0)
            continue;
        const joule_tensor *b = NULL;
        if (n->n_inputs == 3 && n->inputs[2] &&
            !(b = const_f32(s, n->inputs[2], 1, (size_t)w->dims[0])))
            continue;
        eng_cfusion *f = &s->cfusions[s->n_cfusions];
        memset(f, 0, sizeof *f);
        f->conv = i;
        f->bn = f->act = SIZE_MAX;
        const joule_value *y = n->outputs[0];
        size_t r = sole_reader(s, readers, reader, y);
        if (r != SIZE_MAX && r > i && !(s->node_fusion && s->node_fusion[r])) {
            const joule_node *bn = g->nodes[r];
            bool bn_ok = joule_node_is_op(bn, "BatchNormalization") && bn->n_inputs == 5 &&
                         bn->n_outputs >= 1 && bn->outputs[0] &&
                         joule_attr_int(bn, "training_mode", 0) == 0 &&
                         joule_attr_int(bn, "spatial", 1) == 1;
            for (int j = 1; j < bn->n_outputs && bn_ok; j++)
                bn_ok = bn->outputs[j] == NULL;
            if (bn_ok) {
                st = fold_bn(s, f, w, b, bn, err);
                if (st)
                    break;
                if (f->w) {
                    f->bn = r;
                    y = bn->outputs[0];
                    r = sole_reader(s, readers, reader, y);
                }
            }
        }
        if (r != SIZE_MAX && r > (f->bn != SIZE_MAX ? f->bn : i) &&
            !(s->node_fusion && s->node_fusion[r]) && fusable_act(s, g->nodes[r]))
            f->act = r;
        if (f->bn == SIZE_MAX && f->act == SIZE_MAX)
            continue;
        f->last = f->act != SIZE_MAX ? f->act : f->bn;
        if (f->w) {
            set_tensor_view(&f->wv, f->w);
            set_tensor_view(&f->bv, f->b);
        }
        size_t id = ++s->n_cfusions;
        s->node_cfusion[f->conv] = id;
        if (f->bn != SIZE_MAX)
            s->node_cfusion[f->bn] = id;
        if (f->act != SIZE_MAX)
            s->node_cfusion[f->act] = id;
    }
done:
    free(readers);
    free(reader);
    return st;
}

void eng_free_conv_fusions(joule_session *s)
{
    for (size_t i = 0; i < s->n_cfusions; i++) {
        joule_tensor_free(s->cfusions[i].w);
        joule_tensor_free(s->cfusions[i].b);
    }
    free(s->cfusions);
    free(s->node_cfusion);
    s->cfusions = NULL;
    s->node_cfusion = NULL;
    s->n_cfusions = 0;
}

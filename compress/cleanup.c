/* compress/cleanup.c: the cleanup pass (joule/compress.h). In order: Constant nodes become
 * initializers and all-constant nodes are evaluated once (cleanup_fold.c), Identity and
 * inference-mode Dropout go away with graph output names kept, BatchNormalization folds into the
 * Conv/Gemm before it (cleanup_fold.c), equal initializers become one, and dead nodes, unused
 * values and stale value_info entries are removed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/cleanup_internal.h"

#define PASS "cleanup"

void joule_cleanup_defaults(joule_cleanup_options *o)
{
    o->fold_batchnorm = true;
    o->fold_constants = true;
    o->remove_identity = true;
    o->dedup = true;
    o->remove_dead = true;
}

/* Removes v from the value_info list (it no longer exists or its declaration is stale). */
void cz_drop_value_info(joule_graph *g, joule_value *v)
{
    size_t w = 0;
    for (size_t i = 0; i < g->n_value_info; i++)
        if (g->value_info[i] != v)
            g->value_info[w++] = g->value_info[i];
    g->n_value_info = w;
    v->flags &= ~(unsigned)JOULE_VALUE_INFO;
}

/* Whether output k of n is read by a node or is a graph output. */
static bool output_used(const joule_graph *g, const joule_node *n, int k)
{
    return k < n->n_outputs && n->outputs[k] && cz_uses(g, n->outputs[k]) > 0;
}

/* Why Dropout n is not a plain pass-through at inference, or NULL. */
static const char *dropout_blocker(const joule_graph *g, const joule_node *n)
{
    for (int k = 1; k < n->n_outputs; k++)
        if (output_used(g, n, k))
            return "its mask output is read";
    if (n->n_inputs > 2 && n->inputs[2]) {
        const joule_tensor *t = cz_const(g, n->inputs[2]);
        if (!t || t->dtype != JOULE_BOOL || t->count != 1)
            return "training_mode is not a constant";
        if (((const uint8_t *)t->data)[0])
            return "training_mode is true";
    }
    if (joule_attr_int(n, "is_test", 1) == 0)
        return "is_test is 0 (training)";
    return NULL;
}

/* Removes pass-through node n (output 0 = input 0). A graph output keeps its name: the producer of
 * the input then writes that name directly. */
static joule_status bypass(joule_graph *g, joule_node *n, joule_report *r, bool *done,
                           joule_error *err)
{
    *done = false;
    joule_value *x = n->inputs[0], *y = n->outputs[0];
    const char *why = NULL;
    if (!x || !y)
        why = "an input or output is omitted";
    else if (x->dtype != JOULE_UNDEFINED && y->dtype != JOULE_UNDEFINED && x->dtype != y->dtype)
        why = "its input and output types differ";
    if (!why && !(y->flags & JOULE_VALUE_OUTPUT)) {
        joule_graph_replace_uses(g, y, x);
        if (y->flags & JOULE_VALUE_INFO)
            cz_drop_value_info(g, y);
        *done = true;
        joule_status st = cz_note(r, PASS, g, n, NULL, err, "removed: readers of '%s' read '%s'",
                                  y->name, x->name);
        return st ? st : joule_graph_remove_node(g, n, NULL, err);
    }
    joule_node *p = why ? NULL : joule_graph_producer(g, x);
    if (!why && (x->flags & (JOULE_VALUE_OUTPUT | JOULE_VALUE_INPUT)))
        why = "it copies a graph input or output to a graph output";
    else if (!why && !p)
        why = "it copies a constant to a graph output";
    if (why)
        return cz_note(r, PASS, g, n, NULL, err, "left alone: %s", why);
    for (int k = 0; k < p->n_outputs; k++)
        if (p->outputs[k] == x)
            p->outputs[k] = y;
    joule_graph_replace_uses(g, x, y);
    if (x->flags & JOULE_VALUE_INFO)
        cz_drop_value_info(g, x);
    *done = true;
    joule_status st = cz_note(r, PASS, g, n, NULL, err,
                              "removed: graph output '%s' is now written by the node before it",
                              y->name);
    return st ? st : joule_graph_remove_node(g, n, NULL, err);
}

static joule_status remove_identities(joule_graph *g, joule_report *r, joule_error *err)
{
    for (size_t i = 0; i < g->n_nodes;) {
        joule_node *n = g->nodes[i];
        bool done = false;
        joule_status st = JOULE_OK;
        bool dropout = joule_node_is_op(n, "Dropout");
        if ((dropout || joule_node_is_op(n, "Identity")) && n->n_inputs >= 1 && n->n_outputs >= 1) {
            const char *why = dropout ? dropout_blocker(g, n) : NULL;
            if (why)
                st = cz_note(r, PASS, g, n, NULL, err, "left alone: %s", why);
            else
                st = bypass(g, n, r, &done, err);
        }
        if (st)
            return st;
        if (!done)
            i++;
    }
    return JOULE_OK;
}

static uint64_t hash_tensor(const joule_tensor *t)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)t->dtype ^ ((uint64_t)t->rank << 8);
    for (int d = 0; d < t->rank; d++)
        h = (h ^ (uint64_t)t->dims[d]) * 1099511628211ull;
    const uint8_t *p = t->data;
    for (size_t i = 0; p && i < t->nbytes; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static bool same_tensor(const joule_tensor *a, const joule_tensor *b)
{
    if (a->dtype != b->dtype || a->rank != b->rank || a->nbytes != b->nbytes ||
        a->dtype == JOULE_STRING)
        return false;
    if (memcmp(a->dims, b->dims, (size_t)a->rank * sizeof *a->dims) != 0)
        return false;
    return a->nbytes == 0 || memcmp(a->data, b->data, a->nbytes) == 0;
}

static joule_status dedup(joule_graph *g, joule_report *r, joule_error *err)
{
    size_t n = g->n_initializers;
    if (n < 2)
        return JOULE_OK;
    uint64_t *h = malloc(n * sizeof *h);
    joule_value **vals = malloc(n * sizeof *vals);
    if (!h || !vals) {
        free(h);
        free(vals);
        return joule_fail(err, JOULE_ERR_NOMEM, "cleanup: out of memory");
    }
    memcpy(vals, g->initializers, n * sizeof *vals);
    for (size_t i = 0; i < n; i++)
        h[i] = vals[i]->data ? hash_tensor(vals[i]->data) : 0;
    joule_status st = JOULE_OK;
    for (size_t i = 0; i < n && !st; i++) {
        joule_value *v = vals[i];
        if (!v || !v->data || (v->flags & (JOULE_VALUE_INPUT | JOULE_VALUE_OUTPUT)))
            continue;
        for (size_t j = 0; j < i; j++) {
            joule_value *u = vals[j];
            if (!u || !u->data || h[j] != h[i] || (u->flags & JOULE_VALUE_INPUT) ||
                !same_tensor(u->data, v->data))
                continue;
            size_t uses = cz_uses(g, v);
            joule_graph_replace_uses(g, v, u);
            vals[i] = NULL;
            if (uses)
                st = cz_note(r, PASS, g, NULL, v->name, err,
                             "initializer is equal to '%s' (%zu bytes): its %zu reader(s) use that",
                             u->name, v->data->nbytes, uses);
            break;
        }
    }
    free(h);
    free(vals);
    return st;
}

static joule_status remove_dead(joule_graph *g, joule_report *r, joule_error *err)
{
    for (size_t i = g->n_nodes; i-- > 0;) {
        joule_node *n = g->nodes[i];
        bool used = false;
        for (int k = 0; k < n->n_outputs && !used; k++)
            used = output_used(g, n, k);
        if (used)
            continue;
        joule_status st = cz_note(r, PASS, g, n, NULL, err, "removed: nothing reads its outputs");
        if (!st)
            st = joule_graph_remove_node(g, n, NULL, err);
        if (st)
            return st;
    }
    return JOULE_OK;
}

/* Drops value_info entries of values no node produces or reads (left by the steps above). */
static void drop_stale_info(joule_graph *g)
{
    for (size_t i = 0; i < g->n_value_info;) {
        joule_value *v = g->value_info[i];
        bool live = (v->flags & (JOULE_VALUE_INPUT | JOULE_VALUE_OUTPUT | JOULE_VALUE_INITIALIZER)) ||
                    cz_uses(g, v) > 0 || joule_graph_producer(g, v);
        if (live)
            i++;
        else
            cz_drop_value_info(g, v);
    }
}

joule_status joule_cleanup(joule_model *m, const joule_cleanup_options *opt, joule_report *r,
                           joule_error *err)
{
    joule_cleanup_options def;
    if (!opt) {
        joule_cleanup_defaults(&def);
        opt = &def;
    }
    joule_graph *g = m->graph;
    if (cz_has_subgraphs(g))
        return cz_note(r, PASS, g, NULL, NULL, err,
                       "left the graph alone: it has subgraphs (If/Loop/Scan) whose bodies may "
                       "read outer values by name");
    joule_status st = JOULE_OK;
    if (opt->fold_constants)
        st = cz_fold_constants(m, r, err);
    if (!st && opt->remove_identity)
        st = remove_identities(g, r, err);
    if (!st && opt->fold_batchnorm)
        st = cz_fold_batchnorm(m, r, err);
    if (!st && opt->dedup)
        st = dedup(g, r, err);
    if (!st && opt->remove_dead)
        st = remove_dead(g, r, err);
    if (st)
        return st;
    drop_stale_info(g);
    if (opt->remove_dead || opt->dedup || opt->fold_constants || opt->fold_batchnorm)
        joule_graph_prune_values(g);
    return JOULE_OK;
}

/* tests/unit/test_compress_util.h: helpers the compress tests share (header-only, static): loading
 * fixtures, running a model in joule's engine on the 64 Fashion-MNIST test images, comparing
 * outputs, finding weights, and building tiny graphs by hand. */
#ifndef JOULE_TEST_COMPRESS_UTIL_H
#define JOULE_TEST_COMPRESS_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "joule/compress.h"
#include "joule/npy.h"
#include "joule/pipeline.h"
#include "joule/prune.h"
#include "test_graph_build.h"

static inline joule_model *tc_load(const char *rel)
{
    char path[4096];
    joule_error err = {{0}};
    joule_model *m = NULL;
    assert_joule_ok(joule_model_load(test_source_path(rel, path, sizeof path), &m, &err), &err);
    return m;
}

static inline joule_tensor *tc_images(void)
{
    char path[4096];
    joule_error err = {{0}};
    joule_tensor *x = NULL;
    assert_joule_ok(joule_npy_read(test_source_path("tests/data/fmnist_test64.npy", path,
                                                    sizeof path), &x, &err), &err);
    return x;
}

/* Whether the file at rel (from the source root) can be opened: tests of an optional fixture
 * skip without it. */
static inline bool tc_have(const char *rel)
{
    char path[4096];
    FILE *f = fopen(test_source_path(rel, path, sizeof path), "rb");
    if (f)
        fclose(f);
    return f != NULL;
}

/* Runs m on x (fed to its one non-constant input) and returns a copy of the graph output named
 * name (NULL: output 0). */
static inline joule_tensor *tc_run_output(const joule_model *m, const joule_tensor *x,
                                          const char *name)
{
    joule_error err = {{0}};
    const joule_value *in = NULL;
    for (size_t i = 0; i < m->graph->n_inputs; i++)
        if (!m->graph->inputs[i]->data)
            in = m->graph->inputs[i];
    assert_non_null(in);
    joule_input_shape shape = {.name = in->name, .shape = {.rank = x->rank}};
    for (int d = 0; d < x->rank; d++)
        shape.shape.dims[d].size = x->dims[d];
    joule_session_options opt = {.threads = 1, .input_shapes = &shape, .n_input_shapes = 1};
    joule_session *s = NULL;
    assert_joule_ok(joule_session_create(m, &opt, &s, &err), &err);
    const joule_tensor *feeds[1] = {x};
    assert_joule_ok(joule_session_run(s, feeds, 1, &err), &err);
    const joule_tensor *t = NULL;
    if (!name)
        t = joule_session_output(s, 0);
    else
        for (size_t k = 0; !t && k < joule_session_n_outputs(s); k++)
            if (!strcmp(joule_session_output_value(s, k)->name, name))
                t = joule_session_output(s, k);
    assert_non_null(t);
    joule_tensor *y = NULL;
    assert_joule_ok(joule_tensor_clone(t, &y, &err), &err);
    joule_session_free(s);
    return y;
}

/* Runs m on x and returns a copy of output 0. */
static inline joule_tensor *tc_run(const joule_model *m, const joule_tensor *x)
{
    return tc_run_output(m, x, NULL);
}

static inline double tc_max_diff(const joule_tensor *a, const joule_tensor *b)
{
    assert_int_equal(a->count, b->count);
    assert_int_equal(a->dtype, JOULE_F32);
    double d = 0;
    for (size_t i = 0; i < a->count; i++) {
        double e = fabs((double)((const float *)a->data)[i] - ((const float *)b->data)[i]);
        if (!(e <= d))
            d = e; /* NaN propagates as the largest */
    }
    return d;
}

static inline joule_node *tc_node(const joule_graph *g, const char *name)
{
    for (size_t i = 0; i < g->n_nodes; i++)
        if (strcmp(g->nodes[i]->name, name) == 0)
            return g->nodes[i];
    return NULL;
}

static inline size_t tc_count_op(const joule_graph *g, const char *op)
{
    size_t n = 0;
    for (size_t i = 0; i < g->n_nodes; i++)
        n += strcmp(g->nodes[i]->op_type, op) == 0;
    return n;
}

static inline size_t tc_zeros(const joule_tensor *t)
{
    size_t z = 0;
    for (size_t i = 0; i < t->count; i++)
        z += ((const float *)t->data)[i] == 0.0f;
    return z;
}

/* The weight tensor of node (input 1). */
static inline const joule_tensor *tc_weight(const joule_graph *g, const joule_node *n)
{
    (void)g;
    assert_non_null(n);
    assert_true(n->n_inputs > 1 && n->inputs[1] && n->inputs[1]->data);
    return n->inputs[1]->data;
}

/* ---- tiny hand-made graphs ---- */

static inline joule_value *tc_input(joule_model *m, const char *name, int rank,
                                    const int64_t *dims)
{
    joule_error err = {{0}};
    joule_value *v = NULL;
    assert_joule_ok(joule_graph_value(m->graph, name, &v, &err), &err);
    v->dtype = JOULE_F32;
    v->shape.rank = rank;
    for (int d = 0; d < rank; d++)
        v->shape.dims[d].size = dims[d];
    assert_joule_ok(joule_graph_add_input(m->graph, v, &err), &err);
    return v;
}

static inline joule_node *tc_add_node(joule_model *m, const char *op, const char *name, int n_in,
                                      const char *const *in, int n_out, const char *const *out)
{
    joule_error err = {{0}};
    joule_node *n = NULL;
    assert_joule_ok(joule_node_create(m->graph, op, "", name, n_in, in, n_out, out, &n, &err),
                    &err);
    assert_joule_ok(joule_graph_insert_before(m->graph, n, NULL, &err), &err);
    return n;
}

static inline void tc_output(joule_model *m, const char *name)
{
    joule_error err = {{0}};
    joule_value *v = joule_graph_find_value(m->graph, name);
    assert_non_null(v);
    assert_joule_ok(joule_graph_add_output(m->graph, v, &err), &err);
}

/* Deterministic pseudo-random floats in [-1, 1) (xorshift), never exactly zero. */
static inline void tc_fill(float *p, size_t n, uint32_t seed)
{
    uint32_t s = seed ? seed : 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        float v = (float)(s >> 8) / 8388608.0f - 1.0f;
        p[i] = v == 0.0f ? 0.5f : v;
    }
}

static inline joule_tensor *tc_random_input(int rank, const int64_t *dims, uint32_t seed)
{
    joule_error err = {{0}};
    joule_tensor *t = NULL;
    assert_joule_ok(joule_tensor_new(JOULE_F32, rank, dims, &t, &err), &err);
    tc_fill(joule_tensor_mutable_data(t), t->count, seed);
    return t;
}

/* m saved and loaded again: what a user of the written file gets (and a copy to edit). */
static inline joule_model *tc_roundtrip(const joule_model *m)
{
    joule_error err = {{0}};
    void *buf = NULL;
    size_t len = 0;
    assert_joule_ok(joule_model_serialize(m, &buf, &len, &err), &err);
    joule_model *c = NULL;
    assert_joule_ok(joule_model_load_buffer(buf, len, "copy", NULL, &c, &err), &err);
    free(buf);
    return c;
}

/* Parameters and MACs of m by joule_model_info (on a fresh copy, which info's inference edits). */
static inline void tc_info(const joule_model *m, uint64_t *params, uint64_t *macs)
{
    joule_error err = {{0}};
    joule_model *c = tc_roundtrip(m);
    joule_info *info = NULL;
    assert_joule_ok(joule_model_info(c, NULL, 0, &info, &err), &err);
    *params = info->total_params;
    *macs = info->total_macs;
    joule_info_free(info);
    joule_model_free(c);
}

/* Channel pruning at ratio 0.3 (rows into r), then the size check: a valid graph with
 * at least 25% fewer parameters and MACs; label names the model in a failure. */
static inline void tc_prune_channels_30(joule_model *m, joule_report *r, const char *label)
{
    joule_error err = {{0}};
    uint64_t p0, m0, p1, m1;
    tc_info(m, &p0, &m0);
    joule_channel_options o;
    joule_channel_defaults(&o);
    o.ratio = 0.3;
    assert_joule_ok(joule_prune_channels(m, &o, r, &err), &err);
    assert_joule_ok(joule_graph_validate(m->graph, &err), &err);
    tc_info(m, &p1, &m1);
    if (!(p1 <= p0 * 3 / 4 && m1 <= m0 * 3 / 4))
        fail_msg("%s: params %llu -> %llu, MACs %llu -> %llu: less than 25%% fewer", label,
                 (unsigned long long)p0, (unsigned long long)p1, (unsigned long long)m0,
                 (unsigned long long)m1);
}

#endif

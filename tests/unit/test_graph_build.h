/* tests/unit/test_graph_build.h: small helpers that build graphs in memory for the engine tests
 * (test_engine.c, test_engine_fusion.c) and the compression tests (through test_compress_util.h
 * and test_compress_quant.c): a model, inputs, outputs, initializers, nodes, and float32
 * tensors. Every call asserts success. Include after common.h. */
#ifndef JOULE_TEST_GRAPH_BUILD_H
#define JOULE_TEST_GRAPH_BUILD_H

#include <string.h>

#include "joule/joule.h"


static inline joule_model *new_model(void)
{
    joule_error err = {{0}};
    joule_model *m = NULL;
    assert_joule_ok(joule_model_new(17, &m, &err), &err);
    return m;
}

/* A graph input; sym (may be NULL) makes dim 0 symbolic. */
static inline joule_value *add_input(joule_model *m, const char *name, joule_dtype dt, int rank,
                              const int64_t *dims, const char *sym)
{
    joule_error err = {{0}};
    joule_value *v = NULL;
    assert_joule_ok(joule_graph_value(m->graph, name, &v, &err), &err);
    v->dtype = dt;
    v->shape.rank = rank;
    for (int i = 0; i < rank; i++)
        v->shape.dims[i].size = dims[i];
    if (sym) {
        v->shape.dims[0].size = -1;
        v->shape.dims[0].sym = joule_graph_intern(m->graph, sym);
    }
    assert_joule_ok(joule_graph_add_input(m->graph, v, &err), &err);
    return v;
}

static inline void add_output(joule_model *m, const char *name)
{
    joule_error err = {{0}};
    joule_value *v = NULL;
    assert_joule_ok(joule_graph_value(m->graph, name, &v, &err), &err);
    assert_joule_ok(joule_graph_add_output(m->graph, v, &err), &err);
}

/* An initializer of dtype dt holding data (rank 0: one element; dims may be NULL; data NULL:
 * zeros). */
static inline joule_value *add_const(joule_model *m, const char *name, joule_dtype dt, int rank,
                                     const int64_t *dims, const void *data)
{
    joule_error err = {{0}};
    joule_value *v = NULL;
    joule_tensor *t = NULL;
    assert_joule_ok(joule_graph_value(m->graph, name, &v, &err), &err);
    assert_joule_ok(joule_tensor_new(dt, rank, dims, &t, &err), &err);
    if (data && t->nbytes)
        memcpy(joule_tensor_mutable_data(t), data, t->nbytes);
    assert_joule_ok(joule_graph_set_initializer(m->graph, v, t, &err), &err);
    return v;
}

static inline joule_value *add_const_f32(joule_model *m, const char *name, int rank, const int64_t *dims,
                                  const float *data)
{
    return add_const(m, name, JOULE_F32, rank, dims, data);
}

static inline joule_node *add_node(joule_model *m, const char *op, const char *name, int n_in,
                            const char *const *in, const char *out)
{
    joule_error err = {{0}};
    joule_node *n = NULL;
    const char *outs[1] = {out};
    assert_joule_ok(joule_node_create(m->graph, op, "", name, n_in, in, 1, outs, &n, &err), &err);
    assert_joule_ok(joule_graph_insert_before(m->graph, n, NULL, &err), &err);
    return n;
}

static inline joule_tensor *new_f32(int rank, const int64_t *dims)
{
    joule_error err = {{0}};
    joule_tensor *t = NULL;
    assert_joule_ok(joule_tensor_new(JOULE_F32, rank, dims, &t, &err), &err);
    return t;
}

static inline float *f32(joule_tensor *t)
{
    return joule_tensor_mutable_data(t);
}

static inline const float *cf32(const joule_tensor *t)
{
    return t->data;
}

#endif

/* joule/graph.h: the in-memory model that every pass and the engine share.
 *
 * A joule_model holds metadata (IR version, opsets, producer) and one joule_graph. The graph owns
 * its values and nodes; values own their constant data (initializers). Nodes are kept in
 * topological order. Names and attribute strings live in the graph's arena and are freed with it.
 *
 * Everything the IR does not model (doc strings, metadata props, training info, functions,
 * subgraph attributes, unknown protobuf fields) is remembered through `origin` pointers to the
 * protobuf the object was loaded from, so a load/save round trip loses nothing. */
#ifndef JOULE_GRAPH_H
#define JOULE_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "joule/dtype.h"
#include "joule/status.h"
#include "joule/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One dimension: a concrete size (>= 0), or unknown (size < 0) with an optional symbol ("batch"). */
typedef struct joule_dim {
    int64_t size;
    const char *sym; /* interned in the graph's arena, or NULL */
} joule_dim;

typedef struct joule_shape {
    int rank; /* -1 when even the rank is unknown */
    joule_dim dims[JOULE_MAX_RANK];
} joule_shape;

enum {
    JOULE_VALUE_INPUT = 1u << 0,       /* listed in graph.input */
    JOULE_VALUE_OUTPUT = 1u << 1,      /* listed in graph.output */
    JOULE_VALUE_INITIALIZER = 1u << 2, /* has constant data from graph.initializer */
    JOULE_VALUE_INFO = 1u << 3,        /* listed in graph.value_info */
    JOULE_VALUE_SPARSE = 1u << 4,      /* initializer saved sparse (COO, int64 linear indices) */
    /* with JOULE_VALUE_SPARSE: saved as a Constant node's sparse_value (opset >= 11, not a graph
     * input) instead of a graph sparse_initializer; onnx.checker's full_check accepts the former
     * and rejects the latter as an input of dense operators */
    JOULE_VALUE_SPARSE_CONSTANT = 1u << 5
};

typedef struct joule_value {
    const char *name;
    joule_dtype dtype; /* JOULE_UNDEFINED when not known */
    joule_shape shape;
    joule_tensor *data; /* constant data (owned) or NULL */
    unsigned flags;
    /* private: the ValueInfoProto it was declared with and the type it then had */
    const void *origin;
    joule_dtype origin_dtype;
    joule_shape origin_shape;
} joule_value;

typedef enum joule_attr_type {
    JOULE_ATTR_UNDEFINED = 0,
    JOULE_ATTR_FLOAT = 1,
    JOULE_ATTR_INT = 2,
    JOULE_ATTR_STRING = 3,
    JOULE_ATTR_TENSOR = 4,
    JOULE_ATTR_GRAPH = 5,
    JOULE_ATTR_FLOATS = 6,
    JOULE_ATTR_INTS = 7,
    JOULE_ATTR_STRINGS = 8,
    JOULE_ATTR_TENSORS = 9,
    JOULE_ATTR_GRAPHS = 10,
    JOULE_ATTR_SPARSE_TENSOR = 11,
    JOULE_ATTR_SPARSE_TENSORS = 12,
    JOULE_ATTR_TYPE_PROTO = 13,
    JOULE_ATTR_TYPE_PROTOS = 14
} joule_attr_type;

/* A node attribute. Scalars, strings, lists and tensors are decoded; graphs, sparse tensors and
 * type protos are kept only through origin (they round-trip but the IR does not inspect them). */
typedef struct joule_attr {
    const char *name;
    joule_attr_type type;
    float f;
    int64_t i;
    joule_string s;
    size_t count; /* length of the list fields below */
    const float *floats;
    const int64_t *ints;
    const joule_string *strings;
    joule_tensor *t; /* JOULE_ATTR_TENSOR (owned by the node) */
    const void *origin;
} joule_attr;

typedef struct joule_node {
    const char *name;
    const char *op_type;
    const char *domain; /* "" for the default ONNX domain */
    int n_inputs;
    joule_value **inputs; /* an entry is NULL for an omitted optional input ("") */
    int n_outputs;
    joule_value **outputs; /* NULL for an omitted optional output */
    int n_attrs;
    joule_attr *attrs;
    const void *origin; /* private: the NodeProto, for unmodeled fields */
} joule_node;

typedef struct joule_graph_priv joule_graph_priv;

typedef struct joule_graph {
    const char *name;
    size_t n_nodes;
    joule_node **nodes; /* topological order */
    size_t n_values;
    joule_value **values; /* every value, in creation order */
    size_t n_inputs, n_outputs, n_initializers, n_value_info;
    joule_value **inputs, **outputs, **initializers, **value_info; /* declared order */
    joule_graph_priv *priv;
} joule_graph;

typedef struct joule_opset {
    const char *domain;
    int64_t version;
} joule_opset;

typedef struct joule_model {
    int64_t ir_version;
    size_t n_opsets;
    joule_opset *opsets;
    const char *producer_name;
    const char *producer_version;
    const char *domain;
    int64_t model_version;
    joule_graph *graph;
    const char *path; /* file it was loaded from, or NULL */
    void *priv;       /* private: the ModelProto and mapped files */
} joule_model;

/* ---- model ---- */
joule_status joule_model_new(int64_t opset, joule_model **out, joule_error *err);
void joule_model_free(joule_model *m);
/* Version of the opset imported for domain ("" or "ai.onnx" for the default), or 0. */
int64_t joule_model_opset(const joule_model *m, const char *domain);

/* ---- graph: lookup ---- */
joule_value *joule_graph_find_value(const joule_graph *g, const char *name);
/* Node that produces v, or NULL (graph input, initializer, or dangling). */
joule_node *joule_graph_producer(const joule_graph *g, const joule_value *v);
/* Nodes that read v, in topological order. *out is malloc'd (free it); *n may be 0. */
joule_status joule_graph_consumers(const joule_graph *g, const joule_value *v, joule_node ***out,
                                   size_t *n, joule_error *err);
/* Position of node in g->nodes, or -1. */
long joule_graph_node_index(const joule_graph *g, const joule_node *node);

/* ---- graph: editing ---- */
/* Copies a string into the graph's arena (freed with the graph). */
const char *joule_graph_intern(joule_graph *g, const char *s);
/* Returns the value named name, creating it (dtype undefined, rank unknown) if absent. */
joule_status joule_graph_value(joule_graph *g, const char *name, joule_value **out, joule_error *err);
/* A new value with a unique name derived from hint ("hint", "hint_1", ...). */
joule_status joule_graph_new_value(joule_graph *g, const char *hint, joule_value **out,
                                   joule_error *err);
/* Creates a node (not yet placed in the order) from names of inputs/outputs ("" = omitted).
 * Output values are created when absent. */
joule_status joule_node_create(joule_graph *g, const char *op_type, const char *domain,
                               const char *name, int n_in, const char *const *inputs, int n_out,
                               const char *const *outputs, joule_node **out, joule_error *err);
/* Declares v as a graph input / output (appended to the declared order). */
joule_status joule_graph_add_input(joule_graph *g, joule_value *v, joule_error *err);
joule_status joule_graph_add_output(joule_graph *g, joule_value *v, joule_error *err);
/* Places node before/after anchor (anchor NULL: at the end / at the start). */
joule_status joule_graph_insert_before(joule_graph *g, joule_node *node, const joule_node *anchor,
                                       joule_error *err);
joule_status joule_graph_insert_after(joule_graph *g, joule_node *node, const joule_node *anchor,
                                      joule_error *err);
/* Removes node. With replace_with non-NULL, every reader of node's first output (and the graph
 * output list) is rewired to read replace_with instead. The node is freed. */
joule_status joule_graph_remove_node(joule_graph *g, joule_node *node, joule_value *replace_with,
                                     joule_error *err);
/* Makes every node input and graph output that reads from `from` read `to` instead. */
void joule_graph_replace_uses(joule_graph *g, joule_value *from, joule_value *to);
/* Gives v new constant data (old data freed; v becomes an initializer; dtype/shape follow t). */
joule_status joule_graph_set_initializer(joule_graph *g, joule_value *v, joule_tensor *t,
                                         joule_error *err);
/* Renames a value; fails if new_name is taken. */
joule_status joule_graph_rename_value(joule_graph *g, joule_value *v, const char *new_name,
                                      joule_error *err);
/* Removes values that nothing reads, produces or declares, and initializers no node reads. */
void joule_graph_prune_values(joule_graph *g);
/* Rejects cycles/wrong order, dangling inputs and duplicate output names, naming the node. */
joule_status joule_graph_validate(const joule_graph *g, joule_error *err);
/* Reorders nodes topologically (stable); fails on a cycle naming a node on it. */
joule_status joule_graph_toposort(joule_graph *g, joule_error *err);

/* Whether n (NULL: no) is op_type in the default ONNX domain ("" or "ai.onnx"). */
bool joule_node_is_op(const joule_node *n, const char *op_type);

/* ---- attributes ---- */
const joule_attr *joule_node_attr(const joule_node *n, const char *name);
int64_t joule_attr_int(const joule_node *n, const char *name, int64_t dflt);
float joule_attr_float(const joule_node *n, const char *name, float dflt);
/* NUL-terminated copy in the graph arena is not needed: returns dflt when absent. */
joule_string joule_attr_string(const joule_node *n, const char *name, const char *dflt);
/* Sets (or replaces) an attribute; strings and lists are copied into the graph's arena. */
joule_status joule_node_set_attr_int(joule_graph *g, joule_node *n, const char *name, int64_t v,
                                     joule_error *err);
joule_status joule_node_set_attr_float(joule_graph *g, joule_node *n, const char *name, float v,
                                       joule_error *err);
joule_status joule_node_set_attr_ints(joule_graph *g, joule_node *n, const char *name,
                                      const int64_t *v, size_t count, joule_error *err);
joule_status joule_node_set_attr_string(joule_graph *g, joule_node *n, const char *name,
                                        const char *v, joule_error *err);
/* Takes ownership of t. */
joule_status joule_node_set_attr_tensor(joule_graph *g, joule_node *n, const char *name,
                                        joule_tensor *t, joule_error *err);
void joule_node_remove_attr(joule_node *n, const char *name);

/* ---- shapes ---- */
bool joule_shape_is_concrete(const joule_shape *s);
/* Writes e.g. "[batch,1,28,28]" or "?" into buf. */
void joule_shape_format(const joule_shape *s, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif

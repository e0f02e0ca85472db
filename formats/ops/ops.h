/* formats/ops/ops.h: the one op table. Each operator joule knows is described once: its name,
 * domain, first supported opset, shape/dtype inference, and the flags passes need. Graph-level
 * inference (formats/infer.c), the engine's planner and the compression passes all read it, so
 * adding an op is one entry here plus its kernels in eval/. Internal header. */
#ifndef JOULE_OPS_H
#define JOULE_OPS_H

#include <stdbool.h>
#include <stdint.h>

#include "joule/graph.h"
#include "joule/status.h"

/* What inference knows about one input or output. */
typedef struct joule_infer_io {
    bool present;               /* false for an omitted optional input/output */
    joule_dtype dtype;          /* JOULE_UNDEFINED when unknown */
    joule_shape shape;          /* rank -1 when unknown */
    const joule_tensor *value;  /* known contents (initializer or propagated data), or NULL */
    /* Contents of a small integer tensor (rank 0 or 1, at most JOULE_MAX_RANK elements) known
     * element by element, where an element may be symbolic: Shape of [batch,3] holds
     * {batch, 3}. rank = element count; element k is dims[k]: the concrete value `size` (any
     * integer, -1 included) unless size == JOULE_INFER_UNKNOWN, then unknown and named by sym
     * when sym is not NULL. NULL when not known; `value` takes precedence when both are set. */
    const joule_shape *dims_value;
} joule_infer_io;

typedef struct joule_infer_ctx {
    const joule_node *node;
    int64_t opset;            /* version of the node's domain imported by the model */
    int n_in;
    const joule_infer_io *in;
    int n_out;
    joule_infer_io *out;      /* infer sets dtype and shape; see `value` below */
    /* Data propagation: for small integer outputs whose inputs' values are all known, infer may
     * store computed contents in out_values[i] (a tensor it allocates with joule_tensor_new; the
     * caller takes ownership). Only for outputs of at most JOULE_INFER_MAX_PROPAGATE elements. */
    joule_tensor **out_values;
    joule_graph *graph;       /* to intern new symbols; NULL in the engine (shapes concrete) */
    joule_error *err;
    /* Symbolic data propagation, like out_values but element by element (see dims_value):
     * n_out entries the caller presets to rank -1; infer sets one to rank >= 0 to give it.
     * May be NULL. */
    joule_shape *out_dims_values;
} joule_infer_ctx;

#define JOULE_INFER_MAX_PROPAGATE 4096
/* An unknown element in a dims_value. */
#define JOULE_INFER_UNKNOWN INT64_MIN

typedef joule_status (*joule_infer_fn)(joule_infer_ctx *c);

enum {
    JOULE_OP_ELEMENTWISE = 1u << 0, /* output i depends only on input element i (with broadcast) */
    JOULE_OP_WEIGHTED = 1u << 1,    /* has a prunable weight input (weight_input) */
    JOULE_OP_QUANTIZABLE = 1u << 2, /* int8 static/dynamic quantization applies */
    JOULE_OP_DATA_SHAPE = 1u << 3,  /* output shape depends on input contents */
    JOULE_OP_QUANT_NEIGHBOUR = 1u << 4 /* passes int8 through in QDQ (pooling, Relu, Concat, ...) */
};

typedef struct joule_op_def {
    const char *op_type;
    const char *domain;     /* "" = ai.onnx */
    int64_t since_version;  /* earliest opset whose semantics are implemented */
    joule_infer_fn infer;
    unsigned flags;
    int weight_input;       /* index of the weight input for WEIGHTED ops, else -1 */
} joule_op_def;

/* The entry for (domain, op_type), or NULL. domain "" and "ai.onnx" are the same. */
const joule_op_def *joule_op_find(const char *domain, const char *op_type);
size_t joule_op_count(void);
const joule_op_def *joule_op_at(size_t i);

#endif

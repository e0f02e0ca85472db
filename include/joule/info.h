/* joule/info.h: what a model contains: versions, producer, inputs and outputs with shapes, node
 * counts by op, parameters and bytes by dtype, a per-layer table (every node that reads a constant
 * weight) with sparsity and MACs, and totals. `joule info` prints this; callers may use it too. */
#ifndef JOULE_INFO_H
#define JOULE_INFO_H

#include <stddef.h>
#include <stdint.h>

#include "joule/graph.h"
#include "joule/infer.h"
#include "joule/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct joule_info_layer {
    const char *name;       /* node name (or "<op>_<index>" when unnamed) */
    const char *op_type;
    const char *weight;     /* name of the largest constant input */
    joule_shape weight_shape;
    joule_dtype dtype;      /* the weight's dtype */
    uint64_t params;        /* elements over all constant inputs of the node */
    uint64_t zeros;         /* zero elements in the weight */
    double sparsity;        /* zeros / weight elements, 0..1 */
    uint64_t macs;          /* multiply-accumulates for one run at the inferred shapes */
} joule_info_layer;

typedef struct joule_info_count {
    const char *key;        /* op type or dtype name */
    uint64_t count;         /* nodes, or parameters */
    uint64_t bytes;         /* for dtypes: bytes of those parameters */
} joule_info_count;

/* A graph input or output as declared (or as given by --input-shape), symbols kept. */
typedef struct joule_info_io {
    const char *name;
    joule_dtype dtype;
    joule_shape shape;
} joule_info_io;

typedef struct joule_info {
    size_t n_inputs, n_outputs;
    joule_info_io *inputs, *outputs; /* initializers listed as inputs (IR < 4) are left out */
    size_t n_ops, n_dtypes, n_layers;
    joule_info_count *ops;    /* node count by op type, in first-seen order */
    joule_info_count *dtypes; /* parameters and bytes by dtype */
    joule_info_layer *layers;
    uint64_t total_params, total_bytes, total_macs, total_nodes;
    int macs_assumed_batch1;  /* symbolic dims were taken as 1 to count MACs */
} joule_info;

/* Infers shapes twice: with the given input shapes (symbols kept) for the input/output table,
 * then with symbolic dims left over taken as 1 to count MACs. Fills *out. m is modified only by
 * shape inference (values end with the second pass's shapes). Free with joule_info_free. */
joule_status joule_model_info(joule_model *m, const joule_input_shape *shapes, size_t n_shapes,
                              joule_info **out, joule_error *err);
void joule_info_free(joule_info *info);

/* The whole report as one JSON document (malloc'd string). */
joule_status joule_info_json(const joule_model *m, const joule_info *info, char **out,
                             joule_error *err);

#ifdef __cplusplus
}
#endif
#endif

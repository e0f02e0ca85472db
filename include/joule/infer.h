/* joule/infer.h: shape and dtype inference over a graph, from concrete or symbolic input shapes.
 * Small integer tensors computed from shapes (Shape -> Gather -> Concat -> Reshape chains) are
 * propagated as data, so Reshape, Expand, Slice and friends get concrete output shapes whenever
 * their inputs are known. */
#ifndef JOULE_INFER_H
#define JOULE_INFER_H

#include <stddef.h>

#include "joule/graph.h"
#include "joule/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A shape given for a graph input, overriding the declared one. */
typedef struct joule_input_shape {
    const char *name;
    joule_shape shape;
} joule_input_shape;

/* Parses "NAME=1x3x224x224" (a dim may also be a symbol, "NAME=batchx3x224x224"). name is copied
 * into name_buf. Dims may also be separated by commas ("NAME=1,3,224,224", for symbols that
 * contain an x), and "?" is an unknown dim; symbols are stored in name_buf after the name, so
 * out stays valid as long as name_buf does. */
joule_status joule_parse_input_shape(const char *arg, char *name_buf, size_t name_size,
                                     joule_input_shape *out, joule_error *err);

/* Infers dtype and shape of every value in m's graph. Inputs listed in `inputs` take those shapes.
 * Ops joule does not know leave their outputs unknown (no error); an op whose inputs contradict
 * its spec (mismatched dims, bad axis) fails, naming the node. */
joule_status joule_infer_shapes(joule_model *m, const joule_input_shape *inputs, size_t n_inputs,
                                joule_error *err);

#ifdef __cplusplus
}
#endif
#endif

/* joule/engine.h: running a model. A session is made once from a model and options: it infers
 * shapes, picks a kernel for every node, pre-packs weights, evaluates constant subgraphs and plans
 * activation memory by liveness. An op or dtype no kernel supports fails here, never in a run.
 * Runs reuse the plan (and allocate nothing) until an input's shape changes; then they re-plan.
 *
 * Every graph input needs a concrete shape at creation: its declared one, or one given in
 * input_shapes (a symbolic dim like "batch" without one is an error naming the input). A graph
 * whose shapes follow input contents (a Reshape fed its target shape as an input) is planned at
 * every run with the inputs' data instead; creation then checks only that its ops are known. */
#ifndef JOULE_ENGINE_H
#define JOULE_ENGINE_H

#include <stddef.h>

#include "joule/graph.h"
#include "joule/infer.h"
#include "joule/status.h"
#include "joule/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum joule_backend {
    JOULE_BACKEND_CPU = 0,
    JOULE_BACKEND_CUDA = 1
} joule_backend;

typedef struct joule_session_options {
    joule_backend backend;
    int threads;                        /* 0: all cores; 1 is deterministic (bit-reproducible) */
    const joule_input_shape *input_shapes; /* optional shapes for dynamic inputs */
    size_t n_input_shapes;
} joule_session_options;

typedef struct joule_session joule_session;

/* m must outlive the session (weights are borrowed). */
joule_status joule_session_create(const joule_model *m, const joule_session_options *opt,
                                  joule_session **out, joule_error *err);
void joule_session_free(joule_session *s);

/* Graph inputs that need feeding (initializers excluded) and graph outputs. */
size_t joule_session_n_inputs(const joule_session *s);
const joule_value *joule_session_input(const joule_session *s, size_t i);
size_t joule_session_n_outputs(const joule_session *s);
const joule_value *joule_session_output_value(const joule_session *s, size_t i);

/* Runs once. inputs[i] feeds joule_session_input(s, i). Shapes may differ from the last run. */
joule_status joule_session_run(joule_session *s, const joule_tensor *const *inputs, size_t n,
                               joule_error *err);
/* Output i of the last run; valid until the next run or free. */
const joule_tensor *joule_session_output(const joule_session *s, size_t i);
/* Bytes of the activation arena of the current plan: values whose lifetimes do not overlap
 * share space, so this is the peak, not the sum (weights and folded constants not included). */
size_t joule_session_peak_bytes(const joule_session *s);

#ifdef __cplusplus
}
#endif
#endif

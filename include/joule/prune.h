/* joule/prune.h: pruning passes. Unstructured magnitude pruning (a target per layer, or one
 * threshold across layers), N:M semi-structured pruning along the reduction axis, structured
 * channel pruning that physically removes output channels and follows them into every reader,
 * and sparse storage (Constant sparse_value) for weights that are mostly zeros.
 *
 * Only the weight input of Conv, ConvTranspose, Gemm and MatMul is pruned, and only when it is a
 * constant (an initializer or a Constant node's value); biases and normalisation parameters never
 * are. Every pass changes the model in place and adds one report row per layer it looked at. */
#ifndef JOULE_PRUNE_H
#define JOULE_PRUNE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "joule/compress.h"
#include "joule/graph.h"
#include "joule/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum joule_prune_scope {
    JOULE_PRUNE_SCOPE_LAYER = 0, /* each layer gets round(sparsity * n) zeros */
    JOULE_PRUNE_SCOPE_GLOBAL = 1 /* one magnitude threshold over all layers without an override */
} joule_prune_scope;

/* A per-layer target. A layer takes the first override that matches it: `match` is a glob
 * (fnmatch) tried on the node name and on the weight's name; `op_type` an exact op type. An
 * override with both set needs both to match. */
typedef struct joule_prune_override {
    const char *match;   /* or NULL */
    const char *op_type; /* or NULL */
    double sparsity;     /* [0, 1) */
} joule_prune_override;

/* Options of the magnitude pass. Strings and arrays are borrowed for the call. */
typedef struct joule_prune_options {
    double sparsity;          /* unstructured target in [0, 1); negative: none */
    joule_prune_scope scope;
    /* N:M: keep the N largest of every M consecutive weights along the reduction axis
     * (0 = off). Layers whose reduction length is not a multiple of M fall back to `sparsity`
     * (or are left alone without one); a layer with an override is pruned unstructured. */
    int pattern_n, pattern_m;
    const joule_prune_override *overrides;
    size_t n_overrides;
    const char *const *skip;  /* globs on node or weight names never pruned */
    size_t n_skip;
    uint64_t min_params;      /* weights with fewer elements are left alone */
} joule_prune_options;

void joule_prune_defaults(joule_prune_options *o); /* sparsity unset, layer scope, no pattern */

/* Parses "N:M" (1 <= N < M <= 256). */
joule_status joule_parse_pattern(const char *s, int *n, int *m, joule_error *err);

/* Unstructured or N:M magnitude pruning. Ties in magnitude go to the lower index, so results are
 * the same on every run; per layer exactly round(sparsity * n) weights end zero (more only when
 * the weight already had more zeros). */
joule_status joule_prune_magnitude(joule_model *m, const joule_prune_options *opt, joule_report *r,
                                   joule_error *err);

typedef enum joule_channel_norm {
    JOULE_CHANNEL_L1 = 1,
    JOULE_CHANNEL_L2 = 2
} joule_channel_norm;

typedef struct joule_channel_options {
    double ratio;             /* fraction of each channel group's channels removed, [0, 1) */
    joule_channel_norm norm;  /* importance of a channel: L1 or L2 norm of its weights */
    const char *const *skip;  /* globs on node names whose output channels stay */
    size_t n_skip;
    /* Remove only channels whose weights and bias are zero in every producer (whatever the
     * ratio). Outputs stay equal when the path to the readers maps zero to zero (Relu,
     * HardSwish, pooling, Add: true after cleanup has folded BatchNormalization). */
    bool zero_only;
} joule_channel_options;

void joule_channel_defaults(joule_channel_options *o); /* ratio 0, L1 */

/* Structured pruning of output channels of Conv (group 1), Gemm and MatMul with constant
 * weights. Channels tied by residual Adds form one group, pruned with one channel set or not at
 * all. Tensors shrink physically, and every reader follows: biases, BatchNormalization,
 * per-channel constants of elementwise ops, depthwise convs (group count), pooling, Flatten (the
 * channel's C*H*W slice of the next Gemm), and the next layer's input channels. Channels that
 * reach a graph output, a Concat, a Reshape that is not a flatten, or an op it cannot follow stay,
 * with a report row saying why. Shapes are inferred again afterwards. */
joule_status joule_prune_channels(joule_model *m, const joule_channel_options *opt,
                                  joule_report *r, joule_error *err);

typedef struct joule_sparse_options {
    double min_sparsity; /* weights with at least this fraction of zeros are considered (0.5) */
} joule_sparse_options;

void joule_sparse_defaults(joule_sparse_options *o);

/* Marks float initializers with at least min_sparsity zeros for saving sparse (COO, int64 linear
 * indices) when that encoding is smaller than the dense one (with 4-byte floats that needs more
 * than 2/3 zeros); others get a row saying why not. They are saved as Constant nodes with a
 * sparse_value (opset >= 11; onnx.checker's full_check and ONNX Runtime accept these), else as
 * graph sparse_initializers. */
joule_status joule_sparse_storage(joule_model *m, const joule_sparse_options *opt, joule_report *r,
                                  joule_error *err);

#ifdef __cplusplus
}
#endif
#endif

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
#include "joule/dataset.h"
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

/* Data-aware bias correction of the magnitude pass (joule_prune_options.correct_bias). Before
 * pruning, the unpruned model runs over the calibration data and, for every layer with a
 * prunable weight, only the mean and spread of its output per output channel are kept (Conv and
 * ConvTranspose: over the batch and the spatial positions; Gemm: over the batch; MatMul: over
 * everything but the last axis, so tokens too). After pruning, the layers whose weights changed
 * are corrected in topological order, measured in the pruned model with the earlier layers'
 * corrections already in (so x' below is what the corrected earlier layers hand the layer):
 *
 *   shift_only: b += E[W x] - E[W' x'] per output channel, so the mean output over the
 *     calibration data equals the unpruned model's;
 *   default: also W'[c] *= s[c] = std(W x)[c] / std(W' x')[c], clamped to [1/2, 2], then the
 *     bias as above. Pruning shrinks a layer's outputs as well as shifting them, and the mean
 *     of a shrunken output is the wrong target on its own (2:4 on the MLP fixture: -2.8 points
 *     of top-1 with the mean alone, +0.8 with both). Zeros stay zeros, so the sparsity and an
 *     N:M pattern are kept.
 *
 * Layers with no ancestor among each other are corrected from one pass over the data, so the
 * data is read 1 + (the longest chain of pruned layers) times; memory holds the per-channel
 * statistics, no activations and no weight copies. The bias corrected is Conv/ConvTranspose B
 * and Gemm C (added when absent; beta folded in), for MatMul the constant of an Add that alone
 * reads its output, or else a new Add node; a bias or weight shared with other nodes is cloned
 * first. Each corrected layer gets a report row (mean and largest |delta b|, the range of the
 * scale factors); a pruned layer that cannot be corrected (a computed bias, a bias that is not
 * per channel) gets one saying why. Data sources as for int8 static quantization; the model
 * needs one fed float32 input. Data that does not fit (no source, an empty set, items of the
 * wrong shape) is refused before the model changes. */
typedef struct joule_bias_correction {
    bool enabled;
    joule_dataset *calib;       /* an open dataset (rewound before each pass; not freed), or */
    const char *calib_path;     /* a file opened with joule_dataset_open(calib_path, */
    const joule_dataset_options *calib_dataset; /* calib_dataset) (NULL: defaults), or */
    const joule_tensor *calib_tensor; /* float32 [items, ...] in memory */
    size_t calib_limit;         /* use at most this many items (0: all) */
    size_t batch;               /* items per engine run (0: 64) */
    int threads;                /* engine threads (0: all cores) */
    bool shift_only;            /* correct the means only, no rescaling (see above) */
} joule_bias_correction;

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
    joule_bias_correction correct_bias; /* off unless enabled */
} joule_prune_options;

void joule_prune_defaults(joule_prune_options *o); /* sparsity unset, layer scope, no pattern,
                                                     no bias correction */

/* Parses "N:M" (1 <= N < M <= 256). */
joule_status joule_parse_pattern(const char *s, int *n, int *m, joule_error *err);

/* Unstructured or N:M magnitude pruning. Ties in magnitude go to the lower index, so results are
 * the same on every run; per layer exactly round(sparsity * n) weights end zero (more only when
 * the weight already had more zeros). With correct_bias.enabled, biases are then corrected on
 * calibration data (joule_bias_correction above). */
joule_status joule_prune_magnitude(joule_model *m, const joule_prune_options *opt, joule_report *r,
                                   joule_error *err);

typedef enum joule_channel_norm {
    JOULE_CHANNEL_L1 = 1,
    JOULE_CHANNEL_L2 = 2
} joule_channel_norm;

typedef struct joule_channel_options {
    double ratio;             /* fraction of each channel group's channels removed, [0, 1) */
    joule_channel_norm norm;  /* importance of a channel: L1 or L2 norm of its weights */
    /* Round the channels each group keeps (each head, for attention) to the nearest multiple of
     * this, at least one multiple, so that runtimes whose kernels work on blocks of channels (ONNX
     * Runtime's NCHWc convolutions: 8 or 16) keep their fast path. 0 or 1: the ratio exactly.
     * With zero_only it rounds up (fewer channels removed). At most 4096. */
    int64_t multiple;
    const char *const *skip;  /* globs on node names whose output channels stay */
    size_t n_skip;
    /* Remove only channels whose weights and bias are zero in every producer (whatever the
     * ratio). Outputs stay equal when the path to the readers maps zero to zero (Relu,
     * HardSwish, pooling, Add: true after cleanup has folded BatchNormalization). */
    bool zero_only;
    /* Mean (and spread) matching on calibration data after the channels are gone, as for the
     * magnitude pass (joule_bias_correction above; joule_prune_channels below says what is
     * matched). Off unless enabled. */
    joule_bias_correction correct_bias;
} joule_channel_options;

void joule_channel_defaults(joule_channel_options *o); /* ratio 0, L1 */

/* Structured pruning of output channels of Conv (group 1), Gemm and MatMul with constant
 * weights. Channels tied by residual Adds form one group, pruned with one channel set or not at
 * all. Tensors shrink physically, and every reader follows: biases, BatchNormalization,
 * per-channel constants of elementwise ops, depthwise convs (group count), pooling, Flatten (the
 * channel's C*H*W slice of the next Gemm), and the next layer's input channels. Channels that
 * reach a graph output, a Concat, a Reshape that is not a flatten, or an op it cannot follow stay,
 * with a report row saying why. Shapes are inferred again afterwards.
 *
 * With correct_bias.enabled, every layer's per-channel output statistics in the unpruned model
 * are taken first; afterwards every layer whose weight shrank (a shrunken layer: its kept output
 * channels; a reader of removed channels: all its output channels, whose count stays) gets its
 * output channels rescaled and its bias shifted so mean and spread over the calibration data
 * match the unpruned model's, layer after layer as in the magnitude pass. A reader's bias thereby
 * absorbs the mean contribution W[:, c] E[a_c] of every removed input channel c. Shapes are those
 * of the plain pass. */
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

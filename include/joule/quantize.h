/* joule/quantize.h: quantization passes that produce standard ONNX (ai.onnx operators only), so
 * that ONNX Runtime, TensorRT, OpenVINO and joule's own engine all run the result.
 *
 *   joule_quantize_fp16     float32 weights and computation to float16, Casts at the edges
 *   joule_quantize_dynamic  int8 weights; activations quantized at run time
 *                           (DynamicQuantizeLinear -> MatMulInteger / ConvInteger)
 *   joule_quantize_static   int8 weights and activations with ranges from calibration data,
 *                           as QDQ (QuantizeLinear/DequantizeLinear pairs) or QOperator
 *                           (QLinearConv / QLinearMatMul)
 *
 * Every pass changes the model in place and appends report rows: one per layer it quantized
 * (dtype and bytes before/after, scales and zero points) and one per layer it left in float,
 * saying why. A pass that fails returns before it changes the model when the cause is in the
 * model, the options or the data (shape mismatch, empty calibration set, unsupported opset). */
#ifndef JOULE_QUANTIZE_H
#define JOULE_QUANTIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "joule/compress.h"
#include "joule/dataset.h"
#include "joule/graph.h"
#include "joule/status.h"
#include "joule/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- float16 ---- */

typedef struct joule_fp16_options {
    /* Graph inputs and outputs stay float32, with Casts at the boundary (default true). */
    bool keep_io_types;
    /* Op types that stay in float32, in addition to the default list unless
     * no_default_block_ops is set. Borrowed for the call. */
    const char *const *block_ops;
    size_t n_block_ops;
    bool no_default_block_ops;
    /* Node names (fnmatch globs) that stay in float32. */
    const char *const *block_nodes;
    size_t n_block_nodes;
} joule_fp16_options;

void joule_fp16_defaults(joule_fp16_options *o);

/* The default op block list (NULL-terminated): ops whose float16 results are unsafe or that
 * compute indices and shapes (Range, TopK, NonMaxSuppression, RoiAlign, CumSum, ReduceProd,
 * ReduceLogSumExp, ReduceSumSquare, random generators, the quantization ops). Besides this
 * list, nodes on shape-computing paths (fed only by Shape/Size and constants) stay float32,
 * and so do nodes outside the ai.onnx domain and ops joule's op table does not know. */
const char *const *joule_fp16_default_block_ops(void);

/* Converts float32 initializers, Constant/ConstantOfShape values and the computation of every
 * node not blocked to float16. Cast nodes whose `to` is float become float16 casts; inputs that
 * must stay float32 (Resize scales, Upsample scales) stay so. Values a float16 node hands to a
 * float32 one (and back) get a Cast; with keep_io_types the graph keeps its float32 inputs and
 * outputs under their names. Weights outside float16's range are clamped to +-65504, nonzero
 * ones below its smallest subnormal to +-2^-24; the report counts both per tensor. The result
 * passes a type check (every node's float inputs agree) before the pass returns. */
joule_status joule_quantize_fp16(joule_model *m, const joule_fp16_options *opt, joule_report *r,
                                 joule_error *err);

/* ---- int8 shared ---- */

/* A node is excluded when an entry equals its op type or matches its name (fnmatch glob). */
typedef struct joule_quant_exclude {
    const char *const *items;
    size_t n;
} joule_quant_exclude;

/* ---- int8 dynamic ---- */

typedef struct joule_dynamic_options {
    bool per_tensor;             /* one weight scale per tensor instead of per output channel */
    joule_quant_exclude exclude; /* nodes left in float */
} joule_dynamic_options;

void joule_dynamic_defaults(joule_dynamic_options *o);

/* MatMul (constant 2-D B), Gemm (transA 0, constant B) and Conv with float32 constant weights
 * get symmetric int8 weights (zero point 0; scale max|w|/127 per output channel) and run as
 *   x -> DynamicQuantizeLinear -> MatMulInteger | ConvInteger -> Cast(float) -> Mul(x_scale *
 *   w_scale) [-> Add(bias)]
 * Gemm weights with transB are stored transposed ([K, N]); alpha is folded into the scale and
 * beta into the bias. Needs opset >= 11. */
joule_status joule_quantize_dynamic(joule_model *m, const joule_dynamic_options *opt,
                                    joule_report *r, joule_error *err);

/* ---- int8 static (calibrated) ---- */

typedef enum joule_calib_method {
    JOULE_CALIB_MINMAX = 0,     /* observed minimum and maximum */
    JOULE_CALIB_PERCENTILE = 1, /* cut the histogram's tails at a percentile */
    JOULE_CALIB_ENTROPY = 2,    /* threshold with the least KL divergence (TensorRT's method) */
    JOULE_CALIB_MSE = 3         /* range with the least expected squared quantization error */
} joule_calib_method;

typedef enum joule_quant_format {
    JOULE_QUANT_QDQ = 0,      /* QuantizeLinear/DequantizeLinear around float ops */
    JOULE_QUANT_QOPERATOR = 1 /* QLinearConv / QLinearMatMul on integer tensors */
} joule_quant_format;

/* What calibration did (filled when joule_static_options.stats is not NULL). */
typedef struct joule_calib_stats {
    size_t items;          /* calibration inputs (images) per pass */
    int passes;            /* 1 (minmax) or 2 (ranges, then histograms) */
    size_t tensors;        /* activation tensors observed */
    double seconds;        /* wall time of all passes */
    double items_per_s;    /* items * passes / seconds */
} joule_calib_stats;

typedef struct joule_static_options {
    /* Calibration data, one of: an open dataset (rewound before each pass; not freed), a file
     * opened with joule_dataset_open(calib_path, calib_dataset), or an in-memory float32
     * tensor whose first dimension indexes the items. The model must have one fed input. */
    joule_dataset *calib;
    const char *calib_path;
    const joule_dataset_options *calib_dataset; /* NULL: defaults */
    const joule_tensor *calib_tensor;
    size_t calib_limit;      /* use at most this many items (0: all) */
    size_t batch;            /* items per engine run (0: 64) */
    int threads;             /* engine threads (0: all cores) */

    joule_calib_method method; /* default JOULE_CALIB_PERCENTILE; graph outputs (logits) always
                                  keep their observed range */
    double percentile;         /* for JOULE_CALIB_PERCENTILE, in (50, 100] (default 99.999) */
    bool per_tensor;           /* one weight scale per tensor (default: per output channel) */
    bool symmetric_activations;/* int8 symmetric activations (default: uint8 asymmetric) */
    joule_quant_format format;
    joule_quant_exclude exclude;

    joule_calib_stats *stats;  /* out: calibration timing, or NULL */
} joule_static_options;

void joule_static_defaults(joule_static_options *o);

/* Calibrates activation ranges by running the float model on the calibration data (batches
 * stream through joule's engine; only running minima/maxima and 2048-bin histograms are kept),
 * then quantizes: Conv, Gemm and MatMul with constant weights get per-channel symmetric int8
 * weights, an int32 bias with scale x_scale * w_scale, and quantized inputs and outputs (a Relu
 * right after stays between the op and its QuantizeLinear, which joule's engine fuses); the
 * pass-through neighbours MaxPool, Reshape, Flatten, Transpose, Squeeze and Unsqueeze share
 * their input's parameters, and Add, Concat, Relu, Clip, AveragePool and GlobalAveragePool
 * whose inputs are all quantized get their own. Needs opset >= 10 (per-channel weights >= 13;
 * older models get per-tensor weights and a report note). */
joule_status joule_quantize_static(joule_model *m, const joule_static_options *opt,
                                   joule_report *r, joule_error *err);

/* Parses "minmax", "percentile", "entropy" or "mse". */
joule_status joule_parse_calib_method(const char *s, joule_calib_method *out, joule_error *err);
const char *joule_calib_method_name(joule_calib_method m);

#ifdef __cplusplus
}
#endif
#endif

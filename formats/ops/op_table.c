/* formats/ops/op_table.c: the one op table. Every operator joule knows appears here once with the
 * earliest opset whose semantics its inference implements, its infer function, and the flags the
 * compression passes and the engine read. Lookup is by (domain, op_type). */
#include <string.h>

#include "formats/ops/infer_util.h"

#define EW JOULE_OP_ELEMENTWISE
#define WT JOULE_OP_WEIGHTED
#define QZ JOULE_OP_QUANTIZABLE
#define DS JOULE_OP_DATA_SHAPE
#define QN JOULE_OP_QUANT_NEIGHBOUR

#define OP(name, since, fn, flags) {name, "", since, fn, flags, -1}
#define WOP(name, since, fn, flags) {name, "", since, fn, flags, 1}

static const joule_op_def ops[] = {
    /* elementwise, unary */
    OP("Abs", 1, ji_unary, EW),
    OP("Acos", 7, ji_unary, EW),
    OP("Acosh", 9, ji_unary, EW),
    OP("Asin", 7, ji_unary, EW),
    OP("Asinh", 9, ji_unary, EW),
    OP("Atan", 7, ji_unary, EW),
    OP("Atanh", 9, ji_unary, EW),
    OP("Ceil", 1, ji_unary, EW),
    OP("Celu", 12, ji_unary, EW),
    OP("Clip", 1, ji_clip, EW | QN),
    OP("Cos", 7, ji_unary, EW),
    OP("Cosh", 9, ji_unary, EW),
    OP("Elu", 1, ji_unary, EW),
    OP("Erf", 9, ji_unary, EW),
    OP("Exp", 1, ji_unary, EW),
    OP("Floor", 1, ji_unary, EW),
    OP("Gelu", 20, ji_unary, EW),
    OP("HardSigmoid", 1, ji_unary, EW),
    OP("HardSwish", 14, ji_unary, EW),
    OP("IsInf", 10, ji_isnan, EW),
    OP("IsNaN", 9, ji_isnan, EW),
    OP("LeakyRelu", 1, ji_unary, EW),
    OP("Log", 1, ji_unary, EW),
    OP("Mish", 18, ji_unary, EW),
    OP("Neg", 1, ji_unary, EW),
    OP("Not", 1, ji_not, EW),
    OP("Reciprocal", 1, ji_unary, EW),
    OP("Relu", 1, ji_unary, EW | QN),
    OP("Round", 11, ji_unary, EW),
    OP("Selu", 1, ji_unary, EW),
    OP("Shrink", 9, ji_unary, EW),
    OP("Sigmoid", 1, ji_unary, EW),
    OP("Sign", 9, ji_unary, EW),
    OP("Sin", 7, ji_unary, EW),
    OP("Sinh", 9, ji_unary, EW),
    OP("Softplus", 1, ji_unary, EW),
    OP("Softsign", 1, ji_unary, EW),
    OP("Sqrt", 1, ji_unary, EW),
    OP("Tan", 7, ji_unary, EW),
    OP("Tanh", 1, ji_unary, EW),
    OP("ThresholdedRelu", 10, ji_unary, EW),
    /* elementwise, broadcasting */
    OP("Add", 1, ji_binary, EW | QN),
    OP("And", 1, ji_compare, EW),
    OP("BitShift", 11, ji_bitshift, EW),
    OP("Div", 1, ji_binary, EW),
    OP("Equal", 1, ji_compare, EW),
    OP("Greater", 1, ji_compare, EW),
    OP("GreaterOrEqual", 12, ji_compare, EW),
    OP("Less", 1, ji_compare, EW),
    OP("LessOrEqual", 12, ji_compare, EW),
    OP("Max", 1, ji_variadic, EW),
    OP("Mean", 1, ji_variadic, EW),
    OP("Min", 1, ji_variadic, EW),
    OP("Mod", 10, ji_binary, EW),
    OP("Mul", 1, ji_binary, EW),
    OP("Or", 1, ji_compare, EW),
    OP("Pow", 1, ji_binary, EW),
    OP("PRelu", 1, ji_prelu, EW),
    OP("Sub", 1, ji_binary, EW),
    OP("Sum", 1, ji_variadic, EW),
    OP("Where", 9, ji_where, EW),
    OP("Xor", 1, ji_compare, EW),
    /* linear algebra and convolution */
    WOP("Conv", 1, ji_conv, WT | QZ),
    WOP("ConvTranspose", 1, ji_conv_transpose, WT),
    WOP("Gemm", 1, ji_gemm, WT | QZ),
    WOP("MatMul", 1, ji_matmul, WT | QZ),
    /* pooling and normalisation */
    OP("AveragePool", 1, ji_pool, QN),
    OP("BatchNormalization", 1, ji_batchnorm, 0),
    OP("GlobalAveragePool", 1, ji_global_pool, QN),
    OP("GlobalLpPool", 2, ji_global_pool, 0),
    OP("GlobalMaxPool", 1, ji_global_pool, 0),
    OP("Hardmax", 1, ji_softmax, 0),
    OP("InstanceNormalization", 1, ji_instnorm, 0),
    OP("LayerNormalization", 17, ji_layernorm, 0),
    OP("LogSoftmax", 1, ji_softmax, 0),
    OP("LpPool", 2, ji_pool, 0),
    OP("LRN", 1, ji_instnorm, 0),
    OP("MaxPool", 1, ji_pool, QN),
    OP("MeanVarianceNormalization", 9, ji_instnorm, 0),
    OP("Softmax", 1, ji_softmax, 0),
    /* shape and data movement */
    OP("Concat", 1, ji_concat, QN),
    OP("DepthToSpace", 1, ji_depth_to_space, 0),
    OP("Expand", 8, ji_expand, DS),
    OP("Flatten", 1, ji_flatten, QN),
    OP("Gather", 1, ji_gather, 0),
    OP("GatherElements", 11, ji_gather_elements, 0),
    OP("Pad", 1, ji_pad, DS),
    OP("Reshape", 1, ji_reshape, DS | QN),
    OP("Resize", 10, ji_resize, DS),
    OP("ReverseSequence", 10, ji_same_as_data, 0),
    OP("Scatter", 9, ji_same_as_data, 0),
    OP("ScatterElements", 11, ji_same_as_data, 0),
    OP("ScatterND", 11, ji_same_as_data, 0),
    OP("Slice", 1, ji_slice, DS),
    OP("SpaceToDepth", 1, ji_space_to_depth, 0),
    OP("Split", 1, ji_split, DS),
    OP("Squeeze", 1, ji_squeeze, DS | QN),
    OP("Tile", 6, ji_tile, DS),
    OP("TopK", 1, ji_topk, DS),
    OP("Transpose", 1, ji_transpose, QN),
    OP("Trilu", 14, ji_same_as_data, 0),
    OP("Unsqueeze", 1, ji_unsqueeze, DS | QN),
    /* data sources and pass-through */
    OP("Cast", 1, ji_cast, 0),
    OP("CastLike", 15, ji_cast_like, 0),
    OP("Constant", 1, ji_constant, 0),
    OP("ConstantOfShape", 9, ji_constant_of_shape, DS),
    OP("Dropout", 1, ji_dropout, 0),
    OP("EyeLike", 9, ji_eye_like, 0),
    OP("Identity", 1, ji_identity, 0),
    OP("NonZero", 9, ji_nonzero, DS),
    OP("OneHot", 9, ji_onehot, DS),
    OP("Range", 11, ji_range, DS),
    OP("Shape", 1, ji_shape_op, 0),
    OP("Size", 1, ji_size, 0),
    /* reductions */
    OP("ArgMax", 1, ji_argmax, 0),
    OP("ArgMin", 1, ji_argmax, 0),
    OP("CumSum", 11, ji_cumsum, 0),
    OP("ReduceL1", 1, ji_reduce, DS),
    OP("ReduceL2", 1, ji_reduce, DS),
    OP("ReduceLogSum", 1, ji_reduce, DS),
    OP("ReduceLogSumExp", 1, ji_reduce, DS),
    OP("ReduceMax", 1, ji_reduce, DS),
    OP("ReduceMean", 1, ji_reduce, DS),
    OP("ReduceMin", 1, ji_reduce, DS),
    OP("ReduceProd", 1, ji_reduce, DS),
    OP("ReduceSum", 1, ji_reduce, DS),
    OP("ReduceSumSquare", 1, ji_reduce, DS),
    /* less common: recurrent, detection, sampling, random */
    OP("Bernoulli", 15, ji_random_like, 0),
    OP("Compress", 9, ji_compress, DS),
    OP("Det", 11, ji_det, 0),
    OP("Einsum", 12, ji_einsum, 0),
    OP("GatherND", 11, ji_gather_nd, 0),
    OP("GridSample", 16, ji_grid_sample, 0),
    OP("GRU", 7, ji_recurrent, 0),
    OP("LSTM", 7, ji_recurrent, 0),
    OP("MaxUnpool", 9, ji_max_unpool, DS),
    OP("NonMaxSuppression", 10, ji_nms, DS),
    OP("RandomNormal", 1, ji_random, 0),
    OP("RandomNormalLike", 1, ji_random_like, 0),
    OP("RandomUniform", 1, ji_random, 0),
    OP("RandomUniformLike", 1, ji_random_like, 0),
    OP("RNN", 7, ji_recurrent, 0),
    OP("RoiAlign", 10, ji_roi_align, 0),
    OP("Unique", 11, ji_unique, DS),
    OP("Upsample", 7, ji_upsample, DS),
    /* quantization */
    OP("ConvInteger", 10, ji_conv_integer, 0),
    OP("DequantizeLinear", 10, ji_dequantize, 0),
    OP("DynamicQuantizeLinear", 11, ji_dynamic_quantize, 0),
    OP("MatMulInteger", 10, ji_matmul_integer, 0),
    OP("QLinearConv", 10, ji_qlinear_conv, 0),
    OP("QLinearMatMul", 10, ji_qlinear_matmul, 0),
    OP("QuantizeLinear", 10, ji_quantize, 0),
};

const joule_op_def *joule_op_find(const char *domain, const char *op_type)
{
    if (!op_type)
        return NULL;
    if (domain && domain[0] && strcmp(domain, "ai.onnx") != 0)
        return NULL;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (strcmp(ops[i].op_type, op_type) == 0)
            return &ops[i];
    return NULL;
}

size_t joule_op_count(void)
{
    return sizeof ops / sizeof ops[0];
}

const joule_op_def *joule_op_at(size_t i)
{
    return i < sizeof ops / sizeof ops[0] ? &ops[i] : NULL;
}

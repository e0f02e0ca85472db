/* eval/cpu/quant/qdq.h: running QDQ-quantized Conv, MatMul and Gemm as one integer op.
 *
 * A static-quantized model (QDQ format) computes in float between DequantizeLinear and
 * QuantizeLinear nodes:
 *
 *     x_q ─DequantizeLinear(x_scale, x_zp)──┐
 *     w_q ─DequantizeLinear(w_scale, w_zp)──┼─ Conv | MatMul | Gemm ─[Relu]─ QuantizeLinear(y_scale, y_zp) ─ y_q
 *     [b  ─DequantizeLinear(b_scale, b_zp) or a float constant]┘
 *
 * joule_qdq_match recognises that chain around an anchor (the Conv/MatMul/Gemm node) and says
 * which nodes a fused integer kernel replaces; the kernel then computes y_q from x_q directly:
 * int32 sums of (x_q - x_zp)(w_q - w_zp), scaled by x_scale * w_scale / y_scale, plus the bias,
 * rounded half to even, Relu as a lower clamp at y_zp (exact: Relu commutes with the monotone
 * quantizer), saturated. With an int32 bias whose scale is exactly x_scale * w_scale this is
 * QLinearConv / QLinearMatMul bit for bit; the float graph can differ by one step where float
 * rounding lands on a tie.
 *
 * How the engine uses it (at session creation, for every Conv/MatMul/Gemm node `anchor`):
 *
 *     joule_qdq_pattern pat;
 *     if (joule_qdq_match(graph, anchor, &pat)) {
 *         // views of pat.inputs[i] (NULL where pat.inputs[i] is NULL), in this order, n_in =
 *         // JOULE_QDQ_N_INPUTS; one output: the view of pat.output; ctx.node = anchor (its
 *         // attributes: strides, pads, group, transB, alpha, beta...).
 *         // If pat.kernel->supports(anchor, opset, JOULE_QDQ_N_INPUTS, views) says yes, run
 *         // pat.kernel in place of the nodes pat.covered[0 .. n_covered) and skip those nodes;
 *         // otherwise run the nodes one by one as usual.
 *     }
 *
 * Nodes left out of `covered` (a DequantizeLinear whose float output something else also
 * reads) still run normally. Scales, zero points, weights and biases must be constant data
 * (initializers) in the graph: fold Constant nodes first. Internal header. */
#ifndef JOULE_QDQ_H
#define JOULE_QDQ_H

#include <stdbool.h>
#include <stddef.h>

#include "eval/kernel.h"
#include "joule/graph.h"

/* Inputs of the fused kernels, in this order (absent ones NULL). */
enum {
    JOULE_QDQ_X = 0,        /* uint8/int8 activation (DequantizeLinear's input) */
    JOULE_QDQ_X_SCALE,      /* float scalar, constant */
    JOULE_QDQ_X_ZP,         /* x's type, scalar, constant; optional */
    JOULE_QDQ_W,            /* uint8/int8 weights, constant: Conv [M, C/group, kH, kW] (or
                               [M, C/group, kW]); MatMul [K, N]; Gemm [K, N] or, with transB,
                               [N, K] */
    JOULE_QDQ_W_SCALE,      /* float, constant: scalar or one per output channel (M or N) */
    JOULE_QDQ_W_ZP,         /* w's type, shaped like W_SCALE, constant; optional */
    JOULE_QDQ_Y_SCALE,      /* float scalar, constant (QuantizeLinear's scale) */
    JOULE_QDQ_Y_ZP,         /* uint8/int8 scalar, constant; optional (then uint8, 0) */
    JOULE_QDQ_BIAS,         /* optional, constant: int32 (a dequantized bias: with BIAS_SCALE)
                               or float32 (a float bias, or Gemm's C), scalar or per channel */
    JOULE_QDQ_BIAS_SCALE,   /* float, scalar or per channel: only with an int32 BIAS */
    JOULE_QDQ_BIAS_ZP,      /* int32, shaped like BIAS_SCALE; optional */
    JOULE_QDQ_N_INPUTS
};

#define JOULE_QDQ_MAX_COVERED 6

typedef struct joule_qdq_pattern {
    const joule_node *anchor; /* the Conv, MatMul or Gemm */
    const joule_node *dq_x, *dq_w, *dq_bias; /* dq_bias NULL without a dequantized bias */
    const joule_node *relu;                  /* NULL without a fused Relu */
    const joule_node *q;                     /* the QuantizeLinear */
    /* Nodes the fused kernel replaces, in graph order: always anchor, relu (if any) and q;
     * each DequantizeLinear only when nothing else reads its output. */
    size_t n_covered;
    const joule_node *covered[JOULE_QDQ_MAX_COVERED];
    const joule_value *inputs[JOULE_QDQ_N_INPUTS]; /* in the order above, NULL when absent */
    const joule_value *output;                     /* q's output: the fused kernel's output */
    const joule_kernel *kernel;                    /* one of the six kernels below */
} joule_qdq_pattern;

/* Whether anchor is the centre of a QDQ pattern the fused kernels run; fills *out when it is.
 * Looks only at the graph (op types, domains, constant data, dtypes, consumers, graph outputs);
 * concrete shapes are checked later by the kernel's supports(). */
bool joule_qdq_match(const joule_graph *g, const joule_node *anchor, joule_qdq_pattern *out);

/* The fused kernels (op_type is the anchor's; ctx->node is the anchor). The _relu variants
 * clamp at y_zp for a Relu between the anchor and the QuantizeLinear. */
extern const joule_kernel joule_cpu_kernel_qdq_conv;
extern const joule_kernel joule_cpu_kernel_qdq_conv_relu;
extern const joule_kernel joule_cpu_kernel_qdq_matmul;
extern const joule_kernel joule_cpu_kernel_qdq_matmul_relu;
extern const joule_kernel joule_cpu_kernel_qdq_gemm;
extern const joule_kernel joule_cpu_kernel_qdq_gemm_relu;

#endif

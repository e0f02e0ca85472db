/* eval/cpu/quant/tables.c: the quantized kernel families of the cpu backend: the fast table
 * (integer GEMM with weights packed at prepare time, AVX2 quantize loops) and the portable
 * reference table the tests compare it against. Both end with an op_type NULL entry. */
#include "eval/cpu/quant/quant.h"

const joule_kernel joule_cpu_kernels_quant[] = {
    {"QuantizeLinear", "", "cpu.quant.quantize_linear", joule_q_quantize_supports, NULL,
     joule_q_quantize_run, NULL},
    {"DequantizeLinear", "", "cpu.quant.dequantize_linear", joule_q_dequantize_supports, NULL,
     joule_q_dequantize_run, NULL},
    {"DynamicQuantizeLinear", "", "cpu.quant.dynamic_quantize_linear",
     joule_q_dynamic_quantize_supports, NULL, joule_q_dynamic_quantize_run, NULL},
    {"MatMulInteger", "", "cpu.quant.matmul_integer.qgemm", joule_q_matmul_integer_supports,
     joule_q_matmul_integer_prepare, joule_q_matmul_integer_run, joule_q_matmul_destroy},
    {"QLinearMatMul", "", "cpu.quant.qlinear_matmul.qgemm", joule_q_qlinear_matmul_supports,
     joule_q_qlinear_matmul_prepare, joule_q_qlinear_matmul_run, joule_q_matmul_destroy},
    {"ConvInteger", "", "cpu.quant.conv_integer.im2col_qgemm", joule_q_conv_integer_supports,
     joule_q_conv_integer_prepare, joule_q_conv_integer_run, joule_q_conv_free},
    {"QLinearConv", "", "cpu.quant.qlinear_conv.im2col_qgemm", joule_q_qlinear_conv_supports,
     joule_q_qlinear_conv_prepare, joule_q_qlinear_conv_run, joule_q_conv_free},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};

const joule_kernel joule_cpu_kernels_quant_ref[] = {
    {"QuantizeLinear", "", "cpu.quant.ref.quantize_linear", joule_q_quantize_supports, NULL,
     joule_q_quantize_run_ref, NULL},
    {"DequantizeLinear", "", "cpu.quant.ref.dequantize_linear", joule_q_dequantize_supports, NULL,
     joule_q_dequantize_run_ref, NULL},
    {"DynamicQuantizeLinear", "", "cpu.quant.ref.dynamic_quantize_linear",
     joule_q_dynamic_quantize_supports, NULL, joule_q_dynamic_quantize_run_ref, NULL},
    {"MatMulInteger", "", "cpu.quant.ref.matmul_integer", joule_q_matmul_integer_supports, NULL,
     joule_q_matmul_integer_run_ref, NULL},
    {"QLinearMatMul", "", "cpu.quant.ref.qlinear_matmul", joule_q_qlinear_matmul_supports, NULL,
     joule_q_qlinear_matmul_run_ref, NULL},
    {"ConvInteger", "", "cpu.quant.ref.conv_integer", joule_q_conv_integer_supports, NULL,
     joule_q_conv_integer_run_ref, NULL},
    {"QLinearConv", "", "cpu.quant.ref.qlinear_conv", joule_q_qlinear_conv_supports, NULL,
     joule_q_qlinear_conv_run_ref, NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};

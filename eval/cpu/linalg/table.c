/* eval/cpu/linalg/table.c: the fast linalg kernels in preference order. For Conv the specialised
 * paths (depthwise, 1x1) come before the general im2col kernel, which takes every other f32/f16
 * Conv; dtypes or ranks no entry takes fall through to the reference table (ref.c). */
#include "eval/cpu/linalg/linalg.h"

const joule_kernel joule_cpu_kernels_linalg[] = {
    {.op_type = "MatMul", .domain = "", .name = "cpu.matmul.sgemm",
     .supports = joule_fast_matmul_supports, .prepare = joule_fast_matmul_prepare,
     .run = joule_fast_matmul_run, .destroy = joule_fast_linalg_destroy},
    {.op_type = "Gemm", .domain = "", .name = "cpu.gemm.sgemm",
     .supports = joule_fast_gemm_supports, .prepare = joule_fast_gemm_prepare,
     .run = joule_fast_gemm_run, .destroy = joule_fast_linalg_destroy},
    {.op_type = "Conv", .domain = "", .name = "cpu.conv.depthwise",
     .supports = joule_fast_conv_depthwise_supports, .prepare = joule_fast_conv_depthwise_prepare,
     .run = joule_fast_conv_depthwise_run, .destroy = joule_fast_conv_destroy},
    {.op_type = "Conv", .domain = "", .name = "cpu.conv.1x1_sgemm",
     .supports = joule_fast_conv_1x1_supports, .prepare = joule_fast_conv_1x1_prepare,
     .run = joule_fast_conv_1x1_run, .destroy = joule_fast_conv_destroy},
    {.op_type = "Conv", .domain = "", .name = "cpu.conv.im2col_sgemm",
     .supports = joule_fast_conv_im2col_supports, .prepare = joule_fast_conv_im2col_prepare,
     .run = joule_fast_conv_im2col_run, .destroy = joule_fast_conv_destroy},
    {.op_type = "ConvTranspose", .domain = "", .name = "cpu.conv_transpose.sgemm_col2im",
     .supports = joule_fast_conv_transpose_supports,
     .prepare = joule_fast_conv_transpose_prepare, .run = joule_fast_conv_transpose_run,
     .destroy = joule_fast_conv_destroy},
    {.op_type = NULL},
};

/* eval/cpu/pool_norm/registry.c: the table of this family's kernels, in the order the engine
 * tries them. Every entry handles all the dtypes its supports() accepts. */
#include "eval/cpu/pool_norm/pool_norm.h"

const joule_kernel joule_cpu_kernels_pool_norm[] = {
    {"MaxPool", "", "cpu.maxpool", pn_maxpool_supports, pn_pool_prepare, pn_maxpool_run, NULL},
    {"AveragePool", "", "cpu.averagepool", pn_avgpool_supports, pn_pool_prepare, pn_avgpool_run,
     NULL},
    {"GlobalAveragePool", "", "cpu.globalaveragepool", pn_global_pool_supports,
     pn_global_pool_prepare, pn_global_avgpool_run, NULL},
    {"GlobalMaxPool", "", "cpu.globalmaxpool", pn_global_pool_supports, pn_global_pool_prepare,
     pn_global_maxpool_run, NULL},
    {"BatchNormalization", "", "cpu.batchnorm.folded", pn_batchnorm_supports,
     pn_batchnorm_prepare, pn_batchnorm_run, pn_batchnorm_destroy},
    {"LayerNormalization", "", "cpu.layernorm", pn_layernorm_supports, pn_layernorm_prepare,
     pn_layernorm_run, pn_norm_destroy},
    {"InstanceNormalization", "", "cpu.instancenorm", pn_instancenorm_supports,
     pn_instancenorm_prepare, pn_instancenorm_run, NULL},
    {"Softmax", "", "cpu.softmax", pn_softmax_supports, pn_softmax_prepare, pn_softmax_run, NULL},
    {"LogSoftmax", "", "cpu.logsoftmax", pn_softmax_supports, pn_softmax_prepare,
     pn_logsoftmax_run, NULL},
    {"ReduceSum", "", "cpu.reducesum", pn_reduce_supports, pn_reduce_prepare, pn_reduce_run, NULL},
    {"ReduceMean", "", "cpu.reducemean", pn_reduce_supports, pn_reduce_prepare, pn_reduce_run,
     NULL},
    {"ReduceMax", "", "cpu.reducemax", pn_reduce_supports, pn_reduce_prepare, pn_reduce_run, NULL},
    {"ReduceMin", "", "cpu.reducemin", pn_reduce_supports, pn_reduce_prepare, pn_reduce_run, NULL},
    {"ArgMax", "", "cpu.argmax", pn_argmax_supports, pn_argmax_prepare, pn_argmax_run, NULL},
    {"ArgMin", "", "cpu.argmin", pn_argmax_supports, pn_argmax_prepare, pn_argmax_run, NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};

/* eval/cpu/elementwise/table.c: the elementwise family's kernel table, one entry per op in the
 * order of EW_KERNELS (ew.h). Each op has one kernel covering all of its dtypes. */
#include "ew.h"

#define EW_TABLE_ENTRY(Op, op, prep)                                                               \
    {.op_type = #Op,                                                                               \
     .domain = "",                                                                                 \
     .name = "cpu.elementwise." #op,                                                               \
     .supports = ew_##op##_supports,                                                               \
     .prepare = prep,                                                                              \
     .run = ew_##op##_run,                                                                         \
     .destroy = NULL},

const joule_kernel joule_cpu_kernels_elementwise[] = {
    EW_KERNELS(EW_TABLE_ENTRY){.op_type = NULL},
};

/* compress/cleanup_internal.h: the steps of the cleanup pass that live in cleanup_fold.c
 * (constant folding, BatchNormalization folding), called by cleanup.c. Not installed. */
#ifndef JOULE_CLEANUP_INTERNAL_H
#define JOULE_CLEANUP_INTERNAL_H

#include "compress/compress_internal.h"

/* Constant nodes become initializers; nodes whose inputs are all constant are evaluated once with
 * the reference kernels and replaced by their outputs (skipped, with a row, when no kernel
 * exists, the op is random or a DequantizeLinear, or the result would be larger than its inputs). */
joule_status cz_fold_constants(joule_model *m, joule_report *r, joule_error *err);
/* BatchNormalization after a Conv or Gemm whose output it alone reads folds into that layer's
 * weight and bias. */
joule_status cz_fold_batchnorm(joule_model *m, joule_report *r, joule_error *err);
/* Removes v from the graph's value_info list. */
void cz_drop_value_info(joule_graph *g, joule_value *v);

#endif

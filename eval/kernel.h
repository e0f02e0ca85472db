/* eval/kernel.h: what a kernel is. Backends register kernels per op; the engine asks each
 * candidate `supports()` for a node (with its input dtypes and concrete shapes) and takes the
 * first that says yes, so a fast kernel is listed before the portable reference one. Internal. */
#ifndef JOULE_KERNEL_H
#define JOULE_KERNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "joule/graph.h"
#include "joule/status.h"

/* A tensor as a kernel sees it: concrete dims, row-major contiguous data. */
typedef struct joule_view {
    joule_dtype dtype;
    int rank;
    int64_t dims[JOULE_MAX_RANK];
    size_t count;
    void *data; /* NULL at prepare time for inputs that are not constant */
} joule_view;

typedef struct joule_kernel_ctx {
    const joule_node *node;
    int64_t opset;
    int n_in;
    const joule_view *const *in; /* in[i] is NULL when the optional input is omitted */
    int n_out;
    joule_view *const *out;      /* dtype, dims and data already set by the engine */
    void *state;                 /* what prepare() made, or NULL */
    void *scratch;               /* scratch_bytes from prepare(), valid during run only */
    int threads;                 /* >= 1 */
    joule_error *err;
} joule_kernel_ctx;

typedef struct joule_kernel {
    const char *op_type;
    const char *domain; /* "" = ai.onnx */
    const char *name;   /* e.g. "cpu.conv.im2col_sgemm", for reports and tests */
    /* Whether this kernel can run node for these inputs (dtypes and concrete shapes known,
     * data set only for constants). */
    bool (*supports)(const joule_node *node, int64_t opset, int n_in, const joule_view *const *in);
    /* Optional. Called once per plan: constant inputs have data, others only dims. May build a
     * state (pre-packed weights, parsed attributes) and ask for per-run scratch bytes. */
    joule_status (*prepare)(const joule_kernel_ctx *ctx, void **state, size_t *scratch_bytes);
    joule_status (*run)(const joule_kernel_ctx *ctx);
    void (*destroy)(void *state); /* optional */
} joule_kernel;

/* Kernel families of the cpu backend, each a table ending in an entry with op_type == NULL.
 * Fast kernels come first in the registry (eval/cpu/registry.c), reference kernels last. */
extern const joule_kernel joule_cpu_kernels_elementwise[];
extern const joule_kernel joule_cpu_kernels_linalg[];     /* fast: OpenBLAS */
extern const joule_kernel joule_cpu_kernels_linalg_ref[]; /* portable reference */
extern const joule_kernel joule_cpu_kernels_pool_norm[];
extern const joule_kernel joule_cpu_kernels_shape[];
extern const joule_kernel joule_cpu_kernels_quant[];      /* fast int8 */
extern const joule_kernel joule_cpu_kernels_quant_ref[];  /* portable reference */

/* Every cpu kernel in preference order, NULL-terminated list of tables. */
const joule_kernel *const *joule_cpu_kernel_tables(void);
/* First kernel that supports the node, or NULL. With reference_only, fast tables are skipped. */
const joule_kernel *joule_cpu_find_kernel(const joule_node *node, int64_t opset, int n_in,
                                          const joule_view *const *in, bool reference_only);

#endif

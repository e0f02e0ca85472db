/* eval/cpu/registry.c: the cpu backend's kernel families in preference order. Fast kernels
 * (OpenBLAS, int8 SIMD) come first, then the families that have one implementation per op, then
 * the portable reference kernels that tests hold the fast ones to. The engine takes the first
 * kernel whose supports() accepts a node. */
#include <string.h>

#include "eval/kernel.h"

/* Tables whose kernels have a reference twin further down; skipped with reference_only. */
static const joule_kernel *const fast_tables[] = {
    joule_cpu_kernels_linalg,
    joule_cpu_kernels_quant,
};

static const joule_kernel *const tables[] = {
    joule_cpu_kernels_linalg,
    joule_cpu_kernels_quant,
    joule_cpu_kernels_elementwise,
    joule_cpu_kernels_pool_norm,
    joule_cpu_kernels_shape,
    joule_cpu_kernels_linalg_ref,
    joule_cpu_kernels_quant_ref,
    NULL,
};

const joule_kernel *const *joule_cpu_kernel_tables(void)
{
    return tables;
}

static bool is_fast(const joule_kernel *table)
{
    for (size_t i = 0; i < sizeof fast_tables / sizeof fast_tables[0]; i++)
        if (fast_tables[i] == table)
            return true;
    return false;
}

static bool same_domain(const char *a, const char *b)
{
    if (!a || strcmp(a, "ai.onnx") == 0)
        a = "";
    if (!b || strcmp(b, "ai.onnx") == 0)
        b = "";
    return strcmp(a, b) == 0;
}

const joule_kernel *joule_cpu_find_kernel(const joule_node *node, int64_t opset, int n_in,
                                          const joule_view *const *in, bool reference_only)
{
    if (!node || !node->op_type)
        return NULL;
    for (size_t t = 0; tables[t]; t++) {
        if (reference_only && is_fast(tables[t]))
            continue;
        for (const joule_kernel *k = tables[t]; k->op_type; k++) {
            if (strcmp(k->op_type, node->op_type) != 0 || !same_domain(k->domain, node->domain))
                continue;
            if (!k->supports || k->supports(node, opset, n_in, in))
                return k;
        }
    }
    return NULL;
}

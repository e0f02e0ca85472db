/* compress/sparse_storage.c: marks mostly-zero float initializers for saving sparse
 * (formats/onnx_save.c encodes them: COO with int64 linear indices, as a Constant node's
 * sparse_value, which onnx.checker's full_check and ONNX Runtime accept; models whose opset
 * predates sparse_value (< 11) get a graph sparse_initializer instead). Only when that is smaller
 * than the dense tensor: each non-zero costs its value plus 8 bytes of index, so a float32 tensor
 * needs more than 2/3 zeros to shrink. The data in memory stays dense. */
#include <stdio.h>
#include <string.h>

#include "compress/compress_internal.h"
#include "joule/prune.h"

#define PASS "sparse_storage"

void joule_sparse_defaults(joule_sparse_options *o)
{
    o->min_sparsity = 0.5;
}

joule_status joule_sparse_storage(joule_model *m, const joule_sparse_options *opt, joule_report *r,
                                  joule_error *err)
{
    if (!(opt->min_sparsity >= 0 && opt->min_sparsity <= 1))
        return joule_fail(err, JOULE_ERR_INVALID, "sparse_storage: min_sparsity %g is outside [0, 1]",
                          opt->min_sparsity);
    joule_graph *g = m->graph;
    joule_status st = JOULE_OK;
    for (size_t i = 0; i < g->n_initializers && !st; i++) {
        joule_value *v = g->initializers[i];
        const joule_tensor *t = v->data;
        if (!t || (v->flags & JOULE_VALUE_INPUT) || !cz_float_dtype(t->dtype) || t->rank < 1 ||
            t->count == 0)
            continue;
        uint64_t zeros = cz_zeros(t);
        double sparsity = (double)zeros / (double)t->count;
        if (sparsity < opt->min_sparsity || zeros == 0)
            continue;
        size_t es = t->nbytes / t->count, nnz = t->count - (size_t)zeros;
        uint64_t coo = (uint64_t)nnz * (es + 8);
        char note[200];
        joule_layer_change row = {
            .pass = PASS,
            .tensor = v->name,
            .sparsity_before = sparsity,
            .sparsity_after = sparsity,
            .dtype_before = t->dtype,
            .dtype_after = t->dtype,
            .params_before = t->count,
            .params_after = t->count,
            .bytes_before = t->nbytes,
            .note = note,
        };
        if (coo < t->nbytes) {
            v->flags |= JOULE_VALUE_SPARSE | JOULE_VALUE_SPARSE_CONSTANT;
            row.bytes_after = coo;
            snprintf(note, sizeof note, "stored sparse (%s): %zu non-zeros, COO %llu bytes "
                     "instead of %zu", joule_model_opset(m, "") >= 11 ? "Constant sparse_value"
                     : "sparse_initializer", nnz, (unsigned long long)coo, t->nbytes);
        } else {
            row.bytes_after = t->nbytes;
            snprintf(note, sizeof note, "kept dense: COO would take %llu bytes, dense %zu "
                     "(needs more than %.0f%% zeros)", (unsigned long long)coo, t->nbytes,
                     100.0 * 8.0 / (double)(es + 8));
        }
        st = joule_report_add(r, &row, err);
    }
    return st;
}

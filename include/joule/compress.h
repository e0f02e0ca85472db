/* joule/compress.h: compression passes and the pipeline that runs them.
 *
 * A pass transforms the model it is given (callers that need the original load it again) and
 * appends to a report: one row per layer it looked at, saying what changed, or why it left the
 * layer alone. Nothing is dropped silently: an op that cannot be pruned or quantized stays in
 * float and gets a row saying so. The pipeline validates the graph after every pass. */
#ifndef JOULE_COMPRESS_H
#define JOULE_COMPRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "joule/dataset.h"
#include "joule/graph.h"
#include "joule/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One row of a pass report. Strings are copied into the report. */
typedef struct joule_layer_change {
    const char *pass;        /* "prune", "cleanup", "fp16", "int8", ... */
    const char *node;        /* node name (or "op_index" when unnamed) */
    const char *op_type;
    const char *tensor;      /* tensor changed, or NULL */
    double sparsity_before, sparsity_after; /* 0..1 */
    joule_dtype dtype_before, dtype_after;
    uint64_t params_before, params_after;
    uint64_t bytes_before, bytes_after;
    double scale_min, scale_max;   /* quantization scales (0 when not quantized) */
    int64_t zp_min, zp_max;        /* quantization zero points */
    const char *note;        /* free text: "folded into conv1", "left in float: <why>", ... */
} joule_layer_change;

typedef struct joule_report {
    size_t n;
    joule_layer_change *rows;
    void *priv; /* string storage */
} joule_report;

void joule_report_init(joule_report *r);
void joule_report_free(joule_report *r);
/* Appends a copy of row (strings duplicated). */
joule_status joule_report_add(joule_report *r, const joule_layer_change *row, joule_error *err);
/* The report as a JSON array (malloc'd string). */
joule_status joule_report_json(const joule_report *r, char **out, joule_error *err);

#ifdef __cplusplus
}
#endif
#endif

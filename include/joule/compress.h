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
    bool warning;            /* the user should see it: an option that matched nothing, ...
                                (`joule compress` prints these on stderr) */
} joule_layer_change;

typedef struct joule_report {
    size_t n;
    joule_layer_change *rows;
    void *priv; /* string storage */
} joule_report;

void joule_report_init(joule_report *r);
void joule_report_free(joule_report *r);
/* Appends a copy of row (strings duplicated). r may be NULL: passes then keep no rows. */
joule_status joule_report_add(joule_report *r, const joule_layer_change *row, joule_error *err);
/* The report as a JSON array (malloc'd string). */
joule_status joule_report_json(const joule_report *r, char **out, joule_error *err);

/* ---- cleanup ---- */

/* What the cleanup pass does; joule_cleanup_defaults turns everything on. */
typedef struct joule_cleanup_options {
    bool fold_batchnorm;  /* BatchNormalization into the Conv/Gemm before it (sole reader) */
    bool fold_constants;  /* Constant nodes become initializers; nodes whose inputs are all
                             constant are evaluated once (reference kernels) and replaced */
    bool remove_identity; /* Identity and inference-mode Dropout (graph output names kept) */
    bool dedup;           /* initializers equal in dtype, dims and bytes become one */
    bool remove_dead;     /* nodes nothing reads, then values and initializers nothing uses */
} joule_cleanup_options;

void joule_cleanup_defaults(joule_cleanup_options *o);

/* Runs the cleanup steps on m in place, adding a row per change (and per thing left alone, with
 * why). Graphs with subgraph attributes (If/Loop/Scan) are left alone: their bodies may read
 * outer values by name, which the IR does not see. */
joule_status joule_cleanup(joule_model *m, const joule_cleanup_options *opt, joule_report *r,
                           joule_error *err);

#ifdef __cplusplus
}
#endif
#endif

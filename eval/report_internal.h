/* eval/report_internal.h: what the report writers share and nobody else needs: a growable text
 * buffer that remembers the first failed allocation (so writers append freely and check once),
 * escaping for HTML/XML and Markdown, number formatting, and atomic file writes. */
#ifndef JOULE_REPORT_INTERNAL_H
#define JOULE_REPORT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "joule/graph.h"
#include "joule/report.h"
#include "joule/tensor.h"

typedef struct jr_buf {
    char *s;
    size_t len, cap;
    bool failed; /* an allocation failed or a size overflowed; s is then incomplete */
} jr_buf;

void jr_init(jr_buf *b);
void jr_free(jr_buf *b);
void jr_add(jr_buf *b, const char *s);
void jr_addn(jr_buf *b, const char *s, size_t n);
void jr_addf(jr_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s with & < > " ' as entities (safe in element text and in quoted attributes). NULL adds "". */
void jr_add_html(jr_buf *b, const char *s);
/* s for inline Markdown (a table cell, or after other text on a line): backslash before
 * \ ` * _ [ ] | ~, < > & as entities
 * (so raw HTML in a name stays text), control characters and newlines as spaces. */
void jr_add_md(jr_buf *b, const char *s);
/* Hands the text over (malloc'd) or fails with NOMEM naming what. */
joule_status jr_finish(jr_buf *b, char **out, const char *what, joule_error *err);

/* "1.23 MB", "456 kB", "789 B" (decimal units). */
void jr_fmt_bytes(char *out, size_t size, uint64_t n);
/* "1.2M", "34.5k", "999". */
void jr_fmt_count(char *out, size_t size, uint64_t n);
/* A percentage of a fraction with given decimals: "89.86%". */
void jr_fmt_pct(char *out, size_t size, double frac, int decimals);
/* An estimate "v [lo, hi] unit" via fmt for each number; "not measured" when absent. */
void jr_fmt_estimate(char *out, size_t size, const joule_estimate *e, double mul,
                     const char *numfmt, const char *unit);

/* Writes text to a new temporary file beside path (path.tmp.XXXXXX), fsync'd; *tmp_out receives
 * its malloc'd name. The caller renames it into place (or unlinks it). */
joule_status jr_write_temp(const char *path, const char *text, char **tmp_out, joule_error *err);
/* Writes text to path atomically (temporary file, then rename). */
joule_status jr_write_atomic(const char *path, const char *text, joule_error *err);
/* Creates dir and its parents when missing. */
joule_status jr_mkdirs(const char *dir, joule_error *err);
/* Reads a whole file (malloc'd, NUL-terminated). */
joule_status jr_read_file(const char *path, char **out, size_t *len, joule_error *err);

/* Shared by the measuring code (report_measure.c) and sweeps/batches. */
struct joule_info;
/* The model file plus its side file PATH.data. */
uint64_t jr_file_bytes(const char *path);
/* Zero elements of a constant tensor (float, float16, bfloat16, int8, uint8, int32, bool). */
uint64_t jr_count_zeros(const joule_tensor *t);
/* The largest stored constant feeding node n (followed back through DequantizeLinear, Cast,
 * Transpose, Identity), or NULL. */
const joule_value *jr_node_weight(const joule_graph *g, const joule_node *n);
/* The node named name, or one renamed "name_suffix" by a pass; NULL when gone. */
const joule_node *jr_find_node(const joule_graph *g, const char *name);
/* Path, file size, totals and weight sparsity of m (runs joule_model_info; *info_out is the
 * caller's to free). */
joule_status jr_fill_model(joule_report_model *rm, const char *path, joule_model *m,
                           struct joule_info **info_out, joule_error *err);
/* Median latency of one item per run of m with its interval (trials timed blocks). */
joule_status jr_latency_one(const joule_model *m, int threads, size_t trials,
                            joule_estimate *out, joule_error *err);

/* SVG charts (eval/svg.c). Each appends one <svg> element sized width x height px. */

/* A pair of bars (before, after) for one quantity, with 95% whiskers where the estimates have
 * intervals; "not measured" in place of a bar that is missing. valfmt formats one value after
 * multiplying by mul (e.g. 100 for percentages); zero_based false starts the axis near the data
 * (for accuracies near 90%). */
void jr_svg_pair(jr_buf *b, const char *title, const char *unit, const joule_estimate *before,
                 const joule_estimate *after, double mul, const char *valfmt, bool zero_based);
/* Per-layer sparsity before (outline) and after (filled bar, coloured by the dtype after). */
void jr_svg_layers(jr_buf *b, const joule_report_doc *d);
/* Accuracy against file size of the sweep points, frontier joined by a line. */
void jr_svg_frontier(jr_buf *b, const joule_report_doc *d);
/* Colour for a dtype (one per precision: float, float16, int8, ...). */
const char *jr_dtype_colour(joule_dtype t);

#endif

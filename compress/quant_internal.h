/* compress/quant_internal.h: what the quantization passes (fp16.c, quant_dynamic.c,
 * quant_static.c, calib.c) share: scale and zero-point arithmetic, weight quantization, small
 * graph-editing helpers that build the Q/DQ and integer nodes, and the recipe glue. Not
 * installed; the unit tests include it to check the arithmetic against hand-computed values. */
#ifndef JOULE_QUANT_INTERNAL_H
#define JOULE_QUANT_INTERNAL_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compress/compress_internal.h"
#include "joule/compress.h"
#include "joule/graph.h"
#include "joule/pipeline.h"
#include "joule/quantize.h"
#include "joule/status.h"
#include "joule/tensor.h"

/* ---- arithmetic ---- */

/* Scale and zero point mapping [lo, hi] onto the integers [qmin, qmax], the way ONNX Runtime's
 * quantizer does: the range is widened to include 0; symmetric uses [-a, a] with a = max(|lo|,
 * |hi|); scale = (hi - lo) / (qmax - qmin) and zp = round(qmin - lo / scale), clamped. An empty
 * range (hi == lo == 0) or non-finite bounds give scale 1, zero point qmin - lo (0 or qmin). */
void jq_params(double lo, double hi, int qmin, int qmax, bool symmetric, float *scale, int32_t *zp);

/* round(x / scale) + zp (half to even, as QuantizeLinear), saturated to [qmin, qmax]. */
int32_t jq_quantize_one(float x, float scale, int32_t zp, int qmin, int qmax);

/* Symmetric int8 weights: per channel along axis (axis >= 0: scales has w->dims[axis]
 * entries), or one scale (axis < 0: scales is a scalar). Scale = max|w| / 127 (1 for an all-zero
 * channel), values round(w / scale) in [-127, 127]. w must be float32. */
joule_status jq_quantize_weight(const joule_tensor *w, int axis, joule_tensor **q,
                                joule_tensor **scales, joule_error *err);

/* int32 bias: round(b[c] / scale[c]) saturated; *clamped counts saturated entries. b is float32
 * with b->count == n or 1; scale has n entries. Output: [n] int32. */
joule_status jq_quantize_bias(const joule_tensor *b, const float *scale, size_t n,
                              joule_tensor **q, uint64_t *clamped, joule_error *err);

/* float32 -> float16 with clamping: |x| > 65504 becomes +-65504 (*over counts them), nonzero
 * |x| < 2^-24 becomes +-2^-24 (*under counts them). NaN and infinities are kept. */
uint16_t jq_f32_to_f16_clamped(float x, uint64_t *over, uint64_t *under);

/* ---- graph helpers ---- */

bool jq_excluded(const joule_quant_exclude *ex, const joule_node *n);
/* A free value name derived from hint (hint, hint_1, ...), copied into buf. */
void jq_free_name(const joule_graph *g, const char *hint, char *buf, size_t size);
/* A scalar (rank 0) or 1-D tensor of dtype holding v[0..n). n == 0 makes a scalar of v[0]. */
joule_status jq_tensor_from(joule_dtype dtype, const double *v, size_t n, bool rank1,
                            joule_tensor **out, joule_error *err);
/* A new initializer named after hint holding t (taken over, also on failure). */
joule_status jq_add_init(joule_graph *g, const char *hint, joule_tensor *t, joule_value **out,
                         joule_error *err);
/* A new node reading ins and writing outs (NULL entries: omitted), placed before `before` (or
 * after `after` when before is NULL; both NULL: at the end). Outputs named in out_hints get new
 * values (out_vals[i] NULL on input) or existing ones (out_vals[i] set). */
joule_status jq_add_node(joule_graph *g, const char *op, const char *name, int n_in,
                         joule_value *const *ins, int n_out, joule_value **outs,
                         const char *const *out_hints, const joule_node *before,
                         const joule_node *after, joule_node **out, joule_error *err);
/* Gives `to` the name of `from`; `from` gets a fresh name derived from suffix. Used where a
 * value that is a graph output is replaced, so the model's output keeps its name. */
joule_status jq_take_name(joule_graph *g, joule_value *from, joule_value *to, const char *suffix,
                          joule_error *err);
/* Copies Conv's geometry attributes (auto_pad, dilations, group, kernel_shape, pads, strides)
 * from one node to another (ConvInteger, QLinearConv). */
joule_status jq_copy_conv_attrs(joule_graph *g, const joule_node *from, joule_node *to,
                                joule_error *err);
/* Copies dtype-independent shape of src to dst. */
void jq_copy_shape(joule_value *dst, const joule_value *src);
/* Adds a report row. */
joule_status jq_row(joule_report *r, const joule_layer_change *row, joule_error *err);

/* The type check the fp16 pass runs on its result: every node's float inputs (other than slots
 * that are float32 by definition and Cast/CastLike inputs) share one dtype, and every Cast's
 * output dtype equals its `to`. Fails naming the first node that breaks it. Needs inferred
 * dtypes. */
joule_status jq_check_float_types(const joule_model *m, joule_error *err);

/* ---- recipe glue (compress/quant_recipe.c), referenced by compress/pipeline.c ---- */

joule_status jq_fp16_from_json(joule_recipe *r, const cJSON *obj, void *opts, const char *where,
                               joule_error *err);
joule_status jq_dynamic_from_json(joule_recipe *r, const cJSON *obj, void *opts,
                                  const char *where, joule_error *err);
joule_status jq_static_from_json(joule_recipe *r, const cJSON *obj, void *opts,
                                 const char *where, joule_error *err);
void jq_fp16_defaults_v(void *o);
void jq_dynamic_defaults_v(void *o);
void jq_static_defaults_v(void *o);
joule_status jq_fp16_run(joule_model *m, const void *o, joule_report *r, joule_error *err);
joule_status jq_dynamic_run(joule_model *m, const void *o, joule_report *r, joule_error *err);
joule_status jq_static_run(joule_model *m, const void *o, joule_report *r, joule_error *err);

#endif

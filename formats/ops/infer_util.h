/* formats/ops/infer_util.h: helpers the per-family inference files share: access to inputs and
 * outputs, one-line errors naming the node, dims with symbols, broadcasting, axis normalisation,
 * reading integer lists from attributes and known tensors, and "propagated values" (small integer
 * tensors whose elements may be symbolic) for Shape -> Gather -> Concat -> Reshape chains.
 * Also declares every op's infer function for the table in op_table.c. Internal. */
#ifndef JOULE_INFER_UTIL_H
#define JOULE_INFER_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "formats/ops/ops.h"

/* ---- inputs, outputs, errors ---- */

/* Input i when the node has it (present), else NULL. */
const joule_infer_io *ji_in_io(const joule_infer_ctx *c, int i);
/* Input i's shape when its rank is known, else NULL. */
const joule_shape *ji_in_shape(const joule_infer_ctx *c, int i);
joule_dtype ji_in_dtype(const joule_infer_ctx *c, int i);
/* Whether output i exists on the node. */
bool ji_out_present(const joule_infer_ctx *c, int i);
/* Sets output i's dtype and shape (shape NULL: rank unknown). No-op for absent outputs. */
void ji_out_set(joule_infer_ctx *c, int i, joule_dtype dtype, const joule_shape *shape);
/* Every present output gets input 0's dtype and shape. */
void ji_out_like_input(joule_infer_ctx *c, int out, int in);
/* JOULE_ERR_INVALID with "Op node 'name': <message>". */
joule_status ji_infer_fail(const joule_infer_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
joule_status ji_infer_nomem(const joule_infer_ctx *c);

/* ---- checked arithmetic (sizes come from untrusted models) ---- */

/* *r = a + b / a * b; false on int64 overflow. */
static inline bool ji_add(int64_t a, int64_t b, int64_t *r) { return !__builtin_add_overflow(a, b, r); }
static inline bool ji_mul(int64_t a, int64_t b, int64_t *r) { return !__builtin_mul_overflow(a, b, r); }

/* ---- dims and shapes ---- */

joule_dim ji_dim_c(int64_t size);
joule_dim ji_dim_unknown(void);
static inline bool ji_dim_known(joule_dim d) { return d.size >= 0; }
/* Equal for certain: same concrete size, or the same symbol. */
bool ji_dim_same(joule_dim a, joule_dim b);
/* Could be equal: not two different concrete sizes. */
bool ji_dim_compatible(joule_dim a, joule_dim b);
void ji_shape_set_rank(joule_shape *s, int rank); /* rank dims, all unknown */
/* "[2,3]" for messages (static buffer per call site is not used: caller's buf). */
const char *ji_shape_str(const joule_shape *s, char *buf, size_t size);
/* Product of dims[from, to): concrete when all are, the symbol when it is a lone symbol times 1,
 * else unknown. *overflow set when the concrete product exceeds INT64_MAX. */
joule_dim ji_dims_product(const joule_shape *s, int from, int to, bool *overflow);
/* Numpy broadcasting of a and b into out; fails naming the node on incompatible dims. */
joule_status ji_shape_broadcast(const joule_infer_ctx *c, const joule_shape *a, const joule_shape *b,
                             joule_shape *out);
/* Normalises axis (may be negative) into [0, rank); fails naming the node. */
joule_status ji_norm_axis(const joule_infer_ctx *c, int64_t axis, int rank, const char *what,
                       int *out);

/* ---- integer lists ---- */

/* The node's INTS attribute name: *v, *n; false when absent (or not a list). */
bool ji_attr_ints(const joule_node *n, const char *name, const int64_t **v, size_t *count);
/* Elements of a known integer tensor as int64 (at most max); false when t is NULL, not integer,
 * or larger than max. */
bool ji_tensor_ints(const joule_tensor *t, int64_t *out, size_t max, size_t *count);
/* Elements of a known numeric tensor as double (at most max). */
bool ji_tensor_doubles(const joule_tensor *t, double *out, size_t max, size_t *count);
/* Input i's contents as int64 when known (value or fully concrete dims_value). */
bool ji_in_ints(const joule_infer_ctx *c, int i, int64_t *out, size_t max, size_t *count);
/* Element count of input i when its shape is concrete (e.g. a 1-D "axes" input), else -1. */
int64_t ji_in_len(const joule_infer_ctx *c, int i);

/* ---- propagated values ---- */

/* A small integer (or bool) tensor known element by element: e[k].size is the value, or
 * JOULE_INFER_UNKNOWN with an optional symbol. */
typedef struct ji_pv {
    joule_dtype dtype;
    int rank;
    int64_t dims[JOULE_MAX_RANK];
    size_t n;
    joule_dim *e; /* n elements: small[] or heap */
    joule_dim small[JOULE_MAX_RANK];
} ji_pv;

static inline bool ji_pv_known(joule_dim d) { return d.size != JOULE_INFER_UNKNOWN; }
static inline joule_dim ji_pv_c(int64_t v) { joule_dim d = {v, NULL}; return d; }
static inline joule_dim ji_pv_unknown(const char *sym) { joule_dim d = {JOULE_INFER_UNKNOWN, sym}; return d; }
/* Loads input i (value tensor of an integer/bool type up to JOULE_INFER_MAX_PROPAGATE elements,
 * or dims_value). false when nothing is known. */
bool ji_pv_load(const joule_infer_ctx *c, int i, ji_pv *p);
/* An empty ji_pv of dtype with the given shape (elements unknown). false on allocation failure or
 * more than JOULE_INFER_MAX_PROPAGATE elements. */
bool ji_pv_init(ji_pv *p, joule_dtype dtype, int rank, const int64_t *dims);
void ji_pv_free(ji_pv *p);
/* Gives p to output i: a tensor in out_values when every element is concrete, else a dims_value
 * when small enough; frees p. */
joule_status ji_pv_store(joule_infer_ctx *c, int i, ji_pv *p);
/* Whether p has exactly shape s (a concrete shape). */
bool ji_pv_matches(const ji_pv *p, const joule_shape *s);
/* A ji_pv's shape as a joule_shape (all concrete). */
void ji_pv_shape(const ji_pv *p, joule_shape *s);
/* The dim an element stands for when used as a size (concrete >= 0, or the symbol). */
joule_dim ji_pv_as_dim(joule_dim e);

/* ---- infer functions, by family ---- */

/* infer_elementwise.c */
joule_status ji_unary(joule_infer_ctx *c);
joule_status ji_binary(joule_infer_ctx *c);       /* arithmetic: Add Sub Mul Div Pow Mod ... */
joule_status ji_compare(joule_infer_ctx *c);      /* -> bool: Equal Less Greater And Or Xor */
joule_status ji_variadic(joule_infer_ctx *c);     /* Min Max Sum Mean */
joule_status ji_where(joule_infer_ctx *c);
joule_status ji_not(joule_infer_ctx *c);
joule_status ji_prelu(joule_infer_ctx *c);
joule_status ji_clip(joule_infer_ctx *c);
joule_status ji_isnan(joule_infer_ctx *c);        /* IsNaN IsInf -> bool */
joule_status ji_bitshift(joule_infer_ctx *c);
/* infer_linalg.c */
joule_status ji_matmul(joule_infer_ctx *c);
joule_status ji_matmul_integer(joule_infer_ctx *c);
joule_status ji_qlinear_matmul(joule_infer_ctx *c);
joule_status ji_gemm(joule_infer_ctx *c);
joule_status ji_conv(joule_infer_ctx *c);
joule_status ji_conv_integer(joule_infer_ctx *c);
joule_status ji_qlinear_conv(joule_infer_ctx *c);
joule_status ji_conv_transpose(joule_infer_ctx *c);
/* Spatial output size for Conv/pools (shared with infer_pool_norm.c). */
joule_status ji_conv_spatial(const joule_infer_ctx *c, const joule_shape *x, const int64_t *kernel,
                          int n_sp, bool ceil_mode, joule_shape *y);
/* infer_pool_norm.c */
joule_status ji_pool(joule_infer_ctx *c);         /* MaxPool AveragePool LpPool */
joule_status ji_global_pool(joule_infer_ctx *c);
joule_status ji_batchnorm(joule_infer_ctx *c);
joule_status ji_layernorm(joule_infer_ctx *c);
joule_status ji_instnorm(joule_infer_ctx *c);     /* also LRN, MeanVarianceNormalization */
joule_status ji_softmax(joule_infer_ctx *c);      /* Softmax LogSoftmax Hardmax */
/* infer_shape.c */
joule_status ji_reshape(joule_infer_ctx *c);
joule_status ji_flatten(joule_infer_ctx *c);
joule_status ji_transpose(joule_infer_ctx *c);
joule_status ji_squeeze(joule_infer_ctx *c);
joule_status ji_unsqueeze(joule_infer_ctx *c);
joule_status ji_expand(joule_infer_ctx *c);
joule_status ji_tile(joule_infer_ctx *c);
joule_status ji_pad(joule_infer_ctx *c);
joule_status ji_resize(joule_infer_ctx *c);
joule_status ji_depth_to_space(joule_infer_ctx *c);
joule_status ji_space_to_depth(joule_infer_ctx *c);
/* infer_gather.c */
joule_status ji_concat(joule_infer_ctx *c);
joule_status ji_split(joule_infer_ctx *c);
joule_status ji_slice(joule_infer_ctx *c);
joule_status ji_gather(joule_infer_ctx *c);
joule_status ji_gather_elements(joule_infer_ctx *c);
joule_status ji_topk(joule_infer_ctx *c);
joule_status ji_same_as_data(joule_infer_ctx *c); /* ScatterND, ScatterElements, Trilu ... */
/* infer_data.c */
joule_status ji_shape_op(joule_infer_ctx *c);
joule_status ji_size(joule_infer_ctx *c);
joule_status ji_constant(joule_infer_ctx *c);
joule_status ji_constant_of_shape(joule_infer_ctx *c);
joule_status ji_range(joule_infer_ctx *c);
joule_status ji_cast(joule_infer_ctx *c);
joule_status ji_cast_like(joule_infer_ctx *c);
joule_status ji_identity(joule_infer_ctx *c);
joule_status ji_dropout(joule_infer_ctx *c);
joule_status ji_eye_like(joule_infer_ctx *c);
joule_status ji_onehot(joule_infer_ctx *c);
joule_status ji_nonzero(joule_infer_ctx *c);
/* infer_extra.c */
joule_status ji_gather_nd(joule_infer_ctx *c);
joule_status ji_det(joule_infer_ctx *c);
joule_status ji_einsum(joule_infer_ctx *c);
joule_status ji_upsample(joule_infer_ctx *c);
joule_status ji_recurrent(joule_infer_ctx *c);     /* RNN GRU LSTM */
joule_status ji_nms(joule_infer_ctx *c);
joule_status ji_roi_align(joule_infer_ctx *c);
joule_status ji_grid_sample(joule_infer_ctx *c);
joule_status ji_max_unpool(joule_infer_ctx *c);
joule_status ji_compress(joule_infer_ctx *c);
joule_status ji_unique(joule_infer_ctx *c);
joule_status ji_random_like(joule_infer_ctx *c);   /* RandomUniformLike RandomNormalLike Bernoulli */
joule_status ji_random(joule_infer_ctx *c);        /* RandomUniform RandomNormal */
/* infer_reduce.c */
joule_status ji_reduce(joule_infer_ctx *c);
joule_status ji_argmax(joule_infer_ctx *c);
joule_status ji_cumsum(joule_infer_ctx *c);
/* infer_quant.c */
joule_status ji_quantize(joule_infer_ctx *c);
joule_status ji_dequantize(joule_infer_ctx *c);
joule_status ji_dynamic_quantize(joule_infer_ctx *c);

#endif

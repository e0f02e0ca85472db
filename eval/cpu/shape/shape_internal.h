/* eval/cpu/shape/shape_internal.h: what the data-movement kernels share. These ops move elements
 * without looking at their values, so they work on any dtype by element size. The helpers here
 * read integer inputs defensively (a model file decides their values), name the node in every
 * error, and do the copying: a strided copy that merges contiguous dims and tiles transposes,
 * and a mapped copy that gathers through per-axis index tables (Pad, nearest Resize).
 * Internal to this folder; the kernel table lives in shape.c. */
#ifndef JOULE_CPU_SHAPE_INTERNAL_H
#define JOULE_CPU_SHAPE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "eval/kernel.h"

/* Tile views a rank-r tensor as 2r dims; everything else stays within JOULE_MAX_RANK. */
#define JSK_MAX_RANK (2 * JOULE_MAX_RANK)
/* Largest element the kernels move (complex128). */
#define JSK_MAX_ELEM 16

/* Bytes per element for dtypes whose elements are whole bytes (not string, not 4-bit), else 0. */
size_t jsk_elem_size(joule_dtype t);
/* Whether the tensor's bytes can be copied wholesale (any storable type except string). */
bool jsk_bytes_copyable(joule_dtype t);
/* Whether t is a valid index type (int32 or int64). */
bool jsk_is_index_type(joule_dtype t);

/* Fails with "node 'name' (Op): <message>". */
joule_status jsk_fail(const joule_kernel_ctx *ctx, joule_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reads the elements of an int32/int64 input (scalar or 1-D) into out[0..cap). Fails when the
 * input has no data, another dtype, or more than cap elements. *n gets the count. */
joule_status jsk_read_ints(const joule_kernel_ctx *ctx, const joule_view *v, const char *what,
                           int64_t *out, size_t cap, size_t *n);
/* Element i of an int32/int64 view (data present, i in range: the caller checks). */
int64_t jsk_index_at(const joule_view *v, size_t i);
/* Copies an int64 list attribute (ints) into out[0..cap); *n = count, *found = present. */
joule_status jsk_attr_ints(const joule_kernel_ctx *ctx, const char *name, int64_t *out, size_t cap,
                           size_t *n, bool *found);
/* Normalizes axis (negative counts from the end) into [0, rank); fails naming `what`. */
joule_status jsk_axis(const joule_kernel_ctx *ctx, int64_t axis, int rank, const char *what,
                      int *out);
/* Fails unless output i has this dtype and these dims (a disagreement with shape inference
 * would otherwise write past the buffer). */
joule_status jsk_check_out(const joule_kernel_ctx *ctx, int i, joule_dtype dtype, int rank,
                           const int64_t *dims);
/* Whether attribute `name` is a string equal to s (absent: dflt is compared). */
bool jsk_attr_is(const joule_node *n, const char *name, const char *dflt, const char *s);
/* Formats dims as "[2,3,4]". */
const char *jsk_dims_str(int rank, const int64_t *dims, char *buf, size_t size);

/* Row-major element strides of dims. */
void jsk_strides(int rank, const int64_t *dims, int64_t *strides);

/* dst (contiguous, row-major over dims) receives src[sum idx[k] * strides[k]], strides in
 * elements, possibly 0 (broadcast) or negative (reversed slices). Contiguous dims are merged,
 * a stride-1 innermost run becomes memcpy, and a transposed innermost pair (the 2-D transpose,
 * NCHW<->NHWC, ...) is copied in cache tiles. threads > 1 splits large copies (OpenMP). */
void jsk_strided_copy(void *dst, const void *src, size_t esize, int rank, const int64_t *dims,
                      const int64_t *strides, int threads);

/* dst (row-major over dims) receives src[sum maps[k][idx[k]] * strides[k]], or *fill where any
 * maps[k][idx[k]] < 0. Runs of consecutive indices in the innermost map are memcpy'd; run_buf
 * (dims[rank-1] entries, or NULL to copy element by element) holds their lengths. */
void jsk_mapped_copy(void *dst, const void *src, size_t esize, int rank, const int64_t *dims,
                     const int64_t *strides, const int64_t *const *maps, const void *fill,
                     int64_t *run_buf, int threads);

/* Per-run index tables live in engine-planned scratch, so runs do not allocate. prepare()
 * records the bytes it asked for in a small state; jsk_scratch() hands out ctx->scratch when
 * that plan covers `bytes`, else (a caller that skipped prepare) a malloc'd buffer in *owned. */
joule_status jsk_prepare_scratch(const joule_kernel_ctx *ctx, size_t bytes, void **state,
                                 size_t *scratch_bytes);
void jsk_destroy_state(void *state);
void *jsk_scratch(const joule_kernel_ctx *ctx, size_t bytes, void **owned);
/* Bytes of int64 index tables for dims: one entry per output index of every axis, plus the
 * innermost axis again (the run table of jsk_mapped_copy). false on overflow. */
bool jsk_table_bytes(int rank, const int64_t *dims, size_t per_entry, size_t *bytes);

/* Writes count copies of the esize-byte element elem to dst. */
void jsk_fill(void *dst, const void *elem, size_t esize, size_t count);

/* ---- kernels (one group per file) ---- */
bool jsk_copy_supports(const joule_node *node, int64_t opset, int n_in,
                       const joule_view *const *in);
joule_status jsk_copy_run(const joule_kernel_ctx *ctx);
bool jsk_dropout_supports(const joule_node *node, int64_t opset, int n_in,
                          const joule_view *const *in);
joule_status jsk_dropout_run(const joule_kernel_ctx *ctx);

bool jsk_transpose_supports(const joule_node *node, int64_t opset, int n_in,
                            const joule_view *const *in);
joule_status jsk_transpose_run(const joule_kernel_ctx *ctx);

bool jsk_concat_supports(const joule_node *node, int64_t opset, int n_in,
                         const joule_view *const *in);
joule_status jsk_concat_run(const joule_kernel_ctx *ctx);
bool jsk_split_supports(const joule_node *node, int64_t opset, int n_in,
                        const joule_view *const *in);
joule_status jsk_split_run(const joule_kernel_ctx *ctx);

bool jsk_slice_supports(const joule_node *node, int64_t opset, int n_in,
                        const joule_view *const *in);
joule_status jsk_slice_run(const joule_kernel_ctx *ctx);

bool jsk_gather_supports(const joule_node *node, int64_t opset, int n_in,
                         const joule_view *const *in);
joule_status jsk_gather_run(const joule_kernel_ctx *ctx);

bool jsk_gather_elements_supports(const joule_node *node, int64_t opset, int n_in,
                                  const joule_view *const *in);
joule_status jsk_gather_elements_run(const joule_kernel_ctx *ctx);
bool jsk_scatter_elements_supports(const joule_node *node, int64_t opset, int n_in,
                                   const joule_view *const *in);
joule_status jsk_scatter_elements_run(const joule_kernel_ctx *ctx);
bool jsk_scatter_nd_supports(const joule_node *node, int64_t opset, int n_in,
                             const joule_view *const *in);
joule_status jsk_scatter_nd_run(const joule_kernel_ctx *ctx);

bool jsk_reverse_sequence_supports(const joule_node *node, int64_t opset, int n_in,
                                   const joule_view *const *in);
joule_status jsk_reverse_sequence_run(const joule_kernel_ctx *ctx);
bool jsk_topk_supports(const joule_node *node, int64_t opset, int n_in,
                       const joule_view *const *in);
joule_status jsk_topk_prepare(const joule_kernel_ctx *ctx, void **state, size_t *scratch_bytes);
joule_status jsk_topk_run(const joule_kernel_ctx *ctx);
bool jsk_trilu_supports(const joule_node *node, int64_t opset, int n_in,
                        const joule_view *const *in);
joule_status jsk_trilu_run(const joule_kernel_ctx *ctx);
bool jsk_eye_like_supports(const joule_node *node, int64_t opset, int n_in,
                           const joule_view *const *in);
joule_status jsk_eye_like_run(const joule_kernel_ctx *ctx);
bool jsk_one_hot_supports(const joule_node *node, int64_t opset, int n_in,
                          const joule_view *const *in);
joule_status jsk_one_hot_run(const joule_kernel_ctx *ctx);

bool jsk_shape_supports(const joule_node *node, int64_t opset, int n_in,
                        const joule_view *const *in);
joule_status jsk_shape_run(const joule_kernel_ctx *ctx);
joule_status jsk_size_run(const joule_kernel_ctx *ctx);

bool jsk_expand_supports(const joule_node *node, int64_t opset, int n_in,
                         const joule_view *const *in);
joule_status jsk_expand_run(const joule_kernel_ctx *ctx);
bool jsk_tile_supports(const joule_node *node, int64_t opset, int n_in,
                       const joule_view *const *in);
joule_status jsk_tile_run(const joule_kernel_ctx *ctx);

bool jsk_pad_supports(const joule_node *node, int64_t opset, int n_in,
                      const joule_view *const *in);
joule_status jsk_pad_prepare(const joule_kernel_ctx *ctx, void **state, size_t *scratch_bytes);
joule_status jsk_pad_run(const joule_kernel_ctx *ctx);

bool jsk_resize_supports(const joule_node *node, int64_t opset, int n_in,
                         const joule_view *const *in);
joule_status jsk_resize_prepare(const joule_kernel_ctx *ctx, void **state, size_t *scratch_bytes);
joule_status jsk_resize_run(const joule_kernel_ctx *ctx);

bool jsk_depth_to_space_supports(const joule_node *node, int64_t opset, int n_in,
                                 const joule_view *const *in);
joule_status jsk_depth_to_space_run(const joule_kernel_ctx *ctx);
joule_status jsk_space_to_depth_run(const joule_kernel_ctx *ctx);

bool jsk_constant_supports(const joule_node *node, int64_t opset, int n_in,
                           const joule_view *const *in);
joule_status jsk_constant_run(const joule_kernel_ctx *ctx);
bool jsk_constant_of_shape_supports(const joule_node *node, int64_t opset, int n_in,
                                    const joule_view *const *in);
joule_status jsk_constant_of_shape_run(const joule_kernel_ctx *ctx);
bool jsk_range_supports(const joule_node *node, int64_t opset, int n_in,
                        const joule_view *const *in);
joule_status jsk_range_run(const joule_kernel_ctx *ctx);

#endif

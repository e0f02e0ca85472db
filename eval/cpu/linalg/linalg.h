/* eval/cpu/linalg/linalg.h: what the linalg kernels (MatMul, Gemm, Conv, ConvTranspose) share:
 * attribute parsing and output shapes, element load/store for the dtypes they take, and the
 * kernel functions the two tables (table.c: fast, ref.c: reference) list. Internal header. */
#ifndef JOULE_CPU_LINALG_H
#define JOULE_CPU_LINALG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "eval/kernel.h"
#include "joule/dtype.h"
#include "joule/graph.h"
#include "joule/status.h"

/* Spatial ranks Conv/ConvTranspose accept (1D, 2D, 3D). */
#define JOULE_CONV_MAX_SPATIAL 3

/* A Conv or ConvTranspose, normalized to three spatial dims: a 1D/2D op gets leading spatial
 * dims of size 1 (kernel 1, stride 1, dilation 1, no padding), so every loop is 3D.
 * Conv:          in -> out with  in_pos  = out_pos * stride + k * dilation - pad_begin.
 * ConvTranspose: in -> out with  out_pos = in_pos  * stride + k * dilation - pad_begin. */
typedef struct joule_conv_params {
    bool transpose;
    int nsp;          /* spatial rank of the op (1..3) */
    int64_t batch;    /* N */
    int64_t c_in;     /* channels of X */
    int64_t c_out;    /* channels of Y */
    int64_t group;
    int64_t in[3];    /* spatial dims of X */
    int64_t out[3];   /* spatial dims of Y */
    int64_t k[3];     /* kernel spatial dims */
    int64_t stride[3];
    int64_t dil[3];
    int64_t pad_begin[3]; /* may be negative for ConvTranspose with output_shape */
    int64_t pad_end[3];
    int64_t in_size;  /* in[0]*in[1]*in[2] */
    int64_t out_size; /* out[0]*out[1]*out[2] */
    int64_t k_size;   /* k[0]*k[1]*k[2] */
} joule_conv_params;

/* Parses a Conv (transpose false) or ConvTranspose node's attributes against the dims of X and
 * W and computes pads and output spatial dims. Fails naming the node on malformed attributes or
 * mismatching channel counts. */
joule_status joule_conv_params_init(const joule_node *node, bool transpose, const joule_view *x,
                                    const joule_view *w, const joule_view *bias,
                                    joule_conv_params *p, joule_error *err);
/* Writes Y's full dims (rank = X's rank) for p. */
void joule_conv_out_dims(const joule_conv_params *p, int64_t *dims);

/* Gemm: op(A) is [m,k], op(B) is [k,n]. C (optional) broadcasts to [m,n]. */
typedef struct joule_gemm_params {
    bool trans_a, trans_b;
    float alpha, beta;
    int64_t m, n, k;
    bool has_c;
    int64_t c_rows, c_cols; /* C seen as [c_rows, c_cols] with c_rows in {1,m}, c_cols in {1,n} */
} joule_gemm_params;

joule_status joule_gemm_params_init(const joule_node *node, const joule_view *a,
                                    const joule_view *b, const joule_view *c,
                                    joule_gemm_params *p, joule_error *err);

/* MatMul with numpy semantics: 1-D operands are promoted and the promoted dim dropped; batch
 * dims broadcast. The batch loop visits `batches` products of [m,k] x [k,n]; a_off/b_off give the
 * element offset of each product's operands (computed by joule_matmul_offsets). */
typedef struct joule_matmul_params {
    int64_t m, n, k;
    int64_t batches;
    int out_rank;
    int64_t out_dims[JOULE_MAX_RANK];
    int batch_rank;                     /* rank of the broadcast batch dims */
    int64_t batch_dims[JOULE_MAX_RANK];
    int64_t a_bstride[JOULE_MAX_RANK];  /* per batch dim, in units of matrices; 0 = broadcast */
    int64_t b_bstride[JOULE_MAX_RANK];
    int64_t a_batches, b_batches;       /* matrices stored in A and B */
} joule_matmul_params;

joule_status joule_matmul_params_init(const joule_node *node, const joule_view *a,
                                      const joule_view *b, joule_matmul_params *p,
                                      joule_error *err);
/* Matrix indices into A and B of batch number i (0 <= i < p->batches). */
void joule_matmul_batch(const joule_matmul_params *p, int64_t i, int64_t *a_mat, int64_t *b_mat);

/* Fails naming the node when out's dims differ from the expected ones. */
joule_status joule_linalg_check_out(const joule_node *node, const joule_view *out, int rank,
                                    const int64_t *dims, joule_error *err);

/* a * b into *out; false on overflow or a negative operand. */
static inline bool joule_mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a)
        return false;
    *out = a * b;
    return true;
}

/* Element access for the float dtypes the linalg kernels take (f32, f16, f64). */
static inline double joule_linalg_load(joule_dtype t, const void *p, size_t i)
{
    switch (t) {
    case JOULE_F64:
        return ((const double *)p)[i];
    case JOULE_F16:
        return joule_f16_to_f32(((const uint16_t *)p)[i]);
    default:
        return ((const float *)p)[i];
    }
}

static inline void joule_linalg_store(joule_dtype t, void *p, size_t i, double v)
{
    switch (t) {
    case JOULE_F64:
        ((double *)p)[i] = v;
        break;
    case JOULE_F16:
        ((uint16_t *)p)[i] = joule_f32_to_f16((float)v);
        break;
    default:
        ((float *)p)[i] = (float)v;
        break;
    }
}

/* f16 <-> f32 array conversion. */
void joule_linalg_f16_to_f32(const uint16_t *src, float *dst, size_t n);
void joule_linalg_f32_to_f16(const float *src, uint16_t *dst, size_t n);

/* Carves 64-byte aligned pieces out of one scratch block: call with base NULL to measure. */
typedef struct joule_scratch_carver {
    unsigned char *base;
    size_t used;
    bool overflow;
} joule_scratch_carver;

void *joule_scratch_take(joule_scratch_carver *c, size_t bytes);

/* ---- reference kernels (ref.c) ---- */
bool joule_ref_matmul_supports(const joule_node *node, int64_t opset, int n_in,
                               const joule_view *const *in);
bool joule_ref_gemm_supports(const joule_node *node, int64_t opset, int n_in,
                             const joule_view *const *in);
bool joule_ref_conv_supports(const joule_node *node, int64_t opset, int n_in,
                             const joule_view *const *in);
joule_status joule_ref_matmul_run(const joule_kernel_ctx *ctx);
joule_status joule_ref_gemm_run(const joule_kernel_ctx *ctx);
joule_status joule_ref_conv_run(const joule_kernel_ctx *ctx);
joule_status joule_ref_conv_transpose_run(const joule_kernel_ctx *ctx);

/* ---- fast kernels (matmul.c, conv.c, conv_transpose.c) ---- */
bool joule_fast_matmul_supports(const joule_node *node, int64_t opset, int n_in,
                                const joule_view *const *in);
joule_status joule_fast_matmul_prepare(const joule_kernel_ctx *ctx, void **state,
                                       size_t *scratch_bytes);
joule_status joule_fast_matmul_run(const joule_kernel_ctx *ctx);
bool joule_fast_gemm_supports(const joule_node *node, int64_t opset, int n_in,
                              const joule_view *const *in);
joule_status joule_fast_gemm_prepare(const joule_kernel_ctx *ctx, void **state,
                                     size_t *scratch_bytes);
joule_status joule_fast_gemm_run(const joule_kernel_ctx *ctx);
void joule_fast_linalg_destroy(void *state);

bool joule_fast_conv_depthwise_supports(const joule_node *node, int64_t opset, int n_in,
                                        const joule_view *const *in);
bool joule_fast_conv_1x1_supports(const joule_node *node, int64_t opset, int n_in,
                                  const joule_view *const *in);
bool joule_fast_conv_im2col_supports(const joule_node *node, int64_t opset, int n_in,
                                     const joule_view *const *in);
joule_status joule_fast_conv_depthwise_prepare(const joule_kernel_ctx *ctx, void **state,
                                               size_t *scratch_bytes);
joule_status joule_fast_conv_1x1_prepare(const joule_kernel_ctx *ctx, void **state,
                                         size_t *scratch_bytes);
joule_status joule_fast_conv_im2col_prepare(const joule_kernel_ctx *ctx, void **state,
                                            size_t *scratch_bytes);
joule_status joule_fast_conv_depthwise_run(const joule_kernel_ctx *ctx);
joule_status joule_fast_conv_1x1_run(const joule_kernel_ctx *ctx);
joule_status joule_fast_conv_im2col_run(const joule_kernel_ctx *ctx);
void joule_fast_conv_destroy(void *state);

bool joule_fast_conv_transpose_supports(const joule_node *node, int64_t opset, int n_in,
                                        const joule_view *const *in);
joule_status joule_fast_conv_transpose_prepare(const joule_kernel_ctx *ctx, void **state,
                                               size_t *scratch_bytes);
joule_status joule_fast_conv_transpose_run(const joule_kernel_ctx *ctx);

/* ---- shared by conv.c and conv_transpose.c ---- */

/* What the fast Conv/ConvTranspose kernels keep between runs. */
typedef struct joule_conv_state {
    float *w32, *b32;     /* constant f16 weights/bias widened once, else NULL */
    int64_t tile;         /* im2col/col2im columns per sgemm */
    size_t scratch_bytes; /* what prepare asked for, checked again in run */
    /* depthwise on small planes: per-thread floats (padded input plane + flat output) at
     * dw_offset bytes into scratch, for dw_threads threads; 0 when that path is off */
    int64_t dw_floats;
    size_t dw_offset;
    int dw_threads;
} joule_conv_state;

/* f32 buffers a run works on: the inputs themselves for f32, scratch copies for f16. */
typedef struct joule_conv_bufs {
    const float *x, *w, *b; /* b NULL without bias */
    float *y;
    float *col;             /* col_floats from scratch, or NULL */
    float *y32;             /* f16 only: where y is computed before narrowing */
} joule_conv_bufs;

/* prepare() of every fast Conv/ConvTranspose kernel: parses, widens constant f16 weights and
 * asks for scratch (f16 staging plus col_rows x tile floats when col_rows > 0). */
joule_status joule_conv_prepare_common(const joule_kernel_ctx *ctx, bool transpose,
                                       int64_t col_rows, void **state, size_t *scratch_bytes);
/* run(): parses and checks the output into p, carves scratch and widens f16 inputs into b. */
joule_status joule_conv_run_begin(const joule_kernel_ctx *ctx, bool transpose, int64_t col_rows,
                                  joule_conv_params *p, joule_conv_bufs *b);
/* Narrows y back to f16 when the op is f16. */
void joule_conv_run_end(const joule_kernel_ctx *ctx, const joule_conv_bufs *b);
/* Fills each channel of y ([batch][c][size]) with its bias, or zeros. */
void joule_conv_fill_bias(float *y, int64_t channels, int64_t size, const float *bias);

/* ceil(a / b) for b > 0. */
static inline int64_t joule_ceil_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && a > 0) ? q + 1 : q;
}

/* The t in [0, seg) with 0 <= (base + t) * s + off < limit, as [*lo, *hi). */
static inline void joule_valid_range(int64_t base, int64_t s, int64_t off, int64_t limit,
                                     int64_t seg, int64_t *lo, int64_t *hi)
{
    int64_t l = joule_ceil_div(-off, s) - base, h = joule_ceil_div(limit - off, s) - base;
    if (l < 0)
        l = 0;
    if (h > seg)
        h = seg;
    if (h < l)
        h = l;
    *lo = l;
    *hi = h;
}

/* OpenMP parallel-for over a loop when available (HAVE_OPENMP from config.h). */
#define JOULE_LINALG_PRAGMA(x) _Pragma(#x)
#if defined(HAVE_OPENMP) && HAVE_OPENMP
#define JOULE_LINALG_OMP_FOR(threads)                                                              \
    JOULE_LINALG_PRAGMA(omp parallel for num_threads(threads) schedule(static))
#else
#define JOULE_LINALG_OMP_FOR(threads)
#endif
/* Inner loops without loop-carried dependencies: vectorized even at -O2, whose cost model
 * (GCC 12: very-cheap) refuses loops that need a remainder or an aliasing check. */
#if defined(HAVE_OPENMP) && HAVE_OPENMP
#define JOULE_LINALG_SIMD JOULE_LINALG_PRAGMA(omp simd)
#else
#define JOULE_LINALG_SIMD
#endif

#endif

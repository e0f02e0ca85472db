/* eval/cpu/linalg/matmul.c: fast MatMul and Gemm on OpenBLAS (sgemm for f32, dgemm for f64).
 * f16 operands are widened to f32 in scratch, multiplied and narrowed back; a constant f16 B is
 * widened once in prepare(). MatMul folds the batch into one sgemm when B is shared by every
 * batch (the common x @ W case), and otherwise calls sgemm per broadcast batch. */
#include "eval/cpu/linalg/linalg.h"

#include <cblas.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

typedef struct mm_state {
    float *b32;           /* widened constant B (f16 only), else NULL */
    size_t scratch_bytes; /* what prepare asked for, checked again in run */
} mm_state;

/* Row-major C = alpha * op(A) op(B) + beta * C in f32 or f64; all sizes fit in int. */
static void gemm_call(joule_dtype t, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                      double alpha, const void *a, int64_t lda, const void *b, int64_t ldb,
                      double beta, void *c, int64_t ldc)
{
    enum CBLAS_TRANSPOSE cta = ta ? CblasTrans : CblasNoTrans;
    enum CBLAS_TRANSPOSE ctb = tb ? CblasTrans : CblasNoTrans;
    if (t == JOULE_F64)
        cblas_dgemm(CblasRowMajor, cta, ctb, (blasint)m, (blasint)n, (blasint)k, alpha, a,
                    (blasint)lda, b, (blasint)ldb, beta, c, (blasint)ldc);
    else
        cblas_sgemm(CblasRowMajor, cta, ctb, (blasint)m, (blasint)n, (blasint)k, (float)alpha,
                    a, (blasint)lda, b, (blasint)ldb, (float)beta, c, (blasint)ldc);
}

static bool fast_dtype(joule_dtype t)
{
    return t == JOULE_F32 || t == JOULE_F16 || t == JOULE_F64;
}

static bool fits_int(int64_t v)
{
    return v >= 0 && v <= INT_MAX;
}

void joule_fast_linalg_destroy(void *state)
{
    mm_state *s = state;
    if (s)
        free(s->b32);
    free(s);
}

/* Widens a constant f16 B into a new state (or makes an empty state). */
static joule_status make_state(const joule_kernel_ctx *ctx, const joule_view *b, mm_state **out)
{
    mm_state *s = calloc(1, sizeof *s);
    if (!s)
        return joule_fail(ctx->err, JOULE_ERR_NOMEM, "node '%s' (%s): out of memory",
                          ctx->node->name, ctx->node->op_type);
    if (b->dtype == JOULE_F16 && b->data) {
        s->b32 = malloc((b->count ? b->count : 1) * sizeof *s->b32);
        if (!s->b32) {
            free(s);
            return joule_fail(ctx->err, JOULE_ERR_NOMEM, "node '%s' (%s): out of memory",
                              ctx->node->name, ctx->node->op_type);
        }
        joule_linalg_f16_to_f32(b->data, s->b32, b->count);
    }
    *out = s;
    return JOULE_OK;
}

/* f16 staging: f32 copies of A, B (unless pre-widened), C and Y. */
typedef struct mm_stage {
    float *a, *b, *c, *y;
} mm_stage;

static size_t carve_stage(joule_scratch_carver *cv, const joule_kernel_ctx *ctx,
                          const mm_state *s, const joule_view *c, size_t y_count, mm_stage *st)
{
    memset(st, 0, sizeof *st);
    if (ctx->in[0]->dtype != JOULE_F16)
        return cv->used;
    st->a = joule_scratch_take(cv, ctx->in[0]->count * sizeof(float));
    if (!s || !s->b32)
        st->b = joule_scratch_take(cv, ctx->in[1]->count * sizeof(float));
    if (c)
        st->c = joule_scratch_take(cv, c->count * sizeof(float));
    st->y = joule_scratch_take(cv, y_count * sizeof(float));
    return cv->used;
}

/* ---- MatMul ---- */

bool joule_fast_matmul_supports(const joule_node *node, int64_t opset, int n_in,
                                const joule_view *const *in)
{
    (void)node;
    (void)opset;
    if (n_in != 2 || !in[0] || !in[1] || !fast_dtype(in[0]->dtype) ||
        in[1]->dtype != in[0]->dtype || in[0]->rank < 1 || in[1]->rank < 1)
        return false;
    for (int i = 0; i < in[0]->rank; i++)
        if (!fits_int(in[0]->dims[i]))
            return false;
    for (int i = 0; i < in[1]->rank; i++)
        if (!fits_int(in[1]->dims[i]))
            return false;
    return true;
}

joule_status joule_fast_matmul_prepare(const joule_kernel_ctx *ctx, void **state,
                                       size_t *scratch_bytes)
{
    joule_matmul_params p;
    joule_status st = joule_matmul_params_init(ctx->node, ctx->in[0], ctx->in[1], &p, ctx->err);
    if (st)
        return st;
    mm_state *s;
    if ((st = make_state(ctx, ctx->in[1], &s)))
        return st;
    size_t y_count;
    joule_dims_count(p.out_rank, p.out_dims, &y_count);
    joule_scratch_carver cv = {0};
    mm_stage stage;
    s->scratch_bytes = carve_stage(&cv, ctx, s, NULL, y_count, &stage);
    if (cv.overflow) {
        joule_fast_linalg_destroy(s);
        return joule_fail(ctx->err, JOULE_ERR_NOMEM, "node '%s' (MatMul): scratch overflows",
                          ctx->node->name);
    }
    *state = s;
    *scratch_bytes = s->scratch_bytes;
    return JOULE_OK;
}

/* Y = A x B for f32 or f64 buffers. */
static void matmul_compute(joule_dtype t, const joule_matmul_params *p, const void *a,
                           const void *b, void *y)
{
    size_t es = t == JOULE_F64 ? sizeof(double) : sizeof(float);
    int64_t m = p->m, n = p->n, k = p->k;
    if (m == 0 || n == 0 || p->batches == 0)
        return;
    if (k == 0) {
        memset(y, 0, (size_t)(p->batches * m * n) * es);
        return;
    }
    if (p->b_batches == 1 && p->a_batches == p->batches && fits_int(p->batches * m)) {
        /* one B for every batch and A not broadcast: A's batches stack into rows */
        gemm_call(t, false, false, p->batches * m, n, k, 1.0, a, k, b, n, 0.0, y, n);
        return;
    }
    for (int64_t bi = 0; bi < p->batches; bi++) {
        int64_t am, bm;
        joule_matmul_batch(p, bi, &am, &bm);
        gemm_call(t, false, false, m, n, k, 1.0, (const char *)a + (size_t)(am * m * k) * es, k,
                  (const char *)b + (size_t)(bm * k * n) * es, n, 0.0,
                  (char *)y + (size_t)(bi * m * n) * es, n);
    }
}

joule_status joule_fast_matmul_run(const joule_kernel_ctx *ctx)
{
    const joule_view *a = ctx->in[0], *b = ctx->in[1];
    joule_view *y = ctx->out[0];
    const mm_state *s = ctx->state;
    joule_matmul_params p;
    joule_status st = joule_matmul_params_init(ctx->node, a, b, &p, ctx->err);
    if (st || (st = joule_linalg_check_out(ctx->node, y, p.out_rank, p.out_dims, ctx->err)))
        return st;
    if (a->dtype != JOULE_F16) {
        matmul_compute(a->dtype, &p, a->data, b->data, y->data);
        return JOULE_OK;
    }
    joule_scratch_carver cv = {.base = ctx->scratch};
    mm_stage sg;
    if (!s || carve_stage(&cv, ctx, s, NULL, y->count, &sg) > s->scratch_bytes || cv.overflow)
        return joule_fail(ctx->err, JOULE_ERR_INVALID,
                          "node '%s' (MatMul): shapes changed since prepare", ctx->node->name);
    const float *b32 = s->b32 ? s->b32 : sg.b;
    joule_linalg_f16_to_f32(a->data, sg.a, a->count);
    if (!s->b32)
        joule_linalg_f16_to_f32(b->data, sg.b, b->count);
    matmul_compute(JOULE_F32, &p, sg.a, b32, sg.y);
    joule_linalg_f32_to_f16(sg.y, y->data, y->count);
    return JOULE_OK;
}

/* ---- Gemm ---- */

bool joule_fast_gemm_supports(const joule_node *node, int64_t opset, int n_in,
                              const joule_view *const *in)
{
    (void)node;
    (void)opset;
    if (n_in < 2 || n_in > 3 || !in[0] || !in[1] || !fast_dtype(in[0]->dtype) ||
        in[1]->dtype != in[0]->dtype || in[0]->rank != 2 || in[1]->rank != 2)
        return false;
    if (n_in == 3 && in[2] && (in[2]->dtype != in[0]->dtype || in[2]->rank > 2))
        return false;
    for (int i = 0; i < 2; i++)
        if (!fits_int(in[0]->dims[i]) || !fits_int(in[1]->dims[i]))
            return false;
    return true;
}

joule_status joule_fast_gemm_prepare(const joule_kernel_ctx *ctx, void **state,
                                     size_t *scratch_bytes)
{
    const joule_view *c = ctx->n_in > 2 ? ctx->in[2] : NULL;
    joule_gemm_params p;
    joule_status st = joule_gemm_params_init(ctx->node, ctx->in[0], ctx->in[1], c, &p, ctx->err);
    if (st)
        return st;
    mm_state *s;
    if ((st = make_state(ctx, ctx->in[1], &s)))
        return st;
    joule_scratch_carver cv = {0};
    mm_stage stage;
    s->scratch_bytes = carve_stage(&cv, ctx, s, c, (size_t)(p.m * p.n), &stage);
    if (cv.overflow) {
        joule_fast_linalg_destroy(s);
        return joule_fail(ctx->err, JOULE_ERR_NOMEM, "node '%s' (Gemm): scratch overflows",
                          ctx->node->name);
    }
    *state = s;
    *scratch_bytes = s->scratch_bytes;
    return JOULE_OK;
}

/* Y = alpha op(A) op(B) + beta C for f32 or f64 buffers; c may be NULL. */
static void gemm_compute(joule_dtype t, const joule_gemm_params *p, const void *a, const void *b,
                         const void *c, void *y)
{
    int64_t m = p->m, n = p->n, k = p->k;
    if (m == 0 || n == 0)
        return;
    double beta = 0.0;
    if (c) {
        /* Y starts as beta * C broadcast, so sgemm accumulates onto it (one vector loop per
         * row: this fill was 7% of an MLP's batch-64 time as a per-element branchy loop) */
        for (int64_t i = 0; i < m; i++) {
            int64_t crow = (p->c_rows == 1 ? 0 : i) * p->c_cols;
            if (t == JOULE_F64) {
                const double *cr = (const double *)c + crow;
                double *yr = (double *)y + i * n, bd = p->beta;
                if (p->c_cols == 1) {
                    JOULE_LINALG_SIMD
                    for (int64_t j = 0; j < n; j++)
                        yr[j] = bd * cr[0];
                } else {
                    JOULE_LINALG_SIMD
                    for (int64_t j = 0; j < n; j++)
                        yr[j] = bd * cr[j];
                }
            } else {
                const float *cr = (const float *)c + crow;
                float *yr = (float *)y + i * n, bf = p->beta;
                if (p->c_cols == 1) {
                    JOULE_LINALG_SIMD
                    for (int64_t j = 0; j < n; j++)
                        yr[j] = bf * cr[0];
                } else {
                    JOULE_LINALG_SIMD
                    for (int64_t j = 0; j < n; j++)
                        yr[j] = bf * cr[j];
                }
            }
        }
        beta = 1.0;
    }
    if (k == 0) {
        if (!c)
            memset(y, 0, (size_t)(m * n) * (t == JOULE_F64 ? sizeof(double) : sizeof(float)));
        return;
    }
    gemm_call(t, p->trans_a, p->trans_b, m, n, k, p->alpha, a, p->trans_a ? m : k, b,
              p->trans_b ? k : n, beta, y, n);
}

joule_status joule_fast_gemm_run(const joule_kernel_ctx *ctx)
{
    const joule_view *a = ctx->in[0], *b = ctx->in[1];
    const joule_view *c = ctx->n_in > 2 ? ctx->in[2] : NULL;
    joule_view *y = ctx->out[0];
    const mm_state *s = ctx->state;
    joule_gemm_params p;
    joule_status st = joule_gemm_params_init(ctx->node, a, b, c, &p, ctx->err);
    int64_t dims[2] = {p.m, p.n};
    if (st || (st = joule_linalg_check_out(ctx->node, y, 2, dims, ctx->err)))
        return st;
    if (a->dtype != JOULE_F16) {
        gemm_compute(a->dtype, &p, a->data, b->data, c ? c->data : NULL, y->data);
        return JOULE_OK;
    }
    joule_scratch_carver cv = {.base = ctx->scratch};
    mm_stage sg;
    if (!s || carve_stage(&cv, ctx, s, c, y->count, &sg) > s->scratch_bytes || cv.overflow)
        return joule_fail(ctx->err, JOULE_ERR_INVALID,
                          "node '%s' (Gemm): shapes changed since prepare", ctx->node->name);
    const float *b32 = s->b32 ? s->b32 : sg.b;
    joule_linalg_f16_to_f32(a->data, sg.a, a->count);
    if (!s->b32)
        joule_linalg_f16_to_f32(b->data, sg.b, b->count);
    if (c)
        joule_linalg_f16_to_f32(c->data, sg.c, c->count);
    gemm_compute(JOULE_F32, &p, sg.a, b32, c ? sg.c : NULL, sg.y);
    joule_linalg_f32_to_f16(sg.y, y->data, y->count);
    return JOULE_OK;
}

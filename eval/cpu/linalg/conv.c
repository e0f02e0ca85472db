/* eval/cpu/linalg/conv.c: fast Conv (1D/2D/3D) on OpenBLAS sgemm, three kernels:
 *   cpu.conv.depthwise     group == C_in (1D/2D): direct loops, one output row at a time;
 *   cpu.conv.1x1_sgemm     1x1 kernel, stride 1, no padding: Y_g = W_g x X_g, no im2col;
 *   cpu.conv.im2col_sgemm  everything else: im2col in column tiles + sgemm.
 * f16 tensors are widened into scratch, computed in f32 and narrowed back; constant f16 weights
 * and bias are widened once in prepare(). f32 weights are already in the layout sgemm wants
 * ([C_out/g, C_in/g * k] per group, row-major), so they are read in place. Also the staging
 * helpers conv_transpose.c shares. */
#include "config.h"
#include "eval/cpu/linalg/linalg.h"

#include <cblas.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* Bytes of im2col/col2im matrix one sgemm works on: bounds scratch for large images and keeps
 * the tile in L2 (2 MiB ran 3x3 convs 15-40% faster than whole-image 8 MiB tiles here). */
#define COL_BUDGET ((int64_t)2 << 20)
#define MIN_TILE 256

void joule_fast_conv_destroy(void *state)
{
    joule_conv_state *s = state;
    if (s) {
        free(s->w32);
        free(s->b32);
    }
    free(s);
}

static float *widen(const joule_view *v)
{
    float *f = malloc((v->count ? v->count : 1) * sizeof *f);
    if (f)
        joule_linalg_f16_to_f32(v->data, f, v->count);
    return f;
}

/* Carves the scratch of one run (base NULL: measures). */
static void carve(joule_scratch_carver *cv, const joule_kernel_ctx *ctx,
                  const joule_conv_state *s, int64_t col_rows, joule_conv_bufs *b)
{
    memset(b, 0, sizeof *b);
    const joule_view *x = ctx->in[0], *w = ctx->in[1];
    const joule_view *bias = ctx->n_in > 2 ? ctx->in[2] : NULL;
    if (x->dtype == JOULE_F16) {
        b->x = joule_scratch_take(cv, x->count * sizeof(float));
        b->w = s->w32 ? s->w32 : joule_scratch_take(cv, w->count * sizeof(float));
        if (bias)
            b->b = s->b32 ? s->b32 : joule_scratch_take(cv, bias->count * sizeof(float));
        b->y32 = joule_scratch_take(cv, ctx->out[0]->count * sizeof(float));
    }
    if (col_rows > 0)
        b->col = joule_scratch_take(cv, (size_t)col_rows * (size_t)s->tile * sizeof(float));
}

joule_status joule_conv_prepare_common(const joule_kernel_ctx *ctx, bool transpose,
                                       int64_t col_rows, void **state, size_t *scratch_bytes)
{
    const joule_view *x = ctx->in[0], *w = ctx->in[1];
    const joule_view *bias = ctx->n_in > 2 ? ctx->in[2] : NULL;
    const char *nm = ctx->node->name;
    joule_conv_params p;
    joule_status st = joule_conv_params_init(ctx->node, transpose, x, w, bias, &p, ctx->err);
    if (st)
        return st;
    joule_conv_state *s = calloc(1, sizeof *s);
    if (!s)
        return joule_fail(ctx->err, JOULE_ERR_NOMEM, "node '%s' (%s): out of memory", nm,
                          ctx->node->op_type);
    if (x->dtype == JOULE_F16 && w->data && !(s->w32 = widen(w)))
        goto nomem;
    if (x->dtype == JOULE_F16 && bias && bias->data && !(s->b32 = widen(bias)))
        goto nomem;
    /* columns per tile: the whole image when its matrix fits the budget */
    int64_t cols = transpose ? p.in_size : p.out_size;
    s->tile = cols;
    if (col_rows > 0 && col_rows * cols * (int64_t)sizeof(float) > COL_BUDGET) {
        s->tile = COL_BUDGET / ((int64_t)sizeof(float) * col_rows);
        if (s->tile < MIN_TILE)
            s->tile = MIN_TILE;
        if (s->tile > cols)
            s->tile = cols;
    }
    if (s->tile < 1)
        s->tile = 1;
    joule_scratch_carver cv = {0};
    joule_conv_bufs b;
    carve(&cv, ctx, s, col_rows, &b);
    if (cv.overflow) {
        joule_fast_conv_destroy(s);
        return joule_fail(ctx->err, JOULE_ERR_NOMEM, "node '%s' (%s): scratch overflows", nm,
                          ctx->node->op_type);
    }
    s->scratch_bytes = cv.used;
    *state = s;
    *scratch_bytes = cv.used;
    return JOULE_OK;
nomem:
    joule_fast_conv_destroy(s);
    return joule_fail(ctx->err, JOULE_ERR_NOMEM, "node '%s' (%s): out of memory", nm,
                      ctx->node->op_type);
}

joule_status joule_conv_run_begin(const joule_kernel_ctx *ctx, bool transpose, int64_t col_rows,
                                  joule_conv_params *p, joule_conv_bufs *b)
{
    const joule_view *x = ctx->in[0], *w = ctx->in[1];
    const joule_view *bias = ctx->n_in > 2 ? ctx->in[2] : NULL;
    const joule_conv_state *s = ctx->state;
    joule_status st = joule_conv_params_init(ctx->node, transpose, x, w, bias, p, ctx->err);
    if (st)
        return st;
    int64_t dims[JOULE_MAX_RANK];
    joule_conv_out_dims(p, dims);
    if ((st = joule_linalg_check_out(ctx->node, ctx->out[0], x->rank, dims, ctx->err)))
        return st;
    joule_scratch_carver cv = {.base = ctx->scratch};
    if (s)
        carve(&cv, ctx, s, col_rows, b);
    if (!s || cv.overflow || cv.used > s->scratch_bytes || (cv.used > 0 && !ctx->scratch))
        return joule_fail(ctx->err, JOULE_ERR_INVALID,
                          "node '%s' (%s): run without matching prepare", ctx->node->name,
                          ctx->node->op_type);
    if (x->dtype != JOULE_F16) {
        b->x = x->data;
        b->w = w->data;
        b->b = bias ? bias->data : NULL;
        b->y = ctx->out[0]->data;
        return JOULE_OK;
    }
    joule_linalg_f16_to_f32(x->data, (float *)b->x, x->count);
    if (!s->w32)
        joule_linalg_f16_to_f32(w->data, (float *)b->w, w->count);
    if (bias && !s->b32)
        joule_linalg_f16_to_f32(bias->data, (float *)b->b, bias->count);
    b->y = b->y32;
    return JOULE_OK;
}

void joule_conv_run_end(const joule_kernel_ctx *ctx, const joule_conv_bufs *b)
{
    if (ctx->out[0]->dtype == JOULE_F16)
        joule_linalg_f32_to_f16(b->y32, ctx->out[0]->data, ctx->out[0]->count);
}

void joule_conv_fill_bias(float *y, int64_t channels, int64_t size, const float *bias)
{
    for (int64_t c = 0; c < channels; c++) {
        float v = bias ? bias[c] : 0.0f;
        float *yc = y + c * size;
        JOULE_LINALG_SIMD
        for (int64_t i = 0; i < size; i++)
            yc[i] = v;
    }
}

/* ---- which kernel takes which node ---- */

static bool conv_dtype_ok(int n_in, const joule_view *const *in)
{
    if (n_in < 2 || n_in > 3 || !in[0] || !in[1])
        return false;
    joule_dtype t = in[0]->dtype;
    if ((t != JOULE_F32 && t != JOULE_F16) || in[1]->dtype != t)
        return false;
    if (n_in == 3 && in[2] && in[2]->dtype != t)
        return false;
    return in[0]->rank >= 3 && in[0]->rank <= 2 + JOULE_CONV_MAX_SPATIAL &&
           in[1]->rank == in[0]->rank;
}

/* Largest matrix dim sgemm sees must fit its int arguments. */
static bool sgemm_dims_ok(const joule_conv_params *p)
{
    int64_t rows = (p->transpose ? p->c_out : p->c_in) / p->group * p->k_size;
    return rows <= INT_MAX && p->in_size <= INT_MAX && p->out_size <= INT_MAX &&
           p->c_out <= INT_MAX && p->c_in <= INT_MAX;
}

static bool is_depthwise(const joule_conv_params *p)
{
    return !p->transpose && p->nsp <= 2 && p->group == p->c_in && p->c_out % p->group == 0;
}

static bool is_1x1(const joule_conv_params *p)
{
    for (int s = 0; s < 3; s++)
        if (p->k[s] != 1 || p->stride[s] != 1 || p->pad_begin[s] != 0 || p->pad_end[s] != 0)
            return false;
    return true;
}

static bool parse(const joule_node *node, bool transpose, int n_in, const joule_view *const *in,
                  joule_conv_params *p)
{
    return joule_conv_params_init(node, transpose, in[0], in[1], n_in > 2 ? in[2] : NULL, p,
                                  NULL) == JOULE_OK;
}

bool joule_fast_conv_depthwise_supports(const joule_node *node, int64_t opset, int n_in,
                                        const joule_view *const *in)
{
    (void)opset;
    joule_conv_params p;
    return conv_dtype_ok(n_in, in) && parse(node, false, n_in, in, &p) && is_depthwise(&p);
}

bool joule_fast_conv_1x1_supports(const joule_node *node, int64_t opset, int n_in,
                                  const joule_view *const *in)
{
    (void)opset;
    joule_conv_params p;
    return conv_dtype_ok(n_in, in) && parse(node, false, n_in, in, &p) && is_1x1(&p) &&
           sgemm_dims_ok(&p);
}

bool joule_fast_conv_im2col_supports(const joule_node *node, int64_t opset, int n_in,
                                     const joule_view *const *in)
{
    (void)opset;
    if (!conv_dtype_ok(n_in, in))
        return false;
    /* a node that does not parse is taken too, so prepare() reports what is wrong with it */
    joule_conv_params p;
    return !parse(node, false, n_in, in, &p) || sgemm_dims_ok(&p);
}

static int64_t im2col_rows(const joule_kernel_ctx *ctx)
{
    const joule_view *w = ctx->in[1];
    int64_t rows = 1;
    for (int i = 1; i < w->rank; i++)
        rows *= w->dims[i]; /* C_in/g * kernel size; dims already bounded by the parser */
    return rows;
}

joule_status joule_fast_conv_depthwise_prepare(const joule_kernel_ctx *ctx, void **state,
                                               size_t *scratch_bytes)
{
    return joule_conv_prepare_common(ctx, false, 0, state, scratch_bytes);
}

joule_status joule_fast_conv_1x1_prepare(const joule_kernel_ctx *ctx, void **state,
                                         size_t *scratch_bytes)
{
    return joule_conv_prepare_common(ctx, false, 0, state, scratch_bytes);
}

joule_status joule_fast_conv_im2col_prepare(const joule_kernel_ctx *ctx, void **state,
                                            size_t *scratch_bytes)
{
    /* the parse in prepare_common rejects bad W ranks before the rows are used */
    if (ctx->in[1]->rank != ctx->in[0]->rank || ctx->in[1]->rank < 3)
        return joule_conv_prepare_common(ctx, false, 0, state, scratch_bytes);
    return joule_conv_prepare_common(ctx, false, im2col_rows(ctx), state, scratch_bytes);
}

/* ---- depthwise ---- */

static void depthwise_2d(const joule_conv_params *p, const float *x, const float *w,
                         const float *bias, float *y, int threads)
{
    (void)threads;
    const int64_t mult = p->c_out / p->c_in;
    const int64_t H = p->in[1], W = p->in[2], OH = p->out[1], OW = p->out[2];
    const int64_t KH = p->k[1], KW = p->k[2];
    const int64_t sh = p->stride[1], sw = p->stride[2], dh = p->dil[1], dw = p->dil[2];
    const int64_t ph = p->pad_begin[1], pw = p->pad_begin[2];
    const int64_t planes = p->batch * p->c_out;
    JOULE_LINALG_OMP_FOR(threads)
    for (int64_t nc = 0; nc < planes; nc++) {
        int64_t n = nc / p->c_out, oc = nc % p->c_out, ic = oc / mult;
        const float *xc = x + (n * p->c_in + ic) * H * W;
        const float *wc = w + oc * KH * KW;
        float *yc = y + nc * OH * OW;
        joule_conv_fill_bias(yc, 1, OH * OW, bias ? bias + oc : NULL);
        /* one kernel tap at a time over the whole output plane (it stays in L1): the valid
         * column range of a tap is computed once, not per row */
        for (int64_t kh = 0; kh < KH; kh++) {
            for (int64_t kw = 0; kw < KW; kw++) {
                const float wv = wc[kh * KW + kw];
                const int64_t off = kw * dw - pw;
                int64_t lo, hi;
                joule_valid_range(0, sw, off, W, OW, &lo, &hi);
                for (int64_t oh = 0; oh < OH; oh++) {
                    int64_t ih = oh * sh + kh * dh - ph;
                    if (ih < 0 || ih >= H)
                        continue;
                    const float *xr = xc + ih * W;
                    float *yr = yc + oh * OW;
                    if (sw == 1) {
                        JOULE_LINALG_SIMD
                        for (int64_t ow = lo; ow < hi; ow++)
                            yr[ow] += wv * xr[ow + off];
                    } else {
                        JOULE_LINALG_SIMD
                        for (int64_t ow = lo; ow < hi; ow++)
                            yr[ow] += wv * xr[ow * sw + off];
                    }
                }
            }
        }
    }
}

joule_status joule_fast_conv_depthwise_run(const joule_kernel_ctx *ctx)
{
    joule_conv_params p;
    joule_conv_bufs b;
    joule_status st = joule_conv_run_begin(ctx, false, 0, &p, &b);
    if (st)
        return st;
    if (!is_depthwise(&p))
        return joule_fail(ctx->err, JOULE_ERR_INVALID, "node '%s' (Conv): not depthwise",
                          ctx->node->name);
    depthwise_2d(&p, b.x, b.w, b.b, b.y, ctx->threads);
    joule_conv_run_end(ctx, &b);
    return JOULE_OK;
}

/* ---- 1x1 ---- */

joule_status joule_fast_conv_1x1_run(const joule_kernel_ctx *ctx)
{
    joule_conv_params p;
    joule_conv_bufs b;
    joule_status st = joule_conv_run_begin(ctx, false, 0, &p, &b);
    if (st)
        return st;
    if (!is_1x1(&p))
        return joule_fail(ctx->err, JOULE_ERR_INVALID, "node '%s' (Conv): not a 1x1 conv",
                          ctx->node->name);
    const int64_t cg_in = p.c_in / p.group, cg_out = p.c_out / p.group, hw = p.out_size;
    for (int64_t n = 0; n < p.batch; n++) {
        float *yn = b.y + n * p.c_out * hw;
        joule_conv_fill_bias(yn, p.c_out, hw, b.b);
        if (hw == 0 || cg_out == 0 || cg_in == 0)
            continue;
        for (int64_t g = 0; g < p.group; g++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)cg_out, (blasint)hw,
                        (blasint)cg_in, 1.0f, b.w + g * cg_out * cg_in, (blasint)cg_in,
                        b.x + (n * p.c_in + g * cg_in) * hw, (blasint)hw, 1.0f,
                        yn + g * cg_out * hw, (blasint)hw);
    }
    joule_conv_run_end(ctx, &b);
    return JOULE_OK;
}

/* ---- im2col ---- */

/* Columns j0 .. j0+jn of the im2col matrix of one group's input x ([cg_in][in spatial]):
 * row r = (c, kd, kh, kw), column j = output position; col is [rows][jn]. */
static void im2col_tile(const joule_conv_params *p, const float *x, int64_t rows, int64_t j0,
                        int64_t jn, float *col, int threads)
{
    (void)threads;
    const int64_t OH = p->out[1], OW = p->out[2];
    const int64_t D = p->in[0], H = p->in[1], W = p->in[2];
    JOULE_LINALG_OMP_FOR(threads)
    for (int64_t r = 0; r < rows; r++) {
        int64_t c = r / p->k_size, kk = r % p->k_size;
        int64_t kd = kk / (p->k[1] * p->k[2]), kh = (kk / p->k[2]) % p->k[1], kw = kk % p->k[2];
        int64_t offd = kd * p->dil[0] - p->pad_begin[0];
        int64_t offh = kh * p->dil[1] - p->pad_begin[1];
        int64_t offw = kw * p->dil[2] - p->pad_begin[2];
        const int64_t sw = p->stride[2];
        const float *xc = x + c * p->in_size;
        float *dst = col + r * jn;
        int64_t full_lo, full_hi; /* valid columns of a whole output row, for this kw */
        joule_valid_range(0, sw, offw, W, OW, &full_lo, &full_hi);
        int64_t j = j0, ow = j0 % OW, oh = (j0 / OW) % OH, od = j0 / (OW * OH);
        while (j < j0 + jn) {
            int64_t seg = OW - ow < j0 + jn - j ? OW - ow : j0 + jn - j;
            int64_t id = od * p->stride[0] + offd, ih = oh * p->stride[1] + offh;
            if (id < 0 || id >= D || ih < 0 || ih >= H) {
                memset(dst, 0, (size_t)seg * sizeof *dst);
            } else {
                const float *xr = xc + (id * H + ih) * W;
                int64_t lo = full_lo, hi = full_hi;
                if (ow != 0 || seg != OW)
                    joule_valid_range(ow, sw, offw, W, seg, &lo, &hi);
                for (int64_t t = 0; t < lo; t++)
                    dst[t] = 0.0f;
                if (sw == 1) {
                    if (hi > lo)
                        memcpy(dst + lo, xr + ow + lo + offw, (size_t)(hi - lo) * sizeof *dst);
                } else {
                    JOULE_LINALG_SIMD
                    for (int64_t t = lo; t < hi; t++)
                        dst[t] = xr[(ow + t) * sw + offw];
                }
                for (int64_t t = hi; t < seg; t++)
                    dst[t] = 0.0f;
            }
            dst += seg;
            j += seg;
            ow += seg;
            if (ow == OW) {
                ow = 0;
                if (++oh == OH) {
                    oh = 0;
                    od++;
                }
            }
        }
    }
}

joule_status joule_fast_conv_im2col_run(const joule_kernel_ctx *ctx)
{
    joule_conv_params p;
    joule_conv_bufs b;
    const joule_conv_state *s = ctx->state;
    int64_t rows = (ctx->in[1]->rank == ctx->in[0]->rank && ctx->in[1]->rank >= 3)
                       ? im2col_rows(ctx)
                       : 0;
    joule_status st = joule_conv_run_begin(ctx, false, rows, &p, &b);
    if (st)
        return st;
    const int64_t cg_in = p.c_in / p.group, cg_out = p.c_out / p.group, osz = p.out_size;
    const int64_t tile = s->tile;
    for (int64_t n = 0; n < p.batch; n++) {
        float *yn = b.y + n * p.c_out * osz;
        joule_conv_fill_bias(yn, p.c_out, osz, b.b);
        if (osz == 0 || cg_out == 0 || rows == 0)
            continue;
        for (int64_t g = 0; g < p.group; g++) {
            const float *xg = b.x + (n * p.c_in + g * cg_in) * p.in_size;
            const float *wg = b.w + g * cg_out * rows;
            float *yg = yn + g * cg_out * osz;
            for (int64_t j0 = 0; j0 < osz; j0 += tile) {
                int64_t jn = osz - j0 < tile ? osz - j0 : tile;
                im2col_tile(&p, xg, rows, j0, jn, b.col, ctx->threads);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)cg_out,
                            (blasint)jn, (blasint)rows, 1.0f, wg, (blasint)rows, b.col,
                            (blasint)jn, 1.0f, yg + j0, (blasint)osz);
            }
        }
    }
    joule_conv_run_end(ctx, &b);
    return JOULE_OK;
}

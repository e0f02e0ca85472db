/* eval/cpu/linalg/conv.c: fast Conv (1D/2D/3D) on OpenBLAS sgemm, three kernels:
 *   cpu.conv.depthwise     group == C_in (1D/2D): direct loops; small planes (output rows
 *                          under 48) as one flat vector loop over a zero-padded copy,
 *                          larger ones an output row at a time;
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
#if defined(HAVE_OPENMP) && HAVE_OPENMP
#include <omp.h>
#endif
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

/* Depthwise planes whose output rows are shorter than this run as one flat vector loop over a
 * zero-padded copy of the plane (rows this short leave row-at-a-time loops mostly scalar). */
#define DW_FLAT_MAX_OW 48

/* Geometry of the flat depthwise path: the zero-padded plane (Hp x L) is stored as s x s phase
 * planes of Hq x Lq (phase (pr, pc) holds padded rows s*r + pr, columns s*c + pc), so every tap
 * of a strided conv reads contiguous floats. false when the path does not apply (the two
 * strides differ, rows are long, sizes are too large). *floats: per-thread scratch. */
static bool dw_flat_dims(const joule_conv_params *p, int64_t *Hq, int64_t *Lq, int64_t *floats)
{
    const int64_t OH = p->out[1], OW = p->out[2], s = p->stride[2];
    if (p->stride[1] != s || s < 1 || s > 4 || OW >= DW_FLAT_MAX_OW || OW < 1 || OH < 1 ||
        p->k[1] > 1024 || p->k[2] > 1024 || p->dil[1] > 1024 || p->dil[2] > 1024 || OH > 4096)
        return false;
    /* every tap of output (oh, ow) lies inside the padded plane */
    int64_t L = s * (OW - 1) + (p->k[2] - 1) * p->dil[2] + 1;
    int64_t Hp = s * (OH - 1) + (p->k[1] - 1) * p->dil[1] + 1;
    *Hq = joule_ceil_div(Hp, s);
    *Lq = joule_ceil_div(L, s);
    /* phase planes, then the flat output (OH x Lq) on a 64-byte boundary */
    *floats = s * s * *Hq * *Lq + 16 + OH * *Lq;
    return *floats <= (int64_t)1 << 24;
}

joule_status joule_fast_conv_depthwise_prepare(const joule_kernel_ctx *ctx, void **state,
                                               size_t *scratch_bytes)
{
    joule_status st = joule_conv_prepare_common(ctx, false, 0, state, scratch_bytes);
    if (st)
        return st;
    joule_conv_state *s = *state;
    const joule_view *bias = ctx->n_in > 2 ? ctx->in[2] : NULL;
    joule_conv_params p;
    int64_t Hq, Lq, floats;
    if (joule_conv_params_init(ctx->node, false, ctx->in[0], ctx->in[1], bias, &p, NULL) ||
        !is_depthwise(&p) || !dw_flat_dims(&p, &Hq, &Lq, &floats))
        return JOULE_OK;
    int threads = ctx->threads > 0 ? ctx->threads : 1;
    size_t off = (*scratch_bytes + 63) & ~(size_t)63;
    if (off < *scratch_bytes ||
        (size_t)floats > (SIZE_MAX - off) / sizeof(float) / (size_t)threads)
        return JOULE_OK; /* too big to ask for: the row path needs no scratch */
    s->dw_floats = floats;
    s->dw_offset = off;
    s->dw_threads = threads;
    s->scratch_bytes = off + (size_t)floats * sizeof(float) * (size_t)threads;
    *scratch_bytes = s->scratch_bytes;
    return JOULE_OK;
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

/* The plane loop is compiled for baseline x86-64, AVX2+FMA (x86-64-v3) and AVX-512 (x86-64-v4)
 * and the loader picks one (GCC target_clones through ifunc); ISO C mode keeps FP contraction
 * off, so every version gives the same bits. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12 && defined(__x86_64__) &&           \
    defined(__linux__)
#define DW_CLONES __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define DW_CLONES
#endif

/* Geometry of one depthwise plane (2D; 1D arrives with H = OH = KH = 1). */
typedef struct dw_geom {
    int64_t H, W, OH, OW, KH, KW, sh, sw, dh, dw, ph, pw;
    int64_t clo, chi; /* output columns whose taps all lie inside the input row */
} dw_geom;

/* Output row yr from the input plane xc: output columns whose taps all lie inside the row are
 * computed in one vector pass (3x3 kernels: all nine taps in registers, one store), the few
 * border columns with bounds checks. */
static DW_CLONES void dw_plane(const dw_geom *g, const float *xc, const float *wc, float b,
                               float *yc)
{
    const int64_t H = g->H, W = g->W, OW = g->OW, KW = g->KW, sw = g->sw, dw = g->dw;
    const int64_t clo = g->clo, chi = g->chi;
    for (int64_t oh = 0; oh < g->OH; oh++) {
        float *yr = yc + oh * OW;
        const int64_t ih0 = oh * g->sh - g->ph;
        int64_t kh0, kh1; /* taps kh with 0 <= ih0 + kh * dh < H */
        joule_valid_range(0, g->dh, ih0, H, g->KH, &kh0, &kh1);
        /* border columns */
        for (int64_t ow = 0; ow < OW; ow++) {
            if (ow == clo && chi > clo)
                ow = chi;
            if (ow >= OW)
                break;
            float acc = b;
            const int64_t iw0 = ow * sw - g->pw;
            for (int64_t kh = kh0; kh < kh1; kh++) {
                const float *xr = xc + (ih0 + kh * g->dh) * W;
                for (int64_t kw = 0; kw < KW; kw++) {
                    int64_t iw = iw0 + kw * dw;
                    if (iw >= 0 && iw < W)
                        acc += wc[kh * KW + kw] * xr[iw];
                }
            }
            yr[ow] = acc;
        }
        if (chi <= clo)
            continue;
        /* interior columns: x index ow * sw + kw * dw - pw is inside the row */
        if (KW == 3 && kh1 - kh0 == 3) {
            const float *r0 = xc + (ih0 + kh0 * g->dh) * W - g->pw;
            const float *r1 = r0 + g->dh * W, *r2 = r1 + g->dh * W;
            const float *w0 = wc + kh0 * 3, *w1 = w0 + 3, *w2 = w1 + 3;
            const float a0 = w0[0], a1 = w0[1], a2 = w0[2], b0 = w1[0], b1 = w1[1], b2 = w1[2];
            const float c0 = w2[0], c1 = w2[1], c2 = w2[2];
            const int64_t d1 = dw, d2 = 2 * dw;
            if (sw == 1) {
                JOULE_LINALG_SIMD
                for (int64_t ow = clo; ow < chi; ow++)
                    yr[ow] = b + a0 * r0[ow] + a1 * r0[ow + d1] + a2 * r0[ow + d2] +
                             b0 * r1[ow] + b1 * r1[ow + d1] + b2 * r1[ow + d2] + c0 * r2[ow] +
                             c1 * r2[ow + d1] + c2 * r2[ow + d2];
            } else {
                JOULE_LINALG_SIMD
                for (int64_t ow = clo; ow < chi; ow++) {
                    const int64_t i = ow * sw;
                    yr[ow] = b + a0 * r0[i] + a1 * r0[i + d1] + a2 * r0[i + d2] + b0 * r1[i] +
                             b1 * r1[i + d1] + b2 * r1[i + d2] + c0 * r2[i] + c1 * r2[i + d1] +
                             c2 * r2[i + d2];
                }
            }
            continue;
        }
        JOULE_LINALG_SIMD
        for (int64_t ow = clo; ow < chi; ow++)
            yr[ow] = b;
        for (int64_t kh = kh0; kh < kh1; kh++) {
            const float *xr = xc + (ih0 + kh * g->dh) * W - g->pw;
            for (int64_t kw = 0; kw < KW; kw++) {
                const float wv = wc[kh * KW + kw];
                const float *xs = xr + kw * dw;
                if (sw == 1) {
                    JOULE_LINALG_SIMD
                    for (int64_t ow = clo; ow < chi; ow++)
                        yr[ow] += wv * xs[ow];
                } else {
                    JOULE_LINALG_SIMD
                    for (int64_t ow = clo; ow < chi; ow++)
                        yr[ow] += wv * xs[ow * sw];
                }
            }
        }
    }
}

/* Small planes, flat: an input plane is copied, zero-padded, into s x s phase planes xp (see
 * dw_flat_dims) once for all the output channels it feeds, so output (oh, ow) at flat index
 * j = oh * Lq + ow reads tap (kh, kw) at j + (kh * dh / s) * Lq + kw * dw / s of phase plane
 * (kh * dh % s, kw * dw % s): a whole plane is one long contiguous vector loop into z (OH x Lq;
 * columns past OW are computed and dropped), then copied row by row into y. */
static DW_CLONES void dw_flat_fill(const dw_geom *g, int64_t Hq, int64_t Lq, const float *xc,
                                   float *xp)
{
    const int64_t H = g->H, W = g->W, s = g->sw, plane = Hq * Lq;
    for (int64_t pc = 0; pc < s; pc++) {
        /* column c holds input column s * c + pc - pw when that is inside the row */
        int64_t lo, hi;
        joule_valid_range(0, s, pc - g->pw, W, Lq, &lo, &hi);
        for (int64_t pr = 0; pr < s; pr++) {
            float *ph = xp + (pr * s + pc) * plane;
            for (int64_t r = 0; r < Hq; r++) {
                float *dst = ph + r * Lq;
                const int64_t ih = s * r + pr - g->ph;
                if (ih < 0 || ih >= H) {
                    memset(dst, 0, (size_t)Lq * sizeof *dst);
                    continue;
                }
                const float *src = xc + ih * W + pc - g->pw;
                for (int64_t c = 0; c < lo; c++)
                    dst[c] = 0.0f;
                if (s == 1) {
                    memcpy(dst + lo, src + lo, (size_t)(hi - lo) * sizeof *dst);
                } else if (s == 2) {
                    JOULE_LINALG_SIMD
                    for (int64_t c = lo; c < hi; c++)
                        dst[c] = src[2 * c];
                } else {
                    JOULE_LINALG_SIMD
                    for (int64_t c = lo; c < hi; c++)
                        dst[c] = src[s * c];
                }
                for (int64_t c = hi; c < Lq; c++)
                    dst[c] = 0.0f;
            }
        }
    }
}

/* One output plane from the phase planes dw_flat_fill made. */
static DW_CLONES void dw_flat_taps(const dw_geom *g, int64_t Hq, int64_t Lq, const float *xp,
                                   const float *wc, float b, float *yc, float *z)
{
    const int64_t OH = g->OH, OW = g->OW, s = g->sw, plane = Hq * Lq;
    const int64_t n = (OH - 1) * Lq + OW; /* flat outputs up to the last one needed */
#define DW_TAP(kh, kw)                                                                             \
    (xp + (((kh) * g->dh % s) * s + (kw) * g->dw % s) * plane + ((kh) * g->dh / s) * Lq +          \
     (kw) * g->dw / s)
    if (g->KH == 3 && g->KW == 3) {
        const float *t0 = DW_TAP(0, 0), *t1 = DW_TAP(0, 1), *t2 = DW_TAP(0, 2);
        const float *t3 = DW_TAP(1, 0), *t4 = DW_TAP(1, 1), *t5 = DW_TAP(1, 2);
        const float *t6 = DW_TAP(2, 0), *t7 = DW_TAP(2, 1), *t8 = DW_TAP(2, 2);
        const float w0 = wc[0], w1 = wc[1], w2 = wc[2], w3 = wc[3], w4 = wc[4], w5 = wc[5];
        const float w6 = wc[6], w7 = wc[7], w8 = wc[8];
        JOULE_LINALG_SIMD
        for (int64_t j = 0; j < n; j++)
            z[j] = b + w0 * t0[j] + w1 * t1[j] + w2 * t2[j] + w3 * t3[j] + w4 * t4[j] +
                   w5 * t5[j] + w6 * t6[j] + w7 * t7[j] + w8 * t8[j];
    } else {
        JOULE_LINALG_SIMD
        for (int64_t j = 0; j < n; j++)
            z[j] = b;
        for (int64_t kh = 0; kh < g->KH; kh++)
            for (int64_t kw = 0; kw < g->KW; kw++) {
                const float wv = wc[kh * g->KW + kw];
                const float *t = DW_TAP(kh, kw);
                JOULE_LINALG_SIMD
                for (int64_t j = 0; j < n; j++)
                    z[j] += wv * t[j];
            }
    }
#undef DW_TAP
    for (int64_t oh = 0; oh < OH; oh++)
        memcpy(yc + oh * OW, z + oh * Lq, (size_t)OW * sizeof *yc);
}

static void depthwise_2d(const joule_conv_params *p, const float *x, const float *w,
                         const float *bias, float *y, int threads, float *flat, int64_t flat_floats)
{
    const int64_t mult = p->c_out / p->c_in;
    dw_geom g = {.H = p->in[1], .W = p->in[2], .OH = p->out[1], .OW = p->out[2],
                 .KH = p->k[1], .KW = p->k[2], .sh = p->stride[1], .sw = p->stride[2],
                 .dh = p->dil[1], .dw = p->dil[2], .ph = p->pad_begin[1], .pw = p->pad_begin[2]};
    /* interior: ow * sw - pw >= 0 and ow * sw - pw + (KW - 1) * dw < W */
    joule_valid_range(0, g.sw, -g.pw, g.W - (g.KW - 1) * g.dw, g.OW, &g.clo, &g.chi);
    int64_t Hq = 0, Lq = 0, floats = 0;
    if (flat && !(dw_flat_dims(p, &Hq, &Lq, &floats) && floats <= flat_floats))
        flat = NULL; /* the plan's scratch does not fit this geometry: rows instead */
    if (flat) {
        const int64_t zoff = (p->stride[2] * p->stride[2] * Hq * Lq + 15) & ~(int64_t)15;
        const int64_t in_planes = p->batch * p->c_in;
        JOULE_LINALG_OMP_FOR(threads)
        for (int64_t ni = 0; ni < in_planes; ni++) {
            int tid = 0;
#if defined(HAVE_OPENMP) && HAVE_OPENMP
            tid = omp_get_thread_num();
#endif
            float *xp = flat + (size_t)tid * (size_t)flat_floats;
            int64_t n = ni / p->c_in, ic = ni % p->c_in;
            dw_flat_fill(&g, Hq, Lq, x + ni * g.H * g.W, xp);
            for (int64_t m = 0; m < mult; m++) {
                int64_t oc = ic * mult + m;
                dw_flat_taps(&g, Hq, Lq, xp, w + oc * g.KH * g.KW, bias ? bias[oc] : 0.0f,
                             y + (n * p->c_out + oc) * g.OH * g.OW, xp + zoff);
            }
        }
        return;
    }
    const int64_t planes = p->batch * p->c_out;
    JOULE_LINALG_OMP_FOR(threads)
    for (int64_t nc = 0; nc < planes; nc++) {
        int64_t n = nc / p->c_out, oc = nc % p->c_out, ic = oc / mult;
        dw_plane(&g, x + (n * p->c_in + ic) * g.H * g.W, w + oc * g.KH * g.KW,
                 bias ? bias[oc] : 0.0f, y + nc * g.OH * g.OW);
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
    const joule_conv_state *s = ctx->state;
    float *flat = NULL;
    int threads = ctx->threads;
    if (s->dw_floats > 0 && ctx->scratch) {
        flat = (float *)(void *)((unsigned char *)ctx->scratch + s->dw_offset);
        if (threads > s->dw_threads)
            threads = s->dw_threads; /* scratch was sized for that many */
    }
    depthwise_2d(&p, b.x, b.w, b.b, b.y, threads, flat, s->dw_floats);
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

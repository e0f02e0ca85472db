/* eval/cpu/quant/qconv.c: ConvInteger and QLinearConv (1D and 2D, groups, per-channel weight
 * zero points and scales), and the integer conv engine the QDQ conv kernel reuses.
 *
 * Fast path: for each image and group, output pixels are processed in chunks; each chunk's
 * receptive fields are copied into an im2col matrix (one row per weight position, padding filled
 * with the input zero point so it contributes nothing; a 1x1 unit-stride conv uses X itself),
 * multiplied as A^T with the weights packed once at prepare time (qgemm.h, B = W^T, N = output
 * channels), and the int32 sums are written back transposed into NCHW, through the requantizing
 * output stage for QLinearConv. Depthwise convs (one input and one output
 * channel per group) use direct loops instead of a one-column GEMM. The reference kernels
 * evaluate the definition with plain loops. */
#include "eval/cpu/quant/quant.h"

#include <stdlib.h>
#include <string.h>

/* Bytes of the im2col matrix, and of the int32 sums, per chunk. */
#define CONV_CHUNK_BYTES (256u * 1024u)

void joule_q_conv_free(void *state)
{
    joule_q_conv_state *s = state;
    if (!s)
        return;
    if (s->wpack)
        for (int64_t g = 0; g < s->p.group; g++)
            joule_qgemm_packed_free(s->wpack[g]);
    free(s->wpack);
    free(s);
}

/* Scratch of a conv run, in carving order. */
typedef struct conv_bufs {
    uint8_t *rows;   /* im2col chunk: kdim x ptile */
    int32_t *acc;    /* ptile x mg */
    void *gemm;      /* qgemm scratch for ptile rows */
    int32_t *wzp;    /* c_out weight zero points as int32 */
    int32_t *pack_zp; /* mg zero points of one group, for packing W at run time */
    int32_t *dw;     /* k_h * k_w centred weights of one depthwise channel */
    int32_t *row;    /* out_w sums of one depthwise output row */
    size_t gemm_bytes;
} conv_bufs;

static void conv_carve(joule_q_carver *c, const joule_q_conv_state *s, int threads, conv_bufs *b)
{
    const joule_q_conv *p = &s->p;
    memset(b, 0, sizeof *b);
    if (!s->depthwise) {
        size_t n;
        if (!joule_q_mul((size_t)s->ptile, (size_t)p->kdim, &n))
            c->overflow = true;
        b->rows = joule_q_take(c, n, 1);
        if (!joule_q_mul((size_t)s->ptile, (size_t)p->mg, &n))
            c->overflow = true;
        b->acc = joule_q_take(c, n, sizeof(int32_t));
        b->gemm_bytes = joule_qgemm_scratch_bytes_for(JOULE_QGEMM_AUTO, s->ptile, p->kdim, p->mg,
                                                      threads);
        if (!b->gemm_bytes)
            c->overflow = true;
        b->gemm = joule_q_take(c, b->gemm_bytes, 1);
    }
    b->wzp = joule_q_take(c, (size_t)p->c_out + 1, sizeof(int32_t));
    b->pack_zp = joule_q_take(c, (size_t)p->mg + 1, sizeof(int32_t));
    if (s->depthwise) {
        b->dw = joule_q_take(c, (size_t)(p->k_h * p->k_w), sizeof(int32_t));
        b->row = joule_q_take(c, (size_t)p->out_w, sizeof(int32_t));
    }
}

/* Packs group g of W (rows g*mg .. g*mg+mg, each kdim long) with its zero points. */
static joule_status pack_group(const joule_q_conv *p, const joule_view *w, const joule_view *w_zp,
                               int64_t g, int32_t *zp_buf, joule_qgemm_packed **out,
                               joule_error *err)
{
    int64_t nzp = 0;
    if (w_zp) {
        nzp = w_zp->count == 1 ? 1 : p->mg;
        for (int64_t i = 0; i < nzp; i++)
            zp_buf[i] = joule_q_int_at(w_zp, w_zp->count == 1 ? 0 : (size_t)(g * p->mg + i));
    }
    const char *base = (const char *)w->data + (size_t)(g * p->mg * p->kdim);
    return joule_qgemm_pack(base, w->dtype == JOULE_I8, p->kdim, p->mg, p->kdim, true,
                            w_zp ? zp_buf : NULL, nzp, JOULE_QGEMM_AUTO, out, err);
}

joule_status joule_q_conv_plan(const joule_node *node, const joule_view *x, const joule_view *w,
                               const joule_view *w_zp, int threads, joule_q_conv_state **out,
                               joule_error *err)
{
    *out = NULL;
    joule_q_conv_state *s = calloc(1, sizeof *s);
    if (!s)
        return joule_fail(err, JOULE_ERR_NOMEM, "node '%s' (%s): out of memory",
                          joule_q_name(node), node->op_type);
    joule_status st = joule_q_conv_init(node, x, w, &s->p, err);
    if (st) {
        free(s);
        return st;
    }
    const joule_q_conv *p = &s->p;
    s->threads = threads < 1 ? 1 : threads;
    s->x_signed = x->dtype == JOULE_I8;
    s->w_signed = w->dtype == JOULE_I8;
    s->depthwise = p->cg == 1 && p->mg == 1;
    /* pixels per chunk: the im2col matrix and the int32 sums each within CONV_CHUNK_BYTES */
    int64_t tile = (int64_t)(CONV_CHUNK_BYTES / (size_t)(p->kdim > 0 ? p->kdim : 1));
    int64_t tile_acc = (int64_t)(CONV_CHUNK_BYTES / ((size_t)(p->mg > 0 ? p->mg : 1) * 4));
    if (tile > tile_acc)
        tile = tile_acc;
    tile = tile / 8 * 8; /* whole 8 x 8 blocks for the transposing output stage */
    if (tile < 64)
        tile = 64;
    if (tile > p->out_size)
        tile = p->out_size > 0 ? p->out_size : 1;
    s->ptile = tile;
    if (!s->depthwise && w->data && (!w_zp || w_zp->data) && p->kdim > 0) {
        s->wpack = calloc((size_t)p->group, sizeof *s->wpack);
        int32_t *zp = malloc(((size_t)p->mg + 1) * sizeof *zp);
        if (!s->wpack || !zp) {
            free(zp);
            joule_q_conv_free(s);
            return joule_fail(err, JOULE_ERR_NOMEM, "node '%s' (%s): out of memory",
                              joule_q_name(node), node->op_type);
        }
        for (int64_t g = 0; g < p->group && !st; g++)
            st = pack_group(p, w, w_zp, g, zp, &s->wpack[g], err);
        free(zp);
        if (st) {
            joule_q_conv_free(s);
            return st;
        }
    }
    joule_q_carver c = {0};
    conv_bufs b;
    conv_carve(&c, s, s->threads, &b);
    if (c.overflow) {
        joule_q_conv_free(s);
        return joule_fail(err, JOULE_ERR_NOMEM, "node '%s' (%s): scratch size overflows",
                          joule_q_name(node), node->op_type);
    }
    s->scratch_bytes = c.used;
    *out = s;
    return JOULE_OK;
}

/* Columns [p0, p0 + pt) of the im2col matrix of image n, group g: row k = (channel, kernel row,
 * kernel column) of W's order holds, for each output pixel of the chunk, the input value it
 * meets there (or pad, the input zero point's bits, outside the input). Rows are pt long, so the
 * GEMM reads this as A transposed (a_trans). Copies are runs along output rows. */
static void im2col(const joule_q_conv *p, const uint8_t *x, int64_t n, int64_t g, int64_t p0,
                   int64_t pt, uint8_t pad, uint8_t *col)
{
    const int64_t plane = p->in_h * p->in_w;
    const uint8_t *xg = x + (size_t)((n * p->c_in + g * p->cg) * plane);
    uint8_t *dst = col;
    for (int64_t c = 0; c < p->cg; c++) {
        const uint8_t *xc = xg + (size_t)(c * plane);
        for (int64_t kh = 0; kh < p->k_h; kh++) {
            for (int64_t kw = 0; kw < p->k_w; kw++, dst += pt) {
                for (int64_t i = 0; i < pt;) {
                    const int64_t pix = p0 + i, oh = pix / p->out_w, ow = pix % p->out_w;
                    int64_t run = p->out_w - ow;
                    if (run > pt - i)
                        run = pt - i;
                    uint8_t *d = dst + i;
                    const int64_t ih = oh * p->stride_h - p->pad_t + kh * p->dil_h;
                    const int64_t iw0 = ow * p->stride_w - p->pad_l + kw * p->dil_w;
                    if (ih < 0 || ih >= p->in_h) {
                        memset(d, pad, (size_t)run);
                    } else if (p->stride_w == 1) {
                        const uint8_t *xr = xc + (size_t)(ih * p->in_w);
                        /* j in [lo, hi) has 0 <= iw0 + j < in_w */
                        int64_t lo = -iw0, hi = p->in_w - iw0;
                        lo = lo < 0 ? 0 : lo > run ? run : lo;
                        hi = hi < lo ? lo : hi > run ? run : hi;
                        memset(d, pad, (size_t)lo);
                        memcpy(d + lo, xr + iw0 + lo, (size_t)(hi - lo));
                        memset(d + hi, pad, (size_t)(run - hi));
                    } else {
                        const uint8_t *xr = xc + (size_t)(ih * p->in_w);
                        for (int64_t j = 0; j < run; j++) {
                            const int64_t iw = iw0 + j * p->stride_w;
                            d[j] = (iw < 0 || iw >= p->in_w) ? pad : xr[iw];
                        }
                    }
                    i += run;
                }
            }
        }
    }
}

/* A 1x1 convolution with unit strides and no padding reads X itself as the im2col matrix. */
static bool is_pointwise(const joule_q_conv *p)
{
    return p->k_h == 1 && p->k_w == 1 && p->stride_h == 1 && p->stride_w == 1 &&
           p->pad_t == 0 && p->pad_l == 0 && p->out_h == p->in_h && p->out_w == p->in_w;
}

/* Depthwise: channel ch of image n, direct sums over the kernel window. */
static void depthwise_channel(const joule_q_conv *p, const joule_view *x, int32_t x_zp,
                              const int32_t *wc, int64_t n, int64_t ch, int32_t *acc_row,
                              const joule_q_emit *e, void *y)
{
    const bool xs = x->dtype == JOULE_I8;
    const size_t plane = (size_t)(p->in_h * p->in_w);
    const uint8_t *xu = (const uint8_t *)x->data + (size_t)(n * p->c_in + ch) * plane;
    const int8_t *xi = (const int8_t *)xu;
    const size_t ybase = (size_t)((n * p->c_out + ch) * p->out_size);
    const size_t esize = e->dtype == JOULE_I32 ? 4 : 1;
    for (int64_t oh = 0; oh < p->out_h; oh++) {
        for (int64_t ow = 0; ow < p->out_w; ow++) {
            const int64_t ih0 = oh * p->stride_h - p->pad_t, iw0 = ow * p->stride_w - p->pad_l;
            uint32_t sum = 0;
            for (int64_t kh = 0; kh < p->k_h; kh++) {
                const int64_t ih = ih0 + kh * p->dil_h;
                if (ih < 0 || ih >= p->in_h)
                    continue;
                const size_t row = (size_t)(ih * p->in_w);
                for (int64_t kw = 0; kw < p->k_w; kw++) {
                    const int64_t iw = iw0 + kw * p->dil_w;
                    if (iw < 0 || iw >= p->in_w)
                        continue;
                    int32_t xv = xs ? xi[row + (size_t)iw] : xu[row + (size_t)iw];
                    sum += (uint32_t)((xv - x_zp) * wc[kh * p->k_w + kw]);
                }
            }
            acc_row[ow] = (int32_t)sum;
        }
        /* one row of pixels as out_w rows of one column, so all use column 0's parameters */
        joule_q_emit_block(e, acc_row, 1, p->out_w, 1, 0,
                           (char *)y + (ybase + (size_t)(oh * p->out_w)) * esize, 1, 0);
    }
}

joule_status joule_q_conv_run(const joule_q_conv_state *s, const joule_node *node,
                              const joule_view *x, const joule_view *x_zp, const joule_view *w,
                              const joule_view *w_zp, const joule_q_emit *e, void *y,
                              void *scratch, joule_error *err)
{
    const int threads = s->threads;
    const joule_q_conv *p = &s->p;
    if (x->rank != p->nsp + 2 || x->dims[0] != p->batch || x->dims[1] != p->c_in ||
        x->dtype != (s->x_signed ? JOULE_I8 : JOULE_U8) ||
        w->dtype != (s->w_signed ? JOULE_I8 : JOULE_U8))
        return joule_fail(err, JOULE_ERR_INVALID, "node '%s' (%s): inputs changed since prepare",
                          joule_q_name(node), node->op_type);
    joule_q_carver c = {.base = scratch};
    conv_bufs b;
    conv_carve(&c, s, threads, &b);
    const int32_t xz = joule_q_int_at(x_zp, 0);
    for (int64_t i = 0; i < p->c_out; i++)
        b.wzp[i] = joule_q_int_at(w_zp, w_zp && w_zp->count != 1 ? (size_t)i : 0);
    const size_t esize = e->dtype == JOULE_I32 ? 4 : 1;

    if (s->depthwise) {
        for (int64_t ch = 0; ch < p->c_out; ch++) {
            for (int64_t k = 0; k < p->k_h * p->k_w; k++)
                b.dw[k] = joule_q_int_at(w, (size_t)(ch * p->k_h * p->k_w + k)) - b.wzp[ch];
            joule_q_emit ec = *e; /* the parameters of column ch */
            if (ec.ibias)
                ec.ibias += ch;
            if (ec.mult)
                ec.mult += ch;
            if (ec.fbias)
                ec.fbias += ch;
            for (int64_t n = 0; n < p->batch; n++)
                depthwise_channel(p, x, xz, b.dw, n, ch, b.row, &ec, y);
        }
        return JOULE_OK;
    }

    const uint8_t pad = (uint8_t)xz; /* the zero point's bits in x's type */
    joule_status st = JOULE_OK;
    for (int64_t g = 0; g < p->group && !st; g++) {
        joule_qgemm_packed *owned = NULL;
        const joule_qgemm_packed *pb = s->wpack ? s->wpack[g] : NULL;
        if (!pb) {
            if ((st = pack_group(p, w, w_zp, g, b.pack_zp, &owned, err)))
                break;
            pb = owned;
        }
        for (int64_t n = 0; n < p->batch && !st; n++) {
            for (int64_t p0 = 0; p0 < p->out_size && !st; p0 += s->ptile) {
                const int64_t pt = p->out_size - p0 < s->ptile ? p->out_size - p0 : s->ptile;
                const uint8_t *a;
                int64_t lda;
                if (is_pointwise(p)) {
                    a = (const uint8_t *)x->data +
                        (size_t)((n * p->c_in + g * p->cg) * p->out_size + p0);
                    lda = p->out_size;
                } else {
                    im2col(p, x->data, n, g, p0, pt, pad, b.rows);
                    a = b.rows;
                    lda = pt;
                }
                joule_qgemm_args args = {
                    .M = pt,
                    .a = a,
                    .a_signed = s->x_signed,
                    .a_trans = true,
                    .lda = lda,
                    .a_zp = &xz,
                    .c = b.acc,
                    .ldc = p->mg,
                    .threads = threads,
                    .scratch = b.gemm,
                    .scratch_bytes = b.gemm_bytes,
                };
                st = joule_qgemm(&args, pb, err);
                if (st)
                    break;
                const size_t y0 = (size_t)((n * p->c_out + g * p->mg) * p->out_size + p0);
                joule_q_emit_block(e, b.acc, p->mg, pt, p->mg, g * p->mg,
                                   (char *)y + y0 * esize, 1, p->out_size);
            }
        }
        joule_qgemm_packed_free(owned);
    }
    return st;
}

void joule_q_conv_ref_acc(const joule_q_conv *p, const joule_view *x, int32_t x_zp,
                          const joule_view *w, const joule_view *w_zp, int64_t n, int64_t oc,
                          int32_t *acc)
{
    const int64_t g = oc / p->mg;
    const int64_t wz = joule_q_int_at(w_zp, w_zp && w_zp->count != 1 ? (size_t)oc : 0);
    for (int64_t oh = 0; oh < p->out_h; oh++) {
        for (int64_t ow = 0; ow < p->out_w; ow++) {
            int64_t sum = 0;
            for (int64_t c = 0; c < p->cg; c++) {
                const int64_t ic = g * p->cg + c;
                for (int64_t kh = 0; kh < p->k_h; kh++) {
                    for (int64_t kw = 0; kw < p->k_w; kw++) {
                        int64_t ih = oh * p->stride_h - p->pad_t + kh * p->dil_h;
                        int64_t iw = ow * p->stride_w - p->pad_l + kw * p->dil_w;
                        if (ih < 0 || ih >= p->in_h || iw < 0 || iw >= p->in_w)
                            continue;
                        int64_t xv = joule_q_int_at(
                            x, (size_t)(((n * p->c_in + ic) * p->in_h + ih) * p->in_w + iw));
                        int64_t wv = joule_q_int_at(
                            w, (size_t)(((oc * p->cg + c) * p->k_h + kh) * p->k_w + kw));
                        sum += (xv - x_zp) * (wv - wz);
                    }
                }
            }
            acc[oh * p->out_w + ow] = (int32_t)(uint32_t)(uint64_t)sum;
        }
    }
}

/* ---- ConvInteger ---- */

static bool zp_ok(const joule_view *zp, joule_dtype t, size_t per_channel)
{
    return !zp || (zp->dtype == t && zp->rank <= 1 &&
                   (zp->count == 1 || (per_channel && zp->count == per_channel)));
}

bool joule_q_conv_integer_supports(const joule_node *node, int64_t opset, int n_in,
                                   const joule_view *const *in)
{
    (void)opset;
    if (n_in < 2 || n_in > 4 || !in[0] || !in[1])
        return false;
    const joule_view *x = in[0], *w = in[1];
    if (!joule_q_is_int8(x->dtype) || !joule_q_is_int8(w->dtype) || w->rank < 1)
        return false;
    return zp_ok(n_in > 2 ? in[2] : NULL, x->dtype, 0) &&
           zp_ok(n_in > 3 ? in[3] : NULL, w->dtype, (size_t)w->dims[0]) &&
           joule_q_conv_supported(node, x, w);
}

static joule_status check_out(const joule_kernel_ctx *ctx, const joule_q_conv *p, joule_dtype t)
{
    const joule_view *y = ctx->out[0];
    int64_t dims[4];
    joule_q_conv_out_dims(p, dims);
    bool ok = y->dtype == t && y->rank == p->nsp + 2;
    for (int i = 0; ok && i < y->rank; i++)
        ok = y->dims[i] == dims[i];
    if (!ok)
        return joule_fail(ctx->err, JOULE_ERR_INVALID,
                          "node '%s' (%s): output type or shape does not match the convolution",
                          joule_q_name(ctx->node), ctx->node->op_type);
    return JOULE_OK;
}

joule_status joule_q_conv_integer_prepare(const joule_kernel_ctx *ctx, void **state,
                                          size_t *scratch_bytes)
{
    joule_q_conv_state *s;
    joule_status st = joule_q_conv_plan(ctx->node, ctx->in[0], ctx->in[1],
                                        ctx->n_in > 3 ? ctx->in[3] : NULL, ctx->threads, &s,
                                        ctx->err);
    if (st)
        return st;
    *state = s;
    *scratch_bytes = s->scratch_bytes;
    return JOULE_OK;
}

joule_status joule_q_conv_integer_run(const joule_kernel_ctx *ctx)
{
    const joule_q_conv_state *s = ctx->state;
    joule_status st = check_out(ctx, &s->p, JOULE_I32);
    if (st)
        return st;
    joule_q_emit e = {.dtype = JOULE_I32};
    return joule_q_conv_run(s, ctx->node, ctx->in[0], ctx->n_in > 2 ? ctx->in[2] : NULL,
                            ctx->in[1], ctx->n_in > 3 ? ctx->in[3] : NULL, &e,
                            ctx->out[0]->data, ctx->scratch, ctx->err);
}

joule_status joule_q_conv_integer_run_ref(const joule_kernel_ctx *ctx)
{
    joule_q_conv p;
    joule_status st = joule_q_conv_init(ctx->node, ctx->in[0], ctx->in[1], &p, ctx->err);
    if (st || (st = check_out(ctx, &p, JOULE_I32)))
        return st;
    const int32_t xz = joule_q_int_at(ctx->n_in > 2 ? ctx->in[2] : NULL, 0);
    int32_t *y = ctx->out[0]->data;
    for (int64_t n = 0; n < p.batch; n++)
        for (int64_t oc = 0; oc < p.c_out; oc++)
            joule_q_conv_ref_acc(&p, ctx->in[0], xz, ctx->in[1],
                                 ctx->n_in > 3 ? ctx->in[3] : NULL, n, oc,
                                 y + (size_t)((n * p.c_out + oc) * p.out_size));
    return JOULE_OK;
}

/* ---- QLinearConv: x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp [, B int32] ---- */

static bool scale_ok(const joule_view *v, size_t per_channel)
{
    return v && joule_q_is_scale_type(v->dtype) && v->rank <= 1 &&
           (v->count == 1 || (per_channel && v->count == per_channel));
}

bool joule_q_qlinear_conv_supports(const joule_node *node, int64_t opset, int n_in,
                                   const joule_view *const *in)
{
    (void)opset;
    if (n_in < 8 || n_in > 9 || !in[0] || !in[3])
        return false;
    const joule_view *x = in[0], *w = in[3];
    if (!joule_q_is_int8(x->dtype) || !joule_q_is_int8(w->dtype) || w->rank < 1)
        return false;
    const size_t m = (size_t)w->dims[0];
    if (!scale_ok(in[1], 0) || !scale_ok(in[4], m) || !scale_ok(in[6], 0))
        return false;
    if (!zp_ok(in[2], x->dtype, 0) || !zp_ok(in[5], w->dtype, m))
        return false;
    if (in[7] && (!joule_q_is_int8(in[7]->dtype) || in[7]->count != 1))
        return false;
    const joule_view *bias = n_in > 8 ? in[8] : NULL;
    if (bias && (bias->dtype != JOULE_I32 || bias->rank != 1 || bias->count != m))
        return false;
    return joule_q_conv_supported(node, x, w);
}

/* The requantization parameters after the conv's own scratch. */
typedef struct qlc_bufs {
    void *conv;
    float *mult;
    int32_t *ibias;
} qlc_bufs;

static void qlc_carve(joule_q_carver *c, const joule_q_conv_state *s, qlc_bufs *b)
{
    b->conv = joule_q_take(c, s->scratch_bytes, 1);
    b->mult = joule_q_take(c, (size_t)s->p.c_out + 1, sizeof(float));
    b->ibias = joule_q_take(c, (size_t)s->p.c_out + 1, sizeof(int32_t));
}

joule_status joule_q_qlinear_conv_prepare(const joule_kernel_ctx *ctx, void **state,
                                          size_t *scratch_bytes)
{
    joule_q_conv_state *s;
    joule_status st = joule_q_conv_plan(ctx->node, ctx->in[0], ctx->in[3], ctx->in[5],
                                        ctx->threads, &s, ctx->err);
    if (st)
        return st;
    joule_q_carver c = {0};
    qlc_bufs b;
    qlc_carve(&c, s, &b);
    if (c.overflow) {
        joule_q_conv_free(s);
        return joule_fail(ctx->err, JOULE_ERR_NOMEM, "node '%s' (%s): scratch size overflows",
                          joule_q_name(ctx->node), ctx->node->op_type);
    }
    *state = s;
    *scratch_bytes = c.used;
    return JOULE_OK;
}

/* Output type: y_zero_point's, uint8 when it is omitted. */
static joule_dtype qlc_out_type(const joule_kernel_ctx *ctx)
{
    return ctx->in[7] ? ctx->in[7]->dtype : JOULE_U8;
}

joule_status joule_q_qlinear_conv_run(const joule_kernel_ctx *ctx)
{
    const joule_q_conv_state *s = ctx->state;
    joule_status st = check_out(ctx, &s->p, qlc_out_type(ctx));
    if (st)
        return st;
    joule_q_carver c = {.base = ctx->scratch};
    qlc_bufs b;
    qlc_carve(&c, s, &b);
    const joule_view *ws = ctx->in[4], *bias = ctx->n_in > 8 ? ctx->in[8] : NULL;
    const float xs = joule_q_scale_at(ctx->in[1], 0), ys = joule_q_scale_at(ctx->in[6], 0);
    for (int64_t oc = 0; oc < s->p.c_out; oc++) {
        b.mult[oc] = joule_q_mult(xs, joule_q_scale_at(ws, ws->count == 1 ? 0 : (size_t)oc), ys);
        b.ibias[oc] = bias ? joule_q_int_at(bias, (size_t)oc) : 0;
    }
    joule_q_emit e = {.dtype = ctx->out[0]->dtype, .ibias = bias ? b.ibias : NULL,
                      .mult = b.mult, .zp = joule_q_int_at(ctx->in[7], 0)};
    joule_q_range(e.dtype, &e.lo, &e.hi);
    return joule_q_conv_run(s, ctx->node, ctx->in[0], ctx->in[2], ctx->in[3], ctx->in[5], &e,
                            ctx->out[0]->data, b.conv, ctx->err);
}

joule_status joule_q_qlinear_conv_run_ref(const joule_kernel_ctx *ctx)
{
    joule_q_conv p;
    joule_status st = joule_q_conv_init(ctx->node, ctx->in[0], ctx->in[3], &p, ctx->err);
    if (st || (st = check_out(ctx, &p, qlc_out_type(ctx))))
        return st;
    int32_t *acc = malloc(((size_t)p.out_size + 1) * sizeof *acc);
    if (!acc)
        return joule_fail(ctx->err, JOULE_ERR_NOMEM, "node '%s' (QLinearConv): out of memory",
                          joule_q_name(ctx->node));
    const joule_view *ws = ctx->in[4], *bias = ctx->n_in > 8 ? ctx->in[8] : NULL;
    const float xs = joule_q_scale_at(ctx->in[1], 0), ys = joule_q_scale_at(ctx->in[6], 0);
    const int32_t xz = joule_q_int_at(ctx->in[2], 0), yz = joule_q_int_at(ctx->in[7], 0);
    joule_view *y = ctx->out[0];
    int32_t lo, hi;
    joule_q_range(y->dtype, &lo, &hi);
    for (int64_t n = 0; n < p.batch; n++) {
        for (int64_t oc = 0; oc < p.c_out; oc++) {
            joule_q_conv_ref_acc(&p, ctx->in[0], xz, ctx->in[3], ctx->in[5], n, oc, acc);
            float mult =
                joule_q_mult(xs, joule_q_scale_at(ws, ws->count == 1 ? 0 : (size_t)oc), ys);
            int32_t bv = bias ? joule_q_int_at(bias, (size_t)oc) : 0;
            for (int64_t i = 0; i < p.out_size; i++)
                joule_q_store(y->dtype, y->data, (size_t)((n * p.c_out + oc) * p.out_size + i),
                              joule_q_requant(joule_q_wrap_add(acc[i], bv), mult, 0.0f, yz, lo,
                                              hi));
        }
    }
    free(acc);
    return JOULE_OK;
}

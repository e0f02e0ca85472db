/* eval/cpu/linalg/conv_transpose.c: fast ConvTranspose (1D/2D/3D) as sgemm + col2im. Per
 * image and group, col = W_g^T x X_g ([C_out/g * k] x input positions, in column tiles), then
 * every column is scattered (added) into the output at out = in * stride + k * dilation - pad.
 * A 1x1, stride-1, unpadded ConvTranspose is one sgemm straight into Y. f16 as in conv.c. */
#include "config.h"
#include "eval/cpu/linalg/linalg.h"

#include <cblas.h>
#include <limits.h>

static bool dtype_ok(int n_in, const joule_view *const *in)
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

bool joule_fast_conv_transpose_supports(const joule_node *node, int64_t opset, int n_in,
                                        const joule_view *const *in)
{
    (void)opset;
    if (!dtype_ok(n_in, in))
        return false;
    joule_conv_params p;
    if (joule_conv_params_init(node, true, in[0], in[1], n_in > 2 ? in[2] : NULL, &p, NULL))
        return true; /* prepare() reports what is wrong */
    return p.c_out / p.group * p.k_size <= INT_MAX && p.in_size <= INT_MAX &&
           p.out_size <= INT_MAX && p.c_in <= INT_MAX;
}

/* Rows of col: C_out/g * kernel size = product of W dims after the first. */
static int64_t col_rows(const joule_kernel_ctx *ctx)
{
    const joule_view *w = ctx->in[1];
    if (w->rank != ctx->in[0]->rank || w->rank < 3)
        return 0;
    int64_t rows = 1;
    for (int i = 1; i < w->rank; i++)
        rows *= w->dims[i];
    return rows;
}

static bool is_direct(const joule_conv_params *p)
{
    for (int s = 0; s < 3; s++)
        if (p->k[s] != 1 || p->stride[s] != 1 || p->pad_begin[s] != 0 || p->in[s] != p->out[s])
            return false;
    return true;
}

joule_status joule_fast_conv_transpose_prepare(const joule_kernel_ctx *ctx, void **state,
                                               size_t *scratch_bytes)
{
    return joule_conv_prepare_common(ctx, true, col_rows(ctx), state, scratch_bytes);
}

/* Adds columns j0 .. j0+jn of col ([cg_out * k][jn]) into one group's output y. Each channel
 * is one task, so no two threads write the same output element. */
static void col2im_tile(const joule_conv_params *p, const float *col, int64_t cg_out, int64_t j0,
                        int64_t jn, float *y, int threads)
{
    (void)threads;
    const int64_t H = p->in[1], W = p->in[2];
    const int64_t OD = p->out[0], OH = p->out[1], OW = p->out[2];
    const int64_t sw = p->stride[2];
    JOULE_LINALG_OMP_FOR(threads)
    for (int64_t c = 0; c < cg_out; c++) {
        float *yc = y + c * p->out_size;
        for (int64_t kk = 0; kk < p->k_size; kk++) {
            int64_t kd = kk / (p->k[1] * p->k[2]), kh = (kk / p->k[2]) % p->k[1];
            int64_t kw = kk % p->k[2];
            int64_t offd = kd * p->dil[0] - p->pad_begin[0];
            int64_t offh = kh * p->dil[1] - p->pad_begin[1];
            int64_t offw = kw * p->dil[2] - p->pad_begin[2];
            const float *src = col + (c * p->k_size + kk) * jn;
            int64_t j = j0, iw = j0 % W, ih = (j0 / W) % H, id = j0 / (W * H);
            while (j < j0 + jn) {
                int64_t seg = W - iw < j0 + jn - j ? W - iw : j0 + jn - j;
                int64_t od = id * p->stride[0] + offd, oh = ih * p->stride[1] + offh;
                if (od >= 0 && od < OD && oh >= 0 && oh < OH) {
                    float *yr = yc + (od * OH + oh) * OW;
                    int64_t lo, hi;
                    joule_valid_range(iw, sw, offw, OW, seg, &lo, &hi);
                    JOULE_LINALG_SIMD
                    for (int64_t t = lo; t < hi; t++)
                        yr[(iw + t) * sw + offw] += src[t];
                }
                src += seg;
                j += seg;
                iw += seg;
                if (iw == W) {
                    iw = 0;
                    if (++ih == H) {
                        ih = 0;
                        id++;
                    }
                }
            }
        }
    }
}

joule_status joule_fast_conv_transpose_run(const joule_kernel_ctx *ctx)
{
    joule_conv_params p;
    joule_conv_bufs b;
    const joule_conv_state *s = ctx->state;
    const int64_t rows = col_rows(ctx);
    joule_status st = joule_conv_run_begin(ctx, true, rows, &p, &b);
    if (st)
        return st;
    const int64_t cg_in = p.c_in / p.group, cg_out = p.c_out / p.group;
    const int64_t isz = p.in_size, osz = p.out_size, tile = s->tile;
    const bool direct = is_direct(&p);
    for (int64_t n = 0; n < p.batch; n++) {
        float *yn = b.y + n * p.c_out * osz;
        joule_conv_fill_bias(yn, p.c_out, osz, b.b);
        if (isz == 0 || rows == 0 || cg_in == 0)
            continue;
        for (int64_t g = 0; g < p.group; g++) {
            const float *xg = b.x + (n * p.c_in + g * cg_in) * isz;
            const float *wg = b.w + g * cg_in * rows; /* [cg_in][cg_out * k] */
            float *yg = yn + g * cg_out * osz;
            if (direct) {
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)cg_out,
                            (blasint)isz, (blasint)cg_in, 1.0f, wg, (blasint)rows, xg,
                            (blasint)isz, 1.0f, yg, (blasint)osz);
                continue;
            }
            for (int64_t j0 = 0; j0 < isz; j0 += tile) {
                int64_t jn = isz - j0 < tile ? isz - j0 : tile;
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)rows, (blasint)jn,
                            (blasint)cg_in, 1.0f, wg, (blasint)rows, xg + j0, (blasint)isz, 0.0f,
                            b.col, (blasint)jn);
                col2im_tile(&p, b.col, cg_out, j0, jn, yg, ctx->threads);
            }
        }
    }
    joule_conv_run_end(ctx, &b);
    return JOULE_OK;
}

/* eval/cpu/linalg/ref.c: the portable reference kernels for MatMul, Gemm, Conv and
 * ConvTranspose: plain loops that follow the ONNX definitions literally (direct convolution, one
 * double accumulator per output element), for f32, f16 and f64. They are the truth the fast
 * kernels are tested against, and the fallback when no fast kernel takes a node. */
#include "eval/cpu/linalg/linalg.h"

static bool float_dtype(joule_dtype t)
{
    return t == JOULE_F32 || t == JOULE_F16 || t == JOULE_F64;
}

/* All present inputs among the first n share one float dtype. */
static bool same_float_dtype(int n_in, const joule_view *const *in, int n)
{
    if (n_in < 1 || !in[0] || !float_dtype(in[0]->dtype))
        return false;
    for (int i = 1; i < n && i < n_in; i++)
        if (in[i] && in[i]->dtype != in[0]->dtype)
            return false;
    return true;
}

bool joule_ref_matmul_supports(const joule_node *node, int64_t opset, int n_in,
                               const joule_view *const *in)
{
    (void)node;
    (void)opset;
    return n_in == 2 && in[0] && in[1] && same_float_dtype(n_in, in, 2) && in[0]->rank >= 1 &&
           in[1]->rank >= 1;
}

bool joule_ref_gemm_supports(const joule_node *node, int64_t opset, int n_in,
                             const joule_view *const *in)
{
    (void)node;
    (void)opset;
    return n_in >= 2 && n_in <= 3 && in[0] && in[1] && same_float_dtype(n_in, in, 3) &&
           in[0]->rank == 2 && in[1]->rank == 2 && (n_in < 3 || !in[2] || in[2]->rank <= 2);
}

/* Conv and ConvTranspose: X, W and optional B. */
bool joule_ref_conv_supports(const joule_node *node, int64_t opset, int n_in,
                             const joule_view *const *in)
{
    (void)node;
    (void)opset;
    return n_in >= 2 && n_in <= 3 && in[0] && in[1] && same_float_dtype(n_in, in, 3) &&
           in[0]->rank >= 3 && in[0]->rank <= 2 + JOULE_CONV_MAX_SPATIAL &&
           in[1]->rank == in[0]->rank;
}

joule_status joule_ref_matmul_run(const joule_kernel_ctx *ctx)
{
    const joule_view *a = ctx->in[0], *b = ctx->in[1];
    joule_view *y = ctx->out[0];
    joule_matmul_params p;
    joule_status st = joule_matmul_params_init(ctx->node, a, b, &p, ctx->err);
    if (st || (st = joule_linalg_check_out(ctx->node, y, p.out_rank, p.out_dims, ctx->err)))
        return st;
    joule_dtype t = a->dtype;
    size_t m = (size_t)p.m, n = (size_t)p.n, k = (size_t)p.k;
    for (int64_t bi = 0; bi < p.batches; bi++) {
        int64_t am, bm;
        joule_matmul_batch(&p, bi, &am, &bm);
        size_t ao = (size_t)am * m * k, bo = (size_t)bm * k * n, yo = (size_t)bi * m * n;
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++) {
                double acc = 0.0;
                for (size_t q = 0; q < k; q++)
                    acc += joule_linalg_load(t, a->data, ao + i * k + q) *
                           joule_linalg_load(t, b->data, bo + q * n + j);
                joule_linalg_store(t, y->data, yo + i * n + j, acc);
            }
    }
    return JOULE_OK;
}

joule_status joule_ref_gemm_run(const joule_kernel_ctx *ctx)
{
    const joule_view *a = ctx->in[0], *b = ctx->in[1];
    const joule_view *c = ctx->n_in > 2 ? ctx->in[2] : NULL;
    joule_view *y = ctx->out[0];
    joule_gemm_params p;
    joule_status st = joule_gemm_params_init(ctx->node, a, b, c, &p, ctx->err);
    int64_t dims[2] = {p.m, p.n};
    if (st || (st = joule_linalg_check_out(ctx->node, y, 2, dims, ctx->err)))
        return st;
    joule_dtype t = a->dtype;
    size_t m = (size_t)p.m, n = (size_t)p.n, k = (size_t)p.k;
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double acc = 0.0;
            for (size_t q = 0; q < k; q++) {
                size_t ai = p.trans_a ? q * m + i : i * k + q;
                size_t bi = p.trans_b ? j * k + q : q * n + j;
                acc += joule_linalg_load(t, a->data, ai) * joule_linalg_load(t, b->data, bi);
            }
            double v = (double)p.alpha * acc;
            if (p.has_c) {
                size_t ci = (p.c_rows == 1 ? 0 : i) * (size_t)p.c_cols + (p.c_cols == 1 ? 0 : j);
                v += (double)p.beta * joule_linalg_load(t, c->data, ci);
            }
            joule_linalg_store(t, y->data, i * n + j, v);
        }
    return JOULE_OK;
}

/* Shared by Conv and ConvTranspose: parses, checks the output and returns the bias view. */
static joule_status conv_setup(const joule_kernel_ctx *ctx, bool transpose, joule_conv_params *p,
                               const joule_view **bias)
{
    *bias = ctx->n_in > 2 ? ctx->in[2] : NULL;
    joule_status st =
        joule_conv_params_init(ctx->node, transpose, ctx->in[0], ctx->in[1], *bias, p, ctx->err);
    if (st)
        return st;
    int64_t dims[JOULE_MAX_RANK];
    joule_conv_out_dims(p, dims);
    return joule_linalg_check_out(ctx->node, ctx->out[0], ctx->in[0]->rank, dims, ctx->err);
}

joule_status joule_ref_conv_run(const joule_kernel_ctx *ctx)
{
    joule_conv_params p;
    const joule_view *bias;
    joule_status st = conv_setup(ctx, false, &p, &bias);
    if (st)
        return st;
    const joule_view *x = ctx->in[0], *w = ctx->in[1];
    joule_view *y = ctx->out[0];
    joule_dtype t = x->dtype;
    const int64_t cg_in = p.c_in / p.group, cg_out = p.c_out / p.group;
    const int64_t D = p.in[0], H = p.in[1], W = p.in[2];
    size_t yi = 0;
    for (int64_t n = 0; n < p.batch; n++)
        for (int64_t oc = 0; oc < p.c_out; oc++) {
            int64_t g = oc / cg_out;
            for (int64_t od = 0; od < p.out[0]; od++)
                for (int64_t oh = 0; oh < p.out[1]; oh++)
                    for (int64_t ow = 0; ow < p.out[2]; ow++) {
                        double acc = bias ? joule_linalg_load(t, bias->data, (size_t)oc) : 0.0;
                        for (int64_t icg = 0; icg < cg_in; icg++) {
                            int64_t ic = g * cg_in + icg;
                            for (int64_t kd = 0; kd < p.k[0]; kd++) {
                                int64_t id = od * p.stride[0] + kd * p.dil[0] - p.pad_begin[0];
                                if (id < 0 || id >= D)
                                    continue;
                                for (int64_t kh = 0; kh < p.k[1]; kh++) {
                                    int64_t ih = oh * p.stride[1] + kh * p.dil[1] - p.pad_begin[1];
                                    if (ih < 0 || ih >= H)
                                        continue;
                                    for (int64_t kw = 0; kw < p.k[2]; kw++) {
                                        int64_t iw =
                                            ow * p.stride[2] + kw * p.dil[2] - p.pad_begin[2];
                                        if (iw < 0 || iw >= W)
                                            continue;
                                        size_t xi = (size_t)((((n * p.c_in + ic) * D + id) * H +
                                                              ih) * W + iw);
                                        size_t wi = (size_t)((((oc * cg_in + icg) * p.k[0] + kd) *
                                                              p.k[1] + kh) * p.k[2] + kw);
                                        acc += joule_linalg_load(t, x->data, xi) *
                                               joule_linalg_load(t, w->data, wi);
                                    }
                                }
                            }
                        }
                        joule_linalg_store(t, y->data, yi++, acc);
                    }
        }
    return JOULE_OK;
}

/* Input position feeding output position o through kernel tap k, or -1:
 * o = i * stride + k * dil - pad  =>  i = (o + pad - k * dil) / stride when that divides. */
static int64_t transpose_src(int64_t o, int64_t k, int s, const joule_conv_params *p)
{
    int64_t t = o + p->pad_begin[s] - k * p->dil[s];
    if (t < 0 || t % p->stride[s] != 0)
        return -1;
    t /= p->stride[s];
    return t < p->in[s] ? t : -1;
}

joule_status joule_ref_conv_transpose_run(const joule_kernel_ctx *ctx)
{
    joule_conv_params p;
    const joule_view *bias;
    joule_status st = conv_setup(ctx, true, &p, &bias);
    if (st)
        return st;
    const joule_view *x = ctx->in[0], *w = ctx->in[1];
    joule_view *y = ctx->out[0];
    joule_dtype t = x->dtype;
    const int64_t cg_in = p.c_in / p.group, cg_out = p.c_out / p.group;
    size_t yi = 0;
    for (int64_t n = 0; n < p.batch; n++)
        for (int64_t oc = 0; oc < p.c_out; oc++) {
            int64_t g = oc / cg_out, ocg = oc % cg_out;
            for (int64_t od = 0; od < p.out[0]; od++)
                for (int64_t oh = 0; oh < p.out[1]; oh++)
                    for (int64_t ow = 0; ow < p.out[2]; ow++) {
                        double acc = bias ? joule_linalg_load(t, bias->data, (size_t)oc) : 0.0;
                        for (int64_t icg = 0; icg < cg_in; icg++) {
                            int64_t ic = g * cg_in + icg;
                            for (int64_t kd = 0; kd < p.k[0]; kd++) {
                                int64_t id = transpose_src(od, kd, 0, &p);
                                if (id < 0)
                                    continue;
                                for (int64_t kh = 0; kh < p.k[1]; kh++) {
                                    int64_t ih = transpose_src(oh, kh, 1, &p);
                                    if (ih < 0)
                                        continue;
                                    for (int64_t kw = 0; kw < p.k[2]; kw++) {
                                        int64_t iw = transpose_src(ow, kw, 2, &p);
                                        if (iw < 0)
                                            continue;
                                        size_t xi = (size_t)((((n * p.c_in + ic) * p.in[0] + id) *
                                                              p.in[1] + ih) * p.in[2] + iw);
                                        size_t wi = (size_t)((((ic * cg_out + ocg) * p.k[0] + kd) *
                                                              p.k[1] + kh) * p.k[2] + kw);
                                        acc += joule_linalg_load(t, x->data, xi) *
                                               joule_linalg_load(t, w->data, wi);
                                    }
                                }
                            }
                        }
                        joule_linalg_store(t, y->data, yi++, acc);
                    }
        }
    return JOULE_OK;
}

const joule_kernel joule_cpu_kernels_linalg_ref[] = {
    {.op_type = "MatMul", .domain = "", .name = "cpu.ref.matmul",
     .supports = joule_ref_matmul_supports, .run = joule_ref_matmul_run},
    {.op_type = "Gemm", .domain = "", .name = "cpu.ref.gemm",
     .supports = joule_ref_gemm_supports, .run = joule_ref_gemm_run},
    {.op_type = "Conv", .domain = "", .name = "cpu.ref.conv",
     .supports = joule_ref_conv_supports, .run = joule_ref_conv_run},
    {.op_type = "ConvTranspose", .domain = "", .name = "cpu.ref.conv_transpose",
     .supports = joule_ref_conv_supports, .run = joule_ref_conv_transpose_run},
    {.op_type = NULL},
};

/* eval/cpu/shape/depth_space.c: DepthToSpace (modes DCR and CRD) and SpaceToDepth on 4-D NCHW
 * tensors. Each is a reshape to 6-D, a transpose and a reshape back, so each is one strided copy
 * over a 6-D view of the output whose strides read the right input channel and pixel. */
#include <string.h>

#include "eval/cpu/shape/shape_internal.h"

bool jsk_depth_to_space_supports(const joule_node *node, int64_t opset, int n_in,
                                 const joule_view *const *in)
{
    if (n_in < 1 || !in[0] || in[0]->rank != 4 || jsk_elem_size(in[0]->dtype) == 0)
        return false;
    if (joule_attr_int(node, "blocksize", 0) < 1)
        return false;
    if (opset >= 11 && strcmp(node->op_type, "DepthToSpace") == 0)
        return jsk_attr_is(node, "mode", "DCR", "DCR") || jsk_attr_is(node, "mode", "DCR", "CRD");
    return true;
}

/* blocksize, checked so that b*b and the output dims cannot overflow. */
static joule_status blocksize(const joule_kernel_ctx *ctx, int64_t *b)
{
    *b = joule_attr_int(ctx->node, "blocksize", 0);
    if (*b < 1 || *b > ((int64_t)1 << 20))
        return jsk_fail(ctx, JOULE_ERR_INVALID, "blocksize %lld is out of range", (long long)*b);
    return JOULE_OK;
}

joule_status jsk_depth_to_space_run(const joule_kernel_ctx *ctx)
{
    const joule_view *x = ctx->in[0];
    int64_t b;
    joule_status st = blocksize(ctx, &b);
    if (st)
        return st;
    bool crd = ctx->opset >= 11 && jsk_attr_is(ctx->node, "mode", "DCR", "CRD");
    if (!crd && ctx->opset >= 11 && !jsk_attr_is(ctx->node, "mode", "DCR", "DCR"))
        return jsk_fail(ctx, JOULE_ERR_UNSUPPORTED, "mode must be DCR or CRD");
    int64_t n = x->dims[0], c = x->dims[1], h = x->dims[2], w = x->dims[3];
    if (c % (b * b) != 0)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "channels %lld are not a multiple of blocksize^2 %lld",
                        (long long)c, (long long)(b * b));
    if (h > INT64_MAX / b || w > INT64_MAX / b)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "output dims overflow");
    int64_t oc = c / (b * b);
    int64_t dims[4] = {n, oc, h * b, w * b};
    if ((st = jsk_check_out(ctx, 0, x->dtype, 4, dims)))
        return st;
    if (ctx->out[0]->count == 0)
        return JOULE_OK;
    const int64_t sn = c * h * w, sc = h * w, sh = w, sw = 1;
    /* output viewed as [n, oc, h, b1, w, b2]; input channel of (c', b1, b2):
     * DCR: (b1 * b + b2) * oc + c'   CRD: c' * b * b + b1 * b + b2 */
    int64_t vdims[6] = {n, oc, h, b, w, b};
    int64_t vstr[6] = {sn, crd ? b * b * sc : sc, sh, crd ? b * sc : b * oc * sc, sw,
                       crd ? sc : oc * sc};
    jsk_strided_copy(ctx->out[0]->data, x->data, jsk_elem_size(x->dtype), 6, vdims, vstr,
                     ctx->threads);
    return JOULE_OK;
}

joule_status jsk_space_to_depth_run(const joule_kernel_ctx *ctx)
{
    const joule_view *x = ctx->in[0];
    int64_t b;
    joule_status st = blocksize(ctx, &b);
    if (st)
        return st;
    int64_t n = x->dims[0], c = x->dims[1], h = x->dims[2], w = x->dims[3];
    if (h % b != 0 || w % b != 0)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "height %lld and width %lld must be multiples of %lld",
                        (long long)h, (long long)w, (long long)b);
    if (c > INT64_MAX / (b * b))
        return jsk_fail(ctx, JOULE_ERR_INVALID, "output channels overflow");
    int64_t dims[4] = {n, c * b * b, h / b, w / b};
    if ((st = jsk_check_out(ctx, 0, x->dtype, 4, dims)))
        return st;
    if (ctx->out[0]->count == 0)
        return JOULE_OK;
    /* output channel (b1 * b + b2) * c + c' reads input [c', h' * b + b1, w' * b + b2]:
     * output viewed as [n, b1, b2, c, h', w'] */
    const int64_t sn = c * h * w, sc = h * w, sh = w;
    int64_t vdims[6] = {n, b, b, c, h / b, w / b};
    int64_t vstr[6] = {sn, sh, 1, sc, b * sh, b};
    jsk_strided_copy(ctx->out[0]->data, x->data, jsk_elem_size(x->dtype), 6, vdims, vstr,
                     ctx->threads);
    return JOULE_OK;
}

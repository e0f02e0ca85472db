/* eval/cpu/shape/copy.c: ops whose output holds the input's bytes unchanged under new dims:
 * Reshape, Flatten, Squeeze, Unsqueeze, Identity, and Dropout at inference (plus its all-true
 * mask). The engine has already inferred the output dims; the kernel checks that the byte
 * counts agree and copies (the engine may alias the buffers later, which the copy tolerates). */
#include <string.h>

#include "eval/cpu/shape/shape_internal.h"

bool jsk_copy_supports(const joule_node *node, int64_t opset, int n_in,
                       const joule_view *const *in)
{
    (void)node;
    (void)opset;
    return n_in >= 1 && in[0] && jsk_bytes_copyable(in[0]->dtype);
}

/* out[0] = in[0], checked. */
static joule_status copy_first(const joule_kernel_ctx *ctx)
{
    const joule_view *in = ctx->n_in >= 1 ? ctx->in[0] : NULL;
    if (!in)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "input 0 is missing");
    if (ctx->n_out < 1 || !ctx->out[0])
        return jsk_fail(ctx, JOULE_ERR_INVALID, "output 0 is missing");
    const joule_view *out = ctx->out[0];
    if (out->dtype != in->dtype)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "output dtype %s differs from input dtype %s",
                        joule_dtype_name(out->dtype), joule_dtype_name(in->dtype));
    if (out->count != in->count)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "output has %zu elements but input has %zu",
                        out->count, in->count);
    size_t bytes = joule_dtype_bytes(in->dtype, in->count);
    if (bytes == 0 || out->data == in->data)
        return JOULE_OK;
    if (!in->data || !out->data)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "tensor without a buffer");
    memmove(out->data, in->data, bytes);
    return JOULE_OK;
}

joule_status jsk_copy_run(const joule_kernel_ctx *ctx)
{
    return copy_first(ctx);
}

/* Value of a scalar input as double, or dflt when absent; false when unreadable. */
static bool scalar_value(const joule_view *v, double dflt, double *out)
{
    if (!v) {
        *out = dflt;
        return true;
    }
    if (!v->data || v->count != 1)
        return false;
    if (v->dtype == JOULE_F64) {
        memcpy(out, v->data, sizeof *out);
        return true;
    }
    const joule_dtype_traits *t = joule_dtype_info(v->dtype);
    if (!t->to_f32)
        return false;
    *out = t->to_f32(v->data, 0);
    return true;
}

/* Inference semantics only: training mode with a non-zero ratio would drop at random. */
static bool training_drops(int64_t opset, int n_in, const joule_view *const *in, bool *known)
{
    *known = true;
    if (opset < 12 || n_in < 3 || !in[2])
        return false;
    double training = 0, ratio = 0.5;
    if (!scalar_value(in[2], 0, &training) || !scalar_value(n_in >= 2 ? in[1] : NULL, 0.5, &ratio)) {
        *known = false;
        return false;
    }
    return training != 0 && ratio != 0;
}

bool jsk_dropout_supports(const joule_node *node, int64_t opset, int n_in,
                          const joule_view *const *in)
{
    if (!jsk_copy_supports(node, opset, n_in, in))
        return false;
    bool known;
    /* A constant training_mode=true with a non-zero ratio is training, not inference. Unknown
     * (computed at run time) is accepted and checked in run. */
    return !training_drops(opset, n_in, in, &known);
}

joule_status jsk_dropout_run(const joule_kernel_ctx *ctx)
{
    bool known;
    if (training_drops(ctx->opset, ctx->n_in, ctx->in, &known))
        return jsk_fail(ctx, JOULE_ERR_UNSUPPORTED,
                        "training_mode with a non-zero ratio (random dropout) is not supported");
    if (!known)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "ratio and training_mode must be scalars");
    joule_status st = copy_first(ctx);
    if (st || ctx->n_out < 2 || !ctx->out[1])
        return st;
    /* mask: all true (nothing dropped). Bool since opset 10; the input's type before. */
    joule_view *mask = ctx->out[1];
    if (mask->count != ctx->in[0]->count)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "mask has %zu elements but input has %zu",
                        mask->count, ctx->in[0]->count);
    if (mask->count == 0)
        return JOULE_OK;
    if (!mask->data)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "mask without a buffer");
    if (mask->dtype == JOULE_BOOL) {
        memset(mask->data, 1, mask->count);
        return JOULE_OK;
    }
    const joule_dtype_traits *t = joule_dtype_info(mask->dtype);
    size_t es = jsk_elem_size(mask->dtype);
    if (!t->from_f32 || es == 0)
        return jsk_fail(ctx, JOULE_ERR_UNSUPPORTED, "mask dtype %s is not supported",
                        joule_dtype_name(mask->dtype));
    unsigned char one[JSK_MAX_ELEM];
    t->from_f32(one, 0, 1.0f);
    jsk_fill(mask->data, one, es, mask->count);
    return JOULE_OK;
}

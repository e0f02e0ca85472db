/* eval/cpu/shape/shape_size.c: Shape (with the start/end attributes of opset 15) and Size.
 * Both read only the input's dims, so they accept every dtype, strings included. */
#include <string.h>

#include "eval/cpu/shape/shape_internal.h"

bool jsk_shape_supports(const joule_node *node, int64_t opset, int n_in,
                        const joule_view *const *in)
{
    (void)node;
    (void)opset;
    return n_in >= 1 && in[0] != NULL;
}

joule_status jsk_shape_run(const joule_kernel_ctx *ctx)
{
    const joule_view *in = ctx->in[0];
    int64_t r = in->rank, start = 0, end = r;
    if (ctx->opset >= 15) {
        start = joule_attr_int(ctx->node, "start", 0);
        end = joule_attr_int(ctx->node, "end", r);
        if (start < 0)
            start += r;
        if (end < 0)
            end += r;
        start = start < 0 ? 0 : start > r ? r : start;
        end = end < 0 ? 0 : end > r ? r : end;
    }
    int64_t n = end > start ? end - start : 0;
    joule_status st = jsk_check_out(ctx, 0, JOULE_I64, 1, &n);
    if (st)
        return st;
    if (n)
        memcpy(ctx->out[0]->data, in->dims + start, (size_t)n * sizeof(int64_t));
    return JOULE_OK;
}

joule_status jsk_size_run(const joule_kernel_ctx *ctx)
{
    joule_status st = jsk_check_out(ctx, 0, JOULE_I64, 0, NULL);
    if (st)
        return st;
    int64_t n = (int64_t)ctx->in[0]->count;
    memcpy(ctx->out[0]->data, &n, sizeof n);
    return JOULE_OK;
}

/* eval/cpu/pool_norm/common.c: helpers shared by the pool/norm kernels: float32 shadows for
 * float16/bfloat16/int8/uint8 tensors, axis and attribute parsing, output shape checks. */
#include <math.h>
#include <string.h>

#include "eval/cpu/pool_norm/pool_norm.h"
#include "joule/dtype.h"

#define PN_ALIGN 64

const char *pn_name(const joule_node *node)
{
    return node && node->name && *node->name ? node->name : "(unnamed)";
}

bool pn_shadowed(joule_dtype t)
{
    return t == JOULE_F16 || t == JOULE_BF16 || t == JOULE_I8 || t == JOULE_U8;
}

bool pn_floatlike(joule_dtype t)
{
    return t == JOULE_F32 || t == JOULE_F64 || pn_shadowed(t);
}

/* Bytes of one float32 shadow of count elements (checked by add_piece first). */
static size_t piece_bytes(size_t count)
{
    return (count * sizeof(float) + PN_ALIGN - 1) / PN_ALIGN * PN_ALIGN;
}

static bool add_piece(size_t *total, size_t count)
{
    if (count > (SIZE_MAX - PN_ALIGN) / sizeof(float))
        return false;
    size_t b = piece_bytes(count);
    if (*total > SIZE_MAX - b)
        return false;
    *total += b;
    return true;
}

joule_status pn_shadow_bytes(const joule_kernel_ctx *ctx, unsigned skip_inputs, size_t *bytes)
{
    size_t total = 0;
    bool ok = true;
    for (int i = 0; i < ctx->n_in && ok; i++)
        if (ctx->in[i] && !(skip_inputs & (1u << i)) && pn_shadowed(ctx->in[i]->dtype))
            ok = add_piece(&total, ctx->in[i]->count);
    for (int i = 0; i < ctx->n_out && ok; i++)
        if (ctx->out[i] && pn_shadowed(ctx->out[i]->dtype))
            ok = add_piece(&total, ctx->out[i]->count);
    if (!ok)
        return joule_fail(ctx->err, JOULE_ERR_NOMEM, "%s (%s): scratch size overflows",
                          pn_name(ctx->node), ctx->node->op_type);
    *bytes = total;
    return JOULE_OK;
}

joule_status pn_prepare_shadows(const joule_kernel_ctx *ctx, size_t extra, size_t *scratch_bytes)
{
    size_t b;
    joule_status st = pn_shadow_bytes(ctx, 0, &b);
    if (st)
        return st;
    if (b > SIZE_MAX - extra)
        return joule_fail(ctx->err, JOULE_ERR_NOMEM, "%s (%s): scratch size overflows",
                          pn_name(ctx->node), ctx->node->op_type);
    *scratch_bytes = b + extra;
    return JOULE_OK;
}

static void widen(const joule_view *v, float *dst)
{
    size_t n = v->count;
    switch (v->dtype) {
    case JOULE_F16: {
        const uint16_t *s = v->data;
        for (size_t i = 0; i < n; i++)
            dst[i] = joule_f16_to_f32(s[i]);
        break;
    }
    case JOULE_BF16: {
        const uint16_t *s = v->data;
        for (size_t i = 0; i < n; i++)
            dst[i] = joule_bf16_to_f32(s[i]);
        break;
    }
    case JOULE_I8: {
        const int8_t *s = v->data;
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)s[i];
        break;
    }
    case JOULE_U8: {
        const uint8_t *s = v->data;
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)s[i];
        break;
    }
    default:
        break;
    }
}

static void narrow(const float *src, joule_view *v)
{
    size_t n = v->count;
    switch (v->dtype) {
    case JOULE_F16: {
        uint16_t *d = v->data;
        for (size_t i = 0; i < n; i++)
            d[i] = joule_f32_to_f16(src[i]);
        break;
    }
    case JOULE_BF16: {
        uint16_t *d = v->data;
        for (size_t i = 0; i < n; i++)
            d[i] = joule_f32_to_bf16(src[i]);
        break;
    }
    case JOULE_I8:
    case JOULE_U8: {
        /* round to nearest even and saturate, as the dtype traits do */
        const joule_dtype_traits *tr = joule_dtype_info(v->dtype);
        for (size_t i = 0; i < n; i++)
            tr->from_f32(v->data, i, src[i]);
        break;
    }
    default:
        break;
    }
}

joule_status pn_run_shadowed(const joule_kernel_ctx *ctx, unsigned skip_inputs,
                             pn_native_fn native)
{
    bool any = false;
    for (int i = 0; i < ctx->n_in; i++)
        if (ctx->in[i] && !(skip_inputs & (1u << i)) && pn_shadowed(ctx->in[i]->dtype))
            any = true;
    for (int i = 0; i < ctx->n_out; i++)
        if (ctx->out[i] && pn_shadowed(ctx->out[i]->dtype))
            any = true;
    if (!any)
        return native(ctx);
    if (ctx->n_in > PN_MAX_IO || ctx->n_out > PN_MAX_IO)
        return joule_fail(ctx->err, JOULE_ERR_UNSUPPORTED, "%s (%s): too many inputs or outputs",
                          pn_name(ctx->node), ctx->node->op_type);
    size_t bytes;
    joule_status st = pn_shadow_bytes(ctx, skip_inputs, &bytes);
    if (st)
        return st;
    if (bytes && !ctx->scratch)
        return joule_fail(ctx->err, JOULE_ERR_INVALID, "%s (%s): run without prepared scratch",
                          pn_name(ctx->node), ctx->node->op_type);

    joule_view in_v[PN_MAX_IO], out_v[PN_MAX_IO];
    const joule_view *in_p[PN_MAX_IO];
    joule_view *out_p[PN_MAX_IO];
    char *cur = ctx->scratch;
    for (int i = 0; i < ctx->n_in; i++) {
        in_p[i] = ctx->in[i];
        if (!ctx->in[i] || (skip_inputs & (1u << i)) || !pn_shadowed(ctx->in[i]->dtype))
            continue;
        in_v[i] = *ctx->in[i];
        in_v[i].dtype = JOULE_F32;
        in_v[i].data = cur;
        if (ctx->in[i]->data)
            widen(ctx->in[i], (float *)cur);
        else
            in_v[i].data = NULL;
        in_p[i] = &in_v[i];
        cur += piece_bytes(ctx->in[i]->count);
    }
    for (int i = 0; i < ctx->n_out; i++) {
        out_p[i] = ctx->out[i];
        if (!ctx->out[i] || !pn_shadowed(ctx->out[i]->dtype))
            continue;
        out_v[i] = *ctx->out[i];
        out_v[i].dtype = JOULE_F32;
        out_v[i].data = cur;
        out_p[i] = &out_v[i];
        cur += piece_bytes(ctx->out[i]->count);
    }
    joule_kernel_ctx sub = *ctx;
    sub.in = in_p;
    sub.out = out_p;
    sub.scratch = cur;
    st = native(&sub);
    if (st)
        return st;
    for (int i = 0; i < ctx->n_out; i++)
        if (out_p[i] && out_p[i] != ctx->out[i])
            narrow(out_v[i].data, ctx->out[i]);
    return JOULE_OK;
}

bool pn_axis(int64_t axis, int rank, int *out)
{
    if (axis < -(int64_t)rank || axis >= rank)
        return false;
    *out = (int)(axis < 0 ? axis + rank : axis);
    return true;
}

size_t pn_prod(const int64_t *dims, int from, int to)
{
    size_t p = 1;
    for (int i = from; i < to; i++)
        p *= (size_t)dims[i];
    return p;
}

double pn_load(joule_dtype t, const void *data, size_t i)
{
    switch (t) {
    case JOULE_F32:
        return ((const float *)data)[i];
    case JOULE_F64:
        return ((const double *)data)[i];
    case JOULE_I32:
        return ((const int32_t *)data)[i];
    case JOULE_I64:
        return (double)((const int64_t *)data)[i];
    default: {
        const joule_dtype_traits *tr = joule_dtype_info(t);
        return tr->to_f32 ? tr->to_f32(data, i) : 0.0;
    }
    }
}

joule_status pn_check_out(const joule_kernel_ctx *ctx, int index, int rank, const int64_t *dims)
{
    const joule_view *v = index < ctx->n_out ? ctx->out[index] : NULL;
    bool ok = v && v->rank == rank;
    for (int i = 0; ok && i < rank; i++)
        ok = v->dims[i] == dims[i];
    if (!ok)
        return joule_fail(ctx->err, JOULE_ERR_INVALID,
                          "%s (%s): output %d has not the shape the op computes",
                          pn_name(ctx->node), ctx->node->op_type, index);
    return JOULE_OK;
}

bool pn_attr_ints(const joule_node *node, const char *name, int64_t *v, int max, int *n)
{
    const joule_attr *a = joule_node_attr(node, name);
    *n = 0;
    if (!a)
        return true;
    if (a->type != JOULE_ATTR_INTS || a->count > (size_t)max)
        return false;
    if (a->count)
        memcpy(v, a->ints, a->count * sizeof *v);
    *n = (int)a->count;
    return true;
}

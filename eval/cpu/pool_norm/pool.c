/* eval/cpu/pool_norm/pool.c: MaxPool and AveragePool (1D, 2D, 3D and up) over NCHW-style
 * tensors: kernel_shape, strides, pads, auto_pad, dilations (MaxPool), ceil_mode,
 * count_include_pad (AveragePool), and MaxPool's optional int64 Indices output (storage_order
 * 0 or 1). float and double natively; float16, bfloat16, int8 and uint8 through float32. */
#include <math.h>
#include <string.h>

#include "eval/cpu/pool_norm/pool_norm.h"

#define PN_POOL_MAX_SPATIAL (JOULE_MAX_RANK - 2)
/* Attribute values beyond this are refused, so window arithmetic cannot overflow int64. */
#define PN_POOL_ATTR_MAX ((int64_t)1 << 31)

typedef struct pool_params {
    int ns; /* spatial dims */
    int64_t k[PN_POOL_MAX_SPATIAL], s[PN_POOL_MAX_SPATIAL], d[PN_POOL_MAX_SPATIAL];
    int64_t pb[PN_POOL_MAX_SPATIAL], pe[PN_POOL_MAX_SPATIAL]; /* pads at begin / end */
    int64_t in[PN_POOL_MAX_SPATIAL], out[PN_POOL_MAX_SPATIAL];
    bool is_max, count_include_pad, ceil_mode;
    int storage_order;
} pool_params;

static inline int64_t pn_min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static int64_t ceil_div(int64_t a, int64_t b)
{
    return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}

static bool str_is(joule_string s, const char *lit)
{
    return s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

/* Parses the attributes of node for an input of rank/dims, computes pads (auto_pad) and the
 * spec's output spatial sizes (floor, or ceil with ceil_mode). Returns false with a reason in
 * *why when the node is malformed or asks for something not implemented. */
static bool pool_parse(const joule_node *node, int rank, const int64_t *dims, bool is_max,
                       pool_params *p, const char **why)
{
    memset(p, 0, sizeof *p);
    p->is_max = is_max;
    if (rank < 3 || rank > JOULE_MAX_RANK) {
        *why = "input rank must be 3 or more (N, C, spatial...)";
        return false;
    }
    p->ns = rank - 2;
    int nk, nsd, nd, np;
    int64_t pads[2 * PN_POOL_MAX_SPATIAL];
    if (!pn_attr_ints(node, "kernel_shape", p->k, PN_POOL_MAX_SPATIAL, &nk) || nk != p->ns) {
        *why = "kernel_shape missing or not one size per spatial axis";
        return false;
    }
    if (!pn_attr_ints(node, "strides", p->s, PN_POOL_MAX_SPATIAL, &nsd) ||
        (nsd && nsd != p->ns) ||
        !pn_attr_ints(node, "dilations", p->d, PN_POOL_MAX_SPATIAL, &nd) ||
        (nd && nd != p->ns) ||
        !pn_attr_ints(node, "pads", pads, 2 * PN_POOL_MAX_SPATIAL, &np) ||
        (np && np != 2 * p->ns)) {
        *why = "strides, dilations or pads of the wrong length";
        return false;
    }
    for (int i = 0; i < p->ns; i++) {
        if (!nsd)
            p->s[i] = 1;
        if (!nd)
            p->d[i] = 1;
        p->pb[i] = np ? pads[i] : 0;
        p->pe[i] = np ? pads[p->ns + i] : 0;
        p->in[i] = dims[2 + i];
        if (p->k[i] < 1 || p->k[i] > PN_POOL_ATTR_MAX || p->s[i] < 1 ||
            p->s[i] > PN_POOL_ATTR_MAX || p->d[i] < 1 || p->d[i] > PN_POOL_ATTR_MAX ||
            p->pb[i] < 0 || p->pb[i] > PN_POOL_ATTR_MAX || p->pe[i] < 0 ||
            p->pe[i] > PN_POOL_ATTR_MAX) {
            *why = "kernel_shape, strides, dilations or pads out of range";
            return false;
        }
        if (!is_max && p->d[i] != 1) {
            *why = "AveragePool dilations (opset 19) not implemented";
            return false;
        }
    }
    int64_t ceil_mode = joule_attr_int(node, "ceil_mode", 0);
    int64_t cip = joule_attr_int(node, "count_include_pad", 0);
    int64_t so = joule_attr_int(node, "storage_order", 0);
    if ((ceil_mode != 0 && ceil_mode != 1) || (cip != 0 && cip != 1) || (so != 0 && so != 1)) {
        *why = "ceil_mode, count_include_pad or storage_order not 0 or 1";
        return false;
    }
    p->ceil_mode = ceil_mode;
    p->count_include_pad = cip;
    p->storage_order = (int)so;

    joule_string ap = joule_attr_string(node, "auto_pad", "NOTSET");
    int mode;
    if (str_is(ap, "NOTSET") || ap.len == 0)
        mode = 0;
    else if (str_is(ap, "VALID"))
        mode = 1;
    else if (str_is(ap, "SAME_UPPER"))
        mode = 2;
    else if (str_is(ap, "SAME_LOWER"))
        mode = 3;
    else {
        *why = "unknown auto_pad";
        return false;
    }
    for (int i = 0; i < p->ns; i++) {
        const int64_t ext = (p->k[i] - 1) * p->d[i] + 1, in = p->in[i];
        if (mode == 1) {
            p->pb[i] = p->pe[i] = 0;
            p->out[i] = in >= ext ? (in - ext) / p->s[i] + 1 : 0;
        } else if (mode >= 2) {
            p->out[i] = ceil_div(in, p->s[i]);
            int64_t total = (p->out[i] - 1) * p->s[i] + ext - in;
            if (total < 0)
                total = 0;
            p->pb[i] = mode == 2 ? total / 2 : total - total / 2;
            p->pe[i] = total - p->pb[i];
        } else {
            const int64_t num = in + p->pb[i] + p->pe[i] - ext;
            if (num < 0) {
                *why = "window larger than the padded input";
                return false;
            }
            p->out[i] = (p->ceil_mode ? ceil_div(num, p->s[i]) : num / p->s[i]) + 1;
        }
    }
    return true;
}

#define T float
#define SUF f32
#include "eval/cpu/pool_norm/pool_tmpl.h"
#undef T
#undef SUF
#define T double
#define SUF f64
#include "eval/cpu/pool_norm/pool_tmpl.h"
#undef T
#undef SUF

static bool pool_supports(const joule_node *node, int n_in, const joule_view *const *in,
                          bool is_max)
{
    if (n_in < 1 || !in[0])
        return false;
    joule_dtype t = in[0]->dtype;
    if (!(t == JOULE_F32 || t == JOULE_F64 || t == JOULE_F16 || t == JOULE_BF16 ||
          (is_max && (t == JOULE_I8 || t == JOULE_U8))))
        return false;
    if (!is_max && node->n_outputs > 1)
        return false;
    if (is_max && node->n_outputs > 2)
        return false;
    pool_params p;
    const char *why;
    return pool_parse(node, in[0]->rank, in[0]->dims, is_max, &p, &why);
}

bool pn_maxpool_supports(const joule_node *node, int64_t opset, int n_in,
                         const joule_view *const *in)
{
    (void)opset;
    return pool_supports(node, n_in, in, true);
}

bool pn_avgpool_supports(const joule_node *node, int64_t opset, int n_in,
                         const joule_view *const *in)
{
    (void)opset;
    return pool_supports(node, n_in, in, false);
}

joule_status pn_pool_prepare(const joule_kernel_ctx *ctx, void **state, size_t *scratch_bytes)
{
    *state = NULL;
    return pn_prepare_shadows(ctx, 0, scratch_bytes);
}

static joule_status pool_native(const joule_kernel_ctx *ctx, bool is_max)
{
    const joule_view *x = ctx->in[0];
    pool_params p;
    const char *why = "";
    if (!pool_parse(ctx->node, x->rank, x->dims, is_max, &p, &why))
        return joule_fail(ctx->err, JOULE_ERR_UNSUPPORTED, "%s (%s): %s", pn_name(ctx->node),
                          ctx->node->op_type, why);
    /* The spec's size, or one less when ceil_mode's last window would start in the end padding
     * (the rule PyTorch and onnxruntime apply); both are computed window by window below. */
    int64_t od[JOULE_MAX_RANK];
    od[0] = x->dims[0];
    od[1] = x->dims[1];
    const joule_view *y = ctx->out[0];
    for (int i = 0; i < p.ns; i++) {
        od[2 + i] = p.out[i];
        if (p.ceil_mode && y && y->rank == x->rank && y->dims[2 + i] == p.out[i] - 1 &&
            (p.out[i] - 1) * p.s[i] >= p.in[i] + p.pb[i]) {
            p.out[i]--;
            od[2 + i]--;
        }
    }
    joule_status st = pn_check_out(ctx, 0, x->rank, od);
    if (st)
        return st;
    int64_t *ind = NULL;
    if (is_max && ctx->n_out > 1 && ctx->out[1]) {
        if (ctx->out[1]->dtype != JOULE_I64)
            return joule_fail(ctx->err, JOULE_ERR_UNSUPPORTED, "%s (%s): Indices must be int64",
                              pn_name(ctx->node), ctx->node->op_type);
        if ((st = pn_check_out(ctx, 1, x->rank, od)))
            return st;
        ind = ctx->out[1]->data;
    }
    if (ctx->out[0]->count == 0)
        return JOULE_OK;
    const size_t planes = (size_t)x->dims[0] * (size_t)x->dims[1];
    const int nt = pn_threads(ctx, x->count + ctx->out[0]->count * (size_t)p.k[0]);
    pool_params q = p;
    if (p.ns == 1) { /* 1D as 2D with a height of 1 */
        q.ns = 2;
        q.in[0] = q.out[0] = q.k[0] = q.s[0] = q.d[0] = 1;
        q.pb[0] = q.pe[0] = 0;
        q.in[1] = p.in[0];
        q.out[1] = p.out[0];
        q.k[1] = p.k[0];
        q.s[1] = p.s[0];
        q.d[1] = p.d[0];
        q.pb[1] = p.pb[0];
        q.pe[1] = p.pe[0];
    }
    if (x->dtype == JOULE_F32) {
        if (q.ns == 2)
            pool2d_f32(&q, x->data, ctx->out[0]->data, ind, planes, nt);
        else
            poolnd_f32(&q, x->data, ctx->out[0]->data, ind, planes, nt);
    } else if (x->dtype == JOULE_F64) {
        if (q.ns == 2)
            pool2d_f64(&q, x->data, ctx->out[0]->data, ind, planes, nt);
        else
            poolnd_f64(&q, x->data, ctx->out[0]->data, ind, planes, nt);
    } else {
        return joule_fail(ctx->err, JOULE_ERR_UNSUPPORTED, "%s (%s): dtype %s not supported",
                          pn_name(ctx->node), ctx->node->op_type, joule_dtype_name(x->dtype));
    }
    return JOULE_OK;
}

static joule_status maxpool_native(const joule_kernel_ctx *ctx)
{
    return pool_native(ctx, true);
}

static joule_status avgpool_native(const joule_kernel_ctx *ctx)
{
    return pool_native(ctx, false);
}

joule_status pn_maxpool_run(const joule_kernel_ctx *ctx)
{
    return pn_run_shadowed(ctx, 0, maxpool_native);
}

joule_status pn_avgpool_run(const joule_kernel_ctx *ctx)
{
    return pn_run_shadowed(ctx, 0, avgpool_native);
}

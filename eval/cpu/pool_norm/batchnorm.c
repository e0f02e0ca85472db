/* eval/cpu/pool_norm/batchnorm.c: BatchNormalization in inference mode,
 * y = (x - mean) / sqrt(var + epsilon) * scale + B per channel (axis 1). When scale, B, mean and
 * var are constants, prepare() folds them once into a per-channel multiplier and offset; otherwise
 * run() folds them into scratch. Training mode (training_mode=1, spatial=0, running-stat outputs)
 * is refused. X float or double natively, float16/bfloat16 through float32. */
#include <math.h>
#include <stdlib.h>

#include "eval/cpu/pool_norm/pool_norm.h"

typedef struct bn_state {
    size_t channels;
    double ab[]; /* a[channels] then b[channels] */
} bn_state;

bool pn_batchnorm_supports(const joule_node *node, int64_t opset, int n_in,
                           const joule_view *const *in)
{
    (void)opset;
    if (n_in != 5 || node->n_outputs < 1)
        return false;
    for (int i = 1; i < node->n_outputs; i++) /* running mean/var outputs: training only */
        if (node->outputs[i])
            return false;
    if (joule_attr_int(node, "training_mode", 0) != 0 || joule_attr_int(node, "spatial", 1) != 1)
        return false;
    for (int i = 0; i < 5; i++)
        if (!in[i] || !pn_floatlike(in[i]->dtype) || in[i]->dtype == JOULE_I8 ||
            in[i]->dtype == JOULE_U8)
            return false;
    if (in[0]->rank < 2)
        return false;
    for (int i = 1; i < 5; i++)
        if (in[i]->rank != 1 || in[i]->dims[0] != in[0]->dims[1])
            return false;
    return true;
}

/* a = scale / sqrt(var + eps), b = B - mean * a, for each channel. */
static void bn_fold(const joule_kernel_ctx *ctx, size_t channels, double *ab)
{
    const double eps = joule_attr_float(ctx->node, "epsilon", 1e-5f);
    const joule_view *sc = ctx->in[1], *bi = ctx->in[2], *mu = ctx->in[3], *var = ctx->in[4];
    for (size_t c = 0; c < channels; c++) {
        double a = pn_load(sc->dtype, sc->data, c) / sqrt(pn_load(var->dtype, var->data, c) + eps);
        ab[c] = a;
        ab[channels + c] = pn_load(bi->dtype, bi->data, c) - pn_load(mu->dtype, mu->data, c) * a;
    }
}

static size_t bn_fold_bytes(size_t channels)
{
    return channels > SIZE_MAX / (2 * sizeof(double)) ? SIZE_MAX : 2 * channels * sizeof(double);
}

joule_status pn_batchnorm_prepare(const joule_kernel_ctx *ctx, void **state, size_t *scratch_bytes)
{
    *state = NULL;
    const size_t channels = (size_t)ctx->in[0]->dims[1];
    const size_t fold = bn_fold_bytes(channels);
    if (fold == SIZE_MAX || fold > SIZE_MAX - sizeof(bn_state))
        return joule_fail(ctx->err, JOULE_ERR_NOMEM, "%s (%s): too many channels",
                          pn_name(ctx->node), ctx->node->op_type);
    bool constant = true;
    for (int i = 1; i < 5; i++)
        constant = constant && ctx->in[i]->data;
    if (constant) {
        bn_state *s = malloc(sizeof *s + fold);
        if (!s)
            return joule_fail(ctx->err, JOULE_ERR_NOMEM, "%s (%s): out of memory",
                              pn_name(ctx->node), ctx->node->op_type);
        s->channels = channels;
        bn_fold(ctx, channels, s->ab);
        *state = s;
    }
    joule_status st = pn_prepare_shadows(ctx, constant ? 0 : fold, scratch_bytes);
    if (st) {
        free(*state);
        *state = NULL;
    }
    return st;
}

void pn_batchnorm_destroy(void *state)
{
    free(state);
}

#define BN_APPLY(T)                                                                               \
    do {                                                                                          \
        const T *xs = x->data;                                                                    \
        T *ys = ctx->out[0]->data;                                                                \
        PN_OMP_FOR                                                                                \
        for (long long pl = 0; pl < n_planes; pl++) {                                             \
            const size_t c = (size_t)pl % channels;                                               \
            const T a = (T)ab[c], b = (T)ab[channels + c];                                        \
            const T *xp = xs + (size_t)pl * plane;                                                \
            T *yp = ys + (size_t)pl * plane;                                                      \
            PN_SIMD                                                                               \
            for (size_t i = 0; i < plane; i++)                                                    \
                yp[i] = xp[i] * a + b;                                                            \
        }                                                                                         \
    } while (0)

static joule_status bn_native(const joule_kernel_ctx *ctx)
{
    const joule_view *x = ctx->in[0];
    joule_status st = pn_check_out(ctx, 0, x->rank, x->dims);
    if (st)
        return st;
    const size_t channels = (size_t)x->dims[1];
    const double *ab;
    const bn_state *s = ctx->state;
    if (s && s->channels == channels) {
        ab = s->ab;
    } else {
        if (!ctx->scratch)
            return joule_fail(ctx->err, JOULE_ERR_INVALID, "%s (%s): run without prepared scratch",
                              pn_name(ctx->node), ctx->node->op_type);
        bn_fold(ctx, channels, ctx->scratch);
        ab = ctx->scratch;
    }
    const size_t plane = pn_prod(x->dims, 2, x->rank);
    const long long n_planes = (long long)pn_prod(x->dims, 0, 2);
    const int nt = pn_threads(ctx, x->count);
    (void)nt;
    if (x->dtype == JOULE_F32)
        BN_APPLY(float);
    else if (x->dtype == JOULE_F64)
        BN_APPLY(double);
    else
        return joule_fail(ctx->err, JOULE_ERR_UNSUPPORTED, "%s (%s): dtype %s not supported",
                          pn_name(ctx->node), ctx->node->op_type, joule_dtype_name(x->dtype));
    return JOULE_OK;
}

joule_status pn_batchnorm_run(const joule_kernel_ctx *ctx)
{
    return pn_run_shadowed(ctx, 0, bn_native);
}

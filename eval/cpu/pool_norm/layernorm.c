/* eval/cpu/pool_norm/layernorm.c: LayerNormalization (opset 17: axis, epsilon, stash_type,
 * optional Mean and InvStdDev outputs) and InstanceNormalization. Statistics are computed in
 * double (at least the precision stash_type asks for), two-pass so variance never goes
 * negative. LayerNormalization's Scale and B may broadcast to the normalized shape; constant
 * ones are expanded once in prepare(). float and double natively, float16/bfloat16 through
 * float32. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/cpu/pool_norm/pool_norm.h"

/* Scale and bias expanded to the normalized shape, in double and float. */
typedef struct ln_params {
    size_t inner;
    double *sd, *bd;
    float *sf, *bf;
} ln_params;

/* Whether v (rank <= n) broadcasts unidirectionally to dims[0..n). */
static bool broadcasts_to(const joule_view *v, int n, const int64_t *dims)
{
    if (v->rank > n)
        return false;
    for (int i = 0; i < v->rank; i++) {
        const int64_t d = v->dims[v->rank - 1 - i], t = dims[n - 1 - i];
        if (d != t && d != 1)
            return false;
    }
    return true;
}

static bool ln_axis(const joule_node *node, int rank, int *axis)
{
    return pn_axis(joule_attr_int(node, "axis", -1), rank, axis);
}

bool pn_layernorm_supports(const joule_node *node, int64_t opset, int n_in,
                           const joule_view *const *in)
{
    (void)opset;
    if (n_in < 2 || n_in > 3 || !in[0] || !in[1] || node->n_outputs < 1 || node->n_outputs > 3)
        return false;
    const joule_view *x = in[0];
    if (x->dtype != JOULE_F32 && x->dtype != JOULE_F64 && x->dtype != JOULE_F16 &&
        x->dtype != JOULE_BF16)
        return false;
    int axis;
    if (x->rank < 1 || !ln_axis(node, x->rank, &axis))
        return false;
    int64_t st = joule_attr_int(node, "stash_type", 1);
    if (st != 1 && st != 10 && st != 11 && st != 16)
        return false;
    for (int i = 1; i < n_in; i++) {
        if (!in[i])
            continue;
        if (in[i]->dtype != JOULE_F32 && in[i]->dtype != JOULE_F64 && in[i]->dtype != JOULE_F16 &&
            in[i]->dtype != JOULE_BF16)
            return false;
        if (!broadcasts_to(in[i], x->rank - axis, x->dims + axis))
            return false;
    }
    return true;
}

/* Writes v broadcast to dims[0..n) (inner elements) into d and f; v NULL gives fill. */
static void ln_expand(const joule_view *v, int n, const int64_t *dims, size_t inner, double fill,
                      double *d, float *f)
{
    if (!v) {
        for (size_t j = 0; j < inner; j++) {
            d[j] = fill;
            f[j] = (float)fill;
        }
        return;
    }
    if (v->count == inner) {
        for (size_t j = 0; j < inner; j++) {
            d[j] = pn_load(v->dtype, v->data, j);
            f[j] = (float)d[j];
        }
        return;
    }
    /* general broadcast: strides of v aligned right, 0 on broadcast dims */
    size_t vstride[JOULE_MAX_RANK];
    size_t s = 1;
    for (int i = n - 1; i >= 0; i--) {
        const int vi = i - (n - v->rank);
        if (vi >= 0 && v->dims[vi] != 1) {
            vstride[i] = s;
            s *= (size_t)v->dims[vi];
        } else {
            vstride[i] = 0;
        }
    }
    int64_t idx[JOULE_MAX_RANK] = {0};
    for (size_t j = 0; j < inner; j++) {
        size_t off = 0;
        for (int i = 0; i < n; i++)
            off += (size_t)idx[i] * vstride[i];
        d[j] = pn_load(v->dtype, v->data, off);
        f[j] = (float)d[j];
        for (int i = n - 1; i >= 0; i--) {
            if (++idx[i] < dims[i])
                break;
            idx[i] = 0;
        }
    }
}

static size_t ln_param_bytes(size_t inner)
{
    const size_t per = 2 * (sizeof(double) + sizeof(float));
    return inner > (SIZE_MAX - 64) / per ? SIZE_MAX : inner * per;
}

/* Carves the four arrays out of buf (ln_param_bytes(inner) bytes) and fills them. */
static void ln_fill(const joule_kernel_ctx *ctx, int axis, size_t inner, void *buf, ln_params *p)
{
    const joule_view *x = ctx->in[0];
    p->inner = inner;
    p->sd = buf;
    p->bd = p->sd + inner;
    p->sf = (float *)(p->bd + inner);
    p->bf = p->sf + inner;
    const int n = x->rank - axis;
    ln_expand(ctx->in[1], n, x->dims + axis, inner, 1.0, p->sd, p->sf);
    ln_expand(ctx->n_in > 2 ? ctx->in[2] : NULL, n, x->dims + axis, inner, 0.0, p->bd, p->bf);
}

joule_status pn_layernorm_prepare(const joule_kernel_ctx *ctx, void **state, size_t *scratch_bytes)
{
    *state = NULL;
    int axis;
    if (!ln_axis(ctx->node, ctx->in[0]->rank, &axis))
        return joule_fail(ctx->err, JOULE_ERR_INVALID, "%s (%s): axis out of range",
                          pn_name(ctx->node), ctx->node->op_type);
    const size_t inner = pn_prod(ctx->in[0]->dims, axis, ctx->in[0]->rank);
    const size_t bytes = ln_param_bytes(inner);
    if (bytes == SIZE_MAX || bytes > SIZE_MAX - sizeof(ln_params))
        return joule_fail(ctx->err, JOULE_ERR_NOMEM, "%s (%s): normalized shape too large",
                          pn_name(ctx->node), ctx->node->op_type);
    const bool constant = ctx->in[1]->data && (ctx->n_in < 3 || !ctx->in[2] || ctx->in[2]->data);
    if (constant) {
        ln_params *p = malloc(sizeof *p + bytes);
        if (!p)
            return joule_fail(ctx->err, JOULE_ERR_NOMEM, "%s (%s): out of memory",
                              pn_name(ctx->node), ctx->node->op_type);
        ln_fill(ctx, axis, inner, p + 1, p);
        *state = p;
    }
    joule_status st = pn_prepare_shadows(ctx, constant ? 0 : bytes, scratch_bytes);
    if (st) {
        free(*state);
        *state = NULL;
    }
    return st;
}

void pn_norm_destroy(void *state)
{
    free(state);
}

/* Mean and 1/sqrt(var + eps) of n values, two-pass in double. */
#define ROW_STATS(T, xp, n, eps, mean_out, inv_out)                                               \
    do {                                                                                          \
        double s_ = 0;                                                                            \
        PN_SIMD_SUM(s_)                                                                           \
        for (size_t i_ = 0; i_ < (n); i_++)                                                       \
            s_ += (xp)[i_];                                                                       \
        const double m_ = (n) ? s_ / (double)(n) : 0.0;                                           \
        double v_ = 0;                                                                            \
        PN_SIMD_SUM(v_)                                                                           \
        for (size_t i_ = 0; i_ < (n); i_++) {                                                     \
            const double d_ = (double)(xp)[i_] - m_;                                              \
            v_ += d_ * d_;                                                                        \
        }                                                                                         \
        (mean_out) = m_;                                                                          \
        (inv_out) = 1.0 / sqrt(((n) ? v_ / (double)(n) : 0.0) + (eps));                           \
    } while (0)

static void store_stat(joule_view *v, size_t i, double val)
{
    if (!v)
        return;
    if (v->dtype == JOULE_F64)
        ((double *)v->data)[i] = val;
    else
        ((float *)v->data)[i] = (float)val;
}

#define LN_APPLY(T, S, B)                                                                         \
    do {                                                                                          \
        const T *xs = x->data;                                                                    \
        T *ys = ctx->out[0]->data;                                                                \
        PN_OMP_FOR                                                                                \
        for (long long r = 0; r < n_rows; r++) {                                                  \
            const T *xp = xs + (size_t)r * inner;                                                 \
            T *yp = ys + (size_t)r * inner;                                                       \
            double mean, inv;                                                                     \
            ROW_STATS(T, xp, inner, eps, mean, inv);                                              \
            const T m = (T)mean, iv = (T)inv;                                                     \
            PN_SIMD                                                                               \
            for (size_t j = 0; j < inner; j++)                                                    \
                yp[j] = (xp[j] - m) * iv * (S)[j] + (B)[j];                                       \
            store_stat(mean_v, (size_t)r, mean);                                                  \
            store_stat(inv_v, (size_t)r, inv);                                                    \
        }                                                                                         \
    } while (0)

static joule_status ln_native(const joule_kernel_ctx *ctx)
{
    const joule_view *x = ctx->in[0];
    int axis;
    if (!ln_axis(ctx->node, x->rank, &axis))
        return joule_fail(ctx->err, JOULE_ERR_INVALID, "%s (%s): axis out of range",
                          pn_name(ctx->node), ctx->node->op_type);
    joule_status st = pn_check_out(ctx, 0, x->rank, x->dims);
    if (st)
        return st;
    int64_t sd[JOULE_MAX_RANK];
    for (int i = 0; i < x->rank; i++)
        sd[i] = i < axis ? x->dims[i] : 1;
    joule_view *mean_v = NULL, *inv_v = NULL;
    for (int k = 1; k < 3 && k < ctx->n_out; k++) {
        joule_view *v = ctx->out[k];
        if (!v)
            continue;
        if (v->dtype != JOULE_F32 && v->dtype != JOULE_F64)
            return joule_fail(ctx->err, JOULE_ERR_UNSUPPORTED,
                              "%s (%s): Mean/InvStdDev dtype %s not supported", pn_name(ctx->node),
                              ctx->node->op_type, joule_dtype_name(v->dtype));
        if ((st = pn_check_out(ctx, k, x->rank, sd)))
            return st;
        if (k == 1)
            mean_v = v;
        else
            inv_v = v;
    }
    const size_t inner = pn_prod(x->dims, axis, x->rank);
    const long long n_rows = (long long)pn_prod(x->dims, 0, axis);
    ln_params p;
    const ln_params *ps = ctx->state;
    if (ps && ps->inner == inner) {
        p = *ps;
    } else {
        if (!ctx->scratch && inner)
            return joule_fail(ctx->err, JOULE_ERR_INVALID, "%s (%s): run without prepared scratch",
                              pn_name(ctx->node), ctx->node->op_type);
        ln_fill(ctx, axis, inner, ctx->scratch, &p);
    }
    const double eps = joule_attr_float(ctx->node, "epsilon", 1e-5f);
    const int nt = pn_threads(ctx, x->count);
    (void)nt;
    if (x->dtype == JOULE_F32)
        LN_APPLY(float, p.sf, p.bf);
    else if (x->dtype == JOULE_F64)
        LN_APPLY(double, p.sd, p.bd);
    else
        return joule_fail(ctx->err, JOULE_ERR_UNSUPPORTED, "%s (%s): dtype %s not supported",
                          pn_name(ctx->node), ctx->node->op_type, joule_dtype_name(x->dtype));
    return JOULE_OK;
}

joule_status pn_layernorm_run(const joule_kernel_ctx *ctx)
{
    return pn_run_shadowed(ctx, 0, ln_native);
}

/* ---- InstanceNormalization ---- */

bool pn_instancenorm_supports(const joule_node *node, int64_t opset, int n_in,
                              const joule_view *const *in)
{
    (void)opset;
    if (n_in != 3 || node->n_outputs != 1)
        return false;
    for (int i = 0; i < 3; i++)
        if (!in[i] || (in[i]->dtype != JOULE_F32 && in[i]->dtype != JOULE_F64 &&
                       in[i]->dtype != JOULE_F16 && in[i]->dtype != JOULE_BF16))
            return false;
    if (in[0]->rank < 2)
        return false;
    for (int i = 1; i < 3; i++)
        if (in[i]->rank != 1 || in[i]->dims[0] != in[0]->dims[1])
            return false;
    return true;
}

joule_status pn_instancenorm_prepare(const joule_kernel_ctx *ctx, void **state,
                                     size_t *scratch_bytes)
{
    *state = NULL;
    return pn_prepare_shadows(ctx, 0, scratch_bytes);
}

#define IN_APPLY(T)                                                                               \
    do {                                                                                          \
        const T *xs = x->data;                                                                    \
        T *ys = ctx->out[0]->data;                                                                \
        PN_OMP_FOR                                                                                \
        for (long long pl = 0; pl < n_planes; pl++) {                                             \
            const size_t c = (size_t)pl % channels;                                               \
            const T *xp = xs + (size_t)pl * plane;                                                \
            T *yp = ys + (size_t)pl * plane;                                                      \
            double mean, inv;                                                                     \
            ROW_STATS(T, xp, plane, eps, mean, inv);                                              \
            const double a = pn_load(sc->dtype, sc->data, c) * inv;                               \
            const double b = pn_load(bi->dtype, bi->data, c) - mean * a;                          \
            const T ta = (T)a, tb = (T)b;                                                         \
            PN_SIMD                                                                               \
            for (size_t j = 0; j < plane; j++)                                                    \
                yp[j] = xp[j] * ta + tb;                                                          \
        }                                                                                         \
    } while (0)

static joule_status in_native(const joule_kernel_ctx *ctx)
{
    const joule_view *x = ctx->in[0], *sc = ctx->in[1], *bi = ctx->in[2];
    joule_status st = pn_check_out(ctx, 0, x->rank, x->dims);
    if (st)
        return st;
    const size_t channels = (size_t)x->dims[1];
    const size_t plane = pn_prod(x->dims, 2, x->rank);
    const long long n_planes = (long long)pn_prod(x->dims, 0, 2);
    const double eps = joule_attr_float(ctx->node, "epsilon", 1e-5f);
    const int nt = pn_threads(ctx, x->count);
    (void)nt;
    if (x->dtype == JOULE_F32)
        IN_APPLY(float);
    else if (x->dtype == JOULE_F64)
        IN_APPLY(double);
    else
        return joule_fail(ctx->err, JOULE_ERR_UNSUPPORTED, "%s (%s): dtype %s not supported",
                          pn_name(ctx->node), ctx->node->op_type, joule_dtype_name(x->dtype));
    return JOULE_OK;
}

joule_status pn_instancenorm_run(const joule_kernel_ctx *ctx)
{
    return pn_run_shadowed(ctx, 0, in_native);
}

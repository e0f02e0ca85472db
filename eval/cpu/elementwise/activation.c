/* eval/cpu/elementwise/activation.c: activations: Relu LeakyRelu PRelu Elu Selu Softplus
 * HardSigmoid HardSwish Gelu (approximate "none" or "tanh") Softsign ThresholdedRelu Shrink Celu
 * and Clip (bounds as attributes before
 * opset 11, as optional scalar inputs from 11, for every numeric type from 12). Attribute
 * defaults follow the ONNX spec. */
#include "ew.h"

#include <float.h>
#include <math.h>

#include "fastmath.h"

/* max(x, lo) then min(., hi): nan stays nan, and lo > hi gives hi, like NumPy's clip */
#define CLAMP(x, lo, hi) (((x) < (lo) ? (lo) : (x)) > (hi) ? (hi) : ((x) < (lo) ? (lo) : (x)))

static float attr_f(const joule_node *node, const char *name, float dflt)
{
    return node ? joule_attr_float(node, name, dflt) : dflt;
}

/* ---- Relu (integers from opset 14) ---- */
#define RELU_INT(P, dt, sfx, T, U)                                                                 \
    EW_ROW P##_##sfx(EW_UN_ARGS)                                                              \
    {                                                                                              \
        (void)p;                                                                                   \
        EW_MAP(T, T, x < 0 ? (T)0 : x);                                                            \
    }
EW_SINTS(RELU_INT, relu)
EW_ROW relu_f32(EW_UN_ARGS) { (void)p; EW_MAP(float, float, x < 0 ? 0.0f : x); }
EW_ROW relu_f64(EW_UN_ARGS) { (void)p; EW_MAP(double, double, x < 0 ? 0.0 : x); }
static const ew_spec relu_spec = {
    .name = "Relu", .un = {EW_SINTS(EW_ENTRY, relu) EW_FLOATS(EW_ENTRY, relu)},
    .half_via_f32 = true};
EW_UNARY_KERNEL(relu, relu_spec)

/* ---- float-only activations with attributes ---- */
EW_ROW leaky_f32(EW_UN_ARGS)
{
    const float a = p->alpha;
    EW_MAP(float, float, x < 0 ? a * x : x);
}
EW_ROW leaky_f64(EW_UN_ARGS)
{
    const double a = p->alpha;
    EW_MAP(double, double, x < 0 ? a * x : x);
}
EW_ROW elu_f32(EW_UN_ARGS)
{
    const float a = p->alpha;
    EW_MAP(float, float, x < 0 ? a * ew_expm1f(x) : x);
}
EW_ROW elu_f64(EW_UN_ARGS)
{
    const double a = p->alpha;
    EW_MAP(double, double, x < 0 ? a * expm1(x) : x);
}
EW_ROW selu_f32(EW_UN_ARGS)
{
    const float a = p->alpha, g = p->gamma;
    EW_MAP(float, float, x > 0 ? g * x : g * (a * ew_expm1f(x)));
}
EW_ROW selu_f64(EW_UN_ARGS)
{
    const double a = p->alpha, g = p->gamma;
    EW_MAP(double, double, x > 0 ? g * x : g * (a * expm1(x)));
}
/* log(1 + e^x) = max(x, 0) + log1p(e^-|x|), exact for large |x| */
EW_ROW softplus_f32(EW_UN_ARGS)
{
    (void)p;
    EW_MAP(float, float, (x > 0 ? x : 0.0f) + log1pf(ew_expf(-ew_fm_abs(x))));
}
EW_ROW softplus_f64(EW_UN_ARGS)
{
    (void)p;
    EW_MAP(double, double, (x > 0 ? x : 0.0) + log1p(exp(-fabs(x))));
}
EW_ROW hard_sigmoid_f32(EW_UN_ARGS)
{
    const float a = p->alpha, b = p->beta;
    EW_MAP(float, float, CLAMP(a * x + b, 0.0f, 1.0f));
}
EW_ROW hard_sigmoid_f64(EW_UN_ARGS)
{
    const double a = p->alpha, b = p->beta;
    EW_MAP(double, double, CLAMP(a * x + b, 0.0, 1.0));
}
EW_ROW hard_swish_f32(EW_UN_ARGS)
{
    (void)p;
    const float a = 1.0f / 6.0f;
    EW_MAP(float, float, x * CLAMP(a * x + 0.5f, 0.0f, 1.0f));
}
EW_ROW hard_swish_f64(EW_UN_ARGS)
{
    (void)p;
    const double a = 1.0 / 6.0;
    EW_MAP(double, double, x * CLAMP(a * x + 0.5, 0.0, 1.0));
}
/* Gelu: x/2 (1 + erf(x / sqrt 2)), or with the tanh approximation
 * x/2 (1 + tanh(y)) = x sigmoid(2y), y = sqrt(2/pi) (x + 0.044715 x^3), which avoids the
 * cancellation of 1 + tanh for negative x. */
EW_ROW gelu_f32(EW_UN_ARGS)
{
    if (p->flag) {
        const float k = 0.7978845608028654f * 2.0f, c = 0.044715f;
        EW_MAP(float, float, x / (1.0f + ew_expf(-k * (x + c * x * x * x))));
    } else {
        const float r = 0.7071067811865476f;
        EW_MAP(float, float, 0.5f * x * ew_one_plus_erf(x * r));
    }
}
EW_ROW gelu_f64(EW_UN_ARGS)
{
    if (p->flag) {
        const double k = 0.7978845608028654, c = 0.044715;
        EW_MAP(double, double, 0.5 * x * (1.0 + tanh(k * (x + c * x * x * x))));
    } else {
        const double r = 0.7071067811865476;
        EW_MAP(double, double, 0.5 * x * erfc(-x * r));
    }
}

static const ew_spec leaky_spec = {
    .name = "LeakyRelu", .un = {EW_FLOATS(EW_ENTRY, leaky)}, .half_via_f32 = true};
static const ew_spec elu_spec = {
    .name = "Elu", .un = {EW_FLOATS(EW_ENTRY, elu)}, .half_via_f32 = true,
    .grain = EW_GRAIN_COSTLY};
static const ew_spec selu_spec = {
    .name = "Selu", .un = {EW_FLOATS(EW_ENTRY, selu)}, .half_via_f32 = true,
    .grain = EW_GRAIN_COSTLY};
static const ew_spec softplus_spec = {
    .name = "Softplus", .un = {EW_FLOATS(EW_ENTRY, softplus)}, .half_via_f32 = true,
    .grain = EW_GRAIN_COSTLY};
static const ew_spec hard_sigmoid_spec = {
    .name = "HardSigmoid", .un = {EW_FLOATS(EW_ENTRY, hard_sigmoid)}, .half_via_f32 = true};
static const ew_spec hard_swish_spec = {
    .name = "HardSwish", .un = {EW_FLOATS(EW_ENTRY, hard_swish)}, .half_via_f32 = true};
static const ew_spec gelu_spec = {
    .name = "Gelu", .un = {EW_FLOATS(EW_ENTRY, gelu)}, .half_via_f32 = true,
    .grain = EW_GRAIN_COSTLY};

#define FLOAT_ACT(op, spec, ...)                                                                   \
    bool ew_##op##_supports(const joule_node *node, int64_t opset, int n_in,                       \
                            const joule_view *const *in)                                           \
    {                                                                                              \
        (void)node;                                                                                \
        (void)opset;                                                                               \
        return ew_unary_supports(&(spec), n_in, in);                                               \
    }                                                                                              \
    joule_status ew_##op##_run(const joule_kernel_ctx *c)                                          \
    {                                                                                              \
        const joule_node *node = c->node;                                                          \
        (void)node;                                                                                \
        ew_par par = {__VA_ARGS__};                                                                \
        return ew_unary_run(&(spec), &par, c);                                                     \
    }

FLOAT_ACT(leaky_relu, leaky_spec, .alpha = attr_f(node, "alpha", 0.01f))
FLOAT_ACT(elu, elu_spec, .alpha = attr_f(node, "alpha", 1.0f))
FLOAT_ACT(selu, selu_spec, .alpha = attr_f(node, "alpha", 1.67326319217681884765625f),
          .gamma = attr_f(node, "gamma", 1.05070102214813232421875f))
FLOAT_ACT(softplus, softplus_spec, .alpha = 0)
FLOAT_ACT(hard_sigmoid, hard_sigmoid_spec, .alpha = attr_f(node, "alpha", 0.2f),
          .beta = attr_f(node, "beta", 0.5f))
FLOAT_ACT(hard_swish, hard_swish_spec, .alpha = 0)

/* Gelu's approximate attribute: 0 "none", 1 "tanh", -1 anything else. */
static int gelu_mode(const joule_node *node)
{
    if (!node)
        return 0;
    joule_string s = joule_attr_string(node, "approximate", "none");
    if (s.len == 4 && memcmp(s.ptr, "none", 4) == 0)
        return 0;
    if (s.len == 4 && memcmp(s.ptr, "tanh", 4) == 0)
        return 1;
    return -1;
}

bool ew_gelu_supports(const joule_node *node, int64_t opset, int n_in, const joule_view *const *in)
{
    (void)opset;
    return gelu_mode(node) >= 0 && ew_unary_supports(&gelu_spec, n_in, in);
}

joule_status ew_gelu_run(const joule_kernel_ctx *c)
{
    int mode = gelu_mode(c->node);
    if (mode < 0)
        return joule_fail(c->err, JOULE_ERR_UNSUPPORTED,
                          "%s (Gelu): approximate must be \"none\" or \"tanh\"", ew_who(c->node));
    ew_par par = {.flag = mode};
    return ew_unary_run(&gelu_spec, &par, c);
}

/* ---- PRelu: slope broadcasts to X (unidirectional) ---- */
#define PRELU_SINT(P, dt, sfx, T, U)                                                               \
    EW_ROW P##_##sfx(EW_BIN_ARGS)                                                             \
    {                                                                                              \
        (void)p;                                                                                   \
        EW_ZIP(T, T, T, a < 0 ? (T)((U)a * (U)b) : a);                                             \
    }
#define PRELU_UINT(P, dt, sfx, T, U)                                                               \
    EW_ROW P##_##sfx(EW_BIN_ARGS)                                                             \
    {                                                                                              \
        (void)p;                                                                                   \
        (void)b_;                                                                                  \
        if (mode == EW_SV) {                                                                       \
            EW_SIMD for (size_t i = 0; i < n; i++)((T *)o_)[i] = ((const T *)a_)[0];               \
        } else {                                                                                   \
            EW_SIMD for (size_t i = 0; i < n; i++)((T *)o_)[i] = ((const T *)a_)[i];               \
        }                                                                                          \
    }
PRELU_SINT(prelu, JOULE_I32, i32, int32_t, uint32_t)
PRELU_SINT(prelu, JOULE_I64, i64, int64_t, uint64_t)
PRELU_UINT(prelu, JOULE_U32, u32, uint32_t, uint32_t)
PRELU_UINT(prelu, JOULE_U64, u64, uint64_t, uint64_t)
EW_ROW prelu_f32(EW_BIN_ARGS) { (void)p; EW_ZIP(float, float, float, a < 0 ? a * b : a); }
EW_ROW prelu_f64(EW_BIN_ARGS) { (void)p; EW_ZIP(double, double, double, a < 0 ? a * b : a); }

static const ew_spec prelu_spec = {
    .name = "PRelu",
    .bin = {[JOULE_I32] = prelu_i32, [JOULE_I64] = prelu_i64, [JOULE_U32] = prelu_u32,
            [JOULE_U64] = prelu_u64, [JOULE_F32] = prelu_f32, [JOULE_F64] = prelu_f64},
    .half_via_f32 = true};

bool ew_prelu_supports(const joule_node *node, int64_t opset, int n_in, const joule_view *const *in)
{
    (void)node;
    (void)opset;
    return ew_binary_supports(&prelu_spec, n_in, in);
}

joule_status ew_prelu_run(const joule_kernel_ctx *c)
{
    if (c->n_in < 2 || !c->in[0] || !c->in[1])
        return joule_fail(c->err, JOULE_ERR_INVALID, "%s (PRelu): needs two inputs",
                          ew_who(c->node));
    const joule_view *x = c->in[0], *slope = c->in[1];
    joule_view s = *slope;
    /* before opset 7 a slope of shape [C] applies per channel (axis 1) */
    if (c->opset < 7 && slope->rank == 1 && x->rank > 2 && slope->dims[0] == x->dims[1] &&
        slope->dims[0] != 1) {
        s.rank = x->rank - 1;
        for (int d = 1; d < s.rank; d++)
            s.dims[d] = 1;
    }
    joule_status st = ew_check_out(c, 0, x->dtype, x->count);
    if (st != JOULE_OK)
        return st;
    return ew_binary_apply(&prelu_spec, NULL, x, &s, c->out[0], c->threads, c->node, c->err);
}

/* ---- Clip ---- */
#define CLIP_SINT(P, dt, sfx, T, U)                                                                \
    EW_ROW P##_##sfx(EW_UN_ARGS)                                                              \
    {                                                                                              \
        const int64_t lo = p->lo.i, hi = p->hi.i;                                                  \
        EW_MAP(T, T, (T)CLAMP(x, lo, hi));                                                         \
    }
#define CLIP_UINT(P, dt, sfx, T, U)                                                                \
    EW_ROW P##_##sfx(EW_UN_ARGS)                                                              \
    {                                                                                              \
        const uint64_t lo = p->lo.u, hi = p->hi.u;                                                 \
        EW_MAP(T, T, (T)CLAMP(x, lo, hi));                                                         \
    }
EW_SINTS(CLIP_SINT, clip)
EW_UINTS(CLIP_UINT, clip)
EW_ROW clip_f32(EW_UN_ARGS)
{
    const float lo = p->lo.f, hi = p->hi.f;
    EW_MAP(float, float, CLAMP(x, lo, hi));
}
EW_ROW clip_f64(EW_UN_ARGS)
{
    const double lo = p->lo.d, hi = p->hi.d;
    EW_MAP(double, double, CLAMP(x, lo, hi));
}

static const ew_spec clip_spec = {
    .name = "Clip", .un = {EW_INTS(EW_ENTRY, clip) EW_FLOATS(EW_ENTRY, clip)},
    .half_via_f32 = true};

static bool is_float_type(joule_dtype t)
{
    return t == JOULE_F32 || t == JOULE_F64 || t == JOULE_F16 || t == JOULE_BF16;
}

bool ew_clip_supports(const joule_node *node, int64_t opset, int n_in, const joule_view *const *in)
{
    (void)node;
    if (n_in < 1 || !in[0] || !ew_spec_has(&clip_spec, in[0]->dtype))
        return false;
    if (opset < 11)
        return is_float_type(in[0]->dtype);
    for (int i = 1; i < n_in && i < 3; i++)
        if (in[i] && (in[i]->dtype != in[0]->dtype || in[i]->count != 1))
            return false;
    return true;
}

joule_status ew_clip_run(const joule_kernel_ctx *c)
{
    if (c->n_in < 1 || !c->in[0])
        return joule_fail(c->err, JOULE_ERR_INVALID, "%s (Clip): missing input", ew_who(c->node));
    const joule_view *x = c->in[0];
    joule_dtype t = x->dtype;
    /* bounds as double first (attributes or scalar inputs), absent = unbounded */
    double lo = -INFINITY, hi = INFINITY;
    bool has_lo = false, has_hi = false;
    const joule_view *blo = NULL, *bhi = NULL;
    if (c->opset < 11) {
        lo = attr_f(c->node, "min", -FLT_MAX);
        hi = attr_f(c->node, "max", FLT_MAX);
        has_lo = has_hi = true;
    } else {
        blo = c->n_in > 1 ? c->in[1] : NULL;
        bhi = c->n_in > 2 ? c->in[2] : NULL;
        for (int i = 0; i < 2; i++) {
            const joule_view *b = i ? bhi : blo;
            if (!b)
                continue;
            if (b->dtype != t || b->count != 1 || !b->data)
                return joule_fail(c->err, JOULE_ERR_INVALID,
                                  "%s (Clip): %s must be one %s element", ew_who(c->node),
                                  i ? "max" : "min", joule_dtype_name(t));
        }
        if (blo) {
            lo = ew_get_f64(t, blo->data, 0);
            has_lo = true;
        }
        if (bhi) {
            hi = ew_get_f64(t, bhi->data, 0);
            has_hi = true;
        }
    }
    ew_par par = {0};
    switch (t) {
    case JOULE_F32: case JOULE_F16: case JOULE_BF16:
        par.lo.f = (float)lo;
        par.hi.f = (float)hi;
        break;
    case JOULE_F64:
        par.lo.d = lo;
        par.hi.d = hi;
        break;
    case JOULE_I8: case JOULE_I16: case JOULE_I32: case JOULE_I64:
        par.lo.i = has_lo ? (t == JOULE_I64 ? *(const int64_t *)blo->data : (int64_t)lo) : INT64_MIN;
        par.hi.i = has_hi ? (t == JOULE_I64 ? *(const int64_t *)bhi->data : (int64_t)hi) : INT64_MAX;
        break;
    case JOULE_U8: case JOULE_U16: case JOULE_U32: case JOULE_U64:
        par.lo.u = has_lo ? (t == JOULE_U64 ? *(const uint64_t *)blo->data : (uint64_t)lo) : 0;
        par.hi.u = has_hi ? (t == JOULE_U64 ? *(const uint64_t *)bhi->data : (uint64_t)hi)
                          : UINT64_MAX;
        break;
    default:
        return joule_fail(c->err, JOULE_ERR_UNSUPPORTED, "%s (Clip): %s input not supported",
                          ew_who(c->node), joule_dtype_name(t));
    }
    return ew_unary_run(&clip_spec, &par, c);
}

/* ---- Softsign, ThresholdedRelu, Celu (floats), Shrink (floats and integers) ---- */
EW_ROW softsign_f32(EW_UN_ARGS) { (void)p; EW_MAP(float, float, x / (1.0f + ew_fm_abs(x))); }
EW_ROW softsign_f64(EW_UN_ARGS) { (void)p; EW_MAP(double, double, x / (1.0 + fabs(x))); }
EW_ROW thresholded_relu_f32(EW_UN_ARGS)
{
    const float a = p->alpha;
    EW_MAP(float, float, x > a ? x : 0.0f);
}
EW_ROW thresholded_relu_f64(EW_UN_ARGS)
{
    const double a = p->alpha;
    EW_MAP(double, double, x > a ? x : 0.0);
}
/* max(0, x) + min(0, alpha (e^(x/alpha) - 1)) */
EW_ROW celu_f32(EW_UN_ARGS)
{
    const float a = p->alpha, ia = 1.0f / p->alpha;
    EW_MAP(float, float, x > 0 ? x : a * ew_expm1f(x * ia));
}
EW_ROW celu_f64(EW_UN_ARGS)
{
    const double a = p->alpha;
    EW_MAP(double, double, x > 0 ? x : a * expm1(x / a));
}
/* x < -lambd: x + bias; x > lambd: x - bias; else 0 (integers compare and add in double) */
EW_ROW shrink_f32(EW_UN_ARGS)
{
    const float l = p->alpha, b = p->beta;
    EW_MAP(float, float, x < -l ? x + b : x > l ? x - b : 0.0f);
}
EW_ROW shrink_f64(EW_UN_ARGS)
{
    const double l = p->alpha, b = p->beta;
    EW_MAP(double, double, x < -l ? x + b : x > l ? x - b : 0.0);
}
#define SHRINK_INT(P, dt, sfx, T, U)                                                               \
    EW_ROW P##_##sfx(EW_UN_ARGS)                                                                   \
    {                                                                                              \
        const double l = p->alpha, b = p->beta;                                                    \
        EW_MAP(T, T, (double)x < -l ? (T)((double)x + b) : (double)x > l ? (T)((double)x - b) : (T)0); \
    }
EW_INTS(SHRINK_INT, shrink)

static const ew_spec softsign_spec = {
    .name = "Softsign", .un = {EW_FLOATS(EW_ENTRY, softsign)}, .half_via_f32 = true};
static const ew_spec thresholded_relu_spec = {
    .name = "ThresholdedRelu", .un = {EW_FLOATS(EW_ENTRY, thresholded_relu)}, .half_via_f32 = true};
static const ew_spec celu_spec = {
    .name = "Celu", .un = {EW_FLOATS(EW_ENTRY, celu)}, .half_via_f32 = true,
    .grain = EW_GRAIN_COSTLY};
static const ew_spec shrink_spec = {
    .name = "Shrink", .un = {EW_INTS(EW_ENTRY, shrink) EW_FLOATS(EW_ENTRY, shrink)},
    .half_via_f32 = true};

FLOAT_ACT(softsign, softsign_spec, .alpha = 0)
FLOAT_ACT(thresholded_relu, thresholded_relu_spec, .alpha = attr_f(node, "alpha", 1.0f))
FLOAT_ACT(celu, celu_spec, .alpha = attr_f(node, "alpha", 1.0f))
FLOAT_ACT(shrink, shrink_spec, .alpha = attr_f(node, "lambd", 0.5f), .beta = attr_f(node, "bias", 0.0f))

/* compress/quant_util.c: the arithmetic and graph helpers the quantization passes share (see
 * quant_internal.h): scale/zero-point choice, weight and bias quantization, float16 clamping,
 * and small builders for initializers, nodes and report rows. Weight quantization runs in
 * vectorisable loops (one scale per element of a row for channels on the last axis), shared
 * among OpenMP threads for large weights, with the same result for any thread count. */
#include <float.h>
#include <fnmatch.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/quant_internal.h"
#include "compress/parallel.h"
#include "formats/graph_internal.h"

/* ---- arithmetic ---- */

void jq_params(double lo, double hi, int qmin, int qmax, bool symmetric, float *scale, int32_t *zp)
{
    if (!isfinite(lo) || !isfinite(hi) || lo > hi) {
        lo = 0;
        hi = 0;
    }
    if (lo > 0)
        lo = 0;
    if (hi < 0)
        hi = 0;
    if (symmetric) {
        double a = fmax(fabs(lo), fabs(hi));
        lo = -a;
        hi = a;
    }
    double s = (hi - lo) / (double)(qmax - qmin);
    float sf = (float)s;
    if (!(sf > 0) || !isfinite(sf)) {
        *scale = 1.0f;
        *zp = symmetric ? (qmin < 0 ? 0 : (int32_t)((qmin + qmax + 1) / 2)) : qmin;
        return;
    }
    *scale = sf;
    if (symmetric) {
        /* centre of the integer range: 0 for [-127, 127] / [-128, 127], 128 for [0, 255] */
        *zp = qmin < 0 ? 0 : (int32_t)((qmin + qmax + 1) / 2);
        return;
    }
    double z = nearbyint((double)qmin - lo / (double)sf);
    if (z < qmin)
        z = qmin;
    if (z > qmax)
        z = qmax;
    *zp = (int32_t)z;
}

/* nearbyint(v) in the default rounding mode: adding and taking away 1.5 * 2^52 rounds |v| < 2^51
 * to an integer, ties to even, as nearbyint does, without its library call (this runs once per
 * weight); larger values, infinities and NaN go to nearbyint itself. Needs double arithmetic
 * evaluated in double (FLT_EVAL_METHOD 0, not x87) and no -ffast-math. */
static inline double round_even(double v)
{
#if FLT_EVAL_METHOD == 0
    if (fabs(v) < 0x1p51)
        return (v + 0x1.8p52) - 0x1.8p52; /* not folded: C floating point is not associative */
#endif
    return nearbyint(v);
}

static inline int32_t quantize_one(float x, float scale, int32_t zp, int qmin, int qmax)
{
    double v = round_even((double)x / (double)scale);
    if (isnan(v))
        v = 0;
    v += zp;
    if (v < qmin)
        v = qmin;
    if (v > qmax)
        v = qmax;
    return (int32_t)v;
}

int32_t jq_quantize_one(float x, float scale, int32_t zp, int qmin, int qmax)
{
    return quantize_one(x, scale, zp, qmin, qmax);
}

/* ---- weights: symmetric int8 [-127, 127], one scale per channel ---- */

/* Fewer weights than this: one thread. Spans of a channel are cut into pieces of Q_PIECE for
 * the threads. */
#define Q_PAR_MIN ((size_t)1 << 16)
#define Q_PIECE ((size_t)16384)

#if HAVE_OPENMP
#define Q_SIMD _Pragma("omp simd")
#else
#define Q_SIMD
#endif
/* gcc leaves the clamps of q8 as branches, and its loops scalar, while comparisons may trap;
 * they raise nothing that is looked at here (the values do not change) */
#if defined(__GNUC__) && !defined(__clang__)
#define Q_VECTOR __attribute__((optimize("no-trapping-math")))
#else
#define Q_VECTOR
#endif

static int q_threads(size_t count)
{
#if HAVE_OPENMP
    if (count >= Q_PAR_MIN) {
        int t = omp_get_max_threads();
        return t < 1 ? 1 : t;
    }
#else
    (void)count;
#endif
    return 1;
}

/* The largest |x| of the finite x in p[0..n), or 0; in float, which holds it exactly (the
 * double it becomes for jq_params is the same). */
Q_VECTOR static float span_amax(const float *p, size_t n)
{
    float m = 0;
    for (size_t i = 0; i < n; i++) {
        float a = fabsf(p[i]);
        a = a <= FLT_MAX ? a : 0; /* inf and NaN: not counted */
        m = a > m ? a : m;
    }
    return m;
}

/* amax[j] = max(amax[j], finite |p[j]|) for j < n: one row of a weight whose channels are its
 * last axis. */
Q_VECTOR static void row_amax(const float *p, size_t n, float *amax)
{
    Q_SIMD
    for (size_t j = 0; j < n; j++) {
        float a = fabsf(p[j]);
        a = a <= FLT_MAX ? a : 0;
        amax[j] = a > amax[j] ? a : amax[j];
    }
}

/* quantize_one(x, s, 0, -127, 127) without branches or calls, so that loops of it vectorise:
 * the quotient is clamped to [-200, 200] first (anything beyond rounds to beyond +-127 anyway)
 * and NaN made 0, which leaves round_even's fast path the only one. */
Q_VECTOR static inline int8_t q8(float x, float s)
{
#if FLT_EVAL_METHOD == 0
    double v = (double)x / (double)s;
    v = v > 200.0 ? 200.0 : v;
    v = v < -200.0 ? -200.0 : v;
    v = v == v ? v : 0.0;
    v = (v + 0x1.8p52) - 0x1.8p52;
    v = v > 127.0 ? 127.0 : v;
    v = v < -127.0 ? -127.0 : v;
    return (int8_t)(int32_t)v;
#else
    return (int8_t)quantize_one(x, s, 0, -127, 127);
#endif
}

/* One scale for n weights. (Multiplying by a reciprocal instead of dividing would round some
 * quotients differently, and measured no faster: the conversions cost as much as the division.) */
Q_VECTOR static void quant_span(const float *src, int8_t *dst, size_t n, float s)
{
    Q_SIMD
    for (size_t i = 0; i < n; i++)
        dst[i] = q8(src[i], s);
}

/* A row whose element j has scale s[j] (channels on the last axis: MatMul's [K, N]). */
Q_VECTOR static void quant_row(const float *src, int8_t *dst, size_t n, const float *s)
{
    Q_SIMD
    for (size_t j = 0; j < n; j++)
        dst[j] = q8(src[j], s[j]);
}

/* Channels on the last axis (inner == 1): rows of `channels` weights, each element its own
 * channel. Per-thread maxima, merged (max does not depend on the order), then rows. */
static joule_status quant_lastaxis(const float *src, int8_t *dst, size_t rows, size_t channels,
                                   float *sc)
{
    int nt = q_threads(rows * channels);
    if ((size_t)nt > rows)
        nt = rows ? (int)rows : 1;
    float *amax = calloc((size_t)nt * (channels ? channels : 1), sizeof *amax);
    if (!amax)
        return JOULE_ERR_NOMEM;
#if HAVE_OPENMP
#pragma omp parallel num_threads(nt) if (nt > 1)
#endif
    {
        size_t r0, r1, id = cz_thread_share(rows, &r0, &r1);
        float *m = amax + id * channels;
        for (size_t r = r0; r < r1; r++)
            row_amax(src + r * channels, channels, m);
    }
    for (int t = 1; t < nt; t++)
        for (size_t c = 0; c < channels; c++) {
            float a = amax[(size_t)t * channels + c];
            amax[c] = a > amax[c] ? a : amax[c];
        }
    for (size_t c = 0; c < channels; c++) {
        int32_t zp;
        jq_params(-(double)amax[c], (double)amax[c], -127, 127, true, &sc[c], &zp);
    }
    free(amax);
#if HAVE_OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
#endif
    for (size_t r = 0; r < rows; r++)
        quant_row(src + r * channels, dst + r * channels, channels, sc);
    return JOULE_OK;
}

/* Channel c's weights in spans of `inner`, span s = o * channels + c; cut into pieces of at most
 * Q_PIECE, which the threads share. */
static joule_status quant_spans(const float *src, int8_t *dst, size_t outer, size_t channels,
                                size_t inner, float *sc)
{
    size_t per = inner / Q_PIECE + (inner % Q_PIECE != 0), spans = outer * channels;
    size_t pieces = spans * per;
    int nt = q_threads(spans * inner);
    float *pmax = malloc((pieces ? pieces : 1) * sizeof *pmax);
    if (!pmax)
        return JOULE_ERR_NOMEM;
#if HAVE_OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
#endif
    for (size_t p = 0; p < pieces; p++) {
        size_t lo = (p % per) * Q_PIECE, n = inner - lo < Q_PIECE ? inner - lo : Q_PIECE;
        pmax[p] = span_amax(src + (p / per) * inner + lo, n);
    }
    for (size_t c = 0; c < channels; c++) {
        float m = 0;
        for (size_t o = 0; o < outer; o++)
            for (size_t k = 0; k < per; k++) {
                float a = pmax[(o * channels + c) * per + k];
                m = a > m ? a : m;
            }
        int32_t zp;
        jq_params(-(double)m, (double)m, -127, 127, true, &sc[c], &zp);
    }
    free(pmax);
#if HAVE_OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
#endif
    for (size_t p = 0; p < pieces; p++) {
        size_t s = p / per, lo = (p % per) * Q_PIECE;
        size_t n = inner - lo < Q_PIECE ? inner - lo : Q_PIECE;
        quant_span(src + s * inner + lo, dst + s * inner + lo, n, sc[s % channels]);
    }
    return JOULE_OK;
}

joule_status jq_quantize_weight(const joule_tensor *w, int axis, joule_tensor **q,
                                joule_tensor **scales, joule_error *err)
{
    *q = NULL;
    *scales = NULL;
    if (w->dtype != JOULE_F32 || !w->data)
        return joule_fail(err, JOULE_ERR_UNSUPPORTED, "weights of dtype %s cannot be quantized",
                          joule_dtype_name(w->dtype));
    if (axis >= w->rank)
        return joule_fail(err, JOULE_ERR_INVALID, "weight axis %d out of range for rank %d", axis,
                          w->rank);
    size_t channels = 1, outer = 1, inner = 1;
    if (axis >= 0) {
        channels = (size_t)w->dims[axis];
        for (int d = 0; d < axis; d++)
            outer *= (size_t)w->dims[d];
        for (int d = axis + 1; d < w->rank; d++)
            inner *= (size_t)w->dims[d];
    } else {
        inner = w->count;
    }
    joule_status st = joule_tensor_new(JOULE_I8, w->rank, w->dims, q, err);
    if (st)
        return st;
    int64_t cd = (int64_t)channels;
    if ((st = joule_tensor_new(JOULE_F32, axis >= 0 ? 1 : 0, &cd, scales, err))) {
        joule_tensor_free(*q);
        *q = NULL;
        return st;
    }
    const float *src = w->data;
    int8_t *dst = joule_tensor_mutable_data(*q);
    float *sc = joule_tensor_mutable_data(*scales);
    if ((!dst && (*q)->nbytes) || !sc ||
        (inner == 1 ? quant_lastaxis(src, dst, outer, channels, sc)
                    : quant_spans(src, dst, outer, channels, inner, sc))) {
        joule_tensor_free(*q);
        joule_tensor_free(*scales);
        *q = *scales = NULL;
        return joule_fail(err, JOULE_ERR_NOMEM, "weight quantization: out of memory");
    }
    return JOULE_OK;
}

joule_status jq_quantize_bias(const joule_tensor *b, const float *scale, size_t n,
                              joule_tensor **q, uint64_t *clamped, joule_error *err)
{
    *q = NULL;
    *clamped = 0;
    if (b->dtype != JOULE_F32 || !b->data || (b->count != n && b->count != 1))
        return joule_fail(err, JOULE_ERR_UNSUPPORTED, "bias: float32 with %zu entries expected", n);
    int64_t d = (int64_t)n;
    joule_status st = joule_tensor_new(JOULE_I32, 1, &d, q, err);
    if (st)
        return st;
    int32_t *dst = joule_tensor_mutable_data(*q);
    if (!dst && n) {
        joule_tensor_free(*q);
        *q = NULL;
        return joule_fail(err, JOULE_ERR_NOMEM, "bias quantization: out of memory");
    }
    const float *src = b->data;
    for (size_t c = 0; c < n; c++) {
        double v = nearbyint((double)src[b->count == 1 ? 0 : c] / (double)scale[c]);
        if (isnan(v))
            v = 0;
        if (v > INT32_MAX) {
            v = INT32_MAX;
            (*clamped)++;
        } else if (v < -(double)INT32_MAX) {
            v = -(double)INT32_MAX;
            (*clamped)++;
        }
        dst[c] = (int32_t)v;
    }
    return JOULE_OK;
}

uint16_t jq_f32_to_f16_clamped(float x, uint64_t *over, uint64_t *under)
{
    const float max16 = 65504.0f, min16 = 5.9604644775390625e-8f; /* 2^-24 */
    if (isfinite(x)) {
        if (x > max16) {
            x = max16;
            (*over)++;
        } else if (x < -max16) {
            x = -max16;
            (*over)++;
        } else if (x != 0.0f && fabsf(x) < min16) {
            x = x > 0 ? min16 : -min16;
            (*under)++;
        }
    }
    return joule_f32_to_f16(x);
}

/* ---- graph helpers ---- */

bool jq_excluded(const joule_quant_exclude *ex, const joule_node *n)
{
    for (size_t i = 0; ex && i < ex->n; i++) {
        const char *e = ex->items[i];
        if (!e)
            continue;
        if (n->op_type && strcmp(e, n->op_type) == 0)
            return true;
        if (n->name && n->name[0] && fnmatch(e, n->name, 0) == 0)
            return true;
    }
    return false;
}

void jq_free_name(const joule_graph *g, const char *hint, char *buf, size_t size)
{
    snprintf(buf, size, "%s", hint);
    for (unsigned k = 1; joule_graph_find_value(g, buf); k++)
        snprintf(buf, size, "%s_%u", hint, k);
}

joule_status jq_tensor_from(joule_dtype dtype, const double *v, size_t n, bool rank1,
                            joule_tensor **out, joule_error *err)
{
    *out = NULL;
    const joule_dtype_traits *tr = joule_dtype_info(dtype);
    if (!tr->from_f32 && dtype != JOULE_I32 && dtype != JOULE_I64)
        return joule_fail(err, JOULE_ERR_UNSUPPORTED, "constant of dtype %s", joule_dtype_name(dtype));
    size_t count = n ? n : 1;
    int64_t d = (int64_t)count;
    joule_status st = joule_tensor_new(dtype, rank1 ? 1 : 0, &d, out, err);
    if (st)
        return st;
    void *p = joule_tensor_mutable_data(*out);
    if (!p) {
        joule_tensor_free(*out);
        *out = NULL;
        return joule_fail(err, JOULE_ERR_NOMEM, "constant: out of memory");
    }
    for (size_t i = 0; i < count; i++) {
        if (dtype == JOULE_I32)
            ((int32_t *)p)[i] = (int32_t)v[i];
        else if (dtype == JOULE_I64)
            ((int64_t *)p)[i] = (int64_t)v[i];
        else
            tr->from_f32(p, i, (float)v[i]);
    }
    return JOULE_OK;
}

joule_status jq_add_init(joule_graph *g, const char *hint, joule_tensor *t, joule_value **out,
                         joule_error *err)
{
    *out = NULL;
    joule_value *v;
    joule_status st = joule_graph_new_value(g, hint, &v, err);
    if (!st)
        st = joule_graph_set_initializer(g, v, t, err);
    if (st) {
        joule_tensor_free(t);
        return st;
    }
    *out = v;
    return JOULE_OK;
}

joule_status jq_add_node(joule_graph *g, const char *op, const char *name, int n_in,
                         joule_value *const *ins, int n_out, joule_value **outs,
                         const char *const *out_hints, const joule_node *before,
                         const joule_node *after, joule_node **out, joule_error *err)
{
    const char *in_names[16], *out_names[8];
    if (n_in > 16 || n_out > 8)
        return joule_fail(err, JOULE_ERR_INVALID, "%s: too many inputs or outputs", op);
    joule_status st;
    for (int i = 0; i < n_out; i++) {
        if (!outs[i]) {
            if ((st = joule_graph_new_value(g, out_hints[i], &outs[i], err)))
                return st;
        }
        out_names[i] = outs[i]->name;
    }
    for (int i = 0; i < n_in; i++)
        in_names[i] = ins[i] ? ins[i]->name : "";
    joule_node *n;
    if ((st = joule_node_create(g, op, "", name, n_in, in_names, n_out, out_names, &n, err)))
        return st;
    if (before)
        st = joule_graph_insert_before(g, n, before, err);
    else if (after)
        st = joule_graph_insert_after(g, n, after, err);
    else
        st = joule_graph_insert_before(g, n, NULL, err);
    if (st) {
        joule_node_destroy(n); /* not placed: nothing else owns it */
        return st;
    }
    if (out)
        *out = n;
    return JOULE_OK;
}

joule_status jq_take_name(joule_graph *g, joule_value *from, joule_value *to, const char *suffix,
                          joule_error *err)
{
    char old[512], fresh[600];
    snprintf(old, sizeof old, "%s", from->name);
    char hint[560];
    snprintf(hint, sizeof hint, "%s_%s", old, suffix);
    jq_free_name(g, hint, fresh, sizeof fresh);
    joule_status st = joule_graph_rename_value(g, from, fresh, err);
    if (!st)
        st = joule_graph_rename_value(g, to, old, err);
    return st;
}

void jq_copy_shape(joule_value *dst, const joule_value *src)
{
    dst->shape = src->shape;
}

joule_status jq_row(joule_report *r, const joule_layer_change *row, joule_error *err)
{
    return r ? joule_report_add(r, row, err) : JOULE_OK;
}

joule_status jq_copy_conv_attrs(joule_graph *g, const joule_node *from, joule_node *to,
                                joule_error *err)
{
    static const char *const names[] = {"auto_pad", "dilations", "group", "kernel_shape", "pads",
                                        "strides"};
    joule_status st = JOULE_OK;
    for (size_t i = 0; i < sizeof names / sizeof *names && !st; i++) {
        const joule_attr *a = joule_node_attr(from, names[i]);
        if (!a)
            continue;
        if (a->type == JOULE_ATTR_INT) {
            st = joule_node_set_attr_int(g, to, a->name, a->i, err);
        } else if (a->type == JOULE_ATTR_INTS) {
            st = joule_node_set_attr_ints(g, to, a->name, a->ints, a->count, err);
        } else if (a->type == JOULE_ATTR_STRING) {
            char buf[64];
            snprintf(buf, sizeof buf, "%.*s", (int)a->s.len, a->s.ptr);
            st = joule_node_set_attr_string(g, to, a->name, buf, err);
        }
    }
    return st;
}

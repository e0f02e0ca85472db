/* eval/cpu/shape/resize.c: Resize in modes nearest and linear (N-linear over every axis whose
 * scale asks for it). Opset 10 takes (X, scales) with the asymmetric transform and the
 * "simple" nearest rounding of that version (ceil when shrinking, floor otherwise); opset 11+
 * takes (X, roi, scales, sizes) with coordinate_transformation_mode half_pixel,
 * half_pixel_symmetric (19), pytorch_half_pixel, align_corners, asymmetric, tf_half_pixel_for_nn
 * and tf_crop_and_resize (with extrapolation_value), and nearest_mode round_prefer_floor,
 * round_prefer_ceil, floor and ceil. Cubic, antialias and the axes/keep_aspect_ratio_policy of
 * opset 18 are declined in supports().
 *
 * Each output axis gets a table computed once per run, in scratch planned at prepare: nearest
 * maps output index to input index (then one mapped copy, any dtype), linear gives two
 * neighbours and a weight (float types). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "eval/cpu/shape/shape_internal.h"

enum rs_mode { RS_NEAREST, RS_LINEAR, RS_BAD_MODE };
enum rs_ctm {
    CTM_HALF_PIXEL,
    CTM_HALF_PIXEL_SYMMETRIC,
    CTM_PYTORCH_HALF_PIXEL,
    CTM_ALIGN_CORNERS,
    CTM_ASYMMETRIC,
    CTM_TF_HALF_PIXEL_FOR_NN,
    CTM_TF_CROP_AND_RESIZE,
    CTM_BAD
};
enum rs_nearest { NM_ROUND_PREFER_FLOOR, NM_ROUND_PREFER_CEIL, NM_FLOOR, NM_CEIL, NM_SIMPLE, NM_BAD };

typedef struct rs_params {
    enum rs_mode mode;
    enum rs_ctm ctm;
    enum rs_nearest nearest;
    float extrapolation;
} rs_params;

static void parse_params(const joule_node *n, int64_t opset, rs_params *p)
{
    static const char *const ctm_names[] = {
        [CTM_HALF_PIXEL] = "half_pixel",
        [CTM_HALF_PIXEL_SYMMETRIC] = "half_pixel_symmetric",
        [CTM_PYTORCH_HALF_PIXEL] = "pytorch_half_pixel",
        [CTM_ALIGN_CORNERS] = "align_corners",
        [CTM_ASYMMETRIC] = "asymmetric",
        [CTM_TF_HALF_PIXEL_FOR_NN] = "tf_half_pixel_for_nn",
        [CTM_TF_CROP_AND_RESIZE] = "tf_crop_and_resize",
    };
    static const char *const nm_names[] = {
        [NM_ROUND_PREFER_FLOOR] = "round_prefer_floor",
        [NM_ROUND_PREFER_CEIL] = "round_prefer_ceil",
        [NM_FLOOR] = "floor",
        [NM_CEIL] = "ceil",
    };
    p->mode = jsk_attr_is(n, "mode", "nearest", "nearest")  ? RS_NEAREST
              : jsk_attr_is(n, "mode", "nearest", "linear") ? RS_LINEAR
                                                            : RS_BAD_MODE;
    p->extrapolation = joule_attr_float(n, "extrapolation_value", 0.0f);
    if (opset < 11) {
        p->ctm = CTM_ASYMMETRIC;
        p->nearest = NM_SIMPLE;
        return;
    }
    p->ctm = CTM_BAD;
    for (int i = 0; i < CTM_BAD; i++)
        if (jsk_attr_is(n, "coordinate_transformation_mode", "half_pixel", ctm_names[i]))
            p->ctm = (enum rs_ctm)i;
    if (p->ctm == CTM_HALF_PIXEL_SYMMETRIC && opset < 19)
        p->ctm = CTM_BAD;
    p->nearest = NM_BAD;
    for (int i = 0; i < NM_SIMPLE; i++)
        if (jsk_attr_is(n, "nearest_mode", "round_prefer_floor", nm_names[i]))
            p->nearest = (enum rs_nearest)i;
}

static bool linear_dtype(joule_dtype t)
{
    return t == JOULE_F32 || t == JOULE_F64 || t == JOULE_F16 || t == JOULE_BF16;
}

bool jsk_resize_supports(const joule_node *node, int64_t opset, int n_in,
                         const joule_view *const *in)
{
    if (n_in < 2 || !in[0] || in[0]->rank < 1 || jsk_elem_size(in[0]->dtype) == 0)
        return false;
    rs_params p;
    parse_params(node, opset, &p);
    if (p.mode == RS_BAD_MODE || p.ctm == CTM_BAD || (p.mode == RS_NEAREST && p.nearest == NM_BAD))
        return false;
    if (p.mode == RS_LINEAR && !linear_dtype(in[0]->dtype))
        return false;
    if (opset >= 18 && (joule_attr_int(node, "antialias", 0) != 0 || joule_node_attr(node, "axes") ||
                        !jsk_attr_is(node, "keep_aspect_ratio_policy", "stretch", "stretch")))
        return false;
    if (opset < 11)
        return in[1] && in[1]->dtype == JOULE_F32;
    bool scales = n_in >= 3 && in[2] && in[2]->dtype == JOULE_F32;
    bool sizes = n_in >= 4 && in[3] && in[3]->dtype == JOULE_I64;
    return scales || sizes;
}

/* Float value of element i of a float-typed view. */
static double float_at(const joule_view *v, size_t i)
{
    if (v->dtype == JOULE_F64) {
        double d;
        memcpy(&d, (const char *)v->data + i * 8, 8);
        return d;
    }
    return joule_dtype_info(v->dtype)->to_f32(v->data, i);
}

/* Per-axis scales (as the coordinate transforms use them) and checked output dims. */
static joule_status read_scales(const joule_kernel_ctx *ctx, double *scale, double *roi)
{
    const joule_view *x = ctx->in[0];
    const joule_view *out = ctx->out[0];
    int r = x->rank;
    joule_status st;
    if (ctx->n_out < 1 || !out || out->dtype != x->dtype || out->rank != r)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "output must have the input's dtype and rank");
    const joule_view *sv, *zv = NULL;
    if (ctx->opset < 11) {
        sv = ctx->n_in >= 2 ? ctx->in[1] : NULL;
    } else {
        sv = ctx->n_in >= 3 ? ctx->in[2] : NULL;
        zv = ctx->n_in >= 4 ? ctx->in[3] : NULL;
    }
    if (sv && sv->count == 0)
        sv = NULL; /* an empty scales tensor stands for "use sizes" */
    if (zv && zv->count == 0)
        zv = NULL;
    if (sv && zv)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "scales and sizes are both given");
    if (zv) {
        int64_t sizes[JOULE_MAX_RANK];
        size_t n;
        if ((st = jsk_read_ints(ctx, zv, "sizes", sizes, JOULE_MAX_RANK, &n)))
            return st;
        if (n != (size_t)r)
            return jsk_fail(ctx, JOULE_ERR_INVALID, "sizes has %zu values for rank %d", n, r);
        if ((st = jsk_check_out(ctx, 0, x->dtype, r, sizes)))
            return st;
        for (int k = 0; k < r; k++)
            scale[k] = x->dims[k] > 0 ? (double)sizes[k] / (double)x->dims[k] : 1.0;
    } else if (sv) {
        if (sv->dtype != JOULE_F32 || !sv->data || sv->count != (size_t)r)
            return jsk_fail(ctx, JOULE_ERR_INVALID, "scales must be %d float values", r);
        for (int k = 0; k < r; k++) {
            float s;
            memcpy(&s, (const char *)sv->data + (size_t)k * 4, 4);
            if (!(s > 0.0f) || !isfinite(s))
                return jsk_fail(ctx, JOULE_ERR_INVALID, "scale %g of axis %d is not positive",
                                (double)s, k);
            scale[k] = s;
        }
        if ((st = jsk_check_out(ctx, 0, x->dtype, r, out->dims)))
            return st;
    } else {
        return jsk_fail(ctx, JOULE_ERR_INVALID, "neither scales nor sizes is given");
    }
    for (int k = 0; k < r; k++) {
        if (x->dims[k] == 0 && out->dims[k] > 0)
            return jsk_fail(ctx, JOULE_ERR_INVALID, "axis %d is empty and cannot be resized to %lld",
                            k, (long long)out->dims[k]);
        roi[k] = 0.0;
        roi[r + k] = 1.0;
    }
    const joule_view *rv = ctx->opset >= 11 && ctx->n_in >= 2 ? ctx->in[1] : NULL;
    rs_params p;
    parse_params(ctx->node, ctx->opset, &p);
    if (p.ctm == CTM_TF_CROP_AND_RESIZE) {
        if (!rv || !rv->data || rv->count != 2 * (size_t)r || !joule_dtype_info(rv->dtype)->is_float ||
            (rv->dtype != JOULE_F64 && !joule_dtype_info(rv->dtype)->to_f32))
            return jsk_fail(ctx, JOULE_ERR_INVALID,
                            "tf_crop_and_resize needs a float roi with %d values", 2 * r);
        for (int k = 0; k < 2 * r; k++)
            roi[k] = float_at(rv, (size_t)k);
    }
    return JOULE_OK;
}

/* Input coordinate of output index o along an axis. */
static double original_coord(enum rs_ctm ctm, int64_t o, int64_t len_in, int64_t len_out,
                             double scale, double roi_start, double roi_end)
{
    double x = (double)o;
    switch (ctm) {
    case CTM_HALF_PIXEL:
        return (x + 0.5) / scale - 0.5;
    case CTM_HALF_PIXEL_SYMMETRIC: {
        double adjust = (double)len_out / (scale * (double)len_in);
        double center = (double)len_in / 2.0;
        return center * (1.0 - adjust) + (x + 0.5) / scale - 0.5;
    }
    case CTM_PYTORCH_HALF_PIXEL:
        return len_out > 1 ? (x + 0.5) / scale - 0.5 : 0.0;
    case CTM_ALIGN_CORNERS:
        return len_out > 1 ? x * (double)(len_in - 1) / (double)(len_out - 1) : 0.0;
    case CTM_ASYMMETRIC:
        return x / scale;
    case CTM_TF_HALF_PIXEL_FOR_NN:
        return (x + 0.5) / scale;
    case CTM_TF_CROP_AND_RESIZE:
        if (len_out > 1)
            return roi_start * (double)(len_in - 1) +
                   x * (roi_end - roi_start) * (double)(len_in - 1) / (double)(len_out - 1);
        return 0.5 * (roi_start + roi_end) * (double)(len_in - 1);
    default:
        return 0.0;
    }
}

/* Whether coordinate x falls outside the input (tf_crop_and_resize extrapolates there). */
static bool extrapolates(enum rs_ctm ctm, double x, int64_t len_in)
{
    return ctm == CTM_TF_CROP_AND_RESIZE && (x < 0.0 || x > (double)(len_in - 1));
}

/* x limited to [-1, len] so the integer conversions below are defined for any input. */
static double bounded(double x, int64_t len)
{
    if (!(x > -1.0)) /* also NaN */
        return -1.0;
    return x > (double)len ? (double)len : x;
}

static int64_t nearest_index(enum rs_nearest nm, double x, bool downsampling, int64_t len)
{
    x = bounded(x, len);
    double f = floor(x);
    double v;
    switch (nm) {
    case NM_ROUND_PREFER_FLOOR:
        v = (x - f == 0.5) ? f : floor(x + 0.5);
        break;
    case NM_ROUND_PREFER_CEIL:
        v = (x - f == 0.5) ? f + 1.0 : floor(x + 0.5);
        break;
    case NM_FLOOR:
        v = f;
        break;
    case NM_CEIL:
        v = ceil(x);
        break;
    default: /* NM_SIMPLE, opset 10 */
        v = downsampling ? ceil(x) : trunc(x);
        break;
    }
    int64_t i = (int64_t)v;
    return i < 0 ? 0 : i > len - 1 ? len - 1 : i;
}

/* The extrapolation value as one element of dtype t. */
static void extrapolation_elem(joule_dtype t, float v, unsigned char *elem)
{
    memset(elem, 0, JSK_MAX_ELEM);
    if (t == JOULE_F64) {
        double d = v;
        memcpy(elem, &d, sizeof d);
    } else if (joule_dtype_info(t)->from_f32) {
        joule_dtype_info(t)->from_f32(elem, 0, v);
    }
}

static joule_status resize_nearest(const joule_kernel_ctx *ctx, const rs_params *p,
                                   const double *scale, const double *roi)
{
    const joule_view *x = ctx->in[0];
    const joule_view *out = ctx->out[0];
    int r = x->rank;
    size_t bytes;
    void *owned;
    if (!jsk_table_bytes(r, out->dims, sizeof(int64_t), &bytes))
        return jsk_fail(ctx, JOULE_ERR_INVALID, "output dims overflow");
    int64_t *mem = jsk_scratch(ctx, bytes, &owned);
    if (!mem)
        return jsk_fail(ctx, JOULE_ERR_NOMEM, "out of memory for index tables");
    const int64_t *maps[JOULE_MAX_RANK];
    int64_t *m = mem;
    for (int k = 0; k < r; k++) {
        int64_t len = x->dims[k];
        for (int64_t o = 0; o < out->dims[k]; o++) {
            double c = original_coord(p->ctm, o, len, out->dims[k], scale[k], roi[k], roi[r + k]);
            m[o] = extrapolates(p->ctm, c, len) ? -1
                                                : nearest_index(p->nearest, c, scale[k] < 1.0, len);
        }
        maps[k] = m;
        m += out->dims[k];
    }
    unsigned char fill[JSK_MAX_ELEM];
    extrapolation_elem(x->dtype, p->extrapolation, fill);
    int64_t strides[JOULE_MAX_RANK];
    jsk_strides(r, x->dims, strides);
    jsk_mapped_copy(out->data, x->data, jsk_elem_size(x->dtype), r, out->dims, strides, maps, fill,
                    m, ctx->threads);
    free(owned);
    return JOULE_OK;
}

/* Bytes per output index of the linear tables: i0, i1 and w1 below. */
#define LINEAR_ENTRY (2 * sizeof(int64_t) + sizeof(float))

/* Linear tables of one axis: neighbours i0/i1 (i0 = -1: extrapolate) and the weight of i1. */
typedef struct lin_axis {
    int64_t *i0, *i1;
    float *w1;
    bool interp; /* some output needs two neighbours */
} lin_axis;

#define MAX_TAPS (1 << (JOULE_MAX_RANK - 1))

/* Element loaders and storers per dtype, as float (double for f64). */
static inline float ld_f32(const void *p, ptrdiff_t i)
{
    float v;
    memcpy(&v, (const char *)p + i * 4, 4);
    return v;
}
static inline void st_f32(void *p, size_t i, float v)
{
    memcpy((char *)p + i * 4, &v, 4);
}
static inline double ld_f64(const void *p, ptrdiff_t i)
{
    double v;
    memcpy(&v, (const char *)p + i * 8, 8);
    return v;
}
static inline void st_f64(void *p, size_t i, double v)
{
    memcpy((char *)p + i * 8, &v, 8);
}
static inline float ld_f16(const void *p, ptrdiff_t i)
{
    uint16_t h;
    memcpy(&h, (const char *)p + i * 2, 2);
    return joule_f16_to_f32(h);
}
static inline void st_f16(void *p, size_t i, float v)
{
    uint16_t h = joule_f32_to_f16(v);
    memcpy((char *)p + i * 2, &h, 2);
}
static inline float ld_bf16(const void *p, ptrdiff_t i)
{
    uint16_t h;
    memcpy(&h, (const char *)p + i * 2, 2);
    return joule_bf16_to_f32(h);
}
static inline void st_bf16(void *p, size_t i, float v)
{
    uint16_t h = joule_f32_to_bf16(v);
    memcpy((char *)p + i * 2, &h, 2);
}

/* Rows [r0, r1) of the output (a row: every index but the last fixed). For each row the outer
 * axes give up to 2^(r-1) (offset, weight) taps; the last axis is blended inside the loop. */
#define LINEAR_ROWS(NAME, T, LD, ST)                                                               \
    static void NAME(const joule_view *x, joule_view *out, const lin_axis *ax, T extrap,          \
                     size_t r0, size_t r1)                                                         \
    {                                                                                              \
        int r = x->rank, no = r - 1;                                                               \
        int64_t in_strides[JOULE_MAX_RANK], idx[JOULE_MAX_RANK];                                   \
        jsk_strides(r, x->dims, in_strides);                                                       \
        size_t rem = r0;                                                                           \
        for (int k = no - 1; k >= 0; k--) {                                                        \
            idx[k] = (int64_t)(rem % (size_t)out->dims[k]);                                        \
            rem /= (size_t)out->dims[k];                                                           \
        }                                                                                          \
        const int64_t n = out->dims[r - 1];                                                        \
        const lin_axis *la = &ax[r - 1];                                                           \
        const int64_t ls = in_strides[r - 1];                                                      \
        ptrdiff_t toff[MAX_TAPS];                                                                  \
        T tw[MAX_TAPS];                                                                            \
        for (size_t row = r0; row < r1; row++) {                                                   \
            size_t base = row * (size_t)n;                                                         \
            int nt = 1;                                                                            \
            bool outside = false;                                                                  \
            toff[0] = 0;                                                                           \
            tw[0] = 1;                                                                             \
            for (int k = 0; k < no && !outside; k++) {                                             \
                int64_t a = ax[k].i0[idx[k]];                                                      \
                if (a < 0) {                                                                       \
                    outside = true;                                                                \
                    break;                                                                         \
                }                                                                                  \
                ptrdiff_t oa = (ptrdiff_t)(a * in_strides[k]);                                     \
                if (!ax[k].interp) {                                                               \
                    for (int t = 0; t < nt; t++)                                                   \
                        toff[t] += oa;                                                             \
                    continue;                                                                      \
                }                                                                                  \
                ptrdiff_t ob = (ptrdiff_t)(ax[k].i1[idx[k]] * in_strides[k]);                      \
                T w1 = (T)ax[k].w1[idx[k]], w0 = (T)1 - w1;                                        \
                for (int t = 0; t < nt; t++) {                                                     \
                    toff[nt + t] = toff[t] + ob;                                                   \
                    tw[nt + t] = tw[t] * w1;                                                       \
                    toff[t] += oa;                                                                 \
                    tw[t] *= w0;                                                                   \
                }                                                                                  \
                nt *= 2;                                                                           \
            }                                                                                      \
            for (int64_t i = 0; i < n; i++) {                                                      \
                int64_t a = la->i0[i];                                                             \
                T v;                                                                               \
                if (outside || a < 0) {                                                            \
                    v = extrap;                                                                    \
                } else {                                                                           \
                    ptrdiff_t oa = (ptrdiff_t)(a * ls), ob = (ptrdiff_t)(la->i1[i] * ls);          \
                    T w1 = (T)la->w1[i], w0 = (T)1 - w1;                                           \
                    v = 0;                                                                         \
                    for (int t = 0; t < nt; t++)                                                   \
                        v += tw[t] * (w0 * LD(x->data, toff[t] + oa) +                             \
                                      w1 * LD(x->data, toff[t] + ob));                             \
                }                                                                                  \
                ST(out->data, base + (size_t)i, v);                                                \
            }                                                                                      \
            for (int k = no - 1; k >= 0; k--) {                                                    \
                if (++idx[k] < out->dims[k])                                                       \
                    break;                                                                         \
                idx[k] = 0;                                                                        \
            }                                                                                      \
        }                                                                                          \
    }

LINEAR_ROWS(linear_rows_f32, float, ld_f32, st_f32)
LINEAR_ROWS(linear_rows_f64, double, ld_f64, st_f64)
LINEAR_ROWS(linear_rows_f16, float, ld_f16, st_f16)
LINEAR_ROWS(linear_rows_bf16, float, ld_bf16, st_bf16)

static void linear_rows(const joule_view *x, joule_view *out, const lin_axis *ax, float extrap,
                        size_t r0, size_t r1)
{
    switch (x->dtype) {
    case JOULE_F32:
        linear_rows_f32(x, out, ax, extrap, r0, r1);
        break;
    case JOULE_F64:
        linear_rows_f64(x, out, ax, extrap, r0, r1);
        break;
    case JOULE_F16:
        linear_rows_f16(x, out, ax, extrap, r0, r1);
        break;
    default:
        linear_rows_bf16(x, out, ax, extrap, r0, r1);
        break;
    }
}

static joule_status resize_linear(const joule_kernel_ctx *ctx, const rs_params *p,
                                  const double *scale, const double *roi)
{
    const joule_view *x = ctx->in[0];
    joule_view *out = ctx->out[0];
    int r = x->rank;
    if (!linear_dtype(x->dtype))
        return jsk_fail(ctx, JOULE_ERR_UNSUPPORTED, "linear mode on %s",
                        joule_dtype_name(x->dtype));
    size_t table = 0, bytes;
    void *owned;
    for (int k = 0; k < r; k++)
        table += (size_t)out->dims[k];
    if (!jsk_table_bytes(r, out->dims, LINEAR_ENTRY, &bytes))
        return jsk_fail(ctx, JOULE_ERR_INVALID, "output dims overflow");
    int64_t *imem = jsk_scratch(ctx, bytes, &owned);
    if (!imem)
        return jsk_fail(ctx, JOULE_ERR_NOMEM, "out of memory for interpolation tables");
    float *wmem = (float *)(imem + 2 * table);
    lin_axis ax[JOULE_MAX_RANK];
    size_t used = 0;
    for (int k = 0; k < r; k++) {
        int64_t len = x->dims[k];
        ax[k].i0 = imem + used;
        ax[k].i1 = imem + table + used;
        ax[k].w1 = wmem + used;
        ax[k].interp = false;
        for (int64_t o = 0; o < out->dims[k]; o++) {
            double c = original_coord(p->ctm, o, len, out->dims[k], scale[k], roi[k], roi[r + k]);
            if (extrapolates(p->ctm, c, len)) {
                ax[k].i0[o] = ax[k].i1[o] = -1;
                ax[k].w1[o] = 0;
                continue;
            }
            /* outside the input the edge value repeats: clamping x gives exactly that */
            c = c < 0.0 ? 0.0 : c > (double)(len - 1) ? (double)(len - 1) : c;
            int64_t i0 = (int64_t)floor(c);
            ax[k].i0[o] = i0;
            ax[k].i1[o] = i0 + 1 < len ? i0 + 1 : len - 1;
            ax[k].w1[o] = (float)(c - (double)i0);
            if (ax[k].w1[o] != 0.0f)
                ax[k].interp = true;
        }
        used += (size_t)out->dims[k];
    }
    size_t rows = out->count / (size_t)out->dims[r - 1];
    int nt = ctx->threads;
    if (nt > 1 && (out->count < 65536 || rows < 2))
        nt = 1;
    if ((size_t)nt > rows)
        nt = (int)rows;
    if (nt <= 1) {
        linear_rows(x, out, ax, p->extrapolation, 0, rows);
    } else {
#if HAVE_OPENMP
#pragma omp parallel for num_threads(nt) schedule(static)
#endif
        for (int t = 0; t < nt; t++)
            linear_rows(x, out, ax, p->extrapolation, rows * (size_t)t / (size_t)nt,
                        rows * (size_t)(t + 1) / (size_t)nt);
    }
    free(owned);
    return JOULE_OK;
}

joule_status jsk_resize_prepare(const joule_kernel_ctx *ctx, void **state, size_t *scratch_bytes)
{
    const joule_view *out = ctx->n_out >= 1 ? ctx->out[0] : NULL;
    rs_params p;
    parse_params(ctx->node, ctx->opset, &p);
    size_t bytes;
    if (!out || !jsk_table_bytes(out->rank, out->dims,
                                 p.mode == RS_LINEAR ? LINEAR_ENTRY : sizeof(int64_t), &bytes))
        return jsk_fail(ctx, JOULE_ERR_INVALID, "output dims are not planned");
    return jsk_prepare_scratch(ctx, bytes, state, scratch_bytes);
}

joule_status jsk_resize_run(const joule_kernel_ctx *ctx)
{
    const joule_view *x = ctx->in[0];
    int r = x->rank;
    rs_params p;
    parse_params(ctx->node, ctx->opset, &p);
    if (p.mode == RS_BAD_MODE || p.ctm == CTM_BAD || (p.mode == RS_NEAREST && p.nearest == NM_BAD))
        return jsk_fail(ctx, JOULE_ERR_UNSUPPORTED, "mode, coordinate transform or nearest_mode");
    if (r < 1 || r > JOULE_MAX_RANK)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "input rank %d", r);
    double scale[JOULE_MAX_RANK], roi[2 * JOULE_MAX_RANK];
    joule_status st = read_scales(ctx, scale, roi);
    if (st || ctx->out[0]->count == 0)
        return st;
    if (!x->data)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "input has no data");
    return p.mode == RS_NEAREST ? resize_nearest(ctx, &p, scale, roi)
                                : resize_linear(ctx, &p, scale, roi);
}

/* formats/ops/infer_linalg.c: shape/dtype inference for MatMul, Gemm, Conv and ConvTranspose and
 * their integer/QLinear forms, plus the spatial-size rule (pads, strides, dilations, auto_pad,
 * ceil_mode) that the pooling ops share. */
#include <string.h>

#include "formats/ops/infer_util.h"

/* ---- MatMul ---- */

static joule_status matmul_shape(joule_infer_ctx *c, int ia, int ib, joule_shape *out, bool *known)
{
    const joule_shape *a = ji_in_shape(c, ia), *b = ji_in_shape(c, ib);
    *known = false;
    if (!a || !b)
        return JOULE_OK;
    char sa[160], sb[160];
    if (a->rank == 0 || b->rank == 0)
        return ji_infer_fail(c, "MatMul of a scalar (%s x %s)", ji_shape_str(a, sa, sizeof sa),
                             ji_shape_str(b, sb, sizeof sb));
    joule_dim ka = a->dims[a->rank - 1];
    joule_dim kb = b->rank == 1 ? b->dims[0] : b->dims[b->rank - 2];
    if (!ji_dim_compatible(ka, kb))
        return ji_infer_fail(c, "inner dims differ: %s x %s", ji_shape_str(a, sa, sizeof sa),
                             ji_shape_str(b, sb, sizeof sb));
    joule_shape ba = {.rank = a->rank > 2 ? a->rank - 2 : 0};
    joule_shape bb = {.rank = b->rank > 2 ? b->rank - 2 : 0};
    for (int i = 0; i < ba.rank; i++)
        ba.dims[i] = a->dims[i];
    for (int i = 0; i < bb.rank; i++)
        bb.dims[i] = b->dims[i];
    joule_status st = ji_shape_broadcast(c, &ba, &bb, out);
    if (st)
        return st;
    if (a->rank >= 2)
        out->dims[out->rank++] = a->dims[a->rank - 2];
    if (b->rank >= 2)
        out->dims[out->rank++] = b->dims[b->rank - 1];
    *known = true;
    return JOULE_OK;
}

joule_status ji_matmul(joule_infer_ctx *c)
{
    joule_shape s;
    bool known;
    joule_status st = matmul_shape(c, 0, 1, &s, &known);
    if (st)
        return st;
    ji_out_set(c, 0, ji_in_dtype(c, 0), known ? &s : NULL);
    return JOULE_OK;
}

joule_status ji_matmul_integer(joule_infer_ctx *c)
{
    joule_shape s;
    bool known;
    joule_status st = matmul_shape(c, 0, 1, &s, &known);
    if (st)
        return st;
    ji_out_set(c, 0, JOULE_I32, known ? &s : NULL);
    return JOULE_OK;
}

joule_status ji_qlinear_matmul(joule_infer_ctx *c)
{
    joule_shape s;
    bool known;
    joule_status st = matmul_shape(c, 0, 3, &s, &known);
    if (st)
        return st;
    ji_out_set(c, 0, ji_in_dtype(c, 7), known ? &s : NULL);
    return JOULE_OK;
}

/* ---- Gemm ---- */

joule_status ji_gemm(joule_infer_ctx *c)
{
    const joule_shape *a = ji_in_shape(c, 0), *b = ji_in_shape(c, 1), *cs = ji_in_shape(c, 2);
    joule_dtype dt = ji_in_dtype(c, 0);
    if (!a || !b) {
        ji_out_set(c, 0, dt, NULL);
        return JOULE_OK;
    }
    char sa[160], sb[160];
    if (a->rank != 2 || b->rank != 2)
        return ji_infer_fail(c, "A %s and B %s must be 2-D", ji_shape_str(a, sa, sizeof sa),
                             ji_shape_str(b, sb, sizeof sb));
    bool ta = joule_attr_int(c->node, "transA", 0) != 0;
    bool tb = joule_attr_int(c->node, "transB", 0) != 0;
    joule_dim m = a->dims[ta ? 1 : 0], ka = a->dims[ta ? 0 : 1];
    joule_dim kb = b->dims[tb ? 1 : 0], n = b->dims[tb ? 0 : 1];
    if (!ji_dim_compatible(ka, kb))
        return ji_infer_fail(c, "inner dims differ: A %s%s x B %s%s",
                             ji_shape_str(a, sa, sizeof sa), ta ? "^T" : "",
                             ji_shape_str(b, sb, sizeof sb), tb ? "^T" : "");
    joule_shape y = {.rank = 2, .dims = {m, n}};
    if (cs && cs->rank > 2)
        return ji_infer_fail(c, "C has rank %d (at most 2)", cs->rank);
    if (cs) { /* C broadcasts to [M, N] */
        for (int i = 0; i < cs->rank; i++) {
            joule_dim d = cs->dims[i], o = y.dims[i + 2 - cs->rank];
            if (ji_dim_known(d) && d.size != 1 && ji_dim_known(o) && d.size != o.size)
                return ji_infer_fail(c, "C %s does not broadcast to [M,N]",
                                     ji_shape_str(cs, sa, sizeof sa));
        }
    }
    ji_out_set(c, 0, dt, &y);
    return JOULE_OK;
}

/* ---- Conv family ---- */

/* Reads an INTS attribute of exactly want entries into out (default dflt when absent). */
static joule_status spatial_attr(const joule_infer_ctx *c, const char *name, int want,
                                 int64_t dflt, int64_t *out)
{
    const int64_t *v;
    size_t n;
    if (!ji_attr_ints(c->node, name, &v, &n)) {
        for (int i = 0; i < want; i++)
            out[i] = dflt;
        return JOULE_OK;
    }
    if (n != (size_t)want)
        return ji_infer_fail(c, "attribute %s has %zu entries, expected %d", name, n, want);
    for (int i = 0; i < want; i++)
        out[i] = v[i];
    return JOULE_OK;
}

static bool auto_pad_is(const joule_node *n, const char *what)
{
    joule_string s = joule_attr_string(n, "auto_pad", "NOTSET");
    return s.len == strlen(what) && memcmp(s.ptr, what, s.len) == 0;
}

static joule_status check_auto_pad(const joule_infer_ctx *c)
{
    if (auto_pad_is(c->node, "NOTSET") || auto_pad_is(c->node, "VALID") ||
        auto_pad_is(c->node, "SAME_UPPER") || auto_pad_is(c->node, "SAME_LOWER"))
        return JOULE_OK;
    joule_string s = joule_attr_string(c->node, "auto_pad", "");
    return ji_infer_fail(c, "unknown auto_pad '%.*s'", (int)s.len, s.ptr);
}

joule_status ji_conv_spatial(const joule_infer_ctx *c, const joule_shape *x, const int64_t *kernel,
                             int n_sp, bool ceil_mode, joule_shape *y)
{
    int64_t strides[JOULE_MAX_RANK], dil[JOULE_MAX_RANK], pads[2 * JOULE_MAX_RANK];
    joule_status st = check_auto_pad(c);
    if (!st)
        st = spatial_attr(c, "strides", n_sp, 1, strides);
    if (!st)
        st = spatial_attr(c, "dilations", n_sp, 1, dil);
    if (!st)
        st = spatial_attr(c, "pads", 2 * n_sp, 0, pads);
    if (st)
        return st;
    bool same = auto_pad_is(c->node, "SAME_UPPER") || auto_pad_is(c->node, "SAME_LOWER");
    bool valid = auto_pad_is(c->node, "VALID");
    for (int i = 0; i < n_sp; i++) {
        if (strides[i] <= 0 || dil[i] <= 0 || pads[i] < 0 || pads[i + n_sp] < 0)
            return ji_infer_fail(c, "non-positive stride/dilation or negative pad on axis %d",
                                 i + 2);
        joule_dim in = x->dims[2 + i];
        if (!ji_dim_known(in) || kernel[i] < 0) {
            y->dims[2 + i] = ji_dim_unknown();
            continue;
        }
        if (kernel[i] == 0)
            return ji_infer_fail(c, "kernel size 0 on axis %d", i + 2);
        int64_t eff, out, padded, start;
        int64_t pb = valid || same ? 0 : pads[i], pe = valid || same ? 0 : pads[i + n_sp];
        if (!ji_mul(kernel[i] - 1, dil[i], &eff) || !ji_add(eff, 1, &eff) ||
            !ji_add(in.size, pb, &padded) || !ji_add(padded, pe, &padded))
            return ji_infer_fail(c, "sizes overflow on axis %d", i + 2);
        if (same) {
            out = in.size / strides[i] + (in.size % strides[i] != 0);
        } else {
            int64_t span = padded - eff;
            if (span < 0)
                return ji_infer_fail(c, "kernel %lld (dilated %lld) is larger than the padded "
                                     "input %lld on axis %d", (long long)kernel[i],
                                     (long long)eff, (long long)padded, i + 2);
            out = span / strides[i] + 1;
            if (ceil_mode && span % strides[i]) {
                out++;
                /* the last window must start inside the input or left padding */
                if (ji_mul(out - 1, strides[i], &start) && start >= in.size + pb)
                    out--;
            }
        }
        y->dims[2 + i] = ji_dim_c(out);
    }
    return JOULE_OK;
}

/* Conv-like inference with x at input ix, weights at iw, output dtype dt. */
static joule_status conv_common(joule_infer_ctx *c, int ix, int iw, joule_dtype dt)
{
    const joule_shape *x = ji_in_shape(c, ix), *w = ji_in_shape(c, iw);
    if (!x) {
        ji_out_set(c, 0, dt, NULL);
        return JOULE_OK;
    }
    char sx[160], sw[160];
    if (x->rank < 3)
        return ji_infer_fail(c, "input %s must have rank >= 3", ji_shape_str(x, sx, sizeof sx));
    int n_sp = x->rank - 2;
    if (w && w->rank != x->rank)
        return ji_infer_fail(c, "weight %s and input %s ranks differ",
                             ji_shape_str(w, sw, sizeof sw), ji_shape_str(x, sx, sizeof sx));
    int64_t group = joule_attr_int(c->node, "group", 1);
    if (group <= 0)
        return ji_infer_fail(c, "group %lld must be positive", (long long)group);
    int64_t kernel[JOULE_MAX_RANK];
    const int64_t *ks;
    size_t nk;
    bool have_ks = ji_attr_ints(c->node, "kernel_shape", &ks, &nk);
    if (have_ks && nk != (size_t)n_sp)
        return ji_infer_fail(c, "kernel_shape has %zu entries for %d spatial axes", nk, n_sp);
    for (int i = 0; i < n_sp; i++)
        kernel[i] = have_ks ? ks[i] : w && ji_dim_known(w->dims[2 + i]) ? w->dims[2 + i].size : -1;
    int64_t cin;
    if (w && ji_dim_known(x->dims[1]) && ji_dim_known(w->dims[1]) &&
        (!ji_mul(w->dims[1].size, group, &cin) || x->dims[1].size != cin))
        return ji_infer_fail(c, "input %s has %lld channels but weight %s with group %lld "
                             "does not take them", ji_shape_str(x, sx, sizeof sx),
                             (long long)x->dims[1].size, ji_shape_str(w, sw, sizeof sw),
                             (long long)group);
    joule_shape y;
    y.rank = x->rank;
    y.dims[0] = x->dims[0];
    y.dims[1] = w ? w->dims[0] : ji_dim_unknown();
    joule_status st = ji_conv_spatial(c, x, kernel, n_sp, false, &y);
    if (st)
        return st;
    ji_out_set(c, 0, dt, &y);
    return JOULE_OK;
}

joule_status ji_conv(joule_infer_ctx *c)
{
    return conv_common(c, 0, 1, ji_in_dtype(c, 0));
}

joule_status ji_conv_integer(joule_infer_ctx *c)
{
    return conv_common(c, 0, 1, JOULE_I32);
}

joule_status ji_qlinear_conv(joule_infer_ctx *c)
{
    return conv_common(c, 0, 3, ji_in_dtype(c, 7));
}

joule_status ji_conv_transpose(joule_infer_ctx *c)
{
    const joule_shape *x = ji_in_shape(c, 0), *w = ji_in_shape(c, 1);
    joule_dtype dt = ji_in_dtype(c, 0);
    if (!x) {
        ji_out_set(c, 0, dt, NULL);
        return JOULE_OK;
    }
    char sx[160], sw[160];
    if (x->rank < 3)
        return ji_infer_fail(c, "input %s must have rank >= 3", ji_shape_str(x, sx, sizeof sx));
    int n_sp = x->rank - 2;
    if (w && w->rank != x->rank)
        return ji_infer_fail(c, "weight %s and input %s ranks differ",
                             ji_shape_str(w, sw, sizeof sw), ji_shape_str(x, sx, sizeof sx));
    int64_t group = joule_attr_int(c->node, "group", 1);
    if (group <= 0)
        return ji_infer_fail(c, "group %lld must be positive", (long long)group);
    if (w && ji_dim_known(x->dims[1]) && ji_dim_known(w->dims[0]) &&
        x->dims[1].size != w->dims[0].size)
        return ji_infer_fail(c, "input %s has %lld channels but weight %s expects %lld",
                             ji_shape_str(x, sx, sizeof sx), (long long)x->dims[1].size,
                             ji_shape_str(w, sw, sizeof sw), (long long)w->dims[0].size);
    int64_t kernel[JOULE_MAX_RANK], strides[JOULE_MAX_RANK], dil[JOULE_MAX_RANK];
    int64_t pads[2 * JOULE_MAX_RANK], opad[JOULE_MAX_RANK];
    const int64_t *ks;
    size_t nk;
    bool have_ks = ji_attr_ints(c->node, "kernel_shape", &ks, &nk);
    if (have_ks && nk != (size_t)n_sp)
        return ji_infer_fail(c, "kernel_shape has %zu entries for %d spatial axes", nk, n_sp);
    for (int i = 0; i < n_sp; i++)
        kernel[i] = have_ks ? ks[i] : w && ji_dim_known(w->dims[2 + i]) ? w->dims[2 + i].size : -1;
    joule_status st = check_auto_pad(c);
    if (!st)
        st = spatial_attr(c, "strides", n_sp, 1, strides);
    if (!st)
        st = spatial_attr(c, "dilations", n_sp, 1, dil);
    if (!st)
        st = spatial_attr(c, "pads", 2 * n_sp, 0, pads);
    if (!st)
        st = spatial_attr(c, "output_padding", n_sp, 0, opad);
    if (st)
        return st;
    joule_shape y;
    y.rank = x->rank;
    y.dims[0] = x->dims[0];
    int64_t cout;
    y.dims[1] = w && ji_dim_known(w->dims[1]) && ji_mul(w->dims[1].size, group, &cout)
                    ? ji_dim_c(cout) : ji_dim_unknown();
    const int64_t *os;
    size_t nos;
    if (ji_attr_ints(c->node, "output_shape", &os, &nos)) {
        if (nos < (size_t)n_sp)
            return ji_infer_fail(c, "output_shape has %zu entries for %d spatial axes", nos,
                                 n_sp);
        for (int i = 0; i < n_sp; i++) {
            int64_t v = os[nos - (size_t)n_sp + (size_t)i];
            if (v < 0)
                return ji_infer_fail(c, "output_shape has a negative size");
            y.dims[2 + i] = ji_dim_c(v);
        }
        ji_out_set(c, 0, dt, &y);
        return JOULE_OK;
    }
    bool same = auto_pad_is(c->node, "SAME_UPPER") || auto_pad_is(c->node, "SAME_LOWER");
    bool valid = auto_pad_is(c->node, "VALID");
    for (int i = 0; i < n_sp; i++) {
        if (strides[i] <= 0 || dil[i] <= 0 || pads[i] < 0 || pads[i + n_sp] < 0 || opad[i] < 0)
            return ji_infer_fail(c, "non-positive stride/dilation or negative padding on axis %d",
                                 i + 2);
        joule_dim in = x->dims[2 + i];
        if (!ji_dim_known(in) || kernel[i] < 0) {
            y.dims[2 + i] = ji_dim_unknown();
            continue;
        }
        int64_t out = -1, eff;
        bool ok;
        if (same) {
            ok = ji_mul(in.size, strides[i], &out);
        } else {
            int64_t pb = valid ? 0 : pads[i], pe = valid ? 0 : pads[i + n_sp];
            ok = in.size > 0 && kernel[i] >= 1 && ji_mul(strides[i], in.size - 1, &out) &&
                 ji_add(out, opad[i], &out) && ji_mul(kernel[i] - 1, dil[i], &eff) &&
                 ji_add(eff, 1, &eff) && ji_add(out, eff, &out) && ji_add(out, -pb, &out) &&
                 ji_add(out, -pe, &out); /* pads were checked >= 0, so -pad exists */
        }
        if (!ok)
            return ji_infer_fail(c, "sizes overflow or are invalid on axis %d", i + 2);
        if (out < 0)
            return ji_infer_fail(c, "negative output size %lld on axis %d", (long long)out, i + 2);
        y.dims[2 + i] = ji_dim_c(out);
    }
    ji_out_set(c, 0, dt, &y);
    return JOULE_OK;
}

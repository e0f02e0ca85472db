/* formats/ops/infer_shape.c: shape/dtype inference for operators that rearrange or resize a
 * tensor: Reshape (0, -1, allowzero, symbolic specs), Flatten, Transpose, Squeeze/Unsqueeze (axes
 * as attribute before 13, input after), Expand, Tile, Pad (attributes before 11), Resize (scales
 * or sizes), DepthToSpace and SpaceToDepth. Reshape/Squeeze/Unsqueeze pass known values on. */
#include <math.h>
#include <string.h>

#include "formats/ops/infer_util.h"

/* Re-labels a known input value with a new (concrete) shape: the data does not move. */
static joule_status pass_value_reshaped(joule_infer_ctx *c, const joule_shape *out)
{
    if (!ji_out_present(c, 0) || !joule_shape_is_concrete(out))
        return JOULE_OK;
    ji_pv p;
    if (!ji_pv_load(c, 0, &p))
        return JOULE_OK;
    size_t n;
    int64_t dims[JOULE_MAX_RANK];
    for (int i = 0; i < out->rank; i++)
        dims[i] = out->dims[i].size;
    if (!joule_dims_count(out->rank, dims, &n) || n != p.n) {
        ji_pv_free(&p);
        return JOULE_OK;
    }
    p.rank = out->rank;
    memcpy(p.dims, dims, sizeof dims);
    return ji_pv_store(c, 0, &p);
}

/* ---- Reshape ---- */

/* Multiset view of a dims product: concrete part, symbols, and anonymous unknowns. */
typedef struct dim_product {
    int64_t conc;
    bool overflow;
    int n_anon;
    int n_syms;
    const char *syms[JOULE_MAX_RANK];
} dim_product;

static void product_add(dim_product *p, joule_dim d)
{
    if (ji_dim_known(d)) {
        if (d.size != 0 && p->conc > INT64_MAX / d.size)
            p->overflow = true;
        else
            p->conc *= d.size;
    } else if (d.sym) {
        p->syms[p->n_syms++] = d.sym;
    } else {
        p->n_anon++;
    }
}

/* The dim that -1 stands for, from the input's dims and the spec's other dims. */
static joule_dim resolve_minus_one(dim_product *in, dim_product *out)
{
    if (in->overflow || out->overflow || in->n_anon || out->n_anon)
        return ji_dim_unknown();
    /* cancel symbols present on both sides */
    for (int i = 0; i < out->n_syms; i++) {
        int j;
        for (j = 0; j < in->n_syms; j++)
            if (in->syms[j] && strcmp(in->syms[j], out->syms[i]) == 0)
                break;
        if (j == in->n_syms)
            return ji_dim_unknown();
        in->syms[j] = NULL;
    }
    const char *left = NULL;
    int n_left = 0;
    for (int j = 0; j < in->n_syms; j++)
        if (in->syms[j]) {
            left = in->syms[j];
            n_left++;
        }
    if (n_left == 0 && out->conc != 0 && in->conc % out->conc == 0)
        return ji_dim_c(in->conc / out->conc);
    if (n_left == 1 && out->conc != 0 && in->conc == out->conc) {
        joule_dim d = {-1, left};
        return d;
    }
    return ji_dim_unknown();
}

joule_status ji_reshape(joule_infer_ctx *c)
{
    const joule_shape *x = ji_in_shape(c, 0);
    joule_dtype dt = ji_in_dtype(c, 0);
    joule_dim spec[JOULE_MAX_RANK];
    int rank = -1;
    ji_pv p;
    if (c->opset < 5) {
        const int64_t *v;
        size_t n;
        if (!ji_attr_ints(c->node, "shape", &v, &n))
            return ji_infer_fail(c, "attribute shape is missing");
        if (n > JOULE_MAX_RANK)
            return ji_infer_fail(c, "shape has %zu dims (joule supports %d)", n, JOULE_MAX_RANK);
        rank = (int)n;
        for (int i = 0; i < rank; i++)
            spec[i] = ji_pv_c(v[i]);
    } else if (ji_pv_load(c, 1, &p)) {
        if (p.rank > 1 || p.n > JOULE_MAX_RANK) {
            ji_pv_free(&p);
            return ji_infer_fail(c, "shape input must be a 1-D tensor of at most %d dims",
                                 JOULE_MAX_RANK);
        }
        rank = (int)p.n;
        for (int i = 0; i < rank; i++)
            spec[i] = p.e[i];
        ji_pv_free(&p);
    } else {
        int64_t len = ji_in_len(c, 1);
        const joule_shape *ss = ji_in_shape(c, 1);
        if (ss && ss->rank != 1)
            return ji_infer_fail(c, "shape input has rank %d (must be 1)", ss->rank);
        if (len > JOULE_MAX_RANK)
            return ji_infer_fail(c, "shape has %lld dims (joule supports %d)", (long long)len,
                                 JOULE_MAX_RANK);
        rank = (int)len;
        for (int i = 0; i < rank; i++)
            spec[i] = ji_pv_unknown(NULL);
    }
    if (rank < 0) {
        ji_out_set(c, 0, dt, NULL);
        return JOULE_OK;
    }
    bool allowzero = c->opset >= 14 && joule_attr_int(c->node, "allowzero", 0) != 0;
    joule_shape y = {.rank = rank};
    int minus = -1;
    dim_product in = {.conc = 1}, out = {.conc = 1};
    char sx[160];
    for (int i = 0; i < rank; i++) {
        joule_dim e = spec[i];
        if (!ji_pv_known(e)) {
            y.dims[i] = ji_pv_as_dim(e);
        } else if (e.size == 0 && !allowzero) {
            if (x && i >= x->rank)
                return ji_infer_fail(c, "shape[%d] = 0 copies a dim the input %s lacks", i,
                                     ji_shape_str(x, sx, sizeof sx));
            y.dims[i] = x ? x->dims[i] : ji_dim_unknown();
        } else if (e.size == -1) {
            if (minus >= 0)
                return ji_infer_fail(c, "shape has more than one -1");
            minus = i;
            continue;
        } else if (e.size < -1) {
            return ji_infer_fail(c, "shape[%d] = %lld is invalid", i, (long long)e.size);
        } else {
            y.dims[i] = ji_dim_c(e.size);
        }
        product_add(&out, y.dims[i]);
    }
    if (minus >= 0 && allowzero) {
        for (int i = 0; i < rank; i++)
            if (i != minus && ji_pv_known(spec[i]) && spec[i].size == 0)
                return ji_infer_fail(c, "shape has both 0 (allowzero) and -1");
    }
    if (x) {
        for (int i = 0; i < x->rank; i++)
            product_add(&in, x->dims[i]);
        if (minus >= 0) {
            y.dims[minus] = resolve_minus_one(&in, &out);
            if (!ji_dim_known(y.dims[minus]) && !in.n_anon && !out.n_anon && !in.overflow &&
                !out.overflow && in.n_syms == 0 && out.n_syms == 0)
                return ji_infer_fail(c, "cannot reshape %s (%lld elements) with the other dims "
                                     "giving %lld", ji_shape_str(x, sx, sizeof sx),
                                     (long long)in.conc, (long long)out.conc);
        } else if (joule_shape_is_concrete(x) && joule_shape_is_concrete(&y) && !in.overflow &&
                   !out.overflow && in.conc != out.conc) {
            char sy[160];
            return ji_infer_fail(c, "cannot reshape %s into %s", ji_shape_str(x, sx, sizeof sx),
                                 ji_shape_str(&y, sy, sizeof sy));
        }
    } else if (minus >= 0) {
        y.dims[minus] = ji_dim_unknown();
    }
    ji_out_set(c, 0, dt, &y);
    return pass_value_reshaped(c, &y);
}

joule_status ji_flatten(joule_infer_ctx *c)
{
    const joule_shape *x = ji_in_shape(c, 0);
    joule_dtype dt = ji_in_dtype(c, 0);
    if (!x) {
        ji_out_set(c, 0, dt, NULL);
        return JOULE_OK;
    }
    int64_t axis = joule_attr_int(c->node, "axis", 1);
    if (axis < 0)
        axis += x->rank;
    if (axis < 0 || axis > x->rank)
        return ji_infer_fail(c, "axis %lld is out of range for rank %d",
                             (long long)joule_attr_int(c->node, "axis", 1), x->rank);
    joule_shape y = {.rank = 2};
    y.dims[0] = ji_dims_product(x, 0, (int)axis, NULL);
    y.dims[1] = ji_dims_product(x, (int)axis, x->rank, NULL);
    ji_out_set(c, 0, dt, &y);
    return pass_value_reshaped(c, &y);
}

joule_status ji_transpose(joule_infer_ctx *c)
{
    const joule_shape *x = ji_in_shape(c, 0);
    joule_dtype dt = ji_in_dtype(c, 0);
    if (!x) {
        ji_out_set(c, 0, dt, NULL);
        return JOULE_OK;
    }
    const int64_t *perm;
    size_t n;
    int64_t dflt[JOULE_MAX_RANK];
    if (!ji_attr_ints(c->node, "perm", &perm, &n)) {
        for (int i = 0; i < x->rank; i++)
            dflt[i] = x->rank - 1 - i;
        perm = dflt;
        n = (size_t)x->rank;
    }
    if (n != (size_t)x->rank)
        return ji_infer_fail(c, "perm has %zu entries for rank %d", n, x->rank);
    bool seen[JOULE_MAX_RANK] = {false};
    joule_shape y = {.rank = x->rank};
    for (int i = 0; i < x->rank; i++) {
        int64_t p = perm[i];
        if (p < 0 || p >= x->rank || seen[p])
            return ji_infer_fail(c, "perm is not a permutation of 0..%d", x->rank - 1);
        seen[p] = true;
        y.dims[i] = x->dims[p];
    }
    ji_out_set(c, 0, dt, &y);
    return JOULE_OK;
}

/* Axes from the attribute (opset < 13) or input 1. *known false when they are not available;
 * *n_axes is still set when only their count is known (-1 otherwise). */
static bool axes_get(const joule_infer_ctx *c, int64_t opset_input, int input, int64_t *axes,
                     int64_t *n_axes)
{
    size_t n;
    *n_axes = -1;
    if (c->opset < opset_input) {
        const int64_t *v;
        if (!ji_attr_ints(c->node, "axes", &v, &n)) {
            *n_axes = 0;
            return true;
        }
        if (n > 2 * JOULE_MAX_RANK)
            return false;
        memcpy(axes, v, n * sizeof *v);
        *n_axes = (int64_t)n;
        return true;
    }
    if (!ji_in_io(c, input)) {
        *n_axes = 0;
        return true;
    }
    if (ji_in_ints(c, input, axes, 2 * JOULE_MAX_RANK, &n)) {
        *n_axes = (int64_t)n;
        return true;
    }
    *n_axes = ji_in_len(c, input);
    return false;
}

joule_status ji_squeeze(joule_infer_ctx *c)
{
    const joule_shape *x = ji_in_shape(c, 0);
    joule_dtype dt = ji_in_dtype(c, 0);
    int64_t axes[2 * JOULE_MAX_RANK], n_axes;
    bool known = axes_get(c, 13, 1, axes, &n_axes);
    if (!x) {
        ji_out_set(c, 0, dt, NULL);
        return JOULE_OK;
    }
    joule_shape y = {.rank = 0};
    if (!known) {
        if (n_axes >= 0 && n_axes <= x->rank) {
            ji_shape_set_rank(&y, x->rank - (int)n_axes);
            ji_out_set(c, 0, dt, &y);
        } else {
            ji_out_set(c, 0, dt, NULL);
        }
        return JOULE_OK;
    }
    bool drop[JOULE_MAX_RANK] = {false};
    if (n_axes == 0) { /* every dim of size 1 */
        for (int i = 0; i < x->rank; i++) {
            if (!ji_dim_known(x->dims[i])) {
                ji_out_set(c, 0, dt, NULL);
                return JOULE_OK;
            }
            drop[i] = x->dims[i].size == 1;
        }
    }
    for (int64_t k = 0; k < n_axes; k++) {
        int a;
        joule_status st = ji_norm_axis(c, axes[k], x->rank, "axis", &a);
        if (st)
            return st;
        if (ji_dim_known(x->dims[a]) && x->dims[a].size != 1)
            return ji_infer_fail(c, "cannot squeeze axis %d of size %lld", a,
                                 (long long)x->dims[a].size);
        drop[a] = true;
    }
    for (int i = 0; i < x->rank; i++)
        if (!drop[i])
            y.dims[y.rank++] = x->dims[i];
    ji_out_set(c, 0, dt, &y);
    return pass_value_reshaped(c, &y);
}

joule_status ji_unsqueeze(joule_infer_ctx *c)
{
    const joule_shape *x = ji_in_shape(c, 0);
    joule_dtype dt = ji_in_dtype(c, 0);
    int64_t axes[2 * JOULE_MAX_RANK], n_axes;
    bool known = axes_get(c, 13, 1, axes, &n_axes);
    if (!x) {
        ji_out_set(c, 0, dt, NULL);
        return JOULE_OK;
    }
    if (n_axes < 0) {
        ji_out_set(c, 0, dt, NULL);
        return JOULE_OK;
    }
    int rank = x->rank + (int)n_axes;
    if (rank > JOULE_MAX_RANK)
        return ji_infer_fail(c, "output rank %d exceeds joule's limit %d", rank, JOULE_MAX_RANK);
    joule_shape y;
    if (!known) {
        ji_shape_set_rank(&y, rank);
        ji_out_set(c, 0, dt, &y);
        return JOULE_OK;
    }
    if (n_axes == 0)
        return ji_infer_fail(c, "axes is empty");
    bool ins[JOULE_MAX_RANK] = {false};
    for (int64_t k = 0; k < n_axes; k++) {
        int a;
        joule_status st = ji_norm_axis(c, axes[k], rank, "axis", &a);
        if (st)
            return st;
        if (ins[a])
            return ji_infer_fail(c, "axis %d is repeated", a);
        ins[a] = true;
    }
    y.rank = rank;
    for (int i = 0, j = 0; i < rank; i++)
        y.dims[i] = ins[i] ? ji_dim_c(1) : x->dims[j++];
    ji_out_set(c, 0, dt, &y);
    return pass_value_reshaped(c, &y);
}

joule_status ji_expand(joule_infer_ctx *c)
{
    const joule_shape *x = ji_in_shape(c, 0);
    joule_dtype dt = ji_in_dtype(c, 0);
    ji_pv p;
    joule_shape spec;
    if (ji_pv_load(c, 1, &p)) {
        if (p.rank > 1 || p.n > JOULE_MAX_RANK) {
            ji_pv_free(&p);
            return ji_infer_fail(c, "shape input must be 1-D with at most %d dims",
                                 JOULE_MAX_RANK);
        }
        spec.rank = (int)p.n;
        for (size_t i = 0; i < p.n; i++) {
            if (ji_pv_known(p.e[i]) && p.e[i].size < 0) {
                ji_pv_free(&p);
                return ji_infer_fail(c, "shape[%zu] is negative", i);
            }
            spec.dims[i] = ji_pv_as_dim(p.e[i]);
        }
        ji_pv_free(&p);
    } else {
        int64_t len = ji_in_len(c, 1);
        if (!x || len < 0 || len > JOULE_MAX_RANK) {
            ji_out_set(c, 0, dt, NULL);
            return JOULE_OK;
        }
        ji_shape_set_rank(&spec, (int)len);
    }
    if (!x) {
        ji_out_set(c, 0, dt, NULL);
        return JOULE_OK;
    }
    joule_shape y;
    joule_status st = ji_shape_broadcast(c, x, &spec, &y);
    if (st)
        return st;
    ji_out_set(c, 0, dt, &y);
    return JOULE_OK;
}

joule_status ji_tile(joule_infer_ctx *c)
{
    const joule_shape *x = ji_in_shape(c, 0);
    joule_dtype dt = ji_in_dtype(c, 0);
    if (!x) {
        ji_out_set(c, 0, dt, NULL);
        return JOULE_OK;
    }
    int64_t rep[JOULE_MAX_RANK];
    size_t n;
    joule_shape y = {.rank = x->rank};
    if (!ji_in_ints(c, 1, rep, JOULE_MAX_RANK, &n)) {
        ji_shape_set_rank(&y, x->rank);
        ji_out_set(c, 0, dt, &y);
        return JOULE_OK;
    }
    if (n != (size_t)x->rank)
        return ji_infer_fail(c, "repeats has %zu entries for rank %d", n, x->rank);
    for (int i = 0; i < x->rank; i++) {
        if (rep[i] < 0)
            return ji_infer_fail(c, "repeats[%d] = %lld is negative", i, (long long)rep[i]);
        joule_dim d = x->dims[i];
        if (ji_dim_known(d) && (rep[i] == 0 || d.size <= INT64_MAX / rep[i]))
            y.dims[i] = ji_dim_c(d.size * rep[i]);
        else if (rep[i] == 1)
            y.dims[i] = d;
        else
            y.dims[i] = rep[i] == 0 ? ji_dim_c(0) : ji_dim_unknown();
    }
    ji_out_set(c, 0, dt, &y);
    return JOULE_OK;
}

joule_status ji_pad(joule_infer_ctx *c)
{
    const joule_shape *x = ji_in_shape(c, 0);
    joule_dtype dt = ji_in_dtype(c, 0);
    if (!x) {
        ji_out_set(c, 0, dt, NULL);
        return JOULE_OK;
    }
    joule_string mode = joule_attr_string(c->node, "mode", "constant");
    if (!(mode.len == 8 && !memcmp(mode.ptr, "constant", 8)) &&
        !(mode.len == 7 && !memcmp(mode.ptr, "reflect", 7)) &&
        !(mode.len == 4 && !memcmp(mode.ptr, "edge", 4)) &&
        !(mode.len == 4 && !memcmp(mode.ptr, "wrap", 4)))
        return ji_infer_fail(c, "unknown mode '%.*s'", (int)mode.len, mode.ptr);
    int64_t pads[2 * JOULE_MAX_RANK];
    size_t n = 0;
    bool known;
    if (c->opset < 11) {
        const int64_t *v;
        known = ji_attr_ints(c->node, c->opset < 2 ? "paddings" : "pads", &v, &n) ||
                ji_attr_ints(c->node, "pads", &v, &n);
        if (!known)
            return ji_infer_fail(c, "attribute pads is missing");
        if (n <= 2 * JOULE_MAX_RANK)
            memcpy(pads, v, n * sizeof *v);
    } else {
        known = ji_in_ints(c, 1, pads, 2 * JOULE_MAX_RANK, &n);
    }
    joule_shape y = {.rank = x->rank};
    /* from 18 an axes input names the padded axes; pads then has 2 * len(axes) entries */
    int64_t axes[JOULE_MAX_RANK], add_by_axis[JOULE_MAX_RANK] = {0};
    size_t na = (size_t)x->rank;
    bool axes_known = true;
    for (int i = 0; i < x->rank; i++)
        axes[i] = i;
    if (c->opset >= 18 && ji_in_io(c, 3))
        axes_known = ji_in_ints(c, 3, axes, JOULE_MAX_RANK, &na);
    if (!known || !axes_known) {
        ji_shape_set_rank(&y, x->rank);
        ji_out_set(c, 0, dt, &y);
        return JOULE_OK;
    }
    if (n != 2 * na)
        return ji_infer_fail(c, "pads has %zu entries for %zu axes", n, na);
    for (size_t k = 0; k < na; k++) {
        int a;
        joule_status st = ji_norm_axis(c, axes[k], x->rank, "axis", &a);
        if (st)
            return st;
        if (!ji_add(add_by_axis[a], pads[k], &add_by_axis[a]) ||
            !ji_add(add_by_axis[a], pads[k + na], &add_by_axis[a]))
            return ji_infer_fail(c, "pads overflow");
    }
    for (int i = 0; i < x->rank; i++) {
        int64_t add = add_by_axis[i];
        joule_dim d = x->dims[i];
        if (!ji_dim_known(d)) {
            y.dims[i] = add == 0 ? d : ji_dim_unknown();
            continue;
        }
        int64_t sz;
        if (!ji_add(d.size, add, &sz) || sz < 0)
            return ji_infer_fail(c, "pads give an invalid size on axis %d", i);
        y.dims[i] = ji_dim_c(sz);
    }
    ji_out_set(c, 0, dt, &y);
    return JOULE_OK;
}

/* Resize's axes: all of them, or (from 18) the axes attribute. */
static joule_status resize_axes(joule_infer_ctx *c, int rank, int *axes, int *n)
{
    const int64_t *v;
    size_t na;
    *n = rank;
    for (int i = 0; i < rank; i++)
        axes[i] = i;
    if (c->opset < 18 || !ji_attr_ints(c->node, "axes", &v, &na))
        return JOULE_OK;
    if (na > (size_t)rank)
        return ji_infer_fail(c, "axes has %zu entries for rank %d", na, rank);
    for (size_t k = 0; k < na; k++) {
        joule_status st = ji_norm_axis(c, v[k], rank, "axis", &axes[k]);
        if (st)
            return st;
    }
    *n = (int)na;
    return JOULE_OK;
}

static bool str_is(joule_string s, const char *what)
{
    return s.len == strlen(what) && memcmp(s.ptr, what, s.len) == 0;
}

/* Output dims from sizes (elements may be symbolic); from 18 keep_aspect_ratio_policy may
 * rescale them. */
static joule_status resize_sizes(joule_infer_ctx *c, const joule_shape *x, const ji_pv *p,
                                 const int *axes, int na, joule_shape *y)
{
    if (p->n != (size_t)na)
        return ji_infer_fail(c, "sizes has %zu entries for %d axes", p->n, na);
    joule_string pol = joule_attr_string(c->node, "keep_aspect_ratio_policy", "stretch");
    if (c->opset >= 18 && !str_is(pol, "stretch")) {
        bool larger = str_is(pol, "not_smaller");
        if (!larger && !str_is(pol, "not_larger"))
            return ji_infer_fail(c, "unknown keep_aspect_ratio_policy '%.*s'", (int)pol.len,
                                 pol.ptr);
        double scale = 0;
        for (int k = 0; k < na; k++) {
            joule_dim d = x->dims[axes[k]];
            if (!ji_pv_known(p->e[k]) || !ji_dim_known(d) || d.size == 0)
                return JOULE_OK; /* the resized axes stay unknown */
            double s = (double)p->e[k].size / (double)d.size;
            if (k == 0 || (larger ? s > scale : s < scale))
                scale = s;
        }
        for (int k = 0; k < na; k++)
        {
            double v = floor(scale * (double)x->dims[axes[k]].size + 0.5);
            if (!(v >= 0 && v < 9.0e18))
                return ji_infer_fail(c, "output size on axis %d is out of range", axes[k]);
            y->dims[axes[k]] = ji_dim_c((int64_t)v);
        }
        return JOULE_OK;
    }
    for (int k = 0; k < na; k++) {
        if (ji_pv_known(p->e[k]) && p->e[k].size < 0)
            return ji_infer_fail(c, "sizes[%d] is negative", k);
        y->dims[axes[k]] = ji_pv_as_dim(p->e[k]);
    }
    return JOULE_OK;
}

joule_status ji_resize(joule_infer_ctx *c)
{
    const joule_shape *x = ji_in_shape(c, 0);
    joule_dtype dt = ji_in_dtype(c, 0);
    if (!x) {
        ji_out_set(c, 0, dt, NULL);
        return JOULE_OK;
    }
    int axes[JOULE_MAX_RANK], na;
    joule_status st = resize_axes(c, x->rank, axes, &na);
    if (st)
        return st;
    /* axes not resized keep their dims; resized ones are unknown until computed */
    joule_shape y = *x;
    for (int k = 0; k < na; k++)
        y.dims[axes[k]] = ji_dim_unknown();
    int i_scales = c->opset < 11 ? 1 : 2, i_sizes = c->opset < 11 ? -1 : 3;
    double scales[JOULE_MAX_RANK], roi[2 * JOULE_MAX_RANK];
    size_t n;
    const joule_infer_io *sc = ji_in_io(c, i_scales);
    bool sizes_given = ji_in_io(c, i_sizes) && ji_in_len(c, i_sizes) != 0;
    bool scales_given = sc && ji_in_len(c, i_scales) != 0;
    ji_pv p;
    if (sizes_given && ji_pv_load(c, i_sizes, &p)) {
        st = resize_sizes(c, x, &p, axes, na, &y);
        ji_pv_free(&p);
        if (st)
            return st;
    } else if (!sizes_given && scales_given && sc->value &&
               ji_tensor_doubles(sc->value, scales, JOULE_MAX_RANK, &n)) {
        if (n != (size_t)na)
            return ji_infer_fail(c, "scales has %zu entries for %d axes", n, na);
        joule_string ctm = joule_attr_string(c->node, "coordinate_transformation_mode", "");
        bool crop = str_is(ctm, "tf_crop_and_resize");
        size_t nr = 0;
        const joule_infer_io *ri = ji_in_io(c, 1);
        bool have_roi = crop && ri && ri->value &&
                        ji_tensor_doubles(ri->value, roi, 2 * JOULE_MAX_RANK, &nr) &&
                        nr == 2 * (size_t)na;
        for (int k = 0; k < na; k++) {
            if (!(scales[k] > 0))
                return ji_infer_fail(c, "scales[%d] must be positive", k);
            joule_dim d = x->dims[axes[k]];
            if (!ji_dim_known(d)) {
                if (scales[k] == 1.0 && !crop)
                    y.dims[axes[k]] = d;
                continue;
            }
            if (crop && !have_roi)
                continue;
            /* in float, as ONNX's own shape inference and ONNX Runtime compute it */
            float span = crop ? (float)(roi[k + na] - roi[k]) : 1.0f;
            float v = floorf((float)d.size * span * (float)scales[k]);
            if (!(v >= 0 && v < 9.0e18f))
                return ji_infer_fail(c, "output size on axis %d is out of range", axes[k]);
            y.dims[axes[k]] = ji_dim_c((int64_t)v);
        }
    }
    ji_out_set(c, 0, dt, &y);
    return JOULE_OK;
}

joule_status ji_depth_to_space(joule_infer_ctx *c)
{
    const joule_shape *x = ji_in_shape(c, 0);
    joule_dtype dt = ji_in_dtype(c, 0);
    if (!x) {
        ji_out_set(c, 0, dt, NULL);
        return JOULE_OK;
    }
    char sx[160];
    int64_t b = joule_attr_int(c->node, "blocksize", 0);
    if (x->rank != 4 || b <= 0)
        return ji_infer_fail(c, "needs a 4-D input (got %s) and a positive blocksize",
                             ji_shape_str(x, sx, sizeof sx));
    joule_shape y = *x;
    joule_dim ch = x->dims[1];
    int64_t bb, v;
    if (!ji_mul(b, b, &bb))
        return ji_infer_fail(c, "blocksize %lld is too large", (long long)b);
    if (ji_dim_known(ch)) {
        if (ch.size % bb)
            return ji_infer_fail(c, "channels %lld not divisible by blocksize^2 %lld",
                                 (long long)ch.size, (long long)bb);
        y.dims[1] = ji_dim_c(ch.size / bb);
    } else {
        y.dims[1] = ji_dim_unknown();
    }
    for (int i = 2; i < 4; i++)
        y.dims[i] = ji_dim_known(x->dims[i]) && ji_mul(x->dims[i].size, b, &v) ? ji_dim_c(v)
                                                                               : ji_dim_unknown();
    ji_out_set(c, 0, dt, &y);
    return JOULE_OK;
}

joule_status ji_space_to_depth(joule_infer_ctx *c)
{
    const joule_shape *x = ji_in_shape(c, 0);
    joule_dtype dt = ji_in_dtype(c, 0);
    if (!x) {
        ji_out_set(c, 0, dt, NULL);
        return JOULE_OK;
    }
    char sx[160];
    int64_t b = joule_attr_int(c->node, "blocksize", 0);
    if (x->rank != 4 || b <= 0)
        return ji_infer_fail(c, "needs a 4-D input (got %s) and a positive blocksize",
                             ji_shape_str(x, sx, sizeof sx));
    joule_shape y = *x;
    int64_t v;
    y.dims[1] = ji_dim_known(x->dims[1]) && ji_mul(x->dims[1].size, b, &v) && ji_mul(v, b, &v)
                    ? ji_dim_c(v) : ji_dim_unknown();
    for (int i = 2; i < 4; i++) {
        joule_dim d = x->dims[i];
        if (!ji_dim_known(d)) {
            y.dims[i] = ji_dim_unknown();
            continue;
        }
        if (d.size % b)
            return ji_infer_fail(c, "axis %d (%lld) is not divisible by blocksize %lld", i,
                                 (long long)d.size, (long long)b);
        y.dims[i] = ji_dim_c(d.size / b);
    }
    ji_out_set(c, 0, dt, &y);
    return JOULE_OK;
}

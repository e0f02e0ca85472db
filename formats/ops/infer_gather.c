/* formats/ops/infer_gather.c: shape/dtype inference for operators that select or join parts of
 * tensors: Concat, Split (split as attribute before 13, input after), Slice (attributes before
 * 10, inputs after, negative steps), Gather, GatherElements, TopK, and ops whose output is shaped
 * like their data input. Concat, Slice and Gather also compute known small integer values. */
#include <string.h>

#include "formats/ops/infer_util.h"

/* Sizes of the axes before (outer) and after (inner) axis, for a concrete pv shape. */
static void outer_inner(const int64_t *dims, int rank, int axis, size_t *outer, size_t *inner)
{
    *outer = 1;
    *inner = 1;
    for (int i = 0; i < axis; i++)
        *outer *= (size_t)dims[i];
    for (int i = axis + 1; i < rank; i++)
        *inner *= (size_t)dims[i];
}

/* ---- Concat ---- */

static joule_status concat_values(joule_infer_ctx *c, int axis, joule_dtype dt)
{
    if (!ji_out_present(c, 0) || c->n_in > 64)
        return JOULE_OK;
    ji_pv in[64], o;
    int n = 0;
    joule_status st = JOULE_OK;
    bool ok = true;
    for (int i = 0; i < c->n_in && ok; i++) {
        if (!ji_in_io(c, i))
            continue;
        ok = ji_pv_load(c, i, &in[n]);
        if (ok)
            n++;
    }
    int64_t dims[JOULE_MAX_RANK];
    if (ok && n > 0) {
        int rank = in[0].rank;
        for (int k = 0; k < n && ok; k++)
            ok = in[k].rank == rank && axis < rank;
        if (ok) {
            memcpy(dims, in[0].dims, sizeof dims);
            dims[axis] = 0;
            for (int k = 0; k < n; k++)
                dims[axis] += in[k].dims[axis];
        }
        if (ok && ji_pv_init(&o, dt, rank, dims)) {
            size_t outer, inner, pos = 0;
            outer_inner(dims, rank, axis, &outer, &inner);
            for (size_t a = 0; a < outer; a++)
                for (int k = 0; k < n; k++) {
                    size_t len = (size_t)in[k].dims[axis] * inner;
                    for (size_t j = 0; j < len; j++)
                        o.e[pos++] = in[k].e[a * len + j];
                }
            st = ji_pv_store(c, 0, &o);
        }
    }
    for (int k = 0; k < n; k++)
        ji_pv_free(&in[k]);
    return st;
}

joule_status ji_concat(joule_infer_ctx *c)
{
    joule_dtype dt = JOULE_UNDEFINED;
    const joule_shape *first = NULL;
    bool all_known = true;
    for (int i = 0; i < c->n_in; i++) {
        const joule_infer_io *io = ji_in_io(c, i);
        if (!io)
            continue;
        if (dt == JOULE_UNDEFINED)
            dt = io->dtype;
        if (io->shape.rank < 0)
            all_known = false;
        else if (!first)
            first = &io->shape;
    }
    if (!first) {
        ji_out_set(c, 0, dt, NULL);
        return JOULE_OK;
    }
    int rank = first->rank;
    if (rank == 0)
        return ji_infer_fail(c, "cannot concatenate scalars");
    int64_t axis_attr = joule_attr_int(c->node, "axis", c->opset < 4 ? 1 : INT64_MIN);
    if (axis_attr == INT64_MIN)
        return ji_infer_fail(c, "attribute axis is missing");
    int axis;
    joule_status st = ji_norm_axis(c, axis_attr, rank, "axis", &axis);
    if (st)
        return st;
    joule_shape y = *first;
    int64_t sum = 0;
    bool sum_known = all_known;
    char s0[160], s1[160];
    for (int i = 0; i < c->n_in; i++) {
        const joule_shape *s = ji_in_shape(c, i);
        if (!s)
            continue;
        if (s->rank != rank)
            return ji_infer_fail(c, "inputs %s and %s have different ranks",
                                 ji_shape_str(first, s0, sizeof s0), ji_shape_str(s, s1, sizeof s1));
        for (int a = 0; a < rank; a++) {
            if (a == axis)
                continue;
            if (!ji_dim_compatible(y.dims[a], s->dims[a]))
                return ji_infer_fail(c, "inputs %s and %s differ on axis %d",
                                     ji_shape_str(first, s0, sizeof s0),
                                     ji_shape_str(s, s1, sizeof s1), a);
            if (!ji_dim_known(y.dims[a]) && (ji_dim_known(s->dims[a]) || !y.dims[a].sym))
                y.dims[a] = s->dims[a];
        }
        if (ji_dim_known(s->dims[axis]) && ji_add(sum, s->dims[axis].size, &sum))
            continue;
        else
            sum_known = false;
    }
    y.dims[axis] = sum_known ? ji_dim_c(sum) : ji_dim_unknown();
    ji_out_set(c, 0, dt, &y);
    if (sum_known)
        return concat_values(c, axis, dt);
    return JOULE_OK;
}

/* ---- Split ---- */

joule_status ji_split(joule_infer_ctx *c)
{
    const joule_shape *x = ji_in_shape(c, 0);
    joule_dtype dt = ji_in_dtype(c, 0);
    if (!x) {
        for (int i = 0; i < c->n_out; i++)
            ji_out_set(c, i, dt, NULL);
        return JOULE_OK;
    }
    int axis;
    joule_status st = ji_norm_axis(c, joule_attr_int(c->node, "axis", 0), x->rank, "axis", &axis);
    if (st)
        return st;
    int64_t split[64];
    size_t n = 0;
    bool given = false, known = false;
    if (c->opset < 13) {
        const int64_t *v;
        if (ji_attr_ints(c->node, "split", &v, &n)) {
            given = known = true;
            if (n > 64)
                return ji_infer_fail(c, "split has %zu entries (joule supports 64)", n);
            memcpy(split, v, n * sizeof *v);
        } else if (c->opset < 2 && ji_in_io(c, 1)) {
            given = true;
            known = ji_in_ints(c, 1, split, 64, &n);
        }
    } else if (ji_in_io(c, 1)) {
        given = true;
        known = ji_in_ints(c, 1, split, 64, &n);
    }
    joule_dim d = x->dims[axis];
    if (given && known) {
        if (n != (size_t)c->n_out)
            return ji_infer_fail(c, "split has %zu entries for %d outputs", n, c->n_out);
        int64_t total = 0;
        for (size_t i = 0; i < n; i++) {
            if (split[i] < 0)
                return ji_infer_fail(c, "split[%zu] = %lld is negative", i, (long long)split[i]);
            if (!ji_add(total, split[i], &total))
                return ji_infer_fail(c, "split overflows");
        }
        if (ji_dim_known(d) && total != d.size)
            return ji_infer_fail(c, "split sums to %lld but axis %d has %lld", (long long)total,
                                 axis, (long long)d.size);
    } else if (!given) {
        if (c->n_out <= 0)
            return JOULE_OK;
        if (ji_dim_known(d) && d.size % c->n_out && c->opset < 18)
            return ji_infer_fail(c, "axis %d (%lld) does not split evenly into %d outputs", axis,
                                 (long long)d.size, c->n_out);
    }
    for (int i = 0; i < c->n_out; i++) {
        joule_shape y = *x;
        if (given && known)
            y.dims[axis] = ji_dim_c(split[i]);
        else if (!given && ji_dim_known(d)) {
            /* equal chunks; from 18 (num_outputs) the last may be smaller */
            int64_t chunk = d.size / c->n_out + (d.size % c->n_out != 0);
            int64_t full = chunk ? d.size / chunk : 0, part = 0;
            if (i < full)
                part = chunk;
            else if (i == full)
                part = d.size - full * chunk; /* full * chunk <= d.size */
            y.dims[axis] = ji_dim_c(part);
        } else if (!given && c->n_out == 1)
            y.dims[axis] = d;
        else
            y.dims[axis] = ji_dim_unknown();
        ji_out_set(c, i, dt, &y);
    }
    return JOULE_OK;
}

/* ---- Slice ---- */

/* Start, step and length of a slice over a dim of size d (ONNX clamping rules). */
static void slice_range(int64_t d, int64_t start, int64_t end, int64_t step, int64_t *s0,
                        int64_t *len)
{
    if (start < 0)
        start += d;
    if (end < 0)
        end += d;
    if (step > 0) {
        start = start < 0 ? 0 : start > d ? d : start;
        end = end < 0 ? 0 : end > d ? d : end;
        int64_t span = end - start;
        *len = span > 0 ? span / step + (span % step != 0) : 0;
    } else {
        int64_t neg = step == INT64_MIN ? INT64_MAX : -step;
        start = start < 0 ? 0 : start > d - 1 ? d - 1 : start;
        end = end < -1 ? -1 : end > d - 1 ? d - 1 : end;
        int64_t span = start - end;
        *len = span > 0 ? span / neg + (span % neg != 0) : 0;
    }
    *s0 = start;
}

static joule_status slice_values(joule_infer_ctx *c, const int64_t *s0, const int64_t *step,
                                 const joule_shape *y)
{
    if (!ji_out_present(c, 0) || !joule_shape_is_concrete(y))
        return JOULE_OK;
    ji_pv p, o;
    if (!ji_pv_load(c, 0, &p))
        return JOULE_OK;
    int64_t dims[JOULE_MAX_RANK];
    for (int i = 0; i < y->rank; i++)
        dims[i] = y->dims[i].size;
    joule_status st = JOULE_OK;
    if (ji_pv_matches(&p, ji_in_shape(c, 0)) && ji_pv_init(&o, p.dtype, y->rank, dims)) {
        for (size_t k = 0; k < o.n; k++) {
            size_t rem = k, src = 0, stride = 1;
            for (int a = y->rank - 1; a >= 0; a--) {
                int64_t coord = (int64_t)(rem % (size_t)dims[a]);
                rem /= (size_t)dims[a];
                src += (size_t)(s0[a] + coord * step[a]) * stride;
                stride *= (size_t)p.dims[a];
            }
            o.e[k] = p.e[src];
        }
        st = ji_pv_store(c, 0, &o);
    }
    ji_pv_free(&p);
    return st;
}

joule_status ji_slice(joule_infer_ctx *c)
{
    const joule_shape *x = ji_in_shape(c, 0);
    joule_dtype dt = ji_in_dtype(c, 0);
    if (!x) {
        ji_out_set(c, 0, dt, NULL);
        return JOULE_OK;
    }
    int64_t starts[JOULE_MAX_RANK], ends[JOULE_MAX_RANK], axes[JOULE_MAX_RANK],
        steps[JOULE_MAX_RANK];
    size_t ns = 0, ne = 0, na = 0, nst = 0;
    bool ks, ke, ka = true, kst = true, has_axes;
    if (c->opset < 10) {
        const int64_t *v;
        if (!ji_attr_ints(c->node, "starts", &v, &ns) || ns > JOULE_MAX_RANK)
            return ji_infer_fail(c, "attribute starts is missing or too long");
        memcpy(starts, v, ns * sizeof *v);
        if (!ji_attr_ints(c->node, "ends", &v, &ne) || ne > JOULE_MAX_RANK)
            return ji_infer_fail(c, "attribute ends is missing or too long");
        memcpy(ends, v, ne * sizeof *v);
        ks = ke = true;
        has_axes = ji_attr_ints(c->node, "axes", &v, &na);
        if (has_axes) {
            if (na > JOULE_MAX_RANK)
                return ji_infer_fail(c, "attribute axes is too long");
            memcpy(axes, v, na * sizeof *v);
        }
    } else {
        ks = ji_in_ints(c, 1, starts, JOULE_MAX_RANK, &ns);
        ke = ji_in_ints(c, 2, ends, JOULE_MAX_RANK, &ne);
        has_axes = ji_in_io(c, 3) != NULL;
        if (has_axes)
            ka = ji_in_ints(c, 3, axes, JOULE_MAX_RANK, &na);
        if (ji_in_io(c, 4))
            kst = ji_in_ints(c, 4, steps, JOULE_MAX_RANK, &nst);
        else
            nst = 0;
    }
    joule_shape y = *x;
    if (!ks || !ke || !ka || !kst) {
        /* unknown parameters: the sliced axes lose their size (all of them if axes unknown) */
        if (!ka || !has_axes) {
            ji_shape_set_rank(&y, x->rank);
        } else {
            for (size_t k = 0; k < na; k++) {
                int a;
                joule_status st = ji_norm_axis(c, axes[k], x->rank, "axis", &a);
                if (st)
                    return st;
                y.dims[a] = ji_dim_unknown();
            }
        }
        ji_out_set(c, 0, dt, &y);
        return JOULE_OK;
    }
    if (ns != ne)
        return ji_infer_fail(c, "starts (%zu) and ends (%zu) differ in length", ns, ne);
    if (has_axes && na != ns)
        return ji_infer_fail(c, "axes has %zu entries, starts %zu", na, ns);
    if (nst && nst != ns)
        return ji_infer_fail(c, "steps has %zu entries, starts %zu", nst, ns);
    int64_t s0[JOULE_MAX_RANK], st_all[JOULE_MAX_RANK];
    bool seen[JOULE_MAX_RANK] = {false};
    for (int i = 0; i < x->rank; i++) {
        s0[i] = 0;
        st_all[i] = 1;
    }
    for (size_t k = 0; k < ns; k++) {
        int a;
        joule_status st = ji_norm_axis(c, has_axes ? axes[k] : (int64_t)k, x->rank, "axis", &a);
        if (st)
            return st;
        if (seen[a])
            return ji_infer_fail(c, "axis %d is repeated", a);
        seen[a] = true;
        int64_t step = nst ? steps[k] : 1;
        if (step == 0)
            return ji_infer_fail(c, "step on axis %d is 0", a);
        st_all[a] = step;
        joule_dim d = x->dims[a];
        if (!ji_dim_known(d)) {
            bool whole = (step == 1 && starts[k] == 0 && ends[k] >= INT32_MAX) ||
                         (step == -1 && (starts[k] == -1 || starts[k] >= INT32_MAX) &&
                          ends[k] <= INT32_MIN);
            y.dims[a] = whole ? d : ji_dim_unknown();
            continue;
        }
        int64_t len;
        slice_range(d.size, starts[k], ends[k], step, &s0[a], &len);
        y.dims[a] = ji_dim_c(len);
    }
    ji_out_set(c, 0, dt, &y);
    return slice_values(c, s0, st_all, &y);
}

/* ---- Gather ---- */

static joule_status gather_values(joule_infer_ctx *c, int axis, const joule_shape *y)
{
    if (!ji_out_present(c, 0) || !joule_shape_is_concrete(y))
        return JOULE_OK;
    ji_pv p, idx, o;
    if (!ji_pv_load(c, 0, &p))
        return JOULE_OK;
    if (!ji_pv_load(c, 1, &idx)) {
        ji_pv_free(&p);
        return JOULE_OK;
    }
    int64_t dims[JOULE_MAX_RANK];
    for (int i = 0; i < y->rank; i++)
        dims[i] = y->dims[i].size;
    joule_status st = JOULE_OK;
    if (ji_pv_matches(&p, ji_in_shape(c, 0)) && ji_pv_matches(&idx, ji_in_shape(c, 1)) &&
        ji_pv_init(&o, p.dtype, y->rank, dims)) {
        size_t outer, inner;
        outer_inner(p.dims, p.rank, axis, &outer, &inner);
        int64_t d = p.dims[axis];
        size_t pos = 0;
        for (size_t a = 0; a < outer; a++)
            for (size_t j = 0; j < idx.n; j++) {
                joule_dim ij = idx.e[j];
                int64_t i = ji_pv_known(ij) ? (ij.size < 0 ? ij.size + d : ij.size) : -1;
                for (size_t b = 0; b < inner; b++)
                    o.e[pos++] = i >= 0 && i < d ? p.e[(a * (size_t)d + (size_t)i) * inner + b]
                                                 : ji_pv_unknown(NULL);
            }
        st = ji_pv_store(c, 0, &o);
    }
    ji_pv_free(&p);
    ji_pv_free(&idx);
    return st;
}

joule_status ji_gather(joule_infer_ctx *c)
{
    const joule_shape *x = ji_in_shape(c, 0), *ind = ji_in_shape(c, 1);
    joule_dtype dt = ji_in_dtype(c, 0);
    if (!x || !ind) {
        ji_out_set(c, 0, dt, NULL);
        return JOULE_OK;
    }
    if (x->rank == 0)
        return ji_infer_fail(c, "cannot gather from a scalar");
    int axis;
    joule_status st = ji_norm_axis(c, joule_attr_int(c->node, "axis", 0), x->rank, "axis", &axis);
    if (st)
        return st;
    int rank = x->rank - 1 + ind->rank;
    if (rank > JOULE_MAX_RANK)
        return ji_infer_fail(c, "output rank %d exceeds joule's limit %d", rank, JOULE_MAX_RANK);
    joule_dim d = x->dims[axis];
    int64_t iv[64];
    size_t ni;
    if (ji_dim_known(d) && ji_in_ints(c, 1, iv, 64, &ni))
        for (size_t k = 0; k < ni; k++)
            if (iv[k] < -d.size || iv[k] >= d.size)
                return ji_infer_fail(c, "index %lld is out of range for axis %d of size %lld",
                                     (long long)iv[k], axis, (long long)d.size);
    joule_shape y = {.rank = 0};
    for (int i = 0; i < axis; i++)
        y.dims[y.rank++] = x->dims[i];
    for (int i = 0; i < ind->rank; i++)
        y.dims[y.rank++] = ind->dims[i];
    for (int i = axis + 1; i < x->rank; i++)
        y.dims[y.rank++] = x->dims[i];
    ji_out_set(c, 0, dt, &y);
    return gather_values(c, axis, &y);
}

joule_status ji_gather_elements(joule_infer_ctx *c)
{
    const joule_shape *x = ji_in_shape(c, 0), *ind = ji_in_shape(c, 1);
    if (x && ind && x->rank != ind->rank)
        return ji_infer_fail(c, "data and indices ranks differ (%d vs %d)", x->rank, ind->rank);
    ji_out_set(c, 0, ji_in_dtype(c, 0), ind);
    return JOULE_OK;
}

joule_status ji_topk(joule_infer_ctx *c)
{
    const joule_shape *x = ji_in_shape(c, 0);
    joule_dtype dt = ji_in_dtype(c, 0);
    if (!x) {
        ji_out_set(c, 0, dt, NULL);
        ji_out_set(c, 1, JOULE_I64, NULL);
        return JOULE_OK;
    }
    int axis;
    joule_status st = ji_norm_axis(c, joule_attr_int(c->node, "axis", -1), x->rank, "axis", &axis);
    if (st)
        return st;
    int64_t k = -1;
    size_t n;
    if (c->opset < 10)
        k = joule_attr_int(c->node, "k", -1);
    else if (!ji_in_ints(c, 1, &k, 1, &n))
        k = -1;
    joule_shape y = *x;
    if (k >= 0 && ji_dim_known(x->dims[axis]) && k > x->dims[axis].size)
        return ji_infer_fail(c, "k = %lld exceeds axis %d of size %lld", (long long)k, axis,
                             (long long)x->dims[axis].size);
    y.dims[axis] = k >= 0 ? ji_dim_c(k) : ji_dim_unknown();
    ji_out_set(c, 0, dt, &y);
    ji_out_set(c, 1, JOULE_I64, &y);
    return JOULE_OK;
}

joule_status ji_same_as_data(joule_infer_ctx *c)
{
    ji_out_like_input(c, 0, 0);
    return JOULE_OK;
}

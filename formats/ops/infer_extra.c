/* formats/ops/infer_extra.c: shape/dtype inference for operators outside joule's core set that
 * exporters still emit: GatherND, Einsum, Det, Upsample, the recurrent ops (RNN, GRU, LSTM),
 * detection helpers (NonMaxSuppression, RoiAlign, GridSample), MaxUnpool, Compress, Unique and
 * the random generators. */
#include <math.h>
#include <string.h>

#include "formats/ops/infer_util.h"

joule_status ji_gather_nd(joule_infer_ctx *c)
{
    const joule_shape *x = ji_in_shape(c, 0), *ind = ji_in_shape(c, 1);
    joule_dtype dt = ji_in_dtype(c, 0);
    if (!x || !ind || ind->rank < 1 || !ji_dim_known(ind->dims[ind->rank - 1])) {
        ji_out_set(c, 0, dt, NULL);
        return JOULE_OK;
    }
    int64_t b = joule_attr_int(c->node, "batch_dims", 0);
    int64_t last = ind->dims[ind->rank - 1].size;
    if (b < 0 || b >= ind->rank || b > x->rank || last > x->rank - b)
        return ji_infer_fail(c, "batch_dims %lld and index depth %lld do not fit data rank %d",
                             (long long)b, (long long)last, x->rank);
    int rank = ind->rank - 1 + x->rank - (int)(b + last);
    if (rank > JOULE_MAX_RANK)
        return ji_infer_fail(c, "output rank %d exceeds joule's limit %d", rank, JOULE_MAX_RANK);
    joule_shape y = {.rank = 0};
    for (int i = 0; i < ind->rank - 1; i++)
        y.dims[y.rank++] = ind->dims[i];
    for (int i = (int)(b + last); i < x->rank; i++)
        y.dims[y.rank++] = x->dims[i];
    ji_out_set(c, 0, dt, &y);
    return JOULE_OK;
}

joule_status ji_det(joule_infer_ctx *c)
{
    const joule_shape *x = ji_in_shape(c, 0);
    joule_dtype dt = ji_in_dtype(c, 0);
    if (!x) {
        ji_out_set(c, 0, dt, NULL);
        return JOULE_OK;
    }
    if (x->rank < 2 || !ji_dim_compatible(x->dims[x->rank - 1], x->dims[x->rank - 2]))
        return ji_infer_fail(c, "input must end in square matrices");
    joule_shape y = *x;
    y.rank -= 2;
    ji_out_set(c, 0, dt, &y);
    return JOULE_OK;
}

/* ---- Einsum ---- */

/* One operand's labels: letters, with '.' standing for the ellipsis' dims. */
typedef struct ein_term {
    char labels[JOULE_MAX_RANK + 4];
    int n;
    bool ellipsis;
    int ell_pos;
} ein_term;

static bool ein_parse_term(const char *s, size_t len, ein_term *t)
{
    memset(t, 0, sizeof *t);
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == ' ')
            continue;
        if (ch == '.') {
            if (t->ellipsis || i + 2 >= len || s[i + 1] != '.' || s[i + 2] != '.')
                return false;
            t->ellipsis = true;
            t->ell_pos = t->n;
            i += 2;
            continue;
        }
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')) || t->n >= JOULE_MAX_RANK)
            return false;
        t->labels[t->n++] = ch;
    }
    return true;
}

joule_status ji_einsum(joule_infer_ctx *c)
{
    joule_string eq = joule_attr_string(c->node, "equation", "");
    joule_dtype dt = ji_in_dtype(c, 0);
    if (eq.len == 0 || eq.len > 256)
        return ji_infer_fail(c, "attribute equation is missing or too long");
    char buf[260];
    memcpy(buf, eq.ptr, eq.len);
    buf[eq.len] = '\0';
    char *arrow = strstr(buf, "->");
    size_t lhs_len = arrow ? (size_t)(arrow - buf) : eq.len;
    ein_term terms[16], out;
    int nt = 0;
    for (size_t p = 0; p <= lhs_len && nt < 16;) {
        const char *comma = memchr(buf + p, ',', lhs_len - p);
        size_t len = comma ? (size_t)(comma - (buf + p)) : lhs_len - p;
        if (!ein_parse_term(buf + p, len, &terms[nt++]))
            return ji_infer_fail(c, "cannot parse equation '%s'", buf);
        p += len + 1;
    }
    if (nt != c->n_in)
        return ji_infer_fail(c, "equation '%s' has %d operands, the node %d", buf, nt, c->n_in);
    joule_dim label_dim[128];
    bool seen[128] = {false};
    int count[128] = {0};
    joule_shape ell = {.rank = 0};
    bool have_ell = false;
    for (int i = 0; i < nt; i++) {
        const joule_shape *s = ji_in_shape(c, i);
        if (!s) {
            ji_out_set(c, 0, dt, NULL);
            return JOULE_OK;
        }
        int n_ell = s->rank - terms[i].n;
        if (n_ell < 0 || (n_ell > 0 && !terms[i].ellipsis))
            return ji_infer_fail(c, "operand %d has rank %d for term of %d labels", i, s->rank,
                                 terms[i].n);
        joule_shape e = {.rank = terms[i].ellipsis ? n_ell : 0};
        for (int k = 0; k < e.rank; k++)
            e.dims[k] = s->dims[terms[i].ell_pos + k];
        if (terms[i].ellipsis) {
            joule_shape t;
            joule_status st = have_ell ? ji_shape_broadcast(c, &ell, &e, &t) : JOULE_OK;
            if (st)
                return st;
            ell = have_ell ? t : e;
            have_ell = true;
        }
        for (int k = 0; k < terms[i].n; k++) {
            int l = (unsigned char)terms[i].labels[k];
            int axis = k < terms[i].ell_pos || !terms[i].ellipsis ? k : k + n_ell;
            joule_dim d = s->dims[axis];
            count[l]++;
            if (!seen[l]) {
                label_dim[l] = d;
                seen[l] = true;
            } else if (!ji_dim_compatible(label_dim[l], d) && !(ji_dim_known(d) && d.size == 1) &&
                       !(ji_dim_known(label_dim[l]) && label_dim[l].size == 1)) {
                return ji_infer_fail(c, "label '%c' has sizes %lld and %lld", l,
                                     (long long)label_dim[l].size, (long long)d.size);
            } else if (!ji_dim_known(label_dim[l]) ||
                       (label_dim[l].size == 1 && ji_dim_known(d))) {
                label_dim[l] = d;
            }
        }
    }
    if (arrow) {
        if (!ein_parse_term(arrow + 2, strlen(arrow + 2), &out))
            return ji_infer_fail(c, "cannot parse equation '%s'", buf);
    } else { /* implicit: the ellipsis, then labels seen once, alphabetically */
        memset(&out, 0, sizeof out);
        out.ellipsis = have_ell;
        for (int l = 0; l < 128; l++)
            if (count[l] == 1 && out.n < JOULE_MAX_RANK)
                out.labels[out.n++] = (char)l;
    }
    int rank = out.n + (out.ellipsis ? ell.rank : 0);
    if (rank > JOULE_MAX_RANK)
        return ji_infer_fail(c, "output rank %d exceeds joule's limit %d", rank, JOULE_MAX_RANK);
    joule_shape y = {.rank = 0};
    for (int k = 0; k <= out.n; k++) {
        if (out.ellipsis && k == out.ell_pos)
            for (int e = 0; e < ell.rank; e++)
                y.dims[y.rank++] = ell.dims[e];
        if (k == out.n)
            break;
        int l = (unsigned char)out.labels[k];
        if (!seen[l])
            return ji_infer_fail(c, "output label '%c' is not in any operand", l);
        y.dims[y.rank++] = label_dim[l];
    }
    ji_out_set(c, 0, dt, &y);
    return JOULE_OK;
}

/* ---- Upsample (7-9) ---- */

joule_status ji_upsample(joule_infer_ctx *c)
{
    const joule_shape *x = ji_in_shape(c, 0);
    joule_dtype dt = ji_in_dtype(c, 0);
    if (!x) {
        ji_out_set(c, 0, dt, NULL);
        return JOULE_OK;
    }
    double scales[JOULE_MAX_RANK];
    size_t n = 0;
    bool known;
    const joule_attr *a = joule_node_attr(c->node, "scales");
    if (a && a->type == JOULE_ATTR_FLOATS && a->count <= JOULE_MAX_RANK) {
        for (size_t i = 0; i < a->count; i++)
            scales[i] = a->floats[i];
        n = a->count;
        known = true;
    } else {
        const joule_infer_io *io = ji_in_io(c, 1);
        known = io && io->value && ji_tensor_doubles(io->value, scales, JOULE_MAX_RANK, &n);
    }
    joule_shape y;
    ji_shape_set_rank(&y, x->rank);
    if (known) {
        if (n != (size_t)x->rank)
            return ji_infer_fail(c, "scales has %zu entries for rank %d", n, x->rank);
        for (int i = 0; i < x->rank; i++) {
            if (!(scales[i] >= 1))
                return ji_infer_fail(c, "scales[%d] must be >= 1", i);
            float v = floorf((float)x->dims[i].size * (float)scales[i]);
            if (ji_dim_known(x->dims[i]) && v < 9.0e18f)
                y.dims[i] = ji_dim_c((int64_t)v);
            else if (scales[i] == 1)
                y.dims[i] = x->dims[i];
        }
    }
    ji_out_set(c, 0, dt, &y);
    return JOULE_OK;
}

/* ---- RNN, GRU, LSTM ---- */

joule_status ji_recurrent(joule_infer_ctx *c)
{
    const joule_shape *x = ji_in_shape(c, 0), *w = ji_in_shape(c, 1);
    joule_dtype dt = ji_in_dtype(c, 0);
    const char *op = c->node->op_type;
    int gates = !strcmp(op, "LSTM") ? 4 : !strcmp(op, "GRU") ? 3 : 1;
    joule_string dir = joule_attr_string(c->node, "direction", "forward");
    int64_t nd = dir.len == 13 && !memcmp(dir.ptr, "bidirectional", 13) ? 2 : 1;
    int64_t hidden = joule_attr_int(c->node, "hidden_size", -1);
    if (hidden < 0 && w && w->rank == 3 && ji_dim_known(w->dims[1]))
        hidden = w->dims[1].size / gates;
    bool batch_first = c->opset >= 14 && joule_attr_int(c->node, "layout", 0) != 0;
    if (x && x->rank != 3)
        return ji_infer_fail(c, "X must be 3-D (rank %d)", x->rank);
    joule_dim seq = ji_dim_unknown(), batch = ji_dim_unknown();
    if (x) {
        seq = x->dims[batch_first ? 1 : 0];
        batch = x->dims[batch_first ? 0 : 1];
    }
    joule_dim h = hidden >= 0 ? ji_dim_c(hidden) : ji_dim_unknown();
    joule_shape y = {.rank = 4}, yh = {.rank = 3};
    if (batch_first) {
        y.dims[0] = batch, y.dims[1] = seq, y.dims[2] = ji_dim_c(nd), y.dims[3] = h;
        yh.dims[0] = batch, yh.dims[1] = ji_dim_c(nd), yh.dims[2] = h;
    } else {
        y.dims[0] = seq, y.dims[1] = ji_dim_c(nd), y.dims[2] = batch, y.dims[3] = h;
        yh.dims[0] = ji_dim_c(nd), yh.dims[1] = batch, yh.dims[2] = h;
    }
    ji_out_set(c, 0, dt, &y);
    ji_out_set(c, 1, dt, &yh);
    ji_out_set(c, 2, dt, &yh); /* LSTM's Y_c */
    return JOULE_OK;
}

/* ---- detection and sampling ---- */

joule_status ji_nms(joule_infer_ctx *c)
{
    joule_shape y = {.rank = 2, .dims = {ji_dim_unknown(), ji_dim_c(3)}};
    ji_out_set(c, 0, JOULE_I64, &y);
    return JOULE_OK;
}

joule_status ji_roi_align(joule_infer_ctx *c)
{
    const joule_shape *x = ji_in_shape(c, 0), *rois = ji_in_shape(c, 1);
    joule_shape y = {.rank = 4};
    y.dims[0] = rois && rois->rank == 2 ? rois->dims[0] : ji_dim_unknown();
    y.dims[1] = x && x->rank == 4 ? x->dims[1] : ji_dim_unknown();
    y.dims[2] = ji_dim_c(joule_attr_int(c->node, "output_height", 1));
    y.dims[3] = ji_dim_c(joule_attr_int(c->node, "output_width", 1));
    ji_out_set(c, 0, ji_in_dtype(c, 0), &y);
    return JOULE_OK;
}

joule_status ji_grid_sample(joule_infer_ctx *c)
{
    const joule_shape *x = ji_in_shape(c, 0), *grid = ji_in_shape(c, 1);
    joule_dtype dt = ji_in_dtype(c, 0);
    if (!x || !grid) {
        ji_out_set(c, 0, dt, NULL);
        return JOULE_OK;
    }
    if (grid->rank != x->rank || x->rank < 3)
        return ji_infer_fail(c, "grid rank %d does not match input rank %d", grid->rank,
                             x->rank);
    joule_shape y = *x;
    for (int i = 2; i < x->rank; i++)
        y.dims[i] = grid->dims[i - 1];
    ji_out_set(c, 0, dt, &y);
    return JOULE_OK;
}

joule_status ji_max_unpool(joule_infer_ctx *c)
{
    const joule_shape *x = ji_in_shape(c, 0);
    joule_dtype dt = ji_in_dtype(c, 0);
    int64_t os[JOULE_MAX_RANK];
    size_t n;
    if (ji_in_io(c, 2) && ji_in_ints(c, 2, os, JOULE_MAX_RANK, &n)) {
        joule_shape y = {.rank = (int)n};
        for (size_t i = 0; i < n; i++)
            y.dims[i] = ji_dim_c(os[i]);
        ji_out_set(c, 0, dt, &y);
        return JOULE_OK;
    }
    if (!x || x->rank < 3) {
        ji_out_set(c, 0, dt, NULL);
        return JOULE_OK;
    }
    if (ji_in_io(c, 2)) { /* output_shape given but not known */
        joule_shape y;
        ji_shape_set_rank(&y, x->rank);
        ji_out_set(c, 0, dt, &y);
        return JOULE_OK;
    }
    int n_sp = x->rank - 2;
    const int64_t *ks, *st, *pads;
    size_t nk, ns, np;
    if (!ji_attr_ints(c->node, "kernel_shape", &ks, &nk) || nk != (size_t)n_sp)
        return ji_infer_fail(c, "kernel_shape is missing or has the wrong length");
    bool have_st = ji_attr_ints(c->node, "strides", &st, &ns) && ns == (size_t)n_sp;
    bool have_pads = ji_attr_ints(c->node, "pads", &pads, &np) && np == 2 * (size_t)n_sp;
    joule_shape y = *x;
    for (int i = 0; i < n_sp; i++) {
        joule_dim d = x->dims[2 + i];
        int64_t s = have_st ? st[i] : 1;
        int64_t p = 0, v = -1;
        bool ok = ji_dim_known(d) && d.size > 0 && s > 0 && ks[i] > 0 &&
                  (!have_pads || ji_add(pads[i], pads[i + n_sp], &p)) &&
                  ji_mul(d.size - 1, s, &v) && ji_add(v, ks[i], &v) && ji_add(v, -p, &v) && v >= 0;
        y.dims[2 + i] = ok ? ji_dim_c(v) : ji_dim_unknown();
    }
    ji_out_set(c, 0, dt, &y);
    return JOULE_OK;
}

joule_status ji_compress(joule_infer_ctx *c)
{
    const joule_shape *x = ji_in_shape(c, 0);
    joule_dtype dt = ji_in_dtype(c, 0);
    const joule_attr *a = joule_node_attr(c->node, "axis");
    joule_shape y;
    if (!a) {
        ji_shape_set_rank(&y, 1);
        ji_out_set(c, 0, dt, &y);
        return JOULE_OK;
    }
    if (!x) {
        ji_out_set(c, 0, dt, NULL);
        return JOULE_OK;
    }
    int axis;
    joule_status st = ji_norm_axis(c, a->i, x->rank, "axis", &axis);
    if (st)
        return st;
    y = *x;
    y.dims[axis] = ji_dim_unknown();
    ji_out_set(c, 0, dt, &y);
    return JOULE_OK;
}

joule_status ji_unique(joule_infer_ctx *c)
{
    const joule_shape *x = ji_in_shape(c, 0);
    joule_dtype dt = ji_in_dtype(c, 0);
    const joule_attr *a = joule_node_attr(c->node, "axis");
    joule_shape y, one;
    ji_shape_set_rank(&one, 1);
    if (!a) {
        ji_out_set(c, 0, dt, &one);
    } else if (x) {
        int axis;
        joule_status st = ji_norm_axis(c, a->i, x->rank, "axis", &axis);
        if (st)
            return st;
        y = *x;
        y.dims[axis] = ji_dim_unknown();
        ji_out_set(c, 0, dt, &y);
    } else {
        ji_out_set(c, 0, dt, NULL);
    }
    ji_out_set(c, 1, JOULE_I64, &one);
    joule_shape inv = one;
    if (!a && x) { /* inverse indices: one per input element */
        bool ovf;
        inv.dims[0] = ji_dims_product(x, 0, x->rank, &ovf);
    } else if (a && x) {
        int axis;
        if (ji_norm_axis(c, a->i, x->rank, "axis", &axis) == JOULE_OK)
            inv.dims[0] = x->dims[axis];
    }
    ji_out_set(c, 2, JOULE_I64, &inv);
    ji_out_set(c, 3, JOULE_I64, &one);
    return JOULE_OK;
}

/* ---- random generators ---- */

static joule_status dtype_attr(const joule_infer_ctx *c, joule_dtype dflt, joule_dtype *out)
{
    int64_t v = joule_attr_int(c->node, "dtype", dflt);
    if (!joule_dtype_valid((int)v) || v == JOULE_UNDEFINED)
        return ji_infer_fail(c, "dtype %lld is not a dtype", (long long)v);
    *out = (joule_dtype)v;
    return JOULE_OK;
}

joule_status ji_random_like(joule_infer_ctx *c)
{
    joule_dtype in = ji_in_dtype(c, 0), dt = in;
    if (joule_node_attr(c->node, "dtype")) {
        joule_status st = dtype_attr(c, in, &dt);
        if (st)
            return st;
    }
    ji_out_set(c, 0, dt, ji_in_shape(c, 0));
    return JOULE_OK;
}

joule_status ji_random(joule_infer_ctx *c)
{
    joule_dtype dt = JOULE_F32;
    joule_status st = dtype_attr(c, JOULE_F32, &dt);
    if (st)
        return st;
    const int64_t *v;
    size_t n;
    if (!ji_attr_ints(c->node, "shape", &v, &n) || n > JOULE_MAX_RANK)
        return ji_infer_fail(c, "attribute shape is missing or too long");
    joule_shape y = {.rank = (int)n};
    for (size_t i = 0; i < n; i++) {
        if (v[i] < 0)
            return ji_infer_fail(c, "shape[%zu] is negative", i);
        y.dims[i] = ji_dim_c(v[i]);
    }
    ji_out_set(c, 0, dt, &y);
    return JOULE_OK;
}

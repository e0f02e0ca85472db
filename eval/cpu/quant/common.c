/* eval/cpu/quant/common.c: helpers the quantized kernels share: parameter shapes, MatMul and
 * Conv shape parsing (fast and reference kernels read a node the same way), the int32 ->
 * int32/uint8/int8 output stage, and scratch carving. */
#include "eval/cpu/quant/quant.h"

#include <string.h>

const char *joule_q_name(const joule_node *node)
{
    return node && node->name && *node->name ? node->name : "(unnamed)";
}

bool joule_q_axis(int64_t axis, int rank, int *out)
{
    if (axis < -(int64_t)rank || axis >= (int64_t)rank)
        return false;
    *out = (int)(axis < 0 ? axis + rank : axis);
    return true;
}

bool joule_q_param_shape(const joule_view *param, const joule_view *x, int64_t axis,
                         bool *per_axis)
{
    *per_axis = false;
    if (param->rank == 0 || (param->rank == 1 && param->count == 1))
        return param->count == 1;
    if (param->rank != 1)
        return false;
    int ax;
    if (!joule_q_axis(axis, x->rank, &ax))
        return false;
    if (param->dims[0] != x->dims[ax])
        return false;
    *per_axis = true;
    return true;
}

void joule_q_emit_block(const joule_q_emit *e, const int32_t *acc, int64_t acc_ld, int64_t rows,
                        int64_t cols, int64_t col0, void *y, int64_t y_row, int64_t y_col)
{
    const int32_t *ib = e->ibias ? e->ibias + col0 : NULL;
    if (e->dtype == JOULE_I32) {
        int32_t *yo = y;
        for (int64_t r = 0; r < rows; r++) {
            const int32_t *a = acc + r * acc_ld;
            int32_t *yr = yo + r * y_row;
            if (y_col == 1 && !ib) {
                memcpy(yr, a, (size_t)cols * sizeof *a);
                continue;
            }
            for (int64_t c = 0; c < cols; c++)
                yr[c * y_col] = ib ? joule_q_wrap_add(a[c], ib[c]) : a[c];
        }
        return;
    }
    const float *mult = e->mult + col0;
    const float *fb = e->fbias ? e->fbias + col0 : NULL;
    const bool u8 = e->dtype == JOULE_U8;
    for (int64_t r = 0; r < rows; r++) {
        const int32_t *a = acc + r * acc_ld;
        for (int64_t c = 0; c < cols; c++) {
            int32_t v = ib ? joule_q_wrap_add(a[c], ib[c]) : a[c];
            int32_t q = joule_q_requant(v, mult[c], fb ? fb[c] : 0.0f, e->zp, e->lo, e->hi);
            size_t at = (size_t)(r * y_row + c * y_col);
            if (u8)
                ((uint8_t *)y)[at] = (uint8_t)q;
            else
                ((int8_t *)y)[at] = (int8_t)q;
        }
    }
}

static bool dims_ok(const joule_view *v)
{
    for (int i = 0; i < v->rank; i++)
        if (v->dims[i] < 0 || v->dims[i] > JOULE_Q_LIMIT)
            return false;
    return true;
}

joule_status joule_q_matmul_init(const joule_node *node, const joule_view *a,
                                 const joule_view *b, joule_q_matmul *p, joule_error *err)
{
    memset(p, 0, sizeof *p);
    const char *nm = joule_q_name(node), *op = node->op_type;
    if (!a || !b || a->rank < 1 || b->rank < 1)
        return joule_fail(err, JOULE_ERR_INVALID, "node '%s' (%s): operands must have rank >= 1",
                          nm, op);
    if (!dims_ok(a) || !dims_ok(b))
        return joule_fail(err, JOULE_ERR_UNSUPPORTED, "node '%s' (%s): dims too large", nm, op);
    int ra = a->rank, rb = b->rank;
    p->m = ra == 1 ? 1 : a->dims[ra - 2];
    p->k = a->dims[ra - 1];
    int64_t kb = rb == 1 ? b->dims[0] : b->dims[rb - 2];
    p->n = rb == 1 ? 1 : b->dims[rb - 1];
    if (kb != p->k)
        return joule_fail(err, JOULE_ERR_INVALID, "node '%s' (%s): inner dims differ (%lld vs %lld)",
                          nm, op, (long long)p->k, (long long)kb);
    int abr = ra > 2 ? ra - 2 : 0, bbr = rb > 2 ? rb - 2 : 0;
    int br = abr > bbr ? abr : bbr;
    p->batch_rank = br;
    p->batches = p->a_batches = p->b_batches = 1;
    int64_t as = 1, bs = 1;
    for (int i = br - 1; i >= 0; i--) {
        int ia = i - (br - abr), ib = i - (br - bbr);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return joule_fail(err, JOULE_ERR_INVALID,
                              "node '%s' (%s): batch dims %lld and %lld do not broadcast", nm, op,
                              (long long)da, (long long)db);
        p->batch_dims[i] = da == 1 ? db : da;
        p->a_bstride[i] = da == 1 ? 0 : as;
        p->b_bstride[i] = db == 1 ? 0 : bs;
        size_t t;
        if (!joule_q_mul((size_t)as, (size_t)da, &t) || t > (size_t)INT64_MAX / 2)
            return joule_fail(err, JOULE_ERR_NOMEM, "node '%s' (%s): sizes overflow", nm, op);
        as = (int64_t)t;
        if (!joule_q_mul((size_t)bs, (size_t)db, &t) || t > (size_t)INT64_MAX / 2)
            return joule_fail(err, JOULE_ERR_NOMEM, "node '%s' (%s): sizes overflow", nm, op);
        bs = (int64_t)t;
        if (!joule_q_mul((size_t)p->batches, (size_t)p->batch_dims[i], &t) ||
            t > (size_t)INT64_MAX / 2)
            return joule_fail(err, JOULE_ERR_NOMEM, "node '%s' (%s): sizes overflow", nm, op);
        p->batches = (int64_t)t;
    }
    p->a_batches = as;
    p->b_batches = bs;
    size_t t;
    if (!joule_q_mul((size_t)p->batches, (size_t)p->m, &t) || !joule_q_mul(t, (size_t)p->n, &t) ||
        t > (size_t)INT64_MAX / 8)
        return joule_fail(err, JOULE_ERR_NOMEM, "node '%s' (%s): sizes overflow", nm, op);
    return JOULE_OK;
}

void joule_q_matmul_batch(const joule_q_matmul *p, int64_t i, int64_t *a_mat, int64_t *b_mat)
{
    int64_t am = 0, bm = 0;
    for (int d = p->batch_rank - 1; d >= 0; d--) {
        int64_t idx = i % p->batch_dims[d];
        i /= p->batch_dims[d];
        am += idx * p->a_bstride[d];
        bm += idx * p->b_bstride[d];
    }
    *a_mat = am;
    *b_mat = bm;
}

/* ---- Conv ---- */

enum { PAD_NOTSET, PAD_SAME_UPPER, PAD_SAME_LOWER, PAD_VALID, PAD_BAD };

static int auto_pad_mode(const joule_node *node)
{
    joule_string s = joule_attr_string(node, "auto_pad", "NOTSET");
    static const char *const names[] = {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"};
    for (int i = 0; i < 4; i++)
        if (s.ptr && s.len == strlen(names[i]) && memcmp(s.ptr, names[i], s.len) == 0)
            return i;
    return PAD_BAD;
}

/* An ints attribute with want entries in [lo, LIMIT], or dflt when absent. */
static bool read_ints(const joule_node *node, const char *name, int want, int64_t dflt,
                      int64_t lo, int64_t *out, bool *present)
{
    const joule_attr *a = joule_node_attr(node, name);
    if (present)
        *present = a != NULL;
    if (!a) {
        for (int i = 0; i < want; i++)
            out[i] = dflt;
        return true;
    }
    if (a->type != JOULE_ATTR_INTS || a->count != (size_t)want)
        return false;
    for (int i = 0; i < want; i++) {
        if (a->ints[i] < lo || a->ints[i] > JOULE_Q_LIMIT)
            return false;
        out[i] = a->ints[i];
    }
    return true;
}

joule_status joule_q_conv_init(const joule_node *node, const joule_view *x, const joule_view *w,
                               joule_q_conv *p, joule_error *err)
{
    memset(p, 0, sizeof *p);
    const char *nm = joule_q_name(node), *op = node->op_type;
    if (!x || !w)
        return joule_fail(err, JOULE_ERR_INVALID, "node '%s' (%s): missing X or W", nm, op);
    if (x->rank != 3 && x->rank != 4)
        return joule_fail(err, JOULE_ERR_UNSUPPORTED,
                          "node '%s' (%s): X of rank %d (only 1D and 2D convolutions)", nm, op,
                          x->rank);
    if (w->rank != x->rank)
        return joule_fail(err, JOULE_ERR_INVALID, "node '%s' (%s): W has rank %d, X has rank %d",
                          nm, op, w->rank, x->rank);
    if (!dims_ok(x) || !dims_ok(w))
        return joule_fail(err, JOULE_ERR_UNSUPPORTED, "node '%s' (%s): dims too large", nm, op);
    const int nsp = x->rank - 2;
    p->nsp = nsp;
    p->batch = x->dims[0];
    p->c_in = x->dims[1];
    p->c_out = w->dims[0];
    p->group = joule_attr_int(node, "group", 1);
    if (p->group < 1 || p->group > JOULE_Q_LIMIT || w->dims[1] * p->group != p->c_in ||
        p->c_out % p->group != 0)
        return joule_fail(err, JOULE_ERR_INVALID,
                          "node '%s' (%s): X has %lld channels, W is [%lld,%lld,...] with group "
                          "%lld",
                          nm, op, (long long)p->c_in, (long long)w->dims[0], (long long)w->dims[1],
                          (long long)p->group);
    p->cg = p->c_in / p->group;
    p->mg = p->c_out / p->group;
    int64_t kshape[2], strides[2], dil[2], pads[4];
    bool has_k;
    if (!read_ints(node, "kernel_shape", nsp, 1, 1, kshape, &has_k) ||
        !read_ints(node, "strides", nsp, 1, 1, strides, NULL) ||
        !read_ints(node, "dilations", nsp, 1, 1, dil, NULL) ||
        !read_ints(node, "pads", 2 * nsp, 0, 0, pads, NULL))
        return joule_fail(err, JOULE_ERR_INVALID,
                          "node '%s' (%s): kernel_shape, strides, dilations or pads malformed", nm,
                          op);
    for (int i = 0; i < nsp; i++)
        if (has_k && kshape[i] != w->dims[2 + i])
            return joule_fail(err, JOULE_ERR_INVALID,
                              "node '%s' (%s): kernel_shape does not match W", nm, op);
    int mode = auto_pad_mode(node);
    if (mode == PAD_BAD)
        return joule_fail(err, JOULE_ERR_INVALID, "node '%s' (%s): unknown auto_pad", nm, op);
    int64_t in[2] = {1, 1}, k[2] = {1, 1}, st[2] = {1, 1}, dl[2] = {1, 1}, pb[2] = {0, 0},
            out[2] = {1, 1};
    for (int i = 0; i < nsp; i++) {
        int s = 2 - nsp + i;
        in[s] = x->dims[2 + i];
        k[s] = w->dims[2 + i];
        st[s] = strides[i];
        dl[s] = dil[i];
        if (k[s] < 1)
            return joule_fail(err, JOULE_ERR_INVALID, "node '%s' (%s): empty kernel", nm, op);
        int64_t eff = (k[s] - 1) * dl[s] + 1;
        int64_t b = pads[i], e = pads[nsp + i];
        if (mode == PAD_SAME_UPPER || mode == PAD_SAME_LOWER) {
            out[s] = (in[s] + st[s] - 1) / st[s];
            int64_t total = (out[s] - 1) * st[s] + eff - in[s];
            if (total < 0)
                total = 0;
            b = mode == PAD_SAME_UPPER ? total / 2 : total - total / 2;
        } else {
            if (mode == PAD_VALID)
                b = e = 0;
            if (in[s] + b + e < eff)
                return joule_fail(err, JOULE_ERR_INVALID,
                                  "node '%s' (%s): kernel larger than the padded input", nm, op);
            out[s] = (in[s] + b + e - eff) / st[s] + 1;
        }
        pb[s] = b;
    }
    p->in_h = in[0];
    p->in_w = in[1];
    p->k_h = k[0];
    p->k_w = k[1];
    p->stride_h = st[0];
    p->stride_w = st[1];
    p->dil_h = dl[0];
    p->dil_w = dl[1];
    p->pad_t = pb[0];
    p->pad_l = pb[1];
    p->out_h = out[0];
    p->out_w = out[1];
    size_t t;
    if (!joule_q_mul((size_t)out[0], (size_t)out[1], &t) || t > (size_t)JOULE_Q_LIMIT * 64)
        return joule_fail(err, JOULE_ERR_NOMEM, "node '%s' (%s): output too large", nm, op);
    p->out_size = (int64_t)t;
    if (!joule_q_mul((size_t)p->cg, (size_t)(k[0] * k[1]), &t) || t > (size_t)JOULE_Q_LIMIT)
        return joule_fail(err, JOULE_ERR_NOMEM, "node '%s' (%s): kernel too large", nm, op);
    p->kdim = (int64_t)t;
    if (!joule_q_mul((size_t)p->out_size, (size_t)p->c_out, &t) ||
        !joule_q_mul(t, (size_t)(p->batch ? p->batch : 1), &t) || t > (size_t)INT64_MAX / 8)
        return joule_fail(err, JOULE_ERR_NOMEM, "node '%s' (%s): sizes overflow", nm, op);
    return JOULE_OK;
}

bool joule_q_conv_supported(const joule_node *node, const joule_view *x, const joule_view *w)
{
    joule_q_conv p;
    return joule_q_conv_init(node, x, w, &p, NULL) == JOULE_OK;
}

void joule_q_conv_out_dims(const joule_q_conv *p, int64_t *dims)
{
    dims[0] = p->batch;
    dims[1] = p->c_out;
    if (p->nsp == 2) {
        dims[2] = p->out_h;
        dims[3] = p->out_w;
    } else {
        dims[2] = p->out_w;
    }
}

void *joule_q_take(joule_q_carver *c, size_t count, size_t elem)
{
    size_t bytes;
    if (!joule_q_mul(count, elem, &bytes) || bytes > SIZE_MAX - 64 || c->used > SIZE_MAX - 64 -
        bytes) {
        c->overflow = true;
        return NULL;
    }
    size_t at = (c->used + 63) / 64 * 64;
    c->used = at + bytes;
    return c->base ? c->base + at : NULL;
}

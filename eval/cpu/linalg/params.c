/* eval/cpu/linalg/params.c: attribute parsing and output shapes for MatMul, Gemm, Conv and
 * ConvTranspose, shared by the fast and the reference kernels so both read a node the same way;
 * plus the small helpers (f16 arrays, scratch carving) the kernels share. */
#include "eval/cpu/linalg/linalg.h"

#include <limits.h>
#include <string.h>

/* Attribute values and dims beyond this are refused, so every product below fits in int64. */
#define LIMIT ((int64_t)INT32_MAX)

static const char *node_name(const joule_node *node)
{
    return node->name && *node->name ? node->name : "(unnamed)";
}

/* floor(a / b) for b > 0. */
static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

/* Reads an ints attribute that must have `want` entries (when present) into out, else fills
 * out with dflt. */
static joule_status read_ints(const joule_node *node, const char *name, int want, int64_t dflt,
                              int64_t lo, int64_t *out, bool *present, joule_error *err)
{
    const joule_attr *a = joule_node_attr(node, name);
    if (present)
        *present = a != NULL;
    if (!a) {
        for (int i = 0; i < want; i++)
            out[i] = dflt;
        return JOULE_OK;
    }
    if (a->type != JOULE_ATTR_INTS || a->count != (size_t)want)
        return joule_fail(err, JOULE_ERR_INVALID,
                          "node '%s' (%s): attribute '%s' must be %d ints", node_name(node),
                          node->op_type, name, want);
    for (int i = 0; i < want; i++) {
        if (a->ints[i] < lo || a->ints[i] > LIMIT || a->ints[i] < -LIMIT)
            return joule_fail(err, JOULE_ERR_INVALID,
                              "node '%s' (%s): attribute '%s' has out-of-range value %lld",
                              node_name(node), node->op_type, name, (long long)a->ints[i]);
        out[i] = a->ints[i];
    }
    return JOULE_OK;
}

enum { PAD_NOTSET, PAD_SAME_UPPER, PAD_SAME_LOWER, PAD_VALID };

static joule_status read_auto_pad(const joule_node *node, int *mode, joule_error *err)
{
    joule_string s = joule_attr_string(node, "auto_pad", "NOTSET");
    static const struct {
        const char *name;
        int mode;
    } modes[] = {{"NOTSET", PAD_NOTSET},
                 {"SAME_UPPER", PAD_SAME_UPPER},
                 {"SAME_LOWER", PAD_SAME_LOWER},
                 {"VALID", PAD_VALID}};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        if (s.len == strlen(modes[i].name) && memcmp(s.ptr, modes[i].name, s.len) == 0) {
            *mode = modes[i].mode;
            return JOULE_OK;
        }
    }
    return joule_fail(err, JOULE_ERR_INVALID, "node '%s' (%s): unknown auto_pad '%.*s'",
                      node_name(node), node->op_type, (int)(s.len > 64 ? 64 : s.len),
                      s.ptr ? s.ptr : "");
}

static bool dims_in_limit(const joule_view *v)
{
    for (int i = 0; i < v->rank; i++)
        if (v->dims[i] < 0 || v->dims[i] > LIMIT)
            return false;
    return true;
}

joule_status joule_conv_params_init(const joule_node *node, bool transpose, const joule_view *x,
                                    const joule_view *w, const joule_view *bias,
                                    joule_conv_params *p, joule_error *err)
{
    memset(p, 0, sizeof *p);
    const char *nm = node_name(node);
    const char *op = node->op_type;
    if (!x || !w)
        return joule_fail(err, JOULE_ERR_INVALID, "node '%s' (%s): missing X or W", nm, op);
    int nsp = x->rank - 2;
    if (nsp < 1 || nsp > JOULE_CONV_MAX_SPATIAL)
        return joule_fail(err, JOULE_ERR_UNSUPPORTED,
                          "node '%s' (%s): X of rank %d (only 1D, 2D and 3D are supported)", nm,
                          op, x->rank);
    if (w->rank != x->rank)
        return joule_fail(err, JOULE_ERR_INVALID, "node '%s' (%s): W has rank %d, X has rank %d",
                          nm, op, w->rank, x->rank);
    if (!dims_in_limit(x) || !dims_in_limit(w))
        return joule_fail(err, JOULE_ERR_UNSUPPORTED, "node '%s' (%s): dims too large", nm, op);
    p->transpose = transpose;
    p->nsp = nsp;
    p->batch = x->dims[0];
    p->c_in = x->dims[1];
    p->group = joule_attr_int(node, "group", 1);
    if (p->group < 1 || p->group > LIMIT)
        return joule_fail(err, JOULE_ERR_INVALID, "node '%s' (%s): group %lld", nm, op,
                          (long long)p->group);
    if (!transpose) {
        if (w->dims[1] * p->group != p->c_in || w->dims[0] % p->group != 0)
            return joule_fail(err, JOULE_ERR_INVALID,
                              "node '%s' (%s): X has %lld channels, W is [%lld,%lld,...] with "
                              "group %lld",
                              nm, op, (long long)p->c_in, (long long)w->dims[0],
                              (long long)w->dims[1], (long long)p->group);
        p->c_out = w->dims[0];
    } else {
        if (w->dims[0] != p->c_in || p->c_in % p->group != 0)
            return joule_fail(err, JOULE_ERR_INVALID,
                              "node '%s' (%s): X has %lld channels, W is [%lld,%lld,...] with "
                              "group %lld",
                              nm, op, (long long)p->c_in, (long long)w->dims[0],
                              (long long)w->dims[1], (long long)p->group);
        p->c_out = w->dims[1] * p->group;
        if (p->c_out > LIMIT)
            return joule_fail(err, JOULE_ERR_UNSUPPORTED, "node '%s' (%s): too many channels",
                              nm, op);
    }
    if (bias && (bias->rank != 1 || bias->dims[0] != p->c_out))
        return joule_fail(err, JOULE_ERR_INVALID,
                          "node '%s' (%s): bias must be a vector of %lld elements", nm, op,
                          (long long)p->c_out);

    /* attributes, in the op's own spatial rank */
    int64_t kshape[3], strides[3], dil[3], pads[6], opad[3], oshape[5];
    bool has_kshape, has_pads, has_oshape = false;
    joule_status st;
    if ((st = read_ints(node, "kernel_shape", nsp, 1, 1, kshape, &has_kshape, err)) ||
        (st = read_ints(node, "strides", nsp, 1, 1, strides, NULL, err)) ||
        (st = read_ints(node, "dilations", nsp, 1, 1, dil, NULL, err)) ||
        (st = read_ints(node, "pads", 2 * nsp, 0, 0, pads, &has_pads, err)))
        return st;
    (void)has_pads;
    for (int i = 0; i < nsp; i++)
        if (has_kshape && kshape[i] != w->dims[2 + i])
            return joule_fail(err, JOULE_ERR_INVALID,
                              "node '%s' (%s): kernel_shape does not match W", nm, op);
    int mode = PAD_NOTSET;
    if ((st = read_auto_pad(node, &mode, err)))
        return st;
    if (transpose) {
        if ((st = read_ints(node, "output_padding", nsp, 0, 0, opad, NULL, err)))
            return st;
        const joule_attr *a = joule_node_attr(node, "output_shape");
        if (a) {
            /* the spatial dims, or (as some exporters write) N, C and the spatial dims */
            int want = a->type == JOULE_ATTR_INTS && a->count == (size_t)nsp + 2 ? nsp + 2 : nsp;
            if ((st = read_ints(node, "output_shape", want, 0, 0, oshape, &has_oshape, err)))
                return st;
            if (want == nsp + 2)
                memmove(oshape, oshape + 2, (size_t)nsp * sizeof *oshape);
        }
    }

    /* normalized to 3 spatial dims: op dim i lands in slot 3 - nsp + i */
    int off = 3 - nsp;
    for (int s = 0; s < 3; s++) {
        p->in[s] = p->out[s] = p->k[s] = p->stride[s] = p->dil[s] = 1;
        p->pad_begin[s] = p->pad_end[s] = 0;
    }
    for (int i = 0; i < nsp; i++) {
        int s = off + i;
        int64_t in = x->dims[2 + i], k = w->dims[2 + i];
        int64_t eff_k = (k - 1) * dil[i] + 1;
        int64_t pb = pads[i], pe = pads[nsp + i], out;
        p->in[s] = in;
        p->k[s] = k;
        p->stride[s] = strides[i];
        p->dil[s] = dil[i];
        if (k < 1)
            return joule_fail(err, JOULE_ERR_INVALID, "node '%s' (%s): empty kernel", nm, op);
        if (!transpose) {
            if (mode == PAD_SAME_UPPER || mode == PAD_SAME_LOWER) {
                out = (in + strides[i] - 1) / strides[i];
                int64_t total = (out - 1) * strides[i] + eff_k - in;
                if (total < 0)
                    total = 0;
                pb = mode == PAD_SAME_UPPER ? total / 2 : total - total / 2;
                pe = total - pb;
            } else {
                if (mode == PAD_VALID)
                    pb = pe = 0;
                if (in + pb + pe < eff_k)
                    return joule_fail(err, JOULE_ERR_INVALID,
                                      "node '%s' (%s): kernel (%lld with dilation) is larger "
                                      "than the padded input (%lld)",
                                      nm, op, (long long)eff_k, (long long)(in + pb + pe));
                out = (in + pb + pe - eff_k) / strides[i] + 1;
            }
        } else {
            int64_t full = strides[i] * (in - 1) + opad[i] + eff_k;
            if (has_oshape || mode == PAD_SAME_UPPER || mode == PAD_SAME_LOWER) {
                out = has_oshape ? oshape[i] : in * strides[i];
                int64_t total = full - out;
                /* ONNX: SAME_UPPER puts the smaller half first, everything else the larger */
                if (mode == PAD_SAME_UPPER) {
                    pb = floor_div(total, 2);
                    pe = total - pb;
                } else {
                    pe = floor_div(total, 2);
                    pb = total - pe;
                }
            } else {
                if (mode == PAD_VALID)
                    pb = pe = 0;
                out = full - pb - pe;
            }
            if (out < 0)
                return joule_fail(err, JOULE_ERR_INVALID,
                                  "node '%s' (%s): negative output size %lld", nm, op,
                                  (long long)out);
        }
        if (out > LIMIT)
            return joule_fail(err, JOULE_ERR_UNSUPPORTED, "node '%s' (%s): output too large", nm,
                              op);
        p->out[s] = out;
        p->pad_begin[s] = pb;
        p->pad_end[s] = pe;
    }
    p->in_size = p->in[0] * p->in[1] * p->in[2];
    p->out_size = p->out[0] * p->out[1] * p->out[2];
    p->k_size = p->k[0] * p->k[1] * p->k[2];
    /* every buffer a kernel touches must be addressable: Y, and per group the im2col matrix */
    size_t n;
    if (!joule_mul_size((size_t)p->out_size, (size_t)p->c_out, &n) ||
        !joule_mul_size(n, (size_t)p->batch, &n) ||
        !joule_mul_size((size_t)p->k_size, (size_t)(p->c_in > p->c_out ? p->c_in : p->c_out), &n) ||
        !joule_mul_size(n, (size_t)(p->out_size > p->in_size ? p->out_size : p->in_size), &n) ||
        n > (size_t)INT64_MAX / 8)
        return joule_fail(err, JOULE_ERR_NOMEM, "node '%s' (%s): sizes overflow", nm, op);
    return JOULE_OK;
}

void joule_conv_out_dims(const joule_conv_params *p, int64_t *dims)
{
    dims[0] = p->batch;
    dims[1] = p->c_out;
    for (int i = 0; i < p->nsp; i++)
        dims[2 + i] = p->out[3 - p->nsp + i];
}

joule_status joule_gemm_params_init(const joule_node *node, const joule_view *a,
                                    const joule_view *b, const joule_view *c,
                                    joule_gemm_params *p, joule_error *err)
{
    memset(p, 0, sizeof *p);
    const char *nm = node_name(node);
    if (!a || !b || a->rank != 2 || b->rank != 2)
        return joule_fail(err, JOULE_ERR_INVALID, "node '%s' (Gemm): A and B must be matrices",
                          nm);
    if (!dims_in_limit(a) || !dims_in_limit(b))
        return joule_fail(err, JOULE_ERR_UNSUPPORTED, "node '%s' (Gemm): dims too large", nm);
    p->trans_a = joule_attr_int(node, "transA", 0) != 0;
    p->trans_b = joule_attr_int(node, "transB", 0) != 0;
    p->alpha = joule_attr_float(node, "alpha", 1.0f);
    p->beta = joule_attr_float(node, "beta", 1.0f);
    p->m = p->trans_a ? a->dims[1] : a->dims[0];
    p->k = p->trans_a ? a->dims[0] : a->dims[1];
    int64_t kb = p->trans_b ? b->dims[1] : b->dims[0];
    p->n = p->trans_b ? b->dims[0] : b->dims[1];
    if (kb != p->k)
        return joule_fail(err, JOULE_ERR_INVALID,
                          "node '%s' (Gemm): inner dims differ (%lld vs %lld)", nm,
                          (long long)p->k, (long long)kb);
    p->has_c = c != NULL;
    p->c_rows = p->c_cols = 1;
    if (c) {
        if (c->rank > 2)
            return joule_fail(err, JOULE_ERR_INVALID, "node '%s' (Gemm): C has rank %d", nm,
                              c->rank);
        if (c->rank >= 1)
            p->c_cols = c->dims[c->rank - 1];
        if (c->rank == 2)
            p->c_rows = c->dims[0];
        if ((p->c_rows != 1 && p->c_rows != p->m) || (p->c_cols != 1 && p->c_cols != p->n))
            return joule_fail(err, JOULE_ERR_INVALID,
                              "node '%s' (Gemm): C does not broadcast to [%lld,%lld]", nm,
                              (long long)p->m, (long long)p->n);
    }
    size_t n;
    if (!joule_mul_size((size_t)p->m, (size_t)p->n, &n))
        return joule_fail(err, JOULE_ERR_NOMEM, "node '%s' (Gemm): sizes overflow", nm);
    return JOULE_OK;
}

joule_status joule_matmul_params_init(const joule_node *node, const joule_view *a,
                                      const joule_view *b, joule_matmul_params *p,
                                      joule_error *err)
{
    memset(p, 0, sizeof *p);
    const char *nm = node_name(node);
    if (!a || !b || a->rank < 1 || b->rank < 1)
        return joule_fail(err, JOULE_ERR_INVALID,
                          "node '%s' (MatMul): operands must have rank >= 1", nm);
    if (!dims_in_limit(a) || !dims_in_limit(b))
        return joule_fail(err, JOULE_ERR_UNSUPPORTED, "node '%s' (MatMul): dims too large", nm);
    int ra = a->rank, rb = b->rank;
    p->m = ra == 1 ? 1 : a->dims[ra - 2];
    p->k = a->dims[ra - 1];
    int64_t kb = rb == 1 ? b->dims[0] : b->dims[rb - 2];
    p->n = rb == 1 ? 1 : b->dims[rb - 1];
    if (kb != p->k)
        return joule_fail(err, JOULE_ERR_INVALID,
                          "node '%s' (MatMul): inner dims differ (%lld vs %lld)", nm,
                          (long long)p->k, (long long)kb);
    int abr = ra > 2 ? ra - 2 : 0, bbr = rb > 2 ? rb - 2 : 0;
    int br = abr > bbr ? abr : bbr;
    p->batch_rank = br;
    p->batches = 1;
    p->a_batches = p->b_batches = 1;
    int64_t as = 1, bs = 1; /* matrices per step of the current dim, walking from the right */
    for (int i = br - 1; i >= 0; i--) {
        int ia = i - (br - abr), ib = i - (br - bbr);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return joule_fail(err, JOULE_ERR_INVALID,
                              "node '%s' (MatMul): batch dims %lld and %lld do not broadcast",
                              nm, (long long)da, (long long)db);
        int64_t d = da == 1 ? db : da;
        p->batch_dims[i] = d;
        p->a_bstride[i] = da == 1 ? 0 : as;
        p->b_bstride[i] = db == 1 ? 0 : bs;
        as *= da;
        bs *= db;
        p->batches *= d;
    }
    p->a_batches = as;
    p->b_batches = bs;
    p->out_rank = 0;
    for (int i = 0; i < br; i++)
        p->out_dims[p->out_rank++] = p->batch_dims[i];
    if (ra > 1)
        p->out_dims[p->out_rank++] = p->m;
    if (rb > 1)
        p->out_dims[p->out_rank++] = p->n;
    size_t n;
    if (!joule_dims_count(p->out_rank, p->out_dims, &n) || n > (size_t)INT64_MAX / 8)
        return joule_fail(err, JOULE_ERR_NOMEM, "node '%s' (MatMul): sizes overflow", nm);
    return JOULE_OK;
}

void joule_matmul_batch(const joule_matmul_params *p, int64_t i, int64_t *a_mat, int64_t *b_mat)
{
    int64_t ai = 0, bi = 0;
    for (int d = p->batch_rank - 1; d >= 0; d--) {
        int64_t idx = i % p->batch_dims[d];
        i /= p->batch_dims[d];
        ai += idx * p->a_bstride[d];
        bi += idx * p->b_bstride[d];
    }
    *a_mat = ai;
    *b_mat = bi;
}

joule_status joule_linalg_check_out(const joule_node *node, const joule_view *out, int rank,
                                    const int64_t *dims, joule_error *err)
{
    bool ok = out && out->rank == rank;
    for (int i = 0; ok && i < rank; i++)
        ok = out->dims[i] == dims[i];
    if (!ok)
        return joule_fail(err, JOULE_ERR_INVALID,
                          "node '%s' (%s): output shape differs from the one the op computes",
                          node_name(node), node->op_type);
    return JOULE_OK;
}

void joule_linalg_f16_to_f32(const uint16_t *src, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = joule_f16_to_f32(src[i]);
}

void joule_linalg_f32_to_f16(const float *src, uint16_t *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = joule_f32_to_f16(src[i]);
}

void *joule_scratch_take(joule_scratch_carver *c, size_t bytes)
{
    size_t start = (c->used + 63) & ~(size_t)63;
    if (start < c->used || bytes > SIZE_MAX - start - 64) {
        c->overflow = true;
        return NULL;
    }
    c->used = start + bytes;
    return c->base ? c->base + start : NULL;
}

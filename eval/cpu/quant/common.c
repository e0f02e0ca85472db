/* eval/cpu/quant/common.c: helpers the quantized kernels share: parameter shapes, MatMul and
 * Conv shape parsing (fast and reference kernels read a node the same way), the int32 ->
 * int32/uint8/int8 output stage, and scratch carving. */
#include "eval/cpu/quant/quant.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

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

static void emit_scalar(const joule_q_emit *e, const int32_t *acc, int64_t acc_ld, int64_t rows,
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

#if defined(__x86_64__) || defined(__i386__)
#define Q_EMIT_X86 1

/* Per-lane parameters of 8 consecutive columns. */
typedef struct emit8 {
    __m256i ib;
    __m256 mult, fb, zp, lo, hi;
} emit8;

__attribute__((target("avx2"))) static inline void emit8_load(const joule_q_emit *e, int64_t col,
                                                              emit8 *p)
{
    p->ib = e->ibias ? _mm256_loadu_si256((const __m256i *)(e->ibias + col))
                     : _mm256_setzero_si256();
    p->mult = p->fb = p->zp = p->lo = p->hi = _mm256_setzero_ps();
    if (e->dtype == JOULE_I32)
        return;
    p->mult = _mm256_loadu_ps(e->mult + col);
    p->fb = e->fbias ? _mm256_loadu_ps(e->fbias + col) : _mm256_setzero_ps();
    p->zp = _mm256_set1_ps((float)e->zp);
    p->lo = _mm256_set1_ps((float)e->lo);
    p->hi = _mm256_set1_ps((float)e->hi);
}

/* joule_q_requant on 8 lanes, the same operations in the same order (so the same results). */
__attribute__((target("avx2"))) static inline __m256i emit8_apply(const joule_q_emit *e,
                                                                  const emit8 *p, __m256i acc)
{
    acc = _mm256_add_epi32(acc, p->ib);
    if (e->dtype == JOULE_I32)
        return acc;
    __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), p->mult);
    v = _mm256_add_ps(v, p->fb);
    v = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    v = _mm256_add_ps(v, p->zp);
    v = _mm256_max_ps(v, p->lo); /* NaN gives lo, as in joule_q_round_sat */
    v = _mm256_min_ps(v, p->hi);
    return _mm256_cvtps_epi32(v);
}

/* 8 lanes (already in range) to 8 elements of the output type. */
__attribute__((target("avx2"))) static inline void emit8_store(joule_dtype t, __m256i v, void *dst)
{
    if (t == JOULE_I32) {
        _mm256_storeu_si256((__m256i *)dst, v);
        return;
    }
    __m256i w = _mm256_packs_epi32(v, v);
    w = t == JOULE_U8 ? _mm256_packus_epi16(w, w) : _mm256_packs_epi16(w, w);
    uint32_t lo = (uint32_t)_mm_cvtsi128_si32(_mm256_castsi256_si128(w));
    uint32_t hi = (uint32_t)_mm_cvtsi128_si32(_mm256_extracti128_si256(w, 1));
    memcpy(dst, &lo, 4);
    memcpy((char *)dst + 4, &hi, 4);
}

/* Row-major output (y_col == 1): 8 columns at a time; returns the columns done. */
__attribute__((target("avx2"))) static int64_t emit_rows_avx2(const joule_q_emit *e,
                                                              const int32_t *acc, int64_t acc_ld,
                                                              int64_t rows, int64_t cols,
                                                              int64_t col0, void *y, int64_t y_row)
{
    const size_t es = e->dtype == JOULE_I32 ? 4 : 1;
    int64_t c = 0;
    for (; c + 8 <= cols; c += 8) {
        emit8 p;
        emit8_load(e, col0 + c, &p);
        for (int64_t r = 0; r < rows; r++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(acc + r * acc_ld + c));
            emit8_store(e->dtype, emit8_apply(e, &p, v), (char *)y + (size_t)(r * y_row + c) * es);
        }
    }
    return c;
}

/* Transposed output (y_row == 1, as for NCHW convolution): 8 x 8 blocks are requantized along
 * columns, transposed in registers and stored as 8 contiguous elements per column. Returns the
 * rows done (a multiple of 8); columns past the last multiple of 8 are left to the caller. */
__attribute__((target("avx2"))) static int64_t emit_cols_avx2(const joule_q_emit *e,
                                                              const int32_t *acc, int64_t acc_ld,
                                                              int64_t rows, int64_t cols,
                                                              int64_t col0, void *y, int64_t y_col)
{
    const size_t es = e->dtype == JOULE_I32 ? 4 : 1;
    const int64_t rows8 = rows / 8 * 8;
    /* rows outer: acc is read in order, and the 8-element stores of one row block land in one
     * cache line per column, which the next row blocks fill */
    for (int64_t r = 0; r < rows8; r += 8) {
        for (int64_t c = 0; c + 8 <= cols; c += 8) {
            emit8 p;
            emit8_load(e, col0 + c, &p);
            __m256i v[8];
            for (int i = 0; i < 8; i++)
                v[i] = emit8_apply(
                    e, &p, _mm256_loadu_si256((const __m256i *)(acc + (r + i) * acc_ld + c)));
            __m256i t0 = _mm256_unpacklo_epi32(v[0], v[1]), t1 = _mm256_unpackhi_epi32(v[0], v[1]);
            __m256i t2 = _mm256_unpacklo_epi32(v[2], v[3]), t3 = _mm256_unpackhi_epi32(v[2], v[3]);
            __m256i t4 = _mm256_unpacklo_epi32(v[4], v[5]), t5 = _mm256_unpackhi_epi32(v[4], v[5]);
            __m256i t6 = _mm256_unpacklo_epi32(v[6], v[7]), t7 = _mm256_unpackhi_epi32(v[6], v[7]);
            __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
            __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
            __m256i u4 = _mm256_unpacklo_epi64(t4, t6), u5 = _mm256_unpackhi_epi64(t4, t6);
            __m256i u6 = _mm256_unpacklo_epi64(t5, t7), u7 = _mm256_unpackhi_epi64(t5, t7);
            __m256i o[8] = {
                _mm256_permute2x128_si256(u0, u4, 0x20), _mm256_permute2x128_si256(u1, u5, 0x20),
                _mm256_permute2x128_si256(u2, u6, 0x20), _mm256_permute2x128_si256(u3, u7, 0x20),
                _mm256_permute2x128_si256(u0, u4, 0x31), _mm256_permute2x128_si256(u1, u5, 0x31),
                _mm256_permute2x128_si256(u2, u6, 0x31), _mm256_permute2x128_si256(u3, u7, 0x31),
            };
            for (int j = 0; j < 8; j++)
                emit8_store(e->dtype, o[j], (char *)y + (size_t)((c + j) * y_col + r) * es);
        }
    }
    return rows8;
}

static bool have_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
}
#else
#define Q_EMIT_X86 0
#endif

void joule_q_emit_block(const joule_q_emit *e, const int32_t *acc, int64_t acc_ld, int64_t rows,
                        int64_t cols, int64_t col0, void *y, int64_t y_row, int64_t y_col)
{
    const size_t es = e->dtype == JOULE_I32 ? 4 : 1;
#if Q_EMIT_X86
    if (rows > 0 && cols >= 8 && have_avx2()) {
        if (y_col == 1 && y_row != 0) {
            int64_t done = emit_rows_avx2(e, acc, acc_ld, rows, cols, col0, y, y_row);
            emit_scalar(e, acc + done, acc_ld, rows, cols - done, col0 + done,
                        (char *)y + (size_t)done * es, y_row, 1);
            return;
        }
        if (y_row == 1 && y_col != 0 && rows >= 8) {
            int64_t done = emit_cols_avx2(e, acc, acc_ld, rows, cols, col0, y, y_col);
            int64_t cols8 = cols / 8 * 8;
            /* the columns past the last full 8, then the rows past the last full 8 */
            emit_scalar(e, acc + cols8, acc_ld, done, cols - cols8, col0 + cols8,
                        (char *)y + (size_t)(cols8 * y_col) * es, 1, y_col);
            emit_scalar(e, acc + done * acc_ld, acc_ld, rows - done, cols, col0,
                        (char *)y + (size_t)done * es, 1, y_col);
            return;
        }
    }
#endif
    emit_scalar(e, acc, acc_ld, rows, cols, col0, y, y_row, y_col);
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

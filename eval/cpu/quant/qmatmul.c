/* eval/cpu/quant/qmatmul.c: MatMulInteger and QLinearMatMul (numpy batching). The fast kernels
 * pack constant B matrices once at prepare time and run the integer GEMM (qgemm.h); a B that is
 * not constant is packed at each run. QLinearMatMul requantizes the int32 sums with
 * a_scale * b_scale / y_scale, rounding half to even. Zero points and scales of A may be per
 * tensor or per row, those of B per tensor or per column (optionally one set per batch matrix).
 * The reference kernels are plain triple loops. */
#include "eval/cpu/quant/quant.h"

#include <stdlib.h>
#include <string.h>

/* Index of the parameter for element i (0 <= i < len) of matrix mat, given the parameter's
 * count (validated to be 1, len or matrices * len). */
static inline size_t param_index(size_t count, int64_t len, int64_t mat, int64_t i)
{
    if (count == 1)
        return 0;
    if (count == (size_t)len)
        return (size_t)i;
    return (size_t)(mat * len + i);
}

static bool param_count_ok(const joule_view *v, int64_t len, int64_t matrices)
{
    if (!v)
        return true;
    if (v->rank > 0 && v->count != 1) {
        /* per row / per column: the elements must lie along one axis of the tensor */
        int non_one = 0;
        for (int i = 0; i < v->rank; i++)
            non_one += v->dims[i] != 1;
        if (matrices == 1 && non_one > 1)
            return false;
    }
    return v->count == 1 || v->count == (size_t)len || v->count == (size_t)(len * matrices);
}

/* ---- shared parsing ---- */

typedef struct qmm_io {
    const joule_view *a, *a_scale, *a_zp, *b, *b_scale, *b_zp, *y_scale, *y_zp;
    bool qlinear;
} qmm_io;

static void qmm_inputs(const joule_node *node, int n_in, const joule_view *const *in, qmm_io *io)
{
    memset(io, 0, sizeof *io);
    io->qlinear = strcmp(node->op_type, "QLinearMatMul") == 0;
#define IN(i) (n_in > (i) ? in[i] : NULL)
    if (io->qlinear) {
        io->a = IN(0);
        io->a_scale = IN(1);
        io->a_zp = IN(2);
        io->b = IN(3);
        io->b_scale = IN(4);
        io->b_zp = IN(5);
        io->y_scale = IN(6);
        io->y_zp = IN(7);
    } else {
        io->a = IN(0);
        io->b = IN(1);
        io->a_zp = IN(2);
        io->b_zp = IN(3);
    }
#undef IN
}

static bool qmm_supports(const joule_node *node, int n_in, const joule_view *const *in)
{
    qmm_io io;
    qmm_inputs(node, n_in, in, &io);
    if (n_in > (io.qlinear ? 8 : 4))
        return false;
    if (!io.a || !io.b || !joule_q_is_int8(io.a->dtype) || !joule_q_is_int8(io.b->dtype))
        return false;
    if ((io.a_zp && io.a_zp->dtype != io.a->dtype) || (io.b_zp && io.b_zp->dtype != io.b->dtype))
        return false;
    joule_q_matmul p;
    if (joule_q_matmul_init(node, io.a, io.b, &p, NULL) != JOULE_OK)
        return false;
    if (!param_count_ok(io.a_zp, p.m, p.a_batches) || !param_count_ok(io.b_zp, p.n, p.b_batches))
        return false;
    if (io.qlinear) {
        if (!io.a_scale || !io.b_scale || !io.y_scale)
            return false;
        if (!joule_q_is_scale_type(io.a_scale->dtype) || !joule_q_is_scale_type(io.b_scale->dtype) ||
            !joule_q_is_scale_type(io.y_scale->dtype) || io.y_scale->count != 1)
            return false;
        if (!param_count_ok(io.a_scale, p.m, p.a_batches) ||
            !param_count_ok(io.b_scale, p.n, p.b_batches))
            return false;
        if ((io.a_zp && io.a_zp->count != io.a_scale->count) ||
            (io.b_zp && io.b_zp->count != io.b_scale->count))
            return false;
        if (io.y_zp && (!joule_q_is_int8(io.y_zp->dtype) || io.y_zp->count != 1))
            return false;
    }
    return true;
}

bool joule_q_matmul_integer_supports(const joule_node *node, int64_t opset, int n_in,
                                     const joule_view *const *in)
{
    (void)opset;
    return qmm_supports(node, n_in, in);
}

bool joule_q_qlinear_matmul_supports(const joule_node *node, int64_t opset, int n_in,
                                     const joule_view *const *in)
{
    (void)opset;
    return qmm_supports(node, n_in, in);
}

static joule_status qmm_check_out(const joule_kernel_ctx *ctx, const qmm_io *io,
                                  const joule_q_matmul *p)
{
    const joule_view *y = ctx->out[0];
    size_t want = (size_t)(p->batches * p->m * p->n);
    bool type_ok = io->qlinear ? (io->y_zp ? y->dtype == io->y_zp->dtype : joule_q_is_int8(y->dtype))
                               : y->dtype == JOULE_I32;
    if (!type_ok || y->count != want)
        return joule_fail(ctx->err, JOULE_ERR_INVALID,
                          "node '%s' (%s): output is %s with %zu elements, expected %zu",
                          joule_q_name(ctx->node), ctx->node->op_type,
                          joule_dtype_name(y->dtype), y->count, want);
    return JOULE_OK;
}

/* ---- reference ---- */

static joule_status qmm_ref(const joule_kernel_ctx *ctx)
{
    qmm_io io;
    qmm_inputs(ctx->node, ctx->n_in, ctx->in, &io);
    joule_q_matmul p;
    joule_status st = joule_q_matmul_init(ctx->node, io.a, io.b, &p, ctx->err);
    if (st || (st = qmm_check_out(ctx, &io, &p)))
        return st;
    joule_view *y = ctx->out[0];
    int32_t lo = 0, hi = 0, yzp = 0;
    float ys = 1.0f;
    if (io.qlinear) {
        joule_q_range(y->dtype, &lo, &hi);
        yzp = joule_q_int_at(io.y_zp, 0);
        ys = joule_q_scale_at(io.y_scale, 0);
    }
    for (int64_t bi = 0; bi < p.batches; bi++) {
        int64_t am, bm;
        joule_q_matmul_batch(&p, bi, &am, &bm);
        for (int64_t m = 0; m < p.m; m++) {
            size_t ai = io.a_zp ? param_index(io.a_zp->count, p.m, am, m) : 0;
            int64_t az = joule_q_int_at(io.a_zp, ai);
            for (int64_t n = 0; n < p.n; n++) {
                size_t bj = io.b_zp ? param_index(io.b_zp->count, p.n, bm, n) : 0;
                int64_t bz = joule_q_int_at(io.b_zp, bj);
                int64_t sum = 0;
                for (int64_t k = 0; k < p.k; k++) {
                    int64_t av = joule_q_int_at(io.a, (size_t)((am * p.m + m) * p.k + k));
                    int64_t bv = joule_q_int_at(io.b, (size_t)((bm * p.k + k) * p.n + n));
                    sum += (av - az) * (bv - bz);
                }
                int32_t acc = (int32_t)(uint32_t)(uint64_t)sum;
                size_t at = (size_t)((bi * p.m + m) * p.n + n);
                if (!io.qlinear) {
                    ((int32_t *)y->data)[at] = acc;
                    continue;
                }
                float as = joule_q_scale_at(io.a_scale, param_index(io.a_scale->count, p.m, am, m));
                float bs = joule_q_scale_at(io.b_scale, param_index(io.b_scale->count, p.n, bm, n));
                joule_q_store(y->dtype, y->data, at,
                              joule_q_requant(acc, joule_q_mult(as, bs, ys), 0.0f, yzp, lo, hi));
            }
        }
    }
    return JOULE_OK;
}

joule_status joule_q_matmul_integer_run_ref(const joule_kernel_ctx *ctx)
{
    return qmm_ref(ctx);
}

joule_status joule_q_qlinear_matmul_run_ref(const joule_kernel_ctx *ctx)
{
    return qmm_ref(ctx);
}

/* ---- fast ---- */

typedef struct qmm_state {
    joule_q_matmul p;
    joule_qgemm_packed **packs; /* b_batches entries when B (and its zero point) is constant */
    size_t gemm_scratch;        /* qgemm scratch for p.m rows */
    size_t scratch_bytes;
} qmm_state;

void joule_q_matmul_destroy(void *state)
{
    qmm_state *s = state;
    if (!s)
        return;
    if (s->packs)
        for (int64_t i = 0; i < s->p.b_batches; i++)
            joule_qgemm_packed_free(s->packs[i]);
    free(s->packs);
    free(s);
}

/* Packs B matrix bm with its zero points (converted into zp_buf, p->n entries). */
static joule_status pack_b(const qmm_io *io, const joule_q_matmul *p, int64_t bm, int32_t *zp_buf,
                           joule_qgemm_packed **out, joule_error *err)
{
    int64_t nzp = 0;
    if (io->b_zp) {
        nzp = io->b_zp->count == 1 ? 1 : p->n;
        for (int64_t n = 0; n < nzp; n++)
            zp_buf[n] = joule_q_int_at(io->b_zp, param_index(io->b_zp->count, p->n, bm, n));
    }
    const char *base = (const char *)io->b->data + (size_t)(bm * p->k * p->n);
    return joule_qgemm_pack(base, io->b->dtype == JOULE_I8, p->k, p->n, p->n, false,
                            io->b_zp ? zp_buf : NULL, nzp, JOULE_QGEMM_AUTO, out, err);
}

/* Scratch pieces of one run, in carving order. */
typedef struct qmm_bufs {
    void *gemm;      /* qgemm scratch */
    int32_t *a_zp;   /* converted A zero points (count of a_zp) */
    int32_t *b_zp;   /* converted B zero points for run-time packing (n) */
    int32_t *acc;    /* m x n sums (QLinearMatMul) */
    float *mult;     /* n multipliers (QLinearMatMul) */
} qmm_bufs;

static void qmm_carve(joule_q_carver *c, const qmm_io *io, const joule_q_matmul *p,
                      size_t gemm_scratch, qmm_bufs *b)
{
    b->gemm = joule_q_take(c, gemm_scratch, 1);
    b->a_zp = joule_q_take(c, io->a_zp ? io->a_zp->count : 1, sizeof(int32_t));
    b->b_zp = joule_q_take(c, (size_t)p->n + 1, sizeof(int32_t));
    if (io->qlinear) {
        size_t mn;
        if (!joule_q_mul((size_t)p->m, (size_t)p->n, &mn))
            c->overflow = true;
        else
            b->acc = joule_q_take(c, mn, sizeof(int32_t));
        b->mult = joule_q_take(c, (size_t)p->n + 1, sizeof(float));
    }
}

static joule_status qmm_prepare(const joule_kernel_ctx *ctx, void **state, size_t *scratch_bytes)
{
    qmm_io io;
    qmm_inputs(ctx->node, ctx->n_in, ctx->in, &io);
    qmm_state *s = calloc(1, sizeof *s);
    if (!s)
        return joule_fail(ctx->err, JOULE_ERR_NOMEM, "node '%s' (%s): out of memory",
                          joule_q_name(ctx->node), ctx->node->op_type);
    joule_status st = joule_q_matmul_init(ctx->node, io.a, io.b, &s->p, ctx->err);
    if (st) {
        free(s);
        return st;
    }
    if (io.b->data && (!io.b_zp || io.b_zp->data)) {
        s->packs = calloc((size_t)s->p.b_batches, sizeof *s->packs);
        int32_t *zp = malloc(((size_t)s->p.n + 1) * sizeof *zp);
        if (!s->packs || !zp) {
            free(zp);
            joule_q_matmul_destroy(s);
            return joule_fail(ctx->err, JOULE_ERR_NOMEM, "node '%s' (%s): out of memory",
                              joule_q_name(ctx->node), ctx->node->op_type);
        }
        for (int64_t i = 0; i < s->p.b_batches && !st; i++)
            st = pack_b(&io, &s->p, i, zp, &s->packs[i], ctx->err);
        free(zp);
        if (st) {
            joule_q_matmul_destroy(s);
            return st;
        }
    }
    s->gemm_scratch =
        joule_qgemm_scratch_bytes_for(JOULE_QGEMM_AUTO, s->p.m, s->p.k, s->p.n, ctx->threads);
    joule_q_carver c = {0};
    qmm_bufs b;
    qmm_carve(&c, &io, &s->p, s->gemm_scratch, &b);
    if (s->gemm_scratch == 0 || c.overflow) {
        joule_q_matmul_destroy(s);
        return joule_fail(ctx->err, JOULE_ERR_NOMEM, "node '%s' (%s): scratch size overflows",
                          joule_q_name(ctx->node), ctx->node->op_type);
    }
    s->scratch_bytes = c.used;
    *scratch_bytes = c.used;
    *state = s;
    return JOULE_OK;
}

joule_status joule_q_matmul_integer_prepare(const joule_kernel_ctx *ctx, void **state,
                                            size_t *scratch_bytes)
{
    return qmm_prepare(ctx, state, scratch_bytes);
}

joule_status joule_q_qlinear_matmul_prepare(const joule_kernel_ctx *ctx, void **state,
                                            size_t *scratch_bytes)
{
    return qmm_prepare(ctx, state, scratch_bytes);
}

static joule_status qmm_run(const joule_kernel_ctx *ctx)
{
    qmm_io io;
    qmm_inputs(ctx->node, ctx->n_in, ctx->in, &io);
    const qmm_state *s = ctx->state;
    const joule_q_matmul *p = &s->p;
    joule_status st = qmm_check_out(ctx, &io, p);
    if (st)
        return st;
    joule_q_carver c = {.base = ctx->scratch};
    qmm_bufs b;
    qmm_carve(&c, &io, p, s->gemm_scratch, &b);
    joule_view *y = ctx->out[0];
    if (io.a_zp)
        for (size_t i = 0; i < io.a_zp->count; i++)
            b.a_zp[i] = joule_q_int_at(io.a_zp, i);
    joule_q_emit e = {.dtype = y->dtype, .mult = b.mult};
    float ys = 1.0f;
    bool a_per_row = io.qlinear && io.a_scale->count != 1;
    if (io.qlinear) {
        joule_q_range(y->dtype, &e.lo, &e.hi);
        e.zp = joule_q_int_at(io.y_zp, 0);
        ys = joule_q_scale_at(io.y_scale, 0);
    }
    const size_t a_mat_bytes = (size_t)(p->m * p->k), y_mat = (size_t)(p->m * p->n);
    const size_t y_esize = y->dtype == JOULE_I32 ? 4 : 1;
    for (int64_t bi = 0; bi < p->batches && !st; bi++) {
        int64_t am, bm;
        joule_q_matmul_batch(p, bi, &am, &bm);
        joule_qgemm_packed *owned = NULL;
        const joule_qgemm_packed *pb;
        if (s->packs) {
            pb = s->packs[bm];
        } else {
            if ((st = pack_b(&io, p, bm, b.b_zp, &owned, ctx->err)))
                break;
            pb = owned;
        }
        int32_t *acc = io.qlinear ? b.acc : (int32_t *)y->data + (size_t)bi * y_mat;
        joule_qgemm_args args = {
            .M = p->m,
            .a = (const char *)io.a->data + (size_t)am * a_mat_bytes,
            .a_signed = io.a->dtype == JOULE_I8,
            .lda = p->k,
            .a_zp = io.a_zp ? b.a_zp + param_index(io.a_zp->count, p->m, am, 0) : NULL,
            .a_zp_per_row = io.a_zp && io.a_zp->count != 1,
            .c = acc,
            .ldc = p->n,
            .threads = ctx->threads,
            .scratch = b.gemm,
            .scratch_bytes = s->gemm_scratch,
        };
        st = joule_qgemm(&args, pb, ctx->err);
        joule_qgemm_packed_free(owned);
        if (st || !io.qlinear)
            continue;
        char *yb = (char *)y->data + (size_t)bi * y_mat * y_esize;
        if (!a_per_row) {
            float as = joule_q_scale_at(io.a_scale, 0);
            for (int64_t n = 0; n < p->n; n++)
                b.mult[n] = joule_q_mult(
                    as, joule_q_scale_at(io.b_scale, param_index(io.b_scale->count, p->n, bm, n)),
                    ys);
            joule_q_emit_block(&e, acc, p->n, p->m, p->n, 0, yb, p->n, 1);
        } else {
            for (int64_t m = 0; m < p->m; m++) {
                float as = joule_q_scale_at(io.a_scale,
                                            param_index(io.a_scale->count, p->m, am, m));
                for (int64_t n = 0; n < p->n; n++)
                    b.mult[n] = joule_q_mult(as,
                                             joule_q_scale_at(io.b_scale,
                                                              param_index(io.b_scale->count,
                                                                          p->n, bm, n)),
                                             ys);
                joule_q_emit_block(&e, acc + m * p->n, p->n, 1, p->n, 0,
                                   yb + (size_t)(m * p->n), p->n, 1);
            }
        }
    }
    return st;
}

joule_status joule_q_matmul_integer_run(const joule_kernel_ctx *ctx)
{
    return qmm_run(ctx);
}

joule_status joule_q_qlinear_matmul_run(const joule_kernel_ctx *ctx)
{
    return qmm_run(ctx);
}

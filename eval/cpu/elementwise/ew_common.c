/* eval/cpu/elementwise/ew_common.c: the runners every elementwise op goes through (ew.h): thread
 * splitting, unary and broadcasting binary application with float16/bfloat16 converted through
 * float32 in blocks, output checks, and the opset < 7 `broadcast`/`axis` attributes. */
#include "ew.h"


const char *ew_who(const joule_node *node)
{
    if (!node)
        return "elementwise";
    return node->name && node->name[0] ? node->name : node->op_type;
}

bool ew_spec_has(const ew_spec *s, joule_dtype t)
{
    if ((unsigned)t >= JOULE_DTYPE_COUNT)
        return false;
    if (s->un[t] || s->bin[t])
        return true;
    return ew_is_half(t) && s->half_via_f32 && (s->un[JOULE_F32] || s->bin[JOULE_F32]);
}

void ew_parallel(int threads, size_t n, size_t grain, ew_range_fn fn, void *arg)
{
    if (grain == 0)
        grain = EW_GRAIN_CHEAP;
    size_t parts = n / grain;
#if HAVE_OPENMP
    if (threads > 1 && parts >= 2) {
        int t = parts < (size_t)threads ? (int)parts : threads;
        size_t q = n / (size_t)t, r = n % (size_t)t;
#pragma omp parallel for num_threads(t) schedule(static)
        for (int k = 0; k < t; k++) {
            size_t uk = (size_t)k;
            size_t lo = q * uk + (uk < r ? uk : r);
            size_t hi = k + 1 == t ? n : q * (uk + 1) + (uk + 1 < r ? uk + 1 : r);
            /* start every range but the first on a 64-byte boundary of float data */
            lo = k == 0 ? 0 : lo & ~(size_t)15;
            hi = k + 1 == t ? n : hi & ~(size_t)15;
            if (lo < hi)
                fn(arg, lo, hi);
        }
        return;
    }
#else
    (void)threads;
    (void)parts;
#endif
    fn(arg, 0, n);
}

EW_CLONES void ew_half_to_f32(joule_dtype t, float *dst, const void *src, size_t n)
{
    const uint16_t *s = src;
    if (t == JOULE_F16) {
        EW_SIMD for (size_t i = 0; i < n; i++)
            dst[i] = ew_h2f(s[i]);
    } else {
        EW_SIMD for (size_t i = 0; i < n; i++)
            dst[i] = ew_b2f(s[i]);
    }
}

EW_CLONES void ew_f32_to_half(joule_dtype t, void *dst, const float *src, size_t n)
{
    uint16_t *d = dst;
    if (t == JOULE_F16) {
        EW_SIMD for (size_t i = 0; i < n; i++)
            d[i] = ew_f2h(src[i]);
    } else {
        EW_SIMD for (size_t i = 0; i < n; i++)
            d[i] = ew_f2b(src[i]);
    }
}

double ew_get_f64(joule_dtype t, const void *data, size_t i)
{
    switch (t) {
    case JOULE_F32: return ((const float *)data)[i];
    case JOULE_F64: return ((const double *)data)[i];
    case JOULE_F16: return joule_f16_to_f32(((const uint16_t *)data)[i]);
    case JOULE_BF16: return joule_bf16_to_f32(((const uint16_t *)data)[i]);
    case JOULE_I8: return ((const int8_t *)data)[i];
    case JOULE_U8: return ((const uint8_t *)data)[i];
    case JOULE_I16: return ((const int16_t *)data)[i];
    case JOULE_U16: return ((const uint16_t *)data)[i];
    case JOULE_I32: return ((const int32_t *)data)[i];
    case JOULE_U32: return ((const uint32_t *)data)[i];
    case JOULE_I64: return (double)((const int64_t *)data)[i];
    case JOULE_U64: return (double)((const uint64_t *)data)[i];
    case JOULE_BOOL: return ((const uint8_t *)data)[i] != 0;
    default: return 0;
    }
}

joule_status ew_check_out(const joule_kernel_ctx *c, int i, joule_dtype dt, size_t count)
{
    if (i >= c->n_out || !c->out[i])
        return joule_fail(c->err, JOULE_ERR_INVALID, "%s (%s): output %d missing", ew_who(c->node),
                          c->node ? c->node->op_type : "?", i);
    const joule_view *o = c->out[i];
    if (o->dtype != dt)
        return joule_fail(c->err, JOULE_ERR_INVALID, "%s (%s): output %d is %s, expected %s",
                          ew_who(c->node), c->node ? c->node->op_type : "?", i,
                          joule_dtype_name(o->dtype), joule_dtype_name(dt));
    if (o->count != count)
        return joule_fail(c->err, JOULE_ERR_INVALID,
                          "%s (%s): output %d has %zu elements, expected %zu", ew_who(c->node),
                          c->node ? c->node->op_type : "?", i, o->count, count);
    if (count && !o->data)
        return joule_fail(c->err, JOULE_ERR_INVALID, "%s (%s): output %d has no buffer",
                          ew_who(c->node), c->node ? c->node->op_type : "?", i);
    return JOULE_OK;
}

joule_status ew_check_out_shape(const joule_kernel_ctx *c, int i, joule_dtype dt, int rank,
                                const int64_t *dims)
{
    size_t count;
    if (!joule_dims_count(rank, dims, &count))
        return joule_fail(c->err, JOULE_ERR_INVALID, "%s (%s): bad output shape", ew_who(c->node),
                          c->node ? c->node->op_type : "?");
    joule_status st = ew_check_out(c, i, dt, count);
    if (st != JOULE_OK)
        return st;
    const joule_view *o = c->out[i];
    bool same = o->rank == rank;
    for (int d = 0; same && d < rank; d++)
        same = o->dims[d] == dims[d];
    if (!same)
        return joule_fail(c->err, JOULE_ERR_INVALID,
                          "%s (%s): output %d shape differs from the broadcast of the inputs",
                          ew_who(c->node), c->node ? c->node->op_type : "?", i);
    return JOULE_OK;
}

/* ---- unary ---- */

typedef struct un_job {
    ew_un_fn fn;
    const ew_par *p;
    joule_dtype xt, ot;
    const char *x;
    char *o;
    size_t xsz, osz;
    bool cin, cout;
} un_job;

static void un_range(void *arg, size_t lo, size_t hi)
{
    const un_job *j = arg;
    if (!j->cin && !j->cout) {
        j->fn(j->o + lo * j->osz, j->x + lo * j->xsz, hi - lo, j->p);
        return;
    }
    float xb[EW_BLOCK], ob[EW_BLOCK];
    for (size_t i = lo; i < hi;) {
        size_t m = hi - i < EW_BLOCK ? hi - i : EW_BLOCK;
        const void *xp = j->x + i * j->xsz;
        if (j->cin) {
            ew_half_to_f32(j->xt, xb, xp, m);
            xp = xb;
        }
        void *op = j->cout ? (void *)ob : (void *)(j->o + i * j->osz);
        j->fn(op, xp, m, j->p);
        if (j->cout)
            ew_f32_to_half(j->ot, j->o + i * j->osz, ob, m);
        i += m;
    }
}

joule_status ew_unary_apply(const ew_spec *s, const ew_par *p, const joule_view *x,
                            const joule_view *o, int threads, const joule_node *node,
                            joule_error *err)
{
    if (!ew_spec_has(s, x->dtype))
        return joule_fail(err, JOULE_ERR_UNSUPPORTED, "%s (%s): %s input not supported",
                          ew_who(node), s->name, joule_dtype_name(x->dtype));
    if (o->count != x->count)
        return joule_fail(err, JOULE_ERR_INVALID, "%s (%s): output has %zu elements, input %zu",
                          ew_who(node), s->name, o->count, x->count);
    if (x->count == 0)
        return JOULE_OK;
    if (!x->data || !o->data)
        return joule_fail(err, JOULE_ERR_INVALID, "%s (%s): missing data", ew_who(node), s->name);
    un_job j = {.p = p, .xt = x->dtype, .ot = o->dtype, .x = x->data, .o = o->data};
    j.xsz = joule_dtype_bytes(x->dtype, 1);
    j.osz = joule_dtype_bytes(o->dtype, 1);
    if (s->un[x->dtype]) {
        j.fn = s->un[x->dtype];
    } else { /* a half type through float32 */
        j.fn = s->un[JOULE_F32];
        j.cin = true;
    }
    /* a float32 kernel may also write a half output */
    if (j.fn == s->un[JOULE_F32] && s->half_via_f32 && !s->bool_out)
        j.cout = ew_is_half(o->dtype);
    joule_dtype want = s->bool_out ? JOULE_BOOL : j.cin ? JOULE_F32 : x->dtype;
    if (!j.cout && o->dtype != want)
        return joule_fail(err, JOULE_ERR_INVALID, "%s (%s): output is %s for a %s input",
                          ew_who(node), s->name, joule_dtype_name(o->dtype),
                          joule_dtype_name(x->dtype));
    ew_parallel(threads, x->count, s->grain, un_range, &j);
    return JOULE_OK;
}

bool ew_unary_supports(const ew_spec *s, int n_in, const joule_view *const *in)
{
    return n_in >= 1 && in[0] && ew_spec_has(s, in[0]->dtype);
}

joule_status ew_unary_run(const ew_spec *s, const ew_par *p, const joule_kernel_ctx *c)
{
    if (c->n_in < 1 || !c->in[0])
        return joule_fail(c->err, JOULE_ERR_INVALID, "%s (%s): missing input", ew_who(c->node),
                          s->name);
    const joule_view *x = c->in[0];
    joule_status st = ew_check_out(c, 0, s->bool_out ? JOULE_BOOL : x->dtype, x->count);
    if (st != JOULE_OK)
        return st;
    static const ew_par none;
    return ew_unary_apply(s, p ? p : &none, x, c->out[0], c->threads, c->node, c->err);
}

/* ---- binary ---- */

typedef struct bin_job {
    ew_bin_fn fn;
    ew_par p;
    joule_bcast bc;
    joule_dtype at, bt, ot;
    const char *a, *b;
    char *o;
    size_t asz, bsz, osz;
    bool ca, cb, co;
    bool fill; /* both inputs broadcast along the row: compute one element, copy it */
    int mode;
} bin_job;

/* One run of n output elements with conversions through float32 blocks. */
static void bin_row_conv(const bin_job *j, char *o, const char *a, const char *b, size_t n)
{
    float ab[EW_BLOCK], bb[EW_BLOCK], ob[EW_BLOCK];
    bool av = j->mode != EW_SV, bv = j->mode != EW_VS;
    if (j->ca && !av)
        ew_half_to_f32(j->at, ab, a, 1);
    if (j->cb && !bv)
        ew_half_to_f32(j->bt, bb, b, 1);
    for (size_t i = 0; i < n;) {
        size_t m = n - i < EW_BLOCK ? n - i : EW_BLOCK;
        const void *ap = av ? a + i * j->asz : a;
        const void *bp = bv ? b + i * j->bsz : b;
        if (j->ca) {
            if (av)
                ew_half_to_f32(j->at, ab, ap, m);
            ap = ab;
        }
        if (j->cb) {
            if (bv)
                ew_half_to_f32(j->bt, bb, bp, m);
            bp = bb;
        }
        void *op = j->co ? (void *)ob : (void *)(o + i * j->osz);
        j->fn(op, ap, bp, m, j->mode, &j->p);
        if (j->co)
            ew_f32_to_half(j->ot, o + i * j->osz, ob, m);
        i += m;
    }
}

static void bin_range(void *arg, size_t lo, size_t hi)
{
    const bin_job *j = arg;
    const joule_bcast *bc = &j->bc;
    size_t inner = bc->inner;
    size_t col = lo % inner;
    joule_bcast_iter it;
    joule_bcast_seek(bc, &it, lo / inner);
    bool conv = j->ca || j->cb || j->co;
    while (lo < hi) {
        size_t n = inner - col < hi - lo ? inner - col : hi - lo;
        const char *ap = j->a + (it.off[0] + col * bc->step[0]) * j->asz;
        const char *bp = j->b + (it.off[1] + col * bc->step[1]) * j->bsz;
        char *op = j->o + lo * j->osz;
        size_t m = j->fill ? 1 : n;
        if (conv)
            bin_row_conv(j, op, ap, bp, m);
        else
            j->fn(op, ap, bp, m, j->mode, &j->p);
        for (size_t k = m; k < n; k++)
            memcpy(op + k * j->osz, op, j->osz);
        lo += n;
        col = 0;
        if (lo < hi)
            joule_bcast_next(bc, &it);
    }
}

joule_status ew_binary_apply(const ew_spec *s, const ew_par *p, const joule_view *a,
                             const joule_view *b, const joule_view *o, int threads,
                             const joule_node *node, joule_error *err)
{
    if (!ew_spec_has(s, a->dtype))
        return joule_fail(err, JOULE_ERR_UNSUPPORTED, "%s (%s): %s input not supported",
                          ew_who(node), s->name, joule_dtype_name(a->dtype));
    bin_job j = {.at = a->dtype, .bt = b->dtype, .ot = o->dtype, .a = a->data, .b = b->data,
                 .o = o->data};
    if (p)
        j.p = *p;
    const joule_view *in[2] = {a, b};
    joule_status st = joule_bcast_init_views(&j.bc, o, 2, in, ew_who(node), err);
    if (st != JOULE_OK)
        return st;
    if (j.bc.count == 0)
        return JOULE_OK;
    if (!a->data || !b->data || !o->data)
        return joule_fail(err, JOULE_ERR_INVALID, "%s (%s): missing data", ew_who(node), s->name);
    j.asz = joule_dtype_bytes(a->dtype, 1);
    j.bsz = joule_dtype_bytes(b->dtype, 1);
    j.osz = joule_dtype_bytes(o->dtype, 1);
    j.p.bdt = b->dtype;
    if (s->bin[a->dtype]) {
        j.fn = s->bin[a->dtype];
    } else { /* a half type through float32 */
        j.fn = s->bin[JOULE_F32];
        j.ca = true;
    }
    /* with a float32 kernel, any half operand and a half output are converted */
    if (j.fn == s->bin[JOULE_F32] && s->half_via_f32) {
        j.cb = ew_is_half(b->dtype);
        j.co = ew_is_half(o->dtype) && !s->bool_out;
        if (j.cb)
            j.p.bdt = JOULE_F32;
    }
    joule_dtype want = s->bool_out ? JOULE_BOOL : j.ca ? JOULE_F32 : a->dtype;
    if (!j.co && o->dtype != want)
        return joule_fail(err, JOULE_ERR_INVALID, "%s (%s): output is %s for a %s input",
                          ew_who(node), s->name, joule_dtype_name(o->dtype),
                          joule_dtype_name(a->dtype));
    bool sa = j.bc.step[0], sb = j.bc.step[1];
    j.mode = (!sa && sb) ? EW_SV : (sa && !sb) ? EW_VS : EW_VV;
    j.fill = !sa && !sb && j.bc.inner > 1;
    ew_parallel(threads, j.bc.count, s->grain, bin_range, &j);
    return JOULE_OK;
}

bool ew_binary_supports(const ew_spec *s, int n_in, const joule_view *const *in)
{
    return n_in == 2 && in[0] && in[1] && in[0]->dtype == in[1]->dtype &&
           ew_spec_has(s, in[0]->dtype);
}

joule_status ew_binary_run(const ew_spec *s, const ew_par *p, const joule_kernel_ctx *c)
{
    if (c->n_in < 2 || !c->in[0] || !c->in[1])
        return joule_fail(c->err, JOULE_ERR_INVALID, "%s (%s): needs two inputs", ew_who(c->node),
                          s->name);
    const joule_view *a = c->in[0], *b = c->in[1];
    joule_view legacy;
    if (c->opset < 7 && c->node && joule_attr_int(c->node, "broadcast", 0) != 0) {
        /* opset < 7: b's dims line up with a's starting at `axis` (default: trailing) */
        int64_t axis = joule_attr_int(c->node, "axis", a->rank - b->rank);
        if (axis < 0)
            axis += a->rank;
        if (axis < 0 || axis + b->rank > a->rank)
            return joule_fail(c->err, JOULE_ERR_INVALID,
                              "%s (%s): legacy broadcast axis %lld does not fit ranks %d, %d",
                              ew_who(c->node), s->name, (long long)axis, a->rank, b->rank);
        legacy = *b;
        legacy.rank = a->rank;
        for (int d = 0; d < a->rank; d++) {
            int pos = d - (int)axis;
            legacy.dims[d] = pos >= 0 && pos < b->rank ? b->dims[pos] : 1;
        }
        b = &legacy;
    }
    int orank;
    int64_t odims[JOULE_MAX_RANK];
    int ranks[2] = {a->rank, b->rank};
    const int64_t *dims[2] = {a->dims, b->dims};
    if (!joule_bcast_shape(2, ranks, dims, &orank, odims))
        return joule_fail(c->err, JOULE_ERR_INVALID, "%s (%s): input shapes do not broadcast",
                          ew_who(c->node), s->name);
    joule_status st = ew_check_out_shape(c, 0, s->bool_out ? JOULE_BOOL : a->dtype, orank, odims);
    if (st != JOULE_OK)
        return st;
    return ew_binary_apply(s, p, a, b, c->out[0], c->threads, c->node, c->err);
}

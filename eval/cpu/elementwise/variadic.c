/* eval/cpu/elementwise/variadic.c: Min Max (every numeric type) and Sum Mean (float types) over
 * one or more inputs with broadcasting. The output accumulates in place: out = in0 op in1, then
 * out = out op in_k. float16/bfloat16 Sum and Mean accumulate in a float32 scratch buffer (asked
 * for by prepare) and round once at the end. Min and Max propagate nan like NumPy. */
#include "ew.h"

#include <stdlib.h>


/* ---- row functions ---- */
#define MINMAX_INT(P, dt, sfx, T, U, OP)                                                           \
    EW_ROW P##_##sfx(EW_BIN_ARGS)                                                             \
    {                                                                                              \
        (void)p;                                                                                   \
        EW_ZIP(T, T, T, a OP b ? a : b);                                                           \
    }
#define MIN_INT(P, dt, sfx, T, U) MINMAX_INT(P, dt, sfx, T, U, <)
#define MAX_INT(P, dt, sfx, T, U) MINMAX_INT(P, dt, sfx, T, U, >)
EW_INTS(MIN_INT, min)
EW_INTS(MAX_INT, max)
/* a nan in either operand gives nan */
EW_ROW min_f32(EW_BIN_ARGS) { (void)p; EW_ZIP(float, float, float, a < b || a != a ? a : b); }
EW_ROW min_f64(EW_BIN_ARGS) { (void)p; EW_ZIP(double, double, double, a < b || a != a ? a : b); }
EW_ROW max_f32(EW_BIN_ARGS) { (void)p; EW_ZIP(float, float, float, a > b || a != a ? a : b); }
EW_ROW max_f64(EW_BIN_ARGS) { (void)p; EW_ZIP(double, double, double, a > b || a != a ? a : b); }
EW_ROW sum_f32(EW_BIN_ARGS) { (void)p; EW_ZIP(float, float, float, a + b); }
EW_ROW sum_f64(EW_BIN_ARGS) { (void)p; EW_ZIP(double, double, double, a + b); }
EW_ROW div_f32(EW_UN_ARGS)
{
    const float d = p->alpha;
    EW_MAP(float, float, x / d);
}
EW_ROW div_f64(EW_UN_ARGS)
{
    const double d = p->alpha;
    EW_MAP(double, double, x / d);
}

static const ew_spec min_spec = {
    .name = "Min", .bin = {EW_NUMS(EW_ENTRY, min)}, .half_via_f32 = true};
static const ew_spec max_spec = {
    .name = "Max", .bin = {EW_NUMS(EW_ENTRY, max)}, .half_via_f32 = true};
static const ew_spec sum_spec = {
    .name = "Sum", .bin = {EW_FLOATS(EW_ENTRY, sum)}, .half_via_f32 = true};
/* out = acc / n (Mean's last step, and with n = 1 the float32 -> half rounding of Sum) */
static const ew_spec scale_spec = {
    .name = "Mean", .un = {EW_FLOATS(EW_ENTRY, div)}, .half_via_f32 = true};

/* ---- the shared driver ---- */

/* The broadcast shape of all inputs; fails naming the node. */
static joule_status out_shape(const joule_kernel_ctx *c, const char *op, int *rank,
                              int64_t *dims, size_t *count)
{
    int r = 0;
    int64_t d[JOULE_MAX_RANK];
    for (int k = 0; k < c->n_in; k++) {
        const joule_view *v = c->in[k];
        if (!v || v->dtype != c->in[0]->dtype)
            return joule_fail(c->err, JOULE_ERR_INVALID, "%s (%s): input %d missing or of another type",
                              ew_who(c->node), op, k);
        int ranks[2] = {r, v->rank};
        const int64_t *dd[2] = {d, v->dims};
        int64_t nd[JOULE_MAX_RANK];
        if (!joule_bcast_shape(k == 0 ? 1 : 2, k == 0 ? &ranks[1] : ranks,
                               k == 0 ? &dd[1] : dd, &r, nd))
            return joule_fail(c->err, JOULE_ERR_INVALID, "%s (%s): input %d does not broadcast",
                              ew_who(c->node), op, k);
        memcpy(d, nd, sizeof(nd));
    }
    if (!joule_dims_count(r, d, count))
        return joule_fail(c->err, JOULE_ERR_INVALID, "%s (%s): bad output shape", ew_who(c->node),
                          op);
    *rank = r;
    memcpy(dims, d, sizeof(d));
    return JOULE_OK;
}

static bool variadic_supports(const ew_spec *s, int n_in, const joule_view *const *in)
{
    if (n_in < 1 || !in[0] || !ew_spec_has(s, in[0]->dtype))
        return false;
    for (int k = 1; k < n_in; k++)
        if (!in[k] || in[k]->dtype != in[0]->dtype)
            return false;
    return true;
}

/* Whether the op accumulates through a float32 scratch buffer. */
static bool needs_scratch(const ew_spec *s, int n_in, joule_dtype t)
{
    return s == &sum_spec && n_in >= 2 && ew_is_half(t);
}

static joule_status variadic_prepare(const ew_spec *s, const joule_kernel_ctx *c,
                                     size_t *scratch_bytes)
{
    *scratch_bytes = 0;
    if (c->n_in < 1 || !c->in[0] || !needs_scratch(s, c->n_in, c->in[0]->dtype))
        return JOULE_OK;
    int rank;
    int64_t dims[JOULE_MAX_RANK];
    size_t count;
    joule_status st = out_shape(c, s->name, &rank, dims, &count);
    if (st != JOULE_OK)
        return st;
    if (count > SIZE_MAX / sizeof(float))
        return joule_fail(c->err, JOULE_ERR_NOMEM, "%s (%s): output too large", ew_who(c->node),
                          s->name);
    *scratch_bytes = count * sizeof(float);
    return JOULE_OK;
}

static joule_status variadic_run(const ew_spec *s, bool mean, const joule_kernel_ctx *c)
{
    const char *op = mean ? "Mean" : s->name;
    if (c->n_in < 1)
        return joule_fail(c->err, JOULE_ERR_INVALID, "%s (%s): needs an input", ew_who(c->node), op);
    int rank;
    int64_t dims[JOULE_MAX_RANK];
    size_t count;
    joule_status st = out_shape(c, op, &rank, dims, &count);
    if (st != JOULE_OK)
        return st;
    joule_dtype t = c->in[0]->dtype;
    st = ew_check_out_shape(c, 0, t, rank, dims);
    if (st != JOULE_OK || count == 0)
        return st;
    const joule_view *o = c->out[0];
    if (c->n_in == 1) { /* the output has the input's shape */
        if (!c->in[0]->data)
            return joule_fail(c->err, JOULE_ERR_INVALID, "%s (%s): missing data", ew_who(c->node), op);
        if (o->data != c->in[0]->data)
            memcpy(o->data, c->in[0]->data, joule_dtype_bytes(t, count));
        return JOULE_OK;
    }
    /* accumulator: the output, or float32 scratch for half Sum/Mean */
    joule_view acc = *o;
    void *heap = NULL;
    if (needs_scratch(s, c->n_in, t)) {
        acc.dtype = JOULE_F32;
        acc.data = c->scratch;
        if (!acc.data) { /* prepare was not run */
            if (count > SIZE_MAX / sizeof(float) || !(heap = malloc(count * sizeof(float))))
                return joule_fail(c->err, JOULE_ERR_NOMEM, "%s (%s): no memory for %zu floats",
                                  ew_who(c->node), op, count);
            acc.data = heap;
        }
    }
    st = ew_binary_apply(s, NULL, c->in[0], c->in[1], &acc, c->threads, c->node, c->err);
    for (int k = 2; k < c->n_in && st == JOULE_OK; k++)
        st = ew_binary_apply(s, NULL, &acc, c->in[k], &acc, c->threads, c->node, c->err);
    if (st == JOULE_OK && (mean || acc.data != o->data)) {
        ew_par par = {.alpha = mean ? (float)c->n_in : 1.0f};
        st = ew_unary_apply(&scale_spec, &par, &acc, o, c->threads, c->node, c->err);
    }
    free(heap);
    return st;
}

#define VARIADIC_KERNEL(op, spec, mean)                                                            \
    bool ew_##op##_supports(const joule_node *node, int64_t opset, int n_in,                       \
                            const joule_view *const *in)                                           \
    {                                                                                              \
        (void)node;                                                                                \
        (void)opset;                                                                               \
        return variadic_supports(&(spec), n_in, in);                                               \
    }                                                                                              \
    joule_status ew_##op##_run(const joule_kernel_ctx *c) { return variadic_run(&(spec), mean, c); }

VARIADIC_KERNEL(min, min_spec, false)
VARIADIC_KERNEL(max, max_spec, false)
VARIADIC_KERNEL(sum, sum_spec, false)
VARIADIC_KERNEL(mean, sum_spec, true)

joule_status ew_sum_prepare(const joule_kernel_ctx *c, void **state, size_t *scratch_bytes)
{
    *state = NULL;
    return variadic_prepare(&sum_spec, c, scratch_bytes);
}

joule_status ew_mean_prepare(const joule_kernel_ctx *c, void **state, size_t *scratch_bytes)
{
    *state = NULL;
    return variadic_prepare(&sum_spec, c, scratch_bytes);
}

/* tests/unit/test_kernels_elementwise.c: the cpu elementwise kernels (eval/cpu/elementwise/),
 * called directly through their supports/prepare/run, against values computed here in double
 * precision (or exact integer arithmetic) with broadcasting done by naive index arithmetic, the
 * broadcasting planner against the same naive indexing on random shapes, the branch-free half
 * converters against joule's reference converters (all 65,536 halves), the vectorised exp/tanh/
 * erf against libm, multi-threaded runs against single-threaded ones, and finally every ONNX
 * backend node test of these ops (model.onnx + .pb tensors) through the kernel alone. */
#include <dirent.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "eval/cpu/broadcast.h"
#include "eval/cpu/elementwise/ew.h"
#include "eval/cpu/elementwise/fastmath.h"
#include "eval/kernel.h"
#include "formats/onnx_internal.h"

/* ---- small utilities ---- */

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rnext(rng *r)
{
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return r->s;
}

/* uniform in [lo, hi) */
static double runi(rng *r, double lo, double hi)
{
    return lo + (hi - lo) * (double)(rnext(r) >> 11) / 9007199254740992.0;
}

static size_t dims_count(int rank, const int64_t *dims)
{
    size_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= (size_t)dims[i];
    return n;
}

/* A view owning a zeroed buffer (free with vfree). */
static joule_view vnew(joule_dtype t, int rank, const int64_t *dims)
{
    joule_view v;
    memset(&v, 0, sizeof v);
    v.dtype = t;
    v.rank = rank;
    for (int i = 0; i < rank; i++)
        v.dims[i] = dims[i];
    v.count = dims_count(rank, dims);
    v.data = calloc(v.count ? v.count : 1, joule_dtype_bytes(t, 1) ? joule_dtype_bytes(t, 1) : 1);
    assert_non_null(v.data);
    return v;
}

static void vfree(joule_view *v)
{
    free(v->data);
    v->data = NULL;
}

/* element i of a numeric view, as double */
static double vget(const joule_view *v, size_t i) { return ew_get_f64(v->dtype, v->data, i); }

/* stores a double into element i, using joule's reference converters for floats */
static void vset(joule_view *v, size_t i, double x)
{
    switch (v->dtype) {
    case JOULE_F32: ((float *)v->data)[i] = (float)x; break;
    case JOULE_F64: ((double *)v->data)[i] = x; break;
    case JOULE_F16: ((uint16_t *)v->data)[i] = joule_f32_to_f16((float)x); break;
    case JOULE_BF16: ((uint16_t *)v->data)[i] = joule_f32_to_bf16((float)x); break;
    case JOULE_BOOL: ((uint8_t *)v->data)[i] = x != 0; break;
    case JOULE_I8: ((int8_t *)v->data)[i] = (int8_t)x; break;
    case JOULE_U8: ((uint8_t *)v->data)[i] = (uint8_t)x; break;
    case JOULE_I16: ((int16_t *)v->data)[i] = (int16_t)x; break;
    case JOULE_U16: ((uint16_t *)v->data)[i] = (uint16_t)x; break;
    case JOULE_I32: ((int32_t *)v->data)[i] = (int32_t)x; break;
    case JOULE_U32: ((uint32_t *)v->data)[i] = (uint32_t)x; break;
    case JOULE_I64: ((int64_t *)v->data)[i] = (int64_t)x; break;
    case JOULE_U64: ((uint64_t *)v->data)[i] = (uint64_t)x; break;
    default: fail_msg("vset: dtype %d", v->dtype);
    }
}

/* integer element i as its two's complement bit pattern, sign- or zero-extended */
static uint64_t iget(const joule_view *v, size_t i)
{
    switch (v->dtype) {
    case JOULE_I8: return (uint64_t)(int64_t)((int8_t *)v->data)[i];
    case JOULE_U8: return ((uint8_t *)v->data)[i];
    case JOULE_I16: return (uint64_t)(int64_t)((int16_t *)v->data)[i];
    case JOULE_U16: return ((uint16_t *)v->data)[i];
    case JOULE_I32: return (uint64_t)(int64_t)((int32_t *)v->data)[i];
    case JOULE_U32: return ((uint32_t *)v->data)[i];
    case JOULE_I64: return (uint64_t)((int64_t *)v->data)[i];
    case JOULE_U64: return ((uint64_t *)v->data)[i];
    case JOULE_BOOL: return ((uint8_t *)v->data)[i];
    default: fail_msg("iget: dtype %d", v->dtype);
    }
    return 0;
}

/* stores the low bits of x (wrapping) */
static void iset(joule_view *v, size_t i, uint64_t x)
{
    switch (v->dtype) {
    case JOULE_I8: case JOULE_U8: case JOULE_BOOL: ((uint8_t *)v->data)[i] = (uint8_t)x; break;
    case JOULE_I16: case JOULE_U16: ((uint16_t *)v->data)[i] = (uint16_t)x; break;
    case JOULE_I32: case JOULE_U32: ((uint32_t *)v->data)[i] = (uint32_t)x; break;
    case JOULE_I64: case JOULE_U64: ((uint64_t *)v->data)[i] = x; break;
    default: fail_msg("iset: dtype %d", v->dtype);
    }
}

/* x reduced to the type's width, sign-extended for signed types */
static uint64_t iwrap(joule_dtype t, uint64_t x)
{
    switch (t) {
    case JOULE_I8: return (uint64_t)(int64_t)(int8_t)(uint8_t)x;
    case JOULE_U8: return (uint8_t)x;
    case JOULE_I16: return (uint64_t)(int64_t)(int16_t)(uint16_t)x;
    case JOULE_U16: return (uint16_t)x;
    case JOULE_I32: return (uint64_t)(int64_t)(int32_t)(uint32_t)x;
    case JOULE_U32: return (uint32_t)x;
    default: return x;
    }
}

static bool is_signed_int(joule_dtype t)
{
    return t == JOULE_I8 || t == JOULE_I16 || t == JOULE_I32 || t == JOULE_I64;
}

/* Flat index into an input of dims id (rank ir) for output element e (NumPy broadcasting),
 * computed independently of eval/cpu/broadcast.h. */
static size_t bidx(size_t e, int orank, const int64_t *od, int irank, const int64_t *id)
{
    size_t idx = 0, stride = 1;
    for (int d = orank - 1; d >= 0; d--) {
        size_t c = e % (size_t)od[d];
        e /= (size_t)od[d];
        int p = d - (orank - irank);
        if (p < 0)
            continue;
        if (id[p] != 1)
            idx += c * stride;
        stride *= (size_t)id[p];
    }
    return idx;
}

/* ---- a node and the kernel that runs it ---- */

typedef struct tnode {
    joule_model *m;
    joule_node *node;
    int64_t opset;
    joule_error err;
} tnode;

static void tn_init(tnode *t, const char *op, int64_t opset, int n_in)
{
    memset(t, 0, sizeof *t);
    t->opset = opset;
    assert_joule_ok(joule_model_new(opset, &t->m, &t->err), &t->err);
    const char *ins[6] = {"a", "b", "c", "d", "e", "f"};
    const char *outs[1] = {"y"};
    assert_true(n_in <= 6);
    assert_joule_ok(joule_node_create(t->m->graph, op, "", "node0", n_in, ins, 1, outs, &t->node,
                                      &t->err),
                    &t->err);
    /* placed in the graph so that the graph frees it */
    assert_joule_ok(joule_graph_insert_before(t->m->graph, t->node, NULL, &t->err), &t->err);
}

static void tn_free(tnode *t) { joule_model_free(t->m); }

static const joule_kernel *find_kernel(const char *op)
{
    for (const joule_kernel *k = joule_cpu_kernels_elementwise; k->op_type; k++)
        if (strcmp(k->op_type, op) == 0)
            return k;
    return NULL;
}

/* supports, prepare (scratch allocated here as the engine would), run. */
static joule_status run_node(const joule_node *node, int64_t opset, int n_in,
                             const joule_view *const *in, joule_view *out, int threads,
                             joule_error *err)
{
    const joule_kernel *k = find_kernel(node->op_type);
    if (!k)
        return joule_fail(err, JOULE_ERR_UNSUPPORTED, "no kernel for %s", node->op_type);
    if (!k->supports(node, opset, n_in, in))
        return joule_fail(err, JOULE_ERR_UNSUPPORTED, "%s: not supported", node->op_type);
    joule_view *outs[1] = {out};
    joule_kernel_ctx c = {.node = node, .opset = opset, .n_in = n_in, .in = in, .n_out = 1,
                          .out = outs, .threads = threads, .err = err};
    void *state = NULL, *scratch = NULL;
    size_t scratch_bytes = 0;
    if (k->prepare) {
        joule_status st = k->prepare(&c, &state, &scratch_bytes);
        if (st != JOULE_OK)
            return st;
        if (scratch_bytes) {
            scratch = malloc(scratch_bytes);
            assert_non_null(scratch);
        }
    }
    c.state = state;
    c.scratch = scratch;
    joule_status st = k->run(&c);
    free(scratch);
    if (k->destroy)
        k->destroy(state);
    return st;
}

/* Runs op on n_in inputs into out with a fresh node (no attributes). */
static joule_status run_op(const char *op, int64_t opset, int n_in, const joule_view *const *in,
                           joule_view *out, int threads)
{
    tnode t;
    tn_init(&t, op, opset, n_in);
    joule_status st = run_node(t.node, opset, n_in, in, out, threads, &t.err);
    if (st != JOULE_OK)
        print_message("%s: %s\n", op, t.err.msg);
    tn_free(&t);
    return st;
}

/* |got - want| within rel * |want| + abs, nan matching nan, infinities equal */
static bool close_to(double got, double want, double rel, double abs_tol)
{
    if (isnan(want))
        return isnan(got);
    if (isinf(want))
        return got == want;
    return fabs(got - want) <= rel * fabs(want) + abs_tol;
}

/* ---- the table ---- */

static void test_table(void **state)
{
    (void)state;
    static const char *const want[] = {
        "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Exp", "Log", "Neg", "Abs", "Reciprocal",
        "Floor", "Ceil", "Round", "Sign", "Erf", "Tanh", "Sigmoid", "Relu", "LeakyRelu", "PRelu",
        "Elu", "Selu", "Softplus", "HardSigmoid", "HardSwish", "Gelu", "Clip", "Min", "Max", "Sum",
        "Mean", "Where", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Not", "And",
        "Or", "Xor", "Sin", "Cos", "Cast", "CastLike", "Mod", "BitShift", "Tan", "Asin", "Acos",
        "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "IsNaN", "IsInf", "Softsign",
        "ThresholdedRelu", "Shrink", "Celu"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!find_kernel(want[i]))
            fail_msg("no kernel for %s", want[i]);
    size_t n = 0;
    for (const joule_kernel *k = joule_cpu_kernels_elementwise; k->op_type; k++, n++) {
        assert_non_null(k->name);
        assert_non_null(k->supports);
        assert_non_null(k->run);
        assert_string_equal(k->domain, "");
        assert_int_equal(strncmp(k->name, "cpu.elementwise.", 16), 0);
        for (const joule_kernel *q = joule_cpu_kernels_elementwise; q != k; q++) {
            assert_string_not_equal(q->op_type, k->op_type);
            assert_string_not_equal(q->name, k->name);
        }
    }
    assert_int_equal(n, sizeof want / sizeof want[0]);
}

/* ---- the broadcasting planner ---- */

static void test_bcast_plan(void **state)
{
    (void)state;
    rng r = {0x9e3779b97f4a7c15ull};
    joule_error err;
    for (int trial = 0; trial < 2000; trial++) {
        int n = 1 + (int)(rnext(&r) % 3);
        int ranks[3];
        int64_t dims[3][JOULE_MAX_RANK];
        int orank = (int)(rnext(&r) % 6);
        int64_t od[JOULE_MAX_RANK] = {0};
        for (int d = 0; d < orank; d++)
            od[d] = (int64_t)(rnext(&r) % 4); /* 0..3: zero-size dims too */
        for (int k = 0; k < n; k++) {
            ranks[k] = orank ? (int)(rnext(&r) % (unsigned)(orank + 1)) : 0;
            for (int p = 0; p < ranks[k]; p++) {
                int64_t o = od[orank - ranks[k] + p];
                dims[k][p] = (rnext(&r) % 3 == 0) ? 1 : o;
            }
        }
        /* the first input carries the full shape, so the output is od */
        ranks[0] = orank;
        memcpy(dims[0], od, sizeof od);
        const int64_t *dp[3] = {dims[0], dims[1], dims[2]};
        int srank;
        int64_t sd[JOULE_MAX_RANK];
        assert_true(joule_bcast_shape(n, ranks, dp, &srank, sd));
        assert_int_equal(srank, orank);
        for (int d = 0; d < orank; d++)
            assert_int_equal(sd[d], od[d]);
        joule_bcast b;
        assert_joule_ok(joule_bcast_init(&b, orank, od, n, ranks, dp, "t", &err), &err);
        size_t count = dims_count(orank, od);
        assert_int_equal(b.count, count);
        if (count == 0) {
            assert_int_equal(b.rows, 0);
            continue;
        }
        assert_int_equal(b.rows * b.inner, count);
        /* walk from row 0 and also seek into random rows */
        joule_bcast_iter it;
        joule_bcast_seek(&b, &it, 0);
        for (size_t row = 0; row < b.rows; row++) {
            if (rnext(&r) % 4 == 0)
                joule_bcast_seek(&b, &it, row);
            for (size_t col = 0; col < b.inner; col++) {
                size_t e = row * b.inner + col;
                for (int k = 0; k < n; k++) {
                    size_t want = bidx(e, orank, od, ranks[k], dims[k]);
                    assert_int_equal(it.off[k] + col * b.step[k], want);
                }
            }
            if (row + 1 < b.rows)
                joule_bcast_next(&b, &it);
        }
    }
    /* incompatible shapes */
    int ranks[2] = {2, 1};
    int64_t a[2] = {2, 3}, c[1] = {4};
    const int64_t *dp[2] = {a, c};
    int orank;
    int64_t od[JOULE_MAX_RANK];
    assert_false(joule_bcast_shape(2, ranks, dp, &orank, od));
    joule_bcast b;
    assert_int_equal(joule_bcast_init(&b, 2, a, 2, ranks, dp, "node7", &err), JOULE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "node7"));
    /* an output larger than every input (Expand-like): the row is all broadcast */
    int64_t big[2] = {5, 3};
    int r1[1] = {1};
    int64_t three[1] = {1};
    const int64_t *dp1[1] = {three};
    assert_joule_ok(joule_bcast_init(&b, 2, big, 1, r1, dp1, "n", &err), &err);
    assert_int_equal(b.rows * b.inner, 15);
    assert_int_equal(b.step[0], 0);
}

/* ---- half conversions ---- */

static void test_half_conversions(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        float want = joule_f16_to_f32((uint16_t)h), got = ew_h2f((uint16_t)h);
        if (isnan(want))
            assert_true(isnan(got));
        else
            assert_int_equal(ew_f2u(got), ew_f2u(want));
        /* and back: every half is exact */
        if (!isnan(want))
            assert_int_equal(ew_f2h(want), h);
        float bw = joule_bf16_to_f32((uint16_t)h), bg = ew_b2f((uint16_t)h);
        if (isnan(bw))
            assert_true(isnan(bg));
        else
            assert_int_equal(ew_f2u(bg), ew_f2u(bw));
    }
    /* rounding of floats: random bit patterns plus ties and boundaries */
    rng r = {12345};
    for (int i = 0; i < 2000000; i++) {
        uint32_t u = (uint32_t)rnext(&r);
        if (i % 4 == 1) /* bias toward half's range */
            u = (u & 0x81ffffffu) | (uint32_t)(0x33 + (rnext(&r) % 0x1c)) << 23;
        if (i % 4 == 2) /* exact ties */
            u &= ~0xfffu, u |= 0x1000u;
        float f = ew_u2f(u);
        uint16_t want = joule_f32_to_f16(f), got = ew_f2h(f);
        if (isnan(f))
            assert_true(isnan(joule_f16_to_f32(got)));
        else if (got != want)
            fail_msg("f2h(%a) = %04x, want %04x", (double)f, got, want);
        uint16_t bwant = joule_f32_to_bf16(f), bgot = ew_f2b(f);
        if (isnan(f))
            assert_true(isnan(joule_bf16_to_f32(bgot)));
        else if (bgot != bwant)
            fail_msg("f2b(%a) = %04x, want %04x", (double)f, bgot, bwant);
    }
    /* blocks */
    float src[100], back[100];
    uint16_t h[100];
    for (int i = 0; i < 100; i++)
        src[i] = (float)(i - 50) * 0.37f;
    ew_f32_to_half(JOULE_F16, h, src, 100);
    ew_half_to_f32(JOULE_F16, back, h, 100);
    for (int i = 0; i < 100; i++)
        assert_float_equal(back[i], joule_f16_to_f32(joule_f32_to_f16(src[i])), 0);
}

/* ---- vectorised math against libm ---- */

static double ulp_err(float got, double want)
{
    if (isnan(want))
        return isnan(got) ? 0 : INFINITY;
    if (isinf((float)want) || isinf(got)) /* beyond FLT_MAX the float result is inf */
        return got == (float)want ? 0 : INFINITY;
    double a = fabs(want);
    /* the spacing of floats around want (subnormals included) */
    int e;
    frexp(a < FLT_MIN ? FLT_MIN : a, &e);
    double ulp = ldexp(1.0, e - 24);
    return fabs((double)got - want) / ulp;
}

static void test_fastmath(void **state)
{
    (void)state;
    double worst[6] = {0};
    for (int i = 0; i <= 2000000; i++) {
        float x = (float)(-110.0 + 200.0 * i / 2000000.0);
        double e = ulp_err(ew_expf(x), exp((double)x));
        if (exp((double)x) < FLT_MIN) /* subnormal results: absolute error */
            e = fabs(ew_expf(x) - exp((double)x)) / ldexp(1.0, -149);
        worst[0] = fmax(worst[0], e);
        float t = (float)(-12.0 + 24.0 * i / 2000000.0);
        worst[1] = fmax(worst[1], ulp_err(ew_tanhf(t), tanh((double)t)));
        worst[2] = fmax(worst[2], ulp_err(ew_sigmoidf(t), 1.0 / (1.0 + exp(-(double)t))));
        float z = (float)(-5.0 + 10.0 * i / 2000000.0);
        worst[3] = fmax(worst[3], ulp_err(ew_erff(z), erf((double)z)));
        float g = (float)(-12.0 + 16.0 * i / 2000000.0);
        double ope = erfc(-(double)g);
        worst[4] = fmax(worst[4], ope < 1e-37 ? 0 : ulp_err(ew_one_plus_erf(g), ope) /
                                                      (fabs(g) > 3.9375f && g < 0 ? 1000.0 : 1.0));
        float m = (float)(-3.0 + 6.0 * i / 2000000.0);
        worst[5] = fmax(worst[5], ulp_err(ew_expm1f(m), expm1((double)m)));
    }
    print_message("max ulp: exp %.2f tanh %.2f sigmoid %.2f erf %.2f 1+erf %.2f expm1 %.2f\n",
                  worst[0], worst[1], worst[2], worst[3], worst[4], worst[5]);
    assert_true(worst[0] <= 2.0);
    assert_true(worst[1] <= 4.0);
    assert_true(worst[2] <= 4.0);
    assert_true(worst[3] <= 4.0);
    /* 1 + erf for x < -0.92 is erfc(|x|) = e^Q, where float rounding of Q (up to -17) costs a
     * relative 3e-6; the asymptotic tail beyond 3.94 is checked 1000x looser (1e-4) */
    assert_true(worst[4] <= 64.0);
    assert_true(worst[5] <= 4.0);
    /* special values */
    assert_true(isnan(ew_expf(NAN)) && isnan(ew_tanhf(NAN)) && isnan(ew_erff(NAN)) &&
                isnan(ew_sigmoidf(NAN)) && isnan(ew_one_plus_erf(NAN)));
    assert_true(ew_expf(INFINITY) == INFINITY && ew_expf(-INFINITY) == 0.0f);
    assert_true(ew_expf(89.0f) == INFINITY && ew_expf(-104.0f) == 0.0f);
    assert_true(ew_tanhf(INFINITY) == 1.0f && ew_tanhf(-INFINITY) == -1.0f);
    assert_true(ew_erff(INFINITY) == 1.0f && ew_erff(-INFINITY) == -1.0f);
    assert_true(ew_sigmoidf(-INFINITY) == 0.0f && ew_sigmoidf(INFINITY) == 1.0f);
    assert_true(ew_one_plus_erf(-INFINITY) == 0.0f && ew_one_plus_erf(INFINITY) == 2.0f);
}

/* ---- binary arithmetic ---- */

typedef struct shape_pair {
    int ra;
    int64_t a[4];
    int rb;
    int64_t b[4];
} shape_pair;

static const shape_pair pairs[] = {
    {3, {2, 3, 4}, 3, {2, 3, 4}}, {3, {2, 3, 4}, 2, {3, 1}},    {1, {1}, 2, {2, 3}},
    {2, {2, 3}, 1, {1}},          {3, {4, 1, 3}, 2, {5, 1}},    {0, {0}, 1, {3}},
    {3, {2, 1, 4}, 3, {1, 3, 1}}, {2, {0, 3}, 1, {3}},          {2, {3, 1}, 2, {1, 5}},
    {4, {2, 3, 4, 5}, 1, {5}},    {4, {2, 3, 4, 5}, 3, {3, 1, 1}}, {1, {7}, 0, {0}},
};

static double ref_binary(const char *op, double a, double b)
{
    if (!strcmp(op, "Add")) return a + b;
    if (!strcmp(op, "Sub")) return a - b;
    if (!strcmp(op, "Mul")) return a * b;
    if (!strcmp(op, "Div")) return a / b;
    if (!strcmp(op, "Pow")) return pow(a, b);
    if (!strcmp(op, "PRelu")) return a < 0 ? a * b : a;
    if (!strcmp(op, "Max")) return a > b || isnan(a) ? a : b;
    if (!strcmp(op, "Min")) return a < b || isnan(a) ? a : b;
    if (!strcmp(op, "Sum")) return a + b;
    if (!strcmp(op, "Mean")) return (a + b) / 2;
    fail_msg("ref_binary %s", op);
    return 0;
}

/* Runs op on random inputs of the given shapes and dtype, checks every element against the
 * double reference within rel (and the output shape), threads 1 and 3 bit-identical. */
static void check_binary(const char *op, joule_dtype t, const shape_pair *sp, double rel, rng *r)
{
    int orank;
    int64_t od[JOULE_MAX_RANK];
    int ranks[2] = {sp->ra, sp->rb};
    const int64_t *dp[2] = {sp->a, sp->b};
    assert_true(joule_bcast_shape(2, ranks, dp, &orank, od));
    joule_view a = vnew(t, sp->ra, sp->a), b = vnew(t, sp->rb, sp->b);
    joule_view o1 = vnew(t, orank, od), o3 = vnew(t, orank, od);
    bool pw = !strcmp(op, "Pow");
    for (size_t i = 0; i < a.count; i++)
        vset(&a, i, pw ? runi(r, 0.1, 3) : runi(r, -5, 5));
    for (size_t i = 0; i < b.count; i++) {
        double v = pw ? runi(r, -3, 3) : runi(r, -5, 5);
        vset(&b, i, fabs(v) < 0.01 ? 0.5 : v);
    }
    const joule_view *in[2] = {&a, &b};
    assert_int_equal(run_op(op, 17, 2, in, &o1, 1), JOULE_OK);
    assert_int_equal(run_op(op, 17, 2, in, &o3, 3), JOULE_OK);
    assert_memory_equal(o1.data, o3.data, joule_dtype_bytes(t, o1.count) + 1 - (o1.count ? 1 : 0));
    for (size_t e = 0; e < o1.count; e++) {
        double x = vget(&a, bidx(e, orank, od, a.rank, a.dims));
        double y = vget(&b, bidx(e, orank, od, b.rank, b.dims));
        double want = ref_binary(op, x, y);
        if (t == JOULE_F32)
            want = (float)want;
        if (t == JOULE_F16)
            want = joule_f16_to_f32(joule_f32_to_f16((float)want));
        if (t == JOULE_BF16)
            want = joule_bf16_to_f32(joule_f32_to_bf16((float)want));
        if (!close_to(vget(&o1, e), want, rel, 1e-300))
            fail_msg("%s %s shape %d/%d e=%zu: %g op %g = %.9g, want %.9g", op,
                     joule_dtype_name(t), sp->ra, sp->rb, e, x, y, vget(&o1, e), want);
    }
    vfree(&a);
    vfree(&b);
    vfree(&o1);
    vfree(&o3);
}

static void test_binary_float(void **state)
{
    (void)state;
    rng r = {77};
    const char *ops[] = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean"};
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++)
        for (size_t p = 0; p < sizeof pairs / sizeof pairs[0]; p++) {
            check_binary(ops[o], JOULE_F32, &pairs[p], 3e-7, &r);
            check_binary(ops[o], JOULE_F64, &pairs[p], 1e-15, &r);
            /* halves: computed in float and rounded once, so exact up to the final rounding */
            check_binary(ops[o], JOULE_F16, &pairs[p], 1e-3, &r);
            check_binary(ops[o], JOULE_BF16, &pairs[p], 8e-3, &r);
        }
    /* PRelu: the slope broadcasts to X */
    const shape_pair pr[] = {{4, {2, 3, 4, 5}, 3, {3, 1, 1}}, {2, {3, 4}, 1, {4}},
                             {2, {3, 4}, 0, {0}}, {3, {2, 3, 4}, 3, {2, 3, 4}}};
    for (size_t p = 0; p < sizeof pr / sizeof pr[0]; p++) {
        check_binary("PRelu", JOULE_F32, &pr[p], 0, &r);
        check_binary("PRelu", JOULE_F64, &pr[p], 0, &r);
        check_binary("PRelu", JOULE_F16, &pr[p], 1e-3, &r);
    }
}

/* exact float16 check: the kernel computes in float and rounds once */
static void test_binary_f16_exact(void **state)
{
    (void)state;
    int64_t da[3] = {2, 3, 4}, db[2] = {3, 1};
    joule_view a = vnew(JOULE_F16, 3, da), b = vnew(JOULE_F16, 2, db), o = vnew(JOULE_F16, 3, da);
    for (size_t i = 0; i < a.count; i++)
        vset(&a, i, (double)i * 0.337 - 4);
    for (size_t i = 0; i < b.count; i++)
        vset(&b, i, (double)i * 1.77 + 0.3);
    const char *ops[] = {"Add", "Sub", "Mul", "Div"};
    for (int k = 0; k < 4; k++) {
        const joule_view *in[2] = {&a, &b};
        assert_int_equal(run_op(ops[k], 14, 2, in, &o, 1), JOULE_OK);
        for (size_t e = 0; e < o.count; e++) {
            float x = (float)vget(&a, bidx(e, 3, da, 3, da));
            float y = (float)vget(&b, bidx(e, 3, da, 2, db));
            float f = k == 0 ? x + y : k == 1 ? x - y : k == 2 ? x * y : x / y;
            assert_int_equal(((uint16_t *)o.data)[e], joule_f32_to_f16(f));
        }
    }
    vfree(&a);
    vfree(&b);
    vfree(&o);
}

/* integer arithmetic wraps; x / 0 is 0; INT_MIN / -1 wraps */
static void test_binary_int(void **state)
{
    (void)state;
    const joule_dtype types[] = {JOULE_I8,  JOULE_U8,  JOULE_I16, JOULE_U16,
                                 JOULE_I32, JOULE_U32, JOULE_I64, JOULE_U64};
    const char *ops[] = {"Add", "Sub", "Mul", "Div", "Max", "Min"};
    rng r = {4242};
    int64_t da[2] = {5, 8}, db[1] = {8};
    for (size_t ti = 0; ti < 8; ti++) {
        joule_dtype t = types[ti];
        joule_view a = vnew(t, 2, da), b = vnew(t, 1, db), o = vnew(t, 2, da);
        for (size_t i = 0; i < a.count; i++)
            iset(&a, i, i < 4 ? (uint64_t[]){0, 1, (uint64_t)-1, 0x8000000000000000ull}[i] >>
                                    (64 - 8 * joule_dtype_bytes(t, 1)) * (i == 3)
                              : rnext(&r));
        if (a.count > 3 && is_signed_int(t)) /* INT_MIN of the type */
            iset(&a, 3, (uint64_t)1 << (8 * joule_dtype_bytes(t, 1) - 1));
        for (size_t i = 0; i < b.count; i++)
            iset(&b, i, i == 0 ? 0 : i == 1 ? (uint64_t)-1 : i == 2 ? 1 : rnext(&r) >> (rnext(&r) % 64));
        const joule_view *in[2] = {&a, &b};
        for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
            assert_int_equal(run_op(ops[k], 14, 2, in, &o, 1), JOULE_OK);
            for (size_t e = 0; e < o.count; e++) {
                uint64_t x = iget(&a, e), y = iget(&b, e % 8), w;
                bool s = is_signed_int(t);
                switch (k) {
                case 0: w = x + y; break;
                case 1: w = x - y; break;
                case 2: w = x * y; break;
                case 3:
                    if (y == 0)
                        w = 0;
                    else if (s && (int64_t)y == -1)
                        w = 0 - x;
                    else
                        w = s ? (uint64_t)((int64_t)x / (int64_t)y) : x / y;
                    break;
                case 4: w = s ? ((int64_t)x > (int64_t)y ? x : y) : (x > y ? x : y); break;
                default: w = s ? ((int64_t)x < (int64_t)y ? x : y) : (x < y ? x : y); break;
                }
                if (iget(&o, e) != iwrap(t, w))
                    fail_msg("%s %s: %llx op %llx = %llx, want %llx", ops[k], joule_dtype_name(t),
                             (unsigned long long)x, (unsigned long long)y,
                             (unsigned long long)iget(&o, e), (unsigned long long)iwrap(t, w));
            }
        }
        vfree(&a);
        vfree(&b);
        vfree(&o);
    }
}

static void test_pow_types(void **state)
{
    (void)state;
    int64_t d[1] = {6};
    /* int32 base, int32 exponent: exact powers, negative exponents truncate */
    joule_view a = vnew(JOULE_I32, 1, d), b = vnew(JOULE_I32, 1, d), o = vnew(JOULE_I32, 1, d);
    int32_t av[6] = {2, -3, 7, 1, -1, 5}, bv[6] = {10, 3, 0, -5, -3, -1}, want[6] = {1024, -27, 1, 1, -1, 0};
    memcpy(a.data, av, sizeof av);
    memcpy(b.data, bv, sizeof bv);
    const joule_view *in[2] = {&a, &b};
    assert_int_equal(run_op("Pow", 15, 2, in, &o, 1), JOULE_OK);
    assert_memory_equal(o.data, want, sizeof want);
    /* float base, int64 exponent; int64 base, float exponent (truncated) */
    joule_view f = vnew(JOULE_F32, 1, d), e64 = vnew(JOULE_I64, 1, d), fo = vnew(JOULE_F32, 1, d);
    for (int i = 0; i < 6; i++) {
        vset(&f, (size_t)i, 0.5 + i);
        vset(&e64, (size_t)i, i - 2);
    }
    const joule_view *in2[2] = {&f, &e64};
    assert_int_equal(run_op("Pow", 15, 2, in2, &fo, 1), JOULE_OK);
    for (int i = 0; i < 6; i++)
        assert_true(close_to(vget(&fo, (size_t)i), pow(0.5 + i, i - 2), 2e-7, 0));
    joule_view i64 = vnew(JOULE_I64, 1, d), fe = vnew(JOULE_F32, 1, d), io = vnew(JOULE_I64, 1, d);
    for (int i = 0; i < 6; i++) {
        vset(&i64, (size_t)i, i + 1);
        vset(&fe, (size_t)i, 0.5 * i);
    }
    const joule_view *in3[2] = {&i64, &fe};
    assert_int_equal(run_op("Pow", 15, 2, in3, &io, 1), JOULE_OK);
    for (int i = 0; i < 6; i++)
        assert_int_equal(((int64_t *)io.data)[i], (int64_t)pow(i + 1, (float)(0.5 * i)));
    /* scalar exponents with fast paths give what powf gives */
    const float exps[] = {2.0f, 1.0f, 0.5f, 3.0f, -1.0f};
    int64_t dn[1] = {9};
    joule_view x = vnew(JOULE_F32, 1, dn), y = vnew(JOULE_F32, 0, d), xo = vnew(JOULE_F32, 1, dn);
    const float xs[9] = {0.0f, -0.0f, 1.5f, -2.0f, 1e20f, -INFINITY, INFINITY, 3e-20f, 7.25f};
    memcpy(x.data, xs, sizeof xs);
    for (int k = 0; k < 5; k++) {
        *(float *)y.data = exps[k];
        const joule_view *in4[2] = {&x, &y};
        assert_int_equal(run_op("Pow", 15, 2, in4, &xo, 1), JOULE_OK);
        for (int i = 0; i < 9; i++) {
            float got = ((float *)xo.data)[i], want = powf(xs[i], exps[k]);
            if (!(isnan(got) && isnan(want)))
                assert_true(got == want && signbit(got) == signbit(want));
        }
    }
    joule_view *all[] = {&a, &b, &o, &f, &e64, &fo, &i64, &fe, &io, &x, &y, &xo};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        vfree(all[i]);
}

/* big tensors: threaded runs equal single-threaded ones */
static void test_threads(void **state)
{
    (void)state;
    int64_t da[2] = {257, 1001}, db[2] = {257, 1}, dr[1] = {1001};
    joule_view a = vnew(JOULE_F32, 2, da), b = vnew(JOULE_F32, 2, db), c = vnew(JOULE_F32, 1, dr);
    joule_view o1 = vnew(JOULE_F32, 2, da), o4 = vnew(JOULE_F32, 2, da);
    rng r = {5};
    for (size_t i = 0; i < a.count; i++)
        vset(&a, i, runi(&r, -8, 8));
    for (size_t i = 0; i < b.count; i++)
        vset(&b, i, runi(&r, -8, 8));
    for (size_t i = 0; i < c.count; i++)
        vset(&c, i, runi(&r, -8, 8));
    const joule_view *ins[3][2] = {{&a, &a}, {&a, &b}, {&c, &a}};
    const char *ops[] = {"Add", "Mul", "Div", "Pow"};
    for (int k = 0; k < 4; k++)
        for (int s = 0; s < 3; s++) {
            assert_int_equal(run_op(ops[k], 15, 2, ins[s], &o1, 1), JOULE_OK);
            assert_int_equal(run_op(ops[k], 15, 2, ins[s], &o4, 4), JOULE_OK);
            assert_memory_equal(o1.data, o4.data, o1.count * 4);
        }
    const char *un[] = {"Exp", "Tanh", "Sigmoid", "Erf", "Relu", "Gelu"};
    const joule_view *in1[1] = {&a};
    for (int k = 0; k < 6; k++) {
        assert_int_equal(run_op(un[k], 20, 1, in1, &o1, 1), JOULE_OK);
        assert_int_equal(run_op(un[k], 20, 1, in1, &o4, 4), JOULE_OK);
        assert_memory_equal(o1.data, o4.data, o1.count * 4);
    }
    vfree(&a);
    vfree(&b);
    vfree(&c);
    vfree(&o1);
    vfree(&o4);
}

/* ---- unary ---- */

typedef double (*dfn)(double);
static double d_neg(double x) { return -x; }
static double d_recip(double x) { return 1 / x; }
static double d_sign(double x) { return x > 0 ? 1 : x < 0 ? -1 : 0; }
static double d_sigmoid(double x) { return 1 / (1 + exp(-x)); }
static double d_relu(double x) { return x < 0 ? 0 : x; }
static double d_round(double x) { return nearbyint(x); }
static double d_softplus(double x) { return log1p(exp(x)); }
static double d_hswish(double x) { return x * fmin(1, fmax(0, x / 6 + 0.5)); }
static double d_gelu(double x) { return 0.5 * x * (1 + erf(x / sqrt(2.0))); }
static double d_softsign(double x) { return x / (1 + fabs(x)); }

static void test_unary_float(void **state)
{
    (void)state;
    struct {
        const char *op;
        dfn f;
        double lo, hi, rel, abs;
    } cases[] = {
        {"Sqrt", sqrt, 0, 100, 1e-7, 0},       {"Exp", exp, -80, 80, 3e-7, 0},
        {"Log", log, 1e-3, 1e3, 2e-7, 1e-7},   {"Neg", d_neg, -9, 9, 0, 0},
        {"Abs", fabs, -9, 9, 0, 0},            {"Reciprocal", d_recip, 0.1, 9, 1e-7, 0},
        {"Floor", floor, -9, 9, 0, 0},         {"Ceil", ceil, -9, 9, 0, 0},
        {"Round", d_round, -9, 9, 0, 0},       {"Sign", d_sign, -9, 9, 0, 0},
        {"Erf", erf, -5, 5, 4e-7, 1e-7},       {"Tanh", tanh, -10, 10, 4e-7, 1e-7},
        {"Sigmoid", d_sigmoid, -20, 20, 5e-7, 0}, {"Sin", sin, -6, 6, 2e-7, 1e-7},
        {"Cos", cos, -6, 6, 2e-7, 1e-7},       {"Relu", d_relu, -9, 9, 0, 0},
        {"Softplus", d_softplus, -20, 20, 4e-7, 0}, {"HardSwish", d_hswish, -9, 9, 2e-7, 1e-7},
        {"Gelu", d_gelu, -9, 9, 1e-6, 1e-7},  {"Tan", tan, -1.2, 1.2, 2e-7, 1e-7},
        {"Asin", asin, -0.99, 0.99, 2e-7, 1e-7}, {"Acos", acos, -0.99, 0.99, 2e-7, 1e-7},
        {"Atan", atan, -9, 9, 2e-7, 1e-7},     {"Sinh", sinh, -5, 5, 2e-7, 1e-7},
        {"Cosh", cosh, -5, 5, 2e-7, 1e-7},     {"Asinh", asinh, -9, 9, 2e-7, 1e-7},
        {"Acosh", acosh, 1, 9, 2e-7, 1e-7},    {"Atanh", atanh, -0.99, 0.99, 2e-7, 1e-7},
        {"Softsign", d_softsign, -9, 9, 2e-7, 0},
    };
    int64_t d[2] = {37, 29};
    rng r = {99};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const joule_dtype types[] = {JOULE_F32, JOULE_F64, JOULE_F16, JOULE_BF16};
        for (int ti = 0; ti < 4; ti++) {
            joule_dtype t = types[ti];
            joule_view x = vnew(t, 2, d), o = vnew(t, 2, d);
            for (size_t i = 0; i < x.count; i++)
                vset(&x, i, runi(&r, cases[c].lo, cases[c].hi));
            vset(&x, 0, cases[c].lo);
            const joule_view *in[1] = {&x};
            assert_int_equal(run_op(cases[c].op, 20, 1, in, &o, 1), JOULE_OK);
            double rel = t == JOULE_F64 ? 1e-13 : cases[c].rel;
            double abs_tol = t == JOULE_F64 ? 1e-15 : cases[c].abs;
            for (size_t i = 0; i < x.count; i++) {
                double want = cases[c].f(vget(&x, i));
                if (t == JOULE_F16)
                    want = joule_f16_to_f32(joule_f32_to_f16((float)want));
                if (t == JOULE_BF16)
                    want = joule_bf16_to_f32(joule_f32_to_bf16((float)want));
                /* halves: the float result may round to the neighbour of the exact one */
                double hrel = t == JOULE_F16 ? 1e-3 : t == JOULE_BF16 ? 8e-3 : 0;
                double habs = t == JOULE_F16 ? 1e-7 : t == JOULE_BF16 ? 1e-5 : 0;
                if (!close_to(vget(&o, i), want, rel + hrel, abs_tol + habs))
                    fail_msg("%s %s(%.9g) = %.9g, want %.9g", cases[c].op, joule_dtype_name(t),
                             vget(&x, i), vget(&o, i), want);
            }
            vfree(&x);
            vfree(&o);
        }
    }
}

/* rounding and special values, exactly */
static void test_unary_special(void **state)
{
    (void)state;
    const float xs[] = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, 2.4f, 2.6f, -2.6f, -0.0f, 8388607.5f,
                        -8388609.0f, 1e30f, INFINITY, -INFINITY, NAN, -1e-30f, 1e-30f, 4.5f};
    size_t n = sizeof xs / sizeof xs[0];
    int64_t d[1] = {(int64_t)n};
    joule_view x = vnew(JOULE_F32, 1, d), o = vnew(JOULE_F32, 1, d);
    memcpy(x.data, xs, sizeof xs);
    const joule_view *in[1] = {&x};
    struct {
        const char *op;
        double (*f)(double);
    } ops[] = {{"Round", nearbyint}, {"Floor", floor}, {"Ceil", ceil}};
    for (int k = 0; k < 3; k++) {
        assert_int_equal(run_op(ops[k].op, 13, 1, in, &o, 1), JOULE_OK);
        for (size_t i = 0; i < n; i++) {
            float got = ((float *)o.data)[i];
            float want = (float)ops[k].f((double)xs[i]);
            if (isnan(want))
                assert_true(isnan(got));
            else if (got != want || signbit(got) != signbit(want))
                fail_msg("%s(%a) = %a, want %a", ops[k].op, (double)xs[i], (double)got, (double)want);
        }
    }
    /* nan passes through Relu, Clip-like selects and Abs keeps nan */
    const char *nan_ops[] = {"Relu", "Abs", "Neg", "Sigmoid", "Tanh", "Exp", "Erf", "Gelu"};
    for (int k = 0; k < 8; k++) {
        assert_int_equal(run_op(nan_ops[k], 20, 1, in, &o, 1), JOULE_OK);
        assert_true(isnan(((float *)o.data)[14]));
    }
    vfree(&x);
    vfree(&o);
}

static void test_unary_int(void **state)
{
    (void)state;
    const joule_dtype types[] = {JOULE_I8,  JOULE_U8,  JOULE_I16, JOULE_U16,
                                 JOULE_I32, JOULE_U32, JOULE_I64, JOULE_U64};
    for (size_t ti = 0; ti < 8; ti++) {
        joule_dtype t = types[ti];
        bool s = is_signed_int(t);
        unsigned bits = 8 * (unsigned)joule_dtype_bytes(t, 1);
        int64_t d[1] = {7};
        joule_view x = vnew(t, 1, d), o = vnew(t, 1, d);
        uint64_t vals[7] = {0, 1, (uint64_t)-1, 5, (uint64_t)-7, (uint64_t)1 << (bits - 1), 100};
        for (int i = 0; i < 7; i++)
            iset(&x, (size_t)i, vals[i]);
        const joule_view *in[1] = {&x};
        const char *ops[] = {"Neg", "Abs", "Sign", "Relu", "Erf"};
        for (int k = 0; k < 5; k++) {
            joule_status st = run_op(ops[k], 14, 1, in, &o, 1);
            bool expect = s || k == 1 || k == 2 || k == 4;
            if (!expect) { /* ONNX has no unsigned Neg or Relu */
                assert_int_equal(st, JOULE_ERR_UNSUPPORTED);
                continue;
            }
            assert_int_equal(st, JOULE_OK);
            for (size_t i = 0; i < 7; i++) {
                uint64_t v = iget(&x, i), w;
                bool neg = s && (int64_t)v < 0;
                switch (k) {
                case 0: w = 0 - v; break;
                case 1: w = neg ? 0 - v : v; break;
                case 2: w = v == 0 ? 0 : neg ? (uint64_t)-1 : 1; break;
                case 3: w = neg ? 0 : v; break;
                default: {
                    double e = erf(s ? (double)(int64_t)v : (double)v);
                    w = (uint64_t)(int64_t)e;
                }
                }
                if (iget(&o, i) != iwrap(t, w))
                    fail_msg("%s %s(%llx) = %llx want %llx", ops[k], joule_dtype_name(t),
                             (unsigned long long)v, (unsigned long long)iget(&o, i),
                             (unsigned long long)iwrap(t, w));
            }
        }
        vfree(&x);
        vfree(&o);
    }
}

/* ---- activations with attributes ---- */

static void test_activation_attrs(void **state)
{
    (void)state;
    int64_t d[1] = {200};
    rng r = {31};
    const joule_dtype types[] = {JOULE_F32, JOULE_F64, JOULE_F16};
    for (int ti = 0; ti < 3; ti++) {
        joule_dtype t = types[ti];
        double rel = t == JOULE_F32 ? 3e-7 : t == JOULE_F64 ? 1e-14 : 1.5e-3;
        double abs_tol = t == JOULE_F32 ? 1e-7 : t == JOULE_F64 ? 1e-15 : 1e-6;
        joule_view x = vnew(t, 1, d), o = vnew(t, 1, d);
        for (size_t i = 0; i < x.count; i++)
            vset(&x, i, runi(&r, -6, 6));
        const joule_view *in[1] = {&x};
        for (int k = 0; k < 6; k++) {
            tnode tn;
            const char *op = (const char *[]){"LeakyRelu", "Elu", "Selu", "HardSigmoid", "Gelu",
                                              "Gelu"}[k];
            tn_init(&tn, op, 20, 1);
            joule_graph *g = tn.m->graph;
            if (k == 0)
                assert_joule_ok(joule_node_set_attr_float(g, tn.node, "alpha", 0.1f, &tn.err), &tn.err);
            if (k == 1)
                assert_joule_ok(joule_node_set_attr_float(g, tn.node, "alpha", 2.0f, &tn.err), &tn.err);
            if (k == 3) {
                assert_joule_ok(joule_node_set_attr_float(g, tn.node, "alpha", 0.3f, &tn.err), &tn.err);
                assert_joule_ok(joule_node_set_attr_float(g, tn.node, "beta", 0.4f, &tn.err), &tn.err);
            }
            if (k == 5)
                assert_joule_ok(joule_node_set_attr_string(g, tn.node, "approximate", "tanh", &tn.err),
                                &tn.err);
            assert_joule_ok(run_node(tn.node, 20, 1, in, &o, 1, &tn.err), &tn.err);
            for (size_t i = 0; i < x.count; i++) {
                double v = vget(&x, i), w;
                switch (k) {
                case 0: w = v < 0 ? (double)0.1f * v : v; break;
                case 1: w = v < 0 ? 2 * expm1(v) : v; break;
                case 2:
                    w = v > 0 ? (double)1.05070102214813232421875f * v
                              : (double)1.05070102214813232421875f *
                                    ((double)1.67326319217681884765625f * expm1(v));
                    break;
                case 3: w = fmin(1, fmax(0, (double)0.3f * v + (double)0.4f)); break;
                case 4: w = d_gelu(v); break;
                default:
                    w = 0.5 * v * (1 + tanh(sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
                }
                if (t == JOULE_F16)
                    w = joule_f16_to_f32(joule_f32_to_f16((float)w));
                if (!close_to(vget(&o, i), w, rel, abs_tol))
                    fail_msg("%s %s(%.9g) = %.9g want %.9g", op, joule_dtype_name(t), v,
                             vget(&o, i), w);
            }
            tn_free(&tn);
        }
        vfree(&x);
        vfree(&o);
    }
    /* Gelu with an unknown approximation is refused */
    tnode tn;
    tn_init(&tn, "Gelu", 20, 1);
    assert_joule_ok(joule_node_set_attr_string(tn.m->graph, tn.node, "approximate", "fast", &tn.err),
                    &tn.err);
    joule_view x = vnew(JOULE_F32, 1, d);
    const joule_view *in[1] = {&x};
    assert_false(find_kernel("Gelu")->supports(tn.node, 20, 1, in));
    tn_free(&tn);
    vfree(&x);
}

static void test_prelu_legacy(void **state)
{
    (void)state;
    int64_t dx[4] = {2, 3, 2, 2}, ds[1] = {3};
    joule_view x = vnew(JOULE_F32, 4, dx), s = vnew(JOULE_F32, 1, ds), o = vnew(JOULE_F32, 4, dx);
    for (size_t i = 0; i < x.count; i++)
        vset(&x, i, (double)i - 12);
    for (size_t i = 0; i < 3; i++)
        vset(&s, i, 0.1 * (double)(i + 1));
    const joule_view *in[2] = {&x, &s};
    /* opset 6: the [C] slope applies along axis 1 */
    assert_int_equal(run_op("PRelu", 6, 2, in, &o, 1), JOULE_OK);
    for (size_t i = 0; i < x.count; i++) {
        double v = vget(&x, i), sl = 0.1 * (double)((i / 4) % 3 + 1);
        assert_true(close_to(vget(&o, i), v < 0 ? (double)(float)sl * v : v, 1e-7, 0));
    }
    /* opset 9: NumPy rules, [3] does not broadcast against a last dim of 2 */
    assert_int_equal(run_op("PRelu", 9, 2, in, &o, 1), JOULE_ERR_INVALID);
    vfree(&x);
    vfree(&s);
    vfree(&o);
}

/* opset < 7 broadcast/axis attributes on Add */
static void test_legacy_broadcast(void **state)
{
    (void)state;
    int64_t da[4] = {2, 3, 4, 5}, db[2] = {3, 4};
    joule_view a = vnew(JOULE_F32, 4, da), b = vnew(JOULE_F32, 2, db), o = vnew(JOULE_F32, 4, da);
    for (size_t i = 0; i < a.count; i++)
        vset(&a, i, (double)i);
    for (size_t i = 0; i < b.count; i++)
        vset(&b, i, 1000.0 * (double)i);
    tnode tn;
    tn_init(&tn, "Add", 6, 2);
    assert_joule_ok(joule_node_set_attr_int(tn.m->graph, tn.node, "broadcast", 1, &tn.err), &tn.err);
    assert_joule_ok(joule_node_set_attr_int(tn.m->graph, tn.node, "axis", 1, &tn.err), &tn.err);
    const joule_view *in[2] = {&a, &b};
    assert_joule_ok(run_node(tn.node, 6, 2, in, &o, 1, &tn.err), &tn.err);
    for (size_t i = 0; i < a.count; i++)
        assert_float_equal(vget(&o, i), (double)i + 1000.0 * (double)((i / 5) % 12), 0);
    tn_free(&tn);
    vfree(&a);
    vfree(&b);
    vfree(&o);
}

/* ---- Mod, BitShift, IsNaN, IsInf, ThresholdedRelu, Shrink, Celu ---- */

static void test_more_ops(void **state)
{
    (void)state;
    int64_t d[1] = {8};
    /* Mod: fmod 0 = sign of the divisor, fmod 1 = sign of the dividend; x mod 0 = 0 */
    const int32_t ia[8] = {7, -7, 7, -7, 5, 0, INT32_MIN, 9}, ib[8] = {3, 3, -3, -3, 0, 4, -1, 9};
    const int32_t py[8] = {1, 2, -2, -1, 0, 0, 0, 0}, c[8] = {1, -1, 1, -1, 0, 0, 0, 0};
    joule_view a = vnew(JOULE_I32, 1, d), b = vnew(JOULE_I32, 1, d), o = vnew(JOULE_I32, 1, d);
    memcpy(a.data, ia, sizeof ia);
    memcpy(b.data, ib, sizeof ib);
    const joule_view *in[2] = {&a, &b};
    for (int fm = 0; fm < 2; fm++) {
        tnode tn;
        tn_init(&tn, "Mod", 13, 2);
        assert_joule_ok(joule_node_set_attr_int(tn.m->graph, tn.node, "fmod", fm, &tn.err), &tn.err);
        assert_joule_ok(run_node(tn.node, 13, 2, in, &o, 1, &tn.err), &tn.err);
        assert_memory_equal(o.data, fm ? c : py, sizeof py);
        tn_free(&tn);
    }
    joule_view fa = vnew(JOULE_F32, 1, d), fb = vnew(JOULE_F32, 1, d), fo = vnew(JOULE_F32, 1, d);
    for (int i = 0; i < 8; i++) {
        vset(&fa, (size_t)i, ia[i] == INT32_MIN ? 5.5 : ia[i] + 0.5);
        vset(&fb, (size_t)i, ib[i] == 0 ? 2 : ib[i]);
    }
    const joule_view *fin[2] = {&fa, &fb};
    for (int fm = 0; fm < 2; fm++) {
        tnode tn;
        tn_init(&tn, "Mod", 13, 2);
        assert_joule_ok(joule_node_set_attr_int(tn.m->graph, tn.node, "fmod", fm, &tn.err), &tn.err);
        assert_joule_ok(run_node(tn.node, 13, 2, fin, &fo, 1, &tn.err), &tn.err);
        for (size_t i = 0; i < 8; i++) {
            double x = vget(&fa, i), y = vget(&fb, i), w = fmod(x, y);
            if (!fm && w != 0 && ((w < 0) != (y < 0)))
                w += y;
            assert_float_equal(vget(&fo, i), w, 1e-6);
        }
        tn_free(&tn);
    }
    /* BitShift on uint8 and uint64, shifts of the width or more give 0 */
    const joule_dtype ut[2] = {JOULE_U8, JOULE_U64};
    for (int ti = 0; ti < 2; ti++) {
        joule_view x = vnew(ut[ti], 1, d), y = vnew(ut[ti], 1, d), z = vnew(ut[ti], 1, d);
        unsigned bits = 8 * (unsigned)joule_dtype_bytes(ut[ti], 1);
        for (size_t i = 0; i < 8; i++) {
            iset(&x, i, 0xa5u + i);
            iset(&y, i, i == 7 ? bits : i);
        }
        const joule_view *sin_[2] = {&x, &y};
        for (int left = 0; left < 2; left++) {
            tnode tn;
            tn_init(&tn, "BitShift", 11, 2);
            assert_joule_ok(joule_node_set_attr_string(tn.m->graph, tn.node, "direction",
                                                       left ? "LEFT" : "RIGHT", &tn.err),
                            &tn.err);
            assert_joule_ok(run_node(tn.node, 11, 2, sin_, &z, 1, &tn.err), &tn.err);
            for (size_t i = 0; i < 8; i++) {
                uint64_t v = iget(&x, i), s = iget(&y, i);
                uint64_t w = s >= bits ? 0 : left ? v << s : v >> s;
                assert_int_equal(iget(&z, i), iwrap(ut[ti], w));
            }
            tn_free(&tn);
        }
        vfree(&x);
        vfree(&y);
        vfree(&z);
    }
    /* IsNaN, IsInf (with and without detect_negative) */
    const float sp[8] = {NAN, INFINITY, -INFINITY, 0, -1, FLT_MAX, -NAN, 3};
    joule_view s = vnew(JOULE_F32, 1, d), bo = vnew(JOULE_BOOL, 1, d);
    memcpy(s.data, sp, sizeof sp);
    const joule_view *s1[1] = {&s};
    assert_int_equal(run_op("IsNaN", 13, 1, s1, &bo, 1), JOULE_OK);
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(((uint8_t *)bo.data)[i], isnan(sp[i]) != 0);
    for (int dn = 0; dn < 2; dn++) {
        tnode tn;
        tn_init(&tn, "IsInf", 10, 1);
        assert_joule_ok(joule_node_set_attr_int(tn.m->graph, tn.node, "detect_negative", dn, &tn.err),
                        &tn.err);
        assert_joule_ok(run_node(tn.node, 10, 1, s1, &bo, 1, &tn.err), &tn.err);
        for (size_t i = 0; i < 8; i++)
            assert_int_equal(((uint8_t *)bo.data)[i], isinf(sp[i]) && (sp[i] > 0 || dn));
        tn_free(&tn);
    }
    /* ThresholdedRelu, Shrink (float and int8), Celu */
    const float xs[8] = {-3, -1, -0.4f, 0, 0.4f, 1, 1.5f, 3};
    memcpy(fa.data, xs, sizeof xs);
    const joule_view *f1[1] = {&fa};
    const char *ops[3] = {"ThresholdedRelu", "Shrink", "Celu"};
    for (int k = 0; k < 3; k++) {
        tnode tn;
        tn_init(&tn, ops[k], 13, 1);
        joule_graph *g = tn.m->graph;
        if (k == 0)
            assert_joule_ok(joule_node_set_attr_float(g, tn.node, "alpha", 0.9f, &tn.err), &tn.err);
        if (k == 1) {
            assert_joule_ok(joule_node_set_attr_float(g, tn.node, "lambd", 1.0f, &tn.err), &tn.err);
            assert_joule_ok(joule_node_set_attr_float(g, tn.node, "bias", 0.5f, &tn.err), &tn.err);
        }
        if (k == 2)
            assert_joule_ok(joule_node_set_attr_float(g, tn.node, "alpha", 2.0f, &tn.err), &tn.err);
        assert_joule_ok(run_node(tn.node, 13, 1, f1, &fo, 1, &tn.err), &tn.err);
        for (size_t i = 0; i < 8; i++) {
            double x = xs[i];
            double w = k == 0 ? (x > 0.9f ? x : 0)
                       : k == 1 ? (x < -1 ? x + 0.5 : x > 1 ? x - 0.5 : 0)
                                : fmax(0, x) + fmin(0, 2 * expm1(x / 2));
            assert_true(close_to(vget(&fo, i), w, 3e-7, 1e-7));
        }
        if (k == 1) { /* int8 Shrink */
            joule_view xi = vnew(JOULE_I8, 1, d), oi = vnew(JOULE_I8, 1, d);
            for (size_t i = 0; i < 8; i++)
                vset(&xi, i, (double)i * 3 - 10);
            const joule_view *ii[1] = {&xi};
            assert_joule_ok(run_node(tn.node, 13, 1, ii, &oi, 1, &tn.err), &tn.err);
            for (size_t i = 0; i < 8; i++) {
                double x = (double)i * 3 - 10;
                assert_float_equal(vget(&oi, i), x < -1 ? trunc(x + 0.5) : x > 1 ? trunc(x - 0.5) : 0, 0);
            }
            vfree(&xi);
            vfree(&oi);
        }
        tn_free(&tn);
    }
    joule_view *all[] = {&a, &b, &o, &fa, &fb, &fo, &s, &bo};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        vfree(all[i]);
}

/* ---- Clip ---- */

static void test_clip(void **state)
{
    (void)state;
    int64_t d[1] = {9}, one[1] = {1};
    const float xs[9] = {-5, -1.5f, -1, 0, 0.5f, 1, 2, 7, NAN};
    joule_view x = vnew(JOULE_F32, 1, d), o = vnew(JOULE_F32, 1, d);
    memcpy(x.data, xs, sizeof xs);
    /* opset 6: attributes */
    tnode tn;
    tn_init(&tn, "Clip", 6, 1);
    assert_joule_ok(joule_node_set_attr_float(tn.m->graph, tn.node, "min", -1.0f, &tn.err), &tn.err);
    assert_joule_ok(joule_node_set_attr_float(tn.m->graph, tn.node, "max", 1.5f, &tn.err), &tn.err);
    const joule_view *in1[1] = {&x};
    assert_joule_ok(run_node(tn.node, 6, 1, in1, &o, 1, &tn.err), &tn.err);
    for (int i = 0; i < 8; i++)
        assert_float_equal(((float *)o.data)[i], fminf(1.5f, fmaxf(-1.0f, xs[i])), 0);
    assert_true(isnan(((float *)o.data)[8]));
    tn_free(&tn);
    /* opset 13: optional inputs; max only (min omitted), min only, both, none */
    joule_view lo = vnew(JOULE_F32, 0, one), hi = vnew(JOULE_F32, 1, one);
    *(float *)lo.data = -1.2f;
    *(float *)hi.data = 0.7f;
    const joule_view *cases[4][3] = {{&x, NULL, &hi}, {&x, &lo, NULL}, {&x, &lo, &hi}, {&x, NULL, NULL}};
    for (int c = 0; c < 4; c++) {
        assert_int_equal(run_op("Clip", 13, 3, cases[c], &o, 1), JOULE_OK);
        float l = cases[c][1] ? -1.2f : -INFINITY, h = cases[c][2] ? 0.7f : INFINITY;
        for (int i = 0; i < 8; i++)
            assert_float_equal(((float *)o.data)[i], fminf(h, fmaxf(l, xs[i])), 0);
        assert_true(isnan(((float *)o.data)[8]));
    }
    /* integer types with their own bounds */
    const joule_dtype types[] = {JOULE_I8, JOULE_U8, JOULE_I32, JOULE_U64, JOULE_I64, JOULE_F64,
                                 JOULE_F16};
    for (int ti = 0; ti < 7; ti++) {
        joule_dtype t = types[ti];
        joule_view xi = vnew(t, 1, d), oi = vnew(t, 1, d), li = vnew(t, 0, one),
                   hi2 = vnew(t, 0, one);
        for (int i = 0; i < 9; i++)
            vset(&xi, (size_t)i, (double)(i * 9));
        vset(&li, 0, 10);
        vset(&hi2, 0, 50);
        const joule_view *in[3] = {&xi, &li, &hi2};
        assert_int_equal(run_op("Clip", 13, 3, in, &oi, 1), JOULE_OK);
        for (int i = 0; i < 9; i++)
            assert_float_equal(vget(&oi, (size_t)i), fmin(50, fmax(10, i * 9)), 0);
        /* bounds of another type are refused */
        joule_view wrong = vnew(t == JOULE_F32 ? JOULE_F64 : JOULE_F32, 0, one);
        const joule_view *bad[3] = {&xi, &wrong, NULL};
        assert_false(find_kernel("Clip")->supports(NULL, 13, 3, bad));
        vfree(&wrong);
        vfree(&xi);
        vfree(&oi);
        vfree(&li);
        vfree(&hi2);
    }
    vfree(&x);
    vfree(&o);
    vfree(&lo);
    vfree(&hi);
}

/* ---- variadic ---- */

static void test_variadic(void **state)
{
    (void)state;
    int64_t d0[2] = {2, 3}, d1[1] = {3}, d2[1] = {1}, d3[3] = {4, 1, 1};
    int64_t od[3] = {4, 2, 3};
    const joule_dtype types[] = {JOULE_F32, JOULE_F64, JOULE_F16, JOULE_BF16, JOULE_I32, JOULE_U8};
    rng r = {8};
    for (int ti = 0; ti < 6; ti++) {
        joule_dtype t = types[ti];
        joule_view v[4] = {vnew(t, 2, d0), vnew(t, 1, d1), vnew(t, 1, d2), vnew(t, 3, d3)};
        for (int k = 0; k < 4; k++)
            for (size_t i = 0; i < v[k].count; i++)
                vset(&v[k], i, t == JOULE_U8 ? (double)(rnext(&r) % 200) : runi(&r, -4, 4));
        const joule_view *in[4] = {&v[0], &v[1], &v[2], &v[3]};
        joule_view o = vnew(t, 3, od);
        const char *ops[] = {"Max", "Min", "Sum", "Mean"};
        for (int k = 0; k < 4; k++) {
            bool ok = k < 2 || t == JOULE_F32 || t == JOULE_F64 || t == JOULE_F16 || t == JOULE_BF16;
            joule_status st = run_op(ops[k], 13, 4, in, &o, 2);
            if (!ok) {
                assert_int_equal(st, JOULE_ERR_UNSUPPORTED);
                continue;
            }
            assert_int_equal(st, JOULE_OK);
            for (size_t e = 0; e < o.count; e++) {
                double acc = 0, x[4];
                for (int q = 0; q < 4; q++)
                    x[q] = vget(&v[q], bidx(e, 3, od, v[q].rank, v[q].dims));
                double w = x[0];
                for (int q = 1; q < 4; q++)
                    w = k == 0 ? fmax(w, x[q]) : k == 1 ? fmin(w, x[q]) : w;
                if (k >= 2) {
                    /* float32 accumulates in order in float (halves too), then rounds once */
                    float f = (float)x[0];
                    for (int q = 1; q < 4; q++)
                        f += (float)x[q];
                    acc = t == JOULE_F64 ? x[0] + x[1] + x[2] + x[3] : (double)f;
                    w = k == 3 ? (t == JOULE_F64 ? acc / 4 : (double)((float)acc / 4.0f)) : acc;
                    if (t == JOULE_F16)
                        w = joule_f16_to_f32(joule_f32_to_f16((float)w));
                    if (t == JOULE_BF16)
                        w = joule_bf16_to_f32(joule_f32_to_bf16((float)w));
                }
                if (vget(&o, e) != w)
                    fail_msg("%s %s e=%zu: %.9g want %.9g", ops[k], joule_dtype_name(t), e,
                             vget(&o, e), w);
            }
        }
        /* one input: a copy */
        joule_view o1 = vnew(t, 2, d0);
        for (int k = 0; k < 4; k++) {
            if (run_op(ops[k], 13, 1, in, &o1, 1) != JOULE_OK)
                continue;
            assert_memory_equal(o1.data, v[0].data, joule_dtype_bytes(t, v[0].count));
        }
        vfree(&o1);
        vfree(&o);
        for (int k = 0; k < 4; k++)
            vfree(&v[k]);
    }
    /* nan propagates through Max and Min from either side */
    int64_t dn[1] = {3};
    joule_view a = vnew(JOULE_F32, 1, dn), b = vnew(JOULE_F32, 1, dn), o = vnew(JOULE_F32, 1, dn);
    float av[3] = {NAN, 1, 2}, bv[3] = {1, NAN, 3};
    memcpy(a.data, av, sizeof av);
    memcpy(b.data, bv, sizeof bv);
    const joule_view *in[2] = {&a, &b};
    for (int k = 0; k < 2; k++) {
        assert_int_equal(run_op(k ? "Max" : "Min", 13, 2, in, &o, 1), JOULE_OK);
        assert_true(isnan(((float *)o.data)[0]) && isnan(((float *)o.data)[1]));
        assert_float_equal(((float *)o.data)[2], k ? 3 : 2, 0);
    }
    vfree(&a);
    vfree(&b);
    vfree(&o);
}

/* ---- Where ---- */

static void test_where(void **state)
{
    (void)state;
    int64_t dc[3] = {2, 1, 4}, dx[2] = {3, 1}, dy[1] = {1}, od[3] = {2, 3, 4};
    const joule_dtype types[] = {JOULE_F32, JOULE_I64, JOULE_F16, JOULE_BOOL, JOULE_U8,
                                 JOULE_I16, JOULE_F64};
    rng r = {3};
    const int64_t *shapes[3][3] = {{dc, dx, dy}, {dc, dc, dc}, {dy, dx, dc}};
    const int ranks[3][3] = {{3, 2, 1}, {3, 3, 3}, {1, 2, 3}};
    for (int ti = 0; ti < 7; ti++)
        for (int s = 0; s < 3; s++) {
            joule_dtype t = types[ti];
            joule_view c = vnew(JOULE_BOOL, ranks[s][0], shapes[s][0]);
            joule_view x = vnew(t, ranks[s][1], shapes[s][1]), y = vnew(t, ranks[s][2], shapes[s][2]);
            int orank;
            int64_t o_d[JOULE_MAX_RANK];
            const int64_t *dp[3] = {c.dims, x.dims, y.dims};
            int rk[3] = {c.rank, x.rank, y.rank};
            assert_true(joule_bcast_shape(3, rk, dp, &orank, o_d));
            joule_view o = vnew(t, orank, o_d);
            for (size_t i = 0; i < c.count; i++)
                vset(&c, i, rnext(&r) & 1);
            for (size_t i = 0; i < x.count; i++)
                vset(&x, i, t == JOULE_BOOL ? 1 : (double)(i + 1));
            for (size_t i = 0; i < y.count; i++)
                vset(&y, i, t == JOULE_BOOL ? 0 : -(double)(i + 1));
            const joule_view *in[3] = {&c, &x, &y};
            assert_int_equal(run_op("Where", 16, 3, in, &o, 3), JOULE_OK);
            for (size_t e = 0; e < o.count; e++) {
                bool cv = iget(&c, bidx(e, orank, o_d, c.rank, c.dims)) != 0;
                double w = cv ? vget(&x, bidx(e, orank, o_d, x.rank, x.dims))
                              : vget(&y, bidx(e, orank, o_d, y.rank, y.dims));
                assert_float_equal(vget(&o, e), w, 0);
            }
            vfree(&c);
            vfree(&x);
            vfree(&y);
            vfree(&o);
        }
    (void)od;
    /* a condition that is not bool is refused */
    int64_t one[1] = {1};
    joule_view f = vnew(JOULE_F32, 1, one);
    const joule_view *bad[3] = {&f, &f, &f};
    assert_false(find_kernel("Where")->supports(NULL, 16, 3, bad));
    vfree(&f);
}

/* ---- comparisons and logic ---- */

static void test_compare_logic(void **state)
{
    (void)state;
    int64_t da[2] = {4, 5}, db[1] = {5};
    const joule_dtype types[] = {JOULE_F32, JOULE_F64, JOULE_F16, JOULE_BF16, JOULE_I8, JOULE_U16,
                                 JOULE_I32, JOULE_I64, JOULE_U64};
    rng r = {17};
    const char *ops[] = {"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"};
    for (int ti = 0; ti < 9; ti++) {
        joule_dtype t = types[ti];
        joule_view a = vnew(t, 2, da), b = vnew(t, 1, db), o = vnew(JOULE_BOOL, 2, da);
        for (size_t i = 0; i < a.count; i++)
            vset(&a, i, (double)(rnext(&r) % 5));
        for (size_t i = 0; i < b.count; i++)
            vset(&b, i, (double)(rnext(&r) % 5));
        if (t == JOULE_F32) {
            ((float *)a.data)[0] = NAN;
            ((float *)a.data)[1] = -0.0f;
            ((float *)b.data)[1] = 0.0f;
        }
        const joule_view *in[2] = {&a, &b};
        for (int k = 0; k < 5; k++) {
            assert_int_equal(run_op(ops[k], 16, 2, in, &o, 1), JOULE_OK);
            for (size_t e = 0; e < o.count; e++) {
                double x = vget(&a, e), y = vget(&b, e % 5);
                bool w = k == 0 ? x == y : k == 1 ? x < y : k == 2 ? x > y : k == 3 ? x <= y : x >= y;
                assert_int_equal(((uint8_t *)o.data)[e], w);
            }
        }
        vfree(&a);
        vfree(&b);
        vfree(&o);
    }
    /* bool logic with broadcasting ([4,5] op [5]) */
    joule_view a = vnew(JOULE_BOOL, 2, da), b = vnew(JOULE_BOOL, 1, db), o = vnew(JOULE_BOOL, 2, da);
    for (size_t i = 0; i < a.count; i++)
        vset(&a, i, rnext(&r) & 1);
    for (size_t i = 0; i < b.count; i++)
        vset(&b, i, rnext(&r) & 1);
    const joule_view *in[2] = {&a, &b};
    const char *lops[] = {"And", "Or", "Xor", "Equal"};
    for (int k = 0; k < 4; k++) {
        assert_int_equal(run_op(lops[k], 16, 2, in, &o, 1), JOULE_OK);
        for (size_t e = 0; e < o.count; e++) {
            bool x = iget(&a, e), y = iget(&b, e % 5);
            bool w = k == 0 ? x && y : k == 1 ? x || y : k == 2 ? x != y : x == y;
            assert_int_equal(((uint8_t *)o.data)[e], w);
        }
    }
    const joule_view *in1[1] = {&a};
    assert_int_equal(run_op("Not", 1, 1, in1, &o, 1), JOULE_OK);
    for (size_t e = 0; e < o.count; e++)
        assert_int_equal(((uint8_t *)o.data)[e], !iget(&a, e));
    /* Less on bool is not an ONNX type */
    assert_int_equal(run_op("Less", 16, 2, in, &o, 1), JOULE_ERR_UNSUPPORTED);
    vfree(&a);
    vfree(&b);
    vfree(&o);
}

/* ---- Cast ---- */

/* the half nearest to d, ties to even, found among the candidates around float rounding */
static uint16_t ref_d2h(double d, bool bf)
{
    if (isnan(d))
        return bf ? 0x7fc0 : 0x7e00;
    uint16_t c = bf ? joule_f32_to_bf16((float)d) : joule_f32_to_f16((float)d);
    uint16_t best = c;
    double bestd = INFINITY;
    for (int k = -1; k <= 1; k++) {
        uint16_t h = (uint16_t)(c + k);
        if (((h ^ c) & 0x8000) != 0)
            continue;
        double v = bf ? joule_bf16_to_f32(h) : joule_f16_to_f32(h);
        if (isnan(v))
            continue;
        double dist = fabs(v - d);
        if (isinf(v) && isfinite(d)) { /* overflow threshold: half max + half an ulp */
            double maxv = bf ? 3.3895313892515355e38 : 65504.0;
            double lim = bf ? maxv + ldexp(1.0, 127 - 8) : 65520.0;
            dist = fabs(d) >= lim ? 0 : INFINITY;
        }
        if (dist < bestd || (dist == bestd && !(h & 1))) {
            best = h;
            bestd = dist;
        }
    }
    return best;
}

static void test_cast(void **state)
{
    (void)state;
    const joule_dtype types[] = {JOULE_BOOL, JOULE_U8,  JOULE_I8,  JOULE_U16, JOULE_I16,
                                 JOULE_U32,  JOULE_I32, JOULE_U64, JOULE_I64, JOULE_F16,
                                 JOULE_BF16, JOULE_F32, JOULE_F64};
    const double vals[] = {0, 1, -1, 2.5, -2.7, 127.9, 128, 255.5, -129.5, 300, 65504, 65519.99,
                           65520, 1e10, -3e9, 0.1, 1.0 / 3, 1e-6, 3e-8, 16777217, 1.00048828125,
                           1.0004882812500001, 7};
    size_t n = sizeof vals / sizeof vals[0];
    int64_t d[1] = {(int64_t)n};
    for (int si = 0; si < 13; si++) {
        joule_dtype st = types[si];
        joule_view x = vnew(st, 1, d);
        /* the source values as the source type holds them (integers: only in-range ones) */
        bool valid[64];
        for (size_t i = 0; i < n; i++) {
            double v = vals[i];
            const joule_dtype_traits *tr = joule_dtype_info(st);
            valid[i] = true;
            if (tr->is_integer) {
                double lo = tr->is_signed ? -ldexp(1, (int)tr->bits - 1) : 0;
                double hi = tr->is_signed ? ldexp(1, (int)tr->bits - 1) : ldexp(1, (int)tr->bits);
                v = trunc(v);
                valid[i] = v >= lo && v < hi;
                if (!valid[i])
                    v = 0;
            }
            vset(&x, i, v);
        }
        for (int di = 0; di < 13; di++) {
            joule_dtype dt = types[di];
            joule_view o = vnew(dt, 1, d);
            tnode tn;
            tn_init(&tn, "Cast", 13, 1);
            assert_joule_ok(joule_node_set_attr_int(tn.m->graph, tn.node, "to", dt, &tn.err), &tn.err);
            const joule_view *in[1] = {&x};
            assert_joule_ok(run_node(tn.node, 13, 1, in, &o, 2, &tn.err), &tn.err);
            for (size_t i = 0; i < n; i++) {
                if (!valid[i])
                    continue;
                /* the exact source value */
                double v = st == JOULE_F64 ? ((double *)x.data)[i]
                           : joule_dtype_info(st)->is_integer ? (is_signed_int(st) ? (double)(int64_t)iget(&x, i)
                                                                                   : (double)iget(&x, i))
                                                              : vget(&x, i);
                const joule_dtype_traits *dtr = joule_dtype_info(dt);
                if (dt == JOULE_F32)
                    assert_float_equal(((float *)o.data)[i], (float)v, 0);
                else if (dt == JOULE_F64)
                    assert_float_equal(((double *)o.data)[i], v, 0);
                else if (dt == JOULE_F16 || dt == JOULE_BF16) {
                    uint16_t want = ref_d2h(v, dt == JOULE_BF16);
                    if (((uint16_t *)o.data)[i] != want)
                        fail_msg("cast %s->%s %.17g: %04x want %04x", joule_dtype_name(st),
                                 joule_dtype_name(dt), v, ((uint16_t *)o.data)[i], want);
                } else if (dt == JOULE_BOOL)
                    assert_int_equal(((uint8_t *)o.data)[i], v != 0);
                else {
                    double tv = trunc(v); /* toward zero */
                    double lo = dtr->is_signed ? -ldexp(1, (int)dtr->bits - 1) : 0;
                    double hi = dtr->is_signed ? ldexp(1, (int)dtr->bits - 1) : ldexp(1, (int)dtr->bits);
                    bool from_int = joule_dtype_info(st)->is_integer || st == JOULE_BOOL;
                    if (from_int) { /* integers wrap */
                        uint64_t bitsv = st == JOULE_BOOL ? (v != 0) : iget(&x, i);
                        if (iget(&o, i) != iwrap(dt, bitsv))
                            fail_msg("cast %s->%s %.17g: %llx", joule_dtype_name(st),
                                     joule_dtype_name(dt), v, (unsigned long long)iget(&o, i));
                    } else if (tv >= lo && tv < hi) {
                        double got = is_signed_int(dt) ? (double)(int64_t)iget(&o, i) : (double)iget(&o, i);
                        if (got != tv)
                            fail_msg("cast %s->%s %.17g: %.17g want %.17g", joule_dtype_name(st),
                                     joule_dtype_name(dt), v, got, tv);
                    }
                }
            }
            tn_free(&tn);
            vfree(&o);
        }
        vfree(&x);
    }
}

static void test_cast_forms(void **state)
{
    (void)state;
    int64_t d[1] = {4};
    joule_view x = vnew(JOULE_F32, 1, d), o = vnew(JOULE_F16, 1, d), like = vnew(JOULE_F16, 0, d);
    for (int i = 0; i < 4; i++)
        vset(&x, (size_t)i, 0.1 * i);
    /* Cast-1 names the type with a string */
    tnode tn;
    tn_init(&tn, "Cast", 1, 1);
    assert_joule_ok(joule_node_set_attr_string(tn.m->graph, tn.node, "to", "FLOAT16", &tn.err), &tn.err);
    const joule_view *in[1] = {&x};
    assert_joule_ok(run_node(tn.node, 1, 1, in, &o, 1, &tn.err), &tn.err);
    for (int i = 0; i < 4; i++)
        assert_int_equal(((uint16_t *)o.data)[i], joule_f32_to_f16(((float *)x.data)[i]));
    tn_free(&tn);
    /* CastLike takes the type of its second input */
    memset(o.data, 0, 8);
    const joule_view *in2[2] = {&x, &like};
    assert_int_equal(run_op("CastLike", 15, 2, in2, &o, 1), JOULE_OK);
    for (int i = 0; i < 4; i++)
        assert_int_equal(((uint16_t *)o.data)[i], joule_f32_to_f16(((float *)x.data)[i]));
    /* a Cast without `to`, and an output of the wrong type, fail naming the node */
    tn_init(&tn, "Cast", 13, 1);
    assert_int_equal(run_node(tn.node, 13, 1, in, &o, 1, &tn.err), JOULE_ERR_UNSUPPORTED);
    tn_free(&tn);
    tn_init(&tn, "Cast", 13, 1);
    assert_joule_ok(joule_node_set_attr_int(tn.m->graph, tn.node, "to", JOULE_F64, &tn.err), &tn.err);
    assert_int_equal(run_node(tn.node, 13, 1, in, &o, 1, &tn.err), JOULE_ERR_INVALID);
    assert_non_null(strstr(tn.err.msg, "node0"));
    tn_free(&tn);
    vfree(&x);
    vfree(&o);
    vfree(&like);
}

/* ---- errors ---- */

static void test_errors(void **state)
{
    (void)state;
    int64_t d23[2] = {2, 3}, d4[1] = {4}, d6[1] = {6};
    joule_view a = vnew(JOULE_F32, 2, d23), b = vnew(JOULE_F32, 1, d4), o = vnew(JOULE_F32, 2, d23);
    joule_view i = vnew(JOULE_I32, 2, d23), ob = vnew(JOULE_BOOL, 2, d23), o6 = vnew(JOULE_F32, 1, d6);
    const joule_view *in[2] = {&a, &b};
    tnode tn;
    tn_init(&tn, "Add", 14, 2);
    assert_int_equal(run_node(tn.node, 14, 2, in, &o, 1, &tn.err), JOULE_ERR_INVALID);
    assert_non_null(strstr(tn.err.msg, "node0"));
    /* mixed dtypes are not supported */
    const joule_view *mixed[2] = {&a, &i};
    assert_false(find_kernel("Add")->supports(tn.node, 14, 2, mixed));
    /* wrong output dtype or count */
    const joule_view *same[2] = {&a, &a};
    assert_int_equal(run_node(tn.node, 14, 2, same, &ob, 1, &tn.err), JOULE_ERR_INVALID);
    assert_int_equal(run_node(tn.node, 14, 2, same, &o6, 1, &tn.err), JOULE_ERR_INVALID);
    /* strings are not numbers */
    joule_view s = a;
    s.dtype = JOULE_STRING;
    const joule_view *str[2] = {&s, &s};
    assert_false(find_kernel("Add")->supports(tn.node, 14, 2, str));
    assert_false(find_kernel("Sqrt")->supports(tn.node, 14, 1, str));
    /* Sqrt has no integer form */
    const joule_view *ints[1] = {&i};
    assert_false(find_kernel("Sqrt")->supports(tn.node, 14, 1, ints));
    tn_free(&tn);
    vfree(&a);
    vfree(&b);
    vfree(&o);
    vfree(&i);
    vfree(&ob);
    vfree(&o6);
}

/* ---- the ONNX backend node tests, through the kernel alone ---- */

typedef struct tensors {
    joule_tensor *t[8];
    int n;
} tensors;

static void tensors_free(tensors *ts)
{
    for (int i = 0; i < ts->n; i++)
        joule_tensor_free(ts->t[i]);
    ts->n = 0;
}

static bool load_pbs(const char *dir, const char *prefix, tensors *ts, joule_error *err)
{
    ts->n = 0;
    for (int k = 0; k < 8; k++) {
        char path[1700];
        snprintf(path, sizeof path, "%s/%s_%d.pb", dir, prefix, k);
        FILE *f = fopen(path, "rb");
        if (!f)
            break;
        fclose(f);
        if (joule_tensor_from_pb_file(path, &ts->t[k], NULL, err) != JOULE_OK)
            return false;
        ts->n = k + 1;
    }
    return true;
}

static joule_view tview(const joule_tensor *t)
{
    joule_view v;
    memset(&v, 0, sizeof v);
    v.dtype = t->dtype;
    v.rank = t->rank;
    memcpy(v.dims, t->dims, sizeof v.dims);
    v.count = t->count;
    v.data = (void *)t->data;
    return v;
}

/* Runs one backend test folder; returns 1 passed, 0 skipped, -1 failed (message printed). */
static int run_backend_test(const char *dir, const char *name)
{
    char path[1500];
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    joule_error err;
    joule_model *m = NULL;
    if (joule_model_load(path, &m, &err) != JOULE_OK) {
        print_message("%s: load: %s\n", name, err.msg);
        return -1;
    }
    int result = 0;
    joule_graph *g = m->graph;
    if (g->n_nodes != 1 || !find_kernel(g->nodes[0]->op_type) || g->nodes[0]->n_outputs != 1) {
        joule_model_free(m);
        return 0;
    }
    const joule_node *node = g->nodes[0];
    int64_t opset = joule_model_opset(m, "");
    for (int set = 0;; set++) {
        char sdir[1500];
        snprintf(sdir, sizeof sdir, "%s/test_data_set_%d", dir, set);
        tensors ins = {0}, outs = {0};
        if (!load_pbs(sdir, "input", &ins, &err) || !load_pbs(sdir, "output", &outs, &err)) {
            print_message("%s: %s\n", name, err.msg);
            tensors_free(&ins);
            tensors_free(&outs);
            result = -1;
            break;
        }
        if (ins.n == 0 && outs.n == 0)
            break;
        /* node inputs in order: graph inputs map to input_K.pb, initializers to their data */
        joule_view iv[8];
        const joule_view *ip[8];
        int n_in = node->n_inputs;
        bool ok = n_in <= 8 && outs.n == 1;
        for (int i = 0; ok && i < n_in; i++) {
            const joule_value *v = node->inputs[i];
            ip[i] = NULL;
            if (!v)
                continue;
            const joule_tensor *t = v->data;
            for (size_t k = 0; !t && k < g->n_inputs; k++)
                if (g->inputs[k] == v && (int)k < ins.n)
                    t = ins.t[k];
            if (!t) {
                ok = false;
                break;
            }
            iv[i] = tview(t);
            /* ONNX 1.12 stores bfloat16 test tensors as uint16 */
            if (t->dtype == JOULE_U16 && v->dtype == JOULE_BF16)
                iv[i].dtype = JOULE_BF16;
            ip[i] = &iv[i];
        }
        if (!ok) {
            print_message("%s: cannot map inputs\n", name);
            result = -1;
        } else {
            const joule_tensor *want = outs.t[0];
            joule_view ov = tview(want), wv = tview(want);
            if (want->dtype == JOULE_U16 && node->outputs[0]->dtype == JOULE_BF16)
                ov.dtype = wv.dtype = JOULE_BF16;
            size_t bytes = joule_dtype_bytes(want->dtype, want->count);
            ov.data = calloc(bytes ? bytes : 1, 1);
            assert_non_null(ov.data);
            joule_status st = run_node(node, opset, n_in, ip, &ov, 2, &err);
            if (st == JOULE_ERR_UNSUPPORTED && set == 0) {
                print_message("%s: unsupported: %s\n", name, err.msg);
                result = 0;
            } else if (st != JOULE_OK) {
                print_message("%s: %s\n", name, err.msg);
                result = -1;
            } else {
                result = result < 0 ? -1 : 1;
                for (size_t e = 0; e < want->count; e++) {
                    double gv = vget(&ov, e), wvv = vget(&wv, e);
                    bool fl = joule_dtype_info(wv.dtype)->is_float;
                    if (fl ? !close_to(gv, wvv, 1e-3, 1e-7) && !(isnan(gv) && isnan(wvv)) : gv != wvv) {
                        print_message("%s: element %zu = %.9g, want %.9g\n", name, e, gv, wvv);
                        result = -1;
                        break;
                    }
                }
            }
            free(ov.data);
        }
        tensors_free(&ins);
        tensors_free(&outs);
        if (result <= 0)
            break;
    }
    joule_model_free(m);
    return result;
}

static void test_onnx_backend(void **state)
{
    (void)state;
    char root[1024];
    test_data_path("node", root, sizeof root);
    DIR *dir = opendir(root);
    if (!dir) {
        print_message("skipped: no %s\n", root);
        skip();
    }
    int passed = 0, failed = 0, skipped = 0;
    struct dirent *de;
    while ((de = readdir(dir))) {
        if (strncmp(de->d_name, "test_", 5) != 0)
            continue;
        char path[1400];
        snprintf(path, sizeof path, "%s/%s", root, de->d_name);
        /* ONNX 1.12's expected float -> bfloat16 casts truncate; ONNX 1.14 and ONNX Runtime
         * round to nearest even, as joule does */
        if (strstr(de->d_name, "FLOAT_to_BFLOAT16")) {
            skipped++;
            continue;
        }
        int r = run_backend_test(path, de->d_name);
        passed += r > 0;
        failed += r < 0;
        skipped += r == 0;
    }
    closedir(dir);
    print_message("backend node tests of elementwise ops: %d passed, %d failed (%d other)\n",
                  passed, failed, skipped);
    assert_int_equal(failed, 0);
    assert_true(passed >= 220);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_bcast_plan),
        cmocka_unit_test(test_half_conversions),
        cmocka_unit_test(test_fastmath),
        cmocka_unit_test(test_binary_float),
        cmocka_unit_test(test_binary_f16_exact),
        cmocka_unit_test(test_binary_int),
        cmocka_unit_test(test_pow_types),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_unary_float),
        cmocka_unit_test(test_unary_special),
        cmocka_unit_test(test_unary_int),
        cmocka_unit_test(test_activation_attrs),
        cmocka_unit_test(test_prelu_legacy),
        cmocka_unit_test(test_legacy_broadcast),
        cmocka_unit_test(test_more_ops),
        cmocka_unit_test(test_clip),
        cmocka_unit_test(test_variadic),
        cmocka_unit_test(test_where),
        cmocka_unit_test(test_compare_logic),
        cmocka_unit_test(test_cast),
        cmocka_unit_test(test_cast_forms),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_onnx_backend),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

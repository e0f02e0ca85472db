/* tests/unit/test_kernels_quant.c: the quantized kernels of the cpu backend (QuantizeLinear,
 * DequantizeLinear, DynamicQuantizeLinear, MatMulInteger, QLinearMatMul, ConvInteger,
 * QLinearConv). Hand-computed values (the ONNX spec examples and backend-test outputs, round half
 * to even, saturation) pin the reference kernels; every fast kernel must then equal its reference
 * bit for bit on random inputs over many configurations; and QLinearConv must stay within one
 * step of a float convolution of the dequantized values, quantized afterwards. The QDQ matcher is
 * run on small graphs (what it takes, what it covers, what it refuses) and the fused kernels are
 * held to QLinearConv / QLinearMatMul bit for bit and to the float graph within one step. */
#include "common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/cpu/quant/qdq.h"
#include "eval/cpu/quant/quant.h"
#include "eval/kernel.h"

/* ---- helpers ---- */

typedef struct rng {
    uint64_t s;
} rng;

static uint32_t rnd(rng *r)
{
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return (uint32_t)(r->s >> 11);
}

static float rnd_float(rng *r, float lo, float hi)
{
    return lo + (hi - lo) * (float)(rnd(r) & 0xffffff) / (float)0x1000000;
}

#define MAX_VIEWS 16

static joule_view *view_new(joule_dtype t, int rank, const int64_t *dims)
{
    joule_view *v = calloc(1, sizeof *v);
    assert_non_null(v);
    v->dtype = t;
    v->rank = rank;
    size_t count = 1;
    for (int i = 0; i < rank; i++) {
        v->dims[i] = dims[i];
        count *= (size_t)dims[i];
    }
    v->count = count;
    v->data = calloc(count ? count : 1, joule_dtype_bytes(t, 1));
    assert_non_null(v->data);
    return v;
}

/* A view holding a copy of vals (count elements of t's C type). */
static joule_view *view_of(joule_dtype t, int rank, const int64_t *dims, const void *vals)
{
    joule_view *v = view_new(t, rank, dims);
    memcpy(v->data, vals, joule_dtype_bytes(t, v->count));
    return v;
}

static joule_view *scalar_f32(float f)
{
    return view_of(JOULE_F32, 0, NULL, &f);
}

static joule_view *scalar_int(joule_dtype t, int32_t v)
{
    joule_view *x = view_new(t, 0, NULL);
    joule_q_store(t, x->data, 0, v);
    return x;
}

static void view_free(joule_view *v)
{
    if (v)
        free(v->data);
    free(v);
}

static void fill_bytes(joule_view *v, rng *r)
{
    for (size_t i = 0; i < joule_dtype_bytes(v->dtype, v->count); i++)
        ((uint8_t *)v->data)[i] = (uint8_t)rnd(r);
}

static void fill_floats(joule_view *v, rng *r, float lo, float hi)
{
    for (size_t i = 0; i < v->count; i++) {
        float f = rnd_float(r, lo, hi);
        if (v->dtype == JOULE_F16)
            ((uint16_t *)v->data)[i] = joule_f32_to_f16(f);
        else
            ((float *)v->data)[i] = f;
    }
}

static joule_view *random_zp(rng *r, joule_dtype t, int rank, int64_t n)
{
    joule_view *v = view_new(t, rank, &n);
    fill_bytes(v, r);
    return v;
}

static joule_view *random_scales(rng *r, int rank, int64_t n, float lo, float hi)
{
    joule_view *v = view_new(JOULE_F32, rank, &n);
    fill_floats(v, r, lo, hi);
    return v;
}

static int setup_model(void **state)
{
    joule_error err;
    joule_model *m;
    if (joule_model_new(13, &m, &err) != JOULE_OK)
        return -1;
    *state = m;
    return 0;
}

static int teardown_model(void **state)
{
    joule_model_free(*state);
    return 0;
}

/* A node of op with n_in inputs (those in absent_mask omitted) and n_out outputs, placed in m. */
static joule_node *node_new(joule_model *m, const char *op, int n_in, unsigned absent_mask,
                            int n_out)
{
    static const char *const in_names[] = {"i0", "i1", "i2", "i3", "i4", "i5", "i6", "i7", "i8"};
    static const char *const out_names[] = {"o0", "o1", "o2"};
    const char *ins[9];
    for (int i = 0; i < n_in; i++)
        ins[i] = (absent_mask & (1u << i)) ? "" : in_names[i];
    joule_error err;
    joule_node *n;
    char name[64];
    snprintf(name, sizeof name, "%s_%zu", op, m->graph->n_nodes);
    assert_joule_ok(joule_node_create(m->graph, op, "", name, n_in, ins, n_out, out_names, &n,
                                      &err),
                    &err);
    assert_joule_ok(joule_graph_insert_after(m->graph, n, NULL, &err), &err);
    return n;
}

static void set_int(joule_model *m, joule_node *n, const char *name, int64_t v)
{
    joule_error err;
    assert_joule_ok(joule_node_set_attr_int(m->graph, n, name, v, &err), &err);
}

static void set_ints(joule_model *m, joule_node *n, const char *name, const int64_t *v,
                     size_t count)
{
    joule_error err;
    assert_joule_ok(joule_node_set_attr_ints(m->graph, n, name, v, count, &err), &err);
}

static void set_string(joule_model *m, joule_node *n, const char *name, const char *v)
{
    joule_error err;
    assert_joule_ok(joule_node_set_attr_string(m->graph, n, name, v, &err), &err);
}

/* First kernel of table that takes node, as the engine picks. */
static const joule_kernel *kernel_pick(const joule_kernel *table, const joule_node *node,
                                       int n_in, const joule_view *const *in)
{
    for (const joule_kernel *k = table; k->op_type; k++)
        if (strcmp(k->op_type, node->op_type) == 0 && k->supports(node, 13, n_in, in))
            return k;
    return NULL;
}

/* Runs k like the engine does: prepare (inputs outside const_mask have no data), scratch of
 * exactly the requested size, run, destroy. */
static joule_status kernel_exec(const joule_kernel *k, const joule_node *node, int n_in,
                                const joule_view *const *in, int n_out, joule_view *const *out,
                                int threads, unsigned const_mask, joule_error *err)
{
    joule_view prep_views[MAX_VIEWS];
    const joule_view *prep_in[MAX_VIEWS] = {NULL};
    for (int i = 0; i < n_in; i++) {
        if (!in[i])
            continue;
        prep_views[i] = *in[i];
        if (!(const_mask & (1u << i)))
            prep_views[i].data = NULL;
        prep_in[i] = &prep_views[i];
    }
    joule_view out_prep[4];
    joule_view *out_prep_p[4];
    for (int i = 0; i < n_out; i++) {
        out_prep[i] = *out[i];
        out_prep[i].data = NULL;
        out_prep_p[i] = &out_prep[i];
    }
    joule_kernel_ctx ctx = {.node = node, .opset = 13, .n_in = n_in, .in = prep_in,
                            .n_out = n_out, .out = out_prep_p, .threads = threads, .err = err};
    void *state = NULL;
    size_t scratch_bytes = 0;
    if (k->prepare) {
        joule_status st = k->prepare(&ctx, &state, &scratch_bytes);
        if (st)
            return st;
    }
    void *scratch = scratch_bytes ? malloc(scratch_bytes) : NULL;
    if (scratch_bytes)
        assert_non_null(scratch);
    ctx.in = in;
    ctx.out = out;
    ctx.state = state;
    ctx.scratch = scratch;
    joule_status st = k->run(&ctx);
    free(scratch);
    if (k->destroy)
        k->destroy(state);
    return st;
}

/* Runs the node with the fast table and with the reference table (threads 1 and 3 for the fast
 * one) and checks every output byte is the same; returns the reference outputs in ref_out. */
static void fast_equals_ref(const joule_node *node, int n_in, const joule_view *const *in,
                            int n_out, joule_view *const *ref_out, unsigned const_mask)
{
    joule_error err;
    const joule_kernel *kf = kernel_pick(joule_cpu_kernels_quant, node, n_in, in);
    const joule_kernel *kr = kernel_pick(joule_cpu_kernels_quant_ref, node, n_in, in);
    if (!kf || !kr)
        fail_msg("%s: no %s kernel supports this case", node->op_type, kf ? "reference" : "fast");
    assert_joule_ok(kernel_exec(kr, node, n_in, in, n_out, ref_out, 1, 0, &err), &err);
    for (int threads = 1; threads <= 3; threads += 2) {
        joule_view *fo[4];
        for (int i = 0; i < n_out; i++) {
            fo[i] = view_new(ref_out[i]->dtype, ref_out[i]->rank, ref_out[i]->dims);
            memset(fo[i]->data, 0xa5, joule_dtype_bytes(fo[i]->dtype, fo[i]->count));
        }
        assert_joule_ok(kernel_exec(kf, node, n_in, in, n_out, fo, threads, const_mask, &err),
                        &err);
        for (int i = 0; i < n_out; i++) {
            size_t bytes = joule_dtype_bytes(fo[i]->dtype, fo[i]->count);
            for (size_t b = 0; b < bytes; b++) {
                if (((uint8_t *)fo[i]->data)[b] != ((uint8_t *)ref_out[i]->data)[b])
                    fail_msg("%s (%s, %d threads, const mask %#x): output %d differs from the "
                             "reference at byte %zu: %u vs %u",
                             node->op_type, kf->name, threads, const_mask, i, b,
                             ((uint8_t *)fo[i]->data)[b], ((uint8_t *)ref_out[i]->data)[b]);
            }
            view_free(fo[i]);
        }
    }
}

/* Runs with both tables and compares against expected bytes. */
static void both_equal(const joule_node *node, int n_in, const joule_view *const *in,
                       joule_view *out, const void *expect)
{
    joule_view *outs[1] = {out};
    fast_equals_ref(node, n_in, in, 1, outs, ~0u);
    size_t bytes = joule_dtype_bytes(out->dtype, out->count);
    for (size_t b = 0; b < bytes; b++)
        if (((uint8_t *)out->data)[b] != ((const uint8_t *)expect)[b])
            fail_msg("%s: byte %zu is %u, expected %u", node->op_type, b,
                     ((uint8_t *)out->data)[b], ((const uint8_t *)expect)[b]);
}

static void free_views(joule_view **v, int n)
{
    for (int i = 0; i < n; i++)
        view_free(v[i]);
}

/* ---- QuantizeLinear ---- */

static void test_quantize_spec(void **state)
{
    joule_model *m = *state;
    /* backend test test_quantizelinear */
    {
        joule_node *n = node_new(m, "QuantizeLinear", 3, 0, 1);
        int64_t d = 6;
        const float x[] = {0, 2, 3, 1000, -254, -1000};
        const uint8_t expect[] = {128, 129, 130, 255, 1, 0};
        joule_view *in[3] = {view_of(JOULE_F32, 1, &d, x), scalar_f32(2.0f),
                             scalar_int(JOULE_U8, 128)};
        joule_view *y = view_new(JOULE_U8, 1, &d);
        both_equal(n, 3, (const joule_view *const *)in, y, expect);
        free_views(in, 3);
        view_free(y);
    }
    /* backend test test_quantizelinear_axis: per channel on axis 1 */
    {
        joule_node *n = node_new(m, "QuantizeLinear", 3, 0, 1);
        int64_t d[4] = {1, 3, 3, 2}, c = 3;
        const float x[] = {-162, 10, -100, 232, -20, -50, -76, 0, 0, 252, 32, -44,
                           245, -485, -960, -270, -375, -470};
        const float s[] = {2, 4, 5};
        const uint8_t zp[] = {84, 24, 196};
        const uint8_t expect[] = {3, 89, 34, 200, 74, 59, 5, 24, 24, 87, 32, 13,
                                  245, 99, 4, 142, 121, 102};
        joule_view *in[3] = {view_of(JOULE_F32, 4, d, x), view_of(JOULE_F32, 1, &c, s),
                             view_of(JOULE_U8, 1, &c, zp)};
        joule_view *y = view_new(JOULE_U8, 4, d);
        both_equal(n, 3, (const joule_view *const *)in, y, expect);
        free_views(in, 3);
        view_free(y);
    }
}

/* Ties go to the even neighbour, results saturate, no zero point means uint8 with 0. */
static void test_quantize_rounding_saturation(void **state)
{
    joule_model *m = *state;
    {
        joule_node *n = node_new(m, "QuantizeLinear", 3, 0, 1);
        int64_t d = 12;
        const float x[] = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 3.5f, 2.4999998f,
                           200.0f, -200.0f, INFINITY, -INFINITY};
        const int8_t expect[] = {0, 2, 2, 0, -2, -2, 4, 2, 127, -128, 127, -128};
        joule_view *in[3] = {view_of(JOULE_F32, 1, &d, x), scalar_f32(1.0f),
                             scalar_int(JOULE_I8, 0)};
        joule_view *y = view_new(JOULE_I8, 1, &d);
        both_equal(n, 3, (const joule_view *const *)in, y, expect);
        free_views(in, 3);
        view_free(y);
    }
    {
        /* x / 0.5 lands on .5 exactly: 1.25 / 0.5 = 2.5 -> 2, 1.75 / 0.5 = 3.5 -> 4; + zp 10 */
        joule_node *n = node_new(m, "QuantizeLinear", 3, 1u << 2, 1);
        int64_t d = 5;
        const float x[] = {1.25f, 1.75f, -3.0f, 300.0f, 0.0f};
        const uint8_t expect[] = {2, 4, 0, 255, 0};
        joule_view *in[3] = {view_of(JOULE_F32, 1, &d, x), scalar_f32(0.5f), NULL};
        joule_view *y = view_new(JOULE_U8, 1, &d);
        both_equal(n, 3, (const joule_view *const *)in, y, expect);
        free_views(in, 3);
        view_free(y);
    }
    {
        /* float16 input and scale */
        joule_node *n = node_new(m, "QuantizeLinear", 3, 0, 1);
        int64_t d = 4;
        uint16_t x[4], s = joule_f32_to_f16(0.25f);
        const float xf[] = {0.375f, 0.625f, -1.0f, 100.0f}; /* / 0.25: 1.5, 2.5, -4, 400 */
        for (int i = 0; i < 4; i++)
            x[i] = joule_f32_to_f16(xf[i]);
        const int8_t expect[] = {2 + 1, 2 + 1, -4 + 1, 127};
        joule_view *in[3] = {view_of(JOULE_F16, 1, &d, x), view_of(JOULE_F16, 0, NULL, &s),
                             scalar_int(JOULE_I8, 1)};
        joule_view *y = view_new(JOULE_I8, 1, &d);
        both_equal(n, 3, (const joule_view *const *)in, y, expect);
        free_views(in, 3);
        view_free(y);
    }
}

static void test_quantize_random(void **state)
{
    joule_model *m = *state;
    rng r = {99};
    static const int64_t shapes[][4] = {{1, 1, 1, 1}, {2, 3, 5, 7}, {1, 17, 3, 9}, {3, 4, 1, 33}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        for (int axis = -1; axis < 4; axis++) { /* -1 here: per tensor */
            for (int combo = 0; combo < 4; combo++) {
                joule_dtype xt = (combo & 1) ? JOULE_F16 : JOULE_F32;
                joule_dtype yt = (combo & 2) ? JOULE_I8 : JOULE_U8;
                joule_node *n = node_new(m, "QuantizeLinear", 3, 0, 1);
                int64_t c = axis < 0 ? 1 : shapes[s][axis];
                if (axis >= 0)
                    set_int(m, n, "axis", axis == 3 ? -1 : axis);
                joule_view *in[3];
                in[0] = view_new(xt, 4, shapes[s]);
                fill_floats(in[0], &r, -300.0f, 300.0f);
                if (xt == JOULE_F32 && in[0]->count > 3) { /* specials */
                    ((float *)in[0]->data)[0] = NAN;
                    ((float *)in[0]->data)[1] = INFINITY;
                    ((float *)in[0]->data)[2] = 2.5f;
                }
                in[1] = random_scales(&r, axis < 0 ? 0 : 1, c, 0.5f, 3.0f);
                if (xt == JOULE_F16) { /* scale in x's type */
                    joule_view *h = view_new(JOULE_F16, in[1]->rank, in[1]->dims);
                    for (size_t i = 0; i < h->count; i++)
                        ((uint16_t *)h->data)[i] = joule_f32_to_f16(((float *)in[1]->data)[i]);
                    view_free(in[1]);
                    in[1] = h;
                }
                in[2] = random_zp(&r, yt, axis < 0 ? 0 : 1, c);
                joule_view *y = view_new(yt, 4, shapes[s]);
                fast_equals_ref(n, 3, (const joule_view *const *)in, 1, &y, ~0u);
                free_views(in, 3);
                view_free(y);
            }
        }
    }
}

/* ---- DequantizeLinear ---- */

static void test_dequantize_spec(void **state)
{
    joule_model *m = *state;
    {
        joule_node *n = node_new(m, "DequantizeLinear", 3, 0, 1);
        int64_t d = 4;
        const uint8_t x[] = {0, 3, 128, 255};
        const float expect[] = {-256, -250, 0, 254};
        joule_view *in[3] = {view_of(JOULE_U8, 1, &d, x), scalar_f32(2.0f),
                             scalar_int(JOULE_U8, 128)};
        joule_view *y = view_new(JOULE_F32, 1, &d);
        both_equal(n, 3, (const joule_view *const *)in, y, expect);
        free_views(in, 3);
        view_free(y);
    }
    {
        joule_node *n = node_new(m, "DequantizeLinear", 3, 0, 1);
        int64_t d[4] = {1, 3, 3, 2}, c = 3;
        const uint8_t x[] = {3, 89, 34, 200, 74, 59, 5, 24, 24, 87, 32, 13,
                             245, 99, 4, 142, 121, 102};
        const float s[] = {2, 4, 5};
        const uint8_t zp[] = {84, 24, 196};
        const float expect[] = {-162, 10, -100, 232, -20, -50, -76, 0, 0, 252, 32, -44,
                                245, -485, -960, -270, -375, -470};
        joule_view *in[3] = {view_of(JOULE_U8, 4, d, x), view_of(JOULE_F32, 1, &c, s),
                             view_of(JOULE_U8, 1, &c, zp)};
        joule_view *y = view_new(JOULE_F32, 4, d);
        both_equal(n, 3, (const joule_view *const *)in, y, expect);
        free_views(in, 3);
        view_free(y);
    }
    {
        /* int32 without zero point (a quantized bias) */
        joule_node *n = node_new(m, "DequantizeLinear", 3, 1u << 2, 1);
        int64_t d = 3;
        const int32_t x[] = {-2147483647 - 1, 7, 2147483647};
        const float expect[] = {-2147483648.0f * 0.5f, 3.5f, 2147483648.0f * 0.5f};
        joule_view *in[3] = {view_of(JOULE_I32, 1, &d, x), scalar_f32(0.5f), NULL};
        joule_view *y = view_new(JOULE_F32, 1, &d);
        both_equal(n, 3, (const joule_view *const *)in, y, expect);
        free_views(in, 3);
        view_free(y);
    }
}

static void test_dequantize_random(void **state)
{
    joule_model *m = *state;
    rng r = {7};
    static const int64_t shapes[][3] = {{1, 1, 1}, {3, 5, 7}, {2, 16, 9}, {1, 2, 100}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        for (int axis = -1; axis < 3; axis++) {
            for (int combo = 0; combo < 6; combo++) {
                joule_dtype xt = combo % 3 == 0 ? JOULE_U8 : combo % 3 == 1 ? JOULE_I8 : JOULE_I32;
                joule_dtype yt = combo >= 3 ? JOULE_F16 : JOULE_F32;
                bool with_zp = xt != JOULE_I32;
                joule_node *n = node_new(m, "DequantizeLinear", 3, with_zp ? 0 : 1u << 2, 1);
                int64_t c = axis < 0 ? 1 : shapes[s][axis];
                if (axis >= 0)
                    set_int(m, n, "axis", axis);
                joule_view *in[3];
                in[0] = view_new(xt, 3, shapes[s]);
                fill_bytes(in[0], &r);
                in[1] = random_scales(&r, axis < 0 ? 0 : 1, c, 0.01f, 2.0f);
                if (yt == JOULE_F16) {
                    joule_view *h = view_new(JOULE_F16, in[1]->rank, in[1]->dims);
                    for (size_t i = 0; i < h->count; i++)
                        ((uint16_t *)h->data)[i] = joule_f32_to_f16(((float *)in[1]->data)[i]);
                    view_free(in[1]);
                    in[1] = h;
                }
                in[2] = with_zp ? random_zp(&r, xt, axis < 0 ? 0 : 1, c) : NULL;
                joule_view *y = view_new(yt, 3, shapes[s]);
                fast_equals_ref(n, 3, (const joule_view *const *)in, 1, &y, ~0u);
                free_views(in, 3);
                view_free(y);
            }
        }
    }
}

/* Scale and zero point shapes that do not fit the input are refused by supports(). */
static void test_quant_params_refused(void **state)
{
    joule_model *m = *state;
    joule_node *n = node_new(m, "QuantizeLinear", 3, 0, 1);
    int64_t d[2] = {2, 3}, c2 = 2, c3 = 3;
    joule_view *x = view_new(JOULE_F32, 2, d);
    joule_view *s3 = random_scales(&(rng){1}, 1, c3, 1, 2), *s2 = random_scales(&(rng){2}, 1, c2, 1, 2);
    joule_view *z2 = view_new(JOULE_U8, 1, &c2), *z32 = view_new(JOULE_I32, 1, &c3);
    const joule_view *ok[3] = {x, s3, NULL};
    assert_true(joule_q_quantize_supports(n, 13, 3, ok)); /* axis 1 has 3 */
    const joule_view *bad1[3] = {x, s2, NULL};
    assert_false(joule_q_quantize_supports(n, 13, 3, bad1));
    const joule_view *bad2[3] = {x, s3, z2};
    assert_false(joule_q_quantize_supports(n, 13, 3, bad2));
    const joule_view *bad3[3] = {x, s3, z32};
    assert_false(joule_q_quantize_supports(n, 13, 3, bad3));
    set_int(m, n, "axis", 0);
    assert_true(joule_q_quantize_supports(n, 13, 3, bad1));
    set_int(m, n, "axis", 2);
    assert_false(joule_q_quantize_supports(n, 13, 3, bad1));
    view_free(x);
    view_free(s3);
    view_free(s2);
    view_free(z2);
    view_free(z32);
}

/* ---- DynamicQuantizeLinear ---- */

static void dynamic_case(joule_model *m, int rank, const int64_t *dims, const float *x,
                         const uint8_t *expect_y, float expect_scale, uint8_t expect_zp)
{
    joule_node *n = node_new(m, "DynamicQuantizeLinear", 1, 0, 3);
    joule_view *in[1] = {view_of(JOULE_F32, rank, dims, x)};
    joule_view *out[3] = {view_new(JOULE_U8, rank, dims), view_new(JOULE_F32, 0, NULL),
                          view_new(JOULE_U8, 0, NULL)};
    fast_equals_ref(n, 1, (const joule_view *const *)in, 3, out, ~0u);
    assert_memory_equal(out[0]->data, expect_y, out[0]->count);
    assert_true(*(float *)out[1]->data == expect_scale);
    assert_int_equal(*(uint8_t *)out[2]->data, expect_zp);
    free_views(in, 1);
    free_views(out, 3);
}

static void test_dynamic_quantize_spec(void **state)
{
    joule_model *m = *state;
    /* the three backend tests, values from their output .pb files */
    int64_t d6 = 6, d34[2] = {3, 4};
    const float x1[] = {0, 2, -3, -2.5f, 1.34f, 0.5f};
    const uint8_t y1[] = {153, 255, 0, 26, 221, 179};
    dynamic_case(m, 1, &d6, x1, y1, 0.019607844f, 153);
    const float x2[] = {-1.0f, -2.1f, -1.3f, -2.5f, -3.34f, -4.0f};
    const uint8_t y2[] = {191, 121, 172, 96, 42, 0};
    dynamic_case(m, 1, &d6, x2, y2, 0.015686275f, 255);
    const float x3[] = {1, 2.1f, 1.3f, 2.5f, 3.34f, 4, 1.5f, 2.6f, 3.9f, 4, 3, 2.345f};
    const uint8_t y3[] = {64, 134, 83, 159, 213, 255, 96, 166, 249, 255, 191, 149};
    dynamic_case(m, 2, d34, x3, y3, 0.015686275f, 0);
    /* all zeros: max == min, so scale is 1 / 255 (not a division by zero) */
    const float x4[] = {0, 0, 0, 0, 0, 0};
    const uint8_t y4[] = {0, 0, 0, 0, 0, 0};
    dynamic_case(m, 1, &d6, x4, y4, 1.0f / 255.0f, 0);
}

static void test_dynamic_quantize_random(void **state)
{
    joule_model *m = *state;
    rng r = {5};
    static const int64_t sizes[] = {1, 7, 8, 9, 63, 1000, 4097};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        for (int range = 0; range < 3; range++) {
            joule_node *n = node_new(m, "DynamicQuantizeLinear", 1, 0, 3);
            joule_view *in[1] = {view_new(JOULE_F32, 1, &sizes[s])};
            float lo = range == 0 ? -5.0f : range == 1 ? 0.5f : -9.0f;
            float hi = range == 0 ? 3.0f : range == 1 ? 7.0f : -0.25f;
            fill_floats(in[0], &r, lo, hi);
            if (sizes[s] > 5)
                ((float *)in[0]->data)[sizes[s] / 2] = NAN; /* ignored by min/max */
            joule_view *out[3] = {view_new(JOULE_U8, 1, &sizes[s]), view_new(JOULE_F32, 0, NULL),
                                  view_new(JOULE_U8, 0, NULL)};
            fast_equals_ref(n, 1, (const joule_view *const *)in, 3, out, ~0u);
            free_views(in, 1);
            free_views(out, 3);
        }
    }
}

/* ---- MatMulInteger and QLinearMatMul ---- */

static void test_matmul_integer_spec(void **state)
{
    joule_model *m = *state;
    joule_node *n = node_new(m, "MatMulInteger", 4, 0, 1);
    int64_t da[2] = {4, 3}, db[2] = {3, 2}, one = 1, dy[2] = {4, 2};
    const uint8_t a[] = {11, 7, 3, 10, 6, 2, 9, 5, 1, 8, 4, 0};
    const uint8_t b[] = {1, 4, 2, 5, 3, 6};
    const uint8_t azp = 12, bzp = 0;
    const int32_t expect[] = {-38, -83, -44, -98, -50, -113, -56, -128};
    joule_view *in[4] = {view_of(JOULE_U8, 2, da, a), view_of(JOULE_U8, 2, db, b),
                         view_of(JOULE_U8, 1, &one, &azp), view_of(JOULE_U8, 1, &one, &bzp)};
    joule_view *y = view_new(JOULE_I32, 2, dy);
    both_equal(n, 4, (const joule_view *const *)in, y, expect);
    free_views(in, 4);
    view_free(y);
}

/* Output dims of numpy matmul for a and b. */
static int matmul_out_dims(int ra, const int64_t *da, int rb, const int64_t *db, int64_t *out)
{
    int br = (ra > 2 ? ra - 2 : 0) > (rb > 2 ? rb - 2 : 0) ? ra - 2 : (rb > 2 ? rb - 2 : 0);
    int r = 0;
    for (int i = 0; i < br; i++) {
        int ia = i - (br - (ra > 2 ? ra - 2 : 0)), ib = i - (br - (rb > 2 ? rb - 2 : 0));
        int64_t x = ia >= 0 ? da[ia] : 1, y = ib >= 0 ? db[ib] : 1;
        out[r++] = x == 1 ? y : x;
    }
    if (ra > 1)
        out[r++] = da[ra - 2];
    if (rb > 1)
        out[r++] = db[rb - 1];
    return r;
}

typedef struct mm_case {
    int ra, rb;
    int64_t da[4], db[4];
} mm_case;

static const mm_case mm_cases[] = {
    {2, 2, {1, 1}, {1, 1}},
    {2, 2, {7, 13}, {13, 5}},
    {2, 2, {33, 70}, {70, 41}},
    {1, 2, {19}, {19, 23}},
    {2, 1, {6, 19}, {19}},
    {3, 2, {3, 5, 17}, {17, 9}},
    {3, 3, {2, 4, 8}, {2, 8, 3}},
    {4, 3, {2, 1, 3, 4}, {3, 4, 5}},
    {3, 4, {1, 6, 10}, {2, 3, 10, 7}},
    {2, 2, {3, 0}, {0, 4}}, /* empty reduction: all zeros (then requantized zero points) */
    {2, 2, {0, 5}, {5, 9}}, /* no rows */
};

static void test_matmul_integer_random(void **state)
{
    joule_model *m = *state;
    rng r = {17};
    for (size_t c = 0; c < sizeof mm_cases / sizeof mm_cases[0]; c++) {
        const mm_case *mc = &mm_cases[c];
        int64_t M = mc->ra == 1 ? 1 : mc->da[mc->ra - 2];
        int64_t N = mc->rb == 1 ? 1 : mc->db[mc->rb - 1];
        for (int combo = 0; combo < 4; combo++) {
            for (int zp = 0; zp < 4; zp++) {
                joule_dtype at = (combo & 1) ? JOULE_I8 : JOULE_U8;
                joule_dtype bt = (combo & 2) ? JOULE_I8 : JOULE_U8;
                /* zp: 0 none, 1 scalars, 2 per row / per column, 3 B only per column */
                unsigned absent = zp == 0 ? 0xc : zp == 3 ? 0x4 : 0;
                joule_node *n = node_new(m, "MatMulInteger", 4, absent, 1);
                joule_view *in[4] = {view_new(at, mc->ra, mc->da), view_new(bt, mc->rb, mc->db),
                                     NULL, NULL};
                fill_bytes(in[0], &r);
                fill_bytes(in[1], &r);
                if (!(absent & 4))
                    in[2] = random_zp(&r, at, zp == 2 ? 1 : 0, zp == 2 ? M : 1);
                if (!(absent & 8))
                    in[3] = random_zp(&r, bt, zp >= 2 ? 1 : 0, zp >= 2 ? N : 1);
                int64_t dy[8];
                int ry = matmul_out_dims(mc->ra, mc->da, mc->rb, mc->db, dy);
                joule_view *y = view_new(JOULE_I32, ry, dy);
                fast_equals_ref(n, 4, (const joule_view *const *)in, 1, &y, ~0u); /* B packed */
                fast_equals_ref(n, 4, (const joule_view *const *)in, 1, &y, 0x1); /* B at run */
                free_views(in, 4);
                view_free(y);
            }
        }
    }
}

static void test_qlinear_matmul_spec(void **state)
{
    joule_model *m = *state;
    for (int three_d = 0; three_d < 2; three_d++) {
        joule_node *n = node_new(m, "QLinearMatMul", 8, 0, 1);
        int64_t da[3] = {2, 2, 4}, db[3] = {2, 4, 3}, dy[3] = {2, 2, 3}, one = 1;
        const uint8_t a1[] = {208, 236, 0, 238, 3, 214, 255, 29};
        const uint8_t b1[] = {152, 51, 244, 60, 26, 255, 0, 127, 246, 127, 254, 247};
        const uint8_t y1[] = {168, 115, 255, 1, 66, 151};
        uint8_t a[16], b[24], expect[12];
        for (int i = 0; i < 2; i++) {
            memcpy(a + 8 * i, a1, 8);
            memcpy(b + 12 * i, b1, 12);
            memcpy(expect + 6 * i, y1, 6);
        }
        const float as = 0.0066f, bs = 0.00705f, ys = 0.0107f;
        const uint8_t az = 113, bz = 114, yz = 118;
        int r = three_d ? 3 : 2;
        joule_view *in[8] = {view_of(JOULE_U8, r, three_d ? da : da + 1, a),
                             view_of(JOULE_F32, 1, &one, &as), view_of(JOULE_U8, 1, &one, &az),
                             view_of(JOULE_U8, r, three_d ? db : db + 1, b),
                             view_of(JOULE_F32, 1, &one, &bs), view_of(JOULE_U8, 1, &one, &bz),
                             view_of(JOULE_F32, 1, &one, &ys), view_of(JOULE_U8, 1, &one, &yz)};
        joule_view *y = view_new(JOULE_U8, r, three_d ? dy : dy + 1);
        both_equal(n, 8, (const joule_view *const *)in, y, expect);
        free_views(in, 8);
        view_free(y);
    }
}

static void test_qlinear_matmul_random(void **state)
{
    joule_model *m = *state;
    rng r = {23};
    for (size_t c = 0; c < sizeof mm_cases / sizeof mm_cases[0]; c++) {
        const mm_case *mc = &mm_cases[c];
        int64_t M = mc->ra == 1 ? 1 : mc->da[mc->ra - 2];
        int64_t N = mc->rb == 1 ? 1 : mc->db[mc->rb - 1];
        int64_t K = mc->da[mc->ra - 1];
        for (int combo = 0; combo < 8; combo++) {
            for (int per = 0; per < 3; per++) { /* 0 tensor, 1 B per column, 2 A per row too */
                joule_dtype at = (combo & 1) ? JOULE_I8 : JOULE_U8;
                joule_dtype bt = (combo & 2) ? JOULE_I8 : JOULE_U8;
                joule_dtype yt = (combo & 4) ? JOULE_I8 : JOULE_U8;
                joule_node *n = node_new(m, "QLinearMatMul", 8, 0, 1);
                joule_view *in[8];
                in[0] = view_new(at, mc->ra, mc->da);
                in[3] = view_new(bt, mc->rb, mc->db);
                fill_bytes(in[0], &r);
                fill_bytes(in[3], &r);
                int64_t na = per == 2 ? M : 1, nb = per >= 1 ? N : 1;
                /* scales so that sums land around the output range */
                float ys = 60.0f * sqrtf((float)K);
                in[1] = random_scales(&r, per == 2, na, 0.5f, 1.5f);
                in[2] = random_zp(&r, at, per == 2, na);
                in[4] = random_scales(&r, per >= 1, nb, 0.5f, 1.5f);
                in[5] = random_zp(&r, bt, per >= 1, nb);
                in[6] = scalar_f32(ys);
                in[7] = scalar_int(yt, (int32_t)(rnd(&r) % 40) - 20 + (yt == JOULE_U8 ? 128 : 0));
                int64_t dy[8];
                int ry = matmul_out_dims(mc->ra, mc->da, mc->rb, mc->db, dy);
                joule_view *y = view_new(yt, ry, dy);
                fast_equals_ref(n, 8, (const joule_view *const *)in, 1, &y, ~0u);
                fast_equals_ref(n, 8, (const joule_view *const *)in, 1, &y, 0x1);
                free_views(in, 8);
                view_free(y);
            }
        }
    }
}

/* ---- ConvInteger and QLinearConv ---- */

static void test_conv_integer_spec(void **state)
{
    joule_model *m = *state;
    for (int padded = 0; padded < 2; padded++) {
        joule_node *n = node_new(m, "ConvInteger", 3, 0, 1);
        if (padded) {
            const int64_t pads[4] = {1, 1, 1, 1};
            set_ints(m, n, "pads", pads, 4);
        }
        int64_t dx[4] = {1, 1, 3, 3}, dw[4] = {1, 1, 2, 2};
        int64_t dy[4] = {1, 1, padded ? 4 : 2, padded ? 4 : 2};
        const uint8_t x[] = {2, 3, 4, 5, 6, 7, 8, 9, 10};
        const uint8_t w[] = {1, 1, 1, 1};
        const int32_t e0[] = {12, 16, 24, 28};
        const int32_t e1[] = {1, 3, 5, 3, 5, 12, 16, 9, 11, 24, 28, 15, 7, 15, 17, 9};
        joule_view *in[3] = {view_of(JOULE_U8, 4, dx, x), view_of(JOULE_U8, 4, dw, w),
                             scalar_int(JOULE_U8, 1)};
        joule_view *y = view_new(JOULE_I32, 4, dy);
        both_equal(n, 3, (const joule_view *const *)in, y, padded ? (const void *)e1 : e0);
        free_views(in, 3);
        view_free(y);
    }
}

typedef struct conv_case {
    int nsp;
    int64_t n, c, h, w, m, kh, kw, group;
    int64_t stride[2], dil[2], pads[4];
    const char *auto_pad;
} conv_case;

static const conv_case conv_cases[] = {
    {2, 1, 1, 5, 5, 1, 3, 3, 1, {1, 1}, {1, 1}, {0, 0, 0, 0}, NULL},
    {2, 2, 3, 9, 7, 5, 3, 3, 1, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL},
    {2, 1, 8, 12, 11, 20, 1, 1, 1, {1, 1}, {1, 1}, {0, 0, 0, 0}, NULL},
    {2, 1, 6, 10, 10, 4, 3, 3, 2, {2, 2}, {1, 1}, {1, 0, 2, 1}, NULL},
    {2, 2, 6, 9, 9, 6, 3, 3, 6, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL},   /* depthwise */
    {2, 1, 4, 13, 10, 4, 3, 3, 4, {2, 1}, {2, 1}, {2, 1, 0, 1}, NULL}, /* depthwise, dilated */
    {2, 1, 4, 11, 9, 12, 3, 2, 2, {1, 2}, {2, 1}, {0, 0, 0, 0}, "SAME_UPPER"},
    {2, 1, 3, 8, 8, 7, 5, 5, 1, {3, 3}, {1, 1}, {0, 0, 0, 0}, "SAME_LOWER"},
    {2, 1, 16, 20, 20, 33, 3, 3, 1, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL},
    {1, 2, 5, 1, 30, 9, 1, 4, 1, {1, 2}, {1, 2}, {0, 3, 0, 1}, NULL},
    {1, 1, 4, 1, 17, 8, 1, 3, 2, {1, 1}, {1, 1}, {0, 0, 0, 0}, "VALID"},
};

static joule_node *conv_node(joule_model *m, const char *op, int n_in, unsigned absent,
                             const conv_case *cc)
{
    joule_node *n = node_new(m, op, n_in, absent, 1);
    int k = cc->nsp;
    const int64_t *st = cc->stride + (2 - k), *dl = cc->dil + (2 - k);
    int64_t pads[4];
    if (k == 2)
        memcpy(pads, cc->pads, sizeof pads);
    else {
        pads[0] = cc->pads[1];
        pads[1] = cc->pads[3];
    }
    set_ints(m, n, "strides", st, (size_t)k);
    set_ints(m, n, "dilations", dl, (size_t)k);
    if (cc->auto_pad)
        set_string(m, n, "auto_pad", cc->auto_pad);
    else
        set_ints(m, n, "pads", pads, (size_t)(2 * k));
    if (cc->group != 1)
        set_int(m, n, "group", cc->group);
    return n;
}

/* Output dims by the spec's formulas (independent of the kernels' parser). */
static void conv_dims(const conv_case *cc, int64_t *dx, int64_t *dw, int64_t *dy)
{
    int k = cc->nsp;
    int64_t in[2] = {cc->h, cc->w}, ks[2] = {cc->kh, cc->kw};
    dx[0] = cc->n;
    dx[1] = cc->c;
    dw[0] = cc->m;
    dw[1] = cc->c / cc->group;
    dy[0] = cc->n;
    dy[1] = cc->m;
    for (int i = 0; i < k; i++) {
        int s = 2 - k + i;
        dx[2 + i] = in[s];
        dw[2 + i] = ks[s];
        int64_t eff = (ks[s] - 1) * cc->dil[s] + 1;
        if (cc->auto_pad && strcmp(cc->auto_pad, "VALID") != 0)
            dy[2 + i] = (in[s] + cc->stride[s] - 1) / cc->stride[s];
        else if (cc->auto_pad)
            dy[2 + i] = (in[s] - eff) / cc->stride[s] + 1;
        else
            dy[2 + i] = (in[s] + cc->pads[s] + cc->pads[2 + s] - eff) / cc->stride[s] + 1;
    }
}

static void test_conv_integer_random(void **state)
{
    joule_model *m = *state;
    rng r = {31};
    for (size_t c = 0; c < sizeof conv_cases / sizeof conv_cases[0]; c++) {
        const conv_case *cc = &conv_cases[c];
        for (int combo = 0; combo < 4; combo++) {
            for (int zp = 0; zp < 3; zp++) { /* none, scalars, per-channel W */
                joule_dtype xt = (combo & 1) ? JOULE_I8 : JOULE_U8;
                joule_dtype wt = (combo & 2) ? JOULE_I8 : JOULE_U8;
                joule_node *n = conv_node(m, "ConvInteger", 4, zp == 0 ? 0xc : 0, cc);
                int64_t dx[4], dw[4], dy[4];
                conv_dims(cc, dx, dw, dy);
                int rank = cc->nsp + 2;
                joule_view *in[4] = {view_new(xt, rank, dx), view_new(wt, rank, dw), NULL, NULL};
                fill_bytes(in[0], &r);
                fill_bytes(in[1], &r);
                if (zp) {
                    in[2] = random_zp(&r, xt, 0, 1);
                    in[3] = random_zp(&r, wt, zp == 2, zp == 2 ? cc->m : 1);
                }
                joule_view *y = view_new(JOULE_I32, rank, dy);
                fast_equals_ref(n, 4, (const joule_view *const *)in, 1, &y, ~0u);
                fast_equals_ref(n, 4, (const joule_view *const *)in, 1, &y, 0x1);
                free_views(in, 4);
                view_free(y);
            }
        }
    }
}

static void test_qlinear_conv_spec(void **state)
{
    joule_model *m = *state;
    joule_node *n = node_new(m, "QLinearConv", 8, 0, 1);
    int64_t dx[4] = {1, 1, 7, 7}, dw[4] = {1, 1, 1, 1}, one = 1;
    const uint8_t x[] = {255, 174, 162, 25,  203, 168, 58,  15,  59,  237, 95,  129, 0,
                         64,  56,  242, 153, 221, 168, 12,  166, 232, 178, 186, 195, 237,
                         162, 237, 188, 39,  124, 77,  80,  102, 43,  127, 230, 21,  83,
                         41,  40,  134, 255, 154, 92,  141, 42,  148, 247};
    const uint8_t expect[] = {0,   81,  93,  230, 52,  87,  197, 240, 196, 18,  160, 126, 255,
                              191, 199, 13,  102, 34,  87,  243, 89,  23,  77,  69,  60,  18,
                              93,  18,  67,  216, 131, 178, 175, 153, 212, 128, 25,  234, 172,
                              214, 215, 121, 0,   101, 163, 114, 213, 107, 8};
    const uint8_t w = 0, wz = 255;
    const float ws = 0.00172795f;
    joule_view *in[8] = {view_of(JOULE_U8, 4, dx, x),       scalar_f32(0.003692047f),
                         scalar_int(JOULE_U8, 132),         view_of(JOULE_U8, 4, dw, &w),
                         view_of(JOULE_F32, 1, &one, &ws),  view_of(JOULE_U8, 1, &one, &wz),
                         scalar_f32(0.0016268126f),         scalar_int(JOULE_U8, 123)};
    joule_view *y = view_new(JOULE_U8, 4, dx);
    both_equal(n, 8, (const joule_view *const *)in, y, expect);
    free_views(in, 8);
    view_free(y);
}

/* Float convolution of the dequantized inputs (+ dequantized bias), then quantized. */
static void float_qconv(const conv_case *cc, joule_view *const *in, const int64_t *dy,
                        joule_view *y)
{
    int64_t dx[4], dw[4], d2[4];
    conv_dims(cc, dx, dw, d2);
    const int64_t H = cc->nsp == 2 ? cc->h : 1, W = cc->w;
    const int64_t OH = cc->nsp == 2 ? dy[2] : 1, OW = dy[cc->nsp + 1];
    const int64_t KH = cc->nsp == 2 ? cc->kh : 1, KW = cc->kw;
    const int64_t cg = cc->c / cc->group, mg = cc->m / cc->group;
    /* pads as the kernels resolve them */
    int64_t pt = 0, pl = 0;
    int64_t in2[2] = {H, W}, k2[2] = {KH, KW}, out2[2] = {OH, OW}, pb[2];
    for (int s = 0; s < 2; s++) {
        bool active = cc->nsp == 2 || s == 1;
        if (!active) {
            pb[s] = 0;
            continue;
        }
        if (cc->auto_pad && strcmp(cc->auto_pad, "VALID") == 0)
            pb[s] = 0;
        else if (cc->auto_pad) {
            int64_t eff = (k2[s] - 1) * cc->dil[s] + 1;
            int64_t total = (out2[s] - 1) * cc->stride[s] + eff - in2[s];
            if (total < 0)
                total = 0;
            pb[s] = strcmp(cc->auto_pad, "SAME_UPPER") == 0 ? total / 2 : total - total / 2;
        } else
            pb[s] = cc->pads[s];
    }
    pt = pb[0];
    pl = pb[1];
    const float xs = joule_q_scale_at(in[1], 0), ys = joule_q_scale_at(in[6], 0);
    const int32_t xz = joule_q_int_at(in[2], 0), yz = joule_q_int_at(in[7], 0);
    int32_t lo, hi;
    joule_q_range(y->dtype, &lo, &hi);
    for (int64_t n = 0; n < cc->n; n++) {
        for (int64_t oc = 0; oc < cc->m; oc++) {
            const int64_t g = oc / mg;
            const size_t pc = in[4]->count == 1 ? 0 : (size_t)oc;
            const float ws = joule_q_scale_at(in[4], pc);
            const int32_t wz = joule_q_int_at(in[5], in[5]->count == 1 ? 0 : (size_t)oc);
            for (int64_t oh = 0; oh < OH; oh++) {
                for (int64_t ow = 0; ow < OW; ow++) {
                    double acc = 0;
                    for (int64_t c = 0; c < cg; c++) {
                        for (int64_t kh = 0; kh < KH; kh++) {
                            for (int64_t kw = 0; kw < KW; kw++) {
                                int64_t ih = oh * cc->stride[0] - pt + kh * cc->dil[0];
                                int64_t iw = ow * cc->stride[1] - pl + kw * cc->dil[1];
                                if (cc->nsp == 1)
                                    ih = 0;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W)
                                    continue;
                                double xv = (double)(joule_q_int_at(
                                                         in[0], (size_t)(((n * cc->c + g * cg + c) *
                                                                              H + ih) * W + iw)) -
                                                     xz) * xs;
                                double wv =
                                    (double)(joule_q_int_at(
                                                 in[3], (size_t)(((oc * cg + c) * KH + kh) * KW + kw)) -
                                             wz) * ws;
                                acc += xv * wv;
                            }
                        }
                    }
                    if (in[8])
                        acc += (double)joule_q_int_at(in[8], (size_t)oc) * xs * ws;
                    double q = nearbyint(acc / ys) + yz;
                    q = q < lo ? lo : q > hi ? hi : q;
                    joule_q_store(y->dtype, y->data,
                                  (size_t)(((n * cc->m + oc) * OH + oh) * OW + ow), (int32_t)q);
                }
            }
        }
    }
}

static void test_qlinear_conv_random(void **state)
{
    joule_model *m = *state;
    rng r = {41};
    for (size_t c = 0; c < sizeof conv_cases / sizeof conv_cases[0]; c++) {
        const conv_case *cc = &conv_cases[c];
        for (int combo = 0; combo < 8; combo++) {
            for (int per = 0; per < 2; per++) {
                for (int with_bias = 0; with_bias < 2; with_bias++) {
                    joule_dtype xt = (combo & 1) ? JOULE_I8 : JOULE_U8;
                    joule_dtype wt = (combo & 2) ? JOULE_I8 : JOULE_U8;
                    joule_dtype yt = (combo & 4) ? JOULE_I8 : JOULE_U8;
                    joule_node *n = conv_node(m, "QLinearConv", 9, with_bias ? 0 : 1u << 8, cc);
                    int64_t dx[4], dw[4], dy[4];
                    conv_dims(cc, dx, dw, dy);
                    int rank = cc->nsp + 2;
                    int64_t kdim = (cc->c / cc->group) * cc->kh * cc->kw;
                    joule_view *in[9] = {NULL};
                    in[0] = view_new(xt, rank, dx);
                    in[3] = view_new(wt, rank, dw);
                    fill_bytes(in[0], &r);
                    fill_bytes(in[3], &r);
                    in[1] = random_scales(&r, 0, 1, 0.01f, 0.03f);
                    in[2] = random_zp(&r, xt, 0, 1);
                    in[4] = random_scales(&r, per, per ? cc->m : 1, 0.005f, 0.02f);
                    in[5] = random_zp(&r, wt, per, per ? cc->m : 1);
                    /* output scale near the spread of the sums, so results use the range */
                    in[6] = scalar_f32(0.03f * 0.02f * 75.0f * sqrtf((float)kdim));
                    in[7] = scalar_int(yt, (int32_t)(rnd(&r) % 60) - 30 + (yt == JOULE_U8 ? 128 : 0));
                    if (with_bias) {
                        in[8] = view_new(JOULE_I32, 1, &cc->m);
                        for (int64_t i = 0; i < cc->m; i++)
                            ((int32_t *)in[8]->data)[i] = (int32_t)(rnd(&r) % 20001) - 10000;
                    }
                    joule_view *y = view_new(yt, rank, dy);
                    fast_equals_ref(n, 9, (const joule_view *const *)in, 1, &y, ~0u);
                    fast_equals_ref(n, 9, (const joule_view *const *)in, 1, &y, 0x1);
                    joule_view *f = view_new(yt, rank, dy);
                    float_qconv(cc, in, dy, f);
                    size_t ties = 0;
                    for (size_t i = 0; i < y->count; i++) {
                        int32_t a = joule_q_int_at(y, i), b = joule_q_int_at(f, i);
                        if (abs(a - b) > 1)
                            fail_msg("QLinearConv case %zu combo %d: element %zu is %d, float "
                                     "conv gives %d",
                                     c, combo, i, a, b);
                        ties += a != b;
                    }
                    /* off by one only where float rounding differs: rare */
                    assert_true(ties * 20 <= y->count + 20);
                    view_free(f);
                    free_views(in, 9);
                    view_free(y);
                }
            }
        }
    }
}

/* A mismatching output is an error naming the node, not a crash. */
static void test_bad_output_refused(void **state)
{
    joule_model *m = *state;
    joule_node *n = node_new(m, "MatMulInteger", 2, 0, 1);
    int64_t da[2] = {2, 3}, db[2] = {3, 4}, dy[2] = {2, 5};
    joule_view *in[2] = {view_new(JOULE_U8, 2, da), view_new(JOULE_I8, 2, db)};
    joule_view *y = view_new(JOULE_I32, 2, dy);
    joule_error err;
    const joule_kernel *k = kernel_pick(joule_cpu_kernels_quant, n, 2, (const joule_view *const *)in);
    assert_non_null(k);
    assert_int_equal(kernel_exec(k, n, 2, (const joule_view *const *)in, 1, &y, 1, ~0u, &err),
                     JOULE_ERR_INVALID);
    assert_non_null(strstr(err.msg, n->name));
    k = kernel_pick(joule_cpu_kernels_quant_ref, n, 2, (const joule_view *const *)in);
    assert_int_equal(kernel_exec(k, n, 2, (const joule_view *const *)in, 1, &y, 1, ~0u, &err),
                     JOULE_ERR_INVALID);
    free_views(in, 2);
    view_free(y);
}


/* ---- QDQ fusion ---- */

/* A constant initializer named name. */
static joule_value *init_value(joule_model *m, const char *name, joule_dtype t, int rank,
                               const int64_t *dims, const void *vals)
{
    joule_error err;
    joule_value *v;
    joule_tensor *tt;
    assert_joule_ok(joule_graph_value(m->graph, name, &v, &err), &err);
    assert_joule_ok(joule_tensor_new(t, rank, dims, &tt, &err), &err);
    void *d = joule_tensor_mutable_data(tt);
    assert_non_null(d);
    memcpy(d, vals, tt->nbytes);
    assert_joule_ok(joule_graph_set_initializer(m->graph, v, tt, &err), &err);
    return v;
}

static joule_node *add_node(joule_model *m, const char *op, int n_in, const char *const *ins,
                            const char *out)
{
    joule_error err;
    joule_node *n;
    assert_joule_ok(joule_node_create(m->graph, op, "", out, n_in, ins, 1, &out, &n, &err), &err);
    assert_joule_ok(joule_graph_insert_before(m->graph, n, NULL, &err), &err); /* at the end */
    return n;
}

/* A view of a value's constant data (shares the bytes). */
static joule_view *view_of_value(const joule_value *v)
{
    if (!v)
        return NULL;
    joule_view *w = calloc(1, sizeof *w);
    assert_non_null(w);
    w->dtype = v->data->dtype;
    w->rank = v->data->rank;
    memcpy(w->dims, v->data->dims, sizeof w->dims);
    w->count = v->data->count;
    w->data = (void *)v->data->data;
    return w;
}

static bool covers(const joule_qdq_pattern *p, const joule_node *n)
{
    for (size_t i = 0; i < p->n_covered; i++)
        if (p->covered[i] == n)
            return true;
    return false;
}

/* The QDQ conv graph: DQ(x) DQ(w, axis 0) DQ(b) -> Conv -> Relu -> Q. bias_scale_factor 1
 * makes the bias scale exactly x_scale * w_scale (QLinearConv's convention). */
typedef struct qdq_conv_graph {
    joule_node *dq_x, *dq_w, *dq_b, *conv, *relu, *q;
    conv_case cc;
} qdq_conv_graph;

static void build_qdq_conv(joule_model *m, rng *r, float bias_scale_factor, qdq_conv_graph *gr)
{
    const conv_case cc = {2, 1, 4, 9, 8, 6, 3, 3, 2, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL};
    gr->cc = cc;
    int64_t dx[4], dw[4], dy[4], c6 = 6;
    conv_dims(&cc, dx, dw, dy);
    joule_error err;
    joule_value *xq;
    assert_joule_ok(joule_graph_value(m->graph, "xq", &xq, &err), &err);
    xq->dtype = JOULE_U8;
    float xs = 0.02f, ys = 0.05f, ws[6], bs[6];
    uint8_t xz = 131, yz = 7;
    int8_t w[6 * 2 * 9], wz[6];
    int32_t b[6];
    for (size_t i = 0; i < sizeof w; i++)
        w[i] = (int8_t)rnd(r);
    for (int i = 0; i < 6; i++) {
        ws[i] = rnd_float(r, 0.002f, 0.01f);
        wz[i] = (int8_t)(rnd(r) % 9) - 4;
        bs[i] = xs * ws[i] * bias_scale_factor;
        b[i] = (int32_t)(rnd(r) % 4001) - 2000;
    }
    init_value(m, "xs", JOULE_F32, 0, NULL, &xs);
    init_value(m, "xz", JOULE_U8, 0, NULL, &xz);
    init_value(m, "w", JOULE_I8, 4, dw, w);
    init_value(m, "ws", JOULE_F32, 1, &c6, ws);
    init_value(m, "wz", JOULE_I8, 1, &c6, wz);
    init_value(m, "b", JOULE_I32, 1, &c6, b);
    init_value(m, "bs", JOULE_F32, 1, &c6, bs);
    init_value(m, "ys", JOULE_F32, 0, NULL, &ys);
    init_value(m, "yz", JOULE_U8, 0, NULL, &yz);
    const char *i_dqx[] = {"xq", "xs", "xz"}, *i_dqw[] = {"w", "ws", "wz"}, *i_dqb[] = {"b", "bs"};
    const char *i_conv[] = {"xf", "wf", "bf"}, *i_relu[] = {"yf"}, *i_q[] = {"rf", "ys", "yz"};
    gr->dq_x = add_node(m, "DequantizeLinear", 3, i_dqx, "xf");
    gr->dq_w = add_node(m, "DequantizeLinear", 3, i_dqw, "wf");
    set_int(m, gr->dq_w, "axis", 0);
    gr->dq_b = add_node(m, "DequantizeLinear", 2, i_dqb, "bf");
    set_int(m, gr->dq_b, "axis", 0);
    gr->conv = add_node(m, "Conv", 3, i_conv, "yf");
    set_ints(m, gr->conv, "pads", cc.pads, 4);
    set_int(m, gr->conv, "group", cc.group);
    gr->relu = add_node(m, "Relu", 1, i_relu, "rf");
    gr->q = add_node(m, "QuantizeLinear", 3, i_q, "yq");
}

/* Runs pattern p's kernel on random x (the views of p's inputs) into y. */
static void run_pattern(const joule_qdq_pattern *p, joule_view *x, joule_view *y, int threads)
{
    joule_view *v[JOULE_QDQ_N_INPUTS];
    for (int i = 0; i < JOULE_QDQ_N_INPUTS; i++)
        v[i] = i == JOULE_QDQ_X ? x : view_of_value(p->inputs[i]);
    const joule_view *const *in = (const joule_view *const *)v;
    assert_true(p->kernel->supports(p->anchor, 13, JOULE_QDQ_N_INPUTS, in));
    joule_error err;
    assert_joule_ok(kernel_exec(p->kernel, p->anchor, JOULE_QDQ_N_INPUTS, in, 1, &y, threads,
                                ~(1u << JOULE_QDQ_X), &err),
                    &err);
    for (int i = 0; i < JOULE_QDQ_N_INPUTS; i++)
        if (i != JOULE_QDQ_X)
            free(v[i]);
}

static void test_qdq_conv(void **state)
{
    joule_model *m = *state;
    rng r = {77};
    const uint8_t yz = 7;
    const float xs = 0.02f, ysc = 0.05f;
    for (int variant = 0; variant < 2; variant++) {
        /* variant 0: bias at x_scale * w_scale (integer path), 1: at half that (float path) */
        joule_model *g;
        joule_error err;
        assert_joule_ok(joule_model_new(13, &g, &err), &err);
        qdq_conv_graph gr;
        build_qdq_conv(g, &r, variant ? 0.5f : 1.0f, &gr);
        joule_qdq_pattern p;
        assert_true(joule_qdq_match(g->graph, gr.conv, &p));
        assert_ptr_equal(p.kernel, &joule_cpu_kernel_qdq_conv_relu);
        assert_int_equal(p.n_covered, 6);
        const joule_node *order[6] = {gr.dq_x, gr.dq_w, gr.dq_b, gr.conv, gr.relu, gr.q};
        for (int i = 0; i < 6; i++)
            assert_ptr_equal(p.covered[i], order[i]);
        assert_string_equal(p.inputs[JOULE_QDQ_X]->name, "xq");
        assert_string_equal(p.inputs[JOULE_QDQ_W]->name, "w");
        assert_string_equal(p.inputs[JOULE_QDQ_BIAS]->name, "b");
        assert_string_equal(p.inputs[JOULE_QDQ_BIAS_SCALE]->name, "bs");
        assert_null(p.inputs[JOULE_QDQ_BIAS_ZP]);
        assert_string_equal(p.output->name, "yq");

        int64_t dx[4], dw[4], dy[4];
        conv_dims(&gr.cc, dx, dw, dy);
        joule_view *x = view_new(JOULE_U8, 4, dx);
        fill_bytes(x, &r);
        joule_view *y = view_new(JOULE_U8, 4, dy);
        run_pattern(&p, x, y, variant + 1);

        /* QLinearConv's inputs from the pattern's */
        joule_view *in9[9] = {x};
        const int map[9] = {-1, JOULE_QDQ_X_SCALE, JOULE_QDQ_X_ZP, JOULE_QDQ_W, JOULE_QDQ_W_SCALE,
                            JOULE_QDQ_W_ZP, JOULE_QDQ_Y_SCALE, JOULE_QDQ_Y_ZP, JOULE_QDQ_BIAS};
        for (int i = 1; i < 9; i++)
            in9[i] = view_of_value(p.inputs[map[i]]);

        /* the float graph (dequantize, conv + bias, Relu, quantize), computed here */
        joule_q_conv qc;
        joule_node *ci = conv_node(m, "ConvInteger", 4, 0, &gr.cc);
        assert_joule_ok(joule_q_conv_init(ci, x, in9[3], &qc, &err), &err);
        int32_t *acc = malloc((size_t)qc.out_size * sizeof *acc);
        assert_non_null(acc);
        size_t off = 0;
        for (int64_t oc = 0; oc < gr.cc.m; oc++) {
            joule_q_conv_ref_acc(&qc, x, 131, in9[3], in9[5], 0, oc, acc);
            double ws = ((float *)in9[4]->data)[oc];
            double bias = (double)((int32_t *)in9[8]->data)[oc] * xs * ws * (variant ? 0.5 : 1.0);
            for (int64_t i = 0; i < qc.out_size; i++) {
                double v = (double)acc[i] * xs * ws + bias;
                v = v < 0 ? 0 : v;
                double q = nearbyint(v / ysc) + yz;
                q = q > 255 ? 255 : q;
                int32_t got = ((uint8_t *)y->data)[oc * qc.out_size + i];
                if (fabs(got - q) > 1)
                    fail_msg("qdq conv (variant %d) channel %lld element %lld: %d, float graph %g",
                             variant, (long long)oc, (long long)i, got, q);
                off += got != q;
            }
        }
        free(acc);
        assert_true(off * 20 <= y->count + 20);

        if (!variant) {
            /* bit for bit what QLinearConv and a clamp at y_zp give */
            joule_node *n = conv_node(m, "QLinearConv", 9, 0, &gr.cc);
            joule_view *ql = view_new(JOULE_U8, 4, dy);
            const joule_kernel *k = kernel_pick(joule_cpu_kernels_quant_ref, n, 9,
                                                (const joule_view *const *)in9);
            assert_non_null(k);
            assert_joule_ok(kernel_exec(k, n, 9, (const joule_view *const *)in9, 1, &ql, 1, ~0u,
                                        &err),
                            &err);
            for (size_t i = 0; i < y->count; i++) {
                uint8_t want = ((uint8_t *)ql->data)[i];
                want = want < yz ? yz : want;
                if (((uint8_t *)y->data)[i] != want)
                    fail_msg("qdq conv element %zu: %u, QLinearConv gives %u", i,
                             ((uint8_t *)y->data)[i], want);
            }
            view_free(ql);
        }
        for (int i = 1; i < 9; i++)
            free(in9[i]);
        view_free(x);
        view_free(y);
        joule_model_free(g);
    }
}

/* DQ -> MatMul -> Q on a 3-D activation equals QLinearMatMul bit for bit. */
static void test_qdq_matmul(void **state)
{
    joule_model *m = *state;
    rng r = {88};
    joule_model *g;
    joule_error err;
    assert_joule_ok(joule_model_new(13, &g, &err), &err);
    const int64_t K = 20, N = 7, dx[3] = {2, 3, 20}, dwt[2] = {20, 7}, dy[3] = {2, 3, 7}, n7 = 7;
    int8_t w[20 * 7], wz[7];
    float ws[7], xs = 0.03f, ys = 0.4f;
    int8_t xz = -3, yz = 2;
    for (size_t i = 0; i < sizeof w; i++)
        w[i] = (int8_t)rnd(&r);
    for (int i = 0; i < 7; i++) {
        ws[i] = rnd_float(&r, 0.01f, 0.05f);
        wz[i] = (int8_t)(rnd(&r) % 5) - 2;
    }
    joule_value *xq;
    assert_joule_ok(joule_graph_value(g->graph, "xq", &xq, &err), &err);
    xq->dtype = JOULE_I8;
    init_value(g, "xs", JOULE_F32, 0, NULL, &xs);
    init_value(g, "xz", JOULE_I8, 0, NULL, &xz);
    init_value(g, "w", JOULE_I8, 2, dwt, w);
    init_value(g, "ws", JOULE_F32, 1, &n7, ws);
    init_value(g, "wz", JOULE_I8, 1, &n7, wz);
    init_value(g, "ys", JOULE_F32, 0, NULL, &ys);
    init_value(g, "yz", JOULE_I8, 0, NULL, &yz);
    const char *i_dqx[] = {"xq", "xs", "xz"}, *i_dqw[] = {"w", "ws", "wz"};
    const char *i_mm[] = {"xf", "wf"}, *i_q[] = {"yf", "ys", "yz"};
    joule_node *dqx = add_node(g, "DequantizeLinear", 3, i_dqx, "xf");
    joule_node *dqw = add_node(g, "DequantizeLinear", 3, i_dqw, "wf"); /* axis 1: columns */
    joule_node *mm = add_node(g, "MatMul", 2, i_mm, "yf");
    joule_node *q = add_node(g, "QuantizeLinear", 3, i_q, "yq");
    joule_qdq_pattern p;
    assert_true(joule_qdq_match(g->graph, mm, &p));
    assert_ptr_equal(p.kernel, &joule_cpu_kernel_qdq_matmul);
    assert_int_equal(p.n_covered, 4);
    assert_true(covers(&p, dqx) && covers(&p, dqw) && covers(&p, mm) && covers(&p, q));
    assert_null(p.inputs[JOULE_QDQ_BIAS]);

    joule_view *x = view_new(JOULE_I8, 3, dx);
    fill_bytes(x, &r);
    joule_view *y = view_new(JOULE_I8, 3, dy);
    for (int threads = 1; threads <= 3; threads += 2) {
        run_pattern(&p, x, y, threads);
        /* QLinearMatMul with the same parameters */
        joule_node *n = node_new(m, "QLinearMatMul", 8, 0, 1);
        joule_view *in8[8] = {x,
                              view_of_value(p.inputs[JOULE_QDQ_X_SCALE]),
                              view_of_value(p.inputs[JOULE_QDQ_X_ZP]),
                              view_of_value(p.inputs[JOULE_QDQ_W]),
                              view_of_value(p.inputs[JOULE_QDQ_W_SCALE]),
                              view_of_value(p.inputs[JOULE_QDQ_W_ZP]),
                              view_of_value(p.inputs[JOULE_QDQ_Y_SCALE]),
                              view_of_value(p.inputs[JOULE_QDQ_Y_ZP])};
        joule_view *ql = view_new(JOULE_I8, 3, dy);
        const joule_kernel *k =
            kernel_pick(joule_cpu_kernels_quant_ref, n, 8, (const joule_view *const *)in8);
        assert_non_null(k);
        assert_joule_ok(kernel_exec(k, n, 8, (const joule_view *const *)in8, 1, &ql, 1, ~0u, &err),
                        &err);
        assert_memory_equal(y->data, ql->data, y->count);
        for (int i = 1; i < 8; i++)
            free(in8[i]);
        view_free(ql);
    }
    (void)K;
    (void)N;
    view_free(x);
    view_free(y);
    joule_model_free(g);
}

/* DQ -> Gemm(transB, alpha, float C) -> Relu -> Q against the float graph. */
static void test_qdq_gemm(void **state)
{
    (void)state;
    rng r = {99};
    joule_model *g;
    joule_error err;
    assert_joule_ok(joule_model_new(13, &g, &err), &err);
    enum { M = 5, K = 33, N = 9 };
    const int64_t dx[2] = {M, K}, dw[2] = {N, K}, dy[2] = {M, N}, nn = N;
    uint8_t w[N * K], xz = 100, yz = 30;
    float ws[N], c[N], xs = 0.01f, ys = 0.02f, alpha = 0.75f;
    for (size_t i = 0; i < sizeof w; i++)
        w[i] = (uint8_t)rnd(&r);
    for (int i = 0; i < N; i++) {
        ws[i] = rnd_float(&r, 0.001f, 0.004f);
        c[i] = rnd_float(&r, -0.5f, 0.5f);
    }
    uint8_t wz = 128;
    joule_value *xq;
    assert_joule_ok(joule_graph_value(g->graph, "xq", &xq, &err), &err);
    init_value(g, "xs", JOULE_F32, 0, NULL, &xs);
    init_value(g, "xz", JOULE_U8, 0, NULL, &xz);
    init_value(g, "w", JOULE_U8, 2, dw, w);
    init_value(g, "ws", JOULE_F32, 1, &nn, ws);
    init_value(g, "wz", JOULE_U8, 0, NULL, &wz); /* per tensor zero point, per channel scale */
    init_value(g, "c", JOULE_F32, 1, &nn, c);
    init_value(g, "ys", JOULE_F32, 0, NULL, &ys);
    init_value(g, "yz", JOULE_U8, 0, NULL, &yz);
    const char *i_dqx[] = {"xq", "xs", "xz"}, *i_dqw[] = {"w", "ws", "wz"};
    const char *i_gemm[] = {"xf", "wf", "c"}, *i_relu[] = {"yf"}, *i_q[] = {"rf", "ys", "yz"};
    add_node(g, "DequantizeLinear", 3, i_dqx, "xf");
    joule_node *dqw = add_node(g, "DequantizeLinear", 3, i_dqw, "wf");
    set_int(g, dqw, "axis", 0);
    joule_node *gemm = add_node(g, "Gemm", 3, i_gemm, "yf");
    set_int(g, gemm, "transB", 1);
    joule_error e2;
    assert_joule_ok(joule_node_set_attr_float(g->graph, gemm, "alpha", alpha, &e2), &e2);
    add_node(g, "Relu", 1, i_relu, "rf");
    add_node(g, "QuantizeLinear", 3, i_q, "yq");
    joule_qdq_pattern p;
    /* the wz tensor is per tensor but the scale per channel: the matcher wants equal shapes */
    assert_false(joule_qdq_match(g->graph, gemm, &p));
    uint8_t wzv[N];
    for (int i = 0; i < N; i++)
        wzv[i] = (uint8_t)(120 + i);
    init_value(g, "wz", JOULE_U8, 1, &nn, wzv);
    assert_true(joule_qdq_match(g->graph, gemm, &p));
    assert_ptr_equal(p.kernel, &joule_cpu_kernel_qdq_gemm_relu);
    assert_string_equal(p.inputs[JOULE_QDQ_BIAS]->name, "c");

    joule_view *x = view_new(JOULE_U8, 2, dx);
    fill_bytes(x, &r);
    joule_view *y = view_new(JOULE_U8, 2, dy);
    run_pattern(&p, x, y, 1);
    size_t off = 0;
    for (int mi = 0; mi < M; mi++) {
        for (int ni = 0; ni < N; ni++) {
            double acc = 0;
            for (int k = 0; k < K; k++)
                acc += ((double)((uint8_t *)x->data)[mi * K + k] - xz) * xs *
                       (((double)w[ni * K + k] - wzv[ni]) * ws[ni]);
            double v = alpha * acc + c[ni];
            v = v < 0 ? 0 : v;
            double q = nearbyint(v / ys) + yz;
            q = q > 255 ? 255 : q;
            int got = ((uint8_t *)y->data)[mi * N + ni];
            if (fabs(got - q) > 1)
                fail_msg("qdq gemm [%d][%d]: %d, float graph %g", mi, ni, got, q);
            off += got != q;
        }
    }
    assert_true(off <= 3);
    view_free(x);
    view_free(y);
    joule_model_free(g);
}

/* What the matcher refuses, and DequantizeLinear nodes it must leave running. */
static void test_qdq_match_refusals(void **state)
{
    (void)state;
    rng r = {5};
    joule_error err;
    joule_qdq_pattern p;
    {
        /* DQ(x)'s float output is also read elsewhere: fused, but DQ(x) still runs */
        joule_model *g;
        assert_joule_ok(joule_model_new(13, &g, &err), &err);
        qdq_conv_graph gr;
        build_qdq_conv(g, &r, 1.0f, &gr);
        const char *i_id[] = {"xf"};
        add_node(g, "Identity", 1, i_id, "xf_copy");
        assert_true(joule_qdq_match(g->graph, gr.conv, &p));
        assert_int_equal(p.n_covered, 5);
        assert_false(covers(&p, gr.dq_x));
        assert_true(covers(&p, gr.dq_w));
        joule_model_free(g);
    }
    {
        /* the conv's float output has a second reader: no fusion */
        joule_model *g;
        assert_joule_ok(joule_model_new(13, &g, &err), &err);
        qdq_conv_graph gr;
        build_qdq_conv(g, &r, 1.0f, &gr);
        const char *i_id[] = {"yf"};
        add_node(g, "Identity", 1, i_id, "yf_copy");
        assert_false(joule_qdq_match(g->graph, gr.conv, &p));
        assert_false(joule_qdq_match(g->graph, gr.relu, &p)); /* not an anchor */
        joule_model_free(g);
    }
    {
        /* per-channel weight scale on the wrong axis (DequantizeLinear's default, 1) */
        joule_model *g;
        assert_joule_ok(joule_model_new(13, &g, &err), &err);
        qdq_conv_graph gr;
        build_qdq_conv(g, &r, 1.0f, &gr);
        joule_node_remove_attr(gr.dq_w, "axis");
        assert_false(joule_qdq_match(g->graph, gr.conv, &p));
        joule_model_free(g);
    }
    {
        /* weights that are not constant */
        joule_model *g;
        assert_joule_ok(joule_model_new(13, &g, &err), &err);
        qdq_conv_graph gr;
        build_qdq_conv(g, &r, 1.0f, &gr);
        joule_value *w = joule_graph_find_value(g->graph, "w");
        joule_value *w2;
        assert_joule_ok(joule_graph_value(g->graph, "w_runtime", &w2, &err), &err);
        joule_graph_replace_uses(g->graph, w, w2);
        assert_false(joule_qdq_match(g->graph, gr.conv, &p));
        joule_model_free(g);
    }
    {
        /* no QuantizeLinear after the conv (float output) */
        joule_model *g;
        assert_joule_ok(joule_model_new(13, &g, &err), &err);
        qdq_conv_graph gr;
        build_qdq_conv(g, &r, 1.0f, &gr);
        joule_value *rf = joule_graph_find_value(g->graph, "rf");
        assert_joule_ok(joule_graph_remove_node(g->graph, gr.q, NULL, &err), &err);
        assert_non_null(rf);
        assert_false(joule_qdq_match(g->graph, gr.conv, &p));
        joule_model_free(g);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_quantize_spec, setup_model, teardown_model),
        cmocka_unit_test_setup_teardown(test_quantize_rounding_saturation, setup_model,
                                        teardown_model),
        cmocka_unit_test_setup_teardown(test_quantize_random, setup_model, teardown_model),
        cmocka_unit_test_setup_teardown(test_dequantize_spec, setup_model, teardown_model),
        cmocka_unit_test_setup_teardown(test_dequantize_random, setup_model, teardown_model),
        cmocka_unit_test_setup_teardown(test_quant_params_refused, setup_model, teardown_model),
        cmocka_unit_test_setup_teardown(test_dynamic_quantize_spec, setup_model, teardown_model),
        cmocka_unit_test_setup_teardown(test_dynamic_quantize_random, setup_model,
                                        teardown_model),
        cmocka_unit_test_setup_teardown(test_matmul_integer_spec, setup_model, teardown_model),
        cmocka_unit_test_setup_teardown(test_matmul_integer_random, setup_model, teardown_model),
        cmocka_unit_test_setup_teardown(test_qlinear_matmul_spec, setup_model, teardown_model),
        cmocka_unit_test_setup_teardown(test_qlinear_matmul_random, setup_model, teardown_model),
        cmocka_unit_test_setup_teardown(test_conv_integer_spec, setup_model, teardown_model),
        cmocka_unit_test_setup_teardown(test_conv_integer_random, setup_model, teardown_model),
        cmocka_unit_test_setup_teardown(test_qlinear_conv_spec, setup_model, teardown_model),
        cmocka_unit_test_setup_teardown(test_qlinear_conv_random, setup_model, teardown_model),
        cmocka_unit_test_setup_teardown(test_bad_output_refused, setup_model, teardown_model),
        cmocka_unit_test_setup_teardown(test_qdq_conv, setup_model, teardown_model),
        cmocka_unit_test_setup_teardown(test_qdq_matmul, setup_model, teardown_model),
        cmocka_unit_test_setup_teardown(test_qdq_gemm, setup_model, teardown_model),
        cmocka_unit_test_setup_teardown(test_qdq_match_refusals, setup_model, teardown_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* tests/unit/test_engine_fusion.c: the engine's float Conv fusions made at session creation
 * (eval/fuse.c): Conv -> BatchNormalization -> Relu / HardSwish (dense and depthwise) and
 * Conv -> Clip run as one kernel writing one tensor (the arena holds only the output) and agree
 * with a double-precision reference of the unfused graph; a BN whose input or output someone else
 * reads, or that is a graph output, is not folded and every output is still right. */
#include "common.h"

#include "joule/npy.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_graph_build.h"

/* ---- tests ---- */

/* x -> Relu -> Neg -> Abs -> Relu -> Neg -> Abs: six activations, at most two alive at once. */
enum { N = 2, C = 4, H = 6, W = 5, KS = 3 };

typedef enum { ACT_NONE, ACT_RELU, ACT_HSWISH, ACT_CLIP } act_kind;

/* Parameters of one Conv -> BN chain, filled with distinct values. */
typedef struct chain {
    int group;           /* 1 or C (depthwise) */
    bool bias;
    float w[C * C * KS * KS], b[C];
    float sc[C], bb[C], mu[C], var[C];
} chain;

static void fill_chain(chain *p, int group, bool bias)
{
    memset(p, 0, sizeof *p);
    p->group = group;
    p->bias = bias;
    int per = C / group * KS * KS;
    for (int i = 0; i < C * per; i++)
        p->w[i] = (float)((i * 37) % 23 - 11) / 17.0f;
    for (int c = 0; c < C; c++) {
        p->b[c] = 0.1f * (float)(c - 1);
        p->sc[c] = 0.5f + 0.3f * (float)c;
        p->bb[c] = -0.2f + 0.15f * (float)c;
        p->mu[c] = 0.05f * (float)(c * c) - 0.1f;
        p->var[c] = 0.3f + 0.4f * (float)c;
    }
}

/* Adds x -> Conv(pads 1) -> "y" -> BatchNormalization -> "z" to m. */
static void add_chain(joule_model *m, const chain *p)
{
    joule_error err = {{0}};
    int64_t wd[4] = {C, C / p->group, KS, KS}, cd[1] = {C};
    add_const_f32(m, "w", 4, wd, p->w);
    add_const_f32(m, "sc", 1, cd, p->sc);
    add_const_f32(m, "bb", 1, cd, p->bb);
    add_const_f32(m, "mu", 1, cd, p->mu);
    add_const_f32(m, "var", 1, cd, p->var);
    if (p->bias)
        add_const_f32(m, "b", 1, cd, p->b);
    const char *conv[3] = {"x", "w", "b"}, *bn[5] = {"y", "sc", "bb", "mu", "var"};
    joule_node *nc = add_node(m, "Conv", "conv", p->bias ? 3 : 2, conv, "y");
    int64_t pads[4] = {1, 1, 1, 1};
    assert_joule_ok(joule_node_set_attr_ints(m->graph, nc, "pads", pads, 4, &err), &err);
    assert_joule_ok(joule_node_set_attr_int(m->graph, nc, "group", p->group, &err), &err);
    add_node(m, "BatchNormalization", "bn", 5, bn, "z");
}

static double act(act_kind a, double v)
{
    switch (a) {
    case ACT_RELU:
        return v < 0 ? 0 : v;
    case ACT_HSWISH: {
        double t = v / 6 + 0.5;
        return v * (t < 0 ? 0 : t > 1 ? 1 : t);
    }
    case ACT_CLIP:
        return v < -0.25 ? -0.25 : v > 0.75 ? 0.75 : v;
    default:
        return v;
    }
}

/* Reference of the unfused graph at (n, o, r, c): conv, then BN when with_bn, then a. */
static double ref_at(const chain *p, const float *x, int n, int o, int r, int c, bool with_bn,
                     act_kind a)
{
    int cg = C / p->group, g = o / (C / p->group);
    double acc = p->bias ? p->b[o] : 0.0;
    for (int ci = 0; ci < cg; ci++)
        for (int i = 0; i < KS; i++)
            for (int j = 0; j < KS; j++) {
                int rr = r + i - 1, cc = c + j - 1;
                if (rr < 0 || rr >= H || cc < 0 || cc >= W)
                    continue;
                acc += (double)x[((n * C + g * cg + ci) * H + rr) * W + cc] *
                       p->w[((o * cg + ci) * KS + i) * KS + j];
            }
    if (with_bn)
        acc = (acc - p->mu[o]) / sqrt(p->var[o] + 1e-5) * p->sc[o] + p->bb[o];
    return act(a, acc);
}

static void check_output(const joule_tensor *t, const chain *p, const float *x, bool with_bn,
                         act_kind a, const char *what)
{
    assert_int_equal(t->count, N * C * H * W);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < C; o++)
            for (int r = 0; r < H; r++)
                for (int c = 0; c < W; c++) {
                    double ref = ref_at(p, x, n, o, r, c, with_bn, a);
                    double got = cf32(t)[((n * C + o) * H + r) * W + c];
                    if (fabs(got - ref) > 1e-5 + 1e-5 * fabs(ref))
                        fail_msg("%s[%d,%d,%d,%d] = %.9g, reference %.9g", what, n, o, r, c, got,
                                 ref);
                }
}

static joule_tensor *make_x(void)
{
    int64_t xd[4] = {N, C, H, W};
    joule_tensor *x = new_f32(4, xd);
    for (int i = 0; i < N * C * H * W; i++)
        f32(x)[i] = (float)((i * 53 + 7) % 41 - 20) / 13.0f;
    return x;
}

static joule_session *create(const joule_model *m)
{
    joule_error err = {{0}};
    joule_session *s = NULL;
    joule_session_options opt = {.threads = 1};
    assert_joule_ok(joule_session_create(m, &opt, &s, &err), &err);
    return s;
}

static void run(joule_session *s, const joule_tensor *x)
{
    joule_error err = {{0}};
    const joule_tensor *in[1] = {x};
    assert_joule_ok(joule_session_run(s, in, 1, &err), &err);
}

#define OUT_BYTES (((size_t)N * C * H * W * sizeof(float) + 63) / 64 * 64)

/* Conv -> BN -> activation with only the activation an output: one fused kernel, one tensor. */
static void run_fused(int group, bool bias, act_kind a)
{
    joule_model *m = new_model();
    int64_t xd[4] = {N, C, H, W};
    add_input(m, "x", JOULE_F32, 4, xd, NULL);
    chain p;
    fill_chain(&p, group, bias);
    add_chain(m, &p);
    const char *zin[1] = {"z"};
    add_node(m, a == ACT_RELU ? "Relu" : "HardSwish", "act", 1, zin, "out");
    add_output(m, "out");
    joule_session *s = create(m);
    assert_int_equal(joule_session_peak_bytes(s), OUT_BYTES); /* y and z never materialise */
    joule_tensor *x = make_x();
    run(s, x);
    check_output(joule_session_output(s, 0), &p, cf32(x), true, a, "out");
    joule_tensor_free(x);
    joule_session_free(s);
    joule_model_free(m);
}

static void test_conv_bn_relu_fused(void **state)
{
    (void)state;
    run_fused(1, true, ACT_RELU);
    run_fused(1, false, ACT_RELU);
}

static void test_depthwise_bn_hardswish_fused(void **state)
{
    (void)state;
    run_fused(C, false, ACT_HSWISH);
    run_fused(C, true, ACT_HSWISH);
}

/* Conv -> Clip (opset 17: bounds as constant inputs), no BN: the activation alone is fused. */
static void test_conv_clip_fused(void **state)
{
    (void)state;
    joule_error err = {{0}};
    joule_model *m = new_model();
    int64_t xd[4] = {N, C, H, W}, wd[4] = {C, C, KS, KS};
    add_input(m, "x", JOULE_F32, 4, xd, NULL);
    chain p;
    fill_chain(&p, 1, true);
    float lo = -0.25f, hi = 0.75f;
    add_const_f32(m, "w", 4, wd, p.w);
    int64_t cd[1] = {C};
    add_const_f32(m, "b", 1, cd, p.b);
    add_const_f32(m, "lo", 0, NULL, &lo);
    add_const_f32(m, "hi", 0, NULL, &hi);
    const char *conv[3] = {"x", "w", "b"}, *clip[3] = {"y", "lo", "hi"};
    joule_node *nc = add_node(m, "Conv", "conv", 3, conv, "y");
    int64_t pads[4] = {1, 1, 1, 1};
    assert_joule_ok(joule_node_set_attr_ints(m->graph, nc, "pads", pads, 4, &err), &err);
    add_node(m, "Clip", "clip", 3, clip, "out");
    add_output(m, "out");
    joule_session *s = create(m);
    assert_int_equal(joule_session_peak_bytes(s), OUT_BYTES);
    joule_tensor *x = make_x();
    run(s, x);
    check_output(joule_session_output(s, 0), &p, cf32(x), false, ACT_CLIP, "out");
    joule_tensor_free(x);
    joule_session_free(s);
    joule_model_free(m);
}

/* The BN's output is a graph output too: the BN is folded (its input y stays inner) but the Relu
 * keeps its node; z and the Relu's output are right. */
static void test_bn_output_exposed_not_fused(void **state)
{
    (void)state;
    joule_model *m = new_model();
    int64_t xd[4] = {N, C, H, W};
    add_input(m, "x", JOULE_F32, 4, xd, NULL);
    chain p;
    fill_chain(&p, 1, true);
    add_chain(m, &p);
    const char *zin[1] = {"z"};
    add_node(m, "Relu", "act", 1, zin, "out");
    add_output(m, "out");
    add_output(m, "z");
    joule_session *s = create(m);
    assert_int_equal(joule_session_peak_bytes(s), 2 * OUT_BYTES); /* z and out, no y */
    joule_tensor *x = make_x();
    run(s, x);
    check_output(joule_session_output(s, 0), &p, cf32(x), true, ACT_RELU, "out");
    check_output(joule_session_output(s, 1), &p, cf32(x), true, ACT_NONE, "z");
    joule_tensor_free(x);
    joule_session_free(s);
    joule_model_free(m);
}

/* The Conv's output is a graph output: the BN is not folded; y, z and the Relu's output exist
 * and are right. */
static void test_conv_output_exposed_not_folded(void **state)
{
    (void)state;
    joule_model *m = new_model();
    int64_t xd[4] = {N, C, H, W};
    add_input(m, "x", JOULE_F32, 4, xd, NULL);
    chain p;
    fill_chain(&p, 1, false);
    add_chain(m, &p);
    const char *zin[1] = {"z"};
    add_node(m, "Relu", "act", 1, zin, "out");
    add_output(m, "out");
    add_output(m, "y");
    joule_session *s = create(m);
    assert_true(joule_session_peak_bytes(s) >= 3 * OUT_BYTES);
    joule_tensor *x = make_x();
    run(s, x);
    check_output(joule_session_output(s, 0), &p, cf32(x), true, ACT_RELU, "out");
    check_output(joule_session_output(s, 1), &p, cf32(x), false, ACT_NONE, "y");
    joule_tensor_free(x);
    joule_session_free(s);
    joule_model_free(m);
}

/* The Conv's output is read twice (BN and a Relu) and the BN's output twice (Relu, HardSwish):
 * no BN is folded, no activation fused; every output matches the unfused reference. */
static void test_conv_output_read_twice_not_folded(void **state)
{
    (void)state;
    joule_model *m = new_model();
    int64_t xd[4] = {N, C, H, W};
    add_input(m, "x", JOULE_F32, 4, xd, NULL);
    chain p;
    fill_chain(&p, C, true);
    add_chain(m, &p);
    const char *yin[1] = {"y"}, *zin[1] = {"z"};
    add_node(m, "Relu", "relu_y", 1, yin, "ry");
    add_node(m, "Relu", "relu_z", 1, zin, "rz");
    add_node(m, "HardSwish", "hs_z", 1, zin, "hz");
    add_output(m, "ry");
    add_output(m, "rz");
    add_output(m, "hz");
    joule_session *s = create(m);
    assert_true(joule_session_peak_bytes(s) > 3 * OUT_BYTES);
    joule_tensor *x = make_x();
    run(s, x);
    check_output(joule_session_output(s, 0), &p, cf32(x), false, ACT_RELU, "ry");
    check_output(joule_session_output(s, 1), &p, cf32(x), true, ACT_RELU, "rz");
    check_output(joule_session_output(s, 2), &p, cf32(x), true, ACT_HSWISH, "hz");
    joule_tensor_free(x);
    joule_session_free(s);
    joule_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_bn_relu_fused),
        cmocka_unit_test(test_depthwise_bn_hardswish_fused),
        cmocka_unit_test(test_conv_clip_fused),
        cmocka_unit_test(test_bn_output_exposed_not_fused),
        cmocka_unit_test(test_conv_output_exposed_not_folded),
        cmocka_unit_test(test_conv_output_read_twice_not_folded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

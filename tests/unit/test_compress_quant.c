/* tests/unit/test_compress_quant.c: the quantization passes on the fixture models and on small
 * graphs built here.
 *  - fp16: every node's float inputs agree in dtype after shape inference (checked here
 *    independently of the pass's own check), Cast `to` matches its output, shape-computing
 *    paths, Range and Resize scales stay float32, weights out of range are clamped and reported,
 *    graph inputs/outputs keep float32 (or become float16 on request), and the fixtures' logits
 *    stay close to float32 through joule's engine;
 *  - int8 dynamic and static: logits agree with float on the 64 test images (top-1), every
 *    Conv/MatMul/Gemm is replaced or wrapped, QDQ chains are the ones the engine fuses into
 *    integer kernels, int32 bias scales are exactly x_scale * w_scale, QOperator output runs,
 *    exclusions are honoured, and refusals leave the model untouched. */
#include "common.h"
#include "test_compress_util.h"
#include "test_graph_build.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/quant_internal.h"
#include "eval/cpu/quant/qdq.h"
#include "eval/engine_internal.h"
#include "joule/compress.h"
#include "joule/npy.h"
#include "joule/pipeline.h"
#include "joule/quantize.h"

/* ---- helpers ---- */

static joule_model *load_fixture(const char *name)
{
    char rel[256], path[1024];
    snprintf(rel, sizeof rel, "tests/data/%s.onnx", name);
    joule_error err = {{0}};
    joule_model *m = NULL;
    assert_joule_ok(joule_model_load(test_source_path(rel, path, sizeof path), &m, &err), &err);
    return m;
}

static bool have_fixture(const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "tests/data/%s.onnx", name);
    return tc_have(rel);
}

static joule_tensor *images(void)
{
    char path[1024];
    joule_error err = {{0}};
    joule_tensor *t = NULL;
    assert_joule_ok(joule_npy_read(test_source_path("tests/data/fmnist_test64.npy", path,
                                                    sizeof path),
                                   &t, &err),
                    &err);
    return t;
}

/* Saves and reloads m, as a user of the output would see it. */
static joule_model *roundtrip(const joule_model *m)
{
    joule_error err = {{0}};
    void *buf = NULL;
    size_t len = 0;
    assert_joule_ok(joule_model_serialize(m, &buf, &len, &err), &err);
    joule_model *r = NULL;
    assert_joule_ok(joule_model_load_buffer(buf, len, "roundtrip", NULL, &r, &err), &err);
    free(buf);
    return r;
}

/* Logits of m on x ([64,1,28,28]) through joule's engine, as a malloc'd float array; the
 * output is converted from float16 when the model produces it. */
static float *logits(const joule_model *m, const joule_tensor *x, size_t *n_out)
{
    joule_error err = {{0}};
    joule_input_shape sh = {.name = m->graph->inputs[0]->name};
    sh.shape.rank = x->rank;
    for (int d = 0; d < x->rank; d++)
        sh.shape.dims[d].size = x->dims[d];
    joule_session_options so = {.threads = 1, .input_shapes = &sh, .n_input_shapes = 1};
    joule_session *s = NULL;
    assert_joule_ok(joule_session_create(m, &so, &s, &err), &err);
    const joule_tensor *feed = x;
    joule_tensor *x16 = NULL;
    if (joule_session_input(s, 0)->dtype == JOULE_F16) {
        assert_joule_ok(joule_tensor_new(JOULE_F16, x->rank, x->dims, &x16, &err), &err);
        uint16_t *p = joule_tensor_mutable_data(x16);
        for (size_t i = 0; i < x->count; i++)
            p[i] = joule_f32_to_f16(((const float *)x->data)[i]);
        feed = x16;
    }
    const joule_tensor *in[1] = {feed};
    assert_joule_ok(joule_session_run(s, in, 1, &err), &err);
    const joule_tensor *y = joule_session_output(s, 0);
    float *out = malloc(y->count * sizeof *out);
    assert_non_null(out);
    for (size_t i = 0; i < y->count; i++)
        out[i] = y->dtype == JOULE_F16 ? joule_f16_to_f32(((const uint16_t *)y->data)[i])
                                       : ((const float *)y->data)[i];
    *n_out = y->count;
    joule_tensor_free(x16);
    joule_session_free(s);
    return out;
}

static size_t argmax(const float *p, size_t k)
{
    size_t b = 0;
    for (size_t j = 1; j < k; j++)
        if (p[j] > p[b])
            b = j;
    return b;
}

/* Top-1 agreement (out of 64) and the largest logit difference. */
static size_t agreement(const float *a, const float *b, size_t n, double *maxdiff)
{
    size_t k = n / 64, same = 0;
    *maxdiff = 0;
    for (size_t i = 0; i < 64; i++)
        same += argmax(a + i * k, k) == argmax(b + i * k, k);
    for (size_t i = 0; i < n; i++)
        *maxdiff = fmax(*maxdiff, fabs((double)a[i] - (double)b[i]));
    return same;
}

/* Top-1 agreement asked of int8 with per-channel weights and uint8 activations: 98% (63 of
 * 64), except on mobile, whose 64 images hold two near-ties (top-2 logit margins 0.02 and
 * 0.07) and whose BatchNorm-folded depthwise convs amplify activation rounding; its 10,000-image
 * accuracy drop is what tests/interop/measure_quant.sh measures (target: 0.5 pt). */
static size_t min_agree(const char *name)
{
    /* the mobile net (depthwise convs, tiny channels) loses the most to int8; its weights-in-
     * Constant-nodes copy is the same network */
    return strncmp(name, "mobile", 6) == 0 ? 61 : 63;
}

static size_t count_op(const joule_graph *g, const char *op)
{
    size_t n = 0;
    for (size_t i = 0; i < g->n_nodes; i++)
        n += strcmp(g->nodes[i]->op_type, op) == 0;
    return n;
}

static joule_dtype dt(const joule_value *v)
{
    return v->data ? v->data->dtype : v->dtype;
}

static bool is_float(joule_dtype t)
{
    return t == JOULE_F32 || t == JOULE_F16 || t == JOULE_F64 || t == JOULE_BF16;
}

/* An independent type check after shape inference: ops whose inputs share one type T have the
 * same float dtype on all of them and on their output; Cast outputs what `to` says. */
static void check_types(joule_model *m)
{
    joule_error err = {{0}};
    assert_joule_ok(joule_infer_shapes(m, NULL, 0, &err), &err);
    static const char *const same_t[] = {
        "Add", "Sub", "Mul", "Div", "MatMul", "Gemm", "Conv", "Relu", "Concat", "Max", "Min",
        "Sum", "LayerNormalization", "Softmax", "Erf", "Sqrt", "HardSwish", "ReduceMean",
        "GlobalAveragePool", "MaxPool", "BatchNormalization", "Flatten", "Reshape", "Transpose",
        NULL};
    const joule_graph *g = m->graph;
    for (size_t i = 0; i < g->n_nodes; i++) {
        const joule_node *n = g->nodes[i];
        bool homo = false;
        for (size_t k = 0; same_t[k]; k++)
            homo |= strcmp(n->op_type, same_t[k]) == 0;
        if (strcmp(n->op_type, "Cast") == 0)
            assert_int_equal(joule_attr_int(n, "to", 0), dt(n->outputs[0]));
        if (!homo)
            continue;
        joule_dtype t = JOULE_UNDEFINED;
        for (int k = 0; k < n->n_inputs; k++) {
            if (!n->inputs[k] || !is_float(dt(n->inputs[k])))
                continue;
            if (t == JOULE_UNDEFINED)
                t = dt(n->inputs[k]);
            else if (dt(n->inputs[k]) != t)
                fail_msg("%s (%s): input %d is %s, input 0 is %s", n->name, n->op_type, k,
                         joule_dtype_name(dt(n->inputs[k])), joule_dtype_name(t));
        }
        if (t != JOULE_UNDEFINED && n->outputs[0] && n->outputs[0]->dtype != t)
            fail_msg("%s (%s): output is %s, inputs %s", n->name, n->op_type,
                     joule_dtype_name(n->outputs[0]->dtype), joule_dtype_name(t));
    }
}

static joule_model *cleaned(const char *name)
{
    joule_error err = {{0}};
    joule_model *m = load_fixture(name);
    joule_cleanup_options co;
    joule_cleanup_defaults(&co);
    joule_report r;
    joule_report_init(&r);
    assert_joule_ok(joule_cleanup(m, &co, &r, &err), &err);
    joule_report_free(&r);
    return m;
}

static const char *const fixtures[] = {"mlp", "cnn", "mobile", "transformer", "mobile_constants"};
#define N_FIXTURES (sizeof fixtures / sizeof *fixtures)

/* ---- fp16 ---- */

static void test_fp16_fixtures(void **state)
{
    (void)state;
    joule_error err = {{0}};
    joule_tensor *x = images();
    for (size_t f = 0; f < N_FIXTURES; f++) {
        if (!have_fixture(fixtures[f]))
            continue;
        for (int keep = 1; keep >= 0; keep--) {
            joule_model *ref = load_fixture(fixtures[f]), *m = load_fixture(fixtures[f]);
            size_t n_ref, n_q;
            float *a = logits(ref, x, &n_ref);
            joule_fp16_options o;
            joule_fp16_defaults(&o);
            o.keep_io_types = keep;
            joule_report r;
            joule_report_init(&r);
            assert_joule_ok(joule_quantize_fp16(m, &o, &r, &err), &err);
            assert_true(r.n > 0);
            joule_model *back = roundtrip(m);
            check_types(back);
            assert_int_equal(back->graph->inputs[0]->dtype, keep ? JOULE_F32 : JOULE_F16);
            assert_int_equal(back->graph->outputs[0]->dtype, keep ? JOULE_F32 : JOULE_F16);
            assert_string_equal(back->graph->outputs[0]->name, ref->graph->outputs[0]->name);
            /* no float32 weights are left */
            for (size_t i = 0; i < back->graph->n_initializers; i++)
                assert_int_not_equal(back->graph->initializers[i]->data->dtype, JOULE_F32);
            float *b = logits(back, x, &n_q);
            assert_int_equal(n_ref, n_q);
            double md;
            size_t same = agreement(a, b, n_ref, &md);
            print_message("fp16 %s keep_io=%d: top-1 agreement %zu/64, max logit diff %.4f\n",
                          fixtures[f], keep, same, md);
            assert_true(same >= 63);
            assert_true(md < 0.1);
            free(a);
            free(b);
            joule_report_free(&r);
            joule_model_free(back);
            joule_model_free(ref);
            joule_model_free(m);
        }
    }
    joule_tensor_free(x);
}

/* ---- a graph with every trap the converters fall into ---- */

/* x [N,4] -> MatMul W[4,8] -> + ConstantOfShape([2 * dim1(x)]) (shape path in float)
 *   -> * Constant(0.5) -> + Range(0., 8., 1.) -> y;  y -> Reshape [N,1,1,8] -> Resize (float
 *   scales) -> z;  y + big (1e5, 1e-9: clamped) -> w */
static joule_model *trap_model(void)
{
    joule_error err = {{0}};
    joule_model *m = NULL;
    assert_joule_ok(joule_model_new(13, &m, &err), &err);
    const int64_t xd[2] = {-1, 4};
    add_input(m, "x", JOULE_F32, 2, xd, "N");
    float w[32], big[8] = {1e5f, 1e-9f, 0, 0, 0, 0, 0, 0};
    for (int i = 0; i < 32; i++)
        w[i] = (float)((i * 7) % 11 - 5) * 0.1f;
    int64_t wd[2] = {4, 8}, d8 = 8, one = 1, four = 4;
    add_const_f32(m, "W", 2, wd, w);
    add_const_f32(m, "big", 1, &d8, big);
    const float two = 2.0f, r0 = 0, r1 = 8, r2 = 1, sc[4] = {1, 1, 1, 2};
    add_const_f32(m, "two", 0, NULL, &two);
    add_const_f32(m, "r_start", 0, NULL, &r0);
    add_const_f32(m, "r_limit", 0, NULL, &r1);
    add_const_f32(m, "r_delta", 0, NULL, &r2);
    add_const_f32(m, "scales", 1, &four, sc);
    const int64_t idx = 1, ax = 0, shp[4] = {-1, 1, 1, 8};
    add_const(m, "idx1", JOULE_I64, 0, NULL, &idx);
    add_const(m, "axes0", JOULE_I64, 1, &one, &ax);
    add_const(m, "shape4", JOULE_I64, 1, &four, shp);

    const char *a[][3] = {{"x"}, {"x_shape", "idx1"}, {"dim1"}, {"dim1_f", "two"}, {"twice_f"},
                          {"twice", "axes0"}, {"cos_shape"}, {"x", "W"}, {"mm", "zeros"}};
    add_node(m, "Shape", "shape", 1, a[0], "x_shape");
    add_node(m, "Gather", "gather", 2, a[1], "dim1");
    joule_node *c1 = add_node(m, "Cast", "cast_to_float", 1, a[2], "dim1_f");
    assert_joule_ok(joule_node_set_attr_int(m->graph, c1, "to", JOULE_F32, &err), &err);
    add_node(m, "Mul", "shape_mul", 2, a[3], "twice_f");
    joule_node *c2 = add_node(m, "Cast", "cast_to_int", 1, a[4], "twice");
    assert_joule_ok(joule_node_set_attr_int(m->graph, c2, "to", JOULE_I64, &err), &err);
    add_node(m, "Unsqueeze", "unsq", 2, a[5], "cos_shape");
    add_node(m, "ConstantOfShape", "zeros_of_shape", 1, a[6], "zeros");
    add_node(m, "MatMul", "matmul", 2, a[7], "mm");
    add_node(m, "Add", "add_zeros", 2, a[8], "mm0");
    joule_node *k = add_node(m, "Constant", "half", 0, NULL, "half_v");
    assert_joule_ok(joule_node_set_attr_float(m->graph, k, "value_float", 0.5f, &err), &err);
    const char *b[][3] = {{"mm0", "half_v"}, {"r_start", "r_limit", "r_delta"}, {"scaled", "rng"},
                          {"y", "shape4"}, {"y4", "", "scales"}, {"y", "big"}};
    add_node(m, "Mul", "mul_half", 2, b[0], "scaled");
    add_node(m, "Range", "range", 3, b[1], "rng");
    add_node(m, "Add", "add_range", 2, b[2], "y");
    add_node(m, "Reshape", "to4d", 2, b[3], "y4");
    joule_node *rs = add_node(m, "Resize", "resize", 3, b[4], "z");
    assert_joule_ok(joule_node_set_attr_string(m->graph, rs, "mode", "nearest", &err), &err);
    add_node(m, "Add", "add_big", 2, b[5], "w");
    add_output(m, "y");
    add_output(m, "z");
    add_output(m, "w");
    return m;
}

static const joule_node *find_node(const joule_graph *g, const char *name)
{
    for (size_t i = 0; i < g->n_nodes; i++)
        if (strcmp(g->nodes[i]->name, name) == 0)
            return g->nodes[i];
    return NULL;
}

static float *run_trap(const joule_model *m, size_t out, size_t *n)
{
    joule_error err = {{0}};
    joule_input_shape sh = {.name = "x"};
    sh.shape.rank = 2;
    sh.shape.dims[0].size = 3;
    sh.shape.dims[1].size = 4;
    joule_session_options so = {.threads = 1, .input_shapes = &sh, .n_input_shapes = 1};
    joule_session *s = NULL;
    assert_joule_ok(joule_session_create(m, &so, &s, &err), &err);
    int64_t d[2] = {3, 4};
    joule_tensor *x = NULL;
    bool h = joule_session_input(s, 0)->dtype == JOULE_F16;
    assert_joule_ok(joule_tensor_new(h ? JOULE_F16 : JOULE_F32, 2, d, &x, &err), &err);
    for (size_t i = 0; i < 12; i++) {
        float v = (float)i * 0.25f - 1.0f;
        if (h)
            ((uint16_t *)joule_tensor_mutable_data(x))[i] = joule_f32_to_f16(v);
        else
            ((float *)joule_tensor_mutable_data(x))[i] = v;
    }
    const joule_tensor *in[1] = {x};
    assert_joule_ok(joule_session_run(s, in, 1, &err), &err);
    const joule_tensor *y = joule_session_output(s, out);
    float *r = malloc(y->count * sizeof *r);
    for (size_t i = 0; i < y->count; i++)
        r[i] = y->dtype == JOULE_F16 ? joule_f16_to_f32(((const uint16_t *)y->data)[i])
                                     : ((const float *)y->data)[i];
    *n = y->count;
    joule_tensor_free(x);
    joule_session_free(s);
    return r;
}

static void test_fp16_traps(void **state)
{
    (void)state;
    joule_error err = {{0}};
    for (int keep = 1; keep >= 0; keep--) {
        joule_model *ref = trap_model(), *m = trap_model();
        joule_fp16_options o;
        joule_fp16_defaults(&o);
        o.keep_io_types = keep;
        joule_report r;
        joule_report_init(&r);
        assert_joule_ok(joule_quantize_fp16(m, &o, &r, &err), &err);
        joule_model *back = roundtrip(m);
        check_types(back);
        const joule_graph *g = back->graph;
        /* the shape path stays float32: its Cast still says float, its Mul reads float32 */
        const joule_node *c1 = find_node(g, "cast_to_float"), *sm = find_node(g, "shape_mul");
        assert_int_equal(joule_attr_int(c1, "to", 0), JOULE_F32);
        assert_int_equal(dt(sm->inputs[1]), JOULE_F32);
        /* Range stays float32 (block list); ConstantOfShape and Constant become float16 */
        assert_int_equal(dt(find_node(g, "range")->outputs[0]), JOULE_F32);
        const joule_node *cos = find_node(g, "zeros_of_shape"), *half = find_node(g, "half");
        assert_int_equal(joule_node_attr(cos, "value")->t->dtype, JOULE_F16);
        assert_int_equal(joule_node_attr(half, "value")->t->dtype, JOULE_F16);
        /* MatMul computes in float16; Resize reads float16 data and float32 scales */
        const joule_node *mm = find_node(g, "matmul"), *rs = find_node(g, "resize");
        assert_int_equal(dt(mm->inputs[0]), JOULE_F16);
        assert_int_equal(dt(mm->inputs[1]), JOULE_F16);
        assert_int_equal(dt(rs->inputs[0]), JOULE_F16);
        assert_int_equal(dt(rs->inputs[2]), JOULE_F32);
        for (size_t i = 0; i < g->n_outputs; i++)
            assert_int_equal(g->outputs[i]->dtype, keep ? JOULE_F32 : JOULE_F16);
        assert_string_equal(g->outputs[0]->name, "y");
        assert_string_equal(g->outputs[1]->name, "z");
        /* the clamped weight is reported */
        bool noted = false;
        for (size_t i = 0; i < r.n; i++)
            if (r.rows[i].note && strstr(r.rows[i].note, "1 entries clamped to +-65504, 1 tiny"))
                noted = true;
        assert_true(noted);
        /* same numbers as float32 (y and z; w holds the clamped 1e5) */
        for (size_t out = 0; out < 3; out++) {
            size_t na, nb;
            float *a = run_trap(ref, out, &na), *b = run_trap(back, out, &nb);
            assert_int_equal(na, nb);
            for (size_t i = 0; i < na; i++) {
                double want = a[i];
                if (out == 2 && a[i] > 60000)
                    want = 65504 + (a[i] - 1e5);
                assert_true(fabs(want - b[i]) <= 2e-3 * fmax(1.0, fabs(want)) + 0.01);
            }
            free(a);
            free(b);
        }
        joule_report_free(&r);
        joule_model_free(back);
        joule_model_free(ref);
        joule_model_free(m);
    }
}

/* Block lists by op and by node name; the checker names a mismatching node. */
static void test_fp16_block_lists(void **state)
{
    (void)state;
    joule_error err = {{0}};
    joule_model *m = trap_model();
    joule_fp16_options o;
    joule_fp16_defaults(&o);
    const char *ops[1] = {"MatMul"}, *names[1] = {"add_*"};
    o.block_ops = ops;
    o.n_block_ops = 1;
    o.block_nodes = names;
    o.n_block_nodes = 1;
    assert_joule_ok(joule_quantize_fp16(m, &o, NULL, &err), &err);
    check_types(m);
    const joule_graph *g = m->graph;
    assert_int_equal(dt(find_node(g, "matmul")->outputs[0]), JOULE_F32);
    assert_int_equal(dt(find_node(g, "add_range")->outputs[0]), JOULE_F32);
    assert_int_equal(dt(find_node(g, "mul_half")->outputs[0]), JOULE_F16);
    joule_model_free(m);

    /* Add(float16, float32) is what the converter must never leave behind */
    m = trap_model();
    joule_node *add = (joule_node *)find_node(m->graph, "add_big");
    assert_joule_ok(joule_infer_shapes(m, NULL, 0, &err), &err);
    add->inputs[0]->dtype = JOULE_F16;
    assert_int_equal(jq_check_float_types(m, &err), JOULE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "add_big"));
    joule_model_free(m);
}

/* ---- int8 dynamic ---- */

static void test_dynamic_fixtures(void **state)
{
    (void)state;
    joule_error err = {{0}};
    joule_tensor *x = images();
    for (size_t f = 0; f < N_FIXTURES; f++) {
        if (!have_fixture(fixtures[f]))
            continue;
        /* per-tensor weights: not on mobile, whose BatchNorm-folded depthwise weights differ by
         * 18x between channels */
        for (int per_tensor = 0; per_tensor <= (strncmp(fixtures[f], "mobile", 6) != 0); per_tensor++) {
            joule_model *ref = load_fixture(fixtures[f]), *m = cleaned(fixtures[f]);
            size_t before = count_op(m->graph, "Conv") + count_op(m->graph, "Gemm");
            joule_dynamic_options o;
            joule_dynamic_defaults(&o);
            o.per_tensor = per_tensor;
            joule_report r;
            joule_report_init(&r);
            assert_joule_ok(joule_quantize_dynamic(m, &o, &r, &err), &err);
            joule_model *back = roundtrip(m);
            const joule_graph *g = back->graph;
            assert_int_equal(count_op(g, "Conv") + count_op(g, "Gemm"), 0);
            assert_true(count_op(g, "ConvInteger") + count_op(g, "MatMulInteger") >= before);
            assert_true(count_op(g, "DynamicQuantizeLinear") > 0);
            /* MatMuls with a constant weight are all gone */
            for (size_t i = 0; i < g->n_nodes; i++)
                if (strcmp(g->nodes[i]->op_type, "MatMul") == 0)
                    assert_null(g->nodes[i]->inputs[1]->data);
            size_t na, nb;
            float *a = logits(ref, x, &na), *b = logits(back, x, &nb);
            double md;
            size_t same = agreement(a, b, na, &md);
            print_message("int8 dynamic %s%s: top-1 agreement %zu/64, max logit diff %.4f\n",
                          fixtures[f], per_tensor ? " per-tensor" : "", same, md);
            assert_true(same >= min_agree(fixtures[f]));
            free(a);
            free(b);
            joule_report_free(&r);
            joule_model_free(back);
            joule_model_free(ref);
            joule_model_free(m);
        }
    }
    joule_tensor_free(x);
}

static void test_dynamic_exclude_and_refuse(void **state)
{
    (void)state;
    joule_error err = {{0}};
    joule_model *m = cleaned("cnn");
    joule_dynamic_options o;
    joule_dynamic_defaults(&o);
    const char *ex[1] = {"Conv"};
    o.exclude.items = ex;
    o.exclude.n = 1;
    joule_report r;
    joule_report_init(&r);
    assert_joule_ok(joule_quantize_dynamic(m, &o, &r, &err), &err);
    assert_int_equal(count_op(m->graph, "Conv"), 2);
    assert_int_equal(count_op(m->graph, "ConvInteger"), 0);
    assert_int_equal(count_op(m->graph, "MatMulInteger"), 2);
    bool noted = false;
    for (size_t i = 0; i < r.n; i++)
        noted |= r.rows[i].note && strstr(r.rows[i].note, "left in float: excluded") != NULL;
    assert_true(noted);
    joule_report_free(&r);
    joule_model_free(m);

    /* opset 10 has no DynamicQuantizeLinear: refused, nothing changed */
    m = trap_model();
    m->opsets[0].version = 10;
    size_t nodes = m->graph->n_nodes;
    assert_int_equal(joule_quantize_dynamic(m, NULL, NULL, &err), JOULE_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "opset 10"));
    assert_int_equal(m->graph->n_nodes, nodes);
    joule_model_free(m);
}

/* ---- int8 static ---- */

/* Calibration data: the full training set when installed (first 512 images), else the 64
 * test images. */
static void calib_source(joule_static_options *o, joule_tensor *x)
{
    static const char *train = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";
    FILE *f = fopen(train, "rb");
    if (f) {
        fclose(f);
        o->calib_path = train;
        o->calib_limit = 512;
    } else {
        o->calib_tensor = x;
    }
}

/* Every Conv/MatMul/Gemm with constant weights sits in a chain the engine fuses. */
static size_t check_fused(const joule_graph *g)
{
    size_t fused = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        const joule_node *n = g->nodes[i];
        if (strcmp(n->op_type, "Conv") && strcmp(n->op_type, "Gemm") && strcmp(n->op_type, "MatMul"))
            continue;
        joule_qdq_pattern p;
        bool ok = joule_qdq_match(g, n, &p);
        if (!ok && strcmp(n->op_type, "MatMul") == 0) {
            const joule_node *pb = joule_graph_producer(g, n->inputs[1]);
            if (!pb || strcmp(pb->op_type, "DequantizeLinear") != 0)
                continue; /* activation x activation: left in float */
        }
        if (!ok)
            fail_msg("%s (%s) is not a fusable QDQ chain", n->name, n->op_type);
        fused++;
        /* an int32 bias's scale is exactly x_scale * w_scale */
        if (p.inputs[JOULE_QDQ_BIAS] && p.inputs[JOULE_QDQ_BIAS]->data->dtype == JOULE_I32) {
            const float xs = ((const float *)p.inputs[JOULE_QDQ_X_SCALE]->data->data)[0];
            const joule_tensor *ws = p.inputs[JOULE_QDQ_W_SCALE]->data,
                               *bs = p.inputs[JOULE_QDQ_BIAS_SCALE]->data;
            for (size_t c = 0; c < bs->count; c++)
                assert_true(((const float *)bs->data)[c] ==
                            xs * ((const float *)ws->data)[ws->count == 1 ? 0 : c]);
        }
    }
    return fused;
}

/* How many nodes of the engine's plan for m (batch of x) run a fused QDQ integer kernel. */
static size_t engine_fused(const joule_model *m, const joule_tensor *x)
{
    joule_error err = {{0}};
    joule_input_shape sh = {.name = m->graph->inputs[0]->name};
    sh.shape.rank = x->rank;
    for (int d = 0; d < x->rank; d++)
        sh.shape.dims[d].size = x->dims[d];
    joule_session_options so = {.threads = 1, .input_shapes = &sh, .n_input_shapes = 1};
    joule_session *s = NULL;
    assert_joule_ok(joule_session_create(m, &so, &s, &err), &err);
    assert_true(s->planned);
    size_t n = 0;
    for (size_t i = 0; i < s->g->n_nodes; i++) {
        const eng_node *en = &s->nodes[i];
        if (en->run && en->kernel && strncmp(en->kernel->name, "cpu.quant.qdq_", 14) == 0)
            n++;
    }
    joule_session_free(s);
    return n;
}

static void run_static(const char *name, joule_static_options *o, const char *what,
                       joule_tensor *x, bool expect_fused, size_t min_same)
{
    joule_error err = {{0}};
    joule_model *ref = load_fixture(name), *m = cleaned(name);
    joule_report r;
    joule_report_init(&r);
    joule_calib_stats stats = {0};
    o->stats = &stats;
    o->threads = 1;
    assert_joule_ok(joule_quantize_static(m, o, &r, &err), &err);
    assert_true(stats.items > 0 && stats.items_per_s > 0);
    joule_model *back = roundtrip(m);
    const joule_graph *g = back->graph;
    assert_string_equal(g->outputs[0]->name, ref->graph->outputs[0]->name);
    assert_int_equal(g->outputs[0]->dtype, JOULE_F32);
    if (expect_fused) {
        size_t chains = check_fused(g), fused = engine_fused(back, x);
        print_message("int8 %s %s: %zu QDQ chains, %zu run as fused integer kernels\n", name,
                      what, chains, fused);
        assert_true(chains > 0);
        assert_int_equal(fused, chains);
    }
    size_t na, nb;
    float *a = logits(ref, x, &na), *b = logits(back, x, &nb);
    double md;
    size_t same = agreement(a, b, na, &md);
    print_message("int8 %s %s: top-1 agreement %zu/64, max logit diff %.4f, calibration %zu items "
                  "x %d passes, %.0f items/s\n",
                  name, what, same, md, stats.items, stats.passes, stats.items_per_s);
    assert_true(same >= min_same);
    free(a);
    free(b);
    joule_report_free(&r);
    joule_model_free(back);
    joule_model_free(ref);
    joule_model_free(m);
}

static void test_static_qdq(void **state)
{
    (void)state;
    joule_tensor *x = images();
    for (size_t f = 0; f < N_FIXTURES; f++) {
        if (!have_fixture(fixtures[f]))
            continue;
        joule_static_options o;
        joule_static_defaults(&o);
        calib_source(&o, x);
        run_static(fixtures[f], &o, "qdq percentile", x, true, min_agree(fixtures[f]));
    }
    joule_tensor_free(x);
}

static void test_static_variants(void **state)
{
    (void)state;
    joule_tensor *x = images();
    const char *models[2] = {"cnn", "mlp"};
    for (int f = 0; f < 2; f++) {
        joule_static_options o;
        for (int meth = JOULE_CALIB_MINMAX; meth <= JOULE_CALIB_MSE; meth++) {
            joule_static_defaults(&o);
            calib_source(&o, x);
            o.method = (joule_calib_method)meth;
            /* entropy clips the cnn's Relu outputs hard (about a quarter of their range) */
            run_static(models[f], &o, joule_calib_method_name(o.method), x, true,
                       meth == JOULE_CALIB_ENTROPY ? 60 : 63);
        }
        joule_static_defaults(&o);
        calib_source(&o, x);
        o.per_tensor = true;
        run_static(models[f], &o, "per-tensor", x, true, 63);
        joule_static_defaults(&o);
        calib_source(&o, x);
        o.symmetric_activations = true;
        run_static(models[f], &o, "int8 activations", x, true, 63);
    }
    joule_tensor_free(x);
}

static void test_static_qoperator(void **state)
{
    (void)state;
    joule_error err = {{0}};
    joule_tensor *x = images();
    for (size_t f = 0; f < N_FIXTURES; f++) {
        if (!have_fixture(fixtures[f]))
            continue;
        /* int8 symmetric activations: not on mobile (HardSwish outputs use half the range) */
        for (int sym = 0; sym <= (strncmp(fixtures[f], "mobile", 6) != 0); sym++) {
            joule_static_options o;
            joule_static_defaults(&o);
            calib_source(&o, x);
            o.format = JOULE_QUANT_QOPERATOR;
            o.symmetric_activations = sym;
            run_static(fixtures[f], &o, sym ? "qoperator s8" : "qoperator", x, false,
                       min_agree(fixtures[f]));
        }
    }
    /* the cnn: every Conv and Gemm became a QLinear op */
    joule_model *m = cleaned("cnn");
    joule_static_options o;
    joule_static_defaults(&o);
    o.calib_tensor = x;
    o.format = JOULE_QUANT_QOPERATOR;
    assert_joule_ok(joule_quantize_static(m, &o, NULL, &err), &err);
    assert_int_equal(count_op(m->graph, "Conv") + count_op(m->graph, "Gemm"), 0);
    assert_int_equal(count_op(m->graph, "QLinearConv"), 4);   /* two convs, two Gemms with bias */
    assert_int_equal(count_op(m->graph, "QLinearMatMul"), 0);
    assert_int_equal(count_op(m->graph, "Relu"), 0);          /* folded into uint8 outputs */
    joule_model_free(m);
    joule_tensor_free(x);
}

static void test_static_exclude(void **state)
{
    (void)state;
    joule_error err = {{0}};
    joule_tensor *x = images();
    joule_model *m = cleaned("cnn");
    const joule_node *first = NULL;
    for (size_t i = 0; i < m->graph->n_nodes && !first; i++)
        if (strcmp(m->graph->nodes[i]->op_type, "Conv") == 0)
            first = m->graph->nodes[i];
    char name[256];
    snprintf(name, sizeof name, "%s", first->name);
    joule_static_options o;
    joule_static_defaults(&o);
    o.calib_tensor = x;
    const char *ex[2] = {name, "Gemm"};
    o.exclude.items = ex;
    o.exclude.n = 2;
    joule_report r;
    joule_report_init(&r);
    assert_joule_ok(joule_quantize_static(m, &o, &r, &err), &err);
    const joule_graph *g = m->graph;
    size_t dq_w = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        const joule_node *n = g->nodes[i];
        if (strcmp(n->op_type, "Gemm") == 0 || strcmp(n->name, name) == 0)
            assert_non_null(n->inputs[1]->data); /* float weights, no DequantizeLinear */
        if (strcmp(n->op_type, "Conv") == 0 && strcmp(n->name, name) != 0)
            dq_w++, assert_null(n->inputs[1]->data);
    }
    assert_int_equal(dq_w, 1);
    joule_report_free(&r);
    joule_model_free(m);
    joule_tensor_free(x);
}

/* ---- recipes ---- */

static void test_recipe_steps(void **state)
{
    (void)state;
    joule_error err = {{0}};
    char calib[1024], json[2048];
    test_source_path("tests/data/fmnist_test64.npy", calib, sizeof calib);
    snprintf(json, sizeof json,
             "{\"passes\": [{\"pass\": \"cleanup\"},"
             " {\"pass\": \"int8\", \"calib\": \"%s\", \"method\": \"mse\", \"batch\": 16,"
             "  \"activations\": \"s8\", \"format\": \"qoperator\", \"exclude\": [\"Gemm\"]}]}",
             calib);
    joule_recipe r;
    assert_joule_ok(joule_recipe_init(&r, "test.json", &err), &err);
    assert_joule_ok(joule_recipe_parse(&r, json, strlen(json), &err), &err);
    assert_int_equal(r.n_steps, 2);
    const joule_static_options *o = r.steps[1].opts;
    assert_int_equal(o->method, JOULE_CALIB_MSE);
    assert_true(o->symmetric_activations);
    assert_int_equal(o->format, JOULE_QUANT_QOPERATOR);
    assert_int_equal(o->exclude.n, 1);
    assert_int_equal(o->batch, 16);
    joule_model *m = load_fixture("cnn");
    joule_report rep;
    joule_report_init(&rep);
    assert_joule_ok(joule_pipeline_run(m, &r, &rep, &err), &err);
    assert_int_equal(count_op(m->graph, "QLinearConv"), 2);
    assert_int_equal(count_op(m->graph, "Gemm"), 2);
    joule_report_free(&rep);
    joule_model_free(m);
    joule_recipe_free(&r);

    static const char *const bad[][2] = {
        {"{\"passes\": [{\"pass\": \"int8\"}]}", "'calib'"},
        {"{\"passes\": [{\"pass\": \"int8\", \"calib\": \"x\", \"method\": \"kl\"}]}", "method"},
        {"{\"passes\": [{\"pass\": \"int8\", \"calib\": \"x\", \"format\": \"qop\"}]}", "format"},
        {"{\"passes\": [{\"pass\": \"fp16\", \"keep_io\": true}]}", "keep_io"},
        {"{\"passes\": [{\"pass\": \"int8_dynamic\", \"per_tensor\": 3}]}", "per_tensor"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_joule_ok(joule_recipe_init(&r, "bad.json", &err), &err);
        assert_int_not_equal(joule_recipe_parse(&r, bad[i][0], strlen(bad[i][0]), &err), JOULE_OK);
        if (!strstr(err.msg, bad[i][1]))
            fail_msg("expected '%s' in: %s", bad[i][1], err.msg);
        joule_recipe_free(&r);
    }
    /* the three passes are in the table */
    size_t found = 0;
    for (size_t i = 0; i < joule_pass_count(); i++)
        found += !strcmp(joule_pass_name(i), "fp16") + !strcmp(joule_pass_name(i), "int8") +
                 !strcmp(joule_pass_name(i), "int8_dynamic");
    assert_int_equal(found, 3);
}

/* Exclude entries and block lists that match nothing in the model become warning rows (the CLI
 * prints them); entries that match stay quiet. */
static size_t warnings(const joule_report *r, const char *needle)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        n += r->rows[i].warning && (!needle || strstr(r->rows[i].note, needle));
    return n;
}

static void test_unmatched_lists_warn(void **state)
{
    (void)state;
    joule_error err = {{0}};
    static const char *const ex[] = {"Gemm", "/nothing*", "Gemmm"};
    joule_dynamic_options dy;
    joule_dynamic_defaults(&dy);
    dy.exclude.items = ex;
    dy.exclude.n = 3;
    joule_model *m = load_fixture("cnn");
    joule_report r;
    joule_report_init(&r);
    assert_joule_ok(joule_quantize_dynamic(m, &dy, &r, &err), &err);
    assert_int_equal(warnings(&r, NULL), 2);
    assert_int_equal(warnings(&r, "'/nothing*'"), 1);
    assert_int_equal(warnings(&r, "'Gemmm'"), 1);
    char *json = NULL;
    assert_joule_ok(joule_report_json(&r, &json, &err), &err);
    assert_non_null(strstr(json, "\"warning\""));
    free(json);
    joule_report_free(&r);
    joule_model_free(m);

    static const char *const ops[] = {"TopK", "Gemm"}, *const nodes[] = {"/0/*", "nope"};
    joule_fp16_options fo;
    joule_fp16_defaults(&fo);
    fo.block_ops = ops;
    fo.n_block_ops = 2;
    fo.block_nodes = nodes;
    fo.n_block_nodes = 2;
    m = load_fixture("cnn");
    joule_report_init(&r);
    assert_joule_ok(joule_quantize_fp16(m, &fo, &r, &err), &err);
    assert_int_equal(warnings(&r, NULL), 2);
    assert_int_equal(warnings(&r, "'TopK'"), 1);
    assert_int_equal(warnings(&r, "'nope'"), 1);
    joule_report_free(&r);
    joule_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fp16_fixtures),
        cmocka_unit_test(test_fp16_traps),
        cmocka_unit_test(test_fp16_block_lists),
        cmocka_unit_test(test_dynamic_fixtures),
        cmocka_unit_test(test_dynamic_exclude_and_refuse),
        cmocka_unit_test(test_static_qdq),
        cmocka_unit_test(test_static_variants),
        cmocka_unit_test(test_static_qoperator),
        cmocka_unit_test(test_static_exclude),
        cmocka_unit_test(test_recipe_steps),
        cmocka_unit_test(test_unmatched_lists_warn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

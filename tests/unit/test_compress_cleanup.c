/* tests/unit/test_compress_cleanup.c: the cleanup pass. BatchNormalization folding keeps the
 * fixtures' logits (engine runs on 64 test images, within 1e-4) and hand-made Conv/Gemm cases
 * with and without biases; Identity/Dropout removal keeps graph output names; constant folding
 * evaluates all-constant nodes and leaves DequantizeLinear and growing results alone; equal
 * initializers become one; dead nodes and unused initializers go. */
#include "test_compress_util.h"

static joule_report run_cleanup(joule_model *m)
{
    joule_error err = {{0}};
    joule_report r;
    joule_report_init(&r);
    assert_joule_ok(joule_cleanup(m, NULL, &r, &err), &err);
    assert_joule_ok(joule_graph_validate(m->graph, &err), &err);
    return r;
}

static size_t rows_with(const joule_report *r, const char *text)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        n += r->rows[i].note && strstr(r->rows[i].note, text) != NULL;
    return n;
}

static void bn_fixture(const char *fixture, const char *ref_logits, size_t n_bn)
{
    joule_model *m = tc_load(fixture);
    assert_int_equal(tc_count_op(m->graph, "BatchNormalization"), n_bn);
    joule_tensor *x = tc_images(), *y0 = tc_run(m, x);
    joule_report r = run_cleanup(m);
    assert_int_equal(tc_count_op(m->graph, "BatchNormalization"), 0);
    assert_int_equal(rows_with(&r, "folded into"), n_bn);
    joule_tensor *y1 = tc_run(m, x);
    double d = tc_max_diff(y0, y1);
    if (!(d <= 1e-4))
        fail_msg("%s: logits moved by %g after folding BatchNormalization", fixture, d);
    if (ref_logits) { /* and still PyTorch's logits */
        char path[4096];
        joule_error err = {{0}};
        joule_tensor *ref = NULL;
        assert_joule_ok(joule_npy_read(test_source_path(ref_logits, path, sizeof path), &ref, &err),
                        &err);
        assert_true(tc_max_diff(ref, y1) <= 1e-3);
        joule_tensor_free(ref);
    }
    /* the graph output keeps its name */
    assert_string_equal(m->graph->outputs[0]->name, "logits");
    joule_tensor_free(x);
    joule_tensor_free(y0);
    joule_tensor_free(y1);
    joule_report_free(&r);
    joule_model_free(m);
}

static void test_bn_fold_cnn(void **state)
{
    (void)state;
    bn_fixture("tests/data/cnn.onnx", "tests/data/cnn_ref_logits64.npy", 2);
}

static void test_bn_fold_mobile(void **state)
{
    (void)state;
    bn_fixture("tests/data/mobile.onnx", "tests/data/mobile_ref_logits64.npy", 10);
}

/* x -> layer (Conv [4,3,3,3] or Gemm [K=6,N=4]) -> BN(4) -> y, with or without a layer bias. */
static joule_model *layer_bn(bool gemm, bool bias)
{
    joule_error err = {{0}};
    joule_model *m;
    assert_joule_ok(joule_model_new(13, &m, &err), &err);
    float w[108], b[4], sc[4], sh[4], mu[4], var[4];
    tc_fill(w, 108, 31);
    tc_fill(b, 4, 32);
    tc_fill(sc, 4, 33);
    tc_fill(sh, 4, 34);
    tc_fill(mu, 4, 35);
    tc_fill(var, 4, 36);
    for (int i = 0; i < 4; i++)
        var[i] = var[i] * var[i] + 0.1f;
    int64_t c4[1] = {4};
    if (gemm) {
        int64_t xd[2] = {3, 6}, wd[2] = {6, 4};
        tc_input(m, "x", 2, xd);
        add_const(m, "W", JOULE_F32, 2, wd, w);
    } else {
        int64_t xd[4] = {2, 3, 5, 5}, wd[4] = {4, 3, 3, 3};
        tc_input(m, "x", 4, xd);
        add_const(m, "W", JOULE_F32, 4, wd, w);
    }
    add_const(m, "B", JOULE_F32, 1, c4, b);
    add_const(m, "scale", JOULE_F32, 1, c4, sc);
    add_const(m, "shift", JOULE_F32, 1, c4, sh);
    add_const(m, "mean", JOULE_F32, 1, c4, mu);
    add_const(m, "var", JOULE_F32, 1, c4, var);
    const char *in[3] = {"x", "W", "B"}, *out[1] = {"h"};
    joule_node *l = tc_add_node(m, gemm ? "Gemm" : "Conv", "layer", bias ? 3 : 2, in, 1, out);
    if (gemm)
        assert_joule_ok(joule_node_set_attr_float(m->graph, l, "beta", 0.5f, &err), &err);
    const char *bin[5] = {"h", "scale", "shift", "mean", "var"}, *bout[1] = {"y"};
    joule_node *bn = tc_add_node(m, "BatchNormalization", "bn", 5, bin, 1, bout);
    assert_joule_ok(joule_node_set_attr_float(m->graph, bn, "epsilon", 1e-3f, &err), &err);
    tc_output(m, "y");
    return m;
}

static void test_bn_fold_by_hand(void **state)
{
    (void)state;
    for (int gemm = 0; gemm < 2; gemm++)
        for (int bias = 0; bias < 2; bias++) {
            joule_model *m = layer_bn(gemm, bias);
            int64_t gd[2] = {3, 6}, cd[4] = {2, 3, 5, 5};
            joule_tensor *x = gemm ? tc_random_input(2, gd, 40) : tc_random_input(4, cd, 41);
            joule_tensor *y0 = tc_run(m, x);
            joule_report r = run_cleanup(m);
            assert_int_equal(tc_count_op(m->graph, "BatchNormalization"), 0);
            assert_int_equal(m->graph->n_nodes, 1);
            assert_string_equal(m->graph->nodes[0]->outputs[0]->name, "y");
            joule_tensor *y1 = tc_run(m, x);
            if (!(tc_max_diff(y0, y1) <= 1e-5))
                fail_msg("gemm=%d bias=%d: folded output off by %g", gemm, bias,
                         tc_max_diff(y0, y1));
            joule_tensor_free(x);
            joule_tensor_free(y0);
            joule_tensor_free(y1);
            joule_report_free(&r);
            joule_model_free(m);
        }
}

static void test_bn_not_folded_when_shared(void **state)
{
    (void)state;
    joule_model *m = layer_bn(false, true);
    const char *in[1] = {"h"}, *out[1] = {"h2"};
    tc_add_node(m, "Relu", "other_reader", 1, in, 1, out);
    tc_output(m, "h2");
    joule_report r = run_cleanup(m);
    assert_int_equal(tc_count_op(m->graph, "BatchNormalization"), 1);
    assert_int_equal(rows_with(&r, "read by others"), 1);
    joule_report_free(&r);
    joule_model_free(m);
}

static void test_identity_dropout(void **state)
{
    (void)state;
    joule_error err = {{0}};
    joule_model *m;
    assert_joule_ok(joule_model_new(13, &m, &err), &err);
    int64_t xd[2] = {2, 5};
    tc_input(m, "x", 2, xd);
    const char *i1[1] = {"x"}, *o1[1] = {"a"}, *i2[1] = {"a"}, *o2[1] = {"b"};
    const char *i3[1] = {"b"}, *o3[1] = {"c"}, *i4[1] = {"c"}, *o4[1] = {"y"};
    const char *i5[1] = {"b"}, *o5[2] = {"d", "mask"};
    tc_add_node(m, "Identity", "id1", 1, i1, 1, o1);
    tc_add_node(m, "Relu", "relu", 1, i2, 1, o2);
    tc_add_node(m, "Dropout", "drop", 1, i3, 1, o3);
    tc_add_node(m, "Identity", "id2", 1, i4, 1, o4);
    tc_add_node(m, "Dropout", "drop_mask", 1, i5, 2, o5); /* its mask is a graph output: kept */
    tc_output(m, "y");
    tc_output(m, "mask");
    joule_report r = run_cleanup(m);
    assert_int_equal(tc_count_op(m->graph, "Identity"), 0);
    assert_int_equal(tc_count_op(m->graph, "Dropout"), 1);
    assert_int_equal(rows_with(&r, "mask output is read"), 1);
    assert_string_equal(m->graph->outputs[0]->name, "y");
    assert_string_equal(m->graph->outputs[1]->name, "mask");
    joule_node *relu = tc_node(m->graph, "relu");
    assert_non_null(relu);
    assert_ptr_equal(relu->inputs[0], joule_graph_find_value(m->graph, "x"));
    assert_string_equal(relu->outputs[0]->name, "y"); /* the Relu now writes "y" itself */
    assert_ptr_equal(tc_node(m->graph, "drop_mask")->inputs[0], relu->outputs[0]);
    joule_report_free(&r);
    joule_model_free(m);
}

static void test_constant_folding(void **state)
{
    (void)state;
    joule_error err = {{0}};
    joule_model *m;
    assert_joule_ok(joule_model_new(13, &m, &err), &err);
    int64_t xd[2] = {2, 3};
    tc_input(m, "x", 2, xd);
    const char *none[1] = {""}, *oc1[1] = {"c1"}, *oc2[1] = {"c2"};
    joule_node *k1 = tc_add_node(m, "Constant", "k1", 0, none, 1, oc1);
    joule_node *k2 = tc_add_node(m, "Constant", "k2", 0, none, 1, oc2);
    float v1[3] = {1.5f, -2.0f, 4.0f};
    int64_t d3[1] = {3};
    joule_tensor *t1 = NULL;
    assert_joule_ok(joule_tensor_new(JOULE_F32, 1, d3, &t1, &err), &err);
    memcpy(joule_tensor_mutable_data(t1), v1, sizeof v1);
    assert_joule_ok(joule_node_set_attr_tensor(m->graph, k1, "value", t1, &err), &err);
    assert_joule_ok(joule_node_set_attr_float(m->graph, k2, "value_float", 2.0f, &err), &err);
    const char *im[2] = {"c1", "c2"}, *om[1] = {"c3"}, *ia[2] = {"x", "c3"}, *oa[1] = {"y"};
    tc_add_node(m, "Mul", "mul", 2, im, 1, om);
    tc_add_node(m, "Add", "add", 2, ia, 1, oa);
    /* DequantizeLinear of a constant int8 weight stays (folding would undo quantization) */
    int8_t q[3] = {10, -20, 30};
    float scale = 0.5f;
    add_const(m, "q", JOULE_I8, 1, d3, q);
    add_const(m, "qs", JOULE_F32, 0, NULL, &scale);
    const char *iq[2] = {"q", "qs"}, *oq[1] = {"dq"}, *iz[2] = {"y", "dq"}, *oz[1] = {"z"};
    tc_add_node(m, "DequantizeLinear", "dql", 2, iq, 1, oq);
    tc_add_node(m, "Mul", "mul2", 2, iz, 1, oz);
    /* a ConstantOfShape growing 16 bytes into 64 KiB stays too */
    int64_t shp[2] = {128, 128}, d2[1] = {2};
    add_const(m, "shp", JOULE_I64, 1, d2, shp);
    const char *ic[1] = {"shp"}, *ocs[1] = {"big"};
    tc_add_node(m, "ConstantOfShape", "cos", 1, ic, 1, ocs);
    const char *ish[1] = {"big"}, *osh[1] = {"big_shape"};
    tc_add_node(m, "Shape", "shape", 1, ish, 1, osh);
    tc_output(m, "z");
    tc_output(m, "big_shape");
    int64_t xs[2] = {2, 3};
    joule_tensor *x = tc_random_input(2, xs, 50);
    joule_tensor *z0 = tc_run(m, x);
    joule_report r = run_cleanup(m);
    assert_int_equal(tc_count_op(m->graph, "Constant"), 0);
    assert_null(tc_node(m->graph, "mul")); /* evaluated once */
    joule_node *add = tc_node(m->graph, "add");
    assert_non_null(add);
    const joule_tensor *c3 = add->inputs[1]->data;
    assert_non_null(c3);
    for (int i = 0; i < 3; i++)
        assert_true(((const float *)c3->data)[i] == 2.0f * v1[i]);
    assert_non_null(tc_node(m->graph, "dql"));
    assert_non_null(tc_node(m->graph, "cos"));
    assert_int_equal(rows_with(&r, "undo quantization"), 1);
    assert_int_equal(rows_with(&r, "larger than its inputs"), 1);
    joule_tensor *z1 = tc_run(m, x);
    assert_true(tc_max_diff(z0, z1) == 0);
    joule_tensor_free(x);
    joule_tensor_free(z0);
    joule_tensor_free(z1);
    joule_report_free(&r);
    joule_model_free(m);
}

static void test_dedup_and_dead(void **state)
{
    (void)state;
    joule_error err = {{0}};
    joule_model *m;
    assert_joule_ok(joule_model_new(13, &m, &err), &err);
    int64_t xd[2] = {2, 4}, d4[1] = {4}, d22[2] = {2, 2};
    float a[4] = {1, 2, 3, 4};
    tc_input(m, "x", 2, xd);
    add_const(m, "A", JOULE_F32, 1, d4, a);
    add_const(m, "B", JOULE_F32, 1, d4, a);  /* equal to A */
    add_const(m, "C", JOULE_F32, 2, d22, a); /* same bytes, other dims: not equal */
    add_const(m, "unused", JOULE_F32, 1, d4, a);
    const char *i1[2] = {"x", "A"}, *o1[1] = {"h"}, *i2[2] = {"h", "B"}, *o2[1] = {"y"};
    const char *i3[1] = {"x"}, *o3[1] = {"dead"}, *i4[1] = {"C"}, *o4[1] = {"dead2"};
    tc_add_node(m, "Add", "add1", 2, i1, 1, o1);
    tc_add_node(m, "Mul", "mul", 2, i2, 1, o2);
    tc_add_node(m, "Sigmoid", "nobody_reads_me", 1, i3, 1, o3);
    tc_add_node(m, "Neg", "nor_me", 1, i4, 1, o4);
    tc_output(m, "y");
    joule_tensor *x = tc_random_input(2, xd, 60), *y0 = tc_run(m, x);
    joule_report r = run_cleanup(m);
    assert_int_equal(m->graph->n_nodes, 2);
    assert_null(tc_node(m->graph, "nobody_reads_me"));
    assert_null(joule_graph_find_value(m->graph, "unused"));
    assert_null(joule_graph_find_value(m->graph, "C"));
    assert_ptr_equal(tc_node(m->graph, "add1")->inputs[1], tc_node(m->graph, "mul")->inputs[1]);
    assert_int_equal(m->graph->n_initializers, 1);
    assert_int_equal(rows_with(&r, "is equal to 'A'"), 1);
    joule_tensor *y1 = tc_run(m, x);
    assert_true(tc_max_diff(y0, y1) == 0);
    joule_tensor_free(x);
    joule_tensor_free(y0);
    joule_tensor_free(y1);
    joule_report_free(&r);
    joule_model_free(m);
}

static void test_constants_fixture(void **state)
{
    (void)state;
    /* the mobile net with its weights in Constant nodes: they become initializers; logits move
     * only by the rounding of BatchNormalization folding, which the same pass also does */
    joule_model *m = tc_load("tests/data/mobile_constants.onnx");
    assert_true(tc_count_op(m->graph, "Constant") > 0);
    joule_tensor *x = tc_images(), *y0 = tc_run(m, x);
    joule_report r = run_cleanup(m);
    assert_int_equal(tc_count_op(m->graph, "Constant"), 0);
    joule_tensor *y1 = tc_run(m, x);
    assert_true(tc_max_diff(y0, y1) < 1e-4);
    /* and a save/load round trip keeps them */
    joule_model *back = tc_roundtrip(m);
    joule_tensor *y2 = tc_run(back, x);
    assert_true(tc_max_diff(y1, y2) == 0); /* the saved cleaned model runs the same */
    joule_tensor_free(x);
    joule_tensor_free(y0);
    joule_tensor_free(y1);
    joule_tensor_free(y2);
    joule_model_free(back);
    joule_report_free(&r);
    joule_model_free(m);
}

static void test_options_off(void **state)
{
    (void)state;
    joule_model *m = tc_load("tests/data/cnn.onnx");
    joule_error err = {{0}};
    joule_cleanup_options o;
    joule_cleanup_defaults(&o);
    o.fold_batchnorm = false;
    assert_joule_ok(joule_cleanup(m, &o, NULL, &err), &err);
    assert_int_equal(tc_count_op(m->graph, "BatchNormalization"), 2);
    joule_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bn_fold_cnn),
        cmocka_unit_test(test_bn_fold_mobile),
        cmocka_unit_test(test_bn_fold_by_hand),
        cmocka_unit_test(test_bn_not_folded_when_shared),
        cmocka_unit_test(test_identity_dropout),
        cmocka_unit_test(test_constant_folding),
        cmocka_unit_test(test_dedup_and_dead),
        cmocka_unit_test(test_constants_fixture),
        cmocka_unit_test(test_options_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

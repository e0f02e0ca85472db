/* tests/unit/test_prune_bias.c: data-aware bias correction after magnitude pruning
 * (joule_prune_options.correct_bias, compress/prune_bias.c). On small hand-built graphs with
 * random weights and random calibration data, after pruning with correction the mean output of
 * every pruned layer over the calibration data, per output channel, equals the unpruned model's
 * (computed here from the engine's outputs, channel by channel): Gemm (with C, without C, beta
 * != 1, a C shared by two Gemms), Conv with padding, a depthwise and a grouped strided Conv
 * without bias, MatMul on 3-D inputs (means over batch and tokens) with an Add bias and without
 * one (an Add is inserted). The spread of the first layer's channels is matched within the
 * clamp, or left alone with shift_only; zeros stay zeros. Bad input (no data, an empty set,
 * items of the wrong shape, an unknown recipe key) is one line and leaves the model as it was.
 *
 * Channel pruning (joule_channel_options.correct_bias): the readers of removed channels keep
 * their output channels, and after the correction their per-channel means over the calibration
 * data equal the unpruned model's (they move without it); a layer that is both a reader and
 * shrunken has its kept channels' means back; shapes are those of the plain channel pruning. */
#include "test_compress_util.h"

#include "joule/engine.h"

#define NCAL 48

/* Per-channel mean and standard deviation of value `name` of m on x (channels on axis 1, or
 * the last axis with last_axis). */
static int64_t channel_stats(const joule_model *m, const joule_tensor *x, const char *name,
                             bool last_axis, double *mean, double *sd)
{
    joule_error err = {{0}};
    joule_model *c = tc_roundtrip(m);
    joule_value *v = joule_graph_find_value(c->graph, name);
    assert_non_null(v);
    assert_joule_ok(joule_graph_add_output(c->graph, v, &err), &err);
    joule_tensor *t = tc_run_output(c, x, name);
    int axis = last_axis ? t->rank - 1 : 1;
    size_t C = (size_t)t->dims[axis], outer = 1, inner = 1;
    for (int d = 0; d < axis; d++)
        outer *= (size_t)t->dims[d];
    for (int d = axis + 1; d < t->rank; d++)
        inner *= (size_t)t->dims[d];
    const float *p = t->data;
    for (size_t ch = 0; ch < C; ch++) {
        double s1 = 0, s2 = 0, n = (double)(outer * inner);
        for (size_t o = 0; o < outer; o++)
            for (size_t i = 0; i < inner; i++)
                s1 += p[(o * C + ch) * inner + i];
        mean[ch] = s1 / n;
        for (size_t o = 0; o < outer; o++)
            for (size_t i = 0; i < inner; i++) {
                double e = p[(o * C + ch) * inner + i] - mean[ch];
                s2 += e * e;
            }
        sd[ch] = sqrt(s2 / n);
    }
    joule_tensor_free(t);
    joule_model_free(c);
    return (int64_t)C;
}

/* The channel means of `name` agree between a and b (to float accuracy of the data). */
static void expect_same_means(const joule_model *a, const joule_model *b, const joule_tensor *x,
                              const char *name, bool last_axis)
{
    double ma[64], sa[64], mb[64], sb[64];
    int64_t ca = channel_stats(a, x, name, last_axis, ma, sa);
    int64_t cb = channel_stats(b, x, name, last_axis, mb, sb);
    assert_int_equal(ca, cb);
    for (int64_t c = 0; c < ca; c++) {
        double tol = 1e-4 * (fabs(ma[c]) + sa[c] + 1e-3);
        if (!(fabs(ma[c] - mb[c]) <= tol))
            fail_msg("%s channel %lld: mean %.7g before pruning, %.7g after correction", name,
                     (long long)c, ma[c], mb[c]);
    }
}

/* Calibration items: random in [-1, 1) shifted by +0.5 (so means are not zero). */
static joule_tensor *calib_data(int rank, const int64_t *dims, uint32_t seed)
{
    joule_tensor *t = tc_random_input(rank, dims, seed);
    float *p = joule_tensor_mutable_data(t);
    for (size_t i = 0; i < t->count; i++)
        p[i] += 0.5f;
    return t;
}

static void prune_corrected(joule_model *m, const joule_tensor *x, double sparsity,
                            bool shift_only, joule_report *r)
{
    joule_error err = {{0}};
    joule_prune_options o;
    joule_prune_defaults(&o);
    o.sparsity = sparsity;
    o.correct_bias.enabled = true;
    o.correct_bias.calib_tensor = x;
    o.correct_bias.batch = 20; /* 48 items: batches of 20, 20 and 8 */
    o.correct_bias.threads = 1;
    o.correct_bias.shift_only = shift_only;
    assert_joule_ok(joule_prune_magnitude(m, &o, r, &err), &err);
    assert_joule_ok(joule_graph_validate(m->graph, &err), &err);
}

/* Report rows of pass prune whose note starts with "bias corrected". */
static size_t corrected_rows(const joule_report *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        n += r->rows[i].note && !strncmp(r->rows[i].note, "bias corrected", 14);
    return n;
}

/* x[N,8] -> Gemm(W1[6,8] transB, C1[6]) -> Relu -> Gemm(W2[6,5], no C, beta 0.5) -> y, and a
 * side branch x -> Gemm(W3[6,8] transB, C1 shared) -> z. */
static joule_model *gemm_model(void)
{
    joule_error err = {{0}};
    joule_model *m;
    assert_joule_ok(joule_model_new(13, &m, &err), &err);
    float w1[48], c1[6], w2[30], w3[48];
    tc_fill(w1, 48, 1);
    tc_fill(c1, 6, 2);
    tc_fill(w2, 30, 3);
    tc_fill(w3, 48, 4);
    int64_t xd[2] = {-1, 8}, d1[2] = {6, 8}, dc[1] = {6}, d2[2] = {6, 5};
    tc_input(m, "x", 2, xd);
    add_const(m, "W1", JOULE_F32, 2, d1, w1);
    add_const(m, "C1", JOULE_F32, 1, dc, c1);
    add_const(m, "W2", JOULE_F32, 2, d2, w2);
    add_const(m, "W3", JOULE_F32, 2, d1, w3);
    const char *i1[3] = {"x", "W1", "C1"}, *o1[1] = {"h"}, *i2[1] = {"h"}, *o2[1] = {"r"};
    const char *i3[2] = {"r", "W2"}, *o3[1] = {"y"}, *i4[3] = {"x", "W3", "C1"}, *o4[1] = {"z"};
    joule_node *g1 = tc_add_node(m, "Gemm", "g1", 3, i1, 1, o1);
    tc_add_node(m, "Relu", "relu", 1, i2, 1, o2);
    joule_node *g2 = tc_add_node(m, "Gemm", "g2", 2, i3, 1, o3);
    joule_node *g3 = tc_add_node(m, "Gemm", "g3", 3, i4, 1, o4);
    assert_joule_ok(joule_node_set_attr_int(m->graph, g1, "transB", 1, &err), &err);
    assert_joule_ok(joule_node_set_attr_int(m->graph, g3, "transB", 1, &err), &err);
    assert_joule_ok(joule_node_set_attr_float(m->graph, g2, "beta", 0.5f, &err), &err);
    tc_output(m, "y");
    tc_output(m, "z");
    return m;
}

static void test_gemm(void **state)
{
    (void)state;
    int64_t xd[2] = {NCAL, 8};
    joule_tensor *x = calib_data(2, xd, 7);
    joule_model *orig = gemm_model(), *m = gemm_model(), *plain = gemm_model();
    joule_report r;
    joule_report_init(&r);
    prune_corrected(m, x, 0.5, false, &r);
    assert_int_equal(corrected_rows(&r), 3);
    expect_same_means(orig, m, x, "h", false);
    expect_same_means(orig, m, x, "y", false);
    expect_same_means(orig, m, x, "z", false);
    /* g2 got a C, beta 1; g1 and g3 no longer share C1; zeros are where plain pruning puts them */
    joule_node *g1 = tc_node(m->graph, "g1"), *g2 = tc_node(m->graph, "g2");
    joule_node *g3 = tc_node(m->graph, "g3");
    assert_true(g2->n_inputs == 3 && g2->inputs[2] && g2->inputs[2]->data);
    assert_true(joule_attr_float(g2, "beta", 1.0f) == 1.0f);
    assert_true(g1->inputs[2] != g3->inputs[2]);
    joule_error err = {{0}};
    joule_prune_options o;
    joule_prune_defaults(&o);
    o.sparsity = 0.5;
    assert_joule_ok(joule_prune_magnitude(plain, &o, NULL, &err), &err);
    const char *ws[3] = {"g1", "g2", "g3"};
    for (int i = 0; i < 3; i++) {
        const joule_tensor *a = tc_weight(plain->graph, tc_node(plain->graph, ws[i]));
        const joule_tensor *b = tc_weight(m->graph, tc_node(m->graph, ws[i]));
        for (size_t k = 0; k < a->count; k++)
            assert_true((((const float *)a->data)[k] == 0) == (((const float *)b->data)[k] == 0));
    }
    /* the first layer's input is the original one: its spread is matched within [1/2, 2] */
    double mo[8], so[8], mp[8], sp[8], mc[8], sc[8];
    channel_stats(orig, x, "h", false, mo, so);
    channel_stats(plain, x, "h", false, mp, sp);
    channel_stats(m, x, "h", false, mc, sc);
    for (int c = 0; c < 6; c++) {
        double a = so[c] / sp[c];
        a = a > 2 ? 2 : a < 0.5 ? 0.5 : a;
        assert_true(fabs(sc[c] - a * sp[c]) <= 1e-4 * so[c]);
    }
    joule_report_free(&r);
    joule_model_free(m);

    /* shift_only: the means alone; the spread stays the plainly pruned one */
    m = gemm_model();
    prune_corrected(m, x, 0.5, true, NULL);
    expect_same_means(orig, m, x, "h", false);
    expect_same_means(orig, m, x, "y", false);
    channel_stats(m, x, "h", false, mc, sc);
    for (int c = 0; c < 6; c++)
        assert_true(fabs(sc[c] - sp[c]) <= 1e-5 * (sp[c] + 1e-3));
    joule_model_free(m);
    joule_model_free(plain);
    joule_model_free(orig);
    joule_tensor_free(x);
}

/* x[N,3,6,6] -> Conv(3x3, pads 1, B) -> Relu -> depthwise Conv(3x3, group 4, pads 1, stride 2,
 * no B) -> Relu -> grouped Conv(3x3, group 2, pads 1, B) -> y */
static joule_model *conv_model(void)
{
    joule_error err = {{0}};
    joule_model *m;
    assert_joule_ok(joule_model_new(13, &m, &err), &err);
    float w1[4 * 3 * 9], b1[4], w2[4 * 9], w3[4 * 2 * 9], b3[4];
    tc_fill(w1, 108, 11);
    tc_fill(b1, 4, 12);
    tc_fill(w2, 36, 13);
    tc_fill(w3, 72, 14);
    tc_fill(b3, 4, 15);
    int64_t xd[4] = {-1, 3, 6, 6}, d1[4] = {4, 3, 3, 3}, db[1] = {4}, d2[4] = {4, 1, 3, 3};
    int64_t d3[4] = {4, 2, 3, 3};
    tc_input(m, "x", 4, xd);
    add_const(m, "W1", JOULE_F32, 4, d1, w1);
    add_const(m, "B1", JOULE_F32, 1, db, b1);
    add_const(m, "W2", JOULE_F32, 4, d2, w2);
    add_const(m, "W3", JOULE_F32, 4, d3, w3);
    add_const(m, "B3", JOULE_F32, 1, db, b3);
    const char *i1[3] = {"x", "W1", "B1"}, *o1[1] = {"c1"}, *i2[1] = {"c1"}, *o2[1] = {"r1"};
    const char *i3[2] = {"r1", "W2"}, *o3[1] = {"c2"}, *i4[1] = {"c2"}, *o4[1] = {"r2"};
    const char *i5[3] = {"r2", "W3", "B3"}, *o5[1] = {"y"};
    joule_node *c1 = tc_add_node(m, "Conv", "conv1", 3, i1, 1, o1);
    tc_add_node(m, "Relu", "relu1", 1, i2, 1, o2);
    joule_node *c2 = tc_add_node(m, "Conv", "dw", 2, i3, 1, o3);
    tc_add_node(m, "Relu", "relu2", 1, i4, 1, o4);
    joule_node *c3 = tc_add_node(m, "Conv", "grouped", 3, i5, 1, o5);
    int64_t pads[4] = {1, 1, 1, 1}, strides[2] = {2, 2};
    joule_node *convs[3] = {c1, c2, c3};
    for (int i = 0; i < 3; i++)
        assert_joule_ok(joule_node_set_attr_ints(m->graph, convs[i], "pads", pads, 4, &err), &err);
    assert_joule_ok(joule_node_set_attr_int(m->graph, c2, "group", 4, &err), &err);
    assert_joule_ok(joule_node_set_attr_ints(m->graph, c2, "strides", strides, 2, &err), &err);
    assert_joule_ok(joule_node_set_attr_int(m->graph, c3, "group", 2, &err), &err);
    tc_output(m, "y");
    return m;
}

static void test_conv(void **state)
{
    (void)state;
    int64_t xd[4] = {NCAL, 3, 6, 6};
    joule_tensor *x = calib_data(4, xd, 17);
    for (int shift_only = 0; shift_only < 2; shift_only++) {
        joule_model *orig = conv_model(), *m = conv_model();
        joule_report r;
        joule_report_init(&r);
        prune_corrected(m, x, 0.5, shift_only, &r);
        assert_int_equal(corrected_rows(&r), 3);
        expect_same_means(orig, m, x, "c1", false);
        expect_same_means(orig, m, x, "c2", false);
        expect_same_means(orig, m, x, "y", false);
        joule_node *dw = tc_node(m->graph, "dw");
        assert_true(dw->n_inputs == 3 && dw->inputs[2] && dw->inputs[2]->data &&
                    dw->inputs[2]->data->count == 4);
        assert_int_equal(tc_zeros(tc_weight(m->graph, dw)), 18);
        /* without the correction the means do move (the test can fail) */
        joule_model *plain = conv_model();
        joule_prune_options o;
        joule_prune_defaults(&o);
        o.sparsity = 0.5;
        joule_error err = {{0}};
        assert_joule_ok(joule_prune_magnitude(plain, &o, NULL, &err), &err);
        double ma[4], sa[4], mb[4], sb[4], worst = 0;
        channel_stats(orig, x, "y", false, ma, sa);
        channel_stats(plain, x, "y", false, mb, sb);
        for (int c = 0; c < 4; c++)
            worst = fmax(worst, fabs(ma[c] - mb[c]) / (sa[c] + 1e-3));
        assert_true(worst > 0.01);
        joule_model_free(plain);
        joule_report_free(&r);
        joule_model_free(m);
        joule_model_free(orig);
    }
    joule_tensor_free(x);
}

/* x[N,5,8] -> MatMul(W1[8,6]) -> Add(b1[6]) -> Relu -> MatMul(W2[6,4]) -> y (no bias) */
static joule_model *matmul_model(void)
{
    joule_error err = {{0}};
    joule_model *m;
    assert_joule_ok(joule_model_new(13, &m, &err), &err);
    float w1[48], b1[6], w2[24];
    tc_fill(w1, 48, 21);
    tc_fill(b1, 6, 22);
    tc_fill(w2, 24, 23);
    int64_t xd[3] = {-1, 5, 8}, d1[2] = {8, 6}, db[1] = {6}, d2[2] = {6, 4};
    tc_input(m, "x", 3, xd);
    add_const(m, "W1", JOULE_F32, 2, d1, w1);
    add_const(m, "b1", JOULE_F32, 1, db, b1);
    add_const(m, "W2", JOULE_F32, 2, d2, w2);
    const char *i1[2] = {"x", "W1"}, *o1[1] = {"h"}, *i2[2] = {"b1", "h"}, *o2[1] = {"hb"};
    const char *i3[1] = {"hb"}, *o3[1] = {"r"}, *i4[2] = {"r", "W2"}, *o4[1] = {"y"};
    tc_add_node(m, "MatMul", "mm1", 2, i1, 1, o1);
    tc_add_node(m, "Add", "add", 2, i2, 1, o2);
    tc_add_node(m, "Relu", "relu", 1, i3, 1, o3);
    tc_add_node(m, "MatMul", "mm2", 2, i4, 1, o4);
    tc_output(m, "y");
    (void)err;
    return m;
}

static void test_matmul(void **state)
{
    (void)state;
    int64_t xd[3] = {NCAL, 5, 8};
    joule_tensor *x = calib_data(3, xd, 27);
    joule_model *orig = matmul_model(), *m = matmul_model();
    joule_report r;
    joule_report_init(&r);
    prune_corrected(m, x, 0.5, false, &r);
    assert_int_equal(corrected_rows(&r), 2);
    /* the Add's output (mm1's output plus its bias) and y, over batch and tokens */
    expect_same_means(orig, m, x, "hb", true);
    expect_same_means(orig, m, x, "y", true);
    assert_int_equal(tc_count_op(m->graph, "Add"), 2); /* one inserted after mm2 */
    assert_true(tc_node(m->graph, "add")->inputs[0] == joule_graph_find_value(m->graph, "b1"));
    /* it survives a save and load, and the engine runs it */
    joule_model *c = tc_roundtrip(m);
    joule_error err = {{0}};
    assert_joule_ok(joule_graph_validate(c->graph, &err), &err);
    expect_same_means(orig, c, x, "y", true);
    joule_model_free(c);
    joule_report_free(&r);
    joule_model_free(m);
    joule_model_free(orig);
    joule_tensor_free(x);
}

static void *model_bytes(const joule_model *m, size_t *len)
{
    joule_error err = {{0}};
    void *b = NULL;
    assert_joule_ok(joule_model_serialize(m, &b, len, &err), &err);
    return b;
}

/* After a refused call: one line naming needle, no report rows, and m byte for byte as b0 (its
 * bytes before the call). Frees b0, r and m. */
static void check_refusal(joule_model *m, void *b0, size_t l0, const joule_error *err,
                          joule_report *r, const char *needle)
{
    print_message("refused: %s\n", err->msg);
    assert_non_null(strstr(err->msg, needle));
    assert_null(strchr(err->msg, '\n'));
    assert_int_equal(r->n, 0);
    size_t l1 = 0;
    void *b1 = model_bytes(m, &l1);
    assert_int_equal(l0, l1);
    assert_memory_equal(b0, b1, l0);
    free(b0);
    free(b1);
    joule_report_free(r);
    joule_model_free(m);
}

/* One line naming needle; the model byte for byte as before. */
static void expect_refused(const joule_tensor *x, bool with_data, const char *needle)
{
    joule_model *m = conv_model();
    size_t l0 = 0;
    void *b0 = model_bytes(m, &l0);
    joule_prune_options o;
    joule_prune_defaults(&o);
    o.sparsity = 0.5;
    o.correct_bias.enabled = true;
    o.correct_bias.calib_tensor = with_data ? x : NULL;
    joule_error err = {{0}};
    joule_report r;
    joule_report_init(&r);
    assert_int_not_equal(joule_prune_magnitude(m, &o, &r, &err), JOULE_OK);
    check_refusal(m, b0, l0, &err, &r, needle);
}

static void test_bad_input(void **state)
{
    (void)state;
    expect_refused(NULL, false, "needs calibration data");
    int64_t empty[4] = {0, 3, 6, 6}, wrong[4] = {4, 3, 5, 5};
    joule_tensor *x = calib_data(4, empty, 1);
    expect_refused(x, true, "empty");
    joule_tensor_free(x);
    x = calib_data(4, wrong, 1);
    expect_refused(x, true, "[3,5,5] do not fit");
    joule_tensor_free(x);
    int64_t ints[2] = {4, 108};
    joule_error err = {{0}};
    assert_joule_ok(joule_tensor_new(JOULE_I32, 2, ints, &x, &err), &err);
    expect_refused(x, true, "float32");
    joule_tensor_free(x);
}

static void test_recipe(void **state)
{
    (void)state;
    joule_error err = {{0}};
    joule_recipe r;
    assert_joule_ok(joule_recipe_init(&r, "r.json", &err), &err);
    const char *good = "{\"passes\":[{\"pass\":\"prune\",\"sparsity\":0.5,\"correct_bias\":"
                       "{\"calib\":\"d.npy\",\"calib_limit\":100,\"batch\":8,\"shift_only\":true}}]}";
    assert_joule_ok(joule_recipe_parse(&r, good, strlen(good), &err), &err);
    const joule_prune_options *o = r.steps[0].opts;
    assert_true(o->correct_bias.enabled && o->correct_bias.shift_only);
    assert_string_equal(o->correct_bias.calib_path, "d.npy");
    assert_int_equal(o->correct_bias.calib_limit, 100);
    assert_int_equal(o->correct_bias.batch, 8);
    joule_recipe_free(&r);
    static const struct {
        const char *json, *needle;
    } bad[] = {
        {"{\"passes\":[{\"pass\":\"prune\",\"sparsity\":0.5,\"correct_bias\":{\"calib_limit\":9}}]}",
         "'calib' (calibration data) is required"},
        {"{\"passes\":[{\"pass\":\"prune\",\"sparsity\":0.5,\"correct_bias\":{\"calib\":\"d\","
         "\"limit\":9}}]}",
         "correct_bias: unknown key 'limit'"},
        {"{\"passes\":[{\"pass\":\"prune\",\"sparsity\":0.5,\"correct_bias\":true}]}",
         "correct_bias: must be an object"},
        {"{\"passes\":[{\"pass\":\"prune\",\"sparsity\":0.5,\"correct_bias\":{\"calib\":\"d\","
         "\"batch\":0}}]}",
         "'batch' is 0"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_joule_ok(joule_recipe_init(&r, "r.json", &err), &err);
        assert_int_not_equal(joule_recipe_parse(&r, bad[i].json, strlen(bad[i].json), &err),
                             JOULE_OK);
        if (!strstr(err.msg, bad[i].needle))
            fail_msg("case %zu: '%s' does not say '%s'", i, err.msg, bad[i].needle);
        joule_recipe_free(&r);
    }
}

/* ---- channel pruning ---- */

/* x[N,3,6,6] -> Conv c1 (8, pads 1) -> Relu -> depthwise dw (8) -> Relu -> Conv c2 (6, pads 1,
 * no bias) -> Relu -> Conv c3 (4) -> y; c1/dw and c2 lose channels, c2 and c3 read removed
 * ones. */
static joule_model *chain_model(void)
{
    joule_error err = {{0}};
    joule_model *m;
    assert_joule_ok(joule_model_new(13, &m, &err), &err);
    float w1[8 * 3 * 9], b1[8], wd[8 * 9], bd[8], w2[6 * 8 * 9], w3[4 * 6 * 9], b3[4];
    tc_fill(w1, 216, 31);
    tc_fill(b1, 8, 32);
    tc_fill(wd, 72, 33);
    tc_fill(bd, 8, 34);
    tc_fill(w2, 432, 35);
    tc_fill(w3, 216, 36);
    tc_fill(b3, 4, 37);
    int64_t xd[4] = {-1, 3, 6, 6}, d1[4] = {8, 3, 3, 3}, db[1] = {8}, dd[4] = {8, 1, 3, 3};
    int64_t d2[4] = {6, 8, 3, 3}, d3[4] = {4, 6, 3, 3}, db3[1] = {4};
    tc_input(m, "x", 4, xd);
    add_const(m, "W1", JOULE_F32, 4, d1, w1);
    add_const(m, "B1", JOULE_F32, 1, db, b1);
    add_const(m, "WD", JOULE_F32, 4, dd, wd);
    add_const(m, "BD", JOULE_F32, 1, db, bd);
    add_const(m, "W2", JOULE_F32, 4, d2, w2);
    add_const(m, "W3", JOULE_F32, 4, d3, w3);
    add_const(m, "B3", JOULE_F32, 1, db3, b3);
    const char *i1[3] = {"x", "W1", "B1"}, *o1[1] = {"c1"}, *ir1[1] = {"c1"}, *or1[1] = {"r1"};
    const char *id[3] = {"r1", "WD", "BD"}, *od[1] = {"d"}, *ird[1] = {"d"}, *ord[1] = {"rd"};
    const char *i2[2] = {"rd", "W2"}, *o2[1] = {"c2"}, *ir2[1] = {"c2"}, *or2[1] = {"r2"};
    const char *i3[3] = {"r2", "W3", "B3"}, *o3[1] = {"y"};
    joule_node *c1 = tc_add_node(m, "Conv", "c1", 3, i1, 1, o1);
    tc_add_node(m, "Relu", "relu1", 1, ir1, 1, or1);
    joule_node *dw = tc_add_node(m, "Conv", "dw", 3, id, 1, od);
    tc_add_node(m, "Relu", "relud", 1, ird, 1, ord);
    joule_node *c2 = tc_add_node(m, "Conv", "c2", 2, i2, 1, o2);
    tc_add_node(m, "Relu", "relu2", 1, ir2, 1, or2);
    tc_add_node(m, "Conv", "c3", 3, i3, 1, o3);
    int64_t pads[4] = {1, 1, 1, 1};
    joule_node *padded[3] = {c1, dw, c2};
    for (int i = 0; i < 3; i++)
        assert_joule_ok(joule_node_set_attr_ints(m->graph, padded[i], "pads", pads, 4, &err),
                        &err);
    assert_joule_ok(joule_node_set_attr_int(m->graph, dw, "group", 8, &err), &err);
    tc_output(m, "y");
    return m;
}

/* x[N,8] -> Gemm g1 (W1[6,8] transB, C1) -> Relu -> Gemm g2 (W2[6,5], no C) -> y */
static joule_model *mlp_model(void)
{
    joule_error err = {{0}};
    joule_model *m;
    assert_joule_ok(joule_model_new(13, &m, &err), &err);
    float w1[48], c1[6], w2[30];
    tc_fill(w1, 48, 41);
    tc_fill(c1, 6, 42);
    tc_fill(w2, 30, 43);
    int64_t xd[2] = {-1, 8}, d1[2] = {6, 8}, dc[1] = {6}, d2[2] = {6, 5};
    tc_input(m, "x", 2, xd);
    add_const(m, "W1", JOULE_F32, 2, d1, w1);
    add_const(m, "C1", JOULE_F32, 1, dc, c1);
    add_const(m, "W2", JOULE_F32, 2, d2, w2);
    const char *i1[3] = {"x", "W1", "C1"}, *o1[1] = {"h"}, *i2[1] = {"h"}, *o2[1] = {"r"};
    const char *i3[2] = {"r", "W2"}, *o3[1] = {"y"};
    joule_node *g1 = tc_add_node(m, "Gemm", "g1", 3, i1, 1, o1);
    tc_add_node(m, "Relu", "relu", 1, i2, 1, o2);
    tc_add_node(m, "Gemm", "g2", 2, i3, 1, o3);
    assert_joule_ok(joule_node_set_attr_int(m->graph, g1, "transB", 1, &err), &err);
    tc_output(m, "y");
    return m;
}

static void channels_corrected(joule_model *m, const joule_tensor *x, bool enabled,
                               joule_report *r)
{
    joule_error err = {{0}};
    joule_channel_options o;
    joule_channel_defaults(&o);
    o.ratio = 0.3;
    o.correct_bias.enabled = enabled;
    o.correct_bias.calib_tensor = x;
    o.correct_bias.batch = 20;
    o.correct_bias.threads = 1;
    assert_joule_ok(joule_prune_channels(m, &o, r, &err), &err);
    assert_joule_ok(joule_graph_validate(m->graph, &err), &err);
}

/* The largest |mean difference| / spread over the channels of `name` in a and b. */
static double mean_gap(const joule_model *a, const joule_model *b, const joule_tensor *x,
                       const char *name, bool last_axis)
{
    double ma[64], sa[64], mb[64], sb[64], worst = 0;
    int64_t ca = channel_stats(a, x, name, last_axis, ma, sa);
    assert_int_equal(ca, channel_stats(b, x, name, last_axis, mb, sb));
    for (int64_t c = 0; c < ca; c++)
        worst = fmax(worst, fabs(ma[c] - mb[c]) / (sa[c] + 1e-3));
    return worst;
}

static void test_channels_chain(void **state)
{
    (void)state;
    int64_t xd[4] = {NCAL, 3, 6, 6};
    joule_tensor *x = calib_data(4, xd, 51);
    joule_model *orig = chain_model(), *m = chain_model(), *plain = chain_model();
    joule_report r;
    joule_report_init(&r);
    channels_corrected(m, x, true, &r);
    channels_corrected(plain, x, false, NULL);
    /* the shapes are the plain pruning's */
    const char *ws[4] = {"c1", "dw", "c2", "c3"};
    for (int i = 0; i < 4; i++) {
        const joule_tensor *a = tc_weight(m->graph, tc_node(m->graph, ws[i]));
        const joule_tensor *b = tc_weight(plain->graph, tc_node(plain->graph, ws[i]));
        assert_int_equal(a->rank, b->rank);
        assert_memory_equal(a->dims, b->dims, (size_t)a->rank * sizeof *a->dims);
    }
    const joule_tensor *w3 = tc_weight(m->graph, tc_node(m->graph, "c3"));
    const joule_tensor *w2 = tc_weight(m->graph, tc_node(m->graph, "c2"));
    assert_true(w3->dims[0] == 4 && w3->dims[1] < 6 && w2->dims[0] < 6 && w2->dims[1] < 8);
    /* the consumer of removed channels: its mean is back (and moved without the correction) */
    expect_same_means(orig, m, x, "y", false);
    assert_true(mean_gap(orig, plain, x, "y", false) > 0.01);
    /* c2 reads removed channels and lost some of its own: each kept channel's mean is one of
     * the unpruned channels', in order */
    double mo[64], so[64], mk[64], sk[64];
    int64_t co = channel_stats(orig, x, "c2", false, mo, so);
    int64_t ck = channel_stats(m, x, "c2", false, mk, sk);
    assert_int_equal(ck, w2->dims[0]);
    int64_t j = 0;
    for (int64_t k = 0; k < ck; k++) {
        while (j < co && !(fabs(mo[j] - mk[k]) <= 1e-4 * (fabs(mo[j]) + so[j] + 1e-3)))
            j++;
        if (j == co)
            fail_msg("c2 kept channel %lld: mean %.7g is none of the unpruned channels'",
                     (long long)k, mk[k]);
        j++;
    }
    /* c2 has no bias: the correction adds one */
    joule_node *c2 = tc_node(m->graph, "c2");
    assert_true(c2->n_inputs == 3 && c2->inputs[2] && c2->inputs[2]->data &&
                c2->inputs[2]->data->count == (size_t)w2->dims[0]);
    size_t rows = 0;
    for (size_t i = 0; i < r.n; i++)
        rows += !strcmp(r.rows[i].pass, "prune_channels") && r.rows[i].note &&
                !strncmp(r.rows[i].note, "bias corrected", 14);
    assert_int_equal(rows, 4); /* c1 (identity), dw (identity), c2, c3 */
    joule_report_free(&r);
    joule_model_free(plain);
    joule_model_free(m);
    joule_model_free(orig);
    joule_tensor_free(x);
}

static void test_channels_gemm(void **state)
{
    (void)state;
    int64_t xd[2] = {NCAL, 8};
    joule_tensor *x = calib_data(2, xd, 52);
    joule_model *orig = mlp_model(), *m = mlp_model(), *plain = mlp_model();
    channels_corrected(m, x, true, NULL);
    channels_corrected(plain, x, false, NULL);
    assert_true(tc_weight(m->graph, tc_node(m->graph, "g2"))->dims[0] < 6);
    expect_same_means(orig, m, x, "y", false);
    assert_true(mean_gap(orig, plain, x, "y", false) > 0.01);
    joule_model_free(plain);
    joule_model_free(m);
    joule_model_free(orig);
    joule_tensor_free(x);
}

/* One line naming needle; the model byte for byte as before. */
static void expect_channels_refused(const joule_tensor *x, double ratio, const char *needle)
{
    joule_model *m = chain_model();
    size_t l0 = 0;
    void *b0 = model_bytes(m, &l0);
    joule_channel_options o;
    joule_channel_defaults(&o);
    o.ratio = ratio;
    o.correct_bias.enabled = true;
    o.correct_bias.calib_tensor = x;
    joule_error err = {{0}};
    joule_report r;
    joule_report_init(&r);
    assert_int_not_equal(joule_prune_channels(m, &o, &r, &err), JOULE_OK);
    assert_non_null(strstr(err.msg, "prune_channels"));
    check_refusal(m, b0, l0, &err, &r, needle);
}

static void test_channels_bad_input(void **state)
{
    (void)state;
    expect_channels_refused(NULL, 0.3, "needs calibration data");
    int64_t empty[4] = {0, 3, 6, 6}, wrong[4] = {4, 3, 5, 5}, good[4] = {4, 3, 6, 6};
    joule_tensor *x = calib_data(4, empty, 1);
    expect_channels_refused(x, 0.3, "empty");
    joule_tensor_free(x);
    x = calib_data(4, wrong, 1);
    expect_channels_refused(x, 0.3, "[3,5,5] do not fit");
    joule_tensor_free(x);
    x = calib_data(4, good, 1);
    expect_channels_refused(x, 1.5, "outside [0, 1)");
    joule_tensor_free(x);
    /* the recipe key */
    joule_error err = {{0}};
    joule_recipe rc;
    assert_joule_ok(joule_recipe_init(&rc, "r.json", &err), &err);
    const char *ok = "{\"passes\":[{\"pass\":\"prune_channels\",\"ratio\":0.3,\"correct_bias\":"
                     "{\"calib\":\"d.npy\",\"calib_limit\":10}}]}";
    assert_joule_ok(joule_recipe_parse(&rc, ok, strlen(ok), &err), &err);
    const joule_channel_options *co = rc.steps[0].opts;
    assert_true(co->correct_bias.enabled && co->correct_bias.calib_limit == 10);
    assert_string_equal(co->correct_bias.calib_path, "d.npy");
    joule_recipe_free(&rc);
    const char *bad = "{\"passes\":[{\"pass\":\"prune_channels\",\"ratio\":0.3,\"correct_bias\":"
                      "{\"calib_limit\":10}}]}";
    assert_joule_ok(joule_recipe_init(&rc, "r.json", &err), &err);
    assert_int_not_equal(joule_recipe_parse(&rc, bad, strlen(bad), &err), JOULE_OK);
    assert_non_null(strstr(err.msg, "'calib' (calibration data) is required"));
    joule_recipe_free(&rc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm),
        cmocka_unit_test(test_conv),
        cmocka_unit_test(test_matmul),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_recipe),
        cmocka_unit_test(test_channels_chain),
        cmocka_unit_test(test_channels_gemm),
        cmocka_unit_test(test_channels_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

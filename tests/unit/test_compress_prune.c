/* tests/unit/test_compress_prune.c: the pruning passes. Exact zero counts per layer, that the
 * zeros are the smallest magnitudes (per layer, and under one global threshold), overrides, skip
 * lists and minimum sizes, N:M patterns checked group by group on Gemm (both layouts), MatMul and
 * Conv, sparse storage that shrinks the file and loads back equal, and channel pruning on the
 * cnn and mobile fixtures: fewer parameters and MACs, a model joule's engine still runs, and
 * outputs unchanged when nothing or only dead channels are removed. */
#include "test_compress_util.h"

/* Weighted nodes (Conv/Gemm/MatMul with a constant weight) of g, in order. */
static size_t weighted(const joule_graph *g, joule_node **out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < g->n_nodes && n < max; i++) {
        joule_node *nd = g->nodes[i];
        const char *op = nd->op_type;
        if ((!strcmp(op, "Conv") || !strcmp(op, "Gemm") || !strcmp(op, "MatMul")) &&
            nd->n_inputs > 1 && nd->inputs[1] && nd->inputs[1]->data)
            out[n++] = nd;
    }
    return n;
}

static float fmag(const joule_tensor *t, size_t i)
{
    return fabsf(((const float *)t->data)[i]);
}

/* Every zeroed weight of `after` had a magnitude no larger than every kept one (in `before`). */
static void check_smallest(const joule_tensor *before, const joule_tensor *after, float *max_cut,
                           float *min_kept)
{
    for (size_t i = 0; i < after->count; i++) {
        float a = fmag(before, i);
        if (((const float *)after->data)[i] == 0.0f) {
            if (a > *max_cut)
                *max_cut = a;
        } else {
            assert_true(((const float *)after->data)[i] == ((const float *)before->data)[i]);
            if (a < *min_kept)
                *min_kept = a;
        }
    }
}

static void prune_layer_exact(const char *fixture)
{
    static const double targets[] = {0.3, 0.5, 0.77};
    for (size_t ti = 0; ti < 3; ti++) {
        joule_model *orig = tc_load(fixture), *m = tc_load(fixture);
        joule_error err = {{0}};
        joule_report r;
        joule_report_init(&r);
        joule_prune_options o;
        joule_prune_defaults(&o);
        o.sparsity = targets[ti];
        assert_joule_ok(joule_prune_magnitude(m, &o, &r, &err), &err);
        joule_node *a[64], *b[64];
        size_t na = weighted(orig->graph, a, 64), nb = weighted(m->graph, b, 64);
        assert_int_equal(na, nb);
        assert_true(na >= 3);
        for (size_t i = 0; i < na; i++) {
            const joule_tensor *w0 = tc_weight(orig->graph, a[i]), *w1 = tc_weight(m->graph, b[i]);
            assert_int_equal(tc_zeros(w0), 0);
            assert_int_equal(tc_zeros(w1), (size_t)llround(targets[ti] * (double)w0->count));
            float max_cut = 0, min_kept = INFINITY;
            check_smallest(w0, w1, &max_cut, &min_kept);
            assert_true(max_cut <= min_kept);
            if (a[i]->n_inputs > 2 && a[i]->inputs[2]) { /* biases never change */
                const joule_tensor *b0 = a[i]->inputs[2]->data, *b1 = b[i]->inputs[2]->data;
                assert_int_equal(b0->nbytes, b1->nbytes);
                assert_memory_equal(b0->data, b1->data, b0->nbytes);
            }
        }
        assert_int_equal(r.n, na);
        joule_report_free(&r);
        joule_model_free(orig);
        joule_model_free(m);
    }
}

static void test_layer_exact_mlp(void **state)
{
    (void)state;
    prune_layer_exact("tests/data/mlp.onnx");
}

static void test_layer_exact_cnn(void **state)
{
    (void)state;
    prune_layer_exact("tests/data/cnn.onnx");
}

/* x[1,8] -> Gemm(W[4,8], transB=1) -> y */
static joule_model *gemm_model(const float *w, int64_t n, int64_t k, bool trans_b)
{
    joule_model *m = NULL;
    joule_error err = {{0}};
    assert_joule_ok(joule_model_new(13, &m, &err), &err);
    int64_t xd[2] = {1, k}, wd[2] = {trans_b ? n : k, trans_b ? k : n};
    tc_input(m, "x", 2, xd);
    add_const(m, "W", JOULE_F32, 2, wd, w);
    const char *in[2] = {"x", "W"}, *out[1] = {"y"};
    joule_node *g = tc_add_node(m, "Gemm", "gemm", 2, in, 1, out);
    assert_joule_ok(joule_node_set_attr_int(m->graph, g, "transB", trans_b, &err), &err);
    tc_output(m, "y");
    return m;
}

static void test_ties_by_index(void **state)
{
    (void)state;
    float w[32];
    for (int i = 0; i < 32; i++)
        w[i] = i % 2 ? -1.0f : 1.0f;
    w[5] = 2.0f;
    w[20] = -2.0f;
    for (int run = 0; run < 2; run++) {
        joule_model *m = gemm_model(w, 4, 8, true);
        joule_error err = {{0}};
        joule_prune_options o;
        joule_prune_defaults(&o);
        o.sparsity = 0.5;
        assert_joule_ok(joule_prune_magnitude(m, &o, NULL, &err), &err);
        const float *p = joule_graph_find_value(m->graph, "W")->data->data;
        /* 16 zeros: the first 16 indices of magnitude 1, skipping index 5 (magnitude 2) */
        for (int i = 0; i < 32; i++) {
            bool zero = i <= 16 && i != 5;
            if ((p[i] == 0.0f) != zero)
                fail_msg("run %d: weight %d is %g", run, i, (double)p[i]);
        }
        joule_model_free(m);
    }
}

static void test_global_threshold(void **state)
{
    (void)state;
    joule_model *orig = tc_load("tests/data/mlp.onnx"), *m = tc_load("tests/data/mlp.onnx");
    joule_error err = {{0}};
    joule_prune_options o;
    joule_prune_defaults(&o);
    o.sparsity = 0.6;
    o.scope = JOULE_PRUNE_SCOPE_GLOBAL;
    assert_joule_ok(joule_prune_magnitude(m, &o, NULL, &err), &err);
    joule_node *a[16], *b[16];
    size_t n = weighted(orig->graph, a, 16);
    assert_int_equal(weighted(m->graph, b, 16), n);
    size_t total = 0, zeros = 0;
    float max_cut = 0, min_kept = INFINITY;
    double lo = 1, hi = 0;
    for (size_t i = 0; i < n; i++) {
        const joule_tensor *w0 = tc_weight(orig->graph, a[i]), *w1 = tc_weight(m->graph, b[i]);
        total += w0->count;
        zeros += tc_zeros(w1);
        check_smallest(w0, w1, &max_cut, &min_kept);
        double s = (double)tc_zeros(w1) / (double)w1->count;
        lo = s < lo ? s : lo;
        hi = s > hi ? s : hi;
    }
    assert_int_equal(zeros, (size_t)llround(0.6 * (double)total));
    assert_true(max_cut <= min_kept); /* one threshold across layers */
    assert_true(hi - lo > 0.05);      /* so layers end with different sparsities */
    joule_model_free(orig);
    joule_model_free(m);
}

static const joule_layer_change *row_for(const joule_report *r, const char *node)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->rows[i].node && !strcmp(r->rows[i].node, node))
            return &r->rows[i];
    return NULL;
}

static void test_overrides_skip_min(void **state)
{
    (void)state;
    joule_model *m = tc_load("tests/data/mlp.onnx");
    joule_error err = {{0}};
    joule_report r;
    joule_report_init(&r);
    joule_prune_override ov[2] = {{.match = "/1/*", .sparsity = 0.3}, {.op_type = "Gemm", .sparsity = 0.7}};
    const char *skip[1] = {"/5/Gemm"};
    joule_prune_options o;
    joule_prune_defaults(&o);
    o.sparsity = 0.5;
    o.overrides = ov;
    o.n_overrides = 2;
    o.skip = skip;
    o.n_skip = 1;
    assert_joule_ok(joule_prune_magnitude(m, &o, &r, &err), &err);
    const joule_tensor *w1 = tc_weight(m->graph, tc_node(m->graph, "/1/Gemm"));
    const joule_tensor *w3 = tc_weight(m->graph, tc_node(m->graph, "/3/Gemm"));
    const joule_tensor *w5 = tc_weight(m->graph, tc_node(m->graph, "/5/Gemm"));
    assert_int_equal(tc_zeros(w1), (size_t)llround(0.3 * (double)w1->count));
    assert_int_equal(tc_zeros(w3), (size_t)llround(0.7 * (double)w3->count));
    assert_int_equal(tc_zeros(w5), 0);
    assert_non_null(strstr(row_for(&r, "/5/Gemm")->note, "skip"));
    joule_report_free(&r);
    joule_model_free(m);

    m = tc_load("tests/data/mlp.onnx");
    joule_report_init(&r);
    joule_prune_defaults(&o);
    o.sparsity = 0.5;
    o.min_params = 40000;
    assert_joule_ok(joule_prune_magnitude(m, &o, &r, &err), &err);
    assert_int_equal(tc_zeros(tc_weight(m->graph, tc_node(m->graph, "/1/Gemm"))), 200704 / 2);
    assert_int_equal(tc_zeros(tc_weight(m->graph, tc_node(m->graph, "/3/Gemm"))), 0);
    assert_non_null(strstr(row_for(&r, "/3/Gemm")->note, "fewer than the minimum"));
    joule_report_free(&r);
    joule_model_free(m);
}

/* Checks N:M along K for a weight laid out as element(line, k) = line * ls + k * ks. */
static void check_nm(const joule_tensor *w0, const joule_tensor *w1, size_t lines, size_t K,
                     size_t ls, size_t ks, int N, int M)
{
    assert_int_equal(K % (size_t)M, 0);
    for (size_t l = 0; l < lines; l++)
        for (size_t g = 0; g < K; g += (size_t)M) {
            int zeros = 0;
            float max_cut = 0, min_kept = INFINITY;
            for (int j = 0; j < M; j++) {
                size_t e = l * ls + (g + (size_t)j) * ks;
                float a = fmag(w0, e);
                if (((const float *)w1->data)[e] == 0.0f) {
                    zeros++;
                    max_cut = a > max_cut ? a : max_cut;
                } else {
                    min_kept = a < min_kept ? a : min_kept;
                }
            }
            if (zeros != M - N || max_cut > min_kept)
                fail_msg("line %zu group at %zu: %d zeros (want %d), cut %g > kept %g", l, g,
                         zeros, M - N, (double)max_cut, (double)min_kept);
        }
}

static void test_nm_gemm_fixture(void **state)
{
    (void)state;
    static const int pats[3][2] = {{2, 4}, {1, 4}, {3, 8}};
    for (int p = 0; p < 3; p++) {
        joule_model *orig = tc_load("tests/data/mlp.onnx"), *m = tc_load("tests/data/mlp.onnx");
        joule_error err = {{0}};
        joule_prune_options o;
        joule_prune_defaults(&o);
        o.pattern_n = pats[p][0];
        o.pattern_m = pats[p][1];
        assert_joule_ok(joule_prune_magnitude(m, &o, NULL, &err), &err);
        joule_node *a[16], *b[16];
        size_t n = weighted(orig->graph, a, 16);
        weighted(m->graph, b, 16);
        for (size_t i = 0; i < n; i++) {
            const joule_tensor *w0 = tc_weight(orig->graph, a[i]), *w1 = tc_weight(m->graph, b[i]);
            assert_int_equal(joule_attr_int(a[i], "transB", 0), 1); /* torch exports [N, K] */
            size_t N = (size_t)w0->dims[0], K = (size_t)w0->dims[1];
            if (K % (size_t)o.pattern_m) {
                assert_int_equal(tc_zeros(w1), 0);
                continue;
            }
            check_nm(w0, w1, N, K, K, 1, o.pattern_n, o.pattern_m);
            assert_int_equal(tc_zeros(w1), w0->count / (size_t)o.pattern_m *
                                               (size_t)(o.pattern_m - o.pattern_n));
        }
        joule_model_free(orig);
        joule_model_free(m);
    }
}

static void test_nm_layouts(void **state)
{
    (void)state;
    float w[8 * 3];
    tc_fill(w, 24, 7);
    joule_error err = {{0}};
    joule_prune_options o;
    joule_prune_defaults(&o);
    o.pattern_n = 2;
    o.pattern_m = 4;
    /* Gemm with B as [K, N] (transB = 0): groups run down the columns */
    joule_model *m = gemm_model(w, 3, 8, false);
    joule_model *m0 = gemm_model(w, 3, 8, false);
    assert_joule_ok(joule_prune_magnitude(m, &o, NULL, &err), &err);
    check_nm(joule_graph_find_value(m0->graph, "W")->data,
             joule_graph_find_value(m->graph, "W")->data, 3, 8, 1, 3, 2, 4);
    joule_model_free(m);
    joule_model_free(m0);

    /* MatMul with B [K=8, N=3] */
    for (int copy = 0; copy < 2; copy++) {
        assert_joule_ok(joule_model_new(13, &m, &err), &err);
        int64_t xd[2] = {2, 8}, wd[2] = {8, 3};
        tc_input(m, "x", 2, xd);
        add_const(m, "W", JOULE_F32, 2, wd, w);
        const char *in[2] = {"x", "W"}, *out[1] = {"y"};
        tc_add_node(m, "MatMul", "mm", 2, in, 1, out);
        tc_output(m, "y");
        if (copy == 0)
            m0 = m;
    }
    assert_joule_ok(joule_prune_magnitude(m, &o, NULL, &err), &err);
    check_nm(joule_graph_find_value(m0->graph, "W")->data,
             joule_graph_find_value(m->graph, "W")->data, 3, 8, 1, 3, 2, 4);
    /* the pruned MatMul still runs, and matches a dense run on the pruned weights: y = x W */
    int64_t xd[2] = {2, 8};
    joule_tensor *x = tc_random_input(2, xd, 3), *y = tc_run(m, x);
    const float *W = joule_graph_find_value(m->graph, "W")->data->data, *X = x->data;
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < 3; c++) {
            double acc = 0;
            for (int k = 0; k < 8; k++)
                acc += (double)X[r * 8 + k] * W[k * 3 + c];
            assert_true(fabs(acc - ((const float *)y->data)[r * 3 + c]) < 1e-5);
        }
    joule_tensor_free(x);
    joule_tensor_free(y);
    joule_model_free(m);
    joule_model_free(m0);
}

static void test_nm_conv_fixture(void **state)
{
    (void)state;
    joule_model *orig = tc_load("tests/data/cnn.onnx"), *m = tc_load("tests/data/cnn.onnx");
    joule_error err = {{0}};
    joule_report r;
    joule_report_init(&r);
    joule_prune_options o;
    joule_prune_defaults(&o);
    o.pattern_n = 2;
    o.pattern_m = 4;
    assert_joule_ok(joule_prune_magnitude(m, &o, &r, &err), &err);
    joule_node *a[16], *b[16];
    size_t n = weighted(orig->graph, a, 16);
    weighted(m->graph, b, 16);
    size_t checked = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(a[i]->op_type, "Conv"))
            continue;
        const joule_tensor *w0 = tc_weight(orig->graph, a[i]), *w1 = tc_weight(m->graph, b[i]);
        size_t C = (size_t)w0->dims[0], K = w0->count / C;
        if (K % 4) { /* the first conv (1x3x3 = 9) has no 2:4 form: left alone, with a row */
            assert_int_equal(tc_zeros(w1), 0);
            assert_non_null(strstr(row_for(&r, a[i]->name)->note, "not a multiple of 4"));
            continue;
        }
        check_nm(w0, w1, C, K, K, 1, 2, 4);
        checked++;
    }
    assert_int_equal(checked, 1);
    joule_report_free(&r);
    joule_model_free(orig);
    joule_model_free(m);
}

static void test_sparse_storage(void **state)
{
    (void)state;
    joule_model *m = tc_load("tests/data/mlp.onnx");
    joule_error err = {{0}};
    joule_report r;
    joule_report_init(&r);
    joule_prune_options o;
    joule_prune_defaults(&o);
    o.sparsity = 0.8;
    assert_joule_ok(joule_prune_magnitude(m, &o, NULL, &err), &err);
    void *dense = NULL, *sparse = NULL;
    size_t dense_len = 0, sparse_len = 0;
    assert_joule_ok(joule_model_serialize(m, &dense, &dense_len, &err), &err);
    joule_sparse_options so;
    joule_sparse_defaults(&so);
    assert_joule_ok(joule_sparse_storage(m, &so, &r, &err), &err);
    assert_int_equal(r.n, 3);
    assert_joule_ok(joule_model_serialize(m, &sparse, &sparse_len, &err), &err);
    assert_true(sparse_len < dense_len * 3 / 4); /* 80% zeros: COO is 12/20 of dense */
    joule_model *back = NULL;
    assert_joule_ok(joule_model_load_buffer(sparse, sparse_len, "sparse", NULL, &back, &err), &err);
    /* the three weights come back as Constant nodes whose sparse_value densifies to the same
     * bytes; the biases stay initializers */
    size_t n_sparse = 0;
    for (size_t i = 0; i < back->graph->n_nodes; i++) {
        const joule_node *n = back->graph->nodes[i];
        const joule_attr *a = joule_node_attr(n, "sparse_value");
        if (strcmp(n->op_type, "Constant") != 0 || !a)
            continue;
        const joule_value *u = joule_graph_find_value(m->graph, n->outputs[0]->name);
        assert_non_null(u);
        assert_int_equal(a->type, JOULE_ATTR_SPARSE_TENSOR);
        assert_non_null(a->t);
        assert_int_equal(a->t->nbytes, u->data->nbytes);
        assert_memory_equal(a->t->data, u->data->data, a->t->nbytes);
        n_sparse++;
    }
    assert_int_equal(n_sparse, 3);
    assert_int_equal(back->graph->n_initializers, 3);
    joule_tensor *x = tc_images(), *y0 = tc_run(m, x), *y1 = tc_run(back, x);
    assert_true(tc_max_diff(y0, y1) == 0);
    /* cleanup turns the Constant nodes into initializers that stay sparse: same bytes again */
    joule_cleanup_options co;
    joule_cleanup_defaults(&co);
    assert_joule_ok(joule_cleanup(back, &co, NULL, &err), &err);
    assert_int_equal(back->graph->n_initializers, 6);
    void *again = NULL;
    size_t again_len = 0;
    assert_joule_ok(joule_model_serialize(back, &again, &again_len, &err), &err);
    assert_int_equal(again_len, sparse_len);
    free(again);
    /* a model whose opset predates Constant's sparse_value (11) gets graph sparse_initializers */
    for (size_t i = 0; i < m->n_opsets; i++)
        if (!m->opsets[i].domain[0] || !strcmp(m->opsets[i].domain, "ai.onnx"))
            m->opsets[i].version = 10;
    void *old = NULL;
    size_t old_len = 0;
    joule_model *back10 = NULL;
    assert_joule_ok(joule_model_serialize(m, &old, &old_len, &err), &err);
    assert_joule_ok(joule_model_load_buffer(old, old_len, "opset10", NULL, &back10, &err), &err);
    size_t n_sparse10 = 0;
    for (size_t i = 0; i < back10->graph->n_initializers; i++)
        n_sparse10 += (back10->graph->initializers[i]->flags & JOULE_VALUE_SPARSE) != 0;
    assert_int_equal(n_sparse10, 3);
    joule_model_free(back10);
    free(old);
    joule_tensor_free(x);
    joule_tensor_free(y0);
    joule_tensor_free(y1);
    free(dense);
    free(sparse);
    joule_model_free(back);
    joule_model_free(m);
    joule_report_free(&r);

    /* at 50% zeros COO (12 bytes a non-zero) is larger than dense: kept dense, with a row */
    m = tc_load("tests/data/mlp.onnx");
    joule_report_init(&r);
    o.sparsity = 0.5;
    assert_joule_ok(joule_prune_magnitude(m, &o, NULL, &err), &err);
    assert_joule_ok(joule_sparse_storage(m, &so, &r, &err), &err);
    assert_int_equal(r.n, 3);
    for (size_t i = 0; i < r.n; i++)
        assert_non_null(strstr(r.rows[i].note, "kept dense"));
    for (size_t i = 0; i < m->graph->n_initializers; i++)
        assert_false(m->graph->initializers[i]->flags & JOULE_VALUE_SPARSE);
    joule_report_free(&r);
    joule_model_free(m);
}

static void test_bad_options(void **state)
{
    (void)state;
    joule_model *m = tc_load("tests/data/mlp.onnx");
    joule_error err = {{0}};
    joule_prune_options o;
    joule_prune_defaults(&o);
    static const double bad[] = {1.0, 1.5, NAN};
    for (int i = 0; i < 3; i++) {
        o.sparsity = bad[i];
        assert_int_equal(joule_prune_magnitude(m, &o, NULL, &err), JOULE_ERR_INVALID);
        assert_non_null(strstr(err.msg, "outside [0, 1)"));
    }
    joule_prune_defaults(&o); /* nothing asked */
    assert_int_equal(joule_prune_magnitude(m, &o, NULL, &err), JOULE_ERR_INVALID);
    o.pattern_n = 4;
    o.pattern_m = 4;
    assert_int_equal(joule_prune_magnitude(m, &o, NULL, &err), JOULE_ERR_INVALID);
    static const char *bad_pat[] = {"4:2", "2:2", "0:4", "a:b", "2:", ":4", "2:4x", "2-4", "-1:4",
                                    "2:1000", "", " 2:4"};
    for (size_t i = 0; i < sizeof bad_pat / sizeof *bad_pat; i++) {
        int n, mm;
        if (joule_parse_pattern(bad_pat[i], &n, &mm, &err) != JOULE_ERR_INVALID)
            fail_msg("pattern '%s' was accepted", bad_pat[i]);
    }
    int n, mm;
    assert_joule_ok(joule_parse_pattern("2:4", &n, &mm, &err), &err);
    assert_true(n == 2 && mm == 4);
    joule_channel_options co;
    joule_channel_defaults(&co);
    static const double bad_ratio[] = {1.0, -0.1, NAN};
    for (int i = 0; i < 3; i++) {
        co.ratio = bad_ratio[i];
        assert_int_equal(joule_prune_channels(m, &co, NULL, &err), JOULE_ERR_INVALID);
    }
    /* nothing changed by the refused calls */
    joule_node *w[8];
    size_t nw = weighted(m->graph, w, 8);
    for (size_t i = 0; i < nw; i++)
        assert_int_equal(tc_zeros(tc_weight(m->graph, w[i])), 0);
    joule_model_free(m);
}

/* ---- channel pruning ---- */

static joule_model *cleaned(const char *fixture)
{
    joule_model *m = tc_load(fixture);
    joule_error err = {{0}};
    assert_joule_ok(joule_cleanup(m, NULL, NULL, &err), &err);
    return m;
}

static void channels_shrink(const char *fixture, bool cleanup)
{
    joule_model *m = cleanup ? cleaned(fixture) : tc_load(fixture);
    joule_report r;
    joule_report_init(&r);
    tc_prune_channels_30(m, &r, fixture);
    joule_tensor *x = tc_images(), *y = tc_run(m, x);
    assert_int_equal(y->rank, 2);
    assert_int_equal(y->dims[0], 64);
    assert_int_equal(y->dims[1], 10);
    for (size_t i = 0; i < y->count; i++)
        assert_true(isfinite(((const float *)y->data)[i]));
    /* a saved and reloaded copy is the same model */
    joule_model *back = tc_roundtrip(m);
    joule_tensor *y2 = tc_run(back, x);
    assert_true(tc_max_diff(y, y2) == 0);
    joule_tensor_free(y2);
    joule_model_free(back);
    bool graph_output_row = false;
    for (size_t i = 0; i < r.n; i++)
        graph_output_row |= r.rows[i].note && strstr(r.rows[i].note, "graph output") != NULL;
    assert_true(graph_output_row); /* the classifier's outputs stay, and the report says so */
    joule_tensor_free(x);
    joule_tensor_free(y);
    joule_report_free(&r);
    joule_model_free(m);
}

static void test_channels_cnn(void **state)
{
    (void)state;
    channels_shrink("tests/data/cnn.onnx", true);
    channels_shrink("tests/data/cnn.onnx", false); /* BatchNormalization left in: sliced too */
}

static void test_channels_mobile(void **state)
{
    (void)state;
    channels_shrink("tests/data/mobile.onnx", true);
    channels_shrink("tests/data/mobile.onnx", false);
}

/* --channel-multiple: every group keeps a multiple of 16 channels (the mobile net's 16, 48, 24
 * and 72 become 16, 32, 16 and 48), the model still runs, and a multiple larger than any group
 * leaves the model alone; out-of-range multiples are refused. */
static void test_channels_multiple(void **state)
{
    (void)state;
    joule_model *m = cleaned("tests/data/mobile.onnx");
    joule_error err = {{0}};
    uint64_t p0, m0, p1, m1;
    tc_info(m, &p0, &m0);
    joule_channel_options o;
    joule_channel_defaults(&o);
    o.ratio = 0.3;
    static const int64_t bad[] = {-1, 4097};
    for (int i = 0; i < 2; i++) {
        o.multiple = bad[i];
        assert_int_equal(joule_prune_channels(m, &o, NULL, &err), JOULE_ERR_INVALID);
        assert_non_null(strstr(err.msg, "multiple"));
    }
    o.multiple = 4096;
    assert_joule_ok(joule_prune_channels(m, &o, NULL, &err), &err);
    tc_info(m, &p1, &m1);
    assert_true(p1 == p0 && m1 == m0);
    o.multiple = 16;
    assert_joule_ok(joule_prune_channels(m, &o, NULL, &err), &err);
    assert_joule_ok(joule_graph_validate(m->graph, &err), &err);
    tc_info(m, &p1, &m1);
    assert_true(m1 < m0);
    size_t convs = 0;
    for (size_t i = 0; i < m->graph->n_nodes; i++) {
        const joule_node *n = m->graph->nodes[i];
        if (!joule_node_is_op(n, "Conv"))
            continue;
        const joule_tensor *w = tc_weight(m->graph, n);
        assert_non_null(w);
        if (w->dims[0] % 16 != 0)
            fail_msg("conv %s keeps %lld channels, not a multiple of 16", n->name,
                     (long long)w->dims[0]);
        convs++;
    }
    assert_int_equal(convs, 10);
    joule_tensor *x = tc_images(), *y = tc_run(m, x);
    for (size_t i = 0; i < y->count; i++)
        assert_true(isfinite(((const float *)y->data)[i]));
    joule_tensor_free(x);
    joule_tensor_free(y);
    joule_model_free(m);
}

static void test_channels_ratio0_same_outputs(void **state)
{
    (void)state;
    static const char *fx[] = {"tests/data/cnn.onnx", "tests/data/mobile.onnx", "tests/data/mlp.onnx"};
    for (size_t f = 0; f < 3; f++) {
        joule_model *m = tc_load(fx[f]);
        joule_error err = {{0}};
        joule_tensor *x = tc_images(), *y0 = tc_run(m, x);
        uint64_t p0, m0, p1, m1;
        tc_info(m, &p0, &m0);
        joule_channel_options o;
        joule_channel_defaults(&o);
        assert_joule_ok(joule_prune_channels(m, &o, NULL, &err), &err);
        tc_info(m, &p1, &m1);
        assert_true(p0 == p1 && m0 == m1);
        joule_tensor *y1 = tc_run(m, x);
        assert_true(tc_max_diff(y0, y1) <= 1e-4);
        joule_tensor_free(x);
        joule_tensor_free(y0);
        joule_tensor_free(y1);
        joule_model_free(m);
    }
}

/* Zeroes output channel ch (weights and bias) of every Conv and of every Gemm whose output is
 * not a graph output. */
static void kill_channel(joule_model *m, int64_t ch)
{
    joule_graph *g = m->graph;
    for (size_t i = 0; i < g->n_nodes; i++) {
        joule_node *n = g->nodes[i];
        bool conv = !strcmp(n->op_type, "Conv"), gemm = !strcmp(n->op_type, "Gemm");
        if (!(conv || gemm) || (n->outputs[0]->flags & JOULE_VALUE_OUTPUT))
            continue;
        joule_tensor *w = n->inputs[1]->data;
        float *wd = joule_tensor_mutable_data(w);
        assert_non_null(wd);
        if (conv || joule_attr_int(n, "transB", 0)) { /* channel = axis 0 */
            size_t per = w->count / (size_t)w->dims[0];
            memset(wd + (size_t)ch * per, 0, per * sizeof *wd);
        } else {
            for (int64_t k = 0; k < w->dims[0]; k++)
                wd[k * w->dims[1] + ch] = 0;
        }
        if (n->n_inputs > 2 && n->inputs[2]) {
            float *bd = joule_tensor_mutable_data(n->inputs[2]->data);
            bd[ch] = 0;
        }
    }
}

static void test_channels_zero_only_same_outputs(void **state)
{
    (void)state;
    static const char *fx[] = {"tests/data/cnn.onnx", "tests/data/mobile.onnx", "tests/data/mlp.onnx"};
    for (size_t f = 0; f < 3; f++) {
        joule_model *m = cleaned(fx[f]);
        joule_error err = {{0}};
        kill_channel(m, 0);
        kill_channel(m, 3);
        joule_tensor *x = tc_images(), *y0 = tc_run(m, x);
        uint64_t p0, m0, p1, m1;
        tc_info(m, &p0, &m0);
        joule_channel_options o;
        joule_channel_defaults(&o);
        o.zero_only = true;
        /* with a multiple the kept count rounds up: every group here has a size divisible by
         * 4, so two dead channels stay with multiple 4 and go with multiple 2 */
        o.multiple = 4;
        assert_joule_ok(joule_prune_channels(m, &o, NULL, &err), &err);
        tc_info(m, &p1, &m1);
        if (!(p1 == p0 && m1 == m0))
            fail_msg("%s: multiple 4 removed channels", fx[f]);
        o.multiple = 2;
        assert_joule_ok(joule_prune_channels(m, &o, NULL, &err), &err);
        tc_info(m, &p1, &m1);
        if (!(p1 < p0 && m1 < m0))
            fail_msg("%s: dead channels stayed (params %llu -> %llu)", fx[f],
                     (unsigned long long)p0, (unsigned long long)p1);
        joule_tensor *y1 = tc_run(m, x);
        double d = tc_max_diff(y0, y1);
        if (!(d <= 1e-4))
            fail_msg("%s: outputs moved by %g after removing dead channels", fx[f], d);
        joule_tensor_free(x);
        joule_tensor_free(y0);
        joule_tensor_free(y1);
        joule_model_free(m);
    }
}

/* x[2,6] -> MatMul(W1[6,5]) -> Add(b1[5]) -> Relu -> MatMul(W2[5,4]) -> y: MatMul columns, a
 * per-channel Add and the next MatMul's rows; and a Conv -> Relu -> Reshape([0,48]) -> MatMul
 * path, where the Reshape's target must shrink with the channels. */
static void test_channels_matmul_reshape(void **state)
{
    (void)state;
    joule_error err = {{0}};
    joule_model *m;
    assert_joule_ok(joule_model_new(13, &m, &err), &err);
    float w1[30], b1[5], w2[20];
    tc_fill(w1, 30, 11);
    tc_fill(b1, 5, 12);
    tc_fill(w2, 20, 13);
    int64_t xd[2] = {2, 6}, d1[2] = {6, 5}, db[1] = {5}, d2[2] = {5, 4};
    tc_input(m, "x", 2, xd);
    add_const(m, "W1", JOULE_F32, 2, d1, w1);
    add_const(m, "b1", JOULE_F32, 1, db, b1);
    add_const(m, "W2", JOULE_F32, 2, d2, w2);
    const char *i1[2] = {"x", "W1"}, *o1[1] = {"h"}, *i2[2] = {"h", "b1"}, *o2[1] = {"hb"};
    const char *i3[1] = {"hb"}, *o3[1] = {"r"}, *i4[2] = {"r", "W2"}, *o4[1] = {"y"};
    tc_add_node(m, "MatMul", "mm1", 2, i1, 1, o1);
    tc_add_node(m, "Add", "add", 2, i2, 1, o2);
    tc_add_node(m, "Relu", "relu", 1, i3, 1, o3);
    tc_add_node(m, "MatMul", "mm2", 2, i4, 1, o4);
    tc_output(m, "y");
    joule_channel_options o;
    joule_channel_defaults(&o);
    o.ratio = 0.4;
    assert_joule_ok(joule_prune_channels(m, &o, NULL, &err), &err);
    const joule_tensor *W1 = joule_graph_find_value(m->graph, "W1")->data;
    assert_true(W1->dims[0] == 6 && W1->dims[1] == 3);
    assert_int_equal(tc_weight(m->graph, tc_node(m->graph, "mm2"))->dims[0], 3);
    assert_int_equal(tc_node(m->graph, "add")->inputs[1]->data->count, 3);
    joule_tensor *x = tc_random_input(2, xd, 5), *y = tc_run(m, x);
    assert_true(y->dims[0] == 2 && y->dims[1] == 4);
    joule_tensor_free(y);
    joule_tensor_free(x);
    joule_model_free(m);

    /* conv -> relu -> reshape to [0, 48] -> matmul */
    assert_joule_ok(joule_model_new(13, &m, &err), &err);
    float cw[3 * 2 * 9], mw[48 * 5];
    tc_fill(cw, 54, 21);
    tc_fill(mw, 240, 22);
    for (int i = 0; i < 18; i++) /* output channel 1 is dead (no bias either) */
        cw[18 + i] = 0;
    int64_t cx[4] = {1, 2, 4, 4}, cwd[4] = {3, 2, 3, 3}, mwd[2] = {48, 5}, sd[1] = {2};
    int64_t shape[2] = {0, 48};
    tc_input(m, "x", 4, cx);
    add_const(m, "CW", JOULE_F32, 4, cwd, cw);
    add_const(m, "MW", JOULE_F32, 2, mwd, mw);
    add_const(m, "S", JOULE_I64, 1, sd, shape);
    const char *c1[2] = {"x", "CW"}, *co1[1] = {"c"}, *c2[1] = {"c"}, *co2[1] = {"cr"};
    const char *c3[2] = {"cr", "S"}, *co3[1] = {"f"}, *c4[2] = {"f", "MW"}, *co4[1] = {"y"};
    joule_node *conv = tc_add_node(m, "Conv", "conv", 2, c1, 1, co1);
    int64_t pads[4] = {1, 1, 1, 1};
    assert_joule_ok(joule_node_set_attr_ints(m->graph, conv, "pads", pads, 4, &err), &err);
    tc_add_node(m, "Relu", "relu", 1, c2, 1, co2);
    tc_add_node(m, "Reshape", "reshape", 2, c3, 1, co3);
    tc_add_node(m, "MatMul", "mm", 2, c4, 1, co4);
    tc_output(m, "y");
    x = tc_random_input(4, cx, 9);
    joule_tensor *y0 = tc_run(m, x);
    joule_channel_defaults(&o);
    o.zero_only = true;
    assert_joule_ok(joule_prune_channels(m, &o, NULL, &err), &err);
    assert_int_equal(tc_weight(m->graph, tc_node(m->graph, "conv"))->dims[0], 2);
    assert_int_equal(tc_weight(m->graph, tc_node(m->graph, "mm"))->dims[0], 32);
    const int64_t *s = tc_node(m->graph, "reshape")->inputs[1]->data->data;
    assert_true(s[0] == 0 && s[1] == 32);
    y = tc_run(m, x);
    assert_true(tc_max_diff(y0, y) <= 1e-5);
    joule_tensor_free(y0);
    joule_tensor_free(y);
    joule_tensor_free(x);
    joule_model_free(m);
}

/* x[3,6] -> Gemm(W1 [K=6, N=8], transB=0, C[8]) -> LeakyRelu -> Gemm(W2 [5, 8], transB=1) -> y
 * with hidden channels 2 and 5 dead: zero_only removes exactly those (columns of W1, entries of
 * C, columns of W2) and the output stays; ratio 0.5 then cuts half of what is left. */
static void test_channels_gemm_layouts(void **state)
{
    (void)state;
    joule_error err = {{0}};
    joule_model *m;
    assert_joule_ok(joule_model_new(13, &m, &err), &err);
    float w1[48], c[8], w2[40];
    tc_fill(w1, 48, 71);
    tc_fill(c, 8, 72);
    tc_fill(w2, 40, 73);
    for (int k = 0; k < 6; k++)
        w1[k * 8 + 2] = w1[k * 8 + 5] = 0;
    c[2] = c[5] = 0;
    int64_t xd[2] = {3, 6}, d1[2] = {6, 8}, dc[1] = {8}, d2[2] = {5, 8};
    tc_input(m, "x", 2, xd);
    add_const(m, "W1", JOULE_F32, 2, d1, w1);
    add_const(m, "C", JOULE_F32, 1, dc, c);
    add_const(m, "W2", JOULE_F32, 2, d2, w2);
    const char *i1[3] = {"x", "W1", "C"}, *o1[1] = {"h"}, *i2[1] = {"h"}, *o2[1] = {"r"};
    const char *i3[2] = {"r", "W2"}, *o3[1] = {"y"};
    tc_add_node(m, "Gemm", "g1", 3, i1, 1, o1);
    tc_add_node(m, "LeakyRelu", "act", 1, i2, 1, o2);
    joule_node *g2 = tc_add_node(m, "Gemm", "g2", 2, i3, 1, o3);
    assert_joule_ok(joule_node_set_attr_int(m->graph, g2, "transB", 1, &err), &err);
    tc_output(m, "y");
    joule_tensor *x = tc_random_input(2, xd, 74), *y0 = tc_run(m, x);
    joule_channel_options o;
    joule_channel_defaults(&o);
    o.zero_only = true;
    assert_joule_ok(joule_prune_channels(m, &o, NULL, &err), &err);
    const joule_tensor *W1 = tc_weight(m->graph, tc_node(m->graph, "g1"));
    const joule_tensor *W2 = tc_weight(m->graph, tc_node(m->graph, "g2"));
    assert_true(W1->dims[0] == 6 && W1->dims[1] == 6);
    assert_true(W2->dims[0] == 5 && W2->dims[1] == 6);
    assert_int_equal(tc_node(m->graph, "g1")->inputs[2]->data->count, 6);
    assert_int_equal(tc_zeros(W1), 0); /* exactly the dead columns went */
    joule_tensor *y1 = tc_run(m, x);
    assert_true(tc_max_diff(y0, y1) <= 1e-5);
    o.zero_only = false;
    o.ratio = 0.5;
    assert_joule_ok(joule_prune_channels(m, &o, NULL, &err), &err);
    assert_int_equal(tc_weight(m->graph, tc_node(m->graph, "g1"))->dims[1], 3);
    assert_int_equal(tc_weight(m->graph, tc_node(m->graph, "g2"))->dims[1], 3);
    joule_tensor *y2 = tc_run(m, x);
    assert_true(y2->dims[0] == 3 && y2->dims[1] == 5);
    joule_tensor_free(x);
    joule_tensor_free(y0);
    joule_tensor_free(y1);
    joule_tensor_free(y2);
    joule_model_free(m);
}

static void test_transformer_runs(void **state)
{
    (void)state;
    if (!tc_have("tests/data/transformer.onnx"))
        skip();
    joule_model *m = cleaned("tests/data/transformer.onnx");
    joule_error err = {{0}};
    joule_tensor *x = tc_images();
    joule_channel_options o;
    joule_channel_defaults(&o);
    o.ratio = 0.3;
    assert_joule_ok(joule_prune_channels(m, &o, NULL, &err), &err);
    joule_prune_options p;
    joule_prune_defaults(&p);
    p.sparsity = 0.5;
    assert_joule_ok(joule_prune_magnitude(m, &p, NULL, &err), &err);
    joule_tensor *y = tc_run(m, x);
    assert_true(y->dims[0] == 64 && y->dims[1] == 10);
    joule_tensor_free(x);
    joule_tensor_free(y);
    joule_model_free(m);
}

/* Skip patterns and overrides that select no prunable layer become warning rows; those that
 * match do not. */
static size_t warning_rows(const joule_report *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        n += r->rows[i].warning;
    return n;
}

static void test_unmatched_patterns_warn(void **state)
{
    (void)state;
    joule_error err = {{0}};
    joule_model *m = cleaned("tests/data/cnn.onnx");
    static const char *const skip[] = {"/9/Gemm", "/9/Gemn"};
    joule_prune_override ov[3] = {{.match = "/4/*", .sparsity = 0.3},
                                  {.match = "nosuch*", .sparsity = 0.3},
                                  {.op_type = "MatMul", .sparsity = 0.3}};
    joule_prune_options o;
    joule_prune_defaults(&o);
    o.sparsity = 0.5;
    o.skip = skip;
    o.n_skip = 2;
    o.overrides = ov;
    o.n_overrides = 3;
    joule_report r;
    joule_report_init(&r);
    assert_joule_ok(joule_prune_magnitude(m, &o, &r, &err), &err);
    assert_int_equal(warning_rows(&r), 3);
    bool gemn = false, nosuch = false, matmul = false;
    for (size_t i = 0; i < r.n; i++) {
        if (!r.rows[i].warning)
            continue;
        gemn |= strstr(r.rows[i].note, "'/9/Gemn'") != NULL;
        nosuch |= strstr(r.rows[i].note, "override 1 (nosuch*)") != NULL;
        matmul |= strstr(r.rows[i].note, "override 2 (MatMul)") != NULL;
    }
    assert_true(gemn && nosuch && matmul);
    joule_report_free(&r);
    joule_model_free(m);

    m = cleaned("tests/data/cnn.onnx");
    joule_channel_options co;
    joule_channel_defaults(&co);
    co.ratio = 0.3;
    co.skip = skip;
    co.n_skip = 2;
    joule_report_init(&r);
    assert_joule_ok(joule_prune_channels(m, &co, &r, &err), &err);
    assert_int_equal(warning_rows(&r), 1);
    joule_report_free(&r);
    joule_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layer_exact_mlp),
        cmocka_unit_test(test_layer_exact_cnn),
        cmocka_unit_test(test_ties_by_index),
        cmocka_unit_test(test_global_threshold),
        cmocka_unit_test(test_overrides_skip_min),
        cmocka_unit_test(test_nm_gemm_fixture),
        cmocka_unit_test(test_nm_layouts),
        cmocka_unit_test(test_nm_conv_fixture),
        cmocka_unit_test(test_sparse_storage),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_channels_cnn),
        cmocka_unit_test(test_channels_mobile),
        cmocka_unit_test(test_channels_ratio0_same_outputs),
        cmocka_unit_test(test_channels_zero_only_same_outputs),
        cmocka_unit_test(test_channels_multiple),
        cmocka_unit_test(test_unmatched_patterns_warn),
        cmocka_unit_test(test_channels_matmul_reshape),
        cmocka_unit_test(test_channels_gemm_layouts),
        cmocka_unit_test(test_transformer_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

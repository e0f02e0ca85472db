/* tests/unit/test_engine.c: the engine's session on small graphs built in memory: memory planning
 * shares buffers along a chain, a new input shape re-plans and gives the right numbers, an
 * unknown op fails at creation naming node, op and opset, one thread is bit-reproducible, graph
 * outputs may be inputs or constants, and shapes fed as data plan per run. */
#include "common.h"

#include "joule/npy.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_graph_build.h"

/* ---- tests ---- */

/* x -> Relu -> Neg -> Abs -> Relu -> Neg -> Abs: six activations, at most two alive at once. */
static void test_chain_reuses_memory(void **state)
{
    (void)state;
    joule_error err = {{0}};
    joule_model *m = new_model();
    int64_t dims[2] = {1, 256};
    add_input(m, "x", JOULE_F32, 2, dims, NULL);
    const char *ops[6] = {"Relu", "Neg", "Abs", "Relu", "Neg", "Abs"};
    const char *names[7] = {"x", "a1", "a2", "a3", "a4", "a5", "y"};
    for (int i = 0; i < 6; i++)
        add_node(m, ops[i], names[i + 1], 1, &names[i], names[i + 1]);
    add_output(m, "y");

    joule_session_options opt = {.threads = 1};
    joule_session *s = NULL;
    assert_joule_ok(joule_session_create(m, &opt, &s, &err), &err);
    size_t act = 256 * sizeof(float), sum = 6 * act;
    size_t peak = joule_session_peak_bytes(s);
    assert_true(peak >= act);
    assert_true(peak < sum);
    assert_true(peak <= 2 * act); /* the output plus one live intermediate */

    joule_tensor *x = new_f32(2, dims);
    for (int i = 0; i < 256; i++)
        f32(x)[i] = (float)(i - 128) * 0.25f;
    const joule_tensor *in[1] = {x};
    assert_joule_ok(joule_session_run(s, in, 1, &err), &err);
    const joule_tensor *y = joule_session_output(s, 0);
    assert_non_null(y);
    assert_int_equal(y->rank, 2);
    assert_int_equal(y->dims[1], 256);
    for (int i = 0; i < 256; i++) {
        float v = (float)(i - 128) * 0.25f;
        assert_true(cf32(y)[i] == (v > 0 ? v : 0.0f));
    }
    joule_tensor_free(x);
    joule_session_free(s);
    joule_model_free(m);
}

/* y = Relu(x + w) with x [N,4]: creating without N fails; each new N re-plans. */
static void test_replan_on_shape_change(void **state)
{
    (void)state;
    joule_error err = {{0}};
    joule_model *m = new_model();
    int64_t dims[2] = {-1, 4}, wd[1] = {4};
    float w[4] = {1.0f, -2.0f, 3.0f, -4.0f};
    add_input(m, "x", JOULE_F32, 2, dims, "N");
    add_const_f32(m, "w", 1, wd, w);
    const char *add_in[2] = {"x", "w"}, *relu_in[1] = {"s"};
    add_node(m, "Add", "add", 2, add_in, "s");
    add_node(m, "Relu", "relu", 1, relu_in, "y");
    add_output(m, "y");

    joule_session *s = NULL;
    joule_session_options opt = {.threads = 1};
    assert_int_equal(joule_session_create(m, &opt, &s, &err), JOULE_ERR_INVALID);
    assert_null(s);
    assert_non_null(strstr(err.msg, "'x'"));
    assert_non_null(strstr(err.msg, "'N'"));
    assert_non_null(strstr(err.msg, "input_shapes"));

    joule_input_shape shape = {.name = "x", .shape = {.rank = 2, .dims = {{2, NULL}, {4, NULL}}}};
    opt.input_shapes = &shape;
    opt.n_input_shapes = 1;
    assert_joule_ok(joule_session_create(m, &opt, &s, &err), &err);
    size_t peak2 = joule_session_peak_bytes(s);

    int64_t sizes[4] = {2, 5, 1, 2};
    for (int r = 0; r < 4; r++) {
        int64_t xd[2] = {sizes[r], 4};
        joule_tensor *x = new_f32(2, xd);
        for (int i = 0; i < (int)x->count; i++)
            f32(x)[i] = (float)(i % 7) - 3.0f + 0.5f * (float)r;
        const joule_tensor *in[1] = {x};
        assert_joule_ok(joule_session_run(s, in, 1, &err), &err);
        const joule_tensor *y = joule_session_output(s, 0);
        assert_non_null(y);
        assert_int_equal(y->rank, 2);
        assert_int_equal(y->dims[0], sizes[r]);
        assert_int_equal(y->dims[1], 4);
        for (int i = 0; i < (int)x->count; i++) {
            float v = cf32(x)[i] + w[i % 4];
            assert_true(cf32(y)[i] == (v > 0 ? v : 0.0f));
        }
        if (sizes[r] == 5)
            assert_true(joule_session_peak_bytes(s) > peak2);
        if (sizes[r] == 2)
            assert_int_equal(joule_session_peak_bytes(s), peak2);
        joule_tensor_free(x);
    }
    /* a declared dim that does not match is an error, not a re-plan */
    int64_t bad[2] = {2, 5};
    joule_tensor *x = new_f32(2, bad);
    const joule_tensor *in[1] = {x};
    assert_int_not_equal(joule_session_run(s, in, 1, &err), JOULE_OK);
    joule_tensor_free(x);
    joule_session_free(s);
    joule_model_free(m);
}

/* An op joule does not know fails at creation with node name, op and opset. */
static void test_unsupported_op_fails_at_creation(void **state)
{
    (void)state;
    joule_error err = {{0}};
    joule_model *m = new_model();
    int64_t dims[1] = {3};
    add_input(m, "x", JOULE_F32, 1, dims, NULL);
    const char *in[1] = {"x"}, *in2[1] = {"h"};
    add_node(m, "Relu", "first", 1, in, "h");
    add_node(m, "Frobnicate", "frob", 1, in2, "y");
    add_output(m, "y");
    joule_session *s = NULL;
    joule_status st = joule_session_create(m, NULL, &s, &err);
    assert_int_equal(st, JOULE_ERR_UNSUPPORTED);
    assert_null(s);
    assert_non_null(strstr(err.msg, "node 'frob'"));
    assert_non_null(strstr(err.msg, "Frobnicate"));
    assert_non_null(strstr(err.msg, "opset 17"));

    joule_session_options cuda = {.backend = JOULE_BACKEND_CUDA};
    assert_int_equal(joule_session_create(m, &cuda, &s, &err), JOULE_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "cuda"));
    joule_model_free(m);
}

/* MatMul -> Add -> Relu -> MatMul with one thread: two runs and two sessions agree bit for bit,
 * and with a double-precision reference within float rounding. */
static void test_one_thread_is_deterministic(void **state)
{
    (void)state;
    joule_error err = {{0}};
    joule_model *m = new_model();
    enum { B = 8, K = 96, H = 40, O = 12 };
    int64_t xd[2] = {B, K}, w1d[2] = {K, H}, bd[1] = {H}, w2d[2] = {H, O};
    static float w1[K * H], b[H], w2[H * O];
    unsigned seed = 12345;
    for (size_t i = 0; i < K * H; i++)
        w1[i] = (float)((seed = seed * 1103515245u + 12345u) >> 16 & 0x7fff) / 32768.0f - 0.5f;
    for (size_t i = 0; i < H; i++)
        b[i] = (float)((seed = seed * 1103515245u + 12345u) >> 16 & 0x7fff) / 32768.0f - 0.5f;
    for (size_t i = 0; i < H * O; i++)
        w2[i] = (float)((seed = seed * 1103515245u + 12345u) >> 16 & 0x7fff) / 32768.0f - 0.5f;
    add_input(m, "x", JOULE_F32, 2, xd, NULL);
    add_const_f32(m, "w1", 2, w1d, w1);
    add_const_f32(m, "b", 1, bd, b);
    add_const_f32(m, "w2", 2, w2d, w2);
    const char *mm1[2] = {"x", "w1"}, *ad[2] = {"h", "b"}, *re[1] = {"hb"}, *mm2[2] = {"hr", "w2"};
    add_node(m, "MatMul", "mm1", 2, mm1, "h");
    add_node(m, "Add", "bias", 2, ad, "hb");
    add_node(m, "Relu", "relu", 1, re, "hr");
    add_node(m, "MatMul", "mm2", 2, mm2, "y");
    add_output(m, "y");

    joule_tensor *x = new_f32(2, xd);
    for (size_t i = 0; i < B * K; i++)
        f32(x)[i] = sinf((float)i * 0.37f);
    const joule_tensor *in[1] = {x};
    joule_session_options opt = {.threads = 1};
    joule_session *s1 = NULL, *s2 = NULL;
    assert_joule_ok(joule_session_create(m, &opt, &s1, &err), &err);
    assert_joule_ok(joule_session_create(m, &opt, &s2, &err), &err);
    float first[B * O];
    assert_joule_ok(joule_session_run(s1, in, 1, &err), &err);
    memcpy(first, joule_session_output(s1, 0)->data, sizeof first);
    assert_joule_ok(joule_session_run(s1, in, 1, &err), &err);
    assert_memory_equal(first, joule_session_output(s1, 0)->data, sizeof first);
    assert_joule_ok(joule_session_run(s2, in, 1, &err), &err);
    assert_memory_equal(first, joule_session_output(s2, 0)->data, sizeof first);

    for (int r = 0; r < B; r++)
        for (int o = 0; o < O; o++) {
            double acc = 0;
            for (int h = 0; h < H; h++) {
                double t = b[h];
                for (int k = 0; k < K; k++)
                    t += (double)cf32(x)[r * K + k] * w1[k * H + h];
                acc += (t > 0 ? t : 0) * w2[h * O + o];
            }
            assert_true(fabs(first[r * O + o] - acc) <= 1e-4 + 1e-4 * fabs(acc));
        }
    joule_session_free(s1);
    joule_session_free(s2);
    joule_tensor_free(x);
    joule_model_free(m);
}

/* Outputs: the input itself, an initializer, a folded constant, and a computed value. */
static void test_output_is_input_or_constant(void **state)
{
    (void)state;
    joule_error err = {{0}};
    joule_model *m = new_model();
    int64_t dims[1] = {5};
    float w[5] = {1, 2, 3, 4, 5};
    add_input(m, "x", JOULE_F32, 1, dims, NULL);
    add_const_f32(m, "w", 1, dims, w);
    const char *ww[2] = {"w", "w"}, *xc[2] = {"x", "c"};
    add_node(m, "Add", "fold", 2, ww, "c"); /* constant: evaluated at plan time */
    add_node(m, "Mul", "mul", 2, xc, "y");
    add_output(m, "x");
    add_output(m, "w");
    add_output(m, "c");
    add_output(m, "y");
    joule_session *s = NULL;
    joule_session_options opt = {.threads = 1};
    assert_joule_ok(joule_session_create(m, &opt, &s, &err), &err);
    assert_int_equal(joule_session_n_inputs(s), 1);
    assert_int_equal(joule_session_n_outputs(s), 4);
    assert_null(joule_session_output(s, 0)); /* nothing ran yet */
    /* only y and the copy of x are activations; c was folded */
    assert_true(joule_session_peak_bytes(s) <= 2 * 64);

    for (int r = 0; r < 2; r++) {
        joule_tensor *x = new_f32(1, dims);
        for (int i = 0; i < 5; i++)
            f32(x)[i] = (float)(i * 10 + r);
        const joule_tensor *in[1] = {x};
        assert_joule_ok(joule_session_run(s, in, 1, &err), &err);
        joule_tensor_free(x); /* outputs stay valid until the next run */
        const joule_tensor *ox = joule_session_output(s, 0), *ow = joule_session_output(s, 1);
        const joule_tensor *oc = joule_session_output(s, 2), *oy = joule_session_output(s, 3);
        for (int i = 0; i < 5; i++) {
            assert_true(cf32(ox)[i] == (float)(i * 10 + r));
            assert_true(cf32(ow)[i] == w[i]);
            assert_true(cf32(oc)[i] == 2 * w[i]);
            assert_true(cf32(oy)[i] == (float)(i * 10 + r) * 2 * w[i]);
        }
    }
    joule_session_free(s);
    joule_model_free(m);
}

/* Reshape fed its target shape as an input: the plan follows the data of every run. */
static void test_shape_from_input_data(void **state)
{
    (void)state;
    joule_error err = {{0}};
    joule_model *m = new_model();
    int64_t xd[3] = {2, 3, 4}, sd[1] = {2};
    add_input(m, "x", JOULE_F32, 3, xd, NULL);
    add_input(m, "shape", JOULE_I64, 1, sd, NULL);
    const char *in[2] = {"x", "shape"};
    add_node(m, "Reshape", "reshape", 2, in, "y");
    add_output(m, "y");
    joule_session *s = NULL;
    assert_joule_ok(joule_session_create(m, NULL, &s, &err), &err);
    joule_tensor *x = new_f32(3, xd);
    for (int i = 0; i < 24; i++)
        f32(x)[i] = (float)i;
    joule_tensor *shape = NULL;
    assert_joule_ok(joule_tensor_new(JOULE_I64, 1, sd, &shape, &err), &err);
    int64_t targets[3][2] = {{6, 4}, {4, -1}, {1, 24}};
    for (int r = 0; r < 3; r++) {
        int64_t *sv = joule_tensor_mutable_data(shape);
        sv[0] = targets[r][0];
        sv[1] = targets[r][1];
        const joule_tensor *feeds[2] = {x, shape};
        assert_joule_ok(joule_session_run(s, feeds, 2, &err), &err);
        const joule_tensor *y = joule_session_output(s, 0);
        assert_int_equal(y->rank, 2);
        assert_int_equal(y->dims[0], targets[r][0]);
        assert_int_equal(y->dims[1], 24 / targets[r][0]);
        assert_memory_equal(y->data, x->data, 24 * sizeof(float));
    }
    joule_tensor_free(x);
    joule_tensor_free(shape);
    joule_session_free(s);
    joule_model_free(m);
}

/* Wrong inputs are refused with a message, never run. */
static void test_bad_inputs(void **state)
{
    (void)state;
    joule_error err = {{0}};
    joule_model *m = new_model();
    int64_t dims[1] = {4};
    add_input(m, "x", JOULE_F32, 1, dims, NULL);
    const char *in[1] = {"x"};
    add_node(m, "Relu", "relu", 1, in, "y");
    add_output(m, "y");
    joule_session *s = NULL;
    joule_input_shape wrong = {.name = "nope", .shape = {.rank = 1, .dims = {{4, NULL}}}};
    joule_session_options opt = {.threads = 1, .input_shapes = &wrong, .n_input_shapes = 1};
    assert_int_equal(joule_session_create(m, &opt, &s, &err), JOULE_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "'nope'"));
    opt.threads = -1;
    opt.n_input_shapes = 0;
    assert_int_equal(joule_session_create(m, &opt, &s, &err), JOULE_ERR_INVALID);
    opt.threads = 0; /* all cores */
    assert_joule_ok(joule_session_create(m, &opt, &s, &err), &err);
    joule_tensor *i64 = NULL;
    assert_joule_ok(joule_tensor_new(JOULE_I64, 1, dims, &i64, &err), &err);
    const joule_tensor *feeds[1] = {i64};
    assert_int_equal(joule_session_run(s, feeds, 1, &err), JOULE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "'x'"));
    assert_int_equal(joule_session_run(s, feeds, 0, &err), JOULE_ERR_INVALID);
    feeds[0] = NULL;
    assert_int_equal(joule_session_run(s, feeds, 1, &err), JOULE_ERR_INVALID);
    assert_null(joule_session_output(s, 0));
    joule_tensor_free(i64);
    joule_session_free(s);
    joule_model_free(m);
}

/* A fixture model (tests/data) on 64 Fashion-MNIST images against the logits PyTorch computed. */
static void check_fixture(const char *model, const char *logits)
{
    char path[4096];
    joule_error err = {{0}};
    joule_model *m = NULL;
    assert_joule_ok(joule_model_load(test_source_path(model, path, sizeof path), &m, &err), &err);
    joule_tensor *x = NULL, *ref = NULL;
    assert_joule_ok(joule_npy_read(test_source_path("tests/data/fmnist_test64.npy", path,
                                                    sizeof path), &x, &err), &err);
    assert_joule_ok(joule_npy_read(test_source_path(logits, path, sizeof path), &ref, &err), &err);
    const joule_value *in = NULL;
    for (size_t i = 0; i < m->graph->n_inputs; i++)
        if (!m->graph->inputs[i]->data)
            in = m->graph->inputs[i];
    assert_non_null(in);
    /* without a shape for 'batch' creation must refuse; with the images' shape it plans */
    joule_session *s = NULL;
    joule_session_options opt = {.threads = 1};
    assert_int_equal(joule_session_create(m, &opt, &s, &err), JOULE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "batch"));
    joule_input_shape shape = {.name = in->name, .shape = {.rank = x->rank}};
    for (int d = 0; d < x->rank; d++)
        shape.shape.dims[d].size = x->dims[d];
    opt.input_shapes = &shape;
    opt.n_input_shapes = 1;
    assert_joule_ok(joule_session_create(m, &opt, &s, &err), &err);
    const joule_tensor *feeds[1] = {x};
    assert_joule_ok(joule_session_run(s, feeds, 1, &err), &err);
    const joule_tensor *y = joule_session_output(s, 0);
    assert_int_equal(y->count, ref->count);
    for (size_t i = 0; i < y->count; i++) {
        float a = cf32(y)[i], e = cf32(ref)[i];
        if (!(fabsf(a - e) <= 1e-3f + 1e-3f * fabsf(e)))
            fail_msg("%s: logit %zu: %g, PyTorch %g", model, i, (double)a, (double)e);
    }
    joule_tensor_free(x);
    joule_tensor_free(ref);
    joule_session_free(s);
    joule_model_free(m);
}

static void test_mlp_fixture(void **state)
{
    (void)state;
    check_fixture("tests/data/mlp.onnx", "tests/data/mlp_ref_logits64.npy");
}

static void test_cnn_fixture(void **state)
{
    (void)state;
    check_fixture("tests/data/cnn.onnx", "tests/data/cnn_ref_logits64.npy");
}

/* DequantizeLinear -> MatMul -> QuantizeLinear runs as one integer kernel: no float activation
 * is planned, and the result is within one quantization step of the float graph. With the
 * float product also a graph output, the chain runs node by node and gives the same numbers. */
static void run_qdq(bool expose_float)
{
    joule_error err = {{0}};
    joule_model *m = new_model();
    enum { M = 4, K = 16, N = 8 };
    int64_t xd[2] = {M, K}, wd[2] = {K, N};
    add_input(m, "xq", JOULE_U8, 2, xd, NULL);
    float xs = 0.05f, ws = 0.02f, ys = 0.1f;
    uint8_t xz = 128, yz = 100;
    int8_t wz = 0, w[K * N];
    for (int i = 0; i < K * N; i++)
        w[i] = (int8_t)((i * 37) % 255 - 127);
    add_const(m, "xs", JOULE_F32, 0, NULL, &xs);
    add_const(m, "xz", JOULE_U8, 0, NULL, &xz);
    add_const(m, "wq", JOULE_I8, 2, wd, w);
    add_const(m, "ws", JOULE_F32, 0, NULL, &ws);
    add_const(m, "wz", JOULE_I8, 0, NULL, &wz);
    add_const(m, "ys", JOULE_F32, 0, NULL, &ys);
    add_const(m, "yz", JOULE_U8, 0, NULL, &yz);
    const char *dqx[3] = {"xq", "xs", "xz"}, *dqw[3] = {"wq", "ws", "wz"}, *mm[2] = {"x", "w"},
               *q[3] = {"y", "ys", "yz"};
    add_node(m, "DequantizeLinear", "dq_x", 3, dqx, "x");
    add_node(m, "DequantizeLinear", "dq_w", 3, dqw, "w");
    add_node(m, "MatMul", "mm", 2, mm, "y");
    add_node(m, "QuantizeLinear", "q", 3, q, "yq");
    add_output(m, "yq");
    if (expose_float)
        add_output(m, "y");
    joule_session *s = NULL;
    joule_session_options opt = {.threads = 1};
    assert_joule_ok(joule_session_create(m, &opt, &s, &err), &err);
    if (!expose_float)
        assert_int_equal(joule_session_peak_bytes(s), 64); /* only yq: 32 bytes, aligned */
    else
        assert_true(joule_session_peak_bytes(s) >= M * N * sizeof(float));

    joule_tensor *x = NULL;
    assert_joule_ok(joule_tensor_new(JOULE_U8, 2, xd, &x, &err), &err);
    uint8_t *xv = joule_tensor_mutable_data(x);
    for (int i = 0; i < M * K; i++)
        xv[i] = (uint8_t)((i * 53 + 7) % 256);
    const joule_tensor *in[1] = {x};
    assert_joule_ok(joule_session_run(s, in, 1, &err), &err);
    const joule_tensor *yq = joule_session_output(s, 0);
    assert_int_equal(yq->dtype, JOULE_U8);
    assert_int_equal(yq->count, M * N);
    for (int r = 0; r < M; r++)
        for (int c = 0; c < N; c++) {
            double acc = 0;
            for (int k = 0; k < K; k++)
                acc += ((double)xv[r * K + k] - xz) * xs * ((double)w[k * N + c] - wz) * ws;
            double ref = rint(acc / ys) + yz;
            ref = ref < 0 ? 0 : ref > 255 ? 255 : ref;
            int got = ((const uint8_t *)yq->data)[r * N + c];
            if (fabs(got - ref) > 1)
                fail_msg("yq[%d,%d] = %d, float graph %g", r, c, got, ref);
        }
    joule_tensor_free(x);
    joule_session_free(s);
    joule_model_free(m);
}

/* DequantizeLinear -> Conv (per-channel int8 weights, int32 bias) -> Relu -> QuantizeLinear. */
static void test_qdq_conv_relu(void **state)
{
    (void)state;
    joule_error err = {{0}};
    joule_model *m = new_model();
    enum { C = 2, M = 3, H = 5, W = 5, KS = 3 };
    int64_t xd[4] = {1, C, H, W}, wd[4] = {M, C, KS, KS}, cd[1] = {M};
    add_input(m, "xq", JOULE_U8, 4, xd, NULL);
    float xs = 0.04f, ys = 0.05f, ws[M] = {0.01f, 0.02f, 0.015f}, bs[M];
    uint8_t xz = 120, yz = 10;
    int8_t w[M * C * KS * KS], wz[M] = {0, 0, 0};
    int32_t b[M] = {150, -400, 90}, bz[M] = {0, 0, 0};
    for (int i = 0; i < M * C * KS * KS; i++)
        w[i] = (int8_t)((i * 29) % 201 - 100);
    for (int c = 0; c < M; c++)
        bs[c] = xs * ws[c];
    add_const(m, "xs", JOULE_F32, 0, NULL, &xs);
    add_const(m, "xz", JOULE_U8, 0, NULL, &xz);
    add_const(m, "wq", JOULE_I8, 4, wd, w);
    add_const(m, "ws", JOULE_F32, 1, cd, ws);
    add_const(m, "wz", JOULE_I8, 1, cd, wz);
    add_const(m, "bq", JOULE_I32, 1, cd, b);
    add_const(m, "bs", JOULE_F32, 1, cd, bs);
    add_const(m, "bz", JOULE_I32, 1, cd, bz);
    add_const(m, "ys", JOULE_F32, 0, NULL, &ys);
    add_const(m, "yz", JOULE_U8, 0, NULL, &yz);
    const char *dqx[3] = {"xq", "xs", "xz"}, *dqw[3] = {"wq", "ws", "wz"},
               *dqb[3] = {"bq", "bs", "bz"}, *conv[3] = {"x", "w", "b"}, *relu[1] = {"y"},
               *q[3] = {"r", "ys", "yz"};
    add_node(m, "DequantizeLinear", "dq_x", 3, dqx, "x");
    joule_node *nw = add_node(m, "DequantizeLinear", "dq_w", 3, dqw, "w");
    joule_node *nb = add_node(m, "DequantizeLinear", "dq_b", 3, dqb, "b");
    joule_node *nc = add_node(m, "Conv", "conv", 3, conv, "y");
    add_node(m, "Relu", "relu", 1, relu, "r");
    add_node(m, "QuantizeLinear", "q", 3, q, "yq");
    add_output(m, "yq");
    assert_joule_ok(joule_node_set_attr_int(m->graph, nw, "axis", 0, &err), &err);
    assert_joule_ok(joule_node_set_attr_int(m->graph, nb, "axis", 0, &err), &err);
    int64_t pads[4] = {1, 1, 1, 1};
    assert_joule_ok(joule_node_set_attr_ints(m->graph, nc, "pads", pads, 4, &err), &err);
    joule_session *s = NULL;
    joule_session_options opt = {.threads = 1};
    assert_joule_ok(joule_session_create(m, &opt, &s, &err), &err);
    assert_int_equal(joule_session_peak_bytes(s), 128); /* only yq: 75 bytes, aligned */

    joule_tensor *x = NULL;
    assert_joule_ok(joule_tensor_new(JOULE_U8, 4, xd, &x, &err), &err);
    uint8_t *xv = joule_tensor_mutable_data(x);
    for (int i = 0; i < C * H * W; i++)
        xv[i] = (uint8_t)((i * 71 + 13) % 256);
    const joule_tensor *in[1] = {x};
    assert_joule_ok(joule_session_run(s, in, 1, &err), &err);
    const joule_tensor *yq = joule_session_output(s, 0);
    assert_int_equal(yq->count, M * H * W);
    for (int o = 0; o < M; o++)
        for (int r = 0; r < H; r++)
            for (int c = 0; c < W; c++) {
                double acc = b[o] * (double)bs[o];
                for (int ci = 0; ci < C; ci++)
                    for (int i = 0; i < KS; i++)
                        for (int j = 0; j < KS; j++) {
                            int rr = r + i - 1, cc = c + j - 1;
                            if (rr < 0 || rr >= H || cc < 0 || cc >= W)
                                continue;
                            acc += ((double)xv[(ci * H + rr) * W + cc] - xz) * xs *
                                   w[((o * C + ci) * KS + i) * KS + j] * ws[o];
                        }
                acc = acc > 0 ? acc : 0;
                double ref = rint(acc / ys) + yz;
                ref = ref > 255 ? 255 : ref;
                int got = ((const uint8_t *)yq->data)[(o * H + r) * W + c];
                if (fabs(got - ref) > 1)
                    fail_msg("yq[%d,%d,%d] = %d, float graph %g", o, r, c, got, ref);
            }
    joule_tensor_free(x);
    joule_session_free(s);
    joule_model_free(m);
}

static void test_qdq_chain_is_fused(void **state)
{
    (void)state;
    run_qdq(false);
    run_qdq(true);
}

/* Random DAGs of broadcasting Add/Sub/Mul and unary Relu/Neg over values shaped [1], [16] or
 * [4,16], with random graph outputs, against a direct evaluation: if the planner let two live
 * values share bytes, some output would differ. The arena must also stay below the sum. */
static void test_random_graphs_match_direct_evaluation(void **state)
{
    (void)state;
    enum { NV = 48, R = 4, COLS = 16 };
    static const int64_t shapes[3][2] = {{1, 0}, {COLS, 0}, {R, COLS}};
    static const int ranks[3] = {1, 1, 2};
    unsigned seed = 777;
#define RND() ((seed = seed * 1103515245u + 12345u) >> 16 & 0x7fff)
    for (int trial = 0; trial < 20; trial++) {
        joule_error err = {{0}};
        joule_model *m = new_model();
        int kind[NV];
        float val[NV][R * COLS];
        bool is_out[NV] = {false};
        float maxabs[NV] = {2.0f, 2.0f, 1.5f};
        char names[NV][8];
        /* value 0: the input [4,16]; 1, 2: constants [16] and [1] */
        for (int v = 0; v < NV; v++)
            snprintf(names[v], sizeof names[v], "v%d", v);
        kind[0] = 2;
        add_input(m, names[0], JOULE_F32, 2, shapes[2], NULL);
        kind[1] = 1;
        kind[2] = 0;
        for (int i = 0; i < COLS; i++)
            val[1][i] = (float)((int)RND() % 9 - 4) * 0.5f;
        val[2][0] = 1.5f;
        add_const_f32(m, names[1], 1, shapes[1], val[1]);
        add_const_f32(m, names[2], 1, shapes[0], val[2]);
        for (int i = 0; i < R * COLS; i++)
            val[0][i] = (float)((int)(i * 7 % 13) - 6) * 0.25f;
        size_t sum = 0;
        for (int v = 3; v < NV; v++) {
            const char *ops[5] = {"Add", "Sub", "Mul", "Relu", "Neg"};
            int op = (int)(RND() % 5);
            int a = (int)(RND() % (unsigned)v), b = (int)(RND() % (unsigned)v);
            if (v == 3)
                a = 0; /* the input feeds the graph */
            else if (RND() % 2) /* prefer recent values: longer chains, more reuse */
                a = v - 1 - (int)(RND() % (unsigned)(v < 4 ? v : 4));
            if (op == 2 && (maxabs[a] > 8 || maxabs[b] > 8))
                op = 0; /* products only of small values: everything stays finite */
            const char *in[2] = {names[a], names[b]};
            char nname[16];
            snprintf(nname, sizeof nname, "n%d", v);
            add_node(m, ops[op], nname, op < 3 ? 2 : 1, in, names[v]);
            kind[v] = op < 3 ? (kind[a] > kind[b] ? kind[a] : kind[b]) : kind[a];
            for (int r = 0; r < R; r++)
                for (int c = 0; c < COLS; c++) {
                    int ia = kind[a] == 0 ? 0 : kind[a] == 1 ? c : r * COLS + c;
                    int ib = kind[b] == 0 ? 0 : kind[b] == 1 ? c : r * COLS + c;
                    int io = kind[v] == 0 ? 0 : kind[v] == 1 ? c : r * COLS + c;
                    float x = val[a][ia], y = val[b][ib], z;
                    switch (op) {
                    case 0: z = x + y; break;
                    case 1: z = x - y; break;
                    case 2: z = x * y; break;
                    case 3: z = x > 0 ? x : 0.0f; break;
                    default: z = -x; break;
                    }
                    val[v][io] = z;
                    if (fabsf(z) > maxabs[v])
                        maxabs[v] = fabsf(z);
                }
            sum += (kind[v] == 2 ? R * COLS : kind[v] == 1 ? COLS : 1) * sizeof(float);
            if (v == NV - 1 || RND() % 7 == 0) {
                add_output(m, names[v]);
                is_out[v] = true;
            }
        }
        joule_session *s = NULL;
        joule_session_options opt = {.threads = 1};
        assert_joule_ok(joule_session_create(m, &opt, &s, &err), &err);
        assert_true(joule_session_peak_bytes(s) > 0);
        assert_true(joule_session_peak_bytes(s) < sum);
        joule_tensor *x = new_f32(2, shapes[2]);
        memcpy(f32(x), val[0], sizeof val[0]);
        const joule_tensor *in[1] = {x};
        for (int rep = 0; rep < 2; rep++) {
            assert_joule_ok(joule_session_run(s, in, 1, &err), &err);
            size_t o = 0;
            for (int v = 0; v < NV; v++) {
                if (!is_out[v])
                    continue;
                const joule_tensor *t = joule_session_output(s, o++);
                assert_non_null(t);
                size_t n = kind[v] == 2 ? R * COLS : kind[v] == 1 ? COLS : 1;
                assert_int_equal(t->count, n);
                assert_int_equal(t->rank, ranks[kind[v]]);
                for (size_t i = 0; i < n; i++)
                    if (!(cf32(t)[i] == val[v][i] || (isnan(cf32(t)[i]) && isnan(val[v][i]))))
                        fail_msg("trial %d: v%d[%zu] = %g, expected %g", trial, v, i,
                                 (double)cf32(t)[i], (double)val[v][i]);
            }
        }
        joule_tensor_free(x);
        joule_session_free(s);
        joule_model_free(m);
    }
#undef RND
}

/* .npy: every dtype round-trips; hostile headers give one-line errors. */
static void test_npy_roundtrip(void **state)
{
    (void)state;
    char dir[256], path[512];
    joule_error err = {{0}};
    assert_non_null(test_tmpdir(dir, sizeof dir));
    snprintf(path, sizeof path, "%s/t.npy", dir);
    const joule_dtype types[] = {JOULE_F32, JOULE_F16, JOULE_F64, JOULE_I8, JOULE_U8,
                                 JOULE_I32, JOULE_I64, JOULE_BOOL, JOULE_U16, JOULE_I16};
    const int64_t shapes[4][3] = {{0}, {7}, {2, 3}, {2, 0, 4}};
    const int ranks[4] = {0, 1, 2, 3};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++)
        for (int si = 0; si < 4; si++) {
            joule_tensor *t = NULL, *back = NULL;
            assert_joule_ok(joule_tensor_new(types[ti], ranks[si], shapes[si], &t, &err), &err);
            unsigned char *b = joule_tensor_mutable_data(t);
            for (size_t i = 0; i < t->nbytes; i++)
                b[i] = types[ti] == JOULE_BOOL ? (unsigned char)(i % 2) : (unsigned char)(i * 37 + 5);
            assert_joule_ok(joule_npy_write(path, t, &err), &err);
            assert_joule_ok(joule_npy_read(path, &back, &err), &err);
            assert_int_equal(back->dtype, t->dtype);
            assert_int_equal(back->rank, t->rank);
            assert_memory_equal(back->dims, t->dims, (size_t)t->rank * sizeof *t->dims);
            assert_int_equal(back->nbytes, t->nbytes);
            if (t->nbytes)
                assert_memory_equal(back->data, t->data, t->nbytes);
            size_t len = 0;
            unsigned char *raw = test_read_file(path, &len);
            assert_non_null(raw);
            size_t hlen = (size_t)raw[8] | (size_t)raw[9] << 8;
            assert_int_equal((10 + hlen) % 64, 0); /* data aligned as numpy writes it */
            assert_int_equal(raw[10 + hlen - 1], '\n');
            free(raw);
            joule_tensor_free(t);
            joule_tensor_free(back);
        }
    test_rmtree(dir);
}

static void expect_npy_error(const char *dir, const void *bytes, size_t len, joule_status want,
                             const char *needle)
{
    char path[512];
    joule_error err = {{0}};
    snprintf(path, sizeof path, "%s/bad.npy", dir);
    assert_int_equal(test_write_file(path, bytes, len), 0);
    joule_tensor *t = (joule_tensor *)1;
    joule_status st = joule_npy_read(path, &t, &err);
    if (st != want)
        fail_msg("%s: status %s, want %s (%s)", needle, joule_status_name(st),
                 joule_status_name(want), err.msg);
    assert_null(t);
    assert_null(strchr(err.msg, '\n'));
    assert_non_null(strstr(err.msg, "bad.npy"));
    if (!strstr(err.msg, needle))
        fail_msg("message '%s' lacks '%s'", err.msg, needle);
}

/* Builds a version-1 .npy with header text h (padded) and n data bytes. */
static size_t make_npy(unsigned char *buf, const char *h, size_t n)
{
    size_t hl = strlen(h);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)(hl & 0xff);
    buf[9] = (unsigned char)(hl >> 8);
    memcpy(buf + 10, h, hl);
    memset(buf + 10 + hl, 0, n);
    return 10 + hl + n;
}

static void test_npy_hostile(void **state)
{
    (void)state;
    char dir[256];
    assert_non_null(test_tmpdir(dir, sizeof dir));
    unsigned char buf[4096];
    size_t n;
    expect_npy_error(dir, "\x93NUMPZ\x01\x00\x10\x00", 10, JOULE_ERR_PARSE, "magic");
    expect_npy_error(dir, "\x93NUMPY\x01\x00\xff\xff{", 11, JOULE_ERR_PARSE, "header length");
    expect_npy_error(dir, "\x93NUMPY\x09\x00\x10\x00", 10, JOULE_ERR_UNSUPPORTED, "version 9");
    n = make_npy(buf, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }\n", 16);
    expect_npy_error(dir, buf, n, JOULE_ERR_UNSUPPORTED, "fortran_order");
    n = make_npy(buf, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }\n", 8);
    expect_npy_error(dir, buf, n, JOULE_ERR_UNSUPPORTED, "big-endian");
    n = make_npy(buf, "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }\n", 16);
    expect_npy_error(dir, buf, n, JOULE_ERR_UNSUPPORTED, "'<c8'");
    n = make_npy(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (100000000000,), }\n", 8);
    expect_npy_error(dir, buf, n, JOULE_ERR_PARSE, "header says");
    n = make_npy(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, "
                      "4611686018427387904), }\n", 8);
    expect_npy_error(dir, buf, n, JOULE_ERR_PARSE, "overflows");
    n = make_npy(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }\n",
                 8);
    expect_npy_error(dir, buf, n, JOULE_ERR_PARSE, "overflows");
    n = make_npy(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }\n", 8);
    expect_npy_error(dir, buf, n, JOULE_ERR_PARSE, "non-negative");
    n = make_npy(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }\n",
                 4);
    expect_npy_error(dir, buf, n, JOULE_ERR_UNSUPPORTED, "rank");
    n = make_npy(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}\n", 8);
    expect_npy_error(dir, buf, n, JOULE_ERR_PARSE, "unknown or repeated key");
    n = make_npy(buf, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}\n", 8);
    expect_npy_error(dir, buf, n, JOULE_ERR_PARSE, "unknown or repeated key");
    n = make_npy(buf, "{'descr': '<f4', 'shape': (2,)}\n", 8);
    expect_npy_error(dir, buf, n, JOULE_ERR_PARSE, "missing");
    n = make_npy(buf, "{'descr': '<f4, 'fortran_order': False, 'shape': (2,)}\n", 8);
    expect_npy_error(dir, buf, n, JOULE_ERR_PARSE, "bad .npy header");
    n = make_npy(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} junk\n", 8);
    expect_npy_error(dir, buf, n, JOULE_ERR_PARSE, "trailing");
    n = make_npy(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}\n", 9);
    expect_npy_error(dir, buf, n, JOULE_ERR_PARSE, "header says");
    n = make_npy(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,", 0);
    expect_npy_error(dir, buf, n, JOULE_ERR_PARSE, "bad .npy header");
    n = make_npy(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}\n", 8);
    buf[20] = 1; /* a control character inside the header */
    expect_npy_error(dir, buf, n, JOULE_ERR_PARSE, "control");
    /* the same header, well-formed, reads */
    char path[512];
    joule_error err = {{0}};
    joule_tensor *t = NULL;
    n = make_npy(buf, "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": [2]}   \n", 8);
    snprintf(path, sizeof path, "%s/ok.npy", dir);
    assert_int_equal(test_write_file(path, buf, n), 0);
    assert_joule_ok(joule_npy_read(path, &t, &err), &err);
    assert_int_equal(t->count, 2);
    joule_tensor_free(t);
    snprintf(path, sizeof path, "%s/missing.npy", dir);
    assert_int_equal(joule_npy_read(path, &t, &err), JOULE_ERR_IO);
    test_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain_reuses_memory),
        cmocka_unit_test(test_replan_on_shape_change),
        cmocka_unit_test(test_unsupported_op_fails_at_creation),
        cmocka_unit_test(test_one_thread_is_deterministic),
        cmocka_unit_test(test_output_is_input_or_constant),
        cmocka_unit_test(test_shape_from_input_data),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_mlp_fixture),
        cmocka_unit_test(test_cnn_fixture),
        cmocka_unit_test(test_random_graphs_match_direct_evaluation),
        cmocka_unit_test(test_qdq_chain_is_fused),
        cmocka_unit_test(test_qdq_conv_relu),
        cmocka_unit_test(test_npy_roundtrip),
        cmocka_unit_test(test_npy_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

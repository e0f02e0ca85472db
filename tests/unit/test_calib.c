/* tests/unit/test_calib.c: quantization arithmetic and calibration. Scale/zero-point choice,
 * per-channel weight and int32 bias quantization and float16 clamping against values worked out
 * by hand; the histogram range methods (percentile, entropy, MSE) on small histograms whose
 * answers are computed in the comments; and the streaming calibration driver on the MLP
 * fixture: ranges equal to a direct pass over the data whatever the batch size, and bad data
 * (wrong shape, empty set, no source) refused with one line and the model left unchanged. */
#include "common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/calib_internal.h"
#include "compress/quant_internal.h"
#include "joule/npy.h"
#include "joule/quantize.h"

/* ---- scale and zero point ---- */

static void test_params(void **state)
{
    (void)state;
    float s;
    int32_t z;
    /* uint8 over [-1, 3]: scale 4/255, zp round(1 / (4/255)) = round(63.75) = 64 */
    jq_params(-1, 3, 0, 255, false, &s, &z);
    assert_float_equal(s, 4.0f / 255.0f, 1e-9);
    assert_int_equal(z, 64);
    /* a positive range is widened to include 0 */
    jq_params(0.5, 2, 0, 255, false, &s, &z);
    assert_float_equal(s, 2.0f / 255.0f, 1e-9);
    assert_int_equal(z, 0);
    /* a negative one too: [-3, 0], zp at the top */
    jq_params(-3, -1, 0, 255, false, &s, &z);
    assert_float_equal(s, 3.0f / 255.0f, 1e-9);
    assert_int_equal(z, 255);
    /* int8 symmetric over [-2, 1]: a = 2, scale 4/254 = 2/127, zp 0 */
    jq_params(-2, 1, -127, 127, true, &s, &z);
    assert_float_equal(s, 2.0f / 127.0f, 1e-9);
    assert_int_equal(z, 0);
    /* uint8 symmetric: zp in the middle */
    jq_params(-1, 1, 0, 255, true, &s, &z);
    assert_int_equal(z, 128);
    /* empty or broken ranges: scale 1 */
    jq_params(0, 0, 0, 255, false, &s, &z);
    assert_true(s == 1.0f);
    assert_int_equal(z, 0);
    jq_params(NAN, 1, 0, 255, false, &s, &z);
    assert_true(s == 1.0f);
    jq_params(0, 0, -127, 127, true, &s, &z);
    assert_true(s == 1.0f);
    assert_int_equal(z, 0);
}

static void test_quantize_one(void **state)
{
    (void)state;
    /* half to even, as QuantizeLinear */
    assert_int_equal(jq_quantize_one(2.5f, 1.0f, 0, -127, 127), 2);
    assert_int_equal(jq_quantize_one(3.5f, 1.0f, 0, -127, 127), 4);
    assert_int_equal(jq_quantize_one(-2.5f, 1.0f, 0, -127, 127), -2);
    assert_int_equal(jq_quantize_one(0.3f, 0.1f, 10, 0, 255), 13);
    /* saturation */
    assert_int_equal(jq_quantize_one(1000.0f, 1.0f, 0, -127, 127), 127);
    assert_int_equal(jq_quantize_one(-5.0f, 1.0f, 3, 0, 255), 0);
    assert_int_equal(jq_quantize_one(NAN, 1.0f, 7, 0, 255), 7);
}

static joule_tensor *tensor_f32(int rank, const int64_t *dims, const float *v)
{
    joule_error err = {{0}};
    joule_tensor *t = NULL;
    assert_joule_ok(joule_tensor_new(JOULE_F32, rank, dims, &t, &err), &err);
    memcpy(joule_tensor_mutable_data(t), v, t->nbytes);
    return t;
}

static void test_weight_per_channel(void **state)
{
    (void)state;
    joule_error err = {{0}};
    int64_t dims[2] = {2, 3};
    const float w[6] = {1.0f, -0.5f, 0.25f, 0.0f, 0.0f, 0.0f};
    joule_tensor *t = tensor_f32(2, dims, w), *q, *s;
    /* along axis 0 (Conv, Gemm transB): row 0 has max 1 -> scale 1/127, values 127,
     * round(-63.5) = -64 (half to even), round(31.75) = 32; the zero row gets scale 1 */
    assert_joule_ok(jq_quantize_weight(t, 0, &q, &s, &err), &err);
    assert_int_equal(s->rank, 1);
    assert_int_equal(s->dims[0], 2);
    const float *sp = s->data;
    const int8_t *qp = q->data;
    assert_float_equal(sp[0], 1.0f / 127.0f, 1e-9);
    assert_true(sp[1] == 1.0f);
    assert_int_equal(qp[0], 127);
    assert_int_equal(qp[1], -64);
    assert_int_equal(qp[2], 32);
    assert_int_equal(qp[3], 0);
    joule_tensor_free(q);
    joule_tensor_free(s);
    /* along axis 1 (MatMul [K, N]): columns 1, 0.5, 0.25 -> each first row entry is +-127 */
    assert_joule_ok(jq_quantize_weight(t, 1, &q, &s, &err), &err);
    sp = s->data;
    qp = q->data;
    assert_int_equal(s->dims[0], 3);
    assert_float_equal(sp[0], 1.0f / 127.0f, 1e-9);
    assert_float_equal(sp[1], 0.5f / 127.0f, 1e-9);
    assert_float_equal(sp[2], 0.25f / 127.0f, 1e-9);
    assert_int_equal(qp[0], 127);
    assert_int_equal(qp[1], -127);
    assert_int_equal(qp[2], 127);
    joule_tensor_free(q);
    joule_tensor_free(s);
    /* per tensor: one scalar scale */
    assert_joule_ok(jq_quantize_weight(t, -1, &q, &s, &err), &err);
    assert_int_equal(s->rank, 0);
    assert_float_equal(((const float *)s->data)[0], 1.0f / 127.0f, 1e-9);
    qp = q->data;
    assert_int_equal(qp[2], 32);
    joule_tensor_free(q);
    joule_tensor_free(s);
    /* int weights are refused */
    joule_tensor *i8 = NULL;
    assert_joule_ok(joule_tensor_new(JOULE_I8, 2, dims, &i8, &err), &err);
    assert_int_equal(jq_quantize_weight(i8, 0, &q, &s, &err), JOULE_ERR_UNSUPPORTED);
    joule_tensor_free(i8);
    joule_tensor_free(t);
}

static void test_bias(void **state)
{
    (void)state;
    joule_error err = {{0}};
    int64_t d = 3;
    const float b[3] = {1.0f, -2.5f, 1e10f};
    const float sc[3] = {0.5f, 1.0f, 1e-3f};
    joule_tensor *t = tensor_f32(1, &d, b), *q;
    uint64_t clamped;
    assert_joule_ok(jq_quantize_bias(t, sc, 3, &q, &clamped, &err), &err);
    const int32_t *qp = q->data;
    assert_int_equal(q->dtype, JOULE_I32);
    assert_int_equal(qp[0], 2);
    assert_int_equal(qp[1], -2); /* -2.5 to even */
    assert_int_equal(qp[2], INT32_MAX);
    assert_int_equal(clamped, 1);
    joule_tensor_free(q);
    joule_tensor_free(t);
}

static void test_f16_clamp(void **state)
{
    (void)state;
    uint64_t over = 0, under = 0;
    assert_true(joule_f16_to_f32(jq_f32_to_f16_clamped(1e6f, &over, &under)) == 65504.0f);
    assert_true(joule_f16_to_f32(jq_f32_to_f16_clamped(-1e6f, &over, &under)) == -65504.0f);
    assert_true(joule_f16_to_f32(jq_f32_to_f16_clamped(1e-9f, &over, &under)) ==
                5.9604644775390625e-8f);
    assert_true(joule_f16_to_f32(jq_f32_to_f16_clamped(0.0f, &over, &under)) == 0.0f);
    assert_true(joule_f16_to_f32(jq_f32_to_f16_clamped(1.5f, &over, &under)) == 1.5f);
    assert_true(isinf(joule_f16_to_f32(jq_f32_to_f16_clamped(INFINITY, &over, &under))));
    assert_int_equal(over, 2);
    assert_int_equal(under, 1);
}

/* ---- histograms and range methods ---- */

static void fill(jq_hist *h, double lo, double hi, bool abs, size_t nbins, const float *v,
                 size_t n)
{
    joule_error err = {{0}};
    assert_joule_ok(jq_hist_init(h, lo, hi, abs, nbins, &err), &err);
    jq_hist_add(h, v, n);
}

static void test_hist_add(void **state)
{
    (void)state;
    const float v[7] = {0.5f, 1.5f, 1.5f, 3.9f, 10.0f, -1.0f, NAN};
    jq_hist h;
    fill(&h, 0, 4, false, 4, v, 7);
    /* 0.5 and -1 (below) in bin 0, 1.5 twice in bin 1, 3.9 and 10 (above) in bin 3; NaN not */
    assert_int_equal(h.bins[0], 2);
    assert_int_equal(h.bins[1], 2);
    assert_int_equal(h.bins[2], 0);
    assert_int_equal(h.bins[3], 2);
    assert_int_equal(h.total, 6);
    assert_true(h.min == -1.0);
    assert_true(h.max == 10.0);
    jq_hist_free(&h);
    /* abs counts |x| */
    fill(&h, 0, 4, true, 4, v, 7);
    assert_int_equal(h.bins[1], 3); /* 1.5, 1.5, |-1| */
    jq_hist_free(&h);
}

static void test_percentile(void **state)
{
    (void)state;
    float *v = malloc(1000 * sizeof *v);
    /* 990 values at 0.5, 9 at 4.5, 1 at 9.5 over [0, 10] in 10 bins */
    for (int i = 0; i < 1000; i++)
        v[i] = i < 990 ? 0.5f : i < 999 ? 4.5f : 9.5f;
    jq_hist h;
    fill(&h, 0, 10, true, 10, v, 1000);
    double lo, hi;
    jq_range_percentile(&h, 99.0, &lo, &hi); /* 990 counts in bin 0: t = 1 */
    assert_true(hi == 1.0);
    assert_true(lo == 0.5); /* non-negative data: the observed minimum */
    jq_range_percentile(&h, 99.9, &lo, &hi); /* 999 counts reached in bin 4: t = 5 */
    assert_true(hi == 5.0);
    jq_range_percentile(&h, 100.0, &lo, &hi); /* everything: t = 10, capped at max 9.5 */
    assert_true(hi == 9.5);
    jq_hist_free(&h);
    /* signed: 1 at -9.5, 998 at 0.5, 1 at 9.5 over [-10, 10] in 20 bins */
    for (int i = 0; i < 1000; i++)
        v[i] = i == 0 ? -9.5f : i == 999 ? 9.5f : 0.5f;
    fill(&h, -10, 10, false, 20, v, 1000);
    /* 99.8: 0.1% = 1 count cut per side; the outliers hold exactly that, so the cut ends at
     * the edges of bin 10 ([0, 1)) */
    jq_range_percentile(&h, 99.8, &lo, &hi);
    assert_true(lo == 0.0);
    assert_true(hi == 1.0);
    /* 99.9: 0.5 counts per side: the outliers stay (range capped at the observed values) */
    jq_range_percentile(&h, 99.9, &lo, &hi);
    assert_true(lo == -9.5);
    assert_true(hi == 9.5);
    jq_hist_free(&h);
    free(v);
}

static void test_entropy(void **state)
{
    (void)state;
    /* counts {4, 2, 0, 1} over [0, 4] (4 at 0.5, 2 at 1.5, 1 at 3.5), 2 quantized levels.
     * i = 2: P = {4, 2+1}, Q = {4, 2}: KL = 4/7 ln((4/7)/(4/6)) + 3/7 ln((3/7)/(2/6)) = 0.0196
     * i = 3: P = {4, 2, 1}, Q = {4, 1, 1}: KL = 0.0439
     * i = 4: P = {4, 2, 0, 1}, Q = {3, 3, 0, 1}: KL = 0.0485
     * so t = 2 bins = 2.0 */
    const float v[7] = {0.5f, 0.5f, 0.5f, 0.5f, 1.5f, 1.5f, 3.5f};
    jq_hist h;
    fill(&h, 0, 4, true, 4, v, 7);
    double lo, hi;
    jq_range_entropy(&h, 2, false, &lo, &hi);
    assert_true(hi == 2.0);
    assert_true(lo == 0.5);
    jq_hist_free(&h);
    /* a far outlier on the 2048-bin histogram the calibrator uses: t well below the maximum
     * (100), but above where the bulk lies (1); the search starts at 128 bins (6.25) */
    float *w = malloc(100001 * sizeof *w);
    unsigned s = 12345;
    for (int i = 0; i < 100000; i++) {
        s = s * 1103515245u + 12345u;
        w[i] = (float)((s >> 8) & 0xffff) / 65536.0f; /* uniform [0, 1) */
    }
    w[100000] = 100.0f;
    fill(&h, 0, 100, true, JQ_HIST_BINS, w, 100001);
    jq_range_entropy(&h, 128, false, &lo, &hi);
    assert_true(hi >= 6.25 && hi < 20.0);
    jq_hist_free(&h);
    free(w);
}

static void test_mse(void **state)
{
    (void)state;
    /* {10, 0, 0, 1} over [0, 4], one level (step = t):
     * t=1: 10/12 + (3.5-1)^2 = 7.083; t=2: 10*4/12 + 1.5^2 = 5.583; t=3: 7.75; t=4: 14.67 */
    float v[11];
    for (int i = 0; i < 10; i++)
        v[i] = 0.5f;
    v[10] = 3.5f;
    jq_hist h;
    fill(&h, 0, 4, true, 4, v, 11);
    double lo, hi;
    jq_range_mse(&h, 1, false, &lo, &hi);
    assert_true(hi == 2.0);
    /* with 255 levels the clip error dominates: keep everything (t = 4, capped at 3.5) */
    jq_range_mse(&h, 255, false, &lo, &hi);
    assert_true(hi == 3.5);
    jq_hist_free(&h);
    /* signed, {1, 0, 5, 0} over [-2, 2] (1 at -1.5, 5 at 0.5), one level: the best of
     * [-2,0] 1.583, [-1,0] 0.25 + 1.25 = 1.5, [-1,1] 1.917, ... is [-1, 0] */
    const float u[6] = {-1.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f};
    fill(&h, -2, 2, false, 4, u, 6);
    jq_range_mse(&h, 1, false, &lo, &hi);
    assert_true(lo == -1.0);
    assert_true(hi == 0.0);
    jq_hist_free(&h);
}

/* ---- the calibration driver ---- */

static joule_model *load_fixture(const char *name)
{
    char path[1024];
    joule_error err = {{0}};
    joule_model *m = NULL;
    assert_joule_ok(joule_model_load(test_source_path(name, path, sizeof path), &m, &err), &err);
    return m;
}

static joule_tensor *load_images(void)
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

/* The first Gemm's output: calibrated minmax equals the extremes of a direct run. */
static void test_calibrate_minmax_streams(void **state)
{
    (void)state;
    joule_error err = {{0}};
    joule_model *m = load_fixture("tests/data/mlp.onnx");
    joule_tensor *x = load_images();
    const joule_node *gemm = NULL;
    for (size_t i = 0; i < m->graph->n_nodes && !gemm; i++)
        if (strcmp(m->graph->nodes[i]->op_type, "Gemm") == 0)
            gemm = m->graph->nodes[i];
    assert_non_null(gemm);
    const char *name = gemm->outputs[0]->name;

    /* direct: the model with that tensor as its output */
    joule_model *m2 = load_fixture("tests/data/mlp.onnx");
    joule_value *v = joule_graph_find_value(m2->graph, name);
    m2->graph->outputs[0]->flags &= ~(unsigned)JOULE_VALUE_OUTPUT;
    m2->graph->outputs[0] = v;
    v->flags |= JOULE_VALUE_OUTPUT;
    joule_input_shape sh = {.name = "input"};
    sh.shape.rank = 4;
    sh.shape.dims[0].size = 64;
    sh.shape.dims[1].size = 1;
    sh.shape.dims[2].size = 28;
    sh.shape.dims[3].size = 28;
    joule_session_options so = {.threads = 1, .input_shapes = &sh, .n_input_shapes = 1};
    joule_session *s = NULL;
    assert_joule_ok(joule_session_create(m2, &so, &s, &err), &err);
    const joule_tensor *in[1] = {x};
    assert_joule_ok(joule_session_run(s, in, 1, &err), &err);
    const joule_tensor *y = joule_session_output(s, 0);
    double mn = INFINITY, mx = -INFINITY;
    for (size_t i = 0; i < y->count; i++) {
        mn = fmin(mn, ((const float *)y->data)[i]);
        mx = fmax(mx, ((const float *)y->data)[i]);
    }
    joule_session_free(s);
    joule_model_free(m2);

    size_t batches[3] = {64, 7, 1};
    for (int b = 0; b < 3; b++) {
        joule_static_options o;
        joule_static_defaults(&o);
        o.method = JOULE_CALIB_MINMAX;
        o.calib_tensor = x;
        o.batch = batches[b];
        o.threads = 1;
        jq_calib_tensor t[2] = {{.name = name}, {.name = "input"}};
        joule_calib_stats st = {0};
        assert_joule_ok(jq_calibrate(m, &o, t, 2, &st, &err), &err);
        assert_float_equal(t[0].lo, mn, 1e-5);
        assert_float_equal(t[0].hi, mx, 1e-5);
        assert_true(t[1].lo == 0.0 && t[1].hi <= 1.0 && t[1].hi > 0.9);
        assert_int_equal(st.items, 64);
        assert_int_equal(st.passes, 1);
        assert_true(st.items_per_s > 0);
    }
    /* histogram methods: two passes, ranges inside the observed one */
    for (int meth = JOULE_CALIB_PERCENTILE; meth <= JOULE_CALIB_MSE; meth++) {
        joule_static_options o;
        joule_static_defaults(&o);
        o.method = (joule_calib_method)meth;
        o.calib_tensor = x;
        o.batch = 10;
        o.threads = 1;
        jq_calib_tensor t[1] = {{.name = name}};
        joule_calib_stats st = {0};
        assert_joule_ok(jq_calibrate(m, &o, t, 1, &st, &err), &err);
        assert_int_equal(st.passes, 2);
        assert_true(t[0].lo >= mn - 1e-6 && t[0].hi <= mx + 1e-6);
        assert_true(t[0].hi > 0);
        assert_float_equal(t[0].min, mn, 1e-5);
    }
    joule_tensor_free(x);
    joule_model_free(m);
}

/* Calibration data that does not fit: one clear line, and the model is as it was. */
static void expect_refusal(joule_static_options *o, const char *needle)
{
    joule_error err = {{0}};
    joule_model *m = load_fixture("tests/data/mlp.onnx");
    size_t nodes = m->graph->n_nodes, values = m->graph->n_values;
    joule_report r;
    joule_report_init(&r);
    joule_status st = joule_quantize_static(m, o, &r, &err);
    assert_int_not_equal(st, JOULE_OK);
    if (!strstr(err.msg, needle))
        fail_msg("expected '%s' in: %s", needle, err.msg);
    assert_null(strchr(err.msg, '\n'));
    assert_int_equal(m->graph->n_nodes, nodes);
    assert_int_equal(m->graph->n_values, values);
    for (size_t i = 0; i < m->graph->n_nodes; i++) {
        assert_string_not_equal(m->graph->nodes[i]->op_type, "QuantizeLinear");
        assert_string_not_equal(m->graph->nodes[i]->op_type, "DequantizeLinear");
    }
    joule_report_free(&r);
    joule_model_free(m);
}

static void test_bad_calibration_data(void **state)
{
    (void)state;
    joule_error err = {{0}};
    joule_static_options o;
    /* items of the wrong shape */
    int64_t dims[4] = {8, 1, 14, 14};
    joule_tensor *small = NULL;
    assert_joule_ok(joule_tensor_new(JOULE_F32, 4, dims, &small, &err), &err);
    joule_static_defaults(&o);
    o.calib_tensor = small;
    expect_refusal(&o, "do not fit model input 'input'");
    joule_tensor_free(small);
    /* an empty set */
    int64_t none[4] = {0, 1, 28, 28};
    joule_tensor *empty = NULL;
    assert_joule_ok(joule_tensor_new(JOULE_F32, 4, none, &empty, &err), &err);
    joule_static_defaults(&o);
    o.calib_tensor = empty;
    expect_refusal(&o, "empty");
    joule_tensor_free(empty);
    /* no data at all */
    joule_static_defaults(&o);
    expect_refusal(&o, "calibration data");
    /* a file that does not exist */
    joule_static_defaults(&o);
    o.calib_path = "/nonexistent/calib.npy";
    expect_refusal(&o, "/nonexistent/calib.npy");
    /* the labels file as images: shape [64] does not fit [batch,1,28,28] */
    char path[1024];
    joule_static_defaults(&o);
    o.calib_path = test_source_path("tests/data/fmnist_test64_labels.npy", path, sizeof path);
    joule_model *m = load_fixture("tests/data/mlp.onnx");
    joule_report r;
    joule_report_init(&r);
    assert_int_not_equal(joule_quantize_static(m, &o, &r, &err), JOULE_OK);
    assert_null(strchr(err.msg, '\n'));
    joule_report_free(&r);
    joule_model_free(m);
    /* bad options */
    joule_tensor *x = load_images();
    joule_static_defaults(&o);
    o.calib_tensor = x;
    o.percentile = 30;
    expect_refusal(&o, "percentile");
    joule_tensor_free(x);
    joule_calib_method meth;
    assert_int_equal(joule_parse_calib_method("kl", &meth, &err), JOULE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "entropy"));
    assert_joule_ok(joule_parse_calib_method("mse", &meth, &err), &err);
    assert_int_equal(meth, JOULE_CALIB_MSE);
}

/* A dataset file (the .npy through joule's dataset reader) calibrates like the tensor. */
static void test_calibrate_from_file(void **state)
{
    (void)state;
    joule_error err = {{0}};
    char path[1024];
    joule_model *m = load_fixture("tests/data/mlp.onnx");
    joule_tensor *x = load_images();
    joule_static_options o;
    joule_static_defaults(&o);
    o.method = JOULE_CALIB_ENTROPY;
    o.calib_path = test_source_path("tests/data/fmnist_test64.npy", path, sizeof path);
    o.threads = 1;
    o.batch = 16;
    jq_calib_tensor a[1] = {{.name = "input"}}, b[1] = {{.name = "input"}};
    assert_joule_ok(jq_calibrate(m, &o, a, 1, NULL, &err), &err);
    o.calib_path = NULL;
    o.calib_tensor = x;
    assert_joule_ok(jq_calibrate(m, &o, b, 1, NULL, &err), &err);
    assert_true(a[0].lo == b[0].lo && a[0].hi == b[0].hi);
    /* limit: fewer items */
    joule_calib_stats st = {0};
    o.calib_limit = 10;
    assert_joule_ok(jq_calibrate(m, &o, b, 1, &st, &err), &err);
    assert_int_equal(st.items, 10);
    joule_tensor_free(x);
    joule_model_free(m);
}

/* A model whose input has a fixed batch (here 5) is fed batches of exactly 5: 64 images give
 * 12 batches (the last 4 images are left out); fewer than 5 images are refused. */
static void test_fixed_batch(void **state)
{
    (void)state;
    joule_error err = {{0}};
    joule_model *m = load_fixture("tests/data/mlp.onnx");
    joule_value *in = m->graph->inputs[0];
    in->shape.dims[0].size = 5;
    in->shape.dims[0].sym = NULL;
    joule_tensor *x = load_images();
    joule_static_options o;
    joule_static_defaults(&o);
    o.calib_tensor = x;
    o.threads = 1;
    jq_calib_tensor t[1] = {{.name = "input"}};
    joule_calib_stats st = {0};
    assert_joule_ok(jq_calibrate(m, &o, t, 1, &st, &err), &err);
    assert_int_equal(st.items, 60);
    o.calib_limit = 4;
    assert_int_equal(jq_calibrate(m, &o, t, 1, &st, &err), JOULE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "fixed batch of 5"));
    joule_tensor_free(x);
    joule_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_quantize_one),
        cmocka_unit_test(test_weight_per_channel),
        cmocka_unit_test(test_bias),
        cmocka_unit_test(test_f16_clamp),
        cmocka_unit_test(test_hist_add),
        cmocka_unit_test(test_percentile),
        cmocka_unit_test(test_entropy),
        cmocka_unit_test(test_mse),
        cmocka_unit_test(test_calibrate_minmax_streams),
        cmocka_unit_test(test_bad_calibration_data),
        cmocka_unit_test(test_calibrate_from_file),
        cmocka_unit_test(test_fixed_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* tests/unit/test_energy.c: the energy comparison. The statistics (t intervals, quantiles, the
 * paired bootstrap, the interleaving generator) and the graph model against hand-computed values;
 * the trial method on real fixture sessions with a scripted clock and powercap counter (every
 * expected joule worked out by hand); then end to end on this machine: the labelled estimate, a
 * fake powercap tree whose counter a thread drives (measured numbers replace estimates, wraps
 * included), and the joule command, whose --json output is checked against
 * docs/energy.schema.json. */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "joule/energy.h"
#include "test_meter_fakes.h"

/* ---- statistics ---- */

static void test_rng_and_interleave(void **state)
{
    (void)state;
    /* splitmix64 from 0: the reference outputs (Vigna's splitmix64.c) */
    uint64_t s = 0;
    assert_true(joule_rng_next(&s) == 0xe220a8397b1dcdafull);
    assert_true(joule_rng_next(&s) == 0x6e789e6aa1b965f4ull);
    assert_true(joule_rng_next(&s) == 0x06c45d188009454full);
    assert_true(joule_rng_next(&s) == 0xf88bb8a8724c81ecull);
    /* B first when the top bit is set: 1, 0, 0, 1, 0, 0 */
    unsigned char order[6];
    joule_interleave(0, 6, order);
    const unsigned char want[6] = {1, 0, 0, 1, 0, 0};
    assert_memory_equal(order, want, 6);
}

static void test_t_intervals(void **state)
{
    (void)state;
    assert_true(fabs(joule_t975(1) - 12.706205) < 1e-6);
    assert_true(fabs(joule_t975(9) - 2.262157) < 1e-6);
    assert_true(fabs(joule_t975(40) - 2.021075) < 2e-6);  /* tables: 2.021075 */
    assert_true(fabs(joule_t975(120) - 1.979930) < 2e-6); /* tables: 1.979930 */
    /* 1..5: mean 3, s = sqrt(2.5), half = 2.776445 x 1.581139 / sqrt(5) = 1.963243 */
    const double x[5] = {1, 2, 3, 4, 5};
    joule_interval v = joule_mean_ci95(x, 5);
    assert_true(fabs(v.mean - 3.0) < 1e-12);
    assert_true(fabs(v.lo - 1.036757) < 1e-6);
    assert_true(fabs(v.hi - 4.963243) < 1e-6);
    v = joule_mean_ci95(x, 1);
    assert_true(v.mean == 1.0 && isnan(v.lo) && isnan(v.hi));
}

static void test_quantiles(void **state)
{
    (void)state;
    const double s[4] = {1, 2, 3, 4};
    assert_true(fabs(joule_quantile(s, 4, 0.5) - 2.5) < 1e-12);
    assert_true(fabs(joule_quantile(s, 4, 0.9) - 3.7) < 1e-12); /* h = 2.7: 3 + 0.7 */
    assert_true(joule_quantile(s, 4, 0.0) == 1 && joule_quantile(s, 4, 1.0) == 4);
    assert_true(isnan(joule_quantile(s, 0, 0.5)));
}

static void test_bootstrap(void **state)
{
    (void)state;
    /* two pairs: a resample is {0,0} (ratio 2/1), {1,1} (9/3) or mixed (11/4), with
     * probabilities 1/4, 1/4, 1/2: the 2.5% and 97.5% points are exactly 2 and 3 */
    const double a[2] = {1, 3}, b[2] = {2, 9};
    joule_interval r = joule_bootstrap_ratio(a, b, 2, 20000, 7);
    assert_true(fabs(r.mean - 11.0 / 4.0) < 1e-12);
    assert_true(r.lo == 2.0);
    assert_true(r.hi == 3.0);
    /* equal ratios in every pair: a zero-width interval */
    const double c[4] = {1, 2, 3, 4}, d[4] = {0.5, 1, 1.5, 2};
    r = joule_bootstrap_ratio(c, d, 4, 1000, 1);
    assert_true(fabs(r.mean - 0.5) < 1e-15 && fabs(r.lo - 0.5) < 1e-15 && fabs(r.hi - 0.5) < 1e-15);
    /* the same seed gives the same interval */
    const double e[5] = {1, 2, 3, 4, 5}, f[5] = {2, 3, 3, 5, 9};
    joule_interval r1 = joule_bootstrap_ratio(e, f, 5, 5000, 42), r2 = joule_bootstrap_ratio(e, f, 5, 5000, 42);
    assert_true(r1.lo == r2.lo && r1.hi == r2.hi);
    assert_true(r1.lo >= 1.0 && r1.hi <= 2.0 && r1.lo < r1.mean && r1.mean < r1.hi);
}

/* ---- the graph model ---- */

static void test_graph_energy_mlp(void **state)
{
    (void)state;
    char path[1024];
    joule_error err;
    joule_model *m = NULL;
    assert_joule_ok(joule_model_load(test_source_path("tests/data/mlp.onnx", path, sizeof path), &m, &err), &err);
    joule_input_shape in = {.name = "input", .shape = {.rank = 4, .dims = {{1, NULL}, {1, NULL}, {28, NULL}, {28, NULL}}}};
    joule_graph_energy g;
    assert_joule_ok(joule_graph_energy_estimate(m, &in, 1, 0, -1, &g, &err), &err);
    /* Flatten -> Gemm 784x256 -> Relu -> Gemm 256x128 -> Relu -> Gemm 128x10, batch 1 */
    assert_true(g.macs[JOULE_NUM_FP32] == 784 * 256 + 256 * 128 + 128 * 10); /* 234752 */
    assert_true(g.macs[JOULE_NUM_INT8] == 0 && g.macs[JOULE_NUM_FP16] == 0);
    assert_true(g.other_ops[JOULE_NUM_FP32] == 256 + 128); /* the two Relus */
    assert_true(g.weight_bytes == 940584);                  /* 235146 float parameters */
    /* Gemm 3136 in + 1024 out, Relu 1024 + 1024, Gemm 1024 + 512, Relu 512 + 512, Gemm 512 + 40
     * (Flatten is a view) */
    assert_true(g.activation_bytes == 9320);
    /* compute 234752 x (3.7 + 0.9) + 384 x 0.9 = 1080204.8 pJ; SRAM 9320 / 8 x 10 = 11650 pJ;
     * DRAM 940584 / 8 = 117573 words x 1300 = 152844900 pJ (x 2600 = 305689800 pJ) */
    assert_true(fabs(g.compute_pj - 1080204.8) < 1e-6);
    assert_true(fabs(g.sram_pj - 11650.0) < 1e-9);
    assert_true(fabs(g.dram_lo_pj - 152844900.0) < 1e-3);
    assert_true(fabs(g.dram_hi_pj - 305689800.0) < 1e-3);
    assert_true(fabs(g.joules_lo - 153936754.8e-12) < 1e-15);
    assert_true(fabs(g.joules_hi - 306781654.8e-12) < 1e-15);
    /* with a 1 MiB cache the weights are SRAM reads: 117573 x 10 = 1175730 pJ more SRAM, no DRAM */
    assert_joule_ok(joule_graph_energy_estimate(m, &in, 1, 1 << 20, -1, &g, &err), &err);
    assert_true(g.weights_in_cache && g.dram_bytes == 0);
    assert_true(fabs(g.joules_lo - (1080204.8 + 11650.0 + 1175730.0) * 1e-12) < 1e-15);
    assert_true(g.joules_lo == g.joules_hi);
    /* measured LLC misses: 1000 x 64 B of DRAM traffic = 8000 words x 1300 pJ */
    assert_joule_ok(joule_graph_energy_estimate(m, &in, 1, 1 << 20, 1000, &g, &err), &err);
    assert_true(g.dram_from_llc_misses && fabs(g.dram_lo_pj - 8000 * 1300.0) < 1e-6);
    joule_model_free(m);
}

static void test_graph_energy_cnn(void **state)
{
    (void)state;
    char path[1024];
    joule_error err;
    joule_model *m = NULL;
    assert_joule_ok(joule_model_load(test_source_path("tests/data/cnn.onnx", path, sizeof path), &m, &err), &err);
    joule_input_shape in = {.name = "input", .shape = {.rank = 4, .dims = {{2, NULL}, {1, NULL}, {28, NULL}, {28, NULL}}}};
    joule_graph_energy g;
    assert_joule_ok(joule_graph_energy_estimate(m, &in, 1, 0, -1, &g, &err), &err);
    /* batch 2: twice joule info's 1117056 MACs, all fp32 */
    assert_true(g.macs[JOULE_NUM_FP32] == 2 * 1117056ull);
    joule_info *info = NULL;
    assert_joule_ok(joule_model_info(m, &in, 1, &info, &err), &err);
    assert_true(g.macs[JOULE_NUM_FP32] == info->total_macs);
    joule_info_free(info);
    joule_model_free(m);
}

/* ---- the trial method on scripted hardware ---- */

typedef struct scripted_run {
    joule_session *s;
    joule_tensor *x;
    fake_hw *hw;
    double latency_s, base_w, idle_w;
    unsigned long long seen;
    int windows;
} scripted_run;

/* One real inference; the fake clock moves by the scripted latency while the package draws
 * base_w + j watts in this model's j-th trial window (window 1 is the warm-up). */
static joule_status scripted_once(void *ctx, joule_error *err)
{
    scripted_run *r = ctx;
    const joule_tensor *in[1] = {r->x};
    joule_status st = joule_session_run(r->s, in, 1, err);
    if (st)
        return st;
    if (r->hw->energy_reads != r->seen) { /* the meter read: a new window began */
        r->seen = r->hw->energy_reads;
        r->windows++;
    }
    r->hw->zones[0].watts = r->base_w + (r->windows - 2);
    r->hw->cpu += r->latency_s;
    fake_advance(r->hw, r->latency_s);
    r->hw->zones[0].watts = r->idle_w;
    return JOULE_OK;
}

static void open_session(const char *rel, joule_model **m, joule_session **s, joule_tensor **x)
{
    char path[1024];
    joule_error err;
    assert_joule_ok(joule_model_load(test_source_path(rel, path, sizeof path), m, &err), &err);
    joule_input_shape in = {.name = "input", .shape = {.rank = 4, .dims = {{1, NULL}, {1, NULL}, {28, NULL}, {28, NULL}}}};
    joule_session_options so = {.backend = JOULE_BACKEND_CPU, .threads = 1, .input_shapes = &in, .n_input_shapes = 1};
    assert_joule_ok(joule_session_create(*m, &so, s, &err), &err);
    const int64_t dims[4] = {1, 1, 28, 28};
    assert_joule_ok(joule_tensor_new(JOULE_F32, 4, dims, x, &err), &err);
}

static void test_trials_scripted(void **state)
{
    (void)state;
    fake_hw hw;
    joule_clock clock;
    joule_file_reader reader;
    fake_init(&hw, &clock, &reader);
    const double idle = 5.0;
    fake_zone_add(&hw, "intel-rapl:0", "package-0", 1000, 262143328850ull, idle);
    joule_meter_options mo = fake_options(&hw, &clock, &reader);
    joule_meter *meter = NULL;
    joule_error err;
    assert_joule_ok(joule_meter_open(&mo, &meter, &err), &err);
    joule_model *ma, *mb;
    scripted_run ra = {.hw = &hw, .latency_s = 0.0015, .base_w = 20, .idle_w = idle};
    scripted_run rb = {.hw = &hw, .latency_s = 0.0035, .base_w = 14, .idle_w = idle};
    open_session("tests/data/mlp.onnx", &ma, &ra.s, &ra.x);
    open_session("tests/data/cnn.onnx", &mb, &rb.s, &rb.x);
    joule_workload wa = {&ra, scripted_once}, wb = {&rb, scripted_once};
    joule_trial_options to = {.window_s = 0.05, .trials = 4, .seed = 1, .warmup_s = 0};
    joule_energy_result *r = NULL;
    assert_joule_ok(joule_energy_trials(meter, &clock, &wa, &wb, &to, &r, &err), &err);

    assert_false(r->estimated);
    assert_string_equal(r->method, "measured: powercap package-0");
    /* RAPL updates every 1 ms: windows of 100 ms, not the 50 asked */
    assert_true(fabs(r->window_s - 0.1) < 1e-12);
    assert_non_null(strstr(r->notes[0], "window raised"));
    assert_true(fabs(r->idle_before_w - idle) < 1e-6 && fabs(r->idle_after_w - idle) < 1e-6);
    /* order: pair p runs B first when joule_interleave(1) says so */
    unsigned char order[4];
    joule_interleave(1, 4, order);
    assert_int_equal(r->n_trials, 8);
    for (size_t p = 0; p < 4; p++)
        for (int pos = 0; pos < 2; pos++) {
            const joule_energy_trial *t = &r->trial[2 * p + (size_t)pos];
            assert_int_equal(t->model, order[p] ? 1 - pos : pos);
            assert_int_equal(t->pair, p);
            /* A: 67 runs of 1.5 ms (100.5 ms) at 20 + p W; B: 29 runs of 3.5 ms at 14 + p W */
            uint64_t n = t->model ? 29 : 67;
            double lat = t->model ? 0.0035 : 0.0015, w = (t->model ? 14.0 : 20.0) + (double)p;
            assert_int_equal(t->inferences, n);
            assert_true(fabs(t->joules - (double)n * lat * w) < 1e-9);
            assert_true(fabs(t->wall_s - (double)n * lat) < 1e-9);
            assert_true(fabs(t->cpu_s - (double)n * lat) < 1e-9);
        }
    /* per inference: A_p = (20 + p) x 1.5 mJ, B_p = (14 + p) x 3.5 mJ, p = 0..3;
     * s = 1.5 mJ x sqrt(5/3) for A; t(3) = 3.182446 */
    const joule_energy_model *A = &r->models[0], *B = &r->models[1];
    double half_a = 3.182446 * 0.0015 * sqrt(5.0 / 3.0) / 2.0, half_b = 3.182446 * 0.0035 * sqrt(5.0 / 3.0) / 2.0;
    assert_true(fabs(A->energy_j.mean - 0.03225) < 1e-12);
    assert_true(fabs(A->energy_j.hi - (0.03225 + half_a)) < 1e-8);
    assert_true(fabs(A->energy_j.lo - (0.03225 - half_a)) < 1e-8);
    assert_true(fabs(B->energy_j.mean - 0.05425) < 1e-12);
    assert_true(fabs(B->energy_j.hi - (0.05425 + half_b)) < 1e-8);
    /* dynamic: minus 5 W x the inference's time */
    assert_true(fabs(A->dynamic_j.mean - 0.0015 * 16.5) < 1e-9);
    assert_true(fabs(B->dynamic_j.mean - 0.0035 * 10.5) < 1e-9);
    assert_true(fabs(A->per_joule.mean - 1 / 0.03225) < 1e-9);
    assert_true(fabs(A->co2e_g.mean - 0.03225 * 475.0 / 3.6e6) < 1e-15);
    assert_true(fabs(A->latency_p50_s - 0.0015) < 1e-9 && fabs(A->latency_p90_s - 0.0015) < 1e-9);
    assert_true(fabs(B->latency_p90_s - 0.0035) < 1e-9);
    assert_true(A->inferences == 268 && B->inferences == 116);
    /* B/A = (3.5 x 62) / (1.5 x 86); any resample's ratio lies between the pairs' extremes */
    assert_true(fabs(r->ratio.mean - (0.0035 * 62) / (0.0015 * 86)) < 1e-12);
    double lo = 0.0035 * 14 / (0.0015 * 20), hi = 0.0035 * 17 / (0.0015 * 23);
    assert_true(r->ratio.lo >= lo - 1e-12 && r->ratio.hi <= hi + 1e-12);
    assert_true(r->ratio.lo < r->ratio.mean && r->ratio.mean < r->ratio.hi);
    /* every rendering says measured and names the counter */
    char *text = NULL;
    assert_joule_ok(joule_energy_text(r, &text, &err), &err);
    assert_non_null(strstr(text, "energy per inference (measured)"));
    free(text);

    joule_energy_result_free(r);
    joule_meter_close(meter);
    for (int k = 0; k < 2; k++) {
        scripted_run *sr = k ? &rb : &ra;
        joule_session_free(sr->s);
        joule_tensor_free(sr->x);
    }
    joule_model_free(ma);
    joule_model_free(mb);
    test_rmtree(hw.root);
}

/* ---- a minimal JSON Schema checker (the keywords docs/energy.schema.json uses) ---- */

static bool schema_ok(const cJSON *root, const cJSON *s, const cJSON *v, char *why, size_t n);

static bool type_is(const char *t, const cJSON *v)
{
    if (strcmp(t, "object") == 0) return cJSON_IsObject(v);
    if (strcmp(t, "array") == 0) return cJSON_IsArray(v);
    if (strcmp(t, "string") == 0) return cJSON_IsString(v);
    if (strcmp(t, "number") == 0) return cJSON_IsNumber(v);
    if (strcmp(t, "integer") == 0) return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble);
    if (strcmp(t, "boolean") == 0) return cJSON_IsBool(v);
    if (strcmp(t, "null") == 0) return cJSON_IsNull(v);
    return false;
}

static bool same_value(const cJSON *a, const cJSON *b)
{
    return cJSON_Compare(a, b, true);
}

static bool schema_ok(const cJSON *root, const cJSON *s, const cJSON *v, char *why, size_t n)
{
    const cJSON *k;
    if ((k = cJSON_GetObjectItemCaseSensitive(s, "$ref"))) {
        const char *ref = k->valuestring;
        assert_true(strncmp(ref, "#/$defs/", 8) == 0);
        const cJSON *def = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "$defs"), ref + 8);
        assert_non_null(def);
        return schema_ok(root, def, v, why, n);
    }
    if ((k = cJSON_GetObjectItemCaseSensitive(s, "const")) && !same_value(k, v)) {
        snprintf(why, n, "not the constant");
        return false;
    }
    if ((k = cJSON_GetObjectItemCaseSensitive(s, "enum"))) {
        bool found = false;
        const cJSON *e;
        cJSON_ArrayForEach(e, k) found = found || same_value(e, v);
        if (!found) {
            snprintf(why, n, "not in enum");
            return false;
        }
    }
    if ((k = cJSON_GetObjectItemCaseSensitive(s, "type"))) {
        bool ok = false;
        if (cJSON_IsString(k)) {
            ok = type_is(k->valuestring, v);
        } else {
            const cJSON *t;
            cJSON_ArrayForEach(t, k) ok = ok || type_is(t->valuestring, v);
        }
        if (!ok) {
            snprintf(why, n, "wrong type");
            return false;
        }
    }
    if ((k = cJSON_GetObjectItemCaseSensitive(s, "oneOf"))) {
        int matches = 0;
        const cJSON *alt;
        char sub[256];
        cJSON_ArrayForEach(alt, k) matches += schema_ok(root, alt, v, sub, sizeof sub);
        if (matches != 1) {
            snprintf(why, n, "%d oneOf alternatives match", matches);
            return false;
        }
    }
    if ((k = cJSON_GetObjectItemCaseSensitive(s, "minimum")) && cJSON_IsNumber(v) &&
        v->valuedouble < k->valuedouble) {
        snprintf(why, n, "below minimum");
        return false;
    }
    if (cJSON_IsObject(v)) {
        const cJSON *req = cJSON_GetObjectItemCaseSensitive(s, "required"), *r;
        cJSON_ArrayForEach(r, req) if (!cJSON_GetObjectItemCaseSensitive(v, r->valuestring))
        {
            snprintf(why, n, "missing '%s'", r->valuestring);
            return false;
        }
        const cJSON *props = cJSON_GetObjectItemCaseSensitive(s, "properties");
        const cJSON *extra = cJSON_GetObjectItemCaseSensitive(s, "additionalProperties");
        const cJSON *f;
        cJSON_ArrayForEach(f, v)
        {
            const cJSON *ps = props ? cJSON_GetObjectItemCaseSensitive(props, f->string) : NULL;
            if (!ps) {
                if (extra && cJSON_IsFalse(extra)) {
                    snprintf(why, n, "unexpected '%s'", f->string);
                    return false;
                }
                continue;
            }
            char sub[192];
            if (!schema_ok(root, ps, f, sub, sizeof sub)) {
                snprintf(why, n, "%s: %s", f->string, sub);
                return false;
            }
        }
    }
    if (cJSON_IsArray(v) && (k = cJSON_GetObjectItemCaseSensitive(s, "items"))) {
        const cJSON *e;
        int i = 0;
        cJSON_ArrayForEach(e, v)
        {
            char sub[192];
            if (!schema_ok(root, k, e, sub, sizeof sub)) {
                snprintf(why, n, "[%d]: %s", i, sub);
                return false;
            }
            i++;
        }
    }
    return true;
}

/* Parses json and checks it against docs/energy.schema.json; returns the parsed document. */
static cJSON *check_schema(const char *json)
{
    char path[1024];
    size_t len = 0;
    char *text = test_read_file(test_source_path("docs/energy.schema.json", path, sizeof path), &len);
    assert_non_null(text);
    char *z = realloc(text, len + 1);
    assert_non_null(z);
    z[len] = 0;
    cJSON *schema = cJSON_Parse(z);
    free(z);
    assert_non_null(schema);
    cJSON *doc = cJSON_Parse(json);
    if (!doc)
        fail_msg("output is not JSON: %.200s", json);
    char why[256];
    if (!schema_ok(schema, schema, doc, why, sizeof why))
        fail_msg("output does not match docs/energy.schema.json: %s", why);
    /* the checker can fail: a document without its models does not pass */
    cJSON *broken = cJSON_Duplicate(doc, true);
    cJSON_DeleteItemFromObject(broken, "models");
    assert_false(schema_ok(schema, schema, broken, why, sizeof why));
    cJSON_Delete(broken);
    cJSON_Delete(schema);
    return doc;
}

static bool json_bool(const cJSON *o, const char *name)
{
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, name);
    assert_true(cJSON_IsBool(b));
    return cJSON_IsTrue(b);
}

/* ---- end to end on this machine ---- */

static joule_energy_options e2e_options(char *base, char *cand, size_t size)
{
    joule_energy_options o;
    memset(&o, 0, sizeof o);
    o.base = test_source_path("tests/data/mlp.onnx", base, size);
    o.candidate = test_source_path("tests/data/cnn.onnx", cand, size);
    o.threads = 1;
    o.trial.window_s = 0.05;
    o.trial.trials = 3;
    o.trial.seed = 3;
    o.trial.resamples = 2000;
    o.meter.nvml_lib = "/nonexistent/libnvidia-ml.so.1";
    return o;
}

/* No counter here: the estimate, labelled in every rendering. */
static void test_compare_estimated(void **state)
{
    (void)state;
    char base[1024], cand[1024], empty[512];
    assert_non_null(test_tmpdir(empty, sizeof empty));
    joule_energy_options o = e2e_options(base, cand, sizeof base);
    o.meter.powercap_root = empty;
    joule_energy_result *r = NULL;
    joule_error err;
    assert_joule_ok(joule_energy_compare(&o, &r, &err), &err);
    assert_true(r->estimated);
    assert_non_null(strstr(r->method, "estimated: cpu time x"));
    for (int k = 0; k < 2; k++) {
        assert_true(r->models[k].energy_j.mean > 0);
        assert_true(r->models[k].inferences >= 3);
        assert_true(r->models[k].has_graph && r->models[k].graph.joules_lo > 0);
    }
    assert_true(isfinite(r->ratio.mean) && r->ratio.mean > 0);
    assert_true(r->graph_ratio > 1); /* the CNN does more than four times the MLP's MACs */
    char *text = NULL, *md = NULL, *html = NULL, *json = NULL;
    assert_joule_ok(joule_energy_text(r, &text, &err), &err);
    assert_joule_ok(joule_energy_markdown(r, &md, &err), &err);
    assert_joule_ok(joule_energy_html(r, &html, &err), &err);
    assert_joule_ok(joule_energy_json(r, &json, &err), &err);
    assert_non_null(strstr(text, "ESTIMATED, not measured"));
    assert_non_null(strstr(text, "energy per inference (estimated)"));
    assert_non_null(strstr(text, "B/A energy per inference (estimated)"));
    assert_null(strstr(text, "(measured)"));
    assert_non_null(strstr(md, "**Estimated, not measured.**"));
    assert_non_null(strstr(md, "| energy per inference (estimated) |"));
    assert_non_null(strstr(html, "<strong>Estimated, not measured.</strong>"));
    assert_non_null(strstr(html, "<td>energy per inference (estimated)</td>"));
    cJSON *doc = check_schema(json);
    assert_true(json_bool(doc, "estimated"));
    const cJSON *models = cJSON_GetObjectItemCaseSensitive(doc, "models");
    assert_true(json_bool(cJSON_GetObjectItemCaseSensitive(models, "base"), "estimated"));
    assert_true(json_bool(cJSON_GetObjectItemCaseSensitive(doc, "ratio"), "estimated"));
    cJSON_Delete(doc);
    free(text);
    free(md);
    free(html);
    free(json);
    joule_energy_result_free(r);
    test_rmtree(empty);
}

/* A thread that plays a RAPL package counter in a fake tree: 8 W plus 25 W per busy CPU second
 * of this process, in microjoules modulo a 5 J range, so it wraps every fraction of a second. */
typedef struct rapl_writer {
    char path[700];
    unsigned long long range;
    volatile int stop;
    pthread_t thread;
} rapl_writer;

static double clock_s(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *writer_main(void *arg)
{
    rapl_writer *w = arg;
    double t0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    while (!w->stop) {
        double uj = 1e6 * (8.0 * (clock_s(CLOCK_MONOTONIC) - t0) + 25.0 * (clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0));
        char buf[64], tmp[720];
        int n = snprintf(buf, sizeof buf, "%llu\n", (unsigned long long)uj % w->range);
        snprintf(tmp, sizeof tmp, "%s.tmp", w->path);
        if (test_write_file(tmp, buf, (size_t)n) == 0)
            rename(tmp, w->path); /* whole values only, as sysfs reads are */
        struct timespec ts = {0, 500000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void writer_start(rapl_writer *w, fake_hw *hw)
{
    memset(w, 0, sizeof *w);
    w->range = 5000000ull;
    fake_zone_add(hw, "intel-rapl:0", "package-0", 0, w->range, 0);
    snprintf(w->path, sizeof w->path, "%s/energy_uj", hw->zones[0].dir);
    assert_int_equal(pthread_create(&w->thread, NULL, writer_main, w), 0);
}

static void writer_stop(rapl_writer *w)
{
    w->stop = 1;
    pthread_join(w->thread, NULL);
}

/* The same package counter computed when it is read instead of by a thread: the value a read
 * returns is exactly the scripted power since the zone was made, however late a loaded machine
 * schedules the test, so the idle and per-trial numbers can be checked without a writer's lag. */
typedef struct live_rapl {
    char path[700];
    unsigned long long range;
    double t0, c0;
} live_rapl;

static int live_read(void *ctx, const char *path, char *buf, size_t size)
{
    const live_rapl *z = ctx;
    if (strcmp(path, z->path) == 0) {
        double uj = 1e6 * (8.0 * (clock_s(CLOCK_MONOTONIC) - z->t0) + 25.0 * (clock_s(CLOCK_PROCESS_CPUTIME_ID) - z->c0));
        int n = snprintf(buf, size, "%llu\n", (unsigned long long)uj % z->range);
        return n > 0 && (size_t)n < size ? 0 : EOVERFLOW;
    }
    joule_file_reader sys = joule_file_reader_system();
    return sys.read(sys.ctx, path, buf, size);
}

/* With the option pointing at a fake tree, measured numbers replace the estimate end to end,
 * through a counter that wraps many times during the run. */
static void test_compare_fake_powercap(void **state)
{
    (void)state;
    fake_hw hw;
    joule_clock clock;
    joule_file_reader reader;
    fake_init(&hw, &clock, &reader);
    live_rapl z = {.range = 5000000ull, .t0 = clock_s(CLOCK_MONOTONIC), .c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID)};
    fake_zone_add(&hw, "intel-rapl:0", "package-0", 0, z.range, 0);
    snprintf(z.path, sizeof z.path, "%s/energy_uj", hw.zones[0].dir);
    joule_file_reader live = {&z, live_read};
    char base[1024], cand[1024];
    joule_energy_options o = e2e_options(base, cand, sizeof base);
    o.meter.powercap_root = hw.root;
    o.meter.reader = &live;
    joule_energy_result *r = NULL;
    joule_error err;
    assert_joule_ok(joule_energy_compare(&o, &r, &err), &err);
    assert_false(r->estimated);
    assert_string_equal(r->method, "measured: powercap package-0");
    assert_true(fabs(r->window_s - 0.1) < 1e-12);
    double measured = 0, expect = 0;
    for (size_t i = 0; i < r->n_trials; i++) {
        assert_true(r->trial[i].joules > 0);
        measured += r->trial[i].joules;
        expect += 8.0 * r->trial[i].wall_s + 25.0 * r->trial[i].cpu_s;
    }
    /* every wrap of the 5 J counter folded: the sum follows the scripted power (loosely: a
     * reading and its clock time are taken a few instructions apart, and a loaded machine may
     * preempt in between) */
    assert_true(measured > 0.5 * expect && measured < 2.0 * expect);
    /* idle is 8 W plus 25 W times the little CPU the sleeping process still uses (the sampler) */
    if (!(r->idle_before_w > 4 && r->idle_before_w < 30))
        fail_msg("idle before %.3f W, expected 8 W plus a little", r->idle_before_w);
    char *json = NULL;
    assert_joule_ok(joule_energy_json(r, &json, &err), &err);
    cJSON *doc = check_schema(json);
    assert_false(json_bool(doc, "estimated"));
    cJSON_Delete(doc);
    free(json);
    joule_energy_result_free(r);
    test_rmtree(hw.root);
}

/* The command: `joule energy` with JOULE_POWERCAP_ROOT on a fake tree prints schema-valid
 * measured JSON; pointed at an empty tree it prints the labelled estimate. */
static char *run_joule(const char *args)
{
    const char *b = getenv("JOULE_BUILD_DIR");
    char src[1024], cmd[4096];
    test_source_path("tests/data", src, sizeof src);
    snprintf(cmd, sizeof cmd, "'%s/tools/joule' energy '%s/mlp.onnx' '%s/cnn.onnx' --window 0.05s --trials 2 "
             "--warmup 0 --threads 1 --nvml-lib /nonexistent/libnvidia-ml.so.1 %s", b ? b : ".", src, src, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 16, n = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    size_t got;
    while ((got = fread(out + n, 1, cap - 1 - n, p)) > 0) {
        n += got;
        if (n + 1 == cap) {
            cap *= 2;
            out = realloc(out, cap);
            assert_non_null(out);
        }
    }
    out[n] = 0;
    int rc = pclose(p);
    if (rc != 0)
        fail_msg("joule energy %s failed (%d): %.300s", args, rc, out);
    return out;
}

static void test_cli(void **state)
{
    (void)state;
    fake_hw hw;
    joule_clock clock;
    joule_file_reader reader;
    fake_init(&hw, &clock, &reader);
    rapl_writer w;
    writer_start(&w, &hw);
    setenv("JOULE_POWERCAP_ROOT", hw.root, 1);
    /* The meter proves a counter moves by watching it for 20 ms; a writer thread starved for
     * that long on a loaded machine makes the run fall back to the estimate. Up to three tries:
     * a meter that never takes the fake counter still fails. */
    char *out = NULL;
    cJSON *doc = NULL;
    for (int attempt = 0; attempt < 3; attempt++) {
        if (doc) {
            cJSON_Delete(doc);
            free(out);
        }
        out = run_joule("--json");
        doc = check_schema(out);
        if (!json_bool(doc, "estimated"))
            break;
    }
    unsetenv("JOULE_POWERCAP_ROOT");
    writer_stop(&w);
    assert_false(json_bool(doc, "estimated"));
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(doc, "sources"), *p;
    bool pkg = false;
    cJSON_ArrayForEach(p, src)
    {
        const char *s = cJSON_GetObjectItemCaseSensitive(p, "source")->valuestring;
        const char *item = cJSON_GetObjectItemCaseSensitive(p, "item")->valuestring;
        const char *st = cJSON_GetObjectItemCaseSensitive(p, "state")->valuestring;
        pkg = pkg || (strcmp(s, "powercap") == 0 && strcmp(item, "intel-rapl:0") == 0 && strcmp(st, "in use") == 0);
    }
    assert_true(pkg);
    cJSON_Delete(doc);
    free(out);

    char empty[512], args[700];
    assert_non_null(test_tmpdir(empty, sizeof empty));
    snprintf(args, sizeof args, "--powercap-root '%s'", empty);
    out = run_joule(args);
    assert_non_null(strstr(out, "ESTIMATED, not measured"));
    assert_non_null(strstr(out, "energy per inference (estimated)"));
    assert_non_null(strstr(out, "B/A energy per inference (estimated)"));
    assert_non_null(strstr(out, "powercap"));
    free(out);
    test_rmtree(empty);
    test_rmtree(hw.root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rng_and_interleave),
        cmocka_unit_test(test_t_intervals),
        cmocka_unit_test(test_quantiles),
        cmocka_unit_test(test_bootstrap),
        cmocka_unit_test(test_graph_energy_mlp),
        cmocka_unit_test(test_graph_energy_cnn),
        cmocka_unit_test(test_trials_scripted),
        cmocka_unit_test(test_compare_estimated),
        cmocka_unit_test(test_compare_fake_powercap),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

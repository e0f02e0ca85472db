/* tests/unit/test_report.c: the report document and its writers (joule/report.h): JSON that
 * parses and reads back the same, the Markdown summary table, HTML with inline SVG charts and
 * no script, hostile names escaped in every format, "not measured" never turned into a number,
 * the sweep frontier, the median interval, atomic folder writes, and measuring and sweeping the
 * real fixture models on the 64 bundled test images. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>

#include "common.h"
#include "joule/onnx.h"
#include "joule/pipeline.h"
#include "joule/prune.h"
#include "joule/report.h"

/* Skips the test when the fixture models are not there (they are made by tools/make_fixtures.py). */
#define NEED_FIXTURE(path)                                                                         \
    do {                                                                                           \
        struct stat sb_;                                                                           \
        if (stat(path, &sb_) != 0) {                                                               \
            print_message("no %s: skipped\n", path);                                               \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

#define HOSTILE "conv<script>alert('x')</script>|*_[a](b)&\"q\""

static joule_report_doc *sample_doc(void)
{
    joule_error err = {{0}};
    joule_report_doc *d;
    assert_joule_ok(joule_report_doc_new("cnn: compression report", "test", &d, &err), &err);
    assert_joule_ok(joule_report_doc_set(&d->base.path, "base.onnx", &err), &err);
    assert_joule_ok(joule_report_doc_set(&d->cand.path, "cand<b>.onnx", &err), &err);
    assert_joule_ok(joule_report_doc_set(&d->data, "images.npy", &err), &err);
    d->has_cand = true;
    d->images = 1000;
    d->base.file_bytes = 426156;
    d->cand.file_bytes = 113000;
    d->base.params = d->cand.params = 106058;
    d->base.weight_sparsity = 0;
    d->cand.weight_sparsity = 0.5;
    d->base.top1 = (joule_estimate){true, 0.9, 0.88, 0.92};
    d->cand.top1 = (joule_estimate){true, 0.89, 0.87, 0.91};
    d->base.latency_ms = (joule_estimate){true, 0.2, 0.19, 0.25};
    d->cand.latency_ms = (joule_estimate){true, 0.1, 0.09, 0.12};
    d->agreement = (joule_estimate){true, 0.97, 0.96, 0.98};
    d->mcnemar_b = 20;
    d->mcnemar_c = 10;
    d->mcnemar_p = 0.098;
    joule_report_layer l = {.name = (char *)HOSTILE, .op_type = (char *)"Conv",
                            .dtype_before = JOULE_F32, .dtype_after = JOULE_I8,
                            .sparsity_before = 0, .sparsity_after = 0.5, .params_before = 144,
                            .params_after = 144, .bytes_before = 576, .bytes_after = 144,
                            .scale_min = 0.01, .scale_max = 0.05};
    assert_joule_ok(joule_report_doc_add_layer(d, &l, &err), &err);
    joule_report_layer l2 = {.name = (char *)"bn", .op_type = (char *)"BatchNormalization",
                             .dtype_before = JOULE_F32, .dtype_after = JOULE_F32,
                             .params_before = 16, .bytes_before = 64, .removed = true};
    assert_joule_ok(joule_report_doc_add_layer(d, &l2, &err), &err);
    assert_joule_ok(joule_report_doc_note(d, &err, "note about %s", HOSTILE), &err);
    return d;
}

static void test_median_interval(void **state)
{
    (void)state;
    /* order statistics from the binomial(n, 1/2) tails, checked against exact sums */
    static const size_t cases[][3] = {{1, 0, 0}, {5, 0, 4}, {6, 0, 5}, {8, 0, 7}, {9, 1, 7},
                                      {10, 1, 8}, {21, 5, 15}, {100, 39, 60}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t lo, hi;
        joule_median_interval(cases[i][0], &lo, &hi);
        assert_int_equal(lo, cases[i][1]);
        assert_int_equal(hi, cases[i][2]);
    }
}

static void test_json_roundtrip(void **state)
{
    (void)state;
    joule_error err = {{0}};
    joule_report_doc *d = sample_doc();
    char *json;
    assert_joule_ok(joule_report_doc_json(d, &json, &err), &err);
    cJSON *o = cJSON_Parse(json);
    assert_non_null(o);
    assert_string_equal(cJSON_GetObjectItem(o, "schema")->valuestring, "joule-report/1");
    cJSON *cand = cJSON_GetObjectItem(o, "candidate");
    assert_true(cJSON_IsObject(cand));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(cand, "energy_j"))); /* not measured: null */
    assert_float_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(cand, "top1"), "value")->valuedouble,
                       0.89, 1e-12);
    cJSON *layers = cJSON_GetObjectItem(o, "layers");
    assert_int_equal(cJSON_GetArraySize(layers), 2);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(layers, 0), "name")->valuestring,
                        HOSTILE);
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetArrayItem(layers, 0), "dtype_after")->valuestring, "int8");
    cJSON_Delete(o);

    joule_report_doc *back;
    assert_joule_ok(joule_report_doc_parse(json, strlen(json), "mem", &back, &err), &err);
    assert_true(back->has_cand);
    assert_string_equal(back->cand.path, "cand<b>.onnx");
    assert_int_equal(back->cand.file_bytes, 113000);
    assert_true(back->cand.top1.measured);
    assert_float_equal(back->cand.top1.lo, 0.87, 1e-12);
    assert_false(back->cand.energy_j.measured);
    assert_int_equal(back->n_layers, 2);
    assert_string_equal(back->layers[0].name, HOSTILE);
    assert_int_equal(back->layers[0].dtype_after, JOULE_I8);
    assert_true(back->layers[1].removed);
    assert_int_equal(back->mcnemar_b, 20);
    assert_int_equal(back->n_notes, 1);
    char *json2;
    assert_joule_ok(joule_report_doc_json(back, &json2, &err), &err);
    /* the same document again, except the creation time (kept) */
    assert_string_equal(json, json2);
    free(json2);
    joule_report_doc_free(back);
    free(json);

    /* not a report */
    assert_int_equal(joule_report_doc_parse("{\"a\":1}", 7, "x.json", &back, &err),
                     JOULE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "x.json"));
    assert_int_equal(joule_report_doc_parse("{", 1, "y.json", &back, &err), JOULE_ERR_PARSE);
    joule_report_doc_free(d);
}

static void test_markdown(void **state)
{
    (void)state;
    joule_error err = {{0}};
    joule_report_doc *d = sample_doc();
    char *md;
    assert_joule_ok(joule_report_doc_markdown(d, &md, &err), &err);
    assert_non_null(strstr(md, "| | before | after | change |\n| --- | ---: | ---: | ---: |\n"));
    assert_non_null(strstr(md, "| file size | 426.2 kB | 113.0 kB | -73.5% |\n"));
    assert_non_null(strstr(md, "| top-1 accuracy | 90.00% [88.00, 92.00] | 89.00% [87.00, 91.00] | "
                               "-1.00 pt |\n"));
    assert_non_null(strstr(md, "| energy per item | not measured | not measured |  |\n"));
    assert_non_null(strstr(md, "| latency per item | 0.2 ms [0.19, 0.25] | 0.1 ms [0.09, 0.12] | "
                               "0.50x |\n"));
    /* the hostile name cannot open a tag, split a cell or start emphasis or a link */
    assert_null(strstr(md, "<script"));
    assert_non_null(strstr(md, "conv&lt;script&gt;alert('x')&lt;/script&gt;\\|\\*\\_\\[a\\](b)"
                               "&amp;\"q\" | Conv | float -> int8 |"));
    assert_non_null(strstr(md, "cand&lt;b&gt;.onnx"));
    /* every table row has the same number of unescaped cell separators */
    for (char *line = strstr(md, "| layer |"); line && *line == '|';) {
        int bars = 0;
        char *end = strchr(line, '\n');
        for (char *p = line; p < end; p++)
            bars += *p == '|' && p[-1] != '\\';
        assert_int_equal(bars, 8);
        line = end + 1;
    }
    free(md);
    joule_report_doc_free(d);
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

static void test_html(void **state)
{
    (void)state;
    joule_error err = {{0}};
    joule_report_doc *d = sample_doc();
    joule_sweep_point p1 = {.label = (char *)"baseline", .sparsity = -1, .file_bytes = 400000,
                            .top1 = {true, 0.90, 0.89, 0.91}};
    joule_sweep_point p2 = {.label = (char *)"prune <0.5>", .sparsity = 0.5, .file_bytes = 200000,
                            .top1 = {true, 0.89, 0.88, 0.90}};
    assert_joule_ok(joule_report_doc_add_point(d, &p1, &err), &err);
    assert_joule_ok(joule_report_doc_add_point(d, &p2, &err), &err);
    joule_report_doc_mark_frontier(d);
    char *html;
    assert_joule_ok(joule_report_doc_html(d, &html, &err), &err);
    assert_true(strncmp(html, "<!DOCTYPE html>", 15) == 0);
    if (getenv("TEST_REPORT_DUMP"))
        test_write_file(getenv("TEST_REPORT_DUMP"), html, strlen(html));
    /* charts: four before/after pairs, the layer chart and the frontier */
    assert_int_equal(count(html, "<svg "), 6);
    assert_int_equal(count(html, "<svg "), count(html, "</svg>"));
    assert_true(count(html, "<rect ") > 10);
    assert_true(count(html, "<line ") > 10); /* grid, axes and whiskers */
    assert_int_equal(count(html, "<polyline "), 1);
    assert_int_equal(count(html, "<circle "), 2);
    assert_non_null(strstr(html, "Top-1 accuracy"));
    assert_non_null(strstr(html, "not measured")); /* energy */
    /* self-contained: no scripts, no external resources */
    assert_null(strstr(html, "<script"));
    assert_null(strstr(html, "src="));
    assert_null(strstr(html, "href="));
    assert_null(strstr(html, "@import"));
    assert_null(strstr(html, "url("));
    assert_int_equal(count(html, "://"), count(html, "xmlns=\"http://www.w3.org/2000/svg\""));
    /* hostile strings escaped in text, attributes and titles */
    assert_non_null(strstr(html, "conv&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    assert_non_null(strstr(html, "prune &lt;0.5&gt;"));
    assert_non_null(strstr(html, "cand&lt;b&gt;.onnx"));
    assert_null(strstr(html, "<b>"));
    free(html);
    joule_report_doc_free(d);
}

static void test_not_measured(void **state)
{
    (void)state;
    joule_error err = {{0}};
    joule_report_doc *d;
    assert_joule_ok(joule_report_doc_new("empty", "test", &d, &err), &err);
    d->has_cand = true;
    char *html, *md, *json;
    assert_joule_ok(joule_report_doc_html(d, &html, &err), &err);
    assert_joule_ok(joule_report_doc_markdown(d, &md, &err), &err);
    assert_joule_ok(joule_report_doc_json(d, &json, &err), &err);
    assert_true(count(html, "not measured") >= 6);
    assert_non_null(strstr(md, "| top-1 accuracy | not measured | not measured |  |"));
    assert_null(strstr(md, "nan"));
    assert_null(strstr(html, "nan"));
    cJSON *o = cJSON_Parse(json);
    assert_non_null(o);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "base"), "top1")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "comparison"),
                                                 "agreement")));
    cJSON_Delete(o);
    free(html);
    free(md);
    free(json);
    joule_report_doc_free(d);
}

static void test_frontier(void **state)
{
    (void)state;
    joule_error err = {{0}};
    joule_report_doc *d;
    assert_joule_ok(joule_report_doc_new(NULL, NULL, &d, &err), &err);
    struct {
        uint64_t size;
        double acc;
        bool error, frontier;
    } pts[] = {
        {400, 0.90, false, true},  /* most accurate */
        {300, 0.90, false, true},  /* same accuracy, smaller: beats the first */
        {200, 0.85, false, true},
        {250, 0.80, false, false}, /* beaten by the 200-byte point */
        {100, 0.50, false, true},  /* smallest */
        {50, 0.99, true, false},   /* failed: never on the frontier */
    };
    pts[0].frontier = false; /* the 300-byte point is as accurate and smaller */
    for (size_t i = 0; i < sizeof pts / sizeof *pts; i++) {
        joule_sweep_point p = {.label = (char *)"p", .file_bytes = pts[i].size,
                               .top1 = {true, pts[i].acc, pts[i].acc, pts[i].acc},
                               .error = pts[i].error ? (char *)"boom" : NULL};
        assert_joule_ok(joule_report_doc_add_point(d, &p, &err), &err);
    }
    joule_report_doc_mark_frontier(d);
    for (size_t i = 0; i < sizeof pts / sizeof *pts; i++)
        assert_int_equal(d->sweep[i].on_frontier, pts[i].frontier);
    joule_report_doc_free(d);
}

static void test_write_dir(void **state)
{
    (void)state;
    joule_error err = {{0}};
    char tmp[256], dir[512], path[600];
    test_tmpdir(tmp, sizeof tmp);
    snprintf(dir, sizeof dir, "%s/a/b/report", tmp);
    joule_report_doc *d = sample_doc();
    assert_joule_ok(joule_report_write_dir(d, dir, &err), &err);
    assert_joule_ok(joule_report_write_dir(d, dir, &err), &err); /* replaces */
    const char *names[] = {"report.json", "report.md", "report.html"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        size_t len;
        char *text = test_read_file(path, &len);
        assert_non_null(text);
        assert_true(len > 100);
        free(text);
    }
    /* nothing else (no temporary files) is left */
    DIR *dd = opendir(dir);
    assert_non_null(dd);
    int n = 0;
    for (struct dirent *e; (e = readdir(dd));)
        n += e->d_name[0] != '.';
    closedir(dd);
    assert_int_equal(n, 3);
    /* the JSON reads back */
    snprintf(path, sizeof path, "%s/report.json", dir);
    joule_report_doc *back;
    assert_joule_ok(joule_report_doc_load(path, &back, &err), &err);
    assert_int_equal(back->n_layers, 2);
    joule_report_doc_free(back);
    /* a file where the folder should be: an error naming it, not a crash */
    snprintf(path, sizeof path, "%s/report.json/x", dir);
    assert_int_not_equal(joule_report_write_dir(d, path, &err), JOULE_OK);
    assert_non_null(strstr(err.msg, "report.json"));
    joule_report_doc_free(d);
    test_rmtree(tmp);
}

/* cnn.onnx against a copy pruned to 50% per layer, on the 64 bundled test images. */
static void test_measure_fixture(void **state)
{
    (void)state;
    joule_error err = {{0}};
    char base[512], data[512], labels[512], tmp[256], cand[600];
    test_source_path("tests/data/cnn.onnx", base, sizeof base);
    test_source_path("tests/data/fmnist_test64.npy", data, sizeof data);
    test_source_path("tests/data/fmnist_test64_labels.npy", labels, sizeof labels);
    NEED_FIXTURE(base);
    NEED_FIXTURE(data);
    test_tmpdir(tmp, sizeof tmp);
    snprintf(cand, sizeof cand, "%s/cnn50.onnx", tmp);
    joule_model *m;
    assert_joule_ok(joule_model_load(base, &m, &err), &err);
    joule_recipe r;
    void *o;
    assert_joule_ok(joule_recipe_init(&r, "test", &err), &err);
    assert_joule_ok(joule_recipe_add(&r, "cleanup", NULL, &err), &err);
    assert_joule_ok(joule_recipe_add(&r, "prune", &o, &err), &err);
    ((joule_prune_options *)o)->sparsity = 0.5;
    joule_report changes;
    joule_report_init(&changes);
    assert_joule_ok(joule_pipeline_run(m, &r, &changes, &err), &err);
    assert_joule_ok(joule_model_save(m, cand, NULL, &err), &err);
    joule_model_free(m);
    joule_recipe_free(&r);

    joule_dataset_options dopt = {.labels = labels};
    joule_report_options ro;
    joule_report_defaults(&ro);
    ro.data = data;
    ro.dataset = &dopt;
    ro.threads = 1;
    ro.latency_trials = 3;
    ro.energy_window_s = 0.05;
    ro.energy_trials = 3;
    ro.changes = &changes;
    joule_report_doc *d;
    assert_joule_ok(joule_report_measure(base, cand, &ro, &d, &err), &err);
    assert_true(d->has_cand);
    assert_int_equal(d->images, 64);
    assert_true(d->base.top1.measured && d->cand.top1.measured && d->agreement.measured);
    assert_true(d->base.top1.lo <= d->base.top1.value && d->base.top1.value <= d->base.top1.hi);
    assert_true(d->base.top1.value > 0.75); /* the fixture's accuracy is about 90% */
    assert_true(d->base.latency_ms.measured && d->base.latency_ms.value > 0);
    assert_true(d->cand.latency_ms.lo <= d->cand.latency_ms.value);
    /* energy: from a counter, or the meter's labelled estimate; its section is embedded */
    assert_true(d->base.energy_j.measured && d->cand.energy_j.measured);
    assert_true(d->base.energy_j.value > 0 && d->energy_ratio.measured);
    assert_non_null(d->base.energy_source);
    assert_non_null(d->energy_json);
    assert_non_null(d->energy_html);
    char *html;
    assert_joule_ok(joule_report_doc_html(d, &html, &err), &err);
    assert_null(strstr(html, "<script"));
    assert_null(strstr(html, "src="));
    assert_null(strstr(html, "href="));
    if (d->base.energy_estimated)
        assert_non_null(strstr(html, "Energy per item (est.)"));
    free(html);
    char *json;
    assert_joule_ok(joule_report_doc_json(d, &json, &err), &err);
    cJSON *jo = cJSON_Parse(json);
    assert_true(cJSON_IsObject(cJSON_GetObjectItem(jo, "energy")));
    cJSON_Delete(jo);
    free(json);
    assert_int_equal(d->base.params, 106058);
    assert_true(d->cand.weight_sparsity > 0.49 && d->cand.weight_sparsity < 0.51);
    assert_non_null(d->changes_json);
    /* layers: the two convs and two gemms pruned to half, the batch norms folded away */
    size_t pruned = 0, removed = 0;
    for (size_t i = 0; i < d->n_layers; i++) {
        const joule_report_layer *l = &d->layers[i];
        if (l->removed) {
            removed++;
            assert_string_equal(l->op_type, "BatchNormalization");
            continue;
        }
        assert_float_equal(l->sparsity_before, 0, 1e-9);
        assert_float_equal(l->sparsity_after, 0.5, 0.01);
        assert_int_equal(l->dtype_after, JOULE_F32);
        assert_int_equal(l->params_after, l->params_before);
        pruned++;
    }
    assert_int_equal(pruned, 4);
    assert_int_equal(removed, 2);
    joule_report_doc_free(d);
    joule_report_free(&changes);

    /* a missing candidate: one error naming it */
    assert_int_not_equal(joule_report_measure(base, "/nonexistent/x.onnx", &ro, &d, &err),
                         JOULE_OK);
    assert_null(d);
    assert_non_null(strstr(err.msg, "/nonexistent/x.onnx"));
    test_rmtree(tmp);
}

static void test_sweep_fixture(void **state)
{
    (void)state;
    joule_error err = {{0}};
    char model[512], data[512], labels[512];
    test_source_path("tests/data/cnn.onnx", model, sizeof model);
    test_source_path("tests/data/fmnist_test64.npy", data, sizeof data);
    test_source_path("tests/data/fmnist_test64_labels.npy", labels, sizeof labels);
    NEED_FIXTURE(model);
    NEED_FIXTURE(data);
    joule_dataset_options dopt = {.labels = labels};
    double levels[] = {0.5, 0.95};
    joule_sweep_options o;
    joule_sweep_defaults(&o);
    o.data = data;
    o.dataset = &dopt;
    o.sparsities = levels;
    o.n_sparsities = 2;
    o.threads = 1;
    joule_report_doc *d;
    assert_joule_ok(joule_report_doc_new("sweep", "test", &d, &err), &err);
    assert_joule_ok(joule_sweep_run(model, &o, d, &err), &err);
    assert_int_equal(d->n_sweep, 3);
    assert_string_equal(d->sweep[0].label, "baseline");
    assert_null(d->sweep[0].error);
    assert_float_equal(d->sweep[0].accuracy_drop, 0, 1e-12);
    /* pruning leaves fewer nonzero weights; at 95% sparse storage makes the file smaller */
    assert_true(d->sweep[1].nonzero_params < d->sweep[0].nonzero_params);
    assert_true(d->sweep[2].nonzero_params < d->sweep[1].nonzero_params);
    assert_true(d->sweep[2].file_bytes < d->sweep[0].file_bytes);
    for (size_t i = 0; i < 3; i++)
        assert_true(d->sweep[i].top1.measured);
    assert_true(d->sweep[2].on_frontier); /* the smallest point */
    joule_report_doc_free(d);

    /* sensitivity: one point per Conv/Gemm, ranked by drop */
    o.sensitivity = true;
    o.n_sparsities = 1;
    assert_joule_ok(joule_report_doc_new("sens", "test", &d, &err), &err);
    assert_joule_ok(joule_sweep_run(model, &o, d, &err), &err);
    assert_true(d->sweep_sensitivity);
    assert_int_equal(d->n_sweep, 5);
    assert_null(d->sweep[0].layer);
    for (size_t i = 1; i < d->n_sweep; i++) {
        assert_non_null(d->sweep[i].layer);
        if (i > 1)
            assert_true(d->sweep[i - 1].accuracy_drop >= d->sweep[i].accuracy_drop);
    }
    joule_report_doc_free(d);

    /* bad levels are refused before any work */
    double bad = 1.5;
    o.sensitivity = false;
    o.sparsities = &bad;
    assert_joule_ok(joule_report_doc_new("bad", "test", &d, &err), &err);
    assert_int_equal(joule_sweep_run(model, &o, d, &err), JOULE_ERR_INVALID);
    joule_report_doc_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_median_interval),
        cmocka_unit_test(test_json_roundtrip),
        cmocka_unit_test(test_markdown),
        cmocka_unit_test(test_html),
        cmocka_unit_test(test_not_measured),
        cmocka_unit_test(test_frontier),
        cmocka_unit_test(test_write_dir),
        cmocka_unit_test(test_measure_fixture),
        cmocka_unit_test(test_sweep_fixture),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

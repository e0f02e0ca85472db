/* tests/unit/test_batch.c: batches (joule/report.h): shard parsing and selection (every model in
 * exactly one shard), manifest parsing (defaults, paths relative to the manifest, errors that
 * name the key), the resume check against real file times and recipe fingerprints, result
 * records, the summary files, and jobs run through the library on a real fixture and a
 * truncated model. */
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "joule/report.h"

static void test_shard_parse(void **state)
{
    (void)state;
    joule_error err;
    size_t k, n;
    assert_joule_ok(joule_parse_shard("0/4", &k, &n, &err), &err);
    assert_int_equal(k, 0);
    assert_int_equal(n, 4);
    assert_joule_ok(joule_parse_shard("3/4", &k, &n, &err), &err);
    assert_int_equal(k, 3);
    const char *bad[] = {"4/4", "1/0", "-1/2", "1/-2", "a/b", "1/2x", "12", "/3", "1/", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(joule_parse_shard(bad[i], &k, &n, &err), JOULE_ERR_INVALID);
}

static void test_shard_selection(void **state)
{
    (void)state;
    /* shard K of N takes i % N == K: each index in exactly one shard, shards within one of
     * each other in size */
    for (size_t n = 1; n <= 7; n++) {
        size_t hits[50] = {0}, sizes[7] = {0};
        for (size_t k = 0; k < n; k++)
            for (size_t i = 0; i < 50; i++)
                if (joule_shard_selects(i, k, n)) {
                    hits[i]++;
                    sizes[k]++;
                }
        for (size_t i = 0; i < 50; i++)
            assert_int_equal(hits[i], 1);
        for (size_t k = 0; k < n; k++)
            assert_true(sizes[k] == 50 / n || sizes[k] == 50 / n + 1);
    }
    /* every 3rd starting at the 2nd (0-based 1) */
    size_t want[] = {1, 4, 7, 10}, got = 0;
    for (size_t i = 0; i < 12; i++)
        if (joule_shard_selects(i, 1, 3))
            assert_int_equal(i, want[got++]);
    assert_int_equal(got, 4);
}

static const char manifest_text[] =
    "{\"summary_dir\": \"sum\",\n"
    " \"defaults\": {\"data\": \"d.npy\", \"limit\": 100, \"recipe\": {\"passes\": "
    "[{\"pass\": \"cleanup\"}]}},\n"
    " \"models\": [\n"
    "  {\"model\": \"m.onnx\", \"output\": \"out/a.onnx\"},\n"
    "  {\"name\": \"b\", \"model\": \"/abs/m.onnx\", \"output\": \"out/b.onnx\", \"recipe\": "
    "\"r.json\", \"data\": null, \"limit\": 5, \"report\": \"rep/b\", \"min_accuracy\": 0.8}\n"
    " ]}";

static void test_manifest(void **state)
{
    (void)state;
    joule_error err = {{0}};
    joule_batch_manifest *m;
    assert_joule_ok(joule_batch_manifest_parse(manifest_text, strlen(manifest_text),
                                               "/w/jobs/manifest.json", &m, &err),
                    &err);
    assert_int_equal(m->n_jobs, 2);
    assert_string_equal(m->summary_dir, "/w/jobs/sum");
    const joule_batch_job *a = &m->jobs[0], *b = &m->jobs[1];
    assert_int_equal(a->index, 0);
    assert_string_equal(a->name, "a");
    assert_string_equal(a->model, "/w/jobs/m.onnx");
    assert_string_equal(a->output, "/w/jobs/out/a.onnx");
    assert_string_equal(a->report_dir, "/w/jobs/out/a.report");
    assert_string_equal(a->data, "/w/jobs/d.npy");
    assert_int_equal(a->limit, 100);
    assert_null(a->recipe_path);
    assert_string_equal(a->recipe_json, "{\"passes\":[{\"pass\":\"cleanup\"}]}");
    assert_true(a->min_accuracy < 0);
    assert_string_equal(b->name, "b");
    assert_string_equal(b->model, "/abs/m.onnx");
    assert_string_equal(b->report_dir, "/w/jobs/rep/b");
    assert_string_equal(b->recipe_path, "/w/jobs/r.json");
    assert_null(b->recipe_json);
    assert_null(b->data); /* null overrides the default */
    assert_int_equal(b->limit, 5);
    assert_float_equal(b->min_accuracy, 0.8, 1e-12);
    joule_batch_manifest_free(m);

    /* errors name the manifest and what is wrong */
    struct {
        const char *json, *want;
    } bad[] = {
        {"{\"models\": [{\"model\": \"m\", \"output\": \"o\", \"recipe\": {}, \"colour\": 1}]}",
         "unknown key \"colour\""},
        {"{\"models\": [{\"model\": \"m\", \"output\": \"o\"}]}", "recipe"},
        {"{\"models\": [{\"output\": \"o\", \"recipe\": {}}]}", "\"model\""},
        {"{\"models\": [{\"model\": \"m\", \"output\": \"o\", \"recipe\": {}},"
         " {\"model\": \"n\", \"output\": \"o\", \"recipe\": {}}]}", "share the name"},
        {"{\"models\": [{\"name\": \"x\", \"model\": \"m\", \"output\": \"o\", \"recipe\": {}},"
         " {\"name\": \"y\", \"model\": \"n\", \"output\": \"o\", \"recipe\": {}}]}",
         "same output"},
        {"{\"models\": [{\"model\": \"m.onnx\", \"output\": \"m.onnx\", \"recipe\": {}}]}",
         "output is the input"},
        {"{\"models\": [{\"model\": \"m\", \"output\": \"o\", \"recipe\": {}, \"limit\": -1}]}",
         "limit"},
        {"{\"jobs\": []}", "unknown key \"jobs\""},
        {"{\"defaults\": {\"output\": \"x\"}, \"models\": []}", "defaults: unknown key"},
        {"[1, 2]", "manifest"},
        {"{\"models\": [", "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        m = (joule_batch_manifest *)1;
        joule_status st = joule_batch_manifest_parse(bad[i].json, strlen(bad[i].json), "man.json",
                                                     &m, &err);
        assert_int_not_equal(st, JOULE_OK);
        assert_null(m);
        if (!strstr(err.msg, bad[i].want) || !strstr(err.msg, "man.json"))
            fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, bad[i].want);
    }
}

/* Sets path's modification time to t seconds (since the epoch). */
static void set_mtime(const char *path, time_t t)
{
    struct timespec ts[2] = {{t, 0}, {t, 0}};
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void write_text(const char *path, const char *text)
{
    assert_int_equal(test_write_file(path, text, strlen(text)), 0);
}

static void test_resume(void **state)
{
    (void)state;
    joule_error err = {{0}};
    char tmp[256], path[512], man[600];
    test_tmpdir(tmp, sizeof tmp);
    snprintf(man, sizeof man, "%s/manifest.json", tmp);
    const char *text =
        "{\"models\": [{\"name\": \"a\", \"model\": \"m.onnx\", \"output\": \"out/a.onnx\","
        " \"recipe\": \"r.json\", \"data\": \"d.npy\"},"
        " {\"name\": \"b\", \"model\": \"m.onnx\", \"output\": \"out/b.onnx\","
        " \"recipe\": {\"passes\": [{\"pass\": \"cleanup\"}]}}]}";
    write_text(man, text);
    joule_batch_manifest *m;
    assert_joule_ok(joule_batch_manifest_load(man, &m, &err), &err);
    const joule_batch_job *a = &m->jobs[0], *b = &m->jobs[1];
    snprintf(path, sizeof path, "%s/m.onnx", tmp);
    write_text(path, "model");
    set_mtime(path, 1000);
    snprintf(path, sizeof path, "%s/r.json", tmp);
    write_text(path, "{\"passes\": [{\"pass\": \"cleanup\"}]}");
    set_mtime(path, 1000);
    snprintf(path, sizeof path, "%s/d.npy", tmp);
    write_text(path, "data");
    set_mtime(path, 1000);
    assert_false(joule_batch_up_to_date(a)); /* nothing written yet */

    /* outputs as a finished run leaves them: model, then report with the recipe fingerprint */
    for (int k = 0; k < 2; k++) {
        const joule_batch_job *j = &m->jobs[k];
        snprintf(path, sizeof path, "%s/out", tmp);
        mkdir(path, 0777);
        write_text(j->output, "compressed");
        set_mtime(j->output, 2000);
        joule_report_doc *d;
        char hash[17];
        assert_joule_ok(joule_batch_recipe_hash(j, hash, &err), &err);
        assert_int_equal(strlen(hash), 16);
        assert_joule_ok(joule_report_doc_new("r", "test", &d, &err), &err);
        d->has_cand = true;
        assert_joule_ok(joule_report_doc_set(&d->recipe_hash, hash, &err), &err);
        assert_joule_ok(joule_report_write_dir(d, j->report_dir, &err), &err);
        joule_report_doc_free(d);
        snprintf(path, sizeof path, "%s/report.json", j->report_dir);
        set_mtime(path, 2000);
    }
    assert_true(joule_batch_up_to_date(a));
    assert_true(joule_batch_up_to_date(b));

    /* a newer input makes it stale: the model, the recipe file, the data */
    const char *inputs[] = {"m.onnx", "r.json", "d.npy"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", tmp, inputs[i]);
        set_mtime(path, 3000);
        assert_false(joule_batch_up_to_date(a));
        set_mtime(path, 1000);
        assert_true(joule_batch_up_to_date(a));
    }
    /* the model's external data counts too */
    snprintf(path, sizeof path, "%s/m.onnx.data", tmp);
    write_text(path, "weights");
    set_mtime(path, 3000);
    assert_false(joule_batch_up_to_date(b));
    unlink(path);
    assert_true(joule_batch_up_to_date(b));
    /* a recipe file whose text changed but whose time did not: the fingerprint differs */
    snprintf(path, sizeof path, "%s/r.json", tmp);
    write_text(path, "{\"passes\": [{\"pass\": \"prune\", \"sparsity\": 0.5}]}");
    set_mtime(path, 1000);
    assert_false(joule_batch_up_to_date(a));
    write_text(path, "{\"passes\": [{\"pass\": \"cleanup\"}]}");
    set_mtime(path, 1000);
    assert_true(joule_batch_up_to_date(a));
    /* an inline recipe edited in the manifest */
    joule_batch_manifest_free(m);
    char *edited = strdup(text);
    char *at = strstr(edited, "\"cleanup\"}]}}]}");
    assert_non_null(at);
    memcpy(at, "\"cleanuP\"", 9);
    write_text(man, edited);
    free(edited);
    assert_joule_ok(joule_batch_manifest_load(man, &m, &err), &err);
    assert_false(joule_batch_up_to_date(&m->jobs[1]));
    assert_true(joule_batch_up_to_date(&m->jobs[0]));
    /* a missing or unreadable report, a missing output */
    snprintf(path, sizeof path, "%s/report.json", m->jobs[0].report_dir);
    write_text(path, "{not json");
    set_mtime(path, 2000);
    assert_false(joule_batch_up_to_date(&m->jobs[0]));
    unlink(path);
    assert_false(joule_batch_up_to_date(&m->jobs[0]));
    joule_batch_manifest_free(m);
    test_rmtree(tmp);
}

static void test_result_records(void **state)
{
    (void)state;
    joule_error err = {{0}};
    joule_batch_result r = {.state = JOULE_BATCH_BELOW_MIN, .seconds = 1.5,
                            .bytes_before = 1000, .bytes_after = 250,
                            .top1_before = {true, 0.9, 0.88, 0.92},
                            .top1_after = {true, 0.7, 0.68, 0.72}};
    snprintf(r.error, sizeof r.error, "below \"min\"");
    char *json;
    assert_joule_ok(joule_batch_result_json(&r, &json, &err), &err);
    joule_batch_result back;
    assert_joule_ok(joule_batch_result_parse(json, &back, &err), &err);
    free(json);
    assert_int_equal(back.state, JOULE_BATCH_BELOW_MIN);
    assert_string_equal(back.error, "below \"min\"");
    assert_int_equal(back.bytes_after, 250);
    assert_true(back.top1_after.measured);
    assert_float_equal(back.top1_after.hi, 0.72, 1e-12);
    assert_false(back.latency_after_ms.measured);
    assert_int_not_equal(joule_batch_result_parse("{\"state\": \"weird\"}", &back, &err),
                         JOULE_OK);
    assert_int_not_equal(joule_batch_result_parse("garbage", &back, &err), JOULE_OK);
}

static void test_summary(void **state)
{
    (void)state;
    joule_error err = {{0}};
    char tmp[256], path[512];
    test_tmpdir(tmp, sizeof tmp);
    const char *text = "{\"models\": ["
                       "{\"name\": \"a,b\", \"model\": \"m\", \"output\": \"a.onnx\", \"recipe\": {}},"
                       "{\"name\": \"=cmd\", \"model\": \"m\", \"output\": \"b.onnx\", \"recipe\": {}},"
                       "{\"name\": \"c\", \"model\": \"m\", \"output\": \"c.onnx\", \"recipe\": {}}]}";
    joule_batch_manifest *m;
    assert_joule_ok(joule_batch_manifest_parse(text, strlen(text), "man.json", &m, &err), &err);
    joule_batch_result res[3];
    memset(res, 0, sizeof res);
    res[0].state = JOULE_BATCH_DONE;
    res[0].bytes_before = 1000;
    res[0].bytes_after = 500;
    res[0].top1_after = (joule_estimate){true, 0.5, 0.4, 0.6};
    res[1].state = JOULE_BATCH_FAILED;
    snprintf(res[1].error, sizeof res[1].error, "m: bad \"magic\"\nline two");
    /* res[2] stays pending: another shard's */
    assert_joule_ok(joule_batch_write_summary(m, res, tmp, NULL, &err), &err);
    snprintf(path, sizeof path, "%s/summary.csv", tmp);
    size_t len;
    char *raw = test_read_file(path, &len);
    assert_non_null(raw);
    char *csv = calloc(1, len + 1); /* NUL-terminated for strstr */
    assert_non_null(csv);
    memcpy(csv, raw, len);
    free(raw);
    int lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += csv[i] == '\n';
    assert_int_equal(lines, 4); /* header, two rows, the embedded line break inside quotes */
    assert_non_null(strstr(csv, "\n0,\"a,b\",done,m,a.onnx,a.report,1000,500,-50.00,,0.5,0.4,0.6,"));
    assert_non_null(strstr(csv, "\n1,'=cmd,failed,"));
    assert_non_null(strstr(csv, ",\"m: bad \"\"magic\"\"\nline two\"\n"));
    assert_null(strstr(csv, "\n2,c,"));
    free(csv);
    snprintf(path, sizeof path, "%s/summary.json", tmp);
    char *json = test_read_file(path, &len);
    assert_non_null(json);
    cJSON *o = cJSON_ParseWithLength(json, len);
    assert_non_null(o);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "models")), 2);
    assert_int_equal(cJSON_GetObjectItem(o, "failed")->valueint, 1);
    assert_int_equal(cJSON_GetObjectItem(o, "done")->valueint, 1);
    cJSON_Delete(o);
    free(json);
    /* a shard's own file names */
    assert_joule_ok(joule_batch_write_summary(m, res, tmp, "summary.shard-1-of-3", &err), &err);
    snprintf(path, sizeof path, "%s/summary.shard-1-of-3.csv", tmp);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    joule_batch_manifest_free(m);
    test_rmtree(tmp);
}

/* Two real jobs through the library: the MLP fixture pruned (done, report written, then up to
 * date) and a truncated copy of it (failed, with the file named, nothing written). */
static void test_run_job(void **state)
{
    (void)state;
    joule_error err = {{0}};
    char tmp[256], src[512], man[600], path[700];
    test_tmpdir(tmp, sizeof tmp);
    test_source_path("tests/data/mlp.onnx", src, sizeof src);
    struct stat sb0;
    if (stat(src, &sb0) != 0) {
        print_message("no %s: skipped\n", src);
        skip();
    }
    size_t len;
    char *bytes = test_read_file(src, &len);
    assert_non_null(bytes);
    snprintf(path, sizeof path, "%s/broken.onnx", tmp);
    assert_int_equal(test_write_file(path, bytes, len / 3), 0);
    free(bytes);
    snprintf(man, sizeof man, "%s/m.json", tmp);
    char text[2048];
    snprintf(text, sizeof text,
             "{\"defaults\": {\"recipe\": {\"passes\": [{\"pass\": \"prune\", \"sparsity\": 0.6}]}},"
             " \"models\": [{\"name\": \"mlp\", \"model\": \"%s\", \"output\": \"o/mlp.onnx\"},"
             " {\"name\": \"broken\", \"model\": \"broken.onnx\", \"output\": \"o/broken.onnx\"}]}",
             src);
    write_text(man, text);
    joule_batch_manifest *m;
    assert_joule_ok(joule_batch_manifest_load(man, &m, &err), &err);
    joule_batch_run_options ro = {.threads = 1, .skip_latency = true, .skip_energy = true};
    joule_batch_result r;
    assert_joule_ok(joule_batch_run_job(&m->jobs[0], &ro, &r, &err), &err);
    assert_int_equal(r.state, JOULE_BATCH_DONE);
    assert_true(r.bytes_before > 0 && r.bytes_after > 0);
    assert_false(r.top1_after.measured); /* no data given */
    assert_true(joule_batch_up_to_date(&m->jobs[0]));
    joule_report_doc *d;
    snprintf(path, sizeof path, "%s/report.json", m->jobs[0].report_dir);
    assert_joule_ok(joule_report_doc_load(path, &d, &err), &err);
    assert_true(d->cand.weight_sparsity > 0.59 && d->cand.weight_sparsity < 0.61);
    assert_string_equal(d->tool, "joule batch");
    joule_report_doc_free(d);
    joule_batch_result again;
    assert_joule_ok(joule_batch_result_from_report(&m->jobs[0], &again, &err), &err);
    assert_int_equal(again.state, JOULE_BATCH_SKIPPED);
    assert_int_equal(again.bytes_after, r.bytes_after);

    assert_int_not_equal(joule_batch_run_job(&m->jobs[1], &ro, &r, &err), JOULE_OK);
    assert_int_equal(r.state, JOULE_BATCH_FAILED);
    assert_non_null(strstr(r.error, "broken.onnx"));
    struct stat sb;
    assert_int_not_equal(stat(m->jobs[1].output, &sb), 0);
    assert_false(joule_batch_up_to_date(&m->jobs[1]));
    joule_batch_manifest_free(m);
    test_rmtree(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shard_parse),
        cmocka_unit_test(test_shard_selection),
        cmocka_unit_test(test_manifest),
        cmocka_unit_test(test_resume),
        cmocka_unit_test(test_result_records),
        cmocka_unit_test(test_summary),
        cmocka_unit_test(test_run_job),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* tests/unit/test_compress_pipeline.c: recipes, the pipeline and `joule compress`. Recipes parse
 * into the options the passes get; every malformed recipe fails on one line naming the file and
 * the key; the pipeline validates after each pass and names the one that failed; the report is
 * valid JSON; the command line leaves its input alone, writes nothing on failure and exits 0/1/2
 * as documented. */
#include <cjson/cJSON.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_compress_util.h"

static const char brief_recipe[] =
    "{\"passes\":[{\"pass\":\"cleanup\"},{\"pass\":\"prune\",\"sparsity\":0.5,\"scope\":\"global\","
    "\"pattern\":\"2:4\",\"overrides\":[{\"match\":\"conv*\",\"sparsity\":0.3},{\"op\":\"Gemm\","
    "\"sparsity\":0.7}],\"skip\":[\"fc_out\"],\"min_params\":1024},{\"pass\":\"prune_channels\","
    "\"ratio\":0.3,\"norm\":\"l1\"}]}";

static void test_parse_brief_recipe(void **state)
{
    (void)state;
    joule_error err = {{0}};
    joule_recipe r;
    assert_joule_ok(joule_recipe_init(&r, "brief.json", &err), &err);
    assert_joule_ok(joule_recipe_parse(&r, brief_recipe, strlen(brief_recipe), &err), &err);
    assert_int_equal(r.n_steps, 3);
    assert_string_equal(r.steps[0].pass, "cleanup");
    const joule_cleanup_options *c = r.steps[0].opts;
    assert_true(c->fold_batchnorm && c->fold_constants && c->remove_identity && c->dedup &&
                c->remove_dead);
    assert_string_equal(r.steps[1].pass, "prune");
    const joule_prune_options *p = r.steps[1].opts;
    assert_true(p->sparsity == 0.5);
    assert_int_equal(p->scope, JOULE_PRUNE_SCOPE_GLOBAL);
    assert_true(p->pattern_n == 2 && p->pattern_m == 4);
    assert_int_equal(p->n_overrides, 2);
    assert_string_equal(p->overrides[0].match, "conv*");
    assert_null(p->overrides[0].op_type);
    assert_true(p->overrides[0].sparsity == 0.3);
    assert_string_equal(p->overrides[1].op_type, "Gemm");
    assert_true(p->overrides[1].sparsity == 0.7);
    assert_int_equal(p->n_skip, 1);
    assert_string_equal(p->skip[0], "fc_out");
    assert_int_equal(p->min_params, 1024);
    assert_string_equal(r.steps[2].pass, "prune_channels");
    const joule_channel_options *ch = r.steps[2].opts;
    assert_true(ch->ratio == 0.3 && ch->norm == JOULE_CHANNEL_L1 && !ch->zero_only);
    joule_recipe_free(&r);
}

static void test_bad_recipes(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"{\"passes\":[{\"pass\":\"prnue\"}]}", "unknown pass 'prnue'"},
        {"{\"passes\":[{\"pass\":\"prune\",\"sparsty\":0.5}]}", "passes[0] (prune): unknown key 'sparsty'"},
        {"{\"passes\":[{\"pass\":\"cleanup\"},{\"pass\":\"prune\",\"sparsity\":1.0}]}", "passes[1] (prune): 'sparsity' is 1, outside [0, 1)"},
        {"{\"passes\":[{\"pass\":\"prune\",\"sparsity\":-0.1}]}", "outside [0, 1)"},
        {"{\"passes\":[{\"pass\":\"prune\",\"sparsity\":\"0.5\"}]}", "'sparsity' must be a number"},
        {"{\"passes\":[{\"pass\":\"prune\",\"pattern\":\"4:2\"}]}", "N must be less than M"},
        {"{\"passes\":[{\"pass\":\"prune\",\"pattern\":\"4:4\"}]}", "N must be less than M"},
        {"{\"passes\":[{\"pass\":\"prune\",\"pattern\":\"2-4\"}]}", "expected N:M"},
        {"{\"passes\":[{\"pass\":\"prune\",\"pattern\":4}]}", "'pattern' must be a string"},
        {"{\"passes\":[{\"pass\":\"prune\",\"overrides\":[{\"match\":\"a\"}]}]}", "overrides[0]: 'sparsity' is missing"},
        {"{\"passes\":[{\"pass\":\"prune\",\"overrides\":[{\"sparsity\":0.1}]}]}", "give 'match'"},
        {"{\"passes\":[{\"pass\":\"prune\",\"overrides\":[{\"match\":\"a\",\"sparsity\":0.1,\"foo\":1}]}]}", "overrides[0]: unknown key 'foo'"},
        {"{\"passes\":[{\"pass\":\"prune\",\"overrides\":{}}]}", "'overrides' must be an array"},
        {"{\"passes\":[{\"pass\":\"prune\",\"skip\":[1],\"sparsity\":0.1}]}", "'skip'[0] must be a string"},
        {"{\"passes\":[{\"pass\":\"prune\",\"scope\":\"world\",\"sparsity\":0.1}]}", "'scope' is 'world'"},
        {"{\"passes\":[{\"pass\":\"prune\"}]}", "needs 'sparsity', 'pattern' or 'overrides'"},
        {"{\"passes\":[{\"pass\":\"prune\",\"min_params\":1.5,\"sparsity\":0.1}]}", "whole number"},
        {"{\"passes\":[{\"pass\":\"prune_channels\",\"ratio\":0.3,\"norm\":\"l3\"}]}", "'norm' is 'l3'"},
        {"{\"passes\":[{\"pass\":\"prune_channels\"}]}", "needs 'ratio'"},
        {"{\"passes\":[{\"pass\":\"prune_channels\",\"ratio\":1}]}", "outside [0, 1)"},
        {"{\"passes\":[{\"pass\":\"prune_channels\",\"ratio\":0.3,\"multiple\":2.5}]}", "'multiple' must be a whole number"},
        {"{\"passes\":[{\"pass\":\"prune_channels\",\"ratio\":0.3,\"multiple\":5000}]}", "'multiple' is 5000, outside [0, 4096]"},
        {"{\"passes\":[{\"pass\":\"cleanup\",\"fold_batchnorm\":1}]}", "'fold_batchnorm' must be true or false"},
        {"{\"passes\":[{\"pass\":\"cleanup\",\"fold\":true}]}", "unknown key 'fold'"},
        {"{\"passes\":[{\"pass\":\"sparse_storage\",\"min_sparsity\":2}]}", "outside [0, 1]"},
        {"{\"pases\":[]}", "unknown key 'pases'"},
        {"{\"passes\":{}}", "'passes' must be an array"},
        {"[1,2]", "must be a JSON object"},
        {"{\"passes\":[{\"pass\":\"prune\",\"sparsity\":0.5}", "not valid JSON"},
        {"{\"passes\":[{\"sparsity\":0.5}]}", "'pass' (a pass name) is missing"},
        {"{\"passes\":[7]}", "passes[0] must be an object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        joule_error err = {{0}};
        joule_recipe r;
        assert_joule_ok(joule_recipe_init(&r, "my.json", &err), &err);
        joule_status st = joule_recipe_parse(&r, cases[i][0], strlen(cases[i][0]), &err);
        if (st == JOULE_OK)
            fail_msg("recipe %zu was accepted: %s", i, cases[i][0]);
        if (!strstr(err.msg, cases[i][1]) || strncmp(err.msg, "my.json", 7) != 0 ||
            strchr(err.msg, '\n'))
            fail_msg("recipe %zu: message '%s' lacks '%s' (or the file name)", i, err.msg,
                     cases[i][1]);
        joule_recipe_free(&r);
    }
}

static void test_recipe_file(void **state)
{
    (void)state;
    char dir[256], path[512];
    assert_non_null(test_tmpdir(dir, sizeof dir));
    snprintf(path, sizeof path, "%s/r.json", dir);
    joule_error err = {{0}};
    joule_recipe r;
    assert_joule_ok(joule_recipe_init(&r, NULL, &err), &err);
    assert_int_equal(joule_recipe_load(&r, path, &err), JOULE_ERR_IO);
    assert_non_null(strstr(err.msg, path));
    const char *bad = "{\"passes\":[{\"pass\":\"prune\",\"sparsity\":0.5,\"colour\":\"red\"}]}";
    assert_int_equal(test_write_file(path, bad, strlen(bad)), 0);
    assert_int_equal(joule_recipe_load(&r, path, &err), JOULE_ERR_INVALID);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "'colour'"));
    joule_recipe_free(&r);
    assert_joule_ok(joule_recipe_init(&r, NULL, &err), &err);
    assert_int_equal(test_write_file(path, brief_recipe, strlen(brief_recipe)), 0);
    assert_joule_ok(joule_recipe_load(&r, path, &err), &err);
    assert_int_equal(r.n_steps, 3);
    assert_string_equal(r.source, path);
    joule_recipe_free(&r);
    test_rmtree(dir);
}

static void test_pass_table(void **state)
{
    (void)state;
    static const char *const want[] = {"cleanup", "prune", "prune_channels", "sparse_storage"};
    for (size_t i = 0; i < 4; i++) {
        bool found = false;
        for (size_t j = 0; j < joule_pass_count(); j++)
            found |= !strcmp(joule_pass_name(j), want[i]);
        assert_true(found);
    }
    assert_null(joule_pass_name(joule_pass_count()));
    joule_error err = {{0}};
    joule_recipe r;
    assert_joule_ok(joule_recipe_init(&r, "code", &err), &err);
    void *o = (void *)1;
    assert_int_equal(joule_recipe_add(&r, "shrink", &o, &err), JOULE_ERR_INVALID);
    assert_null(o);
    assert_non_null(strstr(err.msg, "unknown pass 'shrink'"));
    joule_recipe_free(&r);
}

static void test_pipeline_runs_recipe(void **state)
{
    (void)state;
    joule_error err = {{0}};
    joule_recipe r;
    assert_joule_ok(joule_recipe_init(&r, "brief.json", &err), &err);
    assert_joule_ok(joule_recipe_parse(&r, brief_recipe, strlen(brief_recipe), &err), &err);
    assert_joule_ok(joule_recipe_add(&r, "sparse_storage", NULL, &err), &err);
    joule_model *m = tc_load("tests/data/cnn.onnx");
    joule_report rep;
    joule_report_init(&rep);
    assert_joule_ok(joule_pipeline_run(m, &r, &rep, &err), &err);
    bool seen[3] = {false, false, false};
    for (size_t i = 0; i < rep.n; i++) {
        seen[0] |= !strcmp(rep.rows[i].pass, "cleanup");
        seen[1] |= !strcmp(rep.rows[i].pass, "prune");
        seen[2] |= !strcmp(rep.rows[i].pass, "prune_channels");
    }
    assert_true(seen[0] && seen[1] && seen[2]);
    /* the Gemm override (0.7) wins for the Gemms; the convs are not named conv*: 2:4 where the
     * reduction length allows, else the global 0.5 */
    size_t prune_rows = 0, warnings = 0;
    for (size_t i = 0; i < rep.n; i++) {
        const joule_layer_change *c = &rep.rows[i];
        if (strcmp(c->pass, "prune"))
            continue;
        if (c->warning) { /* the brief's conv* override and fc_out skip name nothing here */
            assert_true(strstr(c->note, "(conv*)") || strstr(c->note, "'fc_out'"));
            warnings++;
            continue;
        }
        prune_rows++;
        if (strstr(c->note, "left alone")) { /* min_params 1024: conv1 (144), fc out (640) */
            assert_non_null(strstr(c->note, "fewer than the minimum 1024"));
            continue;
        }
        double want = !strcmp(c->op_type, "Gemm") ? 0.7 : 0.5;
        assert_non_null(strstr(c->note, !strcmp(c->op_type, "Gemm") ? "override Gemm" : "2:4"));
        assert_true(fabs(c->sparsity_after - want) < 1e-3);
    }
    assert_int_equal(prune_rows, 4);
    assert_int_equal(warnings, 2);
    char *json = NULL;
    assert_joule_ok(joule_report_json(&rep, &json, &err), &err);
    cJSON *doc = cJSON_Parse(json);
    assert_non_null(doc);
    assert_true(cJSON_IsArray(doc));
    assert_int_equal((size_t)cJSON_GetArraySize(doc), rep.n);
    cJSON_Delete(doc);
    free(json);
    joule_tensor *x = tc_images(), *y = tc_run(m, x);
    assert_true(y->dims[0] == 64 && y->dims[1] == 10);
    joule_tensor_free(x);
    joule_tensor_free(y);
    joule_report_free(&rep);
    joule_recipe_free(&r);
    joule_model_free(m);
}

static void test_pipeline_names_failing_step(void **state)
{
    (void)state;
    joule_error err = {{0}};
    joule_recipe r;
    assert_joule_ok(joule_recipe_init(&r, "code", &err), &err);
    assert_joule_ok(joule_recipe_add(&r, "cleanup", NULL, &err), &err);
    void *o;
    assert_joule_ok(joule_recipe_add(&r, "prune", &o, &err), &err);
    ((joule_prune_options *)o)->sparsity = 2.0; /* out of range: the pass refuses it */
    joule_model *m = tc_load("tests/data/mlp.onnx");
    assert_int_equal(joule_pipeline_run(m, &r, NULL, &err), JOULE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "step 2 (prune)"));
    assert_non_null(strstr(err.msg, "outside [0, 1)"));
    joule_recipe_free(&r);
    joule_model_free(m);
}

/* ---- the command line ---- */

static const char *joule_bin(char *buf, size_t size)
{
    const char *b = getenv("JOULE_BUILD_DIR");
    if (!b)
        return NULL;
    snprintf(buf, size, "%s/tools/joule", b);
    return access(buf, X_OK) == 0 ? buf : NULL;
}

/* Runs `joule compress ARGS` with stdout/stderr to files in dir; returns the exit status and
 * leaves stderr's text in errbuf. */
static int run_cli(const char *dir, const char *args, char *errbuf, size_t size)
{
    char bin[4096], cmd[16384], src[4096];
    if (!joule_bin(bin, sizeof bin))
        return -1;
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' compress %s >'%s/out.txt' 2>'%s/err.txt'",
             test_source_path("", src, sizeof src), bin, args, dir, dir);
    int rc = system(cmd);
    char path[4096];
    snprintf(path, sizeof path, "%s/err.txt", dir);
    size_t len = 0;
    char *e = test_read_file(path, &len);
    snprintf(errbuf, size, "%.*s", e ? (int)len : 0, e ? e : "");
    free(e);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static bool exists(const char *dir, const char *name)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

static void test_cli(void **state)
{
    (void)state;
    char bin[4096];
    if (!joule_bin(bin, sizeof bin))
        skip(); /* JOULE_BUILD_DIR is set by meson test */
    char dir[256], args[8192], e[4096], src[4096];
    assert_non_null(test_tmpdir(dir, sizeof dir));
    size_t in_len = 0;
    void *in_before = test_read_file(test_source_path("tests/data/cnn.onnx", src, sizeof src),
                                     &in_len);
    assert_non_null(in_before);

    /* success: output and report written, input untouched */
    snprintf(args, sizeof args, "tests/data/cnn.onnx -o %s/ok.onnx --prune 0.5 --prune-channels "
             "0.3 --prune-pattern 2:4 --report %s/ok.json", dir, dir);
    int rc = run_cli(dir, args, e, sizeof e);
    if (rc != 0)
        fail_msg("exit %d: %s", rc, e);
    assert_true(exists(dir, "ok.onnx") && exists(dir, "ok.json"));
    size_t in_len2 = 0;
    void *in_after = test_read_file(src, &in_len2);
    assert_int_equal(in_len, in_len2);
    assert_memory_equal(in_before, in_after, in_len);
    free(in_after);
    char path[4096];
    snprintf(path, sizeof path, "%s/ok.json", dir);
    size_t len;
    char *text = test_read_file(path, &len);
    assert_non_null(text);
    cJSON *doc = cJSON_ParseWithLength(text, len);
    free(text);
    assert_non_null(doc);
    const cJSON *inp = cJSON_GetObjectItem(doc, "input"), *outp = cJSON_GetObjectItem(doc, "output");
    assert_true(cJSON_IsArray(cJSON_GetObjectItem(doc, "changes")));
    double p0 = cJSON_GetNumberValue(cJSON_GetObjectItem(inp, "params"));
    double p1 = cJSON_GetNumberValue(cJSON_GetObjectItem(outp, "params"));
    assert_true(p1 < 0.75 * p0);
    assert_true(cJSON_GetNumberValue(cJSON_GetObjectItem(outp, "weight_sparsity")) >= 0.49);
    cJSON_Delete(doc);
    joule_model *m = NULL;
    joule_error err = {{0}};
    snprintf(path, sizeof path, "%s/ok.onnx", dir);
    assert_joule_ok(joule_model_load(path, &m, &err), &err);
    joule_tensor *x = tc_images(), *y = tc_run(m, x);
    assert_true(y->dims[0] == 64 && y->dims[1] == 10);
    joule_tensor_free(x);
    joule_tensor_free(y);
    joule_model_free(m);

    /* a recipe file */
    snprintf(path, sizeof path, "%s/r.json", dir);
    assert_int_equal(test_write_file(path, brief_recipe, strlen(brief_recipe)), 0);
    snprintf(args, sizeof args, "tests/data/mlp.onnx -o %s/r.onnx --recipe %s", dir, path);
    rc = run_cli(dir, args, e, sizeof e);
    if (rc != 0)
        fail_msg("recipe: exit %d: %s", rc, e);

    /* usage errors: exit 2, one line, nothing written */
    static const char *const usage_cases[] = {
        "--prune 1.0", "--prune -0.1", "--prune abc", "--prune nan", "--prune-pattern 4:4",
        "--prune-pattern 2:x", "--prune-pattern 24", "--prune-channels 1",
        "--channel-norm l3 --prune-channels 0.3", "--prune-scope world --prune 0.5", "--frobnicate",
        "--prune-scope global", "--prune-override conv=1.5", "--prune 0.5 --recipe x.json",
        "--no-cleanup", "--prune-min-params -3 --prune 0.5"};
    for (size_t i = 0; i < sizeof usage_cases / sizeof *usage_cases; i++) {
        snprintf(args, sizeof args, "tests/data/mlp.onnx -o %s/bad.onnx %s", dir, usage_cases[i]);
        rc = run_cli(dir, args, e, sizeof e);
        if (rc != 2 || exists(dir, "bad.onnx") || !e[0] || strchr(e, '\n') != strrchr(e, '\n'))
            fail_msg("'%s': exit %d, stderr '%s'", usage_cases[i], rc, e);
    }
    rc = run_cli(dir, "tests/data/mlp.onnx --prune 0.5", e, sizeof e); /* no -o */
    assert_int_equal(rc, 2);
    rc = run_cli(dir, "tests/data/mlp.onnx -o tests/data/mlp.onnx --prune 0.5", e, sizeof e);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(e, "input"));

    /* failures: exit 1, one line naming the file, nothing written */
    snprintf(path, sizeof path, "%s/bad_recipe.json", dir);
    const char *bad = "{\"passes\":[{\"pass\":\"prune\",\"sparsity\":0.5,\"colour\":1}]}";
    assert_int_equal(test_write_file(path, bad, strlen(bad)), 0);
    snprintf(path, sizeof path, "%s/not_onnx.onnx", dir);
    assert_int_equal(test_write_file(path, "hello", 5), 0);
    const char *fail_cases[4][2] = {
        {"tests/data/missing.onnx -o %s/bad.onnx --prune 0.5", "missing.onnx"},
        {"tests/data/mlp.onnx -o %s/bad.onnx --recipe /nonexistent/r.json", "r.json"},
        {"tests/data/mlp.onnx -o %s/bad.onnx --recipe %s/bad_recipe.json", "'colour'"},
        {"%s/not_onnx.onnx -o %s/bad.onnx --prune 0.5", "not_onnx.onnx"},
    };
    for (int i = 0; i < 4; i++) {
        snprintf(args, sizeof args, fail_cases[i][0], dir, dir);
        rc = run_cli(dir, args, e, sizeof e);
        if (rc != 1 || exists(dir, "bad.onnx") || !strstr(e, fail_cases[i][1]) ||
            strchr(e, '\n') != strrchr(e, '\n'))
            fail_msg("'%s': exit %d, stderr '%s'", args, rc, e);
    }
    /* a report that cannot be written: nothing written at all */
    snprintf(args, sizeof args, "tests/data/mlp.onnx -o %s/bad.onnx --prune 0.5 --report "
             "/nonexistent/dir/r.json", dir);
    rc = run_cli(dir, args, e, sizeof e);
    assert_int_equal(rc, 1);
    assert_false(exists(dir, "bad.onnx"));
    free(in_before);
    test_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_brief_recipe),
        cmocka_unit_test(test_bad_recipes),
        cmocka_unit_test(test_recipe_file),
        cmocka_unit_test(test_pass_table),
        cmocka_unit_test(test_pipeline_runs_recipe),
        cmocka_unit_test(test_pipeline_names_failing_step),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

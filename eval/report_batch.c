/* eval/report_batch.c: batches of models (joule/report.h): the JSON manifest, shard selection,
 * the resume check, one job run through library calls (compress, save, measure, report), the
 * result record a child process hands its parent, and summary.csv / summary.json. The process
 * handling (fork, --jobs) lives in tools/joule/cmd_batch.c. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "joule/onnx.h"
#include "joule/pipeline.h"
#include "report_internal.h"

/* ---- manifest ---- */

static void job_free(joule_batch_job *j)
{
    free(j->name);
    free(j->model);
    free(j->output);
    free(j->report_dir);
    free(j->recipe_path);
    free(j->recipe_json);
    free(j->data);
}

void joule_batch_manifest_free(joule_batch_manifest *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_jobs; i++)
        job_free(&m->jobs[i]);
    free(m->jobs);
    free(m->path);
    free(m->summary_dir);
    free(m);
}

/* dir/rel, or rel itself when it is absolute (or dir is empty). */
static char *resolve(const char *dir, const char *rel)
{
    if (!rel)
        return NULL;
    if (rel[0] == '/' || !dir || !*dir || !strcmp(dir, "."))
        return strdup(rel);
    size_t n = strlen(dir) + strlen(rel) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, rel);
    return p;
}

static bool key_known(const char *k, const char *const *keys)
{
    for (; *keys; keys++)
        if (!strcmp(k, *keys))
            return true;
    return false;
}

/* Checks every key of o against keys; fails naming the first unknown one. */
static joule_status check_keys(const cJSON *o, const char *const *keys, const char *path,
                               const char *where, joule_error *err)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, o)
    {
        if (!key_known(it->string, keys))
            return joule_fail(err, JOULE_ERR_INVALID, "%s: %s: unknown key \"%s\"", path, where,
                              it->string);
    }
    return JOULE_OK;
}

/* Value of key in the model's object, else in defaults (may be NULL). */
static const cJSON *pick(const cJSON *o, const cJSON *dflt, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v && dflt)
        v = cJSON_GetObjectItemCaseSensitive(dflt, key);
    return v;
}

/* The output file name without folders and without ".onnx". */
static char *stem(const char *path, bool keep_dir)
{
    const char *base = keep_dir ? path : strrchr(path, '/');
    base = base ? (keep_dir ? base : base + 1) : path;
    size_t n = strlen(base);
    if (n > 5 && !strcmp(base + n - 5, ".onnx"))
        n -= 5;
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, base, n);
        s[n] = 0;
    }
    return s;
}

static joule_status parse_job(const cJSON *o, const cJSON *dflt, const char *dir,
                              const char *path, size_t index, joule_batch_job *j,
                              joule_error *err)
{
    static const char *const keys[] = {"name", "model", "output", "report", "recipe", "data",
                                       "limit", "min_accuracy", NULL};
    char where[64];
    snprintf(where, sizeof where, "models[%zu]", index);
    if (!cJSON_IsObject(o))
        return joule_fail(err, JOULE_ERR_INVALID, "%s: %s is not an object", path, where);
    joule_status st = check_keys(o, keys, path, where, err);
    if (st)
        return st;
    j->index = index;
    j->min_accuracy = -1;
    const cJSON *model = pick(o, NULL, "model"), *output = pick(o, NULL, "output");
    const cJSON *name = pick(o, NULL, "name"), *report = pick(o, NULL, "report");
    const cJSON *recipe = pick(o, dflt, "recipe"), *data = pick(o, dflt, "data");
    const cJSON *limit = pick(o, dflt, "limit"), *mina = pick(o, dflt, "min_accuracy");
    if (!cJSON_IsString(model) || !cJSON_IsString(output))
        return joule_fail(err, JOULE_ERR_INVALID, "%s: %s needs \"model\" and \"output\" (strings)",
                          path, where);
    if (!recipe || !(cJSON_IsString(recipe) || cJSON_IsObject(recipe)))
        return joule_fail(err, JOULE_ERR_INVALID,
                          "%s: %s needs a \"recipe\" (an object, or a recipe file name)", path,
                          where);
    if ((name && !cJSON_IsString(name)) || (report && !cJSON_IsString(report)) ||
        (data && !cJSON_IsString(data) && !cJSON_IsNull(data)))
        return joule_fail(err, JOULE_ERR_INVALID, "%s: %s: \"name\", \"report\" and \"data\" are "
                                                  "strings", path, where);
    if (limit && !(cJSON_IsNumber(limit) && limit->valuedouble >= 0 && limit->valuedouble < 1e15))
        return joule_fail(err, JOULE_ERR_INVALID, "%s: %s: \"limit\" is a count", path, where);
    if (mina && !(cJSON_IsNumber(mina) && mina->valuedouble >= 0 && mina->valuedouble <= 1))
        return joule_fail(err, JOULE_ERR_INVALID, "%s: %s: \"min_accuracy\" is a fraction in "
                                                  "[0, 1]", path, where);
    j->model = resolve(dir, model->valuestring);
    j->output = resolve(dir, output->valuestring);
    bool ok = j->model && j->output;
    if (ok && report)
        ok = (j->report_dir = resolve(dir, report->valuestring)) != NULL;
    else if (ok) {
        char *s = stem(j->output, true);
        size_t n = s ? strlen(s) + 8 : 0;
        if (s && (j->report_dir = malloc(n)))
            snprintf(j->report_dir, n, "%s.report", s);
        ok = j->report_dir != NULL;
        free(s);
    }
    if (ok)
        ok = (j->name = name ? strdup(name->valuestring) : stem(j->output, false)) != NULL;
    if (ok && cJSON_IsString(recipe))
        ok = (j->recipe_path = resolve(dir, recipe->valuestring)) != NULL;
    else if (ok)
        ok = (j->recipe_json = cJSON_PrintUnformatted(recipe)) != NULL;
    if (ok && cJSON_IsString(data))
        ok = (j->data = resolve(dir, data->valuestring)) != NULL;
    if (!ok)
        return joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", path);
    if (!*j->name)
        return joule_fail(err, JOULE_ERR_INVALID, "%s: %s: empty name", path, where);
    if (limit)
        j->limit = (size_t)limit->valuedouble;
    if (mina)
        j->min_accuracy = mina->valuedouble;
    return JOULE_OK;
}

joule_status joule_batch_manifest_parse(const char *json, size_t len, const char *path,
                                        joule_batch_manifest **out, joule_error *err)
{
    *out = NULL;
    static const char *const top_keys[] = {"summary_dir", "defaults", "models", NULL};
    static const char *const dflt_keys[] = {"recipe", "data", "limit", "min_accuracy", NULL};
    if (!path)
        path = "manifest";
    cJSON *o = cJSON_ParseWithLength(json, len);
    if (!o)
        return joule_fail(err, JOULE_ERR_PARSE, "%s: not valid JSON", path);
    joule_batch_manifest *m = calloc(1, sizeof *m);
    char *pcopy = strdup(path);
    joule_status st = JOULE_OK;
    if (!m || !pcopy || !(m->path = strdup(path))) {
        st = joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", path);
        goto out;
    }
    const char *dir = dirname(pcopy);
    const cJSON *models = cJSON_GetObjectItemCaseSensitive(o, "models");
    const cJSON *dflt = cJSON_GetObjectItemCaseSensitive(o, "defaults");
    const cJSON *sdir = cJSON_GetObjectItemCaseSensitive(o, "summary_dir");
    if (!cJSON_IsObject(o)) {
        st = joule_fail(err, JOULE_ERR_INVALID, "%s: a manifest is a JSON object", path);
    } else if ((st = check_keys(o, top_keys, path, "manifest", err))) {
    } else if (!cJSON_IsArray(models)) {
        st = joule_fail(err, JOULE_ERR_INVALID, "%s: no \"models\" array", path);
    } else if (dflt && !cJSON_IsObject(dflt)) {
        st = joule_fail(err, JOULE_ERR_INVALID, "%s: \"defaults\" is an object", path);
    } else if (dflt && (st = check_keys(dflt, dflt_keys, path, "defaults", err))) {
    } else if (sdir && !cJSON_IsString(sdir)) {
        st = joule_fail(err, JOULE_ERR_INVALID, "%s: \"summary_dir\" is a string", path);
    }
    if (st)
        goto out;
    if (!(m->summary_dir = sdir ? resolve(dir, sdir->valuestring) : strdup(dir))) {
        st = joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", path);
        goto out;
    }
    size_t n = (size_t)cJSON_GetArraySize(models);
    m->jobs = calloc(n ? n : 1, sizeof *m->jobs);
    if (!m->jobs) {
        st = joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", path);
        goto out;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, models)
    {
        st = parse_job(it, dflt, dir, path, m->n_jobs, &m->jobs[m->n_jobs], err);
        m->n_jobs++;
        if (st)
            goto out;
    }
    for (size_t i = 0; i < m->n_jobs; i++) {
        for (size_t k = 0; k < i; k++) {
            const joule_batch_job *a = &m->jobs[i], *b = &m->jobs[k];
            if (!strcmp(a->name, b->name))
                st = joule_fail(err, JOULE_ERR_INVALID, "%s: models[%zu] and models[%zu] share "
                                "the name \"%s\"", path, k, i, a->name);
            else if (!strcmp(a->output, b->output) || !strcmp(a->report_dir, b->report_dir))
                st = joule_fail(err, JOULE_ERR_INVALID, "%s: \"%s\" and \"%s\" write to the same "
                                "output or report", path, b->name, a->name);
            if (st)
                goto out;
        }
    }
    for (size_t i = 0; i < m->n_jobs && !st; i++)
        if (!strcmp(m->jobs[i].output, m->jobs[i].model))
            st = joule_fail(err, JOULE_ERR_INVALID, "%s: \"%s\": output is the input model",
                            path, m->jobs[i].name);
out:
    cJSON_Delete(o);
    free(pcopy);
    if (st) {
        joule_batch_manifest_free(m);
        return st;
    }
    *out = m;
    return JOULE_OK;
}

joule_status joule_batch_manifest_load(const char *path, joule_batch_manifest **out,
                                       joule_error *err)
{
    *out = NULL;
    char *text;
    size_t len;
    joule_status st = jr_read_file(path, &text, &len, err);
    if (st)
        return st;
    st = joule_batch_manifest_parse(text, len, path, out, err);
    free(text);
    return st;
}

/* ---- shards and resume ---- */

joule_status joule_parse_shard(const char *s, size_t *k, size_t *n, joule_error *err)
{
    char *end;
    errno = 0;
    unsigned long long a = strtoull(s, &end, 10);
    if (end == s || *end != '/' || s[0] == '-' || errno)
        return joule_fail(err, JOULE_ERR_INVALID, "shard '%s': want K/N, e.g. 0/4", s);
    const char *p = end + 1;
    unsigned long long b = strtoull(p, &end, 10);
    if (end == p || *end || p[0] == '-' || errno || b == 0 || b > 1000000 || a >= b)
        return joule_fail(err, JOULE_ERR_INVALID,
                          "shard '%s': want K/N with 0 <= K < N (K counts from 0)", s);
    *k = (size_t)a;
    *n = (size_t)b;
    return JOULE_OK;
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

joule_status joule_batch_recipe_hash(const joule_batch_job *j, char out[17], joule_error *err)
{
    uint64_t h = 0xcbf29ce484222325ull;
    if (j->recipe_path) {
        char *text;
        size_t len;
        joule_status st = jr_read_file(j->recipe_path, &text, &len, err);
        if (st)
            return st;
        h = fnv1a(h, text, len);
        free(text);
    } else if (j->recipe_json) {
        h = fnv1a(h, j->recipe_json, strlen(j->recipe_json));
    }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
    return JOULE_OK;
}

/* Modification time in ns; false when path does not exist. */
static bool mtime_ns(const char *path, int64_t *t)
{
    struct stat sb;
    if (!path || stat(path, &sb) != 0)
        return false;
    *t = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
    return true;
}

static char *report_json_path(const joule_batch_job *j)
{
    size_t n = strlen(j->report_dir) + 16;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/report.json", j->report_dir);
    return p;
}

bool joule_batch_up_to_date(const joule_batch_job *j)
{
    char *rj = report_json_path(j);
    int64_t t_out, t_rep, t;
    bool ok = rj && mtime_ns(j->output, &t_out) && mtime_ns(rj, &t_rep);
    if (ok) {
        int64_t oldest = t_out < t_rep ? t_out : t_rep;
        /* inputs: the model (and its external data), the recipe file, the data */
        size_t n = strlen(j->model) + 6;
        char *side = malloc(n);
        if (side)
            snprintf(side, n, "%s.data", j->model);
        const char *inputs[] = {j->model, side, j->recipe_path, j->data};
        if (!side || !mtime_ns(j->model, &t))
            ok = false;
        for (int i = 0; ok && i < 4; i++)
            if (inputs[i] && mtime_ns(inputs[i], &t) && t > oldest)
                ok = false;
        free(side);
    }
    char hash[17];
    joule_error e;
    joule_report_doc *d = NULL;
    if (ok)
        ok = !joule_batch_recipe_hash(j, hash, &e) && !joule_report_doc_load(rj, &d, &e) &&
             d->recipe_hash && !strcmp(d->recipe_hash, hash) && d->has_cand;
    joule_report_doc_free(d);
    free(rj);
    return ok;
}

/* ---- running one job ---- */

const char *joule_batch_state_name(joule_batch_state s)
{
    switch (s) {
    case JOULE_BATCH_PENDING: return "pending";
    case JOULE_BATCH_DONE: return "done";
    case JOULE_BATCH_SKIPPED: return "skipped";
    case JOULE_BATCH_BELOW_MIN: return "below-min-accuracy";
    case JOULE_BATCH_FAILED: return "failed";
    }
    return "?";
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void result_from_doc(const joule_report_doc *d, joule_batch_result *res)
{
    res->bytes_before = d->base.file_bytes;
    res->bytes_after = d->cand.file_bytes;
    res->top1_before = d->base.top1;
    res->top1_after = d->cand.top1;
    res->latency_before_ms = d->base.latency_ms;
    res->latency_after_ms = d->cand.latency_ms;
    res->energy_ratio = d->energy_ratio;
}

static joule_status fail_job(joule_batch_result *res, joule_status st, const joule_error *e,
                             joule_error *err)
{
    res->state = JOULE_BATCH_FAILED;
    snprintf(res->error, sizeof res->error, "%s", e->msg[0] ? e->msg : joule_status_name(st));
    if (err && err != e)
        *err = *e;
    return st;
}

joule_status joule_batch_run_job(const joule_batch_job *j, const joule_batch_run_options *opt,
                                 joule_batch_result *res, joule_error *err)
{
    memset(res, 0, sizeof *res);
    double t0 = now_s();
    joule_batch_run_options dflt = {0};
    if (!opt)
        opt = &dflt;
    joule_error e = {{0}};
    joule_recipe r;
    joule_report changes;
    joule_report_init(&changes);
    joule_model *m = NULL;
    joule_report_doc *d = NULL;
    char hash[17], label[600];
    snprintf(label, sizeof label, "%s (%s)", j->recipe_path ? j->recipe_path : "inline recipe",
             j->name);
    joule_status st = joule_recipe_init(&r, label, &e);
    if (st) {
        res->seconds = now_s() - t0;
        return fail_job(res, st, &e, err);
    }
    if (j->recipe_path)
        st = joule_recipe_load(&r, j->recipe_path, &e);
    else
        st = joule_recipe_parse(&r, j->recipe_json, strlen(j->recipe_json), &e);
    if (!st)
        st = joule_batch_recipe_hash(j, hash, &e);
    if (!st && r.n_steps == 0)
        st = joule_fail(&e, JOULE_ERR_INVALID, "%s: the recipe has no passes", label);
    if (!st)
        st = joule_model_load(j->model, &m, &e);
    if (!st)
        st = joule_pipeline_run(m, &r, &changes, &e);
    if (!st) {
        char *dir = strdup(j->output);
        if (!dir)
            st = joule_fail(&e, JOULE_ERR_NOMEM, "%s: out of memory", j->name);
        else
            st = jr_mkdirs(dirname(dir), &e);
        free(dir);
    }
    if (!st)
        st = joule_model_save(m, j->output, NULL, &e);
    joule_model_free(m);
    if (!st) {
        joule_report_options ro;
        joule_report_defaults(&ro);
        ro.data = j->data;
        ro.limit = j->limit;
        ro.threads = opt->threads;
        ro.skip_latency = opt->skip_latency;
        ro.skip_energy = opt->skip_energy;
        ro.changes = &changes;
        st = joule_report_measure(j->model, j->output, &ro, &d, &e);
    }
    if (!st) {
        char title[600];
        snprintf(title, sizeof title, "%s: compression report", j->name);
        char *recipe_text = NULL;
        if (j->recipe_path) {
            size_t n = strlen(j->recipe_path) + 8;
            if ((recipe_text = malloc(n)))
                snprintf(recipe_text, n, "file %s", j->recipe_path);
        }
        st = joule_report_doc_set(&d->title, title, &e);
        if (!st)
            st = joule_report_doc_set(&d->tool, "joule batch", &e);
        if (!st)
            st = joule_report_doc_set(&d->recipe, recipe_text ? recipe_text : j->recipe_json, &e);
        if (!st)
            st = joule_report_doc_set(&d->recipe_hash, hash, &e);
        free(recipe_text);
        if (!st && opt->skip_energy && opt->concurrent)
            st = joule_report_doc_note(d, &e, "A batch meters energy only with --jobs 1: jobs "
                                              "running side by side share one package counter.");
        if (!st && opt->concurrent && !opt->skip_latency)
            st = joule_report_doc_note(d, &e, "Latency was timed while other jobs of the batch "
                                              "ran: compare it within this report only.");
        if (!st && !j->data)
            st = joule_report_doc_note(d, &e, "Accuracy not measured: the manifest gives no "
                                              "\"data\" for this model.");
    }
    if (!st)
        st = joule_report_write_dir(d, j->report_dir, &e);
    joule_recipe_free(&r);
    joule_report_free(&changes);
    res->seconds = now_s() - t0;
    if (st) {
        joule_report_doc_free(d);
        return fail_job(res, st, &e, err);
    }
    result_from_doc(d, res);
    res->state = JOULE_BATCH_DONE;
    if (j->min_accuracy >= 0 && d->cand.top1.measured && d->cand.top1.value < j->min_accuracy) {
        res->state = JOULE_BATCH_BELOW_MIN;
        snprintf(res->error, sizeof res->error, "top-1 %.3f%% below min_accuracy %.3f%%",
                 100 * d->cand.top1.value, 100 * j->min_accuracy);
    }
    joule_report_doc_free(d);
    return JOULE_OK;
}

joule_status joule_batch_result_from_report(const joule_batch_job *j, joule_batch_result *res,
                                            joule_error *err)
{
    memset(res, 0, sizeof *res);
    char *rj = report_json_path(j);
    if (!rj)
        return joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", j->name);
    joule_report_doc *d;
    joule_status st = joule_report_doc_load(rj, &d, err);
    free(rj);
    if (st)
        return st;
    result_from_doc(d, res);
    res->state = JOULE_BATCH_SKIPPED;
    if (j->min_accuracy >= 0 && d->cand.top1.measured && d->cand.top1.value < j->min_accuracy) {
        res->state = JOULE_BATCH_BELOW_MIN;
        snprintf(res->error, sizeof res->error, "top-1 %.3f%% below min_accuracy %.3f%%",
                 100 * d->cand.top1.value, 100 * j->min_accuracy);
    }
    joule_report_doc_free(d);
    return JOULE_OK;
}

/* ---- result records ---- */

static cJSON *est_json(const joule_estimate *e)
{
    if (!e->measured || !isfinite(e->value))
        return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    if (o) {
        cJSON_AddNumberToObject(o, "value", e->value);
        cJSON_AddNumberToObject(o, "lo", isfinite(e->lo) ? e->lo : e->value);
        cJSON_AddNumberToObject(o, "hi", isfinite(e->hi) ? e->hi : e->value);
    }
    return o;
}

static joule_estimate est_parse(const cJSON *o, const char *key)
{
    joule_estimate e = {0};
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    const cJSON *val = cJSON_GetObjectItemCaseSensitive(v, "value");
    if (cJSON_IsNumber(val)) {
        e.measured = true;
        e.value = val->valuedouble;
        const cJSON *lo = cJSON_GetObjectItemCaseSensitive(v, "lo");
        const cJSON *hi = cJSON_GetObjectItemCaseSensitive(v, "hi");
        e.lo = cJSON_IsNumber(lo) ? lo->valuedouble : e.value;
        e.hi = cJSON_IsNumber(hi) ? hi->valuedouble : e.value;
    }
    return e;
}

/* Adds r's fields to o. */
static void result_fields(cJSON *o, const joule_batch_result *r)
{
    cJSON_AddStringToObject(o, "state", joule_batch_state_name(r->state));
    if (r->error[0])
        cJSON_AddStringToObject(o, "error", r->error);
    else
        cJSON_AddNullToObject(o, "error");
    cJSON_AddNumberToObject(o, "seconds", r->seconds);
    cJSON_AddNumberToObject(o, "bytes_before", (double)r->bytes_before);
    cJSON_AddNumberToObject(o, "bytes_after", (double)r->bytes_after);
    cJSON_AddItemToObject(o, "top1_before", est_json(&r->top1_before));
    cJSON_AddItemToObject(o, "top1_after", est_json(&r->top1_after));
    cJSON_AddItemToObject(o, "latency_before_ms", est_json(&r->latency_before_ms));
    cJSON_AddItemToObject(o, "latency_after_ms", est_json(&r->latency_after_ms));
    cJSON_AddItemToObject(o, "energy_ratio", est_json(&r->energy_ratio));
}

joule_status joule_batch_result_json(const joule_batch_result *r, char **out, joule_error *err)
{
    *out = NULL;
    cJSON *o = cJSON_CreateObject();
    if (o)
        result_fields(o, r);
    char *t = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!t)
        return joule_fail(err, JOULE_ERR_NOMEM, "batch: out of memory");
    *out = t;
    return JOULE_OK;
}

joule_status joule_batch_result_parse(const char *json, joule_batch_result *r, joule_error *err)
{
    memset(r, 0, sizeof *r);
    cJSON *o = cJSON_Parse(json);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return joule_fail(err, JOULE_ERR_PARSE, "batch: a job's result is not a JSON object");
    }
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "state");
    joule_status st = joule_fail(err, JOULE_ERR_INVALID, "batch: a job's result has no state");
    for (int k = JOULE_BATCH_PENDING; cJSON_IsString(s) && k <= JOULE_BATCH_FAILED; k++) {
        if (!strcmp(s->valuestring, joule_batch_state_name((joule_batch_state)k))) {
            r->state = (joule_batch_state)k;
            st = JOULE_OK;
        }
    }
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
    if (cJSON_IsString(e))
        snprintf(r->error, sizeof r->error, "%s", e->valuestring);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "seconds");
    r->seconds = cJSON_IsNumber(v) ? v->valuedouble : 0;
    v = cJSON_GetObjectItemCaseSensitive(o, "bytes_before");
    r->bytes_before = cJSON_IsNumber(v) && v->valuedouble > 0 ? (uint64_t)v->valuedouble : 0;
    v = cJSON_GetObjectItemCaseSensitive(o, "bytes_after");
    r->bytes_after = cJSON_IsNumber(v) && v->valuedouble > 0 ? (uint64_t)v->valuedouble : 0;
    r->top1_before = est_parse(o, "top1_before");
    r->top1_after = est_parse(o, "top1_after");
    r->latency_before_ms = est_parse(o, "latency_before_ms");
    r->latency_after_ms = est_parse(o, "latency_after_ms");
    r->energy_ratio = est_parse(o, "energy_ratio");
    cJSON_Delete(o);
    return st;
}

/* ---- summary ---- */

/* One CSV field: quoted when it holds a comma, quote or line break; quotes doubled. Fields that
 * a spreadsheet would run as a formula (=, +, -, @ first) get a leading quote mark. */
static void csv_field(jr_buf *b, const char *s)
{
    if (!s)
        s = "";
    bool quote = strpbrk(s, ",\"\r\n") != NULL;
    if (quote)
        jr_add(b, "\"");
    if (strchr("=+-@", s[0]) && s[0])
        jr_add(b, "'");
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            jr_add(b, "\"\"");
        else
            jr_addn(b, p, 1);
    }
    if (quote)
        jr_add(b, "\"");
}

static void csv_est(jr_buf *b, const joule_estimate *e, double mul)
{
    if (e->measured && isfinite(e->value))
        jr_addf(b, ",%.6g", e->value * mul);
    else
        jr_add(b, ",");
}

joule_status joule_batch_write_summary(const joule_batch_manifest *m,
                                       const joule_batch_result *results, const char *dir,
                                       const char *stem, joule_error *err)
{
    if (!stem || !*stem)
        stem = "summary";
    joule_status st = jr_mkdirs(dir, err);
    if (st)
        return st;
    jr_buf csv;
    jr_init(&csv);
    jr_add(&csv, "index,name,state,model,output,report,bytes_before,bytes_after,size_change_pct,"
                 "top1_before,top1_after,top1_after_lo,top1_after_hi,latency_before_ms,"
                 "latency_after_ms,energy_ratio,seconds,error\n");
    cJSON *doc = cJSON_CreateObject();
    cJSON *list = doc ? cJSON_AddArrayToObject(doc, "models") : NULL;
    size_t counts[5] = {0};
    for (size_t i = 0; i < m->n_jobs; i++) {
        const joule_batch_job *j = &m->jobs[i];
        const joule_batch_result *r = &results[i];
        if (r->state == JOULE_BATCH_PENDING)
            continue;
        counts[r->state]++;
        jr_addf(&csv, "%zu,", j->index);
        csv_field(&csv, j->name);
        jr_add(&csv, ",");
        csv_field(&csv, joule_batch_state_name(r->state));
        jr_add(&csv, ",");
        csv_field(&csv, j->model);
        jr_add(&csv, ",");
        csv_field(&csv, j->output);
        jr_add(&csv, ",");
        csv_field(&csv, j->report_dir);
        bool sized = r->bytes_before && r->bytes_after;
        if (sized)
            jr_addf(&csv, ",%llu,%llu,%.2f", (unsigned long long)r->bytes_before,
                    (unsigned long long)r->bytes_after,
                    100.0 * ((double)r->bytes_after - (double)r->bytes_before) /
                        (double)r->bytes_before);
        else
            jr_add(&csv, ",,,");
        csv_est(&csv, &r->top1_before, 1);
        csv_est(&csv, &r->top1_after, 1);
        if (r->top1_after.measured)
            jr_addf(&csv, ",%.6g,%.6g", r->top1_after.lo, r->top1_after.hi);
        else
            jr_add(&csv, ",,");
        csv_est(&csv, &r->latency_before_ms, 1);
        csv_est(&csv, &r->latency_after_ms, 1);
        csv_est(&csv, &r->energy_ratio, 1);
        jr_addf(&csv, ",%.2f,", r->seconds);
        csv_field(&csv, r->error);
        jr_add(&csv, "\n");
        cJSON *o = cJSON_CreateObject();
        if (o && list) {
            cJSON_AddNumberToObject(o, "index", (double)j->index);
            cJSON_AddStringToObject(o, "name", j->name);
            cJSON_AddStringToObject(o, "model", j->model);
            cJSON_AddStringToObject(o, "output", j->output);
            cJSON_AddStringToObject(o, "report", j->report_dir);
            result_fields(o, r);
            cJSON_AddItemToArray(list, o);
        } else {
            cJSON_Delete(o);
        }
    }
    if (doc) {
        cJSON_AddStringToObject(doc, "manifest", m->path);
        cJSON_AddNumberToObject(doc, "done", (double)counts[JOULE_BATCH_DONE]);
        cJSON_AddNumberToObject(doc, "skipped", (double)counts[JOULE_BATCH_SKIPPED]);
        cJSON_AddNumberToObject(doc, "below_min_accuracy", (double)counts[JOULE_BATCH_BELOW_MIN]);
        cJSON_AddNumberToObject(doc, "failed", (double)counts[JOULE_BATCH_FAILED]);
    }
    char *csv_text = NULL, *json_text = doc ? cJSON_Print(doc) : NULL;
    cJSON_Delete(doc);
    st = jr_finish(&csv, &csv_text, "summary.csv", err);
    if (!st && !json_text)
        st = joule_fail(err, JOULE_ERR_NOMEM, "summary.json: out of memory");
    size_t n = strlen(dir) + strlen(stem) + 8;
    char *p = st ? NULL : malloc(n);
    if (!st && !p)
        st = joule_fail(err, JOULE_ERR_NOMEM, "summary: out of memory");
    if (!st) {
        snprintf(p, n, "%s/%s.csv", dir, stem);
        st = jr_write_atomic(p, csv_text, err);
    }
    if (!st) {
        snprintf(p, n, "%s/%s.json", dir, stem);
        size_t jl = strlen(json_text);
        char *jt = malloc(jl + 2);
        if (!jt) {
            st = joule_fail(err, JOULE_ERR_NOMEM, "summary.json: out of memory");
        } else {
            memcpy(jt, json_text, jl);
            memcpy(jt + jl, "\n", 2);
            st = jr_write_atomic(p, jt, err);
            free(jt);
        }
    }
    free(p);
    free(csv_text);
    cJSON_free(json_text);
    return st;
}

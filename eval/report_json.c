/* eval/report_json.c: the report document as JSON (schema "joule-report/1") and back. An
 * estimate that was not measured is written as null, never as a number; non-finite numbers are
 * null too. The reader ignores keys it does not know, so older joules read newer reports. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report_internal.h"

#define SCHEMA "joule-report/1"

/* ---- writing ---- */

static cJSON *num(double v)
{
    return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

static cJSON *str_or_null(const char *s)
{
    return s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

static cJSON *estimate_json(const joule_estimate *e)
{
    if (!e->measured || !isfinite(e->value))
        return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddItemToObject(o, "value", num(e->value));
    cJSON_AddItemToObject(o, "lo", num(e->lo));
    cJSON_AddItemToObject(o, "hi", num(e->hi));
    return o;
}

static cJSON *model_json(const joule_report_model *m)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddItemToObject(o, "path", str_or_null(m->path));
    cJSON_AddNumberToObject(o, "file_bytes", (double)m->file_bytes);
    cJSON_AddNumberToObject(o, "params", (double)m->params);
    cJSON_AddNumberToObject(o, "param_bytes", (double)m->param_bytes);
    cJSON_AddNumberToObject(o, "macs", (double)m->macs);
    cJSON_AddNumberToObject(o, "nodes", (double)m->nodes);
    cJSON_AddItemToObject(o, "weight_sparsity", num(m->weight_sparsity));
    cJSON_AddItemToObject(o, "top1", estimate_json(&m->top1));
    cJSON_AddItemToObject(o, "top5", estimate_json(&m->top5));
    cJSON_AddItemToObject(o, "latency_ms", estimate_json(&m->latency_ms));
    cJSON_AddItemToObject(o, "energy_j", estimate_json(&m->energy_j));
    cJSON_AddBoolToObject(o, "energy_estimated", m->energy_estimated);
    cJSON_AddItemToObject(o, "energy_source", str_or_null(m->energy_source));
    return o;
}

static cJSON *layer_json(const joule_report_layer *l)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddItemToObject(o, "name", str_or_null(l->name));
    cJSON_AddItemToObject(o, "op_type", str_or_null(l->op_type));
    cJSON_AddStringToObject(o, "dtype_before", joule_dtype_name(l->dtype_before));
    cJSON_AddStringToObject(o, "dtype_after", joule_dtype_name(l->dtype_after));
    cJSON_AddItemToObject(o, "sparsity_before", num(l->sparsity_before));
    cJSON_AddItemToObject(o, "sparsity_after", num(l->sparsity_after));
    cJSON_AddNumberToObject(o, "params_before", (double)l->params_before);
    cJSON_AddNumberToObject(o, "params_after", (double)l->params_after);
    cJSON_AddNumberToObject(o, "bytes_before", (double)l->bytes_before);
    cJSON_AddNumberToObject(o, "bytes_after", (double)l->bytes_after);
    cJSON_AddItemToObject(o, "scale_min", num(l->scale_min));
    cJSON_AddItemToObject(o, "scale_max", num(l->scale_max));
    cJSON_AddBoolToObject(o, "removed", l->removed);
    return o;
}

static cJSON *point_json(const joule_sweep_point *p)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddItemToObject(o, "label", str_or_null(p->label));
    if (p->sparsity >= 0)
        cJSON_AddItemToObject(o, "sparsity", num(p->sparsity));
    else
        cJSON_AddNullToObject(o, "sparsity");
    cJSON_AddItemToObject(o, "quant", str_or_null(p->quant));
    cJSON_AddItemToObject(o, "layer", str_or_null(p->layer));
    cJSON_AddNumberToObject(o, "file_bytes", (double)p->file_bytes);
    cJSON_AddNumberToObject(o, "nonzero_params", (double)p->nonzero_params);
    cJSON_AddItemToObject(o, "top1", estimate_json(&p->top1));
    cJSON_AddItemToObject(o, "latency_ms", estimate_json(&p->latency_ms));
    cJSON_AddItemToObject(o, "accuracy_drop", num(p->accuracy_drop));
    cJSON_AddBoolToObject(o, "on_frontier", p->on_frontier);
    cJSON_AddItemToObject(o, "error", str_or_null(p->error));
    return o;
}

joule_status joule_report_doc_json(const joule_report_doc *d, char **out, joule_error *err)
{
    *out = NULL;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return joule_fail(err, JOULE_ERR_NOMEM, "report: out of memory");
    cJSON_AddStringToObject(o, "schema", SCHEMA);
    cJSON_AddItemToObject(o, "title", str_or_null(d->title));
    cJSON_AddItemToObject(o, "created", str_or_null(d->created));
    cJSON_AddItemToObject(o, "tool", str_or_null(d->tool));
    cJSON_AddItemToObject(o, "recipe", str_or_null(d->recipe));
    cJSON_AddItemToObject(o, "recipe_hash", str_or_null(d->recipe_hash));
    cJSON_AddItemToObject(o, "data", str_or_null(d->data));
    cJSON_AddNumberToObject(o, "images", (double)d->images);
    cJSON_AddItemToObject(o, "base", model_json(&d->base));
    cJSON_AddItemToObject(o, "candidate", d->has_cand ? model_json(&d->cand) : cJSON_CreateNull());
    cJSON *cmp = cJSON_AddObjectToObject(o, "comparison");
    if (cmp) {
        cJSON_AddItemToObject(cmp, "agreement", estimate_json(&d->agreement));
        cJSON *mc = cJSON_AddObjectToObject(cmp, "mcnemar");
        if (mc) {
            cJSON_AddNumberToObject(mc, "b", (double)d->mcnemar_b);
            cJSON_AddNumberToObject(mc, "c", (double)d->mcnemar_c);
            cJSON_AddItemToObject(mc, "p", num(d->mcnemar_p));
        }
        cJSON_AddItemToObject(cmp, "energy_ratio", estimate_json(&d->energy_ratio));
    }
    cJSON *layers = cJSON_AddArrayToObject(o, "layers");
    for (size_t i = 0; layers && i < d->n_layers; i++)
        cJSON_AddItemToArray(layers, layer_json(&d->layers[i]));
    cJSON *sweep = cJSON_AddObjectToObject(o, "sweep");
    if (sweep) {
        cJSON_AddBoolToObject(sweep, "sensitivity", d->sweep_sensitivity);
        cJSON *pts = cJSON_AddArrayToObject(sweep, "points");
        for (size_t i = 0; pts && i < d->n_sweep; i++)
            cJSON_AddItemToArray(pts, point_json(&d->sweep[i]));
    }
    cJSON *energy = d->energy_json ? cJSON_Parse(d->energy_json) : NULL;
    cJSON_AddItemToObject(o, "energy", energy ? energy : cJSON_CreateNull());
    cJSON *changes = d->changes_json ? cJSON_Parse(d->changes_json) : NULL;
    cJSON_AddItemToObject(o, "changes", changes ? changes : cJSON_CreateArray());
    cJSON *notes = cJSON_AddArrayToObject(o, "notes");
    for (size_t i = 0; notes && i < d->n_notes; i++)
        cJSON_AddItemToArray(notes, cJSON_CreateString(d->notes[i]));
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    if (!text)
        return joule_fail(err, JOULE_ERR_NOMEM, "report: out of memory");
    /* cJSON's allocator is malloc by default; hand over a copy with a final newline */
    size_t n = strlen(text);
    char *t = malloc(n + 2);
    if (!t) {
        cJSON_free(text);
        return joule_fail(err, JOULE_ERR_NOMEM, "report: out of memory");
    }
    memcpy(t, text, n);
    t[n] = '\n';
    t[n + 1] = 0;
    cJSON_free(text);
    *out = t;
    return JOULE_OK;
}

/* ---- reading ---- */

static const char *get_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double get_num(const cJSON *o, const char *key, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static uint64_t get_u64(const cJSON *o, const char *key)
{
    double v = get_num(o, key, 0);
    return v > 0 && v < 1.8e19 ? (uint64_t)v : 0;
}

static bool get_bool(const cJSON *o, const char *key)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, key));
}

static joule_estimate get_estimate(const cJSON *o, const char *key)
{
    joule_estimate e = {0};
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsObject(v))
        return e;
    const cJSON *val = cJSON_GetObjectItemCaseSensitive(v, "value");
    if (!cJSON_IsNumber(val))
        return e;
    e.measured = true;
    e.value = val->valuedouble;
    e.lo = get_num(v, "lo", e.value);
    e.hi = get_num(v, "hi", e.value);
    return e;
}

static joule_dtype get_dtype(const cJSON *o, const char *key)
{
    const char *s = get_str(o, key);
    if (!s)
        return JOULE_UNDEFINED;
    for (int t = 0; t < 64; t++)
        if (joule_dtype_valid(t) && !strcmp(joule_dtype_name((joule_dtype)t), s))
            return (joule_dtype)t;
    return JOULE_UNDEFINED;
}

static joule_status model_parse(const cJSON *o, joule_report_model *m, joule_error *err)
{
    m->file_bytes = get_u64(o, "file_bytes");
    m->params = get_u64(o, "params");
    m->param_bytes = get_u64(o, "param_bytes");
    m->macs = get_u64(o, "macs");
    m->nodes = get_u64(o, "nodes");
    m->weight_sparsity = get_num(o, "weight_sparsity", 0);
    m->top1 = get_estimate(o, "top1");
    m->top5 = get_estimate(o, "top5");
    m->latency_ms = get_estimate(o, "latency_ms");
    m->energy_j = get_estimate(o, "energy_j");
    m->energy_estimated = get_bool(o, "energy_estimated");
    if (joule_report_doc_set(&m->path, get_str(o, "path"), err) ||
        joule_report_doc_set(&m->energy_source, get_str(o, "energy_source"), err))
        return JOULE_ERR_NOMEM;
    return JOULE_OK;
}

static joule_status doc_parse(const cJSON *o, joule_report_doc *d, joule_error *err)
{
    if (joule_report_doc_set(&d->title, get_str(o, "title"), err) ||
        joule_report_doc_set(&d->created, get_str(o, "created"), err) ||
        joule_report_doc_set(&d->tool, get_str(o, "tool"), err) ||
        joule_report_doc_set(&d->recipe, get_str(o, "recipe"), err) ||
        joule_report_doc_set(&d->recipe_hash, get_str(o, "recipe_hash"), err) ||
        joule_report_doc_set(&d->data, get_str(o, "data"), err))
        return JOULE_ERR_NOMEM;
    d->images = (size_t)get_u64(o, "images");
    const cJSON *base = cJSON_GetObjectItemCaseSensitive(o, "base");
    if (cJSON_IsObject(base) && model_parse(base, &d->base, err))
        return JOULE_ERR_NOMEM;
    const cJSON *cand = cJSON_GetObjectItemCaseSensitive(o, "candidate");
    if (cJSON_IsObject(cand)) {
        d->has_cand = true;
        if (model_parse(cand, &d->cand, err))
            return JOULE_ERR_NOMEM;
    }
    const cJSON *cmp = cJSON_GetObjectItemCaseSensitive(o, "comparison");
    if (cJSON_IsObject(cmp)) {
        d->agreement = get_estimate(cmp, "agreement");
        d->energy_ratio = get_estimate(cmp, "energy_ratio");
        const cJSON *mc = cJSON_GetObjectItemCaseSensitive(cmp, "mcnemar");
        if (cJSON_IsObject(mc)) {
            d->mcnemar_b = (size_t)get_u64(mc, "b");
            d->mcnemar_c = (size_t)get_u64(mc, "c");
            d->mcnemar_p = get_num(mc, "p", 1);
        }
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(o, "layers"))
    {
        if (!cJSON_IsObject(it))
            continue;
        joule_report_layer l = {
            .name = (char *)get_str(it, "name"),
            .op_type = (char *)get_str(it, "op_type"),
            .dtype_before = get_dtype(it, "dtype_before"),
            .dtype_after = get_dtype(it, "dtype_after"),
            .sparsity_before = get_num(it, "sparsity_before", 0),
            .sparsity_after = get_num(it, "sparsity_after", 0),
            .params_before = get_u64(it, "params_before"),
            .params_after = get_u64(it, "params_after"),
            .bytes_before = get_u64(it, "bytes_before"),
            .bytes_after = get_u64(it, "bytes_after"),
            .scale_min = get_num(it, "scale_min", 0),
            .scale_max = get_num(it, "scale_max", 0),
            .removed = get_bool(it, "removed"),
        };
        if (joule_report_doc_add_layer(d, &l, err))
            return JOULE_ERR_NOMEM;
    }
    const cJSON *sweep = cJSON_GetObjectItemCaseSensitive(o, "sweep");
    if (cJSON_IsObject(sweep)) {
        d->sweep_sensitivity = get_bool(sweep, "sensitivity");
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(sweep, "points"))
        {
            if (!cJSON_IsObject(it))
                continue;
            joule_sweep_point p = {
                .label = (char *)get_str(it, "label"),
                .sparsity = get_num(it, "sparsity", -1),
                .quant = (char *)get_str(it, "quant"),
                .layer = (char *)get_str(it, "layer"),
                .file_bytes = get_u64(it, "file_bytes"),
                .nonzero_params = get_u64(it, "nonzero_params"),
                .top1 = get_estimate(it, "top1"),
                .latency_ms = get_estimate(it, "latency_ms"),
                .accuracy_drop = get_num(it, "accuracy_drop", 0),
                .on_frontier = get_bool(it, "on_frontier"),
                .error = (char *)get_str(it, "error"),
            };
            if (joule_report_doc_add_point(d, &p, err))
                return JOULE_ERR_NOMEM;
        }
    }
    const cJSON *changes = cJSON_GetObjectItemCaseSensitive(o, "changes");
    if (cJSON_IsArray(changes) && cJSON_GetArraySize(changes) > 0) {
        char *t = cJSON_PrintUnformatted(changes);
        if (!t)
            return joule_fail(err, JOULE_ERR_NOMEM, "report: out of memory");
        joule_status st = joule_report_doc_set(&d->changes_json, t, err);
        cJSON_free(t);
        if (st)
            return st;
    }
    const cJSON *energy = cJSON_GetObjectItemCaseSensitive(o, "energy");
    if (cJSON_IsObject(energy)) {
        char *t = cJSON_Print(energy);
        if (!t)
            return joule_fail(err, JOULE_ERR_NOMEM, "report: out of memory");
        joule_status st = joule_report_doc_set(&d->energy_json, t, err);
        cJSON_free(t);
        if (st)
            return st;
    }
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(o, "notes"))
    {
        if (cJSON_IsString(it) && joule_report_doc_note(d, err, "%s", it->valuestring))
            return JOULE_ERR_NOMEM;
    }
    return JOULE_OK;
}

joule_status joule_report_doc_parse(const char *json, size_t len, const char *label,
                                    joule_report_doc **out, joule_error *err)
{
    *out = NULL;
    if (!label)
        label = "report";
    cJSON *o = cJSON_ParseWithLength(json, len);
    if (!o)
        return joule_fail(err, JOULE_ERR_PARSE, "%s: not valid JSON", label);
    const char *schema = get_str(o, "schema");
    if (!cJSON_IsObject(o) || !schema || strncmp(schema, "joule-report/", 13) != 0) {
        cJSON_Delete(o);
        return joule_fail(err, JOULE_ERR_INVALID, "%s: not a joule report (no \"schema\": \"%s\")",
                          label, SCHEMA);
    }
    joule_report_doc *d;
    joule_status st = joule_report_doc_new(NULL, NULL, &d, err);
    if (!st)
        st = doc_parse(o, d, err);
    cJSON_Delete(o);
    if (st) {
        joule_report_doc_free(d);
        return st;
    }
    *out = d;
    return JOULE_OK;
}

joule_status joule_report_doc_load(const char *path, joule_report_doc **out, joule_error *err)
{
    *out = NULL;
    char *text;
    size_t len;
    joule_status st = jr_read_file(path, &text, &len, err);
    if (st)
        return st;
    st = joule_report_doc_parse(text, len, path, out, err);
    free(text);
    return st;
}

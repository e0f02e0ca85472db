/* eval/accuracy_json.c: joule_eval_result as one JSON document (cJSON), the form `joule eval
 * --json` prints and reports read. Rates carry their hit count and 95% Wilson interval. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "joule/accuracy.h"

/* A number, or null when it is not finite (cJSON would write null anyway; this says so). */
static bool add_num(cJSON *o, const char *key, double v)
{
    return isfinite(v) ? cJSON_AddNumberToObject(o, key, v) != NULL
                       : cJSON_AddNullToObject(o, key) != NULL;
}

static bool add_str(cJSON *o, const char *key, const char *s)
{
    return s ? cJSON_AddStringToObject(o, key, s) != NULL : cJSON_AddNullToObject(o, key) != NULL;
}

/* {count_key: hits, "total": n, "accuracy"/"rate": hits/n, "ci95": [lo, hi]} */
static bool add_rate(cJSON *o, const char *key, const char *count_key, const char *rate_key,
                     const joule_rate *r)
{
    cJSON *j = cJSON_AddObjectToObject(o, key);
    if (!j)
        return false;
    cJSON *ci = cJSON_AddArrayToObject(j, "ci95");
    return cJSON_AddNumberToObject(j, count_key, (double)r->hits) &&
           cJSON_AddNumberToObject(j, "total", (double)r->n) && add_num(j, rate_key, r->rate) &&
           ci && cJSON_AddItemToArray(ci, cJSON_CreateNumber(r->lo)) &&
           cJSON_AddItemToArray(ci, cJSON_CreateNumber(r->hi));
}

static bool add_errors(cJSON *arr, const joule_tensor_error *te, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cJSON *j = cJSON_CreateObject();
        if (!j || !cJSON_AddItemToArray(arr, j))
            return false;
        const joule_error_stats *e = &te[i].e;
        bool ok = add_str(j, "name", te[i].name) &&
                  add_str(j, "baseline_name", te[i].baseline_name) &&
                  cJSON_AddBoolToObject(j, "compared", te[i].compared);
        if (ok && te[i].compared)
            ok = cJSON_AddNumberToObject(j, "elements", (double)e->count) &&
                 add_num(j, "max_abs_error", e->max_abs) &&
                 add_num(j, "mean_abs_error", e->mean_abs) && add_num(j, "cosine", e->cosine) &&
                 add_num(j, "sqnr_db", e->sqnr_db) &&
                 cJSON_AddBoolToObject(j, "identical", e->count && e->sqnr_db == INFINITY) &&
                 cJSON_AddNumberToObject(j, "nonfinite", (double)e->nonfinite);
        if (!ok)
            return false;
    }
    return true;
}

joule_status joule_eval_result_json(const joule_eval_result *r, char **json, joule_error *err)
{
    if (!r || !json)
        return joule_fail(err, JOULE_ERR_INVALID, "eval json: missing argument");
    *json = NULL;
    cJSON *root = cJSON_CreateObject();
    bool ok = root && add_str(root, "model", r->model) && add_str(root, "data", r->data) &&
              add_str(root, "labels", r->labels) &&
              add_str(root, "backend", r->backend == JOULE_BACKEND_CUDA ? "cuda" : "cpu") &&
              cJSON_AddNumberToObject(root, "threads", r->threads) &&
              cJSON_AddNumberToObject(root, "batch", (double)r->batch) &&
              cJSON_AddNumberToObject(root, "images", (double)r->images) &&
              cJSON_AddNumberToObject(root, "classes", (double)r->classes);
    if (ok && r->has_labels)
        ok = add_rate(root, "top1", "correct", "accuracy", &r->top1) &&
             add_rate(root, "top5", "correct", "accuracy", &r->top5) &&
             cJSON_AddNumberToObject(root, "topk", (double)r->topk);
    if (ok && r->has_baseline) {
        cJSON *b = cJSON_AddObjectToObject(root, "baseline");
        ok = b && add_str(b, "model", r->baseline) && add_rate(b, "agreement", "agree", "rate", &r->agreement);
        if (ok && r->has_labels) {
            cJSON *mc = NULL;
            ok = add_rate(b, "top1", "correct", "accuracy", &r->base_top1) &&
                 add_rate(b, "top5", "correct", "accuracy", &r->base_top5) &&
                 add_num(b, "top1_delta", r->top1.rate - r->base_top1.rate) &&
                 (mc = cJSON_AddObjectToObject(b, "mcnemar")) &&
                 cJSON_AddNumberToObject(mc, "b", (double)r->mcnemar_b) &&
                 cJSON_AddNumberToObject(mc, "c", (double)r->mcnemar_c) &&
                 add_num(mc, "p", r->mcnemar_p);
        }
        cJSON *outs = ok ? cJSON_AddArrayToObject(b, "outputs") : NULL;
        ok = ok && outs && add_errors(outs, r->outputs, r->n_outputs);
        if (ok && r->layers) {
            cJSON *ls = cJSON_AddArrayToObject(b, "layers");
            ok = ls && add_errors(ls, r->layers, r->n_layers);
        }
    }
    if (ok) {
        cJSON *t = cJSON_AddObjectToObject(root, "timing");
        ok = t && add_num(t, "seconds", r->seconds) &&
             add_num(t, "model_seconds", r->model_seconds) &&
             add_num(t, "images_per_second", r->images_per_second);
    }
    char *text = ok ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!text)
        return joule_fail(err, JOULE_ERR_NOMEM, "eval json: out of memory");
    /* cJSON allocates with malloc unless hooks are installed; hand back a plain malloc copy */
    size_t n = strlen(text) + 1;
    *json = malloc(n);
    if (*json)
        memcpy(*json, text, n);
    cJSON_free(text);
    if (!*json)
        return joule_fail(err, JOULE_ERR_NOMEM, "eval json: out of memory");
    return JOULE_OK;
}

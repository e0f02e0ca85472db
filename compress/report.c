/* compress/report.c: the per-layer report every pass appends to (joule/compress.h): rows with
 * their strings copied, and the JSON array `joule compress --report` writes. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "joule/compress.h"

void joule_report_init(joule_report *r)
{
    memset(r, 0, sizeof *r);
}

static void free_row(joule_layer_change *row)
{
    free((char *)row->pass);
    free((char *)row->node);
    free((char *)row->op_type);
    free((char *)row->tensor);
    free((char *)row->note);
}

void joule_report_free(joule_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        free_row(&r->rows[i]);
    free(r->rows);
    free(r->priv);
    memset(r, 0, sizeof *r);
}

static bool copy_str(const char *s, const char **out)
{
    *out = NULL;
    if (!s)
        return true;
    char *c = strdup(s);
    *out = c;
    return c != NULL;
}

joule_status joule_report_add(joule_report *r, const joule_layer_change *row, joule_error *err)
{
    if (!r) /* the caller does not want rows */
        return JOULE_OK;
    /* rows grow by doubling; the capacity sits in priv so the public struct stays as drafted */
    size_t *cap = r->priv;
    if (!cap) {
        if (!(cap = calloc(1, sizeof *cap)))
            return joule_fail(err, JOULE_ERR_NOMEM, "report: out of memory");
        r->priv = cap;
    }
    if (r->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        if (ncap > SIZE_MAX / sizeof *r->rows)
            return joule_fail(err, JOULE_ERR_NOMEM, "report: too many rows");
        joule_layer_change *rows = realloc(r->rows, ncap * sizeof *rows);
        if (!rows)
            return joule_fail(err, JOULE_ERR_NOMEM, "report: out of memory");
        r->rows = rows;
        *cap = ncap;
    }
    joule_layer_change c = *row;
    /* every copy is attempted (each sets its field), so free_row sees a consistent row */
    bool ok = copy_str(row->pass, &c.pass);
    ok = copy_str(row->node, &c.node) && ok;
    ok = copy_str(row->op_type, &c.op_type) && ok;
    ok = copy_str(row->tensor, &c.tensor) && ok;
    ok = copy_str(row->note, &c.note) && ok;
    if (!ok) {
        free_row(&c);
        return joule_fail(err, JOULE_ERR_NOMEM, "report: out of memory");
    }
    r->rows[r->n++] = c;
    return JOULE_OK;
}

static bool add_str(cJSON *o, const char *key, const char *v)
{
    return !v || cJSON_AddStringToObject(o, key, v) != NULL;
}

static bool add_num(cJSON *o, const char *key, double v)
{
    return cJSON_AddNumberToObject(o, key, v) != NULL;
}

static cJSON *row_json(const joule_layer_change *c)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    bool ok = add_str(o, "pass", c->pass) && add_str(o, "node", c->node) &&
              add_str(o, "op_type", c->op_type) && add_str(o, "tensor", c->tensor);
    if (ok && (c->params_before || c->params_after))
        ok = add_num(o, "sparsity_before", c->sparsity_before) &&
             add_num(o, "sparsity_after", c->sparsity_after) &&
             add_num(o, "params_before", (double)c->params_before) &&
             add_num(o, "params_after", (double)c->params_after) &&
             add_num(o, "bytes_before", (double)c->bytes_before) &&
             add_num(o, "bytes_after", (double)c->bytes_after);
    if (ok && c->dtype_before != JOULE_UNDEFINED)
        ok = add_str(o, "dtype_before", joule_dtype_name(c->dtype_before));
    if (ok && c->dtype_after != JOULE_UNDEFINED)
        ok = add_str(o, "dtype_after", joule_dtype_name(c->dtype_after));
    if (ok && (c->scale_min != 0 || c->scale_max != 0))
        ok = add_num(o, "scale_min", c->scale_min) && add_num(o, "scale_max", c->scale_max) &&
             add_num(o, "zp_min", (double)c->zp_min) && add_num(o, "zp_max", (double)c->zp_max);
    if (ok)
        ok = add_str(o, "note", c->note);
    if (ok && c->warning)
        ok = cJSON_AddTrueToObject(o, "warning") != NULL;
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

joule_status joule_report_json(const joule_report *r, char **out, joule_error *err)
{
    *out = NULL;
    cJSON *arr = cJSON_CreateArray();
    if (!arr)
        return joule_fail(err, JOULE_ERR_NOMEM, "report: out of memory");
    for (size_t i = 0; i < r->n; i++) {
        cJSON *o = row_json(&r->rows[i]);
        if (!o || !cJSON_AddItemToArray(arr, o)) {
            cJSON_Delete(o);
            cJSON_Delete(arr);
            return joule_fail(err, JOULE_ERR_NOMEM, "report: out of memory");
        }
    }
    *out = cJSON_Print(arr);
    cJSON_Delete(arr);
    if (!*out)
        return joule_fail(err, JOULE_ERR_NOMEM, "report: out of memory");
    return JOULE_OK;
}

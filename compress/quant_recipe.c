/* compress/quant_recipe.c: the quantization passes as pipeline steps (compress/pipeline.c's
 * table points here): defaults, runners and the JSON recipe keys of
 *
 *   {"pass": "fp16", "keep_io_types": true, "block_ops": ["Softmax"], "no_default_block_ops":
 *    false, "block_nodes": ["head*"]}
 *   {"pass": "int8_dynamic", "per_tensor": false, "exclude": ["Conv", "fc_out"]}
 *   {"pass": "int8", "calib": "train-images-idx3-ubyte.gz", "calib_limit": 1000, "batch": 64,
 *    "method": "percentile", "percentile": 99.999, "per_tensor": false, "activations": "u8",
 *    "format": "qdq", "exclude": ["fc_out"]}
 *
 * Unknown keys and bad values are errors naming the recipe step and the key. */
#include <math.h>
#include <string.h>

#include "compress/compress_internal.h"
#include "compress/quant_internal.h"

void jq_fp16_defaults_v(void *o)
{
    joule_fp16_defaults(o);
}

void jq_dynamic_defaults_v(void *o)
{
    joule_dynamic_defaults(o);
}

void jq_static_defaults_v(void *o)
{
    joule_static_defaults(o);
}

joule_status jq_fp16_run(joule_model *m, const void *o, joule_report *r, joule_error *err)
{
    return joule_quantize_fp16(m, o, r, err);
}

joule_status jq_dynamic_run(joule_model *m, const void *o, joule_report *r, joule_error *err)
{
    return joule_quantize_dynamic(m, o, r, err);
}

joule_status jq_static_run(joule_model *m, const void *o, joule_report *r, joule_error *err)
{
    return joule_quantize_static(m, o, r, err);
}

joule_status jq_fp16_from_json(joule_recipe *r, const cJSON *obj, void *opts, const char *where,
                               joule_error *err)
{
    static const char *const keys[] = {"keep_io_types", "block_ops", "no_default_block_ops",
                                       "block_nodes", NULL};
    joule_fp16_options *o = opts;
    joule_status st = cz_json_keys(obj, keys, where, err);
    if (!st)
        st = cz_json_bool(obj, "keep_io_types", &o->keep_io_types, where, err);
    if (!st)
        st = cz_json_bool(obj, "no_default_block_ops", &o->no_default_block_ops, where, err);
    if (!st)
        st = cz_json_strings(r, obj, "block_ops", &o->block_ops, &o->n_block_ops, where, err);
    if (!st)
        st = cz_json_strings(r, obj, "block_nodes", &o->block_nodes, &o->n_block_nodes, where,
                             err);
    return st;
}

joule_status jq_dynamic_from_json(joule_recipe *r, const cJSON *obj, void *opts,
                                  const char *where, joule_error *err)
{
    static const char *const keys[] = {"per_tensor", "exclude", NULL};
    joule_dynamic_options *o = opts;
    joule_status st = cz_json_keys(obj, keys, where, err);
    if (!st)
        st = cz_json_bool(obj, "per_tensor", &o->per_tensor, where, err);
    if (!st)
        st = cz_json_strings(r, obj, "exclude", &o->exclude.items, &o->exclude.n, where, err);
    return st;
}

/* A whole number in [lo, hi] under key, when present. */
static joule_status json_count(const cJSON *obj, const char *key, double lo, double hi,
                               size_t *out, const char *where, joule_error *err)
{
    double v = 0;
    bool found = false;
    joule_status st = cz_json_whole(obj, key, lo, hi, &v, &found, where, err);
    if (found)
        *out = (size_t)v;
    return st;
}

joule_status jq_static_from_json(joule_recipe *r, const cJSON *obj, void *opts,
                                 const char *where, joule_error *err)
{
    static const char *const keys[] = {"calib", "calib_limit", "batch", "method", "percentile",
                                       "per_tensor", "activations", "format", "exclude", NULL};
    joule_static_options *o = opts;
    joule_status st = cz_json_keys(obj, keys, where, err);
    const char *method = NULL, *acts = NULL, *format = NULL;
    if (!st)
        st = cz_json_string(r, obj, "calib", &o->calib_path, where, err);
    if (!st)
        st = json_count(obj, "calib_limit", 0, 1e15, &o->calib_limit, where, err);
    if (!st)
        st = json_count(obj, "batch", 1, 65536, &o->batch, where, err);
    if (!st)
        st = cz_json_string(r, obj, "method", &method, where, err);
    if (!st && method) {
        joule_error e2 = {{0}};
        if (joule_parse_calib_method(method, &o->method, &e2))
            st = joule_fail(err, JOULE_ERR_INVALID, "%s: 'method': %s", where, e2.msg);
    }
    if (!st)
        st = cz_json_number(obj, "percentile", 50, 100, false, &o->percentile, NULL, where, err);
    if (!st)
        st = cz_json_bool(obj, "per_tensor", &o->per_tensor, where, err);
    if (!st)
        st = cz_json_string(r, obj, "activations", &acts, where, err);
    if (!st && acts) {
        if (strcmp(acts, "u8") == 0)
            o->symmetric_activations = false;
        else if (strcmp(acts, "s8") == 0)
            o->symmetric_activations = true;
        else
            st = joule_fail(err, JOULE_ERR_INVALID, "%s: 'activations' is '%s'; use u8 or s8",
                            where, acts);
    }
    if (!st)
        st = cz_json_string(r, obj, "format", &format, where, err);
    if (!st && format) {
        if (strcmp(format, "qdq") == 0)
            o->format = JOULE_QUANT_QDQ;
        else if (strcmp(format, "qoperator") == 0)
            o->format = JOULE_QUANT_QOPERATOR;
        else
            st = joule_fail(err, JOULE_ERR_INVALID, "%s: 'format' is '%s'; use qdq or qoperator",
                            where, format);
    }
    if (!st)
        st = cz_json_strings(r, obj, "exclude", &o->exclude.items, &o->exclude.n, where, err);
    if (!st && !o->calib_path)
        st = joule_fail(err, JOULE_ERR_INVALID, "%s: 'calib' (calibration data) is required",
                        where);
    return st;
}

/* compress/recipe.c: recipes (joule/pipeline.h): steps with their options, built in code or read
 * from JSON with cJSON. Every key is checked: an unknown pass or key, a wrong type or a value out
 * of range is a one-line error naming the recipe, the step and the key. Options' strings and
 * arrays live in the recipe's own memory. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "compress/compress_internal.h"
#include "joule/prune.h"

#define MAX_RECIPE_BYTES (16u << 20)

typedef struct rblock {
    struct rblock *next;
    max_align_t data[];
} rblock;

typedef struct recipe_priv {
    rblock *blocks;
    size_t cap_steps;
} recipe_priv;

void *joule_recipe_alloc(joule_recipe *r, size_t size)
{
    recipe_priv *p = r->priv;
    if (!p || size > SIZE_MAX - sizeof(rblock) - 1)
        return NULL;
    rblock *b = calloc(1, sizeof *b + (size ? size : 1));
    if (!b)
        return NULL;
    b->next = p->blocks;
    p->blocks = b;
    return b->data;
}

const char *joule_recipe_strdup(joule_recipe *r, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *c = joule_recipe_alloc(r, n + 1);
    if (c)
        memcpy(c, s, n + 1);
    return c;
}

joule_status joule_recipe_init(joule_recipe *r, const char *source, joule_error *err)
{
    memset(r, 0, sizeof *r);
    recipe_priv *p = calloc(1, sizeof *p);
    if (!p)
        return joule_fail(err, JOULE_ERR_NOMEM, "recipe: out of memory");
    r->priv = p;
    r->source = joule_recipe_strdup(r, source ? source : "recipe");
    if (!r->source) {
        joule_recipe_free(r);
        return joule_fail(err, JOULE_ERR_NOMEM, "recipe: out of memory");
    }
    return JOULE_OK;
}

void joule_recipe_free(joule_recipe *r)
{
    if (!r)
        return;
    recipe_priv *p = r->priv;
    if (p) {
        while (p->blocks) {
            rblock *n = p->blocks->next;
            free(p->blocks);
            p->blocks = n;
        }
        free(p);
    }
    free(r->steps);
    memset(r, 0, sizeof *r);
}

static void known_passes(char *buf, size_t size)
{
    size_t off = 0;
    buf[0] = 0;
    for (size_t i = 0; i < joule_pass_count() && off < size; i++)
        off += (size_t)snprintf(buf + off, size - off, "%s%s", i ? ", " : "", joule_pass_name(i));
}

static joule_status add_step(joule_recipe *r, const joule_pass_def *d, void **opts,
                             joule_error *err)
{
    recipe_priv *p = r->priv;
    if (!p)
        return joule_fail(err, JOULE_ERR_INVALID, "recipe: not initialised");
    void *o = joule_recipe_alloc(r, d->opts_size);
    if (!o)
        return joule_fail(err, JOULE_ERR_NOMEM, "recipe: out of memory");
    d->defaults(o);
    if (r->n_steps == p->cap_steps) {
        size_t cap = p->cap_steps ? p->cap_steps * 2 : 8;
        joule_pass_step *s = realloc(r->steps, cap * sizeof *s);
        if (!s)
            return joule_fail(err, JOULE_ERR_NOMEM, "recipe: out of memory");
        r->steps = s;
        p->cap_steps = cap;
    }
    r->steps[r->n_steps].pass = d->name;
    r->steps[r->n_steps].opts = o;
    r->n_steps++;
    if (opts)
        *opts = o;
    return JOULE_OK;
}

joule_status joule_recipe_add(joule_recipe *r, const char *pass, void **opts, joule_error *err)
{
    if (opts)
        *opts = NULL;
    const joule_pass_def *d = cz_pass_find(pass);
    if (!d) {
        char known[256];
        known_passes(known, sizeof known);
        return joule_fail(err, JOULE_ERR_INVALID, "%s: unknown pass '%s' (known: %s)",
                          r->source ? r->source : "recipe", pass ? pass : "", known);
    }
    return add_step(r, d, opts, err);
}

/* ---- JSON ---- */

joule_status cz_json_keys(const cJSON *obj, const char *const *allowed, const char *where,
                          joule_error *err)
{
    for (const cJSON *c = obj->child; c; c = c->next) {
        if (!c->string)
            continue;
        if (strcmp(c->string, "pass") == 0)
            continue;
        bool ok = false;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = strcmp(allowed[i], c->string) == 0;
        if (!ok) {
            char keys[256];
            size_t off = 0;
            keys[0] = 0;
            for (size_t i = 0; allowed[i] && off < sizeof keys; i++)
                off += (size_t)snprintf(keys + off, sizeof keys - off, "%s%s", i ? ", " : "",
                                        allowed[i]);
            return joule_fail(err, JOULE_ERR_INVALID, "%s: unknown key '%s' (known: %s)", where,
                              c->string, keys[0] ? keys : "none");
        }
    }
    return JOULE_OK;
}

joule_status cz_json_number(const cJSON *obj, const char *key, double lo, double hi, bool hi_open,
                            double *out, bool *found, const char *where, joule_error *err)
{
    if (found)
        *found = false;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return JOULE_OK;
    if (!cJSON_IsNumber(v))
        return joule_fail(err, JOULE_ERR_INVALID, "%s: '%s' must be a number", where, key);
    double d = v->valuedouble;
    if (!(d >= lo) || (hi_open ? !(d < hi) : !(d <= hi)))
        return joule_fail(err, JOULE_ERR_INVALID, "%s: '%s' is %g, outside [%g, %g%c", where, key,
                          d, lo, hi, hi_open ? ')' : ']');
    *out = d;
    if (found)
        *found = true;
    return JOULE_OK;
}

joule_status cz_json_whole(const cJSON *obj, const char *key, double lo, double hi, double *out,
                           bool *found, const char *where, joule_error *err)
{
    bool seen = false;
    double d = 0;
    joule_status st = cz_json_number(obj, key, lo, hi, false, &d, &seen, where, err);
    if (!st && seen && d != floor(d))
        st = joule_fail(err, JOULE_ERR_INVALID, "%s: '%s' must be a whole number, not %g", where,
                        key, d);
    if (!st && seen)
        *out = d;
    if (found)
        *found = !st && seen;
    return st;
}

joule_status cz_json_bool(const cJSON *obj, const char *key, bool *out, const char *where,
                          joule_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return JOULE_OK;
    if (!cJSON_IsBool(v))
        return joule_fail(err, JOULE_ERR_INVALID, "%s: '%s' must be true or false", where, key);
    *out = cJSON_IsTrue(v);
    return JOULE_OK;
}

joule_status cz_json_string(joule_recipe *r, const cJSON *obj, const char *key, const char **out,
                            const char *where, joule_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return JOULE_OK;
    if (!cJSON_IsString(v) || !v->valuestring)
        return joule_fail(err, JOULE_ERR_INVALID, "%s: '%s' must be a string", where, key);
    if (!(*out = joule_recipe_strdup(r, v->valuestring)))
        return joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", where);
    return JOULE_OK;
}

joule_status cz_json_strings(joule_recipe *r, const cJSON *obj, const char *key,
                             const char *const **out, size_t *n, const char *where,
                             joule_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return JOULE_OK;
    if (!cJSON_IsArray(v))
        return joule_fail(err, JOULE_ERR_INVALID, "%s: '%s' must be an array of strings", where,
                          key);
    size_t count = (size_t)cJSON_GetArraySize(v);
    const char **arr = joule_recipe_alloc(r, (count ? count : 1) * sizeof *arr);
    if (!arr)
        return joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", where);
    size_t i = 0;
    for (const cJSON *c = v->child; c; c = c->next, i++) {
        if (!cJSON_IsString(c) || !c->valuestring)
            return joule_fail(err, JOULE_ERR_INVALID, "%s: '%s'[%zu] must be a string", where,
                              key, i);
        if (!(arr[i] = joule_recipe_strdup(r, c->valuestring)))
            return joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", where);
    }
    *out = arr;
    *n = i;
    return JOULE_OK;
}

/* ---- the passes in this folder ---- */

joule_status cz_cleanup_from_json(joule_recipe *r, const cJSON *obj, void *opts, const char *where,
                                  joule_error *err)
{
    (void)r;
    static const char *const keys[] = {"fold_batchnorm", "fold_constants", "remove_identity",
                                       "dedup", "remove_dead", NULL};
    joule_cleanup_options *o = opts;
    joule_status st = cz_json_keys(obj, keys, where, err);
    if (!st)
        st = cz_json_bool(obj, "fold_batchnorm", &o->fold_batchnorm, where, err);
    if (!st)
        st = cz_json_bool(obj, "fold_constants", &o->fold_constants, where, err);
    if (!st)
        st = cz_json_bool(obj, "remove_identity", &o->remove_identity, where, err);
    if (!st)
        st = cz_json_bool(obj, "dedup", &o->dedup, where, err);
    if (!st)
        st = cz_json_bool(obj, "remove_dead", &o->remove_dead, where, err);
    return st;
}

static joule_status parse_overrides(joule_recipe *r, const cJSON *obj, joule_prune_options *o,
                                    const char *where, joule_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "overrides");
    if (!v)
        return JOULE_OK;
    if (!cJSON_IsArray(v))
        return joule_fail(err, JOULE_ERR_INVALID, "%s: 'overrides' must be an array of objects",
                          where);
    size_t count = (size_t)cJSON_GetArraySize(v);
    joule_prune_override *ov = joule_recipe_alloc(r, (count ? count : 1) * sizeof *ov);
    if (!ov)
        return joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", where);
    size_t i = 0;
    for (const cJSON *c = v->child; c; c = c->next, i++) {
        char w[384];
        snprintf(w, sizeof w, "%s: overrides[%zu]", where, i);
        if (!cJSON_IsObject(c))
            return joule_fail(err, JOULE_ERR_INVALID, "%s: must be an object", w);
        static const char *const keys[] = {"match", "op", "sparsity", NULL};
        joule_status st = cz_json_keys(c, keys, w, err);
        if (!st)
            st = cz_json_string(r, c, "match", &ov[i].match, w, err);
        if (!st)
            st = cz_json_string(r, c, "op", &ov[i].op_type, w, err);
        bool found = false;
        if (!st)
            st = cz_json_number(c, "sparsity", 0, 1, true, &ov[i].sparsity, &found, w, err);
        if (st)
            return st;
        if (!found)
            return joule_fail(err, JOULE_ERR_INVALID, "%s: 'sparsity' is missing", w);
        if (!ov[i].match && !ov[i].op_type)
            return joule_fail(err, JOULE_ERR_INVALID, "%s: give 'match' (a name glob) or 'op'", w);
    }
    o->overrides = ov;
    o->n_overrides = i;
    return JOULE_OK;
}

/* "correct_bias": {"calib": "train-images-idx3-ubyte.gz", "calib_limit": 1000, "batch": 64,
 *                  "shift_only": false} */
static joule_status parse_correct_bias(joule_recipe *r, const cJSON *obj,
                                       joule_bias_correction *b, const char *where,
                                       joule_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "correct_bias");
    if (!v)
        return JOULE_OK;
    char w[384];
    snprintf(w, sizeof w, "%s: correct_bias", where);
    if (!cJSON_IsObject(v))
        return joule_fail(err, JOULE_ERR_INVALID, "%s: must be an object with 'calib' (calibration "
                          "data) and optionally 'calib_limit', 'batch' and 'shift_only'", w);
    static const char *const keys[] = {"calib", "calib_limit", "batch", "shift_only", NULL};
    joule_status st = cz_json_keys(v, keys, w, err);
    if (!st)
        st = cz_json_string(r, v, "calib", &b->calib_path, w, err);
    double limit = 0, batch = 0;
    bool have_limit = false, have_batch = false;
    if (!st)
        st = cz_json_whole(v, "calib_limit", 0, 1e15, &limit, &have_limit, w, err);
    if (!st)
        st = cz_json_whole(v, "batch", 1, 65536, &batch, &have_batch, w, err);
    if (have_limit)
        b->calib_limit = (size_t)limit;
    if (have_batch)
        b->batch = (size_t)batch;
    if (!st)
        st = cz_json_bool(v, "shift_only", &b->shift_only, w, err);
    if (!st && !b->calib_path)
        st = joule_fail(err, JOULE_ERR_INVALID, "%s: 'calib' (calibration data) is required", w);
    b->enabled = !st;
    return st;
}

joule_status cz_prune_from_json(joule_recipe *r, const cJSON *obj, void *opts, const char *where,
                                joule_error *err)
{
    static const char *const keys[] = {"sparsity", "scope", "pattern", "overrides", "skip",
                                       "min_params", "correct_bias", NULL};
    joule_prune_options *o = opts;
    joule_status st = cz_json_keys(obj, keys, where, err);
    if (!st)
        st = cz_json_number(obj, "sparsity", 0, 1, true, &o->sparsity, NULL, where, err);
    const char *scope = NULL, *pattern = NULL;
    if (!st)
        st = cz_json_string(r, obj, "scope", &scope, where, err);
    if (!st && scope) {
        if (strcmp(scope, "layer") == 0)
            o->scope = JOULE_PRUNE_SCOPE_LAYER;
        else if (strcmp(scope, "global") == 0)
            o->scope = JOULE_PRUNE_SCOPE_GLOBAL;
        else
            st = joule_fail(err, JOULE_ERR_INVALID, "%s: 'scope' is '%s'; use layer or global",
                            where, scope);
    }
    if (!st)
        st = cz_json_string(r, obj, "pattern", &pattern, where, err);
    if (!st && pattern) {
        joule_error e2 = {{0}};
        if (joule_parse_pattern(pattern, &o->pattern_n, &o->pattern_m, &e2))
            st = joule_fail(err, JOULE_ERR_INVALID, "%s: 'pattern': %s", where, e2.msg);
    }
    if (!st)
        st = parse_overrides(r, obj, o, where, err);
    if (!st)
        st = cz_json_strings(r, obj, "skip", &o->skip, &o->n_skip, where, err);
    double mp = 0;
    bool found = false;
    if (!st)
        st = cz_json_whole(obj, "min_params", 0, 9007199254740992.0, &mp, &found, where, err);
    if (found)
        o->min_params = (uint64_t)mp;
    if (!st)
        st = parse_correct_bias(r, obj, &o->correct_bias, where, err);
    if (!st && o->sparsity < 0 && !o->pattern_m && !o->n_overrides)
        st = joule_fail(err, JOULE_ERR_INVALID,
                        "%s: needs 'sparsity', 'pattern' or 'overrides'", where);
    return st;
}

joule_status cz_channels_from_json(joule_recipe *r, const cJSON *obj, void *opts,
                                   const char *where, joule_error *err)
{
    static const char *const keys[] = {"ratio", "norm", "skip", "multiple", "zero_only",
                                       "correct_bias", NULL};
    joule_channel_options *o = opts;
    bool found = false;
    joule_status st = cz_json_keys(obj, keys, where, err);
    if (!st)
        st = cz_json_number(obj, "ratio", 0, 1, true, &o->ratio, &found, where, err);
    const char *norm = NULL;
    if (!st)
        st = cz_json_string(r, obj, "norm", &norm, where, err);
    if (!st && norm) {
        if (strcmp(norm, "l1") == 0)
            o->norm = JOULE_CHANNEL_L1;
        else if (strcmp(norm, "l2") == 0)
            o->norm = JOULE_CHANNEL_L2;
        else
            st = joule_fail(err, JOULE_ERR_INVALID, "%s: 'norm' is '%s'; use l1 or l2", where,
                            norm);
    }
    if (!st)
        st = cz_json_strings(r, obj, "skip", &o->skip, &o->n_skip, where, err);
    double multiple = 0;
    bool have_multiple = false;
    if (!st)
        st = cz_json_whole(obj, "multiple", 0, 4096, &multiple, &have_multiple, where, err);
    if (have_multiple)
        o->multiple = (int64_t)multiple;
    if (!st)
        st = cz_json_bool(obj, "zero_only", &o->zero_only, where, err);
    if (!st)
        st = parse_correct_bias(r, obj, &o->correct_bias, where, err);
    if (!st && !found && !o->zero_only)
        st = joule_fail(err, JOULE_ERR_INVALID, "%s: needs 'ratio' (or \"zero_only\": true)",
                        where);
    return st;
}

joule_status cz_sparse_from_json(joule_recipe *r, const cJSON *obj, void *opts, const char *where,
                                 joule_error *err)
{
    (void)r;
    static const char *const keys[] = {"min_sparsity", NULL};
    joule_sparse_options *o = opts;
    joule_status st = cz_json_keys(obj, keys, where, err);
    if (!st)
        st = cz_json_number(obj, "min_sparsity", 0, 1, false, &o->min_sparsity, NULL, where, err);
    return st;
}

/* ---- whole recipes ---- */

joule_status joule_recipe_parse(joule_recipe *r, const char *json, size_t len, joule_error *err)
{
    const char *src = r->source ? r->source : "recipe";
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root) {
        size_t off = end && end >= json ? (size_t)(end - json) : 0;
        return joule_fail(err, JOULE_ERR_PARSE, "%s: not valid JSON (near byte %zu)", src, off);
    }
    joule_status st = JOULE_OK;
    static const char *const top_keys[] = {"passes", NULL};
    const cJSON *passes = cJSON_GetObjectItemCaseSensitive(root, "passes");
    if (!cJSON_IsObject(root)) {
        st = joule_fail(err, JOULE_ERR_INVALID, "%s: the recipe must be a JSON object", src);
    } else if (cJSON_GetObjectItemCaseSensitive(root, "pass")) {
        st = joule_fail(err, JOULE_ERR_INVALID, "%s: unknown key 'pass' at the top (known: passes)",
                        src);
    } else if ((st = cz_json_keys(root, top_keys, src, err))) {
        /* message set */
    } else if (!cJSON_IsArray(passes)) {
        st = joule_fail(err, JOULE_ERR_INVALID, "%s: 'passes' must be an array of steps", src);
    }
    size_t i = 0;
    for (const cJSON *c = st ? NULL : passes->child; c && !st; c = c->next, i++) {
        char where[320];
        if (!cJSON_IsObject(c)) {
            st = joule_fail(err, JOULE_ERR_INVALID, "%s: passes[%zu] must be an object", src, i);
            break;
        }
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(c, "pass");
        if (!cJSON_IsString(name) || !name->valuestring) {
            st = joule_fail(err, JOULE_ERR_INVALID, "%s: passes[%zu]: 'pass' (a pass name) is "
                            "missing", src, i);
            break;
        }
        const joule_pass_def *d = cz_pass_find(name->valuestring);
        if (!d) {
            char known[256];
            known_passes(known, sizeof known);
            st = joule_fail(err, JOULE_ERR_INVALID, "%s: passes[%zu]: unknown pass '%s' (known: %s)",
                            src, i, name->valuestring, known);
            break;
        }
        snprintf(where, sizeof where, "%s: passes[%zu] (%s)", src, i, d->name);
        void *opts;
        if (!(st = add_step(r, d, &opts, err)) && d->from_json)
            st = d->from_json(r, c, opts, where, err);
    }
    cJSON_Delete(root);
    return st;
}

joule_status joule_recipe_load(joule_recipe *r, const char *path, joule_error *err)
{
    if (!r->priv)
        return joule_fail(err, JOULE_ERR_INVALID, "%s: recipe not initialised", path);
    const char *src = joule_recipe_strdup(r, path);
    if (!src)
        return joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", path);
    r->source = src;
    FILE *f = fopen(path, "rb");
    if (!f)
        return joule_fail(err, JOULE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return joule_fail(err, JOULE_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)sb.st_size > MAX_RECIPE_BYTES) {
        fclose(f);
        return joule_fail(err, JOULE_ERR_INVALID, "%s: %lld bytes is too large for a recipe",
                          path, (long long)sb.st_size);
    }
    size_t n = (size_t)sb.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        fclose(f);
        return joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t got = fread(buf, 1, n, f);
    bool bad = ferror(f);
    fclose(f);
    if (bad || got != n) {
        free(buf);
        return joule_fail(err, JOULE_ERR_IO, "%s: read error", path);
    }
    buf[n] = 0;
    joule_status st = joule_recipe_parse(r, buf, n, err);
    free(buf);
    return st;
}

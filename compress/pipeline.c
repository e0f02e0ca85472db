/* compress/pipeline.c: the pass table and the pipeline that runs a recipe's steps in order,
 * validating the graph after each. Adding a pass is one entry in `passes` below: its name, its
 * options struct, defaults, how a JSON recipe fills it, and the function that runs it. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "compress/compress_internal.h"
#include "compress/quant_internal.h"
#include "joule/prune.h"

static void cleanup_defaults(void *o)
{
    joule_cleanup_defaults(o);
}
static joule_status cleanup_run(joule_model *m, const void *o, joule_report *r, joule_error *err)
{
    return joule_cleanup(m, o, r, err);
}

static void prune_defaults(void *o)
{
    joule_prune_defaults(o);
}
static joule_status prune_run(joule_model *m, const void *o, joule_report *r, joule_error *err)
{
    return joule_prune_magnitude(m, o, r, err);
}

static void channels_defaults(void *o)
{
    joule_channel_defaults(o);
}
static joule_status channels_run(joule_model *m, const void *o, joule_report *r, joule_error *err)
{
    return joule_prune_channels(m, o, r, err);
}

static void sparse_defaults(void *o)
{
    joule_sparse_defaults(o);
}
static joule_status sparse_run(joule_model *m, const void *o, joule_report *r, joule_error *err)
{
    return joule_sparse_storage(m, o, r, err);
}

static const joule_pass_def passes[] = {
    {"cleanup", sizeof(joule_cleanup_options), cleanup_defaults, cz_cleanup_from_json, cleanup_run},
    {"prune", sizeof(joule_prune_options), prune_defaults, cz_prune_from_json, prune_run},
    {"prune_channels", sizeof(joule_channel_options), channels_defaults, cz_channels_from_json,
     channels_run},
    {"sparse_storage", sizeof(joule_sparse_options), sparse_defaults, cz_sparse_from_json,
     sparse_run},
    /* quantization (compress/quant_recipe.c) */
    {"fp16", sizeof(joule_fp16_options), jq_fp16_defaults_v, jq_fp16_from_json, jq_fp16_run},
    {"int8_dynamic", sizeof(joule_dynamic_options), jq_dynamic_defaults_v, jq_dynamic_from_json,
     jq_dynamic_run},
    {"int8", sizeof(joule_static_options), jq_static_defaults_v, jq_static_from_json,
     jq_static_run},
};

const joule_pass_def *cz_pass_find(const char *name)
{
    for (size_t i = 0; name && i < sizeof passes / sizeof *passes; i++)
        if (strcmp(passes[i].name, name) == 0)
            return &passes[i];
    return NULL;
}

size_t joule_pass_count(void)
{
    return sizeof passes / sizeof *passes;
}

const char *joule_pass_name(size_t i)
{
    return i < joule_pass_count() ? passes[i].name : NULL;
}

joule_status joule_pipeline_run(joule_model *m, const joule_recipe *r, joule_report *report,
                                joule_error *err)
{
    joule_status st = joule_graph_validate(m->graph, err);
    if (st) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err ? err->msg : "");
        return joule_fail(err, st, "pipeline: the input graph is invalid: %s", msg);
    }
    for (size_t i = 0; i < r->n_steps; i++) {
        const joule_pass_step *s = &r->steps[i];
        const joule_pass_def *d = cz_pass_find(s->pass);
        if (!d)
            return joule_fail(err, JOULE_ERR_INVALID, "%s: step %zu: unknown pass '%s'",
                              r->source ? r->source : "recipe", i + 1, s->pass ? s->pass : "");
        bool ran = !(st = d->run(m, s->opts, report, err));
        if (ran)
            st = joule_graph_validate(m->graph, err);
        if (st) {
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s", err ? err->msg : "");
            return joule_fail(err, st, "step %zu (%s)%s: %s", i + 1, d->name,
                              ran ? " left an invalid graph" : "", msg);
        }
    }
    return JOULE_OK;
}

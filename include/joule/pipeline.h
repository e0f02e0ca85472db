/* joule/pipeline.h: recipes and the pipeline that runs them. A recipe is an ordered list of
 * steps; each step names a pass and carries that pass's options. Recipes are built in code (the
 * CLI turns its flags into one) or read from JSON:
 *
 *   {"passes": [{"pass": "cleanup"},
 *               {"pass": "prune", "sparsity": 0.5, "scope": "global", "pattern": "2:4",
 *                "overrides": [{"match": "conv*", "sparsity": 0.3}, {"op": "Gemm", "sparsity": 0.7}],
 *                "skip": ["fc_out"], "min_params": 1024,
 *                "correct_bias": {"calib": "train-images-idx3-ubyte.gz", "calib_limit": 1000}},
 *               {"pass": "prune_channels", "ratio": 0.3, "norm": "l1"},
 *               {"pass": "sparse_storage", "min_sparsity": 0.5}]}
 *
 * Unknown pass names and unknown keys are errors naming the recipe and the key. The pipeline runs
 * the steps in order and validates the graph after each, naming the pass that broke it.
 *
 * Passes and the options struct each takes (step->opts points to it):
 *   "cleanup"        joule_cleanup_options  (joule/compress.h)
 *   "prune"          joule_prune_options    (joule/prune.h)
 *   "prune_channels" joule_channel_options  (joule/prune.h)
 *   "sparse_storage" joule_sparse_options   (joule/prune.h)
 *   "fp16"           joule_fp16_options     (joule/quantize.h)
 *   "int8_dynamic"   joule_dynamic_options  (joule/quantize.h)
 *   "int8"           joule_static_options   (joule/quantize.h; "calib" is required) */
#ifndef JOULE_PIPELINE_H
#define JOULE_PIPELINE_H

#include <stddef.h>

#include "joule/compress.h"
#include "joule/graph.h"
#include "joule/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct joule_pass_step {
    const char *pass; /* a name from the pass table */
    void *opts;       /* that pass's options struct, owned by the recipe */
} joule_pass_step;

typedef struct joule_recipe {
    size_t n_steps;
    joule_pass_step *steps;
    const char *source; /* where it came from, for messages ("recipe.json", "command line") */
    void *priv;         /* private: memory owned by the recipe */
} joule_recipe;

/* source is copied. */
joule_status joule_recipe_init(joule_recipe *r, const char *source, joule_error *err);
void joule_recipe_free(joule_recipe *r);

/* Appends a step running pass with its default options; *opts (when opts is not NULL) points to
 * them so the caller can fill them in. Fails for a pass name not in the table. */
joule_status joule_recipe_add(joule_recipe *r, const char *pass, void **opts, joule_error *err);

/* Zeroed memory / a string copy that live as long as r (for arrays options point to). NULL when
 * out of memory. */
void *joule_recipe_alloc(joule_recipe *r, size_t size);
const char *joule_recipe_strdup(joule_recipe *r, const char *s);

/* Appends the steps of a JSON recipe (text of len bytes); messages name r->source. */
joule_status joule_recipe_parse(joule_recipe *r, const char *json, size_t len, joule_error *err);
/* Reads a JSON recipe file; r must be initialised (its source is replaced by path). */
joule_status joule_recipe_load(joule_recipe *r, const char *path, joule_error *err);

/* The pass table: count and names, in the order the table lists them. */
size_t joule_pass_count(void);
const char *joule_pass_name(size_t i);

/* Runs r's steps on m in order, appending to report; after each step the graph must validate
 * (the message then names the step and pass). */
joule_status joule_pipeline_run(joule_model *m, const joule_recipe *r, joule_report *report,
                                joule_error *err);

#ifdef __cplusplus
}
#endif
#endif

/* compress/compress_internal.h: what the passes in compress/ share: finding constant weights
 * (initializers or Constant nodes), making a constant private to one reader before changing it,
 * counting readers, report rows, globs, slicing a tensor along an axis, and the pass table the
 * pipeline and the recipe parser read. Not installed. */
#ifndef JOULE_COMPRESS_INTERNAL_H
#define JOULE_COMPRESS_INTERNAL_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "joule/compress.h"
#include "joule/graph.h"
#include "joule/pipeline.h"
#include "joule/status.h"

/* ---- graph helpers ---- */

/* Node name, or "<op>_<index>" when it has none (the same label `joule info` uses). */
const char *cz_label(const joule_graph *g, const joule_node *n, char *buf, size_t size);
/* The constant tensor behind v: an initializer that is not also a graph input (those can be fed),
 * or the `value` of the Constant node producing it. NULL otherwise. */
const joule_tensor *cz_const(const joule_graph *g, const joule_value *v);
/* Node input slots reading v, plus 1 when v is a graph output. */
size_t cz_uses(const joule_graph *g, const joule_value *v);
/* When v comes from a Constant node (value/value_float(s)/value_int(s)), makes it an initializer
 * of the same name and removes the node. Nothing to do for initializers. */
joule_status cz_materialize(joule_graph *g, joule_value *v, joule_error *err);
/* Makes n->inputs[k] (a constant) an initializer that n alone reads, cloning it under a new name
 * when others read it too, and returns its tensor (not yet detached: call
 * joule_tensor_mutable_data before writing). */
joule_status cz_private_const(joule_graph *g, joule_node *n, int k, joule_tensor **out,
                              joule_error *err);
/* Whether any node has a graph-valued attribute (If, Loop, Scan bodies). */
bool cz_has_subgraphs(const joule_graph *g);
/* Index of the prunable weight input for n (Conv, ConvTranspose, Gemm, MatMul from the op
 * table), or -1. */
int cz_weight_input(const joule_node *n);
/* fnmatch(pat, s) == 0, NULL-safe. */
bool cz_glob(const char *pat, const char *s);

/* ---- tensors ---- */

/* Elements equal to zero (floats: +0 and -0; NaN is not zero). */
uint64_t cz_zeros(const joule_tensor *t);
/* Whether t's dtype is a float type with to/from_f32 converters (f32, f16, bf16, f64). */
bool cz_float_dtype(joule_dtype t);
/* A copy of t without the positions i along axis where drop[i / block] is set. t->dims[axis]
 * must be n_drop * block. */
joule_status cz_slice(const joule_tensor *t, int axis, const bool *drop, int64_t n_drop,
                      int64_t block, joule_tensor **out, joule_error *err);

/* ---- report ---- */

/* Adds a row saying what happened to (or why pass left alone) node n; n may be NULL. */
joule_status cz_note(joule_report *r, const char *pass, const joule_graph *g, const joule_node *n,
                     const char *tensor, joule_error *err, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* Adds a warning row (joule_layer_change.warning): something the user asked for that had no
 * effect, such as a name pattern that matched nothing. */
joule_status cz_warn(joule_report *r, const char *pass, joule_error *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Whether pat matches a node of g: a glob on its label, or (ops) its op type exactly. With
 * weighted, only nodes with a prunable weight count, and the glob may match the weight's name. */
bool cz_pattern_used(const joule_graph *g, const char *pat, bool ops, bool weighted);
/* A warning row for each of pats[0..n) that cz_pattern_used finds nowhere, naming it as `what`
 * ("skip pattern", "exclude entry", ...). */
joule_status cz_warn_unused(joule_report *r, const char *pass, const joule_graph *g,
                            const char *const *pats, size_t n, const char *what, bool ops,
                            bool weighted, joule_error *err);

/* ---- pruning ---- */

/* joule_prune_magnitude with opt->correct_bias.enabled (compress/prune_bias.c): the unpruned
 * model's per-channel means on the calibration data, the pruning itself (joule_prune_magnitude
 * with the correction off), then the corrections. */
struct joule_prune_options;
joule_status cz_prune_corrected(joule_model *m, const struct joule_prune_options *opt,
                                joule_report *r, joule_error *err);

/* Called by cz_prune_channels_mapped for every layer whose output channels shrank (producers
 * and depthwise convs): its output value's name, the channel count before, and drop[c] for
 * each removed channel c. */
typedef joule_status (*cz_channel_map_fn)(void *ctx, const char *out, int64_t C, const bool *drop,
                                          joule_error *err);

struct joule_channel_options;
/* Refuses a ratio outside [0, 1), an unknown norm or a multiple outside [0, 4096], naming the
 * option; both channel pruning entry points call it before any work. */
joule_status cz_channel_options_check(const struct joule_channel_options *opt, joule_error *err);
/* joule_prune_channels (without the correction) that also reports each layer's removed output
 * channels to map (may be NULL). */
joule_status cz_prune_channels_mapped(joule_model *m, const struct joule_channel_options *opt,
                                      cz_channel_map_fn map, void *map_ctx, joule_report *r,
                                      joule_error *err);

/* joule_prune_channels with opt->correct_bias.enabled (compress/prune_bias.c). */
joule_status cz_prune_channels_corrected(joule_model *m, const struct joule_channel_options *opt,
                                         joule_report *r, joule_error *err);

/* ---- the pass table ---- */

/* One pass: its name, options struct and how to fill it from a recipe's JSON object. Adding a
 * pass is one entry in compress/pipeline.c's table. */
typedef struct joule_pass_def {
    const char *name;
    size_t opts_size;
    void (*defaults)(void *opts);
    /* Fills opts from obj (a step of a JSON recipe); where is "FILE: passes[i] (NAME)". Arrays
     * and strings go in r's memory (joule_recipe_alloc/strdup). */
    joule_status (*from_json)(joule_recipe *r, const cJSON *obj, void *opts, const char *where,
                              joule_error *err);
    joule_status (*run)(joule_model *m, const void *opts, joule_report *rep, joule_error *err);
} joule_pass_def;

const joule_pass_def *cz_pass_find(const char *name);

/* ---- recipe JSON helpers (compress/recipe.c) for from_json functions ---- */

/* Fails on a key of obj that is not "pass" and not in allowed (NULL-terminated). */
joule_status cz_json_keys(const cJSON *obj, const char *const *allowed, const char *where,
                          joule_error *err);
/* When key is present: a number in [lo, hi) (hi_open) or [lo, hi]. *found says whether it was. */
joule_status cz_json_number(const cJSON *obj, const char *key, double lo, double hi, bool hi_open,
                            double *out, bool *found, const char *where, joule_error *err);
/* cz_json_number (closed range) that also requires a whole number. */
joule_status cz_json_whole(const cJSON *obj, const char *key, double lo, double hi, double *out,
                           bool *found, const char *where, joule_error *err);
joule_status cz_json_bool(const cJSON *obj, const char *key, bool *out, const char *where,
                          joule_error *err);
/* When present: a string copied into r; *out stays when absent. */
joule_status cz_json_string(joule_recipe *r, const cJSON *obj, const char *key, const char **out,
                            const char *where, joule_error *err);
/* When present: an array of strings copied into r. */
joule_status cz_json_strings(joule_recipe *r, const cJSON *obj, const char *key,
                             const char *const **out, size_t *n, const char *where,
                             joule_error *err);

/* from_json of the passes in this folder (compress/recipe.c). */
joule_status cz_cleanup_from_json(joule_recipe *r, const cJSON *obj, void *opts, const char *where,
                                  joule_error *err);
joule_status cz_prune_from_json(joule_recipe *r, const cJSON *obj, void *opts, const char *where,
                                joule_error *err);
joule_status cz_channels_from_json(joule_recipe *r, const cJSON *obj, void *opts,
                                   const char *where, joule_error *err);
joule_status cz_sparse_from_json(joule_recipe *r, const cJSON *obj, void *opts, const char *where,
                                 joule_error *err);

#endif

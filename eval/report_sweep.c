/* eval/report_sweep.c: sweeps (joule/report.h). Each point loads the model afresh, compresses it
 * through the pipeline (cleanup, magnitude pruning, sparse storage) and the chosen quantization
 * pass, serialises it to learn its file size, and evaluates it on the same items; with
 * sensitivity, each prunable layer is pruned alone and the layers are ranked by the accuracy
 * they cost. All library calls in this process: no subprocesses, no files written. */
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "joule/accuracy.h"
#include "joule/info.h"
#include "joule/onnx.h"
#include "joule/pipeline.h"
#include "joule/prune.h"
#include "joule/quantize.h"
#include "report_internal.h"

void joule_sweep_defaults(joule_sweep_options *o)
{
    memset(o, 0, sizeof *o);
}

static const char *const quant_names[] = {"none", "fp16", "int8-dynamic", "int8"};

const char *joule_sweep_quant_name(joule_sweep_quant q)
{
    return (unsigned)q < 4 ? quant_names[q] : "?";
}

joule_status joule_parse_sweep_quant(const char *s, joule_sweep_quant *out, joule_error *err)
{
    for (int i = 0; i < 4; i++) {
        if (!strcmp(s, quant_names[i])) {
            *out = (joule_sweep_quant)i;
            return JOULE_OK;
        }
    }
    if (!strcmp(s, "int8-static")) {
        *out = JOULE_SWEEP_QUANT_INT8_STATIC;
        return JOULE_OK;
    }
    return joule_fail(err, JOULE_ERR_INVALID,
                      "quantization '%s': want none, fp16, int8-dynamic or int8", s);
}

/* A glob matching exactly s (fnmatch metacharacters escaped). */
static char *glob_literal(const char *s)
{
    size_t n = strlen(s);
    if (n > (SIZE_MAX - 1) / 2)
        return NULL;
    char *g = malloc(2 * n + 1), *p = g;
    if (!g)
        return NULL;
    for (; *s; s++) {
        if (strchr("*?[]\\", *s))
            *p++ = '\\';
        *p++ = *s;
    }
    *p = 0;
    return g;
}

/* Elements of every stored constant that are not zero. */
static uint64_t nonzero_params(const joule_graph *g)
{
    uint64_t n = 0;
    for (size_t i = 0; i < g->n_values; i++) {
        const joule_tensor *t = g->values[i]->data;
        if (t && t->dtype != JOULE_STRING)
            n += t->count - jr_count_zeros(t);
    }
    return n;
}

typedef struct sweep_ctx {
    const joule_sweep_options *opt;
    joule_dataset *eval, *calib;
} sweep_ctx;

/* Compresses a fresh copy of the model: cleanup, then pruning (layer NULL: every layer at
 * sparsity, when sparsity >= 0; else that layer alone), sparse storage, the quantization. */
static joule_status compress_point(const char *path, const sweep_ctx *c, double sparsity,
                                   const char *layer, joule_sweep_quant quant, joule_model **out,
                                   joule_error *err)
{
    *out = NULL;
    joule_model *m;
    joule_recipe r;
    joule_status st = joule_model_load(path, &m, err);
    if (st)
        return st;
    if ((st = joule_recipe_init(&r, "sweep", err))) {
        joule_model_free(m);
        return st;
    }
    void *o;
    st = joule_recipe_add(&r, "cleanup", NULL, err);
    if (!st && sparsity > 0) {
        st = joule_recipe_add(&r, "prune", &o, err);
        if (!st) {
            joule_prune_options *p = o;
            p->scope = (joule_prune_scope)c->opt->scope;
            if (layer) {
                joule_prune_override *ov = joule_recipe_alloc(&r, sizeof *ov);
                char *g = glob_literal(layer);
                const char *gs = g ? joule_recipe_strdup(&r, g) : NULL;
                free(g);
                if (!ov || !gs) {
                    st = joule_fail(err, JOULE_ERR_NOMEM, "sweep: out of memory");
                } else {
                    ov->match = gs;
                    ov->sparsity = sparsity;
                    p->sparsity = -1;
                    p->scope = JOULE_PRUNE_SCOPE_LAYER;
                    p->overrides = ov;
                    p->n_overrides = 1;
                }
            } else {
                p->sparsity = sparsity;
            }
        }
        if (!st)
            st = joule_recipe_add(&r, "sparse_storage", NULL, err);
    }
    if (!st)
        st = joule_pipeline_run(m, &r, NULL, err);
    joule_recipe_free(&r);
    if (!st && quant == JOULE_SWEEP_QUANT_FP16) {
        joule_fp16_options fo;
        joule_fp16_defaults(&fo);
        st = joule_quantize_fp16(m, &fo, NULL, err);
    } else if (!st && quant == JOULE_SWEEP_QUANT_INT8_DYNAMIC) {
        joule_dynamic_options dyn;
        joule_dynamic_defaults(&dyn);
        st = joule_quantize_dynamic(m, &dyn, NULL, err);
    } else if (!st && quant == JOULE_SWEEP_QUANT_INT8_STATIC) {
        joule_static_options so;
        joule_static_defaults(&so);
        so.calib = c->calib;
        so.threads = c->opt->threads;
        st = joule_quantize_static(m, &so, NULL, err);
    }
    if (st) {
        joule_model_free(m);
        return st;
    }
    *out = m;
    return JOULE_OK;
}

/* Measures one point into *pt (its error set when something failed). */
static joule_status measure_point(const char *path, const sweep_ctx *c, joule_sweep_point *pt,
                                  joule_sweep_quant quant, joule_error *err)
{
    joule_model *m = NULL;
    void *buf = NULL;
    size_t len = 0;
    joule_eval_result r;
    memset(&r, 0, sizeof r);
    joule_error e = {{0}};
    joule_status st = compress_point(path, c, pt->sparsity, pt->layer, quant, &m, &e);
    if (!st)
        st = joule_model_serialize(m, &buf, &len, &e);
    if (!st) {
        free(buf);
        pt->file_bytes = len;
        pt->nonzero_params = nonzero_params(m->graph);
        joule_eval_options eo = {.backend = JOULE_BACKEND_CPU, .threads = c->opt->threads};
        st = joule_eval_run(m, NULL, c->eval, &eo, &r, &e);
    }
    if (!st) {
        if (r.has_labels)
            pt->top1 = (joule_estimate){true, r.top1.rate, r.top1.lo, r.top1.hi};
        else
            st = joule_fail(&e, JOULE_ERR_INVALID, "%s: no labels, so no accuracy",
                            c->opt->data);
        joule_eval_result_free(&r);
    }
    if (!st && c->opt->latency)
        st = jr_latency_one(m, c->opt->threads, 0, &pt->latency_ms, &e);
    joule_model_free(m);
    if (st) {
        if (st == JOULE_ERR_NOMEM)
            return joule_fail(err, st, "%s", e.msg);
        pt->error = strdup(e.msg[0] ? e.msg : joule_status_name(st));
        if (!pt->error)
            return joule_fail(err, JOULE_ERR_NOMEM, "sweep: out of memory");
    }
    return JOULE_OK;
}

static int cmp_drop(const void *a, const void *b)
{
    const joule_sweep_point *p = a, *q = b;
    /* baseline (no layer) first, failed points last, then the largest drop first */
    if (!p->layer || !q->layer)
        return !p->layer ? (!q->layer ? 0 : -1) : 1;
    if (p->error || q->error)
        return (p->error != NULL) - (q->error != NULL);
    return (p->accuracy_drop < q->accuracy_drop) - (p->accuracy_drop > q->accuracy_drop);
}

static bool prunable(const char *op)
{
    return !strcmp(op, "Conv") || !strcmp(op, "ConvTranspose") || !strcmp(op, "Gemm") ||
           !strcmp(op, "MatMul");
}

joule_status joule_sweep_run(const char *model_path, const joule_sweep_options *opt,
                             joule_report_doc *d, joule_error *err)
{
    if (!opt->data)
        return joule_fail(err, JOULE_ERR_INVALID, "sweep: no evaluation data given");
    if (!opt->n_sparsities)
        return joule_fail(err, JOULE_ERR_INVALID, "sweep: no sparsity levels given");
    for (size_t i = 0; i < opt->n_sparsities; i++)
        if (!(opt->sparsities[i] >= 0 && opt->sparsities[i] < 1))
            return joule_fail(err, JOULE_ERR_INVALID, "sweep: sparsity %g is not in [0, 1)",
                              opt->sparsities[i]);
    if (opt->quant == JOULE_SWEEP_QUANT_INT8_STATIC && !opt->calib)
        return joule_fail(err, JOULE_ERR_INVALID, "sweep: int8 needs calibration data");
    sweep_ctx c = {.opt = opt};
    joule_model *m0 = NULL;
    joule_info *info = NULL;
    char **layers = NULL;
    size_t n_layers = 0;
    joule_dataset_options dopt;
    if (opt->dataset)
        dopt = *opt->dataset;
    else
        memset(&dopt, 0, sizeof dopt);
    if (opt->limit)
        dopt.limit = opt->limit;
    joule_status st = joule_model_load(model_path, &m0, err);
    if (!st)
        st = jr_fill_model(&d->base, model_path, m0, &info, err);
    if (!st && opt->sensitivity) {
        layers = calloc(info->n_layers ? info->n_layers : 1, sizeof *layers);
        if (!layers)
            st = joule_fail(err, JOULE_ERR_NOMEM, "sweep: out of memory");
        for (size_t i = 0; !st && i < info->n_layers; i++) {
            const joule_info_layer *l = &info->layers[i];
            if (!prunable(l->op_type))
                continue;
            const joule_node *n = jr_find_node(m0->graph, l->name);
            if (!n || !jr_node_weight(m0->graph, n))
                continue;
            if (!(layers[n_layers] = strdup(l->name)))
                st = joule_fail(err, JOULE_ERR_NOMEM, "sweep: out of memory");
            else
                n_layers++;
        }
    }
    joule_info_free(info);
    joule_model_free(m0);
    if (!st)
        st = joule_dataset_open(opt->data, &dopt, &c.eval, err);
    if (!st && opt->quant == JOULE_SWEEP_QUANT_INT8_STATIC && !opt->sensitivity) {
        joule_dataset_options copt;
        if (opt->dataset)
            copt = *opt->dataset;
        else
            memset(&copt, 0, sizeof copt);
        copt.labels = NULL;
        copt.limit = opt->calib_limit ? opt->calib_limit : 256;
        st = joule_dataset_open(opt->calib, &copt, &c.calib, err);
    }
    if (!st && (st = joule_report_doc_set(&d->data, opt->data, err)) == JOULE_OK)
        d->images = joule_dataset_count(c.eval);
    size_t total = 1 + (opt->sensitivity ? n_layers : opt->n_sparsities);
    size_t first = d->n_sweep;
    /* the baseline: cleanup only, no quantization */
    if (!st) {
        joule_sweep_point pt = {.label = (char *)"baseline", .sparsity = -1};
        st = measure_point(model_path, &c, &pt, JOULE_SWEEP_QUANT_NONE, err);
        if (!st)
            st = joule_report_doc_add_point(d, &pt, err);
        free(pt.error);
        if (opt->progress)
            opt->progress(opt->progress_user, 1, total);
    }
    for (size_t i = 0; !st && i < total - 1; i++) {
        char label[512];
        joule_sweep_point pt = {.label = label};
        joule_sweep_quant q = opt->sensitivity ? JOULE_SWEEP_QUANT_NONE : opt->quant;
        if (opt->sensitivity) {
            pt.sparsity = opt->sparsities[0];
            pt.layer = layers[i];
            snprintf(label, sizeof label, "%s at %.0f%%", layers[i], 100 * pt.sparsity);
        } else {
            pt.sparsity = opt->sparsities[i];
            if (q != JOULE_SWEEP_QUANT_NONE)
                pt.quant = (char *)joule_sweep_quant_name(q);
            snprintf(label, sizeof label, "prune %.2f%s%s", pt.sparsity, pt.quant ? " + " : "",
                     pt.quant ? pt.quant : "");
        }
        st = measure_point(model_path, &c, &pt, q, err);
        if (!st)
            st = joule_report_doc_add_point(d, &pt, err);
        free(pt.error);
        if (opt->progress)
            opt->progress(opt->progress_user, i + 2, total);
    }
    if (!st) {
        const joule_sweep_point *base = &d->sweep[first];
        for (size_t i = first; i < d->n_sweep; i++) {
            joule_sweep_point *p = &d->sweep[i];
            p->accuracy_drop = base->top1.measured && p->top1.measured
                                   ? base->top1.value - p->top1.value
                                   : 0;
        }
        d->base.top1 = base->top1;
        if (opt->sensitivity) {
            d->sweep_sensitivity = true;
            qsort(d->sweep + first, d->n_sweep - first, sizeof *d->sweep, cmp_drop);
        }
        joule_report_doc_mark_frontier(d);
    }
    for (size_t i = 0; i < n_layers; i++)
        free(layers[i]);
    free(layers);
    joule_dataset_free(c.eval);
    joule_dataset_free(c.calib);
    return st;
}

/* eval/report_measure.c: fills a report document by measuring two model files: totals from
 * joule_model_info, per-layer sparsity and precision read from the weights themselves (each
 * original layer is found again in the candidate by node name, its weight followed back through
 * DequantizeLinear and Cast to the stored tensor), accuracy and agreement through the evaluator,
 * and latency from interleaved timed blocks of single-item runs on the engine. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "joule/accuracy.h"
#include "joule/energy.h"
#include "joule/engine.h"
#include "joule/info.h"
#include "joule/onnx.h"
#include "report_internal.h"

void joule_report_defaults(joule_report_options *o)
{
    memset(o, 0, sizeof *o);
}

/* The model file plus its side file PATH.data when there is one. */
uint64_t jr_file_bytes(const char *path)
{
    struct stat sb;
    uint64_t n = stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
    size_t len = strlen(path) + 6;
    char *data = malloc(len);
    if (data) {
        snprintf(data, len, "%s.data", path);
        if (stat(data, &sb) == 0)
            n += (uint64_t)sb.st_size;
        free(data);
    }
    return n;
}

/* Zero elements of a constant tensor (floats compare by value, so -0 counts). */
uint64_t jr_count_zeros(const joule_tensor *t)
{
    uint64_t z = 0;
    if (!t || !t->data)
        return 0;
    switch (t->dtype) {
    case JOULE_F32: {
        const float *p = t->data;
        for (size_t i = 0; i < t->count; i++)
            z += p[i] == 0.0f;
        break;
    }
    case JOULE_F64: {
        const double *p = t->data;
        for (size_t i = 0; i < t->count; i++)
            z += p[i] == 0.0;
        break;
    }
    case JOULE_F16:
    case JOULE_BF16: {
        const uint16_t *p = t->data;
        for (size_t i = 0; i < t->count; i++)
            z += (p[i] & 0x7fff) == 0;
        break;
    }
    case JOULE_I8:
    case JOULE_U8:
    case JOULE_BOOL: {
        const uint8_t *p = t->data;
        for (size_t i = 0; i < t->count; i++)
            z += p[i] == 0;
        break;
    }
    case JOULE_I32: {
        const int32_t *p = t->data;
        for (size_t i = 0; i < t->count; i++)
            z += p[i] == 0;
        break;
    }
    default:
        break;
    }
    return z;
}

/* The stored constant behind v: v itself, or what a DequantizeLinear, Cast, Transpose or
 * Identity chain reads (first input), up to a few steps back. */
static const joule_value *stored_constant(const joule_graph *g, const joule_value *v)
{
    for (int step = 0; v && step < 6; step++) {
        if (v->data)
            return v;
        const joule_node *p = joule_graph_producer(g, v);
        if (!p || p->n_inputs < 1)
            return NULL;
        if (strcmp(p->op_type, "DequantizeLinear") && strcmp(p->op_type, "Cast") &&
            strcmp(p->op_type, "Transpose") && strcmp(p->op_type, "Identity"))
            return NULL;
        v = p->inputs[0];
    }
    return NULL;
}

/* The largest stored constant feeding node n (its weight). */
const joule_value *jr_node_weight(const joule_graph *g, const joule_node *n)
{
    const joule_value *best = NULL;
    for (int i = 0; i < n->n_inputs; i++) {
        const joule_value *c = n->inputs[i] ? stored_constant(g, n->inputs[i]) : NULL;
        if (c && (!best || c->data->count > best->data->count))
            best = c;
    }
    return best;
}

const joule_node *jr_find_node(const joule_graph *g, const char *name)
{
    if (!name || !*name)
        return NULL;
    for (size_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i]->name && !strcmp(g->nodes[i]->name, name))
            return g->nodes[i];
    /* passes that replace a node name the new one after it ("conv1_quant") */
    size_t len = strlen(name);
    for (size_t i = 0; i < g->n_nodes; i++) {
        const char *s = g->nodes[i]->name;
        if (s && !strncmp(s, name, len) && s[len] == '_' && jr_node_weight(g, g->nodes[i]))
            return g->nodes[i];
    }
    return NULL;
}

/* A node of cand that reads a stored constant named like base's weight (name or name_suffix):
 * catches layers whose node was replaced under a new name. */
static const joule_node *find_by_weight(const joule_graph *g, const char *wname)
{
    if (!wname || !*wname)
        return NULL;
    size_t len = strlen(wname);
    for (size_t i = 0; i < g->n_nodes; i++) {
        const joule_value *w = jr_node_weight(g, g->nodes[i]);
        if (w && w->name && !strncmp(w->name, wname, len) && (!w->name[len] || w->name[len] == '_'))
            return g->nodes[i];
    }
    return NULL;
}

static void scales_from_changes(const joule_report *ch, const char *node, joule_report_layer *l)
{
    if (!ch)
        return;
    for (size_t i = 0; i < ch->n; i++) {
        const joule_layer_change *r = &ch->rows[i];
        if (!r->node || strcmp(r->node, node) || !(r->scale_max > 0))
            continue;
        if (l->scale_max == 0 || r->scale_min < l->scale_min)
            l->scale_min = r->scale_min;
        if (r->scale_max > l->scale_max)
            l->scale_max = r->scale_max;
    }
}

static joule_status add_layers(joule_report_doc *d, const joule_model *base,
                               const joule_model *cand, const joule_info *bi,
                               const joule_report *changes, joule_error *err)
{
    for (size_t i = 0; i < bi->n_layers; i++) {
        const joule_info_layer *il = &bi->layers[i];
        const joule_node *bn = jr_find_node(base->graph, il->name);
        const joule_value *bw = bn ? jr_node_weight(base->graph, bn) : NULL;
        if (!bw) /* a layer info lists whose weight is not a plain stored constant */
            continue;
        joule_report_layer l = {.name = (char *)il->name, .op_type = (char *)il->op_type};
        l.dtype_before = bw->data->dtype;
        l.params_before = bw->data->count;
        l.bytes_before = bw->data->nbytes;
        l.sparsity_before = bw->data->count ? (double)jr_count_zeros(bw->data) / (double)bw->data->count
                                            : 0;
        const joule_node *cn = jr_find_node(cand->graph, il->name);
        if (!cn || !jr_node_weight(cand->graph, cn))
            cn = find_by_weight(cand->graph, bw->name);
        const joule_value *cw = cn ? jr_node_weight(cand->graph, cn) : NULL;
        if (!cw) {
            l.removed = true;
            l.dtype_after = l.dtype_before;
        } else {
            l.dtype_after = cw->data->dtype;
            l.params_after = cw->data->count;
            l.bytes_after = cw->data->nbytes;
            l.sparsity_after =
                cw->data->count ? (double)jr_count_zeros(cw->data) / (double)cw->data->count : 0;
        }
        scales_from_changes(changes, il->name, &l);
        joule_status st = joule_report_doc_add_layer(d, &l, err);
        if (st)
            return st;
    }
    return JOULE_OK;
}

joule_status jr_fill_model(joule_report_model *rm, const char *path, joule_model *m,
                            joule_info **info_out, joule_error *err)
{
    joule_info *info;
    joule_status st = joule_model_info(m, NULL, 0, &info, err);
    if (st)
        return st;
    if ((st = joule_report_doc_set(&rm->path, path, err))) {
        joule_info_free(info);
        return st;
    }
    rm->file_bytes = jr_file_bytes(path);
    rm->params = info->total_params;
    rm->param_bytes = info->total_bytes;
    rm->macs = info->total_macs;
    rm->nodes = info->total_nodes;
    uint64_t w = 0, z = 0;
    for (size_t i = 0; i < info->n_layers; i++) {
        const joule_node *n = jr_find_node(m->graph, info->layers[i].name);
        const joule_value *v = n ? jr_node_weight(m->graph, n) : NULL;
        if (!v)
            continue;
        w += v->data->count;
        z += jr_count_zeros(v->data);
    }
    rm->weight_sparsity = w ? (double)z / (double)w : 0;
    *info_out = info;
    return JOULE_OK;
}

/* ---- latency ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct timed {
    joule_session *s;
    joule_tensor **inputs;
    size_t n_inputs;
    size_t reps;      /* runs per timed block */
    double *samples;  /* ms per run, one per block */
} timed;

static void timed_free(timed *t)
{
    joule_session_free(t->s);
    for (size_t i = 0; i < t->n_inputs; i++)
        joule_tensor_free(t->inputs[i]);
    free(t->inputs);
    free(t->samples);
    memset(t, 0, sizeof *t);
}

/* A session for one item per run, with inputs of deterministic pseudo-random values in [0, 1)
 * (symbolic dims taken as 1). */
static joule_status timed_make(const joule_model *m, int threads, size_t trials, timed *t,
                               joule_error *err)
{
    memset(t, 0, sizeof *t);
    const joule_graph *g = m->graph;
    joule_input_shape *shapes = calloc(g->n_inputs ? g->n_inputs : 1, sizeof *shapes);
    if (!shapes)
        return joule_fail(err, JOULE_ERR_NOMEM, "latency: out of memory");
    size_t ns = 0;
    for (size_t i = 0; i < g->n_inputs; i++) {
        const joule_value *v = g->inputs[i];
        if (v->data || v->shape.rank < 0)
            continue;
        shapes[ns].name = v->name;
        shapes[ns].shape = v->shape;
        for (int k = 0; k < v->shape.rank; k++) {
            if (shapes[ns].shape.dims[k].size <= 0) {
                shapes[ns].shape.dims[k].size = 1;
                shapes[ns].shape.dims[k].sym = NULL;
            }
        }
        ns++;
    }
    joule_session_options so = {.backend = JOULE_BACKEND_CPU, .threads = threads > 0 ? threads : 1,
                                .input_shapes = shapes, .n_input_shapes = ns};
    joule_status st = joule_session_create(m, &so, &t->s, err);
    free(shapes);
    if (st)
        return st;
    t->n_inputs = joule_session_n_inputs(t->s);
    t->inputs = calloc(t->n_inputs ? t->n_inputs : 1, sizeof *t->inputs);
    t->samples = calloc(trials, sizeof *t->samples);
    if (!t->inputs || !t->samples) {
        timed_free(t);
        return joule_fail(err, JOULE_ERR_NOMEM, "latency: out of memory");
    }
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < t->n_inputs; i++) {
        const joule_value *v = joule_session_input(t->s, i);
        int64_t dims[JOULE_MAX_RANK];
        int rank = v->shape.rank < 0 ? 0 : v->shape.rank;
        for (int k = 0; k < rank; k++)
            dims[k] = v->shape.dims[k].size > 0 ? v->shape.dims[k].size : 1;
        joule_dtype dt = v->dtype == JOULE_UNDEFINED ? JOULE_F32 : v->dtype;
        if ((st = joule_tensor_new(dt, rank, dims, &t->inputs[i], err))) {
            timed_free(t);
            return st;
        }
        if (dt == JOULE_F32) {
            float *p = joule_tensor_mutable_data(t->inputs[i]);
            for (size_t k = 0; p && k < t->inputs[i]->count; k++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                p[k] = (float)(x >> 40) / (float)(1u << 24);
            }
        }
    }
    return JOULE_OK;
}

static joule_status timed_block(timed *t, size_t reps, double *ms, joule_error *err)
{
    double t0 = now_s();
    for (size_t r = 0; r < reps; r++) {
        joule_status st = joule_session_run(t->s, (const joule_tensor *const *)t->inputs,
                                            t->n_inputs, err);
        if (st)
            return st;
    }
    *ms = (now_s() - t0) * 1e3 / (double)reps;
    return JOULE_OK;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static joule_estimate median_estimate(double *v, size_t n)
{
    joule_estimate e = {0};
    if (n == 0)
        return e;
    qsort(v, n, sizeof *v, cmp_double);
    size_t lo, hi;
    joule_median_interval(n, &lo, &hi);
    e.measured = true;
    e.value = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    e.lo = v[lo];
    e.hi = v[hi];
    return e;
}

/* Sets the block length of t so one block lasts about 5 ms (at most 4096 runs), after three
 * warm-up runs. */
static joule_status calibrate_block(timed *t, joule_error *err)
{
    double ms = 0;
    joule_status st = JOULE_OK;
    for (int w = 0; w < 3 && !st; w++)
        st = timed_block(t, 1, &ms, err);
    t->reps = 1;
    while (!st && ms * (double)t->reps < 5.0 && t->reps < 4096) {
        t->reps *= 2;
        st = timed_block(t, t->reps, &ms, err);
    }
    return st;
}

joule_status jr_latency_one(const joule_model *m, int threads, size_t trials,
                            joule_estimate *out, joule_error *err)
{
    memset(out, 0, sizeof *out);
    if (!trials)
        trials = 21;
    timed t;
    joule_status st = timed_make(m, threads, trials, &t, err);
    if (st)
        return st;
    st = calibrate_block(&t, err);
    for (size_t i = 0; i < trials && !st; i++)
        st = timed_block(&t, t.reps, &t.samples[i], err);
    if (!st)
        *out = median_estimate(t.samples, trials);
    timed_free(&t);
    return st;
}

/* Times base and cand one item per run: each block repeats runs for about 5 ms, blocks of the two
 * models alternate (ABBA) so drift in clock speed or load hits both alike. */
static joule_status measure_latency(const joule_model *base, const joule_model *cand,
                                    const joule_report_options *opt, joule_report_doc *d,
                                    joule_error *err)
{
    size_t trials = opt->latency_trials ? opt->latency_trials : 21;
    timed t[2];
    joule_status st = timed_make(base, opt->threads, trials, &t[0], err);
    if (st)
        return st;
    if ((st = timed_make(cand, opt->threads, trials, &t[1], err))) {
        timed_free(&t[0]);
        return st;
    }
    for (int k = 0; k < 2 && !st; k++)
        st = calibrate_block(&t[k], err);
    for (size_t i = 0; i < trials && !st; i++) {
        for (int j = 0; j < 2 && !st; j++) {
            int k = (i % 2) ? 1 - j : j;
            st = timed_block(&t[k], t[k].reps, &t[k].samples[i], err);
        }
        if (opt->progress)
            opt->progress(opt->progress_user, "latency", i + 1, trials);
    }
    if (!st) {
        d->base.latency_ms = median_estimate(t[0].samples, trials);
        d->cand.latency_ms = median_estimate(t[1].samples, trials);
    }
    timed_free(&t[0]);
    timed_free(&t[1]);
    return st;
}

/* ---- accuracy ---- */

static void acc_cb(void *user, size_t done, size_t total)
{
    const joule_report_options *opt = user;
    opt->progress(opt->progress_user, "accuracy", done, total);
}

static joule_estimate rate_estimate(const joule_rate *r)
{
    joule_estimate e = {r->n > 0, r->rate, r->lo, r->hi};
    return e;
}

static joule_status measure_accuracy(const joule_model *base, const joule_model *cand,
                                     const joule_report_options *opt, joule_report_doc *d,
                                     joule_error *err)
{
    joule_dataset_options dopt;
    if (opt->dataset)
        dopt = *opt->dataset;
    else
        memset(&dopt, 0, sizeof dopt);
    if (opt->limit)
        dopt.limit = opt->limit;
    joule_dataset *ds;
    joule_status st = joule_dataset_open(opt->data, &dopt, &ds, err);
    if (st)
        return st;
    joule_eval_options eo = {.backend = JOULE_BACKEND_CPU, .threads = opt->threads,
                             .batch = opt->batch};
    if (opt->progress) {
        eo.progress = acc_cb;
        eo.progress_user = (void *)opt;
    }
    joule_eval_result r;
    st = joule_eval_run(cand, base, ds, &eo, &r, err);
    joule_dataset_free(ds);
    if (st)
        return st;
    d->images = r.images;
    if ((st = joule_report_doc_set(&d->data, opt->data, err))) {
        joule_eval_result_free(&r);
        return st;
    }
    if (r.has_labels) {
        d->cand.top1 = rate_estimate(&r.top1);
        d->cand.top5 = rate_estimate(&r.top5);
        if (r.has_baseline) {
            d->base.top1 = rate_estimate(&r.base_top1);
            d->base.top5 = rate_estimate(&r.base_top5);
        }
    } else {
        st = joule_report_doc_note(d, err, "%s has no labels: accuracy not measured, only "
                                           "agreement with the original", opt->data);
    }
    if (r.has_baseline) {
        d->agreement = rate_estimate(&r.agreement);
        d->mcnemar_b = r.mcnemar_b;
        d->mcnemar_c = r.mcnemar_c;
        d->mcnemar_p = r.mcnemar_p;
    }
    joule_eval_result_free(&r);
    return st;
}

/* ---- energy ---- */

static joule_estimate interval_estimate(const joule_interval *i)
{
    joule_estimate e = {isfinite(i->mean), i->mean, i->lo, i->hi};
    if (!isfinite(e.lo) || !isfinite(e.hi))
        e.lo = e.hi = e.value;
    return e;
}

/* joule_energy_compare on the two files, one item per inference; a failure leaves energy not
 * measured with a note (only running out of memory fails the report). */
static joule_status measure_energy(const char *base_path, const char *cand_path,
                                   const joule_report_options *opt, joule_report_doc *d,
                                   joule_error *err)
{
    joule_energy_options eo;
    memset(&eo, 0, sizeof eo);
    eo.base = base_path;
    eo.candidate = cand_path;
    eo.backend = JOULE_BACKEND_CPU;
    eo.threads = opt->threads > 0 ? opt->threads : 1;
    eo.batch = 1;
    eo.trial.window_s = opt->energy_window_s > 0 ? opt->energy_window_s : 0.5;
    eo.trial.trials = opt->energy_trials ? opt->energy_trials : 10;
    eo.trial.warmup_s = eo.trial.window_s;
    eo.trial.seed = 1;
    if (opt->progress)
        opt->progress(opt->progress_user, "energy", 0, 1);
    joule_energy_result *r = NULL;
    joule_error e = {{0}};
    joule_status st = joule_energy_compare(&eo, &r, &e);
    if (opt->progress)
        opt->progress(opt->progress_user, "energy", 1, 1);
    if (st == JOULE_ERR_NOMEM)
        return joule_fail(err, st, "%s", e.msg);
    if (st)
        return joule_report_doc_note(d, err, "Energy not measured: %s", e.msg);
    joule_report_model *m[2] = {&d->base, &d->cand};
    for (int k = 0; k < 2 && !st; k++) {
        m[k]->energy_j = interval_estimate(&r->models[k].energy_j);
        m[k]->energy_estimated = r->estimated;
        st = joule_report_doc_set(&m[k]->energy_source, r->method, err);
    }
    d->energy_ratio = interval_estimate(&r->ratio);
    char *text = NULL;
    if (!st && !(st = joule_energy_json(r, &text, err)))
        st = joule_report_doc_set(&d->energy_json, text, err);
    free(text);
    text = NULL;
    if (!st && !(st = joule_energy_markdown(r, &text, err)))
        st = joule_report_doc_set(&d->energy_md, text, err);
    free(text);
    text = NULL;
    if (!st && !(st = joule_energy_html(r, &text, err)))
        st = joule_report_doc_set(&d->energy_html, text, err);
    free(text);
    joule_energy_result_free(r);
    return st;
}

joule_status joule_report_measure(const char *base_path, const char *cand_path,
                                  const joule_report_options *opt, joule_report_doc **out,
                                  joule_error *err)
{
    *out = NULL;
    joule_report_options dflt;
    if (!opt) {
        joule_report_defaults(&dflt);
        opt = &dflt;
    }
    joule_report_doc *d = NULL;
    joule_model *base = NULL, *cand = NULL;
    joule_info *bi = NULL, *ci = NULL;
    joule_status st = joule_report_doc_new(NULL, "joule report", &d, err);
    if (!st)
        st = joule_model_load(base_path, &base, err);
    if (!st)
        st = joule_model_load(cand_path, &cand, err);
    if (!st)
        st = jr_fill_model(&d->base, base_path, base, &bi, err);
    if (!st)
        st = jr_fill_model(&d->cand, cand_path, cand, &ci, err);
    if (!st) {
        d->has_cand = true;
        st = add_layers(d, base, cand, bi, opt->changes, err);
    }
    if (!st && opt->changes && opt->changes->n) {
        char *rows = NULL;
        st = joule_report_json(opt->changes, &rows, err);
        if (!st)
            st = joule_report_doc_set(&d->changes_json, rows, err);
        free(rows);
        /* what a pass could not do as asked stands among the notes, not only in the rows */
        for (size_t i = 0; i < opt->changes->n && !st; i++) {
            const joule_layer_change *c = &opt->changes->rows[i];
            if (c->warning)
                st = joule_report_doc_note(d, err, "Warning (%s): %s", c->pass ? c->pass : "?",
                                           c->note ? c->note : "");
        }
    }
    if (!st && opt->data)
        st = measure_accuracy(base, cand, opt, d, err);
    if (!st && !opt->skip_latency)
        st = measure_latency(base, cand, opt, d, err);
    if (!st && !opt->skip_energy)
        st = measure_energy(base_path, cand_path, opt, d, err);
    else if (!st)
        st = joule_report_doc_note(d, err, "Energy not measured: left out on request.");
    joule_info_free(bi);
    joule_info_free(ci);
    joule_model_free(base);
    joule_model_free(cand);
    if (st) {
        joule_report_doc_free(d);
        return st;
    }
    *out = d;
    return JOULE_OK;
}

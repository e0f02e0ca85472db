/* compress/calib.c: the calibration driver (calib_internal.h). A private copy of the model gets
 * the tensors to observe as extra graph outputs; batches from the calibration data stream
 * through joule's engine; per tensor only a running minimum/maximum (first pass) and a
 * fixed-range 2048-bin histogram (second pass, for percentile/entropy/MSE) are kept, so memory
 * does not grow with the data set. jq_stream is the same driver for other passes: it hands every
 * batch's observed tensors to a callback (pruning's bias correction keeps per-channel sums). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compress/calib_internal.h"
#include "compress/parallel.h"
#include "joule/dataset.h"
#include "joule/engine.h"
#include "joule/onnx.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Where batches come from: a dataset, or slices of an in-memory tensor. */
typedef struct source {
    joule_dataset *ds;
    bool own_ds;
    const joule_tensor *t;
    size_t pos, limit, served;
    joule_tensor view;
    joule_tensor *batch; /* the dataset's last batch */
    int item_rank;
    int64_t item_dims[JOULE_MAX_RANK];
    char label[256];
} source;

static joule_status source_open(source *s, const joule_static_options *o, joule_error *err)
{
    memset(s, 0, sizeof *s);
    s->limit = o->calib_limit;
    joule_status st;
    if (o->calib) {
        s->ds = o->calib;
        snprintf(s->label, sizeof s->label, "calibration data");
    } else if (o->calib_path) {
        if ((st = joule_dataset_open(o->calib_path, o->calib_dataset, &s->ds, err)))
            return st;
        s->own_ds = true;
        snprintf(s->label, sizeof s->label, "%s", o->calib_path);
    } else if (o->calib_tensor) {
        const joule_tensor *t = o->calib_tensor;
        if (t->dtype != JOULE_F32 || t->rank < 1 || !t->data)
            return joule_fail(err, JOULE_ERR_INVALID,
                              "calibration tensor: float32 [items, ...] expected, got %s rank %d",
                              joule_dtype_name(t->dtype), t->rank);
        s->t = t;
        s->item_rank = t->rank - 1;
        memcpy(s->item_dims, t->dims + 1, (size_t)s->item_rank * sizeof *s->item_dims);
        snprintf(s->label, sizeof s->label, "calibration tensor");
        return JOULE_OK;
    } else {
        return joule_fail(err, JOULE_ERR_INVALID,
                          "int8 static: no calibration data (give a data file, dataset or tensor)");
    }
    joule_dataset_item_shape(s->ds, &s->item_rank, s->item_dims);
    return JOULE_OK;
}

static void source_close(source *s)
{
    joule_tensor_free(s->batch);
    s->batch = NULL;
    if (s->own_ds)
        joule_dataset_free(s->ds);
}

static joule_status source_rewind(source *s, joule_error *err)
{
    s->pos = 0;
    s->served = 0;
    return s->ds ? joule_dataset_rewind(s->ds, err) : JOULE_OK;
}

/* Next batch of up to max items; *out NULL at the end. */
static joule_status source_next(source *s, size_t max, const joule_tensor **out, joule_error *err)
{
    *out = NULL;
    joule_tensor_free(s->batch);
    s->batch = NULL;
    if (s->limit && s->served >= s->limit)
        return JOULE_OK;
    if (s->limit && max > s->limit - s->served)
        max = s->limit - s->served;
    if (s->t) {
        size_t items = (size_t)s->t->dims[0];
        if (s->pos >= items)
            return JOULE_OK;
        size_t n = items - s->pos < max ? items - s->pos : max;
        size_t per = items ? s->t->count / items : 0;
        s->view = *s->t;
        s->view.dims[0] = (int64_t)n;
        s->view.count = n * per;
        s->view.nbytes = s->view.count * sizeof(float);
        s->view.data = (const float *)s->t->data + s->pos * per;
        s->view.owned = NULL;
        s->view.owned_strings = NULL;
        s->view.origin = NULL;
        s->pos += n;
        s->served += n;
        *out = &s->view;
        return JOULE_OK;
    }
    joule_tensor *labels = NULL;
    size_t n = 0;
    joule_status st = joule_dataset_next(s->ds, max, &s->batch, &labels, &n, err);
    joule_tensor_free(labels);
    if (st)
        return st;
    if (n == 0) {
        joule_tensor_free(s->batch);
        s->batch = NULL;
        return JOULE_OK;
    }
    if (s->batch->dtype != JOULE_F32)
        return joule_fail(err, JOULE_ERR_UNSUPPORTED, "%s: batches of %s, float32 expected",
                          s->label, joule_dtype_name(s->batch->dtype));
    s->served += n;
    *out = s->batch;
    return JOULE_OK;
}

static void shape_str(int rank, const int64_t *dims, char *buf, size_t size)
{
    size_t at = 0;
    at += (size_t)snprintf(buf + at, size - at, "[");
    for (int i = 0; i < rank && at < size; i++)
        at += (size_t)snprintf(buf + at, size - at, "%s%lld", i ? "," : "", (long long)dims[i]);
    if (at < size)
        snprintf(buf + at, size - at, "]");
}

/* The copy of m that calibration runs: the observed tensors become graph outputs. */
static joule_status observer_model(const joule_model *m, const char *const *names, size_t n,
                                   joule_model **out, joule_error *err)
{
    *out = NULL;
    void *buf = NULL;
    size_t len = 0;
    joule_status st = joule_model_serialize(m, &buf, &len, err);
    if (st)
        return st;
    st = joule_model_load_buffer(buf, len, "calibration copy", NULL, out, err);
    free(buf);
    if (st)
        return st;
    joule_graph *g = (*out)->graph;
    for (size_t i = 0; i < n && !st; i++) {
        joule_value *v = joule_graph_find_value(g, names[i]);
        if (!v)
            st = joule_fail(err, JOULE_ERR_NOT_FOUND, "calibration: tensor '%s' not in the model",
                            names[i]);
        else if (!(v->flags & JOULE_VALUE_INPUT))
            st = joule_graph_add_output(g, v, err);
    }
    if (st) {
        joule_model_free(*out);
        *out = NULL;
    }
    return st;
}

/* The data source, the observing copy of the model and its session, and where each observed
 * tensor comes from (a session output, or SIZE_MAX for the fed input itself). */
typedef struct runner {
    source src;
    joule_model *cm;
    joule_session *s;
    const joule_value *in;
    size_t batch;
    bool fixed; /* the model's batch size is fixed: partial batches are left out */
    size_t n;
    size_t *out_index;
} runner;

static void runner_close(runner *r)
{
    free(r->out_index);
    joule_session_free(r->s);
    joule_model_free(r->cm);
    source_close(&r->src);
    memset(r, 0, sizeof *r);
}

static joule_status runner_open(runner *r, const joule_model *m, const joule_static_options *o,
                                const char *const *names, size_t n, joule_error *err)
{
    memset(r, 0, sizeof *r);
    joule_status st = source_open(&r->src, o, err);
    if (st)
        return st;
    r->batch = o->batch ? o->batch : 64;
    r->n = n;
    if (!(r->out_index = calloc(n ? n : 1, sizeof *r->out_index))) {
        st = joule_fail(err, JOULE_ERR_NOMEM, "calibration: out of memory");
        goto fail;
    }
    if ((st = observer_model(m, names, n, &r->cm, err)))
        goto fail;
    /* the one fed input, and its shape against the data's */
    const joule_graph *g = r->cm->graph;
    const joule_value *in = NULL;
    size_t n_fed = 0;
    for (size_t i = 0; i < g->n_inputs; i++)
        if (!g->inputs[i]->data) {
            in = g->inputs[i];
            n_fed++;
        }
    if (n_fed != 1) {
        st = joule_fail(err, JOULE_ERR_UNSUPPORTED,
                        "calibration: the model takes %zu inputs; calibration data feeds one", n_fed);
        goto fail;
    }
    if (in->dtype != JOULE_F32) {
        st = joule_fail(err, JOULE_ERR_UNSUPPORTED, "calibration: input '%s' is %s, not float32",
                        in->name, joule_dtype_name(in->dtype));
        goto fail;
    }
    r->in = in;
    char ds[128], ms[128];
    shape_str(r->src.item_rank, r->src.item_dims, ds, sizeof ds);
    joule_shape_format(&in->shape, ms, sizeof ms);
    bool fits = in->shape.rank < 0 || in->shape.rank == r->src.item_rank + 1;
    for (int d = 0; fits && in->shape.rank > 0 && d < r->src.item_rank; d++)
        if (in->shape.dims[d + 1].size >= 0 && in->shape.dims[d + 1].size != r->src.item_dims[d])
            fits = false;
    if (!fits) {
        st = joule_fail(err, JOULE_ERR_INVALID,
                        "%s: items of shape %s do not fit model input '%s' %s", r->src.label, ds,
                        in->name, ms);
        goto fail;
    }
    /* a model with a fixed batch size gets batches of exactly that size (a last partial one
     * is left out) */
    r->fixed = in->shape.rank > 0 && in->shape.dims[0].size > 0;
    if (r->fixed)
        r->batch = (size_t)in->shape.dims[0].size;
    joule_input_shape shape = {.name = in->name};
    shape.shape.rank = r->src.item_rank + 1;
    shape.shape.dims[0].size = (int64_t)r->batch;
    for (int d = 0; d < r->src.item_rank; d++)
        shape.shape.dims[d + 1].size = r->src.item_dims[d];
    joule_session_options so = {.backend = JOULE_BACKEND_CPU, .threads = o->threads,
                                .input_shapes = &shape, .n_input_shapes = 1};
    if ((st = joule_session_create(r->cm, &so, &r->s, err)))
        goto fail;
    for (size_t i = 0; i < n; i++) {
        r->out_index[i] = SIZE_MAX;
        if (strcmp(names[i], in->name) == 0)
            continue;
        for (size_t k = 0; k < joule_session_n_outputs(r->s); k++)
            if (strcmp(joule_session_output_value(r->s, k)->name, names[i]) == 0)
                r->out_index[i] = k;
        if (r->out_index[i] == SIZE_MAX) {
            st = joule_fail(err, JOULE_ERR_NOT_FOUND, "calibration: cannot observe '%s'",
                            names[i]);
            goto fail;
        }
    }
    return JOULE_OK;
fail:
    runner_close(r);
    return st;
}

/* Runs the next batch; *x is NULL at the end of the data. */
static joule_status runner_next(runner *r, const joule_tensor **x, joule_error *err)
{
    for (;;) {
        joule_status st = source_next(&r->src, r->batch, x, err);
        if (st || !*x)
            return st;
        if (r->fixed && (size_t)(*x)->dims[0] != r->batch)
            continue;
        const joule_tensor *ins[1] = {*x};
        return joule_session_run(r->s, ins, 1, err);
    }
}

/* Observed tensor i of the last batch x. */
static const joule_tensor *runner_tensor(const runner *r, size_t i, const joule_tensor *x)
{
    return r->out_index[i] == SIZE_MAX ? x : joule_session_output(r->s, r->out_index[i]);
}

/* The error for a pass that saw no items. */
static joule_status runner_empty(const runner *r, joule_error *err)
{
    if (r->fixed && r->src.served > 0)
        return joule_fail(err, JOULE_ERR_INVALID,
                          "%s: %zu items, fewer than the model's fixed batch of %zu", r->src.label,
                          r->src.served, r->batch);
    return joule_fail(err, JOULE_ERR_INVALID, "%s: the calibration set is empty", r->src.label);
}

joule_status jq_stream(const joule_model *m, const joule_static_options *o,
                       const char *const *names, size_t n, jq_visit_fn visit, void *ctx,
                       size_t *items, joule_error *err)
{
    *items = 0;
    runner r;
    joule_status st = runner_open(&r, m, o, names, n, err);
    if (st)
        return st;
    const joule_tensor **outs = calloc(n ? n : 1, sizeof *outs);
    if (!outs)
        st = joule_fail(err, JOULE_ERR_NOMEM, "calibration: out of memory");
    if (!st)
        st = source_rewind(&r.src, err);
    while (!st) {
        const joule_tensor *x;
        if ((st = runner_next(&r, &x, err)) || !x)
            break;
        for (size_t i = 0; i < n; i++)
            outs[i] = runner_tensor(&r, i, x);
        *items += (size_t)x->dims[0];
        st = visit(ctx, outs, n, err);
    }
    if (!st && *items == 0)
        st = runner_empty(&r, err);
    free(outs);
    runner_close(&r);
    return st;
}

typedef struct obs {
    jq_hist h;
    double min, max;
} obs;

joule_status jq_calibrate(const joule_model *m, const joule_static_options *o,
                          jq_calib_tensor *t, size_t n, joule_calib_stats *stats,
                          joule_error *err)
{
    double t0 = now_s();
    runner rn;
    memset(&rn, 0, sizeof rn);
    joule_status st;
    obs *ob = calloc(n ? n : 1, sizeof *ob);
    const char **names = calloc(n ? n : 1, sizeof *names);
    if (!ob || !names) {
        free(ob);
        free(names);
        return joule_fail(err, JOULE_ERR_NOMEM, "calibration: out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        names[i] = t[i].name;
        ob[i].min = INFINITY;
        ob[i].max = -INFINITY;
    }
    if ((st = runner_open(&rn, m, o, names, n, err)))
        goto done;

    /* pass 1: ranges */
    size_t items = 0;
    if ((st = source_rewind(&rn.src, err)))
        goto done;
    for (;;) {
        const joule_tensor *x;
        if ((st = runner_next(&rn, &x, err)))
            goto done;
        if (!x)
            break;
        items += (size_t)x->dims[0];
        for (size_t i = 0; i < n; i++) {
            const joule_tensor *ot = runner_tensor(&rn, i, x);
            const float *p = ot->data;
            double lo = ob[i].min, hi = ob[i].max;
            for (size_t k = 0; k < ot->count; k++) {
                float v = p[k];
                if (v < lo && isfinite(v))
                    lo = v;
                if (v > hi && isfinite(v))
                    hi = v;
            }
            ob[i].min = lo;
            ob[i].max = hi;
        }
    }
    if (items == 0) {
        st = runner_empty(&rn, err);
        goto done;
    }
    int passes = 1;
    if (o->method != JOULE_CALIB_MINMAX) {
        /* pass 2: histograms over the ranges just found */
        passes = 2;
        for (size_t i = 0; i < n; i++) {
            double mn = isfinite(ob[i].min) ? ob[i].min : 0, mx = isfinite(ob[i].max) ? ob[i].max : 0;
            bool abs = o->symmetric_activations || o->method == JOULE_CALIB_ENTROPY || mn >= 0;
            double lo = abs ? 0 : mn, hi = abs ? fmax(fabs(mn), fabs(mx)) : mx;
            if ((st = jq_hist_init(&ob[i].h, lo, hi, abs, JQ_HIST_BINS, err)))
                goto done;
        }
        if ((st = source_rewind(&rn.src, err)))
            goto done;
        for (;;) {
            const joule_tensor *x;
            if ((st = runner_next(&rn, &x, err)))
                goto done;
            if (!x)
                break;
            for (size_t i = 0; i < n; i++) {
                const joule_tensor *ot = runner_tensor(&rn, i, x);
                jq_hist_add(&ob[i].h, ot->data, ot->count);
            }
        }
    }
    /* Each tensor's range search is independent (the entropy method's KL sweep over 2048 bins
     * is most of its calibration time on small models), so tensors share out the threads; each
     * writes only its own t[i], so results do not depend on the thread count. */
    int nt = 1;
#if HAVE_OPENMP
    nt = o->threads > 0 ? o->threads : omp_get_max_threads();
    nt = nt < 1 ? 1 : nt;
#pragma omp parallel for num_threads(nt) schedule(dynamic) if (nt > 1 && n > 1)
#endif
    for (size_t i = 0; i < n; i++) {
        double mn = isfinite(ob[i].min) ? ob[i].min : 0, mx = isfinite(ob[i].max) ? ob[i].max : 0;
        t[i].min = mn;
        t[i].max = mx;
        t[i].lo = mn;
        t[i].hi = mx;
        const jq_hist *h = &ob[i].h;
        bool sym = o->symmetric_activations;
        switch (t[i].minmax ? JOULE_CALIB_MINMAX : o->method) {
        case JOULE_CALIB_MINMAX:
            break;
        case JOULE_CALIB_PERCENTILE:
            jq_range_percentile(h, o->percentile, &t[i].lo, &t[i].hi);
            break;
        case JOULE_CALIB_ENTROPY:
            jq_range_entropy(h, 128, !sym, &t[i].lo, &t[i].hi);
            break;
        case JOULE_CALIB_MSE:
            jq_range_mse(h, sym ? 254 : 255, sym, &t[i].lo, &t[i].hi);
            break;
        }
    }
    if (stats) {
        stats->items = items;
        stats->passes = passes;
        stats->tensors = n;
        stats->seconds = now_s() - t0;
        stats->items_per_s =
            stats->seconds > 0 ? (double)(items * (size_t)passes) / stats->seconds : 0;
    }
done:
    for (size_t i = 0; i < n; i++)
        jq_hist_free(&ob[i].h);
    free(ob);
    free(names);
    runner_close(&rn);
    return st;
}

/* eval/accuracy.c: joule_eval_run: streams a dataset through one model (and a baseline) in
 * batches and counts top-1/top-5 hits, agreement and McNemar's discordant pairs, and sums output
 * errors. For per-layer errors it loads private copies of both models, declares the intermediate
 * tensors they share by name as extra graph outputs, and runs those copies beside the real ones,
 * so the accuracy itself is measured on the unmodified graphs. Uses the public API only. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "joule/accuracy.h"
#include "joule/infer.h"
#include "joule/onnx.h"

#define DEFAULT_BATCH 64

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static char *dup_str(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static const char *model_label(const joule_model *m)
{
    return m->path ? m->path : "model";
}

static void format_dims(int rank, const int64_t *dims, const char *first, char *buf, size_t size)
{
    size_t off = (size_t)snprintf(buf, size, "[%s", first ? first : "");
    for (int d = 0; d < rank && off < size; d++)
        off += (size_t)snprintf(buf + off, size - off, "%s%lld", (d || first) ? "," : "",
                                (long long)dims[d]);
    if (off < size)
        snprintf(buf + off, size - off, "]");
}

/* ---- one model fed from the dataset ---- */

typedef struct ev_model {
    const joule_model *m;
    joule_session *s;
    const joule_value *in;         /* the graph input fed with items */
    int item_rank;                 /* item shape as the model takes it */
    int64_t item_dims[JOULE_MAX_RANK];
    size_t item_elems;
    int64_t fixed_batch;           /* > 0: the model's batch dim is this size */
    joule_tensor *feed;            /* padded or converted batch, when needed */
    float *scores;                 /* first output as float32 when it is not */
    size_t scores_cap;
} ev_model;

static void ev_model_free(ev_model *e)
{
    joule_session_free(e->s);
    joule_tensor_free(e->feed);
    free(e->scores);
    memset(e, 0, sizeof *e);
}

/* Squeezed dims (1s dropped) equal? */
static bool same_squeezed(int ra, const int64_t *a, int rb, const int64_t *b)
{
    int i = 0, j = 0;
    for (;;) {
        while (i < ra && a[i] == 1)
            i++;
        while (j < rb && b[j] == 1)
            j++;
        if (i == ra || j == rb)
            return i == ra && j == rb;
        if (a[i++] != b[j++])
            return false;
    }
}

/* Finds the input, checks it against the dataset's items and picks the item shape to feed. */
static joule_status ev_model_bind(ev_model *e, const joule_model *m, const joule_dataset *ds,
                                  joule_error *err)
{
    memset(e, 0, sizeof *e);
    e->m = m;
    const joule_graph *g = m->graph;
    size_t n_in = 0;
    for (size_t i = 0; i < g->n_inputs; i++)
        if (!g->inputs[i]->data) {
            if (!e->in)
                e->in = g->inputs[i];
            n_in++;
        }
    if (n_in != 1)
        return joule_fail(err, JOULE_ERR_UNSUPPORTED, "%s: eval feeds one input, the model takes "
                          "%zu", model_label(m), n_in);
    if (g->n_outputs == 0)
        return joule_fail(err, JOULE_ERR_INVALID, "%s: the model has no outputs", model_label(m));
    int rank;
    int64_t dims[JOULE_MAX_RANK];
    joule_dataset_item_shape(ds, &rank, dims);
    size_t elems = 1;
    for (int d = 0; d < rank; d++)
        elems *= (size_t)dims[d];
    const joule_shape *sh = &e->in->shape;
    if (sh->rank < 0) { /* unknown: take the items as they come */
        e->item_rank = rank;
        memcpy(e->item_dims, dims, (size_t)rank * sizeof *dims);
        e->item_elems = elems;
        return JOULE_OK;
    }
    if (sh->rank < 1)
        return joule_fail(err, JOULE_ERR_UNSUPPORTED, "%s: input '%s' has no batch dim",
                          model_label(m), e->in->name);
    if (sh->dims[0].size > 0)
        e->fixed_batch = sh->dims[0].size;
    /* the same rank with every known dim equal, or (all dims known) the same elements after
     * dropping 1s or flattening: [1,28,28] feeds [28,28,1] or [784] but not [3,32,32] from
     * [32,32,3] */
    bool ok = sh->rank - 1 == rank;
    for (int d = 0; ok && d < rank; d++)
        ok = sh->dims[d + 1].size < 0 || sh->dims[d + 1].size == dims[d];
    if (ok) {
        e->item_rank = rank;
        memcpy(e->item_dims, dims, (size_t)rank * sizeof *dims);
        e->item_elems = elems;
        return JOULE_OK;
    }
    int64_t want[JOULE_MAX_RANK];
    bool known = true;
    size_t want_elems = 1;
    for (int d = 1; d < sh->rank; d++) {
        want[d - 1] = sh->dims[d].size;
        known = known && want[d - 1] >= 0;
        if (known)
            want_elems *= (size_t)want[d - 1];
    }
    if (known && want_elems == elems &&
        (sh->rank == 2 || same_squeezed(sh->rank - 1, want, rank, dims))) {
        e->item_rank = sh->rank - 1;
        memcpy(e->item_dims, want, (size_t)e->item_rank * sizeof *want);
        e->item_elems = elems;
        return JOULE_OK;
    }
    char have_s[160], want_s[160];
    format_dims(rank, dims, NULL, have_s, sizeof have_s);
    joule_shape_format(sh, want_s, sizeof want_s);
    return joule_fail(err, JOULE_ERR_INVALID, "%s: items are %s but %s's input '%s' wants %s "
                      "(wrong image size or layout?)", joule_dataset_path(ds), have_s,
                      model_label(m), e->in->name, want_s);
}

static joule_status ev_model_open(ev_model *e, const joule_eval_options *opt, size_t batch,
                                  joule_error *err)
{
    joule_input_shape is;
    memset(&is, 0, sizeof is);
    is.name = e->in->name;
    is.shape.rank = e->item_rank + 1;
    is.shape.dims[0].size = e->fixed_batch > 0 ? e->fixed_batch : (int64_t)batch;
    for (int d = 0; d < e->item_rank; d++)
        is.shape.dims[d + 1].size = e->item_dims[d];
    joule_session_options so = {
        .backend = opt->backend,
        .threads = opt->threads,
        .input_shapes = &is,
        .n_input_shapes = 1,
    };
    return joule_session_create(e->m, &so, &e->s, err);
}

/* Runs the model on n items (images holds them as float32 [n, item...]). */
static joule_status ev_model_run(ev_model *e, joule_tensor *images, size_t n, joule_error *err)
{
    joule_dtype want = e->in->dtype == JOULE_UNDEFINED ? JOULE_F32 : e->in->dtype;
    int64_t b = e->fixed_batch > 0 ? e->fixed_batch : (int64_t)n;
    const joule_tensor *feed = images;
    if ((int64_t)n == b && want == JOULE_F32) {
        /* feed in place with the model's item dims (same elements) */
        images->rank = e->item_rank + 1;
        images->dims[0] = b;
        memcpy(images->dims + 1, e->item_dims, (size_t)e->item_rank * sizeof *images->dims);
    } else {
        const joule_dtype_traits *tr = joule_dtype_info(want);
        if (!tr->from_f32)
            return joule_fail(err, JOULE_ERR_UNSUPPORTED, "%s: input '%s' is %s; eval feeds "
                              "numbers", model_label(e->m), e->in->name, joule_dtype_name(want));
        if (!e->feed || e->feed->dims[0] != b || e->feed->dtype != want) {
            joule_tensor_free(e->feed);
            e->feed = NULL;
            int64_t dims[JOULE_MAX_RANK];
            dims[0] = b;
            memcpy(dims + 1, e->item_dims, (size_t)e->item_rank * sizeof *dims);
            joule_status st = joule_tensor_new(want, e->item_rank + 1, dims, &e->feed, err);
            if (st)
                return st;
        }
        void *dst = joule_tensor_mutable_data(e->feed);
        if (!dst)
            return joule_fail(err, JOULE_ERR_NOMEM, "eval: out of memory");
        const float *src = images->data;
        size_t used = n * e->item_elems;
        if (want == JOULE_F32)
            memcpy(dst, src, used * sizeof *src);
        else
            for (size_t i = 0; i < used; i++)
                tr->from_f32(dst, i, src[i]);
        if (used < e->feed->count) /* padding of a fixed batch */
            memset((unsigned char *)dst + joule_dtype_bytes(want, used), 0,
                   e->feed->nbytes - joule_dtype_bytes(want, used));
        feed = e->feed;
    }
    return joule_session_run(e->s, &feed, 1, err);
}

/* Output o of the last run as float32 rows: *per elements for each of the n items. */
static joule_status ev_output_rows(ev_model *e, size_t o, size_t n, const float **rows,
                                   size_t *per, float **scratch, size_t *cap, joule_error *err)
{
    const joule_tensor *t = joule_session_output(e->s, o);
    const char *name = joule_session_output_value(e->s, o)->name;
    int64_t b = e->fixed_batch > 0 ? e->fixed_batch : (int64_t)n;
    if (!t || t->rank < 1 || t->dims[0] != b)
        return joule_fail(err, JOULE_ERR_INVALID, "%s: output '%s' has no batch dim of %lld",
                          model_label(e->m), name, (long long)b);
    *per = t->count / (size_t)b;
    size_t used = n * *per;
    if (t->dtype == JOULE_F32) {
        *rows = t->data;
        return JOULE_OK;
    }
    const joule_dtype_traits *tr = joule_dtype_info(t->dtype);
    if (!tr->to_f32)
        return joule_fail(err, JOULE_ERR_UNSUPPORTED, "%s: output '%s' is %s, not numbers",
                          model_label(e->m), name, joule_dtype_name(t->dtype));
    if (used > *cap) {
        float *r = realloc(*scratch, used * sizeof *r);
        if (!r)
            return joule_fail(err, JOULE_ERR_NOMEM, "eval: out of memory");
        *scratch = r;
        *cap = used;
    }
    for (size_t i = 0; i < used; i++)
        (*scratch)[i] = tr->to_f32(t->data, i);
    *rows = *scratch;
    return JOULE_OK;
}

/* ---- scoring ---- */

/* Class with the highest score (first of ties; NaN never wins unless all are NaN). */
/* Makes *p hold at least n predictions; the capacity is the power of two at or above n, so
 * most batches realloc to the size the block already has. */
static joule_status grow_predictions(int64_t **p, size_t n, joule_error *err)
{
    if (n > SIZE_MAX / (2 * sizeof **p))
        return joule_fail(err, JOULE_ERR_NOMEM, "eval: too many items");
    size_t cap = 64;
    while (cap < n)
        cap *= 2;
    int64_t *q = realloc(*p, cap * sizeof *q);
    if (!q)
        return joule_fail(err, JOULE_ERR_NOMEM, "eval: out of memory");
    *p = q;
    return JOULE_OK;
}

static size_t argmax(const float *x, size_t k)
{
    size_t best = 0;
    for (size_t i = 1; i < k; i++)
        if (x[i] > x[best] || (isnan(x[best]) && !isnan(x[i])))
            best = i;
    return best;
}

/* Is class c among the top k of x? Rank = classes scoring higher, plus equal ones before it. */
static bool in_topk(const float *x, size_t n, size_t c, size_t k)
{
    float v = x[c];
    if (isnan(v))
        return false;
    size_t rank = 0;
    for (size_t i = 0; i < n && rank < k; i++)
        if (x[i] > v || (x[i] == v && i < c))
            rank++;
    return rank < k;
}

/* ---- per-layer errors ---- */

typedef struct ev_layer {
    char *m_name, *b_name;     /* the values compared (after QDQ/Cast from the matched name) */
    size_t m_out, b_out;       /* session output indices */
    bool compared;
    joule_error_accum acc;
} ev_layer;

typedef struct ev_layers {
    joule_model *mc, *bc;
    ev_model em, eb;
    size_t n;
    ev_layer *l;
    float *sm, *sb;
    size_t sm_cap, sb_cap;
} ev_layers;

static void ev_layers_free(ev_layers *L)
{
    if (!L)
        return;
    ev_model_free(&L->em);
    ev_model_free(&L->eb);
    for (size_t i = 0; i < L->n; i++) {
        free(L->l[i].m_name);
        free(L->l[i].b_name);
    }
    free(L->l);
    free(L->sm);
    free(L->sb);
    joule_model_free(L->mc);
    joule_model_free(L->bc);
    free(L);
}

static joule_status copy_model(const joule_model *m, joule_model **out, joule_error *err)
{
    if (m->path)
        return joule_model_load(m->path, out, err);
    void *buf = NULL;
    size_t len = 0;
    joule_status st = joule_model_serialize(m, &buf, &len, err);
    if (st)
        return st;
    st = joule_model_load_buffer(buf, len, "model", NULL, out, err);
    free(buf);
    return st;
}

static bool is_float(joule_dtype dt)
{
    return dt == JOULE_F32 || dt == JOULE_F16 || dt == JOULE_BF16 || dt == JOULE_F64;
}

/* The only node reading v, or NULL. */
static joule_node *sole_consumer(const joule_graph *g, const joule_value *v, joule_error *err)
{
    joule_node **c = NULL;
    size_t n = 0;
    if (joule_graph_consumers(g, v, &c, &n, err))
        return NULL;
    joule_node *r = n == 1 ? c[0] : NULL;
    free(c);
    return r;
}

/* The value the rest of the graph sees in place of v: through QuantizeLinear -> DequantizeLinear
 * pairs, a DequantizeLinear of an integer tensor, and Casts between float types. */
static const joule_value *follow(const joule_graph *g, const joule_value *v, joule_error *err)
{
    for (int hop = 0; hop < 16; hop++) {
        joule_node *c = sole_consumer(g, v, err);
        if (!c || c->n_outputs < 1 || !c->outputs[0] || c->n_inputs < 1 || c->inputs[0] != v)
            break;
        if (joule_node_is_op(c, "QuantizeLinear")) {
            joule_node *d = sole_consumer(g, c->outputs[0], err);
            if (!joule_node_is_op(d, "DequantizeLinear") || d->n_outputs < 1 || !d->outputs[0] ||
                d->inputs[0] != c->outputs[0])
                break;
            v = d->outputs[0];
        } else if ((joule_node_is_op(c, "DequantizeLinear") && !is_float(v->dtype)) ||
                   (joule_node_is_op(c, "Cast") && is_float(c->outputs[0]->dtype))) {
            v = c->outputs[0];
        } else {
            break;
        }
    }
    return v;
}

static joule_status add_output(joule_graph *g, joule_value *v, joule_error *err)
{
    for (size_t i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == v)
            return JOULE_OK;
    return joule_graph_add_output(g, v, err);
}

static size_t session_output_index(const joule_session *s, const char *name)
{
    for (size_t i = 0; i < joule_session_n_outputs(s); i++)
        if (strcmp(joule_session_output_value(s, i)->name, name) == 0)
            return i;
    return SIZE_MAX;
}

/* Infers dtypes on a private copy for the batch shape the session will use. */
static joule_status infer_copy(joule_model *c, const ev_model *like, size_t batch,
                               joule_error *err)
{
    joule_input_shape is;
    memset(&is, 0, sizeof is);
    is.name = like->in->name;
    is.shape.rank = like->item_rank + 1;
    is.shape.dims[0].size = like->fixed_batch > 0 ? like->fixed_batch : (int64_t)batch;
    for (int d = 0; d < like->item_rank; d++)
        is.shape.dims[d + 1].size = like->item_dims[d];
    return joule_infer_shapes(c, &is, 1, err);
}

static joule_status ev_layers_open(const ev_model *em, const ev_model *eb, const joule_dataset *ds,
                                   const joule_eval_options *opt, size_t batch, ev_layers **out,
                                   joule_error *err)
{
    *out = NULL;
    ev_layers *L = calloc(1, sizeof *L);
    if (!L)
        return joule_fail(err, JOULE_ERR_NOMEM, "eval: out of memory");
    joule_status st;
    if ((st = copy_model(em->m, &L->mc, err)) || (st = copy_model(eb->m, &L->bc, err)))
        goto fail;
    if ((st = infer_copy(L->mc, em, batch, err)) || (st = infer_copy(L->bc, eb, batch, err)))
        goto fail;
    joule_graph *gm = L->mc->graph, *gb = L->bc->graph;
    size_t cap = 0;
    for (size_t i = 0; i < gb->n_nodes; i++)
        cap += (size_t)gb->nodes[i]->n_outputs;
    L->l = calloc(cap ? cap : 1, sizeof *L->l);
    if (!L->l) {
        st = joule_fail(err, JOULE_ERR_NOMEM, "eval: out of memory");
        goto fail;
    }
    /* every float value a baseline node makes whose name the model also has */
    for (size_t i = 0; i < gb->n_nodes; i++) {
        const joule_node *node = gb->nodes[i];
        if (joule_node_is_op(node, "Constant") || joule_node_is_op(node, "QuantizeLinear") ||
            joule_node_is_op(node, "DequantizeLinear") || joule_node_is_op(node, "Cast"))
            continue;
        for (int o = 0; o < node->n_outputs; o++) {
            const joule_value *bv = node->outputs[o];
            if (!bv || !is_float(bv->dtype) || bv->data)
                continue;
            joule_value *mv = joule_graph_find_value(gm, bv->name);
            if (!mv || mv->data || !joule_graph_producer(gm, mv))
                continue;
            const joule_value *mf = follow(gm, mv, err), *bf = follow(gb, bv, err);
            if (!is_float(mf->dtype) || !is_float(bf->dtype))
                continue;
            bool dup = false;
            for (size_t k = 0; k < L->n && !dup; k++)
                dup = strcmp(L->l[k].m_name, mf->name) == 0 || strcmp(L->l[k].b_name, bf->name) == 0;
            if (dup)
                continue;
            ev_layer *l = &L->l[L->n++];
            if (!(l->m_name = dup_str(mf->name)) || !(l->b_name = dup_str(bf->name))) {
                st = joule_fail(err, JOULE_ERR_NOMEM, "eval: out of memory");
                goto fail;
            }
            if ((st = add_output(gm, (joule_value *)mf, err)) ||
                (st = add_output(gb, (joule_value *)bf, err)))
                goto fail;
        }
    }
    if ((st = ev_model_bind(&L->em, L->mc, ds, err)) || (st = ev_model_bind(&L->eb, L->bc, ds, err)))
        goto fail;
    L->em.fixed_batch = em->fixed_batch;
    L->eb.fixed_batch = eb->fixed_batch;
    if ((st = ev_model_open(&L->em, opt, batch, err)) || (st = ev_model_open(&L->eb, opt, batch, err)))
        goto fail;
    for (size_t k = 0; k < L->n; k++) {
        L->l[k].m_out = session_output_index(L->em.s, L->l[k].m_name);
        L->l[k].b_out = session_output_index(L->eb.s, L->l[k].b_name);
        L->l[k].compared = L->l[k].m_out != SIZE_MAX && L->l[k].b_out != SIZE_MAX;
    }
    *out = L;
    return JOULE_OK;
fail:
    ev_layers_free(L);
    return st;
}

static joule_status ev_layers_batch(ev_layers *L, joule_tensor *images, size_t n,
                                    joule_error *err)
{
    joule_status st = ev_model_run(&L->em, images, n, err);
    if (!st)
        st = ev_model_run(&L->eb, images, n, err);
    for (size_t k = 0; !st && k < L->n; k++) {
        ev_layer *l = &L->l[k];
        if (!l->compared)
            continue;
        const float *rm, *rb;
        size_t pm, pb;
        if ((st = ev_output_rows(&L->em, l->m_out, n, &rm, &pm, &L->sm, &L->sm_cap, err)) ||
            (st = ev_output_rows(&L->eb, l->b_out, n, &rb, &pb, &L->sb, &L->sb_cap, err)))
            break;
        if (pm != pb) { /* e.g. channels pruned away: no element-wise error */
            l->compared = false;
            continue;
        }
        joule_error_accum_add(&l->acc, rb, rm, n * pm);
    }
    return st;
}

/* ---- the evaluation ---- */

static joule_status fill_tensor_error(joule_tensor_error *te, const char *name, const char *bname,
                                      bool compared, const joule_error_accum *acc,
                                      joule_error *err)
{
    te->name = dup_str(name);
    te->baseline_name = dup_str(bname);
    if (!te->name || !te->baseline_name)
        return joule_fail(err, JOULE_ERR_NOMEM, "eval: out of memory");
    te->compared = compared;
    joule_error_accum_finish(acc, &te->e);
    return JOULE_OK;
}

void joule_eval_result_free(joule_eval_result *r)
{
    if (!r)
        return;
    free(r->model);
    free(r->baseline);
    free(r->data);
    free(r->labels);
    for (size_t i = 0; i < r->n_outputs; i++) {
        free(r->outputs[i].name);
        free(r->outputs[i].baseline_name);
    }
    free(r->outputs);
    free(r->predictions);
    free(r->base_predictions);
    for (size_t i = 0; i < r->n_layers; i++) {
        free(r->layers[i].name);
        free(r->layers[i].baseline_name);
    }
    free(r->layers);
    memset(r, 0, sizeof *r);
}

joule_status joule_eval_run(const joule_model *m, const joule_model *baseline, joule_dataset *ds,
                            const joule_eval_options *opt, joule_eval_result *out,
                            joule_error *err)
{
    if (!out)
        return joule_fail(err, JOULE_ERR_INVALID, "eval: no place for the result");
    memset(out, 0, sizeof *out);
    if (!m || !m->graph || !ds)
        return joule_fail(err, JOULE_ERR_INVALID, "eval: no model or dataset");
    joule_eval_options defaults = {0};
    if (!opt)
        opt = &defaults;
    if (opt->layers && !baseline)
        return joule_fail(err, JOULE_ERR_INVALID, "eval: per-layer errors need a baseline model");
    double t0 = now_s();
    joule_eval_result *r = out;
    ev_model em = {0}, eb = {0};
    ev_layers *L = NULL;
    joule_tensor *images = NULL, *labels = NULL;
    float *scr_m = NULL, *scr_b = NULL;
    size_t cap_m = 0, cap_b = 0;
    size_t n_pairs = 0;
    size_t *pair_b = NULL; /* model output i -> baseline output index, SIZE_MAX: none */
    bool *pair_ok = NULL;
    joule_error_accum *acc = NULL;
    size_t top1 = 0, top5 = 0, btop1 = 0, btop5 = 0, agree = 0, mb = 0, mc = 0;

    joule_status st = ev_model_bind(&em, m, ds, err);
    if (!st && baseline)
        st = ev_model_bind(&eb, baseline, ds, err);
    if (st)
        goto done;
    size_t batch = opt->batch ? opt->batch : DEFAULT_BATCH;
    if (em.fixed_batch > 0 && eb.fixed_batch > 0 && em.fixed_batch != eb.fixed_batch) {
        st = joule_fail(err, JOULE_ERR_UNSUPPORTED, "eval: %s has a fixed batch of %lld, %s of "
                        "%lld", model_label(m), (long long)em.fixed_batch, model_label(baseline),
                        (long long)eb.fixed_batch);
        goto done;
    }
    if (em.fixed_batch > 0)
        batch = (size_t)em.fixed_batch;
    else if (eb.fixed_batch > 0)
        batch = (size_t)eb.fixed_batch;
    if ((st = ev_model_open(&em, opt, batch, err)))
        goto done;
    if (baseline && (st = ev_model_open(&eb, opt, batch, err)))
        goto done;
    if (opt->layers && (st = ev_layers_open(&em, &eb, ds, opt, batch, &L, err)))
        goto done;
    if (baseline) {
        /* model outputs against the baseline's: same name, else same position */
        n_pairs = joule_session_n_outputs(em.s);
        pair_b = calloc(n_pairs, sizeof *pair_b);
        pair_ok = calloc(n_pairs, sizeof *pair_ok);
        acc = calloc(n_pairs, sizeof *acc);
        if (!pair_b || !pair_ok || !acc) {
            st = joule_fail(err, JOULE_ERR_NOMEM, "eval: out of memory");
            goto done;
        }
        for (size_t o = 0; o < n_pairs; o++) {
            pair_b[o] = session_output_index(eb.s, joule_session_output_value(em.s, o)->name);
            if (pair_b[o] == SIZE_MAX && o < joule_session_n_outputs(eb.s))
                pair_b[o] = o;
            pair_ok[o] = pair_b[o] != SIZE_MAX;
        }
    }
    if ((st = joule_dataset_rewind(ds, err)))
        goto done;
    size_t total = joule_dataset_count(ds);
    r->has_labels = joule_dataset_has_labels(ds);
    double model_s = 0;
    for (;;) {
        size_t n = 0;
        joule_tensor_free(images);
        joule_tensor_free(labels);
        images = labels = NULL;
        if ((st = joule_dataset_next(ds, batch, &images, &labels, &n, err)))
            goto done;
        if (n == 0)
            break;
        double t1 = now_s();
        if ((st = ev_model_run(&em, images, n, err)))
            goto done;
        model_s += now_s() - t1;
        const float *sm, *sb = NULL;
        size_t k, kb = 0;
        if ((st = ev_output_rows(&em, 0, n, &sm, &k, &scr_m, &cap_m, err)))
            goto done;
        if (k == 0) {
            st = joule_fail(err, JOULE_ERR_INVALID, "%s: the first output has no scores",
                            model_label(m));
            goto done;
        }
        if (r->classes && r->classes != k) {
            st = joule_fail(err, JOULE_ERR_INVALID, "%s: the first output changed from %zu to %zu "
                            "scores per item", model_label(m), r->classes, k);
            goto done;
        }
        r->classes = k;
        if ((st = grow_predictions(&r->predictions, r->images + n, err)) ||
            (baseline && (st = grow_predictions(&r->base_predictions, r->images + n, err))))
            goto done;
        if (baseline) {
            if ((st = ev_model_run(&eb, images, n, err)) ||
                (st = ev_output_rows(&eb, 0, n, &sb, &kb, &scr_b, &cap_b, err)))
                goto done;
            if (kb != k) {
                st = joule_fail(err, JOULE_ERR_INVALID, "eval: %s scores %zu classes, the baseline "
                                "%s %zu", model_label(m), k, model_label(baseline), kb);
                goto done;
            }
        }
        size_t topk = k < 5 ? k : 5;
        const int64_t *lab = labels ? labels->data : NULL;
        for (size_t i = 0; i < n; i++) {
            const float *row = sm + i * k;
            size_t am = argmax(row, k);
            r->predictions[r->images + i] = (int64_t)am;
            bool hit = false, bhit = false;
            if (lab) {
                if (lab[i] < 0 || (uint64_t)lab[i] >= k) {
                    st = joule_fail(err, JOULE_ERR_INVALID, "%s: label %lld of item %zu is outside "
                                    "the model's %zu classes",
                                    joule_dataset_labels_path(ds) ? joule_dataset_labels_path(ds)
                                                                   : joule_dataset_path(ds),
                                    (long long)lab[i], r->images + i, k);
                    goto done;
                }
                size_t c = (size_t)lab[i];
                hit = am == c;
                top1 += hit;
                top5 += in_topk(row, k, c, topk);
            }
            if (baseline) {
                const float *brow = sb + i * k;
                size_t ab = argmax(brow, k);
                r->base_predictions[r->images + i] = (int64_t)ab;
                agree += ab == am;
                if (lab) {
                    size_t c = (size_t)lab[i];
                    bhit = ab == c;
                    btop1 += bhit;
                    btop5 += in_topk(brow, k, c, topk);
                    mb += bhit && !hit;
                    mc += !bhit && hit;
                }
            }
        }
        for (size_t o = 0; baseline && o < n_pairs; o++) {
            if (!pair_ok[o])
                continue;
            const float *xm, *xb;
            size_t pm, pb;
            if (o == 0) {
                xm = sm, xb = sb, pm = k, pb = kb;
            } else if ((st = ev_output_rows(&em, o, n, &xm, &pm, &scr_m, &cap_m, err)) ||
                       (st = ev_output_rows(&eb, pair_b[o], n, &xb, &pb, &scr_b, &cap_b, err))) {
                goto done;
            }
            if (pm != pb) {
                pair_ok[o] = false;
                continue;
            }
            joule_error_accum_add(&acc[o], xb, xm, n * pm);
        }
        if (L && (st = ev_layers_batch(L, images, n, err)))
            goto done;
        r->images += n;
        if (opt->progress)
            opt->progress(opt->progress_user, r->images, total);
    }
    r->topk = r->classes < 5 ? r->classes : 5;
    r->batch = batch;
    r->backend = opt->backend;
    r->threads = opt->threads;
    if (r->has_labels) {
        r->top1 = joule_rate_make(top1, r->images);
        r->top5 = joule_rate_make(top5, r->images);
    }
    if (baseline) {
        r->has_baseline = true;
        r->agreement = joule_rate_make(agree, r->images);
        if (r->has_labels) {
            r->base_top1 = joule_rate_make(btop1, r->images);
            r->base_top5 = joule_rate_make(btop5, r->images);
            r->mcnemar_b = mb;
            r->mcnemar_c = mc;
            r->mcnemar_p = joule_mcnemar_exact_p(mb, mc);
        }
        r->outputs = calloc(n_pairs ? n_pairs : 1, sizeof *r->outputs);
        if (!r->outputs) {
            st = joule_fail(err, JOULE_ERR_NOMEM, "eval: out of memory");
            goto done;
        }
        for (size_t o = 0; o < n_pairs; o++) {
            const char *bname = pair_b[o] != SIZE_MAX
                                    ? joule_session_output_value(eb.s, pair_b[o])->name
                                    : "";
            r->n_outputs++;
            if ((st = fill_tensor_error(&r->outputs[o], joule_session_output_value(em.s, o)->name,
                                        bname, pair_ok[o], &acc[o], err)))
                goto done;
        }
    }
    if (L) {
        r->layers = calloc(L->n ? L->n : 1, sizeof *r->layers);
        if (!r->layers) {
            st = joule_fail(err, JOULE_ERR_NOMEM, "eval: out of memory");
            goto done;
        }
        for (size_t i = 0; i < L->n; i++) {
            ev_layer *l = &L->l[i];
            r->n_layers++;
            if ((st = fill_tensor_error(&r->layers[i], l->m_name, l->b_name, l->compared, &l->acc,
                                        err)))
                goto done;
        }
    }
    r->model = dup_str(m->path);
    r->baseline = baseline ? dup_str(baseline->path) : NULL;
    r->data = dup_str(joule_dataset_path(ds));
    r->labels = dup_str(joule_dataset_labels_path(ds));
    r->model_seconds = model_s;
    r->images_per_second = model_s > 0 ? (double)r->images / model_s : 0;
    r->seconds = now_s() - t0;
done:
    joule_tensor_free(images);
    joule_tensor_free(labels);
    free(scr_m);
    free(scr_b);
    free(pair_b);
    free(pair_ok);
    free(acc);
    ev_layers_free(L);
    ev_model_free(&em);
    ev_model_free(&eb);
    if (st)
        joule_eval_result_free(r);
    return st;
}

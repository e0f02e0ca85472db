/* compress/prune_bias.c: data-aware bias correction for magnitude pruning (joule/prune.h,
 * joule_bias_correction). Pruning shifts and shrinks every pruned layer's output, and the error
 * compounds through the layers after it; this file puts each layer's per-channel mean (and, by
 * default, spread) back:
 *
 *   1. the unpruned model runs over the calibration data with every prunable layer's output
 *      exposed as a graph output (on a private copy, compress/calib.c's jq_stream); only count,
 *      mean and squared deviations per output channel are kept, never activations or weights;
 *   2. the pruning runs (joule_prune_magnitude with the correction off);
 *   3. the pruned layers are ordered by how many pruned layers lie before them on the longest
 *      path from the inputs ("level"); for each level the current model (pruned, earlier levels
 *      already corrected) runs over the data, and each layer of that level gets its output
 *      channel c rescaled by s = std_orig / std_now (weights times s, clamped to [1/2, 2]) and
 *      its bias set so the mean is mean_orig. A layer's output mean is E[W x] + b, so with s = 1
 *      this is b += E[W x] - E[W' x'] with x' the input the corrected earlier layers give it.
 *
 * Channel pruning (joule_prune_channels with correct_bias) runs the same three steps around
 * compress/prune_channels.c, which hands back each shrunken layer's channel map: readers of
 * removed channels are matched on all their output channels (their bias absorbs the removed
 * inputs' mean contribution), shrunken layers on their kept channels.
 *
 * Statistics are taken from the layers' actual outputs (the bias is a per-channel constant:
 * it moves the mean and leaves the spread), which stays exact with padding, groups, strides and
 * dilations. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/calib_internal.h"
#include "compress/compress_internal.h"
#include "joule/prune.h"

#define PASS "prune"
/* bounds of the per-channel rescaling factor */
#define SCALE_LIMIT 2.0

/* Per output channel: values seen, mean and sum of squared deviations (merged batch by batch
 * with Chan et al.'s formula, so no cancellation when the mean is large against the spread). */
typedef struct bc_stats {
    int64_t C;         /* channels, from the first batch */
    double n;
    double *mean, *m2;
} bc_stats;

static void stats_free(bc_stats *s)
{
    free(s->mean);
    free(s->m2);
    memset(s, 0, sizeof *s);
}

/* Merges nb values of mean mb and squared deviations m2b into n values of *mean and *m2. */
static void merge(double n, double *mean, double *m2, double nb, double mb, double m2b)
{
    double tot = n + nb, d = mb - *mean;
    if (tot <= 0)
        return;
    *mean += d * nb / tot;
    *m2 += m2b + d * d * n * nb / tot;
}

static double stats_std(const bc_stats *s, size_t c)
{
    return s->n > 0 && s->m2[c] > 0 ? sqrt(s->m2[c] / s->n) : 0;
}

typedef struct bc_layer {
    char *out;         /* the layer's output value (names survive pruning) */
    uint64_t zeros;    /* zeros in its weight before pruning */
    size_t wcount;     /* its weight's elements before pruning (channel pruning shrinks it) */
    bool *drop;        /* channel pruning: drop[c] for its removed output channels, or NULL */
    int64_t drop_C;    /* entries of drop */
    bool last_axis;    /* channels on the last axis (MatMul), else on axis 1 */
    bool observe;      /* false: cannot be corrected (why says why) */
    char why[128];
    bool pruned;
    int level;
    bc_stats now;      /* the current pass */
    bc_stats orig;     /* the unpruned model's pass */
} bc_layer;

typedef struct bc_pass {
    bc_layer **ls;
    size_t n;
} bc_pass;

static joule_node *layer_node(const joule_graph *g, const bc_layer *L)
{
    const joule_value *v = joule_graph_find_value(g, L->out);
    return v ? joule_graph_producer(g, v) : NULL;
}

/* jq_visit_fn: adds each observed output into its layer's per-channel sums. */
static joule_status accumulate(void *ctx, const joule_tensor *const *outs, size_t n,
                               joule_error *err)
{
    bc_pass *p = ctx;
    for (size_t i = 0; i < n && i < p->n; i++) {
        bc_layer *L = p->ls[i];
        const joule_tensor *t = outs[i];
        int axis = L->last_axis ? t->rank - 1 : 1;
        if (!cz_float_dtype(t->dtype) || axis < 0 || axis >= t->rank)
            return joule_fail(err, JOULE_ERR_UNSUPPORTED,
                              "prune: bias correction: output '%s' is %s of rank %d: no channel axis",
                              L->out, joule_dtype_name(t->dtype), t->rank);
        int64_t C = t->dims[axis];
        bc_stats *st = &L->now;
        if (!st->mean) {
            size_t nc = C > 0 ? (size_t)C : 1;
            st->C = C;
            st->mean = calloc(nc, sizeof *st->mean);
            st->m2 = calloc(nc, sizeof *st->m2);
            if (!st->mean || !st->m2)
                return joule_fail(err, JOULE_ERR_NOMEM, "prune: bias correction: out of memory");
        } else if (C != st->C) {
            return joule_fail(err, JOULE_ERR_INVALID,
                              "prune: bias correction: output '%s' has %lld channels, earlier %lld",
                              L->out, (long long)C, (long long)st->C);
        }
        size_t outer = 1, inner = 1, nc = (size_t)C;
        for (int d = 0; d < axis; d++)
            outer *= (size_t)t->dims[d];
        for (int d = axis + 1; d < t->rank; d++)
            inner *= (size_t)t->dims[d];
        const joule_dtype_traits *tr = joule_dtype_info(t->dtype);
        bool f32 = t->dtype == JOULE_F32;
        const float *x = t->data;
        for (size_t c = 0; c < nc; c++) {
            /* this batch's statistics of channel c, row by row, then into the total */
            double nb = 0, bm = 0, bm2 = 0;
            for (size_t o = 0; o < outer; o++) {
                size_t base = (o * nc + c) * inner;
                double sum = 0, m2 = 0;
                for (size_t k = 0; k < inner; k++)
                    sum += f32 ? x[base + k] : tr->to_f32(t->data, base + k);
                double mr = sum / (double)inner;
                for (size_t k = 0; k < inner; k++) {
                    double v = (f32 ? x[base + k] : tr->to_f32(t->data, base + k)) - mr;
                    m2 += v * v;
                }
                merge(nb, &bm, &bm2, (double)inner, mr, m2);
                nb += (double)inner;
            }
            merge(st->n, &st->mean[c], &st->m2[c], nb, bm, bm2);
        }
        st->n += (double)outer * (double)inner;
    }
    return JOULE_OK;
}

/* Streams the data once through m observing ls[0..n); sums are left in the layers. */
static joule_status observe(const joule_model *m, const joule_static_options *so, bc_layer **ls,
                            size_t n, size_t *items, joule_error *err)
{
    const char **names = calloc(n ? n : 1, sizeof *names);
    if (!names)
        return joule_fail(err, JOULE_ERR_NOMEM, "prune: bias correction: out of memory");
    for (size_t i = 0; i < n; i++) {
        names[i] = ls[i]->out;
        stats_free(&ls[i]->now);
    }
    bc_pass p = {ls, n};
    joule_status st = jq_stream(m, so, names, n, accumulate, &p, items, err);
    free(names);
    return st;
}

/* ---- the layers ---- */

/* Every Conv, ConvTranspose, Gemm and MatMul with a constant float weight. */
static joule_status candidates(const joule_graph *g, bc_layer **out, size_t *n_out,
                               joule_error *err)
{
    *out = NULL;
    *n_out = 0;
    bc_layer *ls = calloc(g->n_nodes ? g->n_nodes : 1, sizeof *ls);
    if (!ls)
        return joule_fail(err, JOULE_ERR_NOMEM, "prune: bias correction: out of memory");
    size_t n = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        const joule_node *nd = g->nodes[i];
        int wi = cz_weight_input(nd);
        bool conv = joule_node_is_op(nd, "Conv") || joule_node_is_op(nd, "ConvTranspose");
        bool gemm = joule_node_is_op(nd, "Gemm"), matmul = joule_node_is_op(nd, "MatMul");
        if (wi < 0 || !(conv || gemm || matmul) || nd->n_outputs < 1 || !nd->outputs[0])
            continue;
        const joule_tensor *w = cz_const(g, nd->inputs[wi]);
        if (!w || !cz_float_dtype(w->dtype))
            continue;
        bc_layer *L = &ls[n];
        if (!(L->out = strdup(nd->outputs[0]->name))) {
            for (size_t k = 0; k < n; k++)
                free(ls[k].out);
            free(ls);
            return joule_fail(err, JOULE_ERR_NOMEM, "prune: bias correction: out of memory");
        }
        L->zeros = cz_zeros(w);
        L->wcount = w->count;
        L->last_axis = matmul;
        L->observe = true;
        if (matmul && w->rank < 2) {
            L->observe = false;
            snprintf(L->why, sizeof L->why, "a 1-D MatMul weight has no output feature axis");
        } else if (gemm && joule_attr_float(nd, "alpha", 1.0f) == 0.0f) {
            L->observe = false;
            snprintf(L->why, sizeof L->why, "alpha is 0: the weight is not used");
        }
        n++;
    }
    *out = ls;
    *n_out = n;
    return JOULE_OK;
}

static void free_layers(bc_layer *ls, size_t n)
{
    for (size_t i = 0; ls && i < n; i++) {
        free(ls[i].out);
        free(ls[i].drop);
        stats_free(&ls[i].now);
        stats_free(&ls[i].orig);
    }
    free(ls);
}

typedef struct vmap {
    const joule_value *v;
    size_t node;
} vmap;

static int vmap_cmp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const vmap *)a)->v, y = (uintptr_t)((const vmap *)b)->v;
    return x < y ? -1 : x > y;
}

/* For every pruned layer: the most pruned layers on one path from the graph inputs to its input
 * (0: none, its input is the unpruned model's). Returns the largest level, or -1 on failure. */
static int levels(const joule_graph *g, bc_layer *ls, size_t n, joule_error *err)
{
    size_t n_out = 0;
    for (size_t i = 0; i < g->n_nodes; i++)
        n_out += (size_t)g->nodes[i]->n_outputs;
    vmap *map = calloc(n_out ? n_out : 1, sizeof *map);
    int *depth = calloc(g->n_nodes ? g->n_nodes : 1, sizeof *depth);
    long *layer_of = calloc(g->n_nodes ? g->n_nodes : 1, sizeof *layer_of);
    if (!map || !depth || !layer_of) {
        free(map);
        free(depth);
        free(layer_of);
        joule_fail(err, JOULE_ERR_NOMEM, "prune: bias correction: out of memory");
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        layer_of[i] = -1;
        for (int o = 0; o < g->nodes[i]->n_outputs; o++)
            if (g->nodes[i]->outputs[o])
                map[k++] = (vmap){g->nodes[i]->outputs[o], i};
    }
    qsort(map, k, sizeof *map, vmap_cmp);
    for (size_t j = 0; j < n; j++) {
        if (!ls[j].pruned || !ls[j].observe)
            continue;
        const joule_value *v = joule_graph_find_value(g, ls[j].out);
        vmap key = {v, 0}, *hit = v ? bsearch(&key, map, k, sizeof *map, vmap_cmp) : NULL;
        if (hit)
            layer_of[hit->node] = (long)j;
    }
    int top = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        const joule_node *nd = g->nodes[i];
        int in = 0;
        for (int q = 0; q < nd->n_inputs; q++) {
            vmap key = {nd->inputs[q], 0}, *hit;
            if (nd->inputs[q] && (hit = bsearch(&key, map, k, sizeof *map, vmap_cmp)) &&
                depth[hit->node] > in)
                in = depth[hit->node];
        }
        depth[i] = in;
        if (layer_of[i] >= 0) {
            ls[layer_of[i]].level = in;
            depth[i] = in + 1;
            if (in > top)
                top = in;
        }
    }
    free(map);
    free(depth);
    free(layer_of);
    return top;
}

/* ---- changing the bias ---- */

static float get_f(const joule_tensor *t, size_t i)
{
    return t->dtype == JOULE_F32 ? ((const float *)t->data)[i]
                                 : joule_dtype_info(t->dtype)->to_f32(t->data, i);
}

static void set_f(joule_tensor *t, void *data, size_t i, double v)
{
    if (t->dtype == JOULE_F32)
        ((float *)data)[i] = (float)v;
    else
        joule_dtype_info(t->dtype)->from_f32(data, i, (float)v);
}

/* A new tensor of dtype and dims with its owned buffer; *data is where to write. */
static joule_status new_tensor(joule_dtype dt, int rank, const int64_t *dims, joule_tensor **t,
                               void **data, joule_error *err)
{
    joule_status st = joule_tensor_new(dt, rank, dims, t, err);
    if (st)
        return st;
    if (!(*data = joule_tensor_mutable_data(*t)) && (*t)->nbytes) {
        joule_tensor_free(*t);
        *t = NULL;
        return joule_fail(err, JOULE_ERR_NOMEM, "prune: bias correction: out of memory");
    }
    return JOULE_OK;
}

/* A new initializer named after hint holding t (taken over, also on failure). */
static joule_status new_init(joule_graph *g, const char *hint, joule_tensor *t, joule_value **out,
                             joule_error *err)
{
    joule_status st = joule_graph_new_value(g, hint, out, err);
    if (!st)
        st = joule_graph_set_initializer(g, *out, t, err);
    if (st)
        joule_tensor_free(t);
    return st;
}

/* Gives n->inputs[k] (a constant) the data t (taken over): in place when n alone reads it, else
 * as a new initializer that only n reads. *cloned says which. */
static joule_status replace_const(joule_graph *g, joule_node *n, int k, joule_tensor *t,
                                  bool *cloned, joule_error *err)
{
    joule_value *v = n->inputs[k];
    *cloned = cz_uses(g, v) > 1;
    if (*cloned) {
        joule_value *nv;
        joule_status st = new_init(g, v->name, t, &nv, err);
        if (!st)
            n->inputs[k] = nv;
        return st;
    }
    joule_status st = cz_materialize(g, v, err);
    if (!st)
        st = joule_graph_set_initializer(g, v, t, err);
    if (st)
        joule_tensor_free(t);
    return st;
}

/* Sets n->inputs[k] to v, growing the input list when it is shorter. */
static joule_status attach_input(joule_node *n, int k, joule_value *v, joule_error *err)
{
    if (n->n_inputs <= k) {
        joule_value **in = realloc(n->inputs, (size_t)(k + 1) * sizeof *in);
        if (!in)
            return joule_fail(err, JOULE_ERR_NOMEM, "prune: bias correction: out of memory");
        for (int i = n->n_inputs; i <= k; i++)
            in[i] = NULL;
        n->inputs = in;
        n->n_inputs = k + 1;
    }
    n->inputs[k] = v;
    return JOULE_OK;
}

/* One layer's correction: output channel c becomes scale[c] * (W' x') + new bias, with
 * new bias = scale[c] * old bias + shift[c] when the observed output includes the bias (Conv,
 * ConvTranspose, Gemm), or old + shift[c] for the constant of an Add after a MatMul (the
 * observed output is the MatMul's); either way the mean over the data becomes the original's. */
typedef struct bc_fix {
    int64_t C;
    const double *scale; /* NULL: all 1 */
    const double *shift;
    /* what was done, for the report row */
    const char *tensor;
    joule_dtype dtype;
    uint64_t before, after, bytes_before, bytes_after; /* bias elements and bytes */
    double mean_abs, max_abs;                          /* |new bias - old bias| */
    bool weight_cloned;
    char how[384];
} bc_fix;

/* Output channel of weight element i, or -1 when the weight does not have f->C channels. */
typedef struct wgeom {
    int kind; /* 0: row-major blocks (Conv, Gemm transB), 1: last axis (MatMul, Gemm), 2: ConvT */
    size_t per, n_last, rest, cin_g, m_g;
} wgeom;

static bool weight_geometry(const joule_node *n, const joule_tensor *w, int64_t C, wgeom *gm)
{
    memset(gm, 0, sizeof *gm);
    if (C <= 0 || w->count == 0)
        return false;
    if (joule_node_is_op(n, "Conv")) {
        gm->per = w->count / (size_t)C;
        return w->rank >= 1 && w->dims[0] == C;
    }
    if (joule_node_is_op(n, "ConvTranspose")) {
        int64_t grp = joule_attr_int(n, "group", 1);
        if (w->rank < 2 || grp < 1 || w->dims[0] % grp || w->dims[1] * grp != C)
            return false;
        gm->kind = 2;
        gm->m_g = (size_t)w->dims[1];
        gm->cin_g = (size_t)(w->dims[0] / grp);
        gm->rest = w->count / ((size_t)w->dims[0] * gm->m_g);
        return true;
    }
    if (joule_node_is_op(n, "Gemm") && joule_attr_int(n, "transB", 0)) {
        gm->per = w->count / (size_t)C;
        return w->rank == 2 && w->dims[0] == C;
    }
    gm->kind = 1;
    gm->n_last = (size_t)C;
    return w->rank >= 1 && w->dims[w->rank - 1] == C;
}

static size_t weight_channel(const wgeom *gm, size_t i)
{
    if (gm->kind == 0)
        return i / gm->per;
    if (gm->kind == 1)
        return i % gm->n_last;
    size_t ci = i / (gm->m_g * gm->rest), j = (i / gm->rest) % gm->m_g;
    return (ci / gm->cin_g) * gm->m_g + j;
}

/* Multiplies each output channel's weights by f->scale (zeros stay zeros, so the sparsity and an
 * N:M pattern are kept); a weight other nodes read too is cloned first. */
static joule_status scale_weight(joule_graph *g, joule_node *n, bc_fix *f, joule_error *err)
{
    if (!f->scale)
        return JOULE_OK;
    int wi = cz_weight_input(n);
    f->weight_cloned = cz_uses(g, n->inputs[wi]) > 1;
    joule_tensor *w;
    joule_status st = cz_private_const(g, n, wi, &w, err);
    if (st)
        return st;
    wgeom gm;
    if (!weight_geometry(n, w, f->C, &gm))
        return joule_fail(err, JOULE_ERR_INVALID, "prune: bias correction: weight '%s' does not "
                          "have the output's %lld channels", n->inputs[wi]->name, (long long)f->C);
    void *data = joule_tensor_mutable_data(w);
    if (!data)
        return joule_fail(err, JOULE_ERR_NOMEM, "prune: bias correction: out of memory");
    for (size_t i = 0; i < w->count; i++) {
        double v = get_f(w, i);
        if (v != 0)
            set_f(w, data, i, v * f->scale[weight_channel(&gm, i)]);
    }
    return JOULE_OK;
}

/* The new bias from old (NULL: none) read with weight beta: [C], or [rows, C] for a Gemm's 2-D
 * C; also the change's statistics into f. with_scale: old is inside the observed output. */
static joule_status new_bias(const joule_tensor *old, double beta, bool with_scale, joule_dtype dt,
                             bc_fix *f, joule_tensor **out, joule_error *err)
{
    int64_t dims[JOULE_MAX_RANK];
    int rank = 1;
    size_t rows = 1, nc = (size_t)f->C;
    if (old && old->rank >= 2) { /* Gemm [rows, C or 1]; an Add's [1, ..., C or 1] */
        rank = old->rank;
        memcpy(dims, old->dims, (size_t)rank * sizeof *dims);
        rows = old->count / (size_t)old->dims[rank - 1];
    }
    dims[rank - 1] = f->C;
    void *data;
    joule_status st = new_tensor(dt, rank, dims, out, &data, err);
    if (st)
        return st;
    size_t cols = old && old->rank >= 1 ? (size_t)old->dims[old->rank - 1] : 1;
    f->mean_abs = f->max_abs = 0;
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < nc; c++) {
            double b = old ? beta * get_f(old, r * cols + (cols == 1 ? 0 : c)) : 0;
            double s = with_scale && f->scale ? f->scale[c] : 1;
            double nb = s * b + f->shift[c];
            set_f(*out, data, r * nc + c, nb);
            double d = fabs(nb - b);
            f->mean_abs += d;
            if (d > f->max_abs)
                f->max_abs = d;
        }
    f->mean_abs /= (double)(rows * nc);
    return JOULE_OK;
}

/* Conv / ConvTranspose (B) and Gemm (C, beta folded in). *why set when the layer is left as it
 * is (nothing changed then). */
static joule_status fix_bias_input(joule_graph *g, joule_node *n, bc_fix *f, const char *label,
                                   char *why, size_t why_size, joule_error *err)
{
    bool gemm = joule_node_is_op(n, "Gemm");
    double beta = gemm ? joule_attr_float(n, "beta", 1.0f) : 1.0;
    joule_value *bv = n->n_inputs > 2 ? n->inputs[2] : NULL;
    const joule_tensor *w = cz_const(g, n->inputs[1]), *b = NULL;
    int64_t C = f->C;
    if (bv) {
        b = cz_const(g, bv);
        if (!b) {
            snprintf(why, why_size, "the bias '%s' is computed at run time", bv->name);
            return JOULE_OK;
        }
        if (!cz_float_dtype(b->dtype)) {
            snprintf(why, why_size, "the bias '%s' is %s", bv->name, joule_dtype_name(b->dtype));
            return JOULE_OK;
        }
        size_t last = b->rank >= 1 ? (size_t)b->dims[b->rank - 1] : 1;
        bool ok = gemm ? b->rank <= 2 && (last == 1 || last == (size_t)C)
                       : b->count == (size_t)C && b->rank == 1;
        if (!ok) {
            snprintf(why, why_size, "the bias '%s' (%zu values) is not per output channel (%lld)",
                     bv->name, b->count, (long long)C);
            return JOULE_OK;
        }
    }
    wgeom gm;
    if (f->scale && !weight_geometry(n, w, C, &gm)) {
        snprintf(why, why_size, "the weight does not have the output's %lld channels",
                 (long long)C);
        return JOULE_OK;
    }
    joule_status st = scale_weight(g, n, f, err);
    joule_tensor *t = NULL;
    f->dtype = b ? b->dtype : w->dtype;
    if (!st)
        st = new_bias(b, beta, true, f->dtype, f, &t, err);
    if (st)
        return st;
    if (b) {
        f->before = b->count;
        f->bytes_before = b->nbytes;
        bool cloned;
        if ((st = replace_const(g, n, 2, t, &cloned, err)))
            return st;
        snprintf(f->how, sizeof f->how, "%s%s", cloned ? "; the shared bias was cloned" : "",
                 gemm && beta != 1.0 ? "; beta folded into C" : "");
    } else {
        char hint[256];
        snprintf(hint, sizeof hint, "%s_bias", label);
        joule_value *nv;
        if ((st = new_init(g, hint, t, &nv, err)) || (st = attach_input(n, 2, nv, err)))
            return st;
        snprintf(f->how, sizeof f->how, "; bias added (%s had none)", gemm ? "C" : "B");
    }
    if (gemm && beta != 1.0 && (st = joule_node_set_attr_float(g, n, "beta", 1.0f, err)))
        return st;
    f->tensor = n->inputs[2]->name;
    return JOULE_OK;
}

/* The Add that alone reads a MatMul's output with a float constant of one value per output
 * feature (or one value) on the other side; its input index of that constant in *k. */
static joule_node *bias_add(const joule_graph *g, const joule_node *mm, int64_t C, int *k)
{
    const joule_value *y = mm->outputs[0];
    if ((y->flags & JOULE_VALUE_OUTPUT) || cz_uses(g, y) != 1)
        return NULL;
    joule_node *add = NULL;
    for (size_t i = 0; i < g->n_nodes && !add; i++)
        for (int q = 0; q < g->nodes[i]->n_inputs; q++)
            if (g->nodes[i]->inputs[q] == y)
                add = g->nodes[i];
    if (!add || !joule_node_is_op(add, "Add") || add->n_inputs != 2)
        return NULL;
    *k = add->inputs[0] == y ? 1 : 0;
    const joule_tensor *c = cz_const(g, add->inputs[*k]);
    if (!c || !cz_float_dtype(c->dtype) || add->inputs[*k] == y)
        return NULL;
    for (int d = 0; d + 1 < c->rank; d++)
        if (c->dims[d] != 1)
            return NULL;
    size_t last = c->rank >= 1 ? (size_t)c->dims[c->rank - 1] : 1;
    return last == 1 || last == (size_t)C ? add : NULL;
}

static joule_status fix_matmul(joule_graph *g, joule_node *n, bc_fix *f, const char *label,
                               char *why, size_t why_size, joule_error *err)
{
    int k;
    joule_node *add = bias_add(g, n, f->C, &k);
    const joule_tensor *w = cz_const(g, n->inputs[1]);
    wgeom gm;
    if (f->scale && !weight_geometry(n, w, f->C, &gm)) {
        snprintf(why, why_size, "the weight does not have the output's %lld features",
                 (long long)f->C);
        return JOULE_OK;
    }
    joule_status st = scale_weight(g, n, f, err);
    if (st)
        return st;
    joule_tensor *t;
    if (add) {
        const joule_tensor *c = cz_const(g, add->inputs[k]);
        f->before = c->count;
        f->bytes_before = c->nbytes;
        f->dtype = c->dtype;
        if ((st = new_bias(c, 1.0, false, c->dtype, f, &t, err)))
            return st;
        bool cloned;
        char alb[160];
        if ((st = replace_const(g, add, k, t, &cloned, err)))
            return st;
        f->tensor = add->inputs[k]->name;
        snprintf(f->how, sizeof f->how, "; the constant of %s%s",
                 cz_label(g, add, alb, sizeof alb), cloned ? " (shared, cloned)" : "");
        return JOULE_OK;
    }
    /* MatMul -> Y becomes MatMul -> Y_prebias -> Add(bias) -> Y */
    f->dtype = w->dtype;
    if ((st = new_bias(NULL, 1.0, false, w->dtype, f, &t, err)))
        return st;
    char hint[256];
    joule_value *bv, *pre, *y = n->outputs[0];
    snprintf(hint, sizeof hint, "%s_bias", label);
    if ((st = new_init(g, hint, t, &bv, err)))
        return st;
    snprintf(hint, sizeof hint, "%s_prebias", y->name);
    if ((st = joule_graph_new_value(g, hint, &pre, err)))
        return st;
    pre->dtype = y->dtype;
    pre->shape = y->shape;
    snprintf(hint, sizeof hint, "%s/bias_correction", label);
    const char *ins[2] = {pre->name, bv->name}, *outs[1] = {y->name};
    joule_node *a;
    if ((st = joule_node_create(g, "Add", "", hint, 2, ins, 1, outs, &a, err)))
        return st;
    n->outputs[0] = pre;
    if ((st = joule_graph_insert_after(g, a, n, err))) {
        n->outputs[0] = y;
        return st;
    }
    f->tensor = bv->name;
    snprintf(f->how, sizeof f->how, "; new Add node '%s' (the MatMul had no bias)", hint);
    return JOULE_OK;
}

/* Corrects layer L (the current pass's statistics against the unpruned model's) and adds its
 * report row. */
static joule_status correct(joule_graph *g, bc_layer *L, bool shift_only, size_t items, int pass,
                            int passes, const char *pname, joule_report *r, joule_error *err)
{
    joule_node *n = layer_node(g, L);
    char lb[160];
    if (!n)
        return joule_fail(err, JOULE_ERR_NOT_FOUND,
                          "prune: bias correction: layer output '%s' is gone", L->out);
    char label[160];
    snprintf(label, sizeof label, "%s", cz_label(g, n, lb, sizeof lb));
    const bc_stats *now = &L->now, *orig = &L->orig;
    int64_t C = now->C;
    if (!now->mean || !orig->mean || now->n <= 0)
        return cz_note(r, pname, g, n, NULL, err, "bias not corrected: the layer was not observed");
    if (C != orig->C)
        return cz_note(r, pname, g, n, NULL, err, "bias not corrected: %lld output channels, "
                       "%lld before pruning", (long long)C, (long long)orig->C);
    size_t nc = C > 0 ? (size_t)C : 1;
    double *scale = malloc(nc * sizeof *scale), *shift = malloc(nc * sizeof *shift);
    if (!scale || !shift) {
        free(scale);
        free(shift);
        return joule_fail(err, JOULE_ERR_NOMEM, "prune: bias correction: out of memory");
    }
    bool finite = true, scaled = false;
    double smin = INFINITY, smax = -INFINITY;
    for (size_t c = 0; c < (size_t)C; c++) {
        double so = stats_std(orig, c), sp = stats_std(now, c), a = 1;
        /* the spread matched too, within [1/SCALE_LIMIT, SCALE_LIMIT]; a channel that pruning
         * left (nearly) constant only gets its mean back */
        if (!shift_only && sp > 1e-6 * so && so > 0 && isfinite(so / sp)) {
            a = so / sp;
            a = a > SCALE_LIMIT ? SCALE_LIMIT : a < 1.0 / SCALE_LIMIT ? 1.0 / SCALE_LIMIT : a;
        }
        scale[c] = a;
        scaled |= a != 1;
        smin = a < smin ? a : smin;
        smax = a > smax ? a : smax;
        shift[c] = orig->mean[c] - a * now->mean[c];
        finite = finite && isfinite(shift[c]);
    }
    joule_status st = JOULE_OK;
    char why[256] = "";
    bc_fix f = {.C = C, .scale = scaled ? scale : NULL, .shift = shift};
    if (!finite)
        snprintf(why, sizeof why, "the output means are not finite");
    else if (joule_node_is_op(n, "MatMul"))
        st = fix_matmul(g, n, &f, label, why, sizeof why, err);
    else
        st = fix_bias_input(g, n, &f, label, why, sizeof why, err);
    free(scale);
    free(shift);
    if (st)
        return st;
    if (why[0])
        return cz_note(r, pname, g, n, NULL, err, "bias not corrected: %s", why);
    char note[768], sc[160] = "";
    if (scaled)
        snprintf(sc, sizeof sc, "; output channels rescaled by %.3g..%.3g to the original spread%s",
                 smin, smax, f.weight_cloned ? " (shared weight cloned)" : "");
    snprintf(note, sizeof note,
             "bias corrected on %zu calibration items (pass %d of %d): mean |delta b| %.4g, "
             "max %.4g over %lld channels%s%s",
             items, pass, passes, f.mean_abs, f.max_abs, (long long)C, sc, f.how);
    const joule_value *bv = joule_graph_find_value(g, f.tensor);
    joule_layer_change row = {
        .pass = pname,
        .node = label,
        .op_type = n->op_type,
        .tensor = f.tensor,
        .dtype_before = f.dtype,
        .dtype_after = f.dtype,
        .params_before = f.before,
        .params_after = bv && bv->data ? bv->data->count : 0,
        .bytes_before = f.bytes_before,
        .bytes_after = bv && bv->data ? bv->data->nbytes : 0,
        .note = note,
    };
    return joule_report_add(r, &row, err);
}

/* A failure st with err's message prefixed with "<pass>: bias correction: ", unless the message
 * already starts with keep (the pass's own messages and this file's). */
static joule_status prefixed(joule_status st, joule_error *err, const char *keep, const char *pass)
{
    if (!st || !err || strncmp(err->msg, keep, strlen(keep)) == 0)
        return st;
    char msg[sizeof err->msg];
    snprintf(msg, sizeof msg, "%s", err->msg);
    return joule_fail(err, st, "%s: bias correction: %s", pass, msg);
}

/* Step 3 of both passes: the layers marked pruned (and observable) corrected level by level,
 * each level from one pass over the data through the current model. obs has room for n. */
static joule_status correct_levels(joule_model *m, const joule_static_options *so,
                                   bool shift_only, bc_layer *ls, size_t n, bc_layer **obs,
                                   const char *pname, joule_report *r, joule_error *err)
{
    joule_graph *g = m->graph;
    joule_status st = JOULE_OK;
    int top = levels(g, ls, n, err);
    if (top < 0)
        return JOULE_ERR_NOMEM;
    int passes = 1, pass = 1;
    for (int lv = 0; lv <= top; lv++) {
        bool any = false;
        for (size_t i = 0; i < n; i++)
            any |= ls[i].pruned && ls[i].observe && ls[i].level == lv;
        passes += any;
    }
    for (int lv = 0; lv <= top && !st; lv++) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (ls[i].pruned && ls[i].observe && ls[i].level == lv)
                obs[k++] = &ls[i];
        if (!k)
            continue;
        pass++;
        size_t seen = 0;
        if ((st = observe(m, so, obs, k, &seen, err)))
            break;
        for (size_t i = 0; i < k && !st; i++)
            st = correct(g, obs[i], shift_only, seen, pass, passes, pname, r, err);
    }
    return st;
}

/* Steps 1 of both passes: the calibration options from bc, the candidate layers (*ls, *n; obs
 * gets room for n) and the unmodified model's statistics in their orig. pname names the pass in
 * messages. */
static joule_status observe_original(joule_model *m, const joule_bias_correction *bc,
                                     const char *pname, joule_static_options *so, bc_layer **ls,
                                     size_t *n, bc_layer ***obs, joule_error *err)
{
    *ls = NULL;
    *obs = NULL;
    *n = 0;
    if (!bc->calib && !bc->calib_path && !bc->calib_tensor)
        return joule_fail(err, JOULE_ERR_INVALID,
                          "%s: bias correction needs calibration data (a dataset, a data file "
                          "or a float32 tensor)", pname);
    joule_static_defaults(so);
    so->calib = bc->calib;
    so->calib_tensor = bc->calib_tensor;
    so->calib_limit = bc->calib_limit;
    so->batch = bc->batch;
    so->threads = bc->threads;
    so->calib_path = bc->calib_path; /* opened for every pass: messages name the file */
    so->calib_dataset = bc->calib_dataset;
    joule_status st = candidates(m->graph, ls, n, err);
    if (st)
        return st;
    if (!(*obs = calloc(*n ? *n : 1, sizeof **obs)))
        return joule_fail(err, JOULE_ERR_NOMEM, "%s: bias correction: out of memory", pname);
    /* every refusal of the data comes here, before any change */
    size_t n_obs = 0, items = 0;
    for (size_t i = 0; i < *n; i++)
        if ((*ls)[i].observe)
            (*obs)[n_obs++] = &(*ls)[i];
    if ((st = observe(m, so, *obs, n_obs, &items, err)))
        return st;
    for (size_t i = 0; i < n_obs; i++) {
        bc_layer *L = (*obs)[i];
        L->orig = L->now;
        memset(&L->now, 0, sizeof L->now);
    }
    return JOULE_OK;
}

joule_status cz_prune_corrected(joule_model *m, const joule_prune_options *opt, joule_report *r,
                                joule_error *err)
{
    const joule_bias_correction *bc = &opt->correct_bias;
    joule_static_options so;
    joule_graph *g = m->graph;
    bc_layer *ls = NULL;
    bc_layer **obs = NULL;
    size_t n = 0;
    /* 1. the unpruned model's statistics */
    joule_status st = observe_original(m, bc, "prune", &so, &ls, &n, &obs, err);
    if (st)
        goto done;
    /* 2. pruning */
    joule_prune_options inner = *opt;
    inner.correct_bias.enabled = false;
    if ((st = joule_prune_magnitude(m, &inner, r, err)))
        goto done;
    /* 3. corrections, level by level */
    for (size_t i = 0; i < n; i++) {
        joule_node *nd = layer_node(g, &ls[i]);
        int wi = nd ? cz_weight_input(nd) : -1;
        const joule_tensor *w = wi >= 0 ? cz_const(g, nd->inputs[wi]) : NULL;
        ls[i].pruned = w && cz_zeros(w) > ls[i].zeros;
        if (ls[i].pruned && !ls[i].observe &&
            (st = cz_note(r, PASS, g, nd, NULL, err, "bias not corrected: %s", ls[i].why)))
            goto done;
    }
    st = correct_levels(m, &so, bc->shift_only, ls, n, obs, PASS, r, err);
done:
    free(obs);
    free_layers(ls, n);
    return prefixed(st, err, "prune: ", "prune");
}

/* ---- channel pruning ---- */

#define CH_PASS "prune_channels"

typedef struct ch_map {
    bc_layer *ls;
    size_t n;
} ch_map;

/* cz_channel_map_fn: keeps layer out's removed channels for remapping its statistics. */
static joule_status keep_map(void *ctx, const char *out, int64_t C, const bool *drop,
                             joule_error *err)
{
    ch_map *cm = ctx;
    for (size_t i = 0; i < cm->n; i++) {
        bc_layer *L = &cm->ls[i];
        if (strcmp(L->out, out) != 0 || C < 1)
            continue;
        free(L->drop);
        if (!(L->drop = malloc((size_t)C * sizeof *L->drop)))
            return joule_fail(err, JOULE_ERR_NOMEM, "prune_channels: bias correction: out of "
                              "memory");
        memcpy(L->drop, drop, (size_t)C * sizeof *drop);
        L->drop_C = C;
    }
    return JOULE_OK;
}

/* The unpruned statistics of L's kept output channels only (in order), so they line up with the
 * pruned layer's channels. false when the map does not fit. */
static bool keep_orig_channels(bc_layer *L)
{
    bc_stats *o = &L->orig;
    if (!L->drop || !o->mean || L->drop_C != o->C)
        return false;
    int64_t k = 0;
    for (int64_t c = 0; c < o->C; c++)
        if (!L->drop[c]) {
            o->mean[k] = o->mean[c];
            o->m2[k] = o->m2[c];
            k++;
        }
    o->C = k;
    return true;
}

/* Channel pruning with the correction. Which layers are matched, and against what:
 *   - a reader of removed channels keeps its output channel count, so all its channels are
 *     matched to the unpruned model's; the shift of its bias is the mean contribution of the
 *     removed inputs (E[W x] - E[W' x'], measured, not modelled), plus whatever the earlier
 *     corrections left;
 *   - a producer whose output channels were removed is matched on its kept channels only (the
 *     pruning's channel map lines its unpruned statistics up with them); when its own input is
 *     unchanged these already agree and the correction is the identity up to rounding;
 *   - a removed channel has nothing to match: its effect lives in the readers' biases.
 * Layers are corrected in the magnitude pass's level order, so every reader is measured on the
 * corrected producers before it. */
joule_status cz_prune_channels_corrected(joule_model *m, const joule_channel_options *opt,
                                         joule_report *r, joule_error *err)
{
    const joule_bias_correction *bc = &opt->correct_bias;
    joule_static_options so;
    joule_graph *g = m->graph;
    bc_layer *ls = NULL;
    bc_layer **obs = NULL;
    size_t n = 0;
    /* bad options are refused before the unpruned model is run on the data */
    joule_status st = cz_channel_options_check(opt, err);
    if (st)
        return st;
    /* 1. the unpruned model's statistics (the data's refusals come here, before any change) */
    st = observe_original(m, bc, CH_PASS, &so, &ls, &n, &obs, err);
    if (st)
        goto done;
    /* 2. the pruning, keeping each shrunken layer's channel map */
    joule_channel_options inner = *opt;
    inner.correct_bias.enabled = false;
    ch_map cm = {ls, n};
    if ((st = cz_prune_channels_mapped(m, &inner, keep_map, &cm, r, err)))
        goto done;
    /* 3. the layers whose weight shrank, level by level */
    for (size_t i = 0; i < n && !st; i++) {
        bc_layer *L = &ls[i];
        joule_node *nd = layer_node(g, L);
        int wi = nd ? cz_weight_input(nd) : -1;
        const joule_tensor *w = wi >= 0 ? cz_const(g, nd->inputs[wi]) : NULL;
        L->pruned = w && w->count != L->wcount;
        if (!L->pruned)
            continue;
        if (!L->observe)
            st = cz_note(r, CH_PASS, g, nd, NULL, err, "bias not corrected: %s", L->why);
        else if (L->drop && !keep_orig_channels(L)) {
            L->observe = false;
            st = cz_note(r, CH_PASS, g, nd, NULL, err, "bias not corrected: the channel map "
                         "does not fit the layer's %lld output channels", (long long)L->orig.C);
        }
    }
    if (!st)
        st = correct_levels(m, &so, bc->shift_only, ls, n, obs, CH_PASS, r, err);
done:
    free(obs);
    free_layers(ls, n);
    /* "prune" keeps both this pass's messages and the shared steps' "prune: ..." ones */
    return prefixed(st, err, "prune", "prune_channels");
}

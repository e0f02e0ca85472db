/* tests/unit/test_kernels_pool_norm.c: the pooling, normalization, softmax, reduction and
 * ArgMax kernels (eval/cpu/pool_norm) against values computed here with plain double loops
 * written from the ONNX spec text, plus a few spec examples with known results. Each kernel is
 * driven the way the engine drives it: supports(), prepare() (constants only have data),
 * scratch of the asked size, run() on one and on several threads, destroy(). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "eval/kernel.h"

/* ---- building nodes and views ---- */

typedef struct tcase {
    joule_model *m;
    joule_node *node;
    int64_t opset;
} tcase;

static tcase mk(const char *op, int n_in, int n_out, int64_t opset)
{
    tcase t = {0};
    joule_error err;
    t.opset = opset;
    assert_joule_ok(joule_model_new(opset, &t.m, &err), &err);
    const char *ins[8], *outs[8];
    static const char *in_names[] = {"x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7"};
    static const char *out_names[] = {"y0", "y1", "y2", "y3", "y4", "y5", "y6", "y7"};
    for (int i = 0; i < n_in; i++)
        ins[i] = in_names[i];
    for (int i = 0; i < n_out; i++)
        outs[i] = out_names[i];
    assert_joule_ok(joule_node_create(t.m->graph, op, "", "n0", n_in, ins, n_out, outs, &t.node,
                                      &err),
                    &err);
    assert_joule_ok(joule_graph_insert_before(t.m->graph, t.node, NULL, &err), &err);
    return t;
}

static void set_i(tcase *t, const char *name, int64_t v)
{
    joule_error err;
    assert_joule_ok(joule_node_set_attr_int(t->m->graph, t->node, name, v, &err), &err);
}

static void set_f(tcase *t, const char *name, float v)
{
    joule_error err;
    assert_joule_ok(joule_node_set_attr_float(t->m->graph, t->node, name, v, &err), &err);
}

static void set_is(tcase *t, const char *name, const int64_t *v, size_t n)
{
    joule_error err;
    assert_joule_ok(joule_node_set_attr_ints(t->m->graph, t->node, name, v, n, &err), &err);
}

static void set_s(tcase *t, const char *name, const char *v)
{
    joule_error err;
    assert_joule_ok(joule_node_set_attr_string(t->m->graph, t->node, name, v, &err), &err);
}

static void done(tcase *t)
{
    joule_model_free(t->m);
}

/* A view owning a zeroed buffer of dtype and dims. */
static joule_view view(joule_dtype dt, int rank, const int64_t *dims)
{
    joule_view v;
    memset(&v, 0, sizeof v);
    v.dtype = dt;
    v.rank = rank;
    v.count = 1;
    for (int i = 0; i < rank; i++) {
        v.dims[i] = dims[i];
        v.count *= (size_t)dims[i];
    }
    size_t bytes = joule_dtype_bytes(dt, v.count);
    v.data = calloc(bytes ? bytes : 1, 1);
    assert_non_null(v.data);
    return v;
}

static void vfree(joule_view *v)
{
    free(v->data);
    v->data = NULL;
}

static void vset(joule_view *v, size_t i, double x)
{
    switch (v->dtype) {
    case JOULE_F32: ((float *)v->data)[i] = (float)x; break;
    case JOULE_F64: ((double *)v->data)[i] = x; break;
    case JOULE_F16: ((uint16_t *)v->data)[i] = joule_f32_to_f16((float)x); break;
    case JOULE_I8: ((int8_t *)v->data)[i] = (int8_t)x; break;
    case JOULE_U8: ((uint8_t *)v->data)[i] = (uint8_t)x; break;
    case JOULE_I32: ((int32_t *)v->data)[i] = (int32_t)x; break;
    case JOULE_I64: ((int64_t *)v->data)[i] = (int64_t)x; break;
    default: fail_msg("vset: dtype %d", v->dtype);
    }
}

static double vget(const joule_view *v, size_t i)
{
    switch (v->dtype) {
    case JOULE_F32: return ((const float *)v->data)[i];
    case JOULE_F64: return ((const double *)v->data)[i];
    case JOULE_F16: return joule_f16_to_f32(((const uint16_t *)v->data)[i]);
    case JOULE_I8: return ((const int8_t *)v->data)[i];
    case JOULE_U8: return ((const uint8_t *)v->data)[i];
    case JOULE_I32: return ((const int32_t *)v->data)[i];
    case JOULE_I64: return (double)((const int64_t *)v->data)[i];
    default: fail_msg("vget: dtype %d", v->dtype);
    }
    return 0;
}

/* Deterministic pseudo-random values in [lo, hi). */
static uint64_t rng_state = 88172645463325252ull;
static double rnd(double lo, double hi)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return lo + (hi - lo) * (double)(rng_state >> 11) / 9007199254740992.0;
}

/* Each test starts from the same seed, so one test's failure does not change another's data. */
static int reseed(void **state)
{
    (void)state;
    rng_state = 88172645463325252ull;
    return 0;
}

static void fill_rnd(joule_view *v, double lo, double hi)
{
    for (size_t i = 0; i < v->count; i++)
        vset(v, i, v->dtype == JOULE_I8 || v->dtype == JOULE_U8 || v->dtype == JOULE_I32 ||
                           v->dtype == JOULE_I64
                       ? floor(rnd(lo, hi))
                       : rnd(lo, hi));
}

/* The input values as double (after rounding to the view's dtype). */
static double *as_double(const joule_view *v)
{
    double *d = malloc((v->count ? v->count : 1) * sizeof *d);
    assert_non_null(d);
    for (size_t i = 0; i < v->count; i++)
        d[i] = vget(v, i);
    return d;
}

/* ---- driving a kernel like the engine does ---- */

static const joule_kernel *find(const joule_node *node, int64_t opset, int n_in,
                                const joule_view *const *in)
{
    for (const joule_kernel *k = joule_cpu_kernels_pool_norm; k->op_type; k++)
        if (strcmp(k->op_type, node->op_type) == 0 && k->supports(node, opset, n_in, in))
            return k;
    return NULL;
}

static bool supported(tcase *t, int n_in, joule_view *in)
{
    const joule_view *inp[8];
    for (int i = 0; i < n_in; i++)
        inp[i] = in[i].data || in[i].rank || in[i].dtype ? &in[i] : NULL;
    return find(t->node, t->opset, n_in, inp) != NULL;
}

/* Runs the node. const_mask: inputs that are constants (visible to prepare). A view with dtype
 * JOULE_UNDEFINED is an omitted input/output. Returns the run's status (err filled). */
static joule_status run_k(tcase *t, int n_in, joule_view *in, unsigned const_mask, int n_out,
                          joule_view *out, int threads, joule_error *err)
{
    const joule_view *inp[8];
    joule_view prep_in[8];
    const joule_view *prep_inp[8];
    joule_view *outp[8];
    for (int i = 0; i < n_in; i++) {
        inp[i] = in[i].dtype ? &in[i] : NULL;
        prep_in[i] = in[i];
        if (!(const_mask & (1u << i)))
            prep_in[i].data = NULL;
        prep_inp[i] = in[i].dtype ? &prep_in[i] : NULL;
    }
    for (int i = 0; i < n_out; i++)
        outp[i] = out[i].dtype ? &out[i] : NULL;
    /* supports sees constants' data only */
    const joule_kernel *k = find(t->node, t->opset, n_in, prep_inp);
    if (!k)
        fail_msg("%s: no kernel supports this node", t->node->op_type);
    joule_kernel_ctx ctx = {.node = t->node, .opset = t->opset, .n_in = n_in, .in = prep_inp,
                            .n_out = n_out, .out = outp, .threads = threads, .err = err};
    void *state = NULL;
    size_t scratch_bytes = 0;
    if (k->prepare) {
        joule_status st = k->prepare(&ctx, &state, &scratch_bytes);
        if (st)
            return st;
    }
    void *scratch = NULL;
    if (scratch_bytes) {
        scratch = aligned_alloc(64, (scratch_bytes + 63) / 64 * 64);
        assert_non_null(scratch);
        memset(scratch, 0xA5, scratch_bytes); /* stale bytes must not matter */
    }
    ctx.in = inp;
    ctx.state = state;
    ctx.scratch = scratch;
    joule_status st = k->run(&ctx);
    free(scratch);
    if (k->destroy)
        k->destroy(state);
    return st;
}

/* Runs on 1 and 4 threads; both must succeed and agree bit for bit on output 0..n_out-1. */
static void run_ok(tcase *t, int n_in, joule_view *in, unsigned const_mask, int n_out,
                   joule_view *out)
{
    joule_error err = {{0}};
    assert_joule_ok(run_k(t, n_in, in, const_mask, n_out, out, 1, &err), &err);
    for (int o = 0; o < n_out; o++) {
        if (!out[o].dtype)
            continue;
        size_t bytes = joule_dtype_bytes(out[o].dtype, out[o].count);
        void *first = malloc(bytes ? bytes : 1);
        assert_non_null(first);
        memcpy(first, out[o].data, bytes);
        memset(out[o].data, 0x5A, bytes);
        assert_joule_ok(run_k(t, n_in, in, const_mask, n_out, out, 4, &err), &err);
        if (memcmp(first, out[o].data, bytes) != 0)
            fail_msg("%s: output %d differs between 1 and 4 threads", t->node->op_type, o);
        free(first);
    }
}

static void expect_close(const joule_view *got, const double *want, double atol, double rtol,
                         const char *what)
{
    for (size_t i = 0; i < got->count; i++) {
        double g = vget(got, i), w = want[i];
        if (isnan(w) && isnan(g))
            continue;
        if (isinf(w) && g == w)
            continue;
        if (!(fabs(g - w) <= atol + rtol * fabs(w)))
            fail_msg("%s: element %zu is %.9g, want %.9g", what, i, g, w);
    }
}

static void expect_i64(const joule_view *got, const int64_t *want, const char *what)
{
    const int64_t *g = got->data;
    for (size_t i = 0; i < got->count; i++)
        if (g[i] != want[i])
            fail_msg("%s: element %zu is %lld, want %lld", what, i, (long long)g[i],
                     (long long)want[i]);
}

/* ---- pooling reference ---- */

typedef struct pool_ref {
    int ns;
    int64_t in[6], k[6], s[6], d[6], pb[6], pe[6], out[6];
    bool is_max, include_pad;
    int storage_order;
} pool_ref;

/* Straight from the spec: every output position visits every kernel tap; taps in the padding
 * are skipped (max, and average without count_include_pad) or counted (count_include_pad,
 * only those inside the padded extent). Indices are flat over N*C*spatial. */
static void pool_reference(const pool_ref *p, int64_t planes, const double *x, double *y,
                           int64_t *ind)
{
    int64_t in_plane = 1, out_plane = 1;
    for (int i = 0; i < p->ns; i++) {
        in_plane *= p->in[i];
        out_plane *= p->out[i];
    }
    for (int64_t c = 0; c < planes; c++) {
        for (int64_t oi = 0; oi < out_plane; oi++) {
            int64_t o[6], rem = oi;
            for (int i = p->ns - 1; i >= 0; i--) {
                o[i] = rem % p->out[i];
                rem /= p->out[i];
            }
            int64_t taps = 1;
            for (int i = 0; i < p->ns; i++)
                taps *= p->k[i];
            double best = -INFINITY, sum = 0;
            int64_t best_idx = -1, valid = 0, padded = 0;
            for (int64_t ti = 0; ti < taps; ti++) {
                int64_t tk[6], r2 = ti;
                for (int i = p->ns - 1; i >= 0; i--) {
                    tk[i] = r2 % p->k[i];
                    r2 /= p->k[i];
                }
                bool inside = true, in_padded = true;
                int64_t flat = 0, cflat = 0, cmul = 1;
                for (int i = 0; i < p->ns; i++) {
                    int64_t q = o[i] * p->s[i] - p->pb[i] + tk[i] * p->d[i];
                    if (q < 0 || q >= p->in[i])
                        inside = false;
                    if (q < -p->pb[i] || q >= p->in[i] + p->pe[i])
                        in_padded = false;
                    flat = flat * p->in[i] + q;
                    cflat += q * cmul;
                    cmul *= p->in[i];
                }
                if (in_padded)
                    padded++;
                if (!inside)
                    continue;
                valid++;
                double v = x[c * in_plane + flat];
                sum += v;
                if (v > best || best_idx < 0) {
                    best = v;
                    best_idx = c * in_plane + (p->storage_order ? cflat : flat);
                }
            }
            if (p->is_max) {
                y[c * out_plane + oi] = best;
                if (ind)
                    ind[c * out_plane + oi] = best_idx;
            } else {
                int64_t cnt = p->include_pad ? padded : valid;
                y[c * out_plane + oi] = cnt ? sum / (double)cnt : 0;
            }
        }
    }
}

/* Output size from the spec's formula (explicit pads). */
static int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t d, int64_t pads, bool ceil_mode)
{
    int64_t num = in + pads - ((k - 1) * d + 1);
    return (ceil_mode ? (num + s - 1) / s : num / s) + 1;
}

typedef struct pool_case {
    const char *op;
    int ns;
    int64_t n, c;
    int64_t in[3], k[3], s[3], d[3], pads[6];
    bool ceil_mode, include_pad, with_indices, set_dilations;
    bool ramp; /* input rising along each plane instead of random */
    int storage_order;
    const char *auto_pad;
    joule_dtype dt;
} pool_case;

static void check_pool(const pool_case *pc)
{
    const bool is_max = strcmp(pc->op, "MaxPool") == 0;
    tcase t = mk(pc->op, 1, pc->with_indices ? 2 : 1, 12);
    pool_ref r = {0};
    r.ns = pc->ns;
    r.is_max = is_max;
    r.include_pad = pc->include_pad;
    r.storage_order = pc->storage_order;
    int64_t xd[5] = {pc->n, pc->c}, yd[5] = {pc->n, pc->c};
    for (int i = 0; i < pc->ns; i++) {
        r.in[i] = pc->in[i];
        r.k[i] = pc->k[i];
        r.s[i] = pc->s[i] ? pc->s[i] : 1;
        r.d[i] = pc->d[i] ? pc->d[i] : 1;
        xd[2 + i] = pc->in[i];
    }
    const bool same = pc->auto_pad && strncmp(pc->auto_pad, "SAME", 4) == 0;
    const bool valid = pc->auto_pad && strcmp(pc->auto_pad, "VALID") == 0;
    for (int i = 0; i < pc->ns; i++) {
        const int64_t ext = (r.k[i] - 1) * r.d[i] + 1;
        if (same) {
            r.out[i] = (r.in[i] + r.s[i] - 1) / r.s[i];
            int64_t total = (r.out[i] - 1) * r.s[i] + ext - r.in[i];
            total = total < 0 ? 0 : total;
            bool lower = strcmp(pc->auto_pad, "SAME_LOWER") == 0;
            r.pb[i] = lower ? (total + 1) / 2 : total / 2;
            r.pe[i] = total - r.pb[i];
        } else if (valid) {
            r.out[i] = (r.in[i] - ext + r.s[i]) / r.s[i];
        } else {
            r.pb[i] = pc->pads[i];
            r.pe[i] = pc->pads[pc->ns + i];
            r.out[i] = out_size(r.in[i], r.k[i], r.s[i], r.d[i], r.pb[i] + r.pe[i], pc->ceil_mode);
        }
        yd[2 + i] = r.out[i];
    }
    set_is(&t, "kernel_shape", r.k, (size_t)pc->ns);
    if (pc->s[0])
        set_is(&t, "strides", r.s, (size_t)pc->ns);
    if (pc->set_dilations)
        set_is(&t, "dilations", r.d, (size_t)pc->ns);
    if (pc->auto_pad)
        set_s(&t, "auto_pad", pc->auto_pad);
    else
        set_is(&t, "pads", pc->pads, 2 * (size_t)pc->ns);
    if (pc->ceil_mode)
        set_i(&t, "ceil_mode", 1);
    if (pc->include_pad)
        set_i(&t, "count_include_pad", 1);
    if (pc->storage_order)
        set_i(&t, "storage_order", pc->storage_order);

    joule_view in[1], out[2];
    in[0] = view(pc->dt, 2 + pc->ns, xd);
    if (pc->dt == JOULE_I8)
        fill_rnd(&in[0], -128, 128);
    else if (pc->dt == JOULE_U8)
        fill_rnd(&in[0], 0, 256);
    else
        fill_rnd(&in[0], -4, 4);
    if (pc->ramp) {
        size_t plane = in[0].count / (size_t)(pc->n * pc->c);
        for (size_t i = 0; i < in[0].count; i++)
            vset(&in[0], i, (double)(i % plane + 1));
    }
    out[0] = view(pc->dt, 2 + pc->ns, yd);
    memset(&out[1], 0, sizeof out[1]);
    if (pc->with_indices)
        out[1] = view(JOULE_I64, 2 + pc->ns, yd);
    run_ok(&t, 1, in, 0, pc->with_indices ? 2 : 1, out);

    double *x = as_double(&in[0]);
    double *want = malloc(out[0].count * sizeof *want);
    int64_t *want_ind = malloc(out[0].count * sizeof *want_ind);
    assert_non_null(want);
    assert_non_null(want_ind);
    pool_reference(&r, pc->n * pc->c, x, want, want_ind);
    const double tol = pc->dt == JOULE_F16 ? 2e-3 : pc->dt == JOULE_F64 ? 1e-12 : 1e-5;
    const double atol = pc->dt == JOULE_F16 ? 4e-3 : pc->dt == JOULE_F64 ? 1e-12 : 1e-6;
    expect_close(&out[0], want, atol, tol, pc->op);
    if (pc->with_indices)
        expect_i64(&out[1], want_ind, "Indices");
    free(x);
    free(want);
    free(want_ind);
    vfree(&in[0]);
    vfree(&out[0]);
    vfree(&out[1]);
    done(&t);
}

static void test_maxpool_2d(void **state)
{
    (void)state;
    /* 2x2 stride 2 on odd sizes (last row/column dropped) */
    check_pool(&(pool_case){.op = "MaxPool", .ns = 2, .n = 2, .c = 3, .in = {7, 9}, .k = {2, 2},
                            .s = {2, 2}, .dt = JOULE_F32});
    /* 2x2 stride 2 on even sizes (the one-pass path): the fixture CNN's pools, rows wider
     * than a vector, float64, rising values; with ceil_mode on odd sizes the last window is
     * partial and the general loop runs */
    check_pool(&(pool_case){.op = "MaxPool", .ns = 2, .n = 2, .c = 16, .in = {28, 28},
                            .k = {2, 2}, .s = {2, 2}, .dt = JOULE_F32});
    check_pool(&(pool_case){.op = "MaxPool", .ns = 2, .n = 1, .c = 3, .in = {6, 70},
                            .k = {2, 2}, .s = {2, 2}, .dt = JOULE_F64});
    check_pool(&(pool_case){.op = "MaxPool", .ns = 2, .n = 1, .c = 2, .in = {8, 38},
                            .k = {2, 2}, .s = {2, 2}, .dt = JOULE_F32, .ramp = true});
    check_pool(&(pool_case){.op = "MaxPool", .ns = 2, .n = 1, .c = 2, .in = {7, 9},
                            .k = {2, 2}, .s = {2, 2}, .ceil_mode = true, .dt = JOULE_F32});
    /* ResNet stem: 3x3 stride 2 pads 1, with Indices, both storage orders */
    check_pool(&(pool_case){.op = "MaxPool", .ns = 2, .n = 2, .c = 3, .in = {12, 11},
                            .k = {3, 3}, .s = {2, 2}, .pads = {1, 1, 1, 1}, .with_indices = true,
                            .dt = JOULE_F32});
    check_pool(&(pool_case){.op = "MaxPool", .ns = 2, .n = 1, .c = 2, .in = {6, 5}, .k = {3, 2},
                            .s = {2, 1}, .pads = {1, 0, 1, 1}, .with_indices = true,
                            .storage_order = 1, .dt = JOULE_F32});
    /* asymmetric pads, ceil_mode, dilations */
    check_pool(&(pool_case){.op = "MaxPool", .ns = 2, .n = 1, .c = 3, .in = {9, 10},
                            .k = {3, 2}, .s = {2, 3}, .pads = {0, 2, 1, 0}, .ceil_mode = true,
                            .dt = JOULE_F32});
    check_pool(&(pool_case){.op = "MaxPool", .ns = 2, .n = 2, .c = 2, .in = {10, 9},
                            .k = {3, 2}, .s = {1, 2}, .d = {2, 3}, .set_dilations = true,
                            .pads = {2, 1, 1, 2}, .with_indices = true, .dt = JOULE_F32});
    /* pads not a multiple of the dilation: the first tap inside starts mid-window (values
     * rise along each plane, so a tap read from the plane before would win) */
    check_pool(&(pool_case){.op = "MaxPool", .ns = 2, .n = 1, .c = 3, .in = {9, 10},
                            .k = {3, 3}, .s = {1, 1}, .d = {3, 3}, .set_dilations = true,
                            .pads = {4, 4, 1, 1}, .dt = JOULE_F32, .ramp = true});
    /* the same with random values and asymmetric pads */
    check_pool(&(pool_case){.op = "MaxPool", .ns = 2, .n = 1, .c = 2, .in = {9, 10},
                            .k = {3, 3}, .s = {2, 2}, .d = {2, 3}, .set_dilations = true,
                            .pads = {1, 2, 3, 1}, .with_indices = true, .dt = JOULE_F32});
    check_pool(&(pool_case){.op = "MaxPool", .ns = 2, .n = 1, .c = 2, .in = {8, 9}, .k = {2, 3},
                            .s = {3, 2}, .d = {2, 2}, .set_dilations = true, .ceil_mode = true,
                            .dt = JOULE_F32});
    /* auto_pad */
    check_pool(&(pool_case){.op = "MaxPool", .ns = 2, .n = 1, .c = 2, .in = {7, 8}, .k = {3, 2},
                            .s = {2, 3}, .auto_pad = "SAME_UPPER", .dt = JOULE_F32});
    check_pool(&(pool_case){.op = "MaxPool", .ns = 2, .n = 1, .c = 2, .in = {7, 8}, .k = {4, 2},
                            .s = {2, 3}, .auto_pad = "SAME_LOWER", .dt = JOULE_F32});
    check_pool(&(pool_case){.op = "MaxPool", .ns = 2, .n = 1, .c = 2, .in = {7, 8}, .k = {3, 2},
                            .s = {2, 3}, .auto_pad = "VALID", .dt = JOULE_F32});
    /* big enough to split across threads */
    check_pool(&(pool_case){.op = "MaxPool", .ns = 2, .n = 2, .c = 16, .in = {33, 40},
                            .k = {3, 3}, .s = {2, 2}, .pads = {1, 1, 1, 1}, .dt = JOULE_F32});
}

static void test_maxpool_1d_3d(void **state)
{
    (void)state;
    check_pool(&(pool_case){.op = "MaxPool", .ns = 1, .n = 2, .c = 3, .in = {17}, .k = {4},
                            .s = {3}, .pads = {2, 1}, .with_indices = true, .dt = JOULE_F32});
    check_pool(&(pool_case){.op = "MaxPool", .ns = 1, .n = 1, .c = 2, .in = {16}, .k = {3},
                            .s = {2}, .d = {2}, .set_dilations = true, .ceil_mode = true,
                            .with_indices = true, .storage_order = 1, .dt = JOULE_F32});
    check_pool(&(pool_case){.op = "MaxPool", .ns = 3, .n = 2, .c = 2, .in = {5, 6, 7},
                            .k = {2, 3, 2}, .s = {2, 1, 2}, .pads = {1, 1, 0, 0, 1, 1},
                            .with_indices = true, .dt = JOULE_F32});
    check_pool(&(pool_case){.op = "MaxPool", .ns = 3, .n = 1, .c = 3, .in = {6, 5, 7},
                            .k = {2, 2, 3}, .s = {1, 2, 2}, .d = {2, 1, 2}, .set_dilations = true,
                            .pads = {0, 1, 2, 1, 0, 1}, .ceil_mode = true, .with_indices = true,
                            .storage_order = 1, .dt = JOULE_F32});
    check_pool(&(pool_case){.op = "MaxPool", .ns = 3, .n = 1, .c = 2, .in = {7, 6, 8},
                            .k = {2, 3, 2}, .s = {2, 1, 3}, .d = {3, 2, 2}, .set_dilations = true,
                            .pads = {2, 1, 3, 1, 2, 0}, .with_indices = true, .dt = JOULE_F32});
    check_pool(&(pool_case){.op = "MaxPool", .ns = 3, .n = 1, .c = 2, .in = {5, 5, 5},
                            .k = {3, 3, 3}, .s = {2, 2, 2}, .auto_pad = "SAME_UPPER",
                            .dt = JOULE_F64});
}

static void test_maxpool_dtypes(void **state)
{
    (void)state;
    check_pool(&(pool_case){.op = "MaxPool", .ns = 2, .n = 1, .c = 3, .in = {8, 7}, .k = {3, 3},
                            .s = {2, 2}, .pads = {1, 1, 1, 1}, .dt = JOULE_I8});
    check_pool(&(pool_case){.op = "MaxPool", .ns = 2, .n = 1, .c = 3, .in = {8, 7}, .k = {2, 2},
                            .s = {2, 2}, .ceil_mode = true, .dt = JOULE_U8});
    check_pool(&(pool_case){.op = "MaxPool", .ns = 2, .n = 2, .c = 2, .in = {9, 9}, .k = {3, 3},
                            .s = {2, 2}, .pads = {1, 1, 1, 1}, .with_indices = true,
                            .dt = JOULE_F16});
    check_pool(&(pool_case){.op = "MaxPool", .ns = 2, .n = 2, .c = 2, .in = {9, 9}, .k = {3, 3},
                            .s = {2, 2}, .pads = {1, 1, 1, 1}, .with_indices = true,
                            .dt = JOULE_F64});
}

/* The spec's own examples (onnx/backend/test/case/node/maxpool.py): 1..16 as 4x4. */
static void test_maxpool_spec_examples(void **state)
{
    (void)state;
    const int64_t xd[4] = {1, 1, 4, 4}, yd[4] = {1, 1, 2, 2};
    const double want[4] = {11, 12, 15, 16};
    for (int variant = 0; variant < 2; variant++) {
        tcase t = mk("MaxPool", 1, 1, 12);
        if (variant == 0) { /* ceil_mode: kernel 3, stride 2 */
            set_is(&t, "kernel_shape", (int64_t[]){3, 3}, 2);
            set_is(&t, "strides", (int64_t[]){2, 2}, 2);
            set_i(&t, "ceil_mode", 1);
        } else { /* dilations 2, kernel 2 */
            set_is(&t, "kernel_shape", (int64_t[]){2, 2}, 2);
            set_is(&t, "dilations", (int64_t[]){2, 2}, 2);
        }
        joule_view in = view(JOULE_F32, 4, xd), out = view(JOULE_F32, 4, yd);
        for (size_t i = 0; i < 16; i++)
            vset(&in, i, (double)(i + 1));
        run_ok(&t, 1, &in, 0, 1, &out);
        expect_close(&out, want, 0, 0, variant ? "dilations" : "ceil_mode");
        vfree(&in);
        vfree(&out);
        done(&t);
    }
}

/* ceil_mode output sizes: the spec's count, or one less (PyTorch and onnxruntime) only when the
 * last window would start in the end padding. */
static void test_pool_ceil_sizes(void **state)
{
    (void)state;
    tcase t = mk("MaxPool", 1, 1, 12);
    set_is(&t, "kernel_shape", (int64_t[]){2}, 1);
    set_is(&t, "strides", (int64_t[]){3}, 1);
    set_is(&t, "pads", (int64_t[]){0, 2}, 2);
    set_i(&t, "ceil_mode", 1);
    joule_view in = view(JOULE_F32, 3, (int64_t[]){1, 1, 4});
    for (size_t i = 0; i < 4; i++)
        vset(&in, i, (double)(10 - i));
    joule_view o3 = view(JOULE_F32, 3, (int64_t[]){1, 1, 3});
    joule_view o2 = view(JOULE_F32, 3, (int64_t[]){1, 1, 2});
    run_ok(&t, 1, &in, 0, 1, &o3); /* windows start at 0, 3 and 6 (all padding) */
    expect_close(&o3, (double[]){10, 7, -INFINITY}, 0, 0, "ceil_mode spec size");
    run_ok(&t, 1, &in, 0, 1, &o2);
    expect_close(&o2, (double[]){10, 7}, 0, 0, "ceil_mode PyTorch size");
    vfree(&in);
    vfree(&o2);
    vfree(&o3);
    /* here the last window starts inside the input, so only the spec's 3 is right */
    set_is(&t, "strides", (int64_t[]){2}, 1);
    set_is(&t, "pads", (int64_t[]){0, 0}, 2);
    in = view(JOULE_F32, 3, (int64_t[]){1, 1, 5});
    o2 = view(JOULE_F32, 3, (int64_t[]){1, 1, 2});
    joule_error err = {{0}};
    assert_int_equal(run_k(&t, 1, &in, 0, 1, &o2, 1, &err), JOULE_ERR_INVALID);
    vfree(&in);
    vfree(&o2);
    done(&t);
}

static void test_averagepool(void **state)
{
    (void)state;
    check_pool(&(pool_case){.op = "AveragePool", .ns = 2, .n = 2, .c = 3, .in = {8, 9},
                            .k = {2, 2}, .s = {2, 2}, .dt = JOULE_F32});
    check_pool(&(pool_case){.op = "AveragePool", .ns = 2, .n = 1, .c = 3, .in = {7, 8},
                            .k = {3, 3}, .s = {2, 2}, .pads = {1, 2, 2, 1}, .dt = JOULE_F32});
    check_pool(&(pool_case){.op = "AveragePool", .ns = 2, .n = 1, .c = 3, .in = {7, 8},
                            .k = {3, 3}, .s = {2, 2}, .pads = {1, 2, 2, 1}, .include_pad = true,
                            .dt = JOULE_F32});
    /* ceil_mode windows hanging past the end padding are divided by the part inside it */
    check_pool(&(pool_case){.op = "AveragePool", .ns = 2, .n = 1, .c = 2, .in = {8, 7},
                            .k = {3, 3}, .s = {2, 2}, .pads = {1, 0, 1, 0}, .ceil_mode = true,
                            .include_pad = true, .dt = JOULE_F32});
    check_pool(&(pool_case){.op = "AveragePool", .ns = 2, .n = 1, .c = 2, .in = {8, 7},
                            .k = {3, 3}, .s = {2, 2}, .ceil_mode = true, .dt = JOULE_F32});
    check_pool(&(pool_case){.op = "AveragePool", .ns = 2, .n = 1, .c = 2, .in = {7, 6},
                            .k = {3, 2}, .s = {2, 1}, .auto_pad = "SAME_LOWER",
                            .include_pad = true, .dt = JOULE_F32});
    check_pool(&(pool_case){.op = "AveragePool", .ns = 2, .n = 1, .c = 2, .in = {7, 6},
                            .k = {3, 2}, .s = {2, 1}, .auto_pad = "SAME_UPPER", .dt = JOULE_F32});
    check_pool(&(pool_case){.op = "AveragePool", .ns = 1, .n = 2, .c = 2, .in = {13}, .k = {4},
                            .s = {3}, .pads = {2, 2}, .include_pad = true, .dt = JOULE_F32});
    check_pool(&(pool_case){.op = "AveragePool", .ns = 3, .n = 1, .c = 2, .in = {5, 6, 4},
                            .k = {2, 3, 2}, .s = {2, 2, 1}, .pads = {1, 1, 0, 0, 1, 1},
                            .include_pad = true, .dt = JOULE_F32});
    check_pool(&(pool_case){.op = "AveragePool", .ns = 3, .n = 1, .c = 2, .in = {5, 6, 4},
                            .k = {2, 3, 2}, .s = {2, 2, 1}, .pads = {1, 1, 0, 0, 1, 1},
                            .ceil_mode = true, .dt = JOULE_F64});
    check_pool(&(pool_case){.op = "AveragePool", .ns = 3, .n = 1, .c = 2, .in = {6, 7, 5},
                            .k = {3, 3, 2}, .s = {2, 2, 2}, .pads = {1, 0, 1, 0, 1, 1},
                            .ceil_mode = true, .include_pad = true, .dt = JOULE_F32});
    check_pool(&(pool_case){.op = "AveragePool", .ns = 2, .n = 2, .c = 2, .in = {9, 9},
                            .k = {3, 3}, .s = {2, 2}, .pads = {1, 1, 1, 1}, .dt = JOULE_F16});

    /* dilations (opset 19) and int8 are refused, not miscomputed */
    tcase t = mk("AveragePool", 1, 1, 12);
    set_is(&t, "kernel_shape", (int64_t[]){2, 2}, 2);
    set_is(&t, "dilations", (int64_t[]){2, 2}, 2);
    joule_view in = view(JOULE_F32, 4, (int64_t[]){1, 1, 5, 5});
    assert_false(supported(&t, 1, &in));
    set_is(&t, "dilations", (int64_t[]){1, 1}, 2);
    assert_true(supported(&t, 1, &in));
    vfree(&in);
    in = view(JOULE_I8, 4, (int64_t[]){1, 1, 5, 5});
    assert_false(supported(&t, 1, &in));
    vfree(&in);
    done(&t);
}

static void test_pool_bad_shapes(void **state)
{
    (void)state;
    tcase t = mk("MaxPool", 1, 1, 12);
    set_is(&t, "kernel_shape", (int64_t[]){3, 3}, 2);
    joule_view in = view(JOULE_F32, 4, (int64_t[]){1, 1, 5, 5});
    joule_view out = view(JOULE_F32, 4, (int64_t[]){1, 1, 4, 3}); /* should be 3x3 */
    joule_error err = {{0}};
    assert_int_equal(run_k(&t, 1, &in, 0, 1, &out, 1, &err), JOULE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "n0"));
    /* kernel larger than the input, kernel rank not matching the input */
    vfree(&in);
    in = view(JOULE_F32, 4, (int64_t[]){1, 1, 2, 5});
    assert_false(supported(&t, 1, &in));
    vfree(&in);
    in = view(JOULE_F32, 3, (int64_t[]){1, 1, 5});
    assert_false(supported(&t, 1, &in));
    set_is(&t, "kernel_shape", (int64_t[]){0}, 1);
    assert_false(supported(&t, 1, &in));
    set_is(&t, "kernel_shape", (int64_t[]){2}, 1);
    set_is(&t, "strides", (int64_t[]){0}, 1);
    assert_false(supported(&t, 1, &in));
    set_is(&t, "strides", (int64_t[]){1}, 1);
    set_s(&t, "auto_pad", "SAME_MIDDLE");
    assert_false(supported(&t, 1, &in));
    vfree(&in);
    vfree(&out);
    done(&t);
}

/* ---- global pooling ---- */

static void test_global_pool(void **state)
{
    (void)state;
    const joule_dtype dts[3] = {JOULE_F32, JOULE_F64, JOULE_F16};
    for (int di = 0; di < 3; di++)
        for (int is_max = 0; is_max < 2; is_max++) {
            tcase t = mk(is_max ? "GlobalMaxPool" : "GlobalAveragePool", 1, 1, 13);
            const int64_t xd[5] = {2, 5, 3, 4, 6}, yd[5] = {2, 5, 1, 1, 1};
            joule_view in = view(dts[di], 5, xd), out = view(dts[di], 5, yd);
            fill_rnd(&in, -3, 5);
            run_ok(&t, 1, &in, 0, 1, &out);
            double *x = as_double(&in), want[10];
            for (int c = 0; c < 10; c++) {
                double s = 0, m = -INFINITY;
                for (int i = 0; i < 72; i++) {
                    s += x[c * 72 + i];
                    m = fmax(m, x[c * 72 + i]);
                }
                want[c] = is_max ? m : s / 72;
            }
            expect_close(&out, want, 1e-6, dts[di] == JOULE_F16 ? 1e-3 : 1e-6, t.node->op_type);
            free(x);
            vfree(&in);
            vfree(&out);
            done(&t);
        }
}

/* ---- BatchNormalization ---- */

static void check_batchnorm(joule_dtype dt, unsigned const_mask, float eps)
{
    tcase t = mk("BatchNormalization", 5, 1, 15);
    if (eps > 0)
        set_f(&t, "epsilon", eps);
    const int64_t xd[4] = {2, 4, 3, 5}, cd[1] = {4};
    joule_view in[5], out[1];
    in[0] = view(dt, 4, xd);
    fill_rnd(&in[0], -5, 5);
    for (int i = 1; i < 5; i++) {
        in[i] = view(JOULE_F32, 1, cd);
        fill_rnd(&in[i], i == 4 ? 0.1 : -2, 2);
    }
    out[0] = view(dt, 4, xd);
    run_ok(&t, 5, in, const_mask, 1, out);
    double *x = as_double(&in[0]), want[120];
    const double e = eps > 0 ? eps : 1e-5;
    for (int n = 0; n < 2; n++)
        for (int c = 0; c < 4; c++)
            for (int i = 0; i < 15; i++) {
                size_t k = (size_t)(n * 60 + c * 15 + i);
                want[k] = (x[k] - vget(&in[3], c)) / sqrt(vget(&in[4], c) + e) * vget(&in[1], c) +
                          vget(&in[2], c);
            }
    expect_close(&out[0], want, dt == JOULE_F16 ? 1e-2 : 1e-5, dt == JOULE_F16 ? 2e-3 : 1e-6,
                 "BatchNormalization");
    free(x);
    for (int i = 0; i < 5; i++)
        vfree(&in[i]);
    vfree(&out[0]);
    done(&t);
}

static void test_batchnorm(void **state)
{
    (void)state;
    check_batchnorm(JOULE_F32, 0x1e, 0);    /* constant parameters: folded in prepare */
    check_batchnorm(JOULE_F32, 0, 1e-3f);   /* parameters fed at run time */
    check_batchnorm(JOULE_F64, 0x1e, 0.5f);
    check_batchnorm(JOULE_F16, 0x1e, 0);

    tcase t = mk("BatchNormalization", 5, 1, 15);
    joule_view in[5];
    in[0] = view(JOULE_F32, 4, (int64_t[]){1, 3, 2, 2});
    for (int i = 1; i < 5; i++)
        in[i] = view(JOULE_F32, 1, (int64_t[]){3});
    assert_true(supported(&t, 5, in));
    set_i(&t, "training_mode", 1);
    assert_false(supported(&t, 5, in));
    set_i(&t, "training_mode", 0);
    vfree(&in[4]);
    in[4] = view(JOULE_F32, 1, (int64_t[]){4}); /* wrong channel count */
    assert_false(supported(&t, 5, in));
    for (int i = 0; i < 5; i++)
        vfree(&in[i]);
    done(&t);
}

/* ---- LayerNormalization / InstanceNormalization ---- */

/* Reference: rows of `inner` elements; scale/bias broadcast given as full inner arrays. */
static void ln_reference(const double *x, size_t rows, size_t inner, const double *sc,
                         const double *b, double eps, double *y, double *mean, double *inv)
{
    for (size_t r = 0; r < rows; r++) {
        double s = 0, v = 0;
        for (size_t j = 0; j < inner; j++)
            s += x[r * inner + j];
        double m = s / (double)inner;
        for (size_t j = 0; j < inner; j++)
            v += (x[r * inner + j] - m) * (x[r * inner + j] - m);
        double is = 1 / sqrt(v / (double)inner + eps);
        for (size_t j = 0; j < inner; j++)
            y[r * inner + j] = (x[r * inner + j] - m) * is * sc[j] + (b ? b[j] : 0);
        mean[r] = m;
        inv[r] = is;
    }
}

static void test_layernorm(void **state)
{
    (void)state;
    const int64_t xd[3] = {3, 4, 10};
    /* axis, scale dims (rank, dims), with bias, with stats, dtype, scale constant */
    struct {
        int64_t axis;
        int srank;
        int64_t sdims[2];
        bool bias, stats;
        joule_dtype dt;
        unsigned cmask;
    } cases[] = {
        {-1, 1, {10}, true, true, JOULE_F32, 0x6},
        {-1, 1, {10}, false, false, JOULE_F32, 0},
        {1, 2, {4, 10}, true, true, JOULE_F32, 0x6},
        {1, 2, {1, 10}, true, true, JOULE_F32, 0},   /* broadcast over axis 1 */
        {-2, 1, {1}, true, false, JOULE_F64, 0x6},   /* scalar-like scale */
        {0, 1, {10}, true, true, JOULE_F32, 0x6},
        {2, 1, {10}, true, true, JOULE_F16, 0x6},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const int n_in = cases[ci].bias ? 3 : 2, n_out = cases[ci].stats ? 3 : 1;
        tcase t = mk("LayerNormalization", n_in, n_out, 17);
        set_i(&t, "axis", cases[ci].axis);
        set_f(&t, "epsilon", 1e-3f);
        const int axis = (int)(cases[ci].axis < 0 ? cases[ci].axis + 3 : cases[ci].axis);
        size_t rows = 1, inner = 1;
        int64_t sd[3];
        for (int i = 0; i < 3; i++) {
            if (i < axis)
                rows *= (size_t)xd[i];
            else
                inner *= (size_t)xd[i];
            sd[i] = i < axis ? xd[i] : 1;
        }
        joule_view in[3], out[3];
        memset(in, 0, sizeof in);
        memset(out, 0, sizeof out);
        in[0] = view(cases[ci].dt, 3, xd);
        fill_rnd(&in[0], -3, 4);
        in[1] = view(JOULE_F32, cases[ci].srank, cases[ci].sdims);
        fill_rnd(&in[1], 0.5, 2);
        if (cases[ci].bias) {
            in[2] = view(JOULE_F32, cases[ci].srank, cases[ci].sdims);
            fill_rnd(&in[2], -1, 1);
        }
        out[0] = view(cases[ci].dt, 3, xd);
        if (cases[ci].stats) {
            out[1] = view(JOULE_F32, 3, sd);
            out[2] = view(JOULE_F32, 3, sd);
        }
        run_ok(&t, n_in, in, cases[ci].cmask, n_out, out);

        /* expand scale/bias to the normalized shape by index arithmetic */
        double *sc = malloc(inner * sizeof *sc), *b = malloc(inner * sizeof *b);
        double *x = as_double(&in[0]), *y = malloc(in[0].count * sizeof *y);
        double *mean = malloc(rows * sizeof *mean), *inv = malloc(rows * sizeof *inv);
        assert_true(sc && b && y && mean && inv);
        for (size_t j = 0; j < inner; j++) {
            /* coordinates of j in dims[axis..3), then pick from the right-aligned scale */
            int64_t co[3] = {0}, rem = (int64_t)j;
            for (int i = 2; i >= axis; i--) {
                co[i] = rem % xd[i];
                rem /= xd[i];
            }
            size_t si = 0;
            for (int k = 0; k < cases[ci].srank; k++) {
                int xi = 3 - cases[ci].srank + k;
                int64_t c = cases[ci].sdims[k] == 1 ? 0 : co[xi];
                si = si * (size_t)cases[ci].sdims[k] + (size_t)c;
            }
            sc[j] = vget(&in[1], si);
            b[j] = cases[ci].bias ? vget(&in[2], si) : 0;
        }
        ln_reference(x, rows, inner, sc, b, (double)1e-3f, y, mean, inv);
        const bool h = cases[ci].dt == JOULE_F16;
        expect_close(&out[0], y, h ? 1e-2 : 1e-5, h ? 4e-3 : 1e-5, "LayerNormalization Y");
        if (cases[ci].stats) {
            expect_close(&out[1], mean, h ? 1e-3 : 1e-6, 1e-5, "LayerNormalization Mean");
            expect_close(&out[2], inv, h ? 1e-3 : 1e-6, 1e-5, "LayerNormalization InvStdDev");
        }
        free(sc);
        free(b);
        free(x);
        free(y);
        free(mean);
        free(inv);
        for (int i = 0; i < 3; i++) {
            vfree(&in[i]);
            vfree(&out[i]);
        }
        done(&t);
    }
    /* a scale that does not broadcast to the normalized shape is refused */
    tcase t = mk("LayerNormalization", 2, 1, 17);
    joule_view in[2] = {view(JOULE_F32, 3, xd), view(JOULE_F32, 1, (int64_t[]){4})};
    assert_false(supported(&t, 2, in));
    set_i(&t, "axis", 3);
    vfree(&in[1]);
    in[1] = view(JOULE_F32, 1, (int64_t[]){10});
    assert_false(supported(&t, 2, in));
    set_i(&t, "axis", -1);
    assert_true(supported(&t, 2, in));
    vfree(&in[0]);
    vfree(&in[1]);
    done(&t);
}

static void test_instancenorm(void **state)
{
    (void)state;
    const joule_dtype dts[2] = {JOULE_F32, JOULE_F64};
    for (int di = 0; di < 2; di++) {
        tcase t = mk("InstanceNormalization", 3, 1, 6);
        set_f(&t, "epsilon", 1e-2f);
        const int64_t xd[4] = {2, 3, 4, 5};
        joule_view in[3] = {view(dts[di], 4, xd), view(dts[di], 1, (int64_t[]){3}),
                            view(dts[di], 1, (int64_t[]){3})};
        fill_rnd(&in[0], -2, 6);
        fill_rnd(&in[1], 0.5, 2);
        fill_rnd(&in[2], -1, 1);
        joule_view out = view(dts[di], 4, xd);
        run_ok(&t, 3, in, di ? 0 : 0x6, 1, &out);
        double *x = as_double(&in[0]), y[120], mean[6], inv[6];
        for (int pl = 0; pl < 6; pl++) {
            double sc[20], b[20];
            for (int j = 0; j < 20; j++) {
                sc[j] = vget(&in[1], (size_t)(pl % 3));
                b[j] = vget(&in[2], (size_t)(pl % 3));
            }
            ln_reference(x + pl * 20, 1, 20, sc, b, (double)1e-2f, y + pl * 20, mean + pl,
                         inv + pl);
        }
        expect_close(&out, y, 1e-5, 1e-5, "InstanceNormalization");
        free(x);
        for (int i = 0; i < 3; i++)
            vfree(&in[i]);
        vfree(&out);
        done(&t);
    }
}

/* ---- Softmax / LogSoftmax ---- */

/* Softmax of x viewed as [outer][n][inner] along n. */
static void softmax_reference(const double *x, size_t outer, size_t n, size_t inner, bool logsm,
                              double *y)
{
    for (size_t o = 0; o < outer; o++)
        for (size_t i = 0; i < inner; i++) {
            double m = -INFINITY, s = 0;
            for (size_t j = 0; j < n; j++)
                m = fmax(m, x[(o * n + j) * inner + i]);
            for (size_t j = 0; j < n; j++)
                s += exp(x[(o * n + j) * inner + i] - m);
            for (size_t j = 0; j < n; j++) {
                double v = x[(o * n + j) * inner + i] - m;
                y[(o * n + j) * inner + i] = logsm ? v - log(s) : exp(v) / s;
            }
        }
}

static void check_softmax(const char *op, int64_t opset, int64_t axis, bool set_axis,
                          int rank, const int64_t *dims, joule_dtype dt, double lo, double hi)
{
    const bool logsm = strcmp(op, "LogSoftmax") == 0;
    tcase t = mk(op, 1, 1, opset);
    if (set_axis)
        set_i(&t, "axis", axis);
    if (!set_axis)
        axis = opset >= 13 ? -1 : 1;
    const int a = (int)(axis < 0 ? axis + rank : axis);
    size_t outer = 1, n = 1, inner = 1;
    for (int i = 0; i < rank; i++) {
        if (i < a)
            outer *= (size_t)dims[i];
        else if (i == a || opset < 13)
            n *= (size_t)dims[i]; /* before 13: everything from axis on is one row */
        else
            inner *= (size_t)dims[i];
    }
    joule_view in = view(dt, rank, dims), out = view(dt, rank, dims);
    fill_rnd(&in, lo, hi);
    run_ok(&t, 1, &in, 0, 1, &out);
    double *x = as_double(&in), *y = malloc(in.count * sizeof *y);
    assert_non_null(y);
    softmax_reference(x, outer, n, inner, logsm, y);
    const bool h = dt == JOULE_F16;
    expect_close(&out, y, h ? 2e-3 : 1e-6, h ? 2e-3 : 1e-5, op);
    free(x);
    free(y);
    vfree(&in);
    vfree(&out);
    done(&t);
}

static void test_softmax(void **state)
{
    (void)state;
    const int64_t d3[3] = {3, 4, 5}, big[3] = {4, 70, 130}, d4[4] = {2, 3, 70, 3};
    const char *ops[2] = {"Softmax", "LogSoftmax"};
    for (int k = 0; k < 2; k++) {
        /* opset 11: coerced to 2D at the axis (default 1) */
        check_softmax(ops[k], 11, 1, false, 3, d3, JOULE_F32, -5, 5);
        check_softmax(ops[k], 11, 0, true, 3, d3, JOULE_F32, -5, 5);
        check_softmax(ops[k], 11, -1, true, 3, d3, JOULE_F32, -5, 5);
        /* opset 13: one axis (default -1) */
        check_softmax(ops[k], 13, -1, false, 3, d3, JOULE_F32, -5, 5);
        check_softmax(ops[k], 13, 1, true, 3, d3, JOULE_F32, -5, 5);
        check_softmax(ops[k], 13, 0, true, 3, d3, JOULE_F32, -5, 5);
        check_softmax(ops[k], 13, 2, true, 4, d4, JOULE_F32, -5, 5); /* inner 3 */
        check_softmax(ops[k], 13, 1, true, 3, big, JOULE_F32, -5, 5); /* 130 columns: 3 blocks */
        check_softmax(ops[k], 13, -1, false, 3, big, JOULE_F32, -5, 5);
        /* large values: max subtraction keeps exp finite */
        check_softmax(ops[k], 13, -1, false, 3, d3, JOULE_F32, 1000, 1010);
        check_softmax(ops[k], 13, -2, true, 3, d3, JOULE_F64, -50, 50);
        check_softmax(ops[k], 13, -1, false, 3, d3, JOULE_F16, -4, 4);
    }

    /* The same node means different things before and after opset 13. */
    const int64_t dims[3] = {2, 3, 4};
    joule_view in = view(JOULE_F32, 3, dims), o11 = view(JOULE_F32, 3, dims),
               o13 = view(JOULE_F32, 3, dims);
    fill_rnd(&in, -1, 1);
    tcase t11 = mk("Softmax", 1, 1, 11), t13 = mk("Softmax", 1, 1, 13);
    set_i(&t11, "axis", 1);
    set_i(&t13, "axis", 1);
    run_ok(&t11, 1, &in, 0, 1, &o11);
    run_ok(&t13, 1, &in, 0, 1, &o13);
    double s11 = 0, s13 = 0;
    for (int i = 0; i < 12; i++)
        s11 += vget(&o11, (size_t)i); /* opset 11: one row of 12 sums to 1 */
    for (int j = 0; j < 3; j++)
        s13 += vget(&o13, (size_t)j * 4); /* opset 13: a column of 3 sums to 1 */
    assert_true(fabs(s11 - 1) < 1e-5 && fabs(s13 - 1) < 1e-5);
    assert_true(fabs(vget(&o11, 0) - vget(&o13, 0)) > 1e-3);
    done(&t11);
    done(&t13);
    vfree(&in);
    vfree(&o11);
    vfree(&o13);
}

/* ---- reductions ---- */

typedef struct red_case {
    const char *op;
    int64_t opset;
    int rank;
    int64_t dims[5];
    int n_axes;        /* -1: no axes at all */
    int64_t axes[5];
    bool axes_input;   /* as the second input (else attribute) */
    int keepdims;      /* -1: default */
    bool noop;         /* noop_with_empty_axes */
    joule_dtype dt;
} red_case;

/* axes_runtime: the axes input is not a constant (no data at prepare). */
static void check_reduce_axes(const red_case *rc, bool axes_runtime)
{
    const int n_in = rc->axes_input ? 2 : 1;
    tcase t = mk(rc->op, n_in, 1, rc->opset);
    const bool keep = rc->keepdims != 0;
    if (rc->keepdims >= 0)
        set_i(&t, "keepdims", rc->keepdims);
    if (rc->noop)
        set_i(&t, "noop_with_empty_axes", 1);
    if (!rc->axes_input && rc->n_axes >= 0)
        set_is(&t, "axes", rc->axes, (size_t)rc->n_axes);
    bool red[5] = {false};
    const bool all = rc->n_axes <= 0 && !rc->noop;
    for (int i = 0; i < rc->rank; i++)
        red[i] = all;
    for (int i = 0; i < rc->n_axes; i++)
        red[rc->axes[i] < 0 ? rc->axes[i] + rc->rank : rc->axes[i]] = true;
    int64_t od[5];
    int orank = 0;
    for (int i = 0; i < rc->rank; i++)
        if (!red[i])
            od[orank++] = rc->dims[i];
        else if (keep)
            od[orank++] = 1;
    joule_view in[2], out;
    memset(in, 0, sizeof in);
    in[0] = view(rc->dt, rc->rank, rc->dims);
    if (rc->dt == JOULE_I32 || rc->dt == JOULE_I64)
        fill_rnd(&in[0], -1000, 1000);
    else if (rc->dt == JOULE_I8)
        fill_rnd(&in[0], -128, 128);
    else
        fill_rnd(&in[0], -3, 3);
    if (rc->axes_input) {
        int64_t ad[1] = {rc->n_axes > 0 ? rc->n_axes : 0};
        in[1] = view(JOULE_I64, 1, ad);
        for (int i = 0; i < rc->n_axes; i++)
            vset(&in[1], (size_t)i, (double)rc->axes[i]);
    }
    out = view(rc->dt, orank, od);
    run_ok(&t, n_in, in, rc->axes_input && !axes_runtime ? 0x2 : 0, 1, &out);

    /* reference: walk every input element, find its output element, fold */
    double *x = as_double(&in[0]);
    double *want = malloc(out.count * sizeof *want);
    size_t *cnt = calloc(out.count, sizeof *cnt);
    assert_true(want && cnt);
    const bool is_max = strcmp(rc->op, "ReduceMax") == 0, is_min = strcmp(rc->op, "ReduceMin") == 0;
    for (size_t o = 0; o < out.count; o++)
        want[o] = is_max ? -INFINITY : is_min ? INFINITY : 0;
    for (size_t e = 0; e < in[0].count; e++) {
        size_t rem = e, o = 0, mul = 1;
        for (int i = rc->rank - 1; i >= 0; i--) {
            size_t c = rem % (size_t)rc->dims[i];
            rem /= (size_t)rc->dims[i];
            if (!red[i]) {
                o += c * mul;
                mul *= (size_t)rc->dims[i];
            }
        }
        cnt[o]++;
        want[o] = is_max ? fmax(want[o], x[e]) : is_min ? fmin(want[o], x[e]) : want[o] + x[e];
    }
    if (strcmp(rc->op, "ReduceMean") == 0)
        for (size_t o = 0; o < out.count; o++)
            want[o] /= (double)cnt[o];
    const bool h = rc->dt == JOULE_F16;
    expect_close(&out, want, h ? 2e-2 : 1e-5, h ? 2e-3 : 1e-6, rc->op);
    free(x);
    free(want);
    free(cnt);
    vfree(&in[0]);
    vfree(&in[1]);
    vfree(&out);
    done(&t);
}

static void check_reduce(const red_case *rc)
{
    check_reduce_axes(rc, false);
}

static void test_reduce(void **state)
{
    (void)state;
    const char *ops[4] = {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin"};
    for (int k = 0; k < 4; k++) {
        const char *op = ops[k];
        /* attribute axes (opset 11): last axis, first axis, middle, two apart (general walk) */
        for (int keep = 0; keep < 2; keep++) {
            check_reduce(&(red_case){op, 11, 3, {3, 4, 5}, 1, {2}, false, keep, false, JOULE_F32});
            check_reduce(&(red_case){op, 11, 3, {3, 4, 5}, 1, {0}, false, keep, false, JOULE_F32});
            check_reduce(&(red_case){op, 11, 3, {3, 4, 5}, 1, {-2}, false, keep, false, JOULE_F32});
            check_reduce(&(red_case){op, 11, 3, {3, 4, 5}, 2, {0, 2}, false, keep, false,
                                     JOULE_F32});
            check_reduce(&(red_case){op, 11, 4, {2, 3, 4, 5}, 2, {3, 1}, false, keep, false,
                                     JOULE_F32});
            check_reduce(&(red_case){op, 11, 3, {3, 4, 5}, -1, {0}, false, keep, false,
                                     JOULE_F32}); /* no axes: all */
            check_reduce(&(red_case){op, 11, 4, {2, 1, 4, 5}, 2, {1, 2}, false, keep, false,
                                     JOULE_F64}); /* a size-1 axis between */
            check_reduce(&(red_case){op, 11, 3, {6, 300, 130}, 1, {1}, false, keep, false,
                                     JOULE_F32}); /* threads, column blocks */
            check_reduce(&(red_case){op, 11, 3, {3, 4, 5}, 1, {1}, false, keep, false, JOULE_F16});
        }
        check_reduce(&(red_case){op, 11, 3, {3, 4, 5}, 2, {1, 2}, false, -1, false, JOULE_F32});
        /* axes as an input (opset 18 for all four) */
        check_reduce(&(red_case){op, 18, 3, {3, 4, 5}, 2, {0, -1}, true, 0, false, JOULE_F32});
        check_reduce(&(red_case){op, 18, 3, {3, 4, 5}, 0, {0}, true, 1, false, JOULE_F32});
        check_reduce(&(red_case){op, 18, 3, {3, 4, 5}, 0, {0}, true, 1, true, JOULE_F32});
        if (k != 1) {
            check_reduce(&(red_case){op, 11, 3, {3, 4, 5}, 1, {1}, false, 0, false, JOULE_I32});
            check_reduce(&(red_case){op, 11, 3, {3, 4, 5}, 2, {0, 2}, false, 1, false, JOULE_I64});
        }
    }
    /* ReduceSum from opset 13: axes input; empty axes with noop is the identity */
    check_reduce(&(red_case){"ReduceSum", 13, 3, {3, 4, 5}, 1, {1}, true, 1, false, JOULE_F32});
    check_reduce_axes(&(red_case){"ReduceSum", 13, 4, {3, 4, 5, 2}, 2, {1, 3}, true, 0, false,
                                  JOULE_F32}, true);
    check_reduce(&(red_case){"ReduceSum", 13, 3, {3, 4, 5}, 0, {0}, true, 0, false, JOULE_F32});
    check_reduce(&(red_case){"ReduceSum", 13, 3, {3, 4, 5}, 0, {0}, true, 0, true, JOULE_F32});
    check_reduce(&(red_case){"ReduceSum", 13, 3, {3, 4, 5}, -1, {0}, false, 0, true, JOULE_F32});
    check_reduce(&(red_case){"ReduceMax", 11, 3, {3, 4, 5}, 1, {2}, false, 0, false, JOULE_I8});
    check_reduce(&(red_case){"ReduceMin", 11, 3, {3, 4, 5}, 2, {0, 2}, false, 1, false,
                             JOULE_I8});

    /* repeated or out-of-range axes, int8 sums and int means are refused */
    tcase t = mk("ReduceMean", 1, 1, 11);
    joule_view in = view(JOULE_F32, 3, (int64_t[]){3, 4, 5});
    set_is(&t, "axes", (int64_t[]){1, -2}, 2);
    assert_false(supported(&t, 1, &in));
    set_is(&t, "axes", (int64_t[]){3}, 1);
    assert_false(supported(&t, 1, &in));
    set_is(&t, "axes", (int64_t[]){-3}, 1);
    assert_true(supported(&t, 1, &in));
    vfree(&in);
    in = view(JOULE_I32, 3, (int64_t[]){3, 4, 5});
    assert_false(supported(&t, 1, &in));
    vfree(&in);
    done(&t);
    t = mk("ReduceSum", 1, 1, 11);
    in = view(JOULE_I8, 3, (int64_t[]){3, 4, 5});
    assert_false(supported(&t, 1, &in));
    vfree(&in);
    done(&t);
}

/* Integer sums wrap like two's complement instead of overflowing. */
static void test_reduce_int_wrap(void **state)
{
    (void)state;
    tcase t = mk("ReduceSum", 1, 1, 11);
    set_i(&t, "keepdims", 0);
    joule_view in = view(JOULE_I32, 1, (int64_t[]){3});
    joule_view out = view(JOULE_I32, 0, NULL);
    vset(&in, 0, 2147483647.0);
    vset(&in, 1, 2.0);
    vset(&in, 2, 1.0);
    run_ok(&t, 1, &in, 0, 1, &out);
    assert_int_equal(((int32_t *)out.data)[0], -2147483646);
    vfree(&in);
    vfree(&out);
    done(&t);
}

/* ---- ArgMax / ArgMin ---- */

static void check_arg(const char *op, int rank, const int64_t *dims, int64_t axis, int keepdims,
                      int last, joule_dtype dt, double lo, double hi)
{
    tcase t = mk(op, 1, 1, 13);
    set_i(&t, "axis", axis);
    if (keepdims >= 0)
        set_i(&t, "keepdims", keepdims);
    set_i(&t, "select_last_index", last);
    const int a = (int)(axis < 0 ? axis + rank : axis);
    int64_t od[5];
    int orank = 0;
    for (int i = 0; i < rank; i++)
        if (i != a)
            od[orank++] = dims[i];
        else if (keepdims != 0)
            od[orank++] = 1;
    joule_view in = view(dt, rank, dims), out = view(JOULE_I64, orank, od);
    fill_rnd(&in, lo, hi);
    run_ok(&t, 1, &in, 0, 1, &out);
    double *x = as_double(&in);
    size_t outer = 1, inner = 1, n = (size_t)dims[a];
    for (int i = 0; i < rank; i++)
        if (i < a)
            outer *= (size_t)dims[i];
        else if (i > a)
            inner *= (size_t)dims[i];
    int64_t *want = malloc(outer * inner * sizeof *want);
    assert_non_null(want);
    const bool is_max = strcmp(op, "ArgMax") == 0;
    for (size_t o = 0; o < outer; o++)
        for (size_t i = 0; i < inner; i++) {
            /* best value first, then the first or last position holding it */
            double best = x[o * n * inner + i];
            for (size_t j = 0; j < n; j++) {
                double v = x[(o * n + j) * inner + i];
                best = is_max ? fmax(best, v) : fmin(best, v);
            }
            int64_t at = -1;
            for (size_t j = 0; j < n; j++)
                if (x[(o * n + j) * inner + i] == best && (at < 0 || last))
                    at = (int64_t)j;
            want[o * inner + i] = at;
        }
    expect_i64(&out, want, op);
    free(want);
    free(x);
    vfree(&in);
    vfree(&out);
    done(&t);
}

static void test_argmax(void **state)
{
    (void)state;
    const int64_t d3[3] = {3, 4, 5}, big[3] = {5, 200, 140};
    for (int last = 0; last < 2; last++)
        for (int keep = -1; keep < 2; keep++) {
            /* small integer values give many ties, so select_last_index matters */
            check_arg("ArgMax", 3, d3, 0, keep, last, JOULE_F32, 0, 3);
            check_arg("ArgMax", 3, d3, 1, keep, last, JOULE_F32, 0, 3);
            check_arg("ArgMax", 3, d3, -1, keep, last, JOULE_F32, 0, 3);
            check_arg("ArgMin", 3, d3, -2, keep, last, JOULE_F32, 0, 3);
            check_arg("ArgMax", 3, d3, 2, keep, last, JOULE_I64, -3, 3);
            check_arg("ArgMax", 3, d3, 1, keep, last, JOULE_I32, -3, 3);
            check_arg("ArgMax", 3, d3, 1, keep, last, JOULE_I8, -3, 3);
            check_arg("ArgMin", 3, d3, 0, keep, last, JOULE_U8, 0, 4);
            check_arg("ArgMax", 3, d3, 1, keep, last, JOULE_F16, -2, 2);
            check_arg("ArgMax", 3, d3, 0, keep, last, JOULE_F64, -2, 2);
            check_arg("ArgMax", 3, big, 1, keep, last, JOULE_F32, 0, 50);
        }
    /* the spec's select_last_index example: [[2, 2], [3, 10]] along axis 1 */
    tcase t = mk("ArgMax", 1, 1, 12);
    set_i(&t, "axis", 1);
    set_i(&t, "select_last_index", 1);
    joule_view in = view(JOULE_F32, 2, (int64_t[]){2, 2}),
               out = view(JOULE_I64, 2, (int64_t[]){2, 1});
    const double xv[4] = {2, 2, 3, 10};
    for (size_t i = 0; i < 4; i++)
        vset(&in, i, xv[i]);
    run_ok(&t, 1, &in, 0, 1, &out);
    expect_i64(&out, (int64_t[]){1, 1}, "ArgMax select_last_index");
    vfree(&in);
    vfree(&out);
    done(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_maxpool_2d, reseed),
        cmocka_unit_test_setup(test_maxpool_1d_3d, reseed),
        cmocka_unit_test_setup(test_maxpool_dtypes, reseed),
        cmocka_unit_test_setup(test_maxpool_spec_examples, reseed),
        cmocka_unit_test_setup(test_pool_ceil_sizes, reseed),
        cmocka_unit_test_setup(test_averagepool, reseed),
        cmocka_unit_test_setup(test_pool_bad_shapes, reseed),
        cmocka_unit_test_setup(test_global_pool, reseed),
        cmocka_unit_test_setup(test_batchnorm, reseed),
        cmocka_unit_test_setup(test_layernorm, reseed),
        cmocka_unit_test_setup(test_instancenorm, reseed),
        cmocka_unit_test_setup(test_softmax, reseed),
        cmocka_unit_test_setup(test_reduce, reseed),
        cmocka_unit_test_setup(test_reduce_int_wrap, reseed),
        cmocka_unit_test_setup(test_argmax, reseed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* tests/unit/test_kernels_linalg.c: the MatMul, Gemm, Conv and ConvTranspose kernels of the cpu
 * backend. Hand-computed cases (ONNX's documentation examples and backend-test outputs) pin the
 * reference kernels; then every fast kernel is run on random inputs over many configurations
 * (groups, dilations, strides, asymmetric and automatic pads, 1x1, depthwise, 1D/3D, batches,
 * transposes, broadcasting, f16, constant and non-constant weights, 1 and 3 threads) and must
 * agree with the reference within |fast - ref| <= 1e-4 + 1e-3 |ref| (f32). Finally every kernel
 * runs the single-node ONNX backend tests (node/, pytorch-converted/, pytorch-operator/) for
 * these ops and must reproduce their recorded outputs. */
#include "common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/cpu/linalg/linalg.h"
#include "eval/kernel.h"
#include "onnx.pb-c.h"

/* ---- helpers: random numbers, views, nodes, running a kernel ---- */

typedef struct rng {
    uint64_t s;
} rng;

static double rng_uniform(rng *r) /* in [-1, 1) */
{
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return (double)(r->s >> 11) / (double)(1ull << 53) * 2.0 - 1.0;
}

static joule_view *view_new(joule_dtype t, int rank, const int64_t *dims)
{
    joule_view *v = calloc(1, sizeof *v);
    assert_non_null(v);
    v->dtype = t;
    v->rank = rank;
    size_t count = 1;
    for (int i = 0; i < rank; i++) {
        v->dims[i] = dims[i];
        count *= (size_t)dims[i];
    }
    v->count = count;
    v->data = calloc(count ? count : 1, joule_dtype_bytes(t, 1));
    assert_non_null(v->data);
    return v;
}

static void view_free(joule_view *v)
{
    if (v)
        free(v->data);
    free(v);
}

static void view_fill_random(joule_view *v, rng *r)
{
    for (size_t i = 0; i < v->count; i++)
        joule_linalg_store(v->dtype, v->data, i, rng_uniform(r));
}

static void view_set(joule_view *v, const double *vals)
{
    for (size_t i = 0; i < v->count; i++)
        joule_linalg_store(v->dtype, v->data, i, vals[i]);
}

/* Each test owns one model; nodes are placed in its graph so they are freed with it. */
static int setup_model(void **state)
{
    joule_error err;
    joule_model *m;
    if (joule_model_new(17, &m, &err) != JOULE_OK)
        return -1;
    *state = m;
    return 0;
}

static int teardown_model(void **state)
{
    joule_model_free(*state);
    return 0;
}

static joule_node *node_new(joule_model *m, const char *op, int n_in)
{
    static const char *const names[] = {"X", "W", "B"};
    joule_error err;
    joule_node *n;
    char name[64];
    snprintf(name, sizeof name, "%s_%zu", op, m->graph->n_nodes);
    const char *out = name;
    assert_joule_ok(joule_node_create(m->graph, op, "", name, n_in, names, 1, &out, &n, &err),
                    &err);
    assert_joule_ok(joule_graph_insert_after(m->graph, n, NULL, &err), &err);
    return n;
}

static void set_ints(joule_model *m, joule_node *n, const char *name, const int64_t *v,
                     size_t count)
{
    joule_error err;
    assert_joule_ok(joule_node_set_attr_ints(m->graph, n, name, v, count, &err), &err);
}

static const joule_kernel *kernel_named(const joule_kernel *table, const char *name)
{
    for (const joule_kernel *k = table; k->op_type; k++)
        if (strcmp(k->name, name) == 0)
            return k;
    fail_msg("no kernel named %s", name);
    return NULL;
}

/* First kernel of table that takes node, as the engine picks. */
static const joule_kernel *kernel_pick(const joule_kernel *table, const joule_node *node,
                                       int n_in, const joule_view *const *in)
{
    for (const joule_kernel *k = table; k->op_type; k++)
        if (strcmp(k->op_type, node->op_type) == 0 && k->supports(node, 17, n_in, in))
            return k;
    return NULL;
}

/* Runs k like the engine: prepare (inputs other than those in const_mask without data), scratch
 * of exactly the requested size, run, destroy. */
static joule_status kernel_exec(const joule_kernel *k, const joule_node *node, int n_in,
                                const joule_view *const *in, joule_view *out, int threads,
                                unsigned const_mask, joule_error *err)
{
    joule_view prep_views[3];
    const joule_view *prep_in[3] = {NULL, NULL, NULL};
    for (int i = 0; i < n_in; i++) {
        if (!in[i])
            continue;
        prep_views[i] = *in[i];
        if (!(const_mask & (1u << i)))
            prep_views[i].data = NULL;
        prep_in[i] = &prep_views[i];
    }
    joule_view out_prep = *out;
    out_prep.data = NULL;
    joule_view *outs[1] = {&out_prep};
    joule_kernel_ctx ctx = {.node = node, .opset = 17, .n_in = n_in, .in = prep_in, .n_out = 1,
                            .out = outs, .threads = threads, .err = err};
    void *state = NULL;
    size_t scratch_bytes = 0;
    if (k->prepare) {
        joule_status st = k->prepare(&ctx, &state, &scratch_bytes);
        if (st)
            return st;
    }
    void *scratch = scratch_bytes ? malloc(scratch_bytes) : NULL;
    assert_true(scratch_bytes == 0 || scratch != NULL);
    outs[0] = out;
    ctx.in = in;
    ctx.state = state;
    ctx.scratch = scratch;
    joule_status st = k->run(&ctx);
    free(scratch);
    if (k->destroy)
        k->destroy(state);
    return st;
}

static void exec_ok(const joule_kernel *k, const joule_node *node, int n_in,
                    const joule_view *const *in, joule_view *out, int threads, unsigned const_mask)
{
    joule_error err = {{0}};
    assert_joule_ok(kernel_exec(k, node, n_in, in, out, threads, const_mask, &err), &err);
}

/* |got - want| <= abs + rel |want| everywhere (tolerance by dtype). */
static void expect_close(const char *what, const joule_view *got, const joule_view *want)
{
    assert_int_equal(got->count, want->count);
    double abs_tol = 1e-4, rel_tol = 1e-3;
    if (got->dtype == JOULE_F16) {
        /* both round to f16 once, from f32 and f64 sums: up to one f16 ulp apart */
        abs_tol = 1e-3;
        rel_tol = 2e-3;
    } else if (got->dtype == JOULE_F64) {
        abs_tol = 1e-10;
        rel_tol = 1e-9;
    }
    for (size_t i = 0; i < got->count; i++) {
        double g = joule_linalg_load(got->dtype, got->data, i);
        double w = joule_linalg_load(want->dtype, want->data, i);
        if (!(fabs(g - w) <= abs_tol + rel_tol * fabs(w)))
            fail_msg("%s: element %zu of %zu is %.9g, reference %.9g", what, i, got->count, g,
                     w);
    }
}

static void expect_values(const char *what, const joule_view *got, const double *want,
                          size_t n)
{
    assert_int_equal(got->count, n);
    for (size_t i = 0; i < n; i++) {
        double g = joule_linalg_load(got->dtype, got->data, i);
        if (!(fabs(g - want[i]) <= 1e-4 + 1e-4 * fabs(want[i])))
            fail_msg("%s: element %zu is %.9g, expected %.9g", what, i, g, want[i]);
    }
}

/* ---- Conv / ConvTranspose cases ---- */

typedef struct conv_case {
    const char *label;
    bool transpose;
    int nsp;
    int64_t n, c_in, c_out, group;
    int64_t in[3], k[3];
    int64_t stride[3], dil[3]; /* all zero: attribute omitted */
    int64_t pads[6];           /* used when has_pads */
    bool has_pads;
    const char *auto_pad;      /* NULL: omitted */
    bool bias;
    int64_t out_pad[3];        /* ConvTranspose output_padding, zero: omitted */
    int64_t out_shape[3];      /* ConvTranspose output_shape, zero: omitted */
    const char *fast;          /* kernel the fast table must pick */
} conv_case;

static bool any(const int64_t *v, int n)
{
    for (int i = 0; i < n; i++)
        if (v[i])
            return true;
    return false;
}

static joule_node *conv_node(joule_model *m, const conv_case *c)
{
    joule_node *n = node_new(m, c->transpose ? "ConvTranspose" : "Conv", c->bias ? 3 : 2);
    joule_error err;
    if (c->group != 1)
        assert_joule_ok(joule_node_set_attr_int(m->graph, n, "group", c->group, &err), &err);
    if (any(c->stride, c->nsp))
        set_ints(m, n, "strides", c->stride, (size_t)c->nsp);
    if (any(c->dil, c->nsp))
        set_ints(m, n, "dilations", c->dil, (size_t)c->nsp);
    if (c->has_pads)
        set_ints(m, n, "pads", c->pads, 2 * (size_t)c->nsp);
    if (c->auto_pad)
        assert_joule_ok(joule_node_set_attr_string(m->graph, n, "auto_pad", c->auto_pad, &err),
                        &err);
    if (any(c->out_pad, c->nsp))
        set_ints(m, n, "output_padding", c->out_pad, (size_t)c->nsp);
    if (any(c->out_shape, c->nsp))
        set_ints(m, n, "output_shape", c->out_shape, (size_t)c->nsp);
    set_ints(m, n, "kernel_shape", c->k, (size_t)c->nsp);
    return n;
}

typedef struct conv_io {
    joule_node *node;
    int n_in;
    joule_view *in[3];
    joule_view *ref;
} conv_io;

/* Builds X, W, B for c in dtype t and runs the reference into io->ref. */
static void conv_io_make(joule_model *m, const conv_case *c, joule_dtype t, uint64_t seed,
                         conv_io *io)
{
    memset(io, 0, sizeof *io);
    rng r = {seed * 0x9e3779b97f4a7c15ull + 1};
    io->node = conv_node(m, c);
    io->n_in = c->bias ? 3 : 2;
    int64_t xd[5] = {c->n, c->c_in}, wd[5];
    if (c->transpose) {
        wd[0] = c->c_in;
        wd[1] = c->c_out / c->group;
    } else {
        wd[0] = c->c_out;
        wd[1] = c->c_in / c->group;
    }
    for (int i = 0; i < c->nsp; i++) {
        xd[2 + i] = c->in[i];
        wd[2 + i] = c->k[i];
    }
    io->in[0] = view_new(t, 2 + c->nsp, xd);
    io->in[1] = view_new(t, 2 + c->nsp, wd);
    view_fill_random(io->in[0], &r);
    view_fill_random(io->in[1], &r);
    if (c->bias) {
        io->in[2] = view_new(t, 1, &c->c_out);
        view_fill_random(io->in[2], &r);
    }
    joule_conv_params p;
    joule_error err;
    assert_joule_ok(joule_conv_params_init(io->node, c->transpose, io->in[0], io->in[1],
                                           io->in[2], &p, &err),
                    &err);
    int64_t yd[5];
    joule_conv_out_dims(&p, yd);
    io->ref = view_new(t, 2 + c->nsp, yd);
    const joule_kernel *ref = kernel_pick(joule_cpu_kernels_linalg_ref, io->node, io->n_in,
                                          (const joule_view *const *)io->in);
    assert_non_null(ref);
    exec_ok(ref, io->node, io->n_in, (const joule_view *const *)io->in, io->ref, 1, 0);
}

static void conv_io_free(conv_io *io)
{
    for (int i = 0; i < 3; i++)
        view_free(io->in[i]);
    view_free(io->ref);
}

/* Runs fast kernel k on io with the given threads and constness and compares with the ref. */
static void conv_check_kernel(const conv_case *c, const conv_io *io, const joule_kernel *k,
                              int threads, unsigned const_mask)
{
    joule_view *y = view_new(io->ref->dtype, io->ref->rank, io->ref->dims);
    memset(y->data, 0x7f, joule_dtype_bytes(y->dtype, y->count)); /* garbage, not zeros */
    exec_ok(k, io->node, io->n_in, (const joule_view *const *)io->in, y, threads, const_mask);
    char what[160];
    snprintf(what, sizeof what, "%s [%s, %s, threads %d, const %u]", c->label, k->name,
             joule_dtype_name(y->dtype), threads, const_mask);
    expect_close(what, y, io->ref);
    view_free(y);
}

static const conv_case conv_cases[] = {
    {"2d 3x3 pad1", false, 2, 1, 4, 6, 1, {9, 11}, {3, 3}, .pads = {1, 1, 1, 1},
     .has_pads = true, .bias = true, .fast = "cpu.conv.im2col_sgemm"},
    {"2d 3x3 no pad", false, 2, 2, 3, 5, 1, {8, 7}, {3, 3}, .fast = "cpu.conv.im2col_sgemm"},
    {"2d stride 2", false, 2, 1, 3, 4, 1, {9, 10}, {3, 3}, {2, 2}, .pads = {1, 1, 1, 1},
     .has_pads = true, .bias = true, .fast = "cpu.conv.im2col_sgemm"},
    {"2d asymmetric pads", false, 2, 1, 2, 3, 1, {7, 6}, {3, 2}, {2, 1}, .pads = {0, 2, 1, 0},
     .has_pads = true, .fast = "cpu.conv.im2col_sgemm"},
    {"2d dilation 2", false, 2, 1, 3, 4, 1, {11, 9}, {3, 3}, .dil = {2, 2},
     .pads = {2, 1, 2, 1}, .has_pads = true, .bias = true, .fast = "cpu.conv.im2col_sgemm"},
    {"2d dilation+stride", false, 2, 2, 2, 3, 1, {12, 13}, {3, 2}, {2, 3}, {2, 3},
     .pads = {1, 2, 3, 0}, .has_pads = true, .fast = "cpu.conv.im2col_sgemm"},
    {"2d groups 2", false, 2, 1, 4, 6, 2, {7, 7}, {3, 3}, .pads = {1, 1, 1, 1},
     .has_pads = true, .bias = true, .fast = "cpu.conv.im2col_sgemm"},
    {"2d groups 3 stride", false, 2, 2, 6, 3, 3, {8, 9}, {2, 3}, {2, 1},
     .fast = "cpu.conv.im2col_sgemm"},
    {"2d 1x1", false, 2, 2, 8, 5, 1, {6, 7}, {1, 1}, .bias = true, .fast = "cpu.conv.1x1_sgemm"},
    {"2d 1x1 groups", false, 2, 1, 6, 4, 2, {5, 5}, {1, 1}, .fast = "cpu.conv.1x1_sgemm"},
    {"2d 1x1 stride 2", false, 2, 1, 4, 3, 1, {7, 8}, {1, 1}, {2, 2},
     .fast = "cpu.conv.im2col_sgemm"},
    {"2d 1x1 padded", false, 2, 1, 3, 2, 1, {4, 5}, {1, 1}, .pads = {1, 0, 0, 1},
     .has_pads = true, .fast = "cpu.conv.im2col_sgemm"},
    {"depthwise 3x3", false, 2, 2, 5, 5, 5, {9, 8}, {3, 3}, .pads = {1, 1, 1, 1},
     .has_pads = true, .bias = true, .fast = "cpu.conv.depthwise"},
    {"depthwise stride 2", false, 2, 1, 4, 4, 4, {10, 11}, {3, 3}, {2, 2},
     .pads = {1, 1, 1, 1}, .has_pads = true, .fast = "cpu.conv.depthwise"},
    {"depthwise dilated asym", false, 2, 1, 3, 3, 3, {9, 12}, {3, 3}, {1, 2}, {2, 2},
     .pads = {0, 3, 2, 1}, .has_pads = true, .bias = true, .fast = "cpu.conv.depthwise"},
    {"depthwise multiplier 2", false, 2, 1, 3, 6, 3, {7, 7}, {5, 5}, .pads = {2, 2, 2, 2},
     .has_pads = true, .fast = "cpu.conv.depthwise"},
    {"depthwise 1d", false, 1, 2, 4, 4, 4, {15}, {5}, {2}, .pads = {2, 1}, .has_pads = true,
     .bias = true, .fast = "cpu.conv.depthwise"},
    {"single input channel", false, 2, 1, 1, 4, 1, {6, 6}, {3, 3},
     .fast = "cpu.conv.depthwise"},
    /* rows wider than a 16-float vector, so the depthwise interior loops run whole vectors and
     * remainders; the fixture CNN's first conv (1 -> 16 channels, 28x28, pad 1) */
    {"depthwise 3x3 wide", false, 2, 2, 3, 3, 3, {19, 37}, {3, 3}, .pads = {1, 1, 1, 1},
     .has_pads = true, .bias = true, .fast = "cpu.conv.depthwise"},
    {"depthwise 3x3 wide stride 2", false, 2, 1, 2, 4, 2, {21, 70}, {3, 3}, {2, 2},
     .pads = {1, 0, 1, 2}, .has_pads = true, .bias = true, .fast = "cpu.conv.depthwise"},
    {"depthwise 3x3 wide dilated", false, 2, 1, 2, 2, 2, {17, 41}, {3, 3}, {1, 1}, {2, 3},
     .pads = {2, 3, 2, 3}, .has_pads = true, .fast = "cpu.conv.depthwise"},
    {"depthwise 1x3 wide", false, 2, 1, 2, 2, 2, {9, 33}, {1, 3}, .pads = {0, 1, 0, 1},
     .has_pads = true, .fast = "cpu.conv.depthwise"},
    /* output rows of 48 and more take the row-at-a-time depthwise path, shorter ones the
     * flat padded-plane path */
    {"depthwise 3x3 long rows", false, 2, 1, 2, 2, 2, {6, 100}, {3, 3}, .pads = {1, 1, 1, 1},
     .has_pads = true, .bias = true, .fast = "cpu.conv.depthwise"},
    {"depthwise 3x3 long rows stride 2", false, 2, 2, 2, 2, 2, {7, 131}, {3, 3}, {2, 2},
     .pads = {1, 1, 1, 1}, .has_pads = true, .fast = "cpu.conv.depthwise"},
    {"depthwise 5x5 long rows", false, 2, 1, 2, 4, 2, {6, 60}, {5, 5}, .pads = {2, 2, 2, 2},
     .has_pads = true, .bias = true, .fast = "cpu.conv.depthwise"},
    {"cnn conv 1", false, 2, 3, 1, 16, 1, {28, 28}, {3, 3}, .pads = {1, 1, 1, 1},
     .has_pads = true, .bias = true, .fast = "cpu.conv.depthwise"},
    {"depthwise no interior", false, 2, 1, 2, 2, 2, {5, 4}, {3, 5}, .pads = {2, 3, 2, 3},
     .has_pads = true, .bias = true, .fast = "cpu.conv.depthwise"},
    {"same_upper", false, 2, 1, 2, 3, 1, {7, 8}, {3, 4}, {2, 3}, .auto_pad = "SAME_UPPER",
     .bias = true, .fast = "cpu.conv.im2col_sgemm"},
    {"same_lower", false, 2, 1, 2, 3, 1, {7, 8}, {4, 3}, {2, 2}, .auto_pad = "SAME_LOWER",
     .fast = "cpu.conv.im2col_sgemm"},
    {"same_upper 1x1", false, 2, 1, 3, 2, 1, {5, 6}, {1, 1}, .auto_pad = "SAME_UPPER",
     .fast = "cpu.conv.1x1_sgemm"},
    {"valid", false, 2, 1, 2, 3, 1, {9, 8}, {3, 3}, {2, 2}, .pads = {5, 5, 5, 5},
     .has_pads = true, .auto_pad = "VALID", .fast = "cpu.conv.im2col_sgemm"},
    {"1d", false, 1, 2, 3, 4, 1, {17}, {4}, {2}, .pads = {1, 2}, .has_pads = true, .bias = true,
     .fast = "cpu.conv.im2col_sgemm"},
    {"1d dilated", false, 1, 1, 2, 2, 1, {20}, {3}, .dil = {3}, .fast = "cpu.conv.im2col_sgemm"},
    {"3d", false, 3, 1, 2, 3, 1, {5, 6, 7}, {3, 3, 3}, .pads = {1, 1, 1, 1, 1, 1},
     .has_pads = true, .bias = true, .fast = "cpu.conv.im2col_sgemm"},
    {"3d strided groups", false, 3, 2, 4, 4, 2, {6, 5, 7}, {2, 3, 2}, {2, 1, 2}, {1, 1, 2},
     .pads = {0, 1, 1, 1, 0, 0}, .has_pads = true, .fast = "cpu.conv.im2col_sgemm"},
    {"3d 1x1", false, 3, 1, 3, 2, 1, {3, 4, 5}, {1, 1, 1}, .fast = "cpu.conv.1x1_sgemm"},
    {"3d depthwise", false, 3, 1, 3, 3, 3, {4, 5, 6}, {3, 3, 3}, .pads = {1, 1, 1, 1, 1, 1},
     .has_pads = true, .fast = "cpu.conv.im2col_sgemm"},
    {"big image, tiled im2col", false, 2, 1, 64, 2, 1, {64, 64}, {3, 3}, .pads = {1, 1, 1, 1},
     .has_pads = true, .bias = true, .fast = "cpu.conv.im2col_sgemm"},
    {"kernel = input", false, 2, 1, 3, 2, 1, {3, 3}, {3, 3}, .fast = "cpu.conv.im2col_sgemm"},

    {"T 2d", true, 2, 1, 2, 3, 1, {4, 5}, {3, 3}, .bias = true,
     .fast = "cpu.conv_transpose.sgemm_col2im"},
    {"T 2d stride 2 pads", true, 2, 2, 3, 2, 1, {4, 4}, {3, 3}, {2, 2}, .pads = {1, 1, 1, 1},
     .has_pads = true, .fast = "cpu.conv_transpose.sgemm_col2im"},
    {"T output_padding", true, 2, 1, 2, 2, 1, {3, 4}, {3, 3}, {2, 3}, .pads = {1, 0, 0, 1},
     .has_pads = true, .out_pad = {1, 2}, .bias = true, .fast = "cpu.conv_transpose.sgemm_col2im"},
    {"T dilation", true, 2, 1, 2, 3, 1, {4, 3}, {2, 3}, {1, 2}, {2, 2},
     .fast = "cpu.conv_transpose.sgemm_col2im"},
    {"T groups", true, 2, 1, 4, 6, 2, {5, 4}, {3, 2}, {2, 1}, .pads = {0, 1, 1, 0},
     .has_pads = true, .bias = true, .fast = "cpu.conv_transpose.sgemm_col2im"},
    {"T depthwise", true, 2, 1, 3, 3, 3, {5, 5}, {4, 4}, {2, 2}, .pads = {1, 1, 1, 1},
     .has_pads = true, .fast = "cpu.conv_transpose.sgemm_col2im"},
    {"T same_upper", true, 2, 1, 2, 2, 1, {3, 4}, {3, 3}, {2, 2}, .auto_pad = "SAME_UPPER",
     .fast = "cpu.conv_transpose.sgemm_col2im"},
    {"T same_lower", true, 2, 1, 2, 2, 1, {3, 4}, {3, 4}, {2, 3}, .auto_pad = "SAME_LOWER",
     .fast = "cpu.conv_transpose.sgemm_col2im"},
    {"T output_shape", true, 2, 1, 1, 2, 1, {3, 3}, {3, 3}, {3, 2}, .out_shape = {10, 8},
     .fast = "cpu.conv_transpose.sgemm_col2im"},
    {"T output_shape smaller", true, 2, 1, 2, 2, 1, {4, 4}, {3, 3}, {2, 2}, .out_shape = {7, 8},
     .bias = true, .fast = "cpu.conv_transpose.sgemm_col2im"},
    {"T 1x1", true, 2, 2, 4, 3, 1, {3, 5}, {1, 1}, .bias = true,
     .fast = "cpu.conv_transpose.sgemm_col2im"},
    {"T 1d", true, 1, 2, 3, 2, 1, {7}, {4}, {3}, .pads = {1, 2}, .has_pads = true,
     .out_pad = {2}, .fast = "cpu.conv_transpose.sgemm_col2im"},
    {"T 3d", true, 3, 1, 2, 2, 1, {3, 4, 3}, {2, 3, 2}, {2, 1, 2}, .pads = {0, 1, 1, 0, 1, 0},
     .has_pads = true, .bias = true, .fast = "cpu.conv_transpose.sgemm_col2im"},
    {"T big, tiled col2im", true, 2, 1, 2, 64, 1, {64, 64}, {3, 3}, .bias = true,
     .fast = "cpu.conv_transpose.sgemm_col2im"},
};

static void test_conv_fast_vs_ref(void **state)
{
    joule_model *m = *state;
    const joule_dtype dtypes[] = {JOULE_F32, JOULE_F16};
    for (size_t ci = 0; ci < sizeof conv_cases / sizeof conv_cases[0]; ci++) {
        const conv_case *c = &conv_cases[ci];
        for (size_t di = 0; di < 2; di++) {
            conv_io io;
            conv_io_make(m, c, dtypes[di], ci * 2 + di, &io);
            const joule_view *const *in = (const joule_view *const *)io.in;
            const joule_kernel *k = kernel_pick(joule_cpu_kernels_linalg, io.node, io.n_in, in);
            if (!k || strcmp(k->name, c->fast) != 0)
                fail_msg("%s: fast table picks %s, expected %s", c->label, k ? k->name : "none",
                         c->fast);
            /* constant weights (pre-packed) and non-constant ones, 1 and 3 threads */
            conv_check_kernel(c, &io, k, 1, 0x6);
            conv_check_kernel(c, &io, k, 3, 0x0);
            /* the general Conv kernel must also handle the specialised cases */
            if (!c->transpose && strcmp(k->name, "cpu.conv.im2col_sgemm") != 0) {
                const joule_kernel *g = kernel_named(joule_cpu_kernels_linalg,
                                                     "cpu.conv.im2col_sgemm");
                assert_true(g->supports(io.node, 17, io.n_in, in));
                conv_check_kernel(c, &io, g, 1, 0x6);
            }
            conv_io_free(&io);
        }
    }
}

/* f64 Conv has no fast kernel; the reference computes it, and agrees with its own f32 run. */
static void test_conv_f64_reference(void **state)
{
    joule_model *m = *state;
    const conv_case *cases[] = {&conv_cases[5], &conv_cases[6], &conv_cases[32]};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        conv_io d, f;
        conv_io_make(m, cases[i], JOULE_F64, 77 + i, &d);
        conv_io_make(m, cases[i], JOULE_F32, 77 + i, &f);
        assert_null(kernel_pick(joule_cpu_kernels_linalg, d.node, d.n_in,
                                (const joule_view *const *)d.in));
        /* same random numbers, so f32 and f64 results differ only by rounding */
        for (size_t j = 0; j < d.ref->count; j++) {
            double a = ((double *)d.ref->data)[j], b = ((float *)f.ref->data)[j];
            if (!(fabs(a - b) <= 1e-5 + 1e-5 * fabs(a)))
                fail_msg("%s: f64 %.9g vs f32 %.9g at %zu", cases[i]->label, a, b, j);
        }
        conv_io_free(&d);
        conv_io_free(&f);
    }
}

/* Runs the reference and every fast kernel of the node's op on hand-made inputs and checks
 * them against the expected output. */
static void conv_expect(joule_model *m, const conv_case *c, const double *x, const double *w,
                        const double *want, const int64_t *want_dims)
{
    conv_io io;
    conv_io_make(m, c, JOULE_F32, 1, &io);
    view_set(io.in[0], x);
    view_set(io.in[1], w);
    if (io.in[2])
        memset(io.in[2]->data, 0, io.in[2]->count * sizeof(float));
    for (int i = 0; i < 2 + c->nsp; i++)
        assert_int_equal(io.ref->dims[i], want_dims[i]);
    const joule_view *const *in = (const joule_view *const *)io.in;
    for (const joule_kernel *k = joule_cpu_kernels_linalg_ref; k->op_type; k++)
        if (strcmp(k->op_type, io.node->op_type) == 0) {
            exec_ok(k, io.node, io.n_in, in, io.ref, 1, 0x6);
            expect_values(c->label, io.ref, want, io.ref->count);
        }
    for (const joule_kernel *k = joule_cpu_kernels_linalg; k->op_type; k++)
        if (strcmp(k->op_type, io.node->op_type) == 0 && k->supports(io.node, 17, io.n_in, in)) {
            exec_ok(k, io.node, io.n_in, in, io.ref, 2, 0x6);
            expect_values(c->label, io.ref, want, io.ref->count);
        }
    conv_io_free(&io);
}

static void iota(double *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        v[i] = (double)i;
}

/* ONNX's Conv documentation examples: 5x5 input 0..24, 3x3 kernel of ones. */
static void test_conv_onnx_examples(void **state)
{
    joule_model *m = *state;
    double x[35], ones[18];
    iota(x, 35);
    for (int i = 0; i < 18; i++)
        ones[i] = 1.0;
    const conv_case padded = {"onnx conv pads 1", false, 2, 1, 1, 1, 1, {5, 5}, {3, 3},
                              .pads = {1, 1, 1, 1}, .has_pads = true};
    const double want_padded[] = {12, 21,  27,  33,  24,  33, 54,  63,  72,  51,
                                  63, 99,  108, 117, 81,  93, 144, 153, 162, 111,
                                  72, 111, 117, 123, 84};
    conv_expect(m, &padded, x, ones, want_padded, (int64_t[]){1, 1, 5, 5});

    const conv_case unpadded = {"onnx conv no pads", false, 2, 1, 1, 1, 1, {5, 5}, {3, 3}, .bias = false};
    const double want_unpadded[] = {54, 63, 72, 99, 108, 117, 144, 153, 162};
    conv_expect(m, &unpadded, x, ones, want_unpadded, (int64_t[]){1, 1, 3, 3});

    /* 7x5 input 0..34, strides 2 */
    const conv_case strided = {"onnx conv strides pads", false, 2, 1, 1, 1, 1, {7, 5}, {3, 3},
                               {2, 2}, .pads = {1, 1, 1, 1}, .has_pads = true};
    const double want_strided[] = {12, 27, 24, 63, 108, 81, 123, 198, 141, 112, 177, 124};
    conv_expect(m, &strided, x, ones, want_strided, (int64_t[]){1, 1, 4, 3});

    const conv_case asym = {"onnx conv asymmetric pads", false, 2, 1, 1, 1, 1, {7, 5}, {3, 3},
                            {2, 2}, .pads = {1, 0, 1, 0}, .has_pads = true};
    const double want_asym[] = {21, 33, 99, 117, 189, 207, 171, 183};
    conv_expect(m, &asym, x, ones, want_asym, (int64_t[]){1, 1, 4, 2});

    /* backend test test_conv_with_autopad_same */
    const conv_case same = {"onnx conv SAME_LOWER", false, 2, 1, 1, 1, 1, {5, 5}, {3, 3},
                            {2, 2}, .auto_pad = "SAME_LOWER"};
    const double want_same[] = {12, 27, 24, 63, 108, 81, 72, 117, 84};
    conv_expect(m, &same, x, ones, want_same, (int64_t[]){1, 1, 3, 3});

    /* odd total padding: SAME_UPPER pads the end, SAME_LOWER the beginning */
    const double x6[] = {0, 1, 2, 3, 4, 5}, w2[] = {1, 1};
    const conv_case upper = {"SAME_UPPER odd", false, 1, 1, 1, 1, 1, {6}, {2},
                             .auto_pad = "SAME_UPPER"};
    conv_expect(m, &upper, x6, w2, (double[]){1, 3, 5, 7, 9, 5}, (int64_t[]){1, 1, 6});
    const conv_case lower = {"SAME_LOWER odd", false, 1, 1, 1, 1, 1, {6}, {2},
                             .auto_pad = "SAME_LOWER"};
    conv_expect(m, &lower, x6, w2, (double[]){0, 1, 3, 5, 7, 9}, (int64_t[]){1, 1, 6});

    /* depthwise by hand: 2 channels, kernel [[1,0],[0,-1]] and [[0,2],[0,0]] */
    const conv_case dw = {"depthwise by hand", false, 2, 1, 2, 2, 2, {2, 3}, {2, 2}, .bias = false};
    const double dx[] = {1, 2, 3, 4, 5, 6, 10, 20, 30, 40, 50, 60};
    const double dwt[] = {1, 0, 0, -1, 0, 2, 0, 0};
    const double want_dw[] = {1 - 5, 2 - 6, 40, 60};
    conv_expect(m, &dw, dx, dwt, want_dw, (int64_t[]){1, 2, 1, 2});
}

/* ONNX ConvTranspose backend tests: x 3x3 = 0..8, W ones [1,2,3,3]. */
static void test_conv_transpose_onnx_examples(void **state)
{
    joule_model *m = *state;
    double x[9], ones[18];
    iota(x, 9);
    for (int i = 0; i < 18; i++)
        ones[i] = 1.0;
    const double plain[25] = {0, 1,  3,  3,  2,  3, 8,  15, 12, 7,  9, 21, 36,
                              27, 15, 9, 20, 33, 24, 13, 6, 13, 21, 15, 8};
    double want[200];
    memcpy(want, plain, sizeof plain);
    memcpy(want + 25, plain, sizeof plain);
    const conv_case basic = {"onnx convtranspose", true, 2, 1, 1, 2, 1, {3, 3}, {3, 3}, .bias = false};
    conv_expect(m, &basic, x, ones, want, (int64_t[]){1, 2, 5, 5});

    const double same[36] = {0, 0, 1,  1, 3,  2, 0, 0, 1,  1, 3,  2, 3, 3, 8,  5, 12, 7,
                             3, 3, 7,  4, 9,  5, 9, 9, 20, 11, 24, 13, 6, 6, 13, 7, 15, 8};
    memcpy(want, same, sizeof same);
    memcpy(want + 36, same, sizeof same);
    const conv_case autopad = {"onnx convtranspose SAME_UPPER", true, 2, 1, 1, 2, 1, {3, 3},
                               {3, 3}, {2, 2}, .auto_pad = "SAME_UPPER"};
    conv_expect(m, &autopad, x, ones, want, (int64_t[]){1, 2, 6, 6});

    const double oshape[80] = {
        0, 0, 1, 1, 3,  2, 2, 0, 0, 0, 1, 1, 3,  2, 2, 0, 0, 0, 1, 1, 3,  2, 2, 0,
        3, 3, 7, 4, 9,  5, 5, 0, 3, 3, 7, 4, 9,  5, 5, 0, 3, 3, 7, 4, 9,  5, 5, 0,
        6, 6, 13, 7, 15, 8, 8, 0, 6, 6, 13, 7, 15, 8, 8, 0, 6, 6, 13, 7, 15, 8, 8, 0,
        0, 0, 0, 0, 0,  0, 0, 0};
    memcpy(want, oshape, sizeof oshape);
    memcpy(want + 80, oshape, sizeof oshape);
    const conv_case outshape = {"onnx convtranspose output_shape", true, 2, 1, 1, 2, 1, {3, 3},
                                {3, 3}, {3, 2}, .out_shape = {10, 8}};
    conv_expect(m, &outshape, x, ones, want, (int64_t[]){1, 2, 10, 8});
    /* same result through output_padding: 3*2+3+1 = 10 rows, 2*2+3+1 = 8 columns */
    const conv_case outpad = {"onnx convtranspose output_padding", true, 2, 1, 1, 2, 1, {3, 3},
                              {3, 3}, {3, 2}, .out_pad = {1, 1}};
    conv_expect(m, &outpad, x, ones, want, (int64_t[]){1, 2, 10, 8});

    const double pads[21] = {1,  1, 3,  1,  1, 3,  7,  4, 9,  7,  4,
                             9,  7, 4,  9,  13, 7, 15, 13, 7, 15};
    memcpy(want, pads, sizeof pads);
    memcpy(want + 21, pads, sizeof pads);
    const conv_case padded = {"onnx convtranspose pads", true, 2, 1, 1, 2, 1, {3, 3}, {3, 3},
                              {3, 2}, .pads = {1, 2, 1, 2}, .has_pads = true};
    conv_expect(m, &padded, x, ones, want, (int64_t[]){1, 2, 7, 3});
}

/* Malformed nodes fail in prepare/run with a message naming the node; nothing crashes. */
static void test_conv_errors(void **state)
{
    joule_model *m = *state;
    joule_error err = {{0}};
    conv_io io;
    const conv_case c = {"bad", false, 2, 1, 4, 4, 1, {5, 5}, {3, 3}, .bias = false};
    conv_io_make(m, &c, JOULE_F32, 3, &io);
    const joule_view *const *in = (const joule_view *const *)io.in;
    const joule_kernel *k = kernel_named(joule_cpu_kernels_linalg, "cpu.conv.im2col_sgemm");

    /* output of the wrong shape */
    joule_view *y = view_new(JOULE_F32, 4, (int64_t[]){1, 4, 5, 5});
    assert_int_equal(kernel_exec(k, io.node, 2, in, y, 1, 0, &err), JOULE_ERR_INVALID);
    assert_non_null(strstr(err.msg, io.node->name));
    const joule_kernel *ref = kernel_named(joule_cpu_kernels_linalg_ref, "cpu.ref.conv");
    assert_int_equal(kernel_exec(ref, io.node, 2, in, y, 1, 0, &err), JOULE_ERR_INVALID);

    /* group that does not divide the channels */
    joule_node *n = conv_node(m, &c);
    assert_joule_ok(joule_node_set_attr_int(m->graph, n, "group", 3, &err), &err);
    assert_true(k->supports(n, 17, 2, in)); /* taken so that prepare can say why */
    assert_int_equal(kernel_exec(k, n, 2, in, io.ref, 1, 0, &err), JOULE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "group"));
    assert_false(kernel_named(joule_cpu_kernels_linalg, "cpu.conv.depthwise")
                     ->supports(n, 17, 2, in));

    /* unknown auto_pad, wrong strides count, negative pads, kernel_shape mismatch */
    n = conv_node(m, &c);
    assert_joule_ok(joule_node_set_attr_string(m->graph, n, "auto_pad", "SAME_MIDDLE", &err),
                    &err);
    assert_int_equal(kernel_exec(k, n, 2, in, io.ref, 1, 0, &err), JOULE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "auto_pad"));
    n = conv_node(m, &c);
    set_ints(m, n, "strides", (int64_t[]){1, 1, 1}, 3);
    assert_int_equal(kernel_exec(ref, n, 2, in, io.ref, 1, 0, &err), JOULE_ERR_INVALID);
    n = conv_node(m, &c);
    set_ints(m, n, "pads", (int64_t[]){-1, 0, 0, 0}, 4);
    assert_int_equal(kernel_exec(k, n, 2, in, io.ref, 1, 0, &err), JOULE_ERR_INVALID);
    n = conv_node(m, &c);
    set_ints(m, n, "kernel_shape", (int64_t[]){3, 2}, 2);
    assert_int_equal(kernel_exec(k, n, 2, in, io.ref, 1, 0, &err), JOULE_ERR_INVALID);
    /* a kernel larger than the padded input */
    n = conv_node(m, &c);
    set_ints(m, n, "dilations", (int64_t[]){3, 1}, 2);
    assert_int_equal(kernel_exec(ref, n, 2, in, io.ref, 1, 0, &err), JOULE_ERR_INVALID);

    /* f64 and integer inputs: no fast kernel; ints not even the reference */
    io.in[0]->dtype = JOULE_I32;
    io.in[1]->dtype = JOULE_I32;
    assert_null(kernel_pick(joule_cpu_kernels_linalg, io.node, 2, in));
    assert_null(kernel_pick(joule_cpu_kernels_linalg_ref, io.node, 2, in));
    io.in[0]->dtype = JOULE_F32;
    io.in[1]->dtype = JOULE_F32;
    view_free(y);
    conv_io_free(&io);
}

/* ---- Gemm ---- */

typedef struct gemm_case {
    int64_t m, n, k;
    bool ta, tb;
    float alpha, beta; /* 0 alpha: attribute omitted (1) */
    int c_rank;        /* -1: no C */
    int64_t c_dims[2];
} gemm_case;

static const gemm_case gemm_cases[] = {
    {4, 5, 6, false, false, 0, 0, -1, {0}},
    {7, 3, 9, true, false, 0.5f, 2.0f, 2, {7, 3}},
    {3, 8, 5, false, true, 1.5f, -1.0f, 1, {8}},
    {6, 4, 3, true, true, -2.0f, 0.25f, 2, {6, 1}},
    {5, 6, 7, false, false, 1.0f, 3.0f, 2, {1, 6}},
    {2, 3, 4, false, true, 1.0f, 1.0f, 0, {0}},
    {9, 1, 4, true, false, 1.0f, 0.5f, 1, {1}},
    {33, 65, 17, false, true, 1.0f, 1.0f, 1, {65}},
    {1, 10, 64, false, true, 1.0f, 0.0f, 1, {10}},
    {8, 8, 0, false, false, 1.0f, 2.0f, 2, {8, 8}},
};

static void test_gemm_fast_vs_ref(void **state)
{
    joule_model *m = *state;
    joule_error err;
    const joule_dtype dtypes[] = {JOULE_F32, JOULE_F16, JOULE_F64};
    for (size_t ci = 0; ci < sizeof gemm_cases / sizeof gemm_cases[0]; ci++) {
        const gemm_case *c = &gemm_cases[ci];
        for (size_t di = 0; di < 3; di++) {
            joule_dtype t = dtypes[di];
            rng r = {ci * 31 + di + 5};
            int n_in = c->c_rank >= 0 ? 3 : 2;
            joule_node *node = node_new(m, "Gemm", n_in);
            if (c->ta)
                assert_joule_ok(joule_node_set_attr_int(m->graph, node, "transA", 1, &err), &err);
            if (c->tb)
                assert_joule_ok(joule_node_set_attr_int(m->graph, node, "transB", 1, &err), &err);
            if (c->alpha != 0) {
                assert_joule_ok(
                    joule_node_set_attr_float(m->graph, node, "alpha", c->alpha, &err), &err);
                assert_joule_ok(joule_node_set_attr_float(m->graph, node, "beta", c->beta, &err),
                                &err);
            }
            int64_t ad[2] = {c->ta ? c->k : c->m, c->ta ? c->m : c->k};
            int64_t bd[2] = {c->tb ? c->n : c->k, c->tb ? c->k : c->n};
            joule_view *in[3] = {view_new(t, 2, ad), view_new(t, 2, bd), NULL};
            if (c->c_rank >= 0)
                in[2] = view_new(t, c->c_rank, c->c_dims);
            for (int i = 0; i < n_in; i++)
                view_fill_random(in[i], &r);
            int64_t yd[2] = {c->m, c->n};
            joule_view *want = view_new(t, 2, yd), *got = view_new(t, 2, yd);
            const joule_view *const *cin = (const joule_view *const *)in;
            const joule_kernel *ref = kernel_pick(joule_cpu_kernels_linalg_ref, node, n_in, cin);
            const joule_kernel *fast = kernel_pick(joule_cpu_kernels_linalg, node, n_in, cin);
            assert_non_null(ref);
            assert_non_null(fast);
            assert_string_equal(fast->name, "cpu.gemm.sgemm");
            exec_ok(ref, node, n_in, cin, want, 1, 0);
            char what[96];
            for (unsigned cm = 0; cm <= 2; cm += 2) {
                memset(got->data, 0x7f, joule_dtype_bytes(t, got->count));
                exec_ok(fast, node, n_in, cin, got, 1, cm);
                snprintf(what, sizeof what, "gemm case %zu %s const %u", ci, joule_dtype_name(t),
                         cm);
                expect_close(what, got, want);
            }
            for (int i = 0; i < 3; i++)
                view_free(in[i]);
            view_free(want);
            view_free(got);
        }
    }
}

static void test_gemm_by_hand(void **state)
{
    joule_model *m = *state;
    joule_error err;
    /* Y = 2 * A^T B + 0.5 * C, A^T = [[1,2,3],[4,5,6]], B = [[1,0],[0,1],[1,1]], C = [10, 20] */
    joule_node *node = node_new(m, "Gemm", 3);
    assert_joule_ok(joule_node_set_attr_int(m->graph, node, "transA", 1, &err), &err);
    assert_joule_ok(joule_node_set_attr_float(m->graph, node, "alpha", 2.0f, &err), &err);
    assert_joule_ok(joule_node_set_attr_float(m->graph, node, "beta", 0.5f, &err), &err);
    joule_view *in[3] = {view_new(JOULE_F32, 2, (int64_t[]){3, 2}),
                         view_new(JOULE_F32, 2, (int64_t[]){3, 2}),
                         view_new(JOULE_F32, 1, (int64_t[]){2})};
    view_set(in[0], (double[]){1, 4, 2, 5, 3, 6});
    view_set(in[1], (double[]){1, 0, 0, 1, 1, 1});
    view_set(in[2], (double[]){10, 20});
    joule_view *y = view_new(JOULE_F32, 2, (int64_t[]){2, 2});
    /* A^T B = [[4,5],[10,11]] */
    const double want[] = {2 * 4 + 5, 2 * 5 + 10, 2 * 10 + 5, 2 * 11 + 10};
    for (int t = 0; t < 2; t++) {
        const joule_kernel *tab = t ? joule_cpu_kernels_linalg : joule_cpu_kernels_linalg_ref;
        const joule_kernel *k = kernel_pick(tab, node, 3, (const joule_view *const *)in);
        assert_non_null(k);
        exec_ok(k, node, 3, (const joule_view *const *)in, y, 1, 0);
        expect_values(k->name, y, want, 4);
    }
    /* C that does not broadcast */
    view_free(in[2]);
    in[2] = view_new(JOULE_F32, 1, (int64_t[]){3});
    const joule_kernel *k = kernel_named(joule_cpu_kernels_linalg, "cpu.gemm.sgemm");
    assert_int_equal(kernel_exec(k, node, 3, (const joule_view *const *)in, y, 1, 0, &err),
                     JOULE_ERR_INVALID);
    for (int i = 0; i < 3; i++)
        view_free(in[i]);
    view_free(y);
}

/* ---- MatMul ---- */

typedef struct matmul_case {
    int ra, rb;
    int64_t a[5], b[5];
    int out_rank;
    int64_t out[5];
} matmul_case;

static const matmul_case matmul_cases[] = {
    {2, 2, {5, 7}, {7, 3}, 2, {5, 3}},
    {3, 2, {4, 5, 6}, {6, 3}, 3, {4, 5, 3}},          /* folded batch */
    {2, 3, {5, 6}, {4, 6, 3}, 3, {4, 5, 3}},          /* A broadcast */
    {3, 3, {4, 5, 6}, {4, 6, 2}, 3, {4, 5, 2}},
    {4, 3, {2, 1, 3, 4}, {3, 4, 5}, 4, {2, 3, 3, 5}}, /* both broadcast */
    {4, 4, {2, 3, 4, 5}, {1, 3, 5, 2}, 4, {2, 3, 4, 2}},
    {4, 2, {2, 1, 3, 4}, {4, 2}, 4, {2, 1, 3, 2}},
    {1, 2, {6}, {6, 4}, 1, {4}},                      /* 1-D A */
    {2, 1, {3, 6}, {6}, 1, {3}},                      /* 1-D B */
    {1, 1, {9}, {9}, 0, {0}},                         /* dot product: a scalar */
    {1, 3, {5}, {3, 5, 2}, 2, {3, 2}},
    {3, 1, {2, 4, 5}, {5}, 2, {2, 4}},
    {5, 3, {2, 1, 2, 3, 4}, {2, 4, 3}, 5, {2, 1, 2, 3, 3}},
    {2, 2, {65, 33}, {33, 129}, 2, {65, 129}},
    {3, 3, {2, 0, 4}, {2, 4, 3}, 3, {2, 0, 3}},       /* empty */
    {2, 2, {3, 0}, {0, 4}, 2, {3, 4}},                /* k = 0: zeros */
};

static void test_matmul_fast_vs_ref(void **state)
{
    joule_model *m = *state;
    const joule_dtype dtypes[] = {JOULE_F32, JOULE_F16, JOULE_F64};
    for (size_t ci = 0; ci < sizeof matmul_cases / sizeof matmul_cases[0]; ci++) {
        const matmul_case *c = &matmul_cases[ci];
        for (size_t di = 0; di < 3; di++) {
            joule_dtype t = dtypes[di];
            rng r = {ci * 131 + di + 9};
            joule_node *node = node_new(m, "MatMul", 2);
            joule_view *in[2] = {view_new(t, c->ra, c->a), view_new(t, c->rb, c->b)};
            view_fill_random(in[0], &r);
            view_fill_random(in[1], &r);
            joule_matmul_params p;
            joule_error err;
            assert_joule_ok(joule_matmul_params_init(node, in[0], in[1], &p, &err), &err);
            assert_int_equal(p.out_rank, c->out_rank);
            for (int i = 0; i < c->out_rank; i++)
                assert_int_equal(p.out_dims[i], c->out[i]);
            joule_view *want = view_new(t, c->out_rank, c->out);
            joule_view *got = view_new(t, c->out_rank, c->out);
            const joule_view *const *cin = (const joule_view *const *)in;
            const joule_kernel *ref = kernel_pick(joule_cpu_kernels_linalg_ref, node, 2, cin);
            const joule_kernel *fast = kernel_pick(joule_cpu_kernels_linalg, node, 2, cin);
            assert_non_null(ref);
            assert_non_null(fast);
            memset(want->data, 0x7f, joule_dtype_bytes(t, want->count));
            exec_ok(ref, node, 2, cin, want, 1, 0);
            char what[96];
            for (unsigned cm = 0; cm <= 2; cm += 2) {
                memset(got->data, 0x7f, joule_dtype_bytes(t, got->count));
                exec_ok(fast, node, 2, cin, got, 1, cm);
                snprintf(what, sizeof what, "matmul case %zu %s const %u", ci,
                         joule_dtype_name(t), cm);
                expect_close(what, got, want);
            }
            view_free(in[0]);
            view_free(in[1]);
            view_free(want);
            view_free(got);
        }
    }
}

static void test_matmul_by_hand(void **state)
{
    joule_model *m = *state;
    joule_error err;
    joule_node *node = node_new(m, "MatMul", 2);
    /* [2,1,2,2] x [3,2,1]: batch dims broadcast to [2,3] */
    joule_view *a = view_new(JOULE_F32, 4, (int64_t[]){2, 1, 2, 2});
    joule_view *b = view_new(JOULE_F32, 3, (int64_t[]){3, 2, 1});
    view_set(a, (double[]){1, 2, 3, 4, 5, 6, 7, 8});
    view_set(b, (double[]){1, 1, 1, -1, 2, 0});
    joule_view *y = view_new(JOULE_F32, 4, (int64_t[]){2, 3, 2, 1});
    const double want[] = {3, 7, -1, -1, 2, 6, 11, 15, -1, -1, 10, 14};
    const joule_view *in[2] = {a, b};
    for (int t = 0; t < 2; t++) {
        const joule_kernel *tab = t ? joule_cpu_kernels_linalg : joule_cpu_kernels_linalg_ref;
        const joule_kernel *k = kernel_pick(tab, node, 2, in);
        assert_non_null(k);
        exec_ok(k, node, 2, in, y, 1, 0);
        expect_values(k->name, y, want, 12);
    }
    /* batch dims that do not broadcast, inner dims that differ */
    joule_view *bad = view_new(JOULE_F32, 3, (int64_t[]){2, 2, 1});
    in[1] = bad;
    const joule_kernel *k = kernel_named(joule_cpu_kernels_linalg, "cpu.matmul.sgemm");
    assert_int_equal(kernel_exec(k, node, 2, in, y, 1, 0, &err), JOULE_ERR_INVALID);
    view_free(bad);
    bad = view_new(JOULE_F32, 2, (int64_t[]){3, 1});
    in[1] = bad;
    assert_int_equal(kernel_exec(k, node, 2, in, y, 1, 0, &err), JOULE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "inner dims"));
    view_free(bad);
    view_free(a);
    view_free(b);
    view_free(y);
}

/* ---- ONNX backend-test data ---- */

static const char *const backend_tests[] = {
    "node/test_basic_conv_with_padding", "node/test_basic_conv_without_padding",
    "node/test_conv_with_autopad_same", "node/test_conv_with_strides_and_asymmetric_padding",
    "node/test_conv_with_strides_no_padding", "node/test_conv_with_strides_padding",
    "node/test_convtranspose", "node/test_convtranspose_1d", "node/test_convtranspose_3d",
    "node/test_convtranspose_autopad_same", "node/test_convtranspose_dilations",
    "node/test_convtranspose_kernel_shape", "node/test_convtranspose_output_shape",
    "node/test_convtranspose_pad", "node/test_convtranspose_pads",
    "node/test_convtranspose_with_kernel", "node/test_gemm_all_attributes",
    "node/test_gemm_alpha", "node/test_gemm_beta", "node/test_gemm_default_matrix_bias",
    "node/test_gemm_default_no_bias", "node/test_gemm_default_scalar_bias",
    "node/test_gemm_default_single_elem_vector_bias", "node/test_gemm_default_vector_bias",
    "node/test_gemm_default_zero_bias", "node/test_gemm_transposeA",
    "node/test_gemm_transposeB", "node/test_matmul_2d", "node/test_matmul_3d",
    "node/test_matmul_4d", "pytorch-converted/test_Conv1d",
    "pytorch-converted/test_Conv1d_dilated", "pytorch-converted/test_Conv1d_groups",
    "pytorch-converted/test_Conv1d_pad1", "pytorch-converted/test_Conv1d_pad1size1",
    "pytorch-converted/test_Conv1d_pad2", "pytorch-converted/test_Conv1d_pad2size1",
    "pytorch-converted/test_Conv1d_stride", "pytorch-converted/test_Conv2d",
    "pytorch-converted/test_Conv2d_depthwise", "pytorch-converted/test_Conv2d_depthwise_padded",
    "pytorch-converted/test_Conv2d_depthwise_strided",
    "pytorch-converted/test_Conv2d_depthwise_with_multiplier",
    "pytorch-converted/test_Conv2d_dilated", "pytorch-converted/test_Conv2d_groups",
    "pytorch-converted/test_Conv2d_groups_thnn", "pytorch-converted/test_Conv2d_no_bias",
    "pytorch-converted/test_Conv2d_padding", "pytorch-converted/test_Conv2d_strided",
    "pytorch-converted/test_Conv3d", "pytorch-converted/test_Conv3d_dilated",
    "pytorch-converted/test_Conv3d_dilated_strided", "pytorch-converted/test_Conv3d_groups",
    "pytorch-converted/test_Conv3d_no_bias", "pytorch-converted/test_Conv3d_stride",
    "pytorch-converted/test_Conv3d_stride_padding", "pytorch-converted/test_ConvTranspose2d",
    "pytorch-converted/test_ConvTranspose2d_no_bias", "pytorch-converted/test_Linear",
    "pytorch-operator/test_operator_conv", "pytorch-operator/test_operator_convtranspose",
    "pytorch-operator/test_operator_mm",
};

/* A float TensorProto file as a view, or NULL. */
static joule_view *load_pb(const char *path)
{
    size_t len;
    void *buf = test_read_file(path, &len);
    if (!buf)
        return NULL;
    Onnx__TensorProto *t = onnx__tensor_proto__unpack(NULL, len, buf);
    free(buf);
    if (!t)
        return NULL;
    joule_view *v = NULL;
    if (t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT && t->n_dims <= JOULE_MAX_RANK) {
        int64_t dims[JOULE_MAX_RANK];
        for (size_t i = 0; i < t->n_dims; i++)
            dims[i] = t->dims[i];
        v = view_new(JOULE_F32, (int)t->n_dims, dims);
        if (t->has_raw_data && t->raw_data.len == v->count * sizeof(float))
            memcpy(v->data, t->raw_data.data, t->raw_data.len);
        else if (t->n_float_data == v->count)
            memcpy(v->data, t->float_data, v->count * sizeof(float));
        else
            fail_msg("%s: tensor data of unexpected size", path);
    }
    onnx__tensor_proto__free_unpacked(t, NULL);
    return v;
}

static void test_onnx_backend_data(void **state)
{
    (void)state;
    int runs = 0;
    for (size_t ti = 0; ti < sizeof backend_tests / sizeof backend_tests[0]; ti++) {
        char dir[512], path[600];
        test_data_path(backend_tests[ti], dir, sizeof dir);
        snprintf(path, sizeof path, "%s/model.onnx", dir);
        joule_model *m;
        joule_error err;
        if (joule_model_load(path, &m, &err) != JOULE_OK) {
            print_message("skipping %s: %s\n", backend_tests[ti], err.msg);
            continue;
        }
        /* one node of ours, possibly fed by Constant nodes */
        const joule_node *node = m->graph->nodes[m->graph->n_nodes - 1];
        for (size_t i = 0; i + 1 < m->graph->n_nodes; i++)
            assert_string_equal(m->graph->nodes[i]->op_type, "Constant");
        /* graph inputs without data are fed from test_data_set_0/input_<i>.pb, in order */
        joule_view *owned[3] = {NULL, NULL, NULL};
        const joule_view *in[3] = {NULL, NULL, NULL};
        joule_view borrowed[3];
        int n_in = node->n_inputs, fed = 0;
        assert_true(n_in >= 2 && n_in <= 3);
        for (size_t gi = 0; gi < m->graph->n_inputs; gi++) {
            const joule_value *v = m->graph->inputs[gi];
            if (v->data)
                continue;
            snprintf(path, sizeof path, "%s/test_data_set_0/input_%d.pb", dir, fed++);
            joule_view *pv = load_pb(path);
            assert_non_null(pv);
            for (int i = 0; i < n_in; i++)
                if (node->inputs[i] == v) {
                    owned[i] = pv;
                    in[i] = pv;
                    pv = NULL;
                }
            view_free(pv);
        }
        for (int i = 0; i < n_in; i++) {
            const joule_value *v = node->inputs[i];
            if (in[i] || !v)
                continue;
            const joule_tensor *data = v->data;
            const joule_node *producer = joule_graph_producer(m->graph, v);
            if (!data && producer && strcmp(producer->op_type, "Constant") == 0)
                data = joule_node_attr(producer, "value")->t;
            assert_non_null(data);
            assert_int_equal(data->dtype, JOULE_F32);
            borrowed[i] = (joule_view){.dtype = JOULE_F32, .rank = data->rank,
                                       .count = data->count, .data = (void *)data->data};
            memcpy(borrowed[i].dims, data->dims, sizeof borrowed[i].dims);
            in[i] = &borrowed[i];
        }
        snprintf(path, sizeof path, "%s/test_data_set_0/output_0.pb", dir);
        joule_view *want = load_pb(path);
        assert_non_null(want);
        joule_view *got = view_new(JOULE_F32, want->rank, want->dims);
        int kernels = 0;
        for (int t = 0; t < 2; t++) {
            const joule_kernel *tab = t ? joule_cpu_kernels_linalg : joule_cpu_kernels_linalg_ref;
            for (const joule_kernel *k = tab; k->op_type; k++) {
                if (strcmp(k->op_type, node->op_type) != 0 || !k->supports(node, 17, n_in, in))
                    continue;
                memset(got->data, 0x7f, got->count * sizeof(float));
                exec_ok(k, node, n_in, in, got, 2, 0x6);
                char what[256];
                snprintf(what, sizeof what, "%s [%s]", backend_tests[ti], k->name);
                expect_close(what, got, want);
                kernels++;
                runs++;
            }
        }
        if (kernels < 2)
            fail_msg("%s: only %d kernels took it", backend_tests[ti], kernels);
        view_free(got);
        view_free(want);
        for (int i = 0; i < 3; i++)
            view_free(owned[i]);
        joule_model_free(m);
    }
    print_message("%d kernel runs on ONNX backend-test data\n", runs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_conv_onnx_examples, setup_model, teardown_model),
        cmocka_unit_test_setup_teardown(test_conv_transpose_onnx_examples, setup_model,
                                        teardown_model),
        cmocka_unit_test_setup_teardown(test_conv_fast_vs_ref, setup_model, teardown_model),
        cmocka_unit_test_setup_teardown(test_conv_f64_reference, setup_model, teardown_model),
        cmocka_unit_test_setup_teardown(test_conv_errors, setup_model, teardown_model),
        cmocka_unit_test_setup_teardown(test_gemm_by_hand, setup_model, teardown_model),
        cmocka_unit_test_setup_teardown(test_gemm_fast_vs_ref, setup_model, teardown_model),
        cmocka_unit_test_setup_teardown(test_matmul_by_hand, setup_model, teardown_model),
        cmocka_unit_test_setup_teardown(test_matmul_fast_vs_ref, setup_model, teardown_model),
        cmocka_unit_test(test_onnx_backend_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* tests/unit/test_kernels_shape.c: the cpu data-movement kernels (eval/cpu/shape/) against
 * expected values computed here by plain index loops written independently of the kernels
 * (Transpose, Slice, Gather, Expand, Tile, Pad, Resize, DepthToSpace, ...), against the ONNX
 * backend test data (model.onnx and its .pb tensors decoded with protobuf-c), and against
 * hostile inputs that must fail with an error naming the node. Kernels that plan scratch run
 * both through prepare() (the engine's path) and without it, and must agree. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "eval/kernel.h"
#include "onnx.pb-c.h"

#define MAXIO 8

/* ---- a single-node case: model, node, input and output views ---- */

typedef struct tcase {
    joule_model *m;
    joule_node *node;
    int64_t opset;
    int n_in, n_out;
    joule_view in[MAXIO];
    bool has_in[MAXIO];
    joule_view out[MAXIO];
    bool has_out[MAXIO];
    joule_error err;
} tcase;

static void tc_init(tcase *c, const char *op, int64_t opset, int n_in, int n_out)
{
    memset(c, 0, sizeof *c);
    c->opset = opset;
    c->n_in = n_in;
    c->n_out = n_out;
    assert_joule_ok(joule_model_new(opset, &c->m, &c->err), &c->err);
    char names[2 * MAXIO][16];
    const char *ins[MAXIO], *outs[MAXIO];
    for (int i = 0; i < n_in; i++) {
        snprintf(names[i], sizeof names[i], "in%d", i);
        ins[i] = names[i];
        c->has_in[i] = true;
    }
    for (int i = 0; i < n_out; i++) {
        snprintf(names[MAXIO + i], sizeof names[MAXIO + i], "out%d", i);
        outs[i] = names[MAXIO + i];
        c->has_out[i] = true;
    }
    assert_joule_ok(joule_node_create(c->m->graph, op, "", "n1", n_in, ins, n_out, outs, &c->node,
                                      &c->err),
                    &c->err);
    assert_joule_ok(joule_graph_insert_before(c->m->graph, c->node, NULL, &c->err), &c->err);
}

static void tc_free(tcase *c)
{
    for (int i = 0; i < MAXIO; i++) {
        free(c->in[i].data);
        free(c->out[i].data);
    }
    joule_model_free(c->m);
}

static joule_view make_view(joule_dtype t, int rank, const int64_t *dims)
{
    joule_view v;
    memset(&v, 0, sizeof v);
    v.dtype = t;
    v.rank = rank;
    for (int k = 0; k < rank; k++)
        v.dims[k] = dims[k];
    assert_true(joule_dims_count(rank, dims, &v.count));
    size_t bytes = joule_dtype_bytes(t, v.count);
    v.data = malloc(bytes + 1);
    assert_non_null(v.data);
    return v;
}

/* Input i: a copy of data (or random-free zeros when data is NULL). */
static void *tc_in(tcase *c, int i, joule_dtype t, int rank, const int64_t *dims, const void *data)
{
    free(c->in[i].data);
    c->in[i] = make_view(t, rank, dims);
    size_t bytes = joule_dtype_bytes(t, c->in[i].count);
    if (data && bytes)
        memcpy(c->in[i].data, data, bytes);
    else
        memset(c->in[i].data, 0, bytes ? bytes : 1);
    c->has_in[i] = true;
    return c->in[i].data;
}

static void tc_omit_in(tcase *c, int i)
{
    c->has_in[i] = false;
    c->node->inputs[i] = NULL;
}

/* Output i as the engine would plan it: dims set, bytes filled with a marker. */
static void *tc_out(tcase *c, int i, joule_dtype t, int rank, const int64_t *dims)
{
    free(c->out[i].data);
    c->out[i] = make_view(t, rank, dims);
    memset(c->out[i].data, 0xcd, joule_dtype_bytes(t, c->out[i].count) + 1);
    c->has_out[i] = true;
    return c->out[i].data;
}

static void tc_omit_out(tcase *c, int i)
{
    c->has_out[i] = false;
    c->node->outputs[i] = NULL;
}

static const joule_kernel *find_kernel(const char *op)
{
    for (const joule_kernel *k = joule_cpu_kernels_shape; k->op_type; k++)
        if (strcmp(k->op_type, op) == 0)
            return k;
    return NULL;
}

static bool tc_supported(tcase *c)
{
    const joule_kernel *k = find_kernel(c->node->op_type);
    assert_non_null(k);
    const joule_view *inp[MAXIO];
    for (int i = 0; i < c->n_in; i++)
        inp[i] = c->has_in[i] ? &c->in[i] : NULL;
    return k->supports(c->node, c->opset, c->n_in, inp);
}

/* Runs the kernel like the engine does (supports, prepare with input data hidden, run with the
 * planned scratch, destroy). Kernels with a prepare() run a second time without it and must
 * write the same bytes. */
static joule_status tc_run_threads(tcase *c, int threads)
{
    const joule_kernel *k = find_kernel(c->node->op_type);
    assert_non_null(k);
    const joule_view *inp[MAXIO];
    joule_view *outp[MAXIO];
    joule_view hidden[MAXIO];
    const joule_view *hidp[MAXIO];
    for (int i = 0; i < c->n_in; i++) {
        inp[i] = c->has_in[i] ? &c->in[i] : NULL;
        hidden[i] = c->in[i];
        hidden[i].data = NULL;
        hidp[i] = c->has_in[i] ? &hidden[i] : NULL;
    }
    for (int i = 0; i < c->n_out; i++)
        outp[i] = c->has_out[i] ? &c->out[i] : NULL;
    if (!k->supports(c->node, c->opset, c->n_in, inp))
        fail_msg("%s: supports() said no", c->node->op_type);
    joule_kernel_ctx ctx = {.node = c->node, .opset = c->opset, .n_in = c->n_in, .in = inp,
                            .n_out = c->n_out, .out = outp, .threads = threads, .err = &c->err};
    if (!k->prepare)
        return k->run(&ctx);

    joule_kernel_ctx pctx = ctx;
    pctx.in = hidp;
    void *state = NULL;
    size_t sb = 0;
    joule_status st = k->prepare(&pctx, &state, &sb);
    if (st)
        return st;
    void *scratch = sb ? malloc(sb) : NULL;
    if (sb)
        memset(scratch, 0xee, sb);
    ctx.state = state;
    ctx.scratch = scratch;
    st = k->run(&ctx);
    free(scratch);
    if (k->destroy)
        k->destroy(state);
    if (st)
        return st;

    void *saved[MAXIO] = {NULL};
    for (int i = 0; i < c->n_out; i++) {
        if (!c->has_out[i])
            continue;
        size_t bytes = joule_dtype_bytes(c->out[i].dtype, c->out[i].count);
        saved[i] = malloc(bytes + 1);
        memcpy(saved[i], c->out[i].data, bytes);
        memset(c->out[i].data, 0xcd, bytes);
    }
    ctx.state = NULL;
    ctx.scratch = NULL;
    st = k->run(&ctx);
    assert_joule_ok(st, &c->err);
    for (int i = 0; i < c->n_out; i++) {
        if (!saved[i])
            continue;
        size_t bytes = joule_dtype_bytes(c->out[i].dtype, c->out[i].count);
        assert_memory_equal(saved[i], c->out[i].data, bytes);
        free(saved[i]);
    }
    return JOULE_OK;
}

static joule_status tc_run(tcase *c)
{
    return tc_run_threads(c, 1);
}

static void set_ints(tcase *c, const char *name, const int64_t *v, size_t n)
{
    assert_joule_ok(joule_node_set_attr_ints(c->m->graph, c->node, name, v, n, &c->err), &c->err);
}
static void set_int(tcase *c, const char *name, int64_t v)
{
    assert_joule_ok(joule_node_set_attr_int(c->m->graph, c->node, name, v, &c->err), &c->err);
}
static void set_float(tcase *c, const char *name, float v)
{
    assert_joule_ok(joule_node_set_attr_float(c->m->graph, c->node, name, v, &c->err), &c->err);
}
static void set_str(tcase *c, const char *name, const char *v)
{
    assert_joule_ok(joule_node_set_attr_string(c->m->graph, c->node, name, v, &c->err), &c->err);
}

/* Fails unless st is an error of kind want whose message names the node. */
static void expect_error(tcase *c, joule_status st, joule_status want)
{
    if (st != want)
        fail_msg("expected %s, got %s: %s", joule_status_name(want), joule_status_name(st),
                 c->err.msg);
    if (!strstr(c->err.msg, "'n1'") || !strstr(c->err.msg, c->node->op_type))
        fail_msg("error does not name the node: %s", c->err.msg);
}

/* ---- reference helpers ---- */

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rnext(rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int64_t rrange(rng *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rnext(r) % (uint64_t)(hi - lo + 1));
}

static void rfill(rng *r, void *p, size_t bytes)
{
    unsigned char *b = p;
    for (size_t i = 0; i < bytes; i++)
        b[i] = (unsigned char)rnext(r);
}

static void rfill_f32(rng *r, float *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (float)rrange(r, -1000, 1000) / 37.0f;
}

/* Row-major flat offset of idx. */
static size_t flat(int rank, const int64_t *dims, const int64_t *idx)
{
    size_t off = 0;
    for (int k = 0; k < rank; k++)
        off = off * (size_t)dims[k] + (size_t)idx[k];
    return off;
}

/* Advances idx in row-major order; false after the last index. */
static bool next_index(int rank, const int64_t *dims, int64_t *idx)
{
    for (int k = rank - 1; k >= 0; k--) {
        if (++idx[k] < dims[k])
            return true;
        idx[k] = 0;
    }
    return false;
}

static size_t count_of(int rank, const int64_t *dims)
{
    size_t n = 1;
    for (int k = 0; k < rank; k++)
        n *= (size_t)dims[k];
    return n;
}

/* out = transpose(in, perm) by visiting every output index. */
static void ref_transpose(const void *in, void *out, size_t es, int r, const int64_t *dims,
                          const int64_t *perm)
{
    int64_t odims[JOULE_MAX_RANK], oi[JOULE_MAX_RANK] = {0}, ii[JOULE_MAX_RANK];
    for (int k = 0; k < r; k++)
        odims[k] = dims[perm[k]];
    if (count_of(r, dims) == 0)
        return;
    size_t o = 0;
    do {
        for (int k = 0; k < r; k++)
            ii[perm[k]] = oi[k];
        memcpy((char *)out + o * es, (const char *)in + flat(r, dims, ii) * es, es);
        o++;
    } while (next_index(r, odims, oi));
}

/* ---- copy family ---- */

static void test_copy_ops(void **state)
{
    (void)state;
    static const char *ops[] = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"};
    rng r = {1};
    for (size_t o = 0; o < sizeof ops / sizeof *ops; o++) {
        tcase c;
        tc_init(&c, ops[o], 13, 1, 1);
        int64_t din[3] = {2, 3, 4}, dout[2] = {6, 4};
        uint16_t x[24];
        rfill(&r, x, sizeof x);
        tc_in(&c, 0, JOULE_F16, 3, din, x);
        tc_out(&c, 0, JOULE_F16, 2, dout);
        assert_joule_ok(tc_run(&c), &c.err);
        assert_memory_equal(c.out[0].data, x, sizeof x);
        /* a plan with another element count is refused, not overrun */
        int64_t bad[2] = {5, 5};
        tc_out(&c, 0, JOULE_F16, 2, bad);
        expect_error(&c, tc_run(&c), JOULE_ERR_INVALID);
        tc_free(&c);
    }
    /* int4 packs two elements per byte: copied as bytes */
    tcase c;
    tc_init(&c, "Reshape", 21, 1, 1);
    int64_t d5[1] = {5}, d15[2] = {1, 5};
    uint8_t q[3] = {0x12, 0x34, 0x05};
    tc_in(&c, 0, JOULE_I4, 1, d5, q);
    tc_out(&c, 0, JOULE_I4, 2, d15);
    assert_joule_ok(tc_run(&c), &c.err);
    assert_memory_equal(c.out[0].data, q, 3);
    /* strings are not byte-movable */
    tc_in(&c, 0, JOULE_STRING, 1, d5, NULL);
    assert_false(tc_supported(&c));
    tc_free(&c);
}

static void test_dropout(void **state)
{
    (void)state;
    tcase c;
    tc_init(&c, "Dropout", 13, 3, 2);
    int64_t d[2] = {3, 5}, sc[1] = {0};
    float x[15];
    rng r = {2};
    rfill_f32(&r, x, 15);
    tc_in(&c, 0, JOULE_F32, 2, d, x);
    float ratio = 0.5f;
    tc_in(&c, 1, JOULE_F32, 0, sc, &ratio);
    tc_omit_in(&c, 2);
    tc_out(&c, 0, JOULE_F32, 2, d);
    uint8_t *mask = tc_out(&c, 1, JOULE_BOOL, 2, d);
    assert_joule_ok(tc_run(&c), &c.err);
    assert_memory_equal(c.out[0].data, x, sizeof x);
    for (int i = 0; i < 15; i++)
        assert_int_equal(mask[i], 1);
    /* constant training_mode = true with a ratio: random dropout, declined */
    uint8_t on = 1;
    tc_in(&c, 2, JOULE_BOOL, 0, sc, &on);
    assert_false(tc_supported(&c));
    /* training mode with ratio 0 drops nothing */
    ratio = 0.0f;
    tc_in(&c, 1, JOULE_F32, 0, sc, &ratio);
    assert_joule_ok(tc_run(&c), &c.err);
    assert_memory_equal(c.out[0].data, x, sizeof x);
    /* an omitted mask output is not written */
    tc_omit_out(&c, 1);
    assert_joule_ok(tc_run(&c), &c.err);
    assert_memory_equal(c.out[0].data, x, sizeof x);
    tc_free(&c);

    /* opset 7: the mask has the input's type, all ones */
    tc_init(&c, "Dropout", 7, 1, 2);
    tc_in(&c, 0, JOULE_F32, 2, d, x);
    tc_out(&c, 0, JOULE_F32, 2, d);
    float *fm = tc_out(&c, 1, JOULE_F32, 2, d);
    assert_joule_ok(tc_run(&c), &c.err);
    for (int i = 0; i < 15; i++)
        assert_true(fm[i] == 1.0f);
    tc_free(&c);
}

/* ---- Transpose ---- */

static void check_transpose(rng *r, joule_dtype t, int rank, const int64_t *dims,
                            const int64_t *perm, bool default_perm, int threads)
{
    tcase c;
    tc_init(&c, "Transpose", 13, 1, 1);
    size_t es = joule_dtype_bytes(t, 1), n = count_of(rank, dims);
    void *x = tc_in(&c, 0, t, rank, dims, NULL);
    rfill(r, x, n * es);
    int64_t rev[JOULE_MAX_RANK], odims[JOULE_MAX_RANK];
    if (default_perm) {
        for (int k = 0; k < rank; k++)
            rev[k] = rank - 1 - k;
        perm = rev;
    } else {
        set_ints(&c, "perm", perm, (size_t)rank);
    }
    for (int k = 0; k < rank; k++)
        odims[k] = dims[perm[k]];
    tc_out(&c, 0, t, rank, odims);
    assert_joule_ok(tc_run_threads(&c, threads), &c.err);
    void *want = malloc(n * es + 1);
    ref_transpose(x, want, es, rank, dims, perm);
    if (memcmp(want, c.out[0].data, n * es) != 0) {
        char a[128];
        fail_msg("transpose of dtype %s dims %s differs", joule_dtype_name(t),
                 (snprintf(a, sizeof a, "rank %d [%lld,...]", rank, (long long)dims[0]), a));
    }
    free(want);
    tc_free(&c);
}

static void test_transpose_random(void **state)
{
    (void)state;
    rng r = {3};
    static const joule_dtype types[] = {JOULE_U8, JOULE_F16, JOULE_F32, JOULE_I64, JOULE_C128};
    for (int iter = 0; iter < 300; iter++) {
        int rank = (int)rrange(&r, 1, 6);
        int64_t dims[JOULE_MAX_RANK], perm[JOULE_MAX_RANK];
        for (int k = 0; k < rank; k++) {
            dims[k] = rrange(&r, 1, 5);
            perm[k] = k;
        }
        for (int k = rank - 1; k > 0; k--) { /* Fisher-Yates */
            int j = (int)rrange(&r, 0, k);
            int64_t t = perm[k];
            perm[k] = perm[j];
            perm[j] = t;
        }
        check_transpose(&r, types[iter % 5], rank, dims, perm, iter % 17 == 0, iter % 3 + 1);
    }
}

static void test_transpose_fast_paths(void **state)
{
    (void)state;
    rng r = {4};
    /* 2-D transposes (tiled), odd sizes so tiles have ragged edges */
    int64_t d2[2] = {67, 131}, p2[2] = {1, 0};
    check_transpose(&r, JOULE_F32, 2, d2, p2, false, 1);
    check_transpose(&r, JOULE_U8, 2, d2, p2, false, 4);
    check_transpose(&r, JOULE_F64, 2, d2, p2, true, 2);
    /* NCHW -> NHWC and back, large enough to be split across threads */
    int64_t nchw[4] = {2, 48, 37, 41}, to_nhwc[4] = {0, 2, 3, 1};
    int64_t nhwc[4] = {2, 37, 41, 48}, to_nchw[4] = {0, 3, 1, 2};
    for (int threads = 1; threads <= 4; threads += 3) {
        check_transpose(&r, JOULE_F32, 4, nchw, to_nhwc, false, threads);
        check_transpose(&r, JOULE_F32, 4, nhwc, to_nchw, false, threads);
        check_transpose(&r, JOULE_I8, 4, nchw, to_nhwc, false, threads);
    }
    /* a permutation that only moves size-1 dims is a plain copy */
    int64_t d3[4] = {1, 7, 1, 9}, p3[4] = {2, 1, 0, 3};
    check_transpose(&r, JOULE_F32, 4, d3, p3, false, 1);
    /* rank 8, batched */
    int64_t d8[8] = {2, 1, 3, 2, 1, 2, 3, 2}, p8[8] = {7, 0, 6, 1, 5, 2, 4, 3};
    check_transpose(&r, JOULE_I16, 8, d8, p8, false, 1);
}

static void test_transpose_errors(void **state)
{
    (void)state;
    tcase c;
    tc_init(&c, "Transpose", 13, 1, 1);
    int64_t d[3] = {2, 3, 4}, bad[3] = {0, 0, 1}, good[3] = {2, 0, 1}, od[3] = {4, 2, 3};
    tc_in(&c, 0, JOULE_F32, 3, d, NULL);
    tc_out(&c, 0, JOULE_F32, 3, od);
    set_ints(&c, "perm", bad, 3);
    expect_error(&c, tc_run(&c), JOULE_ERR_INVALID);
    set_ints(&c, "perm", good, 2);
    expect_error(&c, tc_run(&c), JOULE_ERR_INVALID);
    /* a plan that disagrees with the perm is refused */
    set_ints(&c, "perm", good, 3);
    int64_t wrong[3] = {4, 3, 2};
    tc_out(&c, 0, JOULE_F32, 3, wrong);
    expect_error(&c, tc_run(&c), JOULE_ERR_INVALID);
    tc_free(&c);
}

/* ---- Concat / Split ---- */

static void test_concat(void **state)
{
    (void)state;
    tcase c;
    tc_init(&c, "Concat", 13, 3, 1);
    int64_t d0[3] = {2, 3, 2}, d1[3] = {2, 3, 0}, d2[3] = {2, 3, 3}, od[3] = {2, 3, 5};
    int32_t a[12], b[18];
    for (int i = 0; i < 12; i++)
        a[i] = i;
    for (int i = 0; i < 18; i++)
        b[i] = 100 + i;
    tc_in(&c, 0, JOULE_I32, 3, d0, a);
    tc_in(&c, 1, JOULE_I32, 3, d1, NULL);
    tc_in(&c, 2, JOULE_I32, 3, d2, b);
    set_int(&c, "axis", -1);
    int32_t *y = tc_out(&c, 0, JOULE_I32, 3, od);
    assert_joule_ok(tc_run(&c), &c.err);
    for (int i = 0; i < 6; i++) { /* rows of the [2,3] outer grid */
        assert_int_equal(y[i * 5 + 0], a[i * 2]);
        assert_int_equal(y[i * 5 + 1], a[i * 2 + 1]);
        for (int j = 0; j < 3; j++)
            assert_int_equal(y[i * 5 + 2 + j], b[i * 3 + j]);
    }
    /* mismatched non-axis dim */
    int64_t dbad[3] = {2, 4, 3};
    tc_in(&c, 2, JOULE_I32, 3, dbad, NULL);
    expect_error(&c, tc_run(&c), JOULE_ERR_INVALID);
    tc_free(&c);
}

static void run_split(int64_t opset, const int64_t *split, size_t nsplit, bool as_input,
                      bool num_outputs, int n_out, const int64_t *want)
{
    tcase c;
    tc_init(&c, "Split", opset, as_input ? 2 : 1, n_out);
    int64_t d[2] = {3, 7};
    float x[21];
    for (int i = 0; i < 21; i++)
        x[i] = (float)i;
    tc_in(&c, 0, JOULE_F32, 2, d, x);
    set_int(&c, "axis", 1);
    if (split && as_input) {
        int64_t sd[1] = {(int64_t)nsplit};
        tc_in(&c, 1, JOULE_I64, 1, sd, split);
    } else if (split) {
        set_ints(&c, "split", split, nsplit);
    }
    if (num_outputs)
        set_int(&c, "num_outputs", n_out);
    for (int j = 0; j < n_out; j++) {
        int64_t od[2] = {3, want[j]};
        tc_out(&c, j, JOULE_F32, 2, od);
    }
    assert_joule_ok(tc_run(&c), &c.err);
    for (int i = 0; i < 3; i++) {
        int64_t col = 0;
        for (int j = 0; j < n_out; j++) {
            const float *y = c.out[j].data;
            for (int64_t k = 0; k < want[j]; k++)
                assert_true(y[i * want[j] + k] == x[i * 7 + col + k]);
            col += want[j];
        }
    }
    tc_free(&c);
}

static void test_split(void **state)
{
    (void)state;
    static const int64_t s1[3] = {2, 0, 5}, s2[2] = {4, 3}, n3[3] = {3, 3, 1};
    run_split(11, s1, 3, false, false, 3, s1);  /* attribute, a zero-size chunk */
    run_split(13, s2, 2, true, false, 2, s2);   /* input */
    run_split(18, NULL, 0, false, true, 3, n3); /* num_outputs: ceil chunks, last smaller */
    static const int64_t e7[1] = {7};
    run_split(13, NULL, 0, false, false, 1, e7); /* one output takes everything */

    /* sizes that do not add up, and an axis that does not split evenly */
    tcase c;
    tc_init(&c, "Split", 13, 2, 2);
    int64_t d[2] = {3, 7}, sd[1] = {2}, bad[2] = {4, 4}, o1[2] = {3, 4};
    tc_in(&c, 0, JOULE_F32, 2, d, NULL);
    tc_in(&c, 1, JOULE_I64, 1, sd, bad);
    set_int(&c, "axis", 1);
    tc_out(&c, 0, JOULE_F32, 2, o1);
    tc_out(&c, 1, JOULE_F32, 2, o1);
    expect_error(&c, tc_run(&c), JOULE_ERR_INVALID);
    tc_omit_in(&c, 1);
    expect_error(&c, tc_run(&c), JOULE_ERR_INVALID);
    tc_free(&c);
}

/* ---- Slice ---- */

/* Indices an axis of length dim keeps, enumerated by walking from the clamped start (the
 * clamping rules of the Slice-13 spec); returns the count. */
static int64_t ref_slice_axis(int64_t dim, int64_t start, int64_t end, int64_t step, int64_t *idx)
{
    if (start < 0)
        start += dim;
    if (end < 0)
        end += dim;
    int64_t n = 0;
    if (step > 0) {
        start = start < 0 ? 0 : start > dim ? dim : start;
        end = end < 0 ? 0 : end > dim ? dim : end;
        for (int64_t i = start; i < end; i += step)
            idx[n++] = i;
    } else {
        start = start < 0 ? 0 : start > dim - 1 ? dim - 1 : start;
        end = end < -1 ? -1 : end > dim - 1 ? dim - 1 : end;
        for (int64_t i = start; i > end && dim > 0; i += step)
            idx[n++] = i;
    }
    return n;
}

static void check_slice(rng *r, int64_t opset, int rank, const int64_t *dims, int ns,
                        const int64_t *starts, const int64_t *ends, const int64_t *axes,
                        const int64_t *steps, joule_dtype ind_type)
{
    tcase c;
    bool inputs = opset >= 10;
    tc_init(&c, "Slice", opset, inputs ? 5 : 1, 1);
    size_t n = count_of(rank, dims);
    uint32_t *x = tc_in(&c, 0, JOULE_U32, rank, dims, NULL);
    rfill(r, x, n * 4);
    if (inputs) {
        int64_t sd[1] = {ns};
        const int64_t *lists[4] = {starts, ends, axes, steps};
        for (int i = 0; i < 4; i++) {
            if (!lists[i]) {
                tc_omit_in(&c, i + 1);
                continue;
            }
            if (ind_type == JOULE_I32) {
                int32_t v[JOULE_MAX_RANK];
                for (int k = 0; k < ns; k++) /* INT64 sentinels saturate to INT32 ones */
                    v[k] = lists[i][k] > INT32_MAX   ? INT32_MAX
                           : lists[i][k] < INT32_MIN ? INT32_MIN
                                                     : (int32_t)lists[i][k];
                tc_in(&c, i + 1, JOULE_I32, 1, sd, v);
            } else {
                tc_in(&c, i + 1, JOULE_I64, 1, sd, lists[i]);
            }
        }
    } else {
        set_ints(&c, "starts", starts, (size_t)ns);
        set_ints(&c, "ends", ends, (size_t)ns);
        if (axes)
            set_ints(&c, "axes", axes, (size_t)ns);
    }
    /* expected: per-axis index lists, then every combination */
    int64_t lists[JOULE_MAX_RANK][64], odims[JOULE_MAX_RANK];
    for (int k = 0; k < rank; k++) {
        odims[k] = dims[k];
        for (int64_t i = 0; i < dims[k]; i++)
            lists[k][i] = i;
    }
    for (int i = 0; i < ns; i++) {
        int ax = axes ? (int)(axes[i] < 0 ? axes[i] + rank : axes[i]) : i;
        int64_t st = steps ? steps[i] : 1;
        int64_t s = starts[i], e = ends[i];
        if (ind_type == JOULE_I32) {
            s = s > INT32_MAX ? INT32_MAX : s < INT32_MIN ? INT32_MIN : s;
            e = e > INT32_MAX ? INT32_MAX : e < INT32_MIN ? INT32_MIN : e;
        }
        odims[ax] = ref_slice_axis(dims[ax], s, e, st, lists[ax]);
    }
    uint32_t *y = tc_out(&c, 0, JOULE_U32, rank, odims);
    assert_joule_ok(tc_run(&c), &c.err);
    size_t on = count_of(rank, odims);
    if (on == 0) {
        tc_free(&c);
        return;
    }
    int64_t oi[JOULE_MAX_RANK] = {0}, ii[JOULE_MAX_RANK];
    size_t o = 0;
    do {
        for (int k = 0; k < rank; k++)
            ii[k] = lists[k][oi[k]];
        if (y[o] != x[flat(rank, dims, ii)])
            fail_msg("slice: element %zu differs", o);
        o++;
    } while (next_index(rank, odims, oi));
    tc_free(&c);
}

static void test_slice_examples(void **state)
{
    (void)state;
    rng r = {5};
    int64_t d24[2] = {2, 4};
    /* the two examples of the spec */
    int64_t s1[2] = {1, 0}, e1[2] = {2, 3}, a1[2] = {0, 1}, st1[2] = {1, 2};
    check_slice(&r, 13, 2, d24, 2, s1, e1, a1, st1, JOULE_I64);
    int64_t s2[2] = {0, 1}, e2[2] = {-1, 1000};
    check_slice(&r, 13, 2, d24, 2, s2, e2, NULL, NULL, JOULE_I64);
    /* reverse everything with the sentinels exporters use */
    int64_t d3[3] = {3, 4, 5};
    int64_t s3[3] = {-1, INT64_MAX, -1}, e3[3] = {INT64_MIN, INT64_MIN, -1000}, st3[3] = {-1, -2, -3};
    int64_t a3[3] = {0, 1, 2};
    check_slice(&r, 13, 3, d3, 3, s3, e3, a3, st3, JOULE_I64);
    check_slice(&r, 13, 3, d3, 3, s3, e3, a3, st3, JOULE_I32);
    /* negative axes, out-of-bound starts, an empty result */
    int64_t s4[2] = {10, -100}, e4[2] = {20, 100}, a4[2] = {-1, -3};
    check_slice(&r, 13, 3, d3, 2, s4, e4, a4, NULL, JOULE_I64);
    /* a huge negative step takes one element */
    int64_t s5[1] = {3}, e5[1] = {INT64_MIN}, st5[1] = {INT64_MIN}, a5[1] = {1};
    check_slice(&r, 13, 3, d3, 1, s5, e5, a5, st5, JOULE_I64);
    /* opset 1: attributes */
    int64_t s6[2] = {0, 1}, e6[2] = {2, -1}, a6[2] = {2, 0};
    check_slice(&r, 9, 3, d3, 2, s6, e6, a6, NULL, JOULE_I64);
    check_slice(&r, 1, 3, d3, 2, s6, e6, NULL, NULL, JOULE_I64);
}

static void test_slice_random(void **state)
{
    (void)state;
    rng r = {6};
    for (int iter = 0; iter < 400; iter++) {
        int rank = (int)rrange(&r, 1, 4);
        int64_t dims[JOULE_MAX_RANK], starts[JOULE_MAX_RANK], ends[JOULE_MAX_RANK];
        int64_t axes[JOULE_MAX_RANK], steps[JOULE_MAX_RANK];
        for (int k = 0; k < rank; k++) {
            dims[k] = rrange(&r, 0, 6);
            axes[k] = k;
        }
        for (int k = rank - 1; k > 0; k--) {
            int j = (int)rrange(&r, 0, k);
            int64_t t = axes[k];
            axes[k] = axes[j];
            axes[j] = t;
        }
        int ns = (int)rrange(&r, 1, rank);
        for (int i = 0; i < ns; i++) {
            int64_t d = dims[axes[i]];
            starts[i] = rrange(&r, -2 * d - 2, 2 * d + 2);
            ends[i] = rrange(&r, -2 * d - 2, 2 * d + 2);
            steps[i] = rrange(&r, 1, 3) * (rnext(&r) & 1 ? 1 : -1);
            if (rnext(&r) % 4 == 0)
                axes[i] -= rank;
        }
        check_slice(&r, 13, rank, dims, ns, starts, ends, axes, steps,
                    iter % 2 ? JOULE_I32 : JOULE_I64);
    }
}

static void test_slice_errors(void **state)
{
    (void)state;
    tcase c;
    tc_init(&c, "Slice", 13, 5, 1);
    int64_t d[2] = {4, 4}, one[1] = {1}, two[1] = {2};
    int64_t z[2] = {0, 0}, e[2] = {4, 4}, st0[2] = {1, 0}, ax[2] = {0, 0};
    tc_in(&c, 0, JOULE_F32, 2, d, NULL);
    tc_in(&c, 1, JOULE_I64, 1, two, z);
    tc_in(&c, 2, JOULE_I64, 1, two, e);
    tc_in(&c, 3, JOULE_I64, 1, two, ax);
    tc_omit_in(&c, 4);
    tc_out(&c, 0, JOULE_F32, 2, d);
    expect_error(&c, tc_run(&c), JOULE_ERR_INVALID); /* axis 0 twice */
    int64_t ax2[2] = {0, 1};
    tc_in(&c, 3, JOULE_I64, 1, two, ax2);
    tc_in(&c, 4, JOULE_I64, 1, two, st0);
    expect_error(&c, tc_run(&c), JOULE_ERR_INVALID); /* step 0 */
    tc_in(&c, 4, JOULE_I64, 1, one, st0);
    expect_error(&c, tc_run(&c), JOULE_ERR_INVALID); /* steps count */
    int64_t bigax[2] = {0, 5};
    tc_omit_in(&c, 4);
    tc_in(&c, 3, JOULE_I64, 1, two, bigax);
    expect_error(&c, tc_run(&c), JOULE_ERR_INVALID); /* axis out of range */
    tc_free(&c);
}

/* ---- Gather ---- */

static void test_gather(void **state)
{
    (void)state;
    rng r = {7};
    for (int axis = -3; axis < 3; axis++) {
        for (int it = 0; it < 2; it++) {
            joule_dtype it_type = it ? JOULE_I32 : JOULE_I64;
            tcase c;
            tc_init(&c, "Gather", 13, 2, 1);
            int64_t d[3] = {3, 4, 5}, idims[2] = {2, 3};
            uint16_t *x = tc_in(&c, 0, JOULE_BF16, 3, d, NULL);
            rfill(&r, x, 60 * 2);
            int ax = axis < 0 ? axis + 3 : axis;
            int64_t len = d[ax], ind[6];
            for (int i = 0; i < 6; i++)
                ind[i] = rrange(&r, -len, len - 1);
            if (it_type == JOULE_I32) {
                int32_t i32[6];
                for (int i = 0; i < 6; i++)
                    i32[i] = (int32_t)ind[i];
                tc_in(&c, 1, JOULE_I32, 2, idims, i32);
            } else {
                tc_in(&c, 1, JOULE_I64, 2, idims, ind);
            }
            set_int(&c, "axis", axis);
            int64_t od[4];
            int n = 0;
            for (int k = 0; k < ax; k++)
                od[n++] = d[k];
            od[n++] = 2;
            od[n++] = 3;
            for (int k = ax + 1; k < 3; k++)
                od[n++] = d[k];
            uint16_t *y = tc_out(&c, 0, JOULE_BF16, 4, od);
            assert_joule_ok(tc_run(&c), &c.err);
            int64_t oi[4] = {0}, ii[3];
            size_t o = 0;
            do {
                int m = 0;
                for (int k = 0; k < ax; k++)
                    ii[k] = oi[m++];
                int64_t v = ind[oi[m] * 3 + oi[m + 1]];
                m += 2;
                ii[ax] = v < 0 ? v + len : v;
                for (int k = ax + 1; k < 3; k++)
                    ii[k] = oi[m++];
                assert_int_equal(y[o], x[flat(3, d, ii)]);
                o++;
            } while (next_index(4, od, oi));

            /* hostile indices: one past either end */
            for (int side = 0; side < 2; side++) {
                int64_t badv = side ? len : -len - 1;
                if (it_type == JOULE_I32) {
                    int32_t *p = c.in[1].data;
                    p[4] = (int32_t)badv;
                } else {
                    int64_t *p = c.in[1].data;
                    p[4] = badv;
                }
                memset(y, 0xcd, count_of(4, od) * 2);
                expect_error(&c, tc_run(&c), JOULE_ERR_INVALID);
                assert_non_null(strstr(c.err.msg, "out of range"));
                /* nothing was written */
                for (size_t i = 0; i < count_of(4, od); i++)
                    assert_int_equal(y[i], 0xcdcd);
            }
            tc_free(&c);
        }
    }
    /* scalar indices drop the axis; an extreme int64 index is rejected */
    tcase c;
    tc_init(&c, "Gather", 13, 2, 1);
    int64_t d[2] = {3, 2}, sc[1] = {0}, od[1] = {2};
    int64_t x[6] = {10, 11, 20, 21, 30, 31}, i1 = -1;
    tc_in(&c, 0, JOULE_I64, 2, d, x);
    tc_in(&c, 1, JOULE_I64, 0, sc, &i1);
    int64_t *y = tc_out(&c, 0, JOULE_I64, 1, od);
    assert_joule_ok(tc_run(&c), &c.err);
    assert_int_equal(y[0], 30);
    assert_int_equal(y[1], 31);
    i1 = INT64_MIN;
    tc_in(&c, 1, JOULE_I64, 0, sc, &i1);
    expect_error(&c, tc_run(&c), JOULE_ERR_INVALID);
    tc_free(&c);
}

/* ---- Shape / Size ---- */

static void test_shape_size(void **state)
{
    (void)state;
    static const struct {
        bool has_start, has_end;
        int64_t start, end, first, n;
    } cases[] = {
        {false, false, 0, 0, 0, 4}, {true, false, 1, 0, 1, 3},  {false, true, 0, -1, 0, 3},
        {true, true, -3, 3, 1, 2},  {true, true, -10, 10, 0, 4}, {true, true, 3, 1, 0, 0},
    };
    int64_t d[4] = {2, 3, 5, 7};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        tcase c;
        tc_init(&c, "Shape", 15, 1, 1);
        tc_in(&c, 0, JOULE_F32, 4, d, NULL);
        if (cases[i].has_start)
            set_int(&c, "start", cases[i].start);
        if (cases[i].has_end)
            set_int(&c, "end", cases[i].end);
        int64_t on[1] = {cases[i].n};
        int64_t *y = tc_out(&c, 0, JOULE_I64, 1, on);
        assert_joule_ok(tc_run(&c), &c.err);
        for (int64_t k = 0; k < cases[i].n; k++)
            assert_int_equal(y[k], d[cases[i].first + k]);
        tc_free(&c);
    }
    /* before opset 15 start/end are not attributes of Shape */
    tcase c;
    tc_init(&c, "Shape", 13, 1, 1);
    tc_in(&c, 0, JOULE_STRING, 4, d, NULL);
    set_int(&c, "start", 2);
    int64_t four[1] = {4};
    tc_out(&c, 0, JOULE_I64, 1, four);
    assert_joule_ok(tc_run(&c), &c.err);
    assert_memory_equal(c.out[0].data, d, sizeof d);
    tc_free(&c);

    tc_init(&c, "Size", 13, 1, 1);
    tc_in(&c, 0, JOULE_U8, 4, d, NULL);
    int64_t *y = tc_out(&c, 0, JOULE_I64, 0, NULL);
    assert_joule_ok(tc_run(&c), &c.err);
    assert_int_equal(*y, 210);
    tc_free(&c);
}

/* ---- Expand / Tile ---- */

static void test_expand(void **state)
{
    (void)state;
    rng r = {8};
    struct {
        int rank;
        int64_t dims[4];
        int ns;
        int64_t shape[4];
        int orank;
        int64_t odims[4];
    } cases[] = {
        {2, {3, 1}, 3, {2, 1, 6}, 3, {2, 3, 6}},
        {1, {4}, 2, {3, 1}, 2, {3, 4}},
        {3, {1, 2, 1}, 3, {5, 2, 3}, 3, {5, 2, 3}},
        {2, {2, 3}, 1, {3}, 2, {2, 3}},
        {2, {1, 3}, 2, {0, 3}, 2, {0, 3}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        tcase c;
        tc_init(&c, "Expand", 13, 2, 1);
        size_t n = count_of(cases[i].rank, cases[i].dims);
        int16_t *x = tc_in(&c, 0, JOULE_I16, cases[i].rank, cases[i].dims, NULL);
        rfill(&r, x, n * 2);
        int64_t sd[1] = {cases[i].ns};
        tc_in(&c, 1, JOULE_I64, 1, sd, cases[i].shape);
        int16_t *y = tc_out(&c, 0, JOULE_I16, cases[i].orank, cases[i].odims);
        assert_joule_ok(tc_run(&c), &c.err);
        size_t on = count_of(cases[i].orank, cases[i].odims);
        int64_t oi[4] = {0}, ii[4];
        for (size_t o = 0; o < on; o++) {
            int off = cases[i].orank - cases[i].rank;
            for (int k = 0; k < cases[i].rank; k++)
                ii[k] = cases[i].dims[k] == 1 ? 0 : oi[k + off];
            assert_int_equal(y[o], x[flat(cases[i].rank, cases[i].dims, ii)]);
            next_index(cases[i].orank, cases[i].odims, oi);
        }
        tc_free(&c);
    }
    tcase c;
    tc_init(&c, "Expand", 13, 2, 1);
    int64_t d[1] = {3}, sd[1] = {1}, bad[1] = {4};
    tc_in(&c, 0, JOULE_F32, 1, d, NULL);
    tc_in(&c, 1, JOULE_I64, 1, sd, bad);
    tc_out(&c, 0, JOULE_F32, 1, bad);
    expect_error(&c, tc_run(&c), JOULE_ERR_INVALID);
    tc_free(&c);
}

static void test_tile(void **state)
{
    (void)state;
    rng r = {9};
    for (int iter = 0; iter < 60; iter++) {
        int rank = (int)rrange(&r, 1, JOULE_MAX_RANK);
        int64_t dims[JOULE_MAX_RANK], rep[JOULE_MAX_RANK], od[JOULE_MAX_RANK];
        for (int k = 0; k < rank; k++) {
            dims[k] = rrange(&r, 1, rank > 4 ? 2 : 4);
            rep[k] = rrange(&r, iter == 7 ? 0 : 1, rank > 4 ? 2 : 3);
            od[k] = dims[k] * rep[k];
        }
        tcase c;
        tc_init(&c, "Tile", 13, 2, 1);
        size_t n = count_of(rank, dims), on = count_of(rank, od);
        float *x = tc_in(&c, 0, JOULE_F32, rank, dims, NULL);
        rfill_f32(&r, x, n);
        int64_t rd[1] = {rank};
        tc_in(&c, 1, JOULE_I64, 1, rd, rep);
        float *y = tc_out(&c, 0, JOULE_F32, rank, od);
        assert_joule_ok(tc_run_threads(&c, 2), &c.err);
        int64_t oi[JOULE_MAX_RANK] = {0}, ii[JOULE_MAX_RANK];
        for (size_t o = 0; o < on; o++) {
            for (int k = 0; k < rank; k++)
                ii[k] = oi[k] % dims[k];
            assert_true(y[o] == x[flat(rank, dims, ii)]);
            next_index(rank, od, oi);
        }
        tc_free(&c);
    }
}

/* ---- Pad ---- */

/* Input index for output position o of an axis, -1 for the constant, by bouncing (reflect),
 * clamping (edge) or wrapping step by step rather than with a formula. Negative pads crop first. */
static int64_t ref_pad_index(const char *mode, int64_t o, int64_t d, int64_t pb, int64_t pe)
{
    int64_t lo = pb < 0 ? -pb : 0, len = d - lo - (pe < 0 ? -pe : 0);
    int64_t i = o - (pb > 0 ? pb : 0);
    if (i >= 0 && i < len)
        return lo + i;
    if (!strcmp(mode, "constant"))
        return -1;
    if (!strcmp(mode, "edge"))
        return lo + (i < 0 ? 0 : len - 1);
    if (!strcmp(mode, "wrap")) {
        while (i < 0)
            i += len;
        while (i >= len)
            i -= len;
        return lo + i;
    }
    if (len == 1)
        return lo;
    while (i < 0 || i >= len) {
        if (i < 0)
            i = -i;
        if (i >= len)
            i = 2 * (len - 1) - i;
    }
    return lo + i;
}

static void check_pad(rng *r, int64_t opset, const char *mode, int rank, const int64_t *dims,
                      const int64_t *pads, float value, const int64_t *axes, int naxes)
{
    tcase c;
    tc_init(&c, "Pad", opset, opset >= 11 ? (axes ? 4 : 3) : 1, 1);
    size_t n = count_of(rank, dims);
    float *x = tc_in(&c, 0, JOULE_F32, rank, dims, NULL);
    rfill_f32(r, x, n);
    set_str(&c, "mode", mode);
    int64_t full[2 * JOULE_MAX_RANK] = {0};
    int np = axes ? naxes : rank;
    for (int i = 0; i < np; i++) {
        int ax = axes ? (int)(axes[i] < 0 ? axes[i] + rank : axes[i]) : i;
        full[ax] = pads[i];
        full[rank + ax] = pads[np + i];
    }
    if (opset >= 11) {
        int64_t pd[1] = {2 * np}, sc[1] = {0};
        tc_in(&c, 1, JOULE_I64, 1, pd, pads);
        tc_in(&c, 2, JOULE_F32, 0, sc, &value);
        if (axes) {
            int64_t ad[1] = {naxes};
            tc_in(&c, 3, JOULE_I64, 1, ad, axes);
        }
    } else {
        set_ints(&c, opset < 2 ? "paddings" : "pads", pads, 2 * (size_t)rank);
        set_float(&c, "value", value);
    }
    int64_t od[JOULE_MAX_RANK];
    for (int k = 0; k < rank; k++)
        od[k] = dims[k] + full[k] + full[rank + k];
    float *y = tc_out(&c, 0, JOULE_F32, rank, od);
    assert_joule_ok(tc_run(&c), &c.err);
    size_t on = count_of(rank, od);
    int64_t oi[JOULE_MAX_RANK] = {0}, ii[JOULE_MAX_RANK];
    for (size_t o = 0; o < on; o++) {
        bool constant = false;
        for (int k = 0; k < rank; k++) {
            ii[k] = ref_pad_index(mode, oi[k], dims[k], full[k], full[rank + k]);
            constant |= ii[k] < 0;
        }
        float want = constant ? value : x[flat(rank, dims, ii)];
        if (y[o] != want)
            fail_msg("pad %s: element %zu is %g, expected %g", mode, o, (double)y[o],
                     (double)want);
        next_index(rank, od, oi);
    }
    tc_free(&c);
}

static void test_pad(void **state)
{
    (void)state;
    rng r = {10};
    static const char *modes[] = {"constant", "reflect", "edge"};
    int64_t d2[2] = {3, 4};
    int64_t p2[4] = {2, 3, 1, 2};      /* within reflect's reach */
    int64_t p2big[4] = {7, 9, 5, 11}; /* reflect bounces several times */
    for (int m = 0; m < 3; m++) {
        check_pad(&r, 13, modes[m], 2, d2, p2, 1.5f, NULL, 0);
        check_pad(&r, 13, modes[m], 2, d2, p2big, -2.0f, NULL, 0);
        check_pad(&r, 2, modes[m], 2, d2, p2, 3.25f, NULL, 0);
    }
    check_pad(&r, 1, "constant", 2, d2, p2, 0.5f, NULL, 0);
    check_pad(&r, 19, "wrap", 2, d2, p2big, 0.0f, NULL, 0);
    /* negative pads crop, in every mode */
    int64_t d3[3] = {4, 5, 6}, pneg[6] = {-1, 2, 0, 1, -2, -3};
    for (int m = 0; m < 3; m++)
        check_pad(&r, 13, modes[m], 3, d3, pneg, 9.0f, NULL, 0);
    /* a length-1 axis reflects onto itself */
    int64_t d1[2] = {1, 5}, p1[4] = {2, 0, 3, 1};
    check_pad(&r, 13, "reflect", 2, d1, p1, 0.0f, NULL, 0);
    /* opset 18 axes */
    int64_t ax[2] = {-1, 0}, pax[4] = {1, 2, 3, 0};
    check_pad(&r, 18, "edge", 3, d3, pax, 0.0f, ax, 2);
    /* large NCHW reflect pad, as in style-transfer models */
    int64_t d4[4] = {1, 3, 64, 80}, p4[8] = {0, 0, 4, 4, 0, 0, 4, 4};
    check_pad(&r, 13, "reflect", 4, d4, p4, 0.0f, NULL, 0);

    /* an empty axis cannot be edge-padded; a wrong pads count is refused */
    tcase c;
    tc_init(&c, "Pad", 13, 2, 1);
    int64_t d0[2] = {0, 3}, pd[1] = {4}, pz[4] = {1, 0, 1, 0}, od[2] = {2, 3};
    tc_in(&c, 0, JOULE_F32, 2, d0, NULL);
    tc_in(&c, 1, JOULE_I64, 1, pd, pz);
    set_str(&c, "mode", "edge");
    tc_out(&c, 0, JOULE_F32, 2, od);
    expect_error(&c, tc_run(&c), JOULE_ERR_INVALID);
    int64_t pd3[1] = {3};
    tc_in(&c, 1, JOULE_I64, 1, pd3, pz);
    set_str(&c, "mode", "constant");
    expect_error(&c, tc_run(&c), JOULE_ERR_INVALID);
    set_str(&c, "mode", "mirror");
    assert_false(tc_supported(&c));
    tc_free(&c);
}

/* ---- Resize ---- */

typedef struct rs_ref {
    const char *mode, *ctm, *nearest;
    int64_t opset;
    float extrap;
    const float *roi;
} rs_ref;

static double ref_coord(const rs_ref *p, int k, int rank, int64_t o, int64_t in, int64_t out,
                        double scale)
{
    const char *ctm = p->ctm;
    double x = (double)o;
    if (!strcmp(ctm, "half_pixel"))
        return (x + 0.5) / scale - 0.5;
    if (!strcmp(ctm, "pytorch_half_pixel"))
        return out > 1 ? (x + 0.5) / scale - 0.5 : 0.0;
    if (!strcmp(ctm, "align_corners"))
        return out == 1 ? 0.0 : x * (double)(in - 1) / (double)(out - 1);
    if (!strcmp(ctm, "asymmetric"))
        return x / scale;
    if (!strcmp(ctm, "tf_half_pixel_for_nn"))
        return (x + 0.5) / scale;
    if (!strcmp(ctm, "half_pixel_symmetric")) {
        double adj = (double)out / (scale * (double)in);
        return (double)in / 2.0 * (1.0 - adj) + (x + 0.5) / scale - 0.5;
    }
    /* tf_crop_and_resize */
    double s = p->roi[k], e = p->roi[rank + k];
    if (out > 1)
        return s * (double)(in - 1) + x * (e - s) * (double)(in - 1) / (double)(out - 1);
    return 0.5 * (s + e) * (double)(in - 1);
}

/* Value of the output element oi, interpolating one axis at a time from the outermost (as the
 * ONNX reference does: an N-D interpolation is 1-D interpolations of (N-1)-D results). */
static double ref_resize_at(const rs_ref *p, const float *x, int rank, const int64_t *dims,
                            const int64_t *od, const double *scale, const int64_t *oi, int k,
                            int64_t *ii)
{
    if (k == rank)
        return x[flat(rank, dims, ii)];
    double c = ref_coord(p, k, rank, oi[k], dims[k], od[k], scale[k]);
    int64_t len = dims[k];
    if (!strcmp(p->ctm, "tf_crop_and_resize") && (c < 0 || c > (double)(len - 1)))
        return p->extrap;
    if (!strcmp(p->mode, "nearest")) {
        double f = floor(c);
        int64_t i;
        if (p->opset < 11)
            i = scale[k] < 1 ? (int64_t)ceil(c) : (int64_t)f;
        else if (!strcmp(p->nearest, "floor"))
            i = (int64_t)f;
        else if (!strcmp(p->nearest, "ceil"))
            i = (int64_t)ceil(c);
        else if (c == f + 0.5)
            i = !strcmp(p->nearest, "round_prefer_ceil") ? (int64_t)f + 1 : (int64_t)f;
        else
            i = (int64_t)round(c);
        ii[k] = i < 0 ? 0 : i >= len ? len - 1 : i;
        return ref_resize_at(p, x, rank, dims, od, scale, oi, k + 1, ii);
    }
    /* linear: the two neighbours of c with the input's edge repeated outside it */
    int64_t i0 = (int64_t)floor(c);
    double w = c - (double)i0;
    int64_t a = i0 < 0 ? 0 : i0 >= len ? len - 1 : i0;
    int64_t b = i0 + 1 < 0 ? 0 : i0 + 1 >= len ? len - 1 : i0 + 1;
    ii[k] = a;
    double va = ref_resize_at(p, x, rank, dims, od, scale, oi, k + 1, ii);
    ii[k] = b;
    double vb = ref_resize_at(p, x, rank, dims, od, scale, oi, k + 1, ii);
    return (1.0 - w) * va + w * vb;
}

/* Runs Resize on x (dims) to od, with scales (when use_scales) or sizes, and compares. */
static void check_resize(const rs_ref *p, const float *x, int rank, const int64_t *dims,
                         const int64_t *od, const float *scales, bool use_scales, int threads)
{
    tcase c;
    tc_init(&c, "Resize", p->opset, p->opset < 11 ? 2 : 4, 1);
    tc_in(&c, 0, JOULE_F32, rank, dims, x);
    int64_t rd[1] = {rank}, rd2[1] = {2 * rank};
    double scale[JOULE_MAX_RANK];
    if (p->opset < 11) {
        tc_in(&c, 1, JOULE_F32, 1, rd, scales);
    } else {
        if (p->roi)
            tc_in(&c, 1, JOULE_F32, 1, rd2, p->roi);
        else
            tc_omit_in(&c, 1);
        if (use_scales) {
            tc_in(&c, 2, JOULE_F32, 1, rd, scales);
            tc_omit_in(&c, 3);
        } else {
            int64_t zero[1] = {0};
            tc_in(&c, 2, JOULE_F32, 1, zero, NULL); /* opset 11 style: empty scales */
            tc_in(&c, 3, JOULE_I64, 1, rd, od);
        }
        set_str(&c, "coordinate_transformation_mode", p->ctm);
        if (p->nearest)
            set_str(&c, "nearest_mode", p->nearest);
        set_float(&c, "extrapolation_value", p->extrap);
    }
    set_str(&c, "mode", p->mode);
    for (int k = 0; k < rank; k++)
        scale[k] = use_scales ? (double)scales[k] : (double)od[k] / (double)dims[k];
    float *y = tc_out(&c, 0, JOULE_F32, rank, od);
    assert_joule_ok(tc_run_threads(&c, threads), &c.err);
    int64_t oi[JOULE_MAX_RANK] = {0}, ii[JOULE_MAX_RANK];
    size_t on = count_of(rank, od);
    for (size_t o = 0; o < on; o++) {
        double want = ref_resize_at(p, x, rank, dims, od, scale, oi, 0, ii);
        if (fabs(y[o] - want) > 1e-4 * (1.0 + fabs(want)))
            fail_msg("resize %s/%s/%s opset %lld: element %zu is %.7g, expected %.7g", p->mode,
                     p->ctm, p->nearest ? p->nearest : "-", (long long)p->opset, o, (double)y[o],
                     want);
        next_index(rank, od, oi);
    }
    tc_free(&c);
}

static void test_resize_reference(void **state)
{
    (void)state;
    rng r = {11};
    static const char *ctms[] = {"half_pixel",   "pytorch_half_pixel",   "align_corners",
                                 "asymmetric",   "tf_half_pixel_for_nn", "tf_crop_and_resize",
                                 "half_pixel_symmetric"};
    static const char *nms[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
    static const float roi[8] = {0.0f, 0.0f, 0.2f, 0.1f, 1.0f, 1.0f, 0.9f, 1.2f};
    float x[2 * 3 * 5 * 7];
    rfill_f32(&r, x, sizeof x / sizeof *x);
    int64_t dims[4] = {2, 3, 5, 7};
    /* up, down, mixed and identity along H and W; N and C kept */
    static const int64_t outs[][4] = {{2, 3, 10, 14}, {2, 3, 3, 4}, {2, 3, 8, 3},
                                      {2, 3, 5, 7},   {2, 3, 1, 1}, {2, 3, 13, 9}};
    static const float scl[][4] = {{1, 1, 2, 2},   {1, 1, 0.6f, 0.6f}, {1, 1, 1.6f, 0.5f},
                                   {1, 1, 1, 1},   {1, 1, 0.2f, 0.15f}, {1, 1, 2.6f, 1.3f}};
    for (size_t ci = 0; ci < sizeof ctms / sizeof *ctms; ci++) {
        int64_t opset = !strcmp(ctms[ci], "half_pixel_symmetric") ? 19 : 13;
        for (size_t oi = 0; oi < sizeof outs / sizeof *outs; oi++) {
            for (int use_scales = 0; use_scales < 2; use_scales++) {
                rs_ref p = {.mode = "linear", .ctm = ctms[ci], .opset = opset, .extrap = -7.0f,
                            .roi = ci == 5 ? roi : NULL};
                check_resize(&p, x, 4, dims, outs[oi], scl[oi], use_scales, 1 + (int)oi % 2);
                for (size_t ni = 0; ni < 4; ni++) {
                    p.mode = "nearest";
                    p.nearest = nms[ni];
                    check_resize(&p, x, 4, dims, outs[oi], scl[oi], use_scales, 1);
                }
            }
        }
    }
    /* trilinear over the last three axes, and linear over N too */
    int64_t o3[4] = {3, 5, 4, 10};
    float s3[4] = {1.5f, 5.0f / 3.0f, 0.8f, 10.0f / 7.0f};
    rs_ref p = {.mode = "linear", .ctm = "half_pixel", .opset = 13};
    check_resize(&p, x, 4, dims, o3, s3, false, 3);
    /* opset 10: asymmetric, nearest rounding down when growing and up when shrinking */
    static const float s10[][4] = {{1, 1, 2, 3}, {1, 1, 0.6f, 0.5f}};
    static const int64_t o10[][4] = {{2, 3, 10, 21}, {2, 3, 3, 3}};
    for (int i = 0; i < 2; i++) {
        rs_ref q = {.mode = "nearest", .ctm = "asymmetric", .opset = 10};
        check_resize(&q, x, 4, dims, o10[i], s10[i], true, 1);
        q.mode = "linear";
        check_resize(&q, x, 4, dims, o10[i], s10[i], true, 1);
    }
    /* a large bilinear upsample split across threads */
    float *big = malloc(1 * 8 * 40 * 52 * sizeof *big);
    rfill_f32(&r, big, 8 * 40 * 52);
    int64_t bd[4] = {1, 8, 40, 52}, bo[4] = {1, 8, 80, 104}; /* above the parallel threshold */
    float bs[4] = {1, 1, 2, 2};
    rs_ref pb = {.mode = "linear", .ctm = "half_pixel", .opset = 13};
    check_resize(&pb, big, 4, bd, bo, bs, true, 4);
    pb.mode = "nearest";
    pb.nearest = "round_prefer_floor";
    pb.ctm = "asymmetric";
    check_resize(&pb, big, 4, bd, bo, bs, true, 4);
    free(big);
}

static void test_resize_dtypes_and_refusals(void **state)
{
    (void)state;
    /* nearest moves any dtype: int8 upsampled x2 (asymmetric, floor) repeats elements */
    tcase c;
    tc_init(&c, "Resize", 13, 3, 1);
    int64_t d[2] = {2, 3}, od[2] = {4, 6}, sd[1] = {2};
    int8_t x[6] = {1, -2, 3, -4, 5, -6};
    float sc[2] = {2, 2};
    tc_in(&c, 0, JOULE_I8, 2, d, x);
    tc_omit_in(&c, 1);
    tc_in(&c, 2, JOULE_F32, 1, sd, sc);
    set_str(&c, "mode", "nearest");
    set_str(&c, "coordinate_transformation_mode", "asymmetric");
    set_str(&c, "nearest_mode", "floor");
    int8_t *y = tc_out(&c, 0, JOULE_I8, 2, od);
    assert_joule_ok(tc_run(&c), &c.err);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 6; j++)
            assert_int_equal(y[i * 6 + j], x[(i / 2) * 3 + j / 2]);
    /* linear on int8 and cubic are declined */
    set_str(&c, "mode", "linear");
    assert_false(tc_supported(&c));
    set_str(&c, "mode", "cubic");
    assert_false(tc_supported(&c));
    /* antialias (opset 18) is declined */
    tc_free(&c);

    tc_init(&c, "Resize", 18, 3, 1);
    float xf[6] = {0, 1, 2, 3, 4, 5};
    tc_in(&c, 0, JOULE_F32, 2, d, xf);
    tc_omit_in(&c, 1);
    tc_in(&c, 2, JOULE_F32, 1, sd, sc);
    set_str(&c, "mode", "linear");
    set_int(&c, "antialias", 1);
    assert_false(tc_supported(&c));
    tc_free(&c);

    /* linear on float16: same values as float32 within half precision */
    tc_init(&c, "Resize", 13, 3, 1);
    uint16_t h[6];
    for (int i = 0; i < 6; i++)
        h[i] = joule_f32_to_f16(xf[i]);
    tc_in(&c, 0, JOULE_F16, 2, d, h);
    tc_omit_in(&c, 1);
    tc_in(&c, 2, JOULE_F32, 1, sd, sc);
    set_str(&c, "mode", "linear");
    set_str(&c, "coordinate_transformation_mode", "align_corners");
    uint16_t *yh = tc_out(&c, 0, JOULE_F16, 2, od);
    assert_joule_ok(tc_run(&c), &c.err);
    for (int i = 0; i < 4; i++) {
        for (int j = 0; j < 6; j++) {
            double yi = i * 1.0 / 3.0, xj = j * 2.0 / 5.0;
            int i0 = (int)yi, j0 = (int)xj;
            int i1 = i0 + 1 < 2 ? i0 + 1 : 1, j1 = j0 + 1 < 3 ? j0 + 1 : 2;
            double wy = yi - i0, wx = xj - j0;
            double want = (1 - wy) * ((1 - wx) * xf[i0 * 3 + j0] + wx * xf[i0 * 3 + j1]) +
                          wy * ((1 - wx) * xf[i1 * 3 + j0] + wx * xf[i1 * 3 + j1]);
            assert_true(fabs(joule_f16_to_f32(yh[i * 6 + j]) - want) < 4e-3);
        }
    }
    /* a non-positive scale is refused */
    float bad[2] = {2, -1};
    tc_in(&c, 2, JOULE_F32, 1, sd, bad);
    expect_error(&c, tc_run(&c), JOULE_ERR_INVALID);
    tc_free(&c);
}

/* ---- DepthToSpace / SpaceToDepth ---- */

/* y = reshape(transpose(reshape(x, v6), perm), out) written out as the spec does. */
static void ref_reshape_transpose(const float *x, float *y, const int64_t *v6, const int64_t *perm)
{
    ref_transpose(x, y, sizeof *x, 6, v6, perm);
}

static void test_depth_space(void **state)
{
    (void)state;
    rng r = {12};
    int64_t n = 2, ch = 8, h = 3, w = 5, b = 2, oc = ch / (b * b);
    int64_t d[4] = {n, ch, h, w}, od[4] = {n, oc, h * b, w * b};
    size_t cnt = (size_t)(n * ch * h * w);
    float *x = malloc(cnt * sizeof *x), *want = malloc(cnt * sizeof *want);
    rfill_f32(&r, x, cnt);
    for (int crd = 0; crd < 2; crd++) {
        tcase c;
        tc_init(&c, "DepthToSpace", 13, 1, 1);
        tc_in(&c, 0, JOULE_F32, 4, d, x);
        set_int(&c, "blocksize", b);
        set_str(&c, "mode", crd ? "CRD" : "DCR");
        float *y = tc_out(&c, 0, JOULE_F32, 4, od);
        assert_joule_ok(tc_run(&c), &c.err);
        if (crd) {
            int64_t v6[6] = {n, oc, b, b, h, w}, perm[6] = {0, 1, 4, 2, 5, 3};
            ref_reshape_transpose(x, want, v6, perm);
        } else {
            int64_t v6[6] = {n, b, b, oc, h, w}, perm[6] = {0, 3, 4, 1, 5, 2};
            ref_reshape_transpose(x, want, v6, perm);
        }
        assert_memory_equal(y, want, cnt * sizeof *y);
        tc_free(&c);
    }
    /* SpaceToDepth of the DCR result gives x back; and it matches its own spec formula */
    int64_t sd[4] = {n, oc, h * b, w * b};
    tcase c;
    tc_init(&c, "SpaceToDepth", 13, 1, 1);
    int64_t v6[6] = {n, b, b, oc, h, w}, perm[6] = {0, 3, 4, 1, 5, 2};
    float *dcr = malloc(cnt * sizeof *dcr);
    ref_reshape_transpose(x, dcr, v6, perm);
    tc_in(&c, 0, JOULE_F32, 4, sd, dcr);
    set_int(&c, "blocksize", b);
    float *y = tc_out(&c, 0, JOULE_F32, 4, d);
    assert_joule_ok(tc_run(&c), &c.err);
    assert_memory_equal(y, x, cnt * sizeof *y);
    int64_t s6[6] = {n, oc, h, b, w, b}, sperm[6] = {0, 3, 5, 1, 2, 4};
    ref_reshape_transpose(dcr, want, s6, sperm);
    assert_memory_equal(y, want, cnt * sizeof *y);
    /* height not divisible by the block */
    int64_t odd[4] = {1, 1, 3, 4}, oo[4] = {1, 4, 1, 2};
    tc_in(&c, 0, JOULE_F32, 4, odd, NULL);
    tc_out(&c, 0, JOULE_F32, 4, oo);
    expect_error(&c, tc_run(&c), JOULE_ERR_INVALID);
    tc_free(&c);
    free(dcr);
    free(x);
    free(want);
}

/* ---- Constant / ConstantOfShape / Range ---- */

static void test_constants(void **state)
{
    (void)state;
    tcase c;
    tc_init(&c, "Constant", 13, 0, 1);
    joule_tensor *t;
    int64_t td[2] = {2, 2};
    assert_joule_ok(joule_tensor_new(JOULE_I32, 2, td, &t, &c.err), &c.err);
    int32_t *tv = joule_tensor_mutable_data(t);
    for (int i = 0; i < 4; i++)
        tv[i] = 7 * i - 3;
    assert_joule_ok(joule_node_set_attr_tensor(c.m->graph, c.node, "value", t, &c.err), &c.err);
    int32_t *y = tc_out(&c, 0, JOULE_I32, 2, td);
    assert_joule_ok(tc_run(&c), &c.err);
    for (int i = 0; i < 4; i++)
        assert_int_equal(y[i], 7 * i - 3);
    tc_free(&c);

    tc_init(&c, "Constant", 13, 0, 1);
    int64_t iv[3] = {4, -5, 6}, d3[1] = {3};
    set_ints(&c, "value_ints", iv, 3);
    int64_t *yi = tc_out(&c, 0, JOULE_I64, 1, d3);
    assert_joule_ok(tc_run(&c), &c.err);
    assert_memory_equal(yi, iv, sizeof iv);
    tc_free(&c);

    tc_init(&c, "Constant", 13, 0, 1);
    set_float(&c, "value_float", 2.5f);
    float *yf = tc_out(&c, 0, JOULE_F32, 0, NULL);
    assert_joule_ok(tc_run(&c), &c.err);
    assert_true(*yf == 2.5f);
    /* a plan of the wrong type is refused */
    tc_out(&c, 0, JOULE_F64, 0, NULL);
    expect_error(&c, tc_run(&c), JOULE_ERR_INVALID);
    tc_free(&c);

    tc_init(&c, "ConstantOfShape", 9, 1, 1);
    int64_t shape[3] = {2, 0, 3}, sd[1] = {3};
    tc_in(&c, 0, JOULE_I64, 1, sd, shape);
    tc_out(&c, 0, JOULE_F32, 3, shape);
    assert_joule_ok(tc_run(&c), &c.err);
    shape[1] = 4;
    tc_in(&c, 0, JOULE_I64, 1, sd, shape);
    float *z = tc_out(&c, 0, JOULE_F32, 3, shape);
    assert_joule_ok(tc_run(&c), &c.err);
    for (int i = 0; i < 24; i++)
        assert_true(z[i] == 0.0f);
    int64_t one[1] = {1};
    assert_joule_ok(joule_tensor_new(JOULE_I16, 1, one, &t, &c.err), &c.err);
    *(int16_t *)joule_tensor_mutable_data(t) = -321;
    assert_joule_ok(joule_node_set_attr_tensor(c.m->graph, c.node, "value", t, &c.err), &c.err);
    int16_t *zi = tc_out(&c, 0, JOULE_I16, 3, shape);
    assert_joule_ok(tc_run(&c), &c.err);
    for (int i = 0; i < 24; i++)
        assert_int_equal(zi[i], -321);
    shape[0] = -1;
    tc_in(&c, 0, JOULE_I64, 1, sd, shape);
    expect_error(&c, tc_run(&c), JOULE_ERR_INVALID);
    tc_free(&c);
}

static void test_range(void **state)
{
    (void)state;
    static const struct {
        joule_dtype t;
        double start, limit, delta;
        int64_t n;
    } cases[] = {
        {JOULE_F32, 1, 5, 2, 2},     {JOULE_F32, 0.5, -1.2, -0.3, 6}, {JOULE_F64, 0, 1, 0.1, 10},
        {JOULE_I32, 10, 4, -3, 2},   {JOULE_I16, -7, 8, 5, 3},        {JOULE_I64, 3, 3, 1, 0},
        {JOULE_I64, 5, 10, -1, 0},   {JOULE_I32, 0, 10, 20, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        tcase c;
        tc_init(&c, "Range", 11, 3, 1);
        double v[3] = {cases[i].start, cases[i].limit, cases[i].delta};
        for (int k = 0; k < 3; k++) {
            unsigned char buf[8];
            switch (cases[i].t) {
            case JOULE_F32: { float f = (float)v[k]; memcpy(buf, &f, 4); break; }
            case JOULE_F64: memcpy(buf, &v[k], 8); break;
            case JOULE_I16: { int16_t s = (int16_t)v[k]; memcpy(buf, &s, 2); break; }
            case JOULE_I32: { int32_t s = (int32_t)v[k]; memcpy(buf, &s, 4); break; }
            default: { int64_t s = (int64_t)v[k]; memcpy(buf, &s, 8); break; }
            }
            tc_in(&c, k, cases[i].t, 0, NULL, buf);
        }
        int64_t od[1] = {cases[i].n};
        void *y = tc_out(&c, 0, cases[i].t, 1, od);
        assert_joule_ok(tc_run(&c), &c.err);
        for (int64_t k = 0; k < cases[i].n; k++) {
            double want = cases[i].start + (double)k * cases[i].delta, got;
            switch (cases[i].t) {
            case JOULE_F32: got = ((float *)y)[k]; want = (float)((float)cases[i].start + (float)k * (float)cases[i].delta); break;
            case JOULE_F64: got = ((double *)y)[k]; break;
            case JOULE_I16: got = ((int16_t *)y)[k]; break;
            case JOULE_I32: got = ((int32_t *)y)[k]; break;
            default: got = (double)((int64_t *)y)[k]; break;
            }
            if (fabs(got - want) > 1e-6 * (1 + fabs(want)))
                fail_msg("range case %zu element %lld: %g, expected %g", i, (long long)k, got, want);
        }
        /* a planned count that disagrees is refused */
        int64_t wrong[1] = {cases[i].n + 1};
        tc_out(&c, 0, cases[i].t, 1, wrong);
        expect_error(&c, tc_run(&c), JOULE_ERR_INVALID);
        tc_free(&c);
    }
    tcase c;
    tc_init(&c, "Range", 11, 3, 1);
    int32_t s = 0, l = 5, dz = 0;
    tc_in(&c, 0, JOULE_I32, 0, NULL, &s);
    tc_in(&c, 1, JOULE_I32, 0, NULL, &l);
    tc_in(&c, 2, JOULE_I32, 0, NULL, &dz);
    int64_t od[1] = {0};
    tc_out(&c, 0, JOULE_I32, 1, od);
    expect_error(&c, tc_run(&c), JOULE_ERR_INVALID);
    tc_free(&c);
}

/* ---- GatherElements / ScatterElements / ScatterND ---- */

static void test_gather_elements(void **state)
{
    (void)state;
    rng r = {13};
    int64_t d[3] = {3, 4, 5};
    for (int axis = -3; axis < 3; axis++) {
        int ax = axis < 0 ? axis + 3 : axis;
        tcase c;
        tc_init(&c, "GatherElements", 13, 2, 1);
        int32_t *x = tc_in(&c, 0, JOULE_I32, 3, d, NULL);
        rfill(&r, x, 60 * 4);
        int64_t id[3] = {2, 3, 4};
        id[ax] = 6; /* along the axis indices may be longer than the data */
        size_t n = count_of(3, id);
        int64_t *ind = tc_in(&c, 1, JOULE_I64, 3, id, NULL);
        for (size_t i = 0; i < n; i++)
            ind[i] = rrange(&r, -d[ax], d[ax] - 1);
        set_int(&c, "axis", axis);
        int32_t *y = tc_out(&c, 0, JOULE_I32, 3, id);
        assert_joule_ok(tc_run(&c), &c.err);
        int64_t ii[3] = {0}, src[3];
        for (size_t i = 0; i < n; i++) {
            memcpy(src, ii, sizeof src);
            src[ax] = ind[i] < 0 ? ind[i] + d[ax] : ind[i];
            assert_int_equal(y[i], x[flat(3, d, src)]);
            next_index(3, id, ii);
        }
        ind[n - 1] = d[ax];
        memset(y, 0xcd, n * 4);
        expect_error(&c, tc_run(&c), JOULE_ERR_INVALID);
        assert_int_equal((uint32_t)y[0], 0xcdcdcdcdu);
        /* indices wider than the data off the axis would read out of bounds */
        int64_t wide[3] = {3, 4, 5};
        wide[(ax + 1) % 3] += 1;
        tc_in(&c, 1, JOULE_I64, 3, wide, NULL);
        tc_out(&c, 0, JOULE_I32, 3, wide);
        expect_error(&c, tc_run(&c), JOULE_ERR_INVALID);
        tc_free(&c);
    }
}

/* The reduction the reference applies for `red` to doubles. */
static double ref_reduce(const char *red, double a, double b)
{
    if (!strcmp(red, "add"))
        return a + b;
    if (!strcmp(red, "mul"))
        return a * b;
    if (!strcmp(red, "max"))
        return a > b ? a : b;
    if (!strcmp(red, "min"))
        return a < b ? a : b;
    return b;
}

static void test_scatter_elements(void **state)
{
    (void)state;
    rng r = {14};
    static const char *reds[] = {"none", "add", "mul", "max", "min"};
    int64_t d[2] = {4, 5}, id[2] = {3, 5};
    for (size_t ri = 0; ri < 5; ri++) {
        for (int axis = 0; axis < 2; axis++) {
            for (int dt = 0; dt < 2; dt++) {
                joule_dtype t = dt ? JOULE_I64 : JOULE_F32;
                tcase c;
                tc_init(&c, "ScatterElements", 18, 3, 1);
                double xd[20], ud[15];
                void *x = tc_in(&c, 0, t, 2, d, NULL);
                int32_t *ind = tc_in(&c, 1, JOULE_I32, 2, id, NULL);
                void *u = tc_in(&c, 2, t, 2, id, NULL);
                for (int i = 0; i < 20; i++) {
                    xd[i] = (double)rrange(&r, -9, 9);
                    if (dt) ((int64_t *)x)[i] = (int64_t)xd[i]; else ((float *)x)[i] = (float)xd[i];
                }
                for (int i = 0; i < 15; i++) {
                    ud[i] = (double)rrange(&r, -9, 9);
                    if (dt) ((int64_t *)u)[i] = (int64_t)ud[i]; else ((float *)u)[i] = (float)ud[i];
                    /* duplicates on purpose: reductions must accumulate them in order */
                    ind[i] = (int32_t)rrange(&r, -d[axis], d[axis] - 1);
                }
                set_int(&c, "axis", axis);
                set_str(&c, "reduction", reds[ri]);
                void *y = tc_out(&c, 0, t, 2, d);
                assert_joule_ok(tc_run(&c), &c.err);
                double want[20];
                memcpy(want, xd, sizeof want);
                for (int i = 0; i < 3; i++) {
                    for (int j = 0; j < 5; j++) {
                        int64_t v = ind[i * 5 + j];
                        if (v < 0)
                            v += d[axis];
                        int64_t at = axis ? i * 5 + v : v * 5 + j;
                        want[at] = ref_reduce(reds[ri], want[at], ud[i * 5 + j]);
                    }
                }
                for (int i = 0; i < 20; i++) {
                    double got = dt ? (double)((int64_t *)y)[i] : (double)((float *)y)[i];
                    if (got != want[i])
                        fail_msg("scatter %s axis %d %s: element %d is %g, expected %g", reds[ri],
                                 axis, joule_dtype_name(t), i, got, want[i]);
                }
                ind[7] = (int32_t)d[axis];
                memset(y, 0xcd, 20 * joule_dtype_bytes(t, 1));
                expect_error(&c, tc_run(&c), JOULE_ERR_INVALID);
                for (size_t b = 0; b < 20 * joule_dtype_bytes(t, 1); b++) /* untouched */
                    assert_int_equal(((unsigned char *)y)[b], 0xcd);
                tc_free(&c);
            }
        }
    }
    /* Scatter (opset 9/10) is ScatterElements without reduction; reduction on uint8 declined */
    tcase c;
    tc_init(&c, "Scatter", 10, 3, 1);
    int64_t d1[1] = {5}, i1[1] = {2};
    uint8_t x[5] = {1, 2, 3, 4, 5}, u[2] = {9, 8};
    int64_t ind[2] = {-1, 0};
    tc_in(&c, 0, JOULE_U8, 1, d1, x);
    tc_in(&c, 1, JOULE_I64, 1, i1, ind);
    tc_in(&c, 2, JOULE_U8, 1, i1, u);
    uint8_t *y = tc_out(&c, 0, JOULE_U8, 1, d1);
    assert_joule_ok(tc_run(&c), &c.err);
    static const uint8_t want[5] = {8, 2, 3, 4, 9};
    assert_memory_equal(y, want, 5);
    tc_free(&c);
    tc_init(&c, "ScatterElements", 16, 3, 1);
    tc_in(&c, 0, JOULE_U8, 1, d1, x);
    tc_in(&c, 1, JOULE_I64, 1, i1, ind);
    tc_in(&c, 2, JOULE_U8, 1, i1, u);
    set_str(&c, "reduction", "add");
    assert_false(tc_supported(&c));
    set_str(&c, "reduction", "max"); /* only from opset 18 */
    assert_false(tc_supported(&c));
    tc_free(&c);
}

static void test_scatter_nd(void **state)
{
    (void)state;
    rng r = {15};
    int64_t d[3] = {4, 3, 2};
    static const char *reds[] = {"none", "add", "mul"};
    for (int k = 1; k <= 3; k++) {
        for (int ri = 0; ri < 3; ri++) {
            tcase c;
            tc_init(&c, "ScatterND", 16, 3, 1);
            float *x = tc_in(&c, 0, JOULE_F32, 3, d, NULL);
            rfill_f32(&r, x, 24);
            int64_t id[2] = {2, k};
            int64_t *ind = tc_in(&c, 1, JOULE_I64, 2, id, NULL);
            /* two distinct tuples (distinct first coordinate), one written with a negative index */
            for (int t = 0; t < 2; t++)
                for (int j = 0; j < k; j++)
                    ind[t * k + j] = j == 0 ? (t ? -1 : 1) : rrange(&r, -d[j], d[j] - 1);
            int64_t ud[3] = {2, 0, 0};
            int urank = 1;
            size_t slice = 1;
            for (int j = k; j < 3; j++) {
                ud[urank++] = d[j];
                slice *= (size_t)d[j];
            }
            float *u = tc_in(&c, 2, JOULE_F32, urank, ud, NULL);
            rfill_f32(&r, u, 2 * slice);
            set_str(&c, "reduction", reds[ri]);
            float *y = tc_out(&c, 0, JOULE_F32, 3, d);
            assert_joule_ok(tc_run(&c), &c.err);
            float want[24];
            memcpy(want, x, sizeof want);
            for (int t = 0; t < 2; t++) {
                int64_t at[3] = {0, 0, 0};
                for (int j = 0; j < k; j++)
                    at[j] = ind[t * k + j] < 0 ? ind[t * k + j] + d[j] : ind[t * k + j];
                size_t base = flat(3, d, at);
                for (size_t e = 0; e < slice; e++)
                    want[base + e] = (float)ref_reduce(reds[ri], want[base + e], u[t * slice + e]);
            }
            for (int i = 0; i < 24; i++)
                assert_true(y[i] == want[i]);
            ind[k - 1] = d[k - 1] + 3;
            memset(y, 0xcd, sizeof want);
            expect_error(&c, tc_run(&c), JOULE_ERR_INVALID);
            for (size_t b = 0; b < sizeof want; b++) /* untouched */
                assert_int_equal(((unsigned char *)y)[b], 0xcd);
            tc_free(&c);
        }
    }
    /* updates of the wrong shape */
    tcase c;
    tc_init(&c, "ScatterND", 13, 3, 1);
    int64_t id[2] = {2, 1}, bad[2] = {2, 2};
    int64_t ind[2] = {0, 1};
    tc_in(&c, 0, JOULE_F32, 3, d, NULL);
    tc_in(&c, 1, JOULE_I64, 2, id, ind);
    tc_in(&c, 2, JOULE_F32, 2, bad, NULL);
    tc_out(&c, 0, JOULE_F32, 3, d);
    expect_error(&c, tc_run(&c), JOULE_ERR_INVALID);
    tc_free(&c);
}

/* ---- Trilu / EyeLike / OneHot ---- */

static void test_trilu(void **state)
{
    (void)state;
    rng r = {16};
    static const int64_t ks[] = {-6, -1, 0, 2, 7, INT64_MAX, INT64_MIN};
    int64_t d[3] = {2, 4, 5}, sc[1] = {0};
    for (size_t ki = 0; ki < sizeof ks / sizeof *ks; ki++) {
        for (int upper = 0; upper < 2; upper++) {
            tcase c;
            tc_init(&c, "Trilu", 14, 2, 1);
            uint16_t *x = tc_in(&c, 0, JOULE_F16, 3, d, NULL);
            rfill(&r, x, 40 * 2);
            tc_in(&c, 1, JOULE_I64, 0, sc, &ks[ki]);
            set_int(&c, "upper", upper);
            uint16_t *y = tc_out(&c, 0, JOULE_F16, 3, d);
            assert_joule_ok(tc_run(&c), &c.err);
            for (int m = 0; m < 2; m++)
                for (int64_t i = 0; i < 4; i++)
                    for (int64_t j = 0; j < 5; j++) {
                        bool keep = upper ? j - i >= ks[ki] : j - i <= ks[ki];
                        size_t e = (size_t)(m * 20 + i * 5 + j);
                        assert_int_equal(y[e], keep ? x[e] : 0);
                    }
            tc_free(&c);
        }
    }
}

static void test_eye_like(void **state)
{
    (void)state;
    static const int64_t ks[] = {-3, -1, 0, 2, 5};
    int64_t d[2] = {3, 5};
    for (size_t ki = 0; ki < 5; ki++) {
        for (int variant = 0; variant < 3; variant++) {
            joule_dtype t = variant == 0 ? JOULE_F32 : variant == 1 ? JOULE_I32 : JOULE_BOOL;
            tcase c;
            tc_init(&c, "EyeLike", 9, 1, 1);
            tc_in(&c, 0, JOULE_F32, 2, d, NULL);
            if (variant)
                set_int(&c, "dtype", t);
            set_int(&c, "k", ks[ki]);
            void *y = tc_out(&c, 0, t, 2, d);
            assert_joule_ok(tc_run(&c), &c.err);
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 5; j++) {
                    int on = j - i == ks[ki];
                    double got = t == JOULE_F32   ? ((float *)y)[i * 5 + j]
                                 : t == JOULE_I32 ? ((int32_t *)y)[i * 5 + j]
                                                  : ((uint8_t *)y)[i * 5 + j];
                    assert_true(got == on);
                }
            tc_free(&c);
        }
    }
}

static void test_one_hot(void **state)
{
    (void)state;
    float ind[6] = {0, 3, -1, 2.7f, 4, -5};
    int64_t idims[2] = {2, 3}, sc[1] = {0}, vd[1] = {2};
    int64_t vals[2] = {-1, 7};
    for (int opset = 9; opset <= 11; opset += 2) {
        for (int axis = -3; axis < 3; axis++) {
            tcase c;
            tc_init(&c, "OneHot", opset, 3, 1);
            tc_in(&c, 0, JOULE_F32, 2, idims, ind);
            double depth = 4.0;
            tc_in(&c, 1, JOULE_F64, 0, sc, &depth);
            tc_in(&c, 2, JOULE_I64, 1, vd, vals);
            set_int(&c, "axis", axis);
            int ax = axis < 0 ? axis + 3 : axis;
            int64_t od[3];
            for (int i = 0, j = 0; i < 3; i++)
                od[i] = i == ax ? 4 : idims[j++];
            int64_t *y = tc_out(&c, 0, JOULE_I64, 3, od);
            assert_joule_ok(tc_run(&c), &c.err);
            int64_t oi[3] = {0};
            for (size_t o = 0; o < 24; o++) {
                int64_t ii[2], dpos = oi[ax];
                for (int i = 0, j = 0; i < 3; i++)
                    if (i != ax)
                        ii[j++] = oi[i];
                int64_t v = (int64_t)ind[ii[0] * 3 + ii[1]];
                if (v < 0 && opset >= 11)
                    v += 4;
                assert_int_equal(y[o], v == dpos ? 7 : -1);
                next_index(3, od, oi);
            }
            tc_free(&c);
        }
    }
}

/* ---- ReverseSequence / TopK ---- */

static void test_reverse_sequence(void **state)
{
    (void)state;
    rng r = {17};
    for (int time_major = 0; time_major < 2; time_major++) {
        tcase c;
        tc_init(&c, "ReverseSequence", 10, 2, 1);
        int64_t T = 4, B = 3, E = 2;
        int64_t d[3] = {time_major ? T : B, time_major ? B : T, E}, ld[1] = {B};
        int64_t lens[3] = {4, 1, 0};
        int16_t *x = tc_in(&c, 0, JOULE_I16, 3, d, NULL);
        rfill(&r, x, 24 * 2);
        tc_in(&c, 1, JOULE_I64, 1, ld, lens);
        set_int(&c, "time_axis", time_major ? 0 : 1);
        set_int(&c, "batch_axis", time_major ? 1 : 0);
        int16_t *y = tc_out(&c, 0, JOULE_I16, 3, d);
        assert_joule_ok(tc_run(&c), &c.err);
        for (int64_t b = 0; b < B; b++)
            for (int64_t t = 0; t < T; t++)
                for (int64_t e = 0; e < E; e++) {
                    int64_t st = t < lens[b] ? lens[b] - 1 - t : t;
                    int64_t oi[3] = {time_major ? t : b, time_major ? b : t, e};
                    int64_t si[3] = {time_major ? st : b, time_major ? b : st, e};
                    assert_int_equal(y[flat(3, d, oi)], x[flat(3, d, si)]);
                }
        lens[1] = 5;
        tc_in(&c, 1, JOULE_I64, 1, ld, lens);
        expect_error(&c, tc_run(&c), JOULE_ERR_INVALID);
        tc_free(&c);
    }
}

/* k best of n values by repeated scans: the largest (or smallest) not yet taken, lower index
 * first among equals. */
static void ref_topk(const double *v, int64_t n, int64_t k, bool largest, int64_t *out)
{
    bool taken[64] = {false};
    for (int64_t j = 0; j < k; j++) {
        int64_t best = -1;
        for (int64_t i = 0; i < n; i++) {
            if (taken[i])
                continue;
            if (best < 0 || (largest ? v[i] > v[best] : v[i] < v[best]))
                best = i;
        }
        taken[best] = true;
        out[j] = best;
    }
}

static void test_topk(void **state)
{
    (void)state;
    rng r = {18};
    static const joule_dtype types[] = {JOULE_F32, JOULE_I32, JOULE_I64, JOULE_U8};
    for (int iter = 0; iter < 80; iter++) {
        joule_dtype t = types[iter % 4];
        int64_t d[3] = {rrange(&r, 1, 3), rrange(&r, 1, 9), rrange(&r, 1, 3)};
        int axis = (int)rrange(&r, -3, 2), ax = axis < 0 ? axis + 3 : axis;
        int64_t n = d[ax], k = rrange(&r, 0, n);
        bool largest = rnext(&r) & 1;
        tcase c;
        tc_init(&c, "TopK", 11, 2, 2);
        size_t cnt = count_of(3, d);
        void *x = tc_in(&c, 0, t, 3, d, NULL);
        double *xv = malloc(cnt * sizeof *xv);
        for (size_t i = 0; i < cnt; i++) {
            int64_t v = rrange(&r, 0, 5); /* few distinct values: many ties */
            xv[i] = (double)v;
            /* integers stored as big + v differ only below float (int32) or double (int64)
             * precision: a kernel comparing converted values would see ties */
            switch (t) {
            case JOULE_F32: ((float *)x)[i] = (float)v; break;
            case JOULE_I32: ((int32_t *)x)[i] = (int32_t)((1 << 26) + v); break;
            case JOULE_I64: ((int64_t *)x)[i] = ((int64_t)1 << 60) + v; break;
            default: ((uint8_t *)x)[i] = (uint8_t)v; break;
            }
        }
        int64_t kd[1] = {1};
        tc_in(&c, 1, JOULE_I64, 1, kd, &k);
        set_int(&c, "axis", axis);
        set_int(&c, "largest", largest);
        int64_t od[3] = {d[0], d[1], d[2]};
        od[ax] = k;
        void *y = tc_out(&c, 0, t, 3, od);
        int64_t *yi = tc_out(&c, 1, JOULE_I64, 3, od);
        assert_joule_ok(tc_run(&c), &c.err);
        /* every slice along the axis */
        int64_t oi[3] = {0};
        int64_t sd[3] = {d[0], d[1], d[2]};
        sd[ax] = 1;
        do {
            double v[64];
            int64_t best[64], ii[3];
            memcpy(ii, oi, sizeof ii);
            for (int64_t j = 0; j < n; j++) {
                ii[ax] = j;
                v[j] = xv[flat(3, d, ii)];
            }
            ref_topk(v, n, k, largest, best);
            for (int64_t j = 0; j < k; j++) {
                ii[ax] = j;
                size_t o = flat(3, od, ii);
                assert_int_equal(yi[o], best[j]);
                double got = t == JOULE_F32   ? ((float *)y)[o]
                             : t == JOULE_I32 ? (double)(((int32_t *)y)[o] - (1 << 26))
                             : t == JOULE_I64 ? (double)(((int64_t *)y)[o] - ((int64_t)1 << 60))
                                              : ((uint8_t *)y)[o];
                assert_true(got == v[best[j]]);
            }
        } while (next_index(3, sd, oi));
        free(xv);
        tc_free(&c);
    }
    /* NaN ranks first among the largest; k beyond the axis is refused */
    tcase c;
    tc_init(&c, "TopK", 11, 2, 2);
    int64_t d[1] = {4}, kd[1] = {1}, k = 2, od[1] = {2};
    float x[4] = {1, NAN, 3, 2};
    tc_in(&c, 0, JOULE_F32, 1, d, x);
    tc_in(&c, 1, JOULE_I64, 1, kd, &k);
    float *y = tc_out(&c, 0, JOULE_F32, 1, od);
    int64_t *yi = tc_out(&c, 1, JOULE_I64, 1, od);
    assert_joule_ok(tc_run(&c), &c.err);
    assert_true(isnan(y[0]) && y[1] == 3.0f);
    assert_int_equal(yi[0], 1);
    assert_int_equal(yi[1], 2);
    k = 5;
    tc_in(&c, 1, JOULE_I64, 1, kd, &k);
    expect_error(&c, tc_run(&c), JOULE_ERR_INVALID);
    tc_free(&c);
}

/* ---- ONNX backend test data ---- */

/* A TensorProto as a view with malloc'd data (raw_data or the typed field). */
static bool decode_tensor(const Onnx__TensorProto *tp, joule_view *v)
{
    memset(v, 0, sizeof *v);
    if (!joule_dtype_valid(tp->data_type) || tp->n_dims > JOULE_MAX_RANK)
        return false;
    v->dtype = (joule_dtype)tp->data_type;
    v->rank = (int)tp->n_dims;
    for (size_t k = 0; k < tp->n_dims; k++)
        v->dims[k] = tp->dims[k];
    if (!joule_dims_count(v->rank, v->dims, &v->count))
        return false;
    size_t bytes = joule_dtype_bytes(v->dtype, v->count), es = joule_dtype_bytes(v->dtype, 1);
    v->data = calloc(1, bytes ? bytes : 1);
    if (tp->has_raw_data) {
        if (tp->raw_data.len != bytes)
            return false;
        if (bytes)
            memcpy(v->data, tp->raw_data.data, bytes);
        return true;
    }
    for (size_t i = 0; i < v->count; i++) {
        char *dst = (char *)v->data + i * es;
        switch (v->dtype) {
        case JOULE_F32:
            memcpy(dst, &tp->float_data[i], 4);
            break;
        case JOULE_F64:
            memcpy(dst, &tp->double_data[i], 8);
            break;
        case JOULE_I64:
            memcpy(dst, &tp->int64_data[i], 8);
            break;
        case JOULE_U32:
        case JOULE_U64: {
            uint64_t u = tp->uint64_data[i];
            memcpy(dst, &u, es); /* little-endian: the low bytes */
            break;
        }
        default: {
            int32_t s = tp->int32_data[i];
            memcpy(dst, &s, es);
            break;
        }
        }
    }
    return true;
}

static void load_pb(const char *path, joule_view *v)
{
    size_t len;
    void *buf = test_read_file(path, &len);
    if (!buf)
        fail_msg("cannot read %s", path);
    Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, len, buf);
    free(buf);
    if (!tp || !decode_tensor(tp, v))
        fail_msg("cannot decode %s", path);
    onnx__tensor_proto__free_unpacked(tp, NULL);
}

static void set_attr_from_proto(tcase *c, const Onnx__AttributeProto *a)
{
    switch (a->type) {
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT:
        set_int(c, a->name, a->i);
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT:
        set_float(c, a->name, a->f);
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS:
        set_ints(c, a->name, a->ints, a->n_ints);
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING: {
        char s[256];
        size_t n = a->s.len < sizeof s - 1 ? a->s.len : sizeof s - 1;
        memcpy(s, a->s.data, n);
        s[n] = '\0';
        set_str(c, a->name, s);
        break;
    }
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR: {
        joule_view v;
        assert_true(decode_tensor(a->t, &v));
        joule_tensor *t;
        assert_joule_ok(joule_tensor_new(v.dtype, v.rank, v.dims, &t, &c->err), &c->err);
        size_t bytes = joule_dtype_bytes(v.dtype, v.count);
        if (bytes)
            memcpy(joule_tensor_mutable_data(t), v.data, bytes);
        free(v.data);
        assert_joule_ok(joule_node_set_attr_tensor(c->m->graph, c->node, a->name, t, &c->err),
                        &c->err);
        break;
    }
    default:
        fail_msg("attribute %s: type %d not handled by the test", a->name, (int)a->type);
    }
}

static bool same_values(const joule_view *got, const joule_view *want, double tol)
{
    if (got->count != want->count)
        return false;
    if (want->dtype == JOULE_F32 || want->dtype == JOULE_F64) {
        for (size_t i = 0; i < want->count; i++) {
            double a, b;
            if (want->dtype == JOULE_F32) {
                a = ((const float *)got->data)[i];
                b = ((const float *)want->data)[i];
            } else {
                a = ((const double *)got->data)[i];
                b = ((const double *)want->data)[i];
            }
            if (fabs(a - b) > tol * (1.0 + fabs(b)))
                return false;
        }
        return true;
    }
    return memcmp(got->data, want->data, joule_dtype_bytes(want->dtype, want->count)) == 0;
}

/* Runs one single-node backend test case (test_data_set_0) through our kernel. */
static void onnx_case(const char *name)
{
    char rel[256], path[512];
    snprintf(rel, sizeof rel, "node/%s/model.onnx", name);
    test_data_path(rel, path, sizeof path);
    size_t len;
    void *buf = test_read_file(path, &len);
    if (!buf) {
        print_message("skipping %s: %s not found\n", name, path);
        return;
    }
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, buf);
    free(buf);
    assert_non_null(mp);
    int64_t opset = 0;
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const char *dom = mp->opset_import[i]->domain;
        if (!dom || !*dom || !strcmp(dom, "ai.onnx"))
            opset = mp->opset_import[i]->version;
    }
    const Onnx__GraphProto *g = mp->graph;
    assert_int_equal(g->n_node, 1);
    const Onnx__NodeProto *np = g->node[0];
    assert_true(np->n_input <= MAXIO && np->n_output <= MAXIO);

    tcase c;
    tc_init(&c, np->op_type, opset, (int)np->n_input, (int)np->n_output);
    for (size_t i = 0; i < np->n_attribute; i++)
        set_attr_from_proto(&c, np->attribute[i]);
    for (size_t i = 0; i < np->n_input; i++) {
        if (!np->input[i][0]) {
            tc_omit_in(&c, (int)i);
            continue;
        }
        bool found = false;
        for (size_t k = 0; k < g->n_input && !found; k++) {
            if (strcmp(g->input[k]->name, np->input[i]))
                continue;
            snprintf(rel, sizeof rel, "node/%s/test_data_set_0/input_%zu.pb", name, k);
            load_pb(test_data_path(rel, path, sizeof path), &c.in[i]);
            found = true;
        }
        if (!found)
            fail_msg("%s: input %s has no data", name, np->input[i]);
    }
    joule_view want[MAXIO];
    memset(want, 0, sizeof want);
    for (size_t j = 0; j < np->n_output; j++) {
        for (size_t k = 0; k < g->n_output; k++) {
            if (strcmp(g->output[k]->name, np->output[j]))
                continue;
            snprintf(rel, sizeof rel, "node/%s/test_data_set_0/output_%zu.pb", name, k);
            load_pb(test_data_path(rel, path, sizeof path), &want[j]);
            tc_out(&c, (int)j, want[j].dtype, want[j].rank, want[j].dims);
        }
        if (!want[j].data)
            fail_msg("%s: output %s has no data", name, np->output[j]);
    }
    joule_status st = tc_run(&c);
    if (st)
        fail_msg("%s: %s: %s", name, joule_status_name(st), c.err.msg);
    for (size_t j = 0; j < np->n_output; j++) {
        if (!same_values(&c.out[j], &want[j], 1e-5))
            fail_msg("%s: output %zu differs from the expected values", name, j);
        free(want[j].data);
    }
    tc_free(&c);
    onnx__model_proto__free_unpacked(mp, NULL);
}

static void test_onnx_backend_cases(void **state)
{
    (void)state;
    static const char *cases[] = {
        "test_concat_1d_axis_0", "test_concat_2d_axis_negative_1", "test_concat_3d_axis_1",
        "test_concat_3d_axis_negative_3", "test_constant", "test_constantofshape_float_ones",
        "test_constantofshape_int_shape_zero", "test_constantofshape_int_zeros",
        "test_depthtospace_crd_mode", "test_depthtospace_crd_mode_example",
        "test_depthtospace_dcr_mode", "test_depthtospace_example", "test_spacetodepth",
        "test_spacetodepth_example", "test_dropout_default", "test_dropout_default_mask",
        "test_dropout_default_mask_ratio", "test_dropout_default_old", "test_dropout_default_ratio",
        "test_dropout_random_old", "test_edge_pad", "test_reflect_pad", "test_constant_pad",
        "test_expand_dim_changed", "test_expand_dim_unchanged", "test_flatten_axis0",
        "test_flatten_negative_axis2", "test_gather_0", "test_gather_1", "test_gather_2d_indices",
        "test_gather_negative_indices", "test_identity", "test_range_float_type_positive_delta",
        "test_range_int32_type_negative_delta", "test_reshape_allowzero_reordered",
        "test_reshape_negative_extended_dims", "test_reshape_zero_and_negative_dim", "test_shape",
        "test_shape_clip_end", "test_shape_clip_start", "test_shape_end_negative_1",
        "test_shape_start_1_end_negative_1", "test_shape_start_negative_1", "test_size",
        "test_size_example", "test_slice", "test_slice_default_axes", "test_slice_default_steps",
        "test_slice_end_out_of_bounds", "test_slice_neg", "test_slice_neg_steps",
        "test_slice_negative_axes", "test_slice_start_out_of_bounds", "test_split_equal_parts_1d",
        "test_split_equal_parts_2d", "test_split_equal_parts_default_axis",
        "test_split_variable_parts_1d", "test_split_variable_parts_2d",
        "test_split_variable_parts_default_axis", "test_split_zero_size_splits", "test_squeeze",
        "test_squeeze_negative_axes", "test_tile", "test_tile_precomputed",
        "test_transpose_all_permutations_0", "test_transpose_all_permutations_1",
        "test_transpose_all_permutations_2", "test_transpose_all_permutations_3",
        "test_transpose_all_permutations_4", "test_transpose_all_permutations_5",
        "test_transpose_default", "test_unsqueeze_axis_0", "test_unsqueeze_axis_3",
        "test_unsqueeze_negative_axes", "test_unsqueeze_unsorted_axes",
        /* indexing, scattering, selection and pattern ops */
        "test_gather_elements_0", "test_gather_elements_1", "test_gather_elements_negative_indices",
        "test_scatter_elements_with_axis", "test_scatter_elements_with_duplicate_indices",
        "test_scatter_elements_with_negative_indices", "test_scatter_elements_without_axis",
        "test_scatter_with_axis", "test_scatter_without_axis", "test_scatternd",
        "test_scatternd_add", "test_scatternd_multiply", "test_top_k", "test_top_k_negative_axis",
        "test_top_k_smallest", "test_reversesequence_batch", "test_reversesequence_time",
        "test_tril", "test_tril_neg", "test_tril_one_row_neg", "test_tril_out_neg",
        "test_tril_out_pos", "test_tril_pos", "test_tril_square", "test_tril_square_neg",
        "test_tril_zero", "test_triu", "test_triu_neg", "test_triu_one_row", "test_triu_out_neg_out",
        "test_triu_out_pos", "test_triu_pos", "test_triu_square", "test_triu_square_neg",
        "test_triu_zero", "test_eyelike_populate_off_main_diagonal", "test_eyelike_with_dtype",
        "test_eyelike_without_dtype", "test_onehot_negative_indices", "test_onehot_with_axis",
        "test_onehot_with_negative_axis", "test_onehot_without_axis",
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        onnx_case(cases[i]);
}

static void test_onnx_backend_resize(void **state)
{
    (void)state;
    static const char *cases[] = {
        "test_resize_downsample_scales_linear",
        /* not test_resize_downsample_scales_linear_align_corners: its expected output uses
         * scale * length (2.4) in align_corners' denominator where the spec and ONNX Runtime use
         * the output length (2); test_resize_align_corners_fractional pins the runtime value. */
        "test_resize_downsample_scales_nearest",
        "test_resize_downsample_sizes_linear_pytorch_half_pixel",
        "test_resize_downsample_sizes_nearest",
        "test_resize_tf_crop_and_resize",
        "test_resize_upsample_scales_linear",
        "test_resize_upsample_scales_linear_align_corners",
        "test_resize_upsample_scales_nearest",
        "test_resize_upsample_sizes_nearest",
        "test_resize_upsample_sizes_nearest_ceil_half_pixel",
        "test_resize_upsample_sizes_nearest_floor_align_corners",
        "test_resize_upsample_sizes_nearest_round_prefer_ceil_asymmetric",
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        onnx_case(cases[i]);
}

/* align_corners with a scale whose output length is fractional (4 * 0.6 = 2.4 -> 2): the
 * denominator is the integer output length, as in the spec and ONNX Runtime, so the two output
 * columns sit exactly on input columns 0 and 3. */
static void test_resize_align_corners_fractional(void **state)
{
    (void)state;
    tcase c;
    tc_init(&c, "Resize", 13, 3, 1);
    int64_t d[4] = {1, 1, 2, 4}, od[4] = {1, 1, 1, 2}, sd[1] = {4};
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, sc[4] = {1, 1, 0.6f, 0.6f};
    tc_in(&c, 0, JOULE_F32, 4, d, x);
    tc_omit_in(&c, 1);
    tc_in(&c, 2, JOULE_F32, 1, sd, sc);
    set_str(&c, "mode", "linear");
    set_str(&c, "coordinate_transformation_mode", "align_corners");
    float *y = tc_out(&c, 0, JOULE_F32, 4, od);
    assert_joule_ok(tc_run(&c), &c.err);
    assert_true(y[0] == 1.0f && y[1] == 4.0f);
    tc_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copy_ops),
        cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_transpose_random),
        cmocka_unit_test(test_transpose_fast_paths),
        cmocka_unit_test(test_transpose_errors),
        cmocka_unit_test(test_concat),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_slice_examples),
        cmocka_unit_test(test_slice_random),
        cmocka_unit_test(test_slice_errors),
        cmocka_unit_test(test_gather),
        cmocka_unit_test(test_shape_size),
        cmocka_unit_test(test_expand),
        cmocka_unit_test(test_tile),
        cmocka_unit_test(test_pad),
        cmocka_unit_test(test_resize_reference),
        cmocka_unit_test(test_resize_dtypes_and_refusals),
        cmocka_unit_test(test_depth_space),
        cmocka_unit_test(test_constants),
        cmocka_unit_test(test_range),
        cmocka_unit_test(test_gather_elements),
        cmocka_unit_test(test_scatter_elements),
        cmocka_unit_test(test_scatter_nd),
        cmocka_unit_test(test_trilu),
        cmocka_unit_test(test_eye_like),
        cmocka_unit_test(test_one_hot),
        cmocka_unit_test(test_reverse_sequence),
        cmocka_unit_test(test_topk),
        cmocka_unit_test(test_onnx_backend_cases),
        cmocka_unit_test(test_onnx_backend_resize),
        cmocka_unit_test(test_resize_align_corners_fractional),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

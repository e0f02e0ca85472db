/* tests/unit/test_prune_attention.c: structured channel pruning through multi-head attention
 * (compress/prune_channels.c). The pruned model must compute exactly what the original computes
 * with the removed channels zeroed: every test builds that reference by zeroing, in a fresh copy
 * of the original, the producer columns and bias entries the pass removed (found by matching the
 * kept columns), runs both in joule's engine and compares. Also checked: the shapes (the same
 * count per head, Reshape targets with 0 / -1 entries, shared and Constant-node targets), the
 * attention scale left as it was, and patterns that must be left alone with a report row. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_compress_util.h"

/* Zeroes, in ref, the output channels the pruned model lost at MatMul `name` (weight columns)
 * and at the Add reading it (bias entries). Returns the number of channels zeroed. */
static int64_t zero_dropped(joule_model *ref, const joule_model *pruned, const char *name)
{
    joule_graph *g = ref->graph;
    joule_node *n0 = tc_node(g, name), *n1 = tc_node(pruned->graph, name);
    assert_non_null(n0);
    assert_non_null(n1);
    joule_tensor *w0 = n0->inputs[1]->data;
    const joule_tensor *w1 = tc_weight(pruned->graph, n1);
    assert_true(w0->rank == 2 && w1->rank == 2 && w0->dims[0] == w1->dims[0]);
    int64_t K = w0->dims[0], C0 = w0->dims[1], C1 = w1->dims[1];
    float *a = joule_tensor_mutable_data(w0);
    const float *b = w1->data;
    assert_non_null(a);
    bool *drop = calloc((size_t)C0, sizeof *drop);
    assert_non_null(drop);
    int64_t j = 0;
    for (int64_t ch = 0; ch < C0; ch++) { /* kept columns appear in the same order */
        bool same = j < C1;
        for (int64_t k = 0; k < K && same; k++)
            same = a[k * C0 + ch] == b[k * C1 + j];
        if (same)
            j++;
        else
            drop[ch] = true;
    }
    assert_int_equal(j, C1);
    for (int64_t ch = 0; ch < C0; ch++)
        for (int64_t k = 0; k < K && drop[ch]; k++)
            a[k * C0 + ch] = 0;
    for (size_t i = 0; i < g->n_nodes; i++) { /* the bias Add */
        joule_node *add = g->nodes[i];
        if (strcmp(add->op_type, "Add") || (add->inputs[0] != n0->outputs[0] &&
                                            add->inputs[1] != n0->outputs[0]))
            continue;
        joule_value *bv = add->inputs[0] == n0->outputs[0] ? add->inputs[1] : add->inputs[0];
        assert_non_null(bv->data);
        assert_int_equal(bv->data->count, C0);
        float *bd = joule_tensor_mutable_data(bv->data);
        assert_non_null(bd);
        for (int64_t ch = 0; ch < C0; ch++)
            if (drop[ch])
                bd[ch] = 0;
    }
    free(drop);
    return C0 - C1;
}

static const joule_layer_change *row_of(const joule_report *r, const char *node)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->rows[i].node && !strcmp(r->rows[i].node, node))
            return &r->rows[i];
    return NULL;
}

static const int64_t *ints_of(const joule_node *n, int k)
{
    assert_non_null(n->inputs[k]->data);
    assert_int_equal(n->inputs[k]->data->dtype, JOULE_I64);
    return n->inputs[k]->data->data;
}

/* ---- the transformer fixture ---- */

static void test_fixture_attention(void **state)
{
    (void)state;
    if (!tc_have("tests/data/transformer.onnx"))
        skip();
    joule_model *m = tc_load("tests/data/transformer.onnx");
    joule_report r;
    joule_report_init(&r);
    tc_prune_channels_30(m, &r, "transformer");
    const joule_graph *g = m->graph;
    static const char *const blocks[2] = {"/blocks/blocks.0/", "/blocks/blocks.1/"};
    joule_model *ref = tc_load("tests/data/transformer.onnx");
    for (int b = 0; b < 2; b++) {
        char name[160];
        /* q, k, v: 64 -> 44 columns (5 of 16 in each of 4 heads); proj: 44 rows */
        static const char *const qkv[3] = {"attn/q/MatMul", "attn/k/MatMul", "attn/v/MatMul"};
        for (int i = 0; i < 3; i++) {
            snprintf(name, sizeof name, "%s%s", blocks[b], qkv[i]);
            const joule_tensor *w = tc_weight(g, tc_node(g, name));
            assert_true(w->dims[0] == 64 && w->dims[1] == 44);
            assert_int_equal(zero_dropped(ref, m, name), 20);
        }
        snprintf(name, sizeof name, "%sattn/proj/MatMul", blocks[b]);
        const joule_tensor *w = tc_weight(g, tc_node(g, name));
        assert_true(w->dims[0] == 44 && w->dims[1] == 64);
        snprintf(name, sizeof name, "%smlp/mlp.0/MatMul", blocks[b]);
        assert_int_equal(tc_weight(g, tc_node(g, name))->dims[1], 90);
        assert_int_equal(zero_dropped(ref, m, name), 38);
        /* heads split as [-1, 16, 4, 11] and merged as [-1, 16, 44] */
        static const char *const split[3] = {"attn/Reshape", "attn/Reshape_1", "attn/Reshape_2"};
        for (int i = 0; i < 3; i++) {
            snprintf(name, sizeof name, "%s%s", blocks[b], split[i]);
            const int64_t *s = ints_of(tc_node(g, name), 1);
            assert_true(s[0] == -1 && s[1] == 16 && s[2] == 4 && s[3] == 11);
        }
        snprintf(name, sizeof name, "%sattn/Reshape_3", blocks[b]);
        const int64_t *s = ints_of(tc_node(g, name), 1);
        assert_true(s[0] == -1 && s[1] == 16 && s[2] == 44);
        /* the scale stays 1/sqrt(16) */
        snprintf(name, sizeof name, "%sattn/Mul", blocks[b]);
        const joule_value *sc = tc_node(g, name)->inputs[1];
        assert_non_null(sc->data); /* the pass made the Constant node an initializer */
        assert_true(((const float *)sc->data->data)[0] == 0.25f);
        /* the residual stream stays whole, and the report says why */
        snprintf(name, sizeof name, "%sattn/proj/MatMul", blocks[b]);
        bool why = false;
        for (size_t i = 0; i < r.n; i++)
            why |= !strcmp(r.rows[i].node, name) && r.rows[i].note &&
                   strstr(r.rows[i].note, "LayerNormalization") != NULL;
        assert_true(why);
        snprintf(name, sizeof name, "%sattn/v/MatMul", blocks[b]);
        const joule_layer_change *row = row_of(&r, name);
        assert_non_null(row);
        assert_non_null(strstr(row->note, "5 in each of 4 attention heads"));
    }
    joule_tensor *x = tc_images(), *y = tc_run(m, x), *y0 = tc_run(ref, x);
    double d = tc_max_diff(y, y0);
    if (!(d <= 1e-5))
        fail_msg("pruned model differs from the zeroed original by %g", d);
    joule_tensor_free(x);
    joule_tensor_free(y);
    joule_tensor_free(y0);
    joule_model_free(ref);
    joule_report_free(&r);
    joule_model_free(m);
}

/* A ratio that removes no channel in any head changes nothing. */
static void test_fixture_nothing_removed(void **state)
{
    (void)state;
    if (!tc_have("tests/data/transformer.onnx"))
        skip();
    joule_error err = {{0}};
    joule_model *m = tc_load("tests/data/transformer.onnx");
    joule_tensor *x = tc_images(), *y0 = tc_run(m, x);
    uint64_t p0, m0, p1, m1;
    tc_info(m, &p0, &m0);
    joule_channel_options o;
    joule_channel_defaults(&o);
    o.ratio = 0.003; /* round(0.003 * 16) = round(0.003 * 128) = 0 */
    assert_joule_ok(joule_prune_channels(m, &o, NULL, &err), &err);
    tc_info(m, &p1, &m1);
    assert_true(p0 == p1 && m0 == m1);
    joule_tensor *y1 = tc_run(m, x);
    assert_true(tc_max_diff(y0, y1) == 0);
    joule_tensor_free(x);
    joule_tensor_free(y0);
    joule_tensor_free(y1);
    joule_model_free(m);
}

/* ---- a small attention graph built by hand ---- */

enum { B = 2, T = 5, C = 8, H = 2, HD = 4, P = 6 };

typedef enum variant {
    V_PLAIN,       /* the pattern: everything pruned */
    V_HEAD_CONST,  /* q * a constant that varies along head_dim: q and k stay */
    V_MERGE_ORDER, /* v's heads merged as [.., head_dim, heads]: v stays */
    V_V_SOFTMAX    /* Softmax over v's channels before attn @ v: v stays */
} variant;

static void node2(joule_model *m, const char *op, const char *name, const char *a, const char *b,
                  const char *out)
{
    const char *in[2] = {a, b}, *o[1] = {out};
    tc_add_node(m, op, name, b ? 2 : 1, in, 1, o);
}

static void set_ints(joule_model *m, const char *node, const char *attr, const int64_t *v, size_t n)
{
    joule_error err = {{0}};
    assert_joule_ok(joule_node_set_attr_ints(m->graph, tc_node(m->graph, node), attr, v, n, &err),
                    &err);
}

/* x[B,T,C] -> q/k/v = MatMul + bias Add -> Reshape to [B,T,H,HD] -> Transpose -> softmax(q k^T *
 * 0.5) @ v -> Transpose -> Reshape [B,T,C] -> proj MatMul [C,P] -> y. q's and v's Reshapes share
 * the target [0,0,2,4]; k's is [0,0,2,-1]; the merge's [-1,5,8] comes from a Constant node. */
static joule_model *build_mha(variant var)
{
    joule_error err = {{0}};
    joule_model *m;
    assert_joule_ok(joule_model_new(17, &m, &err), &err);
    int64_t xd[3] = {B, T, C}, wd[2] = {C, C}, bd[1] = {C}, pd[2] = {C, P}, sd[1] = {4};
    tc_input(m, "x", 3, xd);
    static const char *const nm[3] = {"q", "k", "v"};
    for (int i = 0; i < 3; i++) {
        float w[C * C], b[C];
        tc_fill(w, C * C, 100 + (uint32_t)i);
        tc_fill(b, C, 200 + (uint32_t)i);
        char wn[8], bn[8], mo[8], ao[8];
        snprintf(wn, sizeof wn, "W%s", nm[i]);
        snprintf(bn, sizeof bn, "b%s", nm[i]);
        snprintf(mo, sizeof mo, "%s_mm", nm[i]);
        snprintf(ao, sizeof ao, "%s_b", nm[i]);
        add_const(m, wn, JOULE_F32, 2, wd, w);
        add_const(m, bn, JOULE_F32, 1, bd, b);
        node2(m, "MatMul", nm[i], "x", wn, mo);
        node2(m, "Add", ao, bn, mo, ao);
    }
    float wp[C * P];
    tc_fill(wp, C * P, 300);
    add_const(m, "Wp", JOULE_F32, 2, pd, wp);
    int64_t s_qv[4] = {0, 0, H, HD}, s_k[4] = {0, 0, H, -1};
    add_const(m, "S_qv", JOULE_I64, 1, sd, s_qv);
    add_const(m, "S_k", JOULE_I64, 1, sd, s_k);
    float half = 0.5f;
    add_const(m, "scale", JOULE_F32, 0, NULL, &half);
    node2(m, "Reshape", "q_split", "q_b", "S_qv", "q4");
    node2(m, "Reshape", "k_split", "k_b", "S_k", "k4");
    node2(m, "Reshape", "v_split", "v_b", "S_qv", "v4");
    const char *qt = "qt";
    node2(m, "Transpose", "q_t", "q4", NULL, "qt");
    node2(m, "Transpose", "k_t", "k4", NULL, "kt");
    node2(m, "Transpose", "v_t", "v4", NULL, "vt");
    int64_t p0213[4] = {0, 2, 1, 3}, p0231[4] = {0, 2, 3, 1};
    set_ints(m, "q_t", "perm", p0213, 4);
    set_ints(m, "k_t", "perm", p0231, 4);
    set_ints(m, "v_t", "perm", p0213, 4);
    if (var == V_HEAD_CONST) {
        float hv[HD] = {1.0f, 0.5f, 2.0f, 1.5f};
        int64_t hdims[4] = {1, 1, 1, HD};
        add_const(m, "hscale", JOULE_F32, 4, hdims, hv);
        node2(m, "Mul", "q_hscale", "qt", "hscale", "qts");
        qt = "qts";
    }
    const char *vt = "vt";
    if (var == V_V_SOFTMAX) {
        node2(m, "Softmax", "v_softmax", "vt", NULL, "vts");
        vt = "vts";
    }
    node2(m, "MatMul", "qk", qt, "kt", "qk");
    node2(m, "Mul", "qk_scale", "qk", "scale", "qks");
    node2(m, "Softmax", "attn", "qks", NULL, "attn");
    node2(m, "MatMul", "av", "attn", vt, "av");
    node2(m, "Transpose", "av_t", "av", NULL, "avt");
    int64_t p0231b[4] = {0, 2, 3, 1}; /* [B,T,HD,H]: heads after head_dim */
    set_ints(m, "av_t", "perm", var == V_MERGE_ORDER ? p0231b : p0213, 4);
    /* the merge target from a Constant node */
    int64_t s_m[3] = {-1, T, C}, smd[1] = {3};
    joule_tensor *st = NULL;
    assert_joule_ok(joule_tensor_new(JOULE_I64, 1, smd, &st, &err), &err);
    memcpy(joule_tensor_mutable_data(st), s_m, sizeof s_m);
    const char *co[1] = {"S_m"};
    joule_node *cn = tc_add_node(m, "Constant", "S_m_const", 0, NULL, 1, co);
    assert_joule_ok(joule_node_set_attr_tensor(m->graph, cn, "value", st, &err), &err);
    node2(m, "Reshape", "merge", "avt", "S_m", "merged");
    node2(m, "MatMul", "proj", "merged", "Wp", "y");
    tc_output(m, "y");
    assert_joule_ok(joule_graph_toposort(m->graph, &err), &err);
    return m;
}

/* Prunes variant var at ratio 0.5 (2 of 4 channels per head) with the given skip list, checks
 * that its output equals the zeroed reference, and returns the pruned model and its report. */
static joule_model *prune_mha(variant var, const char *const *skip, size_t n_skip,
                              joule_report *r)
{
    joule_error err = {{0}};
    joule_model *m = build_mha(var), *ref = build_mha(var);
    joule_channel_options o;
    joule_channel_defaults(&o);
    o.ratio = 0.5;
    o.skip = skip;
    o.n_skip = n_skip;
    assert_joule_ok(joule_prune_channels(m, &o, r, &err), &err);
    assert_joule_ok(joule_graph_validate(m->graph, &err), &err);
    static const char *const nm[3] = {"q", "k", "v"};
    for (int i = 0; i < 3; i++)
        if (tc_weight(m->graph, tc_node(m->graph, nm[i]))->dims[1] < C)
            zero_dropped(ref, m, nm[i]);
    int64_t xd[3] = {B, T, C};
    joule_tensor *x = tc_random_input(3, xd, 77), *y = tc_run(m, x), *y0 = tc_run(ref, x);
    assert_true(y->rank == 3 && y->dims[0] == B && y->dims[1] == T && y->dims[2] == P);
    double d = tc_max_diff(y, y0);
    if (!(d <= 1e-5))
        fail_msg("variant %d: pruned model differs from the zeroed original by %g", (int)var, d);
    joule_tensor_free(x);
    joule_tensor_free(y);
    joule_tensor_free(y0);
    joule_model_free(ref);
    return m;
}

static int64_t cols(const joule_model *m, const char *node)
{
    return tc_weight(m->graph, tc_node(m->graph, node))->dims[1];
}

/* The count removed in each head: channels [h*HD, (h+1)*HD) of the original, found by the
 * kept columns of the pruned weight. */
static void check_per_head(const joule_model *orig, const joule_model *m, const char *node)
{
    const joule_tensor *w0 = tc_weight(orig->graph, tc_node(orig->graph, node));
    const joule_tensor *w1 = tc_weight(m->graph, tc_node(m->graph, node));
    int64_t kept[H] = {0}, j = 0;
    for (int64_t ch = 0; ch < C && j < w1->dims[1]; ch++)
        if (((const float *)w0->data)[ch] == ((const float *)w1->data)[j]) {
            kept[ch / HD]++;
            j++;
        }
    assert_int_equal(j, w1->dims[1]);
    for (int h = 0; h < H; h++)
        assert_int_equal(kept[h], w1->dims[1] / H);
}

static void test_small_mha(void **state)
{
    (void)state;
    joule_report r;
    joule_report_init(&r);
    joule_model *m = prune_mha(V_PLAIN, NULL, 0, &r), *orig = build_mha(V_PLAIN);
    const joule_graph *g = m->graph;
    assert_true(cols(m, "q") == 4 && cols(m, "k") == 4 && cols(m, "v") == 4);
    check_per_head(orig, m, "q");
    check_per_head(orig, m, "k");
    check_per_head(orig, m, "v");
    /* q and k lose the same channels */
    const float *wq = tc_weight(g, tc_node(g, "q"))->data;
    const float *wk = tc_weight(g, tc_node(g, "k"))->data;
    const float *oq = tc_weight(orig->graph, tc_node(orig->graph, "q"))->data;
    const float *ok = tc_weight(orig->graph, tc_node(orig->graph, "k"))->data;
    for (int64_t j = 0, ch = 0; j < 4; j++) {
        while (oq[ch] != wq[j])
            ch++;
        assert_true(ok[ch] == wk[j]);
        ch++;
    }
    assert_int_equal(tc_weight(g, tc_node(g, "proj"))->dims[0], 4);
    assert_int_equal(tc_node(g, "v_b")->inputs[0]->data->count, 4);
    const int64_t *sq = ints_of(tc_node(g, "q_split"), 1), *sv = ints_of(tc_node(g, "v_split"), 1);
    const int64_t *sk = ints_of(tc_node(g, "k_split"), 1), *sm = ints_of(tc_node(g, "merge"), 1);
    assert_true(sq[0] == 0 && sq[1] == 0 && sq[2] == 2 && sq[3] == 2);
    assert_true(sv[0] == 0 && sv[1] == 0 && sv[2] == 2 && sv[3] == 2);
    assert_true(sk[0] == 0 && sk[1] == 0 && sk[2] == 2 && sk[3] == -1); /* -1 resolves itself */
    assert_true(sm[0] == -1 && sm[1] == T && sm[2] == 4);
    const joule_value *sc = tc_node(g, "qk_scale")->inputs[1];
    assert_true(sc->data && ((const float *)sc->data->data)[0] == 0.5f);
    const joule_layer_change *row = row_of(&r, "q");
    assert_non_null(row);
    assert_non_null(strstr(row->note, "attention dot product"));
    joule_report_free(&r);
    joule_model_free(orig);
    joule_model_free(m);

    /* v on the skip list: q and k still go, and the target q shares with v is cloned, not
     * changed under v */
    static const char *const skip_v[1] = {"v"};
    joule_report_init(&r);
    m = prune_mha(V_PLAIN, skip_v, 1, &r);
    g = m->graph;
    assert_true(cols(m, "q") == 4 && cols(m, "k") == 4 && cols(m, "v") == C);
    assert_int_equal(tc_weight(g, tc_node(g, "proj"))->dims[0], C);
    sq = ints_of(tc_node(g, "q_split"), 1);
    sv = ints_of(tc_node(g, "v_split"), 1);
    sm = ints_of(tc_node(g, "merge"), 1);
    assert_true(sq[3] == 2 && sv[3] == HD && sm[2] == C);
    assert_true(tc_node(g, "q_split")->inputs[1] != tc_node(g, "v_split")->inputs[1]);
    row = row_of(&r, "v");
    assert_true(row && row->note && strstr(row->note, "left alone") && strstr(row->note, "skip"));
    joule_report_free(&r);
    joule_model_free(m);
}

/* Zeroes output channel ch of MatMul `name` and its bias in m. */
static void zero_channel(joule_model *m, const char *name, int64_t ch)
{
    joule_node *n = tc_node(m->graph, name);
    float *w = joule_tensor_mutable_data(n->inputs[1]->data);
    assert_non_null(w);
    for (int64_t k = 0; k < C; k++)
        w[k * C + ch] = 0;
    char an[8];
    snprintf(an, sizeof an, "%s_b", name);
    float *b = joule_tensor_mutable_data(tc_node(m->graph, an)->inputs[0]->data);
    assert_non_null(b);
    b[ch] = 0;
}

/* zero_only: a channel dead in both q and k (or in v) goes only when every head has as many;
 * outputs stay the same. */
static void test_small_mha_zero_only(void **state)
{
    (void)state;
    joule_error err = {{0}};
    int64_t xd[3] = {B, T, C};
    joule_tensor *x = tc_random_input(3, xd, 78);
    for (int round = 0; round < 2; round++) {
        joule_model *m = build_mha(V_PLAIN);
        zero_channel(m, "q", 1); /* head 0 */
        zero_channel(m, "k", 1);
        zero_channel(m, "v", 2); /* head 0 */
        zero_channel(m, "v", 7); /* head 1 */
        if (round == 1) {
            zero_channel(m, "q", 6); /* head 1 */
            zero_channel(m, "k", 6);
        }
        zero_channel(m, "k", 3); /* dead in k alone: q is not, so channel 3 stays */
        joule_tensor *y0 = tc_run(m, x);
        joule_channel_options o;
        joule_channel_defaults(&o);
        o.zero_only = true;
        assert_joule_ok(joule_prune_channels(m, &o, NULL, &err), &err);
        assert_int_equal(cols(m, "v"), C - 2);
        assert_int_equal(cols(m, "q"), round == 0 ? C : C - 2); /* head 1 had none in round 0 */
        assert_int_equal(cols(m, "k"), cols(m, "q"));
        joule_tensor *y1 = tc_run(m, x);
        double d = tc_max_diff(y0, y1);
        if (!(d <= 1e-5))
            fail_msg("round %d: outputs moved by %g", round, d);
        joule_tensor_free(y0);
        joule_tensor_free(y1);
        joule_model_free(m);
    }
    joule_tensor_free(x);
}

/* Patterns that look like attention but where dropping channels would not be exact stay
 * whole, with a row saying why; the rest of the graph is still pruned exactly. */
static void test_small_mha_left_alone(void **state)
{
    (void)state;
    static const struct {
        variant var;
        const char *stays[2]; /* producers left whole */
        const char *pruned;   /* a producer still pruned */
        const char *why;      /* in the report row of stays[0] */
    } cases[] = {
        {V_HEAD_CONST, {"q", "k"}, "v", "varies along the channels of attention heads"},
        {V_MERGE_ORDER, {"v", NULL}, "q", "does not merge the attention heads back"},
        {V_V_SOFTMAX, {"v", NULL}, "k", "cannot follow"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        joule_report r;
        joule_report_init(&r);
        joule_model *m = prune_mha(cases[i].var, NULL, 0, &r);
        for (int k = 0; k < 2 && cases[i].stays[k]; k++)
            if (cols(m, cases[i].stays[k]) != C)
                fail_msg("case %zu: %s was pruned", i, cases[i].stays[k]);
        assert_int_equal(cols(m, cases[i].pruned), 4);
        const joule_layer_change *row = row_of(&r, cases[i].stays[0]);
        assert_non_null(row);
        if (!row->note || !strstr(row->note, "left alone") || !strstr(row->note, cases[i].why))
            fail_msg("case %zu: row for %s says '%s'", i, cases[i].stays[0],
                     row->note ? row->note : "");
        joule_report_free(&r);
        joule_model_free(m);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_attention),
        cmocka_unit_test(test_fixture_nothing_removed),
        cmocka_unit_test(test_small_mha),
        cmocka_unit_test(test_small_mha_zero_only),
        cmocka_unit_test(test_small_mha_left_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* tests/unit/test_infer.c: shape and dtype inference. Small graphs built in memory pin down the
 * tricky rules (Conv auto_pad, pooling ceil_mode, Gemm transposes, Reshape 0/-1/allowzero, Slice
 * with negative steps, broadcasting, opset differences, symbolic batch and Shape->Reshape chains,
 * NAME=DIMS parsing), and a conformance pass runs inference on every ONNX backend-test model with
 * its real input shapes and compares each output whose ops are all in the table with the expected
 * output's dims and dtype. */
#include "common.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/ops/ops.h"
#include "joule/infer.h"
#include "joule/onnx.h"
#include "onnx.pb-c.h"

/* ---- building graphs ---- */

static joule_model *new_model(int64_t opset)
{
    joule_error err = {{0}};
    joule_model *m = NULL;
    assert_joule_ok(joule_model_new(opset, &m, &err), &err);
    return m;
}

/* A graph input with a shape written as for joule_parse_input_shape ("x=batchx3x8"). */
static joule_value *input(joule_model *m, const char *spec, joule_dtype dt)
{
    joule_error err = {{0}};
    char buf[256];
    joule_input_shape s;
    assert_joule_ok(joule_parse_input_shape(spec, buf, sizeof buf, &s, &err), &err);
    joule_value *v = NULL;
    assert_joule_ok(joule_graph_value(m->graph, s.name, &v, &err), &err);
    v->dtype = dt;
    v->shape = s.shape;
    for (int i = 0; i < s.shape.rank; i++)
        if (s.shape.dims[i].sym)
            v->shape.dims[i].sym = joule_graph_intern(m->graph, s.shape.dims[i].sym);
    assert_joule_ok(joule_graph_add_input(m->graph, v, &err), &err);
    return v;
}

static joule_value *init_tensor(joule_model *m, const char *name, joule_dtype dt, int rank,
                                const int64_t *dims, const void *data)
{
    joule_error err = {{0}};
    joule_value *v = NULL;
    joule_tensor *t = NULL;
    assert_joule_ok(joule_graph_value(m->graph, name, &v, &err), &err);
    assert_joule_ok(joule_tensor_new(dt, rank, dims, &t, &err), &err);
    if (data)
        memcpy(joule_tensor_mutable_data(t), data, t->nbytes);
    assert_joule_ok(joule_graph_set_initializer(m->graph, v, t, &err), &err);
    return v;
}

/* A 1-D int64 initializer. */
static joule_value *ints(joule_model *m, const char *name, int n, const int64_t *vals)
{
    int64_t d = n;
    return init_tensor(m, name, JOULE_I64, 1, &d, vals);
}

/* A float initializer of the given dims (zeros). */
static joule_value *weight(joule_model *m, const char *name, int rank, const int64_t *dims)
{
    return init_tensor(m, name, JOULE_F32, rank, dims, NULL);
}

/* Appends a node; ins/outs are comma-separated value names ("" for an omitted input). */
static joule_node *node(joule_model *m, const char *op, const char *name, const char *ins,
                        const char *outs)
{
    joule_error err = {{0}};
    char ib[512], ob[512];
    const char *iv[16], *ov[16];
    int ni = 0, no = 0;
    snprintf(ib, sizeof ib, "%s", ins);
    snprintf(ob, sizeof ob, "%s", outs);
    for (char *p = ib, *q; *ins && p; p = q) {
        q = strchr(p, ',');
        if (q)
            *q++ = '\0';
        iv[ni++] = p;
    }
    for (char *p = ob, *q; p; p = q) {
        q = strchr(p, ',');
        if (q)
            *q++ = '\0';
        ov[no++] = p;
    }
    joule_node *n = NULL;
    assert_joule_ok(joule_node_create(m->graph, op, "", name, ni, iv, no, ov, &n, &err), &err);
    assert_joule_ok(joule_graph_insert_before(m->graph, n, NULL, &err), &err);
    return n;
}

static void set_int(joule_model *m, joule_node *n, const char *name, int64_t v)
{
    joule_error err = {{0}};
    assert_joule_ok(joule_node_set_attr_int(m->graph, n, name, v, &err), &err);
}

static void set_ints(joule_model *m, joule_node *n, const char *name, int count, const int64_t *v)
{
    joule_error err = {{0}};
    assert_joule_ok(joule_node_set_attr_ints(m->graph, n, name, v, (size_t)count, &err), &err);
}

static void set_str(joule_model *m, joule_node *n, const char *name, const char *v)
{
    joule_error err = {{0}};
    assert_joule_ok(joule_node_set_attr_string(m->graph, n, name, v, &err), &err);
}

static void infer_ok(joule_model *m)
{
    joule_error err = {{0}};
    assert_joule_ok(joule_infer_shapes(m, NULL, 0, &err), &err);
}

/* Inference must fail with a message containing want. */
static void infer_fails(joule_model *m, const char *want)
{
    joule_error err = {{0}};
    joule_status st = joule_infer_shapes(m, NULL, 0, &err);
    if (st == JOULE_OK)
        fail_msg("inference succeeded; expected an error containing '%s'", want);
    if (!strstr(err.msg, want))
        fail_msg("error '%s' does not contain '%s'", err.msg, want);
}

/* Value name's shape, formatted ("[1,64,112,112]", "?"). */
static const char *shape_of(joule_model *m, const char *name)
{
    static char buf[256];
    const joule_value *v = joule_graph_find_value(m->graph, name);
    if (!v)
        return "(no value)";
    joule_shape_format(&v->shape, buf, sizeof buf);
    return buf;
}

#define assert_shape(m, name, want) assert_string_equal(shape_of(m, name), want)

static joule_dtype dtype_of(joule_model *m, const char *name)
{
    const joule_value *v = joule_graph_find_value(m->graph, name);
    return v ? v->dtype : JOULE_UNDEFINED;
}

/* ---- convolution and pooling ---- */

static void test_conv_auto_pad(void **state)
{
    (void)state;
    static const struct {
        const char *auto_pad;
        int64_t stride, dil, pad;
        const char *want;
    } cases[] = {
        {"SAME_UPPER", 2, 1, 0, "[1,64,112,112]"},
        {"SAME_LOWER", 2, 1, 0, "[1,64,112,112]"},
        {"VALID", 2, 1, 0, "[1,64,109,109]"},
        {"NOTSET", 2, 1, 3, "[1,64,112,112]"},
        {"NOTSET", 1, 2, 0, "[1,64,212,212]"},
        {"SAME_UPPER", 3, 1, 0, "[1,64,75,75]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        joule_model *m = new_model(13);
        input(m, "x=1x3x224x224", JOULE_F32);
        weight(m, "w", 4, (int64_t[]){64, 3, 7, 7});
        weight(m, "b", 1, (int64_t[]){64});
        joule_node *n = node(m, "Conv", "conv", "x,w,b", "y");
        set_str(m, n, "auto_pad", cases[i].auto_pad);
        set_ints(m, n, "strides", 2, (int64_t[]){cases[i].stride, cases[i].stride});
        set_ints(m, n, "dilations", 2, (int64_t[]){cases[i].dil, cases[i].dil});
        if (cases[i].pad)
            set_ints(m, n, "pads", 4, (int64_t[]){3, 3, 3, 3});
        infer_ok(m);
        assert_shape(m, "y", cases[i].want);
        assert_int_equal(dtype_of(m, "y"), JOULE_F32);
        joule_model_free(m);
    }
}

static void test_conv_1d_3d_groups(void **state)
{
    (void)state;
    joule_model *m = new_model(13);
    input(m, "a=batchx4x100", JOULE_F32);
    weight(m, "wa", 3, (int64_t[]){8, 4, 5});
    node(m, "Conv", "c1", "a,wa", "ya");
    input(m, "v=2x2x8x16x16", JOULE_F32);
    weight(m, "wv", 5, (int64_t[]){6, 2, 3, 3, 3});
    joule_node *c3 = node(m, "Conv", "c3", "v,wv", "yv");
    set_ints(m, c3, "pads", 6, (int64_t[]){1, 1, 1, 1, 1, 1});
    set_ints(m, c3, "strides", 3, (int64_t[]){1, 2, 2});
    input(m, "d=1x32x10x10", JOULE_F32);
    weight(m, "wd", 4, (int64_t[]){32, 1, 3, 3});
    joule_node *dw = node(m, "Conv", "depthwise", "d,wd", "yd");
    set_int(m, dw, "group", 32);
    infer_ok(m);
    assert_shape(m, "ya", "[batch,8,96]");
    assert_shape(m, "yv", "[2,6,8,8,8]");
    assert_shape(m, "yd", "[1,32,8,8]");
    joule_model_free(m);

    m = new_model(13);
    input(m, "d=1x32x10x10", JOULE_F32);
    weight(m, "wd", 4, (int64_t[]){32, 2, 3, 3});
    dw = node(m, "Conv", "bad_group", "d,wd", "yd");
    set_int(m, dw, "group", 32);
    infer_fails(m, "Conv node 'bad_group'");
    joule_model_free(m);
}

static void test_conv_transpose(void **state)
{
    (void)state;
    joule_model *m = new_model(13);
    input(m, "x=1x16x7x7", JOULE_F32);
    weight(m, "w", 4, (int64_t[]){16, 4, 3, 3});
    joule_node *n = node(m, "ConvTranspose", "up", "x,w", "y");
    set_int(m, n, "group", 2);
    set_ints(m, n, "strides", 2, (int64_t[]){2, 2});
    set_ints(m, n, "pads", 4, (int64_t[]){1, 1, 1, 1});
    set_ints(m, n, "output_padding", 2, (int64_t[]){1, 1});
    joule_node *s = node(m, "ConvTranspose", "same", "x,w", "z");
    set_ints(m, s, "strides", 2, (int64_t[]){2, 2});
    set_str(m, s, "auto_pad", "SAME_UPPER");
    joule_node *o = node(m, "ConvTranspose", "shaped", "x,w", "u");
    set_ints(m, o, "strides", 2, (int64_t[]){3, 3});
    set_ints(m, o, "output_shape", 2, (int64_t[]){21, 22});
    infer_ok(m);
    assert_shape(m, "y", "[1,8,14,14]"); /* 2*(7-1) + 1 + 3 - 2 */
    assert_shape(m, "z", "[1,4,14,14]");
    assert_shape(m, "u", "[1,4,21,22]");
    joule_model_free(m);
}

static void test_pool_ceil_mode(void **state)
{
    (void)state;
    static const struct {
        const char *x;
        int64_t k, s, p, ceil;
        const char *want;
    } cases[] = {
        {"x=1x1x5x5", 2, 2, 0, 0, "[1,1,2,2]"},
        {"x=1x1x5x5", 2, 2, 0, 1, "[1,1,3,3]"},
        {"x=1x1x4x4", 3, 2, 1, 1, "[1,1,3,3]"},
        /* the last window would start in the right padding: dropped (as PyTorch/ORT do) */
        {"x=1x1x5x5", 2, 2, 1, 1, "[1,1,3,3]"},
        {"x=1x1x32x32", 3, 2, 0, 1, "[1,1,16,16]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        joule_model *m = new_model(13);
        input(m, cases[i].x, JOULE_F32);
        joule_node *n = node(m, "MaxPool", "pool", "x", "y,idx");
        set_ints(m, n, "kernel_shape", 2, (int64_t[]){cases[i].k, cases[i].k});
        set_ints(m, n, "strides", 2, (int64_t[]){cases[i].s, cases[i].s});
        set_ints(m, n, "pads", 4, (int64_t[]){cases[i].p, cases[i].p, cases[i].p, cases[i].p});
        set_int(m, n, "ceil_mode", cases[i].ceil);
        joule_node *a = node(m, "AveragePool", "avg", "x", "z");
        set_ints(m, a, "kernel_shape", 2, (int64_t[]){cases[i].k, cases[i].k});
        set_ints(m, a, "strides", 2, (int64_t[]){cases[i].s, cases[i].s});
        set_ints(m, a, "pads", 4, (int64_t[]){cases[i].p, cases[i].p, cases[i].p, cases[i].p});
        set_int(m, a, "ceil_mode", cases[i].ceil);
        set_int(m, a, "count_include_pad", 1);
        infer_ok(m);
        assert_shape(m, "y", cases[i].want);
        assert_shape(m, "idx", cases[i].want);
        assert_shape(m, "z", cases[i].want);
        assert_int_equal(dtype_of(m, "idx"), JOULE_I64);
        joule_model_free(m);
    }
    joule_model *m = new_model(13);
    input(m, "x=2x8x7x9", JOULE_F32);
    node(m, "GlobalAveragePool", "gap", "x", "y");
    joule_node *d = node(m, "MaxPool", "dilated", "x", "z");
    set_ints(m, d, "kernel_shape", 2, (int64_t[]){3, 3});
    set_ints(m, d, "dilations", 2, (int64_t[]){2, 2});
    infer_ok(m);
    assert_shape(m, "y", "[2,8,1,1]");
    assert_shape(m, "z", "[2,8,3,5]");
    joule_model_free(m);
}

/* ---- linear algebra ---- */

static void test_gemm_matmul(void **state)
{
    (void)state;
    joule_model *m = new_model(13);
    input(m, "a=4x3", JOULE_F32);
    weight(m, "b", 2, (int64_t[]){5, 4});
    weight(m, "c", 1, (int64_t[]){5});
    joule_node *g = node(m, "Gemm", "gemm", "a,b,c", "y");
    set_int(m, g, "transA", 1);
    set_int(m, g, "transB", 1);
    input(m, "p=2x1x3x4", JOULE_F32);
    input(m, "q=5x4x6", JOULE_F32);
    node(m, "MatMul", "bmm", "p,q", "r");
    input(m, "v=4", JOULE_F32);
    node(m, "MatMul", "vec", "v,q", "s");
    node(m, "MatMul", "vec2", "p,v", "t");
    infer_ok(m);
    assert_shape(m, "y", "[3,5]");
    assert_shape(m, "r", "[2,5,3,6]");
    assert_shape(m, "s", "[5,6]");
    assert_shape(m, "t", "[2,1,3]");
    joule_model_free(m);

    m = new_model(13);
    input(m, "a=4x3", JOULE_F32);
    weight(m, "b", 2, (int64_t[]){5, 4});
    node(m, "Gemm", "gemm_bad", "a,b", "y");
    infer_fails(m, "Gemm node 'gemm_bad': inner dims differ");
    joule_model_free(m);
}

/* An MLP with a symbolic batch keeps the symbol to the end. */
static void test_symbolic_mlp(void **state)
{
    (void)state;
    joule_model *m = new_model(13);
    input(m, "x=batchx1x28x28", JOULE_F32);
    node(m, "Flatten", "flat", "x", "f");
    weight(m, "w1", 2, (int64_t[]){784, 128});
    weight(m, "b1", 1, (int64_t[]){128});
    node(m, "MatMul", "mm", "f,w1", "h");
    node(m, "Add", "bias", "h,b1", "hb");
    node(m, "Relu", "act", "hb", "ha");
    weight(m, "w2", 2, (int64_t[]){10, 128});
    weight(m, "b2", 1, (int64_t[]){10});
    joule_node *g = node(m, "Gemm", "fc", "ha,w2,b2", "logits");
    set_int(m, g, "transB", 1);
    node(m, "Softmax", "sm", "logits", "prob");
    joule_node *am = node(m, "ArgMax", "am", "prob", "cls");
    set_int(m, am, "axis", 1);
    set_int(m, am, "keepdims", 0);
    infer_ok(m);
    assert_shape(m, "f", "[batch,784]");
    assert_shape(m, "hb", "[batch,128]");
    assert_shape(m, "logits", "[batch,10]");
    assert_shape(m, "prob", "[batch,10]");
    assert_shape(m, "cls", "[batch]");
    assert_int_equal(dtype_of(m, "cls"), JOULE_I64);

    /* the same graph with the batch fixed from the command line */
    joule_error err = {{0}};
    char buf[64];
    joule_input_shape s;
    assert_joule_ok(joule_parse_input_shape("x=8x1x28x28", buf, sizeof buf, &s, &err), &err);
    assert_joule_ok(joule_infer_shapes(m, &s, 1, &err), &err);
    assert_shape(m, "logits", "[8,10]");
    assert_shape(m, "cls", "[8]");
    /* wrong rank and unknown names are refused */
    assert_joule_ok(joule_parse_input_shape("x=8x784", buf, sizeof buf, &s, &err), &err);
    assert_int_equal(joule_infer_shapes(m, &s, 1, &err), JOULE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "rank"));
    assert_joule_ok(joule_parse_input_shape("nope=8", buf, sizeof buf, &s, &err), &err);
    assert_int_not_equal(joule_infer_shapes(m, &s, 1, &err), JOULE_OK);
    assert_non_null(strstr(err.msg, "nope"));
    joule_model_free(m);
}

/* ---- broadcasting ---- */

static void test_broadcasting(void **state)
{
    (void)state;
    joule_model *m = new_model(13);
    input(m, "a=2x3x1", JOULE_F32);
    input(m, "b=4", JOULE_F32);
    input(m, "c=nx1x5", JOULE_F32);
    input(m, "d=nx3x1", JOULE_F32);
    node(m, "Add", "ab", "a,b", "y");
    node(m, "Mul", "cd", "c,d", "z");
    node(m, "Less", "lt", "a,b", "lt_out");
    input(m, "cond=1x4", JOULE_BOOL);
    node(m, "Where", "w", "cond,a,b", "wo");
    node(m, "Max", "mx", "a,b,d", "mo");
    infer_ok(m);
    assert_shape(m, "y", "[2,3,4]");
    assert_shape(m, "z", "[n,3,5]");
    assert_shape(m, "lt_out", "[2,3,4]");
    assert_int_equal(dtype_of(m, "lt_out"), JOULE_BOOL);
    assert_shape(m, "wo", "[2,3,4]");
    assert_int_equal(dtype_of(m, "wo"), JOULE_F32);
    assert_shape(m, "mo", "[2,3,4]"); /* 2 vs n: n is 1 or 2, the result 2 */
    joule_model_free(m);

    m = new_model(13);
    input(m, "a=2x3", JOULE_F32);
    input(m, "b=4", JOULE_F32);
    node(m, "Add", "my_add", "a,b", "y");
    infer_fails(m, "Add node 'my_add': shapes [2,3] and [4] do not broadcast");
    joule_model_free(m);
}

/* ---- reshaping ---- */

static void test_reshape(void **state)
{
    (void)state;
    static const struct {
        const char *x;
        int n;
        int64_t spec[4];
        int allowzero;
        const char *want;
    } cases[] = {
        {"x=2x3x4", 2, {0, -1}, 0, "[2,12]"},
        {"x=2x3x4", 1, {-1}, 0, "[24]"},
        {"x=2x3x4", 2, {-1, 0}, 0, "[8,3]"},
        {"x=2x3x4", 3, {4, 0, -1}, 0, "[4,3,2]"},
        {"x=0x3", 2, {0, 3}, 1, "[0,3]"},
        {"x=0x3", 2, {3, 0}, 1, "[3,0]"},
        {"x=batchx3x4", 3, {0, 2, -1}, 0, "[batch,2,6]"},
        {"x=batchxseqx8", 4, {0, 0, 2, 4}, 0, "[batch,seq,2,4]"},
        {"x=batchxseqx8", 2, {0, -1}, 0, "[batch,?]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        joule_model *m = new_model(14);
        input(m, cases[i].x, JOULE_F32);
        ints(m, "shape", cases[i].n, cases[i].spec);
        joule_node *r = node(m, "Reshape", "r", "x,shape", "y");
        if (cases[i].allowzero)
            set_int(m, r, "allowzero", 1);
        infer_ok(m);
        assert_shape(m, "y", cases[i].want);
        joule_model_free(m);
    }
    joule_model *m = new_model(14);
    input(m, "x=2x3x4", JOULE_F32);
    ints(m, "shape", 2, (int64_t[]){5, -1});
    node(m, "Reshape", "bad_reshape", "x,shape", "y");
    infer_fails(m, "Reshape node 'bad_reshape'");
    joule_model_free(m);

    m = new_model(14);
    input(m, "x=2x3x4", JOULE_F32);
    ints(m, "shape", 2, (int64_t[]){-1, -1});
    node(m, "Reshape", "two_minus", "x,shape", "y");
    infer_fails(m, "more than one -1");
    joule_model_free(m);

    /* opset 1-4: the shape is an attribute */
    m = new_model(4);
    input(m, "x=2x3x4", JOULE_F32);
    joule_node *r = node(m, "Reshape", "old", "x", "y");
    set_ints(m, r, "shape", 2, (int64_t[]){6, -1});
    infer_ok(m);
    assert_shape(m, "y", "[6,4]");
    joule_model_free(m);
}

/* torch-style Shape -> Gather -> Unsqueeze -> Concat -> Reshape, concrete and symbolic. */
static void test_shape_chain(void **state)
{
    (void)state;
    for (int symbolic = 0; symbolic < 2; symbolic++) {
        joule_model *m = new_model(13);
        input(m, symbolic ? "x=batchxseqx8" : "x=2x5x8", JOULE_F32);
        node(m, "Shape", "shape", "x", "s");
        init_tensor(m, "i0", JOULE_I64, 0, NULL, (int64_t[]){0});
        init_tensor(m, "i1", JOULE_I64, 0, NULL, (int64_t[]){1});
        node(m, "Gather", "g0", "s,i0", "d0");
        node(m, "Gather", "g1", "s,i1", "d1");
        ints(m, "ax", 1, (int64_t[]){0});
        node(m, "Unsqueeze", "u0", "d0,ax", "e0");
        node(m, "Unsqueeze", "u1", "d1,ax", "e1");
        ints(m, "heads", 2, (int64_t[]){2, 4});
        node(m, "Concat", "cat", "e0,e1,heads", "spec");
        node(m, "Reshape", "split_heads", "x,spec", "y");
        /* the inverse, through -1: [batch, seq, -1] */
        ints(m, "m1", 1, (int64_t[]){-1});
        node(m, "Concat", "cat2", "e0,e1,m1", "spec2");
        node(m, "Reshape", "merge_heads", "y,spec2", "z");
        /* a computed length: seq * 8 via Mul, then Range and ConstantOfShape */
        init_tensor(m, "eight", JOULE_I64, 0, NULL, (int64_t[]){8});
        node(m, "Mul", "mul", "d1,eight", "n");
        init_tensor(m, "zero", JOULE_I64, 0, NULL, (int64_t[]){0});
        init_tensor(m, "one", JOULE_I64, 0, NULL, (int64_t[]){1});
        node(m, "Range", "range", "zero,n,one", "pos");
        node(m, "ConstantOfShape", "cos", "spec", "filled");
        /* positions 0..seq-1 and a causal mask from them */
        node(m, "Range", "positions", "zero,d1,one", "p");
        ints(m, "ax1", 1, (int64_t[]){1});
        node(m, "Unsqueeze", "row", "p,ax", "pr");
        node(m, "Unsqueeze", "col", "p,ax1", "pc");
        node(m, "Less", "causal", "pc,pr", "mask");
        joule_node *c = node(m, "Concat", "cat3", "s,heads", "s2");
        set_int(m, c, "axis", 0);
        joule_node *cat = joule_graph_producer(m->graph, joule_graph_find_value(m->graph, "spec"));
        set_int(m, cat, "axis", 0);
        joule_node *cat2 = joule_graph_producer(m->graph, joule_graph_find_value(m->graph, "spec2"));
        set_int(m, cat2, "axis", 0);
        infer_ok(m);
        if (symbolic) {
            assert_shape(m, "y", "[batch,seq,2,4]");
            assert_shape(m, "z", "[batch,seq,8]");
            assert_shape(m, "pos", "[?]");
            assert_shape(m, "filled", "[batch,seq,2,4]");
            assert_shape(m, "p", "[seq]");
            assert_shape(m, "mask", "[seq,seq]");
        } else {
            assert_shape(m, "y", "[2,5,2,4]");
            assert_shape(m, "z", "[2,5,8]");
            assert_shape(m, "pos", "[40]");
            assert_shape(m, "filled", "[2,5,2,4]");
            assert_shape(m, "p", "[5]");
            assert_shape(m, "mask", "[5,5]");
        }
        assert_shape(m, "s2", "[5]");
        assert_int_equal(dtype_of(m, "s"), JOULE_I64);
        assert_int_equal(dtype_of(m, "filled"), JOULE_F32);
        joule_model_free(m);
    }
}

static void test_slice(void **state)
{
    (void)state;
    static const struct {
        int64_t start, end, step;
        const char *want;
    } cases[] = {
        {-1, INT64_MIN, -1, "[10]"}, {8, 1, -3, "[3]"},   {0, INT64_MAX, 2, "[5]"},
        {-3, -1, 1, "[2]"},          {5, 2, 1, "[0]"},    {20, -20, -1, "[10]"},
        {-100, 100, 3, "[4]"},       {9, -11, -4, "[3]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        joule_model *m = new_model(13);
        input(m, "x=10x4", JOULE_F32);
        ints(m, "st", 1, &cases[i].start);
        ints(m, "en", 1, &cases[i].end);
        ints(m, "ax", 1, (int64_t[]){0});
        ints(m, "sp", 1, &cases[i].step);
        node(m, "Slice", "sl", "x,st,en,ax,sp", "y");
        infer_ok(m);
        char want[64];
        snprintf(want, sizeof want, "%.*s,4]", (int)strlen(cases[i].want) - 1, cases[i].want);
        assert_shape(m, "y", want);
        joule_model_free(m);
    }
    /* values: reversing [0..5] with step -2 gives {5,3,1}; a Reshape consumes them */
    joule_model *m = new_model(13);
    ints(m, "v", 6, (int64_t[]){0, 1, 2, 3, 4, 5});
    ints(m, "st", 1, (int64_t[]){-1});
    ints(m, "en", 1, (int64_t[]){INT64_MIN});
    ints(m, "sp", 1, (int64_t[]){-2});
    ints(m, "ax", 1, (int64_t[]){0});
    node(m, "Slice", "rev", "v,st,en,ax,sp", "r");
    input(m, "x=15", JOULE_F32);
    ints(m, "st2", 1, (int64_t[]){1});
    ints(m, "en2", 1, (int64_t[]){3});
    node(m, "Slice", "take", "r,st2,en2", "r2"); /* {3,1} */
    ints(m, "five", 1, (int64_t[]){5});
    node(m, "Concat", "cat", "five,r2", "spec"); /* {5,3,1} */
    joule_node *cat = joule_graph_producer(m->graph, joule_graph_find_value(m->graph, "spec"));
    set_int(m, cat, "axis", 0);
    node(m, "Reshape", "rs", "x,spec", "y");
    infer_ok(m);
    assert_shape(m, "r", "[3]");
    assert_shape(m, "y", "[5,3,1]");
    joule_model_free(m);

    /* opset 9: attributes */
    m = new_model(9);
    input(m, "x=10x4x6", JOULE_F32);
    joule_node *s = node(m, "Slice", "old", "x", "y");
    set_ints(m, s, "starts", 2, (int64_t[]){1, -2});
    set_ints(m, s, "ends", 2, (int64_t[]){1000, 6});
    set_ints(m, s, "axes", 2, (int64_t[]){0, 2});
    infer_ok(m);
    assert_shape(m, "y", "[9,4,2]");
    joule_model_free(m);
}

/* Attribute-vs-input forms across opsets. */
static void test_opset_versions(void **state)
{
    (void)state;
    joule_model *m = new_model(10);
    input(m, "x=1x3x1x5", JOULE_F32);
    joule_node *n = node(m, "Squeeze", "sq", "x", "a");
    set_ints(m, n, "axes", 1, (int64_t[]){2});
    n = node(m, "Unsqueeze", "usq", "x", "b");
    set_ints(m, n, "axes", 2, (int64_t[]){0, -1});
    n = node(m, "ReduceSum", "rs", "x", "c");
    set_ints(m, n, "axes", 1, (int64_t[]){1});
    n = node(m, "Split", "sp", "x", "d0,d1");
    set_int(m, n, "axis", 3);
    set_ints(m, n, "split", 2, (int64_t[]){2, 3});
    n = node(m, "Pad", "pad", "x", "e");
    set_ints(m, n, "pads", 8, (int64_t[]){0, 0, 1, 2, 0, 0, 1, 0});
    n = node(m, "Clip", "clip", "x", "f");
    node(m, "Softmax", "sm", "x", "g");
    infer_ok(m);
    assert_shape(m, "a", "[1,3,5]");
    assert_shape(m, "b", "[1,1,3,1,5,1]");
    assert_shape(m, "c", "[1,1,1,5]");
    assert_shape(m, "d0", "[1,3,1,2]");
    assert_shape(m, "d1", "[1,3,1,3]");
    assert_shape(m, "e", "[1,3,3,7]");
    assert_shape(m, "f", "[1,3,1,5]");
    joule_model_free(m);

    m = new_model(13);
    input(m, "x=1x3x1x5", JOULE_F32);
    ints(m, "ax2", 1, (int64_t[]){2});
    node(m, "Squeeze", "sq", "x,ax2", "a");
    node(m, "Squeeze", "sq_all", "x", "a2");
    ints(m, "axu", 2, (int64_t[]){0, -1});
    node(m, "Unsqueeze", "usq", "x,axu", "b");
    ints(m, "ax1", 1, (int64_t[]){1});
    n = node(m, "ReduceSum", "rs", "x,ax1", "c");
    set_int(m, n, "keepdims", 0);
    n = node(m, "ReduceMean", "rm", "x", "c2"); /* still an attribute at 13 */
    set_ints(m, n, "axes", 2, (int64_t[]){-1, 1});
    n = node(m, "ReduceSum", "rs_noop", "x", "c3");
    set_int(m, n, "noop_with_empty_axes", 1);
    node(m, "ReduceMax", "rmax", "x", "c4");
    ints(m, "split", 2, (int64_t[]){4, 1});
    n = node(m, "Split", "sp", "x,split", "d0,d1");
    set_int(m, n, "axis", -1);
    ints(m, "pads", 8, (int64_t[]){0, 0, 1, 2, 0, 0, 1, 0});
    n = node(m, "Pad", "pad", "x,pads", "e");
    set_str(m, n, "mode", "reflect");
    init_tensor(m, "lo", JOULE_F32, 0, NULL, (float[]){0});
    node(m, "Clip", "clip", "x,lo,", "f");
    infer_ok(m);
    assert_shape(m, "a", "[1,3,5]");
    assert_shape(m, "a2", "[3,5]");
    assert_shape(m, "b", "[1,1,3,1,5,1]");
    assert_shape(m, "c", "[1,1,5]");
    assert_shape(m, "c2", "[1,1,1,1]");
    assert_shape(m, "c3", "[1,3,1,5]");
    assert_shape(m, "c4", "[1,1,1,1]");
    assert_shape(m, "d0", "[1,3,1,4]");
    assert_shape(m, "d1", "[1,3,1,1]");
    assert_shape(m, "e", "[1,3,3,7]");
    assert_shape(m, "f", "[1,3,1,5]");
    joule_model_free(m);

    m = new_model(13);
    input(m, "x=1x3x2x5", JOULE_F32);
    ints(m, "ax2", 1, (int64_t[]){2});
    node(m, "Squeeze", "sq_bad", "x,ax2", "a");
    infer_fails(m, "Squeeze node 'sq_bad': cannot squeeze axis 2 of size 2");
    joule_model_free(m);

    m = new_model(13);
    input(m, "x=1x3x2x5", JOULE_F32);
    n = node(m, "Split", "sp_bad", "x", "a,b,c");
    set_int(m, n, "axis", 3);
    infer_fails(m, "Split node 'sp_bad'");
    joule_model_free(m);
}

static void test_resize(void **state)
{
    (void)state;
    joule_model *m = new_model(13);
    input(m, "x=1x3x10x15", JOULE_F32);
    init_tensor(m, "scales", JOULE_F32, 1, (int64_t[]){4}, (float[]){1, 1, 2, 0.5f});
    node(m, "Resize", "by_scale", "x,,scales", "a");
    ints(m, "sizes", 4, (int64_t[]){1, 3, 32, 33});
    init_tensor(m, "empty", JOULE_F32, 1, (int64_t[]){0}, NULL);
    node(m, "Resize", "by_size", "x,,empty,sizes", "b");
    infer_ok(m);
    assert_shape(m, "a", "[1,3,20,7]");
    assert_shape(m, "b", "[1,3,32,33]");
    joule_model_free(m);

    m = new_model(10); /* Resize-10: X, scales */
    input(m, "x=1x3x10x15", JOULE_F32);
    init_tensor(m, "scales", JOULE_F32, 1, (int64_t[]){4}, (float[]){1, 1, 3, 3});
    node(m, "Resize", "r10", "x,scales", "a");
    joule_node *d = node(m, "DepthToSpace", "d2s", "x", "b"); /* 3 channels: not divisible */
    set_int(m, d, "blocksize", 2);
    infer_fails(m, "DepthToSpace node 'd2s'");
    assert_shape(m, "a", "[1,3,30,45]");
    joule_model_free(m);
}

static void test_norm_quant_misc(void **state)
{
    (void)state;
    joule_model *m = new_model(17);
    input(m, "x=2x5x16", JOULE_F32);
    weight(m, "g", 1, (int64_t[]){16});
    joule_node *n = node(m, "LayerNormalization", "ln", "x,g", "y,mean,inv");
    set_int(m, n, "axis", -1);
    init_tensor(m, "s", JOULE_F32, 0, NULL, (float[]){0.1f});
    init_tensor(m, "zp", JOULE_I8, 0, NULL, (int8_t[]){0});
    node(m, "QuantizeLinear", "q", "y,s,zp", "yq");
    node(m, "QuantizeLinear", "q_u8", "y,s", "yq8");
    node(m, "DequantizeLinear", "dq", "yq,s,zp", "yd");
    init_tensor(m, "sc", JOULE_F32, 1, (int64_t[]){5}, NULL);
    n = node(m, "QuantizeLinear", "per_axis", "y,sc", "pa");
    set_int(m, n, "axis", 1);
    node(m, "DynamicQuantizeLinear", "dyn", "x", "dq_y,dq_s,dq_z");
    node(m, "Dropout", "drop", "x", "dr,mask");
    joule_node *cast = node(m, "Cast", "cast", "x", "xc");
    set_int(m, cast, "to", JOULE_F16);
    node(m, "Identity", "id", "x", "xi");
    node(m, "Size", "size", "x", "sz");
    joule_node *t = node(m, "Transpose", "tr", "x", "xt");
    set_ints(m, t, "perm", 3, (int64_t[]){2, 0, 1});
    ints(m, "rep", 3, (int64_t[]){1, 2, 3});
    node(m, "Tile", "tile", "x,rep", "xtile");
    ints(m, "exp", 4, (int64_t[]){3, 1, 5, 1});
    node(m, "Expand", "expand", "x,exp", "xe");
    infer_ok(m);
    assert_shape(m, "y", "[2,5,16]");
    assert_shape(m, "mean", "[2,5,1]");
    assert_int_equal(dtype_of(m, "mean"), JOULE_F32);
    assert_int_equal(dtype_of(m, "yq"), JOULE_I8);
    assert_int_equal(dtype_of(m, "yq8"), JOULE_U8);
    assert_int_equal(dtype_of(m, "yd"), JOULE_F32);
    assert_shape(m, "pa", "[2,5,16]");
    assert_shape(m, "dq_y", "[2,5,16]");
    assert_shape(m, "dq_s", "[]");
    assert_int_equal(dtype_of(m, "dq_z"), JOULE_U8);
    assert_int_equal(dtype_of(m, "mask"), JOULE_BOOL);
    assert_int_equal(dtype_of(m, "xc"), JOULE_F16);
    assert_shape(m, "xi", "[2,5,16]");
    assert_shape(m, "sz", "[]");
    assert_shape(m, "xt", "[16,2,5]");
    assert_shape(m, "xtile", "[2,10,48]");
    assert_shape(m, "xe", "[3,2,5,16]");
    joule_model_free(m);

    m = new_model(13);
    input(m, "x=2x5x16", JOULE_F32);
    init_tensor(m, "sc", JOULE_F32, 1, (int64_t[]){4}, NULL);
    joule_node *q = node(m, "QuantizeLinear", "bad_axis", "x,sc", "y");
    set_int(m, q, "axis", 1);
    infer_fails(m, "QuantizeLinear node 'bad_axis'");
    joule_model_free(m);
}

/* Unknown ops leave their outputs unknown without failing; Constant nodes feed data. */
static void test_unknown_op_and_constants(void **state)
{
    (void)state;
    joule_model *m = new_model(13);
    input(m, "x=2x3", JOULE_F32);
    node(m, "FancyCustomOp", "custom", "x", "u");
    node(m, "Relu", "after", "u", "v");
    joule_node *c = node(m, "Constant", "const", "", "shape");
    set_ints(m, c, "value_ints", 2, (int64_t[]){3, -1});
    node(m, "Reshape", "rs", "x,shape", "y");
    joule_node *cf = node(m, "Constant", "constf", "", "scalar");
    joule_error err = {{0}};
    assert_joule_ok(joule_node_set_attr_float(m->graph, cf, "value_float", 2.5f, &err), &err);
    infer_ok(m);
    assert_shape(m, "u", "?");
    assert_shape(m, "v", "?");
    assert_shape(m, "y", "[3,2]");
    assert_shape(m, "scalar", "[]");
    assert_int_equal(dtype_of(m, "scalar"), JOULE_F32);
    joule_model_free(m);
}

/* ---- computed values, as the engine receives them ---- */

/* Runs the table's infer for node (inputs all initializers) and returns output 0's value. */
static joule_tensor *computed(joule_model *m, const char *out_name, int64_t opset)
{
    joule_error err = {{0}};
    joule_value *out = joule_graph_find_value(m->graph, out_name);
    joule_node *n = joule_graph_producer(m->graph, out);
    assert_non_null(n);
    const joule_op_def *d = joule_op_find(n->domain, n->op_type);
    assert_non_null(d);
    joule_infer_io in[8], outs[4];
    joule_tensor *vals[4] = {NULL};
    memset(in, 0, sizeof in);
    memset(outs, 0, sizeof outs);
    for (int i = 0; i < n->n_inputs; i++) {
        in[i].shape.rank = -1;
        if (!n->inputs[i])
            continue;
        const joule_tensor *t = n->inputs[i]->data;
        assert_non_null(t);
        in[i].present = true;
        in[i].dtype = t->dtype;
        in[i].value = t;
        in[i].shape.rank = t->rank;
        for (int k = 0; k < t->rank; k++)
            in[i].shape.dims[k].size = t->dims[k];
    }
    for (int i = 0; i < n->n_outputs; i++) {
        outs[i].present = true;
        outs[i].shape.rank = -1;
    }
    joule_infer_ctx c = {.node = n, .opset = opset, .n_in = n->n_inputs, .in = in,
                         .n_out = n->n_outputs, .out = outs, .out_values = vals, .err = &err};
    assert_joule_ok(d->infer(&c), &err);
    for (int i = 1; i < 4; i++)
        joule_tensor_free(vals[i]);
    if (!vals[0])
        fail_msg("%s computed no value", n->op_type);
    /* the value must agree with the inferred dtype and shape */
    assert_int_equal(vals[0]->dtype, outs[0].dtype);
    assert_int_equal(vals[0]->rank, outs[0].shape.rank);
    for (int k = 0; k < vals[0]->rank; k++)
        assert_int_equal(vals[0]->dims[k], outs[0].shape.dims[k].size);
    return vals[0];
}

static void expect_i64(joule_tensor *t, int n, const int64_t *want)
{
    assert_int_equal(t->count, (size_t)n);
    assert_true(t->dtype == JOULE_I64 || t->dtype == JOULE_I32 || t->dtype == JOULE_BOOL);
    for (int i = 0; i < n; i++) {
        int64_t v = t->dtype == JOULE_I64 ? ((const int64_t *)t->data)[i]
                    : t->dtype == JOULE_I32 ? ((const int32_t *)t->data)[i]
                                            : ((const uint8_t *)t->data)[i];
        if (v != want[i])
            fail_msg("element %d is %lld, want %lld", i, (long long)v, (long long)want[i]);
    }
    joule_tensor_free(t);
}

static void test_computed_values(void **state)
{
    (void)state;
    joule_model *m = new_model(13);
    init_tensor(m, "a", JOULE_I64, 2, (int64_t[]){2, 3}, (int64_t[]){1, 2, 3, 4, 5, 6});
    ints(m, "b", 3, (int64_t[]){10, 0, -3});
    init_tensor(m, "idx", JOULE_I64, 1, (int64_t[]){2}, (int64_t[]){-1, 0});
    init_tensor(m, "cond", JOULE_BOOL, 1, (int64_t[]){3}, (uint8_t[]){1, 0, 1});
    ints(m, "axes1", 1, (int64_t[]){1});
    node(m, "Add", "add", "a,b", "sum");
    node(m, "Div", "div", "a,b", "quot"); /* division by 0: not computed */
    node(m, "Sub", "sub", "b,a", "diff");
    node(m, "Mul", "mul", "a,b", "prod");
    joule_node *g = node(m, "Gather", "gather", "a,idx", "rows");
    set_int(m, g, "axis", 0);
    g = node(m, "Gather", "gather1", "a,idx", "cols");
    set_int(m, g, "axis", 1);
    node(m, "Where", "where", "cond,a,b", "sel");
    node(m, "Equal", "eq", "a,b", "same");
    joule_node *cat = node(m, "Concat", "cat", "a,a", "cat_out");
    set_int(m, cat, "axis", 1);
    joule_node *cast = node(m, "Cast", "cast", "a", "a32");
    set_int(m, cast, "to", JOULE_I32);
    joule_node *rp = node(m, "ReduceProd", "rprod", "a", "rp");
    set_ints(m, rp, "axes", 1, (int64_t[]){1});
    set_int(m, rp, "keepdims", 0);
    node(m, "ReduceSum", "rsum", "a,axes1", "rs");
    node(m, "Max", "max", "a,b", "mx");
    ints(m, "st", 1, (int64_t[]){-1});
    ints(m, "en", 1, (int64_t[]){-4});
    ints(m, "sp", 1, (int64_t[]){-2});
    node(m, "Slice", "slice", "a,st,en,axes1,sp", "sl");
    node(m, "Flatten", "flat", "a", "fl");
    init_tensor(m, "r0", JOULE_I64, 0, NULL, (int64_t[]){7});
    init_tensor(m, "r1", JOULE_I64, 0, NULL, (int64_t[]){-2});
    init_tensor(m, "r2", JOULE_I64, 0, NULL, (int64_t[]){-3});
    node(m, "Range", "range", "r0,r1,r2", "rg");
    node(m, "Neg", "neg", "b", "nb");

    expect_i64(computed(m, "sum", 13), 6, (int64_t[]){11, 2, 0, 14, 5, 3});
    expect_i64(computed(m, "diff", 13), 6, (int64_t[]){9, -2, -6, 6, -5, -9});
    expect_i64(computed(m, "prod", 13), 6, (int64_t[]){10, 0, -9, 40, 0, -18});
    expect_i64(computed(m, "rows", 13), 6, (int64_t[]){4, 5, 6, 1, 2, 3});
    expect_i64(computed(m, "cols", 13), 4, (int64_t[]){3, 1, 6, 4});
    expect_i64(computed(m, "sel", 13), 6, (int64_t[]){1, 0, 3, 4, 0, 6});
    expect_i64(computed(m, "same", 13), 6, (int64_t[]){0, 0, 0, 0, 0, 0});
    expect_i64(computed(m, "cat_out", 13), 12, (int64_t[]){1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6});
    expect_i64(computed(m, "a32", 13), 6, (int64_t[]){1, 2, 3, 4, 5, 6});
    expect_i64(computed(m, "rp", 13), 2, (int64_t[]){6, 120});
    expect_i64(computed(m, "rs", 13), 2, (int64_t[]){6, 15});
    expect_i64(computed(m, "mx", 13), 6, (int64_t[]){10, 2, 3, 10, 5, 6});
    expect_i64(computed(m, "sl", 13), 4, (int64_t[]){3, 1, 6, 4});
    expect_i64(computed(m, "fl", 13), 6, (int64_t[]){1, 2, 3, 4, 5, 6});
    expect_i64(computed(m, "rg", 13), 3, (int64_t[]){7, 4, 1});
    expect_i64(computed(m, "nb", 13), 3, (int64_t[]){-10, 0, 3});
    /* Div by zero is left to the kernel */
    joule_error err = {{0}};
    joule_value *q = joule_graph_find_value(m->graph, "quot");
    joule_node *dn = joule_graph_producer(m->graph, q);
    joule_infer_io in[2] = {{0}}, out[1] = {{0}};
    joule_tensor *vals[1] = {NULL};
    for (int i = 0; i < 2; i++) {
        const joule_tensor *t = dn->inputs[i]->data;
        in[i].present = true;
        in[i].dtype = t->dtype;
        in[i].value = t;
        in[i].shape.rank = t->rank;
        for (int k = 0; k < t->rank; k++)
            in[i].shape.dims[k].size = t->dims[k];
    }
    out[0].present = true;
    joule_infer_ctx c = {.node = dn, .opset = 13, .n_in = 2, .in = in, .n_out = 1, .out = out,
                         .out_values = vals, .err = &err};
    assert_joule_ok(joule_op_find("", "Div")->infer(&c), &err);
    assert_null(vals[0]);
    assert_string_equal(joule_dtype_name(out[0].dtype), "int64");
    joule_model_free(m);
}

/* ---- NAME=DIMS ---- */

static void test_parse_input_shape(void **state)
{
    (void)state;
    joule_error err = {{0}};
    char buf[128];
    joule_input_shape s;
    assert_joule_ok(joule_parse_input_shape("input=1x3x224x224", buf, sizeof buf, &s, &err), &err);
    assert_string_equal(s.name, "input");
    assert_int_equal(s.shape.rank, 4);
    assert_int_equal(s.shape.dims[3].size, 224);
    assert_joule_ok(joule_parse_input_shape("ids=batchxseq_len", buf, sizeof buf, &s, &err), &err);
    assert_int_equal(s.shape.rank, 2);
    assert_true(s.shape.dims[0].size < 0);
    assert_string_equal(s.shape.dims[0].sym, "batch");
    assert_string_equal(s.shape.dims[1].sym, "seq_len");
    assert_joule_ok(joule_parse_input_shape("a:0=2,3", buf, sizeof buf, &s, &err), &err);
    assert_string_equal(s.name, "a:0");
    assert_int_equal(s.shape.rank, 2);
    static const struct {
        const char *arg, *want;
    } bad[] = {
        {"=1x3", "name is empty"},
        {"x", "expected NAME=DIMS"},
        {"x=1x-3", "negative"},
        {"x=1xx3", "empty"},
        {"x=1x3x", "empty"},
        {"x=1x3!", "not a number"},
        {"x=99999999999999999999", "too large"},
        {"x=1x1x1x1x1x1x1x1x1", "more than 8 dims"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err.msg[0] = 0;
        assert_int_equal(joule_parse_input_shape(bad[i].arg, buf, sizeof buf, &s, &err),
                         JOULE_ERR_INVALID);
        if (!strstr(err.msg, bad[i].want) || !strstr(err.msg, bad[i].arg))
            fail_msg("'%s': message '%s' lacks '%s' or the argument", bad[i].arg, err.msg,
                     bad[i].want);
    }
}

/* ---- the table ---- */

static void test_op_table(void **state)
{
    (void)state;
    size_t n = joule_op_count();
    assert_true(n > 100);
    for (size_t i = 0; i < n; i++) {
        const joule_op_def *d = joule_op_at(i);
        assert_non_null(d->infer);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(joule_op_at(j)->op_type, d->op_type) &&
                !strcmp(joule_op_at(j)->domain, d->domain))
                fail_msg("%s listed twice", d->op_type);
        assert_ptr_equal(joule_op_find("", d->op_type), d);
        assert_ptr_equal(joule_op_find("ai.onnx", d->op_type), d);
        assert_true(((d->flags & JOULE_OP_WEIGHTED) != 0) == (d->weight_input >= 0));
    }
    assert_null(joule_op_at(n));
    assert_null(joule_op_find("com.example", "Conv"));
    static const char *const weighted[] = {"Conv", "ConvTranspose", "Gemm", "MatMul"};
    for (size_t i = 0; i < 4; i++) {
        const joule_op_def *d = joule_op_find("", weighted[i]);
        assert_true(d->flags & JOULE_OP_WEIGHTED);
        assert_int_equal(d->weight_input, 1);
    }
    static const char *const quantizable[] = {"Conv", "Gemm", "MatMul"};
    for (size_t i = 0; i < 3; i++)
        assert_true(joule_op_find("", quantizable[i])->flags & JOULE_OP_QUANTIZABLE);
    static const char *const neighbours[] = {"MaxPool", "AveragePool", "GlobalAveragePool",
                                             "Relu", "Clip", "Add", "Concat", "Reshape",
                                             "Flatten", "Transpose", "Squeeze", "Unsqueeze"};
    for (size_t i = 0; i < sizeof neighbours / sizeof neighbours[0]; i++)
        assert_true(joule_op_find("", neighbours[i])->flags & JOULE_OP_QUANT_NEIGHBOUR);
    static const char *const data_shape[] = {"Reshape", "Expand", "Tile", "Slice", "Pad",
                                             "Resize", "Range", "ConstantOfShape", "Split",
                                             "Squeeze", "Unsqueeze", "ReduceSum", "TopK"};
    for (size_t i = 0; i < sizeof data_shape / sizeof data_shape[0]; i++)
        assert_true(joule_op_find("", data_shape[i])->flags & JOULE_OP_DATA_SHAPE);
    static const char *const required[] = {
        "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Exp", "Log", "Neg", "Abs", "Reciprocal",
        "Floor", "Ceil", "Round", "Sign", "Erf", "Tanh", "Sigmoid", "Relu", "LeakyRelu", "PRelu",
        "Elu", "Selu", "Softplus", "HardSigmoid", "HardSwish", "Gelu", "Clip", "Min", "Max",
        "Sum", "Mean", "Where", "Equal", "Less", "Greater", "Not", "And", "Or", "LessOrEqual",
        "GreaterOrEqual", "Xor", "Sin", "Cos", "MatMul", "Gemm", "Conv", "ConvTranspose",
        "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "BatchNormalization",
        "LayerNormalization", "InstanceNormalization", "Softmax", "LogSoftmax", "Reshape",
        "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Concat", "Split", "Slice", "Gather",
        "Shape", "Size", "Expand", "Tile", "Pad", "Resize", "DepthToSpace", "SpaceToDepth",
        "Cast", "Identity", "Dropout", "Constant", "ConstantOfShape", "Range", "ReduceMean",
        "ReduceSum", "ReduceMax", "ReduceMin", "ArgMax", "QuantizeLinear", "DequantizeLinear",
        "QLinearConv", "QLinearMatMul", "MatMulInteger", "ConvInteger", "DynamicQuantizeLinear",
    };
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (!joule_op_find("", required[i]))
            fail_msg("%s is missing from the op table", required[i]);
}

/* ---- conformance over the ONNX backend tests ---- */

typedef struct conf_counts {
    int models, checked, match, mismatch, unknown, skipped, errors, load_failed;
} conf_counts;

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Whether every node that output v depends on is in the table (at the model's opset). */
static bool chain_known(const joule_model *m, const joule_value *v, int depth)
{
    if (depth > 10000)
        return false;
    const joule_node *n = joule_graph_producer(m->graph, v);
    if (!n)
        return true;
    const char *dom = n->domain ? n->domain : "";
    const joule_op_def *d = joule_op_find(dom, n->op_type);
    int64_t opset = joule_model_opset(m, dom);
    if (!d || opset < d->since_version)
        return false;
    for (int i = 0; i < n->n_inputs; i++)
        if (n->inputs[i] && !chain_known(m, n->inputs[i], depth + 1))
            return false;
    return true;
}

static bool model_known(const joule_model *m)
{
    for (size_t i = 0; i < m->graph->n_nodes; i++) {
        const joule_node *n = m->graph->nodes[i];
        const char *dom = n->domain ? n->domain : "";
        const joule_op_def *d = joule_op_find(dom, n->op_type);
        if (!d || joule_model_opset(m, dom) < d->since_version)
            return false;
    }
    return true;
}

/* Reads dims, dtype and name of a TensorProto file. */
static bool read_pb_dims(const char *path, joule_shape *s, joule_dtype *dt, char *name,
                         size_t name_size)
{
    size_t len;
    void *buf = test_read_file(path, &len);
    if (!buf)
        return false;
    Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, len, buf);
    free(buf);
    if (!tp)
        return false;
    bool ok = tp->n_dims <= JOULE_MAX_RANK;
    if (ok) {
        s->rank = (int)tp->n_dims;
        for (size_t i = 0; i < tp->n_dims; i++) {
            s->dims[i].size = tp->dims[i];
            s->dims[i].sym = NULL;
        }
        *dt = (joule_dtype)tp->data_type;
        snprintf(name, name_size, "%s", tp->name ? tp->name : "");
    }
    onnx__tensor_proto__free_unpacked(tp, NULL);
    return ok;
}

static void conform_one(const char *dir, conf_counts *cc)
{
    char path[2200], err_buf[160];
    joule_error err = {{0}};
    joule_model *m = NULL;
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    if (joule_model_load(path, &m, &err) != JOULE_OK) {
        cc->load_failed++;
        return;
    }
    cc->models++;
    joule_graph *g = m->graph;
    /* real input shapes: input_K.pb for the K-th graph input that is not an initializer */
    joule_input_shape shapes[64];
    char names[64][256];
    size_t n_shapes = 0, k = 0;
    bool inputs_ok = true;
    for (size_t i = 0; i < g->n_inputs && n_shapes < 64; i++) {
        joule_value *v = g->inputs[i];
        if (v->data)
            continue;
        if (v->dtype == JOULE_UNDEFINED) { /* a sequence or optional input, not a tensor */
            inputs_ok = false;
            k++;
            continue;
        }
        snprintf(path, sizeof path, "%s/test_data_set_0/input_%zu.pb", dir, k++);
        joule_dtype dt;
        joule_input_shape *s = &shapes[n_shapes];
        if (!read_pb_dims(path, &s->shape, &dt, names[n_shapes], sizeof names[n_shapes]) ||
            (v->shape.rank >= 0 && v->shape.rank != s->shape.rank)) {
            inputs_ok = false; /* a sequence or optional input, not a tensor */
            continue;
        }
        s->name = v->name;
        n_shapes++;
    }
    bool known = model_known(m);
    joule_status st = joule_infer_shapes(m, shapes, n_shapes, &err);
    if (st != JOULE_OK) {
        if (known && inputs_ok) {
            cc->errors++;
            printf("infer error: %s: %s\n", dir, err.msg);
        } else {
            cc->skipped++;
        }
        joule_model_free(m);
        return;
    }
    for (size_t i = 0; i < g->n_outputs; i++) {
        const joule_value *v = g->outputs[i];
        joule_shape want;
        joule_dtype want_dt;
        char name[256];
        snprintf(path, sizeof path, "%s/test_data_set_0/output_%zu.pb", dir, i);
        if (!inputs_ok || !chain_known(m, v, 0) ||
            !read_pb_dims(path, &want, &want_dt, name, sizeof name)) {
            cc->skipped++;
            continue;
        }
        cc->checked++;
        if (!joule_shape_is_concrete(&v->shape) || v->dtype == JOULE_UNDEFINED) {
            cc->unknown++;
            joule_shape_format(&v->shape, err_buf, sizeof err_buf);
            printf("unknown: %s output '%s': %s %s\n", dir, v->name, joule_dtype_name(v->dtype),
                   err_buf);
            continue;
        }
        /* the backend tests store bfloat16 outputs as uint16 bit patterns */
        if (want_dt == JOULE_U16 && v->dtype == JOULE_BF16)
            want_dt = JOULE_BF16;
        bool same = v->shape.rank == want.rank && v->dtype == want_dt;
        for (int d = 0; same && d < want.rank; d++)
            same = v->shape.dims[d].size == want.dims[d].size;
        if (same) {
            cc->match++;
        } else {
            char got[160], exp[160];
            joule_shape_format(&v->shape, got, sizeof got);
            joule_shape_format(&want, exp, sizeof exp);
            printf("MISMATCH: %s output '%s': inferred %s %s, expected %s %s\n", dir, v->name,
                   joule_dtype_name(v->dtype), got, joule_dtype_name(want_dt), exp);
            cc->mismatch++;
        }
    }
    joule_model_free(m);
}

static void test_conformance(void **state)
{
    (void)state;
    static const char *const groups[] = {"node", "pytorch-converted", "pytorch-operator",
                                         "simple"};
    conf_counts cc = {0};
    char root[1024], dir[2048];
    for (size_t gi = 0; gi < 4; gi++) {
        test_data_path(groups[gi], root, sizeof root);
        DIR *d = opendir(root);
        if (!d)
            continue;
        char **list = NULL;
        size_t n = 0, cap = 0;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 256;
                char **p = realloc(list, cap * sizeof *p);
                assert_non_null(p);
                list = p;
            }
            list[n] = strdup(e->d_name);
            assert_non_null(list[n]);
            n++;
        }
        closedir(d);
        qsort(list, n, sizeof *list, cmp_names);
        for (size_t i = 0; i < n; i++) {
            snprintf(dir, sizeof dir, "%s/%s", root, list[i]);
            conform_one(dir, &cc);
            free(list[i]);
        }
        free(list);
    }
    printf("infer conformance: %d models (%d not loadable), %d outputs checked: %d match, "
           "%d mismatch, %d unknown; %d skipped (ops outside the table or non-tensor inputs), "
           "%d inference errors\n", cc.models, cc.load_failed, cc.checked, cc.match, cc.mismatch,
           cc.unknown, cc.skipped, cc.errors);
    if (cc.models == 0)
        skip();
    assert_int_equal(cc.mismatch, 0);
    assert_int_equal(cc.errors, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_auto_pad),
        cmocka_unit_test(test_conv_1d_3d_groups),
        cmocka_unit_test(test_conv_transpose),
        cmocka_unit_test(test_pool_ceil_mode),
        cmocka_unit_test(test_gemm_matmul),
        cmocka_unit_test(test_symbolic_mlp),
        cmocka_unit_test(test_broadcasting),
        cmocka_unit_test(test_reshape),
        cmocka_unit_test(test_shape_chain),
        cmocka_unit_test(test_slice),
        cmocka_unit_test(test_opset_versions),
        cmocka_unit_test(test_resize),
        cmocka_unit_test(test_norm_quant_misc),
        cmocka_unit_test(test_unknown_op_and_constants),
        cmocka_unit_test(test_computed_values),
        cmocka_unit_test(test_parse_input_shape),
        cmocka_unit_test(test_op_table),
        cmocka_unit_test(test_conformance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* tests/unit/test_bad_input.c: hostile and broken model files. Each must fail to load with a
 * one-line error that names the file and the cause, never crash, and leave the file untouched. */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "formats/onnx_internal.h"

typedef struct fixture {
    char dir[4096];
    char path[8192];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f || !test_tmpdir(f->dir, sizeof f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/model.onnx", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    test_rmtree(f->dir);
    free(f);
    return 0;
}

/* A small valid model: y = Relu(Add(x, w)) with w a 2x2 float initializer. Cases then break it. */
typedef struct mini {
    Onnx__ModelProto model;
    Onnx__OperatorSetIdProto opset, *opsets[1];
    Onnx__GraphProto graph;
    Onnx__NodeProto add, relu, *nodes[2];
    char *add_in[2], *add_out[1], *relu_in[1], *relu_out[1];
    Onnx__TensorProto w, *inits[1];
    int64_t w_dims[2];
    float w_data[4];
    Onnx__StringStringEntryProto ext[3], *exts[3];
} mini;

static void mini_init(mini *m)
{
    memset(m, 0, sizeof *m);
    onnx__model_proto__init(&m->model);
    onnx__operator_set_id_proto__init(&m->opset);
    onnx__graph_proto__init(&m->graph);
    onnx__node_proto__init(&m->add);
    onnx__node_proto__init(&m->relu);
    onnx__tensor_proto__init(&m->w);
    m->model.has_ir_version = 1;
    m->model.ir_version = 8;
    m->opset.has_version = 1;
    m->opset.version = 13;
    m->opset.domain = "";
    m->opsets[0] = &m->opset;
    m->model.n_opset_import = 1;
    m->model.opset_import = m->opsets;
    m->model.graph = &m->graph;
    m->add.op_type = "Add";
    m->add.name = "add0";
    m->add_in[0] = "w";
    m->add_in[1] = "w";
    m->add_out[0] = "s";
    m->add.n_input = 2;
    m->add.input = m->add_in;
    m->add.n_output = 1;
    m->add.output = m->add_out;
    m->relu.op_type = "Relu";
    m->relu.name = "relu0";
    m->relu_in[0] = "s";
    m->relu_out[0] = "y";
    m->relu.n_input = 1;
    m->relu.input = m->relu_in;
    m->relu.n_output = 1;
    m->relu.output = m->relu_out;
    m->nodes[0] = &m->add;
    m->nodes[1] = &m->relu;
    m->graph.n_node = 2;
    m->graph.node = m->nodes;
    m->w.name = "w";
    m->w.has_data_type = 1;
    m->w.data_type = JOULE_F32;
    m->w_dims[0] = m->w_dims[1] = 2;
    m->w.n_dims = 2;
    m->w.dims = m->w_dims;
    m->w.has_raw_data = 1;
    m->w.raw_data.data = (uint8_t *)m->w_data;
    m->w.raw_data.len = sizeof m->w_data;
    m->inits[0] = &m->w;
    m->graph.n_initializer = 1;
    m->graph.initializer = m->inits;
}

static void mini_write(mini *m, const char *path)
{
    size_t n = onnx__model_proto__get_packed_size(&m->model);
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    onnx__model_proto__pack(&m->model, buf);
    assert_int_equal(test_write_file(path, buf, n), 0);
    free(buf);
}

/* Loads path expecting failure with status want and a message naming the file and need. */
static void expect_failure(const char *path, joule_status want, const char *need)
{
    size_t before_len = 0, after_len = 0;
    void *before = test_read_file(path, &before_len);
    joule_error err = {{0}};
    joule_model *m = (joule_model *)1;
    joule_status st = joule_model_load(path, &m, &err);
    if (st != want)
        fail_msg("expected %s, got %s: %s", joule_status_name(want), joule_status_name(st), err.msg);
    assert_null(m);
    if (!strstr(err.msg, path))
        fail_msg("message does not name the file: %s", err.msg);
    if (need && !strstr(err.msg, need))
        fail_msg("message lacks '%s': %s", need, err.msg);
    assert_null(strchr(err.msg, '\n'));
    void *after = test_read_file(path, &after_len);
    if (before) { /* the input is never modified */
        assert_int_equal(before_len, after_len);
        assert_memory_equal(before, after, before_len);
    }
    free(before);
    free(after);
}

static void test_valid_baseline_loads(void **state)
{
    fixture *f = *state;
    mini m;
    mini_init(&m);
    mini_write(&m, f->path);
    joule_error err = {{0}};
    joule_model *jm = NULL;
    assert_joule_ok(joule_model_load(f->path, &jm, &err), &err);
    assert_int_equal(jm->graph->n_nodes, 2);
    joule_model_free(jm);
}

static void test_empty_file(void **state)
{
    fixture *f = *state;
    assert_int_equal(test_write_file(f->path, "", 0), 0);
    expect_failure(f->path, JOULE_ERR_PARSE, "empty");
}

static void test_missing_file(void **state)
{
    fixture *f = *state;
    expect_failure(f->path, JOULE_ERR_IO, "cannot open");
}

static void test_truncated(void **state)
{
    fixture *f = *state;
    mini m;
    mini_init(&m);
    mini_write(&m, f->path);
    size_t len;
    uint8_t *buf = test_read_file(f->path, &len);
    assert_non_null(buf);
    assert_int_equal(test_write_file(f->path, buf, len - 7), 0);
    free(buf);
    expect_failure(f->path, JOULE_ERR_PARSE, "truncated");
}

static void test_not_protobuf(void **state)
{
    fixture *f = *state;
    const char *text = "this is a text file, not an ONNX model\n\xff\xff\xff\xff";
    assert_int_equal(test_write_file(f->path, text, strlen(text)), 0);
    expect_failure(f->path, JOULE_ERR_PARSE, "not a valid ONNX model");
}

static void test_negative_dim(void **state)
{
    fixture *f = *state;
    mini m;
    mini_init(&m);
    m.w_dims[0] = -2;
    mini_write(&m, f->path);
    expect_failure(f->path, JOULE_ERR_INVALID, "dimension");
}

static void test_overflowing_dim(void **state)
{
    fixture *f = *state;
    mini m;
    mini_init(&m);
    m.w_dims[0] = INT64_MAX / 2;
    m.w_dims[1] = INT64_MAX / 2;
    mini_write(&m, f->path);
    expect_failure(f->path, JOULE_ERR_INVALID, "overflowing");
}

static void test_raw_data_length_mismatch(void **state)
{
    fixture *f = *state;
    mini m;
    mini_init(&m);
    m.w.raw_data.len = 12;
    mini_write(&m, f->path);
    expect_failure(f->path, JOULE_ERR_INVALID, "raw_data holds 12 bytes");
}

static void test_unknown_dtype(void **state)
{
    fixture *f = *state;
    mini m;
    mini_init(&m);
    m.w.data_type = 99;
    mini_write(&m, f->path);
    expect_failure(f->path, JOULE_ERR_UNSUPPORTED, "unknown data type 99");
}

static void set_external(mini *m, const char *location)
{
    m->w.has_raw_data = 0;
    m->w.has_data_location = 1;
    m->w.data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    onnx__string_string_entry_proto__init(&m->ext[0]);
    m->ext[0].key = "location";
    m->ext[0].value = (char *)location;
    m->exts[0] = &m->ext[0];
    m->w.n_external_data = 1;
    m->w.external_data = m->exts;
}

static void test_missing_external_file(void **state)
{
    fixture *f = *state;
    mini m;
    mini_init(&m);
    set_external(&m, "weights.bin");
    mini_write(&m, f->path);
    expect_failure(f->path, JOULE_ERR_IO, "weights.bin");
}

static void test_escaping_external_file(void **state)
{
    fixture *f = *state;
    mini m;
    mini_init(&m);
    set_external(&m, "../../etc/passwd");
    mini_write(&m, f->path);
    expect_failure(f->path, JOULE_ERR_SECURITY, "leaves the model's folder");
    set_external(&m, "/etc/passwd");
    mini_write(&m, f->path);
    expect_failure(f->path, JOULE_ERR_SECURITY, "absolute");
    /* a symlink inside the folder that points outside it */
    char link[8300];
    snprintf(link, sizeof link, "%s/w.bin", f->dir);
    assert_int_equal(symlink("/etc/hostname", link), 0);
    set_external(&m, "w.bin");
    mini_write(&m, f->path);
    expect_failure(f->path, JOULE_ERR_SECURITY, "outside the model's folder");
}

static void test_external_offset_beyond_end(void **state)
{
    fixture *f = *state;
    char data[8300];
    snprintf(data, sizeof data, "%s/w.bin", f->dir);
    float w[4] = {1, 2, 3, 4};
    assert_int_equal(test_write_file(data, w, sizeof w), 0);
    mini m;
    mini_init(&m);
    set_external(&m, "w.bin");
    onnx__string_string_entry_proto__init(&m.ext[1]);
    m.ext[1].key = "offset";
    m.ext[1].value = "8";
    m.exts[1] = &m.ext[1];
    m.w.n_external_data = 2;
    mini_write(&m, f->path);
    expect_failure(f->path, JOULE_ERR_INVALID, "beyond the end");
    /* and the valid case loads the bytes */
    m.ext[1].value = "0";
    mini_write(&m, f->path);
    joule_error err = {{0}};
    joule_model *jm = NULL;
    assert_joule_ok(joule_model_load(f->path, &jm, &err), &err);
    assert_memory_equal(joule_graph_find_value(jm->graph, "w")->data->data, w, sizeof w);
    joule_model_free(jm);
}

static void test_graph_cycle(void **state)
{
    fixture *f = *state;
    mini m;
    mini_init(&m);
    m.add_in[1] = "y"; /* add reads relu's output, relu reads add's */
    mini_write(&m, f->path);
    expect_failure(f->path, JOULE_ERR_INVALID, "cycle");
}

static void test_dangling_input(void **state)
{
    fixture *f = *state;
    mini m;
    mini_init(&m);
    m.relu_in[0] = "nowhere";
    mini_write(&m, f->path);
    expect_failure(f->path, JOULE_ERR_INVALID, "'nowhere', which nothing produces");
}

static void test_duplicate_output(void **state)
{
    fixture *f = *state;
    mini m;
    mini_init(&m);
    m.relu_out[0] = "s";
    mini_write(&m, f->path);
    expect_failure(f->path, JOULE_ERR_INVALID, "already defined");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_valid_baseline_loads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_protobuf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_negative_dim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overflowing_dim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_raw_data_length_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_dtype, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_external_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_escaping_external_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_external_offset_beyond_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_graph_cycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dangling_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_output, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

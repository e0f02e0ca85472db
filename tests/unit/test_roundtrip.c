/* tests/unit/test_roundtrip.c: load -> save -> load over every model.onnx in ONNX's backend test
 * data. The saved bytes must equal what protobuf itself re-encodes from the original (so nothing
 * the IR does not model was lost or changed), and a second load must give the same IR. */
#include "common.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "formats/onnx_internal.h"

/* Bytes protobuf-c produces for the original file, i.e. the lossless reference. */
static uint8_t *reencode(const void *buf, size_t len, size_t *out_len)
{
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, buf);
    if (!mp)
        return NULL;
    *out_len = onnx__model_proto__get_packed_size(mp);
    uint8_t *out = malloc(*out_len ? *out_len : 1);
    if (out)
        onnx__model_proto__pack(mp, out);
    onnx__model_proto__free_unpacked(mp, NULL);
    return out;
}

static bool same_ir(const joule_model *a, const joule_model *b, char *why, size_t size)
{
    const joule_graph *x = a->graph, *y = b->graph;
    if (x->n_nodes != y->n_nodes || x->n_values != y->n_values || x->n_inputs != y->n_inputs ||
        x->n_outputs != y->n_outputs || x->n_initializers != y->n_initializers) {
        snprintf(why, size, "counts differ");
        return false;
    }
    for (size_t i = 0; i < x->n_nodes; i++) {
        const joule_node *p = x->nodes[i], *q = y->nodes[i];
        if (strcmp(p->op_type, q->op_type) || strcmp(p->name, q->name) ||
            p->n_inputs != q->n_inputs || p->n_outputs != q->n_outputs || p->n_attrs != q->n_attrs) {
            snprintf(why, size, "node %zu differs", i);
            return false;
        }
    }
    for (size_t i = 0; i < x->n_initializers; i++) {
        const joule_tensor *p = x->initializers[i]->data, *q = y->initializers[i]->data;
        if (p->nbytes != q->nbytes || p->dtype != q->dtype ||
            (p->dtype != JOULE_STRING && memcmp(p->data, q->data, p->nbytes))) {
            snprintf(why, size, "initializer '%s' differs", x->initializers[i]->name);
            return false;
        }
    }
    return true;
}

typedef struct counts {
    int models, passed;
} counts;

static void check_model(const char *path, const char *tmpdir, counts *c)
{
    joule_error err = {{0}};
    size_t len = 0;
    void *orig = test_read_file(path, &len);
    assert_non_null(orig);
    joule_model *m = NULL;
    joule_status st = joule_model_load(path, &m, &err);
    if (st) {
        print_message("load failed: %s\n", err.msg);
        free(orig);
        fail();
    }
    c->models++;
    size_t ref_len = 0, our_len = 0;
    uint8_t *ref = reencode(orig, len, &ref_len);
    void *ours = NULL;
    assert_joule_ok(joule_model_serialize(m, &ours, &our_len, &err), &err);
    assert_non_null(ref);
    if (ref_len != our_len || memcmp(ref, ours, ref_len) != 0)
        fail_msg("%s: saved bytes differ from protobuf's re-encoding (%zu vs %zu bytes)", path,
                 our_len, ref_len);
    char out[8192];
    snprintf(out, sizeof out, "%s/model.onnx", tmpdir);
    assert_joule_ok(joule_model_save(m, out, NULL, &err), &err);
    joule_model *m2 = NULL;
    assert_joule_ok(joule_model_load(out, &m2, &err), &err);
    char why[256];
    if (!same_ir(m, m2, why, sizeof why))
        fail_msg("%s: reloaded graph differs: %s", path, why);
    c->passed++;
    joule_model_free(m2);
    joule_model_free(m);
    free(ours);
    free(ref);
    free(orig);
}

static void walk(const char *suite, const char *tmpdir, counts *c)
{
    char dir[4096];
    test_data_path(suite, dir, sizeof dir);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[8192];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s/model.onnx", dir, e->d_name);
        if (stat(path, &sb) == 0)
            check_model(path, tmpdir, c);
    }
    closedir(d);
}

static void test_roundtrip_backend_suite(void **state)
{
    (void)state;
    char tmp[4096];
    assert_non_null(test_tmpdir(tmp, sizeof tmp));
    counts c = {0};
    const char *suites[] = {"node", "pytorch-converted", "pytorch-operator", "simple", "real"};
    for (size_t i = 0; i < sizeof suites / sizeof *suites; i++)
        walk(suites[i], tmp, &c);
    test_rmtree(tmp);
    print_message("roundtrip: %d passed, %d failed\n", c.passed, c.models - c.passed);
    assert_true(c.models > 1000);
    assert_int_equal(c.passed, c.models);
}

/* A pass that changes a weight must see the new bytes saved, not the loaded protobuf. */
static void test_roundtrip_sees_changes(void **state)
{
    (void)state;
    char path[4096], tmp[4096], out[8192];
    test_data_path("node/test_conv_with_strides_padding/model.onnx", path, sizeof path);
    joule_error err = {{0}};
    joule_model *m = NULL;
    assert_joule_ok(joule_model_load(path, &m, &err), &err);
    assert_non_null(test_tmpdir(tmp, sizeof tmp));
    snprintf(out, sizeof out, "%s/m.onnx", tmp);
    /* give the model an initializer, change it, rename a value */
    joule_tensor *t = NULL;
    int64_t dims[1] = {3};
    assert_joule_ok(joule_tensor_new(JOULE_F32, 1, dims, &t, &err), &err);
    ((float *)joule_tensor_mutable_data(t))[1] = 2.5f;
    joule_value *v = NULL;
    assert_joule_ok(joule_graph_new_value(m->graph, "extra", &v, &err), &err);
    assert_joule_ok(joule_graph_set_initializer(m->graph, v, t, &err), &err);
    assert_joule_ok(joule_model_save(m, out, NULL, &err), &err);
    joule_model *m2 = NULL;
    assert_joule_ok(joule_model_load(out, &m2, &err), &err);
    joule_value *v2 = joule_graph_find_value(m2->graph, "extra");
    assert_non_null(v2);
    assert_non_null(v2->data);
    assert_true(((const float *)v2->data->data)[1] == 2.5f);
    /* now change it in place through the copy-on-write door */
    float *w = joule_tensor_mutable_data(v2->data);
    w[1] = -1.0f;
    assert_joule_ok(joule_model_save(m2, out, NULL, &err), &err);
    joule_model *m3 = NULL;
    assert_joule_ok(joule_model_load(out, &m3, &err), &err);
    assert_true(((const float *)joule_graph_find_value(m3->graph, "extra")->data->data)[1] == -1.0f);
    joule_model_free(m3);
    joule_model_free(m2);
    joule_model_free(m);
    test_rmtree(tmp);
}

/* External data: save with a side file, load it back, compare bytes. */
static void test_roundtrip_external_data(void **state)
{
    (void)state;
    char path[4096], tmp[4096], out[8192], data[8192];
    test_data_path("node/test_conv_with_strides_padding/model.onnx", path, sizeof path);
    joule_error err = {{0}};
    joule_model *m = NULL;
    assert_joule_ok(joule_model_load(path, &m, &err), &err);
    joule_tensor *t = NULL;
    int64_t dims[2] = {64, 64};
    assert_joule_ok(joule_tensor_new(JOULE_F32, 2, dims, &t, &err), &err);
    float *p = joule_tensor_mutable_data(t);
    for (int i = 0; i < 64 * 64; i++)
        p[i] = (float)i * 0.5f;
    joule_value *v = NULL;
    assert_joule_ok(joule_graph_new_value(m->graph, "big", &v, &err), &err);
    assert_joule_ok(joule_graph_set_initializer(m->graph, v, t, &err), &err);
    assert_non_null(test_tmpdir(tmp, sizeof tmp));
    snprintf(out, sizeof out, "%s/ext.onnx", tmp);
    snprintf(data, sizeof data, "%s/ext.onnx.data", tmp);
    joule_save_options o = {.external_data = true};
    assert_joule_ok(joule_model_save(m, out, &o, &err), &err);
    struct stat sb;
    assert_int_equal(stat(data, &sb), 0);
    assert_true((size_t)sb.st_size >= 64 * 64 * 4);
    joule_model *m2 = NULL;
    assert_joule_ok(joule_model_load(out, &m2, &err), &err);
    const joule_tensor *t2 = joule_graph_find_value(m2->graph, "big")->data;
    assert_int_equal(t2->nbytes, 64 * 64 * 4);
    assert_memory_equal(t2->data, p, t2->nbytes);
    /* and save the externally-loaded model inline again */
    snprintf(out, sizeof out, "%s/inline.onnx", tmp);
    assert_joule_ok(joule_model_save(m2, out, NULL, &err), &err);
    joule_model *m3 = NULL;
    assert_joule_ok(joule_model_load(out, &m3, &err), &err);
    assert_memory_equal(joule_graph_find_value(m3->graph, "big")->data->data, p, t2->nbytes);
    joule_model_free(m3);
    joule_model_free(m2);
    joule_model_free(m);
    test_rmtree(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_backend_suite),
        cmocka_unit_test(test_roundtrip_sees_changes),
        cmocka_unit_test(test_roundtrip_external_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

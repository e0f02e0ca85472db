/* tests/unit/test_accuracy.c: the accuracy evaluator. Statistics against values computed by hand
 * (Wilson intervals, exact McNemar p-values, SQNR and cosine of known vectors); evaluation of
 * small graphs whose scores are their inputs, so every top-1/top-5 hit, agreement and McNemar
 * count is known in advance; per-layer errors through QuantizeLinear/DequantizeLinear and Cast
 * pairs with hand-computed rounding errors; the fixture models on 64 Fashion-MNIST images
 * against the logits PyTorch computed; batch-size invariance, fixed-batch padding, item-shape
 * checks and the JSON document. */
#include "common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "joule/accuracy.h"
#include "joule/dataset.h"
#include "joule/npy.h"

/* cmocka's assert_float_equal compares floats; these statistics are doubles. */
#define assert_near(a, b, tol)                                                                     \
    do {                                                                                           \
        double a_ = (a), b_ = (b);                                                                 \
        if (!(fabs(a_ - b_) <= (tol)))                                                             \
            fail_msg("%s = %.17g, expected %.17g (within %g)", #a, a_, b_, (double)(tol));         \
    } while (0)

/* ---- statistics ---- */

static void test_wilson(void **state)
{
    (void)state;
    /* (values from the closed form, evaluated in Python) */
    static const struct { size_t k, n; double lo, hi; } cases[] = {
        {8, 10, 0.490162471536642, 0.943317848545625},
        {8686, 10000, 0.861836727348312, 0.875080189052825},
        {0, 20, 0.0, 0.161125158052819},
        {20, 20, 0.838874841947181, 1.0},
        {1, 1, 0.206549314377237, 1.0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        double lo, hi;
        joule_wilson_interval(cases[i].k, cases[i].n, JOULE_Z95, &lo, &hi);
        assert_near(lo, cases[i].lo, 1e-12);
        assert_near(hi, cases[i].hi, 1e-12);
        joule_rate r = joule_rate_make(cases[i].k, cases[i].n);
        assert_int_equal(r.hits, cases[i].k);
        assert_near(r.rate, (double)cases[i].k / (double)cases[i].n, 1e-15);
        assert_near(r.lo, lo, 0);
        assert_true(r.lo <= r.rate && r.rate <= r.hi);
    }
    double lo, hi;
    joule_wilson_interval(0, 0, JOULE_Z95, &lo, &hi);
    assert_true(lo == 0 && hi == 1);
}

static void test_mcnemar(void **state)
{
    (void)state;
    /* 2 * P(X <= min(b,c)), X ~ Bin(b+c, 1/2): 1/5 -> 2*(1+6)/64; 0/6 -> 2/64; 2/8 -> 2*56/1024 */
    assert_near(joule_mcnemar_exact_p(1, 5), 14.0 / 64, 1e-15);
    assert_near(joule_mcnemar_exact_p(5, 1), 14.0 / 64, 1e-15);
    assert_near(joule_mcnemar_exact_p(0, 6), 2.0 / 64, 1e-15);
    assert_near(joule_mcnemar_exact_p(2, 8), 112.0 / 1024, 1e-15);
    assert_true(joule_mcnemar_exact_p(3, 3) == 1.0);
    assert_true(joule_mcnemar_exact_p(0, 0) == 1.0);
    assert_true(joule_mcnemar_exact_p(0, 1) == 1.0);
    /* larger n, against exact rational sums (Python fractions) */
    assert_near(joule_mcnemar_exact_p(40, 60), 0.05688793364098079, 1e-12);
    assert_near(joule_mcnemar_exact_p(100, 150), 0.001883300935076157, 1e-14);
    double p = joule_mcnemar_exact_p(1073, 265);
    assert_near(p / 1.9383276147575958e-115, 1.0, 1e-9);
}

static void test_error_stats(void **state)
{
    (void)state;
    const float ref[4] = {1, 2, 3, 4}, x[4] = {1, 2, 3, 5};
    joule_error_accum a = {0};
    joule_error_accum_add(&a, ref, x, 4);
    joule_error_stats e;
    joule_error_accum_finish(&a, &e);
    assert_int_equal(e.count, 4);
    assert_near(e.max_abs, 1.0, 0);
    assert_near(e.mean_abs, 0.25, 1e-15);
    assert_near(e.sqnr_db, 10 * log10(30.0), 1e-12);          /* 30 / 1 */
    assert_near(e.cosine, 34.0 / sqrt(30.0 * 39.0), 1e-12);

    /* the same split over two batches */
    joule_error_accum b = {0};
    joule_error_accum_add(&b, ref, x, 3);
    joule_error_accum_add(&b, ref + 3, x + 3, 1);
    joule_error_stats e2;
    joule_error_accum_finish(&b, &e2);
    assert_near(e2.sqnr_db, e.sqnr_db, 1e-12);
    assert_near(e2.cosine, e.cosine, 1e-12);
    assert_near(e2.mean_abs, e.mean_abs, 1e-15);

    /* identical: infinite SQNR, cosine 1; negated: cosine -1, SQNR 10 log10(1/4) */
    joule_error_accum c = {0};
    joule_error_accum_add(&c, ref, ref, 4);
    joule_error_accum_finish(&c, &e);
    assert_true(isinf(e.sqnr_db) && e.sqnr_db > 0);
    assert_near(e.cosine, 1, 0);
    assert_near(e.max_abs, 0, 0);
    const float neg[4] = {-1, -2, -3, -4};
    joule_error_accum d = {0};
    joule_error_accum_add(&d, ref, neg, 4);
    joule_error_accum_finish(&d, &e);
    assert_near(e.cosine, -1, 1e-15);
    assert_near(e.sqnr_db, 10 * log10(0.25), 1e-12);
    /* orthogonal */
    const float u[2] = {1, 0}, v[2] = {0, 3};
    joule_error_accum o = {0};
    joule_error_accum_add(&o, u, v, 2);
    joule_error_accum_finish(&o, &e);
    assert_near(e.cosine, 0, 0);
    assert_near(e.sqnr_db, 10 * log10(1.0 / 10.0), 1e-12);
    /* non-finite elements are counted and left out */
    const float r2[3] = {1, NAN, 2}, x2[3] = {1, 5, INFINITY};
    joule_error_accum f = {0};
    joule_error_accum_add(&f, r2, x2, 3);
    joule_error_accum_finish(&f, &e);
    assert_int_equal(e.count, 1);
    assert_int_equal(e.nonfinite, 2);
    assert_near(e.max_abs, 0, 0);
}

/* ---- building small models ---- */

static joule_model *new_model(void)
{
    joule_error err = {{0}};
    joule_model *m = NULL;
    assert_joule_ok(joule_model_new(17, &m, &err), &err);
    return m;
}

/* Input "x" [batch (or fixed), k]. */
static void add_input(joule_model *m, int64_t batch, int64_t k)
{
    joule_error err = {{0}};
    joule_value *v = NULL;
    assert_joule_ok(joule_graph_value(m->graph, "x", &v, &err), &err);
    v->dtype = JOULE_F32;
    v->shape.rank = 2;
    v->shape.dims[0].size = batch;
    if (batch < 0)
        v->shape.dims[0].sym = joule_graph_intern(m->graph, "batch");
    v->shape.dims[1].size = k;
    assert_joule_ok(joule_graph_add_input(m->graph, v, &err), &err);
}

static void add_output(joule_model *m, const char *name)
{
    joule_error err = {{0}};
    joule_value *v = NULL;
    assert_joule_ok(joule_graph_value(m->graph, name, &v, &err), &err);
    assert_joule_ok(joule_graph_add_output(m->graph, v, &err), &err);
}

static void add_init(joule_model *m, const char *name, joule_dtype dt, int rank,
                     const int64_t *dims, const void *data)
{
    joule_error err = {{0}};
    joule_value *v = NULL;
    joule_tensor *t = NULL;
    assert_joule_ok(joule_graph_value(m->graph, name, &v, &err), &err);
    assert_joule_ok(joule_tensor_new(dt, rank, dims, &t, &err), &err);
    if (t->nbytes)
        memcpy(joule_tensor_mutable_data(t), data, t->nbytes);
    assert_joule_ok(joule_graph_set_initializer(m->graph, v, t, &err), &err);
}

static joule_node *add_node(joule_model *m, const char *op, int n_in, const char *const *in,
                            const char *out)
{
    joule_error err = {{0}};
    joule_node *n = NULL;
    const char *outs[1] = {out};
    char name[64];
    snprintf(name, sizeof name, "%s_%s", op, out);
    assert_joule_ok(joule_node_create(m->graph, op, "", name, n_in, in, 1, outs, &n, &err), &err);
    assert_joule_ok(joule_graph_insert_before(m->graph, n, NULL, &err), &err);
    return n;
}

/* logits = x @ (sign * I_k): the scores are the input (or its negation). */
static joule_model *scores_model(int64_t batch, int64_t k, float sign)
{
    joule_model *m = new_model();
    add_input(m, batch, k);
    float *w = calloc((size_t)(k * k), sizeof *w);
    for (int64_t i = 0; i < k; i++)
        w[i * k + i] = sign;
    add_init(m, "w", JOULE_F32, 2, (int64_t[]){k, k}, w);
    free(w);
    add_node(m, "MatMul", 2, (const char *[]){"x", "w"}, "logits");
    add_output(m, "logits");
    return m;
}

typedef struct fixture {
    char dir[512];
    char data[600], labels[600];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f || !test_tmpdir(f->dir, sizeof f->dir))
        return -1;
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

static void write_npy(const char *path, joule_dtype dt, int rank, const int64_t *dims,
                      const void *data)
{
    joule_error err = {{0}};
    joule_tensor *t = NULL;
    assert_joule_ok(joule_tensor_new(dt, rank, dims, &t, &err), &err);
    memcpy(joule_tensor_mutable_data(t), data, t->nbytes);
    assert_joule_ok(joule_npy_write(path, t, &err), &err);
    joule_tensor_free(t);
}

/* Eight rows of seven scores with labels, worked through by hand (M = the scores, B = their
 * negation, so B's top-1 is the lowest score):
 *   row  scores           label  M top1 M top5  B top1 B top5
 *   r0   6 0 1 2 3 4 5    0      hit    hit     miss   miss   (c: M right, B wrong)
 *   r1   0 6 1 2 3 4 5    0      miss   miss    hit    hit    (b: B right, M wrong)
 *   r2   1 6 0 2 3 4 5    0      miss   miss    miss   hit    (class 0 is 6th for M, 2nd for B)
 *   r3   2 6 0 1 3 4 5    0      miss   hit     miss   hit
 *   r4   0 0 0 0 0 0 0    3      miss   hit     miss   hit    (ties: class 0 wins; 3 ranks 4th)
 *   r5   0 0 0 0 0 0 0    6      miss   miss    miss   miss   (ranks 7th)
 *   r6   1 2 3 4 5 6 0    5      hit    hit     miss   miss   (c)
 *   r7   1 2 3 4 5 6 0    6      miss   miss    hit    hit    (b)
 * M: top-1 2, top-5 4. B: top-1 2, top-5 5. Agreement (same top-1): r4, r5. b = 2, c = 2. */
static const float ROWS[8][7] = {
    {6, 0, 1, 2, 3, 4, 5}, {0, 6, 1, 2, 3, 4, 5}, {1, 6, 0, 2, 3, 4, 5}, {2, 6, 0, 1, 3, 4, 5},
    {0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0}, {1, 2, 3, 4, 5, 6, 0}, {1, 2, 3, 4, 5, 6, 0},
};
static const int64_t LABELS[8] = {0, 0, 0, 0, 3, 6, 5, 6};

static void write_rows(fixture *f)
{
    snprintf(f->data, sizeof f->data, "%s/rows.npy", f->dir);
    snprintf(f->labels, sizeof f->labels, "%s/rows_labels.npy", f->dir);
    write_npy(f->data, JOULE_F32, 2, (int64_t[]){8, 7}, ROWS);
    write_npy(f->labels, JOULE_I64, 1, (int64_t[]){8}, LABELS);
}

static joule_dataset *open_ds(const char *path, const joule_dataset_options *o)
{
    joule_error err = {{0}};
    joule_dataset *ds = NULL;
    assert_joule_ok(joule_dataset_open(path, o, &ds, &err), &err);
    return ds;
}

/* ---- evaluation on known scores ---- */

static void check_rows_result(const joule_eval_result *r)
{
    assert_int_equal(r->images, 8);
    assert_int_equal(r->classes, 7);
    assert_int_equal(r->topk, 5);
    assert_true(r->has_labels);
    assert_int_equal(r->top1.hits, 2);
    assert_int_equal(r->top5.hits, 4);
    assert_true(r->has_baseline);
    assert_int_equal(r->base_top1.hits, 2);
    assert_int_equal(r->base_top5.hits, 5);
    assert_int_equal(r->agreement.hits, 2);
    assert_int_equal(r->mcnemar_b, 2);
    assert_int_equal(r->mcnemar_c, 2);
    assert_near(r->mcnemar_p, 1.0, 0);
    double lo, hi;
    joule_wilson_interval(2, 8, JOULE_Z95, &lo, &hi);
    assert_near(r->top1.lo, lo, 0);
    assert_near(r->top1.hi, hi, 0);
    /* logits B = -x against M = x: error 2|x|, max 12, mean 2 * 126 / 56, cosine -1 and
     * SQNR 10 log10(1/4) */
    assert_int_equal(r->n_outputs, 1);
    assert_true(r->outputs[0].compared);
    const joule_error_stats *e = &r->outputs[0].e;
    assert_int_equal(e->count, 56);
    assert_near(e->max_abs, 12, 0);
    assert_near(e->mean_abs, 4.5, 1e-12);
    assert_near(e->cosine, -1, 1e-12);
    assert_near(e->sqnr_db, 10 * log10(0.25), 1e-9);
}

static void test_eval_known_scores(void **state)
{
    fixture *f = *state;
    write_rows(f);
    joule_error err = {{0}};
    joule_model *m = scores_model(-1, 7, 1), *b = scores_model(-1, 7, -1);
    joule_dataset *ds = open_ds(f->data, NULL);
    assert_true(joule_dataset_has_labels(ds));
    /* batches of 3 (3, 3, then 2: the session re-plans), 1 and 64 all count the same */
    static const size_t batches[] = {3, 1, 64};
    for (size_t i = 0; i < 3; i++) {
        joule_eval_options o = {.threads = 1, .batch = batches[i]};
        joule_eval_result r;
        assert_joule_ok(joule_eval_run(m, b, ds, &o, &r, &err), &err);
        assert_int_equal(r.batch, batches[i]);
        check_rows_result(&r);
        joule_eval_result_free(&r);
    }
    /* a model whose batch dim is fixed at 5: the last 3 items are padded */
    joule_model *m5 = scores_model(5, 7, 1);
    joule_eval_options o = {.threads = 1, .batch = 64};
    joule_eval_result r;
    assert_joule_ok(joule_eval_run(m5, b, ds, &o, &r, &err), &err);
    assert_int_equal(r.batch, 5);
    check_rows_result(&r);
    joule_eval_result_free(&r);

    /* against itself: everything agrees, outputs identical */
    assert_joule_ok(joule_eval_run(m, m, ds, &o, &r, &err), &err);
    assert_int_equal(r.agreement.hits, 8);
    assert_int_equal(r.mcnemar_b + r.mcnemar_c, 0);
    assert_true(isinf(r.outputs[0].e.sqnr_db));
    assert_near(r.outputs[0].e.cosine, 1, 0);
    joule_eval_result_free(&r);
    joule_model_free(m5);
    joule_model_free(m);
    joule_model_free(b);
    joule_dataset_free(ds);
}

static void progress_count(void *user, size_t done, size_t total)
{
    size_t *calls = user;
    assert_int_equal(total, 8);
    assert_true(done <= total);
    calls[0]++;
    calls[1] = done;
}

static void test_eval_json_and_progress(void **state)
{
    fixture *f = *state;
    write_rows(f);
    joule_error err = {{0}};
    joule_model *m = scores_model(-1, 7, 1), *b = scores_model(-1, 7, -1);
    joule_dataset *ds = open_ds(f->data, NULL);
    size_t calls[2] = {0, 0};
    joule_eval_options o = {.threads = 1, .batch = 3, .progress = progress_count,
                            .progress_user = calls};
    joule_eval_result r;
    assert_joule_ok(joule_eval_run(m, b, ds, &o, &r, &err), &err);
    assert_int_equal(calls[0], 3);
    assert_int_equal(calls[1], 8);
    char *text = NULL;
    assert_joule_ok(joule_eval_result_json(&r, &text, &err), &err);
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    assert_int_equal(cJSON_GetObjectItem(j, "images")->valueint, 8);
    cJSON *top1 = cJSON_GetObjectItem(j, "top1");
    assert_int_equal(cJSON_GetObjectItem(top1, "correct")->valueint, 2);
    assert_near(cJSON_GetObjectItem(top1, "accuracy")->valuedouble, 0.25, 1e-15);
    cJSON *ci = cJSON_GetObjectItem(top1, "ci95");
    assert_int_equal(cJSON_GetArraySize(ci), 2);
    assert_near(cJSON_GetArrayItem(ci, 0)->valuedouble, r.top1.lo, 1e-12);
    cJSON *base = cJSON_GetObjectItem(j, "baseline");
    cJSON *mc = cJSON_GetObjectItem(base, "mcnemar");
    assert_int_equal(cJSON_GetObjectItem(mc, "b")->valueint, 2);
    assert_int_equal(cJSON_GetObjectItem(mc, "c")->valueint, 2);
    cJSON *out0 = cJSON_GetArrayItem(cJSON_GetObjectItem(base, "outputs"), 0);
    assert_string_equal(cJSON_GetObjectItem(out0, "name")->valuestring, "logits");
    assert_near(cJSON_GetObjectItem(out0, "sqnr_db")->valuedouble, 10 * log10(0.25), 1e-9);
    assert_string_equal(cJSON_GetObjectItem(j, "labels")->valuestring, f->labels);
    cJSON_Delete(j);
    free(text);
    joule_eval_result_free(&r);

    /* identical outputs: SQNR is null, "identical" true */
    assert_joule_ok(joule_eval_run(m, m, ds, &(joule_eval_options){.threads = 1}, &r, &err),
                    &err);
    assert_joule_ok(joule_eval_result_json(&r, &text, &err), &err);
    j = cJSON_Parse(text);
    out0 = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "baseline"), "outputs"), 0);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(out0, "sqnr_db")));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(out0, "identical")));
    cJSON_Delete(j);
    free(text);
    joule_eval_result_free(&r);
    joule_model_free(m);
    joule_model_free(b);
    joule_dataset_free(ds);
}

/* Item shape checks, labels outside the classes, per-layer errors without a baseline. */
static void test_eval_bad(void **state)
{
    fixture *f = *state;
    write_rows(f);
    joule_error err = {{0}};
    joule_dataset *ds = open_ds(f->data, NULL);
    joule_eval_result r;
    joule_eval_options o = {.threads = 1};
    /* the model wants 9 scores per item, the data has 7 */
    joule_model *m9 = scores_model(-1, 9, 1);
    assert_int_equal(joule_eval_run(m9, NULL, ds, &o, &r, &err), JOULE_ERR_INVALID);
    assert_non_null(strstr(err.msg, f->data));
    assert_non_null(strstr(err.msg, "items are [7]"));
    assert_non_null(strstr(err.msg, "wants [batch,9]"));
    assert_int_equal(r.images, 0);
    /* labels up to 6 fit a model with 7 classes, not one that keeps the first 5 scores (item 5
     * is the first with a label past 4) */
    joule_model *m = scores_model(-1, 7, 1);
    joule_model *m5 = new_model();
    add_input(m5, -1, 7);
    float w[7 * 5] = {0};
    for (int i = 0; i < 5; i++)
        w[i * 5 + i] = 1;
    add_init(m5, "w", JOULE_F32, 2, (int64_t[]){7, 5}, w);
    add_node(m5, "MatMul", 2, (const char *[]){"x", "w"}, "logits");
    add_output(m5, "logits");
    assert_int_equal(joule_eval_run(m5, NULL, ds, &o, &r, &err), JOULE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "label 6 of item 5 is outside the model's 5 classes"));
    /* a baseline with a different class count */
    assert_int_equal(joule_eval_run(m, m5, ds, &o, &r, &err), JOULE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "classes"));
    o.layers = true;
    assert_int_not_equal(joule_eval_run(m, NULL, ds, &o, &r, &err), JOULE_OK);
    assert_non_null(strstr(err.msg, "baseline"));
    joule_model_free(m);
    joule_model_free(m5);
    joule_model_free(m9);
    joule_dataset_free(ds);
}

/* ---- per-layer errors through QDQ and Cast ---- */

/* Baseline: x -> MatMul(I) -> h -> Relu -> logits. Model: the same with h -> QuantizeLinear
 * (scale 0.5, int8) -> DequantizeLinear -> h_dq, or h -> Cast(f16) -> Cast(f32) -> h32, before
 * the Relu. */
static joule_model *layered_model(int variant)
{
    joule_error err = {{0}};
    joule_model *m = new_model();
    add_input(m, -1, 4);
    float w[16] = {0};
    for (int i = 0; i < 4; i++)
        w[i * 5] = 1;
    add_init(m, "w", JOULE_F32, 2, (int64_t[]){4, 4}, w);
    add_node(m, "MatMul", 2, (const char *[]){"x", "w"}, "h");
    const char *pre = "h";
    if (variant == 1) {
        add_init(m, "s", JOULE_F32, 0, NULL, (float[]){0.5f});
        add_init(m, "zp", JOULE_I8, 0, NULL, (int8_t[]){0});
        add_node(m, "QuantizeLinear", 3, (const char *[]){"h", "s", "zp"}, "h_q");
        add_node(m, "DequantizeLinear", 3, (const char *[]){"h_q", "s", "zp"}, "h_dq");
        pre = "h_dq";
    } else if (variant == 2) {
        joule_node *c1 = add_node(m, "Cast", 1, (const char *[]){"h"}, "h16");
        assert_joule_ok(joule_node_set_attr_int(m->graph, c1, "to", JOULE_F16, &err), &err);
        joule_node *c2 = add_node(m, "Cast", 1, (const char *[]){"h16"}, "h32");
        assert_joule_ok(joule_node_set_attr_int(m->graph, c2, "to", JOULE_F32, &err), &err);
        pre = "h32";
    }
    add_node(m, "Relu", 1, (const char *[]){pre}, "logits");
    add_output(m, "logits");
    return m;
}

static const joule_tensor_error *find_layer(const joule_eval_result *r, const char *name)
{
    for (size_t i = 0; i < r->n_layers; i++)
        if (strcmp(r->layers[i].name, name) == 0)
            return &r->layers[i];
    fail_msg("no layer '%s' among %zu", name, r->n_layers);
    return NULL;
}

static void test_layers_qdq_cast(void **state)
{
    fixture *f = *state;
    static const float X[2][4] = {{0.1f, 0.3f, 0.6f, 1.2f}, {-0.7f, 2.26f, 0.0f, 0.5f}};
    snprintf(f->data, sizeof f->data, "%s/h.npy", f->dir);
    write_npy(f->data, JOULE_F32, 2, (int64_t[]){2, 4}, X);
    joule_error err = {{0}};
    joule_dataset *ds = open_ds(f->data, NULL);
    assert_false(joule_dataset_has_labels(ds));
    joule_model *base = layered_model(0), *qdq = layered_model(1), *cast = layered_model(2);
    joule_eval_options o = {.threads = 1, .layers = true};
    joule_eval_result r;
    assert_joule_ok(joule_eval_run(qdq, base, ds, &o, &r, &err), &err);
    assert_false(r.has_labels);
    assert_int_equal(r.n_layers, 2);
    /* h quantized with step 0.5 (round half to even): errors .1 .2 .1 .2 | .2 .24 0 0 */
    const joule_tensor_error *h = find_layer(&r, "h_dq");
    assert_string_equal(h->baseline_name, "h");
    assert_true(h->compared);
    assert_int_equal(h->e.count, 8);
    assert_near(h->e.max_abs, 0.24, 1e-6);
    assert_near(h->e.mean_abs, 1.04 / 8, 1e-6);
    /* sum h^2 = 7.7476, sum err^2 = 0.1976 */
    assert_near(h->e.sqnr_db, 10 * log10(7.7476 / 0.1976), 1e-4);
    assert_true(h->e.cosine < 1 && h->e.cosine > 0.98);
    /* after the Relu the negative row's error is gone: .1 .2 .1 .2 | 0 .24 0 0 */
    const joule_tensor_error *lg = find_layer(&r, "logits");
    assert_near(lg->e.max_abs, 0.24, 1e-6);
    assert_near(lg->e.mean_abs, 0.84 / 8, 1e-6);
    /* top-1 agreement is still measured without labels */
    assert_int_equal(r.agreement.n, 2);
    joule_eval_result_free(&r);

    assert_joule_ok(joule_eval_run(cast, base, ds, &o, &r, &err), &err);
    h = find_layer(&r, "h32");
    assert_string_equal(h->baseline_name, "h");
    /* float16 rounding: 2.26 -> 2.259765625 is the largest error */
    assert_near(h->e.max_abs, 2.26f - 2.259765625, 1e-9);
    assert_true(h->e.sqnr_db > 60);
    joule_eval_result_free(&r);

    /* the same model against itself: every shared tensor identical */
    assert_joule_ok(joule_eval_run(qdq, qdq, ds, &o, &r, &err), &err);
    assert_int_equal(r.n_layers, 2); /* h (as h_dq on both sides) and logits */
    for (size_t i = 0; i < r.n_layers; i++) {
        assert_true(r.layers[i].compared);
        assert_near(r.layers[i].e.max_abs, 0, 0);
    }
    joule_eval_result_free(&r);
    joule_model_free(base);
    joule_model_free(qdq);
    joule_model_free(cast);
    joule_dataset_free(ds);
}

/* ---- the fixture models on 64 Fashion-MNIST images ---- */

/* Correct count from PyTorch's logits (argmax, first of ties) against the labels. */
static size_t ref_correct(const char *logits_npy, const joule_tensor *labels)
{
    char p[600];
    joule_error err = {{0}};
    joule_tensor *t = NULL;
    assert_joule_ok(joule_npy_read(test_source_path(logits_npy, p, sizeof p), &t, &err), &err);
    assert_int_equal(t->dims[0], 64);
    size_t k = (size_t)t->dims[1], hits = 0;
    const float *x = t->data;
    const int64_t *y = labels->data;
    for (size_t i = 0; i < 64; i++) {
        size_t best = 0;
        for (size_t c = 1; c < k; c++)
            if (x[i * k + c] > x[i * k + best])
                best = c;
        hits += (int64_t)best == y[i];
    }
    joule_tensor_free(t);
    return hits;
}

static void test_fixture_models_64(void **state)
{
    (void)state;
    static const char *const models[][2] = {
        {"tests/data/mlp.onnx", "tests/data/mlp_ref_logits64.npy"},
        {"tests/data/cnn.onnx", "tests/data/cnn_ref_logits64.npy"},
        {"tests/data/mobile.onnx", "tests/data/mobile_ref_logits64.npy"},
        {"tests/data/transformer.onnx", "tests/data/transformer_ref_logits64.npy"},
    };
    char p[600];
    joule_error err = {{0}};
    joule_tensor *labels = NULL;
    assert_joule_ok(joule_npy_read(test_source_path("tests/data/fmnist_test64_labels.npy", p,
                                                    sizeof p), &labels, &err), &err);
    joule_dataset *ds = open_ds(test_source_path("tests/data/fmnist_test64.npy", p, sizeof p),
                                NULL);
    assert_true(joule_dataset_has_labels(ds));
    size_t tested = 0;
    for (size_t i = 0; i < sizeof models / sizeof *models; i++) {
        char mp[600], rp[600];
        test_source_path(models[i][0], mp, sizeof mp);
        test_source_path(models[i][1], rp, sizeof rp);
        if (access(mp, R_OK) != 0 || access(rp, R_OK) != 0)
            continue; /* fixtures being regenerated */
        size_t want = ref_correct(models[i][1], labels);
        joule_model *m = NULL;
        assert_joule_ok(joule_model_load(mp, &m, &err), &err);
        static const size_t batches[] = {64, 10, 1};
        for (size_t b = 0; b < 3; b++) {
            joule_eval_options o = {.threads = 1, .batch = batches[b]};
            joule_eval_result r;
            assert_joule_ok(joule_eval_run(m, m, ds, &o, &r, &err), &err);
            if (r.top1.hits != want)
                fail_msg("%s (batch %zu): %zu of 64 correct, PyTorch's logits give %zu",
                         models[i][0], batches[b], r.top1.hits, want);
            assert_int_equal(r.images, 64);
            assert_int_equal(r.classes, 10);
            assert_int_equal(r.agreement.hits, 64);
            joule_eval_result_free(&r);
        }
        joule_model_free(m);
        tested++;
    }
    assert_true(tested >= 1);

    /* a model taking flat [batch,784] items is fed [1,28,28] images reshaped: all-zero weights
     * score every class 0, so top-1 counts class 0's images (argmax takes the first tie) */
    joule_model *flat = new_model();
    add_input(flat, -1, 784);
    float *w = calloc(784 * 10, sizeof *w);
    add_init(flat, "w", JOULE_F32, 2, (int64_t[]){784, 10}, w);
    free(w);
    add_node(flat, "MatMul", 2, (const char *[]){"x", "w"}, "logits");
    add_output(flat, "logits");
    joule_eval_result r;
    assert_joule_ok(joule_eval_run(flat, NULL, ds, &(joule_eval_options){.threads = 1}, &r, &err),
                    &err);
    size_t zeros = 0;
    for (size_t i = 0; i < 64; i++)
        zeros += ((const int64_t *)labels->data)[i] == 0;
    assert_int_equal(r.top1.hits, zeros);
    joule_eval_result_free(&r);
    joule_model_free(flat);
    joule_tensor_free(labels);
    joule_dataset_free(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wilson),
        cmocka_unit_test(test_mcnemar),
        cmocka_unit_test(test_error_stats),
        cmocka_unit_test_setup_teardown(test_eval_known_scores, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eval_json_and_progress, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eval_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_layers_qdq_cast, setup, teardown),
        cmocka_unit_test(test_fixture_models_64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

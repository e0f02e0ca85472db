/* eval/engine.c: the session API. Creation checks the options, fixes the input shapes (given or
 * declared) and makes the first plan (eval/plan.c). A run checks the fed tensors, re-plans only
 * when an input's shape changed, then calls each planned node's kernel on views into the arena:
 * no allocation. A graph whose shapes depend on input contents (a Reshape fed its target shape,
 * a NonZero) cannot be planned ahead; such a session plans every run with the inputs' data. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval/engine_internal.h"

/* OpenBLAS's thread count is process-wide; weak so that a plain cblas build still links. */
void openblas_set_num_threads(int) __attribute__((weak));

static size_t ptr_hash(const void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return (size_t)x;
}

size_t eng_value_index(const joule_session *s, const joule_value *v)
{
    if (!v || !s->n_hash)
        return SIZE_MAX;
    size_t mask = s->n_hash - 1;
    for (size_t h = ptr_hash(v) & mask;; h = (h + 1) & mask) {
        size_t e = s->hash[h];
        if (!e)
            return SIZE_MAX;
        if (s->vals[e - 1].v == v)
            return e - 1;
    }
}

static joule_status index_values(joule_session *s, joule_error *err)
{
    const joule_graph *g = s->g;
    s->n_values = g->n_values;
    size_t n = 16;
    while (n < 2 * g->n_values + 1) {
        if (n > SIZE_MAX / 4)
            return joule_fail(err, JOULE_ERR_NOMEM, "session: too many values");
        n *= 2;
    }
    s->vals = calloc(g->n_values ? g->n_values : 1, sizeof *s->vals);
    s->hash = calloc(n, sizeof *s->hash);
    if (!s->vals || !s->hash)
        return joule_fail(err, JOULE_ERR_NOMEM, "session: out of memory");
    s->n_hash = n;
    for (size_t i = 0; i < g->n_values; i++) {
        const joule_value *v = g->values[i];
        if (!v)
            return joule_fail(err, JOULE_ERR_INVALID, "graph: value %zu is missing", i);
        s->vals[i].v = v;
        size_t h = ptr_hash(v) & (n - 1);
        while (s->hash[h]) {
            if (s->vals[s->hash[h] - 1].v == v)
                return joule_fail(err, JOULE_ERR_INVALID, "graph: value '%s' is listed twice",
                                  v->name ? v->name : "?");
            h = (h + 1) & (n - 1);
        }
        s->hash[h] = i + 1;
    }
    return JOULE_OK;
}

/* Shape of fed input i from the options or its declaration; every dim must be known. */
static joule_status input_shape(joule_session *s, size_t i, const joule_session_options *opt,
                                joule_error *err)
{
    const joule_value *v = s->vals[s->input_idx[i]].v;
    const char *name = v->name ? v->name : "?";
    const joule_shape *shape = &v->shape;
    for (size_t k = 0; k < opt->n_input_shapes; k++) {
        const joule_input_shape *is = &opt->input_shapes[k];
        if (is->name && v->name && strcmp(is->name, v->name) == 0) {
            shape = &is->shape;
            s->in_given[i] = true;
        }
    }
    if (shape->rank < 0)
        return joule_fail(err, JOULE_ERR_INVALID,
                          "input '%s' has an unknown rank; give its shape with the input_shapes "
                          "option (joule run: --input-shape %s=DIMS)", name, name);
    if (shape->rank > JOULE_MAX_RANK)
        return joule_fail(err, JOULE_ERR_UNSUPPORTED, "input '%s': rank %d exceeds joule's limit %d",
                          name, shape->rank, JOULE_MAX_RANK);
    for (int d = 0; d < shape->rank; d++) {
        const joule_dim *dim = &shape->dims[d];
        if (dim->size < 0)
            return joule_fail(err, JOULE_ERR_INVALID,
                              "input '%s' has unknown dim %s%s%s(axis %d); give its shape with the "
                              "input_shapes option (joule run: --input-shape %s=DIMS)",
                              name, dim->sym ? "'" : "", dim->sym ? dim->sym : "",
                              dim->sym ? "' " : "", d, name);
        s->in_dims[i][d] = dim->size;
    }
    s->in_rank[i] = shape->rank;
    return JOULE_OK;
}

static joule_status setup_io(joule_session *s, const joule_session_options *opt, joule_error *err)
{
    const joule_graph *g = s->g;
    size_t n_in = 0;
    for (size_t i = 0; i < g->n_inputs; i++)
        if (g->inputs[i] && !g->inputs[i]->data)
            n_in++;
    s->input_idx = calloc(n_in ? n_in : 1, sizeof *s->input_idx);
    s->in_rank = calloc(n_in ? n_in : 1, sizeof *s->in_rank);
    s->in_dims = calloc(n_in ? n_in : 1, sizeof *s->in_dims);
    s->in_given = calloc(n_in ? n_in : 1, sizeof *s->in_given);
    s->output_idx = calloc(g->n_outputs ? g->n_outputs : 1, sizeof *s->output_idx);
    s->out_t = calloc(g->n_outputs ? g->n_outputs : 1, sizeof *s->out_t);
    s->out_copy = calloc(g->n_outputs ? g->n_outputs : 1, sizeof *s->out_copy);
    if (!s->input_idx || !s->in_rank || !s->in_dims || !s->in_given || !s->output_idx ||
        !s->out_t || !s->out_copy)
        return joule_fail(err, JOULE_ERR_NOMEM, "session: out of memory");
    for (size_t i = 0; i < g->n_inputs; i++) {
        const joule_value *v = g->inputs[i];
        if (!v || v->data)
            continue;
        size_t vi = eng_value_index(s, v);
        if (vi == SIZE_MAX)
            return joule_fail(err, JOULE_ERR_INVALID, "input '%s' is not a value of the graph",
                              v->name ? v->name : "?");
        for (size_t k = 0; k < s->n_inputs; k++)
            if (s->input_idx[k] == vi)
                return joule_fail(err, JOULE_ERR_INVALID, "input '%s' is listed twice",
                                  v->name ? v->name : "?");
        if (!joule_dtype_valid((int)v->dtype) || v->dtype == JOULE_UNDEFINED ||
            v->dtype == JOULE_STRING || joule_dtype_info(v->dtype)->bits == 0)
            return joule_fail(err, JOULE_ERR_UNSUPPORTED,
                              "input '%s': type %s is not a numeric tensor joule can feed",
                              v->name ? v->name : "?", joule_dtype_name(v->dtype));
        s->input_idx[s->n_inputs++] = vi;
    }
    for (size_t k = 0; k < opt->n_input_shapes; k++) {
        const char *name = opt->input_shapes[k].name;
        bool found = false;
        for (size_t i = 0; i < s->n_inputs && !found; i++) {
            const char *vn = s->vals[s->input_idx[i]].v->name;
            found = name && vn && strcmp(name, vn) == 0;
        }
        if (!found)
            return joule_fail(err, JOULE_ERR_NOT_FOUND,
                              "input shape given for '%s', but the graph has no input of that name "
                              "to feed", name ? name : "(null)");
    }
    for (size_t i = 0; i < s->n_inputs; i++) {
        joule_status st = input_shape(s, i, opt, err);
        if (st)
            return st;
    }
    s->n_outputs = g->n_outputs;
    for (size_t o = 0; o < g->n_outputs; o++) {
        size_t vi = eng_value_index(s, g->outputs[o]);
        if (vi == SIZE_MAX)
            return joule_fail(err, JOULE_ERR_INVALID, "graph output %zu is not a value of the graph",
                              o);
        s->output_idx[o] = vi;
    }
    return JOULE_OK;
}

joule_status joule_session_create(const joule_model *m, const joule_session_options *opt,
                                  joule_session **out, joule_error *err)
{
    if (!out)
        return joule_fail(err, JOULE_ERR_INVALID, "session: no place for the result");
    *out = NULL;
    if (!m || !m->graph)
        return joule_fail(err, JOULE_ERR_INVALID, "session: no model");
    joule_session_options defaults = {0};
    if (!opt)
        opt = &defaults;
    if (opt->backend == JOULE_BACKEND_CUDA)
        return joule_fail(err, JOULE_ERR_UNSUPPORTED, "cuda backend: not built");
    if (opt->backend != JOULE_BACKEND_CPU)
        return joule_fail(err, JOULE_ERR_INVALID, "session: unknown backend %d", (int)opt->backend);
    if (opt->threads < 0)
        return joule_fail(err, JOULE_ERR_INVALID, "session: threads must be >= 0 (0 = all cores), "
                          "got %d", opt->threads);
    if (opt->n_input_shapes && !opt->input_shapes)
        return joule_fail(err, JOULE_ERR_INVALID, "session: input_shapes is NULL");

    joule_session *s = calloc(1, sizeof *s);
    if (!s)
        return joule_fail(err, JOULE_ERR_NOMEM, "session: out of memory");
    s->model = m;
    s->g = m->graph;
    s->threads = opt->threads;
    if (s->threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        s->threads = n > 0 ? (n > 1024 ? 1024 : (int)n) : 1;
    }
    joule_status st = index_values(s, err);
    if (!st)
        st = setup_io(s, opt, err);
    if (!st)
        st = eng_find_fusions(s, err);
    if (!st)
        st = eng_find_conv_fusions(s, err);
    if (!st) {
        if (openblas_set_num_threads)
            openblas_set_num_threads(s->threads);
        st = eng_plan(s, NULL, err);
        if (st && s->need_data) {
            /* shapes follow input contents: plan at every run (kernels found so far are fine) */
            s->data_dependent = true;
            st = eng_check_ops(s, err);
        }
    }
    if (st) {
        joule_session_free(s);
        return st;
    }
    *out = s;
    return JOULE_OK;
}

void joule_session_free(joule_session *s)
{
    if (!s)
        return;
    if (s->vals)
        eng_plan_clear(s);
    free(s->vals);
    free(s->hash);
    free(s->input_idx);
    free(s->in_rank);
    free(s->in_dims);
    free(s->in_given);
    free(s->output_idx);
    free(s->out_t);
    free(s->out_copy);
    free(s->fusions);
    free(s->node_fusion);
    eng_free_conv_fusions(s);
    free(s->arena);
    free(s->scratch);
    free(s);
}

size_t joule_session_n_inputs(const joule_session *s)
{
    return s ? s->n_inputs : 0;
}

const joule_value *joule_session_input(const joule_session *s, size_t i)
{
    return s && i < s->n_inputs ? s->vals[s->input_idx[i]].v : NULL;
}

size_t joule_session_n_outputs(const joule_session *s)
{
    return s ? s->n_outputs : 0;
}

const joule_value *joule_session_output_value(const joule_session *s, size_t i)
{
    return s && i < s->n_outputs ? s->vals[s->output_idx[i]].v : NULL;
}

const joule_tensor *joule_session_output(const joule_session *s, size_t i)
{
    if (!s || i >= s->n_outputs || !s->planned || !s->have_outputs)
        return NULL;
    return &s->out_t[i];
}

size_t joule_session_peak_bytes(const joule_session *s)
{
    return s ? s->peak : 0;
}

static void format_dims(int rank, const int64_t *dims, char *buf, size_t size)
{
    size_t off = 0;
    off += (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < rank && off < size; d++)
        off += (size_t)snprintf(buf + off, size - off, "%s%lld", d ? "," : "", (long long)dims[d]);
    if (off < size)
        snprintf(buf + off, size - off, "]");
}

/* Checks fed tensor i against the input's dtype and declared dims. */
static joule_status check_input(const joule_session *s, size_t i, const joule_tensor *t,
                                joule_error *err)
{
    const joule_value *v = s->vals[s->input_idx[i]].v;
    const char *name = v->name ? v->name : "?";
    if (!t)
        return joule_fail(err, JOULE_ERR_INVALID, "input '%s': no tensor given", name);
    if (t->dtype != v->dtype)
        return joule_fail(err, JOULE_ERR_INVALID, "input '%s': expected %s, got %s", name,
                          joule_dtype_name(v->dtype), joule_dtype_name(t->dtype));
    size_t count;
    if (t->rank < 0 || t->rank > JOULE_MAX_RANK || !joule_dims_count(t->rank, t->dims, &count) ||
        count != t->count || joule_dtype_bytes(t->dtype, count) != t->nbytes ||
        (t->nbytes && !t->data))
        return joule_fail(err, JOULE_ERR_INVALID, "input '%s': tensor size does not match its dims",
                          name);
    if (s->in_given[i] || v->shape.rank < 0)
        return JOULE_OK;
    bool ok = v->shape.rank == t->rank;
    for (int d = 0; ok && d < t->rank; d++)
        ok = v->shape.dims[d].size < 0 || v->shape.dims[d].size == t->dims[d];
    if (!ok) {
        char got[160], want[160];
        format_dims(t->rank, t->dims, got, sizeof got);
        joule_shape_format(&v->shape, want, sizeof want);
        return joule_fail(err, JOULE_ERR_INVALID, "input '%s': shape %s does not match the declared "
                          "%s", name, got, want);
    }
    return JOULE_OK;
}

joule_status joule_session_run(joule_session *s, const joule_tensor *const *inputs, size_t n,
                               joule_error *err)
{
    if (!s)
        return joule_fail(err, JOULE_ERR_INVALID, "run: no session");
    if (n != s->n_inputs)
        return joule_fail(err, JOULE_ERR_INVALID, "run: the model takes %zu inputs, %zu given",
                          s->n_inputs, n);
    if (n && !inputs)
        return joule_fail(err, JOULE_ERR_INVALID, "run: inputs is NULL");
    s->have_outputs = false;
    bool changed = !s->planned;
    for (size_t i = 0; i < n; i++) {
        joule_status st = check_input(s, i, inputs[i], err);
        if (st)
            return st;
    }
    for (size_t i = 0; i < n; i++) {
        const joule_tensor *t = inputs[i];
        if (t->rank != s->in_rank[i] ||
            (t->rank && memcmp(t->dims, s->in_dims[i], (size_t)t->rank * sizeof *t->dims) != 0)) {
            changed = true;
            s->in_rank[i] = t->rank;
            if (t->rank)
                memcpy(s->in_dims[i], t->dims, (size_t)t->rank * sizeof *t->dims);
        }
    }
    if (openblas_set_num_threads)
        openblas_set_num_threads(s->threads);
    joule_status st;
    if (s->data_dependent) {
        st = eng_plan(s, inputs, err);
        if (st)
            return st;
    } else if (changed) {
        st = eng_plan(s, NULL, err);
        if (st && s->need_data) {
            s->data_dependent = true;
            st = eng_plan(s, inputs, err);
        }
        if (st)
            return st;
    }
    for (size_t i = 0; i < n; i++)
        s->vals[s->input_idx[i]].view.data = (void *)inputs[i]->data;

    for (size_t i = 0; i < s->g->n_nodes; i++) {
        eng_node *en = &s->nodes[i];
        if (!en->run)
            continue;
        joule_kernel_ctx ctx = {
            .node = en->knode,
            .opset = en->opset,
            .n_in = en->n_in,
            .in = en->in,
            .n_out = en->n_out,
            .out = en->out,
            .state = en->state,
            .scratch = s->scratch,
            .threads = s->threads,
            .err = err,
        };
        st = en->kernel->run(&ctx);
        if (st)
            return st;
        if (en->act_kernel && (st = eng_run_act(s, en, s->scratch, err)))
            return st;
    }
    for (size_t c = 0; c < s->n_copies; c++) {
        const eng_value *ev = &s->vals[s->copies[c].value];
        size_t bytes = joule_dtype_bytes(ev->view.dtype, ev->view.count);
        if (bytes)
            memcpy(s->arena + s->copies[c].offset, ev->view.data, bytes);
    }
    s->have_outputs = true;
    return JOULE_OK;
}

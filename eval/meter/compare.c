/* eval/meter/compare.c: joule_energy_compare, the library call behind `joule energy` and the
 * report's energy section: loads both models, prices each graph, makes a session per model with
 * its inputs (from a dataset, or seeded random values of the input shapes), opens the meter and
 * runs the trials. */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "joule/dataset.h"
#include "joule/energy.h"
#include "joule/onnx.h"

#define POOL_MAX 8 /* batches fed round-robin, so caches do not hold one input only */

typedef struct model_run {
    joule_model *m;
    joule_session *s;
    size_t n_inputs;
    joule_input_shape shapes[16];
    size_t n_shapes;
    size_t pool;                   /* batches in the pool */
    joule_tensor **feeds;          /* pool x n_inputs tensors */
    const joule_tensor **args;     /* n_inputs pointers into the current batch */
    size_t next;
} model_run;

static joule_status run_once(void *ctx, joule_error *err)
{
    model_run *r = ctx;
    size_t b = r->next;
    r->next = (r->next + 1) % r->pool;
    for (size_t i = 0; i < r->n_inputs; i++)
        r->args[i] = r->feeds[b * r->n_inputs + i];
    return joule_session_run(r->s, r->args, r->n_inputs, err);
}

static void model_run_free(model_run *r)
{
    if (r->feeds)
        for (size_t i = 0; i < r->pool * r->n_inputs; i++)
            joule_tensor_free(r->feeds[i]);
    free(r->feeds);
    free(r->args);
    joule_session_free(r->s);
    joule_model_free(r->m);
    memset(r, 0, sizeof *r);
}

/* Concrete shapes for every fed input: a symbolic first dim becomes batch. */
static joule_status plan_shapes(model_run *r, const char *path, int batch, joule_error *err)
{
    const joule_graph *g = r->m->graph;
    r->n_shapes = 0;
    for (size_t i = 0; i < g->n_inputs; i++) {
        const joule_value *v = g->inputs[i];
        if (v->data)
            continue;
        if (r->n_shapes == sizeof r->shapes / sizeof *r->shapes)
            return joule_fail(err, JOULE_ERR_UNSUPPORTED, "%s: more than 16 inputs", path);
        if (v->shape.rank < 0)
            return joule_fail(err, JOULE_ERR_UNSUPPORTED, "%s: input '%s' has no declared shape", path,
                              v->name);
        joule_input_shape *s = &r->shapes[r->n_shapes++];
        s->name = v->name;
        s->shape = v->shape;
        for (int d = 0; d < v->shape.rank; d++) {
            if (v->shape.dims[d].size >= 0)
                continue;
            if (d > 0)
                return joule_fail(err, JOULE_ERR_UNSUPPORTED,
                                  "%s: input '%s' dim %d ('%s') is not fixed: only the batch dim may be "
                                  "symbolic", path, v->name, d, v->shape.dims[d].sym ? v->shape.dims[d].sym : "?");
            s->shape.dims[d].size = batch;
            s->shape.dims[d].sym = NULL;
        }
    }
    return JOULE_OK;
}

static joule_status random_tensor(const joule_value *v, const joule_shape *shape, uint64_t *rng,
                                  joule_tensor **out, joule_error *err)
{
    int64_t dims[JOULE_MAX_RANK];
    for (int d = 0; d < shape->rank; d++)
        dims[d] = shape->dims[d].size;
    if (v->dtype != JOULE_F32 && v->dtype != JOULE_I64 && v->dtype != JOULE_I32 && v->dtype != JOULE_BOOL &&
        v->dtype != JOULE_F16)
        return joule_fail(err, JOULE_ERR_UNSUPPORTED, "energy: input '%s' is %s: random inputs are made "
                          "for float, float16 and integer inputs only (give --data)", v->name,
                          joule_dtype_name(v->dtype));
    joule_status st = joule_tensor_new(v->dtype, shape->rank, dims, out, err);
    if (st)
        return st;
    void *data = joule_tensor_mutable_data(*out);
    if (v->dtype == JOULE_F32) {
        float *f = data;
        for (size_t i = 0; i < (*out)->count; i++)
            f[i] = (float)(joule_rng_next(rng) >> 40) * 0x1p-24f;
    } else if (v->dtype == JOULE_F16) {
        uint16_t *h = data;
        for (size_t i = 0; i < (*out)->count; i++)
            h[i] = joule_f32_to_f16((float)(joule_rng_next(rng) >> 40) * 0x1p-24f);
    } /* integer and bool inputs stay 0: ids and masks must be valid, and 0 always is */
    return JOULE_OK;
}

/* Fills the input pool: the first float input from the dataset when given, the rest random. */
static joule_status make_inputs(model_run *r, joule_dataset *ds, uint64_t seed, joule_error *err)
{
    r->n_inputs = joule_session_n_inputs(r->s);
    size_t pool = POOL_MAX;
    if (ds) {
        joule_status st = joule_dataset_rewind(ds, err);
        if (st)
            return st;
    }
    r->feeds = calloc(pool * (r->n_inputs ? r->n_inputs : 1), sizeof *r->feeds);
    r->args = calloc(r->n_inputs ? r->n_inputs : 1, sizeof *r->args);
    if (!r->feeds || !r->args)
        return joule_fail(err, JOULE_ERR_NOMEM, "energy: out of memory");
    uint64_t rng = seed;
    size_t made = 0;
    for (size_t b = 0; b < pool; b++) {
        bool data_used = false, ended = false;
        for (size_t i = 0; i < r->n_inputs; i++) {
            const joule_value *v = joule_session_input(r->s, i);
            const joule_shape *shape = NULL;
            for (size_t k = 0; k < r->n_shapes; k++)
                if (strcmp(r->shapes[k].name, v->name) == 0)
                    shape = &r->shapes[k].shape;
            if (!shape)
                return joule_fail(err, JOULE_ERR_INVALID, "energy: no shape for input '%s'", v->name);
            joule_tensor **slot = &r->feeds[b * r->n_inputs + i];
            if (ds && !data_used && v->dtype == JOULE_F32) {
                data_used = true;
                joule_tensor *images = NULL, *labels = NULL;
                size_t n = 0;
                size_t want = (size_t)shape->dims[0].size;
                joule_status st = joule_dataset_next(ds, want, &images, &labels, &n, err);
                joule_tensor_free(labels);
                if (st)
                    return st;
                if (n < want || !images) {
                    joule_tensor_free(images);
                    ended = true;
                    break;
                }
                bool same = images->rank == shape->rank;
                for (int d = 0; same && d < shape->rank; d++)
                    same = images->dims[d] == shape->dims[d].size;
                if (!same) {
                    char want_s[160];
                    joule_shape_format(shape, want_s, sizeof want_s);
                    joule_tensor_free(images);
                    return joule_fail(err, JOULE_ERR_INVALID, "--data %s: its batches do not fit input "
                                      "'%s' %s", joule_dataset_path(ds), v->name, want_s);
                }
                *slot = images;
                continue;
            }
            joule_status st = random_tensor(v, shape, &rng, slot, err);
            if (st)
                return st;
        }
        if (ended) {
            for (size_t i = 0; i < r->n_inputs; i++) {
                joule_tensor_free(r->feeds[b * r->n_inputs + i]);
                r->feeds[b * r->n_inputs + i] = NULL;
            }
            break;
        }
        made++;
    }
    if (made == 0)
        return joule_fail(err, JOULE_ERR_INVALID, "--data %s: fewer items than one batch",
                          joule_dataset_path(ds));
    r->pool = made;
    return JOULE_OK;
}

/* Device synchronize for GPU readings: cuCtxSynchronize from the driver, found at run time. */
typedef struct cuda_sync {
    void *lib;
    int (*sync)(void);
} cuda_sync;

static void cuda_sync_call(void *ctx)
{
    cuda_sync *c = ctx;
    if (c->sync)
        c->sync();
}

joule_status joule_energy_compare(const joule_energy_options *opt, joule_energy_result **out,
                                  joule_error *err)
{
    *out = NULL;
    if (!opt->base || !opt->candidate)
        return joule_fail(err, JOULE_ERR_INVALID, "energy: two models are needed");
    if (opt->batch < 0 || opt->batch > 1 << 20 || opt->threads < 0)
        return joule_fail(err, JOULE_ERR_INVALID, "energy: --batch must be 1 or more and --threads >= 0");
    int batch = opt->batch ? opt->batch : 1;
    model_run runs[2];
    memset(runs, 0, sizeof runs);
    joule_dataset *ds = NULL;
    joule_meter *meter = NULL;
    joule_energy_result *r = NULL;
    joule_graph_energy graph[2];
    memset(graph, 0, sizeof graph);
    cuda_sync cs = {0};
    joule_machine machine;
    joule_status st = joule_machine_describe(opt->meter.reader, &machine, err);
    if (st)
        return st;
    joule_dataset_options dso;
    memset(&dso, 0, sizeof dso);
    if (opt->data && (st = joule_dataset_open(opt->data, &dso, &ds, err)))
        return st;
    const char *paths[2] = {opt->base, opt->candidate};
    for (int k = 0; k < 2 && !st; k++) {
        model_run *mr = &runs[k];
        if ((st = joule_model_load(paths[k], &mr->m, err)))
            break;
        if ((st = plan_shapes(mr, paths[k], batch, err)))
            break;
        if ((st = joule_graph_energy_estimate(mr->m, mr->shapes, mr->n_shapes, machine.llc_bytes, -1,
                                              &graph[k], err)))
            break;
        joule_session_options so = {
            .backend = opt->backend,
            .threads = opt->threads,
            .input_shapes = mr->shapes,
            .n_input_shapes = mr->n_shapes,
        };
        if ((st = joule_session_create(mr->m, &so, &mr->s, err)))
            break;
        st = make_inputs(mr, ds, opt->trial.seed ^ 0x1A2B3C4Dull, err);
    }
    if (st)
        goto done;
    joule_meter_options mo = opt->meter;
    mo.use_gpu = opt->backend == JOULE_BACKEND_CUDA;
    if (mo.use_gpu && !mo.sync) {
        cs.lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
        if (cs.lib)
            *(void **)&cs.sync = dlsym(cs.lib, "cuCtxSynchronize");
        mo.sync = cuda_sync_call;
        mo.sync_ctx = &cs;
    }
    if ((st = joule_meter_open(&mo, &meter, err)))
        goto done;
    joule_workload wa = {&runs[0], run_once}, wb = {&runs[1], run_once};
    if ((st = joule_energy_trials(meter, opt->meter.clock, &wa, &wb, &opt->trial, &r, err)))
        goto done;
    r->machine = machine;
    snprintf(r->backend, sizeof r->backend, "%s", opt->backend == JOULE_BACKEND_CUDA ? "cuda" : "cpu");
    r->threads = opt->threads;
    r->batch = batch;
    for (int k = 0; k < 2; k++) {
        snprintf(r->models[k].path, sizeof r->models[k].path, "%s", paths[k]);
        r->models[k].graph = graph[k];
        r->models[k].has_graph = true;
    }
    /* measured LLC misses replace the cache assumption of the graph model */
    for (int k = 0; k < 2; k++) {
        if (r->models[k].llc_misses < 0)
            continue;
        joule_session_free(runs[k].s);
        runs[k].s = NULL;
        joule_graph_energy g;
        if (joule_graph_energy_estimate(runs[k].m, runs[k].shapes, runs[k].n_shapes, machine.llc_bytes,
                                        r->models[k].llc_misses, &g, err) == JOULE_OK)
            r->models[k].graph = g;
    }
    if (r->models[0].graph.joules_lo > 0)
        r->graph_ratio = r->models[1].graph.joules_lo / r->models[0].graph.joules_lo;
    if (mo.use_gpu && !cs.sync)
        snprintf(r->notes[r->n_notes < JOULE_ENERGY_MAX_NOTES ? r->n_notes++ : r->n_notes - 1],
                 sizeof r->notes[0], "libcuda.so.1 not loaded: GPU readings were not synchronized");
done:
    joule_meter_close(meter);
    for (int k = 0; k < 2; k++)
        model_run_free(&runs[k]);
    joule_dataset_free(ds);
    if (cs.lib)
        dlclose(cs.lib);
    if (st) {
        joule_energy_result_free(r);
        return st;
    }
    *out = r;
    return JOULE_OK;
}

/* eval/meter/nvml.c: source 3, NVIDIA GPUs through NVML, loaded at run time with dlopen (no build
 * dependency; --nvml-lib names another library, such as the fake one the tests build). Per GPU:
 * nvmlDeviceGetTotalEnergyConsumption (mJ since the driver loaded; Volta and later) when it works,
 * else nvmlDeviceGetPowerUsage (mW) integrated over time by the trapezoid rule from the sampler
 * thread. GPUs are counted only for the CUDA backend; otherwise they are listed. The meter calls
 * the caller's device synchronize before each window reading. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/meter/meter_internal.h"

typedef int nvml_ret;
typedef struct nvml_device *nvml_dev;
enum {
    NVML_OK = 0,
    NVML_NOT_SUPPORTED = 3,
    NVML_NO_PERMISSION = 4,
    NVML_DRIVER_NOT_LOADED = 9,
    NVML_GPU_IS_LOST = 15
};

#define NV_ENERGY_PERIOD_S 0.1   /* the energy counter moves at least every 100 ms */
#define NV_POWER_SAMPLE_S 0.02   /* power readings are integrated at 50 Hz */

typedef struct nv_gpu {
    nvml_dev dev;
    bool energy_mode;
    unsigned long long e0_mj;
    double acc_j, last_w, last_t;
} nv_gpu;

typedef struct nv_state {
    const joule_meter *meter;
    void *lib;
    nvml_ret (*init)(void);
    nvml_ret (*shutdown)(void);
    const char *(*error_string)(nvml_ret);
    nvml_ret (*count)(unsigned *);
    nvml_ret (*handle)(unsigned, nvml_dev *);
    nvml_ret (*name)(nvml_dev, char *, unsigned);
    nvml_ret (*energy)(nvml_dev, unsigned long long *);
    nvml_ret (*power)(nvml_dev, unsigned *);
    size_t n;
    nv_gpu g[METER_MAX_OFFERS];
} nv_state;

static void *sym2(void *lib, const char *a, const char *b)
{
    void *p = dlsym(lib, a);
    return p || !b ? p : dlsym(lib, b);
}

static const char *nv_err(const nv_state *s, nvml_ret r)
{
    const char *e = s->error_string ? s->error_string(r) : NULL;
    return e ? e : "unknown NVML error";
}

static void nv_release(nv_state *s, bool initialized)
{
    if (initialized && s->shutdown)
        s->shutdown();
    if (s->lib)
        dlclose(s->lib);
    free(s);
}

static joule_status nv_open(joule_meter *m, void **state, meter_offer *offers, size_t *n_offers,
                            double *period, joule_error *err)
{
    *state = NULL;
    *n_offers = 0;
    *period = 0;
    const char *path = m->opt.nvml_lib && *m->opt.nvml_lib ? m->opt.nvml_lib : "libnvidia-ml.so.1";
    nv_state *s = calloc(1, sizeof *s);
    if (!s)
        return joule_fail(err, JOULE_ERR_NOMEM, "nvml: out of memory");
    s->meter = m;
    s->lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!s->lib) {
        const char *e = dlerror();
        meter_probe_add(m, "nvml", "", JOULE_PROBE_NOT_PRESENT, NULL, "cannot load %s: %s", path,
                        e ? e : "unknown error");
        nv_release(s, false);
        return JOULE_OK;
    }
    *(void **)&s->init = sym2(s->lib, "nvmlInit_v2", "nvmlInit");
    *(void **)&s->shutdown = sym2(s->lib, "nvmlShutdown", NULL);
    *(void **)&s->error_string = sym2(s->lib, "nvmlErrorString", NULL);
    *(void **)&s->count = sym2(s->lib, "nvmlDeviceGetCount_v2", "nvmlDeviceGetCount");
    *(void **)&s->handle = sym2(s->lib, "nvmlDeviceGetHandleByIndex_v2", "nvmlDeviceGetHandleByIndex");
    *(void **)&s->name = sym2(s->lib, "nvmlDeviceGetName", NULL);
    *(void **)&s->energy = sym2(s->lib, "nvmlDeviceGetTotalEnergyConsumption", NULL);
    *(void **)&s->power = sym2(s->lib, "nvmlDeviceGetPowerUsage", NULL);
    if (!s->init || !s->shutdown || !s->count || !s->handle || (!s->energy && !s->power)) {
        meter_probe_add(m, "nvml", "", JOULE_PROBE_ERROR, NULL,
                        "%s lacks nvmlInit, nvmlDeviceGetCount, nvmlDeviceGetHandleByIndex or both "
                        "energy and power calls", path);
        nv_release(s, false);
        return JOULE_OK;
    }
    nvml_ret r = s->init();
    if (r != NVML_OK) {
        joule_probe_state st = r == NVML_NO_PERMISSION ? JOULE_PROBE_PERMISSION
                               : r == NVML_DRIVER_NOT_LOADED ? JOULE_PROBE_NOT_PRESENT
                                                             : JOULE_PROBE_ERROR;
        meter_probe_add(m, "nvml", "", st,
                        st == JOULE_PROBE_PERMISSION ? "give the user read access to /dev/nvidiactl "
                                                       "and /dev/nvidia* (the video group)" : NULL,
                        "nvmlInit: %s", nv_err(s, r));
        nv_release(s, false);
        return JOULE_OK;
    }
    unsigned count = 0;
    r = s->count(&count);
    if (r != NVML_OK || count == 0) {
        meter_probe_add(m, "nvml", "", r == NVML_OK ? JOULE_PROBE_NOT_PRESENT : JOULE_PROBE_ERROR, NULL,
                        "%s", r == NVML_OK ? "NVML loaded, no GPU" : nv_err(s, r));
        nv_release(s, true);
        return JOULE_OK;
    }
    double t = m->clock.now(m->clock.ctx);
    for (unsigned i = 0; i < count; i++) {
        char item[16], gname[96] = "GPU";
        snprintf(item, sizeof item, "gpu%u", i);
        nvml_dev dev = NULL;
        r = s->handle(i, &dev);
        if (r != NVML_OK) {
            meter_probe_add(m, "nvml", item, JOULE_PROBE_ERROR, NULL, "handle: %s", nv_err(s, r));
            continue;
        }
        if (s->name && s->name(dev, gname, sizeof gname) != NVML_OK)
            snprintf(gname, sizeof gname, "GPU");
        gname[sizeof gname - 1] = 0;
        if (!m->opt.use_gpu) {
            meter_probe_add(m, "nvml", item, JOULE_PROBE_NOT_USED, NULL,
                            "%s: the cpu backend does not run on GPUs", gname);
            continue;
        }
        if (s->n == METER_MAX_OFFERS)
            break;
        nv_gpu *g = &s->g[s->n];
        g->dev = dev;
        unsigned long long mj = 0;
        nvml_ret re = s->energy ? s->energy(dev, &mj) : NVML_NOT_SUPPORTED;
        unsigned mw = 0;
        nvml_ret rp = NVML_NOT_SUPPORTED;
        size_t probe;
        if (re == NVML_OK) {
            g->energy_mode = true;
            g->e0_mj = mj;
            probe = meter_probe_add(m, "nvml", item, JOULE_PROBE_IN_USE, NULL,
                                    "%s: total energy counter (mJ)", gname);
        } else if (s->power && (rp = s->power(dev, &mw)) == NVML_OK) {
            g->last_w = 1e-3 * mw;
            g->last_t = t;
            probe = meter_probe_add(m, "nvml", item, JOULE_PROBE_IN_USE, NULL,
                                    "%s: power integrated every %.0f ms (no energy counter: %s)", gname,
                                    1e3 * NV_POWER_SAMPLE_S, nv_err(s, re));
            *period = NV_POWER_SAMPLE_S;
        } else {
            nvml_ret bad = rp != NVML_NOT_SUPPORTED ? rp : re;
            meter_probe_add(m, "nvml", item,
                            bad == NVML_NO_PERMISSION ? JOULE_PROBE_PERMISSION : JOULE_PROBE_NOT_PRESENT,
                            NULL, "%s: neither energy nor power readable (%s)", gname, nv_err(s, bad));
            continue;
        }
        meter_offer *o = &offers[s->n];
        memset(o, 0, sizeof *o);
        snprintf(o->name, sizeof o->name, "gpu%u (%.40s)", i, gname);
        snprintf(o->key, sizeof o->key, "gpu:%u", i);
        o->update_period_s = NV_ENERGY_PERIOD_S;
        o->probe = probe;
        s->n++;
    }
    if (s->n == 0) {
        nv_release(s, true);
        return JOULE_OK;
    }
    *n_offers = s->n;
    *state = s;
    return JOULE_OK;
}

static joule_status nv_read(void *state, double *joules, joule_error *err)
{
    nv_state *s = state;
    const joule_meter *m = s->meter;
    double t = m->clock.now(m->clock.ctx);
    for (size_t i = 0; i < s->n; i++) {
        nv_gpu *g = &s->g[i];
        if (g->energy_mode) {
            unsigned long long mj = 0;
            nvml_ret r = s->energy(g->dev, &mj);
            if (r != NVML_OK)
                return joule_fail(err, JOULE_ERR_IO, "nvml: gpu%zu energy: %s", i, nv_err(s, r));
            if (mj < g->e0_mj)
                return joule_fail(err, JOULE_ERR_IO, "nvml: gpu%zu energy counter went back "
                                  "(%llu mJ after %llu): the driver was reloaded", i, mj, g->e0_mj);
            g->acc_j = 1e-3 * (double)(mj - g->e0_mj);
        } else {
            unsigned mw = 0;
            nvml_ret r = s->power(g->dev, &mw);
            if (r != NVML_OK)
                return joule_fail(err, JOULE_ERR_IO, "nvml: gpu%zu power: %s", i, nv_err(s, r));
            double w = 1e-3 * mw;
            if (t > g->last_t)
                g->acc_j += 0.5 * (g->last_w + w) * (t - g->last_t);
            g->last_w = w;
            g->last_t = t;
        }
        joules[i] = g->acc_j;
    }
    return JOULE_OK;
}

static void nv_close(void *state)
{
    nv_release(state, true);
}

const meter_source_ops meter_nvml_source = {
    .name = "nvml",
    .open = nv_open,
    .read = nv_read,
    .close = nv_close,
    .is_gpu = true,
};

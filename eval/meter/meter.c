/* eval/meter/meter.c: the meter. Opens the sources in their fixed order (powercap, PAPI,
 * perf_event, NVML), keeps each physical domain once, watches new counters to prove they move,
 * falls back to the estimate only when nothing measures, and reads them all, from the caller's
 * thread and from a sampler thread that runs often enough that no counter wraps unseen. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eval/meter/meter_internal.h"

/* Defined in machine.c. */
int meter_cpu_model(const joule_file_reader *reader, char *buf, size_t size);

const char *joule_probe_state_name(joule_probe_state s)
{
    switch (s) {
    case JOULE_PROBE_IN_USE: return "in use";
    case JOULE_PROBE_NOT_PRESENT: return "not present";
    case JOULE_PROBE_PERMISSION: return "permission denied";
    case JOULE_PROBE_DISABLED: return "disabled";
    case JOULE_PROBE_NOT_COUNTING: return "not counting";
    case JOULE_PROBE_NOT_USED: return "not used";
    case JOULE_PROBE_ERROR: return "error";
    }
    return "unknown";
}

size_t meter_probe_add(joule_meter *m, const char *source, const char *item, joule_probe_state st,
                       const char *fix, const char *fmt, ...)
{
    size_t i = m->n_probes < JOULE_METER_MAX_PROBES ? m->n_probes++ : JOULE_METER_MAX_PROBES - 1;
    joule_probe *p = &m->probes[i];
    memset(p, 0, sizeof *p);
    snprintf(p->source, sizeof p->source, "%s", source);
    snprintf(p->item, sizeof p->item, "%s", item ? item : "");
    p->state = st;
    snprintf(p->fix, sizeof p->fix, "%s", fix ? fix : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->detail, sizeof p->detail, fmt, ap);
    va_end(ap);
    return i;
}

/* Appends " -- why" to a probe's detail and sets its state. */
static void probe_set(joule_meter *m, size_t i, joule_probe_state st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void probe_set(joule_meter *m, size_t i, joule_probe_state st, const char *fmt, ...)
{
    joule_probe *p = &m->probes[i];
    p->state = st;
    if (!fmt)
        return;
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    size_t n = strlen(p->detail);
    snprintf(p->detail + n, sizeof p->detail - n, "%s%s", n ? "; " : "", why);
}

/* Reads every source with offers in use (all of them when from_thread is false). */
static joule_status sample_locked(joule_meter *m, bool from_thread, joule_error *err)
{
    for (size_t s = 0; s < m->n_slots; s++) {
        meter_slot *sl = &m->slots[s];
        bool any = false;
        for (size_t k = 0; k < sl->n_offers; k++)
            any = any || sl->used[k];
        if (!any || !sl->state || (from_thread && sl->ops->main_thread_only))
            continue;
        double j[METER_MAX_OFFERS] = {0};
        joule_status st = sl->ops->read(sl->state, j, err);
        if (st)
            return st;
        memcpy(sl->last, j, sizeof j);
    }
    return JOULE_OK;
}

static void *sampler_main(void *arg)
{
    joule_meter *m = arg;
    pthread_mutex_lock(&m->lock);
    while (!m->stop) {
        joule_error e;
        if (sample_locked(m, true, &e) != JOULE_OK && !m->sampler_failed) {
            m->sampler_failed = true;
            m->sampler_err = e;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        double p = m->sample_period_s;
        long long ns = (long long)(p * 1e9);
        ts.tv_sec += (time_t)(ns / 1000000000LL);
        ts.tv_nsec += (long)(ns % 1000000000LL);
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        while (!m->stop && pthread_cond_timedwait(&m->wake, &m->lock, &ts) == 0) {
        }
    }
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

static bool key_is(const char *key, const char *prefix)
{
    return strncmp(key, prefix, strlen(prefix)) == 0;
}

static bool cpu_key(const char *key)
{
    return key_is(key, "cpu-") || strcmp(key, "platform") == 0;
}

/* Watches every offered counter for check_s and marks those that do not move (dead[]). */
static void check_counting(joule_meter *m, bool dead[METER_MAX_SOURCES][METER_MAX_OFFERS])
{
    double slowest = 0;
    bool any = false;
    for (size_t s = 0; s < m->n_slots; s++)
        for (size_t k = 0; k < m->slots[s].n_offers; k++) {
            any = true;
            if (m->slots[s].offers[k].update_period_s > slowest)
                slowest = m->slots[s].offers[k].update_period_s;
        }
    if (!any)
        return;
    double check = m->opt.check_s > 0 ? m->opt.check_s : fmax(0.02, 2 * slowest);
    double before[METER_MAX_SOURCES][METER_MAX_OFFERS] = {{0}};
    joule_error e;
    for (size_t s = 0; s < m->n_slots; s++) {
        meter_slot *sl = &m->slots[s];
        if (!sl->state || sl->ops->read(sl->state, before[s], &e) == JOULE_OK)
            continue;
        for (size_t k = 0; k < sl->n_offers; k++) {
            dead[s][k] = true;
            probe_set(m, sl->offers[k].probe, JOULE_PROBE_ERROR, "%s", e.msg);
        }
    }
    /* sleep in steps no longer than any source's sampling period, reading in between */
    double step = check;
    for (size_t s = 0; s < m->n_slots; s++)
        if (m->slots[s].sample_period_s > 0 && m->slots[s].sample_period_s < step)
            step = m->slots[s].sample_period_s;
    double t0 = m->clock.now(m->clock.ctx);
    for (int guard = 0; guard < 1000000; guard++) {
        double left = check - (m->clock.now(m->clock.ctx) - t0);
        if (left <= 1e-9) /* 1 ns: a clock far from 0 cannot resolve less */
            break;
        m->clock.sleep(m->clock.ctx, fmin(step, left));
        for (size_t s = 0; s < m->n_slots; s++) {
            meter_slot *sl = &m->slots[s];
            if (sl->state && sl->sample_period_s > 0)
                sl->ops->read(sl->state, sl->last, &e);
        }
    }
    for (size_t s = 0; s < m->n_slots; s++) {
        meter_slot *sl = &m->slots[s];
        if (!sl->state)
            continue;
        double after[METER_MAX_OFFERS] = {0};
        if (sl->ops->read(sl->state, after, &e) != JOULE_OK) {
            for (size_t k = 0; k < sl->n_offers; k++)
                if (!dead[s][k]) {
                    dead[s][k] = true;
                    probe_set(m, sl->offers[k].probe, JOULE_PROBE_ERROR, "%s", e.msg);
                }
            continue;
        }
        memcpy(sl->last, after, sizeof after);
        for (size_t k = 0; k < sl->n_offers; k++) {
            if (dead[s][k] || after[k] > before[s][k])
                continue;
            dead[s][k] = true;
            probe_set(m, sl->offers[k].probe, JOULE_PROBE_NOT_COUNTING,
                      "did not advance in %.0f ms (%.6g J, then %.6g J): a virtual machine's "
                      "counter often reads 0", 1e3 * check, before[s][k], after[k]);
        }
    }
}

/* Chooses the domains to count among those that move. CPU energy comes from the first source
 * (in probe order) that measures any CPU domain, so domains are never mixed across sources;
 * within it each physical domain (key) counts once, and psys ("platform") only when no package
 * zone is counted, since it contains them. GPUs are separate devices. */
static void accept_offers(joule_meter *m, bool dead[METER_MAX_SOURCES][METER_MAX_OFFERS])
{
    size_t cpu_slot = SIZE_MAX;
    for (size_t s = 0; s < m->n_slots && cpu_slot == SIZE_MAX; s++)
        for (size_t k = 0; k < m->slots[s].n_offers; k++)
            if (!dead[s][k] && cpu_key(m->slots[s].offers[k].key)) {
                cpu_slot = s;
                break;
            }
    bool package = false;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t s = 0; s < m->n_slots; s++) {
            meter_slot *sl = &m->slots[s];
            for (size_t k = 0; k < sl->n_offers; k++) {
                meter_offer *o = &sl->offers[k];
                bool platform = strcmp(o->key, "platform") == 0;
                if (platform != (pass == 1) || dead[s][k])
                    continue;
                if (m->opt.force_estimate) {
                    probe_set(m, o->probe, JOULE_PROBE_NOT_USED, "the estimate was asked for");
                    continue;
                }
                if (cpu_key(o->key) && s != cpu_slot) {
                    probe_set(m, o->probe, JOULE_PROBE_NOT_USED,
                              "CPU energy comes from %s, the first source that measures it",
                              m->slots[cpu_slot].ops->name);
                    continue;
                }
                if (platform && package) {
                    probe_set(m, o->probe, JOULE_PROBE_NOT_USED,
                              "psys covers the packages and more: not summed with them");
                    continue;
                }
                const meter_offer *dup = NULL;
                for (size_t k2 = 0; k2 < sl->n_offers && !dup; k2++)
                    if (sl->used[k2] && strcmp(sl->offers[k2].key, o->key) == 0)
                        dup = &sl->offers[k2];
                if (dup) {
                    probe_set(m, o->probe, JOULE_PROBE_NOT_USED, "same domain as %s: counted once",
                              dup->name);
                    continue;
                }
                sl->used[k] = true;
                package = package || key_is(o->key, "cpu-package:");
            }
        }
    }
}

static joule_status open_slot(joule_meter *m, const meter_source_ops *ops, joule_error *err)
{
    if (m->n_slots == METER_MAX_SOURCES)
        return JOULE_OK;
    meter_slot *sl = &m->slots[m->n_slots];
    memset(sl, 0, sizeof *sl);
    sl->ops = ops;
    joule_status st = ops->open(m, &sl->state, sl->offers, &sl->n_offers, &sl->sample_period_s, err);
    if (st)
        return st;
    if (sl->n_offers > METER_MAX_OFFERS)
        sl->n_offers = METER_MAX_OFFERS;
    m->n_slots++;
    return JOULE_OK;
}

static void build_domains(joule_meter *m)
{
    m->n_domains = 0;
    m->sample_period_s = 0;
    m->estimated = true;
    size_t off = 0;
    m->method[0] = 0;
    for (size_t s = 0; s < m->n_slots; s++) {
        meter_slot *sl = &m->slots[s];
        bool slot_used = false;
        for (size_t k = 0; k < sl->n_offers && m->n_domains < JOULE_METER_MAX_DOMAINS; k++) {
            if (!sl->used[k])
                continue;
            slot_used = true;
            meter_offer *o = &sl->offers[k];
            joule_domain *d = &m->domains[m->n_domains];
            snprintf(d->source, sizeof d->source, "%s", sl->ops->name);
            snprintf(d->name, sizeof d->name, "%s", o->name);
            d->estimated = o->estimated;
            d->update_period_s = o->update_period_s;
            m->dom_slot[m->n_domains] = s;
            m->dom_offer[m->n_domains] = k;
            m->n_domains++;
            m->estimated = m->estimated && o->estimated;
            if (m->probes[o->probe].state != JOULE_PROBE_IN_USE)
                m->probes[o->probe].state = JOULE_PROBE_IN_USE;
            if (!o->estimated && off < sizeof m->method)
                off += (size_t)snprintf(m->method + off, sizeof m->method - off, "%s%s %s",
                                        off ? " + " : "measured: ", sl->ops->name, o->name);
        }
        if (slot_used && sl->sample_period_s > 0 &&
            (m->sample_period_s == 0 || sl->sample_period_s < m->sample_period_s))
            m->sample_period_s = sl->sample_period_s;
    }
    if (m->n_domains == 0)
        m->estimated = false;
}

joule_status joule_meter_open(const joule_meter_options *opt, joule_meter **out, joule_error *err)
{
    *out = NULL;
    joule_meter_options dflt = {0};
    if (!opt)
        opt = &dflt;
    if (!(opt->cpu_watts >= 0) || !isfinite(opt->cpu_watts) || opt->cpu_watts > 10000)
        return joule_fail(err, JOULE_ERR_INVALID, "meter: --cpu-watts must be a power in watts, got %g",
                          opt->cpu_watts);
    if (!(opt->max_power_w >= 0) || !isfinite(opt->max_power_w) || !(opt->check_s >= 0) ||
        !isfinite(opt->check_s))
        return joule_fail(err, JOULE_ERR_INVALID, "meter: max power and check time must be >= 0");
    joule_meter *m = calloc(1, sizeof *m);
    if (!m)
        return joule_fail(err, JOULE_ERR_NOMEM, "meter: out of memory");
    m->opt = *opt;
    m->clock = opt->clock ? *opt->clock : joule_clock_system();
    m->reader = opt->reader ? *opt->reader : joule_file_reader_system();
    const char *root = opt->powercap_root;
    if (!root || !*root)
        root = getenv("JOULE_POWERCAP_ROOT");
    if (!root || !*root)
        root = "/sys/class/powercap";
    snprintf(m->powercap_root, sizeof m->powercap_root, "%s", root);
    if (opt->cpu_model)
        snprintf(m->cpu_model, sizeof m->cpu_model, "%s", opt->cpu_model);
    else if (meter_cpu_model(&m->reader, m->cpu_model, sizeof m->cpu_model) != 0)
        snprintf(m->cpu_model, sizeof m->cpu_model, "unknown");
    m->opt.powercap_root = m->powercap_root;
    m->opt.cpu_model = m->cpu_model;
    m->opt.clock = NULL;
    m->opt.reader = NULL;
    pthread_mutex_init(&m->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->wake, &ca);
    pthread_condattr_destroy(&ca);

    joule_status st = open_slot(m, &meter_powercap_source, err);
    if (!st && !opt->no_papi)
        st = open_slot(m, &meter_papi_source, err);
    if (!st && !opt->no_perf_event)
        st = open_slot(m, &meter_perf_source, err);
    if (!st)
        st = open_slot(m, &meter_nvml_source, err);
    if (st) {
        joule_meter_close(m);
        return st;
    }
    bool dead[METER_MAX_SOURCES][METER_MAX_OFFERS] = {{false}};
    check_counting(m, dead);
    accept_offers(m, dead);
    build_domains(m);
    if (m->n_domains == 0) {
        /* no counter measures: the estimate, and only then */
        st = open_slot(m, &meter_estimate_source, err);
        if (st) {
            joule_meter_close(m);
            return st;
        }
        meter_slot *sl = &m->slots[m->n_slots - 1];
        for (size_t k = 0; k < sl->n_offers; k++)
            sl->used[k] = true;
        if (sl->state)
            sl->ops->read(sl->state, sl->last, err);
        build_domains(m);
        snprintf(m->method, sizeof m->method, "estimated: cpu time x %.2f W per busy core (%s)",
                 m->cpu_watts, m->cpu_watts_entry);
    } else {
        m->cpu_watts = 0;
    }
    if (!m->opt.no_sampler && !opt->clock && m->sample_period_s > 0) {
        m->thread_running = pthread_create(&m->thread, NULL, sampler_main, m) == 0;
        if (!m->thread_running)
            meter_probe_add(m, "meter", "sampler", JOULE_PROBE_ERROR, NULL,
                            "sampler thread could not start: windows sample synchronously");
    }
    *out = m;
    return JOULE_OK;
}

void joule_meter_close(joule_meter *m)
{
    if (!m)
        return;
    if (m->thread_running) {
        pthread_mutex_lock(&m->lock);
        m->stop = true;
        pthread_cond_signal(&m->wake);
        pthread_mutex_unlock(&m->lock);
        pthread_join(m->thread, NULL);
    }
    for (size_t s = m->n_slots; s-- > 0;)
        if (m->slots[s].state)
            m->slots[s].ops->close(m->slots[s].state);
    pthread_cond_destroy(&m->wake);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

size_t joule_meter_n_probes(const joule_meter *m) { return m->n_probes; }
const joule_probe *joule_meter_probe(const joule_meter *m, size_t i)
{
    return i < m->n_probes ? &m->probes[i] : NULL;
}
size_t joule_meter_n_domains(const joule_meter *m) { return m->n_domains; }
const joule_domain *joule_meter_domain(const joule_meter *m, size_t i)
{
    return i < m->n_domains ? &m->domains[i] : NULL;
}
bool joule_meter_estimated(const joule_meter *m) { return m->estimated; }
const char *joule_meter_method(const joule_meter *m) { return m->method; }
double joule_meter_cpu_watts(const joule_meter *m) { return m->estimated ? m->cpu_watts : 0; }
double joule_meter_sample_period(const joule_meter *m) { return m->sample_period_s; }

double joule_meter_update_period(const joule_meter *m)
{
    double p = 0;
    for (size_t i = 0; i < m->n_domains; i++)
        if (m->domains[i].update_period_s > p)
            p = m->domains[i].update_period_s;
    return p;
}

joule_status joule_meter_sample(joule_meter *m, joule_error *err)
{
    pthread_mutex_lock(&m->lock);
    joule_status st = sample_locked(m, false, err);
    pthread_mutex_unlock(&m->lock);
    return st;
}

joule_status joule_meter_read(joule_meter *m, joule_meter_reading *out, joule_error *err)
{
    memset(out, 0, sizeof *out);
    if (m->opt.sync) {
        bool gpu = false;
        for (size_t i = 0; i < m->n_domains; i++)
            gpu = gpu || m->slots[m->dom_slot[i]].ops->is_gpu;
        if (gpu)
            m->opt.sync(m->opt.sync_ctx);
    }
    pthread_mutex_lock(&m->lock);
    joule_status st = JOULE_OK;
    if (m->sampler_failed) {
        if (err)
            *err = m->sampler_err;
        st = JOULE_ERR_IO;
    }
    if (!st)
        st = sample_locked(m, false, err);
    if (!st) {
        out->t = m->clock.now(m->clock.ctx);
        out->cpu_s = m->clock.cpu_time(m->clock.ctx);
        out->n_domains = m->n_domains;
        for (size_t i = 0; i < m->n_domains; i++) {
            out->domain_joules[i] = m->slots[m->dom_slot[i]].last[m->dom_offer[i]];
            out->joules += out->domain_joules[i];
        }
        for (size_t s = 0; s < m->n_slots && !out->has_hw; s++) {
            meter_slot *sl = &m->slots[s];
            double hw[3];
            if (sl->state && sl->ops->read_hw && sl->ops->read_hw(sl->state, hw)) {
                out->has_hw = true;
                out->instructions = hw[0];
                out->cycles = hw[1];
                out->llc_misses = hw[2];
            }
        }
    }
    pthread_mutex_unlock(&m->lock);
    return st;
}

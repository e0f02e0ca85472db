/* eval/meter/papi.c: source 2, PAPI (a meson feature, auto). Every component is listed: disabled
 * ones with PAPI's own reason. Energy events are taken from the rapl component (PACKAGE_ENERGY,
 * DRAM_ENERGY, PSYS_ENERGY per package, in the units PAPI gives: nJ) and from the perf_event
 * component's RAPL PMU events (rapl::RAPL_ENERGY_PKG/DRAM/PSYS, counts of 2^-32 J). The powercap
 * component reads the same files as source 1 and the nvml component the same counters as
 * source 3, so they are listed, not counted. Hardware counters (PAPI_TOT_INS, PAPI_TOT_CYC,
 * PAPI_L3_TCM) count the calling thread when the perf_event component works; they feed the
 * report and the graph estimate (LLC misses x 64 B of DRAM traffic). PAPI event sets belong to
 * the thread that made them, so this source is read from the caller's thread only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "eval/meter/meter_internal.h"

#if HAVE_PAPI
#include <papi.h>

#define PAPI_MAX_SETS 4

typedef struct papi_set {
    int set;
    int n;
    long long v0[METER_MAX_OFFERS];
    double scale[METER_MAX_OFFERS];
    size_t offer[METER_MAX_OFFERS];
} papi_set;

typedef struct papi_state {
    papi_set sets[PAPI_MAX_SETS];
    int n_sets;
    size_t n_offers;
    int hw_set;        /* PAPI_NULL when none */
    int hw_n;
    int hw_slot[3];    /* position of instructions, cycles, LLC misses in hw_set, or -1 */
} papi_state;

/* Joules per unit from PAPI's units string ("nJ", "uJ", "mJ", "J"); 0 when not energy. */
static double unit_scale(const char *units)
{
    if (strcmp(units, "nJ") == 0)
        return 1e-9;
    if (strcmp(units, "uJ") == 0)
        return 1e-6;
    if (strcmp(units, "mJ") == 0)
        return 1e-3;
    if (strcmp(units, "J") == 0)
        return 1.0;
    return 0;
}

/* Classifies an energy event of component comp: fills key and name; false when not counted. */
static bool energy_event(const char *comp, const char *sym, const char *units, double *scale,
                         char *key, size_t ks, char *name, size_t ns)
{
    const char *e = strstr(sym, ":::") ? strstr(sym, ":::") + 3 : sym;
    int pkg = 0;
    if (strcmp(comp, "rapl") == 0) {
        if (strstr(e, "_CNT"))
            return false;
        *scale = unit_scale(units);
        if (*scale == 0)
            return false;
        if (sscanf(e, "PACKAGE_ENERGY:PACKAGE%d", &pkg) == 1) {
            snprintf(key, ks, "cpu-package:%d", pkg);
            snprintf(name, ns, "package-%d", pkg);
        } else if (sscanf(e, "DRAM_ENERGY:PACKAGE%d", &pkg) == 1) {
            snprintf(key, ks, "cpu-dram:%d", pkg);
            snprintf(name, ns, "dram-%d", pkg);
        } else if (strncmp(e, "PSYS_ENERGY", 11) == 0) {
            snprintf(key, ks, "platform");
            snprintf(name, ns, "psys");
        } else {
            return false;
        }
        return true;
    }
    if (strcmp(comp, "perf_event") == 0 && strstr(sym, "RAPL_ENERGY_")) {
        const char *w = strstr(sym, "RAPL_ENERGY_") + 12;
        *scale = 0x1p-32;
        if (strncmp(w, "PKG", 3) == 0) {
            snprintf(key, ks, "cpu-package:0");
            snprintf(name, ns, "package-0");
        } else if (strncmp(w, "DRAM", 4) == 0) {
            snprintf(key, ks, "cpu-dram:0");
            snprintf(name, ns, "dram-0");
        } else if (strncmp(w, "PSYS", 4) == 0) {
            snprintf(key, ks, "platform");
            snprintf(name, ns, "psys");
        } else {
            return false;
        }
        return true;
    }
    return false;
}

static void papi_release(papi_state *s)
{
    for (int i = 0; i < s->n_sets; i++) {
        long long dummy[METER_MAX_OFFERS];
        PAPI_stop(s->sets[i].set, dummy);
        PAPI_cleanup_eventset(s->sets[i].set);
        PAPI_destroy_eventset(&s->sets[i].set);
    }
    if (s->hw_set != PAPI_NULL) {
        long long dummy[3];
        PAPI_stop(s->hw_set, dummy);
        PAPI_cleanup_eventset(s->hw_set);
        PAPI_destroy_eventset(&s->hw_set);
    }
    free(s);
    PAPI_shutdown();
}

static void open_hw(joule_meter *m, papi_state *s)
{
    static const int events[3] = {PAPI_TOT_INS, PAPI_TOT_CYC, PAPI_L3_TCM};
    static const char *names[3] = {"PAPI_TOT_INS", "PAPI_TOT_CYC", "PAPI_L3_TCM"};
    s->hw_set = PAPI_NULL;
    s->hw_slot[0] = s->hw_slot[1] = s->hw_slot[2] = -1;
    char missing[128] = "";
    int set = PAPI_NULL;
    if (PAPI_create_eventset(&set) != PAPI_OK) {
        meter_probe_add(m, "papi", "hardware counters", JOULE_PROBE_ERROR, NULL, "no event set");
        return;
    }
    int n = 0;
    for (int i = 0; i < 3; i++) {
        int r = PAPI_query_event(events[i]);
        if (r == PAPI_OK)
            r = PAPI_add_event(set, events[i]);
        if (r == PAPI_OK) {
            s->hw_slot[i] = n++;
        } else {
            size_t l = strlen(missing);
            snprintf(missing + l, sizeof missing - l, "%s%s (%s)", l ? ", " : "", names[i], PAPI_strerror(r));
        }
    }
    if (n > 0 && PAPI_start(set) == PAPI_OK) {
        s->hw_set = set;
        s->hw_n = n;
        meter_probe_add(m, "papi", "hardware counters", JOULE_PROBE_IN_USE, NULL,
                        "instructions, cycles and LLC misses of the calling thread%s%s",
                        missing[0] ? "; missing: " : "", missing);
        return;
    }
    PAPI_cleanup_eventset(set);
    PAPI_destroy_eventset(&set);
    meter_probe_add(m, "papi", "hardware counters", JOULE_PROBE_NOT_PRESENT, NULL,
                    "no hardware counter presets: %s", missing[0] ? missing : "could not start");
}

static joule_status papi_open(joule_meter *m, void **state, meter_offer *offers, size_t *n_offers,
                              double *period, joule_error *err)
{
    *state = NULL;
    *n_offers = 0;
    *period = 0;
    int r = PAPI_is_initialized() ? (int)PAPI_VER_CURRENT : PAPI_library_init(PAPI_VER_CURRENT);
    if (r != PAPI_VER_CURRENT) {
        meter_probe_add(m, "papi", "", JOULE_PROBE_ERROR, NULL, "PAPI_library_init: %s",
                        r > 0 ? "version mismatch" : PAPI_strerror(r));
        return JOULE_OK;
    }
    papi_state *s = calloc(1, sizeof *s);
    if (!s) {
        PAPI_shutdown();
        return joule_fail(err, JOULE_ERR_NOMEM, "papi: out of memory");
    }
    s->hw_set = PAPI_NULL;
    int nc = PAPI_num_components();
    for (int c = 0; c < nc; c++) {
        const PAPI_component_info_t *ci = PAPI_get_component_info(c);
        if (!ci)
            continue;
        if (ci->disabled) {
            meter_probe_add(m, "papi", ci->name, JOULE_PROBE_DISABLED,
                            strcmp(ci->name, "rapl") == 0 ? "modprobe msr and give read access to "
                                                             "/dev/cpu/*/msr" : NULL,
                            "%s", ci->disabled_reason[0] ? ci->disabled_reason : "disabled");
            continue;
        }
        int set = PAPI_NULL;
        papi_set *ps = s->n_sets < PAPI_MAX_SETS ? &s->sets[s->n_sets] : NULL;
        int found = 0, used = 0;
        int code = PAPI_NATIVE_MASK;
        bool other_door = strcmp(ci->name, "powercap") == 0 || strcmp(ci->name, "nvml") == 0;
        if (PAPI_enum_cmp_event(&code, PAPI_ENUM_FIRST, c) == PAPI_OK) {
            do {
                PAPI_event_info_t info;
                if (PAPI_get_event_info(code, &info) != PAPI_OK)
                    continue;
                bool energy_like = strstr(info.symbol, "ENERGY") || strstr(info.symbol, "energy");
                if (other_door) {
                    found += energy_like;
                    continue;
                }
                double scale = 0;
                char key[40], name[64];
                if (!energy_event(ci->name, info.symbol, info.units, &scale, key, sizeof key, name,
                                  sizeof name))
                    continue;
                found++;
                if (!ps || s->n_offers == METER_MAX_OFFERS)
                    continue;
                if (set == PAPI_NULL && PAPI_create_eventset(&set) != PAPI_OK)
                    break;
                r = PAPI_add_event(set, code);
                if (r != PAPI_OK) {
                    meter_probe_add(m, "papi", info.symbol, JOULE_PROBE_ERROR, NULL, "PAPI_add_event: %s",
                                    PAPI_strerror(r));
                    continue;
                }
                meter_offer *o = &offers[s->n_offers];
                memset(o, 0, sizeof *o);
                snprintf(o->name, sizeof o->name, "%s", name);
                snprintf(o->key, sizeof o->key, "%s", key);
                o->update_period_s = 0.001;
                o->probe = meter_probe_add(m, "papi", info.symbol, JOULE_PROBE_IN_USE, NULL,
                                           "%s component: %s (%s)", ci->name, name,
                                           info.units[0] ? info.units : "2^-32 J");
                ps->scale[ps->n] = scale;
                ps->offer[ps->n] = s->n_offers++;
                ps->n++;
                used++;
            } while (PAPI_enum_cmp_event(&code, PAPI_ENUM_EVENTS, c) == PAPI_OK);
        }
        if (other_door) {
            meter_probe_add(m, "papi", ci->name, JOULE_PROBE_NOT_USED, NULL,
                            "%d energy events: the same counters as the %s source, counted there",
                            found, strcmp(ci->name, "nvml") == 0 ? "nvml" : "powercap");
            continue;
        }
        if (used > 0 && (r = PAPI_start(set)) == PAPI_OK && PAPI_read(set, ps->v0) == PAPI_OK) {
            ps->set = set;
            s->n_sets++;
        } else {
            if (used > 0) {
                for (int i = 0; i < ps->n; i++) {
                    joule_probe *p = &m->probes[offers[ps->offer[i]].probe];
                    p->state = JOULE_PROBE_ERROR;
                    size_t l = strlen(p->detail);
                    snprintf(p->detail + l, sizeof p->detail - l, "; PAPI_start: %s", PAPI_strerror(r));
                }
                s->n_offers -= (size_t)ps->n;
                memset(ps, 0, sizeof *ps);
            }
            if (set != PAPI_NULL) {
                PAPI_cleanup_eventset(set);
                PAPI_destroy_eventset(&set);
            }
            if (found == 0)
                meter_probe_add(m, "papi", ci->name, JOULE_PROBE_NOT_USED, NULL,
                                "enabled, no energy events (%d native events)", ci->num_native_events);
        }
    }
    open_hw(m, s);
    if (s->n_offers == 0 && s->hw_set == PAPI_NULL) {
        papi_release(s);
        return JOULE_OK;
    }
    *n_offers = s->n_offers;
    *state = s;
    return JOULE_OK;
}

static joule_status papi_read(void *state, double *joules, joule_error *err)
{
    papi_state *s = state;
    for (int i = 0; i < s->n_sets; i++) {
        papi_set *ps = &s->sets[i];
        long long v[METER_MAX_OFFERS];
        int r = PAPI_read(ps->set, v);
        if (r != PAPI_OK)
            return joule_fail(err, JOULE_ERR_IO, "papi: PAPI_read: %s", PAPI_strerror(r));
        for (int k = 0; k < ps->n; k++)
            joules[ps->offer[k]] = (double)(v[k] - ps->v0[k]) * ps->scale[k];
    }
    return JOULE_OK;
}

static bool papi_read_hw(void *state, double hw[3])
{
    papi_state *s = state;
    if (s->hw_set == PAPI_NULL)
        return false;
    long long v[3] = {0, 0, 0};
    if (PAPI_read(s->hw_set, v) != PAPI_OK)
        return false;
    for (int i = 0; i < 3; i++)
        hw[i] = s->hw_slot[i] >= 0 ? (double)v[s->hw_slot[i]] : -1.0;
    return true;
}

static void papi_close(void *state)
{
    papi_release(state);
}

const meter_source_ops meter_papi_source = {
    .name = "papi",
    .open = papi_open,
    .read = papi_read,
    .close = papi_close,
    .read_hw = papi_read_hw,
    .main_thread_only = true,
};

#else /* !HAVE_PAPI */

static joule_status papi_open(joule_meter *m, void **state, meter_offer *offers, size_t *n_offers,
                              double *period, joule_error *err)
{
    (void)offers;
    (void)err;
    *state = NULL;
    *n_offers = 0;
    *period = 0;
    meter_probe_add(m, "papi", "", JOULE_PROBE_NOT_PRESENT,
                    "install libpapi-dev and configure with meson -Dpapi=enabled",
                    "joule was built without PAPI");
    return JOULE_OK;
}

static joule_status papi_read(void *state, double *joules, joule_error *err)
{
    (void)state;
    (void)joules;
    (void)err;
    return JOULE_OK;
}

static void papi_close(void *state)
{
    (void)state;
}

const meter_source_ops meter_papi_source = {
    .name = "papi",
    .open = papi_open,
    .read = papi_read,
    .close = papi_close,
};
#endif

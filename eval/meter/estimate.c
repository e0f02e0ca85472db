/* eval/meter/estimate.c: source 4, the estimate the meter falls back to when no counter measures
 * (model (a)): energy = process CPU time x active power per busy core. The power comes from
 * --cpu-watts, or from the table below: the vendor's TDP divided by its core count, a generous
 * figure for one fully busy core (it also carries a share of uncore power; with SMT two busy
 * hardware threads on one core count twice, so it errs high). CPU time includes every thread of
 * the process (OpenMP workers spinning included: they burn power too). The domain is marked
 * estimated and the meter never sums it with a counter. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/meter/meter_internal.h"

/* TDP (W) and cores from each vendor's product page. Matched as a substring of the CPU model
 * string with "(R)", "(TM)" and repeated spaces removed. */
typedef struct cpu_power {
    const char *key;
    double tdp_w;
    int cores;
} cpu_power;

static const cpu_power cpu_table[] = {
    {"EPYC 9654", 360, 96},
    {"EPYC 7763", 280, 64},
    {"EPYC 7742", 225, 64},
    {"EPYC 7R13", 280, 48},
    {"Xeon Platinum 8480", 350, 56},
    {"Xeon Platinum 8380", 270, 40},
    {"Xeon Platinum 8375C", 300, 32},
    {"Xeon Platinum 8275CL", 240, 24},
    {"Xeon Platinum 8259CL", 210, 24},
    {"Xeon Gold 6248", 150, 20},
    {"Xeon CPU E5-2686 v4", 145, 18},
    {"Core i9-13900K", 125, 24},
    {"Core i7-12700", 65, 12},
    {"Ryzen 9 7950X", 170, 16},
    {"Ryzen 9 5950X", 105, 16},
};

/* For CPUs not in the table: about the median TDP per core of the server parts above. */
#define CPU_WATTS_DEFAULT 7.0

static void normalize(const char *in, char *out, size_t size)
{
    size_t n = 0;
    for (const char *p = in; *p && n + 1 < size;) {
        if (strncmp(p, "(R)", 3) == 0 || strncmp(p, "(r)", 3) == 0) {
            p += 3;
            continue;
        }
        if (strncmp(p, "(TM)", 4) == 0 || strncmp(p, "(tm)", 4) == 0) {
            p += 4;
            continue;
        }
        if (*p == ' ' && (n == 0 || out[n - 1] == ' ')) {
            p++;
            continue;
        }
        out[n++] = *p++;
    }
    while (n && out[n - 1] == ' ')
        n--;
    out[n] = 0;
}

double joule_cpu_watts_per_core(const char *cpu_model, const char **entry)
{
    char norm[256];
    normalize(cpu_model ? cpu_model : "", norm, sizeof norm);
    for (size_t i = 0; i < sizeof cpu_table / sizeof *cpu_table; i++)
        if (strstr(norm, cpu_table[i].key)) {
            if (entry)
                *entry = cpu_table[i].key;
            return cpu_table[i].tdp_w / cpu_table[i].cores;
        }
    if (entry)
        *entry = "default";
    return CPU_WATTS_DEFAULT;
}

typedef struct est_state {
    const joule_meter *meter;
    double cpu0, watts;
} est_state;

static joule_status est_open(joule_meter *m, void **state, meter_offer *offers, size_t *n_offers,
                             double *period, joule_error *err)
{
    *period = 0;
    est_state *s = calloc(1, sizeof *s);
    if (!s)
        return joule_fail(err, JOULE_ERR_NOMEM, "estimate: out of memory");
    s->meter = m;
    s->cpu0 = m->clock.cpu_time(m->clock.ctx);
    if (m->opt.cpu_watts > 0) {
        s->watts = m->opt.cpu_watts;
        snprintf(m->cpu_watts_entry, sizeof m->cpu_watts_entry, "--cpu-watts");
    } else {
        const char *entry = NULL;
        s->watts = joule_cpu_watts_per_core(m->cpu_model, &entry);
        if (strcmp(entry, "default") == 0)
            snprintf(m->cpu_watts_entry, sizeof m->cpu_watts_entry,
                     "default: no table entry for '%.60s'", m->cpu_model);
        else
            snprintf(m->cpu_watts_entry, sizeof m->cpu_watts_entry, "table: %s TDP / cores", entry);
    }
    m->cpu_watts = s->watts;
    meter_offer *o = &offers[0];
    memset(o, 0, sizeof *o);
    snprintf(o->name, sizeof o->name, "cpu (estimated)");
    snprintf(o->key, sizeof o->key, "estimate");
    o->estimated = true;
    o->probe = meter_probe_add(m, "estimate", "cpu", JOULE_PROBE_IN_USE, NULL,
                               "no counter measures here: cpu time x %.2f W per busy core (%s)",
                               s->watts, m->cpu_watts_entry);
    *n_offers = 1;
    *state = s;
    return JOULE_OK;
}

static joule_status est_read(void *state, double *joules, joule_error *err)
{
    (void)err;
    est_state *s = state;
    const joule_meter *m = s->meter;
    joules[0] = (m->clock.cpu_time(m->clock.ctx) - s->cpu0) * s->watts;
    return JOULE_OK;
}

static void est_close(void *state)
{
    free(state);
}

const meter_source_ops meter_estimate_source = {
    .name = "estimate",
    .open = est_open,
    .read = est_read,
    .close = est_close,
};

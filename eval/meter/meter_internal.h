/* eval/meter/meter_internal.h: the one interface every energy source implements, and the meter
 * they report to. A source's open() probes (adding joule_probe records), then offers domains;
 * the meter keeps each physical domain once (by key), proves new counters move, and from then
 * on calls read() for cumulative joules per offered domain. Sources never see each other. */
#ifndef JOULE_METER_INTERNAL_H
#define JOULE_METER_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "joule/meter.h"

#define METER_MAX_OFFERS 16
#define METER_MAX_SOURCES 6

/* A domain a source can count. key names the physical domain: "cpu-package:0",
 * "cpu-package:0:die:1", "cpu-dram:0", "platform" (psys: the package and more), "gpu:0". */
typedef struct meter_offer {
    char name[64];
    char key[40];
    double update_period_s;
    bool estimated;
    size_t probe; /* the joule_probe record describing it (its state is set by the meter) */
} meter_offer;

typedef struct meter_source_ops {
    const char *name;
    /* Probes, records what it found (meter_probe_add) and fills offers. *state stays NULL when
     * nothing can be offered. *sample_period_s: how often read() must run so no wrap is missed
     * or power is integrated (0: never). Returns an error only for allocation failures. */
    joule_status (*open)(joule_meter *m, void **state, meter_offer *offers, size_t *n_offers,
                         double *sample_period_s, joule_error *err);
    /* Cumulative joules per offer since open, folding wraps. */
    joule_status (*read)(void *state, double *joules, joule_error *err);
    void (*close)(void *state);
    /* Optional: hardware counters of the calling thread (instructions, cycles, LLC misses);
     * returns false when none. */
    bool (*read_hw)(void *state, double hw[3]);
    bool main_thread_only; /* read() must not run on the sampler thread (PAPI event sets) */
    bool is_gpu;           /* sync the device before reading */
} meter_source_ops;

extern const meter_source_ops meter_powercap_source;
extern const meter_source_ops meter_papi_source;
extern const meter_source_ops meter_perf_source;
extern const meter_source_ops meter_nvml_source;
extern const meter_source_ops meter_estimate_source;

typedef struct meter_slot {
    const meter_source_ops *ops;
    void *state;
    meter_offer offers[METER_MAX_OFFERS];
    size_t n_offers;
    bool used[METER_MAX_OFFERS];
    double sample_period_s;
    double last[METER_MAX_OFFERS]; /* latest cumulative joules per offer */
} meter_slot;

struct joule_meter {
    joule_meter_options opt;
    joule_clock clock;
    joule_file_reader reader;
    char powercap_root[512];
    char cpu_model[128];
    double cpu_watts;
    char cpu_watts_entry[96];

    joule_probe probes[JOULE_METER_MAX_PROBES];
    size_t n_probes;
    meter_slot slots[METER_MAX_SOURCES];
    size_t n_slots;
    /* domains in use: slot and offer index of each */
    joule_domain domains[JOULE_METER_MAX_DOMAINS];
    size_t dom_slot[JOULE_METER_MAX_DOMAINS], dom_offer[JOULE_METER_MAX_DOMAINS];
    size_t n_domains;
    bool estimated;
    char method[256];
    double sample_period_s;

    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    bool thread_running, stop;
    bool sampler_failed;    /* the sampler thread's first error, reported by the next read */
    joule_error sampler_err;
};

/* Appends a probe record; returns its index (the last slot is reused when full). */
size_t meter_probe_add(joule_meter *m, const char *source, const char *item, joule_probe_state st,
                       const char *fix, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Reads path through the meter's reader into buf; returns 0 or an errno value. Trailing
 * whitespace is stripped. */
int meter_read_text(const joule_meter *m, const char *path, char *buf, size_t size);
/* Reads an unsigned decimal file; returns 0, an errno value, or EINVAL when malformed. */
int meter_read_u64(const joule_meter *m, const char *path, unsigned long long *out);

#endif

/* joule/meter.h: energy counters behind one interface. A meter probes every source in a fixed
 * order and records what each probe found, then reads the ones that measure:
 *
 *   1. powercap sysfs (/sys/class/powercap/intel-rapl:*; AMD too on Linux >= 5.8): package and
 *      dram zones, each physical domain counted once, wraparound folded with max_energy_range_uj;
 *   2. PAPI (when built with it): energy events of the rapl component or of the perf_event RAPL
 *      PMU, and hardware counters (instructions, cycles, LLC misses); disabled components are
 *      listed with PAPI's own reason. The perf_event RAPL PMU is also opened directly when PAPI
 *      cannot see it;
 *   3. NVML, loaded at run time (dlopen of libnvidia-ml.so.1): per-GPU total energy (Volta and
 *      later) or integrated power, used with the CUDA backend;
 *   4. an estimate, only when no counter measures: CPU time x active power per core (from
 *      --cpu-watts or a table keyed by the CPU model). Estimated domains are labelled as such
 *      and never summed with measured ones.
 *
 * A counter that opens but does not move (a virtual machine's RAPL PMU reads 0) is reported as
 * "not counting" and left out. Time and every file read go through a joule_clock and a
 * joule_file_reader given in the options, so tests can script both; there is no global state.
 * When a counter could wrap between two window boundaries, a background thread samples it more
 * often than the fastest possible wrap (max range / 500 W). */
#ifndef JOULE_METER_H
#define JOULE_METER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "joule/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Time for the meter and the trials. now: monotonic seconds; cpu_time: CPU seconds of the whole
 * process (all threads); sleep: wait about s seconds. joule_clock_system() gives the real one. */
typedef struct joule_clock {
    void *ctx;
    double (*now)(void *ctx);
    double (*cpu_time)(void *ctx);
    void (*sleep)(void *ctx, double s);
} joule_clock;
joule_clock joule_clock_system(void);

/* Reads a small text file (sysfs, /proc): at most size - 1 bytes, NUL-terminated. Returns 0 or
 * an errno value (ENOENT, EACCES, ...). joule_file_reader_system() uses open/read. */
typedef struct joule_file_reader {
    void *ctx;
    int (*read)(void *ctx, const char *path, char *buf, size_t size);
} joule_file_reader;
joule_file_reader joule_file_reader_system(void);

/* What one probe found. A source may leave several records (one per zone, component or GPU). */
typedef enum joule_probe_state {
    JOULE_PROBE_IN_USE = 0,      /* present and counted */
    JOULE_PROBE_NOT_PRESENT,     /* nothing there (no directory, no library, no device) */
    JOULE_PROBE_PERMISSION,      /* present but not readable: fix says how */
    JOULE_PROBE_DISABLED,        /* present but switched off (PAPI's reason in detail) */
    JOULE_PROBE_NOT_COUNTING,    /* opens but did not advance while probed */
    JOULE_PROBE_NOT_USED,        /* readable, left out: counted elsewhere, or not needed */
    JOULE_PROBE_ERROR            /* failed in some other way (detail says how) */
} joule_probe_state;
const char *joule_probe_state_name(joule_probe_state s); /* "in use", "not present", ... */

typedef struct joule_probe {
    char source[16];   /* "powercap", "papi", "perf_event", "nvml", "estimate" */
    char item[64];     /* zone, component, event or GPU; "" for the source as a whole */
    joule_probe_state state;
    char detail[256];
    char fix[320];     /* how to make it work, or "" */
} joule_probe;

/* One energy domain in use. */
typedef struct joule_domain {
    char source[16];        /* as in joule_probe */
    char name[64];          /* "package-0", "dram-0", "gpu0 (NVIDIA H100)", "cpu (estimated)" */
    bool estimated;         /* from a model, not a counter */
    double update_period_s; /* how often the counter changes (0.001 RAPL, 0.1 NVML, 0: model) */
} joule_domain;

#define JOULE_METER_MAX_DOMAINS 32
#define JOULE_METER_MAX_PROBES 96

/* Active power per busy core the estimate uses, from a documented table keyed by the CPU model
 * string ("model name" in /proc/cpuinfo): TDP / cores of that part. *entry gets the table key
 * matched, or "default" with the documented default. */
double joule_cpu_watts_per_core(const char *cpu_model, const char **entry);

typedef struct joule_meter_options {
    const char *powercap_root; /* NULL: $JOULE_POWERCAP_ROOT, else /sys/class/powercap */
    const char *nvml_lib;      /* NULL: libnvidia-ml.so.1 */
    bool use_gpu;              /* count GPUs (CUDA backend); else NVML is probed and listed only */
    bool no_papi;              /* skip PAPI (and its hardware counters) */
    bool no_perf_event;        /* skip the direct perf_event RAPL PMU */
    bool force_estimate;       /* probe and list counters, but measure with the estimate */
    double cpu_watts;          /* estimate: W per busy core; 0: joule_cpu_watts_per_core() */
    const char *cpu_model;     /* for the table; NULL: read from /proc/cpuinfo */
    double max_power_w;        /* plausible peak power of one domain, for wrap timing (0: 500) */
    bool no_sampler;           /* no sampler thread: counters are read only when the caller reads
                                  or samples (the trials sample between inferences). Without
                                  it, a thread samples so no wrap is missed (real clock only) */
    double check_s;            /* how long a new counter must be watched to prove it moves
                                  (0: max(20 ms, 2 update periods)) */
    const joule_clock *clock;         /* NULL: joule_clock_system() */
    const joule_file_reader *reader;  /* NULL: joule_file_reader_system() */
    void (*sync)(void *ctx);   /* called before each GPU reading (device synchronize), or NULL */
    void *sync_ctx;
} joule_meter_options;

typedef struct joule_meter joule_meter;

/* A cumulative reading since the meter opened. */
typedef struct joule_meter_reading {
    double t;      /* clock seconds */
    double cpu_s;  /* process CPU seconds */
    double joules; /* sum over the domains in use */
    size_t n_domains;
    double domain_joules[JOULE_METER_MAX_DOMAINS];
    bool has_hw;   /* PAPI hardware counters below are valid (calling thread only) */
    double instructions, cycles, llc_misses;
} joule_meter_reading;

/* Probes every source in order (watching new counters for opt->check_s to prove they count)
 * and starts the sampler when asked. Fails only on allocation failure or bad options: a
 * machine without counters gets the estimate. */
joule_status joule_meter_open(const joule_meter_options *opt, joule_meter **out, joule_error *err);
void joule_meter_close(joule_meter *m);

size_t joule_meter_n_probes(const joule_meter *m);
const joule_probe *joule_meter_probe(const joule_meter *m, size_t i);
size_t joule_meter_n_domains(const joule_meter *m);
const joule_domain *joule_meter_domain(const joule_meter *m, size_t i);
/* True when every domain in use is a model, not a counter. */
bool joule_meter_estimated(const joule_meter *m);
/* One line naming what measures: "powercap: package-0 + dram-0" or
 * "estimate: cpu time x 7.00 W per core (table: Xeon Gold 6248)". */
const char *joule_meter_method(const joule_meter *m);
/* Slowest update period among the domains in use (0 for a pure estimate). A window must last at
 * least 100 of them. */
double joule_meter_update_period(const joule_meter *m);
/* Watts per busy core of the estimate (0 when counters measure). */
double joule_meter_cpu_watts(const joule_meter *m);
/* Sampling period the counters need so no wrap is missed (0: none needed). */
double joule_meter_sample_period(const joule_meter *m);

/* Reads every counter once and folds wraps; the sampler thread calls this. Thread-safe. */
joule_status joule_meter_sample(joule_meter *m, joule_error *err);
/* Samples (after synchronizing the GPU when one is counted) and fills *out. Thread-safe. */
joule_status joule_meter_read(joule_meter *m, joule_meter_reading *out, joule_error *err);

#ifdef __cplusplus
}
#endif
#endif

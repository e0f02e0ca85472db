/* eval/meter/perf_rapl.c: part of source 2, the perf_event RAPL PMU ("power" under
 * /sys/bus/event_source/devices) opened directly with perf_event_open when PAPI does not see it.
 * Events energy-pkg, energy-ram and energy-psys, one per package (the PMU's cpumask names one CPU
 * per package); energy-cores and energy-gpu lie inside the package and are not summed. Counts are
 * 64-bit (the kernel folds the 32-bit MSR), in units of the event's .scale file (2^-32 J). */
#include <dirent.h>
#include <errno.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "eval/meter/meter_internal.h"

#define PERF_DIR "/sys/bus/event_source/devices/power"

static const char perf_fix[] =
    "system-wide perf events need CAP_PERFMON: sudo setcap cap_perfmon+ep $(command -v joule), or "
    "sudo sysctl kernel.perf_event_paranoid=0";

typedef struct perf_ev {
    int fd;
    double scale;
    unsigned long long first;
} perf_ev;

typedef struct perf_state {
    size_t n;
    perf_ev ev[METER_MAX_OFFERS];
} perf_state;

static int event_filter(const struct dirent *d)
{
    return strncmp(d->d_name, "energy-", 7) == 0 && !strchr(d->d_name, '.');
}

/* Parses a cpulist ("0", "0,28", "0-1") into cpus; returns the count. */
static size_t parse_cpus(const char *s, int *cpus, size_t max)
{
    size_t n = 0;
    while (*s && n < max) {
        char *end;
        long a = strtol(s, &end, 10);
        if (end == s || a < 0)
            break;
        long b = a;
        if (*end == '-') {
            s = end + 1;
            b = strtol(s, &end, 10);
            if (end == s || b < a)
                break;
        }
        for (long c = a; c <= b && n < max; c++)
            cpus[n++] = (int)c;
        s = *end == ',' ? end + 1 : end;
        if (*end != ',')
            break;
    }
    return n;
}

static unsigned long long read_count(int fd, bool *ok)
{
    unsigned long long v = 0;
    *ok = read(fd, &v, sizeof v) == (ssize_t)sizeof v;
    return v;
}

static joule_status perf_open(joule_meter *m, void **state, meter_offer *offers, size_t *n_offers,
                              double *period, joule_error *err)
{
    *state = NULL;
    *n_offers = 0;
    *period = 0;
    char buf[256];
    int r = meter_read_text(m, PERF_DIR "/type", buf, sizeof buf);
    if (r) {
        meter_probe_add(m, "perf_event", "", JOULE_PROBE_NOT_PRESENT, NULL,
                        "no RAPL PMU (%s: %s)", PERF_DIR, strerror(r));
        return JOULE_OK;
    }
    int type = atoi(buf);
    int cpus[64];
    size_t n_cpus = 0;
    if (meter_read_text(m, PERF_DIR "/cpumask", buf, sizeof buf) == 0)
        n_cpus = parse_cpus(buf, cpus, 64);
    if (n_cpus == 0) {
        cpus[0] = 0;
        n_cpus = 1;
    }
    struct dirent **list = NULL;
    int nl = scandir(PERF_DIR "/events", &list, event_filter, alphasort);
    if (nl <= 0) {
        meter_probe_add(m, "perf_event", "", JOULE_PROBE_NOT_PRESENT, NULL,
                        "the RAPL PMU lists no energy events");
        free(list);
        return JOULE_OK;
    }
    perf_state *ps = calloc(1, sizeof *ps);
    if (!ps) {
        for (int i = 0; i < nl; i++)
            free(list[i]);
        free(list);
        return joule_fail(err, JOULE_ERR_NOMEM, "perf_event: out of memory");
    }
    for (int i = 0; i < nl; i++) {
        const char *ev = list[i]->d_name;
        char path[512], item[64];
        snprintf(path, sizeof path, PERF_DIR "/events/%s", ev);
        unsigned long long config = 0;
        const char *eq;
        if (meter_read_text(m, path, buf, sizeof buf) != 0 || !(eq = strstr(buf, "event=")) ||
            sscanf(eq + 6, "%llx", &config) != 1) {
            meter_probe_add(m, "perf_event", ev, JOULE_PROBE_ERROR, NULL, "%s: no event= config", path);
            continue;
        }
        snprintf(path, sizeof path, PERF_DIR "/events/%s.scale", ev);
        double scale = 0x1p-32;
        if (meter_read_text(m, path, buf, sizeof buf) == 0 && atof(buf) > 0)
            scale = atof(buf);
        const char *what = ev + 7;
        bool inside = strcmp(what, "cores") == 0 || strcmp(what, "gpu") == 0;
        for (size_t c = 0; c < n_cpus; c++) {
            snprintf(item, sizeof item, "%.40s cpu%d", ev, cpus[c]);
            if (inside) {
                meter_probe_add(m, "perf_event", item, JOULE_PROBE_NOT_USED, NULL,
                                "inside the package: not summed with it");
                continue;
            }
            bool psys = strcmp(what, "psys") == 0;
            if (psys && c > 0)
                break; /* one platform counter */
            struct perf_event_attr attr;
            memset(&attr, 0, sizeof attr);
            attr.type = (unsigned)type;
            attr.size = sizeof attr;
            attr.config = config;
            int fd = (int)syscall(SYS_perf_event_open, &attr, -1, cpus[c], -1, PERF_FLAG_FD_CLOEXEC);
            if (fd < 0) {
                int e = errno;
                meter_probe_add(m, "perf_event", item,
                                e == EACCES || e == EPERM ? JOULE_PROBE_PERMISSION : JOULE_PROBE_ERROR,
                                e == EACCES || e == EPERM ? perf_fix : NULL, "perf_event_open: %s",
                                strerror(e));
                continue;
            }
            bool ok;
            unsigned long long v = read_count(fd, &ok);
            if (!ok || ps->n == METER_MAX_OFFERS) {
                meter_probe_add(m, "perf_event", item, JOULE_PROBE_ERROR, NULL, "%s",
                                ok ? "too many events" : "read failed");
                close(fd);
                continue;
            }
            perf_ev *pe = &ps->ev[ps->n];
            pe->fd = fd;
            pe->scale = scale;
            pe->first = v;
            meter_offer *o = &offers[ps->n];
            memset(o, 0, sizeof *o);
            if (psys) {
                snprintf(o->name, sizeof o->name, "psys");
                snprintf(o->key, sizeof o->key, "platform");
            } else if (strcmp(what, "pkg") == 0) {
                snprintf(o->name, sizeof o->name, "package-%zu", c);
                snprintf(o->key, sizeof o->key, "cpu-package:%zu", c);
            } else if (strcmp(what, "ram") == 0) {
                snprintf(o->name, sizeof o->name, "dram-%zu", c);
                snprintf(o->key, sizeof o->key, "cpu-dram:%zu", c);
            } else {
                snprintf(o->name, sizeof o->name, "%.40s-%zu", what, c);
                snprintf(o->key, sizeof o->key, "cpu-%.16s:%u", what, (unsigned)c);
            }
            o->update_period_s = 0.001;
            o->probe = meter_probe_add(m, "perf_event", item, JOULE_PROBE_IN_USE, NULL,
                                       "%s, %.3g J per count", o->name, scale);
            ps->n++;
        }
    }
    for (int i = 0; i < nl; i++)
        free(list[i]);
    free(list);
    if (ps->n == 0) {
        free(ps);
        return JOULE_OK;
    }
    *n_offers = ps->n;
    *state = ps;
    return JOULE_OK;
}

static joule_status perf_read(void *state, double *joules, joule_error *err)
{
    perf_state *ps = state;
    for (size_t i = 0; i < ps->n; i++) {
        bool ok;
        unsigned long long v = read_count(ps->ev[i].fd, &ok);
        if (!ok)
            return joule_fail(err, JOULE_ERR_IO, "perf_event: RAPL read failed: %s", strerror(errno));
        joules[i] = (double)(v - ps->ev[i].first) * ps->ev[i].scale;
    }
    return JOULE_OK;
}

static void perf_close(void *state)
{
    perf_state *ps = state;
    for (size_t i = 0; i < ps->n; i++)
        close(ps->ev[i].fd);
    free(ps);
}

const meter_source_ops meter_perf_source = {
    .name = "perf_event",
    .open = perf_open,
    .read = perf_read,
    .close = perf_close,
};

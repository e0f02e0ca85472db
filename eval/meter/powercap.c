/* eval/meter/powercap.c: source 1, the powercap sysfs tree (/sys/class/powercap, or the root given
 * by --powercap-root / JOULE_POWERCAP_ROOT). Intel RAPL and, since Linux 5.8, AMD RAPL both appear
 * as intel-rapl:N (package or psys) with subzones intel-rapl:N:M (dram, core, uncore).
 *
 * Counted: package zones and their dram subzones. Not counted, and said why: core and uncore
 * (inside the package), psys (the platform: contains the packages; used only where no package
 * zone exists), intel-rapl-mmio zones (a second door to the same package counter), and die zones
 * that read the very same counter as die 0 of their package (AMD shows the socket counter once
 * per die). Wraparound: energy_uj counts up to max_energy_range_uj and starts again at 0, so a
 * reading below the last one means one wrap: delta = now + max_energy_range_uj - last. The meter
 * samples at a quarter of the shortest possible wrap time (range / 500 W) so no wrap is missed.
 * Since Linux 5.10 (CVE-2020-8694) energy_uj is root-only: the probe says so and names the fix. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/meter/meter_internal.h"

#define PC_PERIOD_S 0.001 /* RAPL updates about every 976 us */

static const char pc_fix[] =
    "sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj (until reboot); to keep it, a udev "
    "rule: ACTION==\"add\", SUBSYSTEM==\"powercap\", RUN+=\"/bin/chmod o+r /sys%p/energy_uj\"; or "
    "give joule CAP_DAC_READ_SEARCH: sudo setcap cap_dac_read_search+ep $(command -v joule)";

typedef struct pc_zone {
    char path[640];          /* .../energy_uj */
    unsigned long long range; /* max_energy_range_uj */
    unsigned long long last;  /* last raw reading */
    unsigned long long acc;   /* microjoules since open */
} pc_zone;

typedef struct pc_state {
    const joule_meter *meter; /* for its file reader */
    size_t n;
    pc_zone z[METER_MAX_OFFERS];
} pc_state;

/* One directory entry under the root, as probed. */
typedef struct pc_entry {
    char entry[64];
    int pkg, sub;       /* intel-rapl:pkg[:sub]; sub -1 for top-level zones */
    bool mmio;
    char zname[64];     /* contents of name */
    char display[64];
    char key[40];
    bool candidate;     /* would be counted */
    int err;            /* errno reading energy_uj (0: read) */
    unsigned long long raw, range;
    size_t probe;
} pc_entry;

static int filter(const struct dirent *d)
{
    return strncmp(d->d_name, "intel-rapl:", 11) == 0 || strncmp(d->d_name, "intel-rapl-mmio:", 16) == 0;
}

static bool parse_entry(const char *name, pc_entry *e)
{
    const char *p;
    if (strncmp(name, "intel-rapl:", 11) == 0) {
        p = name + 11;
        e->mmio = false;
    } else {
        p = name + 16;
        e->mmio = true;
    }
    int a = -1, b = -1, n = 0;
    if (sscanf(p, "%d:%d%n", &a, &b, &n) == 2 && p[n] == 0 && a >= 0 && b >= 0) {
        e->pkg = a;
        e->sub = b;
        return true;
    }
    n = 0;
    if (sscanf(p, "%d%n", &a, &n) == 1 && p[n] == 0 && a >= 0) {
        e->pkg = a;
        e->sub = -1;
        return true;
    }
    return false;
}

/* "package-3" -> "3"; "package-0-die-1" -> "0:die:1"; NULL when not a package name. */
static bool package_suffix(const char *zname, char *out, size_t size)
{
    int p = -1, d = -1, n = 0;
    if (sscanf(zname, "package-%d-die-%d%n", &p, &d, &n) == 2 && zname[n] == 0) {
        snprintf(out, size, "%d:die:%d", p, d);
        return true;
    }
    n = 0;
    if (sscanf(zname, "package-%d%n", &p, &n) == 1 && zname[n] == 0) {
        snprintf(out, size, "%d", p);
        return true;
    }
    return false;
}

static const pc_entry *find_parent(const pc_entry *es, size_t n, const pc_entry *e)
{
    for (size_t i = 0; i < n; i++)
        if (es[i].sub < 0 && es[i].pkg == e->pkg && es[i].mmio == e->mmio)
            return &es[i];
    return NULL;
}

static void classify(joule_meter *m, pc_entry *es, size_t n, pc_entry *e)
{
    const char *root = m->powercap_root;
    char path[640];
    snprintf(path, sizeof path, "%s/%s/name", root, e->entry);
    int r = meter_read_text(m, path, e->zname, sizeof e->zname);
    if (r == EACCES || r == EPERM) {
        e->probe = meter_probe_add(m, "powercap", e->entry, JOULE_PROBE_PERMISSION, pc_fix,
                                   "%s: %s", path, strerror(r));
        e->err = r;
        return;
    }
    if (r) {
        e->probe = meter_probe_add(m, "powercap", e->entry, r == ENOENT ? JOULE_PROBE_NOT_PRESENT : JOULE_PROBE_ERROR,
                                   NULL, "%s: %s: zone skipped", path, strerror(r));
        return;
    }
    char suffix[24];
    if (e->sub < 0) {
        if (package_suffix(e->zname, suffix, sizeof suffix)) {
            snprintf(e->key, sizeof e->key, "cpu-package:%s", suffix);
            snprintf(e->display, sizeof e->display, "%s", e->zname);
        } else if (strcmp(e->zname, "psys") == 0) {
            snprintf(e->key, sizeof e->key, "platform");
            snprintf(e->display, sizeof e->display, "psys");
        }
    } else if (strcmp(e->zname, "dram") == 0) {
        const pc_entry *p = find_parent(es, n, e);
        if (p && package_suffix(p->zname, suffix, sizeof suffix)) {
            snprintf(e->key, sizeof e->key, "cpu-dram:%s", suffix);
            snprintf(e->display, sizeof e->display, "dram-%.50s", p->zname + 8);
        } else {
            snprintf(e->key, sizeof e->key, "cpu-dram:rapl%d", e->pkg);
            snprintf(e->display, sizeof e->display, "dram-%d", e->pkg);
        }
    } else if (strcmp(e->zname, "core") == 0 || strcmp(e->zname, "uncore") == 0) {
        const pc_entry *p = find_parent(es, n, e);
        e->probe = meter_probe_add(m, "powercap", e->entry, JOULE_PROBE_NOT_USED, NULL,
                                   "%s: part of %s, not summed with it", e->zname,
                                   p && p->zname[0] ? p->zname : "its package");
        return;
    }
    if (!e->key[0]) {
        e->probe = meter_probe_add(m, "powercap", e->entry, JOULE_PROBE_NOT_USED, NULL,
                                   "zone '%s' is not a package, dram or psys zone", e->zname);
        return;
    }
    snprintf(path, sizeof path, "%s/%s/energy_uj", root, e->entry);
    r = meter_read_u64(m, path, &e->raw);
    if (r == EACCES || r == EPERM) {
        e->err = r;
        e->probe = meter_probe_add(m, "powercap", e->entry, JOULE_PROBE_PERMISSION, pc_fix,
                                   "%s (%s): %s: root-only since Linux 5.10", path, e->zname, strerror(r));
        return;
    }
    if (r) {
        e->probe = meter_probe_add(m, "powercap", e->entry,
                                   r == ENOENT ? JOULE_PROBE_NOT_PRESENT : JOULE_PROBE_ERROR, NULL,
                                   "%s (%s): %s", path, e->zname,
                                   r == EINVAL ? "not a decimal counter" : strerror(r));
        return;
    }
    snprintf(path, sizeof path, "%s/%s/max_energy_range_uj", root, e->entry);
    r = meter_read_u64(m, path, &e->range);
    if (r || e->range == 0) {
        e->probe = meter_probe_add(m, "powercap", e->entry, JOULE_PROBE_ERROR, NULL,
                                   "%s (%s): %s: a wrap could not be folded", path, e->zname,
                                   r ? strerror(r) : "zero range");
        return;
    }
    if (e->raw > e->range) {
        e->probe = meter_probe_add(m, "powercap", e->entry, JOULE_PROBE_ERROR, NULL,
                                   "%s (%s) reads %llu, above its max_energy_range_uj %llu", e->entry,
                                   e->zname, e->raw, e->range);
        return;
    }
    e->candidate = true;
}

static joule_status pc_open(joule_meter *m, void **state, meter_offer *offers, size_t *n_offers,
                            double *period, joule_error *err)
{
    *state = NULL;
    *n_offers = 0;
    *period = 0;
    const char *root = m->powercap_root;
    struct dirent **list = NULL;
    int nl = scandir(root, &list, filter, versionsort);
    if (nl < 0) {
        int e = errno;
        if (e == EACCES || e == EPERM)
            meter_probe_add(m, "powercap", "", JOULE_PROBE_PERMISSION, pc_fix, "%s: %s", root, strerror(e));
        else
            meter_probe_add(m, "powercap", "", JOULE_PROBE_NOT_PRESENT, NULL,
                            "%s: %s (no powercap driver: no RAPL here, as in most virtual machines)",
                            root, strerror(e));
        return JOULE_OK;
    }
    pc_entry *es = calloc((size_t)nl + 1, sizeof *es);
    if (!es) {
        for (int i = 0; i < nl; i++)
            free(list[i]);
        free(list);
        return joule_fail(err, JOULE_ERR_NOMEM, "powercap: out of memory");
    }
    size_t n = 0;
    /* intel-rapl:* first, so a package counted through MSRs wins over its MMIO twin */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < nl; i++) {
            pc_entry e = {0};
            if (!parse_entry(list[i]->d_name, &e) || e.mmio != (pass == 1) ||
                strlen(list[i]->d_name) >= sizeof e.entry)
                continue;
            snprintf(e.entry, sizeof e.entry, "%.63s", list[i]->d_name);
            es[n++] = e;
        }
    for (int i = 0; i < nl; i++)
        free(list[i]);
    free(list);
    if (n == 0) {
        meter_probe_add(m, "powercap", "", JOULE_PROBE_NOT_PRESENT, NULL, "%s has no intel-rapl zones", root);
        free(es);
        return JOULE_OK;
    }
    /* names first (dram subzones are named after their parent package) */
    for (size_t i = 0; i < n; i++)
        if (es[i].sub < 0)
            classify(m, es, n, &es[i]);
    for (size_t i = 0; i < n; i++)
        if (es[i].sub >= 0)
            classify(m, es, n, &es[i]);

    bool denied = false;
    for (size_t i = 0; i < n; i++)
        denied = denied || es[i].err == EACCES || es[i].err == EPERM;
    pc_state *ps = NULL;
    if (!denied) {
        ps = calloc(1, sizeof *ps);
        if (!ps) {
            free(es);
            return joule_fail(err, JOULE_ERR_NOMEM, "powercap: out of memory");
        }
        ps->meter = m;
    }
    double shortest_wrap = 0;
    double pmax = m->opt.max_power_w > 0 ? m->opt.max_power_w : 500.0;
    for (size_t i = 0; i < n; i++) {
        pc_entry *e = &es[i];
        if (!e->candidate)
            continue;
        if (denied) {
            e->probe = meter_probe_add(m, "powercap", e->entry, JOULE_PROBE_NOT_USED, NULL,
                                       "%s readable, but other zones are not: a partial sum would "
                                       "leave energy out", e->zname);
            continue;
        }
        /* a die zone reading exactly die 0's counter is the same counter shown twice */
        int pk = -1, die = -1, nn = 0;
        if (sscanf(e->zname, "package-%d-die-%d%n", &pk, &die, &nn) == 2 && e->zname[nn] == 0 && die > 0) {
            char first[64];
            snprintf(first, sizeof first, "package-%d-die-0", pk);
            const pc_entry *d0 = NULL;
            for (size_t k = 0; k < n && !d0; k++)
                if (es[k].candidate && strcmp(es[k].zname, first) == 0)
                    d0 = &es[k];
            if (d0 && d0->raw == e->raw && d0->range == e->range && e->raw != 0) {
                e->probe = meter_probe_add(m, "powercap", e->entry, JOULE_PROBE_NOT_USED, NULL,
                                           "%s reads the same counter as %s (%llu uJ): one socket "
                                           "counter shown per die, counted once", e->zname, first, e->raw);
                continue;
            }
        }
        if (ps->n == METER_MAX_OFFERS) {
            e->probe = meter_probe_add(m, "powercap", e->entry, JOULE_PROBE_NOT_USED, NULL,
                                       "more than %d zones: left out", METER_MAX_OFFERS);
            continue;
        }
        pc_zone *z = &ps->z[ps->n];
        snprintf(z->path, sizeof z->path, "%s/%s/energy_uj", root, e->entry);
        z->range = e->range;
        z->last = e->raw;
        meter_offer *o = &offers[ps->n];
        memset(o, 0, sizeof *o);
        snprintf(o->name, sizeof o->name, "%s", e->display);
        snprintf(o->key, sizeof o->key, "%s", e->key);
        o->update_period_s = PC_PERIOD_S;
        o->probe = meter_probe_add(m, "powercap", e->entry, JOULE_PROBE_IN_USE, NULL,
                                   "%s: %s, wraps at %.0f J", e->entry, e->zname, 1e-6 * (double)e->range);
        double wrap = 1e-6 * (double)e->range / pmax;
        if (shortest_wrap == 0 || wrap < shortest_wrap)
            shortest_wrap = wrap;
        ps->n++;
    }
    free(es);
    if (ps && ps->n == 0) {
        free(ps);
        ps = NULL;
    }
    if (ps) {
        double p = shortest_wrap / 4;
        *period = p < 0.001 ? 0.001 : p > 1.0 ? 1.0 : p;
        *n_offers = ps->n;
    }
    *state = ps;
    return JOULE_OK;
}

static joule_status pc_read(void *state, double *joules, joule_error *err)
{
    pc_state *ps = state;
    for (size_t i = 0; i < ps->n; i++) {
        pc_zone *z = &ps->z[i];
        unsigned long long v = 0;
        int r = meter_read_u64(ps->meter, z->path, &v);
        if (r)
            return joule_fail(err, JOULE_ERR_IO, "powercap: %s: %s", z->path,
                              r == EINVAL ? "not a decimal counter" : strerror(r));
        if (v > z->range)
            return joule_fail(err, JOULE_ERR_IO, "powercap: %s reads %llu, above max_energy_range_uj %llu",
                              z->path, v, z->range);
        unsigned long long delta = v >= z->last ? v - z->last : v + (z->range - z->last);
        z->acc += delta;
        z->last = v;
        joules[i] = 1e-6 * (double)z->acc;
    }
    return JOULE_OK;
}

static void pc_close(void *state)
{
    free(state);
}

const meter_source_ops meter_powercap_source = {
    .name = "powercap",
    .open = pc_open,
    .read = pc_read,
    .close = pc_close,
};

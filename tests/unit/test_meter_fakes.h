/* tests/unit/test_meter_fakes.h: fakes of the hardware the meter reads, for the meter and energy
 * tests (this VM has no energy counter): a powercap tree in a temporary folder whose energy_uj
 * files follow scripted power, a clock that only moves when told, and a file reader that can
 * refuse a file as a root-only sysfs file would. Only hardware is faked; the meter is joule's. */
#ifndef JOULE_TEST_METER_FAKES_H
#define JOULE_TEST_METER_FAKES_H

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common.h"
#include "joule/meter.h"

#define FAKE_ZONES 8

typedef struct fake_zone {
    char dir[600];
    double watts;             /* power while the clock moves */
    unsigned long long acc;   /* microjoules since the zone was made */
    unsigned long long range; /* max_energy_range_uj: the file shows acc mod range */
} fake_zone;

typedef struct fake_hw {
    char root[512];
    fake_zone zones[FAKE_ZONES];
    size_t n;
    double t, cpu;            /* the clock: seconds and process CPU seconds */
    double cpu_per_s;         /* CPU seconds gained per second of sleep */
    void (*on_advance)(struct fake_hw *hw, double dt); /* more hardware (a GPU) */
    void *user;
    char deny[640];           /* a file the reader refuses with EACCES */
    unsigned long long energy_reads;
} fake_hw;

static void fake_write_zone(fake_zone *z)
{
    char path[700], buf[64];
    snprintf(path, sizeof path, "%s/energy_uj", z->dir);
    int n = snprintf(buf, sizeof buf, "%llu\n", z->acc % z->range);
    assert_int_equal(test_write_file(path, buf, (size_t)n), 0);
}

/* Adds root/entry with name, max_energy_range_uj and energy_uj (= uj). Returns its index. */
static size_t fake_zone_add(fake_hw *hw, const char *entry, const char *name, unsigned long long uj,
                            unsigned long long range, double watts)
{
    assert_true(hw->n < FAKE_ZONES);
    fake_zone *z = &hw->zones[hw->n];
    char root[sizeof hw->root];
    memcpy(root, hw->root, sizeof root);
    snprintf(z->dir, sizeof z->dir, "%s/%s", root, entry);
    assert_int_equal(mkdir(z->dir, 0755), 0);
    char path[700], buf[64];
    snprintf(path, sizeof path, "%s/name", z->dir);
    assert_int_equal(test_write_file(path, name, strlen(name)), 0);
    snprintf(path, sizeof path, "%s/max_energy_range_uj", z->dir);
    int n = snprintf(buf, sizeof buf, "%llu\n", range);
    assert_int_equal(test_write_file(path, buf, (size_t)n), 0);
    z->acc = uj;
    z->range = range;
    z->watts = watts;
    fake_write_zone(z);
    return hw->n++;
}

/* Moves the clock by dt: every zone gains watts x dt (whole microjoules), files rewritten. */
static void fake_advance(fake_hw *hw, double dt)
{
    hw->t += dt;
    for (size_t i = 0; i < hw->n; i++) {
        fake_zone *z = &hw->zones[i];
        z->acc += (unsigned long long)llround(z->watts * dt * 1e6);
        fake_write_zone(z);
    }
    if (hw->on_advance)
        hw->on_advance(hw, dt);
}

static double fake_now(void *ctx) { return ((fake_hw *)ctx)->t; }
static double fake_cpu(void *ctx) { return ((fake_hw *)ctx)->cpu; }
static void fake_sleep(void *ctx, double s)
{
    fake_hw *hw = ctx;
    hw->cpu += s * hw->cpu_per_s;
    fake_advance(hw, s);
}

static int fake_read(void *ctx, const char *path, char *buf, size_t size)
{
    fake_hw *hw = ctx;
    if (hw->deny[0] && strcmp(path, hw->deny) == 0)
        return EACCES;
    size_t l = strlen(path);
    if (l >= 9 && strcmp(path + l - 9, "energy_uj") == 0)
        hw->energy_reads++;
    joule_file_reader sys = joule_file_reader_system();
    return sys.read(sys.ctx, path, buf, size);
}

static void fake_init(fake_hw *hw, joule_clock *clock, joule_file_reader *reader)
{
    memset(hw, 0, sizeof *hw);
    assert_non_null(test_tmpdir(hw->root, sizeof hw->root));
    hw->t = 1000.0;
    clock->ctx = hw;
    clock->now = fake_now;
    clock->cpu_time = fake_cpu;
    clock->sleep = fake_sleep;
    reader->ctx = hw;
    reader->read = fake_read;
}

/* Meter options that read only the fake tree (no PAPI, no perf_event, no NVML). */
__attribute__((unused)) static joule_meter_options fake_options(fake_hw *hw, const joule_clock *clock,
                                        const joule_file_reader *reader)
{
    joule_meter_options o;
    memset(&o, 0, sizeof o);
    o.powercap_root = hw->root;
    o.nvml_lib = "/nonexistent/libnvidia-ml.so.1";
    o.no_papi = true;
    o.no_perf_event = true;
    o.clock = clock;
    o.reader = reader;
    o.cpu_model = "Test CPU";
    return o;
}

__attribute__((unused)) static const joule_probe *find_probe(const joule_meter *m, const char *source, const char *item)
{
    for (size_t i = 0; i < joule_meter_n_probes(m); i++) {
        const joule_probe *p = joule_meter_probe(m, i);
        if (strcmp(p->source, source) == 0 && strcmp(p->item, item) == 0)
            return p;
    }
    return NULL;
}

#endif

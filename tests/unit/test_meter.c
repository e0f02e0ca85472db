/* tests/unit/test_meter.c: the energy meter against fake hardware: a powercap tree (several
 * zones, psys, core, an MMIO twin, duplicated die counters, wraparound, a root-only file, a
 * missing zone, a counter that never moves), the fake NVML library (energy counter and power
 * integration), and the estimate it falls back to. Expected joules are worked out by hand from
 * the scripted power. */
#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

#include "test_meter_fakes.h"

#define RANGE_BIG 262143328850ull /* a real package zone's max_energy_range_uj */

static void close_and_clean(joule_meter *m, fake_hw *hw)
{
    joule_meter_close(m);
    test_rmtree(hw->root);
}

static double read_joules(joule_meter *m)
{
    joule_meter_reading r;
    joule_error err;
    assert_joule_ok(joule_meter_read(m, &r, &err), &err);
    return r.joules;
}

/* package + dram counted; core (inside package), psys (contains it) and the MMIO twin are not. */
static void test_powercap_domains_once(void **state)
{
    (void)state;
    fake_hw hw;
    joule_clock clock;
    joule_file_reader reader;
    fake_init(&hw, &clock, &reader);
    fake_zone_add(&hw, "intel-rapl:0", "package-0", 5000000, RANGE_BIG, 10.0);
    fake_zone_add(&hw, "intel-rapl:0:0", "dram", 7000000, RANGE_BIG, 2.0);
    fake_zone_add(&hw, "intel-rapl:0:1", "core", 1000000, RANGE_BIG, 6.0);
    fake_zone_add(&hw, "intel-rapl:1", "psys", 9000000, RANGE_BIG, 30.0);
    fake_zone_add(&hw, "intel-rapl-mmio:0", "package-0", 3000000, RANGE_BIG, 10.0);
    joule_meter_options o = fake_options(&hw, &clock, &reader);
    joule_meter *m = NULL;
    joule_error err;
    assert_joule_ok(joule_meter_open(&o, &m, &err), &err);
    assert_false(joule_meter_estimated(m));
    assert_int_equal(joule_meter_n_domains(m), 2);
    assert_string_equal(joule_meter_domain(m, 0)->name, "package-0");
    assert_string_equal(joule_meter_domain(m, 1)->name, "dram-0");
    assert_string_equal(joule_meter_method(m), "measured: powercap package-0 + powercap dram-0");
    assert_true(fabs(joule_meter_update_period(m) - 0.001) < 1e-12);
    assert_int_equal(find_probe(m, "powercap", "intel-rapl:0")->state, JOULE_PROBE_IN_USE);
    assert_int_equal(find_probe(m, "powercap", "intel-rapl:0:0")->state, JOULE_PROBE_IN_USE);
    assert_int_equal(find_probe(m, "powercap", "intel-rapl:0:1")->state, JOULE_PROBE_NOT_USED);
    const joule_probe *psys = find_probe(m, "powercap", "intel-rapl:1");
    assert_int_equal(psys->state, JOULE_PROBE_NOT_USED);
    assert_non_null(strstr(psys->detail, "psys covers"));
    const joule_probe *mmio = find_probe(m, "powercap", "intel-rapl-mmio:0");
    assert_int_equal(mmio->state, JOULE_PROBE_NOT_USED);
    assert_non_null(strstr(mmio->detail, "counted once"));
    /* 1.5 s at 10 W + 2 W = 18 J, nothing of core, psys or the twin */
    double j0 = read_joules(m);
    fake_advance(&hw, 1.5);
    double j1 = read_joules(m);
    assert_true(fabs((j1 - j0) - 18.0) < 1e-9);
    close_and_clean(m, &hw);
}

/* Without a package zone, psys is the one domain. */
static void test_powercap_psys_alone(void **state)
{
    (void)state;
    fake_hw hw;
    joule_clock clock;
    joule_file_reader reader;
    fake_init(&hw, &clock, &reader);
    fake_zone_add(&hw, "intel-rapl:1", "psys", 1, RANGE_BIG, 25.0);
    joule_meter_options o = fake_options(&hw, &clock, &reader);
    joule_meter *m = NULL;
    joule_error err;
    assert_joule_ok(joule_meter_open(&o, &m, &err), &err);
    assert_int_equal(joule_meter_n_domains(m), 1);
    assert_string_equal(joule_meter_domain(m, 0)->name, "psys");
    double j0 = read_joules(m);
    fake_advance(&hw, 2.0);
    assert_true(fabs(read_joules(m) - j0 - 50.0) < 1e-9);
    close_and_clean(m, &hw);
}

/* The fold itself: last = range - 1000 uJ, now 1000 uJ: delta = 1000 + range - last = 2000 uJ;
 * and over 12 s at 10 W through a 50 J counter (two wraps), sampled as often as the meter asks. */
static void test_powercap_wraparound(void **state)
{
    (void)state;
    fake_hw hw;
    joule_clock clock;
    joule_file_reader reader;
    fake_init(&hw, &clock, &reader);
    const unsigned long long range = 50000000ull; /* 50 J */
    size_t z = fake_zone_add(&hw, "intel-rapl:0", "package-0", 5000, range, 0.0);
    joule_meter_options o = fake_options(&hw, &clock, &reader);
    o.check_s = 0.01;
    joule_meter *m = NULL;
    joule_error err;
    hw.zones[z].watts = 0.2; /* moves 2000 uJ during the 10 ms check */
    assert_joule_ok(joule_meter_open(&o, &m, &err), &err);
    assert_int_equal(joule_meter_n_domains(m), 1);
    /* shortest wrap: 50 J / 500 W = 0.1 s; sampled at a quarter of it */
    assert_true(fabs(joule_meter_sample_period(m) - 0.025) < 1e-12);
    double j0 = read_joules(m);
    /* by hand: the file shows range - 1000, then 1000: one wrap of 2000 uJ */
    hw.zones[z].watts = 0;
    hw.zones[z].acc = 2 * range - 1000;
    fake_write_zone(&hw.zones[z]);
    double jw = read_joules(m);
    assert_true(fabs((jw - j0) - 1e-6 * (double)(range - 1000 - 7000)) < 1e-9);
    hw.zones[z].acc = 2 * range + 1000;
    fake_write_zone(&hw.zones[z]);
    double j1 = read_joules(m);
    assert_true(fabs((j1 - jw) - 2000e-6) < 1e-12);
    /* 12 s at 10 W, in the meter's sampling period */
    hw.zones[z].watts = 10.0;
    double period = joule_meter_sample_period(m);
    for (int i = 0; i < 480; i++) {
        fake_advance(&hw, period);
        assert_joule_ok(joule_meter_sample(m, &err), &err);
    }
    double j2 = read_joules(m);
    assert_true(fabs((j2 - j1) - 120.0) < 1e-6);
    close_and_clean(m, &hw);
}

/* A root-only energy_uj (Linux >= 5.10) is reported with the fix; nothing partial is summed and
 * the estimate takes over, labelled. */
static void test_powercap_root_only(void **state)
{
    (void)state;
    fake_hw hw;
    joule_clock clock;
    joule_file_reader reader;
    fake_init(&hw, &clock, &reader);
    fake_zone_add(&hw, "intel-rapl:0", "package-0", 100, RANGE_BIG, 10.0);
    fake_zone_add(&hw, "intel-rapl:0:0", "dram", 100, RANGE_BIG, 2.0);
    snprintf(hw.deny, sizeof hw.deny, "%s/intel-rapl:0:0/energy_uj", hw.root);
    joule_meter_options o = fake_options(&hw, &clock, &reader);
    o.cpu_watts = 4.0;
    joule_meter *m = NULL;
    joule_error err;
    assert_joule_ok(joule_meter_open(&o, &m, &err), &err);
    const joule_probe *p = find_probe(m, "powercap", "intel-rapl:0:0");
    assert_int_equal(p->state, JOULE_PROBE_PERMISSION);
    assert_non_null(strstr(p->detail, "root-only"));
    assert_non_null(strstr(p->fix, "udev"));
    assert_non_null(strstr(p->fix, "setcap cap_dac_read_search"));
    const joule_probe *pkg = find_probe(m, "powercap", "intel-rapl:0");
    assert_int_equal(pkg->state, JOULE_PROBE_NOT_USED);
    assert_non_null(strstr(pkg->detail, "partial sum"));
    assert_true(joule_meter_estimated(m));
    assert_int_equal(joule_meter_n_domains(m), 1);
    assert_true(joule_meter_domain(m, 0)->estimated);
    assert_non_null(strstr(joule_meter_method(m), "estimated"));
    assert_non_null(strstr(joule_meter_method(m), "--cpu-watts"));
    /* the estimate: 0.75 CPU s x 4 W = 3 J, whatever the (unread) counters did */
    double j0 = read_joules(m);
    hw.cpu += 0.75;
    fake_advance(&hw, 1.0);
    assert_true(fabs(read_joules(m) - j0 - 3.0) < 1e-12);
    close_and_clean(m, &hw);
}

/* The same with a real unreadable file, where the test does not run as root. */
static void test_powercap_root_only_chmod(void **state)
{
    (void)state;
    if (geteuid() == 0)
        skip();
    fake_hw hw;
    joule_clock clock;
    joule_file_reader reader;
    fake_init(&hw, &clock, &reader);
    fake_zone_add(&hw, "intel-rapl:0", "package-0", 100, RANGE_BIG, 10.0);
    char path[700];
    snprintf(path, sizeof path, "%s/intel-rapl:0/energy_uj", hw.root);
    assert_int_equal(chmod(path, 0400 & ~0400), 0);
    joule_meter_options o = fake_options(&hw, &clock, &reader);
    o.reader = NULL;
    joule_meter *m = NULL;
    joule_error err;
    assert_joule_ok(joule_meter_open(&o, &m, &err), &err);
    assert_int_equal(find_probe(m, "powercap", "intel-rapl:0")->state, JOULE_PROBE_PERMISSION);
    assert_true(joule_meter_estimated(m));
    close_and_clean(m, &hw);
}

/* A zone without energy_uj is listed and skipped; a zone that vanishes mid-run is an error that
 * names the file. */
static void test_powercap_missing_zone(void **state)
{
    (void)state;
    fake_hw hw;
    joule_clock clock;
    joule_file_reader reader;
    fake_init(&hw, &clock, &reader);
    fake_zone_add(&hw, "intel-rapl:0", "package-0", 100, RANGE_BIG, 10.0);
    char dir[700], path[760];
    snprintf(dir, sizeof dir, "%s/intel-rapl:1", hw.root);
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(path, sizeof path, "%s/name", dir);
    assert_int_equal(test_write_file(path, "package-1\n", 10), 0);
    joule_meter_options o = fake_options(&hw, &clock, &reader);
    joule_meter *m = NULL;
    joule_error err;
    assert_joule_ok(joule_meter_open(&o, &m, &err), &err);
    const joule_probe *p = find_probe(m, "powercap", "intel-rapl:1");
    assert_int_equal(p->state, JOULE_PROBE_NOT_PRESENT);
    assert_non_null(strstr(p->detail, "intel-rapl:1/energy_uj"));
    assert_int_equal(joule_meter_n_domains(m), 1);
    assert_false(joule_meter_estimated(m));
    snprintf(path, sizeof path, "%s/intel-rapl:0/energy_uj", hw.root);
    assert_int_equal(unlink(path), 0);
    joule_meter_reading r;
    assert_int_equal(joule_meter_read(m, &r, &err), JOULE_ERR_IO);
    assert_non_null(strstr(err.msg, "intel-rapl:0/energy_uj"));
    close_and_clean(m, &hw);
}

/* A counter that opens but never moves (a VM's RAPL) is not a measurement. */
static void test_powercap_not_counting(void **state)
{
    (void)state;
    fake_hw hw;
    joule_clock clock;
    joule_file_reader reader;
    fake_init(&hw, &clock, &reader);
    fake_zone_add(&hw, "intel-rapl:0", "package-0", 0, RANGE_BIG, 0.0);
    joule_meter_options o = fake_options(&hw, &clock, &reader);
    joule_meter *m = NULL;
    joule_error err;
    assert_joule_ok(joule_meter_open(&o, &m, &err), &err);
    const joule_probe *p = find_probe(m, "powercap", "intel-rapl:0");
    assert_int_equal(p->state, JOULE_PROBE_NOT_COUNTING);
    assert_non_null(strstr(p->detail, "did not advance"));
    assert_true(joule_meter_estimated(m));
    close_and_clean(m, &hw);
}

/* Die zones that show one socket counter twice count once; distinct dies both count. */
static void test_powercap_duplicate_dies(void **state)
{
    (void)state;
    fake_hw hw;
    joule_clock clock;
    joule_file_reader reader;
    fake_init(&hw, &clock, &reader);
    fake_zone_add(&hw, "intel-rapl:0", "package-0-die-0", 777000, RANGE_BIG, 40.0);
    fake_zone_add(&hw, "intel-rapl:1", "package-0-die-1", 777000, RANGE_BIG, 40.0);
    fake_zone_add(&hw, "intel-rapl:2", "package-1-die-0", 5000, RANGE_BIG, 30.0);
    fake_zone_add(&hw, "intel-rapl:3", "package-1-die-1", 6000, RANGE_BIG, 20.0);
    joule_meter_options o = fake_options(&hw, &clock, &reader);
    joule_meter *m = NULL;
    joule_error err;
    assert_joule_ok(joule_meter_open(&o, &m, &err), &err);
    const joule_probe *dup = find_probe(m, "powercap", "intel-rapl:1");
    assert_int_equal(dup->state, JOULE_PROBE_NOT_USED);
    assert_non_null(strstr(dup->detail, "same counter as package-0-die-0"));
    assert_int_equal(joule_meter_n_domains(m), 3);
    double j0 = read_joules(m);
    fake_advance(&hw, 1.0);
    assert_true(fabs(read_joules(m) - j0 - 90.0) < 1e-9); /* 40 + 30 + 20, not 130 */
    close_and_clean(m, &hw);
}

/* --estimate: counters are probed and listed, the estimate measures. */
static void test_force_estimate(void **state)
{
    (void)state;
    fake_hw hw;
    joule_clock clock;
    joule_file_reader reader;
    fake_init(&hw, &clock, &reader);
    fake_zone_add(&hw, "intel-rapl:0", "package-0", 100, RANGE_BIG, 10.0);
    joule_meter_options o = fake_options(&hw, &clock, &reader);
    o.force_estimate = true;
    joule_meter *m = NULL;
    joule_error err;
    assert_joule_ok(joule_meter_open(&o, &m, &err), &err);
    const joule_probe *p = find_probe(m, "powercap", "intel-rapl:0");
    assert_int_equal(p->state, JOULE_PROBE_NOT_USED);
    assert_non_null(strstr(p->detail, "estimate was asked for"));
    assert_true(joule_meter_estimated(m));
    assert_true(fabs(joule_meter_cpu_watts(m) - 7.0) < 1e-12); /* "Test CPU": the default */
    close_and_clean(m, &hw);
}

/* JOULE_POWERCAP_ROOT points the meter at a tree when no option does. */
static void test_powercap_env_root(void **state)
{
    (void)state;
    fake_hw hw;
    joule_clock clock;
    joule_file_reader reader;
    fake_init(&hw, &clock, &reader);
    fake_zone_add(&hw, "intel-rapl:0", "package-0", 100, RANGE_BIG, 10.0);
    joule_meter_options o = fake_options(&hw, &clock, &reader);
    o.powercap_root = NULL;
    setenv("JOULE_POWERCAP_ROOT", hw.root, 1);
    joule_meter *m = NULL;
    joule_error err;
    assert_joule_ok(joule_meter_open(&o, &m, &err), &err);
    unsetenv("JOULE_POWERCAP_ROOT");
    assert_false(joule_meter_estimated(m));
    assert_string_equal(joule_meter_domain(m, 0)->name, "package-0");
    close_and_clean(m, &hw);
}

/* No tree: "not present" and the estimate, with the table's watts for the CPU model. */
static void test_no_counters_estimate(void **state)
{
    (void)state;
    fake_hw hw;
    joule_clock clock;
    joule_file_reader reader;
    fake_init(&hw, &clock, &reader);
    joule_meter_options o = fake_options(&hw, &clock, &reader);
    char missing[600];
    snprintf(missing, sizeof missing, "%s/none", hw.root);
    o.powercap_root = missing;
    o.cpu_model = "Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz";
    joule_meter *m = NULL;
    joule_error err;
    assert_joule_ok(joule_meter_open(&o, &m, &err), &err);
    assert_int_equal(find_probe(m, "powercap", "")->state, JOULE_PROBE_NOT_PRESENT);
    assert_int_equal(find_probe(m, "nvml", "")->state, JOULE_PROBE_NOT_PRESENT);
    assert_int_equal(find_probe(m, "estimate", "cpu")->state, JOULE_PROBE_IN_USE);
    assert_true(joule_meter_estimated(m));
    assert_true(fabs(joule_meter_cpu_watts(m) - 7.5) < 1e-12); /* 150 W / 20 cores */
    assert_non_null(strstr(joule_meter_method(m), "Xeon Gold 6248"));
    assert_true(joule_meter_update_period(m) == 0);
    double j0 = read_joules(m);
    hw.cpu += 2.0;
    assert_true(fabs(read_joules(m) - j0 - 15.0) < 1e-12);
    close_and_clean(m, &hw);
}

static void test_cpu_table(void **state)
{
    (void)state;
    const char *entry = NULL;
    assert_true(fabs(joule_cpu_watts_per_core("AMD EPYC 7763 64-Core Processor", &entry) - 4.375) < 1e-12);
    assert_string_equal(entry, "EPYC 7763");
    assert_true(fabs(joule_cpu_watts_per_core("Intel(R) Xeon(R) Platinum 8480+", &entry) - 6.25) < 1e-12);
    assert_string_equal(entry, "Xeon Platinum 8480");
    assert_true(fabs(joule_cpu_watts_per_core("Intel(R) Xeon(R) Processor", &entry) - 7.0) < 1e-12);
    assert_string_equal(entry, "default");
}

/* ---- NVML through the fake library ---- */
typedef struct gpu_script {
    void (*set)(unsigned gpu, unsigned long long mj, unsigned mw);
    double watts;
    double mj;
    int syncs;
} gpu_script;

static void gpu_advance(fake_hw *hw, double dt)
{
    gpu_script *g = hw->user;
    g->mj += g->watts * dt * 1e3;
    g->set(0, (unsigned long long)llround(g->mj), (unsigned)llround(g->watts * 1e3));
}

static void count_sync(void *ctx)
{
    ((gpu_script *)ctx)->syncs++;
}

static const char *fake_nvml_path(char *buf, size_t size)
{
    const char *b = getenv("JOULE_BUILD_DIR");
    snprintf(buf, size, "%s/tests/fake_nvml/libnvidia-ml.so.1", b ? b : ".");
    return buf;
}

static void *open_fake_nvml(gpu_script *g, char *path, size_t size)
{
    fake_nvml_path(path, size);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        fail_msg("fake NVML not built at %s: %s", path, dlerror());
    *(void **)&g->set = dlsym(h, "fake_nvml_set");
    assert_non_null(g->set);
    return h;
}

/* Energy counter mode: joules from the counter, the device synchronized before each reading,
 * and windows that must span 100 x 100 ms. */
static void test_nvml_energy_counter(void **state)
{
    (void)state;
    fake_hw hw;
    joule_clock clock;
    joule_file_reader reader;
    fake_init(&hw, &clock, &reader);
    gpu_script g = {.watts = 100.0, .mj = 5e6};
    char path[600];
    void *h = open_fake_nvml(&g, path, sizeof path);
    setenv("JOULE_FAKE_NVML_MODE", "energy", 1);
    hw.user = &g;
    hw.on_advance = gpu_advance;
    joule_meter_options o = fake_options(&hw, &clock, &reader);
    o.nvml_lib = path;
    o.use_gpu = true;
    o.sync = count_sync;
    o.sync_ctx = &g;
    joule_meter *m = NULL;
    joule_error err;
    assert_joule_ok(joule_meter_open(&o, &m, &err), &err);
    g.set(0, (unsigned long long)g.mj, 100000); /* scripted from here on */
    assert_joule_ok(joule_meter_sample(m, &err), &err);
    assert_int_equal(joule_meter_n_domains(m), 1);
    assert_string_equal(joule_meter_domain(m, 0)->name, "gpu0 (Fake GPU 0)");
    assert_false(joule_meter_estimated(m));
    assert_true(fabs(joule_meter_update_period(m) - 0.1) < 1e-12);
    const joule_probe *p = find_probe(m, "nvml", "gpu0");
    assert_int_equal(p->state, JOULE_PROBE_IN_USE);
    assert_non_null(strstr(p->detail, "total energy counter"));
    int syncs = g.syncs;
    double j0 = read_joules(m);
    fake_advance(&hw, 2.5);
    double j1 = read_joules(m);
    assert_true(fabs((j1 - j0) - 250.0) < 1e-9);
    assert_int_equal(g.syncs, syncs + 2);
    joule_meter_close(m);
    unsetenv("JOULE_FAKE_NVML_MODE");
    dlclose(h);
    test_rmtree(hw.root);
}

/* Power mode (before Volta): the trapezoid rule over the readings: 100 W then 200 W over 1 s is
 * 150 J; 200 W and 200 W over the next second is 200 J. */
static void test_nvml_power_integration(void **state)
{
    (void)state;
    fake_hw hw;
    joule_clock clock;
    joule_file_reader reader;
    fake_init(&hw, &clock, &reader);
    gpu_script g = {0};
    char path[600];
    void *h = open_fake_nvml(&g, path, sizeof path);
    setenv("JOULE_FAKE_NVML_MODE", "power", 1);
    setenv("JOULE_FAKE_NVML_WATTS", "80", 1);
    joule_meter_options o = fake_options(&hw, &clock, &reader);
    o.nvml_lib = path;
    o.use_gpu = true;
    joule_meter *m = NULL;
    joule_error err;
    assert_joule_ok(joule_meter_open(&o, &m, &err), &err);
    assert_int_equal(joule_meter_n_domains(m), 1);
    const joule_probe *p = find_probe(m, "nvml", "gpu0");
    assert_non_null(strstr(p->detail, "power integrated"));
    assert_true(fabs(joule_meter_sample_period(m) - 0.02) < 1e-12);
    g.set(0, 0, 100000);
    double j0 = read_joules(m);
    g.set(0, 0, 200000);
    fake_advance(&hw, 1.0);
    double j1 = read_joules(m);
    fake_advance(&hw, 1.0);
    double j2 = read_joules(m);
    assert_true(fabs((j1 - j0) - 150.0) < 1e-9);
    assert_true(fabs((j2 - j1) - 200.0) < 1e-9);
    joule_meter_close(m);
    unsetenv("JOULE_FAKE_NVML_MODE");
    unsetenv("JOULE_FAKE_NVML_WATTS");
    dlclose(h);
    test_rmtree(hw.root);
}

/* GPUs are listed, not counted, for the cpu backend; refused permission is reported; several
 * GPUs each count. */
static void test_nvml_listing(void **state)
{
    (void)state;
    fake_hw hw;
    joule_clock clock;
    joule_file_reader reader;
    fake_init(&hw, &clock, &reader);
    char path[600];
    fake_nvml_path(path, sizeof path);
    joule_meter_options o = fake_options(&hw, &clock, &reader);
    o.nvml_lib = path;
    o.cpu_watts = 5;
    joule_meter *m = NULL;
    joule_error err;
    setenv("JOULE_FAKE_NVML_MODE", "energy", 1);
    assert_joule_ok(joule_meter_open(&o, &m, &err), &err);
    const joule_probe *p = find_probe(m, "nvml", "gpu0");
    assert_int_equal(p->state, JOULE_PROBE_NOT_USED);
    assert_non_null(strstr(p->detail, "cpu backend"));
    assert_true(joule_meter_estimated(m));
    joule_meter_close(m);

    setenv("JOULE_FAKE_NVML_MODE", "no-permission", 1);
    o.use_gpu = true;
    assert_joule_ok(joule_meter_open(&o, &m, &err), &err);
    p = find_probe(m, "nvml", "");
    assert_int_equal(p->state, JOULE_PROBE_PERMISSION);
    assert_non_null(strstr(p->detail, "Insufficient Permissions"));
    assert_true(p->fix[0] != 0);
    joule_meter_close(m);

    setenv("JOULE_FAKE_NVML_MODE", "energy", 1);
    setenv("JOULE_FAKE_NVML_GPUS", "3", 1);
    assert_joule_ok(joule_meter_open(&o, &m, &err), &err);
    assert_int_equal(joule_meter_n_domains(m), 3);
    assert_string_equal(joule_meter_domain(m, 2)->name, "gpu2 (Fake GPU 2)");
    joule_meter_close(m);
    unsetenv("JOULE_FAKE_NVML_MODE");
    unsetenv("JOULE_FAKE_NVML_GPUS");
    test_rmtree(hw.root);
}

/* The machine's own probes run without error and always end with something to say. */
static void test_real_machine_probes(void **state)
{
    (void)state;
    joule_meter_options o;
    memset(&o, 0, sizeof o);
    o.nvml_lib = "/nonexistent/libnvidia-ml.so.1";
    joule_meter *m = NULL;
    joule_error err;
    assert_joule_ok(joule_meter_open(&o, &m, &err), &err);
    assert_true(joule_meter_n_probes(m) >= 4);
    assert_true(joule_meter_n_domains(m) >= 1);
    /* every source left a record: built with PAPI, its components (disabled ones with PAPI's
     * reason); without, a line saying so */
    bool seen[4] = {false};
    static const char *srcs[4] = {"powercap", "papi", "nvml", "perf_event"};
    for (size_t i = 0; i < joule_meter_n_probes(m); i++)
        for (int k = 0; k < 4; k++)
            seen[k] = seen[k] || strcmp(joule_meter_probe(m, i)->source, srcs[k]) == 0;
    assert_true(seen[0] && seen[1] && seen[2] && seen[3]);
    for (size_t i = 0; i < joule_meter_n_probes(m); i++) {
        const joule_probe *p = joule_meter_probe(m, i);
        assert_true(p->detail[0] != 0);
        print_message("  %-10s %-20s %-17s %s\n", p->source, p->item, joule_probe_state_name(p->state),
                      p->detail);
    }
    print_message("  method: %s\n", joule_meter_method(m));
    joule_meter_close(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_powercap_domains_once),
        cmocka_unit_test(test_powercap_psys_alone),
        cmocka_unit_test(test_powercap_wraparound),
        cmocka_unit_test(test_powercap_root_only),
        cmocka_unit_test(test_powercap_root_only_chmod),
        cmocka_unit_test(test_powercap_missing_zone),
        cmocka_unit_test(test_powercap_not_counting),
        cmocka_unit_test(test_powercap_duplicate_dies),
        cmocka_unit_test(test_powercap_env_root),
        cmocka_unit_test(test_force_estimate),
        cmocka_unit_test(test_no_counters_estimate),
        cmocka_unit_test(test_cpu_table),
        cmocka_unit_test(test_nvml_energy_counter),
        cmocka_unit_test(test_nvml_power_integration),
        cmocka_unit_test(test_nvml_listing),
        cmocka_unit_test(test_real_machine_probes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

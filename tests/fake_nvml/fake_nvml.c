/* tests/fake_nvml/fake_nvml.c: a stand-in for libnvidia-ml.so.1, for machines without an NVIDIA
 * GPU (this one). It implements the few NVML calls joule's meter loads and behaves as a driver
 * would: set JOULE_FAKE_NVML_MODE before nvmlInit to "energy" (total energy counter, Volta and
 * later; the default), "power" (no energy counter: power readings only), "no-permission" (init
 * refused) or "none" (no GPU); JOULE_FAKE_NVML_GPUS (1-8) and JOULE_FAKE_NVML_WATTS set the
 * device count and the constant power readings follow from wall time. Tests script exact values
 * with fake_nvml_set(), looked up with dlsym on the same library. It fakes the hardware only:
 * the meter code under test is joule's own. The state is global because a driver library's is. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FAKE_MAX_GPUS 8

typedef int nvmlReturn_t;
typedef struct fake_dev {
    unsigned index;
} *nvmlDevice_t;

enum { MODE_ENERGY, MODE_POWER, MODE_NO_PERMISSION, MODE_NONE };

static struct fake_state {
    int inited;
    int mode;
    unsigned n;
    double watts, t0;
    int scripted;
    unsigned long long energy_mj[FAKE_MAX_GPUS];
    unsigned long long last_mj[FAKE_MAX_GPUS];
    unsigned power_mw[FAKE_MAX_GPUS];
    struct fake_dev devs[FAKE_MAX_GPUS];
} fake;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Scripts GPU gpu's readings: its energy counter (mJ) and power (mW). */
void fake_nvml_set(unsigned gpu, unsigned long long energy_mj, unsigned power_mw);
void fake_nvml_set(unsigned gpu, unsigned long long energy_mj, unsigned power_mw)
{
    if (gpu >= FAKE_MAX_GPUS)
        return;
    fake.scripted = 1;
    fake.energy_mj[gpu] = energy_mj;
    fake.power_mw[gpu] = power_mw;
}

nvmlReturn_t nvmlInit_v2(void);
nvmlReturn_t nvmlInit_v2(void)
{
    const char *mode = getenv("JOULE_FAKE_NVML_MODE");
    const char *gpus = getenv("JOULE_FAKE_NVML_GPUS");
    const char *watts = getenv("JOULE_FAKE_NVML_WATTS");
    memset(&fake, 0, sizeof fake);
    fake.mode = !mode || strcmp(mode, "energy") == 0 ? MODE_ENERGY
                : strcmp(mode, "power") == 0         ? MODE_POWER
                : strcmp(mode, "no-permission") == 0 ? MODE_NO_PERMISSION
                                                     : MODE_NONE;
    fake.n = gpus ? (unsigned)atoi(gpus) : 1;
    if (fake.n > FAKE_MAX_GPUS)
        fake.n = FAKE_MAX_GPUS;
    if (fake.mode == MODE_NONE)
        fake.n = 0;
    fake.watts = watts ? atof(watts) : 50.0;
    fake.t0 = now_s();
    for (unsigned i = 0; i < FAKE_MAX_GPUS; i++)
        fake.devs[i].index = i;
    if (fake.mode == MODE_NO_PERMISSION)
        return 4; /* NVML_ERROR_NO_PERMISSION */
    fake.inited = 1;
    return 0;
}

nvmlReturn_t nvmlShutdown(void);
nvmlReturn_t nvmlShutdown(void)
{
    fake.inited = 0;
    return 0;
}

const char *nvmlErrorString(nvmlReturn_t r);
const char *nvmlErrorString(nvmlReturn_t r)
{
    switch (r) {
    case 0: return "Success";
    case 1: return "Uninitialized";
    case 2: return "Invalid Argument";
    case 3: return "Not Supported";
    case 4: return "Insufficient Permissions";
    default: return "Unknown Error";
    }
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned *count);
nvmlReturn_t nvmlDeviceGetCount_v2(unsigned *count)
{
    if (!fake.inited)
        return 1;
    *count = fake.n;
    return 0;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned i, nvmlDevice_t *dev);
nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned i, nvmlDevice_t *dev)
{
    if (!fake.inited)
        return 1;
    if (i >= fake.n)
        return 2;
    *dev = &fake.devs[i];
    return 0;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t dev, char *name, unsigned len);
nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t dev, char *name, unsigned len)
{
    if (!fake.inited || !dev || !name || len == 0)
        return 2;
    snprintf(name, len, "Fake GPU %u", dev->index);
    return 0;
}

nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t dev, unsigned long long *mj);
nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t dev, unsigned long long *mj)
{
    if (!fake.inited || !dev)
        return 1;
    if (fake.mode == MODE_POWER)
        return 3; /* NVML_ERROR_NOT_SUPPORTED: before Volta */
    if (fake.scripted)
        *mj = fake.energy_mj[dev->index];
    else { /* since the "driver loaded": 1 kJ before init, then constant power; like a busy
              GPU's counter it never reads the same twice */
        unsigned long long v = 1000000ull + (unsigned long long)(fake.watts * (now_s() - fake.t0) * 1e3);
        if (v <= fake.last_mj[dev->index])
            v = fake.last_mj[dev->index] + 1;
        fake.last_mj[dev->index] = v;
        *mj = v;
    }
    return 0;
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t dev, unsigned *mw);
nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t dev, unsigned *mw)
{
    if (!fake.inited || !dev)
        return 1;
    *mw = fake.scripted ? fake.power_mw[dev->index] : (unsigned)(fake.watts * 1e3);
    return 0;
}

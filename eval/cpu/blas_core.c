/* eval/cpu/blas_core.c: which OpenBLAS core runs, and which one this CPU deserves. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "joule/cpu.h"

const char *joule_cpu_blas_core(void)
{
    const char *name = openblas_get_corename();
    return name ? name : "unknown";
}

const char *joule_cpu_blas_better_core(void)
{
    if (getenv("OPENBLAS_CORETYPE"))
        return NULL; /* chosen by whoever runs us: respect it */
    const char *core = joule_cpu_blas_core();
    if (strcasecmp(core, "Prescott") != 0 && strcasecmp(core, "Core2") != 0 &&
        strcasecmp(core, "Nehalem") != 0 && strcasecmp(core, "Sandybridge") != 0)
        return NULL;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return "Haswell";
    return NULL;
}

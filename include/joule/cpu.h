/* joule/cpu.h: facts about the CPU backend that benchmarks and energy reports record, and the
 * OpenBLAS core choice. Debian's OpenBLAS (0.3.21) does not recognise some newer CPUs and falls
 * back to its generic "Prescott" SSE3 kernels, several times slower; OpenBLAS reads its core only
 * from OPENBLAS_CORETYPE at load time, so the fix must happen before the process starts. */
#ifndef JOULE_CPU_H
#define JOULE_CPU_H

#ifdef __cplusplus
extern "C" {
#endif

/* The OpenBLAS core in use, e.g. "SkylakeX", "Haswell", "Prescott". */
const char *joule_cpu_blas_core(void);

/* The OpenBLAS core this CPU should use when OpenBLAS fell back to a generic one it did not need
 * (the CPU has AVX-512 or AVX2), or NULL when the current choice is right or was set explicitly
 * through OPENBLAS_CORETYPE. A program can set OPENBLAS_CORETYPE to it and re-execute itself. */
const char *joule_cpu_blas_better_core(void);

#ifdef __cplusplus
}
#endif
#endif

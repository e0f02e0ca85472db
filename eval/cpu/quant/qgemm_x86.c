/* eval/cpu/quant/qgemm_x86.c: the x86 SIMD micro-kernels of the integer GEMM. Each function is
 * compiled for its own instruction set with __attribute__((target)), so the library still loads
 * and runs on CPUs without it; qgemm.c calls one only after __builtin_cpu_supports said yes.
 *
 * Layouts (see qgemm.h): an A panel is kgroups x MR x KG unsigned values (uint16 for AVX2, uint8
 * otherwise); a B panel is kgroups x NR x KG signed values (int16 for AVX2, int8 otherwise), so one
 * k group of NR columns is one or two vector loads, and one k group of one row of A is a 32-bit
 * broadcast.
 *
 * AVX2 does not use vpmaddubsw: its uint8 x int8 pair sums saturate at int16 (255*127*2 > 32767),
 * which would break bit-exactness. Operands are widened to int16 at packing time and multiplied
 * with vpmaddwd, whose pair sums are exact in int32. The VNNI paths use vpdpbusd, which adds four
 * exact uint8 x int8 products into int32 without saturation. */
#if defined(__x86_64__) || defined(__i386__)

#include "eval/cpu/quant/qgemm.h"

#include <immintrin.h>
#include <string.h>

static inline int32_t load_i32(const void *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* ---- AVX2: MR 6 x NR 16, k groups of 2 (int16) ---- */

__attribute__((target("avx2"))) void joule_qgemm_ukernel_avx2(int64_t kgroups,
                                                               const void *apanel,
                                                               const void *bpanel, int32_t *c,
                                                               int64_t ldc,
                                                               const joule_qgemm_fixup *fx)
{
    enum { MR = JOULE_QGEMM_AVX2_MR, NR = JOULE_QGEMM_AVX2_NR, KG = JOULE_QGEMM_AVX2_KG };
    const uint16_t *a = apanel;
    const int16_t *b = bpanel;
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
            c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (int64_t g = 0; g < kgroups; g++, a += MR * KG, b += NR * KG) {
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)b);
        const __m256i b1 = _mm256_loadu_si256((const __m256i *)(b + 16));
        __m256i av;
#define ROW(i, lo, hi)                                                                             \
    av = _mm256_set1_epi32(load_i32(a + (i) * KG));                                                \
    lo = _mm256_add_epi32(lo, _mm256_madd_epi16(av, b0));                                          \
    hi = _mm256_add_epi32(hi, _mm256_madd_epi16(av, b1));
        ROW(0, c00, c01)
        ROW(1, c10, c11)
        ROW(2, c20, c21)
        ROW(3, c30, c31)
        ROW(4, c40, c41)
        ROW(5, c50, c51)
#undef ROW
    }
    const __m256i ca0 = _mm256_loadu_si256((const __m256i *)fx->col_a);
    const __m256i ca1 = _mm256_loadu_si256((const __m256i *)(fx->col_a + 8));
    const __m256i cb0 = _mm256_loadu_si256((const __m256i *)fx->col_b);
    const __m256i cb1 = _mm256_loadu_si256((const __m256i *)(fx->col_b + 8));
#define STORE(i, lo, hi)                                                                           \
    {                                                                                              \
        const __m256i ra = _mm256_set1_epi32(fx->row_a[i]);                                        \
        lo = _mm256_add_epi32(lo, _mm256_mullo_epi32(ra, ca0));                                    \
        hi = _mm256_add_epi32(hi, _mm256_mullo_epi32(ra, ca1));                                    \
        if (fx->row_b) {                                                                           \
            const __m256i rb = _mm256_set1_epi32(fx->row_b[i]);                                    \
            lo = _mm256_add_epi32(lo, _mm256_mullo_epi32(rb, cb0));                                \
            hi = _mm256_add_epi32(hi, _mm256_mullo_epi32(rb, cb1));                                \
        }                                                                                          \
        _mm256_storeu_si256((__m256i *)(c + (i) * ldc), lo);                                       \
        _mm256_storeu_si256((__m256i *)(c + (i) * ldc + 8), hi);                                   \
    }
    STORE(0, c00, c01)
    STORE(1, c10, c11)
    STORE(2, c20, c21)
    STORE(3, c30, c31)
    STORE(4, c40, c41)
    STORE(5, c50, c51)
#undef STORE
}

/* ---- AVX-VNNI: MR 6 x NR 16, k groups of 4 (uint8 x int8) ---- */

__attribute__((target("avx2,avxvnni"))) void joule_qgemm_ukernel_avxvnni(int64_t kgroups,
                                                                          const void *apanel,
                                                                          const void *bpanel,
                                                                          int32_t *c, int64_t ldc,
                                                                          const joule_qgemm_fixup *fx)
{
    enum { MR = JOULE_QGEMM_AVXVNNI_MR, NR = JOULE_QGEMM_AVXVNNI_NR, KG = JOULE_QGEMM_AVXVNNI_KG };
    const uint8_t *a = apanel;
    const int8_t *b = bpanel;
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
            c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (int64_t g = 0; g < kgroups; g++, a += MR * KG, b += NR * KG) {
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)b);
        const __m256i b1 = _mm256_loadu_si256((const __m256i *)(b + 32));
        __m256i av;
#define ROW(i, lo, hi)                                                                             \
    av = _mm256_set1_epi32(load_i32(a + (i) * KG));                                                \
    lo = _mm256_dpbusd_avx_epi32(lo, av, b0);                                                      \
    hi = _mm256_dpbusd_avx_epi32(hi, av, b1);
        ROW(0, c00, c01)
        ROW(1, c10, c11)
        ROW(2, c20, c21)
        ROW(3, c30, c31)
        ROW(4, c40, c41)
        ROW(5, c50, c51)
#undef ROW
    }
    const __m256i ca0 = _mm256_loadu_si256((const __m256i *)fx->col_a);
    const __m256i ca1 = _mm256_loadu_si256((const __m256i *)(fx->col_a + 8));
    const __m256i cb0 = _mm256_loadu_si256((const __m256i *)fx->col_b);
    const __m256i cb1 = _mm256_loadu_si256((const __m256i *)(fx->col_b + 8));
#define STORE(i, lo, hi)                                                                           \
    {                                                                                              \
        const __m256i ra = _mm256_set1_epi32(fx->row_a[i]);                                        \
        lo = _mm256_add_epi32(lo, _mm256_mullo_epi32(ra, ca0));                                    \
        hi = _mm256_add_epi32(hi, _mm256_mullo_epi32(ra, ca1));                                    \
        if (fx->row_b) {                                                                           \
            const __m256i rb = _mm256_set1_epi32(fx->row_b[i]);                                    \
            lo = _mm256_add_epi32(lo, _mm256_mullo_epi32(rb, cb0));                                \
            hi = _mm256_add_epi32(hi, _mm256_mullo_epi32(rb, cb1));                                \
        }                                                                                          \
        _mm256_storeu_si256((__m256i *)(c + (i) * ldc), lo);                                       \
        _mm256_storeu_si256((__m256i *)(c + (i) * ldc + 8), hi);                                   \
    }
    STORE(0, c00, c01)
    STORE(1, c10, c11)
    STORE(2, c20, c21)
    STORE(3, c30, c31)
    STORE(4, c40, c41)
    STORE(5, c50, c51)
#undef STORE
}

/* ---- AVX512-VNNI: MR 8 x NR 32, k groups of 4 (uint8 x int8) ---- */

__attribute__((target("avx512f,avx512bw,avx512vnni"))) void
joule_qgemm_ukernel_avx512vnni(int64_t kgroups, const void *apanel, const void *bpanel,
                               int32_t *c, int64_t ldc, const joule_qgemm_fixup *fx)
{
    enum {
        MR = JOULE_QGEMM_AVX512VNNI_MR,
        NR = JOULE_QGEMM_AVX512VNNI_NR,
        KG = JOULE_QGEMM_AVX512VNNI_KG
    };
    const uint8_t *a = apanel;
    const int8_t *b = bpanel;
    __m512i c00 = _mm512_setzero_si512(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
            c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00,
            c61 = c00, c70 = c00, c71 = c00;
    for (int64_t g = 0; g < kgroups; g++, a += MR * KG, b += NR * KG) {
        const __m512i b0 = _mm512_loadu_si512((const void *)b);
        const __m512i b1 = _mm512_loadu_si512((const void *)(b + 64));
        __m512i av;
#define ROW(i, lo, hi)                                                                             \
    av = _mm512_set1_epi32(load_i32(a + (i) * KG));                                                \
    lo = _mm512_dpbusd_epi32(lo, av, b0);                                                          \
    hi = _mm512_dpbusd_epi32(hi, av, b1);
        ROW(0, c00, c01)
        ROW(1, c10, c11)
        ROW(2, c20, c21)
        ROW(3, c30, c31)
        ROW(4, c40, c41)
        ROW(5, c50, c51)
        ROW(6, c60, c61)
        ROW(7, c70, c71)
#undef ROW
    }
    const __m512i ca0 = _mm512_loadu_si512((const void *)fx->col_a);
    const __m512i ca1 = _mm512_loadu_si512((const void *)(fx->col_a + 16));
    const __m512i cb0 = _mm512_loadu_si512((const void *)fx->col_b);
    const __m512i cb1 = _mm512_loadu_si512((const void *)(fx->col_b + 16));
#define STORE(i, lo, hi)                                                                           \
    {                                                                                              \
        const __m512i ra = _mm512_set1_epi32(fx->row_a[i]);                                        \
        lo = _mm512_add_epi32(lo, _mm512_mullo_epi32(ra, ca0));                                    \
        hi = _mm512_add_epi32(hi, _mm512_mullo_epi32(ra, ca1));                                    \
        if (fx->row_b) {                                                                           \
            const __m512i rb = _mm512_set1_epi32(fx->row_b[i]);                                    \
            lo = _mm512_add_epi32(lo, _mm512_mullo_epi32(rb, cb0));                                \
            hi = _mm512_add_epi32(hi, _mm512_mullo_epi32(rb, cb1));                                \
        }                                                                                          \
        _mm512_storeu_si512((void *)(c + (i) * ldc), lo);                                          \
        _mm512_storeu_si512((void *)(c + (i) * ldc + 16), hi);                                     \
    }
    STORE(0, c00, c01)
    STORE(1, c10, c11)
    STORE(2, c20, c21)
    STORE(3, c30, c31)
    STORE(4, c40, c41)
    STORE(5, c50, c51)
    STORE(6, c60, c61)
    STORE(7, c70, c71)
#undef STORE
}

#else
/* Not x86: qgemm.c provides inert stand-ins and never selects these paths. */
typedef int joule_qgemm_x86_unused;
#endif

/* eval/cpu/quant/qgemm.c: the integer GEMM driver (packing, blocking, threads, zero-point
 * corrections), run-time choice of instruction set, the portable C micro-kernel and the plain
 * reference that every path is tested against. The SIMD micro-kernels live in qgemm_x86.c. */
#include "eval/cpu/quant/qgemm.h"

#include <stdlib.h>
#include <string.h>

#include "config.h"

#if HAVE_OPENMP
#include <omp.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#define JOULE_QGEMM_X86 1
#else
#define JOULE_QGEMM_X86 0
#endif

/* Bytes of packed A one block may take; keeps the block in L2 while B panels stream by. */
#define QGEMM_A_BLOCK_BYTES (192u * 1024u)
#define QGEMM_ALIGN 64u

const char *joule_qgemm_isa_name(joule_qgemm_isa isa)
{
    switch (isa) {
    case JOULE_QGEMM_AUTO: return "auto";
    case JOULE_QGEMM_C: return "c";
    case JOULE_QGEMM_AVX2: return "avx2";
    case JOULE_QGEMM_AVXVNNI: return "avxvnni";
    case JOULE_QGEMM_AVX512VNNI: return "avx512vnni";
    default: return "?";
    }
}

#if JOULE_QGEMM_X86
#include <cpuid.h>

/* AVX-VNNI (VEX-encoded vpdpbusd) is CPUID leaf 7 sub-leaf 1, EAX bit 4. Read it directly:
 * clang 14 knows no "avxvnni" name for __builtin_cpu_supports. */
static bool cpu_has_avxvnni(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d))
        return false;
    return (a >> 4) & 1u;
}
#endif

bool joule_qgemm_isa_available(joule_qgemm_isa isa)
{
    switch (isa) {
    case JOULE_QGEMM_AUTO:
    case JOULE_QGEMM_C:
        return true;
#if JOULE_QGEMM_X86
    /* libgcc's cpu model checks the OS saves the YMM/ZMM state (XGETBV) before it reports
     * avx2 or avx512 features. */
    case JOULE_QGEMM_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2");
    case JOULE_QGEMM_AVXVNNI:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && cpu_has_avxvnni();
    case JOULE_QGEMM_AVX512VNNI:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vnni");
#endif
    default:
        return false;
    }
}

joule_qgemm_isa joule_qgemm_best_isa(void)
{
    static const joule_qgemm_isa order[] = {JOULE_QGEMM_AVX512VNNI, JOULE_QGEMM_AVXVNNI,
                                             JOULE_QGEMM_AVX2};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if (joule_qgemm_isa_available(order[i]))
            return order[i];
    return JOULE_QGEMM_C;
}

typedef struct qgemm_geometry {
    int mr, nr, kg;
    bool wide;
    joule_qgemm_ukernel kernel;
} qgemm_geometry;

static bool geometry_of(joule_qgemm_isa isa, qgemm_geometry *g)
{
    switch (isa) {
    case JOULE_QGEMM_C:
        *g = (qgemm_geometry){JOULE_QGEMM_C_MR, JOULE_QGEMM_C_NR, JOULE_QGEMM_C_KG, false,
                              joule_qgemm_ukernel_c};
        return true;
#if JOULE_QGEMM_X86
    case JOULE_QGEMM_AVX2:
        *g = (qgemm_geometry){JOULE_QGEMM_AVX2_MR, JOULE_QGEMM_AVX2_NR, JOULE_QGEMM_AVX2_KG, true,
                              joule_qgemm_ukernel_avx2};
        return true;
    case JOULE_QGEMM_AVXVNNI:
        *g = (qgemm_geometry){JOULE_QGEMM_AVXVNNI_MR, JOULE_QGEMM_AVXVNNI_NR,
                              JOULE_QGEMM_AVXVNNI_KG, false, joule_qgemm_ukernel_avxvnni};
        return true;
    case JOULE_QGEMM_AVX512VNNI:
        *g = (qgemm_geometry){JOULE_QGEMM_AVX512VNNI_MR, JOULE_QGEMM_AVX512VNNI_NR,
                              JOULE_QGEMM_AVX512VNNI_KG, false, joule_qgemm_ukernel_avx512vnni};
        return true;
#endif
    default:
        return false;
    }
}

/* a * b into *out, false on overflow past SIZE_MAX. */
static bool mul_size(size_t a, size_t b, size_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

static size_t round_up(size_t v, size_t to)
{
    return (v + to - 1) / to * to;
}

static void *aligned_bytes(size_t n)
{
    if (n == 0)
        n = QGEMM_ALIGN;
    if (n > SIZE_MAX - QGEMM_ALIGN)
        return NULL;
    return aligned_alloc(QGEMM_ALIGN, round_up(n, QGEMM_ALIGN));
}

static inline int32_t load_elem(const void *p, bool is_signed, size_t i)
{
    return is_signed ? (int32_t)((const int8_t *)p)[i] : (int32_t)((const uint8_t *)p)[i];
}

void joule_qgemm_packed_free(joule_qgemm_packed *p)
{
    if (!p)
        return;
    free(p->data);
    free(p->zp);
    free(p->corr);
    free(p);
}

joule_status joule_qgemm_pack(const void *b, bool b_signed, int64_t K, int64_t N, int64_t ldb,
                              bool trans, const int32_t *b_zp, int64_t n_b_zp,
                              joule_qgemm_isa isa, joule_qgemm_packed **out, joule_error *err)
{
    *out = NULL;
    if (K < 0 || N < 0 || ldb < (trans ? K : N) || (b_zp && n_b_zp != 1 && n_b_zp != N))
        return joule_fail(err, JOULE_ERR_INVALID,
                          "qgemm pack: bad shape K=%lld N=%lld ldb=%lld zero points=%lld",
                          (long long)K, (long long)N, (long long)ldb, (long long)n_b_zp);
    if (isa == JOULE_QGEMM_AUTO)
        isa = joule_qgemm_best_isa();
    qgemm_geometry geo;
    if (!joule_qgemm_isa_available(isa) || !geometry_of(isa, &geo))
        return joule_fail(err, JOULE_ERR_UNSUPPORTED, "qgemm pack: this CPU cannot run the %s path",
                          joule_qgemm_isa_name(isa));

    joule_qgemm_packed *p = calloc(1, sizeof *p);
    if (!p)
        return joule_fail(err, JOULE_ERR_NOMEM, "qgemm pack: out of memory");
    p->isa = isa;
    p->K = K;
    p->N = N;
    p->kg = geo.kg;
    p->nr = geo.nr;
    p->mr = geo.mr;
    p->wide = geo.wide;
    p->kgroups = (K + geo.kg - 1) / geo.kg;
    p->npanels = (N + geo.nr - 1) / geo.nr;
    size_t esize = geo.wide ? 2 : 1, count, bytes;
    if (!mul_size((size_t)p->npanels * (size_t)geo.nr, (size_t)p->kgroups * (size_t)geo.kg,
                  &count) ||
        !mul_size(count, esize, &bytes)) {
        joule_qgemm_packed_free(p);
        return joule_fail(err, JOULE_ERR_NOMEM, "qgemm pack: %lld x %lld is too large",
                          (long long)K, (long long)N);
    }
    p->data = aligned_bytes(bytes);
    const size_t ncols = (size_t)p->npanels * (size_t)geo.nr + 1; /* zero past N */
    p->zp = calloc(ncols, sizeof *p->zp);
    p->corr = calloc(ncols, sizeof *p->corr);
    if (!p->data || !p->zp || !p->corr) {
        joule_qgemm_packed_free(p);
        return joule_fail(err, JOULE_ERR_NOMEM, "qgemm pack: out of memory for %lld x %lld",
                          (long long)K, (long long)N);
    }
    memset(p->data, 0, bytes);

    /* B' = B - 128 for uint8 (so it fits int8), zero points shifted alike. */
    const int32_t shift = b_signed ? 0 : 128;
    p->zp_zero = true;
    for (int64_t n = 0; n < N; n++) {
        int32_t zp = b_zp ? b_zp[n_b_zp == 1 ? 0 : n] : 0;
        p->zp[n] = zp - shift;
        if (p->zp[n] != 0)
            p->zp_zero = false;
    }

    const int nr = geo.nr, kg = geo.kg;
    const size_t panel = (size_t)p->kgroups * (size_t)nr * (size_t)kg;
    for (int64_t n = 0; n < N; n++) {
        size_t base = (size_t)(n / nr) * panel + (size_t)(n % nr) * (size_t)kg;
        uint32_t colsum = 0;
        for (int64_t k = 0; k < K; k++) {
            size_t src = trans ? (size_t)n * (size_t)ldb + (size_t)k
                               : (size_t)k * (size_t)ldb + (size_t)n;
            int32_t v = load_elem(b, b_signed, src) - shift;
            size_t dst = base + (size_t)(k / kg) * (size_t)nr * (size_t)kg + (size_t)(k % kg);
            if (geo.wide)
                ((int16_t *)p->data)[dst] = (int16_t)v;
            else
                ((int8_t *)p->data)[dst] = (int8_t)v;
            colsum += (uint32_t)v;
        }
        p->corr[n] = (int32_t)((uint32_t)K * (uint32_t)p->zp[n] - colsum);
    }
    *out = p;
    return JOULE_OK;
}

/* ---- blocking plan ---- */

typedef struct qgemm_plan {
    int64_t mc;          /* rows of A per block (multiple of mr) */
    int64_t mblocks;
    int64_t nchunks;     /* column chunks per block (for threads when M is small) */
    int64_t chunk_panels;
    size_t apack_bytes;  /* packed A of one block */
    size_t per_thread;   /* apack + row sums + one tile, aligned */
    int threads;
} qgemm_plan;

/* Geometry of a packed B, enough to plan with. */
typedef struct qgemm_shape {
    int64_t K, N, kgroups, npanels;
    int mr, nr, kg;
    bool wide;
} qgemm_shape;

static bool make_plan(const qgemm_shape *b, int64_t M, int threads, qgemm_plan *pl)
{
    memset(pl, 0, sizeof *pl);
    if (threads < 1)
        threads = 1;
    size_t esize = b->wide ? 2 : 1;
    size_t row_bytes;
    if (!mul_size((size_t)b->kgroups * (size_t)b->kg, esize, &row_bytes))
        return false;
    int64_t mc = row_bytes ? (int64_t)(QGEMM_A_BLOCK_BYTES / row_bytes) : 0;
    mc = mc / b->mr * b->mr;
    if (mc < b->mr)
        mc = b->mr;
    int64_t m_round = (M + b->mr - 1) / b->mr * b->mr;
    if (m_round < b->mr)
        m_round = b->mr;
    if (mc > m_round)
        mc = m_round;
    /* with several threads, blocks small enough that each thread gets one */
    if (threads > 1 && M > 0) {
        int64_t per = (M + threads - 1) / threads;
        per = (per + b->mr - 1) / b->mr * b->mr;
        if (per < mc)
            mc = per;
    }
    pl->mc = mc;
    pl->mblocks = M > 0 ? (M + mc - 1) / mc : 0;
    pl->nchunks = 1;
    if (threads > 1 && pl->mblocks < threads && b->npanels > 1) {
        int64_t want = (threads + pl->mblocks - 1) / (pl->mblocks ? pl->mblocks : 1);
        pl->nchunks = want < b->npanels ? want : b->npanels;
    }
    pl->chunk_panels = (b->npanels + pl->nchunks - 1) / pl->nchunks;
    if (pl->chunk_panels < 1)
        pl->chunk_panels = 1;
    int64_t tasks = pl->mblocks * pl->nchunks;
    pl->threads = tasks < threads ? (int)(tasks > 0 ? tasks : 1) : threads;
    size_t apack, rows, tile;
    if (!mul_size((size_t)mc, row_bytes, &apack) || !mul_size((size_t)mc, sizeof(int32_t), &rows))
        return false;
    tile = (size_t)JOULE_QGEMM_MAX_MR * JOULE_QGEMM_MAX_NR * sizeof(int32_t);
    pl->apack_bytes = apack;
    size_t per = round_up(apack, QGEMM_ALIGN) + round_up(rows, QGEMM_ALIGN) + tile;
    if (per < apack)
        return false;
    pl->per_thread = per;
    return true;
}

static qgemm_shape shape_of(const joule_qgemm_packed *b)
{
    return (qgemm_shape){b->K, b->N, b->kgroups, b->npanels, b->mr, b->nr, b->kg, b->wide};
}

static size_t scratch_for(const qgemm_shape *sh, int64_t M, int threads)
{
    qgemm_plan pl;
    size_t total;
    if (!make_plan(sh, M, threads, &pl) || !mul_size(pl.per_thread, (size_t)pl.threads, &total) ||
        total > SIZE_MAX - QGEMM_ALIGN)
        return 0;
    return total + QGEMM_ALIGN; /* room to align a caller's unaligned buffer */
}

size_t joule_qgemm_scratch_bytes(const joule_qgemm_packed *b, int64_t M, int threads)
{
    qgemm_shape sh = shape_of(b);
    return scratch_for(&sh, M, threads);
}

size_t joule_qgemm_scratch_bytes_for(joule_qgemm_isa isa, int64_t M, int64_t K, int64_t N,
                                     int threads)
{
    if (isa == JOULE_QGEMM_AUTO)
        isa = joule_qgemm_best_isa();
    qgemm_geometry geo;
    if (K < 0 || N < 0 || !geometry_of(isa, &geo))
        return 0;
    qgemm_shape sh = {K, N, (K + geo.kg - 1) / geo.kg, (N + geo.nr - 1) / geo.nr,
                      geo.mr, geo.nr, geo.kg, geo.wide};
    return scratch_for(&sh, M, threads);
}

#if JOULE_QGEMM_X86
#include <emmintrin.h>

/* One A^T panel (mr <= 8 rows, all present, 8 bytes readable from each k row): whole k groups
 * transposed with SSE2 (baseline x86-64) unpacks. Returns the k it stopped at (a multiple of
 * kg); the caller packs the rest. */
static int64_t pack_a_trans_sse2(const joule_qgemm_packed *b, const uint8_t *src, size_t lda,
                                 uint8_t flip, void *dst)
{
    const int mr = b->mr, kg = b->kg;
    const int64_t full = b->K / kg;
    const __m128i f = _mm_set1_epi8((char)flip), z = _mm_setzero_si128();
#define LOAD8(k) _mm_xor_si128(_mm_loadl_epi64((const __m128i *)(src + (size_t)(k) * lda)), f)
    if (!b->wide && kg == 4 && (mr == 6 || mr == 8)) {
        uint8_t *d = dst;
        for (int64_t g = 0; g < full; g++, d += (size_t)mr * 4) {
            const int64_t k = g * 4;
            __m128i r01 = _mm_unpacklo_epi8(LOAD8(k), LOAD8(k + 1));     /* i0: k0 k1, i1: ... */
            __m128i r23 = _mm_unpacklo_epi8(LOAD8(k + 2), LOAD8(k + 3));
            __m128i lo = _mm_unpacklo_epi16(r01, r23);                    /* rows 0-3, 4 k each */
            __m128i hi = _mm_unpackhi_epi16(r01, r23);                    /* rows 4-7 */
            _mm_storeu_si128((__m128i *)d, lo);
            if (mr == 8) {
                _mm_storeu_si128((__m128i *)(d + 16), hi);
            } else { /* mr 6: rows 4 and 5 */
                _mm_storel_epi64((__m128i *)(d + 16), hi);
            }
        }
        return full * 4;
    }
    if (b->wide && kg == 2 && (mr == 6 || mr == 8)) {
        uint16_t *d = dst;
        for (int64_t g = 0; g < full; g++, d += (size_t)mr * 2) {
            const int64_t k = g * 2;
            __m128i w0 = _mm_unpacklo_epi8(LOAD8(k), z), w1 = _mm_unpacklo_epi8(LOAD8(k + 1), z);
            __m128i lo = _mm_unpacklo_epi16(w0, w1); /* rows 0-3: (k, k+1) as uint16 pairs */
            __m128i hi = _mm_unpackhi_epi16(w0, w1); /* rows 4-7 */
            _mm_storeu_si128((__m128i *)d, lo);
            if (mr == 8)
                _mm_storeu_si128((__m128i *)(d + 8), hi);
            else
                _mm_storel_epi64((__m128i *)(d + 8), hi);
        }
        return full * 2;
    }
    if (!b->wide && kg == 1 && mr == 4) {
        uint8_t *d = dst;
        for (int64_t k = 0; k < b->K; k++, d += 4) {
            uint32_t v = (uint32_t)_mm_cvtsi128_si32(LOAD8(k));
            memcpy(d, &v, 4);
        }
        return b->K;
    }
#undef LOAD8
    return 0;
}
#endif

/* Packs rows [m0, m0 + rows) of A into panels of mr rows: panel[g][i][q] = A'[m][g*kg + q],
 * A' = A (+128 when signed, i.e. the bits ^ 0x80), zero padded. With rowsum non-NULL, also
 * writes the row sums of A' over K (needed only when some B zero point is not 0). */
static void pack_a(const joule_qgemm_packed *b, const joule_qgemm_args *args, int64_t m0,
                   int64_t rows, void *dst, int32_t *rowsum)
{
    const int mr = b->mr, kg = b->kg;
    const int64_t K = b->K, kgroups = b->kgroups;
    const int64_t npan = (rows + mr - 1) / mr;
    const size_t esize = b->wide ? 2 : 1;
    const size_t panel = (size_t)kgroups * (size_t)mr * (size_t)kg;
    const uint8_t flip = args->a_signed ? 0x80 : 0; /* int8 + 128 == uint8 bits ^ 0x80 */
    const uint32_t flip4 = flip * 0x01010101u;
    const uint8_t *a = args->a;
    /* padding: rows past the end in the last panel, and k past K in the last group */
    if (rows % mr)
        memset((char *)dst + (size_t)(npan - 1) * panel * esize, 0, panel * esize);
    if (K % kg) {
        for (int64_t p = 0; p < npan - (rows % mr ? 1 : 0); p++)
            memset((char *)dst + ((size_t)p * panel + (size_t)(kgroups - 1) * mr * kg) * esize, 0,
                   (size_t)mr * kg * esize);
    }
    if (args->a_trans) {
        /* A is K x M: for each k, the panel's rows are contiguous in memory */
        for (int64_t p = 0; p < npan; p++) {
            const int64_t r0 = p * mr;
            const int tr = (int)(rows - r0 < mr ? rows - r0 : mr);
            const uint8_t *src0 = a + (size_t)(m0 + r0);
            const size_t lda = (size_t)args->lda;
            int64_t k0 = 0;
#if JOULE_QGEMM_X86
            /* whole k groups of a whole panel, 8 rows loaded at once (in bounds: m + 8 <= M) */
            if (tr == mr && m0 + r0 + 8 <= args->M)
                k0 = pack_a_trans_sse2(b, src0, lda, flip, (char *)dst + (size_t)p * panel * esize);
#endif
            for (int64_t k = k0; k < K; k++) {
                const uint8_t *src = src0 + (size_t)k * lda;
                const size_t base = (size_t)p * panel + (size_t)(k / kg) * mr * kg + (size_t)(k % kg);
                for (int i = 0; i < tr; i++) {
                    uint8_t v = (uint8_t)(src[i] ^ flip);
                    if (b->wide)
                        ((uint16_t *)dst)[base + (size_t)i * kg] = v;
                    else
                        ((uint8_t *)dst)[base + (size_t)i * kg] = v;
                }
            }
            if (rowsum) {
                uint32_t sums[JOULE_QGEMM_MAX_MR] = {0};
                for (int64_t k = 0; k < K; k++)
                    for (int i = 0; i < tr; i++)
                        sums[i] += (uint8_t)(src0[(size_t)k * lda + (size_t)i] ^ flip);
                for (int i = 0; i < tr; i++)
                    rowsum[r0 + i] = (int32_t)sums[i];
            }
        }
        return;
    }
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *src = a + (size_t)(m0 + r) * (size_t)args->lda;
        const size_t base = (size_t)(r / mr) * panel + (size_t)(r % mr) * (size_t)kg;
        const int64_t full = K / kg;
        uint32_t sum = 0;
        if (b->wide) {
            uint16_t *d = (uint16_t *)dst + base;
            for (int64_t g = 0; g < full; g++, d += (size_t)mr * kg)
                for (int q = 0; q < kg; q++)
                    d[q] = (uint8_t)(src[g * kg + q] ^ flip);
            for (int64_t k = full * kg; k < K; k++)
                d[k - full * kg] = (uint8_t)(src[k] ^ flip);
        } else if (kg == 4) {
            uint8_t *d = (uint8_t *)dst + base;
            for (int64_t g = 0; g < full; g++, d += (size_t)mr * 4) {
                uint32_t v;
                memcpy(&v, src + g * 4, 4);
                v ^= flip4;
                memcpy(d, &v, 4);
            }
            for (int64_t k = full * 4; k < K; k++)
                d[k - full * 4] = (uint8_t)(src[k] ^ flip);
        } else {
            uint8_t *d = (uint8_t *)dst + base;
            for (int64_t g = 0; g < full; g++, d += (size_t)mr * kg)
                for (int q = 0; q < kg; q++)
                    d[q] = (uint8_t)(src[g * kg + q] ^ flip);
            for (int64_t k = full * kg; k < K; k++)
                d[k - full * kg] = (uint8_t)(src[k] ^ flip);
        }
        if (rowsum) {
            for (int64_t k = 0; k < K; k++)
                sum += (uint8_t)(src[k] ^ flip);
            rowsum[r] = (int32_t)sum;
        }
    }
}

static void run_task(const joule_qgemm_packed *b, const joule_qgemm_args *args,
                     const qgemm_plan *pl, const qgemm_geometry *geo, int64_t task, char *ws)
{
    const int64_t mb = task / pl->nchunks, nc = task % pl->nchunks;
    const int64_t m0 = mb * pl->mc;
    int64_t rows = args->M - m0;
    if (rows > pl->mc)
        rows = pl->mc;
    void *apack = ws;
    int32_t *rowsum = (int32_t *)(ws + round_up(pl->apack_bytes, QGEMM_ALIGN));
    int32_t *tile = (int32_t *)((char *)rowsum + round_up((size_t)pl->mc * 4, QGEMM_ALIGN));
    pack_a(b, args, m0, rows, apack, b->zp_zero ? NULL : rowsum);

    const int mr = b->mr, nr = b->nr;
    const size_t esize = b->wide ? 2 : 1;
    const size_t apanel = (size_t)b->kgroups * (size_t)mr * (size_t)b->kg * esize;
    const size_t bpanel = (size_t)b->kgroups * (size_t)nr * (size_t)b->kg * esize;
    const uint32_t shift = args->a_signed ? 128u : 0u;
    int64_t p_end = (nc + 1) * pl->chunk_panels;
    if (p_end > b->npanels)
        p_end = b->npanels;
    for (int64_t p = nc * pl->chunk_panels; p < p_end; p++) {
        const int64_t n0 = p * nr;
        const int cols = (int)(b->N - n0 < nr ? b->N - n0 : nr);
        const char *bp = (const char *)b->data + (size_t)p * bpanel;
        for (int64_t r0 = 0; r0 < rows; r0 += mr) {
            const int tr = (int)(rows - r0 < mr ? rows - r0 : mr);
            const char *ap = (const char *)apack + (size_t)(r0 / mr) * apanel;
            int32_t row_a[JOULE_QGEMM_MAX_MR] = {0}, row_b[JOULE_QGEMM_MAX_MR] = {0};
            for (int i = 0; i < tr; i++) {
                uint32_t az = shift;
                if (args->a_zp)
                    az += (uint32_t)args->a_zp[args->a_zp_per_row ? m0 + r0 + i : 0];
                row_a[i] = (int32_t)az;
                if (!b->zp_zero)
                    row_b[i] = (int32_t)(0u - (uint32_t)rowsum[r0 + i]);
            }
            const joule_qgemm_fixup fx = {row_a, b->corr + n0, b->zp_zero ? NULL : row_b,
                                          b->zp + n0};
            int32_t *c = args->c + (size_t)(m0 + r0) * (size_t)args->ldc + (size_t)n0;
            if (tr == mr && cols == nr) {
                geo->kernel(b->kgroups, ap, bp, c, args->ldc, &fx);
            } else {
                geo->kernel(b->kgroups, ap, bp, tile, nr, &fx);
                for (int i = 0; i < tr; i++)
                    memcpy(c + (size_t)i * (size_t)args->ldc, tile + (size_t)i * nr,
                           (size_t)cols * sizeof *c);
            }
        }
    }
}

joule_status joule_qgemm(const joule_qgemm_args *args, const joule_qgemm_packed *b,
                         joule_error *err)
{
    if (args->M < 0 ||
        (args->M > 0 && (args->lda < (args->a_trans ? args->M : b->K) || args->ldc < b->N)))
        return joule_fail(err, JOULE_ERR_INVALID, "qgemm: bad shape M=%lld lda=%lld ldc=%lld",
                          (long long)args->M, (long long)args->lda, (long long)args->ldc);
    if (args->M == 0 || b->N == 0)
        return JOULE_OK;
    qgemm_geometry geo;
    if (!joule_qgemm_isa_available(b->isa) || !geometry_of(b->isa, &geo))
        return joule_fail(err, JOULE_ERR_UNSUPPORTED, "qgemm: this CPU cannot run the %s path",
                          joule_qgemm_isa_name(b->isa));
    qgemm_plan pl;
    qgemm_shape sh = shape_of(b);
    if (!make_plan(&sh, args->M, args->threads, &pl))
        return joule_fail(err, JOULE_ERR_NOMEM, "qgemm: %lld x %lld x %lld is too large",
                          (long long)args->M, (long long)b->N, (long long)b->K);
    void *owned = NULL;
    char *ws = args->scratch;
    if (!ws) {
        owned = aligned_bytes(pl.per_thread * (size_t)pl.threads);
        if (!owned)
            return joule_fail(err, JOULE_ERR_NOMEM, "qgemm: out of memory for scratch");
        ws = owned;
    } else {
        uintptr_t u = (uintptr_t)ws;
        size_t skip = (QGEMM_ALIGN - u % QGEMM_ALIGN) % QGEMM_ALIGN;
        size_t usable = args->scratch_bytes > skip ? args->scratch_bytes - skip : 0;
        if (usable / pl.per_thread < 1)
            return joule_fail(err, JOULE_ERR_INVALID,
                              "qgemm: scratch of %zu bytes is too small (need %zu)",
                              args->scratch_bytes, pl.per_thread + QGEMM_ALIGN);
        if (usable / pl.per_thread < (size_t)pl.threads)
            pl.threads = (int)(usable / pl.per_thread);
        ws += skip;
    }
    const int64_t tasks = pl.mblocks * pl.nchunks;
#if HAVE_OPENMP
    if (pl.threads > 1) {
#pragma omp parallel for num_threads(pl.threads) schedule(dynamic, 1)
        for (int64_t t = 0; t < tasks; t++)
            run_task(b, args, &pl, &geo, t, ws + (size_t)omp_get_thread_num() * pl.per_thread);
    } else
#endif
    {
        for (int64_t t = 0; t < tasks; t++)
            run_task(b, args, &pl, &geo, t, ws);
    }
    free(owned);
    return JOULE_OK;
}

/* ---- portable micro-kernel: MR 4, NR 16, one k at a time ----
 * The inner loop runs over 16 contiguous columns, so compilers vectorize it on any target. */

void joule_qgemm_ukernel_c(int64_t kgroups, const void *apanel, const void *bpanel, int32_t *c,
                           int64_t ldc, const joule_qgemm_fixup *fx)
{
    enum { MR = JOULE_QGEMM_C_MR, NR = JOULE_QGEMM_C_NR, KG = JOULE_QGEMM_C_KG };
    const uint8_t *a = apanel;
    const int8_t *bp = bpanel;
    uint32_t acc[MR][NR];
    memset(acc, 0, sizeof acc);
    for (int64_t g = 0; g < kgroups; g++, a += MR * KG, bp += NR * KG) {
        for (int i = 0; i < MR; i++) {
            const int32_t av = a[i];
            for (int j = 0; j < NR; j++)
                acc[i][j] += (uint32_t)(av * (int32_t)bp[j]);
        }
    }
    for (int i = 0; i < MR; i++) {
        uint32_t *row = (uint32_t *)(c + (size_t)i * (size_t)ldc);
        const uint32_t ra = (uint32_t)fx->row_a[i], rb = fx->row_b ? (uint32_t)fx->row_b[i] : 0;
        for (int j = 0; j < NR; j++)
            row[j] = acc[i][j] + ra * (uint32_t)fx->col_a[j] + rb * (uint32_t)fx->col_b[j];
    }
}

/* ---- reference ---- */

void joule_qgemm_ref(int64_t M, int64_t N, int64_t K, const void *a, bool a_signed, int64_t lda,
                     const int32_t *a_zp, bool a_zp_per_row, const void *b, bool b_signed,
                     int64_t ldb, const int32_t *b_zp, bool b_zp_per_col, int32_t *c, int64_t ldc)
{
    for (int64_t m = 0; m < M; m++) {
        int64_t az = a_zp ? a_zp[a_zp_per_row ? m : 0] : 0;
        for (int64_t n = 0; n < N; n++) {
            int64_t bz = b_zp ? b_zp[b_zp_per_col ? n : 0] : 0;
            int64_t sum = 0;
            for (int64_t k = 0; k < K; k++) {
                int64_t av = load_elem(a, a_signed, (size_t)(m * lda + k));
                int64_t bv = load_elem(b, b_signed, (size_t)(k * ldb + n));
                sum += (av - az) * (bv - bz);
            }
            c[m * ldc + n] = (int32_t)(uint32_t)(uint64_t)sum;
        }
    }
}

#if !JOULE_QGEMM_X86
/* Without x86 there are no SIMD paths; these keep the table complete and are never selected. */
void joule_qgemm_ukernel_avx2(int64_t kgroups, const void *apanel, const void *bpanel,
                              int32_t *c, int64_t ldc, const joule_qgemm_fixup *fx)
{
    (void)kgroups, (void)apanel, (void)bpanel, (void)c, (void)ldc, (void)fx;
}
void joule_qgemm_ukernel_avxvnni(int64_t kgroups, const void *apanel, const void *bpanel,
                                 int32_t *c, int64_t ldc, const joule_qgemm_fixup *fx)
{
    (void)kgroups, (void)apanel, (void)bpanel, (void)c, (void)ldc, (void)fx;
}
void joule_qgemm_ukernel_avx512vnni(int64_t kgroups, const void *apanel, const void *bpanel,
                                    int32_t *c, int64_t ldc, const joule_qgemm_fixup *fx)
{
    (void)kgroups, (void)apanel, (void)bpanel, (void)c, (void)ldc, (void)fx;
}
#endif

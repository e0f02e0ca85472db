/* eval/cpu/quant/qgemm.h: the integer GEMM core of the cpu backend's quantized kernels.
 *
 *   C[m][n] (int32) = sum_k (A[m][k] - a_zp[m or 0]) * (B[k][n] - b_zp[n or 0])
 *
 * A is uint8 or int8 (row-major, lda), B is uint8 or int8; zero points are per tensor, per row of
 * A or per column of B. Products are exact and the sum wraps modulo 2^32 as ONNX allows
 * ("accumulation may overflow if and only if in 32 bits"), so every path is bit-exact with
 * joule_qgemm_ref, whatever the values.
 *
 * B (the weights) is packed once, at prepare time, into the layout of one instruction-set path;
 * joule_qgemm then runs that path. Paths: portable C, AVX2 (16-bit vpmaddwd: no int16 saturation,
 * unlike vpmaddubsw), AVX-VNNI and AVX512-VNNI (vpdpbusd). The fastest path the CPU runs is chosen
 * at run time; tests and benchmarks can force one. Internally A becomes uint8 (int8 + 128) and B
 * int8 (uint8 - 128) with the zero points shifted alike, and zero points enter through row and
 * column sums, so the inner loops only multiply raw bytes. Internal header. */
#ifndef JOULE_QGEMM_H
#define JOULE_QGEMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "joule/status.h"

typedef enum joule_qgemm_isa {
    JOULE_QGEMM_AUTO = 0,   /* the fastest path this CPU runs */
    JOULE_QGEMM_C,          /* portable C over the packed layout (any CPU) */
    JOULE_QGEMM_AVX2,
    JOULE_QGEMM_AVXVNNI,    /* AVX-VNNI (VEX vpdpbusd, 256-bit) */
    JOULE_QGEMM_AVX512VNNI, /* AVX512-VNNI + AVX512BW (512-bit vpdpbusd) */
    JOULE_QGEMM_ISA_COUNT
} joule_qgemm_isa;

/* "c", "avx2", "avxvnni", "avx512vnni" ("auto" for JOULE_QGEMM_AUTO). */
const char *joule_qgemm_isa_name(joule_qgemm_isa isa);
/* Whether this CPU (and OS) can run isa. JOULE_QGEMM_AUTO and JOULE_QGEMM_C are always true. */
bool joule_qgemm_isa_available(joule_qgemm_isa isa);
/* The path JOULE_QGEMM_AUTO resolves to. */
joule_qgemm_isa joule_qgemm_best_isa(void);

/* B packed for one path. Fields are read-only for callers; free with joule_qgemm_packed_free. */
typedef struct joule_qgemm_packed {
    joule_qgemm_isa isa; /* resolved, never AUTO */
    int64_t K, N;
    int kg, nr, mr;      /* k group, panel width and micro-tile height of the path */
    bool wide;           /* elements stored as int16 (AVX2) instead of int8 */
    int64_t kgroups;     /* ceil(K / kg) */
    int64_t npanels;     /* ceil(N / nr) */
    void *data;          /* npanels x kgroups x nr x kg elements (zero padded) */
    int32_t *zp;         /* npanels * nr entries (zero past N): B zero point after the uint8 ->
                            int8 shift */
    int32_t *corr;       /* npanels * nr entries (zero past N): K * zp[n] - sum_k B'[k][n]
                            (modulo 2^32) */
    bool zp_zero;        /* every zp[n] is 0 (the row-sum correction can be skipped) */
} joule_qgemm_packed;

/* Packs B. With trans false, B[k][n] is at b[k * ldb + n] (K x N row-major); with trans true it
 * is at b[n * ldb + k] (N x K, e.g. Conv weights or Gemm with transB). b_zp holds 1 value (per
 * tensor) or N values (per column), or is NULL for zero; values must be in b's range. isa
 * JOULE_QGEMM_AUTO picks joule_qgemm_best_isa(); an isa the CPU lacks is JOULE_ERR_UNSUPPORTED. */
joule_status joule_qgemm_pack(const void *b, bool b_signed, int64_t K, int64_t N, int64_t ldb,
                              bool trans, const int32_t *b_zp, int64_t n_b_zp,
                              joule_qgemm_isa isa, joule_qgemm_packed **out, joule_error *err);
void joule_qgemm_packed_free(joule_qgemm_packed *p);

/* The A side and output of one product. */
typedef struct joule_qgemm_args {
    int64_t M;
    const void *a;       /* M x K: A[m][k] at a[m * lda + k], or at a[k * lda + m] with a_trans */
    bool a_signed;       /* int8 (true) or uint8 (false) */
    bool a_trans;        /* A stored K x M (e.g. an im2col matrix, one row per k) */
    int64_t lda;
    const int32_t *a_zp; /* NULL (zero), 1 value, or M values when a_zp_per_row */
    bool a_zp_per_row;
    int32_t *c;          /* M x N, row m at c + m * ldc */
    int64_t ldc;
    int threads;         /* >= 1; more than 1 only has an effect with OpenMP */
    void *scratch;       /* joule_qgemm_scratch_bytes() bytes, or NULL to allocate per call */
    size_t scratch_bytes; /* size of scratch; fewer threads run when it was sized for fewer */
} joule_qgemm_args;

/* Scratch bytes joule_qgemm needs for M rows of A against b with this many threads (0 when the
 * size overflows; the call then fails with JOULE_ERR_NOMEM). */
size_t joule_qgemm_scratch_bytes(const joule_qgemm_packed *b, int64_t M, int threads);
/* The same before B is packed: for a K x N B on isa (JOULE_QGEMM_AUTO: the best path). */
size_t joule_qgemm_scratch_bytes_for(joule_qgemm_isa isa, int64_t M, int64_t K, int64_t N,
                                     int threads);

/* C = (A - a_zp) x (B - b_zp) with b's path. JOULE_ERR_UNSUPPORTED when b was packed for an isa
 * this CPU lacks; JOULE_ERR_NOMEM when scratch is NULL and cannot be allocated. */
joule_status joule_qgemm(const joule_qgemm_args *args, const joule_qgemm_packed *b,
                         joule_error *err);

/* The definition, in plain loops over unpacked operands (B as in joule_qgemm_pack with
 * trans false). Sums in int64 and keeps the low 32 bits. */
void joule_qgemm_ref(int64_t M, int64_t N, int64_t K, const void *a, bool a_signed, int64_t lda,
                     const int32_t *a_zp, bool a_zp_per_row, const void *b, bool b_signed,
                     int64_t ldb, const int32_t *b_zp, bool b_zp_per_col, int32_t *c, int64_t ldc);

/* ---- internal: the micro-kernels of each path (qgemm.c, qgemm_x86.c) ----
 * A micro-kernel computes one MR x NR tile from a packed A panel (kgroups x MR x kg uint8, or
 * uint16 when wide) and one packed B panel, and stores (not adds) into c (row stride ldc)
 *
 *     c[i][j] = sum_k a'[i][k] * b'[k][j] + row_a[i] * col_a[j] + row_b[i] * col_b[j]
 *
 * modulo 2^32: the zero-point corrections, applied while the tile is in registers. row_b may be
 * NULL (no second term). The caller passes a full MR x NR buffer when the tile is partial. */
typedef struct joule_qgemm_fixup {
    const int32_t *row_a; /* MR entries: the A zero point (shifted) of each row */
    const int32_t *col_a; /* NR entries: corr[] of the panel */
    const int32_t *row_b; /* MR entries: minus the row sums of A', or NULL */
    const int32_t *col_b; /* NR entries: the B zero points (shifted) of the panel */
} joule_qgemm_fixup;

typedef void (*joule_qgemm_ukernel)(int64_t kgroups, const void *apanel, const void *bpanel,
                                    int32_t *c, int64_t ldc, const joule_qgemm_fixup *fx);

void joule_qgemm_ukernel_c(int64_t kgroups, const void *apanel, const void *bpanel, int32_t *c,
                           int64_t ldc, const joule_qgemm_fixup *fx);
void joule_qgemm_ukernel_avx2(int64_t kgroups, const void *apanel, const void *bpanel,
                              int32_t *c, int64_t ldc, const joule_qgemm_fixup *fx);
void joule_qgemm_ukernel_avxvnni(int64_t kgroups, const void *apanel, const void *bpanel,
                                 int32_t *c, int64_t ldc, const joule_qgemm_fixup *fx);
void joule_qgemm_ukernel_avx512vnni(int64_t kgroups, const void *apanel, const void *bpanel,
                                    int32_t *c, int64_t ldc, const joule_qgemm_fixup *fx);

/* Tile geometry of each path (MR x NR, k group KG). */
#define JOULE_QGEMM_C_MR 4
#define JOULE_QGEMM_C_NR 16
#define JOULE_QGEMM_C_KG 1
#define JOULE_QGEMM_AVX2_MR 6
#define JOULE_QGEMM_AVX2_NR 16
#define JOULE_QGEMM_AVX2_KG 2
#define JOULE_QGEMM_AVXVNNI_MR 6
#define JOULE_QGEMM_AVXVNNI_NR 16
#define JOULE_QGEMM_AVXVNNI_KG 4
#define JOULE_QGEMM_AVX512VNNI_MR 8
#define JOULE_QGEMM_AVX512VNNI_NR 32
#define JOULE_QGEMM_AVX512VNNI_KG 4
#define JOULE_QGEMM_MAX_MR 8
#define JOULE_QGEMM_MAX_NR 32

#endif

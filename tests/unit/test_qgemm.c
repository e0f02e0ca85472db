/* tests/unit/test_qgemm.c: every integer-GEMM path this CPU can run (portable C, AVX2, AVX-VNNI,
 * AVX512-VNNI) against the plain reference, bit for bit: odd shapes, K = 1, all four
 * uint8/int8 combinations, zero points per tensor, per row of A and per column of B, strided
 * and transposed A, threads, and extreme values over a long K so that int16 saturation or a wrong
 * modulo-2^32 wrap would show. Paths the CPU lacks are skipped with a message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "eval/cpu/quant/qgemm.h"

typedef struct rng {
    uint64_t s;
} rng;

static uint32_t rnd(rng *r)
{
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return (uint32_t)(r->s >> 11);
}

typedef enum fill { FILL_RANDOM, FILL_MAX, FILL_MIN } fill;

static void fill_bytes(rng *r, uint8_t *p, size_t n, bool is_signed, fill f)
{
    for (size_t i = 0; i < n; i++) {
        if (f == FILL_RANDOM)
            p[i] = (uint8_t)rnd(r);
        else if (f == FILL_MAX)
            p[i] = is_signed ? 0x7f : 0xff;
        else
            p[i] = is_signed ? 0x80 : 0x00;
    }
}

static int32_t rnd_zp(rng *r, bool is_signed)
{
    return is_signed ? (int32_t)(int8_t)rnd(r) : (int32_t)(uint8_t)rnd(r);
}

typedef struct gemm_case {
    int64_t M, N, K;
    bool a_signed, b_signed;
    int a_zp_mode; /* 0 none, 1 per tensor, 2 per row */
    int b_zp_mode; /* 0 none, 1 per tensor, 2 per column */
    fill a_fill, b_fill;
    int32_t a_zp_fixed, b_zp_fixed; /* used with fills other than random when mode 1 */
    int64_t lda_extra, ldb_extra, ldc_extra;
    int threads;
    bool give_scratch;
    bool a_trans; /* hand A to the GEMM stored K x M */
} gemm_case;

/* Runs one case on isa and the reference; fails with the first differing element. */
static void check_case(joule_qgemm_isa isa, const gemm_case *gc, uint64_t seed)
{
    rng r = {seed * 2654435761u + 1};
    const int64_t M = gc->M, N = gc->N, K = gc->K;
    const int64_t lda = K + gc->lda_extra, ldb = N + gc->ldb_extra, ldc = N + gc->ldc_extra;
    uint8_t *a = malloc((size_t)(M * lda) + 1);
    uint8_t *b = malloc((size_t)(K * ldb) + 1);
    int32_t *a_zp = malloc((size_t)M * sizeof *a_zp + 4);
    int32_t *b_zp = malloc((size_t)N * sizeof *b_zp + 4);
    int32_t *c = malloc((size_t)(M * ldc) * sizeof *c + 4);
    int32_t *want = malloc((size_t)(M * ldc) * sizeof *want + 4);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(a_zp);
    assert_non_null(b_zp);
    assert_non_null(c);
    assert_non_null(want);
    fill_bytes(&r, a, (size_t)(M * lda), gc->a_signed, gc->a_fill);
    fill_bytes(&r, b, (size_t)(K * ldb), gc->b_signed, gc->b_fill);
    for (int64_t i = 0; i < M; i++)
        a_zp[i] = gc->a_fill == FILL_RANDOM ? rnd_zp(&r, gc->a_signed) : gc->a_zp_fixed;
    for (int64_t i = 0; i < N; i++)
        b_zp[i] = gc->b_fill == FILL_RANDOM ? rnd_zp(&r, gc->b_signed) : gc->b_zp_fixed;
    /* sentinel in the ldc gap must survive */
    for (int64_t i = 0; i < M * ldc; i++)
        c[i] = want[i] = 0x5a5a5a5a;

    joule_error err;
    joule_qgemm_packed *pb = NULL;
    assert_joule_ok(joule_qgemm_pack(b, gc->b_signed, K, N, ldb, false,
                                     gc->b_zp_mode ? b_zp : NULL, gc->b_zp_mode == 2 ? N : 1, isa,
                                     &pb, &err),
                    &err);
    assert_int_equal(pb->isa, isa);
    uint8_t *at = NULL; /* A stored K x M, row stride M + lda_extra */
    const int64_t ldat = M + gc->lda_extra;
    if (gc->a_trans) {
        at = malloc((size_t)(K * ldat) + 1);
        assert_non_null(at);
        memset(at, 0xcc, (size_t)(K * ldat) + 1);
        for (int64_t m = 0; m < M; m++)
            for (int64_t k = 0; k < K; k++)
                at[k * ldat + m] = a[m * lda + k];
    }
    joule_qgemm_args args = {
        .M = M, .a = gc->a_trans ? (const void *)at : a, .a_signed = gc->a_signed,
        .a_trans = gc->a_trans, .lda = gc->a_trans ? ldat : lda,
        .a_zp = gc->a_zp_mode ? a_zp : NULL, .a_zp_per_row = gc->a_zp_mode == 2,
        .c = c, .ldc = ldc, .threads = gc->threads,
    };
    void *scratch = NULL;
    if (gc->give_scratch) {
        size_t bytes = joule_qgemm_scratch_bytes(pb, M, gc->threads);
        assert_true(bytes > 0);
        scratch = malloc(bytes + 1);
        assert_non_null(scratch);
        args.scratch = (char *)scratch + 1; /* deliberately unaligned */
        args.scratch_bytes = bytes;
    }
    assert_joule_ok(joule_qgemm(&args, pb, &err), &err);
    joule_qgemm_ref(M, N, K, a, gc->a_signed, lda, gc->a_zp_mode ? a_zp : NULL,
                    gc->a_zp_mode == 2, b, gc->b_signed, ldb, gc->b_zp_mode ? b_zp : NULL,
                    gc->b_zp_mode == 2, want, ldc);
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < ldc; n++)
            if (c[m * ldc + n] != want[m * ldc + n])
                fail_msg("%s: M=%lld N=%lld K=%lld a_%s%s b_%s zp a%d b%d threads %d: "
                         "C[%lld][%lld] = %d, reference %d",
                         joule_qgemm_isa_name(isa), (long long)M, (long long)N, (long long)K,
                         gc->a_signed ? "s8" : "u8", gc->a_trans ? "^T" : "",
                         gc->b_signed ? "s8" : "u8", gc->a_zp_mode, gc->b_zp_mode, gc->threads,
                         (long long)m, (long long)n,
                         c[m * ldc + n], want[m * ldc + n]);
    free(scratch);
    free(at);
    joule_qgemm_packed_free(pb);
    free(a);
    free(b);
    free(a_zp);
    free(b_zp);
    free(c);
    free(want);
}

static bool need_isa(joule_qgemm_isa isa)
{
    if (joule_qgemm_isa_available(isa))
        return true;
    print_message("[  SKIPPED ] this CPU cannot run the %s integer GEMM path\n",
                  joule_qgemm_isa_name(isa));
    return false;
}

/* Many shapes (not multiples of any vector width), every dtype pair and zero-point mode. */
static void shapes_for(joule_qgemm_isa isa)
{
    static const int64_t shapes[][3] = {
        {1, 1, 1},   {1, 1, 5},    {2, 3, 1},    {7, 13, 1},   {5, 17, 3},    {6, 16, 2},
        {8, 32, 4},  {9, 33, 5},   {13, 31, 67}, {1, 100, 64}, {100, 1, 64},  {64, 64, 64},
        {17, 47, 129}, {33, 65, 255}, {50, 20, 300}, {3, 200, 1000}, {130, 70, 31},
    };
    uint64_t seed = 1;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        for (int combo = 0; combo < 4; combo++) {
            for (int zp = 0; zp < 4; zp++) {
                gemm_case gc = {
                    .M = shapes[s][0], .N = shapes[s][1], .K = shapes[s][2],
                    .a_signed = combo & 1, .b_signed = (combo >> 1) & 1,
                    .a_zp_mode = zp == 0 ? 0 : zp == 3 ? 2 : 1,
                    .b_zp_mode = zp == 0 ? 0 : zp == 1 ? 1 : 2,
                    .threads = 1,
                };
                check_case(isa, &gc, seed++);
                gc.a_trans = true;
                check_case(isa, &gc, seed++);
            }
        }
    }
}

/* Strided A, B and C, scratch from the caller, several threads. */
static void strides_threads_for(joule_qgemm_isa isa)
{
    static const int64_t shapes[][3] = {{37, 29, 41}, {200, 45, 70}, {3, 300, 17}, {129, 129, 9}};
    uint64_t seed = 1000;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        for (int threads = 1; threads <= 4; threads += 3) {
            for (int scratch = 0; scratch < 2; scratch++) {
                gemm_case gc = {
                    .M = shapes[s][0], .N = shapes[s][1], .K = shapes[s][2],
                    .a_signed = s & 1, .b_signed = !(s & 1), .a_zp_mode = 1, .b_zp_mode = 2,
                    .lda_extra = 3, .ldb_extra = 5, .ldc_extra = 7,
                    .threads = threads, .give_scratch = scratch, .a_trans = scratch,
                };
                check_case(isa, &gc, seed++);
            }
        }
    }
}

/* Extreme values over a long K: every product at its largest magnitude. With vpmaddubsw-style
 * int16 pair sums this saturates; at K = 40000 the int32 sum also wraps, which all paths must do
 * identically. */
static void extremes_for(joule_qgemm_isa isa)
{
    static const int64_t ks[] = {1, 2, 3, 4, 5, 4096, 40000};
    for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
        for (int combo = 0; combo < 4; combo++) {
            for (int pattern = 0; pattern < 4; pattern++) {
                bool as = combo & 1, bs = (combo >> 1) & 1;
                gemm_case gc = {
                    .M = 7, .N = 35, .K = ks[ki], .a_signed = as, .b_signed = bs,
                    .a_fill = (pattern & 1) ? FILL_MIN : FILL_MAX,
                    .b_fill = (pattern & 2) ? FILL_MIN : FILL_MAX,
                    .threads = 1,
                };
                /* no zero point, then zero points at the opposite extreme */
                check_case(isa, &gc, 7);
                gc.a_zp_mode = 1;
                gc.b_zp_mode = 1;
                gc.a_zp_fixed = (pattern & 1) ? (as ? 127 : 255) : (as ? -128 : 0);
                gc.b_zp_fixed = (pattern & 2) ? (bs ? 127 : 255) : (bs ? -128 : 0);
                check_case(isa, &gc, 7);
                gc.b_zp_mode = 2;
                check_case(isa, &gc, 7);
            }
        }
    }
}

static void run_all_for(joule_qgemm_isa isa)
{
    if (!need_isa(isa)) {
        skip();
        return;
    }
    shapes_for(isa);
    strides_threads_for(isa);
    extremes_for(isa);
}

static void test_c(void **state)
{
    (void)state;
    run_all_for(JOULE_QGEMM_C);
}

static void test_avx2(void **state)
{
    (void)state;
    run_all_for(JOULE_QGEMM_AVX2);
}

static void test_avxvnni(void **state)
{
    (void)state;
    run_all_for(JOULE_QGEMM_AVXVNNI);
}

static void test_avx512vnni(void **state)
{
    (void)state;
    run_all_for(JOULE_QGEMM_AVX512VNNI);
}

/* AUTO resolves to an available path, and the reference itself matches hand-computed values. */
static void test_auto_and_reference(void **state)
{
    (void)state;
    joule_qgemm_isa best = joule_qgemm_best_isa();
    assert_true(best != JOULE_QGEMM_AUTO);
    assert_true(joule_qgemm_isa_available(best));
    print_message("[     INFO ] integer GEMM path chosen on this CPU: %s\n",
                  joule_qgemm_isa_name(best));

    /* ONNX MatMulInteger example: A 4x3 uint8 (zp 12), B 3x2 uint8 (zp 0) */
    const uint8_t a[] = {11, 7, 3, 10, 6, 2, 9, 5, 1, 8, 4, 0};
    const uint8_t b[] = {1, 4, 2, 5, 3, 6};
    const int32_t azp = 12, bzp = 0;
    const int32_t expect[] = {-38, -83, -44, -98, -50, -113, -56, -128};
    int32_t c[8];
    joule_qgemm_ref(4, 2, 3, a, false, 3, &azp, false, b, false, 2, &bzp, false, c, 2);
    assert_memory_equal(c, expect, sizeof c);

    joule_error err;
    joule_qgemm_packed *pb = NULL;
    assert_joule_ok(joule_qgemm_pack(b, false, 3, 2, 2, false, &bzp, 1, JOULE_QGEMM_AUTO, &pb,
                                     &err),
                    &err);
    memset(c, 0, sizeof c);
    joule_qgemm_args args = {.M = 4, .a = a, .lda = 3, .a_zp = &azp, .c = c, .ldc = 2,
                             .threads = 1};
    assert_joule_ok(joule_qgemm(&args, pb, &err), &err);
    assert_memory_equal(c, expect, sizeof c);
    joule_qgemm_packed_free(pb);

    /* transposed B (N x K) packs to the same product */
    const uint8_t bt[] = {1, 2, 3, 4, 5, 6};
    assert_joule_ok(joule_qgemm_pack(bt, false, 3, 2, 3, true, &bzp, 1, JOULE_QGEMM_C, &pb, &err),
                    &err);
    memset(c, 0, sizeof c);
    assert_joule_ok(joule_qgemm(&args, pb, &err), &err);
    assert_memory_equal(c, expect, sizeof c);
    joule_qgemm_packed_free(pb);
}

/* Bad arguments fail with a message instead of reading out of bounds. */
static void test_bad_arguments(void **state)
{
    (void)state;
    joule_error err;
    joule_qgemm_packed *pb = NULL;
    const uint8_t b[4] = {0};
    int32_t zp[3] = {0};
    assert_int_equal(joule_qgemm_pack(b, false, 2, 2, 1, false, NULL, 0, JOULE_QGEMM_C, &pb, &err),
                     JOULE_ERR_INVALID);
    assert_int_equal(joule_qgemm_pack(b, false, 2, 2, 2, false, zp, 3, JOULE_QGEMM_C, &pb, &err),
                     JOULE_ERR_INVALID);
    assert_null(pb);
    assert_joule_ok(joule_qgemm_pack(b, false, 2, 2, 2, false, NULL, 0, JOULE_QGEMM_C, &pb, &err),
                    &err);
    int32_t c[4];
    joule_qgemm_args args = {.M = 2, .a = b, .lda = 1, .c = c, .ldc = 2, .threads = 1};
    assert_int_equal(joule_qgemm(&args, pb, &err), JOULE_ERR_INVALID);
    joule_qgemm_packed_free(pb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auto_and_reference),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_c),
        cmocka_unit_test(test_avx2),
        cmocka_unit_test(test_avxvnni),
        cmocka_unit_test(test_avx512vnni),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

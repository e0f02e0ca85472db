/* compress/prune_magnitude.c: unstructured magnitude pruning (a target per layer, or one threshold
 * over all layers) and N:M semi-structured pruning along the reduction axis. The k-th smallest
 * magnitude is found by a two-pass radix selection on the magnitudes' float bits (which order like
 * the floats: a histogram of the top 16 bits, then of the low 16 bits inside the bucket that holds
 * it), streaming over the weights with no scratch copy; ties at the threshold go to the lowest
 * indices first, so exactly round(sparsity * n) weights end zero and every run gives the same
 * result. Large float32 tensors (PAR_MIN elements and up) are shared out among OpenMP threads in
 * blocks: the histograms (per-thread bins, added up), and one pass that copies borrowed weights,
 * zeroes them and counts the zeros for the report; the output does not depend on the thread
 * count. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/compress_internal.h"
#include "compress/parallel.h"
#include "formats/ops/ops.h"
#include "joule/prune.h"

#define PASS "prune"

void joule_prune_defaults(joule_prune_options *o)
{
    memset(o, 0, sizeof *o);
    o->sparsity = -1;
    o->scope = JOULE_PRUNE_SCOPE_LAYER;
}

joule_status joule_parse_pattern(const char *s, int *n, int *m, joule_error *err)
{
    *n = *m = 0;
    if (!s)
        return joule_fail(err, JOULE_ERR_INVALID, "pattern: missing");
    char *end;
    errno = 0;
    long a = strtol(s, &end, 10);
    if (end == s || *end != ':' || errno || a < 1 || s[0] == '+' || s[0] == ' ')
        return joule_fail(err, JOULE_ERR_INVALID, "pattern '%s': expected N:M, e.g. 2:4", s);
    const char *p = end + 1;
    long b = strtol(p, &end, 10);
    if (end == p || *end || errno || p[0] == '+' || p[0] == ' ' || p[0] == '-')
        return joule_fail(err, JOULE_ERR_INVALID, "pattern '%s': expected N:M, e.g. 2:4", s);
    if (b > 256)
        return joule_fail(err, JOULE_ERR_INVALID, "pattern '%s': M is at most 256", s);
    if (a >= b)
        return joule_fail(err, JOULE_ERR_INVALID,
                          "pattern '%s': N must be less than M (N non-zeros in every M)", s);
    *n = (int)a;
    *m = (int)b;
    return JOULE_OK;
}

/* |w[i]| as float, NaN as +inf (never pruned first). */
static float magnitude(const joule_tensor *t, size_t i)
{
    float v = t->dtype == JOULE_F32 ? ((const float *)t->data)[i]
                                     : joule_dtype_info(t->dtype)->to_f32(t->data, i);
    v = fabsf(v);
    return isnan(v) ? INFINITY : v;
}

static void set_zero(joule_tensor *t, void *data, size_t i)
{
    if (t->dtype == JOULE_F32)
        ((float *)data)[i] = 0.0f;
    else
        joule_dtype_info(t->dtype)->from_f32(data, i, 0.0f);
}

typedef enum { MODE_SKIP, MODE_LAYER, MODE_GLOBAL, MODE_NM } layer_mode;

typedef struct layer {
    joule_node *node;
    joule_value *w;
    layer_mode mode;
    double target;
    /* N:M geometry: line r, position k -> element base(r) + k * kstride, where
     * base(r) = (r / per_batch) * batch_stride + (r % per_batch) * line_stride */
    size_t lines, k_len, kstride, per_batch, batch_stride, line_stride;
    /* zeros before and after pruning; UINT64_MAX: not counted yet (cz_zeros when reported) */
    uint64_t zeros_before, zeros_after;
    char how[192];
} layer;

/* N:M geometry for the weight of n; false (with why) when it has none. */
static bool nm_geometry(const joule_node *n, const joule_tensor *t, layer *L, char *why,
                        size_t why_size)
{
    const char *op = n->op_type;
    if (strcmp(op, "Conv") == 0 && t->rank >= 2) {
        L->lines = (size_t)t->dims[0];
        L->k_len = t->count / (L->lines ? L->lines : 1);
        L->kstride = 1;
        L->per_batch = L->lines;
        L->line_stride = L->k_len;
        L->batch_stride = 0;
        return true;
    }
    if (strcmp(op, "Gemm") == 0 && t->rank == 2) {
        bool tb = joule_attr_int(n, "transB", 0) != 0;
        size_t K = (size_t)t->dims[tb ? 1 : 0], N = (size_t)t->dims[tb ? 0 : 1];
        L->lines = N;
        L->k_len = K;
        L->kstride = tb ? 1 : N;
        L->per_batch = N;
        L->line_stride = tb ? K : 1;
        L->batch_stride = 0;
        return true;
    }
    if (strcmp(op, "MatMul") == 0 && t->rank >= 1) {
        if (t->rank == 1) {
            L->lines = 1;
            L->k_len = t->count;
            L->kstride = 1;
            L->per_batch = 1;
            L->line_stride = 0;
            L->batch_stride = 0;
            return true;
        }
        size_t K = (size_t)t->dims[t->rank - 2], N = (size_t)t->dims[t->rank - 1];
        size_t batches = K && N ? t->count / (K * N) : 0;
        L->lines = batches * N;
        L->k_len = K;
        L->kstride = N;
        L->per_batch = N;
        L->line_stride = 1;
        L->batch_stride = K * N;
        return true;
    }
    snprintf(why, why_size, "N:M is defined for Conv, Gemm and MatMul weights, not %s", op);
    return false;
}

/* Keeps the N largest of every M consecutive along the reduction axis. */
static void prune_nm(layer *L, joule_tensor *t, void *data, int N, int M)
{
    size_t idx[256];
    float mag[256];
    for (size_t r = 0; r < L->lines; r++) {
        size_t base = (r / L->per_batch) * L->batch_stride + (r % L->per_batch) * L->line_stride;
        for (size_t g0 = 0; g0 + (size_t)M <= L->k_len; g0 += (size_t)M) {
            for (int j = 0; j < M; j++) {
                idx[j] = base + (g0 + (size_t)j) * L->kstride;
                mag[j] = magnitude(t, idx[j]);
            }
            /* zero the M-N smallest; among equals the lower index goes first */
            for (int z = 0; z < M - N; z++) {
                int best = -1;
                for (int j = 0; j < M; j++) {
                    if (mag[j] < 0)
                        continue;
                    if (best < 0 || mag[j] < mag[best])
                        best = j;
                }
                set_zero(t, data, idx[best]);
                mag[best] = -1; /* taken */
            }
        }
    }
}

/* Order-preserving key of a magnitude: the bits of |v| (NaN as +inf, as magnitude() does).
 * Non-negative floats compare like their bit patterns read as unsigned integers. */
static inline uint32_t key_bits(uint32_t u)
{
    u &= 0x7fffffffu;
    return u > 0x7f800000u ? 0x7f800000u : u;
}

static inline uint32_t mag_key(float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return key_bits(u);
}

/* Tensors are walked in blocks of KEY_CHUNK elements: the unit of work of a thread, and of the
 * tie bookkeeping below. */
#define KEY_CHUNK 4096
/* Fewer elements than this in a tensor: one thread (a team costs more than it saves). */
#define PAR_MIN ((size_t)1 << 16)

/* loops the compiler may run in vector lanes (gcc -O2 keeps these scalar otherwise) */
#if HAVE_OPENMP
#define SIMD_ZEROS _Pragma("omp simd reduction(+ : zeros)")
#define SIMD_ZEROS_TIES _Pragma("omp simd reduction(+ : zeros, tie)")
#else
#define SIMD_ZEROS
#define SIMD_ZEROS_TIES
#endif

static size_t n_blocks(size_t count)
{
    return count / KEY_CHUNK + (count % KEY_CHUNK != 0);
}

/* Threads for a tensor of count elements: 1 below PAR_MIN, else at most max_threads. */
static int threads_for(size_t count, int max_threads)
{
    return count < PAR_MIN ? 1 : max_threads;
}

/* Keys of t's elements [from, from + n), n <= KEY_CHUNK; returns how many are zero (+0 or -0:
 * key 0; for float32 exactly what cz_zeros counts). */
static uint64_t mag_keys(const joule_tensor *t, size_t from, size_t n, uint32_t *keys)
{
    uint64_t zeros = 0;
    if (t->dtype == JOULE_F32) {
        const unsigned char *p = (const unsigned char *)t->data + from * sizeof(float);
        SIMD_ZEROS
        for (size_t i = 0; i < n; i++) {
            uint32_t u;
            memcpy(&u, p + i * sizeof u, sizeof u);
            keys[i] = key_bits(u);
            zeros += keys[i] == 0;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            keys[i] = mag_key(magnitude(t, from + i));
            zeros += keys[i] == 0;
        }
    }
    return zeros;
}

/* Over blocks [b0, b1) of t: hist[key >> 16] counts for every key (high == UINT32_MAX), or
 * hist[key & 0xffff] for the keys whose top 16 bits are `high`. Returns the zero keys seen. */
static uint64_t hist_blocks(const joule_tensor *t, size_t b0, size_t b1, uint32_t high,
                           uint64_t *hist)
{
    uint32_t keys[KEY_CHUNK];
    uint64_t zeros = 0;
    for (size_t b = b0; b < b1; b++) {
        size_t e = b * KEY_CHUNK;
        size_t c = t->count - e < KEY_CHUNK ? t->count - e : KEY_CHUNK;
        zeros += mag_keys(t, e, c, keys);
        if (high == UINT32_MAX) {
            for (size_t j = 0; j < c; j++)
                hist[keys[j] >> 16]++;
        } else {
            for (size_t j = 0; j < c; j++)
                if (keys[j] >> 16 == high)
                    hist[keys[j] & 0xffffu]++;
        }
    }
    return zeros;
}

/* Adds t's keys to hist (see hist_blocks), with nt threads: each counts its share of the blocks
 * into its own bins (thread 0 into hist, the others into spare, (nt - 1) x 65536 zeroed bins),
 * merged afterwards. Counts add up the same in any order, so the result does not depend on nt.
 * Returns the zero keys seen. */
static uint64_t histogram(const joule_tensor *t, uint32_t high, uint64_t *hist, uint64_t *spare,
                          int nt)
{
    size_t nb = n_blocks(t->count);
#if HAVE_OPENMP
    if (nt > 1) {
        uint64_t zeros = 0;
#pragma omp parallel num_threads(nt) reduction(+ : zeros)
        {
            size_t lo, hi, id = cz_thread_share(nb, &lo, &hi);
            uint64_t *h = id ? spare + (id - 1) * 65536 : hist;
            zeros += hist_blocks(t, lo, hi, high, h);
        }
        for (int i = 0; i < nt - 1; i++) {
            uint64_t *h = spare + (size_t)i * 65536;
            for (size_t j = 0; j < 65536; j++)
                hist[j] += h[j];
            memset(h, 0, 65536 * sizeof *h);
        }
        return zeros;
    }
#else
    (void)spare;
    (void)nt;
#endif
    return hist_blocks(t, 0, nb, high, hist);
}

/* Elements [lo, hi) of a float32 tensor, from src into dst (the same buffer, or a fresh one: the
 * copy of borrowed weights and the pruning are one pass): magnitudes below thr become +0, the
 * rest are copied. *ties receives the magnitudes equal to thr (kept here; prune_pool zeroes the
 * first of them). Returns the zeros written (+0 or -0). */
static uint64_t zero_block(const unsigned char *src, uint32_t *dst, size_t lo, size_t hi,
                           uint32_t thr, uint32_t *ties)
{
    uint64_t zeros = 0;
    uint32_t tie = 0;
    /* without branches: which half of the weights goes is random */
    SIMD_ZEROS_TIES
    for (size_t e = lo; e < hi; e++) {
        uint32_t u;
        memcpy(&u, src + e * sizeof u, sizeof u);
        uint32_t key = key_bits(u);
        uint32_t kept = u & ((uint32_t)0 - (uint32_t)(key >= thr));
        dst[e] = kept;
        zeros += (kept & 0x7fffffffu) == 0;
        tie += key == thr;
    }
    *ties = tie;
    return zeros;
}

/* Appends to idx[*n] the elements of [lo, hi) of dst whose key's top 16 bits are top (checked
 * 64 at a time first: most runs of 64 have none). */
static void collect_block(const uint32_t *dst, size_t lo, size_t hi, uint32_t top, size_t *idx,
                          size_t *n)
{
    for (size_t s = lo; s < hi; s += 64) {
        size_t end = hi - s < 64 ? hi : s + 64;
        uint64_t zeros = 0; /* here: matches */
        SIMD_ZEROS
        for (size_t e = s; e < end; e++)
            zeros += key_bits(dst[e]) >> 16 == top;
        if (!zeros)
            continue;
        for (size_t e = s; e < end; e++)
            if (key_bits(dst[e]) >> 16 == top)
                idx[(*n)++] = e;
    }
}

/* Where a float32 layer's pruning goes: candidates of the boundary bucket, per thread. */
typedef struct cand_lists {
    size_t *idx; /* threads x cap */
    size_t *n;   /* per thread */
    size_t cap;
    uint32_t top;
} cand_lists;

/* Prunes float32 layer L at thr with nt threads, in one pass from its bytes (borrowed ones, from a
 * mapped file, are written straight into a new buffer, which then becomes the tensor's own, as
 * joule_tensor_mutable_data does after its copy). ties[b]: block b's magnitudes equal to thr
 * (kept). With cl, also lists (per thread, in index order) the elements whose key's top 16 bits
 * are cl->top. Sets L->zeros_after to the zeros written. */
static joule_status zero_f32(layer *L, uint32_t thr, int nt, uint32_t *ties, cand_lists *cl,
                             joule_error *err)
{
    joule_tensor *t = L->w->data;
    uint32_t *dst = t->owned; /* malloc'd: aligned for any type */
    if (!dst)
        dst = malloc(t->nbytes ? t->nbytes : 1);
    if (!dst)
        return joule_fail(err, JOULE_ERR_NOMEM, "prune: out of memory copying '%s'", L->w->name);
    const unsigned char *src = t->data;
    size_t nb = n_blocks(t->count), count = t->count;
    uint64_t zeros = 0;
    if (cl)
        memset(cl->n, 0, (size_t)nt * sizeof *cl->n);
#if HAVE_OPENMP
#pragma omp parallel num_threads(nt) reduction(+ : zeros) if (nt > 1)
#endif
    {
        size_t b0, b1, id = cz_thread_share(nb, &b0, &b1);
        for (size_t b = b0; b < b1; b++) {
            size_t lo = b * KEY_CHUNK, hi = count - lo < KEY_CHUNK ? count : lo + KEY_CHUNK;
            zeros += zero_block(src, dst, lo, hi, thr, &ties[b]);
            if (cl)
                collect_block(dst, lo, hi, cl->top, cl->idx + id * cl->cap, &cl->n[id]);
        }
    }
    t->owned = dst;
    t->data = dst;
    t->origin = NULL;
    L->zeros_after = zeros;
    return JOULE_OK;
}

/* Zeroes the k smallest magnitudes over layers[0..n) (one pool), ties by layer order then index.
 * *threshold receives the magnitude at the cut. Counts the zeros of float32 layers on the way
 * (zeros_before, zeros_after) when it changes them.
 * Float32 pools whose boundary bucket (the top 16 bits of the cut) is small take one pass after
 * the first histogram: everything below the bucket goes, and the bucket's elements, listed in
 * that pass, settle the low 16 bits and are pruned from the list. Others take a second
 * histogram pass over the bucket, then the pruning pass. */
static joule_status prune_pool(layer **ls, size_t n, uint64_t k, float *threshold, joule_error *err)
{
    uint64_t total = 0;
    bool all_f32 = true;
    size_t most = 0;
    for (size_t i = 0; i < n; i++) {
        const joule_tensor *t = ls[i]->w->data;
        total += t->count;
        all_f32 &= t->dtype == JOULE_F32;
        most = t->count > most ? t->count : most;
        ls[i]->zeros_after = UINT64_MAX;
    }
    *threshold = 0;
    if (k == 0 || total == 0)
        return JOULE_OK;
    if (k > total)
        k = total;
    int max_threads = 1;
#if HAVE_OPENMP
    max_threads = omp_get_max_threads();
    if (max_threads > 64)
        max_threads = 64;
    if (max_threads < 1)
        max_threads = 1;
    bool big = false;
    for (size_t i = 0; i < n; i++)
        big |= threads_for(ls[i]->w->data->count, max_threads) > 1;
    if (!big)
        max_threads = 1;
#endif
    uint64_t *hist = calloc(65536 * (size_t)max_threads, sizeof *hist);
    uint32_t *ties = malloc((n_blocks(most) ? n_blocks(most) : 1) * sizeof *ties);
    size_t *cand = NULL;
    size_t *starts = NULL;
    cand_lists cl = {0};
    joule_status st = JOULE_OK;
    if (!hist || !ties) {
        st = joule_fail(err, JOULE_ERR_NOMEM, "prune: out of memory for a histogram");
        goto done;
    }
    uint64_t *spare = hist + 65536;
    /* the (k-1)-th smallest key (0-based): its top 16 bits, then its low 16 bits; `below`
     * counts the keys smaller than what is fixed so far */
    const uint64_t want = k - 1;
    uint64_t below = 0;
    for (size_t i = 0; i < n; i++) {
        const joule_tensor *t = ls[i]->w->data;
        uint64_t z = histogram(t, UINT32_MAX, hist, spare, threads_for(t->count, max_threads));
        if (t->dtype == JOULE_F32)
            ls[i]->zeros_before = z;
    }
    uint32_t hi = 0;
    while (below + hist[hi] <= want)
        below += hist[hi++];
    const uint64_t bucket = hist[hi];
    memset(hist, 0, 65536 * sizeof *hist);
    uint32_t thr;
    if (all_f32 && bucket <= (total >> 6) + KEY_CHUNK) {
        /* one pass: below the bucket goes, the bucket is listed (per thread, then per layer) */
        cl.cap = (size_t)bucket;
        cl.top = hi;
        cand = malloc((size_t)bucket * sizeof *cand + 1);
        starts = malloc((n + 1) * sizeof *starts);
        cl.idx = malloc((size_t)max_threads * (size_t)bucket * sizeof *cl.idx + 1);
        cl.n = malloc((size_t)max_threads * sizeof *cl.n);
        if (!cand || !starts || !cl.idx || !cl.n) {
            st = joule_fail(err, JOULE_ERR_NOMEM, "prune: out of memory for %llu candidates",
                            (unsigned long long)bucket);
            goto done;
        }
        size_t have = 0;
        starts[0] = 0;
        for (size_t i = 0; i < n && !st; i++) {
            int nt = threads_for(ls[i]->w->data->count, max_threads);
            if ((st = zero_f32(ls[i], hi << 16, nt, ties, &cl, err)))
                break;
            for (int id = 0; id < nt; id++) {
                memcpy(cand + have, cl.idx + (size_t)id * cl.cap, cl.n[id] * sizeof *cand);
                have += cl.n[id];
            }
            starts[i + 1] = have;
        }
        if (st)
            goto done;
        for (size_t i = 0; i < n; i++) {
            const uint32_t *p = ls[i]->w->data->data;
            for (size_t c = starts[i]; c < starts[i + 1]; c++)
                hist[key_bits(p[cand[c]]) & 0xffffu]++;
        }
        uint32_t lo = 0;
        while (below + hist[lo] <= want)
            below += hist[lo++];
        thr = hi << 16 | lo;
        uint64_t quota = k - below;
        for (size_t i = 0; i < n; i++) {
            uint32_t *p = (uint32_t *)ls[i]->w->data->owned;
            for (size_t c = starts[i]; c < starts[i + 1]; c++) {
                uint32_t key = key_bits(p[cand[c]]);
                if (key < thr || (key == thr && quota > 0)) {
                    if (key == thr)
                        quota--;
                    ls[i]->zeros_after += key != 0; /* a zero was counted already */
                    p[cand[c]] = 0; /* +0.0f */
                }
            }
        }
        memcpy(threshold, &thr, sizeof *threshold);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const joule_tensor *t = ls[i]->w->data;
        histogram(t, hi, hist, spare, threads_for(t->count, max_threads));
    }
    uint32_t lo = 0;
    while (below + hist[lo] <= want)
        below += hist[lo++];
    thr = hi << 16 | lo;
    /* everything below thr goes; of those equal to thr, the first `quota` */
    uint64_t quota = k - below;
    for (size_t i = 0; i < n && !st; i++) {
        joule_tensor *t = ls[i]->w->data;
        if (t->dtype == JOULE_F32) {
            if ((st = zero_f32(ls[i], thr, threads_for(t->count, max_threads), ties, NULL, err)))
                break;
            /* the ties, in index order while the quota lasts (blocks without any are skipped) */
            uint32_t *p = t->owned;
            size_t nb = n_blocks(t->count);
            for (size_t b = 0; b < nb && quota > 0; b++) {
                if (!ties[b])
                    continue;
                size_t end = t->count - b * KEY_CHUNK < KEY_CHUNK ? t->count : (b + 1) * KEY_CHUNK;
                for (size_t e = b * KEY_CHUNK; e < end && quota > 0; e++)
                    if (key_bits(p[e]) == thr) {
                        ls[i]->zeros_after += thr != 0; /* a tie at 0 was counted already */
                        p[e] = 0; /* +0.0f */
                        quota--;
                    }
            }
            continue;
        }
        void *data = joule_tensor_mutable_data(t);
        if (!data && t->nbytes) {
            st = joule_fail(err, JOULE_ERR_NOMEM, "prune: out of memory copying '%s'",
                            ls[i]->w->name);
            break;
        }
        for (size_t e = 0; e < t->count; e++) {
            uint32_t key = mag_key(magnitude(t, e));
            if (key < thr || (key == thr && quota > 0)) {
                if (key == thr)
                    quota--;
                set_zero(t, data, e);
            }
        }
    }
    if (!st)
        memcpy(threshold, &thr, sizeof *threshold);
done:
    free(hist);
    free(ties);
    free(cand);
    free(starts);
    free(cl.idx);
    free(cl.n);
    return st;
}

static bool skipped(const joule_prune_options *o, const char *node, const char *weight)
{
    for (size_t i = 0; i < o->n_skip; i++)
        if (cz_glob(o->skip[i], node) || cz_glob(o->skip[i], weight))
            return true;
    return false;
}

static const joule_prune_override *find_override(const joule_prune_options *o, const char *node,
                                                 const char *weight, const char *op)
{
    for (size_t i = 0; i < o->n_overrides; i++) {
        const joule_prune_override *v = &o->overrides[i];
        if (!v->match && !v->op_type)
            continue;
        if (v->match && !cz_glob(v->match, node) && !cz_glob(v->match, weight))
            continue;
        if (v->op_type && strcmp(v->op_type, op) != 0)
            continue;
        return v;
    }
    return NULL;
}

/* Warning rows for skip patterns and overrides that select no prunable layer of g (a typo in a
 * layer name would otherwise change nothing without a word). */
static joule_status warn_unmatched(const joule_graph *g, const joule_prune_options *o,
                                   joule_report *r, joule_error *err)
{
    joule_status st = cz_warn_unused(r, PASS, g, o->skip, o->n_skip, "skip pattern", false, true,
                                     err);
    for (size_t i = 0; i < o->n_overrides && !st && r; i++) {
        const joule_prune_override *v = &o->overrides[i];
        bool used = false;
        for (size_t k = 0; k < g->n_nodes && !used; k++) {
            const joule_node *n = g->nodes[k];
            int wi = cz_weight_input(n);
            if (wi < 0 || !n->inputs[wi])
                continue;
            char lb[160];
            const char *label = cz_label(g, n, lb, sizeof lb);
            bool name = !v->match || cz_glob(v->match, label) ||
                        cz_glob(v->match, n->inputs[wi]->name);
            used = name && (!v->op_type || strcmp(v->op_type, n->op_type) == 0);
        }
        if (!used)
            st = cz_warn(r, PASS, err,
                         "override %zu (%s%s%s) matches no prunable layer in this model", i,
                         v->match ? v->match : "", v->match && v->op_type ? " " : "",
                         v->op_type ? v->op_type : "");
    }
    return st;
}

/* An override naming an op that has no prunable weight (a typo, or e.g. Relu) would match
 * nothing; say so, listing the ops that can be pruned. */
static joule_status unknown_override_op(size_t i, const char *op, joule_error *err)
{
    char list[256] = "";
    size_t len = 0;
    for (size_t k = 0; k < joule_op_count(); k++) {
        const joule_op_def *d = joule_op_at(k);
        if (!(d->flags & JOULE_OP_WEIGHTED) || (d->domain && d->domain[0]))
            continue;
        int w = snprintf(list + len, sizeof list - len, "%s%s", len ? ", " : "", d->op_type);
        if (w < 0 || (size_t)w >= sizeof list - len)
            break;
        len += (size_t)w;
    }
    return joule_fail(err, JOULE_ERR_INVALID, "prune: override %zu: op '%s' has no prunable "
                      "weights (ops that do: %s)", i, op, list);
}

static joule_status check_options(const joule_prune_options *o, joule_error *err)
{
    if (isnan(o->sparsity) || o->sparsity >= 1.0)
        return joule_fail(err, JOULE_ERR_INVALID, "prune: sparsity %g is outside [0, 1)",
                          o->sparsity);
    if (o->pattern_m || o->pattern_n)
        if (o->pattern_n < 1 || o->pattern_n >= o->pattern_m || o->pattern_m > 256)
            return joule_fail(err, JOULE_ERR_INVALID, "prune: pattern %d:%d needs 1 <= N < M <= 256",
                              o->pattern_n, o->pattern_m);
    if (o->sparsity < 0 && !o->pattern_m && !o->n_overrides)
        return joule_fail(err, JOULE_ERR_INVALID,
                          "prune: give a sparsity, an N:M pattern or per-layer overrides");
    for (size_t i = 0; i < o->n_overrides; i++) {
        if (!(o->overrides[i].sparsity >= 0 && o->overrides[i].sparsity < 1))
            return joule_fail(err, JOULE_ERR_INVALID,
                              "prune: override %zu: sparsity %g is outside [0, 1)", i,
                              o->overrides[i].sparsity);
        const char *op = o->overrides[i].op_type;
        const joule_op_def *d = op ? joule_op_find("", op) : NULL;
        if (op && !(d && (d->flags & JOULE_OP_WEIGHTED)))
            return unknown_override_op(i, op, err);
    }
    return JOULE_OK;
}

/* Whether every reader of w reads it as the weight of a weighted op. */
static bool only_weight_reads(const joule_graph *g, const joule_value *w)
{
    size_t as_weight = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        int wi = cz_weight_input(g->nodes[i]);
        if (wi >= 0 && g->nodes[i]->inputs[wi] == w)
            as_weight++;
    }
    return as_weight == cz_uses(g, w);
}

static joule_status collect(joule_graph *g, const joule_prune_options *o, layer **out, size_t *n_out,
                            joule_report *r, joule_error *err)
{
    *out = NULL;
    *n_out = 0;
    /* weights held by Constant nodes become initializers first, so the node order (and the
     * labels of unnamed nodes) no longer change below */
    joule_status st = JOULE_OK;
    for (size_t i = 0; i < g->n_nodes && !st; i++) {
        joule_node *nd = g->nodes[i];
        int wi = cz_weight_input(nd);
        joule_value *w = wi >= 0 ? nd->inputs[wi] : NULL;
        if (w && !w->data && cz_const(g, w) && cz_float_dtype(cz_const(g, w)->dtype) &&
            !(w->flags & JOULE_VALUE_OUTPUT)) {
            if ((st = cz_materialize(g, w, err)))
                return st;
            i = (size_t)-1; /* the order changed: start over */
        }
    }
    layer *ls = calloc(g->n_nodes ? g->n_nodes : 1, sizeof *ls);
    if (!ls)
        return joule_fail(err, JOULE_ERR_NOMEM, "prune: out of memory");
    size_t n = 0;
    for (size_t i = 0; i < g->n_nodes && !st; i++) {
        joule_node *nd = g->nodes[i];
        int wi = cz_weight_input(nd);
        if (wi < 0)
            continue;
        joule_value *w = nd->inputs[wi];
        char lb[160];
        const char *label = cz_label(g, nd, lb, sizeof lb);
        if (!w)
            continue;
        const joule_tensor *ct = cz_const(g, w);
        if (!ct) {
            st = cz_note(r, PASS, g, nd, w->name, err, "left alone: %s",
                         w->data ? "the weight is also a graph input (it can be fed at run time)"
                                 : "the weight is computed, not a constant");
            continue;
        }
        if (!cz_float_dtype(ct->dtype)) {
            st = cz_note(r, PASS, g, nd, w->name, err, "left alone: weight dtype %s is not float",
                         joule_dtype_name(ct->dtype));
            continue;
        }
        bool seen = false;
        for (size_t j = 0; j < n; j++)
            seen |= ls[j].w == w;
        if (seen) {
            st = cz_note(r, PASS, g, nd, w->name, err, "weight shared with an earlier layer, pruned there");
            continue;
        }
        if (skipped(o, label, w->name)) {
            st = cz_note(r, PASS, g, nd, w->name, err, "left alone: on the skip list");
            continue;
        }
        if (ct->count < o->min_params) {
            st = cz_note(r, PASS, g, nd, w->name, err,
                         "left alone: %zu weights, fewer than the minimum %llu", ct->count,
                         (unsigned long long)o->min_params);
            continue;
        }
        if (!only_weight_reads(g, w)) {
            st = cz_note(r, PASS, g, nd, w->name, err,
                         "left alone: the tensor is also read as something other than a weight");
            continue;
        }
        if (!w->data) {
            st = cz_note(r, PASS, g, nd, w->name, err, "left alone: the Constant is a graph output");
            continue;
        }
        layer *L = &ls[n];
        L->node = nd;
        L->w = w;
        L->zeros_after = UINT64_MAX;
        const joule_prune_override *ov = find_override(o, label, w->name, nd->op_type);
        char why[128] = "";
        if (ov) {
            L->mode = MODE_LAYER;
            L->target = ov->sparsity;
            snprintf(L->how, sizeof L->how, "unstructured %.4g (override %s%s%s)", ov->sparsity,
                     ov->match ? ov->match : "", ov->match && ov->op_type ? " " : "",
                     ov->op_type ? ov->op_type : "");
        } else if (o->pattern_m && nm_geometry(nd, w->data, L, why, sizeof why) &&
                   L->k_len % (size_t)o->pattern_m == 0) {
            L->mode = MODE_NM;
            snprintf(L->how, sizeof L->how, "%d:%d along a reduction axis of %zu", o->pattern_n,
                     o->pattern_m, L->k_len);
        } else if (o->sparsity >= 0) {
            L->mode = o->scope == JOULE_PRUNE_SCOPE_GLOBAL ? MODE_GLOBAL : MODE_LAYER;
            L->target = o->sparsity;
            if (o->pattern_m && !why[0])
                snprintf(why, sizeof why, "reduction length %zu is not a multiple of %d",
                         L->k_len, o->pattern_m);
            snprintf(L->how, sizeof L->how, "unstructured %.4g (%s)%s%s", o->sparsity,
                     L->mode == MODE_GLOBAL ? "global" : "layer", why[0] ? "; no N:M: " : "", why);
        } else {
            L->mode = MODE_SKIP;
            if (!why[0])
                snprintf(why, sizeof why, "reduction length %zu is not a multiple of %d",
                         L->k_len, o->pattern_m);
            snprintf(L->how, sizeof L->how, "left alone: %s", why);
        }
        /* prune_pool counts a float32 weight's zeros in its first pass over it */
        bool counted = w->data->dtype == JOULE_F32 &&
                       (L->mode == MODE_LAYER || L->mode == MODE_GLOBAL);
        L->zeros_before = counted ? UINT64_MAX : cz_zeros(w->data);
        n++;
    }
    if (st) {
        free(ls);
        return st;
    }
    *out = ls;
    *n_out = n;
    return JOULE_OK;
}

joule_status joule_prune_magnitude(joule_model *m, const joule_prune_options *opt, joule_report *r,
                                   joule_error *err)
{
    if (opt->correct_bias.enabled) /* statistics, this function without it, corrections */
        return cz_prune_corrected(m, opt, r, err);
    joule_status st = check_options(opt, err);
    if (st)
        return st;
    joule_graph *g = m->graph;
    layer *ls;
    size_t n;
    if ((st = warn_unmatched(g, opt, r, err)) || (st = collect(g, opt, &ls, &n, r, err)))
        return st;
    layer **pool = calloc(n ? n : 1, sizeof *pool);
    if (!pool) {
        free(ls);
        return joule_fail(err, JOULE_ERR_NOMEM, "prune: out of memory");
    }
    size_t n_pool = 0;
    uint64_t pool_count = 0;
    for (size_t i = 0; i < n && !st; i++) {
        layer *L = &ls[i];
        joule_tensor *t = L->w->data;
        if (L->mode == MODE_GLOBAL) {
            pool[n_pool++] = L;
            pool_count += t->count;
        } else if (L->mode == MODE_LAYER) {
            float thr;
            layer *one = L;
            st = prune_pool(&one, 1, (uint64_t)llround(L->target * (double)t->count), &thr, err);
        } else if (L->mode == MODE_NM) {
            void *data = joule_tensor_mutable_data(t);
            if (!data && t->nbytes)
                st = joule_fail(err, JOULE_ERR_NOMEM, "prune: out of memory copying '%s'",
                                L->w->name);
            else
                prune_nm(L, t, data, opt->pattern_n, opt->pattern_m);
        }
    }
    float thr = 0;
    if (!st && n_pool)
        st = prune_pool(pool, n_pool, (uint64_t)llround(opt->sparsity * (double)pool_count), &thr,
                        err);
    for (size_t i = 0; i < n && !st; i++) {
        layer *L = &ls[i];
        const joule_tensor *t = L->w->data;
        /* not counted on the way: left unchanged, or not float32 */
        if (L->zeros_before == UINT64_MAX)
            L->zeros_before = cz_zeros(t);
        uint64_t z = L->zeros_after == UINT64_MAX ? cz_zeros(t) : L->zeros_after;
        char lb[160], note[256];
        if (L->mode == MODE_GLOBAL)
            snprintf(note, sizeof note, "%s, threshold |w| <= %.6g", L->how, thr);
        else
            snprintf(note, sizeof note, "%s", L->how);
        joule_layer_change row = {
            .pass = PASS,
            .node = cz_label(g, L->node, lb, sizeof lb),
            .op_type = L->node->op_type,
            .tensor = L->w->name,
            .sparsity_before = t->count ? (double)L->zeros_before / (double)t->count : 0,
            .sparsity_after = t->count ? (double)z / (double)t->count : 0,
            .dtype_before = t->dtype,
            .dtype_after = t->dtype,
            .params_before = t->count,
            .params_after = t->count,
            .bytes_before = t->nbytes,
            .bytes_after = t->nbytes,
            .note = note,
        };
        st = joule_report_add(r, &row, err);
    }
    free(pool);
    free(ls);
    return st;
}

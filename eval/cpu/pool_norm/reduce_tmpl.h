/* eval/cpu/pool_norm/reduce_tmpl.h: ReduceSum/Mean/Max/Min loops for one element type, included
 * by reduce.c with T, SUF, ACC (sum accumulator), ADD(acc, v), FROM_ACC(acc), T_LOWEST,
 * T_HIGHEST and T_EMPTY_MEAN defined. The fast loop takes the input as [outer][n][inner] with
 * the n axis reduced (inner == 1: contiguous rows; otherwise blocks of PN_RED_BLOCK columns);
 * the general loop walks any pattern of reduced and kept axes. */

#define PN_CAT2(a, b) a##_##b
#define PN_CAT(a, b) PN_CAT2(a, b)
#define FN(name) PN_CAT(name, SUF)

static void FN(reduce3)(const T *x, T *y, size_t outer, size_t n, size_t inner, int op, int nt)
{
    (void)nt;
    if (inner == 1) {
        const long long rows = (long long)outer;
        PN_OMP_FOR
        for (long long r = 0; r < rows; r++) {
            const T *xp = x + (size_t)r * n;
            if (op == PN_RED_MAX || op == PN_RED_MIN) {
                T m = xp[0];
                if (op == PN_RED_MAX)
                    for (size_t j = 1; j < n; j++)
                        m = xp[j] > m ? xp[j] : m;
                else
                    for (size_t j = 1; j < n; j++)
                        m = xp[j] < m ? xp[j] : m;
                y[r] = m;
            } else {
                ACC acc = 0;
                PN_SIMD_SUM(acc)
                for (size_t j = 0; j < n; j++)
                    acc = ADD(acc, xp[j]);
                y[r] = op == PN_RED_MEAN ? (T)((double)acc / (double)n) : FROM_ACC(acc);
            }
        }
        return;
    }
    const size_t n_chunks = (inner + PN_RED_BLOCK - 1) / PN_RED_BLOCK;
    const long long tasks = (long long)(outer * n_chunks);
    PN_OMP_FOR
    for (long long t = 0; t < tasks; t++) {
        const size_t b = (size_t)t / n_chunks, i0 = (size_t)t % n_chunks * PN_RED_BLOCK;
        const size_t w = inner - i0 < PN_RED_BLOCK ? inner - i0 : PN_RED_BLOCK;
        const T *xb = x + b * n * inner + i0;
        T *yb = y + b * inner + i0;
        if (op == PN_RED_MAX || op == PN_RED_MIN) {
            T m[PN_RED_BLOCK];
            for (size_t i = 0; i < w; i++)
                m[i] = xb[i];
            if (op == PN_RED_MAX) {
                for (size_t j = 1; j < n; j++)
                    PN_SIMD
                    for (size_t i = 0; i < w; i++)
                        m[i] = xb[j * inner + i] > m[i] ? xb[j * inner + i] : m[i];
            } else {
                for (size_t j = 1; j < n; j++)
                    PN_SIMD
                    for (size_t i = 0; i < w; i++)
                        m[i] = xb[j * inner + i] < m[i] ? xb[j * inner + i] : m[i];
            }
            for (size_t i = 0; i < w; i++)
                yb[i] = m[i];
        } else {
            ACC acc[PN_RED_BLOCK];
            for (size_t i = 0; i < w; i++)
                acc[i] = 0;
            for (size_t j = 0; j < n; j++)
                PN_SIMD
                for (size_t i = 0; i < w; i++)
                    acc[i] = ADD(acc[i], xb[j * inner + i]);
            for (size_t i = 0; i < w; i++)
                yb[i] = op == PN_RED_MEAN ? (T)((double)acc[i] / (double)n) : FROM_ACC(acc[i]);
        }
    }
}

/* Any pattern: g groups of sizes gs[], reduced where gr[]; single-threaded. acc has y_count
 * elements of scratch for sums. n is the number of elements reduced into each output. */
static void FN(reduce_general)(const T *x, T *y, size_t y_count, int g, const size_t *gs,
                               const bool *gr, size_t n, int op, ACC *acc)
{
    size_t ostride[JOULE_MAX_RANK];
    size_t s = 1;
    for (int i = g - 1; i >= 0; i--) {
        ostride[i] = gr[i] ? 0 : s;
        if (!gr[i])
            s *= gs[i];
    }
    const bool is_sum = op == PN_RED_SUM || op == PN_RED_MEAN;
    for (size_t o = 0; o < y_count; o++) {
        if (is_sum)
            acc[o] = 0;
        else
            y[o] = op == PN_RED_MAX ? T_LOWEST : T_HIGHEST;
    }
    size_t idx[JOULE_MAX_RANK] = {0};
    size_t total = 1;
    for (int i = 0; i < g; i++)
        total *= gs[i];
    const int last = g - 1;
    for (size_t e = 0; e < total; e += gs[last]) {
        size_t o = 0;
        for (int i = 0; i < last; i++)
            o += idx[i] * ostride[i];
        const T *xp = x + e;
        const size_t st = ostride[last];
        if (is_sum)
            for (size_t j = 0; j < gs[last]; j++)
                acc[o + j * st] = ADD(acc[o + j * st], xp[j]);
        else if (op == PN_RED_MAX)
            for (size_t j = 0; j < gs[last]; j++)
                y[o + j * st] = xp[j] > y[o + j * st] ? xp[j] : y[o + j * st];
        else
            for (size_t j = 0; j < gs[last]; j++)
                y[o + j * st] = xp[j] < y[o + j * st] ? xp[j] : y[o + j * st];
        for (int i = last - 1; i >= 0; i--) {
            if (++idx[i] < gs[i])
                break;
            idx[i] = 0;
        }
    }
    if (is_sum)
        for (size_t o = 0; o < y_count; o++)
            y[o] = op == PN_RED_MEAN ? (T)((double)acc[o] / (double)n) : FROM_ACC(acc[o]);
}

/* Fills y with the value of a reduction over no elements. */
static void FN(reduce_empty)(T *y, size_t y_count, int op)
{
    for (size_t o = 0; o < y_count; o++)
        y[o] = op == PN_RED_MAX ? T_LOWEST
             : op == PN_RED_MIN ? T_HIGHEST
             : op == PN_RED_MEAN ? T_EMPTY_MEAN
                                 : (T)0;
}

#undef FN
#undef PN_CAT
#undef PN_CAT2

/* eval/cpu/pool_norm/softmax_tmpl.h: Softmax/LogSoftmax loops for one element type, included
 * by softmax.c with T, SUF, EXP, EXP_SIMD and EXP_SIMD_SUM(v) defined (the hints for loops that
 * call EXP; empty when EXP is a libm call that cannot vectorize). Rows are [outer][n][inner]:
 * inner == 1 is the contiguous last-axis case; otherwise columns go in blocks of PN_SM_BLOCK so
 * every pass reads whole cache lines. Max-subtraction keeps exp() from overflowing. */

#define PN_CAT2(a, b) a##_##b
#define PN_CAT(a, b) PN_CAT2(a, b)
#define FN(name) PN_CAT(name, SUF)

/* Max of a row, in 8 independent lanes so it is not one long chain of dependent compares. */
static inline T FN(row_max)(const T *x, size_t n)
{
    T m = x[0];
    size_t j = 0;
    if (n >= 8) {
        T l[8];
        for (int k = 0; k < 8; k++)
            l[k] = x[k];
        for (j = 8; j + 8 <= n; j += 8)
            for (int k = 0; k < 8; k++)
                l[k] = x[j + k] > l[k] ? x[j + k] : l[k];
        m = l[0];
        for (int k = 1; k < 8; k++)
            m = l[k] > m ? l[k] : m;
    }
    for (; j < n; j++)
        m = x[j] > m ? x[j] : m;
    return m;
}

static void FN(softmax)(const T *x, T *y, size_t outer, size_t n, size_t inner, bool logsm,
                        int nt)
{
    (void)nt;
    if (inner == 1) {
        const long long rows = (long long)outer;
        PN_OMP_FOR
        for (long long r = 0; r < rows; r++) {
            const T *xp = x + (size_t)r * n;
            T *yp = y + (size_t)r * n;
            const T m = FN(row_max)(xp, n);
            double s = 0;
            if (logsm) {
                EXP_SIMD_SUM(s)
                for (size_t j = 0; j < n; j++)
                    s += EXP(xp[j] - m);
                const T ls = (T)log(s); /* (x - max) - log(sum): no cancellation at large x */
                PN_SIMD
                for (size_t j = 0; j < n; j++)
                    yp[j] = (xp[j] - m) - ls;
            } else {
                EXP_SIMD_SUM(s)
                for (size_t j = 0; j < n; j++) {
                    const T e = EXP(xp[j] - m);
                    yp[j] = e;
                    s += e;
                }
                const T inv = (T)(1.0 / s);
                PN_SIMD
                for (size_t j = 0; j < n; j++)
                    yp[j] *= inv;
            }
        }
        return;
    }
    const size_t n_chunks = (inner + PN_SM_BLOCK - 1) / PN_SM_BLOCK;
    const long long tasks = (long long)(outer * n_chunks);
    PN_OMP_FOR
    for (long long t = 0; t < tasks; t++) {
        const size_t b = (size_t)t / n_chunks, i0 = (size_t)t % n_chunks * PN_SM_BLOCK;
        const size_t w = inner - i0 < PN_SM_BLOCK ? inner - i0 : PN_SM_BLOCK;
        const T *xb = x + b * n * inner + i0;
        T *yb = y + b * n * inner + i0;
        T m[PN_SM_BLOCK];
        double s[PN_SM_BLOCK];
        for (size_t i = 0; i < w; i++) {
            m[i] = xb[i];
            s[i] = 0;
        }
        for (size_t j = 1; j < n; j++)
            PN_SIMD
            for (size_t i = 0; i < w; i++)
                m[i] = xb[j * inner + i] > m[i] ? xb[j * inner + i] : m[i];
        for (size_t j = 0; j < n; j++)
            EXP_SIMD
            for (size_t i = 0; i < w; i++) {
                const T e = EXP(xb[j * inner + i] - m[i]);
                if (!logsm)
                    yb[j * inner + i] = e;
                s[i] += e;
            }
        if (logsm) {
            T ls[PN_SM_BLOCK];
            for (size_t i = 0; i < w; i++)
                ls[i] = (T)log(s[i]);
            for (size_t j = 0; j < n; j++)
                PN_SIMD
                for (size_t i = 0; i < w; i++)
                    yb[j * inner + i] = (xb[j * inner + i] - m[i]) - ls[i];
        } else {
            T inv[PN_SM_BLOCK];
            for (size_t i = 0; i < w; i++)
                inv[i] = (T)(1.0 / s[i]);
            for (size_t j = 0; j < n; j++)
                PN_SIMD
                for (size_t i = 0; i < w; i++)
                    yb[j * inner + i] *= inv[i];
        }
    }
}

#undef FN
#undef PN_CAT
#undef PN_CAT2

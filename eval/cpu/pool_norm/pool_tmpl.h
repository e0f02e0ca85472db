/* eval/cpu/pool_norm/pool_tmpl.h: MaxPool/AveragePool loops for one element type, included by
 * pool.c once per type with T (element type) and SUF (name suffix) defined. The 2D loop serves
 * 1D and 2D pooling (the common NCHW case, contiguous rows); the N-D loop serves 3D and up. */

#define PN_CAT2(a, b) a##_##b
#define PN_CAT(a, b) PN_CAT2(a, b)
#define FN(name) PN_CAT(name, SUF)

/* Output columns [lo, hi) of one output row whose windows lie inside the input row: taps
 * th0..th1 (rows hs + th * dh) times kw columns (ow * sw - pl + tw * dw). cnt divides (average). */
static void FN(pool_row)(const T *xp, T *yr, int64_t W, int64_t hs, int64_t th0, int64_t th1,
                         int64_t dh, int64_t kw, int64_t dw, int64_t sw, int64_t pl, int64_t lo,
                         int64_t hi, bool is_max, int64_t cnt)
{
    const T init = is_max ? (T)-INFINITY : (T)0;
    const int64_t n = hi - lo;
    T *y = yr + lo;
    for (int64_t j = 0; j < n; j++)
        y[j] = init;
    for (int64_t th = th0; th < th1; th++) {
        for (int64_t tw = 0; tw < kw; tw++) {
            const T *r = xp + (hs + th * dh) * W + lo * sw - pl + tw * dw; /* column lo's tap */
            if (is_max && sw == 1) {
                PN_SIMD
                for (int64_t j = 0; j < n; j++)
                    y[j] = r[j] > y[j] ? r[j] : y[j];
            } else if (is_max && sw == 2) {
                PN_SIMD
                for (int64_t j = 0; j < n; j++)
                    y[j] = r[2 * j] > y[j] ? r[2 * j] : y[j];
            } else if (is_max) {
                for (int64_t j = 0; j < n; j++)
                    y[j] = r[j * sw] > y[j] ? r[j * sw] : y[j];
            } else if (sw == 1) {
                PN_SIMD
                for (int64_t j = 0; j < n; j++)
                    y[j] += r[j];
            } else if (sw == 2) {
                PN_SIMD
                for (int64_t j = 0; j < n; j++)
                    y[j] += r[2 * j];
            } else {
                for (int64_t j = 0; j < n; j++)
                    y[j] += r[j * sw];
            }
        }
    }
    if (!is_max) {
        const T c = (T)cnt;
        PN_SIMD
        for (int64_t j = 0; j < n; j++)
            y[j] = cnt > 0 ? y[j] / c : (T)0;
    }
}

/* 2D pooling over planes of H x W. p->ns is 2 here (1D was lifted to 2D by the caller). */
static void FN(pool2d)(const pool_params *p, const T *x, T *y, int64_t *ind, size_t planes,
                       int nt)
{
    const int64_t H = p->in[0], W = p->in[1], OH = p->out[0], OW = p->out[1];
    const int64_t kh = p->k[0], kw = p->k[1], sh = p->s[0], sw = p->s[1];
    const int64_t dh = p->d[0], dw = p->d[1], pt = p->pb[0], pl = p->pb[1];
    const int64_t eh = H + p->pe[0], ew = W + p->pe[1];
    const bool is_max = p->is_max, include_pad = p->count_include_pad, col = p->storage_order;
    const long long n_planes = (long long)planes;
    (void)nt;
    if (is_max && !ind && kh == 2 && kw == 2 && sh == 2 && sw == 2 && dh == 1 && dw == 1 &&
        pt == 0 && pl == 0 && OH == H / 2 && OW == W / 2) {
        /* 2x2 windows, stride 2, no padding, every window whole (the common CNN downsample):
         * one pass per output row, the four taps compared in the generic loop's order */
        PN_OMP_FOR
        for (long long c = 0; c < n_planes; c++) {
            const T *xp = x + (size_t)c * (size_t)(H * W);
            T *yp = y + (size_t)c * (size_t)(OH * OW);
            for (int64_t oh = 0; oh < OH; oh++) {
                const T *r0 = xp + 2 * oh * W, *r1 = r0 + W;
                T *yr = yp + oh * OW;
                PN_SIMD
                for (int64_t j = 0; j < OW; j++) {
                    T m = (T)-INFINITY;
                    m = r0[2 * j] > m ? r0[2 * j] : m;
                    m = r0[2 * j + 1] > m ? r0[2 * j + 1] : m;
                    m = r1[2 * j] > m ? r1[2 * j] : m;
                    m = r1[2 * j + 1] > m ? r1[2 * j + 1] : m;
                    yr[j] = m;
                }
            }
        }
        return;
    }
    PN_OMP_FOR
    for (long long c = 0; c < n_planes; c++) {
        const T *xp = x + (size_t)c * (size_t)(H * W);
        T *yp = y + (size_t)c * (size_t)(OH * OW);
        int64_t *ip = ind ? ind + (size_t)c * (size_t)(OH * OW) : NULL;
        const int64_t base = c * H * W;
        for (int64_t oh = 0; oh < OH; oh++) {
            const int64_t hs = oh * sh - pt;
            const int64_t th0 = hs < 0 ? (-hs + dh - 1) / dh : 0;
            const int64_t th1 = H > hs ? pn_min64(kh, (H - hs + dh - 1) / dh) : 0;
            /* columns whose window lies inside the row: a whole output row at a time, tap by
             * tap, so the loop over columns vectorizes */
            const int64_t lo = ip ? 0 : pn_min64(OW, (pl + sw - 1) / sw);
            const int64_t last = W - 1 - (kw - 1) * dw + pl;
            const int64_t hi = ip || last < 0 ? lo : pn_min64(OW, last / sw + 1);
            if (hi > lo)
                FN(pool_row)(xp, yp + oh * OW, W, hs, th0, th1, dh, kw, dw, sw, pl, lo, hi,
                             is_max,
                             include_pad ? (pn_min64(hs + kh, eh) - hs) * kw
                                         : (th1 > th0 ? th1 - th0 : 0) * kw);
            for (int64_t ow = 0; ow < OW; ow++) {
                if (ow == lo && hi > lo) {
                    ow = hi - 1;
                    continue;
                }
                const int64_t ws = ow * sw - pl;
                const int64_t tw0 = ws < 0 ? (-ws + dw - 1) / dw : 0;
                const int64_t tw1 = W > ws ? pn_min64(kw, (W - ws + dw - 1) / dw) : 0;
                T r;
                if (is_max) {
                    T m = (T)-INFINITY;
                    if (ip) {
                        int64_t best = -1;
                        for (int64_t th = th0; th < th1; th++) {
                            const int64_t h = hs + th * dh;
                            for (int64_t tw = tw0; tw < tw1; tw++) {
                                const int64_t w = ws + tw * dw;
                                const T v = xp[h * W + w];
                                if (v > m || best < 0) {
                                    m = v;
                                    best = col ? h + w * H : h * W + w;
                                }
                            }
                        }
                        ip[oh * OW + ow] = best < 0 ? -1 : base + best;
                    } else if (dw == 1) {
                        for (int64_t th = th0; th < th1; th++) {
                            const T *row = xp + (hs + th * dh) * W + ws;
                            for (int64_t tw = tw0; tw < tw1; tw++)
                                m = row[tw] > m ? row[tw] : m;
                        }
                    } else {
                        for (int64_t th = th0; th < th1; th++) {
                            const T *row = xp + (hs + th * dh) * W + ws;
                            for (int64_t tw = tw0; tw < tw1; tw++)
                                m = row[tw * dw] > m ? row[tw * dw] : m;
                        }
                    }
                    r = m;
                } else {
                    T acc = 0;
                    for (int64_t th = th0; th < th1; th++) {
                        const T *row = xp + (hs + th * dh) * W + ws;
                        for (int64_t tw = tw0; tw < tw1; tw++)
                            acc += row[tw * dw];
                    }
                    int64_t cnt;
                    if (include_pad)
                        cnt = (pn_min64(hs + kh, eh) - hs) * (pn_min64(ws + kw, ew) - ws);
                    else
                        cnt = (th1 > th0 ? th1 - th0 : 0) * (tw1 > tw0 ? tw1 - tw0 : 0);
                    r = cnt > 0 ? acc / (T)cnt : (T)0;
                }
                yp[oh * OW + ow] = r;
            }
        }
    }
}

/* N-D pooling (any number of spatial dims up to PN_POOL_MAX_SPATIAL). */
static void FN(poolnd)(const pool_params *p, const T *x, T *y, int64_t *ind, size_t planes,
                       int nt)
{
    const int ns = p->ns;
    size_t in_plane = 1, out_plane = 1;
    int64_t stride[PN_POOL_MAX_SPATIAL], cstride[PN_POOL_MAX_SPATIAL];
    for (int i = ns - 1; i >= 0; i--) {
        stride[i] = (int64_t)in_plane;
        in_plane *= (size_t)p->in[i];
        out_plane *= (size_t)p->out[i];
    }
    int64_t cs = 1; /* column-major (storage_order 1) strides for Indices */
    for (int i = 0; i < ns; i++) {
        cstride[i] = cs;
        cs *= p->in[i];
    }
    const long long n_planes = (long long)planes;
    (void)nt;
    PN_OMP_FOR
    for (long long c = 0; c < n_planes; c++) {
        const T *xp = x + (size_t)c * in_plane;
        T *yp = y + (size_t)c * out_plane;
        int64_t *ip = ind ? ind + (size_t)c * out_plane : NULL;
        int64_t o[PN_POOL_MAX_SPATIAL] = {0};
        for (size_t oi = 0; oi < out_plane; oi++) {
            int64_t st[PN_POOL_MAX_SPATIAL], t0[PN_POOL_MAX_SPATIAL], t1[PN_POOL_MAX_SPATIAL];
            int64_t cnt_valid = 1, cnt_pad = 1;
            for (int i = 0; i < ns; i++) {
                st[i] = o[i] * p->s[i] - p->pb[i];
                t0[i] = st[i] < 0 ? (-st[i] + p->d[i] - 1) / p->d[i] : 0;
                t1[i] = p->in[i] > st[i]
                            ? pn_min64(p->k[i], (p->in[i] - st[i] + p->d[i] - 1) / p->d[i])
                            : 0;
                cnt_valid *= t1[i] > t0[i] ? t1[i] - t0[i] : 0;
                cnt_pad *= pn_min64(st[i] + p->k[i], p->in[i] + p->pe[i]) - st[i];
            }
            T m = (T)-INFINITY, acc = 0;
            int64_t best = -1;
            if (cnt_valid > 0) {
                int64_t t[PN_POOL_MAX_SPATIAL];
                for (int i = 0; i < ns; i++)
                    t[i] = t0[i];
                const int last = ns - 1;
                for (;;) {
                    int64_t off = 0;
                    for (int i = 0; i < last; i++)
                        off += (st[i] + t[i] * p->d[i]) * stride[i];
                    for (int64_t tl = t0[last]; tl < t1[last]; tl++) {
                        const int64_t q = st[last] + tl * p->d[last];
                        const T v = xp[off + q];
                        if (p->is_max) {
                            if (v > m || best < 0) {
                                m = v;
                                if (ip) {
                                    int64_t idx = 0;
                                    for (int i = 0; i < last; i++) {
                                        const int64_t coord = st[i] + t[i] * p->d[i];
                                        idx += coord * (p->storage_order ? cstride[i] : stride[i]);
                                    }
                                    idx += q * (p->storage_order ? cstride[last] : stride[last]);
                                    best = idx;
                                } else {
                                    best = 0;
                                }
                            }
                        } else {
                            acc += v;
                        }
                    }
                    int i = last - 1;
                    while (i >= 0 && ++t[i] == t1[i]) {
                        t[i] = t0[i];
                        i--;
                    }
                    if (i < 0)
                        break;
                }
            }
            if (p->is_max) {
                yp[oi] = m;
                if (ip)
                    ip[oi] = best < 0 ? -1 : c * (int64_t)in_plane + best;
            } else {
                const int64_t cnt = p->count_include_pad ? cnt_pad : cnt_valid;
                yp[oi] = cnt > 0 ? acc / (T)cnt : (T)0;
            }
            for (int i = ns - 1; i >= 0; i--) {
                if (++o[i] < p->out[i])
                    break;
                o[i] = 0;
            }
        }
    }
}

#undef FN
#undef PN_CAT
#undef PN_CAT2

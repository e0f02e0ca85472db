/* eval/cpu/elementwise/broadcast.c: NumPy broadcasting shapes and the row iteration plan declared
 * in eval/cpu/broadcast.h (shared by every cpu kernel family). */
#include "eval/cpu/broadcast.h"

#include <string.h>

bool joule_bcast_shape(int n, const int *ranks, const int64_t *const *dims, int *out_rank,
                       int64_t *out_dims)
{
    int r = 0;
    for (int k = 0; k < n; k++) {
        if (ranks[k] < 0 || ranks[k] > JOULE_MAX_RANK)
            return false;
        if (ranks[k] > r)
            r = ranks[k];
    }
    for (int j = 0; j < r; j++) {
        int64_t d = 1;
        for (int k = 0; k < n; k++) {
            int pos = j - (r - ranks[k]);
            if (pos < 0)
                continue;
            int64_t v = dims[k][pos];
            if (v < 0)
                return false;
            if (v == d || v == 1)
                continue;
            if (d != 1)
                return false;
            d = v;
        }
        out_dims[j] = d;
    }
    *out_rank = r;
    return true;
}

joule_status joule_bcast_init(joule_bcast *b, int out_rank, const int64_t *out_dims, int n,
                              const int *ranks, const int64_t *const *dims, const char *who,
                              joule_error *err)
{
    memset(b, 0, sizeof(*b));
    if (n < 1 || n > JOULE_BCAST_MAX_IN || out_rank < 0 || out_rank > JOULE_MAX_RANK)
        return joule_fail(err, JOULE_ERR_INVALID, "%s: cannot broadcast %d inputs to rank %d",
                          who, n, out_rank);
    size_t count;
    if (!joule_dims_count(out_rank, out_dims, &count))
        return joule_fail(err, JOULE_ERR_INVALID, "%s: bad output dims", who);

    /* aligned contiguous strides per input over the output's dims */
    size_t st[JOULE_BCAST_MAX_IN][JOULE_MAX_RANK];
    for (int k = 0; k < n; k++) {
        if (ranks[k] < 0 || ranks[k] > out_rank)
            return joule_fail(err, JOULE_ERR_INVALID,
                              "%s: input %d of rank %d does not broadcast to rank %d", who, k,
                              ranks[k], out_rank);
        size_t s = 1;
        for (int j = out_rank - 1; j >= 0; j--) {
            int pos = j - (out_rank - ranks[k]);
            int64_t d = pos < 0 ? 1 : dims[k][pos];
            if (d != out_dims[j] && d != 1)
                return joule_fail(err, JOULE_ERR_INVALID,
                                  "%s: input %d dim %d (%lld) does not broadcast to %lld", who, k,
                                  j, (long long)d, (long long)out_dims[j]);
            st[k][j] = d == 1 ? 0 : s;
            s *= (size_t)d; /* bounded by count, which did not overflow */
        }
    }
    /* drop size-1 dims, merge dims contiguous in every input */
    int r = 0;
    for (int j = 0; j < out_rank; j++) {
        size_t d = (size_t)out_dims[j];
        if (d == 1)
            continue;
        if (r > 0) {
            bool merge = true;
            for (int k = 0; k < n; k++)
                merge &= b->strides[k][r - 1] == st[k][j] * d;
            if (merge) {
                b->dims[r - 1] *= d;
                for (int k = 0; k < n; k++)
                    b->strides[k][r - 1] = st[k][j];
                continue;
            }
        }
        b->dims[r] = d;
        for (int k = 0; k < n; k++)
            b->strides[k][r] = st[k][j];
        r++;
    }
    if (r == 0) { /* a single element */
        b->dims[0] = 1;
        for (int k = 0; k < n; k++)
            b->strides[k][0] = 0;
        r = 1;
    }
    b->rank = r;
    b->n_in = n;
    b->count = count;
    b->inner = b->dims[r - 1];
    b->rows = count == 0 ? 0 : count / b->inner;
    for (int k = 0; k < n; k++)
        b->step[k] = b->strides[k][r - 1] != 0;
    return JOULE_OK;
}

joule_status joule_bcast_init_views(joule_bcast *b, const joule_view *out, int n,
                                    const joule_view *const *in, const char *who,
                                    joule_error *err)
{
    int ranks[JOULE_BCAST_MAX_IN];
    const int64_t *dims[JOULE_BCAST_MAX_IN];
    if (n < 1 || n > JOULE_BCAST_MAX_IN)
        return joule_fail(err, JOULE_ERR_INVALID, "%s: cannot broadcast %d inputs", who, n);
    for (int k = 0; k < n; k++) {
        ranks[k] = in[k]->rank;
        dims[k] = in[k]->dims;
    }
    return joule_bcast_init(b, out->rank, out->dims, n, ranks, dims, who, err);
}

void joule_bcast_seek(const joule_bcast *b, joule_bcast_iter *it, size_t row)
{
    memset(it, 0, sizeof(*it));
    for (int d = b->rank - 2; d >= 0; d--) {
        size_t i = row % b->dims[d];
        row /= b->dims[d];
        it->idx[d] = i;
        for (int k = 0; k < b->n_in; k++)
            it->off[k] += i * b->strides[k][d];
    }
}

/* eval/cpu/broadcast.h: NumPy multidirectional broadcasting for cpu kernels. joule_bcast_init
 * checks that each input broadcasts to the output shape and plans a walk of the output row by
 * row: dims of size 1 are dropped and neighbouring dims that are contiguous (or broadcast) in
 * every input are merged, so the last dim is the longest run over which each input advances by
 * 0 (broadcast) or 1 element. A kernel then loops rows, taking each input's offset from the
 * iterator, and runs a plain stride-0/stride-1 inner loop the compiler can vectorise.
 * Implemented in eval/cpu/elementwise/broadcast.c; any kernel family may use it. Internal. */
#ifndef JOULE_CPU_BROADCAST_H
#define JOULE_CPU_BROADCAST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "eval/kernel.h"
#include "joule/status.h"
#include "joule/tensor.h"

#define JOULE_BCAST_MAX_IN 4

typedef struct joule_bcast {
    int rank; /* >= 1 after simplification */
    int n_in;
    size_t dims[JOULE_MAX_RANK];
    size_t strides[JOULE_BCAST_MAX_IN][JOULE_MAX_RANK]; /* element strides, 0 where broadcast */
    size_t count;                                      /* output elements */
    size_t inner;                                      /* dims[rank - 1]: elements per row */
    size_t rows;                                       /* count / inner; 0 when count is 0 */
    unsigned char step[JOULE_BCAST_MAX_IN];            /* inner stride of each input: 0 or 1 */
} joule_bcast;

typedef struct joule_bcast_iter {
    size_t idx[JOULE_MAX_RANK];
    size_t off[JOULE_BCAST_MAX_IN]; /* element offset of each input at the current row's start */
} joule_bcast_iter;

/* The broadcast shape of n inputs (NumPy rules) into out_rank/out_dims; false when the shapes
 * are incompatible or the rank would exceed JOULE_MAX_RANK. */
bool joule_bcast_shape(int n, const int *ranks, const int64_t *const *dims, int *out_rank,
                       int64_t *out_dims);

/* Plans iteration of the output (out_rank, out_dims) over n <= JOULE_BCAST_MAX_IN inputs.
 * Fails with JOULE_ERR_INVALID, naming `who` (a node), when an input does not broadcast to the
 * output. The output may be larger than every input (as in Expand): then all steps can be 0. */
joule_status joule_bcast_init(joule_bcast *b, int out_rank, const int64_t *out_dims, int n,
                              const int *ranks, const int64_t *const *dims, const char *who,
                              joule_error *err);
/* Same, from views. */
joule_status joule_bcast_init_views(joule_bcast *b, const joule_view *out, int n,
                                    const joule_view *const *in, const char *who,
                                    joule_error *err);

/* Positions it at the start of output row `row` (< b->rows). */
void joule_bcast_seek(const joule_bcast *b, joule_bcast_iter *it, size_t row);

/* Advances it to the next row. */
static inline void joule_bcast_next(const joule_bcast *b, joule_bcast_iter *it)
{
    for (int d = b->rank - 2; d >= 0; d--) {
        if (++it->idx[d] < b->dims[d]) {
            for (int k = 0; k < b->n_in; k++)
                it->off[k] += b->strides[k][d];
            return;
        }
        it->idx[d] = 0;
        for (int k = 0; k < b->n_in; k++)
            it->off[k] -= b->strides[k][d] * (b->dims[d] - 1);
    }
}

#endif

/* compress/parallel.h: how the compression passes split a big tensor among OpenMP threads.
 * Each thread takes a contiguous share in thread order, so the results can be merged in the
 * same order whatever the thread count; without OpenMP there is one thread and one share. */
#ifndef JOULE_COMPRESS_PARALLEL_H
#define JOULE_COMPRESS_PARALLEL_H

#include <stddef.h>

#include "config.h"

#if HAVE_OPENMP
#include <omp.h>
#endif

/* Inside a parallel region (or with none): this thread's share [*lo, *hi) of n items; returns
 * the thread's index. */
static inline size_t cz_thread_share(size_t n, size_t *lo, size_t *hi)
{
    size_t id = 0, k = 1;
#if HAVE_OPENMP
    id = (size_t)omp_get_thread_num();
    k = (size_t)omp_get_num_threads();
#endif
    *lo = n * id / k;
    *hi = n * (id + 1) / k;
    return id;
}

#endif

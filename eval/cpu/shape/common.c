/* eval/cpu/shape/common.c: helpers shared by the data-movement kernels: element sizes, error
 * messages that name the node, defensive reads of integer inputs and attributes, and the two
 * copy engines (strided and mapped) that every layout op is expressed in. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "eval/cpu/shape/shape_internal.h"

/* Copies below this many bytes stay on one thread. */
#define JSK_PARALLEL_BYTES ((size_t)1 << 18)
/* Side of the square tiles the transposed copy walks. */
#define JSK_TILE 32

size_t jsk_elem_size(joule_dtype t)
{
    if (t == JOULE_STRING || !joule_dtype_valid((int)t))
        return 0;
    unsigned bits = joule_dtype_info(t)->bits;
    if (bits == 0 || bits % 8 != 0 || bits / 8 > JSK_MAX_ELEM)
        return 0;
    return bits / 8;
}

bool jsk_bytes_copyable(joule_dtype t)
{
    return t != JOULE_STRING && joule_dtype_valid((int)t) && t != JOULE_UNDEFINED &&
           joule_dtype_info(t)->bits > 0;
}

bool jsk_is_index_type(joule_dtype t)
{
    return t == JOULE_I32 || t == JOULE_I64;
}

joule_status jsk_fail(const joule_kernel_ctx *ctx, joule_status st, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const joule_node *n = ctx->node;
    if (n->name && *n->name)
        return joule_fail(ctx->err, st, "node '%s' (%s): %s", n->name, n->op_type, msg);
    return joule_fail(ctx->err, st, "unnamed %s node: %s", n->op_type, msg);
}

joule_status jsk_read_ints(const joule_kernel_ctx *ctx, const joule_view *v, const char *what,
                           int64_t *out, size_t cap, size_t *n)
{
    if (!v || !v->data)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "%s has no data", what);
    if (!jsk_is_index_type(v->dtype))
        return jsk_fail(ctx, JOULE_ERR_INVALID, "%s must be int32 or int64, not %s", what,
                        joule_dtype_name(v->dtype));
    if (v->rank > 1)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "%s must be 1-D, not rank %d", what, v->rank);
    if (v->count > cap)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "%s has %zu elements, at most %zu allowed", what,
                        v->count, cap);
    for (size_t i = 0; i < v->count; i++) {
        if (v->dtype == JOULE_I64) {
            memcpy(&out[i], (const char *)v->data + i * 8, 8);
        } else {
            int32_t x;
            memcpy(&x, (const char *)v->data + i * 4, 4);
            out[i] = x;
        }
    }
    *n = v->count;
    return JOULE_OK;
}

int64_t jsk_index_at(const joule_view *v, size_t i)
{
    if (v->dtype == JOULE_I64) {
        int64_t x;
        memcpy(&x, (const char *)v->data + i * 8, 8);
        return x;
    }
    int32_t x;
    memcpy(&x, (const char *)v->data + i * 4, 4);
    return x;
}

joule_status jsk_attr_ints(const joule_kernel_ctx *ctx, const char *name, int64_t *out, size_t cap,
                           size_t *n, bool *found)
{
    const joule_attr *a = joule_node_attr(ctx->node, name);
    *n = 0;
    *found = a != NULL;
    if (!a)
        return JOULE_OK;
    if (a->type != JOULE_ATTR_INTS && a->type != JOULE_ATTR_INT)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "attribute '%s' must be a list of ints", name);
    if (a->type == JOULE_ATTR_INT) { /* a lone int where a list is expected: a 1-element list */
        if (cap < 1)
            return jsk_fail(ctx, JOULE_ERR_INVALID, "attribute '%s' has too many values", name);
        out[0] = a->i;
        *n = 1;
        return JOULE_OK;
    }
    if (a->count > cap)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "attribute '%s' has %zu values, at most %zu allowed",
                        name, a->count, cap);
    if (a->count)
        memcpy(out, a->ints, a->count * sizeof *out);
    *n = a->count;
    return JOULE_OK;
}

joule_status jsk_axis(const joule_kernel_ctx *ctx, int64_t axis, int rank, const char *what,
                      int *out)
{
    if (axis < -(int64_t)rank || axis >= (int64_t)rank)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "%s %lld is out of range for rank %d", what,
                        (long long)axis, rank);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return JOULE_OK;
}

const char *jsk_dims_str(int rank, const int64_t *dims, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    len += (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < rank && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%lld", i ? "," : "", (long long)dims[i]);
    if (len < size)
        snprintf(buf + len, size - len, "]");
    return buf;
}

joule_status jsk_check_out(const joule_kernel_ctx *ctx, int i, joule_dtype dtype, int rank,
                           const int64_t *dims)
{
    if (i >= ctx->n_out || !ctx->out[i])
        return jsk_fail(ctx, JOULE_ERR_INVALID, "output %d is missing", i);
    const joule_view *o = ctx->out[i];
    if (o->dtype != dtype)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "output %d has dtype %s, expected %s", i,
                        joule_dtype_name(o->dtype), joule_dtype_name(dtype));
    bool same = o->rank == rank;
    for (int k = 0; same && k < rank; k++)
        same = o->dims[k] == dims[k];
    size_t count = 0;
    if (same && (!joule_dims_count(rank, dims, &count) || count != o->count))
        same = false;
    if (!same) {
        char a[160], b[160];
        return jsk_fail(ctx, JOULE_ERR_INVALID, "output %d was planned as %s but computes to %s", i,
                        jsk_dims_str(o->rank, o->dims, a, sizeof a),
                        jsk_dims_str(rank, dims, b, sizeof b));
    }
    if (count && !o->data)
        return jsk_fail(ctx, JOULE_ERR_INVALID, "output %d has no buffer", i);
    return JOULE_OK;
}

bool jsk_attr_is(const joule_node *n, const char *name, const char *dflt, const char *s)
{
    joule_string v = joule_attr_string(n, name, dflt);
    size_t len = strlen(s);
    return v.ptr && v.len == len && memcmp(v.ptr, s, len) == 0;
}

void jsk_strides(int rank, const int64_t *dims, int64_t *strides)
{
    int64_t s = 1;
    for (int k = rank - 1; k >= 0; k--) {
        strides[k] = s;
        s *= dims[k] > 0 ? dims[k] : 1;
    }
}

void jsk_fill(void *dst, const void *elem, size_t esize, size_t count)
{
    char *d = dst;
    if (count == 0)
        return;
    bool zero = true;
    for (size_t b = 0; b < esize && zero; b++)
        zero = ((const unsigned char *)elem)[b] == 0;
    if (zero || esize == 1) {
        memset(d, zero ? 0 : *(const unsigned char *)elem, count * esize);
        return;
    }
    /* Doubling copies: one element, then 1, 2, 4, ... already written ones. */
    memcpy(d, elem, esize);
    size_t done = 1;
    while (done < count) {
        size_t n = done < count - done ? done : count - done;
        memcpy(d + done * esize, d, n * esize);
        done += n;
    }
}

/* ---- strided copy ---- */

/* One element of a fixed size: memcpy with a constant length compiles to a single move and has
 * no alignment requirement. */
#define COPY_ELEM(d, s, es)                                                                        \
    do {                                                                                           \
        switch (es) {                                                                              \
        case 1: memcpy((d), (s), 1); break;                                                        \
        case 2: memcpy((d), (s), 2); break;                                                        \
        case 4: memcpy((d), (s), 4); break;                                                        \
        case 8: memcpy((d), (s), 8); break;                                                        \
        default: memcpy((d), (s), (es)); break;                                                    \
        }                                                                                          \
    } while (0)

/* n elements from src with a stride (in elements) to contiguous dst. */
static void copy_row(char *dst, const char *src, size_t esize, int64_t n, int64_t stride)
{
    if (stride == 1) {
        memcpy(dst, src, (size_t)n * esize);
        return;
    }
    if (stride == 0) {
        jsk_fill(dst, src, esize, (size_t)n);
        return;
    }
    const ptrdiff_t step = (ptrdiff_t)stride * (ptrdiff_t)esize;
    switch (esize) {
    case 1:
        for (int64_t i = 0; i < n; i++, src += step)
            dst[i] = *src;
        break;
    case 2:
        for (int64_t i = 0; i < n; i++, src += step)
            memcpy(dst + i * 2, src, 2);
        break;
    case 4:
        for (int64_t i = 0; i < n; i++, src += step)
            memcpy(dst + i * 4, src, 4);
        break;
    case 8:
        for (int64_t i = 0; i < n; i++, src += step)
            memcpy(dst + i * 8, src, 8);
        break;
    default:
        for (int64_t i = 0; i < n; i++, src += step)
            memcpy(dst + (size_t)i * esize, src, esize);
        break;
    }
}

/* dst[a * nb + b] = src[a + b * sb] for a < na, b < nb (the input's innermost stride is 1 on
 * the output's second-to-last dim: a transpose). Walked in square tiles so both sides stay in
 * cache. */
static void copy_tiled(char *dst, const char *src, size_t esize, int64_t na, int64_t nb, int64_t sb)
{
    for (int64_t a0 = 0; a0 < na; a0 += JSK_TILE) {
        int64_t a1 = a0 + JSK_TILE < na ? a0 + JSK_TILE : na;
        for (int64_t b0 = 0; b0 < nb; b0 += JSK_TILE) {
            int64_t b1 = b0 + JSK_TILE < nb ? b0 + JSK_TILE : nb;
            for (int64_t a = a0; a < a1; a++) {
                char *d = dst + ((size_t)a * (size_t)nb + (size_t)b0) * esize;
                const char *s = src + ((ptrdiff_t)a + (ptrdiff_t)b0 * sb) * (ptrdiff_t)esize;
                copy_row(d, s, esize, b1 - b0, sb);
            }
        }
    }
}

/* Drops size-1 dims and merges neighbours that are contiguous in the source. Returns the new
 * rank, or -1 when some dim is 0 (nothing to copy). */
static int simplify(int rank, const int64_t *dims, const int64_t *strides, int64_t *d, int64_t *s)
{
    int n = 0;
    for (int k = 0; k < rank; k++) {
        if (dims[k] == 0)
            return -1;
        if (dims[k] == 1)
            continue;
        if (n > 0 && s[n - 1] == strides[k] * dims[k]) {
            d[n - 1] *= dims[k];
            s[n - 1] = strides[k];
        } else {
            d[n] = dims[k];
            s[n] = strides[k];
            n++;
        }
    }
    return n;
}

/* Rows [r0, r1) of the outer iteration space: outer dims d[0..no), each row `inner` elements
 * written by copy_row (tiled == false) or copy_tiled over the last two dims. */
static void strided_rows(char *dst, const char *src, size_t esize, int n, const int64_t *d,
                         const int64_t *s, bool tiled, size_t r0, size_t r1)
{
    int no = n - (tiled ? 2 : 1);
    int64_t idx[JSK_MAX_RANK];
    ptrdiff_t off = 0;
    size_t rem = r0;
    for (int k = no - 1; k >= 0; k--) {
        idx[k] = (int64_t)(rem % (size_t)d[k]);
        rem /= (size_t)d[k];
        off += (ptrdiff_t)idx[k] * (ptrdiff_t)s[k];
    }
    size_t inner = tiled ? (size_t)d[n - 2] * (size_t)d[n - 1] : (size_t)d[n - 1];
    for (size_t r = r0; r < r1; r++) {
        char *dr = dst + r * inner * esize;
        const char *sr = src + off * (ptrdiff_t)esize;
        if (tiled)
            copy_tiled(dr, sr, esize, d[n - 2], d[n - 1], s[n - 1]);
        else
            copy_row(dr, sr, esize, d[n - 1], s[n - 1]);
        for (int k = no - 1; k >= 0; k--) {
            off += (ptrdiff_t)s[k];
            if (++idx[k] < d[k])
                break;
            off -= (ptrdiff_t)s[k] * (ptrdiff_t)d[k];
            idx[k] = 0;
        }
    }
}

static int pick_threads(int threads, size_t bytes, size_t rows)
{
    if (threads <= 1 || bytes < JSK_PARALLEL_BYTES || rows < 2)
        return 1;
    return (size_t)threads < rows ? threads : (int)rows;
}

void jsk_strided_copy(void *dst, const void *src, size_t esize, int rank, const int64_t *dims,
                      const int64_t *strides, int threads)
{
    int64_t d[JSK_MAX_RANK], s[JSK_MAX_RANK];
    int n = simplify(rank, dims, strides, d, s);
    if (n < 0)
        return;
    if (n == 0) {
        memcpy(dst, src, esize);
        return;
    }
    /* Innermost output dim strided but the one before it contiguous in the source: a
     * transpose of the last two dims (2-D transpose; NCHW<->NHWC merges to this). */
    bool tiled = n >= 2 && s[n - 2] == 1 && s[n - 1] != 1 && s[n - 1] != 0 && d[n - 2] >= 4 &&
                 d[n - 1] >= 4;
    size_t rows = 1;
    for (int k = 0; k < n - (tiled ? 2 : 1); k++)
        rows *= (size_t)d[k];
    size_t total = rows * (size_t)d[n - 1] * (tiled ? (size_t)d[n - 2] : 1);
    int nt = pick_threads(threads, total * esize, rows);
    if (nt <= 1) {
        strided_rows(dst, src, esize, n, d, s, tiled, 0, rows);
        return;
    }
#if HAVE_OPENMP
#pragma omp parallel for num_threads(nt) schedule(static)
#endif
    for (int t = 0; t < nt; t++) {
        size_t r0 = rows * (size_t)t / (size_t)nt, r1 = rows * (size_t)(t + 1) / (size_t)nt;
        strided_rows(dst, src, esize, n, d, s, tiled, r0, r1);
    }
}

/* ---- mapped copy ---- */

static void mapped_rows(char *dst, const char *src, size_t esize, int rank, const int64_t *dims,
                        const int64_t *strides, const int64_t *const *maps, const int64_t *run,
                        const void *fill, size_t r0, size_t r1)
{
    int no = rank - 1;
    int64_t idx[JSK_MAX_RANK];
    size_t rem = r0;
    for (int k = no - 1; k >= 0; k--) {
        idx[k] = (int64_t)(rem % (size_t)dims[k]);
        rem /= (size_t)dims[k];
    }
    const int64_t n = dims[rank - 1];
    const int64_t *last = maps[rank - 1];
    const int64_t ls = strides[rank - 1];
    for (size_t r = r0; r < r1; r++) {
        char *dr = dst + r * (size_t)n * esize;
        ptrdiff_t off = 0;
        bool outside = false;
        for (int k = 0; k < no; k++) {
            int64_t m = maps[k][idx[k]];
            if (m < 0) {
                outside = true;
                break;
            }
            off += (ptrdiff_t)m * (ptrdiff_t)strides[k];
        }
        if (outside) {
            jsk_fill(dr, fill, esize, (size_t)n);
        } else {
            const char *sr = src + off * (ptrdiff_t)esize;
            for (int64_t i = 0; i < n;) {
                int64_t m = last[i];
                if (m < 0) {
                    COPY_ELEM(dr + (size_t)i * esize, fill, esize);
                    i++;
                } else if (run && run[i] > 1 && ls == 1) {
                    memcpy(dr + (size_t)i * esize, sr + m * (ptrdiff_t)esize,
                           (size_t)run[i] * esize);
                    i += run[i];
                } else {
                    COPY_ELEM(dr + (size_t)i * esize, sr + m * ls * (ptrdiff_t)esize, esize);
                    i++;
                }
            }
        }
        for (int k = no - 1; k >= 0; k--) {
            if (++idx[k] < dims[k])
                break;
            idx[k] = 0;
        }
    }
}

void jsk_mapped_copy(void *dst, const void *src, size_t esize, int rank, const int64_t *dims,
                     const int64_t *strides, const int64_t *const *maps, const void *fill,
                     int64_t *run, int threads)
{
    size_t total = 1;
    for (int k = 0; k < rank; k++) {
        if (dims[k] == 0)
            return;
        total *= (size_t)dims[k];
    }
    if (rank == 0) {
        memcpy(dst, src, esize);
        return;
    }
    /* run[i]: how many entries from i on in the innermost map are consecutive indices */
    int64_t n = dims[rank - 1];
    const int64_t *last = maps[rank - 1];
    if (run) {
        run[n - 1] = last[n - 1] >= 0 ? 1 : 0;
        for (int64_t i = n - 2; i >= 0; i--)
            run[i] = last[i] < 0 ? 0 : (last[i + 1] == last[i] + 1 ? run[i + 1] + 1 : 1);
    }
    size_t rows = total / (size_t)n;
    int nt = pick_threads(threads, total * esize, rows);
    if (nt <= 1) {
        mapped_rows(dst, src, esize, rank, dims, strides, maps, run, fill, 0, rows);
        return;
    }
#if HAVE_OPENMP
#pragma omp parallel for num_threads(nt) schedule(static)
#endif
    for (int t = 0; t < nt; t++) {
        size_t r0 = rows * (size_t)t / (size_t)nt, r1 = rows * (size_t)(t + 1) / (size_t)nt;
        mapped_rows(dst, src, esize, rank, dims, strides, maps, run, fill, r0, r1);
    }
}

/* ---- planned scratch ---- */

typedef struct jsk_state {
    size_t scratch_bytes;
} jsk_state;

joule_status jsk_prepare_scratch(const joule_kernel_ctx *ctx, size_t bytes, void **state,
                                 size_t *scratch_bytes)
{
    jsk_state *s = malloc(sizeof *s);
    if (!s)
        return jsk_fail(ctx, JOULE_ERR_NOMEM, "out of memory");
    s->scratch_bytes = bytes;
    *state = s;
    *scratch_bytes = bytes;
    return JOULE_OK;
}

void jsk_destroy_state(void *state)
{
    free(state);
}

void *jsk_scratch(const joule_kernel_ctx *ctx, size_t bytes, void **owned)
{
    const jsk_state *s = ctx->state;
    *owned = NULL;
    if (ctx->scratch && s && s->scratch_bytes >= bytes)
        return ctx->scratch;
    *owned = malloc(bytes ? bytes : 1);
    return *owned;
}

bool jsk_table_bytes(int rank, const int64_t *dims, size_t per_entry, size_t *bytes)
{
    size_t n = rank > 0 && dims[rank - 1] > 0 ? (size_t)dims[rank - 1] : 0;
    for (int k = 0; k < rank; k++) {
        if (dims[k] < 0 || (uint64_t)dims[k] > SIZE_MAX / 64 || n > SIZE_MAX / 64)
            return false;
        n += (size_t)dims[k];
    }
    if (n > SIZE_MAX / (per_entry ? per_entry : 1))
        return false;
    *bytes = n * per_entry;
    return true;
}

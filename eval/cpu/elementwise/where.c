/* eval/cpu/elementwise/where.c: Where(cond, X, Y) with three-way broadcasting, for any element
 * type of 1, 2, 4, 8 or 16 bytes (every ONNX type except string), copied by size. Rows where
 * the condition is a vector get vectorisable loops for the common shapes (X or Y a scalar, as in
 * masked fills); a scalar condition copies one side. */
#include "ew.h"

typedef struct w128 {
    uint64_t lo, hi;
} w128;

#define WHERE_ROW(T)                                                                               \
    EW_ROW where_##T(void *o_, const uint8_t *c, const void *x_, const void *y_, size_t n,   \
                          int sc, int sx, int sy)                                                  \
    {                                                                                              \
        T *o = o_;                                                                                 \
        const T *x = x_, *y = y_;                                                                  \
        if (!sc) {                                                                                 \
            const T *s = c[0] ? x : y;                                                             \
            int ss = c[0] ? sx : sy;                                                               \
            if (ss) {                                                                              \
                EW_SIMD for (size_t i = 0; i < n; i++) o[i] = s[i];                                \
            } else {                                                                               \
                const T v = s[0];                                                                  \
                EW_SIMD for (size_t i = 0; i < n; i++) o[i] = v;                                   \
            }                                                                                      \
        } else if (sx && sy) {                                                                     \
            EW_SIMD for (size_t i = 0; i < n; i++) o[i] = c[i] ? x[i] : y[i];                      \
        } else if (sy) {                                                                           \
            const T v = x[0];                                                                      \
            EW_SIMD for (size_t i = 0; i < n; i++) o[i] = c[i] ? v : y[i];                         \
        } else if (sx) {                                                                           \
            const T v = y[0];                                                                      \
            EW_SIMD for (size_t i = 0; i < n; i++) o[i] = c[i] ? x[i] : v;                         \
        } else {                                                                                   \
            const T vx = x[0], vy = y[0];                                                          \
            EW_SIMD for (size_t i = 0; i < n; i++) o[i] = c[i] ? vx : vy;                          \
        }                                                                                          \
    }
WHERE_ROW(uint8_t)
WHERE_ROW(uint16_t)
WHERE_ROW(uint32_t)
WHERE_ROW(uint64_t)
WHERE_ROW(w128)

typedef void (*where_fn)(void *o, const uint8_t *c, const void *x, const void *y, size_t n, int sc,
                         int sx, int sy);

typedef struct where_job {
    where_fn fn;
    joule_bcast bc;
    const uint8_t *c;
    const char *x, *y;
    char *o;
    size_t esz;
} where_job;

static void where_range(void *arg, size_t lo, size_t hi)
{
    const where_job *j = arg;
    const joule_bcast *bc = &j->bc;
    size_t inner = bc->inner, col = lo % inner;
    joule_bcast_iter it;
    joule_bcast_seek(bc, &it, lo / inner);
    while (lo < hi) {
        size_t n = inner - col < hi - lo ? inner - col : hi - lo;
        j->fn(j->o + lo * j->esz, j->c + it.off[0] + col * bc->step[0],
              j->x + (it.off[1] + col * bc->step[1]) * j->esz,
              j->y + (it.off[2] + col * bc->step[2]) * j->esz, n, bc->step[0], bc->step[1],
              bc->step[2]);
        lo += n;
        col = 0;
        if (lo < hi)
            joule_bcast_next(bc, &it);
    }
}

static where_fn pick(size_t esz)
{
    switch (esz) {
    case 1: return where_uint8_t;
    case 2: return where_uint16_t;
    case 4: return where_uint32_t;
    case 8: return where_uint64_t;
    case 16: return where_w128;
    default: return NULL;
    }
}

static bool storable(joule_dtype t)
{
    return t != JOULE_STRING && joule_dtype_info(t)->bits >= 8 && pick(joule_dtype_bytes(t, 1));
}

bool ew_where_supports(const joule_node *node, int64_t opset, int n_in, const joule_view *const *in)
{
    (void)node;
    (void)opset;
    return n_in == 3 && in[0] && in[1] && in[2] && in[0]->dtype == JOULE_BOOL &&
           in[1]->dtype == in[2]->dtype && storable(in[1]->dtype);
}

joule_status ew_where_run(const joule_kernel_ctx *c)
{
    if (!ew_where_supports(c->node, c->opset, c->n_in, c->in))
        return joule_fail(c->err, JOULE_ERR_UNSUPPORTED,
                          "%s (Where): needs a bool condition and two inputs of one type",
                          ew_who(c->node));
    int ranks[3], orank;
    const int64_t *dims[3];
    int64_t odims[JOULE_MAX_RANK];
    for (int k = 0; k < 3; k++) {
        ranks[k] = c->in[k]->rank;
        dims[k] = c->in[k]->dims;
    }
    if (!joule_bcast_shape(3, ranks, dims, &orank, odims))
        return joule_fail(c->err, JOULE_ERR_INVALID, "%s (Where): input shapes do not broadcast",
                          ew_who(c->node));
    joule_dtype t = c->in[1]->dtype;
    joule_status st = ew_check_out_shape(c, 0, t, orank, odims);
    if (st != JOULE_OK)
        return st;
    where_job j = {.c = c->in[0]->data, .x = c->in[1]->data, .y = c->in[2]->data,
                   .o = c->out[0]->data, .esz = joule_dtype_bytes(t, 1)};
    j.fn = pick(j.esz);
    st = joule_bcast_init_views(&j.bc, c->out[0], 3, c->in, ew_who(c->node), c->err);
    if (st != JOULE_OK || j.bc.count == 0)
        return st;
    if (!j.c || !j.x || !j.y)
        return joule_fail(c->err, JOULE_ERR_INVALID, "%s (Where): missing data", ew_who(c->node));
    ew_parallel(c->threads, j.bc.count, 0, where_range, &j);
    return JOULE_OK;
}

/* formats/ops/infer_pool_norm.c: shape/dtype inference for pooling (MaxPool with its Indices,
 * AveragePool, LpPool, the global pools) and normalisation (BatchNormalization,
 * LayerNormalization with Mean/InvStdDev, InstanceNormalization, LRN, Softmax family). */
#include <string.h>

#include "formats/ops/infer_util.h"

joule_status ji_pool(joule_infer_ctx *c)
{
    const joule_shape *x = ji_in_shape(c, 0);
    joule_dtype dt = ji_in_dtype(c, 0);
    if (!x) {
        ji_out_set(c, 0, dt, NULL);
        ji_out_set(c, 1, JOULE_I64, NULL);
        return JOULE_OK;
    }
    char sx[160];
    if (x->rank < 3)
        return ji_infer_fail(c, "input %s must have rank >= 3", ji_shape_str(x, sx, sizeof sx));
    int n_sp = x->rank - 2;
    const int64_t *ks;
    size_t nk;
    if (!ji_attr_ints(c->node, "kernel_shape", &ks, &nk))
        return ji_infer_fail(c, "attribute kernel_shape is missing");
    if (nk != (size_t)n_sp)
        return ji_infer_fail(c, "kernel_shape has %zu entries for input %s", nk,
                             ji_shape_str(x, sx, sizeof sx));
    for (int i = 0; i < n_sp; i++)
        if (ks[i] <= 0)
            return ji_infer_fail(c, "kernel_shape[%d] = %lld must be positive", i,
                                 (long long)ks[i]);
    bool ceil_mode = joule_attr_int(c->node, "ceil_mode", 0) != 0;
    joule_shape y;
    y.rank = x->rank;
    y.dims[0] = x->dims[0];
    y.dims[1] = x->dims[1];
    joule_status st = ji_conv_spatial(c, x, ks, n_sp, ceil_mode, &y);
    if (st)
        return st;
    ji_out_set(c, 0, dt, &y);
    ji_out_set(c, 1, JOULE_I64, &y); /* MaxPool's Indices */
    return JOULE_OK;
}

joule_status ji_global_pool(joule_infer_ctx *c)
{
    const joule_shape *x = ji_in_shape(c, 0);
    joule_dtype dt = ji_in_dtype(c, 0);
    if (!x) {
        ji_out_set(c, 0, dt, NULL);
        return JOULE_OK;
    }
    char sx[160];
    if (x->rank < 3)
        return ji_infer_fail(c, "input %s must have rank >= 3", ji_shape_str(x, sx, sizeof sx));
    joule_shape y = *x;
    for (int i = 2; i < y.rank; i++)
        y.dims[i] = ji_dim_c(1);
    ji_out_set(c, 0, dt, &y);
    return JOULE_OK;
}

/* Checks that a per-channel input (rank 1) has x's channel count. */
static joule_status check_channels(joule_infer_ctx *c, const joule_shape *x, int i,
                                   const char *what)
{
    const joule_shape *s = ji_in_shape(c, i);
    if (!x || !s || x->rank < 2)
        return JOULE_OK;
    char sx[160], ss[160];
    if (s->rank != 1 || !ji_dim_compatible(s->dims[0], x->dims[1]))
        return ji_infer_fail(c, "%s %s does not match the channels of input %s", what,
                             ji_shape_str(s, ss, sizeof ss), ji_shape_str(x, sx, sizeof sx));
    return JOULE_OK;
}

joule_status ji_batchnorm(joule_infer_ctx *c)
{
    const joule_shape *x = ji_in_shape(c, 0);
    bool spatial = joule_attr_int(c->node, "spatial", 1) != 0 || c->opset >= 9;
    if (spatial) {
        static const char *const names[] = {"scale", "B", "mean", "var"};
        for (int i = 1; i <= 4; i++) {
            joule_status st = check_channels(c, x, i, names[i - 1]);
            if (st)
                return st;
        }
    }
    ji_out_like_input(c, 0, 0);
    /* running/saved mean and var follow the mean input */
    for (int i = 1; i < c->n_out; i++) {
        int src = i % 2 ? 3 : 4;
        ji_out_set(c, i, ji_in_dtype(c, src), ji_in_shape(c, src));
    }
    return JOULE_OK;
}

joule_status ji_layernorm(joule_infer_ctx *c)
{
    const joule_shape *x = ji_in_shape(c, 0);
    joule_dtype stash = (joule_dtype)joule_attr_int(c->node, "stash_type", JOULE_F32);
    if (!joule_dtype_valid((int)stash))
        return ji_infer_fail(c, "stash_type %d is not a dtype", (int)stash);
    ji_out_like_input(c, 0, 0);
    if (!x) {
        ji_out_set(c, 1, stash, NULL);
        ji_out_set(c, 2, stash, NULL);
        return JOULE_OK;
    }
    int axis;
    joule_status st = ji_norm_axis(c, joule_attr_int(c->node, "axis", -1), x->rank, "axis", &axis);
    if (st)
        return st;
    joule_shape m = *x;
    for (int i = axis; i < m.rank; i++)
        m.dims[i] = ji_dim_c(1);
    ji_out_set(c, 1, stash, &m);
    ji_out_set(c, 2, stash, &m);
    return JOULE_OK;
}

joule_status ji_instnorm(joule_infer_ctx *c)
{
    const char *op = c->node->op_type;
    if (!strcmp(op, "InstanceNormalization")) {
        const joule_shape *x = ji_in_shape(c, 0);
        joule_status st = check_channels(c, x, 1, "scale");
        if (!st)
            st = check_channels(c, x, 2, "B");
        if (st)
            return st;
    }
    ji_out_like_input(c, 0, 0);
    return JOULE_OK;
}

joule_status ji_softmax(joule_infer_ctx *c)
{
    const joule_shape *x = ji_in_shape(c, 0);
    if (x) {
        int64_t dflt = c->opset >= 13 ? -1 : 1;
        int axis;
        /* before 13 the input is coerced to 2-D around axis, so axis == rank is accepted */
        int rank = c->opset >= 13 ? x->rank : x->rank + 1;
        if (rank < 1)
            rank = 1;
        joule_status st = ji_norm_axis(c, joule_attr_int(c->node, "axis", dflt), rank, "axis",
                                       &axis);
        if (st)
            return st;
    }
    ji_out_like_input(c, 0, 0);
    return JOULE_OK;
}

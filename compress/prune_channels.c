/* compress/prune_channels.c: structured channel pruning. One walk in topological order finds
 * "channel spaces": the output channels a Conv (group 1), Gemm or MatMul with a constant weight
 * makes, followed through everything that keeps them apart (BatchNormalization, unary and
 * elementwise ops with per-channel constants, pooling, depthwise convs, Flatten and flatten-like
 * Reshapes) to the layers that read them. Every place a channel lives is recorded as an edit: the
 * producer's weight rows and bias, BN parameters, constants, a depthwise conv's filters and group
 * count, a Reshape's target size, the reader's weight columns (a C*H*W block per channel after a
 * Flatten). Residual Adds join spaces (tied channels, pruned with one set). Anything the walk
 * cannot follow, a graph output included, blocks the space, which then stays whole with a report
 * row saying why. Then, per unblocked space, the channels with the smallest L1/L2 weight norm go,
 * every edit slices its tensor, and shapes are inferred again.
 *
 * Multi-head attention: a Reshape that splits the channel axis into [heads, head_dim] makes the
 * carrier "split" (the head index on one axis, the channel within the head on the next), and the
 * space then drops the same number of channels in every head, chosen per head. Split channels
 * follow Transposes, elementwise ops with operands broadcast along the channel axis, and the two
 * attention MatMuls: in softmax(q k^T) v, channel c of q and channel c of k meet only in the dot
 * product, so the MatMul that contracts them ties the two spaces (dropping c from both drops
 * exactly that term; the scale constant stays); v's channels pass through attn @ v column by
 * column. A Reshape that merges [heads, head_dim] back hands the channels to the next layer's
 * input rows (the attention output projection). Everything else meeting split channels blocks. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/compress_internal.h"
#include "joule/infer.h"
#include "joule/prune.h"

#define PASS "prune_channels"
#define MAX_MULTIPLE 4096

void joule_channel_defaults(joule_channel_options *o)
{
    memset(o, 0, sizeof *o);
    o->norm = JOULE_CHANNEL_L1;
}

typedef enum edit_kind {
    ED_OUT,   /* a producer's weight: one slice per output channel (importance comes from here) */
    ED_IN,    /* a reader's weight: its input channels */
    ED_PARAM, /* a per-channel constant (bias, BN parameter, elementwise operand) */
    ED_DW,    /* a depthwise conv: its filters, and its group count */
    ED_SHAPE, /* a Reshape's target: entry `axis` holds channels * block / heads */
    ED_PASS   /* a node the channels pass through (zero_only checks that it maps 0 to 0) */
} edit_kind;

typedef struct edit {
    edit_kind kind;
    joule_node *node;
    int input;     /* which input of node holds the tensor */
    int axis;      /* axis of that tensor that holds the channels */
    int64_t block; /* consecutive positions per channel along axis */
    bool bias;     /* a producer's bias (zero_only looks at it) */
    int64_t heads; /* ED_SHAPE: the entry is per head (the head_dim of a split); 0: not */
} edit;

typedef struct space {
    int parent;
    int64_t C;
    int64_t heads;       /* channels are heads x C/heads (attention): each head loses as many */
    bool by_add, by_dot; /* tied through residual Adds / through an attention dot product q.k */
    bool blocked;
    char why[320];
    edit *edits;
    size_t n_edits, cap_edits;
} space;

typedef struct carrier {
    int space; /* -1: none */
    int axis;
    int64_t block;
    int head; /* split carrier: the axis holding the head index (axis holds the channel within
               * the head, and block is 1); -1: channels are on `axis` alone */
} carrier;

typedef struct ctx {
    joule_model *m;
    joule_graph *g;
    const joule_channel_options *o;
    space *sp;
    size_t n_sp, cap_sp;
    const joule_value **keys; /* open-addressing map value -> carrier */
    carrier *vals;
    size_t cap;
    cz_channel_map_fn map; /* or NULL */
    void *map_ctx;
    joule_error *err;
} ctx;

/* ---- bookkeeping ---- */

static size_t slot(const ctx *c, const joule_value *v)
{
    size_t h = ((uintptr_t)v >> 4) * 0x9E3779B97F4A7C15ull;
    size_t i = h & (c->cap - 1);
    while (c->keys[i] && c->keys[i] != v)
        i = (i + 1) & (c->cap - 1);
    return i;
}

static int find(ctx *c, int s)
{
    while (c->sp[s].parent != s) {
        c->sp[s].parent = c->sp[c->sp[s].parent].parent;
        s = c->sp[s].parent;
    }
    return s;
}

static carrier get(ctx *c, const joule_value *v)
{
    carrier none = {-1, 0, 0, -1};
    if (!v)
        return none;
    size_t i = slot(c, v);
    if (!c->keys[i])
        return none;
    carrier k = c->vals[i];
    k.space = find(c, k.space);
    return k;
}

static void put(ctx *c, const joule_value *v, carrier k)
{
    if (!v)
        return;
    size_t i = slot(c, v);
    c->keys[i] = v;
    c->vals[i] = k;
}

static void block(ctx *c, int s, const joule_node *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void block(ctx *c, int s, const joule_node *n, const char *fmt, ...)
{
    space *p = &c->sp[find(c, s)];
    if (p->blocked)
        return;
    p->blocked = true;
    char msg[256], lb[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n)
        snprintf(p->why, sizeof p->why, "%s (%s %s)", msg, n->op_type, cz_label(c->g, n, lb, sizeof lb));
    else
        snprintf(p->why, sizeof p->why, "%s", msg);
}

static joule_status new_space(ctx *c, int64_t C, int *out)
{
    if (c->n_sp == c->cap_sp) {
        size_t cap = c->cap_sp ? c->cap_sp * 2 : 16;
        space *s = realloc(c->sp, cap * sizeof *s);
        if (!s)
            return joule_fail(c->err, JOULE_ERR_NOMEM, "prune_channels: out of memory");
        c->sp = s;
        c->cap_sp = cap;
    }
    space *s = &c->sp[c->n_sp];
    memset(s, 0, sizeof *s);
    s->parent = (int)c->n_sp;
    s->C = C;
    s->heads = 1;
    *out = (int)c->n_sp++;
    return JOULE_OK;
}

static joule_status add_edit(ctx *c, int s, edit e)
{
    space *p = &c->sp[find(c, s)];
    if (p->n_edits == p->cap_edits) {
        size_t cap = p->cap_edits ? p->cap_edits * 2 : 8;
        edit *ne = realloc(p->edits, cap * sizeof *ne);
        if (!ne)
            return joule_fail(c->err, JOULE_ERR_NOMEM, "prune_channels: out of memory");
        p->edits = ne;
        p->cap_edits = cap;
    }
    p->edits[p->n_edits++] = e;
    return JOULE_OK;
}

/* Joins two spaces (tied channels): through an elementwise op (a residual Add), or, when dot,
 * through the attention dot product q.k. */
static joule_status unite(ctx *c, int a, int b, const joule_node *n, bool dot)
{
    a = find(c, a);
    b = find(c, b);
    if (a == b)
        return JOULE_OK;
    space *A = &c->sp[a], *B = &c->sp[b];
    if (A->C != B->C) {
        block(c, a, n, "joins %lld and %lld channels", (long long)A->C, (long long)B->C);
        block(c, b, n, "joins %lld and %lld channels", (long long)A->C, (long long)B->C);
    }
    if (A->heads != B->heads && A->heads > 1 && B->heads > 1) {
        block(c, a, n, "joins channels split into %lld and into %lld heads", (long long)A->heads,
              (long long)B->heads);
        block(c, b, n, "joins channels split into %lld and into %lld heads", (long long)A->heads,
              (long long)B->heads);
    }
    if (B->heads > A->heads)
        A->heads = B->heads;
    A->by_add = A->by_add || B->by_add || !dot;
    A->by_dot = A->by_dot || B->by_dot || dot;
    if (B->blocked && !A->blocked) {
        A->blocked = true;
        memcpy(A->why, B->why, sizeof A->why);
    }
    for (size_t i = 0; i < B->n_edits; i++) {
        joule_status st = add_edit(c, a, B->edits[i]);
        if (st)
            return st;
        A = &c->sp[a];
        B = &c->sp[b];
    }
    free(B->edits);
    B->edits = NULL;
    B->n_edits = B->cap_edits = 0;
    B->parent = a;
    return JOULE_OK;
}

/* ---- op classes ---- */

static bool in_list(const char *op, const char *const *list)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(op, list[i]) == 0)
            return true;
    return false;
}

static const char *const elementwise_ops[] = {
    "Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSwish", "HardSigmoid", "Elu", "Selu", "Celu",
    "Gelu", "Softplus", "Softsign", "Mish", "Identity", "Dropout", "Abs", "Neg", "Exp", "Log",
    "Sqrt", "Erf", "Clip", "ThresholdedRelu", "Floor", "Ceil", "Round", "Sign", "Reciprocal",
    "Sin", "Cos", "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "PRelu", NULL};

static const char *const pool_ops[] = {"MaxPool", "AveragePool", "LpPool", "GlobalAveragePool",
                                       "GlobalMaxPool", "GlobalLpPool", NULL};

static bool default_domain(const joule_node *n)
{
    return !n->domain[0] || strcmp(n->domain, "ai.onnx") == 0;
}

static bool other_outputs_used(const joule_graph *g, const joule_node *n)
{
    for (int k = 1; k < n->n_outputs; k++)
        if (n->outputs[k] && cz_uses(g, n->outputs[k]))
            return true;
    return false;
}

/* Float constant weight of n at input k that only n reads, or NULL. */
static const joule_tensor *own_weight(const joule_graph *g, const joule_node *n, int k)
{
    if (k >= n->n_inputs || !n->inputs[k])
        return NULL;
    const joule_tensor *t = cz_const(g, n->inputs[k]);
    if (!t || !cz_float_dtype(t->dtype))
        return NULL;
    return t;
}

/* Blocks every space carried by n's inputs. */
static void block_inputs(ctx *c, const joule_node *n, const char *why)
{
    for (int k = 0; k < n->n_inputs; k++) {
        carrier ck = get(c, n->inputs[k]);
        if (ck.space >= 0)
            block(c, ck.space, n, "%s", why);
    }
}

static int value_rank(const joule_value *v)
{
    if (!v)
        return -1;
    if (v->data)
        return v->data->rank;
    return v->shape.rank;
}

/* Product of v's dims [from, rank); -1 when one is unknown. */
static int64_t inner_size(const joule_value *v, int from)
{
    int64_t p = 1;
    for (int d = from; d < v->shape.rank; d++) {
        if (v->shape.dims[d].size < 0)
            return -1;
        p *= v->shape.dims[d].size;
    }
    return p;
}

/* ---- readers ---- */

/* Elementwise ops (unary and n-ary with broadcasting): carriers unite, per-channel constants
 * become edits, the output carries the channels. */
static joule_status visit_elementwise(ctx *c, joule_node *n)
{
    const joule_graph *g = c->g;
    /* the output rank: inferred, else the largest input rank (numpy broadcasting) */
    int R = n->outputs[0]->shape.rank;
    for (int k = 0; k < n->n_inputs && R < 0; k++)
        if (n->inputs[k] && value_rank(n->inputs[k]) < 0) {
            block_inputs(c, n, "an input's rank is unknown");
            return JOULE_OK;
        }
    if (R < 0) {
        R = 0;
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] && value_rank(n->inputs[k]) > R)
                R = value_rank(n->inputs[k]);
    }
    int first = -1, axis = -1, head = -1;
    int64_t blk = 0;
    for (int k = 0; k < n->n_inputs; k++) {
        carrier ck = get(c, n->inputs[k]);
        if (ck.space < 0)
            continue;
        int r = value_rank(n->inputs[k]);
        if (r < 0) {
            block_inputs(c, n, "an input's rank is unknown");
            return JOULE_OK;
        }
        int a = ck.axis + (R - r), h = ck.head < 0 ? -1 : ck.head + (R - r);
        if (first < 0) {
            first = ck.space;
            axis = a;
            head = h;
            blk = ck.block;
        } else if (a != axis || ck.block != blk || h != head) {
            block_inputs(c, n, "its inputs hold channels on different axes");
            return JOULE_OK;
        } else {
            joule_status st = unite(c, first, ck.space, n, false);
            if (st)
                return st;
        }
    }
    if (strcmp(n->op_type, "Dropout") == 0 && other_outputs_used(g, n)) {
        block_inputs(c, n, "its mask output is read");
        return JOULE_OK;
    }
    int64_t C = c->sp[find(c, first)].C;
    for (int k = 0; k < n->n_inputs; k++) {
        joule_value *v = n->inputs[k];
        if (!v || get(c, v).space >= 0)
            continue;
        const joule_tensor *t = cz_const(g, v);
        if (!t) {
            block_inputs(c, n, "it combines the channels with a computed tensor that has none");
            return JOULE_OK;
        }
        int p = R - t->rank, ta = axis - p;
        if (ta < 0 || t->dims[ta] == 1)
            continue; /* broadcast along the channels (a split's head axis may vary) */
        if (head >= 0) {
            block_inputs(c, n, "a constant operand varies along the channels of attention heads");
            return JOULE_OK;
        }
        if (t->dims[ta] != C * blk || t->dtype == JOULE_STRING) {
            block_inputs(c, n, "a constant operand does not broadcast per channel");
            return JOULE_OK;
        }
        joule_status st = add_edit(c, first, (edit){ED_PARAM, n, k, ta, blk, false, 0});
        if (st)
            return st;
    }
    put(c, n->outputs[0], (carrier){find(c, first), axis, blk, head});
    return add_edit(c, first, (edit){ED_PASS, n, 0, axis, blk, false, 0});
}

static joule_status visit_norm(ctx *c, joule_node *n, carrier ck, int n_params)
{
    if (ck.axis != 1 || ck.block != 1) {
        block(c, ck.space, n, "channels are not on axis 1");
        return JOULE_OK;
    }
    if (other_outputs_used(c->g, n)) {
        block(c, ck.space, n, "its statistics outputs are read");
        return JOULE_OK;
    }
    int64_t C = c->sp[ck.space].C;
    for (int k = 1; k <= n_params; k++) {
        const joule_tensor *t = k < n->n_inputs && n->inputs[k] ? cz_const(c->g, n->inputs[k]) : NULL;
        if (!t || t->rank != 1 || t->dims[0] != C) {
            block(c, ck.space, n, "its per-channel parameters are not constants of %lld",
                  (long long)C);
            return JOULE_OK;
        }
    }
    for (int k = 1; k <= n_params; k++) {
        joule_status st = add_edit(c, ck.space, (edit){ED_PARAM, n, k, 0, 1, false, 0});
        if (st)
            return st;
    }
    put(c, n->outputs[0], ck);
    return add_edit(c, ck.space, (edit){ED_PASS, n, 0, 1, 1, false, 0});
}

static joule_status visit_conv_reader(ctx *c, joule_node *n, carrier ck)
{
    const joule_graph *g = c->g;
    const joule_tensor *w = own_weight(g, n, 1);
    int64_t group = joule_attr_int(n, "group", 1);
    int64_t C = c->sp[ck.space].C;
    if (!w || w->rank < 3) {
        block(c, ck.space, n, "the reading Conv's weight is not a float constant");
        return JOULE_OK;
    }
    if (cz_uses(g, n->inputs[1]) > 1) {
        block(c, ck.space, n, "the reading Conv's weight is shared");
        return JOULE_OK;
    }
    if (ck.axis != 1 || ck.block != 1) {
        block(c, ck.space, n, "channels are not on axis 1 of the Conv input");
        return JOULE_OK;
    }
    if (group == 1) {
        if (w->dims[1] != C) {
            block(c, ck.space, n, "the Conv weight has %lld input channels, not %lld",
                  (long long)w->dims[1], (long long)C);
            return JOULE_OK;
        }
        return add_edit(c, ck.space, (edit){ED_IN, n, 1, 1, 1, false, 0});
    }
    if (group == C && w->dims[0] == C && w->dims[1] == 1) { /* depthwise, multiplier 1 */
        if (n->n_inputs > 2 && n->inputs[2]) {
            const joule_tensor *b = cz_const(g, n->inputs[2]);
            if (!b || b->rank != 1 || b->dims[0] != C) {
                block(c, ck.space, n, "the depthwise Conv's bias is not a constant of %lld",
                      (long long)C);
                return JOULE_OK;
            }
        }
        joule_status st = add_edit(c, ck.space, (edit){ED_DW, n, 1, 0, 1, false, 0});
        if (!st && n->n_inputs > 2 && n->inputs[2])
            st = add_edit(c, ck.space, (edit){ED_PARAM, n, 2, 0, 1, true, 0});
        if (!st)
            put(c, n->outputs[0], ck);
        return st;
    }
    block(c, ck.space, n, "grouped Conv (group=%lld) that is not depthwise with multiplier 1",
          (long long)group);
    return JOULE_OK;
}

static joule_status visit_matmul_reader(ctx *c, joule_node *n, carrier ck, bool gemm)
{
    const joule_graph *g = c->g;
    const joule_tensor *w = own_weight(g, n, 1);
    int64_t C = c->sp[ck.space].C;
    if (!w || w->rank != 2) {
        block(c, ck.space, n, "the reading layer's weight is not a 2-D float constant");
        return JOULE_OK;
    }
    if (cz_uses(g, n->inputs[1]) > 1) {
        block(c, ck.space, n, "the reading layer's weight is shared");
        return JOULE_OK;
    }
    int r = value_rank(n->inputs[0]);
    int axis = gemm ? (joule_attr_int(n, "transB", 0) ? 1 : 0) : 0;
    if (gemm && joule_attr_int(n, "transA", 0)) {
        block(c, ck.space, n, "Gemm with transA reads the channels as rows");
        return JOULE_OK;
    }
    if (r < 1 || ck.axis != r - 1) {
        block(c, ck.space, n, "channels are not the reduction axis of the reader");
        return JOULE_OK;
    }
    if (w->dims[axis] != C * ck.block) {
        block(c, ck.space, n, "the reader's weight has %lld rows, not %lld",
              (long long)w->dims[axis], (long long)(C * ck.block));
        return JOULE_OK;
    }
    return add_edit(c, ck.space, (edit){ED_IN, n, 1, axis, ck.block, false, 0});
}

static joule_status visit_flatten(ctx *c, joule_node *n, carrier ck)
{
    const joule_value *x = n->inputs[0];
    int r = x->shape.rank;
    int64_t f = joule_attr_int(n, "axis", 1);
    if (r > 0 && f < 0)
        f += r;
    if (r < 0 || f != ck.axis || f == 0) {
        block(c, ck.space, n, "it does not flatten from the channel axis");
        return JOULE_OK;
    }
    int64_t inner = inner_size(x, ck.axis + 1);
    if (inner <= 0) {
        block(c, ck.space, n, "the flattened dims are not known");
        return JOULE_OK;
    }
    put(c, n->outputs[0], (carrier){ck.space, 1, ck.block * inner, -1});
    return add_edit(c, ck.space, (edit){ED_PASS, n, 0, 1, ck.block * inner, false, 0});
}

/* A Reshape that keeps the dims before the channel axis and merges the rest (a flatten). */
static joule_status visit_reshape(ctx *c, joule_node *n, carrier ck)
{
    const joule_graph *g = c->g;
    const joule_value *x = n->inputs[0], *y = n->outputs[0];
    const joule_tensor *s = n->n_inputs > 1 && n->inputs[1] ? cz_const(g, n->inputs[1]) : NULL;
    int a = ck.axis;
    if (!s || s->dtype != JOULE_I64 || s->rank != 1 || (int64_t)s->count != a + 1 || !y ||
        y->shape.rank != a + 1 || joule_attr_int(n, "allowzero", 0)) {
        block(c, ck.space, n, "a Reshape that is not a flatten from the channel axis");
        return JOULE_OK;
    }
    const int64_t *sv = s->data;
    for (int i = 0; i < a; i++) {
        bool same = sv[i] == 0 || (x->shape.dims[i].size >= 0 && sv[i] == x->shape.dims[i].size);
        if (!same) {
            block(c, ck.space, n, "a Reshape that changes dims before the channel axis");
            return JOULE_OK;
        }
    }
    int64_t inner = inner_size(x, a + 1);
    int64_t C = c->sp[ck.space].C;
    if (inner <= 0 || (sv[a] != -1 && sv[a] != C * ck.block * inner)) {
        block(c, ck.space, n, "a Reshape whose merged size is not channels x inner dims");
        return JOULE_OK;
    }
    if (sv[a] != -1) {
        joule_status st =
            add_edit(c, ck.space, (edit){ED_SHAPE, n, 1, a, ck.block * inner, false, 0});
        if (st)
            return st;
    }
    put(c, n->outputs[0], (carrier){ck.space, a, ck.block * inner, -1});
    return add_edit(c, ck.space, (edit){ED_PASS, n, 0, a, ck.block * inner, false, 0});
}

/* ---- attention: heads split from the channel axis ---- */

/* Checks a Reshape target s (n entries) against its input x where output entry j holds input
 * dim src[j] (-1: a split or merged entry the caller checks). Such an entry must be 0 only when
 * it copies the same position, a positive size equal to the known input dim, or the one -1 (it
 * then resolves to that input dim however the channels shrink, since every other entry is
 * either matched or scales with the channels). *minus is the -1's position or -1. NULL when
 * fine, else why not. */
static const char *reshape_keeps(const joule_value *x, const int64_t *s, int n, const int *src,
                                 int *minus)
{
    *minus = -1;
    for (int j = 0; j < n; j++) {
        if (s[j] == -1) {
            if (*minus >= 0)
                return "a Reshape target with two -1 entries";
            *minus = j;
            continue;
        }
        if (src[j] < 0)
            continue;
        if (s[j] == 0 && src[j] == j)
            continue;
        if (s[j] <= 0 || x->shape.dims[src[j]].size != s[j])
            return "a Reshape that changes dims other than the channels'";
    }
    return NULL;
}

/* The Reshape's constant int64 target when it has n entries and allowzero is off, else NULL. */
static const int64_t *reshape_target(const ctx *c, const joule_node *n, int entries)
{
    const joule_tensor *s = n->n_inputs > 1 && n->inputs[1] ? cz_const(c->g, n->inputs[1]) : NULL;
    if (!s || s->dtype != JOULE_I64 || s->rank != 1 || (int64_t)s->count != entries ||
        joule_attr_int(n, "allowzero", 0))
        return NULL;
    return s->data;
}

/* A Reshape [.., C, ..] -> [.., H, C/H, ..] (attention heads): the carrier becomes split, the
 * space drops the same channels count in every head, and the target's head_dim entry (unless it
 * is the -1) follows. */
static joule_status visit_split_reshape(ctx *c, joule_node *n, carrier ck)
{
    const joule_value *x = n->inputs[0], *y = n->outputs[0];
    int r = x->shape.rank, a = ck.axis;
    int64_t C = c->sp[ck.space].C;
    const int64_t *sv = reshape_target(c, n, r + 1);
    if (!sv || ck.block != 1 || a >= r ||
        (x->shape.dims[a].size >= 0 && x->shape.dims[a].size != C)) {
        block(c, ck.space, n, "a Reshape that neither flattens nor splits the channel axis");
        return JOULE_OK;
    }
    int src[JOULE_MAX_RANK + 1], minus;
    for (int j = 0; j <= r; j++)
        src[j] = j < a ? j : j <= a + 1 ? -1 : j - 1;
    const char *why = reshape_keeps(x, sv, r + 1, src, &minus);
    int64_t H = sv[a], hd = sv[a + 1];
    if (!why && H == -1 && hd > 0 && C % hd == 0)
        H = C / hd;
    else if (!why && hd == -1 && H > 0 && C % H == 0)
        hd = C / H;
    if (!why && (H <= 0 || hd <= 0 || C % H != 0 || C / H != hd))
        why = "a Reshape that does not split the channels into heads x head_dim";
    if (!why && hd == 1 && H > 1) /* an unsqueeze after the channels, not attention heads */
        why = "a Reshape that splits the channels into heads of one channel";
    if (!why && y->shape.rank == r + 1 &&
        ((y->shape.dims[a].size >= 0 && y->shape.dims[a].size != H) ||
         (y->shape.dims[a + 1].size >= 0 && y->shape.dims[a + 1].size != hd)))
        why = "a Reshape whose inferred output does not match its target";
    space *sp = &c->sp[ck.space];
    if (!why && sp->heads > 1 && sp->heads != H)
        why = "channels split into heads in two different ways";
    if (why) {
        block(c, ck.space, n, "%s", why);
        return JOULE_OK;
    }
    if (H > sp->heads)
        sp->heads = H;
    if (sv[a + 1] != -1) {
        joule_status st = add_edit(c, ck.space, (edit){ED_SHAPE, n, 1, a + 1, 1, false, H});
        if (st)
            return st;
    }
    put(c, n->outputs[0], (carrier){ck.space, a + 1, 1, a});
    return add_edit(c, ck.space, (edit){ED_PASS, n, 0, a + 1, 1, false, 0});
}

/* A Reshape [.., H, C/H, ..] -> [.., C, ..] merging the heads back: the carrier is whole again,
 * and the target's merged entry (unless it is the -1) follows. */
static joule_status visit_merge_reshape(ctx *c, joule_node *n, carrier ck)
{
    const joule_value *x = n->inputs[0];
    int r = x->shape.rank, h = ck.head;
    const space *sp = &c->sp[ck.space];
    const int64_t *sv = r > 1 ? reshape_target(c, n, r - 1) : NULL;
    if (!sv || ck.axis != h + 1 || h + 1 >= r ||
        (x->shape.dims[h].size >= 0 && x->shape.dims[h].size != sp->heads) ||
        (x->shape.dims[h + 1].size >= 0 && x->shape.dims[h + 1].size * sp->heads != sp->C)) {
        block(c, ck.space, n, "a Reshape that does not merge the attention heads back");
        return JOULE_OK;
    }
    int src[JOULE_MAX_RANK], minus;
    for (int j = 0; j < r - 1; j++)
        src[j] = j < h ? j : j == h ? -1 : j + 1;
    const char *why = reshape_keeps(x, sv, r - 1, src, &minus);
    if (!why && sv[h] != -1 && sv[h] != sp->C)
        why = "a Reshape that does not merge the attention heads back";
    if (why) {
        block(c, ck.space, n, "%s", why);
        return JOULE_OK;
    }
    if (sv[h] != -1) {
        joule_status st = add_edit(c, ck.space, (edit){ED_SHAPE, n, 1, h, 1, false, 0});
        if (st)
            return st;
    }
    put(c, n->outputs[0], (carrier){ck.space, h, 1, -1});
    return add_edit(c, ck.space, (edit){ED_PASS, n, 0, h, 1, false, 0});
}

static joule_status visit_transpose(ctx *c, joule_node *n, carrier ck)
{
    int r = value_rank(n->inputs[0]);
    const joule_attr *pa = joule_node_attr(n, "perm");
    if (r < 1 || r > JOULE_MAX_RANK ||
        (pa && (pa->type != JOULE_ATTR_INTS || pa->count != (size_t)r))) {
        block(c, ck.space, n, "a Transpose whose rank or perm is not known");
        return JOULE_OK;
    }
    int axis = -1, head = -1;
    bool seen[JOULE_MAX_RANK] = {false}, perm = true;
    for (int i = 0; i < r; i++) {
        int64_t from = pa ? pa->ints[i] : r - 1 - i; /* default: reverse the axes */
        if (from < 0 || from >= r || seen[from]) {
            perm = false;
            break;
        }
        seen[from] = true;
        if (from == ck.axis)
            axis = i;
        if (ck.head >= 0 && from == ck.head)
            head = i;
    }
    if (!perm || axis < 0 || (ck.head >= 0 && head < 0)) {
        block(c, ck.space, n, "a Transpose whose perm is not a permutation");
        return JOULE_OK;
    }
    put(c, n->outputs[0], (carrier){ck.space, axis, ck.block, head});
    return add_edit(c, ck.space, (edit){ED_PASS, n, 0, axis, ck.block, false, 0});
}

/* MatMul of two computed tensors (attention). Exact cases: the reduction axis of A and of B
 * carry the same channels (q k^T: the spaces are tied, the output has none); B's columns carry
 * them (attn @ v: so does the output's last axis); A's rows carry them (so do the output's
 * rows). Heads must sit on a batch axis, the same one for both operands of q k^T. */
static joule_status visit_dynamic_matmul(ctx *c, joule_node *n)
{
    carrier ca = get(c, n->inputs[0]), cb = get(c, n->inputs[1]);
    int rA = value_rank(n->inputs[0]), rB = value_rank(n->inputs[1]);
    if (rA < 2 || rB < 2) {
        block_inputs(c, n, "a MatMul of computed tensors with an operand of unknown rank or a "
                           "vector");
        return JOULE_OK;
    }
    int R = rA > rB ? rA : rB;
    /* output position of a head axis; -1 stays -1, -2 for a head on a matrix axis */
    int ha = ca.head < 0 ? -1 : ca.head < rA - 2 ? ca.head + R - rA : -2;
    int hb = cb.head < 0 ? -1 : cb.head < rB - 2 ? cb.head + R - rB : -2;
    if (ca.space >= 0 && cb.space >= 0) {
        if (ca.axis != rA - 1 || cb.axis != rB - 2 || ca.block != 1 || cb.block != 1 ||
            ha != hb || ha == -2) {
            block_inputs(c, n, "a MatMul of two tensors holding channels that is not q.k over "
                               "the same heads");
            return JOULE_OK;
        }
        return unite(c, ca.space, cb.space, n, true);
    }
    if (cb.space >= 0 && cb.axis == rB - 1 && hb != -2) {
        put(c, n->outputs[0], (carrier){cb.space, R - 1, cb.block, hb});
        return add_edit(c, cb.space, (edit){ED_PASS, n, 1, R - 1, cb.block, false, 0});
    }
    if (ca.space >= 0 && ca.axis == rA - 2 && ha != -2) {
        put(c, n->outputs[0], (carrier){ca.space, R - 2, ca.block, ha});
        return add_edit(c, ca.space, (edit){ED_PASS, n, 0, R - 2, ca.block, false, 0});
    }
    block_inputs(c, n, "a MatMul with a computed operand that reads the channels as its "
                       "reduction axis or its batch");
    return JOULE_OK;
}

/* n reads at least one carried value: follow it or block. */
static joule_status visit_reader(ctx *c, joule_node *n)
{
    const char *op = n->op_type;
    if (!default_domain(n) || n->n_outputs < 1 || !n->outputs[0]) {
        block_inputs(c, n, "channel pruning does not follow this op");
        return JOULE_OK;
    }
    if (in_list(op, elementwise_ops))
        return visit_elementwise(c, n);
    if (strcmp(op, "MatMul") == 0 && n->n_inputs == 2 && n->inputs[1] &&
        !cz_const(c->g, n->inputs[1]))
        return visit_dynamic_matmul(c, n);
    /* the other ops read the channels through input 0 only */
    carrier ck = get(c, n->inputs[0]);
    for (int k = 1; k < n->n_inputs; k++)
        if (get(c, n->inputs[k]).space >= 0) {
            block_inputs(c, n, "channels flow into a weight or parameter input");
            return JOULE_OK;
        }
    if (ck.space < 0)
        return JOULE_OK;
    if (strcmp(op, "Transpose") == 0)
        return visit_transpose(c, n, ck);
    if (strcmp(op, "Reshape") == 0) {
        if (ck.head >= 0)
            return visit_merge_reshape(c, n, ck);
        int r = n->inputs[0]->shape.rank;
        const joule_tensor *s =
            n->n_inputs > 1 && n->inputs[1] ? cz_const(c->g, n->inputs[1]) : NULL;
        if (r > 0 && s && s->rank == 1 && (int64_t)s->count == r + 1)
            return visit_split_reshape(c, n, ck);
        return visit_reshape(c, n, ck);
    }
    if (ck.head >= 0) {
        block(c, ck.space, n, "channels split into attention heads reach an op it cannot follow");
        return JOULE_OK;
    }
    if (in_list(op, pool_ops)) {
        if (ck.axis != 1 || ck.block != 1)
            block(c, ck.space, n, "channels are not on axis 1");
        else if (other_outputs_used(c->g, n))
            block(c, ck.space, n, "its indices output is read");
        else {
            put(c, n->outputs[0], ck);
            return add_edit(c, ck.space, (edit){ED_PASS, n, 0, 1, 1, false, 0});
        }
        return JOULE_OK;
    }
    if (strcmp(op, "BatchNormalization") == 0)
        return visit_norm(c, n, ck, 4);
    if (strcmp(op, "InstanceNormalization") == 0)
        return visit_norm(c, n, ck, 2);
    if (strcmp(op, "Conv") == 0)
        return visit_conv_reader(c, n, ck);
    if (strcmp(op, "Gemm") == 0 || strcmp(op, "MatMul") == 0)
        return visit_matmul_reader(c, n, ck, op[0] == 'G');
    if (strcmp(op, "Flatten") == 0)
        return visit_flatten(c, n, ck);
    if (strcmp(op, "LayerNormalization") == 0) {
        int r = value_rank(n->inputs[0]);
        int64_t from = joule_attr_int(n, "axis", -1);
        if (r > 0 && from < 0)
            from += r;
        if (r > 0 && from >= 0 && ck.axis >= from) {
            block(c, ck.space, n, "its mean and variance span the channel axis, so removing "
                                  "channels would change them");
            return JOULE_OK;
        }
    }
    block(c, ck.space, n, "channel pruning does not follow this op");
    return JOULE_OK;
}

/* ---- producers ---- */

static bool skipped(const ctx *c, const char *label)
{
    for (size_t i = 0; i < c->o->n_skip; i++)
        if (cz_glob(c->o->skip[i], label))
            return true;
    return false;
}

/* When n makes output channels that can be pruned, a new space for them. */
static joule_status visit_producer(ctx *c, joule_node *n)
{
    const joule_graph *g = c->g;
    const char *op = n->op_type;
    bool conv = strcmp(op, "Conv") == 0, gemm = strcmp(op, "Gemm") == 0,
         matmul = strcmp(op, "MatMul") == 0;
    if (!default_domain(n) || !(conv || gemm || matmul) || n->n_outputs < 1 || !n->outputs[0] ||
        n->n_inputs < 2)
        return JOULE_OK;
    const joule_tensor *w = own_weight(g, n, 1);
    if (!w)
        return JOULE_OK;
    int64_t C;
    int w_axis, out_axis;
    if (conv) {
        if (joule_attr_int(n, "group", 1) != 1 || w->rank < 3)
            return JOULE_OK;
        C = w->dims[0];
        w_axis = 0;
        out_axis = 1;
    } else if (gemm) {
        if (w->rank != 2)
            return JOULE_OK;
        w_axis = joule_attr_int(n, "transB", 0) ? 0 : 1;
        C = w->dims[w_axis];
        out_axis = 1;
    } else {
        if (w->rank != 2)
            return JOULE_OK;
        w_axis = 1;
        C = w->dims[1];
        out_axis = n->outputs[0]->shape.rank - 1;
    }
    int s = 0;
    joule_status st = new_space(c, C, &s);
    if (st)
        return st;
    char lb[160];
    if ((st = add_edit(c, s, (edit){ED_OUT, n, 1, w_axis, 1, false, 0})))
        return st;
    if (out_axis < 0)
        block(c, s, n, "its output rank is unknown");
    if (skipped(c, cz_label(g, n, lb, sizeof lb)))
        block(c, s, n, "on the skip list");
    if (cz_uses(g, n->inputs[1]) > 1)
        block(c, s, n, "its weight is shared with other nodes");
    if (n->n_inputs > 2 && n->inputs[2]) {
        const joule_tensor *b = cz_const(g, n->inputs[2]);
        int ba = -1;
        if (b && b->rank == 1 && b->dims[0] == C)
            ba = 0;
        else if (b && gemm && b->rank == 2 && b->dims[0] == 1 && b->dims[1] == C)
            ba = 1;
        else if (b && b->count == 1)
            ba = -2; /* a broadcast scalar: nothing to cut */
        if (ba >= 0)
            st = add_edit(c, s, (edit){ED_PARAM, n, 2, ba, 1, true, 0});
        else if (ba == -1)
            block(c, s, n, "its bias is not a per-channel constant");
    }
    if (!st)
        put(c, n->outputs[0], (carrier){s, out_axis < 0 ? 0 : out_axis, 1, -1});
    return st;
}

/* ---- applying ---- */

static joule_status slice_input(ctx *c, joule_node *n, int k, int axis, const bool *drop,
                                int64_t C, int64_t block)
{
    joule_tensor *t, *nt;
    joule_status st = cz_private_const(c->g, n, k, &t, c->err);
    if (!st)
        st = cz_slice(t, axis, drop, C, block, &nt, c->err);
    if (st) {
        char lb[160];
        char msg[sizeof c->err->msg];
        snprintf(msg, sizeof msg, "%s", c->err ? c->err->msg : "");
        return joule_fail(c->err, st, "%s (%s): %s", cz_label(c->g, n, lb, sizeof lb),
                          n->op_type, msg);
    }
    st = joule_graph_set_initializer(c->g, n->inputs[k], nt, c->err);
    if (st)
        joule_tensor_free(nt);
    return st;
}

/* Adds each channel's |w| (L1) or w^2 (L2) over t's slices along axis into acc[C]. */
static void accumulate(const joule_tensor *t, int axis, int64_t C, bool l2, double *acc)
{
    size_t outer = 1, inner = 1;
    for (int d = 0; d < axis; d++)
        outer *= (size_t)t->dims[d];
    for (int d = axis + 1; d < t->rank; d++)
        inner *= (size_t)t->dims[d];
    const joule_dtype_traits *tr = joule_dtype_info(t->dtype);
    for (size_t o = 0; o < outer; o++)
        for (int64_t ch = 0; ch < C; ch++)
            for (size_t i = 0; i < inner; i++) {
                size_t e = (o * (size_t)C + (size_t)ch) * inner + i;
                double v = t->dtype == JOULE_F32 ? ((const float *)t->data)[e] : tr->to_f32(t->data, e);
                acc[ch] += l2 ? v * v : fabs(v);
            }
}

static int cmp_rank(const void *a, const void *b, void *arg)
{
    const double *imp = arg;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    if (imp[i] < imp[j])
        return -1;
    if (imp[i] > imp[j])
        return 1;
    return i < j ? -1 : i > j;
}

static void list_producers(ctx *c, const space *s, char *buf, size_t size)
{
    size_t off = 0;
    buf[0] = 0;
    for (size_t i = 0; i < s->n_edits && off < size; i++) {
        if (s->edits[i].kind != ED_OUT)
            continue;
        char lb[160];
        off += (size_t)snprintf(buf + off, size - off, "%s%s", off ? ", " : "",
                                cz_label(c->g, s->edits[i].node, lb, sizeof lb));
    }
}

/* Whether every element of constant t at channel ch is zero: along axis (block positions per
 * channel) when the constant is cut per channel, else (broadcast) all of it. */
static bool const_zero_at(const joule_tensor *t, int axis, int64_t block, int64_t ch)
{
    const joule_dtype_traits *tr = joule_dtype_info(t->dtype);
    if (!tr->to_f32)
        return false;
    size_t outer = 1, inner = 1, len = axis >= 0 ? (size_t)t->dims[axis] : 1;
    for (int d = 0; axis >= 0 && d < axis; d++)
        outer *= (size_t)t->dims[d];
    for (int d = axis + 1; axis >= 0 && d < t->rank; d++)
        inner *= (size_t)t->dims[d];
    if (axis < 0)
        inner = t->count;
    for (size_t o = 0; o < outer; o++)
        for (size_t i = 0; i < len; i++) {
            if (axis >= 0 && (int64_t)i / block != ch)
                continue;
            for (size_t j = 0; j < inner; j++)
                if (tr->to_f32(t->data, (o * len + i) * inner + j) != 0.0f)
                    return false;
        }
    return true;
}

/* The per-channel edit of (n, input k) in s, or NULL. */
static const edit *param_edit(const space *s, const joule_node *n, int k)
{
    for (size_t i = 0; i < s->n_edits; i++)
        if (s->edits[i].kind == ED_PARAM && s->edits[i].node == n && s->edits[i].input == k)
            return &s->edits[i];
    return NULL;
}

static const char *const zero_to_zero_unary[] = {
    "Relu", "LeakyRelu", "HardSwish", "Tanh", "Elu", "Selu", "Celu", "Gelu", "Mish", "Softsign",
    "Identity", "Dropout", "Abs", "Neg", "Sqrt", "Erf", "Sin", "Floor", "Ceil", "Round", "Sign",
    "ThresholdedRelu", "PRelu", "Mul", NULL};

/* Whether node e->node maps an all-zero channel ch to zero (zero_only needs it on the path). */
static bool keeps_zero(ctx *c, const space *s, const edit *e, int64_t ch)
{
    const joule_node *n = e->node;
    const char *op = n->op_type;
    if (in_list(op, zero_to_zero_unary) || in_list(op, pool_ops) || !strcmp(op, "Flatten") ||
        !strcmp(op, "Reshape") || !strcmp(op, "Transpose") || !strcmp(op, "MatMul"))
        return true; /* MatMul: attn @ v with v's column zero */
    if (!strcmp(op, "BatchNormalization")) { /* shift = B - scale * mean / sqrt(var + eps) */
        const joule_tensor *sc = cz_const(c->g, n->inputs[1]), *b = cz_const(c->g, n->inputs[2]);
        const joule_tensor *mu = cz_const(c->g, n->inputs[3]), *var = cz_const(c->g, n->inputs[4]);
        const joule_dtype_traits *tr = joule_dtype_info(sc->dtype);
        if (!tr->to_f32)
            return false;
        double eps = joule_attr_float(n, "epsilon", 1e-5f);
        double shift = tr->to_f32(b->data, (size_t)ch) - tr->to_f32(sc->data, (size_t)ch) *
                       tr->to_f32(mu->data, (size_t)ch) / sqrt(tr->to_f32(var->data, (size_t)ch) + eps);
        return shift == 0;
    }
    if (!strcmp(op, "InstanceNormalization"))
        return const_zero_at(cz_const(c->g, n->inputs[2]), 0, 1, ch);
    if (!strcmp(op, "Clip")) {
        for (int k = 1; k < n->n_inputs && k < 3; k++) {
            const joule_tensor *t = n->inputs[k] ? cz_const(c->g, n->inputs[k]) : NULL;
            if (!n->inputs[k])
                continue;
            if (!t || t->count != 1 || !joule_dtype_info(t->dtype)->to_f32)
                return false;
            float v = joule_dtype_info(t->dtype)->to_f32(t->data, 0);
            if (k == 1 ? v > 0 : v < 0)
                return false;
        }
        return true;
    }
    bool additive = !strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Sum") ||
                    !strcmp(op, "Mean") || !strcmp(op, "Max") || !strcmp(op, "Min");
    if (!strcmp(op, "Div"))
        return get(c, n->inputs[0]).space >= 0 && get(c, n->inputs[1]).space < 0;
    if (!additive)
        return false;
    for (int k = 0; k < n->n_inputs; k++) { /* constant operands must be zero there */
        if (!n->inputs[k] || get(c, n->inputs[k]).space >= 0)
            continue;
        const joule_tensor *t = cz_const(c->g, n->inputs[k]);
        const edit *pe = param_edit(s, n, k);
        if (!t || !const_zero_at(t, pe ? pe->axis : -1, pe ? pe->block : 1, ch))
            return false;
    }
    return true;
}

/* How many of hd channels to drop when k were asked for, so that the kept count is a multiple of
 * m: the nearest multiple (at least m; round_up: the next one up); 0 when that keeps them all. */
static int64_t round_drop(int64_t hd, int64_t k, int64_t m, bool round_up)
{
    if (m <= 1)
        return k;
    int64_t keep = hd - k;
    int64_t r = round_up ? (keep + m - 1) / m * m : (keep + m / 2) / m * m;
    if (r < m)
        r = m;
    return r >= hd ? 0 : hd - r;
}

/* Chooses the channels to drop in space s (drop has 2 * C entries: the second half is scratch);
 * *n_drop 0 means none. */
static joule_status choose(ctx *c, space *s, bool *drop, int64_t *n_drop)
{
    int64_t C = s->C;
    *n_drop = 0;
    double *imp = calloc((size_t)C, sizeof *imp);
    double *bias = calloc((size_t)C, sizeof *bias);
    size_t *order = malloc((size_t)C * sizeof *order);
    double *one = malloc((size_t)C * sizeof *one);
    if (!imp || !bias || !order || !one) {
        free(imp);
        free(bias);
        free(order);
        free(one);
        return joule_fail(c->err, JOULE_ERR_NOMEM, "prune_channels: out of memory");
    }
    bool l2 = c->o->norm == JOULE_CHANNEL_L2;
    /* Tied producers can differ a lot in fan-in (a 1x3x3 stem conv next to a 48-input 1x1
     * conv): each producer's norms are divided by their mean before they are added, so every
     * producer has the same say. Attention heads (ranking, not zero_only) also count the
     * readers' rows: v's channel reaches the output only through the projection's row. */
    bool readers = s->heads > 1 && !c->o->zero_only;
    for (size_t i = 0; i < s->n_edits; i++) {
        const edit *e = &s->edits[i];
        const joule_tensor *t = cz_const(c->g, e->node->inputs[e->input]);
        if (e->kind == ED_OUT ||
            (readers && e->kind == ED_IN && t && cz_float_dtype(t->dtype) && e->block == 1 &&
             t->dims[e->axis] == C)) {
            memset(one, 0, (size_t)C * sizeof *one);
            accumulate(t, e->axis, C, l2, one);
            double mean = 0;
            for (int64_t ch = 0; ch < C; ch++) {
                if (l2)
                    one[ch] = sqrt(one[ch]);
                mean += one[ch] / (double)C;
            }
            for (int64_t ch = 0; ch < C; ch++)
                imp[ch] += mean > 0 ? one[ch] / mean : one[ch];
        } else if (e->bias && t && cz_float_dtype(t->dtype)) {
            accumulate(t, e->axis, C, true, bias);
        }
    }
    /* Attention heads (H > 1) each lose the same number of channels, chosen within the head;
     * otherwise H = 1 and the head is the whole space. */
    int64_t H = s->heads > 1 && C % s->heads == 0 ? s->heads : 1, hd = C / H;
    if (c->o->zero_only) {
        int64_t k = hd - 1; /* the fewest dead channels of any head; keep one per head */
        bool *dead = drop + C; /* scratch: apply_space allocates 2 * C */
        for (int64_t h = 0; h < H; h++) {
            int64_t n = 0;
            for (int64_t ch = h * hd; ch < (h + 1) * hd; ch++) {
                dead[ch] = imp[ch] == 0 && bias[ch] == 0;
                for (size_t i = 0; i < s->n_edits && dead[ch]; i++)
                    if (s->edits[i].kind == ED_PASS)
                        dead[ch] = keeps_zero(c, s, &s->edits[i], ch);
                n += dead[ch];
            }
            if (n < k)
                k = n;
        }
        k = round_drop(hd, k, c->o->multiple, true);
        for (int64_t h = 0; h < H; h++)
            for (int64_t ch = h * hd, n = 0; ch < (h + 1) * hd && n < k; ch++)
                if (dead[ch]) {
                    drop[ch] = true;
                    n++;
                }
        *n_drop = k * H;
    } else {
        int64_t k = llround(c->o->ratio * (double)hd);
        if (k >= hd)
            k = hd - 1;
        if (k < 0)
            k = 0;
        k = round_drop(hd, k, c->o->multiple, false);
        for (int64_t h = 0; h < H; h++) {
            size_t *ord = order + h * hd;
            for (int64_t i = 0; i < hd; i++)
                ord[i] = (size_t)(h * hd + i);
            qsort_r(ord, (size_t)hd, sizeof *ord, cmp_rank, imp);
            for (int64_t i = 0; i < k; i++)
                drop[ord[i]] = true;
        }
        *n_drop = k * H;
    }
    free(imp);
    free(bias);
    free(order);
    free(one);
    return JOULE_OK;
}

static joule_status apply_space(ctx *c, space *s, joule_report *r)
{
    int64_t C = s->C;
    if (C < 1)
        return JOULE_OK;
    bool *drop = calloc(2 * (size_t)C, sizeof *drop);
    if (!drop)
        return joule_fail(c->err, JOULE_ERR_NOMEM, "prune_channels: out of memory");
    int64_t n_drop = 0;
    joule_status st = choose(c, s, drop, &n_drop);
    char producers[512];
    list_producers(c, s, producers, sizeof producers);
    for (size_t i = 0; i < s->n_edits && !st; i++) {
        edit *e = &s->edits[i];
        joule_node *n = e->node;
        joule_value *v = n->inputs[e->input];
        const joule_tensor *t = cz_const(c->g, v);
        uint64_t before = t ? t->count : 0, bytes_before = t ? t->nbytes : 0;
        joule_dtype dt = t ? t->dtype : JOULE_UNDEFINED;
        if (e->kind == ED_PASS)
            continue;
        if (n_drop > 0) {
            if (e->kind == ED_SHAPE) {
                joule_tensor *st_t;
                st = cz_private_const(c->g, n, e->input, &st_t, c->err);
                int64_t *d = st ? NULL : joule_tensor_mutable_data(st_t);
                if (!st && !d)
                    st = joule_fail(c->err, JOULE_ERR_NOMEM, "prune_channels: out of memory");
                if (!st)
                    d[e->axis] = (C - n_drop) * e->block / (e->heads > 1 ? e->heads : 1);
            } else {
                st = slice_input(c, n, e->input, e->axis, drop, C, e->block);
                if (!st && e->kind == ED_DW)
                    st = joule_node_set_attr_int(c->g, n, "group", C - n_drop, c->err);
            }
        }
        if (!st && n_drop > 0 && c->map && (e->kind == ED_OUT || e->kind == ED_DW) &&
            n->n_outputs >= 1 && n->outputs[0])
            st = c->map(c->map_ctx, n->outputs[0]->name, C, drop, c->err);
        if (st || (e->kind != ED_OUT && e->kind != ED_IN && e->kind != ED_DW))
            continue;
        const joule_tensor *nt = cz_const(c->g, n->inputs[e->input]);
        char lb[160], note[768], heads[96] = "";
        if (s->heads > 1)
            snprintf(heads, sizeof heads, ", %lld in each of %lld attention heads",
                     (long long)(n_drop / s->heads), (long long)s->heads);
        if (e->kind == ED_OUT)
            snprintf(note, sizeof note, "removed %lld of %lld output channels (%s norm%s)%s%s%s",
                     (long long)n_drop, (long long)C, c->o->norm == JOULE_CHANNEL_L2 ? "L2" : "L1",
                     heads, strchr(producers, ',') ? "; the same channels in all of " : "",
                     strchr(producers, ',') ? producers : "",
                     !strchr(producers, ',') ? ""
                     : s->by_dot && s->by_add ? " (tied by residual adds and the attention q.k)"
                     : s->by_dot ? " (tied: they meet in the attention dot product q.k)"
                                 : " (tied by residual adds)");
        else
            snprintf(note, sizeof note, "%s: removed %lld of %lld %schannels to follow %s",
                     e->kind == ED_DW ? "depthwise" : "reader", (long long)n_drop, (long long)C,
                     e->kind == ED_DW ? "" : "input ", producers);
        joule_layer_change row = {
            .pass = PASS,
            .node = cz_label(c->g, n, lb, sizeof lb),
            .op_type = n->op_type,
            .tensor = n->inputs[e->input]->name,
            .dtype_before = dt,
            .dtype_after = dt,
            .params_before = before,
            .params_after = nt ? nt->count : 0,
            .bytes_before = bytes_before,
            .bytes_after = nt ? nt->nbytes : 0,
            .note = note,
        };
        st = joule_report_add(r, &row, c->err);
    }
    free(drop);
    return st;
}

static joule_status report_blocked(ctx *c, const space *s, joule_report *r)
{
    joule_status st = JOULE_OK;
    for (size_t i = 0; i < s->n_edits && !st; i++)
        if (s->edits[i].kind == ED_OUT)
            st = cz_note(r, PASS, c->g, s->edits[i].node, s->edits[i].node->inputs[1]->name,
                         c->err, "left alone: %s", s->why);
    return st;
}

joule_status joule_prune_channels(joule_model *m, const joule_channel_options *opt,
                                  joule_report *r, joule_error *err)
{
    if (opt->correct_bias.enabled) /* statistics, the pruning with a channel map, corrections */
        return cz_prune_channels_corrected(m, opt, r, err);
    return cz_prune_channels_mapped(m, opt, NULL, NULL, r, err);
}

joule_status cz_channel_options_check(const joule_channel_options *opt, joule_error *err)
{
    if (isnan(opt->ratio) || opt->ratio < 0 || opt->ratio >= 1)
        return joule_fail(err, JOULE_ERR_INVALID, "prune_channels: ratio %g is outside [0, 1)",
                          opt->ratio);
    if (opt->norm != JOULE_CHANNEL_L1 && opt->norm != JOULE_CHANNEL_L2)
        return joule_fail(err, JOULE_ERR_INVALID, "prune_channels: norm must be l1 or l2");
    if (opt->multiple < 0 || opt->multiple > MAX_MULTIPLE)
        return joule_fail(err, JOULE_ERR_INVALID,
                          "prune_channels: multiple %lld is outside [0, %d]",
                          (long long)opt->multiple, MAX_MULTIPLE);
    return JOULE_OK;
}

joule_status cz_prune_channels_mapped(joule_model *m, const joule_channel_options *opt,
                                      cz_channel_map_fn map, void *map_ctx, joule_report *r,
                                      joule_error *err)
{
    joule_status cst = cz_channel_options_check(opt, err);
    if (cst)
        return cst;
    joule_graph *g = m->graph;
    if (cz_has_subgraphs(g))
        return cz_note(r, PASS, g, NULL, NULL, err,
                       "left the graph alone: it has subgraphs whose bodies may read channels");
    joule_status wst = cz_warn_unused(r, PASS, g, opt->skip, opt->n_skip, "skip pattern", false,
                                      false, err);
    if (wst)
        return wst;
    joule_status st = joule_infer_shapes(m, NULL, 0, err);
    if (st)
        return st;
    /* weights in Constant nodes become initializers so they can be sliced */
    for (size_t i = 0; i < g->n_nodes; i++) {
        joule_node *n = g->nodes[i];
        bool touched = false;
        for (int k = 1; k < n->n_inputs && !touched; k++) {
            joule_value *v = n->inputs[k];
            if (v && !v->data && cz_const(g, v) && !(v->flags & JOULE_VALUE_OUTPUT)) {
                if ((st = cz_materialize(g, v, err)))
                    return st;
                touched = true;
            }
        }
        if (touched)
            i = (size_t)-1;
    }
    ctx c = {.m = m, .g = g, .o = opt, .map = map, .map_ctx = map_ctx, .err = err};
    c.cap = 16;
    while (c.cap < 2 * g->n_values + 2)
        c.cap *= 2;
    c.keys = calloc(c.cap, sizeof *c.keys);
    c.vals = calloc(c.cap, sizeof *c.vals);
    if (!c.keys || !c.vals) {
        free(c.keys);
        free(c.vals);
        return joule_fail(err, JOULE_ERR_NOMEM, "prune_channels: out of memory");
    }
    for (size_t i = 0; i < g->n_nodes && !st; i++) {
        joule_node *n = g->nodes[i];
        bool reads = false;
        for (int k = 0; k < n->n_inputs && !reads; k++)
            reads = get(&c, n->inputs[k]).space >= 0;
        if (reads)
            st = visit_reader(&c, n);
        if (!st)
            st = visit_producer(&c, n);
    }
    for (size_t i = 0; i < g->n_outputs && !st; i++) {
        carrier ck = get(&c, g->outputs[i]);
        if (ck.space >= 0)
            block(&c, ck.space, NULL, "its channels reach graph output '%s'", g->outputs[i]->name);
    }
    for (size_t i = 0; i < c.n_sp && !st; i++) {
        space *s = &c.sp[i];
        if (s->parent != (int)i)
            continue;
        st = s->blocked ? report_blocked(&c, s, r) : apply_space(&c, s, r);
    }
    for (size_t i = 0; i < c.n_sp; i++)
        free(c.sp[i].edits);
    free(c.sp);
    free(c.keys);
    free(c.vals);
    if (!st) {
        joule_graph_prune_values(g);
        st = joule_infer_shapes(m, NULL, 0, err);
    }
    return st;
}

/* eval/engine_internal.h: the session's private state, shared by engine.c (public API, runs) and
 * plan.c (shape inference, kernel choice, constant folding, memory layout). Not installed.
 *
 * Every graph value has one eng_value slot holding its concrete view. A plan decides for each
 * value where its bytes live: in the model (initializers), in a tensor the plan owns (folded or
 * propagated constants), in the caller's input tensor (fed inputs), or at an offset in the one
 * activation arena. Nodes keep pointer arrays into those views, so a run only walks the nodes. */
#ifndef JOULE_ENGINE_INTERNAL_H
#define JOULE_ENGINE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "eval/cpu/quant/qdq.h"
#include "eval/kernel.h"
#include "joule/engine.h"

typedef struct eng_value {
    const joule_value *v;
    joule_view view;           /* concrete dtype and dims once known; data where it lives */
    bool known;                /* dtype and dims are set */
    bool is_const;             /* data fixed for the whole plan (view.data set at plan time) */
    bool is_fed;               /* a graph input the caller feeds */
    const joule_tensor *data;  /* known contents (for inference), or NULL */
    joule_tensor *owned;       /* a tensor this plan made (folded, propagated, realigned) */
    bool in_arena;
    int first, last;           /* positions of the producing node and of the last reader */
    size_t offset, bytes;      /* place in the arena */
} eng_value;

typedef struct eng_node {
    const joule_node *node;   /* the graph node at this position */
    const joule_node *knode;  /* the node the kernel sees: node, or a fused chain's anchor */
    int64_t opset;
    const joule_kernel *kernel;
    void *state;
    size_t scratch_bytes;
    int n_in, n_out;          /* what the kernel sees (a fused chain has its own inputs) */
    const joule_view **in;    /* n_in entries, NULL for omitted inputs */
    joule_view **out;         /* n_out entries, NULL for omitted outputs */
    size_t *in_v, *out_v;     /* their value indices, SIZE_MAX where omitted */
    bool run;                 /* false when folded, known at plan time, or fused away */
    bool deferred;            /* in a QDQ chain: decided when the chain's last node is reached */
    /* a fused Conv chain's activation: its own elementwise kernel, run on out[0] in place right
     * after the Conv's kernel (NULL when none) */
    const joule_kernel *act_kernel;
    const joule_node *act_node;
    int64_t act_opset;
    int act_n_in;
    const joule_view *const *act_in; /* act_in[0] is out[0] */
} eng_node;

/* A DequantizeLinear -> Conv/MatMul/Gemm [-> Relu] -> QuantizeLinear chain that one integer
 * kernel may run (eval/cpu/quant/qdq.h). Found once per session; whether it is used depends on
 * the plan's shapes (the kernel's supports()). */
typedef struct eng_fusion {
    joule_qdq_pattern pat;
    size_t idx[JOULE_QDQ_MAX_COVERED]; /* node positions of pat.covered */
    const joule_view *in[JOULE_QDQ_N_INPUTS];
    size_t in_v[JOULE_QDQ_N_INPUTS];
} eng_fusion;

/* A float Conv -> [BatchNormalization] -> [Relu/LeakyRelu/Clip/HardSwish] chain (eval/fuse.c)
 * whose inner values nothing else reads: the BN is folded into a private copy of the Conv's
 * weights and bias once per session, and the activation runs on the Conv's output in place, so
 * the chain is one kernel call writing one tensor. Planned at the chain's last node. */
typedef struct eng_cfusion {
    size_t conv, bn, act;        /* node positions; bn and act SIZE_MAX when absent */
    size_t last;                 /* the chain's last node, whose output the fused Conv writes */
    joule_tensor *w, *b;         /* folded weights and bias (owned), NULL without a BN */
    const joule_view *act_in[3]; /* the activation's inputs: the chain's output, then its own */
    joule_view wv, bv;           /* views of w and b */
    const joule_view *in[3];     /* what the Conv kernel sees: X, W, B */
    size_t in_v[3];
} eng_cfusion;

/* An arena region holding a copy of a fed input that is also a graph output. */
typedef struct eng_copy {
    size_t value;  /* index of the fed value */
    size_t offset;
} eng_copy;

struct joule_session {
    const joule_model *model;
    const joule_graph *g;
    int threads;

    size_t n_values;
    eng_value *vals;
    size_t *hash;          /* open addressing: value pointer -> index + 1 (0 = empty) */
    size_t n_hash;

    size_t n_inputs;       /* fed inputs, declared order */
    size_t *input_idx;
    int *in_rank;          /* shapes the current plan was made for */
    int64_t (*in_dims)[JOULE_MAX_RANK];
    bool *in_given;        /* shape came from the options, so it may differ from the declared one */

    eng_fusion *fusions;
    size_t n_fusions;
    size_t *node_fusion;   /* per node: index of the fused chain covering it + 1, or 0 */
    eng_cfusion *cfusions;  /* float Conv chains (eval/fuse.c) */
    size_t n_cfusions;
    size_t *node_cfusion;  /* per node: index of the Conv chain covering it + 1, or 0 */

    size_t n_outputs;
    size_t *output_idx;
    joule_tensor *out_t;   /* what joule_session_output returns */
    size_t *out_copy;      /* per output: index into copies + 1, or 0 */

    /* the plan */
    bool planned;
    bool have_outputs;     /* a run succeeded since the plan was made */
    bool data_dependent;   /* some shape depends on input contents: every run plans with data */
    bool need_data;        /* set by plan when a shape could not be made concrete without data */
    eng_node *nodes;       /* one per graph node */
    const joule_view **in_ptrs; /* the nodes' input and output pointer arrays */
    joule_view **out_ptrs;
    size_t *in_idx, *out_idx;   /* and their value indices */
    eng_copy *copies;
    size_t n_copies;
    unsigned char *arena;
    size_t arena_cap, peak;
    void *scratch;
    size_t scratch_cap, scratch_need;
};

/* Index of v's slot, or SIZE_MAX when v is not one of the graph's values. */
size_t eng_value_index(const joule_session *s, const joule_value *v);

/* Makes a plan for the shapes in s->in_rank/in_dims. With fed non-NULL (data-dependent mode),
 * the fed tensors are constants and every node is evaluated here. On failure the session has no
 * plan; s->need_data tells that the failure was a shape that only input contents decide. */
joule_status eng_plan(joule_session *s, const joule_tensor *const *fed, joule_error *err);
/* Finds the QDQ chains of the graph that fused integer kernels may run (s->fusions). */
joule_status eng_find_fusions(joule_session *s, joule_error *err);
/* Finds the float Conv -> BN -> activation chains (s->cfusions) and folds their BNs; call after
 * eng_find_fusions (QDQ chains keep their nodes). */
joule_status eng_find_conv_fusions(joule_session *s, joule_error *err);
/* Frees what eng_find_conv_fusions made. */
void eng_free_conv_fusions(joule_session *s);
/* Runs en's fused activation (en->act_kernel) on its output in place. */
joule_status eng_run_act(const joule_session *s, const eng_node *en, void *scratch,
                         joule_error *err);
/* Checks that every node's op is in the op table for the opset the model imports (what can be
 * checked before shapes are known). */
joule_status eng_check_ops(const joule_session *s, joule_error *err);
/* Frees what the current plan made (kernel states, folded tensors); keeps arena and scratch. */
void eng_plan_clear(joule_session *s);

#endif

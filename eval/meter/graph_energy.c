/* eval/meter/graph_energy.c: model (b) of the estimate: one inference priced from the graph alone
 * with the per-operation energies of M. Horowitz, "Computing's energy problem (and what we can do
 * about it)", ISSCC 2014, 45 nm at 0.9 V (values in joule/energy.h, in pJ): int8 add 0.03 and
 * mult 0.2, fp16 add 0.4 and mult 1.1, fp32 add 0.9 and mult 3.7, 8 KB SRAM read 10 per 64 bits,
 * DRAM read 1,300-2,600 per 64 bits.
 *
 *   compute = sum over MACs of (mult + add) at the MAC's number class
 *           + one add per output element of every other arithmetic node
 *   SRAM    = activation bytes (non-constant inputs read + outputs written, views excluded) / 8 x 10
 *   weights = read once per inference: at SRAM cost when they fit in the last-level cache, else
 *             at DRAM cost; with measured LLC misses, DRAM traffic = misses x 64 bytes instead.
 *
 * A 45 nm figure prices arithmetic and data movement, not a real machine's idle or uncore power,
 * so it is reported as an estimate beside the trials and never mixed with them. */
#include <string.h>

#include "joule/energy.h"
#include "joule/info.h"

static const double pj_mult[3] = {JOULE_PJ_INT8_MULT, JOULE_PJ_FP16_MULT, JOULE_PJ_FP32_MULT};
static const double pj_add[3] = {JOULE_PJ_INT8_ADD, JOULE_PJ_FP16_ADD, JOULE_PJ_FP32_ADD};

/* Nodes that only relabel or describe data (no arithmetic, no copy in joule's engine). */
static bool is_view(const joule_node *n)
{
    static const char *views[] = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity",
                                  "Dropout", "Constant", "Shape", "Size", "ConstantOfShape"};
    for (size_t i = 0; i < sizeof views / sizeof *views; i++)
        if (joule_node_is_op(n, views[i]))
            return true;
    return false;
}

static bool is_constant(const joule_graph *g, const joule_value *v)
{
    if (!v)
        return false;
    if (v->data)
        return true;
    const joule_node *p = joule_graph_producer(g, v);
    return p && joule_node_is_op(p, "Constant");
}

/* Elements of v with unknown dims taken as 1; 0 when even the rank is unknown. */
static uint64_t elems(const joule_value *v)
{
    if (!v || v->shape.rank < 0)
        return 0;
    uint64_t n = 1;
    for (int i = 0; i < v->shape.rank; i++)
        if (v->shape.dims[i].size >= 0)
            n *= (uint64_t)v->shape.dims[i].size;
    return n;
}

static uint64_t dim(const joule_value *v, int i)
{
    if (!v || i < 0 || i >= v->shape.rank || v->shape.dims[i].size < 0)
        return 1;
    return (uint64_t)v->shape.dims[i].size;
}

static uint64_t elems_from(const joule_value *v, int from)
{
    uint64_t n = 1;
    for (int i = from; v && i < v->shape.rank; i++)
        n *= dim(v, i);
    return n;
}

/* MACs of one node: the same rules as joule_model_info (Conv: out x prod(w dims 1..); Gemm:
 * out x K; MatMul: out x last dim of A), so the totals agree. */
static uint64_t node_macs(const joule_node *n)
{
    const joule_value *x = n->n_inputs > 0 ? n->inputs[0] : NULL;
    const joule_value *w = n->n_inputs > 1 ? n->inputs[1] : NULL;
    const joule_value *y = n->n_outputs > 0 ? n->outputs[0] : NULL;
    if (!x || !y || y->shape.rank < 0)
        return 0;
    if (joule_node_is_op(n, "QLinearConv") || joule_node_is_op(n, "QLinearMatMul"))
        w = n->n_inputs > 3 ? n->inputs[3] : NULL;
    if (!w || w->shape.rank < 0)
        return 0;
    if (joule_node_is_op(n, "Conv") || joule_node_is_op(n, "ConvInteger") ||
        joule_node_is_op(n, "QLinearConv"))
        return elems(y) * elems_from(w, 1);
    if (joule_node_is_op(n, "ConvTranspose"))
        return elems(x) * elems_from(w, 1);
    if (joule_node_is_op(n, "Gemm"))
        return elems(y) * dim(x, joule_attr_int(n, "transA", 0) ? 0 : 1);
    if (joule_node_is_op(n, "MatMul") || joule_node_is_op(n, "MatMulInteger") ||
        joule_node_is_op(n, "QLinearMatMul"))
        return elems(y) * dim(x, x->shape.rank - 1);
    return 0;
}

static joule_num_class class_of_dtype(joule_dtype t)
{
    switch (t) {
    case JOULE_I8:
    case JOULE_U8:
    case JOULE_I4:
    case JOULE_U4:
        return JOULE_NUM_INT8;
    case JOULE_F16:
    case JOULE_BF16:
        return JOULE_NUM_FP16;
    default:
        return JOULE_NUM_FP32;
    }
}

/* v is DequantizeLinear(int8 constant): a QDQ weight the engine runs as an integer kernel. */
static bool qdq_int8_weight(const joule_graph *g, const joule_value *v)
{
    const joule_node *p = v ? joule_graph_producer(g, v) : NULL;
    if (!p || !joule_node_is_op(p, "DequantizeLinear") || p->n_inputs < 1 || !p->inputs[0])
        return false;
    const joule_value *q = p->inputs[0];
    return is_constant(g, q) && class_of_dtype(q->dtype) == JOULE_NUM_INT8;
}

static joule_num_class mac_class(const joule_graph *g, const joule_node *n)
{
    if (joule_node_is_op(n, "ConvInteger") || joule_node_is_op(n, "MatMulInteger") ||
        joule_node_is_op(n, "QLinearConv") || joule_node_is_op(n, "QLinearMatMul"))
        return JOULE_NUM_INT8;
    if (n->n_inputs > 1 && qdq_int8_weight(g, n->inputs[1]))
        return JOULE_NUM_INT8;
    return class_of_dtype(n->inputs[0] ? n->inputs[0]->dtype : JOULE_F32);
}

static uint64_t value_bytes(const joule_value *v)
{
    if (!v || v->shape.rank < 0 || v->dtype == JOULE_UNDEFINED || v->dtype == JOULE_STRING)
        return 0;
    return (uint64_t)joule_dtype_bytes(v->dtype, (size_t)elems(v));
}

joule_status joule_graph_energy_estimate(joule_model *m, const joule_input_shape *shapes, size_t n,
                                         uint64_t llc_bytes, double llc_misses,
                                         joule_graph_energy *out, joule_error *err)
{
    memset(out, 0, sizeof *out);
    joule_info *info = NULL;
    joule_status st = joule_model_info(m, shapes, n, &info, err);
    if (st)
        return st;
    out->weight_bytes = info->total_bytes;
    joule_info_free(info);
    const joule_graph *g = m->graph;
    for (size_t i = 0; i < g->n_nodes; i++) {
        const joule_node *node = g->nodes[i];
        if (is_view(node))
            continue;
        uint64_t macs = node_macs(node);
        if (macs > 0)
            out->macs[mac_class(g, node)] += macs;
        else if (node->n_outputs > 0 && node->outputs[0])
            out->other_ops[class_of_dtype(node->outputs[0]->dtype)] += elems(node->outputs[0]);
        for (int k = 0; k < node->n_inputs; k++)
            if (node->inputs[k] && !is_constant(g, node->inputs[k]))
                out->activation_bytes += value_bytes(node->inputs[k]);
        for (int k = 0; k < node->n_outputs; k++)
            out->activation_bytes += value_bytes(node->outputs[k]);
    }
    for (int c = 0; c < 3; c++)
        out->compute_pj += (double)out->macs[c] * (pj_mult[c] + pj_add[c]) +
                           (double)out->other_ops[c] * pj_add[c];
    out->sram_pj = (double)out->activation_bytes / 8.0 * JOULE_PJ_SRAM_64BIT;
    if (llc_misses >= 0) {
        out->dram_from_llc_misses = true;
        out->dram_bytes = llc_misses * 64.0;
        out->sram_pj += (double)out->weight_bytes / 8.0 * JOULE_PJ_SRAM_64BIT;
    } else if (llc_bytes > 0 && out->weight_bytes <= llc_bytes) {
        out->weights_in_cache = true;
        out->sram_pj += (double)out->weight_bytes / 8.0 * JOULE_PJ_SRAM_64BIT;
    } else {
        out->dram_bytes = (double)out->weight_bytes;
    }
    out->dram_lo_pj = out->dram_bytes / 8.0 * JOULE_PJ_DRAM_64BIT_LO;
    out->dram_hi_pj = out->dram_bytes / 8.0 * JOULE_PJ_DRAM_64BIT_HI;
    out->joules_lo = 1e-12 * (out->compute_pj + out->sram_pj + out->dram_lo_pj);
    out->joules_hi = 1e-12 * (out->compute_pj + out->sram_pj + out->dram_hi_pj);
    return JOULE_OK;
}

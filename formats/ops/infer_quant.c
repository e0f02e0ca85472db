/* formats/ops/infer_quant.c: shape/dtype inference for QuantizeLinear and DequantizeLinear
 * (per-tensor, or per-axis from opset 13; the quantized dtype is the zero point's, uint8 when it
 * is omitted) and DynamicQuantizeLinear. The QLinear and Integer forms of Conv and MatMul live in
 * infer_linalg.c with their float counterparts. */
#include "formats/ops/infer_util.h"

/* Scale (input 1) and zero point (input 2) must be scalars, or 1-D along `axis` from opset 13. */
static joule_status check_scale(joule_infer_ctx *c)
{
    const joule_shape *x = ji_in_shape(c, 0);
    char sx[160], ss[160];
    for (int i = 1; i <= 2; i++) {
        const joule_shape *s = ji_in_shape(c, i);
        if (!s)
            continue;
        bool scalar = s->rank == 0 || (s->rank == 1 && ji_dim_known(s->dims[0]) &&
                                       s->dims[0].size == 1);
        if (scalar || (c->opset >= 21 && x && s->rank == x->rank)) /* 21: blocked */
            continue;
        if (s->rank != 1 || c->opset < 13)
            return ji_infer_fail(c, "%s %s must be a scalar%s", i == 1 ? "scale" : "zero point",
                                 ji_shape_str(s, ss, sizeof ss),
                                 c->opset < 13 ? "" : " or 1-D along axis");
        if (!x)
            continue;
        int axis;
        joule_status st = ji_norm_axis(c, joule_attr_int(c->node, "axis", 1), x->rank, "axis",
                                       &axis);
        if (st)
            return st;
        if (!ji_dim_compatible(s->dims[0], x->dims[axis]))
            return ji_infer_fail(c, "%s %s does not match axis %d of input %s",
                                 i == 1 ? "scale" : "zero point", ji_shape_str(s, ss, sizeof ss),
                                 axis, ji_shape_str(x, sx, sizeof sx));
    }
    return JOULE_OK;
}

joule_status ji_quantize(joule_infer_ctx *c)
{
    joule_status st = check_scale(c);
    if (st)
        return st;
    joule_dtype dt = ji_in_io(c, 2) ? ji_in_dtype(c, 2)
                                    : (joule_dtype)joule_attr_int(c->node, "output_dtype", JOULE_U8);
    if (!joule_dtype_valid((int)dt) || dt == JOULE_UNDEFINED)
        dt = JOULE_U8;
    ji_out_set(c, 0, dt, ji_in_shape(c, 0));
    return JOULE_OK;
}

joule_status ji_dequantize(joule_infer_ctx *c)
{
    joule_status st = check_scale(c);
    if (st)
        return st;
    /* float32 until 19, then the scale's type */
    joule_dtype dt = c->opset >= 19 && ji_in_dtype(c, 1) != JOULE_UNDEFINED ? ji_in_dtype(c, 1)
                                                                            : JOULE_F32;
    ji_out_set(c, 0, dt, ji_in_shape(c, 0));
    return JOULE_OK;
}

joule_status ji_dynamic_quantize(joule_infer_ctx *c)
{
    joule_shape scalar = {.rank = 0};
    ji_out_set(c, 0, JOULE_U8, ji_in_shape(c, 0));
    ji_out_set(c, 1, JOULE_F32, &scalar);
    ji_out_set(c, 2, JOULE_U8, &scalar);
    return JOULE_OK;
}

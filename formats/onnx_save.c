/* formats/onnx_save.c: joule_model -> ModelProto -> file. Every IR object that still matches the
 * protobuf it was loaded from is written back as that protobuf (unknown fields, doc strings and
 * subgraphs included); what a pass changed is encoded anew. Files are written atomically: a
 * temporary file in the target folder, fsync, then rename; on failure the target is untouched. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/onnx_internal.h"
#include "joule/onnx.h"

#define TWO_GB ((size_t)2 << 30)

/* Temporary protobuf structs live in a list of blocks freed after packing. */
typedef struct tmp_block {
    struct tmp_block *next;
    max_align_t data[];
} tmp_block;

typedef struct save_ctx {
    const joule_model *m;
    tmp_block *tmp;
    bool external;
    size_t ext_min;
    const char *data_name; /* location written into the protos */
    FILE *data;            /* open temporary data file, when external */
    uint64_t data_off;
    joule_error *err;
    bool failed;
} save_ctx;

static void *tmp_alloc(save_ctx *c, size_t size)
{
    tmp_block *b = calloc(1, sizeof *b + (size ? size : 1));
    if (!b) {
        c->failed = true;
        joule_fail(c->err, JOULE_ERR_NOMEM, "save: out of memory");
        return NULL;
    }
    b->next = c->tmp;
    c->tmp = b;
    return b->data;
}

static void tmp_free(save_ctx *c)
{
    while (c->tmp) {
        tmp_block *n = c->tmp->next;
        free(c->tmp);
        c->tmp = n;
    }
}

/* The protobuf's string if it says the same as now, else now (NULL for an absent empty string). */
static char *keep_str(char *orig, const char *now)
{
    if (!now)
        now = "";
    if (orig ? strcmp(orig, now) == 0 : *now == 0)
        return orig;
    return (char *)now;
}

static bool is_tensor_proto(const void *p)
{
    return p && ((const ProtobufCMessage *)p)->descriptor == &onnx__tensor_proto__descriptor;
}

static Onnx__StringStringEntryProto *entry(save_ctx *c, const char *key, const char *value)
{
    Onnx__StringStringEntryProto *e = tmp_alloc(c, sizeof *e);
    char *v = tmp_alloc(c, strlen(value) + 1);
    if (!e || !v)
        return NULL;
    onnx__string_string_entry_proto__init(e);
    e->key = (char *)key;
    e->value = strcpy(v, value);
    return e;
}

/* Appends t's bytes to the data file and points tp at them. */
static void write_external(save_ctx *c, const joule_tensor *t, Onnx__TensorProto *tp)
{
    static const char zeros[64];
    size_t pad = (size_t)((64 - c->data_off % 64) % 64);
    if (pad && fwrite(zeros, 1, pad, c->data) != pad)
        goto fail;
    c->data_off += pad;
    if (t->nbytes && fwrite(t->data, 1, t->nbytes, c->data) != t->nbytes)
        goto fail;
    char off[32], len[32];
    snprintf(off, sizeof off, "%llu", (unsigned long long)c->data_off);
    snprintf(len, sizeof len, "%zu", t->nbytes);
    c->data_off += t->nbytes;
    tp->external_data = tmp_alloc(c, 3 * sizeof *tp->external_data);
    if (!tp->external_data)
        return;
    tp->external_data[0] = entry(c, "location", c->data_name);
    tp->external_data[1] = entry(c, "offset", off);
    tp->external_data[2] = entry(c, "length", len);
    tp->n_external_data = 3;
    tp->has_data_location = 1;
    tp->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    return;
fail:
    c->failed = true;
    joule_fail(c->err, JOULE_ERR_IO, "save: cannot write external data: %s", strerror(errno));
}

/* TensorProto for t named name: the loaded one when unchanged, else a fresh encoding. */
static Onnx__TensorProto *tensor_proto(save_ctx *c, const joule_tensor *t, const char *name)
{
    const Onnx__TensorProto *orig = is_tensor_proto(t->origin) ? t->origin : NULL;
    bool orig_external = orig && orig->has_data_location &&
                         orig->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    bool go_external = c->external && t->dtype != JOULE_STRING && t->nbytes >= c->ext_min;
    if (orig && !orig_external && !go_external && (!name || !orig->name ? name == orig->name || (name && !*name && !orig->name) : strcmp(orig->name, name) == 0))
        return (Onnx__TensorProto *)orig;
    Onnx__TensorProto *tp = tmp_alloc(c, sizeof *tp);
    if (!tp)
        return NULL;
    if (orig) { /* keep doc_string, segment-free metadata and unknown fields; re-encode data */
        *tp = *orig;
        tp->n_float_data = tp->n_int32_data = tp->n_string_data = tp->n_int64_data = 0;
        tp->n_double_data = tp->n_uint64_data = tp->n_external_data = 0;
        tp->has_raw_data = 0;
        tp->has_data_location = 0;
        tp->name = keep_str(orig->name, name);
    } else {
        onnx__tensor_proto__init(tp);
        tp->name = (char *)(name && *name ? name : NULL);
    }
    tp->has_data_type = 1;
    tp->data_type = (int32_t)t->dtype;
    tp->n_dims = (size_t)t->rank;
    tp->dims = (int64_t *)t->dims;
    if (t->dtype == JOULE_STRING) {
        ProtobufCBinaryData *s = tmp_alloc(c, (t->count ? t->count : 1) * sizeof *s);
        if (!s)
            return NULL;
        const joule_string *src = t->data;
        for (size_t i = 0; i < t->count; i++) {
            s[i].len = src[i].len;
            s[i].data = (uint8_t *)src[i].ptr;
        }
        tp->string_data = s;
        tp->n_string_data = t->count;
    } else if (go_external) {
        write_external(c, t, tp);
    } else {
        tp->has_raw_data = 1;
        tp->raw_data.len = t->nbytes;
        tp->raw_data.data = (uint8_t *)t->data;
    }
    return tp;
}

/* A SparseTensorProto (COO: values [NNZ], int64 linear indices [NNZ], ascending) for dense t,
 * for an initializer a pass marked JOULE_VALUE_SPARSE. Elements whose bytes are all zero are left
 * out (so -0.0 is kept as a value: lossless). NULL when t's dtype has no fixed byte size; the
 * caller then writes it dense (or stops when c->failed). */
static Onnx__SparseTensorProto *sparse_proto(save_ctx *c, const joule_tensor *t, const char *name)
{
    unsigned bits = joule_dtype_info(t->dtype)->bits;
    if (t->dtype == JOULE_STRING || bits == 0 || bits % 8 || bits > 128 || t->rank < 1 || !name)
        return NULL;
    static const uint8_t zero[16];
    size_t es = bits / 8, nnz = 0;
    const uint8_t *src = t->data;
    for (size_t i = 0; i < t->count; i++)
        nnz += memcmp(src + i * es, zero, es) != 0;
    Onnx__SparseTensorProto *sp = tmp_alloc(c, sizeof *sp);
    Onnx__TensorProto *vals = tmp_alloc(c, sizeof *vals), *idx = tmp_alloc(c, sizeof *idx);
    int64_t *nnz_dim = tmp_alloc(c, sizeof *nnz_dim);
    uint8_t *vdata = tmp_alloc(c, nnz * es);
    int64_t *idata = tmp_alloc(c, nnz * sizeof *idata);
    if (!sp || !vals || !idx || !nnz_dim || !vdata || !idata)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < t->count; i++)
        if (memcmp(src + i * es, zero, es) != 0) {
            memcpy(vdata + o * es, src + i * es, es);
            idata[o++] = (int64_t)i;
        }
    *nnz_dim = (int64_t)nnz;
    onnx__tensor_proto__init(vals);
    vals->name = (char *)name;
    vals->has_data_type = 1;
    vals->data_type = (int32_t)t->dtype;
    vals->n_dims = 1;
    vals->dims = nnz_dim;
    vals->has_raw_data = 1;
    vals->raw_data.len = nnz * es;
    vals->raw_data.data = vdata;
    onnx__tensor_proto__init(idx);
    idx->has_data_type = 1;
    idx->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    idx->n_dims = 1;
    idx->dims = nnz_dim;
    idx->has_raw_data = 1;
    idx->raw_data.len = nnz * sizeof *idata;
    idx->raw_data.data = (uint8_t *)idata;
    onnx__sparse_tensor_proto__init(sp);
    sp->values = vals;
    sp->indices = idx;
    sp->n_dims = (size_t)t->rank;
    sp->dims = (int64_t *)t->dims;
    return sp;
}

static Onnx__AttributeProto *attr_proto(save_ctx *c, const joule_attr *a)
{
    if (a->origin)
        return (Onnx__AttributeProto *)a->origin;
    Onnx__AttributeProto *ap = tmp_alloc(c, sizeof *ap);
    if (!ap)
        return NULL;
    onnx__attribute_proto__init(ap);
    ap->name = (char *)a->name;
    ap->has_type = 1;
    ap->type = (Onnx__AttributeProto__AttributeType)a->type;
    switch (a->type) {
    case JOULE_ATTR_FLOAT: ap->has_f = 1; ap->f = a->f; break;
    case JOULE_ATTR_INT: ap->has_i = 1; ap->i = a->i; break;
    case JOULE_ATTR_STRING:
        ap->has_s = 1;
        ap->s.len = a->s.len;
        ap->s.data = (uint8_t *)a->s.ptr;
        break;
    case JOULE_ATTR_FLOATS: ap->n_floats = a->count; ap->floats = (float *)a->floats; break;
    case JOULE_ATTR_INTS: ap->n_ints = a->count; ap->ints = (int64_t *)a->ints; break;
    case JOULE_ATTR_STRINGS: {
        ProtobufCBinaryData *s = tmp_alloc(c, (a->count ? a->count : 1) * sizeof *s);
        if (!s)
            return NULL;
        for (size_t i = 0; i < a->count; i++) {
            s[i].len = a->strings[i].len;
            s[i].data = (uint8_t *)a->strings[i].ptr;
        }
        ap->n_strings = a->count;
        ap->strings = s;
        break;
    }
    case JOULE_ATTR_TENSOR:
        if (a->t)
            ap->t = tensor_proto(c, a->t, NULL);
        break;
    default:
        c->failed = true;
        joule_fail(c->err, JOULE_ERR_UNSUPPORTED, "save: attribute '%s' of type %d has no data",
                   a->name, (int)a->type);
        break;
    }
    return ap;
}

static Onnx__NodeProto *node_proto(save_ctx *c, const joule_node *n)
{
    const Onnx__NodeProto *orig = n->origin;
    Onnx__NodeProto *np = tmp_alloc(c, sizeof *np);
    char **in = tmp_alloc(c, (size_t)(n->n_inputs + 1) * sizeof *in);
    char **out = tmp_alloc(c, (size_t)(n->n_outputs + 1) * sizeof *out);
    Onnx__AttributeProto **attrs = tmp_alloc(c, (size_t)(n->n_attrs + 1) * sizeof *attrs);
    if (!np || !in || !out || !attrs)
        return NULL;
    if (orig)
        *np = *orig;
    else
        onnx__node_proto__init(np);
    for (int i = 0; i < n->n_inputs; i++)
        in[i] = n->inputs[i] ? (char *)n->inputs[i]->name : "";
    for (int i = 0; i < n->n_outputs; i++)
        out[i] = n->outputs[i] ? (char *)n->outputs[i]->name : "";
    for (int i = 0; i < n->n_attrs; i++)
        attrs[i] = attr_proto(c, &n->attrs[i]);
    np->n_input = (size_t)n->n_inputs;
    np->input = in;
    np->n_output = (size_t)n->n_outputs;
    np->output = out;
    np->n_attribute = (size_t)n->n_attrs;
    np->attribute = attrs;
    np->name = keep_str(orig ? orig->name : NULL, n->name);
    np->op_type = keep_str(orig ? orig->op_type : NULL, n->op_type);
    np->domain = keep_str(orig ? orig->domain : NULL, n->domain);
    return np;
}

static bool shape_equal(const joule_shape *a, const joule_shape *b)
{
    if (a->rank != b->rank)
        return false;
    for (int i = 0; i < a->rank; i++) {
        if (a->dims[i].size != b->dims[i].size)
            return false;
        const char *x = a->dims[i].sym, *y = b->dims[i].sym;
        if ((x == NULL) != (y == NULL) || (x && strcmp(x, y) != 0))
            return false;
    }
    return true;
}

/* The declaration of v in one of the loaded graph's lists, if it still describes v. */
static Onnx__ValueInfoProto *loaded_decl(Onnx__ValueInfoProto **list, size_t n, size_t pos,
                                         const joule_value *v)
{
    if (v->dtype != v->origin_dtype || !shape_equal(&v->shape, &v->origin_shape))
        return NULL;
    if (pos < n && list[pos]->name && strcmp(list[pos]->name, v->name) == 0)
        return list[pos];
    for (size_t i = 0; i < n; i++)
        if (list[i]->name && strcmp(list[i]->name, v->name) == 0)
            return list[i];
    return NULL;
}

static Onnx__ValueInfoProto *value_info_proto(save_ctx *c, const joule_value *v,
                                              Onnx__ValueInfoProto **list, size_t n, size_t pos)
{
    Onnx__ValueInfoProto *same = loaded_decl(list, n, pos, v);
    if (same)
        return same;
    Onnx__ValueInfoProto *vi = tmp_alloc(c, sizeof *vi);
    Onnx__TypeProto *tp = tmp_alloc(c, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = tmp_alloc(c, sizeof *tt);
    if (!vi || !tp || !tt)
        return NULL;
    onnx__value_info_proto__init(vi);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    vi->name = (char *)v->name;
    vi->type = tp;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    if (v->dtype != JOULE_UNDEFINED) {
        tt->has_elem_type = 1;
        tt->elem_type = (int32_t)v->dtype;
    }
    if (v->shape.rank >= 0) {
        Onnx__TensorShapeProto *sp = tmp_alloc(c, sizeof *sp);
        Onnx__TensorShapeProto__Dimension **dims =
            tmp_alloc(c, (size_t)(v->shape.rank + 1) * sizeof *dims);
        if (!sp || !dims)
            return NULL;
        onnx__tensor_shape_proto__init(sp);
        for (int i = 0; i < v->shape.rank; i++) {
            Onnx__TensorShapeProto__Dimension *d = tmp_alloc(c, sizeof *d);
            if (!d)
                return NULL;
            onnx__tensor_shape_proto__dimension__init(d);
            if (v->shape.dims[i].size >= 0) {
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
                d->dim_value = v->shape.dims[i].size;
            } else if (v->shape.dims[i].sym) {
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
                d->dim_param = (char *)v->shape.dims[i].sym;
            }
            dims[i] = d;
        }
        sp->n_dim = (size_t)v->shape.rank;
        sp->dim = dims;
        tt->shape = sp;
    }
    return vi;
}

static Onnx__ValueInfoProto **value_infos(save_ctx *c, joule_value **vals, size_t n,
                                          Onnx__ValueInfoProto **orig, size_t n_orig)
{
    Onnx__ValueInfoProto **out = tmp_alloc(c, (n + 1) * sizeof *out);
    for (size_t i = 0; out && i < n; i++)
        out[i] = value_info_proto(c, vals[i], orig, n_orig, i);
    return out;
}

/* Whether sparse initializer v is written as a Constant node's sparse_value: asked for, the
 * default-domain opset has it (11+), and v is not also a graph input (a node cannot produce an
 * input). */
static bool sparse_as_constant(const save_ctx *c, const joule_value *v)
{
    return (v->flags & JOULE_VALUE_SPARSE) && (v->flags & JOULE_VALUE_SPARSE_CONSTANT) &&
           !(v->flags & JOULE_VALUE_INPUT) && joule_model_opset(c->m, "") >= 11;
}

/* Constant node (no name) whose sparse_value is sp, producing output. */
static Onnx__NodeProto *sparse_constant_node(save_ctx *c, Onnx__SparseTensorProto *sp,
                                             const char *output)
{
    Onnx__NodeProto *np = tmp_alloc(c, sizeof *np);
    Onnx__AttributeProto *ap = tmp_alloc(c, sizeof *ap);
    Onnx__AttributeProto **aps = tmp_alloc(c, sizeof *aps);
    char **outs = tmp_alloc(c, sizeof *outs);
    if (!np || !ap || !aps || !outs)
        return NULL;
    onnx__attribute_proto__init(ap);
    ap->name = (char *)"sparse_value";
    ap->has_type = 1;
    ap->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSOR;
    ap->sparse_tensor = sp;
    aps[0] = ap;
    outs[0] = (char *)output;
    onnx__node_proto__init(np);
    np->op_type = (char *)"Constant";
    np->n_output = 1;
    np->output = outs;
    np->n_attribute = 1;
    np->attribute = aps;
    return np;
}

static Onnx__GraphProto *graph_proto(save_ctx *c, const joule_graph *g)
{
    const Onnx__GraphProto *orig = g->priv->origin;
    Onnx__GraphProto *gp = tmp_alloc(c, sizeof *gp);
    Onnx__NodeProto **nodes = tmp_alloc(c, (g->n_initializers + g->n_nodes + 1) * sizeof *nodes);
    Onnx__TensorProto **inits = tmp_alloc(c, (g->n_initializers + 1) * sizeof *inits);
    Onnx__SparseTensorProto **sparse = tmp_alloc(c, (g->n_initializers + 1) * sizeof *sparse);
    if (!gp || !nodes || !inits || !sparse)
        return NULL;
    static Onnx__ValueInfoProto *none[1];
    if (orig)
        *gp = *orig;
    else
        onnx__graph_proto__init(gp);
    gp->name = keep_str(orig ? orig->name : NULL, g->name);
    /* Constant nodes holding sparse weights come first, then the graph's nodes. A tensor whose
     * dtype has no fixed byte size (sparse_proto gives NULL) stays an initializer. */
    bool *as_const = tmp_alloc(c, (g->n_initializers + 1) * sizeof *as_const);
    if (!as_const)
        return NULL;
    size_t nn = 0, ni = 0, ns = 0;
    for (size_t i = 0; i < g->n_initializers && !c->failed; i++) {
        const joule_value *v = g->initializers[i];
        Onnx__SparseTensorProto *sp;
        as_const[i] = false;
        if (!v->data || !sparse_as_constant(c, v) || !(sp = sparse_proto(c, v->data, v->name)))
            continue;
        if (!(nodes[nn++] = sparse_constant_node(c, sp, v->name)))
            return NULL;
        as_const[i] = true;
    }
    for (size_t i = 0; i < g->n_nodes && !c->failed; i++)
        nodes[nn++] = node_proto(c, g->nodes[i]);
    gp->n_node = nn;
    gp->node = nodes;
    for (size_t i = 0; i < g->n_initializers && !c->failed; i++) {
        const joule_value *v = g->initializers[i];
        const joule_tensor *t = v->data;
        if (!t || as_const[i])
            continue;
        Onnx__SparseTensorProto *sp = NULL;
        if ((v->flags & JOULE_VALUE_SPARSE) && t->origin && !is_tensor_proto(t->origin))
            sparse[ns++] = (Onnx__SparseTensorProto *)t->origin;
        else if ((v->flags & JOULE_VALUE_SPARSE) && (sp = sparse_proto(c, t, v->name)))
            sparse[ns++] = sp; /* marked sparse by a pass, or a loaded one whose data changed */
        else if (!c->failed)
            inits[ni++] = tensor_proto(c, t, v->name);
    }
    gp->n_initializer = ni;
    gp->initializer = inits;
    gp->n_sparse_initializer = ns;
    gp->sparse_initializer = sparse;
    gp->input = value_infos(c, g->inputs, g->n_inputs, orig ? orig->input : none,
                            orig ? orig->n_input : 0);
    gp->n_input = g->n_inputs;
    gp->output = value_infos(c, g->outputs, g->n_outputs, orig ? orig->output : none,
                             orig ? orig->n_output : 0);
    gp->n_output = g->n_outputs;
    gp->value_info = value_infos(c, g->value_info, g->n_value_info,
                                 orig ? orig->value_info : none, orig ? orig->n_value_info : 0);
    gp->n_value_info = g->n_value_info;
    return c->failed ? NULL : gp;
}

static Onnx__ModelProto *model_proto(save_ctx *c)
{
    const joule_model *m = c->m;
    const Onnx__ModelProto *orig = ((joule_model_priv *)m->priv)->proto;
    Onnx__ModelProto *mp = tmp_alloc(c, sizeof *mp);
    Onnx__OperatorSetIdProto **ops = tmp_alloc(c, (m->n_opsets + 1) * sizeof *ops);
    if (!mp || !ops)
        return NULL;
    if (orig)
        *mp = *orig;
    else
        onnx__model_proto__init(mp);
    mp->has_ir_version = orig ? orig->has_ir_version || m->ir_version : 1;
    mp->ir_version = m->ir_version;
    for (size_t i = 0; i < m->n_opsets; i++) {
        const Onnx__OperatorSetIdProto *o = orig && i < orig->n_opset_import ? orig->opset_import[i] : NULL;
        if (o && o->version == m->opsets[i].version &&
            strcmp(o->domain ? o->domain : "", m->opsets[i].domain ? m->opsets[i].domain : "") == 0) {
            ops[i] = (Onnx__OperatorSetIdProto *)o;
            continue;
        }
        if (!(ops[i] = tmp_alloc(c, sizeof *ops[i])))
            return NULL;
        onnx__operator_set_id_proto__init(ops[i]);
        ops[i]->domain = (char *)(m->opsets[i].domain ? m->opsets[i].domain : "");
        ops[i]->has_version = 1;
        ops[i]->version = m->opsets[i].version;
    }
    mp->n_opset_import = m->n_opsets;
    mp->opset_import = ops;
    mp->producer_name = keep_str(orig ? orig->producer_name : NULL, m->producer_name);
    mp->producer_version = keep_str(orig ? orig->producer_version : NULL, m->producer_version);
    mp->domain = keep_str(orig ? orig->domain : NULL, m->domain);
    mp->has_model_version = orig ? orig->has_model_version || m->model_version : m->model_version != 0;
    mp->model_version = m->model_version;
    mp->graph = graph_proto(c, m->graph);
    return c->failed || !mp->graph ? NULL : mp;
}

/* ProtobufCBuffer that streams into a FILE. */
typedef struct file_buffer {
    ProtobufCBuffer base;
    FILE *f;
    bool failed;
} file_buffer;

static void file_append(ProtobufCBuffer *b, size_t len, const uint8_t *data)
{
    file_buffer *fb = (file_buffer *)b;
    if (!fb->failed && len && fwrite(data, 1, len, fb->f) != len)
        fb->failed = true;
}

/* Opens a temporary file beside final_path. */
static FILE *open_temp(const char *final_path, char *tmp, size_t size, joule_error *err)
{
    char copy[PATH_MAX];
    snprintf(copy, sizeof copy, "%s", final_path);
    char *base = basename(copy);
    char copy2[PATH_MAX];
    snprintf(copy2, sizeof copy2, "%s", final_path);
    char *dir = dirname(copy2);
    if (snprintf(tmp, size, "%s/.%s.tmp-XXXXXX", dir, base) >= (int)size) {
        joule_fail(err, JOULE_ERR_IO, "%s: path too long", final_path);
        return NULL;
    }
    int fd = mkstemp(tmp);
    if (fd < 0) {
        joule_fail(err, JOULE_ERR_IO, "%s: cannot create a temporary file in '%s': %s", final_path,
                   dir, strerror(errno));
        return NULL;
    }
    fchmod(fd, 0644);
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        close(fd);
        unlink(tmp);
        joule_fail(err, JOULE_ERR_IO, "%s: %s", final_path, strerror(errno));
    }
    return f;
}

/* Flushes, syncs and closes f; false (with errno) on any failure. */
static bool finish_file(FILE *f)
{
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    return fclose(f) == 0 && ok;
}

static size_t inline_bytes(const joule_graph *g)
{
    size_t total = 0;
    for (size_t i = 0; i < g->n_initializers; i++)
        if (g->initializers[i]->data)
            total += g->initializers[i]->data->nbytes;
    return total;
}

joule_status joule_model_save(const joule_model *m, const char *path, const joule_save_options *opt,
                              joule_error *err)
{
    joule_save_options o = opt ? *opt : (joule_save_options){0};
    char data_name[PATH_MAX], data_path[PATH_MAX], tmp_model[PATH_MAX], tmp_data[PATH_MAX];
    if (!o.external_data && inline_bytes(m->graph) >= TWO_GB - (64u << 20))
        o.external_data = true; /* protobuf cannot hold 2 GB in one message */
    save_ctx c = {.m = m, .external = o.external_data,
                  .ext_min = o.external_min_bytes ? o.external_min_bytes : 1024, .err = err};
    tmp_data[0] = 0;
    if (c.external) {
        char copy[PATH_MAX];
        snprintf(copy, sizeof copy, "%s", path);
        if (o.data_name) {
            if (o.data_name[0] == '/' || strstr(o.data_name, ".."))
                return joule_fail(err, JOULE_ERR_SECURITY,
                                  "%s: external data name '%s' must be a plain relative name", path,
                                  o.data_name);
            snprintf(data_name, sizeof data_name, "%s", o.data_name);
        } else {
            snprintf(data_name, sizeof data_name, "%s.data", basename(copy));
        }
        snprintf(copy, sizeof copy, "%s", path);
        if (snprintf(data_path, sizeof data_path, "%s/%s", dirname(copy), data_name) >=
            (int)sizeof data_path)
            return joule_fail(err, JOULE_ERR_IO, "%s: external data path too long", path);
        c.data_name = data_name;
        c.data = open_temp(data_path, tmp_data, sizeof tmp_data, err);
        if (!c.data)
            return JOULE_ERR_IO;
    }
    joule_status st = JOULE_OK;
    FILE *f = NULL;
    Onnx__ModelProto *mp = model_proto(&c);
    if (!mp) {
        st = c.failed ? JOULE_ERR_IO : joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", path);
        if (c.failed && err && !err->msg[0])
            joule_fail(err, JOULE_ERR_IO, "%s: cannot encode the model", path);
        goto out;
    }
    if (c.data && !finish_file(c.data)) {
        c.data = NULL;
        st = joule_fail(err, JOULE_ERR_IO, "%s: cannot write '%s': %s", path, data_path,
                        strerror(errno));
        goto out;
    }
    c.data = NULL;
    f = open_temp(path, tmp_model, sizeof tmp_model, err);
    if (!f) {
        st = JOULE_ERR_IO;
        goto out;
    }
    file_buffer fb = {.base = {.append = file_append}, .f = f};
    protobuf_c_message_pack_to_buffer(&mp->base, &fb.base);
    bool ok = !fb.failed;
    ok = finish_file(f) && ok;
    f = NULL;
    if (!ok) {
        st = joule_fail(err, JOULE_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
        unlink(tmp_model);
        goto out;
    }
    if (tmp_data[0] && rename(tmp_data, data_path) != 0) {
        st = joule_fail(err, JOULE_ERR_IO, "%s: cannot rename into place: %s", data_path,
                        strerror(errno));
        unlink(tmp_model);
        goto out;
    }
    tmp_data[0] = 0;
    if (rename(tmp_model, path) != 0) {
        st = joule_fail(err, JOULE_ERR_IO, "%s: cannot rename into place: %s", path, strerror(errno));
        unlink(tmp_model);
    }
out:
    if (c.data)
        fclose(c.data);
    if (tmp_data[0])
        unlink(tmp_data);
    tmp_free(&c);
    return st;
}

joule_status joule_model_serialize(const joule_model *m, void **buf, size_t *len, joule_error *err)
{
    *buf = NULL;
    *len = 0;
    save_ctx c = {.m = m, .err = err};
    Onnx__ModelProto *mp = model_proto(&c);
    if (!mp) {
        tmp_free(&c);
        return c.failed ? JOULE_ERR_IO : joule_fail(err, JOULE_ERR_NOMEM, "serialize: out of memory");
    }
    size_t n = protobuf_c_message_get_packed_size(&mp->base);
    uint8_t *out = malloc(n ? n : 1);
    if (!out) {
        tmp_free(&c);
        return joule_fail(err, JOULE_ERR_NOMEM, "serialize: cannot allocate %zu bytes", n);
    }
    protobuf_c_message_pack(&mp->base, out);
    tmp_free(&c);
    *buf = out;
    *len = n;
    return JOULE_OK;
}

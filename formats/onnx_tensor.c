/* formats/onnx_tensor.c: TensorProto -> joule_tensor. Every dtype is decoded from raw_data and
 * from the typed fields; external data is resolved under the model's folder only, mapped once per
 * file and bounds-checked; sparse initializers are densified. Also reads standalone .pb tensors. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/onnx_internal.h"

joule_status joule_map_file(const char *path, int fd, joule_model_priv *mp, const void **addr,
                            size_t *len, joule_error *err)
{
    struct stat sb;
    *addr = NULL;
    *len = 0;
    if (fstat(fd, &sb) != 0)
        return joule_fail(err, JOULE_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return joule_fail(err, JOULE_ERR_IO, "%s: not a regular file", path);
    if (sb.st_size == 0)
        return JOULE_OK;
    void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED)
        return joule_fail(err, JOULE_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
    joule_mapping *m = calloc(1, sizeof *m);
    char *pc = strdup(path);
    if (!m || !pc) {
        free(m);
        free(pc);
        munmap(p, (size_t)sb.st_size);
        return joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", path);
    }
    m->path = pc;
    m->addr = p;
    m->len = (size_t)sb.st_size;
    m->next = mp->maps;
    mp->maps = m;
    *addr = p;
    *len = m->len;
    return JOULE_OK;
}

/* Resolves an external-data location under base_dir, refusing escapes; maps it (once). */
static joule_status map_external(const joule_load_ctx *lc, const char *location, const char *what,
                                 const void **addr, size_t *len, joule_error *err)
{
    if (!lc->base_dir)
        return joule_fail(err, JOULE_ERR_SECURITY, "%s: %s: external data is not allowed here",
                          lc->label, what);
    if (!location || !*location)
        return joule_fail(err, JOULE_ERR_INVALID, "%s: %s: external data has no location",
                          lc->label, what);
    if (location[0] == '/')
        return joule_fail(err, JOULE_ERR_SECURITY,
                          "%s: %s: external data path '%s' is absolute; only paths inside the "
                          "model's folder are allowed", lc->label, what, location);
    for (const char *p = location; *p;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return joule_fail(err, JOULE_ERR_SECURITY,
                              "%s: %s: external data path '%s' leaves the model's folder",
                              lc->label, what, location);
        p += n + (slash ? 1 : 0);
    }
    char joined[PATH_MAX], real_base[PATH_MAX], real_file[PATH_MAX];
    if (snprintf(joined, sizeof joined, "%s/%s", lc->base_dir, location) >= (int)sizeof joined)
        return joule_fail(err, JOULE_ERR_INVALID, "%s: %s: external data path is too long",
                          lc->label, what);
    if (!realpath(lc->base_dir, real_base))
        return joule_fail(err, JOULE_ERR_IO, "%s: cannot resolve folder '%s': %s", lc->label,
                          lc->base_dir, strerror(errno));
    if (!realpath(joined, real_file))
        return joule_fail(err, JOULE_ERR_IO, "%s: %s: external data file '%s': %s", lc->label,
                          what, location, strerror(errno));
    size_t bl = strlen(real_base);
    if (strncmp(real_file, real_base, bl) != 0 || (real_file[bl] != '/' && bl != 1))
        return joule_fail(err, JOULE_ERR_SECURITY,
                          "%s: %s: external data file '%s' resolves outside the model's folder",
                          lc->label, what, location);
    if (lc->mp)
        for (joule_mapping *m = lc->mp->maps; m; m = m->next)
            if (m->path && strcmp(m->path, real_file) == 0) {
                *addr = m->addr;
                *len = m->len;
                return JOULE_OK;
            }
    int fd = open(real_file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return joule_fail(err, JOULE_ERR_IO, "%s: %s: cannot open external data '%s': %s",
                          lc->label, what, location, strerror(errno));
    joule_status st;
    if (lc->mp) {
        st = joule_map_file(real_file, fd, lc->mp, addr, len, err);
    } else {
        st = joule_fail(err, JOULE_ERR_SECURITY, "%s: %s: external data needs a model", lc->label,
                        what);
    }
    close(fd);
    return st;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || s[0] == '-')
        return false;
    *out = v;
    return true;
}

static joule_status external_data(const Onnx__TensorProto *tp, const joule_load_ctx *lc,
                                  const char *what, joule_tensor *t, joule_error *err)
{
    const char *location = NULL;
    uint64_t offset = 0, length = 0;
    bool has_length = false;
    for (size_t i = 0; i < tp->n_external_data; i++) {
        const Onnx__StringStringEntryProto *e = tp->external_data[i];
        if (!e->key)
            continue;
        if (strcmp(e->key, "location") == 0) {
            location = e->value;
        } else if (strcmp(e->key, "offset") == 0) {
            if (!parse_u64(e->value, &offset))
                return joule_fail(err, JOULE_ERR_INVALID, "%s: %s: bad external data offset '%s'",
                                  lc->label, what, e->value ? e->value : "");
        } else if (strcmp(e->key, "length") == 0) {
            if (!parse_u64(e->value, &length))
                return joule_fail(err, JOULE_ERR_INVALID, "%s: %s: bad external data length '%s'",
                                  lc->label, what, e->value ? e->value : "");
            has_length = true;
        }
    }
    const void *addr;
    size_t len;
    joule_status st = map_external(lc, location, what, &addr, &len, err);
    if (st)
        return st;
    if (!has_length)
        length = t->nbytes;
    if (offset > len || length > len - offset)
        return joule_fail(err, JOULE_ERR_INVALID,
                          "%s: %s: external data [%llu, +%llu) lies beyond the end of '%s' (%zu "
                          "bytes)", lc->label, what, (unsigned long long)offset,
                          (unsigned long long)length, location, len);
    if (length != t->nbytes)
        return joule_fail(err, JOULE_ERR_INVALID,
                          "%s: %s: external data holds %llu bytes but the shape needs %zu",
                          lc->label, what, (unsigned long long)length, t->nbytes);
    const char *p = (const char *)addr + offset;
    if (((uintptr_t)p & 15) == 0) {
        t->data = p;
        return JOULE_OK;
    }
    t->owned = malloc(t->nbytes ? t->nbytes : 1); /* unaligned: copy so kernels read aligned */
    if (!t->owned)
        return joule_fail(err, JOULE_ERR_NOMEM, "%s: %s: out of memory", lc->label, what);
    memcpy(t->owned, p, t->nbytes);
    t->data = t->owned;
    return JOULE_OK;
}

/* Typed-field decoding: each field is converted element by element into the tensor's layout. */
static joule_status typed_data(const Onnx__TensorProto *tp, const joule_load_ctx *lc,
                               const char *what, joule_tensor *t, joule_error *err)
{
    size_t n = t->count, have;
    joule_dtype dt = t->dtype;
    switch (dt) {
    case JOULE_F32: have = tp->n_float_data; break;
    case JOULE_C64: have = tp->n_float_data / 2; break;
    case JOULE_I64: have = tp->n_int64_data; break;
    case JOULE_F64: have = tp->n_double_data; break;
    case JOULE_C128: have = tp->n_double_data / 2; break;
    case JOULE_U32: case JOULE_U64: have = tp->n_uint64_data; break;
    case JOULE_STRING: have = tp->n_string_data; break;
    case JOULE_U4: case JOULE_I4: have = tp->n_int32_data * 2; break;
    default: have = tp->n_int32_data; break;
    }
    if (have == 0 && n == 0)
        return JOULE_OK;
    if ((dt == JOULE_U4 || dt == JOULE_I4) ? (have != n && have != n + 1) : have != n)
        return joule_fail(err, JOULE_ERR_INVALID,
                          "%s: %s: holds %zu %s values but its shape has %zu elements", lc->label,
                          what, have, joule_dtype_name(dt), n);
    void *buf = malloc(t->nbytes ? t->nbytes : 1);
    if (!buf)
        return joule_fail(err, JOULE_ERR_NOMEM, "%s: %s: out of memory", lc->label, what);
    t->owned = buf;
    t->data = buf;
    switch (dt) {
    case JOULE_F32: case JOULE_C64: memcpy(buf, tp->float_data, t->nbytes); break;
    case JOULE_I64: memcpy(buf, tp->int64_data, t->nbytes); break;
    case JOULE_F64: case JOULE_C128: memcpy(buf, tp->double_data, t->nbytes); break;
    case JOULE_U64: memcpy(buf, tp->uint64_data, t->nbytes); break;
    case JOULE_U32:
        for (size_t i = 0; i < n; i++) ((uint32_t *)buf)[i] = (uint32_t)tp->uint64_data[i];
        break;
    case JOULE_I32: memcpy(buf, tp->int32_data, t->nbytes); break;
    case JOULE_I16:
    case JOULE_U16:
    case JOULE_F16:
    case JOULE_BF16:
        for (size_t i = 0; i < n; i++) ((uint16_t *)buf)[i] = (uint16_t)tp->int32_data[i];
        break;
    case JOULE_U4:
    case JOULE_I4: /* each int32 holds one packed byte: two 4-bit values */
        for (size_t i = 0; i < t->nbytes; i++) ((uint8_t *)buf)[i] = (uint8_t)tp->int32_data[i];
        break;
    case JOULE_STRING: {
        joule_string *s = buf;
        for (size_t i = 0; i < n; i++) {
            s[i].len = tp->string_data[i].len;
            s[i].ptr = (const char *)tp->string_data[i].data;
        }
        break;
    }
    default: /* 8-bit types: int8, uint8, bool, float8 */
        for (size_t i = 0; i < n; i++) ((uint8_t *)buf)[i] = (uint8_t)tp->int32_data[i];
        break;
    }
    return JOULE_OK;
}

joule_status joule_tensor_from_proto(const Onnx__TensorProto *tp, const joule_load_ctx *lc,
                                     const char *what, joule_tensor **out, joule_error *err)
{
    *out = NULL;
    int dtype = tp->has_data_type ? tp->data_type : 0;
    if (!joule_dtype_valid(dtype) || joule_dtype_info((joule_dtype)dtype)->bits == 0)
        return joule_fail(err, JOULE_ERR_UNSUPPORTED, "%s: %s: unknown data type %d", lc->label,
                          what, dtype);
    if (tp->n_dims > JOULE_MAX_RANK)
        return joule_fail(err, JOULE_ERR_UNSUPPORTED, "%s: %s: rank %zu exceeds joule's limit %d",
                          lc->label, what, tp->n_dims, JOULE_MAX_RANK);
    size_t count;
    if (!joule_dims_count((int)tp->n_dims, tp->dims, &count) || count > SIZE_MAX / 16)
        return joule_fail(err, JOULE_ERR_INVALID, "%s: %s: negative or overflowing dimension",
                          lc->label, what);
    if (tp->segment)
        return joule_fail(err, JOULE_ERR_UNSUPPORTED, "%s: %s: segmented tensors are not supported",
                          lc->label, what);
    joule_tensor *t = calloc(1, sizeof *t);
    if (!t)
        return joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", lc->label);
    t->dtype = (joule_dtype)dtype;
    t->rank = (int)tp->n_dims;
    for (int i = 0; i < t->rank; i++)
        t->dims[i] = tp->dims[i];
    t->count = count;
    t->nbytes = joule_dtype_bytes(t->dtype, count);
    t->origin = tp;
    joule_status st = JOULE_OK;
    bool external = tp->has_data_location &&
                    tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    if (external) {
        if (t->dtype == JOULE_STRING)
            st = joule_fail(err, JOULE_ERR_INVALID, "%s: %s: string tensors cannot be external",
                            lc->label, what);
        else
            st = external_data(tp, lc, what, t, err);
    } else if (tp->has_raw_data && t->dtype != JOULE_STRING) {
        if (tp->raw_data.len != t->nbytes)
            st = joule_fail(err, JOULE_ERR_INVALID,
                            "%s: %s: raw_data holds %zu bytes but shape and %s need %zu",
                            lc->label, what, tp->raw_data.len, joule_dtype_name(t->dtype),
                            t->nbytes);
        else if (((uintptr_t)tp->raw_data.data & 15) == 0 || t->nbytes == 0)
            t->data = tp->raw_data.data;
        else if (!(t->owned = malloc(t->nbytes)))
            st = joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", lc->label);
        else
            t->data = memcpy(t->owned, tp->raw_data.data, t->nbytes);
    } else {
        st = typed_data(tp, lc, what, t, err);
    }
    if (!st && !t->data && t->count) {
        /* no data at all: a declared shape without contents */
        st = joule_fail(err, JOULE_ERR_INVALID, "%s: %s: has %zu elements but no data", lc->label,
                        what, t->count);
    }
    if (!st && !t->data) {
        t->owned = calloc(1, 1);
        t->data = t->owned;
        if (!t->owned)
            st = joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", lc->label);
    }
    if (st) {
        joule_tensor_free(t);
        return st;
    }
    *out = t;
    return JOULE_OK;
}

joule_status joule_tensor_from_sparse_proto(const Onnx__SparseTensorProto *sp,
                                            const joule_load_ctx *lc, const char *what,
                                            joule_tensor **out, joule_error *err)
{
    *out = NULL;
    if (!sp->values || !sp->indices)
        return joule_fail(err, JOULE_ERR_INVALID, "%s: %s: sparse tensor lacks values or indices",
                          lc->label, what);
    if (sp->n_dims > JOULE_MAX_RANK)
        return joule_fail(err, JOULE_ERR_UNSUPPORTED, "%s: %s: rank %zu exceeds joule's limit %d",
                          lc->label, what, sp->n_dims, JOULE_MAX_RANK);
    joule_tensor *vals = NULL, *idx = NULL, *t = NULL;
    joule_status st = joule_tensor_from_proto(sp->values, lc, what, &vals, err);
    if (!st)
        st = joule_tensor_from_proto(sp->indices, lc, what, &idx, err);
    if (!st && (idx->dtype != JOULE_I64 || vals->rank != 1))
        st = joule_fail(err, JOULE_ERR_INVALID, "%s: %s: sparse indices must be int64 and values 1-D",
                        lc->label, what);
    if (!st)
        st = joule_tensor_new(vals->dtype, (int)sp->n_dims, sp->dims, &t, err);
    if (!st) {
        size_t nnz = vals->count, esz = joule_dtype_bytes(vals->dtype, 1);
        const int64_t *ix = idx->data;
        bool linear = idx->rank == 1;
        if ((linear && idx->count != nnz) ||
            (!linear && (idx->rank != 2 || idx->dims[0] != (int64_t)nnz ||
                         idx->dims[1] != (int64_t)sp->n_dims)) || esz == 0)
            st = joule_fail(err, JOULE_ERR_INVALID, "%s: %s: sparse indices do not match values",
                            lc->label, what);
        for (size_t k = 0; k < nnz && !st; k++) {
            int64_t off = 0;
            if (linear) {
                off = ix[k];
            } else {
                for (size_t d = 0; d < sp->n_dims && !st; d++) {
                    int64_t i = ix[k * sp->n_dims + d];
                    if (i < 0 || i >= sp->dims[d])
                        st = JOULE_ERR_INVALID;
                    off = off * sp->dims[d] + i;
                }
            }
            if (st || off < 0 || (size_t)off >= t->count) {
                st = joule_fail(err, JOULE_ERR_INVALID, "%s: %s: sparse index out of range",
                                lc->label, what);
                break;
            }
            memcpy((char *)t->owned + (size_t)off * esz, (const char *)vals->data + k * esz, esz);
        }
    }
    joule_tensor_free(vals);
    joule_tensor_free(idx);
    if (st) {
        joule_tensor_free(t);
        return st;
    }
    t->origin = sp;
    *out = t;
    return JOULE_OK;
}

joule_status joule_tensor_from_pb_file(const char *path, joule_tensor **out, char **name,
                                       joule_error *err)
{
    *out = NULL;
    if (name)
        *name = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return joule_fail(err, JOULE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (joule_grow(&buf, &cap, len + 65536, 1)) {
            fclose(f);
            free(buf);
            return joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", path);
        }
        size_t r = fread(buf + len, 1, cap - len, f);
        len += r;
        if (r == 0)
            break;
    }
    fclose(f);
    Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, len, buf);
    free(buf);
    if (!tp)
        return joule_fail(err, JOULE_ERR_PARSE, "%s: not a valid TensorProto", path);
    joule_load_ctx lc = {.label = path};
    joule_tensor *t = NULL;
    joule_status st = joule_tensor_from_proto(tp, &lc, "tensor", &t, err);
    joule_tensor *copy = NULL;
    if (!st) {
        st = joule_tensor_clone(t, &copy, err);
        joule_tensor_free(t);
    }
    if (!st && name && tp->name && !(*name = strdup(tp->name)))
        st = joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", path);
    onnx__tensor_proto__free_unpacked(tp, NULL);
    if (st) {
        joule_tensor_free(copy);
        return st;
    }
    *out = copy;
    return JOULE_OK;
}

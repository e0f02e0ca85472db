/* formats/dataset_idx.c: IDX files (the MNIST family's format: images idx3, labels idx1), raw or
 * gzip'd, streamed item by item. Header: two zero bytes, a type byte (0x08 ubyte, 0x09 sbyte,
 * 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64), the number of dims, then each dim as a
 * big-endian uint32. Multi-byte elements are big-endian and swapped as they are read. Also the
 * common source helpers every reader uses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/dataset_internal.h"

/* ---- source helpers ---- */

size_t ds_elem_bytes(joule_dtype dt)
{
    switch (dt) {
    case JOULE_U8: case JOULE_I8: case JOULE_BOOL:
        return 1;
    case JOULE_U16: case JOULE_I16: case JOULE_F16: case JOULE_BF16:
        return 2;
    case JOULE_U32: case JOULE_I32: case JOULE_F32:
        return 4;
    case JOULE_U64: case JOULE_I64: case JOULE_F64:
        return 8;
    default:
        return 0;
    }
}

joule_status ds_source_new(const char *label, ds_source **out, joule_error *err)
{
    *out = NULL;
    ds_source *s = calloc(1, sizeof *s);
    size_t n = strlen(label) + 1;
    if (!s || !(s->label = malloc(n))) {
        free(s);
        return joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", label);
    }
    memcpy(s->label, label, n);
    *out = s;
    return JOULE_OK;
}

void ds_source_free(ds_source *s)
{
    if (!s)
        return;
    if (s->free)
        s->free(s);
    free(s->label);
    free(s);
}

joule_status ds_source_set_shape(ds_source *s, int rank, const int64_t *dims, joule_error *err)
{
    if (rank < 1)
        return joule_fail(err, JOULE_ERR_INVALID, "%s: a dataset array needs at least one dim "
                          "(the item count), got a scalar", s->label);
    if (dims[0] < 0)
        return joule_fail(err, JOULE_ERR_INVALID, "%s: negative item count", s->label);
    s->count = (size_t)dims[0];
    s->rank = rank - 1;
    for (int d = 1; d < rank; d++)
        s->dims[d - 1] = dims[d];
    size_t per;
    if (!joule_dims_count(s->rank, s->dims, &per) || per > SIZE_MAX / 8 ||
        (per && s->count > SIZE_MAX / 8 / per))
        return joule_fail(err, JOULE_ERR_INVALID, "%s: array shape overflows", s->label);
    s->item_elems = per;
    return JOULE_OK;
}

ds_layout_hint ds_guess_layout(const ds_source *s)
{
    if (s->rank != 3)
        return DS_LAYOUT_NONE;
    bool first = s->dims[0] <= 4, last = s->dims[2] <= 4;
    return first && !last ? DS_LAYOUT_CHW : last && !first ? DS_LAYOUT_HWC : DS_LAYOUT_NONE;
}

/* ---- IDX ---- */

typedef struct idx_impl {
    ds_stream *st;
    size_t header;   /* bytes before the first item */
    size_t done;     /* items read */
    unsigned esize;
} idx_impl;

static joule_status idx_read(ds_source *s, void *buf, size_t n, joule_error *err)
{
    idx_impl *im = s->impl;
    size_t bytes = n * s->item_elems * im->esize;
    size_t got = 0;
    joule_status st = im->st->read(im->st, buf, bytes, &got, err);
    if (st)
        return st;
    if (got != bytes) {
        size_t ibytes = s->item_elems * im->esize;
        return joule_fail(err, JOULE_ERR_PARSE, "%s: truncated: the header says %zu items, the "
                          "data ends after %zu", s->label, s->count,
                          im->done + (ibytes ? got / ibytes : 0));
    }
    im->done += n;
    if (im->esize > 1) { /* big-endian to host (little-endian) */
        unsigned char *p = buf;
        for (size_t i = 0; i < bytes; i += im->esize)
            for (unsigned a = 0, b = im->esize - 1; a < b; a++, b--) {
                unsigned char t = p[i + a];
                p[i + a] = p[i + b];
                p[i + b] = t;
            }
    }
    return JOULE_OK;
}

static joule_status idx_rewind(ds_source *s, joule_error *err)
{
    idx_impl *im = s->impl;
    joule_status st = im->st->rewind(im->st, err);
    if (st)
        return st;
    unsigned char skip[4 + 4 * 255];
    im->done = 0;
    return ds_read_exact(im->st, skip, im->header, "the IDX header", err);
}

static void idx_free(ds_source *s)
{
    idx_impl *im = s->impl;
    if (im) {
        ds_stream_close(im->st);
        free(im);
    }
}

joule_status ds_idx_open(const char *path, ds_source **out, joule_error *err)
{
    *out = NULL;
    ds_source *s = NULL;
    joule_status st = ds_source_new(path, &s, err);
    if (st)
        return st;
    idx_impl *im = calloc(1, sizeof *im);
    if (!im) {
        ds_source_free(s);
        return joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", path);
    }
    s->impl = im;
    s->read = idx_read;
    s->rewind = idx_rewind;
    s->free = idx_free;
    if ((st = ds_stream_file(path, &im->st, err)))
        goto fail;
    unsigned char magic[4];
    if ((st = ds_read_exact(im->st, magic, 4, "the IDX magic", err)))
        goto fail;
    static const struct { unsigned char code; joule_dtype dt; } types[] = {
        {0x08, JOULE_U8}, {0x09, JOULE_I8}, {0x0B, JOULE_I16},
        {0x0C, JOULE_I32}, {0x0D, JOULE_F32}, {0x0E, JOULE_F64},
    };
    s->dtype = JOULE_UNDEFINED;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (magic[2] == types[i].code)
            s->dtype = types[i].dt;
    if (magic[0] != 0 || magic[1] != 0 || s->dtype == JOULE_UNDEFINED || magic[3] == 0) {
        st = joule_fail(err, JOULE_ERR_PARSE, "%s: not an IDX file (bad magic %02x %02x %02x "
                        "%02x)", path, magic[0], magic[1], magic[2], magic[3]);
        goto fail;
    }
    int ndims = magic[3];
    if (ndims > JOULE_MAX_RANK) {
        st = joule_fail(err, JOULE_ERR_UNSUPPORTED, "%s: IDX file has %d dims (at most %d)", path,
                        ndims, JOULE_MAX_RANK);
        goto fail;
    }
    unsigned char raw[4 * JOULE_MAX_RANK];
    if ((st = ds_read_exact(im->st, raw, 4 * (size_t)ndims, "the IDX dims", err)))
        goto fail;
    int64_t dims[JOULE_MAX_RANK];
    for (int d = 0; d < ndims; d++)
        dims[d] = (int64_t)((uint32_t)raw[4 * d] << 24 | (uint32_t)raw[4 * d + 1] << 16 |
                            (uint32_t)raw[4 * d + 2] << 8 | raw[4 * d + 3]);
    if ((st = ds_source_set_shape(s, ndims, dims, err)))
        goto fail;
    im->header = 4 + 4 * (size_t)ndims;
    im->esize = (unsigned)ds_elem_bytes(s->dtype);
    uint64_t size; /* a plain file's length tells a truncated one before any batch is read */
    if (ds_plain_file_size(path, &size)) {
        uint64_t ibytes = (uint64_t)s->item_elems * im->esize;
        if (size < im->header + (uint64_t)s->count * ibytes) {
            st = joule_fail(err, JOULE_ERR_PARSE, "%s: truncated: the header says %zu items, the "
                            "file holds %llu", path, s->count,
                            (unsigned long long)(ibytes ? (size - im->header) / ibytes : 0));
            goto fail;
        }
    }
    /* a 2-D item is one grey image; 3-D IDX items are [h,w,c] by the format's convention */
    s->layout = s->rank == 3 ? DS_LAYOUT_HWC : DS_LAYOUT_NONE;
    *out = s;
    return JOULE_OK;
fail:
    ds_source_free(s);
    return st;
}

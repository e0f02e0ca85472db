/* formats/dataset_npy.c: NumPy arrays as dataset sources, streamed row by row: a .npy file (plain
 * or gzip'd) or one array of an .npz archive (stored or deflated). The header is parsed by the
 * .npy reader's own parser (formats/npy_internal.h); dim 0 counts items. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/dataset_internal.h"
#include "formats/npy_internal.h"

#define NPY_MAX_HEADER (1u << 20)

typedef struct npy_impl {
    ds_stream *st;
    size_t header; /* bytes before the data */
    size_t done;   /* items read */
} npy_impl;

static joule_status npy_read(ds_source *s, void *buf, size_t n, joule_error *err)
{
    npy_impl *im = s->impl;
    size_t ibytes = s->item_elems * ds_elem_bytes(s->dtype);
    size_t bytes = n * ibytes, got = 0;
    joule_status st = im->st->read(im->st, buf, bytes, &got, err);
    if (st)
        return st;
    if (got != bytes)
        return joule_fail(err, JOULE_ERR_PARSE, "%s: truncated: the header says %zu items, the "
                          "data ends after %zu", im->st->label, s->count,
                          im->done + (ibytes ? got / ibytes : 0));
    im->done += n;
    if (s->dtype == JOULE_BOOL) {
        unsigned char *b = buf;
        for (size_t i = 0; i < bytes; i++)
            b[i] = b[i] != 0;
    }
    return JOULE_OK;
}

static joule_status skip_bytes(ds_stream *st, size_t n, joule_error *err)
{
    unsigned char buf[4096];
    while (n) {
        size_t k = n < sizeof buf ? n : sizeof buf;
        joule_status s = ds_read_exact(st, buf, k, "the .npy header", err);
        if (s)
            return s;
        n -= k;
    }
    return JOULE_OK;
}

static joule_status npy_rewind(ds_source *s, joule_error *err)
{
    npy_impl *im = s->impl;
    joule_status st = im->st->rewind(im->st, err);
    if (st)
        return st;
    im->done = 0;
    return skip_bytes(im->st, im->header, err);
}

static void npy_free(ds_source *s)
{
    npy_impl *im = s->impl;
    if (im) {
        ds_stream_close(im->st);
        free(im);
    }
}

joule_status ds_npy_open_stream(ds_stream *stream, ds_source **out, joule_error *err)
{
    *out = NULL;
    const char *label = stream->label;
    ds_source *s = NULL;
    char *header = NULL;
    joule_status st = ds_source_new(label, &s, err);
    if (st) {
        ds_stream_close(stream);
        return st;
    }
    npy_impl *im = calloc(1, sizeof *im);
    if (!im) {
        ds_stream_close(stream);
        ds_source_free(s);
        return joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", label);
    }
    im->st = stream;
    s->impl = im;
    s->read = npy_read;
    s->rewind = npy_rewind;
    s->free = npy_free;
    unsigned char pre[12];
    size_t got = 0;
    if ((st = stream->read(stream, pre, 10, &got, err)))
        goto fail;
    if (got < 6 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        st = joule_fail(err, JOULE_ERR_PARSE, "%s: not a .npy file (bad magic)", s->label);
        goto fail;
    }
    if (got < 10) {
        st = joule_fail(err, JOULE_ERR_PARSE, "%s: truncated .npy header", s->label);
        goto fail;
    }
    size_t hlen;
    if (pre[6] == 1) {
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8;
        im->header = 10;
    } else if (pre[6] == 2 || pre[6] == 3) {
        if ((st = ds_read_exact(stream, pre + 10, 2, "the .npy header", err)))
            goto fail;
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 |
               (size_t)pre[11] << 24;
        im->header = 12;
    } else {
        st = joule_fail(err, JOULE_ERR_UNSUPPORTED, "%s: .npy format version %u is not "
                        "supported", s->label, pre[6]);
        goto fail;
    }
    if (hlen > NPY_MAX_HEADER) {
        st = joule_fail(err, JOULE_ERR_PARSE, "%s: .npy header length %zu is out of range",
                        s->label, hlen);
        goto fail;
    }
    im->header += hlen;
    header = malloc(hlen + 1);
    if (!header) {
        st = joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", s->label);
        goto fail;
    }
    if ((st = ds_read_exact(stream, header, hlen, "the .npy header", err)))
        goto fail;
    header[hlen] = 0;
    int rank = 0;
    int64_t dims[JOULE_MAX_RANK];
    if ((st = joule_npy_parse_header(header, hlen, s->label, &s->dtype, &rank, dims, err)))
        goto fail;
    if (ds_elem_bytes(s->dtype) == 0) {
        st = joule_fail(err, JOULE_ERR_UNSUPPORTED, "%s: .npy dtype %s is not supported for "
                        "datasets", s->label, joule_dtype_name(s->dtype));
        goto fail;
    }
    if ((st = ds_source_set_shape(s, rank, dims, err)))
        goto fail;
    s->layout = ds_guess_layout(s);
    free(header);
    *out = s;
    return JOULE_OK;
fail:
    free(header);
    ds_source_free(s);
    return st;
}

joule_status ds_npy_open(const char *path, ds_source **out, joule_error *err)
{
    ds_stream *st = NULL;
    joule_status s = ds_stream_file(path, &st, err);
    if (s) {
        *out = NULL;
        return s;
    }
    if ((s = ds_npy_open_stream(st, out, err)))
        return s;
    /* a plain (not gzip'd) file: its size tells a truncated array before any batch is read */
    ds_source *src = *out;
    npy_impl *im = src->impl;
    uint64_t size;
    if (ds_plain_file_size(path, &size)) {
        size_t ibytes = src->item_elems * ds_elem_bytes(src->dtype);
        uint64_t want = (uint64_t)im->header + (uint64_t)src->count * ibytes;
        if (size < want) {
            uint64_t have = size - im->header;
            s = joule_fail(err, JOULE_ERR_PARSE, "%s: truncated: the header says %zu items, the "
                           "file holds %llu", path, src->count,
                           (unsigned long long)(ibytes ? have / ibytes : 0));
            ds_source_free(src);
            *out = NULL;
            return s;
        }
    }
    return JOULE_OK;
}

joule_status ds_npz_member(const ds_zip *z, size_t i, ds_source **out, joule_error *err)
{
    ds_stream *st = NULL;
    joule_status s = ds_zip_stream(z, i, &st, err);
    if (s) {
        *out = NULL;
        return s;
    }
    return ds_npy_open_stream(st, out, err);
}

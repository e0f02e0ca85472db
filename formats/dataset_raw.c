/* formats/dataset_raw.c: raw little-endian float32 files (plain or gzip'd) whose item shape the
 * caller gives; the item count is the data length over the item size, which must divide it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/dataset_internal.h"

typedef struct raw_impl {
    ds_stream *st;
    size_t done;
} raw_impl;

static joule_status raw_read(ds_source *s, void *buf, size_t n, joule_error *err)
{
    raw_impl *im = s->impl;
    size_t ibytes = s->item_elems * 4, bytes = n * ibytes, got = 0;
    joule_status st = im->st->read(im->st, buf, bytes, &got, err);
    if (st)
        return st;
    if (got != bytes)
        return joule_fail(err, JOULE_ERR_PARSE, "%s: truncated: the data ends after %zu of %zu "
                          "items (the file changed while reading?)", s->label,
                          im->done + got / ibytes, s->count);
    im->done += n;
    return JOULE_OK;
}

static joule_status raw_rewind(ds_source *s, joule_error *err)
{
    raw_impl *im = s->impl;
    im->done = 0;
    return im->st->rewind(im->st, err);
}

static void raw_free(ds_source *s)
{
    raw_impl *im = s->impl;
    if (im) {
        ds_stream_close(im->st);
        free(im);
    }
}

joule_status ds_raw_open(const char *path, int rank, const int64_t *dims, ds_source **out,
                         joule_error *err)
{
    *out = NULL;
    if (rank < 1 || rank > JOULE_MAX_RANK - 1)
        return joule_fail(err, JOULE_ERR_INVALID, "%s: raw data needs an item shape of rank 1 to "
                          "%d", path, JOULE_MAX_RANK - 1);
    ds_source *s = NULL;
    joule_status st = ds_source_new(path, &s, err);
    if (st)
        return st;
    raw_impl *im = calloc(1, sizeof *im);
    if (!im) {
        ds_source_free(s);
        return joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", path);
    }
    s->impl = im;
    s->read = raw_read;
    s->rewind = raw_rewind;
    s->free = raw_free;
    s->dtype = JOULE_F32;
    s->rank = rank;
    for (int d = 0; d < rank; d++) {
        if (dims[d] <= 0) {
            st = joule_fail(err, JOULE_ERR_INVALID, "%s: raw item dims must be positive", path);
            goto fail;
        }
        s->dims[d] = dims[d];
    }
    if (!joule_dims_count(rank, s->dims, &s->item_elems) || s->item_elems > SIZE_MAX / 8) {
        st = joule_fail(err, JOULE_ERR_INVALID, "%s: raw item shape overflows", path);
        goto fail;
    }
    if ((st = ds_stream_file(path, &im->st, err)))
        goto fail;
    /* the length: the file's size, or for gzip'd data one pass through it */
    uint64_t size;
    if (!ds_plain_file_size(path, &size)) {
        size = 0;
        unsigned char *buf = malloc(1u << 16);
        if (!buf) {
            st = joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", path);
            goto fail;
        }
        size_t got;
        do {
            if ((st = im->st->read(im->st, buf, 1u << 16, &got, err))) {
                free(buf);
                goto fail;
            }
            size += got;
        } while (got == 1u << 16);
        free(buf);
        if ((st = im->st->rewind(im->st, err)))
            goto fail;
    }
    uint64_t ibytes = (uint64_t)s->item_elems * 4;
    if (size % ibytes != 0) {
        st = joule_fail(err, JOULE_ERR_PARSE, "%s: %llu bytes is not a whole number of float32 "
                        "items of %llu bytes (wrong --raw-shape, or a truncated file)", path,
                        (unsigned long long)size, (unsigned long long)ibytes);
        goto fail;
    }
    s->count = (size_t)(size / ibytes);
    s->layout = ds_guess_layout(s);
    *out = s;
    return JOULE_OK;
fail:
    ds_source_free(s);
    return st;
}

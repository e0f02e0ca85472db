/* formats/tensor.c: tensor allocation, copying and copy-on-write of borrowed data. */
#include <stdlib.h>
#include <string.h>

#include "joule/tensor.h"

bool joule_dims_count(int rank, const int64_t *dims, size_t *count)
{
    size_t n = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0)
            return false;
        if (dims[i] != 0 && n > SIZE_MAX / (uint64_t)dims[i])
            return false;
        n *= (size_t)dims[i];
    }
    *count = n;
    return true;
}

joule_status joule_tensor_new(joule_dtype dtype, int rank, const int64_t *dims, joule_tensor **out,
                              joule_error *err)
{
    *out = NULL;
    if (!joule_dtype_valid((int)dtype) || joule_dtype_info(dtype)->bits == 0)
        return joule_fail(err, JOULE_ERR_UNSUPPORTED, "tensor: dtype %d cannot be stored",
                          (int)dtype);
    if (rank < 0 || rank > JOULE_MAX_RANK)
        return joule_fail(err, JOULE_ERR_UNSUPPORTED, "tensor: rank %d exceeds joule's limit %d",
                          rank, JOULE_MAX_RANK);
    size_t count;
    if (!joule_dims_count(rank, dims, &count) || count > SIZE_MAX / 16)
        return joule_fail(err, JOULE_ERR_INVALID, "tensor: negative or overflowing dims");
    joule_tensor *t = calloc(1, sizeof *t);
    if (!t)
        return joule_fail(err, JOULE_ERR_NOMEM, "tensor: out of memory");
    t->dtype = dtype;
    t->rank = rank;
    if (rank)
        memcpy(t->dims, dims, (size_t)rank * sizeof *dims);
    t->count = count;
    t->nbytes = joule_dtype_bytes(dtype, count);
    t->owned = calloc(1, t->nbytes ? t->nbytes : 1);
    if (!t->owned) {
        size_t nbytes = t->nbytes;
        free(t);
        return joule_fail(err, JOULE_ERR_NOMEM, "tensor: cannot allocate %zu bytes", nbytes);
    }
    t->data = t->owned;
    *out = t;
    return JOULE_OK;
}

/* Copies string elements so that the tensor owns their bytes too. */
static bool own_strings(joule_tensor *t)
{
    joule_string *s = t->owned;
    size_t total = 0;
    for (size_t i = 0; i < t->count; i++)
        total += s[i].len;
    char *bytes = malloc(total ? total : 1);
    if (!bytes)
        return false;
    char *p = bytes;
    for (size_t i = 0; i < t->count; i++) {
        if (s[i].len)
            memcpy(p, s[i].ptr, s[i].len);
        s[i].ptr = p;
        p += s[i].len;
    }
    free(t->owned_strings);
    t->owned_strings = bytes;
    return true;
}

joule_status joule_tensor_clone(const joule_tensor *src, joule_tensor **out, joule_error *err)
{
    joule_status st = joule_tensor_new(src->dtype, src->rank, src->dims, out, err);
    if (st)
        return st;
    if (src->nbytes)
        memcpy((*out)->owned, src->data, src->nbytes);
    if (src->dtype == JOULE_STRING && !own_strings(*out)) {
        joule_tensor_free(*out);
        *out = NULL;
        return joule_fail(err, JOULE_ERR_NOMEM, "tensor: out of memory copying strings");
    }
    return JOULE_OK;
}

void *joule_tensor_mutable_data(joule_tensor *t)
{
    t->origin = NULL;
    if (t->owned)
        return t->owned;
    void *copy = malloc(t->nbytes ? t->nbytes : 1);
    if (!copy)
        return NULL;
    if (t->nbytes)
        memcpy(copy, t->data, t->nbytes);
    t->owned = copy;
    t->data = copy;
    if (t->dtype == JOULE_STRING && !own_strings(t))
        return NULL;
    return copy;
}

void joule_tensor_free(joule_tensor *t)
{
    if (!t)
        return;
    free(t->owned);
    free(t->owned_strings);
    free(t);
}

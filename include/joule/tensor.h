/* joule/tensor.h: a dense n-dimensional array with its dtype and dims. Tensors read from a model
 * borrow their bytes from the model (its mapped file or decoded protobuf); anything that changes
 * a tensor's bytes asks for joule_tensor_mutable_data(), which takes a private copy first and
 * forgets the protobuf it came from, so a later save writes the new bytes, never stale ones. */
#ifndef JOULE_TENSOR_H
#define JOULE_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "joule/dtype.h"
#include "joule/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define JOULE_MAX_RANK 8

typedef struct joule_tensor {
    joule_dtype dtype;
    int rank;
    int64_t dims[JOULE_MAX_RANK];
    size_t count;     /* number of elements (product of dims; 1 for a scalar) */
    size_t nbytes;    /* joule_dtype_bytes(dtype, count) */
    const void *data; /* count elements, little-endian; JOULE_STRING: an array of joule_string */
    /* private bookkeeping: */
    void *owned;        /* buffer this tensor frees, or NULL when data is borrowed */
    void *owned_strings;/* string bytes this tensor frees (JOULE_STRING only) */
    const void *origin; /* the TensorProto data was decoded from, reused on save while unchanged */
} joule_tensor;

/* Allocates a zero-filled tensor that owns its buffer. */
joule_status joule_tensor_new(joule_dtype dtype, int rank, const int64_t *dims, joule_tensor **out,
                              joule_error *err);
/* Deep copy (data included). */
joule_status joule_tensor_clone(const joule_tensor *t, joule_tensor **out, joule_error *err);
void joule_tensor_free(joule_tensor *t);
/* Writable data: copies borrowed bytes into an owned buffer the first time, and detaches the
 * tensor from the protobuf it was loaded from. Returns NULL only when the copy cannot be made. */
void *joule_tensor_mutable_data(joule_tensor *t);
/* Element count for dims; false on a negative dim or an overflow past SIZE_MAX. */
bool joule_dims_count(int rank, const int64_t *dims, size_t *count);

#ifdef __cplusplus
}
#endif
#endif

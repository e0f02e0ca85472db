/* joule/npy.h: reading and writing NumPy .npy files (format versions 1, 2 and 3), C order only.
 * Element types: '<f4' '<f2' '<f8' '|i1' '|u1' '<i2' '<u2' '<i4' '<u4' '<i8' '<u8' '|b1'.
 * A malformed or hostile header fails with a one-line message naming the file; writing is atomic
 * (a temporary file in the same folder, renamed over the target). */
#ifndef JOULE_NPY_H
#define JOULE_NPY_H

#include "joule/status.h"
#include "joule/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Reads path into a new tensor that owns its data. On failure *out is NULL. */
joule_status joule_npy_read(const char *path, joule_tensor **out, joule_error *err);

/* Writes t to path (version 1 header, or 2 when the header needs it). */
joule_status joule_npy_write(const char *path, const joule_tensor *t, joule_error *err);

#ifdef __cplusplus
}
#endif
#endif

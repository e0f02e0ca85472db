/* joule/status.h: the status codes every joule function returns, and the error record that carries
 * a one-line, human-readable message naming the file, node or option at fault. No global state:
 * callers own the joule_error they pass in (it may be NULL when the message is not wanted). */
#ifndef JOULE_STATUS_H
#define JOULE_STATUS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum joule_status {
    JOULE_OK = 0,
    JOULE_ERR_IO,          /* a file could not be opened, read, written or renamed */
    JOULE_ERR_PARSE,       /* the bytes are not a valid ONNX protobuf */
    JOULE_ERR_INVALID,     /* the model or an argument is malformed (bad dims, cycles, ...) */
    JOULE_ERR_UNSUPPORTED, /* valid ONNX that joule does not handle (op, dtype, rank) */
    JOULE_ERR_NOMEM,       /* an allocation failed or a size overflowed */
    JOULE_ERR_SECURITY,    /* an external-data path tries to leave the model's folder */
    JOULE_ERR_NOT_FOUND    /* a named value, node or attribute does not exist */
} joule_status;

/* One error message, filled by the function that fails. */
typedef struct joule_error {
    char msg[512];
} joule_error;

/* Short name of a status, e.g. "io" for JOULE_ERR_IO. */
const char *joule_status_name(joule_status s);

/* Formats msg into err (if err is not NULL) and returns s, so that a failing path reads
 * `return joule_fail(err, JOULE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));` */
joule_status joule_fail(joule_error *err, joule_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif
#endif

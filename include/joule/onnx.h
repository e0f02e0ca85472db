/* joule/onnx.h: reading and writing ONNX model files.
 *
 * Loading maps the file and decodes it with protobuf-c. Weights may be initializers, Constant
 * nodes or external data; external files are resolved under the model's folder only. Saving is
 * atomic (temporary file in the target folder, fsync, rename) and lossless: whatever the IR does
 * not model is written back as it was read. */
#ifndef JOULE_ONNX_H
#define JOULE_ONNX_H

#include <stdbool.h>
#include <stddef.h>

#include "joule/graph.h"
#include "joule/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Reads path. On failure *out is NULL and err names the file and the cause. */
joule_status joule_model_load(const char *path, joule_model **out, joule_error *err);

/* Decodes a model from memory. label names it in errors; base_dir is where external data is
 * looked up (NULL refuses external data). The buffer may be freed after the call. */
joule_status joule_model_load_buffer(const void *buf, size_t len, const char *label,
                                     const char *base_dir, joule_model **out, joule_error *err);

typedef struct joule_save_options {
    bool external_data;      /* write tensors to a side file (forced for models over 2 GB) */
    const char *data_name;   /* side file name, relative to the model's folder; default
                                "<model file name>.data" */
    size_t external_min_bytes; /* tensors smaller than this stay inline (default 1024) */
} joule_save_options;

/* Writes m to path atomically. opt may be NULL (defaults). On failure nothing at path changes. */
joule_status joule_model_save(const joule_model *m, const char *path, const joule_save_options *opt,
                              joule_error *err);

/* Serialises m into a malloc'd buffer (inline data only). */
joule_status joule_model_serialize(const joule_model *m, void **buf, size_t *len, joule_error *err);

#ifdef __cplusplus
}
#endif
#endif

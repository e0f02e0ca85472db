/* formats/onnx_internal.h: what the ONNX loader, saver and tensor codec share, and the .pb tensor
 * reader the conformance runner uses. Not installed. */
#ifndef JOULE_ONNX_INTERNAL_H
#define JOULE_ONNX_INTERNAL_H

#include <stddef.h>

#include "formats/graph_internal.h"
#include "joule/tensor.h"
#include "onnx.pb-c.h"

/* Where external data may be read from, and where mappings are recorded. */
typedef struct joule_load_ctx {
    const char *label;    /* file name for errors */
    const char *base_dir; /* the model's folder, or NULL to refuse external data */
    joule_model_priv *mp; /* owner of the mappings (may be NULL: data is then copied) */
} joule_load_ctx;

/* Decodes tp into a tensor. Data is borrowed from tp (raw_data) or from a mapping when possible,
 * so tp (and the mappings) must outlive the tensor unless the tensor is cloned. what names the
 * tensor in errors ("initializer 'w'"). */
joule_status joule_tensor_from_proto(const Onnx__TensorProto *tp, const joule_load_ctx *lc,
                                     const char *what, joule_tensor **out, joule_error *err);

/* Densifies a sparse_initializer. The result owns its data. */
joule_status joule_tensor_from_sparse_proto(const Onnx__SparseTensorProto *sp,
                                            const joule_load_ctx *lc, const char *what,
                                            joule_tensor **out, joule_error *err);

/* Reads one TensorProto file (test_data_set_N/input_0.pb). The tensor owns its data; *name (may
 * be NULL) receives a malloc'd copy of the tensor's name. */
joule_status joule_tensor_from_pb_file(const char *path, joule_tensor **out, char **name,
                                       joule_error *err);

/* Maps a whole file read-only; records the mapping in mp. len 0 gives addr NULL. */
joule_status joule_map_file(const char *path, int fd, joule_model_priv *mp, const void **addr,
                            size_t *len, joule_error *err);

#endif

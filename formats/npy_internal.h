/* formats/npy_internal.h: the .npy header parser, shared with the dataset readers (formats/
 * dataset_npy.c), which stream .npy arrays from plain, gzip'd and zip'd files. Not installed. */
#ifndef JOULE_NPY_INTERNAL_H
#define JOULE_NPY_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "joule/status.h"
#include "joule/tensor.h"

/* Parses the header's dict literal (text, len bytes, after the magic/version/length prefix):
 * element type, rank and dims. Errors name path. */
joule_status joule_npy_parse_header(const char *text, size_t len, const char *path,
                                    joule_dtype *dtype, int *rank, int64_t *dims,
                                    joule_error *err);

#endif

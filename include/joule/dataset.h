/* joule/dataset.h: streaming readers for evaluation and calibration data. Formats: IDX images and
 * labels (raw or .gz; Fashion-MNIST's format), NumPy .npy and .npz (stored or deflated), raw
 * float32 files with a given shape, and ONNX test_data_set folders (input_N.pb / output_N.pb).
 * Data is read in batches: a 60,000-image set never sits in memory more than once.
 *
 * The reader is chosen by content (gzip'd files are inflated as they stream): IDX magic, .npy
 * magic, a zip archive (.npz), a folder of test_data_set_N (or one with input_0.pb); raw float32
 * when raw_rank is set. .npz: data is the array "x" or "images" (else the first array that is not
 * the labels), labels "y" or "labels". test_data_set labels: output_0.pb, integer class ids, or
 * the arg-max of float scores [n,k]. Items of rank 2 ([h,w]) are one-channel images and get a
 * channel axis; rank-3 items have their channels at the small end (1 to 4, the other end larger)
 * and are transposed to the requested layout (when neither end tells, they are taken as already
 * in it). Errors are one line naming the file: bad magic, truncated data, unsupported dtype,
 * label count mismatch, empty dataset. */
#ifndef JOULE_DATASET_H
#define JOULE_DATASET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "joule/status.h"
#include "joule/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum joule_layout {
    JOULE_LAYOUT_NCHW = 0,
    JOULE_LAYOUT_NHWC = 1
} joule_layout;

typedef struct joule_dataset_options {
    const char *labels;      /* labels file (IDX or .npy); NULL: none, or found beside the data
                                (train-images-idx3 -> train-labels-idx1, "x"/"y" arrays in .npz) */
    float scale;             /* multiply raw values (0: 1/255 for uint8 data, else 1); a scale
                                of exactly 1/k for a whole k divides by k, as x / 255 does */
    int n_channels;          /* entries used in mean/std (0: none) */
    float mean[4], std[4];   /* per channel, applied after scale: (x*scale - mean) / std */
    joule_layout layout;     /* layout of the produced batches (IDX images are 1 channel) */
    size_t limit;            /* use at most this many items (0: all) */
    int raw_rank;            /* raw float32 files: the shape of ONE item */
    int64_t raw_dims[JOULE_MAX_RANK];
} joule_dataset_options;

typedef struct joule_dataset joule_dataset;

/* Opens path, choosing the reader by content and name; errors name the file and the cause. */
joule_status joule_dataset_open(const char *path, const joule_dataset_options *opt,
                                joule_dataset **out, joule_error *err);
void joule_dataset_free(joule_dataset *ds);
/* Number of items (after limit). */
size_t joule_dataset_count(const joule_dataset *ds);
/* Shape of one item as produced (e.g. [1,28,28] in NCHW). */
void joule_dataset_item_shape(const joule_dataset *ds, int *rank, int64_t *dims);
bool joule_dataset_has_labels(const joule_dataset *ds);
/* Reads up to max_batch items: *images becomes a float32 tensor [n, item shape...] and *labels
 * an int64 tensor [n] (NULL without labels); both are the caller's to free. *n is 0 at the end. */
joule_status joule_dataset_next(joule_dataset *ds, size_t max_batch, joule_tensor **images,
                                joule_tensor **labels, size_t *n, joule_error *err);
/* Starts again from the first item. */
joule_status joule_dataset_rewind(joule_dataset *ds, joule_error *err);
/* The path the dataset was opened from, and where its labels come from (NULL without labels;
 * "archive.npz:y.npy" for an array inside an archive). */
const char *joule_dataset_path(const joule_dataset *ds);
const char *joule_dataset_labels_path(const joule_dataset *ds);

/* Fashion-MNIST's 10,000 test images as Debian's dataset-fashion-mnist installs them (labels are
 * found beside them): the default evaluation set. */
#define JOULE_FASHION_MNIST_TEST "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"

#ifdef __cplusplus
}
#endif
#endif

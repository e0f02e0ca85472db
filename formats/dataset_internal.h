/* formats/dataset_internal.h: what the dataset readers share. Two layers: byte streams (a plain or
 * gzip'd file, or one member of a zip archive) and item sources (IDX, .npy, raw float32, ONNX
 * test_data_set folders) that read whole items of one element type from a stream. dataset.c puts
 * an image source and a label source together and turns raw items into float32 batches.
 * Not installed. */
#ifndef JOULE_DATASET_INTERNAL_H
#define JOULE_DATASET_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "joule/dataset.h"

/* ---- byte streams ---- */

typedef struct ds_stream ds_stream;
struct ds_stream {
    const char *label; /* file (or "archive.npz:member") for errors */
    /* Reads up to n bytes; *got < n only at the end of the data. */
    joule_status (*read)(ds_stream *s, void *buf, size_t n, size_t *got, joule_error *err);
    joule_status (*rewind)(ds_stream *s, joule_error *err);
    void (*close)(ds_stream *s);
};

/* A file read through zlib's gzread: gzip'd data is inflated, anything else passes unchanged. */
joule_status ds_stream_file(const char *path, ds_stream **out, joule_error *err);
/* Reads exactly n bytes; a short read fails with "LABEL: truncated: <what>". */
joule_status ds_read_exact(ds_stream *s, void *buf, size_t n, const char *what, joule_error *err);
void ds_stream_close(ds_stream *s);
/* True when path is a regular file that is not gzip'd; *size is its length. */
bool ds_plain_file_size(const char *path, uint64_t *size);

/* A zip archive's central directory (.npz). Members are stored or deflated. */
typedef struct ds_zip_member {
    char *name;
    unsigned method; /* 0 stored, 8 deflated */
    uint32_t crc;
    uint64_t comp_size, size, local_offset;
} ds_zip_member;

typedef struct ds_zip {
    char *path;
    uint64_t file_size;
    size_t n;
    ds_zip_member *members;
} ds_zip;

joule_status ds_zip_open(const char *path, ds_zip **out, joule_error *err);
void ds_zip_free(ds_zip *z);
/* Index of the member called name (or name + ".npy"), or SIZE_MAX. */
size_t ds_zip_find(const ds_zip *z, const char *name);
/* A stream over member i's uncompressed bytes (CRC checked at its end). */
joule_status ds_zip_stream(const ds_zip *z, size_t i, ds_stream **out, joule_error *err);

/* ---- item sources ---- */

typedef enum ds_layout_hint {
    DS_LAYOUT_NONE = 0,  /* not an image with channels (or not known) */
    DS_LAYOUT_CHW,
    DS_LAYOUT_HWC,
} ds_layout_hint;

typedef struct ds_source ds_source;
struct ds_source {
    char *label;                    /* file for errors */
    joule_dtype dtype;              /* element type of the items as read (host byte order) */
    int rank;                       /* one item's shape */
    int64_t dims[JOULE_MAX_RANK];
    ds_layout_hint layout;          /* for rank-3 items, where the channels are */
    size_t count;                   /* items */
    size_t item_elems;              /* elements per item */
    /* Reads exactly n items (count - read so far >= n); a short file fails naming it. */
    joule_status (*read)(ds_source *s, void *buf, size_t n, joule_error *err);
    joule_status (*rewind)(ds_source *s, joule_error *err);
    void (*free)(ds_source *s);
    void *impl;
};

void ds_source_free(ds_source *s);
/* Allocates a source with its label copied; the reader fills the rest. */
joule_status ds_source_new(const char *label, ds_source **out, joule_error *err);
/* Sets dims from the file's array shape: dim 0 counts items, the rest is one item. */
joule_status ds_source_set_shape(ds_source *s, int rank, const int64_t *dims, joule_error *err);

/* Where the channels of rank-3 items are: at the end that is small (at most 4) while the other
 * end is not; DS_LAYOUT_NONE when that does not decide it (the produced layout is assumed). */
ds_layout_hint ds_guess_layout(const ds_source *s);

/* IDX (MNIST family): magic 00 00 TYPE NDIMS, big-endian dims, raw or gzip'd. */
joule_status ds_idx_open(const char *path, ds_source **out, joule_error *err);
/* .npy read from a stream (takes ownership of st, also on failure). */
joule_status ds_npy_open_stream(ds_stream *st, ds_source **out, joule_error *err);
/* .npy (plain or gzip'd). */
joule_status ds_npy_open(const char *path, ds_source **out, joule_error *err);
/* Array `name` of an .npz archive (".npy" suffix optional). */
joule_status ds_npz_member(const ds_zip *z, size_t i, ds_source **out, joule_error *err);
/* Raw little-endian float32, items of the given shape. */
joule_status ds_raw_open(const char *path, int rank, const int64_t *dims, ds_source **out,
                         joule_error *err);
/* ONNX test_data_set folders: dir is one test_data_set_N folder or a folder holding several.
 * outputs false: input_0.pb tensors; true: output_0.pb as labels (integers as they are, floats
 * [n,k] by their arg-max per row). */
joule_status ds_pb_open(const char *dir, bool outputs, ds_source **out, joule_error *err);
/* True when dir holds test_data_set_N folders or input_0.pb. */
bool ds_pb_is_dataset_dir(const char *dir);

/* Bytes each element of dtype takes in a source, 0 if a dataset cannot hold it. */
size_t ds_elem_bytes(joule_dtype dt);

#endif

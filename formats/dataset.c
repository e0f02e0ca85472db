/* formats/dataset.c: the public dataset API (joule/dataset.h). Opens the right reader by content
 * (IDX, .npy, .npz, ONNX test_data_set folder, or raw float32 when an item shape is given), finds
 * the labels (given, beside the images, or inside the archive), and turns raw items into float32
 * batches: scale, per-channel mean/std, NCHW/NHWC. Only one batch of raw items is held at a time. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "formats/dataset_internal.h"

struct joule_dataset {
    char *path, *labels_path;
    ds_source *img, *lab;
    size_t count, pos;
    int rank;                       /* produced item shape */
    int64_t dims[JOULE_MAX_RANK];
    bool transpose;                 /* native CHW <-> HWC differs from the produced layout */
    int64_t nd0, nd1, nd2;          /* native rank-3 item dims when transposing */
    size_t channels, chan_inner;    /* for mean/std: channel of element i */
    bool nhwc;
    float scale;
    float divisor;                  /* scale is 1/divisor: divide, as x / 255 does (0: multiply) */
    bool norm;
    float mean[4], std[4];
    unsigned char *raw;             /* one batch of raw items */
    size_t raw_cap;
    float *tmp;                     /* one item, native order (transpose only) */
    int64_t *lab_raw;
    size_t lab_cap;
};

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static bool file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static bool dir_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* ---- choosing a reader ---- */

typedef enum ds_kind { KIND_UNKNOWN, KIND_IDX, KIND_NPY, KIND_NPZ, KIND_EMPTY } ds_kind;

/* Looks at the first bytes of path (inflated when gzip'd; a zip archive by its raw bytes). */
static joule_status sniff(const char *path, ds_kind *kind, unsigned char head[4], size_t *n_head,
                          joule_error *err)
{
    *kind = KIND_UNKNOWN;
    *n_head = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return joule_fail(err, JOULE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char raw[4];
    size_t n = fread(raw, 1, 4, f);
    fclose(f);
    if (n == 4 && raw[0] == 'P' && raw[1] == 'K' &&
        ((raw[2] == 3 && raw[3] == 4) || (raw[2] == 5 && raw[3] == 6))) {
        *kind = KIND_NPZ;
        return JOULE_OK;
    }
    ds_stream *st = NULL;
    joule_status s = ds_stream_file(path, &st, err);
    if (s)
        return s;
    unsigned char buf[6];
    size_t got = 0;
    s = st->read(st, buf, 6, &got, err);
    ds_stream_close(st);
    if (s)
        return s;
    memcpy(head, buf, got < 4 ? got : 4);
    *n_head = got < 4 ? got : 4;
    if (got == 0)
        *kind = KIND_EMPTY;
    else if (got == 6 && memcmp(buf, "\x93NUMPY", 6) == 0)
        *kind = KIND_NPY;
    else if (got >= 4 && buf[0] == 0 && buf[1] == 0 && buf[2] >= 0x08 && buf[2] <= 0x0e &&
             buf[3] >= 1)
        *kind = KIND_IDX;
    return JOULE_OK;
}

static joule_status bad_magic(const char *path, const unsigned char *head, size_t n,
                              joule_error *err)
{
    char hex[16] = "";
    size_t off = 0;
    for (size_t i = 0; i < n && off < sizeof hex; i++)
        off += (size_t)snprintf(hex + off, sizeof hex - off, "%s%02x", i ? " " : "", head[i]);
    return joule_fail(err, JOULE_ERR_PARSE, "%s: unknown data format (bad magic %s; expected IDX, "
                      ".npy, .npz or an ONNX test_data_set folder; raw float32 needs an item "
                      "shape)", path, hex);
}

/* The member of an .npz to read: the first of names present, else (fallback) the first member
 * that is not `other`. SIZE_MAX when none. */
static size_t pick_member(const ds_zip *z, const char *const *names, size_t n_names,
                          bool fallback, size_t other)
{
    for (size_t i = 0; i < n_names; i++) {
        size_t k = ds_zip_find(z, names[i]);
        if (k != SIZE_MAX)
            return k;
    }
    if (fallback)
        for (size_t i = 0; i < z->n; i++)
            if (i != other)
                return i;
    return SIZE_MAX;
}

static const char *const label_names[] = {"y", "labels", "y_test", "label"};
static const char *const image_names[] = {"x", "images", "x_test", "data"};

/* An .npz: data array, and its labels array when labels is not NULL and one is there. */
static joule_status open_npz(const char *path, bool want_data, ds_source **data,
                             ds_source **labels, char **label_name, joule_error *err)
{
    ds_zip *z = NULL;
    joule_status st = ds_zip_open(path, &z, err);
    if (st)
        return st;
    size_t li = pick_member(z, label_names, sizeof label_names / sizeof *label_names, false,
                            SIZE_MAX);
    if (want_data) {
        size_t di = pick_member(z, image_names, sizeof image_names / sizeof *image_names, true,
                                li);
        if (di == SIZE_MAX) {
            st = joule_fail(err, JOULE_ERR_INVALID, "%s: the dataset is empty (the archive has "
                            "no data array)", path);
            goto done;
        }
        if ((st = ds_npz_member(z, di, data, err)))
            goto done;
    } else if (li == SIZE_MAX) {
        st = joule_fail(err, JOULE_ERR_NOT_FOUND, "%s: no 'y' or 'labels' array", path);
        goto done;
    }
    if (labels && li != SIZE_MAX) {
        if ((st = ds_npz_member(z, li, labels, err)))
            goto done;
        size_t n = strlen(path) + strlen(z->members[li].name) + 2;
        if (label_name && (*label_name = malloc(n)))
            snprintf(*label_name, n, "%s:%s", path, z->members[li].name);
    }
done:
    ds_zip_free(z);
    return st;
}

/* Labels from an explicit path: IDX, .npy, .npz ("y"/"labels") or a test_data_set folder. */
static joule_status open_labels(const char *path, ds_source **out, char **name, joule_error *err)
{
    *out = NULL;
    if (dir_exists(path))
        return ds_pb_open(path, true, out, err);
    ds_kind kind;
    unsigned char head[4];
    size_t n_head;
    joule_status st = sniff(path, &kind, head, &n_head, err);
    if (st)
        return st;
    switch (kind) {
    case KIND_IDX:
        return ds_idx_open(path, out, err);
    case KIND_NPY:
        return ds_npy_open(path, out, err);
    case KIND_NPZ:
        return open_npz(path, false, NULL, out, name, err);
    case KIND_EMPTY:
        return joule_fail(err, JOULE_ERR_PARSE, "%s: empty labels file", path);
    default:
        return bad_magic(path, head, n_head, err);
    }
}

/* Replaces the first `from` in s by `to`; NULL when absent (or out of memory). */
static char *replace(const char *s, const char *from, const char *to)
{
    const char *p = strstr(s, from);
    if (!p)
        return NULL;
    size_t n = strlen(s) - strlen(from) + strlen(to) + 1;
    char *r = malloc(n);
    if (r)
        snprintf(r, n, "%.*s%s%s", (int)(p - s), s, to, p + strlen(from));
    return r;
}

/* A labels file beside path, by naming convention; NULL when none exists. */
static char *find_labels_beside(const char *path, ds_kind kind)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t dir_len = (size_t)(base - path);
    char *cands[8] = {0};
    size_t n = 0;
    if (kind == KIND_IDX) {
        /* Fashion-MNIST / MNIST: t10k-images-idx3-ubyte[.gz] -> t10k-labels-idx1-ubyte[.gz] */
        cands[n++] = replace(path, "images-idx3", "labels-idx1");
        cands[n++] = replace(path, "images.idx3", "labels.idx1");
        char *gz = replace(path, "images-idx3-ubyte.gz", "labels-idx1-ubyte");
        if (gz)
            cands[n++] = gz;
    } else if (kind == KIND_NPY) {
        size_t len = strlen(path);
        size_t stem = len;
        if (len > 7 && strcmp(path + len - 7, ".npy.gz") == 0)
            stem = len - 7;
        else if (len > 4 && strcmp(path + len - 4, ".npy") == 0)
            stem = len - 4;
        char *a = malloc(stem + 16);
        if (a) {
            snprintf(a, stem + 16, "%.*s_labels.npy", (int)stem, path);
            cands[n++] = a;
        }
        if (strstr(base, "images"))
            cands[n++] = replace(path, "images", "labels");
        if (base[0] == 'x' || base[0] == 'X') {
            char *y = dup_str(path);
            if (y) {
                y[dir_len] = base[0] == 'x' ? 'y' : 'Y';
                cands[n++] = y;
            }
        }
    }
    char *found = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!found && cands[i] && strcmp(cands[i], path) != 0 && file_exists(cands[i]))
            found = cands[i];
        else
            free(cands[i]);
    }
    return found;
}

/* ---- shapes and preprocessing ---- */

static joule_status setup(joule_dataset *ds, const joule_dataset_options *opt, joule_error *err)
{
    ds_source *s = ds->img;
    if (s->count == 0)
        return joule_fail(err, JOULE_ERR_INVALID, "%s: the dataset is empty (0 items)", ds->path);
    if (s->item_elems == 0)
        return joule_fail(err, JOULE_ERR_INVALID, "%s: items have no elements", ds->path);
    ds->count = opt->limit && opt->limit < s->count ? opt->limit : s->count;
    ds->nhwc = opt->layout == JOULE_LAYOUT_NHWC;
    if (opt->layout != JOULE_LAYOUT_NCHW && opt->layout != JOULE_LAYOUT_NHWC)
        return joule_fail(err, JOULE_ERR_INVALID, "%s: unknown layout %d", ds->path,
                          (int)opt->layout);
    ds->channels = 1;
    ds->chan_inner = 1;
    if (s->rank == 2) { /* one grey image [h,w] */
        ds->rank = 3;
        int64_t h = s->dims[0], w = s->dims[1];
        if (ds->nhwc) {
            ds->dims[0] = h, ds->dims[1] = w, ds->dims[2] = 1;
        } else {
            ds->dims[0] = 1, ds->dims[1] = h, ds->dims[2] = w;
        }
    } else if (s->rank == 3) {
        ds_layout_hint want = ds->nhwc ? DS_LAYOUT_HWC : DS_LAYOUT_CHW;
        ds_layout_hint have = s->layout == DS_LAYOUT_NONE ? want : s->layout;
        ds->rank = 3;
        ds->nd0 = s->dims[0], ds->nd1 = s->dims[1], ds->nd2 = s->dims[2];
        ds->transpose = have != want;
        if (!ds->transpose) {
            memcpy(ds->dims, s->dims, 3 * sizeof *ds->dims);
        } else if (have == DS_LAYOUT_HWC) { /* [h,w,c] -> [c,h,w] */
            ds->dims[0] = s->dims[2], ds->dims[1] = s->dims[0], ds->dims[2] = s->dims[1];
        } else { /* [c,h,w] -> [h,w,c] */
            ds->dims[0] = s->dims[1], ds->dims[1] = s->dims[2], ds->dims[2] = s->dims[0];
        }
        ds->channels = (size_t)(ds->nhwc ? ds->dims[2] : ds->dims[0]);
        ds->chan_inner = ds->nhwc ? 1 : (size_t)(ds->dims[1] * ds->dims[2]);
    } else {
        ds->rank = s->rank;
        memcpy(ds->dims, s->dims, (size_t)s->rank * sizeof *ds->dims);
    }
    if (opt->n_channels < 0 || opt->n_channels > 4)
        return joule_fail(err, JOULE_ERR_INVALID, "%s: mean/std take 1 to 4 channels, got %d",
                          ds->path, opt->n_channels);
    if (opt->n_channels > 1 && (size_t)opt->n_channels != ds->channels)
        return joule_fail(err, JOULE_ERR_INVALID, "%s: mean/std have %d entries but items have "
                          "%zu channel%s", ds->path, opt->n_channels, ds->channels,
                          ds->channels == 1 ? "" : "s");
    if (opt->n_channels > 0 && ds->channels > 4)
        return joule_fail(err, JOULE_ERR_UNSUPPORTED, "%s: mean/std for %zu channels (at most 4)",
                          ds->path, ds->channels);
    ds->norm = opt->n_channels > 0;
    for (size_t c = 0; ds->norm && c < ds->channels; c++) {
        int k = opt->n_channels == 1 ? 0 : (int)c;
        if (!(opt->std[k] != 0) || opt->std[k] != opt->std[k])
            return joule_fail(err, JOULE_ERR_INVALID, "%s: std of channel %zu must be non-zero",
                              ds->path, c);
        ds->mean[c] = opt->mean[k];
        ds->std[c] = opt->std[k];
    }
    ds->scale = opt->scale != 0 ? opt->scale : s->dtype == JOULE_U8 ? 1.0f / 255.0f : 1.0f;
    /* a scale that is 1/k for a whole k divides by k, so that results are bit-identical with the
     * usual x / 255.0 preprocessing (x * (1/255.0f) differs from it in the last bit) */
    double inv = 1.0 / (double)ds->scale, k = inv < 1e9 ? (double)(long long)(inv + 0.5) : 0;
    if (k >= 2 && (float)(1.0 / k) == ds->scale)
        ds->divisor = (float)k;
    if (ds->transpose && !(ds->tmp = malloc(s->item_elems * sizeof *ds->tmp)))
        return joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", ds->path);
    return JOULE_OK;
}

static joule_status check_labels(joule_dataset *ds, joule_error *err)
{
    ds_source *l = ds->lab;
    const joule_dtype_traits *tr = joule_dtype_info(l->dtype);
    if (!tr->is_integer)
        return joule_fail(err, JOULE_ERR_UNSUPPORTED, "%s: labels must be integers, got %s",
                          l->label, joule_dtype_name(l->dtype));
    if (l->item_elems != 1)
        return joule_fail(err, JOULE_ERR_INVALID, "%s: labels must be one number per item, got "
                          "%zu", l->label, l->item_elems);
    if (l->count != ds->img->count)
        return joule_fail(err, JOULE_ERR_INVALID, "%s: %zu labels for %zu items in %s", l->label,
                          l->count, ds->img->count, ds->path);
    return JOULE_OK;
}

joule_status joule_dataset_open(const char *path, const joule_dataset_options *opt,
                                joule_dataset **out, joule_error *err)
{
    if (!out)
        return joule_fail(err, JOULE_ERR_INVALID, "dataset: no place for the result");
    *out = NULL;
    if (!path || !*path)
        return joule_fail(err, JOULE_ERR_INVALID, "dataset: no path");
    joule_dataset_options defaults = {0};
    if (!opt)
        opt = &defaults;
    joule_dataset *ds = calloc(1, sizeof *ds);
    if (!ds || !(ds->path = dup_str(path))) {
        free(ds);
        return joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", path);
    }
    joule_status st = JOULE_OK;
    ds_kind kind = KIND_UNKNOWN;
    bool labels_inside = false; /* found by the reader (npz, test_data_set) */
    if (dir_exists(path)) {
        if (!ds_pb_is_dataset_dir(path)) {
            st = joule_fail(err, JOULE_ERR_INVALID, "%s: a folder, but no test_data_set_N "
                            "folders or input_0.pb in it", path);
            goto fail;
        }
        if ((st = ds_pb_open(path, false, &ds->img, err)))
            goto fail;
        if (!opt->labels) {
            joule_error lerr = {{0}};
            st = ds_pb_open(path, true, &ds->lab, &lerr);
            if (st == JOULE_ERR_NOT_FOUND || st == JOULE_ERR_UNSUPPORTED) {
                st = JOULE_OK; /* no output_0.pb, or reference outputs that are not labels */
            } else if (st) {
                *err = lerr;
                goto fail;
            } else {
                labels_inside = true;
                ds->labels_path = dup_str(path);
            }
        }
    } else if (opt->raw_rank > 0) {
        if ((st = ds_raw_open(path, opt->raw_rank, opt->raw_dims, &ds->img, err)))
            goto fail;
    } else {
        unsigned char head[4];
        size_t n_head;
        if ((st = sniff(path, &kind, head, &n_head, err)))
            goto fail;
        switch (kind) {
        case KIND_IDX:
            st = ds_idx_open(path, &ds->img, err);
            break;
        case KIND_NPY:
            st = ds_npy_open(path, &ds->img, err);
            break;
        case KIND_NPZ:
            st = open_npz(path, true, &ds->img, opt->labels ? NULL : &ds->lab, &ds->labels_path,
                          err);
            labels_inside = ds->lab != NULL;
            break;
        case KIND_EMPTY:
            st = joule_fail(err, JOULE_ERR_INVALID, "%s: the dataset is empty (empty file)",
                            path);
            break;
        default:
            st = bad_magic(path, head, n_head, err);
        }
        if (st)
            goto fail;
    }
    if (ds->img->rank >= JOULE_MAX_RANK) {
        st = joule_fail(err, JOULE_ERR_UNSUPPORTED, "%s: items of rank %d leave no room for the "
                        "batch dim", path, ds->img->rank);
        goto fail;
    }
    if (opt->labels) {
        if ((st = open_labels(opt->labels, &ds->lab, &ds->labels_path, err)))
            goto fail;
        if (!ds->labels_path && !(ds->labels_path = dup_str(opt->labels))) {
            st = joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", path);
            goto fail;
        }
    } else if (!labels_inside && (kind == KIND_IDX || kind == KIND_NPY)) {
        char *beside = find_labels_beside(path, kind);
        if (beside) {
            ds->labels_path = beside;
            if ((st = open_labels(beside, &ds->lab, NULL, err)))
                goto fail;
        }
    }
    if ((st = setup(ds, opt, err)))
        goto fail;
    if (ds->lab && (st = check_labels(ds, err)))
        goto fail;
    *out = ds;
    return JOULE_OK;
fail:
    joule_dataset_free(ds);
    return st;
}

void joule_dataset_free(joule_dataset *ds)
{
    if (!ds)
        return;
    ds_source_free(ds->img);
    ds_source_free(ds->lab);
    free(ds->raw);
    free(ds->tmp);
    free(ds->lab_raw);
    free(ds->labels_path);
    free(ds->path);
    free(ds);
}

size_t joule_dataset_count(const joule_dataset *ds)
{
    return ds ? ds->count : 0;
}

void joule_dataset_item_shape(const joule_dataset *ds, int *rank, int64_t *dims)
{
    *rank = ds->rank;
    memcpy(dims, ds->dims, (size_t)ds->rank * sizeof *dims);
}

bool joule_dataset_has_labels(const joule_dataset *ds)
{
    return ds && ds->lab;
}

const char *joule_dataset_path(const joule_dataset *ds)
{
    return ds ? ds->path : NULL;
}

const char *joule_dataset_labels_path(const joule_dataset *ds)
{
    return ds && ds->lab ? ds->labels_path : NULL;
}

/* Raw elements of src (dtype dt) to float32 divided by divisor, n elements. */
static void to_float_div(joule_dtype dt, const void *src, size_t n, float divisor, float *out)
{
    if (dt == JOULE_U8) {
        const uint8_t *p = src;
        for (size_t i = 0; i < n; i++)
            out[i] = (float)p[i] / divisor;
    } else {
        float (*conv)(const void *, size_t) = joule_dtype_info(dt)->to_f32;
        for (size_t i = 0; i < n; i++)
            out[i] = conv(src, i) / divisor;
    }
}

/* Raw elements of src (dtype dt) to float32 times scale, n elements. */
static void to_float_mul(joule_dtype dt, const void *src, size_t n, float scale, float *out)
{
    if (dt == JOULE_U8) {
        const uint8_t *p = src;
        for (size_t i = 0; i < n; i++)
            out[i] = (float)p[i] * scale;
    } else if (dt == JOULE_F32) {
        const float *p = src;
        if (scale == 1.0f)
            memcpy(out, p, n * sizeof *out);
        else
            for (size_t i = 0; i < n; i++)
                out[i] = p[i] * scale;
    } else {
        float (*conv)(const void *, size_t) = joule_dtype_info(dt)->to_f32;
        for (size_t i = 0; i < n; i++)
            out[i] = conv(src, i) * scale;
    }
}

static void to_float(const joule_dataset *ds, const void *src, size_t n, float *out)
{
    if (ds->divisor != 0)
        to_float_div(ds->img->dtype, src, n, ds->divisor, out);
    else
        to_float_mul(ds->img->dtype, src, n, ds->scale, out);
}

/* One item: raw (native order) to the produced layout with mean/std applied. */
static void produce_item(joule_dataset *ds, const void *raw, float *out)
{
    size_t n = ds->img->item_elems;
    if (!ds->transpose) {
        to_float(ds, raw, n, out);
    } else {
        to_float(ds, raw, n, ds->tmp);
        size_t a = (size_t)ds->nd0, b = (size_t)ds->nd1, c = (size_t)ds->nd2;
        /* native [a,b,c] -> produced [c,a,b] (HWC->CHW) or [b,c,a] (CHW->HWC) */
        if (!ds->nhwc) {
            for (size_t i = 0; i < a; i++)
                for (size_t j = 0; j < b; j++)
                    for (size_t k = 0; k < c; k++)
                        out[(k * a + i) * b + j] = ds->tmp[(i * b + j) * c + k];
        } else {
            for (size_t i = 0; i < a; i++)
                for (size_t j = 0; j < b; j++)
                    for (size_t k = 0; k < c; k++)
                        out[(j * c + k) * a + i] = ds->tmp[(i * b + j) * c + k];
        }
    }
    if (!ds->norm)
        return;
    if (ds->channels == 1) {
        for (size_t i = 0; i < n; i++)
            out[i] = (out[i] - ds->mean[0]) / ds->std[0];
    } else if (ds->nhwc) {
        for (size_t i = 0; i < n; i++) {
            size_t ch = i % ds->channels;
            out[i] = (out[i] - ds->mean[ch]) / ds->std[ch];
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            size_t ch = i / ds->chan_inner;
            out[i] = (out[i] - ds->mean[ch]) / ds->std[ch];
        }
    }
}

/* Integer element i of a label buffer as int64. */
static int64_t label_at(joule_dtype dt, const void *p, size_t i)
{
    switch (dt) {
    case JOULE_U8: return ((const uint8_t *)p)[i];
    case JOULE_I8: return ((const int8_t *)p)[i];
    case JOULE_U16: return ((const uint16_t *)p)[i];
    case JOULE_I16: return ((const int16_t *)p)[i];
    case JOULE_U32: return ((const uint32_t *)p)[i];
    case JOULE_I32: return ((const int32_t *)p)[i];
    case JOULE_U64: {
        uint64_t v = ((const uint64_t *)p)[i];
        return v > INT64_MAX ? -1 : (int64_t)v;
    }
    default: return ((const int64_t *)p)[i];
    }
}

joule_status joule_dataset_next(joule_dataset *ds, size_t max_batch, joule_tensor **images,
                                joule_tensor **labels, size_t *n, joule_error *err)
{
    if (!ds || !images || !n)
        return joule_fail(err, JOULE_ERR_INVALID, "dataset: missing argument");
    *images = NULL;
    if (labels)
        *labels = NULL;
    *n = 0;
    if (max_batch == 0)
        return joule_fail(err, JOULE_ERR_INVALID, "%s: batch size must be positive", ds->path);
    size_t k = ds->count - ds->pos;
    if (k > max_batch)
        k = max_batch;
    if (k == 0)
        return JOULE_OK;
    ds_source *s = ds->img;
    size_t ibytes = s->item_elems * ds_elem_bytes(s->dtype);
    if (k > SIZE_MAX / ibytes)
        return joule_fail(err, JOULE_ERR_NOMEM, "%s: batch too large", ds->path);
    if (k * ibytes > ds->raw_cap) {
        unsigned char *r = realloc(ds->raw, k * ibytes);
        if (!r)
            return joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory for a batch", ds->path);
        ds->raw = r;
        ds->raw_cap = k * ibytes;
    }
    int64_t dims[JOULE_MAX_RANK];
    dims[0] = (int64_t)k;
    memcpy(dims + 1, ds->dims, (size_t)ds->rank * sizeof *dims);
    joule_tensor *img = NULL, *lab = NULL;
    joule_status st = s->read(s, ds->raw, k, err);
    if (!st)
        st = joule_tensor_new(JOULE_F32, ds->rank + 1, dims, &img, err);
    if (!st) {
        float *out = joule_tensor_mutable_data(img);
        for (size_t i = 0; i < k; i++)
            produce_item(ds, ds->raw + i * ibytes, out + i * s->item_elems);
    }
    if (!st && ds->lab) {
        ds_source *l = ds->lab;
        if (k > ds->lab_cap) {
            int64_t *r = realloc(ds->lab_raw, k * sizeof *r);
            if (!r) {
                st = joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", l->label);
                goto done;
            }
            ds->lab_raw = r;
            ds->lab_cap = k;
        }
        if ((st = l->read(l, ds->lab_raw, k, err)))
            goto done;
        int64_t kd = (int64_t)k;
        if ((st = joule_tensor_new(JOULE_I64, 1, &kd, &lab, err)))
            goto done;
        int64_t *lv = joule_tensor_mutable_data(lab);
        for (size_t i = 0; i < k; i++) {
            lv[i] = label_at(l->dtype, ds->lab_raw, i);
            if (lv[i] < 0) {
                st = joule_fail(err, JOULE_ERR_INVALID, "%s: label %lld of item %zu is negative",
                                l->label, (long long)lv[i], ds->pos + i);
                goto done;
            }
        }
    }
done:
    if (st) {
        joule_tensor_free(img);
        joule_tensor_free(lab);
        return st;
    }
    ds->pos += k;
    *images = img;
    if (labels)
        *labels = lab;
    else
        joule_tensor_free(lab);
    *n = k;
    return JOULE_OK;
}

joule_status joule_dataset_rewind(joule_dataset *ds, joule_error *err)
{
    if (!ds)
        return joule_fail(err, JOULE_ERR_INVALID, "dataset: missing argument");
    joule_status st = ds->img->rewind(ds->img, err);
    if (!st && ds->lab)
        st = ds->lab->rewind(ds->lab, err);
    if (!st)
        ds->pos = 0;
    return st;
}

/* formats/dataset_pb.c: ONNX backend-test folders as datasets. A folder is one test_data_set_N
 * (input_0.pb, output_0.pb) or holds several, taken in numeric order. Dim 0 of each tensor counts
 * items; the sets are read one .pb at a time. As labels, output_0.pb gives integer class ids as
 * they are, or for float outputs [n,k] the arg-max of each row (the reference model's top-1). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "formats/dataset_internal.h"
#include "formats/onnx_internal.h"

typedef struct pb_impl {
    size_t n_files;
    char **files;
    size_t *counts;
    bool outputs;
    size_t cur;            /* file of the next item */
    size_t off;            /* items of it already read */
    joule_tensor *t;       /* files[cur], loaded */
} pb_impl;

static bool is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static bool is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* N of a "test_data_set_N" name, or -1. */
static long set_number(const char *name)
{
    static const char prefix[] = "test_data_set_";
    if (strncmp(name, prefix, sizeof prefix - 1) != 0)
        return -1;
    const char *p = name + sizeof prefix - 1;
    if (!*p)
        return -1;
    long n = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9' || n > 100000000)
            return -1;
        n = n * 10 + (*p - '0');
    }
    return n;
}

bool ds_pb_is_dataset_dir(const char *dir)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s/input_0.pb", dir);
    if (is_file(buf))
        return true;
    DIR *d = opendir(dir);
    if (!d)
        return false;
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d)))
        found = set_number(e->d_name) >= 0;
    closedir(d);
    return found;
}

typedef struct set_entry {
    long n;
    char *path;
} set_entry;

static int cmp_sets(const void *a, const void *b)
{
    long x = ((const set_entry *)a)->n, y = ((const set_entry *)b)->n;
    return (x > y) - (x < y);
}

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s/%s", a, b);
    return s;
}

/* The set folders under dir, sorted by N (or dir itself when it holds input_0.pb). */
static joule_status list_sets(const char *dir, set_entry **out, size_t *n_out, joule_error *err)
{
    *out = NULL;
    *n_out = 0;
    char probe[4096];
    snprintf(probe, sizeof probe, "%s/input_0.pb", dir);
    if (is_file(probe)) {
        set_entry *e = calloc(1, sizeof *e);
        size_t len = strlen(dir) + 1;
        if (!e || !(e->path = malloc(len))) {
            free(e);
            return joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", dir);
        }
        memcpy(e->path, dir, len);
        *out = e;
        *n_out = 1;
        return JOULE_OK;
    }
    DIR *d = opendir(dir);
    if (!d)
        return joule_fail(err, JOULE_ERR_IO, "%s: cannot open: %s", dir, strerror(errno));
    set_entry *v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    joule_status st = JOULE_OK;
    while ((e = readdir(d))) {
        long num = set_number(e->d_name);
        if (num < 0)
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 8;
            set_entry *nv = realloc(v, nc * sizeof *nv);
            if (!nv) {
                st = joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", dir);
                break;
            }
            v = nv;
            cap = nc;
        }
        v[n].n = num;
        if (!(v[n].path = join(dir, e->d_name))) {
            st = joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", dir);
            break;
        }
        n++;
    }
    closedir(d);
    if (st) {
        for (size_t i = 0; i < n; i++)
            free(v[i].path);
        free(v);
        return st;
    }
    if (n)
        qsort(v, n, sizeof *v, cmp_sets);
    *out = v;
    *n_out = n;
    return JOULE_OK;
}

/* Integer element i of t as int64 (t is an integer type). */
static int64_t int_at(const joule_tensor *t, size_t i)
{
    const void *p = t->data;
    switch (t->dtype) {
    case JOULE_U8: return ((const uint8_t *)p)[i];
    case JOULE_I8: return ((const int8_t *)p)[i];
    case JOULE_U16: return ((const uint16_t *)p)[i];
    case JOULE_I16: return ((const int16_t *)p)[i];
    case JOULE_U32: return ((const uint32_t *)p)[i];
    case JOULE_I32: return ((const int32_t *)p)[i];
    case JOULE_U64: return (int64_t)((const uint64_t *)p)[i];
    default: return ((const int64_t *)p)[i];
    }
}

/* Checks file's tensor and gives its item count; the first file sets s's dtype and item shape. */
static joule_status check_tensor(ds_source *s, const char *file, const joule_tensor *t,
                                 bool first, bool outputs, size_t *count, joule_error *err)
{
    if (t->rank < 1)
        return joule_fail(err, JOULE_ERR_INVALID, "%s: a scalar tensor has no item dim", file);
    *count = (size_t)t->dims[0];
    const joule_dtype_traits *tr = joule_dtype_info(t->dtype);
    if (outputs) {
        bool ok = (tr->is_integer && (t->rank == 1 || (t->rank == 2 && t->dims[1] == 1))) ||
                  (tr->is_float && tr->to_f32 && t->rank == 2 && t->dims[1] > 0);
        if (!ok)
            return joule_fail(err, JOULE_ERR_UNSUPPORTED, "%s: labels must be integer [n] or "
                              "float scores [n,k], got %s of rank %d", file,
                              joule_dtype_name(t->dtype), t->rank);
        if (first) {
            s->dtype = JOULE_I64;
            s->rank = 0;
            s->item_elems = 1;
        }
        return JOULE_OK;
    }
    if (ds_elem_bytes(t->dtype) == 0)
        return joule_fail(err, JOULE_ERR_UNSUPPORTED, "%s: %s tensors cannot be dataset items",
                          file, joule_dtype_name(t->dtype));
    if (first) {
        s->dtype = t->dtype;
        s->rank = t->rank - 1;
        for (int d = 1; d < t->rank; d++)
            s->dims[d - 1] = t->dims[d];
        s->item_elems = t->count / (*count ? *count : 1);
        if (!*count)
            joule_dims_count(s->rank, s->dims, &s->item_elems);
        return JOULE_OK;
    }
    bool same = t->dtype == s->dtype && t->rank - 1 == s->rank;
    for (int d = 1; same && d < t->rank; d++)
        same = t->dims[d] == s->dims[d - 1];
    if (!same)
        return joule_fail(err, JOULE_ERR_INVALID, "%s: items differ in type or shape from the "
                          "first test_data_set's", file);
    return JOULE_OK;
}

static joule_status pb_load(ds_source *s, pb_impl *im, joule_error *err)
{
    joule_tensor_free(im->t);
    im->t = NULL;
    joule_status st = joule_tensor_from_pb_file(im->files[im->cur], &im->t, NULL, err);
    if (st)
        return st;
    size_t count;
    if ((st = check_tensor(s, im->files[im->cur], im->t, false, im->outputs, &count, err)))
        return st;
    if (count != im->counts[im->cur])
        return joule_fail(err, JOULE_ERR_INVALID, "%s: changed while reading", im->files[im->cur]);
    return JOULE_OK;
}

static joule_status pb_read(ds_source *s, void *buf, size_t n, joule_error *err)
{
    pb_impl *im = s->impl;
    unsigned char *out = buf;
    size_t esize = ds_elem_bytes(s->dtype), ibytes = s->item_elems * esize;
    while (n > 0) {
        if (im->cur >= im->n_files)
            return joule_fail(err, JOULE_ERR_INVALID, "%s: read past the last test_data_set",
                              s->label);
        if (im->off == im->counts[im->cur]) {
            im->cur++;
            im->off = 0;
            joule_tensor_free(im->t);
            im->t = NULL;
            continue;
        }
        if (!im->t) {
            joule_status st = pb_load(s, im, err);
            if (st)
                return st;
        }
        size_t k = im->counts[im->cur] - im->off;
        if (k > n)
            k = n;
        const joule_tensor *t = im->t;
        if (!im->outputs) {
            memcpy(out, (const unsigned char *)t->data + im->off * ibytes, k * ibytes);
        } else if (joule_dtype_info(t->dtype)->is_integer) {
            for (size_t i = 0; i < k; i++) {
                int64_t v = int_at(t, im->off + i);
                memcpy(out + i * 8, &v, 8);
            }
        } else {
            size_t cols = (size_t)t->dims[1];
            float (*to_f32)(const void *, size_t) = joule_dtype_info(t->dtype)->to_f32;
            for (size_t i = 0; i < k; i++) {
                size_t row = (im->off + i) * cols;
                int64_t best = 0;
                float bv = to_f32(t->data, row);
                for (size_t c = 1; c < cols; c++) {
                    float v = to_f32(t->data, row + c);
                    if (v > bv || (bv != bv && v == v)) {
                        bv = v;
                        best = (int64_t)c;
                    }
                }
                memcpy(out + i * 8, &best, 8);
            }
        }
        out += k * ibytes;
        im->off += k;
        n -= k;
    }
    return JOULE_OK;
}

static joule_status pb_rewind(ds_source *s, joule_error *err)
{
    (void)err;
    pb_impl *im = s->impl;
    im->cur = 0;
    im->off = 0;
    joule_tensor_free(im->t);
    im->t = NULL;
    return JOULE_OK;
}

static void pb_free(ds_source *s)
{
    pb_impl *im = s->impl;
    if (!im)
        return;
    for (size_t i = 0; i < im->n_files; i++)
        free(im->files[i]);
    free(im->files);
    free(im->counts);
    joule_tensor_free(im->t);
    free(im);
}

joule_status ds_pb_open(const char *dir, bool outputs, ds_source **out, joule_error *err)
{
    *out = NULL;
    if (!is_dir(dir))
        return joule_fail(err, JOULE_ERR_IO, "%s: not a folder", dir);
    ds_source *s = NULL;
    joule_status st = ds_source_new(dir, &s, err);
    if (st)
        return st;
    pb_impl *im = calloc(1, sizeof *im);
    set_entry *sets = NULL;
    size_t n_sets = 0;
    if (!im) {
        ds_source_free(s);
        return joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", dir);
    }
    s->impl = im;
    s->read = pb_read;
    s->rewind = pb_rewind;
    s->free = pb_free;
    im->outputs = outputs;
    if ((st = list_sets(dir, &sets, &n_sets, err)))
        goto fail;
    if (n_sets == 0) {
        st = joule_fail(err, JOULE_ERR_INVALID, "%s: no test_data_set_N folders and no "
                        "input_0.pb", dir);
        goto fail;
    }
    im->files = calloc(n_sets, sizeof *im->files);
    im->counts = calloc(n_sets, sizeof *im->counts);
    if (!im->files || !im->counts) {
        st = joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", dir);
        goto fail;
    }
    const char *fname = outputs ? "output_0.pb" : "input_0.pb";
    for (size_t i = 0; i < n_sets; i++) {
        if (!(im->files[i] = join(sets[i].path, fname))) {
            st = joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", dir);
            goto fail;
        }
        im->n_files++;
        if (!is_file(im->files[i])) {
            st = joule_fail(err, JOULE_ERR_NOT_FOUND, "%s: missing", im->files[i]);
            goto fail;
        }
        joule_tensor *t = NULL;
        if ((st = joule_tensor_from_pb_file(im->files[i], &t, NULL, err)))
            goto fail;
        st = check_tensor(s, im->files[i], t, i == 0, outputs, &im->counts[i], err);
        joule_tensor_free(t);
        if (st)
            goto fail;
        if (s->count > SIZE_MAX - im->counts[i]) {
            st = joule_fail(err, JOULE_ERR_INVALID, "%s: too many items", dir);
            goto fail;
        }
        s->count += im->counts[i];
    }
    s->layout = ds_guess_layout(s);
    for (size_t i = 0; i < n_sets; i++)
        free(sets[i].path);
    free(sets);
    *out = s;
    return JOULE_OK;
fail:
    for (size_t i = 0; i < n_sets; i++)
        free(sets[i].path);
    free(sets);
    ds_source_free(s);
    return st;
}

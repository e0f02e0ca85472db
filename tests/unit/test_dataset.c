/* tests/unit/test_dataset.c: the dataset readers on real Fashion-MNIST files (checked bit for bit
 * against the fixture images numpy made from them), numpy-written .npz archives, and small files
 * written here (.npy, stored and deflated .npz, raw float32, IDX raw and gzip'd, test_data_set
 * folders of TensorProto .pb files); preprocessing (scale, mean/std, NCHW/NHWC); and every kind
 * of bad data, each of which must fail with one line naming the file and the cause. */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "joule/dataset.h"
#include "joule/npy.h"
#include "formats/onnx_internal.h"
#include "onnx.pb-c.h"

#define FMNIST_DIR "/usr/share/datasets/fashion-mnist/"

typedef struct fixture {
    char dir[512];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f || !test_tmpdir(f->dir, sizeof f->dir))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    test_rmtree(f->dir);
    free(f);
    return 0;
}

static const char *tmp_path(const fixture *f, const char *name, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s", f->dir, name);
    return buf;
}

/* ---- writing test files ---- */

static void write_npy(const char *path, joule_dtype dt, int rank, const int64_t *dims,
                      const void *data)
{
    joule_error err = {{0}};
    joule_tensor *t = NULL;
    assert_joule_ok(joule_tensor_new(dt, rank, dims, &t, &err), &err);
    if (t->nbytes)
        memcpy(joule_tensor_mutable_data(t), data, t->nbytes);
    assert_joule_ok(joule_npy_write(path, t, &err), &err);
    joule_tensor_free(t);
}

/* A .npy file's bytes in memory (via joule_npy_write). */
static unsigned char *npy_bytes(const fixture *f, joule_dtype dt, int rank, const int64_t *dims,
                                const void *data, size_t *len)
{
    char p[600];
    tmp_path(f, "scratch.npy", p, sizeof p);
    write_npy(p, dt, rank, dims, data);
    unsigned char *b = test_read_file(p, len);
    assert_non_null(b);
    unlink(p);
    return b;
}

static void put16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v)
{
    put16(p, v & 0xffff);
    put16(p + 2, v >> 16);
}

typedef struct zip_entry {
    const char *name;
    const unsigned char *data;
    size_t len;
    bool deflate;
} zip_entry;

/* A zip archive written by hand: local headers, data (stored or raw deflate), central
 * directory, end record. */
static void write_zip(const char *path, const zip_entry *e, size_t n)
{
    size_t cap = 4096;
    for (size_t i = 0; i < n; i++)
        cap += 2 * e[i].len + 256;
    unsigned char *buf = calloc(1, cap), *cd = calloc(1, 4096);
    assert_non_null(buf);
    assert_non_null(cd);
    size_t off = 0, cdlen = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char *comp = malloc(2 * e[i].len + 64);
        assert_non_null(comp);
        size_t clen = e[i].len;
        if (e[i].deflate) {
            z_stream z;
            memset(&z, 0, sizeof z);
            assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
            z.next_in = (unsigned char *)e[i].data;
            z.avail_in = (uInt)e[i].len;
            z.next_out = comp;
            z.avail_out = (uInt)(2 * e[i].len + 64);
            assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
            clen = z.total_out;
            deflateEnd(&z);
        } else {
            memcpy(comp, e[i].data, e[i].len);
        }
        uint32_t crc = (uint32_t)crc32(crc32(0, Z_NULL, 0), e[i].data, (uInt)e[i].len);
        size_t nl = strlen(e[i].name);
        unsigned char *h = buf + off;
        memcpy(h, "PK\x03\x04", 4);
        put16(h + 4, 20);
        put16(h + 8, e[i].deflate ? 8 : 0);
        put32(h + 14, crc);
        put32(h + 18, (uint32_t)clen);
        put32(h + 22, (uint32_t)e[i].len);
        put16(h + 26, (unsigned)nl);
        memcpy(h + 30, e[i].name, nl);
        memcpy(h + 30 + nl, comp, clen);
        unsigned char *c = cd + cdlen;
        memcpy(c, "PK\x01\x02", 4);
        put16(c + 4, 20);
        put16(c + 6, 20);
        put16(c + 10, e[i].deflate ? 8 : 0);
        put32(c + 16, crc);
        put32(c + 20, (uint32_t)clen);
        put32(c + 24, (uint32_t)e[i].len);
        put16(c + 28, (unsigned)nl);
        put32(c + 42, (uint32_t)off);
        memcpy(c + 46, e[i].name, nl);
        cdlen += 46 + nl;
        off += 30 + nl + clen;
        free(comp);
    }
    memcpy(buf + off, cd, cdlen);
    unsigned char *end = buf + off + cdlen;
    memcpy(end, "PK\x05\x06", 4);
    put16(end + 8, (unsigned)n);
    put16(end + 10, (unsigned)n);
    put32(end + 12, (uint32_t)cdlen);
    put32(end + 16, (uint32_t)off);
    assert_int_equal(test_write_file(path, buf, off + cdlen + 22), 0);
    free(buf);
    free(cd);
}

static void write_gz(const char *path, const void *data, size_t len)
{
    gzFile g = gzopen(path, "wb");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, data, (unsigned)len), (int)len);
    assert_int_equal(gzclose(g), Z_OK);
}

/* IDX bytes: ubyte data with the given dims. */
static unsigned char *idx_bytes(int nd, const uint32_t *dims, const unsigned char *data,
                                size_t n_data, size_t *len)
{
    *len = 4 + 4 * (size_t)nd + n_data;
    unsigned char *b = malloc(*len);
    assert_non_null(b);
    b[0] = b[1] = 0;
    b[2] = 0x08;
    b[3] = (unsigned char)nd;
    for (int d = 0; d < nd; d++) {
        b[4 + 4 * d] = (unsigned char)(dims[d] >> 24);
        b[5 + 4 * d] = (unsigned char)(dims[d] >> 16);
        b[6 + 4 * d] = (unsigned char)(dims[d] >> 8);
        b[7 + 4 * d] = (unsigned char)dims[d];
    }
    memcpy(b + 4 + 4 * nd, data, n_data);
    return b;
}

static void write_pb(const char *path, joule_dtype dt, int rank, const int64_t *dims,
                     const void *data, size_t nbytes)
{
    Onnx__TensorProto tp = ONNX__TENSOR_PROTO__INIT;
    tp.n_dims = (size_t)rank;
    tp.dims = (int64_t *)dims;
    tp.has_data_type = 1;
    tp.data_type = (int32_t)dt;
    tp.has_raw_data = 1;
    tp.raw_data.len = nbytes;
    tp.raw_data.data = (uint8_t *)data;
    size_t n = onnx__tensor_proto__get_packed_size(&tp);
    uint8_t *buf = malloc(n ? n : 1);
    assert_non_null(buf);
    onnx__tensor_proto__pack(&tp, buf);
    assert_int_equal(test_write_file(path, buf, n), 0);
    free(buf);
}

/* ---- reading helpers ---- */

static joule_dataset *open_ok(const char *path, const joule_dataset_options *opt)
{
    joule_error err = {{0}};
    joule_dataset *ds = NULL;
    assert_joule_ok(joule_dataset_open(path, opt, &ds, &err), &err);
    assert_non_null(ds);
    return ds;
}

/* Opening (or, when open succeeds, reading all of) path must fail with one line that names
 * `names` and contains `cause`. */
static void expect_bad(const char *path, const joule_dataset_options *opt, const char *names,
                       const char *cause)
{
    joule_error err = {{0}};
    joule_dataset *ds = NULL;
    joule_status st = joule_dataset_open(path, opt, &ds, &err);
    if (st == JOULE_OK) {
        size_t n = 0;
        do {
            joule_tensor *im = NULL, *lb = NULL;
            st = joule_dataset_next(ds, 7, &im, &lb, &n, &err);
            joule_tensor_free(im);
            joule_tensor_free(lb);
        } while (st == JOULE_OK && n > 0);
        joule_dataset_free(ds);
    } else {
        assert_null(ds);
    }
    if (st == JOULE_OK)
        fail_msg("%s: expected an error containing '%s'", path, cause);
    if (!strstr(err.msg, names) || !strstr(err.msg, cause) || strchr(err.msg, '\n'))
        fail_msg("error '%s' should name '%s' and say '%s' on one line", err.msg, names, cause);
}

/* Reads everything in batches of `batch`; images concatenated into *out (count floats). */
static size_t read_all(joule_dataset *ds, size_t batch, float **out, int64_t **labels)
{
    joule_error err = {{0}};
    size_t total = 0, per = 0, cap = 0;
    *out = NULL;
    if (labels)
        *labels = NULL;
    for (;;) {
        joule_tensor *im = NULL, *lb = NULL;
        size_t n = 0;
        assert_joule_ok(joule_dataset_next(ds, batch, &im, &lb, &n, &err), &err);
        if (n == 0) {
            assert_null(im);
            break;
        }
        assert_true(n <= batch);
        assert_int_equal(im->dtype, JOULE_F32);
        assert_int_equal(im->dims[0], (int64_t)n);
        per = im->count / n;
        if ((total + n) * per > cap) {
            cap = 2 * (total + n) * per;
            *out = realloc(*out, cap * sizeof **out);
            if (labels)
                *labels = realloc(*labels, cap * sizeof **labels);
        }
        memcpy(*out + total * per, im->data, im->nbytes);
        if (labels) {
            assert_non_null(lb);
            assert_int_equal(lb->dtype, JOULE_I64);
            assert_int_equal(lb->count, n);
            memcpy(*labels + total, lb->data, lb->nbytes);
        }
        total += n;
        joule_tensor_free(im);
        joule_tensor_free(lb);
    }
    return total;
}

static bool have_fmnist(void)
{
    return access(JOULE_FASHION_MNIST_TEST, R_OK) == 0;
}

/* ---- Fashion-MNIST ---- */

/* The test set: 10,000 [1,28,28] items, labels found beside the images, 1,000 per class, and the
 * first 64 images bit-identical with the fixture numpy made as pixel / 255. */
static void test_fmnist_test_set(void **state)
{
    (void)state;
    if (!have_fmnist())
        skip();
    joule_dataset *ds = open_ok(JOULE_FASHION_MNIST_TEST, NULL);
    assert_int_equal(joule_dataset_count(ds), 10000);
    assert_true(joule_dataset_has_labels(ds));
    assert_string_equal(joule_dataset_labels_path(ds),
                        FMNIST_DIR "t10k-labels-idx1-ubyte.gz");
    int rank;
    int64_t dims[JOULE_MAX_RANK];
    joule_dataset_item_shape(ds, &rank, dims);
    assert_int_equal(rank, 3);
    assert_true(dims[0] == 1 && dims[1] == 28 && dims[2] == 28);

    float *x;
    int64_t *y;
    size_t n = read_all(ds, 333, &x, &y);
    assert_int_equal(n, 10000);
    size_t hist[10] = {0};
    for (size_t i = 0; i < n; i++) {
        assert_true(y[i] >= 0 && y[i] < 10);
        hist[y[i]]++;
    }
    for (int c = 0; c < 10; c++)
        assert_int_equal(hist[c], 1000);

    char p[600];
    joule_error err = {{0}};
    joule_tensor *ref = NULL, *ref_lab = NULL;
    assert_joule_ok(joule_npy_read(test_source_path("tests/data/fmnist_test64.npy", p, sizeof p),
                                   &ref, &err), &err);
    assert_joule_ok(joule_npy_read(test_source_path("tests/data/fmnist_test64_labels.npy", p,
                                                    sizeof p), &ref_lab, &err), &err);
    assert_int_equal(ref->count, 64 * 784);
    assert_memory_equal(x, ref->data, ref->nbytes);
    assert_memory_equal(y, ref_lab->data, 64 * sizeof(int64_t));
    joule_tensor_free(ref);
    joule_tensor_free(ref_lab);

    /* rewind gives the same items again */
    assert_joule_ok(joule_dataset_rewind(ds, &err), &err);
    joule_tensor *im = NULL, *lb = NULL;
    size_t k = 0;
    assert_joule_ok(joule_dataset_next(ds, 5, &im, &lb, &k, &err), &err);
    assert_int_equal(k, 5);
    assert_memory_equal(im->data, x, 5 * 784 * sizeof(float));
    joule_tensor_free(im);
    joule_tensor_free(lb);
    free(x);
    free(y);
    joule_dataset_free(ds);
}

/* limit, NHWC and mean/std on the real files; an explicit raw (un-gzip'd) labels file. */
static void test_fmnist_options(void **state)
{
    fixture *f = *state;
    if (!have_fmnist())
        skip();
    joule_dataset_options o = {.limit = 100, .layout = JOULE_LAYOUT_NHWC, .n_channels = 1,
                               .mean = {0.5f}, .std = {0.25f}};
    joule_dataset *ds = open_ok(JOULE_FASHION_MNIST_TEST, &o);
    assert_int_equal(joule_dataset_count(ds), 100);
    int rank;
    int64_t dims[JOULE_MAX_RANK];
    joule_dataset_item_shape(ds, &rank, dims);
    assert_true(rank == 3 && dims[0] == 28 && dims[1] == 28 && dims[2] == 1);
    float *x;
    size_t n = read_all(ds, 64, &x, NULL);
    assert_int_equal(n, 100);
    joule_dataset_free(ds);

    joule_dataset *plain = open_ok(JOULE_FASHION_MNIST_TEST, &(joule_dataset_options){.limit = 100});
    float *y;
    assert_int_equal(read_all(plain, 100, &y, NULL), 100);
    for (size_t i = 0; i < 100 * 784; i++)
        assert_float_equal(x[i], (y[i] - 0.5f) / 0.25f, 0);
    joule_dataset_free(plain);
    free(x);
    free(y);

    /* labels given explicitly, un-gzip'd */
    size_t len;
    unsigned char *gz = test_read_file(FMNIST_DIR "t10k-labels-idx1-ubyte.gz", &len);
    assert_non_null(gz);
    char gzp[600], raw[600];
    tmp_path(f, "labels.gz", gzp, sizeof gzp);
    assert_int_equal(test_write_file(gzp, gz, len), 0);
    free(gz);
    gzFile g = gzopen(gzp, "rb");
    unsigned char *lab = malloc(10008);
    assert_int_equal(gzread(g, lab, 10008), 10008);
    gzclose(g);
    tmp_path(f, "labels-idx1-ubyte", raw, sizeof raw);
    assert_int_equal(test_write_file(raw, lab, 10008), 0);
    joule_dataset *ds2 = open_ok(JOULE_FASHION_MNIST_TEST,
                                 &(joule_dataset_options){.labels = raw, .limit = 10});
    assert_string_equal(joule_dataset_labels_path(ds2), raw);
    int64_t *l2;
    float *x2;
    assert_int_equal(read_all(ds2, 3, &x2, &l2), 10);
    for (int i = 0; i < 10; i++)
        assert_int_equal(l2[i], lab[8 + i]);
    free(lab);
    free(x2);
    free(l2);
    joule_dataset_free(ds2);
}

/* The training set opens with its 60,000 labels; one batch is read, not the whole file. */
static void test_fmnist_train(void **state)
{
    (void)state;
    if (access(FMNIST_DIR "train-images-idx3-ubyte.gz", R_OK) != 0)
        skip();
    joule_dataset *ds = open_ok(FMNIST_DIR "train-images-idx3-ubyte.gz", NULL);
    assert_int_equal(joule_dataset_count(ds), 60000);
    assert_true(joule_dataset_has_labels(ds));
    joule_error err = {{0}};
    joule_tensor *im = NULL, *lb = NULL;
    size_t n = 0;
    assert_joule_ok(joule_dataset_next(ds, 16, &im, &lb, &n, &err), &err);
    assert_int_equal(n, 16);
    const float *x = im->data;
    for (size_t i = 0; i < im->count; i++)
        assert_true(x[i] >= 0 && x[i] <= 1);
    joule_tensor_free(im);
    joule_tensor_free(lb);
    joule_dataset_free(ds);
}

/* ---- .npy ---- */

/* uint8 [n,h,w] with labels found as <stem>_labels.npy; default scale divides by 255. */
static void test_npy_uint8_and_labels(void **state)
{
    fixture *f = *state;
    unsigned char px[5 * 2 * 3];
    for (size_t i = 0; i < sizeof px; i++)
        px[i] = (unsigned char)(i * 37 % 256);
    int64_t lab[5] = {4, 0, 2, 2, 7};
    char p[600], lp[600];
    write_npy(tmp_path(f, "imgs.npy", p, sizeof p), JOULE_U8, 3, (int64_t[]){5, 2, 3}, px);
    write_npy(tmp_path(f, "imgs_labels.npy", lp, sizeof lp), JOULE_I32, 1, (int64_t[]){5},
              (int32_t[]){4, 0, 2, 2, 7});
    joule_dataset *ds = open_ok(p, NULL);
    assert_string_equal(joule_dataset_labels_path(ds), lp);
    int rank;
    int64_t dims[JOULE_MAX_RANK];
    joule_dataset_item_shape(ds, &rank, dims);
    assert_true(rank == 3 && dims[0] == 1 && dims[1] == 2 && dims[2] == 3);
    float *x;
    int64_t *y;
    assert_int_equal(read_all(ds, 2, &x, &y), 5);
    for (size_t i = 0; i < sizeof px; i++)
        assert_true(x[i] == (float)px[i] / 255.0f); /* bit-exact with numpy's x / 255 */
    assert_memory_equal(y, lab, sizeof lab);
    free(x);
    free(y);
    joule_dataset_free(ds);
}

/* float32 [n,3,4,5] (CHW by its small first dim) to NHWC with per-channel mean/std, checked
 * against a direct transposition. */
static void test_npy_chw_to_nhwc(void **state)
{
    fixture *f = *state;
    enum { N = 2, C = 3, H = 4, W = 5 };
    float src[N * C * H * W];
    for (size_t i = 0; i < N * C * H * W; i++)
        src[i] = (float)i * 0.5f - 7;
    char p[600];
    write_npy(tmp_path(f, "chw.npy", p, sizeof p), JOULE_F32, 4, (int64_t[]){N, C, H, W}, src);
    joule_dataset_options o = {.layout = JOULE_LAYOUT_NHWC, .n_channels = 3,
                               .mean = {1, 2, 3}, .std = {2, 4, 8}};
    joule_dataset *ds = open_ok(p, &o);
    assert_false(joule_dataset_has_labels(ds));
    int rank;
    int64_t dims[JOULE_MAX_RANK];
    joule_dataset_item_shape(ds, &rank, dims);
    assert_true(rank == 3 && dims[0] == H && dims[1] == W && dims[2] == C);
    float *x;
    assert_int_equal(read_all(ds, 64, &x, NULL), N);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int h = 0; h < H; h++)
                for (int w = 0; w < W; w++) {
                    float v = src[((n * C + c) * H + h) * W + w];
                    float want = (v - o.mean[c]) / o.std[c];
                    assert_true(x[((n * H + h) * W + w) * C + c] == want);
                }
    free(x);
    joule_dataset_free(ds);

    /* and NCHW leaves it as it is */
    ds = open_ok(p, NULL);
    assert_int_equal(read_all(ds, 1, &x, NULL), N);
    assert_memory_equal(x, src, sizeof src);
    free(x);
    joule_dataset_free(ds);
}

/* HWC float64 items become NCHW; an int16 array converts exactly; a scale of 1/k divides. */
static void test_npy_types_and_hwc(void **state)
{
    fixture *f = *state;
    double src[2 * 6 * 7 * 3];
    for (size_t i = 0; i < 2 * 6 * 7 * 3; i++)
        src[i] = (double)i / 3.0;
    char p[600];
    write_npy(tmp_path(f, "hwc.npy", p, sizeof p), JOULE_F64, 4, (int64_t[]){2, 6, 7, 3}, src);
    joule_dataset *ds = open_ok(p, NULL);
    int rank;
    int64_t dims[JOULE_MAX_RANK];
    joule_dataset_item_shape(ds, &rank, dims);
    assert_true(rank == 3 && dims[0] == 3 && dims[1] == 6 && dims[2] == 7);
    float *x;
    assert_int_equal(read_all(ds, 64, &x, NULL), 2);
    for (int n = 0; n < 2; n++)
        for (int h = 0; h < 6; h++)
            for (int w = 0; w < 7; w++)
                for (int c = 0; c < 3; c++)
                    assert_true(x[((n * 3 + c) * 6 + h) * 7 + w] ==
                                (float)src[((n * 6 + h) * 7 + w) * 3 + c]);
    free(x);
    joule_dataset_free(ds);

    int16_t v[4 * 3] = {-300, -1, 0, 1, 2, 3, 1000, 32767, -32768, 5, 6, 7};
    write_npy(tmp_path(f, "i16.npy", p, sizeof p), JOULE_I16, 2, (int64_t[]){4, 3}, v);
    ds = open_ok(p, &(joule_dataset_options){.scale = 0.25f});
    joule_dataset_item_shape(ds, &rank, dims);
    assert_true(rank == 1 && dims[0] == 3);
    assert_int_equal(read_all(ds, 3, &x, NULL), 4);
    for (int i = 0; i < 12; i++)
        assert_true(x[i] == (float)v[i] / 4.0f);
    free(x);
    joule_dataset_free(ds);
}

/* A gzip'd .npy streams like a plain one. */
static void test_npy_gz(void **state)
{
    fixture *f = *state;
    float src[3 * 4];
    for (int i = 0; i < 12; i++)
        src[i] = (float)i - 5.5f;
    size_t len;
    unsigned char *b = npy_bytes(f, JOULE_F32, 2, (int64_t[]){3, 4}, src, &len);
    char p[600];
    write_gz(tmp_path(f, "a.npy.gz", p, sizeof p), b, len);
    free(b);
    joule_dataset *ds = open_ok(p, NULL);
    assert_int_equal(joule_dataset_count(ds), 3);
    float *x;
    assert_int_equal(read_all(ds, 2, &x, NULL), 3);
    assert_memory_equal(x, src, sizeof src);
    free(x);
    joule_dataset_free(ds);
}

/* ---- .npz ---- */

/* Archives numpy wrote: np.savez (stored, zip64 local headers) and np.savez_compressed
 * (deflated); x = (arange(96) * 7) % 256 as uint8 [6,4,4], y = [3,1,4,1,5,9]. */
static void test_npz_numpy(void **state)
{
    (void)state;
    static const char *const files[] = {"tests/data/tiny_savez.npz",
                                        "tests/data/tiny_savez_compressed.npz"};
    for (int k = 0; k < 2; k++) {
        char p[600];
        joule_dataset *ds = open_ok(test_source_path(files[k], p, sizeof p), NULL);
        assert_int_equal(joule_dataset_count(ds), 6);
        assert_true(joule_dataset_has_labels(ds));
        assert_non_null(strstr(joule_dataset_labels_path(ds), k ? "labels" : "y"));
        float *x;
        int64_t *y;
        assert_int_equal(read_all(ds, 4, &x, &y), 6);
        for (int i = 0; i < 96; i++)
            assert_true(x[i] == (float)(i * 7 % 256) / 255.0f);
        static const int64_t want[6] = {3, 1, 4, 1, 5, 9};
        assert_memory_equal(y, want, sizeof want);
        /* rewind re-reads both members */
        joule_error err = {{0}};
        assert_joule_ok(joule_dataset_rewind(ds, &err), &err);
        float *x2;
        int64_t *y2;
        assert_int_equal(read_all(ds, 6, &x2, &y2), 6);
        assert_memory_equal(x, x2, 96 * sizeof *x);
        assert_memory_equal(y, y2, sizeof want);
        free(x);
        free(y);
        free(x2);
        free(y2);
        joule_dataset_free(ds);
    }
}

/* Hand-made archives: deflated data with stored labels, the data chosen as the first array that
 * is not the labels when no "x"/"images" exists, and labels given from another .npz. */
static void test_npz_written(void **state)
{
    fixture *f = *state;
    enum { N = 50 };
    float src[N * 8];
    for (int i = 0; i < N * 8; i++)
        src[i] = (float)(i % 17) * 0.25f;
    int64_t lab[N];
    for (int i = 0; i < N; i++)
        lab[i] = i % 10;
    size_t xl, yl;
    unsigned char *xb = npy_bytes(f, JOULE_F32, 3, (int64_t[]){N, 2, 4}, src, &xl);
    unsigned char *yb = npy_bytes(f, JOULE_I64, 1, (int64_t[]){N}, lab, &yl);
    char p[600], q[600];
    write_zip(tmp_path(f, "mix.npz", p, sizeof p),
              (zip_entry[]){{"labels.npy", yb, yl, false}, {"feats.npy", xb, xl, true}}, 2);
    joule_dataset *ds = open_ok(p, NULL);
    assert_int_equal(joule_dataset_count(ds), N);
    float *x;
    int64_t *y;
    assert_int_equal(read_all(ds, 16, &x, &y), N);
    assert_memory_equal(x, src, sizeof src);
    assert_memory_equal(y, lab, sizeof lab);
    free(x);
    free(y);
    joule_dataset_free(ds);

    /* labels from a separate archive */
    write_zip(tmp_path(f, "only_x.npz", q, sizeof q), (zip_entry[]){{"x.npy", xb, xl, true}}, 1);
    char lp[600];
    write_zip(tmp_path(f, "only_y.npz", lp, sizeof lp), (zip_entry[]){{"y.npy", yb, yl, true}}, 1);
    ds = open_ok(q, NULL);
    assert_false(joule_dataset_has_labels(ds));
    joule_dataset_free(ds);
    ds = open_ok(q, &(joule_dataset_options){.labels = lp});
    assert_true(joule_dataset_has_labels(ds));
    assert_int_equal(read_all(ds, 64, &x, &y), N);
    assert_memory_equal(y, lab, sizeof lab);
    free(x);
    free(y);
    joule_dataset_free(ds);
    free(xb);
    free(yb);
}

/* ---- raw float32 and IDX ---- */

static void test_raw_float32(void **state)
{
    fixture *f = *state;
    float src[4 * 2 * 3];
    for (int i = 0; i < 24; i++)
        src[i] = (float)i / 7.0f;
    char p[600];
    assert_int_equal(test_write_file(tmp_path(f, "x.f32", p, sizeof p), src, sizeof src), 0);
    joule_dataset_options o = {.raw_rank = 2, .raw_dims = {2, 3}};
    joule_dataset *ds = open_ok(p, &o);
    assert_int_equal(joule_dataset_count(ds), 4);
    int rank;
    int64_t dims[JOULE_MAX_RANK];
    joule_dataset_item_shape(ds, &rank, dims);
    assert_true(rank == 3 && dims[0] == 1 && dims[1] == 2 && dims[2] == 3);
    float *x;
    assert_int_equal(read_all(ds, 3, &x, NULL), 4);
    assert_memory_equal(x, src, sizeof src);
    free(x);
    joule_dataset_free(ds);

    /* gzip'd raw data is measured by one pass */
    write_gz(tmp_path(f, "x.f32.gz", p, sizeof p), src, sizeof src);
    ds = open_ok(p, &o);
    assert_int_equal(joule_dataset_count(ds), 4);
    assert_int_equal(read_all(ds, 4, &x, NULL), 4);
    assert_memory_equal(x, src, sizeof src);
    free(x);
    joule_dataset_free(ds);

    /* 24 floats are not whole items of 5 */
    expect_bad(p, &(joule_dataset_options){.raw_rank = 1, .raw_dims = {5}}, p,
               "not a whole number");
}

/* IDX written here, raw and gzip'd, with labels found beside by the MNIST naming. */
static void test_idx_written(void **state)
{
    fixture *f = *state;
    unsigned char px[3 * 2 * 2] = {0, 255, 128, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    unsigned char lb[3] = {9, 0, 5};
    size_t il, ll;
    unsigned char *ib = idx_bytes(3, (uint32_t[]){3, 2, 2}, px, sizeof px, &il);
    unsigned char *lbb = idx_bytes(1, (uint32_t[]){3}, lb, sizeof lb, &ll);
    char p[600], lp[600];
    assert_int_equal(test_write_file(tmp_path(f, "a-images-idx3-ubyte", p, sizeof p), ib, il), 0);
    assert_int_equal(test_write_file(tmp_path(f, "a-labels-idx1-ubyte", lp, sizeof lp), lbb, ll),
                     0);
    for (int gz = 0; gz < 2; gz++) {
        if (gz) {
            write_gz(tmp_path(f, "b-images-idx3-ubyte.gz", p, sizeof p), ib, il);
            write_gz(tmp_path(f, "b-labels-idx1-ubyte.gz", lp, sizeof lp), lbb, ll);
        }
        joule_dataset *ds = open_ok(p, NULL);
        assert_string_equal(joule_dataset_labels_path(ds), lp);
        float *x;
        int64_t *y;
        assert_int_equal(read_all(ds, 2, &x, &y), 3);
        for (int i = 0; i < 12; i++)
            assert_true(x[i] == (float)px[i] / 255.0f);
        for (int i = 0; i < 3; i++)
            assert_int_equal(y[i], lb[i]);
        free(x);
        free(y);
        joule_dataset_free(ds);
    }
    free(ib);
    free(lbb);
}

/* ---- ONNX test_data_set folders ---- */

static void test_pb_folders(void **state)
{
    fixture *f = *state;
    char d[600], s0[700], s1[700], p[800];
    tmp_path(f, "model", d, sizeof d);
    snprintf(s0, sizeof s0, "%s/test_data_set_0", d);
    snprintf(s1, sizeof s1, "%s/test_data_set_1", d);
    assert_int_equal(mkdir(d, 0755) | mkdir(s0, 0755) | mkdir(s1, 0755), 0);
    float a[2 * 4], b[3 * 4];
    for (int i = 0; i < 8; i++)
        a[i] = (float)i;
    for (int i = 0; i < 12; i++)
        b[i] = 100.0f + (float)i;
    /* set 0: float scores (labels = arg-max per row); set 1: the same as int64 ids */
    float sc[2 * 3] = {0.1f, 0.9f, 0.0f, 2.0f, -1.0f, 2.0f};
    int64_t ids[3] = {2, 0, 1};
    snprintf(p, sizeof p, "%s/input_0.pb", s0);
    write_pb(p, JOULE_F32, 3, (int64_t[]){2, 2, 2}, a, sizeof a);
    snprintf(p, sizeof p, "%s/output_0.pb", s0);
    write_pb(p, JOULE_F32, 2, (int64_t[]){2, 3}, sc, sizeof sc);
    snprintf(p, sizeof p, "%s/input_0.pb", s1);
    write_pb(p, JOULE_F32, 3, (int64_t[]){3, 2, 2}, b, sizeof b);
    snprintf(p, sizeof p, "%s/output_0.pb", s1);
    write_pb(p, JOULE_I64, 1, (int64_t[]){3}, ids, sizeof ids);

    joule_dataset *ds = open_ok(d, NULL);
    assert_int_equal(joule_dataset_count(ds), 5);
    assert_true(joule_dataset_has_labels(ds));
    int rank;
    int64_t dims[JOULE_MAX_RANK];
    joule_dataset_item_shape(ds, &rank, dims);
    assert_true(rank == 3 && dims[0] == 1 && dims[1] == 2 && dims[2] == 2);
    float *x;
    int64_t *y;
    assert_int_equal(read_all(ds, 4, &x, &y), 5);
    assert_memory_equal(x, a, sizeof a);
    assert_memory_equal(x + 8, b, sizeof b);
    static const int64_t want[5] = {1, 0, 2, 0, 1}; /* ties go to the lower index */
    assert_memory_equal(y, want, sizeof want);
    free(x);
    free(y);
    joule_dataset_free(ds);

    /* one set folder on its own */
    ds = open_ok(s1, NULL);
    assert_int_equal(joule_dataset_count(ds), 3);
    joule_dataset_free(ds);

    /* a set with a differently shaped item */
    snprintf(p, sizeof p, "%s/input_0.pb", s1);
    write_pb(p, JOULE_F32, 2, (int64_t[]){3, 4}, b, sizeof b);
    expect_bad(d, NULL, "test_data_set_1/input_0.pb", "differ");
}

/* The backend-test data Debian ships: the items are input_0.pb's rows as the .pb reader gives
 * them; output_0.pb ([3,4,5] float, not class ids or [n,k] scores) is no labels. */
static void test_pb_onnx_testdata(void **state)
{
    (void)state;
    char p[600], q[700];
    test_data_path("node/test_softmax_axis_1/test_data_set_0", p, sizeof p);
    if (access(p, R_OK) != 0)
        skip();
    joule_error err = {{0}};
    joule_tensor *in = NULL;
    snprintf(q, sizeof q, "%s/input_0.pb", p);
    assert_joule_ok(joule_tensor_from_pb_file(q, &in, NULL, &err), &err);
    joule_dataset *ds = open_ok(p, NULL);
    assert_false(joule_dataset_has_labels(ds));
    assert_int_equal(joule_dataset_count(ds), (size_t)in->dims[0]);
    int rank;
    int64_t dims[JOULE_MAX_RANK];
    joule_dataset_item_shape(ds, &rank, dims);
    assert_true(rank == 3 && dims[0] == 1 && dims[1] == in->dims[1] && dims[2] == in->dims[2]);
    float *x;
    assert_int_equal(read_all(ds, 2, &x, NULL), (size_t)in->dims[0]);
    assert_memory_equal(x, in->data, in->nbytes);
    free(x);
    joule_dataset_free(ds);
    /* asked for explicitly, the same file is refused, naming it */
    expect_bad(p, &(joule_dataset_options){.labels = p}, "output_0.pb", "labels must be");
    joule_tensor_free(in);
}

/* ---- bad data ---- */

static void test_bad_label_count(void **state)
{
    fixture *f = *state;
    float src[5 * 4] = {0};
    char p[600], lp[600];
    write_npy(tmp_path(f, "five.npy", p, sizeof p), JOULE_F32, 2, (int64_t[]){5, 4}, src);
    write_npy(tmp_path(f, "four.npy", lp, sizeof lp), JOULE_I64, 1, (int64_t[]){4},
              (int64_t[]){1, 2, 3, 4});
    expect_bad(p, &(joule_dataset_options){.labels = lp}, lp, "4 labels for 5 items");
    /* float labels are not class ids */
    write_npy(lp, JOULE_F32, 1, (int64_t[]){5}, (float[]){1, 2, 3, 4, 5});
    expect_bad(p, &(joule_dataset_options){.labels = lp}, lp, "labels must be integers");
    /* negative ids */
    write_npy(lp, JOULE_I32, 1, (int64_t[]){5}, (int32_t[]){1, 2, -3, 4, 5});
    expect_bad(p, &(joule_dataset_options){.labels = lp}, lp, "negative");
}

static void test_bad_truncated(void **state)
{
    fixture *f = *state;
    float src[10 * 6];
    for (int i = 0; i < 60; i++)
        src[i] = (float)i;
    size_t len;
    unsigned char *b = npy_bytes(f, JOULE_F32, 2, (int64_t[]){10, 6}, src, &len);
    char p[600];
    /* .npy cut inside the data, inside the header, and a gzip'd one cut inside the data */
    assert_int_equal(test_write_file(tmp_path(f, "cut.npy", p, sizeof p), b, len - 30), 0);
    expect_bad(p, NULL, p, "truncated");
    assert_int_equal(test_write_file(p, b, 40), 0);
    expect_bad(p, NULL, p, "truncated");
    write_gz(tmp_path(f, "cut.npy.gz", p, sizeof p), b, len - 30);
    expect_bad(p, NULL, p, "truncated");
    free(b);

    /* IDX: the header promises 10 items of 2x2, 7 are there; raw and gzip'd */
    unsigned char px[7 * 4] = {0};
    size_t il;
    unsigned char *ib = idx_bytes(3, (uint32_t[]){10, 2, 2}, px, sizeof px, &il);
    assert_int_equal(test_write_file(tmp_path(f, "t-images-idx3-ubyte", p, sizeof p), ib, il), 0);
    expect_bad(p, NULL, p, "truncated");
    write_gz(tmp_path(f, "t-images-idx3-ubyte.gz", p, sizeof p), ib, il);
    expect_bad(p, NULL, p, "truncated");
    free(ib);

    /* a gzip file cut in half (the stream itself is broken) */
    if (have_fmnist()) {
        size_t gl;
        unsigned char *g = test_read_file(FMNIST_DIR "t10k-labels-idx1-ubyte.gz", &gl);
        assert_non_null(g);
        assert_int_equal(test_write_file(tmp_path(f, "half-labels-idx1-ubyte.gz", p, sizeof p), g,
                                         gl / 2), 0);
        free(g);
        expect_bad(p, NULL, p, "truncated");
    }

    /* an .npz whose archive was cut: no end record */
    char z[600];
    size_t zl;
    test_source_path("tests/data/tiny_savez_compressed.npz", z, sizeof z);
    unsigned char *zb = test_read_file(z, &zl);
    assert_non_null(zb);
    assert_int_equal(test_write_file(tmp_path(f, "cut.npz", p, sizeof p), zb, zl - 40), 0);
    expect_bad(p, NULL, p, "truncated");
    /* and one with a flipped data byte: the CRC catches it */
    zb[200] ^= 0x55;
    assert_int_equal(test_write_file(tmp_path(f, "flip.npz", p, sizeof p), zb, zl), 0);
    expect_bad(p, NULL, "flip.npz", "");
    free(zb);
}

static void test_bad_dtype(void **state)
{
    fixture *f = *state;
    /* a complex64 .npy: the header parser knows numpy's dtypes, joule does not take this one */
    const char hdr[] = "{'descr': '<c8', 'fortran_order': False, 'shape': (2, 2), }";
    unsigned char buf[128 + 32] = {0};
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    size_t hl = 118;
    buf[8] = (unsigned char)hl;
    memset(buf + 10, ' ', hl);
    memcpy(buf + 10, hdr, sizeof hdr - 1);
    buf[10 + hl - 1] = '\n';
    char p[600];
    assert_int_equal(test_write_file(tmp_path(f, "c8.npy", p, sizeof p), buf, 128 + 32), 0);
    expect_bad(p, NULL, p, "'<c8' is not supported");
    /* big-endian float32 */
    memcpy(buf + 10, "{'descr': '>f4'", 15);
    assert_int_equal(test_write_file(p, buf, 128 + 16), 0);
    expect_bad(p, NULL, p, "big-endian");
}

static void test_bad_empty_and_magic(void **state)
{
    fixture *f = *state;
    char p[600];
    write_npy(tmp_path(f, "none.npy", p, sizeof p), JOULE_F32, 3, (int64_t[]){0, 28, 28}, NULL);
    expect_bad(p, NULL, p, "empty");
    assert_int_equal(test_write_file(tmp_path(f, "zero.bin", p, sizeof p), "", 0), 0);
    expect_bad(p, NULL, p, "empty");
    unsigned idx0[1] = {0};
    size_t il;
    unsigned char *ib = idx_bytes(3, (uint32_t[]){0, 28, 28}, (unsigned char *)idx0, 0, &il);
    assert_int_equal(test_write_file(tmp_path(f, "e-images-idx3-ubyte", p, sizeof p), ib, il), 0);
    expect_bad(p, NULL, p, "empty");
    free(ib);
    assert_int_equal(test_write_file(tmp_path(f, "junk.dat", p, sizeof p), "GIF89a....", 10), 0);
    expect_bad(p, NULL, p, "bad magic 47 49 46 38");
    /* a labels file with bad magic */
    char q[600];
    write_npy(tmp_path(f, "ok.npy", q, sizeof q), JOULE_F32, 2, (int64_t[]){2, 2},
              (float[]){1, 2, 3, 4});
    expect_bad(q, &(joule_dataset_options){.labels = p}, p, "bad magic");
    /* an IDX type byte that does not exist */
    unsigned char bad[12] = {0, 0, 0x07, 1, 0, 0, 0, 1, 9};
    assert_int_equal(test_write_file(tmp_path(f, "x-labels-idx1-ubyte", p, sizeof p), bad, 9), 0);
    expect_bad(p, NULL, p, "bad magic");
    /* a folder with no test data, and a missing file */
    expect_bad(f->dir, NULL, f->dir, "no test_data_set");
    tmp_path(f, "missing.npy", p, sizeof p);
    expect_bad(p, NULL, p, "cannot open");
    /* mean/std for 3 channels on one-channel items */
    expect_bad(q, &(joule_dataset_options){.n_channels = 3, .mean = {1, 2, 3}, .std = {1, 1, 1}},
               q, "3 entries");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fmnist_test_set),
        cmocka_unit_test_setup_teardown(test_fmnist_options, setup, teardown),
        cmocka_unit_test(test_fmnist_train),
        cmocka_unit_test_setup_teardown(test_npy_uint8_and_labels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_npy_chw_to_nhwc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_npy_types_and_hwc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_npy_gz, setup, teardown),
        cmocka_unit_test(test_npz_numpy),
        cmocka_unit_test_setup_teardown(test_npz_written, setup, teardown),
        cmocka_unit_test_setup_teardown(test_raw_float32, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idx_written, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pb_folders, setup, teardown),
        cmocka_unit_test(test_pb_onnx_testdata),
        cmocka_unit_test_setup_teardown(test_bad_label_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_dtype, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_empty_and_magic, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* formats/npy.c: NumPy .npy files. The header is a Python dict literal; it is parsed strictly
 * (the three keys numpy writes, nothing else) and every size is checked against the file's real
 * length before anything is allocated, so a hostile header gives a one-line error, never a huge
 * allocation. Writes go to a temporary file in the target's folder, then rename. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "joule/npy.h"
#include "formats/npy_internal.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAX_HEADER (1u << 20)

typedef struct npy_type {
    char kind;      /* numpy kind letter */
    unsigned size;  /* bytes */
    joule_dtype dtype;
} npy_type;

static const npy_type npy_types[] = {
    {'f', 2, JOULE_F16}, {'f', 4, JOULE_F32}, {'f', 8, JOULE_F64}, {'i', 1, JOULE_I8},
    {'u', 1, JOULE_U8},  {'i', 2, JOULE_I16}, {'u', 2, JOULE_U16}, {'i', 4, JOULE_I32},
    {'u', 4, JOULE_U32}, {'i', 8, JOULE_I64}, {'u', 8, JOULE_U64}, {'b', 1, JOULE_BOOL},
};

/* ---- header parsing ---- */

typedef struct hdr_parser {
    const char *p, *end;
    const char *path;
    joule_error *err;
} hdr_parser;

static void skip_ws(hdr_parser *h)
{
    while (h->p < h->end && (*h->p == ' ' || *h->p == '\t' || *h->p == '\n' || *h->p == '\r'))
        h->p++;
}

static joule_status bad(hdr_parser *h, const char *what)
{
    return joule_fail(h->err, JOULE_ERR_PARSE, "%s: bad .npy header: %s", h->path, what);
}

static bool expect(hdr_parser *h, char c)
{
    skip_ws(h);
    if (h->p < h->end && *h->p == c) {
        h->p++;
        return true;
    }
    return false;
}

/* A quoted string ('...' or "..."), no escapes; copied into buf. */
static joule_status parse_str(hdr_parser *h, char *buf, size_t size)
{
    skip_ws(h);
    if (h->p >= h->end || (*h->p != '\'' && *h->p != '"'))
        return bad(h, "expected a quoted string");
    char q = *h->p++;
    const char *start = h->p;
    while (h->p < h->end && *h->p != q) {
        if (*h->p == '\\')
            return bad(h, "escapes in strings are not supported");
        h->p++;
    }
    if (h->p >= h->end)
        return bad(h, "unterminated string");
    size_t len = (size_t)(h->p - start);
    h->p++;
    if (len >= size)
        return bad(h, "string too long");
    memcpy(buf, start, len);
    buf[len] = 0;
    return JOULE_OK;
}

static joule_status parse_bool(hdr_parser *h, bool *out)
{
    skip_ws(h);
    size_t left = (size_t)(h->end - h->p);
    if (left >= 4 && memcmp(h->p, "True", 4) == 0) {
        h->p += 4;
        *out = true;
    } else if (left >= 5 && memcmp(h->p, "False", 5) == 0) {
        h->p += 5;
        *out = false;
    } else {
        return bad(h, "fortran_order must be True or False");
    }
    return JOULE_OK;
}

static joule_status parse_shape(hdr_parser *h, int *rank, int64_t *dims)
{
    skip_ws(h);
    if (h->p >= h->end || (*h->p != '(' && *h->p != '['))
        return bad(h, "shape must be a tuple");
    char close = *h->p == '(' ? ')' : ']';
    h->p++;
    *rank = 0;
    for (;;) {
        skip_ws(h);
        if (h->p < h->end && *h->p == close) {
            h->p++;
            return JOULE_OK;
        }
        if (h->p >= h->end || *h->p < '0' || *h->p > '9')
            return bad(h, "shape entries must be non-negative integers");
        int64_t v = 0;
        while (h->p < h->end && *h->p >= '0' && *h->p <= '9') {
            int digit = *h->p++ - '0';
            if (v > (INT64_MAX - digit) / 10)
                return bad(h, "shape entry overflows");
            v = v * 10 + digit;
        }
        if (h->p < h->end && *h->p == 'L') /* Python 2 longs */
            h->p++;
        if (*rank >= JOULE_MAX_RANK)
            return joule_fail(h->err, JOULE_ERR_UNSUPPORTED, "%s: .npy rank exceeds joule's limit %d",
                              h->path, JOULE_MAX_RANK);
        dims[(*rank)++] = v;
        skip_ws(h);
        if (h->p < h->end && *h->p == ',')
            h->p++;
        else if (h->p >= h->end || *h->p != close)
            return bad(h, "expected ',' or the end of the shape");
    }
}

static joule_status parse_descr(const char *descr, const char *path, joule_dtype *out,
                                joule_error *err)
{
    char order = descr[0];
    if (order != '<' && order != '>' && order != '|' && order != '=')
        return joule_fail(err, JOULE_ERR_UNSUPPORTED, "%s: .npy dtype '%s' is not supported",
                          path, descr);
    char kind = descr[1];
    char *endp;
    errno = 0;
    unsigned long size = kind ? strtoul(descr + 2, &endp, 10) : 0;
    if (!kind || errno || endp == descr + 2 || *endp)
        return joule_fail(err, JOULE_ERR_UNSUPPORTED, "%s: .npy dtype '%s' is not supported",
                          path, descr);
    for (size_t i = 0; i < sizeof npy_types / sizeof npy_types[0]; i++) {
        if (npy_types[i].kind != kind || npy_types[i].size != size)
            continue;
        if (order == '>' && size > 1)
            return joule_fail(err, JOULE_ERR_UNSUPPORTED,
                              "%s: big-endian .npy data ('%s') is not supported", path, descr);
        *out = npy_types[i].dtype;
        return JOULE_OK;
    }
    return joule_fail(err, JOULE_ERR_UNSUPPORTED, "%s: .npy dtype '%s' is not supported", path,
                      descr);
}

/* Parses the dict literal: {'descr': ..., 'fortran_order': ..., 'shape': (...), } */
static joule_status parse_header(const char *text, size_t len, const char *path, joule_dtype *dtype,
                                 int *rank, int64_t *dims, joule_error *err)
{
    hdr_parser h = {text, text + len, path, err};
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if ((c < 0x20 && c != '\n' && c != '\r' && c != '\t') || c == 0x7f)
            return bad(&h, "control characters in the header");
    }
    if (!expect(&h, '{'))
        return bad(&h, "expected '{'");
    bool have_descr = false, have_order = false, have_shape = false, fortran = false;
    char descr[32];
    joule_status st;
    for (;;) {
        skip_ws(&h);
        if (h.p < h.end && *h.p == '}') {
            h.p++;
            break;
        }
        char key[32];
        if ((st = parse_str(&h, key, sizeof key)))
            return st;
        if (!expect(&h, ':'))
            return bad(&h, "expected ':' after a key");
        if (strcmp(key, "descr") == 0 && !have_descr) {
            if ((st = parse_str(&h, descr, sizeof descr)))
                return st;
            have_descr = true;
        } else if (strcmp(key, "fortran_order") == 0 && !have_order) {
            if ((st = parse_bool(&h, &fortran)))
                return st;
            have_order = true;
        } else if (strcmp(key, "shape") == 0 && !have_shape) {
            if ((st = parse_shape(&h, rank, dims)))
                return st;
            have_shape = true;
        } else {
            return bad(&h, "unknown or repeated key");
        }
        skip_ws(&h);
        if (h.p < h.end && *h.p == ',')
            h.p++;
        else if (h.p >= h.end || *h.p != '}')
            return bad(&h, "expected ',' or '}'");
    }
    skip_ws(&h);
    if (h.p != h.end)
        return bad(&h, "trailing characters after the dict");
    if (!have_descr || !have_order || !have_shape)
        return bad(&h, "missing 'descr', 'fortran_order' or 'shape'");
    if (fortran)
        return joule_fail(err, JOULE_ERR_UNSUPPORTED,
                          "%s: fortran_order arrays are not supported (save it C-ordered, e.g. "
                          "np.save(path, np.ascontiguousarray(a)))", path);
    return parse_descr(descr, path, dtype, err);
}

joule_status joule_npy_parse_header(const char *text, size_t len, const char *path,
                                    joule_dtype *dtype, int *rank, int64_t *dims,
                                    joule_error *err)
{
    return parse_header(text, len, path, dtype, rank, dims, err);
}

/* ---- reading ---- */

joule_status joule_npy_read(const char *path, joule_tensor **out, joule_error *err)
{
    if (!out)
        return joule_fail(err, JOULE_ERR_INVALID, "npy: no place for the result");
    *out = NULL;
    if (!path)
        return joule_fail(err, JOULE_ERR_INVALID, "npy: no path");
    FILE *f = fopen(path, "rb");
    if (!f)
        return joule_fail(err, JOULE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    joule_status st = JOULE_OK;
    char *header = NULL;
    joule_tensor *t = NULL;
    struct stat sb;
    unsigned char pre[12];
    if (fstat(fileno(f), &sb) != 0) {
        st = joule_fail(err, JOULE_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = joule_fail(err, JOULE_ERR_IO, "%s: not a regular file", path);
        goto done;
    }
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, NPY_MAGIC, 6) != 0) {
        st = joule_fail(err, JOULE_ERR_PARSE, "%s: not a .npy file (bad magic)", path);
        goto done;
    }
    unsigned major = pre[6];
    size_t hlen, offset;
    if (major == 1) {
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8;
        offset = 10;
    } else if (major == 2 || major == 3) {
        if (fread(pre + 10, 1, 2, f) != 2) {
            st = joule_fail(err, JOULE_ERR_PARSE, "%s: truncated .npy header", path);
            goto done;
        }
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 |
               (size_t)pre[11] << 24;
        offset = 12;
    } else {
        st = joule_fail(err, JOULE_ERR_UNSUPPORTED, "%s: .npy format version %u is not supported",
                        path, major);
        goto done;
    }
    if (hlen > NPY_MAX_HEADER || (uint64_t)sb.st_size < offset + hlen) {
        st = joule_fail(err, JOULE_ERR_PARSE, "%s: .npy header length %zu is out of range", path,
                        hlen);
        goto done;
    }
    header = malloc(hlen + 1);
    if (!header) {
        st = joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    if (fread(header, 1, hlen, f) != hlen) {
        st = joule_fail(err, JOULE_ERR_IO, "%s: truncated .npy header", path);
        goto done;
    }
    header[hlen] = 0;
    joule_dtype dtype = JOULE_UNDEFINED;
    int rank = 0;
    int64_t dims[JOULE_MAX_RANK];
    st = parse_header(header, hlen, path, &dtype, &rank, dims, err);
    if (st)
        goto done;
    size_t count;
    if (!joule_dims_count(rank, dims, &count) || count > SIZE_MAX / 16) {
        st = joule_fail(err, JOULE_ERR_PARSE, "%s: .npy shape overflows", path);
        goto done;
    }
    size_t nbytes = joule_dtype_bytes(dtype, count);
    uint64_t have = (uint64_t)sb.st_size - offset - hlen;
    if (have != nbytes) {
        st = joule_fail(err, JOULE_ERR_PARSE, "%s: .npy data is %" PRIu64 " bytes, its header says "
                        "%zu", path, have, nbytes);
        goto done;
    }
    st = joule_tensor_new(dtype, rank, dims, &t, err);
    if (st)
        goto done;
    if (nbytes && fread(t->owned, 1, nbytes, f) != nbytes) {
        st = joule_fail(err, JOULE_ERR_IO, "%s: cannot read .npy data", path);
        goto done;
    }
    if (dtype == JOULE_BOOL) { /* anything but 0 is true; kernels may rely on 0/1 */
        unsigned char *b = t->owned;
        for (size_t i = 0; i < count; i++)
            b[i] = b[i] != 0;
    }
done:
    fclose(f);
    free(header);
    if (st) {
        joule_tensor_free(t);
        return st;
    }
    *out = t;
    return JOULE_OK;
}

/* ---- writing ---- */

static bool descr_of(joule_dtype dt, char *buf, size_t size)
{
    for (size_t i = 0; i < sizeof npy_types / sizeof npy_types[0]; i++) {
        if (npy_types[i].dtype != dt)
            continue;
        snprintf(buf, size, "%c%c%u", npy_types[i].size == 1 ? '|' : '<', npy_types[i].kind,
                 npy_types[i].size);
        return true;
    }
    return false;
}

joule_status joule_npy_write(const char *path, const joule_tensor *t, joule_error *err)
{
    if (!path || !t)
        return joule_fail(err, JOULE_ERR_INVALID, "npy: no path or tensor");
    char descr[16];
    if (!descr_of(t->dtype, descr, sizeof descr))
        return joule_fail(err, JOULE_ERR_UNSUPPORTED, "%s: .npy cannot hold %s tensors", path,
                          joule_dtype_name(t->dtype));
    size_t count;
    if (t->rank < 0 || t->rank > JOULE_MAX_RANK || !joule_dims_count(t->rank, t->dims, &count) ||
        count != t->count || joule_dtype_bytes(t->dtype, count) != t->nbytes ||
        (t->nbytes && !t->data))
        return joule_fail(err, JOULE_ERR_INVALID, "%s: tensor size does not match its dims", path);

    /* header text, padded with spaces so that the data starts at a multiple of 64 */
    char dict[512];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                     descr);
    for (int d = 0; d < t->rank; d++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%s%" PRId64, d ? ", " : "", t->dims[d]);
    n += snprintf(dict + n, sizeof dict - (size_t)n, "%s), }", t->rank == 1 ? "," : "");
    size_t dict_len = (size_t)n;
    unsigned version = dict_len + 1 + 10 <= 65535 ? 1 : 2;
    size_t pre = version == 1 ? 10 : 12;
    size_t total = (pre + dict_len + 1 + 63) / 64 * 64;
    size_t hlen = total - pre;
    unsigned char head[640];
    memcpy(head, NPY_MAGIC, 6);
    head[6] = (unsigned char)version;
    head[7] = 0;
    head[8] = (unsigned char)(hlen & 0xff);
    head[9] = (unsigned char)(hlen >> 8 & 0xff);
    if (version == 2) {
        head[10] = (unsigned char)(hlen >> 16 & 0xff);
        head[11] = (unsigned char)(hlen >> 24 & 0xff);
    }
    memcpy(head + pre, dict, dict_len);
    memset(head + pre + dict_len, ' ', hlen - dict_len - 1);
    head[total - 1] = '\n';

    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp)
        return joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", path);
    snprintf(tmp, plen + 16, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        joule_status st = joule_fail(err, JOULE_ERR_IO, "%s: cannot create a temporary file: %s",
                                     path, strerror(errno));
        free(tmp);
        return st;
    }
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        joule_status st = joule_fail(err, JOULE_ERR_IO, "%s: %s", path, strerror(errno));
        close(fd);
        unlink(tmp);
        free(tmp);
        return st;
    }
    bool ok = fwrite(head, 1, total, f) == total;
    if (ok && t->nbytes)
        ok = fwrite(t->data, 1, t->nbytes, f) == t->nbytes;
    ok = ok && fflush(f) == 0 && fchmod(fileno(f), 0644) == 0 && fsync(fileno(f)) == 0;
    int saved = errno;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        if (ok)
            saved = errno;
        unlink(tmp);
        free(tmp);
        return joule_fail(err, JOULE_ERR_IO, "%s: cannot write: %s", path, strerror(saved));
    }
    free(tmp);
    return JOULE_OK;
}

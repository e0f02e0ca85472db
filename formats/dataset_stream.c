/* formats/dataset_stream.c: byte streams for the dataset readers. A file stream reads through
 * zlib's gzread, which inflates gzip data and passes other bytes through, so every reader takes
 * .gz files for free. A zip member stream reads one member of an .npz archive: stored members are
 * copied, deflated ones inflated with zlib in raw mode, and the CRC-32 is checked at the end. The
 * zip central directory (zip64 included) is parsed here, with every offset checked against the
 * file's size before it is used. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "formats/dataset_internal.h"

#define DS_CHUNK (64u * 1024u)

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

void ds_stream_close(ds_stream *s)
{
    if (s)
        s->close(s);
}

joule_status ds_read_exact(ds_stream *s, void *buf, size_t n, const char *what, joule_error *err)
{
    size_t got = 0;
    joule_status st = s->read(s, buf, n, &got, err);
    if (st)
        return st;
    if (got != n)
        return joule_fail(err, JOULE_ERR_PARSE, "%s: truncated: the data ends inside %s", s->label,
                          what);
    return JOULE_OK;
}

bool ds_plain_file_size(const char *path, uint64_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    unsigned char magic[2] = {0, 0};
    struct stat sb;
    bool plain = fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode) &&
                 !(fread(magic, 1, 2, f) == 2 && magic[0] == 0x1f && magic[1] == 0x8b);
    fclose(f);
    if (plain)
        *size = (uint64_t)sb.st_size;
    return plain;
}

/* ---- a file through gzread ---- */

typedef struct file_stream {
    ds_stream base;
    char *path;
    gzFile gz;
} file_stream;

/* zlib's message without the "path: " it starts with. */
static const char *gz_msg(const char *path, const char *msg)
{
    size_t n = strlen(path);
    if (msg && strncmp(msg, path, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ')
        return msg + n + 2;
    return msg ? msg : "unknown zlib error";
}

static joule_status file_read(ds_stream *s, void *buf, size_t n, size_t *got, joule_error *err)
{
    file_stream *fs = (file_stream *)s;
    unsigned char *p = buf;
    *got = 0;
    while (n > 0) {
        unsigned want = n > (1u << 30) ? (1u << 30) : (unsigned)n;
        int r = gzread(fs->gz, p, want);
        if (r < 0) {
            int code = 0;
            const char *msg = gzerror(fs->gz, &code);
            return joule_fail(err, code == Z_ERRNO ? JOULE_ERR_IO : JOULE_ERR_PARSE,
                              "%s: cannot read: %s", fs->path,
                              code == Z_ERRNO ? strerror(errno) : gz_msg(fs->path, msg));
        }
        if (r == 0) {
            /* a gzip stream cut short reads as a clean end in some zlib versions; ask */
            int code = 0;
            const char *msg = gzerror(fs->gz, &code);
            if (code != Z_OK && code != Z_STREAM_END)
                return joule_fail(err, JOULE_ERR_PARSE, "%s: truncated or corrupt gzip data: %s",
                                  fs->path, gz_msg(fs->path, msg));
            break;
        }
        p += r;
        *got += (size_t)r;
        n -= (size_t)r;
    }
    return JOULE_OK;
}

static joule_status file_rewind(ds_stream *s, joule_error *err)
{
    file_stream *fs = (file_stream *)s;
    if (gzrewind(fs->gz) != 0)
        return joule_fail(err, JOULE_ERR_IO, "%s: cannot rewind", fs->path);
    return JOULE_OK;
}

static void file_close(ds_stream *s)
{
    file_stream *fs = (file_stream *)s;
    if (fs->gz)
        gzclose_r(fs->gz);
    free(fs->path);
    free(fs);
}

joule_status ds_stream_file(const char *path, ds_stream **out, joule_error *err)
{
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return joule_fail(err, JOULE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return joule_fail(err, JOULE_ERR_IO, "%s: not a regular file", path);
    file_stream *fs = calloc(1, sizeof *fs);
    if (!fs || !(fs->path = dup_str(path))) {
        free(fs);
        return joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", path);
    }
    errno = 0;
    fs->gz = gzopen(path, "rb");
    if (!fs->gz) {
        int e = errno;
        free(fs->path);
        free(fs);
        return joule_fail(err, JOULE_ERR_IO, "%s: cannot open: %s", path,
                          e ? strerror(e) : "out of memory");
    }
    gzbuffer(fs->gz, DS_CHUNK);
    fs->base.label = fs->path;
    fs->base.read = file_read;
    fs->base.rewind = file_rewind;
    fs->base.close = file_close;
    *out = &fs->base;
    return JOULE_OK;
}

/* ---- zip central directory ---- */

static uint16_t rd16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const unsigned char *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static joule_status read_at(FILE *f, const char *path, uint64_t off, void *buf, size_t n,
                            joule_error *err)
{
    if (off > INT64_MAX || fseeko(f, (off_t)off, SEEK_SET) != 0)
        return joule_fail(err, JOULE_ERR_IO, "%s: cannot seek: %s", path, strerror(errno));
    if (n && fread(buf, 1, n, f) != n)
        return joule_fail(err, JOULE_ERR_PARSE, "%s: truncated zip archive", path);
    return JOULE_OK;
}

void ds_zip_free(ds_zip *z)
{
    if (!z)
        return;
    for (size_t i = 0; i < z->n; i++)
        free(z->members[i].name);
    free(z->members);
    free(z->path);
    free(z);
}

/* Finds the end-of-central-directory record in the file's last 64 KiB + 22 bytes. */
static joule_status find_eocd(FILE *f, const char *path, uint64_t size, uint64_t *pos,
                              unsigned char rec[22], joule_error *err)
{
    size_t tail = size < 65557 ? (size_t)size : 65557;
    if (tail < 22)
        return joule_fail(err, JOULE_ERR_PARSE, "%s: not a zip archive (too short)", path);
    unsigned char *buf = malloc(tail);
    if (!buf)
        return joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", path);
    joule_status st = read_at(f, path, size - tail, buf, tail, err);
    if (st) {
        free(buf);
        return st;
    }
    for (size_t i = tail - 22 + 1; i-- > 0;) {
        if (memcmp(buf + i, "PK\x05\x06", 4) == 0 && rd16(buf + i + 20) == tail - i - 22) {
            memcpy(rec, buf + i, 22);
            *pos = size - tail + i;
            free(buf);
            return JOULE_OK;
        }
    }
    free(buf);
    return joule_fail(err, JOULE_ERR_PARSE, "%s: zip archive has no end-of-central-directory "
                      "record (truncated?)", path);
}

/* Replaces 0xffffffff fields by their values from a zip64 extra field (header id 1). */
static joule_status zip64_extra(const unsigned char *extra, size_t len, ds_zip_member *m,
                                bool need_size, bool need_comp, bool need_off, const char *path,
                                joule_error *err)
{
    size_t p = 0;
    while (p + 4 <= len) {
        unsigned id = rd16(extra + p), n = rd16(extra + p + 2);
        if (p + 4 + n > len)
            break;
        if (id == 1) {
            const unsigned char *q = extra + p + 4;
            size_t left = n;
            if (need_size) {
                if (left < 8)
                    goto bad;
                m->size = rd64(q), q += 8, left -= 8;
            }
            if (need_comp) {
                if (left < 8)
                    goto bad;
                m->comp_size = rd64(q), q += 8, left -= 8;
            }
            if (need_off) {
                if (left < 8)
                    goto bad;
                m->local_offset = rd64(q);
            }
            return JOULE_OK;
        }
        p += 4 + n;
    }
    if (!need_size && !need_comp && !need_off)
        return JOULE_OK;
bad:
    return joule_fail(err, JOULE_ERR_PARSE, "%s: zip member '%s' lacks its zip64 sizes", path,
                      m->name);
}

joule_status ds_zip_open(const char *path, ds_zip **out, joule_error *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return joule_fail(err, JOULE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    joule_status st = JOULE_OK;
    unsigned char *cd = NULL;
    ds_zip *z = calloc(1, sizeof *z);
    struct stat sb;
    if (!z || !(z->path = dup_str(path))) {
        st = joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = joule_fail(err, JOULE_ERR_IO, "%s: not a regular file", path);
        goto done;
    }
    z->file_size = (uint64_t)sb.st_size;
    unsigned char eocd[22] = {0};
    uint64_t eocd_pos = 0;
    if ((st = find_eocd(f, path, z->file_size, &eocd_pos, eocd, err)))
        goto done;
    uint64_t n_entries = rd16(eocd + 10);
    uint64_t cd_size = rd32(eocd + 12), cd_off = rd32(eocd + 16);
    if (rd16(eocd + 4) != 0 || rd16(eocd + 6) != 0 || rd16(eocd + 8) != rd16(eocd + 10)) {
        st = joule_fail(err, JOULE_ERR_UNSUPPORTED, "%s: multi-disk zip archives are not "
                        "supported", path);
        goto done;
    }
    if (n_entries == 0xffff || cd_size == 0xffffffffu || cd_off == 0xffffffffu) {
        /* zip64: a locator just before the EOCD points to the zip64 EOCD record */
        unsigned char loc[20], rec[56];
        if (eocd_pos < 20 || (st = read_at(f, path, eocd_pos - 20, loc, 20, err)))
            goto z64bad;
        if (memcmp(loc, "PK\x06\x07", 4) != 0)
            goto z64bad;
        uint64_t rec_off = rd64(loc + 8);
        if (rec_off > z->file_size - 56 || (st = read_at(f, path, rec_off, rec, 56, err)) ||
            memcmp(rec, "PK\x06\x06", 4) != 0)
            goto z64bad;
        n_entries = rd64(rec + 32);
        cd_size = rd64(rec + 40);
        cd_off = rd64(rec + 48);
        goto z64ok;
    z64bad:
        st = joule_fail(err, JOULE_ERR_PARSE, "%s: bad zip64 end-of-central-directory record",
                        path);
        goto done;
    }
z64ok:
    if (cd_off > z->file_size || cd_size > z->file_size - cd_off || cd_size > (64u << 20)) {
        st = joule_fail(err, JOULE_ERR_PARSE, "%s: zip central directory out of range "
                        "(truncated archive?)", path);
        goto done;
    }
    if (n_entries > cd_size / 46) {
        st = joule_fail(err, JOULE_ERR_PARSE, "%s: zip central directory is too short for its "
                        "%" PRIu64 " entries", path, n_entries);
        goto done;
    }
    cd = malloc(cd_size ? (size_t)cd_size : 1);
    z->members = calloc(n_entries ? (size_t)n_entries : 1, sizeof *z->members);
    if (!cd || !z->members) {
        st = joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    if ((st = read_at(f, path, cd_off, cd, (size_t)cd_size, err)))
        goto done;
    size_t p = 0;
    for (uint64_t e = 0; e < n_entries; e++) {
        if (p + 46 > cd_size || memcmp(cd + p, "PK\x01\x02", 4) != 0) {
            st = joule_fail(err, JOULE_ERR_PARSE, "%s: bad zip central directory entry %" PRIu64,
                            path, e);
            goto done;
        }
        const unsigned char *h = cd + p;
        size_t name_len = rd16(h + 28), extra_len = rd16(h + 30), comment_len = rd16(h + 32);
        if (p + 46 + name_len + extra_len + comment_len > cd_size) {
            st = joule_fail(err, JOULE_ERR_PARSE, "%s: bad zip central directory entry %" PRIu64,
                            path, e);
            goto done;
        }
        ds_zip_member *m = &z->members[z->n];
        m->name = malloc(name_len + 1);
        if (!m->name) {
            st = joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", path);
            goto done;
        }
        memcpy(m->name, h + 46, name_len);
        m->name[name_len] = 0;
        z->n++;
        unsigned flags = rd16(h + 8);
        m->method = rd16(h + 10);
        m->crc = rd32(h + 16);
        m->comp_size = rd32(h + 20);
        m->size = rd32(h + 24);
        m->local_offset = rd32(h + 42);
        if ((st = zip64_extra(h + 46 + name_len, extra_len, m, m->size == 0xffffffffu,
                              m->comp_size == 0xffffffffu, m->local_offset == 0xffffffffu, path,
                              err)))
            goto done;
        if (flags & 1u) {
            st = joule_fail(err, JOULE_ERR_UNSUPPORTED, "%s: zip member '%s' is encrypted", path,
                            m->name);
            goto done;
        }
        if (m->local_offset > z->file_size || m->comp_size > z->file_size - m->local_offset) {
            st = joule_fail(err, JOULE_ERR_PARSE, "%s: zip member '%s' lies outside the file "
                            "(truncated archive?)", path, m->name);
            goto done;
        }
        p += 46 + name_len + extra_len + comment_len;
    }
done:
    free(cd);
    fclose(f);
    if (st) {
        ds_zip_free(z);
        return st;
    }
    *out = z;
    return JOULE_OK;
}

size_t ds_zip_find(const ds_zip *z, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < z->n; i++) {
        const char *m = z->members[i].name;
        if (strcmp(m, name) == 0 || (strncmp(m, name, len) == 0 && strcmp(m + len, ".npy") == 0))
            return i;
    }
    return SIZE_MAX;
}

/* ---- one zip member ---- */

typedef struct zip_stream {
    ds_stream base;
    char *label;
    FILE *f;
    ds_zip_member m;
    uint64_t data_off;  /* where the member's (compressed) bytes start */
    uint64_t cpos;      /* compressed bytes consumed */
    uint64_t upos;      /* uncompressed bytes produced */
    uint32_t crc;
    bool z_init, z_end;
    z_stream z;
    unsigned char *in;
} zip_stream;

static joule_status zip_fill(zip_stream *zs, joule_error *err)
{
    uint64_t left = zs->m.comp_size - zs->cpos;
    size_t want = left < DS_CHUNK ? (size_t)left : DS_CHUNK;
    if (want == 0)
        return joule_fail(err, JOULE_ERR_PARSE, "%s: truncated: deflate data ends early",
                          zs->label);
    if (fseeko(zs->f, (off_t)(zs->data_off + zs->cpos), SEEK_SET) != 0)
        return joule_fail(err, JOULE_ERR_IO, "%s: cannot seek: %s", zs->label, strerror(errno));
    size_t got = fread(zs->in, 1, want, zs->f);
    if (got != want)
        return joule_fail(err, JOULE_ERR_PARSE, "%s: truncated zip member", zs->label);
    zs->cpos += got;
    zs->z.next_in = zs->in;
    zs->z.avail_in = (uInt)got;
    return JOULE_OK;
}

static joule_status zip_read(ds_stream *s, void *buf, size_t n, size_t *got, joule_error *err)
{
    zip_stream *zs = (zip_stream *)s;
    *got = 0;
    uint64_t left = zs->m.size - zs->upos;
    if (n > left)
        n = (size_t)left;
    unsigned char *p = buf;
    if (zs->m.method == 0) {
        if (n && fseeko(zs->f, (off_t)(zs->data_off + zs->upos), SEEK_SET) != 0)
            return joule_fail(err, JOULE_ERR_IO, "%s: cannot seek: %s", zs->label,
                              strerror(errno));
        size_t r = n ? fread(p, 1, n, zs->f) : 0;
        if (r != n)
            return joule_fail(err, JOULE_ERR_PARSE, "%s: truncated zip member", zs->label);
        *got = r;
    } else {
        while (*got < n) {
            if (zs->z_end)
                return joule_fail(err, JOULE_ERR_PARSE, "%s: deflate data ends before the "
                                  "member's size", zs->label);
            if (zs->z.avail_in == 0) {
                joule_status st = zip_fill(zs, err);
                if (st)
                    return st;
            }
            size_t want = n - *got;
            zs->z.next_out = p + *got;
            zs->z.avail_out = want > (1u << 30) ? (1u << 30) : (uInt)want;
            uInt before = zs->z.avail_out;
            int r = inflate(&zs->z, Z_NO_FLUSH);
            if (r == Z_STREAM_END)
                zs->z_end = true;
            else if (r != Z_OK && r != Z_BUF_ERROR)
                return joule_fail(err, JOULE_ERR_PARSE, "%s: corrupt deflate data: %s",
                                  zs->label, zs->z.msg ? zs->z.msg : "inflate failed");
            *got += before - zs->z.avail_out;
        }
    }
    for (size_t off = 0; off < *got;) {
        size_t k = *got - off > (1u << 30) ? (1u << 30) : *got - off;
        zs->crc = (uint32_t)crc32(zs->crc, p + off, (uInt)k);
        off += k;
    }
    zs->upos += *got;
    if (zs->upos == zs->m.size && zs->crc != zs->m.crc)
        return joule_fail(err, JOULE_ERR_PARSE, "%s: CRC-32 mismatch (corrupt archive)",
                          zs->label);
    return JOULE_OK;
}

static joule_status zip_reset(zip_stream *zs, joule_error *err)
{
    zs->cpos = zs->upos = 0;
    zs->crc = (uint32_t)crc32(0L, Z_NULL, 0);
    zs->z_end = false;
    if (zs->m.method == 8) {
        if (zs->z_init) {
            if (inflateReset(&zs->z) != Z_OK)
                return joule_fail(err, JOULE_ERR_NOMEM, "%s: cannot reset zlib", zs->label);
        } else {
            memset(&zs->z, 0, sizeof zs->z);
            if (inflateInit2(&zs->z, -MAX_WBITS) != Z_OK)
                return joule_fail(err, JOULE_ERR_NOMEM, "%s: cannot start zlib", zs->label);
            zs->z_init = true;
        }
        zs->z.avail_in = 0;
    }
    return JOULE_OK;
}

static joule_status zip_rewind(ds_stream *s, joule_error *err)
{
    return zip_reset((zip_stream *)s, err);
}

static void zip_close(ds_stream *s)
{
    zip_stream *zs = (zip_stream *)s;
    if (zs->z_init)
        inflateEnd(&zs->z);
    if (zs->f)
        fclose(zs->f);
    free(zs->in);
    free(zs->m.name);
    free(zs->label);
    free(zs);
}

joule_status ds_zip_stream(const ds_zip *z, size_t i, ds_stream **out, joule_error *err)
{
    *out = NULL;
    const ds_zip_member *m = &z->members[i];
    if (m->method != 0 && m->method != 8)
        return joule_fail(err, JOULE_ERR_UNSUPPORTED, "%s: zip member '%s' uses compression "
                          "method %u (only stored and deflated are supported)", z->path, m->name,
                          m->method);
    zip_stream *zs = calloc(1, sizeof *zs);
    size_t llen = strlen(z->path) + strlen(m->name) + 2;
    if (!zs || !(zs->label = malloc(llen)) || !(zs->m.name = dup_str(m->name)) ||
        !(zs->in = malloc(DS_CHUNK))) {
        if (zs) {
            free(zs->label);
            free(zs->m.name);
        }
        free(zs);
        return joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", z->path);
    }
    snprintf(zs->label, llen, "%s:%s", z->path, m->name);
    char *name = zs->m.name;
    zs->m = *m;
    zs->m.name = name;
    zs->base.label = zs->label;
    zs->base.read = zip_read;
    zs->base.rewind = zip_rewind;
    zs->base.close = zip_close;
    joule_status st = JOULE_OK;
    zs->f = fopen(z->path, "rb");
    if (!zs->f) {
        st = joule_fail(err, JOULE_ERR_IO, "%s: cannot open: %s", z->path, strerror(errno));
        goto fail;
    }
    /* the local header repeats name and extra field with its own lengths */
    unsigned char lh[30];
    if ((st = read_at(zs->f, zs->label, m->local_offset, lh, 30, err)))
        goto fail;
    if (memcmp(lh, "PK\x03\x04", 4) != 0) {
        st = joule_fail(err, JOULE_ERR_PARSE, "%s: bad zip local header", zs->label);
        goto fail;
    }
    zs->data_off = m->local_offset + 30 + rd16(lh + 26) + rd16(lh + 28);
    if (zs->data_off > z->file_size || m->comp_size > z->file_size - zs->data_off) {
        st = joule_fail(err, JOULE_ERR_PARSE, "%s: truncated zip member", zs->label);
        goto fail;
    }
    if (m->method == 0 && m->comp_size != m->size) {
        st = joule_fail(err, JOULE_ERR_PARSE, "%s: stored zip member with differing sizes",
                        zs->label);
        goto fail;
    }
    if ((st = zip_reset(zs, err)))
        goto fail;
    *out = &zs->base;
    return JOULE_OK;
fail:
    zip_close(&zs->base);
    return st;
}

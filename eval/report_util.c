/* eval/report_util.c: the report writers' shared plumbing (report_internal.h): a text buffer that
 * fails once and stays failed, escaping for HTML and Markdown, number formatting and atomic
 * file writes. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report_internal.h"

void jr_init(jr_buf *b)
{
    memset(b, 0, sizeof *b);
}

void jr_free(jr_buf *b)
{
    free(b->s);
    memset(b, 0, sizeof *b);
}

static bool jr_reserve(jr_buf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (extra > SIZE_MAX - b->len - 1) {
        b->failed = true;
        return false;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    char *s = realloc(b->s, cap);
    if (!s) {
        b->failed = true;
        return false;
    }
    b->s = s;
    b->cap = cap;
    return true;
}

void jr_addn(jr_buf *b, const char *s, size_t n)
{
    if (!jr_reserve(b, n))
        return;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

void jr_add(jr_buf *b, const char *s)
{
    if (s)
        jr_addn(b, s, strlen(s));
}

void jr_addf(jr_buf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        jr_addn(b, small, (size_t)n);
        return;
    }
    if (!jr_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void jr_add_html(jr_buf *b, const char *s)
{
    if (!s)
        return;
    for (const char *p = s; *p; p++) {
        switch (*p) {
        case '&': jr_add(b, "&amp;"); break;
        case '<': jr_add(b, "&lt;"); break;
        case '>': jr_add(b, "&gt;"); break;
        case '"': jr_add(b, "&quot;"); break;
        case '\'': jr_add(b, "&#39;"); break;
        default:
            /* control characters are not allowed in XML 1.0 (SVG): show them as '?' */
            if ((unsigned char)*p < 0x20 && *p != '\t' && *p != '\n')
                jr_addn(b, "?", 1);
            else
                jr_addn(b, p, 1);
        }
    }
}

void jr_add_md(jr_buf *b, const char *s)
{
    if (!s)
        return;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f)
            jr_addn(b, " ", 1);
        else if (c == '<')
            jr_add(b, "&lt;");
        else if (c == '>')
            jr_add(b, "&gt;");
        else if (c == '&')
            jr_add(b, "&amp;");
        else if (strchr("\\`*_[]|~", c)) {
            char e[2] = {'\\', (char)c};
            jr_addn(b, e, 2);
        } else
            jr_addn(b, p, 1);
    }
}

joule_status jr_finish(jr_buf *b, char **out, const char *what, joule_error *err)
{
    *out = NULL;
    if (b->failed || !jr_reserve(b, 0)) {
        jr_free(b);
        return joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", what);
    }
    *out = b->s;
    b->s = NULL;
    b->len = b->cap = 0;
    return JOULE_OK;
}

void jr_fmt_bytes(char *out, size_t size, uint64_t n)
{
    if (n >= 1000000000ull)
        snprintf(out, size, "%.2f GB", (double)n / 1e9);
    else if (n >= 1000000ull)
        snprintf(out, size, "%.2f MB", (double)n / 1e6);
    else if (n >= 10000ull)
        snprintf(out, size, "%.1f kB", (double)n / 1e3);
    else
        snprintf(out, size, "%llu B", (unsigned long long)n);
}

void jr_fmt_count(char *out, size_t size, uint64_t n)
{
    if (n >= 1000000000ull)
        snprintf(out, size, "%.2fG", (double)n / 1e9);
    else if (n >= 1000000ull)
        snprintf(out, size, "%.2fM", (double)n / 1e6);
    else if (n >= 10000ull)
        snprintf(out, size, "%.1fk", (double)n / 1e3);
    else
        snprintf(out, size, "%llu", (unsigned long long)n);
}

void jr_fmt_pct(char *out, size_t size, double frac, int decimals)
{
    snprintf(out, size, "%.*f%%", decimals, 100.0 * frac);
}

void jr_fmt_estimate(char *out, size_t size, const joule_estimate *e, double mul,
                     const char *numfmt, const char *unit)
{
    if (!e->measured || !isfinite(e->value)) {
        snprintf(out, size, "not measured");
        return;
    }
    char v[64], lo[64], hi[64];
    if (!numfmt) /* also tells gcc's format checks under -fsanitize that it is never NULL */
        numfmt = "%g";
    snprintf(v, sizeof v, numfmt, e->value * mul);
    if (e->lo == e->value && e->hi == e->value) {
        snprintf(out, size, "%s%s", v, unit);
        return;
    }
    snprintf(lo, sizeof lo, numfmt, e->lo * mul);
    snprintf(hi, sizeof hi, numfmt, e->hi * mul);
    snprintf(out, size, "%s%s [%s, %s]", v, unit, lo, hi);
}

joule_status jr_write_temp(const char *path, const char *text, char **tmp_out, joule_error *err)
{
    *tmp_out = NULL;
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    if (!tmp)
        return joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", path);
    snprintf(tmp, n, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return joule_fail(err, JOULE_ERR_IO, "%s: cannot create a file there: %s", path,
                          strerror(e));
    }
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    int e = errno;
    bool ok = off == len && fchmod(fd, 0644) == 0 && fsync(fd) == 0;
    if (!ok)
        e = errno ? errno : EIO;
    if (close(fd) != 0 && ok) {
        ok = false;
        e = errno;
    }
    if (!ok) {
        unlink(tmp);
        free(tmp);
        return joule_fail(err, JOULE_ERR_IO, "%s: cannot write: %s", path, strerror(e));
    }
    *tmp_out = tmp;
    return JOULE_OK;
}

joule_status jr_write_atomic(const char *path, const char *text, joule_error *err)
{
    char *tmp;
    joule_status st = jr_write_temp(path, text, &tmp, err);
    if (st)
        return st;
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        free(tmp);
        return joule_fail(err, JOULE_ERR_IO, "%s: cannot rename into place: %s", path,
                          strerror(e));
    }
    free(tmp);
    return JOULE_OK;
}

joule_status jr_mkdirs(const char *dir, joule_error *err)
{
    size_t n = strlen(dir);
    if (n == 0)
        return JOULE_OK;
    char *p = malloc(n + 1);
    if (!p)
        return joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", dir);
    memcpy(p, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != 0)
            continue;
        char c = p[i];
        p[i] = 0;
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            int e = errno;
            joule_status st = joule_fail(err, JOULE_ERR_IO, "%s: cannot create folder: %s", p,
                                         strerror(e));
            free(p);
            return st;
        }
        p[i] = c;
    }
    struct stat sb;
    bool isdir = stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
    free(p);
    if (!isdir)
        return joule_fail(err, JOULE_ERR_IO, "%s: not a folder", dir);
    return JOULE_OK;
}

joule_status jr_read_file(const char *path, char **out, size_t *len, joule_error *err)
{
    *out = NULL;
    if (len)
        *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return joule_fail(err, JOULE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    jr_buf b;
    jr_init(&b);
    char chunk[65536];
    size_t r;
    while ((r = fread(chunk, 1, sizeof chunk, f)) > 0)
        jr_addn(&b, chunk, r);
    bool bad = ferror(f) != 0;
    fclose(f);
    if (bad) {
        jr_free(&b);
        return joule_fail(err, JOULE_ERR_IO, "%s: cannot read", path);
    }
    size_t n = b.len;
    joule_status st = jr_finish(&b, out, path, err);
    if (!st && len)
        *len = n;
    return st;
}

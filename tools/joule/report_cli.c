/* tools/joule/report_cli.c: helpers shared by `joule report`, `sweep`, `batch` and `demo`
 * (report_cli.h). */
#include "report_cli.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *rc_opt(int argc, char **argv, int *i, const char *opt, bool *missing)
{
    size_t n = strlen(opt);
    if (strncmp(argv[*i], opt, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] != 0)
        return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

bool rc_parse_size(const char *v, size_t lo, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || end == v || *end || v[0] == '-' || n < lo || n > (unsigned long long)SIZE_MAX / 2)
        return false;
    *out = (size_t)n;
    return true;
}

bool rc_parse_accuracy(const char *v, double *out)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    bool pct = *end == '%' && end[1] == 0;
    if (pct)
        d /= 100;
    if (errno || end == v || (*end && !pct) || !(d >= 0 && d <= 1))
        return false;
    *out = d;
    return true;
}

bool rc_parse_fractions(const char *v, double *out, size_t max, size_t *n)
{
    *n = 0;
    const char *p = v;
    for (;;) {
        char *end;
        errno = 0;
        double d = strtod(p, &end);
        if (errno || end == p || !(d >= 0 && d < 1) || *n == max)
            return false;
        out[(*n)++] = d;
        if (*end == 0)
            return true;
        if (*end != ',')
            return false;
        p = end + 1;
    }
}

int rc_mkdirs(const char *dir)
{
    char p[4096];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != 0)
            continue;
        char c = *s;
        *s = 0;
        if (mkdir(p, 0777) != 0 && errno != EEXIST)
            return -1;
        *s = c;
        if (!c)
            break;
    }
    struct stat sb;
    if (stat(p, &sb) != 0)
        return -1;
    if (!S_ISDIR(sb.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

void rc_progress_stage(void *user, const char *stage, size_t done, size_t total)
{
    rc_progress *p = user;
    if (!p->started || strcmp(p->stage, stage) != 0) {
        if (p->started)
            progress_finish(&p->pb);
        progress_start(&p->pb, stage, total, strcmp(stage, "accuracy") == 0 ? "img" : "it");
        p->stage = stage;
        p->started = true;
    }
    progress_update(&p->pb, done);
}

void rc_progress_done(rc_progress *p)
{
    if (p->started)
        progress_finish(&p->pb);
    p->started = false;
}

static void fmt_est(char *out, size_t size, const joule_estimate *e, double mul, const char *fmt,
                    const char *unit)
{
    if (!e->measured) {
        snprintf(out, size, "not measured");
        return;
    }
    char v[40], lo[40], hi[40];
    snprintf(v, sizeof v, fmt, e->value * mul);
    snprintf(lo, sizeof lo, fmt, e->lo * mul);
    snprintf(hi, sizeof hi, fmt, e->hi * mul);
    if (e->lo == e->value && e->hi == e->value)
        snprintf(out, size, "%s%s", v, unit);
    else
        snprintf(out, size, "%s%s [%s, %s]", v, unit, lo, hi);
}

void rc_print_summary(FILE *f, const joule_report_doc *d, const char *dir)
{
    const joule_report_model *a = &d->base, *b = &d->cand;
    double pct = a->file_bytes ? 100.0 * ((double)b->file_bytes - (double)a->file_bytes) /
                                     (double)a->file_bytes
                               : 0;
    fprintf(f, "size      %.1f kB -> %.1f kB (%+.1f%%), weights %.1f%% -> %.1f%% zeros\n",
            (double)a->file_bytes / 1e3, (double)b->file_bytes / 1e3, pct,
            100 * a->weight_sparsity, 100 * b->weight_sparsity);
    char x[160], y[160];
    fmt_est(x, sizeof x, &a->top1, 100, "%.2f", "%");
    fmt_est(y, sizeof y, &b->top1, 100, "%.2f", "%");
    fprintf(f, "top-1     %s -> %s", x, y);
    if (a->top1.measured && b->top1.measured)
        fprintf(f, " (%+.2f pt", 100 * (b->top1.value - a->top1.value));
    if (d->agreement.measured)
        fprintf(f, "%sagreement %.2f%%, %zu images)",
                a->top1.measured && b->top1.measured ? ", " : " (", 100 * d->agreement.value,
                d->images);
    else if (a->top1.measured && b->top1.measured)
        fprintf(f, ")");
    fprintf(f, "\n");
    fmt_est(x, sizeof x, &a->latency_ms, 1, "%.3g", " ms");
    fmt_est(y, sizeof y, &b->latency_ms, 1, "%.3g", " ms");
    fprintf(f, "latency   %s -> %s", x, y);
    if (a->latency_ms.measured && b->latency_ms.measured && a->latency_ms.value > 0)
        fprintf(f, " (%.2fx)", b->latency_ms.value / a->latency_ms.value);
    fprintf(f, "\n");
    fmt_est(x, sizeof x, &a->energy_j, 1e3, "%.3g", " mJ");
    fmt_est(y, sizeof y, &b->energy_j, 1e3, "%.3g", " mJ");
    fprintf(f, "energy    %s -> %s", x, y);
    if (d->energy_ratio.measured)
        fprintf(f, " (%.2fx%s)", d->energy_ratio.value, a->energy_estimated ? ", estimated" : "");
    fprintf(f, "\n");
    if (dir)
        fprintf(f, "report    %s%sreport.html (and report.md, report.json)\n", dir,
                dir[0] && dir[strlen(dir) - 1] == '/' ? "" : "/");
}

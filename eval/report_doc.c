/* eval/report_doc.c: the report document itself (joule/report.h): making and freeing it, copying
 * rows and sweep points in, the accuracy/size frontier of a sweep, and the order-statistic
 * interval used for median latencies. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "report_internal.h"

joule_status joule_report_doc_set(char **field, const char *s, joule_error *err)
{
    char *c = NULL;
    if (s && !(c = strdup(s)))
        return joule_fail(err, JOULE_ERR_NOMEM, "report: out of memory");
    free(*field);
    *field = c;
    return JOULE_OK;
}

joule_status joule_report_doc_new(const char *title, const char *tool, joule_report_doc **out,
                                  joule_error *err)
{
    *out = NULL;
    joule_report_doc *d = calloc(1, sizeof *d);
    if (!d)
        return joule_fail(err, JOULE_ERR_NOMEM, "report: out of memory");
    d->mcnemar_p = 1;
    char now[32];
    time_t t = time(NULL);
    struct tm tm;
    if (gmtime_r(&t, &tm) && strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        now[0] = 0;
    if (joule_report_doc_set(&d->title, title, err) || joule_report_doc_set(&d->tool, tool, err) ||
        joule_report_doc_set(&d->created, now, err)) {
        joule_report_doc_free(d);
        return JOULE_ERR_NOMEM;
    }
    *out = d;
    return JOULE_OK;
}

static void model_free(joule_report_model *m)
{
    free(m->path);
    free(m->energy_source);
}

static void layer_free(joule_report_layer *l)
{
    free(l->name);
    free(l->op_type);
}

static void point_free(joule_sweep_point *p)
{
    free(p->label);
    free(p->quant);
    free(p->layer);
    free(p->error);
}

void joule_report_doc_free(joule_report_doc *d)
{
    if (!d)
        return;
    free(d->title);
    free(d->created);
    free(d->tool);
    free(d->recipe);
    free(d->recipe_hash);
    free(d->data);
    model_free(&d->base);
    model_free(&d->cand);
    for (size_t i = 0; i < d->n_layers; i++)
        layer_free(&d->layers[i]);
    free(d->layers);
    for (size_t i = 0; i < d->n_sweep; i++)
        point_free(&d->sweep[i]);
    free(d->sweep);
    free(d->changes_json);
    free(d->energy_json);
    free(d->energy_md);
    free(d->energy_html);
    for (size_t i = 0; i < d->n_notes; i++)
        free(d->notes[i]);
    free(d->notes);
    free(d);
}

/* Grows *arr (of n elements of size sz) by one zeroed element; NULL when out of memory. */
static void *grow(void **arr, size_t n, size_t sz)
{
    if (n >= SIZE_MAX / sz - 1)
        return NULL;
    char *a = realloc(*arr, (n + 1) * sz);
    if (!a)
        return NULL;
    *arr = a;
    memset(a + n * sz, 0, sz);
    return a + n * sz;
}

joule_status joule_report_doc_note(joule_report_doc *d, joule_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return joule_fail(err, JOULE_ERR_INVALID, "report: bad note format");
    char *s = malloc((size_t)n + 1);
    char **slot = s ? grow((void **)&d->notes, d->n_notes, sizeof *d->notes) : NULL;
    if (!slot) {
        free(s);
        return joule_fail(err, JOULE_ERR_NOMEM, "report: out of memory");
    }
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    *slot = s;
    d->n_notes++;
    return JOULE_OK;
}

joule_status joule_report_doc_add_layer(joule_report_doc *d, const joule_report_layer *row,
                                        joule_error *err)
{
    joule_report_layer *l = grow((void **)&d->layers, d->n_layers, sizeof *d->layers);
    if (!l)
        return joule_fail(err, JOULE_ERR_NOMEM, "report: out of memory");
    *l = *row;
    l->name = l->op_type = NULL;
    if (joule_report_doc_set(&l->name, row->name, err) ||
        joule_report_doc_set(&l->op_type, row->op_type, err)) {
        layer_free(l);
        return JOULE_ERR_NOMEM;
    }
    d->n_layers++;
    return JOULE_OK;
}

joule_status joule_report_doc_add_point(joule_report_doc *d, const joule_sweep_point *pt,
                                        joule_error *err)
{
    joule_sweep_point *p = grow((void **)&d->sweep, d->n_sweep, sizeof *d->sweep);
    if (!p)
        return joule_fail(err, JOULE_ERR_NOMEM, "report: out of memory");
    *p = *pt;
    p->label = p->quant = p->layer = p->error = NULL;
    if (joule_report_doc_set(&p->label, pt->label, err) ||
        joule_report_doc_set(&p->quant, pt->quant, err) ||
        joule_report_doc_set(&p->layer, pt->layer, err) ||
        joule_report_doc_set(&p->error, pt->error, err)) {
        point_free(p);
        return JOULE_ERR_NOMEM;
    }
    d->n_sweep++;
    return JOULE_OK;
}

static bool usable(const joule_sweep_point *p)
{
    return !p->error && p->top1.measured && p->file_bytes > 0;
}

void joule_report_doc_mark_frontier(joule_report_doc *d)
{
    for (size_t i = 0; i < d->n_sweep; i++) {
        joule_sweep_point *p = &d->sweep[i];
        p->on_frontier = usable(p);
        for (size_t j = 0; j < d->n_sweep && p->on_frontier; j++) {
            const joule_sweep_point *q = &d->sweep[j];
            if (j == i || !usable(q))
                continue;
            bool no_worse = q->file_bytes <= p->file_bytes && q->top1.value >= p->top1.value;
            bool better = q->file_bytes < p->file_bytes || q->top1.value > p->top1.value;
            if (no_worse && better)
                p->on_frontier = false;
        }
    }
}

void joule_median_interval(size_t n, size_t *lo, size_t *hi)
{
    *lo = 0;
    *hi = n ? n - 1 : 0;
    if (n < 6)
        return;
    /* Largest k with P(B <= k - 1) <= 0.025 for B ~ Binomial(n, 1/2): then
     * P(X_(k) <= median <= X_(n-k+1)) >= 0.95 (1-based order statistics). */
    double logp = -(double)n * log(2.0); /* log P(B = 0) */
    double cdf = exp(logp);
    size_t k = 0; /* P(B <= k - 1) with k = 0 is 0 */
    for (size_t j = 0; j < n / 2; j++) {
        if (cdf > 0.025)
            break;
        k = j + 1; /* P(B <= j) <= 0.025, so k = j + 1 qualifies */
        logp += log((double)(n - j)) - log((double)(j + 1));
        cdf += exp(logp);
    }
    if (k == 0)
        return;
    *lo = k - 1;
    *hi = n - k;
}

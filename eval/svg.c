/* eval/svg.c: the report's charts as inline SVG, written in C: before/after bar pairs with 95%
 * whiskers, per-layer sparsity bars coloured by precision, and a sweep's accuracy/size frontier
 * (or a sensitivity ranking). Plain SVG 1.1 elements with presentation attributes only: no
 * scripts, no CSS files, no fonts beyond the viewer's generic sans-serif. Every model-provided
 * string is escaped; long names are shortened, with the full name in a <title> tooltip. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report_internal.h"

#define FONT "font-family=\"sans-serif\""
#define C_BEFORE "#9aa0a6"
#define C_AFTER "#1a7f72"
#define C_AXIS "#5f6368"
#define C_GRID "#e8eaed"
#define C_TEXT "#202124"
#define C_MUTED "#80868b"

const char *jr_dtype_colour(joule_dtype t)
{
    switch (t) {
    case JOULE_F32: return "#4285f4";
    case JOULE_F64: return "#3367d6";
    case JOULE_F16: return "#a142f4";
    case JOULE_BF16: return "#c58af9";
    case JOULE_I8: return "#e37400";
    case JOULE_U8: return "#f29900";
    case JOULE_I4:
    case JOULE_U4: return "#d93025";
    case JOULE_I32: return "#188038";
    default: return "#9aa0a6";
    }
}

/* A "nice" tick step (1, 2 or 5 times a power of ten) giving about n ticks over range. */
static double nice_step(double range, int n)
{
    if (!(range > 0) || !isfinite(range))
        return 1;
    double raw = range / n, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

/* A tick label: up to 4 significant digits, no trailing zeros. */
static void tick_label(char *out, size_t size, double v, double step)
{
    if (fabs(v) < step * 1e-6)
        v = 0;
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (dec > 6)
        dec = 6;
    snprintf(out, size, "%.*f", dec, v);
}

/* Text shortened to max characters (UTF-8 aware: never cuts inside a character) with "..." */
static void add_short(jr_buf *b, const char *s, size_t max)
{
    if (!s)
        return;
    size_t chars = 0, cut = 0, i = 0;
    for (; s[i]; i++) {
        if (((unsigned char)s[i] & 0xc0) != 0x80) {
            if (chars == max - 1)
                cut = i;
            chars++;
        }
    }
    if (chars <= max) {
        jr_add_html(b, s);
        return;
    }
    char *t = malloc(cut + 4);
    if (!t) {
        b->failed = true;
        return;
    }
    memcpy(t, s, cut);
    memcpy(t + cut, "...", 4);
    jr_add_html(b, t);
    free(t);
}

static void svg_open(jr_buf *b, int w, int h, const char *title)
{
    jr_addf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "viewBox=\"0 0 %d %d\" role=\"img\" " FONT " font-size=\"12\">",
            w, h, w, h);
    jr_add(b, "<title>");
    jr_add_html(b, title);
    jr_add(b, "</title>");
    jr_addf(b, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>", w, h);
    jr_addf(b, "<text x=\"%d\" y=\"18\" text-anchor=\"middle\" font-size=\"14\" "
               "font-weight=\"bold\" fill=\"" C_TEXT "\">", w / 2);
    jr_add_html(b, title);
    jr_add(b, "</text>");
}

static void whisker(jr_buf *b, double x, double y_lo, double y_hi)
{
    jr_addf(b, "<g stroke=\"" C_TEXT "\" stroke-width=\"1.5\">"
               "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
               "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
               "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/></g>",
            x, y_lo, x, y_hi, x - 6, y_lo, x + 6, y_lo, x - 6, y_hi, x + 6, y_hi);
}

void jr_svg_pair(jr_buf *b, const char *title, const char *unit, const joule_estimate *before,
                 const joule_estimate *after, double mul, const char *valfmt, bool zero_based)
{
    const int W = 270, H = 230, left = 56, right = 14, top = 34, bottom = 40;
    const int plot_w = W - left - right, plot_h = H - top - bottom;
    const joule_estimate *e[2] = {before, after};
    const char *names[2] = {"before", "after"}, *fills[2] = {C_BEFORE, C_AFTER};
    if (!valfmt) /* also tells gcc's format checks under -fsanitize that it is never NULL */
        valfmt = "%g";
    char full[160];
    snprintf(full, sizeof full, "%s%s%s%s", title, unit && *unit ? " (" : "", unit ? unit : "",
             unit && *unit ? ")" : "");
    svg_open(b, W, H, full);

    bool any = false;
    double vmin = INFINITY, vmax = -INFINITY;
    for (int i = 0; i < 2; i++) {
        if (!e[i]->measured || !isfinite(e[i]->value))
            continue;
        any = true;
        double lo = fmin(e[i]->lo, e[i]->value) * mul, hi = fmax(e[i]->hi, e[i]->value) * mul;
        if (isfinite(lo))
            vmin = fmin(vmin, lo);
        if (isfinite(hi))
            vmax = fmax(vmax, hi);
    }
    if (!any) {
        jr_addf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"" C_MUTED "\">"
                   "not measured</text></svg>", W / 2, H / 2);
        return;
    }
    double y0, y1;
    if (zero_based || vmin <= 0) {
        y0 = 0;
        y1 = vmax > 0 ? vmax * 1.15 : 1;
    } else {
        double span = vmax - vmin;
        if (span <= 0)
            span = fabs(vmax) * 0.02 + 1e-9;
        y0 = vmin - span * 0.6;
        y1 = vmax + span * 0.45;
        if (y0 < 0)
            y0 = 0;
    }
    double step = nice_step(y1 - y0, 4);
    y0 = floor(y0 / step) * step;
    y1 = ceil(y1 / step) * step;
    if (unit && !strcmp(unit, "%") && y1 > 100) /* percentages stop at 100 */
        y1 = fmax(100, y0 + step);
    if (y1 <= y0)
        y1 = y0 + step;
#define YPOS(v) (top + plot_h - ((v) - y0) / (y1 - y0) * plot_h)
    /* grid and ticks */
    for (double t = y0; t <= y1 + step * 1e-6; t += step) {
        char lab[32];
        tick_label(lab, sizeof lab, t, step);
        double y = YPOS(t);
        jr_addf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"" C_GRID "\"/>"
                   "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\" "
                   "fill=\"" C_AXIS "\">%s</text>",
                left, y, left + plot_w, y, left - 5, y + 4, lab);
    }
    jr_addf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"" C_AXIS "\"/>", left, top,
            left, top + plot_h);
    jr_addf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"" C_AXIS "\"/>", left,
            top + plot_h, left + plot_w, top + plot_h);
    if (y0 > 0) /* the axis does not start at zero: mark the break */
        jr_addf(b, "<path d=\"M%d %d l8 -4 M%d %d l8 -4\" stroke=\"" C_AXIS "\" "
                   "stroke-width=\"1.5\"/>",
                left - 4, top + plot_h - 6, left - 4, top + plot_h - 2);
    double slot = plot_w / 2.0, bw = slot * 0.46;
    for (int i = 0; i < 2; i++) {
        double cx = left + slot * (i + 0.5);
        jr_addf(b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" fill=\"" C_TEXT "\">%s</text>",
                cx, top + plot_h + 16, names[i]);
        if (!e[i]->measured || !isfinite(e[i]->value)) {
            jr_addf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"11\" "
                       "fill=\"" C_MUTED "\">not measured</text>", cx, top + plot_h / 2.0);
            continue;
        }
        double v = e[i]->value * mul, yv = YPOS(fmax(v, y0));
        jr_addf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\">"
                   "<title>%s</title></rect>",
                cx - bw / 2, yv, bw, top + plot_h - yv, fills[i], names[i]);
        double lo = e[i]->lo * mul, hi = e[i]->hi * mul;
        bool has_ci = isfinite(lo) && isfinite(hi) && (lo != v || hi != v);
        if (has_ci)
            whisker(b, cx, YPOS(fmax(lo, y0)), YPOS(fmin(hi, y1)));
        char val[64];
        snprintf(val, sizeof val, valfmt, v);
        double ty = (has_ci ? YPOS(fmin(hi, y1)) : yv) - 6;
        if (ty < top + 10)
            ty = top + 10;
        jr_addf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"11\" "
                   "font-weight=\"bold\" fill=\"" C_TEXT "\">",
                cx, ty);
        jr_add_html(b, val);
        jr_add(b, "</text>");
    }
    if (before->measured && after->measured && isfinite(before->value) && before->value != 0) {
        double r = after->value / before->value;
        jr_addf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"11\" "
                   "fill=\"" C_AXIS "\">after / before = %.3f&#215;</text>",
                W / 2, H - 6, r);
    }
#undef YPOS
    jr_add(b, "</svg>");
}

void jr_svg_layers(jr_buf *b, const joule_report_doc *d)
{
    const int row = 22, left = 200, barw = 360, right = 244, top = 56;
    int n = (int)(d->n_layers > 400 ? 400 : d->n_layers);
    const int W = left + barw + right, H = top + row * (n ? n : 1) + 30;
    svg_open(b, W, H, "Per-layer sparsity and precision");
    /* legend: the dtypes present after compression */
    bool seen[32] = {0};
    int lx = left;
    jr_addf(b, "<text x=\"8\" y=\"40\" font-size=\"11\" fill=\"" C_AXIS "\">bar: zeros after; "
               "dashed: before</text>");
    for (size_t i = 0; i < d->n_layers; i++) {
        joule_dtype t = d->layers[i].removed ? JOULE_UNDEFINED : d->layers[i].dtype_after;
        if ((unsigned)t >= 32 || seen[t] || d->layers[i].removed)
            continue;
        seen[t] = true;
        jr_addf(b, "<rect x=\"%d\" y=\"30\" width=\"12\" height=\"12\" fill=\"%s\"/>"
                   "<text x=\"%d\" y=\"40\" font-size=\"11\" fill=\"" C_TEXT "\">",
                lx, jr_dtype_colour(t), lx + 16);
        jr_add_html(b, joule_dtype_name(t));
        jr_add(b, "</text>");
        lx += 24 + 7 * (int)strlen(joule_dtype_name(t));
    }
    if (n == 0) {
        jr_addf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"" C_MUTED "\">"
                   "no layers with weights</text></svg>", W / 2, top + 14);
        return;
    }
    for (int g = 0; g <= 4; g++) {
        double x = left + barw * g / 4.0;
        jr_addf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"" C_GRID "\"/>"
                   "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" font-size=\"10\" "
                   "fill=\"" C_AXIS "\">%d%%</text>",
                x, top - 4, x, top + row * n, x, top + row * n + 14, 25 * g);
    }
    for (int i = 0; i < n; i++) {
        const joule_report_layer *l = &d->layers[i];
        double y = top + row * i;
        jr_add(b, "<g>");
        jr_add(b, "<title>");
        jr_add_html(b, l->name);
        jr_add(b, " (");
        jr_add_html(b, l->op_type);
        jr_add(b, ")</title>");
        jr_addf(b, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\" "
                   "fill=\"" C_TEXT "\">", left - 6, y + 15);
        add_short(b, l->name, 30);
        jr_add(b, "</text>");
        if (l->removed) {
            jr_addf(b, "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" fill=\"" C_MUTED "\">"
                       "removed (folded or dead)</text></g>", left + 4, y + 15);
            continue;
        }
        double sa = fmin(fmax(l->sparsity_after, 0), 1), sb = fmin(fmax(l->sparsity_before, 0), 1);
        jr_addf(b, "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%d\" fill=\"#f1f3f4\"/>",
                left, y + 3, barw, row - 6);
        jr_addf(b, "<rect x=\"%d\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>", left,
                y + 3, sa * barw, row - 6, jr_dtype_colour(l->dtype_after));
        if (sb > 0)
            jr_addf(b, "<rect x=\"%d\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" fill=\"none\" "
                       "stroke=\"" C_TEXT "\" stroke-dasharray=\"3,2\"/>",
                    left, y + 3, sb * barw, row - 6);
        char bb[32], ba[32];
        jr_fmt_bytes(bb, sizeof bb, l->bytes_before);
        jr_fmt_bytes(ba, sizeof ba, l->bytes_after);
        jr_addf(b, "<rect x=\"%d\" y=\"%.1f\" width=\"10\" height=\"10\" fill=\"%s\"/>",
                left + barw + 6, y + 6, jr_dtype_colour(l->dtype_after));
        jr_addf(b, "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" fill=\"" C_TEXT "\">%.0f%% ",
                left + barw + 20, y + 15, 100 * sa);
        jr_add_html(b, joule_dtype_name(l->dtype_after));
        jr_addf(b, ", %s &#8594; %s</text></g>", bb, ba);
    }
    if (d->n_layers > (size_t)n)
        jr_addf(b, "<text x=\"8\" y=\"%d\" font-size=\"11\" fill=\"" C_MUTED "\">(%zu more "
                   "layers in the table)</text>", H - 4, d->n_layers - (size_t)n);
    jr_add(b, "</svg>");
}

static int cmp_size(const void *a, const void *b)
{
    const joule_sweep_point *p = *(const joule_sweep_point *const *)a;
    const joule_sweep_point *q = *(const joule_sweep_point *const *)b;
    return (p->file_bytes > q->file_bytes) - (p->file_bytes < q->file_bytes);
}

/* Sensitivity: one horizontal bar per layer, its accuracy drop when pruned alone. */
static void svg_sensitivity(jr_buf *b, const joule_report_doc *d)
{
    const int row = 22, left = 200, barw = 360, top = 44;
    size_t n = 0;
    double maxd = 0;
    for (size_t i = 0; i < d->n_sweep; i++) {
        const joule_sweep_point *p = &d->sweep[i];
        if (!p->layer || !p->top1.measured)
            continue;
        n++;
        maxd = fmax(maxd, fabs(p->accuracy_drop));
    }
    if (n > 200)
        n = 200;
    const int W = left + barw + 110, H = top + row * (int)(n ? n : 1) + 34;
    svg_open(b, W, H, "Layer sensitivity: top-1 drop when pruned alone");
    if (n == 0 || maxd <= 0)
        maxd = 0.01;
    double step = nice_step(maxd * 100, 4), xmax = ceil(maxd * 100 / step) * step;
    /* axis centred so that gains (negative drops) show to the left */
    double zero = left + barw * 0.15, scale = barw * 0.85 / xmax;
    for (double t = 0; t <= xmax + step * 1e-6; t += step) {
        char lab[32];
        tick_label(lab, sizeof lab, t, step);
        jr_addf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"" C_GRID "\"/>"
                   "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" font-size=\"10\" "
                   "fill=\"" C_AXIS "\">%s pt</text>",
                zero + t * scale, top - 4, zero + t * scale, top + row * (int)n,
                zero + t * scale, top + row * (int)n + 14, lab);
    }
    size_t k = 0;
    for (size_t i = 0; i < d->n_sweep && k < n; i++) {
        const joule_sweep_point *p = &d->sweep[i];
        if (!p->layer || !p->top1.measured)
            continue;
        double y = top + row * (double)k++;
        double w = p->accuracy_drop * 100 * scale;
        if (w < -zero + left)
            w = -zero + left;
        jr_add(b, "<g><title>");
        jr_add_html(b, p->layer);
        jr_add(b, "</title>");
        jr_addf(b, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\" "
                   "fill=\"" C_TEXT "\">", left - 6, y + 15);
        add_short(b, p->layer, 30);
        jr_add(b, "</text>");
        jr_addf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>",
                w >= 0 ? zero : zero + w, y + 3, fabs(w) < 1 ? 1 : fabs(w), row - 6,
                w >= 0 ? "#d93025" : "#188038");
        jr_addf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" fill=\"" C_TEXT "\">"
                   "%+.2f pt</text></g>",
                zero + fmax(w, 0) + 4, y + 15, p->accuracy_drop * 100);
    }
    jr_addf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"" C_AXIS "\"/>",
            zero, top - 4, zero, top + row * (int)n);
    jr_add(b, "</svg>");
}

void jr_svg_frontier(jr_buf *b, const joule_report_doc *d)
{
    if (d->sweep_sensitivity) {
        svg_sensitivity(b, d);
        return;
    }
    const int W = 640, H = 400, left = 64, right = 24, top = 34, bottom = 48;
    const int pw = W - left - right, ph = H - top - bottom;
    svg_open(b, W, H, "Sweep: top-1 accuracy against file size");
    joule_sweep_point **pts = calloc(d->n_sweep ? d->n_sweep : 1, sizeof *pts);
    if (!pts) {
        b->failed = true;
        return;
    }
    size_t n = 0;
    double xmax = 0, amin = INFINITY, amax = -INFINITY;
    for (size_t i = 0; i < d->n_sweep; i++) {
        joule_sweep_point *p = &d->sweep[i];
        if (p->error || !p->top1.measured || !p->file_bytes)
            continue;
        pts[n++] = p;
        xmax = fmax(xmax, (double)p->file_bytes);
        amin = fmin(amin, fmin(p->top1.lo, p->top1.value) * 100);
        amax = fmax(amax, fmax(p->top1.hi, p->top1.value) * 100);
    }
    if (n == 0) {
        free(pts);
        jr_addf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"" C_MUTED "\">"
                   "no measured points</text></svg>", W / 2, H / 2);
        return;
    }
    qsort(pts, n, sizeof *pts, cmp_size);
    double xs = nice_step(xmax / 1e3, 5), x1 = ceil(xmax / 1e3 * 1.05 / xs) * xs;
    double span = amax - amin;
    if (span < 1)
        span = 1;
    double ys = nice_step(span * 1.3, 5);
    double y0 = floor((amin - span * 0.15) / ys) * ys, y1 = ceil((amax + span * 0.15) / ys) * ys;
    if (y0 < 0)
        y0 = 0;
    if (y1 > 100)
        y1 = 100;
    if (y1 <= y0)
        y1 = y0 + ys;
#define PX(v) (left + (v) / 1e3 / x1 * pw)
#define PY(v) (top + ph - ((v) - y0) / (y1 - y0) * ph)
    for (double t = 0; t <= x1 + xs * 1e-6; t += xs) {
        char lab[32];
        tick_label(lab, sizeof lab, t, xs);
        double x = left + t / x1 * pw;
        jr_addf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"" C_GRID "\"/>"
                   "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" font-size=\"10\" "
                   "fill=\"" C_AXIS "\">%s</text>",
                x, top, x, top + ph, x, top + ph + 14, lab);
    }
    for (double t = y0; t <= y1 + ys * 1e-6; t += ys) {
        char lab[32];
        tick_label(lab, sizeof lab, t, ys);
        double y = PY(t);
        jr_addf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"" C_GRID "\"/>"
                   "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" font-size=\"10\" "
                   "fill=\"" C_AXIS "\">%s%%</text>",
                left, y, left + pw, y, left - 5, y + 4, lab);
    }
    jr_addf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"" C_AXIS "\">file size "
               "(kB)</text>", left + pw / 2, H - 10);
    jr_addf(b, "<text x=\"14\" y=\"%d\" text-anchor=\"middle\" fill=\"" C_AXIS "\" "
               "transform=\"rotate(-90 14 %d)\">top-1 accuracy</text>", top + ph / 2,
            top + ph / 2);
    /* the frontier line */
    jr_add(b, "<polyline fill=\"none\" stroke=\"" C_AFTER "\" stroke-width=\"2\" points=\"");
    for (size_t i = 0; i < n; i++)
        if (pts[i]->on_frontier)
            jr_addf(b, "%.1f,%.1f ", PX((double)pts[i]->file_bytes), PY(pts[i]->top1.value * 100));
    jr_add(b, "\"/>");
    for (size_t i = 0; i < n; i++) {
        const joule_sweep_point *p = pts[i];
        double x = PX((double)p->file_bytes), y = PY(p->top1.value * 100);
        jr_add(b, "<g><title>");
        jr_add_html(b, p->label);
        jr_addf(b, ": %.2f%% top-1, %llu bytes</title>", p->top1.value * 100,
                (unsigned long long)p->file_bytes);
        if (p->top1.lo != p->top1.value || p->top1.hi != p->top1.value)
            jr_addf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>", x,
                    PY(fmax(p->top1.lo * 100, y0)), x, PY(fmin(p->top1.hi * 100, y1)),
                    C_AXIS);
        jr_addf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"%s\" stroke=\"%s\" "
                   "stroke-width=\"1.5\"/>",
                x, y, p->on_frontier ? C_AFTER : "#ffffff", p->on_frontier ? C_AFTER : C_AXIS);
        double lx = x + 8;
        const char *anchor = "start";
        if (lx > left + pw - 90) {
            lx = x - 8;
            anchor = "end";
        }
        jr_addf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" font-size=\"10\" "
                   "fill=\"" C_TEXT "\">", lx, y - 6 - (double)(i % 2) * 10, anchor);
        add_short(b, p->label, 24);
        jr_add(b, "</text></g>");
    }
    jr_addf(b, "<text x=\"%d\" y=\"%d\" font-size=\"10\" fill=\"" C_MUTED "\">filled: on the "
               "frontier; whiskers: 95%% interval</text>", left + 4, top + 12);
#undef PX
#undef PY
    free(pts);
    jr_add(b, "</svg>");
}

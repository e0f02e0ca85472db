/* eval/report_text.c: the report document for people: Markdown (report.md) and one
 * self-contained HTML page (report.html) with the SVG charts of svg.c inline. Both show the same
 * summary table (size, parameters, sparsity, MACs, accuracy, latency, energy before and after),
 * the comparison on shared items, the per-layer table, the sweep when there is one, and notes.
 * The page has no scripts, loads nothing and names only generic fonts; every string from a model
 * or a path is escaped for the format it lands in. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report_internal.h"

/* ---- one summary row, formatted once for both writers ---- */

typedef struct sum_row {
    const char *what;
    char before[96], after[96], change[64];
} sum_row;

#define MAX_ROWS 12

static void change_pct(char *out, size_t size, double a, double b)
{
    if (a == 0 || !isfinite(a) || !isfinite(b))
        out[0] = 0;
    else
        snprintf(out, size, "%+.1f%%", 100.0 * (b - a) / a);
}

static void change_ratio(char *out, size_t size, const joule_estimate *a, const joule_estimate *b)
{
    if (!a->measured || !b->measured || a->value <= 0)
        out[0] = 0;
    else
        snprintf(out, size, "%.2fx", b->value / a->value);
}

static void change_points(char *out, size_t size, const joule_estimate *a, const joule_estimate *b)
{
    if (!a->measured || !b->measured)
        out[0] = 0;
    else
        snprintf(out, size, "%+.2f pt", 100.0 * (b->value - a->value));
}

static size_t summary_rows(const joule_report_doc *d, sum_row *r)
{
    const joule_report_model *a = &d->base, *b = &d->cand;
    bool c = d->has_cand;
    size_t n = 0;
    memset(r, 0, sizeof *r * MAX_ROWS);

    r[n].what = "file size";
    jr_fmt_bytes(r[n].before, sizeof r[n].before, a->file_bytes);
    if (c) {
        jr_fmt_bytes(r[n].after, sizeof r[n].after, b->file_bytes);
        change_pct(r[n].change, sizeof r[n].change, (double)a->file_bytes, (double)b->file_bytes);
    }
    n++;
    r[n].what = "parameters";
    jr_fmt_count(r[n].before, sizeof r[n].before, a->params);
    if (c) {
        jr_fmt_count(r[n].after, sizeof r[n].after, b->params);
        change_pct(r[n].change, sizeof r[n].change, (double)a->params, (double)b->params);
    }
    n++;
    r[n].what = "parameter bytes";
    jr_fmt_bytes(r[n].before, sizeof r[n].before, a->param_bytes);
    if (c) {
        jr_fmt_bytes(r[n].after, sizeof r[n].after, b->param_bytes);
        change_pct(r[n].change, sizeof r[n].change, (double)a->param_bytes,
                   (double)b->param_bytes);
    }
    n++;
    r[n].what = "weight sparsity";
    jr_fmt_pct(r[n].before, sizeof r[n].before, a->weight_sparsity, 1);
    if (c) {
        jr_fmt_pct(r[n].after, sizeof r[n].after, b->weight_sparsity, 1);
        snprintf(r[n].change, sizeof r[n].change, "%+.1f pt",
                 100 * (b->weight_sparsity - a->weight_sparsity));
    }
    n++;
    r[n].what = "MACs per item";
    jr_fmt_count(r[n].before, sizeof r[n].before, a->macs);
    if (c) {
        jr_fmt_count(r[n].after, sizeof r[n].after, b->macs);
        change_pct(r[n].change, sizeof r[n].change, (double)a->macs, (double)b->macs);
    }
    n++;
    r[n].what = "top-1 accuracy";
    jr_fmt_estimate(r[n].before, sizeof r[n].before, &a->top1, 100, "%.2f", "%");
    if (c) {
        jr_fmt_estimate(r[n].after, sizeof r[n].after, &b->top1, 100, "%.2f", "%");
        change_points(r[n].change, sizeof r[n].change, &a->top1, &b->top1);
    }
    n++;
    r[n].what = "top-5 accuracy";
    jr_fmt_estimate(r[n].before, sizeof r[n].before, &a->top5, 100, "%.2f", "%");
    if (c) {
        jr_fmt_estimate(r[n].after, sizeof r[n].after, &b->top5, 100, "%.2f", "%");
        change_points(r[n].change, sizeof r[n].change, &a->top5, &b->top5);
    }
    n++;
    r[n].what = "latency per item";
    jr_fmt_estimate(r[n].before, sizeof r[n].before, &a->latency_ms, 1, "%.3g", " ms");
    if (c) {
        jr_fmt_estimate(r[n].after, sizeof r[n].after, &b->latency_ms, 1, "%.3g", " ms");
        change_ratio(r[n].change, sizeof r[n].change, &a->latency_ms, &b->latency_ms);
    }
    n++;
    r[n].what = a->energy_estimated || b->energy_estimated ? "energy per item (estimated)"
                                                           : "energy per item";
    jr_fmt_estimate(r[n].before, sizeof r[n].before, &a->energy_j, 1e3, "%.3g", " mJ");
    if (c) {
        jr_fmt_estimate(r[n].after, sizeof r[n].after, &b->energy_j, 1e3, "%.3g", " mJ");
        if (d->energy_ratio.measured)
            snprintf(r[n].change, sizeof r[n].change, "%.2fx", d->energy_ratio.value);
        else
            change_ratio(r[n].change, sizeof r[n].change, &a->energy_j, &b->energy_j);
    }
    n++;
    return n;
}

/* A description of the comparison on shared items, or "" when there is none. */
static void comparison_text(const joule_report_doc *d, char *out, size_t size)
{
    out[0] = 0;
    if (!d->has_cand || !d->agreement.measured)
        return;
    char ag[96];
    jr_fmt_estimate(ag, sizeof ag, &d->agreement, 100, "%.2f", "%");
    snprintf(out, size,
             "On the same %zu items the compressed model picks the original's class for %s. "
             "The original is right where the compressed model is wrong on %zu items, the other "
             "way round on %zu (exact McNemar p = %.3g: %s).",
             d->images, ag, d->mcnemar_b, d->mcnemar_c, d->mcnemar_p,
             d->mcnemar_p < 0.05 ? "a real difference in accuracy"
                                 : "no evidence the accuracy differs");
}

static void energy_text(const joule_report_doc *d, char *out, size_t size)
{
    out[0] = 0;
    const joule_report_model *a = &d->base;
    if (d->energy_md || d->energy_html) /* the energy section says it all */
        return;
    if (!a->energy_j.measured) {
        snprintf(out, size, "Energy was not measured (the notes say why).");
        return;
    }
    snprintf(out, size, "Energy source: %s%s.", a->energy_source ? a->energy_source : "unknown",
             a->energy_estimated ? " (an estimate from a model of the machine, not a counter)"
                                 : "");
}

/* ---- Markdown ---- */

static void md_layers(jr_buf *b, const joule_report_doc *d)
{
    jr_add(b, "\n## Layers\n\n");
    if (!d->n_layers) {
        jr_add(b, "No layers with constant weights.\n");
        return;
    }
    jr_add(b, "| layer | op | precision | sparsity | parameters | bytes | scales |\n"
              "| --- | --- | --- | ---: | ---: | ---: | --- |\n");
    for (size_t i = 0; i < d->n_layers; i++) {
        const joule_report_layer *l = &d->layers[i];
        char bb[32], ba[32], pb[32], pa[32];
        jr_fmt_bytes(bb, sizeof bb, l->bytes_before);
        jr_fmt_bytes(ba, sizeof ba, l->bytes_after);
        jr_fmt_count(pb, sizeof pb, l->params_before);
        jr_fmt_count(pa, sizeof pa, l->params_after);
        jr_add(b, "| ");
        jr_add_md(b, l->name);
        jr_add(b, " | ");
        jr_add_md(b, l->op_type);
        if (l->removed) {
            jr_addf(b, " | %s -> removed | | %s -> 0 | %s -> 0 | |\n",
                    joule_dtype_name(l->dtype_before), pb, bb);
            continue;
        }
        jr_addf(b, " | %s -> %s | %.1f%% -> %.1f%% | %s -> %s | %s -> %s | ",
                joule_dtype_name(l->dtype_before), joule_dtype_name(l->dtype_after),
                100 * l->sparsity_before, 100 * l->sparsity_after, pb, pa, bb, ba);
        if (l->scale_max > 0)
            jr_addf(b, "%.3g .. %.3g", l->scale_min, l->scale_max);
        jr_add(b, " |\n");
    }
}

static void md_sweep(jr_buf *b, const joule_report_doc *d)
{
    if (!d->n_sweep)
        return;
    if (d->sweep_sensitivity) {
        jr_add(b, "\n## Layer sensitivity\n\nEach layer pruned alone; layers ranked by the top-1 "
                  "drop it causes (largest first).\n\n"
                  "| rank | layer | sparsity | top-1 | drop |\n| ---: | --- | ---: | --- | ---: |\n");
    } else {
        jr_add(b, "\n## Sweep\n\nPoints on the frontier (no other point is both smaller and more "
                  "accurate) are marked *.\n\n"
                  "| setting | file size | nonzero params | top-1 | latency | frontier |\n"
                  "| --- | ---: | ---: | --- | --- | :---: |\n");
    }
    size_t rank = 0;
    for (size_t i = 0; i < d->n_sweep; i++) {
        const joule_sweep_point *p = &d->sweep[i];
        char t1[96], lat[96], fb[32], nz[32];
        jr_fmt_estimate(t1, sizeof t1, &p->top1, 100, "%.2f", "%");
        jr_fmt_estimate(lat, sizeof lat, &p->latency_ms, 1, "%.3g", " ms");
        jr_fmt_bytes(fb, sizeof fb, p->file_bytes);
        jr_fmt_count(nz, sizeof nz, p->nonzero_params);
        if (d->sweep_sensitivity) {
            if (!p->layer)
                continue;
            jr_addf(b, "| %zu | ", ++rank);
            jr_add_md(b, p->layer);
            if (p->error) {
                jr_add(b, " | | failed: ");
                jr_add_md(b, p->error);
                jr_add(b, " | |\n");
            } else {
                jr_addf(b, " | %.0f%% | %s | %+.2f pt |\n", 100 * p->sparsity, t1,
                        100 * p->accuracy_drop);
            }
            continue;
        }
        jr_add(b, "| ");
        jr_add_md(b, p->label);
        if (p->error) {
            jr_add(b, " | | | failed: ");
            jr_add_md(b, p->error);
            jr_add(b, " | | |\n");
        } else {
            jr_addf(b, " | %s | %s | %s | %s | %s |\n", fb, nz, t1, lat,
                    p->on_frontier ? "*" : "");
        }
    }
}

joule_status joule_report_doc_markdown(const joule_report_doc *d, char **out, joule_error *err)
{
    jr_buf b;
    jr_init(&b);
    jr_add(&b, "# ");
    jr_add_md(&b, d->title ? d->title : "joule report");
    jr_add(&b, "\n\n");
    if (d->created || d->tool) {
        jr_add(&b, "Made");
        if (d->tool) {
            jr_add(&b, " by ");
            jr_add_md(&b, d->tool);
        }
        if (d->created) {
            jr_add(&b, " on ");
            jr_add_md(&b, d->created);
        }
        jr_add(&b, ".\n");
    }
    jr_add(&b, "Original: ");
    jr_add_md(&b, d->base.path);
    if (d->has_cand) {
        jr_add(&b, "  \nCompressed: ");
        jr_add_md(&b, d->cand.path);
    }
    if (d->recipe) {
        jr_add(&b, "  \nRecipe: ");
        jr_add_md(&b, d->recipe);
    }
    jr_add(&b, "  \nData: ");
    if (d->data) {
        jr_add_md(&b, d->data);
        jr_addf(&b, " (%zu items)", d->images);
    } else {
        jr_add(&b, "none (accuracy not measured)");
    }
    jr_add(&b, "\n\n## Summary\n\nIntervals are 95%.\n\n");
    sum_row rows[MAX_ROWS];
    size_t n = summary_rows(d, rows);
    if (d->has_cand)
        jr_add(&b, "| | before | after | change |\n| --- | ---: | ---: | ---: |\n");
    else
        jr_add(&b, "| | model |\n| --- | ---: |\n");
    for (size_t i = 0; i < n; i++) {
        if (d->has_cand)
            jr_addf(&b, "| %s | %s | %s | %s |\n", rows[i].what, rows[i].before, rows[i].after,
                    rows[i].change);
        else
            jr_addf(&b, "| %s | %s |\n", rows[i].what, rows[i].before);
    }
    char text[1024];
    comparison_text(d, text, sizeof text);
    if (*text) {
        jr_add(&b, "\n");
        jr_add(&b, text);
        jr_add(&b, "\n");
    }
    energy_text(d, text, sizeof text);
    if (*text) {
        jr_add(&b, "\n");
        jr_add(&b, text);
        jr_add(&b, "\n");
    }
    if (d->has_cand || d->n_layers)
        md_layers(&b, d);
    md_sweep(&b, d);
    if (d->energy_md) {
        jr_add(&b, "\n");
        jr_add(&b, d->energy_md);
    }
    if (d->n_notes) {
        jr_add(&b, "\n## Notes\n\n");
        for (size_t i = 0; i < d->n_notes; i++) {
            jr_add(&b, "- ");
            jr_add_md(&b, d->notes[i]);
            jr_add(&b, "\n");
        }
    }
    return jr_finish(&b, out, "report.md", err);
}

/* ---- HTML ---- */

static const char css[] =
    "body{font-family:sans-serif;color:#202124;margin:24px auto;max-width:1120px;padding:0 16px;"
    "line-height:1.45}"
    "h1{font-size:24px;margin-bottom:4px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid "
    "#dadce0;padding-bottom:4px}"
    ".meta{color:#5f6368;font-size:13px}.meta code{word-break:break-all}"
    ".charts{display:flex;flex-wrap:wrap;gap:8px}.charts svg{border:1px solid #e8eaed;"
    "border-radius:6px}"
    "table{border-collapse:collapse;font-size:13px;margin:8px 0}th,td{border-bottom:1px solid "
    "#e8eaed;padding:4px 10px;text-align:left;vertical-align:top}th{background:#f8f9fa}"
    "td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}"
    ".muted{color:#80868b}.note{background:#fef7e0;padding:6px 10px;border-radius:4px}"
    ".wide{overflow-x:auto}details{margin-top:10px}";

static void html_td(jr_buf *b, const char *s, bool numeric)
{
    jr_add(b, numeric ? "<td class=\"n\">" : "<td>");
    if (s && !strcmp(s, "not measured"))
        jr_add(b, "<span class=\"muted\">not measured</span>");
    else
        jr_add_html(b, s);
    jr_add(b, "</td>");
}

static void html_layers(jr_buf *b, const joule_report_doc *d)
{
    jr_add(b, "<h2>Layers</h2>\n<div class=\"wide\">");
    jr_svg_layers(b, d);
    jr_add(b, "</div>\n");
    if (!d->n_layers)
        return;
    jr_add(b, "<div class=\"wide\"><table><tr><th>layer</th><th>op</th><th>precision</th>"
              "<th>sparsity</th><th>parameters</th><th>bytes</th><th>scales</th></tr>\n");
    for (size_t i = 0; i < d->n_layers; i++) {
        const joule_report_layer *l = &d->layers[i];
        char bb[32], ba[32], pb[32], pa[32], cell[128];
        jr_fmt_bytes(bb, sizeof bb, l->bytes_before);
        jr_fmt_bytes(ba, sizeof ba, l->bytes_after);
        jr_fmt_count(pb, sizeof pb, l->params_before);
        jr_fmt_count(pa, sizeof pa, l->params_after);
        jr_add(b, "<tr>");
        html_td(b, l->name, false);
        html_td(b, l->op_type, false);
        if (l->removed) {
            snprintf(cell, sizeof cell, "%s &#8594; removed", joule_dtype_name(l->dtype_before));
            jr_addf(b, "<td>%s</td><td></td>", cell);
            jr_addf(b, "<td class=\"n\">%s &#8594; 0</td><td class=\"n\">%s &#8594; 0</td>"
                       "<td></td></tr>\n", pb, bb);
            continue;
        }
        jr_addf(b, "<td><span style=\"color:%s\">&#9632;</span> %s &#8594; "
                   "<span style=\"color:%s\">&#9632;</span> %s</td>",
                jr_dtype_colour(l->dtype_before), joule_dtype_name(l->dtype_before),
                jr_dtype_colour(l->dtype_after), joule_dtype_name(l->dtype_after));
        jr_addf(b, "<td class=\"n\">%.1f%% &#8594; %.1f%%</td>", 100 * l->sparsity_before,
                100 * l->sparsity_after);
        jr_addf(b, "<td class=\"n\">%s &#8594; %s</td><td class=\"n\">%s &#8594; %s</td>", pb, pa,
                bb, ba);
        if (l->scale_max > 0)
            jr_addf(b, "<td class=\"n\">%.3g .. %.3g</td>", l->scale_min, l->scale_max);
        else
            jr_add(b, "<td></td>");
        jr_add(b, "</tr>\n");
    }
    jr_add(b, "</table></div>\n");
}

static void html_sweep(jr_buf *b, const joule_report_doc *d)
{
    if (!d->n_sweep)
        return;
    jr_add(b, d->sweep_sensitivity ? "<h2>Layer sensitivity</h2>\n<p>Each layer pruned alone; "
                                     "layers ranked by the top-1 drop it causes.</p>\n"
                                   : "<h2>Sweep</h2>\n<p>Filled points are on the frontier: no "
                                     "other point is both smaller and more accurate.</p>\n");
    jr_add(b, "<div class=\"wide\">");
    jr_svg_frontier(b, d);
    jr_add(b, "</div>\n<div class=\"wide\"><table><tr>");
    if (d->sweep_sensitivity)
        jr_add(b, "<th>layer</th><th>sparsity</th><th>top-1</th><th>drop</th></tr>\n");
    else
        jr_add(b, "<th>setting</th><th>file size</th><th>nonzero params</th><th>top-1</th>"
                  "<th>latency</th><th>frontier</th></tr>\n");
    for (size_t i = 0; i < d->n_sweep; i++) {
        const joule_sweep_point *p = &d->sweep[i];
        char t1[96], lat[96], fb[32], nz[32];
        jr_fmt_estimate(t1, sizeof t1, &p->top1, 100, "%.2f", "%");
        jr_fmt_estimate(lat, sizeof lat, &p->latency_ms, 1, "%.3g", " ms");
        jr_fmt_bytes(fb, sizeof fb, p->file_bytes);
        jr_fmt_count(nz, sizeof nz, p->nonzero_params);
        if (d->sweep_sensitivity && !p->layer)
            continue;
        jr_add(b, "<tr>");
        html_td(b, d->sweep_sensitivity ? p->layer : p->label, false);
        if (p->error) {
            jr_add(b, "<td colspan=\"5\">failed: ");
            jr_add_html(b, p->error);
            jr_add(b, "</td></tr>\n");
            continue;
        }
        if (d->sweep_sensitivity) {
            jr_addf(b, "<td class=\"n\">%.0f%%</td>", 100 * p->sparsity);
            html_td(b, t1, true);
            jr_addf(b, "<td class=\"n\">%+.2f pt</td></tr>\n", 100 * p->accuracy_drop);
            continue;
        }
        html_td(b, fb, true);
        html_td(b, nz, true);
        html_td(b, t1, true);
        html_td(b, lat, true);
        jr_addf(b, "<td>%s</td></tr>\n", p->on_frontier ? "&#9679;" : "");
    }
    jr_add(b, "</table></div>\n");
}

/* The compression's pass rows, when given: a table inside <details> (no script needed). */
static void html_changes(jr_buf *b, const joule_report_doc *d)
{
    cJSON *rows = d->changes_json ? cJSON_Parse(d->changes_json) : NULL;
    if (!cJSON_IsArray(rows) || cJSON_GetArraySize(rows) == 0) {
        cJSON_Delete(rows);
        return;
    }
    jr_addf(b, "<details><summary>What each pass did (%d rows)</summary><div class=\"wide\">"
               "<table><tr><th>pass</th><th>node</th><th>op</th><th>note</th></tr>\n",
            cJSON_GetArraySize(rows));
    const cJSON *r;
    cJSON_ArrayForEach(r, rows)
    {
        const char *keys[] = {"pass", "node", "op_type", "note"};
        jr_add(b, "<tr>");
        for (int k = 0; k < 4; k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, keys[k]);
            html_td(b, cJSON_IsString(v) ? v->valuestring : "", false);
        }
        jr_add(b, "</tr>\n");
    }
    jr_add(b, "</table></div></details>\n");
    cJSON_Delete(rows);
}

joule_status joule_report_doc_html(const joule_report_doc *d, char **out, joule_error *err)
{
    jr_buf b;
    jr_init(&b);
    const char *title = d->title ? d->title : "joule report";
    jr_add(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
               "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
               "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
               "style-src 'unsafe-inline'; img-src data:\"><title>");
    jr_add_html(&b, title);
    jr_add(&b, "</title><style>");
    jr_add(&b, css);
    jr_add(&b, "</style></head><body>\n<h1>");
    jr_add_html(&b, title);
    jr_add(&b, "</h1>\n<p class=\"meta\">");
    if (d->tool) {
        jr_add(&b, "Made by ");
        jr_add_html(&b, d->tool);
    }
    if (d->created) {
        jr_add(&b, " on ");
        jr_add_html(&b, d->created);
    }
    jr_add(&b, ".<br>Original: <code>");
    jr_add_html(&b, d->base.path);
    jr_add(&b, "</code>");
    if (d->has_cand) {
        jr_add(&b, "<br>Compressed: <code>");
        jr_add_html(&b, d->cand.path);
        jr_add(&b, "</code>");
    }
    if (d->recipe) {
        jr_add(&b, "<br>Recipe: <code>");
        jr_add_html(&b, d->recipe);
        jr_add(&b, "</code>");
    }
    jr_add(&b, "<br>Data: ");
    if (d->data) {
        jr_add(&b, "<code>");
        jr_add_html(&b, d->data);
        jr_addf(&b, "</code> (%zu items)", d->images);
    } else {
        jr_add(&b, "none (accuracy not measured)");
    }
    jr_add(&b, "</p>\n");
    if (d->has_cand) {
        jr_add(&b, "<h2>Before and after</h2>\n<div class=\"charts\">");
        joule_estimate sa = {true, (double)d->base.file_bytes / 1e3,
                             (double)d->base.file_bytes / 1e3, (double)d->base.file_bytes / 1e3};
        joule_estimate sb = {true, (double)d->cand.file_bytes / 1e3,
                             (double)d->cand.file_bytes / 1e3, (double)d->cand.file_bytes / 1e3};
        jr_svg_pair(&b, "File size", "kB", &sa, &sb, 1, "%.1f", true);
        jr_svg_pair(&b, "Top-1 accuracy", "%", &d->base.top1, &d->cand.top1, 100, "%.2f", false);
        jr_svg_pair(&b, "Latency per item", "ms", &d->base.latency_ms, &d->cand.latency_ms, 1,
                    "%.3g", true);
        jr_svg_pair(&b, d->base.energy_estimated ? "Energy per item (est.)" : "Energy per item",
                    "mJ", &d->base.energy_j, &d->cand.energy_j, 1e3, "%.3g", true);
        jr_add(&b, "</div>\n");
    } else {
        jr_add(&b, "<h2>The model</h2>\n");
    }
    jr_add(&b, "<p class=\"muted\">Brackets and whiskers are 95% intervals: Wilson score intervals "
               "for accuracy, order-statistic intervals of the median for latency, t intervals "
               "of the mean for energy.</p>\n");
    sum_row rows[MAX_ROWS];
    size_t n = summary_rows(d, rows);
    jr_add(&b, d->has_cand ? "<table><tr><th></th><th>before</th><th>after</th><th>change</th></tr>\n"
                           : "<table><tr><th></th><th>model</th></tr>\n");
    for (size_t i = 0; i < n; i++) {
        jr_add(&b, "<tr>");
        html_td(&b, rows[i].what, false);
        html_td(&b, rows[i].before, true);
        if (d->has_cand) {
            html_td(&b, rows[i].after, true);
            html_td(&b, rows[i].change, true);
        }
        jr_add(&b, "</tr>\n");
    }
    jr_add(&b, "</table>\n");
    char text[1024];
    comparison_text(d, text, sizeof text);
    if (*text) {
        jr_add(&b, "<p>");
        jr_add_html(&b, text);
        jr_add(&b, "</p>\n");
    }
    energy_text(d, text, sizeof text);
    if (*text) {
        jr_add(&b, "<p class=\"muted\">");
        jr_add_html(&b, text);
        jr_add(&b, "</p>\n");
    }
    if (d->has_cand || d->n_layers)
        html_layers(&b, d);
    html_sweep(&b, d);
    if (d->energy_html) /* joule/energy.h's own section: how energy was measured, by what */
        jr_add(&b, d->energy_html);
    html_changes(&b, d);
    if (d->n_notes) {
        jr_add(&b, "<h2>Notes</h2>\n<ul>");
        for (size_t i = 0; i < d->n_notes; i++) {
            jr_add(&b, "<li>");
            jr_add_html(&b, d->notes[i]);
            jr_add(&b, "</li>");
        }
        jr_add(&b, "</ul>\n");
    }
    jr_add(&b, "</body></html>\n");
    return jr_finish(&b, out, "report.html", err);
}

joule_status joule_report_write_dir(const joule_report_doc *d, const char *dir, joule_error *err)
{
    static const char *names[3] = {"report.json", "report.md", "report.html"};
    char *text[3] = {NULL, NULL, NULL}, *path[3] = {NULL, NULL, NULL}, *tmp[3] = {NULL, NULL, NULL};
    if (!dir || !*dir)
        dir = ".";
    joule_status st = jr_mkdirs(dir, err);
    if (!st)
        st = joule_report_doc_json(d, &text[0], err);
    if (!st)
        st = joule_report_doc_markdown(d, &text[1], err);
    if (!st)
        st = joule_report_doc_html(d, &text[2], err);
    for (int i = 0; i < 3 && !st; i++) {
        size_t n = strlen(dir) + strlen(names[i]) + 2;
        if (!(path[i] = malloc(n))) {
            st = joule_fail(err, JOULE_ERR_NOMEM, "%s: out of memory", dir);
            break;
        }
        snprintf(path[i], n, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", names[i]);
        st = jr_write_temp(path[i], text[i], &tmp[i], err);
    }
    for (int i = 0; i < 3 && !st; i++) {
        if (rename(tmp[i], path[i]) != 0) {
            st = joule_fail(err, JOULE_ERR_IO, "%s: cannot rename into place", path[i]);
            break;
        }
        free(tmp[i]);
        tmp[i] = NULL;
    }
    for (int i = 0; i < 3; i++) {
        if (tmp[i]) {
            unlink(tmp[i]);
            free(tmp[i]);
        }
        free(path[i]);
        free(text[i]);
    }
    return st;
}

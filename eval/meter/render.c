/* eval/meter/render.c: an energy comparison as JSON (docs/energy-schema.md), Markdown and HTML
 * sections for the report, and the text table `joule energy` prints. Every figure the estimate
 * made says "estimated" next to it, with the model that made it; measured figures say "measured"
 * and name their counters. Undefined numbers (an interval from one trial) are null / "n/a". */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "joule/energy.h"

static const char grid_source[] =
    "CodeCarbon's world average carbon intensity (475 gCO2e/kWh), unless --grid-intensity is given";
static const char graph_model[] =
    "Horowitz, ISSCC 2014, 45 nm: int8 add 0.03 / mult 0.2, fp16 0.4 / 1.1, fp32 0.9 / 3.7 pJ; "
    "SRAM 10 pJ, DRAM 1300-2600 pJ per 64 bits";

/* ---- a growable string ---- */
typedef struct sbuf {
    char *s;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->oom = true;
            return;
        }
        if (b->s && b->n + (size_t)k < b->cap) {
            b->n += (size_t)k;
            return;
        }
        size_t cap = (b->cap ? b->cap * 2 : 4096) + (size_t)k;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = true;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

static joule_status sb_finish(sbuf *b, char **out, joule_error *err)
{
    if (b->oom || !b->s) {
        free(b->s);
        *out = NULL;
        return joule_fail(err, JOULE_ERR_NOMEM, "energy: out of memory rendering the report");
    }
    *out = b->s;
    return JOULE_OK;
}

/* "123.4 uJ" */
static const char *fmt_j(double j, char *buf, size_t size)
{
    if (!isfinite(j)) {
        snprintf(buf, size, "n/a");
        return buf;
    }
    double a = fabs(j);
    if (a >= 1 || a == 0)
        snprintf(buf, size, "%.4g J", j);
    else if (a >= 1e-3)
        snprintf(buf, size, "%.4g mJ", j * 1e3);
    else if (a >= 1e-6)
        snprintf(buf, size, "%.4g uJ", j * 1e6);
    else
        snprintf(buf, size, "%.4g nJ", j * 1e9);
    return buf;
}

static const char *fmt_s(double s, char *buf, size_t size)
{
    if (!isfinite(s))
        snprintf(buf, size, "n/a");
    else if (s >= 1)
        snprintf(buf, size, "%.4g s", s);
    else if (s >= 1e-3)
        snprintf(buf, size, "%.4g ms", s * 1e3);
    else
        snprintf(buf, size, "%.4g us", s * 1e6);
    return buf;
}

/* "123.4 uJ +- 1.2 uJ" for an energy interval. */
static const char *fmt_ji(joule_interval v, char *buf, size_t size)
{
    char a[32], h[32];
    fmt_j(v.mean, a, sizeof a);
    if (isfinite(v.lo) && isfinite(v.hi))
        snprintf(buf, size, "%s +- %s", a, fmt_j(0.5 * (v.hi - v.lo), h, sizeof h));
    else
        snprintf(buf, size, "%s", a);
    return buf;
}

/* "0.523 [0.51, 0.54]" */
static const char *fmt_ri(joule_interval v, char *buf, size_t size)
{
    if (!isfinite(v.mean))
        snprintf(buf, size, "n/a");
    else if (isfinite(v.lo) && isfinite(v.hi))
        snprintf(buf, size, "%.4g [%.4g, %.4g]", v.mean, v.lo, v.hi);
    else
        snprintf(buf, size, "%.4g", v.mean);
    return buf;
}

static const char *kind(const joule_energy_result *r)
{
    return r->estimated ? "estimated" : "measured";
}

/* The method without its "estimated: " prefix, for prose that has just said so. */
static const char *method_body(const joule_energy_result *r)
{
    return strncmp(r->method, "estimated: ", 11) == 0 ? r->method + 11 : r->method;
}

/* ---- JSON ---- */
static void add_num(cJSON *o, const char *name, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, name, v);
    else
        cJSON_AddNullToObject(o, name);
}

static cJSON *interval_json(joule_interval v)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    add_num(o, "mean", v.mean);
    add_num(o, "lo", v.lo);
    add_num(o, "hi", v.hi);
    return o;
}

static cJSON *graph_json(const joule_graph_energy *g)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddBoolToObject(o, "estimated", 1);
    cJSON_AddStringToObject(o, "model", graph_model);
    static const char *cls[3] = {"int8", "fp16", "fp32"};
    cJSON *macs = cJSON_AddObjectToObject(o, "macs");
    cJSON *other = cJSON_AddObjectToObject(o, "other_ops");
    for (int c = 0; c < 3 && macs && other; c++) {
        cJSON_AddNumberToObject(macs, cls[c], (double)g->macs[c]);
        cJSON_AddNumberToObject(other, cls[c], (double)g->other_ops[c]);
    }
    cJSON_AddNumberToObject(o, "weight_bytes", (double)g->weight_bytes);
    cJSON_AddNumberToObject(o, "activation_bytes", (double)g->activation_bytes);
    cJSON_AddBoolToObject(o, "weights_in_cache", g->weights_in_cache);
    cJSON_AddBoolToObject(o, "dram_from_llc_misses", g->dram_from_llc_misses);
    add_num(o, "dram_bytes", g->dram_bytes);
    add_num(o, "compute_pj", g->compute_pj);
    add_num(o, "sram_pj", g->sram_pj);
    add_num(o, "dram_lo_pj", g->dram_lo_pj);
    add_num(o, "dram_hi_pj", g->dram_hi_pj);
    add_num(o, "joules_lo", g->joules_lo);
    add_num(o, "joules_hi", g->joules_hi);
    return o;
}

static cJSON *model_json(const joule_energy_result *r, const joule_energy_model *m)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "path", m->path);
    cJSON_AddBoolToObject(o, "estimated", r->estimated);
    cJSON_AddStringToObject(o, "method", r->method);
    cJSON_AddItemToObject(o, "energy_per_inference_j", interval_json(m->energy_j));
    cJSON_AddItemToObject(o, "dynamic_per_inference_j", interval_json(m->dynamic_j));
    cJSON_AddItemToObject(o, "inferences_per_j", interval_json(m->per_joule));
    cJSON_AddItemToObject(o, "co2e_g_per_inference", interval_json(m->co2e_g));
    cJSON *lat = cJSON_AddObjectToObject(o, "latency_s");
    if (lat) {
        add_num(lat, "p50", m->latency_p50_s);
        add_num(lat, "p90", m->latency_p90_s);
    }
    cJSON_AddNumberToObject(o, "inferences", (double)m->inferences);
    add_num(o, "wall_s", m->wall_s);
    add_num(o, "cpu_s", m->cpu_s);
    add_num(o, "joules", m->joules);
    if (m->instructions >= 0 || m->cycles >= 0 || m->llc_misses >= 0) {
        cJSON *hw = cJSON_AddObjectToObject(o, "hardware_per_inference");
        if (hw) {
            add_num(hw, "instructions", m->instructions >= 0 ? m->instructions : NAN);
            add_num(hw, "cycles", m->cycles >= 0 ? m->cycles : NAN);
            add_num(hw, "llc_misses", m->llc_misses >= 0 ? m->llc_misses : NAN);
        }
    } else {
        cJSON_AddNullToObject(o, "hardware_per_inference");
    }
    if (m->has_graph)
        cJSON_AddItemToObject(o, "graph_estimate", graph_json(&m->graph));
    else
        cJSON_AddNullToObject(o, "graph_estimate");
    return o;
}

joule_status joule_energy_json(const joule_energy_result *r, char **out, joule_error *err)
{
    *out = NULL;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return joule_fail(err, JOULE_ERR_NOMEM, "energy: out of memory");
    cJSON_AddStringToObject(o, "schema", "joule-energy/1");
    cJSON_AddBoolToObject(o, "estimated", r->estimated);
    cJSON_AddStringToObject(o, "method", r->method);
    add_num(o, "cpu_watts_per_core", r->estimated ? r->cpu_watts : NAN);
    cJSON *mc = cJSON_AddObjectToObject(o, "machine");
    if (mc) {
        cJSON_AddStringToObject(mc, "cpu_model", r->machine.cpu_model);
        cJSON_AddNumberToObject(mc, "cores", r->machine.cores);
        cJSON_AddStringToObject(mc, "governor", r->machine.governor);
        cJSON_AddStringToObject(mc, "kernel", r->machine.kernel);
        cJSON_AddNumberToObject(mc, "llc_bytes", (double)r->machine.llc_bytes);
        cJSON_AddStringToObject(mc, "backend", r->backend);
        cJSON_AddNumberToObject(mc, "threads", r->threads);
        cJSON_AddStringToObject(mc, "source", r->method);
    }
    cJSON *src = cJSON_AddArrayToObject(o, "sources");
    for (size_t i = 0; src && i < r->n_probes; i++) {
        const joule_probe *p = &r->probes[i];
        cJSON *e = cJSON_CreateObject();
        if (!e)
            break;
        cJSON_AddStringToObject(e, "source", p->source);
        cJSON_AddStringToObject(e, "item", p->item);
        cJSON_AddStringToObject(e, "state", joule_probe_state_name(p->state));
        cJSON_AddStringToObject(e, "detail", p->detail);
        cJSON_AddStringToObject(e, "fix", p->fix);
        cJSON_AddItemToArray(src, e);
    }
    cJSON *dom = cJSON_AddArrayToObject(o, "domains");
    for (size_t i = 0; dom && i < r->n_domains; i++) {
        cJSON *e = cJSON_CreateObject();
        if (!e)
            break;
        cJSON_AddStringToObject(e, "source", r->domains[i].source);
        cJSON_AddStringToObject(e, "name", r->domains[i].name);
        cJSON_AddBoolToObject(e, "estimated", r->domains[i].estimated);
        cJSON_AddNumberToObject(e, "update_period_s", r->domains[i].update_period_s);
        cJSON_AddItemToArray(dom, e);
    }
    cJSON *set = cJSON_AddObjectToObject(o, "settings");
    if (set) {
        add_num(set, "window_s", r->window_s);
        add_num(set, "requested_window_s", r->requested_window_s);
        cJSON_AddNumberToObject(set, "trials", (double)r->trials);
        cJSON_AddNumberToObject(set, "seed", (double)r->seed);
        add_num(set, "warmup_s", r->warmup_s);
        cJSON_AddNumberToObject(set, "resamples", (double)r->resamples);
        cJSON_AddNumberToObject(set, "batch", r->batch);
        add_num(set, "grid_g_per_kwh", r->grid_g_per_kwh);
        cJSON_AddStringToObject(set, "grid_source", grid_source);
        add_num(set, "pue", r->pue);
    }
    cJSON *idle = cJSON_AddObjectToObject(o, "idle");
    if (idle) {
        cJSON_AddBoolToObject(idle, "estimated", r->estimated);
        add_num(idle, "before_w", r->idle_before_w);
        add_num(idle, "after_w", r->idle_after_w);
        add_num(idle, "w", r->idle_w);
    }
    cJSON *models = cJSON_AddObjectToObject(o, "models");
    if (models) {
        cJSON_AddItemToObject(models, "base", model_json(r, &r->models[0]));
        cJSON_AddItemToObject(models, "candidate", model_json(r, &r->models[1]));
    }
    cJSON *ratio = cJSON_AddObjectToObject(o, "ratio");
    if (ratio) {
        cJSON_AddBoolToObject(ratio, "estimated", r->estimated);
        cJSON_AddStringToObject(ratio, "method", "B/A of mean energy per inference, paired bootstrap "
                                                 "95% percentile interval over trial pairs");
        cJSON_AddItemToObject(ratio, "energy", interval_json(r->ratio));
        cJSON_AddItemToObject(ratio, "dynamic", interval_json(r->dynamic_ratio));
        add_num(ratio, "graph_estimate", r->graph_ratio);
    }
    cJSON *tr = cJSON_AddArrayToObject(o, "trials");
    for (size_t i = 0; tr && i < r->n_trials; i++) {
        const joule_energy_trial *t = &r->trial[i];
        cJSON *e = cJSON_CreateObject();
        if (!e)
            break;
        cJSON_AddStringToObject(e, "model", t->model ? "candidate" : "base");
        cJSON_AddBoolToObject(e, "estimated", r->estimated);
        cJSON_AddNumberToObject(e, "pair", (double)t->pair);
        cJSON_AddNumberToObject(e, "position", t->position);
        add_num(e, "joules", t->joules);
        cJSON_AddNumberToObject(e, "inferences", (double)t->inferences);
        add_num(e, "wall_s", t->wall_s);
        add_num(e, "cpu_s", t->cpu_s);
        cJSON_AddItemToArray(tr, e);
    }
    cJSON *notes = cJSON_AddArrayToObject(o, "notes");
    for (size_t i = 0; notes && i < r->n_notes; i++)
        cJSON_AddItemToArray(notes, cJSON_CreateString(r->notes[i]));
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    if (!s)
        return joule_fail(err, JOULE_ERR_NOMEM, "energy: out of memory");
    *out = s;
    return JOULE_OK;
}

/* ---- shared table rows ---- */
typedef struct row {
    char label[96];
    char a[96], b[96];
} row;

static size_t table_rows(const joule_energy_result *r, row *rows)
{
    const char *k = kind(r);
    size_t n = 0;
    const joule_energy_model *m = r->models;
    snprintf(rows[n].label, sizeof rows[n].label, "energy per inference (%s)", k);
    fmt_ji(m[0].energy_j, rows[n].a, sizeof rows[n].a);
    fmt_ji(m[1].energy_j, rows[n].b, sizeof rows[n].b);
    n++;
    snprintf(rows[n].label, sizeof rows[n].label, "dynamic energy per inference (%s)", k);
    fmt_ji(m[0].dynamic_j, rows[n].a, sizeof rows[n].a);
    fmt_ji(m[1].dynamic_j, rows[n].b, sizeof rows[n].b);
    n++;
    snprintf(rows[n].label, sizeof rows[n].label, "inferences per joule (%s)", k);
    fmt_ri(m[0].per_joule, rows[n].a, sizeof rows[n].a);
    fmt_ri(m[1].per_joule, rows[n].b, sizeof rows[n].b);
    n++;
    snprintf(rows[n].label, sizeof rows[n].label, "CO2e per 1000 inferences (%s)", k);
    for (int i = 0; i < 2; i++) {
        char *dst = i ? rows[n].b : rows[n].a;
        joule_interval c = m[i].co2e_g;
        if (isfinite(c.lo) && isfinite(c.hi))
            snprintf(dst, 96, "%.4g g +- %.2g", 1e3 * c.mean, 1e3 * 0.5 * (c.hi - c.lo));
        else
            snprintf(dst, 96, "%.4g g", 1e3 * c.mean);
    }
    n++;
    snprintf(rows[n].label, sizeof rows[n].label, "latency p50 / p90");
    for (int i = 0; i < 2; i++) {
        char p50[32], p90[32];
        snprintf(i ? rows[n].b : rows[n].a, 96, "%s / %s", fmt_s(m[i].latency_p50_s, p50, sizeof p50),
                 fmt_s(m[i].latency_p90_s, p90, sizeof p90));
    }
    n++;
    snprintf(rows[n].label, sizeof rows[n].label, "inferences (wall, cpu)");
    for (int i = 0; i < 2; i++)
        snprintf(i ? rows[n].b : rows[n].a, 96, "%llu (%.3g s, %.3g s)", (unsigned long long)m[i].inferences,
                 m[i].wall_s, m[i].cpu_s);
    n++;
    if (m[0].instructions >= 0 && m[1].instructions >= 0) {
        snprintf(rows[n].label, sizeof rows[n].label, "instructions / LLC misses per inference");
        for (int i = 0; i < 2; i++)
            snprintf(i ? rows[n].b : rows[n].a, 96, "%.4g / %.4g", m[i].instructions,
                     m[i].llc_misses >= 0 ? m[i].llc_misses : NAN);
        n++;
    }
    if (m[0].has_graph && m[1].has_graph) {
        snprintf(rows[n].label, sizeof rows[n].label, "graph model per inference (estimated)");
        for (int i = 0; i < 2; i++) {
            char lo[32], hi[32];
            fmt_j(m[i].graph.joules_lo, lo, sizeof lo);
            fmt_j(m[i].graph.joules_hi, hi, sizeof hi);
            if (m[i].graph.joules_lo == m[i].graph.joules_hi)
                snprintf(i ? rows[n].b : rows[n].a, 96, "%s", lo);
            else
                snprintf(i ? rows[n].b : rows[n].a, 96, "%s - %s", lo, hi);
        }
        n++;
    }
    return n;
}

/* ---- text ---- */
joule_status joule_energy_text(const joule_energy_result *r, char **out, joule_error *err)
{
    sbuf b = {0};
    const char *k = kind(r);
    sb_printf(&b, "joule energy: A (base) %s\n              B (candidate) %s\n", r->models[0].path,
              r->models[1].path);
    sb_printf(&b, "machine   %s, %d cores, governor %s, %s, LLC %.3g MiB\n", r->machine.cpu_model,
              r->machine.cores, r->machine.governor, r->machine.kernel,
              (double)r->machine.llc_bytes / (1 << 20));
    sb_printf(&b, "run       backend %s, threads %d%s, batch %d; windows of %.3g s, %zu per model, "
                  "interleaved in seeded order (seed %llu); warm-up %.3g s\n",
              r->backend, r->threads, r->threads == 0 ? " (all cores)" : "", r->batch, r->window_s,
              r->trials, (unsigned long long)r->seed, r->warmup_s);
    sb_printf(&b, "sources   (tried in order: powercap, papi, perf_event, nvml, estimate)\n");
    for (size_t i = 0; i < r->n_probes; i++) {
        const joule_probe *p = &r->probes[i];
        sb_printf(&b, "  %-10s %-18.18s %-17s %s\n", p->source, p->item[0] ? p->item : "-",
                  joule_probe_state_name(p->state), p->detail);
        if (p->fix[0])
            sb_printf(&b, "  %-10s %-18s %-17s fix: %s\n", "", "", "", p->fix);
    }
    if (r->estimated)
        sb_printf(&b, "energy    ESTIMATED, not measured: no energy counter measures on this machine.\n"
                      "          model: %s\n", method_body(r));
    else if (r->n_domains)
        sb_printf(&b, "energy    %s\n", r->method);
    else
        sb_printf(&b, "energy    nothing counted\n");
    sb_printf(&b, "idle      %.4g W before, %.4g W after (%s)\n\n", r->idle_before_w, r->idle_after_w, k);
    row rows[12];
    size_t n = table_rows(r, rows);
    sb_printf(&b, "%-42s %-28s %-28s\n", "", "A (base)", "B (candidate)");
    for (size_t i = 0; i < n; i++)
        sb_printf(&b, "%-42s %-28s %-28s\n", rows[i].label, rows[i].a, rows[i].b);
    char buf[96];
    sb_printf(&b, "\nB/A energy per inference (%s): %s  (paired bootstrap 95%% CI, %zu resamples)\n", k,
              fmt_ri(r->ratio, buf, sizeof buf), r->resamples);
    sb_printf(&b, "B/A dynamic energy (%s):        %s\n", k, fmt_ri(r->dynamic_ratio, buf, sizeof buf));
    if (isfinite(r->graph_ratio))
        sb_printf(&b, "B/A graph model (estimated):      %.4g  (%s)\n", r->graph_ratio, graph_model);
    sb_printf(&b, "CO2e: %.4g g/kWh x PUE %.3g (%s)\n", r->grid_g_per_kwh, r->pue, grid_source);
    sb_printf(&b, "intervals: mean +- 95%% Student t over %zu trials per model\n", r->trials);
    for (size_t i = 0; i < r->n_notes; i++)
        sb_printf(&b, "note: %s\n", r->notes[i]);
    return sb_finish(&b, out, err);
}

/* ---- Markdown ---- */
static void md_cell(sbuf *b, const char *s)
{
    for (const char *p = s; *p; p++) {
        if (*p == '|')
            sb_printf(b, "\\|");
        else if (*p == '\n')
            sb_printf(b, " ");
        else
            sb_printf(b, "%c", *p);
    }
}

joule_status joule_energy_markdown(const joule_energy_result *r, char **out, joule_error *err)
{
    sbuf b = {0};
    const char *k = kind(r);
    sb_printf(&b, "## Energy\n\n");
    if (r->estimated)
        sb_printf(&b, "**Estimated, not measured.** No energy counter measures on this machine; every "
                      "energy figure below comes from a model: ");
    else
        sb_printf(&b, "**Measured** by hardware counters: ");
    md_cell(&b, method_body(r));
    sb_printf(&b, ".\n\n| | A (base) | B (candidate) |\n|---|---|---|\n");
    sb_printf(&b, "| model | `");
    md_cell(&b, r->models[0].path);
    sb_printf(&b, "` | `");
    md_cell(&b, r->models[1].path);
    sb_printf(&b, "` |\n");
    row rows[12];
    size_t n = table_rows(r, rows);
    for (size_t i = 0; i < n; i++)
        sb_printf(&b, "| %s | %s | %s |\n", rows[i].label, rows[i].a, rows[i].b);
    char buf[96], dyn[96];
    sb_printf(&b, "\n**B/A energy per inference (%s):** %s (paired bootstrap 95%% CI, %zu resamples); "
                  "dynamic: %s.",
              k, fmt_ri(r->ratio, buf, sizeof buf), r->resamples,
              fmt_ri(r->dynamic_ratio, dyn, sizeof dyn));
    if (isfinite(r->graph_ratio))
        sb_printf(&b, " Graph model (estimated): %.4g.", r->graph_ratio);
    sb_printf(&b, "\n\nIdle power (%s): %.4g W before, %.4g W after. Windows of %.3g s, %zu per model, "
                  "interleaved in seeded order (seed %llu); intervals are 95%% Student t over trials. "
                  "CO2e: %.4g g/kWh x PUE %.3g.\n",
              k, r->idle_before_w, r->idle_after_w, r->window_s, r->trials, (unsigned long long)r->seed,
              r->grid_g_per_kwh, r->pue);
    sb_printf(&b, "\nMachine: ");
    md_cell(&b, r->machine.cpu_model);
    sb_printf(&b, ", %d cores, governor %s, %s; backend %s, threads %d, batch %d.\n\n", r->machine.cores,
              r->machine.governor, r->machine.kernel, r->backend, r->threads, r->batch);
    sb_printf(&b, "| source | item | state | detail | fix |\n|---|---|---|---|---|\n");
    for (size_t i = 0; i < r->n_probes; i++) {
        const joule_probe *p = &r->probes[i];
        sb_printf(&b, "| %s | ", p->source);
        md_cell(&b, p->item);
        sb_printf(&b, " | %s | ", joule_probe_state_name(p->state));
        md_cell(&b, p->detail);
        sb_printf(&b, " | ");
        md_cell(&b, p->fix);
        sb_printf(&b, " |\n");
    }
    for (size_t i = 0; i < r->n_notes; i++) {
        sb_printf(&b, "%s- ", i ? "" : "\nNotes:\n\n");
        md_cell(&b, r->notes[i]);
        sb_printf(&b, "\n");
    }
    return sb_finish(&b, out, err);
}

/* ---- HTML ---- */
static void html_text(sbuf *b, const char *s)
{
    for (const char *p = s; *p; p++) {
        switch (*p) {
        case '<': sb_printf(b, "&lt;"); break;
        case '>': sb_printf(b, "&gt;"); break;
        case '&': sb_printf(b, "&amp;"); break;
        case '"': sb_printf(b, "&quot;"); break;
        default: sb_printf(b, "%c", *p);
        }
    }
}

joule_status joule_energy_html(const joule_energy_result *r, char **out, joule_error *err)
{
    sbuf b = {0};
    const char *k = kind(r);
    sb_printf(&b, "<section class=\"joule-energy\">\n<h2>Energy</h2>\n<p><strong>%s</strong> ",
              r->estimated ? "Estimated, not measured." : "Measured.");
    if (r->estimated)
        sb_printf(&b, "No energy counter measures on this machine; every energy figure below comes "
                      "from a model: ");
    html_text(&b, method_body(r));
    sb_printf(&b, ".</p>\n<table>\n<tr><th></th><th>A (base)</th><th>B (candidate)</th></tr>\n<tr><td>model</td><td><code>");
    html_text(&b, r->models[0].path);
    sb_printf(&b, "</code></td><td><code>");
    html_text(&b, r->models[1].path);
    sb_printf(&b, "</code></td></tr>\n");
    row rows[12];
    size_t n = table_rows(r, rows);
    for (size_t i = 0; i < n; i++) {
        sb_printf(&b, "<tr><td>");
        html_text(&b, rows[i].label);
        sb_printf(&b, "</td><td>");
        html_text(&b, rows[i].a);
        sb_printf(&b, "</td><td>");
        html_text(&b, rows[i].b);
        sb_printf(&b, "</td></tr>\n");
    }
    char buf[96];
    sb_printf(&b, "</table>\n<p>B/A energy per inference (%s): ", k);
    html_text(&b, fmt_ri(r->ratio, buf, sizeof buf));
    sb_printf(&b, " (paired bootstrap 95%% CI, %zu resamples); dynamic (%s): ", r->resamples, k);
    html_text(&b, fmt_ri(r->dynamic_ratio, buf, sizeof buf));
    if (isfinite(r->graph_ratio))
        sb_printf(&b, "; graph model (estimated): %.4g", r->graph_ratio);
    sb_printf(&b, ".</p>\n<p>Idle power (%s): %.4g W before, %.4g W after. CO2e: %.4g g/kWh &times; PUE "
                  "%.3g.</p>\n<p>Machine: ",
              k, r->idle_before_w, r->idle_after_w, r->grid_g_per_kwh, r->pue);
    html_text(&b, r->machine.cpu_model);
    sb_printf(&b, ", %d cores, governor ", r->machine.cores);
    html_text(&b, r->machine.governor);
    sb_printf(&b, ", ");
    html_text(&b, r->machine.kernel);
    sb_printf(&b, "; backend %s, threads %d, batch %d.</p>\n", r->backend, r->threads, r->batch);
    sb_printf(&b, "<table>\n<tr><th>source</th><th>item</th><th>state</th><th>detail</th><th>fix</th></tr>\n");
    for (size_t i = 0; i < r->n_probes; i++) {
        const joule_probe *p = &r->probes[i];
        const char *cells[5] = {p->source, p->item, joule_probe_state_name(p->state), p->detail, p->fix};
        sb_printf(&b, "<tr>");
        for (int c = 0; c < 5; c++) {
            sb_printf(&b, "<td>");
            html_text(&b, cells[c]);
            sb_printf(&b, "</td>");
        }
        sb_printf(&b, "</tr>\n");
    }
    sb_printf(&b, "</table>\n");
    for (size_t i = 0; i < r->n_notes; i++) {
        sb_printf(&b, "<p class=\"note\">");
        html_text(&b, r->notes[i]);
        sb_printf(&b, "</p>\n");
    }
    sb_printf(&b, "</section>\n");
    return sb_finish(&b, out, err);
}

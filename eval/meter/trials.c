/* eval/meter/trials.c: the measurement method on two workloads and an open meter: warm-up, idle
 * power before, interleaved A/B windows in seeded order, idle power after, then per-inference
 * statistics. Time comes only from the given clock and energy only from the meter, so tests can
 * drive every step with a scripted clock and counters. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "joule/energy.h"

#define LAT_MAX ((size_t)1 << 22) /* latencies kept per model (32 MiB of doubles at most) */
/* Quiet time before each idle window: worker threads (OpenMP, OpenBLAS) spin for a while after
 * work before they sleep, and that spinning is not the machine's idle power. */
#define SETTLE_S 0.5

typedef struct lat_buf {
    double *v;
    size_t n, cap;
    bool full;
} lat_buf;

static void lat_push(lat_buf *b, double x)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 4096;
        double *v = cap <= LAT_MAX ? realloc(b->v, cap * sizeof *v) : NULL;
        if (!v) {
            b->full = true;
            return;
        }
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n++] = x;
}

static void add_note(joule_energy_result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_note(joule_energy_result *r, const char *fmt, ...)
{
    if (r->n_notes == JOULE_ENERGY_MAX_NOTES)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->notes[r->n_notes++], sizeof r->notes[0], fmt, ap);
    va_end(ap);
}

/* Sleeps for s seconds, sampling the meter every `period` (0: never). */
static joule_status quiet(joule_meter *meter, const joule_clock *c, double s, double period,
                          joule_error *err)
{
    double t0 = c->now(c->ctx);
    for (;;) {
        double left = s - (c->now(c->ctx) - t0);
        if (left <= 1e-9) /* 1 ns: a clock far from 0 cannot resolve less */
            break;
        c->sleep(c->ctx, period > 0 && period < left ? period : left);
        joule_status st = period > 0 ? joule_meter_sample(meter, err) : JOULE_OK;
        if (st)
            return st;
    }
    return JOULE_OK;
}

/* Settles, then sleeps for window seconds sampling every `period` and gives the mean power. */
static joule_status idle_window(joule_meter *meter, const joule_clock *c, double window, double period,
                                double *watts, joule_error *err)
{
    joule_meter_reading r0, r1;
    joule_status st = quiet(meter, c, SETTLE_S, period, err);
    if (st || (st = joule_meter_read(meter, &r0, err)))
        return st;
    for (;;) {
        double left = window - (c->now(c->ctx) - r0.t);
        if (left <= 1e-9) /* 1 ns: a clock far from 0 cannot resolve less */
            break;
        c->sleep(c->ctx, period > 0 && period < left ? period : left);
        if (period > 0 && (st = joule_meter_sample(meter, err)))
            return st;
    }
    if ((st = joule_meter_read(meter, &r1, err)))
        return st;
    *watts = r1.t > r0.t ? (r1.joules - r0.joules) / (r1.t - r0.t) : 0;
    return JOULE_OK;
}

/* Runs w for at least window seconds (at least one inference). */
static joule_status run_window(joule_meter *meter, const joule_clock *c, const joule_workload *w,
                               double window, double period, joule_energy_trial *t, lat_buf *lat,
                               joule_error *err)
{
    joule_meter_reading r0, r1;
    joule_status st = joule_meter_read(meter, &r0, err);
    if (st)
        return st;
    double prev = c->now(c->ctx), start = prev, sampled = prev;
    uint64_t n = 0;
    for (;;) {
        if ((st = w->run(w->ctx, err)))
            return st;
        double now = c->now(c->ctx);
        lat_push(lat, now - prev);
        prev = now;
        n++;
        if (now - start >= window)
            break;
        if (period > 0 && now - sampled >= period) {
            if ((st = joule_meter_sample(meter, err)))
                return st;
            sampled = now;
        }
    }
    if ((st = joule_meter_read(meter, &r1, err)))
        return st;
    t->joules = r1.joules - r0.joules;
    t->wall_s = r1.t - r0.t;
    t->cpu_s = r1.cpu_s - r0.cpu_s;
    t->inferences = n;
    bool hw = r0.has_hw && r1.has_hw;
    t->instructions = hw && r0.instructions >= 0 ? r1.instructions - r0.instructions : -1;
    t->cycles = hw && r0.cycles >= 0 ? r1.cycles - r0.cycles : -1;
    t->llc_misses = hw && r0.llc_misses >= 0 ? r1.llc_misses - r0.llc_misses : -1;
    return JOULE_OK;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static joule_interval scale_interval(joule_interval v, double k)
{
    joule_interval r = {v.mean * k, v.lo * k, v.hi * k};
    return r;
}

static joule_interval reciprocal(joule_interval v)
{
    joule_interval r = {v.mean > 0 ? 1 / v.mean : NAN, v.hi > 0 ? 1 / v.hi : NAN, v.lo > 0 ? 1 / v.lo : NAN};
    if (!(v.lo > 0))
        r.hi = NAN; /* the interval reaches 0 J: no finite upper bound */
    return r;
}

/* Per-inference figures of one model from its trials. */
static void summarize(joule_energy_result *r, int model, lat_buf *lat, double *e, double *d,
                      double *pair_e, double *pair_d)
{
    joule_energy_model *mm = &r->models[model];
    size_t k = 0;
    double ins = 0, cyc = 0, llc = 0;
    bool has_ins = true, has_cyc = true, has_llc = true;
    for (size_t i = 0; i < r->n_trials; i++) {
        const joule_energy_trial *t = &r->trial[i];
        if (t->model != model)
            continue;
        double inf = (double)t->inferences;
        e[k] = t->joules / inf;
        d[k] = (t->joules - r->idle_w * t->wall_s) / inf;
        pair_e[t->pair] = e[k];
        pair_d[t->pair] = d[k];
        k++;
        mm->inferences += t->inferences;
        mm->wall_s += t->wall_s;
        mm->cpu_s += t->cpu_s;
        mm->joules += t->joules;
        has_ins = has_ins && t->instructions >= 0;
        has_cyc = has_cyc && t->cycles >= 0;
        has_llc = has_llc && t->llc_misses >= 0;
        ins += t->instructions;
        cyc += t->cycles;
        llc += t->llc_misses;
    }
    mm->energy_j = joule_mean_ci95(e, k);
    mm->dynamic_j = joule_mean_ci95(d, k);
    mm->per_joule = reciprocal(mm->energy_j);
    /* g CO2e per J = PUE x (g/kWh) / 3.6e6 J/kWh */
    mm->co2e_g = scale_interval(mm->energy_j, r->pue * r->grid_g_per_kwh / 3.6e6);
    qsort(lat->v, lat->n, sizeof *lat->v, cmp_double);
    mm->latency_p50_s = joule_quantile(lat->v, lat->n, 0.5);
    mm->latency_p90_s = joule_quantile(lat->v, lat->n, 0.9);
    double inf = (double)mm->inferences;
    mm->instructions = has_ins && inf > 0 ? ins / inf : -1;
    mm->cycles = has_cyc && inf > 0 ? cyc / inf : -1;
    mm->llc_misses = has_llc && inf > 0 ? llc / inf : -1;
}

void joule_energy_result_free(joule_energy_result *r)
{
    if (!r)
        return;
    free(r->probes);
    free(r->domains);
    free(r->trial);
    free(r);
}

joule_status joule_energy_trials(joule_meter *meter, const joule_clock *clock,
                                 const joule_workload *a, const joule_workload *b,
                                 const joule_trial_options *opt, joule_energy_result **out,
                                 joule_error *err)
{
    *out = NULL;
    joule_clock sys = joule_clock_system();
    const joule_clock *c = clock ? clock : &sys;
    if (!(opt->window_s > 0) || !isfinite(opt->window_s))
        return joule_fail(err, JOULE_ERR_INVALID, "energy: --window must be a positive time");
    if (opt->trials < 1 || opt->trials > 100000)
        return joule_fail(err, JOULE_ERR_INVALID, "energy: --trials must be 1 to 100000, got %zu", opt->trials);
    if (opt->grid_g_per_kwh < 0 || !isfinite(opt->grid_g_per_kwh) || (opt->pue != 0 && !(opt->pue >= 1)) ||
        !isfinite(opt->pue) || !(opt->warmup_s >= 0) || !isfinite(opt->warmup_s))
        return joule_fail(err, JOULE_ERR_INVALID,
                          "energy: --grid-intensity must be >= 0, --pue >= 1 and --warmup >= 0");
    joule_energy_result *r = calloc(1, sizeof *r);
    if (!r)
        return joule_fail(err, JOULE_ERR_NOMEM, "energy: out of memory");
    size_t np = joule_meter_n_probes(meter), nd = joule_meter_n_domains(meter);
    r->probes = calloc(np ? np : 1, sizeof *r->probes);
    r->domains = calloc(nd ? nd : 1, sizeof *r->domains);
    r->trial = calloc(2 * opt->trials, sizeof *r->trial);
    unsigned char *order = calloc(opt->trials, 1);
    double *buf = calloc(4 * opt->trials + 4 * opt->trials, sizeof *buf);
    lat_buf lat[2] = {{0}, {0}};
    joule_status st = JOULE_OK;
    if (!r->probes || !r->domains || !r->trial || !order || !buf) {
        st = joule_fail(err, JOULE_ERR_NOMEM, "energy: out of memory");
        goto done;
    }
    r->n_probes = np;
    for (size_t i = 0; i < np; i++)
        r->probes[i] = *joule_meter_probe(meter, i);
    r->n_domains = nd;
    for (size_t i = 0; i < nd; i++)
        r->domains[i] = *joule_meter_domain(meter, i);
    snprintf(r->method, sizeof r->method, "%s", joule_meter_method(meter));
    r->estimated = joule_meter_estimated(meter);
    r->cpu_watts = joule_meter_cpu_watts(meter);
    r->requested_window_s = opt->window_s;
    r->trials = opt->trials;
    r->seed = opt->seed;
    r->resamples = opt->resamples ? opt->resamples : 10000;
    r->warmup_s = opt->warmup_s;
    r->grid_g_per_kwh = opt->grid_g_per_kwh > 0 ? opt->grid_g_per_kwh : 475.0;
    r->pue = opt->pue > 0 ? opt->pue : 1.0;
    r->graph_ratio = NAN;
    double period = joule_meter_update_period(meter);
    double sample = joule_meter_sample_period(meter);
    r->window_s = opt->window_s;
    if (100 * period > r->window_s) {
        r->window_s = 100 * period;
        add_note(r, "window raised from %.3g s to %.3g s: 100 update periods of the slowest counter",
                 opt->window_s, r->window_s);
    }
    if (nd == 0)
        add_note(r, "no energy domain is counted: energies are 0");

    const joule_workload *w[2] = {a, b};
    for (int k = 0; k < 2; k++) {
        double t0 = c->now(c->ctx);
        for (int runs = 0; runs < 3 || c->now(c->ctx) - t0 < opt->warmup_s; runs++)
            if ((st = w[k]->run(w[k]->ctx, err)))
                goto done;
    }
    if ((st = idle_window(meter, c, r->window_s, sample, &r->idle_before_w, err)))
        goto done;
    joule_interleave(opt->seed, opt->trials, order);
    for (size_t p = 0; p < opt->trials; p++) {
        for (int pos = 0; pos < 2; pos++) {
            int model = order[p] ? 1 - pos : pos;
            joule_energy_trial *t = &r->trial[r->n_trials];
            t->model = model;
            t->pair = p;
            t->position = pos;
            if ((st = run_window(meter, c, w[model], r->window_s, sample, t, &lat[model], err)))
                goto done;
            r->n_trials++;
        }
    }
    if ((st = idle_window(meter, c, r->window_s, sample, &r->idle_after_w, err)))
        goto done;
    r->idle_w = 0.5 * (r->idle_before_w + r->idle_after_w);
    double hi = fmax(r->idle_before_w, r->idle_after_w), lo = fmin(r->idle_before_w, r->idle_after_w);
    if (hi > 0.5 && hi - lo > 0.1 * hi)
        add_note(r, "idle power drifted from %.3g W to %.3g W: the machine was not quiet",
                 r->idle_before_w, r->idle_after_w);
    for (int k = 0; k < 2; k++)
        if (lat[k].full)
            add_note(r, "latency percentiles of %s use the first %zu inferences",
                     k ? "the candidate" : "the base", lat[k].n);
    size_t n = opt->trials;
    double *e = buf, *d = buf + n, *pe[2] = {buf + 2 * n, buf + 3 * n}, *pd[2] = {buf + 4 * n, buf + 5 * n};
    for (int k = 0; k < 2; k++)
        summarize(r, k, &lat[k], e, d, pe[k], pd[k]);
    r->ratio = joule_bootstrap_ratio(pe[0], pe[1], n, r->resamples, opt->seed ^ 0xB0075712A9ull);
    r->dynamic_ratio = joule_bootstrap_ratio(pd[0], pd[1], n, r->resamples, opt->seed ^ 0xD1A9ull);
    if (n < 2)
        add_note(r, "one trial per model: no confidence intervals");
done:
    free(order);
    free(buf);
    free(lat[0].v);
    free(lat[1].v);
    if (st) {
        joule_energy_result_free(r);
        return st;
    }
    *out = r;
    return JOULE_OK;
}

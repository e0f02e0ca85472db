/* tools/joule/report_cli.h: what the report, sweep, batch and demo commands share: option
 * values ("--opt V" or "--opt=V"), number parsing, a progress bar fed by the report's staged
 * callbacks (drawn only when stderr is a terminal), and the short summary of a report. */
#ifndef JOULE_REPORT_CLI_H
#define JOULE_REPORT_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "joule/report.h"
#include "progress.h"

/* Value of option opt at argv[*i] ("--opt V" or "--opt=V"); NULL when argv[*i] is not opt, with
 * *missing set when the value is absent. */
const char *rc_opt(int argc, char **argv, int *i, const char *opt, bool *missing);
/* A count >= lo. */
bool rc_parse_size(const char *v, size_t lo, size_t *out);
/* A fraction in [0, 1], or a percentage "85%". */
bool rc_parse_accuracy(const char *v, double *out);
/* "0.3,0.5,0.7" into at most max fractions in [0, 1). */
bool rc_parse_fractions(const char *v, double *out, size_t max, size_t *n);

/* mkdir -p: 0, or -1 with errno set. */
int rc_mkdirs(const char *dir);

/* A progress bar that restarts for each stage of joule_report_measure. */
typedef struct rc_progress {
    progress_bar pb;
    const char *stage;
    bool started;
} rc_progress;

void rc_progress_stage(void *user, const char *stage, size_t done, size_t total);
void rc_progress_done(rc_progress *p);

/* Five lines: size, accuracy, latency, energy, where the report is (dir may be NULL). */
void rc_print_summary(FILE *f, const joule_report_doc *d, const char *dir);

#endif

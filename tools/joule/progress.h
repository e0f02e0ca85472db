/* tools/joule/progress.h: a one-line progress bar with rate and ETA on stderr, drawn only when
 * stderr is a terminal (so logs and pipes stay clean). Any subcommand with a long loop can use it:
 *
 *     progress_bar pb;
 *     progress_start(&pb, "eval", total, "img");
 *     ... progress_update(&pb, done); ...
 *     progress_finish(&pb);
 */
#ifndef JOULE_PROGRESS_H
#define JOULE_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef struct progress_bar {
    FILE *f;
    bool on;            /* stderr is a terminal */
    const char *label;  /* e.g. "eval" */
    const char *unit;   /* e.g. "img" (rate is shown as unit/s) */
    size_t total, done;
    double start, last; /* seconds (monotonic) */
    bool drawn;
} progress_bar;

/* Starts a bar for total steps (0: unknown, no percentage or ETA). */
void progress_start(progress_bar *pb, const char *label, size_t total, const char *unit);
/* Records done steps; redraws at most ten times a second, and always at the end. */
void progress_update(progress_bar *pb, size_t done);
/* Clears the line, leaving the terminal as it was. */
void progress_finish(progress_bar *pb);
/* An adapter for library callbacks shaped void (*)(void *user, size_t done, size_t total). */
void progress_callback(void *user, size_t done, size_t total);

#endif

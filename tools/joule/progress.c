/* tools/joule/progress.c: the progress bar of progress.h: "\r" redraws of one line on stderr with
 * a bar, count, percentage, rate and ETA, only when stderr is a terminal. */
#include "progress.h"

#include <time.h>
#include <unistd.h>

#define BAR_WIDTH 28

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void progress_start(progress_bar *pb, const char *label, size_t total, const char *unit)
{
    pb->f = stderr;
    pb->on = isatty(fileno(stderr)) == 1;
    pb->label = label ? label : "";
    pb->unit = unit ? unit : "it";
    pb->total = total;
    pb->done = 0;
    pb->start = now_s();
    pb->last = 0;
    pb->drawn = false;
}

/* "1m05s" / "42s" */
static void format_eta(double s, char *buf, size_t size)
{
    if (s < 0 || s > 360000) {
        snprintf(buf, size, "?");
        return;
    }
    unsigned long t = (unsigned long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, size, "%luh%02lum", t / 3600, t / 60 % 60);
    else if (t >= 60)
        snprintf(buf, size, "%lum%02lus", t / 60, t % 60);
    else
        snprintf(buf, size, "%lus", t);
}

void progress_update(progress_bar *pb, size_t done)
{
    pb->done = done;
    if (!pb->on)
        return;
    double t = now_s();
    bool end = pb->total && done >= pb->total;
    if (!end && pb->drawn && t - pb->last < 0.1)
        return;
    pb->last = t;
    pb->drawn = true;
    double el = t - pb->start;
    double rate = el > 0 ? (double)done / el : 0;
    char line[160], eta[32] = "";
    if (pb->total) {
        size_t fill = done >= pb->total ? BAR_WIDTH : done * BAR_WIDTH / pb->total;
        char bar[BAR_WIDTH + 1];
        for (size_t i = 0; i < BAR_WIDTH; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[BAR_WIDTH] = 0;
        if (rate > 0 && done < pb->total)
            format_eta((double)(pb->total - done) / rate, eta, sizeof eta);
        snprintf(line, sizeof line, "%s [%s] %zu/%zu %3.0f%% %.0f %s/s%s%s", pb->label, bar, done,
                 pb->total, 100.0 * (double)done / (double)pb->total, rate, pb->unit,
                 eta[0] ? " ETA " : "", eta);
    } else {
        snprintf(line, sizeof line, "%s %zu %.0f %s/s", pb->label, done, rate, pb->unit);
    }
    fprintf(pb->f, "\r%s\033[K", line);
    fflush(pb->f);
}

void progress_finish(progress_bar *pb)
{
    if (pb->on && pb->drawn) {
        fprintf(pb->f, "\r\033[K");
        fflush(pb->f);
    }
    pb->drawn = false;
}

void progress_callback(void *user, size_t done, size_t total)
{
    progress_bar *pb = user;
    if (total && !pb->total)
        pb->total = total;
    progress_update(pb, done);
}

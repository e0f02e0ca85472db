/* eval/meter/clock.c: the real clock (CLOCK_MONOTONIC, process CPU time, nanosleep) and the real
 * file reader (open/read) behind joule_clock_system() and joule_file_reader_system(), plus the
 * small text-file helpers every source reads sysfs with. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "eval/meter/meter_internal.h"

static double ts_seconds(const struct timespec *ts)
{
    return (double)ts->tv_sec + 1e-9 * (double)ts->tv_nsec;
}

static double sys_now(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts_seconds(&ts);
}

static double sys_cpu(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
        return 0.0;
    return ts_seconds(&ts);
}

static void sys_sleep(void *ctx, double s)
{
    (void)ctx;
    if (!(s > 0))
        return;
    struct timespec ts;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec > 999999999L)
        ts.tv_nsec = 999999999L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

joule_clock joule_clock_system(void)
{
    joule_clock c = {NULL, sys_now, sys_cpu, sys_sleep};
    return c;
}

static int sys_read(void *ctx, const char *path, char *buf, size_t size)
{
    (void)ctx;
    if (!buf || size == 0)
        return EINVAL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    size_t n = 0;
    while (n + 1 < size) {
        ssize_t r = read(fd, buf + n, size - 1 - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            return e;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = 0;
    close(fd);
    return 0;
}

joule_file_reader joule_file_reader_system(void)
{
    joule_file_reader r = {NULL, sys_read};
    return r;
}

int meter_read_text(const joule_meter *m, const char *path, char *buf, size_t size)
{
    int e = m->reader.read(m->reader.ctx, path, buf, size);
    if (e)
        return e;
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' ' || buf[n - 1] == '\t' || buf[n - 1] == '\r'))
        buf[--n] = 0;
    return 0;
}

int meter_read_u64(const joule_meter *m, const char *path, unsigned long long *out)
{
    char buf[64];
    int e = meter_read_text(m, path, buf, sizeof buf);
    if (e)
        return e;
    if (buf[0] < '0' || buf[0] > '9')
        return EINVAL;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    if (errno || *end)
        return EINVAL;
    *out = v;
    return 0;
}

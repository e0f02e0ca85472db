/* eval/meter/machine.c: what an energy figure depends on besides the model: CPU model, online
 * cores, cpufreq governor, kernel and last-level cache size. Files are read through the caller's
 * joule_file_reader so tests can describe any machine. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "joule/energy.h"

static int read_text(const joule_file_reader *r, const char *path, char *buf, size_t size)
{
    int e = r->read(r->ctx, path, buf, size);
    if (e)
        return e;
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = 0;
    return 0;
}

/* The CPU model from /proc/cpuinfo ("model name", else "Hardware" or "cpu model"). 0 or errno. */
int meter_cpu_model(const joule_file_reader *reader, char *buf, size_t size);
int meter_cpu_model(const joule_file_reader *reader, char *buf, size_t size)
{
    size_t cap = 1 << 16;
    char *text = malloc(cap);
    if (!text)
        return ENOMEM;
    int e = reader->read(reader->ctx, "/proc/cpuinfo", text, cap);
    if (e) {
        free(text);
        return e;
    }
    static const char *keys[] = {"model name", "Hardware", "cpu model", "Model"};
    e = ENOENT;
    for (size_t k = 0; k < sizeof keys / sizeof *keys && e; k++) {
        size_t kl = strlen(keys[k]);
        for (char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
            if (strncmp(line, keys[k], kl) != 0 || (line[kl] != ' ' && line[kl] != '\t' && line[kl] != ':'))
                continue;
            char *colon = strchr(line, ':');
            char *end = strchr(line, '\n');
            if (!colon || (end && colon > end))
                continue;
            colon++;
            while (*colon == ' ' || *colon == '\t')
                colon++;
            size_t n = end ? (size_t)(end - colon) : strlen(colon);
            if (n >= size)
                n = size - 1;
            memcpy(buf, colon, n);
            buf[n] = 0;
            e = 0;
            break;
        }
    }
    free(text);
    return e;
}

/* "307200K" -> bytes. */
static uint64_t parse_size(const char *s)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s)
        return 0;
    if (*end == 'K')
        v <<= 10;
    else if (*end == 'M')
        v <<= 20;
    else if (*end == 'G')
        v <<= 30;
    return (uint64_t)v;
}

joule_status joule_machine_describe(const joule_file_reader *reader, joule_machine *out,
                                    joule_error *err)
{
    (void)err;
    joule_file_reader sys = joule_file_reader_system();
    if (!reader)
        reader = &sys;
    memset(out, 0, sizeof *out);
    if (meter_cpu_model(reader, out->cpu_model, sizeof out->cpu_model) != 0)
        snprintf(out->cpu_model, sizeof out->cpu_model, "unknown");
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    out->cores = n > 0 ? (int)n : 0;
    if (read_text(reader, "/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", out->governor,
                  sizeof out->governor) != 0 || !out->governor[0])
        snprintf(out->governor, sizeof out->governor, "unknown");
    struct utsname u;
    if (uname(&u) == 0)
        snprintf(out->kernel, sizeof out->kernel, "%.40s %.80s", u.sysname, u.release);
    else
        snprintf(out->kernel, sizeof out->kernel, "unknown");
    /* the highest cache level of cpu0 */
    for (int i = 0; i < 8; i++) {
        char path[128], buf[64];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
        if (read_text(reader, path, buf, sizeof buf) != 0)
            break;
        int level = atoi(buf);
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        if (level >= 2 && read_text(reader, path, buf, sizeof buf) == 0)
            out->llc_bytes = parse_size(buf); /* indexes go up by level */
    }
    return JOULE_OK;
}

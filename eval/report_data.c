/* eval/report_data.c: where the files joule ships live (the demo's model): an override in the
 * environment, the source tree joule was built from, or the installed data folder beside the
 * program. */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "report_internal.h"

static bool readable(const char *p)
{
    return access(p, R_OK) == 0;
}

joule_status joule_find_data_file(const char *name, char *out, size_t size, joule_error *err)
{
    const char *env = getenv("JOULE_DATA_DIR");
    if (env && *env && (size_t)snprintf(out, size, "%s/%s", env, name) < size && readable(out))
        return JOULE_OK;
    if ((size_t)snprintf(out, size, "%s/tests/data/%s", JOULE_SOURCE_DIR, name) < size &&
        readable(out))
        return JOULE_OK;
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        if ((size_t)snprintf(out, size, "%s/../share/joule/%s", dirname(exe), name) < size &&
            readable(out))
            return JOULE_OK;
    }
    out[0] = 0;
    return joule_fail(err, JOULE_ERR_NOT_FOUND,
                      "%s: not found in $JOULE_DATA_DIR, %s/tests/data or the installed share/joule "
                      "folder", name, JOULE_SOURCE_DIR);
}

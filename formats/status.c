/* formats/status.c: status names and the error formatter every module uses. */
#include <stdarg.h>
#include <stdio.h>

#include "joule/status.h"

const char *joule_status_name(joule_status s)
{
    switch (s) {
    case JOULE_OK: return "ok";
    case JOULE_ERR_IO: return "io";
    case JOULE_ERR_PARSE: return "parse";
    case JOULE_ERR_INVALID: return "invalid";
    case JOULE_ERR_UNSUPPORTED: return "unsupported";
    case JOULE_ERR_NOMEM: return "out of memory";
    case JOULE_ERR_SECURITY: return "refused";
    case JOULE_ERR_NOT_FOUND: return "not found";
    }
    return "unknown";
}

joule_status joule_fail(joule_error *err, joule_status s, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        /* one line: a newline inside a message (e.g. from a model's own strings) is flattened */
        for (char *p = err->msg; *p; p++)
            if (*p == '\n' || *p == '\r')
                *p = ' ';
    }
    return s;
}

/* tools/joule/cli.c: shared command-line helpers (errors, --input-shape). */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>

int cli_error(const char *cmd, const joule_error *err)
{
    fprintf(stderr, "joule %s: %s\n", cmd, err->msg);
    return 1;
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "joule %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see 'joule %s --help')\n", cmd);
    va_end(ap);
    return 2;
}

int cli_add_shape(const char *cmd, cli_shapes *s, const char *arg)
{
    if (s->n == CLI_MAX_SHAPES)
        return cli_usage(cmd, "--input-shape: at most %d inputs", CLI_MAX_SHAPES);
    joule_error err;
    if (joule_parse_input_shape(arg, s->names[s->n], sizeof s->names[s->n], &s->shapes[s->n], &err))
        return cli_usage(cmd, "--input-shape: %s", err.msg);
    s->shapes[s->n].name = s->names[s->n];
    s->n++;
    return 0;
}

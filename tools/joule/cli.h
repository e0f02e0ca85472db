/* tools/joule/cli.h: small helpers every subcommand shares: one-line errors on stderr and
 * parsing of repeated --input-shape options. */
#ifndef JOULE_CLI_H
#define JOULE_CLI_H

#include <stddef.h>

#include "joule/joule.h"

/* Prints "joule CMD: message" on stderr; returns 1 (or 2 for usage errors via cli_usage). */
int cli_error(const char *cmd, const joule_error *err);
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define CLI_MAX_SHAPES 32
typedef struct cli_shapes {
    size_t n;
    joule_input_shape shapes[CLI_MAX_SHAPES];
    char names[CLI_MAX_SHAPES][256];
} cli_shapes;

/* Adds one NAME=DIMS argument; returns 0, or 2 after printing a usage error. */
int cli_add_shape(const char *cmd, cli_shapes *s, const char *arg);

#endif

/* tools/joule/main.c: the joule command line: dispatches to one subcommand. Everything a command
 * does is a call into libjoule's public API; this file only picks the command. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "joule/joule.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} command;

static const command commands[] = {
    {"info", joule_cmd_info, "show a model's inputs, layers, parameters, sparsity and MACs"},
    {"run", joule_cmd_run, "run a model on .npy inputs and write its outputs as .npy"},
};

static void print_usage(FILE *f)
{
    fprintf(f, "usage: joule COMMAND [ARGS]   (joule %s)\ncommands:\n", JOULE_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "'joule COMMAND --help' describes one command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        print_usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("joule %s\n", JOULE_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "joule: unknown command '%s' (see 'joule --help')\n", argv[1]);
    return 2;
}

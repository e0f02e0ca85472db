/* tools/joule/main.c: the joule command line: dispatches to one subcommand. Everything a command
 * does is a call into libjoule's public API; this file only picks the command. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "joule/cpu.h"
#include "joule/joule.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} command;

static const command commands[] = {
    {"info", joule_cmd_info, "show a model's inputs, layers, parameters, sparsity and MACs"},
    {"run", joule_cmd_run, "run a model on .npy inputs and write its outputs as .npy"},
    {"compress", joule_cmd_compress, "prune and clean up a model (passes from flags or a recipe)"},
    {"eval", joule_cmd_eval, "accuracy on a dataset (top-1/top-5 with intervals), against a baseline"},
    {"report", joule_cmd_report, "before/after report of two models: JSON, Markdown and HTML with charts"},
    {"energy", joule_cmd_energy, "energy per inference of two models (counters, else a labelled estimate)"},
    {"sweep", joule_cmd_sweep, "compress at several pruning levels (or one layer at a time) and chart accuracy against size"},
    {"batch", joule_cmd_batch, "compress and report every model of a manifest, in parallel processes"},
    {"demo", joule_cmd_demo, "compress the bundled CNN (50% pruning + int8), evaluate, time, report"},
};

static void print_usage(FILE *f)
{
    fprintf(f, "usage: joule COMMAND [ARGS]   (joule %s)\ncommands:\n", JOULE_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "'joule COMMAND --help' describes one command.\n");
}

/* Re-executes once with OPENBLAS_CORETYPE set when OpenBLAS fell back to generic kernels this
 * CPU does not need (see joule/cpu.h); JOULE_NO_BLAS_REEXEC=1 turns this off. */
static void choose_blas_core(char **argv)
{
    const char *better = joule_cpu_blas_better_core();
    if (!better || getenv("JOULE_NO_BLAS_REEXEC") || getenv("JOULE_BLAS_REEXECED"))
        return;
    setenv("OPENBLAS_CORETYPE", better, 1);
    setenv("JOULE_BLAS_REEXECED", "1", 1);
    execv("/proc/self/exe", argv);
    /* exec failed: carry on with the generic kernels */
    unsetenv("OPENBLAS_CORETYPE");
}

int main(int argc, char **argv)
{
    choose_blas_core(argv);
    if (argc < 2) {
        print_usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        print_usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("joule %s (OpenBLAS core %s)\n", JOULE_VERSION, joule_cpu_blas_core());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "joule: unknown command '%s' (see 'joule --help')\n", argv[1]);
    return 2;
}

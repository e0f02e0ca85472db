/* tools/joule/main.c: the joule command line: dispatches to one subcommand. */
#include <stdio.h>
#include <string.h>

#include "joule/joule.h"

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        printf("usage: joule COMMAND [ARGS]\n");
        return argc < 2 ? 2 : 0;
    }
    fprintf(stderr, "joule: unknown command '%s'\n", argv[1]);
    return 2;
}

/* tools/joule/commands.h: the subcommands of the joule program. Each takes the arguments after
 * its own name (argv[0] is the subcommand) and returns the process exit status: 0 success,
 * 1 failure of the work, 2 a usage error. */
#ifndef JOULE_COMMANDS_H
#define JOULE_COMMANDS_H

int joule_cmd_info(int argc, char **argv);
int joule_cmd_run(int argc, char **argv);
int joule_cmd_compress(int argc, char **argv);
int joule_cmd_eval(int argc, char **argv);
int joule_cmd_report(int argc, char **argv);
int joule_cmd_energy(int argc, char **argv);
int joule_cmd_sweep(int argc, char **argv);
int joule_cmd_batch(int argc, char **argv);
int joule_cmd_demo(int argc, char **argv);

#endif

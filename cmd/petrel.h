/*
 * petrel.h - the subcommands of the petrel administration command.
 * Each takes the arguments after its own name (argv[0] is the subcommand) and
 * returns the process exit status; the configuration directory is already set.
 */
#ifndef PETREL_CMD_H
#define PETREL_CMD_H

int petrel_control_main(int argc, char **argv);  /* start start-fg stop abort reload status flush */
int petrel_check_main(int argc, char **argv);    /* check */
int petrel_conf_main(int argc, char **argv);     /* conf */
int petrel_map_main(int argc, char **argv);      /* map */
int petrel_queue_main(int argc, char **argv);    /* queue */
int petrel_stats_main(int argc, char **argv);    /* stats */

#endif

/*
 * commands - the `assetfs` subcommands. fs/main.c parses the command name
 * and hands the remaining arguments (argv[0] is the subcommand name) to one
 * of these. Each prints its own --help, reports errors as one line on
 * stderr, and returns the process exit status (0 success, 1 failure,
 * 2 usage error).
 */
#ifndef ASSETFS_FS_COMMANDS_H
#define ASSETFS_FS_COMMANDS_H

int cmd_push(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_resolve(int argc, char **argv);
int cmd_cat(int argc, char **argv);
int cmd_index(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_mount(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_cache(int argc, char **argv);
int cmd_warm(int argc, char **argv);
int cmd_pin(int argc, char **argv);

#endif

/*
 * main - the `assetfs` program: picks the subcommand and hands the rest of
 * the command line to it (fs/commands.h). Nothing else lives here: each
 * command parses its own options and prints its own --help.
 *
 * Exit status: 0 success, 1 failure, 2 usage error.
 */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "fs/cli/commands.h"

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
    {"push", cmd_push, "push a file or folder as a new asset version"},
    {"ls", cmd_ls, "list assets, or the versions of one asset"},
    {"resolve", cmd_resolve, "print the version and object a spec names"},
    {"cat", cmd_cat, "write a file of an asset version to stdout"},
    {"index", cmd_index, "rebuild assets.index from a listing"},
    {"keygen", cmd_keygen, "make an Ed25519 key pair to sign pushes"},
    {"mount", cmd_mount, "mount a store as a read-only tree"},
    {"stats", cmd_stats, "print the counters of a mount"},
    {"cache", cmd_cache, "inspect or clean the block cache"},
    {"warm", cmd_warm, "fetch asset versions into the cache, no mount"},
    {"pin", cmd_pin, "keep asset versions whole in the cache"},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fprintf(f, "usage: assetfs COMMAND [OPTIONS] [ARGS]\n"
		   "\n"
		   "assetfs mounts a store of versioned model assets (modelkit "
		   "layout)\nas a read-only tree and manages the store.\n"
		   "\n"
		   "Commands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  %-9s %s\n", commands[i].name,
			commands[i].summary);
	fprintf(f, "\n"
		   "Specs are NAME[:VERSION][[sub/path]], e.g. "
		   "'fraud/xgb:1.2[model.json]'.\n"
		   "The store is --store URL, else $ASSETFS_STORE, else\n"
		   "MODELKIT_STORAGE_PROVIDER / _BUCKET / _PREFIX.\n"
		   "Signed stores: 'push --sign KEY'; 'resolve', 'cat' and "
		   "'ls' take\n--verify-key KEY.pub (or $ASSETFS_VERIFY_KEY), "
		   "'mount' -o verify_key=KEY.pub.\n"
		   "http(s) stores with a token: --bearer-token-file FILE "
		   "(or\n$ASSETFS_BEARER_TOKEN_FILE), 'mount' -o "
		   "bearer_token_file=FILE.\n"
		   "Run 'assetfs COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
	const char *name;

	log_init("assetfs", LOG_LVL_WARN);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	name = argv[1];
	if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 ||
	    strcmp(name, "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(name, "--version") == 0) {
		printf("assetfs %s\n", ASSETFS_VERSION);
		return 0;
	}
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (strcmp(name, commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr,
		"assetfs: unknown command '%s' (see 'assetfs "
		"--help')\n",
		name);
	return 2;
}

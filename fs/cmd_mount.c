/*
 * cmd_mount - placeholder until the mount lands: `assetfs mount` and
 * `assetfs stats` say plainly that they are not built yet.
 */
#include <stdio.h>

#include "fs/commands.h"

int cmd_mount(int argc, char **argv)
{
	fprintf(stderr, "assetfs: mount: not implemented yet\n");
	return 1;
}

int cmd_stats(int argc, char **argv)
{
	fprintf(stderr, "assetfs: stats: not implemented yet\n");
	return 1;
}

/*
 * cmd_cache - placeholder until the cache lands.
 */
#include <stdio.h>

#include "fs/commands.h"

int cmd_cache(int argc, char **argv)
{
	fprintf(stderr, "assetfs: cache: not implemented yet\n");
	return 1;
}

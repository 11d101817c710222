/*
 * pin_cli - what `assetfs warm` and `assetfs pin` share: their options
 * (--store, --cache-dir, --threads, --timeout, --versioning,
 * --verify-key, --bearer-token-file) and the stack they open without a
 * mount: cache (with the limits the last mount recorded), store, catalog,
 * fetcher and pins (fs/mount/pins.h).
 *
 * Errors are one line on stderr, "assetfs CMD: ..."; functions return 0
 * or the exit status to return (1 failure, 2 usage).
 */
#ifndef ASSETFS_FS_CLI_PIN_CLI_H
#define ASSETFS_FS_CLI_PIN_CLI_H

#include <stdbool.h>

#include "fs/cache/cache.h"
#include "fs/catalog/catalog.h"
#include "fs/catalog/stats.h"
#include "fs/catalog/store.h"
#include "fs/mount/fetcher.h"
#include "fs/mount/pins.h"

struct pin_cli {
	const char *cmd; /* "warm", "pin add", ... for messages */
	const char *store_arg;
	const char *cache_dir;
	const char *versioning;
	const char *verify_key;
	const char *bearer_token_file;
	int threads;
	int timeout_ms;	      /* pin wait: 0 -> wait once */
	int store_timeout_ms; /* bound on one store request; 0 -> 30 s */
	struct cache *cache;
	struct store *st;
	struct stats *stats;
	struct catalog *cat;
	struct fetcher *fe;
	struct pins *pins;
};

/*
 * Parse the options of argv[1..] (argv[0] is the command); @help is
 * printed for --help. Returns -1 to go on (operands from optind), else
 * the exit status (0 after --help, 2 for a usage error).
 */
int pin_cli_parse(struct pin_cli *pc, int argc, char **argv, const char *help);

/* Open the cache dir. Returns 0 or 1 (message printed). */
int pin_cli_open_cache(struct pin_cli *pc);

/*
 * Open the store (@url, or --store / ASSETFS_STORE / MODELKIT_STORAGE_*
 * when NULL) and the catalog, fetcher and pins over it and the cache.
 * Returns 0, 1 (message printed) or 2 (no store named).
 */
int pin_cli_open_store(struct pin_cli *pc, const char *url);

/* Close what was opened (the store side, or everything). NULL-safe. */
void pin_cli_close_store(struct pin_cli *pc);
void pin_cli_close(struct pin_cli *pc);

/* One line on stderr: "assetfs CMD: MESSAGE". */
void pin_cli_err(const struct pin_cli *pc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));


#endif

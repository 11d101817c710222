/*
 * pins_int - what pins.c (resolving, pinning, warming, the alias gate)
 * and pins_daemon.c (the mount's thread, the pin file, the gauges) share.
 * pins_daemon.c calls pins.c, never the reverse. Not part of any
 * contract outside fs/mount/.
 *
 * Locks: p->lock guards the daemon's state (stop flag, the failure
 * memory); never held across I/O.
 */
#ifndef ASSETFS_FS_PINS_INT_H
#define ASSETFS_FS_PINS_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "fs/cache/cache_pin.h"
#include "fs/mount/pins.h"
#include "resolver/spec.h"

#define PINS_FILE_MAX (1u << 20) /* a pin file past this is refused */
#define PINS_RETRY_MS 5000	 /* a failed pin is tried again after */
#define PINS_FAILS 64		 /* failures remembered */

struct pin_fail {
	char spec[SPEC_NAME_MAX + SPEC_VERSION_MAX + 2];
	char version[SPEC_VERSION_MAX + 1];
	int64_t at_ms;
};

struct pins {
	struct catalog *cat;
	struct fetcher *fe;
	struct cache *cache;
	const char *url;
	int threads;
	/* the daemon */
	pthread_t tid;
	bool running;
	const char *file; /* borrowed from the mount's options */
	char source[4200];
	int interval_ms;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;			   /* protected by lock */
	struct pin_fail fails[PINS_FAILS]; /* protected by lock */
};

/* A pinned version that is ready and whose blocks the index all has. */
bool pins_row_complete(const struct cache_pin_info *r);

/* Whether the daemon was asked to stop (a warm in progress gives up). */
bool pins_stopping(struct pins *p);

#endif

/*
 * cmd_warm - `assetfs warm [SPEC...] [--store URL] [--cache-dir D]`:
 * fetch every block of the version each SPEC resolves to into the cache,
 * without a mount, and say what it cost. A pinned SPEC is kept current as
 * its pin (a floating pin moves to a new version); with no SPEC, every
 * pin of the store. Safe beside mounts on the same cache (one fetch per
 * block across processes) and resumable (present blocks are not fetched).
 *
 * Output: one summary line per spec on stdout; a progress bar on stderr
 * when it is a terminal. Exit status: 0, 1 if any spec failed, 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/progress.h"
#include "fs/cache/cache_pin.h"
#include "fs/cli/commands.h"
#include "fs/cli/pin_cli.h"

static const char warm_help[] =
    "usage: assetfs warm [SPEC...] [--store URL] [--cache-dir D]\n"
    "                    [--threads N]\n"
    "\n"
    "Fetch every block of the version each SPEC (NAME[:VERSION])\n"
    "resolves to into the cache, with N ranged GETs in flight (8),\n"
    "each block checked against the manifest's SHA-256. Blocks already\n"
    "present are not fetched again: an interrupted warm resumes. A\n"
    "pinned SPEC is kept current as a pin (a floating pin moves to\n"
    "its newest version and releases the old one once complete);\n"
    "with no SPEC, every pin of the store is.\n"
    "Prints per spec: 'warmed SPEC -> VERSION: B bytes in N blocks,\n"
    "fetched F, already present P, T s'.\n";

struct bar {
	struct progress p;
	char label[128];
	bool started;
};

static int on_progress(void *arg, uint64_t done, uint64_t total)
{
	struct bar *b = arg;

	if (!b->started) {
		progress_init(&b->p, b->label, total, 1u << 20);
		b->started = true;
	}
	progress_update(&b->p, done);
	return 0;
}

static void summary(const char *spec, const char *version,
		    const struct warm_result *w, bool warmed)
{
	if (!warmed) {
		printf("warmed %s -> %s: pinned and complete, nothing to "
		       "fetch\n",
		       spec, version);
		return;
	}
	printf("warmed %s -> %s: %" PRIu64 " bytes in %" PRIu64
	       " blocks, fetched %" PRIu64 ", already present %" PRIu64
	       ", %.2f s\n",
	       spec, version, w->bytes_total, w->blocks, w->bytes_fetched,
	       w->bytes_present, (double)w->ms / 1000.0);
}

/* Is @spec (normalised) pinned for the store? */
static bool is_pinned(struct pin_cli *pc, const char *spec)
{
	struct cache_pin_info *rows = NULL;
	size_t i, n = 0;
	bool found = false;

	if (cache_pin_list(pc->cache, pins_store(pc->pins), &rows, &n) < 0)
		return false;
	for (i = 0; i < n; i++)
		found |= strcmp(rows[i].spec, spec) == 0;
	cache_pin_list_free(rows, n);
	return found;
}

static int warm_one(struct pin_cli *pc, const char *text)
{
	char spec[SPEC_NAME_MAX + SPEC_VERSION_MAX + 2], err[WARM_ERR_MAX];
	struct cat_version *v = NULL;
	struct pins_report rep;
	struct warm_result w;
	struct bar b = {0};
	int ret;

	ret = pins_spec_norm(text, spec, sizeof(spec), err, sizeof(err));
	if (ret < 0) {
		pin_cli_err(pc, "%s", err);
		return ret;
	}
	if (snprintf(b.label, sizeof(b.label), "warming %s", spec) < 0)
		b.label[0] = '\0'; /* a long name is cut */
	if (is_pinned(pc, spec)) {
		ret = pins_ensure(pc->pins, spec, "cli", false, on_progress, &b,
				  &rep, err, sizeof(err));
		if (b.started)
			ret < 0 ? progress_abort(&b.p) : progress_finish(&b.p);
		if (ret < 0)
			pin_cli_err(pc, "%s", err);
		else
			summary(spec, rep.version, &rep.w, rep.warmed);
		return ret;
	}
	ret = pins_resolve(pc->pins, spec, &v, err, sizeof(err));
	if (ret == 0)
		ret = warm_version(pc->fe, pc->cache, pins_store(pc->pins), v,
				   pc->threads, on_progress, &b, &w, err,
				   sizeof(err));
	if (b.started)
		ret < 0 ? progress_abort(&b.p) : progress_finish(&b.p);
	if (ret < 0)
		pin_cli_err(pc, "%s", err);
	else
		summary(spec, v->version, &w, true);
	if (v)
		warm_blocks_clear(&w.learned);
	cat_version_unref(v);
	return ret;
}

int cmd_warm(int argc, char **argv)
{
	struct pin_cli pc = {.cmd = "warm"};
	struct cache_pin_info *rows = NULL;
	size_t i, n = 0;
	int ret, status = 0;

	ret = pin_cli_parse(&pc, argc, argv, warm_help);
	if (ret >= 0)
		return ret;
	ret = pin_cli_open_cache(&pc);
	if (ret == 0)
		ret = pin_cli_open_store(&pc, NULL);
	if (ret)
		goto out;
	if (optind < argc) {
		for (i = (size_t)optind; i < (size_t)argc; i++)
			if (warm_one(&pc, argv[i]) < 0)
				status = 1;
		goto out;
	}
	ret = cache_pin_list(pc.cache, pins_store(pc.pins), &rows, &n);
	if (ret < 0) {
		pin_cli_err(&pc, "cache index: %s", strerror(-ret));
		ret = 1;
		goto out;
	}
	if (n == 0)
		printf("no pins for %s: nothing to warm\n",
		       pins_store(pc.pins));
	for (i = 0; i < n; i++)
		if ((i == 0 || strcmp(rows[i].spec, rows[i - 1].spec)) &&
		    warm_one(&pc, rows[i].spec) < 0)
			status = 1;
	cache_pin_list_free(rows, n);
out:
	pin_cli_close(&pc);
	return ret ? ret : status;
}

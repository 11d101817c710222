/*
 * cmd_pin - `assetfs pin add|rm|ls|wait`: the pins of a cache dir
 * (fs/cache/cache_pin.h, kept current by fs/mount/pins.h).
 *
 *   pin add SPEC... [--store URL]  resolve, check it fits, record, warm
 *   pin rm SPEC...                 unpin (blocks become evictable)
 *   pin ls                         one line per pinned version
 *   pin wait SPEC [--timeout S]    exit 0 once every block of the version
 *                                  SPEC resolves to is present and
 *                                  re-hashes to its digest
 *
 * Exit status: 0; 1 on failure (add: a pin that does not fit; wait: not
 * ready within the timeout); 2 on usage errors.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/progress.h"
#include "common/timeutil.h"
#include "fs/cache/cache_pin.h"
#include "fs/cli/commands.h"
#include "fs/cli/pin_cli.h"

static const char pin_help[] =
    "usage: assetfs pin add SPEC... [--store URL] [--cache-dir D]\n"
    "       assetfs pin rm SPEC... [--store URL] [--cache-dir D]\n"
    "       assetfs pin ls [--cache-dir D]\n"
    "       assetfs pin wait SPEC [--timeout S] [--store URL]\n"
    "                        [--cache-dir D]\n"
    "\n"
    "A pinned version's blocks are never evicted. SPEC is NAME:VERSION\n"
    "(exact) or NAME:MAJOR / NAME (floating: follows new versions; the\n"
    "old one stays pinned until the new one is complete). Pins count\n"
    "against cache_size: one that does not fit is refused.\n"
    "\n"
    "  add    resolve SPEC, pin the version and warm it\n"
    "  rm     unpin SPEC (with --store: of that store only)\n"
    "  ls     SPEC VERSION PRESENT/TOTAL STATE STORE per pinned version\n"
    "         (state: warming, ready, failed: reason), and a line for\n"
    "         the version SPEC resolves to now if it is not pinned yet\n"
    "  wait   exit 0 once every block of the version SPEC resolves to\n"
    "         is in the cache and re-hashes to its SHA-256; else keep\n"
    "         checking every second until --timeout S (0: check once),\n"
    "         then exit 1 naming the first missing or corrupt block\n";

static int pin_add(struct pin_cli *pc, int argc, char **argv)
{
	char err[WARM_ERR_MAX], tot[32];
	struct pins_report rep;
	int i, ret, status = 0;

	if (optind >= argc) {
		pin_cli_err(pc, "missing SPEC (see 'assetfs pin --help')");
		return 2;
	}
	ret = pin_cli_open_store(pc, NULL);
	if (ret)
		return ret;
	for (i = optind; i < argc; i++) {
		ret = pins_ensure(pc->pins, argv[i], "cli", true, NULL, NULL,
				  &rep, err, sizeof(err));
		if (ret < 0) {
			pin_cli_err(pc, "%s", err);
			status = 1;
			continue;
		}
		progress_fmt_size(rep.w.bytes_total, tot, sizeof(tot));
		if (rep.warmed)
			printf("pinned %s -> %s (%s: fetched %" PRIu64
			       " bytes, already present %" PRIu64 ")\n",
			       argv[i], rep.version, tot, rep.w.bytes_fetched,
			       rep.w.bytes_present);
		else
			printf("pinned %s -> %s (already complete)\n", argv[i],
			       rep.version);
	}
	return status;
}

static int pin_rm(struct pin_cli *pc, int argc, char **argv)
{
	char spec[SPEC_NAME_MAX + SPEC_VERSION_MAX + 2], err[WARM_ERR_MAX];
	char url[PROV_URL_MAX];
	const char *store = NULL;
	int i, ret, status = 0;

	if (optind >= argc) {
		pin_cli_err(pc, "missing SPEC (see 'assetfs pin --help')");
		return 2;
	}
	if (pc->store_arg) {
		if (prov_store_url(pc->store_arg, url, sizeof(url)) < 0) {
			pin_cli_err(pc, "bad store: %s", prov_last_error());
			return 2;
		}
		store = url;
	}
	for (i = optind; i < argc; i++) {
		if (pins_spec_norm(argv[i], spec, sizeof(spec), err,
				   sizeof(err)) < 0) {
			pin_cli_err(pc, "%s", err);
			status = 1;
			continue;
		}
		ret = cache_pin_remove(pc->cache, store, spec);
		if (ret < 0) {
			pin_cli_err(pc, "%s: %s", spec, strerror(-ret));
			status = 1;
		} else if (ret == 0) {
			pin_cli_err(pc, "%s is not pinned", spec);
			status = 1;
		} else {
			printf("unpinned %s\n", spec);
		}
	}
	return status;
}

/*
 * The version pin @r->spec resolves to now, when no row of its group
 * (@rows[@first..@end)) holds it: one line saying so. The store of the
 * pin is opened once per store (a short timeout: ls must not hang on an
 * unreachable store; it then shows what is pinned).
 */
static void ls_resolved(struct pin_cli *pc, const struct cache_pin_info *rows,
			size_t first, size_t end, char *cur, size_t curlen)
{
	const struct cache_pin_info *r = &rows[first];
	char err[WARM_ERR_MAX];
	struct cat_version *v = NULL;
	struct warm_blocks b = {0};
	uint64_t have = 0;
	size_t i;

	if (strcmp(cur, r->store) != 0) {
		pin_cli_close_store(pc);
		snprintf(cur, curlen, "%s", r->store);
		pc->store_timeout_ms = 5000;
		if (pin_cli_open_store(pc, r->store) != 0)
			return;
	}
	if (!pc->pins ||
	    pins_resolve(pc->pins, r->spec, &v, err, sizeof(err)) < 0) {
		if (pc->pins)
			pin_cli_err(pc,
				    "%s: cannot resolve it now (%s); "
				    "showing what is pinned",
				    r->spec, err);
		return;
	}
	for (i = first; i < end; i++)
		if (strcmp(rows[i].version, v->version) == 0)
			goto out;
	if (warm_list_blocks(v, &b) == 0)
		for (i = 0; i < b.n; i++)
			if (cache_block_stat(pc->cache, &b.d[i], NULL) == 0)
				have += b.size[i];
	printf("%s %s %" PRIu64 "/%" PRIu64 " failed: not pinned yet (a "
	       "mount using this cache, or 'assetfs warm', moves the "
	       "pin)  %s\n",
	       r->spec, v->version, have, b.total, r->store);
out:
	warm_blocks_clear(&b);
	cat_version_unref(v);
}

static int pin_ls(struct pin_cli *pc)
{
	struct cache_pin_info *rows = NULL;
	char cur[PROV_URL_MAX] = "";
	size_t i, j, n = 0;
	int ret;

	ret = cache_pin_list(pc->cache, NULL, &rows, &n);
	if (ret < 0) {
		pin_cli_err(pc, "cache index: %s", strerror(-ret));
		return 1;
	}
	for (i = 0; i < n; i++) {
		if (i == 0 || strcmp(rows[i].store, rows[i - 1].store) ||
		    strcmp(rows[i].spec, rows[i - 1].spec)) {
			for (j = i;
			     j < n && !strcmp(rows[j].store, rows[i].store) &&
			     !strcmp(rows[j].spec, rows[i].spec);
			     j++)
				;
			ls_resolved(pc, rows, i, j, cur, sizeof(cur));
		}
		const struct cache_pin_info *r = &rows[i];
		const char *state = "warming";

		if (r->state == CACHE_PIN_FAILED)
			state = "failed";
		else if (r->state == CACHE_PIN_READY &&
			 r->bytes_present == r->bytes_total)
			state = "ready";
		else if (r->state == CACHE_PIN_READY)
			state = "failed"; /* blocks removed since */
		printf("%s %s %" PRIu64 "/%" PRIu64 " %s", r->spec,
		       r->version[0] ? r->version : "-", r->bytes_present,
		       r->bytes_total, state);
		if (r->state == CACHE_PIN_FAILED)
			printf(": %s", r->reason);
		else if (r->state == CACHE_PIN_READY &&
			 r->bytes_present != r->bytes_total)
			printf(": %" PRIu64 " of %" PRIu64 " blocks left the "
			       "cache (assetfs warm fetches them again)",
			       r->blocks - r->blocks_present, r->blocks);
		printf("  %s\n", r->store);
	}
	cache_pin_list_free(rows, n);
	return 0;
}

static int pin_wait(struct pin_cli *pc, int argc, char **argv)
{
	char err[WARM_ERR_MAX], why[WARM_ERR_MAX] = "";
	int64_t deadline;
	uint64_t present = 0, total = 0;
	struct cat_version *v = NULL;
	int ret;

	if (optind + 1 != argc) {
		pin_cli_err(pc, "pin wait takes one SPEC");
		return 2;
	}
	ret = pin_cli_open_store(pc, NULL);
	if (ret)
		return ret;
	deadline = time_mono_ms() + pc->timeout_ms;
	for (;;) {
		cat_version_unref(v);
		v = NULL;
		ret =
		    pins_resolve(pc->pins, argv[optind], &v, err, sizeof(err));
		if (ret == 0)
			ret = warm_check_version(
			    pc->cache, pins_store(pc->pins), v, &present,
			    &total, why, sizeof(why));
		if (ret == 0 && present == total)
			break;
		if (time_mono_ms() >= deadline)
			break;
		sleep(1);
	}
	if (ret < 0) {
		pin_cli_err(pc, "%s", *err ? err : strerror(-ret));
		ret = 1;
	} else if (present != total) {
		pin_cli_err(pc,
			    "%s -> %s not ready: %" PRIu64 " of %" PRIu64
			    " bytes present and verified; %s",
			    argv[optind], v->version, present, total, why);
		ret = 1;
	} else {
		printf("ready %s -> %s (%" PRIu64 " bytes verified)\n",
		       argv[optind], v->version, total);
	}
	cat_version_unref(v);
	return ret;
}

int cmd_pin(int argc, char **argv)
{
	struct pin_cli pc = {.cmd = "pin"};
	const char *action;
	char cmd[32];
	int ret;

	ret = pin_cli_parse(&pc, argc, argv, pin_help);
	if (ret >= 0)
		return ret;
	if (optind >= argc) {
		pin_cli_err(&pc, "missing add, rm, ls or wait (see "
				 "'assetfs pin --help')");
		return 2;
	}
	action = argv[optind++];
	snprintf(cmd, sizeof(cmd), "pin %s", action);
	pc.cmd = cmd;
	if (strcmp(action, "add") && strcmp(action, "rm") &&
	    strcmp(action, "ls") && strcmp(action, "wait")) {
		pin_cli_err(&pc, "unknown action (add, rm, ls or wait)");
		return 2;
	}
	ret = pin_cli_open_cache(&pc);
	if (ret)
		return ret;
	if (strcmp(action, "add") == 0)
		ret = pin_add(&pc, argc, argv);
	else if (strcmp(action, "rm") == 0)
		ret = pin_rm(&pc, argc, argv);
	else if (strcmp(action, "ls") == 0)
		ret = pin_ls(&pc);
	else
		ret = pin_wait(&pc, argc, argv);
	pin_cli_close(&pc);
	return ret;
}

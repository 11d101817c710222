/*
 * cmd_cache - `assetfs cache stat|gc|verify [--cache-dir D]`: look at and
 * clean a block cache dir, possibly while mounts are using it (the cache
 * module makes that safe: its index is shared and every change is a
 * transaction).
 *
 * Output is "key value" lines on stdout (or one JSON object with --json) so
 * scripts can read it; errors are one line on stderr. Exit status: 0, 1 on
 * failure (verify: also when bad blocks were found), 2 on usage errors.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/cache/cache.h"
#include "fs/cli/commands.h"

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: assetfs cache stat|gc|verify [--cache-dir D] [--json]\n"
	    "       assetfs cache gc [--target SIZE]\n"
	    "\n"
	    "  stat     print the cache's size, limits and counts\n"
	    "  gc       evict least recently used blocks down to SIZE\n"
	    "           (default: the cache_size of the last mount), remove\n"
	    "           stale temp files, reconcile the index\n"
	    "  verify   re-hash every block; remove and list bad ones;\n"
	    "           exit 1 if any was bad\n"
	    "\n"
	    "  --cache-dir D   the cache dir (default: $XDG_CACHE_HOME/"
	    "assetfs,\n"
	    "                  ~/.cache/assetfs, /var/cache/assetfs for "
	    "root)\n"
	    "  --json          one JSON object instead of key value lines\n");
}

struct kv_out {
	bool json;
	bool first;
};

static void out_u64(struct kv_out *o, const char *k, uint64_t v)
{
	if (o->json)
		printf("%s\"%s\": %" PRIu64, o->first ? "" : ", ", k, v);
	else
		printf("%s %" PRIu64 "\n", k, v);
	o->first = false;
}

/* @v is a path: no quotes or control characters are expected, but escape. */
static void out_str(struct kv_out *o, const char *k, const char *v)
{
	const char *p;

	if (!o->json) {
		printf("%s %s\n", k, v);
		o->first = false;
		return;
	}
	printf("%s\"%s\": \"", o->first ? "" : ", ", k);
	for (p = v; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if ((unsigned char)*p < 0x20)
			printf("\\u%04x", (unsigned char)*p);
		else
			putchar(*p);
	}
	printf("\"");
	o->first = false;
}

/* Every report opens with the cache dir it speaks of. */
static void out_begin(struct kv_out *o, const char *dir)
{
	o->first = true;
	if (o->json)
		printf("{");
	out_str(o, "cache_dir", dir);
}

static void out_end(struct kv_out *o)
{
	if (o->json)
		printf("}\n");
}

static void print_bad(const char *hex, const char *why, void *arg)
{
	struct kv_out *o = arg;

	if (!o->json)
		printf("bad %s %s\n", hex, why);
	else
		fprintf(stderr, "assetfs: cache verify: bad block %s: %s\n",
			hex, why);
}

int cmd_cache(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"cache-dir", required_argument, NULL, 'd'},
	    {"target", required_argument, NULL, 't'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	char defdir[CACHE_PATH_MAX];
	struct cache_size target = {0};
	struct kv_out o = {0};
	struct cache_opts opts;
	struct cache_stats st;
	struct cache *c = NULL;
	const char *action, *dir = NULL;
	bool have_target = false;
	struct stat sb;
	int opt, ret, status = 1;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	action = argv[1];
	if (!strcmp(action, "--help") || !strcmp(action, "-h")) {
		usage(stdout);
		return 0;
	}
	if (strcmp(action, "stat") && strcmp(action, "gc") &&
	    strcmp(action, "verify")) {
		fprintf(stderr,
			"assetfs: cache: unknown action \"%s\" (want"
			" stat, gc or verify)\n",
			action);
		return 2;
	}
	optind = 0; /* restart GNU getopt: main may have used it */
	while ((opt = getopt_long(argc - 1, argv + 1, "d:t:jh", longopts,
				  NULL)) != -1) {
		switch (opt) {
		case 'd':
			dir = optarg;
			break;
		case 't':
			if (cache_parse_size(optarg, &target) < 0 ||
			    target.pct) {
				fprintf(stderr,
					"assetfs: cache: --target: bad"
					" size \"%s\" (want e.g. 10G, 512M)\n",
					optarg);
				return 2;
			}
			have_target = true;
			break;
		case 'j':
			o.json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc - 1) {
		fprintf(stderr, "assetfs: cache: unexpected argument \"%s\"\n",
			argv[optind + 1]);
		return 2;
	}
	if (have_target && strcmp(action, "gc")) {
		fprintf(stderr, "assetfs: cache: --target is for gc only\n");
		return 2;
	}
	if (!dir) {
		ret = cache_default_dir(defdir, sizeof(defdir));
		if (ret < 0) {
			fprintf(stderr,
				"assetfs: cache: no --cache-dir and no"
				" default (set HOME or XDG_CACHE_HOME)\n");
			return 2;
		}
		dir = defdir;
	}
	/* Inspecting must not create a cache where there was none. */
	if (stat(dir, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
		fprintf(stderr, "assetfs: cache: %s: no such cache directory\n",
			dir);
		return 1;
	}

	cache_opts_init(&opts);
	opts.dir = dir;
	opts.inspect = true;
	ret = cache_open(&opts, &c);
	if (ret < 0) {
		fprintf(stderr, "assetfs: cache: %s: cannot open: %s\n", dir,
			strerror(-ret));
		return 1;
	}

	if (!strcmp(action, "verify")) {
		struct cache_verify_report r = {0};

		r.on_bad = print_bad;
		r.arg = &o;
		ret = cache_verify(c, &r);
		if (ret < 0) {
			fprintf(stderr, "assetfs: cache verify: %s: %s\n", dir,
				strerror(-ret));
			goto out;
		}
		out_begin(&o, dir);
		out_u64(&o, "checked", r.checked);
		out_u64(&o, "bytes", r.bytes);
		out_u64(&o, "bad", r.bad);
		out_u64(&o, "missing", r.missing);
		out_u64(&o, "orphans", r.orphans);
		out_end(&o);
		fflush(stdout);
		if (r.bad) {
			fprintf(stderr,
				"assetfs: cache verify: %" PRIu64
				" bad block(s) found in %s and removed\n",
				r.bad, dir);
			goto out;
		}
		status = 0;
		goto out;
	}

	if (!strcmp(action, "gc")) {
		uint64_t evicted = 0;

		ret = cache_get_stats(c, &st);
		if (ret == 0)
			ret = cache_gc(
			    c, have_target ? target.bytes : st.max_bytes,
			    &evicted);
		if (ret < 0) {
			fprintf(stderr, "assetfs: cache gc: %s: %s\n", dir,
				strerror(-ret));
			goto out;
		}
		ret = cache_get_stats(c, &st);
		if (ret < 0)
			goto stat_err;
		out_begin(&o, dir);
		out_u64(&o, "evicted", evicted);
		out_u64(&o, "blocks", st.blocks);
		out_u64(&o, "bytes", st.bytes);
		out_end(&o);
		status = 0;
		goto out;
	}

	ret = cache_get_stats(c, &st);
	if (ret < 0)
		goto stat_err;
	out_begin(&o, dir);
	out_u64(&o, "blocks", st.blocks);
	out_u64(&o, "bytes", st.bytes);
	out_u64(&o, "max_bytes", st.max_bytes);
	out_u64(&o, "min_free_bytes", st.min_free_bytes);
	out_u64(&o, "disk_free_bytes", st.disk_free_bytes);
	out_u64(&o, "suspect_blocks", st.suspect_blocks);
	out_u64(&o, "docs", st.docs);
	out_u64(&o, "objblocks", st.objblocks);
	out_end(&o);
	status = 0;
	goto out;
stat_err:
	fprintf(stderr, "assetfs: cache: %s: %s\n", dir, strerror(-ret));
out:
	cache_close(&c);
	return status;
}

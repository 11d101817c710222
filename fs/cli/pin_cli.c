/*
 * pin_cli - see pin_cli.h. The stack is the mount's (cache, store,
 * catalog, fetcher) minus FUSE: `assetfs warm` fetches through the same
 * fetcher a mount reads through, so a block is fetched once whichever of
 * them asks first, and digests are checked the same way.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/cli/pin_cli.h"
#include "providers/provider.h"

enum {
	OPT_STORE = 256,
	OPT_CACHE_DIR,
	OPT_THREADS,
	OPT_TIMEOUT,
	OPT_VERSIONING,
	OPT_VERIFY_KEY,
	OPT_BEARER,
};

void pin_cli_err(const struct pin_cli *pc, const char *fmt, ...)
{
	char line[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	for (char *c = line; *c; c++)
		if (*c == '\n' || *c == '\r')
			*c = ' ';
	fprintf(stderr, "assetfs %s: %s\n", pc->cmd, line);
}


int pin_cli_parse(struct pin_cli *pc, int argc, char **argv, const char *help)
{
	static const struct option opts[] = {
	    {"store", required_argument, NULL, OPT_STORE},
	    {"cache-dir", required_argument, NULL, OPT_CACHE_DIR},
	    {"threads", required_argument, NULL, OPT_THREADS},
	    {"timeout", required_argument, NULL, OPT_TIMEOUT},
	    {"versioning", required_argument, NULL, OPT_VERSIONING},
	    {"verify-key", required_argument, NULL, OPT_VERIFY_KEY},
	    {"bearer-token-file", required_argument, NULL, OPT_BEARER},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	char *end;
	double d;
	long n;
	int o;

	optind = 0;
	opterr = 0;
	while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (o) {
		case OPT_STORE:
			pc->store_arg = optarg;
			break;
		case OPT_CACHE_DIR:
			pc->cache_dir = optarg;
			break;
		case OPT_THREADS:
			n = strtol(optarg, &end, 10);
			if (*end || n < 1 || n > 32) {
				pin_cli_err(pc, "--threads takes 1..32");
				return 2;
			}
			pc->threads = (int)n;
			break;
		case OPT_TIMEOUT:
			d = strtod(optarg, &end);
			if (*end || !isfinite(d) || d < 0 || d > 86400) {
				pin_cli_err(pc, "--timeout takes seconds");
				return 2;
			}
			pc->timeout_ms = (int)(d * 1000);
			break;
		case OPT_VERSIONING:
			pc->versioning = optarg;
			break;
		case OPT_VERIFY_KEY:
			pc->verify_key = optarg;
			break;
		case OPT_BEARER:
			pc->bearer_token_file = optarg;
			break;
		case 'h':
			fputs(help, stdout);
			return 0;
		case ':':
			pin_cli_err(pc, "option '%s' needs a value",
				    argv[optind - 1]);
			return 2;
		default:
			pin_cli_err(pc, "unknown option '%s' (see --help)",
				    argv[optind - 1]);
			return 2;
		}
	}
	if (!pc->verify_key)
		pc->verify_key = getenv("ASSETFS_VERIFY_KEY");
	if (pc->verify_key && !*pc->verify_key)
		pc->verify_key = NULL;
	return -1;
}

int pin_cli_open_cache(struct pin_cli *pc)
{
	struct cache_opts co;
	int ret;

	cache_opts_init(&co);
	co.dir = pc->cache_dir;
	co.inspect = true; /* the limits of the last mount */
	ret = cache_open(&co, &pc->cache);
	if (ret < 0) {
		pin_cli_err(pc, "cache %s: %s",
			    pc->cache_dir ? pc->cache_dir : "(default)",
			    strerror(-ret));
		return 1;
	}
	return 0;
}

int pin_cli_open_store(struct pin_cli *pc, const char *url)
{
	char u[PROV_URL_MAX], err[STORE_ERR_MAX];
	struct prov_opts po = {.bearer_token_file = pc->bearer_token_file,
			       .timeout_ms = pc->store_timeout_ms};
	struct store_opts so = {.prov = &po,
				.versioning = pc->versioning,
				.verify_key = pc->verify_key};
	struct catalog_opts cto = {.versions_ttl_ms = 1000};
	struct fetcher_opts fo = {.threads = 1};
	int ret;

	if (!po.bearer_token_file)
		po.bearer_token_file = getenv("ASSETFS_BEARER_TOKEN_FILE");
	if (!url) {
		ret = prov_store_url(pc->store_arg, u, sizeof(u));
		if (ret == -ENOENT) {
			pin_cli_err(pc, "no store given (--store, "
					"ASSETFS_STORE or "
					"MODELKIT_STORAGE_PROVIDER)");
			return 2;
		} else if (ret < 0) {
			pin_cli_err(pc, "bad store: %s", prov_last_error());
			return 2;
		}
		url = u;
	}
	ret = store_open(url, &so, &pc->st, err, sizeof(err));
	if (ret < 0) {
		pin_cli_err(pc, "%s", err);
		return 1;
	}
	pc->stats = stats_new();
	ret = pc->stats ? 0 : -ENOMEM;
	if (ret == 0)
		ret = catalog_new(pc->st, pc->cache, pc->stats, &cto, &pc->cat);
	if (ret == 0)
		ret = fetcher_new(pc->st, pc->cache, pc->stats, &fo, &pc->fe);
	if (ret == 0)
		ret = pins_new(pc->cat, pc->fe, pc->cache, pc->threads,
			       &pc->pins);
	if (ret < 0) {
		pin_cli_err(pc, "%s", strerror(-ret));
		pin_cli_close_store(pc);
		return 1;
	}
	return 0;
}

void pin_cli_close_store(struct pin_cli *pc)
{
	pins_free(pc->pins);
	pc->pins = NULL;
	fetcher_free(pc->fe);
	pc->fe = NULL;
	catalog_free(pc->cat);
	pc->cat = NULL;
	stats_free(pc->stats);
	pc->stats = NULL;
	store_close(&pc->st);
}

void pin_cli_close(struct pin_cli *pc)
{
	pin_cli_close_store(pc);
	cache_close(&pc->cache);
}

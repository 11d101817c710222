/*
 * cli - the store subcommands of `assetfs`: push, ls, resolve, cat, index,
 * keygen (DESIGN §7). Each parses its own options, opens the store named by
 * --store, ASSETFS_STORE or MODELKIT_STORAGE_* (prov_store_url), calls
 * fs/store.h or fs/push.h, and prints results on stdout.
 *
 * Conventions: every failure is one line on stderr, "assetfs CMD: what
 * went wrong", and exit status 1; usage errors exit 2 and point at --help.
 * Nothing here buffers a whole object: cat streams.
 *
 * Signatures (fs/sign.h): `keygen KEY` makes KEY and KEY.pub, `push
 * --sign KEY` signs the .meta, and ls/resolve/cat with --verify-key
 * KEY.pub (or $ASSETFS_VERIFY_KEY) open the store with that key, so every
 * .meta they read is verified by fs/store.c before it is used.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/digest.h"
#include "common/fileutil.h"
#include "fs/cli/commands.h"
#include "fs/cli/push.h"
#include "fs/catalog/sign.h"
#include "fs/catalog/store.h"

#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

enum {
	OPT_STORE = 256,
	OPT_VERSIONING,
	OPT_BUMP_MAJOR,
	OPT_DRY_RUN,
	OPT_SIGN,
	OPT_VERIFY_KEY,
	OPT_BEARER,
};

#define CLI_VERIFY_ENV "ASSETFS_VERIFY_KEY"
#define CLI_BEARER_ENV "ASSETFS_BEARER_TOKEN_FILE"

struct cli_common {
	const char *store;
	const char *versioning;
	const char *sign_key;	/* push --sign */
	const char *verify_key; /* --verify-key, or $ASSETFS_VERIFY_KEY */
	/* --bearer-token-file, or $ASSETFS_BEARER_TOKEN_FILE (http(s)) */
	const char *bearer_token_file;
};

static const char cli_verify_help[] =
    "  --verify-key KEY    verify every version's .meta against its\n"
    "                      .meta.sig with the Ed25519 public key in KEY\n"
    "                      (PEM, as 'assetfs keygen' writes KEY.pub);\n"
    "                      an unsigned or tampered version is refused\n"
    "                      (default: $" CLI_VERIFY_ENV ")\n";

static const struct option cli_verify_opt = {"verify-key", required_argument,
					     NULL, OPT_VERIFY_KEY};

static const char cli_store_help[] =
    "  --store URL         the store: file:///dir, s3://bucket/prefix,\n"
    "                      gs://..., az://..., http(s)://host/prefix\n"
    "                      (default: $ASSETFS_STORE, else\n"
    "                      MODELKIT_STORAGE_PROVIDER=local|s3|gcs|az with\n"
    "                      MODELKIT_STORAGE_BUCKET and\n"
    "                      MODELKIT_STORAGE_PREFIX, default "
    "modelkit-assets)\n"
    "  --versioning SYS    major_minor, simple_date or auto (default:\n"
    "                      $MODELKIT_ASSETS_VERSIONING_SYSTEM, else auto)\n"
    "  --bearer-token-file FILE\n"
    "                      http(s) stores: send \"Authorization: Bearer\"\n"
    "                      with the token in FILE (default:\n"
    "                      $" CLI_BEARER_ENV ")\n"
    "  -h, --help          this help\n";

static void cli_err(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void cli_err(const char *cmd, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	int n;

	n = snprintf(line, sizeof(line), "assetfs %s: ", cmd);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	/* One line, whatever the message held. */
	for (char *c = line; *c; c++)
		if (*c == '\n' || *c == '\r')
			*c = ' ';
	/* The providers report a refused request as "... HTTP 401": say
	   what it means and how to give a token (never the token itself). */
	if (strstr(line, ": HTTP 401") && (strstr(line, "http://") ||
					   strstr(line, "https://")))
		fprintf(stderr, "%s (authentication required: an http(s) "
				"store takes a bearer token from "
				"--bearer-token-file FILE or $"
				CLI_BEARER_ENV ")\n", line);
	else
		fprintf(stderr, "%s\n", line);
}

static int cli_usage(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int cli_usage(const char *cmd, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cli_err(cmd, "%s (see 'assetfs %s --help')", msg, cmd);
	return CLI_EXIT_USAGE;
}

/*
 * Parse the options shared by all store commands plus @extra ones, which
 * are reported through @on_extra. Returns -1 to go on (optind at the
 * first operand), else the exit status to return (0 after --help).
 */
static int cli_parse(int argc, char **argv, struct cli_common *cc,
		     const struct option *extra, size_t n_extra,
		     const char *help, bool *flags)
{
	struct option opts[12];
	size_t n = 0;
	int o;

	opts[n++] =
	    (struct option){"store", required_argument, NULL, OPT_STORE};
	opts[n++] = (struct option){"versioning", required_argument, NULL,
				    OPT_VERSIONING};
	opts[n++] = (struct option){"bearer-token-file", required_argument,
				    NULL, OPT_BEARER};
	opts[n++] = (struct option){"help", no_argument, NULL, 'h'};
	for (size_t i = 0; i < n_extra && n < 11; i++)
		opts[n++] = extra[i];
	opts[n] = (struct option){NULL, 0, NULL, 0};
	memset(cc, 0, sizeof(*cc));
	optind = 0; /* GNU: full re-initialisation */
	opterr = 0;
	while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (o) {
		case OPT_STORE:
			cc->store = optarg;
			break;
		case OPT_VERSIONING:
			cc->versioning = optarg;
			break;
		case 'h':
			fputs(help, stdout);
			return 0;
		case OPT_BUMP_MAJOR:
			flags[0] = true;
			break;
		case OPT_DRY_RUN:
			flags[1] = true;
			break;
		case OPT_SIGN:
			cc->sign_key = optarg;
			break;
		case OPT_VERIFY_KEY:
			cc->verify_key = optarg;
			break;
		case OPT_BEARER:
			cc->bearer_token_file = optarg;
			break;
		case ':':
			return cli_usage(argv[0], "option '%s' needs a value",
					 argv[optind - 1]);
		default:
			if (optopt && optopt < 256)
				return cli_usage(argv[0],
						 "unknown option "
						 "'-%c'",
						 optopt);
			return cli_usage(argv[0], "unknown option '%s'",
					 argv[optind - 1]);
		}
	}
	return -1;
}

/* For the commands that take --verify-key: the environment's default. */
static void cli_verify_env(struct cli_common *cc)
{
	const char *e = getenv(CLI_VERIFY_ENV);

	if (!cc->verify_key && e && *e)
		cc->verify_key = e;
}

static int cli_open(const char *cmd, const struct cli_common *cc,
		    struct store **s)
{
	char url[PROV_URL_MAX], err[STORE_ERR_MAX];
	struct prov_opts po = {.bearer_token_file = cc->bearer_token_file};
	struct store_opts so = {.prov = &po,
				.versioning = cc->versioning,
				.verify_key = cc->verify_key};
	const char *e = getenv(CLI_BEARER_ENV);
	int ret;

	if (!po.bearer_token_file && e && *e)
		po.bearer_token_file = e;

	ret = prov_store_url(cc->store, url, sizeof(url));
	if (ret < 0) {
		cli_err(cmd, "%s", prov_last_error());
		return ret;
	}
	ret = store_open(url, &so, s, err, sizeof(err));
	if (ret < 0)
		cli_err(cmd, "%s", err);
	return ret;
}

static const char push_help[] =
    "usage: assetfs push [OPTIONS] PATH SPEC\n"
    "\n"
    "Push the file or folder PATH as a new version of an asset.\n"
    "SPEC is NAME or NAME:VERSION. Without a version a new asset gets\n"
    "0.0 and an existing one its next minor version (or, with\n"
    "--bump-major, its next major). Versions are immutable: pushing a\n"
    "version that exists fails. Folders are pushed recursively;\n"
    "dotfiles are skipped. Data is written first, then NAME/VERSION.meta\n"
    "(with the SHA-256 manifest), then NAME.versions, then assets.index.\n"
    "Prints 'pushed NAME:VERSION (N files, B bytes)'.\n"
    "With --sign, NAME/VERSION.meta.sig (the Ed25519 signature of the\n"
    ".meta) is written right after the .meta, before NAME.versions.\n"
    "\n"
    "Options:\n"
    "  --bump-major        push the next major version (1.3 -> 2.0)\n"
    "  --dry-run           show what would be pushed, write nothing\n"
    "  --sign KEY          sign the .meta with the Ed25519 private key in\n"
    "                      KEY (PEM, made by 'assetfs keygen KEY')\n";

int cmd_push(int argc, char **argv)
{
	static const struct option extra[] = {
	    {"bump-major", no_argument, NULL, OPT_BUMP_MAJOR},
	    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
	    {"sign", required_argument, NULL, OPT_SIGN},
	};
	char help[sizeof(push_help) + sizeof(cli_store_help)];
	char err[STORE_ERR_MAX];
	struct push_opts po = {.progress = true};
	struct push_result res;
	struct sign_key *key = NULL;
	struct cli_common cc;
	struct store *s = NULL;
	bool flags[2] = {false, false};
	int ret;

	snprintf(help, sizeof(help), "%s%s", push_help, cli_store_help);
	ret = cli_parse(argc, argv, &cc, extra, 3, help, flags);
	if (ret >= 0)
		return ret;
	if (argc - optind != 2)
		return cli_usage("push", argc - optind < 2
					     ? "expected PATH and SPEC"
					     : "too many arguments");
	po.bump_major = flags[0];
	po.dry_run = flags[1];
	/* The key first: a bad key must fail before anything is written. */
	if (cc.sign_key &&
	    sign_load_private(cc.sign_key, &key, err, sizeof(err)) < 0) {
		cli_err("push", "%s", err);
		return CLI_EXIT_FAIL;
	}
	po.sign = key;
	if (cli_open("push", &cc, &s) < 0) {
		sign_key_free(&key);
		return CLI_EXIT_FAIL;
	}
	ret = push_asset(s, argv[optind], argv[optind + 1], &po, &res, err,
			 sizeof(err));
	store_close(&s);
	sign_key_free(&key);
	if (ret < 0) {
		cli_err("push", "%s", err);
		return CLI_EXIT_FAIL;
	}
	printf("%s %s:%s (%zu file%s, %llu bytes%s)\n",
	       po.dry_run ? "would push" : "pushed", res.name, res.version,
	       res.n_files, res.n_files == 1 ? "" : "s",
	       (unsigned long long)res.bytes, res.is_signed ? ", signed" : "");
	if (res.warning[0])
		cli_err("push", "warning: %s", res.warning);
	return fflush(stdout) == 0 ? 0 : CLI_EXIT_FAIL;
}

static const char ls_help[] =
    "usage: assetfs ls [OPTIONS] [NAME]\n"
    "\n"
    "Without NAME, print every asset name in the store, one per line\n"
    "(from a listing, or assets.index where the store cannot list).\n"
    "With NAME, print its versions, newest first. If NAME is not an\n"
    "asset but a namespace (a prefix such as 'fraud'), print the assets\n"
    "and namespaces directly below it, namespaces with a trailing '/'.\n"
    "With a verify key, NAME's versions are printed only if their .meta\n"
    "verifies; each refused version is reported on stderr (exit 1).\n"
    "\n"
    "Options:\n";

static int cli_ls_namespace(struct store *s, const char *ns, bool *found)
{
	struct store_level lv = {0};
	char err[STORE_ERR_MAX];
	int ret;

	*found = false;
	ret = store_list_level(s, ns, &lv, err, sizeof(err));
	if (ret == -ENOTSUP)
		return 0;
	if (ret < 0) {
		cli_err("ls", "%s", err);
		return ret;
	}
	if (lv.n_assets + lv.n_namespaces) {
		size_t i = 0, j = 0;

		*found = true;
		/* Merge the two sorted lists, as ls would show them. */
		while (i < lv.n_assets || j < lv.n_namespaces) {
			if (j == lv.n_namespaces ||
			    (i < lv.n_assets &&
			     strcmp(lv.assets[i], lv.namespaces[j]) < 0))
				printf("%s\n", lv.assets[i++]);
			else
				printf("%s/\n", lv.namespaces[j++]);
		}
	}
	store_level_clear(&lv);
	return 0;
}

/*
 * Print the versions of @name in @vl; with a verify key, only those whose
 * .meta verifies, one stderr line per other. Returns 0 or -EBADMSG (at
 * least one refused; the others are still printed).
 */
static int cli_ls_versions(struct store *s, const char *name,
			   const struct version_list *vl)
{
	char err[STORE_ERR_MAX];
	struct meta m;
	int ret, status = 0;

	for (size_t i = 0; i < vl->n; i++) {
		if (store_verify_key(s)) {
			ret = store_get_meta(s, name, vl->v[i], &m, NULL, NULL,
					     err, sizeof(err));
			meta_clear(&m);
			if (ret < 0) {
				cli_err("ls", "%s", err);
				status = -EBADMSG;
				continue;
			}
		}
		printf("%s\n", vl->v[i]);
	}
	return status;
}

int cmd_ls(int argc, char **argv)
{
	char help[sizeof(ls_help) + sizeof(cli_verify_help) +
		  sizeof(cli_store_help)];
	char err[STORE_ERR_MAX];
	struct version_list vl = {0};
	struct assets_index ix = {0};
	struct cli_common cc;
	struct store *s = NULL;
	int ret, status = CLI_EXIT_FAIL;

	snprintf(help, sizeof(help), "%s%s%s", ls_help, cli_verify_help,
		 cli_store_help);
	ret = cli_parse(argc, argv, &cc, &cli_verify_opt, 1, help, NULL);
	if (ret >= 0)
		return ret;
	if (argc - optind > 1)
		return cli_usage("ls", "too many arguments");
	cli_verify_env(&cc);
	if (cli_open("ls", &cc, &s) < 0)
		return CLI_EXIT_FAIL;
	if (argc - optind == 0) {
		ret = store_list_assets(s, &ix, err, sizeof(err));
		if (ret < 0) {
			cli_err("ls", "%s", err);
			goto out;
		}
		for (size_t i = 0; i < ix.n; i++)
			printf("%s\n", ix.names[i]);
		status = 0;
		goto out;
	}
	ret = store_get_versions(s, argv[optind], &vl, NULL, NULL, err,
				 sizeof(err));
	if (ret == -ENOENT) {
		bool found;

		if (cli_ls_namespace(s, argv[optind], &found) < 0)
			goto out;
		if (found) {
			status = 0;
			goto out;
		}
	}
	if (ret < 0) {
		cli_err("ls", "%s", err);
		goto out;
	}
	if (cli_ls_versions(s, argv[optind], &vl) < 0)
		goto out;
	status = 0;
out:
	if (status == 0 && fflush(stdout) != 0)
		status = CLI_EXIT_FAIL;
	version_list_clear(&vl);
	assets_index_clear(&ix);
	store_close(&s);
	return status;
}

/* Parse @text and resolve it; prints the error. */
static int cli_resolve(const char *cmd, struct store *s, const char *text,
		       struct store_resolved *r)
{
	char err[STORE_ERR_MAX];
	struct spec spec = {0};
	int ret;

	ret = spec_parse(text, &spec, err, sizeof(err));
	if (ret == 0)
		ret = store_resolve(s, &spec, r, err, sizeof(err));
	if (ret < 0)
		cli_err(cmd, "%s", err);
	spec_clear(&spec);
	return ret;
}

static const char resolve_help[] =
    "usage: assetfs resolve [OPTIONS] SPEC\n"
    "\n"
    "Resolve SPEC (NAME[:VERSION][[sub/path]]; no version: the newest;\n"
    "a major such as NAME:1: the newest 1.x) and print the resolved\n"
    "NAME:VERSION[sub/path] on the first line and the URL of the object\n"
    "(or, for a folder version without [sub/path], of its prefix) on\n"
    "the second. With a verify key, a version whose .meta is not signed\n"
    "by that key is refused.\n"
    "\n"
    "Options:\n";

int cmd_resolve(int argc, char **argv)
{
	char help[sizeof(resolve_help) + sizeof(cli_verify_help) +
		  sizeof(cli_store_help)];
	char url[PROV_URL_MAX + STORE_KEY_MAX];
	struct store_resolved r = {0};
	struct cli_common cc;
	struct store *s = NULL;
	int ret, status = CLI_EXIT_FAIL;

	snprintf(help, sizeof(help), "%s%s%s", resolve_help, cli_verify_help,
		 cli_store_help);
	ret = cli_parse(argc, argv, &cc, &cli_verify_opt, 1, help, NULL);
	if (ret >= 0)
		return ret;
	if (argc - optind != 1)
		return cli_usage("resolve", argc - optind ? "too many arguments"
							  : "expected SPEC");
	cli_verify_env(&cc);
	if (cli_open("resolve", &cc, &s) < 0)
		return CLI_EXIT_FAIL;
	if (cli_resolve("resolve", s, argv[optind], &r) < 0)
		goto out;
	if (store_object_url(s, r.key, url, sizeof(url)) < 0) {
		cli_err("resolve", "object URL too long");
		goto out;
	}
	printf("%s:%s", r.name, r.version);
	if (r.sub)
		printf("[%s]", r.sub);
	printf("\n%s\n", url);
	status = fflush(stdout) == 0 ? 0 : CLI_EXIT_FAIL;
out:
	store_resolved_clear(&r);
	store_close(&s);
	return status;
}

/*
 * Where cat's bytes go. With a manifest, they are held a block at a time
 * and written only once the block's SHA-256 matches: a corrupt store
 * yields an error, never its bad bytes (the blocks before it are out).
 */
struct cat_sink {
	const struct manifest_file *mf; /* NULL: stream as they come */
	char *block;			/* block_size bytes, with mf */
	size_t block_size, held;
	uint64_t n;			/* bytes received */
	uint64_t bad_block;		/* the block that did not match */
	bool bad;
};

/* Check the held block against the manifest and write it out. */
static int cat_flush(struct cat_sink *cs)
{
	uint64_t i = (cs->n - 1) / cs->block_size;
	struct digest d;
	int ret;

	if (!cs->held)
		return 0;
	if (i >= cs->mf->n_blocks ||
	    digest_buf(cs->block, cs->held, &d) < 0 ||
	    !digest_equal(&d, &cs->mf->blocks[i])) {
		cs->bad = true;
		cs->bad_block = i;
		return -EBADMSG;
	}
	ret = write_all(STDOUT_FILENO, cs->block, cs->held);
	cs->held = 0;
	return ret;
}

static int cat_write(void *arg, const void *data, size_t len)
{
	struct cat_sink *cs = arg;
	const char *p = data;
	int ret;

	if (!cs->mf) {
		cs->n += len;
		return write_all(STDOUT_FILENO, data, len);
	}
	if (cs->n + len > cs->mf->size) { /* more than the manifest says */
		cs->bad = true;
		cs->bad_block = cs->mf->n_blocks;
		return -EBADMSG;
	}
	while (len > 0) {
		cs->n += buf_fill(cs->block, &cs->held, cs->block_size, &p,
				  &len);
		if (cs->held == cs->block_size) {
			ret = cat_flush(cs);
			if (ret < 0)
				return ret;
		}
	}
	return 0;
}

static const char cat_help[] =
    "usage: assetfs cat [OPTIONS] SPEC\n"
    "\n"
    "Write the bytes of a file asset, or of the [sub/path] file of a\n"
    "folder asset, to stdout (streamed). When the version has a\n"
    "manifest, each block is checked against its SHA-256 before it is\n"
    "written: a mismatch fails the command and no byte of the bad block\n"
    "reaches stdout. With a verify key, the .meta (and so the manifest)\n"
    "must carry a good signature first.\n"
    "\n"
    "Options:\n";

int cmd_cat(int argc, char **argv)
{
	char help[sizeof(cat_help) + sizeof(cli_verify_help) +
		  sizeof(cli_store_help)];
	const struct manifest_file *mf = NULL;
	struct store_resolved r = {0};
	struct cat_sink cs = {0};
	struct cli_common cc;
	struct store *s = NULL;
	int64_t n;
	int ret, status = CLI_EXIT_FAIL;

	snprintf(help, sizeof(help), "%s%s%s", cat_help, cli_verify_help,
		 cli_store_help);
	ret = cli_parse(argc, argv, &cc, &cli_verify_opt, 1, help, NULL);
	if (ret >= 0)
		return ret;
	if (argc - optind != 1)
		return cli_usage("cat", argc - optind ? "too many arguments"
						      : "expected SPEC");
	cli_verify_env(&cc);
	if (cli_open("cat", &cc, &s) < 0)
		return CLI_EXIT_FAIL;
	if (cli_resolve("cat", s, argv[optind], &r) < 0)
		goto out;
	if (r.meta.is_directory && !r.sub) {
		cli_err("cat",
			"'%s:%s' is a folder asset: name one of its "
			"files, e.g. '%s:%s[%s]'",
			r.name, r.version, r.name, r.version,
			r.meta.n_contents ? r.meta.contents[0] : "file");
		goto out;
	}
	mf = manifest_find(r.meta.manifest, r.sub ? r.sub : "");
	if (mf) {
		cs.mf = mf;
		cs.block_size = r.meta.manifest->block_size;
		cs.block = malloc(cs.block_size);
		if (!cs.block) {
			cli_err("cat", "out of memory");
			goto out;
		}
	}
	n = prov_get(store_prov(s), r.key, 0, PROV_WHOLE, NULL, cat_write, &cs);
	if (n >= 0 && mf && cs.n != mf->size) {
		cs.bad = true; /* short: said as such, not as a bad block */
		cs.bad_block = mf->n_blocks;
	} else if (n >= 0 && mf) {
		n = cat_flush(&cs); /* the last, short block */
	}
	if (cs.bad) {
		if (cs.bad && cs.bad_block < mf->n_blocks)
			cli_err("cat",
				"%s: block %" PRIu64 " does not match its "
				"manifest's SHA-256: the store is corrupt "
				"(nothing of that block was written)",
				r.key, cs.bad_block);
		else
			cli_err("cat",
				"%s is not the size its manifest says "
				"(%" PRIu64 " bytes): the store is corrupt",
				r.key, mf->size);
		goto out;
	}
	if (n < 0) {
		cli_err("cat", "cannot read %s: %s", r.key,
			*prov_last_error() ? prov_last_error()
					   : strerror((int)-n));
		goto out;
	}
	status = 0;
out:
	free(cs.block);
	store_resolved_clear(&r);
	store_close(&s);
	return status;
}

static const char index_help[] =
    "usage: assetfs index [OPTIONS]\n"
    "\n"
    "Rebuild assets.index (the list of asset names that lets stores\n"
    "which cannot list, such as plain HTTP, be browsed) from a listing\n"
    "of the store. Prints 'assets.index: N assets'.\n"
    "\n"
    "Options:\n";

int cmd_index(int argc, char **argv)
{
	char help[sizeof(index_help) + sizeof(cli_store_help)];
	char err[STORE_ERR_MAX];
	struct assets_index ix = {0};
	struct cli_common cc;
	struct store *s = NULL;
	int ret, status = CLI_EXIT_FAIL;

	snprintf(help, sizeof(help), "%s%s", index_help, cli_store_help);
	ret = cli_parse(argc, argv, &cc, NULL, 0, help, NULL);
	if (ret >= 0)
		return ret;
	if (argc - optind != 0)
		return cli_usage("index", "unexpected argument '%s'",
				 argv[optind]);
	if (cli_open("index", &cc, &s) < 0)
		return CLI_EXIT_FAIL;
	if (!prov_can_list(store_prov(s))) {
		cli_err("index",
			"cannot rebuild " STORE_INDEX_KEY ": %s "
			"cannot be listed",
			prov_url(store_prov(s)));
		goto out;
	}
	ret = store_list_assets(s, &ix, err, sizeof(err));
	if (ret == 0)
		ret = store_write_index(s, &ix, err, sizeof(err));
	if (ret < 0) {
		cli_err("index", "%s", err);
		goto out;
	}
	printf(STORE_INDEX_KEY ": %zu asset%s\n", ix.n, ix.n == 1 ? "" : "s");
	status = fflush(stdout) == 0 ? 0 : CLI_EXIT_FAIL;
out:
	assets_index_clear(&ix);
	store_close(&s);
	return status;
}

static const char keygen_help[] =
    "usage: assetfs keygen KEY\n"
    "\n"
    "Make an Ed25519 key pair for signing pushes: the private key in KEY\n"
    "(PEM PKCS#8, mode 0600: keep it secret) and the public key in\n"
    "KEY.pub (PEM SubjectPublicKeyInfo: give it to readers). Existing\n"
    "files are never overwritten. Sign with 'assetfs push --sign KEY';\n"
    "verify with 'assetfs resolve|cat|ls --verify-key KEY.pub' or\n"
    "$" CLI_VERIFY_ENV "=KEY.pub.\n"
    "\n"
    "Options:\n"
    "  -h, --help          this help\n";

int cmd_keygen(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	char err[STORE_ERR_MAX];
	int o;

	optind = 0;
	opterr = 0;
	while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (o == 'h') {
			fputs(keygen_help, stdout);
			return 0;
		}
		return cli_usage("keygen", "unknown option '%s'",
				 argv[optind - 1]);
	}
	if (argc - optind != 1)
		return cli_usage("keygen", argc - optind ? "too many arguments"
							 : "expected KEY");
	if (sign_keygen(argv[optind], err, sizeof(err)) < 0) {
		cli_err("keygen", "%s", err);
		return CLI_EXIT_FAIL;
	}
	printf("wrote %s (private key, keep it secret) and %s" SIGN_PUB_SUFFIX
	       " (public key)\n",
	       argv[optind], argv[optind]);
	return fflush(stdout) == 0 ? 0 : CLI_EXIT_FAIL;
}

/*
 * test_assetdir - assetfs-server's version resolution in a mount-shaped
 * directory: alias symlinks win, plain listings resolve with the
 * versioning rules (a major never matches 10.x), file lookup in versions.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/assetdir.h"
#include "tests/unit/test.h"

static char root[PATH_MAX];

static void mk(const char *rel, const char *content)
{
	char p[PATH_MAX * 2], *slash;
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	for (slash = strchr(p + strlen(root) + 1, '/'); slash;
	     slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		mkdir(p, 0755);
		*slash = '/';
	}
	if (content) {
		f = fopen(p, "w");
		fputs(content, f);
		fclose(f);
	} else {
		mkdir(p, 0755);
	}
}

static void ln(const char *target, const char *rel)
{
	char p[PATH_MAX * 2];

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	unlink(p);
	CHECK_INT(symlink(target, p), 0);
}

static void setup(void)
{
	char cmd[PATH_MAX + 16];

	if (root[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
		CHECK_INT(system(cmd), 0);
	}
	snprintf(root, sizeof(root), "/tmp/test_assetdir.XXXXXX");
	CHECK(mkdtemp(root) != NULL);
}

static const char *resolve(const char *name, const char *want, int *ret,
			   char *err)
{
	static char out[128];
	char *v = NULL;

	*ret =
	    assetdir_resolve(root, name, want, VERSIONING_AUTO, &v, err, 256);
	snprintf(out, sizeof(out), "%s", v ? v : "(none)");
	free(v);
	return out;
}

test(listing_resolves_newest_and_majors)
{
	char err[256];
	int ret;

	setup();
	mk("a/b/1.0/model.json", "{}");
	mk("a/b/1.2/model.json", "{}");
	mk("a/b/1.10/model.json", "{}");
	mk("a/b/10.0/model.json", "{}");
	mk("a/b/.hidden/x", "{}");
	mk("a/b/junk/x", "{}");
	CHECK_STR(resolve("a/b", NULL, &ret, err), "10.0");
	CHECK_INT(ret, 0);
	CHECK_STR(resolve("a/b", "1", &ret, err), "1.10");
	CHECK_STR(resolve("a/b", "1.2", &ret, err), "1.2");
	resolve("a/b", "2", &ret, err);
	CHECK_INT(ret, -ENOENT);
	CHECK_STR_CONTAINS(err, "'2'");
	resolve("a/b", "1.3", &ret, err);
	CHECK_INT(ret, -ENOENT);
	CHECK_STR_CONTAINS(err, "no such version '1.3' of 'a/b'");
	resolve("a/nope", NULL, &ret, err);
	CHECK_INT(ret, -ENOENT);
	CHECK_STR_CONTAINS(err, "no such asset 'a/nope'");
	resolve("a/b", "../b/1.0", &ret, err);
	CHECK(ret < 0);
}

test(aliases_win_over_listing)
{
	char err[256];
	int ret;

	setup();
	mk("m/1.0/model.json", "{}");
	mk("m/1.1/model.json", "{}");
	mk("m/2.0/model.json", "{}");
	ln("1.0", "m/1.latest");
	ln("1.0", "m/latest");
	CHECK_STR(resolve("m", NULL, &ret, err), "1.0");
	CHECK_STR(resolve("m", "1", &ret, err), "1.0");
	/* no 2.latest alias: the listing decides */
	CHECK_STR(resolve("m", "2", &ret, err), "2.0");
	ln("1.1", "m/1.latest");
	CHECK_STR(resolve("m", "1", &ret, err), "1.1");
	/* a dangling or odd alias falls back to the listing */
	ln("../../etc", "m/latest");
	CHECK_STR(resolve("m", NULL, &ret, err), "etc");
	ln("latest", "m/latest");
	CHECK_STR(resolve("m", NULL, &ret, err), "2.0");
}

test(model_file_lookup)
{
	char p[PATH_MAX * 2], err[256], *out = NULL;

	setup();
	mk("x/0.0/model.json", "{}");
	mk("x/0.1/a.ubj", "{}");
	mk("x/0.2/a.json", "{}");
	mk("x/0.2/b.json", "{}");
	mk("x/0.3", "{}"); /* a file asset */
	mk("x/0.4/lib.so", "");
	snprintf(p, sizeof(p), "%s/x/0.0", root);
	CHECK_INT(assetdir_model_file(p, NULL, "xgboost", &out, err, 256), 0);
	CHECK_STR_CONTAINS(out, "/x/0.0/model.json");
	free(out);
	snprintf(p, sizeof(p), "%s/x/0.1", root);
	CHECK_INT(assetdir_model_file(p, NULL, "xgboost", &out, err, 256), 0);
	CHECK_STR_CONTAINS(out, "/x/0.1/a.ubj");
	free(out);
	snprintf(p, sizeof(p), "%s/x/0.2", root);
	CHECK_INT(assetdir_model_file(p, NULL, "xgboost", &out, err, 256),
		  -EEXIST);
	CHECK_STR_CONTAINS(err, "more than one model file");
	CHECK_INT(assetdir_model_file(p, "b.json", "xgboost", &out, err, 256),
		  0);
	CHECK_STR_CONTAINS(out, "/x/0.2/b.json");
	free(out);
	CHECK_INT(assetdir_model_file(p, "c.json", "xgboost", &out, err, 256),
		  -ENOENT);
	CHECK_INT(assetdir_model_file(p, "../0.0/model.json", "xgboost", &out,
				      err, 256),
		  -EINVAL);
	snprintf(p, sizeof(p), "%s/x/0.3", root);
	CHECK_INT(assetdir_model_file(p, NULL, "xgboost", &out, err, 256), 0);
	CHECK_STR_CONTAINS(out, "/x/0.3");
	free(out);
	snprintf(p, sizeof(p), "%s/x/0.4", root);
	CHECK_INT(assetdir_model_file(p, NULL, "plugin", &out, err, 256), 0);
	CHECK_STR_CONTAINS(out, "/x/0.4/lib.so");
	free(out);
	CHECK_INT(assetdir_model_file(p, NULL, "xgboost", &out, err, 256),
		  -ENOENT);
	snprintf(p, sizeof(p), "rm -rf %s", root);
	CHECK_INT(system(p), 0);
	root[0] = '\0';
}

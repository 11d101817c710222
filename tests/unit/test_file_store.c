/*
 * test_file_store - a file:// store never reaches outside its root
 * (providers/file_beneath.h, providers/file.c): symlinks that leave it,
 * absolute ones, loops and ".." climbs are missing objects or absent
 * entries; links that stay inside are followed; a put never writes through
 * a link; a push's prepare_put creates a new prefix below an existing
 * parent only. Every case runs twice: with openat2(2) and with the walk by
 * hand (ASSETFS_FILE_NO_OPENAT2=1).
 *
 * Layout built under a fresh temp dir T:
 *   T/outside/secret            "SECRET" (the canary)
 *   T/store/                    the store root
 *   T/store/in.bin              "INSIDE"
 *   T/store/a/x                 "X"
 *   T/store/esc_file   -> ../outside/secret
 *   T/store/esc_abs    -> T/outside/secret     (absolute)
 *   T/store/abs_in     -> T/store/in.bin       (absolute, inside: refused)
 *   T/store/esc_dir    -> ../outside
 *   T/store/in_link    -> in.bin
 *   T/store/in_dir     -> a
 *   T/store/a/up       -> ../in.bin            (climbs, stays inside)
 *   T/store/a/upup     -> ../../outside/secret (climbs out)
 *   T/store/loop       -> loop
 *   T/store/proc       -> /proc/self/root/etc/passwd
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/fileutil.h"
#include "providers/file_beneath.h"
#include "providers/provider.h"
#include "tests/unit/test.h"

struct fx {
	char top[64];
	char store[128];
	char outside[128];
	struct prov *p;
};

static void put(const char *path, const char *s)
{
	CHECK_INT(file_write_atomic(path, s, strlen(s), 0644, false), 0);
}

static void link_at(const struct fx *f, const char *target, const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", f->store, name);
	CHECK_INT(symlink(target, path), 0);
}

static bool fx_open(struct fx *f)
{
	char path[256], url[300];

	memset(f, 0, sizeof(*f));
	snprintf(f->top, sizeof(f->top), "/tmp/test_file_store.XXXXXX");
	if (!mkdtemp(f->top))
		return false;
	snprintf(f->store, sizeof(f->store), "%s/store", f->top);
	snprintf(f->outside, sizeof(f->outside), "%s/outside", f->top);
	CHECK_INT(mkdir(f->store, 0755), 0);
	CHECK_INT(mkdir(f->outside, 0755), 0);
	snprintf(path, sizeof(path), "%s/secret", f->outside);
	put(path, "SECRET");
	snprintf(path, sizeof(path), "%s/in.bin", f->store);
	put(path, "INSIDE");
	snprintf(path, sizeof(path), "%s/a", f->store);
	CHECK_INT(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/a/x", f->store);
	put(path, "X");
	link_at(f, "../outside/secret", "esc_file");
	snprintf(path, sizeof(path), "%s/secret", f->outside);
	link_at(f, path, "esc_abs");
	snprintf(path, sizeof(path), "%s/in.bin", f->store);
	link_at(f, path, "abs_in");
	link_at(f, "../outside", "esc_dir");
	link_at(f, "in.bin", "in_link");
	link_at(f, "a", "in_dir");
	link_at(f, "../in.bin", "a/up");
	link_at(f, "../../outside/secret", "a/upup");
	link_at(f, "loop", "loop");
	link_at(f, "/proc/self/root/etc/passwd", "proc");
	snprintf(url, sizeof(url), "file://%s", f->store);
	return prov_open(url, NULL, &f->p) == 0;
}

static void fx_close(struct fx *f)
{
	char cmd[128];

	prov_close(&f->p);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->top);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", f->top);
}

/* GET of @key: its bytes into @b; returns prov_get_buf's answer. */
static int get(struct fx *f, const char *key, struct buf *b)
{
	buf_reset(b);
	return prov_get_buf(f->p, key, 1 << 20, b, NULL);
}

static void check_reads(struct fx *f)
{
	static const char *const gone[] = {
	    "esc_file", "esc_abs", "abs_in", "esc_dir/secret", "a/upup",
	    "loop", "proc", "in_dir/upup", "a/../esc_file",
	};
	struct prov_object o = {0};
	struct buf b;

	buf_init(&b, 0);
	for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++) {
		int ret = get(f, gone[i], &b);

		if (ret != -ENOENT && ret != -EINVAL)
			test_fail(__FILE__, __LINE__, "GET %s = %d, want "
				  "-ENOENT", gone[i], ret);
		if (b.data && strstr(b.data, "SECRET"))
			test_fail(__FILE__, __LINE__, "GET %s leaked", gone[i]);
		ret = prov_head(f->p, gone[i], &o);
		prov_object_free(&o);
		if (ret != -ENOENT && ret != -EINVAL)
			test_fail(__FILE__, __LINE__, "HEAD %s = %d, want "
				  "-ENOENT", gone[i], ret);
	}
	CHECK_INT(get(f, "esc_file", &b), -ENOENT);
	CHECK_STR_CONTAINS(prov_last_error(), "leaves the store");
	/* links that stay inside are followed */
	CHECK_INT(get(f, "in_link", &b), 0);
	CHECK_STR(b.data, "INSIDE");
	CHECK_INT(get(f, "a/up", &b), 0);
	CHECK_STR(b.data, "INSIDE");
	CHECK_INT(get(f, "in_dir/x", &b), 0);
	CHECK_STR(b.data, "X");
	CHECK_INT(prov_head(f->p, "in_dir/up", &o), 0);
	CHECK_INT(o.size, 6);
	prov_object_free(&o);
	buf_free(&b);
}

static bool listed(const struct prov_listing *l, const char *key)
{
	for (size_t i = 0; i < l->n_objects; i++)
		if (strcmp(l->objects[i].key, key) == 0)
			return true;
	for (size_t i = 0; i < l->n_prefixes; i++)
		if (strcmp(l->prefixes[i], key) == 0)
			return true;
	return false;
}

static void check_lists(struct fx *f)
{
	struct prov_listing l = {0};

	CHECK_INT(prov_list(f->p, "", true, &l), 0);
	CHECK(listed(&l, "in.bin"));
	CHECK(listed(&l, "in_link"));
	CHECK(listed(&l, "a/"));
	CHECK(listed(&l, "in_dir/")); /* stays inside */
	CHECK(!listed(&l, "esc_file"));
	CHECK(!listed(&l, "esc_abs"));
	CHECK(!listed(&l, "abs_in"));
	CHECK(!listed(&l, "esc_dir/"));
	CHECK(!listed(&l, "loop"));
	CHECK(!listed(&l, "proc"));
	CHECK_INT(l.n_objects + l.n_prefixes, 4);
	prov_listing_free(&l);

	/* a listing through a link that leaves is empty */
	CHECK_INT(prov_list(f->p, "esc_dir/", true, &l), 0);
	CHECK_INT(l.n_objects + l.n_prefixes, 0);
	prov_listing_free(&l);
	/* through one that stays: its entries, the climbing one resolved */
	CHECK_INT(prov_list(f->p, "in_dir/", true, &l), 0);
	CHECK(listed(&l, "in_dir/x"));
	CHECK(listed(&l, "in_dir/up"));
	CHECK(!listed(&l, "in_dir/upup"));
	prov_listing_free(&l);
	/* a recursive listing does not descend through links */
	CHECK_INT(prov_list(f->p, "", false, &l), 0);
	CHECK(listed(&l, "a/x"));
	CHECK(listed(&l, "a/up"));
	CHECK(!listed(&l, "in_dir/x"));
	CHECK(!listed(&l, "esc_dir/secret"));
	CHECK(!listed(&l, "a/upup"));
	prov_listing_free(&l);
}

static void check_writes(struct fx *f)
{
	char path[256];
	struct buf b;
	struct stat st;

	buf_init(&b, 0);
	/* never through a directory link that leaves */
	CHECK(prov_put_buf(f->p, "esc_dir/planted", "P", 1) < 0);
	snprintf(path, sizeof(path), "%s/planted", f->outside);
	CHECK(stat(path, &st) < 0);
	CHECK(prov_put_buf(f->p, "esc_dir/new/planted", "P", 1) < 0);
	snprintf(path, sizeof(path), "%s/new", f->outside);
	CHECK(stat(path, &st) < 0);
	/* a file link is replaced, its target untouched */
	CHECK_INT(prov_put_buf(f->p, "esc_file", "NEW", 3), 0);
	snprintf(path, sizeof(path), "%s/secret", f->outside);
	CHECK(file_read_capped(path, 100, &b) == 0 &&
	      strcmp(b.data, "SECRET") == 0);
	buf_reset(&b);
	CHECK_INT(get(f, "esc_file", &b), 0);
	CHECK_STR(b.data, "NEW");
	/* a delete through a leaving link deletes nothing outside */
	CHECK_INT(prov_delete(f->p, "esc_dir/secret"), 0);
	snprintf(path, sizeof(path), "%s/secret", f->outside);
	CHECK_INT(stat(path, &st), 0);
	/* new directories inside, also through a link that stays */
	CHECK_INT(prov_put_buf(f->p, "in_dir/n1/n2/f", "F", 1), 0);
	snprintf(path, sizeof(path), "%s/a/n1/n2/f", f->store);
	CHECK_INT(stat(path, &st), 0);
	CHECK_INT(prov_delete(f->p, "in_dir/n1/n2/f"), 0);
	snprintf(path, sizeof(path), "%s/a/n1", f->store);
	CHECK(stat(path, &st) < 0); /* emptied directories removed */
	buf_free(&b);
}

static void run_all(bool walk)
{
	struct fx f;

	if (walk)
		setenv("ASSETFS_FILE_NO_OPENAT2", "1", 1);
	else
		unsetenv("ASSETFS_FILE_NO_OPENAT2");
	CHECK(fb_uses_openat2() == !walk);
	CHECK(fx_open(&f));
	if (f.p) {
		check_reads(&f);
		check_lists(&f);
		check_writes(&f);
	}
	fx_close(&f);
	unsetenv("ASSETFS_FILE_NO_OPENAT2");
}

test(file_store_beneath_openat2)
{
	run_all(false);
}

test(file_store_beneath_walk)
{
	run_all(true);
}

/* fb_open() itself: the same answers both ways, on a path table. */
test(fb_open_table)
{
	static const struct {
		const char *rel;
		int want; /* 0: opens */
	} cases[] = {
	    {"", 0},		  {"in.bin", 0},	{"a/x", 0},
	    {"a/../in.bin", 0},	  {"in_dir/x", 0},	{"in_dir/up", 0},
	    {"a/./x", 0},	  {"..", -EXDEV},	{"a/../../x", -EXDEV},
	    {"esc_file", -EXDEV}, {"esc_abs", -EXDEV},	{"abs_in", -EXDEV},
	    {"esc_dir/secret", -EXDEV}, {"a/upup", -EXDEV},
	    {"loop", -ELOOP},	  {"nope", -ENOENT},	{"in.bin/x", -ENOTDIR},
	};
	struct fx f;
	int root;

	CHECK(fx_open(&f));
	root = open(f.store, O_PATH | O_DIRECTORY);
	CHECK(root >= 0);
	for (int walk = 0; walk < 2 && root >= 0; walk++) {
		if (walk)
			setenv("ASSETFS_FILE_NO_OPENAT2", "1", 1);
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			int fd = fb_open(root, cases[i].rel, O_RDONLY);
			int got = fd >= 0 ? 0 : fd;

			if (fd >= 0)
				close(fd);
			if (got != cases[i].want)
				test_fail(__FILE__, __LINE__,
					  "%s: fb_open(%s) = %d, want %d",
					  walk ? "walk" : "openat2",
					  cases[i].rel, got, cases[i].want);
		}
	}
	unsetenv("ASSETFS_FILE_NO_OPENAT2");
	if (root >= 0)
		close(root);
	fx_close(&f);
}

/* A push's first step: a new prefix below an existing parent only. */
test(file_prepare_put_creates_prefix)
{
	char url[300], path[256];
	struct prov *p = NULL;
	struct stat st;
	struct fx f;

	CHECK(fx_open(&f));
	snprintf(url, sizeof(url), "file://%s/newprefix", f.store);
	CHECK_INT(prov_open(url, NULL, &p), 0);
	CHECK_INT(prov_put_buf(p, "x", "1", 1), -EIO); /* not yet */
	CHECK_INT(prov_prepare_put(p), 0);
	snprintf(path, sizeof(path), "%s/newprefix", f.store);
	CHECK_INT(stat(path, &st), 0);
	CHECK_INT(prov_put_buf(p, "x", "1", 1), 0);
	prov_close(&p);

	snprintf(url, sizeof(url), "file://%s/no/parent", f.store);
	CHECK_INT(prov_open(url, NULL, &p), 0);
	CHECK_INT(prov_prepare_put(p), -ENOENT);
	snprintf(path, sizeof(path), "%s/no", f.store);
	CHECK_STR_CONTAINS(prov_last_error(), path);
	CHECK_STR_CONTAINS(prov_last_error(), "does not exist");
	CHECK(stat(path, &st) < 0);
	prov_close(&p);
	fx_close(&f);
}

/*
 * cache_scan - walks over the cache dir's files: removal of dead writers'
 * temp files, the walk of blocks/<xx>/<sha256>, and the reconciliation of
 * the index with the files (the files are the truth; used to rebuild a
 * lost index, by gc and by verify).
 *
 * Slow paths. Reconciliation runs inside one write transaction so no
 * commit from another process slips between the directory walk and the
 * row scan. Calls the sqlite layer and the bottom only; cache.c (at open)
 * and cache_admin.c call it. Errors: 0 or a negative errno.
 */
#include "fs/cache/cache.h"
#include "fs/cache/cache_index_int.h"
#include "fs/cache/cache_int.h"
#include "fs/cache/cache_scan_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

int cache_clean_tmp(struct cache *c, uint64_t *removed)
{
	char path[CACHE_PATH_MAX];
	struct dirent *de;
	struct stat st;
	DIR *d = NULL;
	int fd, ret;

	*removed = 0;
	ret = cache_path_fmt(path, sizeof(path), "%s/tmp", c->dir);
	if (ret < 0)
		return ret;
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		fd = openat(dirfd(d), de->d_name,
			    O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
		if (fd < 0)
			continue;
		if (flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &st) == 0 &&
		    (st.st_size > 0 ||
		     st.st_mtime + CACHE_TMP_MIN_AGE < time(NULL))) {
			if (unlinkat(dirfd(d), de->d_name, 0) == 0)
				(*removed)++;
		}
		close(fd);
	}
	closedir(d);
	return 0;
}

static bool is_hex64(const char *s)
{
	size_t i;

	for (i = 0; i < DIGEST_HEX_LEN; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	}
	return s[DIGEST_HEX_LEN] == '\0';
}

int cache_walk_blocks(struct cache *c,
		      int (*fn)(struct cache *c, const struct digest *d,
				const char *path, void *arg),
		      void *arg)
{
	char path[CACHE_PATH_MAX];
	struct digest d;
	struct dirent *de;
	DIR *dir;
	int i, ret = 0;

	for (i = 0; i < 256 && ret >= 0; i++) {
		if (cache_path_fmt(path, sizeof(path), "%s/blocks/%02x", c->dir,
				   i))
			return -ENAMETOOLONG;
		dir = opendir(path);
		if (!dir)
			continue;
		while (ret >= 0 && (de = readdir(dir))) {
			char fpath[CACHE_PATH_MAX];

			if (!is_hex64(de->d_name) ||
			    strncmp(de->d_name, path + strlen(path) - 2, 2))
				continue;
			if (digest_from_hex(de->d_name, &d) < 0)
				continue;
			if (cache_path_fmt(fpath, sizeof(fpath), "%s/%s", path,
					   de->d_name))
				continue;
			ret = fn(c, &d, fpath, arg);
		}
		closedir(dir);
	}
	return ret;
}

struct reconcile {
	struct dset seen;
	uint64_t orphans;
	uint64_t missing;
	int state; /* for orphans added */
};

static int reconcile_file(struct cache *c, const struct digest *d,
			  const char *path, void *arg)
{
	struct reconcile *r = arg;
	struct stat st;
	int ret;

	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	ret = cache_dset_put(&r->seen, d, 1, SIZE_MAX);
	if (ret < 0)
		return ret;
	ret = cache_block_row_exists(c, d);
	if (ret != 0)
		return ret < 0 ? ret : 0;
	r->orphans++;
	/* Unknown history: old atime so it goes first, suspect until read. */
	return cache_put_block_row(c, d, (uint64_t)st.st_size, NULL,
				   (int64_t)st.st_mtime * 1000000, r->state);
}

int cache_reconcile_locked(struct cache *c, uint64_t *orphans,
			   uint64_t *missing)
{
	struct reconcile r = {.state = BLK_SUSPECT};
	int64_t young = cache_now_us() - 10 * 1000000;
	struct digest gone[64];
	sqlite3_stmt *s = NULL;
	int n, i, rc, ret;

	ret = cache_db_begin(c);
	if (ret < 0)
		return ret;
	ret = cache_walk_blocks(c, reconcile_file, &r);
	if (ret < 0)
		goto out;
	/* rows no digest can name (a damaged index) would stall the paging */
	rc = sqlite3_exec(c->db,
			  "DELETE FROM blocks WHERE typeof(digest) != 'blob'"
			  " OR length(digest) != 32",
			  NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		ret = cache_sqlite_err(rc);
		goto out;
	}
	/*
	 * A row younger than a few seconds may belong to a commit in another
	 * process that is between committing its row and renaming its file:
	 * leave it (if it really is a ghost, the LRU ages it out).
	 */
	rc = sqlite3_prepare_v2(c->db,
				"SELECT digest FROM blocks WHERE"
				" digest > ?1 AND wtime < ?2"
				" ORDER BY digest LIMIT 256",
				-1, &s, NULL);
	if (rc != SQLITE_OK) {
		ret = cache_sqlite_err(rc);
		goto out;
	}
	{
		struct digest last = {{0}};
		bool more = true;

		while (more) {
			n = 0;
			more = false;
			sqlite3_reset(s);
			sqlite3_bind_blob(s, 1, last.b, DIGEST_LEN,
					  SQLITE_TRANSIENT);
			sqlite3_bind_int64(s, 2, young);
			while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
				const void *b = sqlite3_column_blob(s, 0);
				struct digest d;

				more = true;
				memcpy(d.b, b, DIGEST_LEN); /* length checked */
				last = d;
				if (!cache_dset_find(&r.seen, &d))
					gone[n++] = d;
				if (n == 64)
					break; /* next page starts at last */
			}
			sqlite3_reset(s);
			for (i = 0; i < n; i++) {
				ret = cache_del_block_locked(c, &gone[i]);
				if (ret < 0)
					goto out;
				r.missing++;
			}
		}
	}
	ret = 0;
out:
	sqlite3_finalize(s);
	cache_dset_free(&r.seen);
	ret = cache_db_end(c, ret);
	if (ret == 0) {
		if (orphans)
			*orphans = r.orphans;
		if (missing)
			*missing = r.missing;
	}
	return ret;
}

/*
 * cachetest - see cachetest.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/unit/cachetest.h"
#include "test.h"

static int rm_one(const char *p, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	return remove(p);
}

void ct_rm_rf(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *ct_tmpdir(void)
{
	char tmpl[] = "/tmp/test_cache.XXXXXX";
	char *d = mkdtemp(tmpl);

	return d ? strdup(d) : NULL;
}

void ct_fill(void *p, size_t len, unsigned seed)
{
	uint8_t *b = p;
	size_t i;

	for (i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		b[i] = (uint8_t)(seed >> 16);
	}
}

int ct_open_cache(const char *dir, uint64_t max, struct cache **c)
{
	struct cache_opts o;

	cache_opts_init(&o);
	o.dir = dir;
	if (max)
		o.max.bytes = max;
	o.min_free.pct = 0;
	o.min_free.bytes = 0;
	return cache_open(&o, c);
}

/* Read the whole block @d through the hit path; returns bytes or -errno. */
ssize_t ct_read_block(struct cache *c, const struct digest *d, void *buf,
			  size_t cap)
{
	uint64_t size = 0;
	ssize_t n;
	int fd, ret;

	ret = cache_block_open(c, d, &fd, &size);
	if (ret < 0)
		return ret;
	n = pread(fd, buf, cap, 0);
	close(fd);
	if (n >= 0 && (uint64_t)n != size)
		return -EIO;
	return n;
}

int ct_count_files(const char *dir, const char *sub)
{
	char path[512];
	int n = 0;
	FILE *p;

	snprintf(path, sizeof(path), "find %s/%s -type f | wc -l", dir, sub);
	p = popen(path, "r");
	if (!p)
		return -1;
	if (fscanf(p, "%d", &n) != 1)
		n = -1;
	pclose(p);
	return n;
}

uint64_t ct_du_blocks(const char *dir)
{
	char cmd[512];
	unsigned long long n = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd),
		 "find %s/blocks -type f -printf '%%s\\n' |"
		 " awk '{s+=$1} END {print s+0}'",
		 dir);
	p = popen(cmd, "r");
	if (!p)
		return UINT64_MAX;
	if (fscanf(p, "%llu", &n) != 1)
		n = UINT64_MAX;
	pclose(p);
	return n;
}

void ct_put_three(const char *dir, struct digest d[3], bool close_it)
{
	struct cache *c = NULL;
	static uint8_t data[BLK];
	int i;

	CHECK_INT(ct_open_cache(dir, 0, &c), 0);
	for (i = 0; i < 3; i++) {
		ct_fill(data, sizeof(data), 200 + (unsigned)i);
		CHECK_INT(
		    cache_put_block(c, data, BLK - (size_t)i, NULL, &d[i]), 0);
	}
	if (close_it)
		cache_close(&c);
	/* else: leaked on purpose, as a process that died */
}

void ct_three_digests(struct digest d[3])
{
	static uint8_t data[BLK];
	int i;

	for (i = 0; i < 3; i++) {
		ct_fill(data, sizeof(data), 200 + (unsigned)i);
		digest_buf(data, (size_t)(BLK - i), &d[i]);
	}
}

void ct_check_three(struct cache *c, const struct digest d[3])
{
	static uint8_t data[BLK], back[BLK];
	int i;

	for (i = 0; i < 3; i++) {
		ct_fill(data, sizeof(data), 200 + (unsigned)i);
		CHECK_INT(ct_read_block(c, &d[i], back, sizeof(back)), BLK - i);
		CHECK(memcmp(back, data, (size_t)(BLK - i)) == 0);
	}
}

void ct_corrupt_file(const char *path, off_t off)
{
	int fd;
	uint8_t b = 0;

	chmod(path, 0644);
	fd = open(path, O_RDWR);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK(pread(fd, &b, 1, off) == 1);
	b ^= 0x40;
	CHECK(pwrite(fd, &b, 1, off) == 1);
	close(fd);
}


/*
 * cache_util - the bottom of the block cache: clocks, the digest sets used
 * for batched access times and suspect blocks, paths, and sizes given by
 * the user (cache_size=, cache_min_free=). No sqlite, no walks, nothing
 * from the layers above (see the map in cache_int.h).
 *
 * Threads: the digest sets are not locked here; their owners in struct
 * cache say which lock guards each. Errors: 0 or a negative errno.
 */
#include "fs/cache/cache.h"
#include "fs/cache/cache_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

int64_t cache_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t cache_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t cache_digest_key64(const struct digest *d)
{
	uint64_t k;

	memcpy(&k, d->b, sizeof(k));
	return k;
}

static struct dent *dset_slot(const struct dset *s, const struct digest *d)
{
	size_t mask = s->cap - 1;
	size_t i = (size_t)cache_digest_key64(d) & mask;

	for (;;) {
		struct dent *e = &s->e[i];

		if (e->v == 0 || digest_equal(&e->d, d))
			return e;
		i = (i + 1) & mask;
	}
}

struct dent *cache_dset_find(const struct dset *s, const struct digest *d)
{
	struct dent *e;

	if (!s->cap)
		return NULL;
	e = dset_slot(s, d);
	return e->v ? e : NULL;
}

int cache_dset_put(struct dset *s, const struct digest *d, int64_t v,
		   size_t limit)
{
	struct dent *e = cache_dset_find(s, d);

	if (e) { /* present: update in place, never grows */
		if (v > e->v)
			e->v = v;
		return 0;
	}
	if (s->n + 1 > s->cap / 2) {
		size_t ncap = s->cap ? s->cap * 2 : 64;
		struct dset ns = {0};
		size_t i;

		if (s->n + 1 > limit)
			return -ENOSPC;
		ns.e = calloc(ncap, sizeof(*ns.e));
		if (!ns.e)
			return -ENOMEM;
		ns.cap = ncap;
		for (i = 0; i < s->cap; i++) {
			if (s->e[i].v)
				*dset_slot(&ns, &s->e[i].d) = s->e[i];
		}
		ns.n = s->n;
		free(s->e);
		*s = ns;
	}
	e = dset_slot(s, d);
	if (!e->v) {
		e->d = *d;
		e->v = v;
		s->n++;
	} else if (v > e->v) {
		e->v = v;
	}
	return 0;
}

void cache_dset_free(struct dset *s)
{
	free(s->e);
	memset(s, 0, sizeof(*s));
}

void cache_suspect_clear(struct cache *c, const struct digest *d)
{
	struct dent *e;

	pthread_mutex_lock(&c->mem_lock);
	e = cache_dset_find(&c->suspect, d);
	if (e && e->v > 0) {
		e->v = -1;
		c->suspect_live--;
	}
	pthread_mutex_unlock(&c->mem_lock);
}

int cache_path_fmt(char *out, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return 0;
}

int cache_block_path(const struct cache *c, const struct digest *d, char *out,
		     size_t len)
{
	char hex[DIGEST_HEX_LEN + 1];

	digest_to_hex(d, hex);
	return cache_path_fmt(out, len, "%s/blocks/%.2s/%s", c->dir, hex, hex);
}

const char *cache_dir(const struct cache *c)
{
	return c->dir;
}

void cache_opts_init(struct cache_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->max.bytes = CACHE_DEFAULT_SIZE;
	o->min_free.pct = CACHE_DEFAULT_MIN_FREE_PCT;
}

int cache_parse_size(const char *s, struct cache_size *out)
{
	uint64_t ip = 0, frac = 0, fscale = 1, mult = 1;
	const char *p = s;
	bool digits = false;

	if (!s)
		return -EINVAL;
	while (*p >= '0' && *p <= '9') {
		if (ip > (UINT64_MAX - 9) / 10)
			return -EINVAL;
		ip = ip * 10 + (uint64_t)(*p++ - '0');
		digits = true;
	}
	if (*p == '.') {
		p++;
		while (*p >= '0' && *p <= '9') {
			if (fscale < 1000) { /* 3 digits: no overflow below */
				frac = frac * 10 + (uint64_t)(*p - '0');
				fscale *= 10;
			}
			p++;
			digits = true;
		}
	}
	if (!digits)
		return -EINVAL;
	if (*p == '%') {
		if (p[1] || frac || ip > 100)
			return -EINVAL;
		out->bytes = 0;
		out->pct = (unsigned)ip;
		return 0;
	}
	switch (*p) {
	case 'k':
	case 'K':
		mult = 1ULL << 10;
		p++;
		break;
	case 'm':
	case 'M':
		mult = 1ULL << 20;
		p++;
		break;
	case 'g':
	case 'G':
		mult = 1ULL << 30;
		p++;
		break;
	case 't':
	case 'T':
		mult = 1ULL << 40;
		p++;
		break;
	default:
		break;
	}
	if (mult > 1 && *p == 'i')
		p++;
	if (*p == 'b' || *p == 'B')
		p++;
	if (*p)
		return -EINVAL;
	if (frac && mult == 1)
		return -EINVAL; /* fractional bytes */
	if (ip > UINT64_MAX / mult ||
	    ip * mult > UINT64_MAX - frac * mult / fscale)
		return -EINVAL;
	out->bytes = ip * mult + frac * mult / fscale;
	out->pct = 0;
	return 0;
}

int cache_default_dir(char *out, size_t len)
{
	const char *x = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");

	if (geteuid() == 0)
		return cache_path_fmt(out, len, "/var/cache/assetfs");
	if (x && x[0] == '/')
		return cache_path_fmt(out, len, "%s/assetfs", x);
	if (home && home[0])
		return cache_path_fmt(out, len, "%s/.cache/assetfs", home);
	return -ENOENT;
}

uint64_t cache_size_resolve(const struct cache_size *s, const struct statvfs *v)
{
	if (s->pct)
		return (uint64_t)v->f_blocks * v->f_frsize / 100 * s->pct;
	return s->bytes;
}

uint64_t cache_disk_free(const struct cache *c)
{
	struct statvfs v;

	if (statvfs(c->dir, &v) < 0)
		return UINT64_MAX; /* unknown: do not evict for it */
	return (uint64_t)v.f_bavail * v.f_frsize;
}

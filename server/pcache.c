/*
 * pcache - native LRU (hash table + list under one mutex) or redis
 * (hiredis, a small pool of blocking connections with short timeouts).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_HIREDIS
#include <hiredis/hiredis.h>
#endif

#include "common/digest.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "server/pcache.h"

#define PC_KEY_MAX 256
#define PC_POOL 16
#define PC_VALUE_MAX (16u << 20)

struct pc_entry {
	struct pc_entry *hnext;	      /* hash chain */
	struct pc_entry *prev, *next; /* LRU, most recent first */
	uint64_t h;
	char key[PC_KEY_MAX];
	size_t n;
	double v[];
};

struct pcache {
	bool redis;
	pthread_mutex_t lock;
	/* native; protected by lock */
	struct pc_entry **tab;
	size_t nbuckets, count, max;
	struct pc_entry *head, *tail;
	/* redis; pool protected by lock */
	char host[256];
	int port;
	void *pool[PC_POOL];
	size_t npool;
	int64_t down_until_ms; /* after a failure, skip redis for a moment */
};

const char *pcache_kind(const struct pcache *c)
{
	return c->redis ? "redis" : "native";
}

uint64_t pcache_key(const double *x, size_t rows, size_t cols)
{
	uint64_t hdr[3];

	hdr[0] = rows;
	hdr[1] = cols;
	hdr[2] = digest_xxh3(x, rows * cols * sizeof(*x));
	return digest_xxh3(hdr, sizeof(hdr));
}

static int make_key(char *out, const char *model, const char *version,
		    uint64_t key)
{
	int n = snprintf(out, PC_KEY_MAX, "assetfs:pred:%s:%s:%016llx", model,
			 version, (unsigned long long)key);

	return n > 0 && n < PC_KEY_MAX ? 0 : -ENAMETOOLONG;
}

int pcache_from_env(struct pcache **out, char *err, size_t errlen)
{
	const char *prov = getenv("MODELKIT_CACHE_PROVIDER");
	const char *s;
	struct pcache *c;
	long v;

	*out = NULL;
	if (!prov || !prov[0] || strcmp(prov, "none") == 0)
		return 0;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	if (strcmp(prov, "native") == 0) {
		s = getenv("MODELKIT_CACHE_MAX_SIZE");
		v = s ? strtol(s, NULL, 10) : 128;
		if (v <= 0 || v > 100000000) {
			snprintf(err, errlen,
				 "MODELKIT_CACHE_MAX_SIZE must be "
				 "a positive number of entries");
			goto bad;
		}
		c->max = (size_t)v;
		c->nbuckets = 1024;
		while (c->nbuckets < c->max && c->nbuckets < (1u << 24))
			c->nbuckets *= 2;
		c->tab = calloc(c->nbuckets, sizeof(*c->tab));
		if (!c->tab) {
			pcache_free(c);
			return -ENOMEM;
		}
	} else if (strcmp(prov, "redis") == 0) {
#ifdef HAVE_HIREDIS
		c->redis = true;
		s = getenv("MODELKIT_CACHE_HOST");
		snprintf(c->host, sizeof(c->host), "%s",
			 s && s[0] ? s : "localhost");
		s = getenv("MODELKIT_CACHE_PORT");
		v = s ? strtol(s, NULL, 10) : 6379;
		if (v <= 0 || v > 65535) {
			snprintf(err, errlen,
				 "MODELKIT_CACHE_PORT must be a "
				 "port number");
			goto bad;
		}
		c->port = (int)v;
#else
		snprintf(err, errlen,
			 "this server was built without hiredis: "
			 "MODELKIT_CACHE_PROVIDER=redis is not available");
		goto bad;
#endif
	} else {
		snprintf(err, errlen,
			 "MODELKIT_CACHE_PROVIDER must be native "
			 "or redis, not '%s'",
			 prov);
		goto bad;
	}
	*out = c;
	return 0;
bad:
	pcache_free(c);
	return -EINVAL;
}

void pcache_free(struct pcache *c)
{
	struct pc_entry *e, *next;
	size_t i;

	if (!c)
		return;
	for (e = c->head; e; e = next) {
		next = e->next;
		free(e);
	}
	free(c->tab);
#ifdef HAVE_HIREDIS
	for (i = 0; i < c->npool; i++)
		redisFree(c->pool[i]);
#else
	(void)i;
#endif
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* native: caller holds c->lock */
static struct pc_entry **find_slot(struct pcache *c, uint64_t h,
				   const char *key)
{
	struct pc_entry **pp = &c->tab[h & (c->nbuckets - 1)];

	while (*pp && ((*pp)->h != h || strcmp((*pp)->key, key) != 0))
		pp = &(*pp)->hnext;
	return pp;
}

static void lru_unlink(struct pcache *c, struct pc_entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_front(struct pcache *c, struct pc_entry *e)
{
	e->next = c->head;
	if (c->head)
		c->head->prev = e;
	c->head = e;
	if (!c->tail)
		c->tail = e;
}

#ifdef HAVE_HIREDIS
static redisContext *redis_take(struct pcache *c)
{
	struct timeval tv = {.tv_sec = 1};
	redisContext *r = NULL;

	pthread_mutex_lock(&c->lock);
	if (time_mono_ms() < c->down_until_ms) {
		pthread_mutex_unlock(&c->lock);
		return NULL;
	}
	if (c->npool)
		r = c->pool[--c->npool];
	pthread_mutex_unlock(&c->lock);
	if (r)
		return r;
	r = redisConnectWithTimeout(c->host, c->port, tv);
	if (!r || r->err) {
		log_warn("prediction cache: cannot connect to redis at %s:%d: "
			 "%s",
			 c->host, c->port, r ? r->errstr : "no memory");
		redisFree(r);
		pthread_mutex_lock(&c->lock);
		c->down_until_ms = time_mono_ms() + 1000;
		pthread_mutex_unlock(&c->lock);
		return NULL;
	}
	redisSetTimeout(r, tv);
	return r;
}

static void redis_give(struct pcache *c, redisContext *r, bool ok)
{
	if (ok) {
		pthread_mutex_lock(&c->lock);
		if (c->npool < PC_POOL) {
			c->pool[c->npool++] = r;
			r = NULL;
		}
		pthread_mutex_unlock(&c->lock);
	} else {
		log_warn("prediction cache: redis error: %s", r->errstr);
	}
	redisFree(r);
}
#endif

int pcache_get(struct pcache *c, const char *model, const char *version,
	       uint64_t key, double *out, size_t n)
{
	char k[PC_KEY_MAX];
	struct pc_entry *e;
	int ret = -ENOENT;

	if (make_key(k, model, version, key) < 0)
		return -ENOENT;
	if (c->redis) {
#ifdef HAVE_HIREDIS
		redisContext *r = redis_take(c);
		redisReply *rep;

		if (!r)
			return -ENOENT;
		rep = redisCommand(r, "GET %s", k);
		if (rep && rep->type == REDIS_REPLY_STRING &&
		    rep->len == n * sizeof(double)) {
			memcpy(out, rep->str, rep->len);
			ret = 0;
		}
		freeReplyObject(rep);
		redis_give(c, r, rep != NULL);
#endif
		return ret;
	}
	pthread_mutex_lock(&c->lock);
	e = *find_slot(c, key, k);
	if (e && e->n == n) {
		memcpy(out, e->v, n * sizeof(double));
		lru_unlink(c, e);
		lru_front(c, e);
		ret = 0;
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}

void pcache_put(struct pcache *c, const char *model, const char *version,
		uint64_t key, const double *out, size_t n)
{
	char k[PC_KEY_MAX];
	struct pc_entry *e, **pp;

	if (n * sizeof(double) > PC_VALUE_MAX ||
	    make_key(k, model, version, key) < 0)
		return;
	if (c->redis) {
#ifdef HAVE_HIREDIS
		redisContext *r = redis_take(c);
		redisReply *rep;

		if (!r)
			return;
		rep = redisCommand(r, "SET %s %b", k, (const void *)out,
				   n * sizeof(double));
		freeReplyObject(rep);
		redis_give(c, r, rep != NULL);
#endif
		return;
	}
	e = malloc(sizeof(*e) + n * sizeof(double));
	if (!e)
		return;
	memset(e, 0, sizeof(*e));
	e->h = key;
	memcpy(e->key, k, sizeof(k));
	e->n = n;
	memcpy(e->v, out, n * sizeof(double));
	pthread_mutex_lock(&c->lock);
	pp = find_slot(c, key, k);
	if (*pp) {
		/* raced with another thread: keep the one there */
		pthread_mutex_unlock(&c->lock);
		free(e);
		return;
	}
	*pp = e;
	lru_front(c, e);
	c->count++;
	while (c->count > c->max && c->tail) {
		struct pc_entry *old = c->tail;

		lru_unlink(c, old);
		pp = find_slot(c, old->h, old->key);
		*pp = old->hnext;
		c->count--;
		free(old);
	}
	pthread_mutex_unlock(&c->lock);
}

/*
 * inode - see inode.h. A growing array of node pointers indexed by inode
 * number (slots of forgotten nodes become NULL and are not reused) and a
 * chained hash on the path for lookups by name.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "common/digest.h"
#include "fs/mount/inode.h"

#define INODE_PATH_MAX 8192
/* The table is an array indexed by number: a restored number above this
   (2^31 nodes made in one mount's life) is refused as garbage. */
#define INODE_RESTORE_MAX (1ull << 31)

struct inode_table {
	pthread_mutex_t lock;
	struct inode **v; /* protected by lock; index = ino */
	uint64_t n;	  /* protected by lock; next number */
	uint64_t cap;	  /* protected by lock */
	struct inode **hash; /* protected by lock */
	size_t hsize;	     /* power of two */
	uint64_t live;	     /* protected by lock */
	/* the journal, set before the table is shared */
	void (*journal)(void *arg, const struct inode *n, int64_t delta);
	void *journal_arg;
};

static void journal(struct inode_table *t, const struct inode *n,
		    int64_t delta)
{
	if (t->journal)
		t->journal(t->journal_arg, n, delta);
}

static size_t hslot(const struct inode_table *t, const char *path)
{
	return (size_t)digest_xxh3(path, strlen(path)) & (t->hsize - 1);
}

static void node_free(struct inode *n)
{
	if (!n)
		return;
	free(n->path);
	free(n->name);
	free(n->version);
	free(n->relpath);
	free(n);
}

static char *dup_or_null(const char *s, bool *oom)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*oom = true;
	return d;
}

static void hash_unlink(struct inode_table *t, struct inode *n)
{
	struct inode **pp = &t->hash[hslot(t, n->path)];

	for (; *pp; pp = &(*pp)->hnext) {
		if (*pp == n) {
			*pp = n->hnext;
			n->hnext = NULL;
			return;
		}
	}
}

static int grow(struct inode_table *t)
{
	struct inode **nv;
	uint64_t ncap;

	if (t->n < t->cap)
		return 0;
	ncap = t->cap ? t->cap * 2 : 1024;
	nv = realloc(t->v, ncap * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	memset(nv + t->cap, 0, (ncap - t->cap) * sizeof(*nv));
	t->v = nv;
	t->cap = ncap;
	return 0;
}

/* Double the hash when it gets crowded; called with the lock held. */
static void rehash(struct inode_table *t)
{
	struct inode **nh;
	size_t nsize = t->hsize * 2;
	uint64_t k;

	if (t->live < t->hsize)
		return;
	nh = calloc(nsize, sizeof(*nh));
	if (!nh)
		return; /* chains just get longer */
	free(t->hash);
	t->hash = nh;
	t->hsize = nsize;
	for (k = 0; k < t->n; k++) {
		struct inode *n = t->v[k];
		size_t h;

		if (!n || !n->hashed)
			continue;
		h = hslot(t, n->path);
		n->hnext = t->hash[h];
		t->hash[h] = n;
	}
}

struct inode_table *inode_table_new(void)
{
	struct inode_table *t = calloc(1, sizeof(*t));
	struct inode *root = NULL;

	if (!t)
		return NULL;
	pthread_mutex_init(&t->lock, NULL);
	t->hsize = 1024;
	t->hash = calloc(t->hsize, sizeof(*t->hash));
	root = calloc(1, sizeof(*root));
	t->n = INODE_ROOT_INO;
	if (!t->hash || !root || grow(t) < 0)
		goto fail;
	root->path = strdup("");
	root->name = strdup("");
	if (!root->path || !root->name)
		goto fail;
	root->ino = INODE_ROOT_INO;
	root->parent = INODE_ROOT_INO;
	root->kind = INODE_NS;
	root->comp = root->path;
	root->nlookup = 1;
	t->v[INODE_ROOT_INO] = root;
	t->n = INODE_ROOT_INO + 1;
	t->live = 1;
	return t;
fail:
	node_free(root);
	free(t->hash);
	free(t->v);
	pthread_mutex_destroy(&t->lock);
	free(t);
	return NULL;
}

void inode_table_free(struct inode_table *t)
{
	uint64_t k;

	if (!t)
		return;
	for (k = 0; k < t->n; k++)
		node_free(t->v[k]);
	free(t->v);
	free(t->hash);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

const struct inode *inode_get(struct inode_table *t, uint64_t ino)
{
	struct inode *n = NULL;

	pthread_mutex_lock(&t->lock);
	if (ino < t->n)
		n = t->v[ino];
	pthread_mutex_unlock(&t->lock);
	return n;
}

static bool same_str(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

int inode_child(struct inode_table *t, uint64_t parent, const char *comp,
		enum inode_kind kind, const char *name, const char *version,
		const char *relpath, const struct inode **out)
{
	struct inode *p, *n = NULL, *c;
	char path[INODE_PATH_MAX];
	bool oom = false;
	size_t h;
	int ret = 0, len;

	pthread_mutex_lock(&t->lock);
	p = parent < t->n ? t->v[parent] : NULL;
	if (!p) {
		ret = -ENOENT;
		goto out;
	}
	len = snprintf(path, sizeof(path), "%s%s%s", p->path,
		       p->path[0] ? "/" : "", comp);
	if (len < 0 || (size_t)len >= sizeof(path)) {
		ret = -ENAMETOOLONG;
		goto out;
	}
	h = hslot(t, path);
	for (c = t->hash[h]; c; c = c->hnext) {
		if (strcmp(c->path, path) != 0)
			continue;
		if (c->kind == kind && c->parent == parent &&
		    same_str(c->name, name) && same_str(c->version, version) &&
		    same_str(c->relpath, relpath)) {
			c->nlookup++;
			journal(t, c, 1);
			*out = c;
			goto out;
		}
		hash_unlink(t, c);
		c->hashed = false;
		break;
	}
	ret = grow(t);
	if (ret < 0)
		goto out;
	n = calloc(1, sizeof(*n));
	if (!n) {
		ret = -ENOMEM;
		goto out;
	}
	n->path = strdup(path);
	n->name = dup_or_null(name, &oom);
	n->version = dup_or_null(version, &oom);
	n->relpath = dup_or_null(relpath, &oom);
	if (!n->path || oom) {
		node_free(n);
		ret = -ENOMEM;
		goto out;
	}
	n->comp = strrchr(n->path, '/') ? strrchr(n->path, '/') + 1 : n->path;
	n->ino = t->n++;
	n->parent = parent;
	n->kind = kind;
	n->nlookup = 1;
	n->hashed = true;
	n->hnext = t->hash[h];
	t->hash[h] = n;
	t->v[n->ino] = n;
	t->live++;
	rehash(t);
	journal(t, n, 1);
	*out = n;
out:
	pthread_mutex_unlock(&t->lock);
	return ret;
}

void inode_forget(struct inode_table *t, uint64_t ino, uint64_t n)
{
	struct inode *node;

	pthread_mutex_lock(&t->lock);
	node = ino < t->n ? t->v[ino] : NULL;
	if (!node || ino == INODE_ROOT_INO)
		goto out;
	journal(t, node, -(int64_t)(n < node->nlookup ? n : node->nlookup));
	node->nlookup = node->nlookup > n ? node->nlookup - n : 0;
	if (node->nlookup > 0)
		goto out;
	if (node->hashed)
		hash_unlink(t, node);
	t->v[ino] = NULL;
	t->live--;
	node_free(node);
out:
	pthread_mutex_unlock(&t->lock);
}

uint64_t inode_count(struct inode_table *t)
{
	uint64_t n;

	pthread_mutex_lock(&t->lock);
	n = t->live;
	pthread_mutex_unlock(&t->lock);
	return n;
}

void inode_table_set_journal(struct inode_table *t,
			     void (*fn)(void *arg, const struct inode *n,
					int64_t delta),
			     void *arg)
{
	pthread_mutex_lock(&t->lock);
	t->journal = fn;
	t->journal_arg = arg;
	pthread_mutex_unlock(&t->lock);
}

int inode_restore(struct inode_table *t, const struct inode *proto,
		  uint64_t nlookup)
{
	struct inode *n = NULL, *c;
	bool oom = false;
	size_t h;
	int ret = 0;

	if (proto->ino == 0 || proto->ino > INODE_RESTORE_MAX || !proto->path ||
	    strlen(proto->path) >= INODE_PATH_MAX)
		return -EINVAL;
	if (proto->ino == INODE_ROOT_INO)
		return 0;
	pthread_mutex_lock(&t->lock);
	if (proto->ino < t->n && t->v[proto->ino]) {
		t->v[proto->ino]->nlookup += nlookup;
		goto out;
	}
	while (t->cap <= proto->ino) {
		uint64_t keep = t->n;

		t->n = t->cap; /* make grow() double the array */
		ret = grow(t);
		t->n = keep;
		if (ret < 0)
			goto out;
	}
	n = calloc(1, sizeof(*n));
	if (!n) {
		ret = -ENOMEM;
		goto out;
	}
	n->path = strdup(proto->path);
	n->name = dup_or_null(proto->name, &oom);
	n->version = dup_or_null(proto->version, &oom);
	n->relpath = dup_or_null(proto->relpath, &oom);
	if (!n->path || oom) {
		node_free(n);
		ret = -ENOMEM;
		goto out;
	}
	n->comp = strrchr(n->path, '/') ? strrchr(n->path, '/') + 1 : n->path;
	n->ino = proto->ino;
	n->parent = proto->parent;
	n->kind = proto->kind;
	n->nlookup = nlookup;
	h = hslot(t, n->path);
	for (c = t->hash[h]; c; c = c->hnext) {
		if (strcmp(c->path, n->path) == 0) {
			hash_unlink(t, c);
			c->hashed = false;
			break;
		}
	}
	n->hashed = true;
	n->hnext = t->hash[h];
	t->hash[h] = n;
	t->v[n->ino] = n;
	if (t->n <= n->ino)
		t->n = n->ino + 1;
	t->live++;
	rehash(t);
out:
	pthread_mutex_unlock(&t->lock);
	return ret;
}

int inode_foreach(struct inode_table *t,
		  int (*fn)(void *arg, const struct inode *n, uint64_t nlookup),
		  void *arg)
{
	uint64_t k;
	int ret = 0;

	pthread_mutex_lock(&t->lock);
	for (k = INODE_ROOT_INO + 1; k < t->n && ret >= 0; k++)
		if (t->v[k])
			ret = fn(arg, t->v[k], t->v[k]->nlookup);
	pthread_mutex_unlock(&t->lock);
	return ret < 0 ? ret : 0;
}

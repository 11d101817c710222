/*
 * catalog_map - the string map behind the catalog's three caches (levels,
 * version lists, metas): separate chaining, a power-of-two table that
 * doubles when it holds as many entries as buckets, xxh3 over the key
 * (xxHash is our hash for tables, DESIGN's dependencies).
 *
 * Kept by hand rather than taken from a library: our Debian dependencies
 * (see DESIGN) hold no hash table (glib is not one of them, and the
 * catalog's ~100 lines would not pay for it); hsearch(3) is one table per
 * process and cannot delete or iterate. Entries never move once made (the
 * table grows by relinking them), so a caller may hold a struct ment while
 * it holds the lock. Iteration (offline listings) walks the buckets.
 *
 * Threads: none of its own; every caller holds the catalog's lock.
 * Errors: NULL / -ENOMEM on out of memory (a failed grow is harmless: the
 * chains just get longer).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/digest.h"
#include "fs/catalog/catalog_int.h"

static uint64_t str_hash(const char *s)
{
	return digest_xxh3(s, strlen(s));
}

int cat_map_init(struct smap *m)
{
	m->size = 256;
	m->n = 0;
	m->b = calloc(m->size, sizeof(*m->b));
	return m->b ? 0 : -ENOMEM;
}

struct ment *cat_map_get(struct smap *m, const char *key)
{
	struct ment *e = m->b[str_hash(key) & (m->size - 1)];

	for (; e; e = e->next)
		if (strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

static void map_grow(struct smap *m)
{
	struct ment **nb;
	size_t nsize = m->size * 2, i;

	if (m->n < m->size)
		return;
	nb = calloc(nsize, sizeof(*nb));
	if (!nb)
		return;
	for (i = 0; i < m->size; i++) {
		struct ment *e = m->b[i], *next;

		for (; e; e = next) {
			size_t h = str_hash(e->key) & (nsize - 1);

			next = e->next;
			e->next = nb[h];
			nb[h] = e;
		}
	}
	free(m->b);
	m->b = nb;
	m->size = nsize;
}

struct ment *cat_map_put(struct smap *m, const char *key)
{
	struct ment *e = cat_map_get(m, key);
	size_t h;

	if (e)
		return e;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->key = strdup(key);
	if (!e->key) {
		free(e);
		return NULL;
	}
	h = str_hash(key) & (m->size - 1);
	e->next = m->b[h];
	m->b[h] = e;
	m->n++;
	map_grow(m);
	return e;
}

void cat_map_clear(struct smap *m, void (*unref)(void *))
{
	size_t i;

	for (i = 0; m->b && i < m->size; i++) {
		struct ment *e = m->b[i], *next;

		for (; e; e = next) {
			next = e->next;
			if (e->val)
				unref(e->val);
			free(e->key);
			free(e);
		}
	}
	free(m->b);
	m->b = NULL;
}

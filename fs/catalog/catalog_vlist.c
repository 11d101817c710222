/*
 * catalog_vlist - lookups in a version list snapshot and its aliases,
 * each in O(log n): a list may hold hundreds of thousands of versions (years
 * of nightly simple_date versions, or a hostile store), and every lookup,
 * readlink and listing entry of the asset dir goes through here.
 *
 * The list is sorted newest first (version_cmp()), so a version is found
 * by binary search, and the versions of one major are contiguous: the
 * aliases are built in one pass ("latest", then "N.latest" for each major,
 * newest major first) and "N.latest" is found by binary search on N.
 *
 * Threads: snapshots are immutable once published; pure functions.
 * Errors: 0 or a negative errno.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/catalog/catalog_int.h"

static int alias_push(struct cat_versions *v, size_t *cap, const char *name,
		      size_t idx)
{
	if (v->n_aliases == *cap) {
		size_t ncap = *cap ? *cap * 2 : 8;
		char **nn = realloc(v->alias_names, ncap * sizeof(*nn));
		char **nt;
		size_t *ni;

		if (!nn)
			return -ENOMEM;
		v->alias_names = nn;
		nt = realloc(v->alias_targets, ncap * sizeof(*nt));
		if (!nt)
			return -ENOMEM;
		v->alias_targets = nt;
		ni = realloc(v->alias_index, ncap * sizeof(*ni));
		if (!ni)
			return -ENOMEM;
		v->alias_index = ni;
		*cap = ncap;
	}
	v->alias_names[v->n_aliases] = strdup(name);
	if (!v->alias_names[v->n_aliases])
		return -ENOMEM;
	v->alias_targets[v->n_aliases] = v->list.v[idx];
	v->alias_index[v->n_aliases] = idx;
	v->n_aliases++;
	return 0;
}

int cat_versions_build_aliases(struct cat_versions *v)
{
	size_t i, cap = 0;
	char alias[32];
	int ret;

	if (v->list.n == 0)
		return 0;
	ret = alias_push(v, &cap, "latest", 0);
	if (ret < 0 || v->list.sys != VERSIONING_MAJOR_MINOR)
		return ret;
	for (i = 0; i < v->list.n; i++) {
		unsigned long major = version_major(v->list.v[i]);

		/* newest first: a major's first version is its newest */
		if (i > 0 && version_major(v->list.v[i - 1]) == major)
			continue;
		snprintf(alias, sizeof(alias), "%lu.latest", major);
		ret = alias_push(v, &cap, alias, i);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int cat_versions_find(const struct cat_versions *v, const char *version)
{
	size_t lo = 0, hi = v->list.n;

	if (!version_valid(v->list.sys, version))
		return -ENOENT;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = version_cmp(v->list.sys, v->list.v[mid], version);

		if (c == 0)
			return mid > INT32_MAX ? -EFBIG : (int)mid;
		if (c > 0) /* v[mid] is newer: look further down the list */
			lo = mid + 1;
		else
			hi = mid;
	}
	return -ENOENT;
}

bool cat_versions_has(const struct cat_versions *v, const char *version)
{
	return cat_versions_find(v, version) >= 0;
}

/* "N.latest" -> N (digits, no leading zero, below 2^31), else -1. */
static long alias_major(const char *alias)
{
	const char *p = alias;
	long n = 0;

	if (*p == '0' && p[1] != '.')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		n = n * 10 + (*p - '0');
		if (n > INT32_MAX)
			return -1;
	}
	if (p == alias || strcmp(p, ".latest") != 0)
		return -1;
	return n;
}

int cat_versions_alias_find(const struct cat_versions *v, const char *alias)
{
	size_t lo = 1, hi = v->n_aliases;
	long want;

	if (v->n_aliases && strcmp(alias, "latest") == 0)
		return 0;
	want = alias_major(alias);
	if (want < 0 || v->list.sys != VERSIONING_MAJOR_MINOR)
		return -ENOENT;
	/* aliases 1.. are by major, newest (largest) first */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		unsigned long m = version_major(v->alias_targets[mid]);

		if (m == (unsigned long)want)
			return mid > INT32_MAX ? -EFBIG : (int)mid;
		if (m > (unsigned long)want)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -ENOENT;
}

const char *cat_versions_alias(const struct cat_versions *v, const char *alias)
{
	int k = cat_versions_alias_find(v, alias);

	return k < 0 ? NULL : v->alias_targets[k];
}

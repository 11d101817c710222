/*
 * catalog_version - versions: a version's `.meta` (signature-checked with
 * a verify key), the sizes and ETags of its objects when it has no
 * manifest, and the node tree a folder version's files make. A version is
 * immutable: once built it is kept for the mount's life; a failure to
 * build it is remembered for one TTL.
 *
 * Hostile `.meta` contents (entries that clash, files missing from the
 * manifest or from the store) are skipped with one log line each.
 *
 * Threads: see catalog.h; c->lock is taken around map access only.
 * Errors: 0 or a negative errno.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "fs/catalog/catalog_int.h"

/* ---- object sizes and ETags ---- */

/*
 * Sizes and ETags of a folder version's files from a store that cannot
 * list (plain HTTP): one HEAD per entry of @m's contents, which modelkit
 * writes for every folder. A file the store does not have is left out
 * (build_nodes() skips it with its log line); any other failure ends it.
 */
static int objinfo_head_each(struct catalog *c, const char *prefix,
			     const struct meta *m, struct objinfo *oi)
{
	char key[STORE_KEY_MAX];
	struct prov_object ob;
	size_t i;
	int ret = 0;

	for (i = 0; ret == 0 && i < m->n_contents; i++) {
		if (snprintf(key, sizeof(key), "%s%s", prefix,
			     m->contents[i]) >= (int)sizeof(key))
			continue;
		memset(&ob, 0, sizeof(ob));
		ret = prov_head(store_prov(c->st), key, &ob);
		if (ret == 0)
			ret = cat_objinfo_add(oi, m->contents[i], ob.size,
					      ob.etag);
		else if (ret == -ENOENT)
			ret = 0;
		prov_object_free(&ob);
	}
	return ret;
}

/*
 * Sizes and ETags of a version without a manifest: HEAD of a file asset;
 * for a folder version, one listing of its prefix, or a HEAD of each of
 * @m's contents where the store cannot list.
 */
static int objinfo_fetch(struct catalog *c, const char *name,
			 const char *version, const struct meta *m,
			 struct objinfo *oi)
{
	bool is_dir = m->is_directory;
	char key[STORE_KEY_MAX], dkey[STORE_KEY_MAX + 32];
	struct prov_listing ls = {0};
	struct prov_object ob = {0};
	struct buf raw;
	size_t i, plen;
	int ret;

	buf_init(&raw, CAT_DOC_MAX);
	ret = store_key_file(name, version, NULL, key, sizeof(key));
	if (ret < 0)
		goto out;
	snprintf(dkey, sizeof(dkey), "%s%s", CAT_OBJ_INFO, key);
	ret = cat_store_call(c);
	if (ret == 0 && !is_dir) {
		ret = prov_head(store_prov(c->st), key, &ob);
		if (ret == 0)
			ret = cat_objinfo_add(oi, "", ob.size, ob.etag);
	} else if (ret == 0) {
		strcat(key, "/");
		plen = strlen(key);
		if (!prov_can_list(store_prov(c->st)))
			ret = objinfo_head_each(c, key, m, oi);
		else
			ret = prov_list(store_prov(c->st), key, false, &ls);
		for (i = 0; ret == 0 && i < ls.n_objects; i++) {
			if (strncmp(ls.objects[i].key, key, plen) != 0)
				continue;
			ret = cat_objinfo_add(oi, ls.objects[i].key + plen,
					      ls.objects[i].size,
					      ls.objects[i].etag);
		}
	}
	if (ret == 0) {
		if (cat_objinfo_to_json(oi, &raw) == 0)
			cat_doc_put(c, dkey, raw.data, raw.len, NULL);
	} else if (cat_store_down(ret)) {
		cat_note_failure(c, ret, key, prov_last_error());
		cat_objinfo_clear(oi);
		if (cat_doc_get(c, dkey, &raw) == 0 &&
		    cat_objinfo_from_json(raw.data, raw.len, oi) == 0)
			ret = 0;
	}
out:
	prov_object_free(&ob);
	prov_listing_free(&ls);
	buf_free(&raw);
	return ret;
}

static int node_add(struct cat_version *v, size_t *cap, const char *relpath,
		    bool is_dir, uint32_t parent)
{
	struct cat_node *n;
	uint32_t idx = (uint32_t)v->n_nodes;

	if (v->n_nodes >= UINT32_MAX - 1)
		return -EFBIG;
	if (v->n_nodes == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;

		n = realloc(v->nodes, ncap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		v->nodes = n;
		*cap = ncap;
	}
	n = &v->nodes[idx];
	memset(n, 0, sizeof(*n));
	n->relpath = strdup(relpath);
	if (!n->relpath)
		return -ENOMEM;
	n->comp = cat_last_comp(n->relpath);
	n->is_dir = is_dir;
	n->parent = parent;
	v->n_nodes++;
	if (idx == 0)
		return 0;
	/* append to the parent's children, keeping the contents' order */
	if (!v->nodes[parent].first_child)
		v->nodes[parent].first_child = idx;
	else
		v->nodes[v->nodes[parent].last_child].next_sibling = idx;
	v->nodes[parent].last_child = idx;
	return (int)idx;
}

static int by_path_cmp(const void *a, const void *b, void *arg)
{
	const struct cat_node *nodes = arg;

	return strcmp(nodes[*(const uint32_t *)a].relpath,
		      nodes[*(const uint32_t *)b].relpath);
}

/*
 * Index the nodes by path for cat_version_find(). A path that names two
 * nodes (a file and a dir: a .meta that contradicts itself) is -EINVAL.
 */
static int index_nodes(struct cat_version *v)
{
	size_t i;

	v->by_path = malloc(v->n_nodes * sizeof(*v->by_path));
	if (!v->by_path)
		return -ENOMEM;
	for (i = 0; i < v->n_nodes; i++)
		v->by_path[i] = (uint32_t)i;
	qsort_r(v->by_path, v->n_nodes, sizeof(*v->by_path), by_path_cmp,
		v->nodes);
	for (i = 1; i < v->n_nodes; i++) {
		if (strcmp(v->nodes[v->by_path[i - 1]].relpath,
			   v->nodes[v->by_path[i]].relpath) == 0) {
			log_warn("%s:%s: '%s' is both a file and a directory",
				 v->name, v->version,
				 v->nodes[v->by_path[i]].relpath);
			return -EINVAL;
		}
	}
	return 0;
}

struct find_key {
	const struct cat_node *nodes;
	const char *relpath;
};

static int find_cmp(const void *key, const void *elem)
{
	const struct find_key *k = key;

	return strcmp(k->relpath, k->nodes[*(const uint32_t *)elem].relpath);
}

int cat_version_find(const struct cat_version *v, const char *relpath)
{
	struct find_key k = { .nodes = v->nodes, .relpath = relpath };
	const uint32_t *hit;

	if (!*relpath)
		return 0;
	if (!v->by_path)
		return -ENOENT;
	hit = bsearch(&k, v->by_path, v->n_nodes, sizeof(*v->by_path),
		      find_cmp);
	return hit ? (int)*hit : -ENOENT;
}

/*
 * Add a file of a folder version with its parent dirs. The contents come
 * sorted (meta_parse()), so the files below one dir are contiguous and a
 * dir met again is its parent's last child: building is linear in the
 * paths' lengths, not quadratic in a dir's size. A name met twice is
 * caught by index_nodes().
 */
static int add_file(struct cat_version *v, size_t *cap, const char *path)
{
	char sub[SPEC_PATH_MAX + 1];
	uint32_t cur = 0;
	const char *p = path;
	int k;

	while (1) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		uint32_t last = v->nodes[cur].last_child;

		k = -ENOENT;
		if (last && strlen(v->nodes[last].comp) == len &&
		    memcmp(v->nodes[last].comp, p, len) == 0)
			k = (int)last;
		if (!slash) {
			if (k >= 0)
				return -EEXIST;
			return node_add(v, cap, path, false, cur);
		}
		if (k >= 0 && !v->nodes[k].is_dir)
			return -EEXIST;
		if (k < 0) {
			if ((size_t)(slash - path) > SPEC_PATH_MAX)
				return -ENAMETOOLONG;
			snprintf(sub, sizeof(sub), "%.*s", (int)(slash - path),
				 path);
			k = node_add(v, cap, sub, true, cur);
			if (k < 0)
				return k;
		}
		cur = (uint32_t)k;
		p = slash + 1;
	}
}

static int build_nodes(struct catalog *c, struct cat_version *v)
{
	const struct manifest *mf = v->meta.manifest;
	const char *skip_first = NULL, *skip_why = NULL;
	struct objinfo oi = {0};
	size_t cap = 0, i, skipped = 0;
	int ret, k;

	v->block_size = mf ? mf->block_size : CAT_TOFU_BLOCK_SIZE;
	if (!mf) {
		ret = objinfo_fetch(c, v->name, v->version, &v->meta, &oi);
		if (ret < 0) {
			log_warn("%s:%s: cannot read object sizes: %s", v->name,
				 v->version,
				 *prov_last_error() ? prov_last_error()
						    : strerror(-ret));
			goto out;
		}
	}
	ret = node_add(v, &cap, "", v->meta.is_directory, 0);
	if (ret < 0)
		goto out;
	if (!v->meta.is_directory) {
		if (mf) {
			v->nodes[0].mf = manifest_find(mf, "");
			if (!v->nodes[0].mf) {
				log_warn("%s:%s: manifest has no entry for "
					 "the file",
					 v->name, v->version);
				ret = -EINVAL;
				goto out;
			}
			v->nodes[0].size = v->nodes[0].mf->size;
		} else {
			k = cat_objinfo_find(&oi, "");
			if (k < 0) {
				ret = -ENOENT;
				goto out;
			}
			v->nodes[0].size = oi.sizes[k];
			v->nodes[0].etag = strdup(oi.etags[k]);
			if (!v->nodes[0].etag) {
				ret = -ENOMEM;
				goto out;
			}
		}
		ret = 0;
		goto out;
	}
	for (i = 0; i < v->meta.n_contents; i++) {
		const char *path = v->meta.contents[i];
		const struct manifest_file *f = NULL;
		const char *why = NULL;
		int oik = -1;

		if (mf) {
			f = manifest_find(mf, path);
			why = f ? NULL : "not in the manifest";
		} else {
			oik = cat_objinfo_find(&oi, path);
			why = oik >= 0 ? NULL : "no object in the store";
		}
		k = why ? -EEXIST : add_file(v, &cap, path);
		if (k == -EEXIST) {
			/* one line per version, not one per entry */
			if (!skipped++)
				skip_first = path;
			if (!why)
				why = "clashes with another entry";
			if (skipped == 1)
				skip_why = why;
			continue;
		}
		if (k < 0) {
			ret = k;
			goto out;
		}
		if (f) {
			v->nodes[k].mf = f;
			v->nodes[k].size = f->size;
		} else {
			v->nodes[k].size = oi.sizes[oik];
			v->nodes[k].etag = strdup(oi.etags[oik]);
			if (!v->nodes[k].etag) {
				ret = -ENOMEM;
				goto out;
			}
		}
	}
	if (skipped)
		log_warn("%s:%s: %zu of %zu entries of contents skipped "
			 "(the first, '%s': %s)",
			 v->name, v->version, skipped, v->meta.n_contents,
			 skip_first, skip_why);
	ret = 0;
out:
	if (ret == 0)
		ret = index_nodes(v);
	cat_objinfo_clear(&oi);
	return ret;
}

/* ---- versions ---- */

static struct cat_version *version_ref(struct cat_version *v)
{
	atomic_fetch_add(&v->refs, 1);
	return v;
}

int catalog_version(struct catalog *c, const char *name, const char *version,
		    struct cat_version **out)
{
	char mkey[STORE_KEY_MAX + SPEC_VERSION_MAX + 2];
	char key[STORE_KEY_MAX];
	char err[STORE_ERR_MAX] = "";
	struct cat_version *v = NULL;
	struct ment *e;
	struct buf raw;
	char *etag = NULL;
	int ret;

	buf_init(&raw, META_MAX_BYTES);
	if (spec_check_name(name, NULL, 0) < 0 || !*version ||
	    strlen(version) > SPEC_VERSION_MAX || strchr(version, '/'))
		return -ENOENT;
	snprintf(mkey, sizeof(mkey), "%s\n%s", name, version);
	ret = store_key_meta(name, version, key, sizeof(key));
	if (ret < 0)
		return -ENOENT;
	pthread_mutex_lock(&c->lock);
	e = cat_map_get(&c->metas, mkey);
	if (e && (e->val || time_mono_ms() - e->at_ms < c->ttl_ms)) {
		ret = e->val ? 0 : e->err;
		if (e->val)
			*out = version_ref(e->val);
		pthread_mutex_unlock(&c->lock);
		return ret;
	}
	pthread_mutex_unlock(&c->lock);

	v = calloc(1, sizeof(*v));
	if (!v) {
		ret = -ENOMEM;
		goto out;
	}
	atomic_init(&v->refs, 1);
	v->name = strdup(name);
	v->version = strdup(version);
	if (!v->name || !v->version) {
		ret = -ENOMEM;
		goto out;
	}
	ret = cat_store_call(c);
	if (ret == 0) {
		ret = store_get_meta(c->st, name, version, &v->meta, &raw,
				     &etag, err, sizeof(err));
		if (ret < 0)
			cat_note_failure(c, ret, key, err);
	}
	if (ret == 0 && c->verify) {
		ret = cat_keep_signed(c, name, version, key, &raw, etag, err,
				      sizeof(err));
	} else if (ret == 0) {
		cat_doc_put(c, key, raw.data, raw.len, etag);
	} else if (cat_store_down(ret)) {
		char perr[SPEC_ERR_MAX];
		int r = -ENOENT;

		buf_reset(&raw);
		if (cat_doc_get(c, key, &raw) == 0)
			r = c->verify
				? cat_cached_sig_ok(c, name, version, &raw, err,
						    sizeof(err))
				: 0;
		if (r == -EBADMSG)
			ret = r; /* never the unverified copy */
		else if (r == 0 && meta_parse(raw.data, raw.len, &v->meta, perr,
					      sizeof(perr)) == 0)
			ret = 0;
	} else if (ret != -EBADMSG) {
		log_warn("skipping version %s:%s: %s", name, version,
			 *err ? err : strerror(-ret));
	}
	if (ret == -EBADMSG) /* remembered below: once per TTL */
		log_warn("%s: version refused (EACCES)",
			 *err ? err : strerror(-ret));
	if (ret == 0)
		ret = build_nodes(c, v);
	if (ret < 0 && cat_store_down(ret))
		goto out;
	pthread_mutex_lock(&c->lock);
	e = cat_map_put(&c->metas, mkey);
	if (e && !e->val) {
		e->val = ret == 0 ? version_ref(v) : NULL;
		e->err = ret;
		e->at_ms = time_mono_ms();
	} else if (e && ret == 0) {
		/* another thread won: use its copy */
		cat_version_unref(v);
		v = version_ref(e->val);
	}
	pthread_mutex_unlock(&c->lock);
	if (ret == 0) {
		*out = v;
		v = NULL;
	}
out:
	cat_version_unref(v);
	free(etag);
	buf_free(&raw);
	return ret;
}

int catalog_version_peek(struct catalog *c, const char *name,
			 const char *version, struct cat_version **out)
{
	char mkey[SPEC_NAME_MAX + SPEC_VERSION_MAX + 2];
	struct ment *e;
	int ret = -EAGAIN;

	if (snprintf(mkey, sizeof(mkey), "%s\n%s", name, version) >=
	    (int)sizeof(mkey))
		return -ENOENT;
	pthread_mutex_lock(&c->lock);
	e = cat_map_get(&c->metas, mkey);
	if (e && e->val) {
		*out = version_ref(e->val);
		ret = 0;
	} else if (e && time_mono_ms() - e->at_ms < c->ttl_ms) {
		ret = e->err;
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}

struct vprefetch_ctx {
	struct catalog *c;
	const char *name;
	const struct cat_versions *v;
	size_t *todo; /* indexes into v->list of versions not yet known */
};

static void vprefetch_one(void *arg, size_t i)
{
	struct vprefetch_ctx *p = arg;
	struct cat_version *cv = NULL;

	if (catalog_version(p->c, p->name, p->v->list.v[p->todo[i]], &cv) == 0)
		cat_version_unref(cv);
}

/* Queue version @i of @v in @p unless known or queued; false when full. */
static bool vprefetch_add(struct vprefetch_ctx *p, size_t i, size_t *n)
{
	char mkey[SPEC_NAME_MAX + SPEC_VERSION_MAX + 2];
	size_t k;

	if (*n == CATALOG_LIST_AHEAD)
		return false;
	snprintf(mkey, sizeof(mkey), "%s\n%s", p->name, p->v->list.v[i]);
	if (cat_map_get(&p->c->metas, mkey))
		return true;
	for (k = 0; k < *n; k++) /* a few aliases' targets at most */
		if (p->todo[k] == i)
			return true;
	p->todo[(*n)++] = i;
	return true;
}

int catalog_prefetch_versions(struct catalog *c, const char *name,
			      const struct cat_versions *v)
{
	struct vprefetch_ctx p = {.c = c, .name = name, .v = v};
	size_t i, n = 0, n_alias;

	if (!v->list.n)
		return 0;
	p.todo = calloc(CATALOG_LIST_AHEAD, sizeof(*p.todo));
	if (!p.todo)
		return -ENOMEM;
	/* the aliases' targets (a few), then the newest versions */
	n_alias = v->n_aliases < CATALOG_LIST_AHEAD / 4 ?
			  v->n_aliases :
			  CATALOG_LIST_AHEAD / 4;
	pthread_mutex_lock(&c->lock);
	for (i = 0; i < n_alias; i++)
		vprefetch_add(&p, v->alias_index[i], &n);
	for (i = 0; i < v->list.n && vprefetch_add(&p, i, &n); i++)
		;
	pthread_mutex_unlock(&c->lock);
	if (n)
		cat_par_for(c->parallel, n, vprefetch_one, &p);
	free(p.todo);
	return 0;
}

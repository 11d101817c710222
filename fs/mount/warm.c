/*
 * warm - see warm.h. A version's blocks are laid out as one list of
 * (file, block) jobs; worker threads take the next job under w->lock and
 * make the block present with fetcher_block() (which locks, re-checks,
 * fetches by range and commits against the manifest digest), while the
 * calling thread reports progress. A block found present before the
 * fetch counts as present, any other as fetched.
 *
 * Locks: w->lock guards the job cursor, the counters and the first error;
 * it is never held across I/O.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/timeutil.h"
#include "fs/cache/cache.h"
#include "fs/catalog/store.h"
#include "fs/mount/warm.h"

#define WARM_MAX_THREADS 32

struct wfile {
	char key[STORE_KEY_MAX];
	struct fetch_obj o;
	uint64_t first; /* index of its first job */
};

struct warm {
	struct fetcher *fe;
	struct cache *cache;
	const char *url;
	struct wfile *files;
	size_t n_files;
	uint64_t n_jobs;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t next;		     /* protected by lock: next job */
	uint64_t finished;	     /* protected by lock */
	uint64_t done_bytes;	     /* protected by lock */
	uint64_t fetched;	     /* protected by lock */
	uint64_t present;	     /* protected by lock */
	int running;		     /* protected by lock: live workers */
	int err;		     /* protected by lock: first failure */
	char why[WARM_ERR_MAX];	     /* protected by lock */
	struct warm_blocks *learned; /* protected by lock */
};

void warm_blocks_clear(struct warm_blocks *b)
{
	if (!b)
		return;
	free(b->d);
	free(b->size);
	memset(b, 0, sizeof(*b));
}

static int blocks_push(struct warm_blocks *b, const struct digest *d,
		       uint64_t size)
{
	struct digest *nd;
	uint64_t *ns;

	nd = realloc(b->d, (b->n + 1) * sizeof(*nd));
	if (!nd)
		return -ENOMEM;
	b->d = nd;
	ns = realloc(b->size, (b->n + 1) * sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	b->size = ns;
	b->d[b->n] = *d;
	b->size[b->n++] = size;
	return 0;
}

static uint64_t block_len(const struct cat_node *cn, uint32_t bs, uint64_t i)
{
	uint64_t off = i * (uint64_t)bs;

	return cn->size - off < bs ? cn->size - off : bs;
}

int warm_list_blocks(const struct cat_version *v, struct warm_blocks *out)
{
	size_t k;
	uint64_t i, nb;
	int ret;

	memset(out, 0, sizeof(*out));
	for (k = 0; k < v->n_nodes; k++) {
		const struct cat_node *cn = &v->nodes[k];

		if (cn->is_dir)
			continue;
		nb = manifest_block_count(cn->size, v->block_size);
		for (i = 0; i < nb; i++) {
			uint64_t len = block_len(cn, v->block_size, i);

			out->total += len;
			if (!cn->mf || i >= cn->mf->n_blocks) {
				out->pending += len;
				continue;
			}
			ret = blocks_push(out, &cn->mf->blocks[i], len);
			if (ret < 0) {
				warm_blocks_clear(out);
				return ret;
			}
		}
	}
	return 0;
}

/* The cache's digest for job @i's block, if known. */
static bool job_digest(struct warm *w, const struct wfile *f, uint64_t i,
		       struct digest *d)
{
	struct cache_objkey k;

	if (f->o.mf) {
		if (i >= f->o.mf->n_blocks)
			return false;
		*d = f->o.mf->blocks[i];
		return true;
	}
	k.store = w->url;
	k.key = f->o.key;
	k.etag = f->o.etag ? f->o.etag : "";
	k.block_size = f->o.block_size;
	k.index = i;
	return cache_objblock_get(w->cache, &k, d) == 0;
}

/* The file whose jobs contain @job (files are in job order). */
static const struct wfile *job_file(const struct warm *w, uint64_t job)
{
	size_t lo = 0, hi = w->n_files;

	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;

		if (w->files[mid].first <= job)
			lo = mid;
		else
			hi = mid;
	}
	return &w->files[lo];
}

static void run_job(struct warm *w, uint64_t job)
{
	const struct wfile *f = job_file(w, job);
	uint64_t i = job - f->first, len = 0;
	struct digest d;
	bool was = false;
	int fd = -1, ret;

	if (job_digest(w, f, i, &d))
		was = cache_block_stat(w->cache, &d, NULL) == 0;
	ret = fetcher_block(w->fe, &f->o, i, &fd, &len);
	if (fd >= 0)
		close(fd);
	if (ret == 0 && !f->o.mf && job_digest(w, f, i, &d)) {
		pthread_mutex_lock(&w->lock);
		if (blocks_push(w->learned, &d, len) < 0 && !w->err)
			w->err = -ENOMEM;
		pthread_mutex_unlock(&w->lock);
	}
	pthread_mutex_lock(&w->lock);
	if (ret < 0 && !w->err) {
		w->err = ret;
		/* a long key is cut: the message stays one line */
		if (snprintf(w->why, sizeof(w->why),
			     "%s/%s: block %llu could not be fetched and "
			     "verified (see the log)",
			     w->url, f->key, (unsigned long long)i) < 0)
			w->why[0] = '\0';
	}
	if (ret == 0) {
		w->done_bytes += len;
		if (was)
			w->present += len;
		else
			w->fetched += len;
	}
	w->finished++;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

static void *worker(void *arg)
{
	struct warm *w = arg;
	uint64_t job;

	for (;;) {
		pthread_mutex_lock(&w->lock);
		if (w->next >= w->n_jobs) {
			w->running--;
			pthread_cond_signal(&w->cond);
			pthread_mutex_unlock(&w->lock);
			return NULL;
		}
		job = w->next++;
		pthread_mutex_unlock(&w->lock);
		run_job(w, job);
	}
}

/* Lay out the files of @v as jobs. Returns 0 or -errno. */
static int plan(struct warm *w, const struct cat_version *v)
{
	size_t k;

	w->files = calloc(v->n_nodes ? v->n_nodes : 1, sizeof(*w->files));
	if (!w->files)
		return -ENOMEM;
	for (k = 0; k < v->n_nodes; k++) {
		const struct cat_node *cn = &v->nodes[k];
		struct wfile *f = &w->files[w->n_files];

		if (cn->is_dir)
			continue;
		if (store_key_file(v->name, v->version,
				   *cn->relpath ? cn->relpath : NULL, f->key,
				   sizeof(f->key)) < 0)
			return -ENAMETOOLONG;
		f->o.key = f->key;
		f->o.size = cn->size;
		f->o.block_size = v->block_size;
		f->o.mf = cn->mf;
		f->o.etag = cn->etag;
		f->first = w->n_jobs;
		w->n_jobs += fetcher_block_count(&f->o);
		w->n_files++;
	}
	return 0;
}

int warm_version(struct fetcher *fe, struct cache *cache, const char *url,
		 const struct cat_version *v, int threads,
		 warm_progress_fn progress, void *arg, struct warm_result *r,
		 char *err, size_t errlen)
{
	pthread_t tid[WARM_MAX_THREADS];
	struct warm w = {.fe = fe, .cache = cache, .url = url};
	struct warm_blocks all = {0};
	int64_t t0 = time_mono_ms();
	int i, n = 0, ret;

	memset(r, 0, sizeof(*r));
	*err = '\0';
	w.learned = &r->learned;
	pthread_mutex_init(&w.lock, NULL);
	pthread_cond_init(&w.cond, NULL);
	ret = warm_list_blocks(v, &all);
	if (ret == 0)
		ret = plan(&w, v);
	if (ret < 0) {
		snprintf(err, errlen, "%s:%s: %s", v->name, v->version,
			 strerror(-ret));
		goto out;
	}
	r->bytes_total = all.total;
	r->blocks = w.n_jobs;
	if (threads <= 0)
		threads = 8;
	if (threads > WARM_MAX_THREADS)
		threads = WARM_MAX_THREADS;
	if ((uint64_t)threads > w.n_jobs)
		threads = (int)w.n_jobs;
	pthread_mutex_lock(&w.lock);
	for (i = 0; i < threads; i++) {
		if (pthread_create(&tid[n], NULL, worker, &w) != 0)
			break;
		n++;
		w.running++;
	}
	pthread_mutex_unlock(&w.lock);
	if (n == 0 && w.n_jobs) /* no thread: work here */
		worker(&w);
	pthread_mutex_lock(&w.lock);
	while (w.running > 0) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&w.cond, &w.lock, &ts);
		if (progress) {
			uint64_t done = w.done_bytes;
			int stop;

			pthread_mutex_unlock(&w.lock);
			stop = progress(arg, done, all.total);
			pthread_mutex_lock(&w.lock);
			if (stop && w.next < w.n_jobs) {
				w.next = w.n_jobs; /* no new block begins */
				w.err = -ECANCELED;
				snprintf(w.why, sizeof(w.why),
					 "%s:%s: warm stopped", v->name,
					 v->version);
			}
		}
	}
	pthread_mutex_unlock(&w.lock);
	for (i = 0; i < n; i++)
		pthread_join(tid[i], NULL);
	if (progress)
		progress(arg, w.done_bytes, all.total);
	r->bytes_fetched = w.fetched;
	r->bytes_present = w.present;
	ret = w.err;
	if (ret < 0)
		snprintf(err, errlen, "%s", w.why);
out:
	r->ms = time_mono_ms() - t0;
	warm_blocks_clear(&all);
	free(w.files);
	pthread_cond_destroy(&w.cond);
	pthread_mutex_destroy(&w.lock);
	return ret;
}

int warm_check_version(struct cache *cache, const char *url,
		       const struct cat_version *v, uint64_t *present,
		       uint64_t *total, char *why, size_t whylen)
{
	struct warm w = {.cache = cache, .url = url};
	struct digest d;
	uint64_t job, i, len;
	bool first = true;
	int ret;

	*present = *total = 0;
	*why = '\0';
	ret = plan(&w, v);
	for (job = 0; ret == 0 && job < w.n_jobs; job++) {
		const struct wfile *f = job_file(&w, job);

		i = job - f->first;
		len = f->o.size - i * (uint64_t)f->o.block_size;
		if (len > f->o.block_size)
			len = f->o.block_size;
		*total += len;
		if (!job_digest(&w, f, i, &d)) {
			ret = 0;
			if (first)
				snprintf(why, whylen,
					 "%s block %llu: not fetched yet",
					 f->key, (unsigned long long)i);
			first = false;
			continue;
		}
		ret = cache_block_verify(cache, &d, NULL);
		if (ret == 0) {
			*present += len;
			continue;
		}
		if (first)
			snprintf(why, whylen, "%s block %llu: %s", f->key,
				 (unsigned long long)i,
				 ret == -ENOENT ? "missing"
				 : ret == -EIO	? "corrupt (removed)"
						: strerror(-ret));
		first = false;
		if (ret == -ENOENT || ret == -EIO)
			ret = 0;
	}
	free(w.files);
	return ret;
}

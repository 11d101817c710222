/*
 * rt_python - the sklearn and python runtimes: each loaded model version
 * is a pool of Python processes (replicas=, default 1) running
 * server/python/assetfs_model_worker.py under the version's environment
 * (pyenv.h), never the server's own threads.
 *
 * Batching without a batching thread: a request joins the pool's queue;
 * whichever waiting thread finds the queue non-empty and a replica idle
 * claims the replica and becomes the leader of one batch: it takes
 * requests from the head (same width, up to max_batch_size rows), sends
 * them as one frame, splits the answer back and wakes their threads. A
 * lone request on an idle pool is thus sent at once by its own thread.
 * While other replicas are busy (the model is under load) a leader waits
 * up to max_batch_wait_us after the first queued request for the batch to
 * fill before it sends.
 *
 * Failures stay in the pool. A process that dies (EOF) fails nothing at
 * first: each request of its batch is retried once, alone, on a fresh
 * process; a request whose retry dies too gets -EAGAIN (503). A batch
 * that passes timeout= gets -EAGAIN and its process is killed (no retry:
 * a hang retried is a hang twice). A process out of memory (max_memory=,
 * RLIMIT_AS) says so and exits: -EAGAIN. Dead processes are restarted by
 * the next batch, after a backoff that doubles per consecutive failure
 * (100 ms to 30 s) and resets on a success; during the backoff the
 * replica's batches fail at once with -EAGAIN. A model error (an
 * exception) fails its requests with -EIO, or -EINVAL when the model
 * said the input was wrong; a batch that fails so is re-run request by
 * request, so one bad request does not fail its neighbours.
 *
 * Lock order: pool->lock is a leaf, never held across I/O. A replica is
 * used only by the thread that claimed it (r->busy under pool->lock).
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "server/metrics.h"
#include "server/pyenv.h"
#include "server/pyproc.h"
#include "server/runtime.h"
#include "server/rt_python.h"
#include "server/tensor.h"

#define PYRT_MAX_REQS 128 /* requests in one batch (iovecs) */
#define PYRT_BACKOFF_MIN_MS 100
#define PYRT_BACKOFF_MAX_MS 30000

struct pyreq {
	struct pyreq *next;  /* queue, then batch; protected by pool->lock */
	const double *x;
	size_t rows, cols;
	double *out;
	int ret;
	char *err;
	size_t errlen;
	bool done; /* protected by pool->lock */
	int64_t t_enq_ns;
};

struct replica {
	struct pyproc proc; /* used only by the thread that claimed it */
	bool busy;	    /* protected by pool->lock */
	unsigned fails;	    /* consecutive deaths; the claimer's */
	int64_t next_start_ms; /* the claimer's; claim() reads it as a hint */
	struct buf rx;
};

struct pypool {
	char *model, *python, *script, *load_json;
	struct metrics *met;
	struct pyrt_conf c;
	struct runtime_info info;
	bool has_metrics;
	pthread_mutex_t lock;
	pthread_cond_t cond;	    /* a batch ended or a replica was freed */
	pthread_cond_t fill;	    /* a request was queued (CLOCK_MONOTONIC) */
	struct pyreq *head, *tail; /* protected by lock */
	unsigned busy;		    /* protected by lock */
	unsigned n;
	struct replica r[];
};

static void fail_req(struct pyreq *q, int ret, const char *msg)
{
	q->ret = ret;
	snprintf(q->err, q->errlen, "%s", msg);
}

/* Start @r's process and load the model in it (the pool's first load
 * checks nothing; a restart must describe the same model). */
static int start(struct pypool *p, struct replica *r, bool first,
		 struct pyhello *hello, char *err, size_t errlen)
{
	struct pyframe_hdr h = {.type = PYF_LOAD};
	struct iovec iov = {.iov_base = p->load_json,
			    .iov_len = strlen(p->load_json)};
	int64_t deadline = time_mono_ms() + p->c.load_timeout_ms;
	char e[ERR_MAX], how[96];
	int ret;

	ret = pyproc_spawn(&r->proc, p->python, p->script, p->c.max_memory,
			   err, errlen);
	if (ret < 0)
		return ret;
	ret = pyproc_send(&r->proc, &h, &iov, 1, deadline, e, sizeof(e));
	if (ret == 0)
		ret = pyproc_recv(&r->proc, &h, &r->rx, 0, deadline, e,
				  sizeof(e));
	if (ret == 0 && h.type == PYF_ERROR) {
		snprintf(err, errlen, "%s", r->rx.data ? r->rx.data : "?");
		ret = -EINVAL;
	} else if (ret == 0 && h.type != PYF_HELLO) {
		snprintf(err, errlen, "model process answered %u to a load",
			 h.type);
		ret = -EPROTO;
	} else if (ret == 0) {
		ret = pyhello_parse(r->rx.data, r->rx.len, hello, err, errlen);
	} else if (ret == -EPIPE) {
		pyproc_stop(&r->proc, 1000);
		snprintf(err, errlen, "the model process %s while loading",
			 pyproc_describe(r->proc.status, how, sizeof(how)));
	} else if (ret == -ETIMEDOUT) {
		snprintf(err, errlen, "the model did not load within %lld s",
			 (long long)(p->c.load_timeout_ms / 1000));
	} else {
		snprintf(err, errlen, "%s", e);
	}
	if (ret == 0 && !first &&
	    (hello->n_outputs != p->info.n_outputs ||
	     hello->n_features != p->info.n_features)) {
		snprintf(err, errlen,
			 "a restarted model process describes another model "
			 "(%u outputs, was %u)",
			 hello->n_outputs, p->info.n_outputs);
		ret = -EPROTO;
	}
	if (ret < 0)
		pyproc_stop(&r->proc, 0);
	return ret;
}

/* @r's process died or was killed: count it and back off. */
static void died(struct pypool *p, struct replica *r)
{
	int64_t ms = PYRT_BACKOFF_MIN_MS;
	unsigned i;

	for (i = 1; i < r->fails && ms < PYRT_BACKOFF_MAX_MS; i++)
		ms *= 2;
	if (ms > PYRT_BACKOFF_MAX_MS)
		ms = PYRT_BACKOFF_MAX_MS;
	r->fails++;
	r->next_start_ms = time_mono_ms() + ms;
	metrics_model_process_restart(p->met, p->model);
}

/*
 * One round trip of @n requests on @r. @retry: start a dead process even
 * within its backoff. Returns 0 (every request answered), or the error
 * of the whole call with @err set: -EPIPE (the process died: retry),
 * -EAGAIN (timeout, out of memory, cannot start: 503), -EIO / -EINVAL
 * (the model raised).
 */
static int call(struct pypool *p, struct replica *r, struct pyreq **reqs,
		size_t n, bool retry, char *err, size_t errlen)
{
	struct iovec iov[PYRT_MAX_REQS];
	struct pyframe_hdr h = {.type = PYF_PREDICT};
	struct pyhello hello;
	size_t rows = 0, i, k = p->info.n_outputs, off = 0;
	int64_t deadline = 0, now = time_mono_ms();
	char e[ERR_MAX], how[96];
	int ret;

	if (!r->proc.pid) {
		if (!retry && now < r->next_start_ms) {
			snprintf(err, errlen,
				 "model '%s': its process failed and restarts "
				 "in %lld ms",
				 p->model, (long long)(r->next_start_ms - now));
			return -EAGAIN;
		}
		ret = start(p, r, false, &hello, e, sizeof(e));
		if (ret < 0) {
			died(p, r);
			snprintf(err, errlen,
				 "model '%s': cannot restart its process: %.400s",
				 p->model, e);
			return -EAGAIN;
		}
		log_info("model %s: process %d started", p->model,
			 (int)r->proc.pid);
	}
	for (i = 0; i < n; i++) {
		iov[i].iov_base = (void *)reqs[i]->x;
		iov[i].iov_len = reqs[i]->rows * reqs[i]->cols * sizeof(double);
		rows += reqs[i]->rows;
	}
	h.rows = (uint32_t)rows;
	h.cols = (uint32_t)reqs[0]->cols;
	if (p->c.timeout_ms)
		deadline = time_mono_ms() + p->c.timeout_ms;
	ret = pyproc_send(&r->proc, &h, iov, (int)n, deadline, e, sizeof(e));
	if (ret == 0)
		ret = pyproc_recv(&r->proc, &h, &r->rx,
				  (uint64_t)rows * k * sizeof(double), deadline,
				  e, sizeof(e));
	if (ret == 0 && h.type == PYF_RESULT && h.rows == rows && h.cols == k) {
		for (i = 0; i < n; i++) {
			memcpy(reqs[i]->out, r->rx.data + off,
			       reqs[i]->rows * k * sizeof(double));
			off += reqs[i]->rows * k * sizeof(double);
		}
		r->fails = 0;
		return 0;
	}
	if (ret == 0 && h.type == PYF_ERROR) {
		const char *msg = r->rx.data ? r->rx.data : "?";

		if (h.rows == PYERR_MEMORY) {
			pyproc_stop(&r->proc, 1000);
			died(p, r);
			snprintf(err, errlen,
				 "model '%s' ran out of memory (max_memory=%llu "
				 "MiB): %s; its process restarts",
				 p->model,
				 (unsigned long long)(p->c.max_memory >> 20),
				 msg);
			return -EAGAIN;
		}
		snprintf(err, errlen, "%s", msg);
		return h.rows == PYERR_INPUT ? -EINVAL : -EIO;
	}
	if (ret == 0) {
		snprintf(e, sizeof(e),
			 "model process answered type %u, %ux%u for %zux%zu",
			 h.type, h.rows, h.cols, rows, k);
		ret = -EPROTO;
	}
	if (ret == -ETIMEDOUT) {
		pyproc_stop(&r->proc, 0);
		died(p, r);
		snprintf(err, errlen,
			 "model '%s' did not answer within %.3g s (timeout=): "
			 "its process was killed and restarts",
			 p->model, (double)p->c.timeout_ms / 1000);
		return -EAGAIN;
	}
	pyproc_stop(&r->proc, ret == -EPIPE ? 1000 : 0);
	died(p, r);
	if (ret == -EPIPE) {
		snprintf(err, errlen, "model '%s': its process %s", p->model,
			 pyproc_describe(r->proc.status, how, sizeof(how)));
		return -EPIPE;
	}
	snprintf(err, errlen, "model '%s': %.400s; its process was killed",
		 p->model, e);
	return -EAGAIN;
}

/* Run a claimed batch on @r and set every request's result. */
static void run_batch(struct pypool *p, struct replica *r, struct pyreq *b)
{
	struct pyreq *reqs[PYRT_MAX_REQS], *one[1];
	char e[ERR_MAX], e2[ERR_MAX];
	int64_t now = time_mono_ns();
	size_t n = 0, i, rows = 0;
	int ret;

	for (; b; b = b->next) {
		reqs[n++] = b;
		rows += b->rows;
		metrics_model_queue(p->met, p->model, now - b->t_enq_ns);
	}
	metrics_model_batch(p->met, p->model, rows);
	ret = call(p, r, reqs, n, false, e, sizeof(e));
	if (ret == 0)
		return;
	if (ret == -EPIPE)
		log_warn("%s; retrying its %zu request(s) on a fresh process",
			 e, n);
	for (i = 0; i < n; i++) {
		if (ret != -EPIPE && (n == 1 || ret == -EAGAIN)) {
			fail_req(reqs[i], ret, e);
			continue;
		}
		/* died: once more on a fresh process; raised: alone */
		one[0] = reqs[i];
		reqs[i]->ret = call(p, r, one, 1, ret == -EPIPE, e2,
				    sizeof(e2));
		if (reqs[i]->ret == -EPIPE) {
			fail_req(reqs[i], -EAGAIN, e2);
			snprintf(reqs[i]->err + strlen(reqs[i]->err),
				 reqs[i]->errlen - strlen(reqs[i]->err),
				 " (also when retried on a fresh process)");
		} else if (reqs[i]->ret < 0) {
			fail_req(reqs[i], reqs[i]->ret, e2);
		}
	}
}

/*
 * An idle replica to send a batch to, or NULL to wait for one: an idle
 * live process first; else a dead one that may start now; else, when
 * some process is alive (busy), none (its batch will end soon); else a
 * dead one in its backoff, whose batch then fails at once. Under
 * p->lock; pid and next_start_ms are read as hints (the claimer writes
 * them).
 */
static struct replica *claim(struct pypool *p)
{
	struct replica *pick = NULL, *backoff = NULL;
	int64_t now = time_mono_ms();
	bool live = false;
	unsigned i;

	for (i = 0; i < p->n; i++) {
		struct replica *r = &p->r[i];

		live |= r->proc.pid != 0;
		if (r->busy)
			continue;
		if (r->proc.pid) {
			pick = r;
			break;
		}
		if (now >= r->next_start_ms && !pick)
			pick = r;
		else if (!backoff)
			backoff = r;
	}
	if (!pick && !live)
		pick = backoff;
	if (pick) {
		pick->busy = true;
		p->busy++;
	}
	return pick;
}

/* Rows queued behind the head with the head's width. Under p->lock. */
static size_t fill_rows(const struct pypool *p)
{
	const struct pyreq *q;
	size_t rows = 0;

	for (q = p->head; q; q = q->next)
		if (q->cols == p->head->cols)
			rows += q->rows;
	return rows;
}

/* Take a batch off the queue: the head, then requests of its width while
 * they fit max_batch_size rows. Under p->lock. */
static struct pyreq *take(struct pypool *p)
{
	struct pyreq *b = NULL, **bt = &b, **pp = &p->head, *q;
	size_t rows = 0, n = 0, cols = p->head->cols;

	while ((q = *pp) && n < PYRT_MAX_REQS) {
		if (q->cols != cols ||
		    (n && rows + q->rows > p->c.max_batch_rows)) {
			pp = &q->next;
			continue;
		}
		*pp = q->next;
		q->next = NULL;
		*bt = q;
		bt = &q->next;
		rows += q->rows;
		n++;
	}
	p->tail = NULL;
	for (q = p->head; q; q = q->next)
		p->tail = q;
	return b;
}

static int pool_predict(void *state, const double *x, size_t rows,
			size_t cols, double *out, char *err, size_t errlen)
{
	struct pypool *p = state;
	struct pyreq q = {.x = x, .rows = rows, .cols = cols, .out = out,
			  .err = err, .errlen = errlen};
	struct replica *r;
	struct pyreq *b, *next;
	struct timespec ts;
	int64_t until;

	if (!rows)
		return 0;
	if (rows > UINT32_MAX / 2 || cols > UINT32_MAX / 2) {
		snprintf(err, errlen, "too many rows or columns");
		return -EINVAL;
	}
	q.t_enq_ns = time_mono_ns();
	pthread_mutex_lock(&p->lock);
	if (p->tail)
		p->tail->next = &q;
	else
		p->head = &q;
	p->tail = &q;
	pthread_cond_broadcast(&p->fill);
	while (!q.done) {
		r = p->head ? claim(p) : NULL;
		if (!r) {
			pthread_cond_wait(&p->cond, &p->lock);
			continue;
		}
		if (p->busy > 1 && p->c.max_wait_us > 0) {
			until = p->head->t_enq_ns + p->c.max_wait_us * 1000;
			ts.tv_sec = (time_t)(until / 1000000000);
			ts.tv_nsec = (long)(until % 1000000000);
			while (fill_rows(p) < p->c.max_batch_rows &&
			       time_mono_ns() < until &&
			       pthread_cond_timedwait(&p->fill, &p->lock,
						      &ts) == 0)
				;
		}
		if (!p->head) { /* another leader took them meanwhile */
			r->busy = false;
			p->busy--;
			continue;
		}
		b = take(p);
		pthread_mutex_unlock(&p->lock);
		run_batch(p, r, b);
		pthread_mutex_lock(&p->lock);
		r->busy = false;
		p->busy--;
		for (; b; b = next) {
			next = b->next;
			b->done = true;
		}
		pthread_cond_broadcast(&p->cond);
	}
	pthread_mutex_unlock(&p->lock);
	return q.ret;
}

static int pool_metrics(void *state, const double *x, const double *labels,
			size_t rows, size_t cols, struct buf *json, char *err,
			size_t errlen)
{
	struct pypool *p = state;
	struct pyframe_hdr h = {.type = PYF_METRICS};
	struct iovec iov[2] = {
	    {.iov_base = (void *)x, .iov_len = rows * cols * sizeof(double)},
	    {.iov_base = (void *)labels, .iov_len = rows * sizeof(double)}};
	struct pyhello hello;
	struct replica *r;
	int ret;

	pthread_mutex_lock(&p->lock);
	while (!(r = claim(p)))
		pthread_cond_wait(&p->cond, &p->lock);
	pthread_mutex_unlock(&p->lock);
	ret = 0;
	if (!r->proc.pid)
		ret = start(p, r, false, &hello, err, errlen);
	h.rows = (uint32_t)rows;
	h.cols = (uint32_t)cols;
	h.cols2 = labels ? 1 : 0;
	if (ret == 0)
		ret = pyproc_send(&r->proc, &h, iov, labels ? 2 : 1, 0, err,
				  errlen);
	if (ret == 0)
		ret = pyproc_recv(&r->proc, &h, &r->rx, 0, 0, err, errlen);
	if (ret == 0 && h.type == PYF_METRICS_RESULT && r->rx.len &&
	    r->rx.data[0] == '{') {
		ret = buf_append(json, r->rx.data, r->rx.len);
	} else if (ret == 0) {
		snprintf(err, errlen, "%s",
			 h.type == PYF_ERROR && r->rx.data
			     ? r->rx.data
			     : "the model process sent no metrics");
		ret = -EIO;
	} else {
		pyproc_stop(&r->proc, 1000);
	}
	pthread_mutex_lock(&p->lock);
	r->busy = false;
	p->busy--;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	return ret;
}

static void pool_free(void *state)
{
	struct pypool *p = state;
	unsigned i;

	if (!p)
		return;
	for (i = 0; i < p->n; i++) /* EOF first: they all exit at once */
		if (p->r[i].proc.fd >= 0) {
			close(p->r[i].proc.fd);
			p->r[i].proc.fd = -1;
		}
	for (i = 0; i < p->n; i++) {
		pyproc_stop(&p->r[i].proc, 500);
		buf_free(&p->r[i].rx);
	}
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	pthread_cond_destroy(&p->fill);
	free(p->model);
	free(p->python);
	free(p->script);
	free(p->load_json);
	free(p);
}

/* The JSON the worker loads from: kind, paths and the model's config. */
static char *load_request(const char *kind, const char *model,
			  const char *dir, const char *path, const char *config)
{
	cJSON *j = cJSON_CreateObject(), *conf = NULL;
	char *s = NULL;

	if (config)
		conf = cJSON_Parse(config);
	if (!conf)
		conf = cJSON_CreateObject();
	if (j && conf && cJSON_AddStringToObject(j, "kind", kind) &&
	    cJSON_AddStringToObject(j, "model", model) &&
	    cJSON_AddStringToObject(j, "dir", dir) &&
	    cJSON_AddStringToObject(j, "file", path)) {
		cJSON_AddItemToObject(j, "config", conf);
		conf = NULL;
		s = cJSON_PrintUnformatted(j);
	}
	cJSON_Delete(conf);
	cJSON_Delete(j);
	return s;
}

static int pool_load(const char *kind, const struct runtime_ctx *ctx,
		     const char *dir, const char *path, const char *config,
		     void **state, struct runtime_info *info, char *err,
		     size_t errlen)
{
	struct pyrt_conf c;
	struct pyhello hello = {0}, h2;
	struct pypool *p;
	char envdir[PATH_MAX], e[ERR_MAX];
	const char *base;
	unsigned i;
	int ret;

	ret = pyrt_conf_parse(config, &c, err, errlen);
	if (ret < 0)
		return ret;
	p = calloc(1, sizeof(*p) + c.replicas * sizeof(p->r[0]));
	if (!p)
		return -ENOMEM;
	p->c = c;
	p->n = c.replicas;
	p->met = ctx->metrics;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&p->fill, &ca);
		pthread_condattr_destroy(&ca);
	}
	for (i = 0; i < p->n; i++) {
		p->r[i].proc.fd = -1;
		buf_init(&p->r[i].rx, 0);
	}
	p->model = strdup(ctx->model ? ctx->model : "?");
	p->load_json = load_request(kind, p->model ? p->model : "?", dir,
				    path, config);
	ret = rt_python_worker_path(ctx, &p->script, err, errlen);
	if (ret < 0)
		goto fail;
	if (!p->model || !p->load_json) {
		ret = -ENOMEM;
		goto fail;
	}
	if (ctx->python_env_dir)
		snprintf(envdir, sizeof(envdir), "%s", ctx->python_env_dir);
	else
		pyenv_default_dir(envdir, sizeof(envdir));
	base = ctx->python ? ctx->python : "/usr/bin/python3";
	ret = pyenv_ensure(dir, envdir, base, ctx->python_wheelhouse,
			   &p->python, err, errlen);
	if (ret < 0)
		goto fail;
	for (i = 0; i < p->n; i++) {
		ret = start(p, &p->r[i], i == 0, i == 0 ? &hello : &h2, e,
			    sizeof(e));
		if (ret < 0) {
			snprintf(err, errlen, "%s", e);
			goto fail;
		}
		if (i == 0) {
			p->info.n_features = hello.n_features;
			p->info.n_outputs = hello.n_outputs;
		}
	}
	p->info.is_classifier = hello.is_classifier;
	p->has_metrics = hello.has_metrics;
	snprintf(p->info.objective, sizeof(p->info.objective), "%s",
		 hello.objective);
	*info = p->info;
	*state = p;
	return 0;
fail:
	pool_free(p);
	return ret;
}

static int sklearn_load(const struct runtime_ctx *ctx, const char *dir,
			const char *path, const char *config, void **state,
			struct runtime_info *info, char *err, size_t errlen)
{
	return pool_load("sklearn", ctx, dir, path, config, state, info, err,
			 errlen);
}

static int python_load(const struct runtime_ctx *ctx, const char *dir,
		       const char *path, const char *config, void **state,
		       struct runtime_info *info, char *err, size_t errlen)
{
	return pool_load("python", ctx, dir, path, config, state, info, err,
			 errlen);
}

const struct runtime_ops rt_sklearn_ops = {
    .name = "sklearn",
    .load = sklearn_load,
    .predict = pool_predict,
    .metrics = pool_metrics,
    .free = pool_free,
};

const struct runtime_ops rt_python_ops = {
    .name = "python",
    .load = python_load,
    .predict = pool_predict,
    .metrics = pool_metrics,
    .free = pool_free,
};

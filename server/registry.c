/*
 * registry - models by name, refcounted versions, atomic swaps, the poll
 * thread and lazy loading.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "resolver/spec.h"
#include "server/assetdir.h"
#include "server/metrics.h"
#include "server/pcache.h"
#include "server/registry.h"

#define REGISTRY_MAX_MODELS 64

struct model {
	unsigned idx;
	char *name;
	char *spec_text;
	struct spec spec;
	const struct runtime_ops *ops;
	char *file;
	char *config;
	bool floating; /* no complete version in the spec */

	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct model_version *cur; /* protected by lock */
	bool loading;		   /* protected by lock */
	bool wanted;		   /* protected by lock: requested (lazy) */
	char *failed_version;	   /* protected by lock */
	int64_t failed_at_ms;	   /* protected by lock */
	char last_err[ERR_MAX];	   /* protected by lock */
	char poll_err[ERR_MAX];	   /* the poll thread's last error */
};

struct registry {
	struct registry_opts o;
	char *assets_dir;
	struct model *models[REGISTRY_MAX_MODELS];
	size_t n;
	pthread_t poller;
	bool polling;
	pthread_mutex_t stop_lock;
	pthread_cond_t stop_cond;
	bool stop; /* protected by stop_lock */
};

static void version_free(struct model_version *v)
{
	if (!v)
		return;
	if (v->state)
		v->ops->free(v->state);
	free(v->version);
	free(v->path);
	free(v);
}

void model_version_unref(struct model_version *v)
{
	if (v && atomic_fetch_sub(&v->refs, 1) == 1) {
		log_debug("freeing drained model version %s", v->version);
		version_free(v);
	}
}

int registry_new(const struct registry_opts *o, struct registry **out)
{
	struct registry *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->o = *o;
	r->assets_dir = strdup(o->assets_dir ? o->assets_dir : ".");
	if (!r->assets_dir) {
		free(r);
		return -ENOMEM;
	}
	r->o.assets_dir = r->assets_dir;
	pthread_mutex_init(&r->stop_lock, NULL);
	pthread_cond_init(&r->stop_cond, NULL);
	*out = r;
	return 0;
}

static void model_free(struct model *m)
{
	if (!m)
		return;
	model_version_unref(m->cur);
	free(m->failed_version);
	free(m->name);
	free(m->spec_text);
	spec_clear(&m->spec);
	free(m->file);
	free(m->config);
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->cond);
	free(m);
}

void registry_free(struct registry *r)
{
	size_t i;

	if (!r)
		return;
	if (r->polling) {
		pthread_mutex_lock(&r->stop_lock);
		r->stop = true;
		pthread_cond_broadcast(&r->stop_cond);
		pthread_mutex_unlock(&r->stop_lock);
		pthread_join(r->poller, NULL);
	}
	for (i = 0; i < r->n; i++)
		model_free(r->models[i]);
	pthread_mutex_destroy(&r->stop_lock);
	pthread_cond_destroy(&r->stop_cond);
	free(r->assets_dir);
	free(r);
}

static bool name_ok(const char *s)
{
	size_t n = 0;

	for (; *s; s++, n++) {
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' ||
		      *s == '-'))
			return false;
	}
	return n > 0 && n < 64;
}

int registry_add(struct registry *r, const char *name, const char *spec,
		 const char *runtime, const char *file, const char *config,
		 char *err, size_t errlen)
{
	struct model *m;
	size_t i;
	int ret;

	if (!name_ok(name)) {
		snprintf(err, errlen,
			 "invalid model name '%s': use 1 to 63 "
			 "of [A-Za-z0-9._-]",
			 name);
		return -EINVAL;
	}
	for (i = 0; i < r->n; i++) {
		if (strcmp(r->models[i]->name, name) == 0) {
			snprintf(err, errlen, "model '%s' given twice", name);
			return -EEXIST;
		}
	}
	if (r->n >= REGISTRY_MAX_MODELS) {
		snprintf(err, errlen, "at most %d models", REGISTRY_MAX_MODELS);
		return -E2BIG;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->cond, NULL);
	ret = spec_parse(spec, &m->spec, err, errlen);
	if (ret < 0)
		goto fail;
	m->ops = runtime ? runtime_find(runtime) : NULL;
	if (runtime && !m->ops) {
		snprintf(err, errlen,
			 "unknown runtime '%s' (xgboost, plugin, sklearn or "
			 "python)",
			 runtime);
		ret = -EINVAL;
		goto fail;
	}
	if (file && spec_check_relpath(file, err, errlen) < 0) {
		ret = -EINVAL;
		goto fail;
	}
	m->name = strdup(name);
	m->spec_text = strdup(spec);
	m->file = file		? strdup(file)
		  : m->spec.sub ? strdup(m->spec.sub)
				: NULL;
	m->config = config ? strdup(config) : NULL;
	if (!m->name || !m->spec_text || (file && !m->file) ||
	    (config && !m->config)) {
		ret = -ENOMEM;
		goto fail;
	}
	m->floating = !m->spec.version || version_is_major(m->spec.version);
	m->idx = (unsigned)r->n;
	r->models[r->n++] = m;
	return 0;
fail:
	model_free(m);
	return ret;
}

bool registry_lazy(const struct registry *r)
{
	return r->o.lazy;
}

size_t registry_count(const struct registry *r)
{
	return r->n;
}

struct model *registry_at(struct registry *r, size_t i)
{
	return i < r->n ? r->models[i] : NULL;
}

struct model *registry_find(struct registry *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		if (strcmp(r->models[i]->name, name) == 0)
			return r->models[i];
	return NULL;
}

const char *model_name(const struct model *m)
{
	return m->name;
}

const char *model_spec(const struct model *m)
{
	return m->spec_text;
}

const char *model_runtime(const struct model *m)
{
	struct model *mm = (struct model *)m;
	const char *name = "auto";

	if (m->ops)
		return m->ops->name;
	pthread_mutex_lock(&mm->lock);
	if (mm->cur)
		name = mm->cur->ops->name;
	pthread_mutex_unlock(&mm->lock);
	return name;
}

/* Load version @version of @m. Never holds m->lock. */
static int load_version(struct registry *r, struct model *m,
			const char *version, struct model_version **out,
			char *err, size_t errlen)
{
	struct runtime_ctx ctx = {
	    .model = m->name,
	    .metrics = r->o.metrics,
	    .python = r->o.python,
	    .python_env_dir = r->o.python_env_dir,
	    .python_wheelhouse = r->o.python_wheelhouse,
	};
	struct model_version *v;
	char vpath[PATH_MAX];
	int64_t t0 = time_mono_ns();
	int ret;

	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	atomic_init(&v->refs, 1);
	v->version = strdup(version);
	if (!v->version) {
		ret = -ENOMEM;
		goto fail;
	}
	if (snprintf(vpath, sizeof(vpath), "%s/%s/%s", r->assets_dir,
		     m->spec.name, version) >= (int)sizeof(vpath)) {
		snprintf(err, errlen, "path too long");
		ret = -ENAMETOOLONG;
		goto fail;
	}
	v->ops = m->ops ? m->ops : runtime_detect(vpath, m->file, m->config);
	ret = assetdir_model_file(vpath, m->file, v->ops->name, &v->path, err,
				  errlen);
	if (ret < 0)
		goto fail;
	ret = v->ops->load(&ctx, vpath, v->path, m->config, &v->state,
			   &v->info, err, errlen);
	if (ret < 0)
		goto fail;
	v->load_ns = time_mono_ns() - t0;
	metrics_model_load(r->o.metrics, r->o.worker, m->idx, m->name, version,
			   true, v->load_ns);
	*out = v;
	return 0;
fail:
	metrics_model_load(r->o.metrics, r->o.worker, m->idx, m->name, version,
			   false, 0);
	version_free(v);
	return ret;
}

/* How long a version that failed to load is left alone. */
static int64_t retry_ms(const struct registry *r)
{
	int64_t ms = (int64_t)r->o.poll_ms * 6;

	return ms < 2000 ? 2000 : ms;
}

/*
 * Resolve @m, and load and swap in the result if it is not what serves.
 * Returns 0 (serving something) or a negative errno with @err set.
 */
static int refresh(struct registry *r, struct model *m, char *err,
		   size_t errlen)
{
	struct model_version *v = NULL, *old;
	char *version = NULL;
	bool same;
	int ret;

	ret = assetdir_resolve(r->assets_dir, m->spec.name, m->spec.version,
			       r->o.sys, &version, err, errlen);
	if (ret < 0)
		goto out;
	pthread_mutex_lock(&m->lock);
	/*
	 * A version that failed is tried again only after a while: it may
	 * have been caught half-copied into a plain directory, but a truly
	 * broken one must not be reloaded (and logged) every poll.
	 */
	same = (m->cur && strcmp(m->cur->version, version) == 0) ||
	       (m->failed_version && strcmp(m->failed_version, version) == 0 &&
		time_mono_ms() - m->failed_at_ms < retry_ms(r));
	if (!same && m->loading)
		same = true; /* a lazy load is in progress; it will do */
	if (!same)
		m->loading = true;
	pthread_mutex_unlock(&m->lock);
	if (same)
		goto out;
	ret = load_version(r, m, version, &v, err, errlen);
	pthread_mutex_lock(&m->lock);
	m->loading = false;
	if (ret < 0) {
		free(m->failed_version);
		m->failed_version = version;
		version = NULL;
		m->failed_at_ms = time_mono_ms();
		snprintf(m->last_err, sizeof(m->last_err), "%s", err);
		log_error("model %s: cannot load version %s: %s%s", m->name,
			  m->failed_version, err,
			  m->cur ? " (the old version keeps serving)" : "");
		pthread_cond_broadcast(&m->cond);
		pthread_mutex_unlock(&m->lock);
		goto out;
	}
	old = m->cur;
	m->cur = v;
	atomic_fetch_add(&v->refs, 1); /* ours, while we log below */
	free(m->failed_version);
	m->failed_version = NULL;
	m->last_err[0] = '\0';
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	metrics_model_serving(r->o.metrics, r->o.worker, m->idx, m->name,
			      v->version);
	log_info("model %s: serving %s version %s (%s, loaded in %.1f ms)%s%s",
		 m->name, m->spec.name, v->version, v->info.objective,
		 (double)v->load_ns / 1e6, old ? ", replacing " : "",
		 old ? old->version : "");
	model_version_unref(old);
	model_version_unref(v);
out:
	free(version);
	return ret;
}

int registry_load_all(struct registry *r, char *err, size_t errlen)
{
	char e[ERR_MAX];
	size_t i;
	int ret;

	for (i = 0; i < r->n; i++) {
		struct model *m = r->models[i];

		pthread_mutex_lock(&m->lock);
		m->wanted = true;
		pthread_mutex_unlock(&m->lock);
		ret = refresh(r, m, e, sizeof(e));
		if (ret < 0) {
			snprintf(err, errlen, "model %s (%s): %s", m->name,
				 m->spec_text, e);
			return ret;
		}
	}
	return 0;
}

void registry_poll_once(struct registry *r)
{
	char err[ERR_MAX];
	size_t i;

	for (i = 0; i < r->n; i++) {
		struct model *m = r->models[i];
		bool go;

		pthread_mutex_lock(&m->lock);
		go = m->wanted && (m->floating || !m->cur);
		pthread_mutex_unlock(&m->lock);
		if (!go)
			continue;
		err[0] = '\0';
		if (refresh(r, m, err, sizeof(err)) == 0) {
			m->poll_err[0] = '\0';
			continue;
		}
		/* resolution errors: say so once, not every poll */
		if (strstr(err, "no such") && strcmp(err, m->poll_err) != 0)
			log_warn("model %s: %s%s", m->name, err,
				 model_ready(m) ? " (the version loaded keeps "
						  "serving)"
						: "");
		snprintf(m->poll_err, sizeof(m->poll_err), "%s", err);
	}
}

static void *poll_main(void *arg)
{
	struct registry *r = arg;
	struct timespec ts;
	bool stop;

	for (;;) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += r->o.poll_ms / 1000;
		ts.tv_nsec += (long)(r->o.poll_ms % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_mutex_lock(&r->stop_lock);
		if (!r->stop)
			pthread_cond_timedwait(&r->stop_cond, &r->stop_lock,
					       &ts);
		stop = r->stop;
		pthread_mutex_unlock(&r->stop_lock);
		if (stop)
			break;
		registry_poll_once(r);
	}
	return NULL;
}

int registry_start(struct registry *r)
{
	if (r->o.poll_ms <= 0)
		return 0;
	if (pthread_create(&r->poller, NULL, poll_main, r) != 0)
		return -EAGAIN;
	r->polling = true;
	return 0;
}

bool model_failed(struct model *m)
{
	bool failed;

	pthread_mutex_lock(&m->lock);
	failed = !m->cur && m->last_err[0];
	pthread_mutex_unlock(&m->lock);
	return failed;
}

bool model_ready(struct model *m)
{
	bool ready;

	pthread_mutex_lock(&m->lock);
	ready = m->cur != NULL;
	pthread_mutex_unlock(&m->lock);
	return ready;
}

bool model_would_load(struct registry *r, struct model *m)
{
	bool load;

	pthread_mutex_lock(&m->lock);
	load = !m->cur && r->o.lazy && !m->loading;
	pthread_mutex_unlock(&m->lock);
	return load;
}

int model_try_acquire(struct registry *r, struct model *m,
		      const char *version, struct model_version **out,
		      char *err, size_t errlen)
{
	bool busy;

	pthread_mutex_lock(&m->lock);
	busy = !m->cur && m->loading;
	pthread_mutex_unlock(&m->lock);
	if (busy) {
		*out = NULL;
		snprintf(err, errlen, "model '%s' is loading; retry", m->name);
		return -EBUSY;
	}
	return model_acquire(r, m, version, out, err, errlen);
}

int model_acquire(struct registry *r, struct model *m, const char *version,
		  struct model_version **out, char *err, size_t errlen)
{
	struct model_version *v;
	bool load = false;
	int ret;

	pthread_mutex_lock(&m->lock);
	if (!m->cur && r->o.lazy) {
		m->wanted = true;
		/* one thread loads; the others wait for it */
		if (!m->loading && (!m->failed_at_ms ||
				    time_mono_ms() - m->failed_at_ms >
					(r->o.poll_ms ? r->o.poll_ms : 5000))) {
			load = true;
			free(m->failed_version);
			m->failed_version = NULL;
		} else {
			while (m->loading)
				pthread_cond_wait(&m->cond, &m->lock);
		}
	}
	pthread_mutex_unlock(&m->lock);
	if (load) {
		char e[ERR_MAX];

		ret = refresh(r, m, e, sizeof(e));
		if (ret < 0) {
			pthread_mutex_lock(&m->lock);
			if (!m->failed_at_ms)
				m->failed_at_ms = time_mono_ms();
			snprintf(m->last_err, sizeof(m->last_err), "%s", e);
			pthread_mutex_unlock(&m->lock);
		}
	}
	pthread_mutex_lock(&m->lock);
	while (!m->cur && m->loading)
		pthread_cond_wait(&m->cond, &m->lock);
	v = m->cur;
	if (!v) {
		snprintf(err, errlen, "model '%s' is not ready%s%s", m->name,
			 m->last_err[0] ? ": " : "", m->last_err);
		pthread_mutex_unlock(&m->lock);
		return -EAGAIN;
	}
	if (version && strcmp(version, v->version) != 0) {
		snprintf(err, errlen,
			 "model '%s' has no version '%s' (serving "
			 "%s)",
			 m->name, version, v->version);
		pthread_mutex_unlock(&m->lock);
		return -ENOENT;
	}
	atomic_fetch_add(&v->refs, 1);
	pthread_mutex_unlock(&m->lock);
	*out = v;
	return 0;
}

int model_predict(struct registry *r, struct model *m, struct model_version *v,
		  const struct matrix *in, double **out, char *err,
		  size_t errlen)
{
	size_t n = in->rows * v->info.n_outputs;
	uint64_t key = 0;
	double *y;
	int ret;

	if (v->info.n_features > 0 && (int64_t)in->cols != v->info.n_features) {
		snprintf(err, errlen,
			 "model '%s' expects %lld features per "
			 "row, got %zu",
			 m->name, (long long)v->info.n_features, in->cols);
		return -EINVAL;
	}
	y = malloc((n ? n : 1) * sizeof(*y));
	if (!y)
		return -ENOMEM;
	if (r->o.cache) {
		key = pcache_key(in->x, in->rows, in->cols);
		if (pcache_get(r->o.cache, m->name, v->version, key, y, n) ==
		    0) {
			metrics_cache(r->o.metrics, true);
			*out = y;
			return 0;
		}
		metrics_cache(r->o.metrics, false);
	}
	ret = v->ops->predict(v->state, in->x, in->rows, in->cols, y, err,
			      errlen);
	if (ret < 0) {
		free(y);
		return ret;
	}
	if (r->o.cache)
		pcache_put(r->o.cache, m->name, v->version, key, y, n);
	*out = y;
	return 0;
}

/*
 * rt_xgboost - the xgboost runtime on libxgboost's C API (1.7).
 *
 * A model file is read into memory and handed to
 * XGBoosterLoadModelFromBuffer, which tells JSON ('{"') from UBJSON ('{'
 * then a type marker) by itself, so a file asset without an extension
 * loads too. The booster is set to nthread=1 before it is shared:
 * XGBoosterPredictFromDense ignores nthread in its config, and inplace
 * prediction is thread-safe, so every HTTP thread predicts on the same
 * booster in parallel. Predictions come back in a per-thread buffer owned
 * by the booster and are copied out at once.
 *
 * Outputs: binary:logistic gives P(1) per row, expanded to [1-p, p] as
 * predict_proba does; multi:softprob gives num_class columns; everything
 * else (regression, multi:softmax, ranking) one column.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <xgboost/c_api.h>

#include "common/fileutil.h"
#include "server/runtime.h"

#define XGB_MODEL_MAX ((size_t)2 << 30)

enum xgb_out {
	XGB_OUT_RAW,	/* n_outputs columns as returned */
	XGB_OUT_BINARY, /* one column p -> [1-p, p] */
};

struct xgb {
	BoosterHandle h;
	enum xgb_out mode;
	uint32_t n_outputs;
	int64_t n_features;
	bool is_classifier;
	bool counted; /* in live_boosters */
};

static void boosters_changed(int delta);

static void xgb_free(void *state)
{
	struct xgb *m = state;

	if (!m)
		return;
	if (m->h)
		XGBoosterFree(m->h);
	if (m->counted)
		boosters_changed(-1);
	free(m);
}

static const char *json_str(const cJSON *o, const char *a, const char *b,
			    const char *c)
{
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);

	if (b)
		x = cJSON_GetObjectItemCaseSensitive(x, b);
	if (c)
		x = cJSON_GetObjectItemCaseSensitive(x, c);
	return cJSON_IsString(x) ? x->valuestring : NULL;
}

static int xgb_load(const struct runtime_ctx *ctx, const char *dir,
		    const char *path, const char *config, void **state,
		    struct runtime_info *info, char *err, size_t errlen)
{
	struct buf data;
	struct xgb *m = NULL;
	const char *conf = NULL, *obj, *ncls;
	bst_ulong conf_len = 0, nfeat = 0;
	cJSON *cj = NULL;
	long num_class = 0;
	int ret;

	buf_init(&data, XGB_MODEL_MAX);
	ret = file_read_capped(path, XGB_MODEL_MAX, &data);
	if (ret < 0) {
		snprintf(err, errlen, "cannot read %s: %s", path,
			 strerror(-ret));
		goto out;
	}
	if (data.len < 2 || data.data[0] != '{') {
		snprintf(err, errlen,
			 "%s is not an XGBoost JSON or UBJSON "
			 "model",
			 path);
		ret = -EINVAL;
		goto out;
	}
	m = calloc(1, sizeof(*m));
	if (!m) {
		ret = -ENOMEM;
		goto out;
	}
	if (XGBoosterCreate(NULL, 0, &m->h) != 0 ||
	    XGBoosterLoadModelFromBuffer(m->h, data.data, data.len) != 0 ||
	    XGBoosterSetParam(m->h, "nthread", "1") != 0 ||
	    XGBoosterGetNumFeature(m->h, &nfeat) != 0 ||
	    XGBoosterSaveJsonConfig(m->h, &conf_len, &conf) != 0) {
		snprintf(err, errlen, "xgboost cannot load %s: %s", path,
			 XGBGetLastError());
		ret = -EINVAL;
		goto out;
	}
	cj = cJSON_ParseWithLength(conf, conf_len);
	obj = json_str(cj, "learner", "objective", "name");
	ncls = json_str(cj, "learner", "learner_model_param", "num_class");
	if (ncls)
		num_class = strtol(ncls, NULL, 10);
	if (!obj)
		obj = "unknown";
	snprintf(info->objective, sizeof(info->objective), "%s", obj);
	m->n_features = nfeat ? (int64_t)nfeat : -1;
	m->n_outputs = 1;
	m->mode = XGB_OUT_RAW;
	if (strcmp(obj, "binary:logistic") == 0) {
		m->mode = XGB_OUT_BINARY;
		m->n_outputs = 2;
		m->is_classifier = true;
	} else if (strcmp(obj, "multi:softprob") == 0 && num_class > 1 &&
		   num_class <= RUNTIME_MAX_OUTPUTS) {
		m->n_outputs = (uint32_t)num_class;
		m->is_classifier = true;
	}
	m->counted = true;
	boosters_changed(1);
	info->n_features = m->n_features;
	info->n_outputs = m->n_outputs;
	info->is_classifier = m->is_classifier;
	*state = m;
	m = NULL;
	ret = 0;
out:
	cJSON_Delete(cj);
	xgb_free(m);
	buf_free(&data);
	return ret;
}

/*
 * One proxy DMatrix per thread. Without one, XGBoosterPredictFromDense
 * builds a proxy per call, and with it a Context that reads the cgroup CPU
 * quota from /sys (two open/read/close per prediction: about a sixth of a
 * one-row request's CPU time). A proxy only carries the array of the call
 * in flight, so one per thread serves every booster.
 *
 * Proxies are never freed by the thread that exits (libxgboost would then
 * touch thread-locals already destroyed): a pthread key destructor hands
 * the proxy back to a free stack for the next new thread, so there are
 * never more proxies than threads alive at once. When the last booster is
 * freed (no prediction can be in flight) every proxy is freed and the
 * generation moves on, so a thread's cached pointer is never used stale.
 */
static pthread_mutex_t proxy_lock = PTHREAD_MUTEX_INITIALIZER;
static DMatrixHandle *proxy_all;	/* protected by proxy_lock */
static DMatrixHandle *proxy_free_stack; /* protected by proxy_lock */
static size_t proxy_n_all, proxy_n_free, proxy_cap; /* protected */
static unsigned long live_boosters; /* protected by proxy_lock */
static atomic_uint proxy_gen;
static pthread_key_t proxy_key;
static pthread_once_t proxy_once = PTHREAD_ONCE_INIT;
static bool proxy_key_ok;
static __thread DMatrixHandle my_proxy;
static __thread unsigned my_gen;

static void proxy_release(void *p)
{
	size_t i;

	pthread_mutex_lock(&proxy_lock);
	for (i = 0; i < proxy_n_all; i++) {
		if (proxy_all[i] == p) {
			proxy_free_stack[proxy_n_free++] = p;
			break;
		}
	}
	pthread_mutex_unlock(&proxy_lock);
}

static void proxy_init(void)
{
	proxy_key_ok = pthread_key_create(&proxy_key, proxy_release) == 0;
}

/* This thread's proxy, or NULL (xgboost then makes its own per call). */
static DMatrixHandle thread_proxy(void)
{
	unsigned gen = atomic_load(&proxy_gen);
	DMatrixHandle p = NULL;

	if (my_proxy && my_gen == gen)
		return my_proxy;
	pthread_once(&proxy_once, proxy_init);
	if (!proxy_key_ok)
		return NULL;
	pthread_mutex_lock(&proxy_lock);
	if (proxy_n_free) {
		p = proxy_free_stack[--proxy_n_free];
	} else {
		if (proxy_n_all == proxy_cap) {
			size_t cap = proxy_cap ? proxy_cap * 2 : 16;
			DMatrixHandle *a, *f;

			a = realloc(proxy_all, cap * sizeof(*a));
			if (a)
				proxy_all = a;
			f = a ? realloc(proxy_free_stack, cap * sizeof(*f))
			      : NULL;
			if (f)
				proxy_free_stack = f;
			if (a && f)
				proxy_cap = cap;
		}
		if (proxy_n_all < proxy_cap && XGProxyDMatrixCreate(&p) == 0)
			proxy_all[proxy_n_all++] = p;
		else
			p = NULL;
	}
	pthread_mutex_unlock(&proxy_lock);
	if (!p)
		return NULL;
	pthread_setspecific(proxy_key, p);
	my_proxy = p;
	my_gen = gen;
	return p;
}

static void boosters_changed(int delta)
{
	size_t i;

	pthread_mutex_lock(&proxy_lock);
	live_boosters += (unsigned long)(long)delta;
	if (live_boosters == 0) {
		for (i = 0; i < proxy_n_all; i++)
			XGDMatrixFree(proxy_all[i]);
		proxy_n_all = proxy_n_free = 0;
		atomic_fetch_add(&proxy_gen, 1);
	}
	pthread_mutex_unlock(&proxy_lock);
}

static int xgb_predict(void *state, const double *x, size_t rows, size_t cols,
		       double *out, char *err, size_t errlen)
{
	static const char config[] =
	    "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, "
	    "\"iteration_end\": 0, \"strict_shape\": false, "
	    "\"cache_id\": 0, \"missing\": NaN}";
	struct xgb *m = state;
	char arr[200];
	const bst_ulong *shape = NULL;
	bst_ulong dim = 0, n = 1, i;
	const float *res = NULL;

	if (m->n_features > 0 && (int64_t)cols != m->n_features) {
		snprintf(err, errlen,
			 "the model expects %" PRId64
			 " features per row, got %zu",
			 m->n_features, cols);
		return -EINVAL;
	}
	snprintf(arr, sizeof(arr),
		 "{\"data\": [%" PRIuPTR ", true], \"shape\": [%zu, %zu], "
		 "\"typestr\": \"<f8\", \"version\": 3}",
		 (uintptr_t)x, rows, cols);
	if (XGBoosterPredictFromDense(m->h, arr, config, thread_proxy(), &shape,
				      &dim, &res) != 0) {
		snprintf(err, errlen, "xgboost: %s", XGBGetLastError());
		return -EIO;
	}
	for (i = 0; i < dim; i++)
		n *= shape[i];
	if (m->mode == XGB_OUT_BINARY) {
		if (n != rows)
			goto bad_shape;
		for (i = 0; i < rows; i++) {
			out[2 * i] = 1.0 - (double)res[i];
			out[2 * i + 1] = (double)res[i];
		}
		return 0;
	}
	if (n != rows * m->n_outputs)
		goto bad_shape;
	for (i = 0; i < n; i++)
		out[i] = (double)res[i];
	return 0;
bad_shape:
	snprintf(err, errlen,
		 "xgboost returned %" PRIu64 " values for %zu "
		 "rows",
		 (uint64_t)n, rows);
	return -EIO;
}

/*
 * Accuracy and log loss for a classifier, RMSE and MAE otherwise, when
 * labels are given; always the row count and the mean prediction.
 */
static int xgb_metrics(void *state, const double *x, const double *labels,
		       size_t rows, size_t cols, struct buf *json, char *err,
		       size_t errlen)
{
	struct xgb *m = state;
	double *out, sum = 0, loss = 0, se = 0, ae = 0;
	size_t i, j, k = m->n_outputs, correct = 0, best;
	int ret;

	out = malloc(rows * k * sizeof(*out));
	if (!out)
		return -ENOMEM;
	ret = xgb_predict(state, x, rows, cols, out, err, errlen);
	if (ret < 0)
		goto done;
	for (i = 0; i < rows * k; i++)
		sum += out[i];
	ret = buf_printf(json, "{\"rows\": %zu, \"mean_prediction\": %.17g",
			 rows, rows ? sum / (double)(rows * k) : 0.0);
	if (ret == 0 && labels && m->is_classifier) {
		for (i = 0; i < rows; i++) {
			size_t y = (size_t)labels[i];
			double p;

			best = 0;
			for (j = 1; j < k; j++)
				if (out[i * k + j] > out[i * k + best])
					best = j;
			correct += best == y;
			p = y < k ? out[i * k + y] : 0;
			if (p < 1e-15)
				p = 1e-15;
			loss -= log(p);
		}
		ret = buf_printf(json,
				 ", \"accuracy\": %.17g, "
				 "\"log_loss\": %.17g",
				 (double)correct / (double)rows,
				 loss / (double)rows);
	} else if (ret == 0 && labels) {
		for (i = 0; i < rows; i++) {
			double d = out[i * k] - labels[i];

			se += d * d;
			ae += fabs(d);
		}
		ret = buf_printf(json, ", \"rmse\": %.17g, \"mae\": %.17g",
				 sqrt(se / (double)rows), ae / (double)rows);
	}
	if (ret == 0)
		ret = buf_puts(json, "}");
done:
	free(out);
	return ret;
}

const struct runtime_ops rt_xgboost_ops = {
    .name = "xgboost",
    .load = xgb_load,
    .predict = xgb_predict,
    .metrics = xgb_metrics,
    .free = xgb_free,
};

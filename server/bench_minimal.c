/*
 * bench_minimal - the baseline of scripts/bench-server: the least a
 * libmicrohttpd + XGBoost endpoint can do (parse one row, predict,
 * answer), with no protocol handling, metrics, registry or version swaps.
 * assetfs-server is measured against it on the same machine in the same
 * run. Not installed; not part of the server.
 *
 * Usage: assetfs-bench-minimal PORT MODEL_FILE THREADS [proxy]
 *
 * With "proxy", each thread keeps one proxy DMatrix for its predictions
 * (as assetfs-server does) instead of libxgboost making one per call: the
 * baseline that isolates the server's own overhead.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <signal.h>

#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <xgboost/c_api.h>

struct req {
	char buf[4096];
	size_t len;
};

static BoosterHandle booster;
static int use_proxy;
static __thread DMatrixHandle proxy;

static enum MHD_Result handle(void *cls, struct MHD_Connection *c,
			      const char *url, const char *method,
			      const char *version, const char *upload,
			      size_t *upload_size, void **con_cls)
{
	static const char conf[] =
	    "{\"type\": 0, \"training\": false, "
	    "\"iteration_begin\": 0, \"iteration_end\": 0, "
	    "\"strict_shape\": false, \"cache_id\": 0, \"missing\": NaN}";
	struct req *r = *con_cls;
	struct MHD_Response *resp;
	const bst_ulong *shape;
	bst_ulong dim;
	const float *out;
	float row[64];
	char arr[200], body[512];
	cJSON *j, *e;
	int n = 0, len, i;
	enum MHD_Result ret;

	if (!r) {
		r = calloc(1, sizeof(*r));
		*con_cls = r;
		return MHD_YES;
	}
	if (*upload_size) {
		size_t k = *upload_size;

		if (r->len + k >= sizeof(r->buf))
			return MHD_NO;
		memcpy(r->buf + r->len, upload, k);
		r->len += k;
		*upload_size = 0;
		return MHD_YES;
	}
	j = cJSON_ParseWithLength(r->buf, r->len);
	e = cJSON_GetObjectItem(j, "instances");
	e = e ? e->child : NULL;
	for (e = e ? e->child : NULL; e && n < 64; e = e->next)
		row[n++] = (float)e->valuedouble;
	cJSON_Delete(j);
	snprintf(arr, sizeof(arr),
		 "{\"data\": [%lu, true], \"shape\": [1, "
		 "%d], \"typestr\": \"<f4\", \"version\": 3}",
		 (unsigned long)(uintptr_t)row, n);
	if (use_proxy && !proxy)
		XGProxyDMatrixCreate(&proxy);
	if (XGBoosterPredictFromDense(booster, arr, conf, proxy, &shape, &dim,
				      &out) != 0)
		return MHD_NO;
	len = snprintf(body, sizeof(body), "{\"predictions\": [[");
	for (i = 0; i < (int)shape[dim - 1]; i++)
		len += snprintf(body + len, sizeof(body) - (size_t)len,
				i ? ", %.9g" : "%.9g", (double)out[i]);
	len += snprintf(body + len, sizeof(body) - (size_t)len, "]]}");
	resp = MHD_create_response_from_buffer((size_t)len, body,
					       MHD_RESPMEM_MUST_COPY);
	MHD_add_response_header(resp, "Content-Type", "application/json");
	ret = MHD_queue_response(c, 200, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void done(void *cls, struct MHD_Connection *c, void **con_cls,
		 enum MHD_RequestTerminationCode toe)
{
	free(*con_cls);
	*con_cls = NULL;
}

int main(int argc, char **argv)
{
	struct MHD_Daemon *d;
	sigset_t set;
	int sig;

	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: %s PORT MODEL THREADS [proxy]\n",
			argv[0]);
		return 2;
	}
	use_proxy = argc == 5 && strcmp(argv[4], "proxy") == 0;
	if (XGBoosterCreate(NULL, 0, &booster) ||
	    XGBoosterLoadModel(booster, argv[2]) ||
	    XGBoosterSetParam(booster, "nthread", "1")) {
		fprintf(stderr, "%s\n", XGBGetLastError());
		return 1;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	d = MHD_start_daemon(
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL,
	    (uint16_t)atoi(argv[1]), NULL, NULL, handle, NULL,
	    MHD_OPTION_THREAD_POOL_SIZE, (unsigned)atoi(argv[3]),
	    MHD_OPTION_NOTIFY_COMPLETED, done, NULL, MHD_OPTION_END);
	if (!d)
		return 1;
	sigwait(&set, &sig);
	MHD_stop_daemon(d);
	XGBoosterFree(booster);
	return 0;
}

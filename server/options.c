/*
 * options - getopt_long for the server and the batch command, model specs
 * and the models file.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/buf.h"
#include "common/fileutil.h"
#include "server/options.h"

#define CONFIG_MAX_BYTES (1u << 20)

const char options_usage[] =
    "Usage: assetfs-server [OPTIONS] --model "
    "NAME=SPEC[,runtime=R][,file=F]...\n"
    "       assetfs-server batch --model NAME=SPEC --input F.jsonl --output "
    "G.jsonl\n"
    "                            [--metrics-job]\n"
    "\n"
    "Serve models read from an assetfs mount (or any directory in its layout)\n"
    "over the Open Inference Protocol V2 (/v2/...), Seldon "
    "(/api/v1.0/predictions,\n"
    "/predict, /health/ping, /health/status) and TF Serving (/v1/models/...).\n"
    "\n"
    "Models:\n"
    "  --model NAME=SPEC[,runtime=R][,file=REL][,KEY=VALUE...]\n"
    "                         serve asset SPEC (name[:version][[sub/path]]) "
    "as\n"
    "                         NAME; repeatable; a partial or missing version\n"
    "                         follows the alias (or the newest version "
    "listed).\n"
    "                         R: xgboost, plugin, sklearn or python "
    "(default:\n"
    "                         from the files). Python models: class=MOD.CLS,\n"
    "                         replicas=N, timeout=SEC, max_memory=SIZE,\n"
    "                         max_batch_size=ROWS, max_batch_wait_us=US\n"
    "  --config FILE          models file: {\"models\": [{\"name\", "
    "\"asset\",\n"
    "                         \"runtime\", \"file\", \"config\"}]}\n"
    "  --assets-dir DIR       where assets are (default $MODELKIT_ASSETS_DIR)\n"
    "  --poll-interval SEC    how often floating specs are re-resolved (5)\n"
    "  --lazy                 load a model on its first request (also\n"
    "                         MODELKIT_LAZY_LOADING=1)\n"
    "  --versioning SYS       major_minor, simple_date or auto (default: "
    "auto,\n"
    "                         or MODELKIT_ASSETS_VERSIONING_SYSTEM)\n"
    "  --python PATH          interpreter of Python models without a\n"
    "                         requirements.txt (/usr/bin/python3)\n"
    "  --python-env-dir DIR   where environments for requirements.txt files\n"
    "                         are built (~/.cache/assetfs/python)\n"
    "  --python-wheelhouse DIR  install requirements from DIR only\n"
    "                         (pip --no-index --find-links DIR)\n"
    "\n"
    "Serving:\n"
    "  --http-port N          port to serve on, on every IPv4 address (8080)\n"
    "  --metrics-port N       serve /metrics on its own port, on the same\n"
    "                         addresses (default: on the http port)\n"
    "  --workers N            processes sharing the port (1; at most 16)\n"
    "  --threads N            threads per worker; 0 = one per connection\n"
    "                         (default: number of CPUs)\n"
    "  --single-threaded      one thread serves every connection (model\n"
    "                         polling keeps its own thread)\n"
    "  --max-requests N       replace a worker after N requests (0 = never)\n"
    "  --max-requests-jitter N  add up to N to each worker's max-requests\n"
    "  --keepalive SEC        idle keep-alive timeout (5; 0: idle connections\n"
    "                         get --request-timeout instead)\n"
    "  --request-timeout SEC  time allowed to receive a request, however\n"
    "                         slowly it trickles in (10; 0: none)\n"
    "  --max-body BYTES       largest request body (33554432)\n"
    "  --max-connections N    open connections per worker (1024)\n"
    "  --max-json-depth N     deepest JSON nesting accepted (32)\n"
    "  --access-log           one line per request on stderr\n"
    "  --log-level LEVEL      error, warn, info (default) or debug\n"
    "  --metrics-path PATH    where /metrics is served (/metrics)\n"
    "  --filter-metrics-access-logs  no access-log line for the metrics "
    "path\n"
    "  --pidfile FILE         write the server's pid there (removed at "
    "exit)\n"
    "\n"
    "Batch:\n"
    "  --input FILE           JSON Lines: a row [..], rows [[..]], or\n"
    "                         {\"features\": [..], \"label\": y}\n"
    "  --output FILE          one JSON line per input line\n"
    "  --metrics-job          score all records at once and write the model's\n"
    "                         metrics (xgboost: accuracy and log loss, or "
    "RMSE\n"
    "                         and MAE, when records carry labels)\n"
    "\n"
    "Environment: MODELKIT_ASSETS_DIR, MODELKIT_LAZY_LOADING,\n"
    "MODELKIT_CACHE_PROVIDER (native|redis), MODELKIT_CACHE_MAX_SIZE,\n"
    "MODELKIT_CACHE_HOST, MODELKIT_CACHE_PORT, ASSETFS_LOG.\n"
    "SIGTERM: stop accepting, finish requests in flight, exit 0.\n"
    "\n";

static char *dupn(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

static void model_opt_clear(struct model_opt *mo)
{
	free(mo->name);
	free(mo->spec);
	free(mo->runtime);
	free(mo->file);
	free(mo->config);
	memset(mo, 0, sizeof(*mo));
}

static const char *const model_keys[] = {OPTIONS_MODEL_KEYS, NULL};

/* The model key @kv (n bytes, "key=..." ) starts with, or NULL. */
static const char *model_key(const char *kv, size_t n)
{
	size_t i, k;

	for (i = 0; model_keys[i]; i++) {
		k = strlen(model_keys[i]);
		if (n > k && kv[k] == '=' && strncmp(kv, model_keys[i], k) == 0)
			return model_keys[i];
	}
	return NULL;
}

/* Set @key to @item (consumed) in the JSON object text *@config. */
static int config_set(char **config, const char *key, cJSON *item)
{
	cJSON *j = *config ? cJSON_Parse(*config) : cJSON_CreateObject();
	char *s = NULL;

	if (!item || !cJSON_IsObject(j)) {
		cJSON_Delete(item);
		cJSON_Delete(j);
		return item ? -EINVAL : -ENOMEM;
	}
	cJSON_DeleteItemFromObjectCaseSensitive(j, key);
	cJSON_AddItemToObject(j, key, item);
	s = cJSON_PrintUnformatted(j);
	cJSON_Delete(j);
	if (!s)
		return -ENOMEM;
	free(*config);
	*config = s;
	return 0;
}

static int default_name(struct model_opt *mo)
{
	const char *s = mo->spec, *slash;
	size_t n;

	n = strcspn(s, ":[");
	slash = memrchr(s, '/', n);
	if (slash) {
		n -= (size_t)(slash + 1 - s);
		s = slash + 1;
	}
	mo->name = dupn(s, n);
	return mo->name ? 0 : -ENOMEM;
}

int options_parse_model(const char *text, struct model_opt *mo, char *err,
			size_t errlen)
{
	const char *comma, *eq, *p;
	size_t n;
	int ret = -ENOMEM;

	memset(mo, 0, sizeof(*mo));
	comma = strchr(text, ',');
	n = comma ? (size_t)(comma - text) : strlen(text);
	eq = memchr(text, '=', n);
	if (eq) {
		mo->name = dupn(text, (size_t)(eq - text));
		mo->spec = dupn(eq + 1, n - (size_t)(eq + 1 - text));
	} else {
		mo->spec = dupn(text, n);
	}
	if (!mo->spec || (eq && !mo->name))
		goto fail;
	if (!mo->spec[0]) {
		snprintf(err, errlen, "--model '%s': no asset spec", text);
		ret = -EINVAL;
		goto fail;
	}
	if (!eq && default_name(mo) < 0)
		goto fail;
	for (p = comma; p; p = comma) {
		const char *kv = p + 1, *key;
		char **dst;

		comma = strchr(kv, ',');
		n = comma ? (size_t)(comma - kv) : strlen(kv);
		if (strncmp(kv, "runtime=", 8) == 0) {
			dst = &mo->runtime;
			kv += 8;
			n -= 8;
		} else if (strncmp(kv, "file=", 5) == 0) {
			dst = &mo->file;
			kv += 5;
			n -= 5;
		} else if ((key = model_key(kv, n))) {
			char *val = dupn(kv + strlen(key) + 1,
					 n - strlen(key) - 1);

			ret = val ? config_set(&mo->config, key,
					       cJSON_CreateString(val))
				  : -ENOMEM;
			free(val);
			if (ret < 0)
				goto fail;
			continue;
		} else {
			snprintf(err, errlen,
				 "--model '%s': unknown option "
				 "'%.*s' (runtime=, file=, or a Python "
				 "model's class=, replicas=, timeout=, "
				 "max_memory=, max_batch_size=, "
				 "max_batch_wait_us=)",
				 text, (int)n, kv);
			ret = -EINVAL;
			goto fail;
		}
		free(*dst);
		*dst = dupn(kv, n);
		if (!*dst)
			goto fail;
	}
	return 0;
fail:
	model_opt_clear(mo);
	return ret;
}

static char *json_dup_str(const cJSON *o, const char *key)
{
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(x) ? strdup(x->valuestring) : NULL;
}

static int config_model(const char *name, const cJSON *e, struct server_opts *o,
			char *err, size_t errlen)
{
	struct model_opt *mo;
	const cJSON *conf;
	size_t i;

	if (o->n_models >= OPTIONS_MAX_MODELS) {
		snprintf(err, errlen, "at most %d models", OPTIONS_MAX_MODELS);
		return -E2BIG;
	}
	mo = &o->models[o->n_models];
	memset(mo, 0, sizeof(*mo));
	mo->name = name ? strdup(name) : json_dup_str(e, "name");
	mo->spec = json_dup_str(e, "asset");
	if (!mo->spec)
		mo->spec = json_dup_str(e, "spec");
	mo->runtime = json_dup_str(e, "runtime");
	mo->file = json_dup_str(e, "file");
	conf = cJSON_GetObjectItemCaseSensitive(e, "config");
	if (conf)
		mo->config = cJSON_PrintUnformatted(conf);
	for (i = 0; model_keys[i]; i++) {
		conf = cJSON_GetObjectItemCaseSensitive(e, model_keys[i]);
		if (conf && config_set(&mo->config, model_keys[i],
				       cJSON_Duplicate(conf, true)) < 0) {
			snprintf(err, errlen,
				 "models file: model '%s': \"config\" must be "
				 "an object",
				 mo->name ? mo->name : "?");
			model_opt_clear(mo);
			return -EINVAL;
		}
	}
	if (!mo->spec) {
		snprintf(err, errlen,
			 "models file: model '%s' has no "
			 "\"asset\"",
			 mo->name ? mo->name : "?");
		model_opt_clear(mo);
		return -EINVAL;
	}
	if (!mo->name && default_name(mo) < 0) {
		model_opt_clear(mo);
		return -ENOMEM;
	}
	o->n_models++;
	return 0;
}

int options_read_config(const char *path, struct server_opts *o, char *err,
			size_t errlen)
{
	struct buf b;
	const cJSON *list, *e;
	cJSON *j = NULL;
	int ret;

	buf_init(&b, CONFIG_MAX_BYTES);
	ret = file_read_capped(path, CONFIG_MAX_BYTES, &b);
	if (ret < 0) {
		snprintf(err, errlen, "cannot read %s: %s", path,
			 strerror(-ret));
		goto out;
	}
	j = cJSON_ParseWithLength(b.data ? b.data : "", b.len);
	if (!cJSON_IsObject(j)) {
		snprintf(err, errlen, "%s: not a JSON object", path);
		ret = -EINVAL;
		goto out;
	}
	list = cJSON_GetObjectItemCaseSensitive(j, "models");
	if (cJSON_IsArray(list)) {
		cJSON_ArrayForEach(e, list)
		{
			ret = config_model(NULL, e, o, err, errlen);
			if (ret < 0)
				goto out;
		}
	} else {
		cJSON_ArrayForEach(e, j)
		{
			if (!cJSON_IsObject(e))
				continue;
			ret = config_model(e->string, e, o, err, errlen);
			if (ret < 0)
				goto out;
		}
	}
	ret = 0;
out:
	cJSON_Delete(j);
	buf_free(&b);
	return ret;
}

static int num(const char *opt, const char *s, double lo, double hi,
	       double *out, char *err, size_t errlen)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || v < lo || v > hi) {
		snprintf(err, errlen, "%s: '%s' is not a number from %g to %g",
			 opt, s, lo, hi);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

enum {
	OPT_MODEL = 256,
	OPT_CONFIG,
	OPT_ASSETS,
	OPT_POLL,
	OPT_LAZY,
	OPT_VERSIONING,
	OPT_PORT,
	OPT_MPORT,
	OPT_WORKERS,
	OPT_THREADS,
	OPT_SINGLE,
	OPT_MAXREQ,
	OPT_JITTER,
	OPT_KEEPALIVE,
	OPT_RTIMEOUT,
	OPT_MAXBODY,
	OPT_MAXCONN,
	OPT_DEPTH,
	OPT_ACCESS,
	OPT_LOGLEVEL,
	OPT_INPUT,
	OPT_OUTPUT,
	OPT_MJOB,
	OPT_HELP,
	OPT_VERSION,
	OPT_PYTHON,
	OPT_PYENVDIR,
	OPT_WHEELHOUSE,
	OPT_MPATH,
	OPT_FILTERLOG,
	OPT_PIDFILE,
	OPT_GPORT,
	OPT_GWORKERS,
	OPT_GCERT,
	OPT_GKEY,
	OPT_GMAXMSG,
	OPT_GSTREAMS,
	OPT_GKEEPALIVE,
	OPT_MODELURI,
};

static const struct option long_opts[] = {
    {"model", required_argument, NULL, OPT_MODEL},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"assets-dir", required_argument, NULL, OPT_ASSETS},
    {"poll-interval", required_argument, NULL, OPT_POLL},
    {"lazy", no_argument, NULL, OPT_LAZY},
    {"versioning", required_argument, NULL, OPT_VERSIONING},
    {"http-port", required_argument, NULL, OPT_PORT},
    {"metrics-port", required_argument, NULL, OPT_MPORT},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"single-threaded", no_argument, NULL, OPT_SINGLE},
    {"max-requests", required_argument, NULL, OPT_MAXREQ},
    {"max-requests-jitter", required_argument, NULL, OPT_JITTER},
    {"keepalive", required_argument, NULL, OPT_KEEPALIVE},
    {"request-timeout", required_argument, NULL, OPT_RTIMEOUT},
    {"max-body", required_argument, NULL, OPT_MAXBODY},
    {"max-connections", required_argument, NULL, OPT_MAXCONN},
    {"max-json-depth", required_argument, NULL, OPT_DEPTH},
    {"access-log", no_argument, NULL, OPT_ACCESS},
    {"log-level", required_argument, NULL, OPT_LOGLEVEL},
    {"input", required_argument, NULL, OPT_INPUT},
    {"output", required_argument, NULL, OPT_OUTPUT},
    {"metrics-job", no_argument, NULL, OPT_MJOB},
    {"python", required_argument, NULL, OPT_PYTHON},
    {"python-env-dir", required_argument, NULL, OPT_PYENVDIR},
    {"python-wheelhouse", required_argument, NULL, OPT_WHEELHOUSE},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {"metrics-path", required_argument, NULL, OPT_MPATH},
    {"filter-metrics-access-logs", no_argument, NULL, OPT_FILTERLOG},
    {"pidfile", required_argument, NULL, OPT_PIDFILE},
    {"grpc-port", required_argument, NULL, OPT_GPORT},
    {"grpc-workers", required_argument, NULL, OPT_GWORKERS},
    {"grpc-tls-cert", required_argument, NULL, OPT_GCERT},
    {"grpc-tls-key", required_argument, NULL, OPT_GKEY},
    {"grpc-max-message", required_argument, NULL, OPT_GMAXMSG},
    {"grpc-max-streams", required_argument, NULL, OPT_GSTREAMS},
    {"grpc-keepalive", required_argument, NULL, OPT_GKEEPALIVE},
    {"model-uri", required_argument, NULL, OPT_MODELURI},
    {NULL, 0, NULL, 0},
};

int options_parse(int argc, char **argv, struct server_opts *o, char *err,
		  size_t errlen)
{
	const char *lazy = getenv("MODELKIT_LAZY_LOADING");
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	double v = 0;
	int c, ret;

	memset(o, 0, sizeof(*o));
	o->assets_dir = getenv("MODELKIT_ASSETS_DIR");
	o->http_port = 8080;
	o->workers = 1;
	o->threads = ncpu > 0 ? (unsigned)ncpu : 2;
	o->keepalive_s = 5;
	o->request_timeout_ms = 10000;
	o->max_body = 32u << 20;
	o->max_connections = 1024;
	o->max_json_depth = 32;
	o->poll_ms = 5000;
	o->lazy =
	    lazy && (strcmp(lazy, "1") == 0 || strcasecmp(lazy, "true") == 0 ||
		     strcasecmp(lazy, "yes") == 0);
	o->grpc_workers = -1;
	o->grpc_max_streams = 1024;
	o->grpc_keepalive_s = 60;
	ret = options_seldon_env(o, err, errlen);
	if (ret < 0)
		return ret;
	if (argc > 1 && strcmp(argv[1], "batch") == 0) {
		o->batch = true;
		argc--;
		argv++;
	}
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
		ret = 0;
		switch (c) {
		case OPT_MODEL:
			if (o->n_models >= OPTIONS_MAX_MODELS) {
				snprintf(err, errlen, "at most %d models",
					 OPTIONS_MAX_MODELS);
				return -EINVAL;
			}
			ret = options_parse_model(
			    optarg, &o->models[o->n_models], err, errlen);
			if (ret == 0)
				o->n_models++;
			break;
		case OPT_CONFIG:
			ret = options_read_config(optarg, o, err, errlen);
			break;
		case OPT_ASSETS:
			o->assets_dir = optarg;
			break;
		case OPT_POLL:
			ret = num("--poll-interval", optarg, 0, 86400, &v, err,
				  errlen);
			o->poll_ms = (int)(v * 1000);
			break;
		case OPT_LAZY:
			o->lazy = true;
			break;
		case OPT_VERSIONING:
			o->versioning = optarg;
			break;
		case OPT_PORT:
			ret = num("--http-port", optarg, 0, 65535, &v, err,
				  errlen);
			o->http_port = (int)v;
			break;
		case OPT_MPORT:
			ret = num("--metrics-port", optarg, 0, 65535, &v, err,
				  errlen);
			o->metrics_port = (int)v;
			break;
		case OPT_WORKERS:
			ret = num("--workers", optarg, 1, 16, &v, err, errlen);
			o->workers = (unsigned)v;
			break;
		case OPT_THREADS:
			ret =
			    num("--threads", optarg, 0, 1024, &v, err, errlen);
			o->threads = (unsigned)v;
			break;
		case OPT_SINGLE:
			o->single_threaded = true;
			break;
		case OPT_MAXREQ:
			ret = num("--max-requests", optarg, 0, 1e15, &v, err,
				  errlen);
			o->max_requests = (unsigned long)v;
			break;
		case OPT_JITTER:
			ret = num("--max-requests-jitter", optarg, 0, 1e15, &v,
				  err, errlen);
			o->max_requests_jitter = (unsigned long)v;
			break;
		case OPT_KEEPALIVE:
			ret = num("--keepalive", optarg, 0, 86400, &v, err,
				  errlen);
			o->keepalive_s = (unsigned)v;
			break;
		case OPT_RTIMEOUT:
			ret = num("--request-timeout", optarg, 0, 86400, &v,
				  err, errlen);
			o->request_timeout_ms = (unsigned)(v * 1000);
			break;
		case OPT_MAXBODY:
			ret =
			    num("--max-body", optarg, 1, 1e12, &v, err, errlen);
			o->max_body = (size_t)v;
			break;
		case OPT_MAXCONN:
			ret = num("--max-connections", optarg, 1, 1e6, &v, err,
				  errlen);
			o->max_connections = (unsigned)v;
			break;
		case OPT_DEPTH:
			ret = num("--max-json-depth", optarg, 2, 1000, &v, err,
				  errlen);
			o->max_json_depth = (int)v;
			break;
		case OPT_ACCESS:
			o->access_log = true;
			break;
		case OPT_LOGLEVEL:
			o->log_level = optarg;
			break;
		case OPT_INPUT:
			o->input = optarg;
			break;
		case OPT_OUTPUT:
			o->output = optarg;
			break;
		case OPT_MJOB:
			o->metrics_job = true;
			break;
		case OPT_PYTHON:
			o->python = optarg;
			break;
		case OPT_PYENVDIR:
			o->python_env_dir = optarg;
			break;
		case OPT_WHEELHOUSE:
			o->python_wheelhouse = optarg;
			break;
		case OPT_MPATH:
			if (optarg[0] != '/') {
				snprintf(err, errlen,
					 "--metrics-path: '%s' does not start "
					 "with /",
					 optarg);
				return -EINVAL;
			}
			o->metrics_path = optarg;
			break;
		case OPT_FILTERLOG:
			o->filter_metrics_logs = true;
			break;
		case OPT_PIDFILE:
			o->pidfile = optarg;
			break;
		case OPT_GPORT:
			ret = num("--grpc-port", optarg, 0, 65535, &v, err,
				  errlen);
			o->grpc_port = (int)v;
			break;
		case OPT_GWORKERS:
			ret = num("--grpc-workers", optarg, 0, 16, &v, err,
				  errlen);
			o->grpc_workers = (int)v;
			break;
		case OPT_GCERT:
			o->grpc_tls_cert = optarg;
			break;
		case OPT_GKEY:
			o->grpc_tls_key = optarg;
			break;
		case OPT_GMAXMSG:
			ret = num("--grpc-max-message", optarg, 64, 2147483647,
				  &v, err, errlen);
			o->grpc_max_message = (size_t)v;
			break;
		case OPT_GSTREAMS:
			ret = num("--grpc-max-streams", optarg, 1, 1e6, &v, err,
				  errlen);
			o->grpc_max_streams = (unsigned)v;
			break;
		case OPT_GKEEPALIVE:
			ret = num("--grpc-keepalive", optarg, 1, 86400, &v,
				  err, errlen);
			o->grpc_keepalive_s = (unsigned)v;
			break;
		case OPT_MODELURI:
			o->model_uri = optarg;
			break;
		case 'h':
		case OPT_HELP:
			fputs(options_usage, stdout);
			fputs(options_grpc_usage, stdout);
			fputs(options_seldon_usage, stdout);
			return 1;
		case OPT_VERSION:
			printf("assetfs-server %s\n", ASSETFS_VERSION);
			return 1;
		default:
			snprintf(err, errlen,
				 "unknown or incomplete option "
				 "'%s' (see --help)",
				 argv[optind - 1]);
			return -EINVAL;
		}
		if (ret < 0)
			return ret;
	}
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument '%s' (see --help)",
			 argv[optind]);
		return -EINVAL;
	}
	ret = options_seldon_model(o, err, errlen);
	if (ret < 0)
		return ret;
	if (o->n_models == 0) {
		snprintf(err, errlen,
			 "no model given: use --model NAME=SPEC, "
			 "--config FILE or --model-uri PATH");
		return -EINVAL;
	}
	if (!o->assets_dir || !o->assets_dir[0]) {
		snprintf(err, errlen,
			 "no assets dir: use --assets-dir or set "
			 "MODELKIT_ASSETS_DIR");
		return -EINVAL;
	}
	if (o->batch && (!o->input || !o->output)) {
		snprintf(err, errlen, "batch needs --input and --output");
		return -EINVAL;
	}
	return 0;
}

void options_free(struct server_opts *o)
{
	size_t i;

	for (i = 0; i < o->n_models; i++)
		model_opt_clear(&o->models[i]);
	o->n_models = 0;
	free(o->model_uri_owned);
	free(o->assets_dir_owned);
	o->model_uri_owned = o->assets_dir_owned = NULL;
}

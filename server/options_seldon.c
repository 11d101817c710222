/*
 * options_seldon - Seldon Core's names for the server's settings, so a
 * SeldonDeployment's environment works unchanged: each variable sets the
 * default of the matching assetfs option (the command line still wins),
 * and PREDICTIVE_UNIT_PARAMETERS' model_uri (or --model-uri) is served
 * as model PREDICTIVE_UNIT_ID, as Seldon's prepackaged servers do.
 *
 * Pure parsing: nothing is opened. Errors: 0 or -EINVAL with a message
 * naming the variable.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "server/options.h"

const char options_grpc_usage[] =
    "gRPC (inference.GRPCInferenceService and seldon.protos Predict):\n"
    "  --grpc-port N          serve gRPC on port N (default 0: no gRPC)\n"
    "  --grpc-workers N       how many of the workers serve gRPC (default:\n"
    "                         all; 0: none)\n"
    "  --grpc-tls-cert FILE, --grpc-tls-key FILE  serve gRPC over TLS (PEM)\n"
    "  --grpc-max-message BYTES  largest message in or out (default: "
    "--max-body);\n"
    "                         larger ones get RESOURCE_EXHAUSTED\n"
    "  --grpc-max-streams N   concurrent streams per HTTP/2 connection "
    "(1024)\n"
    "  --grpc-keepalive SEC   HTTP/2 PING an idle connection every SEC, "
    "drop\n"
    "                         it if unanswered for 20 s (60)\n"
    "  --model-uri PATH       serve a version or alias directory (e.g.\n"
    "                         /assets/fraud/xgb/1.latest) as model\n"
    "                         $PREDICTIVE_UNIT_ID (default: model); an "
    "alias\n"
    "                         is followed as --model follows it\n"
    "\n";

const char options_seldon_usage[] =
    "Seldon Core's names (environment; the flags above win):\n"
    "  Seldon name                        assetfs name          default\n"
    "  PREDICTIVE_UNIT_HTTP_SERVICE_PORT  --http-port           8080\n"
    "  PREDICTIVE_UNIT_GRPC_SERVICE_PORT  --grpc-port           0 (no "
    "gRPC)\n"
    "  PREDICTIVE_UNIT_METRICS_SERVICE_PORT --metrics-port      the http "
    "port\n"
    "  PREDICTIVE_UNIT_METRICS_ENDPOINT   --metrics-path        /metrics\n"
    "  PREDICTIVE_UNIT_PARAMETERS         --model-uri           (model_uri "
    "entry)\n"
    "  PREDICTIVE_UNIT_ID                 --model-uri's name    model\n"
    "  GUNICORN_WORKERS                   --workers             1\n"
    "  GUNICORN_THREADS                   --threads             number of "
    "CPUs\n"
    "  GUNICORN_MAX_REQUESTS              --max-requests        0 (never)\n"
    "  GUNICORN_MAX_REQUESTS_JITTER       --max-requests-jitter 0\n"
    "  GUNICORN_KEEPALIVE                 --keepalive           5\n"
    "  GUNICORN_ACCESS_LOG                --access-log          off\n"
    "  FLASK_SINGLE_THREADED              --single-threaded     off\n"
    "  LOG_LEVEL_ENV                      --log-level           info\n"
    "  SELDON_DEBUG                       --log-level debug     off "
    "(there is\n"
    "                                     no Flask debug server here)\n"
    "  FILTER_METRICS_ACCESS_LOGS         --filter-metrics-access-logs "
    "off\n"
    "  PAYLOAD_PASSTHROUGH                (none)                accepted; "
    "no\n"
    "                                     effect: requests always go "
    "through\n"
    "                                     the protocol parsers before a\n"
    "                                     runtime sees them (a warning "
    "is\n"
    "                                     logged)\n"
    "  GRPC_WORKERS                       --grpc-workers        all "
    "workers\n"
    "  --pidfile FILE                     --pidfile             none\n";

static int env_bool(const char *name, bool *out, char *err, size_t errlen)
{
	const char *v = getenv(name);

	if (!v)
		return 0;
	if (!*v || strcmp(v, "0") == 0 || strcasecmp(v, "false") == 0 ||
	    strcasecmp(v, "no") == 0 || strcasecmp(v, "off") == 0) {
		*out = false;
		return 0;
	}
	if (strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0 ||
	    strcasecmp(v, "yes") == 0 || strcasecmp(v, "on") == 0) {
		*out = true;
		return 0;
	}
	snprintf(err, errlen, "%s: '%s' is not true or false", name, v);
	return -EINVAL;
}

static int env_num(const char *name, double lo, double hi, double *out,
		   bool *set, char *err, size_t errlen)
{
	const char *v = getenv(name);
	char *end;
	double d;

	*set = false;
	if (!v || !*v)
		return 0;
	errno = 0;
	d = strtod(v, &end);
	if (errno || end == v || *end || d < lo || d > hi || d != (long)d) {
		snprintf(err, errlen, "%s: '%s' is not a whole number from %g "
				      "to %g",
			 name, v, lo, hi);
		return -EINVAL;
	}
	*out = d;
	*set = true;
	return 0;
}

static int log_level_env(struct server_opts *o, char *err, size_t errlen)
{
	static const char *const names[][2] = {
	    {"DEBUG", "debug"}, {"INFO", "info"},   {"WARNING", "warn"},
	    {"WARN", "warn"},	{"ERROR", "error"}, {"CRITICAL", "error"},
	};
	const char *v = getenv("LOG_LEVEL_ENV");
	bool debug = false;
	size_t i;

	if (env_bool("SELDON_DEBUG", &debug, err, errlen) < 0)
		return -EINVAL;
	if (debug)
		o->log_level = "debug";
	if (!v || !*v)
		return 0;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcasecmp(v, names[i][0]) == 0) {
			o->log_level = names[i][1];
			return 0;
		}
	}
	snprintf(err, errlen,
		 "LOG_LEVEL_ENV: '%s' is not DEBUG, INFO, WARNING or ERROR", v);
	return -EINVAL;
}

/* The "model_uri" entry of PREDICTIVE_UNIT_PARAMETERS, if any. */
static int unit_parameters(struct server_opts *o, char *err, size_t errlen)
{
	const char *v = getenv("PREDICTIVE_UNIT_PARAMETERS");
	const cJSON *e, *name, *value;
	cJSON *j;
	int ret = 0;

	if (!v || !*v)
		return 0;
	j = cJSON_Parse(v);
	if (!cJSON_IsArray(j)) {
		snprintf(err, errlen,
			 "PREDICTIVE_UNIT_PARAMETERS: not a JSON array of "
			 "{\"name\", \"value\", \"type\"}");
		ret = -EINVAL;
		goto out;
	}
	cJSON_ArrayForEach(e, j)
	{
		name = cJSON_GetObjectItemCaseSensitive(e, "name");
		value = cJSON_GetObjectItemCaseSensitive(e, "value");
		if (!cJSON_IsString(name) ||
		    strcmp(name->valuestring, "model_uri") != 0)
			continue; /* other parameters belong to other servers */
		if (!cJSON_IsString(value) || !value->valuestring[0]) {
			snprintf(err, errlen,
				 "PREDICTIVE_UNIT_PARAMETERS: model_uri needs "
				 "a string value");
			ret = -EINVAL;
			goto out;
		}
		free(o->model_uri_owned);
		o->model_uri_owned = strdup(value->valuestring);
		if (!o->model_uri_owned) {
			ret = -ENOMEM;
			goto out;
		}
		o->model_uri = o->model_uri_owned;
	}
out:
	cJSON_Delete(j);
	return ret;
}

int options_seldon_env(struct server_opts *o, char *err, size_t errlen)
{
	static const struct {
		const char *name;
		double lo, hi;
		int which;
	} nums[] = {
	    {"PREDICTIVE_UNIT_HTTP_SERVICE_PORT", 1, 65535, 0},
	    {"PREDICTIVE_UNIT_GRPC_SERVICE_PORT", 0, 65535, 1},
	    {"PREDICTIVE_UNIT_METRICS_SERVICE_PORT", 0, 65535, 2},
	    {"GUNICORN_WORKERS", 1, 16, 3},
	    {"GUNICORN_THREADS", 0, 1024, 4},
	    {"GUNICORN_MAX_REQUESTS", 0, 1e15, 5},
	    {"GUNICORN_MAX_REQUESTS_JITTER", 0, 1e15, 6},
	    {"GUNICORN_KEEPALIVE", 0, 86400, 7},
	    {"GRPC_WORKERS", 0, 16, 8},
	};
	const char *p;
	double v = 0;
	bool set;
	size_t i;

	for (i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		if (env_num(nums[i].name, nums[i].lo, nums[i].hi, &v, &set, err,
			    errlen) < 0)
			return -EINVAL;
		if (!set)
			continue;
		switch (nums[i].which) {
		case 0:
			o->http_port = (int)v;
			break;
		case 1:
			o->grpc_port = (int)v;
			break;
		case 2:
			o->metrics_port = (int)v;
			break;
		case 3:
			o->workers = (unsigned)v;
			break;
		case 4:
			o->threads = (unsigned)v;
			break;
		case 5:
			o->max_requests = (unsigned long)v;
			break;
		case 6:
			o->max_requests_jitter = (unsigned long)v;
			break;
		case 7:
			o->keepalive_s = (unsigned)v;
			break;
		case 8:
			o->grpc_workers = (int)v;
			break;
		}
	}
	p = getenv("PREDICTIVE_UNIT_METRICS_ENDPOINT");
	if (p && *p) {
		if (p[0] != '/') {
			snprintf(err, errlen,
				 "PREDICTIVE_UNIT_METRICS_ENDPOINT: '%s' is "
				 "not a path starting with /",
				 p);
			return -EINVAL;
		}
		o->metrics_path = p;
	}
	p = getenv("PREDICTIVE_UNIT_ID");
	if (p && *p)
		o->unit_id = p;
	if (env_bool("GUNICORN_ACCESS_LOG", &o->access_log, err, errlen) < 0 ||
	    env_bool("FLASK_SINGLE_THREADED", &o->single_threaded, err,
		     errlen) < 0 ||
	    env_bool("FILTER_METRICS_ACCESS_LOGS", &o->filter_metrics_logs,
		     err, errlen) < 0 ||
	    env_bool("PAYLOAD_PASSTHROUGH", &o->payload_passthrough, err,
		     errlen) < 0 ||
	    log_level_env(o, err, errlen) < 0)
		return -EINVAL;
	return unit_parameters(o, err, errlen);
}

static char *join(const char *a, const char *sep, const char *b)
{
	size_t n = strlen(a) + strlen(sep) + strlen(b) + 1;
	char *s = malloc(n);

	if (s)
		snprintf(s, n, "%s%s%s", a, sep, b);
	return s;
}

int options_seldon_model(struct server_opts *o, char *err, size_t errlen)
{
	char *path = NULL, *last, *asset, *name = NULL, *spec = NULL;
	const char *ver;
	struct model_opt *mo;
	size_t n, ad;
	int ret = -EINVAL;

	if (!o->model_uri)
		return 0;
	if (o->n_models >= OPTIONS_MAX_MODELS) {
		snprintf(err, errlen, "at most %d models", OPTIONS_MAX_MODELS);
		return -EINVAL;
	}
	path = strdup(o->model_uri);
	if (!path)
		return -ENOMEM;
	if (strncmp(path, "file://", 7) == 0)
		memmove(path, path + 7, strlen(path + 7) + 1);
	n = strlen(path);
	while (n > 1 && path[n - 1] == '/')
		path[--n] = '\0';
	last = strrchr(path, '/');
	if (path[0] != '/' || !last || last == path || strstr(path, "://")) {
		snprintf(err, errlen,
			 "model_uri '%s': not a local path to a version or "
			 "alias directory (ROOT/NAME/VERSION, as an assetfs "
			 "mount shows it)",
			 o->model_uri);
		goto out;
	}
	*last = '\0';
	ver = last + 1; /* "1.latest", "latest" or a version */
	asset = strrchr(path, '/');
	ad = o->assets_dir ? strlen(o->assets_dir) : 0;
	while (ad > 1 && o->assets_dir[ad - 1] == '/')
		ad--;
	if (ad && strncmp(path, o->assets_dir, ad) == 0 && path[ad] == '/') {
		name = strdup(path + ad + 1); /* NAME may hold '/' */
	} else if (!o->assets_dir || !o->n_models) {
		if (!asset || asset == path) {
			snprintf(err, errlen,
				 "model_uri '%s': no assets root above its "
				 "asset directory",
				 o->model_uri);
			goto out;
		}
		*asset = '\0';
		free(o->assets_dir_owned);
		o->assets_dir_owned = strdup(path);
		o->assets_dir = o->assets_dir_owned;
		name = strdup(asset + 1);
	} else {
		snprintf(err, errlen,
			 "model_uri '%s' is not under --assets-dir %s, which "
			 "the other models use",
			 o->model_uri, o->assets_dir);
		goto out;
	}
	if (!name || !o->assets_dir) {
		ret = -ENOMEM;
		goto out;
	}
	/* an alias floats as --model's partial specs do */
	n = strlen(ver);
	if (strcmp(ver, "latest") == 0)
		spec = strdup(name);
	else if (n > 7 && strcmp(ver + n - 7, ".latest") == 0) {
		spec = join(name, ":", ver);
		if (spec)
			spec[strlen(spec) - 7] = '\0';
	} else
		spec = join(name, ":", ver);
	if (!spec) {
		ret = -ENOMEM;
		goto out;
	}
	mo = &o->models[o->n_models];
	memset(mo, 0, sizeof(*mo));
	mo->name = strdup(o->unit_id ? o->unit_id : "model");
	mo->spec = spec;
	spec = NULL;
	if (!mo->name) {
		free(mo->spec);
		ret = -ENOMEM;
		goto out;
	}
	o->n_models++;
	ret = 0;
out:
	free(spec);
	free(name);
	free(path);
	return ret;
}

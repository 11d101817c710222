/*
 * rt_python_conf - the per-model limits of the Python runtimes and the
 * location of the worker program.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "server/rt_python.h"

#ifndef ASSETFS_PY_WORKER
#define ASSETFS_PY_WORKER "/usr/local/share/assetfs/assetfs_model_worker.py"
#endif

/*
 * @key of @j as a number (a JSON number or a numeric string, with a
 * K/M/G/T suffix when @sizes) within [@lo, @hi]; @def when absent.
 */
static int num(const cJSON *j, const char *key, double lo, double hi,
	       bool sizes, double def, double *out, char *err, size_t errlen)
{
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, key);
	double v, mul = 1;
	char *end;

	*out = def;
	if (!x || cJSON_IsNull(x))
		return 0;
	if (cJSON_IsNumber(x)) {
		v = x->valuedouble;
	} else if (cJSON_IsString(x) && x->valuestring[0]) {
		errno = 0;
		v = strtod(x->valuestring, &end);
		if (sizes && *end) {
			switch (*end == 0 ? 0 : (*end | 0x20)) {
			case 'k':
				mul = 1024.0;
				break;
			case 'm':
				mul = 1024.0 * 1024;
				break;
			case 'g':
				mul = 1024.0 * 1024 * 1024;
				break;
			case 't':
				mul = 1024.0 * 1024 * 1024 * 1024;
				break;
			default:
				mul = 0;
			}
			if (mul) {
				end++;
				if ((*end | 0x20) == 'i')
					end++;
				if ((*end | 0x20) == 'b')
					end++;
			}
		}
		if (errno || end == x->valuestring || *end || !mul)
			goto bad;
		v *= mul;
	} else {
		goto bad;
	}
	if (!isfinite(v) || v < lo || v > hi)
		goto bad;
	*out = v;
	return 0;
bad:
	snprintf(err, errlen, "%s: expected a number from %g to %g%s", key, lo,
		 hi, sizes ? " (or with a K, M, G or T suffix)" : "");
	return -EINVAL;
}

int pyrt_conf_parse(const char *config, struct pyrt_conf *c, char *err,
		    size_t errlen)
{
	cJSON *j = NULL;
	double v;
	int ret = 0;

	memset(c, 0, sizeof(*c));
	if (config) {
		j = cJSON_Parse(config);
		if (!cJSON_IsObject(j)) {
			snprintf(err, errlen, "the model config is not a JSON "
					      "object");
			cJSON_Delete(j);
			return -EINVAL;
		}
	}
	ret = num(j, "replicas", 1, 64, false, 1, &v, err, errlen);
	c->replicas = (unsigned)v;
	if (!ret)
		ret = num(j, "timeout", 0, 86400, false, 60, &v, err, errlen);
	c->timeout_ms = (int64_t)(v * 1000);
	if (!ret)
		ret = num(j, "max_memory", 0, 1e15, true, 0, &v, err, errlen);
	c->max_memory = (uint64_t)v;
	if (!ret && c->max_memory && c->max_memory < (64u << 20)) {
		snprintf(err, errlen, "max_memory: at least 64M (a Python "
				      "process needs that much to start)");
		ret = -EINVAL;
	}
	if (!ret)
		ret = num(j, "max_batch_size", 1, 1 << 20, false, 64, &v, err,
			  errlen);
	c->max_batch_rows = (size_t)v;
	if (!ret)
		ret = num(j, "max_batch_wait_us", 0, 10e6, false, 500, &v, err,
			  errlen);
	c->max_wait_us = (int64_t)v;
	if (!ret)
		ret = num(j, "load_timeout", 1, 86400, false, 300, &v, err,
			  errlen);
	c->load_timeout_ms = (int64_t)(v * 1000);
	cJSON_Delete(j);
	return ret;
}

static bool readable(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int rt_python_worker_path(const struct runtime_ctx *ctx, char **out,
			  char *err, size_t errlen)
{
	const char *env = getenv("ASSETFS_PYTHON_WORKER");
	char exe[PATH_MAX], p[PATH_MAX + 64], *slash;
	ssize_t n;

	*out = NULL;
	if (ctx->python_worker || (env && env[0])) {
		const char *w = ctx->python_worker ? ctx->python_worker : env;

		if (!readable(w)) {
			snprintf(err, errlen, "no Python worker program at %s",
				 w);
			return -ENOENT;
		}
		*out = realpath(w, NULL);
		return *out ? 0 : -ENOMEM;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			snprintf(p, sizeof(p), "%s/assetfs_model_worker.py",
				 exe);
			if (readable(p)) {
				*out = strdup(p);
				return *out ? 0 : -ENOMEM;
			}
		}
	}
	if (readable(ASSETFS_PY_WORKER)) {
		*out = strdup(ASSETFS_PY_WORKER);
		return *out ? 0 : -ENOMEM;
	}
	snprintf(err, errlen,
		 "the Python worker program is not installed (%s); set "
		 "ASSETFS_PYTHON_WORKER",
		 ASSETFS_PY_WORKER);
	return -ENOENT;
}

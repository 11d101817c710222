/*
 * sample_plugin - a model plugin for assetfs-server (server/assetfs_model.h)
 * that the tests build and serve: a linear model read from `linear.txt` in
 * the asset version directory.
 *
 *   features N
 *   outputs K
 *   classifier 0|1         (1: softmax over the K outputs)
 *   w_1 ... w_N b          (K lines)
 *
 * The config may set {"scale": S}, multiplying every output before the
 * softmax, {"delay_ms": N}, making every predict() take N ms longer
 * (for tests of slow models), and {"load_delay_ms": N}, making load()
 * take N ms longer (for tests of lazy loading). Uses only libc; no global state; predict
 * is reentrant.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/assetfs_model.h"

#define LIN_MAX 4096

struct linear {
	long n, k;
	int classifier;
	double scale;
	long delay_ms;
	double *w; /* k rows of n weights then the bias */
};

static void lin_free(void *h)
{
	struct linear *l = h;

	if (l) {
		free(l->w);
		free(l);
	}
}

static int lin_load(const char *path, const char *config, void **handle,
		    struct assetfs_model_info *info, char *err, size_t errlen)
{
	struct linear *l;
	const char *s;
	char file[4096];
	FILE *f;
	long i;

	snprintf(file, sizeof(file), "%s/linear.txt", path);
	f = fopen(file, "r");
	if (!f) {
		snprintf(err, errlen, "cannot open %s: %s", file,
			 strerror(errno));
		return -ENOENT;
	}
	l = calloc(1, sizeof(*l));
	if (!l) {
		fclose(f);
		return -ENOMEM;
	}
	l->scale = 1.0;
	s = strstr(config, "\"scale\"");
	if (s && (s = strchr(s, ':')))
		l->scale = strtod(s + 1, NULL);
	s = strstr(config, "\"delay_ms\"");
	if (s && (s = strchr(s, ':')))
		l->delay_ms = strtol(s + 1, NULL, 10);
	s = strstr(config, "\"load_delay_ms\"");
	if (s && (s = strchr(s, ':'))) {
		long ms = strtol(s + 1, NULL, 10);
		struct timespec ts = {.tv_sec = ms / 1000,
				      .tv_nsec = (ms % 1000) * 1000000};

		nanosleep(&ts, NULL);
	}
	if (fscanf(f, " features %ld outputs %ld classifier %d", &l->n, &l->k,
		   &l->classifier) != 3 ||
	    l->n < 1 || l->n > LIN_MAX || l->k < 1 || l->k > LIN_MAX)
		goto bad;
	l->w = calloc((size_t)(l->k * (l->n + 1)), sizeof(double));
	if (!l->w)
		goto bad;
	for (i = 0; i < l->k * (l->n + 1); i++)
		if (fscanf(f, "%lf", &l->w[i]) != 1)
			goto bad;
	fclose(f);
	info->n_features = l->n;
	info->n_outputs = (uint32_t)l->k;
	info->is_classifier = (uint32_t)l->classifier;
	*handle = l;
	return 0;
bad:
	snprintf(err, errlen, "%s: not a linear model description", file);
	fclose(f);
	lin_free(l);
	return -EINVAL;
}

static int lin_predict(void *h, const double *x, size_t rows, size_t cols,
		       double *out, char *err, size_t errlen)
{
	struct linear *l = h;
	size_t r, j, i;

	if ((long)cols != l->n) {
		snprintf(err, errlen, "expected %ld features, got %zu", l->n,
			 cols);
		return -EINVAL;
	}
	if (l->delay_ms > 0) {
		struct timespec ts = {.tv_sec = l->delay_ms / 1000,
				      .tv_nsec =
					  (l->delay_ms % 1000) * 1000000};

		nanosleep(&ts, NULL);
	}
	for (r = 0; r < rows; r++) {
		double *y = out + r * (size_t)l->k, max = -INFINITY, sum = 0;

		for (j = 0; j < (size_t)l->k; j++) {
			const double *w = l->w + j * (size_t)(l->n + 1);
			double acc = w[l->n];

			for (i = 0; i < cols; i++)
				acc += w[i] * x[r * cols + i];
			y[j] = acc * l->scale;
			if (y[j] > max)
				max = y[j];
		}
		if (!l->classifier)
			continue;
		for (j = 0; j < (size_t)l->k; j++) {
			y[j] = exp(y[j] - max);
			sum += y[j];
		}
		for (j = 0; j < (size_t)l->k; j++)
			y[j] /= sum;
	}
	return 0;
}

/* {"rows": N, "mean_output": m[, "mse": e]} (mse of output 0 vs labels) */
static int lin_metrics(void *h, const double *x, const double *labels,
		       size_t rows, size_t cols, char *json, size_t jsonlen,
		       char *err, size_t errlen)
{
	struct linear *l = h;
	double *y, sum = 0, se = 0;
	size_t r, n = rows * (size_t)l->k;
	int ret;

	y = malloc(n * sizeof(*y));
	if (!y)
		return -ENOMEM;
	ret = lin_predict(h, x, rows, cols, y, err, errlen);
	if (ret == 0) {
		for (r = 0; r < n; r++)
			sum += y[r];
		for (r = 0; labels && r < rows; r++)
			se += (y[r * (size_t)l->k] - labels[r]) *
			      (y[r * (size_t)l->k] - labels[r]);
		if (labels)
			snprintf(json, jsonlen,
				 "{\"rows\": %zu, "
				 "\"mean_output\": %.17g, \"mse\": %.17g}",
				 rows, sum / (double)n, se / (double)rows);
		else
			snprintf(json, jsonlen,
				 "{\"rows\": %zu, "
				 "\"mean_output\": %.17g}",
				 rows, sum / (double)n);
	}
	free(y);
	return ret;
}

static const struct assetfs_model_ops lin_ops = {
    .abi_version = ASSETFS_MODEL_ABI_VERSION,
    .name = "linear",
    .load = lin_load,
    .predict = lin_predict,
    .metrics = lin_metrics,
    .free = lin_free,
};

const struct assetfs_model_ops *assetfs_model_entry(void)
{
	return &lin_ops;
}

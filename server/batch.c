/*
 * batch - the JSON Lines scoring and metrics jobs.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/log.h"
#include "resolver/version.h"
#include "server/batch.h"
#include "server/proto_util.h"
#include "server/registry.h"

#define BATCH_LINE_MAX (64u << 20)

/* The features and label of one record. 0 or -EINVAL with @err. */
static int record(const cJSON *j, struct matrix *x, double *label,
		  bool *has_label, char *err, size_t errlen)
{
	static const char *const fkeys[] = {"features", "instances", "inputs",
					    "x", NULL};
	const cJSON *f = j, *l = NULL;
	size_t i;

	*has_label = false;
	if (cJSON_IsObject(j)) {
		f = NULL;
		for (i = 0; fkeys[i] && !f; i++)
			f = cJSON_GetObjectItemCaseSensitive(j, fkeys[i]);
		if (!f) {
			snprintf(err, errlen, "the record has no \"features\"");
			return -EINVAL;
		}
		l = cJSON_GetObjectItemCaseSensitive(j, "label");
		if (!l)
			l = cJSON_GetObjectItemCaseSensitive(j, "y");
		if (l && !cJSON_IsNumber(l)) {
			snprintf(err, errlen, "\"label\" must be a number");
			return -EINVAL;
		}
		if (l) {
			*label = l->valuedouble;
			*has_label = true;
		}
	}
	return matrix_from_rows(f, "features", x, err, errlen);
}

static int append_rows(struct matrix *all, const struct matrix *x, char *err,
		       size_t errlen)
{
	double *nx;

	if (all->rows && all->cols != x->cols) {
		snprintf(err, errlen, "%zu features, earlier records have %zu",
			 x->cols, all->cols);
		return -EINVAL;
	}
	nx = realloc(all->x, (all->rows + x->rows) * x->cols * sizeof(*nx));
	if (!nx)
		return -ENOMEM;
	memcpy(nx + all->rows * x->cols, x->x, x->rows * x->cols * sizeof(*nx));
	all->x = nx;
	all->rows += x->rows;
	all->cols = x->cols;
	return 0;
}

int batch_run(const struct server_opts *o)
{
	struct registry_opts ro = {0};
	struct registry *reg = NULL;
	struct model_version *v = NULL;
	struct model *m;
	struct matrix all = {0};
	double *labels = NULL;
	size_t nlabels = 0, records = 0, failed = 0, lineno = 0;
	char err[ERR_MAX], tmp[4096];
	FILE *in = NULL, *out = NULL;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	struct buf b;
	int ret, code = 2;

	buf_init(&b, 0);
	ro.assets_dir = o->assets_dir;
	ro.python = o->python;
	ro.python_env_dir = o->python_env_dir;
	ro.python_wheelhouse = o->python_wheelhouse;
	if (o->versioning && versioning_parse(o->versioning, &ro.sys) < 0) {
		log_error("unknown versioning system '%s'", o->versioning);
		return 2;
	}
	if (!o->versioning && versioning_from_env(&ro.sys) < 0) {
		log_error("MODELKIT_ASSETS_VERSIONING_SYSTEM: unknown value");
		return 2;
	}
	if (registry_new(&ro, &reg) < 0)
		return 2;
	ret = registry_add(reg, o->models[0].name, o->models[0].spec,
			   o->models[0].runtime, o->models[0].file,
			   o->models[0].config, err, sizeof(err));
	if (ret == 0)
		ret = registry_load_all(reg, err, sizeof(err));
	m = registry_at(reg, 0);
	if (ret == 0)
		ret = model_acquire(reg, m, NULL, &v, err, sizeof(err));
	if (ret < 0) {
		log_error("%s", err);
		goto out;
	}
	in = strcmp(o->input, "-") == 0 ? stdin : fopen(o->input, "r");
	if (!in) {
		log_error("cannot open %s: %s", o->input, strerror(errno));
		goto out;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", o->output, (int)getpid());
	out = fopen(tmp, "w");
	if (!out) {
		log_error("cannot create %s: %s", tmp, strerror(errno));
		goto out;
	}
	while ((len = getline(&line, &cap, in)) >= 0) {
		struct matrix x = {0};
		double label = 0, *y = NULL;
		bool has_label;
		cJSON *j = NULL;

		lineno++;
		while (len > 0 &&
		       (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0)
			continue;
		records++;
		buf_reset(&b);
		if ((size_t)len > BATCH_LINE_MAX) {
			snprintf(err, sizeof(err), "line longer than %u bytes",
				 BATCH_LINE_MAX);
			ret = -EINVAL;
		} else if ((ret = json_parse_exact(line, (size_t)len,
						   PROTO_MAX_DEPTH, &j, err,
						   sizeof(err))) < 0) {
			/* message names the byte: malformed, trailing, deep */
		} else {
			ret =
			    record(j, &x, &label, &has_label, err, sizeof(err));
		}
		if (ret == 0 && o->metrics_job) {
			if (has_label && x.rows != 1) {
				snprintf(err, sizeof(err),
					 "a labelled record "
					 "must hold one row");
				ret = -EINVAL;
			} else if (records > 1 && (has_label != (nlabels > 0) ||
						   (!has_label && labels))) {
				snprintf(err, sizeof(err),
					 "records must all "
					 "have labels or none");
				ret = -EINVAL;
			}
			if (ret == 0)
				ret = append_rows(&all, &x, err, sizeof(err));
			if (ret == 0 && has_label) {
				double *nl = realloc(labels, (nlabels + 1) *
								 sizeof(*nl));

				if (!nl) {
					ret = -ENOMEM;
				} else {
					labels = nl;
					labels[nlabels++] = label;
				}
			}
		} else if (ret == 0) {
			ret =
			    model_predict(reg, m, v, &x, &y, err, sizeof(err));
			if (ret == 0) {
				buf_printf(&b,
					   "{\"line\": %zu, "
					   "\"predictions\": ",
					   lineno);
				proto_write_rows(&b, y, x.rows,
						 v->info.n_outputs,
						 proto_fp32(v), true);
				buf_puts(&b, "}\n");
			}
		}
		if (ret < 0) {
			failed++;
			log_error("%s:%zu: %s", o->input, lineno, err);
			buf_reset(&b);
			buf_printf(&b, "{\"line\": %zu, \"error\": ", lineno);
			jw_str(&b, err);
			buf_puts(&b, "}\n");
		}
		if (b.len && fwrite(b.data, 1, b.len, out) != b.len) {
			log_error("cannot write %s: %s", tmp, strerror(errno));
			goto out;
		}
		free(y);
		matrix_free(&x);
		cJSON_Delete(j);
	}
	if (o->metrics_job) {
		buf_reset(&b);
		buf_printf(&b,
			   "{\"records\": %zu, \"failed\": %zu, "
			   "\"metrics\": ",
			   records, failed);
		if (!v->ops->metrics) {
			log_error("runtime %s has no metrics", v->ops->name);
			goto out;
		}
		ret = all.rows
			  ? v->ops->metrics(v->state, all.x,
					    nlabels ? labels : NULL, all.rows,
					    all.cols, &b, err, sizeof(err))
			  : (snprintf(err, sizeof(err), "no records"), -EINVAL);
		if (ret < 0) {
			log_error("metrics job: %s", err);
			goto out;
		}
		buf_puts(&b, "}\n");
		if (fwrite(b.data, 1, b.len, out) != b.len)
			goto out;
	}
	if (fclose(out) != 0) {
		out = NULL;
		log_error("cannot write %s", tmp);
		goto out;
	}
	out = NULL;
	if (rename(tmp, o->output) < 0) {
		log_error("cannot rename %s to %s: %s", tmp, o->output,
			  strerror(errno));
		goto out;
	}
	log_info("batch: %zu records, %zu failed", records, failed);
	code = failed ? 1 : 0;
out:
	if (out) {
		fclose(out);
		unlink(tmp);
	}
	if (in && in != stdin)
		fclose(in);
	free(line);
	free(labels);
	matrix_free(&all);
	buf_free(&b);
	model_version_unref(v);
	registry_free(reg);
	return code;
}

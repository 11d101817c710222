/*
 * options - the command line and the models file of assetfs-server.
 *
 *   --model NAME=SPEC[,runtime=R][,file=REL][,KEY=VALUE...] (repeatable;
 *       without NAME= the name is the last segment of the asset name;
 *       KEY one of OPTIONS_MODEL_KEYS, put into the model's config)
 *   --config models.json: {"models": [{"name", "asset", "runtime", "file",
 *       "config", KEY...}]} or {"NAME": {"asset": SPEC, ...}, ...}
 *
 * Pure parsing: nothing is opened but the models file. Errors: 0 or a
 * negative errno with a message in @err.
 */
#ifndef ASSETFS_SERVER_OPTIONS_H
#define ASSETFS_SERVER_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#define OPTIONS_MAX_MODELS 64

/* The per-model settings of the Python runtimes (server/rt_python.h),
 * accepted as --model keys and as keys of a models file entry. */
#define OPTIONS_MODEL_KEYS                                                 \
	"class", "replicas", "timeout", "max_memory", "max_batch_size",    \
	    "max_batch_wait_us", "load_timeout", "n_features", "n_outputs"

struct model_opt {
	char *name;
	char *spec;
	char *runtime; /* NULL: detected from the version's files */
	char *file;    /* NULL: the usual names */
	char *config;  /* JSON text or NULL */
};

struct server_opts {
	struct model_opt models[OPTIONS_MAX_MODELS];
	size_t n_models;
	const char *assets_dir;
	int http_port;
	int metrics_port; /* 0: /metrics on the http port */
	unsigned workers;
	unsigned threads; /* 0: a thread per connection */
	bool single_threaded;
	unsigned long max_requests; /* 0: never recycle */
	unsigned long max_requests_jitter;
	unsigned keepalive_s;
	unsigned request_timeout_ms;
	size_t max_body;
	unsigned max_connections;
	int max_json_depth;
	int poll_ms;
	bool access_log;
	bool lazy;
	const char *versioning;
	const char *log_level;
	const char *python, *python_env_dir, *python_wheelhouse;
	/* batch */
	bool batch;
	const char *input, *output;
	bool metrics_job;
};

/*
 * Parse "NAME=SPEC[,runtime=R][,file=F][,KEY=VALUE...]" into @mo (fields
 * malloc'd; KEY=VALUE pairs become string members of @mo->config).
 */
int options_parse_model(const char *text, struct model_opt *mo, char *err,
			size_t errlen);

/* Read a models file and append its models to @o. */
int options_read_config(const char *path, struct server_opts *o, char *err,
			size_t errlen);

/*
 * Parse argv (after the program name; "batch" as the first word selects
 * batch mode). Returns 0, 1 when --help or --version was printed, or
 * -EINVAL with @err set.
 */
int options_parse(int argc, char **argv, struct server_opts *o, char *err,
		  size_t errlen);

void options_free(struct server_opts *o);

/* The --help text. */
extern const char options_usage[];

#endif

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
	const char *metrics_path; /* NULL: /metrics */
	bool filter_metrics_logs; /* no access-log line for metrics_path */
	const char *pidfile;
	/* gRPC (grpc_server.h) */
	int grpc_port;		  /* 0: no gRPC server */
	int grpc_workers;	  /* workers serving gRPC; -1: all */
	const char *grpc_tls_cert, *grpc_tls_key;
	size_t grpc_max_message;  /* 0: as max_body */
	unsigned grpc_max_streams;
	unsigned grpc_keepalive_s;
	/* Seldon's prepackaged-server contract (options_seldon.c) */
	const char *model_uri;	  /* --model-uri or PREDICTIVE_UNIT_PARAMETERS */
	const char *unit_id;	  /* PREDICTIVE_UNIT_ID: its model's name */
	char *model_uri_owned;	  /* what model_uri points into, if ours */
	char *assets_dir_owned;
	bool payload_passthrough; /* accepted; logged as meaningless here */
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

/*
 * Seldon's environment (PREDICTIVE_UNIT_*, GUNICORN_*, FLASK_*, LOG_LEVEL_ENV,
 * SELDON_DEBUG, FILTER_METRICS_ACCESS_LOGS, PAYLOAD_PASSTHROUGH,
 * GRPC_WORKERS) into @o's defaults, before the command line overrides
 * them. Returns 0 or -EINVAL naming the variable.
 */
int options_seldon_env(struct server_opts *o, char *err, size_t errlen);

/*
 * Serve o->model_uri (a version or alias directory of an assets tree) as
 * model o->unit_id ("model"): sets the assets dir when none is given and
 * adds the model, whose spec follows the alias. Returns 0 (also when
 * there is no model_uri) or -EINVAL.
 */
int options_seldon_model(struct server_opts *o, char *err, size_t errlen);

/* The gRPC options and the Seldon table of --help. */
extern const char options_grpc_usage[];
extern const char options_seldon_usage[];

/* The --help text. */
extern const char options_usage[];

#endif

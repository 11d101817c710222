/*
 * assetfs-server - serve predictions from models in an assetfs mount.
 *
 * main() parses options and wires modules. Process model: with one
 * worker and no max-requests the process serves by itself; otherwise a
 * master process owns the listening socket (SO_REUSEPORT, shared by every
 * worker, so a worker that stops accepting never drops a queued
 * connection), forks the workers, replaces a worker that reached its
 * max-requests or crashed, and serves /metrics from the shared metrics
 * segment. A worker past its max-requests asks for a successor (queued
 * real-time signals carry who is asking) and serves on until the successor
 * says it is serving; only then is it told to drain, and if the successor
 * cannot start (say the latest version of a model is broken) it carries
 * on. SIGTERM: every process stops accepting, finishes what is in flight,
 * exits 0.
 *
 * Signals are blocked in every thread and taken with sigtimedwait() by
 * the main thread only.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/metrics_http.h"
#include "common/timeutil.h"
#include "server/batch.h"
#include "server/http.h"
#include "server/metrics.h"
#include "server/metrics_grpc.h"
#include "server/options.h"
#include "server/pcache.h"
#include "server/proto_util.h"
#include "server/registry.h"
#include "server/router.h"
#ifdef HAVE_GRPC
#include "server/grpc_server.h"
#endif

#define EXIT_STARTUP 3 /* a worker could not start: do not respawn */
#define MAX_WORKERS 32
#define SIG_RECYCLE (SIGRTMIN + 1) /* worker -> master: replace me */
#define SIG_READY (SIGRTMIN + 2)   /* worker -> master: I am serving */
#define SIG_ABORT (SIGRTMIN + 3)   /* master -> worker: no replacement */

static void block_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGCHLD);
	sigaddset(set, SIG_RECYCLE);
	sigaddset(set, SIG_READY);
	sigaddset(set, SIG_ABORT);
	sigprocmask(SIG_BLOCK, set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static int render_metrics(void *ctx, struct buf *out)
{
	struct server_ctx *c = ctx;

	int ret = metrics_render(c->metrics, out);

	return ret < 0 ? ret : metrics_grpc_render(c->gmetrics, out);
}

/* `--metrics-port`: /metrics on every IPv4 address, as http_listen() binds
 * the http port (common/metrics_http). */
static int start_metrics_server(const struct server_opts *o,
				struct server_ctx *mctx,
				struct metrics_http **out)
{
	int ret;

	ret = metrics_http_start_at(
	    "0.0.0.0", o->metrics_port,
	    o->metrics_path ? o->metrics_path : "/metrics", render_metrics,
	    mctx, out);
	if (ret < 0)
		log_error("cannot serve metrics on port %d: %s",
			  o->metrics_port, strerror(-ret));
	return ret;
}

/*
 * Stop accepting, then wait: for requests in flight as long as they take
 * (up to DRAIN_MAX_MS: a supervisor's SIGKILL comes sooner anyway), and
 * for idle keep-alive connections up to the keep-alive timeout, so a
 * client about to reuse one is not cut off.
 */
#define DRAIN_MAX_MS (10 * 60 * 1000)

static void drain(struct http_server *h, const struct server_opts *o)
{
	int64_t start = time_mono_ms();
	int64_t idle = start + (int64_t)o->keepalive_s * 1000 + 1000;

	http_quiesce(h);
	while (time_mono_ms() - start < DRAIN_MAX_MS) {
		if (!http_inflight(h) &&
		    (!http_connections(h) || time_mono_ms() > idle))
			break;
		usleep(20 * 1000);
	}
}

/*
 * Serve as worker @slot on @fd until SIGTERM, then drain and return 0.
 * Under a master (!@standalone) the worker says when it is serving
 * (SIG_READY), and past its max-requests asks for a replacement
 * (SIG_RECYCLE) but keeps serving until the master, once the replacement
 * is serving, sends SIGTERM, or says no replacement could start
 * (SIG_ABORT: carry on for another max-requests). @standalone: also serve
 * the metrics port. Returns EXIT_STARTUP when it could not start.
 */
/* Start the gRPC front when this worker serves gRPC. */
static int start_grpc(const struct server_opts *o, struct server_ctx *ctx,
		      struct grpc_front **out)
{
#ifdef HAVE_GRPC
	struct grpc_opts go = {
	    .port = o->grpc_port,
	    .threads = o->threads ? o->threads : 2,
	    .max_message = o->grpc_max_message ? o->grpc_max_message
					       : o->max_body,
	    .max_streams = o->grpc_max_streams,
	    .keepalive_ms = o->grpc_keepalive_s * 1000,
	    .keepalive_timeout_ms = 20000,
	    .tls_cert = o->grpc_tls_cert,
	    .tls_key = o->grpc_tls_key,
	};
	char err[ERR_MAX];
	int ret;

	ret = grpc_front_start(&go, ctx, out, err, sizeof(err));
	if (ret < 0)
		log_error("gRPC: %s", err);
	return ret;
#else
	(void)o;
	(void)ctx;
	*out = NULL;
	log_error("this assetfs-server was built without gRPC");
	return -ENOTSUP;
#endif
}

static void stop_grpc(struct grpc_front *g, unsigned grace_ms)
{
#ifdef HAVE_GRPC
	grpc_front_stop(g, grace_ms);
#else
	(void)g;
	(void)grace_ms;
#endif
}

static uint64_t grpc_done(struct grpc_front *g)
{
#ifdef HAVE_GRPC
	return grpc_front_done(g);
#else
	(void)g;
	return 0;
#endif
}

static int run_worker(const struct server_opts *o, unsigned slot, int fd,
		      struct metrics *met, struct metrics_grpc *gmet,
		      bool standalone, bool grpc)
{
	struct grpc_front *gf = NULL;
	struct registry_opts ro = {0};
	struct registry *reg = NULL;
	struct pcache *cache = NULL;
	struct http_server *h = NULL;
	struct metrics_http *mh = NULL;
	struct server_ctx ctx = {0};
	struct http_opts ho = {0};
	struct timespec ts = {.tv_nsec = 100 * 1000 * 1000};
	unsigned long limit = 0;
	union sigval sv = {.sival_int = (int)slot};
	bool asked = false;
	char err[ERR_MAX];
	sigset_t set;
	size_t i;
	int ret, code = EXIT_STARTUP, sig;

	block_signals(&set);
	ret = pcache_from_env(&cache, err, sizeof(err));
	if (ret < 0) {
		log_error("%s", err);
		goto out;
	}
	ro.assets_dir = o->assets_dir;
	ro.poll_ms = o->poll_ms;
	ro.lazy = o->lazy;
	ro.worker = slot;
	ro.metrics = met;
	ro.cache = cache;
	ro.python = o->python;
	ro.python_env_dir = o->python_env_dir;
	ro.python_wheelhouse = o->python_wheelhouse;
	if (o->versioning && versioning_parse(o->versioning, &ro.sys) < 0) {
		log_error("unknown versioning system '%s'", o->versioning);
		goto out;
	}
	if (!o->versioning && versioning_from_env(&ro.sys) < 0) {
		log_error("MODELKIT_ASSETS_VERSIONING_SYSTEM: unknown value");
		goto out;
	}
	if (registry_new(&ro, &reg) < 0)
		goto out;
	for (i = 0; i < o->n_models; i++) {
		const struct model_opt *mo = &o->models[i];

		ret = registry_add(reg, mo->name, mo->spec, mo->runtime,
				   mo->file, mo->config, err, sizeof(err));
		if (ret < 0) {
			log_error("%s", err);
			goto out;
		}
	}
	if (!o->lazy) {
		ret = registry_load_all(reg, err, sizeof(err));
		if (ret < 0) {
			log_error("%s", err);
			goto out;
		}
	}
	if (registry_start(reg) < 0)
		goto out;
	ctx.reg = reg;
	ctx.metrics = met;
	ctx.gmetrics = gmet;
	ctx.metrics_path = o->metrics_path;
	ctx.max_depth = o->max_json_depth;
	ctx.metrics_here = o->metrics_port == 0;
	ho.listen_fd = fd;
	ho.threads = o->threads;
	ho.single_threaded = o->single_threaded;
	ho.max_body = o->max_body;
	ho.keepalive_s = o->keepalive_s;
	ho.request_timeout_ms = o->request_timeout_ms;
	ho.conn_limit = o->max_connections;
	ho.access_log = o->access_log;
	if (o->filter_metrics_logs)
		ho.access_log_skip =
		    o->metrics_path ? o->metrics_path : "/metrics";
	/* gRPC first: once REST answers, the gRPC port is bound too */
	if (grpc && start_grpc(o, &ctx, &gf) < 0)
		goto out;
	ret = http_start(&ho, router_handle, &ctx, &h);
	if (ret < 0) {
		log_error("cannot start the HTTP server: %s", strerror(-ret));
		goto out;
	}
	if (standalone && o->metrics_port &&
	    start_metrics_server(o, &ctx, &mh) < 0)
		goto out;
	if (o->max_requests) {
		srand((unsigned)(getpid() ^ time_mono_ns()));
		limit =
		    o->max_requests +
		    (o->max_requests_jitter
			 ? (unsigned long)rand() % (o->max_requests_jitter + 1)
			 : 0);
	}
	if (gf)
		log_info("worker %u serving %zu model(s) on port %d, gRPC on "
			 "port %d",
			 slot, o->n_models, o->http_port, o->grpc_port);
	else
		log_info("worker %u serving %zu model(s) on port %d", slot,
			 o->n_models, o->http_port);
	code = 0;
	if (!standalone)
		sigqueue(getppid(), SIG_READY, sv);
	for (;;) {
		sig = sigtimedwait(&set, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT) {
			log_info("worker %u: signal %d, draining", slot, sig);
			break;
		}
		if (sig == SIG_ABORT) {
			log_warn("worker %u: no replacement could start; "
				 "serving on",
				 slot);
			asked = false;
			limit = http_requests_done(h) + grpc_done(gf) +
				o->max_requests;
		}
		if (limit && !asked && !standalone &&
		    http_requests_done(h) + grpc_done(gf) >= limit) {
			log_info("worker %u: %lu requests served, asking for "
				 "a replacement",
				 slot, limit);
			sigqueue(getppid(), SIG_RECYCLE, sv);
			asked = true;
		}
	}
	drain(h, o);
	stop_grpc(gf, o->keepalive_s * 1000 + 1000);
	gf = NULL;
out:
	stop_grpc(gf, 0);
	metrics_http_stop(&mh);
	http_stop(h);
	registry_free(reg);
	pcache_free(cache);
	metrics_worker_gone(met, slot);
	return code;
}

struct worker_slot {
	pid_t pid;     /* 0: free */
	bool initial;  /* started with the server: failing to start is fatal */
	bool retiring; /* asked to be replaced; SIGTERM once its successor is
			  serving */
	int replaces;  /* slot this one takes over from, or -1 */
	bool grpc;     /* serves gRPC too; a replacement inherits it */
};

/* Fork a worker into a free slot. Returns the slot or a negative errno. */
static int spawn(const struct server_opts *o, struct worker_slot *slots, int fd,
		 struct metrics *met, struct metrics_grpc *gmet, bool initial,
		 int replaces, bool grpc)
{
	unsigned i;
	pid_t pid;

	for (i = 0; i < MAX_WORKERS && slots[i].pid; i++)
		;
	if (i == MAX_WORKERS)
		return -EAGAIN;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		_exit(run_worker(o, i, fd, met, gmet, false, grpc));
	}
	slots[i].pid = pid;
	slots[i].initial = initial;
	slots[i].retiring = false;
	slots[i].replaces = replaces;
	slots[i].grpc = grpc;
	return (int)i;
}

static int alive(const struct worker_slot *slots)
{
	int n = 0, i;

	for (i = 0; i < MAX_WORKERS; i++)
		n += slots[i].pid != 0;
	return n;
}

static int slot_of(const struct worker_slot *slots, pid_t pid)
{
	int i;

	for (i = 0; i < MAX_WORKERS; i++)
		if (pid && slots[i].pid == pid)
			return i;
	return -1;
}

/* The replacement for @old could not be had: @old serves on. */
static void abort_retire(struct worker_slot *slots, int old)
{
	union sigval sv = {.sival_int = 0};

	if (old < 0 || !slots[old].pid || !slots[old].retiring)
		return;
	slots[old].retiring = false;
	sigqueue(slots[old].pid, SIG_ABORT, sv);
}

static int run_master(const struct server_opts *o, int fd, struct metrics *met,
		      struct metrics_grpc *gmet)
{
	struct worker_slot slots[MAX_WORKERS] = {0};
	struct metrics_http *mh = NULL;
	struct server_ctx mctx = {
	    .metrics = met, .gmetrics = gmet, .metrics_path = o->metrics_path};
	struct timespec ts = {.tv_sec = 1};
	int64_t crash_window = 0, deadline = 0;
	unsigned crashes = 0, i;
	bool stopping = false;
	int code = 0, st, sig, j, k;
	siginfo_t si;
	sigset_t set;
	pid_t pid;

	block_signals(&set);
	for (i = 0; i < o->workers; i++) {
		if (spawn(o, slots, fd, met, gmet, true, -1,
			  o->grpc_port && (o->grpc_workers < 0 ||
					   i < (unsigned)o->grpc_workers)) <
		    0) {
			log_error("cannot fork a worker: %s", strerror(errno));
			return 1;
		}
	}
	if (o->metrics_port && start_metrics_server(o, &mctx, &mh) < 0)
		code = 1, stopping = true;
	if (stopping)
		goto stop;
	for (;;) {
		sig = sigtimedwait(&set, &si, &ts);
		if (sig == SIGTERM || sig == SIGINT) {
			log_info("signal %d: stopping %d worker(s)", sig,
				 alive(slots));
			stopping = true;
			goto stop;
		}
		j = sig > 0 ? slot_of(slots, si.si_pid) : -1;
		if (sig == SIG_RECYCLE && j >= 0 && !slots[j].retiring) {
			slots[j].retiring = true;
			metrics_worker_restart(met);
			if (spawn(o, slots, fd, met, gmet, false, j,
				  slots[j].grpc) < 0) {
				log_error("cannot fork a worker: %s",
					  strerror(errno));
				abort_retire(slots, j);
			}
		}
		if (sig == SIG_READY && j >= 0 && slots[j].replaces >= 0) {
			k = slots[j].replaces;
			slots[j].replaces = -1;
			if (slots[k].pid && slots[k].retiring)
				kill(slots[k].pid, SIGTERM);
		}
		while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
			j = slot_of(slots, pid);
			if (j < 0)
				continue;
			slots[j].pid = 0;
			metrics_worker_gone(met, (unsigned)j);
			if (WIFEXITED(st) && WEXITSTATUS(st) == EXIT_STARTUP) {
				if (slots[j].initial) {
					log_error("a worker could not start; "
						  "stopping");
					code = 1;
					goto stop;
				}
				if (slots[j].replaces >= 0) {
					log_error("a replacement worker could "
						  "not start; worker %d serves "
						  "on",
						  slots[j].replaces);
					abort_retire(slots, slots[j].replaces);
					continue;
				}
			} else if (slots[j].retiring) {
				continue; /* drained after its successor came */
			}
			log_warn("worker %d (pid %d) died (status %d); "
				 "replacing it",
				 j, (int)pid, st);
			if (time_mono_ms() - crash_window > 10000) {
				crash_window = time_mono_ms();
				crashes = 0;
			}
			if (++crashes > 10) {
				log_error("workers keep dying; stopping");
				code = 1;
				goto stop;
			}
			metrics_worker_restart(met);
			/*
			 * A retiring worker's successor is on its way; a
			 * successor that died takes over its duty in the
			 * next one.
			 */
			if (!slots[j].retiring)
				spawn(o, slots, fd, met, gmet, false,
				      slots[j].replaces, slots[j].grpc);
		}
	}
stop:
	for (i = 0; i < MAX_WORKERS; i++)
		if (slots[i].pid)
			kill(slots[i].pid, SIGTERM);
	deadline = time_mono_ms() + DRAIN_MAX_MS + 10000;
	while (alive(slots)) {
		pid = waitpid(-1, &st, WNOHANG);
		if (pid > 0) {
			for (i = 0; i < MAX_WORKERS; i++)
				if (slots[i].pid == pid)
					slots[i].pid = 0;
			continue;
		}
		if (time_mono_ms() > deadline) {
			for (i = 0; i < MAX_WORKERS; i++)
				if (slots[i].pid)
					kill(slots[i].pid, SIGKILL);
			deadline = time_mono_ms() + 60000;
		}
		usleep(20 * 1000);
	}
	metrics_http_stop(&mh);
	return code;
}

/*
 * Is @port free for our gRPC servers? Each worker binds it itself with
 * SO_REUSEPORT, which would also let it share a port another server of
 * the same user listens on; a bind without SO_REUSEPORT, before any
 * worker starts, fails then. Returns 0 or a negative errno.
 */
static int grpc_port_free(int port)
{
	struct sockaddr_in6 sa;
	int fd, one = 1, ret = 0;

	fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0; /* no IPv6: grpc_front_start will say what it finds */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin6_family = AF_INET6;
	sa.sin6_port = htons((uint16_t)port);
	sa.sin6_addr = in6addr_any;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* Write our pid to @path (a temp file renamed over it). */
static int write_pidfile(const char *path)
{
	char tmp[4096];
	FILE *f;
	int ret = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >=
	    (int)sizeof(tmp))
		return -ENAMETOOLONG;
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	if (fprintf(f, "%d\n", (int)getpid()) < 0)
		ret = -EIO;
	if (fclose(f) != 0 && ret == 0)
		ret = -errno;
	if (ret == 0 && rename(tmp, path) < 0)
		ret = -errno;
	if (ret < 0)
		unlink(tmp);
	return ret;
}

int main(int argc, char **argv)
{
	struct server_opts o;
	struct metrics *met = NULL;
	struct metrics_grpc *gmet = NULL;
	bool pid_written = false;
	enum log_level lvl = LOG_LVL_INFO;
	char err[ERR_MAX];
	int ret, fd = -1, code = 1;

	log_init("assetfs-server", LOG_LVL_INFO);
	ret = options_parse(argc, argv, &o, err, sizeof(err));
	if (ret == 1) {
		options_free(&o);
		return 0;
	}
	if (ret < 0) {
		fprintf(stderr, "assetfs-server: %s\n", err);
		options_free(&o);
		return 2;
	}
	if (o.log_level) {
		if (log_level_parse(o.log_level, &lvl) < 0) {
			fprintf(stderr,
				"assetfs-server: --log-level: '%s' is "
				"not error, warn, info or debug\n",
				o.log_level);
			options_free(&o);
			return 2;
		}
		log_set_level(lvl);
	}
	if (o.batch) {
		code = batch_run(&o);
		options_free(&o);
		return code;
	}
	if (o.workers > MAX_WORKERS / 2) {
		fprintf(stderr, "assetfs-server: --workers: at most %d\n",
			MAX_WORKERS / 2);
		options_free(&o);
		return 2;
	}
	log_debug("http port %d, metrics port %d at %s, gRPC port %d "
		  "(%d gRPC workers; -1: all), %u worker(s) of %u thread(s)%s",
		  o.http_port, o.metrics_port,
		  o.metrics_path ? o.metrics_path : "/metrics", o.grpc_port,
		  o.grpc_workers, o.workers, o.threads,
		  o.single_threaded ? ", single-threaded" : "");
	if (o.payload_passthrough)
		log_warn("PAYLOAD_PASSTHROUGH is set: it has no effect here "
			 "(requests always go through the protocol parsers "
			 "before a runtime sees them)");
	ret = metrics_new(&met);
	if (ret == 0 && o.grpc_port)
		ret = metrics_grpc_new(&gmet);
	if (ret < 0) {
		log_error("cannot map the metrics segment: %s", strerror(-ret));
		goto out;
	}
	if (o.pidfile) {
		ret = write_pidfile(o.pidfile);
		if (ret < 0) {
			log_error("cannot write the pid file %s: %s", o.pidfile,
				  strerror(-ret));
			goto out;
		}
		pid_written = true;
	}
	if (o.grpc_port && o.grpc_workers != 0) {
		ret = grpc_port_free(o.grpc_port);
		if (ret < 0) {
			log_error("cannot listen on gRPC port %d: %s", o.grpc_port,
				  strerror(-ret));
			goto out;
		}
	}
	fd = http_listen(o.http_port);
	if (fd < 0) {
		log_error("cannot listen on port %d: %s", o.http_port,
			  strerror(-fd));
		goto out;
	}
	if (o.workers == 1 && o.max_requests == 0) {
		code = run_worker(&o, 0, fd, met, gmet, true,
				  o.grpc_port && o.grpc_workers != 0);
		fd = -1; /* closed by the HTTP server */
		if (code == EXIT_STARTUP)
			code = 1;
	} else {
		code = run_master(&o, fd, met, gmet);
	}
	if (code == 0)
		log_info("stopped");
out:
	if (fd >= 0)
		close(fd);
	if (pid_written)
		unlink(o.pidfile);
	metrics_grpc_free(gmet);
	metrics_free(met);
	options_free(&o);
	return code;
}

/*
 * pyproc - one Python model process and the wire between it and the
 * server.
 *
 * A model process is server/python/assetfs_model_worker.py run by an
 * interpreter (the system one, or an environment's), with one end of a
 * Unix stream socketpair as its fd 3. Everything on the wire is a frame:
 * a 32-byte header (struct pyframe_hdr, host byte order: both ends are on
 * one machine) and `len` bytes of payload. Tensors travel as raw
 * row-major float64; only the load request and its answer (once per
 * process) are JSON. The process is hostile input like any peer: every
 * header is checked against caps and against what was asked for before a
 * byte of payload is read, and a peer that breaks the protocol is killed.
 *
 * The child is forked with only async-signal-safe calls before execve:
 * its signal mask and SIGPIPE are reset, RLIMIT_AS is set when a memory
 * limit is given, and every other descriptor is closed. It exits when
 * its socket reaches EOF (the server closed it, or died), and watches its
 * parent pid besides, so a hung model dies with the server too.
 * (PR_SET_PDEATHSIG would follow the thread that forked, and HTTP
 * threads come and go.)
 *
 * Threads: a struct pyproc is used by one thread at a time (its owner
 * serializes). Errors: 0 or a negative errno with a message in @err:
 * -EPIPE the process is gone (EOF or reset), -ETIMEDOUT the deadline
 * passed, -EPROTO it broke the protocol.
 */
#ifndef ASSETFS_SERVER_PYPROC_H
#define ASSETFS_SERVER_PYPROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "common/buf.h"

#define PYFRAME_MAGIC 0x79504641u	/* "AFPy" */
#define PYFRAME_MAX_TEXT (1u << 20)	/* JSON and error payloads */
#define PYFRAME_MAX_DATA ((uint64_t)1 << 32) /* tensor payloads */

enum pyframe_type {
	PYF_LOAD = 1,	    /* server -> worker: JSON load request */
	PYF_HELLO = 2,	    /* worker: JSON model description */
	PYF_PREDICT = 3,    /* server: rows x cols float64 */
	PYF_RESULT = 4,	    /* worker: rows x cols float64 */
	PYF_ERROR = 5,	    /* worker: rows = enum pyerr_kind, text */
	PYF_METRICS = 6,    /* server: X (rows x cols), then labels if
			       cols2 == 1 */
	PYF_METRICS_RESULT = 7, /* worker: JSON object */
};

enum pyerr_kind {
	PYERR_INPUT = 1,  /* the input does not fit the model */
	PYERR_MODEL = 2,  /* the model raised */
	PYERR_MEMORY = 3, /* out of memory; the process exits after this */
	PYERR_LOAD = 4,	  /* the model could not be loaded */
};

struct pyframe_hdr {
	uint32_t magic;
	uint32_t type;
	uint32_t rows;
	uint32_t cols;
	uint32_t cols2; /* PYF_METRICS: 1 when labels follow */
	uint32_t len_hi;
	uint64_t len; /* payload bytes (len_hi: reserved, 0) */
};

struct pyproc {
	pid_t pid; /* 0: not running */
	int fd;	   /* -1: not running */
	int status; /* wait status once reaped */
};

/* What the model described of itself in its PYF_HELLO. */
struct pyhello {
	int64_t n_features; /* -1: any */
	uint32_t n_outputs;
	bool is_classifier;
	bool has_metrics;
	char objective[64];
};

/*
 * Check a header read from a worker: magic, a known reply type, and a
 * payload within its type's cap (PYFRAME_MAX_TEXT for text, @max_data
 * for PYF_RESULT, which must also be exactly rows * cols doubles).
 * Returns 0 or -EPROTO with a message. Pure (fuzzed).
 */
int pyframe_check_reply(const struct pyframe_hdr *h, uint64_t max_data,
			char *err, size_t errlen);

/*
 * Parse a PYF_HELLO payload (@len bytes, not NUL-terminated). Returns 0
 * or -EPROTO with a message. Pure (fuzzed).
 */
int pyhello_parse(const char *text, size_t len, struct pyhello *out,
		  char *err, size_t errlen);

/*
 * Start @script under @python (absolute paths, borrowed) as
 * `python -I -B script`, RLIMIT_AS = @max_memory when non-zero, the
 * socket on fd 3. On success @p owns the process and the socket.
 */
int pyproc_spawn(struct pyproc *p, const char *python, const char *script,
		 uint64_t max_memory, char *err, size_t errlen);

/*
 * Send a frame: @h (magic and len are filled in from the @n pieces of
 * @iov) and its payload. @deadline_ms: CLOCK_MONOTONIC ms, 0 for none.
 */
int pyproc_send(struct pyproc *p, struct pyframe_hdr *h,
		const struct iovec *iov, int n, int64_t deadline_ms,
		char *err, size_t errlen);

/*
 * Receive one frame header into @h, checked with pyframe_check_reply
 * (@max_data), and its payload into @payload (reset first; capped by the
 * check). A PYF_ERROR is returned as 0 like any frame: the caller looks
 * at h->type.
 */
int pyproc_recv(struct pyproc *p, struct pyframe_hdr *h, struct buf *payload,
		uint64_t max_data, int64_t deadline_ms, char *err,
		size_t errlen);

/*
 * The process is gone or must go: close the socket, give it @grace_ms to
 * exit by itself (a crashed process already has), then SIGKILL, and
 * reap. p->status holds the wait status afterwards. NULL-safe, idempotent.
 */
void pyproc_stop(struct pyproc *p, int grace_ms);

/* "exited with status 1", "was killed by signal 9 (Killed)" into @buf. */
const char *pyproc_describe(int status, char *buf, size_t n);

#endif

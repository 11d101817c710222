/*
 * prov_tool - drive one provider from the command line, for the remote
 * integration tests: list, head, get, put, del, and "stress", which makes
 * many random ranged reads with several threads and checks every byte
 * against a local copy of the object.
 *
 *   prov_tool URL list PREFIX [-d]
 *   prov_tool URL head KEY
 *   prov_tool URL get KEY [OFF LEN]          (bytes to stdout)
 *   prov_tool URL put KEY FILE               (PROV_TOOL_PROGRESS=1: the
 *                                             last progress on stderr)
 *   prov_tool URL del KEY
 *   prov_tool URL stress KEY FILE N THREADS SEED
 *   prov_tool URL repeat KEY COUNT SLEEP_MS   (whole GETs, one process)
 *   prov_tool URL blocks KEY SIZE BLOCK THREADS (ranged GETs of every
 *                                                block; prints MB/s)
 *
 * PROV_TOOL_TIMEOUT_MS sets opts.timeout_ms. Errors: one line on stderr
 * (prov_last_error()) and exit 1. stress prints one JSON object: ok,
 * failed, wrong (bytes that differ: must be 0), max_ms, errors by errno,
 * and the provider's counters.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/fileutil.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "providers/provider.h"

static int usage(void);

static int out_sink(void *arg, const void *data, size_t len)
{
	(void)arg;
	return write_all(STDOUT_FILENO, data, len);
}

static int null_sink(void *arg, const void *data, size_t len)
{
	(void)arg;
	(void)data;
	(void)len;
	return 0;
}

struct put_progress {
	uint64_t done, total;
	unsigned long calls;
};

static void put_progress_fn(void *arg, uint64_t done, uint64_t total)
{
	struct put_progress *pp = arg;

	pp->done = done;
	pp->total = total;
	pp->calls++;
}

struct cmp_sink {
	const uint8_t *want;
	uint64_t pos, len;
	bool wrong;
};

static int cmp_sink_fn(void *arg, const void *data, size_t len)
{
	struct cmp_sink *c = arg;

	if (c->pos + len > c->len || memcmp(c->want + c->pos, data, len) != 0)
		c->wrong = true;
	c->pos += len;
	return 0;
}

struct stress {
	struct prov *p;
	const char *key;
	const uint8_t *data;
	uint64_t size;
	int n, seed;
	pthread_mutex_t lock;
	int next; /* protected by lock */
	int ok, failed, wrong, short_reads; /* protected by lock */
	int64_t max_ms;  /* protected by lock */
	int by_errno[256]; /* protected by lock */
	char last_err[512]; /* protected by lock */
};

static void *stress_thread(void *arg)
{
	struct stress *s = arg;

	for (;;) {
		struct cmp_sink c = { 0 };
		unsigned int seed;
		uint64_t off, len;
		int64_t t0, ms, got;
		int i;

		pthread_mutex_lock(&s->lock);
		i = s->next++;
		pthread_mutex_unlock(&s->lock);
		if (i >= s->n)
			break;
		seed = (unsigned int)(s->seed * 1000003 + i);
		off = ((uint64_t)rand_r(&seed) << 16 ^ (uint64_t)rand_r(&seed)) %
		      s->size;
		len = 1 + (uint64_t)rand_r(&seed) % (256 * 1024);
		if (len > s->size - off)
			len = s->size - off;
		c.want = s->data + off;
		c.len = len;
		t0 = time_mono_ms();
		got = prov_get(s->p, s->key, off, len, NULL, cmp_sink_fn, &c);
		ms = time_mono_ms() - t0;
		pthread_mutex_lock(&s->lock);
		if (ms > s->max_ms)
			s->max_ms = ms;
		if (got < 0) {
			s->failed++;
			if (-got < 256)
				s->by_errno[-got]++;
			snprintf(s->last_err, sizeof(s->last_err), "%s",
				 prov_last_error());
		} else if (c.wrong) {
			s->wrong++;
		} else if ((uint64_t)got != len || c.pos != len) {
			s->short_reads++;
		} else {
			s->ok++;
		}
		pthread_mutex_unlock(&s->lock);
	}
	return NULL;
}

static int do_stress(struct prov *p, char **argv)
{
	struct stress s = { .p = p, .key = argv[0] };
	struct prov_stats st;
	pthread_t th[64];
	struct buf b;
	int nth, ret;

	buf_init(&b, 0);
	ret = file_read_capped(argv[1], (size_t)1 << 31, &b);
	if (ret < 0 || !b.len) {
		fprintf(stderr, "prov_tool: %s: %s\n", argv[1], strerror(-ret));
		return 1;
	}
	s.data = (const uint8_t *)b.data;
	s.size = b.len;
	s.n = atoi(argv[2]);
	nth = atoi(argv[3]);
	s.seed = atoi(argv[4]);
	if (nth < 1 || nth > 64)
		nth = 4;
	pthread_mutex_init(&s.lock, NULL);
	for (int i = 0; i < nth; i++)
		pthread_create(&th[i], NULL, stress_thread, &s);
	for (int i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	prov_get_stats(p, &st);
	printf("{\"ok\": %d, \"failed\": %d, \"wrong\": %d, \"short\": %d, "
	       "\"max_ms\": %" PRId64 ", \"errors\": {",
	       s.ok, s.failed, s.wrong, s.short_reads, s.max_ms);
	for (int i = 0, first = 1; i < 256; i++) {
		if (!s.by_errno[i])
			continue;
		printf("%s\"%d\": %d", first ? "" : ", ", i, s.by_errno[i]);
		first = 0;
	}
	printf("}, \"requests\": %" PRIu64 ", \"retries\": %" PRIu64
	       ", \"prov_errors\": %" PRIu64 ", \"bytes_received\": %" PRIu64
	       "}\n",
	       st.requests, st.retries, st.errors, st.bytes_received);
	if (s.last_err[0])
		fprintf(stderr, "prov_tool: last error: %s\n", s.last_err);
	buf_free(&b);
	return 0;
}

struct blocks {
	struct prov *p;
	const char *key;
	uint64_t size, block;
	pthread_mutex_t lock;
	uint64_t next; /* protected by lock */
	int failed;    /* protected by lock */
};

static void *blocks_thread(void *arg)
{
	struct blocks *b = arg;

	for (;;) {
		uint64_t off, len;
		int64_t got;

		pthread_mutex_lock(&b->lock);
		off = b->next;
		b->next += b->block;
		pthread_mutex_unlock(&b->lock);
		if (off >= b->size)
			break;
		len = b->size - off < b->block ? b->size - off : b->block;
		got = prov_get(b->p, b->key, off, len, NULL, null_sink, NULL);
		if (got != (int64_t)len) {
			pthread_mutex_lock(&b->lock);
			b->failed++;
			pthread_mutex_unlock(&b->lock);
		}
	}
	return NULL;
}

static int do_blocks(struct prov *p, char **argv)
{
	struct blocks b = { .p = p, .key = argv[0] };
	pthread_t th[64];
	int nth = atoi(argv[3]);
	int64_t t0;
	double s;

	b.size = strtoull(argv[1], NULL, 10);
	b.block = strtoull(argv[2], NULL, 10);
	if (nth < 1 || nth > 64 || b.block == 0)
		return usage();
	pthread_mutex_init(&b.lock, NULL);
	t0 = time_mono_ns();
	for (int i = 0; i < nth; i++)
		pthread_create(&th[i], NULL, blocks_thread, &b);
	for (int i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	s = (double)(time_mono_ns() - t0) / 1e9;
	printf("{\"seconds\": %.3f, \"MBps\": %.1f, \"failed\": %d}\n", s,
	       (double)b.size / s / 1e6, b.failed);
	return b.failed ? 1 : 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: prov_tool URL list|head|get|put|del|stress "
			"ARGS...\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct prov_opts opts = { 0 };
	struct prov *p = NULL;
	const char *cmd, *env;
	int ret = 0, rc = 0;

	log_init("prov_tool", LOG_LVL_WARN);
	if (argc < 4)
		return usage();
	env = getenv("PROV_TOOL_TIMEOUT_MS");
	if (env)
		opts.timeout_ms = atoi(env);
	opts.bearer_token_file = getenv("PROV_TOOL_BEARER_FILE");
	ret = prov_open(argv[1], &opts, &p);
	if (ret < 0) {
		fprintf(stderr, "prov_tool: open: %s\n", prov_last_error());
		return 1;
	}
	cmd = argv[2];
	if (strcmp(cmd, "list") == 0) {
		struct prov_listing l;

		ret = prov_list(p, argv[3], argc > 4 && !strcmp(argv[4], "-d"),
				&l);
		for (size_t i = 0; ret == 0 && i < l.n_prefixes; i++)
			printf("P %s\n", l.prefixes[i]);
		for (size_t i = 0; ret == 0 && i < l.n_objects; i++)
			printf("O %s %" PRIu64 "\n", l.objects[i].key,
			       l.objects[i].size);
		prov_listing_free(&l);
	} else if (strcmp(cmd, "head") == 0) {
		struct prov_object o;

		ret = prov_head(p, argv[3], &o);
		if (ret == 0)
			printf("%s %" PRIu64 " %s %" PRId64 "\n", o.key, o.size,
			       o.etag ? o.etag : "-", o.mtime);
		prov_object_free(&o);
	} else if (strcmp(cmd, "get") == 0) {
		uint64_t off = argc > 5 ? strtoull(argv[4], NULL, 10) : 0;
		uint64_t len = argc > 5 ? strtoull(argv[5], NULL, 10) :
					  PROV_WHOLE;
		int64_t got = prov_get(p, argv[3], off, len, NULL, out_sink,
				       NULL);

		ret = got < 0 ? (int)got : 0;
	} else if (strcmp(cmd, "put") == 0 && argc > 4) {
		int fd = open(argv[4], O_RDONLY);
		struct stat st;

		if (fd < 0 || fstat(fd, &st) < 0) {
			fprintf(stderr, "prov_tool: %s: %s\n", argv[4],
				strerror(errno));
			rc = 1;
		} else {
			struct put_progress pp = { 0 };

			ret = prov_put_file(p, argv[3], fd,
					    (uint64_t)st.st_size,
					    put_progress_fn, &pp);
			if (ret == 0 && getenv("PROV_TOOL_PROGRESS"))
				fprintf(stderr, "progress %" PRIu64 "/%" PRIu64
					" in %lu calls\n",
					pp.done, pp.total, pp.calls);
		}
		if (fd >= 0)
			close(fd);
	} else if (strcmp(cmd, "del") == 0) {
		ret = prov_delete(p, argv[3]);
	} else if (strcmp(cmd, "repeat") == 0 && argc > 5) {
		int n = atoi(argv[4]), ok = 0;

		for (int i = 0; i < n; i++) {
			int64_t got = prov_get(p, argv[3], 0, PROV_WHOLE, NULL,
					       null_sink, NULL);

			if (got >= 0)
				ok++;
			else
				fprintf(stderr, "prov_tool: %s\n",
					prov_last_error());
			if (i + 1 < n)
				usleep((useconds_t)atoi(argv[5]) * 1000);
		}
		printf("%d of %d\n", ok, n);
		rc = ok == n ? 0 : 1;
	} else if (strcmp(cmd, "blocks") == 0 && argc > 6) {
		rc = do_blocks(p, argv + 3);
	} else if (strcmp(cmd, "stress") == 0 && argc > 7) {
		rc = do_stress(p, argv + 3);
	} else {
		rc = usage();
	}
	if (ret < 0) {
		fprintf(stderr, "prov_tool: %s (%s)\n", prov_last_error(),
			strerror(-ret));
		rc = 1;
	}
	prov_close(&p);
	return rc;
}

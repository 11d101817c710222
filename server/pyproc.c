/*
 * pyproc - spawn, talk to, and stop one Python model process. See
 * pyproc.h for the wire format; this file owns the system calls.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/timeutil.h"
#include "server/pyproc.h"

#define PYPROC_FD 3

extern char **environ;

int pyframe_check_reply(const struct pyframe_hdr *h, uint64_t max_data,
			char *err, size_t errlen)
{
	if (h->magic != PYFRAME_MAGIC || h->len_hi != 0) {
		snprintf(err, errlen, "model process sent a bad frame header");
		return -EPROTO;
	}
	switch (h->type) {
	case PYF_HELLO:
	case PYF_ERROR:
	case PYF_METRICS_RESULT:
		if (h->len > PYFRAME_MAX_TEXT) {
			snprintf(err, errlen,
				 "model process sent %llu bytes of text "
				 "(at most %u)",
				 (unsigned long long)h->len, PYFRAME_MAX_TEXT);
			return -EPROTO;
		}
		return 0;
	case PYF_RESULT:
		if ((uint64_t)h->rows * h->cols * sizeof(double) != h->len ||
		    h->len > max_data) {
			snprintf(err, errlen,
				 "model process sent a %ux%u result in %llu "
				 "bytes",
				 h->rows, h->cols, (unsigned long long)h->len);
			return -EPROTO;
		}
		return 0;
	default:
		snprintf(err, errlen, "model process sent frame type %u",
			 h->type);
		return -EPROTO;
	}
}

int pyhello_parse(const char *text, size_t len, struct pyhello *out,
		  char *err, size_t errlen)
{
	const cJSON *nf, *no, *cl, *me, *ob;
	cJSON *j;
	int ret = -EPROTO;

	memset(out, 0, sizeof(*out));
	j = cJSON_ParseWithLength(text, len);
	nf = cJSON_GetObjectItemCaseSensitive(j, "n_features");
	no = cJSON_GetObjectItemCaseSensitive(j, "n_outputs");
	cl = cJSON_GetObjectItemCaseSensitive(j, "classifier");
	me = cJSON_GetObjectItemCaseSensitive(j, "metrics");
	ob = cJSON_GetObjectItemCaseSensitive(j, "objective");
	if (!cJSON_IsObject(j) || !cJSON_IsNumber(nf) || !cJSON_IsNumber(no)) {
		snprintf(err, errlen, "model process sent a bad description");
		goto out;
	}
	if (no->valuedouble < 1 || no->valuedouble > 65536 ||
	    nf->valuedouble > 1e9 || nf->valuedouble < -1) {
		snprintf(err, errlen,
			 "model has %g outputs and %g features per row",
			 no->valuedouble, nf->valuedouble);
		goto out;
	}
	out->n_outputs = (uint32_t)no->valuedouble;
	out->n_features = nf->valuedouble >= 1 ? (int64_t)nf->valuedouble : -1;
	out->is_classifier = cJSON_IsTrue(cl);
	out->has_metrics = cJSON_IsTrue(me);
	snprintf(out->objective, sizeof(out->objective), "%s",
		 cJSON_IsString(ob) ? ob->valuestring : "python");
	ret = 0;
out:
	cJSON_Delete(j);
	return ret;
}

/*
 * The child's environment: the server's, plus one thread per BLAS/OpenMP
 * pool unless the operator chose otherwise (replicas are the parallelism;
 * a thread pool per process on a shared node only oversubscribes).
 */
static char **child_env(void)
{
	static const char *const defaults[] = {
	    "OMP_NUM_THREADS=1", "OPENBLAS_NUM_THREADS=1", "MKL_NUM_THREADS=1",
	    NULL};
	size_t n = 0, i, j, k;
	char **env;

	while (environ[n])
		n++;
	env = calloc(n + 4, sizeof(*env));
	if (!env)
		return NULL;
	for (i = 0; i < n; i++)
		env[i] = environ[i];
	j = n;
	for (k = 0; defaults[k]; k++) {
		size_t klen = strcspn(defaults[k], "=") + 1;

		for (i = 0; i < n; i++)
			if (strncmp(environ[i], defaults[k], klen) == 0)
				break;
		if (i == n)
			env[j++] = (char *)defaults[k];
	}
	env[j] = NULL;
	return env;
}

int pyproc_spawn(struct pyproc *p, const char *python, const char *script,
		 uint64_t max_memory, char *err, size_t errlen)
{
	char *argv[] = {(char *)python, (char *)"-I", (char *)"-B",
			(char *)script, NULL};
	struct rlimit rl = {.rlim_cur = max_memory, .rlim_max = max_memory};
	int sv[2] = {-1, -1}, ret;
	sigset_t none;
	char **env;
	pid_t pid;

	p->pid = 0;
	p->fd = -1;
	p->status = 0;
	env = child_env();
	if (!env)
		return -ENOMEM;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		ret = -errno;
		snprintf(err, errlen, "socketpair: %s", strerror(-ret));
		goto out;
	}
	sigemptyset(&none);
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot fork a model process: %s",
			 strerror(-ret));
		goto out;
	}
	if (pid == 0) {
		/* async-signal-safe calls only from here to execve */
		signal(SIGPIPE, SIG_DFL);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (sv[1] == PYPROC_FD) {
			if (fcntl(PYPROC_FD, F_SETFD, 0) < 0)
				_exit(126);
		} else if (dup2(sv[1], PYPROC_FD) < 0) {
			_exit(126);
		}
		syscall(SYS_close_range, PYPROC_FD + 1, ~0U, 0);
		if (max_memory && setrlimit(RLIMIT_AS, &rl) < 0)
			_exit(126);
		execve(python, argv, env);
		_exit(127);
	}
	close(sv[1]);
	sv[1] = -1;
	p->pid = pid;
	p->fd = sv[0];
	sv[0] = -1;
	ret = 0;
out:
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	free(env);
	return ret;
}

/* Wait until @fd is ready for @events or the deadline passes. */
static int wait_fd(int fd, short events, int64_t deadline_ms)
{
	struct pollfd pfd = {.fd = fd, .events = events};
	int64_t left;
	int n;

	for (;;) {
		left = deadline_ms ? deadline_ms - time_mono_ms() : -1;
		if (deadline_ms && left <= 0)
			return -ETIMEDOUT;
		n = poll(&pfd, 1, left > 1000000 ? 1000000 : (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

static int io_error(int ret, char *err, size_t errlen)
{
	if (ret == -ETIMEDOUT)
		snprintf(err, errlen, "model process did not answer in time");
	else if (ret == -EPIPE || ret == -ECONNRESET)
		snprintf(err, errlen, "model process is gone");
	else
		snprintf(err, errlen, "model process socket: %s",
			 strerror(-ret));
	return ret == -ECONNRESET ? -EPIPE : ret;
}

int pyproc_send(struct pyproc *p, struct pyframe_hdr *h,
		const struct iovec *iov, int n, int64_t deadline_ms,
		char *err, size_t errlen)
{
	struct iovec v[64];
	struct msghdr msg = {0};
	uint64_t len = 0;
	ssize_t w;
	int i, cnt, ret;

	if (n + 1 > (int)(sizeof(v) / sizeof(v[0])))
		return -E2BIG;
	for (i = 0; i < n; i++)
		len += iov[i].iov_len;
	h->magic = PYFRAME_MAGIC;
	h->len = len;
	h->len_hi = 0;
	v[0].iov_base = h;
	v[0].iov_len = sizeof(*h);
	memcpy(v + 1, iov, (size_t)n * sizeof(*iov));
	cnt = n + 1;
	i = 0;
	while (i < cnt) {
		msg.msg_iov = v + i;
		msg.msg_iovlen = (size_t)(cnt - i);
		w = sendmsg(p->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return io_error(-errno, err, errlen);
			ret = wait_fd(p->fd, POLLOUT, deadline_ms);
			if (ret < 0)
				return io_error(ret, err, errlen);
			continue;
		}
		while (i < cnt && (size_t)w >= v[i].iov_len)
			w -= (ssize_t)v[i++].iov_len;
		if (i < cnt) {
			v[i].iov_base = (char *)v[i].iov_base + w;
			v[i].iov_len -= (size_t)w;
		}
	}
	return 0;
}

static int read_full(int fd, void *dst, size_t len, int64_t deadline_ms)
{
	char *d = dst;
	ssize_t r;
	int ret;

	while (len) {
		r = recv(fd, d, len, MSG_DONTWAIT);
		if (r > 0) {
			d += r;
			len -= (size_t)r;
			continue;
		}
		if (r == 0)
			return -EPIPE;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		ret = wait_fd(fd, POLLIN, deadline_ms);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int pyproc_recv(struct pyproc *p, struct pyframe_hdr *h, struct buf *payload,
		uint64_t max_data, int64_t deadline_ms, char *err,
		size_t errlen)
{
	int ret;

	buf_reset(payload);
	ret = read_full(p->fd, h, sizeof(*h), deadline_ms);
	if (ret < 0)
		return io_error(ret, err, errlen);
	ret = pyframe_check_reply(h, max_data, err, errlen);
	if (ret < 0)
		return ret;
	if (!h->len)
		return 0;
	if (!payload->data || payload->cap < h->len) {
		char *nd = realloc(payload->data, h->len + 1);

		if (!nd)
			return -ENOMEM;
		payload->data = nd;
		payload->cap = h->len;
	}
	ret = read_full(p->fd, payload->data, h->len, deadline_ms);
	if (ret < 0)
		return io_error(ret, err, errlen);
	payload->len = h->len;
	payload->data[h->len] = '\0';
	return 0;
}

void pyproc_stop(struct pyproc *p, int grace_ms)
{
	int64_t until = time_mono_ms() + grace_ms;
	pid_t r;

	if (!p)
		return;
	if (p->fd >= 0) {
		close(p->fd);
		p->fd = -1;
	}
	if (p->pid <= 0)
		return;
	for (;;) {
		r = waitpid(p->pid, &p->status, WNOHANG);
		if (r == p->pid || (r < 0 && errno != EINTR))
			break;
		if (time_mono_ms() >= until) {
			kill(p->pid, SIGKILL);
			while (waitpid(p->pid, &p->status, 0) < 0 &&
			       errno == EINTR)
				;
			break;
		}
		usleep(2000);
	}
	p->pid = 0;
}

const char *pyproc_describe(int status, char *buf, size_t n)
{
	if (WIFEXITED(status))
		snprintf(buf, n, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, n, "was killed by signal %d (%s)",
			 WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(buf, n, "ended (wait status %d)", status);
	return buf;
}

/*
 * supervisor_worker - the supervisor's worker (see supervisor.c): forking
 * it with the state as it stands, applying its journal, and what follows
 * its death: FUSE_NOTIFY_RESEND on the connection and a new worker, or,
 * where the kernel cannot resend or no worker can start, the end of the
 * mount.
 *
 * Readiness ("the mount answers", what systemd and the waiting `assetfs
 * mount` are told) is a stat of the mountpoint, done by a prober: a child
 * of the supervisor that holds nothing of the connection (every inherited
 * descriptor closed) and only stats. No process that serves the
 * connection may itself wait on it: a FUSE request already read by a
 * worker thread is waited for uninterruptibly (fs/fuse/dev.c,
 * request_wait_answer()), so a worker killed while one of its own
 * threads waited on its own mount could never finish dying, its
 * descriptors never closed, the supervisor never saw the death, and the
 * mount hung until aborted by hand. A prober left waiting when its worker
 * dies is answered by the next worker (the kernel resends the request);
 * one that takes longer than SUP_PROBE_LIMIT_MS is killed and reaped
 * whenever it ends, and the supervisor's loop never waits for it.
 * (Asking the kernel without a request, e.g. mountinfo, would say the
 * mount exists, not that it answers.)
 *
 * Threads: the supervisor's one. Errors: negative errno.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/digest.h"
#include "common/log.h"
#include "common/sha256_mb.h"
#include "common/sdnotify.h"
#include "fs/mount/handover.h"
#include "fs/mount/mount_int.h"
#include "fs/mount/supervisor_int.h"


/* The FUSE protocol's notification, include/uapi/linux/fuse.h 7.40:
   FUSE_NOTIFY_RESEND (7) in a fuse_out_header with unique 0, and the
   FUSE_HAS_RESEND init flag (1ULL << 39: bit 7 of init_in.flags2). */
#define SUP_NOTIFY_RESEND 7
#define SUP_INIT_EXT (1u << 30)
#define SUP_HAS_RESEND_FLAGS2 (1u << 7)
#define SUP_OUT_HEADER_LEN 16
#define SUP_IN_HEADER_LEN 40

/* A worker that fails this many starts in a row ends the mount. */
#define SUP_MAX_FAILED_STARTS 3
/* The prober's stat of the mountpoint gets this long, in ms. */
#define SUP_PROBE_LIMIT_MS 30000

/* test only: ASSETFS_TEST_PROBE_LIMIT_MS shortens the prober's limit */
static int probe_limit_ms(void)
{
	const char *v = getenv("ASSETFS_TEST_PROBE_LIMIT_MS");
	int ms = v && *v ? atoi(v) : 0;

	return ms > 0 ? ms : SUP_PROBE_LIMIT_MS;
}

void sup_say_ready(struct sup *s, int status)
{
	if (s->said_ready)
		return;
	s->said_ready = true;
	if (s->o->ready)
		s->o->ready(s->o->ready_arg, status);
	if (status == 0)
		sd_notify_state("READY=1");
}

/* Said once the prober answered or was given up on. */
static void say_serving(struct sup *s)
{
	log_info("mounted %s on %s (SHA-256: %s, %zu lane%s)",
		 s->o->store_url, s->o->mountpoint, sha256_mb_impl(),
		 sha256_mb_lanes(), sha256_mb_lanes() == 1 ? "" : "s");
	log_info("worker pid %d serving, supervisor pid %d", (int)s->worker,
		 (int)getpid());
	sup_say_ready(s, 0);
}

void sup_probe_start(struct sup *s)
{
	pid_t pid, parent = getpid();
	sigset_t all;
	struct stat st;
	int limit;

	if (s->said_ready || s->prober)
		return;
	pid = fork();
	if (pid < 0) {
		log_warn("mount: cannot fork the check that %s answers (%s): "
			 "reporting ready", s->o->mountpoint, strerror(errno));
		say_serving(s);
		return;
	}
	if (pid == 0) {
		/* nothing of the connection, the worker's socket or our
		   signalfd: a prober stuck on the mount holds nothing up */
		close_range(3, ~0u, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		prctl(PR_SET_NAME, "assetfs-probe");
		if (getppid() != parent)
			_exit(ESRCH);
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		if (stat(s->o->mountpoint, &st) < 0)
			_exit(errno > 0 && errno < 256 ? errno : EIO);
		_exit(0);
	}
	s->prober = pid;
	clock_gettime(CLOCK_MONOTONIC, &s->probe_end);
	limit = probe_limit_ms();
	s->probe_end.tv_sec += limit / 1000;
	s->probe_end.tv_nsec += (long)(limit % 1000) * 1000000;
	if (s->probe_end.tv_nsec >= 1000000000) {
		s->probe_end.tv_sec++;
		s->probe_end.tv_nsec -= 1000000000;
	}
}

void sup_probe_done(struct sup *s, int status)
{
	s->prober = 0;
	if (s->said_ready || s->end != SUP_RUN)
		return;
	/* mounted all the same: waiting on would hang the caller */
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		log_warn("mount: %s does not answer a stat (%s); reporting "
			 "ready anyway", s->o->mountpoint,
			 WIFEXITED(status) ? strerror(WEXITSTATUS(status)) :
					     strsignal(WTERMSIG(status)));
	say_serving(s);
}

int sup_probe_tick(struct sup *s)
{
	struct timespec now;
	long ms;

	if (!s->prober || s->said_ready)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (s->probe_end.tv_sec - now.tv_sec) * 1000 +
	     (s->probe_end.tv_nsec - now.tv_nsec) / 1000000;
	if (ms > 0)
		return ms > INT_MAX ? INT_MAX : (int)ms;
	log_warn("mount: %s did not answer a stat in %d ms; reporting ready "
		 "anyway (the check, pid %d, is killed)", s->o->mountpoint,
		 probe_limit_ms(), (int)s->prober);
	kill(s->prober, SIGKILL); /* reaped by on_signal() when it ends */
	say_serving(s);
	return -1;
}

bool sup_reap(pid_t pid, int limit_ms)
{
	int pfd;
	pid_t r;

	if (pid <= 0)
		return true;
	kill(pid, SIGKILL);
	pfd = (int)pidfd_open(pid, 0);
	if (pfd >= 0) {
		struct pollfd p = { .fd = pfd, .events = POLLIN };

		while (poll(&p, 1, limit_ms) < 0 && errno == EINTR)
			;
		close(pfd);
	}
	while ((r = waitpid(pid, NULL, WNOHANG)) < 0 && errno == EINTR)
		;
	if (r == 0) {
		log_warn("mount: pid %d did not die within %d ms of SIGKILL "
			 "(a thread held in the kernel): going on without "
			 "waiting for it", (int)pid, limit_ms);
		return false;
	}
	return true;
}

int sup_spawn_worker(struct sup *s, bool await_state)
{
	struct mount_worker w = { 0 };
	int sv[2];
	sigset_t all;
	pid_t pid, parent;
	int ret;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	s->st.gen++;
	parent = getpid();
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		close(sv[0]);
		close(sv[1]);
		return ret;
	}
	if (pid == 0) {
		/* the worker goes with the supervisor (kill -9 of the
		   daemon's main process, the end of a unit or a pod): no
		   worker serves on unsupervised */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		close(sv[0]);
		close(s->sig_fd);
		if (s->listen_fd >= 0)
			close(s->listen_fd);
		/* only the supervisor ends the mount */
		signal(SIGTERM, SIG_IGN);
		signal(SIGINT, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		w.fuse_fd = s->fuse_fd;
		w.ctl = sv[1];
		w.st = &s->st;
		w.supervisor_pid = parent;
		w.first = !s->said_ready;
		w.await_state = await_state;
		ret = mount_worker_run(s->o, &w);
		_exit(ret < 0 ? 1 : 0);
	}
	close(sv[1]);
	s->worker = pid;
	s->wctl = sv[0];
	s->worker_ready = false;
	return 0;
}

static bool kernel_has_resend(const struct ho_state *st)
{
	uint32_t flags, flags2;

	if (!st->init_in || st->init_in_len < SUP_IN_HEADER_LEN + 24)
		return true; /* not known yet: try */
	memcpy(&flags, st->init_in + SUP_IN_HEADER_LEN + 12, 4);
	memcpy(&flags2, st->init_in + SUP_IN_HEADER_LEN + 16, 4);
	return (flags & SUP_INIT_EXT) && (flags2 & SUP_HAS_RESEND_FLAGS2);
}

void sup_log_kernel(const struct ho_state *st)
{
	uint32_t minor = 0;

	if (st->init_in_len >= SUP_IN_HEADER_LEN + 8)
		memcpy(&minor, st->init_in + SUP_IN_HEADER_LEN + 4, 4);
	if (kernel_has_resend(st))
		log_info("mount: kernel FUSE 7.%u resends what a crashed "
			 "worker held (FUSE_NOTIFY_RESEND): a crash is a "
			 "pause", minor);
	else
		log_warn("mount: kernel FUSE 7.%u has no FUSE_NOTIFY_RESEND "
			 "(Linux < 6.9): a crash of the worker is not "
			 "survivable here: the mount then ends (readers get "
			 "ENOTCONN, none hangs); takeover still works", minor);
}

/* Apply what the worker sent; 0, or -EPIPE once it is gone. */
int sup_read_journal(struct sup *s, struct ho_msg *m)
{
	bool had_init = s->st.init_in != NULL;
	int t;

	while (s->wctl >= 0) {
		t = ho_recv(s->wctl, m, NULL, 0);
		if (t == -ETIMEDOUT || t == -EAGAIN)
			return 0;
		if (t <= 0)
			return -EPIPE;
		if (t == HO_READY) {
			s->worker_ready = true;
			s->failed_starts = 0;
			sup_probe_start(s);
			continue;
		}
		if (ho_apply(&s->st, m) < 0)
			log_warn("mount: bad journal message %d from the "
				 "worker: ignored", t);
		if (!had_init && s->st.init_in) {
			had_init = true;
			sup_log_kernel(&s->st);
		}
	}
	return 0;
}

int sup_drain_worker(struct sup *s, struct ho_msg *m, int limit_ms)
{
	int t;

	if (ho_send_type(s->wctl, HO_DRAIN) < 0)
		return -EPIPE;
	for (;;) {
		t = ho_recv(s->wctl, m, NULL, limit_ms);
		if (t == HO_DRAINED)
			return 0;
		if (t <= 0)
			return t < 0 ? t : -EPIPE;
		if (t == HO_READY) {
			s->worker_ready = true;
			sup_probe_start(s);
		} else {
			ho_apply(&s->st, m);
		}
	}
}

/* Put the requests a dead worker held back in the kernel's queue. */
static int resend(struct sup *s)
{
	unsigned char oh[SUP_OUT_HEADER_LEN] = { 0 };
	uint32_t len = SUP_OUT_HEADER_LEN;
	int32_t code = SUP_NOTIFY_RESEND;

	memcpy(oh, &len, 4);
	memcpy(oh + 4, &code, 4); /* unique (8..15) stays 0: a notify */
	if (write(s->fuse_fd, oh, sizeof(oh)) < 0)
		return -errno;
	return 0;
}

void sup_worker_died(struct sup *s, int status, struct ho_msg *m)
{
	bool crashed = WIFSIGNALED(status);
	int ret = 0;

	sup_read_journal(s, m);
	close(s->wctl);
	s->wctl = -1;
	s->worker = 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		s->end = SUP_UNMOUNTED;
		return;
	}
	if (s->stopping) {
		s->end = SUP_UNMOUNTED;
		return;
	}
	if (crashed)
		log_error("mount: worker died of signal %d (%s): starting "
			  "another on the same connection",
			  WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		log_error("mount: worker exited with status %d%s",
			  WEXITSTATUS(status),
			  s->worker_ready ? ": starting another" : "");
	if (!s->worker_ready && !crashed &&
	    (!s->said_ready || ++s->failed_starts >= SUP_MAX_FAILED_STARTS)) {
		log_error("mount: no worker could start: unmounting %s",
			  s->o->mountpoint);
		sup_say_ready(s, -EIO);
		s->end = SUP_FAILED;
		return;
	}
	if (!kernel_has_resend(&s->st) || (ret = resend(s)) < 0) {
		log_error("mount: the requests the dead worker held cannot be "
			  "sent again (%s): ending the mount on %s",
			  kernel_has_resend(&s->st) ? strerror(-ret) :
						      "kernel < 6.9",
			  s->o->mountpoint);
		s->end = SUP_FAILED;
		return;
	}
	s->st.worker_restarts++;
	ret = sup_spawn_worker(s, false);
	if (ret < 0) {
		log_error("mount: cannot start a worker: %s", strerror(-ret));
		s->end = SUP_FAILED;
	}
}


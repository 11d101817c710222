/*
 * supervisor_worker - the supervisor's worker (see supervisor.c): forking
 * it with the state as it stands, applying its journal, and what follows
 * its death: FUSE_NOTIFY_RESEND on the connection and a new worker, or,
 * where the kernel cannot resend or no worker can start, the end of the
 * mount.
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/digest.h"
#include "common/log.h"
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
			sup_say_ready(s, 0);
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
			sup_say_ready(s, 0);
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


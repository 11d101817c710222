/*
 * supervisor - mount_run(): the process that holds a mount's /dev/fuse
 * descriptor and does no file-system work (DESIGN §4).
 *
 * It mounts (or takes a live mount over, below), then forks a worker that
 * serves the connection (mount_worker_run()). Forking without exec gives
 * the worker the supervisor's state as it stands (struct ho_state: the
 * inodes the kernel holds, the open handles, the FUSE_INIT exchange) with
 * nothing to serialise; the worker keeps that copy current by journaling
 * every change to the supervisor over a SOCK_SEQPACKET socketpair before
 * the kernel sees it. When the worker dies (any signal, OOM kill, abort),
 * the connection stays up because this process still holds the
 * descriptor; it writes FUSE_NOTIFY_RESEND to it, which moves the
 * requests the dead worker had taken back to the kernel's pending queue
 * (Linux 6.9+: the requests sit on the processing list of the device
 * file, which is the same open file for every process here), and forks a
 * new worker. Readers see a pause. On a kernel without it those requests
 * could never be answered: the start-up log says so, and a crash then ends
 * the mount (unmount and abort, so that no reader hangs forever).
 *
 * Neither this process nor a worker ever issues a request on the mount it
 * serves (no stat, statfs, open or realpath of the mountpoint once the
 * connection is ours): the kernel waits uninterruptibly for the answer to
 * a request a worker has read, so a process waiting on its own mount can
 * outlive its own death. "Ready" (our caller, systemd) is said once a
 * prober child, which holds nothing of the connection, had a stat of the
 * mountpoint answered (supervisor_worker.c). The statfs of stale_mount()
 * runs before this process holds any connection.
 *
 * Takeover: the supervisor listens on the mount's control socket
 * (mount_control_path(): derived from the mountpoint, mode 0600, peers of
 * another uid than ours or root refused). A new `assetfs mount -o
 * takeover` connects, both say HO_HELLO with their hand-over version (a
 * mismatch is refused with one message; this process keeps serving), the
 * worker is told to drain (stop taking requests, finish the ones it
 * holds), the state and the descriptor go over (SCM_RIGHTS), the new
 * process says HO_COMMIT, and this one kills its parked worker, says
 * HO_BYE and returns without unmounting. If anything fails before the
 * commit, the worker resumes.
 *
 * Under systemd, a SIGTERM whose cause is a `systemctl restart` of the
 * unit hands the descriptor and the state to systemd's fd store instead
 * of unmounting, and the next start adopts them (supervisor_sd.c); any
 * other SIGTERM unmounts. At start, a dead daemon's mount (ENOTCONN) on
 * the mountpoint is detached first.
 *
 * The worker's side of this (forking, draining, the journal, a death) is
 * in supervisor_worker.c; supervisor_int.h is what the files share.
 *
 * Threads: one; signals arrive through a signalfd. Errors: negative errno.
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
#include <sys/statfs.h>
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


int mount_control_path(const char *mountpoint, char *buf, size_t len)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	char dir[PATH_MAX];
	int n;

	if (geteuid() == 0)
		snprintf(dir, sizeof(dir), "/run/assetfs");
	else if (xdg && *xdg == '/')
		snprintf(dir, sizeof(dir), "%s/assetfs", xdg);
	else
		snprintf(dir, sizeof(dir), "/tmp/assetfs-%u",
			 (unsigned)geteuid());
	n = snprintf(buf, len, "%s/mnt-%016llx.sock", dir,
		     (unsigned long long)digest_xxh3(mountpoint,
						     strlen(mountpoint)));
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* ---- mounting and unmounting ---- */

/*
 * A fresh mount: libfuse's fuse_session_mount() (mount(2) as root,
 * fusermount3 otherwise) with the options the worker's session parses
 * too; we keep a duplicate of its descriptor and drop the session.
 */
static int mount_fresh(struct sup *s)
{
	static const struct fuse_lowlevel_ops none;
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se = NULL;
	int ret;

	ret = mount_build_args(s->o, &args);
	if (ret < 0)
		goto out;
	se = fuse_session_new(&args, &none, sizeof(none), NULL);
	if (!se) {
		log_error("mount: bad FUSE options '%s'",
			  s->o->fuse_opts ? s->o->fuse_opts : "");
		ret = -EINVAL;
		goto out;
	}
	if (fuse_session_mount(se, s->o->mountpoint) != 0) {
		log_error("mount: cannot mount on %s (see the line above)",
			  s->o->mountpoint);
		ret = -EIO;
		goto out;
	}
	s->fuse_fd = fcntl(fuse_session_fd(se), F_DUPFD_CLOEXEC, 3);
	ret = s->fuse_fd < 0 ? -errno : 0;
out:
	if (se)
		fuse_session_destroy(se); /* closes its fd, not the mount */
	fuse_opt_free_args(&args);
	return ret;
}

/* Lazy unmount: readers still inside keep being served until they go. */
static void unmount(struct sup *s)
{
	char *argv[] = { "fusermount3", "-u", "-z", "-q", "--",
			 (char *)s->o->mountpoint, NULL };
	pid_t pid;
	int st;

	if (geteuid() == 0) {
		if (umount2(s->o->mountpoint, MNT_DETACH) < 0 &&
		    errno != EINVAL && errno != ENOENT)
			log_warn("mount: cannot unmount %s: %s",
				 s->o->mountpoint, strerror(errno));
		return;
	}
	if (posix_spawnp(&pid, "fusermount3", NULL, NULL, argv, environ) != 0)
		return;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
}

/* ---- the worker ---- */

/* ---- takeover: the side that hands over ---- */

static void refuse(int c, const char *why)
{
	struct ho_msg m;

	ho_msg_start(&m, HO_REFUSE);
	ho_put_str(&m, why);
	ho_send(c, &m, -1);
}

static void serve_takeover(struct sup *s, struct ho_msg *m)
{
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	uint32_t version, peer_pid;
	char why[256];
	int c, t, ret;

	c = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return;
	if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 ||
	    (cred.uid != 0 && cred.uid != geteuid())) {
		log_warn("mount: takeover from uid %u refused", cred.uid);
		close(c);
		return;
	}
	t = ho_recv(c, m, NULL, 5000);
	version = ho_get_u32(m);
	peer_pid = ho_get_u32(m);
	if (t != HO_HELLO || m->bad) {
		close(c);
		return;
	}
	ho_msg_start(m, HO_HELLO);
	ho_put_u32(m, HO_VERSION);
	ho_put_u32(m, (uint32_t)getpid());
	if (ho_send(c, m, -1) < 0) {
		close(c);
		return;
	}
	if (version != HO_VERSION) {
		snprintf(why, sizeof(why),
			 "the daemon serving %s (pid %d) speaks hand-over "
			 "version %u, the new one %u: refused, the old one "
			 "keeps serving", s->o->mountpoint, (int)getpid(),
			 HO_VERSION, version);
		log_warn("mount: takeover by pid %u refused: %s", peer_pid,
			 why);
		refuse(c, why);
		close(c);
		return;
	}
	if (!s->worker || !s->worker_ready || !s->said_ready || s->stopping) {
		refuse(c, "the daemon is (re)starting its worker or stopping: "
			  "try again");
		close(c);
		return;
	}
	log_info("mount: handing %s over to pid %u: draining",
		 s->o->mountpoint, peer_pid);
	ret = sup_drain_worker(s, m, (s->o->timeout_ms > 0 ? s->o->timeout_ms :
							  30000) * 2 + 5000);
	if (ret < 0) {
		refuse(c, "the worker did not drain (it died or timed out): "
			  "try again");
		goto resume;
	}
	ret = ho_send_state(c, &s->st, s->fuse_fd);
	if (ret == 0) {
		t = ho_recv(c, m, NULL, 30000);
		ret = t == HO_COMMIT ? 0 : -EPROTO;
	}
	if (ret < 0) {
		log_warn("mount: pid %u did not take %s over: serving on",
			 peer_pid, s->o->mountpoint);
		goto resume;
	}
	/* committed: the worker is parked and holds no request */
	sup_reap(s->worker, SUP_REAP_MS);
	s->worker = 0;
	close(s->wctl);
	s->wctl = -1;
	close(s->listen_fd);
	s->listen_fd = -1;
	ho_send_type(c, HO_BYE);
	close(c);
	log_info("mount: %s handed over to pid %u", s->o->mountpoint,
		 peer_pid);
	s->end = SUP_HANDED_OVER;
	return;
resume:
	close(c);
	if (s->wctl >= 0)
		ho_send_type(s->wctl, HO_RESUME);
}

/* ---- takeover: the side that takes over ---- */

/*
 * Take the mount over from the daemon at the control socket. Returns 1
 * (s->fuse_fd and s->st set), 0 when no daemon listens there, or a
 * negative errno after one line saying why.
 */
static int take_over(struct sup *s, struct ho_msg *m)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *test_v = getenv("ASSETFS_TEST_HANDOVER_VERSION");
	uint32_t version = HO_VERSION, theirs, their_pid;
	char state[64];
	int c, t, ret;

	/* test only: advertise another hand-over version */
	if (test_v && *test_v)
		version = (uint32_t)strtoul(test_v, NULL, 10);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", s->ctl_path);
	c = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (c < 0)
		return -errno;
	if (connect(c, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(c);
		return 0;
	}
	/*
	 * Our worker prepares (cache, store, session) while the old daemon
	 * still serves: the pause readers see is the drain and the state's
	 * trip, not a worker's start.
	 */
	ret = sup_spawn_worker(s, true);
	if (ret < 0) {
		log_error("mount: cannot start a worker: %s", strerror(-ret));
		goto out;
	}
	ho_msg_start(m, HO_HELLO);
	ho_put_u32(m, version);
	ho_put_u32(m, (uint32_t)getpid());
	ret = ho_send(c, m, -1);
	t = ret < 0 ? ret : ho_recv(c, m, NULL, 10000);
	theirs = ho_get_u32(m);
	their_pid = ho_get_u32(m);
	if (t == HO_HELLO && !m->bad && theirs != version) {
		log_error("mount: takeover refused: the daemon serving %s "
			  "(pid %u) speaks hand-over version %u, this one %u; "
			  "it keeps serving", s->o->mountpoint, their_pid,
			  theirs, version);
		ret = -EPROTONOSUPPORT;
		goto out;
	}
	if (t != HO_HELLO || m->bad) {
		log_error("mount: takeover of %s failed: no answer from its "
			  "control socket %s", s->o->mountpoint, s->ctl_path);
		ret = -EPROTO;
		goto out;
	}
	log_info("mount: taking %s over from pid %u", s->o->mountpoint,
		 their_pid);
	/* the drain may wait for requests held by a slow store */
	ret = ho_recv_state(c, &s->st, &s->fuse_fd, 10 * 60 * 1000);
	if (ret < 0) {
		log_error("mount: takeover of %s failed (%s): the old daemon "
			  "keeps serving", s->o->mountpoint,
			  ret == -EPROTO ? "it refused or died" :
					   strerror(-ret));
		goto out;
	}
	s->st.takeovers++;
	s->st.gen++; /* our worker's handle numbers */
	ret = ho_send_state(s->wctl, &s->st, s->fuse_fd);
	if (ret < 0) {
		log_error("mount: takeover of %s failed: our worker is gone "
			  "(%s): the old daemon keeps serving",
			  s->o->mountpoint, strerror(-ret));
		goto out;
	}
	/* under systemd, we are the unit's main process from here */
	snprintf(state, sizeof(state), "MAINPID=%d", (int)getpid());
	sd_notify_state(state);
	ret = ho_send_type(c, HO_COMMIT);
	if (ret == 0) {
		t = ho_recv(c, m, NULL, 10000);
		/* BYE, or the old one is gone: ours either way */
		ret = 1;
		if (ho_send_type(s->wctl, HO_RESUME) < 0) {
			/* our worker died preparing: start a plain one */
			sup_reap(s->worker, SUP_REAP_MS);
			close(s->wctl);
			s->wctl = -1;
			s->worker = 0;
			if (sup_spawn_worker(s, false) < 0)
				ret = -EIO;
		}
	}
out:
	close(c);
	if (ret <= 0 && s->fuse_fd >= 0) {
		close(s->fuse_fd);
		s->fuse_fd = -1;
	}
	if (ret <= 0 && s->worker) {
		sup_reap(s->worker, SUP_REAP_MS);
		s->worker = 0;
		close(s->wctl);
		s->wctl = -1;
	}
	return ret;
}

/* ---- the control socket ---- */

static int mkdirs(const char *path)
{
	char dir[PATH_MAX], *p;

	snprintf(dir, sizeof(dir), "%s", path);
	p = strrchr(dir, '/');
	if (!p || p == dir)
		return 0;
	*p = '\0';
	for (p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(dir, 0755);
		*p = '/';
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Is @mp the mount point of a fuse.assetfs mount (mountinfo)? */
static bool assetfs_mounted(const char *mp)
{
	char line[8192], point[4096], type[256];
	bool found = false;
	FILE *f = fopen("/proc/self/mountinfo", "re");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		const char *sep = strstr(line, " - ");

		if (sscanf(line, "%*u %*u %*s %*s %4095s", point) != 1 || !sep ||
		    sscanf(sep + 3, "%255s", type) != 1)
			continue;
		found = strcmp(point, mp) == 0 &&
			strcmp(type, "fuse.assetfs") == 0;
	}
	fclose(f);
	return found;
}

/*
 * Is @mp an assetfs mount whose daemon is gone? statfs() always asks the
 * daemon (a stat may be answered from the kernel's cache); the kernel
 * answers ENOTCONN or ECONNABORTED for a connection nobody holds any more.
 */
static bool stale_mount(const char *mp)
{
	struct statfs sf;

	return assetfs_mounted(mp) && statfs(mp, &sf) < 0 &&
	       (errno == ENOTCONN || errno == ECONNABORTED);
}

/*
 * Is a live daemon serving @mp? Its control socket answers and the mount
 * is there (a daemon whose mount was just unmounted is on its way out).
 */
static bool control_live(const char *path, const char *mp)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int c = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	bool live;

	if (c < 0)
		return false;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	live = connect(c, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(c);
	return live && assetfs_mounted(mp);
}

static int listen_control(struct sup *s)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	mode_t old;
	int ret;

	ret = mkdirs(s->ctl_path);
	if (ret < 0)
		return ret;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", s->ctl_path);
	s->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC |
					       SOCK_NONBLOCK, 0);
	if (s->listen_fd < 0)
		return -errno;
	unlink(s->ctl_path); /* a dead daemon's (control_live() said so) */
	old = umask(0177);
	ret = bind(s->listen_fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (ret == 0 && stat(s->ctl_path, &s->ctl_st) < 0)
		ret = -1;
	if (ret < 0 || listen(s->listen_fd, 4) < 0) {
		ret = -errno;
		close(s->listen_fd);
		s->listen_fd = -1;
		return ret;
	}
	return 0;
}

/* ---- running ---- */

static void on_signal(struct sup *s, struct ho_msg *m)
{
	struct signalfd_siginfo si;
	char why[256] = "not SIGTERM", why2[256];
	int status;
	pid_t pid;

	while (read(s->sig_fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo != SIGCHLD && !s->stopping &&
		    s->end == SUP_RUN) {
			if (si.ssi_signo == SIGTERM &&
			    sup_sd_restarting(why, sizeof(why))) {
				if (sup_sd_store(s, m, why2,
						 sizeof(why2)) == 0) {
					log_info("mount: SIGTERM, %s: %s kept "
						 "in systemd's fd store for "
						 "the next start", why,
						 s->o->mountpoint);
					s->end = SUP_STORED;
					continue;
				}
				log_warn("mount: SIGTERM, %s, but the mount "
					 "cannot be kept (%s): unmounting %s",
					 why, why2, s->o->mountpoint);
			} else {
				log_info("mount: signal %u (%s): unmounting "
					 "%s", si.ssi_signo, why,
					 s->o->mountpoint);
			}
			s->stopping = true;
			sd_notify_state("STOPPING=1");
			unmount(s);
			clock_gettime(CLOCK_MONOTONIC, &s->stop_at);
			s->stop_at.tv_sec += 5;
		}
	}
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == s->worker && s->end == SUP_RUN)
			sup_worker_died(s, status, m);
		else if (pid == s->prober)
			sup_probe_done(s, status);
	}
}

static void run(struct sup *s, struct ho_msg *m)
{
	struct pollfd p[3];
	struct timespec now;
	int n, timeout, probe_ms;

	while (s->end == SUP_RUN) {
		n = 0;
		p[n++] = (struct pollfd){ .fd = s->sig_fd, .events = POLLIN };
		p[n++] = (struct pollfd){ .fd = s->wctl, .events = POLLIN };
		p[n++] = (struct pollfd){ .fd = s->stopping ? -1 : s->listen_fd,
					  .events = POLLIN };
		timeout = s->stopping ? 200 : -1;
		probe_ms = sup_probe_tick(s);
		if (probe_ms >= 0 && (timeout < 0 || probe_ms < timeout))
			timeout = probe_ms;
		if (poll(p, (nfds_t)n, timeout) < 0 && errno != EINTR)
			break;
		if (p[1].revents && sup_read_journal(s, m) < 0 && s->wctl >= 0) {
			/* the worker closed its end: its exit follows */
			close(s->wctl);
			s->wctl = -1;
		}
		if (p[0].revents)
			on_signal(s, m);
		if (s->end == SUP_RUN && p[2].revents)
			serve_takeover(s, m);
		if (s->stopping && s->worker) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			if (now.tv_sec > s->stop_at.tv_sec) {
				log_warn("mount: readers still inside %s after "
					 "5 s: ending", s->o->mountpoint);
				kill(s->worker, SIGKILL);
			}
		}
		if (s->stopping && !s->worker)
			s->end = SUP_UNMOUNTED;
	}
}

/* Handed over: wait until told to stop (-o linger). */
static void linger(struct sup *s)
{
	struct signalfd_siginfo si;
	struct pollfd p = { .fd = s->sig_fd, .events = POLLIN };

	log_info("mount: handed over; lingering until SIGTERM");
	for (;;) {
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			return;
		while (read(s->sig_fd, &si, sizeof(si)) == sizeof(si))
			if (si.ssi_signo != SIGCHLD)
				return;
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
	}
}

int mount_run(const struct mount_opts *o)
{
	struct sup s = { .o = o, .fuse_fd = -1, .sig_fd = -1,
			 .listen_fd = -1, .wctl = -1 };
	struct ho_msg *m = malloc(sizeof(*m));
	sigset_t set, old;
	bool took_over = false;
	int ret;

	if (!m)
		return -ENOMEM;
	ret = ho_state_init(&s.st);
	if (ret < 0)
		goto out;
	ret = o->control ? (snprintf(s.ctl_path, sizeof(s.ctl_path), "%s",
				     o->control) >=
					    (int)sizeof(s.ctl_path) ?
				    -ENAMETOOLONG :
				    0) :
			   mount_control_path(o->mountpoint, s.ctl_path,
					      sizeof(s.ctl_path));
	if (ret < 0) {
		log_error("mount: control socket path too long");
		goto out;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, &old);
	signal(SIGPIPE, SIG_IGN);
	s.sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (s.sig_fd < 0) {
		ret = -errno;
		goto out;
	}
	if (o->takeover && assetfs_mounted(o->mountpoint)) {
		ret = take_over(&s, m);
		if (ret < 0)
			goto out;
		took_over = ret == 1;
	} else if ((ret = sup_sd_adopt(&s, assetfs_mounted(o->mountpoint))) ==
		   1) {
		took_over = true; /* kept across `systemctl restart` */
	} else if (ret < 0 && ret != -ESTALE) {
		goto out;
	} else if (control_live(s.ctl_path, o->mountpoint)) {
		log_error("mount: %s is served by a live assetfs (control "
			  "socket %s): use -o takeover to replace it",
			  o->mountpoint, s.ctl_path);
		ret = -EBUSY;
		goto out;
	} else if (ret == -ESTALE || stale_mount(o->mountpoint)) {
		if (ret != -ESTALE)
			log_warn("mount: %s is a dead assetfs mount (its daemon is "
				 "gone): detaching it", o->mountpoint);
		unmount(&s);
	}
	if (!took_over) {
		ret = mount_fresh(&s);
		if (ret < 0)
			goto out;
		s.st.mounted_at = (int64_t)time(NULL);
	}
	ret = listen_control(&s);
	if (ret < 0)
		log_warn("mount: no control socket at %s (%s): this mount "
			 "cannot be taken over", s.ctl_path, strerror(-ret));
	if (took_over)
		sup_log_kernel(&s.st);
	if (!took_over)
		ret = sup_spawn_worker(&s, false);
	if (ret < 0) {
		log_error("mount: cannot start a worker: %s", strerror(-ret));
		s.end = SUP_FAILED;
	}
	run(&s, m);
	ret = s.end == SUP_FAILED ? -EIO : 0;
	if (s.end == SUP_FAILED) {
		if (s.worker)
			kill(s.worker, SIGKILL);
		unmount(&s);
	}
	if (s.prober) {
		/* waiting on the mount: it ends with the connection */
		kill(s.prober, SIGKILL);
		waitpid(s.prober, NULL, WNOHANG);
	}
	if (s.end != SUP_HANDED_OVER && s.end != SUP_STORED)
		sd_notify_state("STOPPING=1");
	else if (o->linger)
		linger(&s);
out:
	if (ret < 0)
		sup_say_ready(&s, ret);
	if (s.worker)
		sup_reap(s.worker, SUP_REAP_MS);
	if (s.listen_fd >= 0) {
		struct stat now;

		close(s.listen_fd);
		/* unless a newer daemon has bound the path since */
		if (stat(s.ctl_path, &now) == 0 &&
		    now.st_ino == s.ctl_st.st_ino &&
		    now.st_dev == s.ctl_st.st_dev)
			unlink(s.ctl_path);
	}
	if (s.wctl >= 0)
		close(s.wctl);
	if (s.fuse_fd >= 0)
		close(s.fuse_fd);
	if (s.sig_fd >= 0) {
		close(s.sig_fd);
		sigprocmask(SIG_SETMASK, &old, NULL);
	}
	ho_state_clear(&s.st);
	free(m);
	return ret;
}

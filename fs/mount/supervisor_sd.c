/*
 * supervisor_sd - `systemctl restart assetfs@NAME` keeps the mount (issue
 * 12), with systemd's file-descriptor store (systemd.service(5),
 * FileDescriptorStoreMax=; sd_pid_notify_with_fds(3)).
 *
 * A restart is a stop then a start of the same unit; without help the
 * stop ends the mount (readers get ENOTCONN). Here, on SIGTERM, the
 * supervisor asks systemd over D-Bus what the unit's job is: for a
 * restart it drains its worker as a takeover does, writes the state
 * (ho_state_encode(): the hand-over format with its version) into a
 * sealed memfd, gives systemd that memfd and a duplicate of the /dev/fuse
 * descriptor (FDSTORE=1, named SUP_SD_FUSE and SUP_SD_STATE) and exits
 * without unmounting. systemd keeps stored descriptors while a job runs
 * for the unit and passes them to the next ExecStart (LISTEN_FDS,
 * LISTEN_FDNAMES); it closes them once the unit is fully stopped with no
 * job left, so a `systemctl stop` never leaves a connection behind. The
 * kernel keeps the connection while systemd holds the descriptor:
 * requests made meanwhile wait in its queue. The new daemon adopts the
 * connection and the state like a takeover's receiver and empties the
 * store (FDSTOREREMOVE=1).
 *
 * Anything else (a stop, no systemd, no store, a failed drain) unmounts as
 * before; a state that cannot be read at start (another hand-over
 * version, a cut file) is said in one line and the old mount detached:
 * its readers get errors, new ones see a fresh mount.
 *
 * Threads: the supervisor's one. Errors: negative errno.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>

#include "common/log.h"
#include "fs/mount/handover.h"
#include "fs/mount/supervisor_int.h"

#define SUP_SD_FUSE "assetfs-fuse"
#define SUP_SD_STATE "assetfs-state"
#define SD_DEST "org.freedesktop.systemd1"
/* D-Bus calls and the drain are bounded well inside TimeoutStopSec */
#define SD_BUS_TIMEOUT_US (5ull * 1000 * 1000)
#define SD_DRAIN_MS 15000
/* a state larger than this is not read back (millions of inodes) */
#define SD_STATE_MAX (1024ull * 1024 * 1024)

unsigned mount_passed_fds(void)
{
	int n = sd_listen_fds(0);

	return n > 0 ? (unsigned)n : 0;
}

/* As root, systemd's private socket (no D-Bus daemon needed); else the bus. */
static int bus_open(sd_bus **bus)
{
	int r;

	if (geteuid() == 0) {
		r = sd_bus_new(bus);
		if (r >= 0)
			r = sd_bus_set_address(*bus,
					       "unix:path=/run/systemd/private");
		if (r >= 0)
			r = sd_bus_start(*bus);
		if (r >= 0)
			return r;
		*bus = sd_bus_unref(*bus);
	}
	return sd_bus_open_system(bus);
}

bool sup_sd_restarting(char *why, size_t len)
{
	sd_bus_error err = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	sd_bus *bus = NULL;
	const char *unit_path = NULL, *job_path = NULL;
	char *unit_copy = NULL, *type = NULL;
	uint32_t store_max = 0;
	uint32_t job_id = 0;
	bool restart = false;
	int r;

	if (!getenv("NOTIFY_SOCKET")) {
		snprintf(why, len, "not run by systemd");
		return false;
	}
	r = bus_open(&bus);
	if (r >= 0)
		r = sd_bus_set_method_call_timeout(bus, SD_BUS_TIMEOUT_US);
	if (r < 0) {
		snprintf(why, len, "cannot ask systemd (%s)", strerror(-r));
		goto out;
	}
	r = sd_bus_call_method(bus, SD_DEST, "/org/freedesktop/systemd1",
			       SD_DEST ".Manager", "GetUnitByPID", &err,
			       &reply, "u", (uint32_t)getpid());
	if (r >= 0)
		r = sd_bus_message_read(reply, "o", &unit_path);
	if (r >= 0 && !(unit_copy = strdup(unit_path)))
		r = -ENOMEM;
	reply = sd_bus_message_unref(reply);
	if (r < 0) {
		snprintf(why, len, "no unit of pid %d (%s)", (int)getpid(),
			 err.message ? err.message : strerror(-r));
		goto out;
	}
	r = sd_bus_get_property(bus, SD_DEST, unit_copy, SD_DEST ".Unit",
				"Job", &err, &reply, "(uo)");
	if (r >= 0)
		r = sd_bus_message_read(reply, "(uo)", &job_id, &job_path);
	if (r >= 0 && job_id == 0) {
		snprintf(why, len, "no job for the unit (a plain signal)");
		goto out;
	}
	if (r >= 0)
		r = sd_bus_get_property_string(bus, SD_DEST, job_path,
					       SD_DEST ".Job", "JobType", &err,
					       &type);
	if (r < 0) {
		snprintf(why, len, "the unit's job is unknown (%s)",
			 err.message ? err.message : strerror(-r));
		goto out;
	}
	if (strcmp(type, "restart") != 0 && strcmp(type, "try-restart") != 0) {
		snprintf(why, len, "the unit's job is %s", type);
		goto out;
	}
	sd_bus_error_free(&err);
	r = sd_bus_get_property_trivial(bus, SD_DEST, unit_copy,
					SD_DEST ".Service",
					"FileDescriptorStoreMax", &err, 'u',
					&store_max);
	if (r < 0) {
		snprintf(why, len, "the unit's job is %s but its "
			 "FileDescriptorStoreMax is unknown (%s)", type,
			 err.message ? err.message : strerror(-r));
		goto out;
	}
	if (store_max < 2) {
		snprintf(why, len, "the unit's job is %s but its "
			 "FileDescriptorStoreMax is %u (2 needed)", type,
			 store_max);
		goto out;
	}
	snprintf(why, len, "the unit's job is %s", type);
	restart = true;
out:
	sd_bus_message_unref(reply);
	sd_bus_error_free(&err);
	sd_bus_flush_close_unref(bus);
	free(unit_copy);
	free(type);
	return restart;
}

/* The state in a sealed memfd; the fd or a negative errno. */
static int state_memfd(const struct ho_state *st)
{
	unsigned char *buf;
	size_t len, off = 0;
	ssize_t n;
	int fd, ret;

	ret = ho_state_encode(st, &buf, &len);
	if (ret < 0)
		return ret;
	fd = memfd_create("assetfs-state", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0) {
		free(buf);
		return -errno;
	}
	while (off < len) {
		n = write(fd, buf + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			break;
		}
		off += (size_t)n;
	}
	free(buf);
	if (ret == 0)
		fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW |
					       F_SEAL_WRITE | F_SEAL_SEAL);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	return fd;
}

static void store_remove(const char *name)
{
	char msg[128];

	snprintf(msg, sizeof(msg), "FDSTOREREMOVE=1\nFDNAME=%s", name);
	sd_notify(0, msg);
}

static void stop_worker(struct sup *s)
{
	sup_reap(s->worker, SUP_REAP_MS);
	s->worker = 0;
	close(s->wctl);
	s->wctl = -1;
}

int sup_sd_store(struct sup *s, struct ho_msg *m, char *why, size_t len)
{
	int fd, r;

	if (!s->worker || !s->worker_ready || !s->said_ready) {
		snprintf(why, len, "no worker serving yet");
		return -EAGAIN;
	}
	r = sup_drain_worker(s, m, SD_DRAIN_MS);
	if (r < 0) {
		snprintf(why, len, "the worker did not drain (%s)",
			 strerror(-r));
		goto resume;
	}
	fd = state_memfd(&s->st);
	if (fd < 0) {
		r = fd;
		snprintf(why, len, "cannot write the state (%s)", strerror(-r));
		goto resume;
	}
	r = sd_pid_notify_with_fds(0, 0, "FDSTORE=1\nFDNAME=" SUP_SD_FUSE,
				   &s->fuse_fd, 1);
	if (r > 0)
		r = sd_pid_notify_with_fds(0, 0, "FDSTORE=1\nFDPOLL=0\n"
					   "FDNAME=" SUP_SD_STATE, &fd, 1);
	/* systemd has read both before we exit (or 5 s went by) */
	if (r > 0)
		r = sd_notify_barrier(0, SD_BUS_TIMEOUT_US);
	close(fd);
	if (r <= 0) {
		snprintf(why, len, "systemd did not take the descriptors (%s)",
			 r < 0 ? strerror(-r) : "no NOTIFY_SOCKET");
		store_remove(SUP_SD_FUSE);
		store_remove(SUP_SD_STATE);
		r = r < 0 ? r : -ENOTCONN;
		goto resume;
	}
	/* drained: the worker is parked and holds no request */
	stop_worker(s);
	return 0;
resume:
	if (s->wctl >= 0)
		ho_send_type(s->wctl, HO_RESUME);
	return r;
}

static bool is_fuse_dev(int fd)
{
	struct stat st;

	/* /dev/fuse: character device 10:229 */
	return fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) &&
	       major(st.st_rdev) == 10 && minor(st.st_rdev) == 229;
}

/* Read the stored state; 0 or a negative errno with @why set. */
static int read_state(struct sup *s, int fd, char *why, size_t len)
{
	struct stat st;
	const char *test_v = getenv("ASSETFS_TEST_HANDOVER_VERSION");
	unsigned char *p;
	uint32_t version = 0, want = HO_VERSION;
	int r;

	if (fstat(fd, &st) < 0 || st.st_size < 0 ||
	    (unsigned long long)st.st_size > SD_STATE_MAX) {
		snprintf(why, len, "the state cannot be read");
		return -EPROTO;
	}
	if (st.st_size == 0) {
		snprintf(why, len, "the state is empty");
		return -EPROTO;
	}
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED) {
		snprintf(why, len, "the state cannot be mapped (%s)",
			 strerror(errno));
		return -errno;
	}
	/* test only: read another hand-over version than ours */
	if (test_v && *test_v)
		want = (uint32_t)strtoul(test_v, NULL, 10);
	if (want != HO_VERSION && st.st_size >= 8) {
		memcpy(&version, p + 4, 4);
		r = version == want ? -EPROTO : -EPROTONOSUPPORT;
	} else {
		r = ho_state_decode(&s->st, p, (size_t)st.st_size, &version);
	}
	munmap(p, (size_t)st.st_size);
	if (r == -EPROTONOSUPPORT)
		snprintf(why, len, "the state is of hand-over version %u, "
			 "this daemon reads %u", version, want);
	else if (r < 0)
		snprintf(why, len, "the state is malformed or cut short (%s)",
			 strerror(-r));
	return r;
}

/*
 * Take the stored connection on: a worker forked with the state as it
 * stands (as after a crash; the drain left no request unanswered).
 */
static int adopt(struct sup *s, char *why, size_t len)
{
	int r;

	s->st.takeovers++;
	r = sup_spawn_worker(s, false);
	if (r < 0)
		snprintf(why, len, "cannot start a worker (%s)", strerror(-r));
	return r;
}

int sup_sd_adopt(struct sup *s, bool mounted)
{
	char **names = NULL, why[256] = "";
	int n, i, fuse = -1, state = -1, r = -ESTALE;

	n = sd_listen_fds_with_names(1, &names);
	if (n <= 0)
		return 0;
	for (i = 0; i < n; i++) {
		int fd = SD_LISTEN_FDS_START + i;
		const char *name = names ? names[i] : "";

		if (strcmp(name, SUP_SD_FUSE) == 0 && fuse < 0)
			fuse = fd;
		else if (strcmp(name, SUP_SD_STATE) == 0 && state < 0)
			state = fd;
		else
			close(fd);
	}
	if (fuse < 0 && state < 0) {
		r = 0; /* passed descriptors, none of ours */
		goto out;
	}
	if (fuse < 0 || state < 0 || !is_fuse_dev(fuse))
		snprintf(why, sizeof(why), "systemd passed %s only",
			 fuse < 0 || !is_fuse_dev(fuse) ? "the state" :
							 "the connection");
	else if (!mounted)
		snprintf(why, sizeof(why), "%s is no longer mounted",
			 s->o->mountpoint);
	else if (read_state(s, state, why, sizeof(why)) == 0) {
		s->fuse_fd = fuse;
		fuse = -1;
		if (adopt(s, why, sizeof(why)) == 0) {
			r = 1;
			log_info("mount: %s kept across the unit's restart "
				 "(systemd's fd store): serving it again, "
				 "pid %d", s->o->mountpoint, (int)getpid());
		} else {
			fuse = s->fuse_fd;
			s->fuse_fd = -1;
		}
	}
	if (r < 0) {
		log_error("mount: cannot adopt the mount kept across the "
			  "restart: %s: detaching it and mounting afresh "
			  "(readers of the old mount get errors)", why);
		ho_state_clear(&s->st);
		r = ho_state_init(&s->st) < 0 ? -ENOMEM : -ESTALE;
	}
out:
	store_remove(SUP_SD_FUSE);
	store_remove(SUP_SD_STATE);
	if (fuse >= 0)
		close(fuse);
	if (state >= 0)
		close(state);
	for (i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
	return r;
}

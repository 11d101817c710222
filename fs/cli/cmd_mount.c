/*
 * cmd_mount - `assetfs mount` and `assetfs stats`.
 *
 *   assetfs mount [STORE] MOUNTPOINT [-f] [-d] [-o opt[,opt...]]...
 *                 [--store URL]
 *
 * STORE also comes from --store, ASSETFS_STORE or MODELKIT_STORAGE_*
 * (prov_store_url()). Our options are taken out of the -o list; options
 * only mount(8) cares about (defaults, auto, nofail, _netdev, user, ...)
 * are dropped; anything else goes to libfuse, which refuses what it does
 * not know. verify_key= defaults to $ASSETFS_VERIFY_KEY as for the other
 * commands (an empty value turns checks off); bearer_token_file= is handed
 * to the http(s) backend, which otherwise reads $ASSETFS_BEARER_TOKEN_FILE.
 * Without -f the command forks before any thread exists: the
 * child mounts and serves, the parent waits until the mount answers (or
 * failed) and exits 0 or 1, as mount(8) expects of a helper.
 *
 *   assetfs stats MOUNTPOINT [--json]
 *
 * reads the counters from the private xattr user.assetfs.stats of the
 * mount root and prints `key value` lines (or one JSON object).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/fileutil.h"
#include "common/log.h"
#include "fs/cache/cache.h"
#include "fs/cli/commands.h"
#include "fs/mount/metrics.h"
#include "fs/mount/mount.h"
#include "providers/provider.h"

#define OPTS_MAX 8192

static void mount_usage(FILE *f)
{
	fprintf(f,
		"usage: assetfs mount [STORE] MOUNTPOINT [-f] [-d] "
		"[-o opt,...] [--store URL]\n"
		"  STORE  file:///dir, http(s)://host/prefix, s3://b/prefix, "
		"gs://b/prefix, az://c/prefix\n"
		"         (or --store, ASSETFS_STORE, MODELKIT_STORAGE_*)\n"
		"  -f     stay in the foreground   -d  FUSE debug output\n"
		"options (default in parentheses):\n"
		"  cache_dir=DIR         ($XDG_CACHE_HOME/assetfs, "
		"~/.cache/assetfs; root: /var/cache/assetfs)\n"
		"  cache_size=SIZE|N%%    (10G)\n"
		"  cache_min_free=SIZE|N%% (5%%)\n"
		"  versions_ttl=SECONDS  (60) re-read version lists after "
		"this\n"
		"  timeout=SECONDS       (30) give up on the store after "
		"this\n"
		"  versioning=auto|major_minor|simple_date (auto; or "
		"MODELKIT_ASSETS_VERSIONING_SYSTEM)\n"
		"  verify_key=KEY.pub    ($ASSETFS_VERIFY_KEY; none) refuse "
		"versions whose .meta is\n"
		"                        not signed with this Ed25519 key "
		"(EACCES, logged)\n"
		"  bearer_token_file=F   ($ASSETFS_BEARER_TOKEN_FILE; none) "
		"http(s) stores: send\n"
		"                        \"Authorization: Bearer\" with the "
		"token in F\n"
		"  allow_other           (off) let other users in\n"
		"  uid=N                 (the mounting user's) owner "
		"shown\n"
		"  gid=N                 (the mounting user's group) group "
		"shown\n"
		"  metrics_port=N        (none) Prometheus text on "
		"METRICS_ADDR:N\n"
		"  metrics_addr=ADDR     (" METRICS_DEFAULT_ADDR
		") numeric IPv4/IPv6 to listen on; loopback by\n"
		"                        default for safety, 0.0.0.0 to be "
		"scraped from outside\n"
		"  readahead=BLOCKS      (32) most blocks fetched ahead, GETs "
		"in flight;\n"
		"                        the window starts at 8 and doubles "
		"while reads go on\n"
		"  threads=N             (16) FUSE worker threads\n"
		"  readahead_kb=KiB      (16384) kernel read-ahead, root "
		"only; 0: kernel default\n"
		"  pins=FILE             (none) specs to keep pinned and "
		"warm, one per line,\n"
		"                        # comments; re-read when it "
		"changes\n"
		"  warm_before_flip      (off) latest/N.latest of a pinned "
		"asset move only once\n"
		"                        the new version is complete in the "
		"cache\n"
		"  log=FILE              (none: discarded without -f) "
		"daemon log\n"
		"  debug                 (off) as -d\n"
		"  takeover              (off) if a live assetfs serves "
		"MOUNTPOINT, take its\n"
		"                        connection over (upgrade); else "
		"mount\n"
		"  control=PATH          (/run/assetfs/mnt-HASH.sock) the "
		"control socket\n"
		"  linger                (off) once handed over, wait for "
		"SIGTERM (containers)\n"
		"  any other option goes to libfuse\n");
}

/* Seconds (may have a fraction) -> ms. Returns 0 or -EINVAL. */
static int parse_secs(const char *s, int *ms)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v <= 0 ||
	    v > 86400.0 * 365)
		return -EINVAL;
	*ms = (int)(v * 1000.0);
	if (*ms < 1)
		*ms = 1;
	return 0;
}

static int parse_uint(const char *s, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 0 || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

struct mount_cli {
	struct mount_opts o;
	char fuse_opts[OPTS_MAX];
	const char *log_file;
	bool foreground;
	bool verify_set; /* verify_key= given (even empty) */
};

static bool dropped_opt(const char *k)
{
	static const char *const drop[] = {
		"defaults", "rw", "ro", "auto", "noauto", "nofail", "_netdev",
		"user", "users", "nouser", "owner", "group", "comment",
		NULL,
	};
	size_t i;

	for (i = 0; drop[i]; i++)
		if (strcmp(k, drop[i]) == 0)
			return true;
	return strncmp(k, "x-", 2) == 0 || strncmp(k, "comment=", 8) == 0;
}

/* Handle one -o item. Returns 0 or 2 (usage error, message printed). */
static int one_opt(struct mount_cli *c, char *item)
{
	char *val = strchr(item, '=');
	long n = 0;
	int ret = 0;

	if (!*item)
		return 0;
	if (val)
		*val++ = '\0';
#define IS(k) (strcmp(item, k) == 0)
	if (IS("cache_dir") && val) {
		c->o.cache.dir = val;
	} else if (IS("cache_size") && val) {
		ret = cache_parse_size(val, &c->o.cache.max);
	} else if (IS("cache_min_free") && val) {
		ret = cache_parse_size(val, &c->o.cache.min_free);
	} else if (IS("versions_ttl") && val) {
		ret = parse_secs(val, &c->o.versions_ttl_ms);
	} else if (IS("timeout") && val) {
		ret = parse_secs(val, &c->o.timeout_ms);
	} else if (IS("versioning") && val) {
		c->o.versioning = val;
	} else if (IS("verify_key") && val) {
		c->o.verify_key = val;
		c->verify_set = true;
	} else if (IS("bearer_token_file") && val) {
		c->o.bearer_token_file = val;
	} else if (IS("allow_other") && !val) {
		c->o.allow_other = true;
	} else if (IS("uid") && val) {
		ret = parse_uint(val, INT_MAX, &n);
		c->o.uid = (uid_t)n;
	} else if (IS("gid") && val) {
		ret = parse_uint(val, INT_MAX, &n);
		c->o.gid = (gid_t)n;
	} else if (IS("metrics_port") && val) {
		ret = parse_uint(val, 65535, &n);
		c->o.metrics_port = (int)n;
	} else if (IS("metrics_addr") && val) {
		if (!metrics_addr_valid(val))
			ret = -EINVAL;
		c->o.metrics_addr = val;
	} else if (IS("readahead") && val) {
		ret = parse_uint(val, 64, &n);
		c->o.readahead = (int)n;
	} else if (IS("readahead_kb") && val) {
		ret = parse_uint(val, 1 << 20, &n);
		c->o.readahead_kb = (int)n;
	} else if (IS("threads") && val) {
		ret = parse_uint(val, 256, &n);
		if (ret == 0 && n < 1)
			ret = -EINVAL;
		c->o.threads = (int)n;
	} else if (IS("pins") && val) {
		c->o.pins_file = val;
	} else if (IS("warm_before_flip") && !val) {
		c->o.warm_before_flip = true;
	} else if (IS("log") && val) {
		c->log_file = val;
	} else if (IS("debug") && !val) {
		c->o.debug = true;
	} else if (IS("takeover") && !val) {
		c->o.takeover = true;
	} else if (IS("linger") && !val) {
		c->o.linger = true;
	} else if (IS("control") && val && *val == '/') {
		c->o.control = val;
	} else if (dropped_opt(item)) {
		/* mount(8)'s business */
	} else {
		size_t len = strlen(c->fuse_opts);
		int w = snprintf(c->fuse_opts + len, sizeof(c->fuse_opts) - len,
				 "%s%s%s%s", len ? "," : "", item,
				 val ? "=" : "", val ? val : "");

		if (w < 0 || (size_t)w >= sizeof(c->fuse_opts) - len) {
			fprintf(stderr, "assetfs: mount: too many options\n");
			return 2;
		}
	}
#undef IS
	if (ret < 0) {
		fprintf(stderr, "assetfs: mount: bad option '%s%s%s'\n", item,
			val ? "=" : "", val ? val : "");
		return 2;
	}
	return 0;
}

static int parse_opts(struct mount_cli *c, char *list)
{
	char *save = NULL, *item;
	int ret;

	for (item = strtok_r(list, ",", &save); item;
	     item = strtok_r(NULL, ",", &save)) {
		ret = one_opt(c, item);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * realpath() of a mountpoint whose mount systemd kept for us across a
 * restart: the directory it is in resolved, its own name not looked at.
 * Nobody serves that mount until we adopt it, and a stat of its root
 * (realpath's lstat, once the kernel's attributes expired) would wait
 * for an answer forever. NULL with errno set, as realpath().
 */
static char *realpath_kept(const char *path, char *out)
{
	char buf[PATH_MAX], dir[PATH_MAX], rdir[PATH_MAX], *slash, *base;
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(buf)) {
		errno = n ? ENAMETOOLONG : ENOENT;
		return NULL;
	}
	memcpy(buf, path, n + 1);
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = '\0';
	slash = strrchr(buf, '/');
	base = slash ? slash + 1 : buf;
	if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
		return realpath(path, out);
	if (slash == buf)
		snprintf(dir, sizeof(dir), "/");
	else if (slash)
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - buf), buf);
	else
		snprintf(dir, sizeof(dir), ".");
	if (!realpath(dir, rdir))
		return NULL;
	if (snprintf(out, PATH_MAX, "%s/%s", strcmp(rdir, "/") ? rdir : "",
		     base) >= PATH_MAX) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	return out;
}

/* Child side of the daemon: stdio away from the terminal. */
static void detach(const char *log_file)
{
	int fd;

	if (chdir("/") < 0) {
		/* keep the old cwd */
	}
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		/* under systemd (a reload's daemon) stderr is the journal */
		if (!log_file && !getenv("JOURNAL_STREAM"))
			dup2(fd, 2);
		close(fd);
	}
	if (log_file) {
		fd = open(log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
			  0640);
		if (fd >= 0) {
			dup2(fd, 2);
			close(fd);
		}
	}
}

static struct mount_cli c;

/*
 * Fork again and let the middle process go: the daemon is then the child
 * of init (under systemd, of systemd itself), not of whoever ran `assetfs
 * mount`. A reload's daemon tells systemd it is the unit's main process
 * (MAINPID=): one systemd did not know as its child it cannot wait for,
 * so a later stop or restart would follow its SIGTERM with SIGKILL at
 * once, before the daemon could unmount or keep the mount. Returns in the
 * daemon once it has been reparented (0), or -1 after one line.
 */
static int orphan(void)
{
	pid_t mid = getpid(), pid = fork();
	int i;

	if (pid < 0) {
		fprintf(stderr, "assetfs: mount: fork: %s\n", strerror(errno));
		return -1;
	}
	if (pid > 0)
		_exit(0);
	for (i = 0; i < 2000 && getppid() == mid; i++)
		usleep(1000);
	return 0;
}

/* The first worker's detach hook: the same, in that process. */
static void detach_worker(void *arg)
{
	detach(c.log_file);
}

/*
 * The daemon's ready callback: tell the waiting parent, then (once
 * mounted) let go of its terminal; errors before that still reach the
 * caller's stderr.
 */
static void ready_pipe(void *arg, int status)
{
	int fd = *(int *)arg;
	char st = status == 0 ? 0 : 1;

	if (fd < 0)
		return;
	if (status == 0)
		detach(c.log_file);
	if (write(fd, &st, 1) < 0) {
		/* the parent is gone: nothing to tell */
	}
	close(fd);
	*(int *)arg = -1;
}

int cmd_mount(int argc, char **argv)
{
	char url[PROV_URL_MAX];
	char mp[PATH_MAX];
	const char *pos[2] = { NULL, NULL };
	const char *store_arg = NULL;
	int npos = 0, i, ret, pfd[2] = { -1, -1 }, wfd = -1;
	pid_t pid;

	memset(&c, 0, sizeof(c));
	cache_opts_init(&c.o.cache);
	c.o.readahead_kb = 16384;
	c.o.uid = getuid();
	c.o.gid = getgid();
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			mount_usage(stdout);
			return 0;
		} else if (strcmp(a, "-f") == 0) {
			c.foreground = true;
		} else if (strcmp(a, "-d") == 0) {
			c.o.debug = true;
			c.foreground = true;
		} else if (strcmp(a, "-o") == 0 && i + 1 < argc) {
			ret = parse_opts(&c, argv[++i]);
			if (ret)
				return ret;
		} else if (strncmp(a, "-o", 2) == 0 && a[2]) {
			ret = parse_opts(&c, argv[i] + 2);
			if (ret)
				return ret;
		} else if (strcmp(a, "--store") == 0 && i + 1 < argc) {
			store_arg = argv[++i];
		} else if (strncmp(a, "--store=", 8) == 0) {
			store_arg = a + 8;
		} else if (strcmp(a, "-n") == 0 || strcmp(a, "-s") == 0 ||
			   strcmp(a, "-v") == 0) {
			/* flags mount(8) passes to helpers */
		} else if (a[0] == '-' && a[1]) {
			fprintf(stderr, "assetfs: mount: unknown option '%s'\n",
				a);
			mount_usage(stderr);
			return 2;
		} else if (npos < 2) {
			pos[npos++] = a;
		} else {
			fprintf(stderr, "assetfs: mount: too many arguments\n");
			mount_usage(stderr);
			return 2;
		}
	}
	if (npos == 0) {
		fprintf(stderr, "assetfs: mount: missing MOUNTPOINT\n");
		mount_usage(stderr);
		return 2;
	}
	if (npos == 2)
		store_arg = pos[0];
	ret = prov_store_url(store_arg, url, sizeof(url));
	if (ret == -ENOENT) {
		fprintf(stderr, "assetfs: mount: no store given (STORE, "
				"--store, ASSETFS_STORE or "
				"MODELKIT_STORAGE_PROVIDER)\n");
		return 2;
	} else if (ret < 0) {
		fprintf(stderr, "assetfs: mount: bad store: %s\n",
			*prov_last_error() ? prov_last_error() :
					     strerror(-ret));
		return 2;
	}
	if (!(mount_passed_fds() ? realpath_kept(pos[npos - 1], mp) :
			     realpath(pos[npos - 1], mp))) {
		fprintf(stderr, "assetfs: mount: mountpoint %s: %s\n",
			pos[npos - 1], strerror(errno));
		return 1;
	}
	if (!c.verify_set)
		c.o.verify_key = getenv("ASSETFS_VERIFY_KEY");
	if (c.o.verify_key && !*c.o.verify_key)
		c.o.verify_key = NULL;
	if (c.o.bearer_token_file && !*c.o.bearer_token_file)
		c.o.bearer_token_file = NULL;
	c.o.store_url = url;
	c.o.mountpoint = mp;
	c.o.fuse_opts = c.fuse_opts;
	/*
	 * The daemon must not keep what its caller had open: a descriptor
	 * inside the mount (a shell's `exec 3< file`) would hold the mount
	 * busy for as long as the daemon lives. What systemd passed us
	 * (LISTEN_FDS: a mount kept across `systemctl restart`) stays, for
	 * mount_run() to adopt.
	 */
	close_range(3 + mount_passed_fds(), ~0u, 0);
	if (c.foreground) {
		if (c.log_file) {
			int fd = open(c.log_file, O_WRONLY | O_CREAT |
							  O_APPEND | O_CLOEXEC,
				      0640);

			if (fd >= 0) {
				dup2(fd, 2);
				close(fd);
			}
		}
		return mount_run(&c.o) < 0 ? 1 : 0;
	}
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		fprintf(stderr, "assetfs: mount: pipe: %s\n", strerror(errno));
		return 1;
	}
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "assetfs: mount: fork: %s\n", strerror(errno));
		return 1;
	}
	if (pid == 0) {
		close(pfd[0]);
		wfd = pfd[1];
		c.o.ready = ready_pipe;
		c.o.ready_arg = &wfd;
		c.o.detach = detach_worker;
		/* errors before the mount still reach the caller's stderr */
		setsid();
		if (orphan() < 0)
			return 1;
		ret = mount_run(&c.o);
		ready_pipe(&wfd, ret < 0 ? ret : -EIO);
		return ret < 0 ? 1 : 0;
	}
	close(pfd[1]);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	{
		char st = 1;
		ssize_t n;

		do {
			n = read(pfd[0], &st, 1);
		} while (n < 0 && errno == EINTR);
		close(pfd[0]);
		return (n == 1 && st == 0) ? 0 : 1;
	}
}

/* ---- stats ---- */

int cmd_stats(int argc, char **argv)
{
	const char *mp = NULL;
	bool json = false;
	char val[16384];
	ssize_t n;
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json = true;
		} else if (strcmp(argv[i], "-h") == 0 ||
			   strcmp(argv[i], "--help") == 0) {
			printf("usage: assetfs stats MOUNTPOINT [--json]\n"
			       "  prints the mount's counters as `key value` "
			       "lines (--json: one object):\n"
			       "  bytes_fetched bytes_served block_hits "
			       "block_misses retries errors\n"
			       "  evictions cache_bytes and more.\n"
			       "  stats takes no -o options; the mount serves "
			       "the same counters as\n"
			       "  Prometheus text with `assetfs mount -o "
			       "metrics_port=N` (default: none)\n"
			       "  on metrics_addr=ADDR (default: "
			       METRICS_DEFAULT_ADDR ").\n");
			return 0;
		} else if (!mp && argv[i][0] != '-') {
			mp = argv[i];
		} else {
			fprintf(stderr, "usage: assetfs stats MOUNTPOINT "
					"[--json]\n");
			return 2;
		}
	}
	if (!mp) {
		fprintf(stderr, "usage: assetfs stats MOUNTPOINT [--json]\n");
		return 2;
	}
	n = getxattr(mp, MOUNT_STATS_XATTR, val, sizeof(val) - 1);
	if (n < 0) {
		fprintf(stderr, "assetfs: stats: %s: %s\n", mp,
			errno == ENODATA || errno == ENOTSUP ?
				"not an assetfs mount" :
				strerror(errno));
		return 1;
	}
	val[n] = '\0';
	if (!json) {
		fputs(val, stdout);
		return 0;
	}
	{
		char *save = NULL, *line;
		bool first = true;

		printf("{");
		for (line = strtok_r(val, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save)) {
			char *sp = strchr(line, ' ');

			if (!sp)
				continue;
			*sp = '\0';
			/* numbers as numbers, words (store_state, version)
			   as strings */
			if (sp[1] && strspn(sp + 1, "0123456789") ==
					 strlen(sp + 1))
				printf("%s\"%s\": %s", first ? "" : ", ", line,
				       sp + 1);
			else if (sp[1] && strspn(sp + 1, "abcdefghijklmnopqrs"
							 "tuvwxyz_.-0123456789") ==
					      strlen(sp + 1))
				printf("%s\"%s\": \"%s\"", first ? "" : ", ",
				       line, sp + 1);
			else
				continue;
			first = false;
		}
		printf("}\n");
	}
	return 0;
}

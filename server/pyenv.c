/*
 * pyenv - environments keyed by the SHA-256 of requirements.txt: lookup,
 * locked atomic build (venv + pip), and pip's error for the log.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/digest.h"
#include "common/fileutil.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "server/pyenv.h"

#define PYENV_REQ_MAX (1u << 20)
#define PYENV_BUILD_MAX_MS (30 * 60 * 1000)
#define PYENV_DONE ".assetfs-complete"
#define PYENV_FAILED_TTL_S 60 /* a failed build is not retried sooner */

extern char **environ;

void pyenv_default_dir(char *buf, size_t n)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");

	if (geteuid() == 0)
		snprintf(buf, n, "/var/cache/assetfs/python");
	else if (xdg && xdg[0] == '/')
		snprintf(buf, n, "%s/assetfs/python", xdg);
	else if (home && home[0] == '/')
		snprintf(buf, n, "%s/.cache/assetfs/python", home);
	else
		snprintf(buf, n, "/tmp/assetfs-python-%u", (unsigned)geteuid());
}

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

static void rm_rf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static bool complete(const char *env)
{
	char p[PATH_MAX];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", env, PYENV_DONE);
	if (stat(p, &st) < 0)
		return false;
	snprintf(p, sizeof(p), "%s/bin/python", env);
	return stat(p, &st) == 0;
}

/*
 * Run @argv with stdout and stderr appended to @log_fd; wait for it (at
 * most PYENV_BUILD_MAX_MS). Returns the wait status or a negative errno.
 */
static int run(char *const argv[], int log_fd)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, pipe;
	int64_t until = time_mono_ms() + PYENV_BUILD_MAX_MS;
	int ret, st = 0;
	pid_t pid, r;

	sigemptyset(&none);
	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, log_fd, 1);
	posix_spawn_file_actions_adddup2(&fa, log_fd, 2);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &pipe);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK |
					  POSIX_SPAWN_SETSIGDEF);
	ret = posix_spawn(&pid, argv[0], &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (ret)
		return -ret;
	for (;;) {
		r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return st;
		if (r < 0 && errno != EINTR)
			return -errno;
		if (time_mono_ms() > until) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -ETIMEDOUT;
		}
		usleep(20 * 1000);
	}
}

/* The line of @log that says why pip failed: its last "ERROR:" line, or
 * else its last non-empty line. */
static void pip_reason(const char *log_path, char *out, size_t n)
{
	struct buf b;
	char *line, *save = NULL, *last = NULL, *error = NULL;

	buf_init(&b, 0);
	out[0] = '\0';
	if (file_read_capped(log_path, 4u << 20, &b) < 0 || !b.data) {
		buf_free(&b);
		return;
	}
	for (line = strtok_r(b.data, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (!line[strspn(line, " \t\r")])
			continue;
		last = line;
		if (strncmp(line, "ERROR:", 6) == 0)
			error = line;
	}
	if (error || last)
		snprintf(out, n, "%s", error ? error : last);
	buf_free(&b);
}

/* Build the environment for @req (whose SHA-256 is @hex) as @env. */
static int build(const char *env_dir, const char *hex, const char *env,
		 const char *req, const char *base_python,
		 const char *wheelhouse, char *err, size_t errlen)
{
	char tmp[PATH_MAX], log_path[PATH_MAX], py[PATH_MAX + 64], why[400];
	char *venv[] = {(char *)base_python, (char *)"-m", (char *)"venv",
			(char *)"--system-site-packages", tmp, NULL};
	char *pip[16];
	int log_fd = -1, st, ret, i = 0, done_fd;
	int64_t t0 = time_mono_ms();

	snprintf(tmp, sizeof(tmp), "%s/.tmp.%s.%d", env_dir, hex,
		 (int)getpid());
	snprintf(log_path, sizeof(log_path), "%s/%s.log", env_dir, hex);
	snprintf(py, sizeof(py), "%s/bin/python", tmp);
	rm_rf(tmp);
	log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (log_fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot create %s: %s", log_path,
			 strerror(-ret));
		return ret;
	}
	log_info("building the Python environment %s for %s", hex, req);
	st = run(venv, log_fd);
	if (st != 0) {
		pip_reason(log_path, why, sizeof(why));
		snprintf(err, errlen,
			 "cannot create a venv with %s (see %s): %s",
			 base_python, log_path, why);
		ret = -EIO;
		goto out;
	}
	pip[i++] = py;
	pip[i++] = (char *)"-m";
	pip[i++] = (char *)"pip";
	pip[i++] = (char *)"install";
	pip[i++] = (char *)"--no-input";
	pip[i++] = (char *)"--disable-pip-version-check";
	pip[i++] = (char *)"--no-warn-script-location";
	if (wheelhouse) {
		pip[i++] = (char *)"--no-index";
		pip[i++] = (char *)"--find-links";
		pip[i++] = (char *)wheelhouse;
	}
	pip[i++] = (char *)"-r";
	pip[i++] = (char *)req;
	pip[i] = NULL;
	st = run(pip, log_fd);
	if (st != 0) {
		pip_reason(log_path, why, sizeof(why));
		snprintf(err, errlen,
			 "cannot install %s (environment %.12s, pip's output "
			 "in %s): %s",
			 req, hex, log_path,
			 st == -ETIMEDOUT ? "pip took too long" : why);
		ret = -EIO;
		goto out;
	}
	snprintf(py, sizeof(py), "%s/%s", tmp, PYENV_DONE);
	done_fd = open(py, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (done_fd >= 0)
		close(done_fd);
	if (done_fd < 0 || rename(tmp, env) < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot move %s to %s: %s", tmp, env,
			 strerror(-ret));
		goto out;
	}
	log_info("built the Python environment %s in %.1f s", hex,
		 (double)(time_mono_ms() - t0) / 1000);
	ret = 0;
out:
	if (ret < 0)
		rm_rf(tmp);
	close(log_fd);
	return ret;
}

/*
 * A build of @hex that failed less than PYENV_FAILED_TTL_S ago: 0 with its
 * message in @err, or -ENOENT. Every worker of every server on the node
 * that asks for it meanwhile gets that answer instead of running pip again.
 */
static int recent_failure(const char *failed, char *err, size_t errlen)
{
	struct stat st;
	struct buf b;
	int ret = -ENOENT;

	if (stat(failed, &st) < 0 || time(NULL) - st.st_mtime >
					  PYENV_FAILED_TTL_S)
		return -ENOENT;
	buf_init(&b, 0);
	if (file_read_capped(failed, 4096, &b) == 0 && b.data) {
		snprintf(err, errlen, "%s", b.data);
		ret = 0;
	}
	buf_free(&b);
	return ret;
}

int pyenv_ensure(const char *vdir, const char *env_dir,
		 const char *base_python, const char *wheelhouse,
		 char **python, char *err, size_t errlen)
{
	char req[PATH_MAX], env[PATH_MAX], lock[PATH_MAX], failed[PATH_MAX];
	char hex[DIGEST_HEX_LEN + 1];
	struct digest d;
	struct buf b;
	int fd = -1, ret;

	*python = NULL;
	buf_init(&b, PYENV_REQ_MAX);
	snprintf(req, sizeof(req), "%s/requirements.txt", vdir);
	ret = file_read_capped(req, PYENV_REQ_MAX, &b);
	if (ret == -ENOENT || ret == -ENOTDIR) {
		*python = strdup(base_python);
		ret = *python ? 0 : -ENOMEM;
		goto out;
	}
	if (ret < 0) {
		snprintf(err, errlen, "cannot read %s: %s", req,
			 strerror(-ret));
		goto out;
	}
	ret = digest_buf(b.data ? b.data : "", b.len, &d);
	if (ret < 0)
		goto out;
	digest_to_hex(&d, hex);
	if (snprintf(env, sizeof(env), "%s/%s", env_dir, hex) >=
	    (int)sizeof(env) - 32) {
		snprintf(err, errlen, "--python-env-dir is too long");
		ret = -ENAMETOOLONG;
		goto out;
	}
	snprintf(lock, sizeof(lock), "%s/%s.lock", env_dir, hex);
	snprintf(failed, sizeof(failed), "%s/%s.failed", env_dir, hex);
	if (!complete(env)) {
		ret = mkdir_p(env_dir, 0755);
		if (ret < 0) {
			snprintf(err, errlen, "cannot create %s: %s", env_dir,
				 strerror(-ret));
			goto out;
		}
		fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0 || flock(fd, LOCK_EX) < 0) {
			ret = -errno;
			snprintf(err, errlen, "cannot lock %s: %s", lock,
				 strerror(-ret));
			goto out;
		}
		if (!complete(env) &&
		    recent_failure(failed, err, errlen) == 0) {
			ret = -EIO;
			goto out;
		}
		if (!complete(env)) {
			rm_rf(env); /* a stray without its mark */
			ret = build(env_dir, hex, env, req, base_python,
				    wheelhouse, err, errlen);
			if (ret < 0) {
				file_write_atomic(failed, err, strlen(err),
						  0644, false);
				goto out;
			}
			unlink(failed);
		}
	}
	ret = asprintf(python, "%s/bin/python", env) < 0 ? -ENOMEM : 0;
	if (ret < 0)
		*python = NULL;
out:
	if (fd >= 0)
		close(fd); /* drops the lock */
	buf_free(&b);
	return ret;
}

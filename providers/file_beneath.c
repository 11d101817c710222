/*
 * file_beneath - see file_beneath.h. Two ways to the same answer: the
 * kernel's openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS, and,
 * where that system call is missing, a walk that opens one component at a
 * time with O_NOFOLLOW and resolves every symlink it meets by hand.
 *
 * The walk keeps a stack of directory descriptors from the root down to
 * the current directory: ".." pops one (and fails with -EXDEV at the
 * root), a relative link's text is spliced in front of what is left of
 * the path, an absolute link fails with -EXDEV. Because every step is an
 * openat() relative to a descriptor already known to lie beneath the
 * root, renaming directories during the walk cannot move it outside.
 */
#include "providers/file_beneath.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define FB_MAX_DEPTH 256  /* directory descriptors held by the walk */
#define FB_EAGAIN_TRIES 8 /* openat2 asks for a retry after a race */

static bool fb_walk_forced(void)
{
	const char *e = getenv("ASSETFS_FILE_NO_OPENAT2");

	return e && *e && strcmp(e, "0") != 0;
}

static int fb_openat2(int rootfd, const char *rel, int flags)
{
	struct open_how how = {
		.flags = (unsigned)(flags | O_CLOEXEC),
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	long fd = -1;

	for (int i = 0; i < FB_EAGAIN_TRIES; i++) {
		fd = syscall(SYS_openat2, rootfd, *rel ? rel : ".", &how,
			     sizeof(how));
		if (fd >= 0)
			return (int)fd;
		if (errno != EAGAIN)
			return -errno;
	}
	return -EAGAIN;
}

bool fb_uses_openat2(void)
{
	int fd;

	if (fb_walk_forced())
		return false;
	fd = fb_openat2(AT_FDCWD, ".", O_PATH | O_DIRECTORY);
	if (fd >= 0)
		close(fd);
	return fd != -ENOSYS;
}

/* Whether @fd (opened with O_PATH | O_NOFOLLOW) is a symlink. */
static bool fb_is_link(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISLNK(st.st_mode);
}

/*
 * Replace what is left to resolve (@rest, inside @path) by "@link/@rest".
 * Returns 0 or -ENAMETOOLONG.
 */
static int fb_splice(char *path, size_t len, const char *link,
		     const char **rest)
{
	char tmp[2 * PATH_MAX];
	size_t ll = strlen(link), rl = strlen(*rest);

	if (ll + 1 + rl + 1 > sizeof(tmp) || ll + 1 + rl + 1 > len)
		return -ENAMETOOLONG;
	memcpy(tmp, link, ll);
	tmp[ll] = '/';
	memcpy(tmp + ll + 1, *rest, rl + 1);
	memcpy(path, tmp, ll + rl + 2);
	*rest = path;
	return 0;
}

static int fb_walk(int rootfd, const char *rel, int flags)
{
	char path[2 * PATH_MAX], comp[NAME_MAX + 1], link[PATH_MAX];
	int fds[FB_MAX_DEPTH + 1];
	const char *rest = path;
	int depth = 0, links = 0, ret;

	if (strlen(rel) >= sizeof(path))
		return -ENAMETOOLONG;
	strcpy(path, rel);
	fds[0] = rootfd;
	for (;;) {
		size_t n;
		ssize_t ln;
		bool last;
		int fd, e;

		while (*rest == '/')
			rest++;
		if (!*rest) { /* the directory reached is the answer */
			ret = openat(fds[depth], ".", flags | O_CLOEXEC);
			if (ret < 0)
				ret = -errno;
			goto out;
		}
		n = strcspn(rest, "/");
		if (n > NAME_MAX) {
			ret = -ENAMETOOLONG;
			goto out;
		}
		memcpy(comp, rest, n);
		comp[n] = '\0';
		rest += n;
		while (*rest == '/')
			rest++;
		last = !*rest;
		if (strcmp(comp, ".") == 0)
			continue;
		if (strcmp(comp, "..") == 0) {
			if (depth == 0) {
				ret = -EXDEV; /* above the root */
				goto out;
			}
			close(fds[depth--]);
			continue;
		}
		if (last)
			fd = openat(fds[depth], comp,
				    flags | O_NOFOLLOW | O_CLOEXEC);
		else
			fd = openat(fds[depth], comp,
				    O_PATH | O_DIRECTORY | O_NOFOLLOW |
					O_CLOEXEC);
		e = errno;
		/* O_PATH | O_NOFOLLOW opens a symlink itself */
		if (fd >= 0 && last && (flags & O_PATH) && fb_is_link(fd)) {
			close(fd);
			fd = -1;
			e = ELOOP;
		}
		if (fd >= 0) {
			if (last) {
				ret = fd;
				goto out;
			}
			if (depth == FB_MAX_DEPTH) {
				close(fd);
				ret = -ENAMETOOLONG;
				goto out;
			}
			fds[++depth] = fd;
			continue;
		}
		/* a symlink answers O_NOFOLLOW with ELOOP (or ENOTDIR) */
		if (e != ELOOP && e != ENOTDIR) {
			ret = -e;
			goto out;
		}
		ln = readlinkat(fds[depth], comp, link, sizeof(link));
		if (ln < 0) {
			ret = -e; /* not a link: open's own answer */
			goto out;
		}
		if ((size_t)ln >= sizeof(link)) {
			ret = -ENAMETOOLONG;
			goto out;
		}
		link[ln] = '\0';
		if (++links > FB_MAX_LINKS) {
			ret = -ELOOP;
			goto out;
		}
		if (ln == 0) {
			ret = -ENOENT;
			goto out;
		}
		if (link[0] == '/') {
			ret = -EXDEV; /* absolute: not beneath by definition */
			goto out;
		}
		ret = fb_splice(path, sizeof(path), link, &rest);
		if (ret < 0)
			goto out;
	}
out:
	while (depth > 0)
		close(fds[depth--]);
	return ret;
}

int fb_open(int rootfd, const char *rel, int flags)
{
	int ret;

	if (flags & O_CREAT)
		return -EINVAL;
	if (!fb_walk_forced()) {
		ret = fb_openat2(rootfd, rel, flags);
		if (ret != -ENOSYS)
			return ret;
	}
	return fb_walk(rootfd, rel, flags);
}

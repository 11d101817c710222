/*
 * pyenv - one Python environment per distinct requirements.txt, built once
 * per node and shared.
 *
 * A model version with a requirements.txt runs under
 * <env_dir>/<sha256 of the file>/bin/python: a venv made with
 * --system-site-packages (so Debian's numpy and scikit-learn stay
 * importable) into which pip installs exactly that file. Two files that
 * differ by a byte get two environments, so what one model's requirements
 * install is never importable by another model. pip reads its index from
 * its own variables (PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_FIND_LINKS);
 * a wheelhouse adds `--no-index --find-links DIR`.
 *
 * Builds are atomic and happen once: under an exclusive flock on
 * <env_dir>/<sha>.lock (held across processes: every server worker and
 * every server on the node), the venv is made in <env_dir>/.tmp.<sha>.<pid>,
 * marked complete, and renamed to <env_dir>/<sha>; whoever waited on the
 * lock then finds it done. pip's output is kept in <env_dir>/<sha>.log.
 * A failed build leaves <env_dir>/<sha>.failed (its message): for a
 * minute, whoever asks for that environment gets the same error without
 * running pip again; after that the next load tries again.
 *
 * Threads: safe concurrently (the lock serializes builders). Errors: 0 or
 * a negative errno with a message in @err naming what failed.
 */
#ifndef ASSETFS_SERVER_PYENV_H
#define ASSETFS_SERVER_PYENV_H

#include <stddef.h>

/*
 * The interpreter for the model version in directory @vdir: @base_python
 * when @vdir has no requirements.txt, else the environment's, built first
 * when missing. *@python is malloc'd. -EIO when the build failed (the
 * message quotes pip's error).
 */
int pyenv_ensure(const char *vdir, const char *env_dir,
		 const char *base_python, const char *wheelhouse,
		 char **python, char *err, size_t errlen);

/* The default --python-env-dir into @buf: $XDG_CACHE_HOME/assetfs/python,
 * ~/.cache/assetfs/python, or /var/cache/assetfs/python for root. */
void pyenv_default_dir(char *buf, size_t n);

#endif

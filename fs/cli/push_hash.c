/*
 * push_hash - the hashing phase of a push (see push_int.h): the .meta of
 * the new version with its manifest, the SHA-256 of every
 * MANIFEST_BLOCK_SIZE block and of every file.
 *
 * Hashing reads PUSH_HASH_GROUP blocks at a time into one half of a buffer
 * of PUSH_HASH_BUF_SIZE bytes (allocated once per push) and hashes them
 * with one sha256_mb() call, while a second thread feeds the other half,
 * read just before, to the whole-file hasher. That serial hash is the
 * critical path; reading and block hashing hide behind it. 2 x 8 blocks
 * keep the buffer at 64 MiB (8 messages fill the AVX2 lanes).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/digest.h"
#include "common/fileutil.h"
#include "common/sha256_mb.h"
#include "common/timeutil.h"
#include "fs/cli/push_int.h"

#define PUSH_HASH_GROUP 8
#define PUSH_HASH_BUF_SIZE (2 * PUSH_HASH_GROUP * (size_t)MANIFEST_BLOCK_SIZE)

/* The whole-file hash, fed one group at a time on its own thread. */
struct push_file_hash {
	struct hasher *h;
	const char *data; /* borrowed: a half of the hash buffer */
	size_t len;
	pthread_t thread;
	bool running; /* thread started and not yet joined */
};

static void *push_file_hash_main(void *arg)
{
	struct push_file_hash *fh = arg;

	hasher_update(fh->h, fh->data, fh->len);
	return NULL;
}

/*
 * Feed @len bytes at @data to the file hash, on a thread when one can be
 * started (else inline). The previous group must be done (see _wait).
 */
static void push_file_hash_start(struct push_file_hash *fh, const char *data,
				 size_t len)
{
	fh->data = data;
	fh->len = len;
	fh->running = pthread_create(&fh->thread, NULL, push_file_hash_main,
				     fh) == 0;
	if (!fh->running)
		hasher_update(fh->h, data, len);
}

/* Wait until the group given to the file hash is hashed. */
static void push_file_hash_wait(struct push_file_hash *fh)
{
	if (fh->running) {
		pthread_join(fh->thread, NULL);
		fh->running = false;
	}
}

/*
 * Hash @f into @mf: every MANIFEST_BLOCK_SIZE block and the whole file.
 * @buf (borrowed) holds PUSH_HASH_BUF_SIZE bytes.
 */
static int push_hash(struct push_ctx *c, const struct push_file *f,
		     struct manifest_file *mf, char *buf)
{
	struct push_file_hash fh = {0};
	uint64_t n_blocks, off = 0;
	unsigned half = 0;
	int fd = -1, ret = 0;

	mf->path = strdup(f->rel);
	n_blocks = manifest_block_count(f->size, MANIFEST_BLOCK_SIZE);
	mf->blocks = calloc(n_blocks ? n_blocks : 1, sizeof(*mf->blocks));
	fh.h = hasher_new();
	if (!mf->path || !mf->blocks || !fh.h) {
		ret = push_fail(c, -ENOMEM, "out of memory");
		goto out;
	}
	mf->size = f->size;
	mf->n_blocks = n_blocks;
	fd = open(f->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		push_fail(c, ret, "cannot read %s: %s", f->path,
			  strerror(-ret));
		goto out;
	}
	for (uint64_t i = 0; i < n_blocks;) {
		char *group = buf + half * PUSH_HASH_BUF_SIZE / 2;
		const void *data[PUSH_HASH_GROUP];
		size_t len[PUSH_HASH_GROUP], n, want = 0;
		ssize_t got;

		n = n_blocks - i < PUSH_HASH_GROUP ? (size_t)(n_blocks - i)
						   : PUSH_HASH_GROUP;
		for (size_t j = 0; j < n; j++) {
			uint64_t left = f->size - off - want;

			len[j] = left < MANIFEST_BLOCK_SIZE
				     ? (size_t)left
				     : MANIFEST_BLOCK_SIZE;
			data[j] = group + want;
			want += len[j];
		}
		/* the file hash may still read the other half, not this one */
		got = pread_all(fd, group, want, (off_t)off);
		if (got < 0 || (size_t)got != want) {
			ret = got < 0 ? (int)got : -EIO;
			push_fail(c, ret, "cannot read %s: %s", f->path,
				  got < 0 ? strerror(-ret)
					  : "the file shrank while pushing");
			goto out;
		}
		ret = sha256_mb(n, data, len, &mf->blocks[i]);
		if (ret < 0) {
			push_fail(c, ret, "hashing %s failed", f->path);
			goto out;
		}
		push_file_hash_wait(&fh);
		/* one block: the file's digest is the block's */
		if (n_blocks > 1)
			push_file_hash_start(&fh, group, want);
		i += n;
		off += want;
		half ^= 1;
		c->base += want;
		progress_update(&c->prog, c->base);
	}
	push_file_hash_wait(&fh);
	if (n_blocks == 1) {
		mf->sha256 = mf->blocks[0];
	} else {
		ret = hasher_final(fh.h, &mf->sha256);
		if (ret < 0)
			push_fail(c, ret, "hashing %s failed", f->path);
	}
out:
	push_file_hash_wait(&fh); /* it reads @buf */
	if (fd >= 0)
		close(fd);
	hasher_free(fh.h);
	return ret;
}

/*
 * Build the .meta of the new version: push_date now, contents for a
 * folder, and the manifest (hashing every file).
 */
int push_build_meta(struct push_ctx *c, bool is_dir, struct meta *m)
{
	struct manifest *mf = NULL;
	char *buf = NULL;
	int ret = 0;

	memset(m, 0, sizeof(*m));
	time_now(&m->push_date, &m->push_date_nsec);
	m->is_directory = is_dir;
	mf = calloc(1, sizeof(*mf));
	/* pages are touched only as reads fill them: small pushes stay small */
	buf = malloc(PUSH_HASH_BUF_SIZE);
	if (!mf || !buf) {
		free(mf);
		ret = push_fail(c, -ENOMEM, "out of memory");
		goto out;
	}
	m->manifest = mf;
	mf->format = MANIFEST_FORMAT;
	mf->block_size = MANIFEST_BLOCK_SIZE;
	mf->files = calloc(c->n_files, sizeof(*mf->files));
	if (is_dir)
		m->contents = calloc(c->n_files, sizeof(*m->contents));
	if (!mf->files || (is_dir && !m->contents)) {
		ret = push_fail(c, -ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < c->n_files; i++) {
		mf->n_files++; /* counted first so meta_clear frees it */
		ret = push_hash(c, &c->files[i], &mf->files[i], buf);
		if (ret < 0)
			goto out;
		if (is_dir) {
			m->contents[i] = strdup(c->files[i].rel);
			if (!m->contents[i]) {
				ret = push_fail(c, -ENOMEM, "out of memory");
				goto out;
			}
			m->n_contents++;
		}
	}
out:
	free(buf);
	if (ret < 0)
		meta_clear(m);
	return ret;
}

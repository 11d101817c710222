/*
 * inode - the mount's inode table: inode numbers index a table of nodes of
 * the tree (DESIGN §4), never pointers cast to fuse_ino_t.
 *
 * A node is named by its path in the tree ("" for the root,
 * "fraud/xgb/1.0/sub/b.bin") and knows what it is: namespace dir, asset
 * dir, file or folder version, a dir or file inside a folder version, or
 * an alias symlink. Its fields never change after creation, so a node
 * pointer handed out stays valid and immutable until the kernel forgets
 * the inode (the kernel sends no op on an inode it has forgotten).
 * Numbers are never reused within a mount, so the generation is always 0.
 *
 * Lookup counts follow the FUSE protocol: every reply that hands an entry
 * to the kernel (lookup, readdirplus) adds one; forget subtracts; a node
 * whose count reaches zero is freed. The root is never freed.
 *
 * A table may report every change of lookup counts to a journal
 * (inode_table_set_journal()): the supervisor keeps a copy of the table
 * from it (inode_restore()), so a worker that replaces a dead one, or a
 * process that takes the mount over, knows every inode the kernel holds.
 *
 * Threads: all functions are safe concurrently (one table mutex).
 * Errors: 0 or a negative errno.
 */
#ifndef ASSETFS_FS_INODE_H
#define ASSETFS_FS_INODE_H

#include <stdbool.h>
#include <stdint.h>

#define INODE_ROOT_INO 1

enum inode_kind {
	INODE_NS = 0,	 /* namespace dir (the root is one, name "") */
	INODE_ASSET,	 /* asset dir: versions and aliases */
	INODE_VFILE,	 /* file asset version: a regular file */
	INODE_VDIR,	 /* folder asset version: a dir */
	INODE_SUBDIR,	 /* a dir inside a folder version */
	INODE_FILE,	 /* a file inside a folder version */
	INODE_ALIAS,	 /* `latest` or `N.latest` symlink */
};

struct inode {
	uint64_t ino;
	uint64_t parent;
	enum inode_kind kind;
	char *path;	  /* full path in the tree, "" for the root */
	const char *comp; /* last component (points into path) */
	char *name;	  /* asset name, or the namespace for INODE_NS */
	char *version;	  /* version, or the alias name for INODE_ALIAS;
			     NULL for NS/ASSET */
	char *relpath;	  /* path inside a folder version ("" for VDIR and
			     VFILE), NULL otherwise */
	/* private */
	uint64_t nlookup; /* protected by the table lock */
	bool hashed;	  /* protected by the table lock */
	struct inode *hnext; /* protected by the table lock */
};

struct inode_table;

/* Returns a table holding only the root, or NULL on out of memory. */
struct inode_table *inode_table_new(void);
void inode_table_free(struct inode_table *t); /* NULL-safe */

/*
 * The node for @ino (borrowed, valid until forgotten), or NULL if no such
 * inode is live.
 */
const struct inode *inode_get(struct inode_table *t, uint64_t ino);

/*
 * Find or create the child @comp of @parent with the given identity and
 * add one lookup. A live node with the same path but another kind or
 * identity is unlinked from the name index (it stays alive until forgotten)
 * and a new one made. @name, @version and @relpath are copied.
 * Returns 0 with *@out set (borrowed), -ENOENT for an unknown parent,
 * -ENAMETOOLONG or -ENOMEM.
 */
int inode_child(struct inode_table *t, uint64_t parent, const char *comp,
		enum inode_kind kind, const char *name, const char *version,
		const char *relpath, const struct inode **out);

/* Subtract @n lookups from @ino, freeing it at zero. */
void inode_forget(struct inode_table *t, uint64_t ino, uint64_t n);

/* Live nodes (for tests and stats). */
uint64_t inode_count(struct inode_table *t);

/*
 * Report changes to @fn: @delta > 0 when @n gained lookups (a new node, or
 * one more lookup), < 0 when it lost -@delta (it is freed after the call
 * if none are left). Called with the table lock held, in the order the
 * changes happen: @fn must not call into the table. NULL @fn: none.
 */
void inode_table_set_journal(struct inode_table *t,
			     void (*fn)(void *arg, const struct inode *n,
					int64_t delta),
			     void *arg);

/*
 * Add @nlookup lookups to inode @ino, making it from @proto (ino, parent,
 * kind, path, name, version and relpath copied; private fields ignored)
 * if it is not live: the node then becomes the one found by its path,
 * and numbers handed out later are above @ino. The root only exists.
 * Returns 0, -EINVAL (ino 0, bad path) or -ENOMEM.
 */
int inode_restore(struct inode_table *t, const struct inode *proto,
		  uint64_t nlookup);

/*
 * Call @fn on every live node but the root, in inode order, with its
 * lookup count, under the table lock (@fn must not call into the table).
 * Stops at and returns @fn's first negative return, else 0.
 */
int inode_foreach(struct inode_table *t,
		  int (*fn)(void *arg, const struct inode *n, uint64_t nlookup),
		  void *arg);

#endif

/*
 * test_handover - the state a mount hands over (fs/mount/handover) and the
 * inode table's journal and restore (fs/mount/inode): a state sent whole
 * through a real socketpair comes back equal (inode numbers, lookup
 * counts, paths, handles, the INIT exchange, counters, the descriptor);
 * the journal replayed into a copy gives the same table, forgets
 * included; malformed and truncated messages are refused, never applied.
 * The same state as one buffer (the fd store's memfd across `systemctl
 * restart`) decodes back equal; another version, a cut or a trailing
 * byte is refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/mount/handover.h"
#include "tests/unit/test.h"

/* The journal of one table, applied to another as the supervisor does. */
static void apply_journal(void *arg, const struct inode *n, int64_t delta)
{
	struct ho_state *copy = arg;
	struct ho_msg m;

	if (delta > 0) {
		ho_msg_start(&m, HO_NODE);
		ho_put_u64(&m, n->ino);
		ho_put_u64(&m, n->parent);
		ho_put_u64(&m, (uint64_t)delta);
		ho_put_u32(&m, (uint32_t)n->kind);
		ho_put_str(&m, n->path);
		ho_put_str(&m, n->name);
		ho_put_str(&m, n->version);
		ho_put_str(&m, n->relpath);
	} else {
		ho_msg_start(&m, HO_FORGET);
		ho_put_u64(&m, n->ino);
		ho_put_u64(&m, (uint64_t)-delta);
	}
	CHECK_INT(ho_apply(copy, &m), 1);
}

test(journal_keeps_a_copy_equal_to_the_table)
{
	struct inode_table *t = inode_table_new();
	struct ho_state copy;
	const struct inode *ns, *asset, *v, *f, *again, *c;
	uint64_t ino;

	CHECK_INT(ho_state_init(&copy), 0);
	inode_table_set_journal(t, apply_journal, &copy);
	CHECK_INT(inode_child(t, INODE_ROOT_INO, "fraud", INODE_NS, "fraud",
			      NULL, NULL, &ns), 0);
	CHECK_INT(inode_child(t, ns->ino, "xgb", INODE_ASSET, "fraud/xgb",
			      NULL, NULL, &asset), 0);
	CHECK_INT(inode_child(t, asset->ino, "1.0", INODE_VDIR, "fraud/xgb",
			      "1.0", "", &v), 0);
	CHECK_INT(inode_child(t, v->ino, "model.json", INODE_FILE,
			      "fraud/xgb", "1.0", "model.json", &f), 0);
	CHECK_INT(inode_child(t, v->ino, "model.json", INODE_FILE,
			      "fraud/xgb", "1.0", "model.json", &again), 0);
	CHECK(again == f);
	inode_forget(t, f->ino, 1);
	c = inode_get(copy.it, f->ino);
	CHECK(c && strcmp(c->path, "fraud/xgb/1.0/model.json") == 0);
	CHECK(c && c->kind == INODE_FILE && strcmp(c->relpath, "model.json") == 0);
	CHECK(c && c->parent == v->ino);
	CHECK_INT(inode_count(copy.it), inode_count(t));
	/* the last lookup forgotten: gone from both (and f freed) */
	ino = f->ino;
	inode_forget(t, ino, 1);
	CHECK(inode_get(t, ino) == NULL);
	CHECK(inode_get(copy.it, ino) == NULL);
	CHECK_INT(inode_count(copy.it), inode_count(t));
	inode_table_free(t);
	ho_state_clear(&copy);
}

test(a_restored_table_hands_out_higher_numbers)
{
	struct inode_table *t = inode_table_new();
	struct inode proto = { .ino = 500, .parent = 1, .kind = INODE_NS,
			       .path = "a", .name = "a" };
	const struct inode *n;

	CHECK_INT(inode_restore(t, &proto, 3), 0);
	CHECK_INT(inode_child(t, 500, "b", INODE_NS, "a/b", NULL, NULL, &n),
		  0);
	CHECK(n->ino > 500);
	/* the same path is found, not made again */
	CHECK_INT(inode_child(t, INODE_ROOT_INO, "a", INODE_NS, "a", NULL,
			      NULL, &n), 0);
	CHECK_INT(n->ino, 500);
	/* garbage numbers and paths are refused */
	proto.ino = 0;
	CHECK_INT(inode_restore(t, &proto, 1), -EINVAL);
	proto.ino = 1ull << 40;
	CHECK_INT(inode_restore(t, &proto, 1), -EINVAL);
	inode_table_free(t);
}

test(a_state_goes_over_a_socket_whole)
{
	struct ho_state a, b;
	const struct inode *n, *m;
	uint64_t ino;
	unsigned char init_in[64], init_out[96];
	struct stat s1, s2;
	int sv[2], fd = -1, devnull;

	CHECK_INT(ho_state_init(&a), 0);
	CHECK_INT(ho_state_init(&b), 0);
	CHECK_INT(inode_child(a.it, INODE_ROOT_INO, "demo", INODE_NS, "demo",
			      NULL, NULL, &n), 0);
	CHECK_INT(inode_child(a.it, n->ino, "iris", INODE_ASSET, "demo/iris",
			      NULL, NULL, &m), 0);
	CHECK_INT(inode_child(a.it, n->ino, "iris", INODE_ASSET, "demo/iris",
			      NULL, NULL, &m), 0);
	memset(init_in, 7, sizeof(init_in));
	memset(init_out, 9, sizeof(init_out));
	a.init_in = malloc(sizeof(init_in));
	a.init_out = malloc(sizeof(init_out));
	memcpy(a.init_in, init_in, sizeof(init_in));
	memcpy(a.init_out, init_out, sizeof(init_out));
	a.init_in_len = sizeof(init_in);
	a.init_out_len = sizeof(init_out);
	a.h = calloc(2, sizeof(*a.h));
	a.h[0] = (struct ho_handle){ .id = (3ull << 32) | 5, .ino = m->ino };
	a.h[1] = (struct ho_handle){ .id = 9, .ino = n->ino, .dir = true };
	a.n_h = a.cap_h = 2;
	a.gen = 3;
	a.takeovers = 2;
	a.worker_restarts = 4;
	a.resent = 11;
	a.mounted_at = 1700000000;
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	CHECK_INT(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	CHECK_INT(ho_send_state(sv[0], &a, devnull), 0);
	CHECK_INT(ho_recv_state(sv[1], &b, &fd, 1000), 0);
	CHECK(fd >= 0 && fd != devnull);
	CHECK(fstat(fd, &s1) == 0 && fstat(devnull, &s2) == 0 &&
	      s1.st_rdev == s2.st_rdev);
	m = inode_get(b.it, m->ino);
	CHECK(m && strcmp(m->path, "demo/iris") == 0 &&
	      m->kind == INODE_ASSET && !m->version);
	CHECK_INT(inode_count(b.it), 3);
	CHECK_INT(b.init_in_len, sizeof(init_in));
	CHECK(b.init_in && memcmp(b.init_in, init_in, sizeof(init_in)) == 0);
	CHECK(b.init_out && memcmp(b.init_out, init_out, sizeof(init_out)) ==
				    0);
	CHECK_INT(b.n_h, 2);
	CHECK(b.n_h == 2 && b.h[0].id == ((3ull << 32) | 5) && b.h[1].dir);
	CHECK_INT(b.gen, 3);
	CHECK_INT(b.takeovers, 2);
	CHECK_INT(b.worker_restarts, 4);
	CHECK_INT(b.resent, 11);
	CHECK_INT(b.mounted_at, 1700000000);
	/* two lookups of iris were made: two forgets free it in the copy */
	ino = m->ino; /* m is freed by the second forget */
	inode_forget(b.it, ino, 1);
	CHECK(inode_get(b.it, ino) != NULL);
	inode_forget(b.it, ino, 1);
	CHECK(inode_get(b.it, ino) == NULL);
	close(fd);
	close(devnull);
	close(sv[0]);
	close(sv[1]);
	ho_state_clear(&a);
	ho_state_clear(&b);
}

test(a_state_in_one_buffer_decodes_back)
{
	struct ho_state a, b;
	const struct inode *n, *m;
	unsigned char *buf, *e2, *odd;
	size_t len, len2, cut;
	uint32_t v;

	CHECK_INT(ho_state_init(&a), 0);
	CHECK_INT(inode_child(a.it, INODE_ROOT_INO, "demo", INODE_NS, "demo",
			      NULL, NULL, &n), 0);
	CHECK_INT(inode_child(a.it, n->ino, "iris", INODE_ASSET, "demo/iris",
			      NULL, NULL, &m), 0);
	a.h = calloc(1, sizeof(*a.h));
	a.h[0] = (struct ho_handle){ .id = 42, .ino = m->ino };
	a.n_h = a.cap_h = 1;
	a.gen = 5;
	a.takeovers = 1;
	a.mounted_at = 1700000000;
	CHECK_INT(ho_state_encode(&a, &buf, &len), 0);
	CHECK(len > 8 && memcmp(buf, HO_FILE_MAGIC, 4) == 0);
	CHECK_INT(ho_state_init(&b), 0);
	CHECK_INT(ho_state_decode(&b, buf, len, &v), 0);
	CHECK_INT(v, HO_VERSION);
	CHECK_INT(inode_count(b.it), 3);
	m = inode_get(b.it, m->ino);
	CHECK(m && strcmp(m->path, "demo/iris") == 0);
	CHECK(b.n_h == 1 && b.h[0].id == 42);
	CHECK_INT(b.gen, 5);
	CHECK_INT(b.takeovers, 1);
	CHECK_INT(b.mounted_at, 1700000000);
	CHECK_INT(ho_state_encode(&b, &e2, &len2), 0);
	CHECK(len2 == len && memcmp(e2, buf, len) == 0);
	ho_state_clear(&b);
	/* every cut is refused */
	for (cut = 0; cut < len; cut++) {
		CHECK_INT(ho_state_init(&b), 0);
		CHECK_INT(ho_state_decode(&b, buf, cut, &v), -EPROTO);
		ho_state_clear(&b);
	}
	/* a byte after the end, another version */
	odd = malloc(len + 1);
	memcpy(odd, buf, len);
	odd[len] = 0;
	CHECK_INT(ho_state_init(&b), 0);
	CHECK_INT(ho_state_decode(&b, odd, len + 1, &v), -EPROTO);
	ho_state_clear(&b);
	v = HO_VERSION + 1;
	memcpy(odd + 4, &v, 4);
	CHECK_INT(ho_state_init(&b), 0);
	CHECK_INT(ho_state_decode(&b, odd, len, &v), -EPROTONOSUPPORT);
	CHECK_INT(v, HO_VERSION + 1);
	CHECK_INT(inode_count(b.it), 1);
	ho_state_clear(&b);
	free(odd);
	free(e2);
	free(buf);
	ho_state_clear(&a);
}

test(malformed_messages_are_refused)
{
	struct ho_state s;
	struct ho_msg m;
	size_t cut;

	CHECK_INT(ho_state_init(&s), 0);
	/* a node whose message is cut anywhere is refused */
	ho_msg_start(&m, HO_NODE);
	ho_put_u64(&m, 7);
	ho_put_u64(&m, 1);
	ho_put_u64(&m, 1);
	ho_put_u32(&m, INODE_NS);
	ho_put_str(&m, "x");
	ho_put_str(&m, "x");
	ho_put_str(&m, NULL);
	ho_put_str(&m, NULL);
	for (cut = 4; cut < m.len; cut++) {
		struct ho_msg t = m;

		t.len = cut;
		CHECK_INT(ho_apply(&s, &t), -EPROTO);
	}
	CHECK(inode_get(s.it, 7) == NULL);
	/* a kind out of range, a string without its NUL */
	{
		struct ho_msg t = m;

		memcpy(t.b + 4 + 24, &(uint32_t){ 99 }, 4);
		CHECK_INT(ho_apply(&s, &t), -EPROTO);
		t = m;
		t.b[4 + 24 + 4 + 4 + 1] = 'y'; /* "x\0" -> "xy" */
		CHECK_INT(ho_apply(&s, &t), -EPROTO);
	}
	CHECK_INT(ho_apply(&s, &m), 1);
	CHECK(inode_get(s.it, 7) != NULL);
	/* no state message: not applied */
	ho_msg_start(&m, HO_HELLO);
	ho_put_u32(&m, 1);
	CHECK_INT(ho_apply(&s, &m), 0);
	/* an oversized put marks the message bad; it is never sent */
	{
		static char big[HO_MSG_MAX + 10];
		int sv[2];

		memset(big, 'a', sizeof(big) - 1);
		ho_msg_start(&m, HO_NODE);
		ho_put_str(&m, big);
		CHECK(m.bad);
		CHECK_INT(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
		CHECK_INT(ho_send(sv[0], &m, -1), -EMSGSIZE);
		close(sv[0]);
		close(sv[1]);
	}
	ho_state_clear(&s);
}

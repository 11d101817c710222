/*
 * fuzz_handover - libFuzzer target for ho_state_decode(), the reader of
 * the state a mount keeps in systemd's fd store across `systemctl
 * restart` (fs/mount/supervisor_sd.c reads it back from a memfd, so a
 * stale or foreign file reaches it).
 *
 * The input is such a buffer. Invariants: the decoder never crashes and
 * answers 0, -EPROTO, -EPROTONOSUPPORT or -ENOMEM; a state it accepts
 * encodes to a buffer that decodes to a state encoding the same bytes,
 * and that buffer cut short by one byte is refused.
 *
 * Inode numbers index an array in the inode table: inputs naming one
 * above 2^20 are skipped here to keep the fuzzer's memory small (the
 * daemon accepts up to INODE_RESTORE_MAX, which a live table can reach).
 */
#include <errno.h>

#include "fs/mount/handover.h"
#include "tests/fuzz/fuzz.h"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

/* Does a HO_NODE record of @data name an inode above 2^20? */
static int fuzz_handover_big_ino(const uint8_t *data, size_t size)
{
	size_t off = 8;
	uint32_t n, type;
	uint64_t ino;

	while (off + 4 <= size) {
		memcpy(&n, data + off, 4);
		off += 4;
		if (n > size - off)
			break;
		if (n >= 12) {
			memcpy(&type, data + off, 4);
			memcpy(&ino, data + off + 4, 8);
			if (type == HO_NODE && ino > (1u << 20))
				return 1;
		}
		off += n;
	}
	return 0;
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
	struct ho_state a, b;
	unsigned char *e1 = NULL, *e2 = NULL;
	size_t n1 = 0, n2 = 0;
	uint32_t version;
	int r;

	if (fuzz_handover_big_ino(data, size))
		return 0;
	if (ho_state_init(&a) < 0)
		return 0;
	r = ho_state_decode(&a, data, size, &version);
	FUZZ_CHECK(r == 0 || r == -EPROTO || r == -EPROTONOSUPPORT ||
		   r == -ENOMEM);
	FUZZ_CHECK(r != -EPROTONOSUPPORT || version != HO_VERSION);
	if (r == 0 && ho_state_encode(&a, &e1, &n1) == 0) {
		if (ho_state_init(&b) == 0) {
			r = ho_state_decode(&b, e1, n1, &version);
			FUZZ_CHECK(r == 0 || r == -ENOMEM);
			if (r == 0 && ho_state_encode(&b, &e2, &n2) == 0) {
				FUZZ_CHECK(n1 == n2 &&
					   memcmp(e1, e2, n1) == 0);
			}
			ho_state_clear(&b);
		}
		if (ho_state_init(&b) == 0) {
			r = ho_state_decode(&b, e1, n1 - 1, &version);
			FUZZ_CHECK(r == -EPROTO || r == -ENOMEM);
			ho_state_clear(&b);
		}
	}
	free(e1);
	free(e2);
	ho_state_clear(&a);
	return 0;
}

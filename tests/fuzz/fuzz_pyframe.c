/*
 * fuzz_pyframe - libFuzzer target for what assetfs-server reads from a
 * Python model process (server/pyproc.h): a frame header checked against
 * the reply caps, and the JSON description a process sends once loaded.
 * The first 32 bytes are a header, the rest a description.
 *
 * Invariants: an accepted header never promises more payload than its
 * type's cap, and a result header exactly rows x cols doubles; an accepted
 * description has 1 to 65536 outputs and -1 or a positive feature count;
 * a refusal always says why.
 */
#include <errno.h>

#include "server/pyproc.h"
#include "server/tensor.h"
#include "tests/fuzz/fuzz.h"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
	struct pyframe_hdr h;
	struct pyhello hello;
	char err[ERR_MAX];
	uint64_t max = 1u << 20;
	int ret;

	if (size >= sizeof(h)) {
		memcpy(&h, data, sizeof(h));
		err[0] = '\0';
		ret = pyframe_check_reply(&h, max, err, sizeof(err));
		if (ret == 0 && h.type == PYF_RESULT) {
			FUZZ_CHECK(h.len <= max);
			FUZZ_CHECK((uint64_t)h.rows * h.cols * 8 == h.len);
		} else if (ret == 0) {
			FUZZ_CHECK(h.len <= PYFRAME_MAX_TEXT);
			FUZZ_CHECK(h.type == PYF_HELLO || h.type == PYF_ERROR ||
				   h.type == PYF_METRICS_RESULT);
		} else {
			FUZZ_CHECK(ret == -EPROTO && fuzz_err_ok(err, ERR_MAX));
		}
		data += sizeof(h);
		size -= sizeof(h);
	}
	err[0] = '\0';
	ret = pyhello_parse((const char *)data, size, &hello, err,
			    sizeof(err));
	if (ret == 0) {
		FUZZ_CHECK(hello.n_outputs >= 1 && hello.n_outputs <= 65536);
		FUZZ_CHECK(hello.n_features == -1 || hello.n_features >= 1);
		FUZZ_CHECK(strnlen(hello.objective, sizeof(hello.objective)) <
			   sizeof(hello.objective));
	} else {
		FUZZ_CHECK(fuzz_err_ok(err, ERR_MAX));
	}
	return 0;
}

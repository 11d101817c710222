/*
 * test_infer_parse - assetfs-server's request parsers (V2 inputs, Seldon,
 * TF Serving) on hostile bodies in every unit run: the libFuzzer target
 * tests/fuzz/fuzz_infer.c is compiled in and fed a table of real requests
 * and thousands of deterministic mutations of them (byte flips, JSON
 * tokens, huge numbers and shapes, truncations, duplications). Its
 * invariants report test failures here; ASan/UBSan builds catch the rest.
 * INFER_PARSE_ITERS in the environment changes the number of mutations.
 */
#include <stdlib.h>

#include "tests/unit/test.h"

#define FUZZ_CHECK(cond)                                                       \
	do {                                                                   \
		if (!(cond))                                                   \
			test_fail(__FILE__, __LINE__, "invariant: %s", #cond); \
	} while (0)
#define FUZZ_ENTRY fuzz_infer_entry
#include "tests/fuzz/fuzz_infer.c"

static const char *const seeds[] = {
    "{\"id\": \"a\", \"inputs\": [{\"name\": \"x\", \"shape\": [2, 4], "
    "\"datatype\": \"FP32\", \"data\": [[5.1, 3.5, 1.4, 0.2], "
    "[4.9, 3, 1.4, 0.2]]}], \"outputs\": [{\"name\": \"predict\"}]}",
    "{\"inputs\": [{\"name\": \"a\", \"shape\": [3], \"datatype\": "
    "\"INT8\", \"data\": [1, -2, 3]}, {\"name\": \"b\", \"shape\": [3, 1], "
    "\"datatype\": \"BOOL\", \"data\": [true, false, true]}]}",
    "{\"inputs\": [{\"name\": \"x\", \"shape\": [1, 2], \"datatype\": "
    "\"UINT64\", \"data\": [18446744073709551615, 0]}]}",
    "{\"inputs\": [{\"name\": \"x\", \"shape\": [4294967296, 4294967296], "
    "\"datatype\": \"FP64\", \"data\": [1]}]}",
    "{\"inputs\": [{\"name\": \"x\", \"shape\": [0, 3], \"datatype\": "
    "\"FP64\", \"data\": []}]}",
    "{\"data\": {\"names\": [\"a\", \"b\"], \"ndarray\": [[1, 2], [3, 4]]}}",
    "{\"data\": {\"tensor\": {\"shape\": [2, 2], \"values\": [1, 2, 3, 4]}}}",
    "{\"data\": {\"tensor\": {\"shape\": [1e300, 2], \"values\": [1]}}}",
    "{\"jsonData\": {\"instances\": [[1, 2]]}}",
    "{\"jsonData\": [1, 2, 3]}",
    "{\"instances\": [{\"x\": [1, 2]}, {\"x\": [3, 4]}]}",
    "{\"instances\": [[1, 2], [3]]}",
    "{\"inputs\": {\"x\": [[1, 2, 3]]}}",
    "{\"inputs\": [[1, 2, 3]], \"instances\": [[1]]}",
};

static const char *const tokens[] = {
    "[",	 "]",	      "{",	    "}",
    ",",	 ":",	      "\"",	    "null",
    "true",	 "-1",	      "1e309",	    "18446744073709551616",
    "\"shape\"", "\"data\"",  "\"inputs\"", "\"datatype\"",
    "\"BOOL\"",	 "\"UINT8\"", "[[[[",	    "]]]]",
    "0.5",	 "\\u0000",
};

static uint64_t state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	state ^= state >> 12;
	state ^= state << 25;
	state ^= state >> 27;
	return state * 2685821657736338717ull;
}

static size_t mutate(const char *seed, char *out, size_t cap)
{
	size_t n = strlen(seed), i, k, rounds = 1 + rnd() % 4;

	if (n >= cap)
		n = cap - 1;
	memcpy(out, seed, n);
	for (k = 0; k < rounds; k++) {
		size_t pos = n ? rnd() % n : 0;

		switch (rnd() % 5) {
		case 0: /* flip a byte */
			if (n)
				out[pos] = (char)(rnd() & 0xff);
			break;
		case 1: { /* insert a token */
			const char *t = tokens[rnd() % (sizeof(tokens) /
							sizeof(tokens[0]))];
			size_t tl = strlen(t);

			if (n + tl < cap) {
				memmove(out + pos + tl, out + pos, n - pos);
				memcpy(out + pos, t, tl);
				n += tl;
			}
			break;
		}
		case 2: /* truncate */
			n = pos;
			break;
		case 3: /* delete a span */
			i = pos + rnd() % 8;
			if (i > n)
				i = n;
			memmove(out + pos, out + i, n - i);
			n -= i - pos;
			break;
		default: /* duplicate a span */
			i = rnd() % 16;
			if (pos + i <= n && n + i < cap) {
				memmove(out + pos + i, out + pos, n - pos);
				n += i;
			}
			break;
		}
	}
	return n;
}

test(seeds_parse)
{
	size_t i;

	for (i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
		fuzz_infer_entry((const uint8_t *)seeds[i], strlen(seeds[i]));
}

test(mutations_keep_the_invariants)
{
	const char *env = getenv("INFER_PARSE_ITERS");
	long iters = env ? atol(env) : 100000, it;
	char buf[4096];

	for (it = 0; it < iters; it++) {
		const char *seed =
		    seeds[rnd() % (sizeof(seeds) / sizeof(seeds[0]))];
		size_t n = mutate(seed, buf, sizeof(buf));

		fuzz_infer_entry((const uint8_t *)buf, n);
	}
}

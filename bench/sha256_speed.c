/*
 * sha256_speed - throughput of each sha256_mb implementation this CPU
 * supports, hashing N messages of 4 MiB in one call for N = 1, 2, 4, 8, 16.
 *
 * Prints one "name value" line per figure: aggregate MB/s (10^6 bytes of
 * all N messages over the wall time of the call, best of RUNS runs), then
 * the ratio to OpenSSL with N = 1 measured in the same run. Best of several
 * runs because the machine is shared: the best run is the least disturbed.
 * The runs go round every implementation and N in turn, so a quiet or a
 * busy moment of the machine is shared among them all.
 *
 * Figures are those of a real call: with one message (two for avx2) the
 * lane implementations hand it to OpenSSL, which is faster for it.
 *
 * Usage: sha256_speed [RUNS]   (default 5, at most 100)
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/sha256_mb.h"

#define MSG_LEN (4u << 20)
#define RUNS_MAX 100

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define NIMPLS 4
#define NCOUNTS 5

static const char *const impls[NIMPLS] = {"openssl", "avx2", "avx512vl",
					  "avx512"};
static const size_t counts[NCOUNTS] = {1, 2, 4, 8, 16};

/* MB/s of one call hashing @n messages; 0 on error. */
static double measure(size_t n, const void *const msg[])
{
	size_t len[SHA256_MB_MAX];
	struct digest out[SHA256_MB_MAX];
	double t0, t;
	size_t i;

	for (i = 0; i < n; i++)
		len[i] = MSG_LEN;
	t0 = now();
	if (sha256_mb(n, msg, len, out) < 0)
		return 0;
	t = now() - t0;
	return t > 0 ? (double)n * MSG_LEN / t / 1e6 : 0;
}

int main(int argc, char **argv)
{
	const void *msg[SHA256_MB_MAX];
	unsigned char *bufs[SHA256_MB_MAX] = {0};
	double best[NIMPLS][NCOUNTS] = {{0}}, base, v;
	bool have[NIMPLS];
	int runs = 5, ret = 1, r;
	size_t i, j, k;

	if (argc > 1) {
		runs = atoi(argv[1]);
		if (runs < 1 || runs > RUNS_MAX) {
			fprintf(stderr, "usage: %s [RUNS 1-%d]\n", argv[0],
				RUNS_MAX);
			return 2;
		}
	}
	printf("sha256_default %s lanes %zu\n", sha256_mb_impl(),
	       sha256_mb_lanes());
	srand(1);
	for (i = 0; i < SHA256_MB_MAX; i++) {
		bufs[i] = malloc(MSG_LEN);
		if (!bufs[i]) {
			fprintf(stderr, "sha256_speed: out of memory\n");
			goto out;
		}
		for (j = 0; j < MSG_LEN; j++)
			bufs[i][j] = (unsigned char)rand();
		msg[i] = bufs[i];
	}
	for (k = 0; k < NIMPLS; k++)
		have[k] = sha256_mb_use(impls[k]) == 0;
	for (r = 0; r < runs; r++) {
		for (k = 0; k < NIMPLS; k++) {
			if (!have[k] || sha256_mb_use(impls[k]) < 0)
				continue;
			for (i = 0; i < NCOUNTS; i++) {
				v = measure(counts[i], msg);
				if (v > best[k][i])
					best[k][i] = v;
			}
		}
	}
	base = best[0][0];
	for (k = 0; k < NIMPLS; k++) {
		if (!have[k]) {
			printf("sha256_%s unsupported\n", impls[k]);
			continue;
		}
		for (i = 0; i < NCOUNTS; i++)
			printf("sha256_%s_n%zu_mb_s %.0f x%.2f\n", impls[k],
			       counts[i], best[k][i],
			       base > 0 ? best[k][i] / base : 0);
	}
	ret = 0;
out:
	for (i = 0; i < SHA256_MB_MAX; i++)
		free(bufs[i]);
	return ret;
}

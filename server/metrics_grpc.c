/*
 * metrics_grpc - a fixed table of gRPC call counters in shared memory
 * (see metrics_grpc.h). Histogram buckets are kept per bucket and summed
 * when rendered.
 */
#include <errno.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "server/metrics_grpc.h"

#define MG_CODES 17

static const double mg_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025,
				   0.005,  0.01,    0.025,  0.05,  0.1,
				   0.25,   0.5,     1,	    2.5,   10};
#define MG_BUCKETS (sizeof(mg_bounds) / sizeof(mg_bounds[0]))

static const char *const mg_methods[MG_N_METHODS] = {
    [MG_SERVER_LIVE] = "/inference.GRPCInferenceService/ServerLive",
    [MG_SERVER_READY] = "/inference.GRPCInferenceService/ServerReady",
    [MG_MODEL_READY] = "/inference.GRPCInferenceService/ModelReady",
    [MG_SERVER_METADATA] = "/inference.GRPCInferenceService/ServerMetadata",
    [MG_MODEL_METADATA] = "/inference.GRPCInferenceService/ModelMetadata",
    [MG_MODEL_INFER] = "/inference.GRPCInferenceService/ModelInfer",
    [MG_MODEL_PREDICT] = "/seldon.protos.Model/Predict",
    [MG_SELDON_PREDICT] = "/seldon.protos.Seldon/Predict",
    [MG_OTHER] = "other",
};

static const char *const mg_codes[MG_CODES] = {
    "OK",		  "CANCELLED",		"UNKNOWN",
    "INVALID_ARGUMENT",	  "DEADLINE_EXCEEDED",	"NOT_FOUND",
    "ALREADY_EXISTS",	  "PERMISSION_DENIED",	"RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION", "ABORTED",		"OUT_OF_RANGE",
    "UNIMPLEMENTED",	  "INTERNAL",		"UNAVAILABLE",
    "DATA_LOSS",	  "UNAUTHENTICATED",
};

struct mg_row {
	atomic_uint_fast64_t count;
	atomic_uint_fast64_t sum_ns;
	atomic_uint_fast64_t buckets[MG_BUCKETS]; /* not cumulative */
};

struct metrics_grpc {
	struct mg_row rows[MG_N_METHODS][MG_CODES];
};

int metrics_grpc_new(struct metrics_grpc **out)
{
	void *p = mmap(NULL, sizeof(struct metrics_grpc),
		       PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
		       0);

	if (p == MAP_FAILED)
		return -errno;
	*out = p; /* zero-filled */
	return 0;
}

void metrics_grpc_free(struct metrics_grpc *m)
{
	if (m)
		munmap(m, sizeof(*m));
}

void metrics_grpc_call(struct metrics_grpc *m, unsigned method, int code,
		       int64_t ns)
{
	struct mg_row *r;
	double secs = (double)ns / 1e9;
	size_t b;

	if (!m)
		return;
	if (method >= MG_N_METHODS)
		method = MG_OTHER;
	if (code < 0 || code >= MG_CODES)
		code = 2; /* UNKNOWN */
	r = &m->rows[method][code];
	atomic_fetch_add_explicit(&r->count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&r->sum_ns, (uint64_t)(ns > 0 ? ns : 0),
				  memory_order_relaxed);
	for (b = 0; b < MG_BUCKETS; b++)
		if (secs <= mg_bounds[b])
			break;
	if (b < MG_BUCKETS)
		atomic_fetch_add_explicit(&r->buckets[b], 1,
					  memory_order_relaxed);
}

int metrics_grpc_render(struct metrics_grpc *m, struct buf *out)
{
	uint64_t counts[MG_N_METHODS][MG_CODES];
	unsigned i, c;
	size_t b;
	int ret = 0;

	if (!m)
		return 0;
	for (i = 0; i < MG_N_METHODS; i++)
		for (c = 0; c < MG_CODES; c++)
			counts[i][c] = atomic_load(&m->rows[i][c].count);
	ret = buf_puts(out, "# HELP assetfs_server_grpc_requests_total gRPC "
			    "calls answered, by method and status code.\n"
			    "# TYPE assetfs_server_grpc_requests_total "
			    "counter\n");
	for (i = 0; i < MG_N_METHODS && ret == 0; i++)
		for (c = 0; c < MG_CODES && ret == 0; c++)
			if (counts[i][c])
				ret = buf_printf(
				    out,
				    "assetfs_server_grpc_requests_total{method="
				    "\"%s\",code=\"%s\"} %llu\n",
				    mg_methods[i], mg_codes[c],
				    (unsigned long long)counts[i][c]);
	if (ret == 0)
		ret = buf_puts(
		    out, "# HELP assetfs_server_grpc_request_duration_seconds "
			 "Time to answer a gRPC call.\n"
			 "# TYPE assetfs_server_grpc_request_duration_seconds "
			 "histogram\n");
	for (i = 0; i < MG_N_METHODS && ret == 0; i++) {
		for (c = 0; c < MG_CODES && ret == 0; c++) {
			struct mg_row *r = &m->rows[i][c];
			uint64_t cum = 0;

			if (!counts[i][c])
				continue;
			for (b = 0; b < MG_BUCKETS && ret == 0; b++) {
				cum += atomic_load(&r->buckets[b]);
				ret = buf_printf(
				    out,
				    "assetfs_server_grpc_request_duration_"
				    "seconds_bucket{method=\"%s\",code=\"%s\","
				    "le=\"%g\"} %llu\n",
				    mg_methods[i], mg_codes[c], mg_bounds[b],
				    (unsigned long long)cum);
			}
			if (ret == 0)
				ret = buf_printf(
				    out,
				    "assetfs_server_grpc_request_duration_"
				    "seconds_bucket{method=\"%s\",code=\"%s\","
				    "le=\"+Inf\"} %llu\n"
				    "assetfs_server_grpc_request_duration_"
				    "seconds_sum{method=\"%s\",code=\"%s\"} "
				    "%.9f\n"
				    "assetfs_server_grpc_request_duration_"
				    "seconds_count{method=\"%s\",code=\"%s\"} "
				    "%llu\n",
				    mg_methods[i], mg_codes[c],
				    (unsigned long long)counts[i][c],
				    mg_methods[i], mg_codes[c],
				    (double)atomic_load(&r->sum_ns) / 1e9,
				    mg_methods[i], mg_codes[c],
				    (unsigned long long)counts[i][c]);
		}
	}
	return ret;
}

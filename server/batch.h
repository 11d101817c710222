/*
 * batch - `assetfs-server batch`: score a JSON Lines file offline.
 *
 * A scoring job calls the model once per record and writes one line per
 * input line: {"line": N, "predictions": [...]} or {"line": N, "error":
 * "..."}. A metrics job (--metrics-job) hands every record to the model's
 * metrics entry point at once and writes the failed records' lines and
 * then {"records": N, "failed": K, "metrics": {...}}. A record is a row
 * [x, ...], rows [[...], ...], or an object with "features" (or
 * "instances", "inputs", "x") and optionally "label" (or "y").
 *
 * The output is written to a temp file and renamed into place.
 */
#ifndef ASSETFS_SERVER_BATCH_H
#define ASSETFS_SERVER_BATCH_H

#include "server/options.h"

/*
 * Run the job. Returns the exit code: 0 every record scored, 1 some
 * record failed, 2 the job could not run (message logged).
 */
int batch_run(const struct server_opts *o);

#endif

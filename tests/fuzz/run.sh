#!/usr/bin/env bash
# Build the libFuzzer targets with clang and run each for a while.
#
# Usage: tests/fuzz/run.sh [SECONDS [TARGET...]]
#   SECONDS  time per target (default 60); TARGET: spec versions meta
#   assets_index level objinfo pins handover (default all of these).
#   FUZZ_BUILD picks the build dir (default build-fuzz), FUZZ_WORK where
#   the growing corpus and any crash go (default a temp dir, printed). The libraries are built with coverage
#   (-fsanitize=fuzzer-no-link) and ASan/UBSan, so the fuzzer sees and
#   checks the parser code itself, not just the harness.
#
# A crash leaves crash-* in FUZZ_WORK/<target>/; reproduce with
#   $FUZZ_BUILD/tests/fuzz/fuzz_<target> FILE
# and, once fixed, add the file to tests/fuzz/corpus/<target>/ so the
# unit test test_fuzz_replay replays it in every build.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(spec versions meta assets_index level objinfo pins handover)
build=${FUZZ_BUILD:-build-fuzz}
work=${FUZZ_WORK:-$(mktemp -d /tmp/assetfs-fuzz.XXXXXX)}

if [ ! -f "$build/build.ninja" ]; then
	CC=clang meson setup "$build" -Dfuzz=true \
		-Db_sanitize=address,undefined -Db_lundef=false \
		-Dc_args=-fsanitize=fuzzer-no-link >/dev/null
fi
ninja -C "$build" -j2 $(printf 'tests/fuzz/fuzz_%s ' "${targets[@]}") >/dev/null

status=0
for t in "${targets[@]}"; do
	mkdir -p "$work/$t"
	echo "== fuzz_$t for ${secs}s (corpus and artifacts in $work/$t)"
	if ! UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		"$build/tests/fuzz/fuzz_$t" -max_total_time="$secs" \
		-max_len=65536 -timeout=10 -rss_limit_mb=2048 \
		-dict=tests/fuzz/json.dict -artifact_prefix="$work/$t/" \
		-print_final_stats=1 "$work/$t" "tests/fuzz/corpus/$t" \
		2>"$work/$t/log"; then
		echo "fuzz_$t FAILED: see $work/$t/log"
		status=1
	fi
	grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' \
		"$work/$t/log" | tail -2 || true
done
exit $status

#!/usr/bin/env bash
# tests/bench/run.sh — builds the benchmarks (RelWithDebInfo, in build-bench
# unless BH_BENCH_BUILD_DIR says otherwise) and runs each; prints timings,
# asserts nothing. usage: tests/bench/run.sh [RUNS]
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${BH_BENCH_BUILD_DIR:-$src/build-bench}
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target bench_check bench_verbatim bulkhead fake-llm -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
bin=$build/bench_check  # binaries land in the build root
[ -x "$bin" ] || bin=$build/tests/bench/bench_check
"$bin" "${1:-20}"
bin=$build/bench_verbatim
[ -x "$bin" ] || bin=$build/tests/bench/bench_verbatim
"$bin" 3
"$src/tests/bench/bench_loads.sh" "$build"
"$src/tests/bench/bench_pool.sh" "$build"
"$src/tests/bench/schedule.sh" "$build"
"$src/tests/bench/bench_cache.sh" "$build" 200
"$src/tests/bench/bench_throughput.sh" "$build"
"$src/tests/bench/bench_shards.sh" "$build" 40

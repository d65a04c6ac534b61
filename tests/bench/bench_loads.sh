#!/usr/bin/env bash
# tests/bench/bench_loads.sh — what running a batch as one job buys: the
# shipped pipeline over N pull requests in one `bulkhead run`, against the
# naive order of one run per pull request (what a per-PR CI job does), both
# against a fixture Ollama that holds one model at a time and takes LOAD_MS to
# load one. Prints model loads and wall time for each and their ratios;
# asserts nothing. usage: tests/bench/bench_loads.sh BUILD_DIR [N] [LOAD_MS]
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:?usage: bench_loads.sh BUILD_DIR [N] [LOAD_MS]}" && pwd)
n=${2:-12}
load_ms=${3:-300}
source "$src/tests/bench/lib.sh"
bench_init loads

start() { bench_fake "$1" --slots 1 --load-ms "$load_ms"; } # sets URL
loads() { curl -s "$1/fake/stats" | jq '.loads'; }
now() { date +%s.%N; }

"$src/fixtures/make-repo.sh" "$work/repo" --prs "$n" >/dev/null
export OLLAMA_API_KEY=bench-dummy-key
start cloud
export BULKHEAD_CLOUD_URL="$URL"

# One job over the whole batch.
start batch
export BULKHEAD_LOCAL_URL="$URL"
t0=$(now)
"$build/bulkhead" run "$src/pipelines/code-review.json" --repo "$work/repo" \
  --state "$work/batch-state" >/dev/null 2>&1
t1=$(now)
batch_loads=$(loads "$BULKHEAD_LOCAL_URL")

# The naive order: one job per pull request.
start naive
export BULKHEAD_LOCAL_URL="$URL"
t2=$(now)
for i in $(seq 1 "$n"); do
  "$build/bulkhead" run "$src/pipelines/code-review.json" --repo "$work/repo" \
    --pulls "refs/pull/$i/head" --state "$work/naive-state-$i" >/dev/null 2>&1
done
t3=$(now)
naive_loads=$(loads "$BULKHEAD_LOCAL_URL")

awk -v n="$n" -v lm="$load_ms" -v bl="$batch_loads" -v nl="$naive_loads" \
    -v t0="$t0" -v t1="$t1" -v t2="$t2" -v t3="$t3" 'BEGIN {
  bt = t1 - t0; nt = t3 - t2
  printf "%d pull requests, 2 local models, one resident at a time, %d ms per load\n", n, lm
  printf "  one batch run:     %3d model loads, %6.2f s\n", bl, bt
  printf "  one run per PR:    %3d model loads, %6.2f s\n", nl, nt
  printf "  ratio (naive/batch): loads %.1fx, wall time %.1fx\n", nl / bl, nt / bt
}'

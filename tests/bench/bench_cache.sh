#!/usr/bin/env bash
# tests/bench/bench_cache.sh — what the response cache buys the next night:
# the shipped review pipeline over N pull requests (fixtures/make-repo.sh
# --prs N), then the same command again (the run resumes: nothing to do),
# then --fresh (a new run whose every request is answered from the cache),
# then --fresh --no-cache (every request to the fixture models again). Prints
# wall time and model requests of each; asserts nothing.
# usage: tests/bench/bench_cache.sh BUILD_DIR [N] [TOKEN_MS]
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:?usage: bench_cache.sh BUILD_DIR [N] [TOKEN_MS]}" && pwd)
n=${2:-200}
token_ms=${3:-0}
source "$src/tests/bench/lib.sh"
bench_init cache

requests() { echo $(( $(curl -s "$BULKHEAD_LOCAL_URL/fake/stats" | jq .requests) + \
                      $(curl -s "$BULKHEAD_CLOUD_URL/fake/stats" | jq .requests) )); }
now() { date +%s.%N; }

"$src/fixtures/make-repo.sh" "$work/repo" --prs "$n" >/dev/null
export OLLAMA_API_KEY=bench-dummy-key
bench_fake local --token-ms "$token_ms"
export BULKHEAD_LOCAL_URL=$URL
bench_fake cloud --token-ms "$token_ms"
export BULKHEAD_CLOUD_URL=$URL

# one LABEL [run options]: prints "LABEL seconds requests"
one() {
  local label=$1; shift
  local r0 t0 t1
  r0=$(requests)
  t0=$(now)
  "$build/bulkhead" run "$src/pipelines/code-review.json" --repo "$work/repo" \
    --state "$work/state" --quiet "$@" >/dev/null 2>&1 || true
  t1=$(now)
  echo "$label $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') $(( $(requests) - r0 ))"
}

{
  one first
  one same-again
  one fresh-cached --fresh
  one fresh-no-cache --fresh --no-cache
} >"$work/results"

awk -v n="$n" -v tm="$token_ms" 'BEGIN {
  printf "%d pull requests x 3 stages, fixture models at %d ms per token\n", n, tm
} {
  if ($1 == "first") what = "first run"
  else if ($1 == "same-again") what = "same command again (resumes)"
  else if ($1 == "fresh-cached") what = "--fresh (answered from the cache)"
  else what = "--fresh --no-cache"
  printf "  %-36s %7.2f s  %5d model requests\n", what, $2, $3
}' "$work/results"

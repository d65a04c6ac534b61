#!/usr/bin/env bash
# tests/bench/bench_throughput.sh — the runner's own speed and memory against an
# instant fixture server (issue 15): model calls per second over a folder of
# documents, with the state on disk and on tmpfs; the time from start to the
# first model request on a generated 2,000-PR repository; peak RSS for 2,000
# pull requests against 200; CPU per task at 10,000 documents against 1,000
# (the scheduler's cost per task should not grow with the batch). Prints
# figures and ratios; asserts nothing.
# usage: tests/bench/bench_throughput.sh BUILD_DIR [DOCS] [PRS]
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:?usage: bench_throughput.sh BUILD_DIR [DOCS] [PRS]}" && pwd)
docs=${2:-5000}
prs=${3:-2000}
source "$src/tests/bench/lib.sh"
bench_init tp
shm=$(mktemp -d /dev/shm/bh-bench-tp.XXXXXX 2>/dev/null || echo "")
[ -z "$shm" ] || bench_also_remove+=("$shm")

bench_fake local --slots 4
export BULKHEAD_LOCAL_URL=$URL
stats="$BULKHEAD_LOCAL_URL/fake/stats"

make_docs() { # DIR N: N small text documents
  mkdir -p "$1"
  for i in $(seq 1 "$2"); do printf 'Document %d.\nIt says something about topic %d.\n' "$i" "$((i % 97))" >"$1/d$i.txt"; done
}
# run LABEL PIPELINE STATE SOURCE-ARGS...: prints "LABEL wall=.. cpu=.. maxrss_kb=.. first_request=.."
run() {
  local label=$1 pipe=$2 state=$3
  shift 3
  echo "$label $(python3 "$src/tests/bench/measure.py" "$stats" -- "$build/bulkhead" run \
    "$src/tests/bench/pipelines/$pipe" --state "$state" --quiet "$@")"
}
field() { sed -E "s/.* $1=([^ ]+).*/\1/"; }

make_docs "$work/docs-$docs" "$docs"
make_docs "$work/docs-1000" 1000
make_docs "$work/docs-10000" 10000
python3 "$src/tests/bench/gen_repo.py" "$work/repo-$prs" "$prs" >/dev/null
python3 "$src/tests/bench/gen_repo.py" "$work/repo-200" 200 >/dev/null

{
  run disk bench-docs.json "$work/s-disk" --docs "$work/docs-$docs"
  [ -n "$shm" ] && run tmpfs bench-docs.json "$shm/s" --docs "$work/docs-$docs"
  run prs-big bench-prs.json "$work/s-prs-big" --repo "$work/repo-$prs" --base main
  run prs-200 bench-prs.json "$work/s-prs-200" --repo "$work/repo-200" --base main
  run docs-1000 bench-docs.json "$work/s-1000" --docs "$work/docs-1000"
  run docs-10000 bench-docs.json "$work/s-10000" --docs "$work/docs-10000"
} >"$work/results"

get() { grep "^$1 " "$work/results" | field "$2"; }
echo "runner throughput against an instant fixture server ($(nproc) cores)"
for where in disk tmpfs; do
  grep -q "^$where " "$work/results" || continue
  awk -v w="$(get "$where" wall)" -v n="$docs" -v where="$where" \
    'BEGIN { printf "  %-44s %8.0f calls/s (%d in %.2f s)\n", n " documents, concurrency 8, state on " where, n / w, n, w }'
done
awk -v f="$(get prs-big first_request)" -v n="$prs" \
  'BEGIN { printf "  %-44s %8.2f s\n", "first model request, " n "-PR repository", f }'
awk -v a="$(get prs-big maxrss_kb)" -v b="$(get prs-200 maxrss_kb)" -v n="$prs" \
  'BEGIN { printf "  %-44s %8.1f MB / %.1f MB = %.2fx\n", "peak RSS, " n " PRs / 200 PRs", a / 1024, b / 1024, a / b }'
awk -v a="$(get docs-10000 cpu)" -v b="$(get docs-1000 cpu)" \
  'BEGIN { printf "  %-44s %8.3f ms / %.3f ms = %.2fx\n", "CPU per task, 10,000 docs / 1,000 docs", a / 10, b, (a / 10000) / (b / 1000) }'

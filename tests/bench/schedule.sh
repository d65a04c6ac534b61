#!/usr/bin/env bash
# tests/bench/schedule.sh — the model-aware scheduler against the naive
# order, on the shipped nightly pipeline (pipelines/code-review.json):
# N pull requests (default 200) on a fixture Ollama that holds one model at a
# time and takes LOAD_MS (default 200) to load one, and a fixture cloud.
# Every 10th PR's title names a person's address (the planner is rerouted to
# plan-local) and the reviewer quotes the diff of every 6th PR (its review
# stays confidential, the summary is rerouted to summarize-local): two local
# models compete for the GPU. Prints model loads and wall time for both
# orders, the speed-up, the ratio to the lower bound (loads x load time + the
# busiest endpoint's generation time), and peak RSS for 1,000 items against
# 100. Asserts nothing.
# usage: tests/bench/schedule.sh BUILD_DIR [N] [LOAD_MS] [TOKEN_MS]
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:?usage: schedule.sh BUILD_DIR [N] [LOAD_MS] [TOKEN_MS]}" && pwd)
n=${2:-200}
load_ms=${3:-200}
token_ms=${4:-10}
source "$src/tests/bench/lib.sh"
bench_init schedule
P="$src/pipelines/code-review.json"

now() { date +%s.%N; }

# The repository: six kinds of PR, repeated; every 10th PR a change whose
# title holds an address.
repo() { # DIR COUNT
  "$src/fixtures/make-repo.sh" "$1" --prs "$2" --distinct 6 >/dev/null
  local g="git -C $1"
  $g checkout -q -b sensitive main
  echo "/* a comment */" >>"$1/src/main.c"
  $g add -A
  $g -c user.name=b -c user.email=b@bulkhead.invalid commit -q \
    -m "Fix parser crash reported by jane.roe@acme-corp.com"
  local head
  head=$($g rev-parse HEAD)
  $g checkout -q main
  for ((i = 10; i <= $2; i += 10)); do echo "update refs/pull/$i/head $head"; done |
    $g update-ref --stdin
}

# The reviewer quotes the changed line of every kind-1 PR (1, 7, 13, ...).
cat >"$work/script.json" <<'EOF'
{ "qwen2.5-coder:14b": [ { "match": "spaces after an operator were rejected", "echo": true,
                           "reply": "Findings:" } ] }
EOF

export OLLAMA_API_KEY=bench-dummy-key
fakes() {
  bench_fake cloud --token-ms "$token_ms"
  export BULKHEAD_CLOUD_URL=$URL
  bench_fake local --slots 1 --load-ms "$load_ms" --token-ms "$token_ms" --script "$work/script.json"
  export BULKHEAD_LOCAL_URL=$URL
}

# run ORDER: the whole batch in one run; wall time to $work/ORDER.s, the
# local server's loads per model to $work/ORDER.loads
run() {
  fakes
  local t0 t1
  t0=$(now)
  "$build/bulkhead" run --no-cache "$P" --repo "$work/repo" --state "$work/state-$1" --order "$1" \
    >/dev/null 2>"$work/$1.err" || { echo "bulkhead run --order $1 failed:" >&2; tail -5 "$work/$1.err" >&2; }
  t1=$(now)
  awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }' >"$work/$1.s"
  curl -s "$BULKHEAD_LOCAL_URL/fake/stats" | jq -c .loads_per_model >"$work/$1.loads"
  bench_stop_all
}

repo "$work/repo" "$n"
run model
run naive
model_s=$(cat "$work/model.s") naive_s=$(cat "$work/naive.s")
model_loads=$(cat "$work/model.loads") naive_loads=$(cat "$work/naive.loads")
"$build/bulkhead" report --state "$work/state-model" --format jsonl >"$work/model.jsonl"

# Lower bound: every load the model order made, plus the busiest endpoint's
# generation over its max_concurrency (fake-llm streams a reply of T tokens
# as T + 1 lines, TOKEN_MS apart).
gen=$(jq -s --argjson tm "$token_ms" --slurpfile p "$P" '
  [group_by(.endpoint)[] | (.[0].endpoint) as $e |
   ([.[].output_tokens + 1] | add) * $tm / ($p[0].endpoints[$e].max_concurrency // 1) / 1000]
  | max' "$work/model.jsonl")
rerouted=$(jq -s '[.[] | select(.answered_by == "qwen2.5-coder:7b")] | length' "$work/model.jsonl")
total_loads() { echo "$1" | jq 'add // 0'; }
ml=$(total_loads "$model_loads")
nl=$(total_loads "$naive_loads")

# Peak RSS: the same pipeline over 100 and 1,000 items.
rss() { # COUNT → KiB in $work/rss-COUNT.kb
  "$src/fixtures/make-repo.sh" "$work/rss-$1" --prs "$1" --distinct 6 >/dev/null
  fakes
  /usr/bin/time -f %M -o "$work/rss-$1.kb" "$build/bulkhead" run --no-cache "$P" --repo "$work/rss-$1" \
    --state "$work/rss-state-$1" >/dev/null 2>&1 || true
  bench_stop_all
}
token_ms=0
rss 100
rss 1000
rss100=$(tail -1 "$work/rss-100.kb") rss1000=$(tail -1 "$work/rss-1000.kb")

awk -v n="$n" -v lm="$load_ms" -v ms="$model_s" -v ns="$naive_s" -v ml="$ml" -v nl="$nl" \
    -v mj="$model_loads" -v nj="$naive_loads" -v gen="$gen" -v rr="$rerouted" \
    -v r1="$rss100" -v r2="$rss1000" 'BEGIN {
  lb = ml * lm / 1000 + gen
  printf "%d pull requests x pipelines/code-review.json; local: 1 model resident, %d ms per load\n", n, lm
  printf "%d tasks answered by the second local model (rerouted plans and summaries)\n\n", rr
  printf "  %-22s %8s %10s  %s\n", "order", "loads", "wall (s)", "loads per model"
  printf "  %-22s %8d %10.2f  %s\n", "bulkhead (model-aware)", ml, ms, mj
  printf "  %-22s %8d %10.2f  %s\n", "naive (PR by PR)", nl, ns, nj
  printf "\n  speed-up over naive:  %.1fx (target >= 5x)\n", ns / ms
  printf "  lower bound:          %.2f s (%d loads x %d ms + %.2f s busiest endpoint generation)\n", lb, ml, lm, gen
  printf "  wall / lower bound:   %.2f\n", ms / lb
  printf "\n  peak RSS, 100 items:   %6d KiB\n  peak RSS, 1000 items:  %6d KiB\n", r1, r2
  printf "  ratio 1000/100:        %.2f (target <= 2)\n", r2 / r1
}'

#!/usr/bin/env bash
# tests/bench/bench_shards.sh — a run split into shards and merged (README "At
# scale"): the shipped review pipeline with a batch-scope digest added, over N
# pull requests, once in one process, then as S shards run as S processes at
# once (JOB_COMPLETION_INDEX=0..S-1, BULKHEAD_SHARDS=S, --shard auto, as the
# pods of a Kubernetes Indexed Job), merged, and run again on the merged state
# (the digest only). Prints wall times, the ratio, the items per shard and
# whether the merged report lists the same tasks, states and outputs as the
# one-process run; asserts nothing. The fixture servers are shared by every
# shard here: on real hosts each shard has its own GPUs, so the ratio shown
# is what the runner itself costs, not what more GPUs buy.
# usage: tests/bench/bench_shards.sh BUILD_DIR [N] [SHARDS] [TOKEN_MS]
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:?usage: bench_shards.sh BUILD_DIR [N] [SHARDS] [TOKEN_MS]}" && pwd)
n=${2:-40}
shards=${3:-4}
token_ms=${4:-2}
source "$src/tests/bench/lib.sh"
bench_init shards

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

"$src/fixtures/make-repo.sh" "$work/repo" --prs "$n" >/dev/null
cp -r "$src/pipelines" "$work/pl"
jq '.stages.digest = {"endpoint": "gpu-box", "model": "qwen2.5-coder:7b", "scope": "batch",
    "prompt": "prompts/review-digest.md"}' "$src/pipelines/code-review.json" >"$work/pl/review.json"
printf 'Digest of the reviews:\n\n{{review.output}}\n' >"$work/pl/prompts/review-digest.md"
export OLLAMA_API_KEY=bench-dummy-key
bench_fake local --token-ms "$token_ms"
export BULKHEAD_LOCAL_URL=$URL
bench_fake cloud --token-ms "$token_ms"
export BULKHEAD_CLOUD_URL=$URL
run() { # STATE [options]
  local state=$1; shift
  "$build/bulkhead" run "$work/pl/review.json" --repo "$work/repo" --base main --quiet \
    --no-cache --state "$work/$state" "$@" >/dev/null 2>&1 || true
}
tasks() {
  "$build/bulkhead" report --state "$work/$1" --format jsonl | jq -c '{item, stage, element, state, output}' | sort
}

t0=$(now); run one; t1=$(now)
one=$(secs "$t0" "$t1")

t0=$(now)
shard_pids=()
for i in $(seq 0 $((shards - 1))); do
  JOB_COMPLETION_INDEX=$i BULKHEAD_SHARDS=$shards run "s$i" --shard auto &
  shard_pids+=($!)
done
wait "${shard_pids[@]}" # the shards only: the fixture servers are children of this shell too
t1=$(now)
"$build/bulkhead" merge --into "$work/merged" $(for i in $(seq 0 $((shards - 1))); do echo "$work/s$i"; done) \
  2>/dev/null
t2=$(now)
run merged
t3=$(now)

per=$(for i in $(seq 0 $((shards - 1))); do tasks "s$i" | jq -r .item | sort -u | wc -l; done | paste -sd/)
same=no
[ "$(tasks one)" = "$(tasks merged)" ] && same=yes
total=$(secs "$t0" "$t3")
echo "$n pull requests x 3 stages + a batch digest, fixture models at $token_ms ms per token"
printf '  %-40s %6s s\n' "one process" "$one" \
  "$shards shards at once (items per shard $per)" "$(secs "$t0" "$t1")" \
  "merge" "$(secs "$t1" "$t2")" "digest on the merged state" "$(secs "$t2" "$t3")" \
  "shards + merge + digest" "$total"
echo "  sharded / one process: $(awk -v a="$one" -v b="$total" 'BEGIN { printf "%.2f", b / a }')"
echo "  merged report = one-process report (task keys, states, outputs): $same"

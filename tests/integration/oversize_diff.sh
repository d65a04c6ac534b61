#!/usr/bin/env bash
# A pull request whose diff is over --max-diff fails only the tasks that read
# the diff, with a message naming the PR and the cap; everything else runs.
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
cd "$T"

make_repo "$T/repo" --prs 2
# --no-cloud: the local server refuses cloud models itself, so a run sends it no probe
# (README "Cloud stubs") and the requests counted here are the stages' alone.
start_fake local --no-cloud
start_fake cloud
export BULKHEAD_LOCAL_URL=$local_URL BULKHEAD_CLOUD_URL=$cloud_URL

set +e
"$BULKHEAD" run "$BH_SOURCE_DIR/pipelines/code-review.json" --repo "$T/repo" --state "$T/state" \
  --max-diff 100 >"$T/run.out" 2>"$T/run.err"
rc=$?
set -e
expect_eq "run exits 4" 4 "$rc"
"$BULKHEAD" report --state "$T/state" --format jsonl >"$T/report.jsonl"
expect_eq "the planner (no diff) ran for both PRs" "done" \
  "$(jq -r 'select(.stage == "plan") | .state' "$T/report.jsonl" | sort -u)"
expect_eq "the reviewer (reads the diff) failed for both" "failed" \
  "$(jq -r 'select(.stage == "review") | .state' "$T/report.jsonl" | sort -u)"
expect_contains "the message names the PR and the cap" "$T/report.jsonl" \
  "pull request 'refs/pull/1/head': the diff is larger than the cap of 100 bytes"
expect_contains "and the template line that reads it" "$T/report.jsonl" "review.md:11:1: no value for {{pr.diff}}"
expect_eq "no model request reached the local server" 0 \
  "$(jq -s '[.[] | select(.method == "POST")] | length' "$T/local.log")"

# A prompt that cannot fit the context the stage asks for fails before it is
# sent: a model must never silently drop the start of a prompt.
mkdir -p "$T/p"
cp -r "$BH_SOURCE_DIR/pipelines/prompts" "$T/p/"
jq '.stages.review.options.num_ctx = 64' "$BH_SOURCE_DIR/pipelines/code-review.json" >"$T/p/small.json"
: >"$T/local.log"
set +e
"$BULKHEAD" run "$T/p/small.json" --repo "$T/repo" --state "$T/state-ctx" >"$T/ctx.out" 2>"$T/ctx.err"
rc=$?
set -e
expect_eq "a prompt over num_ctx: exit 4" 4 "$rc"
"$BULKHEAD" report --state "$T/state-ctx" --format jsonl >"$T/ctx.jsonl"
expect_eq "the reviews failed" "failed" "$(jq -r 'select(.stage == "review") | .state' "$T/ctx.jsonl" | sort -u)"
expect_contains "saying the prompt does not fit" "$T/ctx.jsonl" \
  "more than the stage's options.num_ctx 64 of model 'qwen2.5-coder:14b'"
expect_eq "no review request was sent" 0 \
  "$(jq -r 'select(.method == "POST") | .body' "$T/local.log" | grep -c '"qwen2.5-coder:14b"' || true)"

set +e
"$BULKHEAD" run "$BH_SOURCE_DIR/pipelines/code-review.json" --repo "$T/repo" --state "$T/state2" \
  --max-diff 12Q >/dev/null 2>"$T/bad.err"
rc=$?
set -e
expect_eq "a malformed size is a usage error" 2 "$rc"
expect_contains "naming the option" "$T/bad.err" "--max-diff takes a size"

set +e
"$BULKHEAD" run "$BH_SOURCE_DIR/pipelines/code-review.json" --repo "$T/repo" --state "$T/state3" \
  --pulls 'refs/nothing/*' >/dev/null 2>"$T/none.err"
rc=$?
set -e
expect_eq "no matching ref: exit 0" 0 "$rc"
expect_contains "with a warning naming the glob" "$T/none.err" "no ref of '$T/repo' matches 'refs/nothing/*'"
finish

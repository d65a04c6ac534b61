#!/usr/bin/env bash
# The static proof: pipelines that would send confidential data to the cloud
# are refused by `check` (exit 3) and by `run` before anything is sent; a
# cloud model on a loopback Ollama counts as cloud.
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
cd "$T"
P="$BH_SOURCE_DIR/fixtures/pipelines/policy"

start_fake local
start_fake cloud
export BULKHEAD_LOCAL_URL=$local_URL BULKHEAD_CLOUD_URL=$cloud_URL

check() { bh_run check check "$1"; } # pipeline → sets rc, writes $T/check.out and $T/check.err

check "$BH_SOURCE_DIR/pipelines/code-review.json"
expect_eq "the shipped pipeline passes check" 0 "$rc"
expect_contains "check shows the reviewer local" "$T/check.out" "review       local"
expect_contains "check shows the planner cloud" "$T/check.out" "plan         cloud"
expect_contains "check shows what the reviewer reads, raised by the path rules" "$T/check.out" "reads pr.diff: restricted (the field's label joined with every path rule)"

check "$P/diff-to-cloud.json"
expect_eq "pr.diff to a cloud stage: check exits 3" 3 "$rc"
expect_contains "the refusal names the stage and the field" "$T/check.err" "stages.review: refused: cloud stage reads pr.diff (confidential)"
expect_contains "the refusal names the pipeline file and line" "$T/check.err" "diff-to-cloud.json:11:"

check "$P/summary-to-cloud.json"
expect_eq "a cloud summarizer of a confidential review: check exits 3" 3 "$rc"
expect_contains "the refusal names the upstream output" "$T/check.err" "reads review.output (confidential)"

check "$P/cloud-model-on-local.json"
expect_eq "gpt-oss:20b-cloud on a loopback endpoint: check exits 3" 3 "$rc"
expect_contains "the stage is shown as cloud" "$T/check.out" "review       cloud"

# run refuses before any byte is sent.
make_repo "$T/repo" --prs 2
set +e
"$BULKHEAD" run "$P/diff-to-cloud.json" --repo "$T/repo" --state "$T/state" >"$T/run.out" 2>"$T/run.err"
rc=$?
set -e
expect_eq "run of a refused pipeline exits 3" 3 "$rc"
expect_contains "run says why" "$T/run.err" "refused to run: cloud stage reads pr.diff"
expect_eq "nothing reached the cloud server" 0 "$(wc -l <"$T/cloud.log")"
expect_eq "nothing reached the local server" 0 "$(wc -l <"$T/local.log")"
"$BULKHEAD" audit show --state "$T/state" >"$T/audit.jsonl"
expect_eq "the refusal is audited" "refuse review confidential internal" \
  "$(jq -r '"\(.decision) \(.stage) \(.label) \(.clearance)"' "$T/audit.jsonl")"
expect_contains "with the static check's reason" "$T/audit.jsonl" "static check: reads pr.diff"

# A stage that declares more clearance than its endpoint: run refuses it as check does.
set +e
"$BULKHEAD" run "$BH_SOURCE_DIR/fixtures/check/pipelines/stage-above-endpoint.json" --repo "$T/repo" \
  --state "$T/state-over" >/dev/null 2>"$T/over.err"
rc=$?
set -e
expect_eq "run of a stage above its endpoint exits 3" 3 "$rc"
expect_contains "and says why" "$T/over.err" "declares a clearance above its endpoint's"

# Locality is verified, not believed: a "local" endpoint on a public address is cloud.
check_env() { BULKHEAD_LOCAL_URL=$1 check "$BH_SOURCE_DIR/pipelines/code-review.json"; }
check_env "http://192.0.2.1:11434"
expect_eq "a local endpoint on a public address fails check" 3 "$rc"
expect_contains "and is shown as cloud" "$T/check.out" "gpu-box      cloud"
finish

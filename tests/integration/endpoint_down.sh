#!/usr/bin/env bash
# A local endpoint that is down: its stages fail with a message naming the
# endpoint and URL (exit 4), their dependants are not run, and nothing is
# sent anywhere else — no fallback to the cloud.
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
cd "$T"

make_repo "$T/repo" --prs 3
port=$(closed_port)
start_fake cloud
export BULKHEAD_LOCAL_URL="http://127.0.0.1:$port" BULKHEAD_CLOUD_URL=$cloud_URL

set +e
"$BULKHEAD" run "$BH_SOURCE_DIR/pipelines/code-review.json" --repo "$T/repo" --state "$T/state" \
  >"$T/run.out" 2>"$T/run.err"
rc=$?
set -e
expect_eq "run exits 4" 4 "$rc"
expect_contains "the error names the endpoint and its URL" "$T/run.err" \
  "endpoint 'gpu-box' (http://127.0.0.1:$port)"
expect_contains "the error says there is no fallback" "$T/run.err" "never falls back"

"$BULKHEAD" report --state "$T/state" --format jsonl >"$T/report.jsonl"
expect_eq "every review failed" "failed" "$(jq -r 'select(.stage == "review") | .state' "$T/report.jsonl" | sort -u)"
expect_eq "every summary was not run" "failed" "$(jq -r 'select(.stage == "summarize") | .state' "$T/report.jsonl" | sort -u)"
expect_contains "a summary says why" "$T/report.jsonl" "not run: stage 'review' failed for this item"
expect_contains "a review was tried three times on the same endpoint" "$T/report.jsonl" "after 3 attempts: endpoint 'gpu-box'"
"$BULKHEAD" audit show --state "$T/state" >"$T/audit.jsonl"
expect_eq "every attempt is audited: 3 plans + 3 reviews x 3 attempts" 12 \
  "$(jq -s '[.[] | select(.stage != "")] | length' "$T/audit.jsonl")"
expect_eq "every plan (cloud) done" "done" "$(jq -r 'select(.stage == "plan") | .state' "$T/report.jsonl" | sort -u)"
expect_eq "the cloud server saw only the 3 plan requests" 3 "$(wc -l <"$T/cloud.log")"
expect_eq "and only the planner's model" '"gpt-oss:120b"' \
  "$(jq -r .body "$T/cloud.log" | jq -c .model | sort -u)"
expect_eq "no canary reached the cloud" 0 "$(grep -c -F -f "$T/repo.canaries" "$T/cloud.log" || true)"

"$BULKHEAD" report --state "$T/state" >"$T/report.md"
expect_contains "the report says it is incomplete" "$T/report.md" "This report is incomplete"
finish

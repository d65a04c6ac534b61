#!/usr/bin/env bash
# The shipped code-review.json over a repository with what real forges have
# (make-repo.sh --real-world): PRs 1-6 as usual, 7 with history unrelated to
# main, 8 with a Latin-1 file name and content, 9 already merged (empty diff).
# One bad pull request never stops the batch: 7 fails with its reason (exit 4),
# 8 is reviewed with a note (U+FFFD for the Latin-1 bytes), 9 is skipped with
# a note; SARIF and jsonl carry every task of the state, the SARIF validates
# and says the run was not successful. --pulls twice and --exclude pick refs.
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
cd "$T"
PY=/usr/bin/python3
P="$BH_SOURCE_DIR/pipelines/code-review.json"

make_repo "$T/repo" --prs 6 --real-world
start_fake local
start_fake cloud
export BULKHEAD_LOCAL_URL=$local_URL BULKHEAD_CLOUD_URL=$cloud_URL

set +e
"$BULKHEAD" plan "$P" --repo "$T/repo" >"$T/plan.out" 2>"$T/plan.err"
rc_plan=$?
"$BULKHEAD" run "$P" --repo "$T/repo" --state "$T/state" >"$T/run.out" 2>"$T/run.err"
rc=$?
set -e
expect_eq "plan lists the unreadable pull request instead of stopping (exit 0)" 0 "$rc_plan"
[ "$rc_plan" -eq 0 ] || cat "$T/plan.err"
expect_contains "plan: the unrelated PR's diff is unscanned, with the reason" "$T/plan.out" \
  "shares no history with base 'main'"
expect_contains "plan: the merged PR is skipped with a note" "$T/plan.err" \
  "bulkhead: note: 1 pull request with an empty diff against 'main' skipped (already merged?): refs/pull/9/head — --keep-empty to review them"
expect_eq "plan: 8 items (9 skipped)" "plan for nightly-code-review: 8 items (no model is called)" \
  "$(head -1 "$T/plan.out")"

expect_eq "run: one failed pull request exits 4" 4 "$rc"
[ "$rc" -eq 4 ] || cat "$T/run.err"
expect_contains "run: the Latin-1 PR is noted" "$T/run.err" \
  "bulkhead: note: pull request 'refs/pull/8/head': bytes that are not UTF-8 shown as U+FFFD in 'docs/caf"$'\xef\xbf\xbd'".txt'"
expect_contains "run: the unrelated PR is noted with its reason" "$T/run.err" \
  "repository '$T/repo': ref 'refs/pull/7/head' shares no history with base 'main' — pass --base REF"
expect_contains "run: the merged PR is skipped with a note" "$T/run.err" \
  "1 pull request with an empty diff against 'main' skipped (already merged?): refs/pull/9/head"

"$BULKHEAD" report --state "$T/state" --format jsonl >"$T/report.jsonl"
expect_eq "jsonl: 24 tasks (8 PRs x 3 stages), one line each" 24 "$(jq -s length "$T/report.jsonl")"
expect_eq "jsonl: every line is JSON (none blank)" 0 "$(grep -c '^$' "$T/report.jsonl" || true)"
for n in 1 2 3 4 5 6 8; do
  expect_eq "PR $n: every stage done" "done done done" \
    "$(jq -r --arg k "refs/pull/$n/head" 'select(.item == $k) | .state' "$T/report.jsonl" | tr '\n' ' ' | sed 's/ $//')"
done
expect_eq "PR 7: every task failed" "failed failed failed" \
  "$(jq -r 'select(.item == "refs/pull/7/head") | .state' "$T/report.jsonl" | tr '\n' ' ' | sed 's/ $//')"
expect_contains "PR 7: its first stage with the reason" "$T/report.jsonl" \
  "no value for {{pr.files}}: repository '$T/repo': ref 'refs/pull/7/head' shares no history with base 'main'"
expect_eq "PR 9 has no task" 0 "$(jq -s '[.[] | select(.item == "refs/pull/9/head")] | length' "$T/report.jsonl")"
expect_eq "the Latin-1 content reached the local review as text, U+FFFD for each 0xE9" 1 \
  "$(jq -r 'select(.method == "POST") | .body' "$T/local.log" | grep -c $'Caf\xef\xbf\xbd cr\xef\xbf\xbdme' | awk '{print ($1 > 0)}')"

"$BULKHEAD" report --state "$T/state" --format sarif >"$T/report.sarif"
expect "the SARIF validates against the SARIF 2.1.0 schema" "$PY" -c '
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.validators.validator_for(schema)(schema, format_checker=jsonschema.FormatChecker()).validate(json.load(open(sys.argv[2])))
' "$BH_SOURCE_DIR/fixtures/sarif/sarif-schema-2.1.0.json" "$T/report.sarif"
expect_eq "SARIF: a task failed, so the run was not successful" false \
  "$(jq '.runs[0].invocations[0].executionSuccessful' "$T/report.sarif")"
expect_eq "SARIF: a notification per failed task" \
  "$(jq -s '[.[] | select(.state != "done" and .state != "skipped")] | length' "$T/report.jsonl")" \
  "$(jq '[.runs[0].invocations[0].toolExecutionNotifications // [] | .[]] | length' "$T/report.sarif")"

# A state whose strings are not UTF-8 (written before sources decoded their
# text): the reports still carry every task, the bytes as U+FFFD, never a
# task dropped (jansson refuses such strings) nor a blank jsonl line.
cp -r "$T/state" "$T/state-latin1"
sqlite3 "$T/state-latin1/state.db" \
  "UPDATE items SET key = CAST(X'726566732F63616FE9' AS TEXT) WHERE key = 'refs/pull/7/head'"
"$BULKHEAD" report --state "$T/state-latin1" --format jsonl >"$T/latin1.jsonl"
"$BULKHEAD" report --state "$T/state-latin1" --format sarif >"$T/latin1.sarif"
expect_eq "jsonl from a non-UTF-8 state: 24 lines, 3 with the key decoded" "24 3" \
  "$(jq -s length "$T/latin1.jsonl") $(jq -s '[.[] | select(.item == "refs/cao\ufffd")] | length' "$T/latin1.jsonl")"
expect_eq "SARIF from a non-UTF-8 state: every failed task is a notification" \
  "$(jq '[.runs[0].invocations[0].toolExecutionNotifications[]] | length' "$T/report.sarif")" \
  "$(jq '[.runs[0].invocations[0].toolExecutionNotifications[]] | length' "$T/latin1.sarif")"
sqlite3 "$T/state-latin1/state.db" "UPDATE audit SET item = CAST(X'726566732F63616FE9' AS TEXT)"
"$BULKHEAD" audit show --state "$T/state" >"$T/audit.jsonl"
set +e
"$BULKHEAD" audit show --state "$T/state-latin1" >"$T/audit-latin1.jsonl"
rc=$?
set -e
expect_eq "audit show of a non-UTF-8 record: every record, the item decoded" \
  "0 $(jq -s length "$T/audit.jsonl") $(jq -s length "$T/audit.jsonl")" \
  "$rc $(jq -s length "$T/audit-latin1.jsonl") $(jq -s '[.[] | select(.item == "refs/cao\ufffd")] | length' "$T/audit-latin1.jsonl")"

# --pulls twice and --exclude: 1, 2, 3 from the globs, 2 left out.
set +e
"$BULKHEAD" plan "$P" --repo "$T/repo" --pulls 'refs/pull/1/*' --pulls 'refs/pull/[23]/head' \
  --pulls 'refs/pull/1/head' --exclude '*/2/*' --format json >"$T/sel.json" 2>"$T/sel.err"
rc=$?
"$BULKHEAD" plan "$P" --repo "$T/repo" --pulls 'refs/pull/9/head' --keep-empty >"$T/keep.out" 2>"$T/keep.err"
rc_keep=$?
set -e
expect_eq "plan with --pulls twice and --exclude exits 0" 0 "$rc"
[ "$rc" -eq 0 ] || cat "$T/sel.err"
expect_eq "the refs of every --pulls, once each, minus --exclude" "refs/pull/1/head refs/pull/3/head" \
  "$(jq -r '[.items[].key] | join(" ")' "$T/sel.json")"
expect_eq "--keep-empty keeps the merged PR" "0 plan for nightly-code-review: 1 items (no model is called)" \
  "$rc_keep $(head -1 "$T/keep.out")"
"$BULKHEAD" run --help >"$T/help.out"
"$BULKHEAD" plan --help >>"$T/help.out"
for opt in --exclude --keep-empty; do
  expect_eq "run and plan --help list $opt" 2 "$(grep -c -- "$opt" "$T/help.out" | awk '{print ($1 >= 2 ? 2 : $1)}')"
done

# No canary of the repository reached the cloud (PR 7's content was never read).
while read -r c; do
  expect_eq "canary ${c:0:24}... not in the cloud's log" 0 "$(grep -c -- "$c" "$T/cloud.log" || true)"
done <"$T/repo.canaries"
finish

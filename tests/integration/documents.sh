#!/usr/bin/env bash
# pipelines/documents.json over the sample documents, as its nightly job runs
# it: the cloud tagger takes only public documents, and every other document's
# tag is skipped because the pipeline says so (on_sensitive: "skip"). A skip
# the pipeline declares is its intent, not a refusal: the run exits 0, and the
# summary, `status` and every report list the skipped tasks with their reason.
# A refusal the pipeline did not declare still exits 3 (the control at the end).
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
cd "$T"

"$BH_SOURCE_DIR/fixtures/make-docs.sh" "$T/docs" >/dev/null
start_fake local
start_fake cloud
export BULKHEAD_LOCAL_URL=$local_URL BULKHEAD_CLOUD_URL=$cloud_URL

set +e
"$BULKHEAD" run "$BH_SOURCE_DIR/pipelines/documents.json" --docs "$T/docs" --state "$T/state" \
  --quiet >"$T/run.out" 2>"$T/run.err"
rc=$?
set -e
expect_eq "the nightly run exits 0 with its declared skips" 0 "$rc"
[ "$rc" -eq 0 ] || sed 's/^/#   /' "$T/run.err" | tail -5
"$BULKHEAD" report --state "$T/state" --format jsonl >"$T/report.jsonl"
skipped=$(jq -s '[.[] | select(.state == "skipped")] | length' "$T/report.jsonl")
expect "some tags were skipped ($skipped)" [ "$skipped" -gt 0 ]
expect_eq "every skipped task is a tag of a document that is not public" "tag" \
  "$(jq -r 'select(.state == "skipped") | .stage' "$T/report.jsonl" | sort -u)"
expect_eq "nothing was withheld by a refusal, nothing failed" 0 \
  "$(jq -s '[.[] | select(.state == "withheld" or .state == "failed")] | length' "$T/report.jsonl")"
expect_contains "the summary line counts the skips" "$T/run.err" "$skipped skipped as the pipeline declares"
expect_contains "each skip gives its reason" "$T/report.jsonl" "skipped as the pipeline declares (on_sensitive: skip)"
"$BULKHEAD" status --state "$T/state" >"$T/status.out"
expect_contains "status lists them" "$T/status.out" "$skipped skipped as the pipeline declares"
"$BULKHEAD" report --state "$T/state" --format md >"$T/report.md"
expect_contains "the Markdown report counts them" "$T/report.md" "$skipped skipped as the pipeline declares"
expect_contains "and says the rest ran" "$T/report.md" "withholds by design"
"$BULKHEAD" report --state "$T/state" --format junit >"$T/report.xml"
expect_contains "JUnit marks them skipped" "$T/report.xml" "skipped message=\"skipped as the pipeline declares"
"$BULKHEAD" report --state "$T/state" --format sarif >"$T/report.sarif"
expect_eq "SARIF: the run counts as successful, each skip a note" "true note" \
  "$(jq -r '.runs[0].invocations[0] | "\(.executionSuccessful) \([.toolExecutionNotifications[].level] | unique | join(","))"' "$T/report.sarif")"
expect "audit verifies (the skips are audited as refusals of the tag stage)" \
  "$BULKHEAD" audit verify --state "$T/state"
expect_eq "the audit records one refusal per skip" "$skipped" \
  "$("$BULKHEAD" audit show --state "$T/state" | jq -s '[.[] | select(.decision == "refuse" and (.reason | test("on_sensitive skip")))] | length')"

# The control: the same pipeline with on_sensitive "fail" refuses, and exits 3.
mkdir -p "$T/p"
cp -r "$BH_SOURCE_DIR/pipelines/prompts" "$T/p/"
jq '.stages.tag.on_sensitive = "fail"' "$BH_SOURCE_DIR/pipelines/documents.json" >"$T/p/fail.json"
set +e
"$BULKHEAD" run "$T/p/fail.json" --docs "$T/docs" --state "$T/state-fail" --quiet \
  >"$T/fail.out" 2>"$T/fail.err"
rc=$?
set -e
expect_eq "an undeclared refusal still exits 3" 3 "$rc"
finish

#!/usr/bin/env bash
# Structured findings end to end, with the shipped pr-check.json in CI mode:
# the review stage answers findings (scripted per PR), --fail-on high exits 1
# on the PR with a high finding and 0 on the one without; under
# GITHUB_ACTIONS the findings are annotations, escaped; the SARIF validates
# against the SARIF 2.1.0 schema (fixtures/sarif/); the JUnit parses with the
# expected counts (failures, errors, skipped); the Markdown comment and the
# GitHub review body hold the findings, escaped. A reply that is not valid
# findings is asked again once with the error, then the task fails saying so.
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
cd "$T"
PY=/usr/bin/python3
make_repo "$T/repo" --prs 2
git clone -q "$T/repo" "$T/ci"
git -C "$T/ci" fetch -q origin refs/pull/1/head:pr-1 refs/pull/2/head:pr-2
P="$BH_SOURCE_DIR/pipelines/pr-check.json"
HIGH='[{"path":"src/parser.c","line":12,"end_line":14,"severity":"high","rule":"bounds, check: 1","message":"100% out of bounds | here\nsee <b>end</b>","suggestion":"check `end`"},{"path":"docs/my file.md","line":3,"severity":"low","message":"typo"}]'
LOW='[{"path":"docs/usage.md","line":5,"severity":"low","rule":"wording","message":"unclear"}]'
jq -n --arg high "$HIGH" --arg low "$LOW" '{"qwen2.5-coder:14b": [
  {"match": "Pull request #1:", "reply": $high},
  {"match": "Pull request #2:", "reply": $low}]}' >"$T/script.json"
# --no-cloud: the local server refuses cloud models itself, so a run sends it no probe
# (README "Cloud stubs") and the requests counted here are the stages' alone.
start_fake local --no-cloud --script "$T/script.json"
start_fake cloud
export BULKHEAD_LOCAL_URL=$local_URL BULKHEAD_CLOUD_URL=$cloud_URL

# run PR N [options]: in the CI checkout of PR N, as a GitHub job would.
run_pr() {
  local n=$1; shift
  git -C "$T/ci" checkout -q "pr-$n"
  (cd "$T/ci" && GITHUB_ACTIONS=true GITHUB_REF="refs/pull/$n/merge" \
    "$BULKHEAD" run "$P" --range origin/main..HEAD --state "$T/state$n" "$@" \
    >"$T/run$n.out" 2>"$T/run$n.err")
}

set +e
run_pr 1 --fail-on high
rc=$?
set -e
expect_eq "--fail-on high: a high finding exits 1" 1 "$rc"
[ "$rc" -eq 1 ] || cat "$T/run1.err"
expect_contains "and says why" "$T/run1.err" \
  "bulkhead: 2 findings (1 high, 1 low), 1 at or above --fail-on high"
expect_contains "the summary lists where the stages ran" "$T/run1.err" "  review       local  gpu-box"
expect_eq "annotations on stdout, escaped as GitHub's toolkit does" \
  '::error file=src/parser.c,line=12,endLine=14,title=bounds%2C check%3A 1::high: 100%25 out of bounds | here%0Asee <b>end</b>%0ASuggestion: check `end`
::notice file=docs/my file.md,line=3,endLine=3,title=review::low: typo' "$(cat "$T/run1.out")"

cd "$T/ci"
expect "every output of pr-check.json was written" test -s pr-check.md -a -s pr-check.jsonl \
  -a -s pr-check.sarif -a -s pr-check.junit.xml -a -s pr-check.review.json
expect "the SARIF validates against the SARIF 2.1.0 schema" "$PY" -c '
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.validators.validator_for(schema)(schema, format_checker=jsonschema.FormatChecker()).validate(json.load(open(sys.argv[2])))
' "$BH_SOURCE_DIR/fixtures/sarif/sarif-schema-2.1.0.json" pr-check.sarif
expect_eq "SARIF results: rule, level, location, region" \
  'bounds, check: 1 error src/parser.c 12 14|review note docs/my%20file.md 3 3' \
  "$(jq -r '[.runs[0].results[] | "\(.ruleId) \(.level) \(.locations[0].physicalLocation.artifactLocation.uri) \(.locations[0].physicalLocation.region.startLine) \(.locations[0].physicalLocation.region.endLine)"] | join("|")' pr-check.sarif)"
expect_eq "SARIF: the driver's rules and a fingerprint per result" 'bulkhead 2 2' \
  "$(jq -r '.runs[0].tool.driver | "\(.name) \(.rules | length)"' pr-check.sarif) $(jq '[.runs[0].results[].partialFingerprints["bulkheadFinding/v1"] | select(length == 64)] | length' pr-check.sarif)"
expect_eq "SARIF: the run was complete" true "$(jq '.runs[0].invocations[0].executionSuccessful' pr-check.sarif)"
expect_eq "JUnit parses: 2 tests, 1 failure (the high finding), no error" '2 1 0 0' \
  "$("$PY" -c '
import sys, xml.etree.ElementTree as E
r = E.parse(sys.argv[1]).getroot()
print(r.get("tests"), r.get("failures"), r.get("errors"), r.get("skipped"))' pr-check.junit.xml)"
expect_contains "the failure names the finding" pr-check.junit.xml \
  'message="1 finding at or above high">high src/parser.c:12-14 [bounds, check: 1] 100% out of bounds | here'
expect_contains "Markdown: the findings table, escaped" pr-check.md \
  '| high | src/parser.c:12–14 | bounds, check: 1 | 100% out of bounds \| here<br>see &lt;b&gt;end&lt;/b&gt;<br>**Suggestion:** check \`end\` | review |'
expect_contains "Markdown: the count against --fail-on" pr-check.md \
  "2 findings: 1 high, 1 low — 1 at or above high (--fail-on)"
expect_contains "Markdown: where each stage ran" pr-check.md "| review | local | gpu-box | qwen2.5-coder:14b | 1 |"
expect_eq "github-review: a comment per finding on the new side, a range as start_line" \
  'src/parser.c 12 14 RIGHT|docs/my file.md null 3 RIGHT' \
  "$(jq -r '[.comments[] | "\(.path) \(.start_line) \(.line) \(.side)"] | join("|")' pr-check.review.json)"
expect_eq "github-review: a COMMENT with the summary as body" 'COMMENT true' \
  "$(jq -r '"\(.event) \(.body | startswith("# bulkhead report"))"' pr-check.review.json)"
expect_eq "jsonl: the findings as JSON" 'high low' \
  "$(jq -r 'select(.stage == "review") | [.findings[].severity] | join(" ")' pr-check.jsonl)"
cd "$T"

set +e
run_pr 2 --fail-on high
rc=$?
set -e
expect_eq "--fail-on high: only a low finding exits 0" 0 "$rc"
[ "$rc" -eq 0 ] || cat "$T/run2.err"
expect_contains "and counts it" "$T/run2.err" "bulkhead: 1 finding (1 low), 0 at or above --fail-on high"
set +e
"$BULKHEAD" report --state "$T/state2" --format junit --fail-on low >"$T/low.xml"
rc_low=$?
"$BULKHEAD" report --state "$T/state2" --format sarif --fail-on high >/dev/null 2>&1
rc_high=$?
"$BULKHEAD" report --state "$T/state2" --fail-on severe >/dev/null 2>"$T/severe.err"
rc_bad=$?
set -e
expect_eq "report --fail-on low on the same run exits 1, --fail-on high 0" "1 0" "$rc_low $rc_high"
expect_eq "and its JUnit then has the failure" 1 \
  "$("$PY" -c 'import sys, xml.etree.ElementTree as E; print(E.parse(sys.argv[1]).getroot().get("failures"))' "$T/low.xml")"
expect_eq "an unknown severity is a usage error" 2 "$rc_bad"
expect_contains "naming the valid ones" "$T/severe.err" \
  "--fail-on takes a severity, got 'severe' (valid: info, low, medium, high, critical)"

# A reply that is not valid findings is sent back once with the error.
BAD='[{"path":"src/parser.c","line":3,"severity":"severe","message":"m"}]'
jq -n --arg bad "$BAD" --arg low "$LOW" '{"qwen2.5-coder:14b": [
  {"match": "JSON array of findings", "times": 1, "reply": $bad},
  {"match": "Your reply is not valid findings", "reply": ("```json\n" + $low + "\n```")}]}' \
  >"$T/retry.json"
start_fake retry --no-cloud --script "$T/retry.json"
set +e
BULKHEAD_LOCAL_URL=$retry_URL run_pr 1 --fail-on high
rc=$?
set -e
expect_eq "a bad reply asked again, then good: exit 0" 0 "$rc"
[ "$rc" -eq 0 ] || cat "$T/run1.err"
jq -c 'select(.method == "POST") | .body | fromjson | select(.model == "qwen2.5-coder:14b")' \
  "$T/retry.log" >"$T/retry.posts"
expect_eq "two review requests" 2 "$(wc -l <"$T/retry.posts")"
expect_eq "the second carries the bad reply and the error" \
  "assistant|user|Your reply is not valid findings: \$[0].severity: expected one of info, low, medium, high, critical. Answer again with only the JSON asked for above, and no other text." \
  "$(sed -n 2p "$T/retry.posts" | jq -r '[.messages[1].role, .messages[2].role, .messages[2].content] | join("|")')"
expect_eq "both ask for the findings schema (Ollama's format)" '"array" "array"' \
  "$(jq -c '.format.type' "$T/retry.posts" | tr '\n' ' ' | sed 's/ $//')"
expect_eq "the stored output is the checked findings, fence removed" \
  '[{"path":"docs/usage.md","line":5,"severity":"low","rule":"wording","message":"unclear"}]' \
  "$("$BULKHEAD" report --state "$T/state1" --format jsonl | jq -r 'select(.stage == "review") | .output')"
stop_fake retry

jq -n --arg bad "$BAD" '{"qwen2.5-coder:14b": [{"match": ".", "reply": $bad}]}' >"$T/bad.json"
start_fake bad --no-cloud --script "$T/bad.json"
set +e
BULKHEAD_LOCAL_URL=$bad_URL run_pr 1 --fail-on high
rc=$?
set -e
expect_eq "bad twice: the task fails, exit 4" 4 "$rc"
expect_eq "saying what was wrong and that it asked again" \
  "endpoint 'gpu-box' ($bad_URL), model 'qwen2.5-coder:14b': reply is not valid findings: \$[0].severity: expected one of info, low, medium, high, critical; asked again once" \
  "$("$BULKHEAD" report --state "$T/state1" --format jsonl | jq -r 'select(.stage == "review") | .error')"
expect_eq "the failed run's SARIF says it is incomplete" false \
  "$(jq '.runs[0].invocations[0].executionSuccessful' "$T/ci/pr-check.sarif")"
expect_eq "its JUnit has the error" '0 1' \
  "$("$PY" -c 'import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); print(r.get("failures"), r.get("errors"))' "$T/ci/pr-check.junit.xml")"
stop_fake bad
finish

#!/usr/bin/env bash
# Outputs are egress too. A report that CI posts as a comment or uploads
# leaves the machine: `report --clearance internal` must not quote a task
# whose output is labelled above internal, in any format, findings included
# (a finding's message is the model's text). The shipped pr-check.json's
# review reads the diff (confidential); its scripted reply holds a canary in
# a finding's message and suggestion. Each format rendered at internal holds
# no canary and names the review withheld with its label; the same reports
# without --clearance (local use) hold the canary: the control. A clearance
# that is not a label of the run is a usage error, never "everything".
source "$BH_SOURCE_DIR/tests/adversarial/lib.sh"
cd "$T"
make_repo "$T/repo" --prs 2
canary="RC-CANARY-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
echo "$canary" >"$T/canaries"
# PR 1 changes code (its review is confidential); PR 2 only docs (internal).
jq -n --arg c "$canary" '{"qwen2.5-coder:14b": [{"match": "Pull request #1:",
  "reply": ([{"path": "src/parser.c", "line": 12, "severity": "high", "rule": "bounds",
  "message": ("off by one near " + $c), "suggestion": ("use " + $c)}] | tojson)},
  {"reply": "[{\"path\": \"docs/a.md\", \"line\": 1, \"severity\": \"low\", \"rule\": \"typo\", \"message\": \"a typo\"}]"}]}' >"$T/script.json"
start_fake local --script "$T/script.json"
start_fake cloud
export BULKHEAD_LOCAL_URL=$local_URL BULKHEAD_CLOUD_URL=$cloud_URL
bh_run run run "$BH_SOURCE_DIR/pipelines/pr-check.json" --repo "$T/repo" --pulls 'refs/pull/*/head' \
  --base main --state "$T/s"
expect_rc "the run finishes" 0
no_canary_at "$T/cloud.log" "$T/canaries" "the run"
audit_says "the run" "$T/s" 0

for f in md sarif jsonl junit github-review; do
  bh_run "$f-all" report --state "$T/s" --format "$f"
  expect_eq "$f without --clearance (the control): the canary is there" 1 \
    "$(grep -q -F "$canary" "$T/$f-all.out" && echo 1 || echo 0)"
  bh_run "$f" report --state "$T/s" --format "$f" --clearance internal
  expect_rc "$f --clearance internal" 0
  no_canary_at "$T/$f.out" "$T/canaries" "$f --clearance internal"
  expect_contains "$f names the review withheld with its label" "$T/$f.out" \
    "withheld from this report: the output is labelled confidential, above the report"
done
states() { jq -r '"\(.item | sub("refs/pull/"; "") | sub("/head"; "")) \(.stage) \(.state) \(.label)"' "$1" | tr '\n' ',' | sed 's/,$//'; }
expect_eq "jsonl: PR 1's tasks (confidential) withheld, PR 2's (internal) kept" \
  "1 triage withheld confidential,1 review withheld confidential,2 triage done internal,2 review done internal" \
  "$(states "$T/jsonl.out")"
expect_eq "sarif: only PR 2's finding at internal" "docs/a.md" \
  "$(jq -r '[.runs[0].results[].locations[0].physicalLocation.artifactLocation.uri] | join(",")' "$T/sarif.out")"
expect_eq "github-review: only PR 2's line comment at internal" "docs/a.md" \
  "$(jq -r '[.comments[].path] | join(",")' "$T/github-review.out")"

bh_run restricted report --state "$T/s" --format md --clearance restricted
expect_eq "at the top label everything is there" 1 \
  "$(grep -q -F "$canary" "$T/restricted.out" && echo 1 || echo 0)"
bh_run bad report --state "$T/s" --format md --clearance secret
expect_rc "an unknown clearance is a usage error" 2
expect_contains "naming the run's labels" "$T/bad.err" \
  "'secret' is not a label of run 1 (its labels: public, internal, confidential, restricted)"
no_canary_at "$T/bad.out" "$T/canaries" "an unknown clearance"
finish

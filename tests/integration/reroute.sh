#!/usr/bin/env bash
# on_sensitive at run time, with the shipped nightly pipeline: a PR whose title
# holds an e-mail address (the email detector raises it to confidential, above
# the cloud planner's internal clearance) is planned by the local twin
# plan-local instead; the address never reaches the cloud; the reroute is in
# the audit; the other PRs are planned in the cloud as before; plan predicted
# exactly this. With on_sensitive skip instead, that PR's planning and
# everything after it is withheld (exit 3) and nothing runs in its place.
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
cd "$T"
make_repo "$T/repo" --prs 2
# PR 7: a one-line change whose commit title names a person's address.
g() { git -C "$T/repo" "$@"; }
g checkout -q -b pr7 main
echo "/* a comment */" >>"$T/repo/src/main.c"
g add -A
g -c user.name=t -c user.email=t@bulkhead.invalid commit -q -m "Fix parser crash reported by jane.roe@acme-corp.com"
g update-ref refs/pull/7/head HEAD
g checkout -q main
start_fake local
start_fake cloud
export BULKHEAD_LOCAL_URL=$local_URL BULKHEAD_CLOUD_URL=$cloud_URL
P="$BH_SOURCE_DIR/pipelines/code-review.json"

"$BULKHEAD" plan "$P" --repo "$T/repo" --format json >"$T/plan.json"
expect_eq "plan predicts the reroute for PR 7 only" "refs/pull/7/head" \
  "$(jq -r '.items[] | select(.tasks[] | select(.stage == "plan" and .decision == "reroute")) | .key' "$T/plan.json")"
expect_eq "plan names the detector in the title" 1 \
  "$(jq '[.items[] | select(.key == "refs/pull/7/head") | .fields["pr.title"].reasons[] | select(startswith("detector email"))] | length' "$T/plan.json")"

set +e
"$BULKHEAD" run "$P" --repo "$T/repo" --state "$T/state" >"$T/run.out" 2>"$T/run.err"
rc=$?
set -e
expect_eq "the run succeeds (a reroute is not a refusal)" 0 "$rc"
[ "$rc" -eq 0 ] || cat "$T/run.err"
expect_eq "the address never reaches the cloud" 0 "$(grep -c -F 'jane.roe@acme-corp.com' "$T/cloud.log" || true)"
expect_eq "the cloud planned the other two PRs" 2 \
  "$(jq -r 'select(.method == "POST") | .body' "$T/cloud.log" | grep -c 'You are planning a code review')"
expect_eq "the local twin planned PR 7 (one planning prompt with its title)" 1 \
  "$(jq -r 'select(.method == "POST") | .body' "$T/local.log" | grep 'You are planning a code review' | grep -c 'Fix parser crash reported by')"
expect_contains "the summary lists the local twin, which ran in the planner's place" "$T/run.err" \
  "  plan-local   local  gpu-box"
"$BULKHEAD" report --state "$T/state" --format jsonl >"$T/report.jsonl"
expect_eq "PR 7's plan is done, answered locally" "done local qwen2.5-coder:7b" \
  "$(jq -r 'select(.item == "refs/pull/7/head" and .stage == "plan") | "\(.state) \(.locality) \(.answered_by)"' "$T/report.jsonl")"
expect_eq "PR 7's plan output carries the title's label" confidential \
  "$(jq -r 'select(.item == "refs/pull/7/head" and .stage == "plan") | .label' "$T/report.jsonl")"
expect_eq "PR 7 was reviewed and summarized" "done done" \
  "$(jq -r 'select(.item == "refs/pull/7/head" and .stage != "plan") | .state' "$T/report.jsonl" | tr '\n' ' ' | sed 's/ $//')"
"$BULKHEAD" audit show --state "$T/state" >"$T/audit.out"
expect_contains "the reroute is audited" "$T/audit.out" "on_sensitive reroute"
"$BULKHEAD" audit verify --state "$T/state" >/dev/null
expect_eq "the audit verifies" 0 "$?"

# A run where nothing is rerouted: the summary does not list the standby twin.
"$BULKHEAD" run "$P" --repo "$T/repo" --pulls 'refs/pull/1/head' --state "$T/state-one" \
  >"$T/one.out" 2>"$T/one.err"
expect_contains "no reroute: the planner ran in the cloud" "$T/one.err" "  plan         cloud"
expect_eq "no reroute: the standby plan-local is not listed as if it ran" 0 \
  "$(sed -n '/^where each stage ran:/,$p' "$T/one.err" | grep -c '^  plan-local ' || true)"

# The same with skip: skipped, nothing in its place; the pipeline declared it, so exit 0.
mkdir -p "$T/p"
cp -r "$BH_SOURCE_DIR/pipelines/prompts" "$T/p/"
jq '.stages.plan.on_sensitive = "skip" | del(.stages["plan-local"])' "$P" >"$T/p/skip.json"
: >"$T/local.log"
: >"$T/cloud.log"
set +e
"$BULKHEAD" run "$T/p/skip.json" --repo "$T/repo" --state "$T/state-skip" >"$T/skip.out" 2>"$T/skip.err"
rc=$?
set -e
expect_eq "skip: exit 0 (a declared skip is not a refusal)" 0 "$rc"
expect_contains "skip: the summary counts it" "$T/skip.err" "3 skipped as the pipeline declares"
"$BULKHEAD" report --state "$T/state-skip" --format jsonl >"$T/skip.jsonl"
expect_eq "skip: PR 7's plan, review and summary are skipped" "skipped skipped skipped" \
  "$(jq -r 'select(.item == "refs/pull/7/head") | .state' "$T/skip.jsonl" | tr '\n' ' ' | sed 's/ $//')"
expect_eq "skip: the other PRs are done" 6 "$(jq -s '[.[] | select(.state == "done")] | length' "$T/skip.jsonl")"
expect_eq "skip: the address reached no server" 0 "$(cat "$T/local.log" "$T/cloud.log" | grep -c -F 'jane.roe@acme-corp.com' || true)"
expect_contains "skip: the reason is in the report" "$T/skip.jsonl" "on_sensitive: skip"
finish

#!/usr/bin/env bash
# New attack: the response cache after a label changed. Night 1 the shipped
# pipeline plans every PR in the cloud (titles internal); its replies are
# cached under the SHA-256 of the request. Night 2, same state folder, the
# team has raised pr.title to confidential (a title now counts as code): the
# plan request body is byte for byte the same, so a cache consulted before
# the gate, or a cached answer stamped with night 1's label, would let the
# cloud plan stand for data the cloud may no longer see (and feed it on at
# internal). Expected on night 2: the plan is rerouted to plan-local (audited
# refusal, no `cached` decision for the cloud planner), the cloud server gets
# no new plan, nothing at all in the cloud log is a canary; audit verifies.
# Held on main when written.
source "$BH_SOURCE_DIR/tests/adversarial/lib.sh"
cd "$T"

make_repo "$T/repo" --prs 2
start_fake local
start_fake cloud
export BULKHEAD_LOCAL_URL=$local_URL BULKHEAD_CLOUD_URL=$cloud_URL
cp -r "$BH_SOURCE_DIR/pipelines" "$T/p"
jq '.source.fields["pr.title"] = "confidential"' "$BH_SOURCE_DIR/pipelines/code-review.json" >"$T/p/night2.json"
plans() { jq -s '[.[] | select(.method == "POST") | .body | fromjson? | select(.model == "gpt-oss:120b") | select((.messages[-1].content // "") | test("planning a code review"))] | length' "$T/cloud.log"; }

bh_run night1 run "$T/p/code-review.json" --repo "$T/repo" --base main --state "$T/s"
expect_rc "night 1 succeeds" 0
n1=$(plans)
expect_eq "night 1: both PRs planned in the cloud" 2 "$n1"
bh_run night2 run "$T/p/night2.json" --repo "$T/repo" --base main --state "$T/s" --fresh
expect_rc "night 2 succeeds (the plans rerouted, not withheld)" 0
expect_eq "night 2: no new plan request reached the cloud" "$n1" "$(plans)"
expect_eq "night 2: no plan answered from the cloud's cache" 0 \
  "$(sqlite3 "$T/s/state.db" "SELECT count(*) FROM audit WHERE decision = 'cached' AND stage = 'plan' AND run_id = 2" 2>/dev/null || echo err)"
audit_has "night 2: the reroute" "$T/s" "stage = 'plan' AND decision = 'refuse' AND reason LIKE '%reroute%'"
# Control: night 3 with the unchanged pipeline is answered from the cache (the
# witness above would have seen a cached plan).
bh_run night3 run "$T/p/code-review.json" --repo "$T/repo" --base main --state "$T/s" --fresh
expect_rc "control: night 3 succeeds" 0
expect_eq "control: night 3's plans come from the cache" 2 \
  "$(sqlite3 "$T/s/state.db" "SELECT count(*) FROM audit WHERE decision = 'cached' AND stage = 'plan' AND run_id = 3")"
no_canary_at "$T/cloud.log" "$T/repo.canaries" "cache"
audit_says "cache" "$T/s" 0
finish

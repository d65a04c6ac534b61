#!/usr/bin/env bash
# Held: a cloud agent stage reaching the code through its tools.
#   a. granted only list_files, the model calls read_file on src/main.c (where
#      every PR of make-repo.sh holds a canary) anyway: the call is answered
#      with an error, nothing of the file is sent; then it lists the tree
#      (file names are internal here) and finishes. Exit 0, no canary.
#   b. the same stage granted read_file (which returns the diff's label,
#      confidential, above the cloud's clearance internal): check and run
#      refuse it (exit 3) before anything is sent; the refusal is audited.
source "$BH_SOURCE_DIR/tests/adversarial/lib.sh"
cd "$T"

make_repo "$T/repo" --prs 2
start_fake cloud --script "$BH_SOURCE_DIR/fixtures/pipelines/agent/script-leak.json"
export ADV_CLOUD_URL=$cloud_URL ADV_CLOUD_KEY=adv-cloud-key
P="$ADV/pipelines/held_tool_full_read.json"

# --- a. read_file asked for, not granted ------------------------------------------
bh_run check-a check "$P"
expect_rc "a: check proves the list_files grant" 0
bh_run run-a run "$P" --repo "$T/repo" --state "$T/a"
expect_rc "a: run succeeds" 0
no_canary_at "$T/cloud.log" "$T/repo.canaries" "a"
expect_contains "a: read_file was refused as a tool error" "$T/cloud.log" \
  "error: tool 'read_file' is not granted to this stage (its tools: list_files)"
expect_eq "a: the planner did list the tree (the script ran to its end)" 2 \
  "$("$BULKHEAD" report --state "$T/a" --format jsonl | jq -s '[.[] | select(.stage == "plan" and .state == "done" and (.output | test("PLAN-DONE")))] | length')"
audit_says "a" "$T/a" 0

# --- b. read_file granted to the cloud stage ----------------------------------------
jq '.stages.plan.tools = ["list_files", "read_file"]' "$P" >"$T/grant.json"
: >"$T/cloud.log"
bh_run check-b check "$T/grant.json"
expect_rc "b: check refuses read_file granted to a cloud stage" 3
expect_contains "b: naming the tool and the labels" "$T/check-b.out" \
  "is granted tool read_file, which returns pr.diff"
bh_run run-b run "$T/grant.json" --repo "$T/repo" --state "$T/b"
expect_rc "b: run refuses it" 3
expect_eq "b: the cloud got no request at all" 0 "$(grep -c '"POST"' "$T/cloud.log" || true)"
no_canary_at "$T/cloud.log" "$T/repo.canaries" "b"
audit_has "b: the refusal" "$T/b" "decision = 'refuse' AND stage = 'plan'"
audit_says "b" "$T/b" 0
finish

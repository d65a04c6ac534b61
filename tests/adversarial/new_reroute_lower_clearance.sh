#!/usr/bin/env bash
# New attack: a reroute whose target cannot take the data either. The shipped
# pipeline's cloud planner reroutes sensitive items to "plan-local"; here that
# twin is moved to a second cloud endpoint whose clearance is LOWER (public)
# than the planner's (internal). A PR title naming an AWS key id makes the plan
# prompt restricted: the reroute must not become a way out. On main the gate
# refuses the planner before anything is sent (its reroute target is cleared
# below what the planner may turn away) and check says so: exit 3, the refusal
# audited, no canary at either cloud server, audit verify clean. Held on main
# when written.
source "$BH_SOURCE_DIR/tests/adversarial/lib.sh"
cd "$T"

make_repo "$T/repo" --prs 1
g() { git -C "$T/repo" "$@"; }
# Assembled here so that this file holds no credential-shaped string.
key="AK""IA$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n' | tr 'a-f' 'A-F')"
echo "$key" >>"$T/repo.canaries"
g checkout -q -b pr2 main
echo "/* rotated */" >>"$T/repo/src/main.c"
g add -A
g -c user.name=t -c user.email=t@bulkhead.invalid commit -q -m "Rotate $key after the incident"
g update-ref refs/pull/2/head HEAD
g checkout -q main

cp -r "$BH_SOURCE_DIR/pipelines" "$T/p"
jq '.endpoints.cloud2 = {provider: "ollama", url: "${ADV_CLOUD2_URL}", locality: "cloud",
                         clearance: "public", api_key_env: "OLLAMA_API_KEY"}
    | .stages["plan-local"].endpoint = "cloud2"' \
  "$BH_SOURCE_DIR/pipelines/code-review.json" >"$T/p/reroute-lower.json"
start_fake local
start_fake cloud
start_fake cloud2
export BULKHEAD_LOCAL_URL=$local_URL BULKHEAD_CLOUD_URL=$cloud_URL ADV_CLOUD2_URL=$cloud2_URL

bh_run run run "$T/p/reroute-lower.json" --repo "$T/repo" --base main --state "$T/s"
expect_rc "the run says data was withheld" 3
no_canary_at "$T/cloud.log" "$T/repo.canaries" "planner's cloud"
no_canary_at "$T/cloud2.log" "$T/repo.canaries" "reroute target's cloud"
expect_contains "refused before anything is sent, naming the reroute and its clearance" "$T/run.err" \
  "stages.plan: refused to run: cloud stage reroutes to stage plan-local, cleared only for public"
audit_has "the refusal" "$T/s" "stage = 'plan' AND decision = 'refuse'"
expect_eq "the audit allows nothing to either cloud" 0 \
  "$(sqlite3 "$T/s/state.db" "SELECT count(*) FROM audit WHERE decision = 'allow' AND stage IN ('plan', 'plan-local')")"
audit_says "reroute" "$T/s" 0
bh_run check check "$T/p/reroute-lower.json"
expect_rc "check refuses the pipeline too" 3
expect_contains "check names the reroute" "$T/check.out" "reroutes to stage plan-local, cleared only for public"
finish

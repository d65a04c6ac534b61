#!/usr/bin/env bash
# Held: a credential-shaped secret in the METADATA that the shipped
# pipelines/code-review.json sends to its cloud planner (fields declared
# internal, within the cloud's clearance): the detectors run over metadata too.
#   a. a PR title naming an AWS access key id;
#   b. a file NAME holding a GitHub token (config/ghp_….txt), in pr.files;
#   c. a BRANCH name holding an AWS key id (refs/heads/fix/AKIA…), in pr.ref.
# Each PR's plan must be rerouted to plan-local (audited as a refusal with the
# reroute), the run exits 0 (nothing was withheld: the work was done locally),
# the cloud server's log holds no canary, and audit verify is clean.
source "$BH_SOURCE_DIR/tests/adversarial/lib.sh"
cd "$T"

make_repo "$T/repo" --prs 1
g() { git -C "$T/repo" "$@"; }
commit() { g add -A; g -c user.name=t -c user.email=t@bulkhead.invalid commit -q -m "$1"; }
rnd() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n' | tr 'a-f' 'A-F' | head -c "$2"; }
# Assembled here so that this file holds no credential-shaped string.
title_key="AK""IA$(rnd 16 16)"
file_tok="gh""p_$(od -An -N18 -tx1 /dev/urandom | tr -d ' \n')"
branch_key="AK""IA$(rnd 16 16)"
printf '%s\n%s\n%s\n' "$title_key" "$file_tok" "$branch_key" >"$T/meta.canaries"
cat "$T/meta.canaries" >>"$T/repo.canaries"

g checkout -q -b pr2 main
echo "/* rotated */" >>"$T/repo/src/main.c"
commit "Rotate $title_key after the incident"
g update-ref refs/pull/2/head HEAD
g checkout -q -b pr3 main
mkdir -p "$T/repo/config"
echo "placeholder" >"$T/repo/config/$file_tok.txt"
commit "Add a config placeholder"
g update-ref refs/pull/3/head HEAD
g checkout -q -b "fix/$branch_key" main
echo "/* fix */" >>"$T/repo/src/main.c"
commit "Fix the build"
g checkout -q main

start_fake local
start_fake cloud
export BULKHEAD_LOCAL_URL=$local_URL BULKHEAD_CLOUD_URL=$cloud_URL
P="$BH_SOURCE_DIR/pipelines/code-review.json"

bh_run pulls run "$P" --repo "$T/repo" --base main --state "$T/s1"
expect_rc "title and file name: the run succeeds (rerouted, not withheld)" 0
bh_run branch run "$P" --repo "$T/repo" --base main --pulls 'refs/heads/fix/*' --state "$T/s2"
expect_rc "branch name: the run succeeds (rerouted, not withheld)" 0
no_canary_at "$T/cloud.log" "$T/repo.canaries" "metadata"
"$BULKHEAD" report --state "$T/s1" --format jsonl >"$T/r1.jsonl"
"$BULKHEAD" report --state "$T/s2" --format jsonl >"$T/r2.jsonl"
where() { jq -r --arg k "$2" 'select(.item == $k and .stage == "plan") | .locality' "$1"; }
expect_eq "a: the PR whose title names a key is planned locally" local "$(where "$T/r1.jsonl" refs/pull/2/head)"
expect_eq "b: the PR that adds a token-named file is planned locally" local "$(where "$T/r1.jsonl" refs/pull/3/head)"
expect_eq "c: the branch named after a key is planned locally" local "$(where "$T/r2.jsonl" "refs/heads/fix/$branch_key")"
expect_eq "control: a clean PR is planned in the cloud (the reroute is not blanket)" cloud "$(where "$T/r1.jsonl" refs/pull/1/head)"
for s in s1 s2; do
  audit_has "$s: the reroute" "$T/$s" "stage = 'plan' AND decision = 'refuse' AND reason LIKE '%reroute%'"
  audit_says "$s" "$T/$s" 0
done
seen=0
while read -r c; do grep -q -F "$c" "$T/local.log" && seen=$((seen + 1)); done <"$T/meta.canaries"
expect_eq "every metadata canary reached the local planner (the work was done)" 3 "$seen"
finish

#!/usr/bin/env bash
# rename_key_into_docs — moving a restricted file under a path that a rule
# labels lower must not lower what its diff shows. With the SHIPPED
# pipelines/pr-check.json (docs/** is internal, **/*.key restricted; the
# triage stage is cloud with clearance internal, rerouted locally above it):
#   PR 1 `git mv secrets/prod.key docs/notes.txt` and deletes a canary line:
#        the deleted line is in the diff, the new path says internal;
#   PR 2 copies the key to docs/copy.txt with a small edit (copies are not
#        paired, as in git: an added file; its content holds the key);
#   PR 3 renames the key to docs/key.txt and edits the line after a canary,
#        which the hunk shows as context;
#   PR 4 edits a docs page that holds a private key whose BEGIN line lies
#        outside the hunk: only a scan of the whole file sees the key;
#   PR 5 a clean docs change, triaged in the cloud (the case is not vacuous).
# Witnesses: no canary at the cloud; plan says restricted for the diffs of
# PRs 1-4 and reroutes their triage; the run reroutes them (audited and in
# the report) and exits 0; `audit verify` passes; `check` still proves the
# pipeline (its reroute covers restricted diffs).
source "$BH_SOURCE_DIR/tests/adversarial/lib.sh"
cd "$T"
R="$T/repo"
git init -q -b main "$R"
g() { git -C "$R" "$@"; }
commit() { g add -A; g -c user.name=t -c user.email=t@bulkhead.invalid commit -q -m "$1"; }
canary() { echo "BHCANARY$1x$(od -An -N10 -tx1 /dev/urandom | tr -d ' \n')"; }
c1=$(canary 1)
c3=$(canary 3)
c4=$(canary 4)
printf '%s\n' "$c1" "$c3" "$c4" >"$T/canaries"

# A body line of base64 that is not a canary: line N of a key.
body() { printf 'MIIE%02dAIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQC%02dx\n' "$1" "$1"; }
mkdir -p "$R/secrets" "$R/docs" "$R/src"
{
  echo "-----BEGIN PRIVATE KEY-----"
  for i in $(seq 1 8); do body "$i"; done
  echo "$c1"
  for i in $(seq 9 16); do body "$i"; done
  echo "$c3"
  for i in $(seq 17 24); do body "$i"; done
  echo "-----END PRIVATE KEY-----"
} >"$R/secrets/prod.key"
{
  echo "# Operations"
  echo
  echo "The break-glass key:"
  echo
  echo "-----BEGIN OPENSSH PRIVATE KEY-----"
  for i in $(seq 1 8); do body "$((i + 40))"; done
  echo "$c4"
  echo "-----END OPENSSH PRIVATE KEY-----"
  echo
  echo "Rotate it every year."
  for i in $(seq 1 8); do echo "Step $i of the rotation."; done
} >"$R/docs/ops.md"
echo "# Project" >"$R/docs/readme.md"
echo "int main(void) { return 0; }" >"$R/src/main.c"
commit "Initial import"

pr() { g checkout -q -b "pr$1" main; }
publish() { commit "$2"; g update-ref "refs/pull/$1/head" HEAD; g checkout -q main; }

pr 1
g mv secrets/prod.key docs/notes.txt
grep -v -F "$c1" "$R/docs/notes.txt" >"$T/tmp" && cat "$T/tmp" >"$R/docs/notes.txt"
publish 1 "Move the deployment notes"

pr 2
cp "$R/secrets/prod.key" "$R/docs/copy.txt"
echo "(copied for the handbook)" >>"$R/docs/copy.txt"
publish 2 "Copy the notes into the handbook"

pr 3
g mv secrets/prod.key docs/key.txt
sed -i "$(( $(grep -n -F "$c3" "$R/docs/key.txt" | cut -d: -f1) + 1 ))s/.*/EDITED-LINE-OF-PR-3/" \
  "$R/docs/key.txt"
publish 3 "Rename the key file"

pr 4
sed -i 's/Rotate it every year./Rotate it every quarter./' "$R/docs/ops.md"
publish 4 "Rotate more often"

pr 5
echo "More words." >>"$R/docs/readme.md"
publish 5 "Say more in the readme"

expect_eq "PR 1 is a rename (paired as git pairs it)" "R" \
  "$(g diff --name-status -M main...refs/pull/1/head | cut -c1)"
expect_eq "PR 3's hunk shows its canary only as context" 1 \
  "$(g diff -M main...refs/pull/3/head | grep -c -x -F " $c3")"
expect_eq "PR 4's hunk shows its canary as context, the BEGIN line not at all" "1 0" \
  "$(g diff main...refs/pull/4/head | grep -c -x -F " $c4") $(g diff main...refs/pull/4/head | grep -c BEGIN || true)"

echo '{"qwen2.5-coder:14b": [{"reply": "[]"}]}' >"$T/script.json"
start_fake local --script "$T/script.json"
start_fake cloud
export BULKHEAD_LOCAL_URL=$local_URL BULKHEAD_CLOUD_URL=$cloud_URL
P="$BH_SOURCE_DIR/pipelines/pr-check.json"
SRC=(--repo "$R" --pulls 'refs/pull/*/head' --base main)

bh_run check check "$P"
expect_rc "check proves the shipped pipeline (restricted diffs are rerouted)" 0

bh_run plan plan "$P" "${SRC[@]}" --format json
expect_rc "plan runs" 0
item() { jq -r --arg k "refs/pull/$1/head" ".items[] | select(.key == \$k) | $2" "$T/plan.out"; }
for n in 1 2 3 4; do
  expect_eq "plan: PR $n's diff is restricted" restricted "$(item "$n" '.fields["pr.diff"].label')"
  expect_eq "plan: PR $n's triage is rerouted" reroute \
    "$(item "$n" '.tasks[] | select(.stage == "triage") | .decision')"
done
expect_contains "plan: PR 1's reason names the old path that decided" "$T/plan.out" \
  'rule \"**/*.key\" (restricted) for secrets/prod.key'
expect_contains "plan: PR 4's reason names the whole file" "$T/plan.out" \
  'detector private-key (restricted) at line 5 of docs/ops.md before the change (the whole file)'
expect_eq "plan: PR 5 (clean docs) is triaged in the cloud" allow \
  "$(item 5 '.tasks[] | select(.stage == "triage") | .decision')"

bh_run run run "$P" "${SRC[@]}" --state "$T/state"
expect_rc "the run succeeds: rerouting withholds nothing" 0
no_canary_at "$T/cloud.log" "$T/canaries" "renamed, copied and context canaries"
expect_eq "the cloud did get the clean docs PR (the case is not vacuous)" 1 \
  "$(grep -c -F 'Say more in the readme' "$T/cloud.log" | sed 's/^[2-9]$/1/')"
seen=0
while read -r c; do grep -q -F "$c" "$T/local.log" && seen=$((seen + 1)); done <"$T/canaries"
expect_eq "the local box saw every canary (the work was done)" 3 "$seen"

"$BULKHEAD" report --state "$T/state" --format jsonl >"$T/report.jsonl"
"$BULKHEAD" audit show --state "$T/state" >"$T/audit.jsonl"
where() { jq -r --arg k "refs/pull/$1/head" 'select(.item == $k and .stage == "triage") | .locality' "$T/report.jsonl"; }
expect_eq "the report shows PRs 1-4 triaged locally, PR 5 in the cloud" "local local local local cloud" \
  "$(where 1) $(where 2) $(where 3) $(where 4) $(where 5)"
for n in 1 2 3 4; do
  expect_eq "the reroute of PR $n's triage is audited" 1 \
    "$(jq -s --arg k "refs/pull/$n/head" '[.[] | select(.item == $k and .stage == "triage" and .decision == "refuse" and (.reason | test("on_sensitive reroute")))] | length' "$T/audit.jsonl")"
done
audit_says "after the run" "$T/state" 0
finish

#!/usr/bin/env bash
# The end-to-end canary suite, with the shipped nightly pipeline (planner in
# the cloud on metadata, reviewer local on the code, review declassified to
# internal under guards, summarizer in the cloud, local twins by reroute).
# Canaries sit in code (every PR of make-repo.sh), in a .pem (PR 3), in a PR
# title that a detector catches (PR 8: an access key id), in a file that the
# docs rule labels internal but a detector catches (PR 9: a private key in
# docs/), and in reviewer replies that quote the code (the fixture reviewer is
# scripted to echo the canary lines of PRs 1 and 9). The cloud fake's log must
# hold zero canaries; every reroute and failed guard must be in the audit; and
# the cloud summarizer must still receive the review of every PR whose review
# passed the guards.
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
cd "$T"
make_repo "$T/repo" --prs 3
g() { git -C "$T/repo" "$@"; }
commit() { g add -A; g -c user.name=t -c user.email=t@bulkhead.invalid commit -q -m "$1"; }
# Assembled here so that this file holds no credential-shaped string.
key_id="AK""IAQW7B3PDKHX4PY8GP"
c9="BULKHEAD-CANARY-9-5d1e0c7a9b3f2e11"
# PR 8: the title names a key (and is the canary).
g checkout -q -b pr8 main
echo "/* rotated */" >>"$T/repo/src/main.c"
commit "Rotate $key_id after the incident"
g update-ref refs/pull/8/head HEAD
# PR 9: a runbook in docs/ (rule: internal) that pastes a private key.
g checkout -q -b pr9 main
mkdir -p "$T/repo/docs"
{
  echo "# Runbook"
  echo "Restore access with this key ($c9):"
  echo "-----BEGIN OPENSSH PRIVATE KEY-----"
  echo "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW"
  echo "-----END OPENSSH PRIVATE KEY-----"
} >"$T/repo/docs/runbook.md"
commit "Add the restore runbook"
g update-ref refs/pull/9/head HEAD
g checkout -q main
printf '%s\n%s\n' "$key_id" "$c9" >>"$T/repo.canaries"
c1=$(sed -n 1p "$T/repo.canaries")

# The reviewer quotes the canary lines of PRs 1 and 9 and nothing else.
cat >"$T/script.json" <<JSON
{ "qwen2.5-coder:14b": [
  { "match": "${c1}|${c9}|OPENSSH PRIVATE KEY|b3BlbnNz", "echo": true, "reply": "The risky lines:" } ] }
JSON
start_fake local --script "$T/script.json"
start_fake cloud
export BULKHEAD_LOCAL_URL=$local_URL BULKHEAD_CLOUD_URL=$cloud_URL
P="$BH_SOURCE_DIR/pipelines/code-review.json"

set +e
"$BULKHEAD" run "$P" --repo "$T/repo" --state "$T/state" >"$T/run.out" 2>"$T/run.err"
rc=$?
set -e
expect_eq "the run succeeds" 0 "$rc"
[ "$rc" -eq 0 ] || cat "$T/run.err"
expect_eq "canaries planted (3 in code, a title, a docs file)" 5 "$(wc -l <"$T/repo.canaries")"
expect_eq "THE CLOUD LOG HOLDS NO CANARY" 0 "$(grep -c -F -f "$T/repo.canaries" "$T/cloud.log" || true)"
seen=0
while read -r c; do grep -q -F "$c" "$T/local.log" && seen=$((seen + 1)); done <"$T/repo.canaries"
expect_eq "the local server saw every canary (the work was done)" 5 "$seen"

"$BULKHEAD" report --state "$T/state" --format jsonl >"$T/report.jsonl"
"$BULKHEAD" audit show --state "$T/state" >"$T/audit.jsonl"
expect_eq "every task is done (5 PRs x 3 stages)" 15 "$(jq -s '[.[] | select(.state == "done")] | length' "$T/report.jsonl")"
where() { jq -r --arg k "refs/pull/$1/head" --arg s "$2" 'select(.item == $k and .stage == $s) | .locality' "$T/report.jsonl"; }
expect_eq "PR 8 (key in the title) is planned locally" local "$(where 8 plan)"
expect_eq "PR 1 is planned in the cloud" cloud "$(where 1 plan)"
expect_eq "the reroute of PR 8's plan is audited" 1 \
  "$(jq -s '[.[] | select(.item == "refs/pull/8/head" and .stage == "plan" and .decision == "refuse" and (.reason | test("on_sensitive reroute")))] | length' "$T/audit.jsonl")"
decision() { jq -r --arg k "refs/pull/$1/head" 'select(.item == $k and .stage == "review" and (.decision == "declassify" or .decision == "keep")) | "\(.decision) \(.reason | capture("guard (?<g>[a-z_]+) failed").g? // "-")"' "$T/audit.jsonl"; }
expect_eq "PR 1's quoting review keeps its label (no_verbatim)" "keep no_verbatim" "$(decision 1)"
expect_eq "PR 9's quoting review keeps its label" "keep" "$(decision 9 | cut -d' ' -f1)"
expect_eq "PR 2's review is declassified" "declassify -" "$(decision 2)"
expect_eq "PR 3's review (.pem) is declassified: it quotes nothing" "declassify -" "$(decision 3)"
expect_eq "the reviews that kept their label are summarized locally" "local local" \
  "$(where 1 summarize) $(where 9 summarize)"
expect_eq "so is PR 8, whose summary prompt holds the title" local "$(where 8 summarize)"
expect_eq "the others are summarized in the cloud" "cloud cloud" "$(where 2 summarize) $(where 3 summarize)"
expect_eq "the stored review of PR 9 has the key redacted" 1 \
  "$(jq -r 'select(.item == "refs/pull/9/head" and .stage == "review") | .output' "$T/report.jsonl" | grep -c 'redacted: private-key' || true)"
# The summarizer received the review of every PR whose review passed and
# whose summary prompt may go to the cloud.
got=0
for n in 2 3; do
  out=$(jq -r --arg k "refs/pull/$n/head" 'select(.item == $k and .stage == "review") | .output' "$T/report.jsonl")
  jq -r 'select(.method == "POST") | .body' "$T/cloud.log" | jq -r '.messages[-1].content' | grep -q -F "$out" && got=$((got + 1))
done
expect_eq "the cloud summarizer got each declassified review" 2 "$got"
expect "the audit verifies" "$BULKHEAD" audit verify --state "$T/state"
finish

#!/usr/bin/env bash
# A pull request can stop the review of every other one: a branch pushed with
# history unrelated to main (git checkout --orphan) made the whole listing
# fail, so `run` exited 2 and no PR was reviewed — the attacker's own other PR
# included. Its content (a private key, a canary) and the title's AWS key
# must still never reach the cloud: the unreadable item's content fields are
# unscanned (top) and the tasks that read them fail with the reason. An
# already-merged PR carrying a canary is skipped (its diff is empty).
# Expected: every other PR reviewed, the orphan's tasks failed (exit 4), no
# canary at the cloud, no audit record of the orphan (nothing offered to any
# model), audit verify 0.
source "$BH_SOURCE_DIR/tests/adversarial/lib.sh"
cd "$T"
PIPE="$BH_SOURCE_DIR/pipelines/code-review.json"

"$BH_SOURCE_DIR/fixtures/make-repo.sh" "$T/repo" --prs 3 >/dev/null
cp "$T/repo.canaries" "$T/canaries"
akia="AKIA$(openssl rand -hex 8 | tr a-f A-F)"
orphan="BULKHEAD-CANARY-orphan-$(openssl rand -hex 8)"
merged="BULKHEAD-CANARY-merged-$(openssl rand -hex 8)"
printf '%s\n' "$akia" "$orphan" "$merged" >>"$T/canaries"
g() { git -C "$T/repo" -c user.name=x -c user.email=x@x.invalid "$@"; }
g checkout -q --orphan hostile
g rm -rqf .
{
  echo "-----BEGIN PRIVATE KEY-----"
  openssl rand -base64 48
  echo "$orphan"
  echo "-----END PRIVATE KEY-----"
} >"$T/repo/deploy.pem"
g add -A
g commit -q -m "Import $akia"
g update-ref refs/pull/4/head HEAD
g checkout -q -f main
g checkout -q -b merged
echo "$merged" >>"$T/repo/docs/design.md"
g commit -qam "Note"
g checkout -q main
g merge -q --no-ff --no-edit merged
g update-ref refs/pull/5/head merged

start_fake cloud
start_fake local
export BULKHEAD_LOCAL_URL=$local_URL BULKHEAD_CLOUD_URL=$cloud_URL

bh_run check check "$PIPE"
expect_rc "check: the pipeline is sound statically" 0
bh_run run run "$PIPE" --repo "$T/repo" --state "$T/state"
expect_rc "run: the orphan PR fails its own tasks only" 4
no_canary_at "$T/cloud.log" "$T/canaries" "run"
"$BULKHEAD" report --state "$T/state" --format jsonl >"$T/report.jsonl"
expect_eq "PRs 1-3: every task done" 9 \
  "$(jq -s '[.[] | select(.state == "done")] | length' "$T/report.jsonl")"
expect_eq "PR 4: every task failed, none sent" "failed failed failed" \
  "$(jq -r 'select(.item == "refs/pull/4/head") | .state' "$T/report.jsonl" | tr '\n' ' ' | sed 's/ $//')"
expect_contains "PR 4: the reason" "$T/report.jsonl" \
  "ref 'refs/pull/4/head' shares no history with base 'main'"
expect_eq "PR 5 (merged) is not reviewed" 0 \
  "$(jq -s '[.[] | select(.item == "refs/pull/5/head")] | length' "$T/report.jsonl")"
expect_contains "the merged PR is skipped with a note" "$T/run.err" \
  "1 pull request with an empty diff against 'main' skipped (already merged?): refs/pull/5/head"
audit_has "the reviews were declassified before the cloud summary read them" "$T/state" \
  "stage = 'review' AND decision = 'declassify'"
expect_eq "the orphan PR has no audit record: nothing of it was ever offered to a model" 0 \
  "$(sqlite3 "$T/state/state.db" "SELECT count(*) FROM audit WHERE item = 'refs/pull/4/head'")"
audit_says "run" "$T/state" 0
bh_run plan plan "$PIPE" --repo "$T/repo"
expect_rc "plan lists the orphan instead of stopping" 0
expect_contains "plan: the orphan's content is unscanned, with the reason" "$T/plan.out" \
  "shares no history with base 'main'"
finish

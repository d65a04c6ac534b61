#!/usr/bin/env bash
# CI mode: --range BASE..HEAD makes one item, the change a CI job checks, from
# a checkout with no pull refs: plan and run see exactly that change (its
# diff, its title, the PR number from the CI's environment), labelled as the
# nightly run would label it; a bad range is a clear error.
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
cd "$T"
make_repo "$T/repo" --prs 3
# A CI checkout: the PR's head is checked out as a branch; no refs/pull/*.
git clone -q "$T/repo" "$T/ci"
git -C "$T/ci" fetch -q origin refs/pull/3/head:pr-3
git -C "$T/ci" checkout -q pr-3
# pr-check.json's review answers findings: a scripted reviewer finds none.
echo '{"qwen2.5-coder:14b": [{"reply": "[]"}]}' >"$T/script.json"
start_fake local --script "$T/script.json"
start_fake cloud
export BULKHEAD_LOCAL_URL=$local_URL BULKHEAD_CLOUD_URL=$cloud_URL
cd "$T/ci"

set +e
GITHUB_REF=refs/pull/3/merge "$BULKHEAD" plan "$BH_SOURCE_DIR/pipelines/pr-check.json" \
  --range origin/main..HEAD --format json >"$T/plan.json" 2>"$T/plan.err"
rc=$?
set -e
expect_eq "plan over a range exits 0" 0 "$rc"
expect_eq "one item, named by the range's head" HEAD "$(jq -r '[.items[].key] | join(",")' "$T/plan.json")"
expect_eq "its diff is the .pem PR's: restricted" restricted "$(jq -r '.items[0].fields["pr.diff"].label' "$T/plan.json")"
expect_eq "its triage is rerouted locally" reroute \
  "$(jq -r '.items[0].tasks[] | select(.stage == "triage") | .decision' "$T/plan.json")"

set +e
GITHUB_REF=refs/pull/3/merge "$BULKHEAD" run "$BH_SOURCE_DIR/pipelines/pr-check.json" \
  --range origin/main..HEAD --state "$T/state" >"$T/run.out" 2>"$T/run.err"
rc=$?
set -e
expect_eq "run over a range exits 0" 0 "$rc"
[ "$rc" -eq 0 ] || cat "$T/run.err"
canary=$(sed -n 3p "$T/repo.canaries")
expect_eq "the local reviewer saw the PR's change (its canary)" 1 \
  "$(jq -r 'select(.method == "POST") | .body' "$T/local.log" | grep -c -F "$canary" | sed 's/^[2-9]$/1/')"
expect_eq "the PR number comes from GITHUB_REF" 1 \
  "$(jq -r 'select(.method == "POST") | .body' "$T/local.log" | grep -c -F 'Pull request #3:' | sed 's/^[2-9]$/1/')"
expect_eq "no other PR's change was read" 0 \
  "$(cat "$T/local.log" "$T/cloud.log" | grep -c -F -e "$(sed -n 1p "$T/repo.canaries")" -e "$(sed -n 2p "$T/repo.canaries")" || true)"
expect_eq "the cloud received no canary" 0 "$(grep -c -F -f "$T/repo.canaries" "$T/cloud.log" || true)"
expect "the outputs were written" test -s pr-check.md -a -s pr-check.jsonl -a -s pr-check.sarif \
  -a -s pr-check.junit.xml -a -s pr-check.review.json

set +e
"$BULKHEAD" plan "$BH_SOURCE_DIR/pipelines/pr-check.json" --range origin/main >/dev/null 2>"$T/bad.err"
rc=$?
set -e
expect_eq "a range without '..': exit 2" 2 "$rc"
expect_contains "saying what it takes" "$T/bad.err" "--range takes BASE..HEAD"
set +e
"$BULKHEAD" plan "$BH_SOURCE_DIR/pipelines/pr-check.json" --range origin/nope..HEAD >/dev/null 2>"$T/bad2.err"
rc=$?
set -e
expect_eq "an unknown base: exit 2" 2 "$rc"
expect_contains "naming it" "$T/bad2.err" "cannot resolve base 'origin/nope'"
finish

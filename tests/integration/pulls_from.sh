#!/usr/bin/env bash
# --pulls-from FILE: the forge's list of open pull requests (gh pr list --json,
# GitLab's merge request list) makes exactly the listed items, at their head
# commits, keyed like the refs; pr.body reaches the prompts and is labelled
# (a token pasted into it raises it, so the cloud planner is rerouted);
# --skip-drafts leaves drafts out; a malformed list is a usage error naming
# the file and where; a head the repository lacks fails only that item.
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
cd "$T"
make_repo "$T/repo" --prs 6
rnd() { head -c 64 /dev/urandom | tr -dc 'A-Za-z0-9' | head -c "$1"; }
body1="BODY-CANARY-$(rnd 16)"
token="ghp_$(rnd 36)"
[ ${#token} -eq 40 ] || token="ghp_aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dF3hJ5"
# fill FIXTURE OUT: the recorded list with this repository's heads and this run's canaries.
fill() {
  sed -e "s/@HEAD_1@/$(git -C "$T/repo" rev-parse refs/pull/1/head)/" \
      -e "s/@HEAD_2@/$(git -C "$T/repo" rev-parse refs/pull/2/head)/" \
      -e "s/@HEAD_4@/$(git -C "$T/repo" rev-parse refs/pull/4/head)/" \
      -e "s/@HEAD_6@/$(git -C "$T/repo" rev-parse refs/pull/6/head)/" \
      -e "s/@BODY_1@/$body1/" -e "s/@BODY_2@/$token/" "$BH_SOURCE_DIR/fixtures/forge/$1" >"$2"
}
fill gh-pr-list.json "$T/prs.json"
fill gitlab-merge-requests.json "$T/mrs.json"

# A pipeline whose prompts use the forge's fields: a cloud planner that sees
# the body (rerouted locally when it is too sensitive) and a local reviewer.
mkdir -p "$T/pipe/prompts"
printf 'Plan #{{pr.number}}: {{pr.title}} by {{pr.author}} [{{pr.labels}}] draft={{pr.draft}}\n{{pr.body}}\n{{pr.files}}\n' \
  >"$T/pipe/prompts/plan.md"
printf 'Review {{pr.title}}\n{{pr.body}}\n{{pr.diff}}\n' >"$T/pipe/prompts/review.md"
cat >"$T/pipe/forge.json" <<'JSON'
{
  "version": 1,
  "name": "forge-review",
  "endpoints": {
    "box": { "provider": "ollama", "url": "${BULKHEAD_LOCAL_URL}", "locality": "local" },
    "cloud": { "provider": "ollama", "url": "${BULKHEAD_CLOUD_URL}", "locality": "cloud",
               "clearance": "internal" }
  },
  "source": {
    "kind": "git",
    "label": "confidential",
    "fields": { "pr.number": "internal", "pr.ref": "internal", "pr.title": "internal",
                "pr.files": "internal", "pr.body": "internal", "pr.author": "internal",
                "pr.labels": "internal", "pr.draft": "internal" }
  },
  "stages": {
    "plan": { "endpoint": "cloud", "model": "big:120b", "prompt": "prompts/plan.md",
              "on_sensitive": "reroute:plan-local" },
    "plan-local": { "endpoint": "box", "model": "small:7b", "prompt": "prompts/plan.md" },
    "review": { "endpoint": "box", "model": "small:7b", "after": ["plan"],
                "prompt": "prompts/review.md" }
  }
}
JSON
start_fake local
start_fake cloud
export BULKHEAD_LOCAL_URL=$local_URL BULKHEAD_CLOUD_URL=$cloud_URL

set +e
"$BULKHEAD" check "$T/pipe/forge.json" >"$T/check.out" 2>&1
rc=$?
set -e
expect_eq "check accepts a pipeline that uses pr.body, pr.author, pr.labels, pr.draft" 0 "$rc"
[ "$rc" -eq 0 ] || cat "$T/check.out"

set +e
"$BULKHEAD" plan "$T/pipe/forge.json" --repo "$T/repo" --pulls-from "$T/prs.json" \
  --format json >"$T/plan.json" 2>"$T/plan.err"
rc=$?
set -e
expect_eq "plan from a gh list exits 0" 0 "$rc"
expect_eq "exactly the listed pull requests, keyed by their refs" \
  "refs/pull/1/head,refs/pull/2/head,refs/pull/4/head" "$(jq -r '[.items[].key] | join(",")' "$T/plan.json")"
expect_eq "a body with a token is restricted" restricted \
  "$(jq -r '.items[1].fields["pr.body"].label' "$T/plan.json")"
expect_eq "so its cloud planner is rerouted" reroute \
  "$(jq -r '.items[1].tasks[] | select(.stage == "plan") | .decision' "$T/plan.json")"
expect_eq "a plain body keeps its declared label" internal \
  "$(jq -r '.items[0].fields["pr.body"].label' "$T/plan.json")"
expect_eq "and its planner goes to the cloud" allow \
  "$(jq -r '.items[0].tasks[] | select(.stage == "plan") | .decision' "$T/plan.json")"

set +e
"$BULKHEAD" run "$T/pipe/forge.json" --repo "$T/repo" --pulls-from "$T/prs.json" --skip-drafts \
  --state "$T/state" --quiet >"$T/run.out" 2>"$T/run.err"
rc=$?
set -e
expect_eq "run from a gh list exits 0" 0 "$rc"
[ "$rc" -eq 0 ] || cat "$T/run.err"
expect_contains "a note says the draft was left out" "$T/run.err" \
  "left out 1 draft pull request (--skip-drafts)"
bodies=$(jq -r 'select(.method == "POST") | .body' "$T/local.log" "$T/cloud.log")
for n in 1 2 3 4 5 6; do
  c=$(sed -n "${n}p" "$T/repo.canaries")
  seen=$(printf '%s\n' "$bodies" | grep -c -F -- "$c" || true)
  case $n in
    1|2) expect "PR $n was reviewed (its canary reached the local model)" test "$seen" -gt 0 ;;
    *) expect_eq "PR $n was not reviewed (not listed, or a draft)" 0 "$seen" ;;
  esac
done
expect "pr.body reached the local prompt" grep -q -F -- "$body1" "$T/local.log"
expect "the forge's title, author and labels reached the prompt" \
  grep -q -F -- 'Fix the parser (forge title) by octocat [bug,parser] draft=false' "$T/local.log" "$T/cloud.log"
expect_eq "the cloud never received the token" 0 "$(grep -c -F -- "$token" "$T/cloud.log" || true)"
expect "the token's planner ran locally" grep -q -F -- "$token" "$T/local.log"
expect_eq "the cloud received no diff canary" 0 "$(grep -c -F -f "$T/repo.canaries" "$T/cloud.log" || true)"

# GitLab's list: keys refs/merge-requests/<iid>/head, description as pr.body.
set +e
"$BULKHEAD" plan "$T/pipe/forge.json" --repo "$T/repo" --pulls-from "$T/mrs.json" \
  --format json >"$T/gl.json" 2>"$T/gl.err"
rc=$?
set -e
expect_eq "plan from a GitLab list exits 0" 0 "$rc"
expect_eq "keys are the merge request refs" "refs/merge-requests/1/head,refs/merge-requests/6/head" \
  "$(jq -r '[.items[].key] | join(",")' "$T/gl.json")"
"$BULKHEAD" plan "$T/pipe/forge.json" --repo "$T/repo" --pulls-from "$T/mrs.json" --skip-drafts \
  --format json >"$T/gl2.json" 2>"$T/gl2.err" || true
expect_eq "--skip-drafts reads GitLab's draft" "refs/merge-requests/1/head" \
  "$(jq -r '[.items[].key] | join(",")' "$T/gl2.json")"

# Malformed lists: exit 2, the file and where.
printf '[{"number": 1, "title": "x",\n  "body": }]\n' >"$T/syntax.json"
set +e
"$BULKHEAD" plan "$T/pipe/forge.json" --repo "$T/repo" --pulls-from "$T/syntax.json" >/dev/null 2>"$T/syntax.err"
rc=$?
set -e
expect_eq "a list that is not JSON: exit 2" 2 "$rc"
expect_contains "naming the file, line and column" "$T/syntax.err" "syntax.json:2:"
jq '.[1].headRefOid = 42' "$T/prs.json" >"$T/type.json"
set +e
"$BULKHEAD" plan "$T/pipe/forge.json" --repo "$T/repo" --pulls-from "$T/type.json" >/dev/null 2>"$T/type.err"
rc=$?
set -e
expect_eq "a head that is not a commit id: exit 2" 2 "$rc"
expect_contains "naming the file, the JSON path and what was expected" "$T/type.err" \
  "type.json: [1].headRefOid: expected a commit id (40 hex digits), got an integer"

set +e
"$BULKHEAD" plan "$T/pipe/forge.json" --repo "$T/repo" --pulls-from "$T/prs.json" \
  --pulls 'refs/heads/*' >/dev/null 2>"$T/both.err"
rc=$?
set -e
expect_eq "--pulls-from with --pulls: exit 2" 2 "$rc"
expect_contains "saying they do not go together" "$T/both.err" "give it without --pulls, --range and --docs"
set +e
"$BULKHEAD" plan "$T/pipe/forge.json" --repo "$T/repo" --skip-drafts >/dev/null 2>"$T/drafts.err"
rc=$?
set -e
expect_eq "--skip-drafts without --pulls-from: exit 2" 2 "$rc"
expect_contains "saying it needs the list" "$T/drafts.err" "--skip-drafts needs --pulls-from FILE"

# A head the repository does not have (not fetched): only that item fails.
jq '.[0].headRefOid = "0123456789abcdef0123456789abcdef01234567"' "$T/prs.json" >"$T/missing.json"
before=$(wc -l <"$T/local.log")
set +e
"$BULKHEAD" run "$T/pipe/forge.json" --repo "$T/repo" --pulls-from "$T/missing.json" --skip-drafts \
  --state "$T/state2" --quiet >"$T/missing.out" 2>"$T/missing.err"
rc=$?
set -e
expect_eq "a missing head fails its tasks: exit 4" 4 "$rc"
expect_contains "saying how to fetch the heads" "$T/missing.err" \
  "fetch the pull request heads first (git fetch origin '+refs/pull/*/head:refs/pull/*/head')"
c2=$(sed -n 2p "$T/repo.canaries")
expect "the other pull request was still reviewed" \
  sh -c "tail -n +$((before + 1)) '$T/local.log' | grep -q -F -- '$c2'"

# The forge's text is content: a title edited with no new commit is another
# version of the pull request, so the same command starts a new run (not "no
# work left" on the old title); the unedited list resumes the old run.
jq '.[0].title = "A title edited on the forge"' "$T/prs.json" >"$T/edited.json"
"$BULKHEAD" run "$T/pipe/forge.json" --repo "$T/repo" --pulls-from "$T/prs.json" --skip-drafts \
  --state "$T/state" --quiet >/dev/null 2>"$T/same.err" || true
expect_contains "the same list again resumes its run" "$T/same.err" "resuming run"
"$BULKHEAD" run "$T/pipe/forge.json" --repo "$T/repo" --pulls-from "$T/edited.json" --skip-drafts \
  --state "$T/state" --quiet >/dev/null 2>"$T/edited.err" || true
expect_contains "an edited title starts a new run" "$T/edited.err" "starting run"
"$BULKHEAD" report --state "$T/state" --format jsonl >"$T/edited.jsonl"
expect_eq "whose prompts see the new title" 1 \
  "$(grep -c -F 'A title edited on the forge' "$T/local.log" "$T/cloud.log" 2>/dev/null | awk -F: '{s += $2} END {print (s > 0)}')"
finish

#!/usr/bin/env bash
# `bulkhead plan` labels every task with the item's actual data and says what
# the gate would do, without calling a model: path rules per file of a diff
# (the .pem PR's reviewer input is restricted), a docs-only PR's triage goes
# to the cloud at its lower label while the others are rerouted to the local
# twin, documents in hr/ are skipped by a cloud stage, a detector hit raises
# a label and is named (never its text), and a task that would be refused
# makes plan exit 3. The fixture servers receive nothing.
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
cd "$T"
start_fake local
start_fake cloud
export BULKHEAD_LOCAL_URL=$local_URL BULKHEAD_CLOUD_URL=$cloud_URL
make_repo "$T/repo" --prs 4

plan() { bh_run plan plan "$@"; } # plan ARGS... → rc, $T/plan.out, $T/plan.err
# task ITEM STAGE KEY [ELEMENT]: a value of one task of plan --format json.
task() {
  jq -r --arg i "$1" --arg s "$2" --arg k "$3" --arg e "${4:-}" \
    '.items[] | select(.key == $i) | .tasks[] | select(.stage == $s)
     | select($e == "" or .element == $e) | .[$k]' "$T/plan.out"
}

plan "$BH_SOURCE_DIR/pipelines/code-review.json" --repo "$T/repo" --format json
expect_eq "code-review: nothing would be refused (exit 0)" 0 "$rc"
expect_eq "code-review: one item per PR" 4 "$(jq '.items | length' "$T/plan.out")"
expect_eq "the .pem PR's reviewer input is restricted" restricted \
  "$(task refs/pull/3/head review label)"
expect_eq "the .pem PR's reviewer runs (local)" allow "$(task refs/pull/3/head review decision)"
expect_eq "a code PR's reviewer input is confidential" confidential \
  "$(task refs/pull/1/head review label)"
expect_eq "the .pem PR's diff names the rule" 1 \
  "$(jq '[.items[] | select(.key == "refs/pull/3/head") | .fields["pr.diff"].reasons[]
          | select(startswith("rule \"**/*.pem\""))] | length' "$T/plan.out")"
expect_eq "the .pem PR's diff names the private-key detector" 1 \
  "$(jq '[.items[] | select(.key == "refs/pull/3/head") | .fields["pr.diff"].reasons[]
          | select(startswith("detector private-key"))] | length' "$T/plan.out")"
expect_eq "the standby planner is no task of its own" 0 \
  "$(jq '[.items[].tasks[] | select(.stage == "plan-local")] | length' "$T/plan.out")"
expect_eq "the planner (metadata only) stays in the cloud" "allow allow allow allow" \
  "$(jq -r '[.items[].tasks[] | select(.stage == "plan") | .decision] | join(" ")' "$T/plan.out")"

plan "$BH_SOURCE_DIR/pipelines/pr-check.json" --repo "$T/repo" --format json
expect_eq "pr-check: exit 0" 0 "$rc"
expect_eq "the docs-only PR's triage input is at its lower label" internal \
  "$(task refs/pull/2/head triage label)"
expect_eq "the docs-only PR is triaged in the cloud" allow "$(task refs/pull/2/head triage decision)"
expect_eq "a code PR's triage input is confidential" confidential \
  "$(task refs/pull/1/head triage label)"
expect_eq "a code PR's triage is rerouted" reroute "$(task refs/pull/1/head triage decision)"
expect_eq "... to the local twin" triage-local "$(task refs/pull/1/head triage ran)"
expect_eq "the .pem PR's triage is rerouted too" reroute "$(task refs/pull/3/head triage decision)"
expect_eq "the reviewer reads the rerouted triage's output" restricted \
  "$(task refs/pull/3/head review label)"

plan "$BH_SOURCE_DIR/pipelines/pr-check.json" --repo "$T/repo"
expect_contains "text: the item and its title" "$T/plan.out" "refs/pull/2/head"
expect_contains "text: the reroute is spelt out" "$T/plan.out" "reroute   to triage-local (local, confidential)"
expect_contains "text: the total" "$T/plan.out" "0 tasks would be refused"

plan "$BH_SOURCE_DIR/fixtures/pipelines/policy/diff-to-cloud.json" --repo "$T/repo" --format json
expect_eq "a task that would be refused: exit 3" 3 "$rc"
expect_eq "every review is refused" 4 "$(jq '.refused' "$T/plan.out")"
expect_eq "the refusal says what carries the label" "pr.diff is confidential" \
  "$(task refs/pull/1/head review why)"

"$BH_SOURCE_DIR/fixtures/make-docs.sh" "$T/docs" >/dev/null
plan "$BH_SOURCE_DIR/pipelines/documents.json" --docs "$T/docs" --format json
expect_eq "documents: exit 0 (sensitive documents are skipped, not refused)" 0 "$rc"
expect_eq "a public press release is tagged in the cloud" allow \
  "$(jq -r '.items[] | select(.key | startswith("public/")) | .tasks[] | select(.stage == "tag")
            | .decision' "$T/plan.out" | sort -u)"
expect_eq "hr/ documents are skipped by the cloud tagger" skip \
  "$(jq -r '.items[] | select(.key | startswith("hr/")) | .tasks[] | select(.stage == "tag")
            | .decision' "$T/plan.out" | sort -u)"
expect_eq "the letter's IBAN is found by its detector" 1 \
  "$(jq '[.items[] | select(.key == "letters/customer-letter-0042.txt") | .fields["doc.text"].reasons[]
          | select(startswith("detector iban"))] | length' "$T/plan.out")"
expect_eq "the AWS keys in a config raise it to restricted" restricted \
  "$(jq -r '.items[] | select(.key == "config/backup-settings.json") | .fields["doc.text"].label' "$T/plan.out")"
expect "the IBAN itself is never printed" bash -c "! grep -q 'WEST' '$T/plan.out'"
expect_eq "drafts/ is excluded by the source" 0 \
  "$(jq '[.items[] | select(.key | startswith("drafts/"))] | length' "$T/plan.out")"
expect_contains "the binary document is noted" "$T/plan.err" "note: skipped letters/scan-0042.txt"
expect_eq "the batch digest reads every document, at the join" restricted \
  "$(jq -r '.batch[] | select(.stage == "digest") | .label' "$T/plan.out")"

plan "$BH_SOURCE_DIR/pipelines/documents.json" --repo "$T/repo"
expect_eq "a git option for a files source is a usage error" 2 "$rc"
expect_contains "... that says which option fits" "$T/plan.err" "give --docs DIR"

expect_eq "the model servers received nothing" 0 "$(cat "$T/local.log" "$T/cloud.log" | grep -c . || true)"
finish

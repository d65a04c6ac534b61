#!/usr/bin/env bash
# Secrets in what a forge says about a pull request (--pulls-from): the
# description, the label names and the title are written by whoever opened
# it, and reach prompts as pr.body, pr.labels and pr.title. Declared internal,
# they may go to a cloud stage cleared for internal — unless a detector finds
# a secret in them, which raises the field to restricted and makes the gate
# refuse that item's request (exit 3, audited), while the others are sent.
#   a. a GitHub token pasted into a gh pull request's body;
#   b. an AWS access key as a label name;
#   c. a GitHub token in a GitLab merge request's description;
#   d. control: the same lists without secrets are sent, body and all.
source "$BH_SOURCE_DIR/tests/adversarial/lib.sh"
cd "$T"

canA="ghp_$(openssl rand -hex 18)"
canB="AKIA$(openssl rand -hex 8 | tr a-f A-F)"
canC="ghp_$(openssl rand -hex 18)"
clean="BODY-$(openssl rand -hex 8)"
printf '%s\n' "$canA" "$canB" "$canC" >"$T/canaries"
make_repo "$T/repo" --prs 6
start_fake cloud
export ADV_CLOUD_URL=$cloud_URL
P="$ADV/pipelines/secret_in_pr_body.json"
# list FIXTURE OUT BODY1 BODY2: the recorded list with this repository's heads.
list() {
  sed -e "s/@HEAD_1@/$(git -C "$T/repo" rev-parse refs/pull/1/head)/" \
      -e "s/@HEAD_2@/$(git -C "$T/repo" rev-parse refs/pull/2/head)/" \
      -e "s/@HEAD_4@/$(git -C "$T/repo" rev-parse refs/pull/4/head)/" \
      -e "s/@HEAD_6@/$(git -C "$T/repo" rev-parse refs/pull/6/head)/" \
      -e "s/@BODY_1@/$3/" -e "s/@BODY_2@/$4/" "$BH_SOURCE_DIR/fixtures/forge/$1" >"$2"
}
list gh-pr-list.json "$T/a.json" "$clean" "$canA"
list gh-pr-list.json "$T/b0.json" "$clean" "$clean"
jq --arg k "$canB" '.[0].labels[1].name = $k' "$T/b0.json" >"$T/b.json"
list gitlab-merge-requests.json "$T/c.json" "$canC" "$clean"
list gh-pr-list.json "$T/d.json" "$clean" "$clean"

bh_run check check "$P"
expect_rc "check proves the declared bounds (the detectors act at run time)" 0

for name in a b c; do
  bh_run "$name" run "$P" --repo "$T/repo" --pulls-from "$T/$name.json" --skip-drafts \
    --state "$T/$name.state" --quiet
  expect_rc "$name: the run refuses the item with the secret" 3
  no_canary_at "$T/cloud.log" "$T/canaries" "$name"
  audit_has "$name" "$T/$name.state" "decision = 'refuse' AND stage = 'triage'"
  audit_says "$name" "$T/$name.state" 0
done
# a and b: PR 2 (a) or 1 (b) refused, the other one sent; c: MR 1 refused, 6 a draft.
expect_eq "a, b: the item without a secret was sent each time" 2 \
  "$(jq -s '[.[] | select(.method == "POST")] | length' "$T/cloud.log")"
bh_run plan plan "$P" --repo "$T/repo" --pulls-from "$T/a.json" --format json
expect_eq "plan names the token's field and refuses" "restricted refuse" \
  "$(jq -r '.items[1] | "\(.fields["pr.body"].label) \(.tasks[0].decision)"' "$T/plan.out")"
if grep -q -F -f "$T/canaries" "$T/plan.out" "$T/plan.err"; then not_ok "plan quotes the secret"
else ok "plan does not quote the secret"; fi

bh_run d run "$P" --repo "$T/repo" --pulls-from "$T/d.json" --state "$T/d.state" --quiet
expect_rc "d: without a secret, every listed pull request is sent" 0
expect "d: the body reached the cloud stage" grep -q -F -- "$clean" "$T/cloud.log"
audit_says "d" "$T/d.state" 0
no_canary_at "$T/cloud.log" "$T/canaries" "all"
finish

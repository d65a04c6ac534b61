#!/usr/bin/env bash
# Attack: a local stage declares "clearance": "confidential" and its model
# turns out to be a cloud stub. The stage's clearance was written for the
# machine; a stub is a cloud destination nobody declared, so its cap is the
# bottom label and the stage's own word can only lower that. `check --online`
# and `run` must reach the same verdict through the same function: both
# refuse a stage whose input needs more than public (exit 3), both let one
# through that reads public fields only. The stub plays the cloud: no canary.
source "$BH_SOURCE_DIR/tests/adversarial/lib.sh"
cd "$T"

PIPE="$ADV/pipelines/stub_with_stage_clearance.json"
TITLES="$ADV/pipelines/stub_with_stage_clearance-titles.json"
make_repo "$T/repo" --prs 2
start_fake cloud
start_fake stub --server-version 0.17.0 --models coder:7b --remote coder:7b
export ADV_CLOUD_URL=$cloud_URL ADV_LOCAL_URL=$stub_URL

bh_run offline check "$PIPE"
expect_rc "without --online the stub cannot be seen: the static check passes" 0
bh_run online check "$PIPE" --online --state "$T/check.state"
expect_rc "check --online refuses the confidential stage on the stub" 3
expect_contains "check --online: the refusal names the stub and the bottom clearance" "$T/online.err" \
  "stages.review: refused: local stage uses model 'coder:7b', a cloud stub that the server forwards to 'https://ollama.com:443', and"
bh_run run run "$PIPE" --repo "$T/repo" --state "$T/run.state"
expect_rc "run refuses it too" 3
expect_contains "run: the same verdict" "$T/run.err" \
  "stages.review: refused to run: cloud stage uses model 'coder:7b', a cloud stub that the server forwards to 'https://ollama.com:443', and"
no_canary_at "$T/stub.log" "$T/repo.canaries" "stage clearance"
no_canary_at "$T/cloud.log" "$T/repo.canaries" "stage clearance"
audit_has "the refusal is audited with the bottom clearance" "$T/run.state" \
  "decision = 'refuse' AND stage = 'review' AND clearance = 'public'"
audit_says "stage clearance" "$T/run.state" 0

# The same stub for a stage that reads public fields only: allowed by both.
bh_run online-titles check "$TITLES" --online --state "$T/check.state"
expect_rc "check --online: a public-only stage on the stub passes" 0
expect_contains "check --online: says the stub's stages are cloud" "$T/online-titles.out" \
  "its stages are cloud, cleared for the bottom label only"
bh_run titles run "$TITLES" --repo "$T/repo" --state "$T/titles.state"
expect_rc "run: the public-only stage runs" 0
audit_has "run: its requests go as cloud, cleared for public" "$T/titles.state" \
  "decision = 'allow' AND stage = 'titles' AND locality = 'cloud' AND clearance = 'public'"
no_canary_at "$T/stub.log" "$T/repo.canaries" "public-only stage"
finish

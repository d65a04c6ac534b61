#!/usr/bin/env bash
# Held: pipeline files that say one thing to a reader and another to a lax
# loader, each trying to send the confidential diff to the cloud server as if
# it were local:
#   dupkey     JSON: "locality": "cloud" … then "locality": "local" in one object;
#   yamldup    YAML: the same, twice the key in a mapping;
#   anchor     YAML: the cloud endpoint merges the local one's keys (<<: *localbox);
#   lookalike  a cloud endpoint named "gpu-bоx" (Cyrillic о) beside the local "gpu-box";
#   lookalike-stage  a cloud stage "rеview" (Cyrillic е) beside the local "review";
#   include    an included file redefines the local endpoint as a cloud one.
# Each is refused by the loader: check and run exit 2 naming the file, line and
# why; neither server receives a single request; no canary anywhere.
source "$BH_SOURCE_DIR/tests/adversarial/lib.sh"
cd "$T"

make_repo "$T/repo" --prs 1
start_fake local
start_fake cloud
export ADV_LOCAL_URL=$local_URL ADV_CLOUD_URL=$cloud_URL ADV_CLOUD_KEY=adv-tricks-key
PD="$ADV/pipelines"
cases=(
  "dupkey.json|invalid JSON: duplicate object key near '\"locality\"'"
  "yamldup.yaml|duplicate key \"locality\" — each key may appear once in a mapping"
  "anchor.yaml|anchors are not supported (found \"&localbox\")"
  "lookalike.json|invalid endpoint name \"gpu-b"
  "lookalike-stage.json|invalid stage name \"r"
  "include.json|held_pipeline_tricks-inc/endpoints.json — endpoint names must be unique across the pipeline and its included files"
)
for c in "${cases[@]}"; do
  f=${c%%|*} msg=${c#*|} k=${f%%.*}
  bh_run "$k-check" check "$PD/held_pipeline_tricks-$f"
  expect_rc "$k: check refuses the file" 2
  expect_contains "$k: saying why" "$T/$k-check.err" "$msg"
  bh_run "$k-run" run "$PD/held_pipeline_tricks-$f" --repo "$T/repo" --state "$T/$k.state"
  expect_rc "$k: run refuses the file" 2
  expect_contains "$k: the same way" "$T/$k-run.err" "$msg"
done
expect_eq "neither server received any request" "0 0" "$(wc -l <"$T/local.log") $(wc -l <"$T/cloud.log")"
no_canary_at "$T/cloud.log" "$T/repo.canaries" "all"
# Control: the look-alike file with the stage on the real "gpu-box" (the
# cloud endpoint dropped) loads and runs, and the diff reaches the local server:
# the refusals above are what kept it from the cloud.
mkdir -p "$T/prompts"
cp "$PD/prompts/held_pipeline_tricks-diff.md" "$T/prompts/"
jq '.stages.review.endpoint = "gpu-box" | .endpoints |= with_entries(select(.key == "gpu-box"))' \
  "$PD/held_pipeline_tricks-lookalike.json" >"$T/honest.json"
bh_run ctl-run run "$T/honest.json" --repo "$T/repo" --state "$T/ctl.state"
expect_rc "control: the honest file runs" 0
expect_eq "control: the diff reached the local server" 1 \
  "$(grep -q -F -f "$T/repo.canaries" "$T/local.log" && echo 1 || echo 0)"
finish

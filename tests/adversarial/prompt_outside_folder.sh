#!/usr/bin/env bash
# A pipeline's prompt names a file outside the pipeline's folder: "../x", an
# absolute path, or a symbolic link inside the folder that points out of it.
# Whoever can write the pipeline file (or a link next to it) could make a
# cloud stage send any file the runner can read. The loader must refuse all
# three (exit 2, naming the file's line and JSON path), before anything is
# read or sent: the canary in the outside file never reaches the cloud.
source "$BH_SOURCE_DIR/tests/adversarial/lib.sh"
cd "$T"

canary="BULKHEAD-OUTSIDE-$(openssl rand -hex 8)"
echo "$canary" >"$T/canaries"
printf 'Confidential roadmap: %s\n' "$canary" >"$T/secret.md"
make_repo "$T/repo" --prs 1
start_fake cloud
mkdir -p "$T/pipe/prompts"
ln -s "$T/secret.md" "$T/pipe/prompts/link.md"

# pipeline PROMPT: a cloud stage whose user prompt is the file PROMPT.
pipeline() {
  cat <<JSON
{
  "version": 1,
  "name": "adversarial-prompt-outside-folder",
  "endpoints": { "cloud": { "provider": "ollama", "url": "$cloud_URL", "locality": "cloud",
                            "clearance": "restricted", "api_key_env": "OLLAMA_API_KEY" } },
  "source": { "kind": "git", "label": "public" },
  "stages": { "ask": { "endpoint": "cloud", "model": "gpt-oss:20b", "prompt": "$1" } }
}
JSON
}

for c in "dotdot ../secret.md" "absolute $T/secret.md" "symlink prompts/link.md"; do
  set -- $c
  name=$1 prompt=$2
  pipeline "$prompt" >"$T/pipe/$name.json"
  bh_run "$name-check" check "$T/pipe/$name.json"
  expect_rc "$name: check refuses the pipeline" 2
  expect_contains "$name: naming where and why" "$T/$name-check.err" \
    "$name.json:7:"
  expect_contains "$name: ...the stage's prompt" "$T/$name-check.err" "stages.ask.prompt: prompt template"
  bh_run "$name-run" run "$T/pipe/$name.json" --repo "$T/repo" --base main --state "$T/$name.state"
  expect_rc "$name: run refuses before reading it" 2
  no_canary_at "$T/cloud.log" "$T/canaries" "$name"
  expect_eq "$name: nothing was sent at all" 0 "$(jq -s '[.[] | select(.method == "POST")] | length' "$T/cloud.log")"
  if grep -q -F "$canary" "$T/$name-check.err" "$T/$name-check.out" "$T/$name-run.err"; then
    not_ok "$name: the refusal quotes the file's text"
  else ok "$name: the refusal does not quote the file's text"; fi
done
expect_contains "absolute: the message says why" "$T/absolute-check.err" "is an absolute path"
expect_contains "symlink: the message says why" "$T/symlink-check.err" "lies outside the pipeline file's folder"

# Control: the same file copied into the folder loads (the refusal is about
# where the file is, not what it says).
cp "$T/secret.md" "$T/pipe/prompts/inside.md"
pipeline prompts/inside.md >"$T/pipe/inside.json"
bh_run inside-check check "$T/pipe/inside.json"
expect_rc "control: a prompt inside the folder loads" 0
finish

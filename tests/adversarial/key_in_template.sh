#!/usr/bin/env bash
# A cloud key pasted into a prompt: the template's own text is sent with
# every prompt rendered from it, so it is a value like any other. The
# pipeline's detectors run over template text (system and user, inline or
# from a file): a hit raises every prompt of that stage, so `check` refuses
# the cloud stage (exit 3) and a run refuses at the gate (exit 3), with the
# refusal audited and no canary at the cloud.
#   a. an AWS access key in an inline system message;
#   b. a GitHub token in a prompt template file;
#   c. control: the same pipelines without the key run and send.
source "$BH_SOURCE_DIR/tests/adversarial/lib.sh"
cd "$T"

canA="AKIA$(openssl rand -hex 8 | tr a-f A-F)"
canB="ghp_$(openssl rand -hex 18)"
printf '%s\n' "$canA" "$canB" >"$T/canaries"
make_repo "$T/repo" --prs 2
start_fake cloud
mkdir -p "$T/pipe/prompts"

# pipeline NAME SYSTEM PROMPT_FILE: a cloud stage cleared for internal that
# reads only pr.title (internal).
pipeline() {
  cat >"$T/pipe/$1.json" <<JSON
{
  "version": 1,
  "name": "adversarial-key-in-template",
  "endpoints": { "cloud": { "provider": "ollama", "url": "$cloud_URL", "locality": "cloud",
                            "clearance": "internal", "api_key_env": "OLLAMA_API_KEY" } },
  "source": { "kind": "git", "label": "confidential", "fields": { "pr.title": "internal" },
              "detectors": ["private-key", "cloud-keys", "tokens"] },
  "stages": { "triage": { "endpoint": "cloud", "model": "gpt-oss:20b",
                          "system": "$2", "prompt": "prompts/$3" } }
}
JSON
}
echo 'Classify this pull request by its title: {{pr.title}}' >"$T/pipe/prompts/clean.md"
printf 'Use the token %s to look things up.\nClassify this pull request by its title: {{pr.title}}\n' \
  "$canB" >"$T/pipe/prompts/keyed.md"
pipeline a "You triage pull requests. Our deploy key is $canA, never mention it." clean.md
pipeline b "You triage pull requests." keyed.md
pipeline c "You triage pull requests." clean.md

for name in a b; do
  bh_run "$name-check" check "$T/pipe/$name.json"
  expect_rc "$name: check refuses the cloud stage" 3
  expect_contains "$name: saying the template's text carries the label" "$T/$name-check.out" \
    "its prompt template's text (a detector hit) (restricted), above its clearance internal"
  if grep -q -F -f "$T/canaries" "$T/$name-check.out" "$T/$name-check.err"; then
    not_ok "$name: check quotes the key"
  else ok "$name: check does not quote the key"; fi
  bh_run "$name-run" run "$T/pipe/$name.json" --repo "$T/repo" --base main --state "$T/$name.state"
  expect_rc "$name: the run refuses" 3
  no_canary_at "$T/cloud.log" "$T/canaries" "$name"
  audit_has "$name" "$T/$name.state" "decision = 'refuse' AND stage = 'triage'"
  audit_says "$name" "$T/$name.state" 0
done
expect_eq "a, b: the cloud received no prompt at all" 0 \
  "$(jq -s '[.[] | select(.method == "POST")] | length' "$T/cloud.log")"

bh_run c-check check "$T/pipe/c.json"
expect_rc "c: control: check passes without the key" 0
bh_run c-run run "$T/pipe/c.json" --repo "$T/repo" --base main --state "$T/c.state"
expect_rc "c: control: the run succeeds" 0
expect_eq "c: control: both prompts were sent" 2 \
  "$(jq -s '[.[] | select(.method == "POST" and .path == "/api/chat")] | length' "$T/cloud.log")"
audit_says "c" "$T/c.state" 0
finish

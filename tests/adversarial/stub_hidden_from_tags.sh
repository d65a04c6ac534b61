#!/usr/bin/env bash
# Attack: a local Ollama older than 0.18 (no ":local" names, cloud not
# disabled) holds a cloud stub under a local-looking name and hides it from
# /api/tags and /api/show (fake-llm --hide-stubs): only a chat reply's
# remote_host tells. The first contact of a run with (endpoint, model) must be
# the probe, which carries only public text, so that the stub shows itself
# before any labelled byte is sent.
# Variant "mid-run": the model turns into a stub after the probe passed
# (fake-llm --remote-after 1). The first reply with remote_host must mark the
# model cloud at once: at most the one request it answers has left (a breach,
# audited as a breach record), no later item goes there, and the run exits 3.
# The stub server plays the cloud here: its log must hold no canary (mid-run:
# only the one breached item's).
source "$BH_SOURCE_DIR/tests/adversarial/lib.sh"
cd "$T"

PIPE="$ADV/pipelines/stub_hidden_from_tags.json"
make_repo "$T/repo" --prs 3
start_fake cloud
start_fake stub --server-version 0.17.0 --models coder:7b --remote coder:7b --hide-stubs
export ADV_CLOUD_URL=$cloud_URL ADV_LOCAL_URL=$stub_URL

# --- before the run: the probe shows the stub --------------------------------
expect_eq "setup: /api/tags lists the stub as a local model" "null" \
  "$(curl -s "$stub_URL/api/tags" | jq -r '.models[] | select(.name == "coder:7b") | .remote_host')"
bh_run check check "$PIPE" --online --state "$T/check.state"
expect_rc "check --online refuses the local stage on the hidden stub" 3
expect_contains "check --online says where it saw the stub" "$T/check.out" \
  "model coder:7b: a cloud stub forwarding to https://ollama.com:443 (seen in the probe's reply) — refused"

bh_run run run "$PIPE" --repo "$T/repo" --state "$T/run.state"
expect_rc "run refuses the stage (data withheld)" 3
expect_contains "run says the stub showed in the probe's reply" "$T/run.err" \
  "model 'coder:7b' is a cloud stub that the server forwards to 'https://ollama.com:443' (seen in the probe's reply"
no_canary_at "$T/stub.log" "$T/repo.canaries" "hidden stub"
no_canary_at "$T/cloud.log" "$T/repo.canaries" "hidden stub"
expect_eq "the stub's only chat request is the probe's fixed text" "Reply with OK." \
  "$(jq -r 'select(.path == "/api/chat") | .body | fromjson | .messages[-1].content' "$T/stub.log" | sort -u | tr '\n' '|' | sed 's/|$//')"
audit_has "the probe is audited as model management with the bottom label" "$T/run.state" \
  "url LIKE '%/api/chat' AND label = 'public' AND reason LIKE 'model management (probe model%'"
audit_has "the refusal of the stage is audited" "$T/run.state" \
  "decision = 'refuse' AND stage = 'review' AND reason LIKE '%cloud stub%'"
audit_says "hidden stub: nothing was breached" "$T/run.state" 0

# --- mid-run: a stub made after the probe passed -------------------------------
start_fake mid --server-version 0.17.0 --models coder:7b --remote coder:7b --remote-after 1
export ADV_LOCAL_URL=$mid_URL
bh_run mid run "$PIPE" --repo "$T/repo" --state "$T/mid.state"
expect_rc "mid-run: the run exits 3" 3
expect_contains "mid-run: the run says the server forwarded a request" "$T/mid.err" \
  "the server forwarded this request to 'https://ollama.com:443'"
audit_has "mid-run: a breach record" "$T/mid.state" "decision = 'breach' AND stage = 'review'"
seen=0
while read -r c; do grep -q -F "$c" "$T/mid.log" && seen=$((seen + 1)); done <"$T/repo.canaries"
expect_eq "mid-run: only the one item whose reply showed the stub reached it" 1 "$seen"
expect_eq "mid-run: one request with item data reached the model, then none" 1 \
  "$(jq -s '[.[] | select(.path == "/api/chat") | .body | fromjson | select((.messages // []) | length > 0)
             | select(.messages[-1].content != "Reply with OK.")] | length' "$T/mid.log")"
no_canary_at "$T/cloud.log" "$T/repo.canaries" "mid-run"
# The data that left is on record, and `audit verify` says so (exit 3).
audit_says "mid-run: audit verify reports the breach" "$T/mid.state" 3
finish

#!/usr/bin/env bash
# Server-side local-only enforcement (issue 4). Before a run bulkhead asks a
# local Ollama server for its version and /api/status. A server that honours
# the ":local" suffix (0.18.0 on) gets local stages' models as NAME:local, so
# that a cloud stub (even one /api/tags did not show as such) answers 404
# instead of being forwarded: that 404 is a policy refusal (withheld,
# audited, exit 3) and nothing leaves. An older server gets the names as
# written. enforce_local "off" never adds the suffix; "require" refuses to
# start against a server that enforces neither way. fake-llm's own side of
# it (--server-version, :local, /api/status) is checked first.
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
cd "$T"
make_repo "$T/repo" --prs 1
mkdir -p "$T/p"

# A local reviewer; a cloud summary of the review (everything is public, so
# the static check lets it go to the cloud): when the review is withheld,
# nothing derived from it may reach the cloud either.
cat >"$T/p/enforce.json" <<'JSON'
{
  "version": 1,
  "name": "enforce-local",
  "endpoints": {
    "gpu-box": { "provider": "ollama", "url": "${BULKHEAD_LOCAL_URL}", "locality": "local" },
    "cloud": { "provider": "ollama", "url": "${BULKHEAD_CLOUD_URL}", "locality": "cloud",
               "clearance": "public" }
  },
  "source": { "kind": "git", "label": "public" },
  "stages": {
    "review": { "endpoint": "gpu-box", "model": "qwen3:8b", "user": "Review {{pr.title}}" },
    "summary": { "endpoint": "cloud", "model": "gpt-oss:120b", "user": "Summarize {{review.output}}" }
  }
}
JSON
with_key() { jq --arg v "$1" '.endpoints["gpu-box"].enforce_local = $v' "$T/p/enforce.json"; }
with_key off >"$T/p/off.json"
with_key require >"$T/p/require.json"
jq '.stages.review.model = "mybot"' "$T/p/enforce.json" >"$T/p/stub.json"
jq '.stages.review.model = "qwen3:14b"' "$T/p/enforce.json" >"$T/p/missing.json"

run_bh() { # out-name pipeline local-url → sets rc
  BULKHEAD_LOCAL_URL=$3 BULKHEAD_CLOUD_URL=$cloud_URL bh_run "$1" run "$2" --repo "$T/repo" \
    --state "$T/$1.state"
}
chat_models() { jq -r 'select(.path == "/api/chat") | .body | fromjson | .model' "$T/$1.log" | sort -u | tr '\n' ' ' | sed 's/ $//'; }
paths() { jq -r '"\(.method) \(.path)"' "$T/$1.log" | sort -u | tr '\n' ' ' | sed 's/ $//'; }

start_fake cloud
start_fake new --server-version 0.18.1 --models 'qwen3:8b,mybot' --remote mybot --hide-stubs
start_fake old --server-version 0.12.3 --models 'qwen3:8b'
start_fake nocloud --server-version 0.17.0 --models 'qwen3:8b' --no-cloud

# --- fake-llm behaves like the servers it stands for ------------------------
get() { curl -s -o "$T/body" -w '%{http_code}' "$@"; }
expect_eq "fake: --server-version answers /api/version" '200 0.18.1' \
  "$(get "$new_URL/api/version") $(jq -r .version "$T/body")"
expect_eq "fake: the default version is one without :local" '0.17.0-fake' \
  "$(curl -s "$cloud_URL/api/version" | jq -r .version)"
expect_eq "fake: an old server has no /api/status" 404 "$(get "$old_URL/api/status")"
expect_eq "fake: --no-cloud says so in /api/status" 'true env' \
  "$(curl -s "$nocloud_URL/api/status" | jq -r '"\(.cloud.disabled) \(.cloud.source)"')"
post() { get -H 'Content-Type: application/json' -d "$2" "$1/api/chat"; }
expect_eq "fake: NAME:local runs NAME and echoes the name sent" '200 qwen3:8b:local' \
  "$(post "$new_URL" '{"model":"qwen3:8b:local","stream":false,"messages":[{"role":"user","content":"hi"}]}') $(jq -r .model "$T/body")"
expect_eq "fake: a stub behind :local is not found, under the name sent" "404 model 'mybot:local' not found" \
  "$(post "$new_URL" '{"model":"mybot:local","stream":false,"messages":[{"role":"user","content":"hi"}]}') $(jq -r .error "$T/body")"
expect_eq "fake: :cloud and :local together are refused" '400 use either :local or :cloud, not both' \
  "$(post "$new_URL" '{"model":"x:cloud:local","stream":false,"messages":[{"role":"user","content":"hi"}]}') $(jq -r .error "$T/body")"
expect_eq "fake: --hide-stubs lists the stub as a local model" 'null' \
  "$(curl -s "$new_URL/api/tags" | jq -r '.models[] | select(.name == "mybot") | .remote_host')"
expect_eq "fake: an old server reads :local as part of the name" 404 \
  "$(post "$old_URL" '{"model":"qwen3:8b:local","stream":false,"messages":[{"role":"user","content":"hi"}]}')"
: >"$T/new.log"
: >"$T/old.log"

# --- a new server: the suffix goes, the answer names the model ---------------
run_bh new "$T/p/enforce.json" "$new_URL"
expect_eq "new server: the run succeeds" 0 "$rc"
expect_eq "new server: the local stage's model goes as NAME:local" "qwen3:8b:local" "$(chat_models new)"
expect_eq "new server: the cloud stage's model goes as written" "gpt-oss:120b" "$(chat_models cloud)"
expect_contains "new server: the run says how the server enforces" "$T/new.err" \
  "bulkhead: endpoint 'gpu-box': local-only enforcement by the server: :local names honoured (ollama 0.18.1)"
expect_eq "new server: the probe asked version, status, tags, ps and show" \
  "GET /api/ps GET /api/status GET /api/tags GET /api/version POST /api/chat POST /api/show" "$(paths new)"
"$BULKHEAD" report --state "$T/new.state" --format jsonl >"$T/new.jsonl"
expect_eq "new server: answered_by is the model, without the suffix" "qwen3:8b qwen3:8b" \
  "$(jq -r 'select(.stage == "review") | "\(.answered_by) \(.model)"' "$T/new.jsonl")"
"$BULKHEAD" audit show --state "$T/new.state" >"$T/new.audit"
expect_eq "new server: version and status requests are audited as model management" 2 \
  "$(jq -r 'select(.url | test("/api/(version|status)$")) | .reason' "$T/new.audit" | grep -c '^model management')"
expect "new server: the audit verifies" "$BULKHEAD" audit verify --state "$T/new.state"

# --- enforce_local off: never the suffix --------------------------------------
: >"$T/new.log"
run_bh off "$T/p/off.json" "$new_URL"
expect_eq "off: the run succeeds" 0 "$rc"
expect_eq "off: the model goes as written" "qwen3:8b" "$(chat_models new)"
expect_contains "off: the run says the suffix is not used" "$T/off.err" \
  ":local names honoured (ollama 0.18.1), not used: enforce_local is \"off\""

# --- an old server: no suffix, and it says it does not enforce ---------------
run_bh old "$T/p/enforce.json" "$old_URL"
expect_eq "old server: the run succeeds" 0 "$rc"
expect_eq "old server: the model goes as written" "qwen3:8b" "$(chat_models old)"
expect_contains "old server: the run says nothing is enforced" "$T/old.err" \
  "local-only enforcement by the server: not enforced (ollama 0.12.3: :local names need 0.18.0, and it has no /api/status)"

# --- a stub the list did not show: the server refuses it, bulkhead withholds --
: >"$T/new.log"
: >"$T/cloud.log"
run_bh stub "$T/p/stub.json" "$new_URL"
expect_eq "stub: exit 3 (a policy refusal)" 3 "$rc"
expect_eq "stub: asked for as mybot:local" "mybot:local" "$(chat_models new)"
expect_contains "stub: the refusal names the model" "$T/stub.err" \
  "the server says 'mybot' is not a local model (a cloud stub) and refused to forward it: nothing left the machine"
expect_eq "stub: nothing reached the cloud (the summary never ran)" 0 "$(wc -l <"$T/cloud.log")"
"$BULKHEAD" report --state "$T/stub.state" --format jsonl >"$T/stub.jsonl"
expect_eq "stub: the review is withheld" withheld "$(jq -r 'select(.stage == "review") | .state' "$T/stub.jsonl")"
"$BULKHEAD" audit show --state "$T/stub.state" >"$T/stub.audit"
expect_eq "stub: the refusal is audited" 1 \
  "$(jq -r 'select(.decision == "refuse" and .stage == "review") | .reason' "$T/stub.audit" | grep -c "is not a local model (a cloud stub)")"
expect "stub: the audit verifies" "$BULKHEAD" audit verify --state "$T/stub.state"

# The same stub on an old server, hidden from the lists: the probe (the first
# request to the model, public text only) shows it before anything is sent,
# and the stage becomes cloud, cleared for public — which this stage's input
# is, so it runs as a cloud stage. (tests/adversarial/stub_hidden_from_tags.sh
# has the labelled case.)
start_fake oldstub --server-version 0.12.3 --models mybot --remote mybot --hide-stubs
run_bh oldstub "$T/p/stub.json" "$oldstub_URL"
expect_eq "old server, stub: public input may go to the stub, as to any cloud model" 0 "$rc"
expect_contains "old server, stub: seen in the probe's reply, before anything was sent" "$T/oldstub.err" \
  "model 'mybot' is a cloud stub that the server forwards to 'https://ollama.com:443' (seen in the probe's reply"
expect_contains "old server, stub: the stage ran as cloud" "$T/oldstub.err" \
  "review       cloud  gpu-box"

# --- a model that is simply missing: a failure, with the right pull command --
run_bh missing "$T/p/missing.json" "$new_URL"
expect_eq "missing: exit 4 (a failure, not a refusal)" 4 "$rc"
"$BULKHEAD" report --state "$T/missing.state" --format jsonl >"$T/missing.jsonl"
expect_eq "missing: the error names the pull command without the suffix" 1 \
  "$(jq -r 'select(.stage == "review") | .error' "$T/missing.jsonl" | grep -c 'run "ollama pull qwen3:14b" on that machine')"

# --- enforce_local require ------------------------------------------------------
: >"$T/old.log"
run_bh req-old "$T/p/require.json" "$old_URL"
expect_eq "require, old server: the run refuses to start, exit 3" 3 "$rc"
expect_contains "require, old server: the message says what is missing and what to do" "$T/req-old.err" \
  "endpoint 'gpu-box' ($old_URL): enforce_local is \"require\", but the server enforces local-only neither way"
expect_eq "require, old server: no model call was made" "" \
  "$(jq -r 'select(.path == "/api/chat") | .path' "$T/old.log")"
"$BULKHEAD" audit show --state "$T/req-old.state" >"$T/req-old.audit"
expect_eq "require, old server: the refusal is audited for the local stage" "refuse review" \
  "$(jq -r 'select(.decision == "refuse") | "\(.decision) \(.stage)"' "$T/req-old.audit")"
run_bh req-nocloud "$T/p/require.json" "$nocloud_URL"
expect_eq "require, a server that refuses cloud: the run goes" 0 "$rc"
expect_contains "require, a server that refuses cloud: it says so, with the source" "$T/req-nocloud.err" \
  "the server refuses cloud models (source: env)"
run_bh req-new "$T/p/require.json" "$new_URL"
expect_eq "require, a server that honours :local: the run goes" 0 "$rc"
finish

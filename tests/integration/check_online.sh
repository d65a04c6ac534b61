#!/usr/bin/env bash
# `bulkhead check --online`: everything check does, plus what only the local
# Ollama servers can tell — reachable, version, how the server enforces
# local-only, the needed models present or missing, cloud stubs (a local
# stage on one is refused: exit 3), each model's context length and the
# num_ctx each stage would use. Unreachable: exit 4 naming the endpoint and
# its URL. Every request goes through the gate and is audited. `models`
# shows the enforcement per endpoint too.
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
cd "$T"
mkdir -p "$T/p"
cat >"$T/p/ok.json" <<'JSON'
{
  "version": 1,
  "name": "online",
  "endpoints": {
    "gpu-box": { "provider": "ollama", "url": "${BULKHEAD_LOCAL_URL}", "locality": "local" },
    "cloud": { "provider": "ollama", "url": "${BULKHEAD_CLOUD_URL}", "locality": "cloud" }
  },
  "source": { "kind": "git", "label": "public" },
  "stages": {
    "review": { "endpoint": "gpu-box", "model": "qwen3:8b", "user": "Review {{pr.title}}" },
    "second": { "endpoint": "gpu-box", "model": "qwen3:8b", "user": "Again {{pr.title}}",
                "options": { "num_ctx": 8192 } },
    "plan": { "endpoint": "cloud", "model": "gpt-oss:120b", "user": "Plan {{pr.title}}" }
  }
}
JSON
# The stub stage reads an internal field: more than a stub (cleared for
# public, as a run would clear it) may get.
jq '.source.fields = { "pr.diff": "internal" } |
    .stages.stub = { "endpoint": "gpu-box", "model": "mybot", "user": "Hi {{pr.title}} {{pr.diff}}" }' \
  "$T/p/ok.json" >"$T/p/stub.json"
jq '.stages.gone = { "endpoint": "gpu-box", "model": "gemma3:4b", "user": "Hi {{pr.title}}" }' \
  "$T/p/ok.json" >"$T/p/missing.json"
jq '.endpoints["gpu-box"].enforce_local = "require"' "$T/p/ok.json" >"$T/p/require.json"

start_fake cloud
start_fake local --server-version 0.18.1 --models 'qwen3:8b,mybot' --remote mybot --context-length 40960
start_fake old --server-version 0.12.3 --models 'qwen3:8b'
export BULKHEAD_CLOUD_URL=$cloud_URL

check() { # out-name url args... → sets rc
  local out=$1 url=$2; shift 2
  BULKHEAD_LOCAL_URL=$url bh_run "$out" check "$@"
}

check ok "$local_URL" "$T/p/ok.json" --online --state "$T/state"
expect_eq "everything fine: exit 0" 0 "$rc"
expect_contains "the graph comes first, as without --online" "$T/ok.out" "review"
expect_contains "the endpoint is reachable, with its version" "$T/ok.out" \
  "  gpu-box ($local_URL): reachable, ollama 0.18.1"
expect_contains "the enforcement state" "$T/ok.out" "    enforcement: :local names honoured (ollama 0.18.1)"
expect_contains "the model: present, loaded or not, context length, num_ctx per stage" "$T/ok.out" \
  "    model qwen3:8b: present, not loaded, context length 40960; num_ctx 32768 for review (from /api/show), 8192 for second (options)"
expect_contains "a cloud endpoint is not asked" "$T/ok.out" \
  "  cloud ($cloud_URL): not asked — only local endpoints with a local stage are"
expect_eq "the cloud server got nothing" 0 "$(wc -l <"$T/cloud.log")"
expect_eq "only model management went to the local server" \
  "GET /api/ps GET /api/status GET /api/tags GET /api/version POST /api/show" \
  "$(jq -r '"\(.method) \(.path)"' "$T/local.log" | sort -u | tr '\n' ' ' | sed 's/ $//')"
expect_contains "different num_ctx for one model: a warning" "$T/ok.err" \
  "stages.second: num_ctx 8192 differs from stage 'review' (num_ctx 32768)"
"$BULKHEAD" audit show --state "$T/state" >"$T/audit.jsonl"
expect_eq "one audit record per request" "$(wc -l <"$T/local.log")" "$(wc -l <"$T/audit.jsonl")"
expect "the audit verifies" "$BULKHEAD" audit verify --state "$T/state"

check stub "$local_URL" "$T/p/stub.json" --online --state "$T/state"
expect_eq "a local stage on a cloud stub: exit 3" 3 "$rc"
expect_contains "the stub is shown with its remote host" "$T/stub.out" \
  "    model mybot: a cloud stub forwarding to https://ollama.com:443 (seen in /api/tags) — refused"
expect_contains "the refusal names the stage, the model and the host" "$T/stub.err" \
  "stages.stub: refused: local stage uses model 'mybot', a cloud stub that the server forwards to 'https://ollama.com:443'"
check stub-off "$local_URL" "$T/p/stub.json"
expect_eq "without --online the stub cannot be seen: exit 0" 0 "$rc"

check missing "$local_URL" "$T/p/missing.json" --online --state "$T/state"
expect_eq "a missing model: exit 4" 4 "$rc"
expect_contains "the missing model and what to do" "$T/missing.out" \
  "    model gemma3:4b: missing — run \"ollama pull gemma3:4b\" on that machine, or 'bulkhead models --pull $T/p/missing.json'"

down="http://127.0.0.1:$(closed_port)"
check down "$down" "$T/p/ok.json" --online --state "$T/state"
expect_eq "an unreachable endpoint: exit 4" 4 "$rc"
expect_contains "shown as unreachable" "$T/down.out" "  gpu-box ($down): unreachable"
expect_contains "the error names the endpoint and its URL" "$T/down.err" \
  "bulkhead: endpoint 'gpu-box' ($down): GET /api/version failed:"

check old "$old_URL" "$T/p/ok.json" --online --state "$T/state"
expect_eq "an old server: fine for enforce_local auto" 0 "$rc"
expect_contains "an old server: not enforced, and why" "$T/old.out" \
  "    enforcement: not enforced (ollama 0.12.3: :local names need 0.18.0, and it has no /api/status)"
check require "$old_URL" "$T/p/require.json" --online --state "$T/state"
expect_eq "an old server and enforce_local require: exit 3" 3 "$rc"
expect_contains "the message says what to do" "$T/require.err" \
  "upgrade Ollama to 0.18.0 or later, or start it with OLLAMA_NO_CLOUD=1, or set enforce_local to \"auto\""

check json "$local_URL" "$T/p/ok.json" --online --state "$T/state" --format json
expect_eq "--format json: stdout stays one JSON document" true "$(jq '.verdict.ok' "$T/json.out")"
expect_contains "--format json: the text of the online section goes to stderr" "$T/json.err" "reachable, ollama 0.18.1"
expect_eq "--format json: the online findings are the document's \"online\" member" \
  "gpu-box true 0.18.1 present" \
  "$(jq -r '.online.endpoints[0] | "\(.name) \(.reached) \(.version) \(.models[0].state)"' "$T/json.out")"
expect_eq "... with the num_ctx each stage would use, and where it comes from" "/api/show" \
  "$(jq -r '.online.endpoints[0].models[0].num_ctx[0].from' "$T/json.out")"
check json-offline "$local_URL" "$T/p/ok.json" --format json
expect_eq "... and every other member is as the offline check prints it" \
  "$(jq -S 'del(.online)' "$T/json.out")" "$(jq -S . "$T/json-offline.out")"

check usage "$local_URL" "$T/p/ok.json" --state "$T/state"
expect_eq "--state without --online: a usage error" 2 "$rc"

# models: the enforcement per endpoint, after the table.
set +e
BULKHEAD_LOCAL_URL=$old_URL "$BULKHEAD" models "$T/p/ok.json" --state "$T/state-m" >"$T/models.out" 2>"$T/models.err"
rc=$?
BULKHEAD_LOCAL_URL=$old_URL "$BULKHEAD" models "$T/p/require.json" --state "$T/state-m" >"$T/models-req.out" 2>"$T/models-req.err"
rc_req=$?
set -e
expect_contains "models: the enforcement of the endpoint" "$T/models.out" \
  "enforcement: gpu-box: not enforced (ollama 0.12.3: :local names need 0.18.0, and it has no /api/status)"
expect_eq "models with enforce_local require on an old server: exit 3" 3 "$rc_req"
finish

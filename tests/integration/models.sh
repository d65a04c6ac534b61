#!/usr/bin/env bash
# `bulkhead models`: the table of needed models (present, loaded, cloud
# stub), --pull and --preload on local endpoints, exit codes, one audit
# record per request; and `run` refusing a local stage whose model the
# server lists as a cloud stub, before any data is sent.
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
cd "$T"

mkdir -p "$T/p"
cp "$BH_SOURCE_DIR/pipelines/prompts/review-diff-only.md" "$T/p/review.md"
cat >"$T/p/models.json" <<'JSON'
{
  "version": 1,
  "name": "models-test",
  "labels": ["public", "internal", "confidential", "restricted"],
  "endpoints": {
    "gpu-box": { "provider": "ollama", "url": "${BULKHEAD_LOCAL_URL}", "locality": "local" },
    "oai": { "provider": "openai", "url": "${BULKHEAD_LOCAL_URL}", "locality": "cloud" }
  },
  "source": { "kind": "git", "label": "confidential" },
  "stages": {
    "review": { "endpoint": "gpu-box", "model": "qwen3:8b", "prompt": "review.md" },
    "second": { "endpoint": "gpu-box", "model": "gemma3:4b", "prompt": "review.md" },
    "stub": { "endpoint": "gpu-box", "model": "mybot", "prompt": "review.md", "after": ["review"] },
    "other": { "endpoint": "oai", "model": "gpt-4o-mini", "prompt": "review.md", "clearance": "confidential" }
  }
}
JSON
cat >"$T/p/ok.json" <<'JSON'
{
  "version": 1,
  "name": "models-ok",
  "labels": ["public", "internal", "confidential", "restricted"],
  "endpoints": {
    "gpu-box": { "provider": "ollama", "url": "${BULKHEAD_LOCAL_URL}", "locality": "local" }
  },
  "source": { "kind": "git", "label": "confidential" },
  "stages": { "review": { "endpoint": "gpu-box", "model": "qwen3:8b", "prompt": "review.md" } }
}
JSON
sed -e 's/"qwen3:8b"/"mybot"/' "$T/p/ok.json" >"$T/p/stub.json"

start_fake local --models 'qwen3:8b,mybot:latest' --remote 'mybot:latest'
export BULKHEAD_LOCAL_URL=$local_URL

models() { # out-name args... → sets rc
  local out=$1; shift
  bh_run "$out" models "$@"
}

models list "$T/p/models.json" --state "$T/state"
expect_eq "a missing model: exit 4" 4 "$rc"
expect "qwen3:8b is present, not loaded" grep -Eq '^gpu-box +local +qwen3:8b +present +no +-$' "$T/list.out"
expect "gemma3:4b is missing" grep -Eq '^gpu-box +local +gemma3:4b +missing +no' "$T/list.out"
expect "mybot is shown as a cloud stub with its remote host" \
  grep -Eq '^gpu-box +local +mybot +present +no +https://ollama.com' "$T/list.out"
expect "a cloud openai endpoint is not asked" grep -Eq '^oai +cloud +- +not asked' "$T/list.out"
expect_eq "the fake got only GETs: tags, ps, and version and status for the enforcement" \
  "GET /api/ps GET /api/status GET /api/tags GET /api/version " \
  "$(jq -r '"\(.method) \(.path)"' "$T/local.log" | sort -u | tr '\n' ' ')"

"$BULKHEAD" audit show --state "$T/state" >"$T/audit1.jsonl"
expect_eq "one audit record per request" "$(wc -l <"$T/local.log")" "$(wc -l <"$T/audit1.jsonl")"
expect_eq "audited with the bottom label, no stage, as model management" \
  "allow public  model management" \
  "$(jq -r '"\(.decision) \(.label) \(.stage) \(.reason[0:16])"' "$T/audit1.jsonl" | sort -u)"

models ok "$T/p/ok.json" --state "$T/state"
expect_eq "everything present: exit 0" 0 "$rc"

models usage --state "$T/state"
expect_eq "no pipeline: exit 2" 2 "$rc"
models usage2 "$T/p/ok.json" --bogus
expect_eq "an unknown option: exit 2" 2 "$rc"

# --pull makes the missing model present; --preload loads it.
models pull "$T/p/models.json" --state "$T/state" --pull --preload
sent=$(wc -l <"$T/local.log") # before the test's own requests below
expect_eq "after pulling, everything needed is present: exit 0" 0 "$rc"
expect_contains "pull progress is printed" "$T/pull.err" "pulling gemma3:4b on gpu-box: success"
expect_eq "the fake lists the pulled model" 1 \
  "$(curl -s "$local_URL/api/tags" | jq '[.models[] | select(.name == "gemma3:4b")] | length')"
expect_eq "the preloaded model is loaded" 1 \
  "$(curl -s "$local_URL/api/ps" | jq '[.models[] | select(.name == "gemma3:4b")] | length')"
expect_eq "the pull request asks for a stream" true \
  "$(jq -r 'select(.path == "/api/pull") | .body' "$T/local.log" | jq -r .stream)"
expect_eq "the preload has an empty prompt and keep_alive 10m" '"" 10m' \
  "$(jq -r 'select(.path == "/api/generate") | .body' "$T/local.log" | head -1 | jq -r '"\"\(.prompt)\" \(.keep_alive)"')"
"$BULKHEAD" audit show --state "$T/state" >"$T/audit2.jsonl"
expect_eq "still one audit record per request" "$sent" "$(wc -l <"$T/audit2.jsonl")"
expect "the audit verifies" "$BULKHEAD" audit verify --state "$T/state"

# A pull that fails mid-stream names the endpoint and the model.
start_fake failing --models 'qwen3:8b' --pull-fail 'gemma3:4b'
models pullfail "$T/p/models.json" --state "$T/state-f" --pull --endpoint "gpu-box=$failing_URL"
expect_eq "a failed pull: exit 4" 4 "$rc"
expect_contains "the error names endpoint, model and the server's text" "$T/pullfail.err" \
  "endpoint 'gpu-box' ($failing_URL): pull of 'gemma3:4b' failed: the server reported: pull model manifest: file does not exist"

# An endpoint that is down: exit 4, a clear message.
models down "$T/p/ok.json" --state "$T/state-d" --endpoint "gpu-box=http://127.0.0.1:$(closed_port)"
expect_eq "an unreachable endpoint: exit 4" 4 "$rc"
expect "shown as unreachable" grep -Eq '^gpu-box +local +- +unreachable' "$T/down.out"
expect_contains "the message names the endpoint" "$T/down.err" "endpoint 'gpu-box'"

# An endpoint declared local whose address is public: the gate queries nothing
# there (not even the model list) — a policy refusal, exit 3, not a failure.
models public "$T/p/ok.json" --state "$T/state-pub" --endpoint "gpu-box=http://192.0.2.1:11434"
expect_eq "a refuted local claim: exit 3" 3 "$rc"
expect "shown as refused" grep -Eq '^gpu-box +(local|cloud) +- +refused' "$T/public.out"

# run: a local stage on a model the server lists as a stub is cloud, refused before sending.
make_repo "$T/repo" --prs 1
start_fake stubby --models 'mybot:latest' --remote 'mybot:latest'
set +e
"$BULKHEAD" run "$T/p/stub.json" --repo "$T/repo" --state "$T/state-run" \
  --endpoint "gpu-box=$stubby_URL" >"$T/run.out" 2>"$T/run.err"
rc=$?
set -e
expect_eq "run of a stage on a cloud stub exits 3" 3 "$rc"
expect_contains "the refusal names the model and the remote host" "$T/run.err" \
  "refused to run: cloud stage uses model 'mybot', a cloud stub that the server forwards to 'https://ollama.com"
expect_eq "the fake saw only the probe's GETs (no show for a stub, no model call)" \
  "GET /api/ps GET /api/status GET /api/tags GET /api/version" \
  "$(jq -r '"\(.method) \(.path)"' "$T/stubby.log" | sort -u | tr '\n' ' ' | sed 's/ $//')"
"$BULKHEAD" audit show --state "$T/state-run" >"$T/audit-run.jsonl"
expect_eq "the probe and the refusal are audited" \
  "allow  local|allow  local|allow  local|allow  local|refuse review cloud" \
  "$(jq -r '"\(.decision) \(.stage) \(.locality)"' "$T/audit-run.jsonl" | tr '\n' '|' | sed 's/|$//')"

# The same pipeline on a server where the model is real runs (the probe passes).
start_fake real --models 'mybot:latest'
set +e
"$BULKHEAD" run "$T/p/stub.json" --repo "$T/repo" --state "$T/state-real" \
  --endpoint "gpu-box=$real_URL" >/dev/null 2>"$T/real.err"
rc=$?
set -e
expect_eq "the same model installed for real runs: exit 0" 0 "$rc"
finish

#!/usr/bin/env bash
# `check --online` and `models` ask a local server of the OpenAI dialect
# what that dialect offers (GET /health, GET /v1/models, through the gate,
# audited as model management): reachable, the model the stage asks for
# against the one model llama.cpp's server serves (its alias), the context
# window it states (n_ctx); the server down is exit 4; an endpoint declared
# "ollama" in front of it is named an OpenAI-compatible server (exit 2). And
# `plan` marks a task whose prompt is estimated over the stage's num_ctx
# (exit 4), with the estimate a run fails it with.
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
cd "$T"
mkdir -p "$T/p"
cat >"$T/p/llama.json" <<'JSON'
{
  "version": 1,
  "name": "survey-dialects",
  "endpoints": {
    "llama": { "provider": "openai", "url": "${BULKHEAD_LOCAL_URL}", "locality": "local" }
  },
  "source": { "kind": "git", "label": "public" },
  "stages": {
    "review": { "endpoint": "llama", "model": "qwen3:8b", "user": "Review {{pr.title}}",
                "options": { "num_ctx": 8192 } }
  }
}
JSON
jq '.endpoints.llama.provider = "ollama"' "$T/p/llama.json" >"$T/p/as-ollama.json"

start_fake llama --flavor llama-server --context-length 512
down=$(closed_port)

expect_not_contains() { # what file text
  expect "$1" bash -c '! grep -qF -- "$1" "$0"' "$2" "$3"
}

run_bh() { # out-name url args... → sets rc
  local out=$1 url=$2; shift 2
  BULKHEAD_LOCAL_URL=$url bh_run "$out" "$@"
}

# --- check --online ------------------------------------------------------------
run_bh ok "$llama_URL" check "$T/p/llama.json" --online --state "$T/state"
expect_eq "an OpenAI-dialect server that answers: exit 0" 0 "$rc"
expect_contains "reachable, asked in its dialect" "$T/ok.out" \
  "  llama ($llama_URL): reachable, openai dialect (GET /health ok, GET /v1/models answered, not an Ollama server)"
expect_contains "the alias against the model asked, and n_ctx" "$T/ok.out" \
  "    model qwen3:8b: the server serves one model, 'stories260K'; the stage asks for 'qwen3:8b' (it answers every name with its one model), context length 512 (n_ctx); window 512 for review"
expect_contains "options.num_ctx over the server's window is a warning" "$T/ok.err" \
  "stages.review: options.num_ctx 8192 is larger than the context window of the server (n_ctx 512 in GET /v1/models)"
expect "the server got GET /health" bash -c 'jq -r .path "$0" | grep -qx /health' "$T/llama.log"
expect "the server got GET /v1/models" bash -c 'jq -r .path "$0" | grep -qx /v1/models' "$T/llama.log"
expect_not_contains "no Ollama hint for an OpenAI server" "$T/ok.out" "ollama pull"

run_bh json "$llama_URL" check "$T/p/llama.json" --online --state "$T/state" --format json
expect_eq "json: the server's one model" stories260K "$(jq -r '.online.endpoints[0].serves' "$T/json.out")"
expect_eq "json: its context length" 512 "$(jq -r '.online.endpoints[0].models[0].context_length' "$T/json.out")"
expect_eq "json: the server's dialect" openai "$(jq -r '.online.endpoints[0].server' "$T/json.out")"

run_bh down "http://127.0.0.1:$down" check "$T/p/llama.json" --online --state "$T/state"
expect_eq "the server down: exit 4" 4 "$rc"
expect_contains "the server down: unreachable" "$T/down.out" "  llama (http://127.0.0.1:$down): unreachable"
expect_contains "the server down: the endpoint and the request named" "$T/down.err" \
  "endpoint 'llama' (http://127.0.0.1:$down): GET /v1/models failed"

run_bh wrong "$llama_URL" check "$T/p/as-ollama.json" --online --state "$T/state"
expect_eq "provider ollama in front of llama-server: a configuration error (exit 2)" 2 "$rc"
expect_contains "the dialect hint" "$T/wrong.err" \
  "looks like an OpenAI-compatible server (GET /v1/models answered, /api/version did not): set \"provider\": \"openai\""
expect_not_contains "not called unreachable" "$T/wrong.out" "unreachable"

# An endpoint declared openai whose server is an Ollama: surveyed as Ollama, and said so.
start_fake ollama --models qwen3:8b
run_bh asollama "$ollama_URL" check "$T/p/llama.json" --online --state "$T/state"
expect_eq "an openai endpoint on an Ollama: exit 0" 0 "$rc"
expect_contains "check says it is an Ollama server" "$T/asollama.out" \
  "(an Ollama server, which serves the openai dialect too; asked as Ollama)"
run_bh masollama "$ollama_URL" models "$T/p/llama.json" --state "$T/state"
expect_contains "models says it is an Ollama server" "$T/masollama.out" \
  "server: llama: an Ollama server (ollama "

# --- models -----------------------------------------------------------------------
run_bh models "$llama_URL" models "$T/p/llama.json" --state "$T/state"
expect_eq "models: exit 0" 0 "$rc"
expect "models: the row says the server serves another name" \
  grep -Eq '^llama +local +qwen3:8b +served-as' "$T/models.out"
expect_contains "models: the alias" "$T/models.out" \
  "the server serves one model, 'stories260K'; the stage asks for 'qwen3:8b'"
expect_contains "models: n_ctx" "$T/models.out" "context length 512 (n_ctx in GET /v1/models)"

run_bh mdown "http://127.0.0.1:$down" models "$T/p/llama.json" --state "$T/state"
expect_eq "models: the server down: exit 4" 4 "$rc"
expect "models: unreachable row" grep -Eq '^llama +local +- +unreachable' "$T/mdown.out"

run_bh mwrong "$llama_URL" models "$T/p/as-ollama.json" --state "$T/state"
expect_eq "models: provider ollama in front of llama-server: exit 2" 2 "$rc"
expect_contains "models: the dialect hint" "$T/mwrong.err" "set \"provider\": \"openai\""

# Every request went through the gate: model-management records, a chain that verifies.
expect "the audit verifies" "$BULKHEAD" audit verify --state "$T/state"
expect "the audit has the GET /v1/models requests as model management" \
  bash -c '"$0" audit show --state "$1" | grep -q "model management (list models (v1): GET /v1/models)"' \
  "$BULKHEAD" "$T/state"

# --- plan -------------------------------------------------------------------------
make_repo "$T/repo" --prs 2
printf 'Review this diff.\n{{pr.diff}}\n' >"$T/p/review.md"
jq '.stages.review = { "endpoint": "llama", "model": "qwen3:8b", "prompt": "review.md",
                       "options": { "num_ctx": 8 } }' "$T/p/llama.json" >"$T/p/small.json"
run_bh plan "$llama_URL" plan "$T/p/small.json" --repo "$T/repo"
expect_eq "plan: a prompt over num_ctx: exit 4" 4 "$rc"
expect_contains "plan: the task is marked" "$T/plan.out" "too large: ~"
expect_contains "plan: with the window" "$T/plan.out" "tokens estimated, num_ctx 8"
expect_contains "plan: the summary counts them" "$T/plan.out" \
  "2 tasks are too large for the context window (options.num_ctx)"
run_bh planj "$llama_URL" plan "$T/p/small.json" --repo "$T/repo" --format json
expect_eq "plan json: too_large counted" 2 "$(jq '.too_large' "$T/planj.out")"
jq '.stages.review.options.num_ctx = 100000' "$T/p/small.json" >"$T/p/roomy.json"
run_bh roomy "$llama_URL" plan "$T/p/roomy.json" --repo "$T/repo"
expect_eq "plan: prompts within num_ctx: exit 0" 0 "$rc"
expect_not_contains "plan: nothing marked" "$T/roomy.out" "too large"

# The run fails the same tasks with the same estimate, and its hint names
# bulkhead's own survey, not an Ollama command, on an OpenAI endpoint.
make_repo "$T/one" --prs 1
run_bh plan1 "$llama_URL" plan "$T/p/small.json" --repo "$T/one"
planned=$(grep -o 'too large: ~[0-9]* tokens' "$T/plan1.out" | grep -o '[0-9]*')
run_bh run1 "$llama_URL" run "$T/p/small.json" --repo "$T/one" --state "$T/runstate"
expect_eq "run: the task plan marked fails (exit 4)" 4 "$rc"
expect_contains "run: the same estimate as plan" "$T/run1.err" "the prompt is about $planned tokens"
expect_contains "run: the hint names check --online" "$T/run1.err" \
  "'bulkhead check --online $T/p/small.json' shows the server's"
expect_not_contains "run: no 'ollama show' on an OpenAI endpoint" "$T/run1.err" "ollama show"
expect "run: nothing reached the server's chat route" \
  bash -c '! jq -r .path "$0" | grep -q chat/completions' "$T/llama.log"
finish

#!/usr/bin/env bash
# One chat stage per dialect (ollama, openai, anthropic), each once on a local
# and once on a cloud endpoint, all served by fake-llm: every run is done with
# the fake's deterministic reply and its token counts; each request goes to
# its dialect's path with its dialect's headers; an API key goes only to the
# cloud stage of its endpoint, as Bearer (ollama, openai) or x-api-key
# (anthropic), never to a local endpoint (the loader refuses api_key_env there:
# tests/adversarial/api_key_to_local.sh), and appears in no output or state file.
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
cd "$T"

P="$BH_SOURCE_DIR/fixtures/pipelines/itest/providers.json"
make_repo "$T/repo" --prs 1
start_fake local
start_fake cloud
export ITEST_LOCAL_URL=$local_URL ITEST_CLOUD_URL=$cloud_URL
export ITEST_LOCAL_KEY=sk-itest-LOCALKEY-7c1d2e
export ITEST_OLLAMA_KEY=sk-itest-OLLAMAKEY-93af01
export ITEST_OPENAI_KEY=sk-itest-OPENAIKEY-5be2c4
export ITEST_ANTHROPIC_KEY=sk-itest-ANTHROPICKEY-d41a77
KEYS="$T/keys"
printf '%s\n' LOCALKEY-7c1d2e OLLAMAKEY-93af01 OPENAIKEY-5be2c4 ANTHROPICKEY-d41a77 >"$KEYS"

set +e
"$BULKHEAD" run "$P" --repo "$T/repo" --state "$T/state" >"$T/run.out" 2>"$T/run.err"
rc=$?
set -e
expect_eq "run over three dialects, local and cloud, exits 0" 0 "$rc"
[ "$rc" -eq 0 ] || sed 's/^/#   /' "$T/run.err"

"$BULKHEAD" report --state "$T/state" --format jsonl >"$T/report.jsonl"
"$BULKHEAD" report --state "$T/state" >"$T/report.md"
"$BULKHEAD" audit show --state "$T/state" >"$T/audit.jsonl"
expect_eq "6 results" 6 "$(wc -l <"$T/report.jsonl")"
expect_eq "every task done" done "$(jq -r .state "$T/report.jsonl" | sort -u | tr '\n' ' ' | sed 's/ $//')"

# The reply text fake-llm gives for the request it logged: its server name, the
# model, the number of messages, the first 16 hex of SHA-256 over the message
# contents (strings, or the text of content blocks) and their word count.
# (The contents go through a file: $(...) would drop a trailing newline.)
contents() { # LOG PATH -> $T/contents
  jq -r --arg p "$2" "select(.path == \$p) | $NOT_PROBE | .body" "$T/$1.log" |
    jq -j '.messages[].content | if type == "string" then . else (map(.text // "") | join("")) end' \
    >"$T/contents"
}
expected_reply() { # LOG PATH
  local body sha words model n
  body=$(jq -r --arg p "$2" "select(.path == \$p) | $NOT_PROBE | .body" "$T/$1.log")
  model=$(jq -r .model <<<"$body")
  n=$(jq '.messages | length' <<<"$body")
  contents "$1" "$2"
  sha=$(sha256sum <"$T/contents" | cut -c1-16)
  words=$(wc -w <"$T/contents")
  echo "fake-llm reply: server=$1 model=$model messages=$n prompt_sha256=$sha words=$words"
}
prompt_tokens() { # LOG PATH: prompt bytes / 4 + 1, as fake-llm counts them
  contents "$1" "$2"
  echo $(($(wc -c <"$T/contents") / 4 + 1))
}

check_stage() { # STAGE LOG PATH
  local stage=$1 log=$2 path=$3 row
  row=$(jq -c --arg s "$stage" 'select(.stage == $s)' "$T/report.jsonl")
  expect_eq "$stage: the fake got one request on $path" 1 \
    "$(jq -s --arg p "$path" "[.[] | select(.method == \"POST\" and .path == \$p) | $NOT_PROBE] | length" "$T/$log.log")"
  expect_eq "$stage: output is the fake's reply" "$(expected_reply "$log" "$path")" "$(jq -r .output <<<"$row")"
  expect_eq "$stage: output tokens are the reply's deltas" \
    "$(jq -r .output <<<"$row" | wc -w)" "$(jq -r .output_tokens <<<"$row")"
  expect_eq "$stage: prompt tokens are the fake's count" "$(prompt_tokens "$log" "$path")" \
    "$(jq -r .prompt_tokens <<<"$row")"
  expect "$stage: prompt tokens are non-zero" test "$(jq -r .prompt_tokens <<<"$row")" -gt 0
  expect_eq "$stage: ran at its declared locality" "$log" "$(jq -r .locality <<<"$row")"
}
check_stage ollama-l local /api/chat
check_stage openai-l local /v1/chat/completions
check_stage anthropic-l local /v1/messages
check_stage ollama-c cloud /api/chat
check_stage openai-c cloud /v1/chat/completions
check_stage anthropic-c cloud /v1/messages
expect_eq "nothing went to Ollama's /v1 compatibility layer" 1 \
  "$(jq -s '[.[] | select(.path | startswith("/v1/chat"))] | length' "$T/local.log")"

header() { # LOG PATH HEADER: the header's value, "" when absent
  jq -r --arg p "$2" --arg h "$3" 'select(.path == $p) | .headers | to_entries[] |
    select((.key | ascii_downcase) == ($h | ascii_downcase)) | .value' "$T/$1.log"
}
expect_eq "cloud ollama: Authorization Bearer with its own key" "Bearer $ITEST_OLLAMA_KEY" \
  "$(header cloud /api/chat authorization)"
expect_eq "cloud openai: Authorization Bearer with its own key" "Bearer $ITEST_OPENAI_KEY" \
  "$(header cloud /v1/chat/completions authorization)"
expect_eq "cloud anthropic: x-api-key with its own key" "$ITEST_ANTHROPIC_KEY" \
  "$(header cloud /v1/messages x-api-key)"
expect_eq "cloud anthropic: no Authorization header" "" "$(header cloud /v1/messages authorization)"
expect_eq "cloud ollama/openai: no x-api-key header" "" \
  "$(header cloud /api/chat x-api-key)$(header cloud /v1/chat/completions x-api-key)"
expect_eq "anthropic-version on the cloud request" "2023-06-01" "$(header cloud /v1/messages anthropic-version)"
expect_eq "anthropic-version on the local request" "2023-06-01" "$(header local /v1/messages anthropic-version)"
expect_eq "no local request carries a key header, though every key variable is set" 0 \
  "$(jq -s '[.[] | .headers | keys[] | ascii_downcase | select(. == "authorization" or . == "x-api-key")] | length' "$T/local.log")"
expect_eq "the local server never saw any key" 0 "$(grep -c -F -f "$KEYS" "$T/local.log" || true)"
expect_eq "code (the canary) reached the local server in all three dialects" 3 \
  "$(grep -c -F -f "$T/repo.canaries" "$T/local.log" || true)"
expect_eq "and never the cloud server" 0 "$(grep -c -F -f "$T/repo.canaries" "$T/cloud.log" || true)"

expect_eq "one audit record per request" 6 "$(jq -s '[.[] | select(.stage != "")] | length' "$T/audit.jsonl")"
expect "audit chain verifies" "$BULKHEAD" audit verify --state "$T/state"
expect_eq "no key in stdout, stderr, report, audit or any state file" 0 \
  "$(cat "$T/run.out" "$T/run.err" "$T/report.md" "$T/report.jsonl" "$T/audit.jsonl" \
     $(find "$T/state" -type f) | grep -a -c -F -f "$KEYS" || true)"

# A cloud endpoint whose key variable is unset: a configuration error at start,
# naming the variable, with nothing sent (never a silent anonymous request).
posts() { cat "$T/local.log" "$T/cloud.log" | jq -r .method | grep -c POST || true; }
before=$(posts)
set +e
env -u ITEST_ANTHROPIC_KEY "$BULKHEAD" run "$P" --repo "$T/repo" --state "$T/state-nokey" \
  >"$T/nokey.out" 2>"$T/nokey.err"
rc=$?
set -e
expect_eq "an unset api_key_env is a configuration error (exit 2)" 2 "$rc"
expect_contains "naming the variable" "$T/nokey.err" "ITEST_ANTHROPIC_KEY"
expect_eq "and no model request is sent" "$before" "$(posts)"
expect_eq "no key in that run's output" 0 \
  "$(cat "$T/nokey.out" "$T/nokey.err" | grep -a -c -F -f "$KEYS" || true)"
finish

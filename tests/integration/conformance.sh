#!/usr/bin/env bash
# tests/integration/conformance.sh — fake-llm --flavor llama-server against
# the recordings of a real llama-server (shared/conformance/llama-server/,
# beside the clone: "$BH_SOURCE_DIR/../shared/conformance"; absent, the test
# is skipped with exit 77). Each recorded request is replayed and the answer
# compared with the recording by tests/helpers/conformance.py: status code,
# Content-Type and Server, and the JSON shape (keys and value types at every
# level; for a stream, the sequence of events — role chunk, deltas, finish,
# usage, [DONE] or an error — and each event's shape).
# Compared by value (what a client acts on): finish_reason, object, model
# (the alias), n_ctx, an error's type and code. Not compared: id, created,
# timings, the generated text and token counts (they change per run); a few
# of those are checked against the fake's own rules below instead.
# A self-check first proves the comparison fails when a shape differs.
# Needs curl, jq, python3.
if [ ! -d "${BH_SOURCE_DIR:?}/../shared/conformance/llama-server" ]; then
  echo "conformance: skipped: no recordings at \$BH_SOURCE_DIR/../shared/conformance/llama-server" \
    "(a copy of the shared folder lies beside the clone in CI; put it there to run this test)"
  exit 77
fi
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
REC=$(cd "$BH_SOURCE_DIR/../shared/conformance/llama-server" && pwd)
CMP=(python3 "$BH_SOURCE_DIR/tests/helpers/conformance.py")

# ---- self-check: the comparison sees a changed shape -------------------------
# (a recording matches itself; an altered copy of it does not)
selfcheck() {   # selfcheck DESCRIPTION RECORDING SED-EXPRESSION EXPECTED-TEXT
  local d="$T/self-$RANDOM"
  "${CMP[@]}" split "$REC/$2" "$d"
  expect "self-check: $2 matches itself" "${CMP[@]}" compare "$REC/$2" "$d"
  sed -i -e "$3" "$d/body"
  local rc=0
  "${CMP[@]}" compare "$REC/$2" "$d" >"$d/out" || rc=$?
  expect_eq "self-check: $1 is a mismatch" 1 "$rc"
  expect_contains "self-check: $1 is named" "$d/out" "$4"
}
selfcheck "a role chunk with content \"\" instead of null" 01-bulkhead-body-stream.txt \
  '0,/"content":null/s//"content":""/' 'event[0].choices[0].delta.content: expected null, got string'
selfcheck "a usage: null key on the chunks" 01-bulkhead-body-stream.txt \
  's/"object":"chat.completion.chunk"}$/"object":"chat.completion.chunk","usage":null}/' \
  '.usage: not in the recording'
selfcheck "a missing [DONE]" 01-bulkhead-body-stream.txt '/^data: \[DONE\]$/d' \
  'event sequence: expected role deltas finish usage done, got role deltas finish usage'
selfcheck "a keep-alive comment" 01-bulkhead-body-stream.txt '1i : keep-alive' 'neither an event nor blank'
selfcheck "n_ctx renamed in an error" 04-context-overflow-stream.txt 's/"n_ctx"/"ctx"/' '.error.n_ctx: missing'
selfcheck "another error type" 07-err-bad-json.txt 's/server_error/api_error/' \
  '.error.type: expected "server_error", got "api_error"'
selfcheck "finish_reason stop for length" 02-bulkhead-body-nonstream.txt 's/"length"/"stop"/' \
  '.choices[0].finish_reason: expected "length", got "stop"'

# ---- replay ------------------------------------------------------------------
start_fake llama --flavor llama-server --context-length 512
start_fake llama4k --flavor llama-server --context-length 4096   # recording 14's server
start_fake nojinja --flavor llama-server --context-length 512 --no-jinja   # 16's

server_for() {
  case "$1" in
    14-*) echo "$llama4k_URL" ;;
    16-*) echo "$nojinja_URL" ;;
    *) echo "$llama_URL" ;;
  esac
}

replay() {   # replay RECORDING: the answer in $T/live/<name>/{status,headers,body}
  local name=${1%.txt} d
  d="$T/live/$name"
  "${CMP[@]}" request "$REC/$1" "$d"
  local args=(-sS -N -X "$(cat "$d/method")" -D "$d/headers" -o "$d/body" -w '%{http_code}' --max-time 30)
  [ -s "$d/request_body" ] && args+=(-H 'Content-Type: application/json' --data-binary "@$d/request_body")
  curl "${args[@]}" "$(server_for "$1")$(cat "$d/path")" >"$d/status" 2>"$d/curl.err" || true
}

n=0
for f in "$REC"/[0-9][0-9]-*.txt; do
  name=$(basename "$f")
  replay "$name"
  n=$((n + 1))
  d="$T/live/${name%.txt}"
  if "${CMP[@]}" compare "$f" "$d" >"$d/diff"; then
    ok "$name: status, content type and shape as recorded"
  else
    not_ok "$name: differs from the recording"
    cat "$d/diff"
  fi
done
expect "all 16 recordings were replayed" test "$n" -ge 16

# ---- the fake's own rules, where the recordings' values are not compared --------
L="$T/live"
sse() { sed -n 's/^data: //p' "$L/$1/body" | grep -v '^\[DONE\]$' | jq -s "${@:2}" >/dev/null; }
jqf() { jq "$@" >/dev/null; }
expect "01: max_tokens 8 gives exactly 8 deltas and completion_tokens 8" \
  sse 01-bulkhead-body-stream -e '([.[] | .choices[]?.delta.content | strings] | length) == 8 and .[-1].usage.completion_tokens == 8'
expect "02: max_tokens 8 gives completion_tokens 8, finish length" \
  jqf -e '.usage.completion_tokens == 8 and .choices[0].finish_reason == "length"' "$L/02-bulkhead-body-nonstream/body"
expect "04: the refusal counts the prompt (bytes/4 + 1 = 746) against n_ctx 512" \
  jqf -e '.error.n_prompt_tokens == 746 and .error.n_ctx == 512 and (.error.message | test("746 tokens.*512 tokens"))' \
  "$L/04-context-overflow-stream/body"
expect "06: generation stops when the context is full (prompt + completion = 512)" \
  sse 06-fills-context-stream -e '.[-1].usage.total_tokens == 512 and .[-1].usage.completion_tokens == 512 - .[-1].usage.prompt_tokens'
expect "09: the reply names the alias, not the model asked for" \
  jqf -e '.model == "stories260K"' "$L/09-unknown-model-name/body"
expect "12: json_object is ignored: the content is the default text" \
  jqf -e '.choices[0].message.content | startswith("fake-llm reply:")' "$L/12-response-format-json-object/body"
expect "13: json_schema: the content is JSON of the schema's shape (tags: [strings])" \
  jqf -e '.choices[0].message.content | fromjson | (keys == ["tags"]) and (.tags | length >= 1 and all(type == "string"))' \
  "$L/13-response-format-json-schema/body"
expect "13: then whitespace up to max_tokens, finish length (as the grammar-bound model did)" \
  jqf -e '.usage.completion_tokens == 60 and .choices[0].finish_reason == "length"' "$L/13-response-format-json-schema/body"
expect "15: an assistant prefill with tools fails right after the role chunk" \
  sse 15-midstream-error-toolcall-parse -e 'length == 2 and (.[1].error.message | test("peg-native"))'
expect "16: the --no-jinja server names the flag" \
  jqf -e '.error.message == "tools param requires --jinja flag"' "$L/16-tools-without-jinja/body"
expect "llama-server headers: Server: llama.cpp on every answer" \
  bash -c 'for h in "$1"/*/headers; do grep -qi "^server: llama.cpp" "$h" || exit 1; done' _ "$L"
expect_clean_stop llama llama4k nojinja
finish

#!/usr/bin/env bash
# tests/integration/fake_llm_llama.sh — fake-llm's output caps and structured
# output in the Ollama flavour (options.num_predict, format; OpenAI max_tokens
# and response_format), and what the llama-server flavour does beyond the
# recordings replayed by conformance.sh: scripts, tool calls, faults, the key,
# the alias, the context check with a scripted prompt size, options. Needs
# curl, jq.
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
source "$BH_SOURCE_DIR/tests/helpers/http.sh"
sse() { sed -n 's/^data: //p' "$T/body" | grep -v '^\[DONE\]$' | jq -s "$@"; }
sset() { sse -e "$@" >/dev/null 2>&1; }
ndj() { jq -s "$@" "$T/body" >/dev/null 2>&1; }   # NDJSON lines as an array
hdr() { grep -iq "^$1: $2" "$T/hdrs"; }

cat >"$T/script.json" <<'EOF'
{
  "*": [
    {"match": "^short$", "reply": "one two"},
    {"match": "^long$", "reply": "a b c d e f g h i j"},
    {"match": "^weather", "tool_calls": [{"name": "get_weather", "arguments": {"city": "Bern"}}]},
    {"match": "^broken", "fault": "midstream_error"},
    {"match": "^busy", "fault": "http503"},
    {"match": "^huge prompt", "reply": "x", "prompt_eval_count": 5000}
  ],
  "asked-model": [{"match": "^which$", "reply": "by the name asked"}]
}
EOF
start_fake ol --script "$T/script.json"
msg() { printf '{"model":"m","messages":[{"role":"user","content":"%s"}]%s}' "$1" "${2-}"; }

# ---- Ollama: num_predict -------------------------------------------------------
req ol POST /api/chat "$(msg hello ',"options":{"num_predict":12}')"
expect "ollama: num_predict 12 streams exactly 12 tokens, done_reason length" \
  ndj -e '([.[] | select(.done == false)] | length) == 12 and .[-1].done == true and .[-1].done_reason == "length" and .[-1].eval_count == 12'
expect "ollama: an unscripted model rambles: the default text again" \
  ndj -e '([.[].message.content] | join("")) | test("^fake-llm reply: .* fake-llm reply: ")'
req ol POST /api/chat "$(msg hello ',"stream":false,"options":{"num_predict":3}')"
expect "ollama: non-streamed, num_predict 3: three words, length" \
  jqt '.message.content == "fake-llm reply: server=ol " and .done_reason == "length" and .eval_count == 3'
req ol POST /api/chat "$(msg short ',"stream":false,"options":{"num_predict":5}')"
expect "ollama: a scripted reply shorter than num_predict ends with stop" \
  jqt '.message.content == "one two" and .done_reason == "stop"'
req ol POST /api/chat "$(msg long ',"stream":false,"options":{"num_predict":4}')"
expect "ollama: a scripted reply longer than num_predict is cut there, length" \
  jqt '.message.content == "a b c d " and .done_reason == "length" and .eval_count == 4'
req ol POST /api/chat "$(msg hello ',"stream":false,"options":{"num_predict":-1}')"
expect "ollama: num_predict -1 (no limit) is the plain reply" jqt '.done_reason == "stop" and .eval_count == 7'
req ol POST /api/generate '{"model":"m","prompt":"hi","stream":false,"options":{"num_predict":2}}'
expect "ollama: generate honours num_predict too" jqt '.response == "fake-llm reply: " and .done_reason == "length"'
req ol POST /api/chat "$(msg hello ',"options":{"num_predict":"x"}')"
expect "ollama: a num_predict that is not a number is 400" \
  eval '[ "$STATUS" = 400 ] && jqt ".error | test(\"num_predict\")"'

# ---- Ollama: format -------------------------------------------------------------
req ol POST /api/chat "$(msg hello ',"stream":false,"format":"json"')"
expect "ollama: format json: the content is a JSON object (wrapping the default text)" \
  jqt '.message.content | fromjson | .reply | startswith("fake-llm reply: server=ol")'
schema='{"type":"object","properties":{"findings":{"type":"array","items":{"$ref":"#/$defs/f"}},"note":{"type":"string"}},"required":["findings"],"$defs":{"f":{"type":"object","properties":{"path":{"type":"string"},"line":{"type":"integer"},"severity":{"enum":["info","low","high"]},"ok":{"type":"boolean"},"why":{"type":["null","string"]}},"required":["path","line","severity","ok","why"]}}}'
req ol POST /api/chat "$(msg hello ",\"stream\":false,\"format\":$schema")"
expect "ollama: a format schema: the smallest instance (required keys, one item, enum's first, \$ref followed)" \
  jqt '.message.content | fromjson == {"findings":[{"path":"fake","line":0,"severity":"info","ok":false,"why":"fake"}]}'
req ol POST /api/chat "$(msg hello ",\"stream\":false,\"format\":$schema,\"options\":{\"num_predict\":40}")"
expect "ollama: a schema with num_predict: the JSON, then spaces up to the cap (still valid JSON), length" \
  jqt '(.message.content | fromjson | has("findings")) and (.message.content | endswith("  ")) and .eval_count == 40 and .done_reason == "length"'
req ol POST /api/chat "$(msg short ",\"stream\":false,\"format\":$schema")"
expect "ollama: a script's reply wins over the format" jqt '.message.content == "one two"'
req ol POST /api/chat "$(msg hello ',"format":"yaml"')"
expect "ollama: an unknown format is 400" eval '[ "$STATUS" = 400 ] && jqt ".error | test(\"format\")"'

# ---- OpenAI route of the Ollama flavour -------------------------------------------
req ol POST /v1/chat/completions "$(msg hello ',"max_tokens":4')"
expect "openai: max_tokens 4: four tokens, finish_reason length" \
  jqt '.choices[0].finish_reason == "length" and .usage.completion_tokens == 4'
req ol POST /v1/chat/completions "$(msg hello ',"response_format":{"type":"json_schema","json_schema":{"name":"t","schema":{"type":"object","properties":{"tags":{"type":"array","items":{"type":"string"}}},"required":["tags"]}}}')"
expect "openai: response_format json_schema: JSON of the schema's shape" \
  jqt '.choices[0].message.content | fromjson == {"tags":["fake"]}'
req ol POST /v1/chat/completions "$(msg hello ',"response_format":{"type":"json_object"}')"
expect "openai: response_format json_object: a JSON object" jqt '.choices[0].message.content | fromjson | type == "object"'

# ---- llama-server flavour ---------------------------------------------------------
start_fake ll --flavor llama-server --context-length 1000 --alias my-model --script "$T/script.json"
req ll POST /v1/chat/completions "$(msg hello)"
expect "llama: --alias names the model; no cap: the default text once, stop" \
  jqt '.model == "my-model" and .choices[0].finish_reason == "stop" and (.choices[0].message.content | test("model=my-model")) and (.timings | has("predicted_n"))'
expect "llama: Server: llama.cpp" hdr server llama.cpp
req ll POST /v1/chat/completions '{"model":"asked-model","messages":[{"role":"user","content":"which"}]}'
expect "llama: script rules are looked up by the model name asked for" \
  jqt '.choices[0].message.content == "by the name asked" and .model == "my-model"'
req ll POST /v1/chat/completions "$(msg 'weather in Bern' ',"stream":true')"
expect "llama: a scripted tool call streams a head fragment and arguments that reassemble" \
  sset '([.[].choices[]?.delta.tool_calls[]? | select(.id) | .function.name] == ["get_weather"]) and
        ([.[].choices[]?.delta.tool_calls[]? | select(.id | not) | .function.arguments] | join("") | fromjson) == {"city":"Bern"}'
expect "llama: finish_reason tool_calls; without include_usage the finish chunk carries the timings" \
  sset '.[-1].choices[0].finish_reason == "tool_calls" and (.[-1] | has("timings")) and (map(has("usage")) | any | not)'
expect "llama: no keep-alive comments" bash -c '! grep -q "^:" "$1"' _ "$T/body"
req ll POST /v1/chat/completions "$(msg broken ',"stream":true')"
expect "llama: a midstream_error fault is llama-server's error event, and no [DONE]" \
  eval 'sset ".[-1].error.type == \"server_error\" and .[-1].error.code == 500" && ! grep -q "\[DONE\]" "$T/body"'
req ll POST /v1/chat/completions "$(msg busy)"
expect "llama: a status fault in llama-server's error shape" \
  eval '[ "$STATUS" = 503 ] && jqt ".error | .code == 503 and .type == \"unavailable_error\" and (has(\"param\") | not)"'
req ll POST /v1/chat/completions "$(msg 'huge prompt' ',"stream":true')"
expect "llama: a script's prompt_eval_count counts against the context: 400 exceed_context_size_error" \
  eval '[ "$STATUS" = 400 ] && jqt ".error.type == \"exceed_context_size_error\" and .error.n_prompt_tokens == 5000 and .error.n_ctx == 1000"'
req ll POST /api/chat "$(msg hello)"
expect "llama: Ollama's /api/chat is not there (llama-server's 404)" \
  eval '[ "$STATUS" = 404 ] && jqt ".error.type == \"not_found_error\""'
req ll GET /api/tags
expect "llama: /api/tags lists the alias (as /v1/models)" jqt '.models[0].name == "my-model" and .data[0].meta.n_ctx == 1000'
req ll GET /fake/stats
expect "llama: /fake/stats counts the requests under the alias" jqt '.requests_per_model["my-model"] >= 5'

start_fake key --flavor llama-server --require-key s3cret
req key POST /v1/chat/completions "$(msg hello)"
expect "llama: --require-key: 401 authentication_error without the key" \
  eval '[ "$STATUS" = 401 ] && jqt ".error.type == \"authentication_error\" and .error.message == \"Invalid API Key\""'
req key POST /v1/chat/completions "$(msg hello)" -H 'Authorization: Bearer s3cret'
expect "llama: with the key: 200" test "$STATUS" = 200
req key GET /v1/models
expect "llama: /v1/models needs no key; the default alias is stories260K" \
  eval '[ "$STATUS" = 200 ] && jqt ".data[0].id == \"stories260K\""'

rc=0
"$FAKE" --flavor vllm >/dev/null 2>"$T/flavor.err" || rc=$?
expect_eq "an unknown --flavor is a usage error (exit 2)" 2 "$rc"
expect_contains "the message names the known flavours" "$T/flavor.err" "known: ollama, llama-server"
expect_clean_stop ol ll key
finish

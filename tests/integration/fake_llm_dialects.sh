#!/usr/bin/env bash
# tests/integration/fake_llm_dialects.sh — fake-llm's OpenAI and Anthropic
# dialects (streaming and not), scripted tool calls in all three dialects
# (fragments must reassemble to the script's arguments), --require-key, and
# Ollama model management (/api/show, /api/pull, /api/status, --no-cloud).
# Ends with a clean SIGTERM shutdown (no sanitizer report). Needs curl, jq.
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"

source "$BH_SOURCE_DIR/tests/helpers/http.sh"
sse() { sed -n 's/^data: //p' "$T/body" | grep -v '^\[DONE\]$' | jq -s "$@"; }   # SSE data as an array
sset() { sse -e "$@" >/dev/null 2>&1; }
hdr() { grep -iq "^$1: $2" "$T/hdrs"; }

cat >"$T/script.json" <<'EOF'
{
  "tools": [
    {"match": "weather", "tool_calls": [{"name": "get_weather", "arguments": {"city": "Zürich", "days": 3, "opts": {"unit": "C", "tags": ["a", "b"]}}}]},
    {"match": "two", "reply": "calling two", "tool_calls": [{"name": "a", "arguments": {}}, {"name": "b", "arguments": {"x": 1}}]}
  ],
  "*": [{"match": "^say hi$", "reply": "hi there friend"}]
}
EOF
WANT='{"city":"Zürich","days":3,"opts":{"unit":"C","tags":["a","b"]}}'
start_fake srv --script "$T/script.json" --models 'm1,tools,gpt-oss:120b-cloud,stub' --remote stub \
  --pull-fail 'broken:1b' --context-length 40960

# ---- OpenAI -----------------------------------------------------------------
oa='{"model":"m1","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello world"}]'
req srv POST /v1/chat/completions "$oa}"
expect_eq "openai: non-streaming by default: 200" 200 "$STATUS"
expect "openai: non-streaming is one chat.completion object with finish_reason stop and usage" \
  jqt '.object == "chat.completion" and .choices[0].message.role == "assistant" and .choices[0].finish_reason == "stop"
       and (.usage | .prompt_tokens > 0 and .completion_tokens > 0 and .total_tokens == .prompt_tokens + .completion_tokens)'
want_sha=$(printf '%s%s' 'be brief' 'hello world' | sha256sum | cut -c1-16)
expect "openai: the reply text is the same deterministic text as Ollama's" \
  jqt --arg h "$want_sha" '.choices[0].message.content == "fake-llm reply: server=srv model=m1 messages=2 prompt_sha256=\($h) words=4"'
whole=$(jq -r '.choices[0].message.content' "$T/body")

req srv POST /v1/chat/completions "$oa,\"stream\":true,\"stream_options\":{\"include_usage\":true}}"
expect "openai: a stream is text/event-stream" hdr content-type text/event-stream
expect "openai: every event is 'data: ...' then a blank line, or a ': keep-alive' comment" \
  bash -c '! grep -Ev "^(data: .+|: keep-alive|)$" "$1"' _ "$T/body"
expect "openai: the stream ends with data: [DONE]" bash -c '[ "$(grep -v "^$" "$1" | tail -n 1)" = "data: [DONE]" ]' _ "$T/body"
expect "openai: the stream has at least one keep-alive comment" grep -q '^: keep-alive$' "$T/body"
expect "openai: the first chunk carries the role, content deltas rebuild the whole text" \
  sset --arg w "$whole" '.[0].choices[0].delta.role == "assistant" and ([.[].choices[]?.delta.content // ""] | join("")) == $w'
expect "openai: a finish chunk with delta {} and finish_reason stop, then a usage chunk with choices []" \
  sset '.[-2].choices[0].delta == {} and .[-2].choices[0].finish_reason == "stop" and .[-1].choices == [] and .[-1].usage.total_tokens > 0'
expect "openai: with include_usage, earlier chunks say usage null; all share one id" \
  sset '(.[:-1] | all(has("usage") and .usage == null)) and ([.[].id] | unique | length == 1)'
req srv POST /v1/chat/completions "$oa,\"stream\":true}"
expect "openai: without include_usage there is no usage chunk" sset '.[-1].choices[0].finish_reason == "stop" and (map(has("usage")) | any | not)'

req srv POST /v1/chat/completions '{"model":"tools","stream":true,"messages":[{"role":"user","content":"weather in Zürich?"}]}'
expect "openai: a tool call streams a head fragment (index, id, type, name, arguments \"\")" \
  sset '[.[].choices[]?.delta.tool_calls[]? | select(.id)] | length == 1 and .[0].index == 0 and .[0].type == "function" and .[0].function.name == "get_weather" and .[0].function.arguments == ""'
expect "openai: the arguments come in 2+ string fragments that reassemble to the script's arguments" \
  sset --argjson w "$WANT" '[.[].choices[]?.delta.tool_calls[]? | select(.id | not) | .function.arguments] | length >= 2 and all(type == "string") and (join("") | fromjson) == $w'
expect "openai: finish_reason tool_calls" sset '[.[].choices[]?.finish_reason | select(.)] == ["tool_calls"]'
req srv POST /v1/chat/completions '{"model":"tools","messages":[{"role":"user","content":"weather?"}]}'
expect "openai: non-streaming tool call: content null, arguments a JSON string, finish_reason tool_calls" \
  jqt --argjson w "$WANT" '.choices[0].message.content == null and (.choices[0].message.tool_calls[0] | .type == "function" and .function.name == "get_weather" and (.function.arguments | fromjson) == $w) and .choices[0].finish_reason == "tool_calls"'
req srv POST /v1/chat/completions '{"model":"tools","stream":true,"messages":[{"role":"user","content":"two"}]}'
expect "openai: two calls get indices 0 and 1, text alongside" \
  sset '([.[].choices[]?.delta.tool_calls[]? | select(.id) | .index] == [0, 1]) and ([.[].choices[]?.delta.content // ""] | join("")) == "calling two"'
expect "openai: each call's fragments reassemble by index" \
  sset '[.[].choices[]?.delta.tool_calls[]?] | group_by(.index) | map(map(.function.arguments) | join("") | fromjson) == [{}, {"x": 1}]'

req srv POST /v1/chat/completions '{"model":"m1","messages":[{"role":"user","content":"say hi"}]}'
expect "script: a '*' rule answers any model" jqt '.choices[0].message.content == "hi there friend"'
req srv POST /v1/chat/completions '{"model":"nope","messages":[{"role":"user","content":"x"}]}'
expect "openai: an unknown model is 404 in OpenAI's error shape" \
  eval '[ "$STATUS" = 404 ] && jqt ".error.message == \"model '"'nope'"' not found\" and .error.type == \"invalid_request_error\" and has(\"error\") and (.error | has(\"param\") and has(\"code\"))"'
req srv POST /v1/chat/completions '{"model":"m1","messages":[]}'
expect "openai: no messages is 400 in OpenAI's error shape" eval '[ "$STATUS" = 400 ] && jqt ".error.type == \"invalid_request_error\""'
req srv GET /v1/models
expect "openai: GET /v1/models lists the models" jqt '.object == "list" and ([.data[].id] | index("m1") != null) and all(.data[]; .object == "model")'

# ---- Anthropic ----------------------------------------------------------------
AV=(-H 'anthropic-version: 2023-06-01')
an='{"model":"m1","max_tokens":100,"system":"be brief","messages":[{"role":"user","content":[{"type":"text","text":"hello world"}]}]'
req srv POST /v1/messages "$an}" "${AV[@]}"
expect "anthropic: non-streaming is a message with text content, end_turn and usage" \
  jqt --arg w "$whole" '.type == "message" and .role == "assistant" and .content == [{"type":"text","text":$w}] and .stop_reason == "end_turn" and .stop_sequence == null and .usage.input_tokens > 0 and .usage.output_tokens > 0'
expect "anthropic: a request-id header" hdr request-id req_
req srv POST /v1/messages "$an,\"stream\":true}" "${AV[@]}"
events=$(sed -n 's/^event: //p' "$T/body" | uniq | tr '\n' ' ')
expect_eq "anthropic: events in the documented order" \
  "message_start content_block_start ping content_block_delta content_block_stop message_delta message_stop " "$events"
expect "anthropic: every data's type repeats its event name" \
  bash -c 'diff <(sed -n "s/^event: //p" "$1") <(sed -n "s/^data: //p" "$1" | jq -r .type)' _ "$T/body"
expect "anthropic: text deltas rebuild the text; message_delta has stop_reason end_turn and output_tokens" \
  sset --arg w "$whole" '([.[] | select(.type == "content_block_delta") | .delta.text] | join("")) == $w and (.[] | select(.type == "message_delta") | .delta.stop_reason == "end_turn" and .usage.output_tokens > 0)'
req srv POST /v1/messages '{"model":"tools","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"weather?"}]}' "${AV[@]}"
expect "anthropic: a tool_use block starts with input {} and the script's name" \
  sset '[.[] | select(.type == "content_block_start") | .content_block] == [.[] | select(.type == "content_block_start") | .content_block | select(.type == "tool_use" and .name == "get_weather" and .input == {} and (.id | startswith("toolu_")))]'
expect "anthropic: input_json_delta fragments (2+) reassemble to the script's arguments" \
  sset --argjson w "$WANT" '[.[] | select(.type == "content_block_delta") | .delta | select(.type == "input_json_delta") | .partial_json] | length >= 2 and (join("") | fromjson) == $w'
expect "anthropic: stop_reason tool_use" sset '.[] | select(.type == "message_delta") | .delta.stop_reason == "tool_use"'
req srv POST /v1/messages '{"model":"tools","max_tokens":10,"messages":[{"role":"user","content":"weather?"}]}' "${AV[@]}"
expect "anthropic: non-streaming tool_use block with an object input" \
  jqt --argjson w "$WANT" '.stop_reason == "tool_use" and (.content | length == 1) and .content[0].type == "tool_use" and .content[0].input == $w'
req srv POST /v1/messages "$an}"
expect "anthropic: no anthropic-version header is 400 invalid_request_error" \
  eval '[ "$STATUS" = 400 ] && jqt ".type == \"error\" and .error.type == \"invalid_request_error\" and (.request_id | type == \"string\")"'
req srv POST /v1/messages '{"model":"m1","messages":[{"role":"user","content":"x"}]}' "${AV[@]}"
expect "anthropic: no max_tokens is 400 naming max_tokens" \
  eval '[ "$STATUS" = 400 ] && jqt ".error.type == \"invalid_request_error\" and (.error.message | test(\"max_tokens\"))"'

# ---- Ollama tool calls ---------------------------------------------------------
req srv POST /api/chat '{"model":"tools","messages":[{"role":"user","content":"weather?"}]}'
expect "ollama: a tool call arrives whole in one done:false chunk with object arguments" \
  bash -c 'jq -s -e --argjson w "$2" "[.[] | select(.message.tool_calls)] | length == 1 and (.[0] | .done == false and .message.content == \"\" and (.message.tool_calls[0] | .function.index == 0 and .function.name == \"get_weather\" and .function.arguments == \$w and (.id | type == \"string\")))" "$1" >/dev/null' _ "$T/body" "$WANT"
expect "ollama: then done:true with done_reason stop" bash -c 'jq -s -e ".[-1] | .done and .done_reason == \"stop\"" "$1" >/dev/null' _ "$T/body"
req srv POST /api/chat '{"model":"tools","stream":false,"messages":[{"role":"user","content":"two"}]}'
expect "ollama: non-streaming: text alongside two calls with indices 0 and 1" \
  jqt '.message.content == "calling two" and ([.message.tool_calls[].function.index] == [0, 1]) and .message.tool_calls[1].function.arguments == {"x": 1}'

# ---- model management ----------------------------------------------------------
req srv POST /api/show '{"model":"m1"}'
expect "show: model_info has general.architecture and <arch>.context_length" \
  jqt '.model_info["general.architecture"] as $a | ($a | type == "string") and .model_info["\($a).context_length"] == 40960'
expect "show: capabilities include tools; a local model has no remote_host" jqt '(.capabilities | index("tools") != null) and (has("remote_host") | not)'
req srv POST /api/show '{"model":"stub"}'
expect "show: a --remote stub has remote_host and remote_model" jqt '.remote_host == "https://ollama.com:443" and .remote_model == "stub"'
req srv POST /api/show '{"name":"gpt-oss:120b-cloud"}'
expect "show: a -cloud name (via deprecated 'name') is a stub of the stripped name" jqt '.remote_model == "gpt-oss:120b"'
req srv POST /api/show '{"model":"zzz"}'
expect "show: an unknown model (with --models) is 404 model 'zzz' not found" eval '[ "$STATUS" = 404 ] && jqt ".error == \"model '"'zzz'"' not found\""'
req srv POST /api/show '{}'
expect "show: no model is 400 model is required" eval '[ "$STATUS" = 400 ] && jqt ".error == \"model is required\""'
req srv POST /api/pull '{"model":"new:7b"}'
expect "pull: NDJSON progress: pulling manifest first, success last" \
  bash -c 'jq -s -e ".[0].status == \"pulling manifest\" and .[-1].status == \"success\" and (map(has(\"error\")) | any | not)" "$1" >/dev/null' _ "$T/body"
expect "pull: layer lines carry digest, total and a growing completed" \
  bash -c 'jq -s -e "[.[] | select(.digest)] | length >= 2 and all(.digest | startswith(\"sha256:\")) and all(.total > 0) and ([.[] | .completed // 0] | . == sort) and .[-1].completed == .[-1].total" "$1" >/dev/null' _ "$T/body"
expect "pull: is application/x-ndjson" hdr content-type application/x-ndjson
req srv GET /api/tags
expect "pull: the pulled model is installed afterwards" jqt '[.models[].name] | index("new:7b") != null'
req srv POST /api/pull '{"model":"broken:1b"}'
expect "pull: a --pull-fail model: 200, a progress line, then an error line and nothing more" \
  bash -c '[ "$2" = 200 ] && jq -s -e "length == 2 and .[0].status == \"pulling manifest\" and .[1].error == \"pull model manifest: file does not exist\"" "$1" >/dev/null' _ "$T/body" "$STATUS"
req srv POST /api/pull '{"model":"x:1b","stream":false}'
expect "pull: stream false gives one {status: success}" jqt '. == {"status":"success"}'
req srv GET /api/status
expect "status: cloud enabled, source none" jqt '. == {"cloud":{"disabled":false,"source":"none"}}'
req srv GET /fake/stats
expect "stats: dialect calls count as requests; no faults yet" jqt '.requests_per_model.tools >= 5 and .faults == 0 and .faults_per_kind == {}'
expect_clean_stop srv

# ---- --require-key and --no-cloud ------------------------------------------------
start_fake sec --require-key 's3cret' --no-cloud
req sec POST /v1/chat/completions '{"model":"m","messages":[{"role":"user","content":"x"}]}'
expect "require-key: openai without Authorization is 401 invalid_api_key" eval '[ "$STATUS" = 401 ] && jqt ".error.code == \"invalid_api_key\""'
req sec POST /v1/chat/completions '{"model":"m","messages":[{"role":"user","content":"x"}]}' -H 'Authorization: Bearer wrong'
expect_eq "require-key: a wrong bearer key is 401" 401 "$STATUS"
req sec POST /v1/chat/completions '{"model":"m","messages":[{"role":"user","content":"x"}]}' -H 'Authorization: Bearer s3cret'
expect_eq "require-key: the right bearer key is 200" 200 "$STATUS"
expect "require-key: the 401 body never echoes a key" bash -c '! grep -rq "s3cret\|wrong" "$1"' _ "$T/body"
req sec POST /v1/messages '{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}]}' "${AV[@]}" -H 'Authorization: Bearer s3cret'
expect "require-key: anthropic wants x-api-key (a bearer is not enough): 401 authentication_error" \
  eval '[ "$STATUS" = 401 ] && jqt ".error.type == \"authentication_error\""'
req sec POST /v1/messages '{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}]}' "${AV[@]}" -H 'x-api-key: s3cret'
expect_eq "require-key: anthropic with x-api-key is 200" 200 "$STATUS"
req sec GET /api/status
expect "no-cloud: /api/status says disabled" jqt '.cloud.disabled == true'
req sec POST /api/chat '{"model":"glm-5:cloud","stream":false,"messages":[{"role":"user","content":"x"}]}' -H 'Authorization: Bearer s3cret'
expect "no-cloud: a :cloud model is 403 ollama cloud is disabled" \
  eval '[ "$STATUS" = 403 ] && jqt ".error == \"ollama cloud is disabled: remote model is unavailable\""'
req sec POST /api/show '{"model":"glm-5:cloud"}' -H 'Authorization: Bearer s3cret'
expect "no-cloud: show of a :cloud model is 403 ...details are unavailable" \
  eval '[ "$STATUS" = 403 ] && jqt ".error | endswith(\"remote model details are unavailable\")"'
req sec POST /api/chat '{"model":"local","stream":false,"messages":[{"role":"user","content":"x"}]}' -H 'Authorization: Bearer s3cret'
expect_eq "no-cloud: a local model still answers" 200 "$STATUS"
expect_clean_stop sec

finish

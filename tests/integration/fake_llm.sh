#!/usr/bin/env bash
# tests/integration/fake_llm.sh — drives build/fake-llm over 127.0.0.1 with
# curl and checks the Ollama wire format, model residency, the request log
# and a clean shutdown. Every check runs; the script fails if any failed.
# Needs curl, jq and sha256sum.
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"

declare -A REQS=() # requests sent per server, for the log's line count
STATUS='' BODY=''

# check DESCRIPTION COMMAND...: expect, with the last reply shown when it fails
check() {
    local desc=$1
    shift
    if "$@"; then ok "$desc"; else not_ok "$desc (status $STATUS, body: ${BODY:0:300})"; fi
}

jqok() { jq -e "$@" >/dev/null 2>&1 <<<"$BODY"; }   # jqok FILTER [jq args]: BODY satisfies FILTER

call() {   # call SERVER METHOD PATH [BODY [CURL-ARGS...]]: sets STATUS and BODY
    local server=$1 method=$2 path=$3 data=${4-} url_var="${1}_URL"
    shift $(($# < 4 ? $# : 4))
    local args=(-sS -N -X "$method" -o "$T/out.body" -D "$T/out.headers" -w '%{http_code}' --max-time 60)
    [ -n "$data" ] && args+=(-H 'Content-Type: application/json' --data-binary "$data")
    : >"$T/out.body"
    STATUS=$(curl "${args[@]}" "$@" "${!url_var}$path") || STATUS=000
    REQS[$server]=$((${REQS[$server]:-0} + 1))
    BODY=$(cat "$T/out.body")
}

header_is() { grep -iq "^$1: $2" "$T/out.headers"; }

# ---- server "local": any model name, a log, a little latency per token ----
start_fake local --token-ms 5

call local GET /
check "GET / says Ollama is running" [ "$STATUS" = 200 -a "$BODY" = "Ollama is running" ]
call local GET /api/version
check "GET /api/version answers 0.17.0-fake (the default --server-version)" jqok '.version == "0.17.0-fake"'
call local GET /api/nothing
check "an unknown path is 404 {\"error\":\"not found\"}" eval '[ "$STATUS" = 404 ] && jqok ".error == \"not found\""'
check "binds 127.0.0.1 only (127.0.0.2 is refused)" \
    bash -c '! curl -s --max-time 5 -o /dev/null "http://127.0.0.2:$1/"' _ "$local_PORT"

chat='{"model":"m1","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello world"}]}'
call local POST /api/chat "$chat"
lines=$(grep -c '' <<<"$BODY" || true)
check "streaming chat is application/x-ndjson" header_is content-type application/x-ndjson
check "streaming chat sends several lines, each one JSON object" \
    eval '[ "$STATUS" = 200 ] && [ "$lines" -ge 3 ] && ! grep -qv "^{.*}$" <<<"$BODY" && jqok -s "length == $lines"'
check "every chunk but the last is done:false with a content delta" \
    jqok -s '.[:-1] | all(.done == false and (.message.content | type == "string" and length > 0))'
check "the last chunk is done:true, done_reason stop, eval_count = deltas, integer ns metrics" \
    jqok -s '(length - 1) as $n | .[-1] | .done == true and .done_reason == "stop" and .eval_count == $n
             and ([.total_duration, .load_duration, .prompt_eval_count, .prompt_eval_duration, .eval_duration]
                  | all(type == "number" and . > 0 and . == floor))'
streamed=$(jq -j '.message.content' <<<"$BODY" || true)

call local POST /api/chat "${chat%\}},\"stream\":false}"
check "non-streaming chat is one application/json object with the whole text" \
    eval 'header_is content-type application/json && jqok --arg s "$streamed" ".done == true and .done_reason == \"stop\" and .message.role == \"assistant\" and .message.content == \$s"'
want_sha=$(printf '%s%s' 'be brief' 'hello world' | sha256sum | cut -c1-16)
check "the reply names server, model, message count, prompt hash and word count" \
    jqok --arg h "$want_sha" '.message.content == "fake-llm reply: server=local model=m1 messages=2 prompt_sha256=\($h) words=4"'
first=$(jq -r .message.content <<<"$BODY" || true)
call local POST /api/chat "${chat%\}},\"stream\":false}"
check "the same request gives the same reply" jqok --arg f "$first" '.message.content == $f'
call local POST /api/chat '{"model":"m1","stream":false,"messages":[{"role":"user","content":"hello world!"}]}'
check "another prompt gives another reply" jqok --arg f "$first" '.message.content != $f'

call local POST /api/generate '{"model":"m2","prompt":"why is the sky blue"}'
check "streaming generate carries the text in response, then done:true" \
    jqok -s '.[:-1] | all(.done == false and (.response | length > 0))' 
check "generate's last chunk has done_reason stop and eval_count" \
    jqok -s '(length - 1) as $n | .[-1] | .done and .done_reason == "stop" and .eval_count == $n'

call local POST /api/chat '{"messages":[{"role":"user","content":"x"}]}'
check "chat without a model is 400 model is required" eval '[ "$STATUS" = 400 ] && jqok ".error == \"model is required\""'
call local POST /api/chat ''
check "an empty body is 400 missing request body" eval '[ "$STATUS" = 400 ] && jqok ".error == \"missing request body\""'
call local POST /api/chat '{"model":'
check "bad JSON is 400 with an error text" eval '[ "$STATUS" = 400 ] && jqok ".error | test(\"JSON\")"'
call local POST /api/chat '{"model":"m1","messages":[],"keep_alive":"300"}'
check "a keep_alive without a unit is 400, as in Go" eval '[ "$STATUS" = 400 ] && jqok ".error | test(\"missing unit\")"'
call local GET /api/tags
check "without --models, tags lists every model seen" jqok '[.models[].name] == ["m1", "m2"]'

canary="canary-$RANDOM$RANDOM"
call local POST /api/chat "{\"model\":\"m1\",\"stream\":false,\"messages\":[{\"role\":\"user\",\"content\":\"$canary\"}]}" \
    -H "X-Canary: $canary"
check "the log holds the body as soon as the client has its reply" \
    bash -c 'tail -n 1 "$1" | jq -e --arg c "$2" ".method == \"POST\" and .path == \"/api/chat\" and (.body | contains(\$c))" >/dev/null' _ "$T/local.log" "$canary"
check "the log holds the request headers" \
    bash -c 'tail -n 1 "$1" | jq -e --arg c "$2" ".headers[\"X-Canary\"] == \$c" >/dev/null' _ "$T/local.log" "$canary"
check "the log has one JSON line per request" \
    bash -c '[ "$(jq -c . "$1" | wc -l)" -eq "$2" ] && [ "$(wc -l <"$1")" -eq "$2" ]' _ "$T/local.log" "${REQS[local]}"
call local GET /fake/stats
check "stats count chat and generate requests per model (a 400 names no model)" \
    jqok '.requests_per_model == {"m1": 5, "m2": 1} and .name == "local"'
expect_clean_stop local

# ---- server "pool": installed models, one slot, simulated load time ----
start_fake pool --models 'a,b:7b' --slots 1 --load-ms 50

call pool GET /api/tags
check "with --models, tags lists the installed models" jqok '[.models[].name] == ["a", "b:7b"]'
call pool POST /api/chat '{"model":"zzz","messages":[{"role":"user","content":"x"}]}'
check "with --models, an unknown model is 404 model 'zzz' not found" \
    eval '[ "$STATUS" = 404 ] && jqok ".error == \"model '"'zzz'"' not found\""'
call pool GET /api/ps
check "nothing is resident at first" jqok '.models == []'
call pool POST /api/generate '{"model":"a"}'
check "generate without a prompt preloads: done_reason load" \
    jqok '.model == "a" and .response == "" and .done == true and .done_reason == "load"'
call pool GET /api/ps
check "after the preload, ps lists a with size, size_vram, expires_at, context_length" \
    jqok '[.models[] | .name] == ["a"] and (.models[0] | .size > 0 and .size_vram > 0 and (.expires_at | type == "string") and .context_length == 4096)'
call pool POST /api/chat '{"model":"b:7b","stream":false,"messages":[{"role":"user","content":"x"}]}'
check "a cold model reports load_duration = 1 ms + --load-ms" jqok '.load_duration == 51000000'
call pool GET /api/ps
check "with one slot, loading b evicts a" jqok '[.models[].name] == ["b:7b"]'
call pool POST /api/chat '{"model":"B:7B","stream":false,"messages":[{"role":"user","content":"x"}]}'
check "a resident model reports load_duration 1 ms (names match case-insensitively)" jqok '.load_duration == 1000000'
call pool POST /api/chat '{"model":"a:latest","stream":false,"messages":[{"role":"user","content":"x"}]}'
call pool GET /fake/stats
check "stats count loads per model (a loaded twice, b once)" \
    jqok '.loads_per_model == {"a": 2, "b:7b": 1} and .loads == 3 and .resident == ["a"] and .requests_per_model == {"a": 2, "b:7b": 2}'
call pool POST /api/generate '{"model":"a","keep_alive":0}'
check "generate with keep_alive 0 unloads: done_reason unload" jqok '.done_reason == "unload" and .response == ""'
call pool GET /api/ps
check "after the unload, ps is empty" jqok '.models == []'
ctx() { printf '{"model":"a","stream":false,"options":{"num_ctx":%s},%s"messages":[{"role":"user","content":"x"}]}' "$@"; }
call pool POST /api/chat "$(ctx 8192 '')"
call pool POST /api/chat "$(ctx 8192 '')"
check "the same num_ctx keeps the model resident" jqok '.load_duration == 1000000'
call pool GET /api/ps
check "ps shows the num_ctx the model was loaded with" jqok '.models[0].context_length == 8192'
call pool POST /api/chat "$(ctx 2048 '')"
check "another num_ctx reloads the model, as Ollama's scheduler does" jqok '.load_duration == 51000000'
call pool POST /api/chat "$(ctx 2048 '"keep_alive":"0s",')"
call pool GET /api/ps
check "a chat with keep_alive \"0s\" unloads the model after answering" jqok '.models == []'
head -c $((65 << 20)) /dev/zero | tr '\0' 'x' >"$T/big.json"
call pool POST /api/chat '' --data-binary "@$T/big.json"
check "a body over 64 MiB is 413" [ "$STATUS" = 413 ]
expect_clean_stop pool

finish

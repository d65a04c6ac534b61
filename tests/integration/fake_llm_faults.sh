#!/usr/bin/env bash
# tests/integration/fake_llm_faults.sh — fake-llm's --script faults in each
# dialect: status codes and headers, a cut stream that really ends without
# its final chunk (curl exit 18), garbage and error lines mid-stream, a
# stall after the headers, a redirect, a big reply, "times" (fail twice then
# succeed), "echo" (the reply quotes the message's matching lines), the fault
# counters in /fake/stats, and script validation.
# Ends with a clean SIGTERM shutdown (no sanitizer report). Needs curl, jq.
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"

source "$BH_SOURCE_DIR/tests/helpers/http.sh"
hdr() { grep -iq "^$1: $2" "$T/hdrs"; }
no_hdr() { ! grep -iq "^$1:" "$T/hdrs"; }
# Bodies for the three dialects, with the user's text $1.
ollama() { printf '{"model":"m","messages":[{"role":"user","content":"%s"}]%s}' "$1" "${2-}"; }
openai() { printf '{"model":"m","messages":[{"role":"user","content":"%s"}]%s}' "$1" "${2-}"; }
anthro() { printf '{"model":"m","max_tokens":9,"messages":[{"role":"user","content":"%s"}]%s}' "$1" "${2-}"; }
AV=(-H 'anthropic-version: 2023-06-01')

cat >"$T/script.json" <<'EOF'
{
  "m": [
    {"match": "flaky", "fault": "http500", "times": 2},
    {"match": "flaky", "reply": "finally"},
    {"match": "^e500$", "fault": "http500"},
    {"match": "^e429$", "fault": "http429", "retry_after": 7},
    {"match": "^e429bare$", "fault": "http429"},
    {"match": "^e503$", "fault": "http503"},
    {"match": "^e529$", "fault": "http529"},
    {"match": "^e401$", "fault": "http401"},
    {"match": "^e404$", "fault": "http404"},
    {"match": "^cut$", "fault": "cut"},
    {"match": "^garbage$", "fault": "invalid_json"},
    {"match": "^boom$", "fault": "midstream_error"},
    {"match": "^slow$", "fault": "stall", "stall_ms": 3000},
    {"match": "^short stall$", "fault": "stall", "stall_ms": 100},
    {"match": "^moved$", "fault": "redirect", "location": "http://127.0.0.1:9/elsewhere"},
    {"match": "^huge$", "fault": "big", "mb": 2},
    {"match": "CANARY-[0-9]+", "echo": true, "reply": "Quoting:"},
    {"match": "QUOTE-ME", "echo": true},
    {"match": "one.two", "echo": true, "reply": "nothing to quote"},
    {"match": "^copy1", "copy": "TOKEN-[0-9]+-([a-z0-9]+)", "reply": "<{{copy}}> and <{{copy}}>"},
    {"match": "^copy2", "copy": "TOKEN-[0-9]+", "copy_as": "spaced", "reply": "[{{copy}}]"},
    {"match": "^copy3", "copy": "TOKEN-[0-9]+", "copy_as": "zero-width", "reply": "[{{copy}}]"},
    {"match": "^copy4", "copy": "x-([a-z]+)", "copy_as": "cyrillic", "reply": "[{{copy}}]"},
    {"match": "^copy5", "copy": "Tok[a-z]+", "copy_as": "upper", "reply": "[{{copy}}]"},
    {"match": "^copy6", "copy": "T[A-Z]+-9", "copy_as": "fullwidth", "reply": "[{{copy}}]"},
    {"match": "^copy7", "copy": "NOWHERE", "reply": "[{{copy}}]"}
  ]
}
EOF
start_fake f --script "$T/script.json"

# ---- times: fail twice, then succeed ----
req f POST /api/chat "$(ollama flaky ',"stream":false')"
first=$STATUS
req f POST /api/chat "$(ollama 'still flaky' ',"stream":false')"
second=$STATUS
req f POST /api/chat "$(ollama 'flaky again' ',"stream":false')"
expect_eq "times 2: two 500s, then the next rule answers" "500 500 200" "$first $second $STATUS"
expect "times 2: the third answer is the next rule's reply" jqt '.message.content == "finally"'
req f POST /api/chat "$(ollama 'no rule matches me' ',"stream":false')"
expect "a request no rule matches gets the default reply" jqt '.message.content | startswith("fake-llm reply: server=f model=m")'

# ---- echo: the reply quotes the lines the rule's regex matches ----
QUOTED='Quoting:\n> a CANARY-1 b\n> c CANARY-2'
req f POST /api/chat "$(ollama 'a CANARY-1 b\nplain line\nc CANARY-2' ',"stream":false')"
expect "echo (ollama): the reply, then each matching line as '> line', joined with newlines" \
  jqt --arg want "$(printf "$QUOTED")" '.message.content == $want'
req f POST /api/chat "$(ollama 'a CANARY-1 b\nplain line\nc CANARY-2')"
expect "echo (ollama stream): the deltas add up to the same text" \
  bash -c '[ "$(jq -j ".message.content" "$1")" = "$(printf "$2")" ]' _ "$T/body" "$QUOTED"
req f POST /v1/chat/completions "$(openai 'a CANARY-1 b\nplain line\nc CANARY-2' ',"stream":true')"
expect "echo (openai stream): the deltas add up to the same text" \
  bash -c '[ "$(sed -n "s/^data: //p" "$1" | grep -v "^\[DONE\]$" | jq -j ".choices[]?.delta.content // \"\"")" = "$(printf "$2")" ]' _ "$T/body" "$QUOTED"
req f POST /v1/messages "$(anthro 'a CANARY-1 b\nplain line\nc CANARY-2')" "${AV[@]}"
expect "echo (anthropic): the same text" jqt --arg want "$(printf "$QUOTED")" '.content[0].text == $want'
req f POST /api/chat "$(ollama 'intro\nx QUOTE-ME y\r\noutro QUOTE-ME' ',"stream":false')"
expect "echo without reply: only the quoted lines, a CRLF line without its CR" \
  jqt '.message.content == "> x QUOTE-ME y\n> outro QUOTE-ME"'
req f POST /api/chat "$(ollama 'one\ntwo' ',"stream":false')"
expect "echo: a regex that matches only across lines applies but quotes nothing" \
  jqt '.message.content == "nothing to quote"'

# ---- copy: the first match of a regex, in another spelling ----
copy_is() {  # copy_is WHAT MESSAGE WANT
  req f POST /api/chat "$(ollama "$2" ',"stream":false')"
  expect "copy: $1" jqt --arg want "$(printf "$3")" '.message.content == $want'
}
copy_is "the first group of the first match, at every {{copy}}" 'copy1 x TOKEN-7-ab12 TOKEN-8-zz' '<ab12> and <ab12>'
copy_is "spaced" 'copy2 TOKEN-7' '[T O K E N - 7]'
copy_is "zero-width spaces between characters" 'copy3 TOKEN-7' '[T\342\200\213O\342\200\213K\342\200\213E\342\200\213N\342\200\213-\342\200\2137]'
copy_is "cyrillic look-alikes" 'copy4 x-bad' '[b\320\260d]' # a is Cyrillic, b and d have none
copy_is "upper-cased" 'copy5 Token' '[TOKEN]'
copy_is "full-width" 'copy6 TOK-9' '[\357\274\264\357\274\257\357\274\253\357\274\215\357\274\231]'
copy_is "no match: nothing" 'copy7 here' '[]'

# ---- status faults, per dialect ----
req f POST /api/chat "$(ollama e500)"
expect "http500 (ollama): 500 {\"error\": text}" eval '[ "$STATUS" = 500 ] && jqt ".error | type == \"string\""'
req f POST /v1/chat/completions "$(openai e500)"
expect "http500 (openai): 500 in OpenAI's shape" eval '[ "$STATUS" = 500 ] && jqt ".error.type == \"api_error\" and (.error.message | length > 0)"'
req f POST /v1/messages "$(anthro e500)" "${AV[@]}"
expect "http500 (anthropic): 500 api_error" eval '[ "$STATUS" = 500 ] && jqt ".type == \"error\" and .error.type == \"api_error\""'
req f POST /api/chat "$(ollama e429)"
expect "http429 with retry_after: 429 and Retry-After: 7" eval '[ "$STATUS" = 429 ] && hdr retry-after 7'
req f POST /v1/chat/completions "$(openai e429)"
expect "http429 (openai): rate_limit_exceeded and Retry-After" eval '[ "$STATUS" = 429 ] && hdr retry-after 7 && jqt ".error.code == \"rate_limit_exceeded\""'
req f POST /v1/messages "$(anthro e429)" "${AV[@]}"
expect "http429 (anthropic): rate_limit_error and Retry-After" eval '[ "$STATUS" = 429 ] && hdr retry-after 7 && jqt ".error.type == \"rate_limit_error\""'
req f POST /api/chat "$(ollama e429bare)"
expect "http429 without retry_after: no Retry-After header" eval '[ "$STATUS" = 429 ] && no_hdr retry-after'
req f POST /api/chat "$(ollama e503)"
expect "http503: Ollama's exact server-busy text, no Retry-After" \
  eval '[ "$STATUS" = 503 ] && no_hdr retry-after && jqt ".error == \"server busy, please try again.  maximum pending requests exceeded\""'
req f POST /v1/messages "$(anthro e529)" "${AV[@]}"
expect "http529 (anthropic): 529 overloaded_error" eval '[ "$STATUS" = 529 ] && jqt ".error.type == \"overloaded_error\""'
req f POST /api/chat "$(ollama e401)"
expect "http401 (ollama): unauthorized with a signin_url" eval '[ "$STATUS" = 401 ] && jqt ".error == \"unauthorized\" and (.signin_url | startswith(\"https://ollama.com/connect\"))"'
req f POST /v1/messages "$(anthro e401)" "${AV[@]}"
expect "http401 (anthropic): authentication_error" eval '[ "$STATUS" = 401 ] && jqt ".error.type == \"authentication_error\""'
req f POST /api/chat "$(ollama e404)"
expect "http404 (ollama): model 'm' not found" eval '[ "$STATUS" = 404 ] && jqt ".error == \"model '"'m'"' not found\""'
req f POST /v1/chat/completions "$(openai e404)"
expect "http404 (openai): model_not_found" eval '[ "$STATUS" = 404 ] && jqt ".error.code == \"model_not_found\""'
req f POST /api/chat "$(ollama moved)"
expect "redirect: 307 with the script's Location" eval '[ "$STATUS" = 307 ] && hdr location "http://127.0.0.1:9/elsewhere"'

# ---- stream faults ----
req f POST /api/chat "$(ollama cut)"
expect "cut (ollama): 200, then curl reports a transfer cut short (exit 18)" eval '[ "$STATUS" = 200 ] && [ "$CURL_RC" = 18 ]'
expect "cut (ollama): some whole chunks arrived" bash -c '[ "$(grep -c "\"done\":false" "$1")" -ge 1 ]' _ "$T/body"
expect "cut (ollama): no done:true chunk, and the body ends mid-line" \
  bash -c '! grep -q "\"done\":true" "$1" && [ -n "$(tail -c 1 "$1")" ]' _ "$T/body"
req f POST /v1/chat/completions "$(openai cut ',"stream":true')"
expect "cut (openai): exit 18, no finish chunk, no [DONE]" \
  eval '[ "$CURL_RC" = 18 ] && ! grep -q "finish_reason\":\"stop" "$T/body" && ! grep -q "\[DONE\]" "$T/body"'
req f POST /v1/messages "$(anthro cut ',"stream":true')" "${AV[@]}"
expect "cut (anthropic): exit 18, no message_stop" eval '[ "$CURL_RC" = 18 ] && ! grep -q "message_stop" "$T/body"'
req f POST /api/chat "$(ollama cut ',"stream":false')"
expect "cut (not streaming): exit 18 and half an object" eval '[ "$CURL_RC" = 18 ] && ! jqt "."'

req f POST /api/chat "$(ollama garbage)"
expect "invalid_json (ollama): one line is not JSON, the others are, and the stream completes" \
  bash -c '[ "$2" = 0 ] && [ "$(while IFS= read -r l; do jq -e . >/dev/null 2>&1 <<<"$l" || echo bad; done <"$1" | wc -l)" = 1 ] && tail -n 1 "$1" | jq -e .done >/dev/null' _ "$T/body" "$CURL_RC"
req f POST /v1/chat/completions "$(openai garbage ',"stream":true')"
expect "invalid_json (openai): a data line that is not JSON" \
  bash -c '[ "$(sed -n "s/^data: //p" "$1" | grep -v "^\[DONE\]$" | while IFS= read -r l; do jq -e . >/dev/null 2>&1 <<<"$l" || echo bad; done | wc -l)" = 1 ]' _ "$T/body"

req f POST /api/chat "$(ollama boom)"
expect "midstream_error (ollama): 200, chunks, then a last line {\"error\": ...} and no done:true" \
  eval '[ "$STATUS" = 200 ] && [ "$CURL_RC" = 0 ] && tail -n 1 "$T/body" | jq -e ".error == \"an error was encountered while running the model\"" >/dev/null && ! grep -q "\"done\":true" "$T/body" && grep -q "\"done\":false" "$T/body"'
req f POST /v1/messages "$(anthro boom ',"stream":true')" "${AV[@]}"
expect "midstream_error (anthropic): event: error with overloaded_error, no message_stop" \
  eval '[ "$STATUS" = 200 ] && [ "$(grep "^event: " "$T/body" | tail -n 1)" = "event: error" ] && sed -n "s/^data: //p" "$T/body" | tail -n 1 | jq -e ".error.type == \"overloaded_error\"" >/dev/null && ! grep -q message_stop "$T/body"'
req f POST /v1/chat/completions "$(openai boom ',"stream":true')"
expect "midstream_error (openai): a data: {error} line and no [DONE]" \
  eval '[ "$STATUS" = 200 ] && sed -n "s/^data: //p" "$T/body" | tail -n 1 | jq -e ".error.message | length > 0" >/dev/null && ! grep -q "\[DONE\]" "$T/body"'
req f POST /api/chat "$(ollama boom ',"stream":false')"
expect "midstream_error (not streaming): 500 with the error text" eval '[ "$STATUS" = 500 ] && jqt ".error == \"an error was encountered while running the model\""'

req f POST /api/chat "$(ollama slow)" --max-time 1
expect "stall: the headers (200) arrive, then nothing until the client gives up (exit 28)" \
  eval '[ "$CURL_RC" = 28 ] && head -n 1 "$T/hdrs" | grep -q " 200" && [ ! -s "$T/body" ]'
req f POST /v1/messages "$(anthro 'short stall' ',"stream":true')" "${AV[@]}"
expect "stall: after the stall the stream goes on to message_stop" eval '[ "$CURL_RC" = 0 ] && grep -q "^event: message_stop" "$T/body"'

req f POST /api/chat "$(ollama huge ',"stream":false')"
expect "big: 2 MB of content in one object" eval '[ "$STATUS" = 200 ] && jqt ".message.content | length == 2097152"'
req f POST /v1/chat/completions "$(openai huge ',"stream":true')"
expect "big (openai stream): the deltas add up to 2 MB and the stream ends with [DONE]" \
  bash -c '[ "$(sed -n "s/^data: //p" "$1" | grep -v "^\[DONE\]$" | jq -j ".choices[]?.delta.content // \"\"" | wc -c)" = 2097152 ] && grep -q "^data: \[DONE\]$" "$1"' _ "$T/body"

req f GET /fake/stats
expect "stats: faults_per_kind counts each fault kind" \
  jqt '.faults_per_kind == {"http500": 5, "http429": 4, "http503": 1, "http529": 1, "http401": 2, "http404": 2, "redirect": 1, "cut": 4, "invalid_json": 2, "midstream_error": 4, "stall": 2, "big": 2}'
expect "stats: faults is the total" jqt '.faults == ([.faults_per_kind[]] | add)'
expect_clean_stop f

# ---- script validation ----
bad() {   # bad NAME JSON EXPECTED-TEXT: the fake refuses to start, exit 2, message names the problem
  printf '%s' "$2" >"$T/bad.json"
  local rc=0
  "$FAKE" --port 0 --script "$T/bad.json" 2>"$T/bad.err" >/dev/null || rc=$?
  expect "script: $1 is refused with exit 2 and a message naming it" \
    bash -c '[ "$1" = 2 ] && grep -qF -- "$2" "$3"' _ "$rc" "$3" "$T/bad.err"
}
bad "an unknown fault" '{"m":[{"fault":"http50"}]}' "unknown fault 'http50'"
bad "a misspelt key" '{"m":[{"replly":"x"}]}' "did you mean 'reply'"
bad "a bad regex" '{"m":[{"match":"(","reply":"x"}]}' "bad regex"
bad "a redirect without location" '{"m":[{"fault":"redirect"}]}' "location"
bad "a rule with nothing to do" '{"m":[{"match":"x"}]}' "give one of"
bad "echo that is not a boolean" '{"m":[{"echo":"yes"}]}' '"echo" must be true or false'
bad "echo with a fault" '{"m":[{"echo":true,"fault":"cut"}]}' 'cannot also give "reply", "echo"'
bad "echo false alone" '{"m":[{"echo":false}]}' "give one of"
bad "copy without {{copy}} in the reply" '{"m":[{"copy":"x","reply":"y"}]}' 'needs a "reply" holding {{copy}}'
bad "an unknown copy_as" '{"m":[{"copy":"x","copy_as":"rot13","reply":"{{copy}}"}]}' "unknown copy_as 'rot13'"
bad "copy_as without copy" '{"m":[{"copy_as":"upper","reply":"x"}]}' '"copy_as" needs "copy"'
bad "bad JSON" '{"m":' "--script"

finish

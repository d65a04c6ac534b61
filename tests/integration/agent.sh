#!/usr/bin/env bash
# Agent stages against fake-llm scripted to call tools, in each dialect
# (ollama, openai, anthropic): a review that reads a file, lists a folder,
# calls a tool it was not granted (answered with an error) and greps, then
# answers; a model that never stops calling tools (max_steps); a model that
# makes three malformed calls (an unknown tool, arguments that are not JSON,
# a path with '..'); a 503 in the middle of a conversation (the task starts over). The conversation each server received is checked message by
# message, and the final results in the report.
# Then the leak test of issue 7: a cloud planner granted only list_files asks
# for read_file and is refused; its list of a tree whose file names a
# detector flags is refused by the gate at the next request (withheld, exit
# 3); the cloud log holds no canary; a local reviewer that reads a .pem
# through read_file has its output labelled restricted; and a cloud stage
# granted read_file is refused by check and run before anything is sent.
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
cd "$T"
A="$BH_SOURCE_DIR/fixtures/pipelines/agent"

# ---- dialects -----------------------------------------------------------------
make_repo "$T/repo" --prs 1
CANARY1=$(head -1 "$T/repo.canaries")
# --no-cloud: the local server refuses cloud models itself, so a run sends it no probe
# (README "Cloud stubs") and the requests counted here are the stages' alone.
start_fake local --no-cloud --script "$A/script-dialects.json"
export ITEST_LOCAL_URL=$local_URL
set +e
"$BULKHEAD" run "$A/dialects.json" --repo "$T/repo" --state "$T/state" >"$T/run.out" 2>"$T/run.err"
rc=$?
set -e
expect_eq "the run ends 4: the looping and the malformed agents failed" 4 "$rc"
"$BULKHEAD" report --state "$T/state" --format jsonl >"$T/report.jsonl"
field() { jq -r --arg s "$1" "select(.stage == \$s) | $2" "$T/report.jsonl"; }

# The bodies a server received for a model on a path, one a line.
bodies() { jq -c --arg p "$1" 'select(.path == $p) | .body | fromjson' "$T/local.log" |
  jq -c --arg m "$2" 'select(.model == $m)'; }

for d in ollama openai anthropic; do
  expect_eq "$d: the review is done" done "$(field "review-$d" .state)"
  expect_eq "$d: its output is the model's last answer, quoting the grep result" \
    "REVIEW-DONE quoting:" "$(field "review-$d" .output | head -1)"
  expect_contains "$d: the grep result reached the model" <(field "review-$d" .output) "$CANARY1"
  expect_eq "$d: the output carries the conversation's label (the code read)" confidential \
    "$(field "review-$d" .label)"
  expect_eq "$d: the looping agent failed" failed "$(field "loop-$d" .state)"
  expect_contains "$d: ... saying it did not finish" <(field "loop-$d" .error) \
    "agent stage 'loop-$d' did not finish in 3 steps"
  expect_eq "$d: the malformed agent failed" failed "$(field "bad-$d" .state)"
  expect_contains "$d: ... after three malformed calls" <(field "bad-$d" .error) \
    "agent stage 'bad-$d': the model made 3 malformed tool calls"
done

# Ollama: tool calls with object arguments, tool messages named by tool_name.
bodies /api/chat agent-review >"$T/ollama.bodies"
expect_eq "ollama: four requests for the review" 4 "$(wc -l <"$T/ollama.bodies")"
last=$(tail -1 "$T/ollama.bodies")
expect_eq "ollama: the conversation's roles" "user assistant tool tool assistant tool assistant tool" \
  "$(jq -r '[.messages[].role] | join(" ")' <<<"$last")"
expect_eq "ollama: each tool message names its tool" "read_file list_files git_log grep" \
  "$(jq -r '[.messages[] | select(.role == "tool") | .tool_name] | join(" ")' <<<"$last")"
expect_eq "ollama: the calls went back as the model made them (object arguments)" "src/parser.c 5" \
  "$(jq -r '.messages[1].tool_calls[0].function.arguments | "\(.path) \(.end_line)"' <<<"$last")"
expect_eq "ollama: read_file answered with the numbered lines" "src/parser.c, lines 1-5 of 32:" \
  "$(jq -r '.messages[2].content' <<<"$last" | head -1)"
expect_eq "ollama: list_files answered with the folder" "src/legacy.c" \
  "$(jq -r '.messages[3].content' <<<"$last" | head -1)"
expect_eq "ollama: the ungranted tool was answered with an error" \
  "error: tool 'git_log' is not granted to this stage (its tools: read_file, list_files, grep)" \
  "$(jq -r '.messages[5].content' <<<"$last")"
expect_eq "ollama: only the granted tools are offered" "read_file list_files grep" \
  "$(jq -r '[.tools[].function.name] | join(" ")' <<<"$last")"
expect_eq "ollama: read_file's schema requires a path" '["path"]' \
  "$(jq -c '.tools[0].function.parameters.required' <<<"$last")"

# OpenAI: string arguments, tool messages answer their call's id.
bodies /v1/chat/completions agent-review >"$T/openai.bodies"
expect_eq "openai: four requests for the review" 4 "$(wc -l <"$T/openai.bodies")"
last=$(tail -1 "$T/openai.bodies")
expect_eq "openai: the conversation's roles" "user assistant tool tool assistant tool assistant tool" \
  "$(jq -r '[.messages[].role] | join(" ")' <<<"$last")"
expect_eq "openai: arguments travel as a JSON string" string \
  "$(jq -r '.messages[1].tool_calls[0].function.arguments | type' <<<"$last")"
expect_eq "openai: each tool message answers the id of its call" true \
  "$(jq '[.messages[1].tool_calls[].id] == [.messages[2,3].tool_call_id] and
         .messages[4].tool_calls[0].id == .messages[5].tool_call_id' <<<"$last")"
expect_eq "openai: the ungranted tool was answered with an error" \
  "error: tool 'git_log' is not granted to this stage (its tools: read_file, list_files, grep)" \
  "$(jq -r '.messages[5].content' <<<"$last")"

# Anthropic: tool_use blocks, tool_result blocks in user turns.
bodies /v1/messages agent-review >"$T/anthropic.bodies"
expect_eq "anthropic: four requests for the review" 4 "$(wc -l <"$T/anthropic.bodies")"
last=$(tail -1 "$T/anthropic.bodies")
expect_eq "anthropic: the conversation's turns" "user assistant user assistant user assistant user" \
  "$(jq -r '[.messages[].role] | join(" ")' <<<"$last")"
expect_eq "anthropic: both results of the first reply are in one turn, by tool_use id" true \
  "$(jq '[.messages[1].content[] | select(.type == "tool_use") | .id] ==
         [.messages[2].content[] | select(.type == "tool_result") | .tool_use_id]' <<<"$last")"
expect_eq "anthropic: the tools are offered with input_schema" "read_file list_files grep" \
  "$(jq -r '[.tools[] | select(.input_schema.type == "object") | .name] | join(" ")' <<<"$last")"

for p in /api/chat /v1/chat/completions /v1/messages; do
  expect_eq "$p: the looping agent made exactly max_steps requests" 3 "$(bodies "$p" agent-loop | wc -l)"
  bodies "$p" agent-bad >"$T/bad.bodies"
  expect_eq "$p: the malformed agent made three requests" 3 "$(wc -l <"$T/bad.bodies")"
done
bodies /api/chat agent-retry >"$T/retry.bodies"
expect_eq "a 503 mid-conversation: the task is retried from the start and done" "done RETRY-DONE" \
  "$(field retry-ollama '"\(.state) \(.output)"')"
expect_eq "... the server saw step 1, step 2 (503), then step 1 and 2 again" "1 2 1 2" \
  "$(jq -r '.messages | length | if . == 1 then 1 else 2 end' "$T/retry.bodies" | tr '\n' ' ' | sed 's/ $//')"
last=$(bodies /api/chat agent-bad | tail -1)
expect_eq "the malformed calls were each answered with what is wrong" \
  "error: there is no tool 'shell' (this stage's tools: read_file)|error: the arguments of read_file must be a JSON object, e.g. {\"path\": ...}: what was sent is not one" \
  "$(jq -r '[.messages[] | select(.role == "tool") | .content] | join("|")' <<<"$last")"
for p in /v1/chat/completions /v1/messages; do
  expect_eq "$p: the call with invalid JSON was answered too" 1 \
    "$(bodies "$p" agent-bad | tail -1 | grep -c 'what was sent is not one')"
done
expect_eq "no file outside the repository was read" 0 \
  "$(cat "$T/local.log" "$T/report.jsonl" | grep -c 'root:x:0' || true)"
expect_eq "the model that failed never got to answer" 0 "$(grep -c BAD-NEVER-REACHED "$T/report.jsonl" || true)"
"$BULKHEAD" audit verify --state "$T/state" >/dev/null
expect_eq "the audit verifies (a record per request of every loop)" 0 "$?"
expect_eq "every request of the loops is audited" \
  "$(jq -r 'select(.method == "POST" and (.path | test("/api/chat|/v1/chat/completions|/v1/messages"))) | .path' "$T/local.log" | wc -l)" \
  "$("$BULKHEAD" audit show --state "$T/state" | jq -r 'select(.decision == "allow" and .stage != "") | .seq' | wc -l)"

# ---- leak ---------------------------------------------------------------------
stop_fake local
make_repo "$T/repo3" --prs 3
start_fake leaklocal --no-cloud --script "$A/script-leak.json"
start_fake leakcloud --script "$A/script-leak.json"
export ITEST_LOCAL_URL=$leaklocal_URL ITEST_CLOUD_URL=$leakcloud_URL ITEST_CLOUD_KEY=itest-cloud-key
"$BULKHEAD" check "$A/leak.json" >"$T/check.out"
expect_eq "check accepts a cloud planner granted list_files" 0 "$?"
set +e
"$BULKHEAD" run "$A/leak.json" --repo "$T/repo3" --state "$T/leak" >"$T/leak.out" 2>"$T/leak.err"
rc=$?
set -e
expect_eq "the run exits 3: the gate refused a step of the planner" 3 "$rc"
"$BULKHEAD" report --state "$T/leak" --format jsonl >"$T/leak.jsonl"
task() { jq -r --arg i "refs/pull/$1/head" --arg s "$2" "select(.item == \$i and .stage == \$s) | $3" "$T/leak.jsonl"; }
expect_eq "the cloud log holds no canary" 0 "$(grep -c -F -f "$T/repo3.canaries" "$T/leakcloud.log" || true)"
expect_eq "the cloud log holds no private key and no .pem path" 0 \
  "$(grep -c -e 'PRIVATE KEY' -e 'deploy/staging.pem' "$T/leakcloud.log" || true)"
expect_contains "the planner's read_file was refused as a tool error" "$T/leakcloud.log" \
  "error: tool 'read_file' is not granted to this stage (its tools: list_files)"
expect_eq "PRs 1 and 2: planned in the cloud at internal" "done internal done internal" \
  "$(for n in 1 2; do task "$n" plan '"\(.state) \(.label)"'; done | tr '\n' ' ' | sed 's/ $//')"
expect_eq "PR 3: the plan is withheld (its file list names the .pem)" withheld "$(task 3 plan .state)"
expect_contains "PR 3: ... by the gate, at the step that carried the list" <(task 3 plan .error) \
  "agent stage 'plan', request 3 (the conversation is confidential with its tool results; raised by the result of list_files: the text shown: detector deploy-path (confidential) at line 3): stage 'plan': refused to send data labelled confidential"
expect_eq "the refused step is audited" "confidential internal" \
  "$("$BULKHEAD" audit show --state "$T/leak" | jq -r 'select(.decision == "refuse" and .stage == "plan") | "\(.label) \(.clearance)"')"
expect_eq "PR 3: the local reviewer read the .pem" "REVIEW-DONE: a private key is committed in deploy/staging.pem" \
  "$(task 3 review .output)"
expect_eq "PR 3: ... so its output is restricted" restricted "$(task 3 review .label)"
expect_eq "PRs 1 and 2: the reviewer found no .pem, nothing restricted" "confidential confidential" \
  "$(for n in 1 2; do task "$n" review .label; done | tr '\n' ' ' | sed 's/ $//')"
expect_contains "the .pem reached only the local server" "$T/leaklocal.log" "BEGIN PRIVATE KEY"

# A grant above the clearance: check and run refuse it, nothing is sent.
jq '.stages.plan.tools = ["list_files", "read_file"]' "$A/leak.json" >"$T/grant.json"
: >"$T/leakcloud.log"
set +e
"$BULKHEAD" check "$T/grant.json" >"$T/grant.out" 2>&1
rc=$?
set -e
expect_eq "check refuses read_file granted to the cloud planner (exit 3)" 3 "$rc"
expect_contains "... naming the tool and the labels" "$T/grant.out" \
  "is granted tool read_file, which returns pr.diff (restricted), above its clearance internal"
set +e
"$BULKHEAD" run "$T/grant.json" --repo "$T/repo3" --state "$T/grant" >/dev/null 2>"$T/grant.err"
rc=$?
set -e
expect_eq "run refuses it too (exit 3)" 3 "$rc"
expect_eq "... and sends the cloud nothing" 0 "$(grep -c '"POST"' "$T/leakcloud.log" || true)"

# ---- an agent that answers findings -------------------------------------------
# Its answer is checked like a chat stage's: a first answer that is not
# findings goes back once, in the conversation, with what is wrong; a second
# bad answer fails the task. No schema mode is asked for while tools are
# offered (it would keep the model from calling them); the prompt says the shape.
start_fake fnd --no-cloud --script "$A/script-findings.json"
set +e
ITEST_LOCAL_URL=$fnd_URL "$BULKHEAD" run "$A/findings.json" --repo "$T/repo" \
  --state "$T/fstate" >/dev/null 2>"$T/findings.err"
rc=$?
set -e
expect_eq "the stubborn agent's task fails (exit 4)" 4 "$rc"
"$BULKHEAD" report --state "$T/fstate" --format jsonl >"$T/freport.jsonl"
expect_eq "the agent asked again answers findings: done, one high finding" "done high bounds" \
  "$(jq -r 'select(.stage == "review") | "\(.state) \(.findings[0].severity) \(.findings[0].rule)"' "$T/freport.jsonl")"
jq -c 'select(.path == "/api/chat") | .body | fromjson | select(.model == "agent-findings")' \
  "$T/fnd.log" >"$T/fnd.bodies"
expect_eq "three requests: the start, after the tool, after the bad answer" 3 "$(wc -l <"$T/fnd.bodies")"
expect_eq "the last one holds the bad answer and what is wrong with it" \
  "assistant user" "$(tail -1 "$T/fnd.bodies" | jq -r '[.messages[-2:][].role] | join(" ")')"
expect_contains "... naming the error" <(tail -1 "$T/fnd.bodies" | jq -r '.messages[-1].content') \
  "is not valid findings"
expect_eq "no schema mode while tools are offered" "null" "$(head -1 "$T/fnd.bodies" | jq -c .format)"
expect_contains "the prompt describes the findings" <(head -1 "$T/fnd.bodies" | jq -r '.messages[0].content') \
  "severity"
expect_contains "the stubborn agent fails naming the bad field, after asking once" \
  <(jq -r 'select(.stage == "stubborn") | .error' "$T/freport.jsonl") "asked again once"
finish

#!/usr/bin/env bash
# Issue 13, must-show 3: bulkhead against llama.cpp's llama-server (the fake's
# llama-server flavour, context 512), through a local "openai" endpoint.
#  a. a prompt over the server's window fails in `run` with the server's numbers
#     (n_prompt_tokens, n_ctx) and what to raise;
#  b. a reply cut by max_tokens fails its task; with "on_truncated": "keep" it is
#     kept with a note in the reports; a cut findings reply says it was cut;
#  c. a server killed mid-run fails the rest of its tasks with one message, and
#     only a few requests go out after the kill;
#  d. the server answers with its alias whatever is asked: the summary, `status`
#     and every report say so per stage; with "expect_model": "exact" the tasks
#     fail naming both models.
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
cd "$T"

mkdir -p "$T/p" "$T/docs" "$T/big"
for i in 1 2 3; do printf 'note %s: the cache is flushed twice\n' "$i" >"$T/docs/d$i.md"; done

# pipeline NAME STAGE-JSON [ENDPOINT-EXTRA]: a one-stage pipeline on a local openai endpoint.
pipeline() {
  cat >"$T/p/$1.json" <<JSON
{
  "version": 1,
  "name": "llama-$1",
  "labels": ["public", "internal", "confidential", "restricted"],
  "endpoints": {
    "llama": { "provider": "openai", "url": "\${BULKHEAD_LOCAL_URL}", "locality": "local"${3:-} }
  },
  "source": { "kind": "files", "label": "confidential", "include": ["**/*.md"] },
  "stages": { "review": $2 }
}
JSON
}
REVIEW='"endpoint": "llama", "model": "qwen2.5-coder:14b", "user": "Review this.\n\n{{doc.text}}"'

# run NAME DOCS [args]: sets rc; output in $T/NAME.out and $T/NAME.err
run() { # NAME DOCS ARGS...: bulkhead run $T/p/NAME.json over the folder DOCS
  local name=$1 docs=$2; shift 2
  bh_run "$name" run "$T/p/$name.json" --docs "$docs" --state "$T/$name.state" "$@"
}

start_fake llama --flavor llama-server --context-length 512
export BULKHEAD_LOCAL_URL=$llama_URL

# ---- d. the answering model differs ----
pipeline any "{ $REVIEW }"
run any "$T/docs"
expect_eq "d: a reply from the server's alias is still a result: exit 0" 0 "$rc"
line='review: asked qwen2.5-coder:14b, answered by stories260K (3 of 3 tasks)'
expect_contains "d: the run's summary says which model answered" "$T/any.err" "$line"
"$BULKHEAD" status --state "$T/any.state" >"$T/any.status"
expect_contains "d: status says so" "$T/any.status" "$line"
for f in md jsonl sarif junit; do
  "$BULKHEAD" report --state "$T/any.state" --format $f >"$T/any.$f"
done
expect_contains "d: the md report says so per stage" "$T/any.md" "$line"
expect_eq "d: the jsonl report says so on every task of the stage" "$line" \
  "$(jq -r .answered_by_other "$T/any.jsonl" | sort -u)"
expect_eq "d: and names the answering model" stories260K "$(jq -r .answered_by "$T/any.jsonl" | sort -u)"
expect_eq "d: the sarif report has a warning" "warning $line" \
  "$(jq -r '.runs[0].invocations[0].toolExecutionNotifications[] | "\(.level) \(.message.text)"' "$T/any.sarif")"
expect_contains "d: the junit report says so" "$T/any.junit" "$line"

pipeline exact "{ $REVIEW }" ', "expect_model": "exact"'
run exact "$T/docs"
expect_eq "d: expect_model exact: the tasks fail, exit 4" 4 "$rc"
expect_contains "d: the failure names both models" "$T/exact.err" \
  "asked for model 'qwen2.5-coder:14b', answered by 'stories260K'"
"$BULKHEAD" report --state "$T/exact.state" --format jsonl >"$T/exact.jsonl"
expect_eq "d: every task failed" failed "$(jq -r .state "$T/exact.jsonl" | sort -u)"

pipeline named "{ \"endpoint\": \"llama\", \"model\": \"stories260K:latest\", \"user\": \"Review this.\\n\\n{{doc.text}}\" }" \
  ', "expect_model": "exact"'
run named "$T/docs"
expect_eq "d: expect_model exact with the served model's name (a :latest tag aside): exit 0" 0 "$rc"
expect "d: and nothing is said about another model" \
  bash -c "! grep -q 'answered by another model' '$T/named.err'"

pipeline badkey "{ $REVIEW }" ', "expect_model": "same"'
run badkey "$T/docs"
expect_eq "d: an unknown expect_model value is a configuration error" 2 "$rc"
expect_contains "d: it names the valid values" "$T/badkey.err" "exact"

# ---- a. a prompt over the window ----
cp "$T/docs/d1.md" "$T/big/small.md"
head -c 4000 /dev/zero | tr '\0' 'x' >"$T/big/huge.md"
pipeline window "{ $REVIEW }"
run window "$T/big"
expect_eq "a: the task over the window fails: exit 4" 4 "$rc"
"$BULKHEAD" report --state "$T/window.state" --format jsonl >"$T/window.jsonl"
err=$(jq -r 'select(.item == "huge.md") | .error' "$T/window.jsonl")
ctx_line=$(jq -r 'select(.item == "huge.md") | .error' "$T/window.jsonl" | grep -o '[0-9]* prompt tokens, context (n_ctx) 512' || true)
expect "a: the error carries the server's n_prompt_tokens and n_ctx ($err)" [ -n "$ctx_line" ]
n_prompt=$(jq -r 'select(.path == "/v1/chat/completions") | .body' "$T/llama.log" | jq -r 'select(.messages[-1].content | length > 3000) | .messages | map(.content | length) | add / 4 + 1 | floor' | head -1)
expect_contains "a: the numbers are the server's" "$T/window.jsonl" "$n_prompt prompt tokens, context (n_ctx) 512"
expect_contains "a: and it says what to do" "$T/window.jsonl" "llama-server -c"
expect_eq "a: the small document is done" done "$(jq -r 'select(.item == "small.md") | .state' "$T/window.jsonl")"

# ---- b. a reply cut by max_tokens ----
pipeline cut "{ $REVIEW, \"options\": { \"num_predict\": 3 } }"
run cut "$T/docs"
expect_eq "b: a reply cut by max_tokens fails its task: exit 4" 4 "$rc"
expect_contains "b: the failure says the server cut it" "$T/cut.err" \
  'the server cut the reply (finish_reason "length" after 3 output tokens)'
expect_eq "b: max_tokens was sent" 3 \
  "$(jq -r 'select(.path == "/v1/chat/completions") | .body' "$T/llama.log" | jq -r '.max_tokens // empty' | tail -1)"

pipeline keep "{ $REVIEW, \"options\": { \"num_predict\": 3 }, \"on_truncated\": \"keep\" }"
run keep "$T/docs"
expect_eq "b: on_truncated keep: the cut replies are kept: exit 0" 0 "$rc"
"$BULKHEAD" report --state "$T/keep.state" --format md >"$T/keep.md"
"$BULKHEAD" report --state "$T/keep.state" --format jsonl >"$T/keep.jsonl"
expect_contains "b: the md report notes the cut" "$T/keep.md" \
  "kept as the stage says (on_truncated: keep)"
expect_eq "b: every jsonl task notes the cut, once" \
  '3 the server cut the reply (finish_reason "length" after 3 output tokens); kept as the stage says (on_truncated: keep)' \
  "$(jq -r '.note // ""' "$T/keep.jsonl" | uniq -c | sed 's/^ *//')"

pipeline findings "{ $REVIEW, \"options\": { \"num_predict\": 3 }, \"on_truncated\": \"keep\", \"output\": { \"format\": \"findings\" } }"
run findings "$T/docs"
expect_eq "b: a cut findings reply fails: exit 4" 4 "$rc"
expect_contains "b: it says it was cut" "$T/findings.err" \
  "the server cut the reply for length, so it is incomplete"

# ---- c. a server killed mid-run ----
for i in $(seq 1 30); do printf 'doc %s: flush the cache\n' "$i" >"$T/big/m$i.md"; done
rm -f "$T/big/huge.md"
start_fake dying --flavor llama-server --context-length 512 --token-ms 20
export BULKHEAD_LOCAL_URL=$dying_URL
pipeline down "{ $REVIEW }"
(set +e; "$BULKHEAD" run "$T/p/down.json" --docs "$T/big" --state "$T/down.state" \
   >"$T/down.out" 2>"$T/down.err"; echo $? >"$T/down.rc") &
runner=$!
for _ in $(seq 1 400); do
  [ "$(jq -s '[.[] | select(.path == "/v1/chat/completions")] | length' "$T/dying.log" 2>/dev/null || echo 0)" -ge 3 ] && break
  sleep 0.05
done
stop_fake dying
wait "$runner" || true
expect_eq "c: the run ends, exit 4" 4 "$(cat "$T/down.rc")"
expect_eq "c: one message says the endpoint is down" 1 "$(grep -c "endpoint 'llama' is down:" "$T/down.err")"
"$BULKHEAD" report --state "$T/down.state" --format jsonl >"$T/down.jsonl"
"$BULKHEAD" audit show --state "$T/down.state" >"$T/down.audit"
sent=$(jq -s '[.[] | select(.stage == "review" and .decision == "allow")] | length' "$T/down.audit")
done_n=$(jq -s '[.[] | select(.stage == "review" and .state == "done")] | length' "$T/down.jsonl")
expect "c: after the kill only a few requests went out ($sent sent, $done_n done)" \
  [ "$sent" -le $((done_n + 5)) ]
expect "c: the tasks left fail saying the endpoint is down" \
  grep -q "is down since" "$T/down.jsonl"
# A server whose replies name no model: "exact" cannot be checked, so it fails
# closed; "any" takes the reply.
python3 "$BH_SOURCE_DIR/tests/helpers/unnamed_openai.py" "$T/unnamed.port" 2>"$T/unnamed.err" &
_pids+=($!)
for _ in $(seq 1 100); do [ -s "$T/unnamed.port" ] && break; sleep 0.05; done
unnamed_URL="http://127.0.0.1:$(cat "$T/unnamed.port")"
pipeline unnamed-exact "{ $REVIEW }" ', "expect_model": "exact"'
set +e
BULKHEAD_LOCAL_URL=$unnamed_URL "$BULKHEAD" run "$T/p/unnamed-exact.json" --docs "$T/docs" \
  --state "$T/unnamed-exact.state" --quiet >"$T/unnamed-exact.out" 2>"$T/unnamed-exact.err"
rc=$?
set -e
expect_eq "d: expect_model exact and a reply that names no model: the tasks fail, exit 4" 4 "$rc"
expect_contains "d: saying bulkhead cannot tell which model answered" "$T/unnamed-exact.err" \
  "the reply names no model"
pipeline unnamed-any "{ $REVIEW }"
set +e
BULKHEAD_LOCAL_URL=$unnamed_URL "$BULKHEAD" run "$T/p/unnamed-any.json" --docs "$T/docs" \
  --state "$T/unnamed-any.state" --quiet >"$T/unnamed-any.out" 2>"$T/unnamed-any.err"
rc=$?
set -e
expect_eq "d: with expect_model any the same replies are results, exit 0" 0 "$rc"
finish

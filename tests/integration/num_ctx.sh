#!/usr/bin/env bash
# The context window (issue 4, "no silent truncation"). A local Ollama stage
# without options.num_ctx gets min(context length from /api/show, 32768),
# sent in the request and used to reject a prompt that cannot fit before it
# is sent; a stage's own num_ctx wins; a failed /api/show leaves the server's
# default with a warning. A reply whose prompt_eval_count reached num_ctx is
# done but flagged (the report's note, and stderr). check warns when two
# stages would load one model with different num_ctx. A first-byte timeout
# on a model that was not loaded at the start says the load is the likely
# cause.
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
cd "$T"
make_repo "$T/repo" --prs 1
mkdir -p "$T/p"
cat >"$T/p/ctx.json" <<'JSON'
{
  "version": 1,
  "name": "num-ctx",
  "endpoints": {
    "gpu-box": { "provider": "ollama", "url": "${BULKHEAD_LOCAL_URL}", "locality": "local",
                 "max_attempts": 1 }
  },
  "source": { "kind": "git" },
  "stages": {
    "review": { "endpoint": "gpu-box", "model": "qwen3:8b", "user": "Review {{pr.title}}" }
  }
}
JSON
jq '.stages.review.options = { "num_ctx": 4096 }' "$T/p/ctx.json" >"$T/p/own.json"
jq '.stages.review.user = "Review this change:\n{{pr.diff}}"' "$T/p/ctx.json" >"$T/p/diff.json"
jq '.stages.second = { "endpoint": "gpu-box", "model": "qwen3:8b", "user": "Again {{pr.title}}",
                       "options": { "num_ctx": 8192 } }' "$T/p/ctx.json" >"$T/p/two.json"
jq '.stages.review.options = { "num_ctx": 16384 }' "$T/p/two.json" >"$T/p/two-own.json"
jq '.endpoints["gpu-box"].first_byte_timeout_s = 1' "$T/p/ctx.json" >"$T/p/slow.json"

run_bh() { # out-name pipeline url → sets rc
  BULKHEAD_LOCAL_URL=$3 bh_run "$1" run "$2" --repo "$T/repo" --state "$T/$1.state"
}
sent_ctx() { jq -r 'select(.path == "/api/chat") | .body | fromjson | .options.num_ctx' "$T/$1.log" | sort -u | tr '\n' ' ' | sed 's/ $//'; }
report() { "$BULKHEAD" report --state "$T/$1.state" --format jsonl >"$T/$1.jsonl"; }

# --- num_ctx from /api/show, capped ------------------------------------------
start_fake small --models qwen3:8b --context-length 8192
run_bh small "$T/p/ctx.json" "$small_URL"
expect_eq "small model: the run succeeds" 0 "$rc"
expect_eq "small model: num_ctx is its context length" 8192 "$(sent_ctx small)"
start_fake big --models qwen3:8b --context-length 131072
run_bh big "$T/p/ctx.json" "$big_URL"
expect_eq "a 128K model: num_ctx is capped at 32768" 32768 "$(sent_ctx big)"
: >"$T/big.log"
run_bh own "$T/p/own.json" "$big_URL"
expect_eq "the stage's own options.num_ctx wins" 4096 "$(sent_ctx big)"

# --- a prompt over the chosen window fails before it is sent -----------------
start_fake tiny --models qwen3:8b --context-length 16
run_bh tiny "$T/p/diff.json" "$tiny_URL"
expect_eq "a prompt over num_ctx from show: exit 4" 4 "$rc"
expect_eq "nothing was sent (but the probe's fixed text)" 0 \
  "$(jq -r 'select(.path == "/api/chat") | .body | fromjson | select(.messages[-1].content != "Reply with OK.")' "$T/tiny.log" | wc -l)"
report tiny
expect_eq "the error says where the window comes from and what to do" 1 \
  "$(jq -r '.error' "$T/tiny.jsonl" | grep -c 'more than num_ctx 16, the window bulkhead chose from the context length of model .qwen3:8b. (at most 32768) — set options.num_ctx on the stage')"

# --- /api/show fails: the server's default, and a warning -------------------
start_fake noshow --models qwen3:8b --show-fail qwen3:8b
run_bh noshow "$T/p/ctx.json" "$noshow_URL"
expect_eq "show failed: the run still succeeds" 0 "$rc"
expect_eq "show failed: no num_ctx is sent" null "$(sent_ctx noshow)"
expect_contains "show failed: a warning says so" "$T/noshow.err" \
  "bulkhead: warning: could not read the context length: endpoint 'gpu-box' ($noshow_URL), model 'qwen3:8b': showing the model: HTTP 500"

# --- a reply that used the whole window is flagged ---------------------------
echo '{"*": [{"reply": "Looks fine.", "prompt_eval_count": 8192}]}' >"$T/full.script"
start_fake full --models qwen3:8b --context-length 8192 --script "$T/full.script"
run_bh full "$T/p/ctx.json" "$full_URL"
expect_eq "a full window: the task is done (exit 0)" 0 "$rc"
note="the prompt used 8192 tokens, the whole context window (num_ctx 8192): the server may have cut it; raise options.num_ctx"
report full
expect_eq "a full window: the report carries the note" "done $note" \
  "$(jq -r 'select(.stage == "review") | "\(.state) \(.note)"' "$T/full.jsonl")"
expect_contains "a full window: stderr says it too" "$T/full.err" "bulkhead: refs/pull/1/head review: warning: $note"
"$BULKHEAD" report --state "$T/full.state" --format md >"$T/full.md"
expect_contains "a full window: the markdown report shows the note" "$T/full.md" "> **note:** $note"
echo '{"*": [{"reply": "Looks fine.", "prompt_eval_count": 8191}]}' >"$T/almost.script"
start_fake almost --models qwen3:8b --context-length 8192 --script "$T/almost.script"
run_bh almost "$T/p/ctx.json" "$almost_URL"
report almost
expect_eq "one token short of the window: no note" null "$(jq -r 'select(.stage == "review") | .note' "$T/almost.jsonl")"

# --- one num_ctx per model: check warns ------------------------------------
set +e
BULKHEAD_LOCAL_URL=$big_URL "$BULKHEAD" check "$T/p/two-own.json" >/dev/null 2>"$T/check-two.err"
rc=$?
set -e
expect_eq "check: different num_ctx is a warning, not an error" 0 "$rc"
expect_contains "check: the warning names both stages and the model" "$T/check-two.err" \
  "stages.second: num_ctx 8192 differs from stage 'review' (num_ctx 16384) on the same model 'qwen3:8b' of endpoint 'gpu-box': Ollama reloads the model each time it changes"
BULKHEAD_LOCAL_URL=$big_URL "$BULKHEAD" check "$T/p/two.json" >/dev/null 2>"$T/check-off.err"
expect_eq "check offline: a stage without num_ctx is not compared" 0 "$(grep -c warning "$T/check-off.err" || true)"
BULKHEAD_LOCAL_URL=$big_URL "$BULKHEAD" check "$T/p/two.json" --online --state "$T/check.state" \
  >/dev/null 2>"$T/check-on.err"
expect_contains "check --online: the value from /api/show is compared too" "$T/check-on.err" \
  "stages.second: num_ctx 8192 differs from stage 'review' (num_ctx 32768)"

# --- a first-byte timeout on a model that was not loaded -------------------
start_fake slow --models qwen3:8b --load-ms 3000
run_bh slow "$T/p/slow.json" "$slow_URL"
expect_eq "a cold model past first_byte_timeout_s: exit 4" 4 "$rc"
report slow
expect_eq "the error says the model was not loaded and what to raise" 1 \
  "$(jq -r '.error' "$T/slow.jsonl" | grep -c "no reply within 1 s — the model 'qwen3:8b' was not loaded when the run started (not in /api/ps), and its load may need longer than the endpoint's first_byte_timeout_s (1 s)")"
echo '{"*": [{"fault": "stall", "stall_ms": 3000}]}' >"$T/stall.script"
start_fake stall --models qwen3:8b --script "$T/stall.script"
curl -s -d '{"model":"qwen3:8b","messages":[]}' "$stall_URL/api/chat" >/dev/null # loaded first
run_bh stall "$T/p/slow.json" "$stall_URL"
report stall
expect_eq "a loaded model that stalls: no word of a load" 0 \
  "$(jq -r '.error' "$T/stall.jsonl" | grep -c 'was not loaded')"
expect_eq "a loaded model that stalls: still the timeout" 1 "$(jq -r '.error' "$T/stall.jsonl" | grep -c 'no reply within 1 s')"
finish

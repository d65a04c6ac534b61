#!/usr/bin/env bash
# The model-aware scheduler against a fixture Ollama that holds one model at a
# time: stages a (model A), b (model B, after a) and c (model A again, after
# b) over 8 pull requests. However the tasks become ready, each model is
# loaded at most twice (A for a, then for c; B once), and B, which no
# remaining task needs when c starts, is unloaded (keep_alive 0, through the
# gate, audited) before A is loaded again. With max_loaded_models 2 on a
# server that holds two, B is preloaded (the stage's keep_alive and num_ctx)
# while a's last request runs, and nothing is loaded twice (without the key
# the server's /api/ps, empty at the start, would say one: no preload).
# --no-cache: identical requests of one run (the same b.output for every PR)
# would otherwise be answered from the response cache, and not scheduled.
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
cd "$T"
make_repo "$T/repo" --prs 8

# pipeline FILE [ENDPOINT-KEYS]
pipeline() {
  cat >"$1" <<EOF
{
  "version": 1,
  "name": "schedule",
  "endpoints": {
    "gpu": { "provider": "ollama", "url": "\${BULKHEAD_LOCAL_URL}", "locality": "local",
             "max_concurrency": 1 ${2:-} }
  },
  "source": { "kind": "git", "label": "confidential" },
  "stages": {
    "a": { "endpoint": "gpu", "model": "model-a", "user": "first look at {{pr.title}}" },
    "b": { "endpoint": "gpu", "model": "model-b", "keep_alive": "7m",
           "options": { "num_ctx": 8192 }, "user": "second look: {{a.output}}" },
    "c": { "endpoint": "gpu", "model": "model-a", "user": "verdict on {{b.output}}" }
  }
}
EOF
}
loads() { curl -s "$local_URL/fake/stats" | jq -c '.loads_per_model'; }
generate_bodies() { jq -r 'select(.path == "/api/generate") | .body' "$T/local.log"; }

# ---- one model at a time ------------------------------------------------------
pipeline "$T/one.json"
# --no-cloud: the server refuses cloud models itself, so a run sends no probe
# (README "Cloud stubs") and the loads counted here are the scheduler's alone.
start_fake local --no-cloud --slots 1 --load-ms 50 --token-ms 5
export BULKHEAD_LOCAL_URL=$local_URL
set +e
"$BULKHEAD" run --no-cache "$T/one.json" --repo "$T/repo" --state "$T/state1" >"$T/run1.out" 2>"$T/run1.err"
rc=$?
set -e
expect_eq "the run succeeds" 0 "$rc"
[ "$rc" -eq 0 ] || cat "$T/run1.err"
expect_eq "24 tasks answered" 24 "$(jq -s '[.[] | select(.path == "/api/chat")] | length' "$T/local.log")"
expect_eq "model-a loaded twice (a, then c), model-b once" '{"model-a":2,"model-b":1}' "$(loads)"
# Once: the pre-run probe asks (probe/survey.c); the scheduler takes its answer.
expect_eq "the run asked what is loaded, once" 1 \
  "$(jq -s '[.[] | select(.path == "/api/ps")] | length' "$T/local.log")"
expect_eq "model-b, needed by nothing once b is done, is unloaded (keep_alive 0)" \
  '{"model":"model-b","keep_alive":0}' \
  "$(generate_bodies | jq -c 'select(.keep_alive == 0) | {model, keep_alive}')"
# Its place in the sequence: after b's last request, before c's first.
order=$(jq -r 'if .path == "/api/chat" then (.body | fromjson | .model)
               elif .path == "/api/generate" then "unload" else empty end' "$T/local.log" | uniq | tr '\n' ' ')
expect_eq "a's tasks, b's, the unload, c's" "model-a model-b unload model-a " "$order"
"$BULKHEAD" audit show --state "$T/state1" >"$T/audit1.jsonl"
expect_eq "the unload is audited as model management, with no item data" \
  "allow public model-b " \
  "$(jq -r 'select(.reason | test("unload model")) | "\(.decision) \(.label) \(.model) \(.item)"' \
     "$T/audit1.jsonl")"
expect "the audit verifies" "$BULKHEAD" audit verify --state "$T/state1"
stop_fake local

# ---- room for two ----------------------------------------------------------------
pipeline "$T/two.json" ', "max_loaded_models": 2'
: >"$T/local.log"
# --token-ms 40: a's last request must still be running when the scheduler's
# next pass sees that a has nothing left to start (at 5 ms a loaded machine
# could let it end first, and the preload then leaves with b's first request).
start_fake local --no-cloud --slots 2 --load-ms 50 --token-ms 40
export BULKHEAD_LOCAL_URL=$local_URL
set +e
"$BULKHEAD" run --no-cache "$T/two.json" --repo "$T/repo" --state "$T/state2" >"$T/run2.out" 2>"$T/run2.err"
rc=$?
set -e
expect_eq "with room for two: the run succeeds" 0 "$rc"
[ "$rc" -eq 0 ] || cat "$T/run2.err"
expect_eq "with room for two: each model loaded once" '{"model-a":1,"model-b":1}' "$(loads)"
expect_eq "model-b is preloaded with an empty prompt, its stage's keep_alive and num_ctx" \
  '{"model":"model-b","prompt":"","keep_alive":"7m","num_ctx":8192}' \
  "$(generate_bodies | jq -c '{model, prompt, keep_alive, num_ctx: .options.num_ctx}')"
seq2=$(jq -r 'if .path == "/api/chat" then (.body | fromjson | .model)
              elif .path == "/api/generate" then "preload" else empty end' "$T/local.log" | uniq | tr '\n' ' ')
expect_eq "the preload comes while a's last request runs, before b's first" \
  "model-a preload model-b model-a " "$seq2"
"$BULKHEAD" audit show --state "$T/state2" >"$T/audit2.jsonl"
expect_eq "the preload is audited" 1 \
  "$(jq -s '[.[] | select(.reason | test("preload model"))] | length' "$T/audit2.jsonl")"

# ---- the shipped pipeline, two local models competing -------------------------
# PRs 5 and 10 name a person's address in their title: their plan is rerouted
# to plan-local (qwen2.5-coder:7b), and so is their summary, which reads the
# title too; the reviewer quotes the changed line of the kind-1 PRs (1, 7):
# their review stays confidential and the summary goes to summarize-local. The 7b tasks become ready at the start and at the
# end, the reviews (14b) in between.
stop_fake local
make_repo "$T/cr" --prs 12 --distinct 6
g() { git -C "$T/cr" "$@"; }
g checkout -q -b sensitive main
echo "/* a comment */" >>"$T/cr/src/main.c"
g add -A
g -c user.name=t -c user.email=t@bulkhead.invalid commit -q -m "Fix parser crash reported by jane.roe@acme-corp.com"
printf 'update refs/pull/5/head %s\nupdate refs/pull/10/head %s\n' "$(g rev-parse HEAD)" "$(g rev-parse HEAD)" |
  g update-ref --stdin
g checkout -q main
cat >"$T/quote.json" <<'EOF'
{ "qwen2.5-coder:14b": [ { "match": "spaces after an operator were rejected", "echo": true } ] }
EOF
: >"$T/local.log"
start_fake local --no-cloud --slots 1 --load-ms 50 --token-ms 5 --script "$T/quote.json"
start_fake cloud
export BULKHEAD_LOCAL_URL=$local_URL BULKHEAD_CLOUD_URL=$cloud_URL
set +e
"$BULKHEAD" run --no-cache "$BH_SOURCE_DIR/pipelines/code-review.json" --repo "$T/cr" --state "$T/state3" \
  >"$T/run3.out" 2>"$T/run3.err"
rc=$?
set -e
expect_eq "code-review: the run succeeds" 0 "$rc"
[ "$rc" -eq 0 ] || cat "$T/run3.err"
"$BULKHEAD" report --state "$T/state3" --format jsonl >"$T/cr.jsonl"
expect_eq "code-review: plans of PRs 5 and 10, summaries of PRs 1, 5, 7 and 10 answered by the 7b model" \
  "refs/pull/1/head summarize refs/pull/10/head plan refs/pull/10/head summarize refs/pull/5/head plan refs/pull/5/head summarize refs/pull/7/head summarize " \
  "$(jq -r 'select(.answered_by == "qwen2.5-coder:7b") | "\(.item) \(.stage)"' "$T/cr.jsonl" | sort | tr '\n' ' ')"
expect_eq "code-review: 7b for the plans, 14b for every review, 7b for the summaries" \
  "qwen2.5-coder:7b qwen2.5-coder:14b qwen2.5-coder:7b " \
  "$(jq -r 'select(.path == "/api/chat") | .body | fromjson | .model' "$T/local.log" | uniq | tr '\n' ' ')"
expect_eq "code-review: so 7b loaded twice, 14b once" '{"qwen2.5-coder:14b":1,"qwen2.5-coder:7b":2}' \
  "$(curl -s "$local_URL/fake/stats" | jq -cS '.loads_per_model')"
finish

#!/usr/bin/env bash
# The progress display (issue 6, must show 6). On a terminal (tmux, captured
# with capture-pane): a block with a line per stage showing done/total while
# the run goes on, redrawn in place (one line per stage on the screen, not
# one per redraw), and the final counts. Not on a terminal (stderr to a
# file): plain lines without escape sequences, one per stage as it ends and
# one every 10 s. `bulkhead status` answers while a run goes on and, after
# it, prints the counts the report has. --quiet shows no progress.
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
cd "$T"
command -v tmux >/dev/null || { echo "tmux is required"; exit 1; }

make_repo "$T/repo" --prs 4
REVIEW=$BH_SOURCE_DIR/pipelines/code-review.json
# Slow fakes, so that captures land mid-run: about a second per reply.
start_fake local --slots 1 --token-ms 150
start_fake cloud --token-ms 150

# ---- a terminal --------------------------------------------------------------
SOCK="$T/tmux.sock"
tmux_() { tmux -S "$SOCK" "$@"; }
trap 'tmux_ kill-server 2>/dev/null || true; _cleanup' EXIT
cat >"$T/live.sh" <<EOF
export BULKHEAD_LOCAL_URL=$local_URL BULKHEAD_CLOUD_URL=$cloud_URL OLLAMA_API_KEY=$OLLAMA_API_KEY
export TERM=xterm
"$BULKHEAD" run "$REVIEW" --repo "$T/repo" --state "$T/state" --no-cache
echo "EXIT=\$?"
sleep 60
EOF
tmux_ new-session -d -s live -x 120 -y 30 "bash $T/live.sh"
mid=""
for _ in $(seq 1 300); do
  tmux_ capture-pane -p -t live >"$T/capture.txt" 2>/dev/null || true
  if grep -q "EXIT=" "$T/capture.txt"; then break; fi
  # Mid-run: a stage line with some but not all of its tasks done.
  if [ -z "$mid" ] && grep -Eq '^  review +[1-3]/4 ' "$T/capture.txt"; then
    mid=$(cat "$T/capture.txt")
    printf '%s\n' "$mid" >"$T/mid.txt"
  fi
  sleep 0.1
done
tmux_ capture-pane -p -t live >"$T/final.txt"
expect "a capture landed mid-run with review partly done" [ -n "$mid" ]
if [ -n "$mid" ]; then
  expect_contains "mid-run: the header counts tasks in flight" "$T/mid.txt" "in flight"
  expect "mid-run: every stage has its line with done/total" \
    grep -Eq '^  plan +[0-4]/4 ' "$T/mid.txt"
  expect "mid-run: summarize's line is there too" grep -Eq '^  summarize +[0-4]/4 ' "$T/mid.txt"
  expect_contains "mid-run: the model that answered on the endpoint" "$T/mid.txt" "gpu-box: qwen2.5-coder:14b"
fi
expect_contains "the run ended in the terminal" "$T/final.txt" "EXIT=0"
expect_contains "final: the header says the run finished" "$T/final.txt" "bulkhead: finished after"
for s in plan review summarize; do
  expect_eq "final: one line for $s, redrawn in place" 1 \
    "$(grep -Ec "^  $s +[0-9]+/[0-9]+ " "$T/final.txt")"
  expect "final: $s 4/4 ended" grep -Eq "^  $s +4/4 +ended in" "$T/final.txt"
done
expect_contains "final: the summary follows the block" "$T/final.txt" "bulkhead: run 1 ok: 12 tasks"
tmux_ kill-server 2>/dev/null || true

# ---- not a terminal ------------------------------------------------------------
# Each reply stalls 3 s: about 12 s in all, so a 10 s line comes too.
cat >"$T/stall.json" <<'EOF'
{ "*": [ { "fault": "stall", "stall_ms": 3000 } ] }
EOF
start_fake slow --script "$T/stall.json"
export BULKHEAD_LOCAL_URL=$slow_URL BULKHEAD_CLOUD_URL=$slow_URL
"$BULKHEAD" run "$REVIEW" --repo "$T/repo" --state "$T/pstate" 2>"$T/plain.err" &
run_pid=$!
_pids+=($run_pid)
# Meanwhile, `status` reads the state without waiting for the run.
for _ in $(seq 1 100); do
  grep -q "stage 'plan' ended" "$T/plain.err" 2>/dev/null && break
  sleep 0.1
done
set +e
timeout 10 "$BULKHEAD" status --state "$T/pstate" >"$T/status-mid.out" 2>&1
rc=$?
set -e
expect_eq "status during the run exits 0 at once" 0 "$rc"
expect_contains "... and says the run is running" "$T/status-mid.out" "(nightly-code-review): running"
expect "... with plan done" grep -Eq '^  plan +4/4 ' "$T/status-mid.out"
expect "... and review not yet" grep -Eq '^  review +[0-3]/4 ' "$T/status-mid.out"
set +e
wait "$run_pid"
rc=$?
set -e
expect_eq "the plain run exits 0" 0 "$rc"
expect_eq "no escape sequence in a log" 0 "$(grep -c $'\033' "$T/plain.err" || true)"
for s in plan review summarize; do
  expect_eq "one line as $s ends" 1 "$(grep -c "^bulkhead: stage '$s' ended after .*: 4/4 done, 0 failed, 0 withheld, 0 cached" "$T/plain.err" || true)"
done
expect "a line after 10 s naming every stage" \
  grep -Eq '^bulkhead: progress after 1[0-9]s: plan 4/4, review [0-9]/4.*, summarize [0-9]/4' "$T/plain.err"
expect "stage lines come in stage order" \
  bash -c "grep -o \"stage '[a-z]*' ended\" '$T/plain.err' | tr '\n' ' ' | grep -q \"stage 'plan' ended stage 'review' ended stage 'summarize' ended\""

# ---- status after the run matches the report -------------------------------------
"$BULKHEAD" status --state "$T/pstate" >"$T/status.out"
"$BULKHEAD" report --state "$T/pstate" --format jsonl >"$T/report.jsonl"
expect_contains "status names the finished run" "$T/status.out" "(nightly-code-review): ok"
for s in plan review summarize; do
  want=$(jq -s --arg s "$s" '[.[] | select(.stage == $s)] | "\([.[] | select(.state == "done")] | length)/\(length)"' -r "$T/report.jsonl")
  got=$(grep -E "^  $s " "$T/status.out" | awk '{print $2}')
  expect_eq "status counts $s as the report does" "$want" "$got"
done
expect_contains "status totals" "$T/status.out" "tasks: 12, 12 done, 0 failed, 0 withheld, 0 running, 0 pending, 0 from the cache"
set +e
"$BULKHEAD" status --state "$T/pstate" --run 99 >/dev/null 2>"$T/norun.err"
rc=$?
set -e
expect_eq "status of an unknown run exits 2" 2 "$rc"
expect_contains "... naming it" "$T/norun.err" "no run 99 in state database"

# ---- --quiet -------------------------------------------------------------------
"$BULKHEAD" run "$REVIEW" --repo "$T/repo" --state "$T/pstate" --fresh --quiet 2>"$T/quiet.err"
expect_eq "--quiet: no progress line" 0 "$(grep -Ec "^bulkhead: (stage '|progress after)" "$T/quiet.err" || true)"
expect_contains "--quiet: the summary still" "$T/quiet.err" "bulkhead: run 2 ok"
finish

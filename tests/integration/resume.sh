#!/usr/bin/env bash
# Crash safety: SIGKILL `bulkhead run` halfway, run the same command again;
# it finishes the rest, and the fixture servers' counters show that no task
# finished before the kill was sent again.
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
cd "$T"

make_repo "$T/repo" --prs 6
# Slow servers so that the kill lands mid-run: loads and tokens take time, and
# the cloud holds every summary back for 8 s (then answers as usual), so the
# first run cannot finish its last stage before the kill, however loaded the
# machine is.
cat >"$T/slow.json" <<'JSON'
{ "*": [ { "match": "Summarize the review", "fault": "stall", "stall_ms": 8000, "times": 6 } ] }
JSON
start_fake local --slots 1 --load-ms 200 --token-ms 40
start_fake cloud --token-ms 40 --script "$T/slow.json"
export BULKHEAD_LOCAL_URL=$local_URL BULKHEAD_CLOUD_URL=$cloud_URL
run() {
  exec "$BULKHEAD" run "$BH_SOURCE_DIR/pipelines/code-review.json" --repo "$T/repo" --base main \
    --state "$T/state" "$@"
}
done_count() {
  local out
  out=$("$BULKHEAD" report --state "$T/state" --format jsonl 2>/dev/null) || { echo 0; return; }
  printf '%s\n' "$out" | jq -s '[.[] | select(.state == "done")] | length'
}
requests() { # model calls received by both servers, the probe's fixed public chat left out
  local probes
  probes=$(cat "$T/local.log" "$T/cloud.log" | jq -s '[.[] | select(.path == "/api/chat")
    | select((.body | fromjson | .messages[-1].content) == "Reply with OK.")] | length')
  echo $(( $(curl -s "$local_URL/fake/stats" | jq .requests) + $(curl -s "$cloud_URL/fake/stats" | jq .requests) - probes ))
}

(run >"$T/run1.out" 2>"$T/run1.err") &
pid=$!
for _ in $(seq 1 600); do
  [ "$(done_count)" -ge 7 ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.05
done
# A second run on the same state while the first works is refused, not interleaved.
set +e
(run >"$T/concurrent.out" 2>"$T/concurrent.err")
rc=$?
set -e
expect_eq "a concurrent run on the same state exits 2" 2 "$rc"
expect_contains "and says why" "$T/concurrent.err" "another bulkhead run is using the state"
kill -KILL "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
sleep 0.3   # let requests the dead process had in flight reach the servers' counters

"$BULKHEAD" report --state "$T/state" --format jsonl >"$T/after-kill.jsonl"
done1=$(jq -s '[.[] | select(.state == "done")] | length' "$T/after-kill.jsonl")
expect "the kill landed halfway (7..12 tasks done: no summary yet, got $done1)" [ "$done1" -ge 7 -a "$done1" -le 12 ]
jq -r 'select(.state == "done") | "\(.item) \(.stage) \(.output)"' "$T/after-kill.jsonl" | sort >"$T/done1.txt"

before=$(requests)
set +e
(run >"$T/run2.out" 2>"$T/run2.err")
rc=$?
set -e
expect_eq "the second run exits 0" 0 "$rc"
expect_contains "it says it resumes" "$T/run2.err" "resuming run"
after=$(requests)
"$BULKHEAD" report --state "$T/state" --format jsonl >"$T/final.jsonl"
# A reply that reached the response cache just before the kill, while its
# task was not yet committed, is answered from the cache on resume: no request,
# and the task says "cached". Nothing else may skip the server.
hits=$(jq -s '[.[] | select(.state == "done" and .cached == true)] | length' "$T/final.jsonl")
expect "at most the tasks in flight at the kill come from the cache (got $hits)" [ "$hits" -le 2 ]
expect_eq "the second run sent one request per unfinished task not in the cache" \
  $((18 - done1 - hits)) $((after - before))

expect_eq "all 18 tasks done" 18 "$(jq -s '[.[] | select(.state == "done")] | length' "$T/final.jsonl")"
jq -r 'select(.state == "done") | "\(.item) \(.stage) \(.output)"' "$T/final.jsonl" | sort >"$T/final.txt"
expect_eq "work finished before the kill is kept as it was" "" \
  "$(comm -23 "$T/done1.txt" "$T/final.txt")"
expect "the audit chain survived the kill" "$BULKHEAD" audit verify --state "$T/state"
finish

#!/usr/bin/env bash
# Crash torture: a 100-document run (pipelines/documents.json: a cloud tag and
# a local summary per document, then a batch digest) killed with SIGKILL at
# 20 random moments and started again each time with the same command. In the
# end every task is done exactly once, no task's model request was made more
# than twice (once before a kill, once after), and the state database passes
# PRAGMA integrity_check.
#
# A kill lands at a random delay after the restarted run has finished the
# tasks the previous kill interrupted (and at least one more): without that
# wait a task could be interrupted twice, and "at most twice" would measure the
# kill schedule, not the resume. The seed is printed; BH_TORTURE_SEED replays it.
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
cd "$T"

seed=${BH_TORTURE_SEED:-$(( $$ ^ $(date +%s) ))}
RANDOM=$seed
echo "# seed $seed"

N=100
KILLS=20
# Under public/: the pipeline's rule labels them public, so the cloud tagger may read them.
mkdir -p "$T/docs/public"
for i in $(seq -w 1 $N); do
  printf 'Meeting notes %s. The team agreed on plan MARK-%s before the review.\n' "$i" "$i" \
    >"$T/docs/public/note-$i.md"
done

start_fake local --token-ms 60
start_fake cloud --token-ms 60
export BULKHEAD_LOCAL_URL=$local_URL BULKHEAD_CLOUD_URL=$cloud_URL
DB="$T/state/state.db"

start_run() {
  ("$BULKHEAD" run "$BH_SOURCE_DIR/pipelines/documents.json" --docs "$T/docs" \
     --state "$T/state" >>"$T/run.out" 2>>"$T/run.err") &
  pid=$!
}
sql() { sqlite3 -cmd '.timeout 5000' "$DB" "$1" 2>/dev/null || true; }
done_count() { sql "SELECT count(*) FROM tasks WHERE state = 2" | grep -E '^[0-9]+$' || echo 0; }
alive() { kill -0 "$pid" 2>/dev/null; }

# Waits until every task id in $1 is done and $2 tasks finished since the
# restart, or the run ended on its own.
settle() {
  local ids=$1 base=$2 i
  for i in $(seq 1 1200); do
    alive || return 0
    if [ "$(done_count)" -gt "$base" ]; then
      [ -z "$ids" ] && return 0
      [ "$(sql "SELECT count(*) FROM tasks WHERE state != 2 AND id IN ($ids)")" = 0 ] && return 0
    fi
    sleep 0.05
  done
}

kills=0
interrupted=""
while [ "$kills" -lt "$KILLS" ]; do
  base=$(done_count)
  start_run
  settle "$interrupted" "$base"
  alive || break # finished before this kill: the run was too short
  # A random moment: up to 0.4 s later, mid-request or between two.
  sleep "0.$(printf '%03d' $((RANDOM % 400)))"
  interrupted=$(sql "SELECT group_concat(id) FROM tasks WHERE state = 1")
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  kills=$((kills + 1))
done
expect_eq "the run was killed $KILLS times before it could finish" "$KILLS" "$kills"

# The last start runs to the end.
sleep 0.3
start_run
set +e
wait "$pid"
rc=$?
set -e
expect_eq "the last run exits 0" 0 "$rc"

"$BULKHEAD" report --state "$T/state" --format jsonl >"$T/final.jsonl"
expect_eq "$((2 * N + 1)) tasks in the results" $((2 * N + 1)) "$(wc -l <"$T/final.jsonl")"
expect_eq "every one of them done" $((2 * N + 1)) \
  "$(jq -s '[.[] | select(.state == "done")] | length' "$T/final.jsonl")"
expect_eq "each (item, stage) once" "" \
  "$(jq -r '"\(.item) \(.stage) \(.element)"' "$T/final.jsonl" | sort | uniq -d)"

# Requests per task, from the servers' logs: a document's text carries its
# marker; the tag goes to the cloud, the summary to the local server.
calls() { # LOG: "MARK-nnn count" per marker found in chat requests
  jq -r 'select(.path == "/api/chat") | .body' "$1" | grep -o 'MARK-[0-9]*' | sort | uniq -c
}
max_calls() { calls "$1" | awk 'BEGIN { m = 0 } $1 > m { m = $1 } END { print m }'; }
expect_eq "every document reached the cloud tagger" "$N" "$(calls "$T/cloud.log" | wc -l)"
expect_eq "every document reached the local summarizer" "$N" "$(calls "$T/local.log" | wc -l)"
expect "no tag request was made more than twice (max $(max_calls "$T/cloud.log"))" \
  [ "$(max_calls "$T/cloud.log")" -le 2 ]
expect "no summary request was made more than twice (max $(max_calls "$T/local.log"))" \
  [ "$(max_calls "$T/local.log")" -le 2 ]
digests=$(jq -r 'select(.path == "/api/chat") | .body' "$T/local.log" | grep -c 'Write a digest' || true)
expect "the digest was asked for at most twice (got $digests)" [ "$digests" -ge 1 -a "$digests" -le 2 ]
redone=$(calls "$T/cloud.log" | awk '$1 > 1' | wc -l)
echo "# $redone tag requests and $(calls "$T/local.log" | awk '$1 > 1' | wc -l) summary requests were made twice"

expect_eq "the state database passes PRAGMA integrity_check" "ok" \
  "$(sqlite3 "$DB" 'PRAGMA integrity_check')"
expect "the audit chain survived every kill" "$BULKHEAD" audit verify --state "$T/state"
finish

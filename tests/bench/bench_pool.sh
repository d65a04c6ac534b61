#!/usr/bin/env bash
# tests/bench/bench_pool.sh — endpoint pools (issue 15, Must-show 1): one local
# endpoint over three fixture Ollama hosts that hold one model at a time and
# take LOAD_MS to load one, three models, DOCS documents x 3 stages (600 tasks
# by default), one request at a time per host. Prints the wall time against
# its lower bound — the busiest host's loads x LOAD_MS plus its generation
# time: what its replies report besides loads (total minus load duration), and
# the TOKEN_MS the fake sleeps before each reply's last (done) line, which its
# reported durations leave out —
# the loads per host, and the same run with the second host killed halfway:
# every task done, and the requests that reached any endpoint outside the pool
# (a spare local endpoint of the same pipeline, and every audit record). Asserts
# nothing. usage: tests/bench/bench_pool.sh BUILD_DIR [DOCS] [TOKEN_MS]
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:?usage: bench_pool.sh BUILD_DIR [DOCS] [TOKEN_MS]}" && pwd)
docs=${2:-200}
token_ms=${3:-15}
load_ms=200
source "$src/tests/bench/lib.sh"
bench_init pool
P="$src/tests/bench/pipelines/bench-pool.json"

mkdir -p "$work/docs"
for i in $(seq -w 1 "$docs"); do
  printf 'Document %s.\nThe quarterly figures for region %s, and what changed since.\n' "$i" "$i" \
    >"$work/docs/doc-$i.txt"
done

# hosts: three pool hosts and the spare, fresh (their counts start at 0).
hosts() {
  bench_stop_all
  local n
  for n in 1 2 3; do
    bench_fake "gpu$n" --no-cloud --slots 1 --load-ms "$load_ms" --token-ms "$token_ms"
    export "GPU${n}_URL=$URL"
    eval "gpu${n}_pid=${bench_pids[-1]}"
  done
  bench_fake spare --no-cloud
  export SPARE_URL=$URL
}
stat() { curl -s "$1/fake/stats" | jq -r ".$2"; }
now() { date +%s.%N; }

# measure NAME [KILL]: one run; with KILL, the second host is killed once half
# the pool's requests are answered. Prints its lines.
measure() {
  local name=$1 kill=${2:-} pid t0 t1 n l1 l2 l3 r1 r2 r3
  local state="$work/$name"
  hosts
  t0=$(now)
  "$build/bulkhead" run --no-cache "$P" --docs "$work/docs" --state "$state" >/dev/null 2>"$work/$name.err" &
  pid=$!
  if [ -n "$kill" ]; then
    while kill -0 "$pid" 2>/dev/null; do
      n=$(($(stat "$GPU1_URL" requests) + $(stat "$GPU2_URL" requests) + $(stat "$GPU3_URL" requests)))
      [ "$n" -ge $((docs * 3 / 2)) ] && break
      sleep 0.1
    done
    l2=$(stat "$GPU2_URL" loads) r2=$(stat "$GPU2_URL" requests)
    kill "$gpu2_pid"
  fi
  wait "$pid" || true
  t1=$(now)
  l1=$(stat "$GPU1_URL" loads) l3=$(stat "$GPU3_URL" loads)
  r1=$(stat "$GPU1_URL" requests) r3=$(stat "$GPU3_URL" requests)
  [ -n "$kill" ] || { l2=$(stat "$GPU2_URL" loads); r2=$(stat "$GPU2_URL" requests); }
  local db="$state/state.db" gen done elsewhere spare
  # Per host: what its replies say it spent besides loads, plus the done line
  # it streams token_ms after the last token (not in its reported durations).
  gen=$(sqlite3 "$db" "SELECT group_concat(endpoint || '=' || (g / 1000000 + n * $token_ms), ' ') FROM
          (SELECT endpoint, sum(total_ns - load_ns) AS g, count(*) AS n FROM tasks
           WHERE state = 2 GROUP BY endpoint)")
  done=$(sqlite3 "$db" "SELECT count(*) FROM tasks WHERE state = 2")
  elsewhere=$(sqlite3 "$db" "SELECT count(*) FROM audit WHERE endpoint NOT LIKE 'gpus#%' AND decision <> 'refuse'")
  spare=$(stat "$SPARE_URL" requests)
  awk -v name="$name" -v t="$(echo "$t1 - $t0" | bc)" -v lm="$load_ms" -v gen="$gen" \
      -v l1="$l1" -v l2="$l2" -v l3="$l3" -v r1="$r1" -v r2="$r2" -v r3="$r3" \
      -v done="$done" -v total=$((docs * 3)) -v elsewhere="$elsewhere" -v spare="$spare" 'BEGIN {
    split(gen, kv, " "); for (i in kv) { split(kv[i], p, "="); g[p[1]] = p[2] }
    l["gpus#1"] = l1; l["gpus#2"] = l2; l["gpus#3"] = l3
    bound = 0; busiest = ""
    for (h in l) { b = l[h] * lm + g[h]; if (b > bound) { bound = b; busiest = h } }
    printf "%s: %d/%d tasks done, wall %.2f s\n", name, done, total, t
    printf "  loads per host: gpus#1 %d, gpus#2 %d, gpus#3 %d; requests %d, %d, %d\n", l1, l2, l3, r1, r2, r3
    printf "  lower bound: busiest host %s: %d loads x %d ms + %.2f s generation = %.2f s\n",
           busiest, l[busiest], lm, g[busiest] / 1000, bound / 1000
    printf "  wall / lower bound: %.2fx\n", t / (bound / 1000)
    printf "  requests at any endpoint outside the pool: %d (audit), %d (spare endpoint)\n", elsewhere, spare
  }'
}

echo "pool bench: 3 hosts (--slots 1 --load-ms $load_ms --token-ms $token_ms), 3 models, $docs documents x 3 stages"
measure all-up
measure one-killed kill

#!/usr/bin/env bash
# Endpoint pools: one local endpoint "gpus" over three fixture Ollama hosts
# (each holds one model at a time), three models, and a cloud endpoint for the
# public file names. With every host up: every task done, each model kept on a
# host (affinity: few loads, each host busy), the audit and the task rows name
# the host that answered, `check --online` and `models` ask every host. Then
# the same run with one host killed mid-run: it is drained, every task is done
# on the two others, and the cloud endpoint gets exactly what it got without
# the kill (nothing of the pool's work goes anywhere else).
# --no-cache: a second run must send, not answer from the first one's cache.
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
cd "$T"
mkdir -p "$T/docs"
for i in $(seq -w 1 24); do printf "notes %s: the quarterly numbers\n" "$i" >"$T/docs/note-$i.md"; done

cat >"$T/pool.json" <<'EOF'
{
  "version": 1,
  "name": "pool",
  "endpoints": {
    "gpus": { "provider": "ollama", "locality": "local", "max_concurrency": 1,
              "urls": ["${GPU1_URL}", "${GPU2_URL}", "${GPU3_URL}"] },
    "cloud": { "provider": "ollama", "url": "${CLOUD_URL}", "locality": "cloud" }
  },
  "source": { "kind": "files", "label": "confidential", "fields": { "doc.path": "public" } },
  "stages": {
    "a": { "endpoint": "gpus", "model": "model-a", "user": "a: {{doc.path}} {{doc.text}}" },
    "b": { "endpoint": "gpus", "model": "model-b", "user": "b: {{doc.path}} {{doc.text}}" },
    "c": { "endpoint": "gpus", "model": "model-c", "user": "c: {{doc.path}} {{doc.text}}" },
    "t": { "endpoint": "cloud", "model": "tiny", "user": "name: {{doc.path}}" }
  }
}
EOF

# hosts: (re)starts the three GPU fakes and exports their URLs.
hosts() {
  local n
  for n in gpu1 gpu2 gpu3; do
    : >"$T/$n.log"
    start_fake "$n" --no-cloud --slots 1 --load-ms 50 --token-ms 4 --models model-a,model-b,model-c
  done
  export GPU1_URL=$gpu1_URL GPU2_URL=$gpu2_URL GPU3_URL=$gpu3_URL
}
stats() { curl -s "$1/fake/stats"; }
# chats LOG: the model calls a fake received (not loads, not management).
chats() { jq -s '[.[] | select(.path == "/api/chat")] | length' "$1"; }

start_fake cloud --no-cloud
export CLOUD_URL=$cloud_URL
hosts

# ---- every host up ------------------------------------------------------------
bh_run up run --no-cache "$T/pool.json" --docs "$T/docs" --state "$T/up"
expect_eq "the run succeeds" 0 "$rc"
[ "$rc" -eq 0 ] || tail -5 "$T/up.err"
expect_eq "all 96 tasks done" 96 "$(sqlite3 "$T/up/state.db" "SELECT count(*) FROM tasks WHERE state = 2")"
total=0 loads=0
for n in gpu1 gpu2 gpu3; do
  url_var="${n}_URL"
  s=$(stats "${!url_var}")
  c=$(chats "$T/$n.log")
  total=$((total + c))
  loads=$((loads + $(jq '.loads' <<<"$s")))
  eval "${n}_loads=$(jq '.loads' <<<"$s")"
  expect "$n answered model calls ($c)" [ "$c" -gt 0 ]
  expect "$n kept to at most two models ($(jq -c '.loads_per_model' <<<"$s"))" \
    [ "$(jq '[.loads_per_model[] | select(. > 0)] | length' <<<"$s")" -le 2 ]
done
expect_eq "the three hosts answered the pool's 72 calls" 72 "$total"
# One load per host to start; a host that ends early may take a share of a
# model with much left. Round-robin placement would load ~72 times.
expect "model affinity: at most 6 loads over the three hosts ($loads)" [ "$loads" -le 6 ]
expect_contains "the run counts the loads per host as the hosts did" "$T/up.err" \
  "pool 'gpus': model loads per host: gpus#1 $gpu1_loads, gpus#2 $gpu2_loads, gpus#3 $gpu3_loads"
expect "the summary names the host that answered each stage" \
  grep -q -E '^  b +local +gpus \(gpus#[123] http://127\.0\.0\.1:[0-9]+\), model model-b$' "$T/up.err"
cloud_up=$(chats "$T/cloud.log")
expect_eq "the cloud endpoint got the 24 names" 24 "$cloud_up"
"$BULKHEAD" audit show --state "$T/up" >"$T/up.audit"
expect_eq "the audit names each host of the pool, and the cloud endpoint" \
  "cloud gpus#1 gpus#2 gpus#3" \
  "$(jq -r 'select(.decision == "allow") | .endpoint' "$T/up.audit" | sort -u | tr '\n' ' ' | sed 's/ $//')"
expect_eq "each host's records carry its own URL" "1" \
  "$(jq -r --arg u "$GPU2_URL" 'select(.endpoint == "gpus#2") | (.url | startswith($u))' "$T/up.audit" | sort -u | grep -c true)"
expect "the audit verifies" "$BULKHEAD" audit verify --state "$T/up"
"$BULKHEAD" report --state "$T/up" --format jsonl >"$T/up.jsonl"
expect_eq "the report names the host each task ran on" "cloud gpus#1 gpus#2 gpus#3" \
  "$(jq -r '.endpoint // empty' "$T/up.jsonl" | sort -u | tr '\n' ' ' | sed 's/ $//')"

# ---- check --online and models ask every host ---------------------------------
bh_run online check --online "$T/pool.json" --state "$T/online"
expect_eq "check --online passes" 0 "$rc"
for n in 1 2 3; do
  url_var="GPU${n}_URL"
  expect_contains "check --online asks gpus#$n" "$T/online.out" "gpus#$n (${!url_var}): reachable"
done
bh_run models models "$T/pool.json" --state "$T/online"
expect_eq "models succeeds" 0 "$rc"
expect_eq "models lists each model on each host" 9 "$(grep -c -E '^gpus#[123] +local +model-[abc] ' "$T/models.out")"
bh_run preload models "$T/pool.json" --state "$T/online" --pull --preload
expect_eq "models --pull --preload succeeds" 0 "$rc"
expect_eq "each model is preloaded on each host, named" 9 \
  "$(grep -c -E '^preloaded model-[abc] on gpus#[123]$' "$T/preload.err")"

# ---- one host killed mid-run --------------------------------------------------
stop_fake gpu1
stop_fake gpu2
stop_fake gpu3
hosts
: >"$T/cloud.log"
set +e
"$BULKHEAD" run --no-cache "$T/pool.json" --docs "$T/docs" --state "$T/kill" >"$T/kill.out" 2>"$T/kill.err" &
run_pid=$!
set -e
for i in $(seq 1 400); do
  [ "$(chats "$T/gpu2.log")" -ge 3 ] && break
  sleep 0.02
done
stop_fake gpu2
set +e
wait "$run_pid"
rc=$?
set -e
expect_eq "the run with a host killed succeeds" 0 "$rc"
[ "$rc" -eq 0 ] || tail -5 "$T/kill.err"
expect "the killed host's tasks moved to the rest of the pool" grep -q -E \
  "host 'gpus#2' of pool 'gpus' is down|at 'gpus#2' used up: placed again on another host of pool 'gpus'" "$T/kill.err"
expect_eq "every task done" "96" \
  "$(sqlite3 "$T/kill/state.db" "SELECT count(*) FROM tasks WHERE state = 2")"
expect_eq "none failed" "0" "$(sqlite3 "$T/kill/state.db" "SELECT count(*) FROM tasks WHERE state <> 2")"
expect "the two live hosts did the rest" [ "$(sqlite3 "$T/kill/state.db" \
  "SELECT count(*) FROM tasks WHERE endpoint IN ('gpus#1', 'gpus#3')")" -gt 48 ]
expect_eq "the cloud endpoint got only its own 24 names, as without the kill" "$cloud_up" \
  "$(chats "$T/cloud.log")"
expect_eq "no pool task was recorded anywhere but the pool's hosts" 0 \
  "$(sqlite3 "$T/kill/state.db" "SELECT count(*) FROM tasks WHERE stage IN ('a','b','c') AND endpoint NOT LIKE 'gpus#%'")"
expect "the audit verifies" "$BULKHEAD" audit verify --state "$T/kill"

# ---- a stage's facts hold on every host -----------------------------------------
# One request body goes to whichever host runs the task: the smallest window wins.
stop_fake gpu1
stop_fake gpu3
start_fake gpu2 --no-cloud --models model-a,model-b,model-c --context-length 8192
export GPU2_URL=$gpu2_URL
for n in gpu1 gpu3; do start_fake "$n" --no-cloud --models model-a,model-b,model-c; done
export GPU1_URL=$gpu1_URL GPU3_URL=$gpu3_URL
bh_run ctx check --online "$T/pool.json" --state "$T/ctx"
expect_eq "check --online with one host of a smaller window" 0 "$rc"
expect_eq "every host's stage a gets the smallest window of the pool" 3 \
  "$(grep -c 'num_ctx 8192 for a (from /api/show)' "$T/ctx.out")"
finish

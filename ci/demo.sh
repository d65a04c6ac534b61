#!/usr/bin/env bash
# ci/demo.sh — the newcomer's first run: a nightly review of a sample
# repository. Builds bulkhead, makes a repository with six pull requests,
# starts two fixture model servers on 127.0.0.1 (one plays the local Ollama on
# your GPU box, one a cloud endpoint), runs pipelines/code-review.json over
# every pull request, prints the report and where each stage ran, shows that
# no canary from the code reached the cloud server, and stops the servers.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

ci/bootstrap.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" >/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/bulkhead-demo.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_server NAME ARGS...: starts a fixture server and sets ${NAME}_port. It
# must run in this shell, never in a command substitution: a subshell's pids+=
# would be lost, and the cleanup above would leave the server running.
start_server() {
  local name=$1; shift
  "$root/build/fake-llm" --port 0 --port-file "$work/$name.port" --log "$work/$name.log" \
    --name "$name" "$@" >"$work/$name.out" 2>"$work/$name.err" &
  pids+=($!)
  for _ in $(seq 1 100); do [ -s "$work/$name.port" ] && break; sleep 0.05; done
  [ -s "$work/$name.port" ] || { echo "demo: fake-llm '$name' did not start" >&2; cat "$work/$name.err" >&2; exit 1; }
  printf -v "${name}_port" '%s' "$(cat "$work/$name.port")"
}

echo "== sample repository =="
fixtures/make-repo.sh "$work/repo" --prs 6

echo "== fixture model servers =="
start_server local --load-ms 300 --slots 1 --token-ms 5
start_server cloud --token-ms 5
export BULKHEAD_LOCAL_URL="http://127.0.0.1:$local_port"
export BULKHEAD_CLOUD_URL="http://127.0.0.1:$cloud_port"
export OLLAMA_API_KEY="${OLLAMA_API_KEY:-demo-key-for-the-fixture-server}"
echo "local model server (plays Ollama on your GPU box): $BULKHEAD_LOCAL_URL"
echo "cloud model server (plays a cloud endpoint):       $BULKHEAD_CLOUD_URL"

echo "== bulkhead check =="
build/bulkhead check pipelines/code-review.json

echo "== bulkhead run =="
set +e
build/bulkhead run pipelines/code-review.json --repo "$work/repo" --base main \
  --state "$work/state" --verbose
rc=$?
set -e

echo "== report =="
build/bulkhead report --state "$work/state"

echo "== privacy =="
total=$(wc -l < "$work/repo.canaries")
in_cloud=$(grep -c -F -f "$work/repo.canaries" "$work/cloud.log" || true)
in_local=0
while read -r c; do grep -q -F "$c" "$work/local.log" && in_local=$((in_local + 1)); done < "$work/repo.canaries"
echo "canaries planted in the pull requests' code: $total"
echo "canaries seen by the local model server:     $in_local"
echo "requests to the cloud server holding a canary: $in_cloud"
build/bulkhead audit verify --state "$work/state"
echo "model server counters: local $(curl -s "$BULKHEAD_LOCAL_URL/fake/stats")"
echo "                       cloud $(curl -s "$BULKHEAD_CLOUD_URL/fake/stats")"
echo "demo files are in $work (bulkhead exit code $rc)"
[ "$in_cloud" -eq 0 ] || { echo "demo: a canary reached the cloud server" >&2; exit 1; }
exit "$rc"

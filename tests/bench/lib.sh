# tests/bench/lib.sh — what the benchmarks share: a scratch folder and fixture
# servers stopped at exit. Source it with build set (the build folder).
#
#   bench_init NAME            work=$(mktemp -d ...bh-bench-NAME...), cleanup at exit
#   bench_fake NAME [OPTS...]  starts build/fake-llm named NAME; sets URL
#   bench_stop_all             stops every server started so far
#
# bench_fake sets URL instead of printing it: a server started inside a
# command substitution runs in a subshell, whose record of its pid the exit
# trap never sees, so it would be left running after the bench.
# Folders outside work that a bench makes go in bench_also_remove.

bench_init() {
  work=$(mktemp -d "${TMPDIR:-/tmp}/bh-bench-$1.XXXXXX")
  bench_pids=()
  bench_also_remove=()
  trap bench_cleanup EXIT
}

bench_stop_all() {
  local p
  for p in "${bench_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  bench_pids=()
}

bench_cleanup() {
  bench_stop_all
  rm -rf "$work" "${bench_also_remove[@]}"
}

bench_fake() {
  local name=$1
  shift
  rm -f "$work/$name.port"
  "$build/fake-llm" --port 0 --port-file "$work/$name.port" --name "$name" "$@" >/dev/null 2>&1 &
  bench_pids+=($!)
  for _ in $(seq 1 100); do [ -s "$work/$name.port" ] && break; sleep 0.05; done
  URL="http://127.0.0.1:$(cat "$work/$name.port")"
}

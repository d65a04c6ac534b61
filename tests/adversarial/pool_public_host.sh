#!/usr/bin/env bash
# New attack: a pool whose first host is the honest loopback server and whose
# second URL is a public address. Each host of a pool is verified on its own,
# and a pool is as local as its least local host: the whole pool is refused
# (no request to the loopback host either, not even a survey), never "the
# local hosts get the data and the public one is skipped". Two spellings of
# the public host (TEST-NET-1, where nothing answers): an IP literal, and a
# host name that a hosts file maps to it. Every bulkhead here runs in a user,
# network and mount namespace of its own (nothing can leave it) together with
# the loopback fake, under strace to count connect() attempts. For each: check
# exits 3 naming the host, run exits 3 naming the host and its urls[] line,
# zero TCP connects to 192.0.2.x, zero requests at the loopback host, only
# refusals audited with 0 bytes, and audit verify is clean.
source "$BH_SOURCE_DIR/tests/adversarial/lib.sh"
cd "$T"

if ! unshare -rnm bash -c 'true' 2>/dev/null; then echo "# SKIP: no user/network/mount namespace"; exit 77; fi
command -v strace >/dev/null || { echo "# SKIP: strace is needed to count connect() attempts"; exit 77; }

make_repo "$T/repo" --prs 1
P="$ADV/pipelines/pool_public_host.json"
printf '127.0.0.1 localhost\n192.0.2.10 gpu2.example.test\n' >"$T/hosts"

# in_ns NAME GPU2_URL ARGS...: bulkhead ARGS in the namespaces, with a fake
# started inside them as host 1 (its requests logged to $T/NAME-gpu1.log) and
# ADV_GPU2_URL=GPU2_URL; connect() calls traced into $T/NAME.strace.
in_ns() {
  local name=$1 url=$2; shift 2
  N=$name FAKE=$FAKE T=$T ADV_GPU2_URL=$url bh_run_under "$name" \
    unshare -rnm bash -c '
      ip link set lo up 2>/dev/null
      mount --bind "$T/hosts" /etc/hosts || exit 97
      "$FAKE" --port 0 --port-file "$T/$N.port" --log "$T/$N-gpu1.log" --name gpu1 >/dev/null 2>&1 &
      fake=$!
      for i in $(seq 1 100); do [ -s "$T/$N.port" ] && break; sleep 0.05; done
      export ADV_GPU1_URL="http://127.0.0.1:$(cat "$T/$N.port")"
      ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
        strace -f -qq -e trace=connect -o "$T/$N.strace" -- "$@"
      rc=$?
      kill "$fake"; wait "$fake" 2>/dev/null
      exit $rc' in_ns -- "$@"
}

for c in "a http://192.0.2.10:11434" "b http://gpu2.example.test:11434"; do
  set -- $c
  k=$1 url=$2
  in_ns "$k-check" "$url" check "$P"
  expect_rc "$k: check refuses the pool with $url" 3
  expect_contains "$k: naming the public host" "$T/$k-check.out" "gpus#2       cloud  $url"
  expect_contains "$k: and the pool's stage refused" "$T/$k-check.out" "check: REFUSED"
  in_ns "$k-run" "$url" run "$P" --repo "$T/repo" --state "$T/$k.state"
  expect_rc "$k: run refuses the pool" 3
  expect_contains "$k: naming the host and its line" "$T/$k-run.err" \
    "endpoints.gpus.urls[1]: host 'gpus#2': declared local but"
  expect_eq "$k: no TCP connection to 192.0.2.x was even tried" 0 "$(tcp_connects "$T/$k-run.strace")"
  expect_eq "$k: nothing reached the loopback host either" 0 "$(wc -l <"$T/$k-run-gpu1.log")"
  expect_eq "$k: the audit holds only refusals, 0 bytes" "refuse|0" \
    "$(sqlite3 "$T/$k.state/state.db" "SELECT group_concat(DISTINCT decision), sum(bytes) FROM audit")"
  audit_says "$k" "$T/$k.state" 0
done
# Control: with the public address trusted the pool runs, and the strace
# witness sees the connect to it (it would have been tried).
BULKHEAD_TRUSTED_NETWORKS=192.0.2.0/24 in_ns ctl-run http://192.0.2.10:11434 \
  run "$P" --repo "$T/repo" --state "$T/ctl.state"
expect_eq "control: a trusted 192.0.2.10 is connected to (the witness works)" 1 \
  "$([ "$(tcp_connects "$T/ctl-run.strace")" -gt 0 ] && echo 1 || echo 0)"
finish

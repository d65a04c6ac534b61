#!/usr/bin/env bash
# Held: an endpoint declared local whose address is public. "locality": "local"
# is a claim; only loopback (or a network the user names) proves it. Three
# spellings of a public place (TEST-NET-1, where nothing answers):
#   a. the URL is a public IP literal, http://192.0.2.10:11434;
#   b. a host name that resolves to that address;
#   c. a host name that resolves to BOTH 127.0.0.1 and a public address (a
#      resolver that hands out the loopback first must not win the argument).
# Every bulkhead here runs in a user, network and mount namespace of its own
# (unshare -rnm: nothing can leave it) with a hosts file bound over
# /etc/hosts, under strace to count connect() attempts. For each: check exits 3
# naming the public address, run exits 3 with zero TCP connects to 192.0.2.x,
# the audit holds only refusals and 0 bytes, and audit verify is clean.
source "$BH_SOURCE_DIR/tests/adversarial/lib.sh"
cd "$T"

if ! unshare -rnm bash -c 'true' 2>/dev/null; then echo "# SKIP: no user/network/mount namespace"; exit 77; fi
command -v strace >/dev/null || { echo "# SKIP: strace is needed to count connect() attempts"; exit 77; }

make_repo "$T/repo" --prs 1
start_fake cloud
P="$ADV/pipelines/held_public_address.json"
printf '127.0.0.1 localhost\n192.0.2.10 gpu.example.test\n127.0.0.1 mixed.example.test\n192.0.2.11 mixed.example.test\n' \
  >"$T/hosts"

# ns_hosts NAME URL ARGS...: bulkhead ARGS in the namespaces with ADV_LOCAL_URL=URL,
# traced into $T/NAME.strace (LeakSanitizer cannot run under ptrace).
ns_hosts() {
  local name=$1 url=$2; shift 2
  ADV_LOCAL_URL=$url bh_run_under "$name" \
    unshare -rnm bash -c 'ip link set lo up 2>/dev/null; mount --bind "$0" /etc/hosts && exec "$@"' \
    "$T/hosts" env ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    strace -f -qq -e trace=connect -o "$T/$name.strace" -- "$@"
}

for c in "a http://192.0.2.10:11434" "b http://gpu.example.test:11434" "c http://mixed.example.test:11434"; do
  set -- $c
  k=$1 url=$2
  ns_hosts "$k-check" "$url" check "$P"
  expect_rc "$k: check refuses $url" 3
  expect_contains "$k: naming it a public address" "$T/$k-check.out" "declared local but public address (refused)"
  ns_hosts "$k-run" "$url" run "$P" --repo "$T/repo" --state "$T/$k.state"
  expect_rc "$k: run refuses $url" 3
  expect_contains "$k: saying the stage may receive nothing" "$T/$k-run.err" "refused to run"
  expect_eq "$k: no TCP connection to 192.0.2.x was even tried" 0 "$(tcp_connects "$T/$k-run.strace")"
  expect_eq "$k: the audit holds only refusals, 0 bytes" "refuse|0" \
    "$(sqlite3 "$T/$k.state/state.db" "SELECT group_concat(DISTINCT decision), sum(bytes) FROM audit")"
  audit_says "$k" "$T/$k.state" 0
done
# Control: the strace witness sees a connect when the address IS trusted.
BULKHEAD_TRUSTED_NETWORKS=192.0.2.0/24 ns_hosts ctl-run http://192.0.2.10:11434 run "$P" --repo "$T/repo" --state "$T/ctl.state"
expect_eq "control: a trusted 192.0.2.10 is connected to (the witness works)" 1 \
  "$([ "$(tcp_connects "$T/ctl-run.strace")" -gt 0 ] && echo 1 || echo 0)"
no_canary_at "$T/cloud.log" "$T/repo.canaries" "all"
finish

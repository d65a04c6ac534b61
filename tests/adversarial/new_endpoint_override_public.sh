#!/usr/bin/env bash
# New attack: the command line. "--endpoint gpu-box=URL" overrides a local
# endpoint URL (a CI job, a wrapper script, a copied command); pointing the
# local endpoint at a public address must not inherit the file's "local" as a
# proof: check and run exit 3, nothing connected, only refusals audited. The
# same with a public host name in a hosts file is covered by
# held_public_address. Held on main when written.
source "$BH_SOURCE_DIR/tests/adversarial/lib.sh"
cd "$T"

if ! unshare -rn true 2>/dev/null; then echo "# SKIP: no network namespace"; exit 77; fi
command -v strace >/dev/null || { echo "# SKIP: strace is needed to count connect() attempts"; exit 77; }
make_repo "$T/repo" --prs 1
P="$ADV/pipelines/held_public_address.json"
# ns NAME ARGS...: bulkhead ARGS in a network namespace of its own (nothing can
# leave it), traced into $T/NAME.strace (LeakSanitizer cannot run under ptrace).
ns() {
  local name=$1; shift
  _bh_last=$name
  set +e
  unshare -rn env ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    strace -f -qq -e trace=connect -o "$T/$name.strace" "$BULKHEAD" "$@" >"$T/$name.out" 2>"$T/$name.err"
  rc=$?
  set -e
}
# tcp_connects STRACE: connect() calls to 192.0.2.x with a port (glibc's
# address sorting connects a UDP socket to port 0: nothing is sent, not counted).
tcp_connects() { grep 'inet_addr("192\.0\.2\.' "$1" 2>/dev/null | grep -c -v 'htons(0)' || true; }

export ADV_LOCAL_URL=http://127.0.0.1:9
ns ctl check "$P"
expect_rc "control: the file as written is proved local" 0
ns check check "$P" --endpoint gpu-box=http://192.0.2.10:11434
expect_rc "check refuses the override" 3
expect_contains "naming the public address" "$T/check.out" "declared local but 192.0.2.10 is neither loopback nor in a trusted network"
ns run run "$P" --repo "$T/repo" --state "$T/s" --endpoint gpu-box=http://192.0.2.10:11434
expect_rc "run refuses the override" 3
expect_eq "no TCP connection to 192.0.2.x was tried" 0 "$(tcp_connects "$T/run.strace")"
expect_eq "the audit holds only refusals, 0 bytes" "refuse|0" \
  "$(sqlite3 "$T/s/state.db" "SELECT group_concat(DISTINCT decision), sum(bytes) FROM audit")"
audit_says "override" "$T/s" 0
finish

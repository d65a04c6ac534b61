#!/usr/bin/env bash
# New attack: a local endpoint URL whose userinfo or delimiters make two URL
# parsers disagree about the host: "http://127.0.0.1@192.0.2.10:11434/" (the
# host is 192.0.2.10; a careless check reads 127.0.0.1), the same with a port
# in the userinfo, a backslash (WHATWG parsers treat it as "/", curl does not),
# an encoded "#", and "?@" / "#@" that end the authority early. Given through
# BULKHEAD_LOCAL_URL-style variables, as a user would. Each must be refused
# (credentials in a URL: exit 2; the real host public: exit 3) and no run may
# connect to 192.0.2.x. Held on main when written.
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

for c in "2|http://127.0.0.1@192.0.2.10:11434/" "2|http://127.0.0.1:11434@192.0.2.10/" \
         "2|http://192.0.2.10\\@127.0.0.1:11434" "2|http://192.0.2.10%23@127.0.0.1:11434" \
         "3|http://192.0.2.10?@127.0.0.1:11434" "3|http://192.0.2.10#@127.0.0.1:11434"; do
  want=${c%%|*} url=${c#*|}
  ADV_LOCAL_URL=$url ns check check "$P"
  expect_rc "check refuses $url" "$want"
  ADV_LOCAL_URL=$url ns run run "$P" --repo "$T/repo" --state "$T/s"
  expect_rc "run refuses $url" "$want"
  expect_eq "$url: no TCP connection to 192.0.2.x was tried" 0 "$(tcp_connects "$T/run.strace")"
  if [ "$want" = 3 ]; then
    expect_eq "$url: the audit holds only refusals, 0 bytes" "refuse|0" \
      "$(sqlite3 "$T/s/state.db" "SELECT group_concat(DISTINCT decision), sum(bytes) FROM audit")"
    audit_says "$url" "$T/s" 0
  else
    expect_contains "$url: saying the URL holds credentials" "$T/run.err" "URL has credentials in it"
  fi
  rm -rf "$T/s"
done
finish

# tests/adversarial/lib.sh — shared by the adversarial cases (sourced, not run).
#
# Each case is an attack: a pipeline, a repository or a server that tries to get
# a labelled canary past the egress gate to a "cloud" fixture server. A case
# passes only when all three witnesses tell the truth:
#   - the cloud server's log holds no canary (in any spelling the case knows);
#   - the run's exit code says data was withheld (3) when it was;
#   - `audit verify` agrees with what happened (0 on an honest run, non-zero
#     when a breach was recorded), and `check` claims nothing it did not prove.
# Builds on tests/helpers/lib.sh: $BULKHEAD, $FAKE, $T, start_fake, expect*.
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"

ADV="$BH_SOURCE_DIR/tests/adversarial"

# no_canary_at LOG CANARIES WHAT: passes when no line of the file CANARIES
# (one canary a line) occurs in LOG, the byte log of a fixture server.
no_canary_at() {
  local log=$1 canaries=$2 what=$3 n
  n=$(grep -c -F -f "$canaries" "$log" 2>/dev/null || true)
  if [ "${n:-0}" -eq 0 ]; then ok "$what: no canary reached $(basename "$log" .log)"
  else not_ok "$what: $n line(s) of $(basename "$log" .log) hold a canary"; grep -o -F -f "$canaries" "$log" | head -3 | sed 's/^/#   /'; fi
}

# expect_rc WHAT EXPECTED: compares with the $rc of the last bh_run.
expect_rc() {
  if [ "$rc" = "$2" ]; then ok "$1 (exit $2)"
  else not_ok "$1 (expected exit $2, got $rc)"; tail -5 "$T/$_bh_last.err" 2>/dev/null | sed 's/^/#   /'; fi
}

# audit_says WHAT STATE EXPECTED_RC: `audit verify` on STATE exits EXPECTED_RC.
audit_says() {
  local what=$1 state=$2 want=$3 got
  set +e
  "$BULKHEAD" audit verify --state "$state" >"$T/audit.out" 2>&1
  got=$?
  set -e
  if [ "$got" = "$want" ]; then ok "$what: audit verify exits $want"
  else not_ok "$what: audit verify exits $got, expected $want"; sed 's/^/#   /' "$T/audit.out" | head -5; fi
}

# audit_has WHAT STATE SQL_WHERE: at least one audit record matches the WHERE
# clause (e.g. "decision = 'refuse'").
audit_has() {
  local n
  n=$(sqlite3 "$2/state.db" "SELECT count(*) FROM audit WHERE $3" 2>/dev/null || echo 0)
  if [ "${n:-0}" -gt 0 ]; then ok "$1: the audit holds a record where $3"
  else not_ok "$1: no audit record where $3"; fi
}

# need_netns_strace: the cases that must prove no connection was even tried run
# in a network namespace of their own under strace; without either they cannot
# check that, and say so with 77 (ctest's skip, which ci/test.sh refuses).
need_netns_strace() {
  unshare -rn true 2>/dev/null || { echo "# SKIP: no network namespace"; exit 77; }
  command -v strace >/dev/null || { echo "# SKIP: strace is needed to count connect() attempts"; exit 77; }
}

# ns NAME ARGS...: bulkhead ARGS in a network namespace of its own (nothing can
# leave it), traced into $T/NAME.strace (LeakSanitizer cannot run under ptrace);
# output in $T/NAME.out and .err, exit code in $rc.
ns() {
  local name=$1; shift
  bh_run_under "$name" unshare -rn env ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    strace -f -qq -e trace=connect -o "$T/$name.strace" -- "$@"
}

# tcp_connects STRACE: connect() calls to 192.0.2.x (TEST-NET-1, where nothing
# is) with a port; glibc's address sorting connects a UDP socket to port 0,
# which sends nothing and is not counted.
tcp_connects() { grep 'inet_addr("192\.0\.2\.' "$1" 2>/dev/null | grep -c -v 'htons(0)' || true; }

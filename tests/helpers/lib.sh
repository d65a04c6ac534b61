# tests/helpers/lib.sh — shared by the integration tests (sourced, not run).
# Gives: $BULKHEAD, $FAKE, a temp dir $T removed at exit, fixture servers
# started on 127.0.0.1 with a port chosen by the OS and stopped at exit, and
# TAP-like assertions ending in "NAME: N passed, N failed".
set -euo pipefail
: "${BH_BUILD_DIR:?set BH_BUILD_DIR to the build folder}"
: "${BH_SOURCE_DIR:?set BH_SOURCE_DIR to the source folder}"
BH_BUILD_DIR=$(cd "$BH_BUILD_DIR" && pwd)
BH_SOURCE_DIR=$(cd "$BH_SOURCE_DIR" && pwd)
BULKHEAD="$BH_BUILD_DIR/bulkhead"
FAKE="$BH_BUILD_DIR/fake-llm"
TEST_NAME=$(basename "$0" .sh)
# The shipped pipelines' cloud endpoint names OLLAMA_API_KEY; bulkhead refuses
# to start without it. A dummy: the fixture servers take any key.
export OLLAMA_API_KEY="${OLLAMA_API_KEY:-bulkhead-test-dummy-key}"
T=$(mktemp -d "${TMPDIR:-/tmp}/bh-$TEST_NAME.XXXXXX")
_pids=()
_bh_last="" # NAME of the last bh_run: what expect_rc shows when the code is not the one expected
_passed=0
_failed=0
_skipped=()

_cleanup() {
  for p in "${_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$_failed" -eq 0 ] && [ -z "${BH_KEEP:-}" ]; then rm -rf "$T"; else echo "# files kept in $T"; fi
}
trap _cleanup EXIT

ok() { _passed=$((_passed + 1)); echo "ok - $*"; }
not_ok() { _failed=$((_failed + 1)); echo "not ok - $*"; }

# expect DESCRIPTION COMMAND...: passes when the command succeeds.
expect() {
  local what=$1; shift
  if "$@"; then ok "$what"; else not_ok "$what"; fi
}

# expect_eq DESCRIPTION EXPECTED ACTUAL
expect_eq() {
  if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1 (expected '$2', got '$3')"; fi
}

# expect_contains DESCRIPTION FILE TEXT
expect_contains() {
  if grep -q -F -- "$3" "$2"; then ok "$1"; else not_ok "$1 ('$3' not in $2)"; sed 's/^/#   /' "$2" | head -20; fi
}

# start_fake NAME [fake-llm options]: starts a server, sets ${NAME}_PORT and
# ${NAME}_URL, logs every request to $T/NAME.log.
start_fake() {
  local name=$1; shift
  rm -f "$T/$name.port"
  "$FAKE" --port 0 --port-file "$T/$name.port" --log "$T/$name.log" --name "$name" "$@" >/dev/null \
    2>>"$T/$name.err" &
  _pids+=($!)
  eval "${name}_PID=$!"
  local i
  for i in $(seq 1 200); do [ -s "$T/$name.port" ] && break; sleep 0.05; done
  if [ ! -s "$T/$name.port" ]; then echo "fake-llm '$name' did not start:"; cat "$T/$name.err"; exit 1; fi
  eval "${name}_PORT=$(cat "$T/$name.port")"
  eval "${name}_URL=http://127.0.0.1:$(cat "$T/$name.port")"
  touch "$T/$name.log"
}

# stop_fake NAME
stop_fake() {
  local pid_var="${1}_PID"
  kill "${!pid_var}" 2>/dev/null || true
  wait "${!pid_var}" 2>/dev/null || true
}

# expect_clean_stop NAME...: stops each fixture server with SIGTERM and expects
# a 0 exit with nothing from the sanitizers in its stderr (in an Asan build: no leak).
expect_clean_stop() {
  local s pid_var rc
  for s in "$@"; do
    pid_var="${s}_PID" rc=0
    kill -TERM "${!pid_var}"
    wait "${!pid_var}" || rc=$?
    expect_eq "$s: exits 0 on SIGTERM" 0 "$rc"
    expect "$s: no sanitizer or leak report" bash -c '! grep -Eq "Sanitizer|runtime error|leak" "$1"' _ "$T/$s.err"
  done
}

# bh_run NAME ARGS...: runs bulkhead ARGS with its stdout in $T/NAME.out, its
# stderr in $T/NAME.err and its exit code in $rc, whatever the code (the script
# goes on to assert it). Variables for one call go before it, as for a
# command: BULKHEAD_LOCAL_URL=... bh_run NAME run ...
bh_run() {
  local name=$1; shift
  bh_run_under "$name" -- "$@"
}

# bh_run_under NAME COMMAND... -- ARGS...: the same, with bulkhead started by
# COMMAND (unshare, strace, env ...), as in: COMMAND... "$BULKHEAD" ARGS...
bh_run_under() {
  local name=$1; shift
  local pre=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do pre+=("$1"); shift; done
  [ $# -gt 0 ] || { echo "bh_run_under: no -- before bulkhead's arguments" >&2; exit 2; }
  shift
  _bh_last=$name
  set +e
  "${pre[@]}" "$BULKHEAD" "$@" >"$T/$name.out" 2>"$T/$name.err"
  rc=$?
  set -e
}

# make_repo DIR [--prs N]
make_repo() {
  "$BH_SOURCE_DIR/fixtures/make-repo.sh" "$@" >/dev/null
}

# A TCP port on 127.0.0.1 where nothing listens: one the OS gave a server that then stopped.
closed_port() {
  start_fake closed
  stop_fake closed
  echo "$closed_PORT"
}

# A jq filter that drops the probe a run sends first to each local model
# where the server does not refuse stubs itself: a chat whose only message is
# this fixed public text (model management, no item data; README "Cloud
# stubs"). Tests that count a stage's requests use it: jq "... | $NOT_PROBE".
NOT_PROBE='select((try (.body | fromjson | .messages[-1].content) catch null) != "Reply with OK.")'

# skip_part WHY: a check of this script could not run here (no network
# namespace, no strace). The script goes on with the others, and finish then
# ends it with 77, ctest's skip, unless something failed: a check that could
# not run has not passed, and ci/test.sh fails on a skip it does not allow.
skip_part() {
  _skipped+=("$*")
  echo "# skipped: $*"
}

# A script that asserted nothing has shown nothing: it fails.
finish() {
  echo "$TEST_NAME: $_passed passed, $_failed failed"
  if [ $((_passed + _failed)) -eq 0 ]; then
    echo "$TEST_NAME: no assertion was made: a test that checks nothing cannot pass"
    _failed=1
  fi
  if [ "$_failed" -eq 0 ] && [ ${#_skipped[@]} -gt 0 ]; then
    echo "$TEST_NAME: skipped, ${#_skipped[@]} check(s) could not run here: ${_skipped[*]}"
    return 77
  fi
  [ "$_failed" -eq 0 ]
}

#!/usr/bin/env bash
# Ways a diff could leave the machine although its stage is local, each of
# which must be refused or kept local, with the cloud fake's log holding no
# canary in every case:
#   a. proxy variables pointing at the cloud server, shipped pipeline;
#   b. the local server answering 307 to the cloud server;
#   c. an endpoint declared local whose URL is a public IP literal;
#   d. a :cloud / -cloud model on a loopback endpoint;
#   e. a local model that is a cloud stub (its reply carries remote_host).
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
cd "$T"

PIPES="$BH_SOURCE_DIR/fixtures/pipelines/itest"
make_repo "$T/repo" --prs 2
start_fake cloud
export OLLAMA_API_KEY=sk-itest-leaks-KEY-0b9e

no_canary_in_cloud() { # WHAT
  expect_eq "$1: the cloud log holds no canary" 0 "$(grep -c -F -f "$T/repo.canaries" "$T/cloud.log" || true)"
}
# --- a. proxies --------------------------------------------------------------
# Every proxy variable points at the cloud server. A local endpoint must ignore
# them (behind a proxy every address check sees the proxy). A cloud endpoint may
# use a proxy (issue 4), so this test asserts nothing about how the plan's
# request travels: NO_PROXY=localhost exempts the cloud URL (named "localhost")
# only so that the plan succeeds and the local stages, which read its output,
# run at all. The local URL (127.0.0.1) is not exempt, and a control with
# curl shows that this environment does send a request for it to the proxy.
start_fake local
cloud_host_url="http://localhost:$cloud_PORT"
proxy_env=(env -u no_proxy -u https_proxy -u all_proxy NO_PROXY=localhost
  HTTPS_PROXY="$cloud_URL" HTTP_PROXY="$cloud_URL" ALL_PROXY="$cloud_URL" http_proxy="$cloud_URL")
"${proxy_env[@]}" curl -s -o /dev/null "$local_URL/api/version" || true
expect_eq "a: control: libcurl proxies a request for the local URL in this environment" 1 \
  "$(grep -c -F "\"path\":\"$local_URL/api/version\"" "$T/cloud.log" || true)"
: >"$T/cloud.log"
: >"$T/local.log"
set +e
"${proxy_env[@]}" BULKHEAD_LOCAL_URL="$local_URL" BULKHEAD_CLOUD_URL="$cloud_host_url" \
  "$BULKHEAD" run "$BH_SOURCE_DIR/pipelines/code-review.json" --repo "$T/repo" --base main \
  --state "$T/a.state" >"$T/a.out" 2>"$T/a.err"
rc=$?
set -e
expect_eq "a: run exits 0" 0 "$rc"
[ "$rc" -eq 0 ] || sed 's/^/#   /' "$T/a.err"
no_canary_in_cloud "a"
expect_eq "a: the proxy (cloud server) saw nothing but the 2 plans" '"gpt-oss:120b"' \
  "$(jq -r 'select(.method == "POST") | .body' "$T/cloud.log" | jq -c .model | sort | uniq -c | awk '{print $2}')"
expect_eq "a: ...and no request for the local server's URL" 0 \
  "$(grep -c -F "127.0.0.1:$local_PORT" "$T/cloud.log" || true)"
seen=0
while read -r c; do grep -q -F "$c" "$T/local.log" && seen=$((seen + 1)); done <"$T/repo.canaries"
expect_eq "a: every diff reached the local server directly" 2 "$seen"
expect_eq "a: 2 local requests (the reviews; summaries of declassified reviews go to the cloud), in origin form" 2 \
  "$(jq -s "[.[] | select(.method == \"POST\" and .path == \"/api/chat\") | $NOT_PROBE] | length" "$T/local.log")"
expect "a: audit verifies" "$BULKHEAD" audit verify --state "$T/a.state"
stop_fake local

# --- b. redirect from the local server to the cloud server -------------------
: >"$T/cloud.log"
sed "s|@LOCATION@|$cloud_URL/api/chat|" "$BH_SOURCE_DIR/fixtures/scripts/redirect-to.json" >"$T/redirect.json"
start_fake redir --script "$T/redirect.json"
bh_run b run "$BH_SOURCE_DIR/pipelines/code-review.json" --repo "$T/repo" --base main \
  --state "$T/b.state" --endpoint "gpu-box=$redir_URL" --endpoint "cloud=$cloud_URL"
expect_eq "b: run exits 4 (the reviews failed)" 4 "$rc"
expect_contains "b: the error says the redirect was not followed" "$T/b.err" "never follows redirects"
no_canary_in_cloud "b"
expect_eq "b: the cloud server saw only the 2 plans" 2 "$(jq -s 'length' "$T/cloud.log")"
# The probe goes before the first review (README "Cloud stubs"): its
# redirect is not followed and fails the review before any of its data is
# sent, so the redirecting server holds the one probe (a probe that fails for
# good is not sent again in the run: every review ends with its error).
expect_eq "b: the local server got no review (the probe's redirect failed them first)" 0 \
  "$(jq -s "[.[] | select(.method == \"POST\") | $NOT_PROBE] | length" "$T/redir.log")"
expect_eq "b: ...only the probe, once (a redirect is not retried)" 1 \
  "$(jq -s '[.[] | select(.method == "POST" and .path == "/api/chat")] | length' "$T/redir.log")"
expect_eq "b: the API key never reached the local server" 0 "$(grep -c -F 'leaks-KEY-0b9e' "$T/redir.log" || true)"
expect "b: audit verifies" "$BULKHEAD" audit verify --state "$T/b.state"

# tcp_connects STRACE: connect() calls to 192.0.2.x with a port. glibc's
# getaddrinfo connects a UDP socket to port 0 to sort addresses (RFC 3484):
# that sends nothing and is not counted.
tcp_connects() {
  [ -f "$1" ] || { echo 0; return; }
  grep 'inet_addr("192\.0\.2\.' "$1" | grep -c -v 'htons(0)' || true
}

# --- c. declared local, public IP literal (TEST-NET-1, nothing there) --------
: >"$T/cloud.log"
export ITEST_LOCAL_URL=http://192.0.2.10:11434
bh_run c-check check "$PIPES/leak-local.json"
expect_eq "c: check refuses (exit 3)" 3 "$rc"
expect_contains "c: naming the public address" "$T/c-check.out" "declared local but public address (refused)"
# The run must refuse before connecting. It runs in a network namespace of its
# own when possible (nothing can leave it), and under strace to see an attempt.
if unshare -rn true 2>/dev/null; then
  # LeakSanitizer cannot run under ptrace: traced runs go without it, and an
  # untraced run below keeps the leak check for this path.
  tracer=()
  command -v strace >/dev/null || skip_part "c: no strace here: connect() attempts are not counted"
  command -v strace >/dev/null && tracer=(env ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
    strace -f -qq -e trace=connect -o "$T/c.strace")
  bh_run_under c unshare -rn "${tracer[@]}" -- run "$PIPES/leak-local.json" --repo "$T/repo" \
    --state "$T/c.state"
  expect_eq "c: run refuses (exit 3)" 3 "$rc"
  expect_contains "c: saying why" "$T/c.err" "refused to run"
  if [ -n "${tracer[*]}" ]; then
    expect_eq "c: no connection to the public address was even tried" 0 \
      "$(tcp_connects "$T/c.strace")"
  fi
  "$BULKHEAD" audit show --state "$T/c.state" >"$T/c.audit"
  expect_eq "c: the audit records the refusal and allows nothing" refuse \
    "$(jq -r .decision "$T/c.audit" | sort -u | tr '\n' ' ' | sed 's/ $//')"
  expect_eq "c: nothing was sent (0 bytes)" 0 "$(jq -s 'map(.bytes) | add // 0' "$T/c.audit")"
  bh_run_under c-untraced unshare -rn -- run "$PIPES/leak-local.json" --repo "$T/repo" \
    --state "$T/c.state2"
  expect_eq "c: run refuses untraced too (exit 3)" 3 "$rc"
  # Model management is refused there too: not even a model name goes to it.
  bh_run_under c-models unshare -rn -- models "$PIPES/leak-local.json" --state "$T/c.models"
  expect_contains "c: models refuses to list the endpoint's models" "$T/c-models.err" \
    "refused to list models"
  expect_eq "c: and audits only a refusal" refuse \
    "$("$BULKHEAD" audit show --state "$T/c.models" | jq -r .decision | sort -u | tr '\n' ' ' | sed 's/ $//')"
else
  skip_part "c: no unprivileged network namespace here: run not exercised, check only"
fi
unset ITEST_LOCAL_URL
no_canary_in_cloud "c"

# --- c2. a hostname mapped to a public address, and one mapped to both --------
# In a user, network and mount namespace of their own, a hosts file bound over
# /etc/hosts maps the names; the host's files are untouched.
printf '127.0.0.1 localhost\n192.0.2.10 gpu.example.test\n127.0.0.1 mixed.example.test\n192.0.2.11 mixed.example.test\n' \
  >"$T/hosts"
in_ns() { # NAME URL bulkhead-args...: bulkhead in the namespaces, under strace if present
  local name=$1 url=$2; shift 2
  local tr=()
  command -v strace >/dev/null && tr=(env ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
    strace -f -qq -e trace=connect -o "$T/$name.strace")
  ITEST_LOCAL_URL=$url bh_run_under "$name" \
    unshare -rnm bash -c 'ip link set lo up 2>/dev/null; mount --bind "$0" /etc/hosts && exec "$@"' \
    "$T/hosts" "${tr[@]}" -- "$@"
}
if unshare -rnm bash -c "mount --bind '$T/hosts' /etc/hosts" 2>/dev/null; then
  command -v strace >/dev/null || skip_part "c2: no strace here: connect() attempts are not counted"
  for h in gpu mixed; do
    in_ns "c2-$h-check" "http://$h.example.test:11434" check "$PIPES/leak-local.json"
    expect_eq "c2: check refuses $h.example.test (exit 3)" 3 "$rc"
    expect_contains "c2: $h.example.test: as a public address" "$T/c2-$h-check.out" \
      "declared local but public address (refused)"
    in_ns "c2-$h-run" "http://$h.example.test:11434" run "$PIPES/leak-local.json" \
      --repo "$T/repo" --state "$T/c2-$h.state"
    expect_eq "c2: run refuses $h.example.test (exit 3)" 3 "$rc"
    # Without strace there is no log to count in: an absent log must not read as 0.
    if command -v strace >/dev/null; then
      expect_eq "c2: $h.example.test: no connection was tried" 0 "$(tcp_connects "$T/c2-$h-run.strace")"
    fi
  done
else
  skip_part "c2: no unprivileged user/mount namespace here: not exercised"
fi

# --- d. :cloud / -cloud models on a loopback endpoint -------------------------
start_fake loop
export ITEST_LOCAL_URL=$loop_URL
bh_run d-check check "$PIPES/leak-cloud-model.json"
expect_eq "d: check refuses (exit 3)" 3 "$rc"
expect_contains "d: -cloud is cloud" "$T/d-check.out" "model name ends in -cloud"
expect_contains "d: :cloud is cloud" "$T/d-check.out" "model name ends in :cloud"
bh_run d run "$PIPES/leak-cloud-model.json" --repo "$T/repo" --state "$T/d.state"
expect_eq "d: run refuses (exit 3)" 3 "$rc"
expect_contains "d: naming the -cloud stage" "$T/d.err" "stages.dash: refused"
expect_contains "d: naming the :cloud stage" "$T/d.err" "stages.colon: refused"
expect_eq "d: the loopback server (which would forward) got nothing" 0 "$(wc -l <"$T/loop.log")"
no_canary_in_cloud "d"
unset ITEST_LOCAL_URL

# --- e. a cloud stub under a local-looking name -------------------------------
start_fake stub --remote coder-stub:7b
export ITEST_LOCAL_URL=$stub_URL
bh_run e run "$PIPES/leak-local.json" --repo "$T/repo" --state "$T/e.state"
expect_eq "e: a stub model on a local endpoint makes the run exit 3" 3 "$rc"
expect_contains "e: saying the server forwards it" "$T/e.err" "a cloud stub that the server forwards to"
"$BULKHEAD" report --state "$T/e.state" --format jsonl >"$T/e.report"
expect_eq "e: no task is done" 0 "$(jq -s '[.[] | select(.state == "done")] | length' "$T/e.report")"
expect_eq "e: no output kept" 0 "$(jq -s '[.[] | select((.output // "") != "")] | length' "$T/e.report")"
expect "e: audit verifies" "$BULKHEAD" audit verify --state "$T/e.state"
no_canary_in_cloud "e"
# Issue 4: "before a local stage sends data bulkhead checks the model in
# /api/tags or /api/show: a non-empty remote_host/remote_model makes it cloud",
# and "a reply chunk that carries remote_host on a local stage is a policy
# breach: the task stops, the audit records it".
expect_eq "e: the stub got no diff (remote_host checked before sending)" 0 \
  "$(grep -c -F -f "$T/repo.canaries" "$T/stub.log" || true)"
"$BULKHEAD" audit show --state "$T/e.state" >"$T/e.audit"
expect_eq "e: the audit records the breach" 1 \
  "$(jq -s '[.[] | select(.decision != "allow" or ((.reason // "") | test("forward|remote")))] | length > 0 | if . then 1 else 0 end' "$T/e.audit")"
expect_eq "e: no key anywhere" 0 \
  "$(cat "$T"/*.out "$T"/*.err "$T"/*.audit "$T/e.report" | grep -c -F 'leaks-KEY-0b9e' || true)"
finish

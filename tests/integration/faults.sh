#!/usr/bin/env bash
# Each fault of fake-llm's --script against three local stages, one per
# dialect (ollama, openai, anthropic), with the outcome issue 4 asks for:
# 429 with Retry-After, 503 and a cut stream are retried on the same endpoint
# and end done; invalid JSON, a stall, an oversize reply, a 307 redirect and a
# 401 fail with a message that says why and names the endpoint and model.
# Every run: one audit record per request the fake saw, and the chain
# verifies; every failing run exits 4.
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
cd "$T"

PIPES="$BH_SOURCE_DIR/fixtures/pipelines/itest"
SCRIPTS="$BH_SOURCE_DIR/fixtures/scripts"
DIALECTS="ollama openai anthropic"
make_repo "$T/repo" --prs 1

# run_fault NAME PIPELINE SCRIPT: a fresh fake "NAME" with the script, one run
# into $T/NAME.state; sets rc and writes $T/NAME.{out,err,report,audit,stats}.
run_fault() {
  local name=$1 pipe=$2 script=$3 url_var=${1}_URL
# --no-cloud: the local server refuses cloud models itself, so a run sends it no probe
# (README "Cloud stubs") and the requests counted here are the stages' alone.
  start_fake "$name" --no-cloud --script "$script"
  ITEST_LOCAL_URL=${!url_var} bh_run "$name" run "$PIPES/$pipe" --repo "$T/repo" \
    --state "$T/$name.state"
  curl -s "${!url_var}/fake/stats" >"$T/$name.stats"
  "$BULKHEAD" report --state "$T/$name.state" --format jsonl >"$T/$name.report"
  "$BULKHEAD" audit show --state "$T/$name.state" >"$T/$name.audit"
}

# requests NAME MODEL: model calls the fake counted for MODEL.
requests() { jq -r --arg m "$2" '.requests_per_model[$m] // 0' "$T/$1.stats"; }

# common NAME: the checks every run passes.
common() {
  local name=$1 posts
  posts=$(jq -s '[.[] | select(.method == "POST")] | length' "$T/$name.log")
  expect_eq "$name: one audit record per request the fake saw" "$posts" \
    "$(jq -s '[.[] | select(.stage != "")] | length' "$T/$name.audit")"
  expect_eq "$name: the fake counted the same requests" "$posts" "$(jq -r .requests "$T/$name.stats")"
  if "$BULKHEAD" audit verify --state "$T/$name.state" >/dev/null 2>"$T/$name.verify"; then
    ok "$name: audit verify passes"
  else
    not_ok "$name: audit verify passes"; sed 's/^/#   /' "$T/$name.verify"
  fi
}

# retried NAME FAULT: each stage saw the fault once, was retried and is done.
retried() {
  local name=$1 fault=$2 d
  expect_eq "$name: run exits 0" 0 "$rc"
  [ "$rc" -eq 0 ] || sed 's/^/#   /' "$T/$name.err"
  for d in $DIALECTS; do
    expect_eq "$name: $d was sent twice (the fault, then the retry)" 2 "$(requests "$name" "m-$d")"
    expect_eq "$name: $d is done" done \
      "$(jq -r --arg s "$d" 'select(.stage == $s) | .state' "$T/$name.report")"
    expect_eq "$name: $d's output is the retry's reply" "fake-llm reply: server=$name model=m-$d" \
      "$(jq -r --arg s "$d" 'select(.stage == $s) | .output' "$T/$name.report" | cut -d' ' -f1-4)"
  done
  expect_eq "$name: the fake answered 3 $fault faults" 3 \
    "$(jq -r --arg k "$fault" '.faults_per_kind[$k] // 0' "$T/$name.stats")"
  expect_eq "$name: every attempt went to the same endpoint" \
    "$(jq -r .endpoint "$T/$name.report" | sort -u)" "$(jq -r .endpoint "$T/$name.audit" | sort -u)"
  common "$name"
}

# failed NAME PIPELINE ATTEMPTS TEXT...: each stage failed after ATTEMPTS
# requests; its error names its endpoint, URL and model and holds every TEXT.
failed() {
  local name=$1 pipe=$2 attempts=$3 d err url_var text
  shift 3
  url_var=${name}_URL
  expect_eq "$name: run exits 4" 4 "$rc"
  for d in $DIALECTS; do
    expect_eq "$name: $d was sent $attempts time(s)" "$attempts" "$(requests "$name" "m-$d")"
    expect_eq "$name: $d failed" failed \
      "$(jq -r --arg s "$d" 'select(.stage == $s) | .state' "$T/$name.report")"
    err=$(jq -r --arg s "$d" 'select(.stage == $s) | .error // ""' "$T/$name.report")
    printf '%s\n' "$err" >"$T/$name.$d.error"
    expect_contains "$name: $d's error names the endpoint, its URL and the model" "$T/$name.$d.error" \
      "endpoint '$d-box' (${!url_var}), model 'm-$d'"
    for text in "$@"; do
      if grep -q -i -E -- "$text" "$T/$name.$d.error"; then ok "$name: $d's error says /$text/"
      else not_ok "$name: $d's error says /$text/ (got: $err)"; fi
    done
  done
  expect_contains "$name: stderr says why too" "$T/$name.err" "model 'm-ollama'"
  common "$name"
}

# 429 with Retry-After: 1 — waits, then succeeds.
run_fault f429 faults.json "$SCRIPTS/fault-429-once.json"
retried f429 http429

# 503, queue full — back-pressure, retried.
run_fault f503 faults.json "$SCRIPTS/fault-503-once.json"
retried f503 http503

# A stream cut before its final chunk — retried.
run_fault fcut faults.json "$SCRIPTS/fault-cut-once.json"
retried fcut cut

# A garbage line in the stream: the reply cannot be trusted, never retried.
run_fault fjson faults.json "$SCRIPTS/fault-invalid-json.json"
failed fjson faults.json 1 "json|invalid|parse"

# 200 headers then silence longer than first_byte_timeout_s / idle_timeout_s 1.
run_fault fstall faults-once.json "$SCRIPTS/fault-stall.json"
failed fstall faults-once.json 1 "no reply within|stalled"

# A 10 MiB reply against the 8 MiB cap: fails at the cap, not retried.
run_fault fbig faults.json "$SCRIPTS/fault-big.json"
failed fbig faults.json 1 "exceeds|cap" "[0-9]+ bytes"

# 401: fails at once.
run_fault f401 faults.json "$SCRIPTS/fault-401.json"
failed f401 faults.json 1 "401|unauthori[sz]ed|api key"

# 307 to a second server: not followed; the second server gets nothing.
start_fake target
sed "s|@LOCATION@|$target_URL/api/chat|" "$SCRIPTS/redirect-to.json" >"$T/redirect.json"
run_fault f307 faults.json "$T/redirect.json"
failed f307 faults.json 1 "redirect" "$target_URL"
expect_eq "f307: the redirect target received nothing" 0 "$(wc -l <"$T/target.log")"
expect_eq "f307: no canary anywhere but the first server" 0 \
  "$(grep -c -F -f "$T/repo.canaries" "$T/target.log" || true)"
finish

#!/usr/bin/env bash
# New attack (pools and the probe together): one host of a local pool is an
# Ollama older than 0.18 that holds a cloud stub under the model's name and
# hides it from /api/tags and /api/show; the other host is honest. The probe
# goes before the first request to each (host, model), so the stub host can
# only ever have seen the probe's fixed text; once a probe's reply shows the
# stub, the model counts as cloud on every host of the pool (a stub is a fact
# of the pool's model, and the pool is as local as its least local host), so
# nothing labelled goes to either host from then on, and the run says so
# (exit 3, refusals audited, audit verify clean: nothing was breached).
# Variant "both": every host holds the stub: every review is refused.
source "$BH_SOURCE_DIR/tests/adversarial/lib.sh"
cd "$T"

PIPE="$ADV/pipelines/pool_hidden_stub.json"
make_repo "$T/repo" --prs 4
start_fake cloud
start_fake stub --server-version 0.17.0 --models coder:7b --remote coder:7b --hide-stubs
start_fake honest --server-version 0.17.0 --models coder:7b
export ADV_CLOUD_URL=$cloud_URL

only_probe_text() { # LOG: the distinct texts of the chats a fake received
  jq -r 'select(.path == "/api/chat") | .body | fromjson | .messages[-1].content' "$1" | sort -u | paste -sd'|'
}
probes_at() { jq -s '[.[] | select(.path == "/api/chat")] | length' "$1"; }

# --- the stub is host 1, the honest server host 2 ------------------------------
export ADV_GPU1_URL=$stub_URL ADV_GPU2_URL=$honest_URL
bh_run mixed run "$PIPE" --repo "$T/repo" --state "$T/mixed.state"
no_canary_at "$T/stub.log" "$T/repo.canaries" "mixed pool: the stub host"
no_canary_at "$T/cloud.log" "$T/repo.canaries" "mixed pool: the cloud endpoint"
expect_eq "mixed pool: the stub host saw only the probe's fixed text" "Reply with OK." \
  "$(only_probe_text "$T/stub.log")"
expect_eq "mixed pool: the stub host was probed (host 1 takes the first task)" 1 \
  "$(probes_at "$T/stub.log")"
expect_rc "mixed pool: the run exits 3 (reviews withheld once the stub showed)" 3
expect_contains "mixed pool: the run names the stub and its host" "$T/mixed.err" \
  "endpoint 'gpus#1': model 'coder:7b' is a cloud stub that the server forwards to 'https://ollama.com:443' (seen in the probe's reply"
audit_has "mixed pool: the refusals are audited, naming the stub" "$T/mixed.state" \
  "decision = 'refuse' AND stage = 'review' AND reason LIKE '%cloud stub%'"
audit_says "mixed pool: nothing was breached" "$T/mixed.state" 0

# --- every host holds the stub ---------------------------------------------------
: >"$T/stub.log"
start_fake stub2 --server-version 0.17.0 --models coder:7b --remote coder:7b --hide-stubs
export ADV_GPU1_URL=$stub_URL ADV_GPU2_URL=$stub2_URL
bh_run both run "$PIPE" --repo "$T/repo" --state "$T/both.state"
expect_rc "both stubs: the run exits 3" 3
no_canary_at "$T/stub.log" "$T/repo.canaries" "both stubs: host 1"
no_canary_at "$T/stub2.log" "$T/repo.canaries" "both stubs: host 2"
for n in stub stub2; do
  [ -s "$T/$n.log" ] || continue
  expect_eq "both stubs: $n saw only the probe's fixed text" "Reply with OK." \
    "$(only_probe_text "$T/$n.log")"
done
"$BULKHEAD" report --state "$T/both.state" --format jsonl >"$T/both.jsonl"
expect_eq "both stubs: every review withheld, none done" "withheld withheld withheld withheld" \
  "$(jq -r 'select(.stage == "review") | .state' "$T/both.jsonl" | paste -sd' ')"
audit_says "both stubs: nothing was breached" "$T/both.state" 0
finish

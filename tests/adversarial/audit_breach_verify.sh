#!/usr/bin/env bash
# A breach is evidence, and `audit verify` must not sleep through it. A local
# stage's model is a cloud stub that hides from /api/tags and /api/show
# (fake-llm --hide-stubs) on a server too old for the ":local" suffix: the
# diff leaves before anything can know, and only the reply's remote_host
# shows it. The run must stop that task (exit 3) and audit a breach record;
# `audit verify` must then exit 3 naming the breach (seq, stage, endpoint,
# model, reason) while saying that the chain itself is intact; a record
# tampered with afterwards must still fail as a broken chain.
source "$BH_SOURCE_DIR/tests/adversarial/lib.sh"
cd "$T"
make_repo "$T/repo" --prs 1
start_fake cloud
start_fake stub --server-version 0.12.3 --models 'mybot' --remote mybot --hide-stubs --remote-after 1
P="$ADV/pipelines/audit_breach_verify.json"

export BULKHEAD_LOCAL_URL=$stub_URL BULKHEAD_CLOUD_URL=$cloud_URL
bh_run run run "$P" --repo "$T/repo" --state "$T/s"
expect_rc "the forwarded reply makes the run a refusal" 3
expect_contains "the run says the server forwarded the request" "$T/run.err" \
  "the server forwarded this request to"
no_canary_at "$T/cloud.log" "$T/repo.canaries" "the title stage"
audit_has "the breach is recorded as such" "$T/s" "decision = 'breach' AND stage = 'review'"

audit_says "a breach record fails the verification" "$T/s" 3
expect_contains "verify names the breach: seq, stage, endpoint, model" "$T/audit.out" \
  "breach at stage 'review', endpoint 'gpu-box' (local, $stub_URL), model 'mybot'"
expect_contains "verify names the breach: the reason" "$T/audit.out" \
  "the reply says the server forwarded the request to"
expect_contains "verify says the chain is intact all the same" "$T/audit.out" "chain intact"
seq=$(sqlite3 "$T/s/state.db" "SELECT seq FROM audit WHERE decision = 'breach' LIMIT 1")
expect_contains "verify names the record's seq" "$T/audit.out" "audit record $seq "

bh_run check check "$P"
expect_rc "check proved nothing wrong statically (the stub is a run-time fact)" 0

# Tampering is still caught first, as a broken chain.
sqlite3 "$T/s/state.db" "UPDATE audit SET reason = 'nothing happened' WHERE decision = 'breach'"
audit_says "a tampered breach record fails as before" "$T/s" 3
expect_contains "as an altered log" "$T/audit.out" "hash does not match its contents"
finish

#!/usr/bin/env bash
# "A decision that cannot be recorded is not taken." The state database is
# made to refuse audit inserts (a trigger that RAISE(ABORT)s, installed by
# the test: no hook in bulkhead) at chosen points. Each time the run must
# stop at once with exit 70, naming the state database and SQLite's error,
# and send nothing after the failed write: the audit stops growing and the
# fixture servers' logs end where the audit ends.
#   a. the third review request's record fails: two reviews were sent, then
#      nothing more (no third review, no cloud request of any kind);
#   b. every record fails: not even the probes of the model servers go out;
#   c. a breach record fails to be written (a stub found only in the reply):
#      the run stops too, with 70, not 3.
source "$BH_SOURCE_DIR/tests/adversarial/lib.sh"
cd "$T"
make_repo "$T/repo" --prs 4
start_fake local --models qwen3:8b
start_fake cloud
export BULKHEAD_LOCAL_URL=$local_URL BULKHEAD_CLOUD_URL=$cloud_URL
P="$ADV/pipelines/audit_write_failure.json"
db="$T/s/state.db"
chats() { grep -c '"path":"/api/chat"' "$T/$1.log" || true; }

# A first, clean run makes the state database.
bh_run first run "$P" --repo "$T/repo" --state "$T/s" --no-cache
expect_rc "the first run is clean" 0
audit_says "the first run" "$T/s" 0

# --- a. the third review record cannot be written --------------------------
# From the moment two reviews of the run are recorded, every insert fails.
sqlite3 "$db" "CREATE TRIGGER fail_audit BEFORE INSERT ON audit
  WHEN (SELECT count(*) FROM audit WHERE run_id = NEW.run_id AND stage = 'review'
        AND decision = 'allow') >= 2
  BEGIN SELECT RAISE(ABORT, 'injected audit failure'); END;"
: >"$T/local.log"; : >"$T/cloud.log"
bh_run a run "$P" --repo "$T/repo" --state "$T/s" --fresh --no-cache
expect_rc "a: a failed audit write stops the run" 70
expect_contains "a: the message names the state database" "$T/a.err" "state database $db"
expect_contains "a: ...and SQLite's error" "$T/a.err" "injected audit failure"
expect_contains "a: ...and says nothing was sent" "$T/a.err" "nothing sent"
expect_eq "a: the run stops at once: one task met the failure, no other was started" 1 \
  "$(grep -c 'head [a-z]*: failed: .*could not be written' "$T/a.err" || true)"
run=$(sqlite3 "$db" "SELECT max(run_id) FROM audit")
allowed() { sqlite3 "$db" "SELECT count(*) FROM audit WHERE run_id = $run AND stage = '$1' AND decision = 'allow'"; }
expect_eq "a: the audit holds two review records of this run" 2 "$(allowed review)"
# A request is audited, then handed to the transfer loop: one the run
# abandoned when it stopped may be recorded and never sent, never the reverse.
at_most() { if [ "$2" -le "$3" ]; then ok "$1 ($2 <= $3)"; else not_ok "$1 ($2 > $3)"; fi; }
at_most "a: every review the local server got was audited" "$(chats local)" "$(allowed review)"
at_most "a: every title request the cloud server got was audited" "$(chats cloud)" "$(allowed title)"
no_canary_at "$T/cloud.log" "$T/repo.canaries" "a"
sqlite3 "$db" "DROP TRIGGER fail_audit"
audit_says "a: the chain of what was written" "$T/s" 0

# --- b. no record can be written ------------------------------------------
sqlite3 "$db" "CREATE TRIGGER fail_all BEFORE INSERT ON audit
  BEGIN SELECT RAISE(ABORT, 'injected audit failure'); END;"
n0=$(sqlite3 "$db" "SELECT count(*) FROM audit")
: >"$T/local.log"; : >"$T/cloud.log"
bh_run b run "$P" --repo "$T/repo" --state "$T/s" --fresh --no-cache
expect_rc "b: the run stops" 70
expect_contains "b: naming the database and the error" "$T/b.err" "injected audit failure"
expect_eq "b: no record was added" "$n0" "$(sqlite3 "$db" "SELECT count(*) FROM audit")"
expect_eq "b: the local server got no request at all" 0 "$(wc -l <"$T/local.log")"
expect_eq "b: the cloud server got no request at all" 0 "$(wc -l <"$T/cloud.log")"
sqlite3 "$db" "DROP TRIGGER fail_all"

# --- c. the breach record cannot be written --------------------------------
start_fake stub --server-version 0.12.3 --models qwen3:8b --remote qwen3:8b --hide-stubs --remote-after 1
sqlite3 "$db" "CREATE TRIGGER fail_breach BEFORE INSERT ON audit
  WHEN NEW.decision = 'breach' BEGIN SELECT RAISE(ABORT, 'injected audit failure'); END;"
: >"$T/cloud.log"
BULKHEAD_LOCAL_URL=$stub_URL bh_run c run "$P" --repo "$T/repo" --state "$T/s" --fresh --no-cache
expect_rc "c: an unrecorded breach stops the run" 70
expect_contains "c: naming the error" "$T/c.err" "injected audit failure"
# The probe passed (the model turned into a stub after it); the reviews in
# flight then (max_concurrency 2) reached it, and nothing after the failed write.
n=$(chats stub)
expect "c: the stub got the reviews in flight, then nothing ($n)" [ "$n" -ge 1 -a "$n" -le 2 ]
expect_eq "c: the cloud server got nothing" 0 "$(chats cloud)"
sqlite3 "$db" "DROP TRIGGER fail_breach"
audit_says "c: the chain still verifies" "$T/s" 0
finish

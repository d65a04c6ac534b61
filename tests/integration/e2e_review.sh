#!/usr/bin/env bash
# The shipped pipeline over a 6-PR repository against two fixture servers:
# every PR gets every stage; code (the canaries) reaches only the local
# server; the audit has one record per request and its chain verifies; an API
# key reaches only the cloud server and appears in no output.
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
cd "$T"

make_repo "$T/repo" --prs 6
start_fake local --slots 1
start_fake cloud
export BULKHEAD_LOCAL_URL=$local_URL BULKHEAD_CLOUD_URL=$cloud_URL
export OLLAMA_API_KEY=sk-bulkhead-test-SECRET-1f2e3d

set +e
"$BULKHEAD" run "$BH_SOURCE_DIR/pipelines/code-review.json" --repo "$T/repo" --base main \
  --state "$T/state" >"$T/run.out" 2>"$T/run.err"
rc=$?
set -e
expect_eq "run exits 0" 0 "$rc"
[ "$rc" -eq 0 ] || cat "$T/run.err"

"$BULKHEAD" report --state "$T/state" --format jsonl >"$T/report.jsonl"
expect_eq "18 results (6 PRs x 3 stages)" 18 "$(wc -l <"$T/report.jsonl")"
expect_eq "every task done" 18 "$(jq -s '[.[] | select(.state == "done")] | length' "$T/report.jsonl")"
for n in 1 2 3 4 5 6; do
  stages=$(jq -r --arg k "refs/pull/$n/head" 'select(.item == $k) | .stage' "$T/report.jsonl" | sort | tr '\n' ' ')
  expect_eq "PR $n has plan, review and summarize" "plan review summarize " "$stages"
done
expect_eq "plan ran in the cloud" cloud "$(jq -r 'select(.stage == "plan") | .locality' "$T/report.jsonl" | sort -u)"
expect_eq "review ran locally" local "$(jq -r 'select(.stage == "review") | .locality' "$T/report.jsonl" | sort -u)"
expect_eq "summarize ran in the cloud" cloud "$(jq -r 'select(.stage == "summarize") | .locality' "$T/report.jsonl" | sort -u)"
# Labels follow the data: the path rules label each file of a diff, and the
# private-key detector finds the key the .pem PR adds; every review then
# passes the declassification guards (the fixture's replies quote nothing)
# and goes down to internal, which the cloud summarizer may read. The audit
# says from where.
"$BULKHEAD" audit show --state "$T/state" >"$T/audit-all.jsonl"
review_from() { jq -r --arg k "refs/pull/$1/head" 'select(.stage == "review" and .item == $k and .decision == "declassify") | .reason | capture("^from (?<l>[a-z]+) to").l' "$T/audit-all.jsonl"; }
expect_eq "a code PR's review was confidential" confidential "$(review_from 1)"
expect_eq "the docs-only PR's review was internal (rule docs/**)" internal "$(review_from 2)"
expect_eq "the .pem PR's review was restricted (rule and detector)" restricted "$(review_from 3)"
expect_eq "the binary-file PR's review was confidential" confidential "$(review_from 5)"
expect_eq "every review was declassified to internal" internal \
  "$(jq -r 'select(.stage == "review") | .label' "$T/report.jsonl" | sort -u)"
expect_eq "each reply names the model asked for" 0 \
  "$(jq -s '[.[] | select(.answered_by != .model)] | length' "$T/report.jsonl")"
expect_eq "ollama is asked never to truncate a prompt" 18 \
  "$(cat "$T/local.log" "$T/cloud.log" | jq -r 'select(.method == "POST") | .body' | jq -s '[.[] | select(.truncate == false)] | length')"
expect_eq "the reviewer's options and keep_alive reach the model" '{"num_ctx":16384,"temperature":0} "10m"' \
  "$(jq -r "select(.method == \"POST\") | $NOT_PROBE | .body" "$T/local.log" | jq -c 'select(.model == "qwen2.5-coder:14b") | [.options, .keep_alive] | "\(.[0] | tojson) \(.[1] | tojson)"' -r | sort -u)"
expect_eq "plan output is internal" internal "$(jq -r 'select(.stage == "plan") | .label' "$T/report.jsonl" | sort -u)"

expect_eq "canaries planted" 6 "$(wc -l <"$T/repo.canaries")"
expect_eq "cloud log holds no canary" 0 "$(grep -c -F -f "$T/repo.canaries" "$T/cloud.log" || true)"
seen=0
while read -r c; do grep -q -F "$c" "$T/local.log" && seen=$((seen + 1)); done <"$T/repo.canaries"
expect_eq "local log holds every canary" 6 "$seen"

# The probe (a chat whose only message is its fixed text) is model management.
noprobe='select(.method == "POST") | select(.path != "/api/chat" or (.body | fromjson | .messages[-1].content) != "Reply with OK.")'
requests=$(( $(jq -s "[.[] | $noprobe] | length" "$T/local.log") + \
             $(jq -s "[.[] | $noprobe] | length" "$T/cloud.log") ))
# Records of stage requests; the others are model management (no item data)
# and declassification decisions (nothing sent).
jq -c 'select(.stage != "" and (.decision == "allow" or .decision == "refuse"))' "$T/audit-all.jsonl" >"$T/audit.jsonl"
expect_eq "one declassification record per review" 6 \
  "$(jq -s '[.[] | select(.decision == "declassify" and .stage == "review")] | length' "$T/audit-all.jsonl")"
expect_eq "one audit record per request" "$requests" "$(wc -l <"$T/audit.jsonl")"
expect_eq "model-management records: the local server's version, status, model list and loaded models (asked once by the survey; the scheduler takes its answer) and one probe, of the reviewer's model before its first request (the standby stage's model, never rerouted to, is not probed: nothing loads it); public, no item" \
  "GET /api/ps public |GET /api/status public |GET /api/tags public |GET /api/version public |POST /api/chat public " \
  "$(jq -r 'select(.stage == "") | "\(.reason | capture("(?<m>(GET|POST) /api/[a-z]+)").m) \(.label) \(.item)"' "$T/audit-all.jsonl" | sort | paste -sd'|')"
expect_eq "18 requests in all" 18 "$requests"
expect_eq "every record allows" allow "$(jq -r .decision "$T/audit.jsonl" | sort -u)"
expect_eq "12 audit records for the cloud (plan and summarize)" 12 "$(jq -s '[.[] | select(.locality == "cloud")] | length' "$T/audit.jsonl")"
expect "audit chain verifies" "$BULKHEAD" audit verify --state "$T/state"

# Each audit record's payload hash is the hash of a body the server received.
bodies=$(cat "$T/local.log" "$T/cloud.log" | jq -r "select(.method == \"POST\") | $NOT_PROBE | .body" | \
         while IFS= read -r b; do printf '%s' "$b" | sha256sum | cut -d' ' -f1; done | sort)
expect_eq "audit payload hashes match the bodies received" "$bodies" \
  "$(jq -r .payload_sha256 "$T/audit.jsonl" | sort)"

expect_eq "the cloud server got the API key" 12 \
  "$(jq -s '[.[] | select(.headers.Authorization == "Bearer sk-bulkhead-test-SECRET-1f2e3d")] | length' "$T/cloud.log")"
expect_eq "the local server never got it" 0 "$(grep -c -F 'SECRET-1f2e3d' "$T/local.log" || true)"
"$BULKHEAD" report --state "$T/state" >"$T/report.md"
expect_eq "the key is in no output, report, audit or state" 0 \
  "$(cat "$T/run.out" "$T/run.err" "$T/report.md" "$T/report.jsonl" "$T/audit.jsonl" "$T/state/"* | grep -c -F 'SECRET-1f2e3d' || true)"
expect_contains "markdown report names where stages ran" "$T/report.md" "on gpu-box (local)"

# Tampering with the audit is found and the record named (a copy of the state).
# The first records are model management (the probe's, the scheduler's); the
# record altered is the first stage request.
cp -r "$T/state" "$T/tampered"
first=$(sqlite3 "$T/tampered/state.db" "SELECT min(seq) FROM audit WHERE stage != ''")
sqlite3 "$T/tampered/state.db" "UPDATE audit SET label = 'public' WHERE seq = $first"
set +e
"$BULKHEAD" audit verify --state "$T/tampered" >/dev/null 2>"$T/tamper.err"
rc=$?
set -e
expect_eq "an altered record fails verification with exit 3" 3 "$rc"
expect_contains "naming the record" "$T/tamper.err" "audit record $first"
cp -r "$T/state" "$T/deleted"
sqlite3 "$T/deleted/state.db" "DELETE FROM audit WHERE seq = 7"
set +e
"$BULKHEAD" audit verify --state "$T/deleted" >/dev/null 2>"$T/delete.err"
rc=$?
set -e
expect_eq "a deleted record fails verification with exit 3" 3 "$rc"
expect_contains "naming where the chain breaks" "$T/delete.err" "audit record 8"

# Reading a state that does not exist: a clear error, and nothing is created.
set +e
"$BULKHEAD" report --state "$T/no-such-state" >/dev/null 2>"$T/nostate.err"
rc=$?
set -e
expect_eq "report on a missing state exits 2" 2 "$rc"
expect_contains "saying how to make one" "$T/nostate.err" "no bulkhead state in '$T/no-such-state'"
expect "and creates no folder" [ ! -e "$T/no-such-state" ]
"$BULKHEAD" report --state "$T/state" --format md --max-bytes 4K >"$T/capped.md"
expect "report --max-bytes 4K stays under 4096 bytes (the full one is $(wc -c <"$T/report.md"))" \
  [ "$(wc -c <"$T/capped.md")" -le 4096 -a "$(wc -c <"$T/report.md")" -gt 4096 ]
expect_contains "... and says what it left out" "$T/capped.md" "Left out to keep this report under 4096 bytes:"
set +e
"$BULKHEAD" report --state "$T/state" --max-bytes 10 >/dev/null 2>"$T/badmax.err"
rc=$?
set -e
expect_eq "report --max-bytes 10 is a usage error" 2 "$rc"
for cmd in report status; do
  set +e
  "$BULKHEAD" $cmd --state "$T/state" --run 3x >/dev/null 2>"$T/badrun.err"
  rc=$?
  set -e
  expect_eq "$cmd --run 3x is a usage error (not run 3)" 2 "$rc"
  expect_contains "... saying what --run takes" "$T/badrun.err" "--run takes a run number, got '3x'"
done

# The same command again: nothing left to do, no model call sent (the survey
# before the run still asks the server about itself and its models, and the
# probe sends its fixed public text).
posts() { cat "$T/local.log" "$T/cloud.log" | jq -r 'select(.path == "/api/chat") | select((.body | fromjson | .messages[-1].content) != "Reply with OK.") | .method' | grep -c POST || true; }
before=$(posts)
expect "second run exits 0" "$BULKHEAD" run "$BH_SOURCE_DIR/pipelines/code-review.json" \
  --repo "$T/repo" --base main --state "$T/state"
expect_eq "second run sends no model request" "$before" "$(posts)"

# --fresh starts over: every task again, in a new run; the old run stays.
# (--no-cache: without it the fresh run is answered from the response cache,
# which tests/integration/cache.sh shows.)
expect "a fresh run exits 0" "$BULKHEAD" run "$BH_SOURCE_DIR/pipelines/code-review.json" \
  --repo "$T/repo" --base main --state "$T/state" --fresh --no-cache
expect_eq "a fresh run sends every request again" $((before + 18)) "$(posts)"
expect_eq "the state holds both runs" 2 "$(sqlite3 "$T/state/state.db" 'SELECT COUNT(*) FROM runs WHERE key NOT LIKE '"'"'models:%'"'"'')"
"$BULKHEAD" report --state "$T/state" --format jsonl >"$T/fresh.jsonl"
expect_eq "the report shows the fresh run, complete" 18 "$(jq -s '[.[] | select(.state == "done")] | length' "$T/fresh.jsonl")"
expect "the same command again resumes the fresh run" "$BULKHEAD" run \
  "$BH_SOURCE_DIR/pipelines/code-review.json" --repo "$T/repo" --base main --state "$T/state"
expect_eq "... and sends nothing" $((before + 18)) "$(posts)"
expect "the audit of both runs verifies" "$BULKHEAD" audit verify --state "$T/state"
finish

#!/usr/bin/env bash
# A local endpoint that is down: its stages fail with a message naming the
# endpoint and URL (exit 4), their dependants are not run, and nothing is
# sent anywhere else — no fallback to the cloud. After 3 requests in a row
# reach no server the endpoint is marked down: its other tasks fail at once,
# with one message for all of them, instead of each trying three times.
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
cd "$T"

make_repo "$T/repo" --prs 3
port=$(closed_port)
start_fake cloud
export BULKHEAD_LOCAL_URL="http://127.0.0.1:$port" BULKHEAD_CLOUD_URL=$cloud_URL

set +e
"$BULKHEAD" run "$BH_SOURCE_DIR/pipelines/code-review.json" --repo "$T/repo" --state "$T/state" \
  >"$T/run.out" 2>"$T/run.err"
rc=$?
set -e
expect_eq "run exits 4" 4 "$rc"
expect_contains "the error names the endpoint and its URL" "$T/run.err" \
  "endpoint 'gpu-box' (http://127.0.0.1:$port)"
expect_contains "the error says there is no fallback" "$T/run.err" "never falls back"

"$BULKHEAD" report --state "$T/state" --format jsonl >"$T/report.jsonl"
expect_eq "every review failed" "failed" "$(jq -r 'select(.stage == "review") | .state' "$T/report.jsonl" | sort -u)"
expect_eq "every summary was not run" "failed" "$(jq -r 'select(.stage == "summarize") | .state' "$T/report.jsonl" | sort -u)"
expect_contains "a summary says why" "$T/report.jsonl" "not run: stage 'review' failed for this item"
expect_contains "the endpoint is marked down after 3 requests in a row reached no server" "$T/run.err" \
  "endpoint 'gpu-box' is down: 3 requests in a row reached no server"
expect_contains "a review says so, and what to do" "$T/report.jsonl" \
  "not run: endpoint 'gpu-box' is down since "
"$BULKHEAD" audit show --state "$T/state" >"$T/audit.jsonl"
# The server did not answer the survey either, so each review waits for the
# probe that goes before a model's first request (README "Cloud stubs"): the
# probes are the requests that found it down (each audited as model
# management; a review waiting with another behind the same probe fails with
# it), and no review was decided or sent. At most one probe more than the 3
# was on its way when the endpoint went down (max_concurrency 2).
audited=$(jq -s '[.[] | select(.stage != "")] | length' "$T/audit.jsonl")
expect_eq "the stage records are the 3 plans: no review was sent" 3 "$audited"
probes=$(jq -s '[.[] | select(.reason | test("probe model"))] | length' "$T/audit.jsonl")
expect "every attempt is audited: the probes that found it down ($probes)" \
  [ "$probes" -ge 2 -a "$probes" -le 4 ]
expect_eq "every plan (cloud) done" "done" "$(jq -r 'select(.stage == "plan") | .state' "$T/report.jsonl" | sort -u)"
expect_eq "the cloud server saw only the 3 plan requests" 3 "$(wc -l <"$T/cloud.log")"
expect_eq "and only the planner's model" '"gpt-oss:120b"' \
  "$(jq -r .body "$T/cloud.log" | jq -c .model | sort -u)"
expect_eq "no canary reached the cloud" 0 "$(grep -c -F -f "$T/repo.canaries" "$T/cloud.log" || true)"

"$BULKHEAD" report --state "$T/state" >"$T/report.md"
expect_contains "the report says it is incomplete" "$T/report.md" "This report is incomplete"

# A server killed in the middle of a nightly run: 40 reviews, the server dies
# after a few; the rest fail at once, with one message, not 40 x 3 attempts.
make_repo "$T/big" --prs 40 --distinct 4
start_fake dying --slots 1 --token-ms 20
export BULKHEAD_LOCAL_URL=$dying_URL
(set +e; "$BULKHEAD" run "$BH_SOURCE_DIR/pipelines/code-review.json" --repo "$T/big" \
   --state "$T/big.state" >"$T/big.out" 2>"$T/big.err"; echo $? >"$T/big.rc") &
runner=$!
for _ in $(seq 1 400); do
  [ "$(jq -s '[.[] | select(.path == "/api/chat")] | length' "$T/dying.log" 2>/dev/null || echo 0)" -ge 3 ] && break
  sleep 0.05
done
stop_fake dying
wait "$runner" || true
expect_eq "the run ends, exit 4" 4 "$(cat "$T/big.rc")"
expect_eq "one message says the endpoint is down" 1 "$(grep -c "endpoint 'gpu-box' is down:" "$T/big.err")"
# The two reviews in flight when it died (max_concurrency 2) are cut, each
# retried once more; the third request in a row that reaches nothing marks it down.
lines=$(grep -c "review: \(attempt\|failed\)" "$T/big.err" || true)
expect "at most 5 review failures were printed one by one, not one per review ($lines)" [ "$lines" -le 5 ]
"$BULKHEAD" report --state "$T/big.state" --format jsonl >"$T/big.jsonl"
expect_eq "every review that did not finish failed with the endpoint's reason" \
  "$(jq -s '[.[] | select(.stage == "review" and .state != "done")] | length' "$T/big.jsonl")" \
  "$(jq -s '[.[] | select(.stage == "review" and (.error // "" | test("is down since|reached no server|Couldn.t connect|connection|Connection|Recv|closed|reset")))] | length' "$T/big.jsonl")"
"$BULKHEAD" audit show --state "$T/big.state" >"$T/big.audit"
reviews=$(jq -s '[.[] | select(.stage == "review" and .decision == "allow")] | length' "$T/big.audit")
done_reviews=$(jq -s '[.[] | select(.stage == "review" and .state == "done")] | length' "$T/big.jsonl")
# Without the down mark every review left would be tried 3 times (100 and more).
# With it: the 2 cut, the 3 in a row that mark it down, and at most one more
# (max_concurrency 2: a retry already sent in the turn that set the mark).
expect "after the server died, at most 2 cut + 3 refused + 1 in flight found it gone ($reviews review requests, $done_reviews reviews done)" \
  [ "$reviews" -le $((done_reviews + 6)) ]
finish

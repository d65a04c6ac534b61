#!/usr/bin/env bash
# Every stage shape at run time, over a 6-PR repository against two fixture
# servers: for_each pr.files (a task per changed file, each with its own part
# of the diff and its own label), a cloud per-file stage that may only see
# the docs files (on_sensitive skip withholds the others, and no canary of
# another file reaches the cloud), for_each over a planner's JSON reply, one
# batch digest over every PR; plan's decisions equal the run's; a run killed
# mid fan-out resumes without redoing any finished element.
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
cd "$T"

make_repo "$T/repo" --prs 6
cat >"$T/script.json" <<'EOF'
{ "planner": [ { "reply": "[\"the parser\", {\"file\": \"docs/usage.md\"}, 3]" } ] }
EOF
# --no-cloud: the local server refuses cloud models itself, so a run sends it no probe
# (README "Cloud stubs") and the requests counted here are the stages' alone.
start_fake local --no-cloud --script "$T/script.json"
start_fake cloud
export BULKHEAD_LOCAL_URL=$local_URL BULKHEAD_CLOUD_URL=$cloud_URL

# pipeline FILE [with-cloud]: the stages; the cloud stage only when asked.
pipeline() {
  local cloud=""
  [ "${2:-}" = with-cloud ] && cloud='"cloud-file": { "endpoint": "cloud", "model": "cloud-reviewer",
      "for_each": "pr.files", "clearance": "internal", "on_sensitive": "skip",
      "user": "Proofread {{each.path}}:\n{{each.diff}}" },'
  cat >"$1" <<EOF
{
  "version": 1,
  "name": "fanout",
  "labels": ["public", "internal", "confidential", "restricted"],
  "endpoints": {
    "local": { "provider": "ollama", "url": "\${BULKHEAD_LOCAL_URL}", "locality": "local",
               "max_concurrency": 2 },
    "cloud": { "provider": "ollama", "url": "\${BULKHEAD_CLOUD_URL}", "locality": "cloud",
               "clearance": "internal", "api_key_env": "OLLAMA_API_KEY", "max_concurrency": 2 }
  },
  "source": {
    "kind": "git",
    "label": "confidential",
    "fields": { "pr.number": "internal", "pr.ref": "internal", "pr.title": "internal",
                "pr.files": "internal", "pr.stats": "internal" },
    "rules": [ { "path": "docs/**", "label": "internal" },
               { "path": "**/*.pem", "label": "restricted" } ]
  },
  "stages": {
    "per-file": { "endpoint": "local", "model": "reviewer", "for_each": "pr.files",
                  "user": "Review {{each.path}} ({{each.status}}):\n{{each.diff}}" },
    $cloud
    "plan": { "endpoint": "local", "model": "planner", "output": { "format": "json" },
              "user": "List what to check in {{pr.files}} as a JSON array" },
    "check": { "endpoint": "local", "model": "checker", "for_each": "plan.output",
               "user": "Check {{each}} of {{pr.title}}" },
    "digest": { "endpoint": "local", "model": "digester", "scope": "batch",
                "user": "Digest of every review:\n{{per-file.output}}" }
  }
}
EOF
}
pipeline "$T/fanout.json" with-cloud

# What git says each PR changes: "refs/pull/N/head PATH" (new paths of renames).
for n in 1 2 3 4 5 6; do
  base=$(git -C "$T/repo" merge-base main "refs/pull/$n/head")
  git -C "$T/repo" diff --name-only -M "$base" "refs/pull/$n/head" | sed "s|^|refs/pull/$n/head |"
done | sort >"$T/files.txt"
grep ' docs/' "$T/files.txt" | cut -d' ' -f2 | sort >"$T/docs.txt"
expect "the repository has docs and other files" [ -s "$T/docs.txt" -a "$(wc -l <"$T/files.txt")" -gt 10 ]

set +e
"$BULKHEAD" run "$T/fanout.json" --repo "$T/repo" --base main --state "$T/state" \
  >"$T/run.out" 2>"$T/run.err"
rc=$?
set -e
expect_eq "the run exits 0 (non-docs files skipped by the cloud stage, as it declares)" 0 "$rc"
"$BULKHEAD" report --state "$T/state" --format jsonl >"$T/report.jsonl"
expect_eq "nothing failed" 0 "$(jq -s '[.[] | select(.state == "failed")] | length' "$T/report.jsonl")"

# for_each pr.files: one task per changed file, one request each, with that file's diff.
expect_eq "one report row per changed file" "$(cat "$T/files.txt")" \
  "$(jq -r 'select(.stage == "per-file") | "\(.item) \(.element)"' "$T/report.jsonl" | sort)"
posts() { jq -r 'select(.path == "/api/chat") | .body' "$T/$1.log" | jq -c --arg m "$2" 'select(.model == $m)'; }
posts local reviewer >"$T/reviewer.jsonl"
expect_eq "one local request per changed file" "$(cut -d' ' -f2 "$T/files.txt" | sort)" \
  "$(jq -r '.messages[0].content | capture("^Review (?<p>[^ ]+) ").p' "$T/reviewer.jsonl" | sort)"
expect_eq "each request holds that file's part of the diff only" 0 \
  "$(jq -r '.messages[0].content' "$T/reviewer.jsonl" | jq -R -s 'split("Review ") | map(select(. != "")) | map(select((. | split("diff --git") | length) != 2)) | length')"
expect_eq "a docs file's task is internal, the .pem's restricted" "internal restricted" \
  "$(jq -r 'select(.stage == "per-file" and .item == "refs/pull/2/head" and .element == "docs/usage.md") | .label' "$T/report.jsonl") $(jq -r 'select(.stage == "per-file" and .element == "deploy/staging.pem") | .label' "$T/report.jsonl")"

# The cloud stage got exactly the docs files; every other file was skipped there.
posts cloud cloud-reviewer >"$T/cloud-reviewer.jsonl"
expect_eq "the cloud got one request per docs file and nothing else" "$(cat "$T/docs.txt")" \
  "$(jq -r '.messages[0].content | capture("^Proofread (?<p>[^:]+):").p' "$T/cloud-reviewer.jsonl" | sort)"
expect_eq "the cloud stage's other files are skipped" \
  "$(grep -v ' docs/' "$T/files.txt" | cut -d' ' -f2 | sort | tr '\n' ' ')" \
  "$(jq -r 'select(.stage == "cloud-file" and .state == "skipped") | .element' "$T/report.jsonl" | sort | tr '\n' ' ')"
in_docs=0
other=0
for n in 1 2 3 4 5 6; do
  canary=$(sed -n "${n}p" "$T/repo.canaries")
  file=$(git -C "$T/repo" grep -l -F "$canary" "refs/pull/$n/head" | cut -d: -f2)
  if grep -q -F "$canary" "$T/cloud.log"; then
    case "$file" in docs/*) in_docs=$((in_docs + 1)) ;; *) other=$((other + 1)) ;; esac
  fi
done
expect_eq "no canary of a non-docs file reached the cloud" 0 "$other"
expect_eq "the canary in a docs file did (the docs PR)" 1 "$in_docs"

# for_each over the planner's JSON reply: a task per element, the element as it was.
expect_eq "the planner is asked for JSON" '"json"' "$(posts local planner | jq -c .format | sort -u)"
expect_eq "three check tasks per PR, keyed by index" "0 1 2 " \
  "$(jq -r 'select(.stage == "check" and .item == "refs/pull/4/head") | .element' "$T/report.jsonl" | sort | tr '\n' ' ')"
posts local checker >"$T/checker.jsonl"
expect_eq "18 check requests" 18 "$(wc -l <"$T/checker.jsonl")"
expect_eq "a string element verbatim, others as compact JSON" \
  'Check 3 of|Check the parser of|Check {"file":"docs/usage.md"} of' \
  "$(jq -r '.messages[0].content | capture("^(?<c>Check .* of) ").c' "$T/checker.jsonl" | sort -u | paste -sd'|')"

# One batch task over every PR.
posts local digester >"$T/digester.jsonl"
expect_eq "the digest is one request" 1 "$(wc -l <"$T/digester.jsonl")"
for n in 1 2 3 4 5 6; do
  expect_eq "the digest holds PR $n's reviews" 1 \
    "$(jq -r '.messages[0].content' "$T/digester.jsonl" | grep -c -x "## refs/pull/$n/head" || true)"
done
expect_eq "the digest is reported once, under (batch), without an element" '"(batch)" "done" null' \
  "$(jq -c 'select(.stage == "digest") | [.item, .state, .element]' "$T/report.jsonl" | tr -d '[]' | tr ',' ' ')"
"$BULKHEAD" report --state "$T/state" >"$T/report.md"
expect_contains "the markdown table names the element" "$T/report.md" \
  "| refs/pull/2/head | per-file | docs/usage.md | done |"
expect_contains "and so does the task's heading" "$T/report.md" "### per-file · docs/usage.md — done"
expect_contains "batch tasks are listed under (batch)" "$T/report.md" "## (batch)"

# plan predicted every decision the run made: allow -> done, skip -> skipped
# (a for_each over a reply is planned once, as "each element").
"$BULKHEAD" plan "$T/fanout.json" --repo "$T/repo" --base main --format json >"$T/plan.json"
jq -r '(.items[] | .key as $k | .tasks[] | "\($k) \(.stage) \(.element // "-") \(.decision)"),
       (.batch[] | "(batch) \(.stage) - \(.decision)")' "$T/plan.json" |
  sed 's/ allow$/ done/; s/ skip$/ skipped/' | sort -u >"$T/planned.txt"
jq -r '"\(.item) \(.stage) \(if .stage == "check" then "each element" else .element // "-" end) \(.state)"' \
  "$T/report.jsonl" | sort -u >"$T/ran.txt"
expect_eq "plan's decisions are the run's" "$(cat "$T/planned.txt")" "$(cat "$T/ran.txt")"
expect "the comparison covers skipped tasks" grep -q ' skipped$' "$T/ran.txt"

# on_sensitive reroute works per element and for a batch task: the files
# too sensitive for the cloud, and the digest of them, go to local stand-ins.
sed -e 's/"on_sensitive": "skip"/"on_sensitive": "reroute:local-file"/' \
    -e 's|"plan": {|"local-file": { "endpoint": "local", "model": "local-reviewer", "for_each": "pr.files", "user": "Proofread {{each.path}}:\\n{{each.diff}}" },\n    "cloud-digest": { "endpoint": "cloud", "model": "cloud-digester", "scope": "batch", "on_sensitive": "reroute:local-digest", "user": "Digest: {{cloud-file.output}}" },\n    "local-digest": { "endpoint": "local", "model": "local-digester", "scope": "batch", "user": "Digest: {{cloud-file.output}}" },\n    "plan": {|' \
    "$T/fanout.json" >"$T/reroute.json"
: >"$T/cloud.log"
"$BULKHEAD" run "$T/reroute.json" --repo "$T/repo" --base main --state "$T/reroute-state" \
  >"$T/reroute.out" 2>"$T/reroute.err" || true
"$BULKHEAD" report --state "$T/reroute-state" --format jsonl >"$T/reroute.jsonl"
expect_eq "every task of the reroute run is done" 0 \
  "$(jq -s '[.[] | select(.state != "done")] | length' "$T/reroute.jsonl")"
expect_eq "docs files ran in the cloud, the others on the local stand-in" \
  "$(sed 's|^\([^ ]*\) \(docs/.*\)|\1 \2 cloud|; t; s|$| local|' "$T/files.txt")" \
  "$(jq -r 'select(.stage == "cloud-file") | "\(.item) \(.element) \(.locality)"' "$T/reroute.jsonl" | sort)"
expect_eq "the cloud again got only the docs files" "$(cat "$T/docs.txt")" \
  "$(posts cloud cloud-reviewer | jq -r '.messages[0].content | capture("^Proofread (?<p>[^:]+):").p' | sort)"
expect_eq "the digest of confidential reviews was rerouted to the local digester" \
  '"(batch)" "local" "local-digester"' \
  "$(jq -c 'select(.stage == "cloud-digest") | [.item, .locality, .model]' "$T/reroute.jsonl" | tr -d '[]' | tr ',' ' ')"
expect_eq "the cloud digester got nothing" 0 "$(posts cloud cloud-digester | wc -l)"

# Resume: kill -9 mid fan-out (slow servers, no cloud stage), run again.
stop_fake local
start_fake slow --no-cloud --script "$T/script.json" --token-ms 30 --load-ms 100
export BULKHEAD_LOCAL_URL=$slow_URL
pipeline "$T/resume.json"
total=$(( $(wc -l <"$T/files.txt") + 6 + 18 + 1 ))
# per-file tasks done so far: the kill must land while the fan-out runs,
# so it is timed by the fan-out's own progress (the other stages may run
# first or later, as the scheduler groups them by model).
files_done_count() {
  local out
  out=$("$BULKHEAD" report --state "$T/rstate" --format jsonl 2>/dev/null) || { echo 0; return; }
  printf '%s\n' "$out" | jq -s '[.[] | select(.stage == "per-file" and .state == "done")] | length'
}
("$BULKHEAD" run "$T/resume.json" --repo "$T/repo" --base main --state "$T/rstate" \
   >"$T/r1.out" 2>"$T/r1.err") &
pid=$!
for _ in $(seq 1 600); do
  [ "$(files_done_count)" -ge 2 ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.05
done
kill -KILL "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
sleep 0.3 # requests the dead process had in flight reach the log
"$BULKHEAD" report --state "$T/rstate" --format jsonl >"$T/killed.jsonl"
done1=$(jq -s '[.[] | select(.state == "done")] | length' "$T/killed.jsonl")
files_done=$(jq -s '[.[] | select(.stage == "per-file" and .state == "done")] | length' "$T/killed.jsonl")
expect "the kill landed mid fan-out ($files_done of $(wc -l <"$T/files.txt") files, $done1 of $total tasks done)" \
  [ "$files_done" -ge 1 -a "$files_done" -lt "$(wc -l <"$T/files.txt")" -a "$done1" -lt "$total" ]
# Stage requests the server got: chats with messages. Preloads and unloads
# (/api/generate, empty prompt) are left out: whether the resumed run needs
# one depends on what the server held when the kill landed.
stage_chats() {
  jq -s '[.[] | select(.method == "POST" and .path == "/api/chat")
    | select((.body | fromjson | .messages // []) | length > 0)] | length' "$T/slow.log"
}
before=$(stage_chats)
set +e
"$BULKHEAD" run "$T/resume.json" --repo "$T/repo" --base main --state "$T/rstate" \
  >"$T/r2.out" 2>"$T/r2.err"
rc=$?
set -e
expect_eq "the resumed run exits 0" 0 "$rc"
expect_contains "it says it resumes" "$T/r2.err" "resuming run"
after=$(stage_chats)
"$BULKHEAD" report --state "$T/rstate" --format jsonl >"$T/resumed.jsonl"
# A reply cached just before the kill, its task not yet committed, is
# answered from the cache on resume (as in resume.sh): at most the two in flight.
hits=$(jq -s '[.[] | select(.state == "done" and .cached == true)] | length' "$T/resumed.jsonl")
expect "at most the tasks in flight at the kill come from the cache (got $hits)" [ "$hits" -le 2 ]
expect_eq "it sent one request per unfinished task not in the cache" $((total - done1 - hits)) \
  $((after - before))
expect_eq "every task is done" "$total" \
  "$(jq -s '[.[] | select(.state == "done")] | length' "$T/resumed.jsonl")"
jq -r 'select(.state == "done") | "\(.item) \(.stage) \(.element) \(.output)"' "$T/killed.jsonl" | sort >"$T/done1.txt"
jq -r 'select(.state == "done") | "\(.item) \(.stage) \(.element) \(.output)"' "$T/resumed.jsonl" | sort >"$T/done2.txt"
expect_eq "work finished before the kill is kept as it was" "" "$(comm -23 "$T/done1.txt" "$T/done2.txt")"
# Each reply names the hash of its prompt: no prompt of a task finished
# before the kill was sent again.
jq -r 'select(.state == "done") | .output | capture("prompt_sha256=(?<h>[0-9a-f]+)").h' \
  "$T/killed.jsonl" | sort >"$T/done1.hashes"
jq -r 'select(.method == "POST") | .body' "$T/slow.log" |
  jq -j 'select(.messages | length > 0) | [.messages[].content] | join(""), "\u0000"' |
  while IFS= read -r -d '' prompt; do printf '%s' "$prompt" | sha256sum | cut -c1-16; done \
  >"$T/sent.hashes"
resent=0
while read -r h; do
  [ "$(grep -c -x "$h" "$T/sent.hashes" || true)" -eq 1 ] || resent=$((resent + 1))
done <"$T/done1.hashes"
expect_eq "every finished task's prompt is in the log" "$done1" "$(wc -l <"$T/done1.hashes")"
expect_eq "no finished task's prompt was sent twice" 0 "$resent"
expect "the audit chain survived the kill" "$BULKHEAD" audit verify --state "$T/rstate"
finish

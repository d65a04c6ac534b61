#!/usr/bin/env bash
# The response cache end to end (issue 6, must show 3): the shipped review
# pipeline over a 6-PR repository; the same command again sends no model
# request, and neither does --fresh (every answer from the cache, audited as
# "cached", same labels); a new commit on one PR re-runs only that PR's
# tasks; --no-cache asks the models again and keeps nothing; with a batch
# digest, a changed PR re-runs its tasks and the digest. A refusal is never
# answered from the cache, and a damaged entry is a warning and a model call.
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
cd "$T"

make_repo "$T/repo" --prs 6
start_fake local --slots 1
start_fake cloud
export BULKHEAD_LOCAL_URL=$local_URL BULKHEAD_CLOUD_URL=$cloud_URL
REVIEW=$BH_SOURCE_DIR/pipelines/code-review.json

# Chat requests the two fakes received so far (model management left out:
# loading, listing, preloading and probing models carry no item data; the
# probe is the chat whose only message is its fixed text).
chats() { cat "$T/local.log" "$T/cloud.log" | jq -r 'select(.method == "POST" and .path == "/api/chat")
  | select((.body | fromjson | .messages[-1].content) != "Reply with OK.") | .path' | wc -l; }
# run NAME ARGS...: one run of the review pipeline; stderr to $T/NAME.err.
run() { # NAME ARGS...: bulkhead run ARGS over the repository
  local name=$1; shift
  bh_run "$name" run "$@" --repo "$T/repo" --base main
}
report() { "$BULKHEAD" report --state "$1" --format jsonl; }

run first "$REVIEW" --state "$T/state"
expect_eq "the first run exits 0" 0 "$rc"
expect_eq "the first run asks a model for every task" 18 "$(chats)"
"$BULKHEAD" cache stats --state "$T/state" >"$T/stats1.out"
expect_contains "every reply is kept" "$T/stats1.out" "entries  18"
expect_contains "no hit yet" "$T/stats1.out" "hits     0 requests"
report "$T/state" >"$T/first.jsonl"

before=$(chats)
run again "$REVIEW" --state "$T/state"
expect_eq "the same command again exits 0" 0 "$rc"
expect_eq "... and sends no model request" "$before" "$(chats)"

loads_before=$(curl -s "$local_URL/fake/stats" | jq .loads)
lines_before=$(wc -l <"$T/local.log")
run fresh "$REVIEW" --state "$T/state" --fresh
expect_eq "--fresh exits 0" 0 "$rc"
expect_eq "--fresh is answered from the cache: no model request" "$before" "$(chats)"
# The probe goes before a model's first request, not before the run: a run
# answered from the cache loads, probes, preloads and unloads nothing (only
# the survey's GETs and /api/show, which load no model, reach the server).
expect_eq "--fresh loads no model on the local server" "$loads_before" \
  "$(curl -s "$local_URL/fake/stats" | jq .loads)"
expect_eq "--fresh sends the local server no POST but /api/show" "0" \
  "$(tail -n +"$((lines_before + 1))" "$T/local.log" | jq -s '[.[] | select(.method == "POST" and .path != "/api/show")] | length')"
report "$T/state" >"$T/fresh.jsonl"
expect_eq "every task of the fresh run is done and marked cached" 18 \
  "$(jq -s '[.[] | select(.state == "done" and .cached == true)] | length' "$T/fresh.jsonl")"
expect_eq "cached results carry the labels of the live ones" \
  "$(jq -r '"\(.item) \(.stage) \(.label)"' "$T/first.jsonl" | sort)" \
  "$(jq -r '"\(.item) \(.stage) \(.label)"' "$T/fresh.jsonl" | sort)"
expect_eq "and the same outputs" "$(jq -r .output "$T/first.jsonl" | sort | sha256sum)" \
  "$(jq -r .output "$T/fresh.jsonl" | sort | sha256sum)"
"$BULKHEAD" audit show --state "$T/state" >"$T/audit.jsonl"
run2=$(jq -r 'select(.decision == "cached") | .run' "$T/audit.jsonl" | sort -u)
expect_eq "one audit record per cached answer, all in the fresh run" 18 \
  "$(jq -s --argjson r "$run2" '[.[] | select(.run == $r and .decision == "cached")] | length' "$T/audit.jsonl")"
expect_eq "the fresh run allowed no stage request out" 0 \
  "$(jq -s --argjson r "$run2" '[.[] | select(.run == $r and .decision == "allow" and .stage != "")] | length' "$T/audit.jsonl")"
expect_eq "a cached record says nothing was sent" "0" \
  "$(jq -r 'select(.decision == "cached") | .bytes' "$T/audit.jsonl" | sort -u)"
expect_eq "its payload hash is the hash of a request the model once received" 18 \
  "$(comm -12 <(cat "$T/local.log" "$T/cloud.log" | jq -r 'select(.method == "POST") | .body' | \
       while IFS= read -r b; do printf '%s' "$b" | sha256sum | cut -d' ' -f1; done | sort -u) \
     <(jq -r 'select(.decision == "cached") | .payload_sha256' "$T/audit.jsonl" | sort -u) | wc -l)"
expect_eq "the review's declassification is decided again for a cached reply" 6 \
  "$(jq -s --argjson r "$run2" '[.[] | select(.run == $r and .decision == "declassify")] | length' "$T/audit.jsonl")"
expect "the audit with cached records verifies" "$BULKHEAD" audit verify --state "$T/state"
"$BULKHEAD" cache stats --state "$T/state" >"$T/stats2.out"
expect_contains "18 hits counted" "$T/stats2.out" "hits     18 requests"

# A new commit on PR 2: a new run (the item changed), and only its tasks ask a model.
git -C "$T/repo" checkout -q -b change refs/pull/2/head
echo "One more line of documentation." >>"$T/repo/docs/usage.md"
git -C "$T/repo" commit -q -am "Document one more thing"
git -C "$T/repo" update-ref refs/pull/2/head HEAD
git -C "$T/repo" checkout -q main
before=$(chats)
run changed "$REVIEW" --state "$T/state"
expect_eq "the run after the change exits 0" 0 "$rc"
expect_eq "only the changed PR's three tasks ask a model" $((before + 3)) "$(chats)"
"$BULKHEAD" audit show --state "$T/state" >"$T/audit3.jsonl"
run3=$(jq -s 'map(.run) | max' "$T/audit3.jsonl")
expect_eq "every request of that run is for PR 2" "refs/pull/2/head" \
  "$(jq -r --argjson r "$run3" 'select(.run == $r and .decision == "allow" and .stage != "") | .item' "$T/audit3.jsonl" | sort -u)"
expect_eq "the other 15 tasks are answered from the cache" 15 \
  "$(report "$T/state" | jq -s '[.[] | select(.cached == true)] | length')"

# --no-cache: every request goes out again, and the cache is left as it was.
"$BULKHEAD" cache stats --state "$T/state" >"$T/stats3.out"
before=$(chats)
run nocache "$REVIEW" --state "$T/state" --fresh --no-cache
expect_eq "--no-cache exits 0" 0 "$rc"
expect_eq "--no-cache asks a model for every task" $((before + 18)) "$(chats)"
expect_eq "... marks nothing cached" 0 "$(report "$T/state" | jq -s '[.[] | select(.cached)] | length')"
"$BULKHEAD" cache stats --state "$T/state" >"$T/stats4.out"
expect_eq "... and neither reads nor writes the cache" "$(cat "$T/stats3.out")" "$(cat "$T/stats4.out")"

# A damaged entry: a warning, the request goes to the model, the run succeeds.
# The entry damaged is one every run so far has used (the most hits): the
# entries of PR 2 before its new commit are not asked for any more.
sqlite3 "$T/state/state.db" "UPDATE cache SET value = x'00112233' WHERE key = (SELECT key FROM cache ORDER BY hits DESC, key LIMIT 1)"
before=$(chats)
run damaged "$REVIEW" --state "$T/state" --fresh
expect_eq "a run over a damaged entry exits 0" 0 "$rc"
expect_eq "... and sends that one request" $((before + 1)) "$(chats)"
expect_contains "... with a warning naming the entry" "$T/damaged.err" "warning: response cache entry"
expect_contains "... saying the request is sent instead" "$T/damaged.err" "it was removed and the request is sent instead"

# With a batch digest: a changed PR re-runs its own tasks and the digest.
mkdir -p "$T/p"
cp -r "$BH_SOURCE_DIR/pipelines/prompts" "$T/p/"
jq '.name = "review-digest" | .stages.digest = {"endpoint": "gpu-box", "model": "qwen2.5:7b",
    "scope": "batch", "prompt": "prompts/digest.md"}' "$REVIEW" >"$T/p/digest.json"
run digest1 "$T/p/digest.json" --state "$T/dstate"
expect_eq "the digest pipeline runs" 0 "$rc"
git -C "$T/repo" checkout -q -b change4 refs/pull/4/head
echo "/* one more helper comment */" >>"$T/repo/src/util.h"
git -C "$T/repo" commit -q -am "Comment the helpers"
git -C "$T/repo" update-ref refs/pull/4/head HEAD
git -C "$T/repo" checkout -q main
before=$(chats)
run digest2 "$T/p/digest.json" --state "$T/dstate"
expect_eq "the digest pipeline after a change exits 0" 0 "$rc"
expect_eq "PR 4's three tasks and the digest ask a model" $((before + 4)) "$(chats)"
report "$T/dstate" | jq -r 'select(.cached == false) | "\(.item) \(.stage)"' | sort >"$T/digest-live.txt"
expect_eq "... and nothing else" "(batch) digest
refs/pull/4/head plan
refs/pull/4/head review
refs/pull/4/head summarize" "$(cat "$T/digest-live.txt")"

# A refusal is never answered from the cache: the same request, cached under
# a pipeline that cleared it, is refused once a detector finds the title
# sensitive (a run-time label: the static check passes, the gate refuses).
title_pipeline() { # FILE DETECTORS
  cat >"$1" <<EOF
{
  "version": 1, "name": "titles",
  "labels": ["public", "internal", "confidential", "restricted"],
  "endpoints": { "cloud": { "provider": "ollama", "url": "\${BULKHEAD_CLOUD_URL}",
                            "locality": "cloud", "clearance": "internal" } },
  "source": { "kind": "git", "label": "confidential", "fields": { "pr.title": "internal" },
              "detectors": $2 },
  "stages": { "title": { "endpoint": "cloud", "model": "titler", "user": "Title: {{pr.title}}" } }
}
EOF
}
title_pipeline "$T/titles-open.json" '[]'
title_pipeline "$T/titles-closed.json" '[{ "id": "parser", "regex": "parser", "label": "confidential" }]'
run open "$T/titles-open.json" --state "$T/tstate"
expect_eq "titles are sent when internal" 0 "$rc"
before=$(chats)
run closed "$T/titles-closed.json" --state "$T/tstate"
expect_eq "a title the detector raises is refused (exit 3)" 3 "$rc"
expect_eq "... nothing was sent" "$before" "$(chats)"
report "$T/tstate" >"$T/titles.jsonl"
expect_eq "... PR 1 (a parser change) is withheld, not answered from the cache" "withheld false" \
  "$(jq -r 'select(.item == "refs/pull/1/head") | "\(.state) \(.cached)"' "$T/titles.jsonl")"
expect_eq "... titles the detector leaves alone are answered from the cache" \
  "$(jq -s '[.[] | select(.state == "done")] | length' "$T/titles.jsonl")" \
  "$(jq -s '[.[] | select(.cached)] | length' "$T/titles.jsonl")"
"$BULKHEAD" audit show --state "$T/tstate" >"$T/taudit.jsonl"
trun=$(jq -s 'map(.run) | max' "$T/taudit.jsonl")
expect_eq "... the audit refuses PR 1 and has no cached answer for it" "refuse" \
  "$(jq -r --argjson r "$trun" 'select(.run == $r and .item == "refs/pull/1/head") | .decision' "$T/taudit.jsonl" | sort -u)"
expect "... and verifies" "$BULKHEAD" audit verify --state "$T/tstate"

# The cache commands.
"$BULKHEAD" cache prune --older-than 30 --state "$T/state" >"$T/prune30.out"
expect_contains "pruning by age keeps recent entries" "$T/prune30.out" "removed 0 entries not used in the last 30 days"
"$BULKHEAD" cache prune --all --state "$T/state" >"$T/pruneall.out"
expect_contains "prune --all empties the cache" "$T/pruneall.out" "the response cache is empty"
"$BULKHEAD" cache stats --state "$T/state" >"$T/stats5.out"
expect_contains "stats after prune" "$T/stats5.out" "entries  0"
set +e
"$BULKHEAD" cache prune --state "$T/state" >/dev/null 2>"$T/prune-usage.err"
rc=$?
set -e
expect_eq "prune without a choice is a usage error" 2 "$rc"
expect_contains "... naming both options" "$T/prune-usage.err" "prune takes either --older-than DAYS or --all"
set +e
"$BULKHEAD" cache stats --state "$T/no-such-state" >/dev/null 2>"$T/nostate.err"
rc=$?
set -e
expect_eq "stats of a missing state exits 2" 2 "$rc"
expect_contains "... saying how to make one" "$T/nostate.err" "no bulkhead state in"
finish

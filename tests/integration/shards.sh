#!/usr/bin/env bash
# Shards (README "At scale"): the shipped code-review pipeline with a nightly
# digest added (a batch-scope stage over every review) runs over 8 pull
# requests once in one process, and again as 4 shards, 4 processes started
# as a Kubernetes Indexed Job starts its pods (JOB_COMPLETION_INDEX=0..3,
# BULKHEAD_SHARDS=4, --shard auto), each into its own state. Every item is in
# exactly one shard and no shard runs the digest. `bulkhead merge` makes one
# state of the four; `run` on it sends only the digest; its report lists the
# same tasks, states and outputs as the one-process run's, and `audit verify`
# passes on it. A shard whose audit record was changed is refused by merge
# (exit 3), and a merged state whose copy of a shard's record was changed
# fails `audit verify` (exit 3). Bad --shard values and merges of states that
# are not every shard of one run are usage errors (exit 2).
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
cd "$T"

make_repo "$T/repo" --prs 8
cp -r "$BH_SOURCE_DIR/pipelines" "$T/pl"
jq '.stages.digest = {"endpoint": "gpu-box", "model": "qwen2.5-coder:7b", "scope": "batch",
    "prompt": "prompts/review-digest.md"}' "$BH_SOURCE_DIR/pipelines/code-review.json" >"$T/pl/review.json"
printf 'Digest of tonight'"'"'s reviews, one bullet each:\n\n{{review.output}}\n' \
  >"$T/pl/prompts/review-digest.md"
start_fake local
start_fake cloud
export BULKHEAD_LOCAL_URL=$local_URL BULKHEAD_CLOUD_URL=$cloud_URL
try() { # runs a command that may fail: its exit code in $rc
  set +e
  "$@"
  rc=$?
  set -e
}
run() { # run STATE [options]: exit code in $rc, stderr in STATE.err
  local state=$1; shift
  try "$BULKHEAD" run "$T/pl/review.json" --repo "$T/repo" --base main --quiet --state "$T/$state" \
    "$@" 2>"$T/$state.err"
}
calls() { # model calls both servers logged, the probes left out
  cat "$T/local.log" "$T/cloud.log" | jq -c "select(.path == \"/api/chat\") | $NOT_PROBE" | wc -l
}
# item, stage, element, state and output of every task, in one order
tasks() {
  "$BULKHEAD" report --state "$T/$1" --format jsonl |
    jq -c '{item, stage, element, state, output}' | sort
}

run one
expect_eq "the one-process run exits 0" 0 "$rc"
tasks one >"$T/one.tasks"
expect_eq "it ran 8 items x 3 stages and the digest" 25 "$(wc -l <"$T/one.tasks")"

# ---- four shards, as the pods of an Indexed Job ----------------------------
pids=()
for i in 0 1 2 3; do
  (JOB_COMPLETION_INDEX=$i BULKHEAD_SHARDS=4 run "s$i" --shard auto; exit "$rc") &
  pids+=($!)
done
for i in 0 1 2 3; do
  try wait "${pids[$i]}"
  expect_eq "shard $i/4 exits 0" 0 "$rc"
  expect_contains "shard $i/4 says which shard it is" "$T/s$i.err" "bulkhead: shard $i/4: "
  expect_contains "shard $i/4 says the digest does not run in a shard" "$T/s$i.err" \
    "batch-scope stages not run in a shard: digest"
done
for i in 0 1 2 3; do tasks "s$i"; done >"$T/shards.tasks"
expect_eq "no shard ran the digest" 0 "$(grep -c '"(batch)"' "$T/shards.tasks" || true)"
jq -r .item "$T/shards.tasks" | sort -u >"$T/shard-items"
jq -r 'select(.item != "(batch)") | .item' "$T/one.tasks" | sort -u >"$T/one-items"
expect_eq "the shards cover every item" "$(cat "$T/one-items")" "$(cat "$T/shard-items")"
expect_eq "each item is in exactly one shard" 8 \
  "$(for i in 0 1 2 3; do tasks "s$i" | jq -r .item | sort -u; done | wc -l)"
nonempty=0
for i in 0 1 2 3; do [ -n "$(tasks "s$i")" ] && nonempty=$((nonempty + 1)); done
expect "the items spread over more than one shard ($nonempty)" [ "$nonempty" -ge 2 ]

# The shard is part of the run's identity: the same shard resumes, another
# shard on the same state is a new run.
cp -r "$T/s1" "$T/s1-again"
run s1-again --shard 1/4
expect_contains "shard 1/4 again on its state resumes its run" "$T/s1-again.err" "resuming run 1"
run s1-again --shard 2/4
expect_contains "shard 2/4 on shard 1's state is another run" "$T/s1-again.err" "starting run 2"

# ---- merge, then the batch stage on the merged state -----------------------
try "$BULKHEAD" merge --into "$T/merged" "$T/s3" "$T/s1" "$T/s0" "$T/s2" 2>"$T/merge.err"
expect_eq "merge exits 0 (shards in any order)" 0 "$rc"
expect_contains "merge says what to do next" "$T/merge.err" "merged 4 shard states into"
before=$(calls)
run merged
expect_eq "run on the merged state exits 0" 0 "$rc"
expect_eq "it sends only the digest" 1 $(($(calls) - before))
expect_contains "it says only batch-scope stages run" "$T/merged.err" \
  "merged state of 4 shards: item-scope tasks are the shards', only batch-scope stages run: digest"
tasks merged >"$T/merged.tasks"
expect_eq "the merged report lists the same tasks, states and outputs as one process" \
  "$(cat "$T/one.tasks")" "$(cat "$T/merged.tasks")"
try "$BULKHEAD" audit verify --state "$T/merged" >"$T/verify.out" 2>&1
expect_eq "audit verify passes on the merged state" 0 "$rc"
expect_contains "and says the chain is intact" "$T/verify.out" "chain intact"
"$BULKHEAD" audit show --state "$T/merged" | jq -c 'select(.decision == "merge")' >"$T/merges"
expect_eq "the merged chain holds a merge record per shard" 4 "$(wc -l <"$T/merges")"
expect_eq "each names its shard's head hash and record count" 4 \
  "$(jq -c 'select((.payload_sha256 | length) == 64 and .bytes > 0)' "$T/merges" | wc -l)"

# ---- tampering ---------------------------------------------------------------
cp -r "$T/merged" "$T/merged-x"
sqlite3 "$T/merged-x/state.db" \
  "UPDATE audit_merged SET model = 'another-model' WHERE rowid = (SELECT min(rowid) FROM audit_merged)"
try "$BULKHEAD" audit verify --state "$T/merged-x" >"$T/verify-x.out" 2>"$T/verify-x.err"
expect_eq "a changed shard record in the merged state fails audit verify (exit 3)" 3 "$rc"
expect_contains "naming the merge record and the shard" "$T/verify-x.err" \
  "links the audit log of a merged shard (shard"
cp -r "$T/merged" "$T/merged-y"
sqlite3 "$T/merged-y/state.db" \
  "DELETE FROM audit_merged WHERE rowid = (SELECT max(rowid) FROM audit_merged)"
try "$BULKHEAD" audit verify --state "$T/merged-y" >/dev/null 2>"$T/verify-y.err"
expect_eq "a shard's newest record removed from the merged state fails audit verify" 3 "$rc"
expect_contains "saying records were removed or altered" "$T/verify-y.err" \
  "records of the merged shard were removed or altered"

# The shards' allowed records are held to their clearances in the merged state
# too (against the merged run's labels): here the lattice turned upside down.
cp -r "$T/merged" "$T/merged-z"
sqlite3 "$T/merged-z/state.db" "UPDATE runs SET labels = 'restricted' || char(10) ||
  'confidential' || char(10) || 'internal' || char(10) || 'public'"
try "$BULKHEAD" audit verify --state "$T/merged-z" >/dev/null 2>"$T/verify-z.err"
expect_eq "a shard's record above its clearance in the merged state fails audit verify" 3 "$rc"
expect_contains "naming the merged shard and the record" "$T/verify-z.err" \
  "links the audit log of a merged shard (shard 0/4 merged from"

cp -r "$T/s2" "$T/s2-x"
sqlite3 "$T/s2-x/state.db" "UPDATE audit SET bytes = bytes + 1 WHERE seq = 1"
try "$BULKHEAD" merge --into "$T/m-x" "$T/s0" "$T/s1" "$T/s2-x" "$T/s3" 2>"$T/merge-x.err"
expect_eq "merge refuses a shard whose audit was changed (exit 3)" 3 "$rc"
expect_contains "naming the shard's state" "$T/merge-x.err" "state '$T/s2-x': its audit log does not verify"
expect "and leaves no state behind" [ ! -e "$T/m-x/state.db" ]

# ---- what merge refuses --------------------------------------------------------
merge_fails() { # DESCRIPTION TEXT STATE...
  local what=$1 text=$2; shift 2
  try "$BULKHEAD" merge --into "$T/m-bad" "$@" 2>"$T/merge-bad.err"
  expect_eq "merge refuses $what (exit 2)" 2 "$rc"
  expect_contains "merge says so: $what" "$T/merge-bad.err" "$text"
  rm -rf "$T/m-bad"
}
merge_fails "a missing shard" "shard 2/4 is missing" "$T/s0" "$T/s1" "$T/s3"
merge_fails "a shard given twice" "are both shard 1/4" "$T/s0" "$T/s1" "$T/s1" "$T/s2" "$T/s3"
merge_fails "a state that is no shard" "was not started with --shard" "$T/one"
# Two shards' states relabelled as each other's (their items hash elsewhere):
# every task would still be there once, so only placement shows it.
full=()
for i in 0 1 2 3; do [ -n "$(tasks "s$i")" ] && full+=("$i"); done
a=${full[0]} b=${full[1]}
for i in 0 1 2 3; do cp -r "$T/s$i" "$T/sw$i"; done
sqlite3 "$T/sw$a/state.db" "UPDATE runs SET key = replace(key, '/shard-$a-of-4', '/shard-$b-of-4')"
sqlite3 "$T/sw$b/state.db" "UPDATE runs SET key = replace(key, '/shard-$b-of-4', '/shard-$a-of-4')"
merge_fails "shards whose items hash to another shard" "which hashes to shard" \
  "$T/sw0" "$T/sw1" "$T/sw2" "$T/sw3"
run other --shard 0/4 --exclude 'refs/pull/1/head'
merge_fails "shards of different runs" "are shards of different runs" "$T/other" "$T/s1" "$T/s2" "$T/s3"
merge_fails "a folder with no state" "no bulkhead state in" "$T/nothing"
try "$BULKHEAD" merge --into "$T/merged" "$T/s0" "$T/s1" "$T/s2" "$T/s3" 2>"$T/merge-bad.err"
expect_eq "merge into a folder that holds a state exits 2" 2 "$rc"
expect_contains "saying so" "$T/merge-bad.err" "--into '$T/merged' already holds a bulkhead state"
expect_eq "and leaves that state as it was" "$(cat "$T/merged.tasks")" "$(tasks merged)"

# ---- bad --shard values ----------------------------------------------------------
shard_bad() { # VALUE TEXT [ENV...]
  local value=$1 text=$2; shift 2
  try env "$@" "$BULKHEAD" run "$T/pl/review.json" --repo "$T/repo" --state "$T/bad" \
    --shard "$value" 2>"$T/bad.err"
  expect_eq "--shard '$value' $* is a usage error" 2 "$rc"
  expect_contains "--shard '$value' $*: the message" "$T/bad.err" "$text"
}
shard_bad 4/4 "--shard takes I/N with 0 <= I < N <= 1024 (e.g. --shard 0/4) or 'auto', got '4/4'"
shard_bad 0/0 "got '0/0'"
shard_bad 0/1025 "got '0/1025'"
shard_bad -1/4 "got '-1/4'"
shard_bad 1 "got '1'"
shard_bad auto "--shard auto: JOB_COMPLETION_INDEX is not set" -u JOB_COMPLETION_INDEX
shard_bad auto "--shard auto: BULKHEAD_SHARDS is not set" -u BULKHEAD_SHARDS JOB_COMPLETION_INDEX=1
shard_bad auto "JOB_COMPLETION_INDEX='4' and BULKHEAD_SHARDS='4' do not make a shard" \
  JOB_COMPLETION_INDEX=4 BULKHEAD_SHARDS=4
expect "no state is made for a bad --shard" [ ! -e "$T/bad" ]
finish

#!/usr/bin/env bash
# Item keys are data: a document's path, a pull request's ref name. A batch
# stage reads a per-item field under "## <key>" and names the items it left
# out ("(not available: KEY — withheld)"), so a key that carries a secret
# would reach a cloud batch stage although the item's own fields are fine.
#   A. a document withheld from the per-item cloud stage (its text is
#      restricted by a path rule) whose path holds an AWS key: the cloud
#      digest may run, but must not name it;
#   B. a document whose text is harmless but whose path holds an AWS key:
#      the digest's prompt is restricted, so it goes to the local standby;
#   C. the same with a git ref name holding a GitHub token.
source "$BH_SOURCE_DIR/tests/adversarial/lib.sh"
cd "$T"

# Random, so that a canary found anywhere comes from this run.
akia() { echo "AKIA$(openssl rand -hex 8 | tr a-f A-F)"; }
canA=$(akia)
canB=$(akia)
canC="ghp_$(openssl rand -hex 18)"
printf '%s\n' "$canA" "$canB" "$canC" >"$T/canaries"

start_fake cloud
start_fake local
export ADV_CLOUD_URL="$cloud_URL" ADV_LOCAL_URL="$local_URL"
PIPE="$ADV/pipelines/batch_key_names.json"

bh_run check check "$PIPE"
expect_rc "check: the pipeline is sound statically" 0

# --- A. a withheld document named in the gone line ---------------------------
mkdir -p docsA/notes docsA/secrets
echo "Quarterly planning notes, nothing secret." >docsA/notes/a.md
echo "Team offsite agenda." >docsA/notes/b.md
echo "the private half of the deploy credentials" >"docsA/secrets/$canA.key"
bh_run A run "$PIPE" --docs "$T/docsA" --state "$T/A.state"
# The tag stage declares on_sensitive "skip": the skip is the pipeline's intent
# (exit 0), listed as skipped; what matters here is that the key stays unnamed.
expect_rc "A: the run ends with the document skipped, as the pipeline declares" 0
expect_contains "A: the summary counts the skip" "$T/A.err" "1 skipped as the pipeline declares"
no_canary_at "$T/cloud.log" "$T/canaries" "A"
expect_contains "A: the cloud digest says an item is left out, without naming it" "$T/cloud.log" \
  "1 other item"
audit_has "A" "$T/A.state" "decision = 'refuse' AND stage = 'tag'"
audit_has "A: the digest went to the cloud" "$T/A.state" "decision = 'allow' AND stage = 'digest'"
audit_says "A" "$T/A.state" 0

# --- B. a document whose path holds the key, text harmless -------------------
: >"$T/cloud.log"
: >"$T/local.log"
mkdir -p docsB/notes
echo "Quarterly planning notes, nothing secret." >docsB/notes/a.md
echo "Where the deploy key lives is in the file name only." >"docsB/notes/$canB.md"
bh_run B run "$PIPE" --docs "$T/docsB" --state "$T/B.state"
expect_rc "B: the run succeeds (a reroute is not a refusal)" 0
no_canary_at "$T/cloud.log" "$T/canaries" "B"
expect_contains "B: the digest ran on the local box instead" "$T/local.log" "$canB"
audit_has "B" "$T/B.state" "decision = 'refuse' AND stage = 'digest' AND reason LIKE '%reroute%'"
audit_says "B" "$T/B.state" 0

# --- C. a pull request ref whose name holds a token --------------------------
: >"$T/cloud.log"
: >"$T/local.log"
make_repo "$T/repo" --prs 2
git -C "$T/repo" update-ref "refs/pull/$canC/head" refs/pull/1/head
bh_run C run "$ADV/pipelines/batch_key_names-git.json" --repo "$T/repo" --base main \
  --state "$T/C.state"
expect_rc "C: the run succeeds (a reroute is not a refusal)" 0
no_canary_at "$T/cloud.log" "$T/canaries" "C"
expect_contains "C: the digest ran on the local box instead" "$T/local.log" "$canC"
audit_has "C" "$T/C.state" "decision = 'refuse' AND stage = 'digest' AND reason LIKE '%reroute%'"
audit_says "C" "$T/C.state" 0
finish

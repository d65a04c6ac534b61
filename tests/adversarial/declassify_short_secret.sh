#!/usr/bin/env bash
# Attack: a local reviewer names a short secret of the diff in a sentence
# ("the token BULKHEAD-CANARY-1-... is hard-coded"). That copies fewer than
# no_verbatim_tokens (8) tokens, so before the no_rare_tokens guard the
# SHIPPED pipelines/code-review.json declassified the review to internal and
# its cloud `summarize` stage read the canary. The reviewer (fake-llm's
# "copy" rule) also spells the canary out letter by letter, with zero-width
# spaces inside, with Cyrillic look-alikes, upper-cased, in full-width forms,
# and names only its 16 hex digits: every spelling must keep the review
# confidential, so summarize is rerouted to summarize-local (on_sensitive
# reroute) and the cloud sees no canary, in any spelling.
#
# Witnesses: no canary (nor its hex part, after normalising the cloud's log
# the way the guard does) at the cloud; the run exits 0 — the reroute is the
# pipeline's declared answer to a review that stayed confidential, every task
# is done, nothing was withheld; one audit record "keep" per scripted review
# naming the guard; `audit verify` 0; `check` proves the pipeline (exit 0).
source "$BH_SOURCE_DIR/tests/adversarial/lib.sh"
cd "$T"

# PRs 2 and 8 change docs/ only: their diff is internal (path rule), so a
# review quoting their canary may go to the cloud. They get the default reply.
make_repo "$T/repo" --prs 9
canaries="$T/repo.canaries"
CAN='BULKHEAD-CANARY-[0-9]+-[0-9a-f]{16}'
cat >"$T/script.json" <<JSON
{ "qwen2.5-coder:14b": [
  {"match": "Pull request #1:", "copy": "$CAN", "reply": "The token {{copy}} is hard-coded in the parser; move it to the config."},
  {"match": "Pull request #3:", "copy": "$CAN", "copy_as": "spaced", "reply": "Remove the key {{copy}} from the change."},
  {"match": "Pull request #4:", "copy": "$CAN", "copy_as": "zero-width", "reply": "The comment names {{copy}}, which looks like a credential."},
  {"match": "Pull request #5:", "copy": "$CAN", "copy_as": "cyrillic", "reply": "Looks fine, but {{copy}} should not be committed."},
  {"match": "Pull request #6:", "copy": "$CAN", "copy_as": "upper", "reply": "Password {{copy}} is hard-coded."},
  {"match": "Pull request #7:", "copy": "$CAN", "copy_as": "fullwidth", "reply": "The value {{copy}} must be rotated."},
  {"match": "Pull request #9:", "copy": "CANARY-[0-9]+-([0-9a-f]{16})", "reply": "The hex value {{copy}} is a secret, move it out."}
] }
JSON
start_fake local --script "$T/script.json"
start_fake cloud
export BULKHEAD_LOCAL_URL=$local_URL BULKHEAD_CLOUD_URL=$cloud_URL
REVIEW=$BH_SOURCE_DIR/pipelines/code-review.json

bh_run check check "$REVIEW"
expect_rc "check proves the shipped pipeline" 0

bh_run run run "$REVIEW" --repo "$T/repo" --pulls 'refs/pull/*/head' --base main --state "$T/state"
expect_rc "the run reroutes the summaries of confidential reviews and finishes" 0

# The canaries as the reviewer spelled them, so a plain grep finds them too.
: >"$T/spellings"
python3 - "$canaries" "$T/spellings" <<'PY'
import sys
cyr = dict(zip("aeopcxyiABEKMHOPCTX", "аеорсхуіАВЕКМНОРСТХ"))
out = open(sys.argv[2], "w")
for c in open(sys.argv[1]).read().split():
    for s in (c, " ".join(c), "\u200b".join(c), "".join(cyr.get(x, x) for x in c), c.upper(),
              "".join(chr(ord(x) + 0xFEE0) for x in c), c.rsplit("-", 1)[1]):
        out.write(s + "\n")
PY
# The docs PRs' reviews do not name their canaries: every spelling may be looked for.
no_canary_at "$T/cloud.log" "$T/spellings" "every spelling"

# The cloud's log as the guard sees text: JSON bodies decoded, NFKC, case
# folded, format characters dropped, look-alikes mapped, only letters and digits.
leaks=$(python3 - "$T/cloud.log" "$canaries" <<'PY'
import sys, json, unicodedata
lat = dict(zip("аеорсхуіАВЕКМНОРСТХ", "aeopcxyiabekmhopctx"))
def norm(s):
    s = unicodedata.normalize("NFKC", s).casefold()
    s = "".join(lat.get(ch, ch) for ch in s if unicodedata.category(ch) != "Cf")
    return "".join(ch for ch in s if ch.isascii() and ch.isalnum())
text = ""
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    try:
        text += norm(json.dumps(json.loads(json.loads(line).get("body") or "null"), ensure_ascii=False))
    except ValueError:
        text += norm(line)
print(sum(1 for c in open(sys.argv[2]).read().split() if norm(c.rsplit("-", 1)[1]) in text))
PY
)
expect_eq "the normalised cloud log holds no canary's hex digits" 0 "$leaks"

expect_eq "every scripted review is kept confidential, audited as keep" 7 \
  "$(sqlite3 "$T/state/state.db" "SELECT count(*) FROM audit WHERE stage = 'review' AND decision = 'keep' AND reason LIKE '%no_rare_tokens%'")"
audit_has "the review that named its canary as-is" "$T/state" \
  "stage = 'review' AND decision = 'keep' AND item = 'refs/pull/1/head' AND reason LIKE '%kept at confidential%'"
expect_eq "no audit reason repeats a canary" 0 \
  "$(sqlite3 "$T/state/state.db" "SELECT reason FROM audit" | grep -c -F -f "$canaries" || true)"
expect_eq "every summary of a scripted review ran locally" 7 \
  "$(sqlite3 "$T/state/state.db" "SELECT count(*) FROM audit WHERE stage = 'summarize-local' AND decision = 'allow'")"
audit_says "after the reroutes" "$T/state" 0

finish

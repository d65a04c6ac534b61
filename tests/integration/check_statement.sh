#!/usr/bin/env bash
# `check --format md` never claims more than it proved: its Verdict (the
# data-flow statement, per stage off the machine, and the assumptions it
# rests on) is generated from the gate's facts. This compares the Verdict of
# every shipped pipeline with tests/integration/expected/statement-NAME.md,
# exactly, so that any change to the statement is reviewed. The endpoints are
# the pipelines' defaults (no BULKHEAD_*_URL, no OLLAMA_HOST); the check runs
# in a network namespace of its own (unshare -rn) so that resolving the cloud
# host sends no DNS query off the machine. BH_UPDATE_EXPECTED=1 rewrites the
# expected files instead (review the diff).
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
cd "$BH_SOURCE_DIR"
EXP="$BH_SOURCE_DIR/tests/integration/expected"
# Without a namespace the check would resolve the cloud host through this
# machine's resolver (a query off the machine, and an answer that varies):
# not run, and said so, rather than compared against what this network says.
if ! unshare -rn true 2>/dev/null; then
  skip_part "no unprivileged network namespace here: the statements are not compared"
  finish
  exit
fi
n=0
for f in pipelines/*.json; do
  name=$(basename "$f" .json)
  bh_run_under "$name" env -u OLLAMA_HOST -u BULKHEAD_LOCAL_URL -u BULKHEAD_CLOUD_URL \
    -u BULKHEAD_TRUSTED_NETWORKS unshare -rn -- check "$f" --format md
  expect_eq "$name: check passes" 0 "$rc"
  sed -n '/^## Verdict$/,$p' "$T/$name.out" >"$T/$name.statement"
  if [ -n "${BH_UPDATE_EXPECTED:-}" ]; then cp "$T/$name.statement" "$EXP/statement-$name.md"; fi
  if diff -u "$EXP/statement-$name.md" "$T/$name.statement" >"$T/$name.diff"; then
    ok "$name: the statement is the reviewed one"
  else
    not_ok "$name: the statement changed (BH_UPDATE_EXPECTED=1 rewrites it; review the diff)"
    sed 's/^/#   /' "$T/$name.diff" | head -40
  fi
  expect_contains "$name: the statement names its assumptions" "$T/$name.statement" \
    "This rests on assumptions that the file alone cannot prove:"
  n=$((n + 1))
done
expect_eq "every shipped pipeline has an expected statement" "$n" "$(ls "$EXP"/statement-*.md | wc -l)"
finish

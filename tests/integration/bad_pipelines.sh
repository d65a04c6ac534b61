#!/usr/bin/env bash
# Every malformed pipeline of fixtures/pipelines/bad/ is rejected by
# `bulkhead check` with exit 2 and exactly the message in its .expected file.
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
cd "$BH_SOURCE_DIR"
n=0
for f in fixtures/pipelines/bad/*.json; do
  n=$((n + 1))
  set +e
  "$BULKHEAD" check "$f" >/dev/null 2>"$T/err"
  rc=$?
  set -e
  expect_eq "$f: exit 2" 2 "$rc"
  expect_eq "$f: message" "bulkhead: $(cat "${f%.json}.expected")" "$(cat "$T/err")"
done
expect "the corpus has at least 14 files" [ "$n" -ge 14 ]
finish

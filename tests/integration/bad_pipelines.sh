#!/usr/bin/env bash
# Every malformed pipeline of fixtures/pipelines/bad/ (JSON and YAML) is
# rejected by `bulkhead check` with exit 2 and exactly the messages in its
# .expected file: one line per error, each printed as "bulkhead: <line>".
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
cd "$BH_SOURCE_DIR"
n=0
yaml=0
for f in fixtures/pipelines/bad/*.json fixtures/pipelines/bad/*.yaml fixtures/pipelines/bad/*.yml; do
  [ -e "$f" ] || continue
  n=$((n + 1))
  case "$f" in *.yaml | *.yml) yaml=$((yaml + 1)) ;; esac
  set +e
  "$BULKHEAD" check "$f" >/dev/null 2>"$T/err"
  rc=$?
  set -e
  expect_eq "$f: exit 2" 2 "$rc"
  expect_eq "$f: messages" "$(sed 's/^/bulkhead: /' "${f%.*}.expected")" "$(cat "$T/err")"
done
expect "the corpus has at least 14 files" [ "$n" -ge 14 ]
expect "the corpus has at least 6 YAML files" [ "$yaml" -ge 6 ]
finish

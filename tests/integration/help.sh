#!/usr/bin/env bash
# Text that is true: the top-level --help names every command and every exit
# code of runner/cli/cli.h; each command's --help exits 0 and names every
# option of its table (the binary's hidden --list-options prints the table)
# and every value of each enumeration (report --help: every format the report
# writer accepts, as its own error message lists them); the README's command
# reference names exactly the options of each table, and the README's exit
# code table every code. Runs nothing but bulkhead's help.
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
cd "$T"
readme="$BH_SOURCE_DIR/README.md"

set +e
"$BULKHEAD" --help >"$T/top.out" 2>"$T/top.err"
rc=$?
set -e
expect_eq "bulkhead --help exits 0" 0 "$rc"

# The commands, from the top-level help's "commands:" block.
commands=$(awk '/^commands:/ {on = 1; next} on && /^$/ {exit} on {print $1}' "$T/top.out")
expect_eq "the top-level help lists the nine commands" \
  "audit cache check merge models plan report run status" "$(echo $commands | tr ' ' '\n' | sort | xargs)"

# Every exit code cli.h defines is in the top-level help and in the README.
codes=$(grep -oE 'CLI_EXIT_[A-Z]+ = [0-9]+' "$BH_SOURCE_DIR/runner/cli/cli.h" | awk '{print $3}')
expect_eq "cli.h defines six exit codes" 6 "$(echo "$codes" | wc -l)"
for code in $codes; do
  expect_eq "the top-level help states exit code $code" 1 \
    "$(awk '/^exit codes:/ {on = 1; next} on {print $1}' "$T/top.out" | grep -cx "$code")"
  expect_eq "the README's exit code table states $code" 1 "$(grep -cE "^\| $code \|" "$readme")"
done

# The README's command reference row of CMD, one line.
readme_row() { grep -E "^\| \`$1( |\`)" "$readme" | head -1; }

for cmd in $commands; do
  set +e
  "$BULKHEAD" "$cmd" --help >"$T/$cmd.help" 2>"$T/$cmd.err"
  rc=$?
  "$BULKHEAD" "$cmd" --list-options >"$T/$cmd.opts" 2>>"$T/$cmd.err"
  rc_list=$?
  set -e
  expect_eq "$cmd --help exits 0" 0 "$rc"
  expect_eq "$cmd --list-options exits 0" 0 "$rc_list"
  expect_eq "$cmd --help prints nothing on stderr" "" "$(cat "$T/$cmd.err")"
  expect_contains "$cmd --help starts with its usage line" "$T/$cmd.help" "usage: bulkhead $cmd"
  opts=$(awk '{print $1}' "$T/$cmd.opts")
  expect "$cmd has options in its table" test -n "$opts"
  for opt in $opts; do
    expect_eq "$cmd --help lists $opt" 1 \
      "$(grep -cE "^  $opt( |,|\$)" "$T/$cmd.help" | awk '{print ($1 >= 1)}')"
  done
  # Each enumeration's values, as the option's own error message lists them.
  while read -r opt kind rest; do
    [ "$kind" = enum ] || continue
    for v in $(echo "$rest" | tr -d ','); do
      expect_eq "$cmd --help names $v of $opt" 1 "$(grep -c -w -- "$v" "$T/$cmd.help" | awk '{print ($1 >= 1)}')"
      expect_eq "the README names $v of $cmd $opt" 1 "$(readme_row "$cmd" | grep -c -w -- "$v")"
    done
  done <"$T/$cmd.opts"
  # The README's reference names exactly the table's options.
  row=$(readme_row "$cmd")
  expect "the README's command reference has a row for $cmd" test -n "$row"
  expect_eq "the README's $cmd row names exactly the options of its table" \
    "$(echo "$opts" | sort -u | xargs)" \
    "$(echo "$row" | grep -oE -- '--[a-z][a-z-]*' | sort -u | xargs)"
done

# report --format accepts exactly what its --help and its error list name.
set +e
"$BULKHEAD" report --format no-such-format >/dev/null 2>"$T/badfmt.err"
rc=$?
set -e
expect_eq "report --format with an unknown format exits 2" 2 "$rc"
expect_contains "... naming the option and the formats" "$T/badfmt.err" \
  "bulkhead report: --format: unknown format 'no-such-format' (known: md, jsonl, sarif, junit, github-review)"
for f in md jsonl sarif junit github-review; do
  expect_eq "report --help names $f" 1 "$(grep -c -w -- "$f" "$T/report.help" | awk '{print ($1 >= 1)}')"
done

# Integers are checked against the row's range, in one message shape.
set +e
"$BULKHEAD" cache prune --older-than 100001 >/dev/null 2>"$T/range.err"
rc=$?
set -e
expect_eq "cache --older-than above its range exits 2" 2 "$rc"
expect_contains "... saying what it takes" "$T/range.err" \
  "bulkhead cache: --older-than takes a number of days such as 30, got '100001'"
finish

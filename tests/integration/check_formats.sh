#!/usr/bin/env bash
# `check --format json|dot|md|text`: the JSON graph of every shipped and
# fixture pipeline equals the expected graph in fixtures/check/ (ports and
# folders normalised); dot has the expected edges and renders when Graphviz is
# installed; md names every cloud stage and its host and what a detector hit
# does; text shows on_sensitive and the notes. Nothing is sent, so the
# endpoint URLs need no server behind them. The shipped pipeline has no
# "detectors" key: every built-in detector is on, so detector bounds and notes
# appear in its graph.
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
cd "$T"
E="$BH_SOURCE_DIR/fixtures/check"
export BULKHEAD_LOCAL_URL=http://127.0.0.1:11434 BULKHEAD_CLOUD_URL=http://127.0.0.1:11435

norm='.pipeline.file |= sub(".*/"; "") | .endpoints[] |= (.port = 0 | .url |= sub(":[0-9]+$"; ""))'

fmt() { # FORMAT PIPELINE → sets rc, writes $T/fmt.out and $T/fmt.err
  bh_run fmt check --format "$1" "$2"
}

pipelines=("$BH_SOURCE_DIR"/pipelines/*.json "$BH_SOURCE_DIR"/fixtures/pipelines/policy/*.json
           "$E"/pipelines/*.json)
shipped=0
for f in "${pipelines[@]}"; do
  n=$(basename "$f" .json)
  fmt json "$f"
  want=3; case "$f" in "$BH_SOURCE_DIR"/pipelines/*) want=0; shipped=$((shipped + 1)) ;; esac
  expect_eq "$n: check --format json exits $want" "$want" "$rc"
  if jq -S "$norm" "$T/fmt.out" >"$T/$n.json" 2>"$T/jq.err" && diff -u "$E/$n.json" "$T/$n.json" >"$T/diff"; then
    ok "$n: the JSON graph is the expected one"
  else
    not_ok "$n: the JSON graph differs from fixtures/check/$n.json"; head -40 "$T/diff" "$T/jq.err" | sed 's/^/#   /'
  fi
  expect_eq "$n: the verdict agrees with the exit code" "$([ "$want" = 0 ] && echo true || echo false)" \
    "$(jq '.verdict.ok' "$T/fmt.out")"
done

expect "every shipped pipeline's graph is compared (code-review, documents, pr-check)" [ "$shipped" -ge 3 ]

# The locality reasons for the addresses a local endpoint can have.
reason() { BULKHEAD_LOCAL_URL=$1 fmt json "$BH_SOURCE_DIR/pipelines/code-review.json"
           jq -r '.stages[] | select(.name == "review") | "\(.locality_reason) / \(.clearance_from)"' "$T/fmt.out"; }
expect_eq "a private address alone is not local" \
  "declared local but private address in no trusted network (refused) / locality refused" \
  "$(reason http://10.1.2.3:11434)"
expect_eq "a private address in BULKHEAD_TRUSTED_NETWORKS is local" \
  "declared local, in a trusted network / default for local" \
  "$(BULKHEAD_TRUSTED_NETWORKS=10.1.0.0/16 reason http://10.1.2.3:11434)"
expect_eq "a public address is refused" "declared local but public address (refused) / locality refused" \
  "$(reason http://192.0.2.1:11434)"
# (A host that does not resolve is covered by the unit tests with a resolver of
# their own: a test here would send a DNS query off the machine.)

# dot: the edges with their bounds, refused edges red, the two clusters.
fmt dot "$BH_SOURCE_DIR/pipelines/code-review.json"
expect_eq "dot exits 0" 0 "$rc"
expect_contains "dot has the diff edge with its bound (raised by the path rules)" "$T/fmt.out" \
  '"f:pr.diff" -> "s:review" [label="restricted"];'
expect_contains "dot has the stage-to-stage edge, declassified" "$T/fmt.out" \
  '"s:review" -> "s:summarize" [label="declassified: internal / restricted", color=orange, fontcolor=orange];'
expect_contains "dot shows both bounds where a detector hit goes above the clearance" "$T/fmt.out" \
  '"f:pr.title" -> "s:plan" [label="internal / restricted", color=orange, fontcolor=orange];'
expect_contains "dot has the reroute edge" "$T/fmt.out" '"s:plan" -> "s:plan-local" [label="reroute", style=bold, color=blue];'
expect_contains "dot has a local cluster" "$T/fmt.out" "subgraph cluster_local"
expect_contains "dot has a cloud cluster" "$T/fmt.out" "subgraph cluster_cloud"
cp "$T/fmt.out" "$T/ok.dot"
fmt dot "$BH_SOURCE_DIR/fixtures/pipelines/policy/summary-to-cloud.json"
expect_contains "a refused edge is red" "$T/fmt.out" \
  '"s:review" -> "s:summarize" [label="confidential / restricted", color=red, fontcolor=red];'
if command -v dot >/dev/null; then
  expect "dot renders the graph" dot -Tsvg -o "$T/ok.svg" "$T/ok.dot"
  expect "dot renders a refused graph" dot -Tsvg -o "$T/bad.svg" "$T/fmt.out"
else
  skip_part "dot (graphviz) is not installed: rendering not tried"
fi

# md: every cloud stage with its host, and the statement of what leaves.
for f in "${pipelines[@]}"; do
  n=$(basename "$f" .json)
  fmt json "$f"; cp "$T/fmt.out" "$T/$n.graph.json"
  fmt md "$f"
  while IFS=$'\t' read -r stage host; do
    expect "$n md: names cloud stage $stage and its host $host on one line" \
      bash -c 'grep -F -- "- Stage $1 " "$2" | grep -qF "endpoint" && grep -F -- "- Stage $1 " "$2" | grep -qF " at $3 ("' \
      _ "$stage" "$T/fmt.out" "$host"
  done < <(jq -r '. as $g | .stages[] | select(.local | not) | . as $s |
                  "\($s.name)\t\($g.endpoints[] | select(.name == $s.endpoint) | .host)"' "$T/$n.graph.json")
done
fmt md "$BH_SOURCE_DIR/pipelines/code-review.json"
expect_contains "md states what leaves for the planner" "$T/fmt.out" \
  "Stage plan sends pr.number, pr.ref, pr.title, pr.files, pr.stats (internal) to cloud endpoint 'cloud' at 127.0.0.1 (model gpt-oss:120b"
expect_contains "md says what a detector hit in the planner's input does" "$T/fmt.out" \
  "such an item goes to stage plan-local on local endpoint 'gpu-box' instead."
expect_contains "md states that nothing confidential leaves" "$T/fmt.out" "If the assumptions below hold, no confidential or restricted data leaves the machine."
fmt md "$BH_SOURCE_DIR/fixtures/pipelines/policy/summary-to-cloud.json"
expect_contains "md says a refused pipeline does not run" "$T/fmt.out" "The check refuses this pipeline"

# text: on_sensitive, both bounds per input, and the note.
fmt text "$BH_SOURCE_DIR/pipelines/code-review.json"
expect_contains "text shows the planner's on_sensitive" "$T/fmt.out" \
  "on_sensitive: reroute to stage plan-local (local, clearance restricted)"
expect_contains "text shows both bounds of an input" "$T/fmt.out" \
  "reads pr.title: internal (the field's declared label); with detectors restricted — above its clearance when a detector hits"
expect_contains "text shows the path rules' bound" "$T/fmt.out" \
  "reads pr.diff: restricted (the field's label joined with every path rule); with detectors restricted"
expect_contains "text notes what a detector hit does" "$T/fmt.out" \
  "note: a detector hit in pr.number (or 4 more of its inputs) may raise the prompt to restricted, above its clearance internal: on_sensitive reroute runs stage plan-local instead for that item"
expect_contains "and says the check passes with a note" "$T/fmt.out" "check: ok — no stage can receive data above its clearance; 2 notes above say"
fmt text "$BH_SOURCE_DIR/fixtures/pipelines/policy/diff-to-cloud.json"
expect_contains "a refusal says what carries the label and what to do" "$T/fmt.err" \
  "stages.review: refused: cloud stage reads pr.diff (confidential), above its clearance internal — every item would be refused: run it where confidential may go, read less, or set on_sensitive skip or reroute:STAGE if only some items are that sensitive"

# Usage errors.
fmt xml "$BH_SOURCE_DIR/pipelines/code-review.json"
expect_eq "an unknown format is a usage error" 2 "$rc"
expect_contains "which names the valid formats" "$T/fmt.err" "unknown format 'xml' (known: text, json, dot, md)"
fmt text "$E/pipelines/stage-above-endpoint.json"
expect_eq "a stage cleared above its endpoint: check exits 3" 3 "$rc"
expect_contains "and says so with the next step" "$T/fmt.err" \
  "stages.plan: refused: stage declares clearance confidential above its endpoint 'cloud' (internal, endpoint) — lower the stage's clearance to at most internal"
finish

#!/usr/bin/env bash
# The CI templates: every file under ci/templates/ passes yamllint (strict,
# with the templates' own .yamllint), and the `run:` steps of the GitHub
# pull-request workflow, exactly as written, work against a sample
# repository's pull request and fake-llm (tests/helpers/gha_run.py runs them
# as a runner would, with GITHUB_ACTIONS, GITHUB_REF and the workflow's env;
# BULKHEAD_LOCAL_URL and BULKHEAD_CLOUD_URL point at fixture servers on
# 127.0.0.1, and `gh` is a stand-in that keeps the comment it was given).
# A PR whose scripted review has a high finding fails the Review step (exit
# 1) while the comment and the audit still run; a PR without one passes.
# The pipeline comes from the base branch (main holds pipelines/), never from
# the pull request's checkout: each job's workspace holds a pipelines/ of its
# own that would send the diff to the cloud, and the cloud gets no canary.
# What the job posts keeps to BULKHEAD_CLEARANCE: PR 1's job runs as if the
# repository set it to confidential (the finding is posted), PR 2's with the
# default internal; a third job of PR 1 at internal posts the review only as
# withheld, with its label.
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
cd "$T"
PY=/usr/bin/python3
W="$BH_SOURCE_DIR/ci/templates/github-pull-request.yml"

set +e
yamllint --strict -c "$BH_SOURCE_DIR/ci/templates/.yamllint" "$BH_SOURCE_DIR/ci/templates" >"$T/lint.out" 2>&1
rc=$?
set -e
expect_eq "yamllint passes every template" 0 "$rc"
[ "$rc" -eq 0 ] || cat "$T/lint.out"
expect_eq "yamllint sees the four GitHub and GitLab templates" 4 \
  "$(find "$BH_SOURCE_DIR/ci/templates" -name '*.yml' | wc -l)"

make_repo "$T/repo" --prs 2
# The base branch holds the pipelines the template reads.
cp -r "$BH_SOURCE_DIR/pipelines" "$T/repo/pipelines"
git -C "$T/repo" checkout -q main
git -C "$T/repo" add pipelines
git -C "$T/repo" -c user.name=t -c user.email=t@example.invalid commit -q -m "bulkhead pipelines"
HIGH='[{"path":"src/parser.c","line":12,"severity":"high","rule":"bounds","message":"off by one"}]'
jq -n --arg high "$HIGH" '{"qwen2.5-coder:14b": [
  {"match": "Pull request #1:", "reply": $high}, {"reply": "[]"}]}' >"$T/script.json"
start_fake local --script "$T/script.json"
start_fake cloud
mkdir -p "$T/bin"
ln -s "$BULKHEAD" "$T/bin/bulkhead"
cat >"$T/bin/gh" <<EOF
#!/usr/bin/env bash
# stand-in for the GitHub CLI: keeps its arguments and the comment body
printf '%s\n' "\$*" >>"$T/gh.args"
[ "\$1 \$2" = "pr comment" ] && cp "\$5" "$T/gh-\$3.md"
EOF
chmod +x "$T/bin/gh"

# job PR CLEARANCE [WS]: a checkout of PR's head as actions/checkout makes it
# (fetch-depth 0), then the workflow's run steps with the repository variable
# BULKHEAD_CLEARANCE set to CLEARANCE. The checkout also holds a pipelines/
# that a pull request could bring: every stage on the cloud, every label
# public. The template must not read it.
job() {
  local n=$1 clearance=$2 ws=${3:-$1}
  git clone -q "$T/repo" "$T/ws$ws"
  git -C "$T/ws$ws" fetch -q origin "refs/pull/$n/head"
  git -C "$T/ws$ws" checkout -q FETCH_HEAD
  mkdir -p "$T/ws$ws/pipelines" "$T/tmp$ws"
  jq '.source.label = "public" | .source.rules = [] | .endpoints.cloud.clearance = "restricted"
      | .stages.review.endpoint = "cloud"' "$BH_SOURCE_DIR/pipelines/pr-check.json" \
    >"$T/ws$ws/pipelines/pr-check.json"
  jq -n --arg n "$n" --arg sha "$(git -C "$T/ws$ws" rev-parse HEAD)" --arg c "$clearance" '{
    "github.base_ref": "main", "github.event.pull_request.number": $n,
    "github.sha": $sha, "secrets.OLLAMA_API_KEY": "bulkhead-test-dummy-key",
    "vars.BULKHEAD_CLEARANCE || '"'internal'"'": $c,
    "github.token": "test-token"}' >"$T/exprs$ws.json"
  (cd "$T/ws$ws" &&
    PATH="$T/bin:$PATH" GITHUB_ACTIONS=true CI=true GITHUB_REF="refs/pull/$n/merge" \
      GITHUB_BASE_REF=main GITHUB_WORKSPACE="$T/ws$ws" GITHUB_STEP_SUMMARY="$T/summary$ws.md" \
      RUNNER_TEMP="$T/tmp$ws" \
      GHA_ENV_OVERRIDES="$(jq -n --arg l "$local_URL" --arg c "$cloud_URL" \
        '{BULKHEAD_LOCAL_URL: $l, BULKHEAD_CLOUD_URL: $c}')" \
      "$PY" "$BH_SOURCE_DIR/tests/helpers/gha_run.py" "$W" review "$T/exprs$ws.json" "$T/steps$ws.json" \
      >"$T/job$ws.out" 2>"$T/job$ws.err")
}

# "name=rc" for every step, skipped ones as "name=-".
steps() {
  jq -r '[.[] | "\(.name)=\(if .skipped then "-" else .rc end)"] | join(", ")' "$T/steps$1.json"
}

job 1 confidential
expect_eq "PR 1 (a high finding): Review fails, comment and audit still run" \
  "actions/checkout@v4=-, actions/cache@v4=-, Pipeline from the base branch=0, Prove where data may flow=0, Plan (what goes where, per task)=0, Review=1, Findings to code scanning=-, Comment=0, Audit=0, actions/upload-artifact@v4=-" \
  "$(steps 1)"
expect_contains "the review step printed the finding as an annotation" "$T/job1.out" \
  "::error file=src/parser.c,line=12,endLine=12,title=bounds::high: off by one"
expect_contains "the check's Markdown went to the job summary" "$T/summary1.md" "triage"
expect_eq "gh was asked to comment on PR 1 with the Markdown report" \
  "pr comment 1 --body-file pr-comment.md" "$(sed -n 1p "$T/gh.args")"
expect_contains "the comment holds the finding" "$T/gh-1.md" "| high | src/parser.c:12 | bounds | off by one | review |"
expect "the SARIF the upload step would send validates" "$PY" -c '
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.validators.validator_for(schema)(schema).validate(json.load(open(sys.argv[2])))
' "$BH_SOURCE_DIR/fixtures/sarif/sarif-schema-2.1.0.json" "$T/ws1/pr-check.sarif"
expect_eq "the cloud received no canary" 0 "$(grep -c -F -f "$T/repo.canaries" "$T/cloud.log" || true)"

job 2 internal
expect_eq "PR 2 (no finding): every run step passes" \
  "actions/checkout@v4=-, actions/cache@v4=-, Pipeline from the base branch=0, Prove where data may flow=0, Plan (what goes where, per task)=0, Review=0, Findings to code scanning=-, Comment=0, Audit=0, actions/upload-artifact@v4=-" \
  "$(steps 2)"
expect_contains "its comment says there are none" "$T/gh-2.md" "0 findings"

# PR 1 again, at the default clearance: its review (confidential) is posted
# nowhere, only named withheld; the check still goes red.
rm -f "$T/gh.args"
job 1 internal 3
expect_eq "PR 1 at internal: Review still fails on the high finding" "1" \
  "$(jq -r '.[] | select(.name == "Review") | .rc' "$T/steps3.json")"
expect_contains "the comment names the review withheld with its label" "$T/gh-1.md" \
  "withheld from this report: the output is labelled confidential"
expect_eq "the comment does not quote the finding" 0 "$(grep -c 'off by one' "$T/gh-1.md" || true)"
expect_eq "no annotation quotes it" 0 "$(grep -c '^::error' "$T/job3.out" || true)"
expect_eq "the SARIF to upload holds no result" 0 "$(jq '.runs[0].results | length' "$T/ws3/pr-check.sarif")"
expect_eq "the artifact's jsonl holds no finding" 0 \
  "$(jq -s '[.[] | .findings // [] | length] | add' "$T/ws3/pr-check.jsonl")"
# (PR 2 changes only docs/, internal: its triage may read its diff in the cloud.)
expect_eq "the cloud received no PR 1 canary, whatever the checkout's pipelines/ says" 0 \
  "$(grep -c -F "$(sed -n 1p "$T/repo.canaries")" "$T/cloud.log" || true)"
finish

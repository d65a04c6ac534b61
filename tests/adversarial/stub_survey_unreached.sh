#!/usr/bin/env bash
# Attack: the local server does not answer the survey before the run (it is
# still starting: /api/version, /api/tags and /api/show fail), then serves a
# cloud stub under the stage's model name, as an Ollama older than 0.18
# does. Nothing was learnt of it, so nothing says "stub" before the first
# request; the probe must still go first: the run probes before the first
# request to every model of an "ollama" endpoint whose survey failed. The
# stub then sees only the probe's fixed text, the reviews are refused (exit
# 3), and nothing is breached.
source "$BH_SOURCE_DIR/tests/adversarial/lib.sh"
cd "$T"
command -v python3 >/dev/null || { echo "# SKIP: python3 is needed for the server"; exit 77; }

PIPE="$ADV/pipelines/stub_hidden_from_tags.json"
make_repo "$T/repo" --prs 3
start_fake cloud
python3 "$ADV/stub_survey_unreached-server.py" "$T/stub.port" "$T/stub.log" 2>"$T/stub.err" &
_pids+=($!) # stopped with the fakes when the script ends (tests/helpers/lib.sh)
for _ in $(seq 1 100); do [ -s "$T/stub.port" ] && break; sleep 0.05; done
expect "the stub server started" [ -s "$T/stub.port" ]
export ADV_CLOUD_URL=$cloud_URL ADV_LOCAL_URL="http://127.0.0.1:$(cat "$T/stub.port")"

bh_run run run "$PIPE" --repo "$T/repo" --state "$T/run.state"
expect_rc "the run refuses the reviews (data withheld)" 3
expect_contains "the survey's failure is said" "$T/run.err" "could not ask the server"
expect_contains "the run names the stub the probe found" "$T/run.err" \
  "model 'coder:7b' is a cloud stub that the server forwards to 'https://ollama.com:443' (seen in the probe's reply"
no_canary_at "$T/stub.log" "$T/repo.canaries" "stub behind a failed survey"
no_canary_at "$T/cloud.log" "$T/repo.canaries" "stub behind a failed survey"
expect_eq "the stub's only chat is the probe's fixed text" "Reply with OK." \
  "$(jq -r 'select(.path == "/api/chat") | .body | fromjson | .messages[-1].content' "$T/stub.log" | sort -u | paste -sd'|')"
audit_has "the refusals are audited, naming the stub" "$T/run.state" \
  "decision = 'refuse' AND stage = 'review' AND reason LIKE '%cloud stub%'"
audit_says "nothing was breached" "$T/run.state" 0
finish

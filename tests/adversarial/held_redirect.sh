#!/usr/bin/env bash
# Held: the local server answers every request with a 307 redirect to the cloud
# server (307 keeps the method and body: a client that follows it re-sends the
# diff, and the cloud endpoint's key if it had one, to the cloud). bulkhead never
# follows a redirect: the shipped pipeline's reviews fail (exit 4), nothing is
# re-sent anywhere, the API key of the cloud endpoint never reaches the local
# server, and the audit verifies.
source "$BH_SOURCE_DIR/tests/adversarial/lib.sh"
cd "$T"

make_repo "$T/repo" --prs 2
start_fake cloud
export OLLAMA_API_KEY=sk-adv-redirect-KEY-7c1f
for code in 307; do
  : >"$T/cloud.log"
  sed "s|@LOCATION@|$cloud_URL/api/chat|" "$BH_SOURCE_DIR/fixtures/scripts/redirect-to.json" >"$T/redirect-$code.json"
  start_fake "redir$code" --script "$T/redirect-$code.json"
  url_var="redir${code}_URL"
  bh_run "run$code" run "$BH_SOURCE_DIR/pipelines/code-review.json" --repo "$T/repo" --base main \
    --state "$T/s$code" --endpoint "gpu-box=${!url_var}" --endpoint "cloud=$cloud_URL"
  expect_rc "$code: the reviews fail, the run says so" 4
  expect_contains "$code: the error says the redirect was not followed" "$T/run$code.err" "never follows redirects"
  no_canary_at "$T/cloud.log" "$T/repo.canaries" "$code"
  expect_eq "$code: the cloud server saw only the 2 plans" 2 "$(jq -s 'length' "$T/cloud.log")"
  expect_eq "$code: the local server's redirect was never followed to the cloud (no review prompt there)" 0 \
    "$(grep -c -F 'qwen2.5-coder:14b' "$T/cloud.log" || true)"
  expect_eq "$code: the API key never reached the local server" 0 \
    "$(grep -c -F 'redirect-KEY-7c1f' "$T/redir$code.log" || true)"
  audit_says "$code" "$T/s$code" 0
  stop_fake "redir$code"
done
finish

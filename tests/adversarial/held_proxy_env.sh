#!/usr/bin/env bash
# Held: every proxy variable points at the cloud server. Behind a proxy every
# address check sees only the proxy, so a local endpoint must ignore them and
# connect directly. NO_PROXY=localhost exempts only the cloud URL (spelled
# "localhost") so that the plans succeed and the local reviews run at all; the
# local URL (127.0.0.1) is not exempt, and a control with curl shows this
# environment does proxy a request for it. The shipped pipeline runs: exit 0,
# the proxy (cloud server) sees no canary and no request for the local URL,
# every diff reaches the local server directly, audit verifies.
source "$BH_SOURCE_DIR/tests/adversarial/lib.sh"
cd "$T"

make_repo "$T/repo" --prs 2
start_fake cloud
start_fake local
proxy_env=(env -u no_proxy -u https_proxy -u all_proxy NO_PROXY=localhost
  HTTPS_PROXY="$cloud_URL" HTTP_PROXY="$cloud_URL" ALL_PROXY="$cloud_URL" http_proxy="$cloud_URL")
if command -v curl >/dev/null; then
  "${proxy_env[@]}" curl -s -o /dev/null "$local_URL/api/version" || true
  expect_eq "control: libcurl proxies a request for the local URL in this environment" 1 \
    "$(grep -c -F "\"path\":\"$local_URL/api/version\"" "$T/cloud.log" || true)"
else
  skip_part "no curl here: the control that this environment proxies the local URL is not run"
fi
: >"$T/cloud.log"
: >"$T/local.log"
bh_run_under run "${proxy_env[@]}" BULKHEAD_LOCAL_URL="$local_URL" \
  BULKHEAD_CLOUD_URL="http://localhost:$cloud_PORT" -- \
  run "$BH_SOURCE_DIR/pipelines/code-review.json" --repo "$T/repo" --base main --state "$T/s"
expect_rc "run succeeds" 0
no_canary_at "$T/cloud.log" "$T/repo.canaries" "proxy"
expect_eq "the proxy saw no request for the local server's URL" 0 \
  "$(grep -c -F "127.0.0.1:$local_PORT" "$T/cloud.log" || true)"
seen=0
while read -r c; do grep -q -F "$c" "$T/local.log" && seen=$((seen + 1)); done <"$T/repo.canaries"
expect_eq "every diff reached the local server directly" 2 "$seen"
audit_says "proxy" "$T/s" 0
bh_run check check "$BH_SOURCE_DIR/pipelines/code-review.json"
expect_rc "check proves the shipped pipeline (the proxy changes nothing it claims)" 0
finish

#!/usr/bin/env bash
# Attack: a cloud API key carried to a local server. A `:cloud` model on a
# loopback endpoint declared local is a cloud stage (Ollama forwards it), so a
# gate that attached keys by the stage's locality sent the endpoint's
# api_key_env there: the local box (or whatever passes for it, and its request
# log) held a cloud credential. Keys go only to endpoints verified cloud, and
# the loader refuses api_key_env on an endpoint declared local, pointing to
# `headers` for a token the local box itself needs.
#   1. api_key_env on a local endpoint: check and run refuse (exit 2) with the
#      headers hint, and nothing reaches the local server;
#   2. headers instead, the key still exported: the key never reaches the local
#      server, the proxy token does, the cloud endpoint gets the key;
#   3. control: a header that names the key's variable explicitly sends it (the
#      user's own choice), which shows that case 2 would have seen it.
source "$BH_SOURCE_DIR/tests/adversarial/lib.sh"
cd "$T"

make_repo "$T/repo" --prs 1
start_fake local
start_fake cloud
export ADV_LOCAL_URL=$local_URL ADV_CLOUD_URL=$cloud_URL
export ADV_CLOUD_KEY="sk-adv-key-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
export ADV_PROXY_TOKEN="adv-proxy-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
echo "$ADV_CLOUD_KEY" >"$T/key.canary"
cat "$T/repo.canaries" >"$T/all.canaries"
echo "$ADV_CLOUD_KEY" >>"$T/all.canaries"
P="$ADV/pipelines"

# --- 1. api_key_env on an endpoint declared local ------------------------------
bh_run check1 check "$P/api_key_to_local.json"
expect_rc "1: check refuses api_key_env on a local endpoint" 2
expect_contains "1: naming the key" "$T/check1.err" \
  'endpoints.gpu-box.api_key_env: "api_key_env" is for cloud endpoints, and this one is declared local'
expect_contains "1: pointing to headers" "$T/check1.err" 'name it in "headers"'
bh_run run1 run "$P/api_key_to_local.json" --repo "$T/repo" --state "$T/s1"
expect_rc "1: run refuses to start" 2
expect_contains "1: run names the key too" "$T/run1.err" '"api_key_env" is for cloud endpoints'
no_canary_at "$T/local.log" "$T/all.canaries" "1"
expect_eq "1: the local server got no request at all" 0 "$(wc -l <"$T/local.log")"

# --- 2. a header for the local box, the key for the cloud ----------------------
: >"$T/local.log"
: >"$T/cloud.log"
bh_run run2 run "$P/api_key_to_local-headers.json" --repo "$T/repo" --state "$T/s2"
expect_rc "2: the run succeeds (public titles only)" 0
no_canary_at "$T/local.log" "$T/key.canary" "2: the key"
no_canary_at "$T/cloud.log" "$T/repo.canaries" "2: the diffs"
expect_eq "2: the local server did get the :cloud stage's request" 1 \
  "$(jq -s '[.[] | select(.path == "/api/chat")] | length' "$T/local.log")"
expect_eq "2: with the proxy token it was given" 1 "$(grep -c -F "$ADV_PROXY_TOKEN" "$T/local.log" || true)"
expect_eq "2: no Authorization header reached the local server" 0 \
  "$(jq -s '[.[] | .headers | keys[] | ascii_downcase | select(. == "authorization")] | length' "$T/local.log")"
expect_eq "2: the cloud endpoint (verified cloud) got the key" 1 \
  "$(grep -c -F "Bearer $ADV_CLOUD_KEY" "$T/cloud.log" || true)"
audit_says "2" "$T/s2" 0
audit_has "2: the :cloud stage ran as cloud" "$T/s2" "stage = 'plan' AND locality = 'cloud' AND decision = 'allow'"
expect_eq "2: no key in output, audit or state" 0 \
  "$(cat "$T/run2.out" "$T/run2.err" $(find "$T/s2" -type f) | grep -a -c -F "$ADV_CLOUD_KEY" || true)"

# --- 3. control: the user names the key's variable in a header -----------------
: >"$T/local.log"
bh_run run3 run "$P/api_key_to_local-explicit.json" --repo "$T/repo" --state "$T/s3"
expect_rc "3: the run succeeds" 0
expect_eq "3: a header written by the user carries what it names" 1 \
  "$(grep -c -F "$ADV_CLOUD_KEY" "$T/local.log" || true)"
bh_run check3 check "$P/api_key_to_local-explicit.json"
expect_rc "3: check proves the file" 0
finish

#!/usr/bin/env bash
# An https endpoint whose certificate a private CA signed (a GPU box behind a
# TLS reverse proxy), and the proxy's basic-auth login:
# (a) without ca_file the certificate does not verify: every task fails at
#     once (exit 4), the message names the endpoint and ca_file, nothing
#     reaches the server and nothing is retried;
# (b) with ca_file the run succeeds;
# (c) with basic_auth_env every request to the endpoint, model management
#     included, carries "Authorization: Basic <base64 of user:password>", and
#     the password appears in nothing bulkhead prints or stores;
# (d) a basic-auth variable that is unset, or holds no ':', is a
#     configuration error (exit 2) naming the variable, before anything is sent.
# The CA and the server certificate (SAN IP:127.0.0.1) are made here with the
# openssl CLI: no key is committed.
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
cd "$T"
command -v openssl >/dev/null || { echo "tls.sh needs the openssl CLI (ci/bootstrap.sh installs it)"; exit 1; }

pki() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=bulkhead test CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" -keyout "$T/ca.key" -out "$T/ca.pem"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$T/server.key" -out "$T/server.csr"
  printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' >"$T/server.ext"
  openssl x509 -req -in "$T/server.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -set_serial 1 -days 2 \
    -extfile "$T/server.ext" -out "$T/server.pem"
}
pki >"$T/openssl.log" 2>&1 || { cat "$T/openssl.log"; exit 1; }

start_fake local --tls-cert "$T/server.pem" --tls-key "$T/server.key"
url="https://127.0.0.1:$local_PORT"
make_repo "$T/repo" --prs 2
mkdir -p "$T/p/certs"
cp "$T/ca.pem" "$T/p/certs/ca.pem"

# pipeline FILE [extra endpoint keys as JSON members]
pipeline() {
  cat >"$T/p/$1" <<JSON
{
  "version": 1,
  "name": "tls",
  "endpoints": {
    "gpu-box": { "provider": "ollama", "url": "$url", "locality": "local"$2 }
  },
  "source": { "kind": "git", "label": "confidential" },
  "stages": {
    "review": { "endpoint": "gpu-box", "model": "qwen2.5-coder:7b", "user": "Review {{pr.title}}" }
  }
}
JSON
}
pipeline plain.json ''
pipeline ca.json ', "ca_file": "certs/ca.pem"'
pipeline auth.json ', "ca_file": "certs/ca.pem", "basic_auth_env": "BH_TEST_PROXY_AUTH"'

# run NAME PIPELINE: bulkhead run with its own state; sets rc.
run() { bh_run "$1" run "$T/p/$2" --repo "$T/repo" --state "$T/state-$1"; } # NAME PIPELINE
requests() { wc -l <"$T/local.log" | tr -d ' '; }

# (a) the system store does not know the CA
run plain plain.json
expect_eq "(a) without ca_file: exit 4" 4 "$rc"
expect_contains "(a) the message names the endpoint" "$T/plain.err" "endpoint 'gpu-box' ($url)"
expect_contains "(a) it says the certificate did not verify" "$T/plain.err" \
  "the server's certificate could not be verified"
expect_contains "(a) and names ca_file" "$T/plain.err" "give the CA that signed it in the endpoint's ca_file"
expect_eq "(a) nothing reached the server" 0 "$(requests)"
"$BULKHEAD" audit show --state "$T/state-plain" >"$T/plain.audit"
# The survey could not verify the server either, so the probe goes before
# the first review (README "Cloud stubs"): its failure is for good (a
# certificate that does not verify), so it is the one attempt, and both
# reviews end with its error, none of them sent or retried.
expect_eq "(a) one attempt in all, the probe: no retries" 1 \
  "$(jq -s '[.[] | select(.reason | test("probe model"))] | length' "$T/plain.audit")"
expect_eq "(a) no review was sent" 0 \
  "$(jq -s '[.[] | select(.stage == "review")] | length' "$T/plain.audit")"
expect_eq "(a) the tasks get no 'is the server running' hint: retrying cannot help" 0 \
  "$(grep 'review: failed' "$T/plain.err" | grep -c 'is the server running' || true)"

# (b) the CA from ca_file
run ca ca.json
expect_eq "(b) with ca_file: exit 0" 0 "$rc"
expect_eq "(b) both reviews reached the server" 2 \
  "$(jq -s "[.[] | select(.path == \"/api/chat\") | $NOT_PROBE] | length" "$T/local.log")"
expect_eq "(b) no Authorization without basic_auth_env" 0 \
  "$(jq -s '[.[] | select(.headers.Authorization)] | length' "$T/local.log")"

# (c) the proxy's login
export BH_TEST_PROXY_AUTH="proxy-user:pw-7e3b1c90aa"
want="Basic $(printf '%s' "$BH_TEST_PROXY_AUTH" | base64)"
before=$(requests)
run auth auth.json
expect_eq "(c) with basic_auth_env: exit 0" 0 "$rc"
tail -n +"$((before + 1))" "$T/local.log" >"$T/auth.log"
expect_eq "(c) every request carries the login" "$want" \
  "$(jq -r '.headers.Authorization // "none"' "$T/auth.log" | sort -u)"
expect_eq "(c) model calls among them" 2 "$(jq -s "[.[] | select(.path == \"/api/chat\") | $NOT_PROBE] | length" "$T/auth.log")"
expect_eq "(c) and the /api/tags probe" 1 "$(jq -s '[.[] | select(.path == "/api/tags")] | length' "$T/auth.log")"
"$BULKHEAD" report --state "$T/state-auth" --format jsonl >"$T/auth.report"
"$BULKHEAD" audit show --state "$T/state-auth" >"$T/auth.audit" 2>&1 || true
for f in auth.out auth.err auth.report auth.audit; do
  expect_eq "(c) $f holds neither the password nor its base64" 0 \
    "$(grep -c -F -e "pw-7e3b1c90aa" -e "${want#Basic }" "$T/$f" || true)"
done
expect_eq "(c) the state database holds neither" 0 \
  "$(cat "$T"/state-auth/* | grep -c -a -F -e "pw-7e3b1c90aa" -e "${want#Basic }" || true)"

# (d) an unusable login is a configuration error before anything is sent
before=$(requests)
set +e
env -u BH_TEST_PROXY_AUTH "$BULKHEAD" run "$T/p/auth.json" --repo "$T/repo" --state "$T/state-unset" \
  >/dev/null 2>"$T/unset.err"
rc=$?
set -e
expect_eq "(d) an unset variable: exit 2" 2 "$rc"
expect_contains "(d) the message names the variable" "$T/unset.err" "the variable 'BH_TEST_PROXY_AUTH' is not set"
expect_contains "(d) and where it is named" "$T/unset.err" "endpoints.gpu-box.basic_auth_env"
set +e
env -u BH_TEST_PROXY_AUTH "$BULKHEAD" models "$T/p/auth.json" --state "$T/state-models" \
  >/dev/null 2>"$T/models.err"
rc=$?
env -u BH_TEST_PROXY_AUTH "$BULKHEAD" check "$T/p/auth.json" >/dev/null 2>"$T/check.err"
set -e
expect_eq "(d) models refuses to ask without the login: exit 2" 2 "$rc"
expect_contains "(d) check warns of it" "$T/check.err" "basic_auth_env: the variable 'BH_TEST_PROXY_AUTH' is not set"
set +e
BH_TEST_PROXY_AUTH="no-colon-pw-7e3b1c90aa" "$BULKHEAD" run "$T/p/auth.json" --repo "$T/repo" \
  --state "$T/state-colon" >/dev/null 2>"$T/colon.err"
rc=$?
set -e
expect_eq "(d) a variable without ':': exit 2" 2 "$rc"
expect_contains "(d) the message says what it must hold" "$T/colon.err" \
  "the variable 'BH_TEST_PROXY_AUTH' does not hold user:password"
expect_eq "(d) and never shows the value" 0 "$(grep -c -F "pw-7e3b1c90aa" "$T/colon.err" || true)"
expect_eq "(d) nothing reached the server" "$before" "$(requests)"
finish

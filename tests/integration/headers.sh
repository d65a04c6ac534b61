#!/usr/bin/env bash
# Endpoint "headers" (e.g. the client id and secret of an access proxy in front
# of a GPU box) are expanded from the environment and sent with every request
# to that endpoint — model calls and model management alike — and to no other
# endpoint. Their values never appear in what bulkhead prints or stores:
# stderr, the report, the audit, the state database.
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
cd "$T"
start_fake local
start_fake cloud
make_repo "$T/repo" --prs 2
export BH_TEST_PROXY_SECRET=hdr-secret-7f3a91c2e5 BH_TEST_PROXY_ID=client-42
mkdir -p "$T/p"
cp "$BH_SOURCE_DIR/pipelines/prompts/review-diff-only.md" "$T/p/review.md"
printf 'Plan #{{pr.number}}: {{pr.title}}\n' >"$T/p/plan.md"
cat >"$T/p/pipeline.json" <<JSON
{
  "version": 1,
  "name": "headers",
  "endpoints": {
    "gpu-box": { "provider": "ollama", "url": "$local_URL", "locality": "local",
                 "headers": { "CF-Access-Client-Id": "\${BH_TEST_PROXY_ID}",
                              "CF-Access-Client-Secret": "\${BH_TEST_PROXY_SECRET}",
                              "X-Team": "infra" } },
    "cloud": { "provider": "ollama", "url": "$cloud_URL", "locality": "cloud",
               "clearance": "internal" }
  },
  "source": { "kind": "git", "label": "confidential", "fields": { "pr.number": "internal", "pr.title": "internal" } },
  "stages": {
    "plan": { "endpoint": "cloud", "model": "gpt-oss:120b", "prompt": "plan.md" },
    "review": { "endpoint": "gpu-box", "model": "qwen2.5-coder:7b", "after": ["plan"], "prompt": "review.md" }
  }
}
JSON

set +e
"$BULKHEAD" run "$T/p/pipeline.json" --repo "$T/repo" --state "$T/state" >"$T/run.out" 2>"$T/run.err"
rc=$?
set -e
expect_eq "the run succeeds" 0 "$rc"

hdr() { jq -r --arg h "$2" 'select(.method == "POST") | .headers[$h] // .headers[($h | ascii_downcase)] // "none"' "$T/$1.log" | sort -u; }
expect_eq "every local model call carries the secret header" "$BH_TEST_PROXY_SECRET" "$(hdr local CF-Access-Client-Secret)"
expect_eq "... and the client id" "$BH_TEST_PROXY_ID" "$(hdr local CF-Access-Client-Id)"
expect_eq "... and a literal header" infra "$(hdr local X-Team)"
expect_eq "model management (the tags probe) carries it too" "$BH_TEST_PROXY_SECRET" \
  "$(jq -r 'select(.method == "GET") | .headers["CF-Access-Client-Secret"] // .headers["cf-access-client-secret"] // "none"' "$T/local.log" | sort -u)"
expect_eq "the cloud endpoint never sees them" 0 "$(grep -c -F "$BH_TEST_PROXY_SECRET" "$T/cloud.log" || true)"

"$BULKHEAD" report --state "$T/state" --format jsonl >"$T/report.jsonl"
"$BULKHEAD" audit show --state "$T/state" >"$T/audit.out" 2>&1 || true
for f in run.out run.err report.jsonl audit.out; do
  expect_eq "$f holds no header value" 0 "$(grep -c -F -e "$BH_TEST_PROXY_SECRET" -e "$BH_TEST_PROXY_ID" "$T/$f" || true)"
done
expect_eq "the state database holds no header value" 0 \
  "$(cat "$T"/state/* | grep -c -a -F "$BH_TEST_PROXY_SECRET" || true)"

# A header whose variable is unset is a configuration error naming the variable only.
set +e
env -u BH_TEST_PROXY_SECRET "$BULKHEAD" check "$T/p/pipeline.json" >/dev/null 2>"$T/check.err"
rc=$?
set -e
expect_eq "an unset header variable: exit 2" 2 "$rc"
expect_contains "the message names the variable" "$T/check.err" "BH_TEST_PROXY_SECRET"
finish

#!/usr/bin/env bash
# ci/bootstrap.sh — install the Debian packages bulkhead needs to build, test and demo.
# Idempotent: packages already installed are not touched and apt is not called at all.
# Works as root or through sudo.
set -euo pipefail

pkgs=(
  build-essential cmake pkg-config git
  libcurl4-openssl-dev libjansson-dev libgit2-dev libzstd-dev libsqlite3-dev
  libssl-dev libyaml-dev libcmocka-dev libmicrohttpd-dev
  libutf8proc-dev   # NFKC and case folding for the declassify guards (runner/policy/norm.c)
  curl ca-certificates jq sqlite3
  openssl   # the CLI: tests/integration/tls.sh makes its CA and server certificate at test time
  # tests of the CI outputs and templates: SARIF against its schema, the JUnit
  # XML, the workflow's steps (findings_reports.sh, ci_templates.sh)
  python3 python3-jsonschema python3-yaml yamllint
  # the strongest egress checks (leaks.sh, tests/adversarial/): runs in a network
  # namespace of their own (unshare, util-linux; ip, iproute2, brings up its
  # loopback) under strace, which counts connect() attempts to an address that
  # must never be tried; without them those cases end as skipped (exit 77), which
  # ci/test.sh refuses
  strace iproute2 util-linux
  clang-format   # ci/lint.sh holds every C file to .clang-format
  # tests/fuzz/run.sh: clang with libFuzzer and the sanitizers' runtimes (compiler-rt)
  clang libclang-rt-dev
  graphviz   # dot: check --format dot's output is rendered (check_formats.sh)
)

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "bootstrap: all ${#pkgs[@]} packages present"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "bootstrap: need root or sudo to install: ${missing[*]}" >&2
  exit 2
fi

echo "bootstrap: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"

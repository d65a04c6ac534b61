#!/usr/bin/env bash
# Attack: a cloud service behind a private address. A private link, a
# corporate proxy or a container service can put someone else's server at
# 10.x; a pipeline that declares it local must not hand it every label just
# because the address is in RFC 1918. Only loopback is local on its own; any
# other address needs its network named (trusted_networks in the pipeline, or
# BULKHEAD_TRUSTED_NETWORKS) or the host listed in trusted_hosts.
# The endpoint is http://10.255.255.1:11434 and is never connected to: every
# run happens in a network namespace of its own (unshare -rn: nothing can
# leave it), under strace when present to count connect() attempts.
#   1. check: exit 3, the endpoint refused, naming the line to add;
#   2. run: exit 3 before any connection, the refusal audited, audit verifies;
#   3. the same with the network named (the pipeline's trusted_networks, or the
#      variable): check proves the file; the run does try 10.255.255.1 — the
#      control that shows the strace witness of 2 would have seen it;
#   4. a malformed BULKHEAD_TRUSTED_NETWORKS is a configuration error (exit 2).
source "$BH_SOURCE_DIR/tests/adversarial/lib.sh"
cd "$T"

make_repo "$T/repo" --prs 1
export ADV_LOCAL_URL=http://10.255.255.1:11434
unset BULKHEAD_TRUSTED_NETWORKS
P="$ADV/pipelines/private_address_not_local.json"
PT="$ADV/pipelines/private_address_not_local-trusted.json"
hint='add "trusted_networks": ["10.255.255.0/24"] to the pipeline, or set BULKHEAD_TRUSTED_NETWORKS=10.255.255.0/24'

# --- 1. check ---------------------------------------------------------------------
bh_run check check "$P"
expect_rc "1: check refuses the private address" 3
expect_contains "1: as a private address in no trusted network" "$T/check.out" \
  "declared local but private address in no trusted network (refused)"
expect_contains "1: naming the line to add" "$T/check.out" "$hint"
bh_run check-json check --format json "$P"
expect_eq "1: the JSON graph says the endpoint is not local" "false" \
  "$(jq '.endpoints[] | select(.name == "gpu-box") | .local' "$T/check-json.out")"

# connects FILE: connect() attempts to 10.255.255.1 in an strace log.
connects() {
  [ -f "$1" ] || { echo 0; return; }
  grep -c 'inet_addr("10\.255\.255\.1")' "$1" || true
}
# in_ns NAME ARGS...: bulkhead ARGS in a network namespace, under strace when
# present (LeakSanitizer cannot run under ptrace: leaks are not checked there).
in_ns() {
  local name=$1; shift
  local tr=()
  command -v strace >/dev/null && tr=(env ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
    strace -f -qq -e trace=connect -o "$T/$name.strace")
  bh_run_under "$name" unshare -rn "${tr[@]}" -- "$@"
}

if ! unshare -rn true 2>/dev/null; then
  skip_part "no unprivileged network namespace here: the runs are not exercised, check only"
  finish
  exit
fi
command -v strace >/dev/null || skip_part "no strace here: connect() attempts are not counted"

# --- 2. run -----------------------------------------------------------------------
in_ns run run "$P" --repo "$T/repo" --state "$T/s2"
expect_rc "2: run refuses" 3
expect_contains "2: saying why, with the line to add" "$T/run.err" "$hint"
expect_contains "2: and that the stage may receive nothing" "$T/run.err" "refused to run"
if command -v strace >/dev/null; then
  expect_eq "2: no connection to 10.255.255.1 was even tried" 0 "$(connects "$T/run.strace")"
fi
audit_has "2: the refusal" "$T/s2" "decision = 'refuse' AND stage = 'review'"
expect_eq "2: the audit allows nothing and counts no byte" "refuse|0" \
  "$(sqlite3 "$T/s2/state.db" "SELECT group_concat(DISTINCT decision), sum(bytes) FROM audit")"
audit_says "2" "$T/s2" 0
"$BULKHEAD" report --state "$T/s2" --format jsonl >"$T/s2.report" 2>/dev/null || true
expect_eq "2: no canary in the report" 0 "$(grep -c -F -f "$T/repo.canaries" "$T/s2.report" || true)"

# --- 3. the network named: local, and then it is connected to -----------------
bh_run check-t check "$PT"
expect_rc "3: with trusted_networks, check proves the file" 0
expect_contains "3: naming the network" "$T/check-t.out" \
  "declared local; 10.255.255.1 is in 10.255.255.0/24, a network named by trusted_networks"
BULKHEAD_TRUSTED_NETWORKS=10.255.255.0/24 bh_run check-env check "$P"
expect_rc "3: with BULKHEAD_TRUSTED_NETWORKS, check proves the file" 0
expect_contains "3: naming the variable" "$T/check-env.out" "a network named by BULKHEAD_TRUSTED_NETWORKS"
if command -v strace >/dev/null; then
  in_ns run-t run "$PT" --repo "$T/repo" --state "$T/s3"
  expect_eq "3: control: a trusted endpoint is connected to (the witness of 2 works)" 1 \
    "$([ "$(connects "$T/run-t.strace")" -gt 0 ] && echo 1 || echo 0)"
fi

# --- 4. a bad variable ------------------------------------------------------------
BULKHEAD_TRUSTED_NETWORKS="10.255.255.0/24,10.0.0.0" bh_run check-bad check "$P"
expect_rc "4: a malformed BULKHEAD_TRUSTED_NETWORKS is a configuration error" 2
expect_contains "4: naming the block" "$T/check-bad.err" \
  'BULKHEAD_TRUSTED_NETWORKS: "10.0.0.0" is not a CIDR block'
finish

#!/usr/bin/env bash
# New attack: the command line. "--endpoint gpu-box=URL" overrides a local
# endpoint URL (a CI job, a wrapper script, a copied command); pointing the
# local endpoint at a public address must not inherit the file's "local" as a
# proof: check and run exit 3, nothing connected, only refusals audited. The
# same with a public host name in a hosts file is covered by
# held_public_address. Held on main when written.
source "$BH_SOURCE_DIR/tests/adversarial/lib.sh"
cd "$T"

need_netns_strace
make_repo "$T/repo" --prs 1
P="$ADV/pipelines/held_public_address.json"

export ADV_LOCAL_URL=http://127.0.0.1:9
ns ctl check "$P"
expect_rc "control: the file as written is proved local" 0
ns check check "$P" --endpoint gpu-box=http://192.0.2.10:11434
expect_rc "check refuses the override" 3
expect_contains "naming the public address" "$T/check.out" "declared local but 192.0.2.10 is neither loopback nor in a trusted network"
ns run run "$P" --repo "$T/repo" --state "$T/s" --endpoint gpu-box=http://192.0.2.10:11434
expect_rc "run refuses the override" 3
expect_eq "no TCP connection to 192.0.2.x was tried" 0 "$(tcp_connects "$T/run.strace")"
expect_eq "the audit holds only refusals, 0 bytes" "refuse|0" \
  "$(sqlite3 "$T/s/state.db" "SELECT group_concat(DISTINCT decision), sum(bytes) FROM audit")"
audit_says "override" "$T/s" 0
finish

#!/usr/bin/env bash
# New attack: IPv6 spellings of IPv4 addresses declared local. An address
# check that only knows 127.0.0.0/8 and ::1 could call "[::ffff:192.0.2.10]"
# (an IPv4-mapped public address) or "[::192.0.2.10]" (IPv4-compatible)
# something else, and one that compares text could call them foreign. The
# mapped public ones must be refused (exit 3, nothing connected, only refusals
# audited); the mapped loopback "[::ffff:127.0.0.1]" is loopback (control: check
# proves it). Held on main when written.
source "$BH_SOURCE_DIR/tests/adversarial/lib.sh"
cd "$T"

need_netns_strace
make_repo "$T/repo" --prs 1
P="$ADV/pipelines/held_public_address.json"

for url in "http://[::ffff:192.0.2.10]:11434" "http://[0:0:0:0:0:ffff:c000:20a]:11434" "http://[::192.0.2.10]:11434"; do
  ADV_LOCAL_URL=$url ns check check "$P"
  expect_rc "check refuses $url" 3
  ADV_LOCAL_URL=$url ns run run "$P" --repo "$T/repo" --state "$T/s"
  expect_rc "run refuses $url" 3
  expect_eq "$url: no connection tried (to 192.0.2.x or the mapped address)" 0 \
    "$(( $(tcp_connects "$T/run.strace") + $(grep -c -i -e "c000:20a" -e "ffff:192" -e "::192" "$T/run.strace" || true) ))"
  expect_eq "$url: the audit holds only refusals, 0 bytes" "refuse|0" \
    "$(sqlite3 "$T/s/state.db" "SELECT group_concat(DISTINCT decision), sum(bytes) FROM audit")"
  audit_says "$url" "$T/s" 0
  rm -rf "$T/s"
done
ADV_LOCAL_URL="http://[::ffff:127.0.0.1]:11434" ns ctl check "$P"
expect_rc "control: [::ffff:127.0.0.1] is loopback, check proves the file" 0
finish

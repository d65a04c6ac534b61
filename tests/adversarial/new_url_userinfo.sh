#!/usr/bin/env bash
# New attack: a local endpoint URL whose userinfo or delimiters make two URL
# parsers disagree about the host: "http://127.0.0.1@192.0.2.10:11434/" (the
# host is 192.0.2.10; a careless check reads 127.0.0.1), the same with a port
# in the userinfo, a backslash (WHATWG parsers treat it as "/", curl does not),
# an encoded "#", and "?@" / "#@" that end the authority early. Given through
# BULKHEAD_LOCAL_URL-style variables, as a user would. Each must be refused
# (credentials in a URL: exit 2; the real host public: exit 3) and no run may
# connect to 192.0.2.x. Held on main when written.
source "$BH_SOURCE_DIR/tests/adversarial/lib.sh"
cd "$T"

need_netns_strace
make_repo "$T/repo" --prs 1
P="$ADV/pipelines/held_public_address.json"

for c in "2|http://127.0.0.1@192.0.2.10:11434/" "2|http://127.0.0.1:11434@192.0.2.10/" \
         "2|http://192.0.2.10\\@127.0.0.1:11434" "2|http://192.0.2.10%23@127.0.0.1:11434" \
         "3|http://192.0.2.10?@127.0.0.1:11434" "3|http://192.0.2.10#@127.0.0.1:11434"; do
  want=${c%%|*} url=${c#*|}
  ADV_LOCAL_URL=$url ns check check "$P"
  expect_rc "check refuses $url" "$want"
  ADV_LOCAL_URL=$url ns run run "$P" --repo "$T/repo" --state "$T/s"
  expect_rc "run refuses $url" "$want"
  expect_eq "$url: no TCP connection to 192.0.2.x was tried" 0 "$(tcp_connects "$T/run.strace")"
  if [ "$want" = 3 ]; then
    expect_eq "$url: the audit holds only refusals, 0 bytes" "refuse|0" \
      "$(sqlite3 "$T/s/state.db" "SELECT group_concat(DISTINCT decision), sum(bytes) FROM audit")"
    audit_says "$url" "$T/s" 0
  else
    expect_contains "$url: saying the URL holds credentials" "$T/run.err" "URL has credentials in it"
  fi
  rm -rf "$T/s"
done
finish
